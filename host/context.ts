// One proxy-wasm context inside a VM: the root context of a plugin, or one stream's context for one
// filter. Field by field it mirrors Envoy's Context (source/extensions/common/wasm/context.cc) and
// cpp-host's ContextBase (src/context.cc), because which map or buffer a call may touch depends on
// exactly these pointers: e.g. request_headers_ is dropped as soon as the filter returns Continue
// from its headers callback, so a later add_header_map_value(RequestHeaders) is BAD_ARGUMENT.
import { DataStatus, GRPC_UNAVAILABLE, HeadersStatus, MapType, TrailersStatus, WasmResult } from "./abi.js";
import { Body, ConstBuffer, EMPTY_BUFFER, type BufferRef } from "./buffers.js";
import type { FilterSlot } from "./filter-callbacks.js";
import type { HeaderList } from "./headers.js";

// Body and BufferRef were declared here first; the stream and the native filters import them from
// host/buffers.ts.
export { Body, type BufferRef };

/** What a context needs of the VM it lives in (host/vm.ts): the calls into the module, the failure
 * state, and the plugin's settings that decide how a callback's result is read. */
export interface ContextVm {
  readonly failed: boolean;
  readonly stopIteration: boolean;
  readonly contexts: Map<number, Context>;
  readonly plugin: {
    readonly vmConfiguration: Buffer;
    readonly failOpen: boolean;
    readonly abiVersion: string;
    readonly allowOnHeadersStopIteration: boolean;
  };
  has(fn: string): boolean;
  callback<T = unknown>(ctx: Context, name: string, args: unknown[], convert?: (raw: unknown) => T): T;
}

export interface HttpCallResponse {
  headers: HeaderList;
  body: Buffer;
  trailers: HeaderList | null;
}

export class Context {
  readonly root: Context;
  /** The stream slot (filter in a stream) for stream contexts; null for root and VM contexts. */
  slot: FilterSlot | null = null;
  /** in_vm_context_created_: proxy_on_context_create has been called (or skipped on a failed VM). */
  created = false;
  streamFailed = false;
  failureLocalReplySent = false;
  destroyed = false;

  requestHeaders: HeaderList | null = null;
  requestBody: Body | null = null;
  requestTrailers: HeaderList | null = null;
  responseHeaders: HeaderList | null = null;
  responseBody: Body | null = null;
  responseTrailers: HeaderList | null = null;
  bufferingRequestBody = false;
  bufferingResponseBody = false;
  endOfStream = false;
  accessLogPhase = false;
  accessLogRequestHeaders: HeaderList | null = null;
  accessLogResponseHeaders: HeaderList | null = null;
  accessLogResponseTrailers: HeaderList | null = null;

  /** temp_plugin_: the plugin configuration, readable only while it is set (on_configure). */
  tempPluginConfig: Buffer | null = null;

  // Root context only.
  httpCallResponse: HttpCallResponse | null = null;
  statusCode = 0;
  statusMessage = "";
  tickPeriodMs = 0;

  constructor(
    readonly vm: ContextVm,
    readonly id: number,
    root: Context | null,
  ) {
    this.root = root ?? this;
  }

  get isRoot(): boolean {
    return this.root === this;
  }

  // ---- Maps (Envoy Context::getMap / getConstMap) ----

  /** The map a mutating call may change, or null (BAD_ARGUMENT). */
  getMap(type: number): HeaderList | null {
    switch (type) {
      case MapType.RequestHeaders:
        return this.requestHeaders;
      case MapType.RequestTrailers:
        // Envoy adds trailers on demand in the last body callback (addDecodedTrailers).
        if (!this.requestTrailers && this.requestBody && this.endOfStream && this.slot) {
          this.requestTrailers = this.slot.stream.addTrailers("request", this.slot);
        }
        return this.requestTrailers;
      case MapType.ResponseHeaders:
        return this.responseHeaders;
      case MapType.ResponseTrailers:
        if (!this.responseTrailers && this.responseBody && this.endOfStream && this.slot) {
          this.responseTrailers = this.slot.stream.addTrailers("response", this.slot);
        }
        return this.responseTrailers;
      default:
        return null;
    }
  }

  /** The map a reading call sees, or null. */
  getConstMap(type: number): HeaderList | null {
    switch (type) {
      case MapType.RequestHeaders:
        return this.accessLogPhase ? this.accessLogRequestHeaders : this.requestHeaders;
      case MapType.RequestTrailers:
        return this.accessLogPhase ? null : this.requestTrailers;
      case MapType.ResponseHeaders:
        return this.accessLogPhase ? this.accessLogResponseHeaders : this.responseHeaders;
      case MapType.ResponseTrailers:
        return this.accessLogPhase ? this.accessLogResponseTrailers : this.responseTrailers;
      case MapType.HttpCallResponseHeaders:
        return this.root.httpCallResponse?.headers ?? null;
      case MapType.HttpCallResponseTrailers:
        return this.root.httpCallResponse?.trailers ?? null;
      default:
        return null; // gRPC metadata: no gRPC calls in this host
    }
  }

  // ---- Buffers (Envoy Context::getBuffer) ----

  getBuffer(type: number): BufferRef | null {
    switch (type) {
      case 6: // VmConfiguration: always readable in Envoy (buffer_.set(wasm()->vm_configuration()))
        return new ConstBuffer(this.vm.plugin.vmConfiguration);
      case 7: // PluginConfiguration: only while temp_plugin_ is set
        return this.tempPluginConfig ? new ConstBuffer(this.tempPluginConfig) : null;
      case 0:
        return this.requestBody ?? EMPTY_BUFFER;
      case 1:
        return this.responseBody ?? EMPTY_BUFFER;
      case 4: {
        const r = this.root.httpCallResponse;
        return r ? new ConstBuffer(r.body) : null;
      }
      case 2: // network data, gRPC receive buffer, call data: empty in an HTTP filter
      case 3:
      case 5:
      case 8:
        return EMPTY_BUFFER;
      default:
        return null;
    }
  }

  // ---- Calls into the module (cpp-host ContextBase::on*, Envoy Context::decode*/encode*) ----

  /** CHECK_FAIL_HTTP: on a failed VM, fail open (skip) or fail the stream once with a 503. */
  private failed<T>(open: T, closed: T): T | undefined {
    if (!this.vm.failed) return undefined;
    if (this.vm.plugin.failOpen) return open;
    if (!this.streamFailed) {
      this.streamFailed = true;
      this.failStream();
    }
    return closed;
  }

  /** Envoy Context::failStream: a 503 local reply, details "wasm_fail_stream", empty body. */
  private failStream(): void {
    if (!this.slot || this.failureLocalReplySent) return;
    this.failureLocalReplySent = true;
    this.slot.stream.localReply(this.slot, {
      statusCode: 503,
      body: Buffer.alloc(0),
      headers: [],
      grpcStatus: GRPC_UNAVAILABLE,
      details: "wasm_fail_stream",
    });
  }

  /** ContextBase::onCreate. */
  onCreate(): void {
    if (!this.vm.failed && !this.created && this.vm.has("proxy_on_context_create")) {
      this.vm.callback(this, "proxy_on_context_create", [this.id, this.isRoot ? 0 : this.root.id]);
    }
    this.created = true;
  }

  private headersCall(fn: string, n: number, end: boolean): number {
    const f = this.failed(HeadersStatus.Continue, HeadersStatus.StopAllIterationAndWatermark);
    if (f !== undefined) return f;
    if (!this.vm.has(fn)) return HeadersStatus.Continue;
    // cpp-host on_request_headers_abi_01_ (context_id, headers) vs _abi_02_ (..., end_of_stream).
    const args = this.vm.plugin.abiVersion === "0.1.0" ? [this.id, n] : [this.id, n, end ? 1 : 0];
    return this.vm.callback(this, fn, args, (raw) => {
      const f2 = this.failed(HeadersStatus.Continue, HeadersStatus.StopAllIterationAndWatermark);
      if (f2 !== undefined) return f2;
      return this.convertHeaders(Number(raw) >>> 0);
    });
  }

  private dataCall(fn: string, n: number, end: boolean): number {
    const f = this.failed(DataStatus.Continue, DataStatus.StopIterationNoBuffer);
    if (f !== undefined) return f;
    if (!this.vm.has(fn)) return DataStatus.Continue;
    return this.vm.callback(this, fn, [this.id, n, end ? 1 : 0], (raw) => {
      const f2 = this.failed(DataStatus.Continue, DataStatus.StopIterationNoBuffer);
      if (f2 !== undefined) return f2;
      const r = Number(raw) >>> 0;
      // convertVmCallResultToFilterDataStatus
      if (this.vm.stopIteration || r > DataStatus.StopIterationNoBuffer) return DataStatus.StopIterationNoBuffer;
      return r;
    });
  }

  private trailersCall(fn: string, n: number): number {
    const f = this.failed(TrailersStatus.Continue, TrailersStatus.StopIteration);
    if (f !== undefined) return f;
    if (!this.vm.has(fn)) return TrailersStatus.Continue;
    return this.vm.callback(this, fn, [this.id, n], (raw) => {
      const f2 = this.failed(TrailersStatus.Continue, TrailersStatus.StopIteration);
      if (f2 !== undefined) return f2;
      const r = Number(raw) >>> 0;
      if (this.vm.stopIteration || r > TrailersStatus.StopIteration) return TrailersStatus.StopIteration;
      return r;
    });
  }

  /** cpp-host convertVmCallResultToFilterHeadersStatus (issue proxy-wasm-cpp-host#143). */
  private convertHeaders(r: number): number {
    if (this.vm.stopIteration || r > HeadersStatus.StopAllIterationAndWatermark) return HeadersStatus.StopAllIterationAndWatermark;
    if (r === HeadersStatus.StopIteration && !this.vm.plugin.allowOnHeadersStopIteration) {
      return HeadersStatus.StopAllIterationAndWatermark;
    }
    // Envoy convertFilterHeadersStatus maps ContinueAndEndStream (2) to Continue.
    if (r === HeadersStatus.ContinueAndEndStream) return HeadersStatus.Continue;
    return r;
  }

  decodeHeaders(headers: HeaderList, end: boolean): number {
    this.onCreate();
    this.requestHeaders = headers;
    this.endOfStream = end;
    const r = this.headersCall("proxy_on_request_headers", headers.length, end);
    if (r === HeadersStatus.Continue) this.requestHeaders = null;
    return r;
  }

  decodeData(body: Body, end: boolean): number {
    if (!this.created) return DataStatus.Continue;
    this.requestBody = body;
    this.endOfStream = end;
    const r = this.dataCall("proxy_on_request_body", body.data.length, end);
    this.bufferingRequestBody = r === DataStatus.StopIterationAndBuffer;
    if (r === DataStatus.Continue) this.requestBody = null;
    return r;
  }

  decodeTrailers(trailers: HeaderList): number {
    if (!this.created) return TrailersStatus.Continue;
    this.requestTrailers = trailers;
    const r = this.trailersCall("proxy_on_request_trailers", trailers.length);
    if (r === TrailersStatus.Continue) this.requestTrailers = null;
    return r;
  }

  encodeHeaders(headers: HeaderList, end: boolean): number {
    // Envoy: no VM context (the filter never saw the request) or a failed stream: pass through.
    if (!this.created || this.failureLocalReplySent) return HeadersStatus.Continue;
    this.responseHeaders = headers;
    this.endOfStream = end;
    const r = this.headersCall("proxy_on_response_headers", headers.length, end);
    if (r === HeadersStatus.Continue) this.responseHeaders = null;
    return r;
  }

  encodeData(body: Body, end: boolean): number {
    if (!this.created || this.failureLocalReplySent) return DataStatus.Continue;
    this.responseBody = body;
    this.endOfStream = end;
    const r = this.dataCall("proxy_on_response_body", body.data.length, end);
    this.bufferingResponseBody = r === DataStatus.StopIterationAndBuffer;
    if (r === DataStatus.Continue) this.responseBody = null;
    return r;
  }

  encodeTrailers(trailers: HeaderList): number {
    if (!this.created || this.failureLocalReplySent) return TrailersStatus.Continue;
    this.responseTrailers = trailers;
    const r = this.trailersCall("proxy_on_response_trailers", trailers.length);
    if (r === TrailersStatus.Continue) this.responseTrailers = null;
    return r;
  }

  /** Envoy Context::log: creates the VM context if the filter never saw the request, then on_log. */
  log(requestHeaders: HeaderList | null, responseHeaders: HeaderList | null, responseTrailers: HeaderList | null): void {
    if (!this.created) this.onCreate();
    this.accessLogPhase = true;
    this.accessLogRequestHeaders = requestHeaders;
    this.accessLogResponseHeaders = responseHeaders;
    this.accessLogResponseTrailers = responseTrailers;
    if (!this.vm.failed && this.vm.has("proxy_on_log")) this.vm.callback(this, "proxy_on_log", [this.id]);
    this.accessLogPhase = false;
    this.accessLogRequestHeaders = this.accessLogResponseHeaders = this.accessLogResponseTrailers = null;
  }

  /** Envoy Context::onDestroy: on_done then on_delete, once, only if the VM context exists. */
  destroy(): void {
    if (this.destroyed || !this.created) return;
    this.destroyed = true;
    if (!this.vm.failed && this.vm.has("proxy_on_done")) this.vm.callback(this, "proxy_on_done", [this.id]);
    if (!this.vm.failed && this.vm.has("proxy_on_delete")) this.vm.callback(this, "proxy_on_delete", [this.id]);
    this.vm.contexts.delete(this.id);
  }
}
