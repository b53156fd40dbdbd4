// Server-sent events framing (WHATWG HTML, "event stream interpretation"), incremental over bytes.
//
// Response bodies reach a filter in chunks cut anywhere: inside a line, inside "\r\n", inside a
// multi-byte UTF-8 character. The parser keeps only the unfinished tail between chunks and decodes
// an event's fields only once the event is complete, so a split can never corrupt text.

export class SseEvent {
  event: string = "";
  data: string = "";
}

export class SseParser {
  // Bytes of the unfinished line carried over from the previous chunk.
  private tail: ArrayBuffer = new ArrayBuffer(0);
  private tailLen: i32 = 0;
  // Fields of the event being assembled.
  private eventName: string = "";
  private dataParts: Array<string> = [];
  private hasData: bool = false;
  // A chunk that ended right after "\r": a following "\n" belongs to the same line break.
  private skipLf: bool = false;
  // Bytes seen in total (for limits and tests).
  seen: i64 = 0;

  /** Feeds bytes; returns the events completed by them, in order. */
  feed(ptr: usize, len: i32): Array<SseEvent> {
    const out = new Array<SseEvent>();
    this.seen += len;
    let i: i32 = 0;
    if (this.skipLf && len > 0) {
      if (load<u8>(ptr) == 0x0a) i = 1;
      this.skipLf = false;
    }
    let lineStart = i;
    while (i < len) {
      const c = load<u8>(ptr + <usize>i);
      if (c != 0x0a && c != 0x0d) {
        i++;
        continue;
      }
      this.line(ptr + <usize>lineStart, i - lineStart, out);
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
    if (lineStart < len) this.keep(ptr + <usize>lineStart, len - lineStart);
    return out;
  }

  /** True while an event or a line has begun but not ended (the stream stopped mid-event). */
  get pending(): bool {
    return this.tailLen > 0 || this.hasData || this.eventName.length > 0;
  }

  /** At end of stream: an event still open without its blank line is dispatched, as clients do. */
  finish(): Array<SseEvent> {
    const out = new Array<SseEvent>();
    if (this.tailLen > 0) this.line(0, 0, out, true);
    if (this.hasData) this.dispatch(out);
    return out;
  }

  private keep(ptr: usize, len: i32): void {
    const need = this.tailLen + len;
    if (need > this.tail.byteLength) {
      const grown = new ArrayBuffer(need < 256 ? 256 : need * 2);
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
      p = changetype<usize>(this.tail);
      n = this.tailLen;
      this.tailLen = 0;
    }
    if (n == 0) {
      if (this.hasData) this.dispatch(out);
      else this.eventName = "";
      return;
    }
    if (load<u8>(p) == 0x3a) return; // comment (e.g. ": ping" keep-alives)
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
      this.dataParts.push(String.UTF8.decodeUnsafe(p + <usize>valueAt, <usize>valueLen));
      this.hasData = true;
    } else if (nameLen == 5 && load<u32>(p) == 0x6e657665 && load<u8>(p + 4) == 0x74) {
      // "event"
      this.eventName = String.UTF8.decodeUnsafe(p + <usize>valueAt, <usize>valueLen);
    }
    // id and retry do not matter to a gateway translating the stream.
  }

  private dispatch(out: Array<SseEvent>): void {
    const e = new SseEvent();
    e.event = this.eventName;
    e.data = this.dataParts.length == 1 ? this.dataParts[0] : this.dataParts.join("\n");
    out.push(e);
    this.eventName = "";
    this.dataParts = [];
    this.hasData = false;
  }
}
