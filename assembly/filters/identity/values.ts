// What may become a consumer or a group name, and reading a groups value as Envoy hands it over.
//
// A consumer name reaches metric labels (`;consumer=<name>` in a metric's name, cut out by the stats
// tag regex `;consumer=([^;]*)`), rate-limit keys and descriptors, route conditions and the access log:
// so it is short, printable ASCII, and never holds ';' (the label separator), quotes, backslashes,
// control characters or bytes past ASCII. A value outside this set is refused, never cleaned up:
// two different identities must not become one consumer.

/** Characters of a group name: letters, digits and - _ . @ : / + = */
@inline function groupChar(c: i32): bool {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) ||
    c == 0x2d || c == 0x5f || c == 0x2e || c == 0x40 || c == 0x3a || c == 0x2f || c == 0x2b || c == 0x3d;
}

/** Longest group name. */
export const MAX_GROUP_LENGTH: i32 = 64;

/**
 * A consumer name: 1 to `max` characters, each a group character, a comma or a space (an X.509
 * subject is "CN=a,O=b"), not starting or ending with a space.
 */
export function validConsumer(s: string, max: i32): bool {
  const n = s.length;
  if (n == 0 || n > max) return false;
  if (s.charCodeAt(0) == 0x20 || s.charCodeAt(n - 1) == 0x20) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (!groupChar(c) && c != 0x2c && c != 0x20) return false;
  }
  return true;
}

/** A group name: 1 to 64 group characters (no comma or space: they separate groups). */
export function validGroup(s: string): bool {
  const n = s.length;
  if (n == 0 || n > MAX_GROUP_LENGTH) return false;
  for (let i = 0; i < n; i++) if (!groupChar(s.charCodeAt(i))) return false;
  return true;
}

/** The longest groups value read: `max` names of 64 characters, each with room for its framing. */
export function maxGroupsBytes(max: i32): i32 {
  return max * 80 + 4;
}

/** The groups of a request, or why they were refused. */
export class Groups {
  names: Array<string> = [];
  error: string = "";
}

function addGroup(out: Groups, g: string, max: i32): void {
  if (out.error.length) return;
  if (!validGroup(g)) {
    out.error = "a group name must be 1 to 64 letters, digits or - _ . @ : / + =";
    return;
  }
  if (out.names.includes(g)) return;
  if (out.names.length >= max) {
    out.error = "more than " + max.toString() + " groups";
    return;
  }
  out.names.push(g);
}

/** Groups from a text: names separated by spaces and/or commas ("a b", "a,b", "a, b"). */
export function splitGroups(text: string, max: i32, out: Groups): void {
  const n = text.length;
  if (n > maxGroupsBytes(max)) {
    out.error = "the groups value is longer than " + maxGroupsBytes(max).toString() + " bytes";
    return;
  }
  let start = 0;
  for (let i = 0; i <= n && out.error.length == 0; i++) {
    const c = i < n ? text.charCodeAt(i) : 0x20;
    if (c != 0x20 && c != 0x2c) continue;
    if (i > start) addGroup(out, text.substring(start, i), max);
    start = i + 1;
  }
}

/**
 * Groups from a property value. Envoy serializes a list (a JSON array claim, a ListValue in dynamic
 * metadata) as proxy-wasm pairs: u32 count, then per item (u32 length, u32 0), then each item's bytes
 * and a NUL, an empty "value" and its NUL (context.cc serializeValue, case kList; a string item is its
 * raw bytes). A string is its raw bytes. A group name never holds a NUL and a pairs buffer always does
 * (its count's high bytes), so a value with a NUL is read as a list and anything else as text. A list
 * item that is not a string (a number's 8 bytes, a nested list) fails the name check; so does a map
 * (its pairs have values).
 */
export function readGroups(buf: ArrayBuffer, max: i32, out: Groups): void {
  const base = changetype<usize>(buf);
  const size = <usize>buf.byteLength;
  // Room for max names of 64 characters and their separators (or pairs framing): more is refused
  // before it is decoded.
  if (size > <usize>maxGroupsBytes(max)) {
    out.error = "the groups value is longer than " + maxGroupsBytes(max).toString() + " bytes";
    return;
  }
  let nul = false;
  for (let i: usize = 0; i < size; i++) {
    if (load<u8>(base + i) == 0) {
      nul = true;
      break;
    }
  }
  if (!nul) {
    splitGroups(String.UTF8.decode(buf), max, out);
    return;
  }
  const bad = "the groups value is neither a list of names nor a text";
  if (size < 4) {
    out.error = bad;
    return;
  }
  const count = <u64>load<u32>(base);
  if (<u64>4 + count * 8 > <u64>size) {
    out.error = bad;
    return;
  }
  let off = <u64>4 + count * 8;
  for (let i: u64 = 0; i < count && out.error.length == 0; i++) {
    const kl = <u64>load<u32>(base + <usize>(4 + i * 8));
    const vl = <u64>load<u32>(base + <usize>(8 + i * 8));
    if (vl != 0 || off + kl + 2 > <u64>size) {
      out.error = bad;
      return;
    }
    addGroup(out, String.UTF8.decodeUnsafe(base + <usize>off, <usize>kl), max);
    off += kl + 2;
  }
}
