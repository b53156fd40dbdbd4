// Shared by the ai-guard answer tests: a request through ai-guard, then its answer (whole or as
// server-sent events cut into chunks anywhere) and what reached the client.
import type { Host } from "../host/index.js";
import { send } from "./ai-guard-helpers.js";

export type Api = "chat" | "messages";
export const PATHS: Record<Api, string> = { chat: "/v1/chat/completions", messages: "/v1/messages" };

export function request(api: Api, text: string, stream = false) {
  return api === "chat"
    ? { model: "m", stream, messages: [{ role: "user", content: text }] }
    : { model: "m", max_tokens: 100, stream, messages: [{ role: "user", content: text }] };
}

/** A Chat Completions stream of these text deltas, as OpenAI writes it. */
export function chatSse(deltas: string[], opts: { finish?: string; args?: string[] } = {}): string {
  const head = { id: "chatcmpl-1", object: "chat.completion.chunk", created: 1700000000, model: "gpt-4o" };
  const ev = (choice: object) => `data: ${JSON.stringify({ ...head, choices: [choice] })}\n\n`;
  let s = ev({ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null });
  for (const d of deltas) s += ev({ index: 0, delta: { content: d }, finish_reason: null });
  if (opts.args) {
    s += ev({ index: 0, delta: { tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "f", arguments: "" } }] }, finish_reason: null });
    for (const a of opts.args) s += ev({ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: a } }] }, finish_reason: null });
  }
  s += ev({ index: 0, delta: {}, finish_reason: opts.finish ?? "stop" });
  s += `data: ${JSON.stringify({ ...head, choices: [], usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 } })}\n\n`;
  return s + "data: [DONE]\n\n";
}

/** An Anthropic Messages stream of these text deltas (one text block), as Anthropic writes it. */
export function messagesSse(deltas: string[], opts: { json?: string[] } = {}): string {
  const ev = (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  let s = ev("message_start", { message: { id: "msg_1", type: "message", role: "assistant", model: "claude", content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 5, output_tokens: 1 } } });
  s += ev("content_block_start", { index: 0, content_block: { type: "text", text: "" } });
  s += ev("ping", {});
  for (const d of deltas) s += ev("content_block_delta", { index: 0, delta: { type: "text_delta", text: d } });
  s += ev("content_block_stop", { index: 0 });
  if (opts.json) {
    s += ev("content_block_start", { index: 1, content_block: { type: "tool_use", id: "toolu_1", name: "f", input: {} } });
    for (const j of opts.json) s += ev("content_block_delta", { index: 1, delta: { type: "input_json_delta", partial_json: j } });
    s += ev("content_block_stop", { index: 1 });
  }
  s += ev("message_delta", { delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: 7 } });
  return s + ev("message_stop", {});
}

/** Sends the request, then the answer in chunks cut at the given byte offsets; returns what the client got. */
export function exchange(h: Host, api: Api, prompt: string, answer: string | object, cuts: number[] = [], status = 200) {
  const streamed = typeof answer === "string";
  const r = send(h, PATHS[api], request(api, prompt, streamed));
  if (r.reply) throw new Error("request refused: " + r.reply.body);
  const s = r.s;
  const bytes = Buffer.from(streamed ? (answer as string) : JSON.stringify(answer));
  const headers: Record<string, string> = { ":status": String(status), "content-type": streamed ? "text/event-stream" : "application/json" };
  if (!streamed) headers["content-length"] = String(bytes.length);
  s.callOnResponseHeaders(headers, false);
  let at = 0;
  const points = [...cuts.filter((c) => c > 0 && c < bytes.length), bytes.length];
  for (const c of points) {
    s.callOnResponseBody(bytes.subarray(at, c), c === bytes.length);
    at = c;
  }
  return {
    s,
    upstream: r.upstream(),
    body: s.downstream.body.toString(),
    local: s.getSentLocalResponse(),
    headers: s.downstream.headers,
    verdict: s.getFilterState("sluice.guard_response_verdict"),
    categories: s.getFilterState("sluice.guard_response_categories"),
  };
}

/** The events of a server-sent stream (data parsed unless [DONE]). */
export function events(body: string): { event?: string; data: any }[] {
  return body.split("\n\n").filter((b) => b.trim()).map((block) => {
    let event: string | undefined;
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event: ")) event = line.slice(7);
      else if (line.startsWith("data: ")) data.push(line.slice(6));
    }
    const d = data.join("\n");
    return { event, data: d === "[DONE]" ? d : JSON.parse(d) };
  });
}

/** The text a Chat or Messages client assembles from a stream. */
export function streamedText(api: Api, body: string): string {
  let t = "";
  for (const e of events(body)) {
    if (e.data === "[DONE]") continue;
    if (api === "chat") for (const c of e.data.choices ?? []) t += c.delta?.content ?? "";
    else if (e.data.type === "content_block_delta" && e.data.delta.type === "text_delta") t += e.data.delta.text;
  }
  return t;
}

export function streamedArgs(api: Api, body: string): string {
  let t = "";
  for (const e of events(body)) {
    if (e.data === "[DONE]") continue;
    if (api === "chat") for (const c of e.data.choices ?? []) for (const tc of c.delta?.tool_calls ?? []) t += tc.function?.arguments ?? "";
    else if (e.data.type === "content_block_delta" && e.data.delta.type === "input_json_delta") t += e.data.delta.partial_json;
  }
  return t;
}
