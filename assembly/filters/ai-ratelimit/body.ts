// What admission needs from a JSON request body: the model and the output-token limit. Only the
// top-level members are looked at; nested values are skipped byte by byte without building a
// tree, so a large prompt costs one pass and no allocation. Member names are decoded like the
// strict reader (lib/json.ts) does, and a repeated member counts as ai-proxy sees it (the last one
// wins), so a client cannot show this filter one model and ai-proxy another. Never traps.
import { parseJsonAt, JsonValue } from "../../lib/json";
import { bytesAre } from "../../lib/ascii";

export class RequestFacts {
  /** False when the body is not a JSON object (ai-proxy answers 400; defaults are used here). */
  ok: bool = false;
  model: string | null = null;
  maxTokens: i64 = -1;
  maxCompletionTokens: i64 = -1;
  n: i64 = 1;
}

const MAX_TOKENS_CAP: f64 = 1000000000;

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
  const base = changetype<usize>(buf);
  const sc = new Scanner(base, base + <usize>buf.byteLength);
  sc.ws();
  if (sc.p >= sc.end || load<u8>(sc.p) != 0x7b) return f;
  sc.p++;
  sc.ws();
  if (sc.p < sc.end && load<u8>(sc.p) == 0x7d) {
    f.ok = true;
    return f;
  }
  while (true) {
    sc.ws();
    if (sc.p >= sc.end || load<u8>(sc.p) != 0x22) return f;
    const keyStart = sc.p;
    if (!sc.string()) return f;
    const keyEnd = sc.p;
    let name = "";
    if (!sc.escaped) {
      const ptr = keyStart + 1;
      const len = keyEnd - keyStart - 2;
      if (keyIs(ptr, len, "model")) name = "model";
      else if (keyIs(ptr, len, "max_tokens")) name = "max_tokens";
      else if (keyIs(ptr, len, "max_completion_tokens")) name = "max_completion_tokens";
      else if (keyIs(ptr, len, "n")) name = "n";
    } else {
      const k = parseJsonAt(keyStart, keyEnd - keyStart);
      if (k === null || !k.isString()) return f;
      const s = k.s;
      if (s == "model" || s == "max_tokens" || s == "max_completion_tokens" || s == "n") name = s;
    }
    sc.ws();
    if (sc.p >= sc.end || load<u8>(sc.p) != 0x3a) return f;
    sc.p++;
    sc.ws();
    const valStart = sc.p;
    if (!sc.value()) return f;
    if (name.length) {
      const v = parseJsonAt(valStart, sc.p - valStart);
      if (name == "model") f.model = v !== null && v.isString() ? v.s : null;
      else if (name == "max_tokens") f.maxTokens = count(v);
      else if (name == "max_completion_tokens") f.maxCompletionTokens = count(v);
      else {
        const n = count(v);
        f.n = n < 1 ? 1 : n > 128 ? 128 : n;
      }
    }
    sc.ws();
    if (sc.p >= sc.end) return f;
    const c = load<u8>(sc.p);
    sc.p++;
    if (c == 0x2c) continue;
    if (c == 0x7d) {
      f.ok = true;
      return f;
    }
    return f;
  }
}
