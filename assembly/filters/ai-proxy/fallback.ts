// Fallback: a failed answer is held (nothing reached the client yet) while the request goes to
// the next instance of the pool through proxy_http_call; that instance's answer (or the last
// failure, translated) replaces the held one. Streams come back whole from an http_call.
import {
  FilterDataStatusValues, RESPONSE_BODY, HTTP_CALL_RESPONSE_HEADERS, HTTP_CALL_RESPONSE_BODY, BaseContext,
  getHeader, getBuffer, setFilterState, setFilterStateInt, continueResponse, makeHeaderPair, HeaderPair, nowNanos, WasmResultValues,
} from "../../lib/sdk";
import { JsonValue, ByteBuilder, parseJson } from "../../lib/json";
import { SseParser } from "../../lib/sse";
import * as keys from "../../lib/keys";
import { ANSWER_PLAIN, ChatResult, ClientError, Instance, Provider, StreamDecoder, StreamSink, Upstream, Usage } from "../../providers/types";
import { OUTCOME_FAILURE } from "./health";
import { replayAsStream } from "./replay";
import { captureResult } from "./capture";
import { signUpstream } from "./aws";
import { authorize } from "./upstream-token";
import { pickKey, useKey, countKey } from "./key-pool";
import { CLIENT_ANTHROPIC, CLIENT_GEMINI, CLIENT_RESPONSES, speaksClient, toOpenAIRequest, writeClientAnswer, writeClientEmbeddings } from "./client";
import { choose, useInstance } from "./selection";
import { writeNative, previousStored, responsesChat } from "./request";
import { healthReport, reportOutcome, isEventStream, transportStatus } from "./outcome";
import { answerHeaders, answerTooLarge, shownError, transportError } from "./answer";
import { startStream, decodeAll, cutStream, endStream } from "./stream";
import { record, recordNothing, chargeUnread } from "./record";
import { Exchange, CHAT, EMBEDDINGS, RESP_FALLBACK, RESP_SSE, nowMs, proxyMetrics, replaceBody } from "./state";

/** The http_call's answer, for the request whose context made the call. */
function onFallbackResponse(origin: BaseContext, headers: u32, bodySize: usize, _trailers: u32): void {
  fallbackAnswered(origin as Exchange, headers, <u32>bodySize);
}

/**
 * The held failure's body has all arrived (onResponseBody, RESP_FALLBACK): it is kept for giveUp,
 * and the next instance is asked. StopIterationAndBuffer while its answer is pending.
 */
export function heldFailureEnded(x: Exchange, length: usize): FilterDataStatusValues {
  x.lastStatus = x.status;
  x.lastErrorBody = getBuffer(RESPONSE_BODY, 0, <u32>length);
  noteFailure(x, x.lastCause);
  if (fallBack(x)) return FilterDataStatusValues.StopIterationAndBuffer; // until the callback
  giveUp(x);
  return FilterDataStatusValues.Continue;
}

/** The configured fallback_on names this failure and retries are left. */
export function mayFallBack(x: Exchange, cause: string): bool {
  const s = x.settings;
  if (x.attempts >= s.maxRetries) return false;
  return s.fallbackOn.includes(cause) || s.fallbackOn.includes(x.status.toString());
}

/** Sends the request to the next instance. False when there is none left (nothing pending). */
export function fallBack(x: Exchange): bool {
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
    const source = root.tokens.length > i ? root.tokens[i] : null;
    if (source !== null && authorize(source, inst.name, up, nowMs()) !== null) continue; // no token: the next may have one
    x.keyIndex = pickKey(inst, nowMs());
    useKey(inst, up, x.keyIndex);
    countKey(inst, x.keyIndex);
    signUpstream(provider, inst, up, changetype<usize>(out.buf), out.len);
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
export function fallbackRequest(x: Exchange, out: ByteBuilder): Upstream | null {
  const inst = x.inst as Instance;
  const provider = x.provider as Provider;
  if (provider.modelError(inst, x.upstreamModel) !== null) return null; // its URL could not carry the model
  if (x.kind == EMBEDDINGS) {
    const up = provider.embeddingsUpstream(inst, x.upstreamModel);
    if (up === null) return null;
    return provider.embeddingsRequest(x.openaiReq as JsonValue, x.upstreamModel, inst, out) === null ? up : null;
  }
  if (x.client == CLIENT_ANTHROPIC && provider.speaksAnthropic) {
    writeNative(x, x.clientReq as JsonValue, inst, true, out);
    x.answerMode = ANSWER_PLAIN;
    return provider.chatUpstream(inst, x.upstreamModel, false);
  }
  if (x.client == CLIENT_GEMINI && provider.speaksGemini && inst.options === null && inst.maxTokens < 0) {
    // The model is in the path: Gemini's body goes as the client sent it.
    out.value(x.clientReq as JsonValue);
    return provider.chatUpstream(inst, x.upstreamModel, false);
  }
  // What only the client's own provider takes cannot go to this one.
  if (x.untranslatable !== null) return null;
  if (x.openaiReq === null) {
    // (A Responses request's previous_response_id is read from the gateway's store: an id of an
    // OpenAI instance's own is not there, and the request cannot go to this provider.)
    const c = x.client == CLIENT_RESPONSES ? responsesChat(x, x.clientReq as JsonValue, previousStored(x, x.clientReq as JsonValue)) : toOpenAIRequest(x.client, x.clientReq as JsonValue);
    if (c.error !== null) return null;
    x.openaiReq = c.req;
  }
  if (provider.chatRequest(x.openaiReq as JsonValue, x.upstreamModel, false, inst, out) !== null) return null;
  x.answerMode = provider.answerMode(x.openaiReq as JsonValue, x.upstreamModel, inst);
  return provider.chatUpstream(inst, x.upstreamModel, false);
}

/** The fallback instance answered (or failed: no headers on a reset). */
export function fallbackAnswered(x: Exchange, headers: u32, bodySize: u32): void {
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

export function noteFailure(x: Exchange, cause: string): void {
  const entry = (x.inst as Instance).name + ":" + cause;
  x.failedFrom = x.failedFrom.length ? x.failedFrom + "," + entry : entry;
  setFilterState(keys.FALLBACK_FROM, x.failedFrom);
}

/**
 * A fallback instance streamed although the request said not to (a server that ignores
 * `stream: false`): the whole stream is here, so it is decoded as a stream for a client that
 * asked for one. A stream that says nothing (no terminal event, no text) counts as a failure.
 */
export function deliverStream(x: Exchange, body: ArrayBuffer): bool {
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
  answerHeaders(x, "200", x.streamType());
  replaceBody(RESPONSE_BODY, x.bufferedLen, sink.out);
  return true;
}

/** Puts a fallback instance's answer in place of the held failure, in the client's format. */
export function deliver(x: Exchange, body: ArrayBuffer): bool {
  const provider = x.provider as Provider;
  const parsed = parseJson(body);
  if (parsed === null) return false;
  const out = new ByteBuilder(body.byteLength + 256);
  let usage: Usage;
  let answered: ChatResult | null = null;
  if (x.kind == EMBEDDINGS) {
    usage = new Usage();
    if (!writeClientEmbeddings(x.client, provider, parsed as JsonValue, x.upstreamModel, x.geminiMethod == "batchEmbedContents", out, usage)) return false;
  } else {
    const result = new ChatResult();
    if (!provider.chatResponse(parsed as JsonValue, result, x.answerMode)) return false;
    usage = result.usage;
    answered = result;
    if (result.model.length) setFilterState(keys.MODEL, result.model);
    if (x.stream) {
      x.native = false;
      startStream(x, true);
      replayAsStream(result, x.sink as StreamSink);
      out.buffer((x.sink as StreamSink).out.toArrayBuffer());
    } else if (speaksClient(provider, x.client)) {
      out.buffer(body);
    } else writeClientAnswer(x.client, result, out, x.clientReq, x.keeper);
  }
  answerHeaders(x, "200", x.stream ? x.streamType() : "application/json");
  replaceBody(RESPONSE_BODY, x.bufferedLen, out);
  const recorded = record(x, usage, true);
  if (answered !== null) captureResult(x, answered as ChatResult, recorded);
  return true;
}

/**
 * Every instance tried failed: the last failure, translated for the client, never with a 2xx
 * status (a 2xx the gateway could not read is a 502).
 */
export function giveUp(x: Exchange): void {
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
