// ai-guard: guardrails on prompts. After ai-router (whose route rule and pool choose a policy) and
// before ai-ratelimit (a blocked request reserves no tokens), see docs/architecture.md. It reads the
// text of every client API's request (request.ts), runs the policy's detectors over it
// (detectors.ts, detect-*.ts) and acts (actions.ts): block with a 400 in the client's API shape,
// mask values with typed placeholders in the body sent on, or only record. Configuration and what a
// client sees: docs/filters/ai-guard.md.
//
// The request headers are held (StopIteration; Envoy >= 1.35 with allow_on_headers_stop_iteration,
// like ai-router) while the body is buffered and read, so that a masked body's content-length can be
// removed before anything goes upstream. A body the guard cannot read (too large, not JSON, too many
// values) is refused: a guard that lets through what it could not check leaks what it guards.
//
// The answer side (answer.ts): 2xx answers of the APIs it reads are checked with the policy's
// response actions, streams within a bounded hold-back window, and mask_and_restore's originals put
// back.
//
// External moderation (moderation.ts): when the policy moderates and the local detectors did not
// block, the texts (masked as the provider will see them) go to the moderation service by
// proxy_http_call while the request stays held; its answer continues the request
// (proxy_continue_stream; in Envoy Context::continueStream calls continueDecoding on the held
// stream, source/extensions/common/wasm/context.cc, which the host mirrors in host/vm.ts) or refuses
// it. A client that hangs up meanwhile ends the stream: the answer that arrives later touches
// nothing (onDone).
export * from "@gcoredev/proxy-wasm-sdk-as/assembly/proxy";
import {
  RootContext, Context, BaseContext, continueRequest, registerRootContext, FilterHeadersStatusValues, FilterDataStatusValues, FilterTrailersStatusValues,
  REQUEST_HEADERS, REQUEST_BODY, getHeaderPairs, getBuffer, replaceBufferBytes, removeHeader, sendLocalResponse,
  setFilterState, getFilterState, pluginConfiguration, incrementMetric,
} from "../../lib/sdk";
import { JsonValue, parseJson, jsonTooManyValues } from "../../lib/json";
import { CONSUMER, ROUTE_RULE, POOL, GUARD_VERDICT, GUARD_CATEGORIES, MCP_METHOD, JSONRPC_ID } from "../../lib/keys";
import { errorBody, INVALID_PARAMS, INVALID_REQUEST, INTERNAL_ERROR } from "../../lib/jsonrpc";
import { Settings, readSettings } from "./config";
import { Policy, A_OFF, A_LOG, A_BLOCK } from "./policy";
import { factorOf } from "./injection";
import { Hits } from "./hits";
import { Budget, scanText } from "./detectors";
import { bodyKind, mcpKind, apiOf, requestTexts, API_OPENAI, API_JSONRPC, K_RESPONSES, K_GEMINI } from "./request";
import { asksForSse } from "../../lib/path";
import { Finding, decide, blockBody, maskBody, V_ALLOW, V_MASK, V_BLOCK, VERDICT_NAMES } from "./actions";
import { Placeholders } from "./placeholders";
import { Answer } from "./answer";
import { Moderation, M_AZURE, O_PASSED, O_FLAGGED, O_TIMEOUT, O_ERROR, O_FAILED_OPEN, O_TRUNCATED } from "./moderation-config";
import { moderationTexts, cutPieces, moderationBodies, moderationHeaders, readVerdict } from "./moderation";
import { httpCall, httpCallStatus, httpCallBody, setEffectiveContext } from "../../lib/http-call";

const API_NAMES = ["", "openai", "anthropic", "gemini", "mcp"];
/** Largest moderation answer read: OpenAI's is about 1.5 KB per input, and at most 105 inputs are sent. */
const MAX_ANSWER_BYTES: usize = 1048576;

function onModerationAnswer(origin: BaseContext, headers: u32, bodySize: usize, _trailers: u32): void {
  changetype<Guard>(origin).onModeration(headers, bodySize);
}

class GuardRoot extends RootContext {
  settings: Settings | null = null;

  createContext(context_id: u32): Context {
    return new Guard(context_id, this);
  }

  onConfigure(size: u32): bool {
    const s = readSettings(pluginConfiguration(size));
    if (s === null) return false;
    this.settings = s;
    return true;
  }
}

class Guard extends Context {
  kind: i32 = 0;
  api: i32 = API_OPENAI;
  hasContentLength: bool = false;
  holding: bool = false;
  done: bool = false;
  /** Bytes of the request body buffered so far (what the last body callback said). */
  bodyLength: usize = 0;
  /** The policy the request was read with, and its placeholders (the answer side uses both). */
  pol: Policy | null = null;
  names: Placeholders | null = null;
  answer: Answer | null = null;
  /** A Gemini stream asked for without alt=sse: its answer is one JSON array. */
  geminiArray: bool = false;
  /** MCP: the call's JSON-RPC id as JSON text (sluice.jsonrpc_id), echoed by a refusal. */
  rpcId: string = "null";
  // External moderation: calls still unanswered, the worst outcome so far (flagged over failed
  // over passed), the category that flagged, and what the local detectors decided.
  modPending: i32 = 0;
  modOutcome: i32 = O_PASSED;
  modCategory: string = "";
  modInputs: i32 = 0;
  modVerdict: i32 = V_ALLOW;
  modCategories: string = "";
  waiting: bool = false;
  closed: bool = false;

  constructor(id: u32, root: GuardRoot) {
    super(id, root);
  }

  get settings(): Settings {
    return (changetype<GuardRoot>(this.root_context)).settings as Settings;
  }

  onRequestHeaders(_n: u32, endOfStream: bool): FilterHeadersStatusValues {
    if ((changetype<GuardRoot>(this.root_context)).settings === null) return FilterHeadersStatusValues.Continue;
    const h = getHeaderPairs(REQUEST_HEADERS);
    let method = "";
    let path = "";
    let contentLength: i64 = -1;
    for (let i = 0; i < h.count; i++) {
      if (h.keyIs(i, ":method")) method = h.value(i);
      else if (h.keyIs(i, ":path")) path = h.value(i);
      else if (h.keyIs(i, "content-length")) {
        contentLength = I64.parseInt(h.value(i));
        this.hasContentLength = true;
      }
    }
    const q = path.indexOf("?");
    const query = q >= 0 ? path.substring(q + 1) : "";
    if (q >= 0) path = path.substring(0, q);
    if (method == "GET" && path.startsWith("/v1/responses/") && path.indexOf("/", 14) < 0) {
      // A stored Response fetched again (ai-proxy's store keeps what the provider wrote, before
      // this filter checked it): its answer is checked like the first one.
      this.kind = K_RESPONSES;
      this.api = API_OPENAI;
      this.pol = this.policy();
      return FilterHeadersStatusValues.Continue;
    }
    if (method != "POST") return FilterHeadersStatusValues.Continue;
    this.kind = bodyKind(path);
    if (this.kind == 0) {
      // Not a model API: an MCP request when the mcp filter (before this one) named its method.
      // Only tools/call and prompts/get carry client text to a server; other methods pass untouched.
      const mcp = getFilterState(MCP_METHOD);
      if (mcp === null) return FilterHeadersStatusValues.Continue;
      this.kind = mcpKind(mcp as string);
      if (this.kind == 0) return FilterHeadersStatusValues.Continue;
      // The id as the mcp filter wrote it (lib/jsonrpc.ts: a quoted string or a number, bounded);
      // anything else is not echoed into a reply.
      const id = getFilterState(JSONRPC_ID);
      if (id !== null && rpcIdLike(id as string)) this.rpcId = id as string;
    }
    this.api = apiOf(this.kind);
    this.geminiArray = this.kind == K_GEMINI && path.endsWith(":streamGenerateContent") && !asksForSse(query);
    if (endOfStream) return FilterHeadersStatusValues.Continue; // no body: nothing to read
    if (contentLength > this.settings.maxBodyBytes) {
      this.tooLarge();
      return FilterHeadersStatusValues.StopIteration;
    }
    this.holding = true;
    return FilterHeadersStatusValues.StopIteration;
  }

  onRequestBody(length: usize, endOfStream: bool): FilterDataStatusValues {
    if (!this.holding) return this.done ? FilterDataStatusValues.StopIterationNoBuffer : FilterDataStatusValues.Continue;
    this.bodyLength = length;
    if (<i64>length > this.settings.maxBodyBytes) {
      this.tooLarge();
      return FilterDataStatusValues.StopIterationNoBuffer;
    }
    if (!endOfStream) return FilterDataStatusValues.StopIterationAndBuffer;
    this.holding = false;
    const body = getBuffer(REQUEST_BODY, 0, <u32>length);
    if (this.inspect(body)) return FilterDataStatusValues.Continue;
    // Waiting on moderation: the (possibly rewritten) body stays buffered until the answer.
    return this.waiting ? FilterDataStatusValues.StopIterationAndBuffer : FilterDataStatusValues.StopIterationNoBuffer;
  }

  onRequestTrailers(_n: u32): FilterTrailersStatusValues {
    // A body that ends with trailers: read it now (all of it is buffered).
    if (this.holding) {
      this.holding = false;
      const body = getBuffer(REQUEST_BODY, 0, <u32>this.bodyLength);
      if (!this.inspect(body)) return FilterTrailersStatusValues.StopIteration;
    }
    return this.done ? FilterTrailersStatusValues.StopIteration : FilterTrailersStatusValues.Continue;
  }

  /** The policy for this request: the consumer's, else the route rule's, else the pool's, else the default. */
  policy(): Policy {
    const s = this.settings;
    if (s.consumers.size > 0) {
      const c = getFilterState(CONSUMER);
      if (c !== null && s.consumers.has(c as string)) return s.consumers.get(c as string);
    }
    if (s.routes.size > 0) {
      const r = getFilterState(ROUTE_RULE);
      if (r !== null && s.routes.has(r as string)) return s.routes.get(r as string);
    }
    if (s.pools.size > 0) {
      const p = getFilterState(POOL);
      if (p !== null && s.pools.has(p as string)) return s.pools.get(p as string);
    }
    return s.policy;
  }

  /** Reads, scans and acts on the whole body; false when the request was refused. */
  inspect(body: ArrayBuffer): bool {
    const s = this.settings;
    const p = this.policy();
    this.pol = p;
    if (!p.active && !p.moderate) {
      this.record(V_ALLOW, "");
      return true;
    }
    const req = parseJson(body, s.maxJsonValues);
    if (req === null || !req.isObject()) {
      incrementMetric(s.unreadable, 1);
      this.record(V_BLOCK, "");
      this.refuse(jsonTooManyValues ? "the request body holds more JSON values than the gateway's guard reads" : "the request body is not a JSON object", "sluice_guard_unreadable");
      return false;
    }
    const found = requestTexts(this.kind, req as JsonValue);
    const texts = found.values;
    const budget = new Budget(s.regexBudget);
    const findings = new Array<Finding>();
    for (let i = 0; i < texts.length; i++) {
      const v = texts[i];
      const hits = new Hits();
      const factor = factorOf(unchecked(found.where[i]));
      if (v.src !== null && !v.rawComplex) scanText<u8>(v.raw, v.rawLen, p, hits, budget, null, factor);
      else {
        const str = v.s;
        scanText<u16>(changetype<usize>(str), str.length, p, hits, budget, null, factor);
      }
      if (hits.length == 0) continue;
      hits.settle();
      findings.push(new Finding(v, hits));
    }
    const o = decide(p, findings);
    const categories = o.names(p, 0);
    for (let d = 0; d < o.found.length; d++) if (o.found[d]) incrementMetric(p.metrics[d], 1);
    const over = budget.exceededBy;
    if (over >= 0 && p.actions[over] != A_LOG && p.actions[over] != A_OFF && o.verdict != V_BLOCK) {
      // A custom pattern that could not be decided within the budget: what it would have masked or
      // blocked may be there, so the request is refused rather than let through unchecked.
      incrementMetric(s.regexBudgetExceeded, 1);
      this.record(V_BLOCK, categories);
      this.refuse("the request could not be checked by the gateway's guard within its budget (" + p.names[over] + ")", "sluice_guard_budget_exceeded");
      return false;
    }
    if (over >= 0) incrementMetric(s.regexBudgetExceeded, 1);
    if (!p.moderate || o.verdict == V_BLOCK) this.record(o.verdict, categories);
    if (o.verdict == V_BLOCK) {
      this.refuse("the request was blocked by the gateway's guard: it contains " + o.names(p, A_BLOCK).replaceAll(",", ", "), "sluice_guard_blocked");
      return false;
    }
    if (o.verdict == V_MASK) {
      const names = new Placeholders();
      const out = maskBody(body, p, findings, names);
      // Kept for the answer only when it will be read (the same values get the same placeholders
      // there, and mask_and_restore's originals are put back).
      if (p.answerActive || names.originals.size > 0) this.names = names;
      if (out !== null) {
        if (!replaceBufferBytes(REQUEST_BODY, <u32>body.byteLength, changetype<usize>(out.buf), out.len)) {
          // The body could not be rewritten: the values must not go on unmasked.
          this.reply(500, "the gateway's guard could not rewrite the request body", "sluice_guard_rewrite_failed");
          return false;
        }
        if (this.hasContentLength) removeHeader(REQUEST_HEADERS, "content-length");
      }
    }
    if (p.moderate) return this.moderate(texts, findings, p, o.verdict, categories);
    return true;
  }

  onResponseHeaders(_n: u32, endOfStream: bool): FilterHeadersStatusValues {
    const p = this.pol;
    if (p === null || this.done) return FilterHeadersStatusValues.Continue;
    const names = this.names !== null ? this.names as Placeholders : new Placeholders();
    if (!Answer.wanted(p, this.kind, names)) return FilterHeadersStatusValues.Continue;
    const a = new Answer(this.settings, p, this.kind, names, this.geminiArray);
    a.rpcId = this.rpcId;
    this.answer = a;
    return a.headers(endOfStream);
  }

  onResponseBody(length: usize, endOfStream: bool): FilterDataStatusValues {
    const a = this.answer;
    return a === null ? FilterDataStatusValues.Continue : a.body(length, endOfStream);
  }

  /** Sends the texts to the moderation service; false when the request waits for it (or was refused). */
  moderate(texts: Array<JsonValue>, findings: Array<Finding>, p: Policy, verdict: i32, categories: string): bool {
    const m = this.settings.moderation as Moderation;
    this.modVerdict = verdict;
    this.modCategories = categories;
    const pieces = cutPieces(moderationTexts(texts, findings, p), m.maxTextBytes);
    if (pieces.truncated) {
      incrementMetric(m.metrics[O_TRUNCATED], 1);
      if (!m.failOpen) {
        // Part of the prompt could not be moderated: refused rather than passed unchecked.
        this.record(V_BLOCK, this.withCategory("moderation:too_large"));
        this.reply(413, "the request's text is longer than the gateway's moderation checks (max_text_bytes " + m.maxTextBytes.toString() + ")", "sluice_guard_moderation_too_large");
        return false;
      }
    }
    if (pieces.list.length == 0) {
      this.record(verdict, categories);
      return true; // no text: nothing to moderate
    }
    const context = [
      "api", API_NAMES[this.api],
      "consumer", stateOr(CONSUMER), "route", stateOr(ROUTE_RULE), "pool", stateOr(POOL),
    ];
    this.modInputs = pieces.list.length;
    const bodies = moderationBodies(m, pieces.list, context);
    const headers = moderationHeaders(m);
    const root = changetype<GuardRoot>(this.root_context);
    for (let i = 0; i < bodies.length; i++) {
      if (httpCall(root, m.cluster, headers, bodies[i], m.timeoutMs, this, onModerationAnswer)) this.modPending++;
      else this.modOutcome = O_ERROR; // Envoy refused the call (unknown cluster)
    }
    if (this.modPending == 0) return this.settle();
    this.waiting = true;
    return false;
  }

  onModeration(headers: u32, bodySize: usize): void {
    if (this.closed) return; // the client hung up: the stream is gone
    this.modPending--;
    const m = this.settings.moderation as Moderation;
    // An answer larger than any moderation verdict is an error, not read (wasm memory never shrinks).
    const status = bodySize > MAX_ANSWER_BYTES ? 0 : httpCallStatus(headers);
    const body = bodySize > MAX_ANSWER_BYTES ? new ArrayBuffer(0) : httpCallBody(bodySize);
    const v = readVerdict(m, status, body, m.kind == M_AZURE ? 1 : this.modInputs);
    if (v.outcome == O_FLAGGED) {
      if (this.modOutcome != O_FLAGGED) this.modCategory = v.category;
      this.modOutcome = O_FLAGGED;
    } else if (v.outcome != O_PASSED && this.modOutcome == O_PASSED) this.modOutcome = v.outcome;
    if (this.modPending > 0) return;
    setEffectiveContext(this.context_id);
    this.waiting = false;
    if (this.settle()) continueRequest();
  }

  /** Acts on the moderation outcome; true when the request goes on. */
  settle(): bool {
    const m = this.settings.moderation as Moderation;
    const o = this.modOutcome;
    incrementMetric(m.metrics[o], 1);
    if (o == O_FLAGGED) {
      this.record(V_BLOCK, this.withCategory("moderation:" + this.modCategory));
      this.refuse("the request was blocked by the gateway's moderation: " + this.modCategory, "sluice_guard_moderation_blocked");
      return false;
    }
    if (o == O_TIMEOUT || o == O_ERROR) {
      if (!m.failOpen) {
        this.record(V_BLOCK, this.withCategory("moderation:unavailable"));
        this.reply(503, "the gateway's moderation service did not answer" + (o == O_TIMEOUT ? " in time" : " usably") + "; the request was not sent", "sluice_guard_moderation_unavailable");
        return false;
      }
      incrementMetric(m.metrics[O_FAILED_OPEN], 1);
    }
    this.record(this.modVerdict, this.modCategories);
    return true;
  }

  withCategory(c: string): string {
    return this.modCategories.length ? this.modCategories + "," + c : c;
  }

  onDone(): bool {
    this.closed = true;
    return true;
  }

  onDelete(): void {
    this.closed = true;
  }

  record(verdict: i32, categories: string): void {
    const s = this.settings;
    setFilterState(GUARD_VERDICT, VERDICT_NAMES[verdict]);
    if (categories.length) setFilterState(GUARD_CATEGORIES, categories);
    incrementMetric(verdict == V_BLOCK ? s.blocked : verdict == V_MASK ? s.masked : s.allowed, 1);
  }

  tooLarge(): void {
    incrementMetric(this.settings.unreadable, 1);
    this.record(V_BLOCK, "");
    this.reply(413, "the request body is larger than the gateway's guard reads (max_body_bytes " + this.settings.maxBodyBytes.toString() + ")", "sluice_guard_too_large");
  }

  refuse(message: string, details: string): void {
    this.reply(400, message, details);
  }

  reply(status: u32, message: string, details: string): void {
    this.done = true;
    this.holding = false;
    if (this.api == API_JSONRPC) {
      // MCP: a refusal of this call is the call's answer, HTTP 200 with a JSON-RPC error
      // (-32602, as the mcp filter refuses a denied tool); a body the guard cannot read keeps its
      // status (413, 400, 5xx) with the JSON-RPC error of its kind.
      const refusal = status == 400 && (details == "sluice_guard_blocked" || details == "sluice_guard_moderation_blocked" || details == "sluice_guard_budget_exceeded");
      const code = refusal ? INVALID_PARAMS : status < 500 ? INVALID_REQUEST : INTERNAL_ERROR;
      sendLocalResponse(refusal ? 200 : status, details, errorBody(this.rpcId, code, message), ["content-type", "application/json"]);
      return;
    }
    sendLocalResponse(status, details, blockBody(this.api, status, message), ["content-type", "application/json"]);
  }
}

/** A JSON-RPC id's JSON text as lib/jsonrpc.ts writes it: a quoted string or a number, at most 300 bytes. */
function rpcIdLike(id: string): bool {
  const n = id.length;
  if (n == 0 || n > 300) return false;
  const c = id.charCodeAt(0);
  if (c == 0x22) {
    // A quote or a control character inside would not be one JSON string.
    for (let i = 1; i < n - 1; i++) {
      const d = id.charCodeAt(i);
      if (d < 0x20) return false;
      if (d == 0x5c) i++;
      else if (d == 0x22) return false;
    }
    return n >= 2 && id.charCodeAt(n - 1) == 0x22 && id.charCodeAt(n - 2) != 0x5c;
  }
  for (let i = 0; i < n; i++) {
    const d = id.charCodeAt(i);
    if (!((d >= 0x30 && d <= 0x39) || d == 0x2d || d == 0x2b || d == 0x2e || d == 0x65 || d == 0x45)) return false;
  }
  return true;
}

function stateOr(key: string): string {
  const v = getFilterState(key);
  return v === null ? "" : v as string;
}

registerRootContext((id: u32) => new GuardRoot(id), "ai-guard");
