// Shared by the ai-guard answer tests: a request through ai-guard, then its answer (whole or as
// server-sent events cut into chunks anywhere) and what reached the client.
import type { Host } from "../host/index.js";
import { send } from "./ai-guard-helpers.js";

export type Api = "chat" | "messages" | "responses" | "gemini";
const PATHS: Record<Api, string> = { chat: "/v1/chat/completions", messages: "/v1/messages", responses: "/v1/responses", gemini: "" };

export function path(api: Api, stream: boolean): string {
  if (api !== "gemini") return PATHS[api];
  return stream ? "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse" : "/v1beta/models/gemini-2.5-flash:generateContent";
}

export function request(api: Api, text: string, stream = false) {
  if (api === "chat") return { model: "m", stream, messages: [{ role: "user", content: text }] };
  if (api === "messages") return { model: "m", max_tokens: 100, stream, messages: [{ role: "user", content: text }] };
  if (api === "responses") return { model: "m", stream, input: text };
  return { contents: [{ role: "user", parts: [{ text }] }] };
}

/** An OpenAI Responses stream of these text deltas (one message item), as OpenAI writes it. */
export function responsesSse(deltas: string[], opts: { args?: string[] } = {}): string {
  let seq = 0;
  const ev = (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data, sequence_number: seq++ })}\n\n`;
  const head = { id: "resp_1", object: "response", created_at: 1700000000, model: "gpt-4o" };
  const full = deltas.join("");
  const item = { id: "msg_1", type: "message", status: "completed", role: "assistant", content: [{ type: "output_text", text: full, annotations: [] }] };
  let s = ev("response.created", { response: { ...head, status: "in_progress", output: [] } });
  s += ev("response.output_item.added", { output_index: 0, item: { ...item, status: "in_progress", content: [] } });
  s += ev("response.content_part.added", { item_id: "msg_1", output_index: 0, content_index: 0, part: { type: "output_text", text: "", annotations: [] } });
  for (const d of deltas) s += ev("response.output_text.delta", { item_id: "msg_1", output_index: 0, content_index: 0, delta: d, logprobs: [] });
  s += ev("response.output_text.done", { item_id: "msg_1", output_index: 0, content_index: 0, text: full, logprobs: [] });
  s += ev("response.content_part.done", { item_id: "msg_1", output_index: 0, content_index: 0, part: { type: "output_text", text: full, annotations: [] } });
  s += ev("response.output_item.done", { output_index: 0, item });
  const output: object[] = [item];
  if (opts.args) {
    const args = opts.args.join("");
    const call = { id: "fc_1", type: "function_call", status: "completed", call_id: "call_1", name: "f", arguments: args };
    s += ev("response.output_item.added", { output_index: 1, item: { ...call, arguments: "", status: "in_progress" } });
    for (const a of opts.args) s += ev("response.function_call_arguments.delta", { item_id: "fc_1", output_index: 1, delta: a });
    s += ev("response.function_call_arguments.done", { item_id: "fc_1", output_index: 1, name: "f", arguments: args });
    s += ev("response.output_item.done", { output_index: 1, item: call });
    output.push(call);
  }
  return s + ev("response.completed", { response: { ...head, status: "completed", output, usage: { input_tokens: 5, output_tokens: 7, total_tokens: 12 } } });
}

/** A Gemini alt=sse stream of these text deltas, as Gemini writes it. */
export function geminiSse(deltas: string[]): string {
  let s = "";
  deltas.forEach((d, i) => {
    const last = i === deltas.length - 1;
    s += `data: ${JSON.stringify({ candidates: [{ content: { role: "model", parts: [{ text: d }] }, index: 0, ...(last ? { finishReason: "STOP" } : {}) }], ...(last ? { usageMetadata: { promptTokenCount: 5, candidatesTokenCount: 7, totalTokenCount: 12 } } : {}), modelVersion: "gemini-2.5-flash" })}\r\n\r\n`;
  });
  return s;
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
  const r = send(h, path(api, streamed), request(api, prompt, streamed));
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
  return body.replace(/\r\n/g, "\n").split("\n\n").filter((b) => b.trim()).map((block) => {
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
    else if (api === "responses") t += e.data.type === "response.output_text.delta" ? e.data.delta : "";
    else if (api === "gemini") for (const c of e.data.candidates ?? []) for (const p of c.content?.parts ?? []) t += p.text ?? "";
    else if (e.data.type === "content_block_delta" && e.data.delta.type === "text_delta") t += e.data.delta.text;
  }
  return t;
}

export function streamedArgs(api: Api, body: string): string {
  let t = "";
  for (const e of events(body)) {
    if (e.data === "[DONE]") continue;
    if (api === "chat") for (const c of e.data.choices ?? []) for (const tc of c.delta?.tool_calls ?? []) t += tc.function?.arguments ?? "";
    else if (api === "responses") t += e.data.type === "response.function_call_arguments.delta" ? e.data.delta : "";
    else if (e.data.type === "content_block_delta" && e.data.delta.type === "input_json_delta") t += e.data.delta.partial_json;
  }
  return t;
}
