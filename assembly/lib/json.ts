// A strict JSON reader (RFC 8259) over UTF-8 bytes, and a byte builder that writes JSON.
//
// Why not json-as: it aborts (a trap, which fails the VM in Envoy) on malformed input and
// silently accepts wrong types and unknown fields. Filters parse untrusted request bodies and
// operator configuration; both must fail with a message, never a trap. This reader never
// throws: `parseJson` returns null and leaves the reason in `jsonError`.

export const enum JsonKind {
  Null = 0,
  Bool = 1,
  Number = 2,
  String = 3,
  Array = 4,
  Object = 5,
}

const MAX_DEPTH: i32 = 64;

export class JsonValue {
  kind: JsonKind = JsonKind.Null;
  b: bool = false;
  n: f64 = 0;
  // String value, or the number exactly as written (so it round-trips unchanged).
  s: string = "";
  items: Array<JsonValue> | null = null; // array elements
  keys: Array<string> | null = null; // object keys, in document order
  vals: Array<JsonValue> | null = null; // object values, parallel to keys

  isNull(): bool { return this.kind == JsonKind.Null; }
  isBool(): bool { return this.kind == JsonKind.Bool; }
  isNumber(): bool { return this.kind == JsonKind.Number; }
  isString(): bool { return this.kind == JsonKind.String; }
  isArray(): bool { return this.kind == JsonKind.Array; }
  isObject(): bool { return this.kind == JsonKind.Object; }

  /** Member of an object by key, or null (also when this is not an object). */
  get(key: string): JsonValue | null {
    const keys = this.keys;
    if (keys === null) return null;
    for (let i = 0, n = keys.length; i < n; i++) {
      if (unchecked(keys[i]) == key) return unchecked((this.vals as Array<JsonValue>)[i]);
    }
    return null;
  }

  /** Number of array items or object members. */
  get length(): i32 {
    if (this.items !== null) return (this.items as Array<JsonValue>).length;
    if (this.keys !== null) return (this.keys as Array<string>).length;
    return 0;
  }

  /** True when the number is a whole number that fits in i64 without loss. */
  isInteger(): bool {
    return this.kind == JsonKind.Number && Math.floor(this.n) == this.n && Math.abs(this.n) <= 9007199254740991.0;
  }

  static str(s: string): JsonValue {
    const v = new JsonValue();
    v.kind = JsonKind.String;
    v.s = s;
    return v;
  }

  static int(n: i64): JsonValue {
    const v = new JsonValue();
    v.kind = JsonKind.Number;
    v.n = <f64>n;
    v.s = n.toString();
    return v;
  }

  static boolean(b: bool): JsonValue {
    const v = new JsonValue();
    v.kind = JsonKind.Bool;
    v.b = b;
    return v;
  }

  static nul(): JsonValue {
    return new JsonValue();
  }

  static array(): JsonValue {
    const v = new JsonValue();
    v.kind = JsonKind.Array;
    v.items = new Array<JsonValue>();
    return v;
  }

  static object(): JsonValue {
    const v = new JsonValue();
    v.kind = JsonKind.Object;
    v.keys = new Array<string>();
    v.vals = new Array<JsonValue>();
    return v;
  }

  /** Sets an object member (replacing an existing one). Returns this, for chaining. */
  set(key: string, val: JsonValue): JsonValue {
    const keys = this.keys as Array<string>;
    const vals = this.vals as Array<JsonValue>;
    for (let i = 0, n = keys.length; i < n; i++) {
      if (unchecked(keys[i]) == key) {
        vals[i] = val;
        return this;
      }
    }
    keys.push(key);
    vals.push(val);
    return this;
  }

  /** Appends an array item. Returns this. */
  push(val: JsonValue): JsonValue {
    (this.items as Array<JsonValue>).push(val);
    return this;
  }

  /** The string value of member `key` if it is a string, else null. */
  getString(key: string): string | null {
    const v = this.get(key);
    if (v === null || v.kind != JsonKind.String) return null;
    return v.s;
  }
}

// Reused by Parser.unescape (filters run one callback at a time per VM).
let scratch = new ArrayBuffer(1024);

/** Why the last parseJson returned null (empty when it succeeded). */
export let jsonError: string = "";

class Parser {
  p: usize;
  end: usize;
  start: usize;
  err: string = "";

  constructor(ptr: usize, len: usize) {
    this.p = ptr;
    this.start = ptr;
    this.end = ptr + len;
  }

  fail(msg: string): JsonValue | null {
    if (this.err.length == 0) this.err = msg + " at byte " + (this.p - this.start).toString();
    return null;
  }

  @inline ws(): void {
    let p = this.p;
    const end = this.end;
    while (p < end) {
      const c = load<u8>(p);
      if (c != 0x20 && c != 0x0a && c != 0x0d && c != 0x09) break;
      p++;
    }
    this.p = p;
  }

  value(depth: i32): JsonValue | null {
    if (depth > MAX_DEPTH) return this.fail("nesting deeper than " + MAX_DEPTH.toString());
    this.ws();
    if (this.p >= this.end) return this.fail("unexpected end of input");
    const c = load<u8>(this.p);
    if (c == 0x7b) return this.object(depth);
    if (c == 0x5b) return this.array(depth);
    if (c == 0x22) {
      const s = this.string();
      if (s === null) return null;
      return JsonValue.str(s);
    }
    if (c == 0x74) return this.literal("true", JsonKind.Bool, true);
    if (c == 0x66) return this.literal("false", JsonKind.Bool, false);
    if (c == 0x6e) return this.literal("null", JsonKind.Null, false);
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    return this.fail("unexpected character");
  }

  literal(word: string, kind: JsonKind, b: bool): JsonValue | null {
    const n = <usize>word.length;
    if (this.p + n > this.end) return this.fail("invalid literal");
    for (let i: usize = 0; i < n; i++) {
      if (load<u8>(this.p + i) != <u8>word.charCodeAt(<i32>i)) return this.fail("invalid literal");
    }
    this.p += n;
    const v = new JsonValue();
    v.kind = kind;
    v.b = b;
    return v;
  }

  number(): JsonValue | null {
    const begin = this.p;
    let p = this.p;
    const end = this.end;
    if (p < end && load<u8>(p) == 0x2d) p++;
    if (p >= end) { this.p = p; return this.fail("invalid number"); }
    let c = load<u8>(p);
    if (c == 0x30) {
      p++;
    } else if (c >= 0x31 && c <= 0x39) {
      while (p < end && load<u8>(p) >= 0x30 && load<u8>(p) <= 0x39) p++;
    } else {
      this.p = p;
      return this.fail("invalid number");
    }
    if (p < end && load<u8>(p) == 0x2e) {
      p++;
      const digits = p;
      while (p < end && load<u8>(p) >= 0x30 && load<u8>(p) <= 0x39) p++;
      if (p == digits) { this.p = p; return this.fail("invalid number"); }
    }
    if (p < end && (load<u8>(p) == 0x65 || load<u8>(p) == 0x45)) {
      p++;
      if (p < end && (load<u8>(p) == 0x2b || load<u8>(p) == 0x2d)) p++;
      const digits = p;
      while (p < end && load<u8>(p) >= 0x30 && load<u8>(p) <= 0x39) p++;
      if (p == digits) { this.p = p; return this.fail("invalid number"); }
    }
    this.p = p;
    const v = new JsonValue();
    v.kind = JsonKind.Number;
    v.s = String.UTF8.decodeUnsafe(begin, p - begin);
    v.n = parseFloat(v.s);
    return v;
  }

  // Returns the decoded string, or null on error. Positioned on the opening quote.
  string(): string | null {
    let p = this.p + 1;
    const end = this.end;
    const begin = p;
    let escaped = false;
    while (true) {
      if (p >= end) { this.p = p; this.fail("unterminated string"); return null; }
      const c = load<u8>(p);
      if (c == 0x22) break;
      if (c < 0x20) { this.p = p; this.fail("control character in string"); return null; }
      if (c == 0x5c) {
        escaped = true;
        p += 2;
        continue;
      }
      p++;
    }
    if (p > end) { this.p = end; this.fail("unterminated string"); return null; }
    this.p = p + 1;
    if (!escaped) return String.UTF8.decodeUnsafe(begin, p - begin);
    return this.unescape(begin, p);
  }

  // Decodes a string with escapes in one pass, UTF-8 and escapes straight into UTF-16 units in a
  // scratch buffer, then one copy into the string: linear whatever the number of escapes (pasted
  // code is full of \n; a quadratic join would let one request stall a worker).
  unescape(begin: usize, stop: usize): string | null {
    const need = <i32>(stop - begin) << 1; // UTF-16 units never outnumber UTF-8 bytes
    if (scratch.byteLength < need) scratch = new ArrayBuffer(need < 1024 ? 1024 : need);
    const base = changetype<usize>(scratch);
    let out = base;
    let p = begin;
    while (p < stop) {
      const c = <u32>load<u8>(p);
      if (c == 0x5c) {
        const e = load<u8>(p + 1);
        p += 2;
        let u: u32;
        if (e == 0x22) u = 0x22;
        else if (e == 0x5c) u = 0x5c;
        else if (e == 0x2f) u = 0x2f;
        else if (e == 0x62) u = 0x08;
        else if (e == 0x66) u = 0x0c;
        else if (e == 0x6e) u = 0x0a;
        else if (e == 0x72) u = 0x0d;
        else if (e == 0x74) u = 0x09;
        else if (e == 0x75) {
          const h = this.hex4(p, stop);
          if (h < 0) { this.p = p; this.fail("invalid \\u escape"); return null; }
          p += 4;
          u = <u32>h; // lone surrogates are kept (JSON and JavaScript strings allow them)
        } else {
          this.p = p;
          this.fail("invalid escape");
          return null;
        }
        store<u16>(out, <u16>u);
        out += 2;
        continue;
      }
      if (c < 0x80) {
        store<u16>(out, <u16>c);
        out += 2;
        p++;
        continue;
      }
      // Multi-byte UTF-8; an invalid sequence becomes U+FFFD, as TextDecoder does.
      let cp: u32 = 0xfffd;
      let len: usize = 1;
      if (c >= 0xc2 && c <= 0xdf && p + 1 < stop && (load<u8>(p + 1) & 0xc0) == 0x80) {
        cp = ((c & 0x1f) << 6) | (<u32>load<u8>(p + 1) & 0x3f);
        len = 2;
      } else if (c >= 0xe0 && c <= 0xef && p + 2 < stop && (load<u8>(p + 1) & 0xc0) == 0x80 && (load<u8>(p + 2) & 0xc0) == 0x80) {
        const v = ((c & 0x0f) << 12) | ((<u32>load<u8>(p + 1) & 0x3f) << 6) | (<u32>load<u8>(p + 2) & 0x3f);
        if (v >= 0x800 && (v < 0xd800 || v > 0xdfff)) {
          cp = v;
          len = 3;
        }
      } else if (c >= 0xf0 && c <= 0xf4 && p + 3 < stop && (load<u8>(p + 1) & 0xc0) == 0x80 && (load<u8>(p + 2) & 0xc0) == 0x80 && (load<u8>(p + 3) & 0xc0) == 0x80) {
        const v = ((c & 0x07) << 18) | ((<u32>load<u8>(p + 1) & 0x3f) << 12) | ((<u32>load<u8>(p + 2) & 0x3f) << 6) | (<u32>load<u8>(p + 3) & 0x3f);
        if (v >= 0x10000 && v <= 0x10ffff) {
          cp = v;
          len = 4;
        }
      }
      p += len;
      if (cp >= 0x10000) {
        const v = cp - 0x10000;
        store<u16>(out, <u16>(0xd800 | (v >> 10)));
        store<u16>(out + 2, <u16>(0xdc00 | (v & 0x3ff)));
        out += 4;
      } else {
        store<u16>(out, <u16>cp);
        out += 2;
      }
    }
    return String.UTF16.decodeUnsafe(base, out - base);
  }

  hex4(p: usize, stop: usize): i32 {
    if (p + 4 > stop) return -1;
    let v: i32 = 0;
    for (let i: usize = 0; i < 4; i++) {
      const c = <i32>load<u8>(p + i);
      let d: i32;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) d = c - 0x61 + 10;
      else if (c >= 0x41 && c <= 0x46) d = c - 0x41 + 10;
      else return -1;
      v = (v << 4) | d;
    }
    return v;
  }

  array(depth: i32): JsonValue | null {
    this.p++; // [
    const v = new JsonValue();
    v.kind = JsonKind.Array;
    const items = new Array<JsonValue>();
    v.items = items;
    this.ws();
    if (this.p < this.end && load<u8>(this.p) == 0x5d) {
      this.p++;
      return v;
    }
    while (true) {
      const item = this.value(depth + 1);
      if (item === null) return null;
      items.push(item);
      this.ws();
      if (this.p >= this.end) return this.fail("unterminated array");
      const c = load<u8>(this.p);
      this.p++;
      if (c == 0x2c) continue;
      if (c == 0x5d) return v;
      this.p--;
      return this.fail("expected , or ]");
    }
  }

  object(depth: i32): JsonValue | null {
    this.p++; // {
    const v = new JsonValue();
    v.kind = JsonKind.Object;
    const keys = new Array<string>();
    const vals = new Array<JsonValue>();
    v.keys = keys;
    v.vals = vals;
    this.ws();
    if (this.p < this.end && load<u8>(this.p) == 0x7d) {
      this.p++;
      return v;
    }
    while (true) {
      this.ws();
      if (this.p >= this.end || load<u8>(this.p) != 0x22) return this.fail("expected a string key");
      const key = this.string();
      if (key === null) return null;
      this.ws();
      if (this.p >= this.end || load<u8>(this.p) != 0x3a) return this.fail("expected :");
      this.p++;
      const val = this.value(depth + 1);
      if (val === null) return null;
      // A repeated key: the last one wins, as in JavaScript's JSON.parse, so a client sees the
      // same meaning through the gateway as without it.
      let replaced = false;
      for (let i = 0, n = keys.length; i < n; i++) {
        if (unchecked(keys[i]) == key) {
          vals[i] = val;
          replaced = true;
          break;
        }
      }
      if (!replaced) {
        keys.push(key);
        vals.push(val);
      }
      this.ws();
      if (this.p >= this.end) return this.fail("unterminated object");
      const c = load<u8>(this.p);
      this.p++;
      if (c == 0x2c) continue;
      if (c == 0x7d) return v;
      this.p--;
      return this.fail("expected , or }");
    }
  }
}

/** Parses UTF-8 JSON at [ptr, ptr+len). Null on error, with the reason in jsonError. */
export function parseJsonAt(ptr: usize, len: usize): JsonValue | null {
  const p = new Parser(ptr, len);
  const v = p.value(0);
  if (v !== null) {
    p.ws();
    if (p.p != p.end) {
      p.fail("unexpected data after the JSON value");
      jsonError = p.err;
      return null;
    }
    jsonError = "";
    return v;
  }
  jsonError = p.err.length ? p.err : "invalid JSON";
  return null;
}

export function parseJson(buf: ArrayBuffer): JsonValue | null {
  return parseJsonAt(changetype<usize>(buf), <usize>buf.byteLength);
}

export function parseJsonString(s: string): JsonValue | null {
  return parseJson(String.UTF8.encode(s));
}

// ---------------------------------------------------------------------------------------------
// Writing

const HEX = "0123456789abcdef";

/** A growable UTF-8 byte buffer. Writes JSON without building intermediate strings. */
export class ByteBuilder {
  buf: ArrayBuffer;
  len: i32 = 0;

  constructor(capacity: i32 = 256) {
    this.buf = new ArrayBuffer(capacity);
  }

  @inline reserve(extra: i32): void {
    const need = this.len + extra;
    if (need > this.buf.byteLength) this.grow(need);
  }

  grow(need: i32): void {
    let cap = this.buf.byteLength << 1;
    if (cap < need) cap = need;
    const next = new ArrayBuffer(cap);
    memory.copy(changetype<usize>(next), changetype<usize>(this.buf), <usize>this.len);
    this.buf = next;
  }

  byte(b: u8): ByteBuilder {
    this.reserve(1);
    store<u8>(changetype<usize>(this.buf) + <usize>this.len, b);
    this.len++;
    return this;
  }

  /** Appends raw bytes. */
  bytes(ptr: usize, n: i32): ByteBuilder {
    this.reserve(n);
    memory.copy(changetype<usize>(this.buf) + <usize>this.len, ptr, <usize>n);
    this.len += n;
    return this;
  }

  buffer(b: ArrayBuffer): ByteBuilder {
    return this.bytes(changetype<usize>(b), b.byteLength);
  }

  /** Appends a string as UTF-8, unescaped (for JSON punctuation, keys known to be safe, numbers). */
  raw(s: string): ByteBuilder {
    const n = s.length;
    // ASCII fast path: one byte per UTF-16 unit.
    this.reserve(n * 3);
    let out = changetype<usize>(this.buf) + <usize>this.len;
    const start = out;
    const src = changetype<usize>(s);
    for (let i = 0; i < n; i++) {
      const c = <u32>load<u16>(src + (<usize>i << 1));
      if (c < 0x80) {
        store<u8>(out++, <u8>c);
      } else {
        // Fall back to the full encoder for the rest.
        this.len += <i32>(out - start);
        const rest = String.UTF8.encode(s.substring(i));
        return this.buffer(rest);
      }
    }
    this.len += <i32>(out - start);
    return this;
  }

  /** Appends s as a quoted, escaped JSON string. */
  str(s: string): ByteBuilder {
    const n = s.length;
    // Most text is ASCII (one byte a unit); UTF-8 needs up to 3 and escapes up to 6. Reserve for
    // the common case and grow when the next unit might not fit, so a 10 MB base64 string costs
    // about 10 MB, not 60.
    this.reserve(n + 8);
    let out = changetype<usize>(this.buf) + <usize>this.len;
    let start = out;
    let limit = changetype<usize>(this.buf) + <usize>this.buf.byteLength;
    const src = changetype<usize>(s);
    store<u8>(out++, 0x22);
    for (let i = 0; i < n; i++) {
      if (out + 8 > limit) {
        // Room for the worst case of this unit plus the closing quote.
        this.len += <i32>(out - start);
        this.grow(this.len + (n - i) * 3 + 16);
        out = changetype<usize>(this.buf) + <usize>this.len;
        start = out;
        limit = changetype<usize>(this.buf) + <usize>this.buf.byteLength;
      }
      let c = <u32>load<u16>(src + (<usize>i << 1));
      if (c < 0x80) {
        if (c == 0x22 || c == 0x5c) {
          store<u8>(out++, 0x5c);
          store<u8>(out++, <u8>c);
        } else if (c < 0x20) {
          store<u8>(out++, 0x5c);
          if (c == 0x0a) store<u8>(out++, 0x6e);
          else if (c == 0x0d) store<u8>(out++, 0x72);
          else if (c == 0x09) store<u8>(out++, 0x74);
          else {
            store<u8>(out++, 0x75);
            store<u8>(out++, 0x30);
            store<u8>(out++, 0x30);
            store<u8>(out++, <u8>HEX.charCodeAt(<i32>(c >> 4)));
            store<u8>(out++, <u8>HEX.charCodeAt(<i32>(c & 15)));
          }
        } else {
          store<u8>(out++, <u8>c);
        }
      } else if (c < 0x800) {
        store<u8>(out++, <u8>(0xc0 | (c >> 6)));
        store<u8>(out++, <u8>(0x80 | (c & 63)));
      } else if (c >= 0xd800 && c < 0xdc00 && i + 1 < n) {
        const lo = <u32>load<u16>(src + (<usize>(i + 1) << 1));
        if (lo >= 0xdc00 && lo < 0xe000) {
          const cp = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
          store<u8>(out++, <u8>(0xf0 | (cp >> 18)));
          store<u8>(out++, <u8>(0x80 | ((cp >> 12) & 63)));
          store<u8>(out++, <u8>(0x80 | ((cp >> 6) & 63)));
          store<u8>(out++, <u8>(0x80 | (cp & 63)));
          i++;
        } else {
          out = writeEscapedUnit(out, c);
        }
      } else if (c >= 0xd800 && c < 0xe000) {
        // A lone surrogate cannot be UTF-8: keep it as a JSON escape so nothing is lost.
        out = writeEscapedUnit(out, c);
      } else {
        store<u8>(out++, <u8>(0xe0 | (c >> 12)));
        store<u8>(out++, <u8>(0x80 | ((c >> 6) & 63)));
        store<u8>(out++, <u8>(0x80 | (c & 63)));
      }
    }
    store<u8>(out++, 0x22);
    this.len += <i32>(out - start);
    return this;
  }

  int(v: i64): ByteBuilder {
    return this.raw(v.toString());
  }

  /** Writes a parsed JSON value back out (numbers exactly as they were written). */
  value(v: JsonValue): ByteBuilder {
    switch (v.kind) {
      case JsonKind.Null: return this.raw("null");
      case JsonKind.Bool: return this.raw(v.b ? "true" : "false");
      case JsonKind.Number: return this.raw(v.s);
      case JsonKind.String: return this.str(v.s);
      case JsonKind.Array: {
        this.byte(0x5b);
        const items = v.items as Array<JsonValue>;
        for (let i = 0, n = items.length; i < n; i++) {
          if (i > 0) this.byte(0x2c);
          this.value(unchecked(items[i]));
        }
        return this.byte(0x5d);
      }
      default: {
        this.byte(0x7b);
        const keys = v.keys as Array<string>;
        const vals = v.vals as Array<JsonValue>;
        for (let i = 0, n = keys.length; i < n; i++) {
          if (i > 0) this.byte(0x2c);
          this.str(unchecked(keys[i]));
          this.byte(0x3a);
          this.value(unchecked(vals[i]));
        }
        return this.byte(0x7d);
      }
    }
  }

  toArrayBuffer(): ArrayBuffer {
    return this.buf.slice(0, this.len);
  }

  toString(): string {
    return String.UTF8.decodeUnsafe(changetype<usize>(this.buf), <usize>this.len);
  }

  reset(): void {
    this.len = 0;
  }
}

function writeEscapedUnit(out: usize, c: u32): usize {
  store<u8>(out++, 0x5c);
  store<u8>(out++, 0x75);
  store<u8>(out++, <u8>HEX.charCodeAt(<i32>((c >> 12) & 15)));
  store<u8>(out++, <u8>HEX.charCodeAt(<i32>((c >> 8) & 15)));
  store<u8>(out++, <u8>HEX.charCodeAt(<i32>((c >> 4) & 15)));
  store<u8>(out++, <u8>HEX.charCodeAt(<i32>(c & 15)));
  return out;
}

/**
 * Writes object `base` with the members of `overrides` replacing its own in place, and the
 * others appended. Used to pass a client body through with only the model, limits and operator
 * options changed, without building a new tree.
 */
export function writeMerged(out: ByteBuilder, base: JsonValue, overrides: JsonValue): void {
  const keys = base.keys as Array<string>;
  const vals = base.vals as Array<JsonValue>;
  out.byte(0x7b);
  let n = 0;
  for (let i = 0; i < keys.length; i++) {
    const k = unchecked(keys[i]);
    const o = overrides.get(k);
    if (n++) out.byte(0x2c);
    out.str(k).byte(0x3a).value(o !== null ? o : unchecked(vals[i]));
  }
  const ok = overrides.keys as Array<string>;
  const ov = overrides.vals as Array<JsonValue>;
  for (let i = 0; i < ok.length; i++) {
    if (base.get(unchecked(ok[i])) !== null) continue;
    if (n++) out.byte(0x2c);
    out.str(unchecked(ok[i])).byte(0x3a).value(unchecked(ov[i]));
  }
  out.byte(0x7d);
}

/** A JSON string literal for s (quotes included). */
export function jsonString(s: string): string {
  const b = new ByteBuilder(s.length + 8);
  b.str(s);
  return b.toString();
}
