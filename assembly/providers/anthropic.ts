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
//   response_format          {type:text} dropped; json_object / json_schema: 400 (Anthropic has no
//                               JSON mode; ask for JSON in the prompt, or force a tool).
//   thinking                 -> thinking (Anthropic's own switch, sent by Anthropic clients)
//   reasoning_effort         400: use `thinking` (a budget has no faithful effort mapping).
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
// serialised as the arguments JSON); thinking -> reasoning (redacted_thinking and server tool
// blocks are left out); stop_reason end_turn, stop_sequence, pause_turn -> stop (the stop
// sequence is kept for Anthropic clients), max_tokens and model_context_window_exceeded ->
// length, tool_use -> tool_calls, refusal -> content_filter. Usage: prompt = input_tokens +
// cache_read_input_tokens + cache_creation_input_tokens (OpenAI counts cached tokens inside
// prompt_tokens), cached = cache_read_input_tokens, completion = output_tokens (thinking
// included: Anthropic does not report reasoning tokens apart). `created` is the gateway's clock.
//
// Stream: message_start (id, model, input usage), content_block_start (text / tool_use /
// thinking), content_block_delta (text_delta, input_json_delta, thinking_delta; signature_delta
// and citations ignored), message_delta (stop_reason -> finish, cumulative usage merged with
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
import { JsonValue, ByteBuilder, parseJsonString, parseJsonAt, nonEmpty, matchAscii, rawStringAt } from "../lib/json";
import { SseEvent } from "../lib/sse";
import { nowNanos } from "../lib/sdk";
import {
  Provider, Instance, Upstream, ChatResult, Choice, ToolCall, Usage, ClientError, StreamDecoder, StreamSink,
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

function writeText(b: ByteBuilder, text: string): void {
  b.raw('{"type":"text","text":').str(text).byte(0x7d);
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
    if (content.s.length) writeText(t.block(USER), content.s);
    return null;
  }
  if (!content.isArray()) return invalid(msgPath(mi) + ".content", "must be a string or a list of content parts.");
  for (let i = 0; i < content.length; i++) {
    const p = content.at(i);
    const type = p.getString("type");
    if (type == "text") {
      const text = p.getString("text");
      if (text === null) return invalid(partPath(mi, i) + ".text", "is required.");
      if ((text as string).length) writeText(t.block(USER), text as string);
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
    const refusal = m.getString("refusal");
    if (refusal !== null && (refusal as string).length) writeText(t.block(ASSISTANT), refusal as string);
  } else if (content.isString()) {
    if (content.s.length) writeText(t.block(ASSISTANT), content.s);
  } else if (content.isArray()) {
    for (let i = 0; i < content.length; i++) {
      const p = content.at(i);
      const type = p.getString("type");
      const text = type == "text" ? p.getString("text") : type == "refusal" ? p.getString("refusal") : null;
      if (text === null) return invalid(partPath(mi, i), "assistant content parts must be text or refusal parts.");
      if ((text as string).length) writeText(t.block(ASSISTANT), text as string);
    }
  } else {
    return invalid(msgPath(mi) + ".content", "must be a string, a list of text parts, or null.");
  }
  const calls = m.get("tool_calls");
  if (calls === null || calls.isNull()) return null;
  if (!calls.isArray()) return invalid(msgPath(mi) + ".tool_calls", "must be a list.");
  for (let i = 0; i < calls.length; i++) {
    const c = calls.at(i);
    const id = c.getString("id");
    if (id === null) return invalid(callPath(mi, i) + ".id", "is required.");
    const type = c.getString("type");
    if (type !== null && type != "function") return unsupported(callPath(mi, i) + ".type", "'" + (type as string) + "' tool calls are not supported by provider anthropic.");
    const f = c.get("function");
    const name = f !== null ? f.getString("name") : null;
    if (name === null) return invalid(callPath(mi, i) + ".function.name", "is required.");
    const args = (f as JsonValue).get("arguments");
    let input: JsonValue | null = null;
    if (args === null || args.isNull() || (args.isString() && args.s.length == 0)) {
      input = null;
    } else if (args.isString()) {
      input = parseJsonString(args.s);
      if (input === null || !input.isObject()) return invalid(callPath(mi, i) + ".function.arguments", "must be the JSON text of an object.");
    } else if (args.isObject()) {
      input = args;
    } else {
      return invalid(callPath(mi, i) + ".function.arguments", "must be the JSON text of an object.");
    }
    const b = t.block(ASSISTANT);
    b.raw('{"type":"tool_use","id":').str(id as string).raw(',"name":').str(name as string).raw(',"input":');
    if (input !== null) b.value(input as JsonValue);
    else b.raw("{}");
    b.byte(0x7d);
  }
  return null;
}

/** A tool message: a tool_result block in a user turn. */
function writeToolResult(m: JsonValue, mi: i32, t: Turns): ClientError | null {
  const id = m.getString("tool_call_id");
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
  b.raw('{"type":"tool_result","tool_use_id":').str(id as string);
  if (content !== null && content.isString()) {
    b.raw(',"content":').str(content.s);
  } else if (content !== null && content.isArray()) {
    b.raw(',"content":[');
    let n = 0;
    for (let i = 0; i < content.length; i++) {
      const p = content.at(i);
      if (p.getString("type") == "text") {
        const text = p.getString("text") as string;
        if (text.length == 0) continue;
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
      const type = v.getString("type");
      if (type == "text") continue;
      return unsupported(key, "'" + (type !== null ? type as string : "") + "' is not supported by provider anthropic (it has no JSON mode): ask for JSON in the prompt or force a tool call.");
    } else if (key == "thinking") {
      if (!v.isObject()) return invalid(key, "must be an object.");
      f.thinking = v;
    } else if (key == "reasoning_effort") {
      return unsupported(key, "is not supported by provider anthropic; use 'thinking' ({\"type\":\"enabled\",\"budget_tokens\":N}).");
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

/** Writes the Anthropic Messages body for an OpenAI chat request. */
export function writeAnthropicRequest(req: JsonValue, model: string, stream: bool, inst: Instance, b: ByteBuilder): ClientError | null {
  const f = new RequestFields();
  let err = collect(req, f);
  if (err !== null) return err;
  const msgs = f.messages;
  if (msgs === null) return invalid("messages", "must be a non-empty list.");

  b.raw('{"model":').str(model);
  if (!optionSets(inst, "max_tokens")) {
    let max = DEFAULT_MAX_TOKENS;
    const mct = f.maxCompletionTokens;
    const mt = f.maxTokens;
    if (inst.maxTokens >= 0) max = inst.maxTokens;
    else if (mct !== null) max = <i64>mct.n;
    else if (mt !== null) max = <i64>mt.n;
    b.raw(',"max_tokens":').int(max);
  }
  b.raw(',"messages":[');
  const system = new Array<string>();
  err = writeMessages(msgs as JsonValue, new Turns(b), system);
  if (err !== null) return err;
  b.byte(0x5d);
  if (system.length && !optionSets(inst, "system")) {
    b.raw(',"system":').str(system.length == 1 ? system[0] : system.join("\n\n"));
  }
  if (stream) b.raw(',"stream":true');
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
  const tools = f.tools;
  const hasTools = tools !== null && tools.length > 0;
  if (hasTools && !optionSets(inst, "tools")) {
    err = writeTools(tools as JsonValue, b);
    if (err !== null) return err;
  }
  if (!optionSets(inst, "tool_choice")) {
    err = writeToolChoice(f, hasTools, b);
    if (err !== null) return err;
  }
  const thinking = f.thinking;
  if (thinking !== null && !optionSets(inst, "thinking")) b.raw(',"thinking":').value(thinking);
  const options = inst.options;
  if (options !== null) {
    for (let i = 0, n = options.length; i < n; i++) b.byte(0x2c).str(options.keyAt(i)).byte(0x3a).value(options.at(i));
  }
  b.byte(0x7d);
  return null;
}

// ---------------------------------------------------------------------------------------------
// Response

/** Anthropic stop_reason -> OpenAI finish_reason. */
export function finishReason(stop: string): string {
  if (stop == "max_tokens" || stop == "model_context_window_exceeded") return "length";
  if (stop == "tool_use") return "tool_calls";
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
    u.reasoning = 0;
  }
}

/** Parses a Messages API answer into the neutral result. False if it is not one. */
export function readAnthropicMessage(body: JsonValue, out: ChatResult): bool {
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
  let thinking: string | null = null;
  let thoughts: Array<string> | null = null;
  for (let i = 0; i < content.length; i++) {
    const b = content.at(i);
    const bt = b.getString("type");
    if (bt == "text") {
      const t = b.getString("text");
      if (t === null) continue;
      if (text === null) text = t;
      else {
        if (texts === null) texts = [text as string];
        (texts as Array<string>).push(t as string);
      }
    } else if (bt == "thinking") {
      const t = b.getString("thinking");
      if (t === null) continue;
      if (thinking === null) thinking = t;
      else {
        if (thoughts === null) thoughts = [thinking as string];
        (thoughts as Array<string>).push(t as string);
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
  ch.content = text !== null ? text : ch.toolCalls.length ? null : "";
  ch.reasoning = thinking;
  const stop = str(body.get("stop_reason"));
  ch.finishReason = stop !== null ? finishReason(stop as string) : "stop";
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

  // The text of a delta read by the fast path, reused from event to event.
  private fastText: JsonValue = new JsonValue();

  event(e: SseEvent, sink: StreamSink): void {
    if (this.done) return;
    if (this.textDelta(e)) {
      this.ensureStarted(sink);
      if (this.fastText.rawLen > 0) sink.textValue(0, this.fastText);
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
   * Most of a stream is text deltas, which Anthropic serializes exactly so:
   *   {"type":"content_block_delta","index":N,"delta":{"type":"text_delta","text":"..."}}
   * An event of that shape is read without building a JSON tree (its text stays as bytes in the
   * chunk); anything else, even the same event spaced or ordered differently, is parsed in full.
   */
  textDelta(e: SseEvent): bool {
    const end = e.ptr + <usize>e.len;
    let p = matchAscii(e.ptr, end, '{"type":"content_block_delta","index":');
    if (p == 0) return false;
    const digits = p;
    while (p < end && p - digits < 7 && load<u8>(p) >= 0x30 && load<u8>(p) <= 0x39) p++;
    if (p == digits || (load<u8>(digits) == 0x30 && p - digits > 1)) return false;
    p = matchAscii(p, end, ',"delta":{"type":"text_delta","text":"');
    if (p == 0) return false;
    p = rawStringAt(p, end, e.owner, this.fastText);
    if (p == 0) return false;
    return matchAscii(p, end, "}}") == end;
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
      const kind = this.kindOf(this.index(v));
      const pj = d.get("partial_json");
      if (kind >= 0 && nonEmpty(pj)) sink.toolArgsValue(0, kind, pj as JsonValue);
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
        sink.finish(0, finishReason(stop as string), stop == "stop_sequence" ? seq : null);
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

  chatResponse(body: JsonValue, out: ChatResult): bool {
    return readAnthropicMessage(body, out);
  }

  streamDecoder(): StreamDecoder {
    return new AnthropicStreamDecoder();
  }

  // embeddingsUpstream: Anthropic has no embeddings API; the base class returns null.

  error(status: u32, body: JsonValue | null): ClientError {
    return anthropicError(status, body);
  }
}
