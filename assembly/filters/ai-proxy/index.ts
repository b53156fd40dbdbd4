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
import { FilterDataStatusValues, RESPONSE_BODY, HTTP_CALL_RESPONSE_HEADERS, HTTP_CALL_RESPONSE_BODY, BaseContext, getHeader, getBuffer, setFilterState, setFilterStateInt, continueResponse, makeHeaderPair, HeaderPair, nowNanos, WasmResultValues, FilterHeadersStatusValues, RESPONSE_HEADERS, REQUEST_BODY, removeHeader, replaceHeader, Context, getSharedData, setSharedData, pluginConfiguration, setTickPeriod, registerRootContext } from "../../lib/sdk";
import { JsonValue, ByteBuilder, parseJson, writeMerged, setJsonDefaultMaxValues } from "../../lib/json";
import { SseParser } from "../../lib/sse";
import { ChatResult, ClientError, Instance, Provider, StreamDecoder, StreamSink, Upstream, Usage } from "../../providers/types";
import { OUTCOME_FAILURE, readHealth, OUTCOME_PROBE_OK, OUTCOME_PROBE_FAILED } from "./health";
import { replayAsStream } from "./replay";
import { CLIENT_ANTHROPIC, speaksClient, toOpenAIRequest, writeClientAnswer } from "./client";
import { choose, useInstance } from "./selection";
import { overrides, readRequestHeaders, prepare, fail, tooLarge } from "./request";
import { healthReport, reportOutcome, isEventStream, transportStatus, failureCause, mapTransportError } from "./outcome";
import { answerHeaders, answerTooLarge, shownError, transportError, finishResponse } from "./answer";
import { startStream, decodeAll, cutStream, endStream, streamBody } from "./stream";
import { record, recordNothing, chargeUnread, finishRecord } from "./record";
import { Exchange, CHAT, EMBEDDINGS, RESP_FALLBACK, RESP_SSE, nowMs, proxyMetrics, replaceBody, ProxyRoot, PASS, RESP_NONE, RESP_JSON, RESP_ERROR, RESP_REPLAY } from "./state";
import { Settings, readSettings } from "./config";

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
