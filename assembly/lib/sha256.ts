// SHA-256 (FIPS 180-4) over bytes in linear memory. Used to keep API keys out of Envoy's config
// (operators may list sha256 digests instead of keys) and to look keys up by digest, which also
// keeps the lookup's timing independent of how much of a guessed key is right.

const K: StaticArray<u32> = [
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

const W = new StaticArray<u32>(16);
const H = new StaticArray<u32>(8);
const BLOCK = new StaticArray<u8>(64);

@inline function rotr(x: u32, n: u32): u32 { return (x >>> n) | (x << (32 - n)); }

// The rounds run in two loops: the first 16 read the block's words, the other 48 extend the message
// schedule in place, in a ring of 16 words (w[t] depends on w[t-2], w[t-7], w[t-15] and w[t-16]), so
// the schedule never takes a pass of its own over 64 words in memory.
function compress(block: usize): void {
  const w = changetype<usize>(W);
  const k = changetype<usize>(K);
  let a = unchecked(H[0]), b = unchecked(H[1]), c = unchecked(H[2]), d = unchecked(H[3]);
  let e = unchecked(H[4]), f = unchecked(H[5]), g = unchecked(H[6]), h = unchecked(H[7]);
  for (let i: usize = 0; i < 16; i++) {
    const x = bswap<u32>(load<u32>(block + (i << 2)));
    store<u32>(w + (i << 2), x);
    const t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + load<u32>(k + (i << 2)) + x;
    const t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
  }
  for (let i: usize = 16; i < 64; i++) {
    const w15 = load<u32>(w + (((i - 15) & 15) << 2));
    const w2 = load<u32>(w + (((i - 2) & 15) << 2));
    const s0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >>> 3);
    const s1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >>> 10);
    const at = w + ((i & 15) << 2);
    const x = load<u32>(at) + s0 + load<u32>(w + (((i - 7) & 15) << 2)) + s1;
    store<u32>(at, x);
    const t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + load<u32>(k + (i << 2)) + x;
    const t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
  }
  unchecked((H[0] += a)); unchecked((H[1] += b)); unchecked((H[2] += c)); unchecked((H[3] += d));
  unchecked((H[4] += e)); unchecked((H[5] += f)); unchecked((H[6] += g)); unchecked((H[7] += h));
}

/** SHA-256 of [ptr, ptr+len), as 32 bytes. */
export function sha256(ptr: usize, len: usize): StaticArray<u8> {
  unchecked((H[0] = 0x6a09e667)); unchecked((H[1] = 0xbb67ae85)); unchecked((H[2] = 0x3c6ef372)); unchecked((H[3] = 0xa54ff53a));
  unchecked((H[4] = 0x510e527f)); unchecked((H[5] = 0x9b05688c)); unchecked((H[6] = 0x1f83d9ab)); unchecked((H[7] = 0x5be0cd19));
  return finish(ptr, len, 0);
}

/** The state after the first 64-byte block at ptr (an HMAC key's padded block, hashed once per key). */
export function sha256FirstBlock(ptr: usize): StaticArray<u32> {
  unchecked((H[0] = 0x6a09e667)); unchecked((H[1] = 0xbb67ae85)); unchecked((H[2] = 0x3c6ef372)); unchecked((H[3] = 0xa54ff53a));
  unchecked((H[4] = 0x510e527f)); unchecked((H[5] = 0x9b05688c)); unchecked((H[6] = 0x1f83d9ab)); unchecked((H[7] = 0x5be0cd19));
  compress(ptr);
  const out = new StaticArray<u32>(8);
  for (let i = 0; i < 8; i++) unchecked((out[i] = H[i]));
  return out;
}

/** SHA-256 of (the 64 bytes `state` was made from) || [ptr, ptr+len): that block is not hashed again. */
export function sha256After(state: StaticArray<u32>, ptr: usize, len: usize): StaticArray<u8> {
  for (let i = 0; i < 8; i++) unchecked((H[i] = state[i]));
  return finish(ptr, len, 64);
}

/** Hashes [ptr, ptr+len) from the current state, `before` bytes already hashed, and writes the digest. */
function finish(ptr: usize, len: usize, before: usize): StaticArray<u8> {
  let off: usize = 0;
  while (len - off >= 64) {
    compress(ptr + off);
    off += 64;
  }
  const block = changetype<usize>(BLOCK);
  const rest = len - off;
  memory.copy(block, ptr + off, rest);
  store<u8>(block + rest, 0x80);
  memory.fill(block + rest + 1, 0, 64 - rest - 1);
  if (rest >= 56) {
    compress(block);
    memory.fill(block, 0, 64);
  }
  const bits: u64 = <u64>(len + before) << 3;
  store<u64>(block + 56, bswap<u64>(bits));
  compress(block);
  const out = new StaticArray<u8>(32);
  for (let i = 0; i < 8; i++) {
    store<u32>(changetype<usize>(out) + (<usize>i << 2), bswap<u32>(unchecked(H[i])));
  }
  return out;
}

const HEXCHARS = "0123456789abcdef";

/** Lower-case hex of SHA-256 of the UTF-8 bytes of s. */
export function sha256Hex(s: string): string {
  const bytes = String.UTF8.encode(s);
  return toHex(sha256(changetype<usize>(bytes), <usize>bytes.byteLength));
}

const HEX_OUT = new StaticArray<u16>(64);

/** Lower-case hex of a digest (up to 32 bytes), written straight into one string. */
export function toHex(d: StaticArray<u8>): string {
  const n = d.length < 32 ? d.length : 32;
  for (let i = 0; i < n; i++) {
    const b = <i32>unchecked(d[i]);
    unchecked((HEX_OUT[i * 2] = <u16>HEXCHARS.charCodeAt(b >> 4)));
    unchecked((HEX_OUT[i * 2 + 1] = <u16>HEXCHARS.charCodeAt(b & 15)));
  }
  return String.UTF16.decodeUnsafe(changetype<usize>(HEX_OUT), <usize>n << 2);
}

/** Compares two equal-length digests in time independent of where they differ. */
export function digestsEqual(a: StaticArray<u8>, b: StaticArray<u8>): bool {
  if (a.length != b.length) return false;
  let diff: u32 = 0;
  for (let i = 0; i < a.length; i++) diff |= <u32>(unchecked(a[i]) ^ unchecked(b[i]));
  return diff == 0;
}

/** Parses 64 hex characters into a digest, or null. */
export function parseHexDigest(s: string): StaticArray<u8> | null {
  if (s.length != 64) return null;
  const out = new StaticArray<u8>(32);
  for (let i = 0; i < 32; i++) {
    const hi = hexVal(s.charCodeAt(i * 2));
    const lo = hexVal(s.charCodeAt(i * 2 + 1));
    if (hi < 0 || lo < 0) return null;
    unchecked((out[i] = <u8>((hi << 4) | lo)));
  }
  return out;
}

function hexVal(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}
