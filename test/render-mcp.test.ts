// gateway.yaml `mcp`: checked (line and field on every refusal), rendered as the mcp wasm filter right
// after key-auth and identity with its own ECDS file (FAIL_CLOSED, allow_on_headers_stop_iteration),
// the mcp_<name> and mcp_<name>_oauth clusters, its environment variables, its access-log fields, and
// for Istio; checked against Envoy's protos and Istio's CRD schemas. The AI filters after it leave an
// MCP request and the cluster header it set alone.
import { describe, it, expect, beforeAll } from "vitest";
import { readFileSync } from "node:fs";
import AjvImport from "ajv";
import { parseGatewayConfig } from "../cli/gateway-config.js";
import { renderEcds, renderEnvoy as renderEnvoyYaml, renderFiles } from "../cli/render.js";
import { renderIstio, ISTIO_ENVOYFILTER } from "../cli/render/istio.js";
import { loadEnvoyApi, validateEnvoyConfig } from "../cli/envoy-validate.js";
import { gatewayField } from "../cli/start.js";
import { parseRendered, renderedInline } from "./fixtures/ecds.js";
import { problemsOf } from "./fixtures/gateway-yaml.js";
import { Host } from "../host/index.js";

const renderEnvoy = (cfg: any, opts: any = {}) => renderedInline(renderEnvoyYaml, renderEcds, cfg, opts);
const ENV = { OPENAI_API_KEY: "sk-o" };
const Ajv = AjvImport as unknown as typeof AjvImport.default;

const BASE = `
listener: { port: 10000 }
consumers: [{ name: alice, keys: [key-a] }, { name: bob, keys: [key-b] }]
providers: [{ name: small, provider: openai, api_key_env: OPENAI_API_KEY }]
`;

const MCP = `
mcp:
  servers:
    - name: github
      url: http://127.0.0.1:3001/mcp
      auth: { header: Authorization, value_env: GITHUB_MCP_TOKEN, prefix: "Bearer " }
    - name: docs
      url: https://docs.example.com/v2/mcp
      oauth: { token_url: https://idp.example.com/oauth/token, client_id_env: DOCS_ID, client_secret_env: DOCS_SECRET, scope: "a b" }
    - name: search
      url: http://search-mcp.tools.svc.cluster.local:8080/mcp
  access:
    - consumers: [alice]
      allow: ["github__*"]
      deny: ["github__delete_*"]
      max_argument_bytes: 65536
`;

const FULL_CHAIN = `
filters:
  ai_router:
    rules: [{ name: all, pool: main }]
  ai_guard:
    detectors: { email: block }
  ai_ratelimit:
    rules: [{ name: per-consumer, key: [consumer], limit: 100000, window: 1m }]
pools: [{ name: main, instances: [small] }]
`;

const hcm = (envoy: any) => envoy.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
const mcpConfigOf = (envoy: any) => JSON.parse(hcm(envoy).http_filters.find((f: any) => f.name === "sluice.mcp").typed_config.config.configuration.value);

beforeAll(() => {
  loadEnvoyApi();
});

describe("gateway.yaml mcp", () => {
  const cfg = parseGatewayConfig(BASE + MCP, { env: ENV });
  const envoy = renderEnvoy(cfg);

  it("renders the filter's JSON as the filter reads it", () => {
    expect(mcpConfigOf(envoy)).toEqual({
      path: "/mcp",
      cluster_header: "x-sluice-cluster",
      session: { key_env: "SLUICE_MCP_SESSION_KEY", ttl_ms: 86400000 },
      max_body_bytes: 1048576,
      max_response_bytes: 4194304,
      timeout_ms: 15000,
      servers: [
        { name: "github", cluster: "mcp_github", authority: "127.0.0.1:3001", path: "/mcp", auth: { header: "authorization", value_env: "GITHUB_MCP_TOKEN", prefix: "Bearer " } },
        {
          name: "docs", cluster: "mcp_docs", authority: "docs.example.com:443", path: "/v2/mcp",
          oauth: { cluster: "mcp_docs_oauth", authority: "idp.example.com:443", path: "/oauth/token", client_id_env: "DOCS_ID", client_secret_env: "DOCS_SECRET", scope: "a b", audience: "" },
        },
        { name: "search", cluster: "mcp_search", authority: "search-mcp.tools.svc.cluster.local:8080", path: "/mcp" },
      ],
      access: [{ consumers: ["alice"], groups: [], allow: ["github__*"], deny: ["github__delete_*"], max_argument_bytes: 65536 }],
      default_access: { allow: ["*"], deny: [], max_argument_bytes: 262144 },
    });
  });

  it("places it right after key-auth, FAIL_CLOSED, holding the headers, with its VM's environment and its ECDS file", () => {
    expect(hcm(envoy).http_filters.map((f: any) => f.name)).toEqual(["sluice.key_auth", "sluice.mcp", "sluice.ai_proxy", "envoy.filters.http.router"]);
    const plugin = hcm(envoy).http_filters[1].typed_config.config;
    expect(plugin.failure_policy).toBe("FAIL_CLOSED");
    expect(plugin.allow_on_headers_stop_iteration).toBe(true);
    expect(plugin.vm_config.code.local.filename).toMatch(/\/mcp\.wasm$/);
    expect(plugin.vm_config.environment_variables.host_env_keys).toEqual(["SLUICE_MCP_SESSION_KEY", "GITHUB_MCP_TOKEN", "DOCS_ID", "DOCS_SECRET"]);
    expect(Object.keys(renderEcds(cfg))).toEqual(["ecds/key-auth.yaml", "ecds/mcp.yaml", "ecds/ai-proxy.yaml"]);
    // The docker compose render keeps the real servers and their variables (no MCP mock there).
    expect(mcpConfigOf(renderEnvoy(cfg, { mock: true })).servers[0].auth.value_env).toBe("GITHUB_MCP_TOKEN");
  });

  it("after identity when gateway.yaml has one, and after rbac (the consumer is known)", () => {
    const c = parseGatewayConfig(
      BASE + MCP + "filters: { key_auth: { anonymous: guest } }\nidentity: { sources: [{ header: x-user, trusted: true }] }\nrbac: { action: allow, policies: [{ name: users, consumers: [alice] }] }\n",
      { env: ENV },
    );
    expect(hcm(renderEnvoy(c)).http_filters.map((f: any) => f.name)).toEqual([
      "sluice.key_auth", "sluice.identity", "envoy.filters.http.rbac", "sluice.mcp", "sluice.ai_proxy", "envoy.filters.http.router",
    ]);
    const full = parseGatewayConfig(BASE + MCP + FULL_CHAIN, { env: ENV });
    expect(hcm(renderEnvoy(full)).http_filters.map((f: any) => f.name)).toEqual([
      "sluice.key_auth", "sluice.mcp", "sluice.ai_router", "sluice.ai_guard", "sluice.ai_ratelimit", "sluice.ai_proxy", "envoy.filters.http.router",
    ]);
  });

  it("a cluster per server and token endpoint: TLS with SNI and SAN checks for https; validates against Envoy's API", () => {
    const clusters = Object.fromEntries(envoy.static_resources.clusters.map((c: any) => [c.name, c]));
    expect(Object.keys(clusters)).toEqual(["small", "mcp_github", "mcp_docs", "mcp_docs_oauth", "mcp_search"]);
    expect(clusters.mcp_github.type).toBe("STATIC");
    expect(clusters.mcp_github.transport_socket).toBeUndefined();
    expect(clusters.mcp_github.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address).toEqual({ address: "127.0.0.1", port_value: 3001 });
    for (const [name, host] of [["mcp_docs", "docs.example.com"], ["mcp_docs_oauth", "idp.example.com"]]) {
      const tls = clusters[name].transport_socket.typed_config;
      expect(tls.sni).toBe(host);
      expect(tls.common_tls_context.validation_context.match_typed_subject_alt_names).toEqual([{ san_type: "DNS", matcher: { exact: host } }]);
      expect(clusters[name].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value).toBe(443);
    }
    expect(validateEnvoyConfig(envoy).errors).toEqual([]);
    expect(validateEnvoyConfig(renderEnvoy(parseGatewayConfig(BASE + MCP + FULL_CHAIN, { env: ENV }))).errors).toEqual([]);
  });

  it("the local gateway's view of the render has the servers' clusters, and the filter with its environment keys", () => {
    const local = parseRendered(renderFiles(cfg));
    expect(local.clusters.mcp_github.url).toBe("http://127.0.0.1:3001");
    expect(local.clusters.mcp_docs.url).toBe("https://docs.example.com:443");
    const f = local.filters.find((x) => x.filterName === "sluice.mcp")!;
    expect(f.allowOnHeadersStopIteration).toBe(true);
    expect(f.hostEnvKeys).toContain("SLUICE_MCP_SESSION_KEY");
  });

  it("the access log prints the MCP fields from filter state", () => {
    const format = hcm(envoy).access_log[0].typed_config.log_format.json_format;
    for (const k of ["mcp_method", "mcp_server", "mcp_tool", "mcp_outcome", "jsonrpc_id"]) expect(format[k]).toBe(`%FILTER_STATE(wasm.sluice.${k}:PLAIN)%`);
  });

  it("stats_tags turn the mcp metrics' labels (method, server, tool, reason, outcome) into tags", () => {
    for (const t of ["method", "server", "tool", "reason", "outcome"]) expect(envoy.stats_config.stats_tags).toContainEqual({ tag_name: t, regex: `(;${t}=([^;]*))` });
  });

  it("is not rendered without an mcp section", () => {
    const plain = parseGatewayConfig(BASE, { env: ENV });
    expect(hcm(renderEnvoy(plain)).http_filters.map((f: any) => f.name)).not.toContain("sluice.mcp");
    expect(renderEnvoy(plain).static_resources.clusters.map((c: any) => c.name)).toEqual(["small"]);
    expect(Object.keys(renderIstio(plain))).not.toContain("mcp.yaml");
  });

  it("settings and their defaults: path, session, sizes, timeout; an access entry inherits default_access's argument limit", () => {
    const c = parseGatewayConfig(
      BASE + MCP.replace("mcp:\n", "mcp:\n  path: /tools/mcp\n  session: { key_env: MY_KEY, ttl: 30m }\n  max_body_bytes: 2048\n  max_response_bytes: 8192\n  timeout: 1500ms\n  default_access: { deny: [\"*__delete_*\"], max_argument_bytes: 1024 }\n")
        .replace("      max_argument_bytes: 65536\n", "    - groups: [ml]\n") + "identity: { sources: [{ header: x-user, trusted: true }], groups: { header: x-groups, trusted: true } }\nfilters: { key_auth: { anonymous: guest } }\n",
      { env: ENV },
    );
    const j = mcpConfigOf(renderEnvoy(c));
    expect(j).toMatchObject({ path: "/tools/mcp", session: { key_env: "MY_KEY", ttl_ms: 1800000 }, max_body_bytes: 2048, max_response_bytes: 8192, timeout_ms: 1500 });
    expect(j.access).toEqual([
      { consumers: ["alice"], groups: [], allow: ["github__*"], deny: ["github__delete_*"], max_argument_bytes: 1024 },
      { consumers: [], groups: ["ml"], allow: ["*"], deny: [], max_argument_bytes: 1024 },
    ]);
    expect(j.default_access).toEqual({ allow: ["*"], deny: ["*__delete_*"], max_argument_bytes: 1024 });
  });

  it("refuses what it cannot apply, with line and field", () => {
    const srv = (extra: string) => BASE + `mcp:\n  servers:\n    - name: github\n      url: http://127.0.0.1:3001/mcp\n${extra}`;
    const one = (yaml: string) => problemsOf(yaml, ENV).join("\n");
    expect(one(BASE + "mcp:\n  servers: []\n")).toMatch(/:\d+:\d+: mcp\.servers: must list at least 1 item/);
    expect(one(BASE + "mcp: { servers: [{ name: Git_Hub, url: http://a/mcp }] }\n")).toMatch(/mcp\.servers\[0\]\.name: "Git_Hub" is not valid/);
    expect(one(BASE + "mcp: { servers: [{ name: a, url: http://a/mcp }, { name: a, url: http://b/mcp }] }\n")).toMatch(/mcp\.servers\[1\]\.name: duplicate server name 'a'/);
    expect(one(BASE + "mcp: { servers: [{ name: a, url: ftp://a/mcp }] }\n")).toMatch(/mcp\.servers\[0\]\.url: an MCP server's url must be an http:\/\/ or https:\/\/ URL/);
    expect(one(BASE + "mcp: { servers: [{ name: a, url: 'not a url' }] }\n")).toMatch(/mcp\.servers\[0\]\.url: "not a url" is not a valid URL/);
    expect(one(BASE + "mcp: { servers: [{ name: a, url: 'http://u:p@a/mcp' }] }\n")).toMatch(/mcp\.servers\[0\]\.url: must not carry a user or password/);
    expect(one(BASE + "mcp: { servers: [{ name: a, url: 'http://a/mcp?x=1' }] }\n")).toMatch(/mcp\.servers\[0\]\.url: must have no query string/);
    expect(one(srv("      auth: { value_env: T }\n      oauth: { token_url: https://idp/t, client_id_env: I, client_secret_env: S }\n"))).toMatch(/mcp\.servers\[0\]\.oauth: give auth or oauth, not both/);
    expect(one(srv("      auth: { header: Host, value_env: T }\n"))).toMatch(/mcp\.servers\[0\]\.auth\.header: 'host' is a header HTTP, MCP, Envoy or the gateway itself sets/);
    expect(one(srv("      auth: { header: X-Sluice-Cluster, value_env: T }\n"))).toMatch(/mcp\.servers\[0\]\.auth\.header: 'x-sluice-cluster' is a header/);
    expect(one(srv("      auth: { value_env: 'not-a-var' }\n"))).toMatch(/mcp\.servers\[0\]\.auth\.value_env: "not-a-var" is not valid/);
    expect(one(srv("      auth: { header: x-key }\n"))).toMatch(/mcp\.servers\[0\]\.auth: missing required field 'value_env'/);
    expect(one(srv("      oauth: { token_url: https://idp/t, client_id_env: I }\n"))).toMatch(/mcp\.servers\[0\]\.oauth: missing required field 'client_secret_env'/);
    expect(one(srv("  access: [{ allow: ['*'] }]\n"))).toMatch(/mcp\.access\[0\]: names no consumers and no groups/);
    expect(one(srv("  access: [{ groups: [ml] }]\n"))).toMatch(/mcp\.access\[0\]\.groups: no consumer has groups: identity\.groups is not configured/);
    expect(one(srv("  access: [{ consumers: [alice], allow: ['gihtub__*'] }]\n"))).toMatch(/mcp\.access\[0\]\.allow\[0\]: 'gihtub__\*' names no configured server 'gihtub' \(mcp\.servers: github\)/);
    expect(one(srv("  default_access: { deny: ['a b'] }\n"))).toMatch(/mcp\.default_access\.deny\[0\]: "a b" is not valid/);
    expect(one(srv("  session: { ttl: 30s }\n"))).toMatch(/mcp\.session\.ttl: must be at least 1m/);
    expect(one(srv("  session: { ttl: 1d }\n"))).toMatch(/mcp\.session\.ttl: "1d" is not valid/);
    expect(one(srv("  path: /mcp?x\n"))).toMatch(/mcp\.path: "\/mcp\?x" is not valid/);
    expect(one(srv("  max_body_bytes: 20000000\n"))).toMatch(/mcp\.max_body_bytes: 20000000 is above what the route lets a filter buffer \(10485760/);
    expect(one(srv("  servers2: []\n"))).toMatch(/mcp\.servers2: unknown field 'servers2'/);
    expect(one(BASE.replace("providers: [{ name: small", "providers: [{ name: mcp_github") + "mcp: { servers: [{ name: github, url: http://a/mcp }] }\n")).toMatch(/mcp\.servers\[0\]\.name: its cluster mcp_github has the name of a provider instance/);
    expect(one(BASE + "mcp: { servers: [" + Array.from({ length: 33 }, (_, i) => `{ name: s${i}, url: http://a/mcp }`).join(", ") + "] }\n")).toMatch(/mcp\.servers: must list at most 32 items/);
  });

  it("warns about settings that cannot take effect as written", () => {
    const c = parseGatewayConfig(BASE + "mcp:\n  max_body_bytes: 4096\n  default_access: { max_argument_bytes: 8192 }\n  servers:\n    - name: a\n      url: http://a/mcp\n      oauth: { token_url: http://idp.example.com/t, client_id_env: I, client_secret_env: S }\n", { env: ENV });
    expect(c.warnings.join("\n")).toMatch(/mcp\.default_access\.max_argument_bytes: above mcp\.max_body_bytes \(4096\)/);
    expect(c.warnings.join("\n")).toMatch(/mcp\.servers\[0\]\.oauth\.token_url: plain http: the client secret crosses the network unencrypted/);
  });

  it("a refusal the filter names in its own JSON points at gateway.yaml's field", () => {
    expect(gatewayField("mcp.session.key_env")).toBe("mcp.session.key_env");
    expect(gatewayField("mcp.session.ttl_ms")).toBe("mcp.session.ttl");
    expect(gatewayField("mcp.timeout_ms")).toBe("mcp.timeout");
    expect(gatewayField("mcp.servers[1].authority")).toBe("mcp.servers[1].url");
    expect(gatewayField("mcp.servers[1].oauth.path")).toBe("mcp.servers[1].oauth.token_url");
    expect(gatewayField("mcp.servers[1].auth.value_env")).toBe("mcp.servers[1].auth.value_env");
    expect(gatewayField("mcp.access[0].deny[2]")).toBe("mcp.access[0].deny[2]");
    expect(gatewayField("mcp.cluster_header")).toBe("filters.ai_proxy.cluster_header");
    expect(gatewayField("mcp")).toBe("mcp");
  });

  it("Istio: a WasmPlugin (FAIL_CLOSE, before ai-router), first in the EnvoyFilter's chain, ServiceEntries for servers outside the mesh", () => {
    const full = parseGatewayConfig(BASE + MCP + FULL_CHAIN, { env: ENV });
    const files = renderIstio(full);
    const plugin = files["mcp.yaml"].docs[0] as any;
    expect(plugin.spec).toMatchObject({ pluginName: "mcp", phase: "UNSPECIFIED_PHASE", priority: 40, failStrategy: "FAIL_CLOSE" });
    expect(plugin.spec.vmConfig.env.map((e: any) => e.name)).toEqual(["SLUICE_MCP_SESSION_KEY", "GITHUB_MCP_TOKEN", "DOCS_ID", "DOCS_SECRET"]);
    expect(plugin.spec.pluginConfig.servers.map((s: any) => s.cluster)).toEqual(["outbound|3001||127.0.0.1", "outbound|443||docs.example.com", "outbound|8080||search-mcp.tools.svc.cluster.local"]);
    expect(plugin.spec.pluginConfig.servers[1].oauth.cluster).toBe("outbound|443||idp.example.com");
    const crds = JSON.parse(readFileSync("test/fixtures/istio-crds/1.30.3.json", "utf8")).schemas;
    const wasm = new Ajv({ strict: false, allErrors: true }).compile(crds["extensions.istio.io/v1alpha1/WasmPlugin"]);
    expect(wasm(plugin), JSON.stringify(wasm.errors)).toBe(true);

    const ef = files[ISTIO_ENVOYFILTER].docs[0] as any;
    const chain = ef.spec.configPatches.filter((p: any) => p.applyTo === "HTTP_FILTER").map((p: any) => p.patch.value);
    expect(chain.map((f: any) => f.name)).toEqual(["sluice.mcp", "sluice.ai_router", "sluice.ai_guard", "sluice.ai_ratelimit", "sluice.ai_proxy"]);
    expect(chain[0].typed_config.config.allow_on_headers_stop_iteration).toBe(true);
    expect(chain[0].typed_config.config.failure_policy).toBe("FAIL_CLOSED");
    const envoyFilter = new Ajv({ strict: false, allErrors: true }).compile(crds["networking.istio.io/v1alpha3/EnvoyFilter"]);
    expect(envoyFilter(ef), JSON.stringify(envoyFilter.errors)).toBe(true);
    expect(files[ISTIO_ENVOYFILTER].comment).toMatch(/SLUICE_MCP_SESSION_KEY, GITHUB_MCP_TOKEN, DOCS_ID, DOCS_SECRET/);

    const hosts = files["providers.yaml"].docs.filter((d: any) => d.kind === "ServiceEntry").map((d: any) => d.spec.hosts[0]);
    expect(hosts).toEqual(["api.openai.com", "127.0.0.1", "docs.example.com", "idp.example.com"]);
    const rule = files["providers.yaml"].docs.find((d: any) => d.kind === "DestinationRule" && d.spec.host === "docs.example.com") as any;
    expect(rule.spec.trafficPolicy.tls).toEqual({ mode: "SIMPLE", sni: "docs.example.com" });
  });
});

describe("the AI filters after mcp leave an MCP request alone", () => {
  it("ai-router, ai-guard, ai-ratelimit and ai-proxy pass /mcp, its body and its SSE answer through, and keep the cluster header mcp set", async () => {
    const cfg = parseGatewayConfig(BASE + MCP + FULL_CHAIN, { env: ENV });
    const local = parseRendered(renderFiles(cfg));
    const ai = local.filters.filter((f) => ["sluice.ai_router", "sluice.ai_guard", "sluice.ai_ratelimit", "sluice.ai_proxy"].includes(f.filterName));
    expect(ai).toHaveLength(4);
    const h = await Host.create({
      filters: ai.map((f) => ({ name: f.name, wasm: f.wasmFile.replace("/etc/sluice/build", "build"), configuration: f.configuration, allowOnHeadersStopIteration: f.allowOnHeadersStopIteration, env: { OPENAI_API_KEY: "sk-o" } })),
    });
    // What the mcp filter leaves for them: a routed tools/call, pointed at the server's cluster.
    const body = JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/call", params: { name: "echo", arguments: { text: "hello there" } } });
    const s = h.newStream();
    // ...and the filter state it writes, which tells ai-proxy the cluster header is the gateway's own.
    s.filterState.set("wasm.sluice.mcp_method", Buffer.from("tools/call"));
    s.filterState.set("wasm.sluice.mcp_tool", Buffer.from("github__echo"));
    s.callOnRequestHeaders({ ":method": "POST", ":path": "/mcp", ":authority": "127.0.0.1:3001", "content-type": "application/json", accept: "application/json, text/event-stream", "x-sluice-cluster": "mcp_github", "mcp-session-id": "abc" }, false);
    s.callOnRequestBody(body, true);
    expect(s.getSentLocalResponse()).toBeNull();
    const up = s.upstream.headers!;
    const get = (n: string) => up.filter(([k]) => k === n).map(([, v]) => v);
    expect(get("x-sluice-cluster")).toEqual(["mcp_github"]);
    expect(get(":path")).toEqual(["/mcp"]);
    expect(get(":authority")).toEqual(["127.0.0.1:3001"]);
    expect(get("authorization")).toEqual([]);
    expect(s.upstream.body.toString()).toBe(body);
    const sse = 'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}\n\nevent: message\ndata: {"jsonrpc":"2.0","id":7,"result":{"content":[]}}\n\n';
    s.callOnResponseHeaders({ ":status": "200", "content-type": "text/event-stream" }, false);
    s.callOnResponseBody(sse.slice(0, 40), false);
    s.callOnResponseBody(sse.slice(40), true);
    expect(s.downstream.body.toString()).toBe(sse);
    expect(s.getFilterState("sluice.request_type")).toBe("traditional_http");
    expect(h.logs.filter((l) => l.level === "error" || l.level === "critical")).toEqual([]);
    h.close();
  });
});

describe("the shipped examples", () => {
  it("gateway.yaml's commented mcp section renders and validates once uncommented", () => {
    const text = readFileSync("gateway.yaml", "utf8");
    const start = text.indexOf("# mcp:\n");
    expect(start).toBeGreaterThan(0);
    // The section runs to the first blank line (the next commented example follows it).
    const section = text.slice(start).split("\n\n")[0].split("\n").filter((l) => l.startsWith("#")).map((l) => l.replace(/^# ?/, "")).join("\n");
    const cfg = parseGatewayConfig(text + "\n" + section + "\n", { env: {} });
    expect(cfg.mcp?.servers.map((s) => s.name)).toEqual(["github", "docs"]);
    expect(validateEnvoyConfig(renderEnvoy(cfg)).errors).toEqual([]);
  });

  it("docs/mcp.md's example renders and validates", () => {
    const doc = readFileSync("docs/mcp.md", "utf8");
    const example = /```yaml\n(mcp:\n[\s\S]*?)```/.exec(doc)?.[1];
    expect(example).toBeDefined();
    const cfg = parseGatewayConfig(BASE + example! + "identity: { sources: [{ header: x-user, trusted: true }], groups: { header: x-groups, trusted: true } }\nfilters: { key_auth: { anonymous: guest } }\n", { env: ENV });
    expect(validateEnvoyConfig(renderEnvoy(cfg)).errors).toEqual([]);
  });
});
