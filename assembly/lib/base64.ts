// Standard base64 (RFC 4648 section 4, with padding) decoded from bytes in place, as AWS sends
// binary payloads inside JSON (Bedrock's InvokeModelWithResponseStream wraps each model event
// in {"bytes":"<base64>"}). base64url.ts is the gateway's own unpadded URL-safe form.

function sextet(c: u32): i32 {
  if (c >= 65 && c <= 90) return <i32>c - 65;
  if (c >= 97 && c <= 122) return <i32>c - 71;
  if (c >= 48 && c <= 57) return <i32>c + 4;
  if (c == 43) return 62;
  if (c == 47) return 63;
  return -1;
}

/** The bytes of base64 text [ptr, ptr+len) (padded to a multiple of 4), or null when it is not exactly that. */
export function base64Decode(ptr: usize, len: i32): ArrayBuffer | null {
  if ((len & 3) != 0) return null;
  let pad = 0;
  if (len > 0 && load<u8>(ptr + <usize>len - 1) == 0x3d) pad++;
  if (len > 1 && load<u8>(ptr + <usize>len - 2) == 0x3d) pad++;
  const n = len - pad;
  const out = new ArrayBuffer(((len >> 2) * 3) - pad);
  const o = changetype<usize>(out);
  let acc: u32 = 0;
  let bits = 0;
  let w = 0;
  for (let i = 0; i < n; i++) {
    const v = sextet(load<u8>(ptr + <usize>i));
    if (v < 0) return null;
    acc = (acc << 6) | <u32>v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      store<u8>(o + <usize>w, <u8>(acc >> <u32>bits));
      w++;
    }
  }
  // Leftover bits must be zero, so each byte string has exactly one encoding.
  if ((acc & ((1 << <u32>bits) - 1)) != 0) return null;
  return out;
}
