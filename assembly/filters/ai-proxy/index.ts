// ai-proxy: one OpenAI-compatible API (and Anthropic's Messages API) over every provider.
// Filter 4 of the chain (ARCHITECTURE.md): picks the instance, translates the request and targets
// its cluster, translates the answer or SSE stream back, and writes the usage record.
//
// Envoy >= 1.35 with `allow_on_headers_stop_iteration: true` on this plugin: the request headers
// are held (StopIteration) while the body arrives, because the body decides the upstream path,
// authority and cluster. Without the knob Envoy would withhold the body from this filter.
export * from "@gcoredev/proxy-wasm-sdk-as/assembly/proxy";
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, FilterDataStatusValues,
  REQUEST_HEADERS, RESPONSE_HEADERS, REQUEST_BODY, RESPONSE_BODY, getHeaderPairs, getHeader, removeHeader, replaceHeader,
  getBuffer, replaceBufferBytes, appendBuffer, sendLocalResponse, setFilterState, setFilterStateInt, getFilterState, clearRouteCache, pluginConfiguration, nowNanos, getProperty,
  BaseContext, HTTP_CALL_RESPONSE_HEADERS, HTTP_CALL_RESPONSE_BODY, continueResponse, makeHeaderPair, HeaderPair, setTickPeriod,
  getSharedData, setSharedData, WasmResultValues, closeResponse,
} from "../../lib/sdk";
import { JsonValue, ByteBuilder, parseJson, jsonError, jsonSawBadUtf8, jsonTooManyValues, setJsonDefaultMaxValues, writeMerged } from "../../lib/json";
import { SseParser, SseEvent } from "../../lib/sse";
import * as keys from "../../lib/keys";
import { writeUsageRecord } from "../../lib/usage";
import { estimateTokens, estimatePromptTokens } from "../../lib/tokens";
import {
  redactedError, ChatResult, ClientError, CountingSink, Instance, Provider, StreamDecoder, StreamSink, Upstream, Usage, isPlainModelName, invalidModel, MAX_MODEL_NAME,
} from "../../providers/types";
import { OpenAIStreamDecoder, EVENT_CHUNK, EVENT_DONE, EVENT_ERROR } from "../../providers/openai";
import { Settings, readSettings } from "./config";
import { validateRequest, isJsonMediaType } from "./validate";
import { OpenAIStreamSink, writeOpenAIChat, writeOpenAIError, writeOpenAIUsageChunk } from "./client-openai";
import { AnthropicStreamSink, anthropicToOpenAI, writeAnthropicError, writeAnthropicMessage } from "./client-anthropic";
import { replayAsStream } from "./replay";
import { estimatedUsage } from "./estimate";
import { capOutput, CAPPED_CUT_FACTOR } from "./budget";
import { Metrics } from "./metrics";
import { Pool, PickInput, pick, recordLatency, addInflight, CONSISTENT_HASH } from "./balancer";
import {
  HealthState, readHealth, report, wentDown, parseReset, OUTCOME_SUCCESS, OUTCOME_FAILURE, OUTCOME_RATE_LIMITED, OUTCOME_EXHAUSTED,
  OUTCOME_PROBE_OK, OUTCOME_PROBE_FAILED,
} from "./health";

// What the client asked for.
const PASS: i32 = 0; // not an AI API: untouched
const CHAT: i32 = 1;
const EMBEDDINGS: i32 = 2;

const CLIENT_OPENAI: i32 = 0;
const CLIENT_ANTHROPIC: i32 = 1;

// How the response body is handled.
const RESP_NONE: i32 = 0;
const RESP_JSON: i32 = 1; // buffered answer, translated at the end
const RESP_SSE: i32 = 2; // translated chunk by chunk
const RESP_ERROR: i32 = 3; // provider error, buffered and translated
const RESP_REPLAY: i32 = 4; // a stream was asked for but a JSON answer came: replayed as a stream
const RESP_FALLBACK: i32 = 5; // the instance failed before any byte reached the client: trying another

// Request headers targeting removes, when the request has them.
const HAS_CONTENT_LENGTH: i32 = 1;
const HAS_ACCEPT_ENCODING: i32 = 2;
const HAS_AUTHORIZATION: i32 = 4;
const HAS_X_API_KEY: i32 = 8;
const HAS_API_KEY: i32 = 16;
const HAS_GOOG_KEY: i32 = 32;

/** request_type of a request to an AI path the gateway does not serve (404 / 405). */
const REQUEST_UNSUPPORTED = "ai_unsupported";

/** A client's header value inside an error message: printable ASCII, at most 64 characters. */
function safeForMessage(v: string): string {
  let out = "";
  for (let i = 0; i < v.length && i < 64; i++) {
    const c = v.charCodeAt(i);
    out += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : "?";
  }
  return out;
}

// Requests whose implicit pools (instances serving a model) are remembered per VM; model names
// come from clients, so the cache is bounded.
const MAX_IMPLICIT_POOLS: i32 = 256;

function nowMs(): i64 {
  return <i64>(nowNanos() / 1000000);
}

class AiProxyRoot extends RootContext {
  settings: Settings | null = null;
  metrics: Metrics = metricsOf;

  createContext(context_id: u32): Context {
    return new AiProxy(context_id, this);
  }

  implicitPools: Map<string, Pool> = new Map();

  onConfigure(size: u32): bool {
    const s = readSettings(pluginConfiguration(size));
    if (s === null) return false;
    this.settings = s;
    // Every parse in this VM without a bound of its own (provider answers, stream events, tool
    // arguments) gets this one: an answer past it is unreadable (a 502, as any unreadable answer).
    setJsonDefaultMaxValues(s.maxJsonValues);
    // Every configured instance has its availability gauge from the start, not only after a
    // failure: a dashboard (or an alert on 0) sees each instance as soon as the gateway runs.
    const now = nowMs();
    for (let i = 0; i < s.instances.length; i++) {
      const name = s.instances[i].name;
      metricsOf.instanceHealth(name, readHealth(name).available(now), false);
    }
    if (s.health.active) setTickPeriod(<u32>(s.health.intervalMs < 1000 ? s.health.intervalMs : 1000));
    return true;
  }

  /** Active health checks: each due instance is probed by one worker (a shared lease decides). */
  onTick(): void {
    const s = this.settings;
    if (s === null || !s.health.active) return;
    const now = nowMs();
    for (let i = 0; i < s.instances.length; i++) {
      const inst = s.instances[i];
      const key = "sluice.ai-proxy.probe." + inst.name;
      const cur = getSharedData(key);
      const due = cur.value !== null ? I64.parseInt(String.UTF8.decode(cur.value as ArrayBuffer)) : 0;
      if (now < due) continue;
      const next = String.UTF8.encode((now + s.health.intervalMs).toString());
      if (setSharedData(key, next, cur.value === null ? 0 : cur.cas) != WasmResultValues.Ok) continue; // another worker took it
      this.probe(s, i);
    }
  }

  probe(s: Settings, i: i32): void {
    const inst = s.instances[i];
    const provider = s.providers[i];
    const path = s.health.path.length ? inst.basePath + s.health.path : provider.probePath(inst);
    const headers: Array<HeaderPair> = [makeHeaderPair(":method", "GET"), makeHeaderPair(":path", path), makeHeaderPair(":authority", inst.authority)];
    const auth = provider.chatUpstream(inst, inst.model, false).headers;
    for (let h = 0; h + 1 < auth.length; h += 2) headers.push(makeHeaderPair(auth[h], auth[h + 1]));
    const r = this.httpCall(inst.cluster, headers, new ArrayBuffer(0), [], <u32>s.health.timeoutMs, new Probe(this.context_id, i, this), onProbeResponse);
    if (r != WasmResultValues.Ok) healthReport(s, inst.name, OUTCOME_PROBE_FAILED, nowMs(), 0);
  }
}

/** Passive and active health reports, with the per-instance metrics (availability, cooldowns). */
function healthReport(s: Settings, instance: string, outcome: i32, now: i64, until: i64): void {
  const h = report(s.health, instance, outcome, now, until);
  metricsOf.instanceHealth(instance, h.available(now), wentDown);
}

// The root's metrics, for code that runs outside a context method (health reports).
let metricsOf: Metrics = new Metrics();

/** Who an active health check was for (http_call callbacks carry one context object). */
class Probe extends BaseContext {
  instance: i32;
  root: AiProxyRoot;
  constructor(id: u32, instance: i32, root: AiProxyRoot) {
    super(id);
    this.instance = instance;
    this.root = root;
  }
}

function onProbeResponse(origin: BaseContext, headers: u32, _bodySize: usize, _trailers: u32): void {
  const p = origin as Probe;
  const s = p.root.settings as Settings;
  const status = headers > 0 ? getHeader(HTTP_CALL_RESPONSE_HEADERS, ":status") : null;
  const ok = status !== null && (status as string).startsWith("2");
  healthReport(s, s.instances[p.instance].name, ok ? OUTCOME_PROBE_OK : OUTCOME_PROBE_FAILED, nowMs(), 0);
}

function onFallbackResponse(origin: BaseContext, headers: u32, bodySize: usize, _trailers: u32): void {
  (origin as AiProxy).fallbackAnswered(headers, <u32>bodySize);
}

// Shared defaults, so a context allocates nothing it may never use (only read, never written).
const NO_HEALTH = new HealthState();
const NO_BODY = new ArrayBuffer(0);
const NO_USAGE = zeroUsage();

function zeroUsage(): Usage {
  const u = new Usage();
  u.prompt = u.completion = u.total = 0;
  return u;
}

function printableAscii(p: usize, n: i32): bool {
  for (let i = 0; i < n; i++) {
    const c = load<u8>(p + <usize>i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

/** Replaces a body with a builder's bytes, straight from its buffer (no copy into a new one). */
function replaceBody(type: i32, currentLength: u32, b: ByteBuilder): void {
  replaceBufferBytes(type, currentLength, changetype<usize>(b.buf), b.len);
}

class AiProxy extends Context {
  kind: i32 = PASS;
  client: i32 = CLIENT_OPENAI;
  /** The provider speaks the client's format: answers and streams pass through unchanged. */
  native: bool = false;
  /**
   * An OpenAI client's stream from an OpenAI-format provider: each provider event goes out with
   * its data as it came (logprobs, fingerprints and fields added later pass through). The usage
   * chunk the gateway asked for is left out when the client did not ask for it, and added, with
   * the recorded usage, when the client did and the provider sent none. Translated streams are
   * written by a sink.
   */
  reframe: bool = false;
  framed: ByteBuilder | null = null;
  /** A reframed stream passed on a usage chunk of the provider's (the client asked for usage). */
  usageForwarded: bool = false;
  /** Request headers seen in onRequestHeaders that targeting must remove (HAS_*). */
  present: i32 = 0;
  /** Envoy's global rate limit filter answered 429 (x-envoy-ratelimited): not the provider. */
  refused: bool = false;
  stream: bool = false;
  includeUsage: bool = false;
  replied: bool = false;
  startNs: u64 = 0;
  firstByteNs: u64 = 0;
  inst: Instance | null = null;
  provider: Provider | null = null;
  requestModel: string = "";
  upstreamModel: string = "";
  promptEstimate: i64 = 0;
  status: u32 = 0;
  resp: i32 = RESP_NONE;
  parser: SseParser | null = null;
  decoder: StreamDecoder | null = null;
  sink: StreamSink | null = null;
  usageWritten: bool = false;
  responseChars: i64 = 0;
  // Load balancing and fallback.
  pool: Pool | null = null;
  instIndex: i32 = -1;
  health: HealthState = NO_HEALTH; // the chosen instance's, as read when it was chosen
  tried: Array<i32> = [];
  attempts: i32 = 0;
  clientReq: JsonValue | null = null; // the body as the client sent it
  openaiReq: JsonValue | null = null; // the same in OpenAI's format (translated lazily for Anthropic clients)
  bufferedLen: u32 = 0;
  inflightName: string = "";
  noInstance: ClientError | null = null;
  // Mid-stream enforcement: completion tokens the stream may produce (-1: no limit).
  budget: i64 = -1;
  /** The request asked the provider for no more than the budget (budget.ts capOutput). */
  capped: bool = false;
  cut: bool = false;
  quiet: CountingSink | null = null; // after a cut: decodes the provider's rest for its usage

  constructor(id: u32, root: AiProxyRoot) {
    super(id, root);
  }

  get settings(): Settings {
    return (this.root_context as AiProxyRoot).settings as Settings;
  }

  // ---------------------------------------------------------------------------------------------
  // Request

  onRequestHeaders(_n: u32, endOfStream: bool): FilterHeadersStatusValues {
    this.startNs = nowNanos();
    const h = getHeaderPairs(REQUEST_HEADERS);
    let method = "";
    let path = "";
    let contentLength: i64 = -1;
    let contentType: string | null = null;
    let anthropicVersion = false;
    for (let i = 0; i < h.count; i++) {
      if (h.keyIs(i, ":method")) method = h.value(i);
      else if (h.keyIs(i, ":path")) path = h.value(i);
      else if (h.keyIs(i, "content-type")) contentType = h.value(i);
      else if (h.keyIs(i, "anthropic-version")) anthropicVersion = true;
      else if (h.keyIs(i, "content-length")) {
        contentLength = I64.parseInt(h.value(i));
        this.present |= HAS_CONTENT_LENGTH;
      } else if (h.keyIs(i, "accept-encoding")) this.present |= HAS_ACCEPT_ENCODING;
      else if (h.keyIs(i, "authorization")) this.present |= HAS_AUTHORIZATION;
      else if (h.keyIs(i, "x-api-key")) this.present |= HAS_X_API_KEY;
      else if (h.keyIs(i, "api-key")) this.present |= HAS_API_KEY;
      else if (h.keyIs(i, "x-goog-api-key")) this.present |= HAS_GOOG_KEY;
    }
    const q = path.indexOf("?");
    const route = q >= 0 ? path.substring(0, q) : path;
    // The paths ai-proxy serves, each with its one method; the client's API shape is the path's
    // (Anthropic's for /v1/messages and below it, else Anthropic's when the request carries
    // anthropic-version, as Anthropic's SDKs always send it).
    let allow = "";
    if (route == "/v1/models") allow = "GET";
    else if (route == "/v1/chat/completions" || route == "/v1/messages" || route == "/v1/embeddings") allow = "POST";
    if (route.startsWith("/v1/messages") || (anthropicVersion && route != "/v1/chat/completions" && route != "/v1/embeddings")) {
      this.client = CLIENT_ANTHROPIC;
    }
    if (allow.length && method != allow) {
      // A known API with the wrong method: 405 with the method it takes (RFC 9110, 15.5.6).
      setFilterState(keys.REQUEST_TYPE, REQUEST_UNSUPPORTED);
      this.allow = allow;
      this.fail(ClientError.of(405, "Method " + method + " is not allowed on " + route + "; use " + allow + ".", "invalid_request_error", "method_not_allowed"));
      return FilterHeadersStatusValues.StopIteration;
    }
    if (route == "/v1/models") {
      setFilterState(keys.REQUEST_TYPE, "ai_models");
      this.replied = true;
      sendLocalResponse(200, "sluice_models", this.settings.modelsBody, ["content-type", "application/json"]);
      return FilterHeadersStatusValues.StopIteration;
    }
    if (route == "/v1/chat/completions" || route == "/v1/messages") this.kind = CHAT;
    else if (route == "/v1/embeddings") this.kind = EMBEDDINGS;
    else if (this.owns(route)) {
      // Under the AI API's prefix but not an API the gateway serves (/v1/responses,
      // /v1/messages/count_tokens, a typo): the client's SDK reads a JSON 404 it understands.
      setFilterState(keys.REQUEST_TYPE, REQUEST_UNSUPPORTED);
      this.fail(ClientError.of(404, "The gateway does not serve " + method + " " + route + ".", "invalid_request_error", "unknown_path"));
      return FilterHeadersStatusValues.StopIteration;
    } else {
      setFilterState(keys.REQUEST_TYPE, "traditional_http");
      return FilterHeadersStatusValues.Continue;
    }
    // The body is read as JSON; a body that says it is something else is refused rather than
    // guessed at (no media type at all is read as JSON, as the providers' APIs do).
    if (contentType !== null && !isJsonMediaType(contentType as string)) {
      this.fail(ClientError.of(400, "The request body must be JSON (content-type: application/json), not '" + safeForMessage(contentType as string) + "'.", "invalid_request_error", "invalid_content_type"));
      return FilterHeadersStatusValues.StopIteration;
    }
    if (endOfStream) {
      this.fail(ClientError.of(400, "The request needs a JSON body.", "invalid_request_error", ""));
      return FilterHeadersStatusValues.StopIteration;
    }
    if (contentLength > this.settings.maxBodyBytes) {
      this.tooLarge();
      return FilterHeadersStatusValues.StopIteration;
    }
    return FilterHeadersStatusValues.StopIteration;
  }

  onRequestBody(length: usize, endOfStream: bool): FilterDataStatusValues {
    if (this.kind == PASS || this.replied) return FilterDataStatusValues.Continue;
    if (<i64>length > this.settings.maxBodyBytes) {
      this.tooLarge();
      return FilterDataStatusValues.StopIterationNoBuffer;
    }
    if (!endOfStream) return FilterDataStatusValues.StopIterationAndBuffer;
    const body = getBuffer(REQUEST_BODY, 0, <u32>length);
    const err = this.prepare(body);
    if (err !== null) {
      this.fail(err);
      return FilterDataStatusValues.StopIterationNoBuffer;
    }
    return FilterDataStatusValues.Continue;
  }

  /** ai-proxy answers for this path (api_prefixes): it is under the AI API. */
  owns(route: string): bool {
    const prefixes = this.settings.apiPrefixes;
    for (let i = 0; i < prefixes.length; i++) if (route.startsWith(prefixes[i])) return true;
    return false;
  }

  tooLarge(): void {
    this.fail(ClientError.of(413, "The request body is larger than " + this.settings.maxBodyBytes.toString() + " bytes.", "invalid_request_error", "request_too_large"));
  }

  /** Parses, translates and targets the request. Returns the error to send, or null. */
  bodyLen: i64 = 0;

  prepare(body: ArrayBuffer): ClientError | null {
    this.bodyLen = body.byteLength;
    const parsed = parseJson(body, this.settings.maxJsonValues);
    if (parsed === null && jsonTooManyValues) {
      return ClientError.of(400, "The request body has more than " + this.settings.maxJsonValues.toString() + " JSON values.", "invalid_request_error", "request_too_complex");
    }
    if (parsed === null) return ClientError.of(400, "The request body is not valid JSON: " + jsonError + ".", "invalid_request_error", "invalid_json");
    let req = parsed as JsonValue;
    // What the gateway reads to route, translate and account (one pass over the parsed tree).
    const invalid = validateRequest(req, this.kind == CHAT, this.client == CLIENT_ANTHROPIC, this.settings.limits);
    if (invalid !== null) return invalid;
    // model and stream are named alike in OpenAI's and Anthropic's formats.
    const model = req.get("model");
    this.requestModel = model !== null ? model.s : "";
    const stream = req.get("stream");
    this.stream = this.kind == CHAT && stream !== null && stream.isBool() && stream.b;

    this.clientReq = req;
    // From the text the model reads, once: balancing and the usage record both use it.
    this.promptEstimate = estimatePromptTokens(req);
    const i = this.choose();
    if (i < 0) return this.noInstance;
    this.useInstance(i);
    const inst = this.inst as Instance;
    const provider = this.provider as Provider;
    if (this.upstreamModel.length == 0) return ClientError.of(400, "'model' is required.", "invalid_request_error", "missing_model");
    // Model names go into upstream paths, filter state and logs: checked before anything leaves.
    const badModel = provider.modelError(inst, this.upstreamModel);
    if (badModel !== null) return badModel;
    if (this.requestModel.length && !isPlainModelName(this.requestModel)) return invalidModel("must be 1 to " + MAX_MODEL_NAME.toString() + " characters without control characters");
    const budget = getFilterState(keys.STREAM_BUDGET);
    if (budget !== null && this.stream) this.budget = I64.parseInt(budget as string);

    if (this.client == CLIENT_ANTHROPIC) {
      if (provider.speaksAnthropic && this.budget < 0 && !this.redacts()) {
        // Same format both ways: the body passes through with only model, limit and options set,
        // so nothing Anthropic-specific (thinking signatures, cache_control, betas) is lost.
        this.native = true;
        return this.send(body, this.nativeBody(req, inst, body.byteLength), provider.chatUpstream(inst, this.upstreamModel, this.stream));
      }
      const c = anthropicToOpenAI(req);
      if (c.error !== null) return c.error;
      req = c.req as JsonValue;
    }
    this.openaiReq = req;
    if (this.kind == CHAT && this.budget >= 0) this.capped = capOutput(req, inst, this.budget);
    if (this.kind == CHAT) {
      const so = req.get("stream_options");
      if (so !== null && so.isObject()) {
        const iu = so.get("include_usage");
        this.includeUsage = iu !== null && iu.isBool() && iu.b;
      }
      // An OpenAI client of an OpenAI-format provider gets the answer as sent. Its stream is
      // reframed (startStream): chunk data as sent, but the gateway may have to add the usage
      // chunk the client asked for, before [DONE], when the provider sends none.
      this.native = this.client == CLIENT_OPENAI && provider.speaksOpenAI && !this.stream && this.budget < 0 && !this.redacts();
    } else {
      const input = req.get("input");
      if (input === null || (!input.isString() && !input.isArray())) {
        return ClientError.of(400, "'input' must be a string or a list.", "invalid_request_error", "invalid_value");
      }
    }

    const out = new ByteBuilder(body.byteLength + 256);
    let err: ClientError | null;
    let up: Upstream | null;
    if (this.kind == CHAT) {
      err = provider.chatRequest(req, this.upstreamModel, this.stream, inst, out);
      up = provider.chatUpstream(inst, this.upstreamModel, this.stream);
    } else {
      up = provider.embeddingsUpstream(inst, this.upstreamModel);
      if (up === null) return ClientError.of(400, "Embeddings are not supported by provider " + provider.name + ".", "invalid_request_error", "unsupported_endpoint");
      err = provider.embeddingsRequest(req, this.upstreamModel, inst, out);
    }
    if (err !== null) return err;
    return this.send(body, out, up as Upstream);
  }

  /** The client's body with the upstream model, the instance's limit and options set. */
  nativeBody(req: JsonValue, inst: Instance, sizeHint: i32): ByteBuilder {
    const out = new ByteBuilder(sizeHint + 256);
    writeMerged(out, req, this.overrides(inst, false));
    return out;
  }

  /** Members a native pass-through body gets from the instance (and stream off for a fallback). */
  overrides(inst: Instance, noStream: bool): JsonValue {
    const overrides = JsonValue.object().set("model", JsonValue.str(this.upstreamModel));
    if (inst.maxTokens >= 0) overrides.set((this.provider as Provider).maxTokensField, JsonValue.int(inst.maxTokens));
    const options = inst.options;
    if (options !== null) {
      for (let i = 0, n = options.length; i < n; i++) overrides.set(options.keyAt(i), options.at(i));
    }
    if (noStream) overrides.set("stream", JsonValue.boolean(false));
    return overrides;
  }

  /** Replaces the body, points the held headers at the instance and records who serves it. */
  send(original: ArrayBuffer, out: ByteBuilder, up: Upstream): ClientError | null {
    const inst = this.inst as Instance;
    const provider = this.provider as Provider;
    replaceBody(REQUEST_BODY, <u32>original.byteLength, out);
    this.target(inst, up.path, up.headers);
    setFilterState(keys.REQUEST_TYPE, this.requestType());
    setFilterState(keys.REQUEST_MODEL, this.requestModel);
    setFilterState(keys.MODEL, this.upstreamModel);
    setFilterState(keys.PROVIDER, provider.name);
    setFilterState(keys.INSTANCE, inst.name);
    (this.root_context as AiProxyRoot).metrics.instancePicked(inst.name);
    return null;
  }

  /**
   * The pool for this request: the one ai-router chose, else the pool named like the requested
   * model, else the instances that serve the model, else the default pool.
   */
  resolvePool(): Pool | null {
    const s = this.settings;
    const chosen = getFilterState(keys.POOL);
    if (chosen !== null) {
      for (let p = 0; p < s.pools.length; p++) if (s.pools[p].name == chosen) return s.pools[p];
      this.noInstance = ClientError.of(500, "The router chose pool '" + (chosen as string) + "', which ai-proxy does not configure.", "api_error", "pool_not_found");
      return null;
    }
    for (let p = 0; p < s.pools.length; p++) if (s.pools[p].name == this.requestModel) return s.pools[p];
    const root = this.root_context as AiProxyRoot;
    if (root.implicitPools.has(this.requestModel)) return root.implicitPools.get(this.requestModel);
    const pool = new Pool();
    pool.name = this.requestModel;
    for (let i = 0; i < s.instances.length; i++) if (s.instances[i].serves(this.requestModel)) pool.members.push(i);
    if (pool.members.length) {
      if (root.implicitPools.size < MAX_IMPLICIT_POOLS) root.implicitPools.set(this.requestModel, pool);
      return pool;
    }
    if (s.defaultPool >= 0) return s.pools[s.defaultPool];
    this.noInstance = ClientError.of(404, "No provider instance serves model '" + this.requestModel + "'.", "invalid_request_error", "model_not_found");
    return null;
  }

  /** Picks an available instance of the pool not tried yet; -1 (and noInstance) when none. */
  choose(): i32 {
    const s = this.settings;
    let pool = this.pool;
    if (pool === null) {
      pool = this.resolvePool();
      if (pool === null) return -1;
      this.pool = pool;
    }
    const input = new PickInput();
    const now = nowMs();
    let soonest: i64 = 0;
    const states = new Array<HealthState>(pool.members.length);
    for (let m = 0; m < pool.members.length; m++) {
      const i = pool.members[m];
      const h = readHealth(s.instances[i].name);
      states[m] = h;
      const ok = !this.tried.includes(i) && h.available(now) && s.instances[i].weight > 0;
      input.available.push(ok);
      if (!ok && h.until > now && (soonest == 0 || h.until < soonest)) soonest = h.until;
    }
    input.stream = this.stream;
    input.promptTokens = this.promptEstimate;
    input.completionTokens = this.expectedCompletion();
    if (pool.algorithm == CONSISTENT_HASH) input.hashKey = this.hashKey(pool);
    let m = pick(pool, s.instances, input);
    if (m < 0) {
      // Panic mode, as Envoy's load balancer does when no host is healthy: rather than refuse,
      // try an instance not tried yet even though it is cooling down; it may have recovered.
      for (let k = 0; k < pool.members.length; k++) input.available[k] = !this.tried.includes(pool.members[k]) && s.instances[pool.members[k]].weight > 0;
      m = pick(pool, s.instances, input);
    }
    if (m < 0) {
      const e = ClientError.of(503, "No healthy provider instance is available for '" + (this.requestModel.length ? this.requestModel : pool.name) + "'.", "api_error", "no_healthy_instance");
      this.noInstance = e;
      this.retryAfterS = soonest > now ? (soonest - now + 999) / 1000 : 0;
      return -1;
    }
    this.health = states[m];
    return pool.members[m];
  }

  retryAfterS: i64 = 0;

  expectedCompletion(): i64 {
    const req = this.clientReq;
    if (req === null) return 512;
    const mt = (req as JsonValue).get("max_completion_tokens");
    if (mt !== null && mt.isInteger()) return <i64>mt.n;
    const m2 = (req as JsonValue).get("max_tokens");
    if (m2 !== null && m2.isInteger()) return <i64>m2.n;
    return 512;
  }

  hashKey(pool: Pool): string {
    if (pool.hashOn.startsWith("header:")) {
      const v = getHeader(REQUEST_HEADERS, pool.hashOn.substring(7));
      return v !== null ? v as string : "";
    }
    const c = getFilterState(keys.CONSUMER);
    return c !== null ? c as string : "";
  }

  /** Makes instance i the one serving the request. */
  useInstance(i: i32): void {
    const s = this.settings;
    this.instIndex = i;
    this.inst = s.instances[i];
    this.provider = s.providers[i];
    // ai-router may rewrite the model (a rule's `model`); the client's stays in request_model.
    const routed = getFilterState(keys.ROUTE_MODEL);
    this.upstreamModel = s.instances[i].upstreamModel(routed !== null && (routed as string).length ? routed as string : this.requestModel);
    this.tried.push(i);
    if (s.trackInflight) {
      if (this.inflightName.length) addInflight(this.inflightName, -1);
      this.inflightName = s.instances[i].name;
      addInflight(this.inflightName, 1);
    }
  }

  releaseInflight(): void {
    if (this.inflightName.length) {
      addInflight(this.inflightName, -1);
      this.inflightName = "";
    }
  }

  /** Points the held request headers at the instance. */
  target(inst: Instance, path: string, headers: Array<string>): void {
    replaceHeader(REQUEST_HEADERS, ":path", path);
    replaceHeader(REQUEST_HEADERS, ":authority", inst.authority);
    replaceHeader(REQUEST_HEADERS, this.settings.clusterHeader, inst.cluster);
    replaceHeader(REQUEST_HEADERS, "content-type", "application/json");
    // The body changed length; Envoy re-frames it. Compressed answers could not be translated.
    // (Only headers seen in onRequestHeaders are removed: each removal is a host call.)
    const p = this.present;
    if (p & HAS_CONTENT_LENGTH) removeHeader(REQUEST_HEADERS, "content-length");
    if (p & HAS_ACCEPT_ENCODING) removeHeader(REQUEST_HEADERS, "accept-encoding");
    // The client's own credentials never reach a provider.
    if (p & HAS_AUTHORIZATION) removeHeader(REQUEST_HEADERS, "authorization");
    if (p & HAS_X_API_KEY) removeHeader(REQUEST_HEADERS, "x-api-key");
    if (p & HAS_API_KEY) removeHeader(REQUEST_HEADERS, "api-key");
    if (p & HAS_GOOG_KEY) removeHeader(REQUEST_HEADERS, "x-goog-api-key");
    for (let i = 0; i + 1 < headers.length; i += 2) replaceHeader(REQUEST_HEADERS, headers[i], headers[i + 1]);
    for (let i = 0; i + 1 < inst.headers.length; i += 2) replaceHeader(REQUEST_HEADERS, inst.headers[i], inst.headers[i + 1]);
    // Envoy chose the route before this filter set the cluster header.
    clearRouteCache();
  }

  /** ai_chat, ai_stream or ai_embeddings: the request_type of the usage record and metrics. */
  requestType(): string {
    if (this.kind == EMBEDDINGS) return "ai_embeddings";
    return this.stream ? "ai_stream" : "ai_chat";
  }

  /** The methods a 405 names in its allow header. */
  allow: string = "";

  /** e as the client's API writes errors (Anthropic's shape or OpenAI's). */
  writeError(e: ClientError, out: ByteBuilder): void {
    if (this.client == CLIENT_ANTHROPIC) writeAnthropicError(e, out);
    else writeOpenAIError(e, out);
  }

  /** Sends an error in the client's format, before anything reached a provider. */
  fail(e: ClientError): void {
    this.replied = true;
    const consumer = getFilterState(keys.CONSUMER);
    (this.root_context as AiProxyRoot).metrics.rejected(consumer !== null ? consumer as string : "anonymous", e.status);
    const b = new ByteBuilder(128 + e.message.length);
    this.writeError(e, b);
    const headers = ["content-type", "application/json"];
    if (this.retryAfterS > 0) {
      headers.push("retry-after");
      headers.push(this.retryAfterS.toString());
    }
    if (this.allow.length) {
      headers.push("allow");
      headers.push(this.allow);
    }
    sendLocalResponse(e.status, "sluice_ai_proxy_" + (e.code.length ? e.code : "error"), b.toArrayBuffer(), headers);
  }

  // ---------------------------------------------------------------------------------------------
  // Response

  onResponseHeaders(_n: u32, endOfStream: bool): FilterHeadersStatusValues {
    if (this.kind == PASS || this.replied || this.provider === null) return FilterHeadersStatusValues.Continue;
    const status = getHeader(RESPONSE_HEADERS, ":status");
    this.status = status !== null ? <u32>U32.parseInt(status as string) : 0;
    // Envoy's global rate limit filter (after this one in the chain) refused the request: the
    // provider never saw it, so its health is untouched and no other instance is tried.
    const refused = this.status == 429 && getHeader(RESPONSE_HEADERS, "x-envoy-ratelimited") !== null;
    this.refused = refused;
    const cause = refused ? "" : this.failureCause();
    if (!refused) this.reportOutcome(cause, RESPONSE_HEADERS);
    if (this.settings.instanceHeader) replaceHeader(RESPONSE_HEADERS, "x-sluice-instance", (this.inst as Instance).name);
    if (cause.length && !endOfStream && this.mayFallBack(cause)) {
      // Nothing has reached the client yet: hold this answer and try another instance.
      this.resp = RESP_FALLBACK;
      this.lastCause = cause;
      return FilterHeadersStatusValues.StopIteration;
    }
    if (refused) {
      this.resp = RESP_ERROR;
    } else if (this.status >= 200 && this.status < 300) {
      const ct = getHeader(RESPONSE_HEADERS, "content-type");
      const sse = isEventStream(ct);
      if (this.stream && sse) this.startStream(false);
      else if (this.stream) this.startStream(true);
      else this.resp = RESP_JSON;
    } else {
      this.resp = RESP_ERROR;
      this.mapTransportError(cause);
    }
    removeHeader(RESPONSE_HEADERS, "content-length");
    replaceHeader(RESPONSE_HEADERS, "content-type", this.resp == RESP_SSE || this.resp == RESP_REPLAY ? "text/event-stream" : "application/json");
    if (this.resp == RESP_SSE || this.resp == RESP_REPLAY) replaceHeader(RESPONSE_HEADERS, "cache-control", "no-cache");
    if (endOfStream) {
      // Headers only: nothing to translate (proxy-wasm cannot add a body to a headers-only answer).
      if (this.resp == RESP_ERROR) this.recordNothing();
      else this.record(new Usage(), true);
      return FilterHeadersStatusValues.Continue;
    }
    // A stream goes out as it comes. A whole answer is translated at its end, and may change the
    // status (an unreadable answer becomes 502): hold the headers until then. Envoy keeps feeding
    // this filter the body while its headers are held (allow_on_headers_stop_iteration).
    if (this.resp == RESP_SSE) return FilterHeadersStatusValues.Continue;
    return FilterHeadersStatusValues.StopIteration;
  }

  /**
   * Why the answer counts as a failure of the instance: connect_failure and timeout (Envoy's router
   * answered for it, see response.code_details), 429, 5xx, else the status ("" for 2xx).
   */
  failureCause(): string {
    if (this.status >= 200 && this.status < 300) return "";
    const details = getProperty(["response", "code_details"]);
    if (details !== null) {
      const d = String.UTF8.decode(details as ArrayBuffer);
      if (d.startsWith("upstream_reset_before_response_started") || d == "no_healthy_upstream" || d == "cluster_not_found") return "connect_failure";
      if (d == "upstream_response_timeout" || d.startsWith("upstream_per_try_timeout")) return "timeout";
    }
    if (this.status == 429) return "429";
    if (this.status >= 500) return "5xx";
    return this.status.toString();
  }

  mayFallBack(cause: string): bool {
    const s = this.settings;
    if (this.attempts >= s.maxRetries) return false;
    return s.fallbackOn.includes(cause) || s.fallbackOn.includes(this.status.toString());
  }

  /** Passive health: what this answer says about the instance, for every worker to see. */
  reportOutcome(cause: string, headersMap: i32): void {
    const s = this.settings;
    const inst = this.inst as Instance;
    const now = nowMs();
    const metrics = (this.root_context as AiProxyRoot).metrics;
    if (cause.length == 0) {
      const until = exhaustedUntil(headersMap, now);
      if (until > now) healthReport(s, inst.name, OUTCOME_EXHAUSTED, now, until);
      else if (this.health.failures > 0 || this.health.backoff > 0) healthReport(s, inst.name, OUTCOME_SUCCESS, now, 0);
      return;
    }
    if (cause == "429") {
      metrics.instanceFailed(inst.name, cause);
      healthReport(s, inst.name, OUTCOME_RATE_LIMITED, now, retryAfterUntil(headersMap, now));
    } else if (cause == "connect_failure" || cause == "timeout" || cause == "5xx") {
      metrics.instanceFailed(inst.name, cause);
      healthReport(s, inst.name, OUTCOME_FAILURE, now, 0);
    }
  }

  startStream(replay: bool): void {
    this.resp = replay ? RESP_REPLAY : RESP_SSE;
    // A replayed stream is a whole body, bounded as one (max_response_body_bytes); a live one is
    // bounded per unfinished event.
    this.parser = new SseParser(replay ? i32.MAX_VALUE : this.settings.maxStreamEventBytes);
    this.decoder = (this.provider as Provider).streamDecoder();
    (this.decoder as StreamDecoder).redactErrors = this.redacts();
    const provider = this.provider as Provider;
    this.reframe = !replay && !this.native && this.client == CLIENT_OPENAI && provider.speaksOpenAI && this.budget < 0;
    if (this.reframe) this.framed = new ByteBuilder(1024);
    if ((this.native || this.reframe) && !replay) this.sink = new CountingSink();
    else if (this.client == CLIENT_ANTHROPIC) this.sink = new AnthropicStreamSink(this.promptEstimate);
    else this.sink = new OpenAIStreamSink(this.includeUsage, this.promptEstimate);
  }

  /**
   * Envoy's router answers for the provider when it cannot reach it (503 "upstream connect error")
   * or gives up waiting (504). Clients get 502 and 504 with a JSON error.
   */
  mapTransportError(cause: string): void {
    const status = transportStatus(cause);
    if (status == 0) return;
    this.status = status;
    replaceHeader(RESPONSE_HEADERS, ":status", status.toString());
  }

  // ---------------------------------------------------------------------------------------------
  // Fallback: another instance, through proxy_http_call, while the failed answer is held.

  lastCause: string = "";
  lastStatus: u32 = 0;
  lastErrorBody: ArrayBuffer = NO_BODY;

  /** Sends the request to the next instance. False when there is none left (nothing pending). */
  fallBack(): bool {
    const s = this.settings;
    const root = this.root_context as AiProxyRoot;
    while (this.attempts < s.maxRetries) {
      const i = this.choose();
      if (i < 0) return false;
      this.attempts++;
      this.useInstance(i);
      const inst = this.inst as Instance;
      const provider = this.provider as Provider;
      root.metrics.instancePicked(inst.name);
      const out = new ByteBuilder(<i32>this.bodyLen + 256);
      const up = this.fallbackRequest(out);
      if (up === null) continue; // this provider cannot take the request: the next may
      const headers: Array<HeaderPair> = [
        makeHeaderPair(":method", "POST"), makeHeaderPair(":path", up.path), makeHeaderPair(":authority", inst.authority),
        makeHeaderPair("content-type", "application/json"),
      ];
      for (let h = 0; h + 1 < up.headers.length; h += 2) headers.push(makeHeaderPair(up.headers[h], up.headers[h + 1]));
      for (let h = 0; h + 1 < inst.headers.length; h += 2) headers.push(makeHeaderPair(inst.headers[h], inst.headers[h + 1]));
      const r = root.httpCall(inst.cluster, headers, out.toArrayBuffer(), [], <u32>s.fallbackTimeoutMs, this, onFallbackResponse);
      if (r == WasmResultValues.Ok) {
        this.firstByteNs = 0; // time to first token is the answer the client gets
        setFilterState(keys.INSTANCE, inst.name);
        setFilterState(keys.PROVIDER, provider.name);
        setFilterState(keys.MODEL, this.upstreamModel);
        return true;
      }
      healthReport(s, inst.name, OUTCOME_FAILURE, nowMs(), 0);
    }
    return false;
  }

  /** The request body for the current instance, never streamed (http_call answers whole). */
  fallbackRequest(out: ByteBuilder): Upstream | null {
    const inst = this.inst as Instance;
    const provider = this.provider as Provider;
    if (provider.modelError(inst, this.upstreamModel) !== null) return null; // its URL could not carry the model
    if (this.kind == EMBEDDINGS) {
      const up = provider.embeddingsUpstream(inst, this.upstreamModel);
      if (up === null) return null;
      return provider.embeddingsRequest(this.openaiReq as JsonValue, this.upstreamModel, inst, out) === null ? up : null;
    }
    if (this.client == CLIENT_ANTHROPIC && provider.speaksAnthropic) {
      writeMerged(out, this.clientReq as JsonValue, this.overrides(inst, true));
      return provider.chatUpstream(inst, this.upstreamModel, false);
    }
    if (this.openaiReq === null) {
      const c = anthropicToOpenAI(this.clientReq as JsonValue);
      if (c.error !== null) return null;
      this.openaiReq = c.req;
    }
    if (provider.chatRequest(this.openaiReq as JsonValue, this.upstreamModel, false, inst, out) !== null) return null;
    return provider.chatUpstream(inst, this.upstreamModel, false);
  }

  /** The fallback instance answered (or failed: no headers on a reset). */
  fallbackAnswered(headers: u32, bodySize: u32): void {
    const st = headers > 0 ? getHeader(HTTP_CALL_RESPONSE_HEADERS, ":status") : null;
    this.status = st !== null ? <u32>U32.parseInt(st as string) : 0;
    if (this.firstByteNs == 0) {
      this.firstByteNs = nowNanos();
      setFilterStateInt(keys.TTFT_MS, <i64>((this.firstByteNs - this.startNs) / 1000000));
    }
    if (<i64>bodySize > this.settings.maxResponseBodyBytes) {
      // Not copied into this VM's memory: answered at once, the answer estimated (it was produced).
      this.responseChars = <i64>bodySize;
      this.answerTooLarge(true);
      continueResponse();
      return;
    }
    const body = bodySize > 0 ? getBuffer(HTTP_CALL_RESPONSE_BODY, 0, bodySize) : new ArrayBuffer(0);
    let cause = "";
    if (this.status == 0) cause = "connect_failure";
    else if (this.status < 200 || this.status >= 300) {
      // Envoy's async client reports its own failures as 503 / 504 answers with a plain-text body.
      const text = body.byteLength < 200 ? String.UTF8.decode(body) : "";
      if (this.status == 503 && text.startsWith("upstream connect error")) cause = "connect_failure";
      else if (this.status == 504 && text.startsWith("upstream request timeout")) cause = "timeout";
      else if (this.status == 429) cause = "429";
      else if (this.status >= 500) cause = "5xx";
      else cause = this.status.toString();
    }
    this.reportOutcome(cause, HTTP_CALL_RESPONSE_HEADERS);
    if (cause.length == 0) {
      // The fallback asked for a whole answer; a provider that streams anyway is read as a stream
      // when the client wants one, else its answer is one the gateway cannot read.
      const ct = getHeader(HTTP_CALL_RESPONSE_HEADERS, "content-type");
      const sse = isEventStream(ct);
      if (sse ? this.deliverStream(body) : this.deliver(body)) {
        continueResponse();
        return;
      }
      cause = "5xx"; // a 2xx the gateway could not read: giveUp answers 502 for it
    }
    this.noteFailure(cause);
    this.lastCause = cause;
    this.lastStatus = this.status;
    this.lastErrorBody = body;
    if (this.mayFallBack(cause) && this.fallBack()) return;
    this.giveUp();
    continueResponse();
  }

  /**
   * The instances that failed before the one that answered, as "name:cause,..." in filter state
   * (sluice.fallback_from, in the access log). Envoy's response_code_details keeps naming the first
   * attempt's failure after a fallback: a filter cannot set it (proxy-wasm's set_property writes
   * filter state only, Envoy's source/extensions/common/wasm/context.cc Context::setProperty), and
   * the answer reaches the client through the original stream, whose details the router set.
   */
  failedFrom: string = "";

  noteFailure(cause: string): void {
    const entry = (this.inst as Instance).name + ":" + cause;
    this.failedFrom = this.failedFrom.length ? this.failedFrom + "," + entry : entry;
    setFilterState(keys.FALLBACK_FROM, this.failedFrom);
  }

  /** Status, content type and instance of a fallback's answer, replacing the held failure's. */
  answerHeaders(status: string, contentType: string): void {
    replaceHeader(RESPONSE_HEADERS, ":status", status);
    replaceHeader(RESPONSE_HEADERS, "content-type", contentType);
    if (contentType == "text/event-stream") replaceHeader(RESPONSE_HEADERS, "cache-control", "no-cache");
    removeHeader(RESPONSE_HEADERS, "content-length");
    // A failure keeps its Retry-After; an answer has none.
    if (status.startsWith("2")) removeHeader(RESPONSE_HEADERS, "retry-after");
    // The instance whose answer the client gets (the held one named the instance that failed).
    if (this.settings.instanceHeader) replaceHeader(RESPONSE_HEADERS, "x-sluice-instance", (this.inst as Instance).name);
    setFilterStateInt(keys.ATTEMPTS, <i64>(this.attempts + 1));
  }

  /**
   * A fallback instance streamed although the request said not to (a server that ignores
   * `stream: false`): the whole stream is here, so it is decoded as a stream for a client that
   * asked for one. A stream that says nothing (no terminal event, no text) counts as a failure.
   */
  deliverStream(body: ArrayBuffer): bool {
    if (!this.stream || this.kind != CHAT) return false;
    const native = this.native;
    this.native = false;
    this.startStream(true); // a translating sink: nothing passes through unread
    this.resp = RESP_SSE;
    const parser = this.parser as SseParser;
    const decoder = this.decoder as StreamDecoder;
    const sink = this.sink as StreamSink;
    this.decodeAll(parser.feed(body), sink);
    if (!decoder.done && sink.generatedChars == 0 && !parser.pending) {
      this.native = native;
      this.resp = RESP_FALLBACK;
      this.sink = null;
      this.decoder = null;
      this.parser = null;
      return false;
    }
    // The whole answer is here: a cut ends the client's stream with the provider's own usage.
    if (this.cut) this.cutStream(sink, true);
    else this.endStream();
    this.answerHeaders("200", "text/event-stream");
    replaceBody(RESPONSE_BODY, this.bufferedLen, sink.out);
    return true;
  }

  /** Puts a fallback instance's answer in place of the held failure, in the client's format. */
  deliver(body: ArrayBuffer): bool {
    const provider = this.provider as Provider;
    const parsed = parseJson(body);
    if (parsed === null) return false;
    const out = new ByteBuilder(body.byteLength + 256);
    let usage: Usage;
    if (this.kind == EMBEDDINGS) {
      usage = new Usage();
      if (!provider.embeddingsResponse(parsed as JsonValue, this.upstreamModel, out, usage)) return false;
    } else {
      const result = new ChatResult();
      if (!provider.chatResponse(parsed as JsonValue, result)) return false;
      usage = result.usage;
      if (result.model.length) setFilterState(keys.MODEL, result.model);
      if (this.stream) {
        this.native = false;
        this.startStream(true);
        replayAsStream(result, this.sink as StreamSink);
        out.buffer((this.sink as StreamSink).out.toArrayBuffer());
      } else if ((this.client == CLIENT_OPENAI && provider.speaksOpenAI) || (this.client == CLIENT_ANTHROPIC && provider.speaksAnthropic)) {
        out.buffer(body);
      } else if (this.client == CLIENT_ANTHROPIC) writeAnthropicMessage(result, out);
      else writeOpenAIChat(result, out);
    }
    this.answerHeaders("200", this.stream ? "text/event-stream" : "application/json");
    replaceBody(RESPONSE_BODY, this.bufferedLen, out);
    this.record(usage, true);
    return true;
  }

  /**
   * Every instance tried failed: the last failure, translated for the client, never with a 2xx
   * status (a 2xx the gateway could not read is a 502).
   */
  giveUp(): void {
    const provider = this.provider as Provider;
    const body = this.lastErrorBody;
    const unreadable = this.lastStatus >= 200 && this.lastStatus < 300;
    const transport = transportStatus(this.lastCause);
    this.status = transport > 0 ? transport : this.lastStatus;
    let e: ClientError;
    if (unreadable) {
      e = ClientError.of(502, "The provider sent an answer the gateway could not read.", "api_error", "bad_upstream_response");
    } else {
      const parsed = body.byteLength ? parseJson(body) : null;
      e = transport > 0 || parsed === null ? this.transportError(body) : this.shownError(provider.error(this.lastStatus, parsed));
      if (e.status < 400) e.status = 502;
    }
    this.status = e.status;
    const out = new ByteBuilder(128 + e.message.length);
    this.writeError(e, out);
    this.answerHeaders(e.status.toString(), "application/json");
    replaceBody(RESPONSE_BODY, this.bufferedLen, out);
    // An answer the gateway could not read was still produced: estimated, never free.
    if (unreadable) this.chargeUnread(body.byteLength);
    else this.recordNothing();
  }

  /**
   * A whole answer past max_response_body_bytes: a 502 in the client's shape at once, nothing more
   * buffered. From a fallback's callback the held failure is replaced; from the body callback (the
   * answer's headers held, the body in Envoy's buffer, never copied here) it is a local reply, which
   * Envoy sends straight to the client, past the encoder filters, while the response is not yet
   * encoded (source/common/http/filter_manager.cc, DownstreamFilterManager::sendLocalReply ->
   * sendDirectLocalReply), and the upstream request is reset. A chat answer was produced: its
   * usage is estimated from its size; an error generated nothing.
   */
  answerTooLarge(fromFallback: bool): void {
    const e = ClientError.of(502, "The provider's answer is larger than " + this.settings.maxResponseBodyBytes.toString() + " bytes.", "api_error", "upstream_response_too_large");
    const out = new ByteBuilder(160);
    this.writeError(e, out);
    const answer = this.resp == RESP_JSON || this.resp == RESP_REPLAY || fromFallback;
    this.status = 502;
    this.tooBig = true;
    if (fromFallback) {
      this.answerHeaders("502", "application/json");
      replaceBody(RESPONSE_BODY, this.bufferedLen, out);
    } else {
      const headers = ["content-type", "application/json"];
      if (this.settings.instanceHeader) {
        headers.push("x-sluice-instance");
        headers.push((this.inst as Instance).name);
      }
      sendLocalResponse(502, "sluice_ai_proxy_upstream_response_too_large", out.toArrayBuffer(), headers);
    }
    if (answer) this.chargeUnread(this.responseChars);
    else this.recordNothing();
  }

  /**
   * The usage record for an answer the provider produced but the gateway did not read (too large,
   * or not in a shape it understands): the prompt estimate, and what `bytes` of answer would hold,
   * never more than the request let the model write (embeddings write nothing).
   */
  chargeUnread(bytes: i64): void {
    // The answer is taken to hold `bytes` characters of text, or as many as the limit allows
    // (estimateTokens counts four characters a token).
    this.responseChars = this.kind == EMBEDDINGS ? 0 : this.withinOutputLimit(bytes, 0);
    this.record(new Usage(), false);
  }

  /**
   * Characters of answer to charge for `chars` the gateway did not read, at most what the request's
   * output limit lets the model write (estimateTokens counts four characters a token), and never
   * less than `floor`, the characters the client already got.
   */
  withinOutputLimit(chars: i64, floor: i64): i64 {
    const limit = this.maxTokensAsked();
    if (limit > 0 && chars > limit * 4) chars = limit * 4;
    return chars > floor ? chars : floor;
  }

  /** The output limit the request carried (the instance's forced one first); 0 when none. */
  maxTokensAsked(): i64 {
    const inst = this.inst as Instance;
    if (inst.maxTokens >= 0) return inst.maxTokens;
    const req = this.clientReq;
    if (req === null) return 0;
    const names = ["max_completion_tokens", "max_tokens", "max_output_tokens"];
    for (let i = 0; i < names.length; i++) {
      const v = (req as JsonValue).get(names[i]);
      if (v !== null && v.isInteger() && v.n > 0) return <i64>v.n;
    }
    return 0;
  }

  tooBig: bool = false;
  // The provider sent a stream event past max_stream_event_bytes: the client's stream has ended.
  eventTooLarge: bool = false;

  onResponseBody(length: usize, endOfStream: bool): FilterDataStatusValues {
    if (this.kind == PASS || this.replied || this.resp == RESP_NONE) return FilterDataStatusValues.Continue;
    if (this.tooBig) return FilterDataStatusValues.StopIterationNoBuffer;
    if (this.resp != RESP_SSE && <i64>length > this.settings.maxResponseBodyBytes) {
      // Envoy's buffer holds the body so far (length is all of it): refuse before copying it here.
      this.responseChars = <i64>length;
      this.answerTooLarge(false);
      return FilterDataStatusValues.StopIterationNoBuffer;
    }
    if (this.resp == RESP_FALLBACK) {
      if (this.firstByteNs == 0 && length > 0) this.firstByteNs = nowNanos();
      this.bufferedLen = <u32>length;
      if (!endOfStream) return FilterDataStatusValues.StopIterationAndBuffer;
      this.lastStatus = this.status;
      this.lastErrorBody = getBuffer(RESPONSE_BODY, 0, <u32>length);
      this.noteFailure(this.lastCause);
      if (this.fallBack()) return FilterDataStatusValues.StopIterationAndBuffer; // until the callback
      this.giveUp();
      return FilterDataStatusValues.Continue;
    }
    if (this.firstByteNs == 0 && length > 0) {
      this.firstByteNs = nowNanos();
      setFilterStateInt(keys.TTFT_MS, <i64>((this.firstByteNs - this.startNs) / 1000000));
    }
    if (this.resp == RESP_SSE) {
      if (this.eventTooLarge) {
        // The client's stream ended in an earlier callback: now the provider is stopped.
        replaceBufferBytes(RESPONSE_BODY, <u32>length, 0, 0);
        if (!endOfStream) closeResponse(); // response_code_details: wasm_close_stream
        return FilterDataStatusValues.Continue;
      }
      const chunk = getBuffer(RESPONSE_BODY, 0, <u32>length);
      const sink = this.sink as StreamSink;
      const decoder = this.decoder as StreamDecoder;
      const wasCut = this.cut;
      this.decodeAll((this.parser as SseParser).feed(chunk), sink);
      if ((this.parser as SseParser).overflowed && !this.cut) {
        this.streamEventTooLarge(<u32>length);
        return FilterDataStatusValues.Continue;
      }
      if (this.cut && !wasCut) this.cutStream(sink, endOfStream);
      else if (wasCut && !endOfStream) {
        // The client's stream ended at the cut in an earlier callback, so its ending has reached
        // the client: now the provider can be stopped (see closeAfterCut).
        this.closeAfterCut(<u32>length);
        return FilterDataStatusValues.Continue;
      }
      const unterminated = endOfStream && this.native && (this.parser as SseParser).pending;
      if (endOfStream) this.endStream();
      if (this.reframe) {
        const out = this.framed as ByteBuilder;
        if (endOfStream && !decoder.done) out.buffer(this.cutShortEnding());
        else if (endOfStream && decoder.needsDone) out.raw("data: [DONE]\n\n");
        replaceBody(RESPONSE_BODY, <u32>length, out);
        out.reset();
      } else if (!this.native) {
        replaceBody(RESPONSE_BODY, <u32>length, sink.out);
        sink.out.reset();
      } else if (endOfStream && !decoder.done) {
        // Native streams leave Envoy's buffer as it is (no copy); one cut short gets the client
        // format's error ending, appended.
        appendBuffer(RESPONSE_BODY, <u32>length, this.cutShortEnding());
      } else if (endOfStream && decoder.needsDone && this.client == CLIENT_OPENAI) {
        appendBuffer(RESPONSE_BODY, <u32>length, String.UTF8.encode("\n\ndata: [DONE]\n\n"));
      } else if (unterminated) {
        // A client drops an event the stream never terminated: end the provider's last one.
        appendBuffer(RESPONSE_BODY, <u32>length, String.UTF8.encode("\n\n"));
      }
      return FilterDataStatusValues.Continue;
    }
    if (!endOfStream) return FilterDataStatusValues.StopIterationAndBuffer;
    this.finishResponse(getBuffer(RESPONSE_BODY, 0, <u32>length), <u32>length);
    return FilterDataStatusValues.Continue;
  }

  /**
   * Provider events into the client's sink until the budget runs out (this.cut), then into the
   * quiet sink: after a cut the client's stream is complete and the provider's rest is read for
   * its usage only.
   */
  decodeAll(events: Array<SseEvent>, sink: StreamSink): void {
    for (let i = 0; i < events.length; i++) {
      if (this.cut) {
        this.decode(events[i], this.quiet as CountingSink);
        continue;
      }
      this.decode(events[i], sink);
      if (this.budget >= 0 && estimateTokens(sink.generatedChars) > (this.capped ? CAPPED_CUT_FACTOR * this.budget : this.budget)) {
        this.cut = true;
        this.quiet = new CountingSink();
      }
    }
  }

  /**
   * The consumer's token budget ran out mid-stream (ai-ratelimit's sluice.stream_budget): end the
   * client's stream the way a provider ends one at max_tokens, with the usage (an OpenAI client's
   * usage chunk when it asked for one; an Anthropic client's final message_delta). The events of
   * this chunk after the cut were decoded (not forwarded): what the provider produced counts.
   * When the provider's stream ends here too, that usage is the record; else it is the estimate
   * so far, and the provider is stopped at the next chunk (closeAfterCut).
   */
  cutStream(sink: StreamSink, endOfStream: bool): void {
    const decoder = this.decoder as StreamDecoder;
    const quiet = this.quiet as CountingSink;
    let u: Usage;
    if (endOfStream || decoder.done) {
      if (endOfStream) {
        const rest = (this.parser as SseParser).finish();
        for (let i = 0; i < rest.length; i++) this.decode(rest[i], quiet);
      }
      this.responseChars = sink.generatedChars + quiet.generatedChars;
      u = this.record(decoder.usage, decoder.done);
    } else {
      u = estimatedUsage(decoder.usage, this.promptEstimate, sink.generatedChars + quiet.generatedChars);
    }
    sink.usage(u);
    sink.finish(0, "length", null);
    sink.end();
    setFilterState(keys.STREAM_CUT, "budget");
  }

  /**
   * The provider is still generating after a cut. proxy-wasm cannot end the client's response
   * early, nor reset only the upstream: proxy_close_stream resets the whole stream, and Envoy does
   * it before the data of the current callback goes out (sdk.ts closeResponse). So the cut's
   * ending goes out in its own callback, and the stream is reset in the next one, which the
   * provider's next chunk brings: the client has its complete stream (finish_reason length, the
   * usage, [DONE] / message_stop) before the reset, and the provider's connection closes, so it
   * stops generating. The charge is what the provider produced until then: what was delivered and
   * what was in flight (this chunk included), with the provider's own counts where it gave them.
   */
  closeAfterCut(length: u32): void {
    const decoder = this.decoder as StreamDecoder;
    // Nothing of the provider's rest goes to the client (it is decoded for the count only).
    replaceBufferBytes(RESPONSE_BODY, length, 0, 0);
    if (this.usageWritten) return; // already closing, or the provider finished at the cut
    this.responseChars = (this.sink as StreamSink).generatedChars + (this.quiet as CountingSink).generatedChars;
    this.record(decoder.usage, decoder.done);
    if (decoder.done) return; // the provider ended its stream; only the end flag is to come
    closeResponse(); // response_code_details: wasm_close_stream
  }

  /**
   * The provider sent an event past max_stream_event_bytes (one that never ends, or a huge one):
   * the parser let go of it. The client's stream ends here with the client format's error ending
   * (502 upstream_event_too_large; a translated stream first gets its usage), the usage record is
   * written (what was delivered, and the dropped event's bytes as text, within the request's
   * output limit), and the provider is stopped at its next chunk: a reset now would drop this
   * callback's data, the ending included (see closeAfterCut).
   */
  streamEventTooLarge(length: u32): void {
    const sink = this.sink as StreamSink;
    const decoder = this.decoder as StreamDecoder;
    const parser = this.parser as SseParser;
    this.eventTooLarge = true;
    setFilterState(keys.STREAM_CUT, "event_too_large");
    this.responseChars = this.withinOutputLimit(sink.generatedChars + parser.overflowBytes, sink.generatedChars);
    const u = this.record(decoder.usage, false);
    const e = ClientError.of(502, "The provider sent a stream event larger than " + this.settings.maxStreamEventBytes.toString() + " bytes.", "api_error", "upstream_event_too_large");
    if (this.reframe) {
      const out = this.framed as ByteBuilder;
      out.buffer(this.streamEnding(e));
      replaceBody(RESPONSE_BODY, length, out);
      out.reset();
    } else if (!this.native) {
      sink.usage(u);
      sink.error(e);
      sink.end();
      replaceBody(RESPONSE_BODY, length, sink.out);
      sink.out.reset();
    } else {
      // This chunk passes on as it came (its part of the event), then the error ending.
      appendBuffer(RESPONSE_BODY, length, this.streamEnding(e));
    }
  }

  cutShortEnding(): ArrayBuffer {
    return this.streamEnding(ClientError.of(502, "The provider ended the stream early.", "api_error", "upstream_incomplete"));
  }

  /** The client format's ending for a stream that ends in error e. */
  streamEnding(e: ClientError): ArrayBuffer {
    const b = new ByteBuilder(160);
    // The provider may have stopped inside a line or an event: blank lines end it first (an
    // empty event dispatches nothing), so the error is read as its own event.
    b.raw("\n\n");
    if (this.client == CLIENT_ANTHROPIC) {
      b.raw("event: error\ndata: ");
      writeAnthropicError(e, b);
      b.raw("\n\n");
    } else {
      b.raw("data: ");
      writeOpenAIError(e, b);
      b.raw("\n\ndata: [DONE]\n\n");
    }
    return b.toArrayBuffer();
  }

  /**
   * One provider event into the sink; a reframed stream also forwards it. Comments are not events:
   * they pass on in place, in either client format (providers send them as keep-alives while a
   * model thinks, and a client's read timeout runs meanwhile).
   */
  decode(e: SseEvent, sink: StreamSink): void {
    const live = sink === this.sink && !this.cut;
    if (e.comment) {
      if (live) {
        const out = this.reframe ? this.framed as ByteBuilder : sink.out;
        // The text goes along when it is printable ASCII (it is only a marker); else a bare ":".
        out.byte(0x3a);
        if (printableAscii(e.ptr, e.len)) out.bytes(e.ptr, e.len);
        out.raw("\n\n");
      }
      return;
    }
    (this.decoder as StreamDecoder).event(e, sink);
    if (live && this.reframe) this.forward(e);
  }

  /**
   * A reframed stream's event as the client gets it: the chunk's data as it came; rewritten when
   * it carried usage the client did not ask for, an "error" member that is no error (a client
   * would take it for one), a string with invalid UTF-8, or came in several data lines (written
   * compact, it fits one); every other member kept; the
   * usage-only chunk left out; an error as OpenAI's error shape; what the decoder could not read
   * (not JSON) dropped, as a translated stream drops it.
   */
  forward(e: SseEvent): void {
    const d = this.decoder as OpenAIStreamDecoder;
    const out = this.framed as ByteBuilder;
    if (d.lastKind == EVENT_DONE) {
      if (this.includeUsage && !this.usageForwarded) {
        // The client asked for usage and the provider sent none: the recorded usage, estimated.
        const sink = this.sink as CountingSink;
        this.responseChars = sink.generatedChars;
        writeOpenAIUsageChunk(out, sink.id, sink.model, sink.created, this.record(d.usage, true));
      }
      out.raw("data: [DONE]\n\n");
    } else if (d.lastKind == EVENT_ERROR) {
      out.raw("data: ");
      writeOpenAIError(d.lastError as ClientError, out);
      out.raw("\n\n");
    } else if (d.lastKind == EVENT_CHUNK && this.includeUsage && d.carriesUsage && !d.strayError && !jsonSawBadUtf8 && !e.multiline) {
      // The usage the client asked for, as the provider sent it.
      this.usageForwarded = true;
      out.raw("data: ").bytes(e.ptr, e.len).raw("\n\n");
    } else if (d.lastKind == EVENT_CHUNK && (!d.gatewayOnly || this.includeUsage)) {
      if (d.carriesUsage && this.includeUsage) this.usageForwarded = true;
      const dropUsage = d.carriesUsage && !this.includeUsage;
      out.raw("data: ");
      if (dropUsage || d.strayError || jsonSawBadUtf8 || e.multiline) {
        const v = d.lastChunk as JsonValue;
        out.byte(0x7b);
        let n = 0;
        for (let i = 0, len = v.length; i < len; i++) {
          const k = v.keyAt(i);
          if ((k == "usage" && dropUsage) || k == "error") continue;
          if (n++) out.byte(0x2c);
          out.str(k).byte(0x3a).value(v.at(i));
        }
        out.byte(0x7d);
      } else {
        out.bytes(e.ptr, e.len);
      }
      out.raw("\n\n");
    }
  }

  endStream(): void {
    const sink = this.sink as StreamSink;
    const decoder = this.decoder as StreamDecoder;
    const rest = (this.parser as SseParser).finish();
    if (this.cut) {
      // Only the usage matters now; the client's stream is already complete.
      const quiet = this.quiet as CountingSink;
      for (let i = 0; i < rest.length; i++) this.decode(rest[i], quiet);
      this.responseChars = sink.generatedChars + quiet.generatedChars;
      this.record(decoder.usage, decoder.done);
      return;
    }
    for (let i = 0; i < rest.length; i++) this.decode(rest[i], sink);
    this.responseChars = sink.generatedChars;
    // The client sees the usage that is recorded (a translated stream's usage chunk or final
    // message_delta), estimated where the provider reported none.
    sink.usage(this.record(decoder.usage, decoder.done));
    if (!decoder.done && !this.native) {
      // The provider's stream stopped without its terminal event: say so rather than pretend.
      sink.error(ClientError.of(502, "The provider ended the stream early.", "api_error", "upstream_incomplete"));
    }
    sink.end();
  }

  /** A complete buffered body: translate the answer or the error and write the usage record. */
  finishResponse(body: ArrayBuffer, length: u32): void {
    const provider = this.provider as Provider;
    const parsed = body.byteLength ? parseJson(body) : null;
    // Each output is allocated where it is written, sized for it: a VM's memory keeps its
    // high-water mark, and an answer that passes through untouched needs none.
    if (this.resp == RESP_ERROR) {
      // A provider error already in the client's format passes through as the provider wrote it.
      if (this.native && !this.redacts() && this.client == CLIENT_ANTHROPIC && parsed !== null && isAnthropicError(parsed as JsonValue)) {
        this.recordNothing();
        return;
      }
      let e = this.shownError(provider.error(this.status, parsed));
      if (parsed === null || this.refused) e = this.transportError(body);
      const out = new ByteBuilder(128 + e.message.length);
      this.writeError(e, out);
      this.recordNothing();
      replaceBody(RESPONSE_BODY, length, out);
      return;
    }
    if (this.kind == EMBEDDINGS) {
      const usage = new Usage();
      const out = new ByteBuilder(body.byteLength + 256);
      if (parsed === null || !provider.embeddingsResponse(parsed as JsonValue, this.upstreamModel, out, usage)) {
        this.badAnswer(length);
        return;
      }
      this.record(usage, true);
      replaceBody(RESPONSE_BODY, length, out);
      return;
    }
    const result = new ChatResult();
    if (parsed === null || !provider.chatResponse(parsed as JsonValue, result)) {
      this.badAnswer(length);
      return;
    }
    if (result.model.length) setFilterState(keys.MODEL, result.model);
    for (let i = 0; i < result.choices.length; i++) {
      const c = result.choices[i];
      if (c.content !== null) this.responseChars += (c.content as string).length;
      for (let t = 0; t < c.toolCalls.length; t++) this.responseChars += c.toolCalls[t].arguments.length;
    }
    if (this.resp == RESP_REPLAY) {
      const sink = this.sink as StreamSink;
      // The replayed stream shows the usage that is recorded (estimated if the answer had none).
      result.usage = this.record(result.usage, true);
      replayAsStream(result, sink);
      replaceBody(RESPONSE_BODY, length, sink.out);
      return;
    }
    // A native Anthropic answer must at least say what it is before it passes through untouched.
    if (this.native && this.client == CLIENT_ANTHROPIC && (parsed as JsonValue).getString("type") != "message") {
      this.badAnswer(length);
      return;
    }
    this.record(result.usage, true);
    // An answer already in the client's format passes through untouched.
    if (this.native || (this.client == CLIENT_OPENAI && provider.speaksOpenAI)) return;
    const out = new ByteBuilder(body.byteLength + 256);
    if (this.client == CLIENT_ANTHROPIC) writeAnthropicMessage(result, out);
    else writeOpenAIChat(result, out);
    replaceBody(RESPONSE_BODY, length, out);
  }

  /** The instance's provider error messages stay from clients (redact_upstream_errors). */
  redacts(): bool {
    return this.instIndex >= 0 && this.settings.redactErrors[this.instIndex];
  }

  /** A provider's error as the client may see it: the provider's own, or its status class only. */
  shownError(e: ClientError): ClientError {
    return this.redacts() ? redactedError(e) : e;
  }

  /** Envoy's own plain-text answers (connect failure, timeout) as JSON errors. */
  transportError(body: ArrayBuffer): ClientError {
    if (this.refused) return ClientError.of(429, "Rate limit exceeded.", "rate_limit_error", "rate_limit_exceeded");
    // Only the start is compared: an error body can be large, and decoding it all would cost twice its size.
    const text = String.UTF8.decode(body.byteLength > 64 ? body.slice(0, 64) : body);
    if (this.status == 504) return ClientError.of(504, "The provider did not answer in time.", "api_error", "upstream_timeout");
    if (this.status == 502 || text.startsWith("upstream connect error") || text.startsWith("no healthy upstream")) {
      return ClientError.of(502, "The provider could not be reached.", "api_error", "upstream_unreachable");
    }
    return ClientError.of(this.status, "The " + (this.provider as Provider).name + " provider returned HTTP " + this.status.toString() + ".", "api_error", "");
  }

  badAnswer(length: u32): void {
    const e = ClientError.of(502, "The provider sent an answer the gateway could not read.", "api_error", "bad_upstream_response");
    if (this.resp == RESP_REPLAY) {
      // The client asked for a stream: it gets one, ending in an error event.
      const sink = this.sink as StreamSink;
      sink.error(e);
      sink.end();
      this.recordNothing();
      replaceBody(RESPONSE_BODY, length, sink.out);
      return;
    }
    replaceHeader(RESPONSE_HEADERS, ":status", "502");
    const out = new ByteBuilder(128);
    this.writeError(e, out);
    this.recordNothing();
    replaceBody(RESPONSE_BODY, length, out);
  }

  // ---------------------------------------------------------------------------------------------
  // The usage record

  /**
   * Writes the record once: the provider's numbers when the answer completed with them, else an
   * estimate of whatever is missing.
   */
  record(u: Usage, complete: bool): Usage {
    if (this.usageWritten) return this.recorded;
    this.usageWritten = true;
    this.releaseInflight();
    if (complete && this.settings.trackLatency) {
      const ttft: f64 = this.firstByteNs > 0 ? <f64>(this.firstByteNs - this.startNs) / 1e6 : -1;
      recordLatency((this.inst as Instance).name, ttft, <f64>(nowNanos() - this.startNs) / 1e6);
    }
    // Embeddings have no completion; a chat answer without a completion count is estimated.
    if (complete && u.prompt >= 0 && (u.completion >= 0 || this.kind == EMBEDDINGS)) {
      u.settle();
      this.publish(u.prompt, u.completion, u.total, u.cached, u.reasoning, "provider");
      this.recorded = u;
      return u;
    }
    // Estimate only what the provider did not report (Anthropic and Gemini report the prompt at
    // the start of a stream; a cut stream never brings the completion count). A completion count
    // of a finished answer is taken as it is; one from a stream that stopped early is at least
    // what the text seen makes.
    const e = estimatedUsage(u, this.promptEstimate, complete && u.completion >= 0 ? 0 : this.responseChars);
    this.publish(e.prompt, e.completion, e.total, e.cached, e.reasoning, "estimate");
    this.recorded = e;
    return e;
  }

  /** The usage the record holds (what record() returned). */
  recorded: Usage = NO_USAGE;

  /** The usage record to filter state, and the request's metrics. */
  publish(prompt: i64, completion: i64, total: i64, cached: i64, reasoning: i64, source: string): void {
    writeUsageRecord(prompt, completion, total, cached, reasoning, source);
    const now = nowNanos();
    const ttft: i64 = this.firstByteNs > 0 ? <i64>((this.firstByteNs - this.startNs) / 1000000) : -1;
    const consumer = getFilterState(keys.CONSUMER);
    // The model label is a configured name or "other": clients choose model names (wildcard
    // instances pass them on), and series must not grow with them.
    (this.root_context as AiProxyRoot).metrics.request(
      (this.provider as Provider).name, this.settings.modelLabel(this.upstreamModel), consumer !== null ? consumer as string : "anonymous",
      this.requestType(), this.status, prompt, completion, ttft, <i64>((now - this.startNs) / 1000000),
    );
  }

  /** The provider refused or failed: it generated nothing, so nothing is charged. */
  recordNothing(): void {
    if (this.usageWritten) return;
    this.usageWritten = true;
    this.releaseInflight();
    this.publish(0, 0, 0, 0, 0, "provider");
    this.recorded = NO_USAGE;
  }

  /**
   * Envoy runs every filter's on_log before any filter's on_done, and a client that hangs up gets
   * no other callback first: the estimate is written here, where the access log and
   * ai-ratelimit (which charges in its on_done) can see it.
   */
  onLog(): void {
    this.finishRecord();
  }

  onDone(): bool {
    this.finishRecord();
    return true;
  }

  finishRecord(): void {
    this.releaseInflight();
    // The client hung up (or the upstream reset) before the answer finished: charge what was seen.
    if (this.kind != PASS && !this.replied && this.provider !== null && !this.usageWritten) {
      if (this.sink !== null) {
        this.responseChars = (this.sink as StreamSink).generatedChars;
        this.record((this.decoder as StreamDecoder).usage, false);
        return;
      }
      this.record(new Usage(), false);
    }
  }
}

registerRootContext((id: u32) => new AiProxyRoot(id), "ai-proxy");

/** A rate-limit reset in the headers (429 answers): Retry-After, else the provider's reset headers. */
function retryAfterUntil(map: i32, now: i64): i64 {
  const ra = getHeader(map, "retry-after");
  if (ra !== null) {
    const t = parseReset(ra as string, now);
    if (t > now) return t;
  }
  return exhaustedUntil(map, now, true);
}

/**
 * When a provider says a quota is spent (x-ratelimit-remaining-* or anthropic-ratelimit-*-remaining
 * at 0), the latest matching reset time; 0 when nothing is exhausted. `any` takes any reset header
 * (for a 429, where the remaining counts may be absent).
 */
function exhaustedUntil(map: i32, now: i64, any: bool = false): i64 {
  const h = getHeaderPairs(map);
  let until: i64 = 0;
  for (let i = 0; i < h.count; i++) {
    if (!h.keyHas(i, "-remaining", true) && !h.keyHas(i, "x-ratelimit-remaining-", false)) continue;
    const k = h.key(i);
    if (!any && h.value(i).trim() != "0") continue;
    // x-ratelimit-remaining-tokens -> x-ratelimit-reset-tokens; anthropic-ratelimit-tokens-remaining -> ...-reset
    const resetName = k.startsWith("x-ratelimit-remaining-") ? "x-ratelimit-reset-" + k.substring(22) : k.substring(0, k.length - 9) + "reset";
    for (let j = 0; j < h.count; j++) {
      if (h.keyIs(j, resetName)) {
        const t = parseReset(h.value(j), now);
        if (t > until) until = t;
      }
    }
  }
  return until;
}

/** {"type":"error","error":{"type":...,"message":...}} — Anthropic's error shape. */
function isAnthropicError(v: JsonValue): bool {
  if (v.getString("type") != "error") return false;
  const e = v.get("error");
  return e !== null && e.isObject() && e.getString("type") !== null && e.getString("message") !== null;
}

/** A content-type that says the body is an SSE stream. */
function isEventStream(contentType: string | null): bool {
  return contentType !== null && (contentType as string).toLowerCase().includes("text/event-stream");
}

/** Envoy's router answered for an instance it could not reach (502) or that was too slow (504). */
function transportStatus(cause: string): u32 {
  if (cause == "connect_failure") return 502;
  if (cause == "timeout") return 504;
  return 0;
}
