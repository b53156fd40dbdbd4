// ai-router: context-aware routing. Filter 2 of the chain (docs/architecture.md): decides the pool
// (model group) of a chat request from its headers, consumer, body and the built-in classifier,
// optionally by semantic similarity; ai-proxy then picks an instance in that pool.
// Configuration: docs/filters/ai-router.md.
//
// Why this file is over 500 lines: the Router context's phases and its three-valued condition
// evaluator (eval and the matchers below it) read the same per-request state (headers, path,
// consumer, the parsed prompt, its classification and embedding), and a rule is re-evaluated from
// where it stopped when the body or an embedding arrives. The pure parts live elsewhere: the
// configuration (config.ts), the prompt reader (prompt.ts), the classifier (classify.ts, lexicon.ts,
// words.ts, structure.ts), matching (match.ts) and vectors (lib/vectors.ts, shared with ai-cache).
//
// Requests: POST /v1/chat/completions (OpenAI), POST /v1/responses (OpenAI's Responses API) and
// POST /v1/messages (Anthropic); anything else
// passes untouched. Rules are tried in order, the first that matches wins, else the default pool.
//
// Conditions evaluate to true, false, unknown or "need more". Header, path and consumer
// conditions are known at the request headers; the others need the body, and semantic conditions
// need embeddings. A rule is decided as soon as it can be: when the rules up to the first match
// need only headers, the request continues at once; otherwise the headers are held (StopIteration;
// Envoy >= 1.35 with allow_on_headers_stop_iteration) and the body buffered and parsed once. A
// semantic condition makes the request wait on an http_call for the prompt's embedding (the
// headers are held anyway); the callback resumes the rules and continues the request. Unknown
// (an embedding that failed, a body that could not be read) makes the rule that depends on it not
// match: the rule is skipped, never the request.
export * from "../../lib/abi-exports";
export { proxy_on_request_body, proxy_on_request_trailers, proxy_on_response_headers } from "@gcoredev/proxy-wasm-sdk-as/assembly/exports";
import {
  RootContext, Context, BaseContext, registerRootContext, FilterHeadersStatusValues, FilterDataStatusValues,
  FilterTrailersStatusValues, REQUEST_HEADERS, RESPONSE_HEADERS, REQUEST_BODY, HeaderPairs, getHeaderPairs,
  getBuffer, replaceHeader, setFilterState, getFilterState, pluginConfiguration, incrementMetric, continueRequest,
  nowNanos, getSharedData, setSharedData, logWarn,
} from "../../lib/sdk";
import { ByteBuilder } from "../../lib/json";
import { parseTape } from "../../lib/json-tape";
import { POOL, ROUTE_RULE, CONSUMER, GROUPS } from "../../lib/keys";
import { ROUTE_MODEL, TASK_TYPE, COMPLEXITY } from "../../lib/keys";
import { Regex, regexSteps } from "../../lib/regex";
import { sha256, toHex } from "../../lib/sha256";
import { httpCall, httpCallStatus, httpCallBody, setEffectiveContext, setTickPeriodMs } from "../../lib/http-call";
import {
  Settings, Embeddings, Cond, readSettings, C_ALL, C_ANY, C_NOT, C_HEADER, C_PATH, C_CONSUMER, C_GROUP, C_MODEL, C_KEYWORDS,
  C_REGEX, C_TOKENS, C_MESSAGES, C_TOOLS, C_IMAGES, C_JSON, C_TASK, C_COMPLEXITY, M_EXACT, M_PREFIX, M_REGEX, M_PRESENT,
  SCOPE_CONVERSATION,
} from "./config";
import { Prompt, readPrompt } from "./prompt";
import { decodePathSegment, geminiRoute } from "../../lib/path";
import { Text, TextUnits } from "./text";
import { Classification, classify, initClassifier, TASK_NAMES } from "./classify";
import { globMatch, textContainsKeyword } from "./match";
import { parseEmbeddings, normalize, dot } from "../../lib/vectors";

// Condition results.
const F: i32 = 0;
const T: i32 = 1;
const U: i32 = 2; // unknown: the rule that depends on it is skipped
const N: i32 = 3; // need more: the body, or an embedding

// Example embeddings, per VM.
const EX_NONE: i32 = 0;
const EX_LOADING: i32 = 1;
const EX_READY: i32 = 2;
const EX_FAILED: i32 = 3;

const ROUTE_HEADER = "x-sluice-route";
const TICK_MS: u32 = 1000;

class RouterRoot extends RootContext {
  settings: Settings | null = null;
  exState: i32 = EX_NONE;
  exVectors: Array<StaticArray<f32>> = [];
  exRetryAt: u64 = 0;
  exKey: string = "";
  waiters: Array<Router> = [];
  ticking: bool = false;

  createContext(context_id: u32): Context {
    return new Router(context_id, this);
  }

  onConfigure(size: u32): bool {
    const s = readSettings(pluginConfiguration(size));
    if (s === null) return false;
    this.settings = s;
    initClassifier();
    this.exState = EX_NONE;
    this.exVectors = [];
    if (s.embeddings !== null && s.examples.length > 0) {
      this.exKey = examplesKey(s);
      // Embedded already by another worker (or an earlier configuration with the same examples)?
      // Otherwise they are fetched on the first tick, or by the first request that needs them.
      if (!this.loadShared()) {
        setTickPeriodMs(TICK_MS);
        this.ticking = true;
      }
    }
    return true;
  }

  onTick(): void {
    if (this.exState == EX_READY || this.settings === null) {
      this.stopTicking();
      return;
    }
    if (this.exState == EX_LOADING) return;
    if (this.loadShared()) {
      this.stopTicking();
      return;
    }
    if (this.exState == EX_FAILED && nowNanos() < this.exRetryAt) return;
    this.fetchExamples();
  }

  stopTicking(): void {
    if (this.ticking) {
      setTickPeriodMs(0);
      this.ticking = false;
    }
  }

  /** Reads the example embeddings from shared data; true when they are ready. */
  loadShared(): bool {
    if (this.exState == EX_READY) return true;
    const s = this.settings as Settings;
    const v = getSharedData(this.exKey);
    if (v.value === null) return false;
    const buf = v.value as ArrayBuffer;
    const n = buf.byteLength;
    if (n < 8) return false;
    const base = changetype<usize>(buf);
    const count = load<u32>(base);
    const dim = load<u32>(base + 4);
    if (<i32>count != s.examples.length || dim == 0 || <u64>8 + <u64>count * <u64>dim * 4 != <u64>n) return false;
    const out = new Array<StaticArray<f32>>();
    for (let i: u32 = 0; i < count; i++) {
      const vec = new StaticArray<f32>(<i32>dim);
      memory.copy(changetype<usize>(vec), base + 8 + <usize>i * <usize>dim * 4, <usize>dim * 4);
      out.push(vec);
    }
    this.exVectors = out;
    this.exState = EX_READY;
    return true;
  }

  /** Starts embedding every example text with one request. False when Envoy refused the call. */
  fetchExamples(): bool {
    const s = this.settings as Settings;
    const body = embeddingRequest(s, s.examples);
    const ok = httpCall(this, (s.embeddings as Embeddings).cluster, embeddingHeaders(s), body,
      (s.embeddings as Embeddings).examplesTimeoutMs, this, onExamplesResponse);
    if (!ok) {
      this.examplesFailed("the embeddings cluster refused the call");
      return false;
    }
    this.exState = EX_LOADING;
    return true;
  }

  onExamples(headers: u32, bodySize: usize): void {
    const s = this.settings;
    if (s === null) return;
    const status = httpCallStatus(headers);
    if (status != 200) {
      this.examplesFailed(status == 0 ? "no answer" : "status " + status.toString());
    } else {
      const vecs = parseEmbeddings(httpCallBody(bodySize), s.examples.length);
      if (vecs === null) this.examplesFailed("unreadable answer");
      else {
        const list = vecs as Array<StaticArray<f32>>;
        for (let i = 0; i < list.length; i++) normalize(list[i]);
        this.exVectors = list;
        this.exState = EX_READY;
        this.stopTicking();
        // Every worker reuses them.
        const dim = list[0].length;
        const buf = new ArrayBuffer(8 + list.length * dim * 4);
        const base = changetype<usize>(buf);
        store<u32>(base, <u32>list.length);
        store<u32>(base + 4, <u32>dim);
        for (let i = 0; i < list.length; i++) memory.copy(base + 8 + <usize>i * <usize>dim * 4, changetype<usize>(list[i]), <usize>dim * 4);
        setSharedData(this.exKey, buf, 0);
      }
    }
    // Wake the requests that waited for them.
    const waiters = this.waiters;
    this.waiters = [];
    for (let i = 0; i < waiters.length; i++) waiters[i].examplesResolved();
  }

  examplesFailed(why: string): void {
    const s = this.settings as Settings;
    this.exState = EX_FAILED;
    this.exRetryAt = nowNanos() + <u64>(s.embeddings as Embeddings).retryMs * 1000000;
    incrementMetric(s.embeddingErrors, 1);
    logWarn("ai-router: embedding the semantic examples failed (" + why + "); semantic rules are skipped until a retry succeeds");
    if (!this.ticking) {
      setTickPeriodMs(TICK_MS);
      this.ticking = true;
    }
  }

  removeWaiter(r: Router): void {
    const i = this.waiters.indexOf(r);
    if (i >= 0) this.waiters.splice(i, 1);
  }
}

function onExamplesResponse(origin: BaseContext, headers: u32, bodySize: usize, _trailers: u32): void {
  changetype<RouterRoot>(origin).onExamples(headers, bodySize);
}

function onPromptResponse(origin: BaseContext, headers: u32, bodySize: usize, _trailers: u32): void {
  changetype<Router>(origin).onPromptEmbedding(headers, bodySize);
}

function examplesKey(s: Settings): string {
  const e = s.embeddings as Embeddings;
  const parts = [e.cluster, e.model, e.dimensions.toString()].concat(s.examples);
  const bytes = String.UTF8.encode(parts.join("\0"));
  return "sluice.ai_router.examples." + toHex(sha256(changetype<usize>(bytes), <usize>bytes.byteLength)).substring(0, 32);
}

function embeddingHeaders(s: Settings): Array<string> {
  const e = s.embeddings as Embeddings;
  const h = [":method", "POST", ":path", e.path, ":authority", e.authority, "content-type", "application/json"];
  if (e.apiKey.length) {
    h.push("authorization");
    h.push("Bearer " + e.apiKey);
  }
  return h;
}

/** {"model": ..., "input": [...]} in OpenAI's /v1/embeddings format. */
function embeddingRequest(s: Settings, inputs: Array<string>): ArrayBuffer {
  const e = s.embeddings as Embeddings;
  const b = new ByteBuilder(256);
  b.raw('{"model":').str(e.model).raw(',"input":[');
  for (let i = 0; i < inputs.length; i++) {
    if (i > 0) b.byte(0x2c);
    b.str(inputs[i]);
  }
  b.raw("]");
  if (e.dimensions > 0) b.raw(',"dimensions":').int(e.dimensions);
  b.raw("}");
  return b.toArrayBuffer();
}

// Stream phases.
const P_PASS: i32 = 0; // not routed, or decided
const P_HOLD: i32 = 1; // headers held, buffering the body
const P_WAIT: i32 = 2; // body read, waiting for embeddings

class Router extends Context {
  phase: i32 = P_PASS;
  bodyKnown: bool = false; // body conditions can be evaluated (or are unknown)
  headers: HeaderPairs | null = null;
  path: string = "";
  consumer: string | null = null;
  /** The model a Gemini request names in its path (its body has none). */
  pathModel: string | null = null;
  /** The consumer's groups (identity's sluice.groups, comma-separated), one per item. */
  groups: Array<string> = [];
  prompt: Prompt | null = null;
  clsLast: Classification | null = null;
  clsConv: Classification | null = null;
  // Embeddings.
  embAsked: bool = false; // fetched (or given up); semantic conditions no longer "need more"
  promptPending: bool = false;
  examplesPending: bool = false;
  promptVec: StaticArray<f32> | null = null;
  resumeAt: i32 = 0;
  routeName: string = "";
  closed: bool = false;
  regexLeft: i64 = 0; // regular-expression steps this request may still spend
  regexExceeded: bool = false;

  constructor(id: u32, root: RouterRoot) {
    super(id, root);
  }

  get root(): RouterRoot {
    return changetype<RouterRoot>(this.root_context);
  }

  get settings(): Settings {
    return this.root.settings as Settings;
  }

  onRequestHeaders(_n: u32, endOfStream: bool): FilterHeadersStatusValues {
    const s = this.root.settings;
    if (s === null) return FilterHeadersStatusValues.Continue;
    const h = getHeaderPairs(REQUEST_HEADERS);
    let method = "";
    let path = "";
    let contentLength: i64 = -1;
    for (let i = 0; i < h.count; i++) {
      if (h.keyIs(i, ":method")) method = h.value(i);
      else if (h.keyIs(i, ":path")) path = h.value(i);
      else if (h.keyIs(i, "content-length")) contentLength = I64.parseInt(h.value(i));
    }
    const q = path.indexOf("?");
    if (q >= 0) path = path.substring(0, q);
    if (method != "POST") return FilterHeadersStatusValues.Continue;
    if (path != "/v1/chat/completions" && path != "/v1/messages" && path != "/v1/responses") {
      // Gemini's own API: the model is in the path (ai-proxy reads it the same way).
      const g = geminiRoute(path);
      if (g === null || (g.method != "generateContent" && g.method != "streamGenerateContent")) return FilterHeadersStatusValues.Continue;
      const model = decodePathSegment(g.model);
      this.pathModel = model !== null ? model as string : g.model;
    }
    this.headers = h;
    this.path = path;
    this.regexLeft = s.regexBudget;
    if (s.usesConsumer) this.consumer = getFilterState(CONSUMER);
    if (s.usesGroups) {
      const g = getFilterState(GROUPS);
      if (g !== null && (g as string).length) this.groups = (g as string).split(",");
    }
    if (endOfStream || contentLength > s.maxBodyBytes) {
      // No body, or one too large to read: body conditions are unknown.
      this.bodyKnown = true;
      this.decide(this.run(0));
      return FilterHeadersStatusValues.Continue;
    }
    const r = this.run(0);
    if (r >= -1 && !s.annotate) {
      this.decide(r);
      return FilterHeadersStatusValues.Continue;
    }
    // annotate: the classification is written for every request, so the body is always read.
    this.resumeAt = r >= -1 ? 0 : -r - 2;
    this.phase = P_HOLD;
    return FilterHeadersStatusValues.StopIteration;
  }

  onRequestBody(length: usize, endOfStream: bool): FilterDataStatusValues {
    if (this.phase == P_WAIT) return FilterDataStatusValues.StopIterationAndBuffer;
    if (this.phase != P_HOLD) return FilterDataStatusValues.Continue;
    const s = this.settings;
    if (<i64>length > s.maxBodyBytes) {
      this.bodyKnown = true;
      this.decide(this.run(this.resumeAt));
      return FilterDataStatusValues.Continue;
    }
    if (!endOfStream) return FilterDataStatusValues.StopIterationAndBuffer;
    const body = getBuffer(REQUEST_BODY, 0, <u32>length);
    // Past max_json_values the body is unreadable, like one past max_body_bytes: its conditions are
    // unknown, and ai-proxy refuses the request itself (400 request_too_complex).
    const tape = parseTape(body, s.maxJsonValues);
    if (tape.ok && tape.isObject(0)) {
      const prompt = readPrompt(tape, 0);
      if (this.pathModel !== null) prompt.model = this.pathModel as string;
      this.prompt = prompt;
    }
    this.bodyKnown = true;
    return this.afterBody();
  }

  onRequestTrailers(_n: u32): FilterTrailersStatusValues {
    // A body that ends with trailers: decided without it (its conditions are unknown).
    if (this.phase == P_HOLD) {
      this.bodyKnown = true;
      this.phase = P_PASS;
      this.decide(this.run(this.resumeAt));
    }
    return FilterTrailersStatusValues.Continue;
  }

  afterBody(): FilterDataStatusValues {
    const r = this.run(this.resumeAt);
    if (r >= -1) {
      this.phase = P_PASS;
      this.decide(r);
      return FilterDataStatusValues.Continue;
    }
    // A semantic condition needs the prompt's embedding.
    this.resumeAt = -r - 2;
    if (this.startEmbedding()) {
      this.phase = P_WAIT;
      return FilterDataStatusValues.StopIterationAndBuffer;
    }
    this.phase = P_PASS;
    this.decide(this.run(this.resumeAt));
    return FilterDataStatusValues.Continue;
  }

  /**
   * Tries the rules from index `from`: the index of the rule that matched, -1 for the default
   * pool, or -(i + 2) when rule i needs more (the body, or embeddings).
   */
  run(from: i32): i32 {
    const rules = this.settings.rules;
    for (let i = from; i < rules.length; i++) {
      const c = rules[i].cond;
      if (c === null) return i;
      const v = this.eval(c as Cond);
      if (v == T) return i;
      if (v == N) return -(i + 2);
    }
    return -1;
  }

  decide(i: i32): void {
    const s = this.settings;
    this.phase = P_PASS;
    if (i >= 0) {
      const rule = s.rules[i];
      setFilterState(POOL, rule.pool);
      setFilterState(ROUTE_RULE, rule.name);
      if (rule.model.length) setFilterState(ROUTE_MODEL, rule.model);
      incrementMetric(rule.metric, 1);
      this.routeName = rule.name;
    } else {
      if (s.defaultPool.length) setFilterState(POOL, s.defaultPool);
      setFilterState(ROUTE_RULE, "default");
      incrementMetric(s.defaultMetric, 1);
      this.routeName = "default";
    }
    if (s.annotate && this.prompt !== null) this.classification(0);
    const c = this.clsLast;
    if (c !== null) {
      setFilterState(TASK_TYPE, TASK_NAMES[c.task]);
      setFilterState(COMPLEXITY, formatScore(c.complexity));
    }
    // Decided: nothing reads the body again. Letting go of it here (the parse tree holds the body's
    // bytes) lets the collection at the end of this callback free it, instead of the stream keeping
    // it until it ends, on top of the next request's body.
    this.prompt = null;
  }

  onResponseHeaders(_n: u32, _eos: bool): FilterHeadersStatusValues {
    if (this.settings.routeHeader && this.routeName.length) replaceHeader(RESPONSE_HEADERS, ROUTE_HEADER, this.routeName);
    return FilterHeadersStatusValues.Continue;
  }

  onDone(): bool {
    this.close();
    return true;
  }

  onDelete(): void {
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.examplesPending) this.root.removeWaiter(this);
  }

  // -------------------------------------------------------------------------------------------
  // Conditions

  eval(c: Cond): i32 {
    const kind = c.kind;
    if (kind == C_ALL) {
      let res = T;
      for (let i = 0; i < c.kids.length; i++) {
        const v = this.eval(c.kids[i]);
        if (v == F) return F;
        if (v == N) res = N;
        else if (v == U && res == T) res = U;
      }
      return res;
    }
    if (kind == C_ANY) {
      let res = F;
      for (let i = 0; i < c.kids.length; i++) {
        const v = this.eval(c.kids[i]);
        if (v == T) return T;
        if (v == N) res = N;
        else if (v == U && res == F) res = U;
      }
      return res;
    }
    if (kind == C_NOT) {
      const v = this.eval(c.kids[0]);
      return v == T ? F : v == F ? T : v;
    }
    if (kind == C_HEADER) {
      const h = this.headers as HeaderPairs;
      for (let i = 0; i < h.count; i++) {
        if (!h.keyIs(i, c.name)) continue;
        if (c.mode == M_PRESENT) return c.want ? T : F;
        return this.matchString(c, h.value(i));
      }
      return c.mode == M_PRESENT && !c.want ? T : F;
    }
    if (kind == C_PATH) return this.matchString(c, this.path);
    if (kind == C_CONSUMER) {
      const who = this.consumer;
      return who !== null && c.strs.includes(who as string) ? T : F;
    }
    if (kind == C_GROUP) {
      // Any of the consumer's groups named by the condition.
      for (let i = 0; i < this.groups.length; i++) if (c.strs.includes(this.groups[i])) return T;
      return F;
    }
    // Everything else reads the body.
    if (!this.bodyKnown) return N;
    const p = this.prompt;
    if (p === null) return U;
    const prompt = p as Prompt;
    switch (kind) {
      case C_MODEL: {
        for (let i = 0; i < c.strs.length; i++) if (globMatch(c.strs[i], prompt.model)) return T;
        return F;
      }
      case C_KEYWORDS: {
        const text = c.scope == SCOPE_CONVERSATION ? prompt.conversation : prompt.lastUser;
        return textContainsKeyword(text, c.strs) ? T : F;
      }
      case C_REGEX: {
        const text = c.scope == SCOPE_CONVERSATION ? prompt.conversation : prompt.lastUser;
        let res = F;
        for (let i = 0; i < c.res.length; i++) {
          const v = this.regexText(c.res[i], text);
          if (v == T) return T;
          if (v == U) res = U;
        }
        return res;
      }
      case C_TOKENS: return inRange(c, <f64>prompt.tokens) ? T : F;
      case C_MESSAGES: return inRange(c, <f64>prompt.messages) ? T : F;
      case C_TOOLS: return prompt.tools == c.want ? T : F;
      case C_IMAGES: return prompt.images == c.want ? T : F;
      case C_JSON: return prompt.jsonMode == c.want ? T : F;
      case C_TASK: {
        const cl = this.classification(c.scope);
        return (c.tasks & (1 << cl.task)) != 0 ? T : F;
      }
      case C_COMPLEXITY: {
        const cl = this.classification(c.scope);
        return inRange(c, cl.complexity) ? T : F;
      }
      default: return this.semantic(c);
    }
  }

  matchString(c: Cond, v: string): i32 {
    if (c.mode == M_EXACT) return v == c.str ? T : F;
    if (c.mode == M_PREFIX) return v.startsWith(c.str) ? T : F;
    if (c.mode == M_REGEX) return this.regex(c.res[0], v);
    return T;
  }

  /**
   * A regular expression within the request's step budget (max_regex_steps): past it, the answer
   * is unknown and the rule that depends on it is skipped.
   */
  regex(re: Regex, text: string): i32 {
    if (this.regexLeft <= 0) return this.outOfBudget();
    const before = regexSteps;
    return this.regexResult(re.testWithin(text, this.regexLeft), before);
  }

  /** regex() over a prompt text, read where it lies (no decoded copy of a long prompt). */
  regexText(re: Regex, text: Text): i32 {
    if (this.regexLeft <= 0) return this.outOfBudget();
    const before = regexSteps;
    return this.regexResult(re.testUnitsWithin<TextUnits>(new TextUnits(text), text.length, this.regexLeft), before);
  }

  regexResult(r: i32, stepsBefore: i64): i32 {
    this.regexLeft -= regexSteps - stepsBefore;
    if (r < 0) return this.outOfBudget();
    return r == 1 ? T : F;
  }

  outOfBudget(): i32 {
    if (!this.regexExceeded) {
      this.regexExceeded = true;
      incrementMetric(this.settings.regexBudgetExceeded, 1);
    }
    return U;
  }

  classification(scope: i32): Classification {
    const p = this.prompt as Prompt;
    if (scope == SCOPE_CONVERSATION) {
      let c = this.clsConv;
      if (c === null) {
        c = classify(p.conversation);
        this.clsConv = c;
      }
      return c as Classification;
    }
    let c = this.clsLast;
    if (c === null) {
      c = classify(p.lastUser);
      this.clsLast = c;
    }
    return c as Classification;
  }

  semantic(c: Cond): i32 {
    if (!this.embAsked) return N;
    const root = this.root;
    const pv = this.promptVec;
    if (pv === null || root.exState != EX_READY) return U;
    const vec = pv as StaticArray<f32>;
    let best: f64 = -2;
    for (let i = c.exStart; i < c.exEnd; i++) {
      const ex = root.exVectors[i];
      if (ex.length != vec.length) return U;
      const d = dot(vec, ex);
      if (d > best) best = d;
    }
    return best >= c.threshold ? T : F;
  }

  // -------------------------------------------------------------------------------------------
  // Embeddings

  /** Starts what the semantic conditions need. True when the request must wait for it. */
  startEmbedding(): bool {
    this.embAsked = true;
    const s = this.settings;
    const e = s.embeddings as Embeddings;
    const root = this.root;
    const p = this.prompt;
    const text: Text | null = p === null ? null : (p as Prompt).lastUser;
    if (text === null || text.length == 0) return false; // nothing to embed: semantic conditions are unknown
    if (root.exState != EX_READY && !root.loadShared()) {
      if (root.exState == EX_FAILED && nowNanos() < root.exRetryAt) return false;
      if (root.exState != EX_LOADING && !root.fetchExamples()) return false;
      root.waiters.push(this);
      this.examplesPending = true;
    }
    const input = text.slice(0, e.maxInputChars);
    if (httpCall(root, e.cluster, embeddingHeaders(s), embeddingRequest(s, [input]), e.timeoutMs, this, onPromptResponse)) {
      this.promptPending = true;
    } else {
      incrementMetric(s.embeddingErrors, 1);
      if (this.examplesPending) {
        root.removeWaiter(this);
        this.examplesPending = false;
      }
      return false;
    }
    return true;
  }

  onPromptEmbedding(headers: u32, bodySize: usize): void {
    if (this.closed) return;
    this.promptPending = false;
    const status = httpCallStatus(headers);
    let ok = false;
    if (status == 200) {
      const vecs = parseEmbeddings(httpCallBody(bodySize), 1);
      if (vecs !== null) {
        const v = (vecs as Array<StaticArray<f32>>)[0];
        normalize(v);
        this.promptVec = v;
        ok = true;
      }
    }
    if (!ok) {
      incrementMetric(this.settings.embeddingErrors, 1);
      logWarn("ai-router: embedding the prompt failed (" + (status == 0 ? "no answer" : status == 200 ? "unreadable answer" : "status " + status.toString()) + "); semantic rules skipped for this request");
    }
    this.maybeResume();
  }

  examplesResolved(): void {
    this.examplesPending = false;
    if (!this.closed) this.maybeResume();
  }

  maybeResume(): void {
    if (this.closed || this.promptPending || this.examplesPending || this.phase != P_WAIT) return;
    // Called from another context's callback too: act on this stream.
    setEffectiveContext(this.context_id);
    this.decide(this.run(this.resumeAt));
    continueRequest();
  }
}

function inRange(c: Cond, v: f64): bool {
  if (c.hasGt && !(v > c.gt)) return false;
  if (c.hasLt && !(v < c.lt)) return false;
  return true;
}

/** A score as "0.42". */
function formatScore(x: f64): string {
  let h = <i32>Math.round(x * 100);
  if (h < 0) h = 0;
  if (h > 100) h = 100;
  if (h == 100) return "1.00";
  return "0." + (h < 10 ? "0" : "") + h.toString();
}

registerRootContext((id: u32) => new RouterRoot(id), "ai-router");
