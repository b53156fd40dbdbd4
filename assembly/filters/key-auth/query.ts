// Query-string handling for keys passed as ?<param>=<key>.
//
// What counts as the credential parameter is what any reader of the query could take for it, so
// that a client cannot slip a second key past this filter, or keep one in the logged :path, by
// spelling the name differently:
// - parameters are separated by '&' (Envoy's Http::Utility::QueryParamsMulti::parseParameters,
//   source/common/http/utility.cc) and also by ';' (the W3C/HTML 4 recommendation, still honoured
//   by some application servers);
// - a name matches after percent-decoding and '+' -> space (application/x-www-form-urlencoded, as
//   Envoy's parseAndDecodeQueryString and every form decoder read it): `%6Bey=` is `key=`.
// Names compare case-sensitively, as Envoy's query parameter matchers do.

/** The credential parameters found in a :path, and the :path without them. */
export class QueryCredentials {
  /** Raw (still percent-encoded) values, in order. */
  values: Array<string> = [];
  /** The :path with every credential parameter removed (the other parameters as they were). */
  path: string = "";
}

@inline function isSeparator(c: i32): bool {
  return c == 0x26 || c == 0x3b; // & ;
}

/** Whether the raw parameter name path[start, end) decodes to `name`. */
function nameIs(path: string, start: i32, end: i32, name: string): bool {
  const raw = path.substring(start, end);
  if (raw == name) return true;
  if (raw.indexOf("%") < 0 && raw.indexOf("+") < 0) return false;
  return decodeQueryComponent(raw) == name;
}

/** Every `name` parameter of the :path's query, and the :path without them; null when there is none. */
export function takeQueryParam(path: string, name: string): QueryCredentials | null {
  const q = path.indexOf("?");
  if (q < 0) return null;
  const n = path.length;
  let out: QueryCredentials | null = null;
  // The kept query, rebuilt only once a parameter is removed.
  let kept = "";
  let keptAny = false;
  let i = q + 1;
  while (i <= n) {
    let end = i;
    while (end < n && !isSeparator(path.charCodeAt(end))) end++;
    let eq = i;
    while (eq < end && path.charCodeAt(eq) != 0x3d) eq++;
    if (end > i && nameIs(path, i, eq, name)) {
      if (out === null) {
        out = new QueryCredentials();
        // Everything before this parameter is kept, without its trailing separator.
        if (i - 1 > q + 1) {
          kept = path.substring(q + 1, i - 1);
          keptAny = true;
        }
      }
      out.values.push(eq < end ? path.substring(eq + 1, end) : "");
    } else if (out !== null) {
      // Keep the parameter, with the separator the client wrote before it.
      if (keptAny) kept += path.charAt(i - 1);
      kept += path.substring(i, end);
      keptAny = true;
    }
    i = end + 1;
  }
  if (out === null) return null;
  out.path = keptAny ? path.substring(0, q) + "?" + kept : path.substring(0, q);
  return out;
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
