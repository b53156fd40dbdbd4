// gateway.yaml's ai_router and ai_ratelimit sections: rendered into the full chain (key-auth, ai-router,
// ai-ratelimit, ai-proxy, router) and, with `distributed`, into Envoy's global rate limit (filter,
// per-route descriptors, service cluster, envoyproxy/ratelimit's own configuration); validated
// strictly against Envoy's protos, accepted by the filters themselves, and refused with line and
// field when wrong.
import { describe, it, expect, beforeAll } from "vitest";
import { mkdtempSync, readFileSync, readdirSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { parseGatewayConfig, type GatewayConfig } from "../cli/gateway-config.js";
import {
  LOG_KEYS, METRIC_TAGS, RATELIMIT_CLUSTER, aiProxyJson, aiRatelimitJson, aiRouterJson, envKeys, render, renderEcds, renderEnvoy, renderFiles,
  renderIstio, rateLimitServiceConfig, ISTIO_ENVOYFILTER,
} from "../cli/render.js";
import { loadEnvoyApi, validateEcdsYaml, validateEnvoyConfig, validateEnvoyYaml } from "../cli/envoy-validate.js";
import { EnvoyConfigError, loadEnvoyConfig, parseEnvoyConfig } from "../host/envoy-config.js";
import { ecdsReaderOf, parseRendered, withEcdsInline } from "./fixtures/ecds.js";
import { refusalOf } from "./fixtures/gateway-yaml.js";
import { Host } from "../host/index.js";

const CHAIN = `
listener: { port: 10000 }
consumers:
  - name: team-a
    keys: [key-a]
providers:
  - name: small
    provider: openai
    api_key_env: OPENAI_API_KEY
    model: gpt-4o-mini
    models: [auto]
  - name: big
    provider: anthropic
    api_key_env: ANTHROPIC_API_KEY
    model: claude-sonnet-4-5
    models: [auto]
pools:
  - name: cheap
    instances: [small]
  - name: capable
    instances: [big]
filters:
  ai_router:
    route_header: true
    rules:
      - name: simple
        pool: cheap
        when: { complexity: { lt: 0.3 } }
      - name: complex
        pool: capable
  ai_ratelimit:
    default_max_tokens: 512
    max_body_bytes: 2097152
    rules:
      - name: consumer-minute
        key: [consumer]
        limit: 1000
        window: 1m
`;

const DISTRIBUTED = CHAIN.replace(
  "        window: 1m\n",
  `        window: 1m
      - name: team-gpt
        key: [header:X-Team, model]
        when: { model: ["gpt-4o*", o1], pool: capable }
        limit: 200000
        window: 1h
        strategy: completion_tokens
      - name: prompts-day
        limit: 9000000
        window: 86400
        strategy: prompt_tokens
    distributed:
      service: { address: ratelimit.internal, port: 8081 }
      timeout: 250ms
`,
);

const ENV = { OPENAI_API_KEY: "sk-o", ANTHROPIC_API_KEY: "sk-a", EMB_KEY: "sk-e" };


/** "line:column" of the first occurrence of `snippet` in `text` (plus `offset` characters), 1-based. */
function at(text: string, snippet: string, offset = 0): string {
  const i = text.indexOf(snippet);
  if (i < 0) throw new Error(`no ${snippet}`);
  const before = text.slice(0, i + offset).split("\n");
  return `${before.length}:${before.at(-1)!.length + 1}`;
}

const hcm = (c: any) => c.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;

/** The chain's filters in a host, from the rendered envoy.yaml: every filter must accept its configuration. */
async function hostFromRendered(files: Record<string, string>, file: string, env: Record<string, string>, clusters: Record<string, string> = {}) {
  const cfg = parseRendered(files, file);
  return Host.create({
    filters: cfg.filters.map((f) => ({
      name: f.name,
      wasm: f.wasmFile.replace("/etc/sluice/build", "build"),
      configuration: f.configuration,
      rootId: f.rootId,
      vmId: f.vmId,
      allowOnHeadersStopIteration: f.allowOnHeadersStopIteration,
      env: Object.fromEntries(f.hostEnvKeys.filter((k) => env[k] !== undefined).map((k) => [k, env[k]])),
    })),
    clusters,
  });
}

beforeAll(() => {
  loadEnvoyApi();
});

describe("the full chain from gateway.yaml", () => {
  const cfg = parseGatewayConfig(CHAIN, { env: {} });
  const envoy = withEcdsInline(renderEnvoy(cfg), renderEcds(cfg));

  it("http_filters in ARCHITECTURE.md's order, each a wasm filter with its vm_id, JSON configuration and the stop-iteration knob", () => {
    const filters = hcm(envoy).http_filters;
    expect(filters.map((f: any) => f.name)).toEqual(["sluice.key_auth", "sluice.ai_router", "sluice.ai_ratelimit", "sluice.ai_proxy", "envoy.filters.http.router"]);
    const wasm = filters.slice(0, 4).map((f: any) => f.typed_config.config);
    expect(wasm.map((c: any) => [c.name, c.root_id, c.vm_config.vm_id, c.vm_config.code.local.filename, c.failure_policy, c.allow_on_headers_stop_iteration])).toEqual([
      ["key-auth", "key-auth", "key-auth", "/etc/sluice/build/key-auth.wasm", "FAIL_CLOSED", undefined],
      ["ai-router", "ai-router", "ai-router", "/etc/sluice/build/ai-router.wasm", "FAIL_RELOAD", true],
      ["ai-ratelimit", "ai-ratelimit", "ai-ratelimit", "/etc/sluice/build/ai-ratelimit.wasm", "FAIL_RELOAD", true],
      ["ai-proxy", "ai-proxy", "ai-proxy", "/etc/sluice/build/ai-proxy.wasm", "FAIL_RELOAD", true],
    ]);
    expect(wasm.some((c: any) => "fail_open" in c)).toBe(false);
    // The YAML sections are the filters' JSON configurations.
    expect(JSON.parse(wasm[1].configuration.value)).toEqual({
      route_header: true,
      rules: [
        { name: "simple", pool: "cheap", when: { complexity: { lt: 0.3 } } },
        { name: "complex", pool: "capable" },
      ],
    });
    expect(JSON.parse(wasm[2].configuration.value)).toEqual({ rules: [{ name: "consumer-minute", key: ["consumer"], limit: 1000, window: "1m" }], default_max_tokens: 512, max_body_bytes: 2097152 });
    // Only ai-proxy needs provider keys; the router none without semantic rules, the limiter never.
    expect(wasm.map((c: any) => c.vm_config.environment_variables?.host_env_keys ?? [])).toEqual([[], [], [], ["OPENAI_API_KEY", "ANTHROPIC_API_KEY"]]);
    expect(envoy.static_resources.clusters.map((c: any) => c.name)).toEqual(["small", "big"]);
  });

  it("ai-ratelimit's max_body_bytes follows ai-proxy's max_request_body_bytes unless set", () => {
    const withProxy = (yaml: string) => aiRatelimitJson(parseGatewayConfig(yaml, { env: {} })).max_body_bytes;
    const noCap = CHAIN.replace("    max_body_bytes: 2097152\n", "");
    expect(withProxy(noCap)).toBeUndefined(); // the filter's default, the same as ai-proxy's
    expect(withProxy(noCap + "  ai_proxy: { max_request_body_bytes: 20971520 }\n")).toBe(20971520);
    expect(withProxy(CHAIN + "  ai_proxy: { max_request_body_bytes: 20971520 }\n")).toBe(2097152);
  });

  it("a money budget (strategy cost) renders with budget, and ai-ratelimit gets ai-proxy's prices", () => {
    const money = CHAIN.replace("        limit: 1000\n        window: 1m\n", "        limit: 1000\n        window: 1m\n      - name: spend\n        key: [consumer]\n        strategy: cost\n        budget: 25\n        window: 1d\n")
      + "  ai_proxy:\n    prices: { \"gpt-4o-mini\": { input: 0.2, output: 0.8 } }\n";
    const json = aiRatelimitJson(parseGatewayConfig(money, { env: {} }));
    expect((json.rules as any[])[1]).toEqual({ name: "spend", key: ["consumer"], strategy: "cost", budget: 25, window: "1d" });
    expect(json.prices).toEqual({ "gpt-4o-mini": { input: 0.2, output: 0.8 } });
    // Without a cost rule the limiter needs no prices.
    expect(aiRatelimitJson(parseGatewayConfig(CHAIN + "  ai_proxy:\n    prices: { x: { input: 1 } }\n", { env: {} }))).not.toHaveProperty("prices");
    expect(refusalOf(money.replace("        budget: 25\n", "        budget: 25\n        limit: 5\n")).message).toMatch(/rules\[1\]\.limit.*a cost rule takes budget/);
    expect(refusalOf(money.replace("        strategy: cost\n", "")).message).toMatch(/rules\[1\]\.budget.*applies only to strategy cost/);
    // A monthly budget: the calendar month, fixed only.
    const monthly = money.replace("        window: 1d\n", "        window: month\n");
    expect((aiRatelimitJson(parseGatewayConfig(monthly, { env: {} })).rules as any[])[1].window).toBe("month");
    expect(refusalOf(monthly.replace("        window: month\n", "        window: month\n        window_type: sliding\n")).message).toMatch(/rules\[1\]\.window_type.*calendar window/);
  });

  it("is valid against Envoy's protos, strictly, in both renderings", () => {
    for (const mock of [false, true]) {
      const r = validateEnvoyConfig(renderEnvoy(cfg, { mock }));
      expect(r.errors).toEqual([]);
      expect(r.warnings).toEqual([]);
      expect(r.newerFieldsUsed).toHaveLength(1); // request_body_buffer_limit
      // The filters' configurations, in their ECDS files: failure_policy four times, reload_config and
      // allow_on_headers_stop_iteration three times.
      const used: string[] = [];
      for (const [rel, doc] of Object.entries(renderEcds(cfg, { mock }))) {
        const e = validateEcdsYaml(stringify(doc), `sluice.${rel.replace(/^.*\//, "").replace(".yaml", "").replace(/-/g, "_")}`);
        expect(e.errors, rel).toEqual([]);
        expect(e.warnings, rel).toEqual([]);
        used.push(...e.newerFieldsUsed);
      }
      expect(used).toHaveLength(10);
    }
  });

  it("every filter accepts the configuration rendered for it (proxy_on_configure in the host)", async () => {
    const files = renderFiles(cfg);
    for (const [file, env] of [["envoy.yaml", ENV], ["envoy.mock.yaml", {}]] as const) {
      const h = await hostFromRendered(files, file, env);
      expect(h.logs.filter((l) => l.level === "error" || l.level === "critical"), file).toEqual([]);
      h.close();
    }
  });

  it("the access log prints every filter-state key the filters exchange (assembly/lib/keys.ts), internal ones aside", () => {
    const keys = ["keys.ts"].flatMap((f) => [...readFileSync(`assembly/lib/${f}`, "utf8").matchAll(/"sluice\.([a-z0-9_]+)"/g)].map((m) => m[1]));
    // The stream budget and the prompt estimate are messages between filters, not request facts.
    // A virtual key's scopes are the key's configuration, not a fact of the request. ai-cache's
    // capture cap and the answer ai-proxy leaves it are messages between the two.
    const internal = ["stream_budget", "ratelimit_prompt_estimate", "key_models", "key_pools", "cache_capture", "cache_answer"];
    expect([...LOG_KEYS].sort()).toEqual(keys.filter((k) => !internal.includes(k)).sort());
    const format = hcm(envoy).access_log[0].typed_config.log_format.json_format;
    for (const k of ["pool", "route_rule", "route_model", "task_type", "complexity", "ratelimit_rule", "attempts", "stream_cut"]) {
      expect(format[k]).toBe(`%FILTER_STATE(wasm.sluice.${k}:PLAIN)%`);
    }
  });

  it("stats_tags cover every label in the filters' metric names", () => {
    const labels = new Set<string>();
    for (const dir of readdirSync("assembly/filters")) {
      for (const f of readdirSync(join("assembly/filters", dir))) {
        for (const m of readFileSync(join("assembly/filters", dir, f), "utf8").matchAll(/"sluice\.[a-z_.]+((?:;[a-z_]+=)[^"]*)"/g)) {
          for (const l of m[1].matchAll(/;([a-z_]+)=/g)) labels.add(l[1]);
        }
        for (const m of readFileSync(join("assembly/filters", dir, f), "utf8").matchAll(/";([a-z_]+)="/g)) labels.add(m[1]);
      }
    }
    expect([...labels].sort()).toEqual(["action", "cause", "consumer", "detector", "instance", "key", "method", "model", "outcome", "provider", "reason", "request_type", "rule", "server", "status", "team", "tool", "upstream_key", "verdict"]);
    for (const l of labels) expect(METRIC_TAGS).toContain(l);
    expect(envoy.stats_config.stats_tags).toContainEqual({ tag_name: "rule", regex: "(;rule=([^;]*))" });
    expect(envoy.stats_config.stats_tags).toContainEqual({ tag_name: "cause", regex: "(;cause=([^;]*))" });
  });

  it("Istio: WasmPlugins ordered by priority, and one EnvoyFilter with the three filters before the router", () => {
    const files = renderIstio(cfg);
    const plugins = Object.entries(files).flatMap(([f, x]) => x.docs.filter((d: any) => d.kind === "WasmPlugin").map((d: any) => [f, d.spec.phase, d.spec.priority]));
    expect(plugins).toEqual([
      ["key-auth.yaml", "AUTHN", 100],
      ["ai-router.yaml", "UNSPECIFIED_PHASE", 30],
      ["ai-ratelimit.yaml", "UNSPECIFIED_PHASE", 20],
      ["ai-proxy.yaml", "UNSPECIFIED_PHASE", 10],
    ]);
    const ef = files[ISTIO_ENVOYFILTER].docs[0] as any;
    expect(ef.spec.configPatches.map((p: any) => p.patch.value.typed_config?.config?.name ?? p.applyTo)).toEqual(["ai-router", "ai-ratelimit", "ai-proxy", "HTTP_ROUTE", "NETWORK_FILTER", "LISTENER", ...Array(new Set(cfg.providers.map((p) => p.url.host)).size).fill("CLUSTER")]);
  });

  it("a disabled filter leaves the chain, and its stale Istio manifest leaves envoy/istio", () => {
    const dir = mkdtempSync(join(tmpdir(), "sluice-chain-"));
    writeFileSync(join(dir, "gateway.yaml"), CHAIN);
    render({ config: join(dir, "gateway.yaml"), outDir: dir, env: {} });
    expect(existsSync(join(dir, "istio", "ai-router.yaml"))).toBe(true);
    writeFileSync(join(dir, "istio", "mine.yaml"), "# not rendered: kept\n");
    writeFileSync(join(dir, "gateway.yaml"), CHAIN.replace("  ai_router:\n", "  ai_router:\n    enabled: false\n"));
    const { removed } = render({ config: join(dir, "gateway.yaml"), outDir: dir, env: {} });
    expect(removed).toEqual([join(dir, "istio", "ai-router.yaml")]);
    expect(existsSync(join(dir, "istio", "mine.yaml"))).toBe(true);
    const c = loadEnvoyConfig(join(dir, "envoy.yaml"));
    expect(c.filters.map((f) => f.name)).toEqual(["key-auth", "ai-ratelimit", "ai-proxy"]);
  });
});

describe("ai-router's embeddings (semantic rules)", () => {
  const semantic = (embeddings: string) =>
    CHAIN.replace(
      "      - name: complex\n",
      `      - name: billing
        pool: cheap
        when: { any: [{ keywords: [invoice] }, { semantic: { examples: ["I was charged twice"], threshold: 0.8 } }] }
      - name: complex
`,
    ).replace("    route_header: true\n", `    route_header: true\n    embeddings: ${embeddings}\n`);

  it("a providers[] instance: its cluster, endpoint path, authority and key variable; no extra cluster", () => {
    const cfg = parseGatewayConfig(semantic("{ instance: small, model: text-embedding-3-small, timeout_ms: 300 }"), { env: {} });
    expect(aiRouterJson(cfg, "env").embeddings).toEqual({
      cluster: "small", model: "text-embedding-3-small", path: "/v1/embeddings", authority: "api.openai.com", api_key_env: "OPENAI_API_KEY", timeout_ms: 300,
    });
    const envoy = withEcdsInline(renderEnvoy(cfg), renderEcds(cfg));
    expect(envoy.static_resources.clusters.map((c: any) => c.name)).toEqual(["small", "big"]);
    expect(hcm(envoy).http_filters[1].typed_config.config.vm_config.environment_variables.host_env_keys).toEqual(["OPENAI_API_KEY"]);
    expect(aiRouterJson(cfg, "mock").embeddings).toMatchObject({ cluster: "small", api_key: "sluice-mock-key" });
  });

  it("an endpoint of its own: the cluster sluice-embeddings (TLS, SNI), mocked like a provider, a ServiceEntry for Istio", async () => {
    const cfg = parseGatewayConfig(semantic("{ endpoint: 'https://emb.example.com/v1', api_key_env: EMB_KEY, model: e5 }"), { env: {} });
    const envoy = withEcdsInline(renderEnvoy(cfg), renderEcds(cfg));
    const cluster = envoy.static_resources.clusters.find((c: any) => c.name === "sluice-embeddings");
    expect(cluster.transport_socket.typed_config.sni).toBe("emb.example.com");
    expect(cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address).toEqual({ address: "emb.example.com", port_value: 443 });
    expect(JSON.parse(hcm(envoy).http_filters[1].typed_config.config.configuration.value).embeddings).toEqual({
      cluster: "sluice-embeddings", model: "e5", path: "/v1/embeddings", authority: "emb.example.com", api_key_env: "EMB_KEY",
    });
    expect(hcm(envoy).http_filters[1].typed_config.config.vm_config.environment_variables.host_env_keys).toEqual(["EMB_KEY"]);
    const mock = renderEnvoy(cfg, { mock: true }) as any;
    expect(mock.static_resources.clusters.find((c: any) => c.name === "sluice-embeddings").load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address).toEqual({ address: "mock", port_value: 18080 });
    for (const e of [envoy, mock]) expect(validateEnvoyConfig(e).errors).toEqual([]);
    const istio = renderIstio(cfg);
    expect((istio["ai-router.yaml"].docs[0] as any).spec.pluginConfig.embeddings.cluster).toBe("outbound|443||emb.example.com");
    expect((istio["providers.yaml"].docs as any[]).filter((d) => d.kind === "ServiceEntry").map((d) => d.spec.hosts[0])).toContain("emb.example.com");
    // The router accepts it (the examples are fetched later, from the embeddings cluster).
    const h = await hostFromRendered(renderFiles(cfg), "envoy.yaml", ENV, { "sluice-embeddings": "http://127.0.0.1:9" });
    h.close();
  });

  it("no semantic rule: embeddings are not rendered (no cluster, no key)", () => {
    const cfg = parseGatewayConfig(CHAIN.replace("    route_header: true\n", "    route_header: true\n    embeddings: { endpoint: 'https://emb.example.com/v1', model: e5 }\n"), { env: {} });
    expect(aiRouterJson(cfg, "env").embeddings).toBeUndefined();
    expect((renderEnvoy(cfg) as any).static_resources.clusters.map((c: any) => c.name)).toEqual(["small", "big"]);
  });
});

describe("distributed rate limiting: Envoy's global rate limit filter and envoyproxy/ratelimit", () => {
  const cfg = parseGatewayConfig(DISTRIBUTED, { env: {} });
  const envoy = renderEnvoy(cfg) as any;
  const route = () => hcm(envoy).route_config.virtual_hosts[0].routes[0];

  it("envoy.filters.http.ratelimit after ai-proxy, just before the router: domain sluice, fail open, gRPC to sluice-ratelimit", () => {
    const filters = hcm(envoy).http_filters;
    expect(filters.map((f: any) => f.name)).toEqual(["sluice.key_auth", "sluice.ai_router", "sluice.ai_ratelimit", "sluice.ai_proxy", "envoy.filters.http.ratelimit", "envoy.filters.http.router"]);
    expect(filters[4].typed_config).toEqual({
      "@type": "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit",
      domain: "sluice",
      failure_mode_deny: false,
      timeout: "0.25s",
      rate_limited_status: { code: "TooManyRequests" },
      rate_limit_service: { transport_api_version: "V3", grpc_service: { envoy_grpc: { cluster_name: "sluice-ratelimit" } } },
    });
    const cluster = envoy.static_resources.clusters.find((c: any) => c.name === RATELIMIT_CLUSTER);
    expect(cluster.type).toBe("STRICT_DNS");
    expect(cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address).toEqual({ address: "ratelimit.internal", port_value: 8081 });
    expect(cluster.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].explicit_http_config).toEqual({ http2_protocol_options: {} });
    // The local filter keeps its own configuration: distributed is gateway.yaml's, not the filter's.
    expect(aiRatelimitJson(cfg)).not.toHaveProperty("distributed");
    // docker compose: the service of envoy/docker-compose.yaml's profile distributed.
    const mock = renderEnvoy(cfg, { mock: true }) as any;
    expect(mock.static_resources.clusters.find((c: any) => c.name === RATELIMIT_CLUSTER).load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address).toEqual({ address: "ratelimit", port_value: 8081 });
  });

  it("per rule, two RateLimit entries in the route's RateLimitPerRoute: prompt estimate at request time, completion tokens at stream end", () => {
    const per = route().typed_per_filter_config["envoy.filters.http.ratelimit"];
    expect(per["@type"]).toBe("type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimitPerRoute");
    const expr = (key: string, text: string) => ({
      extension: {
        name: "envoy.rate_limit_descriptors.expr",
        typed_config: { "@type": "type.googleapis.com/envoy.extensions.rate_limit_descriptors.expr.v3.Descriptor", descriptor_key: key, text },
      },
    });
    const consumer = [{ generic_key: { descriptor_key: "rule", descriptor_value: "consumer-minute" } }, expr("consumer", "filter_state['wasm.sluice.consumer']")];
    const model = "string(filter_state['wasm.sluice.request_model'])";
    const team = [
      { generic_key: { descriptor_key: "rule", descriptor_value: "team-gpt" } },
      expr("when", `(${model}.startsWith('gpt-4o') || ${model} == 'o1') && string(filter_state['wasm.sluice.pool']) == 'capable'`),
      { request_headers: { header_name: "x-team", descriptor_key: "header:x-team" } },
      expr("model", "filter_state['wasm.sluice.request_model']"),
    ];
    const day = [{ generic_key: { descriptor_key: "rule", descriptor_value: "prompts-day" } }];
    expect(per.rate_limits).toEqual([
      // total_tokens
      { actions: consumer, hits_addend: { format: "%FILTER_STATE(wasm.sluice.ratelimit_prompt_estimate:PLAIN)%" } },
      { actions: consumer, apply_on_stream_done: true, hits_addend: { format: "%FILTER_STATE(wasm.sluice.completion_tokens:PLAIN)%" } },
      // completion_tokens: a check that adds nothing, then the completion
      { actions: team, hits_addend: { number: 0 } },
      { actions: team, apply_on_stream_done: true, hits_addend: { format: "%FILTER_STATE(wasm.sluice.completion_tokens:PLAIN)%" } },
      // prompt_tokens: no stream-end entry
      { actions: day, hits_addend: { format: "%FILTER_STATE(wasm.sluice.ratelimit_prompt_estimate:PLAIN)%" } },
    ]);
  });

  it("validates strictly; hits_addend, apply_on_stream_done and RateLimitPerRoute.rate_limits come from NEWER_FIELDS, and only they fail against the shipped protos", () => {
    for (const text of [renderFiles(cfg)["envoy.yaml"], renderFiles(cfg)["envoy.mock.yaml"]]) {
      const r = validateEnvoyYaml(text);
      expect(r.errors).toEqual([]);
      expect(r.warnings).toEqual([]);
      expect(r.types).toContain("envoy.extensions.filters.http.ratelimit.v3.RateLimit");
      expect(r.types).toContain("envoy.extensions.filters.http.ratelimit.v3.RateLimitPerRoute");
      expect(r.types).toContain("envoy.extensions.rate_limit_descriptors.expr.v3.Descriptor");
      const used = r.newerFieldsUsed.map((u) => u.replace(/ @ .*/, ""));
      // allow_on_headers_stop_iteration is in the wasm filters' ECDS files, not envoy.yaml.
      expect(new Set(used)).toEqual(new Set([
        "envoy.config.route.v3.Route.request_body_buffer_limit (Envoy >= 1.36.0)",
        "envoy.extensions.filters.http.ratelimit.v3.RateLimitPerRoute.rate_limits (Envoy >= 1.33.0)",
        "envoy.config.route.v3.RateLimit.hits_addend (Envoy >= 1.33.0)",
        "envoy.config.route.v3.RateLimit.apply_on_stream_done (Envoy >= 1.33.0)",
      ]));
      const old = validateEnvoyYaml(text, { newerFields: false }).errors.map((e) => e.replace(/^.*: unknown/, "unknown"));
      expect(new Set(old)).toEqual(new Set([
        "unknown field 'request_body_buffer_limit' in envoy.config.route.v3.Route",
        "unknown field 'hits_addend' in envoy.extensions.filters.http.ratelimit.v3.RateLimitConfig",
        "unknown field 'apply_on_stream_done' in envoy.extensions.filters.http.ratelimit.v3.RateLimitConfig",
      ]));
    }
    // The declared HitsAddend is checked like any message: an unknown member, a wrong type.
    const broken = structuredClone(envoy);
    const per = () => hcm(broken).route_config.virtual_hosts[0].routes[0].typed_per_filter_config["envoy.filters.http.ratelimit"];
    per().rate_limits[0].hits_addend = { formt: "%X%" };
    per().rate_limits[1].apply_on_stream_done = "yes";
    expect(validateEnvoyConfig(broken).errors).toEqual([
      expect.stringMatching(/rate_limits\[0\]\.hits_addend\.formt: unknown field 'formt' in envoy\.config\.route\.v3\.RateLimit\.HitsAddend$/),
      expect.stringMatching(/rate_limits\[1\]\.apply_on_stream_done: expected a boolean, got string "yes"$/),
    ]);
  });

  it("renders envoyproxy/ratelimit's configuration: domain sluice, rule -> (when) -> key parts, limit per unit", () => {
    expect(rateLimitServiceConfig(cfg)).toEqual({
      domain: "sluice",
      descriptors: [
        { key: "rule", value: "consumer-minute", descriptors: [{ key: "consumer", rate_limit: { unit: "minute", requests_per_unit: 1000 } }] },
        {
          key: "rule",
          value: "team-gpt",
          descriptors: [{ key: "when", value: "true", descriptors: [{ key: "header:x-team", descriptors: [{ key: "model", rate_limit: { unit: "hour", requests_per_unit: 200000 } }] }] }],
        },
        { key: "rule", value: "prompts-day", rate_limit: { unit: "day", requests_per_unit: 9000000 } },
      ],
    });
    const text = renderFiles(cfg)["ratelimit/config.yaml"];
    expect(parse(text)).toEqual(rateLimitServiceConfig(cfg));
    // Without distributed, the file is still there (the compose profile mounts it), with no descriptor.
    expect(parse(renderFiles(parseGatewayConfig(CHAIN, { env: {} }))["ratelimit/config.yaml"])).toEqual({ domain: "sluice", descriptors: [] });
  });

  it("distributed.rules picks the rules the service enforces; the others stay local", () => {
    const only = parseGatewayConfig(DISTRIBUTED.replace("      timeout: 250ms\n", "      timeout: 250ms\n      rules: [prompts-day]\n"), { env: {} });
    expect(only.aiRatelimit!.distributed!.rules.map((r) => r.name)).toEqual(["prompts-day"]);
    expect(rateLimitServiceConfig(only).descriptors).toHaveLength(1);
    expect((aiRatelimitJson(only).rules as unknown[]).length).toBe(3);
  });

  it("the local gateway runs the wasm chain and says it does not run the global filter (failure_mode_deny false: Envoy admits when the service cannot answer)", async () => {
    const files = renderFiles(cfg);
    const c = parseRendered(files);
    expect(c.filters.map((f) => f.name)).toEqual(["key-auth", "ai-router", "ai-ratelimit", "ai-proxy"]);
    expect(c.notRun).toEqual([{ name: "envoy.filters.http.ratelimit", why: expect.stringMatching(/failure_mode_deny false/) }]);
    const deny = structuredClone(envoy);
    hcm(deny).http_filters[4].typed_config.failure_mode_deny = true;
    expect(() => parseEnvoyConfig(stringify(deny), ecdsReaderOf(files))).toThrow(EnvoyConfigError);
    expect(() => parseEnvoyConfig(stringify(deny), ecdsReaderOf(files))).toThrow(/http_filters\[4\]: the local gateway has no rate limit service/);
    const h = await hostFromRendered(files, "envoy.yaml", ENV);
    h.close();
  });

  it("Istio: the EnvoyFilter adds the global filter after ai-proxy (the service's mesh cluster) and the route's descriptors", () => {
    const ef = renderIstio(cfg)[ISTIO_ENVOYFILTER].docs[0] as any;
    const patches = ef.spec.configPatches;
    expect(patches.map((p: any) => p.patch.value.name ?? p.applyTo)).toEqual(["sluice.ai_router", "sluice.ai_ratelimit", "sluice.ai_proxy", "envoy.filters.http.ratelimit", "HTTP_ROUTE", "envoy.filters.network.http_connection_manager", "LISTENER", "CLUSTER", "CLUSTER"]);
    expect(patches[3].patch.value.typed_config.rate_limit_service.grpc_service.envoy_grpc.cluster_name).toBe("outbound|8081||ratelimit.internal");
    for (const p of patches.slice(0, 4)) expect(validateEnvoyConfig(p.patch.value, { type: "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter" }).errors).toEqual([]);
    const routePatch = patches[4].patch.value;
    expect(routePatch.typed_per_filter_config).toEqual(route().typed_per_filter_config);
    // A MERGE patch is a fragment of the route: valid once it has the match the route already has.
    expect(validateEnvoyConfig({ match: { prefix: "/" }, ...routePatch }, { type: "envoy.config.route.v3.Route" }).errors).toEqual([]);
  });
});

describe("bad ai_router / ai_ratelimit sections: refused with line and field", () => {
  it("a rule's pool, or the default pool, that pools[] does not have", () => {
    const text = CHAIN.replace("pool: capable\n", "pool: capabel\n").replace("    route_header: true\n", "    route_header: true\n    default_pool: general\n");
    expect(refusalOf(text).message).toBe(
      `gateway.yaml:${at(text, "general")}: filters.ai_router.default_pool: no pool named 'general' (pools: cheap, capable)\n` +
        `gateway.yaml:${at(text, "capabel")}: filters.ai_router.rules[1].pool: no pool named 'capabel' (pools: cheap, capable)`,
    );
  });

  it("router rules: duplicate or reserved names, matchers, ranges, `in`, an unknown task, a semantic rule without embeddings", () => {
    const text = CHAIN.replace(
      "      - name: complex\n        pool: capable\n",
      `      - name: simple
        pool: capable
        when: { header: { name: x-team, exact: a, prefix: b } }
      - name: default
        pool: cheap
        when: { tokens: { gt: 9, lt: 3 }, in: conversation, model: x }
      - name: poetry
        pool: cheap
        when: { task: [code, poetry] }
      - name: similar
        pool: cheap
        when: { not: { semantic: { examples: [a], threshold: 0.5 } } }
`,
    );
    expect(refusalOf(text).message).toBe(
      `gateway.yaml:${at(text, "poetry]")}: filters.ai_router.rules[3].when.task[1]: must be one of: code, math, reasoning, summarize, extract, translate, chat (got "poetry")`,
    );
    // Schema errors come first, alone; with the task fixed, the other checks speak, in line order.
    const fixed = text.replace("[code, poetry]", "[code, math]");
    expect(refusalOf(fixed).message.split("\n")).toEqual([
      `gateway.yaml:${at(fixed, "route_header")}: filters.ai_router: semantic conditions need the embeddings section (the instance that embeds the examples and prompts)`,
      `gateway.yaml:${at(fixed, "simple\n        pool: capable")}: filters.ai_router.rules[1].name: duplicate rule name 'simple' (also rules[0])`,
      `gateway.yaml:${at(fixed, "{ name: x-team")}: filters.ai_router.rules[1].when.header: needs exactly one of exact, prefix, regex, present`,
      `gateway.yaml:${at(fixed, "default\n")}: filters.ai_router.rules[2].name: 'default' is reserved (it names the default pool in sluice.route_rule)`,
      `gateway.yaml:${at(fixed, "{ gt: 9")}: filters.ai_router.rules[2].when.tokens: gt must be less than lt (no value could match)`,
      `gateway.yaml:${at(fixed, "conversation")}: filters.ai_router.rules[2].when.in: applies to keywords, regex, task and complexity in the same object; none is given`,
    ]);
  });

  it("a complexity out of 0..1 and an unknown condition are schema errors naming the field", () => {
    const text = CHAIN.replace("complexity: { lt: 0.3 }", "complexity: { lt: 1.5 }, mood: happy");
    expect(refusalOf(text).message.split("\n")).toEqual([
      `gateway.yaml:${at(text, "1.5")}: filters.ai_router.rules[0].when.complexity.lt: must be <= 1 (got 1.5)`,
      `gateway.yaml:${at(text, "mood")}: filters.ai_router.rules[0].when.mood: unknown field 'mood' (allowed: header, path, consumer, group, model, keywords, regex, in, tokens, messages, tools, images, json_mode, task, complexity, semantic, any, all, not)`,
    ]);
  });

  it("embeddings: an unknown instance, a provider without OpenAI's /embeddings, both or neither of instance and endpoint", () => {
    const base = CHAIN.replace("        when: { complexity: { lt: 0.3 } }\n", "        when: { semantic: { examples: [hi], threshold: 0.7 } }\n");
    const withEmb = (e: string) => base.replace("    route_header: true\n", `    route_header: true\n    embeddings: ${e}\n`);
    const unknown = withEmb("{ instance: nope, model: m }");
    expect(refusalOf(unknown).message).toBe(`gateway.yaml:${at(unknown, "nope")}: filters.ai_router.embeddings.instance: no provider instance named 'nope' (providers: small, big)`);
    const anthropic = withEmb("{ instance: big, model: m }");
    expect(refusalOf(anthropic).message).toMatch(new RegExp(`^gateway\\.yaml:${at(anthropic, "big, model")}: filters\\.ai_router\\.embeddings\\.instance: 'big' is a anthropic instance; the router's embeddings speak OpenAI's POST /embeddings`));
    const both = withEmb("{ instance: small, endpoint: 'http://x:1/v1', model: m }");
    expect(refusalOf(both).message).toBe(`gateway.yaml:${at(both, "{ instance: small")}: filters.ai_router.embeddings: give instance (a providers[] entry) or endpoint, exactly one`);
    const key = withEmb("{ instance: small, api_key_env: K, model: m }");
    expect(refusalOf(key).message).toBe(`gateway.yaml:${at(key, "K, model")}: filters.ai_router.embeddings.api_key_env: the key comes from the instance 'small'; api_key_env applies to an endpoint`);
  });

  it("rate limit rules: a bad window (format, zero, too long), an unknown key part, weights without weighted, duplicates", () => {
    const bad = CHAIN.replace("window: 1m", "window: 1w");
    expect(refusalOf(bad).message).toBe(`gateway.yaml:${at(bad, "1w")}: filters.ai_ratelimit.rules[0].window: "1w" is not valid: a duration such as 30s, 1m, 24h, 7d, or whole seconds; or week or month (UTC calendar windows, fixed)`);
    const zero = CHAIN.replace("window: 1m", "window: 0m");
    expect(refusalOf(zero).message).toBe(`gateway.yaml:${at(zero, "0m")}: filters.ai_ratelimit.rules[0].window: must be longer than 0 seconds`);
    const long = CHAIN.replace("window: 1m", "window: 400d");
    expect(refusalOf(long).message).toBe(`gateway.yaml:${at(long, "400d")}: filters.ai_ratelimit.rules[0].window: must be at most 366 days`);
    const part = CHAIN.replace("key: [consumer]", "key: [consumer, tenant]");
    expect(refusalOf(part).message).toBe(`gateway.yaml:${at(part, "tenant")}: filters.ai_ratelimit.rules[0].key[1]: "tenant" is not valid: a key part: consumer, group, key (a virtual key's id), team (a virtual key's team), model, pool, instance, path, mcp_server, mcp_tool, mcp_method (an MCP call, docs/mcp.md), a2a_agent, a2a_method (an A2A call, docs/a2a.md) or header:<name>`);
    const when = CHAIN.replace("key: [consumer]", "key: [consumer]\n        when: { tenant: [a] }");
    expect(refusalOf(when).message).toBe(`gateway.yaml:${at(when, "tenant")}: filters.ai_ratelimit.rules[0].when.tenant: unknown key part 'tenant' (expected consumer, group, key, team, model, pool, instance, path, mcp_server, mcp_tool, mcp_method, a2a_agent, a2a_method or header:<name>)`);
    const weights = CHAIN.replace("window: 1m", "window: 1m\n        weights: { completion: 4 }");
    expect(refusalOf(weights).message).toBe(`gateway.yaml:${at(weights, "{ completion")}: filters.ai_ratelimit.rules[0].weights: applies only to strategy weighted`);
    const dup = CHAIN.replace("        window: 1m\n", "        window: 1m\n      - name: consumer-minute\n        limit: 5\n        window: 1s\n");
    expect(refusalOf(dup).message).toBe(`gateway.yaml:${at(dup, "consumer-minute\n        limit: 5")}: filters.ai_ratelimit.rules[1].name: duplicate rule name 'consumer-minute' (also rules[0])`);
    const none = CHAIN.replace(/    rules:\n      - name: consumer-minute\n        key: \[consumer\]\n        limit: 1000\n        window: 1m\n/, "    rules: []\n");
    expect(refusalOf(none).message).toBe(`gateway.yaml:${at(none, "default_max_tokens")}: filters.ai_ratelimit: ai-ratelimit needs at least one rule under rules (or enabled: false)`);
    const pool = CHAIN.replace("  ai_router:\n", "  ai_router:\n    enabled: false\n").replace("key: [consumer]", "key: [pool]");
    expect(refusalOf(pool).message).toMatch(/filters\.ai_ratelimit\.rules\[0\]: uses the key part 'pool', which only ai-router sets/);
  });

  it("distributed: weighted, sliding, a window the service lacks, instance and path parts, a limit over uint32, an unknown rule: each names its rule's field", () => {
    const text = DISTRIBUTED.replace("        strategy: completion_tokens\n", "        strategy: weighted\n        weights: { prompt: 1, completion: 4 }\n")
      .replace("        window: 86400\n", "        window: 90s\n        window_type: sliding\n")
      .replace("key: [consumer]", "key: [consumer, instance]")
      .replace("limit: 200000", "limit: 5000000000");
    const lines = refusalOf(text).message.split("\n");
    const keepLocal = "; keep it local by listing the other rules in distributed.rules";
    expect(lines).toEqual([
      `gateway.yaml:${at(text, "instance]")}: filters.ai_ratelimit.rules[0].key[1]: rule 'consumer-minute' cannot be distributed: instance rules only meter (they never reject locally)${keepLocal}`,
      `gateway.yaml:${at(text, "5000000000")}: filters.ai_ratelimit.rules[1].limit: rule 'team-gpt' cannot be distributed: the rate limit service's requests_per_unit is at most 4294967295${keepLocal}`,
      `gateway.yaml:${at(text, "weighted")}: filters.ai_ratelimit.rules[1].strategy: rule 'team-gpt' cannot be distributed: a weighted cost is not one token count, and the service's hits_addend takes one plain number (total_tokens, prompt_tokens and completion_tokens map)${keepLocal}`,
      `gateway.yaml:${at(text, "90s")}: filters.ai_ratelimit.rules[2].window: rule 'prompts-day' cannot be distributed: the rate limit service's windows are 1s, 1m, 1h, 1d, 7d, 30d and 365d (got "90s")${keepLocal}`,
      `gateway.yaml:${at(text, "sliding")}: filters.ai_ratelimit.rules[2].window_type: rule 'prompts-day' cannot be distributed: the rate limit service counts fixed windows only${keepLocal}`,
    ]);
    // Listing rules: a weighted rule left out is fine; a listed one is refused; an unknown name too.
    const listed = DISTRIBUTED.replace("        strategy: completion_tokens\n", "        strategy: weighted\n        weights: { completion: 4 }\n")
      .replace("      timeout: 250ms\n", "      timeout: 250ms\n      rules: [consumer-minute, team-gpt, nope]\n");
    expect(refusalOf(listed).message.split("\n")).toEqual([
      expect.stringMatching(new RegExp(`^gateway\\.yaml:${at(listed, "weighted")}: filters\\.ai_ratelimit\\.rules\\[1\\]\\.strategy: rule 'team-gpt' cannot be distributed: .*; keep it local by leaving it out of distributed\\.rules$`)),
      `gateway.yaml:${at(listed, "nope")}: filters.ai_ratelimit.distributed.rules[2]: no rule named 'nope' (rules: consumer-minute, team-gpt, prompts-day)`,
    ]);
    expect(() => parseGatewayConfig(listed.replace("team-gpt, nope", "prompts-day"), { env: {} })).not.toThrow();
    const path = DISTRIBUTED.replace("key: [consumer]", "key: [path]");
    expect(refusalOf(path).message).toMatch(/rules\[0\]\.key\[0\]: rule 'consumer-minute' cannot be distributed: ai-proxy rewrites :path/);
    const noService = DISTRIBUTED.replace("      service: { address: ratelimit.internal, port: 8081 }\n", "");
    expect(refusalOf(noService).message).toBe(`gateway.yaml:${at(noService, "timeout: 250ms")}: filters.ai_ratelimit.distributed: missing required field 'service'`);
  });
});

describe("the shipped gateway.yaml", () => {
  let cfg: GatewayConfig;
  beforeAll(() => {
    cfg = parseGatewayConfig(readFileSync("gateway.yaml", "utf8"), { env: {} });
  });

  it("enables ai-router (cheap/capable by complexity for model auto) and ai-ratelimit (tokens per consumer per minute)", () => {
    expect(cfg.aiRouter!.json.rules).toEqual([
      { name: "simple", pool: "cheap", when: { model: "auto", complexity: { lt: 0.3 } } },
      { name: "complex", pool: "capable", when: { model: "auto" } },
    ]);
    expect(cfg.pools).toEqual([
      { name: "cheap", instances: ["openai-mini", "gemini-flash"], algorithm: "weighted_round_robin" },
      { name: "capable", instances: ["openai-4o", "claude-sonnet"] },
    ]);
    expect(cfg.aiRatelimit!.json.rules).toEqual([{ name: "consumer-minute", key: ["consumer"], limit: 50000, window: "1m" }]);
    expect(cfg.aiRatelimit!.distributed).toBeNull();
    expect(envKeys(cfg)).toEqual(["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "DEEPSEEK_API_KEY", "MISTRAL_API_KEY"]);
    expect((aiProxyJson(cfg, "env").pools as unknown[]).length).toBe(2);
  });

  it("its commented distributed example renders and validates once uncommented", () => {
    const text = readFileSync("gateway.yaml", "utf8").replace("    # distributed:\n    #   service: { address: ratelimit, port: 8081 }\n    #   domain: sluice\n", "    distributed:\n      service: { address: ratelimit, port: 8081 }\n      domain: sluice\n");
    const d = parseGatewayConfig(text, { env: {} });
    expect(d.aiRatelimit!.distributed!.rules.map((r) => [r.name, r.unit, r.limit])).toEqual([["consumer-minute", "minute", 50000]]);
    for (const mock of [false, true]) expect(validateEnvoyConfig(renderEnvoy(d, { mock })).errors).toEqual([]);
  });
});
