// Issue 15 items 1 and 5: each filter's failure policy (gateway.yaml filters.<name>.failure_policy ->
// PluginConfig.failure_policy / reload_config, Istio failStrategy), the Envoy version floor the files
// are rendered for, and the validator `npm run render` runs before it writes anything.
import { describe, it, expect, beforeAll } from "vitest";
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, parseAllDocuments, stringify } from "yaml";
import AjvImport from "ajv";
import { parseGatewayConfig } from "../cli/gateway-config.js";
import { ENVOY_VERSION_FLOOR, EnvoyValidationError, render, renderEcds, renderEnvoy as renderEnvoyYaml, renderFiles, renderIstio } from "../cli/render.js";
import { renderedInline, withEcdsInline } from "./fixtures/ecds.js";

/** envoy.yaml as Envoy runs it: the wasm filters' ECDS files inlined. */
const renderEnvoy = (cfg: any, opts: any = {}) => renderedInline(renderEnvoyYaml, renderEcds, cfg, opts);
import { NEWER_DEPRECATIONS, NEWER_ENUMS, NEWER_FIELDS, NEWER_MESSAGES, loadEnvoyApi, validateEnvoyConfig, validateEnvoyYaml } from "../cli/envoy-validate.js";
import { MINIMAL_GATEWAY, problemsOf } from "./fixtures/gateway-yaml.js";

const BASE = `${MINIMAL_GATEWAY}pools:
  - name: p
    instances: [openai]
filters:
  ai_router:
    rules: [{ name: all, pool: p }]
  ai_ratelimit:
    rules: [{ name: per-consumer, key: [consumer], limit: 1000, window: 1m }]
`;

const hcm = (c: any) => c.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
/** [PluginConfig.name, failure_policy, reload_config] of each wasm filter of a rendered envoy.yaml. */
const policies = (envoy: any) =>
  hcm(envoy)
    .http_filters.filter((f: any) => f.typed_config["@type"].endsWith("wasm.v3.Wasm"))
    .map((f: any) => [f.typed_config.config.name, f.typed_config.config.failure_policy, f.typed_config.config.reload_config]);
const RELOAD = { backoff: { base_interval: "1s" } };


beforeAll(() => {
  loadEnvoyApi();
});

describe("failure policy per filter", () => {
  it("by default key-auth fails closed and ai-router, ai-ratelimit, ai-proxy reload; fail_open is never written", () => {
    const cfg = parseGatewayConfig(BASE, { env: {} });
    for (const mock of [false, true]) {
      const envoy = renderEnvoy(cfg, { mock });
      expect(policies(envoy)).toEqual([
        ["key-auth", "FAIL_CLOSED", undefined],
        ["ai-router", "FAIL_RELOAD", RELOAD],
        ["ai-ratelimit", "FAIL_RELOAD", RELOAD],
        ["ai-proxy", "FAIL_RELOAD", RELOAD],
      ]);
      expect(JSON.stringify(envoy)).not.toContain("fail_open");
    }
    // Istio: the WasmPlugins' failStrategy, and the EnvoyFilter's copies of the three filters.
    const istio = renderIstio(cfg);
    const strategy = (file: string) => (istio[file].docs[0] as any).spec.failStrategy;
    expect(["key-auth.yaml", "ai-router.yaml", "ai-ratelimit.yaml", "ai-proxy.yaml"].map(strategy)).toEqual(["FAIL_CLOSE", "FAIL_RELOAD", "FAIL_RELOAD", "FAIL_RELOAD"]);
    const patches = (istio["sluice-envoyfilter.yaml"].docs[0] as any).spec.configPatches.filter((p: any) => p.applyTo === "HTTP_FILTER");
    expect(patches.map((p: any) => [p.patch.value.typed_config.config.name, p.patch.value.typed_config.config.failure_policy, p.patch.value.typed_config.config.reload_config])).toEqual([
      ["ai-router", "FAIL_RELOAD", RELOAD],
      ["ai-ratelimit", "FAIL_RELOAD", RELOAD],
      ["ai-proxy", "FAIL_RELOAD", RELOAD],
    ]);
  });

  it("gateway.yaml filters.<name>.failure_policy reaches envoy.yaml, the WasmPlugins and the EnvoyFilter", () => {
    const text = BASE.replace("filters:\n", "filters:\n  key_auth: { failure_policy: reload }\n  ai_proxy: { failure_policy: closed }\n")
      .replace("    rules: [{ name: all, pool: p }]\n", "    failure_policy: open\n    rules: [{ name: all, pool: p }]\n")
      .replace("    rules: [{ name: per-consumer", "    failure_policy: closed\n    rules: [{ name: per-consumer");
    const cfg = parseGatewayConfig(text, { env: {} });
    // identity and mcp (not in this gateway.yaml) have no setting: authentication, and the MCP endpoint's own routing, always closed.
    expect(cfg.failurePolicy).toEqual({ "key-auth": "reload", identity: "closed", mcp: "closed", a2a: "closed", "ai-router": "open", "ai-guard": "closed", "ai-cache": "open", "ai-ratelimit": "closed", "ai-proxy": "closed" });
    expect(policies(renderEnvoy(cfg))).toEqual([
      ["key-auth", "FAIL_RELOAD", RELOAD],
      ["ai-router", "FAIL_OPEN", undefined],
      ["ai-ratelimit", "FAIL_CLOSED", undefined],
      ["ai-proxy", "FAIL_CLOSED", undefined],
    ]);
    const istio = renderIstio(cfg);
    const strategy = (file: string) => (istio[file].docs[0] as any).spec.failStrategy;
    expect(["key-auth.yaml", "ai-router.yaml", "ai-ratelimit.yaml", "ai-proxy.yaml"].map(strategy)).toEqual(["FAIL_RELOAD", "FAIL_OPEN", "FAIL_CLOSE", "FAIL_CLOSE"]);
    // Each WasmPlugin against Istio 1.30's CRD schema (test/fixtures/istio-crds, scripts/istio-crd-schemas.ts).
    const Ajv = AjvImport as unknown as typeof AjvImport.default;
    const crd = JSON.parse(readFileSync("test/fixtures/istio-crds/1.30.3.json", "utf8")).schemas["extensions.istio.io/v1alpha1/WasmPlugin"];
    const valid = new Ajv({ strict: false, allErrors: true }).compile(crd);
    for (const f of ["key-auth.yaml", "ai-router.yaml", "ai-ratelimit.yaml", "ai-proxy.yaml"]) {
      expect(valid(istio[f].docs[0]), `${f}: ${JSON.stringify(valid.errors)}`).toBe(true);
    }
    const patches = (istio["sluice-envoyfilter.yaml"].docs[0] as any).spec.configPatches.filter((p: any) => p.applyTo === "HTTP_FILTER");
    expect(patches.map((p: any) => p.patch.value.typed_config.config.failure_policy)).toEqual(["FAIL_OPEN", "FAIL_CLOSED", "FAIL_CLOSED"]);
    // Every rendering validates without a warning.
    for (const mock of [false, true]) expect(validateEnvoyConfig(renderEnvoy(cfg, { mock }))).toMatchObject({ errors: [], warnings: [] });
  });

  it("refuses open for key-auth (every request would pass unauthenticated) and ai-proxy, and an unknown policy, with line and field", () => {
    const text = BASE.replace("filters:\n", "filters:\n  key_auth:\n    failure_policy: open\n  ai_proxy:\n    failure_policy: open\n");
    expect(problemsOf(text)).toEqual([
      "gateway.yaml:15:21: filters.key_auth.failure_policy: 'open' is refused for key-auth: an authentication filter that fails open lets every request through unauthenticated (use closed or reload)",
      expect.stringMatching(/^gateway\.yaml:17:21: filters\.ai_proxy\.failure_policy: 'open' is refused for ai-proxy: with ai-proxy skipped the route would take its cluster from the client's own cluster header/),
    ]);
    expect(problemsOf(BASE.replace("filters:\n", "filters:\n  key_auth: { failure_policy: FAIL_CLOSED }\n"))).toEqual([
      'gateway.yaml:14:31: filters.key_auth.failure_policy: must be one of: closed, open, reload (got "FAIL_CLOSED")',
    ]);
  });
});

describe("the validator: Envoy's API for the version floor", () => {
  const envoyFile = () => readFileSync("envoy/envoy.yaml", "utf8");
  /** The committed envoy.yaml with its ECDS files (envoy/ecds/) inlined: what Envoy runs. */
  const envoyYaml = () => {
    const ecds: Record<string, string> = {};
    for (const f of readdirSync("envoy/ecds")) ecds[`ecds/${f}`] = readFileSync(`envoy/ecds/${f}`, "utf8");
    return stringify(withEcdsInline(parse(envoyFile()), ecds), { lineWidth: 0 });
  };

  it("the rendered files state the floor, 1.37.6, and validate for it without a deprecation warning", () => {
    expect(ENVOY_VERSION_FLOOR).toBe("1.37.6");
    expect(envoyFile().split("\n")[1]).toMatch(/^# Needs Envoy >= 1\.37\.6 with the v8 Wasm runtime: 1\.37\.6 stops the filter manager dropping/);
    expect(readFileSync("envoy/istio/sluice-envoyfilter.yaml", "utf8")).toContain("Needs Istio with Envoy >= 1.37.6");
    expect(parse(readFileSync("envoy/docker-compose.yaml", "utf8")).services.envoy.image).toBe(`envoyproxy/envoy:v${ENVOY_VERSION_FLOOR}`);
    for (const file of ["envoy.yaml", "envoy.mock.yaml"]) {
      expect(validateEnvoyYaml(readFileSync(join("envoy", file), "utf8"), { envoyVersion: ENVOY_VERSION_FLOOR })).toMatchObject({ errors: [], warnings: [] });
    }
  });

  it("reports the deprecated fail_open as a warning, and refuses it beside failure_policy as Envoy does", () => {
    const first = /^( *)failure_policy: FAIL_CLOSED$/m;
    const legacy = validateEnvoyYaml(envoyYaml().replace(first, "$1fail_open: false"));
    expect(legacy.errors).toEqual([]);
    expect(legacy.warnings).toEqual([
      "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.config.fail_open: envoy.extensions.wasm.v3.PluginConfig.fail_open is deprecated (since Envoy 1.33.0; use failure_policy)",
    ]);
    expect(validateEnvoyYaml(envoyYaml().replace(first, "$&\n$1fail_open: true")).errors).toEqual([
      "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.config: fail_open and failure_policy are both set: Envoy refuses the plugin (only one of fail_open or failure_policy can be set)",
    ]);
  });

  it("checks failure_policy and reload_config as the declared proto says: enum names, ReloadConfig's members and types", () => {
    const c = parse(envoyYaml());
    const plugin = (i: number) => hcm(c).http_filters[i].typed_config.config;
    plugin(0).failure_policy = "FAIL_SOMETIMES";
    plugin(1).reload_config.backoff.base_interval = 1;
    plugin(2).reload_config.backof = {};
    plugin(3).failure_policy = 1; // proto3 JSON: the number is FAIL_RELOAD
    expect(validateEnvoyConfig(c).errors.map((e) => e.replace(/^.*http_filters/, "http_filters"))).toEqual([
      "http_filters[0].typed_config.config.failure_policy: 'FAIL_SOMETIMES' is not a value of enum envoy.extensions.wasm.v3.FailurePolicy (expected one of: UNSPECIFIED, FAIL_RELOAD, FAIL_CLOSED, FAIL_OPEN)",
      'http_filters[1].typed_config.config.reload_config.backoff.base_interval: expected a duration such as "1.5s", got number 1',
      "http_filters[2].typed_config.config.reload_config.backof: unknown field 'backof' in envoy.extensions.wasm.v3.ReloadConfig",
    ]);
  });

  it("rejects a field the target Envoy does not have: one added after 1.37 (unknown), one declared for a later version than the target", () => {
    // HttpConnectionManager.forward_proto_config = 61: data-plane-api 84e84367 (envoyproxy/envoy#43088,
    // 2026-01-29), after 1.37.0 (2026-01-13): not in Envoy 1.37.6, so nothing declares it.
    const c = parse(envoyYaml());
    hcm(c).forward_proto_config = { https_destination_ports: [443] };
    expect(validateEnvoyConfig(c).errors).toEqual([
      "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.forward_proto_config: unknown field 'forward_proto_config' in envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
    ]);
    // For an Envoy 1.34 target, the fields from 1.35 and 1.36 are refused, the ones from 1.33 are not.
    const old = validateEnvoyYaml(envoyYaml(), { envoyVersion: "1.34.0" }).errors.map((e) => e.replace(/^.*: (?=envoy\.)/, ""));
    expect(new Set(old)).toEqual(
      new Set([
        "envoy.config.route.v3.Route.request_body_buffer_limit needs Envoy >= 1.36.0; the target is Envoy 1.34.0",
        "envoy.extensions.wasm.v3.PluginConfig.allow_on_headers_stop_iteration needs Envoy >= 1.35.0; the target is Envoy 1.34.0",
      ]),
    );
    expect(old).toHaveLength(4);
  });

  it("every declaration names the Envoy version that added it and its data-plane-api commit", () => {
    for (const d of [...NEWER_FIELDS, ...NEWER_MESSAGES, ...NEWER_ENUMS, ...NEWER_DEPRECATIONS]) {
      expect(d.since).toMatch(/^1\.\d+\.\d+$/);
      expect(d.source).toMatch(/^envoyproxy\/data-plane-api [0-9a-f]{8} \(envoyproxy\/envoy#\d+, \d{4}-\d\d-\d\d\): envoy\/\S+\.proto$/);
    }
    expect(NEWER_ENUMS.map((e) => e.name)).toEqual(["envoy.extensions.wasm.v3.FailurePolicy"]);
    expect(NEWER_MESSAGES.map((m) => m.name)).toEqual(["envoy.extensions.wasm.v3.ReloadConfig", "envoy.config.route.v3.RateLimit.HitsAddend", "envoy.config.rbac.v3.SourcedMetadata"]);
    expect(NEWER_DEPRECATIONS.map((d) => `${d.message}.${d.field}`)).toEqual([
      "envoy.extensions.wasm.v3.PluginConfig.fail_open",
      "envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig.common_config",
    ]);
  });
});

describe("npm run render validates before it writes", () => {
  it("refuses an envoy.yaml Envoy's API rejects: nothing written, the validator's message", () => {
    const dir = mkdtempSync(join(tmpdir(), "sluice-render-validate-"));
    const config = join(dir, "gateway.yaml");
    writeFileSync(config, BASE);
    const out = join(dir, "envoy");
    render({ config, outDir: out, env: {} });
    const before = Object.fromEntries(["envoy.yaml", "envoy.mock.yaml", "istio/ai-proxy.yaml"].map((f) => [f, readFileSync(join(out, f), "utf8")]));
    // A renderer that writes a field Envoy 1.37.6 does not have.
    const broken = (cfg: Parameters<typeof renderFiles>[0]) => {
      const files = renderFiles(cfg);
      files["envoy.mock.yaml"] = files["envoy.mock.yaml"].replace(/^( *)stat_prefix: sluice$/m, "$&\n$1forward_proto_config: {}");
      files["istio/ai-proxy.yaml"] += "# changed\n";
      return files;
    };
    let err: unknown;
    try {
      render({ config, outDir: out, env: {}, renderFiles: broken });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EnvoyValidationError);
    expect((err as Error).message).toBe(
      "envoy.mock.yaml: static_resources.listeners[0].filter_chains[0].filters[0].typed_config.forward_proto_config: unknown field 'forward_proto_config' in envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
    );
    for (const [f, text] of Object.entries(before)) expect(readFileSync(join(out, f), "utf8"), f).toBe(text);
    expect([...readdirSync(out), ...readdirSync(join(out, "istio"))].filter((f) => f.includes(".tmp-"))).toEqual([]);
    // Into an empty directory: nothing at all.
    const fresh = join(dir, "fresh");
    expect(() => render({ config, outDir: fresh, env: {}, renderFiles: broken })).toThrow(EnvoyValidationError);
    expect(existsSync(fresh)).toBe(false);
    // An ECDS file (the filter's configuration Envoy watches) is checked the same way.
    const brokenEcds = (cfg: Parameters<typeof renderFiles>[0]) => {
      const files = renderFiles(cfg);
      files["ecds/ai-proxy.yaml"] = files["ecds/ai-proxy.yaml"].replace(/^( *)failure_policy: FAIL_RELOAD$/m, "$&\n$1fail_open: true");
      return files;
    };
    expect(() => render({ config, outDir: out, env: {}, renderFiles: brokenEcds })).toThrow(
      /^ecds\/ai-proxy\.yaml: resources\[0\]\.typed_config\.config: fail_open and failure_policy are both set/,
    );
    for (const [f, text] of Object.entries(before)) expect(readFileSync(join(out, f), "utf8"), f).toBe(text);
  });

  it("the shipped gateway.yaml renders with no validator warning", () => {
    const dir = mkdtempSync(join(tmpdir(), "sluice-render-validate-"));
    const r = render({ outDir: join(dir, "envoy"), env: {} });
    expect(r.warnings).toEqual([]);
    expect(parseAllDocuments(readFileSync(join(dir, "envoy", "istio", "key-auth.yaml"), "utf8"))[0].toJS().spec.failStrategy).toBe("FAIL_CLOSE");
  });
});
