// Gemini streams, as server-sent events (streamGenerateContent?alt=sse) or as one JSON array whose
// elements arrive one by one (without alt=sse; json-array-stream.ts): each event is a whole
// GenerateContentResponse whose candidates carry the next text parts. A candidate's text goes
// through its channel's window (answer-stream.ts); the event that carries its finishReason
// releases everything held (into its last text part, or into an event of its own written just
// before it when it has none). functionCall args arrive whole and are checked whole. A block ends
// the stream with a candidate whose finishReason is "SAFETY" (what Gemini sends when its own
// safety settings stop an answer) and no parts.
import { ByteBuilder, JsonValue, parseJsonAt } from "../../lib/json";
import { SseEvent } from "../../lib/sse";
import { PER_INDEX } from "./answer-window";
import { AnswerStream, indexOf } from "./answer-stream";
import { Edit, allStrings } from "./answer-json";

export function geminiEvent(st: AnswerStream, e: SseEvent, out: ByteBuilder): void {
  const v = parseJsonAt(e.ptr, <usize>e.len, e.owner);
  const cs = v !== null && v.isObject() ? v.get("candidates") : null;
  if (cs === null || !cs.isArray()) {
    st.write(out, e, []);
    return;
  }
  const ev = v as JsonValue;
  const mv = ev.get("modelVersion");
  if (mv !== null && mv.isString()) st.model = mv.s;
  const edits = new Array<Edit>();
  const scan = st.scan;
  for (let i = 0, n = cs.length; i < n; i++) {
    const c = cs.at(i);
    const ix = indexOf(c, 1 << 20);
    if (!st.begin(ix)) return;
    const fr = c.get("finishReason");
    const finishing = fr !== null && fr.isString();
    const content = c.get("content");
    const parts = content !== null ? content.get("parts") : null;
    let lastText = -1;
    if (parts !== null && parts.isArray()) {
      for (let k = 0, m = parts.length; k < m; k++) if (isText(parts.at(k))) lastText = k;
      for (let k = 0, m = parts.length; k < m; k++) {
        const part = parts.at(k);
        if (isText(part)) st.piece(st.channel(ix * PER_INDEX, false), part.get("text"), finishing && k == lastText, edits);
        const call = part.get("functionCall");
        if (call !== null) allStrings(scan, call.get("args"), edits);
      }
    }
    if (finishing && lastText < 0) flush(st, ix, out);
  }
  if (scan.blocked) return;
  st.write(out, e, edits);
}

function isText(part: JsonValue): bool {
  if (!part.isObject()) return false;
  const thought = part.get("thought");
  if (thought !== null && thought.isBool() && thought.b) return false;
  const t = part.get("text");
  return t !== null && t.isString();
}

function flush(st: AnswerStream, ix: i32, out: ByteBuilder): void {
  const ch = st.find(ix * PER_INDEX);
  if (ch === null || ch.held.length == 0) return;
  const text = st.scan.feed(ch, "", true);
  if (st.scan.blocked || text.length == 0) return;
  st.open(out).raw("{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":").str(text).raw("}]},\"index\":").int(ix).raw("}]}");
  st.close(out);
}

/** The stream ended: what every candidate still holds (a stream without a finishReason). */
export function geminiFlushAll(st: AnswerStream, out: ByteBuilder): void {
  for (let i = 0; i < st.choices.length && !st.scan.blocked; i++) flush(st, st.choices[i], out);
}

/** The stream's end for a block: finishReason SAFETY and no parts, for every candidate begun. */
export function geminiStop(st: AnswerStream, out: ByteBuilder): void {
  if (st.choices.length == 0) st.choices.push(0);
  st.open(out).raw("{\"candidates\":[");
  for (let i = 0; i < st.choices.length; i++) {
    if (i) out.raw(",");
    out.raw("{\"content\":{\"role\":\"model\",\"parts\":[]},\"finishReason\":\"SAFETY\",\"index\":").int(st.choices[i]).raw("}");
  }
  out.raw("]}");
  st.close(out);
  if (st.splitter !== null) out.raw("]");
}
