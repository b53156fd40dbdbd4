// base64url without padding (RFC 4648 section 5): bytes made safe for a header value or a URL, as
// the MCP session ids and pagination cursors the gateway hands out.
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

export function base64urlEncode(ptr: usize, len: i32): string {
  const out = new ArrayBuffer(((len + 2) / 3) * 4);
  const o = changetype<usize>(out);
  const a = changetype<usize>(ALPHABET);
  let n = 0;
  let i = 0;
  for (; i + 3 <= len; i += 3) {
    const v = (<u32>load<u8>(ptr + i) << 16) | (<u32>load<u8>(ptr + i + 1) << 8) | <u32>load<u8>(ptr + i + 2);
    store<u8>(o + n++, <u8>load<u16>(a + ((v >> 18) << 1)));
    store<u8>(o + n++, <u8>load<u16>(a + (((v >> 12) & 63) << 1)));
    store<u8>(o + n++, <u8>load<u16>(a + (((v >> 6) & 63) << 1)));
    store<u8>(o + n++, <u8>load<u16>(a + ((v & 63) << 1)));
  }
  const rest = len - i;
  if (rest > 0) {
    let v = <u32>load<u8>(ptr + i) << 16;
    if (rest == 2) v |= <u32>load<u8>(ptr + i + 1) << 8;
    store<u8>(o + n++, <u8>load<u16>(a + ((v >> 18) << 1)));
    store<u8>(o + n++, <u8>load<u16>(a + (((v >> 12) & 63) << 1)));
    if (rest == 2) store<u8>(o + n++, <u8>load<u16>(a + (((v >> 6) & 63) << 1)));
  }
  return String.UTF8.decodeUnsafe(o, n);
}

function sextet(c: i32): i32 {
  if (c >= 65 && c <= 90) return c - 65;
  if (c >= 97 && c <= 122) return c - 71;
  if (c >= 48 && c <= 57) return c + 4;
  if (c == 45) return 62;
  if (c == 95) return 63;
  return -1;
}

/** The bytes of unpadded base64url text, or null when it is not exactly that. */
export function base64urlDecode(s: string): ArrayBuffer | null {
  const n = s.length;
  if ((n & 3) == 1) return null;
  const out = new ArrayBuffer((n * 3) >> 2);
  const o = changetype<usize>(out);
  let acc: u32 = 0;
  let bits = 0;
  let w = 0;
  for (let i = 0; i < n; i++) {
    const v = sextet(s.charCodeAt(i));
    if (v < 0) return null;
    acc = (acc << 6) | <u32>v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      store<u8>(o + w++, <u8>(acc >> <u32>bits));
    }
  }
  // Leftover bits must be zero, so each byte string has exactly one encoding.
  if ((acc & ((1 << <u32>bits) - 1)) != 0) return null;
  return out;
}
