// A strict JSON reader (RFC 8259) over UTF-8 bytes, and a byte builder that writes JSON.
//
// Why not json-as: it aborts (a trap, which fails the VM in Envoy) on malformed input and
// silently accepts wrong types and unknown fields. Filters parse untrusted request bodies and
// operator configuration; both must fail with a message, never a trap. This reader never
// throws: `parseJson` returns null and leaves the reason in `jsonError`.

import { bytesAre, writeDecimal, ONES, HIGHS } from "./ascii";

export const enum JsonKind {
  Null = 0,
  Bool = 1,
  Number = 2,
  String = 3,
  Array = 4,
  Object = 5,
}

export const MAX_DEPTH: i32 = 64;

/**
 * Values one parse may build when its caller gives no bound (see parseJsonAt): set once per VM by
 * a filter that reads untrusted JSON (ai-proxy: max_json_values), so every parse in that VM,
 * stream events and translators' included, is bounded. Unbounded until then (operator
 * configuration is read before it is set).
 */
export let jsonDefaultMaxValues: i32 = i32.MAX_VALUE;

export function setJsonDefaultMaxValues(n: i32): void {
  jsonDefaultMaxValues = n;
}
const INLINE: i32 = 4; // container members kept in fields (see JsonValue.count)

// Flags of a JsonValue (its `f` byte).
const F_TRUE: u8 = 1; // a Bool that is true
const F_COMPLEX: u8 = 2; // rawComplex

/**
 * A parsed JSON value. A body of millions of tiny values ({"x":[0,0,...]}) is the hostile case, and
 * wasm memory never shrinks, so a scalar is kept small: four words and two bytes, 48 bytes with
 * the runtime's header (it was 112 for every value). Numbers are decoded from their bytes when
 * read (most are only passed through). Arrays and objects are JsonContainers (96 bytes), always.
 */
export class JsonValue {
  // A parsed string or number stays as its bytes in the source (between the quotes for a string,
  // escapes as written; a number exactly as written): most values are only passed through, so
  // they are copied as bytes and never decoded to UTF-16 and encoded back. `src` keeps the bytes
  // alive; `s` decodes on first use.
  src: ArrayBuffer | null = null;
  raw: usize = 0;
  rawLen: i32 = 0;
  private text: string | null = null;
  private k: u8 = 0;
  private f: u8 = 0;

  get kind(): JsonKind { return <JsonKind><i32>this.k; }
  set kind(k: JsonKind) { this.k = <u8>k; }

  get b(): bool { return (this.f & F_TRUE) != 0; }
  set b(v: bool) { this.f = v ? this.f | F_TRUE : this.f & ~F_TRUE; }

  /** The raw string has backslash escapes or non-ASCII bytes (its UTF-16 length differs). */
  get rawComplex(): bool { return (this.f & F_COMPLEX) != 0; }

  /** A number's value (0 for anything else), from its bytes or its text. */
  get n(): f64 {
    if (this.k != <u8>JsonKind.Number) return 0;
    if (this.src !== null) return numberAt(this.raw, this.rawLen);
    const t = this.text;
    return t !== null ? parseFloat(t) : 0;
  }

  /** String value, or the number exactly as written (so it round-trips unchanged). */
  get s(): string {
    let t = this.text;
    if (t === null) {
      // (An array of numbers keeps its bytes too: it has no text.)
      t = this.src !== null && this.k < <u8>JsonKind.Array ? decodeRaw(this.kind, this.raw, this.rawLen, this.rawComplex) : "";
      this.text = t;
    }
    return t as string;
  }

  set s(v: string) {
    this.text = v;
    this.src = null;
  }

  /** Makes this a string value kept as bytes of owner (see src). */
  setRaw(owner: ArrayBuffer, ptr: usize, len: i32, complex: bool): void {
    this.k = <u8>JsonKind.String;
    this.src = owner;
    this.raw = ptr;
    this.rawLen = len;
    this.f = complex ? F_COMPLEX : 0;
    this.text = null;
  }

  /** Makes this a number kept as bytes of owner (see src). */
  setRawNumber(owner: ArrayBuffer, ptr: usize, len: i32): void {
    this.k = <u8>JsonKind.Number;
    this.src = owner;
    this.raw = ptr;
    this.rawLen = len;
  }

  /** Length of the string in UTF-16 units (what `s.length` gives), without decoding it. */
  get units(): i32 {
    if (this.text !== null || this.src === null || this.k >= <u8>JsonKind.Array) return this.s.length;
    return this.rawComplex ? rawUnits(this.raw, this.rawLen) : this.rawLen;
  }

  isNull(): bool { return this.k == <u8>JsonKind.Null; }
  isBool(): bool { return this.k == <u8>JsonKind.Bool; }
  isNumber(): bool { return this.k == <u8>JsonKind.Number; }
  isString(): bool { return this.k == <u8>JsonKind.String; }
  isArray(): bool { return this.k == <u8>JsonKind.Array; }
  isObject(): bool { return this.k == <u8>JsonKind.Object; }

  /** Member of an object by key, or null (also when this is not an object). */
  get(key: string): JsonValue | null {
    if (this.k != <u8>JsonKind.Object) return null;
    return changetype<JsonContainer>(this).get(key);
  }

  /** Number of array items or object members. */
  get length(): i32 {
    if (this.k < <u8>JsonKind.Array) return 0;
    return changetype<JsonContainer>(this).size;
  }

  /** Item i of an array, or value of member i of an object (0 <= i < length). */
  at(i: i32): JsonValue {
    return changetype<JsonContainer>(this).item(i);
  }

  /** Key of member i of an object (0 <= i < length). */
  keyAt(i: i32): string {
    return changetype<JsonContainer>(this).key(i);
  }

  /**
   * An array of numbers only, still kept as its bytes (see JsonContainer.span): at(i) decodes item
   * i (a new value each call); ByteBuilder.value copies the bytes.
   */
  isNumberSpan(): bool {
    return this.k == <u8>JsonKind.Array && changetype<JsonContainer>(this).span;
  }

  /** Array items, or null when this is not an array. (Prefer length and at(i): no arrays made.) */
  get items(): Array<JsonValue> | null {
    if (this.k != <u8>JsonKind.Array) return null;
    return changetype<JsonContainer>(this).spill(false).arrVals;
  }

  /** Object keys in document order, or null when this is not an object. (Prefer keyAt(i).) */
  get keys(): Array<string> | null {
    if (this.k != <u8>JsonKind.Object) return null;
    return changetype<JsonContainer>(this).spill(true).arrKeys;
  }

  /** Object values, parallel to keys, or null when this is not an object. (Prefer at(i).) */
  get vals(): Array<JsonValue> | null {
    if (this.k != <u8>JsonKind.Object) return null;
    return changetype<JsonContainer>(this).spill(true).arrVals;
  }

  private members(): JsonContainer {
    assert(this.k >= <u8>JsonKind.Array, "not a JSON container");
    return changetype<JsonContainer>(this);
  }

  /** True when the number is a whole number that fits in i64 without loss. */
  isInteger(): bool {
    if (this.k != <u8>JsonKind.Number) return false;
    const n = this.n;
    return Math.floor(n) == n && Math.abs(n) <= 9007199254740991.0;
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
    const v = new JsonContainer();
    v.kind = JsonKind.Array;
    return v;
  }

  static object(): JsonValue {
    const v = new JsonContainer();
    v.kind = JsonKind.Object;
    return v;
  }

  /** Sets an object member (replacing an existing one). Returns this, for chaining. */
  set(key: string, val: JsonValue): JsonValue {
    const m = this.members();
    const n = m.size;
    for (let i = 0; i < n; i++) {
      if (m.key(i) == key) {
        m.replaceAt(i, val);
        return this;
      }
    }
    m.add(key, val);
    return this;
  }

  /** Appends an array item. Returns this. */
  push(val: JsonValue): JsonValue {
    this.members().add(null, val);
    return this;
  }

  /** The string value of member `key` if it is a string, else null. */
  getString(key: string): string | null {
    const v = this.get(key);
    if (v === null || v.kind != JsonKind.String) return null;
    return v.s;
  }
}

/**
 * An array or object: its items or members. Most objects a gateway reads are small ({role, content},
 * {type, text}), so up to INLINE members or items live in fields, with no arrays at all (two
 * allocations each saved); a bigger container, or one whose arrays a caller asks for, keeps them
 * in the arrays instead (arrVals not null: the arrays are then the only copy).
 */
class JsonContainer extends JsonValue {
  count: i32 = 0;
  // An array whose items are all numbers (token ids, embedding vectors: the large arrays real
  // requests and answers have) is kept as its bytes, [raw, raw+rawLen) of src between the
  // brackets, and count items: no value per item. at(i) decodes item i from the bytes, onward
  // from the last item read (cursorAt, which starts at cursorPos), so a loop over it is linear.
  span: bool = false;
  cursorAt: i32 = 0;
  cursorPos: usize = 0;

  setSpan(owner: ArrayBuffer, ptr: usize, len: i32, n: i32): void {
    this.src = owner;
    this.raw = ptr;
    this.rawLen = len;
    this.count = n;
    this.span = true;
    this.cursorAt = 0;
    this.cursorPos = ptr;
  }

  spanItem(i: i32): JsonValue {
    let at = this.cursorAt;
    let p = this.cursorPos;
    if (i < at) {
      at = 0;
      p = this.raw;
    }
    const end = this.raw + <usize>this.rawLen;
    while (at < i) {
      p = skipWs(scanNumber(p, end), end) + 1; // the comma
      p = skipWs(p, end);
      at++;
    }
    this.cursorAt = i;
    this.cursorPos = p;
    const v = new JsonValue();
    v.setRawNumber(this.src as ArrayBuffer, p, <i32>(scanNumber(p, end) - p));
    return v;
  }
  k0: string | null = null;
  k1: string | null = null;
  k2: string | null = null;
  k3: string | null = null;
  e0: JsonValue | null = null;
  e1: JsonValue | null = null;
  e2: JsonValue | null = null;
  e3: JsonValue | null = null;
  arrKeys: Array<string> | null = null;
  arrVals: Array<JsonValue> | null = null; // object values, or array items

  get size(): i32 {
    const vals = this.arrVals;
    return vals !== null ? vals.length : this.count;
  }

  get(key: string): JsonValue | null {
    const keys = this.arrKeys;
    if (keys !== null) {
      for (let i = 0, n = keys.length; i < n; i++) {
        if (unchecked(keys[i]) == key) return unchecked((this.arrVals as Array<JsonValue>)[i]);
      }
      return null;
    }
    const n = this.count;
    if (n > 0 && this.k0 == key) return this.e0;
    if (n > 1 && this.k1 == key) return this.e1;
    if (n > 2 && this.k2 == key) return this.e2;
    if (n > 3 && this.k3 == key) return this.e3;
    return null;
  }

  item(i: i32): JsonValue {
    const vals = this.arrVals;
    if (vals !== null) return unchecked(vals[i]);
    if (this.span) return this.spanItem(i);
    return (i == 0 ? this.e0 : i == 1 ? this.e1 : i == 2 ? this.e2 : this.e3) as JsonValue;
  }

  key(i: i32): string {
    const keys = this.arrKeys;
    if (keys !== null) return unchecked(keys[i]);
    return (i == 0 ? this.k0 : i == 1 ? this.k1 : i == 2 ? this.k2 : this.k3) as string;
  }

  /** Moves inline members into the arrays (once; the arrays are then the only copy). */
  spill(object: bool): JsonContainer {
    if (this.arrVals !== null) return this;
    const n = this.count;
    const vals = new Array<JsonValue>(n);
    for (let i = 0; i < n; i++) unchecked((vals[i] = this.item(i)));
    this.span = false;
    if (object) {
      const keys = new Array<string>(n);
      for (let i = 0; i < n; i++) unchecked((keys[i] = this.key(i)));
      this.arrKeys = keys;
    }
    this.arrVals = vals;
    this.count = 0;
    this.k0 = this.k1 = this.k2 = this.k3 = null;
    this.e0 = this.e1 = this.e2 = this.e3 = null;
    return this;
  }

  /** Appends an item (key null) or member, inline while there is room. */
  add(key: string | null, val: JsonValue): void {
    if (this.arrVals === null) {
      const n = this.count;
      if (n < INLINE && !this.span) {
        if (n == 0) { this.k0 = key; this.e0 = val; }
        else if (n == 1) { this.k1 = key; this.e1 = val; }
        else if (n == 2) { this.k2 = key; this.e2 = val; }
        else { this.k3 = key; this.e3 = val; }
        this.count = n + 1;
        return;
      }
      this.spill(key !== null);
    }
    if (key !== null) (this.arrKeys as Array<string>).push(key);
    (this.arrVals as Array<JsonValue>).push(val);
  }

  replaceAt(i: i32, val: JsonValue): void {
    if (this.span) this.spill(false);
    const vals = this.arrVals;
    if (vals !== null) unchecked((vals[i] = val));
    else if (i == 0) this.e0 = val;
    else if (i == 1) this.e1 = val;
    else if (i == 2) this.e2 = val;
    else this.e3 = val;
  }

  fill(keys: Array<string> | null, keyBase: i32, vals: Array<JsonValue>, base: i32, n: i32): void {
    if (n <= INLINE) {
      for (let i = 0; i < n; i++) this.add(keys !== null ? unchecked(keys[keyBase + i]) : null, unchecked(vals[base + i]));
      return;
    }
    const v = new Array<JsonValue>(n);
    for (let i = 0; i < n; i++) unchecked((v[i] = unchecked(vals[base + i])));
    this.arrVals = v;
    if (keys !== null) {
      const k = new Array<string>(n);
      for (let i = 0; i < n; i++) unchecked((k[i] = unchecked(keys[keyBase + i])));
      this.arrKeys = k;
    }
  }
}

// Reused by unescapeRange for strings of up to SCRATCH_MAX bytes of UTF-16 (filters run one
// callback at a time per VM). Longer strings are decoded straight into their result instead: a
// scratch sized for the largest string ever decoded would be kept for good (one 5 MB escaped
// string pinned 10 MB).
const SCRATCH_MAX: i32 = 64 * 1024;
let scratch = new ArrayBuffer(1024);

/** Why the last parseJson returned null (empty when it succeeded). */
export let jsonError: string = "";

/** The last parse met a string with invalid UTF-8 (its value holds U+FFFD; its bytes do not). */
export let jsonSawBadUtf8: bool = false;

/**
 * The last parse met an object with a key twice (the last value was kept). A client's request
 * with one is refused: the provider behind may read the first, and then the gateway would route
 * and account one request while the provider serves another.
 */
export let jsonSawDuplicateKey: bool = false;

/**
 * The last parse stopped because the text holds more values than its bound allowed (the text may
 * be valid JSON): a caller tells the client "too complex", not "not JSON". Each value costs linear
 * memory that a wasm VM never gives back, so a body of millions of tiny values ({"x":[0,0,...]})
 * must stop at the bound, not at the end of memory.
 */
export let jsonTooManyValues: bool = false;

class Parser {
  p: usize;
  end: usize;
  start: usize;
  err: string = "";
  // Set by scan(): the string just scanned has escapes / non-ASCII bytes / invalid UTF-8.
  escaped: bool = false;
  high: bool = false;
  badUtf8: bool = false;
  // Values this parse may still build (counted as each one starts).
  left: i32;
  maxValues: i32;

  // owner: the buffer holding [ptr, ptr+len), kept by every string and number parsed from it so
  // they can stay as bytes; null means the bytes may not outlive the call: decode at once.
  constructor(ptr: usize, len: usize, public owner: ArrayBuffer | null, maxValues: i32) {
    this.left = maxValues;
    this.maxValues = maxValues;
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
    if (--this.left < 0) {
      jsonTooManyValues = true;
      return this.fail("more than " + this.maxValues.toString() + " values");
    }
    this.ws();
    if (this.p >= this.end) return this.fail("unexpected end of input");
    const c = load<u8>(this.p);
    if (c == 0x7b) return this.object(depth);
    if (c == 0x5b) return this.array(depth);
    if (c == 0x22) return this.stringValue();
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
    const p = scanNumber(begin, this.end);
    if (p == 0) {
      this.p = numberErrorAt;
      return this.fail("invalid number");
    }
    this.p = p;
    const v = new JsonValue();
    const len = <i32>(p - begin);
    // The value is decoded when read (JsonValue.n): most numbers are only passed through.
    if (this.owner !== null) {
      v.setRawNumber(this.owner as ArrayBuffer, begin, len);
    } else {
      v.kind = JsonKind.Number;
      v.s = String.UTF8.decodeUnsafe(begin, len);
    }
    return v;
  }

  /**
   * Scans the string at p (on its opening quote), validating escapes and UTF-8; leaves p after the
   * closing quote and returns the first content byte, or 0 on error. Sets escaped/high/badUtf8.
   */
  scan(): usize {
    const begin = this.p + 1;
    const q = scanString(begin, this.end);
    if (q == 0) {
      this.p = scanErrorAt;
      this.fail(scanError);
      return 0;
    }
    this.p = q + 1;
    this.escaped = (scanFlags & SCAN_ESCAPED) != 0;
    this.high = (scanFlags & SCAN_HIGH) != 0;
    this.badUtf8 = (scanFlags & SCAN_BAD_UTF8) != 0;
    return begin;
  }

  // Returns the decoded string, or null on error. Positioned on the opening quote.
  string(): string | null {
    const begin = this.scan();
    if (begin == 0) return null;
    const stop = this.p - 1;
    if (this.badUtf8) jsonSawBadUtf8 = true;
    if (this.escaped || this.badUtf8) return unescapeRange(begin, stop);
    return decodeKnown(begin, <i32>(stop - begin));
  }

  stringValue(): JsonValue | null {
    const begin = this.scan();
    if (begin == 0) return null;
    const v = new JsonValue();
    v.kind = JsonKind.String;
    const len = <i32>(this.p - 1 - begin);
    if (this.badUtf8) jsonSawBadUtf8 = true;
    if (this.owner !== null && !this.badUtf8) {
      v.setRaw(this.owner as ArrayBuffer, begin, len, this.escaped || this.high);
    } else {
      // Invalid UTF-8 is decoded (each bad byte to U+FFFD, as TextDecoder does) so that what is
      // written back is valid; String.UTF8.decodeUnsafe would drop the rest of the string.
      v.s = this.escaped || this.badUtf8 ? unescapeRange(begin, begin + <usize>len) : String.UTF8.decodeUnsafe(begin, <usize>len);
    }
    return v;
  }

  // Members are gathered on shared stacks and moved into the container when it closes (inline,
  // or arrays of the exact size): no array grown by doubling.
  array(depth: i32): JsonValue | null {
    this.p++; // [
    const v = new JsonContainer();
    v.kind = JsonKind.Array;
    const base = valStack.length;
    this.ws();
    if (this.p < this.end && load<u8>(this.p) == 0x5d) {
      this.p++;
      return v;
    }
    if (this.owner !== null && this.p < this.end) {
      const c = load<u8>(this.p);
      if (c == 0x2d || (c >= 0x30 && c <= 0x39)) {
        const r = this.numbers(v);
        if (r > 0) return v;
        if (r < 0) return null;
      }
    }
    while (true) {
      const item = this.value(depth + 1);
      if (item === null) return null;
      valStack.push(item);
      this.ws();
      if (this.p >= this.end) return this.fail("unterminated array");
      const c = load<u8>(this.p);
      this.p++;
      if (c == 0x2c) continue;
      if (c == 0x5d) {
        v.fill(null, 0, valStack, base, valStack.length - base);
        valStack.length = base;
        return v;
      }
      this.p--;
      return this.fail("expected , or ]");
    }
  }

  /**
   * An array of numbers only, from its first item: kept as its bytes (JsonContainer.span). 1 when
   * it was one, 0 when an item is not a number (nothing consumed: the caller reads it the general
   * way, which also words any error), -1 past the value bound. Each item counts as a value, so
   * what a caller may later build from the span (items) is bounded as the tree is.
   */
  numbers(v: JsonContainer): i32 {
    const start = this.p;
    const end = this.end;
    const left = this.left;
    let p = start;
    let n = 0;
    while (true) {
      const q = scanNumber(p, end);
      if (q == 0) break;
      if (--this.left < 0) {
        jsonTooManyValues = true;
        this.p = p;
        this.fail("more than " + this.maxValues.toString() + " values");
        return -1;
      }
      n++;
      p = skipWs(q, end);
      if (p >= end) break;
      const c = load<u8>(p);
      if (c == 0x5d) {
        v.setSpan(this.owner as ArrayBuffer, start, <i32>(p - start), n);
        this.p = p + 1;
        return 1;
      }
      if (c != 0x2c) break;
      p = skipWs(p + 1, end);
    }
    this.left = left;
    return 0;
  }

  object(depth: i32): JsonValue | null {
    this.p++; // {
    const v = new JsonContainer();
    v.kind = JsonKind.Object;
    const base = valStack.length;
    const keyBase = keyStack.length;
    let index: Map<string, i32> | null = null;
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
      // same meaning through the gateway as without it. Small objects are searched in place; a
      // large one gets an index, else an object of n keys would cost n²/2 comparisons (a 430 KB
      // body of 40,000 keys took 6 s of a worker).
      const count = keyStack.length - keyBase;
      let at = -1;
      if (index !== null) {
        if (index.has(key)) at = index.get(key);
      } else {
        for (let i = 0; i < count; i++) {
          if (unchecked(keyStack[keyBase + i]) == key) {
            at = i;
            break;
          }
        }
      }
      if (at >= 0) {
        unchecked((valStack[base + at] = val));
        jsonSawDuplicateKey = true;
      } else {
        keyStack.push(key);
        valStack.push(val);
        if (index !== null) index.set(key, count);
        else if (count + 1 == INDEX_KEYS_FROM) {
          index = new Map<string, i32>();
          for (let i = 0; i <= count; i++) index.set(unchecked(keyStack[keyBase + i]), i);
        }
      }
      this.ws();
      if (this.p >= this.end) return this.fail("unterminated object");
      const c = load<u8>(this.p);
      this.p++;
      if (c == 0x2c) continue;
      if (c == 0x7d) {
        v.fill(keyStack, keyBase, valStack, base, keyStack.length - keyBase);
        keyStack.length = keyBase;
        valStack.length = base;
        return v;
      }
      this.p--;
      return this.fail("expected , or }");
    }
  }
}

// Objects with this many keys get a key index for the duplicate check.
export const INDEX_KEYS_FROM: i32 = 32;

// The parser's member stacks (one parse runs at a time in a VM; emptied when it ends).
const valStack = new Array<JsonValue>();
const keyStack = new Array<string>();


// Decodes a validated raw string with escapes in one pass, UTF-8 and escapes straight into UTF-16
// units in a scratch buffer, then one copy into the string: linear whatever the number of escapes
// (pasted code is full of \n; a quadratic join would let one request stall a worker).
export function unescapeRange(begin: usize, stop: usize): string {
  const need = <i32>(stop - begin) << 1; // UTF-16 units never outnumber UTF-8 bytes
  if (need > SCRATCH_MAX) {
    // A long string: its exact length first, then decoded into the string itself (no copy, and
    // nothing larger than the result is allocated). No allocation between __new and the return.
    const units = unescapedUnits(begin, stop);
    const str = __new(<usize>units << 1, idof<string>());
    unescapeInto(begin, stop, str);
    return changetype<string>(str);
  }
  if (scratch.byteLength < need) scratch = new ArrayBuffer(need < 1024 ? 1024 : need);
  const base = changetype<usize>(scratch);
  return String.UTF16.decodeUnsafe(base, unescapeInto(begin, stop, base) - base);
}

/** UTF-16 units unescapeInto writes for [begin, stop): the same steps, counted. */
function unescapedUnits(begin: usize, stop: usize): i32 {
  let n: i32 = 0;
  let p = begin;
  while (p < stop) {
    const c = <u32>load<u8>(p);
    if (c == 0x5c) {
      p += load<u8>(p + 1) == 0x75 ? 6 : 2;
      n++;
    } else if (c < 0x80) {
      p++;
      n++;
    } else {
      const len = utf8Length(p, stop);
      p += len == 0 ? 1 : len;
      n += len == 4 ? 2 : 1; // four bytes: a code point past U+FFFF, two surrogates
    }
  }
  return n;
}

/** Decodes [begin, stop) as UTF-16 units at out; returns the end of what it wrote. */
function unescapeInto(begin: usize, stop: usize, out: usize): usize {
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
      else {
        // \u (scan() validated every escape): lone surrogates are kept, as JSON and JavaScript allow.
        u = <u32>hex4(p, stop);
        p += 4;
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
    const len = utf8Length(p, stop);
    if (len == 2) {
      cp = ((c & 0x1f) << 6) | (<u32>load<u8>(p + 1) & 0x3f);
    } else if (len == 3) {
      cp = ((c & 0x0f) << 12) | ((<u32>load<u8>(p + 1) & 0x3f) << 6) | (<u32>load<u8>(p + 2) & 0x3f);
    } else if (len == 4) {
      cp = ((c & 0x07) << 18) | ((<u32>load<u8>(p + 1) & 0x3f) << 12) | ((<u32>load<u8>(p + 2) & 0x3f) << 6) | (<u32>load<u8>(p + 3) & 0x3f);
    }
    p += len == 0 ? 1 : len;
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
  return out;
}

export function hex4(p: usize, stop: usize): i32 {
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

// What scanString saw in the string it scanned last, or why it failed.
export const SCAN_ESCAPED: i32 = 1;
export const SCAN_HIGH: i32 = 2; // non-ASCII bytes
export const SCAN_BAD_UTF8: i32 = 4;
let scanFlags: i32 = 0;
let scanError: string = "";
let scanErrorAt: usize = 0;

/** What the last scanString saw (SCAN_* bits), or, after it failed, why and where. */
export function lastScanFlags(): i32 { return scanFlags; }
export function lastScanError(): string { return scanError; }
export function lastScanErrorAt(): usize { return scanErrorAt; }

/**
 * Scans JSON string content from p (just after the opening quote) to the closing quote, validating
 * every escape and UTF-8 sequence. Returns the position of the closing quote, or 0 on error.
 */
export function scanString(p: usize, end: usize): usize {
  let flags: i32 = 0;
  while (true) {
    // Eight plain bytes at a time: none is a quote, a backslash, a control character or non-ASCII
    // (a byte of x is zero exactly where (x - ONES) & ~x has its high bit; one below 0x20 where
    // (w - 0x20 ONES) & ~w has). Most of a prompt's text is plain. The lowest flagged byte is the
    // first one that is not plain (a borrow only flags bytes above a real hit): the scan goes
    // straight to it, not byte by byte (most strings are short, a key's closing quote is in the
    // first eight bytes).
    while (p + 8 <= end) {
      const w = load<u64>(p);
      const q = w ^ (ONES * 0x22);
      const b = w ^ (ONES * 0x5c);
      const hits = (((q - ONES) & ~q) | ((b - ONES) & ~b) | ((w - ONES * 0x20) & ~w) | w) & HIGHS;
      if (hits) {
        p += <usize>(ctz(hits) >> 3);
        break;
      }
      p += 8;
    }
    if (p >= end) { scanErrorAt = p; scanError = "unterminated string"; return 0; }
    const c = <u32>load<u8>(p);
    if (c == 0x22) break;
    if (c < 0x20) { scanErrorAt = p; scanError = "control character in string"; return 0; }
    if (c == 0x5c) {
      flags |= SCAN_ESCAPED;
      if (p + 1 >= end) { scanErrorAt = end; scanError = "unterminated string"; return 0; }
      const e = load<u8>(p + 1);
      if (e == 0x75) {
        if (hex4(p + 2, end) < 0) { scanErrorAt = p + 2; scanError = "invalid \\u escape"; return 0; }
        p += 6;
      } else if (e == 0x22 || e == 0x5c || e == 0x2f || e == 0x62 || e == 0x66 || e == 0x6e || e == 0x72 || e == 0x74) {
        p += 2;
      } else {
        scanErrorAt = p + 2;
        scanError = "invalid escape";
        return 0;
      }
      continue;
    }
    if (c >= 0x80) {
      flags |= SCAN_HIGH;
      const n = utf8Length(p, end);
      if (n == 0) { flags |= SCAN_BAD_UTF8; p++; } else p += n;
      continue;
    }
    p++;
  }
  scanFlags = flags;
  return p;
}

// ONES and HIGHS (ascii.ts) on four UTF-16 units: a one, the high bit and the bits of 0x80 and up in each lane.
const LANES: u64 = 0x0001000100010001;
const LANE_HIGHS: u64 = 0x8000800080008000;
const NOT_ASCII_LANES: u64 = 0xff80ff80ff80ff80;

/** When the bytes at p spell the ASCII text s, the position after it; else 0. */
export function matchAscii(p: usize, end: usize, s: string): usize {
  const n = <usize>s.length;
  return p + n <= end && bytesAre(p, s) ? p + n : 0;
}

/**
 * Reads the JSON string whose content starts at p (after its opening quote) into `into`, kept as
 * bytes of `owner` (see JsonValue.src), for decoders with a fast path over a known event shape.
 * Returns the position after the closing quote, or 0 when the string is not valid (the caller
 * then parses the event the general way).
 */
export function rawStringAt(p: usize, end: usize, owner: ArrayBuffer, into: JsonValue): usize {
  const q = scanString(p, end);
  if (q == 0 || (scanFlags & SCAN_BAD_UTF8) != 0) return 0;
  into.setRaw(owner, p, <i32>(q - p), scanFlags != 0);
  return q + 1;
}

/** Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0 when it is not valid. */
export function utf8Length(p: usize, end: usize): usize {
  const c = <u32>load<u8>(p);
  if (c >= 0xc2 && c <= 0xdf) {
    return p + 1 < end && (load<u8>(p + 1) & 0xc0) == 0x80 ? 2 : 0;
  }
  if (c >= 0xe0 && c <= 0xef) {
    if (p + 2 >= end || (load<u8>(p + 1) & 0xc0) != 0x80 || (load<u8>(p + 2) & 0xc0) != 0x80) return 0;
    const v = ((c & 0x0f) << 12) | ((<u32>load<u8>(p + 1) & 0x3f) << 6);
    return v >= 0x800 && (v < 0xd800 || v > 0xdfff) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (p + 3 >= end || (load<u8>(p + 1) & 0xc0) != 0x80 || (load<u8>(p + 2) & 0xc0) != 0x80 || (load<u8>(p + 3) & 0xc0) != 0x80) return 0;
    const v = ((c & 0x07) << 18) | ((<u32>load<u8>(p + 1) & 0x3f) << 12);
    return v >= 0x10000 && v <= 0x10ffff ? 4 : 0;
  }
  return 0;
}

/** UTF-16 length of a validated raw JSON string (escapes and multi-byte UTF-8 counted as decoded). */
function rawUnits(p: usize, len: i32): i32 {
  const end = p + <usize>len;
  let n: i32 = 0;
  while (p < end) {
    const c = <u32>load<u8>(p);
    if (c == 0x5c) {
      p += load<u8>(p + 1) == 0x75 ? 6 : 2;
    } else if (c < 0x80) {
      p++;
    } else if (c < 0xe0) {
      p += 2;
    } else if (c < 0xf0) {
      p += 3;
    } else {
      p += 4;
      n++; // a surrogate pair
    }
    n++;
  }
  return n;
}

function decodeRaw(kind: JsonKind, raw: usize, len: i32, complex: bool): string {
  if (kind != JsonKind.String) return String.UTF8.decodeUnsafe(raw, <usize>len);
  if (complex) return unescapeRange(raw, raw + <usize>len);
  return decodeKnown(raw, len); // roles, types and reasons are a few known words: no allocation
}

let numberErrorAt: usize = 0;

/** Where the last scanNumber that failed went wrong. */
export function lastNumberErrorAt(): usize { return numberErrorAt; }

/** The end of the JSON number at p, or 0 when it is not one (numberErrorAt: where it went wrong). */
export function scanNumber(p: usize, end: usize): usize {
  if (p < end && load<u8>(p) == 0x2d) p++;
  if (p >= end) { numberErrorAt = p; return 0; }
  const c = load<u8>(p);
  if (c == 0x30) {
    p++;
  } else if (c >= 0x31 && c <= 0x39) {
    while (p < end && load<u8>(p) >= 0x30 && load<u8>(p) <= 0x39) p++;
  } else {
    numberErrorAt = p;
    return 0;
  }
  if (p < end && load<u8>(p) == 0x2e) {
    p++;
    const digits = p;
    while (p < end && load<u8>(p) >= 0x30 && load<u8>(p) <= 0x39) p++;
    if (p == digits) { numberErrorAt = p; return 0; }
  }
  if (p < end && (load<u8>(p) == 0x65 || load<u8>(p) == 0x45)) {
    p++;
    if (p < end && (load<u8>(p) == 0x2b || load<u8>(p) == 0x2d)) p++;
    const digits = p;
    while (p < end && load<u8>(p) >= 0x30 && load<u8>(p) <= 0x39) p++;
    if (p == digits) { numberErrorAt = p; return 0; }
  }
  return p;
}

/** The first byte at or after p that is not JSON whitespace (end when none). */
@inline export function skipWs(p: usize, end: usize): usize {
  while (p < end) {
    const c = load<u8>(p);
    if (c != 0x20 && c != 0x0a && c != 0x0d && c != 0x09) break;
    p++;
  }
  return p;
}

/** The value of the validated JSON number at [p, p+len). */
export function numberAt(p: usize, len: i32): f64 {
  // Up to 15 digits with no fraction or exponent: exact in f64, computed from the bytes.
  const digits = load<u8>(p) == 0x2d ? len - 1 : len;
  if (digits <= 15) {
    const end = p + <usize>len;
    let q = p + <usize>(len - digits);
    while (q < end) {
      const c = load<u8>(q);
      if (c < 0x30 || c > 0x39) return parseFloat(String.UTF8.decodeUnsafe(p, <usize>len));
      q++;
    }
    return wholeNumber(p, len);
  }
  return parseFloat(String.UTF8.decodeUnsafe(p, <usize>len));
}

/** An integer of at most 15 digits (and a sign): exact in f64. */
function wholeNumber(p: usize, len: i32): f64 {
  const end = p + <usize>len;
  let neg = false;
  if (load<u8>(p) == 0x2d) {
    neg = true;
    p++;
  }
  let v: i64 = 0;
  while (p < end) {
    v = v * 10 + <i64>(load<u8>(p) - 0x30);
    p++;
  }
  return neg ? -<f64>v : <f64>v;
}

// Object keys and short values a gateway sees on every request and answer, kept as static
// strings: a parsed key or value equal to one of them costs no allocation (and compares by
// identity with the same literal).
const KNOWN_KEYS: StaticArray<string> = [
  "model", "messages", "role", "content", "type", "text", "name", "id", "index", "object",
  "tool_calls", "tool_call_id", "function", "arguments", "description", "parameters", "properties",
  "required", "tools", "tool_choice", "stream", "stream_options", "include_usage", "max_tokens",
  "max_completion_tokens", "temperature", "top_p", "top_k", "stop", "user", "system", "image_url",
  "url", "detail", "delta", "choices", "finish_reason", "usage", "prompt_tokens", "completion_tokens",
  "total_tokens", "created", "message", "logprobs", "refusal", "reasoning_content", "annotations",
  "prompt_tokens_details", "cached_tokens", "completion_tokens_details", "reasoning_tokens",
  "audio_tokens", "accepted_prediction_tokens", "rejected_prediction_tokens", "system_fingerprint",
  "service_tier", "error", "code", "param", "n", "seed", "response_format", "json_schema", "schema",
  "strict", "items", "enum", "additionalProperties", "input", "encoding_format", "dimensions",
  "embedding", "data", "content_block", "tool_use", "tool_result", "tool_use_id", "stop_reason",
  "stop_sequence", "stop_sequences", "input_tokens", "output_tokens", "cache_read_input_tokens",
  "cache_creation_input_tokens", "cache_control", "thinking", "signature", "metadata", "user_id",
  "source", "media_type", "is_error", "partial_json", "candidates", "parts", "usageMetadata",
  "promptTokenCount", "candidatesTokenCount", "totalTokenCount", "finishReason", "modelVersion",
  "responseId", "functionCall", "functionResponse", "args", "inlineData", "mimeType",
  "generationConfig", "systemInstruction", "contents", "thoughtsTokenCount",
  "cachedContentTokenCount", "parallel_tool_calls", "frequency_penalty", "presence_penalty",
  "logit_bias", "top_logprobs", "prediction", "modalities", "audio", "store", "reasoning_effort",
  // Values: roles, block and event types, reasons, schema types.
  "assistant", "developer", "tool", "string", "integer", "number", "boolean", "array", "null",
  "auto", "none", "any", "length", "chat.completion", "chat.completion.chunk", "end_turn",
  "text_delta", "input_json_delta", "thinking_delta", "signature_delta", "content_block_delta",
  "content_block_start", "content_block_stop", "message_start", "message_delta", "message_stop",
  "ping", "STOP", "MAX_TOKENS", "enabled", "image", "base64", "list", "json_object",
];

const KEY_SLOTS: i32 = 512; // a power of two, over twice the keys: short probe chains
const keySlots = new StaticArray<i32>(KEY_SLOTS); // index + 1 into KNOWN_KEYS, 0 = empty

@inline function keyHash(len: i32, first: u32, last: u32, mid: u32): i32 {
  return <i32>((<u32>len * 31 + first * 7 + last * 131 + mid * 17) & <u32>(KEY_SLOTS - 1));
}

function initKeySlots(): void {
  for (let i = 0; i < KNOWN_KEYS.length; i++) {
    const k = unchecked(KNOWN_KEYS[i]);
    const n = k.length;
    let h = keyHash(n, k.charCodeAt(0), k.charCodeAt(n - 1), k.charCodeAt(n >> 1));
    while (unchecked(keySlots[h]) != 0) h = (h + 1) & (KEY_SLOTS - 1);
    unchecked(keySlots[h] = i + 1);
  }
}
initKeySlots();

/** UTF-8 bytes as a string: a static one when they spell a known key or value, else decoded. */
export function decodeKnown(p: usize, len: i32): string {
  const k = internedKey(p, len);
  return k !== null ? k : String.UTF8.decodeUnsafe(p, <usize>len);
}

/** The static string equal to the ASCII bytes [p, p+len), or null. */
function internedKey(p: usize, len: i32): string | null {
  if (len == 0 || len > 40) return null;
  let h = keyHash(len, load<u8>(p), load<u8>(p + <usize>len - 1), load<u8>(p + <usize>(len >> 1)));
  while (true) {
    const slot = unchecked(keySlots[h]);
    if (slot == 0) return null;
    const k = unchecked(KNOWN_KEYS[slot - 1]);
    if (k.length == len && bytesAre(p, k)) return k;
    h = (h + 1) & (KEY_SLOTS - 1);
  }
}
/** True for a string value with at least one character. */
export function nonEmpty(v: JsonValue | null): bool {
  return v !== null && v.kind == JsonKind.String && (v.src !== null ? v.rawLen > 0 : v.s.length > 0);
}

/**
 * Parses UTF-8 JSON at [ptr, ptr+len). Null on error, with the reason in jsonError. Strings are
 * decoded at once (the bytes need not outlive the call); parseJson keeps them as bytes.
 * maxValues: most values (scalars and containers, at any depth) the tree may hold; past it the
 * parse fails and jsonTooManyValues is set. 0: jsonDefaultMaxValues.
 */
export function parseJsonAt(ptr: usize, len: usize, owner: ArrayBuffer | null = null, maxValues: i32 = 0): JsonValue | null {
  const p = new Parser(ptr, len, owner, maxValues > 0 ? maxValues : jsonDefaultMaxValues);
  jsonSawBadUtf8 = false;
  jsonSawDuplicateKey = false;
  jsonTooManyValues = false;
  const v = p.value(0);
  valStack.length = 0; // after an error, members of unfinished containers are still there
  keyStack.length = 0;
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

/** Parses a whole buffer; strings and numbers keep referring to it (see JsonValue.src). */
export function parseJson(buf: ArrayBuffer, maxValues: i32 = 0): JsonValue | null {
  return parseJsonAt(changetype<usize>(buf), <usize>buf.byteLength, buf, maxValues);
}

export function parseJsonString(s: string): JsonValue | null {
  return parseJson(String.UTF8.encode(s));
}

/**
 * Parses the JSON text that string value v holds (a tool call's arguments), as
 * parseJsonString(v.s) would, but from v's bytes: its escapes are resolved straight into UTF-8,
 * with no UTF-16 string decoded and encoded back.
 */
export function parseJsonText(v: JsonValue): JsonValue | null {
  if (v.src === null || v.kind != JsonKind.String) return parseJsonString(v.s);
  const buf = new ArrayBuffer(v.rawLen); // escapes only shorten the text
  const out = changetype<usize>(buf);
  let n = <usize>v.rawLen;
  if (v.rawComplex) n = unescapeUtf8(v.raw, v.raw + n, out) - out;
  else memory.copy(out, v.raw, n);
  return parseJsonAt(out, n, buf);
}

/**
 * Writes the UTF-8 of the validated raw string [begin, stop) at out, byte for byte what
 * String.UTF8.encode of its decoded text gives: an escaped surrogate pair as one four-byte
 * character, a lone escaped surrogate as three bytes (WTF-8, as that encoder writes it). Raw bytes
 * are valid UTF-8 (a string with invalid UTF-8 is never kept as bytes) and hold no surrogates, so
 * they are copied. Returns the end of what it wrote.
 */
function unescapeUtf8(begin: usize, stop: usize, out: usize): usize {
  let p = begin;
  while (p < stop) {
    const c = <u32>load<u8>(p);
    if (c != 0x5c) {
      store<u8>(out++, <u8>c);
      p++;
      continue;
    }
    const e = load<u8>(p + 1);
    p += 2;
    if (e != 0x75) {
      store<u8>(out++, <u8>(e == 0x62 ? 0x08 : e == 0x66 ? 0x0c : e == 0x6e ? 0x0a : e == 0x72 ? 0x0d : e == 0x74 ? 0x09 : e));
      continue;
    }
    let u = <u32>hex4(p, stop);
    p += 4;
    // A high surrogate followed by an escaped low one: one character past U+FFFF.
    if (u >= 0xd800 && u < 0xdc00 && p + 6 <= stop && load<u8>(p) == 0x5c && load<u8>(p + 1) == 0x75) {
      const lo = <u32>hex4(p + 2, stop);
      if (lo >= 0xdc00 && lo < 0xe000) {
        p += 6;
        const cp = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
        store<u8>(out, <u8>(0xf0 | (cp >> 18)));
        store<u8>(out + 1, <u8>(0x80 | ((cp >> 12) & 0x3f)));
        store<u8>(out + 2, <u8>(0x80 | ((cp >> 6) & 0x3f)));
        store<u8>(out + 3, <u8>(0x80 | (cp & 0x3f)));
        out += 4;
        continue;
      }
    }
    if (u < 0x80) {
      store<u8>(out++, <u8>u);
    } else if (u < 0x800) {
      store<u8>(out, <u8>(0xc0 | (u >> 6)));
      store<u8>(out + 1, <u8>(0x80 | (u & 0x3f)));
      out += 2;
    } else {
      store<u8>(out, <u8>(0xe0 | (u >> 12)));
      store<u8>(out + 1, <u8>(0x80 | ((u >> 6) & 0x3f)));
      store<u8>(out + 2, <u8>(0x80 | (u & 0x3f)));
      out += 3;
    }
  }
  return out;
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
    this.byte(0x22);
    return this.strRange(s, 0, s.length).byte(0x22);
  }

  /**
   * Appends the UTF-16 units [from, to) of s escaped as JSON string content, without quotes (to
   * write a string in pieces, e.g. with parts replaced, without building it first).
   */
  strRange(s: string, from: i32, to: i32): ByteBuilder {
    const n = to;
    // Most text is ASCII (one byte a unit); UTF-8 needs up to 3 and escapes up to 6. Reserve for
    // the common case and grow when the next unit might not fit, so a 10 MB base64 string costs
    // about 10 MB, not 60.
    this.reserve(n - from + 8);
    let out = changetype<usize>(this.buf) + <usize>this.len;
    let start = out;
    let limit = changetype<usize>(this.buf) + <usize>this.buf.byteLength;
    const src = changetype<usize>(s);
    for (let i = from; i < n; i++) {
      if (out + 8 > limit) {
        // Room for the worst case of this unit plus the closing quote.
        this.len += <i32>(out - start);
        this.grow(this.len + (n - i) * 3 + 16);
        out = changetype<usize>(this.buf) + <usize>this.len;
        start = out;
        limit = changetype<usize>(this.buf) + <usize>this.buf.byteLength;
      }
      // Four plain units at a time: ASCII, and none a quote, a backslash or a control character (the
      // test of scanString, on 16-bit lanes). Most text written is that.
      if (i + 4 <= n) {
        const w = load<u64>(src + (<usize>i << 1));
        const q = w ^ (LANES * 0x22);
        const b = w ^ (LANES * 0x5c);
        if (((w & NOT_ASCII_LANES) | ((((w - LANES * 0x20) & ~w) | ((q - LANES) & ~q) | ((b - LANES) & ~b)) & LANE_HIGHS)) == 0) {
          store<u32>(out, <u32>((w & 0xff) | ((w >> 8) & 0xff00) | ((w >> 16) & 0xff0000) | ((w >> 24) & 0xff000000)));
          out += 4;
          i += 3; // and the loop's one
          continue;
        }
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
    this.len += <i32>(out - start);
    return this;
  }

  /** A parsed string value, quoted: its source bytes when it has them (already valid JSON). */
  strValue(v: JsonValue): ByteBuilder {
    if (v.src === null) return this.str(v.s);
    this.reserve(v.rawLen + 2);
    const at = changetype<usize>(this.buf) + <usize>this.len;
    store<u8>(at, 0x22);
    memory.copy(at + 1, v.raw, <usize>v.rawLen);
    store<u8>(at + 1 + <usize>v.rawLen, 0x22);
    this.len += v.rawLen + 2;
    return this;
  }

  /** The content of a parsed string value without quotes, escaped as JSON (to splice into one). */
  strContent(v: JsonValue): ByteBuilder {
    if (v.src !== null) return this.bytes(v.raw, v.rawLen);
    const at = this.len;
    this.str(v.s);
    // Drop the quotes str() wrote around it.
    const base = changetype<usize>(this.buf);
    memory.copy(base + <usize>at, base + <usize>at + 1, <usize>(this.len - at - 2));
    this.len -= 2;
    return this;
  }

  /** A decimal integer, written in place (no string). */
  int(v: i64): ByteBuilder {
    this.reserve(20);
    this.len += <i32>writeDecimal(changetype<usize>(this.buf) + <usize>this.len, v);
    return this;
  }

  /** Writes a parsed JSON value back out (numbers exactly as they were written). */
  value(v: JsonValue): ByteBuilder {
    switch (v.kind) {
      case JsonKind.Null: return this.raw("null");
      case JsonKind.Bool: return this.raw(v.b ? "true" : "false");
      case JsonKind.Number: return v.src !== null ? this.bytes(v.raw, v.rawLen) : this.raw(v.s);
      case JsonKind.String: return this.strValue(v);
      case JsonKind.Array: {
        if (v.isNumberSpan()) return this.byte(0x5b).bytes(v.raw, v.rawLen).byte(0x5d); // numbers as written
        this.byte(0x5b);
        for (let i = 0, n = v.length; i < n; i++) {
          if (i > 0) this.byte(0x2c);
          this.value(v.at(i));
        }
        return this.byte(0x5d);
      }
      default: {
        this.byte(0x7b);
        for (let i = 0, n = v.length; i < n; i++) {
          if (i > 0) this.byte(0x2c);
          this.str(v.keyAt(i));
          this.byte(0x3a);
          this.value(v.at(i));
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
export function writeMerged(out: ByteBuilder, base: JsonValue, overrides: JsonValue, drop: string = "", drop2: string = ""): void {
  out.byte(0x7b);
  let n = 0;
  for (let i = 0, len = base.length; i < len; i++) {
    const k = base.keyAt(i);
    if (k == drop || k == drop2) continue;
    const o = overrides.get(k);
    if (n++) out.byte(0x2c);
    out.str(k).byte(0x3a).value(o !== null ? o : base.at(i));
  }
  for (let i = 0, len = overrides.length; i < len; i++) {
    const k = overrides.keyAt(i);
    if (base.get(k) !== null) continue;
    if (n++) out.byte(0x2c);
    out.str(k).byte(0x3a).value(overrides.at(i));
  }
  out.byte(0x7d);
}

/** A JSON string literal for s (quotes included). */
export function jsonString(s: string): string {
  const b = new ByteBuilder(s.length + 8);
  b.str(s);
  return b.toString();
}
