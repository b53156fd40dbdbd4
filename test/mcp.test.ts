// The mcp filter through the compiled module and the host, against official-SDK MCP servers
// (scripts/mocks/mcp-server.ts) and a small paginating server: sessions sealed in the id (another
// worker reads them; tampered, expired or another consumer's are 404), merged lists and cursors,
// routing, refusals, and configurations the filter refuses.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Host, HostLoadError } from "../host/index.js";
import { startMcpServer, type McpTestServer } from "../scripts/mocks/mcp-server.js";
import { sealSession } from "../scripts/mocks/mcp-session.js";

const WASM = "build/mcp.wasm";
const KEY = "s".repeat(40);
let alpha: McpTestServer;
let beta: McpTestServer;
let pages: http.Server; // answers tools/list three tools at a time
let pagesUrl = "";
let nowNs = BigInt(Date.now()) * 1_000_000n;

function server(name: string, url: string, extra: object = {}) {
  const u = new URL(url);
  return { name, cluster: `mcp_${name}`, authority: u.host, path: u.pathname, ...extra };
}

async function mcpHost(extra: object = {}, workers = 2) {
  return Host.create({
    filters: [{
      name: "mcp", rootId: "mcp", wasm: WASM, allowOnHeadersStopIteration: true, workers,
      configuration: { servers: [server("alpha", alpha.url, { auth: { header: "authorization", value_env: "ALPHA_TOKEN", prefix: "Bearer " } }), server("beta", beta.url), server("pages", pagesUrl)], ...extra },
      env: { SLUICE_MCP_SESSION_KEY: KEY, ALPHA_TOKEN: "alpha-secret" },
    }],
    clusters: { mcp_alpha: alpha.url, mcp_beta: beta.url, mcp_pages: pagesUrl },
    clock: () => nowNs,
  });
}

const INIT = { jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } } };

function post(h: Host, body: unknown, opts: { session?: string; consumer?: string; worker?: number; raw?: string } = {}) {
  const s = h.newStream({ worker: opts.worker ?? 0 });
  if (opts.consumer !== undefined) s.filterState.set("wasm.sluice.consumer", Buffer.from(opts.consumer));
  const bytes = Buffer.from(opts.raw ?? JSON.stringify(body));
  const headers: Record<string, string> = { ":method": "POST", ":path": "/mcp", ":authority": "gw", "content-type": "application/json", accept: "application/json, text/event-stream", "content-length": String(bytes.length), authorization: "Bearer client-key" };
  if (opts.session) headers["mcp-session-id"] = opts.session;
  s.callOnRequestHeaders(headers, false);
  s.callOnRequestBody(bytes, true);
  return s;
}

async function answer(h: Host, s: ReturnType<Host["newStream"]>) {
  await h.settle();
  const r = s.getSentLocalResponse();
  if (!r) return null;
  return { status: r.statusCode, headers: Object.fromEntries(r.headers), body: r.body.length ? JSON.parse(r.body.toString()) : null };
}

async function initialize(h: Host, consumer = "alice", worker = 0): Promise<string> {
  const r = await answer(h, post(h, INIT, { consumer, worker }));
  expect(r!.status).toBe(200);
  return r!.headers["mcp-session-id"] as string;
}

const noTraps = (h: Host) => expect(h.getLogEntries().filter((e) => /failed: Uncaught|abort|RuntimeError/i.test(e.message))).toEqual([]);

beforeAll(async () => {
  alpha = await startMcpServer({ name: "alpha", token: "alpha-secret" });
  beta = await startMcpServer({ name: "beta", stateless: true, json: true });
  pages = http.createServer((req, res) => {
    let data = "";
    req.on("data", (c) => (data += c));
    req.on("end", () => {
      const m = JSON.parse(data || "{}");
      if (!m.id && m.id !== 0) return void res.writeHead(202).end();
      let result: object = {};
      if (m.method === "initialize") result = { protocolVersion: "2025-06-18", capabilities: { tools: {} }, serverInfo: { name: "pages", version: "1" } };
      if (m.method === "tools/list") {
        const at = Number(m.params?.cursor ?? 0);
        const tools = [0, 1, 2].map((i) => at + i).filter((i) => i < 7).map((i) => ({ name: `t${i}`, inputSchema: { type: "object" } }));
        result = at + 3 < 7 ? { tools, nextCursor: String(at + 3) } : { tools };
      }
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", id: m.id, result }));
    });
  });
  await new Promise<void>((r) => pages.listen(0, "127.0.0.1", r));
  pagesUrl = `http://127.0.0.1:${(pages.address() as AddressInfo).port}/mcp`;
});

afterAll(async () => {
  await alpha.close();
  await beta.close();
  await new Promise((r) => pages.close(r));
});

describe("mcp sessions", () => {
  it("a session opened on worker 0 is served on worker 1: nothing is kept per VM", async () => {
    const h = await mcpHost();
    const sid = await initialize(h, "alice", 0);
    expect(sid).toMatch(/^1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    // The upstream session ids are inside, encrypted: not readable in the id.
    for (const id of alpha.sessions) expect(sid).not.toContain(id);
    const r = await answer(h, post(h, { jsonrpc: "2.0", id: 1, method: "tools/list" }, { session: sid, consumer: "alice", worker: 1 }));
    expect(r!.status).toBe(200);
    expect(r!.body.result.tools.map((t: { name: string }) => t.name)).toContain("alpha__echo");
    noTraps(h);
    h.close();
  });

  it("a tampered, foreign-key, expired or another consumer's session is 404 with a JSON-RPC error", async () => {
    const h = await mcpHost();
    const sid = await initialize(h);
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === "A" ? "B" : "A") + s.slice(i + 1);
    const other = await mcpHost({ session: { key_env: "OTHER_KEY" } }).catch((e) => e);
    expect(other).toBeInstanceOf(HostLoadError); // OTHER_KEY is not in the VM's environment
    const bad = [flip(sid, 5), flip(sid, sid.length - 2), sid.replace(/^1\./, "2."), sid + "A", "garbage", "1..", "1." + "A".repeat(5000)];
    for (const id of bad) {
      const r = await answer(h, post(h, { jsonrpc: "2.0", id: 7, method: "tools/list" }, { session: id, consumer: "alice" }));
      expect(r!.status, id.slice(0, 30)).toBe(404);
      expect(r!.body).toMatchObject({ jsonrpc: "2.0", id: 7, error: { code: -32001 } });
    }
    const bob = await answer(h, post(h, { jsonrpc: "2.0", id: 8, method: "tools/list" }, { session: sid, consumer: "bob" }));
    expect(bob!.status).toBe(404);
    nowNs += 25n * 3600n * 1_000_000_000n; // past the default 24 h
    const late = await answer(h, post(h, { jsonrpc: "2.0", id: 9, method: "tools/list" }, { session: sid, consumer: "alice" }));
    expect(late!.status).toBe(404);
    noTraps(h);
    h.close();
  });

  it("reads a session id written from the documented format by another implementation", async () => {
    const h = await mcpHost({}, 1);
    const real = await initialize(h);
    const upstream = [...alpha.sessions].at(-1)!;
    const sid = sealSession(KEY, { openedMs: Number(nowNs / 1_000_000n), consumer: "alice", version: "2025-06-18", members: [{ server: "alpha", id: upstream, version: "2025-06-18" }] });
    expect(sid).not.toBe(real);
    const s = post(h, { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "alpha__echo", arguments: { text: "x" } } }, { session: sid, consumer: "alice" });
    expect(s.getSentLocalResponse()).toBeNull();
    expect(Object.fromEntries(s.upstream.headers!)["mcp-session-id"]).toBe(upstream);
    // A server the configuration no longer has is dropped from the session, not an error.
    const gone = sealSession(KEY, { openedMs: Number(nowNs / 1_000_000n), consumer: "alice", version: "2025-06-18", members: [{ server: "removed", id: "x", version: "2025-06-18" }, { server: "alpha", id: upstream, version: "2025-06-18" }] });
    expect(post(h, { jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: "alpha__echo", arguments: {} } }, { session: gone, consumer: "alice" }).getSentLocalResponse()).toBeNull();
    h.close();
  });

  it("a session id sealed with another secret does not open", async () => {
    const h = await mcpHost();
    const sid = await initialize(h);
    const h2 = await Host.create({
      filters: [{ name: "mcp", rootId: "mcp", wasm: WASM, allowOnHeadersStopIteration: true, configuration: { servers: [server("alpha", alpha.url)] }, env: { SLUICE_MCP_SESSION_KEY: "t".repeat(40) } }],
      clusters: { mcp_alpha: alpha.url }, clock: () => nowNs,
    });
    const r = await answer(h2, post(h2, { jsonrpc: "2.0", id: 1, method: "ping" }, { session: sid, consumer: "alice" }));
    expect(r!.status).toBe(404);
    h.close();
    h2.close();
  });
});

describe("mcp lists, routing and refusals", () => {
  it("merges a paginated server page by page with one cursor holding each server's own", async () => {
    const h = await mcpHost();
    const sid = await initialize(h);
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let i = 0; i < 5; i++) {
      const r = await answer(h, post(h, { jsonrpc: "2.0", id: 10 + i, method: "tools/list", ...(cursor ? { params: { cursor } } : {}) }, { session: sid, consumer: "alice" }));
      seen.push(...r!.body.result.tools.map((t: { name: string }) => t.name).filter((n: string) => n.startsWith("pages__")));
      cursor = r!.body.result.nextCursor;
      if (!cursor) break;
    }
    expect(seen).toEqual(["pages__t0", "pages__t1", "pages__t2", "pages__t3", "pages__t4", "pages__t5", "pages__t6"]);
    const forged = await answer(h, post(h, { jsonrpc: "2.0", id: 20, method: "tools/list", params: { cursor: "not-ours" } }, { session: sid, consumer: "alice" }));
    expect(forged!.body.error.code).toBe(-32602);
    h.close();
  });

  it("routes a call to its server with the server's name, session and credential, never the client's", async () => {
    const h = await mcpHost();
    const sid = await initialize(h);
    const s = post(h, { jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: "alpha__echo", arguments: { text: "hi" } } }, { session: sid, consumer: "alice" });
    expect(s.getSentLocalResponse()).toBeNull();
    const up = Object.fromEntries(s.upstream.headers!);
    expect(up["x-sluice-cluster"]).toBe("mcp_alpha");
    expect(up[":path"]).toBe(new URL(alpha.url).pathname);
    expect(up.authorization).toBe("Bearer alpha-secret");
    expect(alpha.sessions.has(up["mcp-session-id"])).toBe(true);
    expect(JSON.parse(s.upstream.body.toString())).toEqual({ jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: "echo", arguments: { text: "hi" } } });
    expect(s.getFilterState("sluice.mcp_server")).toBe("alpha");
    expect(s.getFilterState("sluice.mcp_tool")).toBe("alpha__echo");
    expect(s.routeCacheClears).toBeGreaterThan(0);
    // The server's answer: its own session id is not passed to the client.
    s.callOnResponseHeaders({ ":status": "200", "content-type": "application/json", "mcp-session-id": up["mcp-session-id"] }, false);
    s.callOnResponseBody('{"jsonrpc":"2.0","id":3,"result":{"content":[]}}', true);
    expect(s.downstream.headers!.some(([k]) => k === "mcp-session-id")).toBe(false);
    h.close();
  });

  it("an unreachable server's failure is a JSON-RPC error naming it, not the router's body", async () => {
    const h = await mcpHost();
    const sid = await initialize(h);
    const s = post(h, { jsonrpc: "2.0", id: 4, method: "tools/call", params: { name: "beta__echo", arguments: {} } }, { session: sid, consumer: "alice" });
    s.routerLocalReply(503, "upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: 127.0.0.1:1 refused", "upstream_reset_before_response_started{connection_failure}", "UF");
    const body = JSON.parse(s.downstream.body.toString());
    expect(body).toEqual({ jsonrpc: "2.0", id: 4, error: { code: -32603, message: "MCP server 'beta' is unavailable: it answered HTTP 503" } });
    s.completeHttpContext();
    expect(h.getMetric("sluice.mcp_calls;server=beta;tool=beta__echo;outcome=upstream_error")?.value).toBe(1n);
    h.close();
  });

  it("refuses what it cannot route or must not: unknown server, denied tool, oversized arguments, unknown method", async () => {
    const h = await mcpHost({ default_access: { allow: ["alpha__*", "beta__*"], deny: ["*__delete_*"], max_argument_bytes: 64 } });
    const sid = await initialize(h);
    const call = (id: number, name: string, args: object = {}) => answer(h, post(h, { jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: args } }, { session: sid, consumer: "alice" }));
    const cases: [number, string, object, number, RegExp][] = [
      [1, "gamma__echo", {}, -32602, /names no server/],
      [2, "echo", {}, -32602, /names no server/],
      [3, "alpha__delete_repo", {}, -32602, /not allowed for this consumer/],
      [4, "pages__t0", {}, -32602, /not allowed for this consumer/],
      [5, "alpha__echo", { text: "x".repeat(100) }, -32602, /more than this consumer may send/],
    ];
    for (const [id, name, args, code, msg] of cases) {
      const r = await call(id, name, args);
      expect(r!.status, name).toBe(200);
      expect(r!.body.id).toBe(id);
      expect(r!.body.error.code).toBe(code);
      expect(r!.body.error.message).toMatch(msg);
    }
    const listed = await answer(h, post(h, { jsonrpc: "2.0", id: 6, method: "tools/list" }, { session: sid, consumer: "alice" }));
    const names = listed!.body.result.tools.map((t: { name: string }) => t.name);
    expect(names).not.toContain("alpha__delete_repo");
    expect(names.some((n: string) => n.startsWith("pages__"))).toBe(false);
    const unknown = await answer(h, post(h, { jsonrpc: "2.0", id: "x", method: "tools/frob" }, { session: sid, consumer: "alice" }));
    expect(unknown).toMatchObject({ status: 200, body: { id: "x", error: { code: -32601 } } });
    h.close();
  });

  it("hostile bodies get JSON-RPC errors and never trap", async () => {
    const h = await mcpHost({}, 1);
    const sid = await initialize(h);
    const bodies = [
      "", "{", "[]", "[1,2,3]", "null", "42", '"x"', "{}", '{"jsonrpc":"1.0","id":1,"method":"ping"}', '{"jsonrpc":"2.0","id":{},"method":"ping"}',
      '{"jsonrpc":"2.0","id":1,"method":7}', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"x"}', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":7}}',
      `{"jsonrpc":"2.0","id":"${"i".repeat(300)}","method":"ping"}`, `{"jsonrpc":"2.0","id":1,"method":"${"m".repeat(200)}"}`,
      '{"jsonrpc":"2.0","id":1,"result":{}}', '{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":7}}',
      "[".repeat(5000) + "]".repeat(5000), '{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"alpha+"}}',
      '{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt"}}}',
    ];
    for (let i = 0; i < 300; i++) bodies.push(Buffer.from(Array.from({ length: 1 + (i % 64) }, (_, j) => (i * 31 + j * 17) % 256)).toString("latin1"));
    for (const raw of bodies) {
      for (const session of [undefined, sid]) {
        const s = post(h, null, { raw, session, consumer: "alice" });
        const r = await answer(h, s);
        if (r === null) continue; // routed on (a valid call): the router answers
        expect(r.body?.jsonrpc ?? "2.0", raw.slice(0, 40)).toBe("2.0");
        if (r.status !== 200 || r.body?.error) expect(r.body.error.code, raw.slice(0, 40)).toBeTypeOf("number");
      }
    }
    noTraps(h);
    h.close();
  });
});

describe("mcp fan-out bounds", () => {
  it("leaves out the servers whose answers would pass 4 x max_response_bytes together, with the reason", async () => {
    // Five servers answering a list of about 1.4 KB each; with max_response_bytes 1536 the bound for a
    // fan-out's answers together is 6 KiB: four fit, the fifth is left out.
    const big = http.createServer((req, res) => {
      let data = "";
      req.on("data", (c) => (data += c));
      req.on("end", () => {
        const m = JSON.parse(data || "{}");
        if (m.id === undefined) return void res.writeHead(202).end();
        const result = m.method === "initialize" ? { protocolVersion: "2025-06-18", capabilities: { tools: {} }, serverInfo: { name: "b", version: "1" } } : { tools: [{ name: "t", description: "d".repeat(1300), inputSchema: { type: "object" } }] };
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", id: m.id, result }));
      });
    });
    await new Promise<void>((r) => big.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(big.address() as AddressInfo).port}/mcp`;
    const names = ["s1", "s2", "s3", "s4", "s5"];
    const h = await Host.create({
      filters: [{ name: "mcp", rootId: "mcp", wasm: WASM, allowOnHeadersStopIteration: true, configuration: { max_response_bytes: 1536, servers: names.map((n) => server(n, url)) }, env: { SLUICE_MCP_SESSION_KEY: KEY } }],
      clusters: Object.fromEntries(names.map((n) => [`mcp_${n}`, url])),
      clock: () => nowNs,
    });
    const sid = await initialize(h);
    const r = await answer(h, post(h, { jsonrpc: "2.0", id: 1, method: "tools/list" }, { session: sid, consumer: "alice" }));
    expect(r!.body.result.tools).toHaveLength(4);
    expect(h.getLogs("warn").some((l) => /left out of tools\/list: the servers' answers together are larger than 4 x max_response_bytes/.test(l))).toBe(true);
    h.close();
    await new Promise((res) => big.close(res));
  });
});

describe("mcp configuration", () => {
  it("refuses to start without a session secret of 32 bytes, or with an OAuth server it cannot serve", async () => {
    const base = { name: "mcp", rootId: "mcp", wasm: WASM, allowOnHeadersStopIteration: true };
    const cfg = { servers: [server("alpha", "http://127.0.0.1:1/mcp")] };
    for (const [env, configuration, why] of [
      [{}, cfg, /SLUICE_MCP_SESSION_KEY must hold a secret of at least 32 bytes/],
      [{ SLUICE_MCP_SESSION_KEY: "short" }, cfg, /at least 32 bytes/],
      [{ SLUICE_MCP_SESSION_KEY: KEY }, { servers: [server("alpha", "http://127.0.0.1:1/mcp", { oauth: {} })] }, /servers\[0\]\.oauth: needs cluster, authority and a path/],
      [{ SLUICE_MCP_SESSION_KEY: KEY }, { servers: [server("alpha", "http://127.0.0.1:1/mcp", { oauth: { cluster: "t", authority: "t", path: "/t", client_id_env: "ID", client_secret_env: "SECRET" } })] }, /ID is not set/],
      [{ SLUICE_MCP_SESSION_KEY: KEY }, { servers: [server("a_b", "http://127.0.0.1:1/mcp")] }, /servers\[0\]\.name/],
      [{ SLUICE_MCP_SESSION_KEY: KEY }, { servers: [server("alpha", "http://127.0.0.1:1/mcp", { auth: { value_env: "NOPE" } })] }, /NOPE is not set/],
    ] as [Record<string, string>, object, RegExp][]) {
      const e = await Host.create({ filters: [{ ...base, configuration, env }] }).catch((x) => x);
      expect(e).toBeInstanceOf(HostLoadError);
      expect((e as HostLoadError).logs.join("\n")).toMatch(why);
    }
  });
});
