// Gemini's own client API, the answer side (client-gemini.ts reads the requests): whole answers and
// streams written in Gemini's shapes from the neutral ChatResult and stream events.
// Answers: ChatResult -> GenerateContentResponse {candidates[{content{role model, parts}, finishReason,
//   index}], usageMetadata{promptTokenCount, candidatesTokenCount, thoughtsTokenCount,
//   cachedContentTokenCount, totalTokenCount}, modelVersion, responseId}. Reasoning -> a part with
//   thought: true first; tool calls -> functionCall {name, args, id}. finishReason: stop/tool_calls ->
//   STOP, length -> MAX_TOKENS, content_filter -> SAFETY. Gemini counts thoughts apart from the
//   candidates' tokens, OpenAI inside completion_tokens: candidatesTokenCount = completion - reasoning.
// Streams: each event is a GenerateContentResponse with the new parts only, the last with the
//   finishReason and usageMetadata; as SSE (`data: {...}`, alt=sse) or, without alt=sse, as one JSON
//   array written element by element ("[{...}", ",\r\n{...}", "]"). Function calls go out whole, as
//   Gemini sends them: their arguments are held until the call is complete (bounded).
import { JsonValue, ByteBuilder, parseJsonString } from "../../lib/json";
import { ChatResult, ClientError, StreamSink, Usage } from "../../providers/types";
import { estimatedUsage } from "./estimate";
import { writeGeminiError } from "./client-gemini";

/** A tool call's arguments held for a Gemini stream: past this, the stream ends in an error. */
const MAX_HELD_ARGS: i32 = 4 * 1024 * 1024;

function finishReason(finish: string): string {
  if (finish == "length") return "MAX_TOKENS";
  if (finish == "content_filter") return "SAFETY";
  return "STOP";
}

/** usageMetadata from a neutral usage (settled). */
function writeUsageMetadata(b: ByteBuilder, u: Usage): void {
  const prompt = u.prompt < 0 ? 0 : u.prompt;
  const completion = u.completion < 0 ? 0 : u.completion;
  const thoughts = u.reasoning > completion ? completion : u.reasoning;
  b.raw('{"promptTokenCount":').int(prompt).raw(',"candidatesTokenCount":').int(completion - thoughts);
  if (thoughts > 0) b.raw(',"thoughtsTokenCount":').int(thoughts);
  if (u.cached > 0) b.raw(',"cachedContentTokenCount":').int(u.cached > prompt ? prompt : u.cached);
  b.raw(',"totalTokenCount":').int(prompt + completion).byte(0x7d);
}

function writeFunctionCall(b: ByteBuilder, id: string, name: string, args: string): void {
  b.raw('{"functionCall":{"id":').str(id).raw(',"name":').str(name).raw(',"args":');
  const parsed = parseJsonString(args.length ? args : "{}");
  if (parsed !== null && parsed.isObject()) b.value(parsed);
  else b.raw("{}");
  b.raw("}}");
}

/** A GenerateContentResponse from a neutral result: one candidate per choice. */
export function writeGeminiResponse(r: ChatResult, b: ByteBuilder): void {
  b.raw('{"candidates":[');
  for (let i = 0; i < r.choices.length; i++) {
    const c = r.choices[i];
    if (i) b.byte(0x2c);
    b.raw('{"content":{"role":"model","parts":[');
    let n = 0;
    if (c.reasoning !== null && (c.reasoning as string).length) {
      b.raw('{"text":').str(c.reasoning as string).raw(',"thought":true}');
      n++;
    }
    let text: string | null = c.content;
    if (text === null && c.refusal !== null) text = c.refusal;
    if (text !== null && (text as string).length) {
      if (n++) b.byte(0x2c);
      b.raw('{"text":').str(text as string).byte(0x7d);
    }
    for (let t = 0; t < c.toolCalls.length; t++) {
      if (n++) b.byte(0x2c);
      writeFunctionCall(b, c.toolCalls[t].id, c.toolCalls[t].name, c.toolCalls[t].arguments);
    }
    b.raw(']},"finishReason":').str(finishReason(c.finishReason)).raw(',"index":').int(<i64>c.index).byte(0x7d);
  }
  b.raw('],"usageMetadata":');
  r.usage.settle();
  writeUsageMetadata(b, r.usage);
  b.raw(',"modelVersion":').str(r.model).raw(',"responseId":').str(r.id).byte(0x7d);
}

/**
 * Gemini's stream: one GenerateContentResponse per event with the new parts, the finish reasons and
 * the usage on the last. `array`: the JSON-array framing of streamGenerateContent without alt=sse.
 */
export class GeminiStreamSink extends StreamSink {
  id: string = "";
  model: string = "";
  array: bool;
  promptEstimate: i64;
  started: bool = false;
  ended: bool = false;
  lastUsage: Usage = new Usage();
  finishes: Array<string> = [];
  // The tool call being assembled (Gemini sends calls whole).
  toolChoice: i32 = -1;
  toolIndex: i32 = -1;
  toolId: string = "";
  toolName: string = "";
  heldArgs: ByteBuilder | null = null;
  tooLarge: bool = false;

  constructor(promptEstimate: i64, array: bool) {
    super();
    this.promptEstimate = promptEstimate;
    this.array = array;
  }

  start(id: string, model: string, created: i64): void {
    this.id = id;
    this.model = model;
  }

  /** Opens one event: a JSON array element or an SSE data line. */
  private open(): ByteBuilder {
    const b = this.out;
    if (this.array) b.raw(this.started ? ",\r\n" : "[");
    else b.raw("data: ");
    this.started = true;
    return b;
  }

  private close(): void {
    if (!this.array) this.out.raw("\r\n\r\n");
  }

  private tail(): void {
    this.out.raw(',"modelVersion":').str(this.model).raw(',"responseId":').str(this.id).byte(0x7d);
    this.close();
  }

  private partEvent(choice: i32): ByteBuilder {
    return this.open().raw('{"candidates":[{"content":{"role":"model","parts":[');
  }

  private endPartEvent(choice: i32): void {
    this.out.raw(']},"index":').int(<i64>choice).raw("}]");
    this.tail();
  }

  textValue(choice: i32, text: JsonValue): void {
    if (this.ended) return;
    this.flushTool();
    this.generatedChars += text.units;
    this.partEvent(choice).raw('{"text":').strValue(text).byte(0x7d);
    this.endPartEvent(choice);
  }

  reasoningValue(choice: i32, text: JsonValue): void {
    if (this.ended) return;
    this.flushTool();
    this.generatedChars += text.units;
    this.partEvent(choice).raw('{"text":').strValue(text).raw(',"thought":true}');
    this.endPartEvent(choice);
  }

  refusalValue(choice: i32, text: JsonValue): void {
    this.textValue(choice, text);
  }

  toolStart(choice: i32, tool: i32, id: string, name: string): void {
    if (this.ended) return;
    this.flushTool();
    this.generatedChars += name.length;
    this.toolChoice = choice;
    this.toolIndex = tool;
    this.toolId = id;
    this.toolName = name;
    this.heldArgs = new ByteBuilder(64);
  }

  toolArgsValue(choice: i32, tool: i32, json: JsonValue): void {
    if (this.ended || this.heldArgs === null || choice != this.toolChoice || tool != this.toolIndex) return;
    this.generatedChars += json.units;
    const held = this.heldArgs as ByteBuilder;
    if (held.len + json.units > MAX_HELD_ARGS) {
      this.tooLarge = true;
      return;
    }
    held.raw(json.s);
  }

  /** The call being assembled goes out whole. */
  private flushTool(): void {
    if (this.heldArgs === null) return;
    const args = (this.heldArgs as ByteBuilder).toString();
    this.heldArgs = null;
    if (this.tooLarge) {
      this.error(ClientError.of(502, "A function call's arguments were larger than the gateway holds for a Gemini stream (" + MAX_HELD_ARGS.toString() + " bytes).", "api_error", "bad_upstream_response"));
      return;
    }
    this.partEvent(this.toolChoice);
    writeFunctionCall(this.out, this.toolId, this.toolName, args);
    this.endPartEvent(this.toolChoice);
  }

  finish(choice: i32, reason: string, stopSequence: string | null): void {
    if (this.ended || choice < 0 || choice > 127) return;
    while (this.finishes.length <= choice) this.finishes.push("");
    this.finishes[choice] = reason;
  }

  usage(u: Usage): void {
    this.lastUsage = u;
  }

  /** A JSON array takes whitespace between its elements where an SSE stream takes a comment. */
  keepAlive(): void {
    if (this.ended) return;
    if (this.array) this.out.raw("\r\n");
    else this.out.raw(": ping\r\n\r\n");
  }

  error(e: ClientError): void {
    if (this.ended) return;
    this.ended = true;
    this.heldArgs = null;
    writeGeminiError(e, this.open());
    if (this.array) this.out.raw("]");
    else this.close();
  }

  end(): void {
    if (this.ended) return;
    this.flushTool();
    if (this.ended) return;
    this.ended = true;
    const b = this.open().raw('{"candidates":[');
    const n = this.finishes.length ? this.finishes.length : 1;
    for (let i = 0; i < n; i++) {
      if (i) b.byte(0x2c);
      const reason = i < this.finishes.length ? this.finishes[i] : "";
      b.raw('{"content":{"role":"model","parts":[]},"finishReason":').str(finishReason(reason)).raw(',"index":').int(<i64>i).byte(0x7d);
    }
    b.raw('],"usageMetadata":');
    let u = this.lastUsage;
    if (u.prompt < 0 || u.completion < 0) u = estimatedUsage(u, this.promptEstimate, this.generatedChars);
    u.settle();
    writeUsageMetadata(b, u);
    this.tail();
    if (this.array) this.out.raw("]");
  }
}
