// Gemini's own client API (POST /v1beta/models/{model}:generateContent and :streamGenerateContent,
// as @google/genai and gemini-cli send them): requests become OpenAI-format requests for any
// provider; answers, streams and errors come back in Gemini's shapes (Gemini API reference,
// "Generating content": GenerateContentRequest / GenerateContentResponse; "Errors").
//
// Field by field (Gemini request -> OpenAI chat request):
//   the model and the stream switch come from the path, never from the body.
//   systemInstruction (a Content, or a string) -> one system message of its text parts.
//   contents[] -> messages: role "user" (or none) -> user, "model" -> assistant; parts: text ->
//       text (thought parts of earlier turns are left out: only Gemini's own models could use them),
//       inlineData image/* -> image_url data URL, application/pdf -> file part, fileData image/* ->
//       image_url; functionCall (model turns) -> tool_calls, the id Gemini gave it or
//       call_<n>_<name>; functionResponse (user turns) -> a tool message answering the earliest
//       open call of that name (Gemini pairs them by name and order), content the response JSON.
//       Other parts (executableCode, videoMetadata, ...) -> 400.
//   tools[].functionDeclarations -> function tools (parameters: Gemini's OpenAPI schema with its
//       upper-case types lowered; parametersJsonSchema as it is); other tools (googleSearch,
//       codeExecution, urlContext, ...) -> 400.
//   toolConfig.functionCallingConfig mode AUTO|NONE|ANY|VALIDATED -> tool_choice auto|none|required|auto;
//       ANY with exactly one allowedFunctionNames -> that function.
//   generationConfig: temperature, topP, topK (-> top_k), candidateCount (-> n), maxOutputTokens
//       (-> max_tokens), stopSequences (-> stop), presencePenalty, frequencyPenalty, seed;
//       responseMimeType application/json -> response_format json_object, with responseSchema or
//       responseJsonSchema -> json_schema; thinkingConfig.thinkingBudget 0 -> reasoning_effort none,
//       up to 1024 low, up to 8192 medium, more or -1 (dynamic) -> high... see thinkingEffort;
//       responseModalities other than TEXT, speechConfig, responseLogprobs -> 400; others dropped.
//   safetySettings, cachedContent, labels, built-in tools, media other than images and PDF, and
//       the generationConfig members above marked 400 -> 400 only when another provider serves the
//       request: Gemini itself gets the body untouched (Converted.untranslatable).
//
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
// Errors: {"error":{"code":<status>,"message":...,"status":"INVALID_ARGUMENT"|...}}.
import { JsonValue, ByteBuilder, parseJsonString } from "../../lib/json";
import { ChatResult, ClientError, StreamSink, Usage } from "../../providers/types";
import { estimatedUsage } from "./estimate";
import { Converted } from "./client-anthropic";
import { writeGeminiErrorJson } from "../../lib/errors";

/** A tool call's arguments held for a Gemini stream: past this, the stream ends in an error. */
const MAX_HELD_ARGS: i32 = 4 * 1024 * 1024;

function bad(message: string): ClientError {
  return ClientError.of(400, message, "invalid_request_error", "invalid_value");
}

/** Something only Gemini itself takes: left out, and refused only if another provider serves the request. */
function geminiOnly(r: Converted, message: string): void {
  if (r.untranslatable === null) r.untranslatable = bad(message);
}

export function writeGeminiError(e: ClientError, b: ByteBuilder): void {
  writeGeminiErrorJson(b, e.status, e.message);
}

/** {"error":{"code","message","status"}}: Gemini's own error, which passes on as it is. */
export function isGeminiError(v: JsonValue): bool {
  const e = v.get("error");
  return e !== null && e.isObject() && e.getString("message") !== null && e.getString("status") !== null;
}

/** A GenerateContentResponse says what it is: candidates, a blocked prompt, or usage. */
export function isGeminiAnswer(v: JsonValue): bool {
  return v.isObject() && (v.get("candidates") !== null || v.get("promptFeedback") !== null || v.get("usageMetadata") !== null);
}

/** countTokens takes the contents alone or a whole request in generateContentRequest. */
export function countedRequest(req: JsonValue): JsonValue {
  const inner = req.isObject() ? req.get("generateContentRequest") : null;
  return inner !== null && inner.isObject() ? inner : req;
}

// ---------------------------------------------------------------------------------------------
// Request

/** Gemini's schema types are upper case (OpenAPI's subset as Gemini writes it); JSON Schema's are lower. */
function lowerTypes(v: JsonValue): JsonValue {
  if (v.isArray()) {
    const out = JsonValue.array();
    for (let i = 0; i < v.length; i++) out.push(lowerTypes(v.at(i)));
    return out;
  }
  if (!v.isObject()) return v;
  const out = JsonValue.object();
  for (let i = 0; i < v.length; i++) {
    const k = v.keyAt(i);
    const val = v.at(i);
    if (k == "type" && val.isString()) out.set(k, JsonValue.str(val.s.toLowerCase()));
    else if (k == "properties" && val.isObject()) {
      const props = JsonValue.object();
      for (let j = 0; j < val.length; j++) props.set(val.keyAt(j), lowerTypes(val.at(j)));
      out.set(k, props);
    } else if (k == "items" || k == "anyOf") out.set(k, lowerTypes(val));
    else out.set(k, val);
  }
  return out;
}

function textOf(content: JsonValue): string | null {
  if (content.isString()) return content.s;
  const parts = content.isObject() ? content.get("parts") : null;
  if (parts === null || !parts.isArray()) return null;
  const texts = new Array<string>();
  for (let i = 0; i < parts.length; i++) {
    const t = parts.at(i).getString("text");
    if (t !== null) texts.push(t as string);
  }
  return texts.join("\n");
}

function mediaPart(mime: string, url: string, at: string, r: Converted): JsonValue | null {
  if (mime.startsWith("image/")) {
    return JsonValue.object().set("type", JsonValue.str("image_url")).set("image_url", JsonValue.object().set("url", JsonValue.str(url)));
  }
  if (mime == "application/pdf" && url.startsWith("data:")) {
    return JsonValue.object().set("type", JsonValue.str("file")).set("file", JsonValue.object().set("file_data", JsonValue.str(url)));
  }
  geminiOnly(r, at + ": '" + mime + "' content is not supported through the gateway for this model (images, and PDF as inline data, are)");
  return null;
}

/** Open function calls of the model's turns, answered by name in order. */
class OpenCalls {
  ids: Array<string> = [];
  names: Array<string> = [];
  answered: Array<bool> = [];
  take(name: string): string | null {
    for (let i = 0; i < this.names.length; i++) {
      if (!this.answered[i] && this.names[i] == name) {
        this.answered[i] = true;
        return this.ids[i];
      }
    }
    return null;
  }
}

function convertTurn(turn: JsonValue, at: string, out: JsonValue, calls: OpenCalls, r: Converted): void {
  if (!turn.isObject()) { r.error = bad(at + ": must be an object"); return; }
  const role = turn.getString("role");
  const model = role == "model";
  if (role !== null && !model && role != "user") { r.error = bad(at + ".role: must be 'user' or 'model'"); return; }
  const parts = turn.get("parts");
  if (parts === null || !parts.isArray()) { r.error = bad(at + ".parts: required (a list)"); return; }
  const content = JsonValue.array();
  const texts = new Array<string>();
  const toolCalls = JsonValue.array();
  for (let i = 0; i < parts.length; i++) {
    const p = parts.at(i);
    const pat = at + ".parts[" + i.toString() + "]";
    if (!p.isObject()) { r.error = bad(pat + ": must be an object"); return; }
    const text = p.getString("text");
    const inline = p.get("inlineData");
    const file = p.get("fileData");
    const fc = p.get("functionCall");
    const fr = p.get("functionResponse");
    if (text !== null) {
      const thought = p.get("thought");
      if (thought !== null && thought.isBool() && thought.b) continue;
      if (model) texts.push(text as string);
      else content.push(JsonValue.object().set("type", JsonValue.str("text")).set("text", JsonValue.str(text as string)));
    } else if (inline !== null && !model) {
      const mime = inline.getString("mimeType");
      const data = inline.getString("data");
      if (mime === null || data === null) { r.error = bad(pat + ".inlineData: needs mimeType and data"); return; }
      const part = mediaPart(mime as string, "data:" + (mime as string) + ";base64," + (data as string), pat, r);
      if (part !== null) content.push(part);
    } else if (file !== null && !model) {
      const mime = file.getString("mimeType");
      const uri = file.getString("fileUri");
      if (uri === null) { r.error = bad(pat + ".fileData.fileUri: required"); return; }
      const part = mediaPart(mime !== null ? mime as string : "image/jpeg", uri as string, pat, r);
      if (part !== null) content.push(part);
    } else if (fc !== null && model) {
      const name = fc.getString("name");
      if (name === null) { r.error = bad(pat + ".functionCall.name: required"); return; }
      const given = fc.getString("id");
      const id = given !== null && (given as string).length ? given as string : "call_" + calls.ids.length.toString() + "_" + (name as string);
      const args = new ByteBuilder();
      const a = fc.get("args");
      if (a !== null && a.isObject()) args.value(a);
      else args.raw("{}");
      calls.ids.push(id);
      calls.names.push(name as string);
      calls.answered.push(false);
      toolCalls.push(JsonValue.object().set("id", JsonValue.str(id)).set("type", JsonValue.str("function"))
        .set("function", JsonValue.object().set("name", JsonValue.str(name as string)).set("arguments", JsonValue.str(args.toString()))));
    } else if (fr !== null && !model) {
      const name = fr.getString("name");
      if (name === null) { r.error = bad(pat + ".functionResponse.name: required"); return; }
      const id = calls.take(name as string);
      if (id === null) { r.error = bad(pat + ".functionResponse: no earlier functionCall named '" + (name as string) + "' is waiting for it"); return; }
      const resp = fr.get("response");
      const body = new ByteBuilder();
      if (resp !== null) body.value(resp);
      else body.raw("{}");
      out.push(JsonValue.object().set("role", JsonValue.str("tool")).set("tool_call_id", JsonValue.str(id as string)).set("content", JsonValue.str(body.toString())));
    } else {
      geminiOnly(r, pat + ": this kind of part is not supported through the gateway for this model (text, inlineData, fileData, functionCall in model turns and functionResponse in user turns are)");
    }
  }
  if (model) {
    if (!texts.length && !toolCalls.length) return;
    const m = JsonValue.object().set("role", JsonValue.str("assistant")).set("content", texts.length ? JsonValue.str(texts.join("")) : JsonValue.nul());
    if (toolCalls.length) m.set("tool_calls", toolCalls);
    out.push(m);
  } else if (content.length) {
    out.push(JsonValue.object().set("role", JsonValue.str("user")).set("content", content));
  }
}

/** thinkingBudget -> reasoning_effort: none for 0, else by size; -1 (dynamic) is the model's default, medium. */
function thinkingEffort(budget: f64): string {
  if (budget == 0) return "none";
  if (budget < 0) return "medium";
  if (budget <= 1024) return "low";
  if (budget <= 8192) return "medium";
  return "high";
}

function convertGeneration(g: JsonValue, out: JsonValue, r: Converted): void {
  if (!g.isObject()) { r.error = bad("generationConfig: must be an object"); return; }
  for (let i = 0; i < g.length; i++) {
    const k = g.keyAt(i);
    const v = g.at(i);
    if (k == "temperature" || k == "seed") out.set(k, v);
    else if (k == "topP") out.set("top_p", v);
    else if (k == "topK") out.set("top_k", v);
    else if (k == "candidateCount") out.set("n", v);
    else if (k == "maxOutputTokens") out.set("max_tokens", v);
    else if (k == "stopSequences") out.set("stop", v);
    else if (k == "presencePenalty") out.set("presence_penalty", v);
    else if (k == "frequencyPenalty") out.set("frequency_penalty", v);
    else if (k == "thinkingConfig") {
      const b = v.isObject() ? v.get("thinkingBudget") : null;
      if (b !== null && b.isNumber()) out.set("reasoning_effort", JsonValue.str(thinkingEffort(b.n)));
    } else if (k == "responseModalities") {
      for (let j = 0; v.isArray() && j < v.length; j++) {
        const m = v.at(j);
        if (!m.isString() || m.s.toUpperCase() != "TEXT") geminiOnly(r, "generationConfig.responseModalities: only TEXT is supported through the gateway for this model");
      }
    } else if (k == "speechConfig" || k == "responseLogprobs" || k == "logprobs" || k == "audioTimestamp" || k == "enableEnhancedCivicAnswers") {
      geminiOnly(r, "generationConfig." + k + ": not supported through the gateway for this model");
    }
    // responseMimeType and the schemas are read together below; mediaResolution and the rest are hints.
  }
  const mime = g.getString("responseMimeType");
  const schema = g.get("responseJsonSchema");
  const oapi = g.get("responseSchema");
  if (mime == "application/json") {
    if (schema !== null || oapi !== null) {
      const js = JsonValue.object().set("name", JsonValue.str("response")).set("schema", schema !== null ? schema : lowerTypes(oapi as JsonValue));
      out.set("response_format", JsonValue.object().set("type", JsonValue.str("json_schema")).set("json_schema", js));
    } else out.set("response_format", JsonValue.object().set("type", JsonValue.str("json_object")));
  } else if (mime !== null && mime != "text/plain") {
    geminiOnly(r, "generationConfig.responseMimeType: '" + (mime as string) + "' is not supported through the gateway for this model");
  }
}

function convertTools(tools: JsonValue, out: JsonValue, r: Converted): void {
  if (!tools.isArray()) { r.error = bad("tools: must be a list"); return; }
  const list = JsonValue.array();
  for (let i = 0; i < tools.length; i++) {
    const t = tools.at(i);
    const decls = t.isObject() ? t.get("functionDeclarations") : null;
    if (decls === null || !decls.isArray() || t.length != 1) {
      geminiOnly(r, "tools[" + i.toString() + "]: only functionDeclarations are supported through the gateway for this model (googleSearch, codeExecution and the other built-in tools are Gemini's own)");
      continue;
    }
    for (let j = 0; j < decls.length; j++) {
      const d = decls.at(j);
      const name = d.getString("name");
      if (name === null) { r.error = bad("tools[" + i.toString() + "].functionDeclarations[" + j.toString() + "].name: required"); return; }
      const f = JsonValue.object().set("name", JsonValue.str(name as string));
      const desc = d.getString("description");
      if (desc !== null) f.set("description", JsonValue.str(desc as string));
      const js = d.get("parametersJsonSchema");
      const oapi = d.get("parameters");
      f.set("parameters", js !== null ? js : oapi !== null ? lowerTypes(oapi) : JsonValue.object().set("type", JsonValue.str("object")));
      list.push(JsonValue.object().set("type", JsonValue.str("function")).set("function", f));
    }
  }
  if (list.length) out.set("tools", list);
}

function convertToolConfig(tc: JsonValue, out: JsonValue, r: Converted): void {
  const fcc = tc.isObject() ? tc.get("functionCallingConfig") : null;
  if (fcc === null) return;
  const mode = fcc.getString("mode");
  const allowed = fcc.get("allowedFunctionNames");
  if (mode === null || mode == "AUTO" || mode == "VALIDATED" || mode == "MODE_UNSPECIFIED") out.set("tool_choice", JsonValue.str("auto"));
  else if (mode == "NONE") out.set("tool_choice", JsonValue.str("none"));
  else if (mode == "ANY") {
    if (allowed !== null && allowed.isArray() && allowed.length == 1 && allowed.at(0).isString()) {
      out.set("tool_choice", JsonValue.object().set("type", JsonValue.str("function")).set("function", JsonValue.object().set("name", allowed.at(0))));
    } else out.set("tool_choice", JsonValue.str("required"));
  } else r.error = bad("toolConfig.functionCallingConfig.mode: must be AUTO, ANY, NONE or VALIDATED");
}

/**
 * Converts a Gemini GenerateContentRequest into an OpenAI chat request for `model`. What only
 * Gemini takes is left out and named in untranslatable: the request may still go to Gemini itself.
 */
export function geminiToOpenAI(req: JsonValue, model: string, stream: bool): Converted {
  const r = new Converted();
  if (!req.isObject()) { r.error = bad("The request body must be a JSON object"); return r; }
  const out = JsonValue.object().set("model", JsonValue.str(model));
  const messages = JsonValue.array();
  const sys = req.get("systemInstruction");
  if (sys !== null) {
    const text = textOf(sys);
    if (text === null) { r.error = bad("systemInstruction: must be a Content with text parts"); return r; }
    messages.push(JsonValue.object().set("role", JsonValue.str("system")).set("content", JsonValue.str(text as string)));
  }
  const contents = req.get("contents");
  if (contents === null || !contents.isArray()) { r.error = bad("contents: required (a list of Content)"); return r; }
  const calls = new OpenCalls();
  for (let i = 0; i < contents.length && r.error === null; i++) convertTurn(contents.at(i), "contents[" + i.toString() + "]", messages, calls, r);
  if (r.error !== null) return r;
  out.set("messages", messages);
  for (let i = 0; i < req.length && r.error === null; i++) {
    const k = req.keyAt(i);
    const v = req.at(i);
    if (k == "contents" || k == "systemInstruction" || k == "model") continue;
    if (k == "generationConfig") convertGeneration(v, out, r);
    else if (k == "tools") convertTools(v, out, r);
    else if (k == "toolConfig") convertToolConfig(v, out, r);
    else geminiOnly(r, "'" + k + "' is Gemini's own and is not supported through the gateway for this model");
  }
  if (r.error !== null) return r;
  if (stream) out.set("stream", JsonValue.boolean(true));
  r.req = out;
  return r;
}

// ---------------------------------------------------------------------------------------------
// Embeddings: embedContent {content, taskType, title, outputDimensionality} and batchEmbedContents
// {requests: [the same, each with model]} -> OpenAI's {model, input, dimensions}; answers
// {"embedding": {"values"}} and {"embeddings": [{"values"}]}. taskType and title only mean
// something to Gemini's own models: they go to Gemini untouched and are dropped for others.

function embedText(req: JsonValue, at: string, r: Converted): string | null {
  const content = req.isObject() ? req.get("content") : null;
  if (content === null || !content.isObject()) { r.error = bad(at + "content: required (a Content with text parts)"); return null; }
  const parts = content.get("parts");
  if (parts === null || !parts.isArray() || parts.length == 0) { r.error = bad(at + "content.parts: required (a non-empty list)"); return null; }
  const texts = new Array<string>();
  for (let i = 0; i < parts.length; i++) {
    const t = parts.at(i).getString("text");
    if (t === null) { geminiOnly(r, at + "content.parts[" + i.toString() + "]: only text can be embedded through the gateway for this model"); continue; }
    texts.push(t as string);
  }
  return texts.join(" ");
}

/** A Gemini embedding request (`batch`: batchEmbedContents) as OpenAI's /v1/embeddings request. */
export function geminiEmbedToOpenAI(req: JsonValue, model: string, batch: bool): Converted {
  const r = new Converted();
  if (!req.isObject()) { r.error = bad("The request body must be a JSON object"); return r; }
  const out = JsonValue.object().set("model", JsonValue.str(model));
  let dims: JsonValue | null = null;
  if (batch) {
    const list = req.get("requests");
    if (list === null || !list.isArray() || list.length == 0) { r.error = bad("requests: required (a non-empty list)"); return r; }
    const input = JsonValue.array();
    for (let i = 0; i < list.length; i++) {
      const one = list.at(i);
      const at = "requests[" + i.toString() + "].";
      const m = one.isObject() ? one.getString("model") : null;
      if (m !== null && m != "models/" + model && m != model) { r.error = bad(at + "model: every request of a batch must name the path's model, models/" + model); return r; }
      const t = embedText(one, at, r);
      if (t === null) return r;
      input.push(JsonValue.str(t as string));
      const d = one.get("outputDimensionality");
      if (d !== null) dims = d;
    }
    out.set("input", input);
  } else {
    const t = embedText(req, "", r);
    if (t === null) return r;
    out.set("input", JsonValue.str(t as string));
    dims = req.get("outputDimensionality");
  }
  if (dims !== null) out.set("dimensions", dims);
  r.req = out;
  return r;
}

/** The vectors in Gemini's shape: one `embedding` (embedContent) or the `embeddings` of a batch. */
export function writeGeminiEmbeddings(vectors: Array<JsonValue>, batch: bool, b: ByteBuilder): void {
  if (!batch) {
    b.raw('{"embedding":{"values":').value(vectors.length ? vectors[0] : JsonValue.array()).raw("}}");
    return;
  }
  b.raw('{"embeddings":[');
  for (let i = 0; i < vectors.length; i++) {
    if (i) b.byte(0x2c);
    b.raw('{"values":').value(vectors[i]).byte(0x7d);
  }
  b.raw("]}");
}

// ---------------------------------------------------------------------------------------------
// Answers

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
