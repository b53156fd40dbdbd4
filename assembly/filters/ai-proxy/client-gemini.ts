// Gemini's own client API (POST /v1beta/models/{model}:generateContent and :streamGenerateContent,
// as @google/genai and gemini-cli send them): requests become OpenAI-format requests for any
// provider (here); answers and streams come back in Gemini's shapes (client-gemini-answer.ts),
// embeddings have their own file (client-gemini-embeddings.ts); errors are Gemini's (Gemini API
// reference, "Generating content": GenerateContentRequest / GenerateContentResponse; "Errors").
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
// Errors: {"error":{"code":<status>,"message":...,"status":"INVALID_ARGUMENT"|...}}.
import { JsonValue, ByteBuilder } from "../../lib/json";
import { ClientError } from "../../providers/types";
import { Converted } from "./client-anthropic";
import { writeGeminiErrorJson } from "../../lib/errors";

export function bad(message: string): ClientError {
  return ClientError.of(400, message, "invalid_request_error", "invalid_value");
}

/** Something only Gemini itself takes: left out, and refused only if another provider serves the request. */
export function geminiOnly(r: Converted, message: string): void {
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
