// gateway.yaml `a2a`: checked (line and field on every refusal), rendered as the a2a wasm filter after
// key-auth, identity and mcp with its own ECDS file (FAIL_CLOSED, allow_on_headers_stop_iteration), an
// a2a_<name> cluster per agent, its environment variables, and for Istio; checked against Envoy's
// protos and Istio's CRD schemas.
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import AjvImport from "ajv";
import { parseGatewayConfig } from "../cli/gateway-config.js";
import { renderEcds, renderEnvoy as renderEnvoyYaml } from "../cli/render.js";
import { renderIstio, ISTIO_ENVOYFILTER } from "../cli/render/istio.js";
import { validateEnvoyConfig } from "../cli/envoy-validate.js";
import { gatewayField } from "../cli/start.js";
import { renderedInline } from "./fixtures/ecds.js";
import { problemsOf } from "./fixtures/gateway-yaml.js";

const renderEnvoy = (cfg: any, opts: any = {}) => renderedInline(renderEnvoyYaml, renderEcds, cfg, opts);
const ENV = { OPENAI_API_KEY: "sk-o" };
const Ajv = AjvImport as unknown as typeof AjvImport.default;
const hcm = (e: any) => e.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;

const BASE = `
listener: { port: 10000 }
consumers: [{ name: alice, keys: [key-a] }]
providers: [{ name: small, provider: openai, api_key_env: OPENAI_API_KEY }]
`;
const A2A = `
a2a:
  public_url: https://gw.example.com
  agents:
    - name: planner
      url: http://127.0.0.1:4000/a2a/jsonrpc
      auth: { value_env: PLANNER_TOKEN, prefix: "Bearer " }
    - name: writer
      url: https://writer.example.com/rpc
      card_url: https://writer.example.com/cards/writer.json
    - name: inside
      url: http://writer.agents.svc.cluster.local:8080/
`;
const MCP = `
mcp:
  servers: [{ name: github, url: "http://127.0.0.1:3001/mcp" }]
`;

describe("gateway.yaml a2a", () => {
  it("renders the filter after mcp with the agents' clusters, paths and credentials; validates against Envoy's API", () => {
    const cfg = parseGatewayConfig(BASE + MCP + A2A, { env: ENV });
    const envoy = renderEnvoy(cfg);
    expect(hcm(envoy).http_filters.map((f: any) => f.name)).toEqual(["sluice.key_auth", "sluice.mcp", "sluice.a2a", "sluice.ai_proxy", "envoy.filters.http.router"]);
    const plugin = hcm(envoy).http_filters[2].typed_config.config;
    expect(plugin.failure_policy).toBe("FAIL_CLOSED");
    expect(plugin.allow_on_headers_stop_iteration).toBe(true);
    expect(plugin.vm_config.environment_variables.host_env_keys).toEqual(["PLANNER_TOKEN"]);
    const json = JSON.parse(plugin.configuration.value);
    expect(json).toEqual({
      path_prefix: "/a2a", public_url: "https://gw.example.com", cluster_header: "x-sluice-cluster", max_body_bytes: 1048576, card_ttl_ms: 300000, timeout_ms: 15000,
      auth_scheme: { type: "bearer" },
      agents: [
        { name: "planner", cluster: "a2a_planner", authority: "127.0.0.1:4000", path: "/a2a/jsonrpc", card_path: "/.well-known/agent-card.json", auth: { header: "authorization", value_env: "PLANNER_TOKEN", prefix: "Bearer " } },
        { name: "writer", cluster: "a2a_writer", authority: "writer.example.com:443", path: "/rpc", card_path: "/cards/writer.json" },
        { name: "inside", cluster: "a2a_inside", authority: "writer.agents.svc.cluster.local:8080", path: "/", card_path: "/.well-known/agent-card.json" },
      ],
    });
    const clusters = Object.fromEntries(envoy.static_resources.clusters.map((c: any) => [c.name, c]));
    expect(clusters.a2a_writer.transport_socket.typed_config.sni).toBe("writer.example.com");
    expect(clusters.a2a_planner.transport_socket).toBeUndefined();
    expect(validateEnvoyConfig(envoy).errors).toEqual([]);
    expect(Object.keys(renderEcds(cfg))).toContain("ecds/a2a.yaml");
  });

  it("cards name an API key header when key-auth reads one", () => {
    const cfg = parseGatewayConfig(BASE + A2A + "filters: { key_auth: { header: x-gateway-key } }\n", { env: ENV });
    const json = JSON.parse(hcm(renderEnvoy(cfg)).http_filters[1].typed_config.config.configuration.value);
    expect(json.auth_scheme).toEqual({ type: "api_key", header: "x-gateway-key" });
  });

  it("refuses what would not work, naming the field", () => {
    const cases: [string, RegExp][] = [
      ["a2a:\n  agents:\n    - { name: p, url: http://a/x }\n    - { name: p, url: http://b/x }\n", /a2a\.agents\[1\]\.name: duplicate agent name 'p'/],
      ["a2a:\n  agents: [{ name: p, url: ftp://a/x }]\n", /a2a\.agents\[0\]\.url: an agent's url must be an http/],
      ["a2a:\n  agents: [{ name: p, url: http://a/x, card_url: http://b/card.json }]\n", /a2a\.agents\[0\]\.card_url: must be on the agent's own host and port/],
      ["a2a:\n  agents: [{ name: p, url: http://a/x, auth: { header: a2a-version, value_env: T } }]\n", /a2a\.agents\[0\]\.auth\.header: 'a2a-version' is a header/],
      ["a2a:\n  path_prefix: /v1\n  agents: [{ name: p, url: http://a/x }]\n", /a2a\.path_prefix: is under the AI APIs'/],
      ["a2a:\n  agents: [{ name: P_1, url: http://a/x }]\n", /a2a\.agents\[0\]\.name/],
      ["a2a:\n  agents: [{ name: small, url: http://a/x }]\n  public_url: gw.example.com\n", /a2a\.public_url/],
    ];
    for (const [yaml, why] of cases) expect(problemsOf(BASE + yaml, ENV).join("\n")).toMatch(why);
    expect(problemsOf(BASE + "mcp:\n  path: /agents/mcp\n  servers: [{ name: g, url: http://a/mcp }]\na2a:\n  path_prefix: /agents\n  agents: [{ name: p, url: http://a/x }]\n", ENV).join("\n")).toMatch(/a2a\.path_prefix: covers the MCP endpoint/);
  });

  it("a refusal the filter names in its own JSON points at gateway.yaml's field", () => {
    expect(gatewayField("a2a.agents[0].authority")).toBe("a2a.agents[0].url");
    expect(gatewayField("a2a.agents[0].card_path")).toBe("a2a.agents[0].card_url");
    expect(gatewayField("a2a.agents[1].auth.value_env")).toBe("a2a.agents[1].auth.value_env");
    expect(gatewayField("a2a.card_ttl_ms")).toBe("a2a.card_ttl");
  });

  it("Istio: a WasmPlugin after mcp, in the EnvoyFilter's chain, ServiceEntries for agents outside the mesh", () => {
    const cfg = parseGatewayConfig(BASE + MCP + A2A, { env: ENV });
    const files = renderIstio(cfg);
    const plugin = files["a2a.yaml"].docs[0] as any;
    expect(plugin.spec).toMatchObject({ pluginName: "a2a", priority: 35, failStrategy: "FAIL_CLOSE" });
    expect(plugin.spec.pluginConfig.agents.map((a: any) => a.cluster)).toEqual(["outbound|4000||127.0.0.1", "outbound|443||writer.example.com", "outbound|8080||writer.agents.svc.cluster.local"]);
    const crds = JSON.parse(readFileSync("test/fixtures/istio-crds/1.30.3.json", "utf8")).schemas;
    const wasm = new Ajv({ strict: false, allErrors: true }).compile(crds["extensions.istio.io/v1alpha1/WasmPlugin"]);
    expect(wasm(plugin), JSON.stringify(wasm.errors)).toBe(true);
    const ef = files[ISTIO_ENVOYFILTER].docs[0] as any;
    const chain = ef.spec.configPatches.filter((p: any) => p.applyTo === "HTTP_FILTER").map((p: any) => p.patch.value.name);
    expect(chain).toEqual(["sluice.mcp", "sluice.a2a", "sluice.ai_proxy"]);
    const hosts = files["providers.yaml"].docs.filter((d: any) => d.kind === "ServiceEntry").map((d: any) => d.spec.hosts[0]);
    // One ServiceEntry per host and port: the MCP server's 3001 and the planner's 4000 on 127.0.0.1.
    expect(hosts).toEqual(["api.openai.com", "127.0.0.1", "127.0.0.1", "writer.example.com"]);
  });

  it("gateway.yaml's commented a2a section and docs/a2a.md's example render and validate", () => {
    const text = readFileSync("gateway.yaml", "utf8");
    const start = text.indexOf("# a2a:\n");
    expect(start).toBeGreaterThan(0);
    const section = text.slice(start).split("\n\n")[0].split("\n").filter((l) => l.startsWith("#")).map((l) => l.replace(/^# ?/, "")).join("\n");
    const cfg = parseGatewayConfig(text + "\n" + section + "\n", { env: {} });
    expect(cfg.a2a?.agents.map((a) => a.name)).toEqual(["planner"]);
    expect(validateEnvoyConfig(renderEnvoy(cfg)).errors).toEqual([]);
    const doc = readFileSync("docs/a2a.md", "utf8");
    const example = /```yaml\n(a2a:\n[\s\S]*?)```/.exec(doc)?.[1];
    expect(example).toBeDefined();
    expect(validateEnvoyConfig(renderEnvoy(parseGatewayConfig(BASE + example!, { env: ENV }))).errors).toEqual([]);
  });
});
