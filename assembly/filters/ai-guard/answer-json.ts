// Whole (non-streamed) answers in the client's API shape, after ai-proxy wrote them: the texts a
// client reads (Chat Completions choices' content and tool call arguments; Anthropic Messages text
// blocks and every string in tool_use input; Responses output messages' output_text and function
// call arguments; Gemini candidates' text parts and every string in functionCall args), each
// checked whole by answer-window.ts, and the body written once with only the changed string values
// rewritten. A blocked answer is replaced by the API's own "filtered" answer: Chat finish_reason
// "content_filter" with null content (what OpenAI's API returns when its content filter withholds
// a completion), Anthropic stop_reason "refusal" with no content, Responses status "incomplete"
// with incomplete_details.reason "content_filter", Gemini a candidate with finishReason "SAFETY"
// and no parts; the usage the provider reported is kept (the client was billed for it).
import { JsonValue, ByteBuilder } from "../../lib/json";
import { AnswerScan, Channel } from "./answer-window";
import { K_CHAT, K_MESSAGES, K_RESPONSES, K_GEMINI, K_MCP } from "./request";

/** One string value of a parsed JSON text and what it becomes. */
export class Edit {
  constructor(public value: JsonValue, public text: string) {}
}

function byPlace(a: Edit, b: Edit): i32 {
  return a.value.raw < b.value.raw ? -1 : a.value.raw > b.value.raw ? 1 : 0;
}

/** Writes the JSON text [ptr, ptr + len) with each edited string value's content replaced. */
export function splice(out: ByteBuilder, ptr: usize, len: i32, edits: Array<Edit>): void {
  if (edits.length > 1) edits.sort(byPlace);
  let at = ptr;
  for (let i = 0; i < edits.length; i++) {
    const e = edits[i];
    const v = e.value;
    out.bytes(at, <i32>(v.raw - at));
    out.strRange(e.text, 0, e.text.length);
    at = v.raw + <usize>v.rawLen;
  }
  out.bytes(at, <i32>(ptr + <usize>len - at));
}

/** Checks one whole text; an Edit when it changed. */
export function check(scan: AnswerScan, v: JsonValue | null, json: bool, edits: Array<Edit>): void {
  if (v === null || !v.isString() || v.src === null) return;
  const s = v.s;
  const out = scan.feed(new Channel(0, json), s, true);
  if (!scan.blocked && out != s) edits.push(new Edit(v, out));
}

export function allStrings(scan: AnswerScan, v: JsonValue | null, edits: Array<Edit>): void {
  if (v === null) return;
  if (v.isString()) check(scan, v, false, edits);
  else if ((v.isArray() || v.isObject()) && !v.isNumberSpan()) {
    for (let i = 0, n = v.length; i < n; i++) allStrings(scan, v.at(i), edits);
  }
}

/** The texts of a whole answer, checked; their edits (empty when nothing changed or when blocked). */
export function answerEdits(kind: i32, a: JsonValue, scan: AnswerScan): Array<Edit> {
  const edits = new Array<Edit>();
  if (kind == K_CHAT) {
    const choices = a.get("choices");
    if (choices !== null && choices.isArray()) {
      for (let i = 0, n = choices.length; i < n; i++) {
        const m = choices.at(i).get("message");
        if (m === null || !m.isObject()) continue;
        check(scan, m.get("content"), false, edits);
        check(scan, m.get("refusal"), false, edits);
        const calls = m.get("tool_calls");
        if (calls !== null && calls.isArray()) {
          for (let k = 0, c = calls.length; k < c; k++) {
            const f = calls.at(k).get("function");
            if (f !== null) check(scan, f.get("arguments"), true, edits);
          }
        }
      }
    }
  } else if (kind == K_RESPONSES) {
    responsesOutput(scan, a.get("output"), edits);
  } else if (kind == K_GEMINI) {
    if (a.isArray()) geminiArray(scan, a, edits);
    else geminiCandidates(scan, a, edits);
  } else if (kind == K_MESSAGES) {
    const content = a.get("content");
    if (content !== null && content.isArray()) {
      for (let i = 0, n = content.length; i < n; i++) {
        const b = content.at(i);
        const t = b.getString("type");
        if (t == "text") check(scan, b.get("text"), false, edits);
        else if (t == "tool_use") allStrings(scan, b.get("input"), edits);
      }
    }
  }
  return edits;
}

/** Responses output items: messages' output_text parts, function calls' arguments (JSON text). */
export function responsesOutput(scan: AnswerScan, output: JsonValue | null, edits: Array<Edit>): void {
  if (output === null || !output.isArray()) return;
  for (let i = 0, n = output.length; i < n; i++) responsesItem(scan, output.at(i), edits);
}

export function responsesItem(scan: AnswerScan, item: JsonValue, edits: Array<Edit>): void {
  const t = item.getString("type");
  if (t == "message") {
    const content = item.get("content");
    if (content === null || !content.isArray()) return;
    for (let k = 0, c = content.length; k < c; k++) {
      const part = content.at(k);
      const pt = part.getString("type");
      if (pt == "output_text") check(scan, part.get("text"), false, edits);
      else if (pt == "refusal") check(scan, part.get("refusal"), false, edits);
    }
  } else if (t == "function_call") check(scan, item.get("arguments"), true, edits);
}

/** Gemini candidates: text parts (not thoughts) and every string in functionCall args. */
export function geminiCandidates(scan: AnswerScan, a: JsonValue, edits: Array<Edit>): void {
  const cs = a.get("candidates");
  if (cs === null || !cs.isArray()) return;
  for (let i = 0, n = cs.length; i < n; i++) {
    const content = cs.at(i).get("content");
    const parts = content !== null ? content.get("parts") : null;
    if (parts === null || !parts.isArray()) continue;
    for (let k = 0, m = parts.length; k < m; k++) {
      const part = parts.at(k);
      const thought = part.get("thought");
      if (thought !== null && thought.isBool() && thought.b) continue;
      check(scan, part.get("text"), false, edits);
      const call = part.get("functionCall");
      if (call !== null) allStrings(scan, call.get("args"), edits);
    }
  }
}

/**
 * Gemini's JSON-array stream (streamGenerateContent without alt=sse), read whole: each candidate's
 * text parts, across the array's elements, are one channel, so a value or a placeholder split
 * between two elements is found; the last text part of a candidate gets what is held.
 */
export function geminiArray(scan: AnswerScan, arr: JsonValue, edits: Array<Edit>): void {
  const channels = new Map<i32, Channel>();
  const lastAt = new Map<i32, usize>(); // candidate -> raw position of its last text part
  for (let pass = 0; pass < 2; pass++) {
    for (let e = 0, ne = arr.length; e < ne; e++) {
      const el = arr.at(e);
      const cs = el.isObject() ? el.get("candidates") : null;
      if (cs === null || !cs.isArray()) continue;
      for (let i = 0, n = cs.length; i < n; i++) {
        const c = cs.at(i);
        const ixv = c.isObject() ? c.get("index") : null;
        const ix = ixv !== null && ixv.isNumber() ? <i32>ixv.n : 0;
        const content = c.isObject() ? c.get("content") : null;
        const parts = content !== null ? content.get("parts") : null;
        if (parts === null || !parts.isArray()) continue;
        for (let k = 0, m = parts.length; k < m; k++) {
          const part = parts.at(k);
          if (!part.isObject()) continue;
          const thought = part.get("thought");
          if (thought !== null && thought.isBool() && thought.b) continue;
          const t = part.get("text");
          if (t !== null && t.isString() && t.src !== null) {
            if (pass == 0) lastAt.set(ix, t.raw);
            else {
              if (!channels.has(ix)) channels.set(ix, new Channel(ix));
              const s = t.s;
              const out = scan.feed(channels.get(ix), s, lastAt.get(ix) == t.raw);
              if (out != s) edits.push(new Edit(t, out));
            }
          }
          const call = part.get("functionCall");
          if (pass == 1 && call !== null) allStrings(scan, call.get("args"), edits);
        }
      }
    }
  }
}

function copied(out: ByteBuilder, a: JsonValue, key: string, fallback: string): void {
  const v = a.get(key);
  if (v === null) out.raw(fallback);
  else out.value(v);
}

/** The answer a client gets in place of a blocked one, in its API's shape. */
export function filteredAnswer(kind: i32, a: JsonValue): ByteBuilder {
  const out = new ByteBuilder(256);
  if (kind == K_MESSAGES) {
    out.raw("{\"id\":");
    copied(out, a, "id", "\"msg_filtered\"");
    out.raw(",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    copied(out, a, "model", "\"\"");
    out.raw(",\"content\":[],\"stop_reason\":\"refusal\",\"stop_sequence\":null,\"usage\":");
    copied(out, a, "usage", "{\"input_tokens\":0,\"output_tokens\":0}");
    out.raw("}");
    return out;
  }
  if (kind == K_RESPONSES) {
    out.raw("{\"id\":");
    copied(out, a, "id", "\"resp_filtered\"");
    out.raw(",\"object\":\"response\",\"created_at\":");
    copied(out, a, "created_at", "0");
    out.raw(",\"status\":\"incomplete\",\"error\":null,\"incomplete_details\":{\"reason\":\"content_filter\"},\"model\":");
    copied(out, a, "model", "\"\"");
    out.raw(",\"output\":[],\"usage\":");
    copied(out, a, "usage", "null");
    out.raw("}");
    return out;
  }
  if (kind == K_GEMINI) {
    if (a.isArray()) {
      out.raw("[");
      const last = filteredAnswer(kind, a.length ? a.at(a.length - 1) : JsonValue.object());
      out.bytes(changetype<usize>(last.buf), last.len).raw("]");
      return out;
    }
    out.raw("{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[]},\"finishReason\":\"SAFETY\",\"index\":0}]");
    const u = a.get("usageMetadata");
    if (u !== null) out.raw(",\"usageMetadata\":").value(u);
    const mv = a.get("modelVersion");
    if (mv !== null) out.raw(",\"modelVersion\":").value(mv);
    const rid = a.get("responseId");
    if (rid !== null) out.raw(",\"responseId\":").value(rid);
    out.raw("}");
    return out;
  }
  out.raw("{\"id\":");
  copied(out, a, "id", "\"chatcmpl-filtered\"");
  out.raw(",\"object\":\"chat.completion\",\"created\":");
  copied(out, a, "created", "0");
  out.raw(",\"model\":");
  copied(out, a, "model", "\"\"");
  out.raw(",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"content_filter\"}]");
  const u = a.get("usage");
  if (u !== null) out.raw(",\"usage\":").value(u);
  out.raw("}");
  return out;
}

export function answerKindChecked(kind: i32): bool {
  return kind == K_CHAT || kind == K_MESSAGES || kind == K_RESPONSES || kind == K_GEMINI || kind == K_MCP;
}
