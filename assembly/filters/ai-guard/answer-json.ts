// Whole (non-streamed) answers in the client's API shape, after ai-proxy wrote them: the texts a
// client reads (Chat Completions choices' content and tool call arguments; Anthropic Messages text
// blocks and every string in tool_use input), each checked whole by answer-window.ts, and the body
// written once with only the changed string values rewritten. A blocked answer is replaced by the
// API's own "filtered" answer: Chat finish_reason "content_filter" with null content (what OpenAI's
// API returns when its content filter withholds a completion), Anthropic stop_reason "refusal" with
// no content; the usage the provider reported is kept (the client was billed for it).
import { JsonValue, ByteBuilder } from "../../lib/json";
import { AnswerScan, Channel } from "./answer-window";
import { K_CHAT, K_MESSAGES } from "./request";

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
function check(scan: AnswerScan, v: JsonValue | null, json: bool, edits: Array<Edit>): void {
  if (v === null || !v.isString() || v.src === null) return;
  const s = v.s;
  const out = scan.feed(new Channel(0, json), s, true);
  if (!scan.blocked && out != s) edits.push(new Edit(v, out));
}

function allStrings(scan: AnswerScan, v: JsonValue | null, edits: Array<Edit>): void {
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
        const calls = m.get("tool_calls");
        if (calls !== null && calls.isArray()) {
          for (let k = 0, c = calls.length; k < c; k++) {
            const f = calls.at(k).get("function");
            if (f !== null) check(scan, f.get("arguments"), true, edits);
          }
        }
      }
    }
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
  return kind == K_CHAT || kind == K_MESSAGES;
}
