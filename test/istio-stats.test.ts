// envoy/istio/stats-bootstrap.yaml (cli/render/istio-stats.ts): under Istio the gateway's proxies get
// envoy.yaml's stats_config through a bootstrap override, so Sluice's labels and the GenAI metrics'
// attributes and buckets are the same as with envoy.yaml.
import { describe, it, expect, beforeAll } from "vitest";
import { readFileSync } from "node:fs";
import { parse, parseAllDocuments } from "yaml";
import { loadEnvoyApi, validateEnvoyConfig } from "../cli/envoy-validate.js";
import { BOOTSTRAP_OVERRIDE_KEY, ISTIO_STATS_CONFIGMAP, ISTIO_STATS_FILE } from "../cli/render/istio-stats.js";
import { Metrics } from "../host/metrics.js";

beforeAll(() => loadEnvoyApi());

const configMap = () => parseAllDocuments(readFileSync(`envoy/istio/${ISTIO_STATS_FILE}`, "utf8")).map((d) => d.toJS()).find((d) => d?.kind === "ConfigMap");

describe("Istio: the stats bootstrap override", () => {
  it("holds envoy.yaml's stats_config, as a bootstrap Envoy accepts, in the key Istio's override reads", () => {
    const cm = configMap();
    expect(cm.metadata.name).toBe(ISTIO_STATS_CONFIGMAP);
    const bootstrap = JSON.parse(cm.data[BOOTSTRAP_OVERRIDE_KEY]);
    expect(Object.keys(bootstrap)).toEqual(["stats_config"]);
    const envoy = parse(readFileSync("envoy/envoy.yaml", "utf8"));
    expect(bootstrap.stats_config).toEqual(envoy.stats_config);
    expect(validateEnvoyConfig(bootstrap)).toMatchObject({ errors: [], warnings: [] });
    // It tells how to apply it: the annotation naming it, and a restart.
    const text = readFileSync(`envoy/istio/${ISTIO_STATS_FILE}`, "utf8");
    expect(text).toContain(`sidecar.istio.io/bootstrapOverride: ${ISTIO_STATS_CONFIGMAP}`);
    expect(text).toMatch(/restart/);
  });

  it("with it, a GenAI histogram gets its labels and the conventions' buckets, as with envoy.yaml", () => {
    const sc = JSON.parse(configMap().data[BOOTSTRAP_OVERRIDE_KEY]).stats_config;
    const m = new Metrics(sc.histogram_bucket_settings);
    const h = m.define("gen_ai.server.time_to_first_token;gen_ai.operation.name=chat;gen_ai.provider.name=openai;gen_ai.request.model=gpt-4o;gen_ai.response.model=gpt-4o", "histogram");
    expect(h.bounds[0]).toBe(1);
    const text = m.prometheus(sc.stats_tags.map((t: any) => ({ tagName: t.tag_name, regex: t.regex })));
    expect(text).toContain('gen_ai_server_time_to_first_token_bucket{gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt-4o",gen_ai_response_model="gpt-4o",le="1"} 0');
  });
});
