// Bounds-checked access to a module's linear memory. Views are cached and re-created only when the
// memory grows (its ArrayBuffer is replaced), so the hot path does no allocation.
// Bounds follow cpp-host V8::getMemory/setWord: pointer + size must lie inside the memory, else the
// host call returns INVALID_MEMORY_ACCESS.

export class MemView {
  private buf: ArrayBuffer | null = null;
  u8!: Uint8Array;
  dv!: DataView;
  // The same memory as a Buffer, so strings decode straight from it (no view object per call).
  private nb!: Buffer;

  constructor(readonly memory: WebAssembly.Memory) {
    this.refresh();
  }

  refresh(): void {
    // memory.grow detaches the old ArrayBuffer, so a view still of non-zero length is current:
    // a cheaper test than the memory.buffer getter, which every bounds check would pay.
    if (this.buf !== null && this.u8.byteLength !== 0) return;
    const b = this.memory.buffer;
    if (b !== this.buf) {
      this.buf = b;
      this.u8 = new Uint8Array(b);
      this.dv = new DataView(b);
      this.nb = Buffer.from(b);
    }
  }

  get size(): number {
    this.refresh();
    return this.u8.length;
  }

  // Wasm passes i32 values, which arrive in JS signed; every pointer and length is taken as u32.
  ok(ptr: number, len: number): boolean {
    this.refresh();
    return (ptr >>> 0) + (len >>> 0) <= this.u8.length;
  }

  /** A view (not a copy) of [ptr, ptr+len), or null when out of bounds. Valid until memory grows. */
  view(ptr: number, len: number): Uint8Array | null {
    if (!this.ok(ptr, len)) return null;
    ptr >>>= 0;
    return this.u8.subarray(ptr, ptr + (len >>> 0));
  }

  /** A copy of [ptr, ptr+len), or null when out of bounds. */
  copy(ptr: number, len: number): Buffer | null {
    const v = this.view(ptr, len);
    return v ? Buffer.from(v) : null;
  }

  string(ptr: number, len: number): string | null {
    if (!this.ok(ptr, len)) return null;
    ptr >>>= 0;
    return this.nb.toString("utf8", ptr, ptr + (len >>> 0));
  }

  setU32(ptr: number, value: number): boolean {
    if (!this.ok(ptr, 4)) return false;
    this.dv.setUint32(ptr >>> 0, value >>> 0, true);
    return true;
  }

  setU64(ptr: number, value: bigint): boolean {
    if (!this.ok(ptr, 8)) return false;
    this.dv.setBigUint64(ptr >>> 0, BigInt.asUintN(64, value), true);
    return true;
  }

  getU32(ptr: number): number | null {
    if (!this.ok(ptr, 4)) return null;
    return this.dv.getUint32(ptr >>> 0, true);
  }

  set(ptr: number, data: Uint8Array): boolean {
    if (!this.ok(ptr, data.length)) return false;
    this.u8.set(data, ptr >>> 0);
    return true;
  }
}
