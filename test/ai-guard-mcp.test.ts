// ai-guard on MCP calls (the mcp filter routed them and said so in filter state): a tool's arguments
// blocked (a JSON-RPC error with the call's id, HTTP 200) or masked; its result, whole or as the
// server-sent events of an MCP server (progress first), restored, masked or withheld as a tool error,
// with the stream cut at every byte; other MCP methods and hostile bodies.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import type { Host } from "../host/index.js";
import { guard, send } from "./ai-guard-helpers.js";

const CONFIG = {
  detectors: {
    email: { request: "mask_and_restore", response: "mask" },
    card: { request: "block", response: "block" },
    credential: { request: "block" },
  },
};
const STATE = { "sluice.mcp_method": "tools/call", "sluice.jsonrpc_id": "41", "sluice.mcp_tool": "crm__email" };
const call = (args: object, id = 41) => ({ jsonrpc: "2.0", id, method: "tools/call", params: { name: "email", arguments: args } });
const result = (text: string, id = 41, extra: object = {}) => ({ jsonrpc: "2.0", id, result: { content: [{ type: "text", text }], ...extra } });

let h: Host;
beforeAll(async () => { h = await guard(CONFIG); });
afterAll(() => h.close());

function through(args: object, answer: { json?: object; sse?: string; cuts?: number[] }) {
  const r = send(h, "/mcp", call(args), {}, STATE);
  if (r.reply) return { r, client: null as string | null };
  const s = r.s;
  if (answer.json) {
    s.callOnResponseHeaders({ ":status": "200", "content-type": "application/json" }, false);
    s.callOnResponseBody(JSON.stringify(answer.json), true);
  } else {
    s.callOnResponseHeaders({ ":status": "200", "content-type": "text/event-stream" }, false);
    const bytes = Buffer.from(answer.sse!);
    const cuts = [0, ...(answer.cuts ?? []), bytes.length];
    for (let i = 0; i + 1 < cuts.length; i++) s.callOnResponseBody(bytes.subarray(cuts[i], cuts[i + 1]), i + 2 === cuts.length);
  }
  return { r, client: s.downstream.body.toString() };
}

const sse = (...msgs: object[]) => msgs.map((m) => `event: message\ndata: ${JSON.stringify(m)}\n\n`).join("");
const progress = (n: number) => ({ jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: 1, progress: n } });

describe("ai-guard on MCP tool calls", () => {
  it("blocks a tool's arguments with a JSON-RPC error carrying the call's id", () => {
    const { r } = through({ to: "x", body: "card 4111 1111 1111 1111" }, {});
    expect(r.reply!.statusCode).toBe(200);
    expect(JSON.parse(r.reply!.body.toString())).toEqual({ jsonrpc: "2.0", id: 41, error: { code: -32602, message: "the request was blocked by the gateway's guard: it contains card" } });
    expect(r.verdict).toBe("block");
    expect(r.s.upstream.headers).toBeNull();
  });

  it("masks an address in the arguments, and restores it in the tool's whole result", () => {
    const { r, client } = through({ to: "jane@corp.example", note: "hi" }, { json: result("mailed <EMAIL_1>; also seen: bob@other.example") });
    expect(r.upstream().params.arguments).toEqual({ to: "<EMAIL_1>", note: "hi" });
    expect(JSON.parse(client!).result.content[0].text).toBe("mailed jane@corp.example; also seen: <EMAIL_2>");
  });

  it("withholds a result with a card number as a tool error the model reads", () => {
    const { client } = through({ q: "x" }, { json: result("number: 4111 1111 1111 1111") });
    expect(JSON.parse(client!)).toEqual({ jsonrpc: "2.0", id: 41, result: { content: [{ type: "text", text: "The tool's result was withheld by the gateway's guard." }], isError: true } });
  });

  it("checks a streamed result and passes progress on as it comes, whatever the chunking", () => {
    const body = sse(progress(1), progress(2), result("for <EMAIL_1>: 4111 1111 1111 1111"));
    const whole = through({ to: "jane@corp.example" }, { sse: body }).client!;
    const events = whole.split("\n\n").filter(Boolean).map((e) => JSON.parse(e.split("data: ")[1]));
    expect(events.slice(0, 2)).toEqual([progress(1), progress(2)]);
    expect(events[2].result.isError).toBe(true);
    for (let cut = 1; cut < Buffer.byteLength(body); cut += 7) {
      expect(through({ to: "jane@corp.example" }, { sse: body, cuts: [cut] }).client, `cut at ${cut}`).toBe(whole);
    }
    const restored = through({ to: "jane@corp.example" }, { sse: sse(progress(1), result("sent to <EMAIL_1>")) }).client!;
    expect(JSON.parse(restored.split("\n\n")[1].split("data: ")[1]).result.content[0].text).toBe("sent to jane@corp.example");
  });

  it("leaves other MCP methods alone, and refuses an unreadable call as a JSON-RPC error", () => {
    const list = send(h, "/mcp", { jsonrpc: "2.0", id: 1, method: "resources/read", params: { uri: "x+y" } }, {}, { ...STATE, "sluice.mcp_method": "resources/read" });
    expect(list.reply).toBeNull();
    expect(list.verdict).toBeUndefined();
    const bad = send(h, "/mcp", "[1,2", {}, STATE);
    expect(bad.reply!.statusCode).toBe(200);
    expect(JSON.parse(bad.reply!.body.toString())).toMatchObject({ jsonrpc: "2.0", id: 41, error: { code: -32602 } });
    expect(h.getLogEntries().filter((e) => /failed: Uncaught|abort/i.test(e.message))).toEqual([]);
  });
});
