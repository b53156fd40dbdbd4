// a2a: Agent2Agent (A2A) agents behind the gateway (docs/a2a.md). Agent <name> is served at
// <path_prefix>/<name>: its JSON-RPC calls are checked (one JSON-RPC request, an A2A method) and
// routed to the agent through Envoy's router with the agent's own credential, so streamed task
// updates (server-sent events) stream through; its card at <path_prefix>/<name>/.well-known/
// agent-card.json is the agent's own, rewritten to point at the gateway (card.ts). Right after
// key-auth and identity, so the consumer is known; ai-ratelimit's `strategy: requests` rules limit
// calls per agent and method from the filter state written here.
export * from "@gcoredev/proxy-wasm-sdk-as/assembly/proxy";
import {
  RootContext, Context, BaseContext, registerRootContext, FilterHeadersStatusValues, FilterDataStatusValues, FilterTrailersStatusValues,
  REQUEST_HEADERS, RESPONSE_HEADERS, REQUEST_BODY, RESPONSE_BODY, getHeaderPairs, getHeader, getBuffer, replaceBuffer,
  replaceHeader, removeHeader, pluginConfiguration, setFilterState, sendLocalResponse, nowNanos, continueRequest,
} from "../../lib/sdk";
import { parseJson, jsonTooManyValues, JsonValue } from "../../lib/json";
import { readMessage, errorBody, INVALID, REQUEST, PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INTERNAL_ERROR } from "../../lib/jsonrpc";
import { httpCall, httpCallStatus, httpCallBody } from "../../lib/http-call";
import { routeTo } from "../../lib/upstream-route";
import { A2A_AGENT, A2A_METHOD, JSONRPC_ID } from "../../lib/keys";
import { Settings, Agent, readSettings } from "./config";
import { isA2aMethod } from "./methods";
import { cacheKey, cachedCard, storeCard, rewriteCard } from "./card";
import { countRequest } from "./metrics";

const CARD_SUFFIX = "/.well-known/agent-card.json";
const MAX_REQUEST_VALUES: i32 = 200000;

class A2aRoot extends RootContext {
  settings: Settings | null = null;

  createContext(context_id: u32): Context {
    return new A2aStream(context_id, this);
  }

  onConfigure(size: u32): bool {
    const s = readSettings(pluginConfiguration(size));
    if (s === null) return false;
    this.settings = s;
    return true;
  }
}

function onCardAnswer(origin: BaseContext, headers: u32, bodySize: usize, _trailers: u32): void {
  changetype<A2aStream>(origin).onCard(headers, bodySize);
}

/** A visible-ASCII value of at most max characters from the allowed set, else null. */
function token(v: string | null, max: i32, extra: string): string | null {
  if (v === null) return null;
  const s = v as string;
  if (s.length == 0 || s.length > max) return null;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 45 || c == 46 || extra.includes(String.fromCharCode(c));
    if (!ok) return null;
  }
  return s;
}

class A2aStream extends Context {
  s: Settings | null = null;
  active: bool = false;
  holding: bool = false;
  routed: bool = false;
  closed: bool = false;
  agent: Agent | null = null;
  method: string = "";
  id: string = "null";
  outcome: string = "ok";
  startNs: u64 = 0;
  bodyLength: usize = 0;
  // The card: the gateway's URL for the agent, and the cache key the answer goes to.
  cardUrl: string = "";
  cardKey: string = "";
  // A routed answer that failed, replaced by a JSON-RPC error.
  replacing: bool = false;
  upstreamStatus: i32 = 0;

  constructor(id: u32, root: A2aRoot) {
    super(id, root);
  }

  onRequestHeaders(_n: u32, endOfStream: bool): FilterHeadersStatusValues {
    const s = (changetype<A2aRoot>(this.root_context)).settings;
    if (s === null) return FilterHeadersStatusValues.Continue;
    const h = getHeaderPairs(REQUEST_HEADERS);
    let method = "";
    let path = "";
    let authority: string | null = null;
    let scheme = "http";
    let version: string | null = null;
    let contentLength: i64 = -1;
    for (let i = 0; i < h.count; i++) {
      if (h.keyIs(i, ":method")) method = h.value(i);
      else if (h.keyIs(i, ":path")) path = h.value(i);
      else if (h.keyIs(i, ":authority")) authority = h.value(i);
      else if (h.keyIs(i, ":scheme")) scheme = h.value(i);
      else if (h.keyIs(i, "a2a-version")) version = h.value(i);
      else if (h.keyIs(i, "content-length")) contentLength = I64.parseInt(h.value(i));
    }
    const q = path.indexOf("?");
    const route = q >= 0 ? path.substring(0, q) : path;
    const prefix = s.pathPrefix + "/";
    if (!route.startsWith(prefix)) return FilterHeadersStatusValues.Continue;
    this.s = s;
    this.active = true;
    this.startNs = nowNanos();
    let rest = route.substring(prefix.length);
    const card = rest.endsWith(CARD_SUFFIX);
    if (card) rest = rest.substring(0, rest.length - CARD_SUFFIX.length);
    const agent = s.agent(rest);
    if (agent === null) {
      this.method = card ? "card" : "other";
      this.fail(404, METHOD_NOT_FOUND, "no agent '" + (rest.length <= 64 ? rest : rest.substring(0, 64)) + "' behind this gateway", "sluice_a2a_unknown_agent");
      return FilterHeadersStatusValues.StopIteration;
    }
    this.agent = agent;
    setFilterState(A2A_AGENT, agent.name);
    if (card) {
      this.method = "card";
      setFilterState(A2A_METHOD, "card");
      if (method != "GET") {
        this.fail(405, INVALID_REQUEST, "an agent card is read with GET", "sluice_a2a_method_not_allowed");
        return FilterHeadersStatusValues.StopIteration;
      }
      this.serveCard(s, agent, scheme, authority, version);
      return FilterHeadersStatusValues.StopIteration;
    }
    if (method != "POST") {
      this.method = "other";
      this.fail(405, INVALID_REQUEST, "A2A calls are JSON-RPC requests sent with POST", "sluice_a2a_method_not_allowed");
      return FilterHeadersStatusValues.StopIteration;
    }
    if (endOfStream) {
      this.method = "other";
      this.fail(400, INVALID_REQUEST, "the request has no body", "sluice_a2a_invalid_request");
    } else if (contentLength > s.maxBodyBytes) this.tooLarge(s);
    else this.holding = true;
    return FilterHeadersStatusValues.StopIteration;
  }

  onRequestBody(length: usize, endOfStream: bool): FilterDataStatusValues {
    if (!this.active) return FilterDataStatusValues.Continue;
    if (!this.holding) return this.routed ? FilterDataStatusValues.Continue : FilterDataStatusValues.StopIterationNoBuffer;
    const s = this.s as Settings;
    this.bodyLength = length;
    if (<i64>length > s.maxBodyBytes) {
      this.tooLarge(s);
      return FilterDataStatusValues.StopIterationNoBuffer;
    }
    if (!endOfStream) return FilterDataStatusValues.StopIterationAndBuffer;
    this.holding = false;
    return this.call(s, getBuffer(REQUEST_BODY, 0, <u32>length)) ? FilterDataStatusValues.Continue : FilterDataStatusValues.StopIterationNoBuffer;
  }

  onRequestTrailers(_n: u32): FilterTrailersStatusValues {
    if (!this.active) return FilterTrailersStatusValues.Continue;
    if (this.holding) {
      this.holding = false;
      this.call(this.s as Settings, getBuffer(REQUEST_BODY, 0, <u32>this.bodyLength));
    }
    return this.routed ? FilterTrailersStatusValues.Continue : FilterTrailersStatusValues.StopIteration;
  }

  /** Checks the JSON-RPC request and routes it to the agent; false when it was answered here. */
  call(s: Settings, body: ArrayBuffer): bool {
    const v = parseJson(body, MAX_REQUEST_VALUES);
    if (v === null) {
      this.method = "other";
      if (jsonTooManyValues) this.fail(413, INVALID_REQUEST, "the request holds more JSON values than the gateway reads", "sluice_a2a_too_many_values");
      else this.fail(400, PARSE_ERROR, "the request body is not valid JSON", "sluice_a2a_parse_error");
      return false;
    }
    const m = readMessage(v as JsonValue);
    this.id = m.id;
    if (m.kind == INVALID) {
      this.method = "other";
      this.fail(400, INVALID_REQUEST, m.problem, "sluice_a2a_invalid_request");
      return false;
    }
    if (m.kind != REQUEST || !isA2aMethod(m.method)) {
      this.method = "other";
      this.fail(m.kind == REQUEST ? 200 : 400, m.kind == REQUEST ? METHOD_NOT_FOUND : INVALID_REQUEST, m.kind == REQUEST ? "Method not found: not an A2A method" : "A2A takes JSON-RPC requests (with an id and a method)", "sluice_a2a_method_not_found");
      return false;
    }
    this.method = m.method;
    setFilterState(A2A_METHOD, m.method);
    setFilterState(JSONRPC_ID, m.id);
    const a = this.agent as Agent;
    routeTo(s.clusterHeader, a.cluster, a.authority, a.path, a.authHeader, a.authValue);
    this.routed = true;
    return true;
  }

  // ---------------------------------------------------------------- the agent's card

  serveCard(s: Settings, a: Agent, scheme: string, authority: string | null, version: string | null): void {
    let base = s.publicUrl;
    if (base.length == 0) {
      // The card is read back by the client: only a plain host[:port] from the request goes into it.
      const host = token(authority, 255, ":[]");
      if (host === null) {
        this.fail(400, INVALID_REQUEST, "the request's authority is not a host name, so the agent card cannot name the gateway (set a2a.public_url)", "sluice_a2a_bad_authority");
        return;
      }
      base = (scheme == "https" ? "https" : "http") + "://" + (host as string);
    }
    this.cardUrl = base + s.pathPrefix + "/" + a.name;
    const v = token(version, 8, "");
    this.cardKey = cacheKey(a.name, v !== null ? v as string : "");
    const cached = cachedCard(this.cardKey, <i64>(nowNanos() / 1000000));
    if (cached !== null) {
      this.sendCard(s, cached as ArrayBuffer);
      return;
    }
    const h = [":method", "GET", ":path", a.cardPath, ":authority", a.authority, "accept", "application/json"];
    if (v !== null) {
      h.push("a2a-version");
      h.push(v as string);
    }
    if (a.authValue !== null) {
      h.push(a.authHeader);
      h.push(a.authValue as string);
    }
    if (!httpCall(changetype<A2aRoot>(this.root_context), a.cluster, h, new ArrayBuffer(0), s.timeoutMs, this, onCardAnswer)) {
      this.fail(503, INTERNAL_ERROR, "agent '" + a.name + "' is unavailable: Envoy has no cluster for it", "sluice_a2a_card_unavailable");
    }
  }

  onCard(headers: u32, bodySize: usize): void {
    if (this.closed) return;
    const s = this.s as Settings;
    const a = this.agent as Agent;
    const status = httpCallStatus(headers);
    if (status != 200) {
      this.fail(status == 504 ? 504 : 502, INTERNAL_ERROR, "agent '" + a.name + "' did not give its card (" + (status == 0 ? "no answer" : status == 504 ? "timed out" : "HTTP " + status.toString()) + ")", "sluice_a2a_card_unavailable");
      return;
    }
    if (<i64>bodySize > s.maxCardBytes) {
      this.fail(502, INTERNAL_ERROR, "agent '" + a.name + "' gave a card larger than " + s.maxCardBytes.toString() + " bytes", "sluice_a2a_card_too_large");
      return;
    }
    const card = httpCallBody(bodySize);
    if (s.cardTtlMs > 0) storeCard(this.cardKey, card, <i64>(nowNanos() / 1000000) + s.cardTtlMs);
    this.sendCard(s, card);
  }

  sendCard(s: Settings, card: ArrayBuffer): void {
    const out = rewriteCard(s, card, this.cardUrl);
    if (out === null) {
      this.fail(502, INTERNAL_ERROR, "agent '" + (this.agent as Agent).name + "' gave a card that is not a JSON object", "sluice_a2a_bad_card");
      return;
    }
    sendLocalResponse(200, "sluice_a2a_card", out as ArrayBuffer, ["content-type", "application/json", "cache-control", "no-store"]);
  }

  // ---------------------------------------------------------------- answers

  fail(status: u32, code: i32, message: string, details: string): void {
    this.holding = false;
    this.outcome = status == 404 || status == 405 || status == 400 || status == 413 || code == METHOD_NOT_FOUND ? "invalid" : "upstream_error";
    sendLocalResponse(status, details, errorBody(this.id, code, message), ["content-type", "application/json"]);
  }

  tooLarge(s: Settings): void {
    this.method = "other";
    this.fail(413, INVALID_REQUEST, "the request body is larger than the gateway reads for A2A (max_body_bytes " + s.maxBodyBytes.toString() + ")", "sluice_a2a_too_large");
  }

  onResponseHeaders(_n: u32, endOfStream: bool): FilterHeadersStatusValues {
    if (!this.routed) return FilterHeadersStatusValues.Continue;
    const st = getHeader(RESPONSE_HEADERS, ":status");
    this.upstreamStatus = st !== null ? I32.parseInt(st as string) : 0;
    if (this.upstreamStatus >= 500 || this.upstreamStatus == 0) {
      // The agent failed or Envoy could not reach it: a JSON-RPC error naming the agent, never the
      // upstream's own body (it may name hosts and ports).
      this.outcome = "upstream_error";
      if (!endOfStream) {
        this.replacing = true;
        replaceHeader(RESPONSE_HEADERS, "content-type", "application/json");
        removeHeader(RESPONSE_HEADERS, "content-length");
      }
    } else if (this.upstreamStatus >= 400) this.outcome = "upstream_error";
    return FilterHeadersStatusValues.Continue;
  }

  onResponseBody(length: usize, endOfStream: bool): FilterDataStatusValues {
    if (!this.replacing) return FilterDataStatusValues.Continue;
    if (!endOfStream) return FilterDataStatusValues.StopIterationAndBuffer;
    const a = this.agent as Agent;
    const why = this.upstreamStatus == 504 ? "it did not answer in time" : "it answered HTTP " + this.upstreamStatus.toString();
    replaceBuffer(RESPONSE_BODY, <u32>length, errorBody(this.id, INTERNAL_ERROR, "agent '" + a.name + "' is unavailable: " + why));
    return FilterDataStatusValues.Continue;
  }

  onLog(): void {
    if (!this.active) return;
    const agent = this.agent !== null ? (this.agent as Agent).name : "";
    countRequest(agent, this.method.length ? this.method : "other", this.outcome, <i64>((nowNanos() - this.startNs) / 1000000), this.routed);
  }

  onDone(): bool {
    this.closed = true;
    return true;
  }

  onDelete(): void {
    this.closed = true;
  }
}

registerRootContext((context_id: u32) => new A2aRoot(context_id), "a2a");
