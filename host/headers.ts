// Header maps and the proxy-wasm pair serialization (cpp-host src/pairs_util.cc):
//   u32 count, then count × (u32 key length, u32 value length), then count × (key \0 value \0),
// all little-endian. Header maps are plain arrays of [key, value] in insertion order, like Envoy's
// HeaderMapImpl, with keys lower-cased on every insertion (Http::LowerCaseString in context.cc).
import { PAIRS_MAX_BYTES, PAIRS_MAX_COUNT } from "./abi.js";

export type HeaderPair = [string, string];
export type HeaderList = HeaderPair[];
/** What tests pass: an object (values may repeat as arrays) or a list of pairs. */
export type HeadersInput = Record<string, string | string[]> | ReadonlyArray<readonly [string, string]>;

const dec = new TextDecoder();

/** Normalises test input into a header list with lower-case keys (Envoy's codecs lower-case keys). */
export function toHeaderList(input: HeadersInput | null | undefined): HeaderList {
  const out: HeaderList = [];
  if (!input) return out;
  if (Array.isArray(input)) {
    for (const [k, v] of input as ReadonlyArray<readonly [string, string]>) out.push([k.toLowerCase(), String(v)]);
    return out;
  }
  for (const [k, v] of Object.entries(input as Record<string, string | string[]>)) {
    if (Array.isArray(v)) for (const x of v) out.push([k.toLowerCase(), String(x)]);
    else out.push([k.toLowerCase(), String(v)]);
  }
  return out;
}

function byteLen(x: string | Uint8Array): number {
  return typeof x === "string" ? Buffer.byteLength(x) : x.length;
}

/** Writes x then a NUL at pos; returns the bytes of x written. */
function putZ(out: Buffer, pos: number, x: string | Uint8Array): number {
  let n: number;
  if (typeof x === "string") {
    // Header names and values are nearly always ASCII: copied unit by unit (Buffer#write costs
    // a native call per string, more than the copy for strings this short).
    n = x.length;
    for (let i = 0; i < n; i++) {
      const c = x.charCodeAt(i);
      if (c > 0x7f) {
        n = out.write(x, pos, "utf8");
        break;
      }
      out[pos + i] = c;
    }
  } else {
    out.set(x, pos);
    n = x.length;
  }
  out[pos + n] = 0;
  return n;
}

/** Serialises pairs the way cpp-host PairsUtil::marshalPairs does (sized first, written in place). */
export function serializePairs(pairs: ReadonlyArray<readonly [string | Uint8Array, string | Uint8Array]>): Uint8Array {
  let size = 4;
  for (const [k, v] of pairs) size += 8 + byteLen(k) + 1 + byteLen(v) + 1;
  const out = Buffer.allocUnsafe(size);
  out.writeUInt32LE(pairs.length, 0);
  let sizes = 4;
  let pos = 4 + pairs.length * 8;
  for (const [k, v] of pairs) {
    const kn = putZ(out, pos, k);
    pos += kn + 1;
    const vn = putZ(out, pos, v);
    pos += vn + 1;
    out.writeUInt32LE(kn, sizes);
    out.writeUInt32LE(vn, sizes + 4);
    sizes += 8;
  }
  return out;
}

/**
 * Parses serialized pairs like cpp-host PairsUtil::toPairs: anything malformed (short buffer, missing
 * NUL terminators, trailing bytes, over 1 MiB or 1024 pairs) yields an empty list, not an error —
 * Envoy then acts on an empty map (e.g. set_header_map_pairs clears the map).
 */
export function deserializePairs(buf: Uint8Array): HeaderList {
  if (buf.length > PAIRS_MAX_BYTES || buf.length < 4) return [];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = dv.getUint32(0, true);
  if (n > PAIRS_MAX_COUNT) return [];
  let pos = 4;
  if (pos + n * 8 > buf.length) return [];
  const sizes: number[] = [];
  for (let i = 0; i < n; i++) {
    sizes.push(dv.getUint32(pos, true), dv.getUint32(pos + 4, true));
    pos += 8;
  }
  const out: HeaderList = [];
  for (let i = 0; i < n; i++) {
    const kl = sizes[2 * i];
    const vl = sizes[2 * i + 1];
    if (pos + kl + 1 > buf.length || buf[pos + kl] !== 0) return [];
    const k = dec.decode(buf.subarray(pos, pos + kl));
    pos += kl + 1;
    if (pos + vl + 1 > buf.length || buf[pos + vl] !== 0) return [];
    const v = dec.decode(buf.subarray(pos, pos + vl));
    pos += vl + 1;
    out.push([k, v]);
  }
  if (pos !== buf.length) return [];
  return out;
}

// --- HeaderMapImpl operations as Envoy's wasm Context uses them ---

/** First value for key, as Envoy's Context::getHeaderMapValue returns (entry[0]; see the TODO there). */
export function getFirst(map: HeaderList, key: string): string | undefined {
  const k = key.toLowerCase();
  for (const [hk, hv] of map) if (hk === k) return hv;
  return undefined;
}

/** HeaderMap::addCopy: appends another entry, even for a key already present. */
export function addValue(map: HeaderList, key: string, value: string): void {
  map.push([key.toLowerCase(), value]);
}

/** HeaderMap::setCopy: the key ends up with exactly one entry holding value. */
export function replaceValue(map: HeaderList, key: string, value: string): void {
  const k = key.toLowerCase();
  let found = false;
  for (let i = 0; i < map.length; ) {
    if (map[i][0] === k) {
      if (!found) {
        map[i][1] = value;
        found = true;
        i++;
      } else map.splice(i, 1);
    } else i++;
  }
  if (!found) map.push([k, value]);
}

/** HeaderMap::remove: every entry with key. */
export function removeValue(map: HeaderList, key: string): void {
  const k = key.toLowerCase();
  for (let i = map.length - 1; i >= 0; i--) if (map[i][0] === k) map.splice(i, 1);
}

/** HeaderMap::byteSize (what proxy_get_header_map_size reports): sum of key and value bytes. */
export function byteSize(map: HeaderList): number {
  let n = 0;
  for (const [k, v] of map) n += Buffer.byteLength(k) + Buffer.byteLength(v);
  return n;
}

export function cloneHeaders(map: HeaderList): HeaderList {
  return map.map(([k, v]) => [k, v] as HeaderPair);
}
