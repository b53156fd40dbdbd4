// What the semantic cache compares: the prompt's text (the last user message, or the whole
// conversation), and its group, the rest of the request, which must be the same for a cached answer
// to serve: the system prompt, the earlier turns (when only the last is compared), the tools and
// the sampling parameters, with the client API, scope, pool and model.
import { ByteBuilder, JsonValue, JsonKind } from "../../lib/json";
import { sha256 } from "../../lib/sha256";
import { CLIENT_GEMINI, CLIENT_RESPONSES } from "../ai-proxy/client";
import { canonical } from "./key";
import { INPUT_CONVERSATION } from "./semantic-config";

export class Prompt {
  /** The text to embed, escaped as the content of a JSON string (as the client's JSON had it). */
  text: ByteBuilder = new ByteBuilder(0);
  /** First 8 bytes of the group's SHA-256. */
  group: u64 = 0;
}

/** The member holding the conversation in each client API. */
function conversationField(client: i32): string {
  if (client == CLIENT_RESPONSES) return "input";
  if (client == CLIENT_GEMINI) return "contents";
  return "messages";
}

/** The text parts of one message (any API's shape), joined by newlines, escaped for a JSON string. */
function messageText(client: i32, m: JsonValue, out: ByteBuilder): void {
  if (m.kind == JsonKind.String) {
    out.strContent(m);
    return;
  }
  const content = client == CLIENT_GEMINI ? m.get("parts") : m.get("content");
  if (content === null) return;
  const c = content as JsonValue;
  if (c.kind == JsonKind.String) {
    out.strContent(c);
    return;
  }
  if (!c.isArray()) return;
  let n = 0;
  for (let i = 0; i < c.length; i++) {
    const t = c.at(i).get("text");
    if (t === null || !t.isString()) continue;
    if (n++) out.raw("\\n");
    out.strContent(t as JsonValue);
  }
}

function roleOf(client: i32, m: JsonValue): string {
  if (!m.isObject()) return "user";
  const r = m.getString("role");
  // Gemini's contents may leave the role out for the user's turn.
  if (r === null) return client == CLIENT_GEMINI ? "user" : "";
  return r as string;
}

/**
 * The prompt to embed and its group; null when the request has no user text to compare (the last
 * turn is a tool result or the assistant's), or more than maxChars of it.
 */
export function readPrompt(client: i32, scope: string, pool: string, model: string, body: JsonValue, input: i32, maxChars: i32): Prompt | null {
  const field = conversationField(client);
  const conv = body.get(field);
  if (conv === null) return null;
  const c = conv as JsonValue;
  const text = new ByteBuilder(256);
  // Every member but the conversation goes into the group; so do the turns before the last one
  // when only the last is compared.
  let keep = 0;
  if (c.kind == JsonKind.String) {
    text.strContent(c);
  } else if (c.isArray() && c.length > 0) {
    if (input == INPUT_CONVERSATION) {
      for (let i = 0; i < c.length; i++) {
        const m = c.at(i);
        if (i) text.raw("\\n");
        text.strContent(JsonValue.str(roleOf(client, m))).raw(": ");
        messageText(client, m, text);
      }
    } else {
      const last = c.at(c.length - 1);
      if (roleOf(client, last) != "user") return null;
      messageText(client, last, text);
      keep = c.length - 1;
    }
  } else return null;
  // (Bytes of escaped text: at least one a character.)
  if (text.len == 0 || text.len > maxChars) return null;
  const p = new Prompt();
  p.text = text;
  const g = new ByteBuilder(512);
  g.raw("sluice-cache-group-1\n").int(client).byte(0x0a).str(scope).byte(0x0a).str(pool).byte(0x0a).str(model).byte(0x0a);
  g.int(input).byte(0x0a);
  canonical(body, g, true, field);
  g.byte(0x0a);
  for (let i = 0; i < keep; i++) {
    canonical(c.at(i), g, false, "");
    g.byte(0x0a);
  }
  const d = sha256(changetype<usize>(g.buf), <usize>g.len);
  p.group = load<u64>(changetype<usize>(d));
  return p;
}
