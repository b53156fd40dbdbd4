// Anthropic Messages API (https://docs.anthropic.com/en/api/messages, streaming:
// https://docs.anthropic.com/en/docs/build-with-claude/streaming, errors:
// https://docs.anthropic.com/en/api/errors). Requests arrive as OpenAI chat-completions JSON and
// leave as a Messages request; answers, SSE events and errors come back as the neutral shapes.
//
// Upstream: POST <endpoint>/v1/messages (default endpoint https://api.anthropic.com; an endpoint
// that already ends in /v1 gets /messages), headers `x-api-key: <api_key>` and
// `anthropic-version: 2023-06-01` (the instance's `api_version` replaces the date when set).
//
// ---------------------------------------------------------------------------------------------
// Request, field by field (OpenAI -> Anthropic). A JSON null counts as absent, as in OpenAI.
//   model                    -> model (the instance's upstream model)
//   messages                 -> messages + system, see below
//   max_completion_tokens,   -> max_tokens (Anthropic requires it). The instance's max_tokens,
//   max_tokens                  when configured, forces the value (as for every provider); else
//                               the client's max_completion_tokens, else its max_tokens, else
//                               4096. A value that is not a positive integer: 400.
//   temperature              -> temperature. Anthropic's range is 0..1: outside it, 400 (OpenAI's
//                               0..2 cannot be rescaled without changing the meaning).
//   top_p                    -> top_p;  top_k -> top_k (Anthropic takes it natively)
//   stop (string or list)    -> stop_sequences
//   stream                   -> stream (true only when streaming)
//   stream_options           dropped: Anthropic always sends usage in the stream.
//   n                        1 is dropped (the default); anything else: 400.
//   user, safety_identifier  -> metadata.user_id (safety_identifier wins when both are given)
//   tools (type function)    -> tools [{name, description, input_schema}]; parameters without a
//                               "type" get "type":"object"; function.strict is dropped; other tool
//                               types (custom, ...): 400.
//   tool_choice              auto -> {type:auto}, required -> {type:any}, none -> {type:none},
//                               {type:function,function:{name}} -> {type:tool,name}. Without tools,
//                               auto/none are dropped and required/function are a 400.
//   parallel_tool_calls      false -> tool_choice.disable_parallel_tool_use (with tool_choice auto
//                               when none was given); true is the default and is dropped.
//   response_format          {type:text} dropped. json_schema -> output_config.format
//                               {type:json_schema, schema} (structured outputs) when the model has
//                               them (hasStructuredOutputs: Claude 4.5 and later) or the instance
//                               says structured_output: native; the operator's other output_config
//                               members are kept. Otherwise, and for json_object always, a forced
//                               tool: tools [{name: json_schema.name (when a valid tool name, else
//                               "json_response"), description, input_schema: the schema ({type:
//                               object} for json_object)}], tool_choice {type:tool, name,
//                               disable_parallel_tool_use:true}; its input comes back as the content
//                               (JSON text) with finish_reason stop (ANSWER_JSON_TOOL). The forced
//                               tool with the client's tools, with thinking / reasoning_effort
//                               (Anthropic refuses a forced tool_choice while thinking), with options
//                               setting tools / tool_choice, or for a non-object schema: 400. Other
//                               types, a json_schema without an object: 400.
//   thinking                 -> thinking (Anthropic's own switch, sent by Anthropic clients); it wins
//                               over reasoning_effort.
//   reasoning_effort         none, minimal -> no thinking; low, medium, high -> thinking {type:
//                               enabled, budget_tokens: 1024, 8192, 24576} (the budgets Gemini's
//                               mapping uses). max_tokens: without a client or instance limit, the
//                               budget + 4096; a limit above the budget stays; a limit at or below
//                               it stays and the budget becomes half of it (at least 1024: Anthropic's
//                               minimum, and budget < max_tokens); a limit <= 1024: 400. Other values:
//                               400.
//   seed                     dropped: OpenAI itself only promises best-effort determinism.
//   store, metadata,         dropped: bookkeeping, caching and scheduling hints that do not change
//   service_tier,               the answer (OpenAI's metadata tags stored completions; it is not
//   prompt_cache_key,           Anthropic's metadata).
//   prediction               dropped: a latency optimisation; the answer is the same without it.
//   logprobs                 false dropped; true: 400.  top_logprobs > 0: 400.
//   logit_bias               {} dropped; otherwise 400.
//   presence_penalty,        0 dropped; any other value: 400 (no equivalent).
//   frequency_penalty
//   modalities               ["text"] dropped; anything with audio: 400.  audio: 400.
//   web_search_options,      400 (no equivalent through this translation).
//   verbosity
//   functions, function_call 400 (deprecated; use tools / tool_choice).
//   any other field          400 (Anthropic rejects unknown fields; better said clearly here).
//   instance options         written verbatim as Anthropic members (Anthropic names: top_k,
//                               thinking, service_tier, ...); they replace the client's value of
//                               the same Anthropic member.
//
// Messages:
//   system, developer        -> top-level system: their text, in order, joined by a blank line
//                               (wherever they appear in the list). Only text parts: else 400.
//   user                     -> user turn. Parts: text -> text block; image_url with a base64
//                               data: URL -> image {source:{type:base64, media_type, data}}; an
//                               http(s) URL -> image {source:{type:url, url}}; detail dropped;
//                               other URL schemes, input_audio, file: 400.
//   assistant                -> assistant turn: content (string, text or refusal parts) -> text
//                               blocks; a refusal string with no content -> text; tool_calls ->
//                               tool_use blocks (function.arguments JSON text parsed into `input`,
//                               "" -> {}; not a JSON object: 400); reasoning_content dropped
//                               (Anthropic needs the signed thinking block, which OpenAI clients
//                               do not carry); function_call: 400.
//   tool                     -> tool_result block {tool_use_id, content} in a user turn (string, or
//                               text / image parts as blocks); consecutive tool messages, and a
//                               user message right after them, share one user turn.
//   function                 400 (deprecated).
//   name (any role)          dropped (Anthropic has no participant names).
//   Consecutive turns of the same role are merged into one (Anthropic requires alternation);
//   empty text is left out (Anthropic rejects empty text blocks). No user or assistant content at
//   all: 400. A conversation ending with an assistant turn is sent as is: Anthropic treats it as a
//   prefill and continues that text.
//   Data URL parameters other than base64 (e.g. ";name=x.png") are dropped from media_type.
//
// Response (Anthropic -> neutral): text blocks -> content (joined); tool_use -> tool calls (input
// serialised as the arguments JSON), or content when it is the forced JSON tool (answerMode);
// thinking -> reasoning_content (redacted_thinking and server tool blocks are left out);
// stop_reason end_turn, stop_sequence, pause_turn -> stop (the stop sequence is kept for
// Anthropic clients), max_tokens and model_context_window_exceeded -> length, tool_use ->
// tool_calls (stop for the forced JSON tool), refusal -> content_filter. Usage: prompt = input_tokens +
// cache_read_input_tokens + cache_creation_input_tokens (OpenAI counts cached tokens inside
// prompt_tokens), cached = cache_read_input_tokens, completion = output_tokens (thinking
// included: Anthropic does not report reasoning tokens apart). `created` is the gateway's clock.
//
// Stream: message_start (id, model, input usage), content_block_start (text / tool_use /
// thinking), content_block_delta (text_delta, input_json_delta, thinking_delta; signature_delta
// and citations ignored; text and input_json deltas in Anthropic's own serialization are read
// without a parse; the forced JSON tool's input_json_delta pieces are content deltas),
// message_delta (stop_reason -> finish, cumulative usage merged with
// message_start's), message_stop (done), ping (a keep-alive comment), error (mapped like an HTTP error of the
// same type and ends the stream). tool_use blocks are numbered 0, 1, 2... as OpenAI tool indices.
// The decoder's usage is published from message_delta on, when output_tokens is known: a stream
// cut before it is estimated by the filter rather than recorded with zero completion tokens.
//
// Errors: {"type":"error","error":{"type","message"}} keeps the provider's status, type and
// message (authentication_error 401, permission_error 403, not_found_error 404, request_too_large
// 413, rate_limit_error 429, api_error 500, overloaded_error 529, ...).
//
// Embeddings: Anthropic has none (embeddingsUpstream returns null: the filter answers 400).
import { JsonValue, ByteBuilder, parseJsonText, parseJsonAt, nonEmpty, matchAscii, rawStringAt } from "../lib/json";
import { SseEvent } from "../lib/sse";
import { nowNanos } from "../lib/sdk";
import {
  Provider, Instance, Upstream, ChatResult, Choice, ToolCall, Usage, ClientError, StreamDecoder, StreamSink,
  ANSWER_PLAIN, ANSWER_JSON_TOOL, STRUCTURED_NATIVE, STRUCTURED_TOOL,
} from "./types";
import { errorTypeForStatus } from "./openai";

export const ANTHROPIC_VERSION = "2023-06-01";
/** max_tokens when neither the client nor the instance gives one (Anthropic requires it). */
export const DEFAULT_MAX_TOKENS: i64 = 4096;

const USER: i32 = 1;
const ASSISTANT: i32 = 2;

// ---------------------------------------------------------------------------------------------
// Small helpers

function unsupported(field: string, why: string): ClientError {
  const e = ClientError.of(400, "'" + field + "' " + why, "invalid_request_error", "unsupported_parameter");
  e.param = field;
  return e;
}

function notSupported(field: string): ClientError {
  return unsupported(field, "is not supported by provider anthropic.");
}

function invalid(param: string, why: string): ClientError {
  const e = ClientError.of(400, "'" + param + "' " + why, "invalid_request_error", "invalid_value");
  e.param = param;
  return e;
}

function at(path: string, i: i32): string {
  return path + "[" + i.toString() + "]";
}

// Paths for error messages, built only when there is an error to report.
function msgPath(mi: i32): string {
  return at("messages", mi);
}

function partPath(mi: i32, i: i32): string {
  return at(msgPath(mi) + ".content", i);
}

function callPath(mi: i32, i: i32): string {
  return at(msgPath(mi) + ".tool_calls", i);
}

function isPositiveInteger(v: JsonValue): bool {
  return v.isInteger() && v.n >= 1;
}

/** A token count from the provider: -1 when absent or not a sane non-negative number. */
function count(v: JsonValue | null): i64 {
  if (v === null || !v.isNumber()) return -1;
  const n = v.n;
  if (!(n >= 0) || n > 1e15) return -1;
  return <i64>n;
}

function str(v: JsonValue | null): string | null {
  if (v === null || !v.isString()) return null;
  return v.s;
}

function nowSeconds(): i64 {
  return <i64>(nowNanos() / 1000000000);
}

/** Upstream path: <base>/v1/messages, tolerating a configured endpoint that ends in /v1. */
export function messagesPath(basePath: string): string {
  return basePath.endsWith("/v1") ? basePath + "/messages" : basePath + "/v1/messages";
}

// ---------------------------------------------------------------------------------------------
// Request

/** Writes message turns, opening a turn only when a block arrives and merging same-role turns. */
class Turns {
  out: ByteBuilder;
  role: i32 = 0;
  blocks: i32 = 0;
  turns: i32 = 0;

  constructor(out: ByteBuilder) {
    this.out = out;
  }

  /** Positions the writer for a new content block of `role`; returns the builder. */
  block(role: i32): ByteBuilder {
    const b = this.out;
    if (this.role != role) {
      if (this.role != 0) b.raw("]}");
      if (this.turns > 0) b.byte(0x2c);
      this.turns++;
      b.raw(role == USER ? '{"role":"user","content":[' : '{"role":"assistant","content":[');
      this.role = role;
      this.blocks = 0;
    }
    if (this.blocks > 0) b.byte(0x2c);
    this.blocks++;
    return b;
  }

  close(): void {
    if (this.role != 0) this.out.raw("]}");
    this.role = 0;
  }
}

/** A text block from a parsed string value, its bytes copied as they came (never decoded and encoded back). */
function writeText(b: ByteBuilder, text: JsonValue): void {
  b.raw('{"type":"text","text":').strValue(text).byte(0x7d);
}

/** Member `key` of part p when it is a string, else null. */
function stringMember(p: JsonValue, key: string): JsonValue | null {
  const v = p.get(key);
  return v !== null && v.isString() ? v : null;
}

/** The URL of an image_url part ({"image_url":{"url":...}} or, leniently, {"image_url":"..."}). */
function imageUrl(part: JsonValue): string | null {
  const iu = part.get("image_url");
  if (iu === null) return null;
  if (iu.isString()) return iu.s;
  return iu.getString("url");
}

/** Checks an image URL; null when it can be sent. */
function checkImage(url: string | null, mi: i32, i: i32): ClientError | null {
  if (url === null) return invalid(partPath(mi, i) + ".image_url.url", "is required.");
  const u = url as string;
  if (u.startsWith("data:")) {
    const comma = u.indexOf(",");
    const semi = u.indexOf(";");
    if (comma <= 12 || semi <= 5 || semi > comma || !u.substring(0, comma).endsWith(";base64")) {
      return invalid(partPath(mi, i) + ".image_url.url", "must be a base64 data URL (data:<media type>;base64,<data>) or an http(s) URL.");
    }
    return null;
  }
  const lower = u.substring(0, 8).toLowerCase();
  if (lower.startsWith("https://") || lower.startsWith("http://")) return null;
  return invalid(partPath(mi, i) + ".image_url.url", "must be a base64 data URL or an http(s) URL.");
}

/** Writes an image block for a URL that passed checkImage. */
function writeImage(b: ByteBuilder, url: string): void {
  if (url.startsWith("data:")) {
    const comma = url.indexOf(",");
    // "data:" + media type [+ ";param=value"...] + ";base64": the media type without parameters.
    b.raw('{"type":"image","source":{"type":"base64","media_type":').str(url.substring(5, url.indexOf(";")));
    b.raw(',"data":').str(url.substring(comma + 1)).raw("}}");
  } else {
    b.raw('{"type":"image","source":{"type":"url","url":').str(url).raw("}}");
  }
}

/** Text of a system/developer content: a string or text parts. Null (with err) otherwise. */
function systemText(content: JsonValue | null, mi: i32, parts: Array<string>): ClientError | null {
  if (content === null || content.isNull()) return null;
  if (content.isString()) {
    if (content.s.length) parts.push(content.s);
    return null;
  }
  if (!content.isArray()) return invalid(msgPath(mi) + ".content", "must be a string or a list of text parts.");
  for (let i = 0; i < content.length; i++) {
    const p = content.at(i);
    const t = p.getString("text");
    if (p.getString("type") != "text" || t === null) {
      return invalid(partPath(mi, i), "system and developer messages can only carry text parts for provider anthropic.");
    }
    if ((t as string).length) parts.push(t as string);
  }
  return null;
}

/** User content: a string, or text and image_url parts. */
function writeUser(content: JsonValue | null, mi: i32, t: Turns): ClientError | null {
  if (content === null || content.isNull()) return invalid(msgPath(mi) + ".content", "is required.");
  if (content.isString()) {
    if (nonEmpty(content)) writeText(t.block(USER), content);
    return null;
  }
  if (!content.isArray()) return invalid(msgPath(mi) + ".content", "must be a string or a list of content parts.");
  for (let i = 0; i < content.length; i++) {
    const p = content.at(i);
    const type = p.getString("type");
    if (type == "text") {
      const text = stringMember(p, "text");
      if (text === null) return invalid(partPath(mi, i) + ".text", "is required.");
      if (nonEmpty(text)) writeText(t.block(USER), text as JsonValue);
    } else if (type == "image_url") {
      const url = imageUrl(p);
      const err = checkImage(url, mi, i);
      if (err !== null) return err;
      writeImage(t.block(USER), url as string);
    } else if (type == "input_audio" || type == "file") {
      return unsupported(partPath(mi, i), "(" + (type as string) + " parts) is not supported by provider anthropic.");
    } else {
      return invalid(partPath(mi, i) + ".type", "must be text or image_url.");
    }
  }
  return null;
}

/** Assistant content (text / refusal parts) and tool calls. */
function writeAssistant(m: JsonValue, mi: i32, t: Turns): ClientError | null {
  const fc = m.get("function_call");
  if (fc !== null && !fc.isNull()) return unsupported(msgPath(mi) + ".function_call", "is deprecated and not supported by provider anthropic; use tool_calls.");
  const content = m.get("content");
  if (content === null || content.isNull()) {
    const refusal = stringMember(m, "refusal");
    if (nonEmpty(refusal)) writeText(t.block(ASSISTANT), refusal as JsonValue);
  } else if (content.isString()) {
    if (nonEmpty(content)) writeText(t.block(ASSISTANT), content);
  } else if (content.isArray()) {
    for (let i = 0; i < content.length; i++) {
      const p = content.at(i);
      const type = p.getString("type");
      const text = type == "text" ? stringMember(p, "text") : type == "refusal" ? stringMember(p, "refusal") : null;
      if (text === null) return invalid(partPath(mi, i), "assistant content parts must be text or refusal parts.");
      if (nonEmpty(text)) writeText(t.block(ASSISTANT), text as JsonValue);
    }
  } else {
    return invalid(msgPath(mi) + ".content", "must be a string, a list of text parts, or null.");
  }
  const calls = m.get("tool_calls");
  if (calls === null || calls.isNull()) return null;
  if (!calls.isArray()) return invalid(msgPath(mi) + ".tool_calls", "must be a list.");
  for (let i = 0; i < calls.length; i++) {
    const c = calls.at(i);
    const id = stringMember(c, "id");
    if (id === null) return invalid(callPath(mi, i) + ".id", "is required.");
    const type = c.getString("type");
    if (type !== null && type != "function") return unsupported(callPath(mi, i) + ".type", "'" + (type as string) + "' tool calls are not supported by provider anthropic.");
    const f = c.get("function");
    const name = f !== null ? f.getString("name") : null;
    if (name === null) return invalid(callPath(mi, i) + ".function.name", "is required.");
    const args = (f as JsonValue).get("arguments");
    let input: JsonValue | null = null;
    if (args === null || args.isNull() || (args.isString() && args.units == 0)) {
      input = null;
    } else if (args.isString()) {
      input = parseJsonText(args);
      if (input === null || !input.isObject()) return invalid(callPath(mi, i) + ".function.arguments", "must be the JSON text of an object.");
    } else if (args.isObject()) {
      input = args;
    } else {
      return invalid(callPath(mi, i) + ".function.arguments", "must be the JSON text of an object.");
    }
    const b = t.block(ASSISTANT);
    b.raw('{"type":"tool_use","id":').strValue(id as JsonValue).raw(',"name":').str(name as string).raw(',"input":');
    if (input !== null) b.value(input as JsonValue);
    else b.raw("{}");
    b.byte(0x7d);
  }
  return null;
}

/** A tool message: a tool_result block in a user turn. */
function writeToolResult(m: JsonValue, mi: i32, t: Turns): ClientError | null {
  const id = stringMember(m, "tool_call_id");
  if (id === null) return invalid(msgPath(mi) + ".tool_call_id", "is required.");
  const content = m.get("content");
  // Check the parts before opening the block (so an error never leaves half a block to explain).
  if (content !== null && content.isArray()) {
    for (let i = 0; i < content.length; i++) {
      const p = content.at(i);
        const type = p.getString("type");
      if (type == "text") {
        if (p.getString("text") === null) return invalid(partPath(mi, i) + ".text", "is required.");
      } else if (type == "image_url") {
        const err = checkImage(imageUrl(p), mi, i);
        if (err !== null) return err;
      } else {
        return invalid(partPath(mi, i) + ".type", "tool results can carry text and image_url parts.");
      }
    }
  } else if (content !== null && !content.isString() && !content.isNull()) {
    return invalid(msgPath(mi) + ".content", "must be a string or a list of content parts.");
  }
  const b = t.block(USER);
  b.raw('{"type":"tool_result","tool_use_id":').strValue(id as JsonValue);
  if (content !== null && content.isString()) {
    b.raw(',"content":').strValue(content);
  } else if (content !== null && content.isArray()) {
    b.raw(',"content":[');
    let n = 0;
    for (let i = 0; i < content.length; i++) {
      const p = content.at(i);
      if (p.getString("type") == "text") {
        const text = stringMember(p, "text") as JsonValue;
        if (!nonEmpty(text)) continue;
        if (n++) b.byte(0x2c);
        writeText(b, text);
      } else {
        if (n++) b.byte(0x2c);
        writeImage(b, imageUrl(p) as string);
      }
    }
    b.byte(0x5d);
  }
  b.byte(0x7d);
  return null;
}

/** Writes the messages list; collects system text. */
function writeMessages(msgs: JsonValue, t: Turns, system: Array<string>): ClientError | null {
  if (!msgs.isArray()) return invalid("messages", "must be a non-empty list.");
  for (let i = 0; i < msgs.length; i++) {
    const m = msgs.at(i);
    if (!m.isObject()) return invalid(msgPath(i), "must be an object.");
    const role = m.getString("role");
    let err: ClientError | null = null;
    if (role == "system" || role == "developer") err = systemText(m.get("content"), i, system);
    else if (role == "user") err = writeUser(m.get("content"), i, t);
    else if (role == "assistant") err = writeAssistant(m, i, t);
    else if (role == "tool") err = writeToolResult(m, i, t);
    else if (role == "function") err = unsupported(msgPath(i) + ".role", "'function' messages are deprecated and not supported by provider anthropic; use tool messages.");
    else err = invalid(msgPath(i) + ".role", "must be system, developer, user, assistant or tool.");
    if (err !== null) return err;
  }
  t.close();
  if (t.turns == 0) return invalid("messages", "has no user or assistant content to send.");
  return null;
}

/** The client's request members that the translation reads. */
class RequestFields {
  messages: JsonValue | null = null;
  maxTokens: JsonValue | null = null;
  maxCompletionTokens: JsonValue | null = null;
  temperature: JsonValue | null = null;
  topP: JsonValue | null = null;
  topK: JsonValue | null = null;
  stop: JsonValue | null = null;
  user: string | null = null;
  tools: JsonValue | null = null;
  toolChoice: JsonValue | null = null;
  parallel: bool = true;
  thinking: JsonValue | null = null;
  /** response_format: JSON_NONE, JSON_OBJECT or JSON_SCHEMA (schema and name from json_schema). */
  json: i32 = JSON_NONE;
  schema: JsonValue | null = null;
  schemaName: string | null = null;
  schemaDescription: string | null = null;
  /** reasoning_effort as an index into EFFORTS, or -1. */
  effort: i32 = -1;
}

const JSON_NONE: i32 = 0;
const JSON_OBJECT: i32 = 1;
const JSON_SCHEMA: i32 = 2;

/** reasoning_effort values and the thinking budget each one asks for (0: no thinking). */
const EFFORTS: Array<string> = ["none", "minimal", "low", "medium", "high"];
const EFFORT_BUDGETS: Array<i64> = [0, 0, 1024, 8192, 24576];
/** Anthropic's smallest thinking budget (thinking.budget_tokens >= 1024, and < max_tokens). */
export const MIN_THINKING_BUDGET: i64 = 1024;
/** The forced tool's name when the client's json_schema.name is not a valid Anthropic tool name. */
export const JSON_TOOL_NAME = "json_response";

/** An Anthropic tool name: 1 to 64 of A-Z a-z 0-9 _ -. */
function isToolName(name: string): bool {
  if (name.length == 0 || name.length > 64) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x5f || c == 0x2d)) return false;
  }
  return true;
}

/** Chat's response_format into `f`: text is nothing; json_object and json_schema ask for JSON. */
function readResponseFormat(v: JsonValue, f: RequestFields): ClientError | null {
  if (!v.isObject()) return invalid("response_format", "must be an object.");
  const type = v.getString("type");
  if (type == "text") return null;
  if (type == "json_object") {
    f.json = JSON_OBJECT;
    return null;
  }
  if (type != "json_schema") return invalid("response_format.type", "must be text, json_object or json_schema.");
  const js = v.get("json_schema");
  if (js === null || !js.isObject()) return invalid("response_format.json_schema", "is required (an object with name and schema).");
  const schema = js.get("schema");
  // OpenAI makes the schema optional: without one, any JSON object will do.
  if (schema === null || schema.isNull()) {
    f.json = JSON_OBJECT;
    return null;
  }
  if (!schema.isObject()) return invalid("response_format.json_schema.schema", "must be a JSON Schema object.");
  f.json = JSON_SCHEMA;
  f.schema = schema;
  f.schemaName = js.getString("name");
  f.schemaDescription = js.getString("description");
  return null;
}

/**
 * Whether a Claude model has structured outputs (output_config.format). Anthropic's structured
 * outputs page (platform.claude.com/docs/en/build-with-claude/structured-outputs, read 2026-12)
 * lists them as generally available on the Claude API, without a beta header, for Claude Opus 4.5
 * and 4.6, Sonnet 4.5 and 4.6, Haiku 4.5 and the generations after; the beta (header
 * structured-outputs-2025-11-13, member output_format) moved to output_config.format. Model ids
 * name the family first from Claude 4 on ("claude-sonnet-4-5-20250929", "claude-opus-4-1",
 * "claude-haiku-4-5@20251001" on Vertex, "anthropic.claude-..." on Bedrock): 4.5 and later say
 * yes; Claude 3.x ids ("claude-3-5-sonnet-...": version first), 4.0 and 4.1, and names that are not
 * Claude ids (aliases) say no: they get the forced tool, which every Claude model takes.
 */
export function hasStructuredOutputs(model: string): bool {
  let p = model.indexOf("claude-");
  if (p < 0) return false;
  p += 7;
  const n = model.length;
  const c0 = p < n ? model.charCodeAt(p) : 0;
  if (c0 >= 0x30 && c0 <= 0x39) return false; // claude-3-..., claude-2...: version first, before 4
  const dash = model.indexOf("-", p);
  if (dash < 0) return false;
  p = dash + 1;
  let major = 0;
  let digits = 0;
  while (p < n && digits < 3 && model.charCodeAt(p) >= 0x30 && model.charCodeAt(p) <= 0x39) {
    major = major * 10 + (model.charCodeAt(p) - 0x30);
    p++;
    digits++;
  }
  if (digits == 0) return false;
  if (major != 4) return major > 4;
  // A minor version is one or two digits after a dash; eight digits are a date (claude-sonnet-4-20250514).
  if (p >= n || model.charCodeAt(p) != 0x2d) return false;
  p++;
  let minor = 0;
  digits = 0;
  while (p < n && digits < 3 && model.charCodeAt(p) >= 0x30 && model.charCodeAt(p) <= 0x39) {
    minor = minor * 10 + (model.charCodeAt(p) - 0x30);
    p++;
    digits++;
  }
  return digits >= 1 && digits <= 2 && minor >= 5;
}

/** The instance's structured_output setting decides, else the model (hasStructuredOutputs). */
function nativeJson(model: string, inst: Instance): bool {
  if (inst.structuredOutput == STRUCTURED_NATIVE) return true;
  if (inst.structuredOutput == STRUCTURED_TOOL) return false;
  return hasStructuredOutputs(model);
}

/**
 * True when the request's JSON answer comes through a forced tool: json_object always (a JSON
 * Schema for "any object" is not something constrained decoding can follow), json_schema when the
 * model has no structured outputs.
 */
function usesJsonTool(f: RequestFields, model: string, inst: Instance): bool {
  if (f.json == JSON_OBJECT) return true;
  return f.json == JSON_SCHEMA && !nativeJson(model, inst);
}

/** Sorts the request's members into `f`, rejecting what Anthropic cannot take. */
function collect(req: JsonValue, f: RequestFields): ClientError | null {
  if (!req.isObject()) return invalid("body", "must be a JSON object.");
  let safety: string | null = null;
  for (let i = 0, n = req.length; i < n; i++) {
    const key = req.keyAt(i);
    const v = req.at(i);
    if (v.isNull()) continue;
    if (key == "model" || key == "stream") continue; // the filter's business
    if (key == "messages") f.messages = v;
    else if (key == "max_tokens" || key == "max_completion_tokens") {
      if (!isPositiveInteger(v)) return invalid(key, "must be a positive integer.");
      if (key == "max_tokens") f.maxTokens = v;
      else f.maxCompletionTokens = v;
    } else if (key == "temperature") {
      if (!v.isNumber()) return invalid(key, "must be a number.");
      if (v.n < 0 || v.n > 1) return invalid(key, "must be between 0 and 1 for provider anthropic (got " + v.s + ").");
      f.temperature = v;
    } else if (key == "top_p") {
      if (!v.isNumber()) return invalid(key, "must be a number.");
      f.topP = v;
    } else if (key == "top_k") {
      if (!v.isInteger() || v.n < 0) return invalid(key, "must be a non-negative integer.");
      f.topK = v;
    } else if (key == "stop") {
      if (v.isArray()) {
        for (let j = 0; j < v.length; j++) {
          if (!v.at(j).isString()) return invalid(key, "must be a string or a list of strings.");
        }
      } else if (!v.isString()) return invalid(key, "must be a string or a list of strings.");
      f.stop = v;
    } else if (key == "n") {
      if (!v.isNumber() || v.n != 1) return unsupported(key, "must be 1 for provider anthropic (it returns one choice).");
    } else if (key == "user" || key == "safety_identifier") {
      if (!v.isString()) return invalid(key, "must be a string.");
      if (key == "user") f.user = v.s;
      else safety = v.s;
    } else if (key == "tools") {
      if (!v.isArray()) return invalid(key, "must be a list.");
      f.tools = v;
    } else if (key == "tool_choice") f.toolChoice = v;
    else if (key == "parallel_tool_calls") {
      if (!v.isBool()) return invalid(key, "must be true or false.");
      f.parallel = v.b;
    } else if (key == "response_format") {
      const err = readResponseFormat(v, f);
      if (err !== null) return err;
    } else if (key == "thinking") {
      if (!v.isObject()) return invalid(key, "must be an object.");
      f.thinking = v;
    } else if (key == "reasoning_effort") {
      f.effort = v.isString() ? EFFORTS.indexOf(v.s) : -1;
      if (f.effort < 0) return invalid(key, "must be none, minimal, low, medium or high.");
    } else if (key == "logprobs") {
      if (v.isBool() && !v.b) continue;
      return notSupported(key);
    } else if (key == "top_logprobs") {
      if (v.isNumber() && v.n == 0) continue;
      return notSupported(key);
    } else if (key == "logit_bias") {
      if (v.isObject() && v.length == 0) continue;
      return notSupported(key);
    } else if (key == "presence_penalty" || key == "frequency_penalty") {
      if (v.isNumber() && v.n == 0) continue;
      return notSupported(key);
    } else if (key == "modalities") {
      if (v.isArray()) {
        let textOnly = true;
        for (let j = 0; j < v.length; j++) {
          if (!v.at(j).isString() || v.at(j).s != "text") textOnly = false;
        }
        if (textOnly) continue;
      }
      return unsupported(key, "other than [\"text\"] is not supported by provider anthropic.");
    } else if (key == "seed" || key == "store" || key == "metadata" || key == "service_tier" || key == "prompt_cache_key" || key == "prediction" || key == "stream_options") {
      continue; // harmless to drop (see the table at the top)
    } else if (key == "functions" || key == "function_call") {
      return unsupported(key, "is deprecated and not supported by provider anthropic; use tools and tool_choice.");
    } else {
      return notSupported(key);
    }
  }
  if (safety !== null) f.user = safety;
  return null;
}

/** True when the operator's options set this Anthropic member (they win). */
function optionSets(inst: Instance, key: string): bool {
  const o = inst.options;
  return o !== null && o.get(key) !== null;
}

function writeTools(tools: JsonValue, b: ByteBuilder): ClientError | null {
  b.raw(',"tools":[');
  for (let i = 0; i < tools.length; i++) {
    const t = tools.at(i);
    const tp = at("tools", i);
    if (!t.isObject()) return invalid(tp, "must be an object.");
    const type = t.getString("type");
    if (type !== null && type != "function") return unsupported(tp + ".type", "'" + (type as string) + "' tools are not supported by provider anthropic (only function tools).");
    const f = t.get("function");
    if (f === null || !f.isObject()) return invalid(tp + ".function", "is required.");
    const name = f.getString("name");
    if (name === null) return invalid(tp + ".function.name", "is required.");
    if (i) b.byte(0x2c);
    b.raw('{"name":').str(name as string);
    const d = f.getString("description");
    if (d !== null) b.raw(',"description":').str(d as string);
    b.raw(',"input_schema":');
    const params = f.get("parameters");
    if (params === null || params.isNull()) {
      b.raw('{"type":"object","properties":{}}');
    } else if (!params.isObject()) {
      return invalid(tp + ".function.parameters", "must be a JSON Schema object.");
    } else if (params.get("type") === null) {
      // Anthropic requires input_schema.type; OpenAI lets it default to object.
      b.raw('{"type":"object"');
      for (let j = 0, n = params.length; j < n; j++) b.byte(0x2c).str(params.keyAt(j)).byte(0x3a).value(params.at(j));
      b.byte(0x7d);
    } else {
      b.value(params);
    }
    b.byte(0x7d);
  }
  b.byte(0x5d);
  return null;
}

function writeToolChoice(f: RequestFields, hasTools: bool, b: ByteBuilder): ClientError | null {
  let type = "";
  let name: string | null = null;
  const tc = f.toolChoice;
  if (tc !== null) {
    if (tc.isString()) {
      if (tc.s == "auto") type = "auto";
      else if (tc.s == "required") type = "any";
      else if (tc.s == "none") type = "none";
      else return invalid("tool_choice", "must be auto, required, none or {\"type\":\"function\",\"function\":{\"name\":...}}.");
    } else if (tc.isObject() && tc.getString("type") == "function") {
      const fn = tc.get("function");
      name = fn !== null ? fn.getString("name") : null;
      if (name === null) return invalid("tool_choice.function.name", "is required.");
      type = "tool";
    } else {
      return unsupported("tool_choice", "must be auto, required, none or a function for provider anthropic.");
    }
  }
  if (!hasTools) {
    if (type == "any" || type == "tool") return invalid("tool_choice", "needs 'tools'.");
    return null; // auto / none without tools: nothing to say
  }
  const disable = !f.parallel && type != "none";
  if (type.length == 0 && !disable) return null;
  b.raw(',"tool_choice":{"type":').str(type.length ? type : "auto");
  if (name !== null) b.raw(',"name":').str(name as string);
  if (disable) b.raw(',"disable_parallel_tool_use":true');
  b.byte(0x7d);
  return null;
}

/** An integer member the operator's options set (e.g. max_tokens), or -1. */
function optionInt(inst: Instance, key: string): i64 {
  const o = inst.options;
  const v = o !== null ? o.get(key) : null;
  return v !== null && v.isInteger() && v.n >= 0 ? <i64>v.n : -1;
}

/**
 * The output limit and the thinking budget of a request (reasoning_effort -> thinking). Anthropic
 * counts thinking inside max_tokens and wants 1024 <= budget_tokens < max_tokens. Without a
 * client or instance limit, max_tokens is raised to the budget plus the default 4096 for the
 * answer. With one (a client's max_completion_tokens is a bound on what it pays for, reasoning
 * included, as in OpenAI's API), the limit stays: a budget that does not fit under it becomes half
 * the limit (at least 1024), and a limit of 1024 or less cannot hold any thinking: 400.
 */
class Limits {
  max: i64 = DEFAULT_MAX_TOKENS;
  budget: i64 = 0;
}

function limits(f: RequestFields, inst: Instance, l: Limits): ClientError | null {
  let given = true;
  let field = "max_completion_tokens";
  const mct = f.maxCompletionTokens;
  const mt = f.maxTokens;
  const om = optionInt(inst, "max_tokens");
  if (om >= 0) l.max = om;
  else if (inst.maxTokens >= 0) l.max = inst.maxTokens;
  else if (mct !== null) l.max = <i64>mct.n;
  else if (mt !== null) {
    l.max = <i64>mt.n;
    field = "max_tokens";
  } else given = false;
  if (f.thinking !== null || f.effort < 0 || optionSets(inst, "thinking")) return null;
  const budget = EFFORT_BUDGETS[f.effort];
  if (budget == 0) return null;
  if (!given) {
    l.max = budget + DEFAULT_MAX_TOKENS;
    l.budget = budget;
  } else if (l.max > budget) {
    l.budget = budget;
  } else if (l.max > MIN_THINKING_BUDGET) {
    l.budget = l.max / 2 > MIN_THINKING_BUDGET ? l.max / 2 : MIN_THINKING_BUDGET;
  } else {
    const own = om >= 0 || inst.maxTokens >= 0;
    return invalid(own ? "reasoning_effort" : field, own
      ? "cannot be served by this anthropic instance: it limits answers to " + l.max.toString() + " tokens, and thinking needs more than 1024."
      : "must be more than 1024 with reasoning_effort for provider anthropic (its thinking budget is at least 1024 tokens, counted inside the limit).");
  }
  return null;
}

/** The forced tool that carries a JSON answer (json_object / json_schema without structured outputs). */
function writeJsonTool(f: RequestFields, b: ByteBuilder): ClientError | null {
  const schema = f.schema;
  if (schema !== null) {
    const t = schema.get("type");
    if (t !== null && !(t.isString() && t.s == "object")) {
      return unsupported("response_format.json_schema.schema", "must describe an object for this anthropic model: the JSON comes back as a tool's input, which is an object.");
    }
  }
  const given = f.schemaName;
  const name = given !== null && isToolName(given as string) ? given as string : JSON_TOOL_NAME;
  const d = f.schemaDescription;
  b.raw(',"tools":[{"name":').str(name).raw(',"description":');
  b.str(d !== null && (d as string).length ? d as string : "Give the whole answer as this tool's input: it goes to the user as a JSON object.");
  b.raw(',"input_schema":');
  if (schema === null) b.raw('{"type":"object"}');
  else if ((schema as JsonValue).get("type") === null) {
    b.raw('{"type":"object"');
    for (let j = 0, n = schema.length; j < n; j++) b.byte(0x2c).str(schema.keyAt(j)).byte(0x3a).value(schema.at(j));
    b.byte(0x7d);
  } else b.value(schema as JsonValue);
  // One call, of this tool: its input is the answer.
  b.raw('}],"tool_choice":{"type":"tool","name":').str(name).raw(',"disable_parallel_tool_use":true}');
  return null;
}

/** output_config with the client's schema as format, and the operator's other output_config members. */
function writeOutputConfig(f: RequestFields, inst: Instance, b: ByteBuilder): void {
  b.raw(',"output_config":{"format":{"type":"json_schema","schema":').value(f.schema as JsonValue).byte(0x7d);
  const o = inst.options;
  const oc = o !== null ? o.get("output_config") : null;
  if (oc !== null && oc.isObject()) {
    for (let i = 0, n = oc.length; i < n; i++) {
      if (oc.keyAt(i) != "format") b.byte(0x2c).str(oc.keyAt(i)).byte(0x3a).value(oc.at(i));
    }
  }
  b.byte(0x7d);
}

/** A 400 for a JSON answer through a forced tool that the rest of the request rules out. */
function jsonToolConflict(f: RequestFields, hasTools: bool, l: Limits, inst: Instance): ClientError | null {
  const why = "for this anthropic model (it has no structured outputs, so the JSON answer comes through a forced tool)";
  if (hasTools) return unsupported("response_format", "cannot be combined with 'tools' " + why + ".");
  const thinking = f.thinking;
  const thinks = l.budget > 0 || optionSets(inst, "thinking") || (thinking !== null && thinking.getString("type") != "disabled");
  // Anthropic refuses a forced tool_choice while extended thinking is on.
  if (thinks) return unsupported("response_format", "cannot be combined with thinking or reasoning_effort " + why + ".");
  if (optionSets(inst, "tools") || optionSets(inst, "tool_choice")) return unsupported("response_format", "cannot be served " + why + ": the instance's options set tools.");
  return null;
}

/** Writes the Anthropic Messages body for an OpenAI chat request. */
/**
 * `bodyVersion`: the body a cloud takes for Claude (Vertex AI, Bedrock's InvokeModel), which names
 * this anthropic_version instead of the model (the model is in its URL); `streamInBody`: false
 * where the URL says whether it streams (Bedrock).
 */
export function writeAnthropicRequest(req: JsonValue, model: string, stream: bool, inst: Instance, b: ByteBuilder, bodyVersion: string = "", streamInBody: bool = true): ClientError | null {
  const f = new RequestFields();
  let err = collect(req, f);
  if (err !== null) return err;
  const msgs = f.messages;
  if (msgs === null) return invalid("messages", "must be a non-empty list.");
  const l = new Limits();
  err = limits(f, inst, l);
  if (err !== null) return err;
  const tools = f.tools;
  const hasTools = tools !== null && tools.length > 0;
  const jsonTool = usesJsonTool(f, model, inst);
  if (jsonTool) {
    err = jsonToolConflict(f, hasTools, l, inst);
    if (err !== null) return err;
  }

  if (bodyVersion.length) b.raw('{"anthropic_version":').str(bodyVersion);
  else b.raw('{"model":').str(model);
  if (!optionSets(inst, "max_tokens")) b.raw(',"max_tokens":').int(l.max);
  b.raw(',"messages":[');
  const system = new Array<string>();
  err = writeMessages(msgs as JsonValue, new Turns(b), system);
  if (err !== null) return err;
  b.byte(0x5d);
  if (system.length && !optionSets(inst, "system")) {
    b.raw(',"system":').str(system.length == 1 ? system[0] : system.join("\n\n"));
  }
  if (stream && streamInBody) b.raw(',"stream":true');
  const temperature = f.temperature;
  if (temperature !== null && !optionSets(inst, "temperature")) b.raw(',"temperature":').value(temperature);
  const topP = f.topP;
  if (topP !== null && !optionSets(inst, "top_p")) b.raw(',"top_p":').value(topP);
  const topK = f.topK;
  if (topK !== null && !optionSets(inst, "top_k")) b.raw(',"top_k":').value(topK);
  const stop = f.stop;
  if (stop !== null && !optionSets(inst, "stop_sequences")) {
    if (stop.isString()) b.raw(',"stop_sequences":[').str(stop.s).byte(0x5d);
    else if (stop.length > 0) b.raw(',"stop_sequences":').value(stop);
  }
  const user = f.user;
  if (user !== null && !optionSets(inst, "metadata")) b.raw(',"metadata":{"user_id":').str(user).byte(0x7d);
  if (jsonTool) {
    err = writeJsonTool(f, b);
    if (err !== null) return err;
  } else {
    if (hasTools && !optionSets(inst, "tools")) {
      err = writeTools(tools as JsonValue, b);
      if (err !== null) return err;
    }
    if (!optionSets(inst, "tool_choice")) {
      err = writeToolChoice(f, hasTools, b);
      if (err !== null) return err;
    }
  }
  const native = f.json == JSON_SCHEMA && !jsonTool;
  if (native) writeOutputConfig(f, inst, b);
  const thinking = f.thinking;
  if (!optionSets(inst, "thinking")) {
    if (thinking !== null) b.raw(',"thinking":').value(thinking);
    else if (l.budget > 0) b.raw(',"thinking":{"type":"enabled","budget_tokens":').int(l.budget).byte(0x7d);
  }
  const options = inst.options;
  if (options !== null) {
    for (let i = 0, n = options.length; i < n; i++) {
      if (native && options.keyAt(i) == "output_config") continue; // merged above
      b.byte(0x2c).str(options.keyAt(i)).byte(0x3a).value(options.at(i));
    }
  }
  b.byte(0x7d);
  return null;
}

/** ANSWER_JSON_TOOL when the request went out with the forced JSON tool (see writeAnthropicRequest). */
export function anthropicAnswerMode(req: JsonValue, model: string, inst: Instance): i32 {
  const rf = req.get("response_format");
  if (rf === null || !rf.isObject()) return ANSWER_PLAIN;
  const f = new RequestFields();
  if (readResponseFormat(rf, f) !== null) return ANSWER_PLAIN;
  return usesJsonTool(f, model, inst) ? ANSWER_JSON_TOOL : ANSWER_PLAIN;
}

// ---------------------------------------------------------------------------------------------
// Response

/** Anthropic stop_reason -> OpenAI finish_reason (tool_use is a stop when the tool carried a JSON answer). */
export function finishReason(stop: string, mode: i32): string {
  if (stop == "max_tokens" || stop == "model_context_window_exceeded") return "length";
  if (stop == "tool_use") return mode == ANSWER_JSON_TOOL ? "stop" : "tool_calls";
  if (stop == "refusal") return "content_filter";
  return "stop"; // end_turn, stop_sequence, pause_turn, and anything new
}

/** Anthropic's usage fields, as reported so far (-1 = not reported). */
class UsageParts {
  input: i64 = -1;
  output: i64 = -1;
  cacheRead: i64 = -1;
  cacheCreation: i64 = -1;

  /** Merges a usage object: every field it carries replaces the one seen before (they are cumulative). */
  read(v: JsonValue | null): bool {
    if (v === null || !v.isObject()) return false;
    const input = count(v.get("input_tokens"));
    const output = count(v.get("output_tokens"));
    const read = count(v.get("cache_read_input_tokens"));
    const creation = count(v.get("cache_creation_input_tokens"));
    if (input >= 0) this.input = input;
    if (output >= 0) this.output = output;
    if (read >= 0) this.cacheRead = read;
    if (creation >= 0) this.cacheCreation = creation;
    return true;
  }

  get any(): bool {
    return this.input >= 0 || this.output >= 0 || this.cacheRead >= 0 || this.cacheCreation >= 0;
  }

  /** Into OpenAI's accounting: cached and cache-creation tokens count inside the prompt. */
  into(u: Usage): void {
    if (!this.any) return;
    const input = this.input > 0 ? this.input : 0;
    const read = this.cacheRead > 0 ? this.cacheRead : 0;
    const creation = this.cacheCreation > 0 ? this.cacheCreation : 0;
    u.prompt = input + read + creation;
    // Unknown until reported (a stream's message_delta): -1 keeps it estimated, never 0.
    u.completion = this.output;
    u.total = this.output >= 0 ? u.prompt + u.completion : -1;
    u.cached = read;
    u.cacheWrite = creation;
    u.reasoning = 0;
  }
}

/**
 * Parses a Messages API answer into the neutral result. False if it is not one. With
 * ANSWER_JSON_TOOL a tool_use block's input is content (JSON text, in the place of the block) and
 * tool_use is a stop: the client asked for a JSON answer, not a tool call.
 */
export function readAnthropicMessage(body: JsonValue, out: ChatResult, mode: i32): bool {
  if (!body.isObject()) return false;
  const content = body.get("content");
  if (content === null || !content.isArray()) return false;
  const type = body.getString("type");
  if (type !== null && type != "message") return false;
  const id = str(body.get("id"));
  if (id !== null) out.id = id;
  const model = str(body.get("model"));
  if (model !== null) out.model = model;
  out.created = nowSeconds();
  const ch = new Choice();
  let text: string | null = null;
  let texts: Array<string> | null = null;
  // The first text block as the provider's bytes: an answer of one text block is passed on
  // without being decoded (Choice.contentValue).
  let first: JsonValue | null = null;
  let thinking: string | null = null;
  let thoughts: Array<string> | null = null;
  for (let i = 0; i < content.length; i++) {
    const b = content.at(i);
    const bt = b.getString("type");
    if (bt == "text") {
      const v = b.get("text");
      if (v === null || !v.isString()) continue;
      if (text === null && first === null) first = v;
      else {
        if (texts === null) texts = [text !== null ? text as string : (first as JsonValue).s];
        (texts as Array<string>).push(v.s);
      }
    } else if (bt == "thinking") {
      const t = b.getString("thinking");
      if (t === null) continue;
      if (thinking === null) thinking = t;
      else {
        if (thoughts === null) thoughts = [thinking as string];
        (thoughts as Array<string>).push(t as string);
      }
    } else if (bt == "tool_use" && mode == ANSWER_JSON_TOOL) {
      const input = b.get("input");
      const t = new ByteBuilder(64);
      if (input !== null && !input.isNull()) t.value(input);
      else t.raw("{}");
      if (text === null && first === null) text = t.toString();
      else {
        if (texts === null) texts = [text !== null ? text as string : (first as JsonValue).s];
        (texts as Array<string>).push(t.toString());
      }
    } else if (bt == "tool_use") {
      const tc = new ToolCall();
      const tid = b.getString("id");
      if (tid !== null) tc.id = tid as string;
      const name = b.getString("name");
      if (name !== null) tc.name = name as string;
      const input = b.get("input");
      if (input !== null && !input.isNull()) {
        const ab = new ByteBuilder(64);
        ab.value(input);
        tc.arguments = ab.toString();
      } else {
        tc.arguments = "{}";
      }
      ch.toolCalls.push(tc);
    }
    // redacted_thinking, server tool blocks and their results: nothing an OpenAI client can use.
  }
  if (texts !== null) text = (texts as Array<string>).join("");
  if (thoughts !== null) thinking = (thoughts as Array<string>).join("");
  if (texts === null && first !== null) ch.contentValue = first;
  else ch.content = text !== null ? text : ch.toolCalls.length ? null : "";
  ch.reasoning = thinking;
  const stop = str(body.get("stop_reason"));
  ch.finishReason = stop !== null ? finishReason(stop as string, mode) : "stop";
  const seq = str(body.get("stop_sequence"));
  if (seq !== null && stop == "stop_sequence") ch.stopSequence = seq;
  out.choices.push(ch);
  const parts = new UsageParts();
  parts.read(body.get("usage"));
  parts.into(out.usage);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Errors

/** HTTP status Anthropic uses for an error type (for errors that arrive inside a stream). */
export function statusForErrorType(type: string): u32 {
  if (type == "invalid_request_error") return 400;
  if (type == "authentication_error") return 401;
  if (type == "billing_error") return 402;
  if (type == "permission_error") return 403;
  if (type == "not_found_error") return 404;
  if (type == "request_too_large") return 413;
  if (type == "rate_limit_error") return 429;
  if (type == "timeout_error") return 504;
  if (type == "overloaded_error") return 529;
  return 500; // api_error and anything new
}

/**
 * An Anthropic error body ({"type":"error","error":{type,message}}) with the provider's status.
 * Only the nested error object is read: the top-level "type":"error" is not an error type.
 */
export function anthropicError(status: u32, body: JsonValue | null): ClientError {
  const e = new ClientError();
  e.status = status;
  e.type = status == 529 ? "overloaded_error" : errorTypeForStatus(status);
  e.message = "The anthropic provider returned HTTP " + status.toString() + ".";
  if (body === null || !body.isObject()) return e;
  const err = body.get("error");
  if (err !== null && err.isObject()) {
    const m = err.getString("message");
    if (m !== null && (m as string).length) e.message = m as string;
    const t = err.getString("type");
    if (t !== null && (t as string).length) e.type = t as string;
  } else if (err !== null && err.isString() && err.s.length) {
    e.message = err.s; // a proxy in front of the API
  } else {
    const m = body.getString("message");
    if (m !== null && (m as string).length) e.message = m as string;
  }
  return e;
}

/** An `error` event inside a 200 stream: its type decides the status. */
function streamError(v: JsonValue): ClientError {
  const err = v.get("error");
  let type = "api_error";
  if (err !== null) {
    const t = err.getString("type");
    if (t !== null && (t as string).length) type = t as string;
  }
  const e = anthropicError(statusForErrorType(type), v);
  e.type = type;
  return e;
}

// ---------------------------------------------------------------------------------------------
// Stream

const BLOCK_TEXT: i32 = -1;
const BLOCK_THINKING: i32 = -2;
const BLOCK_OTHER: i32 = -3;
/** A tool_use block whose input is the JSON answer (ANSWER_JSON_TOOL): its deltas are text. */
const BLOCK_JSON: i32 = -4;

// What the fast path found (AnthropicStreamDecoder.fastDelta).
const FAST_NONE: i32 = 0;
const FAST_TEXT: i32 = 1;
const FAST_JSON: i32 = 2;

/** Decodes Anthropic's SSE events (message_start ... message_stop) into sink calls. */
export class AnthropicStreamDecoder extends StreamDecoder {
  started: bool = false;
  finished: bool = false;
  parts: UsageParts = new UsageParts();
  /** tool_use blocks seen: the next OpenAI tool index. */
  tools: i32 = 0;
  // Open content blocks: Anthropic's block index -> kind (BLOCK_*) or tool index (>= 0).
  blockIds: Array<i32> = [];
  blockKinds: Array<i32> = [];

  // The string of a delta read by the fast path, reused from event to event, and its block index.
  private fastText: JsonValue = new JsonValue();
  private fastIndex: i32 = 0;

  event(e: SseEvent, sink: StreamSink): void {
    if (this.done) return;
    const fast = this.fastDelta(e);
    if (fast == FAST_TEXT) {
      this.ensureStarted(sink);
      if (this.fastText.rawLen > 0) sink.textValue(0, this.fastText);
      return;
    }
    if (fast == FAST_JSON) {
      this.ensureStarted(sink);
      if (this.fastText.rawLen > 0) this.toolJson(this.kindOf(this.fastIndex), this.fastText, sink);
      return;
    }
    const v = parseJsonAt(e.ptr, e.len, e.owner);
    if (v === null || !v.isObject()) return; // not JSON: nothing a client could use
    let type = v.getString("type");
    if (type === null) type = e.event;
    if (type == "content_block_delta") this.delta(v, sink);
    else if (type == "content_block_start") this.blockStart(v, sink);
    else if (type == "content_block_stop") this.blockStop(v);
    else if (type == "message_start") this.messageStart(v, sink);
    else if (type == "message_delta") this.messageDelta(v, sink);
    else if (type == "message_stop") {
      this.ensureStarted(sink);
      if (!this.finished) {
        this.finished = true;
        sink.finish(0, "stop", null);
      }
      this.done = true;
      this.publish(sink);
    } else if (type == "error") {
      sink.error(this.providerError(streamError(v)));
      this.done = true;
    } else if (type == "ping") {
      sink.keepAlive();
    }
    // Event types added later: ignored.
  }

  /**
   * Most of a stream is text deltas, or tool input deltas for a tool call or a JSON answer, which
   * Anthropic serializes exactly so:
   *   {"type":"content_block_delta","index":N,"delta":{"type":"text_delta","text":"..."}}
   *   {"type":"content_block_delta","index":N,"delta":{"type":"input_json_delta","partial_json":"..."}}
   * An event of that shape is read without building a JSON tree (its string stays as bytes in the
   * chunk, in fastText; the block index in fastIndex); anything else, even the same event spaced
   * or ordered differently, is parsed in full.
   */
  fastDelta(e: SseEvent): i32 {
    const end = e.ptr + <usize>e.len;
    let p = matchAscii(e.ptr, end, '{"type":"content_block_delta","index":');
    if (p == 0) return FAST_NONE;
    const digits = p;
    let index: i32 = 0;
    while (p < end && p - digits < 7 && load<u8>(p) >= 0x30 && load<u8>(p) <= 0x39) {
      index = index * 10 + <i32>(load<u8>(p) - 0x30);
      p++;
    }
    if (p == digits || (load<u8>(digits) == 0x30 && p - digits > 1)) return FAST_NONE;
    let kind = FAST_TEXT;
    let q = matchAscii(p, end, ',"delta":{"type":"text_delta","text":"');
    if (q == 0) {
      q = matchAscii(p, end, ',"delta":{"type":"input_json_delta","partial_json":"');
      kind = FAST_JSON;
    }
    if (q == 0) return FAST_NONE;
    q = rawStringAt(q, end, e.owner, this.fastText);
    if (q == 0 || matchAscii(q, end, "}}") != end) return FAST_NONE;
    this.fastIndex = index;
    return kind;
  }

  /** A piece of a tool_use block's input: a tool call's arguments, or the JSON answer's text. */
  toolJson(kind: i32, json: JsonValue, sink: StreamSink): void {
    if (kind >= 0) sink.toolArgsValue(0, kind, json);
    else if (kind == BLOCK_JSON) sink.textValue(0, json);
  }

  ensureStarted(sink: StreamSink): void {
    if (this.started) return;
    this.started = true;
    sink.start("", "", nowSeconds());
  }

  messageStart(v: JsonValue, sink: StreamSink): void {
    if (this.started) return;
    this.started = true;
    const m = v.get("message");
    let id = "";
    let model = "";
    if (m !== null && m.isObject()) {
      const i = m.getString("id");
      if (i !== null) id = i as string;
      const md = m.getString("model");
      if (md !== null) model = md as string;
      this.parts.read(m.get("usage"));
      // message_start's output_tokens is a placeholder (1 or so); the count comes with message_delta.
      this.parts.output = -1;
    }
    sink.start(id, model, nowSeconds());
    // The input tokens are known from here on: a stream cut or hung up on later keeps them.
    this.publish(sink);
  }

  /** Block index of an event, or -1. */
  index(v: JsonValue): i32 {
    const i = v.get("index");
    if (i === null || !i.isInteger() || i.n < 0 || i.n > 1000000) return -1;
    return <i32>i.n;
  }

  kindOf(index: i32): i32 {
    for (let i = this.blockIds.length - 1; i >= 0; i--) {
      if (unchecked(this.blockIds[i]) == index) return unchecked(this.blockKinds[i]);
    }
    return BLOCK_OTHER;
  }

  blockStart(v: JsonValue, sink: StreamSink): void {
    this.ensureStarted(sink);
    const index = this.index(v);
    const cb = v.get("content_block");
    if (cb === null || !cb.isObject()) return;
    const type = cb.getString("type");
    let kind = BLOCK_OTHER;
    if (type == "text") {
      kind = BLOCK_TEXT;
      const t = cb.getString("text");
      if (t !== null && (t as string).length) sink.text(0, t as string);
    } else if (type == "thinking") {
      kind = BLOCK_THINKING;
      const t = cb.getString("thinking");
      if (t !== null && (t as string).length) sink.reasoning(0, t as string);
    } else if (type == "tool_use" && this.mode == ANSWER_JSON_TOOL) {
      // The forced JSON tool: its input is the answer's text.
      kind = BLOCK_JSON;
      const input = cb.get("input");
      if (input !== null && input.isObject() && input.length > 0) sink.text(0, new ByteBuilder(64).value(input).toString());
    } else if (type == "tool_use") {
      kind = this.tools++;
      const id = cb.getString("id");
      const name = cb.getString("name");
      sink.toolStart(0, kind, id !== null ? id as string : "", name !== null ? name as string : "");
      // Anthropic starts with "input":{} and streams the JSON; a non-empty start is sent whole.
      const input = cb.get("input");
      if (input !== null && input.isObject() && input.length > 0) {
        const ab = new ByteBuilder(64);
        ab.value(input);
        sink.toolArgs(0, kind, ab.toString());
      }
    }
    if (index >= 0) {
      this.blockIds.push(index);
      this.blockKinds.push(kind);
    }
  }

  blockStop(v: JsonValue): void {
    const index = this.index(v);
    for (let i = this.blockIds.length - 1; i >= 0; i--) {
      if (unchecked(this.blockIds[i]) == index) {
        this.blockIds.splice(i, 1);
        this.blockKinds.splice(i, 1);
        return;
      }
    }
  }

  delta(v: JsonValue, sink: StreamSink): void {
    this.ensureStarted(sink);
    const d = v.get("delta");
    if (d === null || !d.isObject()) return;
    const type = d.getString("type");
    if (type == "text_delta") {
      const t = d.get("text");
      if (nonEmpty(t)) sink.textValue(0, t as JsonValue);
    } else if (type == "input_json_delta") {
      const pj = d.get("partial_json");
      if (nonEmpty(pj)) this.toolJson(this.kindOf(this.index(v)), pj as JsonValue, sink);
    } else if (type == "thinking_delta") {
      const t = d.get("thinking");
      if (nonEmpty(t)) sink.reasoningValue(0, t as JsonValue);
    }
    // signature_delta, citations_delta: nothing an OpenAI client can use.
  }

  messageDelta(v: JsonValue, sink: StreamSink): void {
    this.ensureStarted(sink);
    const d = v.get("delta");
    if (d !== null && d.isObject()) {
      const stop = d.getString("stop_reason");
      if (stop !== null && !this.finished) {
        this.finished = true;
        const seq = d.getString("stop_sequence");
        sink.finish(0, finishReason(stop as string, this.mode), stop == "stop_sequence" ? seq : null);
      }
    }
    if (this.parts.read(v.get("usage"))) this.publish(sink);
  }

  /** Makes the merged usage visible to the filter and the sink. */
  publish(sink: StreamSink): void {
    if (!this.parts.any) return;
    this.parts.into(this.usage);
    sink.usage(this.usage);
  }
}

// ---------------------------------------------------------------------------------------------

export class AnthropicProvider extends Provider {
  get name(): string { return "anthropic"; }
  get genAiName(): string { return "anthropic"; }

  get speaksAnthropic(): bool { return true; }

  get maxTokensField(): string { return "max_tokens"; }

  probePath(inst: Instance): string {
    return inst.basePath.endsWith("/v1") ? inst.basePath + "/models" : inst.basePath + "/v1/models";
  }

  defaultEndpoint(): string { return "https://api.anthropic.com"; }

  chatUpstream(inst: Instance, model: string, stream: bool): Upstream {
    const u = new Upstream();
    u.path = messagesPath(inst.basePath);
    if (inst.apiKey.length) {
      u.headers.push("x-api-key");
      u.headers.push(inst.apiKey);
    }
    u.headers.push("anthropic-version");
    u.headers.push(inst.apiVersion.length ? inst.apiVersion : ANTHROPIC_VERSION);
    return u;
  }

  countTokensUpstream(inst: Instance, model: string): Upstream | null {
    // Same credential and version headers as a message; the path is the message path's child.
    const u = this.chatUpstream(inst, model, false);
    u.path += "/count_tokens";
    return u;
  }

  chatRequest(req: JsonValue, model: string, stream: bool, inst: Instance, out: ByteBuilder): ClientError | null {
    return writeAnthropicRequest(req, model, stream, inst, out);
  }

  answerMode(req: JsonValue, model: string, inst: Instance): i32 {
    return anthropicAnswerMode(req, model, inst);
  }

  chatResponse(body: JsonValue, out: ChatResult, mode: i32): bool {
    return readAnthropicMessage(body, out, mode);
  }

  streamDecoder(): StreamDecoder {
    return new AnthropicStreamDecoder();
  }

  // embeddingsUpstream: Anthropic has no embeddings API; the base class returns null.

  error(status: u32, body: JsonValue | null): ClientError {
    return anthropicError(status, body);
  }
}
