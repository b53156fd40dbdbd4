// The local gateway serves the properties Envoy would from the same envoy.yaml: the route's name and
// metadata.filter_metadata (xds.route_name / route_metadata), the virtual host's, the cluster's
// metadata once the router picked it (xds.cluster_*), the endpoint's metadata and locality once
// connected (xds.upstream_host_metadata, upstream.locality), the node and listener, and the connection's
// real addresses (source.*, destination.*, upstream.*). build/test/properties.wasm reads them.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { startLocalGateway, type LocalGateway } from "../../cli/start.js";
import { parseEnvoyConfig } from "../../host/envoy-config.js";

const PATHS = ["xds|route_name", "xds|route_metadata|filter_metadata|sluice|tier", "xds|virtual_host_name", "xds|cluster_name", "xds|cluster_metadata|filter_metadata|sluice|provider", "xds|node|id", "xds|listener_direction", "xds|filter_chain_name", "source|address", "destination|port", "upstream|address", "upstream|local_address", "upstream|locality|region", "xds|upstream_host_metadata|filter_metadata|lb|canary", "request|protocol"];

function envoyYaml(upstreamPort: number): string {
  const doc = {
    node: { id: "gw-e2e", cluster: "sluice" },
    static_resources: {
      listeners: [{
        name: "sluice",
        traffic_direction: "INBOUND",
        address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
        filter_chains: [{
          name: "main",
          filters: [{
            name: "envoy.filters.network.http_connection_manager",
            typed_config: {
              "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
              stat_prefix: "sluice",
              route_config: {
                name: "sluice",
                virtual_hosts: [{
                  name: "all", domains: ["*"],
                  routes: [{ name: "ai", match: { prefix: "/" }, metadata: { filter_metadata: { sluice: { tier: "gold" } } }, route: { cluster_header: "x-sluice-cluster" } }],
                }],
              },
              http_filters: [
                {
                  name: "props",
                  typed_config: {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                    config: {
                      name: "props",
                      configuration: { "@type": "type.googleapis.com/google.protobuf.StringValue", value: PATHS.join("\n") },
                      vm_config: { runtime: "envoy.wasm.runtime.v8", code: { local: { filename: resolve("build/test/properties.wasm") } } },
                    },
                  },
                },
                { name: "envoy.filters.http.router", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } },
              ],
            },
          }],
        }],
      }],
      clusters: [{
        name: "openai",
        connect_timeout: "1s",
        metadata: { filter_metadata: { sluice: { provider: "openai" } } },
        load_assignment: { cluster_name: "openai", endpoints: [{ locality: { region: "local-1" }, lb_endpoints: [{ metadata: { filter_metadata: { lb: { canary: true } } }, endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: upstreamPort } } } }] }] },
      }],
    },
  };
  const dir = mkdtempSync(join(tmpdir(), "sluice-props-"));
  const path = join(dir, "envoy.yaml");
  writeFileSync(path, stringify(doc));
  return path;
}

describe("local gateway: properties from envoy.yaml", () => {
  let gw: LocalGateway | null = null;
  let upstream: http.Server | null = null;
  afterEach(async () => {
    await gw?.close();
    await new Promise((r) => (upstream ? upstream.close(r) : r(null)));
    gw = null;
    upstream = null;
  });

  it("envoy-config refuses metadata the local gateway cannot serve as Envoy does", () => {
    const text = (meta: unknown) => `
static_resources:
  listeners:
  - address: { socket_address: { address: 127.0.0.1, port_value: 1 } }
    filter_chains:
    - filters:
      - name: hcm
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          route_config: { virtual_hosts: [ { name: v, domains: ["*"], routes: [ { match: { prefix: / }, metadata: ${JSON.stringify(meta)}, route: { cluster_header: x-c } } ] } ] }
          http_filters: [ { name: r, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router } } ]
`;
    expect(parseEnvoyConfig(text({ filter_metadata: { ns: { a: [1, "x", null] } } })).routeInfo.metadata).toEqual({ ns: { a: [1, "x", null] } });
    expect(() => parseEnvoyConfig(text({ typed_filter_metadata: { ns: {} } }))).toThrow(/typed_filter_metadata: the local gateway reads filter_metadata only/);
  });

  it("a request through the gateway reads the route, cluster, node, listener and addresses", async () => {
    upstream = http.createServer((_req, res) => res.end("ok"));
    await new Promise<void>((r) => upstream!.listen(0, "127.0.0.1", r));
    const upstreamPort = (upstream.address() as AddressInfo).port;
    gw = await startLocalGateway({ envoyYaml: envoyYaml(upstreamPort), port: 0, adminPort: 0, env: {}, accessLog: () => {} });
    const res = await fetch(`${gw.url}/v1/x`, { headers: { "x-sluice-cluster": "openai" } });
    expect(await res.text()).toBe("ok");
    const lines = gw.host.getLogs("info").map((l) => l.split("\t"));
    const read = (phase: string, path: string) => {
      const l = lines.filter(([ph, p]) => ph === phase && p === path).at(-1);
      return l ? { rc: Number(l[2]), value: Buffer.from(l[3], "hex") } : undefined;
    };
    const str = (phase: string, path: string) => {
      const r = read(phase, path);
      return r && r.rc === 0 ? r.value.toString() : `rc=${r?.rc}`;
    };
    const i64 = (phase: string, path: string) => read(phase, path)!.value.readBigInt64LE();
    expect(str("request_headers", "xds|route_name")).toBe("ai");
    expect(str("request_headers", "xds|route_metadata|filter_metadata|sluice|tier")).toBe("gold");
    expect(str("request_headers", "xds|virtual_host_name")).toBe("all");
    expect(str("request_headers", "xds|node|id")).toBe("gw-e2e");
    expect(i64("request_headers", "xds|listener_direction")).toBe(1n);
    expect(str("request_headers", "xds|filter_chain_name")).toBe("main");
    expect(str("request_headers", "request|protocol")).toBe("HTTP/1.1");
    expect(str("request_headers", "source|address")).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(i64("request_headers", "destination|port")).toBe(BigInt(new URL(gw.url).port));
    // The route resolves before the first filter, and with it the cluster x-sluice-cluster names
    // (the route's cluster_header); the upstream host only once the router connected.
    expect(str("request_headers", "xds|cluster_name")).toBe("openai");
    expect(read("request_headers", "upstream|address")!.rc).toBe(1);
    expect(str("response_headers", "xds|cluster_name")).toBe("openai");
    expect(str("response_headers", "xds|cluster_metadata|filter_metadata|sluice|provider")).toBe("openai");
    expect(str("response_headers", "upstream|address")).toBe(`127.0.0.1:${upstreamPort}`);
    expect(str("response_headers", "upstream|local_address")).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(str("response_headers", "upstream|locality|region")).toBe("local-1");
    expect(read("response_headers", "xds|upstream_host_metadata|filter_metadata|lb|canary")).toEqual({ rc: 0, value: Buffer.from([1]) });
  });
});
