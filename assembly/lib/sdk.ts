// The one place filters touch the proxy-wasm SDK. Filters import contexts and host calls from
// here, so an SDK change (or a move to another SDK) stays in this file.
//
// The SDK's context plumbing (exports, RootContext/Context dispatch, malloc) is used as is, with
// the fixes in patches/. Host calls that return data are wrapped here on the raw imports because
// the SDK's wrappers cannot tell "missing" from "empty" and log on every NotFound.
import * as imports from "@gcoredev/proxy-wasm-sdk-as/assembly/imports";
import { free } from "@gcoredev/proxy-wasm-sdk-as/assembly/malloc";
import { bytesAre, writeDecimal } from "./ascii";

export {
  RootContext,
  Context,
  BaseContext,
  registerRootContext,
  FilterHeadersStatusValues,
  FilterDataStatusValues,
  FilterTrailersStatusValues,
  LogLevelValues,
  WasmResultValues,
  GrpcStatusValues,
} from "@gcoredev/proxy-wasm-sdk-as/assembly";
import { LogLevelValues, WasmResultValues } from "@gcoredev/proxy-wasm-sdk-as/assembly";

// Header maps (proxy-wasm HeaderMapType).
export const REQUEST_HEADERS: i32 = 0;
export const REQUEST_TRAILERS: i32 = 1;
export const RESPONSE_HEADERS: i32 = 2;
export const RESPONSE_TRAILERS: i32 = 3;
export const HTTP_CALL_RESPONSE_HEADERS: i32 = 6;

export { makeHeaderPair, HeaderPair } from "@gcoredev/proxy-wasm-sdk-as/assembly";

// Buffers (proxy-wasm BufferType).
export const REQUEST_BODY: i32 = 0;
export const RESPONSE_BODY: i32 = 1;
export const HTTP_CALL_RESPONSE_BODY: i32 = 4;
export const PLUGIN_CONFIGURATION: i32 = 7;

// Out-params for host calls that hand back memory: a pointer and a length, static so no call
// allocates for them.
const RET_PTR: usize = memory.data(8);
const RET_LEN: usize = memory.data(8);
const RET_U32: usize = memory.data(8);

// Host-call arguments (header names and values, property keys and values) are encoded into
// this reused buffer rather than into a fresh ArrayBuffer each: filters make a dozen such calls
// per request, and the host copies what it keeps before the call returns.
let argBuf = new ArrayBuffer(1024);
let argLen: usize = 0;

/** Makes room for n more bytes after the arguments already staged. */
function room(n: usize): void {
  const need = argLen + n;
  if (need <= <usize>argBuf.byteLength) return;
  const grown = new ArrayBuffer(need < 2048 ? 2048 : <i32>need * 2);
  memory.copy(changetype<usize>(grown), changetype<usize>(argBuf), argLen);
  argBuf = grown;
}

/** Encodes s as UTF-8 after the arguments already staged; returns its offset (see argAt). */
function stage(s: string): usize {
  room((<usize>s.length) * 3); // UTF-8 never takes more than 3 bytes a UTF-16 unit
  const at = argLen;
  argLen += String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, changetype<usize>(argBuf) + at);
  return at;
}

@inline function argAt(offset: usize): usize {
  return changetype<usize>(argBuf) + offset;
}

/**
 * Takes ownership of memory the host allocated through our malloc (the SDK's malloc pins a fresh
 * ArrayBuffer; unpinning hands it to the GC once we drop it). Empty values come back as
 * pointer 0 and length 0, with nothing allocated.
 */
function takeReturned(): ArrayBuffer {
  const ptr = load<usize>(RET_PTR);
  const len = load<usize>(RET_LEN);
  if (len == 0 || ptr == 0) return new ArrayBuffer(0);
  const buf = changetype<ArrayBuffer>(ptr);
  free(ptr);
  return buf;
}

function clearRet(): void {
  store<usize>(RET_PTR, 0);
  store<usize>(RET_LEN, 0);
}

// ---------------------------------------------------------------------------------------------
// Logging

// The SDK's log (patched to proxy_log at Envoy's levels).
import { log } from "@gcoredev/proxy-wasm-sdk-as/assembly";
export { log };
export function logError(message: string): void { log(LogLevelValues.error, message); }
export function logWarn(message: string): void { log(LogLevelValues.warn, message); }
export function logInfo(message: string): void { log(LogLevelValues.info, message); }

/** True when Envoy would print a log at this level: check before building a costly message. */
export function logEnabled(level: LogLevelValues): bool {
  if (imports.proxy_get_log_level(RET_U32) != WasmResultValues.Ok) return true;
  return <i32>level >= <i32>load<u32>(RET_U32);
}

// ---------------------------------------------------------------------------------------------
// Headers

/** The first value of a header, or null when absent (Envoy returns only the first of repeats). */
export function getHeader(map: i32, name: string): string | null {
  argLen = 0;
  const k = stage(name);
  clearRet();
  const r = imports.proxy_get_header_map_value(map, argAt(k), argLen - k, RET_PTR, RET_LEN);
  if (r != WasmResultValues.Ok) return null;
  return String.UTF8.decode(takeReturned());
}

export function replaceHeader(map: i32, name: string, value: string): bool {
  argLen = 0;
  const k = stage(name);
  const v = stage(value);
  return imports.proxy_replace_header_map_value(map, argAt(k), v - k, argAt(v), argLen - v) == WasmResultValues.Ok;
}

export function addHeader(map: i32, name: string, value: string): bool {
  argLen = 0;
  const k = stage(name);
  const v = stage(value);
  return imports.proxy_add_header_map_value(map, argAt(k), v - k, argAt(v), argLen - v) == WasmResultValues.Ok;
}

export function removeHeader(map: i32, name: string): bool {
  argLen = 0;
  const k = stage(name);
  return imports.proxy_remove_header_map_value(map, argAt(k), argLen - k) == WasmResultValues.Ok;
}

/**
 * All pairs of a header map in one host call, kept in the host's serialized form so a filter can
 * look for a few names without decoding every header into strings.
 * Layout: u32 count, then (u32 key length, u32 value length) per pair, then key\0value\0 ...
 */
export class HeaderPairs {
  buf: ArrayBuffer;
  count: i32 = 0;
  private keyAt: StaticArray<u32>;
  private valAt: StaticArray<u32>;
  private keyLen: StaticArray<u32>;
  private valLen: StaticArray<u32>;

  constructor(buf: ArrayBuffer) {
    this.buf = buf;
    const base = changetype<usize>(buf);
    const size = <u32>buf.byteLength;
    let n: i32 = size >= 4 ? <i32>load<u32>(base) : 0;
    // Never trust a length the reader did not check: a short buffer yields no pairs.
    if (n < 0 || <u64>4 + <u64>n * 8 > <u64>size) n = 0;
    this.keyAt = new StaticArray<u32>(n);
    this.valAt = new StaticArray<u32>(n);
    this.keyLen = new StaticArray<u32>(n);
    this.valLen = new StaticArray<u32>(n);
    let off: u32 = 4 + <u32>n * 8;
    for (let i = 0; i < n; i++) {
      const kl = load<u32>(base + 4 + <usize>i * 8);
      const vl = load<u32>(base + 8 + <usize>i * 8);
      if (<u64>off + <u64>kl + <u64>vl + 2 > <u64>size) { n = i; break; }
      unchecked((this.keyAt[i] = off));
      unchecked((this.keyLen[i] = kl));
      off += kl + 1;
      unchecked((this.valAt[i] = off));
      unchecked((this.valLen[i] = vl));
      off += vl + 1;
    }
    this.count = n;
  }

  /** True when pair i's key equals name (names are lower case in Envoy's maps). */
  keyIs(i: i32, name: string): bool {
    return <i32>unchecked(this.keyLen[i]) == name.length && bytesAre(changetype<usize>(this.buf) + <usize>unchecked(this.keyAt[i]), name);
  }

  /** True when pair i's key starts (atEnd: ends) with the ASCII text s; no string is made. */
  keyHas(i: i32, s: string, atEnd: bool): bool {
    const kl = <i32>unchecked(this.keyLen[i]);
    const n = s.length;
    if (n > kl) return false;
    return bytesAre(changetype<usize>(this.buf) + <usize>unchecked(this.keyAt[i]) + <usize>(atEnd ? kl - n : <i32>0), s);
  }

  key(i: i32): string {
    return String.UTF8.decodeUnsafe(changetype<usize>(this.buf) + <usize>unchecked(this.keyAt[i]), <usize>unchecked(this.keyLen[i]));
  }

  value(i: i32): string {
    return String.UTF8.decodeUnsafe(changetype<usize>(this.buf) + <usize>unchecked(this.valAt[i]), <usize>unchecked(this.valLen[i]));
  }

  valueLength(i: i32): i32 {
    return <i32>unchecked(this.valLen[i]);
  }
}

export function getHeaderPairs(map: i32): HeaderPairs {
  clearRet();
  const r = imports.proxy_get_header_map_pairs(map, RET_PTR, RET_LEN);
  if (r != WasmResultValues.Ok) return new HeaderPairs(new ArrayBuffer(0));
  return new HeaderPairs(takeReturned());
}

// ---------------------------------------------------------------------------------------------
// Bodies and buffers

export function getBuffer(type: i32, start: u32, length: u32): ArrayBuffer {
  clearRet();
  const r = imports.proxy_get_buffer_bytes(type, start, length, RET_PTR, RET_LEN);
  if (r != WasmResultValues.Ok) return new ArrayBuffer(0);
  return takeReturned();
}

/** Replaces the whole buffer (start 0, length = current size) with data. */
export function replaceBuffer(type: i32, currentLength: u32, data: ArrayBuffer): bool {
  return imports.proxy_set_buffer_bytes(type, 0, currentLength, changetype<usize>(data), data.byteLength) == WasmResultValues.Ok;
}

/** replaceBuffer with bytes the caller owns (e.g. a builder's), without copying them first. */
export function replaceBufferBytes(type: i32, currentLength: u32, ptr: usize, len: i32): bool {
  return imports.proxy_set_buffer_bytes(type, 0, currentLength, ptr, len) == WasmResultValues.Ok;
}

/** Appends data after the current buffer contents (start = current size). */
export function appendBuffer(type: i32, currentLength: u32, data: ArrayBuffer): bool {
  return imports.proxy_set_buffer_bytes(type, currentLength, 0, changetype<usize>(data), data.byteLength) == WasmResultValues.Ok;
}

// ---------------------------------------------------------------------------------------------
// Local responses and stream control

/** Sends a local reply; Envoy acts on it after the current callback returns. */
export function sendLocalResponse(status: u32, details: string, body: ArrayBuffer, headers: Array<string>): bool {
  const d = String.UTF8.encode(details);
  const h = serializePairs(headers);
  return imports.proxy_send_local_response(
    status, changetype<usize>(d), d.byteLength, changetype<usize>(body), body.byteLength,
    changetype<usize>(h), h.byteLength, -1,
  ) == WasmResultValues.Ok;
}

/** Serializes a flat [k0, v0, k1, v1, ...] list into the proxy-wasm pairs format. */
export function serializePairs(flat: Array<string>): ArrayBuffer {
  const n = flat.length >> 1;
  const encoded = new Array<ArrayBuffer>(flat.length);
  let size: i32 = 4 + n * 8;
  for (let i = 0; i < flat.length; i++) {
    const e = String.UTF8.encode(unchecked(flat[i]));
    unchecked((encoded[i] = e));
    size += e.byteLength + 1;
  }
  const out = new ArrayBuffer(size);
  const base = changetype<usize>(out);
  store<u32>(base, <u32>n);
  let off: usize = 4 + <usize>n * 8;
  for (let i = 0; i < n; i++) {
    const k = unchecked(encoded[i * 2]);
    const v = unchecked(encoded[i * 2 + 1]);
    store<u32>(base + 4 + <usize>i * 8, <u32>k.byteLength);
    store<u32>(base + 8 + <usize>i * 8, <u32>v.byteLength);
    memory.copy(base + off, changetype<usize>(k), <usize>k.byteLength);
    off += <usize>k.byteLength + 1; // the NUL is already zero
    memory.copy(base + off, changetype<usize>(v), <usize>v.byteLength);
    off += <usize>v.byteLength + 1;
  }
  return out;
}

export function continueRequest(): bool {
  return imports.proxy_continue_stream(0) == WasmResultValues.Ok;
}

export function continueResponse(): bool {
  return imports.proxy_continue_stream(1) == WasmResultValues.Ok;
}

/**
 * Resets the whole HTTP stream, upstream and downstream: Envoy's Context::closeStream
 * (source/extensions/common/wasm/context.cc) calls encoder_callbacks_->resetStream() as an
 * after-VM-call action, so the reset happens as soon as the current callback returns and the data
 * of that callback never reaches the client. The router then resets the upstream request (the
 * provider's connection closes, and it stops generating); the client's connection is reset too
 * (HTTP/1.1: closed before the chunked body's last chunk; HTTP/2: RST_STREAM).
 */
export function closeResponse(): bool {
  return imports.proxy_close_stream(1) == WasmResultValues.Ok;
}

const CLEAR_ROUTE_CACHE = "clear_route_cache";

/**
 * Makes Envoy re-select the route after a filter changed headers the route matches on (such as
 * the cluster header). ABI 0.2.1 has no proxy_clear_route_cache import; Envoy offers it as a
 * foreign function.
 */
export function clearRouteCache(): bool {
  const name = String.UTF8.encode(CLEAR_ROUTE_CACHE);
  clearRet();
  const r = imports.proxy_call_foreign_function(changetype<usize>(name), name.byteLength, 0, 0, RET_PTR, RET_LEN);
  takeReturned();
  return r == WasmResultValues.Ok;
}

// ---------------------------------------------------------------------------------------------
// Properties and filter state

/** A property by path segments (NUL-joined on the wire), or null when Envoy has none. */
export function getProperty(segments: Array<string>): ArrayBuffer | null {
  const path = String.UTF8.encode(segments.join("\0"));
  clearRet();
  const r = imports.proxy_get_property(changetype<usize>(path), path.byteLength, RET_PTR, RET_LEN);
  if (r != WasmResultValues.Ok) return null;
  return takeReturned();
}

/**
 * Stores a value in the stream's filter state under `wasm.<key>` (Envoy's naming), where other
 * filters read it and the access log prints it with %FILTER_STATE(wasm.<key>:PLAIN)%.
 */
export function setFilterState(key: string, value: string): bool {
  argLen = 0;
  const k = stage(key);
  const v = stage(value);
  return imports.proxy_set_property(argAt(k), v - k, argAt(v), argLen - v) == WasmResultValues.Ok;
}

/** setFilterState of an integer, written as decimal text (no string made for it). */
export function setFilterStateInt(key: string, value: i64): bool {
  argLen = 0;
  const k = stage(key);
  const v = argLen;
  room(20); // any i64
  argLen = v + writeDecimal(argAt(v), value);
  return imports.proxy_set_property(argAt(k), v - k, argAt(v), argLen - v) == WasmResultValues.Ok;
}

/** setFilterState of len bytes at ptr (a builder's bytes: no string made of them). */
export function setFilterStateBytes(key: string, ptr: usize, len: i32): bool {
  argLen = 0;
  const k = stage(key);
  return imports.proxy_set_property(argAt(k), argLen - k, ptr, <usize>len) == WasmResultValues.Ok;
}

/** Reads a value another filter stored with setFilterState, or null. */
export function getFilterState(key: string): string | null {
  argLen = 0;
  const k = stage(key);
  clearRet();
  const r = imports.proxy_get_property(argAt(k), argLen - k, RET_PTR, RET_LEN);
  if (r != WasmResultValues.Ok) return null;
  return String.UTF8.decode(takeReturned());
}

// ---------------------------------------------------------------------------------------------
// Time, shared data, metrics

export function setTickPeriod(ms: u32): void {
  imports.proxy_set_tick_period_milliseconds(ms);
}

export function nowNanos(): u64 {
  imports.proxy_get_current_time_nanoseconds(RET_PTR);
  return load<u64>(RET_PTR);
}

export class SharedValue {
  value: ArrayBuffer | null = null;
  cas: u32 = 0;
}

/** Shared data of all worker VMs; value null when the key is not set yet. */
export function getSharedData(key: string): SharedValue {
  argLen = 0;
  const k = stage(key);
  clearRet();
  store<u32>(RET_U32, 0);
  const out = new SharedValue();
  const r = imports.proxy_get_shared_data(argAt(k), argLen - k, RET_PTR, RET_LEN, RET_U32);
  if (r == WasmResultValues.Ok) {
    out.value = takeReturned();
    out.cas = load<u32>(RET_U32);
  }
  return out;
}

/** Compare-and-swap write: cas 0 writes unconditionally. Returns the host's WasmResult. */
export function setSharedData(key: string, value: ArrayBuffer, cas: u32): u32 {
  argLen = 0;
  const k = stage(key);
  return imports.proxy_set_shared_data(argAt(k), argLen - k, changetype<usize>(value), value.byteLength, cas);
}

/** setSharedData of len bytes at ptr (a builder's bytes, not copied into a buffer first). */
export function setSharedDataBytes(key: string, ptr: usize, len: i32, cas: u32): u32 {
  argLen = 0;
  const k = stage(key);
  return imports.proxy_set_shared_data(argAt(k), argLen - k, ptr, <usize>len, cas);
}

export const METRIC_COUNTER: i32 = 0;
export const METRIC_GAUGE: i32 = 1;
export const METRIC_HISTOGRAM: i32 = 2;

/** Id of a metric the host refused; later calls with it are no-ops. (Envoy's first counter is 0.) */
export const NO_METRIC: u32 = 0xffffffff;

export function defineMetric(type: i32, name: string): u32 {
  const n = String.UTF8.encode(name);
  if (imports.proxy_define_metric(type, changetype<usize>(n), n.byteLength, RET_U32) != WasmResultValues.Ok) return NO_METRIC;
  return load<u32>(RET_U32);
}

// Metrics by name, defined on first use: a filter's metric names carry their labels (`;key=value`),
// so the set of names grows with the labels seen; each name is defined once per VM.
const namedIds = new Map<string, u32>();

/** The id of the metric called name, defined (as type) the first time it is asked for. */
export function namedMetric(type: i32, name: string): u32 {
  if (namedIds.has(name)) return namedIds.get(name);
  const m = defineMetric(type, name);
  namedIds.set(name, m);
  return m;
}

export function incrementMetric(id: u32, by: i64): void {
  if (id != NO_METRIC) imports.proxy_increment_metric(id, by);
}

export function recordMetric(id: u32, value: u64): void {
  if (id != NO_METRIC) imports.proxy_record_metric(id, value);
}

/** Reads the plugin configuration; valid only inside onConfigure. */
export function pluginConfiguration(size: u32): ArrayBuffer {
  if (size == 0) return new ArrayBuffer(0);
  return getBuffer(PLUGIN_CONFIGURATION, 0, size);
}
