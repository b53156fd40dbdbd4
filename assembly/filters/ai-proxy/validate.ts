// What ai-proxy checks in a client's request before it routes, translates or accounts it. Only
// what the gateway itself reads is checked: the model and stream switch it routes and frames by,
// the messages it translates (their roles and the shape of their content), and the numbers it
// accounts by or that multiply what a provider generates (max_tokens, n). Everything else in the
// body is the provider's to judge and goes on untouched.
//
// It runs on the tree parseJson already built (no second parse); invalid UTF-8 in a string and a
// key given twice in one object are seen by the reader itself (jsonSawBadUtf8,
// jsonSawDuplicateKey) and are refused here:
// - invalid UTF-8: the reader would have to replace the bad bytes (U+FFFD) to write valid JSON on,
//   so the provider would get another text than the client sent; OpenAI's and Anthropic's APIs
//   refuse such bodies too.
// - a duplicate key, anywhere in the body: RFC 8259 leaves its meaning open; the reader keeps the
//   last value, a provider's reader may keep the first. A duplicate `model` or `max_tokens` would
//   then be routed and accounted as one request and served as another.
import { JsonValue, jsonSawBadUtf8, jsonSawDuplicateKey } from "../../lib/json";
import { ClientError } from "../../providers/types";
import { RequestLimits } from "./config";

/** application/json, or a structured JSON type (application/<x>+json), parameters aside. */
export function isJsonMediaType(contentType: string): bool {
  const semi = contentType.indexOf(";");
  const t = (semi >= 0 ? contentType.substring(0, semi) : contentType).trim().toLowerCase();
  return t == "application/json" || (t.startsWith("application/") && t.endsWith("+json"));
}

function bad(message: string, code: string, param: string): ClientError {
  const e = ClientError.of(400, message, "invalid_request_error", code);
  e.param = param;
  return e;
}

// OpenAI's chat roles (developer: o-series system prompts; function: the legacy tool role).
const OPENAI_ROLES: Array<string> = ["system", "developer", "user", "assistant", "tool", "function"];


function messageAt(i: i32): string {
  return "messages[" + i.toString() + "]";
}

// Roles and block types arrive as the reader's static strings (json.ts decodeKnown), so these
// comparisons are mostly pointer checks; a list lookup would compare against every entry.
function isOpenAIRole(r: string): bool {
  return r == "user" || r == "assistant" || r == "system" || r == "tool" || r == "developer" || r == "function";
}

// Content block types that only Anthropic's Messages API has: such a body was meant for /v1/messages.
function isAnthropicBlock(t: string): bool {
  return t == "tool_use" || t == "tool_result" || t == "image" || t == "document" || t == "thinking" || t == "redacted_thinking";
}

/** A token count the client may ask for: an integer from 1 to the limit. */
function tokenCount(v: JsonValue | null, name: string, max: i64, required: bool): ClientError | null {
  if (v === null || v.isNull()) {
    // (Anthropic's own wording for its required max_tokens, which Anthropic clients know.)
    return required ? bad(name + ": Field required", "missing_required_parameter", name) : null;
  }
  if (!v.isInteger() || v.n < 1 || v.n > <f64>max) {
    return bad("'" + name + "' must be a positive integer, at most " + max.toString() + ".", "invalid_value", name);
  }
  return null;
}

/** A message's content: a string, or a list of typed parts (blocks); absent/null where allowed. */
function contentError(c: JsonValue | null, index: i32, anthropic: bool): ClientError | null {
  if (c !== null && c.isString()) return null;
  // (Paths are only built for an error: a valid request allocates nothing here, also for the
  // null content of an assistant turn with tool calls and for lists of parts.)
  if (c === null || c.isNull()) {
    // OpenAI: an assistant message with tool_calls has no content. Anthropic: content is required.
    if (!anthropic) return null;
    const at = messageAt(index);
    return bad("'" + at + ".content' is required.", "missing_required_parameter", at + ".content");
  }
  if (!c.isArray()) {
    const at = messageAt(index);
    return bad("'" + at + ".content' must be a string or a list of content parts.", "invalid_type", at + ".content");
  }
  for (let i = 0, n = c.length; i < n; i++) {
    const part = c.at(i);
    const type = part.isObject() ? part.getString("type") : null;
    if (type === null) {
      const pat = messageAt(index) + ".content[" + i.toString() + "]";
      return bad("'" + pat + "' must be an object with a string 'type'.", "invalid_type", pat);
    }
    if (!anthropic && isAnthropicBlock(type as string)) {
      const pat = messageAt(index) + ".content[" + i.toString() + "]";
      return bad("'" + pat + "' is an Anthropic '" + (type as string) + "' block; Anthropic Messages requests go to /v1/messages.", "invalid_value", pat + ".type");
    }
  }
  return null;
}

/**
 * The first problem with a client's request, in the client's API (anthropic: /v1/messages), or
 * null. `chat`: a chat request (else embeddings, whose input is checked where it is read).
 * `counting`: a token count (/v1/messages/count_tokens), which takes no max_tokens.
 */
export function validateRequest(req: JsonValue, chat: bool, anthropic: bool, limits: RequestLimits, counting: bool = false): ClientError | null {
  if (jsonSawBadUtf8) return bad("The request body is not valid UTF-8.", "invalid_encoding", "");
  if (jsonSawDuplicateKey) return bad("The request body names a member twice in one object; send each member once.", "duplicate_key", "");
  if (!req.isObject()) return bad("The request body must be a JSON object.", "invalid_json", "");
  const model = req.get("model");
  if (model !== null && !model.isString()) return bad("'model' must be a string.", "invalid_type", "model");
  const stream = req.get("stream");
  if (stream !== null && !stream.isBool() && !stream.isNull()) return bad("'stream' must be true or false.", "invalid_type", "stream");
  if (!chat) return null;

  const messages = req.get("messages");
  if (messages === null || !messages.isArray() || messages.length == 0) {
    return bad("'messages' must be a non-empty list.", "invalid_value", "messages");
  }
  const count = messages.length;
  if (count > limits.maxMessages) {
    return bad("'messages' has " + count.toString() + " messages; the gateway takes at most " + limits.maxMessages.toString() + ".", "too_many_messages", "messages");
  }
  for (let i = 0; i < count; i++) {
    const m = messages.at(i);
    if (!m.isObject()) return bad("'" + messageAt(i) + "' must be an object.", "invalid_type", messageAt(i));
    const role = m.getString("role");
    const known = role !== null && (anthropic ? role == "user" || role == "assistant" : isOpenAIRole(role as string));
    if (!known) {
      const allowed = anthropic ? "'user' or 'assistant' (the system prompt is the top-level 'system')" : "one of " + OPENAI_ROLES.join(", ");
      return bad("'" + messageAt(i) + ".role' must be " + allowed + ".", "invalid_value", messageAt(i) + ".role");
    }
    const ce = contentError(m.get("content"), i, anthropic);
    if (ce !== null) return ce;
  }

  if (anthropic) {
    const te: ClientError | null = counting ? null : tokenCount(req.get("max_tokens"), "max_tokens", limits.maxTokens, true);
    if (te !== null) return te;
    const system = req.get("system");
    if (system !== null && !system.isNull() && !system.isString() && !system.isArray()) {
      return bad("'system' must be a string or a list of text blocks.", "invalid_type", "system");
    }
    return null;
  }

  // OpenAI's format has no top-level system prompt: the body was meant for /v1/messages.
  if (req.get("system") !== null) {
    return bad("'system' is not a chat completions parameter (system prompts are messages with role 'system'); Anthropic Messages requests go to /v1/messages.", "unknown_parameter", "system");
  }
  let te = tokenCount(req.get("max_tokens"), "max_tokens", limits.maxTokens, false);
  if (te === null) te = tokenCount(req.get("max_completion_tokens"), "max_completion_tokens", limits.maxTokens, false);
  if (te !== null) return te;
  const n = req.get("n");
  if (n !== null && !n.isNull() && (!n.isInteger() || n.n < 1 || n.n > <f64>limits.maxN)) {
    return bad("'n' must be a positive integer, at most " + limits.maxN.toString() + ".", "invalid_value", "n");
  }
  const so = req.get("stream_options");
  if (so !== null && !so.isNull()) {
    const iu = so.isObject() ? so.get("include_usage") : null;
    if (!so.isObject() || (iu !== null && !iu.isBool() && !iu.isNull())) {
      return bad("'stream_options' must be an object whose 'include_usage' is true or false.", "invalid_type", "stream_options");
    }
  }
  return null;
}
