// OpenAI's Responses API (POST /v1/responses), as the OpenAI mock answers it: a Response object, or
// its stream of typed events (`event: <type>` and data {type, ..., sequence_number}). The shapes
// follow the openai SDK's types (resources/responses/responses.d.ts: Response, ResponseUsage,
// ResponseOutputMessage, ResponseFunctionToolCall, ResponseStreamEvent) and OpenAI's "Streaming
// events" reference: response.created, response.in_progress, per item output_item.added, (for a
// message) content_part.added, output_text.delta..., output_text.done, content_part.done, (for a
// function call) function_call_arguments.delta..., function_call_arguments.done, then
// output_item.done; and response.completed (or response.incomplete) with the usage.
import { chunkText, fragments, isObject, partsText, type Conversation, type Ctx, type Outcome, type Reply, type Turn } from "./common.js";

/** Text and image count of Responses content: a string, or input_text / output_text / input_image parts. */
const responsesText = (content: unknown) => partsText(content, () => true);

/** The neutral view of a Responses request (input items, instructions, flat function tools). */
export function responsesConversation(body: any, model: string): Conversation {
  const turns: Turn[] = [];
  const system: string[] = [];
  if (typeof body.instructions === "string") system.push(body.instructions);
  const input = typeof body.input === "string" ? [{ role: "user", content: body.input }] : Array.isArray(body.input) ? body.input : [];
  for (const item of input) {
    if (!isObject(item)) continue;
    const type = item.type ?? "message";
    if (type === "message") {
      const { text, images } = responsesText(item.content);
      if (item.role === "system" || item.role === "developer") system.push(text);
      else turns.push({ role: item.role === "assistant" ? "assistant" : "user", text, images });
    } else if (type === "function_call") {
      const prev = turns[turns.length - 1];
      const call = { id: String(item.call_id ?? ""), name: String(item.name ?? ""), args: String(item.arguments ?? "") };
      if (prev?.role === "assistant") (prev.toolCalls ??= []).push(call);
      else turns.push({ role: "assistant", text: "", images: 0, toolCalls: [call] });
    } else if (type === "function_call_output") {
      const prev = turns[turns.length - 1];
      const result = { id: String(item.call_id ?? ""), content: responsesText(item.output).text };
      if (prev?.role === "tool") prev.toolResults!.push(result);
      else turns.push({ role: "tool", text: "", images: 0, toolResults: [result] });
    }
  }
  const tools = (Array.isArray(body.tools) ? body.tools : []).filter((t: any) => isObject(t) && t.type === "function").map((t: any) => ({ name: String(t.name), schema: t.parameters }));
  const tc = body.tool_choice;
  const toolChoice: Conversation["toolChoice"] =
    tc === "none" ? { mode: "none" } : tc === "required" ? { mode: "required" } : isObject(tc) && tc.type === "function" ? { mode: "required", name: String(tc.name) } : { mode: "auto" };
  return {
    model,
    system: system.join("\n"),
    turns,
    tools,
    toolChoice,
    maxTokens: typeof body.max_output_tokens === "number" ? body.max_output_tokens : undefined,
    stop: [],
    wantsReasoning: false,
  };
}

export const responsesUsage = (r: Reply) => ({
  input_tokens: r.usage.input,
  input_tokens_details: { cached_tokens: r.usage.cached },
  output_tokens: r.usage.output + r.usage.reasoning,
  output_tokens_details: { reasoning_tokens: r.usage.reasoning },
  total_tokens: r.usage.input + r.usage.output + r.usage.reasoning,
});

interface Ids {
  resp: string;
  msg: string;
  fc: (i: number) => string;
}

function ids(ctx: Ctx): Ids {
  const base = ctx.id("response", 48, "hex");
  return { resp: `resp_${base}`, msg: `msg_${ctx.id("message", 48, "hex")}`, fc: (i) => `fc_${ctx.id(`fc${i}`, 48, "hex")}` };
}

function items(r: Reply, id: Ids, status: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  if (r.text !== "" || r.toolCalls.length === 0) {
    out.push({ id: id.msg, type: "message", status, content: [{ type: "output_text", annotations: [], logprobs: [], text: r.text }], role: "assistant" });
  }
  r.toolCalls.forEach((c, i) => out.push({ id: id.fc(i), type: "function_call", status: "completed", arguments: c.args, call_id: c.id, name: c.name }));
  return out;
}

function response(ctx: Ctx, body: any, model: string, id: Ids, status: string, output: unknown[], usage: unknown, incomplete: string | null) {
  return {
    id: id.resp,
    object: "response",
    created_at: Math.floor(ctx.now() / 1000),
    status,
    background: false,
    error: null,
    incomplete_details: incomplete ? { reason: incomplete } : null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    model: `${model}-2024-08-06`,
    output,
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    reasoning: { effort: null, summary: null },
    store: body.store ?? true,
    temperature: body.temperature ?? 1,
    text: body.text ?? { format: { type: "text" } },
    tool_choice: body.tool_choice ?? "auto",
    tools: body.tools ?? [],
    top_p: body.top_p ?? 1,
    truncation: "disabled",
    usage,
    user: null,
    metadata: body.metadata ?? {},
  };
}

/** The whole Response for a reply. */
export function responseBody(ctx: Ctx, body: any, model: string, r: Reply): Record<string, unknown> {
  const incomplete = r.finish === "length" ? "max_output_tokens" : null;
  const status = incomplete ? "incomplete" : "completed";
  return response(ctx, body, model, ids(ctx), status, items(r, ids(ctx), status), responsesUsage(r), incomplete);
}

/** The stream of events for a reply. */
export function responsesStreamFrames(ctx: Ctx, body: any, model: string, r: Reply): string[] {
  const id = ids(ctx);
  const frames: string[] = [];
  let seq = 0;
  const emit = (type: string, data: Record<string, unknown>) => frames.push(`event: ${type}\ndata: ${JSON.stringify({ type, ...data, sequence_number: seq++ })}\n\n`);
  const incomplete = r.finish === "length" ? "max_output_tokens" : null;
  const status = incomplete ? "incomplete" : "completed";
  const started = response(ctx, body, model, id, "in_progress", [], null, null);
  emit("response.created", { response: started });
  emit("response.in_progress", { response: started });
  const done = items(r, id, status);
  let index = 0;
  if (r.text !== "" || r.toolCalls.length === 0) {
    const output_index = index++;
    emit("response.output_item.added", { output_index, item: { id: id.msg, type: "message", status: "in_progress", content: [], role: "assistant" } });
    emit("response.content_part.added", { item_id: id.msg, output_index, content_index: 0, part: { type: "output_text", annotations: [], logprobs: [], text: "" } });
    for (const piece of chunkText(r.text, ctx.switches.chunks)) emit("response.output_text.delta", { item_id: id.msg, output_index, content_index: 0, delta: piece, logprobs: [], obfuscation: "x" });
    emit("response.output_text.done", { item_id: id.msg, output_index, content_index: 0, text: r.text, logprobs: [] });
    emit("response.content_part.done", { item_id: id.msg, output_index, content_index: 0, part: { type: "output_text", annotations: [], logprobs: [], text: r.text } });
    emit("response.output_item.done", { output_index, item: done[output_index] });
  }
  r.toolCalls.forEach((c, i) => {
    const output_index = index++;
    const item_id = id.fc(i);
    emit("response.output_item.added", { output_index, item: { id: item_id, type: "function_call", status: "in_progress", arguments: "", call_id: c.id, name: c.name } });
    for (const frag of fragments(c.args, ctx.switches.chunks)) emit("response.function_call_arguments.delta", { item_id, output_index, delta: frag, obfuscation: "x" });
    emit("response.function_call_arguments.done", { item_id, output_index, arguments: c.args });
    emit("response.output_item.done", { output_index, item: done[output_index] });
  });
  emit(incomplete ? "response.incomplete" : "response.completed", { response: response(ctx, body, model, id, status, done, responsesUsage(r), incomplete) });
  return frames;
}

/** A stream's failure mid-way: an `error` event (ResponseErrorEvent). */
export function responsesErrorFrame(): string {
  return `event: error\ndata: ${JSON.stringify({ type: "error", code: "server_error", message: "The server had an error while processing your request. Sorry about that!", param: null, sequence_number: 999 })}\n\n`;
}

export function responsesOutcome(ctx: Ctx, model: string, r: Reply): Outcome {
  if (ctx.json.stream === true) {
    return { type: "sse", headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" }, frames: responsesStreamFrames(ctx, ctx.json, model, r), errorFrame: responsesErrorFrame };
  }
  return { type: "json", status: 200, headers: { "content-type": "application/json" }, body: responseBody(ctx, ctx.json, model, r) };
}
