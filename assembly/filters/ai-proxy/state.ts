// The per-request state of ai-proxy: one Exchange per HTTP stream, read and written by the jobs
// (request.ts, selection.ts, outcome.ts, fallback.ts, answer.ts, stream.ts, record.ts), which are
// plain functions of it; context.ts (the callbacks) extends it. Nothing here imports a job, so the
// order is one way: state, then the jobs, then the context and the root.
import { Context, RootContext, replaceBufferBytes, nowNanos, getFilterState } from "../../lib/sdk";
import { KEY_ID } from "../../lib/keys";
import { JsonValue, ByteBuilder } from "../../lib/json";
import { EventStreamReader } from "../../lib/eventstream";
import { TokenSource } from "../../lib/oauth-token";
import { SseParser } from "../../lib/sse";
import { ClientError, CountingSink, Instance, Provider, StreamDecoder, StreamSink, Usage } from "../../providers/types";
import { Settings } from "./config";
import { Metrics } from "./metrics";
import { GenAiMetrics } from "./genai-metrics";
import { Pool } from "./balancer";
import { HealthState } from "./health";
import { CLIENT_OPENAI, streamContentType, writeClientError } from "./client";
import { ResponseKeeper } from "./responses-store";

// What the client asked for.
export const PASS: i32 = 0; // not an AI API: untouched
export const CHAT: i32 = 1;
export const EMBEDDINGS: i32 = 2;
export const COUNT_TOKENS: i32 = 3; // POST /v1/messages/count_tokens (count-tokens.ts)

// How the response body is handled.
export const RESP_NONE: i32 = 0;
export const RESP_JSON: i32 = 1; // buffered answer, translated at the end
export const RESP_SSE: i32 = 2; // translated chunk by chunk
export const RESP_ERROR: i32 = 3; // provider error, buffered and translated
export const RESP_REPLAY: i32 = 4; // a stream was asked for but a JSON answer came: replayed as a stream
export const RESP_FALLBACK: i32 = 5; // the instance failed before any byte reached the client: trying another

// Request headers targeting removes, when the request has them.
export const HAS_CONTENT_LENGTH: i32 = 1;
export const HAS_ACCEPT_ENCODING: i32 = 2;
export const HAS_AUTHORIZATION: i32 = 4;
export const HAS_X_API_KEY: i32 = 8;
export const HAS_API_KEY: i32 = 16;
export const HAS_GOOG_KEY: i32 = 32;

/** The plugin's metrics, one set per VM (health reports run outside any request, too). */
export const proxyMetrics: Metrics = new Metrics();
/** The same requests under OpenTelemetry's GenAI semantic conventions. */
export const genAiMetrics: GenAiMetrics = new GenAiMetrics(proxyMetrics);

/** What a request reads of its root context (root.ts's AiProxyRoot is one). */
export class ProxyRoot extends RootContext {
  settings: Settings | null = null;
  metrics: Metrics = proxyMetrics;
  /**
   * Implicit pools (the instances serving a model) remembered per plugin; model names come from
   * clients, so the cache is bounded (selection.ts).
   */
  implicitPools: Map<string, Pool> = new Map();
  /** Each instance's access token source (upstream-token.ts), parallel to the instances; null: none. */
  tokens: Array<TokenSource | null> = [];
}

// Shared defaults, so a context allocates nothing it may never use (only read, never written).
const NO_HEALTH = new HealthState();
export const NO_BODY = new ArrayBuffer(0);
export const NO_USAGE = zeroUsage();

function zeroUsage(): Usage {
  const u = new Usage();
  u.prompt = u.completion = u.total = 0;
  return u;
}

export function nowMs(): i64 {
  return <i64>(nowNanos() / 1000000);
}

/** Replaces a body with a builder's bytes, straight from its buffer (no copy into a new one). */
export function replaceBody(type: i32, currentLength: u32, b: ByteBuilder): void {
  replaceBufferBytes(type, currentLength, changetype<usize>(b.buf), b.len);
}

export class Exchange extends Context {
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
  /** Gemini clients name the model in the path (lib/path.ts geminiRoute), percent-decoded. */
  pathModel: string = "";
  /** What of the client's request only its own provider takes (client-anthropic.ts Converted). */
  untranslatable: ClientError | null = null;
  /** The Gemini method of the path (generateContent, embedContent, ...); "" for other clients. */
  geminiMethod: string = "";
  /** A Gemini stream framed as one JSON array (streamGenerateContent without alt=sse). */
  geminiArray: bool = false;
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
  /** The reader of a provider's binary event stream (Bedrock's), in place of the SSE parser. */
  frames: EventStreamReader | null = null;
  /**
   * A native stream whose events came wrapped in the provider's framing (Anthropic's on Bedrock,
   * base64 in event-stream chunks): the client's SSE, written from the unwrapped events.
   */
  unwrapped: ByteBuilder | null = null;
  /** The client's anthropic-beta header (several joined with ","), for a provider that takes betas in the body. */
  anthropicBeta: string = "";
  decoder: StreamDecoder | null = null;
  sink: StreamSink | null = null;
  /** The key of the instance's pool this request took (key-pool.ts); -1: the instance has one key. */
  keyIndex: i32 = -1;
  /** The largest answer ai-cache keeps of this request (capture.ts); -1: it keeps none. */
  captureCap: i64 = -1;
  usageWritten: bool = false;
  /** How the provider's answer is read (ANSWER_*: provider.answerMode of the request sent). */
  answerMode: i32 = 0;
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
  /** The request body's length (a fallback's body is sized from it). */
  bodyLen: i64 = 0;
  /** Seconds a 503 without an available instance tells the client to wait (retry-after). */
  retryAfterS: i64 = 0;
  /** The methods a 405 names in its allow header. */
  allow: string = "";
  // The held failure a fallback replaces (fallback.ts).
  lastCause: string = "";
  lastStatus: u32 = 0;
  lastErrorBody: ArrayBuffer = NO_BODY;
  /**
   * The instances that failed before the one that answered, as "name:cause,..." in filter state
   * (sluice.fallback_from, in the access log). Envoy's response_code_details keeps naming the first
   * attempt's failure after a fallback: a filter cannot set it (proxy-wasm's set_property writes
   * filter state only, Envoy's source/extensions/common/wasm/context.cc Context::setProperty), and
   * the answer reaches the client through the original stream, whose details the router set.
   */
  failedFrom: string = "";
  tooBig: bool = false;
  // The provider sent a stream event past max_stream_event_bytes: the client's stream has ended.
  eventTooLarge: bool = false;
  /** The usage the record holds (what record() returned). */
  recorded: Usage = NO_USAGE;
  /** A translated Responses answer is stored through this (responses-store.ts); null: not stored. */
  keeper: ResponseKeeper | null = null;

  constructor(id: u32, root: ProxyRoot) {
    super(id, root);
  }

  get proxyRoot(): ProxyRoot {
    return this.root_context as ProxyRoot;
  }

  get settings(): Settings {
    return (this.root_context as ProxyRoot).settings as Settings;
  }

  /** ai_chat, ai_stream, ai_embeddings or ai_count_tokens: the request_type of the usage record and metrics. */
  requestType(): string {
    if (this.kind == EMBEDDINGS) return "ai_embeddings";
    if (this.kind == COUNT_TOKENS) return "ai_count_tokens";
    return this.stream ? "ai_stream" : "ai_chat";
  }

  /** key-auth's sluice.key_id, read once per request: "" when the key is not a virtual key. */
  private keyId: string | null = null;

  /**
   * The virtual key's id, or "". Scopes, the team and the key label all hang off it, so a request
   * without a virtual key costs one filter-state read for all three.
   */
  virtualKey(): string {
    const known = this.keyId;
    if (known !== null) return known;
    const v = getFilterState(KEY_ID);
    const id = v === null ? "" : v as string;
    this.keyId = id;
    return id;
  }

  /** The instance's provider error messages stay from clients (redact_upstream_errors). */
  redacts(): bool {
    return this.instIndex >= 0 && this.settings.redactErrors[this.instIndex];
  }

  /** The media type of this request's stream in the client's API. */
  streamType(): string {
    return streamContentType(this.client, this.geminiArray);
  }

  /** e as the client's API writes errors. */
  writeError(e: ClientError, out: ByteBuilder): void {
    writeClientError(this.client, e, out);
  }
}
