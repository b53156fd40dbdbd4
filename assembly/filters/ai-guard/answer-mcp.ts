// MCP answers (tools/call, prompts/get) as the server wrote them: one JSON-RPC response, either the
// whole body (application/json) or one event of a server-sent event stream, where notifications
// (progress, logging) and server-to-client requests may come before it. Each message is complete
// in itself, so its texts are checked whole (no hold-back window across events): a tools/call
// result's `content[].text` (and the `text` of an embedded resource), every string inside
// `structuredContent`, and a prompts/get result's `messages[].content.text`. Other messages pass
// as they came. A blocked response becomes a JSON-RPC error for its id; in a stream, that event
// is replaced by the error event and the stream ends there (nothing after a call's final answer
// matters to the client, and the rest of the server's stream is dropped).
import { ByteBuilder, JsonValue, parseJsonAt } from "../../lib/json";
import { SseEvent } from "../../lib/sse";
import { writeError, SERVER_ERROR } from "../../lib/jsonrpc";
import { AnswerScan } from "./answer-window";
import { Edit, check, allStrings } from "./answer-json";
import { A_BLOCK } from "./policy";
import { AnswerStream, jsonText } from "./answer-stream";

/** The texts of one JSON-RPC response's result, checked; their edits (none when blocked). */
export function mcpEdits(m: JsonValue, scan: AnswerScan): Array<Edit> {
  const edits = new Array<Edit>();
  const r = m.isObject() ? m.get("result") : null;
  if (r === null || !r.isObject()) return edits;
  const content = r.get("content");
  if (content !== null && content.isArray()) {
    for (let i = 0, n = content.length; i < n; i++) block(scan, content.at(i), edits);
  }
  allStrings(scan, r.get("structuredContent"), edits);
  const messages = r.get("messages");
  if (messages !== null && messages.isArray()) {
    for (let i = 0, n = messages.length; i < n; i++) {
      const msg = messages.at(i);
      if (msg.isObject()) block(scan, msg.get("content"), edits);
    }
  }
  return edits;
}

/** One content block: a text block's text, an embedded resource's text (images, audio, blobs pass). */
function block(scan: AnswerScan, b: JsonValue | null, edits: Array<Edit>): void {
  if (b === null || !b.isObject()) return;
  const t = b.getString("type");
  if (t == "text") check(scan, b.get("text"), false, edits);
  else if (t == "resource") {
    const res = b.get("resource");
    if (res !== null && res.isObject()) check(scan, res.get("text"), false, edits);
  }
}

/** Whether a parsed message is a JSON-RPC response with a result (what is checked). */
function isResult(m: JsonValue | null): bool {
  return m !== null && m.isObject() && m.get("result") !== null && m.get("method") === null;
}

/** The response's id as JSON text, else `fallback` (the request's, from sluice.jsonrpc_id). */
export function responseId(m: JsonValue | null, fallback: string): string {
  const id = m !== null && m.isObject() ? m.get("id") : null;
  if (id !== null && (id.isString() || id.isNumber())) {
    const t = jsonText(id);
    if (t.length <= 260) return t;
  }
  return fallback;
}

/** The detectors whose answer action is block and that found something, comma-separated. */
export function blockedNames(scan: AnswerScan): string {
  const out = new Array<string>();
  const p = scan.p;
  for (let d = 0; d < scan.found.length; d++) if (scan.found[d] && p.answers[d] == A_BLOCK) out.push(p.names[d]);
  return out.join(", ");
}

/** The JSON-RPC error a withheld answer becomes. */
export function mcpBlocked(out: ByteBuilder, id: string, scan: AnswerScan, overflowed: bool): void {
  const why = overflowed
    ? "the tool's answer was withheld: an event is larger than the gateway's guard reads"
    : scan.undecided
      ? "the tool's answer was withheld: the gateway's guard could not check it within its budget"
      : "the tool's answer was blocked by the gateway's guard: it contains " + blockedNames(scan);
  writeError(out, id, SERVER_ERROR, why);
}

/** One event of an MCP stream, written to `out` (checked when it is a response with a result). */
export function mcpEvent(st: AnswerStream, e: SseEvent, out: ByteBuilder): void {
  const m = parseJsonAt(e.ptr, <usize>e.len, e.owner);
  if (!isResult(m)) {
    st.write(out, e, []);
    return;
  }
  const edits = mcpEdits(m as JsonValue, st.scan);
  if (st.scan.blocked) {
    st.rpcId = responseId(m, st.rpcId);
    return; // the stream's stop() writes the error event in its place
  }
  st.write(out, e, edits);
}

/** Ends an MCP stream for a block: the call's answer is a JSON-RPC error event. */
export function mcpStop(st: AnswerStream, out: ByteBuilder): void {
  out.raw("event: message\ndata: ");
  mcpBlocked(out, st.rpcId, st.scan, st.overflowed);
  out.raw("\n\n");
}

/** Whether a whole answer is a JSON-RPC response with a result; its id for an error. */
export function mcpWhole(m: JsonValue): bool {
  return isResult(m);
}
