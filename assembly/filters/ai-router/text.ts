// The prompt texts the rules read, read where they lie in the request body. A text is a list of
// JSON string values joined by a separator; it is never joined, lowered or decoded whole: a 256 KB
// prompt used to be decoded into a UTF-16 string (twice its size), then lowered and joined into
// more copies, all alive at once in a VM whose memory never shrinks. Readers see UTF-16 code units
// at offsets of the joined text, exactly as the decoded and joined string would hold them:
// - a value that is plain ASCII without escapes is read from the body's bytes, one byte a unit;
// - a value already decoded (the short ones, prompt.ts decodeShortParts) from its string;
// - any other value from its raw bytes, decoded as it goes (escapes, UTF-8), forwards only.
import { JsonValue, hex4, utf8Length } from "../../lib/json";
import { foldCase } from "../../lib/regex";

// Room for the parts most texts have (a message's text parts, a short conversation), made with the
// first part: growing from empty would reallocate on the first add, through the allocator's slow
// path. A text that never gets a part (most requests' default last user turn) allocates nothing.
const PARTS: i32 = 8;

export class Text {
  // The parts and each one's length in UTF-16 code units (counting a raw string's units is a pass
  // over it), `count` of them; null until the first add.
  private values: StaticArray<JsonValue> | null = null;
  private units: StaticArray<i32> | null = null;
  /** Number of parts. */
  count: i32 = 0;
  /** Length of the joined text in UTF-16 code units. */
  length: i32 = 0;
  sep: string;

  constructor(sep: string) {
    this.sep = sep;
  }

  /** Part i (0 <= i < count). */
  part(i: i32): JsonValue {
    return unchecked((this.values as StaticArray<JsonValue>)[i]);
  }

  /** Length of part i in UTF-16 code units (0 <= i < count). */
  partLength(i: i32): i32 {
    return unchecked((this.units as StaticArray<i32>)[i]);
  }

  /** Appends a string value of n units (JsonValue.units); empty ones are skipped (as the joined text never held them). */
  add(v: JsonValue, n: i32): void {
    if (n == 0) return;
    const i = this.count;
    let values = this.values;
    let units = this.units;
    if (values === null || units === null) {
      values = this.values = new StaticArray<JsonValue>(PARTS);
      units = this.units = new StaticArray<i32>(PARTS);
    } else if (i == values.length) {
      const grownValues = new StaticArray<JsonValue>(i << 1);
      const grownUnits = new StaticArray<i32>(i << 1);
      for (let k = 0; k < i; k++) {
        unchecked((grownValues[k] = unchecked(values[k])));
        unchecked((grownUnits[k] = unchecked(units[k])));
      }
      values = this.values = grownValues;
      units = this.units = grownUnits;
    }
    if (i) this.length += this.sep.length;
    unchecked((values[i] = v));
    unchecked((units[i] = n));
    this.count = i + 1;
    this.length += n;
  }

  /** Units [start, end) as a string: the only copy, of just that range. */
  slice(start: i32, end: i32): string {
    return this.copy(start, end, false);
  }

  /** Units [start, end) case-folded (lib/regex foldCase, unit by unit, as foldString would): one copy, not two. */
  foldedSlice(start: i32, end: i32): string {
    return this.copy(start, end, true);
  }

  private copy(start: i32, end: i32, fold: bool): string {
    if (start < 0) start = 0;
    if (end > this.length) end = this.length;
    if (end <= start) return "";
    const out = changetype<string>(__new(<usize>(end - start) << 1, idof<string>()));
    const dst = changetype<usize>(out);
    const src = new TextUnits(this);
    // A run of units at a time: the reader's window (a plain part's bytes, a decoded window, the
    // separator) is copied in one loop, not unit by unit through unit().
    let i = start;
    while (i < end) {
      src.unit(i); // moves the window to the run holding i
      const stop = end < src.hi ? end : src.hi;
      const from = src.ptr + <usize>(i - src.lo);
      const to = dst + (<usize>(i - start) << 1);
      const n = <usize>(stop - i);
      if (src.wide) {
        if (fold) for (let k: usize = 0; k < n; k++) store<u16>(to + (k << 1), <u16>foldCase(<i32>load<u16>(from + (k << 1))));
        else memory.copy(to, from, n << 1);
      } else if (fold) {
        for (let k: usize = 0; k < n; k++) store<u16>(to + (k << 1), <u16>foldCase(<i32>load<u8>(from + k)));
      } else {
        for (let k: usize = 0; k < n; k++) store<u16>(to + (k << 1), <u16>load<u8>(from + k));
      }
      i = stop;
    }
    return out;
  }
}

// Units of a part decoded as read, per window: small, and reused while the reader lives.
const WINDOW: i32 = 1024;

/**
 * Reads a Text's code units by offset. Offsets read should mostly increase, as a scan's do: the
 * piece (part or separator) an offset falls in is found by stepping forward, and a part with
 * escapes or non-ASCII characters is decoded forwards, a window at a time; going back before the
 * window restarts that part.
 */
@final export class TextUnits {
  text: Text;
  // The units [lo, hi) are at ptr: UTF-16 (wide) or one byte each.
  lo: i32 = 0;
  hi: i32 = 0;
  ptr: usize = 0;
  wide: bool = false;
  // The piece the window is in: 2k is part k, 2k - 1 the separator before it; its offsets.
  piece: i32 = -1;
  start: i32 = 0;
  end: i32 = 0;
  // A part decoded as read: its bytes not yet decoded, a pending low surrogate, the offset of the
  // next unit, and the window's buffer.
  decoding: bool = false;
  p: usize = 0;
  stop: usize = 0;
  low: i32 = -1;
  next: i32 = 0;
  buf: StaticArray<u16> | null = null;

  constructor(text: Text) {
    this.text = text;
  }

  /** Code unit i of the text (0 <= i < text.length). */
  @inline unit(i: i32): i32 {
    if (i < this.lo || i >= this.hi) this.move(i);
    const off = <usize>(i - this.lo);
    return this.wide ? <i32>load<u16>(this.ptr + (off << 1)) : <i32>load<u8>(this.ptr + off);
  }

  private move(i: i32): void {
    if (i < this.start || i >= this.end) this.seek(i);
    if (!this.decoding) return;
    if (i < this.lo) this.restart();
    // Decode windows forwards until one holds i.
    let buf = this.buf;
    if (buf === null) {
      buf = new StaticArray<u16>(WINDOW);
      this.buf = buf;
    }
    this.ptr = changetype<usize>(buf);
    this.wide = true;
    while (i >= this.hi) {
      this.lo = this.next;
      let n = this.end - this.next;
      if (n > WINDOW) n = WINDOW;
      const dst = changetype<usize>(buf);
      for (let k = 0; k < n; k++) {
        // Most units are plain ASCII: copied without the decoder.
        const p = this.p;
        const c = p < this.stop ? <i32>load<u8>(p) : 0x80;
        if (c < 0x80 && c != 0x5c && this.low < 0) {
          store<u16>(dst + (<usize>k << 1), <u16>c);
          this.p = p + 1;
        } else store<u16>(dst + (<usize>k << 1), <u16>this.decodeOne());
      }
      this.next += n;
      this.hi = this.next;
    }
  }

  private seek(i: i32): void {
    if (i < this.start) {
      this.piece = -1;
      this.end = 0;
    }
    const t = this.text;
    while (i >= this.end) {
      const k = ++this.piece;
      this.start = this.end;
      this.decoding = false;
      this.wide = true;
      if (k & 1) {
        this.ptr = changetype<usize>(t.sep);
        this.end = this.start + t.sep.length;
      } else {
        const v = t.part(k >> 1);
        this.end = this.start + t.partLength(k >> 1);
        if (v.src === null) this.ptr = changetype<usize>(v.s);
        else if (!v.rawComplex) {
          this.ptr = v.raw;
          this.wide = false;
        } else this.decoding = true;
      }
    }
    this.lo = this.start;
    this.hi = this.end;
    if (this.decoding) this.restart();
  }

  private restart(): void {
    const v = this.text.part(this.piece >> 1);
    this.p = v.raw;
    this.stop = v.raw + <usize>v.rawLen;
    this.low = -1;
    this.next = this.start;
    this.lo = this.hi = this.start;
  }

  /** The next UTF-16 unit of the raw string, as lib/json.ts's unescapeRange writes it. */
  private decodeOne(): i32 {
    if (this.low >= 0) {
      const l = this.low;
      this.low = -1;
      return l;
    }
    const p = this.p;
    const stop = this.stop;
    if (p >= stop) return 0xfffd; // unreachable for a parsed string (its units are counted alike)
    const c = <u32>load<u8>(p);
    if (c == 0x5c) {
      const e = load<u8>(p + 1);
      this.p = p + 2;
      if (e == 0x22) return 0x22;
      if (e == 0x5c) return 0x5c;
      if (e == 0x2f) return 0x2f;
      if (e == 0x62) return 0x08;
      if (e == 0x66) return 0x0c;
      if (e == 0x6e) return 0x0a;
      if (e == 0x72) return 0x0d;
      if (e == 0x74) return 0x09;
      this.p = p + 6; // \uXXXX, validated by the parser; a lone surrogate stays as it is
      return hex4(p + 2, stop) & 0xffff;
    }
    if (c < 0x80) {
      this.p = p + 1;
      return <i32>c;
    }
    // Multi-byte UTF-8; an invalid sequence is U+FFFD.
    let cp: u32 = 0xfffd;
    const len = utf8Length(p, stop);
    if (len == 2) cp = ((c & 0x1f) << 6) | (<u32>load<u8>(p + 1) & 0x3f);
    else if (len == 3) cp = ((c & 0x0f) << 12) | ((<u32>load<u8>(p + 1) & 0x3f) << 6) | (<u32>load<u8>(p + 2) & 0x3f);
    else if (len == 4) cp = ((c & 0x07) << 18) | ((<u32>load<u8>(p + 1) & 0x3f) << 12) | ((<u32>load<u8>(p + 2) & 0x3f) << 6) | (<u32>load<u8>(p + 3) & 0x3f);
    this.p = p + (len == 0 ? 1 : len);
    if (cp >= 0x10000) {
      const v = cp - 0x10000;
      this.low = <i32>(0xdc00 | (v & 0x3ff));
      return <i32>(0xd800 | (v >> 10));
    }
    return <i32>cp;
  }
}
