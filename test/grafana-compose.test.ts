// docker compose's observability profile (envoy/docker-compose.yaml, docs/dashboard.md): Prometheus
// scraping Envoy's admin port, Grafana provisioned with it as its data source and with the rendered
// dashboard. Each path a container reads is followed back through its volume to a file of the
// repository, so a renamed file or a moved mount fails here rather than in an empty Grafana.
import { describe, expect, it } from "vitest";
import { existsSync, readFileSync } from "node:fs";
import { join, posix } from "node:path";
import { parse } from "yaml";
import { DASHBOARD_FILE, DASHBOARD_UID, PROMETHEUS_DATASOURCE_UID } from "../cli/render/grafana.js";

const ENVOY_DIR = "envoy";
const compose = parse(readFileSync(join(ENVOY_DIR, "docker-compose.yaml"), "utf8"));
const { prometheus, grafana } = compose.services;

/** The repository file behind a container path, through the service's bind mounts (relative to envoy/). */
function hostPath(service: { volumes: string[] }, containerPath: string): string | undefined {
  for (const v of service.volumes) {
    const [src, dst] = v.split(":");
    if (containerPath === dst || containerPath.startsWith(dst + "/")) return join(ENVOY_DIR, src, posix.relative(dst, containerPath));
  }
  return undefined;
}

function env(service: { environment: string[] }, name: string): string | undefined {
  return service.environment.find((e) => e.startsWith(`${name}=`))?.slice(name.length + 1);
}

describe("the observability profile", () => {
  it("adds Prometheus and Grafana, official images pinned to a release, on 127.0.0.1 only", () => {
    expect(Object.entries(compose.services).filter(([, s]: [string, any]) => s.profiles?.includes("observability")).map(([n]) => n)).toEqual(["prometheus", "grafana"]);
    expect(prometheus.image).toMatch(/^prom\/prometheus:v\d+\.\d+\.\d+$/);
    expect(grafana.image).toMatch(/^grafana\/grafana:\d+\.\d+\.\d+$/);
    expect(prometheus.ports).toEqual(["127.0.0.1:9090:9090"]);
    expect(grafana.ports).toEqual(["127.0.0.1:3000:3000"]);
    // No OpenTelemetry collector here (yet): the profile is exactly these two.
    expect(compose.services.envoy.profiles).toBeUndefined();
  });

  it("runs the Grafana release whose dashboard schema the dashboard is checked against (@grafana/schema)", () => {
    const schema = JSON.parse(readFileSync("node_modules/@grafana/schema/package.json", "utf8")).version as string;
    expect(grafana.image).toBe(`grafana/grafana:${schema}`);
  });

  it("Prometheus scrapes /stats/prometheus on envoy's admin port, which envoy.mock.yaml opens to the compose network", () => {
    const configArg = (prometheus.command as string[]).find((a) => a.startsWith("--config.file="))!.split("=")[1];
    const file = hostPath(prometheus, configArg)!;
    expect(file).toBe(join(ENVOY_DIR, "prometheus", "prometheus.yml"));
    const config = parse(readFileSync(file, "utf8"));
    expect(config.global.scrape_interval).toBe("5s");
    expect(config.scrape_configs).toEqual([{ job_name: "sluice", metrics_path: "/stats/prometheus", static_configs: [{ targets: ["envoy:9901"] }] }]);
    const admin = parse(readFileSync(join(ENVOY_DIR, "envoy.mock.yaml"), "utf8")).admin.address.socket_address;
    expect(admin).toEqual({ address: "0.0.0.0", port_value: 9901 });
  });

  it("Grafana's data source is that Prometheus, with the uid the dashboard's datasource variable selects", () => {
    const provisioning = env(grafana, "GF_PATHS_PROVISIONING")!;
    const file = hostPath(grafana, `${provisioning}/datasources/prometheus.yaml`)!;
    expect(existsSync(file), file).toBe(true);
    const [ds] = parse(readFileSync(file, "utf8")).datasources;
    expect(ds).toMatchObject({ type: "prometheus", uid: PROMETHEUS_DATASOURCE_UID, url: "http://prometheus:9090", isDefault: true });
    expect(ds.jsonData.timeInterval).toBe("5s");
    const dashboard = JSON.parse(readFileSync(join(ENVOY_DIR, DASHBOARD_FILE), "utf8"));
    expect(dashboard.templating.list[0]).toMatchObject({ type: "datasource", query: "prometheus", current: { value: PROMETHEUS_DATASOURCE_UID } });
  });

  it("Grafana's dashboard provider loads the rendered dashboard, which is also the home dashboard", () => {
    const provisioning = env(grafana, "GF_PATHS_PROVISIONING")!;
    const file = hostPath(grafana, `${provisioning}/dashboards/sluice.yaml`)!;
    expect(existsSync(file), file).toBe(true);
    const [provider] = parse(readFileSync(file, "utf8")).providers;
    expect(provider).toMatchObject({ type: "file", allowUiUpdates: false });
    // The provider's directory is the folder `npm run render` writes the dashboard into.
    expect(hostPath(grafana, provider.options.path)).toBe(join(ENVOY_DIR, posix.dirname(DASHBOARD_FILE)));
    const home = hostPath(grafana, env(grafana, "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")!)!;
    expect(home).toBe(join(ENVOY_DIR, DASHBOARD_FILE));
    expect(JSON.parse(readFileSync(home, "utf8")).uid).toBe(DASHBOARD_UID);
    expect(env(grafana, "GF_AUTH_ANONYMOUS_ORG_ROLE")).toBe("Viewer");
  });
});
