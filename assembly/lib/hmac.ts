// HMAC-SHA256 (RFC 2104) on top of lib/sha256.ts, for values the gateway signs and later trusts
// again (MCP session ids): a key, a message, 32 bytes.
import { sha256, sha256FirstBlock, sha256After } from "./sha256";

const BLOCK: i32 = 64;

/** HMAC-SHA256 of [ptr, ptr+len) under key. */
export function hmacSha256(key: ArrayBuffer, ptr: usize, len: i32): StaticArray<u8> {
  const k = new ArrayBuffer(BLOCK);
  if (key.byteLength > BLOCK) {
    const d = sha256(changetype<usize>(key), key.byteLength);
    memory.copy(changetype<usize>(k), changetype<usize>(d), 32);
  } else memory.copy(changetype<usize>(k), changetype<usize>(key), key.byteLength);
  const inner = new ArrayBuffer(BLOCK + len);
  const ip = changetype<usize>(inner);
  for (let i = 0; i < BLOCK; i++) store<u8>(ip + i, load<u8>(changetype<usize>(k) + i) ^ 0x36);
  memory.copy(ip + BLOCK, ptr, len);
  const ih = sha256(ip, BLOCK + len);
  const outer = new ArrayBuffer(BLOCK + 32);
  const op = changetype<usize>(outer);
  for (let i = 0; i < BLOCK; i++) store<u8>(op + i, load<u8>(changetype<usize>(k) + i) ^ 0x5c);
  memory.copy(op + BLOCK, changetype<usize>(ih), 32);
  return sha256(op, BLOCK + 32);
}

/**
 * A key used for many MACs: its padded inner and outer blocks are hashed once, here, so each MAC
 * hashes only the message (one compression for a short one) and one block of the outer hash.
 */
export class HmacKey {
  inner: StaticArray<u32>;
  outer: StaticArray<u32>;

  constructor(key: ArrayBuffer) {
    const k = new ArrayBuffer(BLOCK);
    if (key.byteLength > BLOCK) {
      const d = sha256(changetype<usize>(key), key.byteLength);
      memory.copy(changetype<usize>(k), changetype<usize>(d), 32);
    } else memory.copy(changetype<usize>(k), changetype<usize>(key), key.byteLength);
    const pad = new ArrayBuffer(BLOCK);
    const p = changetype<usize>(pad);
    for (let i = 0; i < BLOCK; i++) store<u8>(p + i, load<u8>(changetype<usize>(k) + i) ^ 0x36);
    this.inner = sha256FirstBlock(p);
    for (let i = 0; i < BLOCK; i++) store<u8>(p + i, load<u8>(changetype<usize>(k) + i) ^ 0x5c);
    this.outer = sha256FirstBlock(p);
  }

  /** HMAC-SHA256 of [ptr, ptr+len): the same 32 bytes as hmacSha256 with this key. */
  mac(ptr: usize, len: i32): StaticArray<u8> {
    const ih = sha256After(this.inner, ptr, len);
    return sha256After(this.outer, changetype<usize>(ih), 32);
  }
}

/** HMAC-SHA256 of a string's UTF-8 bytes. */
export function hmacSha256Of(key: ArrayBuffer, message: string): StaticArray<u8> {
  const m = String.UTF8.encode(message);
  return hmacSha256(key, changetype<usize>(m), m.byteLength);
}

/** Equal in time independent of where they differ (a MAC compared with one an attacker sent). */
export function constantTimeEqual(a: usize, b: usize, n: i32): bool {
  let diff: u32 = 0;
  for (let i = 0; i < n; i++) diff |= <u32>(load<u8>(a + i) ^ load<u8>(b + i));
  return diff == 0;
}
