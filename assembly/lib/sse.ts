// Server-sent events framing (WHATWG HTML, "event stream interpretation"), incremental over bytes.
//
// Response bodies reach a filter in chunks cut anywhere: inside a line, inside "\r\n", inside a
// multi-byte UTF-8 character. The parser keeps only the unfinished tail between chunks (and the
// chunk holding a data line until its event ends), and hands out an event only once it is
// complete, so a split can never corrupt text.
//
// What it keeps of an unfinished event is bounded (maxEvent): a provider that streams one event
// that never ends (no blank line) would otherwise grow the VM's memory, which never shrinks,
// without limit. Past the bound the parser stops (overflowed) and hands out nothing more.
import { decodeKnown } from "./json";
import { bytesAre, ONES, HIGHS } from "./ascii";

/**
 * One event. Its data stays as UTF-8 bytes (in the chunk it came in, or a copy when it spanned
 * chunks or lines), since decoders parse JSON from bytes: decoding to a string first would cost an
 * allocation and a transcoding each way. Valid until the parser is fed again.
 */
export class SseEvent {
  event: string = "";
  /**
   * The event's `id` field when it had one ("" otherwise). MCP servers number their events for
   * resumption (a client reconnects with Last-Event-ID): a filter that writes an event again keeps it.
   */
  id: string = "";
  /**
   * A comment line (": keep-alive"), handed out in order with the events so a caller that passes
   * a stream on can pass keep-alives on too; its text (after the colon) is the data.
   */
  comment: bool = false;
  /** The data came in several data lines, joined with "\n" (written back, it needs them again). */
  multiline: bool = false;
  /** Keeps the bytes alive; [ptr, ptr + len) is the data. */
  owner: ArrayBuffer = EMPTY;
  ptr: usize = 0;
  len: i32 = 0;

  /** True when the data is exactly the ASCII text s (e.g. OpenAI's "[DONE]"). */
  dataIs(s: string): bool {
    return this.len == s.length && bytesAre(this.ptr, s);
  }
}

const EMPTY = new ArrayBuffer(0);

/**
 * Index of the first \n or \r in [ptr + i, ptr + len), or len. Eight bytes at a time (a byte of w
 * is zero exactly where (w - ONES) & ~w & HIGHS has its high bit): event lines are long, breaks few.
 */
function lineBreak(ptr: usize, i: i32, len: i32): i32 {
  while (i + 8 <= len) {
    const w = load<u64>(ptr + <usize>i);
    const lf = w ^ (ONES * 0x0a);
    const cr = w ^ (ONES * 0x0d);
    if ((((lf - ONES) & ~lf) | ((cr - ONES) & ~cr)) & HIGHS) break;
    i += 8;
  }
  while (i < len) {
    const c = load<u8>(ptr + <usize>i);
    if (c == 0x0a || c == 0x0d) return i;
    i++;
  }
  return len;
}

/** A carried-over line buffer larger than this is let go once its line is read. */
const TAIL_KEEP: i32 = 64 * 1024;

export class SseParser {
  /**
   * The most bytes of one unfinished event (its data lines so far and the line being read) kept
   * at once; past it the parser overflows. Default: no bound (a body already bounded as a whole).
   */
  constructor(public maxEvent: i32 = i32.MAX_VALUE) {}

  /** An event grew past maxEvent: the parser let go of it and reads nothing more. */
  overflowed: bool = false;
  /** Bytes of the event the parser let go of (what it had of it, and the line that crossed). */
  overflowBytes: i64 = 0;

  // Bytes of the unfinished line carried over from the previous chunk.
  private tail: ArrayBuffer = new ArrayBuffer(0);
  private tailLen: i32 = 0;
  // Fields of the event being assembled: its data bytes (see SseEvent) and how many data lines.
  private eventName: string = "";
  private eventId: string = "";
  private dataOwner: ArrayBuffer = EMPTY;
  private dataPtr: usize = 0;
  private dataLen: i32 = 0;
  private hasData: bool = false;
  private dataLines: i32 = 0;
  // The chunk being fed (the owner of data lines read straight from it).
  private chunk: ArrayBuffer = EMPTY;
  // Events handed out by feed/finish, reused from call to call (callers never keep them).
  private events: Array<SseEvent> = [];
  private spare: Array<SseEvent> = [];
  // A chunk that ended right after "\r": a following "\n" belongs to the same line break.
  private skipLf: bool = false;
  // Bytes seen in total (for limits and tests).
  seen: i64 = 0;

  /** Feeds a chunk; returns the events completed by it, in order (valid until the next call). */
  feed(chunk: ArrayBuffer): Array<SseEvent> {
    const out = this.reset();
    const ptr = changetype<usize>(chunk);
    const len = chunk.byteLength;
    this.seen += len;
    if (this.overflowed) return out;
    this.chunk = chunk;
    let i: i32 = 0;
    if (this.skipLf && len > 0) {
      if (load<u8>(ptr) == 0x0a) i = 1;
      this.skipLf = false;
    }
    let lineStart = i;
    while (true) {
      i = lineBreak(ptr, i, len);
      if (i >= len) break;
      const c = load<u8>(ptr + <usize>i);
      this.line(ptr + <usize>lineStart, i - lineStart, out);
      if (this.overflowed) break;
      if (c == 0x0d) {
        if (i + 1 < len) {
          if (load<u8>(ptr + <usize>i + 1) == 0x0a) i++;
        } else {
          this.skipLf = true;
        }
      }
      i++;
      lineStart = i;
    }
    if (lineStart < len && !this.overflowed) this.keep(ptr + <usize>lineStart, len - lineStart);
    // A large line buffer is not kept once its line is read (events never point into it: what
    // they take from it is copied).
    if (this.tailLen == 0 && this.tail.byteLength > TAIL_KEEP) this.tail = new ArrayBuffer(0);
    this.chunk = EMPTY;
    return out;
  }

  private reset(): Array<SseEvent> {
    const out = this.events;
    for (let i = 0; i < out.length; i++) this.spare.push(unchecked(out[i]));
    out.length = 0;
    return out;
  }

  /** True while an event or a line has begun but not ended (the stream stopped mid-event). */
  get pending(): bool {
    return this.tailLen > 0 || this.hasData || this.eventName.length > 0;
  }

  /** At end of stream: an event still open without its blank line is dispatched, as clients do. */
  finish(): Array<SseEvent> {
    const out = this.reset();
    if (this.overflowed) return out;
    if (this.tailLen > 0) this.line(0, 0, out, true);
    if (this.hasData) this.dispatch(out);
    return out;
  }

  private keep(ptr: usize, len: i32): void {
    const need = this.tailLen + len;
    if (<i64>need + <i64>this.dataLen > <i64>this.maxEvent) {
      this.overflow(<i64>need + <i64>this.dataLen);
      return;
    }
    if (need > this.tail.byteLength) {
      let size = need < 256 ? 256 : need * 2;
      if (size > this.maxEvent && need <= this.maxEvent) size = this.maxEvent; // never past the bound
      const grown = new ArrayBuffer(size);
      memory.copy(changetype<usize>(grown), changetype<usize>(this.tail), <usize>this.tailLen);
      this.tail = grown;
    }
    memory.copy(changetype<usize>(this.tail) + <usize>this.tailLen, ptr, <usize>len);
    this.tailLen = need;
  }

  // Processes one complete line, prefixed by any carried-over tail.
  private line(ptr: usize, len: i32, out: Array<SseEvent>, tailOnly: bool = false): void {
    let p = ptr;
    let n = len;
    if (this.tailLen > 0) {
      if (!tailOnly) this.keep(ptr, len);
      if (this.overflowed) return;
      p = changetype<usize>(this.tail);
      n = this.tailLen;
      this.tailLen = 0;
    }
    if (n == 0) {
      if (this.hasData) this.dispatch(out);
      else {
        this.eventName = "";
        this.eventId = "";
      }
      return;
    }
    if (load<u8>(p) == 0x3a) {
      this.commentLine(p + 1, n - 1, p != ptr, out);
      return;
    }
    // field name up to ':'
    let colon: i32 = -1;
    for (let j: i32 = 0; j < n; j++) {
      if (load<u8>(p + <usize>j) == 0x3a) {
        colon = j;
        break;
      }
    }
    let nameLen = colon < 0 ? n : colon;
    let valueAt = colon < 0 ? n : colon + 1;
    if (valueAt < n && load<u8>(p + <usize>valueAt) == 0x20) valueAt++;
    const valueLen = n - valueAt;
    if (nameLen == 4 && load<u32>(p) == 0x61746164) {
      // "data"
      this.addData(p + <usize>valueAt, valueLen, p != ptr);
    } else if (nameLen == 5 && load<u32>(p) == 0x6e657665 && load<u8>(p + 4) == 0x74) {
      // "event"
      this.eventName = decodeKnown(p + <usize>valueAt, valueLen);
    } else if (nameLen == 2 && load<u16>(p) == 0x6469) {
      // "id" (an id with NUL is ignored, as the WHATWG algorithm says; its length is bounded by maxEvent like any line)
      let nul = false;
      for (let j = valueAt; j < n; j++) if (load<u8>(p + <usize>j) == 0) nul = true;
      if (!nul) this.eventId = decodeKnown(p + <usize>valueAt, valueLen);
    }
    // retry does not matter to a gateway translating the stream.
  }

  /**
   * One data line. A line read from the chunk is referenced where it is; one assembled in the
   * carried-over tail (which the next line reuses), or a second line of the same event (joined
   * with "\n"), is copied.
   */
  private addData(p: usize, n: i32, fromTail: bool): void {
    const size: i64 = this.hasData ? <i64>this.dataLen + 1 + <i64>n : <i64>n;
    if (size > <i64>this.maxEvent) {
      this.overflow(size);
      return;
    }
    this.dataLines++;
    if (!this.hasData) {
      this.hasData = true;
      if (!fromTail) {
        this.dataOwner = this.chunk;
        this.dataPtr = p;
        this.dataLen = n;
        return;
      }
      const copy = new ArrayBuffer(n);
      memory.copy(changetype<usize>(copy), p, <usize>n);
      this.setData(copy);
      return;
    }
    const joined = new ArrayBuffer(this.dataLen + 1 + n);
    const at = changetype<usize>(joined);
    memory.copy(at, this.dataPtr, <usize>this.dataLen);
    store<u8>(at + <usize>this.dataLen, 0x0a);
    memory.copy(at + <usize>this.dataLen + 1, p, <usize>n);
    this.setData(joined);
  }

  /** Lets go of the unfinished event (and line): nothing more is read. */
  private overflow(bytes: i64): void {
    this.overflowed = true;
    this.overflowBytes = bytes;
    this.tail = new ArrayBuffer(0);
    this.tailLen = 0;
    this.dataOwner = EMPTY;
    this.dataLen = 0;
    this.hasData = false;
    this.eventName = "";
  }

  private setData(b: ArrayBuffer): void {
    this.dataOwner = b;
    this.dataPtr = changetype<usize>(b);
    this.dataLen = b.byteLength;
  }

  private commentLine(p: usize, n: i32, fromTail: bool, out: Array<SseEvent>): void {
    const e = this.spare.length ? this.spare.pop() : new SseEvent();
    e.comment = true;
    e.multiline = false;
    e.event = "";
    if (fromTail) {
      // The tail is reused by the next line: the comment keeps a copy.
      const copy = new ArrayBuffer(n);
      memory.copy(changetype<usize>(copy), p, <usize>n);
      e.owner = copy;
      e.ptr = changetype<usize>(copy);
    } else {
      e.owner = this.chunk;
      e.ptr = p;
    }
    e.len = n;
    out.push(e);
  }

  private dispatch(out: Array<SseEvent>): void {
    const e = this.spare.length ? this.spare.pop() : new SseEvent();
    e.comment = false;
    e.multiline = this.dataLines > 1;
    e.event = this.eventName;
    e.id = this.eventId;
    e.owner = this.dataOwner;
    e.ptr = this.dataPtr;
    e.len = this.dataLen;
    out.push(e);
    this.eventName = "";
    this.eventId = "";
    this.dataOwner = EMPTY;
    this.dataLen = 0;
    this.dataLines = 0;
    this.hasData = false;
  }
}
