// ai-ratelimit: token limits per consumer, route, model, pool, instance or header. Filter 3 of the
// chain (docs/architecture.md), after key-auth and ai-router, before ai-proxy. Configuration:
// docs/filters/ai-ratelimit.md.
//
// On request it estimates the request's cost (prompt estimate from the text the model reads + the output
// limit the client asked for) and reserves it on every counter of every matching rule; a request
// that does not fit gets 429 and no counter keeps anything of it. When the stream ends it replaces
// each reservation with the actual usage from ai-proxy's usage record, or releases it when the
// request never reached a provider.
//
// Envoy >= 1.35 with `allow_on_headers_stop_iteration: true` on this plugin: the request headers
// are held while the body arrives (the body has the model and max_tokens), like ai-proxy.
export * from "../../lib/abi-exports";
export { proxy_on_request_body, proxy_on_request_trailers, proxy_on_response_headers } from "@gcoredev/proxy-wasm-sdk-as/assembly/exports";
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, FilterDataStatusValues, FilterTrailersStatusValues,
  REQUEST_HEADERS, RESPONSE_HEADERS, REQUEST_BODY, getHeaderPairs, replaceHeader, getBuffer, sendLocalResponse,
  setFilterState, getFilterState, getProperty, pluginConfiguration, nowNanos, incrementMetric,
} from "../../lib/sdk";
import { errorBody, anthropicErrorBody, geminiErrorBody } from "../../lib/errors";
import * as jsonrpc from "../../lib/jsonrpc";
import { decodePathSegment, geminiRoute } from "../../lib/path";
import * as keys from "../../lib/keys";
import {
  Settings, Rule, readSettings, STRATEGY_COST, STRATEGY_REQUESTS, PART_CONSUMER, PART_KEY, PART_TEAM, PART_POOL,
} from "./config";
import { scanRequest } from "./body";
import { Facts, keysFor } from "./facts";
import { Price, reservationMicros } from "../../lib/prices";
import { Outcome, reserve, peek, settle, charge } from "./counters";
import { goDuration, retryAfterSeconds } from "./window";

const PASS: i32 = 0;
const CHAT: i32 = 1;
const MESSAGES: i32 = 2; // Anthropic's Messages API: errors in Anthropic's format
const EMBEDDINGS: i32 = 3;
const GEMINI: i32 = 4; // Gemini's generateContent / streamGenerateContent: model in the path, errors in Gemini's format
// A call the mcp or a2a filter routed (their filter state says so): only `strategy: requests` rules
// apply, nothing is read from the body, and a refusal is a JSON-RPC error.
const AGENT: i32 = 5;

const MAX_COMPLETION_ESTIMATE: i64 = 1000000000;

// Written on admission: the prompt estimate, in tokens. Distributed mode (README) sends it to the
// global rate limit service as the request-time hits_addend.
const PROMPT_ESTIMATE = keys.RATELIMIT_PROMPT_ESTIMATE;

class AiRateLimitRoot extends RootContext {
  settings: Settings | null = null;

  createContext(context_id: u32): Context {
    return new AiRateLimit(context_id, this);
  }

  onConfigure(size: u32): bool {
    const s = readSettings(pluginConfiguration(size));
    if (s === null) return false;
    this.settings = s;
    return true;
  }
}

/** One reservation: a rule's counter, the bucket it went to, and how much. */
class Reservation {
  constructor(public rule: Rule, public key: string, public bucket: i64, public cost: i64, public usedAfter: f64) {}
}

/** Parses a non-negative count written by ai-proxy; -1 when absent or malformed. */
function countOf(key: string): i64 {
  const s = getFilterState(key);
  if (s === null) return -1;
  const t = s as string;
  if (t.length == 0 || t.length > 16) return -1;
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
  }
  return I64.parseInt(t);
}

class Usage {
  prompt: i64 = 0;
  completion: i64 = 0;
  total: i64 = 0;
  cached: i64 = 0;
  /** The record's cost in micro-units (ai-proxy's sluice.cost); -1 when it has none. */
  money: i64 = -1;
}

/** ai-proxy's usage record, or null when there is none (yet). */
function readUsage(): Usage | null {
  const total = countOf(keys.TOTAL_TOKENS);
  if (total < 0) return null;
  const u = new Usage();
  u.total = total;
  u.prompt = countOf(keys.PROMPT_TOKENS);
  u.completion = countOf(keys.COMPLETION_TOKENS);
  u.cached = countOf(keys.CACHED_TOKENS);
  u.money = countOf(keys.COST);
  if (u.prompt < 0) u.prompt = 0;
  if (u.completion < 0) u.completion = 0;
  if (u.cached < 0) u.cached = 0;
  return u;
}

/** Whether the request went to a provider (so it may have cost something). */
function reachedProvider(): bool {
  if (getFilterState(keys.INSTANCE) !== null) return true;
  const d = getProperty(["response", "code_details"]);
  return d !== null && String.UTF8.decode(d as ArrayBuffer) == "via_upstream";
}

class AiRateLimit extends Context {
  kind: i32 = PASS;
  /** The model a Gemini request names in its path (its body has none). */
  pathModel: string | null = null;
  /** The rule whose soft limit (warn_at) this request passed furthest, and how far (share of its limit). */
  warning: Rule | null = null;
  warningShare: f64 = 0;
  decided: bool = false;
  rejected: bool = false;
  settled: bool = false;
  bodyLength: usize = 0;
  facts: Facts = new Facts();
  promptEstimate: i64 = 0;
  completionEstimate: i64 = 0;
  reservations: Array<Reservation> = [];
  // The tightest rule at admission, for the x-ratelimit-* response headers.
  tight: Rule | null = null;
  tightRemaining: i64 = 0;
  tightResetAt: i64 = 0;

  constructor(id: u32, root: AiRateLimitRoot) {
    super(id, root);
  }

  get settings(): Settings | null {
    return (this.root_context as AiRateLimitRoot).settings;
  }

  // ---------------------------------------------------------------------------------------------
  // Request: hold the headers, buffer the body, admit or reject at its end.

  onRequestHeaders(_n: u32, endOfStream: bool): FilterHeadersStatusValues {
    const s = this.settings;
    if (s === null) return FilterHeadersStatusValues.Continue; // unreachable: Envoy refuses the config
    const h = getHeaderPairs(REQUEST_HEADERS);
    let method = "";
    let path = "";
    let contentLength: i64 = -1;
    const names = s.headerNames;
    const values = new Array<string | null>(names.length);
    for (let i = 0; i < names.length; i++) values[i] = null;
    for (let i = 0; i < h.count; i++) {
      if (h.keyIs(i, ":method")) method = h.value(i);
      else if (h.keyIs(i, ":path")) path = h.value(i);
      else if (h.keyIs(i, "content-length")) contentLength = I64.parseInt(h.value(i));
      else {
        for (let j = 0; j < names.length; j++) {
          // Envoy returns the first value of a repeated header; so does this.
          if (values[j] === null && h.keyIs(i, names[j])) values[j] = h.value(i);
        }
      }
    }
    const q = path.indexOf("?");
    const route = q >= 0 ? path.substring(0, q) : path;
    if (method != "POST") return FilterHeadersStatusValues.Continue;
    // OpenAI's Responses API is a chat request with OpenAI's error shape.
    if (route == "/v1/chat/completions" || route == "/v1/responses") this.kind = CHAT;
    else if (route == "/v1/messages") this.kind = MESSAGES;
    else if (route == "/v1/embeddings") this.kind = EMBEDDINGS;
    else {
      // Gemini's own API names the model in the path (ai-proxy reads it the same way).
      const g = geminiRoute(route);
      if (g === null) return this.agentCall(s, route, values);
      if (g.method == "generateContent" || g.method == "streamGenerateContent") this.kind = GEMINI;
      else if (g.method == "embedContent" || g.method == "batchEmbedContents") this.kind = EMBEDDINGS;
      else return FilterHeadersStatusValues.Continue;
      const model = decodePathSegment(g.model);
      this.pathModel = model !== null ? model as string : g.model;
    }
    this.facts.path = route;
    this.facts.headers = values;
    if (endOfStream) {
      // No body: ai-proxy will refuse it; admit on the defaults so the outcome is the same everywhere.
      this.admit(s, new ArrayBuffer(0));
      return this.rejected ? FilterHeadersStatusValues.StopIteration : FilterHeadersStatusValues.Continue;
    }
    // A body announced larger than the cap is refused before any of it is held.
    if (contentLength > s.maxBodyBytes) this.tooLarge(s);
    return FilterHeadersStatusValues.StopIteration;
  }

  onRequestBody(length: usize, endOfStream: bool): FilterDataStatusValues {
    const s = this.settings;
    if (s === null || this.kind == PASS) return FilterDataStatusValues.Continue;
    if (this.rejected) return FilterDataStatusValues.StopIterationNoBuffer;
    if (this.decided) return FilterDataStatusValues.Continue;
    // `length` is everything held so far (Envoy hands a buffering filter the whole buffer): past
    // the cap the request is refused at once, and its body is never copied into this VM's memory.
    if (<i64>length > s.maxBodyBytes) {
      this.tooLarge(s);
      return FilterDataStatusValues.StopIterationNoBuffer;
    }
    this.bodyLength = length;
    if (!endOfStream) return FilterDataStatusValues.StopIterationAndBuffer;
    this.admit(s, getBuffer(REQUEST_BODY, 0, <u32>length));
    return this.rejected ? FilterDataStatusValues.StopIterationNoBuffer : FilterDataStatusValues.Continue;
  }

  onRequestTrailers(_n: u32): FilterTrailersStatusValues {
    const s = this.settings;
    if (s === null || this.kind == PASS) return FilterTrailersStatusValues.Continue;
    if (this.rejected) return FilterTrailersStatusValues.StopIteration;
    if (this.decided) return FilterTrailersStatusValues.Continue;
    // The body ended with trailers: it is complete now.
    this.admit(s, getBuffer(REQUEST_BODY, 0, <u32>this.bodyLength));
    return this.rejected ? FilterTrailersStatusValues.StopIteration : FilterTrailersStatusValues.Continue;
  }

  /** A request that is not an AI API's: an MCP or A2A call is counted by requests rules, anything else passes. */
  agentCall(s: Settings, route: string, values: Array<string | null>): FilterHeadersStatusValues {
    if (!s.usesRequests) return FilterHeadersStatusValues.Continue;
    const f = this.facts;
    f.mcpMethod = getFilterState(keys.MCP_METHOD);
    f.a2aMethod = getFilterState(keys.A2A_METHOD);
    if (f.mcpMethod === null && f.a2aMethod === null) return FilterHeadersStatusValues.Continue;
    f.mcpServer = getFilterState(keys.MCP_SERVER);
    f.mcpTool = getFilterState(keys.MCP_TOOL);
    f.a2aAgent = getFilterState(keys.A2A_AGENT);
    this.kind = AGENT;
    f.path = route;
    f.headers = values;
    this.admit(s, new ArrayBuffer(0));
    return this.rejected ? FilterHeadersStatusValues.StopIteration : FilterHeadersStatusValues.Continue;
  }

  admit(s: Settings, body: ArrayBuffer): void {
    this.decided = true;
    const agent = this.kind == AGENT;
    const req = scanRequest(body);
    const f = this.facts;
    f.model = this.pathModel !== null ? this.pathModel : req.model;
    // Only what some rule names: each read is a call out of the VM.
    const used = s.usedParts;
    if (used & (1 << PART_CONSUMER)) f.consumer = getFilterState(keys.CONSUMER);
    if (used & (1 << PART_KEY)) f.keyId = getFilterState(keys.KEY_ID);
    if (used & (1 << PART_TEAM)) f.team = getFilterState(keys.TEAM);
    if (s.usesGroups) {
      const g = getFilterState(keys.GROUPS);
      if (g !== null && (g as string).length) f.groups = (g as string).split(",");
    }
    if (used & (1 << PART_POOL)) f.pool = getFilterState(keys.POOL);

    this.promptEstimate = req.promptTokens;
    if (this.kind == EMBEDDINGS) this.completionEstimate = 0;
    else {
      let out = this.kind == CHAT && req.maxCompletionTokens >= 0 ? req.maxCompletionTokens : req.maxTokens;
      if (out < 0) out = s.defaultMaxTokens;
      out *= req.n;
      this.completionEstimate = out > MAX_COMPLETION_ESTIMATE ? MAX_COMPLETION_ESTIMATE : out;
    }
    const prompt = this.promptEstimate;
    const completion = this.completionEstimate;
    // A money budget reserves the request's most: the prompt estimate and its output limit at the
    // model's price (lib/prices.ts). No price: the budget cannot be kept, and the request is refused.
    let money: i64 = -1;
    if (s.usesCost) {
      const price = s.prices.find(f.model !== null ? f.model as string : "");
      if (price !== null) money = reservationMicros(prompt, completion, price as Price);
    }

    const now = <i64>nowNanos();
    const rules = s.admission;
    let failed: Outcome | null = null;
    let failedRule: Rule | null = null;
    let failedCost: i64 = 0;
    let next = rules.length;
    for (let i = 0; i < rules.length && failed === null; i++) {
      const rule = rules[i];
      if (agent && rule.strategy != STRATEGY_REQUESTS) continue; // tokens and money are an AI request's
      const ks = keysFor(rule, f);
      if (ks.length == 0) continue;
      if (rule.strategy == STRATEGY_COST && money < 0) {
        for (let k = 0; k < this.reservations.length; k++) {
          const r = this.reservations[k];
          settle(s, r.rule, r.key, r.bucket, r.cost, 0, now);
        }
        this.reservations = [];
        this.tight = null;
        this.unpriced(rule, f.model);
        return;
      }
      const cost = rule.cost(prompt, completion, 0, prompt + completion, money);
      for (let j = 0; j < ks.length; j++) {
        const o = reserve(s, rule, ks[j], cost, now);
        if (!o.ok) {
          failed = o;
          failedRule = rule;
          failedCost = cost;
          next = i + 1;
          break;
        }
        this.reservations.push(new Reservation(rule, o.key, o.bucket, cost, o.used));
        // Soft limit: the request is admitted, and its answer says how much of the window is used.
        if (rule.warnAt > 0 && o.used >= rule.warnAt * <f64>rule.limit) this.warn(rule, o.used);
        // The x-ratelimit-*-tokens headers speak of token rules only.
        if (rule.strategy == STRATEGY_COST || rule.strategy == STRATEGY_REQUESTS) continue;
        const remaining = rule.limit - <i64>Math.ceil(o.used);
        if (this.tight === null || remaining < this.tightRemaining) {
          this.tight = rule;
          this.tightRemaining = remaining < 0 ? 0 : remaining;
          this.tightResetAt = now + o.reset;
        }
      }
    }

    if (failed !== null) {
      // All must admit: give back what the earlier rules reserved.
      for (let i = 0; i < this.reservations.length; i++) {
        const r = this.reservations[i];
        settle(s, r.rule, r.key, r.bucket, r.cost, 0, now);
      }
      this.reservations = [];
      this.tight = null;
      // The binding rule is the one that keeps the request out longest (never fitting beats all).
      let o = failed as Outcome;
      let rule = failedRule as Rule;
      let cost = failedCost;
      for (let i = next; i < rules.length && o.wait >= 0; i++) {
        if (agent && rules[i].strategy != STRATEGY_REQUESTS) continue;
        const ks = keysFor(rules[i], f);
        const c = rules[i].cost(prompt, completion, 0, prompt + completion, money);
        for (let j = 0; j < ks.length; j++) {
          const p = peek(rules[i], ks[j], c, now);
          if (!p.ok && (p.wait < 0 || p.wait > o.wait)) {
            o = p;
            rule = rules[i];
            cost = c;
          }
        }
      }
      this.reject(s, rule, o, cost);
      return;
    }

    if (agent) {
      for (let i = 0; i < this.reservations.length; i++) incrementMetric(this.reservations[i].rule.admittedMetric, 1);
      return;
    }
    setFilterState(PROMPT_ESTIMATE, prompt.toString());
    let budget: i64 = -1;
    for (let i = 0; i < this.reservations.length; i++) {
      const r = this.reservations[i];
      if (r.cost > 0) incrementMetric(r.rule.admittedMetric, r.cost);
      if (r.rule.streamMargin < 0) continue;
      // Completion tokens this stream may produce: its own reservation plus what the window has
      // left after it, in completion tokens of this rule's strategy, plus the margin.
      let left = r.rule.limit - <i64>Math.ceil(r.usedAfter);
      if (left < 0) left = 0;
      const b = completion + <i64>Math.floor(<f64>left / r.rule.completionWeight) + r.rule.streamMargin;
      if (budget < 0 || b < budget) budget = b;
    }
    if (budget >= 0) setFilterState(keys.STREAM_BUDGET, budget.toString());
  }

  /**
   * What a request cost, for money budgets: ai-proxy's recorded cost; else the usage (or, without
   * one, the admission estimate) at the model's price; 0 when nothing is known.
   */
  moneyOf(s: Settings, u: Usage | null): i64 {
    if (!s.usesCost) return 0;
    if (u !== null && u.money >= 0) return u.money;
    const price = s.prices.find(this.facts.model !== null ? this.facts.model as string : "");
    if (price === null) return 0;
    return u !== null ? reservationMicros(u.prompt, u.completion, price as Price) : reservationMicros(this.promptEstimate, this.completionEstimate, price as Price);
  }

  /** A money budget applies but the model has no price: 400 in the client's shape, nothing reserved. */
  unpriced(rule: Rule, model: string | null): void {
    this.rejected = true;
    setFilterState(keys.RATELIMIT_RULE, rule.name);
    incrementMetric(rule.rejectedMetric, 1);
    const m = model !== null ? (model as string).substring(0, 64) : "";
    const message = "The model '" + m + "' has no price, so the budget rule '" + rule.name + "' cannot be kept; the gateway's operator adds it to prices.";
    const body = this.kind == MESSAGES ? anthropicErrorBody(message, "invalid_request_error")
      : this.kind == GEMINI ? geminiErrorBody(400, message)
      : errorBody(message, "invalid_request_error", "model_not_priced");
    sendLocalResponse(400, "sluice_ai_ratelimit_unpriced", body, ["content-type", "application/json"]);
  }

  /** 413 in the client's API shape; nothing was reserved, so nothing is settled. */
  tooLarge(s: Settings): void {
    this.decided = true;
    this.rejected = true;
    const message = "The request body is larger than " + s.maxBodyBytes.toString() + " bytes.";
    const body = this.kind == MESSAGES
      ? anthropicErrorBody(message, "request_too_large")
      : this.kind == GEMINI ? geminiErrorBody(413, message)
      : errorBody(message, "invalid_request_error", "request_too_large");
    sendLocalResponse(413, "sluice_ai_ratelimit_request_too_large", body, ["content-type", "application/json"]);
  }

  reject(s: Settings, rule: Rule, o: Outcome, cost: i64): void {
    this.rejected = true;
    setFilterState(keys.RATELIMIT_RULE, rule.name);
    incrementMetric(rule.rejectedMetric, 1);
    const usedUp = <i64>Math.ceil(o.used);
    const remaining = rule.limit - usedUp;
    const headers: Array<string> = [];
    let message: string;
    const unit = rule.strategy == STRATEGY_REQUESTS ? "requests" : "tokens";
    const per = unit + " per " + rule.windowText;
    if (o.wait < 0) {
      message = "Request too large for rule '" + rule.name + "' on " + per + ": Limit " + rule.limit.toString() +
        ", Requested " + cost.toString() + ". Reduce the prompt or the output limit (max_tokens).";
    } else {
      headers.push("retry-after");
      headers.push(retryAfterSeconds(o.wait).toString());
      message = "Rate limit reached for rule '" + rule.name + "' on " + per + ": Limit " + rule.limit.toString() +
        ", Used " + usedUp.toString() + ", Requested " + cost.toString() + ". Please try again in " + goDuration(o.wait) + ".";
    }
    headers.push("x-ratelimit-limit-" + unit);
    headers.push(rule.limit.toString());
    headers.push("x-ratelimit-remaining-" + unit);
    headers.push((remaining < 0 ? 0 : remaining).toString());
    headers.push("x-ratelimit-reset-" + unit);
    headers.push(goDuration(o.reset));
    headers.push("content-type");
    headers.push("application/json");
    if (this.kind == AGENT) {
      // The id the mcp or a2a filter read from the request, so the client matches the error to its call.
      const id = getFilterState(keys.JSONRPC_ID);
      sendLocalResponse(s.rejectedStatus, "sluice_ai_ratelimit_rejected", jsonrpc.errorBody(id !== null ? id as string : "null", jsonrpc.SERVER_ERROR, message), headers);
      return;
    }
    const body = this.kind == MESSAGES
      ? anthropicErrorBody(message, "rate_limit_error")
      : this.kind == GEMINI ? geminiErrorBody(s.rejectedStatus, message)
      : errorBody(message, "tokens", "rate_limit_exceeded");
    sendLocalResponse(s.rejectedStatus, "sluice_ai_ratelimit_rejected", body, headers);
  }

  // ---------------------------------------------------------------------------------------------
  // Response: the tightest rule's numbers, as OpenAI sends them.

  /** Keeps the soft limit passed furthest (by share used) for the answer's warning header. */
  warn(rule: Rule, used: f64): void {
    incrementMetric(rule.warnedMetric, 1);
    const share = used / <f64>rule.limit;
    if (this.warning !== null && share <= this.warningShare) return;
    this.warning = rule;
    this.warningShare = share;
  }

  onResponseHeaders(_n: u32, _endOfStream: bool): FilterHeadersStatusValues {
    if (this.warning !== null && !this.rejected) {
      const pct = <i64>Math.floor(this.warningShare * 100);
      replaceHeader(RESPONSE_HEADERS, "x-sluice-limit-warning", "rule=" + (this.warning as Rule).name + "; used=" + pct.toString() + "%");
    }
    const rule = this.tight;
    if (rule === null || this.rejected) return FilterHeadersStatusValues.Continue;
    const now = <i64>nowNanos();
    replaceHeader(RESPONSE_HEADERS, "x-ratelimit-limit-tokens", rule.limit.toString());
    replaceHeader(RESPONSE_HEADERS, "x-ratelimit-remaining-tokens", this.tightRemaining.toString());
    replaceHeader(RESPONSE_HEADERS, "x-ratelimit-reset-tokens", goDuration(this.tightResetAt - now));
    return FilterHeadersStatusValues.Continue;
  }

  // ---------------------------------------------------------------------------------------------
  // Stream end: the actual usage replaces the reservations.

  onLog(): void {
    this.finish(false);
  }

  onDone(): bool {
    this.finish(true);
    return true;
  }

  /**
   * Settles once. Without a usage record, a request that reached a provider is settled as late as
   * possible (on_done, after every filter's on_log), in case the record comes from a filter whose
   * on_log runs after this one; if there is still none, the reservation stands as the charge.
   */
  finish(last: bool): void {
    const s = this.settings;
    if (s === null || this.settled || !this.decided || this.rejected) return;
    const u = readUsage();
    let reached = true;
    if (u === null) {
      reached = reachedProvider();
      if (reached && !last) return;
    }
    this.settled = true;
    const now = <i64>nowNanos();
    for (let i = 0; i < this.reservations.length; i++) {
      const r = this.reservations[i];
      let actual: i64;
      if (r.rule.strategy == STRATEGY_REQUESTS) actual = r.cost; // a call counts once, answered or not
      else if (u !== null) actual = r.rule.cost(u.prompt, u.completion, u.cached, u.total, this.moneyOf(s, u));
      else actual = reached ? r.cost : 0;
      settle(s, r.rule, r.key, r.bucket, r.cost, actual, now);
      if (actual > 0) incrementMetric(r.rule.chargedMetric, actual);
    }
    // Instance rules: the instance is known now; they are charged, never checked.
    if (s.meters.length == 0 || !reached) return;
    this.facts.instance = getFilterState(keys.INSTANCE);
    for (let i = 0; i < s.meters.length; i++) {
      const rule = s.meters[i];
      if (this.kind == AGENT && rule.strategy != STRATEGY_REQUESTS) continue;
      const ks = keysFor(rule, this.facts);
      const estimate = this.promptEstimate + this.completionEstimate;
      const actual = u !== null
        ? rule.cost(u.prompt, u.completion, u.cached, u.total, this.moneyOf(s, u))
        : rule.cost(this.promptEstimate, this.completionEstimate, 0, estimate, this.moneyOf(s, null));
      for (let j = 0; j < ks.length; j++) {
        charge(s, rule, ks[j], actual, now);
        if (actual > 0) incrementMetric(rule.chargedMetric, actual);
      }
    }
  }
}

registerRootContext((id: u32) => new AiRateLimitRoot(id), "ai-ratelimit");
