// Asking every server of a session at once (initialize, the lists, notifications, DELETE) with
// proxy_http_call, and reading each answer: a JSON-RPC response as JSON, or as the server-sent
// event stream an MCP server may answer a POST with (its notifications first, then the response).
// Each call carries its own small origin object (Call), so an answer names its server whatever
// order the answers come in.
import { BaseContext, RootContext, getHeader, HTTP_CALL_RESPONSE_HEADERS } from "../../lib/sdk";
import { httpCall, httpCallStatus, httpCallBody, HttpCallCallback } from "../../lib/http-call";
import { JsonValue, parseJson, parseJsonAt } from "../../lib/json";
import { SseParser, SseEvent } from "../../lib/sse";
import { Server, Settings } from "./config";
import { Member, visibleAscii, MAX_UPSTREAM_ID_BYTES } from "./session";
import { credentialFor } from "./auth";

/** Most JSON values read from one server's answer (a list of 10,000 tools is well under). */
const MAX_ANSWER_VALUES: i32 = 2000000;

/** One outstanding call: its stream (the origin the answer resumes) and its server. */
export class Call extends BaseContext {
  constructor(public stream: BaseContext, public server: i32) {
    super(stream.context_id);
  }
}

/** What one server answered. */
export class Reply {
  server: i32 = 0;
  status: i32 = 0;
  /** The server's Mcp-Session-Id header (initialize), or "". */
  sessionId: string = "";
  /** The JSON-RPC response's result, when it has one. */
  result: JsonValue | null = null;
  /** Why this server's answer is not used ("" when it is), and that as a metric label. */
  problem: string = "";
  reason: string = "";
}

/** The headers of a POST to a server as the MCP SDK's server requires them, with the server's credential. */
export function serverHeaders(server: Server, method: string, member: Member | null, bodyLength: i32): Array<string> {
  const h = [
    ":method", method, ":path", server.path, ":authority", server.authority,
    "accept", "application/json, text/event-stream",
  ];
  if (method == "POST") {
    h.push("content-type");
    h.push("application/json");
    h.push("content-length");
    h.push(bodyLength.toString());
  }
  if (member !== null) {
    if (member.id.length) {
      h.push("mcp-session-id");
      h.push(member.id);
    }
    if (member.version.length) {
      h.push("mcp-protocol-version");
      h.push(member.version);
    }
  }
  const c = credentialFor(server);
  if (c !== null) {
    h.push(server.authHeader);
    h.push(c as string);
  }
  return h;
}

/** Sends one call; false when Envoy refused it (an unknown cluster). */
export function send(root: RootContext, s: Settings, call: Call, headers: Array<string>, body: ArrayBuffer, cb: HttpCallCallback): bool {
  return httpCall(root, s.servers[call.server].cluster, headers, body, s.timeoutMs, call, cb);
}

/**
 * Reads the answer being delivered. `wantsResponse`: a request's answer must hold a JSON-RPC
 * response (a notification's or DELETE's needs only a 2xx status).
 */
export function readAnswer(s: Settings, server: i32, headers: u32, bodySize: usize, wantsResponse: bool): Reply {
  const r = new Reply();
  r.server = server;
  r.status = httpCallStatus(headers);
  if (r.status == 0) {
    r.problem = "no answer (connection reset)";
    r.reason = "unreachable";
    return r;
  }
  const sid = getHeader(HTTP_CALL_RESPONSE_HEADERS, "mcp-session-id");
  if (sid !== null) {
    if (!visibleAscii(sid as string, MAX_UPSTREAM_ID_BYTES)) {
      r.problem = "its Mcp-Session-Id is not visible ASCII of at most " + MAX_UPSTREAM_ID_BYTES.toString() + " bytes";
      r.reason = "invalid_answer";
      return r;
    }
    r.sessionId = sid as string;
  }
  if (r.status < 200 || r.status > 299) {
    // Envoy answers a timed-out call with 504 and a refused connection with 503.
    r.problem = r.status == 504 ? "timed out" : r.status == 503 ? "unreachable (HTTP 503)" : "HTTP " + r.status.toString();
    r.reason = r.status == 504 ? "timeout" : r.status == 503 ? "unreachable" : "http_error";
    return r;
  }
  if (!wantsResponse) return r;
  if (<i64>bodySize > s.maxResponseBytes) {
    r.problem = "its answer is larger than max_response_bytes (" + s.maxResponseBytes.toString() + ")";
    r.reason = "invalid_answer";
    return r;
  }
  const body = httpCallBody(bodySize);
  const type = getHeader(HTTP_CALL_RESPONSE_HEADERS, "content-type");
  const msg = type !== null && (type as string).toLowerCase().startsWith("text/event-stream") ? responseInStream(body) : parseJson(body, MAX_ANSWER_VALUES);
  if (msg === null || !msg.isObject()) {
    r.problem = "its answer is not a JSON-RPC response";
    r.reason = "invalid_answer";
    return r;
  }
  const err = msg.get("error");
  if (err !== null) {
    const code = err.isObject() ? err.get("code") : null;
    r.problem = "JSON-RPC error " + (code !== null && code.isNumber() ? code.s : "?");
    r.reason = "jsonrpc_error";
    return r;
  }
  const result = msg.get("result");
  if (result === null || !result.isObject()) {
    r.problem = "its answer has no result object";
    r.reason = "invalid_answer";
    return r;
  }
  r.result = result;
  return r;
}

/** The JSON-RPC response among a stream's events (notifications before it are not the answer). */
function responseInStream(body: ArrayBuffer): JsonValue | null {
  const p = new SseParser(body.byteLength + 1);
  const found = responseAmong(p.feed(body));
  return found !== null ? found : responseAmong(p.finish());
}

function responseAmong(events: Array<SseEvent>): JsonValue | null {
  for (let i = 0; i < events.length; i++) {
    const e = events[i];
    if (e.comment || e.len == 0) continue;
    const v = parseJsonAt(e.ptr, e.len, e.owner, MAX_ANSWER_VALUES);
    if (v !== null && v.isObject() && v.get("method") === null && (v.get("result") !== null || v.get("error") !== null)) return v;
  }
  return null;
}
