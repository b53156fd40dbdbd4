// The buffers a filter reads and writes through get/set_buffer_bytes: a body as Envoy's
// Buffer::Instance behaves under the wasm Context, and the read-only ones (configurations, an http
// call's response body). Shared by the wasm contexts, the native filters and the stream.
import { WasmResult } from "./abi.js";

/** What get/set_buffer_bytes work on (Envoy's Context::getBuffer result). */
export interface BufferRef {
  size(): number;
  bytes(): Buffer;
  copyFrom(start: number, length: number, data: Buffer): number;
}

// Classes, not object literals with closures: a buffer is looked up on every body call, and a
// literal's methods cost a closure each (and a name definition each under tsx).

/** A read-only buffer (VM/plugin configuration, http call response body). */
export class ConstBuffer implements BufferRef {
  constructor(private readonly b: Buffer) {}
  size(): number {
    return this.b.length;
  }
  bytes(): Buffer {
    return this.b;
  }
  // Envoy Buffer::copyFrom on a buffer that wraps no Buffer::Instance falls through to
  // proxy_wasm::BufferBase::copyFrom: "Setting a string buffer not supported" -> BAD_ARGUMENT.
  copyFrom(): number {
    return WasmResult.BadArgument;
  }
}

export const EMPTY_BUFFER = new ConstBuffer(Buffer.alloc(0));

/** A mutable body buffer (Envoy's Buffer::Instance as the wasm Context sees it). */
export class Body implements BufferRef {
  constructor(public data: Buffer) {}
  size(): number {
    return this.data.length;
  }
  bytes(): Buffer {
    return this.data;
  }
  // Envoy Buffer::copyFrom: start 0 drains `length` bytes and prepends the data (so length >= size
  // replaces everything); start at or past the end appends; anything else is BAD_ARGUMENT.
  copyFrom(start: number, length: number, data: Buffer): number {
    const cur = this.data;
    if (start === 0) {
      // `data` is already the host's own copy: a full replacement keeps it as it is.
      this.data = length >= cur.length ? data : Buffer.concat([data, cur.subarray(length)]);
      return WasmResult.Ok;
    }
    if (start >= cur.length) {
      this.data = Buffer.concat([cur, data]);
      return WasmResult.Ok;
    }
    return WasmResult.BadArgument;
  }
}
