// Host-conformance filter: exercises every proxy-wasm 0.2.1 host function Envoy offers, through the
// raw imports (not the SDK wrappers), and logs one line per check at info level:
//   PASS <name>            or            FAIL <name>: <why>
// Expected results are Envoy's (source/extensions/common/wasm/context.cc) and proxy-wasm-cpp-host's
// (src/exports.cc, src/context.cc, src/shared_*.cc). test/conformance.test.ts drives every phase and
// counts the lines, so a check that does not run fails the test as surely as one that fails.
//
// Streams, chosen by :path:
//   /conformance  every request/response phase, properties, shared data, queue, metrics, ...
//   /callout      http_call to a cluster, pause, effective context from the response, continue
//   /local        send_local_response (and the local reply going back through on_response_headers)

import {
  proxy_log,
  proxy_get_log_level,
  proxy_get_status,
  proxy_set_property,
  proxy_get_property,
  proxy_send_local_response,
  proxy_get_shared_data,
  proxy_set_shared_data,
  proxy_register_shared_queue,
  proxy_resolve_shared_queue,
  proxy_dequeue_shared_queue,
  proxy_enqueue_shared_queue,
  proxy_get_header_map_value,
  proxy_add_header_map_value,
  proxy_replace_header_map_value,
  proxy_remove_header_map_value,
  proxy_get_header_map_pairs,
  proxy_set_header_map_pairs,
  proxy_get_header_map_size,
  proxy_get_buffer_status,
  proxy_get_buffer_bytes,
  proxy_set_buffer_bytes,
  proxy_http_call,
  proxy_grpc_close,
  proxy_grpc_cancel,
  proxy_grpc_send,
  proxy_set_tick_period_milliseconds,
  proxy_get_current_time_nanoseconds,
  proxy_define_metric,
  proxy_increment_metric,
  proxy_record_metric,
  proxy_get_metric,
  proxy_set_effective_context,
  proxy_done,
  proxy_call_foreign_function,
  proxy_continue_stream,
  proxy_close_stream,
} from "@gcoredev/proxy-wasm-sdk-as/assembly/imports";
import {
  RootContext,
  Context,
  registerRootContext,
  FilterHeadersStatusValues,
  FilterDataStatusValues,
  FilterTrailersStatusValues,
} from "@gcoredev/proxy-wasm-sdk-as/assembly";
import { malloc as sdkMalloc, free as sdkFree } from "@gcoredev/proxy-wasm-sdk-as/assembly/malloc";

// The SDK's callbacks (proxy_on_*); malloc is ours (below) so the checks can see what the host allocates.
export * from "@gcoredev/proxy-wasm-sdk-as/assembly/exports";

// The SDK declares proxy_grpc_call / proxy_grpc_stream without the initial-metadata pointer/size
// pair that proxy-wasm-cpp-host's exports take (12 and 9 parameters); Envoy's V8 refuses a module
// importing them with the SDK's signature ("import type mismatch"). Declared here as Envoy has them.
// @ts-ignore: decorator
@external("env", "proxy_grpc_call")
declare function proxy_grpc_call(
  service_ptr: usize, service_size: usize, service_name_ptr: usize, service_name_size: usize,
  method_name_ptr: usize, method_name_size: usize, initial_metadata_ptr: usize,
  initial_metadata_size: usize, request_ptr: usize, request_size: usize,
  timeout_milliseconds: u32, token_ptr: usize): u32;
// @ts-ignore: decorator
@external("env", "proxy_grpc_stream")
declare function proxy_grpc_stream(
  service_ptr: usize, service_size: usize, service_name_ptr: usize, service_name_size: usize,
  method_name_ptr: usize, method_name_size: usize, initial_metadata_ptr: usize,
  initial_metadata_size: usize, token_ptr: usize): u32;

// ---------------------------------------------------------------------------------------------
// Constants (proxy-wasm 0.2.1 enums) and what the test configures.

const OK: u32 = 0;
const NOT_FOUND: u32 = 1;
const BAD_ARGUMENT: u32 = 2;
const PARSE_FAILURE: u32 = 4;
const EMPTY: u32 = 7;
const CAS_MISMATCH: u32 = 8;
const UNIMPLEMENTED: u32 = 12;

const REQUEST_HEADERS: i32 = 0;
const REQUEST_TRAILERS: i32 = 1;
const RESPONSE_HEADERS: i32 = 2;
const RESPONSE_TRAILERS: i32 = 3;
const HTTP_CALL_RESPONSE_HEADERS: i32 = 6;
const HTTP_CALL_RESPONSE_TRAILERS: i32 = 7;
const BAD_MAP: i32 = 8; // > WasmHeaderMapType::MAX

const REQUEST_BODY: i32 = 0;
const RESPONSE_BODY: i32 = 1;
const HTTP_CALL_RESPONSE_BODY: i32 = 4;
const VM_CONFIGURATION: i32 = 6;
const PLUGIN_CONFIGURATION: i32 = 7;
const BAD_BUFFER: i32 = 9; // > WasmBufferType::MAX

const STREAM_REQUEST: i32 = 0;
const STREAM_DOWNSTREAM: i32 = 2;
const STREAM_UPSTREAM: i32 = 3;
const BAD_STREAM: i32 = 4; // > WasmStreamType::MAX

const COUNTER: i32 = 0;
const GAUGE: i32 = 1;
const HISTOGRAM: i32 = 2;

const LOG_DEBUG: i32 = 1;
const LOG_INFO: i32 = 2;
const BAD_LOG_LEVEL: i32 = 6; // > LogLevel::Max (critical = 5)

// Must match test/conformance.test.ts.
const VM_CONFIG = "vm-config";
const PLUGIN_CONFIG = '{"conformance":true,"note":"plugin configuration"}';
const PLUGIN_NAME = "conformance";
const ROOT_ID = "conformance-root";
const EXPECTED_LOG_LEVEL: u32 = 2; // Host.create({ logLevel: "info" })
const CLUSTER = "conformance-upstream";
const QUEUE = "conformance.queue";
const EXPECTED_WORKERS: i32 = 2; // Host.create({ workers: 2 })

// Ids and tokens nobody allocated. Envoy tags metric ids and callout tokens with their type in the
// low two bits (proxy-wasm-cpp-host include/proxy-wasm/wasm.h kMetricTypeMask / kCalloutTypeMask).
const UNKNOWN_COUNTER_ID: u32 = 0x7ffffff0; // counter type bits
const UNKNOWN_HTTP_TOKEN: u32 = 0x7ffffff0; // http-call type bits
const UNKNOWN_GRPC_CALL_TOKEN: u32 = 0x7ffffff1;
const UNKNOWN_GRPC_STREAM_TOKEN: u32 = 0x7ffffff2;
const UNKNOWN_QUEUE_TOKEN: u32 = 0x7fffffff;
const UNKNOWN_CONTEXT_ID: u32 = 0x7fffffff;

const SENTINEL: u32 = 0xdeadbeef;
const SENTINEL64: u64 = 0xdeadbeefdeadbeef;

// Out-parameter area the host writes pointers, sizes, tokens, ids and numbers into.
const OUT: usize = memory.data(64, 16);

// ---------------------------------------------------------------------------------------------
// malloc: the host must allocate every returned value through it, exactly sized, and allocate
// nothing for an empty value.

let mallocCalls: i32 = 0;
let mallocMark: i32 = 0;
let lastMallocPtr: usize = 0;
let lastMallocSize: i32 = -1;

export function malloc(size: i32): usize {
  const p = sdkMalloc(size);
  mallocCalls++;
  lastMallocPtr = p;
  lastMallocSize = size;
  return p;
}

function mark(): void {
  mallocMark = mallocCalls;
  for (let i: usize = 0; i < 64; i += 4) store<u32>(OUT + i, SENTINEL);
}

// ---------------------------------------------------------------------------------------------
// Reporting.

let passes: i32 = 0;
let failures: i32 = 0;

function logAt(level: i32, msg: string): u32 {
  const b = String.UTF8.encode(msg);
  return proxy_log(level, changetype<usize>(b), b.byteLength);
}
function pass(name: string): void {
  passes++;
  logAt(LOG_INFO, "PASS " + name);
}
function fail(name: string, why: string): void {
  failures++;
  logAt(LOG_INFO, "FAIL " + name + ": " + why);
}
function check(name: string, ok: bool, why: string): void {
  if (ok) pass(name);
  else fail(name, why);
}

const RC_NAMES: string[] = [
  "OK", "NOT_FOUND", "BAD_ARGUMENT", "SERIALIZATION_FAILURE", "PARSE_FAILURE", "BAD_EXPRESSION",
  "INVALID_MEMORY_ACCESS", "EMPTY", "CAS_MISMATCH", "RESULT_MISMATCH", "INTERNAL_FAILURE",
  "BROKEN_CONNECTION", "UNIMPLEMENTED",
];
function rcName(rc: u32): string {
  return rc < <u32>RC_NAMES.length ? RC_NAMES[rc] + "(" + rc.toString() + ")" : "unknown result " + rc.toString();
}
function q(s: string): string {
  return "'" + s + "'";
}

// ---------------------------------------------------------------------------------------------
// Results of raw calls.

class Ret {
  rc: u32 = 0;
  ptr: u32 = 0;
  size: u32 = 0;
  allocs: i32 = 0;
  memErr: string = "";
  buf: ArrayBuffer = new ArrayBuffer(0);
  str: string = "";
}

// Reads a (pointer, size) pair the host returned and checks the memory contract.
function finish(rc: u32, ptrAt: usize, sizeAt: usize): Ret {
  const r = new Ret();
  r.rc = rc;
  r.allocs = mallocCalls - mallocMark;
  if (rc != OK) {
    if (r.allocs != 0) r.memErr = "host called malloc " + r.allocs.toString() + " time(s) but returned " + rcName(rc);
    return r;
  }
  const p = load<u32>(ptrAt);
  const s = load<u32>(sizeAt);
  r.ptr = p;
  r.size = s;
  if (p == SENTINEL || s == SENTINEL) {
    r.memErr = "host returned OK without writing the pointer/size out-params";
    return r;
  }
  if (s == 0) {
    if (p != 0) r.memErr = "empty value came back with pointer " + p.toString() + " (want pointer 0, size 0)";
    else if (r.allocs != 0) r.memErr = "empty value, yet the host called malloc " + r.allocs.toString() + " time(s)";
    return r;
  }
  if (r.allocs != 1) {
    r.memErr = "host called malloc " + r.allocs.toString() + " time(s) for one returned value";
  } else if (<usize>p != lastMallocPtr) {
    r.memErr = "returned pointer " + p.toString() + " is not the one malloc returned (" + lastMallocPtr.toString() + ")";
  } else if (<i32>s != lastMallocSize) {
    r.memErr = "host malloc'd " + lastMallocSize.toString() + " bytes for a " + s.toString() + "-byte value (must be exact)";
  }
  if (r.memErr == "") {
    const b = new ArrayBuffer(<i32>s);
    memory.copy(changetype<usize>(b), <usize>p, <usize>s);
    r.buf = b;
    r.str = String.UTF8.decode(b);
    sdkFree(<usize>p);
  }
  return r;
}

class Num {
  rc: u32 = 0;
  value: u64 = 0;
  written: bool = false;
  allocs: i32 = 0;
}
function finishU32(rc: u32, at: usize): Num {
  const n = new Num();
  n.rc = rc;
  n.allocs = mallocCalls - mallocMark;
  const v = load<u32>(at);
  n.written = v != SENTINEL;
  n.value = <u64>v;
  return n;
}
function finishU64(rc: u32, at: usize): Num {
  const n = new Num();
  n.rc = rc;
  n.allocs = mallocCalls - mallocMark;
  const v = load<u64>(at);
  n.written = v != SENTINEL64;
  n.value = v;
  return n;
}

// ---- generic checks

function checkRc(name: string, rc: u32, want: u32): void {
  const allocs = mallocCalls - mallocMark;
  if (rc != want) fail(name, "got " + rcName(rc) + ", want " + rcName(want));
  else if (allocs != 0) fail(name, "returned " + rcName(rc) + " but the host called malloc " + allocs.toString() + " time(s)");
  else pass(name);
}
function checkRetRc(name: string, r: Ret, want: u32): void {
  if (r.rc != want) fail(name, "got " + rcName(r.rc) + ", want " + rcName(want));
  else if (r.memErr != "") fail(name, r.memErr);
  else pass(name);
}
function checkStr(name: string, r: Ret, want: string): void {
  if (r.rc != OK) fail(name, "got " + rcName(r.rc) + ", want OK with " + q(want));
  else if (r.memErr != "") fail(name, r.memErr);
  else if (r.str != want) fail(name, "got " + q(r.str) + " (" + r.size.toString() + " bytes), want " + q(want));
  else pass(name);
}
function checkEmpty(name: string, r: Ret): void {
  if (r.rc != OK) fail(name, "got " + rcName(r.rc) + ", want OK with an empty value");
  else if (r.memErr != "") fail(name, r.memErr);
  else if (r.size != 0 || r.ptr != 0) fail(name, "got " + r.size.toString() + " bytes at " + r.ptr.toString() + ", want pointer 0, size 0");
  else pass(name);
}
function checkNumRc(name: string, n: Num, want: u32): bool {
  if (n.rc != want) {
    fail(name, "got " + rcName(n.rc) + ", want " + rcName(want));
    return false;
  }
  if (n.allocs != 0) {
    fail(name, "the host called malloc for a number out-param");
    return false;
  }
  if (want == OK && !n.written) {
    fail(name, "host returned OK without writing the out-param");
    return false;
  }
  return true;
}
function checkNum(name: string, n: Num, want: u64): void {
  if (!checkNumRc(name, n, OK)) return;
  check(name, n.value == want, "got " + n.value.toString() + ", want " + want.toString());
}

// ---------------------------------------------------------------------------------------------
// Raw call wrappers.

function enc(s: string): ArrayBuffer {
  return String.UTF8.encode(s);
}
function ptrOf(b: ArrayBuffer): usize {
  return changetype<usize>(b);
}

function getHeader(map: i32, key: string): Ret {
  const k = enc(key);
  mark();
  return finish(proxy_get_header_map_value(map, ptrOf(k), k.byteLength, OUT, OUT + 4), OUT, OUT + 4);
}
function addHeader(map: i32, key: string, value: string): u32 {
  const k = enc(key);
  const v = enc(value);
  mark();
  return proxy_add_header_map_value(map, ptrOf(k), k.byteLength, ptrOf(v), v.byteLength);
}
function replaceHeader(map: i32, key: string, value: string): u32 {
  const k = enc(key);
  const v = enc(value);
  mark();
  return proxy_replace_header_map_value(map, ptrOf(k), k.byteLength, ptrOf(v), v.byteLength);
}
function removeHeader(map: i32, key: string): u32 {
  const k = enc(key);
  mark();
  return proxy_remove_header_map_value(map, ptrOf(k), k.byteLength);
}
function getPairsRaw(map: i32): Ret {
  mark();
  return finish(proxy_get_header_map_pairs(map, OUT, OUT + 4), OUT, OUT + 4);
}
function setPairs(map: i32, p: Pairs): u32 {
  const b = serializePairs(p);
  mark();
  return proxy_set_header_map_pairs(map, ptrOf(b), b.byteLength);
}
function getMapSize(map: i32): Num {
  mark();
  return finishU32(proxy_get_header_map_size(map, OUT), OUT);
}
function getBuffer(type: i32, start: u32, length: u32): Ret {
  mark();
  return finish(proxy_get_buffer_bytes(type, start, length, OUT, OUT + 4), OUT, OUT + 4);
}
function setBuffer(type: i32, start: u32, length: u32, data: string): u32 {
  const d = enc(data);
  mark();
  return proxy_set_buffer_bytes(type, start, length, ptrOf(d), d.byteLength);
}
class BufStatus {
  rc: u32 = 0;
  length: u32 = 0;
  flags: u32 = 0;
  written: bool = false;
}
function bufferStatus(type: i32): BufStatus {
  mark();
  const s = new BufStatus();
  s.rc = proxy_get_buffer_status(type, OUT, OUT + 4);
  s.length = load<u32>(OUT);
  s.flags = load<u32>(OUT + 4);
  s.written = s.length != SENTINEL && s.flags != SENTINEL;
  return s;
}
function pathBytes(parts: string[]): ArrayBuffer {
  // Property paths are segments joined by NUL.
  let total = 0;
  const encoded = new Array<ArrayBuffer>();
  for (let i = 0; i < parts.length; i++) {
    const e = enc(parts[i]);
    encoded.push(e);
    total += e.byteLength + (i > 0 ? 1 : 0);
  }
  const out = new ArrayBuffer(total);
  let at = changetype<usize>(out);
  for (let i = 0; i < encoded.length; i++) {
    if (i > 0) {
      store<u8>(at, 0);
      at += 1;
    }
    memory.copy(at, changetype<usize>(encoded[i]), encoded[i].byteLength);
    at += encoded[i].byteLength;
  }
  return out;
}
function getProp(parts: string[]): Ret {
  const p = pathBytes(parts);
  mark();
  return finish(proxy_get_property(ptrOf(p), p.byteLength, OUT, OUT + 4), OUT, OUT + 4);
}
function setProp(path: string, value: string): u32 {
  const p = enc(path);
  const v = enc(value);
  mark();
  return proxy_set_property(ptrOf(p), p.byteLength, ptrOf(v), v.byteLength);
}
class Shared {
  ret: Ret = new Ret();
  cas: u32 = 0;
}
function getShared(key: string): Shared {
  const k = enc(key);
  mark();
  const rc = proxy_get_shared_data(ptrOf(k), k.byteLength, OUT, OUT + 4, OUT + 8);
  const s = new Shared();
  s.cas = load<u32>(OUT + 8);
  s.ret = finish(rc, OUT, OUT + 4);
  return s;
}
function setShared(key: string, value: string, cas: u32): u32 {
  const k = enc(key);
  const v = enc(value);
  mark();
  return proxy_set_shared_data(ptrOf(k), k.byteLength, ptrOf(v), v.byteLength, cas);
}
function registerQueue(name: string): Num {
  const n = enc(name);
  mark();
  return finishU32(proxy_register_shared_queue(ptrOf(n), n.byteLength, OUT), OUT);
}
function resolveQueue(vmId: string, name: string): Num {
  const v = enc(vmId);
  const n = enc(name);
  mark();
  return finishU32(proxy_resolve_shared_queue(ptrOf(v), v.byteLength, ptrOf(n), n.byteLength, OUT), OUT);
}
function dequeue(token: u32): Ret {
  mark();
  return finish(proxy_dequeue_shared_queue(token, OUT, OUT + 4), OUT, OUT + 4);
}
function enqueue(token: u32, data: string): u32 {
  const d = enc(data);
  mark();
  return proxy_enqueue_shared_queue(token, ptrOf(d), d.byteLength);
}
function defineMetric(type: i32, name: string): Num {
  const n = enc(name);
  mark();
  return finishU32(proxy_define_metric(type, ptrOf(n), n.byteLength, OUT), OUT);
}
function getMetric(id: u32): Num {
  mark();
  store<u64>(OUT, SENTINEL64);
  return finishU64(proxy_get_metric(id, OUT), OUT);
}
function now(): Num {
  mark();
  store<u64>(OUT, SENTINEL64);
  return finishU64(proxy_get_current_time_nanoseconds(OUT), OUT);
}
function logLevel(): Num {
  mark();
  return finishU32(proxy_get_log_level(OUT), OUT);
}
function foreign(name: string, args: string): Ret {
  const n = enc(name);
  const a = enc(args);
  mark();
  return finish(proxy_call_foreign_function(ptrOf(n), n.byteLength, ptrOf(a), a.byteLength, OUT, OUT + 4), OUT, OUT + 4);
}
class Status {
  rc: u32 = 0;
  code: u32 = 0;
  message: Ret = new Ret();
}
function getStatus(): Status {
  mark();
  const rc = proxy_get_status(OUT, OUT + 4, OUT + 8);
  const s = new Status();
  s.rc = rc;
  s.code = load<u32>(OUT);
  s.message = finish(rc, OUT + 4, OUT + 8);
  return s;
}
function httpCall(cluster: string, headers: Pairs, body: string, timeoutMs: u32): Num {
  const c = enc(cluster);
  const h = serializePairs(headers);
  const b = enc(body);
  mark();
  // No trailers: a zero-length pairs buffer (Envoy: PairsUtil::toPairs("") is empty).
  return finishU32(proxy_http_call(ptrOf(c), c.byteLength, ptrOf(h), h.byteLength, ptrOf(b), b.byteLength, 0, 0, timeoutMs, OUT), OUT);
}
function grpcCall(service: string): Num {
  const s = enc(service);
  const sn = enc("conformance.Service");
  const m = enc("Method");
  const md = serializePairs(new Pairs());
  const req = enc("request");
  mark();
  return finishU32(
    proxy_grpc_call(ptrOf(s), s.byteLength, ptrOf(sn), sn.byteLength, ptrOf(m), m.byteLength, ptrOf(md), md.byteLength, ptrOf(req), req.byteLength, 1000, OUT),
    OUT,
  );
}
function grpcStream(service: string): Num {
  const s = enc(service);
  const sn = enc("conformance.Service");
  const m = enc("Stream");
  const md = serializePairs(new Pairs());
  mark();
  return finishU32(proxy_grpc_stream(ptrOf(s), s.byteLength, ptrOf(sn), sn.byteLength, ptrOf(m), m.byteLength, ptrOf(md), md.byteLength, OUT), OUT);
}
function sendLocal(code: u32, details: string, body: string, headers: Pairs, grpcStatus: u32): u32 {
  const d = enc(details);
  const b = enc(body);
  const h = serializePairs(headers);
  mark();
  return proxy_send_local_response(code, ptrOf(d), d.byteLength, ptrOf(b), b.byteLength, ptrOf(h), h.byteLength, grpcStatus);
}

// ---------------------------------------------------------------------------------------------
// Header pairs: u32 count, then (u32 key size, u32 value size) per pair, then key NUL value NUL.

class Pairs {
  keys: string[] = [];
  values: string[] = [];
  err: string = "";
  add(k: string, v: string): Pairs {
    this.keys.push(k);
    this.values.push(v);
    return this;
  }
  get length(): i32 {
    return this.keys.length;
  }
  count(k: string): i32 {
    let n = 0;
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] == k) n++;
    return n;
  }
  has(k: string, v: string): bool {
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] == k && this.values[i] == v) return true;
    return false;
  }
  first(k: string): string | null {
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] == k) return this.values[i];
    return null;
  }
  byteSize(): u32 {
    // Envoy's HeaderMap::byteSize(): the sum of every key's and value's length.
    let n: u32 = 0;
    for (let i = 0; i < this.keys.length; i++) {
      n += <u32>String.UTF8.byteLength(this.keys[i]) + <u32>String.UTF8.byteLength(this.values[i]);
    }
    return n;
  }
  without(k: string): Pairs {
    const p = new Pairs();
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] != k) p.add(this.keys[i], this.values[i]);
    return p;
  }
  sorted(): string[] {
    const out = new Array<string>();
    for (let i = 0; i < this.keys.length; i++) out.push(this.keys[i] + "=" + this.values[i]);
    out.sort();
    return out;
  }
  describe(): string {
    let s = "[";
    for (let i = 0; i < this.keys.length; i++) s += (i > 0 ? ", " : "") + this.keys[i] + "=" + q(this.values[i]);
    return s + "]";
  }
}

function serializePairs(p: Pairs): ArrayBuffer {
  const ks = new Array<ArrayBuffer>();
  const vs = new Array<ArrayBuffer>();
  let size = 4;
  for (let i = 0; i < p.keys.length; i++) {
    const k = enc(p.keys[i]);
    const v = enc(p.values[i]);
    ks.push(k);
    vs.push(v);
    size += 8 + k.byteLength + 1 + v.byteLength + 1;
  }
  const out = new ArrayBuffer(size);
  const base = changetype<usize>(out);
  store<u32>(base, p.keys.length);
  let at = base + 4;
  for (let i = 0; i < ks.length; i++) {
    store<u32>(at, ks[i].byteLength);
    store<u32>(at + 4, vs[i].byteLength);
    at += 8;
  }
  for (let i = 0; i < ks.length; i++) {
    memory.copy(at, changetype<usize>(ks[i]), ks[i].byteLength);
    at += ks[i].byteLength;
    store<u8>(at, 0);
    at += 1;
    memory.copy(at, changetype<usize>(vs[i]), vs[i].byteLength);
    at += vs[i].byteLength;
    store<u8>(at, 0);
    at += 1;
  }
  return out;
}

function parsePairs(buf: ArrayBuffer): Pairs {
  const p = new Pairs();
  const size = <usize>buf.byteLength;
  if (size == 0) return p; // an empty map comes back as pointer 0, size 0
  const base = changetype<usize>(buf);
  if (size < 4) {
    p.err = "pairs buffer of " + size.toString() + " bytes has no count";
    return p;
  }
  const n = <usize>load<u32>(base);
  if (<usize>4 + n * 8 > size) {
    p.err = "pairs count " + n.toString() + " does not fit in " + size.toString() + " bytes";
    return p;
  }
  let at: usize = base + 4 + n * 8;
  const end = base + size;
  for (let i: usize = 0; i < n; i++) {
    const ks = <usize>load<u32>(base + 4 + i * 8);
    const vs = <usize>load<u32>(base + 8 + i * 8);
    if (at + ks + 1 + vs + 1 > end) {
      p.err = "pair " + i.toString() + " runs past the end of the buffer";
      return p;
    }
    const k = String.UTF8.decodeUnsafe(at, ks);
    if (load<u8>(at + ks) != 0) {
      p.err = "key " + i.toString() + " is not NUL-terminated";
      return p;
    }
    at += ks + 1;
    const v = String.UTF8.decodeUnsafe(at, vs);
    if (load<u8>(at + vs) != 0) {
      p.err = "value " + i.toString() + " is not NUL-terminated";
      return p;
    }
    at += vs + 1;
    p.add(k, v);
  }
  if (at != end) p.err = (end - at).toString() + " trailing bytes after the last pair (size must be exact)";
  return p;
}

// Fetches and parses a header map; reports a failed fetch under `name` and returns null.
function pairsOf(name: string, map: i32): Pairs | null {
  const r = getPairsRaw(map);
  if (r.rc != OK) {
    fail(name, "get_header_map_pairs: " + rcName(r.rc));
    return null;
  }
  if (r.memErr != "") {
    fail(name, "get_header_map_pairs: " + r.memErr);
    return null;
  }
  const p = parsePairs(r.buf);
  if (p.err != "") {
    fail(name, "get_header_map_pairs: " + p.err);
    return null;
  }
  return p;
}

function sameSet(a: Pairs, b: Pairs): bool {
  const x = a.sorted();
  const y = b.sorted();
  if (x.length != y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] != y[i]) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Per-VM state (one root context per VM).

let rootId: u32 = 0;
let t0: u64 = 0;
let queueToken: u32 = 0;
let counterId: u32 = 0;
let gaugeId: u32 = 0;
let histogramId: u32 = 0;
let ticks: i32 = 0;
let queueReadies: i32 = 0;
let registrationOrder: i32 = 0;
const pendingCalls = new Map<u32, u32>(); // http_call token -> stream context id

// ---------------------------------------------------------------------------------------------
// Root context: vm start, configure, tick, queue ready, http call response.

class ConformanceRoot extends RootContext {
  constructor(id: u32) {
    super(id);
    rootId = id;
  }

  createContext(context_id: u32): Context {
    return new ConformanceStream(context_id, this);
  }

  onStart(vm_configuration_size: usize): bool {
    const P = "vm_start.";
    check(P + "config_size", vm_configuration_size == <usize>VM_CONFIG.length,
      "proxy_on_vm_start got vm configuration size " + vm_configuration_size.toString() + ", want " + VM_CONFIG.length.toString());
    checkStr(P + "vm_configuration", getBuffer(VM_CONFIGURATION, 0, <u32>vm_configuration_size), VM_CONFIG);
    // Envoy: the plugin configuration buffer exists only during proxy_on_configure (temp_plugin_).
    checkRetRc(P + "plugin_configuration_unavailable", getBuffer(PLUGIN_CONFIGURATION, 0, 100), NOT_FOUND);
    checkRc(P + "log_bad_level", logBadLevel(), BAD_ARGUMENT);
    checkNum(P + "log_level", logLevel(), EXPECTED_LOG_LEVEL);
    return true;
  }

  onConfigure(configuration_size: u32): bool {
    const P = "configure.";
    const size = <u32>PLUGIN_CONFIG.length;
    check(P + "config_size", configuration_size == size,
      "proxy_on_configure got configuration size " + configuration_size.toString() + ", want " + size.toString());

    // Buffers.
    checkStr(P + "plugin_configuration", getBuffer(PLUGIN_CONFIGURATION, 0, configuration_size), PLUGIN_CONFIG);
    checkStr(P + "plugin_configuration_slice", getBuffer(PLUGIN_CONFIGURATION, 2, 5), PLUGIN_CONFIG.substring(2, 7));
    checkStr(P + "plugin_configuration_truncated", getBuffer(PLUGIN_CONFIGURATION, size - 3, 100), PLUGIN_CONFIG.substring(size - 3));
    checkEmpty(P + "plugin_configuration_past_end", getBuffer(PLUGIN_CONFIGURATION, size + 10, 5));
    const st = bufferStatus(PLUGIN_CONFIGURATION);
    if (st.rc != OK) fail(P + "buffer_status", rcName(st.rc));
    else if (!st.written) fail(P + "buffer_status", "host returned OK without writing length/flags");
    else check(P + "buffer_status", st.length == size && st.flags == 0,
      "length " + st.length.toString() + " flags " + st.flags.toString() + ", want length " + size.toString() + " flags 0 (cpp-host always writes 0)");
    mark();
    checkRc(P + "buffer_status_bad_type", proxy_get_buffer_status(BAD_BUFFER, OUT, OUT + 4), BAD_ARGUMENT);
    checkRetRc(P + "http_call_body_unavailable", getBuffer(HTTP_CALL_RESPONSE_BODY, 0, 10), NOT_FOUND);

    // Properties on the root context.
    checkStr(P + "plugin_name", getProp(["plugin_name"]), PLUGIN_NAME);
    checkStr(P + "plugin_root_id", getProp(["plugin_root_id"]), ROOT_ID);
    checkEmpty(P + "plugin_vm_id", getProp(["plugin_vm_id"]));
    checkRetRc(P + "property_missing", getProp(["conformance_no_such_property"]), NOT_FOUND);
    checkRetRc(P + "request_path_unavailable", getProp(["request", "path"]), NOT_FOUND);
    // Envoy: set_property needs a stream's filter state; a root context has none.
    checkRc(P + "set_property_no_stream", setProp("sluice.conformance_root", "x"), NOT_FOUND);

    // Header maps do not exist on a root context.
    checkRetRc(P + "headers_unavailable", getHeader(REQUEST_HEADERS, ":path"), BAD_ARGUMENT);
    // ...but Envoy's getHeaderMapPairs turns a missing map into an empty list: OK, pointer 0, size 0.
    checkEmpty(P + "header_pairs_empty", getPairsRaw(REQUEST_HEADERS));
    {
      const n = getMapSize(REQUEST_HEADERS);
      if (checkNumRc(P + "header_size_unavailable", n, BAD_ARGUMENT)) pass(P + "header_size_unavailable");
    }
    checkRetRc(P + "header_bad_map_type", getHeader(BAD_MAP, ":path"), BAD_ARGUMENT);

    // Shared data and queues.
    checkRetRc(P + "shared_data_missing", getShared("conformance.missing").ret, NOT_FOUND);
    // Which VM registers the queue last: Envoy's SharedQueue::registerQueue overwrites the
    // registration, so only that VM gets on_queue_ready. Counted in shared data with CAS.
    {
      const got = getShared("conformance.queue_registrations");
      const n: i32 = got.ret.rc == OK ? I32.parseInt(got.ret.str) : 0;
      const rc = setShared("conformance.queue_registrations", (n + 1).toString(), got.ret.rc == OK ? got.cas : 0);
      registrationOrder = n + 1;
      check(P + "queue_registration_order", (got.ret.rc == OK || got.ret.rc == NOT_FOUND) && rc == OK,
        "get " + rcName(got.ret.rc) + ", set " + rcName(rc));
    }
    const reg = registerQueue(QUEUE);
    if (checkNumRc(P + "queue_register", reg, OK)) {
      check(P + "queue_register", reg.value != 0, "token 0 (0 is never a valid queue token)");
    }
    queueToken = <u32>reg.value;
    const res = resolveQueue("", QUEUE);
    if (checkNumRc(P + "queue_resolve", res, OK)) {
      check(P + "queue_resolve", res.value == <u64>queueToken,
        "resolved token " + res.value.toString() + " != registered token " + queueToken.toString());
    }
    {
      const n = resolveQueue("", "conformance.no-such-queue");
      if (checkNumRc(P + "queue_resolve_missing", n, NOT_FOUND)) pass(P + "queue_resolve_missing");
    }
    {
      const n = resolveQueue("conformance-other-vm", QUEUE);
      if (checkNumRc(P + "queue_resolve_other_vm", n, NOT_FOUND)) pass(P + "queue_resolve_other_vm");
    }
    checkRetRc(P + "queue_empty", dequeue(queueToken), EMPTY);
    checkRetRc(P + "dequeue_unknown_token", dequeue(UNKNOWN_QUEUE_TOKEN), NOT_FOUND);
    checkRc(P + "enqueue_unknown_token", enqueue(UNKNOWN_QUEUE_TOKEN, "x"), NOT_FOUND);

    // Timer, time.
    mark();
    checkRc(P + "tick_period", proxy_set_tick_period_milliseconds(1000), OK);
    const t = now();
    if (checkNumRc(P + "time", t, OK)) {
      // Wall clock in ns: after 2017-07 (1.5e18) and before 2096 (4e18).
      check(P + "time", t.value > 1500000000000000000 && t.value < 4000000000000000000,
        "get_current_time_nanoseconds = " + t.value.toString() + ", not a wall-clock time in ns");
    }
    t0 = t.value;

    // Metrics.
    const c = defineMetric(COUNTER, "conformance.requests");
    const g = defineMetric(GAUGE, "conformance.gauge");
    const h = defineMetric(HISTOGRAM, "conformance.latency");
    if (checkNumRc(P + "metric_define_counter", c, OK)) pass(P + "metric_define_counter");
    if (checkNumRc(P + "metric_define_gauge", g, OK)) pass(P + "metric_define_gauge");
    if (checkNumRc(P + "metric_define_histogram", h, OK)) pass(P + "metric_define_histogram");
    counterId = <u32>c.value;
    gaugeId = <u32>g.value;
    histogramId = <u32>h.value;
    check(P + "metric_ids_distinct", counterId != gaugeId && gaugeId != histogramId && counterId != histogramId,
      "ids " + counterId.toString() + ", " + gaugeId.toString() + ", " + histogramId.toString());
    {
      const n = defineMetric(3, "conformance.bad_type");
      if (checkNumRc(P + "metric_define_bad_type", n, BAD_ARGUMENT)) pass(P + "metric_define_bad_type");
    }

    // Misc.
    mark();
    checkRc(P + "effective_context_unknown", proxy_set_effective_context(UNKNOWN_CONTEXT_ID), BAD_ARGUMENT);
    const s = getStatus();
    if (s.rc != OK) fail(P + "status", rcName(s.rc));
    else if (s.message.memErr != "") fail(P + "status", s.message.memErr);
    else check(P + "status", s.code == 0 && s.message.size == 0 && s.message.ptr == 0,
      "code " + s.code.toString() + " message " + q(s.message.str) + ", want code 0 and an empty message (pointer 0, size 0)");
    checkRetRc(P + "foreign_unknown", foreign("conformance_no_such_function", ""), NOT_FOUND);
    // proxy_done is only valid after proxy_on_done returned false (cpp-host WasmBase::done).
    mark();
    checkRc(P + "done_not_pending", proxy_done(), NOT_FOUND);
    mark();
    checkRc(P + "continue_bad_type", proxy_continue_stream(BAD_STREAM), BAD_ARGUMENT);
    mark();
    checkRc(P + "close_bad_type", proxy_close_stream(BAD_STREAM), BAD_ARGUMENT);

    // gRPC: Envoy treats a service that does not parse as a GrpcService proto as a cluster name;
    // an unknown cluster gives PARSE_FAILURE (Context::grpcCall / grpcStream).
    {
      const n = grpcCall("conformance-no-such-grpc-cluster");
      if (checkNumRc(P + "grpc_call_unknown_cluster", n, PARSE_FAILURE)) pass(P + "grpc_call_unknown_cluster");
    }
    {
      const n = grpcStream("conformance-no-such-grpc-cluster");
      if (checkNumRc(P + "grpc_stream_unknown_cluster", n, PARSE_FAILURE)) pass(P + "grpc_stream_unknown_cluster");
    }
    const msg = enc("m");
    mark();
    checkRc(P + "grpc_send_not_a_stream", proxy_grpc_send(UNKNOWN_HTTP_TOKEN, ptrOf(msg), msg.byteLength, 0), BAD_ARGUMENT);
    mark();
    checkRc(P + "grpc_send_unknown", proxy_grpc_send(UNKNOWN_GRPC_STREAM_TOKEN, ptrOf(msg), msg.byteLength, 0), NOT_FOUND);
    mark();
    checkRc(P + "grpc_close_unknown", proxy_grpc_close(UNKNOWN_GRPC_CALL_TOKEN), NOT_FOUND);
    mark();
    checkRc(P + "grpc_close_not_grpc", proxy_grpc_close(UNKNOWN_HTTP_TOKEN), BAD_ARGUMENT);
    mark();
    checkRc(P + "grpc_cancel_unknown", proxy_grpc_cancel(UNKNOWN_GRPC_STREAM_TOKEN), NOT_FOUND);
    mark();
    checkRc(P + "grpc_cancel_not_grpc", proxy_grpc_cancel(UNKNOWN_HTTP_TOKEN), BAD_ARGUMENT);
    return true;
  }

  onTick(): void {
    const P = "tick.";
    ticks++;
    check(P + "once", ticks == 1, "on_tick call " + ticks.toString() + " after the period was set to 0");
    const t = now();
    if (checkNumRc(P + "time", t, OK)) {
      check(P + "time", t.value >= t0, "time went backwards: " + t.value.toString() + " < " + t0.toString() + " (configure)");
    }
    mark();
    checkRc(P + "disable", proxy_set_tick_period_milliseconds(0), OK);
  }

  onQueueReady(token: u32): void {
    const P = "queue_ready.";
    queueReadies++;
    check(P + "token", token == queueToken, "token " + token.toString() + ", registered " + queueToken.toString());
    check(P + "last_registrant", registrationOrder == EXPECTED_WORKERS,
      "delivered to the VM that registered the queue " + registrationOrder.toString() + " of " + EXPECTED_WORKERS.toString() +
        "; Envoy notifies the last registration only");
    // One notification per enqueue, FIFO: q-1 then q-2, then the queue is empty.
    const want = "q-" + queueReadies.toString();
    if (queueReadies > 2) {
      fail(P + "dequeue", "on_queue_ready call " + queueReadies.toString() + " for 2 enqueues (Envoy notifies only the last registrant, once per enqueue)");
      return;
    }
    checkStr(P + "dequeue", dequeue(token), want);
    if (queueReadies == 2) checkRetRc(P + "drained", dequeue(token), EMPTY);
  }

  onHttpCallResponse(token: u32, headers: u32, body_size: u32, trailers: u32): void {
    const P = "http_response.";
    if (!pendingCalls.has(token)) {
      fail(P + "token", "response for unknown token " + token.toString());
      return;
    }
    pass(P + "token");
    const streamId = pendingCalls.get(token);
    pendingCalls.delete(token);

    const status = getHeader(HTTP_CALL_RESPONSE_HEADERS, ":status");
    checkStr(P + "status", status, "200");
    checkStr(P + "echo_method", getHeader(HTTP_CALL_RESPONSE_HEADERS, "x-echo-method"), "POST");
    checkStr(P + "echo_path", getHeader(HTTP_CALL_RESPONSE_HEADERS, "x-echo-path"), "/echo?q=1");
    // Envoy sends the :authority given to proxy_http_call as the Host header.
    checkStr(P + "echo_authority", getHeader(HTTP_CALL_RESPONSE_HEADERS, "x-echo-host"), "conformance.test");
    checkStr(P + "echo_header", getHeader(HTTP_CALL_RESPONSE_HEADERS, "x-echo-req"), "callout");
    checkStr(P + "echo_body_length", getHeader(HTTP_CALL_RESPONSE_HEADERS, "x-echo-content-length"), "4");
    const hp = pairsOf(P + "headers_count", HTTP_CALL_RESPONSE_HEADERS);
    if (hp) check(P + "headers_count", <u32>hp.length == headers && headers > 0,
      "callback says " + headers.toString() + " headers, the map has " + hp.length.toString());
    const body = "pong:ping";
    check(P + "body_size", body_size == <u32>body.length, "body_size " + body_size.toString() + ", want " + body.length.toString());
    checkStr(P + "body", getBuffer(HTTP_CALL_RESPONSE_BODY, 0, body_size), body);
    checkStr(P + "body_slice", getBuffer(HTTP_CALL_RESPONSE_BODY, 5, 4), "ping");
    const bs = bufferStatus(HTTP_CALL_RESPONSE_BODY);
    check(P + "body_status", bs.rc == OK && bs.length == <u32>body.length,
      rcName(bs.rc) + " length " + bs.length.toString());
    check(P + "trailers_count", trailers == 0, "trailers " + trailers.toString() + ", want 0");
    checkEmpty(P + "trailers_empty", getPairsRaw(HTTP_CALL_RESPONSE_TRAILERS));
    const s = getStatus();
    if (s.rc != OK) fail(P + "get_status", rcName(s.rc));
    else if (s.message.memErr != "") fail(P + "get_status", s.message.memErr);
    else check(P + "get_status", s.code == 0 && s.message.size == 0,
      "code " + s.code.toString() + " message " + q(s.message.str) + ", want 0 and empty after a successful call");

    // Act on the paused stream that made the call.
    mark();
    checkRc(P + "effective_context", proxy_set_effective_context(streamId), OK);
    checkStr(P + "stream_headers", getHeader(REQUEST_HEADERS, ":path"), "/callout");
    const a = addHeader(REQUEST_HEADERS, "x-callout-status", status.str);
    const b = addHeader(REQUEST_HEADERS, "x-callout-body", body);
    check(P + "stream_add_header", a == OK && b == OK, rcName(a) + ", " + rcName(b));
    mark();
    checkRc(P + "continue", proxy_continue_stream(STREAM_REQUEST), OK);
  }

  onDone(): bool {
    return true;
  }
}

function logBadLevel(): u32 {
  const b = enc("conformance: this line has an invalid level");
  mark();
  return proxy_log(BAD_LOG_LEVEL, ptrOf(b), b.byteLength);
}

// ---------------------------------------------------------------------------------------------
// Stream context.

class ConformanceStream extends Context {
  kind: string = "";
  logged: bool = false;
  done: bool = false;

  constructor(id: u32, root: RootContext) {
    super(id, root);
  }

  onRequestHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const path = getHeader(REQUEST_HEADERS, ":path");
    this.kind = path.rc == OK ? path.str : "";
    if (this.kind == "/conformance") return this.conformanceRequestHeaders(headers, end_of_stream, path);
    if (this.kind == "/callout") return this.calloutRequestHeaders(end_of_stream);
    if (this.kind == "/local") {
      const h = new Pairs().add("x-local", "1");
      checkRc("local.send", sendLocal(403, "conformance_denied", "denied", h, 0xffffffff), OK);
      // Envoy stops the chain after a local response whatever the callback returns.
      return FilterHeadersStatusValues.Continue;
    }
    fail("stream.path", "unexpected :path " + q(this.kind) + " (" + rcName(path.rc) + ")");
    return FilterHeadersStatusValues.Continue;
  }

  conformanceRequestHeaders(n: u32, eos: bool, path: Ret): FilterHeadersStatusValues {
    const P = "req_headers.";
    check(P + "eos", !eos, "end_of_stream set, the test sends a body");
    checkStr(P + "path", path, "/conformance");
    checkStr(P + "method", getHeader(REQUEST_HEADERS, ":method"), "POST");
    checkStr(P + "case_insensitive_key", getHeader(REQUEST_HEADERS, "X-Conformance"), "yes");
    checkRetRc(P + "missing", getHeader(REQUEST_HEADERS, "x-missing"), NOT_FOUND);
    checkRetRc(P + "response_headers_unavailable", getHeader(RESPONSE_HEADERS, ":status"), BAD_ARGUMENT);
    {
      const ra = addHeader(RESPONSE_HEADERS, "x-a", "1");
      const rr = replaceHeader(RESPONSE_HEADERS, "x-a", "1");
      const rm = removeHeader(RESPONSE_HEADERS, "x-a");
      const rs = getMapSize(RESPONSE_HEADERS).rc;
      const rp = setPairs(RESPONSE_HEADERS, new Pairs().add("x-a", "1"));
      check(P + "mutate_unavailable_map",
        ra == BAD_ARGUMENT && rr == BAD_ARGUMENT && rm == BAD_ARGUMENT && rs == BAD_ARGUMENT && rp == BAD_ARGUMENT,
        "response headers during on_request_headers: add " + rcName(ra) + ", replace " + rcName(rr) + ", remove " + rcName(rm) +
          ", size " + rcName(rs) + ", set_pairs " + rcName(rp) + "; want BAD_ARGUMENT for all");
    }

    // Pairs and size.
    const before = pairsOf(P + "pairs", REQUEST_HEADERS);
    if (before) {
      if (<u32>before.length != n) fail(P + "pairs", "callback says " + n.toString() + " headers, pairs hold " + before.length.toString());
      else if (!before.has(":path", "/conformance") || !before.has("x-conformance", "yes") || !before.has("x-drop-me", "1"))
        fail(P + "pairs", "missing expected headers in " + before.describe());
      else pass(P + "pairs");
      const sz = getMapSize(REQUEST_HEADERS);
      if (checkNumRc(P + "size", sz, OK)) {
        const want = before.byteSize();
        check(P + "size", sz.value == <u64>want,
          "get_header_map_size = " + sz.value.toString() + ", want " + want.toString() +
            " (Envoy returns HeaderMap::byteSize(), the sum of key and value lengths" +
            (sz.value == <u64>before.length ? "; the host returned the entry count" : "") + ")");
      }
    }

    // add / replace / remove.
    const a1 = addHeader(REQUEST_HEADERS, "x-added", "1");
    const a2 = addHeader(REQUEST_HEADERS, "x-added", "2");
    check(P + "add", a1 == OK && a2 == OK, rcName(a1) + ", " + rcName(a2));
    checkStr(P + "add_get_first", getHeader(REQUEST_HEADERS, "x-added"), "1");
    const afterAdd = pairsOf(P + "add_pairs", REQUEST_HEADERS);
    if (afterAdd && before) {
      let firstAt = -1;
      let secondAt = -1;
      for (let i = 0; i < afterAdd.length; i++) {
        if (afterAdd.keys[i] == "x-added" && afterAdd.values[i] == "1") firstAt = i;
        if (afterAdd.keys[i] == "x-added" && afterAdd.values[i] == "2") secondAt = i;
      }
      check(P + "add_pairs", afterAdd.count("x-added") == 2 && firstAt >= 0 && secondAt > firstAt && afterAdd.length == before.length + 2,
        "after two adds: " + afterAdd.describe());
    }
    checkRc(P + "add_uppercase", addHeader(REQUEST_HEADERS, "X-Upper", "U"), OK);
    const upper = pairsOf(P + "add_lowercases_key", REQUEST_HEADERS);
    if (upper) check(P + "add_lowercases_key", upper.has("x-upper", "U") && upper.count("X-Upper") == 0,
      "added X-Upper, map holds " + upper.describe());
    checkRc(P + "replace", replaceHeader(REQUEST_HEADERS, "x-added", "3"), OK);
    checkStr(P + "replace_get", getHeader(REQUEST_HEADERS, "x-added"), "3");
    const afterReplace = pairsOf(P + "replace_single", REQUEST_HEADERS);
    if (afterReplace) check(P + "replace_single", afterReplace.count("x-added") == 1 && afterReplace.has("x-added", "3"),
      "replace must leave one value (Envoy setCopy removes all, then adds): " + afterReplace.describe());
    checkRc(P + "replace_absent", replaceHeader(REQUEST_HEADERS, "x-replaced", "r"), OK);
    checkStr(P + "replace_absent_get", getHeader(REQUEST_HEADERS, "x-replaced"), "r");
    checkRc(P + "remove", removeHeader(REQUEST_HEADERS, "x-added"), OK);
    checkRetRc(P + "remove_get", getHeader(REQUEST_HEADERS, "x-added"), NOT_FOUND);
    checkRc(P + "remove_absent", removeHeader(REQUEST_HEADERS, "x-never-there"), OK);
    checkRc(P + "add_empty_value", addHeader(REQUEST_HEADERS, "x-empty", ""), OK);
    checkEmpty(P + "empty_value", getHeader(REQUEST_HEADERS, "x-empty"));

    // set_header_map_pairs round trip: everything minus x-drop-me, plus x-set-pairs.
    const cur = pairsOf(P + "set_pairs", REQUEST_HEADERS);
    if (cur) {
      const want = cur.without("x-drop-me").add("x-set-pairs", "1");
      const rc = setPairs(REQUEST_HEADERS, want);
      if (rc != OK) fail(P + "set_pairs", rcName(rc));
      else {
        const got = pairsOf(P + "set_pairs", REQUEST_HEADERS);
        if (got) check(P + "set_pairs", sameSet(got, want), "set " + want.describe() + ", got " + got.describe());
      }
    }
    checkRetRc(P + "set_pairs_removed", getHeader(REQUEST_HEADERS, "x-drop-me"), NOT_FOUND);

    // Properties.
    checkStr(P + "prop_path", getProp(["request", "path"]), "/conformance");
    checkStr(P + "prop_method", getProp(["request", "method"]), "POST");
    checkStr(P + "prop_header", getProp(["request", "headers", "x-conformance"]), "yes");
    {
      const r = getProp(["request", "headers"]);
      if (r.rc != OK || r.memErr != "") checkRetRc(P + "prop_headers_map", r, OK);
      else {
        const m = parsePairs(r.buf);
        if (m.err != "") fail(P + "prop_headers_map", "request.headers is not a serialized map: " + m.err);
        else check(P + "prop_headers_map", m.has("x-conformance", "yes") && m.has(":method", "POST"),
          "request.headers map " + m.describe());
      }
    }
    checkRetRc(P + "prop_missing_field", getProp(["request", "conformance_no_such_field"]), NOT_FOUND);
    checkRetRc(P + "prop_unset_filter_state", getProp(["sluice.conformance_never_set"]), NOT_FOUND);
    checkRc(P + "set_property", setProp("sluice.conformance", "fs-1"), OK);
    checkStr(P + "set_property_get", getProp(["sluice.conformance"]), "fs-1");
    checkRc(P + "set_property_again", setProp("sluice.conformance", "fs-2"), OK);
    checkStr(P + "set_property_overwrites", getProp(["sluice.conformance"]), "fs-2");

    // Effective context: the root has no headers; switching back restores the stream.
    mark();
    checkRc(P + "effective_root", proxy_set_effective_context(rootId), OK);
    checkRetRc(P + "effective_root_no_headers", getHeader(REQUEST_HEADERS, ":path"), BAD_ARGUMENT);
    mark();
    checkRc(P + "effective_self", proxy_set_effective_context(this.context_id), OK);
    checkStr(P + "effective_self_headers", getHeader(REQUEST_HEADERS, ":path"), "/conformance");

    // Foreign function: clear_route_cache returns nothing (pointer 0, size 0).
    checkEmpty(P + "foreign_clear_route_cache", foreign("clear_route_cache", ""));

    // http_call that Envoy refuses synchronously.
    const good = new Pairs().add(":method", "GET").add(":path", "/echo").add(":authority", "conformance.test");
    {
      const n = httpCall("conformance-no-such-cluster", good, "", 1000);
      if (checkNumRc(P + "http_call_unknown_cluster", n, BAD_ARGUMENT)) pass(P + "http_call_unknown_cluster");
    }
    {
      const n = httpCall(CLUSTER, good.without(":authority"), "", 1000);
      if (checkNumRc(P + "http_call_no_authority", n, BAD_ARGUMENT)) pass(P + "http_call_no_authority");
    }
    {
      const n = httpCall(CLUSTER, good.without(":path"), "", 1000);
      if (checkNumRc(P + "http_call_no_path", n, BAD_ARGUMENT)) pass(P + "http_call_no_path");
    }

    // Shared data with CAS.
    checkRc(P + "shared_set", setShared("conformance.kv", "v1", 0), OK);
    const s1 = getShared("conformance.kv");
    checkStr(P + "shared_get", s1.ret, "v1");
    check(P + "shared_cas", s1.ret.rc == OK && s1.cas != 0 && s1.cas != SENTINEL, "cas " + s1.cas.toString() + " (must be written and non-zero)");
    checkRc(P + "shared_cas_set", setShared("conformance.kv", "v2", s1.cas), OK);
    const s2 = getShared("conformance.kv");
    checkStr(P + "shared_cas_set_get", s2.ret, "v2");
    check(P + "shared_cas_changes", s2.cas != s1.cas, "cas did not change on set: " + s2.cas.toString());
    checkRc(P + "shared_stale_cas", setShared("conformance.kv", "v-stale", s1.cas), CAS_MISMATCH);
    checkStr(P + "shared_stale_cas_kept", getShared("conformance.kv").ret, "v2");
    checkRc(P + "shared_set_empty", setShared("conformance.empty", "", 0), OK);
    checkEmpty(P + "shared_get_empty", getShared("conformance.empty").ret);

    // Shared queue: two items for on_queue_ready.
    const tok = resolveQueue("", QUEUE);
    if (checkNumRc(P + "queue_resolve", tok, OK)) {
      check(P + "queue_resolve", tok.value == <u64>queueToken, "resolved " + tok.value.toString() + ", registered " + queueToken.toString());
    }
    const e1 = enqueue(<u32>tok.value, "q-1");
    const e2 = enqueue(<u32>tok.value, "q-2");
    check(P + "enqueue", e1 == OK && e2 == OK, rcName(e1) + ", " + rcName(e2));

    // Metrics.
    checkNum(P + "counter_initial", getMetric(counterId), 0);
    mark();
    checkRc(P + "counter_increment", proxy_increment_metric(counterId, 1), OK);
    checkNum(P + "counter_get", getMetric(counterId), 1);
    mark();
    checkRc(P + "counter_record_adds", proxy_record_metric(counterId, 5), OK);
    checkNum(P + "counter_get_after_record", getMetric(counterId), 6);
    mark();
    checkRc(P + "counter_increment_zero", proxy_increment_metric(counterId, 0), BAD_ARGUMENT);
    mark();
    checkRc(P + "counter_increment_negative", proxy_increment_metric(counterId, -1), BAD_ARGUMENT);
    mark();
    checkRc(P + "gauge_record", proxy_record_metric(gaugeId, 40), OK);
    checkNum(P + "gauge_get", getMetric(gaugeId), 40);
    mark();
    checkRc(P + "gauge_decrement", proxy_increment_metric(gaugeId, -2), OK);
    checkNum(P + "gauge_get_decremented", getMetric(gaugeId), 38);
    mark();
    checkRc(P + "gauge_increment", proxy_increment_metric(gaugeId, 4), OK);
    checkNum(P + "gauge_get_incremented", getMetric(gaugeId), 42);
    mark();
    const h1 = proxy_record_metric(histogramId, 7);
    const h2 = proxy_record_metric(histogramId, 9);
    check(P + "histogram_record", h1 == OK && h2 == OK, rcName(h1) + ", " + rcName(h2));
    mark();
    checkRc(P + "histogram_increment", proxy_increment_metric(histogramId, 1), BAD_ARGUMENT);
    {
      const n = getMetric(histogramId);
      if (checkNumRc(P + "histogram_get", n, BAD_ARGUMENT)) pass(P + "histogram_get");
    }
    mark();
    const ui = proxy_increment_metric(UNKNOWN_COUNTER_ID, 1);
    const ur = proxy_record_metric(UNKNOWN_COUNTER_ID, 1);
    const ug = getMetric(UNKNOWN_COUNTER_ID).rc;
    check(P + "metric_unknown_id", ui == NOT_FOUND && ur == NOT_FOUND && ug == NOT_FOUND,
      "increment " + rcName(ui) + ", record " + rcName(ur) + ", get " + rcName(ug) + "; want NOT_FOUND");

    // Time, logging, stream control that must not disturb an HTTP stream.
    const t = now();
    if (checkNumRc(P + "time", t, OK)) check(P + "time", t.value >= t0, t.value.toString() + " < " + t0.toString());
    const dbg = enc("conformance: debug line, below the configured level");
    mark();
    checkRc(P + "log_debug", proxy_log(LOG_DEBUG, ptrOf(dbg), dbg.byteLength), OK);
    mark();
    checkRc(P + "continue_upstream_unimplemented", proxy_continue_stream(STREAM_UPSTREAM), UNIMPLEMENTED);
    mark();
    const cd = proxy_close_stream(STREAM_DOWNSTREAM);
    const cu = proxy_close_stream(STREAM_UPSTREAM);
    check(P + "close_network_streams_noop", cd == OK && cu == OK,
      "close_stream(Downstream) " + rcName(cd) + ", (Upstream) " + rcName(cu) + "; Envoy: OK, nothing to close in an HTTP filter");
    return FilterHeadersStatusValues.Continue;
  }

  calloutRequestHeaders(eos: bool): FilterHeadersStatusValues {
    const P = "callout.";
    check(P + "eos", eos, "end_of_stream not set, the test sends headers only");
    // Worker 0 wrote conformance.kv; this stream runs on worker 1.
    const s = getShared("conformance.kv");
    checkStr(P + "shared_visible", s.ret, "v2");
    checkRc(P + "shared_cas_set", setShared("conformance.kv", "v3", s.cas), OK);
    // Envoy's stats are process-wide: both VMs' ids name the same gauge and counter.
    checkNum(P + "gauge_shared", getMetric(gaugeId), 42);
    checkNum(P + "counter_shared", getMetric(counterId), 6);
    mark();
    checkRc(P + "counter_increment", proxy_increment_metric(counterId, 1), OK);
    checkNum(P + "counter_get", getMetric(counterId), 7);

    const h = new Pairs()
      .add(":method", "POST")
      .add(":path", "/echo?q=1")
      .add(":authority", "conformance.test")
      .add("x-callout-req", "callout");
    const n = httpCall(CLUSTER, h, "ping", 5000);
    if (checkNumRc(P + "http_call", n, OK)) {
      check(P + "http_call", n.value != 0, "token 0");
      pendingCalls.set(<u32>n.value, this.context_id);
    }
    // StopIteration: wait for the response (the host makes it StopAllIterationAndWatermark).
    return FilterHeadersStatusValues.StopIteration;
  }

  onRequestBody(body_buffer_length: usize, end_of_stream: bool): FilterDataStatusValues {
    if (this.kind != "/conformance") return FilterDataStatusValues.Continue;
    const len = <u32>body_buffer_length;
    const st = bufferStatus(REQUEST_BODY);
    if (len == 5) {
      const P = "req_body1.";
      check(P + "eos", !end_of_stream, "end_of_stream set on the first chunk");
      check(P + "status", st.rc == OK && st.length == 5 && st.flags == 0,
        rcName(st.rc) + " length " + st.length.toString() + " flags " + st.flags.toString() + ", want OK 5 0");
      checkStr(P + "bytes", getBuffer(REQUEST_BODY, 0, 5), "hello");
      return FilterDataStatusValues.StopIterationAndBuffer;
    }
    const P = "req_body2.";
    // The first chunk was buffered (StopIterationAndBuffer): Envoy hands the filter all of it.
    check(P + "accumulated_length", len == 11, "body_buffer_length " + len.toString() + ", want 11 (buffered 'hello' + ' world')");
    check(P + "eos", !end_of_stream, "end_of_stream set, the test sends trailers");
    check(P + "status", st.rc == OK && st.length == len, rcName(st.rc) + " length " + st.length.toString());
    checkStr(P + "bytes", getBuffer(REQUEST_BODY, 0, len), "hello world");
    checkStr(P + "slice", getBuffer(REQUEST_BODY, 6, 5), "world");
    checkStr(P + "truncated", getBuffer(REQUEST_BODY, 6, 100), "world");
    checkEmpty(P + "past_end", getBuffer(REQUEST_BODY, 20, 5));
    checkEmpty(P + "zero_length", getBuffer(REQUEST_BODY, 0, 0));
    // Envoy Buffer::copyFrom: start 0 drains `length` bytes then prepends the data (so length 0
    // prepends and length = size replaces); start >= size appends; anything else is BAD_ARGUMENT.
    checkRc(P + "replace", setBuffer(REQUEST_BODY, 0, len, "HELLO, WORLD"), OK);
    checkStr(P + "replace_get", getBuffer(REQUEST_BODY, 0, 100), "HELLO, WORLD");
    checkRc(P + "append", setBuffer(REQUEST_BODY, 12, 0, "+tail"), OK);
    checkStr(P + "append_get", getBuffer(REQUEST_BODY, 0, 100), "HELLO, WORLD+tail");
    checkRc(P + "prepend", setBuffer(REQUEST_BODY, 0, 0, "pre-"), OK);
    checkStr(P + "prepend_get", getBuffer(REQUEST_BODY, 0, 100), "pre-HELLO, WORLD+tail");
    checkRc(P + "drain_prepend", setBuffer(REQUEST_BODY, 0, 4, "PRE:"), OK);
    checkStr(P + "drain_prepend_get", getBuffer(REQUEST_BODY, 0, 100), "PRE:HELLO, WORLD+tail");
    checkRc(P + "middle_bad", setBuffer(REQUEST_BODY, 3, 2, "xx"), BAD_ARGUMENT);
    checkStr(P + "unchanged_after_bad", getBuffer(REQUEST_BODY, 0, 100), "PRE:HELLO, WORLD+tail");
    const st2 = bufferStatus(REQUEST_BODY);
    check(P + "status_after", st2.rc == OK && st2.length == 21, rcName(st2.rc) + " length " + st2.length.toString() + ", want 21");
    checkRc(P + "bad_type", setBuffer(BAD_BUFFER, 0, 0, "x"), BAD_ARGUMENT);
    // Envoy forgets the request headers once on_request_headers returned Continue.
    checkRetRc(P + "request_headers_gone", getHeader(REQUEST_HEADERS, ":path"), BAD_ARGUMENT);
    return FilterDataStatusValues.Continue;
  }

  onRequestTrailers(trailers: u32): FilterTrailersStatusValues {
    if (this.kind != "/conformance") return FilterTrailersStatusValues.Continue;
    const P = "req_trailers.";
    check(P + "count", trailers == 1, "callback says " + trailers.toString() + " trailers, want 1");
    checkStr(P + "get", getHeader(REQUEST_TRAILERS, "x-trailer"), "t1");
    checkRc(P + "add", addHeader(REQUEST_TRAILERS, "x-trailer-added", "a"), OK);
    checkStr(P + "add_get", getHeader(REQUEST_TRAILERS, "x-trailer-added"), "a");
    checkRc(P + "replace", replaceHeader(REQUEST_TRAILERS, "x-trailer", "t2"), OK);
    checkRc(P + "remove", removeHeader(REQUEST_TRAILERS, "x-trailer-added"), OK);
    const p = pairsOf(P + "pairs", REQUEST_TRAILERS);
    if (p) check(P + "pairs", p.length == 1 && p.has("x-trailer", "t2"), "trailers " + p.describe() + ", want [x-trailer='t2']");
    checkNum(P + "size", getMapSize(REQUEST_TRAILERS), 11);
    checkRetRc(P + "response_trailers_unavailable", getHeader(RESPONSE_TRAILERS, "x-trailer"), BAD_ARGUMENT);
    return FilterTrailersStatusValues.Continue;
  }

  onResponseHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    if (this.kind == "/local") {
      // Envoy sends a local reply through the encoder filters, this one included.
      const s = getHeader(RESPONSE_HEADERS, ":status");
      const x = getHeader(RESPONSE_HEADERS, "x-local");
      check("local.response_headers", s.rc == OK && s.str == "403" && x.rc == OK && x.str == "1",
        ":status " + rcName(s.rc) + " " + q(s.str) + ", x-local " + rcName(x.rc) + " " + q(x.str) + "; want 403 and 1");
      return FilterHeadersStatusValues.Continue;
    }
    if (this.kind != "/conformance") return FilterHeadersStatusValues.Continue;
    const P = "resp_headers.";
    check(P + "count", headers == 3, "callback says " + headers.toString() + " headers, want 3");
    check(P + "eos", !end_of_stream, "end_of_stream set, the test sends a body");
    checkStr(P + "status", getHeader(RESPONSE_HEADERS, ":status"), "200");
    checkStr(P + "get", getHeader(RESPONSE_HEADERS, "x-upstream"), "u");
    {
      const r = getProp(["response", "code"]);
      if (r.rc != OK || r.memErr != "") checkRetRc(P + "prop_response_code", r, OK);
      else check(P + "prop_response_code", r.size == 8 && load<u64>(changetype<usize>(r.buf)) == 200,
        "response.code is " + r.size.toString() + " bytes" + (r.size == 8 ? " = " + load<u64>(changetype<usize>(r.buf)).toString() : "") +
          ", want 200 as an 8-byte little-endian integer");
    }
    checkRetRc(P + "request_headers_gone", getHeader(REQUEST_HEADERS, ":path"), BAD_ARGUMENT);
    checkStr(P + "filter_state", getProp(["sluice.conformance"]), "fs-2");
    checkRc(P + "add", addHeader(RESPONSE_HEADERS, "x-resp-added", "1"), OK);
    checkRc(P + "replace", replaceHeader(RESPONSE_HEADERS, "x-upstream", "u2"), OK);
    checkRc(P + "remove", removeHeader(RESPONSE_HEADERS, "content-type"), OK);
    checkRetRc(P + "remove_get", getHeader(RESPONSE_HEADERS, "content-type"), NOT_FOUND);
    const cur = pairsOf(P + "pairs", RESPONSE_HEADERS);
    if (cur) check(P + "pairs",
      <u32>cur.length == headers && cur.has(":status", "200") && cur.count("x-upstream") == 1 && cur.has("x-upstream", "u2") &&
        cur.has("x-resp-added", "1") && cur.count("content-type") == 0,
      "after add x-resp-added, replace x-upstream, remove content-type: " + cur.describe());
    const want = new Pairs().add(":status", "200").add("x-upstream", "u2").add("x-resp-added", "1").add("x-set-pairs", "resp");
    checkRc(P + "set_pairs", setPairs(RESPONSE_HEADERS, want), OK);
    const got = pairsOf(P + "set_pairs_get", RESPONSE_HEADERS);
    if (got) {
      check(P + "set_pairs_get", sameSet(got, want), "got " + got.describe() + ", want " + want.describe());
      checkNum(P + "size", getMapSize(RESPONSE_HEADERS), <u64>want.byteSize());
    }
    return FilterHeadersStatusValues.Continue;
  }

  onResponseBody(body_buffer_length: usize, end_of_stream: bool): FilterDataStatusValues {
    if (this.kind != "/conformance") return FilterDataStatusValues.Continue;
    const len = <u32>body_buffer_length;
    if (len == 6) {
      const P = "resp_body1.";
      check(P + "eos", !end_of_stream, "end_of_stream set on the first chunk");
      checkStr(P + "bytes", getBuffer(RESPONSE_BODY, 0, len), "resp-1");
      return FilterDataStatusValues.StopIterationAndBuffer;
    }
    const P = "resp_body2.";
    check(P + "accumulated_length", len == 12, "body_buffer_length " + len.toString() + ", want 12");
    checkStr(P + "bytes", getBuffer(RESPONSE_BODY, 0, len), "resp-1resp-2");
    checkRc(P + "replace", setBuffer(RESPONSE_BODY, 0, len, "RESPONSE"), OK);
    checkRc(P + "append", setBuffer(RESPONSE_BODY, 8, 0, "!"), OK);
    checkStr(P + "get", getBuffer(RESPONSE_BODY, 0, 100), "RESPONSE!");
    return FilterDataStatusValues.Continue;
  }

  onResponseTrailers(trailers: u32): FilterTrailersStatusValues {
    if (this.kind != "/conformance") return FilterTrailersStatusValues.Continue;
    const P = "resp_trailers.";
    check(P + "count", trailers == 1, "callback says " + trailers.toString() + " trailers, want 1");
    checkStr(P + "get", getHeader(RESPONSE_TRAILERS, "x-resp-trailer"), "rt");
    checkRc(P + "add", addHeader(RESPONSE_TRAILERS, "x-resp-trailer-added", "a"), OK);
    const p = pairsOf(P + "pairs", RESPONSE_TRAILERS);
    if (p) check(P + "pairs", p.length == 2 && p.has("x-resp-trailer", "rt") && p.has("x-resp-trailer-added", "a"), p.describe());
    checkRetRc(P + "request_trailers_gone", getHeader(REQUEST_TRAILERS, "x-trailer"), BAD_ARGUMENT);
    return FilterTrailersStatusValues.Continue;
  }

  onLog(): void {
    this.logged = true;
    if (this.kind != "/conformance") return;
    const P = "log.";
    // Envoy's access-log phase: the final request/response headers are readable.
    checkStr(P + "request_header", getHeader(REQUEST_HEADERS, ":path"), "/conformance");
    checkStr(P + "request_header_modified", getHeader(REQUEST_HEADERS, "x-set-pairs"), "1");
    checkStr(P + "response_header", getHeader(RESPONSE_HEADERS, "x-set-pairs"), "resp");
    // Maps Envoy has no access-log view of are NOT_FOUND there (ABI 0.2.x), not BAD_ARGUMENT.
    checkRetRc(P + "request_trailers_not_found", getHeader(REQUEST_TRAILERS, "x-trailer"), NOT_FOUND);
    checkStr(P + "prop_path", getProp(["request", "path"]), "/conformance");
    checkStr(P + "filter_state", getProp(["sluice.conformance"]), "fs-2");
    const r = getProp(["response", "code"]);
    check(P + "prop_response_code", r.rc == OK && r.size == 8 && load<u64>(changetype<usize>(r.buf)) == 200,
      rcName(r.rc) + " " + r.size.toString() + " bytes" + (r.memErr != "" ? " (" + r.memErr + ")" : ""));
  }

  onDone(): bool {
    this.done = true;
    if (this.kind == "/conformance") check("done.after_log", this.logged, "proxy_on_done before proxy_on_log");
    return true;
  }

  onDelete(): void {
    if (this.kind == "/conformance") check("delete.after_done", this.done, "proxy_on_delete without proxy_on_done");
  }
}

registerRootContext((context_id: u32): RootContext => {
  return new ConformanceRoot(context_id);
}, "conformance");
