// OAuth client-credentials tokens for MCP servers (lib/oauth-token.ts through the compiled mcp
// filter), against the mock token endpoint (scripts/mocks/oauth-token.ts): one fetch serves every
// worker, the token goes on fan-out and routed calls as a Bearer token, it is fetched again before it
// expires, a failing endpoint backs off and recovers, the secret never reaches a log, and a call with
// no token is a JSON-RPC error naming the reason.
import { describe, it, expect, beforeAll, afterAll, beforeEach } from "vitest";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Host } from "../host/index.js";
import { startTokenMock, type TokenMock } from "../scripts/mocks/oauth-token.js";

const WASM = "build/mcp.wasm";
const SECRET = "very-secret-client-secret";
let idp: TokenMock;
let mcp: http.Server;
let mcpUrl = "";
const seenAuth: string[] = [];
let nowMs = 1_800_000_000_000;

beforeAll(async () => {
  idp = await startTokenMock({ clientId: "gw-client", clientSecret: SECRET, expiresIn: 600 });
  mcp = http.createServer((req, res) => {
    let data = "";
    req.on("data", (c) => (data += c));
    req.on("end", () => {
      seenAuth.push(String(req.headers.authorization));
      const m = JSON.parse(data || "{}");
      if (req.headers.authorization !== `Bearer ${idp.issued.at(-1)}`) return void res.writeHead(401).end();
      if (m.id === undefined) return void res.writeHead(202).end();
      const result = m.method === "initialize" ? { protocolVersion: "2025-06-18", capabilities: { tools: {} }, serverInfo: { name: "docs", version: "1" } } : { tools: [{ name: "find", inputSchema: { type: "object" } }] };
      res.writeHead(200, { "content-type": "application/json", "mcp-session-id": "up-1" }).end(JSON.stringify({ jsonrpc: "2.0", id: m.id, result }));
    });
  });
  await new Promise<void>((r) => mcp.listen(0, "127.0.0.1", r));
  mcpUrl = `http://127.0.0.1:${(mcp.address() as AddressInfo).port}/mcp`;
});
afterAll(async () => {
  await idp.close();
  await new Promise((r) => mcp.close(r));
});
beforeEach(() => {
  idp.mode = "ok";
  idp.requests.length = 0;
  seenAuth.length = 0;
});

async function gateway(workers = 2) {
  const u = new URL(idp.url);
  return Host.create({
    filters: [{
      name: "mcp", rootId: "mcp", wasm: WASM, allowOnHeadersStopIteration: true, workers,
      configuration: {
        timeout_ms: 1000,
        servers: [{
          name: "docs", cluster: "mcp_docs", authority: new URL(mcpUrl).host, path: "/mcp",
          oauth: { cluster: "mcp_docs_oauth", authority: u.host, path: u.pathname, client_id_env: "DOCS_ID", client_secret_env: "DOCS_SECRET", scope: "read tools", audience: "" },
        }],
      },
      env: { SLUICE_MCP_SESSION_KEY: "k".repeat(40), DOCS_ID: "gw-client", DOCS_SECRET: SECRET },
    }],
    clusters: { mcp_docs: mcpUrl, mcp_docs_oauth: idp.url.replace(/\/oauth\/token$/, "") },
    clock: () => BigInt(nowMs) * 1_000_000n,
  });
}

async function initialize(h: Host, worker = 0) {
  const s = h.newStream({ worker });
  const body = JSON.stringify({ jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } } });
  s.callOnRequestHeaders({ ":method": "POST", ":path": "/mcp", ":authority": "gw", "content-type": "application/json" }, false);
  s.callOnRequestBody(body, true);
  await h.settle();
  const r = s.getSentLocalResponse()!;
  return { status: r.statusCode, sid: Object.fromEntries(r.headers)["mcp-session-id"], body: JSON.parse(r.body.toString()) };
}

describe("OAuth tokens for MCP servers", () => {
  it("one fetch on the first tick serves every worker; the token goes to the server as Bearer; the secret is never logged", async () => {
    const issued = idp.issued.length;
    const h = await gateway(2);
    h.tick(); // the first tick of both workers: one fetches, the other sees its lease
    await h.settle();
    expect(idp.issued.length - issued).toBe(1);
    expect(idp.requests[0]).toEqual({ grant_type: "client_credentials", client_id: "gw-client", client_secret: SECRET, scope: "read tools" });
    for (const w of [0, 1]) expect((await initialize(h, w)).status).toBe(200);
    expect(seenAuth.every((a) => a === `Bearer ${idp.issued.at(-1)}`)).toBe(true);
    h.tick();
    await h.settle();
    expect(idp.issued.length - issued).toBe(1); // still fresh: no fetch on the tick
    expect(h.getMetric("sluice.upstream_token_fetches;server=docs;outcome=ok")?.value).toBe(1n);
    const logs = h.getLogEntries().map((e) => e.message).join("\n");
    expect(logs).not.toContain(SECRET);
    expect(logs).not.toContain(idp.issued.at(-1));
    h.close();
  });

  it("fetches a new token before the old one expires, once for all workers", async () => {
    const h = await gateway(3);
    h.tick();
    await h.settle();
    const first = idp.issued.at(-1);
    nowMs += 470_000; // 600 s token: refreshed from 480 s (a fifth before its end)
    h.tick();
    await h.settle();
    expect(idp.issued.at(-1)).toBe(first);
    nowMs += 20_000;
    h.tick();
    await h.settle();
    expect(idp.requests.length).toBe(2);
    expect(idp.issued.at(-1)).not.toBe(first);
    expect((await initialize(h, 2)).status).toBe(200);
    expect(seenAuth.at(-1)).toBe(`Bearer ${idp.issued.at(-1)}`);
    h.close();
  });

  it("a failing endpoint: calls get a JSON-RPC error naming why, retries back off, and a token comes once it recovers", async () => {
    idp.mode = "unauthorized";
    const h = await gateway(1);
    h.tick();
    await h.settle();
    const r = await initialize(h);
    expect(r.status).toBe(502);
    expect(r.body.error.message).toMatch(/docs: no access token for it: the token endpoint answered HTTP 401 \(check the client id and secret\)/);
    expect(seenAuth).toEqual([]); // never asked without its credential
    h.tick(); // within the 1 s backoff: no new request
    await h.settle();
    expect(idp.requests.length).toBe(1);
    idp.mode = "garbage";
    nowMs += 1500;
    h.tick();
    await h.settle();
    expect(idp.requests.length).toBe(2);
    expect(h.getLogs("warn").at(-1)).toMatch(/no usable access_token/);
    idp.mode = "ok";
    nowMs += 1500; // the second failure waits 2 s
    h.tick();
    await h.settle();
    expect(idp.requests.length).toBe(2);
    nowMs += 1000;
    h.tick();
    await h.settle();
    expect(idp.requests.length).toBe(3);
    expect((await initialize(h)).status).toBe(200);
    expect(h.getMetric("sluice.upstream_token_fetches;server=docs;outcome=error")?.value).toBe(2n);
    h.close();
  });
});
