// Google Gemini API, native (https://ai.google.dev/api): generateContent,
// streamGenerateContent?alt=sse and batchEmbedContents, key in `x-goog-api-key`.
// Default endpoint https://generativelanguage.googleapis.com/v1beta; paths are
// <basePath>/models/<model>:generateContent | :streamGenerateContent?alt=sse | :batchEmbedContents
// (a model given as "tunedModels/x" or "models/x" is used as that resource name). Model names are
// checked ([A-Za-z0-9._-], one '/', no "..") since the client's model becomes part of the path.
//
// Field by field (OpenAI chat request -> Gemini GenerateContentRequest):
//   messages, system / developer -> systemInstruction.parts[].text, all of them in order wherever they
//       stand (Gemini has one system instruction); non-text parts there -> 400.
//   messages, user -> role "user"; assistant -> role "model"; consecutive turns of one role are merged.
//       Empty text is skipped (Gemini rejects empty parts); a request left with no turn -> 400.
//   content parts: text -> {text}; image_url data: URL (base64) -> inlineData {mimeType, data};
//       image_url http(s):// or gs:// -> fileData {mimeType, fileUri}: Gemini fetches public and signed
//       HTTPS URLs itself (Gemini API "file input methods"); the MIME type is guessed from the file
//       extension (png, jpeg, webp, gif, heic, heif, pdf), image/jpeg otherwise. `detail` is dropped.
//       input_audio {data, format} -> inlineData audio/<format>; file {file_data} -> inlineData (MIME
//       from the data URL or the filename, application/pdf otherwise); file_id -> 400; others -> 400.
//   assistant tool_calls -> functionCall {name, args}; arguments must be a JSON object, else 400.
//       A Gemini thought signature travels inside the tool call id we hand out ("...__sig_<base64url>")
//       and is put back as the part's thoughtSignature: Gemini 3 models reject a function-call turn
//       without it. For gemini-3+ (or unversioned aliases) a model turn whose calls carry no signature
//       (history from another provider) gets the documented "skip_thought_signature_validator".
//       Function call ids are never sent (Gemini matches responses by name and order).
//   tool messages -> functionResponse {name, response: {content: <the JSON object or array the text
//       parses to, else the text>}} in a "user" turn; the name comes from the earlier assistant
//       tool_call with that tool_call_id (none -> 400); consecutive ones share one turn.
//   tools -> tools[{functionDeclarations:[{name, description, parameters}]}]; `strict` dropped;
//       non-function tools -> 400. An object schema without properties sends no `parameters` (Gemini
//       rejects an empty OBJECT). JSON Schema -> Gemini Schema (the OpenAPI 3.0 subset): kept are
//       type (upper-cased; ["x","null"] -> type + nullable; of several types the first), title,
//       description, nullable, enum (values as strings, null -> nullable), const (-> enum), format
//       (only enum, date-time, float, double, int32, int64), properties, required, items, anyOf (oneOf
//       read as anyOf; a {"type":"null"} branch -> nullable; one branch left -> inlined), minItems,
//       maxItems, minLength, maxLength, minProperties, maxProperties, minimum, maximum, pattern,
//       default, example, propertyOrdering. Local $ref (#/$defs/..., #/definitions/...) and a
//       one-item allOf are inlined, their siblings winning; other $refs, recursion deeper than 24
//       levels, a multi-item allOf and tuple `items` -> 400. Everything else is dropped:
//       additionalProperties, $schema, $id, $defs, definitions, strict, patternProperties, uniqueItems,
//       multipleOf, exclusiveMinimum/Maximum, not, if/then/else, examples, readOnly, ...
//   tool_choice auto|none|required -> toolConfig.functionCallingConfig.mode AUTO|NONE|ANY;
//       {type:function, function:{name}} -> ANY + allowedFunctionNames [name]; others -> 400. Only sent
//       with tools.
//   parallel_tool_calls -> dropped (Gemini has no switch; it may still return several calls).
//   temperature -> temperature; top_p -> topP; top_k (Anthropic clients) -> topK; seed -> seed;
//       presence_penalty / frequency_penalty -> presencePenalty / frequencyPenalty; n -> candidateCount.
//   max_completion_tokens, else max_tokens -> maxOutputTokens; the instance's max_tokens overrides.
//   stop (string or list of strings) -> stopSequences.
//   response_format text -> nothing; json_object -> responseMimeType "application/json"; json_schema ->
//       that + responseSchema (converted as above: one schema dialect for tools and answers, accepted
//       by every Gemini model, where responseJsonSchema is newer), except that keywords constraining
//       values that the subset cannot hold (ANSWER_REFUSED: not, if/then/else, uniqueItems,
//       multipleOf, exclusiveMinimum/Maximum, patternProperties, prefixItems, contains, dependent*,
//       propertyNames, unevaluated*, and a schema-valued additionalProperties) are a 400 there: the
//       client takes the answer as conforming. Other types -> 400.
//   thinking (Anthropic clients) enabled {budget_tokens} -> thinkingConfig {thinkingBudget,
//       includeThoughts: true}; adaptive -> {thinkingBudget: -1 (dynamic), includeThoughts: true};
//       disabled -> nothing (the model's default: 2.5 Pro cannot turn thinking off).
//   reasoning_effort none|minimal|low|medium|high -> thinkingConfig.thinkingBudget 0|0|1024|8192|24576
//       before Gemini 3; from Gemini 3 on (and unversioned names) thinkingLevel
//       minimal|minimal|low|medium|high (thoughts not returned). `thinking` wins when both are given.
//   stream -> the streaming path; stream_options -> dropped (Gemini always sends usageMetadata).
//   user, metadata, store, service_tier, prompt_cache_key, safety_identifier, prediction, verbosity
//       -> dropped (bookkeeping or hints that do not change the answer's meaning).
//   logprobs true, top_logprobs, a non-empty logit_bias, audio, modalities other than ["text"],
//       web_search_options, functions / function_call (legacy) and any unknown field -> 400.
//   Instance options are Gemini-native request members: `generationConfig` members override ours one
//       by one; any other member (safetySettings, cachedContent, tools, toolConfig,
//       systemInstruction, ...) replaces ours; `contents` is ignored.
//
// Gemini answer -> neutral ChatResult / stream events:
//   candidates[i] -> choice (candidate.index, else its position; an index outside [0, 128) is
//       ignored as hostile); text parts joined -> content,
//       parts with thought:true -> reasoning; functionCall -> tool call with Gemini's id, else
//       "call_<responseId>_<k>" (k counts the calls of the response), plus the thought signature as
//       above; args serialized as the arguments JSON. executableCode / inlineData answers are ignored.
//   finishReason STOP -> stop (tool_calls when the candidate called functions); MAX_TOKENS -> length;
//       SAFETY, RECITATION, BLOCKLIST, PROHIBITED_CONTENT, SPII, IMAGE_SAFETY,
//       IMAGE_PROHIBITED_CONTENT, IMAGE_RECITATION -> content_filter; others -> stop.
//   A blocked prompt (promptFeedback.blockReason, no candidates) -> one choice, content "", refusal
//       "The prompt was blocked by Gemini (<reason>).", finish content_filter: Gemini answers it with
//       HTTP 200, and a stream has already started, so both paths answer the same way.
//   usageMetadata: promptTokenCount + toolUsePromptTokenCount -> prompt; candidatesTokenCount +
//       thoughtsTokenCount -> completion (OpenAI counts reasoning in completion_tokens);
//       thoughtsTokenCount -> reasoning; cachedContentTokenCount -> cached; totalTokenCount -> total.
//       Absent counts are 0 (proto3 JSON omits zeros), except the output counts of a stream chunk
//       before the finishReason: unknown, so a stream cut short is estimated. In streams usage comes
//       on many chunks: the last wins.
//   responseId -> id; modelVersion -> model; created is the gateway's clock (Gemini sends none).
//   Streams: every `data:` event is a whole GenerateContentResponse carrying new parts only; no
//       [DONE]: a chunk with a finishReason (or a blocked prompt) ends the stream. Function calls arrive
//       whole: toolStart + one toolArgs.
//   Errors {"error":{code, message, status}} -> the provider's HTTP status; status INVALID_ARGUMENT,
//       FAILED_PRECONDITION, OUT_OF_RANGE -> invalid_request_error; UNAUTHENTICATED ->
//       authentication_error; PERMISSION_DENIED -> permission_error; NOT_FOUND -> not_found_error;
//       RESOURCE_EXHAUSTED -> rate_limit_error; others -> api_error; code = the status in lower case.
//
// Embeddings (OpenAI /v1/embeddings -> batchEmbedContents):
//   input string | list of strings -> requests[{model: "models/<m>", content: {parts: [{text}]}}];
//   token arrays -> 400; dimensions -> outputDimensionality; encoding_format base64 -> 400; user ->
//   dropped; instance options taskType / title / outputDimensionality go into every request.
//   Answer {embeddings: [{values}]} -> {object: "list", data: [{object: "embedding", index,
//   embedding}], model, usage}. Gemini's Developer API reports no usage for embeddings: usage is then
//   left unreported so the usage record is the gateway's estimate from the request size (4 chars a
//   token, usage_source=estimate), and the body says prompt_tokens = total_tokens = 0. The provider
//   interface gives embeddingsResponse no access to the request, so the input length is not at hand
//   here. A usageMetadata in the answer (Vertex-style) is used when present.
import { JsonValue, ByteBuilder, parseJsonString, parseJsonText, parseJsonAt } from "../lib/json";
import { SseEvent } from "../lib/sse";
import { nowNanos } from "../lib/sdk";
import {
  Provider, Instance, Upstream, ChatResult, Choice, ToolCall, Usage, ClientError, StreamDecoder, StreamSink, isPathSegment, invalidModel,
} from "./types";
import { errorTypeForStatus, smallIndex } from "./openai";

/** Marks the thought signature carried inside a tool call id. */
const SIG = "__sig_";
/** Gemini's documented stand-in for function calls that have no signature of their own. */
const SKIP_SIG = "skip_thought_signature_validator";

function bad(where: string, what: string): ClientError {
  return ClientError.of(400, where + ": " + what + ".", "invalid_request_error", "invalid_value");
}

/** Where in the request: "messages[i]", ".sub[j]" (j >= 0) or ".sub" (sub given). Built only for errors. */
function at(i: i32, sub: string, j: i32): string {
  let w = "messages[" + i.toString() + "]";
  if (sub.length) w += "." + sub;
  return j >= 0 ? w + "[" + j.toString() + "]" : w;
}

function unsupported(what: string): ClientError {
  return ClientError.of(400, what + " is not supported by provider gemini.", "invalid_request_error", "unsupported_parameter");
}

function present(v: JsonValue | null): bool {
  return v !== null && !v.isNull();
}

function has(obj: JsonValue | null, key: string): bool {
  return obj !== null && obj.get(key) !== null;
}

function str(v: JsonValue | null): string {
  return v !== null && v.isString() ? v.s : "";
}

/** The request fields the translation reads or deliberately drops. */
const KNOWN: Array<string> = [
  "model", "messages", "stream", "temperature", "top_p", "top_k", "max_tokens", "max_completion_tokens", "stop", "n",
  "seed", "presence_penalty", "frequency_penalty", "response_format", "tools", "tool_choice", "thinking",
  "reasoning_effort", "stream_options", "user", "parallel_tool_calls", "metadata", "store", "service_tier",
  "prompt_cache_key", "safety_identifier", "prediction", "verbosity",
];

function fieldOk(key: string, v: JsonValue): bool {
  if (KNOWN.includes(key) || v.isNull()) return true;
  if (key == "logprobs") return v.isBool() && !v.b;
  if (key == "logit_bias") return v.isObject() && v.length == 0;
  if (key == "modalities") return v.isArray() && v.length == 1 && str((v.items as Array<JsonValue>)[0]) == "text";
  return false;
}

/**
 * Model names become part of the upstream path: a model id, or models/<id> or tunedModels/<id>,
 * each id one plain path segment (types.ts, isPathSegment).
 */
function validModel(m: string): bool {
  let id = m;
  if (m.startsWith("models/")) id = m.substring(7);
  else if (m.startsWith("tunedModels/")) id = m.substring(12);
  return isPathSegment(id, 128);
}

function modelResource(model: string): string {
  return model.includes("/") ? model : "models/" + model;
}

/** Major version of a "gemini-<major>..." model name; 99 for unversioned aliases (the newest). */
function geminiMajor(model: string): i32 {
  const name = model.substring(model.lastIndexOf("/") + 1);
  const c = name.charCodeAt(7);
  return name.startsWith("gemini-") && c >= 0x30 && c <= 0x39 ? c - 0x30 : 99;
}

// ---------------------------------------------------------------------------------------------
// Request

/** Writes contents[] part by part, merging consecutive parts of one role into one turn. */
class Contents {
  b: ByteBuilder;
  role: string = "";
  parts: i32 = 0;
  turns: i32 = 0;

  constructor(b: ByteBuilder) {
    this.b = b;
  }

  /** Opens (or continues) a turn of `role` and positions the builder for one more part. */
  part(role: string): ByteBuilder {
    const b = this.b;
    if (this.role != role) {
      if (this.role.length) b.raw("]}");
      if (this.turns++) b.byte(0x2c);
      b.raw('{"role":').str(role).raw(',"parts":[');
      this.role = role;
      this.parts = 0;
    }
    if (this.parts++) b.byte(0x2c);
    return b;
  }

  text(role: string, t: string): void {
    if (t.length) this.part(role).raw('{"text":').str(t).byte(0x7d);
  }
}

/**
 * Writes s[start..] as a JSON string, one byte per character, checking that it is base64 (line
 * breaks and spaces skipped). Images run to megabytes: no intermediate string, no escaping pass.
 */
function writeBase64(b: ByteBuilder, s: string, start: i32): bool {
  b.reserve(s.length - start + 2);
  const begin = changetype<usize>(b.buf) + <usize>b.len;
  let p = begin;
  store<u8>(p++, 0x22);
  const src = changetype<usize>(s);
  for (let i = start; i < s.length; i++) {
    const c = <u32>load<u16>(src + (<usize>i << 1));
    const l = c | 0x20;
    if ((l >= 0x61 && l <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2b || c == 0x2f || c == 0x3d || c == 0x2d || c == 0x5f) store<u8>(p++, <u8>c);
    else if (c != 0x0a && c != 0x0d && c != 0x20) return false;
  }
  store<u8>(p++, 0x22);
  b.len += <i32>(p - begin);
  return true;
}

/** inlineData {mimeType, data: s[start..]}; false when the data is not base64. */
function writeInline(b: ByteBuilder, mime: string, s: string, start: i32): bool {
  b.raw('{"inlineData":{"mimeType":').str(mime).raw(',"data":');
  if (!writeBase64(b, s, start)) return false;
  b.raw("}}");
  return true;
}

/** MIME type from a URL's or file name's extension. */
function mimeOf(url: string, fallback: string): string {
  let end = url.indexOf("?");
  if (end < 0) end = url.indexOf("#");
  if (end < 0) end = url.length;
  const dot = url.lastIndexOf(".", end);
  if (dot < 0 || dot < url.lastIndexOf("/", end)) return fallback;
  const ext = url.substring(dot + 1, end).toLowerCase();
  if (ext == "jpg" || ext == "jpeg") return "image/jpeg";
  if (ext == "png" || ext == "webp" || ext == "gif" || ext == "heic" || ext == "heif") return "image/" + ext;
  if (ext == "pdf") return "application/pdf";
  return fallback;
}

/** A base64 data: URL as inlineData, or a URL Gemini fetches itself as fileData. */
function writeMedia(b: ByteBuilder, url: string, fallback: string, i: i32, j: i32): ClientError | null {
  if (url.startsWith("data:")) {
    const comma = url.indexOf(",");
    const header = comma > 0 ? url.substring(5, comma) : "";
    if (!header.endsWith(";base64")) return bad(at(i, "content", j), "only base64 data: URLs are supported");
    const mime = header.substring(0, header.length - 7);
    return writeInline(b, mime.length ? mime : fallback, url, comma + 1) ? null : bad(at(i, "content", j), "not valid base64");
  }
  if (!url.startsWith("https://") && !url.startsWith("http://") && !url.startsWith("gs://")) {
    return bad(at(i, "content", j), "must be an https://, http://, gs:// or base64 data: URL");
  }
  b.raw('{"fileData":{"mimeType":').str(mimeOf(url, fallback)).raw(',"fileUri":').str(url).raw("}}");
  return null;
}

/** One content part of a user message. */
function writeUserPart(c: Contents, p: JsonValue, i: i32, j: i32): ClientError | null {
  const type = str(p.get("type"));
  if (type == "text") {
    const t = p.get("text");
    if (t === null || !t.isString()) return bad(at(i, "content", j), "text must be a string");
    c.text("user", t.s);
    return null;
  }
  if (type == "image_url") {
    const iu = p.get("image_url");
    const url = iu !== null && iu.isString() ? iu : iu !== null ? iu.get("url") : null;
    if (url === null || !url.isString()) return bad(at(i, "content", j), "image_url.url must be a string");
    return writeMedia(c.part("user"), url.s, "image/jpeg", i, j);
  }
  if (type == "input_audio") {
    const a = p.get("input_audio");
    const data = a !== null ? a.get("data") : null;
    const format = a !== null ? str(a.get("format")) : "";
    if (data === null || !data.isString() || format.length == 0) return bad(at(i, "content", j), "input_audio needs data and format");
    return writeInline(c.part("user"), "audio/" + format, data.s, 0) ? null : bad(at(i, "content", j), "not valid base64");
  }
  if (type == "file") {
    const f = p.get("file");
    const data = f !== null ? f.get("file_data") : null;
    if (data === null || !data.isString()) return unsupported(at(i, "content", j) + ": a file without file_data");
    const mime = mimeOf(str((f as JsonValue).get("filename")), "application/pdf");
    if (data.s.startsWith("data:")) return writeMedia(c.part("user"), data.s, mime, i, j);
    return writeInline(c.part("user"), mime, data.s, 0) ? null : bad(at(i, "content", j), "not valid base64");
  }
  return unsupported(at(i, "content", j) + ": content type '" + type + "'");
}

/** Set by textOf when it returns null. */
let textError: ClientError | null = null;

/** Text of a content value made of text parts only (system, assistant and tool messages). */
function textOf(content: JsonValue | null, m: i32): string | null {
  if (content === null || content.isNull()) return "";
  if (content.isString()) return content.s;
  if (content.isArray()) {
    const items = content.items as Array<JsonValue>;
    const parts = new Array<string>();
    for (let i = 0; i < items.length; i++) {
      const type = str(items[i].get("type"));
      const t = items[i].get("text");
      if (type == "refusal") continue;
      if ((type != "text" && type != "") || t === null || !t.isString()) {
        textError = unsupported(at(m, "content", i) + ": anything but text here");
        return null;
      }
      parts.push(t.s);
    }
    return parts.join("");
  }
  textError = bad(at(m, "content", -1), "must be a string or a list of text parts");
  return null;
}

/** The name of the latest earlier assistant tool call with this id, or null. */
function toolName(msgs: Array<JsonValue>, before: i32, id: string): string | null {
  for (let j = before - 1; j >= 0; j--) {
    const calls = msgs[j].get("tool_calls");
    if (calls === null || !calls.isArray() || str(msgs[j].get("role")) != "assistant") continue;
    const items = calls.items as Array<JsonValue>;
    for (let k = 0; k < items.length; k++) {
      if (str(items[k].get("id")) == id) {
        const f = items[k].get("function");
        return f !== null ? f.getString("name") : null;
      }
    }
  }
  return null;
}

function writeAssistant(c: Contents, m: JsonValue, mi: i32, model: string): ClientError | null {
  const text = textOf(m.get("content"), mi);
  if (text === null) return textError;
  c.text("model", text);
  const calls = m.get("tool_calls");
  if (!present(calls)) return null;
  if (!(calls as JsonValue).isArray()) return bad(at(mi, "tool_calls", -1), "must be a list");
  const items = (calls as JsonValue).items as Array<JsonValue>;
  let signed = false;
  for (let i = 0; i < items.length; i++) signed = signed || str(items[i].get("id")).includes(SIG);
  for (let i = 0; i < items.length; i++) {
    const t = items[i];
    const f = t.get("function");
    const name = f !== null ? f.get("name") : null;
    if (name === null || !name.isString()) return bad(at(mi, "tool_calls", i), "function.name is required");
    const a = (f as JsonValue).get("arguments");
    let args: JsonValue | null = a;
    if (a === null || a.isNull() || (a.isString() && a.s.trim().length == 0)) args = JsonValue.object();
    else if (a.isString()) args = parseJsonText(a);
    if (args === null || !args.isObject()) return bad(at(mi, "tool_calls", i), "function.arguments must be a JSON object");
    const b = c.part("model").raw('{"functionCall":{"name":').str(name.s).raw(',"args":').value(args).byte(0x7d);
    const id = str(t.get("id"));
    const sig = id.indexOf(SIG);
    if (sig >= 0) b.raw(',"thoughtSignature":').str(id.substring(sig + SIG.length));
    else if (!signed && i == 0 && geminiMajor(model) >= 3) b.raw(',"thoughtSignature":').str(SKIP_SIG);
    b.byte(0x7d);
  }
  return null;
}

function writeTool(c: Contents, msgs: Array<JsonValue>, i: i32): ClientError | null {
  const id = str(msgs[i].get("tool_call_id"));
  const name = toolName(msgs, i, id);
  if (name === null) return bad(at(i, "", -1), "tool_call_id '" + id + "' matches no earlier assistant tool call");
  const text = textOf(msgs[i].get("content"), i);
  if (text === null) return textError;
  const b = c.part("user").raw('{"functionResponse":{"name":').str(name).raw(',"response":{"content":');
  const lead = text.length ? text.charCodeAt(0) : 0;
  const parsed = lead == 0x7b || lead == 0x5b ? parseJsonString(text) : null;
  if (parsed !== null) b.value(parsed);
  else b.str(text);
  b.raw("}}}");
  return null;
}

function writeMessage(c: Contents, msgs: Array<JsonValue>, i: i32, model: string): ClientError | null {
  const m = msgs[i];
  const role = str(m.get("role"));
  if (role == "system" || role == "developer") return null; // systemInstruction
  if (role == "assistant") return writeAssistant(c, m, i, model);
  if (role == "tool") return writeTool(c, msgs, i);
  if (role != "user") return unsupported(at(i, "", -1) + ": role '" + role + "'");
  const content = m.get("content");
  if (content !== null && content.isString()) {
    c.text("user", content.s);
    return null;
  }
  if (content === null || !content.isArray()) return bad(at(i, "content", -1), "must be a string or a list of parts");
  const parts = content.items as Array<JsonValue>;
  for (let j = 0; j < parts.length; j++) {
    const e = writeUserPart(c, parts[j], i, j);
    if (e !== null) return e;
  }
  return null;
}

/** systemInstruction from every system/developer message, in order. */
function writeSystem(out: ByteBuilder, msgs: Array<JsonValue>): ClientError | null {
  let n = 0;
  for (let i = 0; i < msgs.length; i++) {
    const role = str(msgs[i].get("role"));
    if (role != "system" && role != "developer") continue;
    const text = textOf(msgs[i].get("content"), i);
    if (text === null) return textError;
    if (text.length == 0) continue;
    out.raw(n++ ? "," : ',"systemInstruction":{"parts":[').raw('{"text":').str(text).byte(0x7d);
  }
  if (n) out.raw("]}");
  return null;
}

// ---------------------------------------------------------------------------------------------
// JSON Schema -> Gemini Schema

const SCHEMA_PASS: Array<string> = [
  "title", "description", "required", "minItems", "maxItems", "minLength", "maxLength", "minProperties",
  "maxProperties", "minimum", "maximum", "pattern", "default", "example", "propertyOrdering",
];
const FORMATS: Array<string> = ["enum", "date-time", "float", "double", "int32", "int64"];
const TYPES: Array<string> = ["string", "number", "integer", "boolean", "array", "object", "null"];
const TYPE_NAMES: Array<string> = ["STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"];

/** Gemini's name for a JSON Schema type, "" when unknown. */
function typeName(v: JsonValue): string {
  const i = v.isString() ? TYPES.indexOf(v.s.toLowerCase()) : -1;
  return i >= 0 ? TYPE_NAMES[i] : "";
}

/**
 * Keywords that constrain values and have no counterpart in Gemini's Schema: dropped from tool
 * parameters (a tool call is checked by the client's code anyway), refused in a response_format
 * schema, whose answer the client takes as conforming.
 */
const ANSWER_REFUSED: Array<string> = [
  "not", "if", "then", "else", "uniqueItems", "multipleOf", "exclusiveMinimum", "exclusiveMaximum", "patternProperties",
  "prefixItems", "contains", "minContains", "maxContains", "dependentRequired", "dependentSchemas", "propertyNames",
  "unevaluatedProperties", "unevaluatedItems",
];

class SchemaWriter {
  b: ByteBuilder;
  root: JsonValue;
  err: string = "";
  /** A response_format schema: ANSWER_REFUSED keywords and schema-valued additionalProperties are errors. */
  forAnswer: bool = false;
  /** Output size at the start and references inlined so far: inlining must not blow up. */
  start: i32;
  refs: i32 = 0;

  constructor(b: ByteBuilder, root: JsonValue) {
    this.b = b;
    this.root = root;
    this.start = b.len;
  }

  fail(msg: string): i32 {
    this.err = msg;
    return -1;
  }

  schema(s: JsonValue, depth: i32): bool {
    this.b.byte(0x7b);
    if (s.isObject() && this.members(s, depth, 0, null) < 0) return false;
    this.b.byte(0x7d);
    return s.isObject() || (s.isBool() && s.b) || this.fail("a schema must be an object") >= 0;
  }

  key(n: i32, k: string): i32 {
    if (n) this.b.byte(0x2c);
    this.b.str(k).byte(0x3a);
    return n + 1;
  }

  /** A local reference (#, #/$defs/X, #/definitions/X), or null. */
  resolve(ref: string): JsonValue | null {
    if (ref == "#") return this.root;
    const slash = ref.lastIndexOf("/");
    const defs = this.root.get(ref.substring(2, slash));
    const dir = ref.substring(0, slash);
    if (defs === null || (dir != "#/$defs" && dir != "#/definitions")) return null;
    return defs.get(ref.substring(slash + 1));
  }

  /** Merges schema `t` into the one being written, `s`'s own members winning. */
  merge(t: JsonValue | null, s: JsonValue, depth: i32, n: i32): i32 {
    if (t === null || !t.isObject()) return this.fail("only local #/$defs $refs and one-item allOf are supported");
    if (++this.refs > 256 || this.b.len - this.start > 1 << 20) return this.fail("its $refs expand to more than 256 copies or 1 MiB");
    return this.members(t, depth + 1, n, s);
  }

  /** Writes the members of s (those not overridden by `over`); returns the count so far, or -1. */
  members(s: JsonValue, depth: i32, n: i32, over: JsonValue | null): i32 {
    if (depth > 24) return this.fail("nests deeper than 24 levels (recursive $ref?)");
    const b = this.b;
    const ref = s.get("$ref");
    if (ref !== null) n = this.merge(ref.isString() ? this.resolve(ref.s) : null, s, depth, n);
    const all = s.get("allOf");
    if (all !== null && n >= 0) n = this.merge(all.isArray() && all.length == 1 ? (all.items as Array<JsonValue>)[0] : null, s, depth, n);
    let nullable = false;
    const keys = s.keys as Array<string>;
    const vals = s.vals as Array<JsonValue>;
    for (let i = 0; i < keys.length && n >= 0; i++) {
      const k = keys[i];
      const v = vals[i];
      if (over !== null && over.get(k) !== null) continue;
      if (this.forAnswer && (ANSWER_REFUSED.includes(k) || (k == "additionalProperties" && v.isObject()))) {
        return this.fail("'" + k + "' has no equivalent in Gemini's response schema (an OpenAPI subset); remove it or describe it in the prompt");
      }
      if (k == "type") {
        // ["string", "null"] -> STRING + nullable; of several types the first is kept.
        const ts = v.isArray() ? v.items as Array<JsonValue> : [v];
        let t = "";
        for (let j = 0; j < ts.length; j++) {
          const name = typeName(ts[j]);
          if (name.length == 0) return this.fail("unknown type");
          if (name == "NULL") nullable = true;
          else if (t.length == 0) t = name;
        }
        if (t.length) {
          n = this.key(n, "type");
          b.str(t);
        }
      } else if (k == "anyOf" || k == "oneOf") {
        // {"type":"null"} branches -> nullable; a single branch left is inlined.
        if (!v.isArray()) return this.fail(k + " must be a list");
        const items = v.items as Array<JsonValue>;
        const kept = new Array<JsonValue>();
        for (let j = 0; j < items.length; j++) {
          const t = items[j].get("type");
          if (t !== null && typeName(t) == "NULL") nullable = true;
          else kept.push(items[j]);
        }
        if (kept.length == 1) n = this.merge(kept[0], s, depth, n);
        else if (kept.length > 1) {
          n = this.key(n, "anyOf");
          b.byte(0x5b);
          for (let j = 0; j < kept.length; j++) {
            if (j) b.byte(0x2c);
            if (!this.schema(kept[j], depth + 1)) return -1;
          }
          b.byte(0x5d);
        }
      } else if (k == "properties") {
        if (!v.isObject()) return this.fail("properties must be an object");
        if (v.length == 0) continue;
        n = this.key(n, "properties");
        b.byte(0x7b);
        const pk = v.keys as Array<string>;
        const pv = v.vals as Array<JsonValue>;
        for (let j = 0; j < pk.length; j++) {
          if (j) b.byte(0x2c);
          b.str(pk[j]).byte(0x3a);
          if (!this.schema(pv[j], depth + 1)) return -1;
        }
        b.byte(0x7d);
      } else if (k == "items") {
        if (v.isArray()) return this.fail("tuple items are not supported");
        n = this.key(n, "items");
        if (!this.schema(v, depth + 1)) return -1;
      } else if (k == "enum" || k == "const") {
        // Gemini enums are strings: numbers and booleans as their text, null -> nullable.
        const items = k == "const" ? [v] : v.isArray() ? v.items as Array<JsonValue> : null;
        if (items === null) return this.fail("enum must be a list");
        n = this.key(n, "enum");
        b.byte(0x5b);
        let w = 0;
        for (let j = 0; j < items.length; j++) {
          const e = items[j];
          if (e.isNull()) nullable = true;
          else if (e.isArray() || e.isObject()) return this.fail("enum values must be scalars");
          else {
            if (w++) b.byte(0x2c);
            b.str(e.isBool() ? (e.b ? "true" : "false") : e.s);
          }
        }
        b.byte(0x5d);
      } else if (k == "format") {
        if (v.isString() && FORMATS.includes(v.s)) {
          n = this.key(n, k);
          b.str(v.s);
        }
      } else if (k == "nullable") {
        nullable = nullable || (v.isBool() && v.b);
      } else if (SCHEMA_PASS.includes(k)) {
        n = this.key(n, k);
        b.value(v);
      }
    }
    if (nullable && n >= 0) {
      n = this.key(n, "nullable");
      b.raw("true");
    }
    return n;
  }
}

/** Converts a JSON Schema into `b`; the error, or null. */
function writeSchema(b: ByteBuilder, schema: JsonValue, where: string, forAnswer: bool = false): ClientError | null {
  const w = new SchemaWriter(b, schema);
  w.forAnswer = forAnswer;
  return w.schema(schema, 0) ? null : bad(where, w.err);
}

/** An object schema with nothing in it: Gemini rejects an empty OBJECT as `parameters`. */
function emptyObjectSchema(s: JsonValue): bool {
  if (!s.isObject()) return s.isBool() && s.b;
  const props = s.get("properties");
  if ((props !== null && props.length > 0) || has(s, "$ref") || has(s, "anyOf") || has(s, "oneOf") || has(s, "allOf")) return false;
  const t = s.get("type");
  return t === null || typeName(t) == "OBJECT";
}

function writeTools(out: ByteBuilder, tools: JsonValue): ClientError | null {
  if (!tools.isArray()) return bad("tools", "must be a list");
  const items = tools.items as Array<JsonValue>;
  out.raw(',"tools":[{"functionDeclarations":[');
  for (let i = 0; i < items.length; i++) {
    const type = str(items[i].get("type"));
    if (type != "function" && type != "") return unsupported("tool type '" + type + "'");
    const f = items[i].get("function");
    const name = f !== null ? f.get("name") : null;
    if (name === null || !name.isString()) return bad("tools[" + i.toString() + "]", "function.name is required");
    out.raw(i ? ',{"name":' : '{"name":').str(name.s);
    const d = (f as JsonValue).get("description");
    if (d !== null && d.isString()) out.raw(',"description":').str(d.s);
    const params = (f as JsonValue).get("parameters");
    if (params !== null && !emptyObjectSchema(params)) {
      out.raw(',"parameters":');
      const e = writeSchema(out, params, "tools[" + i.toString() + "].function.parameters");
      if (e !== null) return e;
    }
    out.byte(0x7d);
  }
  out.raw("]}]");
  return null;
}

function writeToolConfig(out: ByteBuilder, tc: JsonValue): ClientError | null {
  const s = str(tc);
  const f = tc.get("function");
  const name = f !== null && str(tc.get("type")) == "function" ? str(f.get("name")) : "";
  const mode = s == "auto" ? "AUTO" : s == "none" ? "NONE" : s == "required" || name.length ? "ANY" : "";
  if (mode.length == 0) return bad("tool_choice", "must be auto, none, required or a function");
  out.raw(',"toolConfig":{"functionCallingConfig":{"mode":').str(mode);
  if (name.length) out.raw(',"allowedFunctionNames":[').str(name).byte(0x5d);
  out.raw("}}");
  return null;
}

/** generationConfig members, each with a leading comma, skipping those the operator sets. */
class GenConfig {
  b: ByteBuilder = new ByteBuilder(128);
  over: JsonValue | null;
  err: ClientError | null = null;

  constructor(over: JsonValue | null) {
    this.over = over;
  }

  /** Positions the builder for member `key`, or returns null when the operator sets it. */
  member(key: string): ByteBuilder | null {
    if (has(this.over, key)) return null;
    return this.b.byte(0x2c).str(key).byte(0x3a);
  }

  number(req: JsonValue, field: string, key: string, integer: bool): void {
    const v = req.get(field);
    if (!present(v) || this.err !== null) return;
    if (!(v as JsonValue).isNumber() || (integer && !(v as JsonValue).isInteger())) this.err = bad(field, integer ? "must be an integer" : "must be a number");
    else {
      const b = this.member(key);
      if (b !== null) b.raw((v as JsonValue).s);
    }
  }
}

/**
 * reasoning_effort -> thinkingBudget (Google's own mapping for its OpenAI compatibility) before
 * Gemini 3; from Gemini 3 on -> thinkingLevel, which those models take instead of a budget (the
 * Gemini API's thinking page: thinkingLevel minimal / low / medium / high, the default high; a
 * request with both is a 400). Gemini 3 cannot switch thinking off: none is minimal, the least.
 * Levels a model does not offer (Gemini 3 Pro: low and high only) are Gemini's 400 to give.
 */
const EFFORTS: Array<string> = ["none", "minimal", "low", "medium", "high"];
const BUDGETS: Array<i32> = [0, 0, 1024, 8192, 24576];
const LEVELS: Array<string> = ["minimal", "minimal", "low", "medium", "high"];

function writeGenerationConfig(out: ByteBuilder, req: JsonValue, inst: Instance, model: string): ClientError | null {
  const options = inst.options;
  const ogv = options !== null ? options.get("generationConfig") : null;
  const og = ogv !== null && ogv.isObject() ? ogv : null;
  const g = new GenConfig(og);
  g.number(req, "temperature", "temperature", false);
  g.number(req, "top_p", "topP", false);
  g.number(req, "top_k", "topK", true);
  g.number(req, "seed", "seed", true);
  g.number(req, "presence_penalty", "presencePenalty", false);
  g.number(req, "frequency_penalty", "frequencyPenalty", false);
  g.number(req, "n", "candidateCount", true);
  if (inst.maxTokens < 0) g.number(req, present(req.get("max_completion_tokens")) ? "max_completion_tokens" : "max_tokens", "maxOutputTokens", true);
  else {
    const b = g.member("maxOutputTokens");
    if (b !== null) b.int(inst.maxTokens);
  }
  if (g.err !== null) return g.err;
  const stop = req.get("stop");
  if (present(stop)) {
    const s = stop as JsonValue;
    let ok = s.isString() || s.isArray();
    for (let i = 0; ok && s.isArray() && i < s.length; i++) ok = (s.items as Array<JsonValue>)[i].isString();
    if (!ok) return bad("stop", "must be a string or a list of strings");
    const b = g.member("stopSequences");
    if (b !== null && s.isString()) b.byte(0x5b).str(s.s).byte(0x5d);
    else if (b !== null) b.value(s);
  }
  const rf = req.get("response_format");
  if (present(rf)) {
    const type = str((rf as JsonValue).get("type"));
    if (type == "json_object" || type == "json_schema") {
      const b = g.member("responseMimeType");
      if (b !== null) b.str("application/json");
      const js = (rf as JsonValue).get("json_schema");
      const schema = js !== null ? js.get("schema") : null;
      const sb = present(schema) && type == "json_schema" ? g.member("responseSchema") : null;
      if (sb !== null) {
        const e = writeSchema(sb, schema as JsonValue, "response_format.json_schema.schema", true);
        if (e !== null) return e;
      }
    } else if (type != "text") return bad("response_format.type", "must be text, json_object or json_schema");
  }
  const thinking = req.get("thinking");
  const effort = req.get("reasoning_effort");
  if (present(thinking)) {
    const type = str((thinking as JsonValue).get("type"));
    const budget = (thinking as JsonValue).get("budget_tokens");
    let config = "";
    if (type == "enabled" && budget !== null && budget.isInteger()) config = '{"thinkingBudget":' + budget.s + ',"includeThoughts":true}';
    else if (type == "adaptive") config = '{"thinkingBudget":-1,"includeThoughts":true}';
    else if (type != "disabled") return bad("thinking", "needs type enabled (with budget_tokens), adaptive or disabled");
    const b = config.length ? g.member("thinkingConfig") : null;
    if (b !== null) b.raw(config);
  } else if (present(effort)) {
    const i = EFFORTS.indexOf(str(effort));
    if (i < 0) return bad("reasoning_effort", "must be none, minimal, low, medium or high");
    const b = g.member("thinkingConfig");
    if (b !== null && geminiMajor(model) >= 3) b.raw('{"thinkingLevel":').str(LEVELS[i]).byte(0x7d);
    else if (b !== null) b.raw('{"thinkingBudget":').int(BUDGETS[i]).byte(0x7d);
  }
  if (og !== null) {
    const ok = og.keys as Array<string>;
    const ov = og.vals as Array<JsonValue>;
    for (let i = 0; i < ok.length; i++) g.b.byte(0x2c).str(ok[i]).byte(0x3a).value(ov[i]);
  }
  if (g.b.len > 0) {
    out.raw(',"generationConfig":{').bytes(changetype<usize>(g.b.buf) + 1, g.b.len - 1).byte(0x7d);
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Answers

/** A token count: -1 when absent or not a sane non-negative number (hostile input). */
function count(v: JsonValue, key: string): i64 {
  const n = v.get(key);
  return n !== null && n.isNumber() && n.n >= 0 && n.n <= 1e15 ? <i64>n.n : -1;
}

/** The same, absent as 0 (proto3 JSON leaves zeros out). */
function count0(v: JsonValue, key: string): i64 {
  const n = count(v, key);
  return n < 0 ? 0 : n;
}

/**
 * usageMetadata -> u, replacing what it held (in streams the last report wins). In a final report
 * an absent count is 0; in a stream's earlier chunks an absent output count is unknown (-1), so a
 * stream cut short is estimated, not charged as empty.
 */
function readUsage(v: JsonValue | null, u: Usage, final: bool): bool {
  if (v === null || !v.isObject()) return false;
  const thoughts = count0(v, "thoughtsTokenCount");
  const candidates = count(v, "candidatesTokenCount");
  u.prompt = count0(v, "promptTokenCount") + count0(v, "toolUsePromptTokenCount");
  u.completion = final || candidates >= 0 || thoughts > 0 ? count0(v, "candidatesTokenCount") + thoughts : -1;
  u.reasoning = thoughts;
  u.cached = count0(v, "cachedContentTokenCount");
  const total = count(v, "totalTokenCount");
  u.total = u.completion < 0 ? -1 : total >= 0 ? total : u.prompt + u.completion;
  return true;
}

const FILTERED: Array<string> = [
  "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION",
];

function finishReason(r: string, tools: bool): string {
  if (r == "MAX_TOKENS") return "length";
  if (FILTERED.includes(r)) return "content_filter";
  return tools ? "tool_calls" : "stop";
}

function blockedMessage(v: JsonValue): string | null {
  const pf = v.get("promptFeedback");
  const r = pf !== null ? pf.get("blockReason") : null;
  return r !== null && r.isString() ? "The prompt was blocked by Gemini (" + r.s + ")." : null;
}

/**
 * A tool call id: Gemini's own, else "call_<responseId>_<k>"; a thought signature rides along as
 * "__sig_<base64url>" so that it comes back with the client's next request.
 */
function toolId(part: JsonValue, fc: JsonValue, rid: string, k: i32): string {
  let id = str(fc.get("id"));
  if (id.length == 0) id = (rid.length ? "call_" + rid + "_" : "call_") + k.toString();
  let sig = str(part.get("thoughtSignature"));
  if (sig.length == 0) return id;
  sig = sig.replaceAll("+", "-").replaceAll("/", "_");
  let end = sig.length;
  while (end > 0 && sig.charCodeAt(end - 1) == 0x3d) end--;
  return id + SIG + sig.substring(0, end);
}

function argsJson(fc: JsonValue): string {
  const args = fc.get("args");
  if (args === null || !args.isObject()) return "{}";
  return new ByteBuilder(64).value(args).toString();
}

function partsOf(c: JsonValue): Array<JsonValue> {
  const content = c.get("content");
  const parts = content !== null ? content.get("parts") : null;
  return parts !== null && parts.isArray() ? parts.items as Array<JsonValue> : [];
}

function isThought(p: JsonValue): bool {
  const t = p.get("thought");
  return t !== null && t.isBool() && t.b;
}

const STATUSES: Array<string> = [
  "INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE", "UNAUTHENTICATED", "PERMISSION_DENIED", "NOT_FOUND", "RESOURCE_EXHAUSTED",
];
const STATUS_TYPES: Array<string> = [
  "invalid_request_error", "invalid_request_error", "invalid_request_error", "authentication_error", "permission_error", "not_found_error", "rate_limit_error",
];

/** Maps Gemini's {"error":{code, message, status}} with the HTTP status. */
export function geminiError(status: u32, body: JsonValue | null): ClientError {
  const e = ClientError.of(status, "The gemini provider returned HTTP " + status.toString() + ".", errorTypeForStatus(status), "");
  let v = body;
  if (v !== null && v.isArray() && v.length > 0) v = (v.items as Array<JsonValue>)[0]; // a stream without alt=sse
  const err = v !== null ? v.get("error") : null;
  if (err === null) return e;
  const m = str(err.get("message"));
  if (m.length) e.message = m;
  const s = str(err.get("status"));
  if (s.length) {
    const i = STATUSES.indexOf(s);
    e.type = i >= 0 ? STATUS_TYPES[i] : "api_error";
    e.code = s.toLowerCase();
  }
  return e;
}

/** Decodes streamGenerateContent?alt=sse: each event a GenerateContentResponse with new parts. */
export class GeminiStreamDecoder extends StreamDecoder {
  started: bool = false;
  rid: string = "";
  /** Function calls so far in the response (for ids). */
  calls: i32 = 0;
  /** Tool calls so far, per choice, and whether the choice has finished. */
  tools: Array<i32> = [];
  finished: Array<bool> = [];
  failed: bool = false;

  event(e: SseEvent, sink: StreamSink): void {
    if (this.failed) return;
    const v = parseJsonAt(e.ptr, e.len, e.owner);
    if (v === null || !v.isObject()) return;
    const err = v.get("error");
    if (err !== null && err.isObject()) {
      // Gemini fails a stream with one {"error":{...}} event: the client's stream ends there.
      const code = err.get("code");
      sink.error(this.providerError(geminiError(code !== null && code.isInteger() && code.n >= 400 && code.n < 600 ? <u32>code.n : 500, v)));
      this.done = true;
      this.failed = true;
      return;
    }
    if (!this.started) {
      this.started = true;
      this.rid = str(v.get("responseId"));
      sink.start(this.rid, str(v.get("modelVersion")), <i64>(nowNanos() / 1000000000));
    }
    const cands = v.get("candidates");
    const items = cands !== null && cands.isArray() ? cands.items as Array<JsonValue> : [];
    for (let i = 0; i < items.length; i++) this.candidate(items[i], i, sink);
    const blocked: string | null = items.length ? null : blockedMessage(v);
    if (blocked !== null) {
      sink.refusal(0, blocked as string);
      this.end(0, "content_filter", sink);
    }
    if (readUsage(v.get("usageMetadata"), this.usage, this.done)) sink.usage(this.usage);
  }

  grow(choice: i32): void {
    while (this.tools.length <= choice) {
      this.tools.push(0);
      this.finished.push(false);
    }
  }

  end(choice: i32, reason: string, sink: StreamSink): void {
    this.grow(choice);
    if (this.finished[choice]) return;
    this.finished[choice] = true;
    sink.finish(choice, reason, null);
    this.done = true;
  }

  candidate(c: JsonValue, position: i32, sink: StreamSink): void {
    const choice = smallIndex(c.get("index"), position);
    if (choice < 0) return; // hostile or broken: ignored
    this.grow(choice);
    const parts = partsOf(c);
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      const fc = p.get("functionCall");
      const t = p.get("text");
      if (fc !== null && fc.isObject()) {
        const tool = this.tools[choice]++;
        sink.toolStart(choice, tool, toolId(p, fc, this.rid, this.calls++), str(fc.get("name")));
        sink.toolArgs(choice, tool, argsJson(fc));
      } else if (t !== null && t.isString() && t.s.length) {
        if (isThought(p)) sink.reasoning(choice, t.s);
        else sink.text(choice, t.s);
      }
    }
    const fr = str(c.get("finishReason"));
    if (fr.length && fr != "FINISH_REASON_UNSPECIFIED") this.end(choice, finishReason(fr, this.tools[choice] > 0), sink);
  }
}

// ---------------------------------------------------------------------------------------------

export class GeminiProvider extends Provider {
  get name(): string { return "gemini"; }
  get genAiName(): string { return "gcp.gemini"; }
  get speaksGemini(): bool { return true; }

  defaultEndpoint(): string { return "https://generativelanguage.googleapis.com/v1beta"; }

  modelError(inst: Instance, model: string): ClientError | null {
    return validModel(model) ? null : invalidModel("is not a valid Gemini model name: an id, models/<id> or tunedModels/<id>, the id 1 to 128 letters, digits, '.', '_' or '-'");
  }

  upstream(inst: Instance, model: string, method: string): Upstream {
    const u = new Upstream();
    u.path = inst.basePath + "/" + modelResource(model) + method;
    if (inst.apiKey.length) u.headers = ["x-goog-api-key", inst.apiKey];
    return u;
  }

  chatUpstream(inst: Instance, model: string, stream: bool): Upstream {
    return this.upstream(inst, model, stream ? ":streamGenerateContent?alt=sse" : ":generateContent");
  }

  embeddingsUpstream(inst: Instance, model: string): Upstream | null {
    return this.upstream(inst, model, ":batchEmbedContents");
  }

  countTokensUpstream(inst: Instance, model: string): Upstream | null {
    return this.upstream(inst, model, ":countTokens");
  }

  nativeUpstream(inst: Instance, model: string, method: string): Upstream | null {
    return this.upstream(inst, model, ":" + method);
  }

  embeddingVectors(body: JsonValue, usage: Usage): Array<JsonValue> | null {
    // batchEmbedContents' {"embeddings":[{"values"}]}, or embedContent's {"embedding":{"values"}}.
    const one = body.isObject() ? body.get("embedding") : null;
    const embs = body.isObject() ? body.get("embeddings") : null;
    const out = new Array<JsonValue>();
    if (one !== null && one.isObject()) {
      const v = one.get("values");
      if (v === null || !v.isArray()) return null;
      out.push(v);
    } else if (embs !== null && embs.isArray()) {
      for (let i = 0; i < embs.length; i++) {
        const e = embs.at(i);
        const v = e.isObject() ? e.get("values") : null;
        if (v === null || !v.isArray()) return null;
        out.push(v);
      }
    } else return null;
    const um = body.get("usageMetadata");
    const prompt = um !== null ? count0(um, "promptTokenCount") : 0;
    if (prompt > 0) {
      usage.prompt = prompt;
      usage.completion = 0;
      usage.total = prompt;
    }
    return out;
  }

  chatRequest(req: JsonValue, model: string, stream: bool, inst: Instance, out: ByteBuilder): ClientError | null {
    const badModel = this.modelError(inst, model);
    if (badModel !== null) return badModel;
    const keys = req.keys as Array<string>;
    for (let i = 0; i < keys.length; i++) {
      if (!fieldOk(keys[i], (req.vals as Array<JsonValue>)[i])) return unsupported("'" + keys[i] + "'");
    }
    const mv = req.get("messages");
    if (mv === null || !mv.isArray()) return bad("messages", "must be a list");
    const msgs = mv.items as Array<JsonValue>;
    for (let i = 0; i < msgs.length; i++) if (!msgs[i].isObject()) return bad("messages[" + i.toString() + "]", "must be an object");
    const options = inst.options;

    out.raw('{"contents":[');
    const c = new Contents(out);
    for (let i = 0; i < msgs.length; i++) {
      const e = writeMessage(c, msgs, i, model);
      if (e !== null) return e;
    }
    if (c.turns == 0) return bad("messages", "no non-empty user or assistant message");
    out.raw("]}]");

    let e: ClientError | null = null;
    if (!has(options, "systemInstruction")) e = writeSystem(out, msgs);
    const tools = req.get("tools");
    if (e === null && present(tools) && (!(tools as JsonValue).isArray() || (tools as JsonValue).length > 0)) {
      if (!has(options, "tools")) e = writeTools(out, tools as JsonValue);
      const tc = req.get("tool_choice");
      if (e === null && present(tc) && !has(options, "toolConfig")) e = writeToolConfig(out, tc as JsonValue);
    }
    if (e === null) e = writeGenerationConfig(out, req, inst, model);
    if (e !== null) return e;
    if (options !== null) {
      const ok = options.keys as Array<string>;
      for (let i = 0; i < ok.length; i++) {
        if (ok[i] != "generationConfig" && ok[i] != "contents") out.byte(0x2c).str(ok[i]).byte(0x3a).value((options.vals as Array<JsonValue>)[i]);
      }
    }
    out.byte(0x7d);
    return null;
  }

  chatResponse(body: JsonValue, out: ChatResult, mode: i32): bool {
    const cands = body.get("candidates");
    if (!body.isObject() || (cands !== null && !cands.isArray())) return false;
    if (cands === null && !has(body, "promptFeedback") && !has(body, "usageMetadata")) return false;
    out.id = str(body.get("responseId"));
    out.model = str(body.get("modelVersion"));
    out.created = <i64>(nowNanos() / 1000000000);
    const items = cands !== null ? cands.items as Array<JsonValue> : [];
    let k = 0;
    for (let i = 0; i < items.length; i++) {
      const c = items[i];
      const ch = new Choice();
      ch.index = smallIndex(c.get("index"), i);
      if (ch.index < 0) continue;
      const parts = partsOf(c);
      const texts = new Array<string>();
      const thoughts = new Array<string>();
      for (let j = 0; j < parts.length; j++) {
        const p = parts[j];
        const fc = p.get("functionCall");
        const t = p.get("text");
        if (fc !== null && fc.isObject()) {
          const tc = new ToolCall();
          tc.id = toolId(p, fc, out.id, k++);
          tc.name = str(fc.get("name"));
          tc.arguments = argsJson(fc);
          ch.toolCalls.push(tc);
        } else if (t !== null && t.isString()) {
          if (isThought(p)) thoughts.push(t.s);
          else texts.push(t.s);
        }
      }
      if (texts.length || ch.toolCalls.length == 0) ch.content = texts.join("");
      if (thoughts.length) ch.reasoning = thoughts.join("");
      ch.finishReason = finishReason(str(c.get("finishReason")), ch.toolCalls.length > 0);
      out.choices.push(ch);
    }
    if (out.choices.length == 0) {
      const ch = new Choice();
      ch.content = "";
      ch.refusal = blockedMessage(body);
      ch.finishReason = ch.refusal !== null ? "content_filter" : "stop";
      out.choices.push(ch);
    }
    readUsage(body.get("usageMetadata"), out.usage, true);
    return true;
  }

  streamDecoder(): StreamDecoder {
    return new GeminiStreamDecoder();
  }

  error(status: u32, body: JsonValue | null): ClientError {
    return geminiError(status, body);
  }

  embeddingsRequest(req: JsonValue, model: string, inst: Instance, out: ByteBuilder): ClientError | null {
    const badModel = this.modelError(inst, model);
    if (badModel !== null) return badModel;
    const keys = req.keys as Array<string>;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      if (k != "model" && k != "input" && k != "dimensions" && k != "encoding_format" && k != "user" && !(req.vals as Array<JsonValue>)[i].isNull()) return unsupported("'" + k + "'");
    }
    const enc = req.get("encoding_format");
    if (present(enc) && str(enc) != "float") return unsupported("encoding_format '" + str(enc) + "'");
    const dims = req.get("dimensions");
    if (present(dims) && (!(dims as JsonValue).isInteger() || (dims as JsonValue).n < 1)) return bad("dimensions", "must be a positive integer");
    const input = req.get("input");
    let texts: Array<JsonValue> = [];
    if (input !== null && input.isString()) texts = [input];
    else if (input !== null && input.isArray()) texts = input.items as Array<JsonValue>;
    for (let i = 0; i < texts.length; i++) if (!texts[i].isString()) return unsupported("'input' as token arrays");
    if (texts.length == 0) return bad("input", "must not be empty");
    const options = inst.options;
    const resource = modelResource(model);
    out.raw('{"requests":[');
    for (let i = 0; i < texts.length; i++) {
      out.raw(i ? ',{"model":' : '{"model":').str(resource).raw(',"content":{"parts":[{"text":').str(texts[i].s).raw("}]}");
      if (present(dims) && !has(options, "outputDimensionality")) out.raw(',"outputDimensionality":').raw((dims as JsonValue).s);
      if (options !== null) {
        const ok = options.keys as Array<string>;
        for (let j = 0; j < ok.length; j++) {
          const k = ok[j];
          if (k == "taskType" || k == "title" || k == "outputDimensionality") out.byte(0x2c).str(k).byte(0x3a).value((options.vals as Array<JsonValue>)[j]);
        }
      }
      out.byte(0x7d);
    }
    out.raw("]}");
    return null;
  }

  embeddingsResponse(body: JsonValue, model: string, out: ByteBuilder, usage: Usage): bool {
    // batchEmbedContents' answer: the method the gateway asks for an OpenAI client's embeddings.
    if (body.get("embeddings") === null) return false;
    const vectors = this.embeddingVectors(body, usage);
    if (vectors === null) return false;
    out.raw('{"object":"list","data":[');
    for (let i = 0; i < vectors.length; i++) {
      out.raw(i ? ',{"object":"embedding","index":' : '{"object":"embedding","index":').int(i).raw(',"embedding":').value(vectors[i]).byte(0x7d);
    }
    const prompt: i64 = usage.prompt > 0 ? usage.prompt : 0;
    out.raw('],"model":').str(model).raw(',"usage":{"prompt_tokens":').int(prompt).raw(',"total_tokens":').int(prompt).raw("}}");
    return true;
  }
}
