// The answer side of one exchange: chooses how an answer is checked (a stream event by event, a
// whole answer buffered up to response.max_body_bytes), applies the verdict and records it
// (sluice.guard_response_verdict, sluice.guard_response_categories, sluice.guard_answers and
// sluice.guard_answer_detections). Only 2xx answers of the APIs answer-json.ts reads are checked;
// errors pass as they came.
import {
  FilterHeadersStatusValues, FilterDataStatusValues, RESPONSE_HEADERS, RESPONSE_BODY, getHeader, removeHeader,
  getBuffer, replaceBufferBytes, sendLocalResponse, setFilterState, incrementMetric,
} from "../../lib/sdk";
import { JsonValue, ByteBuilder, parseJson } from "../../lib/json";
import { writeOpenAIErrorJson, writeAnthropicErrorJson, writeGeminiErrorJson } from "../../lib/errors";
import { GUARD_RESPONSE_VERDICT, GUARD_RESPONSE_CATEGORIES } from "../../lib/keys";
import { Settings } from "./config";
import { Policy } from "./policy";
import { Placeholders } from "./placeholders";
import { AnswerScan } from "./answer-window";
import { AnswerStream } from "./answer-stream";
import { Edit, answerEdits, answerKindChecked, filteredAnswer, splice } from "./answer-json";
import { K_MESSAGES, K_GEMINI, K_MCP } from "./request";
import { mcpEdits, mcpBlocked, mcpWhole, mcpWanted, responseId } from "./answer-mcp";
import { errorBody, INTERNAL_ERROR } from "../../lib/jsonrpc";
import { VERDICT_NAMES, V_ALLOW, V_MASK, V_BLOCK } from "./actions";

export class Answer {
  scan: AnswerScan;
  stream: AnswerStream | null = null;
  /** A whole answer is being buffered (its headers held). */
  whole: bool = false;
  recorded: bool = false;
  /** MCP: the call's JSON-RPC id as JSON text, for the error that replaces a withheld answer. */
  rpcId: string = "null";

  /** `array`: a Gemini stream framed as one JSON array (streamGenerateContent without alt=sse). */
  constructor(public s: Settings, public p: Policy, public kind: i32, names: Placeholders, public array: bool = false) {
    this.scan = new AnswerScan(p, p.answerWindow, names, s.regexBudget);
  }

  /** Whether this exchange's answer is checked at all (a policy with answer actions, or originals to restore). */
  static wanted(p: Policy, kind: i32, names: Placeholders): bool {
    if (kind == K_MCP) return mcpWanted(p, names.originals.size > 0);
    return answerKindChecked(kind) && (p.answerActive || names.originals.size > 0);
  }

  headers(endOfStream: bool): FilterHeadersStatusValues {
    const status = getHeader(RESPONSE_HEADERS, ":status");
    if (status === null || status.length != 3 || status.charCodeAt(0) != 0x32 || endOfStream) return FilterHeadersStatusValues.Continue;
    const ct = getHeader(RESPONSE_HEADERS, "content-type");
    removeHeader(RESPONSE_HEADERS, "content-length");
    if (ct !== null && ct.toLowerCase().startsWith("text/event-stream")) {
      const st = new AnswerStream(this.kind, this.scan, <i32>this.s.answerMaxBytes);
      st.rpcId = this.rpcId;
      this.stream = st;
      return FilterHeadersStatusValues.Continue;
    }
    if (this.array) {
      this.stream = new AnswerStream(this.kind, this.scan, <i32>this.s.answerMaxBytes, true);
      return FilterHeadersStatusValues.Continue;
    }
    // A whole answer may become another (blocked, or too large: 502): its headers wait for it.
    this.whole = true;
    return FilterHeadersStatusValues.StopIteration;
  }

  body(length: usize, endOfStream: bool): FilterDataStatusValues {
    const st = this.stream;
    if (st !== null) {
      const chunk = getBuffer(RESPONSE_BODY, 0, <u32>length);
      const out = st.chunk(chunk, endOfStream);
      replaceBufferBytes(RESPONSE_BODY, <u32>length, changetype<usize>(out.buf), out.len);
      if (st.ended || endOfStream) this.record();
      return FilterDataStatusValues.Continue;
    }
    if (!this.whole) return FilterDataStatusValues.Continue;
    if (<i64>length > this.s.answerMaxBytes) {
      this.whole = false;
      this.scan.blocked = true;
      this.record();
      this.reply(502, "the answer is larger than the gateway's guard reads (response.max_body_bytes " + this.s.answerMaxBytes.toString() + ")", "sluice_guard_answer_too_large");
      return FilterDataStatusValues.StopIterationNoBuffer;
    }
    if (!endOfStream) return FilterDataStatusValues.StopIterationAndBuffer;
    this.whole = false;
    const body = getBuffer(RESPONSE_BODY, 0, <u32>length);
    const a = parseJson(body, this.s.maxJsonValues);
    if (a === null || !(a.isObject() || (a.isArray() && this.kind == K_GEMINI))) {
      this.scan.blocked = true;
      this.record();
      this.reply(502, "the gateway's guard could not read the answer", "sluice_guard_answer_unreadable");
      return FilterDataStatusValues.StopIterationNoBuffer;
    }
    const mcp = this.kind == K_MCP;
    // MCP: only a JSON-RPC response with a result is read; an error response passes as it came.
    const edits = mcp ? (mcpWhole(a as JsonValue) ? mcpEdits(a as JsonValue, this.scan) : new Array<Edit>()) : answerEdits(this.kind, a as JsonValue, this.scan);
    let out: ByteBuilder | null = null;
    if (this.scan.blocked && mcp) {
      out = new ByteBuilder(160);
      mcpBlocked(out, responseId(a, this.rpcId), this.scan, false);
    } else if (this.scan.blocked) out = filteredAnswer(this.kind, a as JsonValue);
    else if (edits.length) {
      out = new ByteBuilder(body.byteLength + 64);
      splice(out, changetype<usize>(body), body.byteLength, edits);
    }
    this.record();
    if (out !== null) replaceBufferBytes(RESPONSE_BODY, <u32>length, changetype<usize>(out.buf), out.len);
    return FilterDataStatusValues.Continue;
  }

  /** A whole answer that cannot be checked: withheld, in the client's API shape (fail closed). */
  reply(status: u32, message: string, details: string): void {
    if (this.kind == K_MCP) {
      // The call's answer in JSON-RPC's shape (the MCP client raises it as that call's error).
      sendLocalResponse(status, details, errorBody(this.rpcId, INTERNAL_ERROR, message), ["content-type", "application/json"]);
      return;
    }
    const b = new ByteBuilder(128 + message.length);
    if (this.kind == K_MESSAGES) writeAnthropicErrorJson(b, "api_error", message);
    else if (this.kind == K_GEMINI) writeGeminiErrorJson(b, status, message);
    else writeOpenAIErrorJson(b, message, "server_error", "", "answer_unchecked");
    sendLocalResponse(status, details, b.toArrayBuffer(), ["content-type", "application/json"]);
  }

  record(): void {
    if (this.recorded) return;
    this.recorded = true;
    const sc = this.scan;
    const p = this.p;
    const verdict = sc.blocked ? V_BLOCK : sc.masked ? V_MASK : V_ALLOW;
    setFilterState(GUARD_RESPONSE_VERDICT, sc.restored && verdict == V_ALLOW ? "restore" : VERDICT_NAMES[verdict]);
    const names = new Array<string>();
    for (let d = 0; d < sc.found.length; d++) {
      if (!sc.found[d]) continue;
      names.push(p.names[d]);
      incrementMetric(p.answerMetrics[d], 1);
    }
    if (names.length) setFilterState(GUARD_RESPONSE_CATEGORIES, names.join(","));
    if (sc.undecided) incrementMetric(this.s.regexBudgetExceeded, 1);
    incrementMetric(verdict == V_BLOCK ? this.s.answersBlocked : verdict == V_MASK ? this.s.answersMasked : this.s.answersAllowed, 1);
  }
}
