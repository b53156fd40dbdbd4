// Which client APIs the guard reads, and the texts of each one's request body: every string value a
// model will read, found in the parsed body (lib/json.ts keeps each as its bytes in the body, so
// actions.ts can rewrite exactly those). Images, audio and files are passed by; so are thinking
// blocks (signed by the provider: changing one would make the provider refuse the request).
import { JsonValue } from "../../lib/json";
import { geminiRoute } from "../../lib/path";

// Client APIs, by the shape their errors take.
export const API_NONE: i32 = 0;
export const API_OPENAI: i32 = 1; // Chat Completions, Responses, embeddings
export const API_ANTHROPIC: i32 = 2;
export const API_GEMINI: i32 = 3;
export const API_JSONRPC: i32 = 4; // MCP: refusals are JSON-RPC errors for the call's id

// Body kinds.
export const K_CHAT: i32 = 1;
export const K_MESSAGES: i32 = 2;
export const K_RESPONSES: i32 = 3;
export const K_EMBEDDINGS: i32 = 4;
export const K_GEMINI: i32 = 5; // generateContent, streamGenerateContent, countTokens
export const K_GEMINI_EMBED: i32 = 6; // embedContent, batchEmbedContents
export const K_MCP: i32 = 7; // MCP tools/call and prompts/get (the mcp filter named the method)

/**
 * The body kind of an MCP request by its JSON-RPC method (filter state sluice.mcp_method, set by the
 * mcp filter before this one): tools/call and prompts/get carry client text to a server; every
 * other method is left alone (0).
 */
export function mcpKind(method: string): i32 {
  return method == "tools/call" || method == "prompts/get" ? K_MCP : 0;
}

/** The body kind of a POST to this path (without its query), or 0 for one the guard leaves alone. */
export function bodyKind(path: string): i32 {
  if (path == "/v1/chat/completions") return K_CHAT;
  if (path == "/v1/messages" || path == "/v1/messages/count_tokens") return K_MESSAGES;
  if (path == "/v1/responses") return K_RESPONSES;
  if (path == "/v1/embeddings") return K_EMBEDDINGS;
  const g = geminiRoute(path);
  if (g === null) return 0;
  const m = g.method;
  if (m == "generateContent" || m == "streamGenerateContent" || m == "countTokens") return K_GEMINI;
  if (m == "embedContent" || m == "batchEmbedContents") return K_GEMINI_EMBED;
  return 0;
}

export function apiOf(kind: i32): i32 {
  if (kind == K_MESSAGES) return API_ANTHROPIC;
  if (kind == K_MCP) return API_JSONRPC;
  if (kind == K_GEMINI || kind == K_GEMINI_EMBED) return API_GEMINI;
  return kind == 0 ? API_NONE : API_OPENAI;
}

// Where a text sits, for the injection detector (injection.ts factorOf): a user's or assistant's
// turn or a tool call's arguments; the operator's instructions (system and developer messages,
// Anthropic `system`, Responses `instructions`, Gemini `systemInstruction`); data the model reads
// (tool results, documents), where planted instructions are the attack.
export const AT_USER: u8 = 0;
export const AT_OPERATOR: u8 = 1;
export const AT_DATA: u8 = 2;

/** The texts of a request, and where each sits (noted as they are found: the body is walked once). */
export class Texts {
  values: Array<JsonValue> = [];
  where: Array<u8> = [];
  /** Where the texts added now sit. */
  at: u8 = AT_USER;

  add(v: JsonValue): void {
    this.values.push(v);
    this.where.push(this.at);
  }
}

/** The string values of the request a model reads, in document order within each part. */
export function requestTexts(kind: i32, req: JsonValue): Texts {
  const out = new Texts();
  switch (kind) {
    case K_CHAT: chat(req, out); break;
    case K_MESSAGES: messages(req, out); break;
    case K_RESPONSES: responses(req, out); break;
    case K_EMBEDDINGS: stringOrStrings(req.get("input"), out); break;
    case K_GEMINI: gemini(req, out); break;
    case K_GEMINI_EMBED: geminiEmbed(req, out); break;
    case K_MCP: {
      // Every string inside params.arguments (tools/call: any JSON; prompts/get: strings). The
      // arguments are written by the agent's model or its user: scored for injection as a user's
      // text, like tool call arguments in the chat APIs.
      const params = req.get("params");
      if (params !== null && params.isObject()) allStrings(params.get("arguments"), out);
      break;
    }
  }
  return out;
}

function text(v: JsonValue | null, out: Texts): void {
  if (v !== null && v.isString()) out.add(v);
}

/** Every string inside a value (tool call input, function arguments and results as objects). */
function allStrings(v: JsonValue | null, out: Texts): void {
  if (v === null) return;
  if (v.isString()) out.add(v);
  else if (v.isArray() || v.isObject()) {
    if (v.isNumberSpan()) return;
    for (let i = 0, n = v.length; i < n; i++) allStrings(v.at(i), out);
  }
}

function stringOrStrings(v: JsonValue | null, out: Texts): void {
  if (v === null) return;
  if (v.isString()) out.add(v);
  else if (v.isArray() && !v.isNumberSpan()) for (let i = 0, n = v.length; i < n; i++) text(v.at(i), out);
}

/**
 * Content as chat and Responses clients send it: a string, or parts of which the text ones count
 * (text, input_text, output_text); images, audio and files are passed by.
 */
function parts(content: JsonValue | null, out: Texts): void {
  if (content === null) return;
  if (content.isString()) {
    out.add(content);
    return;
  }
  if (!content.isArray()) return;
  for (let i = 0, n = content.length; i < n; i++) {
    const b = content.at(i);
    if (b.isString()) out.add(b);
    else if (b.isObject()) {
      const t = b.getString("type");
      if (t === null || t == "text" || t == "input_text" || t == "output_text") text(b.get("text"), out);
      else if (t == "refusal") text(b.get("refusal"), out);
    }
  }
}

/** Chat Completions: each message's content (tool results are role "tool" messages), tool call arguments. */
function chat(req: JsonValue, out: Texts): void {
  const ms = req.get("messages");
  if (ms === null || !ms.isArray()) return;
  for (let i = 0, n = ms.length; i < n; i++) {
    const m = ms.at(i);
    if (!m.isObject()) continue;
    const role = m.getString("role");
    out.at = role == "system" || role == "developer" ? AT_OPERATOR : role == "tool" || role == "function" ? AT_DATA : AT_USER;
    parts(m.get("content"), out);
    out.at = AT_USER;
    const calls = m.get("tool_calls");
    if (calls !== null && calls.isArray()) {
      for (let k = 0, c = calls.length; k < c; k++) {
        const f = calls.at(k).get("function");
        if (f !== null) text(f.get("arguments"), out);
      }
    }
    const fc = m.get("function_call"); // the deprecated single call
    if (fc !== null) text(fc.get("arguments"), out);
  }
}

/** Anthropic Messages: system, text blocks, tool_use input, tool_result content. */
function messages(req: JsonValue, out: Texts): void {
  out.at = AT_OPERATOR;
  anthropicBlocks(req.get("system"), out);
  out.at = AT_USER;
  const ms = req.get("messages");
  if (ms === null || !ms.isArray()) return;
  for (let i = 0, n = ms.length; i < n; i++) {
    const m = ms.at(i);
    if (m.isObject()) anthropicBlocks(m.get("content"), out);
  }
}

function anthropicBlocks(content: JsonValue | null, out: Texts): void {
  if (content === null) return;
  if (content.isString()) {
    out.add(content);
    return;
  }
  if (!content.isArray()) return;
  for (let i = 0, n = content.length; i < n; i++) {
    const b = content.at(i);
    if (!b.isObject()) continue;
    const t = b.getString("type");
    if (t === null) continue;
    if (t == "text") text(b.get("text"), out);
    else if (t == "tool_use" || t == "server_tool_use") allStrings(b.get("input"), out);
    else if (t == "tool_result" || t == "document") {
      const at = out.at;
      if (at != AT_OPERATOR) out.at = AT_DATA;
      if (t == "tool_result") anthropicBlocks(b.get("content"), out);
      else {
        // A plain-text document's text ({"source":{"type":"text","data":...}}); PDFs are passed by.
        const src = b.get("source");
        if (src !== null && src.getString("type") == "text") text(src.get("data"), out);
      }
      out.at = at;
    }
  }
}

/** OpenAI Responses: instructions and input (a string, or items: messages, function calls and their outputs). */
function responses(req: JsonValue, out: Texts): void {
  out.at = AT_OPERATOR;
  text(req.get("instructions"), out);
  out.at = AT_USER;
  const input = req.get("input");
  if (input === null) return;
  if (input.isString()) {
    out.add(input);
    return;
  }
  if (!input.isArray()) return;
  for (let i = 0, n = input.length; i < n; i++) {
    const m = input.at(i);
    if (!m.isObject()) continue;
    const t = m.getString("type");
    if (t === null || t == "message") {
      const role = m.getString("role");
      out.at = role == "system" || role == "developer" ? AT_OPERATOR : AT_USER;
      parts(m.get("content"), out);
      out.at = AT_USER;
    } else if (t == "function_call" || t == "custom_tool_call") {
      text(m.get("arguments"), out);
      text(m.get("input"), out);
    } else if (t == "function_call_output" || t == "custom_tool_call_output") {
      out.at = AT_DATA;
      parts(m.get("output"), out);
      out.at = AT_USER;
    }
  }
}

/** Gemini: systemInstruction and contents' parts: text (not thoughts), functionCall args, functionResponse. */
function gemini(req: JsonValue, out: Texts): void {
  // countTokens may wrap a whole generateContent request.
  const wrapped = req.get("generateContentRequest");
  if (wrapped !== null && wrapped.isObject()) gemini(wrapped, out);
  const sys = req.get("systemInstruction");
  out.at = AT_OPERATOR;
  if (sys !== null && sys.isObject()) geminiParts(sys.get("parts"), out);
  out.at = AT_USER;
  const contents = req.get("contents");
  if (contents === null || !contents.isArray()) return;
  for (let i = 0, n = contents.length; i < n; i++) {
    const c = contents.at(i);
    if (c.isObject()) geminiParts(c.get("parts"), out);
  }
}

function geminiParts(ps: JsonValue | null, out: Texts): void {
  if (ps === null || !ps.isArray()) return;
  for (let i = 0, n = ps.length; i < n; i++) {
    const part = ps.at(i);
    if (!part.isObject()) continue;
    const thought = part.get("thought");
    if (thought !== null && thought.isBool() && thought.b) continue;
    text(part.get("text"), out);
    const call = part.get("functionCall");
    if (call !== null) allStrings(call.get("args"), out);
    const resp = part.get("functionResponse");
    if (resp !== null) {
      const at = out.at;
      if (at != AT_OPERATOR) out.at = AT_DATA;
      allStrings(resp.get("response"), out);
      out.at = at;
    }
  }
}

/** Gemini embedContent ({content}) and batchEmbedContents ({requests: [{content}]}). */
function geminiEmbed(req: JsonValue, out: Texts): void {
  const c = req.get("content");
  if (c !== null && c.isObject()) geminiParts(c.get("parts"), out);
  const rs = req.get("requests");
  if (rs === null || !rs.isArray()) return;
  for (let i = 0, n = rs.length; i < n; i++) {
    const r = rs.at(i);
    const rc = r.isObject() ? r.get("content") : null;
    if (rc !== null && rc.isObject()) geminiParts(rc.get("parts"), out);
  }
}
