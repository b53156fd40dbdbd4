// A JSON reader that builds no tree: one pass over the body writes a tape, four u32 words per
// value (kind and flags, where its bytes are, how long they are, where the next value starts),
// into one buffer. A reader walks the tape by index and makes an object only for what it keeps
// (value(i)); a 32 KB request of a thousand values costs one buffer, not a thousand JsonValues and
// their member arrays for the collector to trace and free. The buffer is the parse's own, garbage
// with the tape: one kept from parse to parse would sit between the bodies that come and go
// around it, and the allocator could no longer join their freed blocks (a 256 KB prompt then
// doubled the VM's memory).
//
// It accepts and refuses exactly what lib/json.ts's parseJson does, with the same messages, value
// bound, depth bound and flags (bad UTF-8, repeated keys: the last value wins), so a filter reading
// the tape and one reading the tree see the same request (test/json-tape.test.ts holds them to it).
import {
  JsonKind, JsonValue, MAX_DEPTH, INDEX_KEYS_FROM, jsonDefaultMaxValues, scanString, scanNumber,
  lastScanFlags, lastScanError, lastScanErrorAt, lastNumberErrorAt, SCAN_ESCAPED, SCAN_HIGH,
  SCAN_BAD_UTF8, unescapeRange, decodeKnown, numberAt, skipWs,
} from "./json";
import { bytesAre } from "./ascii";

// The first word of an entry: the kind in the low three bits, then flags, then the number of
// items or members of a container (saturating; length() counts past it).
const KIND_MASK: u32 = 7;
const T_ESCAPED: u32 = 8; // a string with backslash escapes
const T_HIGH: u32 = 16; // a string with non-ASCII bytes
const T_BAD_UTF8: u32 = 32; // a string with invalid UTF-8 (read as U+FFFD, as the tree does)
const T_TRUE: u32 = 64;
const COUNT_SHIFT: u32 = 8;
const COUNT_MAX: u32 = 0xffffff;

/**
 * A parsed JSON text as a tape. Entry 0 is the top-level value. A container's children follow it
 * in order (an object's as key, value, key, value...); next(i) skips a value with all it holds.
 * Values made by value(i) and strings read stay valid after the tape is dropped.
 */
export class JsonTape {
  src: ArrayBuffer | null = null;
  base: usize = 0;
  words: StaticArray<u32>;
  count: i32 = 0;
  /** The text parsed (else error says why). */
  ok: bool = false;
  /** Why the last parse failed (empty when it succeeded): as lib/json.ts's jsonError words it. */
  error: string = "";
  sawBadUtf8: bool = false;
  sawDuplicateKey: bool = false;
  tooManyValues: bool = false;

  // The parse in progress.
  private p: usize = 0;
  private end: usize = 0;
  private left: i32 = 0;
  private maxValues: i32 = 0;

  constructor(entries: i32) {
    this.words = new StaticArray<u32>(entries << 2);
  }

  @inline private at(i: i32): usize {
    return changetype<usize>(this.words) + (<usize>i << 4);
  }

  /** Value i's kind; Null for -1 (what get() returns for a missing member), so checks chain. */
  kind(i: i32): JsonKind { return i < 0 ? JsonKind.Null : <JsonKind>(load<u32>(this.at(i)) & KIND_MASK); }
  isString(i: i32): bool { return this.kind(i) == JsonKind.String; }
  isArray(i: i32): bool { return this.kind(i) == JsonKind.Array; }
  isObject(i: i32): bool { return this.kind(i) == JsonKind.Object; }
  isBool(i: i32): bool { return this.kind(i) == JsonKind.Bool; }
  /**
   * The values of members `names` of object i, in one pass over its keys: out[k] is the value of
   * names[k] (the last one, when the key is repeated, as get() gives), or -1. A get() per name would
   * walk the keys once per name. A key is compared only with the names of its length (an escaped
   * key by its decoded length); the names are ASCII.
   */
  getAll(i: i32, names: StaticArray<string>, out: StaticArray<i32>): void {
    for (let k = 0; k < names.length; k++) unchecked((out[k] = -1));
    if (this.kind(i) != JsonKind.Object) return;
    for (let j = i + 1, end = this.next(i); j < end; j = this.next(j + 1)) {
      const n = (load<u32>(this.at(j)) & (T_ESCAPED | T_BAD_UTF8)) != 0 ? this.str(j).length : this.bytes(j);
      for (let k = 0; k < names.length; k++) {
        const name = unchecked(names[k]);
        if (name.length == n && this.is(j, name)) {
          unchecked((out[k] = j + 1));
          break;
        }
      }
    }
  }
  /** A Bool that is true. */
  isTrue(i: i32): bool { return i >= 0 && (load<u32>(this.at(i)) & T_TRUE) != 0; }

  /** Where value i's bytes start: a string's after its opening quote, a container's at its bracket. */
  ptr(i: i32): usize { return this.base + <usize>load<u32>(this.at(i), 4); }
  /** Length of value i's bytes: a string's between the quotes, a container's brackets included. */
  bytes(i: i32): i32 { return <i32>load<u32>(this.at(i), 8); }
  /** The entry after value i and everything it holds. */
  next(i: i32): i32 { return <i32>load<u32>(this.at(i), 12); }

  /** Items of an array, members of an object; 0 for anything else. */
  length(i: i32): i32 {
    if (this.kind(i) < JsonKind.Array) return 0;
    const n = load<u32>(this.at(i)) >> COUNT_SHIFT;
    if (n < COUNT_MAX) return <i32>n;
    const obj = this.kind(i) == JsonKind.Object;
    let c = 0;
    for (let j = i + 1, end = this.next(i); j < end; j = this.next(obj ? j + 1 : j)) c++;
    return c;
  }

  /** The value of member `key` of object i (the last one, when the key is repeated), or -1. */
  get(i: i32, key: string): i32 {
    if (this.kind(i) != JsonKind.Object) return -1;
    let found = -1;
    for (let j = i + 1, end = this.next(i); j < end; j = this.next(j + 1)) {
      if (this.is(j, key)) found = j + 1;
    }
    return found;
  }

  /** Value i is a string equal to s (compared on the bytes when it can be). */
  is(i: i32, s: string): bool {
    if (i < 0) return false;
    const w = load<u32>(this.at(i));
    if ((w & KIND_MASK) != <u32>JsonKind.String) return false;
    if ((w & (T_ESCAPED | T_HIGH | T_BAD_UTF8)) != 0) return this.str(i) == s;
    return this.bytes(i) == s.length && bytesAre(this.ptr(i), s);
  }

  /** A string's value decoded (a static string for a known word), or the number as written. */
  str(i: i32): string {
    if (i < 0) return "";
    const w = load<u32>(this.at(i));
    const p = this.ptr(i);
    const n = this.bytes(i);
    const k = w & KIND_MASK;
    if (k == <u32>JsonKind.Number) return String.UTF8.decodeUnsafe(p, <usize>n);
    if (k != <u32>JsonKind.String) return "";
    if ((w & (T_ESCAPED | T_BAD_UTF8)) != 0) return unescapeRange(p, p + <usize>n);
    return decodeKnown(p, n);
  }

  /** A number's value (0 for anything else). */
  num(i: i32): f64 {
    return this.kind(i) == JsonKind.Number ? numberAt(this.ptr(i), this.bytes(i)) : 0;
  }

  /**
   * A string, number, bool or null as a JsonValue, kept as the body's bytes as the tree keeps it
   * (a string with invalid UTF-8 is decoded, as the tree decodes it). Not for containers.
   */
  value(i: i32): JsonValue {
    const v = new JsonValue();
    if (i < 0) return v;
    const w = load<u32>(this.at(i));
    const k = w & KIND_MASK;
    if (k == <u32>JsonKind.String) {
      if ((w & T_BAD_UTF8) != 0 || this.src === null) {
        v.kind = JsonKind.String;
        v.s = this.str(i);
      } else v.setRaw(this.src as ArrayBuffer, this.ptr(i), this.bytes(i), (w & (T_ESCAPED | T_HIGH)) != 0);
    } else if (k == <u32>JsonKind.Number) {
      if (this.src !== null) v.setRawNumber(this.src as ArrayBuffer, this.ptr(i), this.bytes(i));
      else {
        v.kind = JsonKind.Number;
        v.s = this.str(i);
      }
    } else if (k == <u32>JsonKind.Bool) {
      v.kind = JsonKind.Bool;
      v.b = (w & T_TRUE) != 0;
    }
    return v;
  }

  // ------------------------------------------------------------------------------------ parsing

  read(buf: ArrayBuffer, maxValues: i32): bool {
    this.src = buf;
    this.base = changetype<usize>(buf);
    this.p = this.base;
    this.end = this.base + <usize>buf.byteLength;
    this.count = 0;
    this.error = "";
    this.sawBadUtf8 = this.sawDuplicateKey = this.tooManyValues = false;
    this.maxValues = this.left = maxValues > 0 ? maxValues : jsonDefaultMaxValues;
    keyTop = 0;
    if (!this.readValue(0)) return false;
    this.p = skipWs(this.p, this.end);
    if (this.p != this.end) return this.fail("unexpected data after the JSON value");
    this.ok = true;
    return true;
  }

  private fail(msg: string): bool {
    if (this.error.length == 0) this.error = msg + " at byte " + (this.p - this.base).toString();
    return false;
  }

  private push(w: u32, p: usize, len: usize): i32 {
    const i = this.count;
    if ((i + 1) << 2 > this.words.length) {
      const grown = new StaticArray<u32>(this.words.length << 1);
      memory.copy(changetype<usize>(grown), changetype<usize>(this.words), <usize>i << 4);
      this.words = grown;
    }
    const a = this.at(i);
    store<u32>(a, w);
    store<u32>(a, <u32>(p - this.base), 4);
    store<u32>(a, <u32>len, 8);
    store<u32>(a, <u32>(i + 1), 12);
    this.count = i + 1;
    return i;
  }

  private readValue(depth: i32): bool {
    if (depth > MAX_DEPTH) return this.fail("nesting deeper than " + MAX_DEPTH.toString());
    if (--this.left < 0) {
      this.tooManyValues = true;
      return this.fail("more than " + this.maxValues.toString() + " values");
    }
    this.p = skipWs(this.p, this.end);
    if (this.p >= this.end) return this.fail("unexpected end of input");
    const c = load<u8>(this.p);
    if (c == 0x7b || c == 0x5b) return this.container(depth, c == 0x7b);
    if (c == 0x22) return this.string() >= 0;
    if (c == 0x74) return this.literal("true", JsonKind.Bool, T_TRUE);
    if (c == 0x66) return this.literal("false", JsonKind.Bool, 0);
    if (c == 0x6e) return this.literal("null", JsonKind.Null, 0);
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) {
      const q = scanNumber(this.p, this.end);
      if (q == 0) {
        this.p = lastNumberErrorAt();
        return this.fail("invalid number");
      }
      this.push(<u32>JsonKind.Number, this.p, q - this.p);
      this.p = q;
      return true;
    }
    return this.fail("unexpected character");
  }

  private literal(word: string, kind: JsonKind, flags: u32): bool {
    const n = <usize>word.length;
    if (this.p + n > this.end || !bytesAre(this.p, word)) return this.fail("invalid literal");
    this.push(<u32>kind | flags, this.p, n);
    this.p += n;
    return true;
  }

  /** The string at p (its opening quote): its entry, or -1 when it is not valid. */
  private string(): i32 {
    const begin = this.p + 1;
    const q = scanString(begin, this.end);
    if (q == 0) {
      this.p = lastScanErrorAt();
      this.fail(lastScanError());
      return -1;
    }
    const f = lastScanFlags();
    let w = <u32>JsonKind.String;
    if ((f & SCAN_ESCAPED) != 0) w |= T_ESCAPED;
    if ((f & SCAN_HIGH) != 0) w |= T_HIGH;
    if ((f & SCAN_BAD_UTF8) != 0) {
      w |= T_BAD_UTF8;
      this.sawBadUtf8 = true;
    }
    this.p = q + 1;
    return this.push(w, begin, q - begin);
  }

  private container(depth: i32, object: bool): bool {
    const start = this.p;
    const self = this.push(object ? <u32>JsonKind.Object : <u32>JsonKind.Array, start, 0);
    const close: u8 = object ? 0x7d : 0x5d;
    const keyBase = keyTop;
    let n: u32 = 0;
    this.p = skipWs(this.p + 1, this.end);
    if (this.p < this.end && load<u8>(this.p) == close) {
      this.p++;
    } else {
      while (true) {
        if (object) {
          this.p = skipWs(this.p, this.end);
          if (this.p >= this.end || load<u8>(this.p) != 0x22) return this.fail("expected a string key");
          const key = this.string();
          if (key < 0) return false;
          pushKey(key);
          this.p = skipWs(this.p, this.end);
          if (this.p >= this.end || load<u8>(this.p) != 0x3a) return this.fail("expected :");
          this.p++;
        }
        if (!this.readValue(depth + 1)) return false;
        n++;
        this.p = skipWs(this.p, this.end);
        if (this.p >= this.end) return this.fail(object ? "unterminated object" : "unterminated array");
        const c = load<u8>(this.p);
        this.p++;
        if (c == 0x2c) continue;
        if (c == close) break;
        this.p--;
        return this.fail(object ? "expected , or }" : "expected , or ]");
      }
    }
    if (object) {
      if (this.repeats(keyBase)) this.sawDuplicateKey = true;
      keyTop = keyBase;
    }
    const a = this.at(self);
    store<u32>(a, load<u32>(a) | ((n < COUNT_MAX ? n : COUNT_MAX) << COUNT_SHIFT));
    store<u32>(a, <u32>(this.p - start), 8);
    store<u32>(a, <u32>this.count, 12);
    return true;
  }

  /** The keys on keyStack from keyBase hold one twice. */
  private repeats(keyBase: i32): bool {
    const n = keyTop - keyBase;
    if (n < INDEX_KEYS_FROM) {
      for (let a = 1; a < n; a++) {
        const ka = keyAt(keyBase + a);
        for (let b = 0; b < a; b++) if (this.sameKey(ka, keyAt(keyBase + b))) return true;
      }
      return false;
    }
    // Many keys: a set of them, else n keys would cost n²/2 comparisons (see lib/json.ts).
    const seen = new Set<string>();
    for (let a = 0; a < n; a++) {
      const k = this.str(keyAt(keyBase + a));
      if (seen.has(k)) return true;
      seen.add(k);
    }
    return false;
  }

  private sameKey(a: i32, b: i32): bool {
    const wa = load<u32>(this.at(a));
    const wb = load<u32>(this.at(b));
    if (((wa | wb) & (T_ESCAPED | T_BAD_UTF8)) != 0) return this.str(a) == this.str(b);
    const n = this.bytes(a);
    return n == this.bytes(b) && memory.compare(this.ptr(a), this.ptr(b), <usize>n) == 0;
  }
}

// The key entries of the objects being read, keyTop of them (one parse runs at a time in a VM).
let keyStack = new StaticArray<i32>(64);
let keyTop: i32 = 0;

function pushKey(key: i32): void {
  if (keyTop == keyStack.length) {
    const grown = new StaticArray<i32>(keyTop << 1);
    memory.copy(changetype<usize>(grown), changetype<usize>(keyStack), <usize>keyTop << 2);
    keyStack = grown;
  }
  store<i32>(changetype<usize>(keyStack) + (<usize>keyTop << 2), key);
  keyTop++;
}

@inline function keyAt(i: i32): i32 {
  return load<i32>(changetype<usize>(keyStack) + (<usize>i << 2));
}

/**
 * Parses a whole buffer into a tape; `ok` false and `error` say when it is not JSON. maxValues
 * bounds the values as parseJson's does (0: jsonDefaultMaxValues).
 */
export function parseTape(buf: ArrayBuffer, maxValues: i32 = 0): JsonTape {
  // A chat request holds an entry per 20 bytes or so, but a long prompt is one entry for many
  // kilobytes: the guess is capped (16 KB of tape), and a tape that needs more doubles.
  const guess = buf.byteLength >> 4;
  const t = new JsonTape(guess < 64 ? 64 : guess > 1024 ? 1024 : guess);
  t.read(buf, maxValues);
  return t;
}
