// What the rules look at in a chat request body, read once from the parsed JSON. Both client
// formats: OpenAI Chat Completions (messages with string or part-list content, system/developer
// messages, tools / functions, response_format) and Anthropic Messages (top-level system, content
// blocks, tool_use / tool_result, tools, output_format).
import { JsonValue } from "../../lib/json";
import { estimateTokens } from "../../lib/tokens";

export class Prompt {
  /** The body was read (false: no body, too large, or not a JSON object). */
  read: bool = false;
  model: string = "";
  /** Text of the last user message that has text (tool results are not a user turn). */
  lastUser: string = "";
  /** Every text of the conversation in order: system, then each message's text and tool results. */
  parts: Array<string> = [];
  /** Length of the messages list (Anthropic's top-level system is not a message). */
  messages: i32 = 0;
  textChars: i64 = 0;
  tools: bool = false;
  images: bool = false;
  jsonMode: bool = false;
  private joined: string | null = null;

  /** Estimated prompt tokens: about four characters a token over every text (images not counted). */
  get tokens(): i64 {
    return estimateTokens(this.textChars);
  }

  /** The whole conversation as one text, parts separated by blank lines (built on first use). */
  get conversation(): string {
    let j = this.joined;
    if (j === null) {
      j = joinLinear(this.parts, "\n\n");
      this.joined = j;
    }
    return j as string;
  }

  addPart(s: string): void {
    if (s.length == 0) return;
    this.parts.push(s);
    this.textChars += s.length;
  }
}

/**
 * parts joined by sep in one allocation. (Array<string>#join concatenates one part at a time,
 * which is quadratic in the length of a long conversation.)
 */
export function joinLinear(parts: Array<string>, sep: string): string {
  const n = parts.length;
  if (n == 0) return "";
  if (n == 1) return parts[0];
  let units = sep.length * (n - 1);
  for (let i = 0; i < n; i++) units += parts[i].length;
  const out = changetype<string>(__new(<usize>units << 1, idof<string>()));
  let at = changetype<usize>(out);
  const sepBytes = <usize>sep.length << 1;
  for (let i = 0; i < n; i++) {
    if (i > 0 && sepBytes) {
      memory.copy(at, changetype<usize>(sep), sepBytes);
      at += sepBytes;
    }
    const part = parts[i];
    const bytes = <usize>part.length << 1;
    memory.copy(at, changetype<usize>(part), bytes);
    at += bytes;
  }
  return out;
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
    if (system.isString()) p.addPart(system.s);
    else if (system.isArray()) {
      const items = system.items as Array<JsonValue>;
      for (let i = 0; i < items.length; i++) {
        const b = items[i];
        if (b.isObject()) {
          const t = b.getString("text");
          if (t !== null) p.addPart(t);
        }
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
          if (f !== null && f.isObject()) {
            const a = f.getString("arguments");
            if (a !== null) p.addPart(a);
          }
        }
      }
    }
  }

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
  const outFmt = req.get("output_format");
  if (outFmt !== null && outFmt.isObject()) {
    const t = outFmt.getString("type");
    if (t !== null && (t == "json_schema" || t == "json_object")) p.jsonMode = true;
  }
  return p;
}

/**
 * Adds the texts of a message's content to the conversation; returns its own text (text parts
 * only, joined by newlines), which is what a user turn says.
 */
function readContent(p: Prompt, content: JsonValue | null): string {
  if (content === null) return "";
  if (content.isString()) {
    p.addPart(content.s);
    return content.s;
  }
  if (!content.isArray()) return "";
  const blocks = content.items as Array<JsonValue>;
  const own = new Array<string>();
  for (let i = 0; i < blocks.length; i++) {
    const b = blocks[i];
    if (b.isString()) { // tolerated: a bare string in a part list
      p.addPart(b.s);
      own.push(b.s);
      continue;
    }
    if (!b.isObject()) continue;
    const type = b.getString("type");
    if (type === null) continue;
    const t = type as string;
    if (t == "text" || t == "input_text") {
      const s = b.getString("text");
      if (s !== null) {
        p.addPart(s);
        own.push(s);
      }
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
  return joinLinear(own, "\n");
}
