// What admission needs from a JSON request body: the model, the output-token limit and the prompt
// estimate. Only the top-level members are decoded; nested values are walked byte by byte without
// building a tree, so a large prompt costs one pass and no allocation. The prompt estimate counts
// the bytes of the text the model reads (lib/tokens.ts: the same members, the same strings left
// out, as ai-proxy counts them from its parsed request), never the JSON syntax around it. Member names are decoded like the
// strict reader (lib/json.ts) does, and a repeated member counts as ai-proxy sees it (the last one
// wins), so a client cannot show this filter one model and ai-proxy another. Never traps.
import { parseJsonAt, JsonValue } from "../../lib/json";
import { bytesAre } from "../../lib/ascii";
import { PROMPT_MEMBERS, NOT_TEXT, promptTokens } from "../../lib/tokens";

export class RequestFacts {
  /** False when the body is not a JSON object (ai-proxy answers 400; defaults are used here). */
  ok: bool = false;
  model: string | null = null;
  maxTokens: i64 = -1;
  maxCompletionTokens: i64 = -1;
  n: i64 = 1;
  /** Estimated prompt tokens (lib/tokens.ts promptTokens over the text the model reads). */
  promptTokens: i64 = 0;
}

// Deeper than this, a value is skipped without counting its text (the strict reader refuses
// such a body anyway).
const MAX_TEXT_DEPTH: i32 = 64;

const MAX_TOKENS_CAP: f64 = 1000000000;
const INPUT: i32 = PROMPT_MEMBERS.indexOf("input"); // embeddings input: text or token ids
const CONTENTS: i32 = PROMPT_MEMBERS.indexOf("contents"); // Gemini's turns, counted as messages

@inline function isWs(c: u32): bool {
  return c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09;
}

class Scanner {
  p: usize;
  end: usize;
  escaped: bool = false;

  constructor(p: usize, end: usize) {
    this.p = p;
    this.end = end;
  }

  ws(): void {
    let p = this.p;
    while (p < this.end && isWs(load<u8>(p))) p++;
    this.p = p;
  }

  /** At an opening quote: moves past the closing one. False when unterminated. */
  string(): bool {
    let p = this.p + 1;
    this.escaped = false;
    while (p < this.end) {
      const c = load<u8>(p);
      if (c == 0x22) {
        this.p = p + 1;
        return true;
      }
      if (c == 0x5c) {
        this.escaped = true;
        p += 2;
        continue;
      }
      p++;
    }
    return false;
  }

  /** Moves past one value of any kind. False when the input ends first. */
  value(): bool {
    if (this.p >= this.end) return false;
    const c = load<u8>(this.p);
    if (c == 0x22) return this.string();
    if (c == 0x7b || c == 0x5b) {
      let depth: i32 = 0;
      while (this.p < this.end) {
        const d = load<u8>(this.p);
        if (d == 0x22) {
          if (!this.string()) return false;
          continue;
        }
        if (d == 0x7b || d == 0x5b) depth++;
        else if (d == 0x7d || d == 0x5d) {
          depth--;
          if (depth == 0) {
            this.p++;
            return true;
          }
        }
        this.p++;
      }
      return false;
    }
    const start = this.p;
    while (this.p < this.end) {
      const d = load<u8>(this.p);
      if (d == 0x2c || d == 0x7d || d == 0x5d || isWs(d)) break;
      this.p++;
    }
    return this.p > start;
  }

  /**
   * Moves past one value like value(), adding to `text` the raw bytes of every string in it that
   * is not under a NOT_TEXT member. False when the input ends first.
   */
  textValue(depth: i32): bool {
    if (this.p >= this.end) return false;
    const c = load<u8>(this.p);
    if (c == 0x22) {
      const start = this.p;
      if (!this.string()) return false;
      this.text += <i64>(this.p - start - 2);
      return true;
    }
    if (depth >= MAX_TEXT_DEPTH || (c != 0x7b && c != 0x5b)) return this.value();
    const object = c == 0x7b;
    this.p++;
    this.ws();
    if (this.p < this.end && load<u8>(this.p) == (object ? 0x7d : 0x5d)) {
      this.p++;
      return true;
    }
    while (true) {
      this.ws();
      let skip = false;
      if (object) {
        if (this.p >= this.end || load<u8>(this.p) != 0x22) return false;
        const keyStart = this.p;
        if (!this.string()) return false;
        skip = notText(keyStart, this.p, this.escaped);
        this.ws();
        if (this.p >= this.end || load<u8>(this.p) != 0x3a) return false;
        this.p++;
        this.ws();
      }
      if (!(skip ? this.value() : this.textValue(depth + 1))) return false;
      if (depth == 0) this.items++;
      this.ws();
      if (this.p >= this.end) return false;
      const d = load<u8>(this.p);
      this.p++;
      if (d == 0x2c) continue;
      return d == (object ? 0x7d : 0x5d);
    }
  }

  /** Text bytes counted by textValue. */
  text: i64 = 0;
  /** Members or items of the outermost value textValue walked. */
  items: i64 = 0;
}

/** The member name between keyStart and keyEnd (quotes included) is one of NOT_TEXT. */
function notText(keyStart: usize, keyEnd: usize, escaped: bool): bool {
  if (escaped) {
    const k = parseJsonAt(keyStart, keyEnd - keyStart);
    return k !== null && k.isString() && NOT_TEXT.includes(k.s);
  }
  const ptr = keyStart + 1;
  const len = keyEnd - keyStart - 2;
  for (let i = 0; i < NOT_TEXT.length; i++) {
    if (keyIs(ptr, len, unchecked(NOT_TEXT[i]))) return true;
  }
  return false;
}

function keyIs(ptr: usize, len: usize, name: string): bool {
  return len == <usize>name.length && bytesAre(ptr, name);
}

function count(v: JsonValue | null): i64 {
  if (v === null || !v.isNumber() || !isFinite(v.n) || v.n < 0) return -1;
  const n = Math.floor(v.n);
  return n > MAX_TOKENS_CAP ? <i64>MAX_TOKENS_CAP : <i64>n;
}

export function scanRequest(buf: ArrayBuffer): RequestFacts {
  const f = new RequestFacts();
  const text = new PromptText();
  scanMembers(buf, f, text);
  let bytes: i64 = 0;
  for (let i = 0; i < text.bytes.length; i++) bytes += text.bytes[i];
  f.promptTokens = promptTokens(bytes, text.messages, text.tokenIds);
  return f;
}

/**
 * Token ids in embeddings' input, [start, end) being the input's value: an array of numbers is one
 * input of token ids, an array of such arrays is several (lib/tokens.ts counts the same). Counted
 * by the commas, nothing decoded.
 */
function tokenIds(start: usize, end: usize): i64 {
  const sc = new Scanner(start, end);
  if (sc.p >= end || load<u8>(sc.p) != 0x5b) return 0;
  sc.p++;
  sc.ws();
  if (sc.p >= end || load<u8>(sc.p) != 0x5b) return numbers(start, end);
  let n: i64 = 0;
  while (true) {
    sc.ws();
    const item = sc.p;
    if (!sc.value()) return n;
    n += numbers(item, sc.p);
    sc.ws();
    if (sc.p >= end || load<u8>(sc.p) != 0x2c) return n;
    sc.p++;
  }
}

/** Items of [start, end) when it is an array of numbers only (commas + 1), else 0. */
function numbers(start: usize, end: usize): i64 {
  if (end - start < 2 || load<u8>(start) != 0x5b || load<u8>(end - 1) != 0x5d) return 0;
  let commas: i64 = 0;
  let digits = false;
  for (let p = start + 1; p < end - 1; p++) {
    const c = load<u8>(p);
    if (c == 0x2c) commas++;
    else if ((c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x2b || c == 0x2e || c == 0x65 || c == 0x45) digits = true;
    else if (!isWs(c)) return 0;
  }
  return digits ? commas + 1 : 0;
}

/** Text bytes per PROMPT_MEMBERS entry (a repeated member: the last one counts, as ai-proxy reads it). */
class PromptText {
  bytes: StaticArray<i64> = new StaticArray<i64>(PROMPT_MEMBERS.length);
  messages: i64 = 0;
  tokenIds: i64 = 0; // in "input" (embeddings)
}

/** Reads the top-level members: the facts into f, the prompt's text counts into text. */
function scanMembers(buf: ArrayBuffer, f: RequestFacts, text: PromptText): void {
  const base = changetype<usize>(buf);
  const sc = new Scanner(base, base + <usize>buf.byteLength);
  sc.ws();
  if (sc.p >= sc.end || load<u8>(sc.p) != 0x7b) return;
  sc.p++;
  sc.ws();
  if (sc.p < sc.end && load<u8>(sc.p) == 0x7d) {
    f.ok = true;
    return;
  }
  while (true) {
    sc.ws();
    if (sc.p >= sc.end || load<u8>(sc.p) != 0x22) return;
    const keyStart = sc.p;
    if (!sc.string()) return;
    const keyEnd = sc.p;
    let name = "";
    let member = -1; // index in PROMPT_MEMBERS
    if (!sc.escaped) {
      const ptr = keyStart + 1;
      const len = keyEnd - keyStart - 2;
      if (keyIs(ptr, len, "model")) name = "model";
      else if (keyIs(ptr, len, "generationConfig")) name = "generationConfig";
      else if (keyIs(ptr, len, "max_tokens")) name = "max_tokens";
      else if (keyIs(ptr, len, "max_completion_tokens")) name = "max_completion_tokens";
      // The Responses API's output limit: the same meaning as max_completion_tokens.
      else if (keyIs(ptr, len, "max_output_tokens")) name = "max_completion_tokens";
      else if (keyIs(ptr, len, "n")) name = "n";
      else {
        for (let i = 0; i < PROMPT_MEMBERS.length; i++) {
          if (keyIs(ptr, len, unchecked(PROMPT_MEMBERS[i]))) member = i;
        }
      }
    } else {
      const k = parseJsonAt(keyStart, keyEnd - keyStart);
      if (k === null || !k.isString()) return;
      const s = k.s;
      if (s == "model" || s == "max_tokens" || s == "max_completion_tokens" || s == "n" || s == "generationConfig") name = s;
      else if (s == "max_output_tokens") name = "max_completion_tokens";
      else member = PROMPT_MEMBERS.indexOf(s);
    }
    sc.ws();
    if (sc.p >= sc.end || load<u8>(sc.p) != 0x3a) return;
    sc.p++;
    sc.ws();
    const valStart = sc.p;
    if (member >= 0) {
      sc.text = 0;
      sc.items = 0;
      if (!sc.textValue(0)) return;
      text.bytes[member] = sc.text;
      if (member == 0 || member == CONTENTS) text.messages = load<u8>(valStart) == 0x5b ? sc.items : 0; // "messages", "contents"
      else if (member == INPUT) text.tokenIds = tokenIds(valStart, sc.p);
    } else if (!sc.value()) return;
    if (name.length) {
      const v = parseJsonAt(valStart, sc.p - valStart);
      if (name == "model") f.model = v !== null && v.isString() ? v.s : null;
      else if (name == "max_tokens") f.maxTokens = count(v);
      else if (name == "max_completion_tokens") f.maxCompletionTokens = count(v);
      else if (name == "generationConfig") {
        // Gemini's limits sit one level down: maxOutputTokens and candidateCount.
        if (v !== null && v.isObject()) {
          const mo = v.get("maxOutputTokens");
          if (mo !== null) f.maxTokens = count(mo);
          const cc = v.get("candidateCount");
          if (cc !== null) {
            const n = count(cc);
            f.n = n < 1 ? 1 : n > 128 ? 128 : n;
          }
        }
      } else {
        const n = count(v);
        f.n = n < 1 ? 1 : n > 128 ? 128 : n;
      }
    }
    sc.ws();
    if (sc.p >= sc.end) return;
    const c = load<u8>(sc.p);
    sc.p++;
    if (c == 0x2c) continue;
    if (c == 0x7d) {
      f.ok = true;
      return;
    }
    return;
  }
}
