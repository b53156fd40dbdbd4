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
  getBuffer, replaceBuffer, appendBuffer, sendLocalResponse, setFilterState, getFilterState, clearRouteCache, pluginConfiguration, nowNanos, getProperty,
} from "../../lib/sdk";
import { JsonValue, ByteBuilder, parseJson, jsonError, writeMerged } from "../../lib/json";
import { SseParser } from "../../lib/sse";
import * as keys from "../../lib/keys";
import { writeUsageRecord } from "../../lib/usage";
import { estimateTokens, estimatePromptTokens } from "../../lib/tokens";
import { ChatResult, ClientError, CountingSink, Instance, Provider, StreamDecoder, StreamSink, Upstream, Usage } from "../../providers/types";
import { Settings, readSettings } from "./config";
import { OpenAIStreamSink, writeOpenAIChat, writeOpenAIError } from "./client-openai";
import { AnthropicStreamSink, anthropicToOpenAI, writeAnthropicError, writeAnthropicMessage } from "./client-anthropic";
import { replayAsStream } from "./replay";
import { Metrics } from "./metrics";

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

class AiProxyRoot extends RootContext {
  settings: Settings | null = null;
  metrics: Metrics = new Metrics();

  createContext(context_id: u32): Context {
    return new AiProxy(context_id, this);
  }

  onConfigure(size: u32): bool {
    const s = readSettings(pluginConfiguration(size));
    if (s === null) return false;
    this.settings = s;
    return true;
  }
}

class AiProxy extends Context {
  kind: i32 = PASS;
  client: i32 = CLIENT_OPENAI;
  /** The provider speaks the client's format: answers and streams pass through unchanged. */
  native: bool = false;
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
  usage: Usage = new Usage();
  usageWritten: bool = false;
  responseChars: i64 = 0;

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
    for (let i = 0; i < h.count; i++) {
      if (h.keyIs(i, ":method")) method = h.value(i);
      else if (h.keyIs(i, ":path")) path = h.value(i);
      else if (h.keyIs(i, "content-length")) contentLength = I64.parseInt(h.value(i));
    }
    const q = path.indexOf("?");
    const route = q >= 0 ? path.substring(0, q) : path;
    if (method == "GET" && route == "/v1/models") {
      setFilterState(keys.REQUEST_TYPE, "ai_chat");
      this.replied = true;
      sendLocalResponse(200, "sluice_models", this.settings.modelsBody, ["content-type", "application/json"]);
      return FilterHeadersStatusValues.StopIteration;
    }
    if (method == "POST" && route == "/v1/chat/completions") this.kind = CHAT;
    else if (method == "POST" && route == "/v1/messages") {
      this.kind = CHAT;
      this.client = CLIENT_ANTHROPIC;
    } else if (method == "POST" && route == "/v1/embeddings") this.kind = EMBEDDINGS;
    else {
      setFilterState(keys.REQUEST_TYPE, "traditional_http");
      return FilterHeadersStatusValues.Continue;
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

  tooLarge(): void {
    this.fail(ClientError.of(413, "The request body is larger than " + this.settings.maxBodyBytes.toString() + " bytes.", "invalid_request_error", "request_too_large"));
  }

  /** Parses, translates and targets the request. Returns the error to send, or null. */
  prepare(body: ArrayBuffer): ClientError | null {
    const parsed = parseJson(body);
    if (parsed === null) return ClientError.of(400, "The request body is not valid JSON: " + jsonError + ".", "invalid_request_error", "invalid_json");
    if (!parsed.isObject()) return ClientError.of(400, "The request body must be a JSON object.", "invalid_request_error", "invalid_json");
    let req = parsed as JsonValue;
    // model and stream are named alike in OpenAI's and Anthropic's formats.
    const model = req.get("model");
    if (model !== null && !model.isString()) return ClientError.of(400, "'model' must be a string.", "invalid_request_error", "invalid_type");
    this.requestModel = model !== null ? model.s : "";
    const stream = req.get("stream");
    if (stream !== null && !stream.isBool() && !stream.isNull()) return ClientError.of(400, "'stream' must be true or false.", "invalid_request_error", "invalid_type");
    this.stream = this.kind == CHAT && stream !== null && stream.isBool() && stream.b;

    const i = this.pick();
    if (i < 0) return ClientError.of(404, "No provider instance serves model '" + this.requestModel + "'.", "invalid_request_error", "model_not_found");
    const inst = this.settings.instances[i];
    const provider = this.settings.providers[i];
    this.inst = inst;
    this.provider = provider;
    this.upstreamModel = inst.upstreamModel(this.requestModel);
    if (this.upstreamModel.length == 0) return ClientError.of(400, "'model' is required.", "invalid_request_error", "missing_model");

    if (this.kind == CHAT) {
      const messages = req.get("messages");
      if (messages === null || !messages.isArray() || messages.length == 0) {
        return ClientError.of(400, "'messages' must be a non-empty list.", "invalid_request_error", "invalid_value");
      }
    }
    if (this.client == CLIENT_ANTHROPIC) {
      if (provider.speaksAnthropic) {
        // Same format both ways: the body passes through with only model, limit and options set,
        // so nothing Anthropic-specific (thinking signatures, cache_control, betas) is lost.
        this.native = true;
        return this.send(body, this.nativeBody(req, inst, body.byteLength), provider.chatUpstream(inst, this.upstreamModel, this.stream));
      }
      const c = anthropicToOpenAI(req);
      if (c.error !== null) return c.error;
      req = c.req as JsonValue;
    }
    if (this.kind == CHAT) {
      const so = req.get("stream_options");
      if (so !== null && so.isObject()) {
        const iu = so.get("include_usage");
        this.includeUsage = iu !== null && iu.isBool() && iu.b;
      }
      // An OpenAI client of an OpenAI-format provider gets the answer as sent; a stream too, when
      // the client asked for the usage chunk the gateway needs anyway.
      this.native = this.client == CLIENT_OPENAI && provider.speaksOpenAI && (!this.stream || this.includeUsage);
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
    const overrides = JsonValue.object().set("model", JsonValue.str(this.upstreamModel));
    if (inst.maxTokens >= 0) overrides.set((this.provider as Provider).maxTokensField, JsonValue.int(inst.maxTokens));
    const options = inst.options;
    if (options !== null) {
      const ok = options.keys as Array<string>;
      const ov = options.vals as Array<JsonValue>;
      for (let i = 0; i < ok.length; i++) overrides.set(ok[i], ov[i]);
    }
    const out = new ByteBuilder(sizeHint + 256);
    writeMerged(out, req, overrides);
    return out;
  }

  /** Replaces the body, points the held headers at the instance and records who serves it. */
  send(original: ArrayBuffer, out: ByteBuilder, up: Upstream): ClientError | null {
    const inst = this.inst as Instance;
    const provider = this.provider as Provider;
    this.promptEstimate = estimatePromptTokens(original.byteLength);
    replaceBuffer(REQUEST_BODY, <u32>original.byteLength, out.toArrayBuffer());
    this.target(inst, up.path, up.headers);
    setFilterState(keys.REQUEST_TYPE, this.stream ? "ai_stream" : "ai_chat");
    setFilterState(keys.REQUEST_MODEL, this.requestModel);
    setFilterState(keys.MODEL, this.upstreamModel);
    setFilterState(keys.PROVIDER, provider.name);
    setFilterState(keys.INSTANCE, inst.name);
    return null;
  }

  /** The instance for this request: the first that serves the requested model. */
  pick(): i32 {
    const instances = this.settings.instances;
    for (let i = 0; i < instances.length; i++) {
      if (instances[i].serves(this.requestModel)) return i;
    }
    return -1;
  }

  /** Points the held request headers at the instance. */
  target(inst: Instance, path: string, headers: Array<string>): void {
    replaceHeader(REQUEST_HEADERS, ":path", path);
    replaceHeader(REQUEST_HEADERS, ":authority", inst.authority);
    replaceHeader(REQUEST_HEADERS, this.settings.clusterHeader, inst.cluster);
    replaceHeader(REQUEST_HEADERS, "content-type", "application/json");
    // The body changed length; Envoy re-frames it. Compressed answers could not be translated.
    removeHeader(REQUEST_HEADERS, "content-length");
    removeHeader(REQUEST_HEADERS, "accept-encoding");
    // The client's own credentials never reach a provider.
    removeHeader(REQUEST_HEADERS, "authorization");
    removeHeader(REQUEST_HEADERS, "x-api-key");
    removeHeader(REQUEST_HEADERS, "api-key");
    removeHeader(REQUEST_HEADERS, "x-goog-api-key");
    for (let i = 0; i + 1 < headers.length; i += 2) replaceHeader(REQUEST_HEADERS, headers[i], headers[i + 1]);
    for (let i = 0; i + 1 < inst.headers.length; i += 2) replaceHeader(REQUEST_HEADERS, inst.headers[i], inst.headers[i + 1]);
    // Envoy chose the route before this filter set the cluster header.
    clearRouteCache();
  }

  /** Sends an error in the client's format, before anything reached a provider. */
  fail(e: ClientError): void {
    this.replied = true;
    const consumer = getFilterState(keys.CONSUMER);
    (this.root_context as AiProxyRoot).metrics.rejected(consumer !== null ? consumer as string : "anonymous", e.status);
    const b = new ByteBuilder(128 + e.message.length);
    if (this.client == CLIENT_ANTHROPIC) writeAnthropicError(e, b);
    else writeOpenAIError(e, b);
    sendLocalResponse(e.status, "sluice_ai_proxy_" + (e.code.length ? e.code : "error"), b.toArrayBuffer(), ["content-type", "application/json"]);
  }

  // ---------------------------------------------------------------------------------------------
  // Response

  onResponseHeaders(_n: u32, endOfStream: bool): FilterHeadersStatusValues {
    if (this.kind == PASS || this.replied || this.provider === null) return FilterHeadersStatusValues.Continue;
    const status = getHeader(RESPONSE_HEADERS, ":status");
    this.status = status !== null ? <u32>U32.parseInt(status as string) : 0;
    if (this.status >= 200 && this.status < 300) {
      const ct = getHeader(RESPONSE_HEADERS, "content-type");
      const sse = ct !== null && (ct as string).toLowerCase().includes("text/event-stream");
      if (this.stream && sse) this.startStream(false);
      else if (this.stream) this.startStream(true);
      else this.resp = RESP_JSON;
    } else {
      this.resp = RESP_ERROR;
      this.mapTransportError();
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

  startStream(replay: bool): void {
    this.resp = replay ? RESP_REPLAY : RESP_SSE;
    this.parser = new SseParser();
    this.decoder = (this.provider as Provider).streamDecoder();
    if (this.native && !replay) this.sink = new CountingSink();
    else if (this.client == CLIENT_ANTHROPIC) this.sink = new AnthropicStreamSink();
    else this.sink = new OpenAIStreamSink(this.includeUsage);
  }

  /**
   * Envoy's router answers for the provider when it cannot reach it (503 "upstream connect error")
   * or gives up waiting (504). Clients get 502 and 504 with a JSON error.
   */
  mapTransportError(): void {
    const details = getProperty(["response", "code_details"]);
    if (details === null) return;
    const d = String.UTF8.decode(details as ArrayBuffer);
    if (d.startsWith("upstream_reset_before_response_started") || d == "no_healthy_upstream" || d == "cluster_not_found") {
      this.status = 502;
      replaceHeader(RESPONSE_HEADERS, ":status", "502");
    } else if (d == "upstream_response_timeout" || d.startsWith("upstream_per_try_timeout")) {
      this.status = 504;
      replaceHeader(RESPONSE_HEADERS, ":status", "504");
    }
  }

  onResponseBody(length: usize, endOfStream: bool): FilterDataStatusValues {
    if (this.kind == PASS || this.replied || this.resp == RESP_NONE) return FilterDataStatusValues.Continue;
    if (this.firstByteNs == 0 && length > 0) {
      this.firstByteNs = nowNanos();
      setFilterState(keys.TTFT_MS, ((this.firstByteNs - this.startNs) / 1000000).toString());
    }
    if (this.resp == RESP_SSE) {
      const chunk = getBuffer(RESPONSE_BODY, 0, <u32>length);
      const sink = this.sink as StreamSink;
      const decoder = this.decoder as StreamDecoder;
      const events = (this.parser as SseParser).feed(changetype<usize>(chunk), chunk.byteLength);
      for (let i = 0; i < events.length; i++) decoder.event(events[i], sink);
      if (endOfStream) this.endStream();
      if (!this.native) {
        replaceBuffer(RESPONSE_BODY, <u32>length, sink.out.toArrayBuffer());
        sink.out.reset();
      } else if (endOfStream && !decoder.done) {
        // Native streams leave Envoy's buffer as it is (no copy); one cut short gets the client
        // format's error ending, appended.
        appendBuffer(RESPONSE_BODY, <u32>length, this.cutShortEnding());
      }
      return FilterDataStatusValues.Continue;
    }
    if (!endOfStream) return FilterDataStatusValues.StopIterationAndBuffer;
    this.finishResponse(getBuffer(RESPONSE_BODY, 0, <u32>length), <u32>length);
    return FilterDataStatusValues.Continue;
  }

  cutShortEnding(): ArrayBuffer {
    const e = ClientError.of(502, "The provider ended the stream early.", "api_error", "upstream_incomplete");
    const b = new ByteBuilder(160);
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

  endStream(): void {
    const sink = this.sink as StreamSink;
    const decoder = this.decoder as StreamDecoder;
    const rest = (this.parser as SseParser).finish();
    for (let i = 0; i < rest.length; i++) decoder.event(rest[i], sink);
    if (!decoder.done && !this.native) {
      // The provider's stream stopped without its terminal event: say so rather than pretend.
      sink.error(ClientError.of(502, "The provider ended the stream early.", "api_error", "upstream_incomplete"));
    }
    sink.end();
    this.responseChars = sink.generatedChars;
    this.record(decoder.usage, decoder.done);
  }

  /** A complete buffered body: translate the answer or the error and write the usage record. */
  finishResponse(body: ArrayBuffer, length: u32): void {
    const provider = this.provider as Provider;
    const parsed = body.byteLength ? parseJson(body) : null;
    const out = new ByteBuilder(body.byteLength + 256);
    if (this.resp == RESP_ERROR) {
      // A provider error already in the client's format passes through as the provider wrote it.
      if (this.native && this.client == CLIENT_ANTHROPIC && parsed !== null) {
        this.recordNothing();
        return;
      }
      let e = provider.error(this.status, parsed);
      if (parsed === null) e = this.transportError(body);
      if (this.client == CLIENT_ANTHROPIC) writeAnthropicError(e, out);
      else writeOpenAIError(e, out);
      this.recordNothing();
      replaceBuffer(RESPONSE_BODY, length, out.toArrayBuffer());
      return;
    }
    if (this.kind == EMBEDDINGS) {
      const usage = new Usage();
      if (parsed === null || !provider.embeddingsResponse(parsed as JsonValue, this.upstreamModel, out, usage)) {
        this.badAnswer(length);
        return;
      }
      this.record(usage, true);
      replaceBuffer(RESPONSE_BODY, length, out.toArrayBuffer());
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
      replayAsStream(result, sink);
      this.record(result.usage, true);
      replaceBuffer(RESPONSE_BODY, length, sink.out.toArrayBuffer());
      return;
    }
    this.record(result.usage, true);
    // An answer already in the client's format passes through untouched.
    if (this.native || (this.client == CLIENT_OPENAI && provider.speaksOpenAI)) return;
    if (this.client == CLIENT_ANTHROPIC) writeAnthropicMessage(result, out);
    else writeOpenAIChat(result, out);
    replaceBuffer(RESPONSE_BODY, length, out.toArrayBuffer());
  }

  /** Envoy's own plain-text answers (connect failure, timeout) as JSON errors. */
  transportError(body: ArrayBuffer): ClientError {
    const text = String.UTF8.decode(body);
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
      replaceBuffer(RESPONSE_BODY, length, sink.out.toArrayBuffer());
      return;
    }
    replaceHeader(RESPONSE_HEADERS, ":status", "502");
    const out = new ByteBuilder(128);
    if (this.client == CLIENT_ANTHROPIC) writeAnthropicError(e, out);
    else writeOpenAIError(e, out);
    this.recordNothing();
    replaceBuffer(RESPONSE_BODY, length, out.toArrayBuffer());
  }

  // ---------------------------------------------------------------------------------------------
  // The usage record

  /**
   * Writes the record once: the provider's numbers when the answer completed with them, else an
   * estimate of whatever is missing.
   */
  record(u: Usage, complete: bool): void {
    if (this.usageWritten) return;
    this.usageWritten = true;
    if (complete && u.present) {
      u.settle();
      this.publish(u.prompt, u.completion, u.total, u.cached, u.reasoning, "provider");
      return;
    }
    // Estimate only what the provider did not report (Anthropic reports the prompt at the start of
    // a stream; a cut stream never brings the completion count). A request that reached a provider
    // is never free.
    let prompt = u.prompt >= 0 ? u.prompt : this.promptEstimate;
    if (prompt <= 0) prompt = 1;
    const completion = u.completion >= 0 ? u.completion : estimateTokens(this.responseChars);
    this.publish(prompt, completion, prompt + completion, u.cached, u.reasoning, "estimate");
  }

  /** The usage record to filter state, and the request's metrics. */
  publish(prompt: i64, completion: i64, total: i64, cached: i64, reasoning: i64, source: string): void {
    writeUsageRecord(prompt, completion, total, cached, reasoning, source);
    const now = nowNanos();
    const ttft: i64 = this.firstByteNs > 0 ? <i64>((this.firstByteNs - this.startNs) / 1000000) : -1;
    const consumer = getFilterState(keys.CONSUMER);
    (this.root_context as AiProxyRoot).metrics.request(
      (this.provider as Provider).name, this.upstreamModel, consumer !== null ? consumer as string : "anonymous",
      this.stream ? "ai_stream" : "ai_chat", this.status, prompt, completion, ttft, <i64>((now - this.startNs) / 1000000),
    );
  }

  /** The provider refused or failed: it generated nothing, so nothing is charged. */
  recordNothing(): void {
    if (this.usageWritten) return;
    this.usageWritten = true;
    this.publish(0, 0, 0, 0, 0, "provider");
  }

  onDone(): bool {
    // The client hung up (or the upstream reset) before the answer finished: charge what was seen.
    if (this.kind != PASS && !this.replied && this.provider !== null && !this.usageWritten) {
      if (this.sink !== null) {
        this.responseChars = (this.sink as StreamSink).generatedChars;
        this.record((this.decoder as StreamDecoder).usage, false);
        return true;
      }
      this.record(new Usage(), false);
    }
    return true;
  }
}

registerRootContext((id: u32) => new AiProxyRoot(id), "ai-proxy");
