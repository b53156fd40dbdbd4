// The OpenAI client API: answers, stream chunks and errors written in OpenAI's format, whatever
// provider produced them.
import { ByteBuilder, JsonValue } from "../../lib/json";
import { ChatResult, Choice, ClientError, StreamSink, Usage } from "../../providers/types";
import { estimatedUsage } from "./estimate";
import { writeOpenAIErrorJson } from "../../lib/errors";

export function writeOpenAIUsage(b: ByteBuilder, u: Usage): void {
  b.raw('{"prompt_tokens":').int(u.prompt < 0 ? 0 : u.prompt);
  b.raw(',"completion_tokens":').int(u.completion < 0 ? 0 : u.completion);
  b.raw(',"total_tokens":').int(u.total < 0 ? 0 : u.total);
  b.raw(',"prompt_tokens_details":{"cached_tokens":').int(u.cached);
  b.raw('},"completion_tokens_details":{"reasoning_tokens":').int(u.reasoning);
  b.raw("}}");
}

function writeChoiceMessage(b: ByteBuilder, c: Choice): void {
  b.raw('{"role":"assistant","content":');
  c.writeContent(b);
  if (c.reasoning !== null) b.raw(',"reasoning_content":').str(c.reasoning as string);
  b.raw(',"refusal":');
  if (c.refusal !== null) b.str(c.refusal as string);
  else b.raw("null");
  if (c.toolCalls.length) {
    b.raw(',"tool_calls":[');
    for (let i = 0; i < c.toolCalls.length; i++) {
      const t = c.toolCalls[i];
      if (i) b.byte(0x2c);
      b.raw('{"id":').str(t.id).raw(',"type":"function","function":{"name":').str(t.name);
      b.raw(',"arguments":').str(t.arguments).raw("}}");
    }
    b.byte(0x5d);
  }
  b.byte(0x7d);
}

/** A chat.completion body from a neutral result. */
export function writeOpenAIChat(r: ChatResult, b: ByteBuilder): void {
  b.raw('{"id":').str(r.id).raw(',"object":"chat.completion","created":').int(r.created);
  b.raw(',"model":').str(r.model).raw(',"choices":[');
  for (let i = 0; i < r.choices.length; i++) {
    const c = r.choices[i];
    if (i) b.byte(0x2c);
    b.raw('{"index":').int(c.index).raw(',"message":');
    writeChoiceMessage(b, c);
    b.raw(',"logprobs":null,"finish_reason":');
    if (c.finishReason.length) b.str(c.finishReason);
    else b.raw("null");
    b.byte(0x7d);
  }
  b.raw('],"usage":');
  writeOpenAIUsage(b, r.usage);
  b.byte(0x7d);
}

export function writeOpenAIError(e: ClientError, b: ByteBuilder): void {
  writeOpenAIErrorJson(b, e.message, e.type, e.param, e.code);
}

/**
 * Writes chat.completion.chunk events. Usage goes out once, at the end, in its own chunk with
 * empty choices, as OpenAI does, and only when the client asked for it (stream_options) — then
 * always: ai-proxy hands the sink the usage it records before the end; a stream that ends without
 * (a fallback's replay) gets the provider's usage, or an estimate from the prompt estimate and the
 * text written, like the usage record's.
 */
// Written around every streamed delta: encoded once.
const DELTA_OPEN = String.UTF8.encode(',"delta":{');
const CHUNK_CLOSE = String.UTF8.encode('},"logprobs":null,"finish_reason":null}]}\n\n');

export class OpenAIStreamSink extends StreamSink {
  id: string = "";
  model: string = "";
  created: i64 = 0;
  includeUsage: bool;
  ended: bool = false;
  failed: bool = false;
  lastUsage: Usage | null = null;
  // Choices that have had their first delta (which carries the role).
  roleSent: Array<i32> = [];

  promptEstimate: i64;

  constructor(includeUsage: bool, promptEstimate: i64) {
    super();
    this.includeUsage = includeUsage;
    this.promptEstimate = promptEstimate;
  }

  // `data: {"id":…,"object":"chat.completion.chunk","created":…,"model":…,"choices":[{"index":`,
  // the same for every chunk of the stream: written once, copied per chunk.
  private prefix: ArrayBuffer | null = null;

  start(id: string, model: string, created: i64): void {
    this.id = id;
    this.model = model;
    this.created = created;
    this.prefix = null;
  }

  private chunkPrefix(): ArrayBuffer {
    let p = this.prefix;
    if (p === null) {
      const b = new ByteBuilder(128 + this.id.length + this.model.length);
      b.raw('data: {"id":').str(this.id).raw(',"object":"chat.completion.chunk","created":').int(this.created);
      b.raw(',"model":').str(this.model).raw(',"choices":[{"index":');
      p = b.toArrayBuffer();
      this.prefix = p;
    }
    return p;
  }

  /** Opens a chunk for the choice; returns true when it already wrote a member (the role). */
  private open(choice: i32): bool {
    const b = this.out;
    b.buffer(this.chunkPrefix()).int(choice).buffer(DELTA_OPEN);
    if (this.roleSent.includes(choice)) return false;
    this.roleSent.push(choice);
    b.raw('"role":"assistant"');
    return true;
  }

  private close(finish: string | null): void {
    const b = this.out;
    if (finish === null) {
      b.buffer(CHUNK_CLOSE);
      return;
    }
    b.raw('},"logprobs":null,"finish_reason":').str(finish as string).raw("}]}\n\n");
  }

  private delta(choice: i32, field: string, text: JsonValue): void {
    if (this.ended) return;
    this.generatedChars += text.units;
    if (this.open(choice)) this.out.byte(0x2c);
    this.out.byte(0x22).raw(field).byte(0x22).byte(0x3a).strValue(text);
    this.close(null);
  }

  textValue(choice: i32, text: JsonValue): void { this.delta(choice, "content", text); }
  reasoningValue(choice: i32, text: JsonValue): void { this.delta(choice, "reasoning_content", text); }
  refusalValue(choice: i32, text: JsonValue): void { this.delta(choice, "refusal", text); }

  toolStart(choice: i32, tool: i32, id: string, name: string): void {
    if (this.ended) return;
    this.generatedChars += name.length;
    if (this.open(choice)) this.out.byte(0x2c);
    this.out.raw('"tool_calls":[{"index":').int(tool).raw(',"id":').str(id);
    this.out.raw(',"type":"function","function":{"name":').str(name).raw(',"arguments":""}}]');
    this.close(null);
  }

  toolArgsValue(choice: i32, tool: i32, json: JsonValue): void {
    if (this.ended) return;
    this.generatedChars += json.units;
    if (this.open(choice)) this.out.byte(0x2c);
    this.out.raw('"tool_calls":[{"index":').int(tool).raw(',"function":{"arguments":').strValue(json).raw("}}]");
    this.close(null);
  }

  finish(choice: i32, reason: string, stopSequence: string | null): void {
    if (this.ended) return;
    this.open(choice);
    this.close(reason);
  }

  usage(u: Usage): void {
    this.lastUsage = u;
  }

  error(e: ClientError): void {
    if (this.ended) return;
    this.out.raw("data: ");
    writeOpenAIError(e, this.out);
    this.out.raw("\n\n");
    this.failed = true;
    this.end();
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    // After an error event a client reads no further (the SDKs throw there): no usage chunk.
    if (this.includeUsage && !this.failed) {
      let u = this.lastUsage;
      if (u === null || u.prompt < 0 || u.completion < 0) u = estimatedUsage(u, this.promptEstimate, this.generatedChars);
      writeOpenAIUsageChunk(this.out, this.id, this.model, this.created, u);
    }
    this.out.raw("data: [DONE]\n\n");
  }
}

/** The usage chunk: `data: {...,"choices":[],"usage":{...}}`, as OpenAI sends it before [DONE]. */
export function writeOpenAIUsageChunk(b: ByteBuilder, id: string, model: string, created: i64, u: Usage): void {
  u.settle();
  b.raw('data: {"id":').str(id).raw(',"object":"chat.completion.chunk","created":').int(created);
  b.raw(',"model":').str(model).raw(',"choices":[],"usage":');
  writeOpenAIUsage(b, u);
  b.raw("}\n\n");
}
