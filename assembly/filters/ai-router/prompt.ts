// What the rules look at in a chat request body, read once from the parsed JSON. Both client
// formats: OpenAI Chat Completions (messages with string or part-list content, system/developer
// messages, tools / functions, response_format) and Anthropic Messages (top-level system, content
// blocks, tool_use / tool_result, tools, output_format) and Gemini's generateContent (systemInstruction,
// contents with parts, functionDeclarations, generationConfig.responseMimeType; the model is in the
// path, which index.ts sets).
import { JsonValue } from "../../lib/json";
import { Text } from "./text";
export { Text };
import { estimateTokens } from "../../lib/tokens";

export class Prompt {
  /** The body was read (false: no body, too large, or not a JSON object). */
  read: bool = false;
  model: string = "";
  /** Text of the last user message that has text (its text parts joined by newlines; tool results are not a user turn). */
  lastUser: Text = new Text("\n");
  /** Every text of the conversation in order, separated by blank lines: system, then each message's text and tool results. */
  conversation: Text = new Text("\n\n");
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

  /** Adds a string value to the conversation; returns its length in units (0 for anything else). */
  addPart(v: JsonValue | null): i32 {
    if (v === null || !v.isString()) return 0;
    const n = v.units;
    this.conversation.add(v, n);
    this.textChars += n;
    return n;
  }
}

/** Reads the prompt features of a parsed request body (an object). Never fails. */
export function readPrompt(req: JsonValue): Prompt {
  const p = new Prompt();
  p.read = true;
  const model = req.get("model");
  if (model !== null && model.isString()) p.model = model.s;

  // Anthropic: top-level system, a string or text blocks.
  const system = req.get("system");
  if (system !== null) {
    if (system.isString()) p.addPart(system);
    else if (system.isArray()) {
      const items = system.items as Array<JsonValue>;
      for (let i = 0; i < items.length; i++) {
        const b = items[i];
        if (b.isObject()) p.addPart(b.get("text"));
      }
    }
  }

  const messages = req.get("messages");
  if (messages !== null && messages.isArray()) {
    const items = messages.items as Array<JsonValue>;
    p.messages = items.length;
    for (let i = 0; i < items.length; i++) {
      const m = items[i];
      if (!m.isObject()) continue;
      const role = m.getString("role");
      const userText = readContent(p, m.get("content"));
      if (role !== null && role == "user" && userText.length) p.lastUser = userText;
      // OpenAI assistant tool calls: their arguments are part of what the model reads.
      const calls = m.get("tool_calls");
      if (calls !== null && calls.isArray()) {
        const cs = calls.items as Array<JsonValue>;
        for (let k = 0; k < cs.length; k++) {
          const f = cs[k].get("function");
          if (f !== null && f.isObject()) p.addPart(f.get("arguments"));
        }
      }
    }
  }

  readResponsesInput(p, req);

  const tools = req.get("tools");
  if (tools !== null && tools.isArray() && tools.length > 0) p.tools = true;
  const functions = req.get("functions");
  if (functions !== null && functions.isArray() && functions.length > 0) p.tools = true;

  // JSON mode: OpenAI response_format json_object / json_schema; Anthropic structured outputs.
  const rf = req.get("response_format");
  if (rf !== null && rf.isObject()) {
    const t = rf.getString("type");
    if (t !== null && (t == "json_object" || t == "json_schema")) p.jsonMode = true;
  }
  // The Responses API's text.format.
  const text = req.get("text");
  const tf = text !== null && text.isObject() ? text.get("format") : null;
  if (tf !== null && tf.isObject()) {
    const t = tf.getString("type");
    if (t !== null && (t == "json_schema" || t == "json_object")) p.jsonMode = true;
  }
  const outFmt = req.get("output_format");
  if (outFmt !== null && outFmt.isObject()) {
    const t = outFmt.getString("type");
    if (t !== null && (t == "json_schema" || t == "json_object")) p.jsonMode = true;
  }
  readGemini(p, req);
  decodeShortParts(p.conversation);
  return p;
}

/** Gemini's systemInstruction and contents: the same features from its parts. */
function readGemini(p: Prompt, req: JsonValue): void {
  const sys = req.get("systemInstruction");
  if (sys !== null && sys.isObject()) readGeminiParts(p, sys.get("parts"));
  const contents = req.get("contents");
  if (contents !== null && contents.isArray()) {
    const items = contents.items as Array<JsonValue>;
    p.messages = items.length;
    for (let i = 0; i < items.length; i++) {
      const c = items[i];
      if (!c.isObject()) continue;
      const own = readGeminiParts(p, c.get("parts"));
      const role = c.getString("role");
      if ((role === null || role == "user") && own.length) p.lastUser = own;
    }
  }
  const tools = req.get("tools");
  if (tools !== null && tools.isArray() && tools.length > 0 && req.get("messages") === null) p.tools = true;
  const gc = req.get("generationConfig");
  if (gc !== null && gc.isObject() && gc.getString("responseMimeType") == "application/json") p.jsonMode = true;
}

/** A Gemini turn's parts: text (not earlier thoughts) is what it says; calls and results are context. */
function readGeminiParts(p: Prompt, parts: JsonValue | null): Text {
  const own = new Text("\n");
  if (parts === null || !parts.isArray()) return own;
  const items = parts.items as Array<JsonValue>;
  for (let i = 0; i < items.length; i++) {
    const part = items[i];
    if (!part.isObject()) continue;
    const text = part.get("text");
    const thought = part.get("thought");
    if (text !== null && text.isString()) {
      if (thought === null || !thought.isBool() || !thought.b) own.add(text, p.addPart(text));
    } else if (part.get("inlineData") !== null || part.get("fileData") !== null) p.images = true;
    else {
      const call = part.get("functionCall");
      const resp = part.get("functionResponse");
      const v = call !== null ? call.get("args") : resp !== null ? resp.get("response") : null;
      if (v !== null && v.isObject()) p.textChars += 16 * <i64>v.length;
    }
  }
  return own;
}

// Texts with escapes or non-ASCII characters are decoded as they are read (text.ts), by every rule
// that reads them. Up to this many units per request are decoded once instead, so that a common
// prompt is read at memory speed; memory per request stays bounded whatever the prompt's size.
const DECODE_UNITS: i32 = 32768;

function decodeShortParts(t: Text): void {
  let left = DECODE_UNITS;
  for (let i = 0; i < t.parts.length; i++) {
    const v = t.parts[i];
    const n = t.lengths[i];
    if (v.src === null || !v.rawComplex || n > left) continue;
    v.s = v.s; // the decoded string replaces the raw bytes (text.ts then reads it as UTF-16)
    left -= n;
  }
}

/**
 * OpenAI's Responses API: `instructions` (the system prompt) and `input`, a string (one user
 * message) or a list of items: messages (role and content, as in chat), function_call (its
 * arguments are read by the model) and function_call_output (context, not a user turn).
 */
function readResponsesInput(p: Prompt, req: JsonValue): void {
  const input = req.get("input");
  if (input === null || req.get("messages") !== null) return;
  p.addPart(req.get("instructions"));
  if (input.isString()) {
    p.messages = 1;
    const own = new Text("\n");
    own.add(input, p.addPart(input));
    p.lastUser = own;
    return;
  }
  if (!input.isArray()) return;
  const items = input.items as Array<JsonValue>;
  for (let i = 0; i < items.length; i++) {
    const m = items[i];
    if (!m.isObject()) continue;
    const type = m.getString("type");
    if (type === null || type == "message") {
      p.messages++;
      const userText = readContent(p, m.get("content"));
      if (m.getString("role") == "user" && userText.length) p.lastUser = userText;
    } else if (type == "function_call") {
      p.addPart(m.get("arguments"));
    } else if (type == "function_call_output") {
      const out = m.get("output");
      if (out !== null) readContent(p, out);
    }
  }
}

/**
 * Adds the texts of a message's content to the conversation; returns its own text (text parts
 * only, joined by newlines), which is what a user turn says.
 */
function readContent(p: Prompt, content: JsonValue | null): Text {
  const own = new Text("\n");
  if (content === null) return own;
  if (content.isString()) {
    own.add(content, p.addPart(content));
    return own;
  }
  if (!content.isArray()) return own;
  const blocks = content.items as Array<JsonValue>;
  for (let i = 0; i < blocks.length; i++) {
    const b = blocks[i];
    if (b.isString()) { // tolerated: a bare string in a part list
      own.add(b, p.addPart(b));
      continue;
    }
    if (!b.isObject()) continue;
    const type = b.getString("type");
    if (type === null) continue;
    const t = type as string;
    if (t == "text" || t == "input_text" || t == "output_text") {
      const s = b.get("text");
      if (s !== null && s.isString()) own.add(s, p.addPart(s));
    } else if (t == "image_url" || t == "image" || t == "input_image") {
      p.images = true;
    } else if (t == "tool_result") {
      // Anthropic: a tool's output travels in a user message; it is context, not the user's words.
      const c = b.get("content");
      if (c !== null) readContent(p, c);
    } else if (t == "tool_use") {
      const input = b.get("input");
      if (input !== null && input.isObject()) p.textChars += 16 * <i64>input.length;
    }
  }
  return own;
}
