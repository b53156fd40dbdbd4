// One VM instance of a plugin (Envoy runs one per worker thread): its WebAssembly.Instance, its
// contexts, and the env.* host functions exactly as cpp-host src/exports.cc implements them
// (argument checks, result codes, memory handling) with Envoy's Context behind them.
import { BufferType, LOG_LEVELS, MapType, MetricType, StreamType, WasmResult } from "./abi.js";
import { Context } from "./context.js";
import { HostViolation, WasmTrap } from "./errors.js";
import {
  addValue, byteSize, deserializePairs, getFirst, removeValue, replaceValue, serializePairs,
  type HeaderList,
} from "./headers.js";
import { MemView } from "./memory.js";
import { recordSample, type Metric } from "./metrics.js";
import type { HostCore } from "./host-core.js";
import { getProperty } from "./properties.js";
import { makeWasi } from "./wasi.js";
import type { AbiVersion } from "./signatures.js";
import { ALL_HOST_FUNCTIONS } from "./envoy-abi.mjs";

type Fn = (...args: any[]) => any;

/** What a VM needs of the plugin it runs (host/plugin.ts): its names, configuration and host. */
export interface VmPlugin {
  readonly name: string;
  readonly rootId: string;
  readonly vmId: string;
  readonly vmConfiguration: Buffer;
  readonly env: ReadonlyArray<readonly [string, string]>;
  readonly abiVersion: AbiVersion;
  readonly failOpen: boolean;
  readonly allowOnHeadersStopIteration: boolean;
  readonly host: HostCore;
}

// Host functions cpp-host lets a module call while _initialize/_start run (WasmBase::startVm); any
// other call traps with "restricted_callback".
const START_ALLOWED_ENV = new Set(["proxy_log", "emscripten_notify_memory_growth"]);

// The module's exports the host calls (cpp-host FOR_ALL_MODULE_FUNCTIONS plus the headers callbacks;
// proxy_on_foreign_function is looked up for ABI 0.2.x only, WasmBase::getFunctions).
const CALLBACKS = [
  "proxy_on_context_create", "proxy_on_vm_start", "proxy_on_configure", "proxy_on_tick",
  "proxy_on_request_headers", "proxy_on_request_body", "proxy_on_request_trailers",
  "proxy_on_response_headers", "proxy_on_response_body", "proxy_on_response_trailers",
  "proxy_on_log", "proxy_on_done", "proxy_on_delete", "proxy_on_http_call_response",
  "proxy_on_queue_ready", "proxy_on_foreign_function",
];

export class Vm {
  instance!: WebAssembly.Instance;
  mem!: MemView;
  private fns = new Map<string, Fn>();
  private malloc!: Fn;
  readonly contexts = new Map<number, Context>();
  private nextContextId = 1; // 0 is the VM context (cpp-host WasmBase::next_context_id_)
  /** The VM context (id 0): current during _initialize/_start. */
  readonly vmContext: Context;
  root!: Context;
  current: Context | null = null;
  private effectiveId = 0;
  failed = false;
  /** cpp-host stop_iteration_: set by send_local_response, forces the callback's result to stop. */
  stopIteration = false;
  private afterActions: Array<() => void> = [];
  private restricted = false;
  private metricIds = new Map<number, Metric>();
  private nextMetricId = [MetricType.Counter, MetricType.Gauge, MetricType.Histogram];
  nextHttpCallId = 0; // CalloutType::HttpCall
  /** Outstanding proxy_http_call requests by token (cancelled when the host closes). */
  readonly httpCalls = new Map<number, { cancel: () => void }>();

  constructor(
    readonly plugin: VmPlugin,
    readonly worker: number,
  ) {
    this.vmContext = new Context(this, 0, null);
  }

  get vmId(): string {
    return this.plugin.vmId;
  }

  allocContextId(): number {
    while (this.contexts.has(this.nextContextId)) this.nextContextId++;
    return this.nextContextId++;
  }

  newContext(root: Context | null): Context {
    const ctx = new Context(this, this.allocContextId(), root);
    this.contexts.set(ctx.id, ctx);
    return ctx;
  }

  // ---- Instantiation (cpp-host WasmBase::initialize / startVm) ----

  /** Returns an error message as Envoy would log it, or null. */
  instantiate(module: WebAssembly.Module): string | null {
    const env = this.envImports();
    const wasi = makeWasi({
      mem: () => this.mem,
      log: (level, msg) => this.log(level, msg),
      nowNs: () => this.plugin.host.now(),
      error: (msg) => this.log(0, msg), // Envoy Context::error logs at trace
      checkAllowed: (name) => this.checkAllowed(name),
      env: this.plugin.env,
    });
    const imports: WebAssembly.Imports = { env: {}, wasi_snapshot_preview1: {}, wasi_unstable: {} };
    const ins = this.plugin.host.instrument;
    for (const imp of WebAssembly.Module.imports(module)) {
      const table = imp.module === "env" ? env : imp.module === "wasi_snapshot_preview1" || imp.module === "wasi_unstable" ? wasi : null;
      const fn = imp.kind === "function" && table ? table[imp.name] : undefined;
      if (!fn) return `Failed to load Wasm module due to a missing import: ${imp.module}.${imp.name}`;
      (imports[imp.module] as Record<string, Fn>)[imp.name] = ins?.import ? ins.import(this.plugin.name, imp.module, imp.name, fn) : fn;
    }
    try {
      this.instance = new WebAssembly.Instance(module, imports);
    } catch (e) {
      return `Failed to create new Wasm instance: ${(e as Error).message}`;
    }
    let ex = this.instance.exports as Record<string, unknown>;
    if (ins?.export) {
      const wrapped: Record<string, unknown> = { ...ex };
      for (const [name, v] of Object.entries(ex)) if (typeof v === "function") wrapped[name] = ins.export(this.plugin.name, name, v as Fn);
      ex = wrapped;
    }
    const memory = ex.memory;
    if (!(memory instanceof WebAssembly.Memory)) return "Wasm module is missing memory export";
    this.mem = new MemView(memory);
    const malloc = (ex.malloc ?? ex.proxy_on_memory_allocate) as Fn | undefined;
    if (typeof malloc !== "function") return "Wasm module is missing malloc function.";
    this.malloc = malloc;
    for (const name of CALLBACKS) {
      if (name === "proxy_on_foreign_function" && this.plugin.abiVersion === "0.1.0") continue;
      if (typeof ex[name] === "function") this.fns.set(name, ex[name] as Fn);
    }
    // WASI reactor (_initialize, then main/__main_void if present) or command (_start).
    const start: Array<[string, unknown[]]> = [];
    if (typeof ex._initialize === "function") {
      start.push(["_initialize", []]);
      if (typeof ex.main === "function") start.push(["main", [0, 0]]);
      else if (typeof ex.__main_void === "function") start.push(["__main_void", []]);
    } else if (typeof ex._start === "function") start.push(["_start", []]);
    this.restricted = true;
    try {
      for (const [name, args] of start) {
        this.invoke(this.vmContext, name, ex[name] as Fn, args);
        if (this.failed) return this.failMessage;
      }
    } finally {
      this.restricted = false;
    }
    return null;
  }

  failMessage = "";

  private checkAllowed(name: string): void {
    if (this.restricted) throw new WasmTrap("restricted_callback");
    void name;
  }

  has(fn: string): boolean {
    return this.fns.has(fn);
  }

  // ---- Calls into the module ----

  /** The context host calls act on: the effective context if set and alive (contextOrEffectiveContext). */
  ctx(): Context {
    if (this.effectiveId !== 0) {
      const c = this.contexts.get(this.effectiveId);
      if (c) return c;
    }
    return this.current ?? this.vmContext;
  }

  /** Calls an export with cpp-host's SaveRestoreContext; a trap fails the VM. */
  private invoke(ctx: Context, name: string, fn: Fn, args: unknown[]): unknown {
    const prevCurrent = this.current;
    const prevEffective = this.effectiveId;
    this.current = ctx;
    this.effectiveId = 0;
    try {
      // Callbacks take one to three arguments: called directly, not spread (a copy per call).
      switch (args.length) {
        case 1: return fn(args[0]);
        case 2: return fn(args[0], args[1]);
        case 3: return fn(args[0], args[1], args[2]);
        default: return fn(...args);
      }
    } catch (e) {
      if (e instanceof HostViolation) throw e;
      this.fail(name, e);
      return undefined;
    } finally {
      this.current = prevCurrent;
      this.effectiveId = prevEffective;
    }
  }

  /**
   * One callback into the module as cpp-host's ContextBase::on* makes it: the call, then `convert`
   * (which sees stop_iteration_ and the failure state), then DeferAfterCallActions: clear
   * stop_iteration_ and run the actions the module queued (local reply, continue, ...).
   */
  callback<T = unknown>(ctx: Context, name: string, args: unknown[], convert?: (raw: unknown) => T): T {
    const fn = this.fns.get(name)!;
    const raw = this.invoke(ctx, name, fn, args);
    const result = convert ? convert(raw) : (raw as T);
    this.stopIteration = false;
    while (this.afterActions.length) this.afterActions.shift()!();
    return result;
  }

  private fail(fnName: string, e: unknown): void {
    this.failed = true;
    const err = e as Error;
    const kind = e instanceof WebAssembly.RuntimeError ? "RuntimeError" : err?.name ?? "Error";
    // cpp-host V8::getFailMessage, logged by Envoy at error level.
    this.failMessage = `Function: ${fnName} failed: Uncaught ${kind}: ${err?.message ?? String(e)}`;
    this.plugin.host.log(this.plugin.name, this.worker, 4, this.failMessage, true);
  }

  log(level: number, message: string): void {
    this.plugin.host.log(this.plugin.name, this.worker, level, message);
  }

  // ---- Memory handed to the module ----

  /** cpp-host WasmBase::allocMemory through the module's malloc; 0 when it fails. */
  private alloc(size: number): number {
    const p = Number(this.malloc(size)) >>> 0;
    if (p === 0 || !this.mem.ok(p, size)) return 0;
    return p;
  }

  /** cpp-host copyToPointerSize: malloc exactly size bytes (none for empty data), write ptr and size. */
  copyOut(data: Uint8Array, ptrPtr: number, sizePtr: number): boolean {
    let p = 0;
    if (data.length > 0) {
      p = this.alloc(data.length);
      if (!p) return false;
      this.mem.set(p, data);
    }
    return this.mem.setU32(ptrPtr, p) && this.mem.setU32(sizePtr, data.length);
  }

  // ---- Deliveries from the host (asynchronous in Envoy: never inside another call) ----

  deliverHttpCallResponse(token: number, response: { headers: HeaderList; body: Buffer; trailers: HeaderList | null } | null): void {
    const root = this.root;
    if (!this.httpCalls.delete(token)) return;
    if (response) {
      root.httpCallResponse = response;
      // Envoy queues the cleanup before the call, so it runs before anything the module deferred.
      this.afterActions.push(() => {
        root.httpCallResponse = null;
      });
    } else {
      // Envoy Context::onHttpCallFailure: status BrokenConnection "reset", nothing to read.
      root.statusCode = WasmResult.BrokenConnection;
      root.statusMessage = "reset";
      this.afterActions.push(() => {
        root.statusMessage = "";
      });
    }
    if (this.failed || !this.has("proxy_on_http_call_response")) {
      this.afterActions.length = 0;
      root.httpCallResponse = null;
      root.statusMessage = "";
      return;
    }
    const n = response ? response.headers.length : 0;
    const b = response ? response.body.length : 0;
    const t = response?.trailers ? response.trailers.length : 0;
    this.callback(root, "proxy_on_http_call_response", [root.id, token, n, b, t]);
  }

  deliverQueueReady(contextId: number, token: number): void {
    const ctx = this.contexts.get(contextId);
    if (!ctx || this.failed || !this.has("proxy_on_queue_ready")) return;
    this.callback(ctx, "proxy_on_queue_ready", [contextId, token]);
  }

  /** QueueOwner: Envoy posts on_queue_ready to the registering VM's thread, so it runs later. */
  queueReady(contextId: number, token: number): void {
    this.plugin.host.schedule(() => this.deliverQueueReady(contextId, token));
  }

  shutdown(): void {
    const root = this.root;
    if (!root || root.destroyed || this.failed) return;
    root.destroyed = true;
    const done = this.has("proxy_on_done") ? Number(this.callback(root, "proxy_on_done", [root.id])) !== 0 : true;
    if (done && !this.failed && this.has("proxy_on_delete")) this.callback(root, "proxy_on_delete", [root.id]);
  }

  tick(): void {
    if (this.failed || !this.has("proxy_on_tick")) return;
    this.callback(this.root, "proxy_on_tick", [this.root.id]);
  }

  // ---- env.* ----

  /**
   * fn, trapping while _initialize/_start run. Fixed-arity wrappers: a rest/spread wrapper allocates
   * an array on every host call, which showed as the host's hottest frame in the filter benchmark.
   */
  private guarded(fn: Fn): Fn {
    const check = () => {
      if (this.restricted) throw new WasmTrap("restricted_callback");
    };
    switch (fn.length) {
      case 0: return () => (check(), fn());
      case 1: return (a: any) => (check(), fn(a));
      case 2: return (a: any, b: any) => (check(), fn(a, b));
      case 3: return (a: any, b: any, c: any) => (check(), fn(a, b, c));
      case 4: return (a: any, b: any, c: any, d: any) => (check(), fn(a, b, c, d));
      case 5: return (a: any, b: any, c: any, d: any, e: any) => (check(), fn(a, b, c, d, e));
      default: return (...args: any[]) => (check(), fn(...args));
    }
  }

  private envImports(): Record<string, Fn> {
    const R = WasmResult;
    const host = this.plugin.host;
    const m = () => this.mem;
    const ok = (b: boolean) => (b ? R.Ok : R.InvalidMemoryAccess);

    const mutate = (ctx: Context, type: number, map: HeaderList) => {
      const s = ctx.slot?.stream;
      if (s) s.checkHeaderMutation(this.plugin.name, type, map);
    };

    // add_header_map_value and replace_header_map_value: the same checks, then addCopy or setCopy.
    const writeHeader = (op: (map: HeaderList, key: string, value: string) => void) =>
      (type: number, kp: number, ks: number, vp: number, vs: number) => {
        if (type >>> 0 > MapType.MAX) return R.BadArgument;
        const ctx = this.ctx();
        const key = m().string(kp, ks);
        const value = m().string(vp, vs);
        if (key === null || value === null) return R.InvalidMemoryAccess;
        const map = ctx.getMap(type);
        if (!map) return R.BadArgument;
        mutate(ctx, type, map);
        op(map, key, value);
        return R.Ok;
      };

    // Envoy Context::continueStream, for proxy_continue_stream and 0.1.0's continue_request/response.
    const continueStream = (type: number) => {
      const ctx = this.ctx();
      const slot = ctx.slot;
      if (type === StreamType.Downstream) return R.Ok;
      if (type === StreamType.Upstream) return R.Unimplemented;
      if (slot) {
        const dir = type === StreamType.Request ? "request" : "response";
        this.afterActions.push(() => slot.stream.continueFrom(slot, dir));
      }
      // Envoy Context::continueStream drops the request pointers at once (for either direction).
      ctx.requestHeaders = null;
      ctx.requestBody = null;
      ctx.requestTrailers = null;
      return R.Ok;
    };

    const fns: Record<string, Fn> = {
      proxy_log: (level: number, ptr: number, size: number) => {
        if (level >>> 0 > 5) return R.BadArgument;
        const msg = m().string(ptr, size);
        if (msg === null) return R.InvalidMemoryAccess;
        this.log(level, msg);
        return R.Ok;
      },
      proxy_get_log_level: (ptr: number) => ok(m().setU32(ptr, host.logLevel)),
      proxy_get_current_time_nanoseconds: (ptr: number) => ok(m().setU64(ptr, host.now())),
      proxy_set_tick_period_milliseconds: (period: number) => {
        const root = this.ctx().root;
        root.tickPeriodMs = period >>> 0;
        host.timerPeriodChanged();
        return R.Ok;
      },
      proxy_get_status: (codePtr: number, ptrPtr: number, sizePtr: number) => {
        const root = this.ctx().root;
        if (!m().setU32(codePtr, root.statusCode)) return R.InvalidMemoryAccess;
        return ok(this.copyOut(Buffer.from(root.statusMessage), ptrPtr, sizePtr));
      },
      proxy_get_property: (pathPtr: number, pathSize: number, ptrPtr: number, sizePtr: number) => {
        const path = m().copy(pathPtr, pathSize);
        if (!path) return R.InvalidMemoryAccess;
        const r = getProperty(this.ctx(), path, this.plugin);
        if (r.result !== R.Ok) return r.result;
        return ok(this.copyOut(r.value!, ptrPtr, sizePtr));
      },
      proxy_set_property: (kp: number, ks: number, vp: number, vs: number) => {
        const key = m().string(kp, ks);
        const value = m().copy(vp, vs);
        if (key === null || !value) return R.InvalidMemoryAccess;
        const stream = this.ctx().slot?.stream;
        if (!stream) return R.NotFound; // no stream info (root context)
        stream.filterState.set(`wasm.${key}`, value);
        return R.Ok;
      },
      proxy_send_local_response: (
        code: number, detPtr: number, detSize: number, bodyPtr: number, bodySize: number,
        hdrPtr: number, hdrSize: number, grpc: number,
      ) => {
        const ctx = this.ctx();
        const details = m().string(detPtr, detSize);
        const body = m().copy(bodyPtr, bodySize);
        const hdrs = m().view(hdrPtr, hdrSize);
        if (details === null || !body || !hdrs) return R.InvalidMemoryAccess;
        const headers = deserializePairs(hdrs).map(([k, v]) => [k.toLowerCase(), v] as [string, string]);
        const slot = ctx.slot;
        if (slot) {
          this.afterActions.push(() =>
            slot.stream.localReply(slot, {
              statusCode: code >>> 0,
              body,
              headers,
              // SDKs pass -1 for "no gRPC status"; Envoy takes only Ok..MaximumKnown.
              grpcStatus: grpc >>> 0 <= 16 ? grpc >>> 0 : null,
              details: details.replace(/\s/g, "_"), // StringUtil::replaceAllEmptySpace
            }),
          );
        }
        this.stopIteration = true;
        return R.Ok;
      },
      proxy_continue_stream: (type: number) => {
        if (type >>> 0 > StreamType.MAX) return R.BadArgument;
        return continueStream(type >>> 0);
      },
      // ABI 0.1.0 (cpp-host exports.cc continue_request / continue_response / clear_route_cache /
      // get_configuration).
      proxy_continue_request: () => continueStream(StreamType.Request),
      proxy_continue_response: () => continueStream(StreamType.Response),
      proxy_clear_route_cache: () => {
        const slot = this.ctx().slot;
        if (slot) slot.stream.routeCacheClears++;
        return R.Ok;
      },
      // Envoy Context::getConfiguration: the plugin configuration while it is being configured
      // (temp_plugin_ set), the VM configuration otherwise.
      proxy_get_configuration: (ptrPtr: number, sizePtr: number) => {
        const ctx = this.ctx();
        return ok(this.copyOut(ctx.tempPluginConfig ?? this.plugin.vmConfiguration, ptrPtr, sizePtr));
      },
      proxy_close_stream: (type: number) => {
        if (type >>> 0 > StreamType.MAX) return R.BadArgument;
        const slot = this.ctx().slot;
        if (slot && (type === StreamType.Request || type === StreamType.Response)) {
          this.afterActions.push(() => slot.stream.resetStream("wasm_close_stream"));
        }
        return R.Ok;
      },

      // -- shared data and queues --
      proxy_get_shared_data: (kp: number, ks: number, ptrPtr: number, sizePtr: number, casPtr: number) => {
        const key = m().string(kp, ks);
        if (key === null) return R.InvalidMemoryAccess;
        const v = host.sharedData.get(this.vmId, key);
        if (!v) return R.NotFound;
        if (!this.copyOut(v.value, ptrPtr, sizePtr)) return R.InvalidMemoryAccess;
        return ok(m().setU32(casPtr, v.cas));
      },
      proxy_set_shared_data: (kp: number, ks: number, vp: number, vs: number, cas: number) => {
        const key = m().string(kp, ks);
        const value = m().copy(vp, vs);
        if (key === null || !value) return R.InvalidMemoryAccess;
        return host.sharedData.set(this.vmId, key, value, cas >>> 0) === "ok" ? R.Ok : R.CasMismatch;
      },
      proxy_register_shared_queue: (np: number, ns: number, tokenPtr: number) => {
        const name = m().string(np, ns);
        if (name === null) return R.InvalidMemoryAccess;
        // on_queue_ready goes to the root context (ContextBase::registerSharedQueue).
        const token = host.sharedQueues.register(this.vmId, name, this.ctx().root.id, this);
        return ok(m().setU32(tokenPtr, token));
      },
      proxy_resolve_shared_queue: (vp: number, vs: number, np: number, ns: number, tokenPtr: number) => {
        const vmId = m().string(vp, vs);
        const name = m().string(np, ns);
        if (vmId === null || name === null) return R.InvalidMemoryAccess;
        const token = host.sharedQueues.resolve(vmId === "" ? this.vmId : vmId, name);
        if (this.failed || token === 0) return R.NotFound;
        return ok(m().setU32(tokenPtr, token));
      },
      proxy_dequeue_shared_queue: (token: number, ptrPtr: number, sizePtr: number) => {
        const r = host.sharedQueues.dequeue(token >>> 0);
        if (r.result !== "ok") return r.result === "empty" ? R.Empty : R.NotFound;
        return ok(this.copyOut(r.value, ptrPtr, sizePtr));
      },
      proxy_enqueue_shared_queue: (token: number, dp: number, ds: number) => {
        const data = m().copy(dp, ds);
        if (!data) return R.InvalidMemoryAccess;
        return host.sharedQueues.enqueue(token >>> 0, data) === "ok" ? R.Ok : R.NotFound;
      },

      // -- header maps --
      proxy_get_header_map_value: (type: number, kp: number, ks: number, ptrPtr: number, sizePtr: number) => {
        if (type >>> 0 > MapType.MAX) return R.BadArgument;
        const ctx = this.ctx();
        const key = m().string(kp, ks);
        if (key === null) return R.InvalidMemoryAccess;
        const map = ctx.getConstMap(type);
        if (!map) return ctx.accessLogPhase ? R.NotFound : R.BadArgument;
        const v = getFirst(map, key);
        if (v === undefined) return R.NotFound;
        return ok(this.copyOut(Buffer.from(v), ptrPtr, sizePtr));
      },
      proxy_add_header_map_value: writeHeader(addValue),
      proxy_replace_header_map_value: writeHeader(replaceValue),
      proxy_remove_header_map_value: (type: number, kp: number, ks: number) => {
        if (type >>> 0 > MapType.MAX) return R.BadArgument;
        const ctx = this.ctx();
        const key = m().string(kp, ks);
        if (key === null) return R.InvalidMemoryAccess;
        const map = ctx.getMap(type);
        if (!map) return R.BadArgument;
        mutate(ctx, type, map);
        removeValue(map, key);
        return R.Ok;
      },
      proxy_get_header_map_pairs: (type: number, ptrPtr: number, sizePtr: number) => {
        if (type >>> 0 > MapType.MAX) return R.BadArgument;
        // Envoy getHeaderMapPairs: an unavailable map reads as empty, with Ok.
        const map = this.ctx().getConstMap(type);
        const data = map && map.length ? serializePairs(map) : new Uint8Array(0);
        return ok(this.copyOut(data, ptrPtr, sizePtr));
      },
      proxy_set_header_map_pairs: (type: number, ptr: number, size: number) => {
        if (type >>> 0 > MapType.MAX) return R.BadArgument;
        const ctx = this.ctx();
        const data = m().view(ptr, size);
        if (!data) return R.InvalidMemoryAccess;
        const pairs = deserializePairs(data);
        const map = ctx.getMap(type);
        if (!map) return R.BadArgument;
        mutate(ctx, type, map);
        map.length = 0;
        for (const [k, v] of pairs) addValue(map, k, v);
        return R.Ok;
      },
      proxy_get_header_map_size: (type: number, resultPtr: number) => {
        if (type >>> 0 > MapType.MAX) return R.BadArgument;
        const map = this.ctx().getMap(type);
        if (!map) return R.BadArgument;
        return ok(m().setU32(resultPtr, byteSize(map)));
      },

      // -- buffers --
      proxy_get_buffer_bytes: (type: number, start: number, length: number, ptrPtr: number, sizePtr: number) => {
        if (type >>> 0 > BufferType.MAX) return R.BadArgument;
        const buf = this.ctx().getBuffer(type);
        if (!buf) return R.NotFound;
        start >>>= 0;
        length >>>= 0;
        const size = buf.size();
        // cpp-host: never overread; an empty result writes pointer 0 and size 0 without malloc.
        if (start > size) length = 0;
        else if (start + length > size) length = size - start;
        if (length === 0) return ok(m().setU32(ptrPtr, 0) && m().setU32(sizePtr, 0));
        return ok(this.copyOut(buf.bytes().subarray(start, start + length), ptrPtr, sizePtr));
      },
      proxy_get_buffer_status: (type: number, lengthPtr: number, flagsPtr: number) => {
        if (type >>> 0 > BufferType.MAX) return R.BadArgument;
        const buf = this.ctx().getBuffer(type);
        if (!buf) return R.NotFound;
        if (!m().setU32(lengthPtr, buf.size())) return R.InvalidMemoryAccess;
        return ok(m().setU32(flagsPtr, 0));
      },
      proxy_set_buffer_bytes: (type: number, start: number, length: number, dp: number, ds: number) => {
        if (type >>> 0 > BufferType.MAX) return R.BadArgument;
        const buf = this.ctx().getBuffer(type);
        if (!buf) return R.NotFound;
        const data = m().copy(dp, ds);
        if (!data) return R.InvalidMemoryAccess;
        return buf.copyFrom(start >>> 0, length >>> 0, data);
      },

      // -- HTTP calls --
      proxy_http_call: (
        up: number, us: number, hp: number, hs: number, bp: number, bs: number, tp: number, ts: number,
        timeout: number, tokenPtr: number,
      ) => {
        const root = this.ctx().root;
        const cluster = m().string(up, us);
        const body = m().copy(bp, bs);
        const hdrs = m().view(hp, hs);
        const trls = m().view(tp, ts);
        if (cluster === null || !body || !hdrs || !trls) return R.InvalidMemoryAccess;
        const headers = deserializePairs(hdrs);
        const trailers = deserializePairs(trls);
        // NB (cpp-host): write the token first to verify the memory before starting the call.
        if (!m().setU32(tokenPtr, 0)) return R.InvalidMemoryAccess;
        void trailers; // Envoy's httpCall takes trailers; the host's client sends none (nor do the SDKs)
        // The token is taken only once the call started (Envoy Context::httpCall); the response
        // comes on a later turn, so `token` is set by then.
        let token = 0;
        const r = host.httpCall(cluster, headers, body, timeout | 0, (res) => this.deliverHttpCallResponse(token, res));
        if (r.cancel) {
          token = this.nextHttpCallId += 4;
          this.httpCalls.set(token, { cancel: r.cancel });
        }
        m().setU32(tokenPtr, token);
        return r.result;
      },

      // -- metrics --
      proxy_define_metric: (type: number, np: number, ns: number, idPtr: number) => {
        const name = m().string(np, ns);
        if (name === null) return R.InvalidMemoryAccess;
        type >>>= 0;
        if (type > MetricType.MAX) return R.BadArgument;
        // Ids carry the type in their low 2 bits (cpp-host kMetricTypeMask / kMetricIdIncrement).
        const id = (this.nextMetricId[type] += 4);
        const kind = (["counter", "gauge", "histogram"] as const)[type];
        this.metricIds.set(id, host.metrics.define(name, kind));
        return ok(m().setU32(idPtr, id));
      },
      proxy_increment_metric: (id: number, offset: bigint) => {
        id >>>= 0;
        const t = id & 3;
        const metric = this.metricIds.get(id);
        if (t === MetricType.Counter) {
          if (!metric) return R.NotFound;
          if (offset <= 0n) return R.BadArgument; // counters only go up (Envoy incrementMetric)
          metric.value = BigInt.asUintN(64, metric.value + offset);
          return R.Ok;
        }
        if (t === MetricType.Gauge) {
          if (!metric) return R.NotFound;
          metric.value = BigInt.asUintN(64, metric.value + offset);
          return R.Ok;
        }
        return R.BadArgument; // histograms cannot be incremented
      },
      proxy_record_metric: (id: number, value: bigint) => {
        id >>>= 0;
        const metric = this.metricIds.get(id);
        if (!metric) return R.NotFound;
        const v = BigInt.asUintN(64, value);
        // Envoy recordMetric: a counter adds, a gauge is set, a histogram records a sample.
        if (metric.type === "counter") metric.value = BigInt.asUintN(64, metric.value + v);
        else if (metric.type === "gauge") metric.value = v;
        else recordSample(metric, v);
        return R.Ok;
      },
      proxy_get_metric: (id: number, resultPtr: number) => {
        id >>>= 0;
        const t = id & 3;
        if (t !== MetricType.Counter && t !== MetricType.Gauge) return R.BadArgument;
        const metric = this.metricIds.get(id);
        if (!metric) return R.NotFound;
        return ok(m().setU64(resultPtr, metric.value));
      },

      // -- misc --
      proxy_set_effective_context: (id: number) => {
        id >>>= 0;
        if (!this.contexts.has(id)) return R.BadArgument;
        this.effectiveId = id;
        return R.Ok;
      },
      // WasmBase::done: only a root context that returned false from on_done during shutdown is
      // pending; the host never shuts down a VM mid-test, so there is nothing to finish.
      proxy_done: () => R.NotFound,
      proxy_call_foreign_function: (np: number, ns: number, ap: number, as: number, rp: number, rs: number) => {
        const name = m().string(np, ns);
        if (name === null) return R.InvalidMemoryAccess;
        if (!m().view(ap, as)) return R.InvalidMemoryAccess;
        if (name !== "clear_route_cache") return R.NotFound;
        const slot = this.ctx().slot;
        if (slot) slot.stream.routeCacheClears++;
        // No result: nothing allocated, pointer 0 and size 0 written where asked.
        if (rp !== 0 && !m().setU32(rp, 0)) return R.InvalidMemoryAccess;
        if (rs !== 0 && !m().setU32(rs, 0)) return R.InvalidMemoryAccess;
        return R.Ok;
      },
      // gRPC: Envoy parses the service as a GrpcService proto, else takes it as a cluster name;
      // an unknown cluster is PARSE_FAILURE. This host has no gRPC client: known clusters get
      // UNIMPLEMENTED so a test notices.
      proxy_grpc_call: (sp: number, ss: number, ...rest: number[]) => {
        const service = m().string(sp, ss);
        if (service === null) return R.InvalidMemoryAccess;
        void rest;
        return host.clusters.has(service) ? R.Unimplemented : R.ParseFailure;
      },
      proxy_grpc_stream: (sp: number, ss: number, ...rest: number[]) => {
        const service = m().string(sp, ss);
        if (service === null) return R.InvalidMemoryAccess;
        void rest;
        return host.clusters.has(service) ? R.Unimplemented : R.ParseFailure;
      },
      proxy_grpc_send: (token: number) => ((token & 3) === 2 ? R.NotFound : R.BadArgument),
      proxy_grpc_close: (token: number) => ((token & 3) === 1 || (token & 3) === 2 ? R.NotFound : R.BadArgument),
      proxy_grpc_cancel: (token: number) => ((token & 3) === 1 || (token & 3) === 2 ? R.NotFound : R.BadArgument),
      pthread_equal: (a: number, b: number) => (a === b ? 1 : 0),
      emscripten_notify_memory_growth: () => {},
    };
    for (const name of ALL_HOST_FUNCTIONS) {
      if (!fns[name]) throw new Error(`host/vm.ts lacks ${name}, which host/envoy-abi.mjs allows`);
    }
    const out: Record<string, Fn> = {};
    for (const [name, fn] of Object.entries(fns)) {
      out[name] = START_ALLOWED_ENV.has(name) ? fn : this.guarded(fn);
    }
    return out;
  }
}

export { LOG_LEVELS };
