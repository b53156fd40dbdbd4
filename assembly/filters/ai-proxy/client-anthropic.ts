// The Anthropic Messages client API (POST /v1/messages), for Anthropic SDK and Claude Code
// clients: requests become OpenAI-format requests for any provider; answers, streams and errors
// come back in Anthropic's format (https://docs.anthropic.com/en/api/messages,
// https://docs.anthropic.com/en/docs/build-with-claude/streaming).
import { JsonValue, ByteBuilder, parseJsonString } from "../../lib/json";
import { ChatResult, ClientError, StreamSink, Usage } from "../../providers/types";
import { estimatedUsage } from "./estimate";
import { writeAnthropicErrorJson } from "../../lib/errors";

function bad(message: string): ClientError {
  return ClientError.of(400, message, "invalid_request_error", "");
}

export class Converted {
  req: JsonValue | null = null;
  error: ClientError | null = null;
  /**
   * What only the client's own provider takes (Gemini's safetySettings, its built-in tools, ...):
   * left out of req, and the error to send if the request has to be translated after all.
   */
  untranslatable: ClientError | null = null;
}

/** Text of an Anthropic content value: a string, or text blocks joined. */
function blocksText(v: JsonValue): string | null {
  if (v.isString()) return v.s;
  if (!v.isArray()) return null;
  const parts = new Array<string>();
  for (let i = 0; i < v.length; i++) {
    const t = v.at(i).getString("text");
    if (t !== null) parts.push(t);
  }
  return parts.join("\n");
}

/** Anthropic image source -> OpenAI image_url part. */
function imagePart(block: JsonValue, path: string, err: Converted): JsonValue | null {
  const src = block.get("source");
  if (src === null || !src.isObject()) {
    err.error = bad(path + ".source: required");
    return null;
  }
  const type = src.getString("type");
  let url: string;
  if (type == "base64") {
    const mt = src.getString("media_type");
    const data = src.getString("data");
    if (mt === null || data === null) {
      err.error = bad(path + ".source: base64 images need media_type and data");
      return null;
    }
    url = "data:" + (mt as string) + ";base64," + (data as string);
  } else if (type == "url") {
    const u = src.getString("url");
    if (u === null) {
      err.error = bad(path + ".source.url: required");
      return null;
    }
    url = u as string;
  } else {
    err.error = bad(path + ".source.type: '" + (type !== null ? type as string : "") + "' is not supported through the gateway (use base64 or url)");
    return null;
  }
  return JsonValue.object().set("type", JsonValue.str("image_url")).set("image_url", JsonValue.object().set("url", JsonValue.str(url)));
}

function convertUser(msg: JsonValue, path: string, out: JsonValue, err: Converted): void {
  const content = msg.get("content");
  if (content === null) {
    err.error = bad(path + ".content: required");
    return;
  }
  if (content.isString()) {
    out.push(JsonValue.object().set("role", JsonValue.str("user")).set("content", content));
    return;
  }
  if (!content.isArray()) {
    err.error = bad(path + ".content: must be a string or a list of content blocks");
    return;
  }
  // Tool results become OpenAI "tool" messages, which must come before the user's other content.
  const parts = JsonValue.array();
  for (let i = 0; i < content.length; i++) {
    const b = content.at(i);
    const bp = path + ".content[" + i.toString() + "]";
    const type = b.getString("type");
    if (type == "text") {
      const t = b.getString("text");
      if (t === null) { err.error = bad(bp + ".text: required"); return; }
      parts.push(JsonValue.object().set("type", JsonValue.str("text")).set("text", JsonValue.str(t as string)));
    } else if (type == "image") {
      const p = imagePart(b, bp, err);
      if (p === null) return;
      parts.push(p);
    } else if (type == "tool_result") {
      const id = b.getString("tool_use_id");
      if (id === null) { err.error = bad(bp + ".tool_use_id: required"); return; }
      const c = b.get("content");
      let text = c === null ? "" : blocksText(c);
      if (text === null) { err.error = bad(bp + ".content: must be a string or text blocks"); return; }
      const isError = b.get("is_error");
      if (isError !== null && isError.isBool() && isError.b) text = "Error: " + (text as string);
      out.push(JsonValue.object().set("role", JsonValue.str("tool")).set("tool_call_id", JsonValue.str(id as string)).set("content", JsonValue.str(text as string)));
    } else {
      err.error = bad(bp + ".type: '" + (type !== null ? type as string : "") + "' blocks are not supported through the gateway");
      return;
    }
  }
  if (parts.length) out.push(JsonValue.object().set("role", JsonValue.str("user")).set("content", parts));
}

function convertAssistant(msg: JsonValue, path: string, out: JsonValue, err: Converted): void {
  const content = msg.get("content");
  if (content === null) {
    err.error = bad(path + ".content: required");
    return;
  }
  const m = JsonValue.object().set("role", JsonValue.str("assistant"));
  if (content.isString()) {
    out.push(m.set("content", content));
    return;
  }
  if (!content.isArray()) {
    err.error = bad(path + ".content: must be a string or a list of content blocks");
    return;
  }
  const texts = new Array<string>();
  const calls = JsonValue.array();
  for (let i = 0; i < content.length; i++) {
    const b = content.at(i);
    const bp = path + ".content[" + i.toString() + "]";
    const type = b.getString("type");
    if (type == "text") {
      const t = b.getString("text");
      if (t !== null) texts.push(t as string);
    } else if (type == "tool_use") {
      const id = b.getString("id");
      const name = b.getString("name");
      if (id === null || name === null) { err.error = bad(bp + ": tool_use needs id and name"); return; }
      const input = b.get("input");
      const args = new ByteBuilder();
      if (input !== null) args.value(input);
      else args.raw("{}");
      calls.push(JsonValue.object().set("id", JsonValue.str(id as string)).set("type", JsonValue.str("function"))
        .set("function", JsonValue.object().set("name", JsonValue.str(name as string)).set("arguments", JsonValue.str(args.toString()))));
    } else if (type == "thinking" || type == "redacted_thinking") {
      // Earlier thinking only matters to Anthropic's own models; other providers cannot take it.
      continue;
    } else {
      err.error = bad(bp + ".type: '" + (type !== null ? type as string : "") + "' blocks are not supported through the gateway");
      return;
    }
  }
  m.set("content", texts.length ? JsonValue.str(texts.join("")) : JsonValue.nul());
  if (calls.length) m.set("tool_calls", calls);
  out.push(m);
}

/** Converts an Anthropic Messages request into an OpenAI chat request. */
export function anthropicToOpenAI(req: JsonValue): Converted {
  const r = new Converted();
  const out = JsonValue.object();
  const model = req.get("model");
  if (model !== null) {
    if (!model.isString()) { r.error = bad("model: must be a string"); return r; }
    out.set("model", model);
  }
  const maxTokens = req.get("max_tokens");
  if (maxTokens === null) { r.error = bad("max_tokens: Field required"); return r; }
  if (!maxTokens.isInteger() || maxTokens.n < 1) { r.error = bad("max_tokens: must be a positive integer"); return r; }
  out.set("max_tokens", maxTokens);

  const messages = JsonValue.array();
  const system = req.get("system");
  if (system !== null) {
    const text = blocksText(system);
    if (text === null) { r.error = bad("system: must be a string or a list of text blocks"); return r; }
    messages.push(JsonValue.object().set("role", JsonValue.str("system")).set("content", JsonValue.str(text as string)));
  }
  const msgs = req.get("messages");
  if (msgs === null || !msgs.isArray()) { r.error = bad("messages: Field required (a list)"); return r; }
  const items = msgs.items as Array<JsonValue>;
  for (let i = 0; i < items.length && r.error === null; i++) {
    const m = items[i];
    const path = "messages[" + i.toString() + "]";
    if (!m.isObject()) { r.error = bad(path + ": must be an object"); break; }
    const role = m.getString("role");
    if (role == "user") convertUser(m, path, messages, r);
    else if (role == "assistant") convertAssistant(m, path, messages, r);
    else r.error = bad(path + ".role: must be 'user' or 'assistant'");
  }
  if (r.error !== null) return r;
  out.set("messages", messages);

  const stop = req.get("stop_sequences");
  if (stop !== null) out.set("stop", stop);
  const copy = ["temperature", "top_p", "top_k", "stream", "thinking"];
  for (let i = 0; i < copy.length; i++) {
    const v = req.get(copy[i]);
    if (v !== null) out.set(copy[i], v);
  }
  // Structured outputs (output_config.format; output_format in the beta that preceded it) are
  // Chat's response_format json_schema: the answer's text is then JSON following the schema.
  const oc = req.get("output_config");
  let format = oc !== null && oc.isObject() ? oc.get("format") : null;
  if (format === null || format.isNull()) format = req.get("output_format");
  if (format !== null && !format.isNull()) {
    const schema = format.isObject() && format.getString("type") == "json_schema" ? format.get("schema") : null;
    if (schema === null || !schema.isObject()) { r.error = bad("output_config.format: must be {\"type\": \"json_schema\", \"schema\": {...}}"); return r; }
    out.set("response_format", JsonValue.object().set("type", JsonValue.str("json_schema"))
      .set("json_schema", JsonValue.object().set("name", JsonValue.str("output")).set("schema", schema as JsonValue)));
  }
  const meta = req.get("metadata");
  if (meta !== null && meta.isObject()) {
    const user = meta.getString("user_id");
    if (user !== null) out.set("user", JsonValue.str(user as string));
  }

  const tools = req.get("tools");
  if (tools !== null) {
    if (!tools.isArray()) { r.error = bad("tools: must be a list"); return r; }
    const list = JsonValue.array();
    for (let i = 0; i < tools.length; i++) {
      const t = tools.at(i);
      const name = t.getString("name");
      if (name === null) { r.error = bad("tools[" + i.toString() + "].name: required"); return r; }
      const type = t.getString("type");
      if (type !== null && type != "custom") {
        r.error = bad("tools[" + i.toString() + "]: Anthropic server tools ('" + (type as string) + "') are not supported through the gateway");
        return r;
      }
      const f = JsonValue.object().set("name", JsonValue.str(name as string));
      const d = t.getString("description");
      if (d !== null) f.set("description", JsonValue.str(d as string));
      const schema = t.get("input_schema");
      f.set("parameters", schema !== null ? schema : JsonValue.object().set("type", JsonValue.str("object")));
      list.push(JsonValue.object().set("type", JsonValue.str("function")).set("function", f));
    }
    out.set("tools", list);
  }
  const tc = req.get("tool_choice");
  if (tc !== null) {
    const type = tc.getString("type");
    if (type == "auto") out.set("tool_choice", JsonValue.str("auto"));
    else if (type == "any") out.set("tool_choice", JsonValue.str("required"));
    else if (type == "none") out.set("tool_choice", JsonValue.str("none"));
    else if (type == "tool") {
      const name = tc.getString("name");
      if (name === null) { r.error = bad("tool_choice.name: required when type is 'tool'"); return r; }
      out.set("tool_choice", JsonValue.object().set("type", JsonValue.str("function")).set("function", JsonValue.object().set("name", JsonValue.str(name as string))));
    } else { r.error = bad("tool_choice.type: must be auto, any, tool or none"); return r; }
    const dp = tc.get("disable_parallel_tool_use");
    if (dp !== null && dp.isBool() && dp.b) out.set("parallel_tool_calls", JsonValue.boolean(false));
  }
  r.req = out;
  return r;
}

/** OpenAI finish_reason -> Anthropic stop_reason. */
export function stopReason(finish: string, stopSequence: string | null): string {
  if (finish == "length") return "max_tokens";
  if (finish == "tool_calls" || finish == "function_call") return "tool_use";
  if (finish == "content_filter") return "refusal";
  if (stopSequence !== null) return "stop_sequence";
  return "end_turn";
}

function writeAnthropicUsage(b: ByteBuilder, u: Usage): void {
  const prompt = u.prompt < 0 ? 0 : u.prompt;
  // Anthropic counts cache reads apart from input_tokens; OpenAI includes them in prompt_tokens.
  const cached = u.cached > prompt ? prompt : u.cached;
  b.raw('{"input_tokens":').int(prompt - cached);
  b.raw(',"output_tokens":').int(u.completion < 0 ? 0 : u.completion);
  b.raw(',"cache_creation_input_tokens":0,"cache_read_input_tokens":').int(cached);
  b.byte(0x7d);
}

function messageId(id: string): string {
  return id.startsWith("msg_") ? id : "msg_" + id;
}

/** A Messages API answer from a neutral result (first choice: Anthropic has no n). */
export function writeAnthropicMessage(r: ChatResult, b: ByteBuilder): void {
  b.raw('{"id":').str(messageId(r.id)).raw(',"type":"message","role":"assistant","model":').str(r.model);
  b.raw(',"content":[');
  let n = 0;
  let stop = "end_turn";
  let stopSeq: string | null = null;
  if (r.choices.length) {
    const c = r.choices[0];
    if (c.reasoning !== null && (c.reasoning as string).length) {
      b.raw('{"type":"thinking","thinking":').str(c.reasoning as string).raw(',"signature":""}');
      n++;
    }
    let text: string | null = c.content;
    if (text === null && c.refusal !== null) text = c.refusal;
    if (text !== null && (text as string).length) {
      if (n++) b.byte(0x2c);
      b.raw('{"type":"text","text":').str(text as string).byte(0x7d);
    }
    for (let i = 0; i < c.toolCalls.length; i++) {
      const t = c.toolCalls[i];
      if (n++) b.byte(0x2c);
      b.raw('{"type":"tool_use","id":').str(t.id).raw(',"name":').str(t.name).raw(',"input":');
      const input = parseJsonString(t.arguments.length ? t.arguments : "{}");
      if (input !== null && input.isObject()) b.value(input);
      else b.raw("{}");
      b.byte(0x7d);
    }
    stopSeq = c.stopSequence;
    stop = stopReason(c.finishReason, stopSeq);
  }
  b.raw('],"stop_reason":').str(stop).raw(',"stop_sequence":');
  if (stopSeq !== null) b.str(stopSeq as string);
  else b.raw("null");
  b.raw(',"usage":');
  r.usage.settle();
  writeAnthropicUsage(b, r.usage);
  b.byte(0x7d);
}

/** OpenAI error type -> Anthropic error type. */
function anthropicErrorType(e: ClientError): string {
  if (e.status == 529) return "overloaded_error";
  if (e.status == 401) return "authentication_error";
  if (e.status == 403) return "permission_error";
  if (e.status == 404) return "not_found_error";
  if (e.status == 413) return "request_too_large";
  if (e.status == 429) return "rate_limit_error";
  if (e.status >= 500) return "api_error";
  return "invalid_request_error";
}

/** {"type":"error","error":{"type":...,"message":...}} — Anthropic's error shape. */
export function isAnthropicError(v: JsonValue): bool {
  if (v.getString("type") != "error") return false;
  const e = v.get("error");
  return e !== null && e.isObject() && e.getString("type") !== null && e.getString("message") !== null;
}

export function writeAnthropicError(e: ClientError, b: ByteBuilder): void {
  writeAnthropicErrorJson(b, anthropicErrorType(e), e.message);
}

const NO_BLOCK: i32 = 0;
const TEXT_BLOCK: i32 = 1;
const THINKING_BLOCK: i32 = 2;
const TOOL_BLOCK: i32 = 3;

/**
 * Writes Anthropic's event sequence: message_start, then per content block content_block_start,
 * content_block_delta..., content_block_stop, then message_delta (stop reason and usage) and
 * message_stop. Only choice 0 is written (Anthropic has no n).
 */
export class AnthropicStreamSink extends StreamSink {
  id: string = "";
  model: string = "";
  started: bool = false;
  ended: bool = false;
  block: i32 = NO_BLOCK;
  blockIndex: i32 = -1;
  openTool: i32 = -1;
  stop: string = "end_turn";
  stopSequence: string | null = null;
  lastUsage: Usage = new Usage();
  promptEstimate: i64;

  constructor(promptEstimate: i64) {
    super();
    this.promptEstimate = promptEstimate;
  }

  start(id: string, model: string, created: i64): void {
    this.id = id;
    this.model = model;
  }

  private event(name: string): ByteBuilder {
    return this.out.raw("event: ").raw(name).raw("\ndata: ");
  }

  private ensureStarted(): void {
    if (this.started) return;
    this.started = true;
    this.event("message_start").raw('{"type":"message_start","message":{"id":').str(messageId(this.id));
    this.out.raw(',"type":"message","role":"assistant","model":').str(this.model);
    // The input tokens as the provider reported them at its start (Anthropic's message_start),
    // else the gateway's prompt estimate; the final message_delta carries the counts that are
    // recorded, input_tokens included (clients take those over the start's).
    const u = new Usage();
    const known = this.lastUsage;
    u.prompt = known.prompt >= 0 ? known.prompt : this.promptEstimate;
    u.cached = known.cached;
    u.completion = 0;
    this.out.raw(',"content":[],"stop_reason":null,"stop_sequence":null,"usage":');
    writeAnthropicUsage(this.out, u);
    this.out.raw("}}\n\n");
    this.event("ping").raw('{"type":"ping"}\n\n');
  }

  private closeBlock(): void {
    if (this.block == NO_BLOCK) return;
    this.event("content_block_stop").raw('{"type":"content_block_stop","index":').int(this.blockIndex).raw("}\n\n");
    this.block = NO_BLOCK;
    this.openTool = -1;
  }

  private openBlock(kind: i32): void {
    this.ensureStarted();
    this.closeBlock();
    this.block = kind;
    this.blockIndex++;
    this.event("content_block_start").raw('{"type":"content_block_start","index":').int(this.blockIndex);
    if (kind == TEXT_BLOCK) this.out.raw(',"content_block":{"type":"text","text":""}}\n\n');
    else if (kind == THINKING_BLOCK) this.out.raw(',"content_block":{"type":"thinking","thinking":"","signature":""}}\n\n');
  }

  private delta(kind: i32, field: string, deltaType: string, text: JsonValue): void {
    if (this.block != kind) this.openBlock(kind);
    this.event("content_block_delta").raw('{"type":"content_block_delta","index":').int(this.blockIndex);
    this.out.raw(',"delta":{"type":"').raw(deltaType).raw('","').raw(field).raw('":').strValue(text).raw("}}\n\n");
  }

  textValue(choice: i32, text: JsonValue): void {
    if (this.ended) return;
    if (choice != 0) return;
    this.generatedChars += text.units;
    this.delta(TEXT_BLOCK, "text", "text_delta", text);
  }

  reasoningValue(choice: i32, text: JsonValue): void {
    if (this.ended) return;
    if (choice != 0) return;
    this.generatedChars += text.units;
    this.delta(THINKING_BLOCK, "thinking", "thinking_delta", text);
  }

  refusalValue(choice: i32, text: JsonValue): void {
    this.textValue(choice, text);
  }

  toolStart(choice: i32, tool: i32, id: string, name: string): void {
    if (this.ended) return;
    if (choice != 0) return;
    this.generatedChars += name.length;
    this.openBlock(TOOL_BLOCK);
    this.openTool = tool;
    this.out.raw(',"content_block":{"type":"tool_use","id":').str(id).raw(',"name":').str(name).raw(',"input":{}}}\n\n');
  }

  toolArgsValue(choice: i32, tool: i32, json: JsonValue): void {
    if (this.ended) return;
    if (choice != 0 || this.block != TOOL_BLOCK || this.openTool != tool) return;
    this.generatedChars += json.units;
    this.event("content_block_delta").raw('{"type":"content_block_delta","index":').int(this.blockIndex);
    this.out.raw(',"delta":{"type":"input_json_delta","partial_json":').strValue(json).raw("}}\n\n");
  }

  finish(choice: i32, reason: string, stopSequence: string | null): void {
    if (this.ended) return;
    if (choice != 0) return;
    this.stop = stopReason(reason, stopSequence);
    this.stopSequence = stopSequence;
  }

  usage(u: Usage): void {
    this.lastUsage = u;
  }

  error(e: ClientError): void {
    if (this.ended) return;
    this.ended = true;
    this.event("error");
    writeAnthropicError(e, this.out);
    this.out.raw("\n\n");
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.ensureStarted();
    this.closeBlock();
    this.event("message_delta").raw('{"type":"message_delta","delta":{"stop_reason":').str(this.stop).raw(',"stop_sequence":');
    if (this.stopSequence !== null) this.out.str(this.stopSequence as string);
    else this.out.raw("null");
    this.out.raw('},"usage":');
    let u = this.lastUsage;
    if (u.prompt < 0 || u.completion < 0) u = estimatedUsage(u, this.promptEstimate, this.generatedChars);
    writeAnthropicUsage(this.out, u);
    this.out.raw("}\n\n");
    this.event("message_stop").raw('{"type":"message_stop"}\n\n');
  }
}
