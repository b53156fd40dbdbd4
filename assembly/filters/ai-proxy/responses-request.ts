// An OpenAI Responses API request (POST /v1/responses) read into an OpenAI Chat Completions request,
// the providers' common input. What it relies on, from the `openai` SDK's types (6.49,
// resources/responses/responses.d.ts: ResponseCreateParamsBase, ResponseInputItem, FunctionTool,
// ToolChoiceOptions / ToolChoiceFunction, ResponseTextConfig, Reasoning) and OpenAI's API reference
// for "Create a model response":
// - `input`: a string (one user message) or a list of items. Message items ({type?: "message", role,
//   content}) have role user, assistant, system or developer and content as a string or a list of
//   parts: input_text / output_text {text}, refusal {refusal}, input_image {image_url, detail}.
//   function_call items {call_id, name, arguments} are the model's earlier tool calls;
//   function_call_output items {call_id, output} their results (output a string or a list of
//   input_text parts). reasoning items (an earlier turn's reasoning, which Codex sends back) carry
//   nothing another provider can take and are skipped.
// - `instructions`: the system prompt, first. `tools`: flat function tools
//   {type: "function", name, description, parameters, strict}. `tool_choice`: "auto" | "none" |
//   "required" | {type: "function", name}. `max_output_tokens`, `temperature`, `top_p`,
//   `parallel_tool_calls`, `user`, `stream`. `text.format`: {type: "text"} |
//   {type: "json_object"} | {type: "json_schema", name, schema, strict, description} (Chat's
//   response_format, whose json_schema nests them). `reasoning.effort` -> reasoning_effort.
// - `metadata` is the stored response's, echoed in the answer, not sent on; `include`,
//   `prompt_cache_key`, `service_tier`, `truncation`, `safety_identifier`, `text.verbosity` and
//   `reasoning.summary` have no Chat counterpart and are accepted and ignored. `store: false`
//   keeps the answer out of the gateway's store; `previous_response_id` names a response in it
//   (responses-store.ts), whose conversation goes between the instructions and the input.
// - Refused with a 400 (the gateway cannot honour them through another provider's chat API):
//   built-in tools (web_search, file_search, computer_use, code_interpreter, mcp, ...),
//   `conversation`, `prompt` (stored prompt templates), item_reference items and input_file
//   parts; an OpenAI or Azure OpenAI instance gets them as sent. `background` is refused for every
//   provider (it is polled with GET /v1/responses/{id}, which the gateway answers only from its
//   own store of finished answers, never from OpenAI's).
// Hostile input is normal input: every member read is type-checked here, lists are bounded by the
// gateway's max_messages, token counts by its max_tokens.
import { JsonValue } from "../../lib/json";
import { ClientError } from "../../providers/types";
import { RequestLimits } from "./config";
import { Converted } from "./client-anthropic";

function bad(message: string, param: string, code: string = "invalid_value"): ClientError {
  const e = ClientError.of(400, message, "invalid_request_error", code);
  e.param = param;
  return e;
}

/** OpenAI's answer for an id it does not know (400 for previous_response_id, 404 for GET). */
export function responseNotFound(id: string, status: u32, param: string): ClientError {
  // The id is the client's: bounded in the message.
  const shown = id.length > 128 ? id.substring(0, 128) : id;
  const e = ClientError.of(status, "Previous response with id '" + shown + "' not found.", "invalid_request_error", "previous_response_not_found");
  if (status == 404) {
    e.message = "Response with id '" + shown + "' not found.";
    e.code = "";
  }
  e.param = param;
  return e;
}

function unsupported(message: string, param: string): ClientError {
  return bad(message, param, "unsupported_parameter");
}

/**
 * Members refused for a provider without its own Responses API: they need conversations or
 * prompts stored at OpenAI. (An OpenAI or Azure OpenAI instance gets them as sent.)
 * previous_response_id is read from the gateway's own store (responses-store.ts).
 */
const REFUSED: Array<string> = ["conversation", "prompt"];

function present(v: JsonValue | null): bool {
  return v !== null && !v.isNull() && !(v.isBool() && !v.b);
}

/**
 * The request check the gateway owns for /v1/responses, before any provider is chosen: the types
 * and bounds of what it reads, and `background`, refused for every provider (a background response
 * is polled with GET /v1/responses/{id}, which the gateway answers only from its own store).
 */
export function validateResponses(req: JsonValue, limits: RequestLimits): ClientError | null {
  if (present(req.get("background"))) {
    return unsupported("'background' is not supported through the gateway (a background response is polled with GET /v1/responses/{id}, which the gateway answers only from its own store of finished answers); send the request without it.", "background");
  }
  const prev = req.get("previous_response_id");
  if (prev !== null && !prev.isNull() && !prev.isString()) return bad("'previous_response_id' must be a string.", "previous_response_id", "invalid_type");
  const store = req.get("store");
  if (store !== null && !store.isNull() && !store.isBool()) return bad("'store' must be a boolean.", "store", "invalid_type");
  const input = req.get("input");
  if (input === null || (!input.isString() && !input.isArray())) {
    return bad("'input' must be a string or a list of input items.", "input");
  }
  if (input.isArray()) {
    if (input.length == 0) return bad("'input' must not be an empty list.", "input");
    if (input.length > limits.maxMessages) {
      return bad("'input' has " + input.length.toString() + " items; the gateway takes at most " + limits.maxMessages.toString() + ".", "input", "too_many_messages");
    }
    for (let i = 0, n = input.length; i < n; i++) {
      if (!input.at(i).isObject()) return bad("'input[" + i.toString() + "]' must be an object.", "input[" + i.toString() + "]", "invalid_type");
    }
  }
  const instructions = req.get("instructions");
  if (instructions !== null && !instructions.isNull() && !instructions.isString()) {
    return bad("'instructions' must be a string.", "instructions", "invalid_type");
  }
  const max = req.get("max_output_tokens");
  if (max !== null && !max.isNull() && (!max.isInteger() || max.n < 1 || max.n > <f64>limits.maxTokens)) {
    return bad("'max_output_tokens' must be a positive integer, at most " + limits.maxTokens.toString() + ".", "max_output_tokens");
  }
  const nums = ["temperature", "top_p"];
  for (let i = 0; i < nums.length; i++) {
    const v = req.get(nums[i]);
    if (v !== null && !v.isNull() && !v.isNumber()) return bad("'" + nums[i] + "' must be a number.", nums[i], "invalid_type");
  }
  const meta = req.get("metadata");
  if (meta !== null && !meta.isNull()) {
    // OpenAI: at most 16 pairs, keys up to 64 characters, values strings up to 512.
    if (!meta.isObject() || meta.length > 16) return bad("'metadata' must be an object of at most 16 string values.", "metadata", "invalid_type");
    for (let i = 0, n = meta.length; i < n; i++) {
      const v = meta.at(i);
      if (meta.keyAt(i).length > 64 || !v.isString() || v.units > 512) {
        return bad("'metadata' keys are at most 64 characters and its values strings of at most 512.", "metadata", "invalid_value");
      }
    }
  }
  const tools = req.get("tools");
  if (tools !== null && !tools.isNull()) {
    if (!tools.isArray()) return bad("'tools' must be a list.", "tools", "invalid_type");
    if (tools.length > limits.maxMessages) return bad("'tools' has too many entries.", "tools", "invalid_value");
    for (let i = 0, n = tools.length; i < n; i++) {
      const t = tools.at(i);
      const p = "tools[" + i.toString() + "]";
      const type = t.isObject() ? t.getString("type") : null;
      if (type === null) return bad("'" + p + "' must be an object with a string 'type'.", p, "invalid_type");
      if (type == "function" && t.getString("name") === null) return bad("'" + p + ".name' is required.", p + ".name", "missing_required_parameter");
      const params = t.get("parameters");
      if (params !== null && !params.isNull() && !params.isObject()) return bad("'" + p + ".parameters' must be a JSON Schema object.", p + ".parameters", "invalid_type");
    }
  }
  return null;
}

/** Text of a content value: a string, or its text parts joined (input_text, output_text, refusal). */
function partsText(c: JsonValue, path: string, r: Converted): string | null {
  if (c.isString()) return c.s;
  if (!c.isArray()) {
    r.error = bad("'" + path + "' must be a string or a list of content parts.", path, "invalid_type");
    return null;
  }
  let out = "";
  for (let i = 0, n = c.length; i < n; i++) {
    const part = c.at(i);
    const pp = path + "[" + i.toString() + "]";
    const type = part.isObject() ? part.getString("type") : null;
    let t: string | null = null;
    if (type == "input_text" || type == "output_text") t = part.getString("text");
    else if (type == "refusal") t = part.getString("refusal");
    else {
      r.error = bad("'" + pp + "' must be a text part here (input_text or output_text).", pp, "invalid_value");
      return null;
    }
    if (t === null) {
      r.error = bad("'" + pp + "' needs its text.", pp, "missing_required_parameter");
      return null;
    }
    out += t as string;
  }
  return out;
}

/** A user message's content: a string, or Chat content parts (text and image_url). */
function userContent(c: JsonValue, path: string, r: Converted): JsonValue | null {
  if (c.isString()) return c;
  if (!c.isArray()) {
    r.error = bad("'" + path + "' must be a string or a list of content parts.", path, "invalid_type");
    return null;
  }
  const parts = JsonValue.array();
  for (let i = 0, n = c.length; i < n; i++) {
    const part = c.at(i);
    const pp = path + "[" + i.toString() + "]";
    const type = part.isObject() ? part.getString("type") : null;
    if (type == "input_text" || type == "output_text") {
      const t = part.get("text");
      if (t === null || !t.isString()) { r.error = bad("'" + pp + ".text' must be a string.", pp + ".text", "invalid_type"); return null; }
      parts.push(JsonValue.object().set("type", JsonValue.str("text")).set("text", t));
    } else if (type == "input_image") {
      const url = part.get("image_url");
      if (url === null || !url.isString()) {
        r.error = unsupported("'" + pp + "': images are taken as 'image_url' (a URL or a data: URL) through the gateway, not as file_id.", pp + ".image_url");
        return null;
      }
      const img = JsonValue.object().set("url", url);
      const detail = part.get("detail");
      if (detail !== null && detail.isString()) img.set("detail", detail);
      parts.push(JsonValue.object().set("type", JsonValue.str("image_url")).set("image_url", img));
    } else if (type == "input_file") {
      r.error = unsupported("'" + pp + "': input_file parts are not supported through the gateway.", pp);
      return null;
    } else {
      r.error = bad("'" + pp + ".type' must be input_text, input_image or output_text.", pp + ".type");
      return null;
    }
  }
  return parts;
}

/** The assistant message function_call items attach to: the last one, when it is an assistant turn. */
function assistantFor(messages: JsonValue): JsonValue {
  const n = messages.length;
  if (n > 0) {
    const last = messages.at(n - 1);
    if (last.getString("role") == "assistant") return last;
  }
  const m = JsonValue.object().set("role", JsonValue.str("assistant")).set("content", JsonValue.nul());
  messages.push(m);
  return m;
}

/** One input item (or a stored Response's output item) appended to messages in chat format. */
export function convertItem(item: JsonValue, i: i32, messages: JsonValue, r: Converted): void {
  const path = "input[" + i.toString() + "]";
  let type = item.getString("type");
  if (type === null && item.get("role") !== null) type = "message";
  if (type == "message") {
    const role = item.getString("role");
    const content = item.get("content");
    if (content === null) { r.error = bad("'" + path + ".content' is required.", path + ".content", "missing_required_parameter"); return; }
    if (role == "user") {
      const c = userContent(content, path + ".content", r);
      if (c === null) return;
      messages.push(JsonValue.object().set("role", JsonValue.str("user")).set("content", c));
    } else if (role == "assistant" || role == "system" || role == "developer") {
      const t = partsText(content, path + ".content", r);
      if (t === null) return;
      // developer is the system prompt of OpenAI's newer models; the other providers know system.
      const chatRole = role == "assistant" ? "assistant" : "system";
      messages.push(JsonValue.object().set("role", JsonValue.str(chatRole)).set("content", JsonValue.str(t as string)));
    } else {
      r.error = bad("'" + path + ".role' must be one of user, assistant, system, developer.", path + ".role");
    }
  } else if (type == "function_call") {
    const callId = item.getString("call_id");
    const name = item.getString("name");
    const args = item.getString("arguments");
    if (callId === null || name === null || args === null) {
      r.error = bad("'" + path + "': a function_call item needs call_id, name and arguments (strings).", path, "missing_required_parameter");
      return;
    }
    const m = assistantFor(messages);
    let calls = m.get("tool_calls");
    if (calls === null) {
      calls = JsonValue.array();
      m.set("tool_calls", calls);
    }
    calls.push(JsonValue.object().set("id", JsonValue.str(callId as string)).set("type", JsonValue.str("function"))
      .set("function", JsonValue.object().set("name", JsonValue.str(name as string)).set("arguments", JsonValue.str(args as string))));
  } else if (type == "function_call_output") {
    const callId = item.getString("call_id");
    const output = item.get("output");
    if (callId === null || output === null) {
      r.error = bad("'" + path + "': a function_call_output item needs call_id and output.", path, "missing_required_parameter");
      return;
    }
    const t = partsText(output, path + ".output", r);
    if (t === null) return;
    messages.push(JsonValue.object().set("role", JsonValue.str("tool")).set("tool_call_id", JsonValue.str(callId as string)).set("content", JsonValue.str(t as string)));
  } else if (type == "reasoning") {
    // An earlier turn's reasoning (summaries, encrypted content) only OpenAI's own models read.
    return;
  } else if (type == "item_reference") {
    r.error = unsupported("'" + path + "': item_reference items are not supported through the gateway; use previous_response_id or send the item itself.", path + ".type");
  } else {
    r.error = unsupported("'" + path + ".type': '" + (type !== null ? type as string : "") + "' items are not supported through the gateway.", path + ".type");
  }
}

/** text.format -> response_format; null when there is nothing to send. */
function responseFormat(text: JsonValue, r: Converted): JsonValue | null {
  if (!text.isObject()) { r.error = bad("'text' must be an object.", "text", "invalid_type"); return null; }
  const format = text.get("format");
  if (format === null || format.isNull()) return null;
  const type = format.isObject() ? format.getString("type") : null;
  if (type == "text") return null;
  if (type == "json_object") return JsonValue.object().set("type", JsonValue.str("json_object"));
  if (type == "json_schema") {
    const name = format.get("name");
    const schema = format.get("schema");
    if (name === null || !name.isString() || schema === null || !schema.isObject()) {
      r.error = bad("'text.format' of type json_schema needs a string 'name' and a 'schema' object.", "text.format", "missing_required_parameter");
      return null;
    }
    const js = JsonValue.object().set("name", name).set("schema", schema);
    const strict = format.get("strict");
    if (strict !== null && strict.isBool()) js.set("strict", strict);
    const d = format.get("description");
    if (d !== null && d.isString()) js.set("description", d);
    return JsonValue.object().set("type", JsonValue.str("json_schema")).set("json_schema", js);
  }
  r.error = bad("'text.format.type' must be text, json_object or json_schema.", "text.format.type");
  return null;
}

/** tool_choice in Responses' shape -> Chat's. */
function toolChoice(tc: JsonValue, r: Converted): JsonValue | null {
  if (tc.isString()) {
    const s = tc.s;
    if (s == "auto" || s == "none" || s == "required") return tc;
  } else if (tc.isObject() && tc.getString("type") == "function") {
    const name = tc.getString("name");
    if (name !== null) {
      return JsonValue.object().set("type", JsonValue.str("function")).set("function", JsonValue.object().set("name", JsonValue.str(name as string)));
    }
  }
  r.error = unsupported("'tool_choice' must be auto, none, required or {\"type\":\"function\",\"name\":...} through the gateway.", "tool_choice");
  return null;
}

/**
 * A Responses request (already checked by validateResponses) as an OpenAI Chat Completions
 * request. history: the stored conversation previous_response_id names (responses-store.ts
 * historyOf), between the instructions and the input; a request that names one without it is
 * refused (not found).
 */
export function responsesToOpenAI(req: JsonValue, history: JsonValue | null = null): Converted {
  const r = new Converted();
  // (An instance with its own Responses API takes these; the others cannot.)
  for (let i = 0; i < REFUSED.length; i++) {
    if (present(req.get(REFUSED[i]))) {
      r.error = unsupported("'" + REFUSED[i] + "' is not supported through the gateway for this model's provider (it keeps no conversations or prompts; send the whole conversation in 'input').", REFUSED[i]);
      return r;
    }
  }
  const out = JsonValue.object();
  const model = req.get("model");
  if (model !== null) out.set("model", model);
  const messages = JsonValue.array();
  const instructions = req.get("instructions");
  if (instructions !== null && instructions.isString()) {
    messages.push(JsonValue.object().set("role", JsonValue.str("system")).set("content", instructions));
  }
  const prev = req.getString("previous_response_id");
  if (prev !== null && history === null) {
    r.error = responseNotFound(prev as string, 400, "previous_response_id");
    return r;
  }
  if (history !== null) {
    for (let i = 0, n = history.length; i < n; i++) messages.push(history.at(i));
  }
  const input = req.get("input");
  if (input === null) { r.error = bad("'input' is required.", "input", "missing_required_parameter"); return r; }
  if (input.isString()) {
    messages.push(JsonValue.object().set("role", JsonValue.str("user")).set("content", input));
  } else if (input.isArray()) {
    for (let i = 0, n = input.length; i < n && r.error === null; i++) convertItem(input.at(i), i, messages, r);
    if (r.error !== null) return r;
  } else {
    r.error = bad("'input' must be a string or a list of input items.", "input");
    return r;
  }
  if (messages.length == 0) { r.error = bad("'input' holds no message the model can read.", "input"); return r; }
  out.set("messages", messages);

  const max = req.get("max_output_tokens");
  if (max !== null && !max.isNull()) out.set("max_completion_tokens", max);
  const copy = ["temperature", "top_p", "parallel_tool_calls", "user"];
  for (let i = 0; i < copy.length; i++) {
    const v = req.get(copy[i]);
    if (v !== null && !v.isNull()) out.set(copy[i], v);
  }
  // (Each provider's chat writer asks for the stream's usage its own way.)
  const stream = req.get("stream");
  if (stream !== null && stream.isBool() && stream.b) out.set("stream", stream);

  const tools = req.get("tools");
  if (tools !== null && tools.isArray() && tools.length) {
    const list = JsonValue.array();
    for (let i = 0, n = tools.length; i < n; i++) {
      const t = tools.at(i);
      const type = t.getString("type");
      if (type != "function") {
        const p = "tools[" + i.toString() + "]";
        r.error = unsupported("'" + p + "': built-in tools ('" + (type !== null ? type as string : "") + "') are not supported through the gateway for this model's provider; only function tools are.", p + ".type");
        return r;
      }
      const f = JsonValue.object().set("name", JsonValue.str(t.getString("name") as string));
      const d = t.get("description");
      if (d !== null && d.isString()) f.set("description", d);
      const params = t.get("parameters");
      f.set("parameters", params !== null && params.isObject() ? params : JsonValue.object().set("type", JsonValue.str("object")));
      const strict = t.get("strict");
      if (strict !== null && strict.isBool()) f.set("strict", strict);
      list.push(JsonValue.object().set("type", JsonValue.str("function")).set("function", f));
    }
    out.set("tools", list);
  }
  const tc = req.get("tool_choice");
  if (tc !== null && !tc.isNull()) {
    const c = toolChoice(tc, r);
    if (c === null) return r;
    out.set("tool_choice", c);
  }
  const text = req.get("text");
  if (text !== null && !text.isNull()) {
    const f = responseFormat(text, r);
    if (r.error !== null) return r;
    if (f !== null) out.set("response_format", f);
  }
  const reasoning = req.get("reasoning");
  if (reasoning !== null && !reasoning.isNull()) {
    if (!reasoning.isObject()) { r.error = bad("'reasoning' must be an object.", "reasoning", "invalid_type"); return r; }
    const effort = reasoning.get("effort");
    if (effort !== null && !effort.isNull()) {
      if (!effort.isString()) { r.error = bad("'reasoning.effort' must be a string.", "reasoning.effort", "invalid_type"); return r; }
      out.set("reasoning_effort", effort);
    }
  }
  r.req = out;
  return r;
}
