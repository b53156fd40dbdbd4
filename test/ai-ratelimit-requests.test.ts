// ai-ratelimit's `strategy: requests` through the compiled module: calls per window for MCP tool calls
// and A2A methods (keyed and conditioned on what the mcp and a2a filters wrote to filter state), a
// JSON-RPC 429 for agent traffic, token rules leaving agent traffic alone, a requests rule on AI
// requests, and one counter shared by the workers.
import { describe, it, expect } from "vitest";
import { Host, HostLoadError } from "../host/index.js";

const RL = "build/ai-ratelimit.wasm";
const T0 = 1_699_920_000n * 1_000_000_000n;
let now = T0;

async function limiter(rules: object[], workers = 1) {
  return Host.create({ filters: [{ name: "ai-ratelimit", wasm: RL, configuration: { rules }, allowOnHeadersStopIteration: true, workers }], clock: () => now });
}

/** A call the mcp (or a2a) filter routed: its filter state set, the request headers only. */
function agentCall(h: Host, state: Record<string, string>, worker = 0) {
  const s = h.newStream({ worker });
  for (const [k, v] of Object.entries(state)) s.filterState.set(`wasm.sluice.${k}`, Buffer.from(v));
  const path = state.a2a_agent ? `/a2a/${state.a2a_agent}` : "/mcp";
  s.callOnRequestHeaders({ ":method": "POST", ":path": path, ":authority": "gw", "content-type": "application/json" }, false);
  s.callOnRequestBody('{"jsonrpc":"2.0","id":1,"method":"x"}', true);
  const r = s.getSentLocalResponse();
  s.completeHttpContext();
  return r;
}

const mcp = (consumer: string, tool: string, id = "7") => ({ consumer, mcp_method: "tools/call", mcp_server: tool.split("__")[0], mcp_tool: tool, jsonrpc_id: id });

describe("ai-ratelimit strategy requests", () => {
  it("counts MCP calls per consumer and tool, then answers a JSON-RPC 429 with the call's id", async () => {
    const h = await limiter([{ name: "tool-calls", key: ["consumer", "mcp_tool"], limit: 3, window: "1m", strategy: "requests" }]);
    for (let i = 0; i < 3; i++) expect(agentCall(h, mcp("alice", "github__echo"))).toBeNull();
    // Another tool, another consumer: counters of their own.
    expect(agentCall(h, mcp("alice", "github__add"))).toBeNull();
    expect(agentCall(h, mcp("bob", "github__echo"))).toBeNull();
    const r = agentCall(h, mcp("alice", "github__echo", '"call-9"'))!;
    expect(r.statusCode).toBe(429);
    const headers = Object.fromEntries(r.headers);
    expect(Number(headers["retry-after"])).toBeGreaterThan(0);
    expect(headers["x-ratelimit-limit-requests"]).toBe("3");
    expect(headers["x-ratelimit-remaining-requests"]).toBe("0");
    const body = JSON.parse(r.body.toString());
    expect(body).toMatchObject({ jsonrpc: "2.0", id: "call-9", error: { code: -32000 } });
    expect(body.error.message).toMatch(/Rate limit reached for rule 'tool-calls' on requests per 1m/);
    now += 61n * 1_000_000_000n;
    expect(agentCall(h, mcp("alice", "github__echo"))).toBeNull();
    h.close();
  });

  it("conditions on the A2A agent and method", async () => {
    const h = await limiter([{ name: "planner-sends", key: ["consumer"], when: { a2a_agent: "planner", a2a_method: ["SendMessage", "SendStreamingMessage"] }, limit: 1, window: "1h", strategy: "requests" }]);
    const a2a = (method: string, agent = "planner") => ({ consumer: "alice", a2a_agent: agent, a2a_method: method, jsonrpc_id: "1" });
    expect(agentCall(h, a2a("SendMessage"))).toBeNull();
    expect(agentCall(h, a2a("GetTask"))).toBeNull();
    expect(agentCall(h, a2a("SendMessage", "writer"))).toBeNull();
    expect(agentCall(h, a2a("SendStreamingMessage"))!.statusCode).toBe(429);
    h.close();
  });

  it("token rules leave agent traffic alone; a requests rule also counts AI requests", async () => {
    const h = await limiter([
      { name: "tokens", key: ["consumer"], limit: 10, window: "1m" },
      { name: "rpm", key: ["consumer"], limit: 2, window: "1m", strategy: "requests" },
    ]);
    // Ten MCP calls with a big body: the token rule would refuse; only rpm counts them, per call.
    now += 3600n * 1_000_000_000n;
    expect(agentCall(h, mcp("carol", "github__echo"))).toBeNull();
    expect(agentCall(h, mcp("carol", "github__echo"))).toBeNull();
    expect(agentCall(h, mcp("carol", "github__echo"))!.statusCode).toBe(429);
    // An AI request of dave's: both rules apply (rpm counts 1, tokens its estimate).
    const chat = () => {
      const s = h.newStream();
      s.filterState.set("wasm.sluice.consumer", Buffer.from("dave"));
      s.callOnRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw", "content-type": "application/json" }, false);
      s.callOnRequestBody(JSON.stringify({ model: "gpt-4o", max_tokens: 1, messages: [{ role: "user", content: "hi" }] }), true);
      const r = s.getSentLocalResponse();
      s.completeHttpContext();
      return r;
    };
    expect(chat()).toBeNull();
    expect(chat()).toBeNull();
    const third = chat()!;
    expect(third.statusCode).toBe(429);
    expect(JSON.parse(third.body.toString()).error.message).toMatch(/rule 'rpm' on requests per 1m/);
    h.close();
  });

  it("shares one counter between the workers", async () => {
    const h = await limiter([{ name: "global", key: [], limit: 4, window: "1m", strategy: "requests" }], 2);
    now += 3600n * 1_000_000_000n;
    const results = [0, 1, 0, 1, 0, 1].map((w) => agentCall(h, mcp("x", "a__b"), w)?.statusCode ?? 200);
    expect(results).toEqual([200, 200, 200, 200, 429, 429]);
    h.close();
  });

  it("refuses a stream margin or weights on a requests rule", async () => {
    for (const extra of [{ stream_margin: 10 }, { weights: { prompt: 1 } }]) {
      const e = await limiter([{ name: "r", limit: 1, window: "1m", strategy: "requests", ...extra }]).catch((x) => x);
      expect(e).toBeInstanceOf(HostLoadError);
    }
  });
});
