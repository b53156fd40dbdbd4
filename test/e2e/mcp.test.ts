// The MCP gateway end to end: the official @modelcontextprotocol/sdk client against three official SDK
// servers (scripts/mocks/mcp-server.ts: stateful SSE with a token, stateless JSON, stateful JSON)
// behind the local gateway started from a rendered gateway.yaml `mcp` section, as `npm start` runs it.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { render } from "../../cli/render.js";
import { validateEnvoyYaml } from "../../cli/envoy-validate.js";
import { startLocalGateway, type LocalGateway } from "../../cli/start.js";
import { startMcpServer, type McpTestServer } from "../../scripts/mocks/mcp-server.js";

const SESSION_KEY = "k".repeat(16) + "0123456789abcdef0123456789abcdef";
const GITHUB_TOKEN = "gh-server-token";
const ENV = { SLUICE_MCP_SESSION_KEY: SESSION_KEY, GITHUB_MCP_TOKEN: GITHUB_TOKEN };
const TOOLS = ["add", "count", "delete_repo", "echo", "fail"];

let github: McpTestServer; // stateful, SSE answers, needs the gateway's token
let docs: McpTestServer; // stateless, JSON answers
let search: McpTestServer; // stateful, JSON answers
let envoyYaml: string;
let gw: LocalGateway;
let gw2: LocalGateway; // a second replica with the same session key
const log: string[] = [];
const clients: Client[] = [];

function gatewayYaml(): string {
  return `
listener: { address: 127.0.0.1, port: 10000 }
admin: { port: 9901 }
consumers:
  - name: alice
    keys: [sk-alice-123]
  - name: bob
    keys: [sk-bob-456]
providers:
  - name: small
    provider: openai
    api_key_env: OPENAI_API_KEY
mcp:
  servers:
    - name: github
      url: ${github.url}
      auth: { header: authorization, value_env: GITHUB_MCP_TOKEN, prefix: "Bearer " }
    - name: docs
      url: ${docs.url}
    - name: search
      url: ${search.url}
    - name: offline
      url: http://127.0.0.1:9/mcp
  timeout: 2s
  access:
    - consumers: [bob]
      allow: ["github__*", "docs__*"]
      deny: ["github__delete_*"]
      max_argument_bytes: 200
`;
}

async function connect(url: string, key: string | null, sessionId?: string, protocolVersion?: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: "e2e", version: "1.0.0" });
  const headers: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};
  const transport = new StreamableHTTPClientTransport(new URL(`${url}/mcp`), { requestInit: { headers }, ...(sessionId ? { sessionId } : {}) });
  if (protocolVersion) transport.setProtocolVersion(protocolVersion);
  await client.connect(transport);
  clients.push(client);
  return { client, transport };
}

/** The JSON-RPC error a call ended with. */
async function rpcError(p: Promise<unknown>): Promise<McpError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(McpError);
    return e as McpError;
  }
  throw new Error("the call succeeded");
}

const logLines = () => log.flatMap((l) => l.split("\n").filter(Boolean)).map((l) => JSON.parse(l));

beforeAll(async () => {
  github = await startMcpServer({ name: "github", token: GITHUB_TOKEN });
  docs = await startMcpServer({ name: "docs", stateless: true, json: true });
  search = await startMcpServer({ name: "search", json: true });
  const dir = mkdtempSync(join(tmpdir(), "sluice-mcp-"));
  writeFileSync(join(dir, "gateway.yaml"), gatewayYaml());
  render({ config: join(dir, "gateway.yaml"), outDir: join(dir, "envoy"), env: {} });
  envoyYaml = join(dir, "envoy", "envoy.yaml");
  expect(validateEnvoyYaml(readFileSync(envoyYaml, "utf8")).errors).toEqual([]);
  gw = await startLocalGateway({ envoyYaml, port: 0, adminPort: 0, env: ENV, accessLog: (l) => log.push(l) });
  gw2 = await startLocalGateway({ envoyYaml, port: 0, adminPort: 0, env: ENV, accessLog: () => {} });
});

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {});
  await gw?.close();
  await gw2?.close();
  for (const s of [github, docs, search]) await s?.close();
});

describe("MCP through the gateway", () => {
  it("merges the servers' tools, prompts and resources under the servers' names", async () => {
    const { client, transport } = await connect(gw.url, "sk-alice-123");
    expect(transport.sessionId).toMatch(/^[!-~]+$/);
    const tools = (await client.listTools()).tools.map((t) => t.name).sort();
    expect(tools).toEqual(["docs", "github", "search"].flatMap((s) => TOOLS.map((t) => `${s}__${t}`)));
    expect((await client.listPrompts()).prompts.map((p) => p.name).sort()).toEqual(["docs__greeting", "github__greeting", "search__greeting"]);
    expect((await client.listResources()).resources.map((r) => r.uri).sort()).toEqual(["docs+note://docs/readme", "github+note://github/readme", "search+note://search/readme"]);
    expect((await client.listResourceTemplates()).resourceTemplates.map((r) => r.uriTemplate).sort()).toEqual([
      "docs+note://docs/notes/{id}", "github+note://github/notes/{id}", "search+note://search/notes/{id}",
    ]);
    await client.ping();
  });

  it("routes each call to the server that owns it, results as the server gave them", async () => {
    const { client } = await connect(gw.url, "sk-alice-123");
    expect(await client.callTool({ name: "github__echo", arguments: { text: "hi" } })).toMatchObject({ content: [{ type: "text", text: "github: hi" }] });
    expect(await client.callTool({ name: "docs__add", arguments: { a: 2, b: 3 } })).toMatchObject({ content: [{ type: "text", text: "docs: 5" }], structuredContent: { sum: 5 } });
    expect(await client.callTool({ name: "search__echo", arguments: { text: "q" } })).toMatchObject({ content: [{ type: "text", text: "search: q" }] });
    // A tool's own error is the server's answer, passed on.
    expect(await client.callTool({ name: "search__fail", arguments: {} })).toMatchObject({ isError: true, content: [{ type: "text", text: "search: failed on purpose" }] });
  });

  it("relays the progress notifications a server streams before its result", async () => {
    const { client } = await connect(gw.url, "sk-alice-123");
    const progress: number[] = [];
    const r = await client.callTool({ name: "github__count", arguments: { n: 4, delay_ms: 20 } }, undefined, { onprogress: (p) => progress.push(p.progress) });
    expect(r.content).toEqual([{ type: "text", text: "github: counted to 4" }]);
    expect(progress).toEqual([1, 2, 3, 4]);
  });

  it("gets prompts and reads resources through their prefixed names, the uri given back prefixed", async () => {
    const { client } = await connect(gw.url, "sk-alice-123");
    expect((await client.getPrompt({ name: "docs__greeting", arguments: { who: "bob" } })).messages[0].content).toEqual({ type: "text", text: "docs greets bob" });
    expect((await client.readResource({ uri: "github+note://github/readme" })).contents).toEqual([{ uri: "github+note://github/readme", mimeType: "text/plain", text: "github readme" }]);
    expect((await client.readResource({ uri: "search+note://search/notes/7" })).contents).toEqual([{ uri: "search+note://search/notes/7", mimeType: "text/plain", text: "search note 7" }]);
  });

  it("hides and refuses the tools a consumer may not use, and refuses arguments over its limit", async () => {
    const before = github.requests.length;
    const { client } = await connect(gw.url, "sk-bob-456");
    const tools = (await client.listTools()).tools.map((t) => t.name).sort();
    expect(tools).toEqual(["docs__add", "docs__count", "docs__delete_repo", "docs__echo", "docs__fail", "github__add", "github__count", "github__echo", "github__fail"]);
    for (const name of ["github__delete_repo", "search__echo"]) {
      const e = await rpcError(client.callTool({ name, arguments: { repo: "x", text: "x" } }));
      expect(e.code).toBe(-32602);
      expect(e.message).toMatch(/not allowed for this consumer/);
    }
    const big = await rpcError(client.callTool({ name: "github__echo", arguments: { text: "x".repeat(300) } }));
    expect(big.code).toBe(-32602);
    expect(await client.callTool({ name: "github__echo", arguments: { text: "small" } })).toMatchObject({ content: [{ type: "text", text: "github: small" }] });
    // The refused calls never reached the server.
    const calls = github.requests.slice(before).filter((r) => r.rpcMethod === "tools/call").map((r) => (r.body as any).params);
    expect(calls).toEqual([{ name: "echo", arguments: { text: "small" } }]);
  });

  it("a session opened on one replica is served by another with the same session key", async () => {
    const sessionsBefore = github.sessions.size;
    const a = await connect(gw.url, "sk-alice-123");
    expect(github.sessions.size).toBe(sessionsBefore + 1);
    expect(await a.client.callTool({ name: "github__echo", arguments: { text: "on a" } })).toMatchObject({ content: [{ text: "github: on a" }] });
    const b = await connect(gw2.url, "sk-alice-123", a.transport.sessionId, a.transport.protocolVersion);
    expect(await b.client.callTool({ name: "github__echo", arguments: { text: "on b" } })).toMatchObject({ content: [{ text: "github: on b" }] });
    expect(await b.client.callTool({ name: "search__echo", arguments: { text: "on b" } })).toMatchObject({ content: [{ text: "search: on b" }] });
    // No new upstream session: replica b used the one replica a opened.
    expect(github.sessions.size).toBe(sessionsBefore + 1);
    // Another consumer cannot use it: 404, as for an unknown session.
    const res = await fetch(`${gw2.url}/mcp`, {
      method: "POST",
      headers: { authorization: "Bearer sk-bob-456", "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-session-id": a.transport.sessionId! },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    expect(res.status).toBe(404);
    expect((await res.json()).error.code).toBeTypeOf("number");
  });

  it("ending the session ends each server's session", async () => {
    const { client, transport } = await connect(gw.url, "sk-alice-123");
    await client.listTools();
    const upstream = [...github.sessions];
    await transport.terminateSession();
    expect(github.deleted.some((id) => upstream.includes(id))).toBe(true);
  });

  it("no key: 401, and nothing reaches a server", async () => {
    const before = github.requests.length + docs.requests.length + search.requests.length;
    const res = await fetch(`${gw.url}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "x", version: "1" } } }),
    });
    expect(res.status).toBe(401);
    await expect(connect(gw.url, null)).rejects.toThrow();
    expect(github.requests.length + docs.requests.length + search.requests.length).toBe(before);
  });

  it("the client's key never reaches a server; the server's own credential does", () => {
    for (const s of [github, docs, search]) {
      expect(s.requests.length).toBeGreaterThan(0);
      for (const r of s.requests) {
        const all = JSON.stringify(r.headers);
        expect(all).not.toContain("sk-alice-123");
        expect(all).not.toContain("sk-bob-456");
      }
    }
    expect(github.requests.every((r) => r.headers.authorization === `Bearer ${GITHUB_TOKEN}`)).toBe(true);
    for (const s of [docs, search]) expect(s.requests.every((r) => r.headers.authorization === undefined)).toBe(true);
  });

  it("a server that is down is left out with a logged reason; the others keep working", async () => {
    // `offline` never answered: left out of every session, and said why.
    const warned = gw.host.logs.filter((l) => l.level === "warn" && l.message.includes("offline"));
    expect(warned.length).toBeGreaterThan(0);
    const { client } = await connect(gw.url, "sk-alice-123");
    await search.close();
    const tools = (await client.listTools()).tools.map((t) => t.name);
    expect(tools.some((t) => t.startsWith("search__"))).toBe(false);
    expect(tools.some((t) => t.startsWith("offline__"))).toBe(false);
    expect(tools).toContain("github__echo");
    expect(tools).toContain("docs__echo");
    expect(gw.host.logs.some((l) => l.level === "warn" && l.message.includes("search"))).toBe(true);
    expect(await client.callTool({ name: "docs__echo", arguments: { text: "still" } })).toMatchObject({ content: [{ text: "docs: still" }] });
    // The owning server is unreachable: 503 with a JSON-RPC error naming it (the SDK reports the
    // HTTP status and the body).
    const e = (await client.callTool({ name: "search__echo", arguments: { text: "gone" } }).then(() => null, (err: Error) => err)) as Error;
    expect(e).toBeInstanceOf(Error);
    expect(e.message).toContain("-32603");
    expect(e.message).toMatch(/MCP server 'search' is unavailable/);
    expect(e.message).not.toContain(String(search.port));
  });

  it("bad JSON-RPC gets a JSON-RPC error, never a trap; GET is 405", async () => {
    const post = (body: string, extra: Record<string, string> = {}) =>
      fetch(`${gw.url}/mcp`, { method: "POST", headers: { authorization: "Bearer sk-alice-123", "content-type": "application/json", accept: "application/json, text/event-stream", ...extra }, body });
    const cases: [string, number, number][] = [
      ["{not json", 400, -32700],
      ['[{"jsonrpc":"2.0","id":1,"method":"ping"}]', 400, -32600],
      ['{"id":1,"method":"ping"}', 400, -32600],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "x".repeat(2 * 1024 * 1024) }), 413, 0],
    ];
    for (const [body, status, code] of cases) {
      const r = await post(body);
      expect(r.status, body.slice(0, 40)).toBe(status);
      const j = await r.json();
      expect(j.jsonrpc).toBe("2.0");
      if (code) expect(j.error.code).toBe(code);
      else expect(j.error.code).toBeTypeOf("number");
    }
    const { transport } = await connect(gw.url, "sk-alice-123");
    const unknown = await post(JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/frobnicate" }), { "mcp-session-id": transport.sessionId!, "mcp-protocol-version": transport.protocolVersion! });
    expect(unknown.status).toBe(200);
    expect(await unknown.json()).toMatchObject({ jsonrpc: "2.0", id: 9, error: { code: -32601 } });
    const get = await fetch(`${gw.url}/mcp`, { headers: { authorization: "Bearer sk-alice-123", accept: "text/event-stream", "mcp-session-id": transport.sessionId! } });
    expect(get.status).toBe(405);
    await get.body?.cancel();
    expect(gw.host.logs.filter((l) => /Uncaught|abort|trap/i.test(l.message))).toEqual([]);
  });

  it("npm start without a session key: a random one for the process, and MCP works", async () => {
    const local = await startLocalGateway({ envoyYaml, port: 0, adminPort: 0, env: { GITHUB_MCP_TOKEN: GITHUB_TOKEN }, accessLog: () => {} });
    try {
      expect(local.mcpSessionKey).toEqual({ env: "SLUICE_MCP_SESSION_KEY", generated: true });
      const { client } = await connect(local.url, "sk-alice-123");
      expect(await client.callTool({ name: "github__echo", arguments: { text: "local" } })).toMatchObject({ content: [{ text: "github: local" }] });
      expect(gw.mcpSessionKey).toEqual({ env: "SLUICE_MCP_SESSION_KEY", generated: false });
    } finally {
      await local.close();
    }
  });

  it("the access log says which method, server, tool and outcome", () => {
    const lines = logLines().filter((l) => l.path === "/mcp" || l.mcp_method);
    const call = lines.find((l) => l.mcp_method === "tools/call" && l.mcp_tool === "github__echo" && l.mcp_outcome === "ok");
    expect(call).toMatchObject({ mcp_server: "github", consumer: "alice", status: 200 });
    const denied = lines.find((l) => l.mcp_tool === "github__delete_repo");
    expect(denied).toMatchObject({ mcp_method: "tools/call", consumer: "bob", mcp_outcome: "denied" });
    expect(lines.some((l) => l.mcp_method === "tools/list")).toBe(true);
    expect(lines.some((l) => l.mcp_method === "initialize")).toBe(true);
  });
});
