// Token estimates for when a provider reports no usage (a client that hung up mid-stream, a
// server that never sends usage) and for admission before any provider has answered. Deliberately
// simple and cheap: about four bytes of text per token for GPT/Claude/Gemini tokenizers (four
// characters of English; a CJK character is three UTF-8 bytes and about one token); never zero
// for non-empty text, so a cut stream is never free.
import { JsonValue } from "./json";

export function estimateTokens(chars: i64): i64 {
  if (chars <= 0) return 0;
  const t = (chars + 3) / 4;
  return t < 1 ? 1 : t;
}

// What the model reads of a request: the text in these top-level members (OpenAI's and Anthropic's
// chat formats, embeddings' input, and Gemini's contents and systemInstruction, and its embedding
// requests' content and requests). Everything else (model, stream, stream_options,
// max_tokens, temperature, ...) is settings, not prompt, and the JSON syntax around the text is not
// read by the model at all: the same prompt gets the same estimate however it is dressed.
// "messages" comes first and "contents" last (ai-ratelimit's body scan counts the messages, or
// Gemini's turns, by those indices). "instructions" is the Responses API's system prompt (its
// "input" holds the conversation).
export const PROMPT_MEMBERS: Array<string> = ["messages", "system", "tools", "functions", "input", "instructions", "systemInstruction", "content", "requests", "contents"];

// Members inside those whose strings are structure or binary data, not text the model reads as
// text: roles, part/block types, ids, cache hints, image and audio payloads (base64 or URLs),
// thinking signatures (Gemini's inlineData, fileData and thoughtSignature among them), the
// Responses API's call ids and an earlier turn's encrypted reasoning.
export const NOT_TEXT: Array<string> = [
  "role", "type", "id", "tool_call_id", "tool_use_id", "cache_control", "image_url", "source",
  "signature", "media_type", "detail", "input_audio", "file", "inlineData", "fileData", "thoughtSignature",
  "model", "taskType", "call_id", "encrypted_content",
];

/**
 * NOT_TEXT.includes(k), by length first: textBytes asks it for every member of every message and
 * part, and most keys ("content", "text", "name", "arguments") match no entry's length.
 */
export function isNotText(k: string): bool {
  switch (k.length) {
    case 2: return k == "id";
    case 4: return k == "role" || k == "type" || k == "file";
    case 5: return k == "model";
    case 6: return k == "source" || k == "detail";
    case 7: return k == "call_id";
    case 8: return k == "fileData" || k == "taskType";
    case 9: return k == "image_url" || k == "signature";
    case 10: return k == "media_type" || k == "inlineData";
    case 11: return k == "tool_use_id" || k == "input_audio";
    case 12: return k == "tool_call_id";
    case 13: return k == "cache_control";
    case 16: return k == "thoughtSignature";
    case 17: return k == "encrypted_content";
  }
  return false;
}
// The two must name the same members (checked once per VM; a mismatch fails every test at load).
for (let i = 0; i < NOT_TEXT.length; i++) assert(isNotText(NOT_TEXT[i]), "tokens.ts: isNotText misses " + NOT_TEXT[i]);

// Tokens a chat format adds around each message (role markers, separators) and once to prime the
// answer: OpenAI documents 3 and 3 for its chat models; the other families are close. Anthropic's
// top-level system prompt is not a message (its text counts, its wrapping is not added).
export const TOKENS_PER_MESSAGE: i64 = 3;
export const TOKENS_PER_REQUEST: i64 = 3;

/**
 * Prompt tokens from the counts a reader made: text bytes, chat messages (none: embeddings) and
 * token ids (embeddings' input may be token ids instead of text: each one is exactly one token).
 */
export function promptTokens(textBytes: i64, messages: i64, tokenIds: i64 = 0): i64 {
  const t = estimateTokens(textBytes) + tokenIds;
  return messages > 0 ? t + TOKENS_PER_MESSAGE * messages + TOKENS_PER_REQUEST : t;
}

/**
 * Token ids in embeddings' input: an array of numbers is one input of token ids, an array of such
 * arrays is several. Counted without decoding an item (a number-only array is kept as its bytes and
 * its item count). Strings in input are text, counted by textBytes.
 */
function tokenIds(input: JsonValue, depth: i32 = 0): i64 {
  if (input.isNumberSpan()) return <i64>input.length;
  if (!input.isArray()) return input.isNumber() && depth > 0 ? 1 : 0;
  if (depth > 1) return 0;
  let n: i64 = 0;
  for (let i = 0, len = input.length; i < len; i++) n += tokenIds(input.at(i), depth + 1);
  return n;
}

/** Bytes of every string under v that the model reads (raw UTF-8 as the client wrote it). */
function textBytes(v: JsonValue): i64 {
  if (v.isString()) return v.src !== null ? <i64>v.rawLen : <i64>String.UTF8.byteLength(v.s);
  let n: i64 = 0;
  if (v.isNumberSpan()) return 0; // numbers only (token ids): no text, and no value made per item
  if (v.isArray()) {
    for (let i = 0, len = v.length; i < len; i++) n += textBytes(v.at(i));
  } else if (v.isObject()) {
    for (let i = 0, len = v.length; i < len; i++) {
      if (!isNotText(v.keyAt(i))) n += textBytes(v.at(i));
    }
  }
  return n;
}

/**
 * Prompt tokens of a parsed chat or embeddings request (either client format), from the text the
 * model reads: system, message contents and text parts, tool calls and their arguments, tool
 * results, tool definitions, embeddings input (text, or token ids: one token each). ai-ratelimit's
 * body scan (filters/ai-ratelimit/body.ts) counts the same without building a tree.
 */
export function estimatePromptTokens(req: JsonValue): i64 {
  let bytes: i64 = 0;
  let messages: i64 = 0;
  let ids: i64 = 0;
  for (let i = 0, len = req.length; i < len; i++) {
    const k = req.keyAt(i);
    if (!PROMPT_MEMBERS.includes(k)) continue;
    const v = req.at(i);
    bytes += textBytes(v);
    if (k == "messages" && v.isArray()) messages += v.length;
    else if (k == "input") ids += tokenIds(v);
  }
  return promptTokens(bytes, messages, ids);
}
