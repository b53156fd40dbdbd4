// Query-string handling for keys passed as ?<param>=<key>.

/** The raw (still percent-encoded) value of the first `name` parameter in a :path, or null. */
export function findQueryParam(path: string, name: string): string | null {
  const q = path.indexOf("?");
  if (q < 0) return null;
  let i = q + 1;
  const n = path.length;
  while (i <= n) {
    let amp = path.indexOf("&", i);
    if (amp < 0) amp = n;
    const eq = path.indexOf("=", i);
    const keyEnd = eq >= 0 && eq < amp ? eq : amp;
    if (keyEnd - i == name.length && path.substring(i, keyEnd) == name) {
      return eq >= 0 && eq < amp ? path.substring(eq + 1, amp) : "";
    }
    i = amp + 1;
  }
  return null;
}

/** The :path without any `name` parameter (so the key never reaches the upstream). */
export function removeQueryParam(path: string, name: string): string {
  const q = path.indexOf("?");
  if (q < 0) return path;
  const kept = new Array<string>();
  const parts = path.substring(q + 1).split("&");
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    const eq = p.indexOf("=");
    const key = eq >= 0 ? p.substring(0, eq) : p;
    if (key != name) kept.push(p);
  }
  const base = path.substring(0, q);
  return kept.length ? base + "?" + kept.join("&") : base;
}

function hexDigit(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/** Decodes %XX escapes and '+' (as a space, per application/x-www-form-urlencoded). */
export function decodeQueryComponent(s: string): string {
  if (s.indexOf("%") < 0 && s.indexOf("+") < 0) return s;
  const bytes = new Array<u8>();
  const utf8 = String.UTF8.encode(s);
  const p = changetype<usize>(utf8);
  const n = utf8.byteLength;
  for (let i = 0; i < n; i++) {
    const c = <i32>load<u8>(p + <usize>i);
    if (c == 0x25 && i + 2 < n) {
      const hi = hexDigit(<i32>load<u8>(p + <usize>i + 1));
      const lo = hexDigit(<i32>load<u8>(p + <usize>i + 2));
      if (hi >= 0 && lo >= 0) {
        bytes.push(<u8>((hi << 4) | lo));
        i += 2;
        continue;
      }
    }
    bytes.push(c == 0x2b ? 0x20 : <u8>c);
  }
  const out = new ArrayBuffer(bytes.length);
  for (let i = 0; i < bytes.length; i++) store<u8>(changetype<usize>(out) + <usize>i, bytes[i]);
  return String.UTF8.decode(out);
}
