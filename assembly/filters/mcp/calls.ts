// One MCP request: the JSON-RPC message read, the session opened, and what the gateway does with
// it: answer itself (ping, an unknown method, a refusal), ask every server of the session and
// answer with the merged result (initialize, the lists, notifications, logging/setLevel, DELETE),
// or route it to the one server that owns its target (route.ts).
import { RootContext, BaseContext, sendLocalResponse, setFilterState, getFilterState, logWarn, nowNanos, REQUEST_BODY } from "../../lib/sdk";
import { ByteBuilder, JsonValue, parseJson, jsonTooManyValues } from "../../lib/json";
import {
  JsonRpcMessage, readMessage, errorBody, resultBody, INVALID, REQUEST, NOTIFICATION, RESPONSE,
  PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR, SERVER_ERROR,
} from "../../lib/jsonrpc";
import { CONSUMER, MCP_METHOD, MCP_SERVER, MCP_TOOL, JSONRPC_ID, MCP_OUTCOME } from "../../lib/keys";
import { Settings, Server } from "./config";
import { Session, Member, seal, open, visibleAscii } from "./session";
import { Call, Reply, readAnswer, send, serverHeaders } from "./upstream";
import { ListKind, listKind, mergeList, decodeCursor, initializeResult, agreedVersion } from "./merge";
import { Target, targetOf, rewrittenBody, pointAt, bounded } from "./route";
import { accessFor, toolAllowed } from "./access";
import { countFanoutFailure } from "./metrics";
import { missingCredential } from "./auth";

/** Most JSON values read from a client's message. */
const MAX_REQUEST_VALUES: i32 = 200000;
/** JSON-RPC's "session not found" as the MCP SDK's server answers it. */
const SESSION_NOT_FOUND: i32 = -32001;

/** A fan-out holds at most this many times max_response_bytes of answers at once. */
const FANOUT_ANSWERS: i64 = 4;
const F_INITIALIZE: i32 = 1;
const F_LIST: i32 = 2;
const F_NOTIFY: i32 = 3;
const F_DELETE: i32 = 4;
const F_SET_LEVEL: i32 = 5;

function onCallAnswer(origin: BaseContext, headers: u32, bodySize: usize, _trailers: u32): void {
  const call = changetype<Call>(origin);
  changetype<McpRequest>(call.stream).onAnswer(call.server, headers, bodySize);
}

export class McpRequest extends BaseContext {
  holding: bool = false;
  routed: bool = false;
  closed: bool = false;
  method: string = "";
  /** The request's id as JSON text ("null" when it has none). */
  id: string = "null";
  outcome: string = "ok";
  requestBytes: i64 = -1;
  tool: string = "";
  server: Server | null = null;
  rewriteUris: bool = false;
  upstreamStatus: i32 = 0;
  upstreamProblem: string = "";
  firstByteNs: u64 = 0;
  responseBytes: i64 = 0;
  // A fan-out in flight.
  fan: i32 = 0;
  pending: i32 = 0;
  /** Bytes of the answers held so far in this fan-out. */
  heldBytes: i64 = 0;
  replies: Array<Reply> = [];
  session: Session | null = null;
  list: ListKind | null = null;
  askedVersion: string = "";

  constructor(public s: Settings, public root: RootContext, stream: BaseContext, public sessionHeader: string | null, public startNs: u64) {
    super(stream.context_id);
  }

  serverName(): string {
    return this.server !== null ? (this.server as Server).name : "";
  }

  // ---------------------------------------------------------------- answers the gateway writes

  reply(status: u32, body: ArrayBuffer, details: string, extra: Array<string>): void {
    this.holding = false;
    const h = extra.slice(0);
    if (body.byteLength > 0) {
      h.push("content-type");
      h.push("application/json");
    }
    setFilterState(MCP_OUTCOME, this.outcome);
    sendLocalResponse(status, details, body, h);
  }

  fail(status: u32, code: i32, message: string, outcome: string, details: string): void {
    this.outcome = outcome;
    this.reply(status, errorBody(this.id, code, message), details, []);
  }

  invalidRequest(why: string): void {
    this.fail(400, INVALID_REQUEST, why, "invalid", "sluice_mcp_invalid_request");
  }

  tooLarge(): void {
    this.fail(413, INVALID_REQUEST, "the request body is larger than the gateway's MCP endpoint reads (max_body_bytes " + this.s.maxBodyBytes.toString() + ")", "invalid", "sluice_mcp_too_large");
  }

  noStream(): void {
    this.method = "get";
    setFilterState(MCP_METHOD, "GET");
    this.outcome = "invalid";
    this.reply(405, errorBody("null", SERVER_ERROR, "the gateway opens no server-initiated stream: send requests with POST"), "sluice_mcp_no_stream", ["allow", "POST, DELETE"]);
  }

  methodNotAllowed(method: string): void {
    this.method = "other";
    this.outcome = "invalid";
    this.reply(405, errorBody("null", INVALID_REQUEST, "the MCP endpoint takes POST and DELETE, not " + bounded(method)), "sluice_mcp_method_not_allowed", ["allow", "POST, DELETE"]);
  }

  // ---------------------------------------------------------------- the message

  /** Reads the whole body and acts; the body to send on when the request is routed, else null. */
  handle(body: ArrayBuffer): ArrayBuffer | null {
    this.requestBytes = <i64>body.byteLength;
    const v = parseJson(body, MAX_REQUEST_VALUES);
    if (v === null) {
      if (jsonTooManyValues) this.fail(413, INVALID_REQUEST, "the request holds more JSON values than the gateway reads", "invalid", "sluice_mcp_too_many_values");
      else this.fail(400, PARSE_ERROR, "the request body is not valid JSON", "invalid", "sluice_mcp_parse_error");
      return null;
    }
    const m = readMessage(v as JsonValue);
    this.id = m.id;
    if (m.kind == INVALID) {
      this.invalidRequest(m.problem);
      return null;
    }
    this.method = m.kind == RESPONSE ? "response" : m.method;
    setFilterState(MCP_METHOD, this.method);
    if (m.kind != NOTIFICATION) setFilterState(JSONRPC_ID, this.id);
    if (m.kind == RESPONSE) {
      // Answers to requests a server sent inside a routed stream: which server asked is not known here.
      this.invalidRequest("the gateway does not relay answers to server requests (sampling, elicitation, roots)");
      return null;
    }
    if (m.kind == REQUEST && m.method == "initialize") {
      this.initialize(m, body);
      return null;
    }
    if (this.sessionHeader === null) {
      this.fail(400, SERVER_ERROR, "Mcp-Session-Id header is required (initialize first)", "invalid", "sluice_mcp_no_session");
      return null;
    }
    const x = this.openSession();
    if (x === null) {
      this.fail(404, SESSION_NOT_FOUND, "Session not found", "invalid", "sluice_mcp_session_not_found");
      return null;
    }
    this.session = x;
    if (m.kind == NOTIFICATION) {
      this.fanOut(F_NOTIFY, body, false);
      return null;
    }
    if (m.method == "ping") {
      this.reply(200, resultBody(this.id, String.UTF8.encode("{}")), "via_upstream", []);
      return null;
    }
    if (m.method == "logging/setLevel") {
      this.fanOut(F_SET_LEVEL, body, true);
      return null;
    }
    const kind = listKind(m.method);
    if (kind !== null) {
      this.list = kind;
      this.listAll(m);
      return null;
    }
    if (m.method == "tools/call" || m.method == "prompts/get" || m.method == "resources/read" || m.method == "completion/complete" || m.method == "resources/subscribe" || m.method == "resources/unsubscribe") {
      return this.route(m, body);
    }
    this.fail(200, METHOD_NOT_FOUND, "Method not found: " + bounded(m.method), "error", "sluice_mcp_method_not_found");
    return null;
  }

  openSession(): Session | null {
    const x = open(this.s, this.sessionHeader as string, <i64>(nowNanos() / 1000000));
    if (x === null) return null;
    const c = getFilterState(CONSUMER);
    if ((c !== null ? c as string : "") != x.consumer) return null;
    return x;
  }

  // ---------------------------------------------------------------- routed calls

  route(m: JsonRpcMessage, body: ArrayBuffer): ArrayBuffer | null {
    const t = targetOf(this.s, m.method, m.params);
    if (m.method == "tools/call" && t.value !== null) {
      const name = (t.value as JsonValue).s;
      if (visibleAscii(name, 128)) {
        this.tool = name;
        setFilterState(MCP_TOOL, name);
      }
    }
    if (t.server === null) {
      this.fail(200, INVALID_PARAMS, t.problem, "invalid", "sluice_mcp_unknown_target");
      return null;
    }
    const server = t.server as Server;
    this.server = server;
    setFilterState(MCP_SERVER, server.name);
    if (m.method == "tools/call") {
      const full = (t.value as JsonValue).s;
      const a = accessFor(this.s);
      if (!toolAllowed(a, full)) {
        this.fail(200, INVALID_PARAMS, "tool '" + bounded(full) + "' is not allowed for this consumer", "denied", "sluice_mcp_tool_denied");
        return null;
      }
      const size = argumentBytes(m.params, body.byteLength, a.maxArgumentBytes);
      if (size > a.maxArgumentBytes) {
        this.fail(200, INVALID_PARAMS, "the arguments of tool '" + bounded(full) + "' are " + size.toString() + " bytes, more than this consumer may send (" + a.maxArgumentBytes.toString() + ")", "denied", "sluice_mcp_arguments_too_large");
        return null;
      }
    }
    const member = (this.session as Session).member(server.index);
    if (member === null) {
      this.upstreamProblem = "it is not part of this session (it did not answer initialize)";
      this.fail(503, INTERNAL_ERROR, this.unavailableMessage(), "upstream_error", "sluice_mcp_server_not_in_session");
      return null;
    }
    const missing = missingCredential(server);
    if (missing !== null) {
      this.upstreamProblem = missing as string;
      this.fail(503, INTERNAL_ERROR, this.unavailableMessage(), "upstream_error", "sluice_mcp_no_credential");
      return null;
    }
    const next = rewrittenBody(body, t);
    pointAt(this.s, server, member as Member, next.byteLength);
    this.routed = true;
    this.rewriteUris = m.method == "resources/read";
    return next;
  }

  /** What the client is told when the owning server fails: its name and why, never its address. */
  unavailableMessage(): string {
    let why = this.upstreamProblem;
    if (why.length == 0) why = this.upstreamStatus == 504 ? "it did not answer in time" : this.upstreamStatus > 0 ? "it answered HTTP " + this.upstreamStatus.toString() : "it could not be reached";
    return "MCP server '" + this.serverName() + "' is unavailable: " + why;
  }

  // ---------------------------------------------------------------- fan-outs

  initialize(m: JsonRpcMessage, body: ArrayBuffer): void {
    const params = m.params;
    const pv = params !== null ? (params as JsonValue).get("protocolVersion") : null;
    this.askedVersion = pv !== null && pv.isString() ? pv.s : "";
    this.session = new Session();
    this.fanOut(F_INITIALIZE, body, true);
  }

  listAll(m: JsonRpcMessage): void {
    const kind = this.list as ListKind;
    let cursors: Map<string, string> | null = null;
    const params = m.params;
    const c = params !== null ? (params as JsonValue).get("cursor") : null;
    if (c !== null) {
      if (!c.isString() || (cursors = decodeCursor(this.s, c.s)) === null) {
        this.fail(200, INVALID_PARAMS, "the cursor is not one this gateway gave", "invalid", "sluice_mcp_bad_cursor");
        return;
      }
    }
    const x = this.session as Session;
    this.fan = F_LIST;
    for (let i = 0; i < x.members.length; i++) {
      const member = x.members[i];
      const server = this.s.servers[member.server];
      let cursor = "";
      if (cursors !== null) {
        if (!cursors.has(server.name)) continue; // that server's list is complete
        cursor = cursors.get(server.name);
      }
      const b = new ByteBuilder(96);
      b.raw('{"jsonrpc":"2.0","id":').raw(this.id).raw(',"method":').str(kind.method);
      if (cursor.length) b.raw(',"params":{"cursor":').str(cursor).byte(0x7d);
      b.byte(0x7d);
      this.ask(member, "POST", b.toArrayBuffer());
    }
    if (this.pending == 0) this.finish();
  }

  /** Sends the client's own message to every server of the session (or every configured one, for initialize). */
  fanOut(kind: i32, body: ArrayBuffer, _wantsResult: bool): void {
    this.fan = kind;
    if (kind == F_INITIALIZE) {
      for (let i = 0; i < this.s.servers.length; i++) {
        const m = new Member();
        m.server = i;
        this.ask(m, "POST", body, false);
      }
    } else {
      const x = this.session as Session;
      for (let i = 0; i < x.members.length; i++) this.ask(x.members[i], "POST", body);
    }
    if (this.pending == 0) this.finish();
  }

  endSession(): void {
    this.method = "delete";
    setFilterState(MCP_METHOD, "DELETE");
    const x = this.sessionHeader !== null ? this.openSession() : null;
    if (x === null) {
      this.fail(404, SESSION_NOT_FOUND, "Session not found", "invalid", "sluice_mcp_session_not_found");
      return;
    }
    this.session = x;
    this.fan = F_DELETE;
    for (let i = 0; i < x.members.length; i++) if (x.members[i].id.length) this.ask(x.members[i], "DELETE", new ArrayBuffer(0));
    if (this.pending == 0) this.finish();
  }

  ask(member: Member, verb: string, body: ArrayBuffer, withSession: bool = true): void {
    const server = this.s.servers[member.server];
    const missing = missingCredential(server);
    if (missing !== null) {
      // Not asked without its credential: it would only answer 401.
      const r = new Reply();
      r.server = member.server;
      r.problem = missing as string;
      r.reason = "no_credential";
      this.replies.push(r);
      return;
    }
    const call = new Call(this, member.server);
    if (send(this.root, this.s, call, serverHeaders(server, verb, withSession ? member : null, body.byteLength), body, onCallAnswer)) this.pending++;
    else {
      const r = new Reply();
      r.server = member.server;
      r.problem = "Envoy refused the call (no cluster " + server.cluster + ")";
      r.reason = "unreachable";
      this.replies.push(r);
    }
  }

  onAnswer(server: i32, headers: u32, bodySize: usize): void {
    if (this.closed) return; // the client hung up: the stream is gone
    const wants = this.fan == F_INITIALIZE || this.fan == F_LIST;
    // Every answer of a fan-out is held until they are merged: together they are bounded too, at
    // FANOUT_ANSWERS times max_response_bytes (wasm memory never shrinks); past it, a server is left out.
    if (wants && <i64>bodySize + this.heldBytes > this.s.maxResponseBytes * FANOUT_ANSWERS) {
      const r = new Reply();
      r.server = server;
      r.problem = "the servers' answers together are larger than " + FANOUT_ANSWERS.toString() + " x max_response_bytes";
      r.reason = "invalid_answer";
      this.replies.push(r);
    } else {
      if (wants) this.heldBytes += <i64>bodySize;
      this.replies.push(readAnswer(this.s, server, headers, bodySize, wants));
    }
    this.pending--;
    if (this.pending == 0) this.finish();
  }

  /** Every server answered (or failed): the client's answer. */
  finish(): void {
    // In server order, whatever order the answers came in.
    this.replies.sort((a: Reply, b: Reply): i32 => a.server - b.server);
    for (let i = 0; i < this.replies.length; i++) {
      const r = this.replies[i];
      if (r.problem.length == 0) continue;
      const name = this.s.servers[r.server].name;
      logWarn("mcp: server " + name + " left out of " + this.method + ": " + r.problem);
      countFanoutFailure(name, r.reason);
    }
    if (this.fan == F_INITIALIZE) this.finishInitialize();
    else if (this.fan == F_LIST) {
      const cursors = new Map<string, string>();
      const result = mergeList(this.s, this.list as ListKind, this.replies, accessFor(this.s), cursors);
      this.reply(200, resultBody(this.id, result), "via_upstream", []);
    } else if (this.fan == F_NOTIFY) this.reply(202, new ArrayBuffer(0), "via_upstream", []);
    else if (this.fan == F_DELETE) this.reply(200, new ArrayBuffer(0), "via_upstream", []);
    else this.reply(200, resultBody(this.id, String.UTF8.encode("{}")), "via_upstream", []);
  }

  finishInitialize(): void {
    const x = this.session as Session;
    const c = getFilterState(CONSUMER);
    x.consumer = c !== null ? c as string : "";
    x.openedMs = <i64>(nowNanos() / 1000000);
    x.version = agreedVersion(this.askedVersion);
    const why = new Array<string>();
    for (let i = 0; i < this.replies.length; i++) {
      const r = this.replies[i];
      if (r.result === null) {
        why.push(this.s.servers[r.server].name + ": " + r.problem);
        continue;
      }
      const m = new Member();
      m.server = r.server;
      m.id = r.sessionId;
      const v = (r.result as JsonValue).get("protocolVersion");
      m.version = v !== null && v.isString() && visibleAscii(v.s, 32) ? v.s : x.version;
      x.members.push(m);
    }
    if (x.members.length == 0) {
      this.upstreamProblem = why.join("; ");
      this.fail(502, INTERNAL_ERROR, "no MCP server answered initialize (" + why.join("; ") + ")", "upstream_error", "sluice_mcp_no_server");
      return;
    }
    const sid = seal(this.s, x);
    this.reply(200, resultBody(this.id, initializeResult(this.s, x.version, this.replies)), "via_upstream", ["mcp-session-id", sid]);
  }
}

/**
 * The size of tools/call's params.arguments in JSON bytes. Only measured (written out) when the
 * whole body could be over the limit: a body under it cannot hold larger arguments.
 */
function argumentBytes(params: JsonValue | null, bodyBytes: i32, limit: i64): i64 {
  if (<i64>bodyBytes <= limit || params === null) return 0;
  const a = (params as JsonValue).get("arguments");
  if (a === null) return 0;
  const b = new ByteBuilder(bodyBytes);
  b.value(a);
  return <i64>b.len;
}
