// A body that grows chunk by chunk, as Envoy's Buffer::Instance does when the filter manager moves a
// chunk into buffered_request_data_ / buffered_response_data_ (commonHandleBufferData): the new
// chunk is appended, what is already held is never copied again per chunk. The storage doubles when
// full, so holding n bytes costs O(n) copying in all (re-concatenating everything held on each chunk
// costs O(n²): a 50 MB body in 16 KiB chunks would copy ~80 GB).
//
// view() hands out the bytes held so far without copying. Appends only write past the current
// length, and a reallocation leaves old storage to the views that point into it, so a view never
// changes under its holder.

const EMPTY = Buffer.alloc(0);

export class GrowBuffer {
  private buf: Buffer = EMPTY;
  private len = 0;
  /** buf was allocated here (else it is a caller's chunk, never written into). */
  private owned = false;

  get length(): number {
    return this.len;
  }

  view(): Buffer {
    return this.len === this.buf.length ? this.buf : this.buf.subarray(0, this.len);
  }

  append(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.len === 0) {
      // The first chunk is adopted as it is (Envoy moves, not copies, a chunk into its buffer).
      this.reset(chunk);
      return;
    }
    const need = this.len + chunk.length;
    if (!this.owned || need > this.buf.length) {
      // allocUnsafeSlow: never a slice of Node's shared pool, so holds() can compare storage.
      const next = Buffer.allocUnsafeSlow(Math.max(need, this.len * 2, 16384));
      this.buf.copy(next, 0, 0, this.len);
      this.buf = next;
      this.owned = true;
    }
    chunk.copy(this.buf, this.len);
    this.len = need;
  }

  /** True when `b` is exactly what this buffer holds now (the same storage, the same length). */
  holds(b: Buffer): boolean {
    return b.length === this.len && (b.length === 0 || (b.buffer === this.buf.buffer && b.byteOffset === this.buf.byteOffset));
  }

  /** Holds `b` instead (a filter replaced its body); the next append copies it once. */
  reset(b: Buffer): void {
    this.buf = b.length ? b : EMPTY;
    this.len = b.length;
    this.owned = false;
  }

  /** Lets go of the storage (views handed out keep theirs). */
  clear(): void {
    this.reset(EMPTY);
  }
}
