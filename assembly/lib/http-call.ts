// proxy_http_call for filters: a thin layer over the SDK's RootContext.httpCall (which keeps the
// token -> callback map and makes the origin context effective before the callback), plus the
// few host calls an asynchronous filter needs around it. Like sdk.ts, the only other file that
// touches the SDK.
//
// Envoy delivers the answer to the root context. A timeout arrives as a 504 answer ("upstream
// request timeout"), a refused connection as a 503; only a reset after the answer began (or the VM
// shutting down: the SDK then calls every pending callback with zeros) gives no headers at all.
// The origin stream may be gone by then (the client hung up): callers must check before touching
// it.
import * as imports from "@gcoredev/proxy-wasm-sdk-as/assembly/imports";
import { RootContext, BaseContext, makeHeaderPair, HeaderPair } from "@gcoredev/proxy-wasm-sdk-as/assembly";
import { WasmResultValues } from "@gcoredev/proxy-wasm-sdk-as/assembly";
import { HTTP_CALL_RESPONSE_HEADERS, HTTP_CALL_RESPONSE_BODY, getHeader, getBuffer } from "./sdk";

export type HttpCallCallback = (origin: BaseContext, headers: u32, bodySize: usize, trailers: u32) => void;

/**
 * Sends an HTTP request to an Envoy cluster. headers is a flat [name, value, ...] list and must
 * hold :method, :path and :authority. Returns false when Envoy refused it (unknown cluster, bad
 * headers); then cb is never called.
 */
export function httpCall(root: RootContext, cluster: string, headers: Array<string>, body: ArrayBuffer, timeoutMs: u32, origin: BaseContext, cb: HttpCallCallback): bool {
  const pairs = new Array<HeaderPair>();
  for (let i = 0; i + 1 < headers.length; i += 2) pairs.push(makeHeaderPair(headers[i], headers[i + 1]));
  return root.httpCall(cluster, pairs, body, [], timeoutMs, origin, cb) == WasmResultValues.Ok;
}

/** The :status of the answer being delivered, or 0 (no answer: reset or shutdown). */
export function httpCallStatus(headers: u32): i32 {
  if (headers == 0) return 0;
  const s = getHeader(HTTP_CALL_RESPONSE_HEADERS, ":status");
  if (s === null) return 0;
  const v = I32.parseInt(s as string);
  return v > 0 && v < 1000 ? v : 0;
}

/** The body of the answer being delivered. */
export function httpCallBody(bodySize: usize): ArrayBuffer {
  if (bodySize == 0) return new ArrayBuffer(0);
  return getBuffer(HTTP_CALL_RESPONSE_BODY, 0, <u32>bodySize);
}

/** Makes later host calls act on context id (a stream resumed from a callback of another's). */
export function setEffectiveContext(id: u32): bool {
  return imports.proxy_set_effective_context(id) == WasmResultValues.Ok;
}

/** Asks Envoy to call the root context's onTick every ms milliseconds (0 stops it). */
export function setTickPeriodMs(ms: u32): void {
  imports.proxy_set_tick_period_milliseconds(ms);
}
