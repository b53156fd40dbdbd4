// OpenAI Responses streams (after ai-proxy wrote them, or as an OpenAI instance sent them): text
// and function-call argument deltas go through their channel's window (answer-stream.ts); the
// events that repeat a whole text (response.output_text.done, response.content_part.done,
// response.function_call_arguments.done, response.output_item.done, and the final response of
// response.completed / response.incomplete) are checked whole, which gives the same placeholders
// and originals as the deltas did (one Placeholders map per exchange). Before a .done event, what
// its channel still holds is written as one more delta event (with the sequence_number of the
// .done event: the SDKs do not check the numbering). A block ends the stream with
// response.incomplete, incomplete_details.reason "content_filter", and no output.
import { ByteBuilder, JsonValue, parseJsonAt } from "../../lib/json";
import { SseEvent } from "../../lib/sse";
import { PER_INDEX } from "./answer-window";
import { AnswerStream, indexOf, jsonText } from "./answer-stream";
import { Edit, check, responsesItem, responsesOutput } from "./answer-json";

/** A function call's arguments: the last channel of its output item. */
const ARGS: i32 = PER_INDEX - 1;

export function responsesEvent(st: AnswerStream, e: SseEvent, out: ByteBuilder): void {
  const v = parseJsonAt(e.ptr, <usize>e.len, e.owner);
  const t = v !== null && v.isObject() ? v.getString("type") : null;
  if (t === null) {
    st.write(out, e, []);
    return;
  }
  const ev = v as JsonValue;
  const seq = ev.get("sequence_number");
  if (seq !== null && seq.isNumber()) st.sequence = <i64>seq.n;
  const edits = new Array<Edit>();
  const scan = st.scan;
  const oi = indexOf(ev, 1 << 20, "output_index");
  if (t == "response.created" || t == "response.in_progress") {
    const r = ev.get("response");
    if (r !== null && r.isObject()) {
      const id = r.get("id"), model = r.get("model"), created = r.get("created_at");
      if (id !== null) st.id = jsonText(id);
      if (model !== null) st.model = jsonText(model);
      if (created !== null) st.created = jsonText(created);
    }
  } else if (t == "response.output_text.delta") {
    st.piece(st.channel(oi * PER_INDEX + indexOf(ev, ARGS - 1, "content_index"), false), ev.get("delta"), false, edits);
  } else if (t == "response.function_call_arguments.delta") {
    st.piece(st.channel(oi * PER_INDEX + ARGS, true), ev.get("delta"), false, edits);
  } else if (t == "response.output_text.done") {
    const ci = indexOf(ev, ARGS - 1, "content_index");
    flush(st, ev, oi * PER_INDEX + ci, "response.output_text.delta", out);
    check(scan, ev.get("text"), false, edits);
  } else if (t == "response.function_call_arguments.done") {
    flush(st, ev, oi * PER_INDEX + ARGS, "response.function_call_arguments.delta", out);
    check(scan, ev.get("arguments"), true, edits);
  } else if (t == "response.content_part.done") {
    const part = ev.get("part");
    if (part !== null && part.isObject()) check(scan, part.get("text"), false, edits);
  } else if (t == "response.output_item.done") {
    const item = ev.get("item");
    if (item !== null && item.isObject()) responsesItem(scan, item, edits);
  } else if (t == "response.completed" || t == "response.incomplete") {
    const r = ev.get("response");
    if (r !== null && r.isObject()) responsesOutput(scan, r.get("output"), edits);
  }
  if (scan.blocked) return;
  st.write(out, e, edits);
}

/** Writes what a channel still holds as one more delta event of the given type, before its .done event. */
function flush(st: AnswerStream, ev: JsonValue, key: i32, type: string, out: ByteBuilder): void {
  const ch = st.find(key);
  if (ch === null || ch.held.length == 0) return;
  const text = st.scan.feed(ch, "", true);
  if (st.scan.blocked || text.length == 0) return;
  out.raw("event: ").raw(type).raw("\ndata: {\"type\":\"").raw(type).raw("\",\"item_id\":");
  const item = ev.get("item_id");
  if (item !== null) out.value(item);
  else out.raw("\"\"");
  out.raw(",\"output_index\":").int(key / PER_INDEX);
  if (key % PER_INDEX != ARGS) out.raw(",\"content_index\":").int(key % PER_INDEX);
  out.raw(",\"delta\":").str(text);
  if (key % PER_INDEX != ARGS) out.raw(",\"logprobs\":[]");
  out.raw(",\"sequence_number\":").int(st.sequence).raw("}\n\n");
}

/** The stream's end for a block: response.incomplete (reason content_filter) without output. */
export function responsesStop(st: AnswerStream, out: ByteBuilder): void {
  out.raw("event: response.incomplete\ndata: {\"type\":\"response.incomplete\",\"sequence_number\":").int(st.sequence + 1);
  out.raw(",\"response\":{\"id\":").raw(st.id).raw(",\"object\":\"response\",\"created_at\":").raw(st.created);
  out.raw(",\"status\":\"incomplete\",\"error\":null,\"incomplete_details\":{\"reason\":\"content_filter\"},\"model\":").raw(st.model);
  out.raw(",\"output\":[],\"usage\":null}}\n\n");
}
