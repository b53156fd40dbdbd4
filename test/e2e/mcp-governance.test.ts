// MCP governance end to end, as an operator would run it: the official SDK client and SDK servers
// behind the local gateway with two workers (--concurrency 2), one server reached with an OAuth
// client-credentials token from a token endpoint, ai-guard checking tool arguments and results, and
// an ai-ratelimit requests rule on calls per consumer and tool.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent } from "undici";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { render } from "../../cli/render.js";
import { startLocalGateway, type LocalGateway } from "../../cli/start.js";
import { startMcpServer, type McpTestServer } from "../../scripts/mocks/mcp-server.js";
import { startTokenMock, type TokenMock } from "../../scripts/mocks/oauth-token.js";

let idp: TokenMock;
let crm: McpTestServer; // wants the token the identity provider issues first (tok-1)
let gw: LocalGateway;
const workers: number[] = [];
const clients: Client[] = [];

beforeAll(async () => {
  idp = await startTokenMock({ clientId: "gw", clientSecret: "gw-secret" });
  crm = await startMcpServer({ name: "crm", token: "tok-1" });
  const dir = mkdtempSync(join(tmpdir(), "sluice-mcp-gov-"));
  writeFileSync(join(dir, "gateway.yaml"), `
listener: { address: 127.0.0.1, port: 10000 }
consumers: [{ name: alice, keys: [sk-alice] }]
providers: [{ name: small, provider: openai, api_key_env: OPENAI_API_KEY }]
mcp:
  servers:
    - name: crm
      url: ${crm.url}
      oauth: { token_url: ${idp.url}, client_id_env: CRM_ID, client_secret_env: CRM_SECRET, scope: tools }
filters:
  ai_guard:
    detectors:
      email: { request: mask_and_restore }
      card: { request: block, response: block }
  ai_ratelimit:
    rules:
      - { name: tool-calls, key: [consumer, mcp_tool], when: { mcp_method: tools/call }, limit: 4, window: 1m, strategy: requests }
`);
  render({ config: join(dir, "gateway.yaml"), outDir: join(dir, "envoy"), env: {} });
  gw = await startLocalGateway({ envoyYaml: join(dir, "envoy", "envoy.yaml"), port: 0, adminPort: 0, env: { CRM_ID: "gw", CRM_SECRET: "gw-secret" }, concurrency: 2, accessLog: () => {} });
  const host = gw.host;
  const newStream = host.newStream.bind(host);
  host.newStream = (opts = {}) => {
    workers.push(opts.worker ?? -1);
    return newStream(opts);
  };
  // The token is fetched on the filter's first tick (a second after it starts); wait for it to land.
  for (let i = 0; i < 300 && idp.issued.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
});

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {});
  await gw?.close();
  await crm?.close();
  await idp?.close();
});

/** A client on a connection of its own (its own undici pool), so it may land on another worker. */
async function connect(sessionId?: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const dispatcher = new Agent({ connections: 1 });
  const client = new Client({ name: "gov", version: "1" });
  const transport = new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`), {
    requestInit: { headers: { authorization: "Bearer sk-alice" } },
    fetch: (url, init) => fetch(url, { ...(init as RequestInit), dispatcher } as RequestInit),
    ...(sessionId ? { sessionId } : {}),
  });
  await client.connect(transport);
  clients.push(client);
  return { client, transport };
}

describe("MCP governance through the gateway", () => {
  it("reaches an OAuth server with one token for both workers, and a session serves on either worker", async () => {
    expect(idp.issued).toEqual(["tok-1"]);
    const a = await connect();
    const from = workers.length;
    expect(await a.client.callTool({ name: "crm__echo", arguments: { text: "one" } })).toMatchObject({ content: [{ text: "crm: one" }] });
    const b = await connect(a.transport.sessionId);
    expect(await b.client.callTool({ name: "crm__echo", arguments: { text: "two" } })).toMatchObject({ content: [{ text: "crm: two" }] });
    // The two connections ran on the two workers, with the one session.
    expect(new Set(workers.slice(from)).size).toBe(2);
    expect(idp.requests).toHaveLength(1);
    expect(crm.requests.every((r) => r.headers.authorization === "Bearer tok-1")).toBe(true);
  });

  it("ai-guard blocks a card number in a tool's arguments and restores a masked address in its result", async () => {
    const { client } = await connect();
    const blocked = await client.callTool({ name: "crm__add", arguments: { a: 1, b: 2, note: "4111 1111 1111 1111" } as never }).then(() => null, (e) => e);
    expect(blocked).toBeInstanceOf(McpError);
    expect((blocked as McpError).code).toBe(-32602);
    expect((blocked as McpError).message).toMatch(/blocked by the gateway's guard: it contains card/);
    const echoed = await client.callTool({ name: "crm__echo", arguments: { text: "write to jane@corp.example" } });
    expect(echoed).toMatchObject({ content: [{ text: "crm: write to jane@corp.example" }] });
    const seen = crm.requests.filter((r) => r.rpcMethod === "tools/call").map((r) => (r.body as any).params.arguments.text);
    expect(seen).toContain("write to <EMAIL_1>");
    expect(JSON.stringify(crm.requests)).not.toContain("4111 1111");
  });

  it("limits calls per consumer and tool: the fifth crm__echo in a minute is a JSON-RPC 429", async () => {
    const { client } = await connect();
    let refused: Error | null = null;
    for (let i = 0; i < 6 && !refused; i++) {
      refused = await client.callTool({ name: "crm__echo", arguments: { text: `n${i}` } }).then(() => null, (e: Error) => e);
    }
    expect(refused).not.toBeNull();
    expect((refused as Error & { code?: number }).code).toBe(429); // the SDK's StreamableHTTPError carries the status
    expect(refused!.message).toMatch(/-32000/);
    expect(refused!.message).toMatch(/rule 'tool-calls' on requests per 1m/);
    // Another tool has a counter of its own.
    expect(await client.callTool({ name: "crm__add", arguments: { a: 2, b: 2 } })).toMatchObject({ structuredContent: { sum: 4 } });
  });
});
