// Byte-level helpers shared by the JSON reader and writer, the SSE parser and the SDK layer:
// comparing UTF-8 bytes with an ASCII string literal, and writing a decimal integer in place,
// both without making a string; and the constants of their eight-bytes-at-a-time scans.

// A one and the high bit in each byte of a word: a byte of x is zero exactly where
// (x - ONES) & ~x & HIGHS is set (and one below n where (x - n * ONES) & ~x & HIGHS is).
export const ONES: u64 = 0x0101010101010101;
export const HIGHS: u64 = 0x8080808080808080;

/** True when the n = s.length bytes at p equal the (ASCII) UTF-16 units of s. */
export function bytesAre(p: usize, s: string): bool {
  const sp = changetype<usize>(s);
  const n = s.length;
  let i = 0;
  // Four at a time: four bytes widened to four 16-bit lanes against four units of s (decoders
  // match 40-byte event prefixes on every streamed chunk).
  for (; i + 4 <= n; i += 4) {
    const b = <u64>load<u32>(p + <usize>i);
    const w = (b & 0xff) | ((b & 0xff00) << 8) | ((b & 0xff0000) << 16) | ((b & 0xff000000) << 24);
    if (w != load<u64>(sp + (<usize>i << 1))) return false;
  }
  for (; i < n; i++) {
    if (<u32>load<u8>(p + <usize>i) != <u32>load<u16>(sp + (<usize>i << 1))) return false;
  }
  return true;
}

/** Writes v in decimal at p (at most 20 bytes); returns the bytes written. */
export function writeDecimal(p: usize, v: i64): usize {
  let n: usize = 0;
  let u = <u64>v;
  if (v < 0) {
    store<u8>(p, 0x2d);
    n = 1;
    u = <u64>(-v); // i64.MIN_VALUE wraps to itself, whose u64 is its magnitude
  }
  let digits: usize = 1;
  for (let t = u; t >= 10; t /= 10) digits++;
  for (let i = digits; i > 0; i--) {
    store<u8>(p + n + i - 1, <u8>(0x30 + u % 10));
    u /= 10;
  }
  return n + digits;
}
