// The answer ai-cache asked to keep (docs/cache.md): when ai-cache sent a request on as a miss it set
// sluice.cache_capture (the largest answer it keeps), and this writes the complete answer to
// sluice.cache_answer as OpenAI's chat.completion with the recorded usage, for ai-cache to store
// when the response ends. A whole answer is written from the result already read; a stream is
// gathered by CaptureSink, which sits in front of the client's sink (or in place of the counting
// one) and keeps what the provider's events said, until the stream ends with the provider's own
// terminal event; an instance's own Responses stream, from the finished Response its last event
// carries (responses-native.ts responseResult). Nothing is written for an answer that failed, was
// cut or stopped early, or is larger than the cap (that is written empty).
import { setFilterStateBytes, getFilterState } from "../../lib/sdk";
import { ByteBuilder, JsonValue } from "../../lib/json";
import * as keys from "../../lib/keys";
import { ChatResult, Choice, ClientError, CountingSink, StreamSink, ToolCall, Usage } from "../../providers/types";
import { writeOpenAIChat } from "./client-openai";
import { ResponsesNativeDecoder, responseResult } from "./responses-native";
import { Exchange } from "./state";

/** The cap ai-cache set for this request, or -1 when it keeps nothing of it. */
export function captureCap(): i64 {
  const v = getFilterState(keys.CACHE_CAPTURE);
  if (v === null || (v as string).length == 0) return -1;
  return I64.parseInt(v as string);
}

/** A whole answer, read: written for ai-cache with the usage recorded for it. */
export function captureResult(x: Exchange, result: ChatResult, recorded: Usage): void {
  if (x.captureCap <= 0) return;
  const saved = result.usage;
  result.usage = recorded;
  const out = new ByteBuilder(512);
  writeOpenAIChat(result, out);
  result.usage = saved;
  // An answer past the cap is written empty: ai-cache counts it as too large, not as unfinished.
  setFilterStateBytes(keys.CACHE_ANSWER, changetype<usize>(out.buf), <i64>out.len <= x.captureCap ? out.len : 0);
}

/**
 * The sink a stream gets when its answer may be kept: inner (the client's writer), gathered. An
 * instance's own Responses stream is not gathered: its decoder keeps the finished Response instead.
 */
export function captureSink(x: Exchange, inner: StreamSink | null): StreamSink {
  const responses = x.decoder instanceof ResponsesNativeDecoder;
  if (responses && x.captureCap > 0) (x.decoder as ResponsesNativeDecoder).keepFinal = true;
  if (x.captureCap <= 0 || responses) return inner !== null ? inner : new CountingSink();
  return new CaptureSink(inner, x.captureCap);
}

/** The stream ended with the provider's terminal event and nothing cut or failed: written for ai-cache. */
export function captureStream(x: Exchange, recorded: Usage): void {
  if (x.decoder instanceof ResponsesNativeDecoder) {
    const final = (x.decoder as ResponsesNativeDecoder).final;
    const r = final !== null && !x.cut ? responseResult(final as JsonValue) : null;
    if (r !== null) captureResult(x, r as ChatResult, recorded);
    return;
  }
  if (!(x.sink instanceof CaptureSink)) return;
  const c = x.sink as CaptureSink;
  if (c.failed || x.cut) return;
  if (c.tooLarge) {
    setFilterStateBytes(keys.CACHE_ANSWER, 0, 0);
    return;
  }
  const r = c.result();
  if (r !== null) captureResult(x, r as ChatResult, recorded);
}

/**
 * Forwards every event to the client's sink (none for a stream that passes through as it came) and
 * keeps the answer they make, up to cap bytes of text. A CountingSink, so code that reads the
 * stream's id, model and creation time from the counting sink finds them here.
 */
export class CaptureSink extends CountingSink {
  inner: StreamSink | null;
  cap: i64;
  kept: i64 = 0;
  failed: bool = false;
  tooLarge: bool = false;
  choices: Array<Choice> = [];
  // Each choice's pieces, joined once at the end (appending to a string would copy it per event).
  texts: Array<Array<string>> = [];
  reasonings: Array<Array<string>> = [];
  refusals: Array<Array<string>> = [];
  args: Array<Array<Array<string>>> = [];

  constructor(inner: StreamSink | null, cap: i64) {
    super();
    this.inner = inner;
    this.cap = cap;
    if (inner !== null) this.out = (inner as StreamSink).out;
  }

  /** Where choice i is kept, or -1 past 16 choices. */
  slot(i: i32): i32 {
    for (let k = 0; k < this.choices.length; k++) if (this.choices[k].index == i) return k;
    if (this.choices.length >= 16) {
      this.tooLarge = true;
      return -1;
    }
    const c = new Choice();
    c.index = i;
    this.choices.push(c);
    this.texts.push([]);
    this.reasonings.push([]);
    this.refusals.push([]);
    this.args.push([]);
    return this.choices.length - 1;
  }

  /** Counts n more characters kept; false once past the cap (then nothing more is kept). */
  room(n: i64): bool {
    this.kept += n;
    if (this.kept > this.cap) this.tooLarge = true;
    return !this.tooLarge;
  }

  /** The generated-text count the stream code reads: the client's sink's, when there is one. */
  sync(): void {
    if (this.inner !== null) this.generatedChars = (this.inner as StreamSink).generatedChars;
  }

  start(id: string, model: string, created: i64): void {
    super.start(id, model, created);
    if (this.inner !== null) (this.inner as StreamSink).start(id, model, created);
  }

  textValue(choice: i32, text: JsonValue): void {
    super.textValue(choice, text);
    if (this.inner !== null) (this.inner as StreamSink).textValue(choice, text);
    this.sync();
    const k = this.slot(choice);
    if (k >= 0 && this.room(text.units)) this.texts[k].push(text.s);
  }

  reasoningValue(choice: i32, text: JsonValue): void {
    super.reasoningValue(choice, text);
    if (this.inner !== null) (this.inner as StreamSink).reasoningValue(choice, text);
    this.sync();
    const k = this.slot(choice);
    if (k >= 0 && this.room(text.units)) this.reasonings[k].push(text.s);
  }

  refusalValue(choice: i32, text: JsonValue): void {
    super.refusalValue(choice, text);
    if (this.inner !== null) (this.inner as StreamSink).refusalValue(choice, text);
    this.sync();
    const k = this.slot(choice);
    if (k >= 0 && this.room(text.units)) this.refusals[k].push(text.s);
  }

  toolStart(choice: i32, tool: i32, id: string, name: string): void {
    super.toolStart(choice, tool, id, name);
    if (this.inner !== null) (this.inner as StreamSink).toolStart(choice, tool, id, name);
    this.sync();
    const k = this.slot(choice);
    if (k < 0 || !this.room(<i64>(id.length + name.length))) return;
    const c = this.choices[k];
    if (tool != c.toolCalls.length || tool >= 128) {
      this.tooLarge = true;
      return;
    }
    const t = new ToolCall();
    t.id = id;
    t.name = name;
    c.toolCalls.push(t);
    this.args[k].push([]);
  }

  toolArgsValue(choice: i32, tool: i32, json: JsonValue): void {
    super.toolArgsValue(choice, tool, json);
    if (this.inner !== null) (this.inner as StreamSink).toolArgsValue(choice, tool, json);
    this.sync();
    const k = this.slot(choice);
    if (k < 0 || !this.room(json.units)) return;
    if (tool < 0 || tool >= this.args[k].length) {
      this.tooLarge = true;
      return;
    }
    this.args[k][tool].push(json.s);
  }

  finish(choice: i32, reason: string, stopSequence: string | null): void {
    if (this.inner !== null) (this.inner as StreamSink).finish(choice, reason, stopSequence);
    const k = this.slot(choice);
    if (k < 0) return;
    this.choices[k].finishReason = reason;
    this.choices[k].stopSequence = stopSequence;
  }

  usage(u: Usage): void {
    if (this.inner !== null) (this.inner as StreamSink).usage(u);
  }

  error(e: ClientError): void {
    this.failed = true;
    if (this.inner !== null) (this.inner as StreamSink).error(e);
  }

  end(): void {
    if (this.inner !== null) (this.inner as StreamSink).end();
  }

  keepAlive(): void {
    if (this.inner !== null) (this.inner as StreamSink).keepAlive();
  }

  /** The answer the stream made, or null when a choice never finished. */
  result(): ChatResult | null {
    if (this.choices.length == 0) return null;
    const r = new ChatResult();
    r.id = this.id;
    r.model = this.model;
    r.created = this.created;
    for (let k = 0; k < this.choices.length; k++) {
      const c = this.choices[k];
      if (c.finishReason.length == 0) return null;
      if (this.texts[k].length) c.content = this.texts[k].join("");
      if (this.reasonings[k].length) c.reasoning = this.reasonings[k].join("");
      if (this.refusals[k].length) c.refusal = this.refusals[k].join("");
      for (let t = 0; t < c.toolCalls.length; t++) c.toolCalls[t].arguments = this.args[k][t].join("");
    }
    r.choices = this.choices;
    return r;
  }
}
