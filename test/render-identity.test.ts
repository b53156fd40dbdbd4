// gateway.yaml `identity`: checked (line and field on every refusal), rendered as the identity wasm
// filter right after key-auth with its own ECDS file, FAIL_CLOSED, and as an Istio WasmPlugin; the
// access log prints identity_source. The rendered filter is then run through the host.
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import AjvImport from "ajv";
import { GatewayConfigError, parseGatewayConfig } from "../cli/gateway-config.js";
import { renderEcds, renderEnvoy as renderEnvoyYaml } from "../cli/render.js";
import { renderIstio } from "../cli/render/istio.js";
import { validateEnvoyConfig } from "../cli/envoy-validate.js";
import { renderedInline } from "./fixtures/ecds.js";
import { Host } from "../host/index.js";

const renderEnvoy = (cfg: any, opts: any = {}) => renderedInline(renderEnvoyYaml, renderEcds, cfg, opts);
const ENV = { OPENAI_API_KEY: "sk-o" };

const BASE = `
listener: { port: 10000 }
providers: [{ name: small, provider: openai, api_key_env: OPENAI_API_KEY }]
consumers: [{ name: keyed, keys: [sk-1] }]
auth:
  jwt:
    providers:
      - name: corp
        issuer: https://login.example.com
        remote_jwks: { url: https://login.example.com/jwks }
        claim_to_headers: [{ claim: sub, header: x-user }]
rbac:
  action: allow
  policies: [{ name: users, consumers: [keyed] }]
filters:
  key_auth: { anonymous: no-key }
`;

const IDENTITY = `
identity:
  sources:
    - jwt_claim: org.team
    - jwt_claim: ["https://example.com/user"]
    - mtls: uri_san
    - metadata: { namespace: envoy.filters.http.ext_authz, key: user }
    - header: x-user
    - header: x-forwarded-user
      trusted: true
  groups: { jwt_claim: groups }
  map: { "spiffe://example.org/ns/ml/sa/batch": ml-batch }
  max_groups: 8
`;

function hcm(envoy: any): any {
  return envoy.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
}

function refusal(yaml: string): string {
  try {
    parseGatewayConfig(yaml, { env: ENV });
  } catch (e) {
    expect(e).toBeInstanceOf(GatewayConfigError);
    return (e as Error).message;
  }
  throw new Error("accepted");
}

describe("gateway.yaml identity", () => {
  const cfg = parseGatewayConfig(BASE + IDENTITY, { env: ENV });
  const envoy = renderEnvoy(cfg);

  it("renders the identity filter right after key-auth, before rbac, with its own ECDS file, FAIL_CLOSED", () => {
    expect(hcm(envoy).http_filters.map((f: any) => f.name)).toEqual([
      "sluice.identity_headers",
      "envoy.filters.http.jwt_authn",
      "sluice.key_auth",
      "sluice.identity",
      "envoy.filters.http.rbac",
      "sluice.ai_proxy",
      "envoy.filters.http.router",
    ]);
    const ecds = renderEcds(cfg);
    expect(Object.keys(ecds)).toContain("ecds/identity.yaml");
    const plugin = hcm(envoy).http_filters.find((f: any) => f.name === "sluice.identity").typed_config.config;
    expect(plugin.failure_policy).toBe("FAIL_CLOSED");
    expect(plugin.vm_config.code.local.filename).toMatch(/\/identity\.wasm$/);
    expect(JSON.parse(plugin.configuration.value)).toEqual({
      sources: [
        { jwt_claim: ["org", "team"] },
        { jwt_claim: ["https://example.com/user"] },
        { mtls: "uri_san" },
        { metadata: { namespace: "envoy.filters.http.ext_authz", key: ["user"] } },
        { header: "x-user" },
        { header: "x-forwarded-user" },
      ],
      groups: { jwt_claim: ["groups"] },
      map: { "spiffe://example.org/ns/ml/sa/batch": "ml-batch" },
      max_groups: 8,
      key_auth_anonymous: "no-key",
    });
    expect(validateEnvoyConfig(envoy).errors).toEqual([]);
  });

  it("the access log prints identity_source", () => {
    const format = hcm(envoy).access_log[0].typed_config.log_format.json_format;
    expect(format.identity_source).toBe("%FILTER_STATE(wasm.sluice.identity_source:PLAIN)%");
  });

  it("is not rendered without an identity section", () => {
    const plain = renderEnvoy(parseGatewayConfig(BASE, { env: ENV }));
    expect(hcm(plain).http_filters.map((f: any) => f.name)).not.toContain("sluice.identity");
    expect(Object.keys(renderEcds(parseGatewayConfig(BASE, { env: ENV })))).not.toContain("ecds/identity.yaml");
    expect(Object.keys(renderIstio(parseGatewayConfig(BASE, { env: ENV })))).not.toContain("identity.yaml");
  });

  it("Istio: a WasmPlugin in phase AUTHZ (after RequestAuthentication's jwt_authn), FAIL_CLOSE", () => {
    const files = renderIstio(cfg);
    const plugin = files["identity.yaml"].docs[0] as any;
    expect(plugin.kind).toBe("WasmPlugin");
    expect(plugin.spec.phase).toBe("AUTHZ");
    expect(plugin.spec.failStrategy).toBe("FAIL_CLOSE");
    expect(plugin.spec.pluginName).toBe("identity");
    expect(plugin.spec.pluginConfig.sources[0]).toEqual({ jwt_claim: ["org", "team"] });
    // Against Istio 1.30's CRD schema (test/fixtures/istio-crds), as the other WasmPlugins are.
    const Ajv = AjvImport as unknown as typeof AjvImport.default;
    const crd = JSON.parse(readFileSync("test/fixtures/istio-crds/1.30.3.json", "utf8")).schemas["extensions.istio.io/v1alpha1/WasmPlugin"];
    const valid = new Ajv({ strict: false, allErrors: true }).compile(crd);
    expect(valid(plugin), JSON.stringify(valid.errors)).toBe(true);
  });

  it("the rendered configuration loads in the filter and identifies by the claim jwt_authn verified", async () => {
    const ecds = renderEcds(cfg);
    const config = JSON.parse((ecds["ecds/identity.yaml"] as any).resources[0].typed_config.config.configuration.value);
    const h = await Host.create({ filters: [{ name: "identity", wasm: "build/identity.wasm", configuration: config }] });
    const s = h.newStream({ dynamicMetadata: { "envoy.filters.http.jwt_authn": { jwt_payload: { org: { team: "search" }, groups: "a b" } } } });
    s.callOnRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw" }, false);
    expect(s.getFilterState("sluice.consumer")).toBe("search");
    expect(s.getFilterState("sluice.groups")).toBe("a,b");
    expect(s.getFilterState("sluice.identity_source")).toBe("jwt");
  });

  it("a header a client could forge needs trusted: true, unless jwt_authn or ext_authz writes it (and so removes the client's copy)", () => {
    const msg = refusal(BASE + "identity: { sources: [{ header: x-forwarded-user }] }\n");
    expect(msg).toMatch(/identity\.sources\[0\]\.header: a client can send 'x-forwarded-user' itself/);
    expect(() => parseGatewayConfig(BASE + "identity: { sources: [{ header: X-User }] }\n", { env: ENV })).not.toThrow();
  });

  it("refuses what it cannot apply, with line and field", () => {
    expect(refusal(BASE + "identity: { sources: [{ jwt_claim: sub, mtls: subject }] }\n")).toMatch(/identity\.sources\[0\]: give one of jwt_claim, mtls, metadata or header, not jwt_claim and mtls together/);
    expect(refusal(BASE + "identity: { sources: [{ mtls: email }] }\n")).toMatch(/:\d+:\d+: identity\.sources\[0\]\.mtls: must be one of: uri_san, dns_san, subject/);
    expect(refusal(BASE + "identity: { sources: [{ jwt_claim: sub, trusted: true }] }\n")).toMatch(/identity\.sources\[0\]\.trusted: trusted applies only to a header source/);
    expect(refusal(BASE + "identity: { sources: [] }\n")).toMatch(/identity\.sources: must list at least 1 item/);
    expect(refusal(BASE + "identity: { sources: [{ jwt_claim: sub }], groups: { mtls: subject } }\n")).toMatch(/identity\.groups\.mtls: unknown field 'mtls'/);
    expect(refusal(BASE + "identity: { sources: [{ jwt_claim: a..b }] }\n")).toMatch(/identity\.sources\[0\]\.jwt_claim: 'a\.\.b' has an empty name/);
    expect(refusal(BASE + "identity: { sources: [{ jwt_claim: sub }], map: { a: 'b;c' } }\n")).toMatch(/identity\.map\.a: "b;c" is not valid/);
    expect(refusal(BASE + "identity: { sources: [{ jwt_claim: sub }], anonymous: 'a b' }\n")).toMatch(/identity\.anonymous: "a b" is not valid/);
    expect(refusal(BASE + "identity: { sources: [{ jwt_claim: sub }], max_consumer_length: 4, anonymous: guest-user }\n")).toMatch(/identity\.anonymous: is longer than max_consumer_length \(4\)/);
  });

  it("a group condition or key part without identity.groups is refused (it would never apply); group cannot be distributed", () => {
    const rl = "\n  ai_ratelimit: { rules: [{ name: teams, key: [group], limit: 1000, window: 1m }] }\n";
    expect(refusal(BASE + rl)).toMatch(/filters\.ai_ratelimit\.rules\[0\]: keyed by or conditioned on group, the rule never applies: no consumer has groups/);
    const router = "\n  ai_router: { rules: [{ name: r, pool: p, when: { any: [{ group: ml }] } }] }\npools: [{ name: p, instances: [small] }]\n";
    expect(refusal(BASE + router)).toMatch(/filters\.ai_router\.rules\[0\]\.when: a group condition never matches/);
    expect(() => parseGatewayConfig(BASE + rl + IDENTITY, { env: ENV })).not.toThrow();
    expect(() => parseGatewayConfig(BASE + router + IDENTITY, { env: ENV })).not.toThrow();
    const distributed = "\n  ai_ratelimit: { rules: [{ name: teams, key: [group], limit: 1000, window: 1m }], distributed: { service: { address: rl.internal, port: 8081 } } }\n";
    expect(refusal(BASE + distributed + IDENTITY)).toMatch(/rule 'teams' cannot be distributed: a consumer in several groups has a counter in each/);
  });

  it("identity behind a key-auth that answers 401 to every keyless request is a warning", () => {
    const c = parseGatewayConfig(BASE.replace("  key_auth: { anonymous: no-key }\n", "  key_auth: {}\n") + IDENTITY, { env: ENV });
    expect(c.warnings.join("\n")).toMatch(/identity: key-auth answers 401 to every request without an API key before identity runs/);
    expect(cfg.warnings.join("\n")).not.toMatch(/key-auth answers 401/);
  });

  it("a jwt_claim without auth.jwt is a warning (Istio's RequestAuthentication may verify the token), not an error", () => {
    const c = parseGatewayConfig("listener: { port: 10000 }\nproviders: [{ name: small, provider: openai, api_key_env: OPENAI_API_KEY }]\nfilters: { key_auth: { enabled: false } }\nidentity: { sources: [{ jwt_claim: sub }], jwt_payload_key: https://issuer.example.com }\n", { env: ENV });
    expect(c.warnings.join("\n")).toMatch(/identity\.sources\[0\]: auth\.jwt is not configured here/);
  });

  it("docs/identity.md's example renders and validates", () => {
    const doc = readFileSync("docs/identity.md", "utf8");
    const example = /```yaml\n(# example: jwt\n[\s\S]*?)```/.exec(doc)?.[1];
    expect(example).toBeDefined();
    const c = parseGatewayConfig(example!, { env: { ...ENV, ANTHROPIC_API_KEY: "sk-a" } });
    expect(validateEnvoyConfig(renderEnvoy(c)).errors).toEqual([]);
    expect(hcm(renderEnvoy(c)).http_filters.map((f: any) => f.name)).toContain("sluice.identity");
  });
});
