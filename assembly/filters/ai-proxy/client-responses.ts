// The OpenAI Responses client API (POST /v1/responses), for Codex CLI and the current OpenAI SDKs:
// whole answers, streams and errors written in the Responses format whatever provider produced
// them (the request is read in responses-request.ts; an OpenAI or Azure OpenAI instance's own
// Responses answers are read for usage in responses-native.ts).
//
// The wire format relied on, from the `openai` SDK's types (6.49,
// resources/responses/responses.d.ts: Response, ResponseOutputMessage, ResponseOutputText,
// ResponseFunctionToolCall, ResponseUsage, ResponseStreamEvent and its members) and OpenAI's API
// reference ("The response object", "Streaming events"):
// - A Response: id, object "response", created_at (seconds), status (completed, incomplete,
//   failed, in_progress), error ({code, message} or null), incomplete_details ({reason:
//   max_output_tokens | content_filter} or null), model, output (items), usage ({input_tokens,
//   input_tokens_details: {cached_tokens}, output_tokens, output_tokens_details:
//   {reasoning_tokens}, total_tokens}), and the request's settings echoed (instructions,
//   max_output_tokens, metadata, parallel_tool_calls, temperature, top_p, tool_choice, tools, text,
//   reasoning). `output_text` is not on the wire: the SDK adds it (lib/ResponsesParser addOutputText).
// - Output items: {type: "message", id, status, role: "assistant", content: [{type:
//   "output_text", text, annotations: []}]} and {type: "function_call", id, status, call_id,
//   name, arguments}.
// - Stream events, each `event: <type>` with data {type, ..., sequence_number} counting from 0:
//   response.created, response.in_progress; per message item response.output_item.added,
//   response.content_part.added, response.output_text.delta..., response.output_text.done (the
//   whole text), response.content_part.done, response.output_item.done (the whole item); per
//   function call response.output_item.added, response.function_call_arguments.delta...,
//   response.function_call_arguments.done (name and the whole arguments), response.output_item.done;
//   then response.completed (or response.incomplete) with the whole response and its usage, or
//   response.failed with its error; there is no `data: [DONE]` (OpenAI's "Responses streaming
//   events" reference: the stream ends with one of those three). The SDK's stream helper rebuilds the response from these
//   (lib/responses/ResponseAccumulator.js), so the done events and the final response must carry
//   everything written before: the sink keeps the open item's text and the finished items.
// Not carried: reasoning text (Responses' reasoning items hold OpenAI's own summaries; other
// providers' thinking is counted, not written) and logprobs; a refusal is written as text.
import { ByteBuilder, JsonValue } from "../../lib/json";
import { nowNanos } from "../../lib/sdk";
import { ChatResult, Choice, ClientError, StreamSink, Usage } from "../../providers/types";
import { estimatedUsage } from "./estimate";
import { writeOpenAIErrorJson } from "../../lib/errors";
import { ResponseKeeper } from "./responses-store";

/** The Responses API's errors are OpenAI's: {"error":{"message","type","param","code"}}. */
export function writeResponsesError(e: ClientError, b: ByteBuilder): void {
  writeOpenAIErrorJson(b, e.message, e.type, e.param, e.code);
}

export function responseId(id: string): string {
  return id.startsWith("resp_") ? id : "resp_" + id;
}

function itemBase(id: string): string {
  return id.startsWith("resp_") ? id.substring(5) : id;
}

function nowSeconds(): i64 {
  return <i64>(nowNanos() / 1000000000);
}

// The request's settings a Response echoes, in its order of members; absent ones as OpenAI
// writes them (null, or the default).
const ECHOED: Array<string> = ["instructions", "max_output_tokens", "metadata", "parallel_tool_calls", "temperature", "tool_choice", "tools", "top_p", "text", "reasoning", "user"];

/**
 * The echoed members, `,"instructions":...,"tools":[...]`, written once per request from the
 * client's body (values as the client wrote them) and copied into every Response written.
 */
export function responseEcho(req: JsonValue | null): ArrayBuffer {
  const b = new ByteBuilder(256);
  for (let i = 0; i < ECHOED.length; i++) {
    const k = ECHOED[i];
    const v = req !== null && req.isObject() ? req.get(k) : null;
    if (k == "user" && (v === null || v.isNull())) continue;
    b.raw(',"').raw(k).raw('":');
    if (v !== null && !v.isNull()) b.value(v);
    else if (k == "metadata") b.raw("{}");
    else if (k == "parallel_tool_calls") b.raw("true");
    else if (k == "tool_choice") b.raw('"auto"');
    else if (k == "tools") b.raw("[]");
    else if (k == "text") b.raw('{"format":{"type":"text"}}');
    else b.raw("null");
  }
  return b.toArrayBuffer();
}

export function writeResponsesUsage(b: ByteBuilder, u: Usage): void {
  u.settle();
  b.raw('{"input_tokens":').int(u.prompt < 0 ? 0 : u.prompt);
  b.raw(',"input_tokens_details":{"cached_tokens":').int(u.cached);
  b.raw('},"output_tokens":').int(u.completion < 0 ? 0 : u.completion);
  b.raw(',"output_tokens_details":{"reasoning_tokens":').int(u.reasoning);
  b.raw('},"total_tokens":').int(u.total < 0 ? 0 : u.total);
  b.byte(0x7d);
}

/** Chat's finish_reason -> the reason a Response is incomplete, or null when it completed. */
export function incompleteReason(finish: string): string | null {
  if (finish == "length") return "max_output_tokens";
  if (finish == "content_filter") return "content_filter";
  return null;
}

/** The Response object's head: `{"id":...,"object":"response",...,"model":...,"output":[` (id: the Response's own). */
function writeHead(b: ByteBuilder, id: string, created: i64, status: string, incomplete: string | null, error: ClientError | null, model: string, echo: ArrayBuffer): void {
  b.raw('{"id":').str(id).raw(',"object":"response","created_at":').int(created);
  b.raw(',"status":"').raw(status).raw('","background":false,"error":');
  if (error !== null) b.raw('{"code":').str(failureCode(error)).raw(',"message":').str(error.message).byte(0x7d);
  else b.raw("null");
  b.raw(',"incomplete_details":');
  if (incomplete !== null) b.raw('{"reason":"').raw(incomplete as string).raw('"}');
  else b.raw("null");
  b.buffer(echo);
  b.raw(',"model":').str(model).raw(',"output":[');
}

/** A failed Response's error code (ResponseError.code's values): the class of what went wrong. */
function failureCode(e: ClientError): string {
  if (e.status == 429) return "rate_limit_exceeded";
  if (e.status >= 400 && e.status < 500) return "invalid_prompt";
  return "server_error";
}

function writeMessageItem(b: ByteBuilder, id: string, status: string, text: string): void {
  b.raw('{"id":').str(id).raw(',"type":"message","status":"').raw(status);
  b.raw('","role":"assistant","content":[{"type":"output_text","text":').str(text).raw(',"annotations":[]}]}');
}

function writeCallItem(b: ByteBuilder, callId: string, name: string, args: string): void {
  b.raw('{"id":').str("fc_" + callId).raw(',"type":"function_call","status":"completed","call_id":').str(callId);
  b.raw(',"name":').str(name).raw(',"arguments":').str(args).byte(0x7d);
}

/**
 * A whole Response from a neutral result (its first choice: the Responses API has no n), stored
 * by keeper when there is one (its id then names its place in the store).
 */
export function writeResponsesAnswer(r: ChatResult, b: ByteBuilder, echo: ArrayBuffer, keeper: ResponseKeeper | null = null): void {
  let c: Choice | null = r.choices.length ? r.choices[0] : null;
  const finish = c !== null ? c.finishReason : "";
  const incomplete = incompleteReason(finish);
  const status = incomplete !== null ? "incomplete" : "completed";
  const id = responseId(r.id) + (keeper !== null ? keeper.suffix() : "");
  const at = b.len;
  writeHead(b, id, r.created > 0 ? r.created : nowSeconds(), status, incomplete, null, r.model, echo);
  let n = 0;
  if (c !== null) {
    let text: string | null = c.content;
    if (text === null || (text as string).length == 0) text = c.refusal;
    if (text !== null && (text as string).length) {
      writeMessageItem(b, "msg_" + itemBase(r.id), status, text as string);
      n++;
    }
    for (let i = 0; i < c.toolCalls.length; i++) {
      const t = c.toolCalls[i];
      if (n++) b.byte(0x2c);
      writeCallItem(b, t.id, t.name, t.arguments.length ? t.arguments : "{}");
    }
  }
  b.raw('],"usage":');
  writeResponsesUsage(b, r.usage);
  b.byte(0x7d);
  if (keeper !== null) keeper.keep(id, changetype<usize>(b.buf) + <usize>at, b.len - at);
}

const NO_ITEM: i32 = 0;
const MESSAGE_ITEM: i32 = 1;
const CALL_ITEM: i32 = 2;

/**
 * Writes the Responses event sequence from a provider's decoded stream (choice 0). It holds what
 * the format repeats at the end of an item and of the response: the open item's text or
 * arguments (as escaped JSON bytes, copied from the provider's), and the finished items; at most
 * `maxHeld` bytes of them (max_response_body_bytes), past which the response fails (502).
 */
export class ResponsesStreamSink extends StreamSink {
  id: string = "";
  model: string = "";
  created: i64 = 0;
  seq: i64 = 0;
  started: bool = false;
  ended: bool = false;
  item: i32 = NO_ITEM;
  outputIndex: i32 = -1;
  itemId: string = "";
  openTool: i32 = -1;
  callId: string = "";
  callName: string = "";
  /** The open item's text or arguments, escaped, without quotes. */
  held: ByteBuilder = new ByteBuilder(256);
  /** The finished items, comma-separated, as the final response's output lists them. */
  items: ByteBuilder = new ByteBuilder(256);
  /** `event: ...\ndata: {"type":...,"item_id":...,"output_index":N,...,"delta":` of the open item. */
  deltaPrefix: ArrayBuffer = new ArrayBuffer(0);
  finishReason: string = "";
  lastUsage: Usage = new Usage();
  promptEstimate: i64;
  echo: ArrayBuffer;
  maxHeld: i64;
  /** Stores the final Response (completed or incomplete; not a failed one) when set. */
  keeper: ResponseKeeper | null;
  /** The Response's id: the provider's, and its place in the store when it is kept. */
  responseId: string = "";

  constructor(promptEstimate: i64, echo: ArrayBuffer, maxHeld: i64, keeper: ResponseKeeper | null = null) {
    super();
    this.promptEstimate = promptEstimate;
    this.echo = echo;
    this.maxHeld = maxHeld;
    this.keeper = keeper;
  }

  start(id: string, model: string, created: i64): void {
    this.id = id;
    this.model = model;
    this.created = created;
  }

  /** `event: <name>\ndata: {"type":"<name>"`; the caller adds members and closes with endEvent. */
  private event(name: string): ByteBuilder {
    return this.out.raw("event: ").raw(name).raw('\ndata: {"type":"').raw(name).byte(0x22);
  }

  private endEvent(): void {
    this.out.raw(',"sequence_number":').int(this.seq++).raw("}\n\n");
  }

  /** `,"response":{...}`; returns where the Response object starts in out. */
  private response(status: string, incomplete: string | null, error: ClientError | null, withUsage: bool): i32 {
    const b = this.out;
    b.raw(',"response":');
    const at = b.len;
    writeHead(b, this.responseId, this.created > 0 ? this.created : nowSeconds(), status, incomplete, error, this.model, this.echo);
    b.bytes(changetype<usize>(this.items.buf), this.items.len);
    b.raw('],"usage":');
    if (withUsage) {
      let u = this.lastUsage;
      if (u.prompt < 0 || u.completion < 0) u = estimatedUsage(u, this.promptEstimate, this.generatedChars);
      writeResponsesUsage(b, u);
    } else b.raw("null");
    b.byte(0x7d);
    return at;
  }

  private ensureStarted(): void {
    if (this.started) return;
    this.started = true;
    if (this.created <= 0) this.created = nowSeconds();
    // A provider that names no id (the client still needs one to tell responses apart).
    if (this.id.length == 0) this.id = "gw" + nowNanos().toString(16);
    const keeper = this.keeper;
    this.responseId = responseId(this.id) + (keeper !== null ? keeper.suffix() : "");
    this.event("response.created");
    this.response("in_progress", null, null, false);
    this.endEvent();
    this.event("response.in_progress");
    this.response("in_progress", null, null, false);
    this.endEvent();
  }

  private itemHead(name: string): ByteBuilder {
    return this.event(name).raw(',"item_id":').str(this.itemId).raw(',"output_index":').int(this.outputIndex);
  }

  /** Ends the open item: its done events with the whole text or arguments, kept for the final response. */
  private closeItem(): void {
    const kind = this.item;
    if (kind == NO_ITEM) return;
    this.item = NO_ITEM;
    this.openTool = -1;
    const held = this.held;
    const heldPtr = changetype<usize>(held.buf);
    const status = incompleteReason(this.finishReason) !== null ? "incomplete" : "completed";
    if (this.items.len) this.items.byte(0x2c);
    if (kind == MESSAGE_ITEM) {
      this.itemHead("response.output_text.done").raw(',"content_index":0,"text":"').bytes(heldPtr, held.len).raw('","logprobs":[]');
      this.endEvent();
      this.itemHead("response.content_part.done").raw(',"content_index":0,"part":{"type":"output_text","text":"').bytes(heldPtr, held.len).raw('","annotations":[]}');
      this.endEvent();
      const it = this.items;
      const at = it.len;
      it.raw('{"id":').str(this.itemId).raw(',"type":"message","status":"').raw(status);
      it.raw('","role":"assistant","content":[{"type":"output_text","text":"').bytes(heldPtr, held.len).raw('","annotations":[]}]}');
      this.event("response.output_item.done").raw(',"output_index":').int(this.outputIndex).raw(',"item":').bytes(changetype<usize>(it.buf) + <usize>at, it.len - at);
      this.endEvent();
    } else {
      this.itemHead("response.function_call_arguments.done").raw(',"name":').str(this.callName).raw(',"arguments":"').bytes(heldPtr, held.len).byte(0x22);
      this.endEvent();
      const it = this.items;
      const at = it.len;
      it.raw('{"id":').str(this.itemId).raw(',"type":"function_call","status":"completed","call_id":').str(this.callId);
      it.raw(',"name":').str(this.callName).raw(',"arguments":"').bytes(heldPtr, held.len).raw('"}');
      this.event("response.output_item.done").raw(',"output_index":').int(this.outputIndex).raw(',"item":').bytes(changetype<usize>(it.buf) + <usize>at, it.len - at);
      this.endEvent();
    }
    held.reset();
  }

  private openMessage(): void {
    this.ensureStarted();
    this.closeItem();
    this.item = MESSAGE_ITEM;
    this.outputIndex++;
    this.itemId = "msg_" + itemBase(this.id) + (this.outputIndex > 0 ? "_" + this.outputIndex.toString() : "");
    this.event("response.output_item.added").raw(',"output_index":').int(this.outputIndex);
    this.out.raw(',"item":{"id":').str(this.itemId).raw(',"type":"message","status":"in_progress","role":"assistant","content":[]}');
    this.endEvent();
    this.itemHead("response.content_part.added").raw(',"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}');
    this.endEvent();
    const p = new ByteBuilder(160 + this.itemId.length);
    p.raw('event: response.output_text.delta\ndata: {"type":"response.output_text.delta","item_id":').str(this.itemId);
    p.raw(',"output_index":').int(this.outputIndex).raw(',"content_index":0,"delta":');
    this.deltaPrefix = p.toArrayBuffer();
  }

  /** Too much held for the final events: the response fails rather than end without its text. */
  private overHeld(): bool {
    if (<i64>(this.held.len + this.items.len) <= this.maxHeld) return false;
    this.error(ClientError.of(502, "The answer is larger than " + this.maxHeld.toString() + " bytes, more than the gateway holds to write it in the Responses format.", "api_error", "upstream_response_too_large"));
    return true;
  }

  textValue(choice: i32, text: JsonValue): void {
    this.generatedChars += text.units;
    if (this.ended || choice != 0) return;
    if (this.item != MESSAGE_ITEM) this.openMessage();
    this.out.buffer(this.deltaPrefix).strValue(text).raw(',"logprobs":[]');
    this.endEvent();
    this.held.strContent(text);
    this.overHeld();
  }

  reasoningValue(choice: i32, text: JsonValue): void {
    // Counted (the usage estimate), not written: see the file's head.
    this.generatedChars += text.units;
  }

  refusalValue(choice: i32, text: JsonValue): void {
    this.textValue(choice, text);
  }

  toolStart(choice: i32, tool: i32, id: string, name: string): void {
    this.generatedChars += name.length;
    if (this.ended || choice != 0) return;
    this.ensureStarted();
    this.closeItem();
    this.item = CALL_ITEM;
    this.openTool = tool;
    this.outputIndex++;
    this.callId = id.length ? id : "call_" + this.outputIndex.toString();
    this.callName = name;
    this.itemId = "fc_" + this.callId;
    this.event("response.output_item.added").raw(',"output_index":').int(this.outputIndex);
    this.out.raw(',"item":{"id":').str(this.itemId).raw(',"type":"function_call","status":"in_progress","call_id":').str(this.callId);
    this.out.raw(',"name":').str(name).raw(',"arguments":""}');
    this.endEvent();
    const p = new ByteBuilder(160 + this.itemId.length);
    p.raw('event: response.function_call_arguments.delta\ndata: {"type":"response.function_call_arguments.delta","item_id":').str(this.itemId);
    p.raw(',"output_index":').int(this.outputIndex).raw(',"delta":');
    this.deltaPrefix = p.toArrayBuffer();
  }

  toolArgsValue(choice: i32, tool: i32, json: JsonValue): void {
    this.generatedChars += json.units;
    if (this.ended || choice != 0 || this.item != CALL_ITEM || this.openTool != tool) return;
    this.out.buffer(this.deltaPrefix).strValue(json);
    this.endEvent();
    this.held.strContent(json);
    this.overHeld();
  }

  finish(choice: i32, reason: string, stopSequence: string | null): void {
    if (choice == 0) this.finishReason = reason;
  }

  usage(u: Usage): void {
    this.lastUsage = u;
  }

  /** The response failed: response.failed with its error, the finished items and the usage. */
  error(e: ClientError): void {
    if (this.ended) return;
    this.ensureStarted();
    this.ended = true;
    this.held.reset();
    this.event("response.failed");
    this.response("failed", null, e, true);
    this.endEvent();
  }

  end(): void {
    if (this.ended) return;
    this.ensureStarted();
    this.closeItem();
    this.ended = true;
    const incomplete = incompleteReason(this.finishReason);
    let at: i32;
    if (incomplete !== null) {
      this.event("response.incomplete");
      at = this.response("incomplete", incomplete, null, true);
    } else {
      this.event("response.completed");
      at = this.response("completed", null, null, true);
    }
    const keeper = this.keeper;
    if (keeper !== null) keeper.keep(this.responseId, changetype<usize>(this.out.buf) + <usize>at, this.out.len - at);
    this.endEvent();
  }
}

/**
 * The ending of a stream the gateway did not write (an OpenAI instance's own Responses stream)
 * that ends in error e: an `error` event (ResponseErrorEvent: code, message, param), numbered after
 * the provider's last event.
 */
export function writeResponsesErrorEvent(e: ClientError, sequence: i64, b: ByteBuilder): void {
  b.raw('event: error\ndata: {"type":"error","code":');
  if (e.code.length) b.str(e.code);
  else b.raw("null");
  b.raw(',"message":').str(e.message).raw(',"param":');
  if (e.param.length) b.str(e.param);
  else b.raw("null");
  b.raw(',"sequence_number":').int(sequence).raw("}\n\n");
}
