// Whole answers (the provider's JSON, buffered) and errors: translated into the client's API, the
// usage record written, an unreadable or too large answer turned into a 502 in the client's shape,
// Envoy's own plain-text failures into JSON errors.
import { RESPONSE_HEADERS, RESPONSE_BODY, replaceHeader, removeHeader, sendLocalResponse, setFilterState, setFilterStateInt } from "../../lib/sdk";
import { JsonValue, ByteBuilder, parseJson } from "../../lib/json";
import * as keys from "../../lib/keys";
import { ChatResult, ClientError, Instance, Provider, StreamSink, Usage, redactedError } from "../../providers/types";
import { replayAsStream } from "./replay";
import { captureResult } from "./capture";
import { CLIENT_OPENAI, CLIENT_RESPONSES, isClientAnswer, isClientError, writeClientAnswer, writeClientEmbeddings } from "./client";
import { isResponse, readResponsesUsage, responsesOutputChars, responseResult } from "./responses-native";
import { record, recordNothing, chargeUnread } from "./record";
import { Exchange, EMBEDDINGS, RESP_ERROR, RESP_JSON, RESP_REPLAY, replaceBody } from "./state";

/** A complete buffered body: translate the answer or the error and write the usage record. */
export function finishResponse(x: Exchange, body: ArrayBuffer, length: u32): void {
  const provider = x.provider as Provider;
  const parsed = body.byteLength ? parseJson(body) : null;
  // Each output is allocated where it is written, sized for it: a VM's memory keeps its
  // high-water mark, and an answer that passes through untouched needs none.
  if (x.resp == RESP_ERROR) {
    // A provider error already in the client's format passes through as the provider wrote it.
    if (x.native && !x.redacts() && parsed !== null && isClientError(x.client, parsed as JsonValue)) {
      recordNothing(x);
      return;
    }
    let e = shownError(x, provider.error(x.status, parsed));
    if (parsed === null || x.refused) e = transportError(x, body);
    const out = new ByteBuilder(128 + e.message.length);
    x.writeError(e, out);
    recordNothing(x);
    replaceBody(RESPONSE_BODY, length, out);
    return;
  }
  if (x.kind == EMBEDDINGS) {
    const usage = new Usage();
    const out = new ByteBuilder(body.byteLength + 256);
    if (parsed === null || !writeClientEmbeddings(x.client, provider, parsed as JsonValue, x.upstreamModel, x.geminiMethod == "batchEmbedContents", out, usage)) {
      badAnswer(x, length);
      return;
    }
    record(x, usage, true);
    // A native answer (Gemini's own, to a Gemini client) was read for its usage and goes on as it came.
    if (!x.native) replaceBody(RESPONSE_BODY, length, out);
    return;
  }
  if (x.native && x.client == CLIENT_RESPONSES && x.resp == RESP_JSON) {
    nativeResponse(x, parsed, length);
    return;
  }
  const result = new ChatResult();
  if (parsed === null || !provider.chatResponse(parsed as JsonValue, result, x.answerMode)) {
    badAnswer(x, length);
    return;
  }
  // (Bedrock's answers name no model: the one asked.)
  if (result.model.length == 0) result.model = x.upstreamModel;
  else setFilterState(keys.MODEL, result.model);
  for (let i = 0; i < result.choices.length; i++) {
    const c = result.choices[i];
    x.responseChars += c.contentUnits;
    for (let t = 0; t < c.toolCalls.length; t++) x.responseChars += c.toolCalls[t].arguments.length;
  }
  if (x.resp == RESP_REPLAY) {
    const sink = x.sink as StreamSink;
    // The replayed stream shows the usage that is recorded (estimated if the answer had none).
    result.usage = record(x, result.usage, true);
    captureResult(x, result, result.usage);
    replayAsStream(result, sink);
    replaceBody(RESPONSE_BODY, length, sink.out);
    return;
  }
  // A native answer must at least say what it is before it passes through untouched.
  if (x.native && !isClientAnswer(x.client, parsed as JsonValue)) {
    badAnswer(x, length);
    return;
  }
  captureResult(x, result, record(x, result.usage, true));
  // An answer already in the client's format passes through untouched.
  if (x.native || (x.client == CLIENT_OPENAI && provider.speaksOpenAI)) return;
  const out = new ByteBuilder(body.byteLength + 256);
  writeClientAnswer(x.client, result, out, x.clientReq, x.keeper);
  replaceBody(RESPONSE_BODY, length, out);
}

/**
 * An OpenAI or Azure OpenAI instance's own Response, for a Responses client: passed on untouched
 * once it says what it is, its usage recorded (estimated from its output when it has none).
 */
function nativeResponse(x: Exchange, parsed: JsonValue | null, length: u32): void {
  if (parsed === null || !isResponse(parsed as JsonValue)) {
    badAnswer(x, length);
    return;
  }
  const v = parsed as JsonValue;
  const model = v.getString("model");
  if (model !== null && (model as string).length) setFilterState(keys.MODEL, model as string);
  const usage = new Usage();
  readResponsesUsage(v, usage);
  x.responseChars = responsesOutputChars(v);
  const recorded = record(x, usage, true);
  if (x.captureCap > 0) {
    const r = responseResult(v);
    if (r !== null) captureResult(x, r as ChatResult, recorded);
  }
}

/** Status, content type and instance of a fallback's answer, replacing the held failure's. */
export function answerHeaders(x: Exchange, status: string, contentType: string): void {
  replaceHeader(RESPONSE_HEADERS, ":status", status);
  replaceHeader(RESPONSE_HEADERS, "content-type", contentType);
  if (contentType == "text/event-stream") replaceHeader(RESPONSE_HEADERS, "cache-control", "no-cache");
  removeHeader(RESPONSE_HEADERS, "content-length");
  // A failure keeps its Retry-After; an answer has none.
  if (status.startsWith("2")) removeHeader(RESPONSE_HEADERS, "retry-after");
  // The instance whose answer the client gets (the held one named the instance that failed).
  if (x.settings.instanceHeader) replaceHeader(RESPONSE_HEADERS, "x-sluice-instance", (x.inst as Instance).name);
  setFilterStateInt(keys.ATTEMPTS, <i64>(x.attempts + 1));
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
export function answerTooLarge(x: Exchange, fromFallback: bool): void {
  const e = ClientError.of(502, "The provider's answer is larger than " + x.settings.maxResponseBodyBytes.toString() + " bytes.", "api_error", "upstream_response_too_large");
  const out = new ByteBuilder(160);
  x.writeError(e, out);
  const answer = x.resp == RESP_JSON || x.resp == RESP_REPLAY || fromFallback;
  x.status = 502;
  x.tooBig = true;
  if (fromFallback) {
    answerHeaders(x, "502", "application/json");
    replaceBody(RESPONSE_BODY, x.bufferedLen, out);
  } else {
    const headers = ["content-type", "application/json"];
    if (x.settings.instanceHeader) {
      headers.push("x-sluice-instance");
      headers.push((x.inst as Instance).name);
    }
    sendLocalResponse(502, "sluice_ai_proxy_upstream_response_too_large", out.toArrayBuffer(), headers);
  }
  if (answer) chargeUnread(x, x.responseChars);
  else recordNothing(x);
}

/** A provider's error as the client may see it: the provider's own, or its status class only. */
export function shownError(x: Exchange, e: ClientError): ClientError {
  return x.redacts() ? redactedError(e) : e;
}

/** Envoy's own plain-text answers (connect failure, timeout) as JSON errors. */
export function transportError(x: Exchange, body: ArrayBuffer): ClientError {
  if (x.refused) return ClientError.of(429, "Rate limit exceeded.", "rate_limit_error", "rate_limit_exceeded");
  // Only the start is compared: an error body can be large, and decoding it all would cost twice its size.
  const text = String.UTF8.decode(body.byteLength > 64 ? body.slice(0, 64) : body);
  if (x.status == 504) return ClientError.of(504, "The provider did not answer in time.", "api_error", "upstream_timeout");
  if (x.status == 502 || text.startsWith("upstream connect error") || text.startsWith("no healthy upstream")) {
    return ClientError.of(502, "The provider could not be reached.", "api_error", "upstream_unreachable");
  }
  return ClientError.of(x.status, "The " + (x.provider as Provider).name + " provider returned HTTP " + x.status.toString() + ".", "api_error", "");
}

export function badAnswer(x: Exchange, length: u32): void {
  const e = ClientError.of(502, "The provider sent an answer the gateway could not read.", "api_error", "bad_upstream_response");
  if (x.resp == RESP_REPLAY) {
    // The client asked for a stream: it gets one, ending in an error event.
    const sink = x.sink as StreamSink;
    sink.error(e);
    sink.end();
    recordNothing(x);
    replaceBody(RESPONSE_BODY, length, sink.out);
    return;
  }
  replaceHeader(RESPONSE_HEADERS, ":status", "502");
  const out = new ByteBuilder(128);
  x.writeError(e, out);
  recordNothing(x);
  replaceBody(RESPONSE_BODY, length, out);
}
