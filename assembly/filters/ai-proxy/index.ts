// ai-proxy: one OpenAI-compatible API (and Anthropic's Messages API) over every provider.
// Filter 4 of the chain (docs/architecture.md): picks the instance, translates the request and
// targets its cluster, translates the answer or SSE stream back, and writes the usage record.
// (Being split into one file per job, issue 16 item 3: the parts still here follow.)
//
// Envoy >= 1.35 with `allow_on_headers_stop_iteration: true` on this plugin: the request headers
// are held (StopIteration) while the body arrives, because the body decides the upstream path,
// authority and cluster. Without the knob Envoy would withhold the body from this filter.
export * from "@gcoredev/proxy-wasm-sdk-as/assembly/proxy";
import * as keys from "../../lib/keys";
import { FilterHeadersStatusValues, REQUEST_HEADERS, REQUEST_BODY, getHeaderPairs, removeHeader, replaceHeader, sendLocalResponse, setFilterState, getFilterState, clearRouteCache, nowNanos, FilterDataStatusValues, RESPONSE_BODY, HTTP_CALL_RESPONSE_HEADERS, HTTP_CALL_RESPONSE_BODY, BaseContext, getHeader, getBuffer, setFilterStateInt, continueResponse, makeHeaderPair, HeaderPair, WasmResultValues, RESPONSE_HEADERS, Context, getSharedData, setSharedData, pluginConfiguration, setTickPeriod, registerRootContext } from "../../lib/sdk";
import { JsonValue, ByteBuilder, parseJson, jsonError, jsonTooManyValues, writeMerged, setJsonDefaultMaxValues } from "../../lib/json";
import { estimatePromptTokens } from "../../lib/tokens";
import { ClientError, Instance, Provider, Upstream, isPlainModelName, invalidModel, MAX_MODEL_NAME, ChatResult, StreamDecoder, StreamSink, Usage } from "../../providers/types";
import { validateRequest, isJsonMediaType } from "./validate";
import { capOutput } from "./budget";
import { CLIENT_OPENAI, CLIENT_ANTHROPIC, clientOf, toOpenAIRequest, speaksClient, writeClientAnswer } from "./client";
import { choose, useInstance } from "./selection";
import { Exchange, CHAT, EMBEDDINGS, HAS_CONTENT_LENGTH, HAS_ACCEPT_ENCODING, HAS_AUTHORIZATION, HAS_X_API_KEY, HAS_API_KEY, HAS_GOOG_KEY, proxyMetrics, replaceBody, RESP_FALLBACK, RESP_SSE, nowMs, ProxyRoot, PASS, RESP_NONE, RESP_JSON, RESP_ERROR, RESP_REPLAY } from "./state";
import { SseParser } from "../../lib/sse";
import { OUTCOME_FAILURE, readHealth, OUTCOME_PROBE_OK, OUTCOME_PROBE_FAILED } from "./health";
import { replayAsStream } from "./replay";
import { healthReport, reportOutcome, isEventStream, transportStatus, failureCause, mapTransportError } from "./outcome";
import { answerHeaders, answerTooLarge, shownError, transportError, finishResponse } from "./answer";
import { startStream, decodeAll, cutStream, endStream, streamBody } from "./stream";
import { record, recordNothing, chargeUnread, finishRecord } from "./record";
import { Settings, readSettings } from "./config";

// ---- request
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

/** The request headers: the API asked for, its client API, and what targeting must remove. */
function readRequestHeaders(x: Exchange, endOfStream: bool): FilterHeadersStatusValues {
  x.startNs = nowNanos();
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
      x.present |= HAS_CONTENT_LENGTH;
    } else if (h.keyIs(i, "accept-encoding")) x.present |= HAS_ACCEPT_ENCODING;
    else if (h.keyIs(i, "authorization")) x.present |= HAS_AUTHORIZATION;
    else if (h.keyIs(i, "x-api-key")) x.present |= HAS_X_API_KEY;
    else if (h.keyIs(i, "api-key")) x.present |= HAS_API_KEY;
    else if (h.keyIs(i, "x-goog-api-key")) x.present |= HAS_GOOG_KEY;
  }
  const q = path.indexOf("?");
  const route = q >= 0 ? path.substring(0, q) : path;
  // The paths ai-proxy serves, each with its one method; the client's API shape is the path's
  // (client.ts clientOf).
  let allow = "";
  if (route == "/v1/models") allow = "GET";
  else if (route == "/v1/chat/completions" || route == "/v1/messages" || route == "/v1/embeddings") allow = "POST";
  x.client = clientOf(route, anthropicVersion);
  if (allow.length && method != allow) {
    // A known API with the wrong method: 405 with the method it takes (RFC 9110, 15.5.6).
    setFilterState(keys.REQUEST_TYPE, REQUEST_UNSUPPORTED);
    x.allow = allow;
    fail(x, ClientError.of(405, "Method " + method + " is not allowed on " + route + "; use " + allow + ".", "invalid_request_error", "method_not_allowed"));
    return FilterHeadersStatusValues.StopIteration;
  }
  if (route == "/v1/models") {
    setFilterState(keys.REQUEST_TYPE, "ai_models");
    x.replied = true;
    sendLocalResponse(200, "sluice_models", x.settings.modelsBody, ["content-type", "application/json"]);
    return FilterHeadersStatusValues.StopIteration;
  }
  if (route == "/v1/chat/completions" || route == "/v1/messages") x.kind = CHAT;
  else if (route == "/v1/embeddings") x.kind = EMBEDDINGS;
  else if (owns(x, route)) {
    // Under the AI API's prefix but not an API the gateway serves (/v1/responses,
    // /v1/messages/count_tokens, a typo): the client's SDK reads a JSON 404 it understands.
    setFilterState(keys.REQUEST_TYPE, REQUEST_UNSUPPORTED);
    fail(x, ClientError.of(404, "The gateway does not serve " + method + " " + route + ".", "invalid_request_error", "unknown_path"));
    return FilterHeadersStatusValues.StopIteration;
  } else {
    setFilterState(keys.REQUEST_TYPE, "traditional_http");
    return FilterHeadersStatusValues.Continue;
  }
  // The body is read as JSON; a body that says it is something else is refused rather than
  // guessed at (no media type at all is read as JSON, as the providers' APIs do).
  if (contentType !== null && !isJsonMediaType(contentType as string)) {
    fail(x, ClientError.of(400, "The request body must be JSON (content-type: application/json), not '" + safeForMessage(contentType as string) + "'.", "invalid_request_error", "invalid_content_type"));
    return FilterHeadersStatusValues.StopIteration;
  }
  if (endOfStream) {
    fail(x, ClientError.of(400, "The request needs a JSON body.", "invalid_request_error", ""));
    return FilterHeadersStatusValues.StopIteration;
  }
  if (contentLength > x.settings.maxBodyBytes) {
    tooLarge(x);
    return FilterHeadersStatusValues.StopIteration;
  }
  return FilterHeadersStatusValues.StopIteration;
}

/** ai-proxy answers for this path (api_prefixes): it is under the AI API. */
function owns(x: Exchange, route: string): bool {
  const prefixes = x.settings.apiPrefixes;
  for (let i = 0; i < prefixes.length; i++) if (route.startsWith(prefixes[i])) return true;
  return false;
}

function tooLarge(x: Exchange): void {
  fail(x, ClientError.of(413, "The request body is larger than " + x.settings.maxBodyBytes.toString() + " bytes.", "invalid_request_error", "request_too_large"));
}

/** Parses, translates and targets the request. Returns the error to send, or null. */
function prepare(x: Exchange, body: ArrayBuffer): ClientError | null {
  x.bodyLen = body.byteLength;
  const parsed = parseJson(body, x.settings.maxJsonValues);
  if (parsed === null && jsonTooManyValues) {
    return ClientError.of(400, "The request body has more than " + x.settings.maxJsonValues.toString() + " JSON values.", "invalid_request_error", "request_too_complex");
  }
  if (parsed === null) return ClientError.of(400, "The request body is not valid JSON: " + jsonError + ".", "invalid_request_error", "invalid_json");
  let req = parsed as JsonValue;
  // What the gateway reads to route, translate and account (one pass over the parsed tree).
  const invalid = validateRequest(req, x.kind == CHAT, x.client == CLIENT_ANTHROPIC, x.settings.limits);
  if (invalid !== null) return invalid;
  // model and stream are named alike in OpenAI's and Anthropic's formats.
  const model = req.get("model");
  x.requestModel = model !== null ? model.s : "";
  const stream = req.get("stream");
  x.stream = x.kind == CHAT && stream !== null && stream.isBool() && stream.b;

  x.clientReq = req;
  // From the text the model reads, once: balancing and the usage record both use it.
  x.promptEstimate = estimatePromptTokens(req);
  const i = choose(x);
  if (i < 0) return x.noInstance;
  useInstance(x, i);
  const inst = x.inst as Instance;
  const provider = x.provider as Provider;
  if (x.upstreamModel.length == 0) return ClientError.of(400, "'model' is required.", "invalid_request_error", "missing_model");
  // Model names go into upstream paths, filter state and logs: checked before anything leaves.
  const badModel = provider.modelError(inst, x.upstreamModel);
  if (badModel !== null) return badModel;
  if (x.requestModel.length && !isPlainModelName(x.requestModel)) return invalidModel("must be 1 to " + MAX_MODEL_NAME.toString() + " characters without control characters");
  const budget = getFilterState(keys.STREAM_BUDGET);
  if (budget !== null && x.stream) x.budget = I64.parseInt(budget as string);

  if (x.client == CLIENT_ANTHROPIC) {
    if (provider.speaksAnthropic && x.budget < 0 && !x.redacts()) {
      // Same format both ways: the body passes through with only model, limit and options set,
      // so nothing Anthropic-specific (thinking signatures, cache_control, betas) is lost.
      x.native = true;
      return send(x, body, nativeBody(x, req, inst, body.byteLength), provider.chatUpstream(inst, x.upstreamModel, x.stream));
    }
    const c = toOpenAIRequest(x.client, req);
    if (c.error !== null) return c.error;
    req = c.req as JsonValue;
  }
  x.openaiReq = req;
  if (x.kind == CHAT && x.budget >= 0) x.capped = capOutput(req, inst, x.budget);
  if (x.kind == CHAT) {
    const so = req.get("stream_options");
    if (so !== null && so.isObject()) {
      const iu = so.get("include_usage");
      x.includeUsage = iu !== null && iu.isBool() && iu.b;
    }
    // An OpenAI client of an OpenAI-format provider gets the answer as sent. Its stream is
    // reframed (startStream): chunk data as sent, but the gateway may have to add the usage
    // chunk the client asked for, before [DONE], when the provider sends none.
    x.native = x.client == CLIENT_OPENAI && provider.speaksOpenAI && !x.stream && x.budget < 0 && !x.redacts();
  } else {
    const input = req.get("input");
    if (input === null || (!input.isString() && !input.isArray())) {
      return ClientError.of(400, "'input' must be a string or a list.", "invalid_request_error", "invalid_value");
    }
  }

  const out = new ByteBuilder(body.byteLength + 256);
  let err: ClientError | null;
  let up: Upstream | null;
  if (x.kind == CHAT) {
    err = provider.chatRequest(req, x.upstreamModel, x.stream, inst, out);
    up = provider.chatUpstream(inst, x.upstreamModel, x.stream);
  } else {
    up = provider.embeddingsUpstream(inst, x.upstreamModel);
    if (up === null) return ClientError.of(400, "Embeddings are not supported by provider " + provider.name + ".", "invalid_request_error", "unsupported_endpoint");
    err = provider.embeddingsRequest(req, x.upstreamModel, inst, out);
  }
  if (err !== null) return err;
  return send(x, body, out, up as Upstream);
}

/** The client's body with the upstream model, the instance's limit and options set. */
function nativeBody(x: Exchange, req: JsonValue, inst: Instance, sizeHint: i32): ByteBuilder {
  const out = new ByteBuilder(sizeHint + 256);
  writeMerged(out, req, overrides(x, inst, false));
  return out;
}

/** Members a native pass-through body gets from the instance (and stream off for a fallback). */
function overrides(x: Exchange, inst: Instance, noStream: bool): JsonValue {
  const overrides = JsonValue.object().set("model", JsonValue.str(x.upstreamModel));
  if (inst.maxTokens >= 0) overrides.set((x.provider as Provider).maxTokensField, JsonValue.int(inst.maxTokens));
  const options = inst.options;
  if (options !== null) {
    for (let i = 0, n = options.length; i < n; i++) overrides.set(options.keyAt(i), options.at(i));
  }
  if (noStream) overrides.set("stream", JsonValue.boolean(false));
  return overrides;
}

/** Replaces the body, points the held headers at the instance and records who serves it. */
function send(x: Exchange, original: ArrayBuffer, out: ByteBuilder, up: Upstream): ClientError | null {
  const inst = x.inst as Instance;
  const provider = x.provider as Provider;
  replaceBody(REQUEST_BODY, <u32>original.byteLength, out);
  target(x, inst, up.path, up.headers);
  setFilterState(keys.REQUEST_TYPE, x.requestType());
  setFilterState(keys.REQUEST_MODEL, x.requestModel);
  setFilterState(keys.MODEL, x.upstreamModel);
  setFilterState(keys.PROVIDER, provider.name);
  setFilterState(keys.INSTANCE, inst.name);
  proxyMetrics.instancePicked(inst.name);
  return null;
}

/** Points the held request headers at the instance. */
function target(x: Exchange, inst: Instance, path: string, headers: Array<string>): void {
  replaceHeader(REQUEST_HEADERS, ":path", path);
  replaceHeader(REQUEST_HEADERS, ":authority", inst.authority);
  replaceHeader(REQUEST_HEADERS, x.settings.clusterHeader, inst.cluster);
  replaceHeader(REQUEST_HEADERS, "content-type", "application/json");
  // The body changed length; Envoy re-frames it. Compressed answers could not be translated.
  // (Only headers seen in onRequestHeaders are removed: each removal is a host call.)
  const p = x.present;
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

/** Sends an error in the client's format, before anything reached a provider. */
function fail(x: Exchange, e: ClientError): void {
  x.replied = true;
  const consumer = getFilterState(keys.CONSUMER);
  proxyMetrics.rejected(consumer !== null ? consumer as string : "anonymous", e.status);
  const b = new ByteBuilder(128 + e.message.length);
  x.writeError(e, b);
  const headers = ["content-type", "application/json"];
  if (x.retryAfterS > 0) {
    headers.push("retry-after");
    headers.push(x.retryAfterS.toString());
  }
  if (x.allow.length) {
    headers.push("allow");
    headers.push(x.allow);
  }
  sendLocalResponse(e.status, "sluice_ai_proxy_" + (e.code.length ? e.code : "error"), b.toArrayBuffer(), headers);
}

// ---- fallback
/** The http_call's answer, for the request whose context made the call. */
function onFallbackResponse(origin: BaseContext, headers: u32, bodySize: usize, _trailers: u32): void {
  fallbackAnswered(origin as Exchange, headers, <u32>bodySize);
}

/**
 * The held failure's body has all arrived (onResponseBody, RESP_FALLBACK): it is kept for giveUp,
 * and the next instance is asked. StopIterationAndBuffer while its answer is pending.
 */
function heldFailureEnded(x: Exchange, length: usize): FilterDataStatusValues {
  x.lastStatus = x.status;
  x.lastErrorBody = getBuffer(RESPONSE_BODY, 0, <u32>length);
  noteFailure(x, x.lastCause);
  if (fallBack(x)) return FilterDataStatusValues.StopIterationAndBuffer; // until the callback
  giveUp(x);
  return FilterDataStatusValues.Continue;
}

/** The configured fallback_on names this failure and retries are left. */
function mayFallBack(x: Exchange, cause: string): bool {
  const s = x.settings;
  if (x.attempts >= s.maxRetries) return false;
  return s.fallbackOn.includes(cause) || s.fallbackOn.includes(x.status.toString());
}

/** Sends the request to the next instance. False when there is none left (nothing pending). */
function fallBack(x: Exchange): bool {
  const s = x.settings;
  const root = x.proxyRoot;
  while (x.attempts < s.maxRetries) {
    const i = choose(x);
    if (i < 0) return false;
    x.attempts++;
    useInstance(x, i);
    const inst = x.inst as Instance;
    const provider = x.provider as Provider;
    proxyMetrics.instancePicked(inst.name);
    const out = new ByteBuilder(<i32>x.bodyLen + 256);
    const up = fallbackRequest(x, out);
    if (up === null) continue; // this provider cannot take the request: the next may
    const headers: Array<HeaderPair> = [
      makeHeaderPair(":method", "POST"), makeHeaderPair(":path", up.path), makeHeaderPair(":authority", inst.authority),
      makeHeaderPair("content-type", "application/json"),
    ];
    for (let h = 0; h + 1 < up.headers.length; h += 2) headers.push(makeHeaderPair(up.headers[h], up.headers[h + 1]));
    for (let h = 0; h + 1 < inst.headers.length; h += 2) headers.push(makeHeaderPair(inst.headers[h], inst.headers[h + 1]));
    const r = root.httpCall(inst.cluster, headers, out.toArrayBuffer(), [], <u32>s.fallbackTimeoutMs, x, onFallbackResponse);
    if (r == WasmResultValues.Ok) {
      x.firstByteNs = 0; // time to first token is the answer the client gets
      setFilterState(keys.INSTANCE, inst.name);
      setFilterState(keys.PROVIDER, provider.name);
      setFilterState(keys.MODEL, x.upstreamModel);
      return true;
    }
    healthReport(s, inst.name, OUTCOME_FAILURE, nowMs(), 0);
  }
  return false;
}

/** The request body for the current instance, never streamed (http_call answers whole). */
function fallbackRequest(x: Exchange, out: ByteBuilder): Upstream | null {
  const inst = x.inst as Instance;
  const provider = x.provider as Provider;
  if (provider.modelError(inst, x.upstreamModel) !== null) return null; // its URL could not carry the model
  if (x.kind == EMBEDDINGS) {
    const up = provider.embeddingsUpstream(inst, x.upstreamModel);
    if (up === null) return null;
    return provider.embeddingsRequest(x.openaiReq as JsonValue, x.upstreamModel, inst, out) === null ? up : null;
  }
  if (x.client == CLIENT_ANTHROPIC && provider.speaksAnthropic) {
    writeMerged(out, x.clientReq as JsonValue, overrides(x, inst, true));
    return provider.chatUpstream(inst, x.upstreamModel, false);
  }
  if (x.openaiReq === null) {
    const c = toOpenAIRequest(x.client, x.clientReq as JsonValue);
    if (c.error !== null) return null;
    x.openaiReq = c.req;
  }
  if (provider.chatRequest(x.openaiReq as JsonValue, x.upstreamModel, false, inst, out) !== null) return null;
  return provider.chatUpstream(inst, x.upstreamModel, false);
}

/** The fallback instance answered (or failed: no headers on a reset). */
function fallbackAnswered(x: Exchange, headers: u32, bodySize: u32): void {
  const st = headers > 0 ? getHeader(HTTP_CALL_RESPONSE_HEADERS, ":status") : null;
  x.status = st !== null ? <u32>U32.parseInt(st as string) : 0;
  if (x.firstByteNs == 0) {
    x.firstByteNs = nowNanos();
    setFilterStateInt(keys.TTFT_MS, <i64>((x.firstByteNs - x.startNs) / 1000000));
  }
  if (<i64>bodySize > x.settings.maxResponseBodyBytes) {
    // Not copied into this VM's memory: answered at once, the answer estimated (it was produced).
    x.responseChars = <i64>bodySize;
    answerTooLarge(x, true);
    continueResponse();
    return;
  }
  const body = bodySize > 0 ? getBuffer(HTTP_CALL_RESPONSE_BODY, 0, bodySize) : new ArrayBuffer(0);
  let cause = "";
  if (x.status == 0) cause = "connect_failure";
  else if (x.status < 200 || x.status >= 300) {
    // Envoy's async client reports its own failures as 503 / 504 answers with a plain-text body.
    const text = body.byteLength < 200 ? String.UTF8.decode(body) : "";
    if (x.status == 503 && text.startsWith("upstream connect error")) cause = "connect_failure";
    else if (x.status == 504 && text.startsWith("upstream request timeout")) cause = "timeout";
    else if (x.status == 429) cause = "429";
    else if (x.status >= 500) cause = "5xx";
    else cause = x.status.toString();
  }
  reportOutcome(x, cause, HTTP_CALL_RESPONSE_HEADERS);
  if (cause.length == 0) {
    // The fallback asked for a whole answer; a provider that streams anyway is read as a stream
    // when the client wants one, else its answer is one the gateway cannot read.
    const ct = getHeader(HTTP_CALL_RESPONSE_HEADERS, "content-type");
    const sse = isEventStream(ct);
    if (sse ? deliverStream(x, body) : deliver(x, body)) {
      continueResponse();
      return;
    }
    cause = "5xx"; // a 2xx the gateway could not read: giveUp answers 502 for it
  }
  noteFailure(x, cause);
  x.lastCause = cause;
  x.lastStatus = x.status;
  x.lastErrorBody = body;
  if (mayFallBack(x, cause) && fallBack(x)) return;
  giveUp(x);
  continueResponse();
}

function noteFailure(x: Exchange, cause: string): void {
  const entry = (x.inst as Instance).name + ":" + cause;
  x.failedFrom = x.failedFrom.length ? x.failedFrom + "," + entry : entry;
  setFilterState(keys.FALLBACK_FROM, x.failedFrom);
}

/**
 * A fallback instance streamed although the request said not to (a server that ignores
 * `stream: false`): the whole stream is here, so it is decoded as a stream for a client that
 * asked for one. A stream that says nothing (no terminal event, no text) counts as a failure.
 */
function deliverStream(x: Exchange, body: ArrayBuffer): bool {
  if (!x.stream || x.kind != CHAT) return false;
  const native = x.native;
  x.native = false;
  startStream(x, true); // a translating sink: nothing passes through unread
  x.resp = RESP_SSE;
  const parser = x.parser as SseParser;
  const decoder = x.decoder as StreamDecoder;
  const sink = x.sink as StreamSink;
  decodeAll(x, parser.feed(body), sink);
  if (!decoder.done && sink.generatedChars == 0 && !parser.pending) {
    x.native = native;
    x.resp = RESP_FALLBACK;
    x.sink = null;
    x.decoder = null;
    x.parser = null;
    return false;
  }
  // The whole answer is here: a cut ends the client's stream with the provider's own usage.
  if (x.cut) cutStream(x, sink, true);
  else endStream(x);
  answerHeaders(x, "200", "text/event-stream");
  replaceBody(RESPONSE_BODY, x.bufferedLen, sink.out);
  return true;
}

/** Puts a fallback instance's answer in place of the held failure, in the client's format. */
function deliver(x: Exchange, body: ArrayBuffer): bool {
  const provider = x.provider as Provider;
  const parsed = parseJson(body);
  if (parsed === null) return false;
  const out = new ByteBuilder(body.byteLength + 256);
  let usage: Usage;
  if (x.kind == EMBEDDINGS) {
    usage = new Usage();
    if (!provider.embeddingsResponse(parsed as JsonValue, x.upstreamModel, out, usage)) return false;
  } else {
    const result = new ChatResult();
    if (!provider.chatResponse(parsed as JsonValue, result)) return false;
    usage = result.usage;
    if (result.model.length) setFilterState(keys.MODEL, result.model);
    if (x.stream) {
      x.native = false;
      startStream(x, true);
      replayAsStream(result, x.sink as StreamSink);
      out.buffer((x.sink as StreamSink).out.toArrayBuffer());
    } else if (speaksClient(provider, x.client)) {
      out.buffer(body);
    } else writeClientAnswer(x.client, result, out);
  }
  answerHeaders(x, "200", x.stream ? "text/event-stream" : "application/json");
  replaceBody(RESPONSE_BODY, x.bufferedLen, out);
  record(x, usage, true);
  return true;
}

/**
 * Every instance tried failed: the last failure, translated for the client, never with a 2xx
 * status (a 2xx the gateway could not read is a 502).
 */
function giveUp(x: Exchange): void {
  const provider = x.provider as Provider;
  const body = x.lastErrorBody;
  const unreadable = x.lastStatus >= 200 && x.lastStatus < 300;
  const transport = transportStatus(x.lastCause);
  x.status = transport > 0 ? transport : x.lastStatus;
  let e: ClientError;
  if (unreadable) {
    e = ClientError.of(502, "The provider sent an answer the gateway could not read.", "api_error", "bad_upstream_response");
  } else {
    const parsed = body.byteLength ? parseJson(body) : null;
    e = transport > 0 || parsed === null ? transportError(x, body) : shownError(x, provider.error(x.lastStatus, parsed));
    if (e.status < 400) e.status = 502;
  }
  x.status = e.status;
  const out = new ByteBuilder(128 + e.message.length);
  x.writeError(e, out);
  answerHeaders(x, e.status.toString(), "application/json");
  replaceBody(RESPONSE_BODY, x.bufferedLen, out);
  // An answer the gateway could not read was still produced: estimated, never free.
  if (unreadable) chargeUnread(x, body.byteLength);
  else recordNothing(x);
}

// ---- context
class AiProxy extends Exchange {
  constructor(id: u32, root: ProxyRoot) {
    super(id, root);
  }

  onRequestHeaders(_n: u32, endOfStream: bool): FilterHeadersStatusValues {
    return readRequestHeaders(this, endOfStream);
  }

  onRequestBody(length: usize, endOfStream: bool): FilterDataStatusValues {
    if (this.kind == PASS || this.replied) return FilterDataStatusValues.Continue;
    if (<i64>length > this.settings.maxBodyBytes) {
      tooLarge(this);
      return FilterDataStatusValues.StopIterationNoBuffer;
    }
    if (!endOfStream) return FilterDataStatusValues.StopIterationAndBuffer;
    const body = getBuffer(REQUEST_BODY, 0, <u32>length);
    const err = prepare(this, body);
    if (err !== null) {
      fail(this, err);
      return FilterDataStatusValues.StopIterationNoBuffer;
    }
    return FilterDataStatusValues.Continue;
  }

  onResponseHeaders(_n: u32, endOfStream: bool): FilterHeadersStatusValues {
    if (this.kind == PASS || this.replied || this.provider === null) return FilterHeadersStatusValues.Continue;
    const status = getHeader(RESPONSE_HEADERS, ":status");
    this.status = status !== null ? <u32>U32.parseInt(status as string) : 0;
    // Envoy's global rate limit filter (after this one in the chain) refused the request: the
    // provider never saw it, so its health is untouched and no other instance is tried.
    const refused = this.status == 429 && getHeader(RESPONSE_HEADERS, "x-envoy-ratelimited") !== null;
    this.refused = refused;
    const cause = refused ? "" : failureCause(this);
    if (!refused) reportOutcome(this, cause, RESPONSE_HEADERS);
    if (this.settings.instanceHeader) replaceHeader(RESPONSE_HEADERS, "x-sluice-instance", (this.inst as Instance).name);
    if (cause.length && !endOfStream && mayFallBack(this, cause)) {
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
      if (this.stream && sse) startStream(this, false);
      else if (this.stream) startStream(this, true);
      else this.resp = RESP_JSON;
    } else {
      this.resp = RESP_ERROR;
      mapTransportError(this, cause);
    }
    removeHeader(RESPONSE_HEADERS, "content-length");
    replaceHeader(RESPONSE_HEADERS, "content-type", this.resp == RESP_SSE || this.resp == RESP_REPLAY ? "text/event-stream" : "application/json");
    if (this.resp == RESP_SSE || this.resp == RESP_REPLAY) replaceHeader(RESPONSE_HEADERS, "cache-control", "no-cache");
    if (endOfStream) {
      // Headers only: nothing to translate (proxy-wasm cannot add a body to a headers-only answer).
      if (this.resp == RESP_ERROR) recordNothing(this);
      else record(this, new Usage(), true);
      return FilterHeadersStatusValues.Continue;
    }
    // A stream goes out as it comes. A whole answer is translated at its end, and may change the
    // status (an unreadable answer becomes 502): hold the headers until then. Envoy keeps feeding
    // this filter the body while its headers are held (allow_on_headers_stop_iteration).
    if (this.resp == RESP_SSE) return FilterHeadersStatusValues.Continue;
    return FilterHeadersStatusValues.StopIteration;
  }

  onResponseBody(length: usize, endOfStream: bool): FilterDataStatusValues {
    if (this.kind == PASS || this.replied || this.resp == RESP_NONE) return FilterDataStatusValues.Continue;
    if (this.tooBig) return FilterDataStatusValues.StopIterationNoBuffer;
    if (this.resp != RESP_SSE && <i64>length > this.settings.maxResponseBodyBytes) {
      // Envoy's buffer holds the body so far (length is all of it): refuse before copying it here.
      this.responseChars = <i64>length;
      answerTooLarge(this, false);
      return FilterDataStatusValues.StopIterationNoBuffer;
    }
    if (this.resp == RESP_FALLBACK) {
      if (this.firstByteNs == 0 && length > 0) this.firstByteNs = nowNanos();
      this.bufferedLen = <u32>length;
      if (!endOfStream) return FilterDataStatusValues.StopIterationAndBuffer;
      return heldFailureEnded(this, length);
    }
    if (this.firstByteNs == 0 && length > 0) {
      this.firstByteNs = nowNanos();
      setFilterStateInt(keys.TTFT_MS, <i64>((this.firstByteNs - this.startNs) / 1000000));
    }
    if (this.resp == RESP_SSE) return streamBody(this, length, endOfStream);
    if (!endOfStream) return FilterDataStatusValues.StopIterationAndBuffer;
    finishResponse(this, getBuffer(RESPONSE_BODY, 0, <u32>length), <u32>length);
    return FilterDataStatusValues.Continue;
  }

  /**
   * Envoy runs every filter's on_log before any filter's on_done, and a client that hangs up gets
   * no other callback first: the estimate is written here, where the access log and
   * ai-ratelimit (which charges in its on_done) can see it.
   */
  onLog(): void {
    finishRecord(this);
  }

  onDone(): bool {
    finishRecord(this);
    return true;
  }
}

// ---- root
class AiProxyRoot extends ProxyRoot {
  createContext(context_id: u32): Context {
    return new AiProxy(context_id, this);
  }

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
      proxyMetrics.instanceHealth(name, readHealth(name).available(now), false);
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

registerRootContext((id: u32) => new AiProxyRoot(id), "ai-proxy");
