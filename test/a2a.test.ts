// The a2a filter through the compiled module and the host: cards fetched once into shared data for
// every worker and rewritten per request (v1.0 and v0.3 shapes, bearer and API key schemes, interfaces
// of other bindings dropped, signatures dropped, a hostile authority refused), routed calls with the
// agent's credential, failures as JSON-RPC errors, hostile bodies never trapping.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Host } from "../host/index.js";

const WASM = "build/a2a.wasm";
let cardServer: http.Server;
let base = "";
let fetches = 0;
const V1 = {
  name: "planner", version: "1",
  supportedInterfaces: [
    { url: "http://10.0.0.7:4000/a2a/jsonrpc", protocolBinding: "JSONRPC", protocolVersion: "1.0" },
    { url: "grpc://10.0.0.7:5000", protocolBinding: "GRPC", protocolVersion: "1.0" },
  ],
  securitySchemes: { internal: { httpAuthSecurityScheme: { scheme: "Bearer" } } },
  securityRequirements: [{ schemes: { internal: {} } }],
  signatures: [{ protected: "x", signature: "y" }],
  skills: [{ id: "plan", name: "plan" }],
};
const V03 = {
  name: "old", url: "http://10.0.0.8:4000/rpc", preferredTransport: "JSONRPC", protocolVersion: "0.3.0",
  additionalInterfaces: [{ url: "http://10.0.0.8:4000/rpc", transport: "JSONRPC" }, { url: "http://10.0.0.8:4000/rest", transport: "HTTP+JSON" }],
  securitySchemes: { k: { type: "apiKey", in: "header", name: "x-internal" } }, security: [{ k: [] }],
};

function a2aHost(extra: object = {}, workers = 2) {
  return Host.create({
    filters: [{
      name: "a2a", rootId: "a2a", wasm: WASM, allowOnHeadersStopIteration: true, workers,
      configuration: {
        agents: [
          { name: "planner", cluster: "a2a_planner", authority: "10.0.0.7:4000", path: "/a2a/jsonrpc", card_path: "/v1.json", auth: { header: "authorization", value_env: "PLANNER_TOKEN", prefix: "Bearer " } },
          { name: "old", cluster: "a2a_old", authority: "10.0.0.8:4000", path: "/rpc", card_path: "/v03.json" },
          { name: "broken", cluster: "a2a_old", authority: "10.0.0.8:4000", path: "/rpc", card_path: "/garbage" },
        ],
        ...extra,
      },
      env: { PLANNER_TOKEN: "planner-secret" },
    }],
    clusters: { a2a_planner: base, a2a_old: base },
  });
}

async function card(h: Host, agent: string, headers: Record<string, string> = {}, worker = 0) {
  const s = h.newStream({ worker });
  s.callOnRequestHeaders({ ":method": "GET", ":path": `/a2a/${agent}/.well-known/agent-card.json`, ":authority": "gw.local:8443", ":scheme": "https", ...headers }, true);
  await h.settle();
  const r = s.getSentLocalResponse()!;
  return { status: r.statusCode, body: JSON.parse(r.body.toString()) };
}

beforeAll(async () => {
  cardServer = http.createServer((req, res) => {
    fetches++;
    if (req.url === "/v1.json") return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ ...V1, seenAuth: req.headers.authorization ?? null, seenVersion: req.headers["a2a-version"] ?? null }));
    if (req.url === "/v03.json") return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(V03));
    res.writeHead(200, { "content-type": "application/json" }).end("[1,2");
  });
  await new Promise<void>((r) => cardServer.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(cardServer.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((r) => cardServer.close(r)));

describe("a2a cards", () => {
  it("rewrites a v1.0 card: the gateway's JSON-RPC URL only, its bearer scheme, no signatures; one fetch serves every worker", async () => {
    const h = await a2aHost();
    const before = fetches;
    const c = await card(h, "planner", { "a2a-version": "1.0" }, 0);
    expect(c.status).toBe(200);
    expect(c.body.supportedInterfaces).toEqual([{ protocolBinding: "JSONRPC", protocolVersion: "1.0", url: "https://gw.local:8443/a2a/planner" }]);
    expect(c.body.securitySchemes).toEqual({ sluice: { httpAuthSecurityScheme: { description: "the gateway key", scheme: "Bearer" } } });
    expect(c.body.securityRequirements).toEqual([{ schemes: { sluice: {} } }]);
    expect(c.body.signatures).toBeUndefined();
    expect(c.body.skills).toEqual(V1.skills);
    // The card fetch carried the agent's credential and the client's A2A version.
    expect(c.body.seenAuth).toBe("Bearer planner-secret");
    expect(c.body.seenVersion).toBe("1.0");
    const again = await card(h, "planner", { "a2a-version": "1.0" }, 1);
    expect(again.body.supportedInterfaces[0].url).toBe("https://gw.local:8443/a2a/planner");
    expect(fetches - before).toBe(1);
    h.close();
  });

  it("rewrites a v0.3 card with an API key scheme and public_url", async () => {
    const h = await a2aHost({ public_url: "https://agents.example.com", auth_scheme: { type: "api_key", header: "x-gateway-key" } });
    const c = await card(h, "old");
    expect(c.body.url).toBe("https://agents.example.com/a2a/old");
    expect(c.body.additionalInterfaces).toEqual([{ transport: "JSONRPC", url: "https://agents.example.com/a2a/old" }]);
    expect(c.body.securitySchemes).toEqual({ sluice: { type: "apiKey", description: "the gateway key", in: "header", name: "x-gateway-key" } });
    expect(c.body.security).toEqual([{ sluice: [] }]);
    h.close();
  });

  it("refuses a hostile authority, and an agent whose card is not JSON, with JSON-RPC errors", async () => {
    const h = await a2aHost({}, 1);
    const bad = await card(h, "planner", { ":authority": "evil.com/x\"<script>" });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/public_url/);
    const broken = await card(h, "broken");
    expect(broken.status).toBe(502);
    expect(broken.body).toMatchObject({ jsonrpc: "2.0", error: { code: -32603 } });
    h.close();
  });
});

describe("a2a calls", () => {
  it("routes an A2A call with the agent's credential and none of the client's", async () => {
    const h = await a2aHost({}, 1);
    const s = h.newStream();
    const body = JSON.stringify({ jsonrpc: "2.0", id: "r1", method: "SendStreamingMessage", params: {} });
    s.callOnRequestHeaders({ ":method": "POST", ":path": "/a2a/planner", ":authority": "gw", "content-type": "application/json", "content-length": String(body.length), authorization: "Bearer client-key", "x-api-key": "client-key", "a2a-version": "1.0" }, false);
    s.callOnRequestBody(body, true);
    const up = Object.fromEntries(s.upstream.headers!);
    expect(up[":path"]).toBe("/a2a/jsonrpc");
    expect(up[":authority"]).toBe("10.0.0.7:4000");
    expect(up["x-sluice-cluster"]).toBe("a2a_planner");
    expect(up.authorization).toBe("Bearer planner-secret");
    expect(up["x-api-key"]).toBeUndefined();
    expect(up["a2a-version"]).toBe("1.0");
    expect(s.upstream.body.toString()).toBe(body);
    expect(s.getFilterState("sluice.a2a_agent")).toBe("planner");
    expect(s.getFilterState("sluice.a2a_method")).toBe("SendStreamingMessage");
    expect(s.getFilterState("sluice.jsonrpc_id")).toBe('"r1"');
    s.routerLocalReply(504, "upstream request timeout", "upstream_response_timeout", "UT");
    expect(JSON.parse(s.downstream.body.toString())).toEqual({ jsonrpc: "2.0", id: "r1", error: { code: -32603, message: "agent 'planner' is unavailable: it did not answer in time" } });
    s.completeHttpContext();
    expect(h.getMetric("sluice.a2a_requests;server=planner;method=SendStreamingMessage;outcome=upstream_error")?.value).toBe(1n);
    h.close();
  });

  it("hostile bodies and paths get JSON-RPC errors and never trap", async () => {
    const h = await a2aHost({}, 1);
    const bodies = ["", "{", "[]", "null", '{"jsonrpc":"2.0","method":"SendMessage"}', '{"jsonrpc":"2.0","id":1,"result":{}}', '{"jsonrpc":"2.0","id":[],"method":"GetTask"}', "[".repeat(4000)];
    for (let i = 0; i < 200; i++) bodies.push(Buffer.from(Array.from({ length: 1 + (i % 50) }, (_, j) => (i * 13 + j * 7) % 256)).toString("latin1"));
    for (const body of bodies) {
      for (const path of ["/a2a/planner", "/a2a/", "/a2a/planner/x", "/a2a/%00"]) {
        const s = h.newStream();
        s.callOnRequestHeaders({ ":method": "POST", ":path": path, ":authority": "gw", "content-type": "application/json" }, body.length === 0);
        if (body.length) s.callOnRequestBody(body, true);
        const r = s.getSentLocalResponse();
        expect(r, `${path} ${body.slice(0, 20)}`).not.toBeNull();
        expect(JSON.parse(r!.body.toString()).jsonrpc).toBe("2.0");
        s.completeHttpContext();
      }
    }
    expect(h.getLogEntries().filter((e) => /failed: Uncaught|abort|RuntimeError/i.test(e.message))).toEqual([]);
    h.close();
  });
});
