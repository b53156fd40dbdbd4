// What the rules look at in a chat request body, read once from its tape (lib/json-tape.ts: no tree
// is built; only the texts the rules read become values). Both client
// formats: OpenAI Chat Completions (messages with string or part-list content, system/developer
// messages, tools / functions, response_format) and Anthropic Messages (top-level system, content
// blocks, tool_use / tool_result, tools, output_format) and Gemini's generateContent (systemInstruction,
// contents with parts, functionDeclarations, generationConfig.responseMimeType; the model is in the
// path, which index.ts sets).
import { JsonValue } from "../../lib/json";
import { JsonTape } from "../../lib/json-tape";
import { Text } from "./text";
export { Text };
import { estimateTokens } from "../../lib/tokens";

export class Prompt {
  /** The body was read (false: no body, too large, or not a JSON object). */
  read: bool = false;
  model: string = "";
  // The two texts as the body is read; the rules read them through lastUser and conversation.
  userText: Text = new Text("\n");
  convText: Text = new Text("\n\n");
  private userDecoded: bool = false;
  private convDecoded: bool = false;
  private decodeLeft: i32 = DECODE_UNITS;

  /** Text of the last user message that has text (its text parts joined by newlines; tool results are not a user turn). */
  get lastUser(): Text {
    if (!this.userDecoded) {
      this.userDecoded = true;
      this.decodeLeft = decodeShortParts(this.userText, this.decodeLeft);
    }
    return this.userText;
  }

  /** Every text of the conversation in order, separated by blank lines: system, then each message's text and tool results. */
  get conversation(): Text {
    if (!this.convDecoded) {
      this.convDecoded = true;
      this.decodeLeft = decodeShortParts(this.convText, this.decodeLeft);
    }
    return this.convText;
  }
  /** Length of the messages list (Anthropic's top-level system is not a message). */
  messages: i32 = 0;
  textChars: i64 = 0;
  tools: bool = false;
  images: bool = false;
  jsonMode: bool = false;

  /** Estimated prompt tokens: about four characters a token over every text (images not counted). */
  get tokens(): i64 {
    return estimateTokens(this.textChars);
  }

  /** The value addPart added last. */
  part: JsonValue | null = null;

  /** Adds string value j of the tape to the conversation (see part); returns its length in units (0 for anything else). */
  addPart(t: JsonTape, j: i32): i32 {
    if (j < 0 || !t.isString(j)) return 0;
    const v = t.value(j);
    const n = v.units;
    this.convText.add(v, n);
    this.textChars += n;
    this.part = v;
    return n;
  }

  /** Adds string value j to the conversation and to `own` (a turn's own text), if any. */
  addOwn(t: JsonTape, j: i32, own: Text | null): void {
    const n = this.addPart(t, j);
    if (n && own !== null) own.add(this.part as JsonValue, n);
  }
}

// The request's top-level members the rules read, found in one pass over its keys
// (JsonTape.getAll), by TopKey into TOP_NAMES; -1 for an absent one.
enum TopKey { Model, System, Messages, Input, Instructions, Tools, Functions, Text, ResponseFormat, OutputFormat, SystemInstruction, Contents, GenerationConfig }
const TOP_NAMES: StaticArray<string> = [
  "model", "system", "messages", "input", "instructions", "tools", "functions", "text", "response_format",
  "output_format", "systemInstruction", "contents", "generationConfig",
];

// A chat message's members the rules read, the same way.
enum MessageKey { Role, Content, ToolCalls }
const MESSAGE_NAMES: StaticArray<string> = ["role", "content", "tool_calls"];

/** Reads the prompt features of request body `req` (an object) of a tape. Never fails. */
export function readPrompt(t: JsonTape, req: i32): Prompt {
  const p = new Prompt();
  p.read = true;
  const top = new StaticArray<i32>(TOP_NAMES.length);
  t.getAll(req, TOP_NAMES, top);
  const model = top[TopKey.Model];
  if (model >= 0 && t.isString(model)) p.model = t.str(model);

  // Anthropic: top-level system, a string or text blocks.
  const system = top[TopKey.System];
  if (system >= 0) {
    if (t.isString(system)) p.addPart(t, system);
    else if (t.isArray(system)) {
      for (let b = system + 1, end = t.next(system); b < end; b = t.next(b)) {
        if (t.isObject(b)) p.addPart(t, t.get(b, "text"));
      }
    }
  }

  const messages = top[TopKey.Messages];
  if (messages >= 0 && t.isArray(messages)) {
    p.messages = t.length(messages);
    const msg = new StaticArray<i32>(MESSAGE_NAMES.length);
    for (let m = messages + 1, end = t.next(messages); m < end; m = t.next(m)) {
      if (!t.isObject(m)) continue;
      t.getAll(m, MESSAGE_NAMES, msg);
      const own = t.is(msg[MessageKey.Role], "user") ? new Text("\n") : null;
      readContent(p, t, msg[MessageKey.Content], own);
      if (own !== null && own.length) p.userText = own;
      // OpenAI assistant tool calls: their arguments are part of what the model reads.
      const calls = msg[MessageKey.ToolCalls];
      if (calls >= 0 && t.isArray(calls)) {
        for (let c = calls + 1, cend = t.next(calls); c < cend; c = t.next(c)) {
          const f = t.get(c, "function");
          if (f >= 0 && t.isObject(f)) p.addPart(t, t.get(f, "arguments"));
        }
      }
    }
  }

  readResponsesInput(p, t, top);

  const tools = top[TopKey.Tools];
  if (tools >= 0 && t.isArray(tools) && t.length(tools) > 0) p.tools = true;
  const functions = top[TopKey.Functions];
  if (functions >= 0 && t.isArray(functions) && t.length(functions) > 0) p.tools = true;

  // JSON mode: OpenAI response_format json_object / json_schema; Anthropic structured outputs;
  // the Responses API's text.format.
  if (jsonFormat(t, top[TopKey.ResponseFormat])) p.jsonMode = true;
  const text = top[TopKey.Text];
  if (text >= 0 && jsonFormat(t, t.get(text, "format"))) p.jsonMode = true;
  if (jsonFormat(t, top[TopKey.OutputFormat])) p.jsonMode = true;
  readGemini(p, t, top);
  return p;
}

/** Value j is an object whose type asks for JSON output (json_object or json_schema). */
function jsonFormat(t: JsonTape, j: i32): bool {
  if (j < 0 || !t.isObject(j)) return false;
  const type = t.get(j, "type");
  return t.is(type, "json_object") || t.is(type, "json_schema");
}

/** Gemini's systemInstruction and contents: the same features from its parts. */
function readGemini(p: Prompt, t: JsonTape, top: StaticArray<i32>): void {
  const sys = top[TopKey.SystemInstruction];
  if (sys >= 0) readGeminiParts(p, t, t.get(sys, "parts"));
  const contents = top[TopKey.Contents];
  if (contents >= 0 && t.isArray(contents)) {
    p.messages = t.length(contents);
    for (let c = contents + 1, end = t.next(contents); c < end; c = t.next(c)) {
      if (!t.isObject(c)) continue;
      const own = readGeminiParts(p, t, t.get(c, "parts"));
      const role = t.get(c, "role");
      if ((role < 0 || !t.isString(role) || t.is(role, "user")) && own.length) p.userText = own;
    }
  }
  const tools = top[TopKey.Tools];
  if (tools >= 0 && t.isArray(tools) && t.length(tools) > 0 && top[TopKey.Messages] < 0) p.tools = true;
  const gc = top[TopKey.GenerationConfig];
  if (gc >= 0 && t.is(t.get(gc, "responseMimeType"), "application/json")) p.jsonMode = true;
}

/** A Gemini turn's parts: text (not earlier thoughts) is what it says; calls and results are context. */
function readGeminiParts(p: Prompt, t: JsonTape, parts: i32): Text {
  const own = new Text("\n");
  if (parts < 0 || !t.isArray(parts)) return own;
  for (let part = parts + 1, end = t.next(parts); part < end; part = t.next(part)) {
    if (!t.isObject(part)) continue;
    const text = t.get(part, "text");
    const thought = t.get(part, "thought");
    if (text >= 0 && t.isString(text)) {
      if (thought < 0 || !t.isBool(thought) || !t.isTrue(thought)) p.addOwn(t, text, own);
    } else if (t.get(part, "inlineData") >= 0 || t.get(part, "fileData") >= 0) p.images = true;
    else {
      const call = t.get(part, "functionCall");
      const resp = t.get(part, "functionResponse");
      const v = call >= 0 ? t.get(call, "args") : resp >= 0 ? t.get(resp, "response") : -1;
      if (v >= 0 && t.isObject(v)) p.textChars += 16 * <i64>t.length(v);
    }
  }
  return own;
}

// Texts with escapes or non-ASCII characters are decoded as they are read (text.ts), by every rule
// that reads them. Up to this many units per request are decoded once instead, so that a common
// prompt is read at memory speed; memory per request stays bounded whatever the prompt's size.
// A text is decoded when a rule first reads it: the shipped rules read the last user turn only,
// and the rest of the conversation (tool calls' arguments, tool results: JSON full of escapes)
// is then never decoded.
const DECODE_UNITS: i32 = 32768;

/** Decodes t's short raw parts with escapes or non-ASCII bytes, up to `left` units; returns what is left. */
function decodeShortParts(t: Text, left: i32): i32 {
  for (let i = 0; i < t.count; i++) {
    const v = t.part(i);
    const n = t.partLength(i);
    if (v.src === null || !v.rawComplex || n > left) continue;
    v.s = v.s; // the decoded string replaces the raw bytes (text.ts then reads it as UTF-16)
    left -= n;
  }
  return left;
}

/**
 * OpenAI's Responses API: `instructions` (the system prompt) and `input`, a string (one user
 * message) or a list of items: messages (role and content, as in chat), function_call (its
 * arguments are read by the model) and function_call_output (context, not a user turn).
 */
function readResponsesInput(p: Prompt, t: JsonTape, top: StaticArray<i32>): void {
  const input = top[TopKey.Input];
  if (input < 0 || top[TopKey.Messages] >= 0) return;
  p.addPart(t, top[TopKey.Instructions]);
  if (t.isString(input)) {
    p.messages = 1;
    const own = new Text("\n");
    p.addOwn(t, input, own);
    p.userText = own;
    return;
  }
  if (!t.isArray(input)) return;
  for (let m = input + 1, end = t.next(input); m < end; m = t.next(m)) {
    if (!t.isObject(m)) continue;
    const type = t.get(m, "type");
    if (type < 0 || !t.isString(type) || t.is(type, "message")) {
      p.messages++;
      const own = t.is(t.get(m, "role"), "user") ? new Text("\n") : null;
      readContent(p, t, t.get(m, "content"), own);
      if (own !== null && own.length) p.userText = own;
    } else if (t.is(type, "function_call")) {
      p.addPart(t, t.get(m, "arguments"));
    } else if (t.is(type, "function_call_output")) {
      const out = t.get(m, "output");
      if (out >= 0) readContent(p, t, out, null);
    }
  }
}

/**
 * Adds the texts of a message's content to the conversation, and its own text (text parts only,
 * joined by newlines: what a user turn says) to `own` when there is one (a user message's).
 */
function readContent(p: Prompt, t: JsonTape, content: i32, own: Text | null): void {
  if (content < 0) return;
  if (t.isString(content)) {
    p.addOwn(t, content, own);
    return;
  }
  if (!t.isArray(content)) return;
  for (let b = content + 1, end = t.next(content); b < end; b = t.next(b)) {
    if (t.isString(b)) { // tolerated: a bare string in a part list
      p.addOwn(t, b, own);
      continue;
    }
    if (!t.isObject(b)) continue;
    const type = t.get(b, "type");
    if (type < 0 || !t.isString(type)) continue;
    if (t.is(type, "text") || t.is(type, "input_text") || t.is(type, "output_text")) {
      const s = t.get(b, "text");
      if (s >= 0 && t.isString(s)) p.addOwn(t, s, own);
    } else if (t.is(type, "image_url") || t.is(type, "image") || t.is(type, "input_image")) {
      p.images = true;
    } else if (t.is(type, "tool_result")) {
      // Anthropic: a tool's output travels in a user message; it is context, not the user's words.
      const c = t.get(b, "content");
      if (c >= 0) readContent(p, t, c, null);
    } else if (t.is(type, "tool_use")) {
      const input = t.get(b, "input");
      if (input >= 0 && t.isObject(input)) p.textChars += 16 * <i64>t.length(input);
    }
  }
}
