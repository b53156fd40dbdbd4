// gateway.yaml -> envoy/envoy.yaml, envoy.mock.yaml and Istio manifests: schema errors that name the
// line and field, nothing half-written, and strict validation of the result against Envoy's own v3
// API protos (from @grpc/grpc-js-xds), which must also catch deliberately broken configs.
import { describe, it, expect, beforeAll } from "vitest";
import { mkdtempSync, readFileSync, readdirSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, parseAllDocuments, stringify } from "yaml";
import { compileAccessLog } from "../host/access-log.js";
import { GatewayConfigError, loadGatewayConfig, parseGatewayConfig } from "../cli/gateway-config.js";
import { render, renderFiles, renderEnvoy, aiProxyJson, istioCluster, accessLogFormat, ENVOY_VERSION_FLOOR } from "../cli/render.js";
import { NEWER_FIELDS, skippedProtos, validateEcdsYaml, validateEnvoyConfig, validateEnvoyYaml, loadEnvoyApi } from "../cli/envoy-validate.js";
import { loadEnvoyConfig, parseEnvoyConfig as parseEnvoyText } from "../host/envoy-config.js";
import { ecdsReaderOf, parseRendered } from "./fixtures/ecds.js";
import { MINIMAL_GATEWAY, refusalOf } from "./fixtures/gateway-yaml.js";

const GATEWAY = readFileSync("gateway.yaml", "utf8");
const BASE = MINIMAL_GATEWAY;


describe("gateway.yaml: schema and checks, with line and field", () => {
  it("the shipped gateway.yaml is valid and renders every file", () => {
    const cfg = parseGatewayConfig(GATEWAY, { env: {} });
    expect(cfg.providers.map((p) => p.name)).toEqual(["openai", "anthropic", "gemini", "deepseek", "mistral", "openai-mini", "gemini-flash", "openai-4o", "claude-sonnet"]);
    expect(cfg.pools.map((p) => p.name)).toEqual(["cheap", "capable"]);
    expect(cfg.aiRouter?.json.rules).toHaveLength(2);
    expect(cfg.aiRatelimit?.json.rules).toHaveLength(1);
    const ecds = ["ai-proxy", "ai-ratelimit", "ai-router", "key-auth"];
    expect(Object.keys(renderFiles(cfg)).sort()).toEqual([
      ...ecds.map((f) => `ecds-mock/${f}.yaml`), ...ecds.map((f) => `ecds/${f}.yaml`),
      "envoy.mock.yaml", "envoy.yaml", "istio/ai-proxy.yaml", "istio/ai-ratelimit.yaml", "istio/ai-router.yaml", "istio/key-auth.yaml",
      "istio/providers.yaml", "istio/sluice-envoyfilter.yaml", "istio/stats-bootstrap.yaml", "ratelimit/config.yaml",
    ]);
  });

  it("envoy/ holds what `npm run render` makes of gateway.yaml (re-render after editing it)", () => {
    const files = renderFiles(loadGatewayConfig("gateway.yaml", { env: {} }));
    for (const [rel, text] of Object.entries(files)) expect(readFileSync(join("envoy", rel), "utf8"), rel).toBe(text);
  });

  it("an unknown provider names the field, its line and the allowed values", () => {
    const e = refusalOf(BASE.replace("provider: openai", "provider: openia"));
    expect(e.message).toMatch(/^gateway\.yaml:8:15: providers\[0\]\.provider: must be one of: openai, azure-openai, anthropic, gemini, deepseek, mistral, openai-compatible, bedrock, bedrock-anthropic, vertex, vertex-anthropic \(got "openia"\)$/);
  });

  it("a missing required key names the object it is missing from", () => {
    const e = refusalOf(BASE.replace("    provider: openai\n", ""));
    expect(e.message).toBe("gateway.yaml:7:5: providers[0]: missing required field 'provider'");
    const noCredential = refusalOf(BASE.replace("    api_key_env: OPENAI_API_KEY\n", ""));
    expect(noCredential.message).toContain("gateway.yaml:7:5: providers[0]: missing required field 'api_key_env'");
    const azure = refusalOf(BASE.replace("provider: openai", "provider: azure-openai"));
    expect(azure.message).toBe("gateway.yaml:7:5: providers[0]: missing required field 'endpoint'");
  });

  it("a wrong type names the field and what was given", () => {
    const e = refusalOf(BASE.replace("port: 10000", "port: ten-thousand"));
    expect(e.message).toBe('gateway.yaml:2:19: listener.port: must be an integer (got a string)');
    const keys = refusalOf(BASE.replace("keys: [key-a]", "keys: key-a"));
    expect(keys.message).toBe("gateway.yaml:5:11: consumers[0].keys: must be a list (got a string)");
  });

  it("an unknown field points at its key", () => {
    const e = refusalOf(BASE.replace("    api_key_env: OPENAI_API_KEY", "    api_key_env: OPENAI_API_KEY\n    apikey: x"));
    expect(e.message).toMatch(/^gateway\.yaml:10:5: providers\[0\]\.apikey: unknown field 'apikey' \(allowed: name, provider, api_key_env, api_key, endpoint,/);
  });

  it("reports every problem at once, in line order", () => {
    const e = refusalOf(BASE.replace("port: 10000", "port: 0").replace("provider: openai", "provider: nope"));
    expect(e.problems.map((p) => p.field)).toEqual(["listener.port", "providers[0].provider"]);
  });

  it("YAML syntax errors carry their position", () => {
    const e = refusalOf("listener: { port: 1\nproviders: [");
    expect(e.problems[0].line).toBeGreaterThan(0);
    expect(e.message).toMatch(/^gateway\.yaml:\d+:\d+: /);
  });

  it("checks what a schema cannot: duplicate names and keys, env: keys, both credentials, a router pool that does not exist", () => {
    const dupName = refusalOf(BASE + "  - name: openai\n    provider: anthropic\n    api_key_env: ANTHROPIC_API_KEY\n");
    expect(dupName.message).toBe("gateway.yaml:10:11: providers[1].name: duplicate provider instance name 'openai' (also providers[0])");
    const dupKey = refusalOf(BASE.replace("    keys: [key-a]", "    keys: [key-a]\n  - name: team-b\n    keys: [key-a]"));
    expect(dupKey.message).toBe("gateway.yaml:7:12: consumers[1].keys[0]: duplicate key (also given to consumer 'team-a')");
    expect(dupKey.message).not.toContain("key-a]"); // keys are never printed
    const env = refusalOf(BASE.replace("[key-a]", "[env:TEAM_A_KEY]"));
    expect(env.message).toBe("gateway.yaml:5:12: consumers[0].keys[0]: environment variable TEAM_A_KEY is not set (the key is read from it when rendering)");
    const both = refusalOf(BASE + "    api_key: sk-inline\n");
    expect(both.message).toBe("gateway.yaml:10:14: providers[0].api_key: give api_key or api_key_env, not both");
    const router = refusalOf(BASE + "filters:\n  ai_router:\n    rules: [{ name: a, pool: p }]\n");
    expect(router.message).toBe("gateway.yaml:12:30: filters.ai_router.rules[0].pool: no pool named 'p' (gateway.yaml has no pools: add them under pools)");
    // A section with enabled: false is checked by the schema but renders nothing.
    const off = parseGatewayConfig(BASE + "filters:\n  ai_router:\n    enabled: false\n  ai_ratelimit:\n    enabled: false\n", { env: {} });
    expect([off.aiRouter, off.aiRatelimit]).toEqual([null, null]);
  });

  it("hashes every consumer key: envoy.yaml never holds a plain key", () => {
    const cfg = parseGatewayConfig(BASE.replace("[key-a]", "[plain-secret-1, env:TEAM_A_KEY]"), { env: { TEAM_A_KEY: "secret-from-env" } });
    const files = Object.values(renderFiles(cfg)).join("\n");
    expect(cfg.consumers[0].keys).toEqual([expect.stringMatching(/^sha256:[0-9a-f]{64}$/), expect.stringMatching(/^sha256:[0-9a-f]{64}$/)]);
    expect(files).not.toContain("plain-secret-1");
    expect(files).not.toContain("secret-from-env");
  });

  it("a bad gateway.yaml fails render and leaves envoy/ as it was, with no temporary files", () => {
    const dir = mkdtempSync(join(tmpdir(), "sluice-render-"));
    const good = join(dir, "gateway.yaml");
    writeFileSync(good, BASE);
    render({ config: good, outDir: join(dir, "envoy"), env: {} });
    const before = readFileSync(join(dir, "envoy", "envoy.yaml"), "utf8");
    writeFileSync(good, BASE.replace("provider: openai", "provider: openia"));
    expect(() => render({ config: good, outDir: join(dir, "envoy"), env: {} })).toThrow(/providers\[0\]\.provider/);
    expect(readFileSync(join(dir, "envoy", "envoy.yaml"), "utf8")).toBe(before);
    const fresh = join(dir, "fresh");
    expect(() => render({ config: good, outDir: fresh, env: {} })).toThrow(GatewayConfigError);
    expect(existsSync(fresh)).toBe(false);
    const all = [...readdirSync(join(dir, "envoy")), ...readdirSync(join(dir, "envoy", "istio"))];
    expect(all.filter((f) => f.includes(".tmp-"))).toEqual([]);
  });
});

describe("provider clusters: no Envoy health checks (ai-proxy's health routes traffic)", () => {
  it("renders no health_checks or outlier_detection on a one-endpoint cluster", () => {
    const envoy = renderEnvoy(parseGatewayConfig(BASE, { env: {} })) as any;
    const c = envoy.static_resources.clusters.find((x: any) => x.name === "openai");
    expect(c.load_assignment.endpoints[0].lb_endpoints).toHaveLength(1);
    expect(c).not.toHaveProperty("health_checks");
    expect(c).not.toHaveProperty("outlier_detection");
  });

  it("an old health_check still loads, renders nothing and is named in a warning that says what to use", () => {
    const cfg = parseGatewayConfig(BASE + "    health_check: { type: http, path: /v1/models, interval: 5s }\n", { env: {} });
    expect(cfg.warnings).toEqual([expect.stringMatching(/^gateway\.yaml:10:\d+: providers\[0\]\.health_check: ignored: .*filters\.ai_proxy\.health.*docs\/health\.md$/)]);
    expect(renderFiles(cfg)["envoy.yaml"]).not.toMatch(/health_check|outlier/);
    expect(parseGatewayConfig(BASE, { env: {} }).warnings).toEqual([]);
  });
});

describe("access log for operators", () => {
  it("adds response flags, upstream host, transport failure reason, the provider's request id and byte counts, each one whole operator (typed)", () => {
    const f = accessLogFormat();
    expect(f).toMatchObject({
      response_flags: "%RESPONSE_FLAGS%",
      upstream_host: "%UPSTREAM_HOST%",
      upstream_transport_failure_reason: "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
      provider_request_id: "%RESP(X-REQUEST-ID?REQUEST-ID)%",
      request_id: "%REQ(X-REQUEST-ID)%",
      bytes_received: "%BYTES_RECEIVED%",
      bytes_sent: "%BYTES_SENT%",
    });
    // The local gateway compiles every operator the rendered format uses.
    expect(() => compileAccessLog({ json: f })).not.toThrow();
  });
});

describe("timeouts: connect, first_byte, idle, total (four Envoy settings)", () => {
  const routeOf = (envoy: any) => envoy.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].route;

  it("defaults: connect 5s, first byte 120s (per_try_timeout, no retries), idle 180s, and the route timeout written as 0s (off), since Envoy's default of 15s would cut streams", () => {
    const cfg = parseGatewayConfig(BASE, { env: {} });
    expect(cfg.timeouts).toEqual({ connect: "5s", firstByte: "120s", idle: "180s", total: "0s" });
    const envoy = renderEnvoy(cfg) as any;
    expect(routeOf(envoy)).toMatchObject({ timeout: "0s", idle_timeout: "180s", retry_policy: { num_retries: 0, per_try_timeout: "120s" } });
    expect(envoy.static_resources.clusters[0].connect_timeout).toBe("5s");
    expect(validateEnvoyConfig(envoy).errors).toEqual([]);
    // The local gateway reads the same four values back.
    expect(parseRendered(renderFiles(cfg)).route).toMatchObject({ timeoutMs: 0, idleTimeoutMs: 180_000, firstByteTimeoutMs: 120_000 });
  });

  it("given values reach envoy.yaml and the Istio manifests (route MERGE: no retries, the total timeout once set; DestinationRule connectTimeout)", () => {
    const cfg = parseGatewayConfig(BASE + "timeouts: { connect: 2s, first_byte: 500ms, idle: 1m, total: 10m }\n", { env: {} });
    expect(routeOf(renderEnvoy(cfg))).toMatchObject({ timeout: "600s", idle_timeout: "60s", retry_policy: { per_try_timeout: "0.5s" } });
    const files = renderFiles(cfg);
    const ef = parseAllDocuments(files["istio/sluice-envoyfilter.yaml"]).map((d) => d.toJS()).find((d) => d?.kind === "EnvoyFilter");
    const route = ef.spec.configPatches.find((p: any) => p.applyTo === "HTTP_ROUTE").patch.value.route;
    expect(route).toMatchObject({ timeout: "600s", idle_timeout: "60s", retry_policy: { retry_on: "retriable-headers", num_retries: 0, per_try_timeout: "0.5s" } });
    const dr = parseAllDocuments(files["istio/providers.yaml"]).map((d) => d.toJS()).find((d) => d?.kind === "DestinationRule");
    expect(dr.spec.trafficPolicy.connectionPool.tcp.connectTimeout).toBe("2s");
    // first_byte 0s (off) renders no retry policy at all.
    const off = parseGatewayConfig(BASE + "timeouts: { first_byte: 0s }\n", { env: {} });
    expect(routeOf(renderEnvoy(off)).retry_policy).toBeUndefined();
  });

  it("refuses, with line and field, a first_byte the idle or total timeout would always beat, a zero connect, and the old `request` key", () => {
    expect(refusalOf(BASE + "timeouts:\n  first_byte: 3m\n").message).toBe(
      "gateway.yaml:11:15: timeouts.first_byte: first_byte (3m) must be below idle (180s): the idle timeout would cut the wait for the first byte first",
    );
    expect(refusalOf(BASE + "timeouts:\n  first_byte: 30s\n  total: 30s\n").message).toBe("gateway.yaml:12:10: timeouts.total: total (30s) must be above first_byte (30s) or 0s (off)");
    expect(refusalOf(BASE + "timeouts:\n  connect: 0s\n").message).toBe("gateway.yaml:11:12: timeouts.connect: must be above 0 (Envoy requires a connect timeout)");
    expect(refusalOf(BASE + "timeouts:\n  request: 300s\n").message).toBe(
      "gateway.yaml:11:3: timeouts.request: 'request' was split: the wait for the answer is first_byte; total (off by default) would cut every stream at that age",
    );
  });

  it("the envoy.yaml validator warns of timeouts Envoy accepts but that cut streams or never fire", () => {
    const envoy = renderEnvoy(parseGatewayConfig(BASE, { env: {} })) as any;
    expect(validateEnvoyConfig(envoy).warnings).toEqual([]);
    const route = routeOf(envoy);
    delete route.timeout;
    route.idle_timeout = "60s";
    const w = validateEnvoyConfig(envoy).warnings;
    expect(w).toHaveLength(3);
    expect(w[0]).toMatch(/routes\[0\]\.route: no timeout: Envoy's default of 15s cuts every response at 15 s, streams included/);
    expect(w[1]).toMatch(/per_try_timeout \(120s\) is not below timeout \(15s\): Envoy drops it/);
    expect(w[2]).toMatch(/idle_timeout \(60s\) is not above retry_policy\.per_try_timeout \(120s\)/);
    expect(validateEnvoyConfig({ cluster_header: "x", timeout: "300s" }, { type: "envoy.config.route.v3.RouteAction" }).warnings).toEqual([]);
  });

  it("the local gateway refuses an envoy.yaml route that would retry (it does not), and drops a per-try timeout at or above the route timeout as Envoy does", () => {
    const files = renderFiles(parseGatewayConfig(BASE + "timeouts: { first_byte: 20s, total: 60s }\n", { env: {} }));
    const text = files["envoy.yaml"];
    const parseEnvoyConfig = (t: string) => parseEnvoyText(t, ecdsReaderOf(files));
    expect(parseEnvoyConfig(text).route).toMatchObject({ timeoutMs: 60_000, firstByteTimeoutMs: 20_000 });
    expect(() => parseEnvoyConfig(text.replace(/num_retries: 0(\n *)/, "num_retries: 2$1retry_on: 5xx$1"))).toThrow(/does not retry/);
    expect(parseEnvoyConfig(text.replace("timeout: 60s", "timeout: 10s")).route.firstByteTimeoutMs).toBe(0);
  });
});

describe("envoy.yaml against Envoy's v3 API (protos shipped in @grpc/grpc-js-xds)", () => {
  beforeAll(() => {
    loadEnvoyApi();
  });

  it.each(["envoy.yaml", "envoy.mock.yaml"])("%s is valid, strictly", (file) => {
    const r = validateEnvoyYaml(readFileSync(join("envoy", file), "utf8"));
    expect(r.errors).toEqual([]);
    expect(r.warnings).toEqual([]); // no deprecated field set
    expect([...r.types].sort()).toEqual([
      "envoy.extensions.access_loggers.file.v3.FileAccessLog",
      "envoy.extensions.filters.http.router.v3.Router",
      "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
      ...(file === "envoy.yaml" ? ["envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"] : []),
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
    ].sort());
  });

  it("the shipped protos predate failure_policy, reload_config, allow_on_headers_stop_iteration and request_body_buffer_limit: the fields of envoy.yaml validated from NEWER_FIELDS", () => {
    const text = readFileSync("envoy/envoy.yaml", "utf8");
    const r = validateEnvoyYaml(text);
    const field = (f: string, since: string, at: string) => expect.stringMatching(new RegExp(`^${f.replace(/\./g, "\\.")} \\(Envoy >= ${since.replace(/\./g, "\\.")}\\) @ .*${at.replace(/[[\]]/g, "\\$&")}`));
    const plugin = (f: string, since: string, i: number) => field(`envoy.extensions.wasm.v3.PluginConfig.${f}`, since, `http_filters[${i}].typed_config.config.${f}`);
    expect(r.newerFieldsUsed).toEqual([
      expect.stringMatching(/^envoy\.config\.route\.v3\.Route\.request_body_buffer_limit \(Envoy >= 1\.36\.0\) @ .*routes\[0\]/),
    ]);
    // Against the shipped protos alone, those fields (and nothing else) are unknown.
    const strict = validateEnvoyYaml(text, { newerFields: false });
    expect(strict.errors).toEqual([expect.stringContaining("unknown field 'request_body_buffer_limit' in envoy.config.route.v3.Route")]);
    // failure_policy, reload_config and allow_on_headers_stop_iteration are in the ECDS files of the three filters that hold headers.
    for (const f of ["ai-router", "ai-ratelimit", "ai-proxy"]) {
      const ecds = readFileSync(`envoy/ecds/${f}.yaml`, "utf8");
      const name = `sluice.${f.replace(/-/g, "_")}`;
      const fields = [["failure_policy", "1.33.0"], ["reload_config", "1.33.0"], ["allow_on_headers_stop_iteration", "1.35.0"]];
      expect(validateEcdsYaml(ecds, name).newerFieldsUsed).toEqual(
        fields.map(([f, v]) => `envoy.extensions.wasm.v3.PluginConfig.${f} (Envoy >= ${v}) @ resources[0].typed_config.config.${f}`),
      );
      expect(validateEcdsYaml(ecds, name, { newerFields: false }).errors).toEqual(
        fields.map(([f]) => `resources[0].typed_config.config.${f}: unknown field '${f}' in envoy.extensions.wasm.v3.PluginConfig`),
      );
    }
    // The others serve distributed rate limiting (test/render-chain.test.ts).
    expect(NEWER_FIELDS.map((f) => `${f.message}.${f.field}`)).toEqual([
      "envoy.extensions.wasm.v3.PluginConfig.failure_policy",
      "envoy.extensions.wasm.v3.PluginConfig.reload_config",
      "envoy.extensions.wasm.v3.PluginConfig.allow_on_headers_stop_iteration",
      "envoy.config.route.v3.Route.request_body_buffer_limit",
      "envoy.config.route.v3.RateLimit.hits_addend",
      "envoy.config.route.v3.RateLimit.apply_on_stream_done",
      "envoy.extensions.filters.http.ratelimit.v3.RateLimitPerRoute.rate_limits",
      "envoy.config.rbac.v3.Principal.sourced_metadata",
      "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit.rate_limits",
      "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit.max_dynamic_descriptors",
      // gateway.yaml opentelemetry (test/render-opentelemetry.test.ts)
      "envoy.type.tracing.v3.CustomTag.value",
      "envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig.grpc_service",
      "envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig.log_name",
    ]);
    // Shipped protos left out because they import protos the package does not ship: tracing and
    // metrics-service ones only, none that Sluice's config uses (the OpenTelemetry access logger's imports
    // OpenTelemetry's common types, which cli/protos supplies).
    expect(skippedProtos).toEqual([
      "envoy/config/trace/v3/opencensus.proto",
      "envoy/config/trace/v3/trace.proto",
      "envoy/service/metrics/v3/metrics_service.proto",
      "envoy/service/trace/v3/trace_service.proto",
    ]);
  });

  it("catches deliberately broken configs: unknown field, wrong type, bad enum, unknown @type, bad duration, two oneof members", () => {
    const base = () => parse(readFileSync("envoy/envoy.yaml", "utf8"));
    const errorsAfter = (mutate: (c: any) => void) => {
      const c = base();
      mutate(c);
      return validateEnvoyConfig(c).errors;
    };
    const hcm = (c: any) => c.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
    expect(errorsAfter((c) => (c.static_resources.clusters[0].conect_timeout = "5s"))).toEqual([
      "static_resources.clusters[0].conect_timeout: unknown field 'conect_timeout' in envoy.config.cluster.v3.Cluster",
    ]);
    expect(errorsAfter((c) => (c.static_resources.listeners[0].address.socket_address.port_value = "ten"))).toEqual([
      'static_resources.listeners[0].address.socket_address.port_value: expected an integer, got string "ten"',
    ]);
    expect(errorsAfter((c) => (c.static_resources.clusters[0].type = "LOGICAL_DNSS"))[0]).toMatch(
      /^static_resources\.clusters\[0\]\.type: 'LOGICAL_DNSS' is not a value of enum envoy\.config\.cluster\.v3\.Cluster\.DiscoveryType/,
    );
    expect(errorsAfter((c) => (hcm(c).http_filters[0].config_discovery.type_urls[0] = 7))[0]).toMatch(/type_urls\[0\]: expected a string, got number 7$/);
    expect(errorsAfter((c) => (hcm(c).route_config.virtual_hosts[0].routes[0].route.timeout = 300))[0]).toMatch(/route\.timeout: expected a duration such as "1\.5s", got number 300$/);
    expect(errorsAfter((c) => (hcm(c).route_config.virtual_hosts[0].routes[0].route.cluster = "openai"))[0]).toMatch(/'cluster' and 'cluster_header' are both set but belong to the same oneof 'cluster_specifier'/);
    // An ECDS file is checked the same way (a DiscoveryResponse holding the filter's TypedExtensionConfig).
    const ecdsErrors = (mutate: (c: any) => void) => {
      const c = parse(readFileSync("envoy/ecds/ai-router.yaml", "utf8"));
      mutate(c);
      return validateEcdsYaml(stringify(c), "sluice.ai_router").errors;
    };
    expect(ecdsErrors((c) => (c.resources[0].typed_config["@type"] = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasmm"))).toEqual([
      'resources[0].typed_config["@type"]: unknown @type type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasmm (no such message in Envoy\'s API)',
    ]);
    expect(ecdsErrors((c) => (c.resources[0].typed_config.config.vm_config.runtime = 8))[0]).toMatch(/vm_config\.runtime: expected a string, got number 8$/);
    expect(errorsAfter((c) => (c.static_resources.clusters[0].health_checks = [{ timeout: "3s", interval: "10s", healthy_threshold: 1, tcp_health_check: {} }]))[0]).toMatch(
      /health_checks\[0\]: missing required field 'unhealthy_threshold' in envoy\.config\.core\.v3\.HealthCheck$/,
    );
  });

  it("the local gateway's loader reads the same file: filters in order, route, clusters, log, admin, tags", () => {
    const c = loadEnvoyConfig("envoy/envoy.yaml");
    expect(c.filters.map((f) => [f.name, f.rootId, f.vmId, f.failOpen, f.allowOnHeadersStopIteration])).toEqual([
      ["key-auth", "key-auth", "key-auth", false, false],
      ["ai-router", "ai-router", "ai-router", false, true],
      ["ai-ratelimit", "ai-ratelimit", "ai-ratelimit", false, true],
      ["ai-proxy", "ai-proxy", "ai-proxy", false, true],
    ]);
    expect(c.notRun).toEqual([]);
    expect(c.filters[3].hostEnvKeys).toEqual(["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "DEEPSEEK_API_KEY", "MISTRAL_API_KEY"]);
    expect(c.filters[3].wasmFile).toBe("/etc/sluice/build/ai-proxy.wasm");
    expect(c.route).toEqual({ clusterHeader: "x-sluice-cluster", timeoutMs: 0, idleTimeoutMs: 180_000, firstByteTimeoutMs: 120_000, requestBodyBufferLimitBytes: 11 * 1024 * 1024 });
    expect(c.clusters.openai).toEqual({ name: "openai", url: "https://api.openai.com:443", sni: "api.openai.com", connectTimeoutMs: 5000, bufferLimitBytes: 1024 * 1024 });
    expect(c.admin).toEqual({ address: "127.0.0.1", port: 9901 });
    expect(c.listener).toEqual({ address: "0.0.0.0", port: 10000, bufferLimitBytes: 1024 * 1024 });
    expect(c.localReply?.mappers.map((m) => m.statusCode)).toEqual([502, 502, 502, 502, 504, 504, 429, 429]);
    expect(c.statsTags.map((t) => t.tagName)).toEqual(["provider", "model", "consumer", "request_type", "status", "rule", "instance", "cause", "pool", "detector", "action", "verdict", "outcome", "team", "key", "method", "server", "tool", "reason", "upstream_key", "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model", "gen_ai.token.type", "error.type"]);
    const mock = loadEnvoyConfig("envoy/envoy.mock.yaml");
    expect(mock.clusters.anthropic.url).toBe("http://mock:18082");
    expect(JSON.parse(mock.filters[3].configuration).instances[0].api_key).toBe("sluice-mock-key");
  });
});

describe("envoy/istio manifests", () => {
  const docs = () =>
    readdirSync("envoy/istio").flatMap((f) =>
      parseAllDocuments(readFileSync(join("envoy/istio", f), "utf8")).map((d) => ({ file: f, doc: d.toJS() as any })),
    );

  it("key-auth runs in AUTHN; ai-router, ai-ratelimit, ai-proxy in UNSPECIFIED_PHASE by priority; the same plugin configuration as envoy.yaml", () => {
    const cfg = loadGatewayConfig("gateway.yaml", { env: {} });
    const byFile = Object.fromEntries(docs().filter((d) => d.doc.kind === "WasmPlugin").map((d) => [d.file, d.doc]));
    expect(byFile["key-auth.yaml"].spec.phase).toBe("AUTHN");
    // Within a phase, a higher priority runs first: ai-router, then ai-ratelimit, then ai-proxy.
    expect(["ai-router.yaml", "ai-ratelimit.yaml", "ai-proxy.yaml"].map((f) => [byFile[f].spec.phase, byFile[f].spec.priority])).toEqual([
      ["UNSPECIFIED_PHASE", 30], ["UNSPECIFIED_PHASE", 20], ["UNSPECIFIED_PHASE", 10],
    ]);
    expect(byFile["key-auth.yaml"].spec.priority).toBe(100);
    const envoy = loadEnvoyConfig("envoy/envoy.yaml");
    expect(byFile["key-auth.yaml"].spec.pluginConfig).toEqual(JSON.parse(envoy.filters[0].configuration));
    expect(byFile["ai-router.yaml"].spec.pluginConfig).toEqual(JSON.parse(envoy.filters[1].configuration));
    expect(byFile["ai-ratelimit.yaml"].spec.pluginConfig).toEqual(JSON.parse(envoy.filters[2].configuration));
    expect(byFile["ai-proxy.yaml"].spec.pluginConfig).toEqual(aiProxyJson(cfg, "env", istioCluster));
    expect(byFile["ai-proxy.yaml"].spec.pluginConfig.instances[0].cluster).toBe("outbound|443||api.openai.com");
    expect(byFile["ai-proxy.yaml"].spec.vmConfig.env).toContainEqual({ name: "OPENAI_API_KEY", valueFrom: "HOST" });
    for (const f of ["ai-router.yaml", "ai-ratelimit.yaml", "ai-proxy.yaml"]) {
      expect(readFileSync(`envoy/istio/${f}`, "utf8")).toMatch(/WasmPlugin API cannot set allow_on_headers_stop_iteration[^]*Apply sluice-envoyfilter\.yaml INSTEAD/);
    }
  });

  it("the EnvoyFilter carries ai-router, ai-ratelimit and ai-proxy in that order with allow_on_headers_stop_iteration, valid against Envoy's protos", () => {
    const efs = docs().filter((d) => d.doc.kind === "EnvoyFilter");
    expect(efs.map((d) => d.file)).toEqual(["sluice-envoyfilter.yaml"]);
    const ef = efs[0].doc;
    const patches = ef.spec.configPatches;
    const filterPatches = patches.filter((p: any) => p.applyTo === "HTTP_FILTER");
    const routePatch = patches.find((p: any) => p.applyTo === "HTTP_ROUTE");
    // Each is inserted just before the router, so patches in chain order give the chain order.
    expect(filterPatches.map((p: any) => [p.applyTo, p.patch.operation, p.match.listener.filterChain.filter.subFilter.name, p.patch.value.typed_config.config.name])).toEqual([
      ["HTTP_FILTER", "INSERT_BEFORE", "envoy.filters.http.router", "ai-router"],
      ["HTTP_FILTER", "INSERT_BEFORE", "envoy.filters.http.router", "ai-ratelimit"],
      ["HTTP_FILTER", "INSERT_BEFORE", "envoy.filters.http.router", "ai-proxy"],
    ]);
    for (const filterPatch of filterPatches) {
      expect(filterPatch.patch.value.typed_config.config.allow_on_headers_stop_iteration).toBe(true);
      const f = validateEnvoyConfig(filterPatch.patch.value, { type: "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter" });
      expect(f.errors).toEqual([]);
      // failure_policy FAIL_RELOAD, reload_config, allow_on_headers_stop_iteration
      expect(f.newerFieldsUsed).toHaveLength(3);
    }
    // A MERGE patch is a fragment of a Route: its route action must be valid on its own, and the
    // buffer limit (Envoy >= 1.36) is the one the rendered envoy.yaml sets.
    expect(Object.keys(routePatch.patch.value)).toEqual(["request_body_buffer_limit", "route"]);
    expect(routePatch.patch.value.request_body_buffer_limit).toBe(11 * 1024 * 1024);
    expect(validateEnvoyConfig(routePatch.patch.value.route, { type: "envoy.config.route.v3.RouteAction" }).errors).toEqual([]);
  });
});

describe("envoy/docker-compose.yaml", () => {
  const compose = parse(readFileSync("envoy/docker-compose.yaml", "utf8"));

  it("runs the official Envoy image, pinned to the version floor (ENVOY_VERSION_FLOOR) or later, with the wasm and both configs mounted", () => {
    const envoy = compose.services.envoy;
    const [, minor, patch] = /^envoyproxy\/envoy:v1\.(\d+)\.(\d+)$/.exec(envoy.image) ?? [];
    const [, floorMinor, floorPatch] = ENVOY_VERSION_FLOOR.split(".").map(Number);
    expect(Number(minor) * 1000 + Number(patch)).toBeGreaterThanOrEqual(floorMinor * 1000 + floorPatch);
    expect(envoy.volumes).toEqual(expect.arrayContaining(["../build:/etc/sluice/build:ro", "./envoy.yaml:/etc/sluice/envoy.yaml:ro", "./envoy.mock.yaml:/etc/sluice/envoy.mock.yaml:ro"]));
    expect(envoy.command.join(" ")).toMatch(/^envoy -c \/etc\/sluice\/\$\{SLUICE_ENVOY_CONFIG:-envoy\.mock\.yaml\}/);
    expect(envoy.ports).toEqual(["10000:10000", "127.0.0.1:9901:9901"]);
  });

  it("mounts the ECDS directories (not single files: a bind-mounted file keeps the old inode after a rename)", () => {
    expect(compose.services.envoy.volumes).toEqual(expect.arrayContaining(["./ecds:/etc/sluice/ecds:ro", "./ecds-mock:/etc/sluice/ecds-mock:ro"]));
  });

  it("passes every provider key variable envoy.yaml lists through to Envoy", () => {
    const envoy = loadEnvoyConfig("envoy/envoy.yaml");
    expect(compose.services.envoy.environment).toEqual(expect.arrayContaining(envoy.filters.flatMap((f) => f.hostEnvKeys)));
  });

  it("runs the global rate limit service and Redis under the profile distributed, on envoy.mock.yaml's sluice-ratelimit address", () => {
    const { ratelimit, redis } = compose.services;
    expect([ratelimit.profiles, redis.profiles]).toEqual([["distributed"], ["distributed"]]);
    expect(ratelimit.image).toMatch(/^envoyproxy\/ratelimit:[0-9a-f]{8}$/);
    expect(ratelimit.volumes).toEqual(["./ratelimit:/data/ratelimit/config:ro"]);
    // RUNTIME_ROOT/RUNTIME_SUBDIRECTORY/config/*.yaml is where envoyproxy/ratelimit reads its configuration.
    expect(ratelimit.environment).toEqual(expect.arrayContaining(["RUNTIME_ROOT=/data", "RUNTIME_SUBDIRECTORY=ratelimit", "REDIS_URL=redis:6379", "REDIS_SOCKET_TYPE=tcp"]));
    expect(ratelimit.expose).toEqual(["8081"]);
    expect(redis.image).toMatch(/^redis:/);
    expect(compose.services.envoy.depends_on).toEqual(["mock"]); // Envoy starts without it (failure_mode_deny false)
    expect(readFileSync("envoy/ratelimit/config.yaml", "utf8")).toMatch(/^domain: sluice$/m);
  });

  it("serves the mock providers on the ports envoy.mock.yaml's clusters use", () => {
    const mock = compose.services.mock;
    expect(mock.image).toMatch(/^node:\d+/);
    expect(mock.command).toEqual(expect.arrayContaining(["scripts/mocks/cli.ts", "--ports", "--port", "18080", "--host", "0.0.0.0"]));
    const cfg = renderEnvoy(loadGatewayConfig("gateway.yaml", { env: {} }), { mock: true }) as any;
    for (const c of cfg.static_resources.clusters) {
      const addr = c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
      expect(addr.address).toBe("mock");
      expect(addr.port_value).toBeGreaterThanOrEqual(18080);
      expect(addr.port_value).toBeLessThanOrEqual(18086);
    }
  });
});

describe("pools and ai-proxy's balancing settings", () => {
  const POOLS = BASE + `  - name: claude
    provider: anthropic
    api_key_env: ANTHROPIC_API_KEY
    weight: 3
    priority: 1
    price: { input: 3, output: 15 }
pools:
  - name: chat
    instances: [openai, claude]
    algorithm: lowest_cost
filters:
  ai_proxy:
    default_pool: chat
    instance_header: true
    request_limits: { max_messages: 500, max_n: 4, max_tokens: 64000 }
    max_json_values: 200000
    responses_store: { max_entries: 50, max_entry_bytes: 65536, ttl_seconds: 600 }
    api_prefixes: [/v1/, /openai/]
    max_response_body_bytes: 5242880
    max_stream_event_bytes: 1048576
    health: { failures: 2, cooldown_ms: 5000, active: { interval_ms: 5000, path: /v1/models } }
    fallback: { on: [connect_failure, "503"], max_retries: 1 }
`;

  it("reach ai-proxy's configuration, which the filter accepts", async () => {
    const cfg = parseGatewayConfig(POOLS, { env: {} });
    const json = aiProxyJson(cfg, "env");
    expect(json).toMatchObject({
      pools: [{ name: "chat", instances: ["openai", "claude"], algorithm: "lowest_cost" }],
      default_pool: "chat",
      instance_header: true,
      max_response_body_bytes: 5242880,
      max_stream_event_bytes: 1048576,
      health: { failures: 2, cooldown_ms: 5000, active: { interval_ms: 5000, path: "/v1/models" } },
      fallback: { on: ["connect_failure", "503"], max_retries: 1 },
      request_limits: { max_messages: 500, max_n: 4, max_tokens: 64000 },
      max_json_values: 200000,
      responses_store: { max_entries: 50, max_entry_bytes: 65536, ttl_seconds: 600 },
      api_prefixes: ["/v1/", "/openai/"],
    });
    expect((json.instances as any[])[1]).toMatchObject({ weight: 3, priority: 1, price: { input: 3, output: 15 } });
    // responses_store is bounded by the schema, with its line and field.
    expect(refusalOf(POOLS.replace("max_entries: 50", "max_entries: -1")).message).toMatch(/filters\.ai_proxy\.responses_store\.max_entries/);
    // redact_upstream_errors: rendered when given; else the filter's default (true for openai-compatible only).
    expect((json.instances as any[])[1]).not.toHaveProperty("redact_upstream_errors");
    const redacting = aiProxyJson(parseGatewayConfig(POOLS.replace("priority: 1\n", "priority: 1\n    redact_upstream_errors: true\n"), { env: {} }), "env");
    expect((redacting.instances as any[])[1]).toMatchObject({ name: "claude", redact_upstream_errors: true });
    // structured_output: an Anthropic instance's; the filter takes it as rendered, and it is refused elsewhere.
    const forced = aiProxyJson(parseGatewayConfig(POOLS.replace("priority: 1\n", "priority: 1\n    structured_output: tool\n"), { env: {} }), "env");
    expect((forced.instances as any[])[1]).toMatchObject({ name: "claude", structured_output: "tool" });
    expect(() => parseGatewayConfig(MINIMAL_GATEWAY + "    structured_output: native\n", { env: {} })).toThrow(/providers\[0\]\.structured_output.*only read for provider anthropic/s);
    const { Host } = await import("../host/index.js");
    const host = await Host.create({
      filters: [{ name: "ai-proxy", wasm: "build/ai-proxy.wasm", configuration: json, allowOnHeadersStopIteration: true, env: { OPENAI_API_KEY: "a", ANTHROPIC_API_KEY: "b" } }],
      clusters: { openai: "http://127.0.0.1:9", claude: "http://127.0.0.1:9" },
    });
    host.close();
    expect(validateEnvoyConfig(renderEnvoy(cfg)).errors).toEqual([]);
  });

  it("ai-router's max_json_values reaches its configuration, which the filter accepts; the schema bounds it", async () => {
    const yaml = POOLS + "  ai_router:\n    max_json_values: 100000\n    rules: [{ name: a, pool: chat, when: { keywords: [x] } }]\n";
    const cfg = parseGatewayConfig(yaml, { env: {} });
    expect(cfg.aiRouter!.json.max_json_values).toBe(100000);
    const { Host } = await import("../host/index.js");
    const host = await Host.create({ filters: [{ name: "ai-router", wasm: "build/ai-router.wasm", configuration: cfg.aiRouter!.json, allowOnHeadersStopIteration: true }] });
    host.close();
    expect(refusalOf(yaml.replace("max_json_values: 100000", "max_json_values: 10")).message).toMatch(/filters\.ai_router\.max_json_values/);
  });

  it("a pool naming an unknown instance, or an unknown default pool, is refused with its line", () => {
    const e = refusalOf(POOLS.replace("instances: [openai, claude]", "instances: [openai, gpt]").replace("default_pool: chat", "default_pool: chatty"));
    expect(e.message).toBe(
      "gateway.yaml:18:25: pools[0].instances[1]: no provider instance named 'gpt' (providers: openai, claude)\n" +
        "gateway.yaml:22:19: filters.ai_proxy.default_pool: no pool named 'chatty'",
    );
    expect(refusalOf(POOLS.replace("algorithm: lowest_cost", "algorithm: cheapest")).message).toMatch(/^gateway\.yaml:19:16: pools\[0\]\.algorithm: must be one of: weighted_round_robin, /);
  });
});
