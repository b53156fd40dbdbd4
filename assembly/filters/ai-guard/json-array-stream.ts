// Gemini's JSON-array stream (streamGenerateContent without alt=sse) cut into its elements as the
// bytes arrive: `[` element `,` element ... `]`, each element a JSON object. The splitter follows
// strings (and their escapes) and nesting depth across chunks, so an element is handed out only
// when complete, whatever the chunks' cuts. An element within one chunk is referenced where it is;
// one that spans chunks is copied, at most maxElement bytes (past that the splitter overflows and
// hands out nothing more, like lib/sse.ts). Elements come out as SseEvent so the Gemini reader
// (answer-gemini.ts) reads both framings alike.
import { SseEvent } from "../../lib/sse";

const BEFORE = 0; // before '['
const BETWEEN = 1; // after '[' or an element: whitespace, ',' or ']'
const INSIDE = 2;
const AFTER = 3; // after ']'

const EMPTY = new ArrayBuffer(0);

export class JsonArraySplitter {
  overflowed: bool = false;
  /** Bytes that are not the array's framing (a body that is not a JSON array). */
  malformed: bool = false;
  private state: i32 = BEFORE;
  private depth: i32 = 0;
  private inString: bool = false;
  private escaped: bool = false;
  // The element begun in an earlier chunk (copied).
  private held: ArrayBuffer = EMPTY;
  private heldLen: i32 = 0;
  private events: Array<SseEvent> = [];

  constructor(public maxElement: i32) {}

  get ended(): bool {
    return this.state == AFTER;
  }

  feed(chunk: ArrayBuffer): Array<SseEvent> {
    const out = this.events;
    out.length = 0;
    if (this.overflowed || this.malformed) return out;
    const p = changetype<usize>(chunk);
    const n = chunk.byteLength;
    let start = this.state == INSIDE ? 0 : -1; // where the element's bytes in this chunk begin
    for (let i = 0; i < n; i++) {
      const c = <i32>load<u8>(p + <usize>i);
      if (this.state == INSIDE) {
        if (this.inString) {
          if (this.escaped) this.escaped = false;
          else if (c == 0x5c) this.escaped = true;
          else if (c == 0x22) this.inString = false;
          continue;
        }
        if (c == 0x22) this.inString = true;
        else if (c == 0x7b || c == 0x5b) this.depth++;
        else if (c == 0x7d || c == 0x5d) {
          this.depth--;
          if (this.depth == 0) {
            this.emit(chunk, p + <usize>start, i + 1 - start, out);
            if (this.overflowed) return out;
            this.state = BETWEEN;
            start = -1;
          }
        }
        continue;
      }
      if (c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09) continue;
      if (this.state == BEFORE && c == 0x5b) this.state = BETWEEN;
      else if (this.state == BETWEEN && c == 0x2c) continue;
      else if (this.state == BETWEEN && c == 0x5d) this.state = AFTER;
      else if (this.state == BETWEEN && c == 0x7b) {
        this.state = INSIDE;
        this.depth = 1;
        start = i;
      } else {
        this.malformed = true;
        return out;
      }
    }
    if (this.state == INSIDE) this.hold(p + <usize>start, n - start);
    return out;
  }

  private hold(ptr: usize, len: i32): void {
    const need = this.heldLen + len;
    if (need > this.maxElement) {
      this.overflowed = true;
      this.held = EMPTY;
      this.heldLen = 0;
      return;
    }
    if (need > this.held.byteLength) {
      const grown = new ArrayBuffer(need < 256 ? 256 : (need * 2 < this.maxElement ? need * 2 : this.maxElement));
      memory.copy(changetype<usize>(grown), changetype<usize>(this.held), <usize>this.heldLen);
      this.held = grown;
    }
    memory.copy(changetype<usize>(this.held) + <usize>this.heldLen, ptr, <usize>len);
    this.heldLen = need;
  }

  private emit(chunk: ArrayBuffer, ptr: usize, len: i32, out: Array<SseEvent>): void {
    const e = new SseEvent();
    if (this.heldLen > 0) {
      this.hold(ptr, len);
      if (this.overflowed) return;
      const copy = new ArrayBuffer(this.heldLen);
      memory.copy(changetype<usize>(copy), changetype<usize>(this.held), <usize>this.heldLen);
      e.owner = copy;
      e.ptr = changetype<usize>(copy);
      e.len = this.heldLen;
      this.heldLen = 0;
      if (this.held.byteLength > 65536) this.held = EMPTY;
    } else {
      e.owner = chunk;
      e.ptr = ptr;
      e.len = len;
    }
    out.push(e);
  }
}
