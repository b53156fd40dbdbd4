// gateway.yaml filters.ai_cache: checked, rendered after ai-guard and before ai-ratelimit with its
// own ECDS file, FAIL_OPEN by default, holding the headers; semantic lookups get ai-router's
// embeddings instance (and its cluster, even when no rule is semantic); in Istio a WasmPlugin at
// priority 22 and a place in the EnvoyFilter; valid against Envoy's API; the filter accepts what
// is rendered; the access log carries the cache's fields.
import { describe, it, expect, beforeAll } from "vitest";
import { parseGatewayConfig } from "../cli/gateway-config.js";
import { renderEcds, renderEnvoy as renderEnvoyYaml, renderIstio, ISTIO_ENVOYFILTER } from "../cli/render.js";
import { loadEnvoyApi, validateEnvoyConfig } from "../cli/envoy-validate.js";
import { renderedInline } from "./fixtures/ecds.js";
import { MINIMAL_GATEWAY, problemsOf } from "./fixtures/gateway-yaml.js";
import { Host } from "../host/index.js";

const renderEnvoy = (cfg: any, opts: any = {}) => renderedInline(renderEnvoyYaml, renderEcds, cfg, opts);
const hcm = (c: any) => c.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
const wasm = (envoy: any) => hcm(envoy).http_filters.filter((f: any) => f.typed_config?.["@type"]?.endsWith("wasm.v3.Wasm")).map((f: any) => f.typed_config.config);
const cacheJson = (envoy: any) => JSON.parse(wasm(envoy).find((f: any) => f.name === "ai-cache").configuration.value);

const BASE = `${MINIMAL_GATEWAY}filters:
  ai_guard:
    detectors: { email: mask }
  ai_ratelimit:
    rules: [{ name: per-consumer, key: [consumer], limit: 1000, window: 1m }]
`;
const CACHE = `  ai_cache:
    ttl: 10m
    max_entries: 2048
    cache_tool_calls: true
`;
const SEMANTIC = `${MINIMAL_GATEWAY}filters:
  ai_router:
    rules: []
    embeddings: { endpoint: "https://embed.example.com/v1", model: text-embedding-3-small, api_key_env: EMBED_KEY, dimensions: 256 }
  ai_cache:
    semantic: { threshold: 0.95, input: conversation }
`;

beforeAll(() => loadEnvoyApi());

describe("gateway.yaml filters.ai_cache", () => {
  it("renders between ai-guard and ai-ratelimit, FAIL_OPEN, holding the headers, with its settings", () => {
    const cfg = parseGatewayConfig(BASE + CACHE, { env: {} });
    for (const mock of [false, true]) {
      const envoy = renderEnvoy(cfg, { mock });
      const filters = wasm(envoy);
      expect(filters.map((f: any) => f.name)).toEqual(["key-auth", "ai-guard", "ai-cache", "ai-ratelimit", "ai-proxy"]);
      const c = filters[2];
      expect(c.failure_policy).toBe("FAIL_OPEN");
      expect(c.allow_on_headers_stop_iteration).toBe(true);
      expect(JSON.parse(c.configuration.value)).toEqual({ ttl_ms: 600000, max_entries: 2048, cache_tool_calls: true });
      expect(validateEnvoyConfig(envoy)).toMatchObject({ errors: [], warnings: [] });
    }
    expect(Object.keys(renderEcds(cfg))).toContain("ecds/ai-cache.yaml");
  });

  it("logs hit, miss or bypass and what a hit saved", () => {
    const log = hcm(renderEnvoyYaml(parseGatewayConfig(BASE + CACHE, { env: {} }))).access_log[0].typed_config.log_format.json_format;
    for (const k of ["cache", "cache_saved_tokens", "cache_saved_cost", "cache_similarity"]) expect(log[k]).toBe(`%FILTER_STATE(wasm.sluice.${k}:PLAIN)%`);
  });

  it("semantic: ai-router's embeddings instance, its cluster rendered though no rule is semantic, its key variable passed to the VM", () => {
    const cfg = parseGatewayConfig(SEMANTIC, { env: {} });
    const envoy = renderEnvoy(cfg);
    expect(cacheJson(envoy)).toEqual({
      semantic: { cluster: "sluice-embeddings", model: "text-embedding-3-small", path: "/v1/embeddings", authority: "embed.example.com", api_key_env: "EMBED_KEY", dimensions: 256, threshold: 0.95, input: "conversation" },
    });
    expect(envoy.static_resources.clusters.map((c: any) => c.name)).toContain("sluice-embeddings");
    const vm = wasm(envoy).find((f: any) => f.name === "ai-cache").vm_config;
    expect(JSON.stringify(vm.environment_variables)).toContain("EMBED_KEY");
    expect(validateEnvoyConfig(envoy)).toMatchObject({ errors: [], warnings: [] });
  });

  it("store: a Webdis server several Envoys share, its cluster, its credential from the environment (with mock too)", () => {
    const yaml = BASE + `  ai_cache:
    store: { webdis: "http://webdis.cache.svc.cluster.local:7379", auth: { value_env: WEBDIS_AUTH, prefix: "Basic " }, prefix: "gw1:", timeout_ms: 150 }
`;
    const cfg = parseGatewayConfig(yaml, { env: {} });
    for (const mock of [false, true]) {
      const envoy = renderEnvoy(cfg, { mock });
      expect(cacheJson(envoy)).toEqual({
        store: { type: "webdis", cluster: "sluice-cache-store", authority: "webdis.cache.svc.cluster.local:7379", auth: { header: "authorization", value_env: "WEBDIS_AUTH", prefix: "Basic " }, prefix: "gw1:", timeout_ms: 150 },
      });
      const c = envoy.static_resources.clusters.find((x: any) => x.name === "sluice-cache-store");
      expect(c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address).toEqual({ address: "webdis.cache.svc.cluster.local", port_value: 7379 });
      const vm = wasm(envoy).find((f: any) => f.name === "ai-cache").vm_config;
      expect(JSON.stringify(vm.environment_variables)).toContain("WEBDIS_AUTH");
      expect(validateEnvoyConfig(envoy)).toMatchObject({ errors: [], warnings: [] });
    }
    const istio = renderIstio(cfg);
    expect((istio["ai-cache.yaml"].docs[0] as any).spec.pluginConfig.store.cluster).toBe("outbound|7379||webdis.cache.svc.cluster.local");
    expect(problemsOf(BASE + "  ai_cache: { store: { webdis: \"http://w:7379/redis\" } }\n").join("\n")).toContain("filters.ai_cache.store.webdis");
    expect(problemsOf(BASE + "  ai_cache: { store: { webdis: \"http://w:7379\", prefix: \"a/b\" } }\n").join("\n")).toContain("filters.ai_cache.store.prefix");
  });

  it("failure_policy may be closed or reload; enabled: false leaves it out", () => {
    const closed = parseGatewayConfig(BASE + CACHE + "    failure_policy: closed\n", { env: {} });
    expect(wasm(renderEnvoy(closed)).find((f: any) => f.name === "ai-cache").failure_policy).toBe("FAIL_CLOSED");
    const off = parseGatewayConfig(BASE + "  ai_cache: { enabled: false }\n", { env: {} });
    expect(wasm(renderEnvoy(off)).map((f: any) => f.name)).not.toContain("ai-cache");
  });

  it("Istio: a WasmPlugin at priority 22 failing open, and the EnvoyFilter's chain in the same order", () => {
    const files = renderIstio(parseGatewayConfig(BASE + CACHE, { env: {} }));
    const plugin = files["ai-cache.yaml"].docs[0] as any;
    expect(plugin.spec).toMatchObject({ pluginName: "ai-cache", phase: "UNSPECIFIED_PHASE", priority: 22, failStrategy: "FAIL_OPEN" });
    const ef = files[ISTIO_ENVOYFILTER].docs[0] as any;
    const names = ef.spec.configPatches.filter((p: any) => p.applyTo === "HTTP_FILTER").map((p: any) => p.patch.value.typed_config?.config?.name);
    expect(names).toEqual(["ai-guard", "ai-cache", "ai-ratelimit", "ai-proxy"]);
  });

  it("refuses what the schema and the cross-references catch, with the field", () => {
    expect(problemsOf(BASE + "  ai_cache: { scope: everyone }\n").join("\n")).toContain("filters.ai_cache.scope");
    expect(problemsOf(BASE + "  ai_cache: { ttl: 500ms }\n").join("\n")).toContain("filters.ai_cache.ttl");
    expect(problemsOf(BASE + "  ai_cache: { max_entries: 2 }\n").join("\n")).toContain("filters.ai_cache.max_entries");
    expect(problemsOf(BASE + "  ai_cache: { semantic: { threshold: 0.2 } }\n").join("\n")).toContain("filters.ai_cache.semantic.threshold");
    expect(problemsOf(BASE + "  ai_cache: { semantic: {} }\n").join("\n")).toContain("filters.ai_router.embeddings");
  });

  it("the filter accepts the JSON the renderer writes", async () => {
    const store = BASE + `  ai_cache: { store: { webdis: "http://w:7379", auth: { value_env: WEBDIS_AUTH, prefix: "Basic " } } }\n`;
    for (const yaml of [BASE + CACHE, SEMANTIC, store]) {
      const json = cacheJson(renderEnvoy(parseGatewayConfig(yaml, { env: {} }), { mock: true }));
      const h = await Host.create({ filters: [{ name: "ai-cache", wasm: "build/ai-cache.wasm", configuration: json, allowOnHeadersStopIteration: true, env: { EMBED_KEY: "k", WEBDIS_AUTH: "c2x1aWNlOng=" } }] });
      h.close();
    }
  });
});
