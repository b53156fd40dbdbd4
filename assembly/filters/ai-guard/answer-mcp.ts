// MCP answers (tools/call, prompts/get) as the server wrote them: one JSON-RPC response, either the
// whole body (application/json) or one event of a server-sent event stream, where notifications
// (progress, logging) and server-to-client requests may come before it. Each message is complete
// in itself, so its texts are checked whole (no hold-back window across events): a tools/call
// result's `content[].text` (and the `text` of an embedded resource), every string inside
// `structuredContent`, and a prompts/get result's `messages[].content.text`. Other messages pass
// as they came. A blocked response becomes a JSON-RPC error for its id; in a stream, that event
// is replaced by the error event and the stream ends there (nothing after a call's final answer
// matters to the client, and the rest of the server's stream is dropped).
//
// Prompt injection: a tool's result is text a model will read next, the way indirect injections
// arrive in agent traffic. The policy's `injection` action (log or block; the request-side one,
// no answer action exists for it) applies to each result text, scored as data (TOOL_FACTOR, as a
// tool result in a chat request is): the call is refused before the agent's model reads it.
import { ByteBuilder, JsonValue, parseJsonAt } from "../../lib/json";
import { SseEvent } from "../../lib/sse";
import { writeError, SERVER_ERROR } from "../../lib/jsonrpc";
import { AnswerScan } from "./answer-window";
import { Edit, check } from "./answer-json";
import { Policy, A_BLOCK, A_OFF, D_INJECTION } from "./policy";
import { findInjection, TOOL_FACTOR } from "./injection";
import { Hits } from "./hits";
import { incrementMetric } from "../../lib/sdk";
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
  strings(scan, r.get("structuredContent"), edits);
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
  if (t == "text") text(scan, b.get("text"), edits);
  else if (t == "resource") {
    const res = b.get("resource");
    if (res !== null && res.isObject()) text(scan, res.get("text"), edits);
  }
}

/** Every string inside a value (structuredContent). */
function strings(scan: AnswerScan, v: JsonValue | null, edits: Array<Edit>): void {
  if (v === null) return;
  if (v.isString()) text(scan, v, edits);
  else if ((v.isArray() || v.isObject()) && !v.isNumberSpan()) {
    for (let i = 0, n = v.length; i < n && !scan.blocked; i++) strings(scan, v.at(i), edits);
  }
}

/** One whole text: the answer detectors (check), then the injection score when the policy has it on. */
function text(scan: AnswerScan, v: JsonValue | null, edits: Array<Edit>): void {
  if (v === null || !v.isString() || v.src === null || scan.blocked) return;
  check(scan, v, false, edits);
  const p = scan.p;
  const action = p.actions[D_INJECTION];
  if (scan.blocked || action == A_OFF) return;
  const hits = new Hits();
  if (!v.rawComplex) findInjection<u8>(v.raw, v.rawLen, p.injectionThreshold, TOOL_FACTOR, D_INJECTION, hits);
  else {
    const s = v.s;
    findInjection<u16>(changetype<usize>(s), s.length, p.injectionThreshold, TOOL_FACTOR, D_INJECTION, hits);
  }
  if (hits.length == 0) return;
  if (!scan.found[D_INJECTION]) incrementMetric(p.metrics[D_INJECTION], 1);
  scan.found[D_INJECTION] = true;
  if (action == A_BLOCK) scan.blocked = true;
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
  for (let d = 0; d < scan.found.length; d++) {
    const a = d == D_INJECTION ? p.actions[d] : p.answers[d];
    if (scan.found[d] && a == A_BLOCK) out.push(p.names[d]);
  }
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

/** Whether an MCP answer is read at all: answer detectors, originals to restore, or injection on. */
export function mcpWanted(p: Policy, restoring: bool): bool {
  return p.answerActive || restoring || p.actions[D_INJECTION] != A_OFF;
}

/** Whether a whole answer is a JSON-RPC response with a result; its id for an error. */
export function mcpWhole(m: JsonValue): bool {
  return isResult(m);
}
