// What every provider translator implements, and the provider-neutral shapes they translate
// through. Requests travel as OpenAI chat-completions JSON (the client API most clients speak);
// responses and stream events travel as the neutral classes below, so each client format
// (OpenAI, Anthropic Messages) is written once, whatever provider answered.
import { JsonValue, ByteBuilder } from "../lib/json";
import { SseEvent } from "../lib/sse";
import { AwsCredentials } from "../lib/sigv4";

/** Token usage as one record, whatever the provider called the fields. -1 = not reported. */
export class Usage {
  prompt: i64 = -1;
  completion: i64 = -1;
  total: i64 = -1;
  cached: i64 = 0;
  reasoning: i64 = 0;
  /** Prompt tokens written to the provider's cache (Anthropic's cache_creation_input_tokens), inside prompt. */
  cacheWrite: i64 = 0;

  get present(): bool {
    return this.prompt >= 0 || this.completion >= 0;
  }

  /** Fills total from the parts when the provider left it out. */
  settle(): void {
    if (this.prompt < 0 && this.completion >= 0) this.prompt = 0;
    if (this.completion < 0 && this.prompt >= 0) this.completion = 0;
    if (this.total < 0 && this.present) this.total = this.prompt + this.completion;
  }
}

export class ToolCall {
  id: string = "";
  name: string = "";
  arguments: string = ""; // JSON text, as OpenAI carries it
}

export class Choice {
  index: i32 = 0;
  private text: string | null = null;
  /**
   * The text as the provider's bytes, when it came as one JSON string value: a writer copies it
   * (ByteBuilder.strValue) instead of decoding it to UTF-16 and encoding it back; content decodes
   * it on first use.
   */
  contentValue: JsonValue | null = null;

  /** The answer's text (null: none, as with only tool calls). */
  get content(): string | null {
    let t = this.text;
    if (t === null && this.contentValue !== null) this.text = t = (this.contentValue as JsonValue).s;
    return t;
  }
  set content(t: string | null) {
    this.text = t;
    this.contentValue = null;
  }

  /** Length of content in UTF-16 units (0 for none), without decoding it. */
  get contentUnits(): i32 {
    if (this.text === null && this.contentValue !== null) return (this.contentValue as JsonValue).units;
    const t = this.text;
    return t !== null ? t.length : 0;
  }

  /** Writes content as a JSON string, or null. */
  writeContent(b: ByteBuilder): void {
    if (this.text === null && this.contentValue !== null) b.strValue(this.contentValue as JsonValue);
    else if (this.text !== null) b.str(this.text as string);
    else b.raw("null");
  }
  reasoning: string | null = null;
  refusal: string | null = null;
  toolCalls: Array<ToolCall> = [];
  /** OpenAI's vocabulary: stop, length, tool_calls, content_filter; "" while unknown. */
  finishReason: string = "";
  /** The stop sequence that ended the turn, when the provider says (Anthropic clients want it). */
  stopSequence: string | null = null;
}

/** A complete (non-streamed) chat answer. */
export class ChatResult {
  id: string = "";
  model: string = "";
  created: i64 = 0;
  choices: Array<Choice> = [];
  usage: Usage = new Usage();
}

/** An error to return to the client, in the client's own format. */
export class ClientError {
  status: u32 = 400;
  message: string = "";
  /** OpenAI error type: invalid_request_error, authentication_error, rate_limit_error, ... */
  type: string = "invalid_request_error";
  code: string = "";
  param: string = "";

  static of(status: u32, message: string, type: string, code: string): ClientError {
    const e = new ClientError();
    e.status = status;
    e.message = message;
    e.type = type;
    e.code = code;
    return e;
  }
}

/**
 * What a client sees of a provider's error when the instance redacts them (redact_upstream_errors:
 * self-hosted servers put internal hostnames and addresses in their messages): the status and its
 * class, never the provider's message, type, code or param.
 */
export function redactedError(e: ClientError): ClientError {
  const server = e.status >= 500 || e.status < 400;
  const r = ClientError.of(e.status, "The provider returned " + (server ? "a server error (HTTP 5xx)" : "a client error (HTTP 4xx)") + ".",
    e.status == 429 ? "rate_limit_error" : server ? "api_error" : "invalid_request_error", "");
  return r;
}

/**
 * Receives a chat stream as neutral events and writes the client's wire format. One per stream;
 * a sink keeps only the little state its format needs (open blocks, indices), never the text.
 */
export abstract class StreamSink {
  /** Output bytes produced by the events since the last take(). */
  out: ByteBuilder = new ByteBuilder(512);
  /** Characters of generated text seen, for a usage estimate when the provider sends none. */
  generatedChars: i64 = 0;

  abstract start(id: string, model: string, created: i64): void;
  // Text arrives as parsed JSON strings: a sink that writes JSON copies their bytes as they came
  // (no decoding to UTF-16 and encoding back, the bulk of a streamed chunk's cost).
  abstract textValue(choice: i32, text: JsonValue): void;
  abstract reasoningValue(choice: i32, text: JsonValue): void;
  abstract refusalValue(choice: i32, text: JsonValue): void;
  /** A new tool call at position `tool` of the choice; arguments follow through toolArgs. */
  abstract toolStart(choice: i32, tool: i32, id: string, name: string): void;
  /** A piece of the tool call's arguments (JSON text, carried in a JSON string). */
  abstract toolArgsValue(choice: i32, tool: i32, json: JsonValue): void;

  text(choice: i32, text: string): void { this.textValue(choice, JsonValue.str(text)); }
  reasoning(choice: i32, text: string): void { this.reasoningValue(choice, JsonValue.str(text)); }
  refusal(choice: i32, text: string): void { this.refusalValue(choice, JsonValue.str(text)); }
  toolArgs(choice: i32, tool: i32, json: string): void { this.toolArgsValue(choice, tool, JsonValue.str(json)); }
  abstract finish(choice: i32, reason: string, stopSequence: string | null): void;
  abstract usage(u: Usage): void;
  /** The provider failed mid-stream: tell the client in its format and end cleanly. */
  abstract error(e: ClientError): void;
  /** End of the stream (data: [DONE] / message_stop). Idempotent. */
  abstract end(): void;

  /** The provider said it is still there (Anthropic's ping): an SSE comment keeps the client's connection alive. */
  keepAlive(): void {
    this.out.raw(": ping\n\n");
  }
}

/**
 * A sink that writes nothing: when the provider already speaks the client's format, the stream
 * passes through byte for byte and is only decoded for usage and the generated-text count.
 */
export class CountingSink extends StreamSink {
  // The stream's id, model and creation time, for a chunk the gateway adds (a usage chunk).
  id: string = "";
  model: string = "";
  created: i64 = 0;
  start(id: string, model: string, created: i64): void {
    this.id = id;
    this.model = model;
    this.created = created;
  }
  textValue(choice: i32, text: JsonValue): void { this.generatedChars += text.units; }
  reasoningValue(choice: i32, text: JsonValue): void { this.generatedChars += text.units; }
  refusalValue(choice: i32, text: JsonValue): void { this.generatedChars += text.units; }
  toolStart(choice: i32, tool: i32, id: string, name: string): void { this.generatedChars += name.length; }
  toolArgsValue(choice: i32, tool: i32, json: JsonValue): void { this.generatedChars += json.units; }
  finish(choice: i32, reason: string, stopSequence: string | null): void {}
  usage(u: Usage): void {}
  error(e: ClientError): void {}
  end(): void {}
  keepAlive(): void {}
}

/**
 * How a provider's answer must be read, as decided when its request was written (Provider.answerMode):
 * ANSWER_JSON_TOOL: the request forced a tool to get JSON (Chat response_format on a provider without
 * a JSON mode); the tool's input is the answer's content and the turn ends with finish_reason stop.
 */
export const ANSWER_PLAIN: i32 = 0;
export const ANSWER_JSON_TOOL: i32 = 1;

/** Decodes one provider's SSE events into sink calls. One per stream. */
export abstract class StreamDecoder {
  /** ANSWER_* of the request this stream answers (set before the first event). */
  mode: i32 = ANSWER_PLAIN;
  /** The usage seen so far (providers spread it over several events). */
  usage: Usage = new Usage();
  /** Set when the provider's stream carried its own terminal event. */
  done: bool = false;
  /** The stream ended on an error event and still owes an OpenAI client its data: [DONE]. */
  needsDone: bool = false;
  /** The instance redacts its provider's error messages (redact_upstream_errors). */
  redactErrors: bool = false;
  /** The model the request was sent to, for a stream that does not name it (Bedrock's). */
  model: string = "";

  /** A provider's error event as the client may see it. */
  providerError(e: ClientError): ClientError {
    return this.redactErrors ? redactedError(e) : e;
  }

  abstract event(e: SseEvent, sink: StreamSink): void;
}

// An instance's structured_output setting (Anthropic): how Chat response_format json_schema is served.
/** Decided by the model name (anthropic.ts hasStructuredOutputs). */
export const STRUCTURED_AUTO: i32 = 0;
/** The provider's own structured outputs (output_config.format). */
export const STRUCTURED_NATIVE: i32 = 1;
/** A forced tool whose input is the answer. */
export const STRUCTURED_TOOL: i32 = 2;

/** A provider instance from the configuration: where and how to reach one model deployment. */
export class Instance {
  name: string = "";
  provider: string = "";
  /** Upstream model; "" sends the client's model. */
  model: string = "";
  /** Client model -> upstream model, checked before `model`. */
  modelMap: Map<string, string> = new Map();
  /** Client models this instance serves (exact or ending in '*'); empty = any. */
  models: Array<string> = [];
  apiKey: string = "";
  scheme: string = "https";
  authority: string = "";
  basePath: string = "";
  cluster: string = "";
  /** Members merged into every request body (operator defaults, provider extras). */
  options: JsonValue | null = null;
  /** Forces max tokens (-1: leave as the client asked). */
  maxTokens: i64 = -1;
  apiVersion: string = "";
  deployment: string = "";
  /** Extra upstream headers, flat [name, value, ...]. */
  headers: Array<string> = [];
  /** Load balancing: share of traffic, priority group (0 = most preferred), price per million tokens. */
  weight: i32 = 1;
  priority: i32 = 0;
  priceIn: f64 = 0;
  priceOut: f64 = 0;
  /** STRUCTURED_*: how response_format json_schema reaches a provider that has two ways. */
  structuredOutput: i32 = STRUCTURED_AUTO;
  /** A key pool (api_keys): every key, the first also in apiKey; empty for one key. */
  keys: Array<string> = [];
  /** The keys' short ids (key-pool.ts keyId), for metrics and logs. */
  keyIds: Array<string> = [];
  /** AWS region a signed request is scoped to (Bedrock). */
  region: string = "";
  /** AWS credentials from the VM's environment, for a provider that signs (Bedrock); null otherwise. */
  aws: AwsCredentials | null = null;

  upstreamModel(requested: string): string {
    if (this.modelMap.has(requested)) return this.modelMap.get(requested);
    if (this.model.length) return this.model;
    return requested;
  }

  serves(requested: string): bool {
    if (this.models.length == 0) return true;
    for (let i = 0; i < this.models.length; i++) {
      const m = this.models[i];
      if (m.endsWith("*") ? requested.startsWith(m.substring(0, m.length - 1)) : m == requested) return true;
    }
    return this.modelMap.has(requested);
  }
}

// ---------------------------------------------------------------------------------------------
// Client-chosen model names on their way upstream: the one place that decides what may go.
//
// A model name travels in the JSON body (escaped there) for OpenAI, Anthropic, DeepSeek, Mistral
// and OpenAI-compatible servers, but it also lands in filter state, the access log and metric
// labels: there it must be 1..256 characters with no control character (CR/LF, NUL, ...).
// Azure OpenAI puts it in the path as the deployment (/deployments/{name}/...) and Gemini as the
// model resource (/models/{id}:generateContent): there it must be one path segment of
// A-Z a-z 0-9 . _ - (never "." or ".."), the characters both document for their ids (Azure
// deployment names: letters, digits, '.', '_', '-', at most 64; Gemini model and tuned-model ids:
// lower-case letters, digits, '-' and '.'), so nothing needs percent-encoding and '/', '?', '#',
// '%', spaces and controls never reach the URL. A name that breaks the rule is a 400 in the
// client's format and nothing goes upstream.

/** Longest model name accepted anywhere. */
export const MAX_MODEL_NAME: i32 = 256;

/** 1..256 characters, none of them a control character (U+0000-U+001F, U+007F-U+009F). */
export function isPlainModelName(name: string): bool {
  const n = name.length;
  if (n == 0 || n > MAX_MODEL_NAME) return false;
  for (let i = 0; i < n; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return false;
  }
  return true;
}

/** One URL path segment that needs no encoding: A-Z a-z 0-9 . _ -, 1..max characters, not "." or "..". */
export function isPathSegment(name: string, max: i32): bool {
  const n = name.length;
  if (n == 0 || n > max || name == "." || name == "..") return false;
  for (let i = 0; i < n; i++) {
    const c = name.charCodeAt(i);
    const ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x2e || c == 0x5f || c == 0x2d;
    if (!ok) return false;
  }
  return true;
}

/** The 400 for a model name the provider cannot take (the name itself is not echoed: it may be anything). */
export function invalidModel(why: string): ClientError {
  const e = ClientError.of(400, "'model' " + why + ".", "invalid_request_error", "invalid_model");
  e.param = "model";
  return e;
}

/** How a request leaves for the provider. */
export class Upstream {
  path: string = "";
  /** Headers to set, flat [name, value, ...], credentials included. */
  headers: Array<string> = [];
}

export abstract class Provider {
  abstract get name(): string;

  /** Its gen_ai.provider.name (OpenTelemetry's GenAI semantic conventions), for genai-metrics.ts. */
  abstract get genAiName(): string;

  /** True when the wire format is OpenAI's, so answers can pass through to OpenAI clients. */
  get speaksOpenAI(): bool { return false; }

  /** True when the wire format is Anthropic's Messages API (Anthropic clients pass through). */
  get speaksAnthropic(): bool { return false; }

  /** True when the wire format is Gemini's own generateContent API (Gemini clients pass through). */
  get speaksGemini(): bool { return false; }

  /**
   * The model goes in the URL and the body must not name it; the body names this Anthropic version
   * instead (Claude on Vertex AI); "" for the others.
   */
  get bodyAnthropicVersion(): string { return ""; }

  /** Anthropic's betas go in the body's anthropic_beta list, not a header (Bedrock's InvokeModel). */
  get betasInBody(): bool { return false; }

  /** The URL, not the body, says whether the answer streams (Bedrock's InvokeModel). */
  get streamInUrl(): bool { return false; }

  /** Each event of its binary event stream wraps the provider's own event, base64, in {"bytes"} (Bedrock's InvokeModel). */
  get wrappedEvents(): bool { return false; }

  /** The AWS service name its requests are signed for with SigV4 (lib/sigv4.ts), or "" (not signed). */
  get awsService(): string { return ""; }

  /** Its streams are AWS's binary event stream (lib/eventstream.ts), not server-sent events. */
  get eventStream(): bool { return false; }

  /** The body member that limits output tokens in this provider's own format. */
  get maxTokensField(): string { return "max_completion_tokens"; }

  /** Default base URL (scheme://authority/path) when the instance sets no endpoint. */
  abstract defaultEndpoint(): string;

  /**
   * Whether the upstream model name may go to this provider (see isPlainModelName): the 400 to
   * send, or null. Providers that put it in the URL check more.
   */
  modelError(inst: Instance, model: string): ClientError | null {
    return isPlainModelName(model) ? null : invalidModel("must be 1 to " + MAX_MODEL_NAME.toString() + " characters without control characters");
  }

  /** Path and headers (with the credential) for a chat request. */
  abstract chatUpstream(inst: Instance, model: string, stream: bool): Upstream;

  /**
   * Writes the provider's chat request body from an OpenAI-format request. Returns null when the
   * request cannot be served by this provider (e.g. a field it cannot take), with a 400.
   */
  abstract chatRequest(req: JsonValue, model: string, stream: bool, inst: Instance, out: ByteBuilder): ClientError | null;

  /**
   * How the answer to this request must be read (ANSWER_*), for a request chatRequest accepted:
   * the same request, model and instance give the same mode. Most providers read every answer alike.
   */
  answerMode(req: JsonValue, model: string, inst: Instance): i32 {
    return ANSWER_PLAIN;
  }

  /** Parses the provider's non-streamed chat answer (of a request with `mode`). Returns false if it is not one. */
  abstract chatResponse(body: JsonValue, out: ChatResult, mode: i32): bool;

  abstract streamDecoder(): StreamDecoder;

  /** Embeddings: path/headers, request body from OpenAI's format, and the answer into OpenAI's format. */
  embeddingsUpstream(inst: Instance, model: string): Upstream | null {
    return null;
  }

  embeddingsRequest(req: JsonValue, model: string, inst: Instance, out: ByteBuilder): ClientError | null {
    return ClientError.of(400, "Embeddings are not supported by provider " + this.name + ".", "invalid_request_error", "unsupported_endpoint");
  }

  /** Writes OpenAI's embeddings answer; fills usage. False if the body is not an answer. */
  embeddingsResponse(body: JsonValue, model: string, out: ByteBuilder, usage: Usage): bool {
    return false;
  }

  /**
   * Path and headers for the provider's own Responses API (POST /v1/responses), for a provider
   * that has it (OpenAI, Azure OpenAI); null: Responses clients are translated to its chat API.
   */
  responsesUpstream(inst: Instance, model: string): Upstream | null {
    return null;
  }

  /** The model a Responses request names in its body (Azure: the deployment). */
  responsesModel(inst: Instance, model: string): string {
    return model;
  }

  /**
   * Path and headers for Anthropic's token counting (POST /v1/messages/count_tokens), for a
   * provider that has it; null: the gateway answers with its own estimate.
   */
  countTokensUpstream(inst: Instance, model: string): Upstream | null {
    return null;
  }

  /**
   * The vectors of an embeddings answer in input order, read from the provider's parsed answer
   * (each a JSON array of numbers, kept as it came), with its usage; null when it is not one.
   * OpenAI's shape ({"data":[{"index","embedding"}],"usage"}) by default. A client API other than
   * OpenAI's writes its own shape from these (ai-proxy's client-gemini.ts).
   */
  embeddingVectors(body: JsonValue, usage: Usage): Array<JsonValue> | null {
    const data = body.isObject() ? body.get("data") : null;
    if (data === null || !data.isArray()) return null;
    const out = new Array<JsonValue>(data.length);
    for (let i = 0; i < data.length; i++) {
      const d = data.at(i);
      const v = d.isObject() ? d.get("embedding") : null;
      const idx = d.isObject() ? d.get("index") : null;
      const at = idx !== null && idx.isInteger() && idx.n >= 0 && idx.n < <f64>data.length ? <i32>idx.n : i;
      if (v === null || !v.isArray()) return null;
      out[at] = v;
    }
    for (let i = 0; i < out.length; i++) if (changetype<usize>(out[i]) == 0) return null;
    const u = body.get("usage");
    if (u !== null && u.isObject()) {
      const pt = u.get("prompt_tokens");
      if (pt !== null && pt.isInteger() && pt.n >= 0) {
        usage.prompt = <i64>pt.n;
        usage.completion = 0;
        usage.total = <i64>pt.n;
      }
    }
    return out;
  }

  /** Path and headers of one of the provider's own methods (Gemini's embedContent, ...), or null. */
  nativeUpstream(inst: Instance, model: string, method: string): Upstream | null {
    return null;
  }

  /** The path an active health check GETs: a cheap listing that needs the credential. */
  probePath(inst: Instance): string {
    return inst.basePath + "/models";
  }

  /** Maps a provider error (status and parsed body, if JSON) to the client-facing error. */
  abstract error(status: u32, body: JsonValue | null): ClientError;
}
