// An OpenAI or Azure OpenAI instance's own Responses API answers, passed to a Responses client as
// they came: read only for the usage record (and the text count a usage estimate needs when the
// answer stops early). Usage is the Response's `usage` ({input_tokens, input_tokens_details.
// cached_tokens, output_tokens, output_tokens_details.reasoning_tokens, total_tokens}; input_tokens
// includes the cached ones, as Chat's prompt_tokens does), in a whole answer and in a stream's
// terminal event (response.completed, response.incomplete or response.failed), from the `openai`
// SDK's types (resources/responses/responses.d.ts: Response, ResponseUsage, ResponseStreamEvent).
import { JsonValue, parseJsonAt } from "../../lib/json";
import { SseEvent } from "../../lib/sse";
import { ChatResult, Choice, StreamDecoder, StreamSink, ToolCall, Usage } from "../../providers/types";

function int(v: JsonValue | null, key: string): i64 {
  if (v === null || !v.isObject()) return -1;
  const n = v.get(key);
  return n !== null && n.isInteger() && n.n >= 0 ? <i64>n.n : -1;
}

/** A Response's usage into u; false when it has none. */
export function readResponsesUsage(response: JsonValue, u: Usage): bool {
  const usage = response.get("usage");
  if (usage === null || !usage.isObject()) return false;
  u.prompt = int(usage, "input_tokens");
  u.completion = int(usage, "output_tokens");
  u.total = int(usage, "total_tokens");
  const cached = int(usage.get("input_tokens_details"), "cached_tokens");
  if (cached > 0) u.cached = cached;
  const reasoning = int(usage.get("output_tokens_details"), "reasoning_tokens");
  if (reasoning > 0) u.reasoning = reasoning;
  return u.present;
}

/** Characters of text and arguments in a Response's output (for an estimate when it has no usage). */
export function responsesOutputChars(response: JsonValue): i64 {
  const output = response.get("output");
  if (output === null || !output.isArray()) return 0;
  let n: i64 = 0;
  for (let i = 0, len = output.length; i < len; i++) {
    const item = output.at(i);
    const args = item.get("arguments");
    if (args !== null && args.isString()) n += args.units;
    const content = item.get("content");
    if (content === null || !content.isArray()) continue;
    for (let j = 0, m = content.length; j < m; j++) {
      const t = content.at(j).get("text");
      if (t !== null && t.isString()) n += t.units;
    }
  }
  return n;
}

/** The text of a content list's parts of one type (output_text, refusal, summary_text), joined. */
function partsText(content: JsonValue | null, type: string): string | null {
  if (content === null || !content.isArray()) return null;
  let out: string | null = null;
  for (let j = 0, m = content.length; j < m; j++) {
    const part = content.at(j);
    if (part.getString("type") != type) continue;
    const t = part.getString("text");
    if (t === null) continue;
    const before: string = out !== null ? out as string : "";
    out = before + t;
  }
  return out;
}

/**
 * A finished Response read into the neutral shape (for ai-cache, capture.ts): its message text and
 * refusal, its reasoning summaries, its function calls, and how it ended; null when it did not end
 * with an answer (failed, still in progress, or an item the neutral shape has no place for).
 */
export function responseResult(r: JsonValue): ChatResult | null {
  const status = r.getString("status");
  const output = r.get("output");
  if (status === null || output === null || !output.isArray()) return null;
  const c = new Choice();
  for (let i = 0, n = output.length; i < n; i++) {
    const item = output.at(i);
    const type = item.getString("type");
    if (type == "message") {
      const text = partsText(item.get("content"), "output_text");
      if (text !== null) {
        const before: string = c.content !== null ? c.content! : "";
        c.content = before + text;
      }
      const refusal = partsText(item.get("content"), "refusal");
      if (refusal !== null) c.refusal = refusal;
    } else if (type == "reasoning") {
      const summary = partsText(item.get("summary"), "summary_text");
      if (summary !== null) c.reasoning = summary;
    } else if (type == "function_call") {
      const t = new ToolCall();
      const id = item.getString("call_id");
      const name = item.getString("name");
      const args = item.getString("arguments");
      if (id === null || name === null) return null;
      t.id = id as string;
      t.name = name as string;
      t.arguments = args !== null ? args as string : "";
      c.toolCalls.push(t);
    } else return null;
  }
  if (status == "completed") c.finishReason = c.toolCalls.length ? "tool_calls" : "stop";
  else if (status == "incomplete") {
    const d = r.get("incomplete_details");
    c.finishReason = d !== null && d.getString("reason") == "content_filter" ? "content_filter" : "length";
  } else return null;
  const out = new ChatResult();
  const id = r.getString("id");
  const model = r.getString("model");
  const created = r.get("created_at");
  out.id = id !== null ? id as string : "";
  out.model = model !== null ? model as string : "";
  out.created = created !== null && created.isInteger() ? <i64>created.n : 0;
  out.choices.push(c);
  readResponsesUsage(r, out.usage);
  return out;
}

/** A whole native answer: it must say it is a Response; its usage goes to u. */
export function isResponse(v: JsonValue): bool {
  return v.isObject() && v.getString("object") == "response";
}

/**
 * Reads a native Responses stream for usage and the text count. Only the events that carry either
 * are parsed (their `event:` line names them, as OpenAI sends it); the whole-text done events and
 * the others pass unread.
 */
export class ResponsesNativeDecoder extends StreamDecoder {
  /** The provider's last sequence_number (an ending the gateway adds is numbered after it). */
  lastSequence: i64 = -1;
  /** Keep the finished Response of the terminal event (ai-cache keeps the answer: capture.ts). */
  keepFinal: bool = false;
  final: JsonValue | null = null;

  event(e: SseEvent, sink: StreamSink): void {
    if (this.done) return;
    const name = e.event;
    const delta = name == "response.output_text.delta" || name == "response.refusal.delta" || name == "response.function_call_arguments.delta" ||
      name == "response.reasoning_text.delta" || name == "response.reasoning_summary_text.delta";
    const terminal = name == "response.completed" || name == "response.incomplete" || name == "response.failed" || name == "error";
    // An event without an `event:` line is read too (the data's own type then decides).
    if (!delta && !terminal && name.length && name != "response.created" && name != "response.output_item.added") {
      this.lastSequence++;
      return;
    }
    const v = parseJsonAt(e.ptr, e.len, e.owner);
    if (v === null || !v.isObject()) return;
    const seq = v.get("sequence_number");
    if (seq !== null && seq.isInteger()) this.lastSequence = <i64>seq.n;
    const type = v.getString("type");
    if (type === null) return;
    const t = type as string;
    if (t == "response.output_text.delta" || t == "response.refusal.delta") {
      const d = v.get("delta");
      if (d !== null && d.isString()) sink.textValue(0, d);
    } else if (t == "response.function_call_arguments.delta") {
      const d = v.get("delta");
      if (d !== null && d.isString()) sink.toolArgsValue(0, 0, d);
    } else if (t == "response.reasoning_text.delta" || t == "response.reasoning_summary_text.delta") {
      const d = v.get("delta");
      if (d !== null && d.isString()) sink.reasoningValue(0, d);
    } else if (t == "response.output_item.added") {
      const item = v.get("item");
      if (item !== null && item.getString("type") == "function_call") {
        const name = item.getString("name");
        sink.toolStart(0, 0, "", name !== null ? name as string : "");
      }
    } else if (t == "response.created") {
      const r = v.get("response");
      if (r !== null && r.isObject()) {
        const id = r.getString("id");
        const model = r.getString("model");
        sink.start(id !== null ? id as string : "", model !== null ? model as string : "", 0);
      }
    } else if (t == "response.completed" || t == "response.incomplete" || t == "response.failed") {
      const r = v.get("response");
      if (r !== null && r.isObject()) {
        readResponsesUsage(r, this.usage);
        if (this.keepFinal && t == "response.completed") this.final = r;
      }
      this.done = true;
    } else if (t == "error") {
      // The provider's stream ends in its own error event: nothing more is added.
      this.done = true;
    }
  }
}

/** The sequence number an event the gateway adds to a native Responses stream takes. */
export function nextSequence(d: StreamDecoder | null): i64 {
  if (d !== null && d instanceof ResponsesNativeDecoder) return (d as ResponsesNativeDecoder).lastSequence + 1;
  return 0;
}

