// The Host: an Envoy stand-in holding a filter chain (one Plugin per http filter), the process-wide
// stores (shared data, queues, stats), the log, clusters for proxy_http_call, and timers.
import { LOG_LEVELS, logLevelNumber, WasmResult, type LogLevelName } from "./abi.js";
import type { Context } from "./context.js";
import type { HeaderList } from "./headers.js";
import { startHttpCall, type CallCluster } from "./http-call.js";
import { Metrics, type Metric, type TagSpecifier } from "./metrics.js";
import { Plugin, type FilterOptions } from "./plugin.js";
import { SharedData, SharedQueues } from "./shared-data.js";
import type { LocalReplyConfig } from "./local-reply.js";
import type { FilterMetadata, NodeInfo } from "./proto.js";
import { DEFAULT_BUFFER_LIMIT, Stream, type ClusterInfo, type RouteInfo, type StreamOptions } from "./stream.js";
import type { Vm } from "./vm.js";
import type { NativeFilter } from "./native/filter.js";

export interface HostOptions {
  filters: FilterOptions[];
  /**
   * A host whose shared data and stats this one keeps (a filter configuration reload): in Envoy shared
   * data is process-wide, keyed by vm_id (proxy-wasm-cpp-host src/shared_data.cc), and stats live in
   * the server's store, so neither starts over when ECDS delivers a new configuration.
   */
  storesOf?: HostCore;
  /** proxy_http_call targets: cluster name -> base URL (http(s)://host:port), or the URL with the
   * cluster's connect_timeout. */
  clusters?: Record<string, string | CallCluster>;
  logLevel?: LogLevelName;
  /** Wall clock in ns (proxy_get_current_time_nanoseconds, request.time); default Date.now. */
  clock?: () => bigint;
  /** Profiling hook (scripts/bench): unset, nothing is wrapped and nothing costs. */
  instrument?: Instrument;
  /**
   * Each stream's buffer limit (Envoy: the listener's per_connection_buffer_limit_bytes, raised by
   * the route's request_body_buffer_limit; default 1 MiB as in Envoy). A buffering filter holding
   * more gets Envoy's own 413 (request) or 500 (response). Tests that buffer bigger bodies set what
   * the rendered envoy.yaml sets.
   */
  bufferLimitBytes?: number;
  /** The HCM's local_reply_config (host/local-reply.ts), applied to every local reply. */
  localReplyConfig?: LocalReplyConfig;
  /** The route every stream matches (envoy.yaml: the route's name and metadata.filter_metadata, its
   * virtual host's): xds.route_name, xds.route_metadata, xds.virtual_host_*. Default: a route with
   * no name and no metadata. A stream can override it (StreamOptions.route). */
  route?: RouteInfo | null;
  /** Per cluster name: its metadata.filter_metadata (xds.cluster_metadata) and endpoint count. */
  clusterInfo?: Record<string, Omit<ClusterInfo, "name">>;
  /** The bootstrap's node (xds.node): id, cluster, metadata, locality. */
  node?: NodeInfo;
  /** Envoy's native http filters (host/native/), run in this order before the wasm filters. */
  nativeFilters?: NativeFilter[];
  /** The listener (xds.listener_metadata, listener_direction, filter_chain_name). */
  listener?: ListenerInfo;
}

/** What Envoy's ListenerInfo and filter chain give xds.*. */
export interface ListenerInfo {
  /** The listener's metadata.filter_metadata. */
  metadata?: FilterMetadata;
  /** envoy.config.core.v3.TrafficDirection: 0 UNSPECIFIED, 1 INBOUND, 2 OUTBOUND. */
  direction?: number;
  filterChainName?: string;
}

type Fn = (...args: any[]) => any;
/**
 * Called once per VM instantiation for every module export the host calls (proxy_on_*, malloc,
 * _initialize) and every host function the module imports (env.*, WASI); returns the function to
 * use instead, e.g. one that times the call. Timing inside the .wasm vs in the host needs both.
 */
export interface Instrument {
  export?: (filter: string, name: string, fn: Fn) => Fn;
  import?: (filter: string, module: string, name: string, fn: Fn) => Fn;
}

export interface LogEntry {
  filter: string;
  worker: number;
  level: LogLevelName;
  message: string;
}

/** Log entries the host keeps (the latest; older ones are dropped in batches). */
export const MAX_LOG_ENTRIES = 10_000;

/** What plugins, VMs and streams need from the host. */
export class HostCore {
  readonly sharedData: SharedData;
  readonly sharedQueues = new SharedQueues();
  readonly metrics: Metrics;
  readonly clusters: Map<string, CallCluster>;
  readonly logLevel: number;
  readonly logs: LogEntry[] = [];
  readonly instrument: Instrument | undefined;
  readonly bufferLimitBytes: number;
  readonly localReplyConfig: LocalReplyConfig | null;
  readonly route: RouteInfo | null;
  readonly clusterInfo: Record<string, Omit<ClusterInfo, "name">>;
  readonly node: NodeInfo;
  readonly listener: ListenerInfo;
  readonly natives: NativeFilter[];
  private readonly clock: () => bigint;
  private inflight = new Set<Promise<void>>();
  private asyncError: unknown = null;
  onTimerChange: () => void = () => {};
  /** Called after every asynchronous delivery (http_call responses, queue wake-ups), so a server
   * embedding the host can forward whatever the filters released. */
  afterAsync: () => void = () => {};

  constructor(opts: HostOptions) {
    this.sharedData = opts.storesOf?.sharedData ?? new SharedData();
    this.metrics = opts.storesOf?.metrics ?? new Metrics();
    this.clusters = new Map(Object.entries(opts.clusters ?? {}).map(([k, v]) => [k, typeof v === "string" ? { url: v } : v]));
    this.logLevel = logLevelNumber(opts.logLevel ?? "info");
    this.clock = opts.clock ?? (() => BigInt(Date.now()) * 1_000_000n);
    this.instrument = opts.instrument;
    this.bufferLimitBytes = opts.bufferLimitBytes ?? DEFAULT_BUFFER_LIMIT;
    this.localReplyConfig = opts.localReplyConfig ?? null;
    this.route = opts.route === undefined ? {} : opts.route;
    this.clusterInfo = opts.clusterInfo ?? {};
    this.node = opts.node ?? {};
    this.listener = opts.listener ?? {};
    this.natives = opts.nativeFilters ?? [];
  }

  /** A native filter's work off the stream: `then` runs on a later turn once `work` settles, counted
   * by settle(), and the embedder is told (afterAsync) so it forwards what the filters released. */
  runAsync<T>(work: Promise<T>, then: (v: T) => void): void {
    const p: Promise<void> = work.then(
      (v) => {
        this.inflight.delete(p);
        this.schedule(() => then(v));
      },
      (e) => {
        this.inflight.delete(p);
        this.asyncError ??= e;
      },
    );
    this.inflight.add(p);
  }

  now(): bigint {
    return this.clock();
  }

  /** Envoy drops messages below its log level (proxy_log still returns Ok). Envoy writes the rest
   * out and keeps none; the host keeps the latest MAX_LOG_ENTRIES for tests and load errors, so a
   * gateway that runs for days does not hold every line it ever logged. */
  log(filter: string, worker: number, level: number, message: string, _fromHost = false): void {
    if (level < this.logLevel) return;
    this.logs.push({ filter, worker, level: LOG_LEVELS[level], message });
    if (this.logs.length >= 2 * MAX_LOG_ENTRIES) this.logs.splice(0, this.logs.length - MAX_LOG_ENTRIES);
  }

  timerPeriodChanged(): void {
    this.onTimerChange();
  }

  /** Runs fn on a later turn of the event loop (Envoy: posted to the worker's dispatcher). */
  schedule(fn: () => void): void {
    const p = new Promise<void>((resolve) => {
      setImmediate(() => {
        try {
          fn();
        } catch (e) {
          this.asyncError ??= e;
        } finally {
          this.inflight.delete(p);
          try {
            this.afterAsync();
          } catch (e) {
            this.asyncError ??= e;
          }
          resolve();
        }
      });
    });
    this.inflight.add(p);
  }

  /** Envoy Context::httpCall checks, then the real request; the response comes back later. */
  httpCall(vm: Vm, root: Context, cluster: string, headers: HeaderList, body: Buffer, _trailers: HeaderList, timeoutMs: number): { result: number; token: number } {
    if (timeoutMs < 0) return { result: WasmResult.BadArgument, token: 0 };
    const base = this.clusters.get(cluster);
    if (base === undefined) return { result: WasmResult.BadArgument, token: 0 };
    const lower = headers.map(([k, v]) => [k.toLowerCase(), v] as [string, string]);
    const has = (k: string) => lower.some(([hk]) => hk === k);
    if (!has(":path") || !has(":method") || !has(":authority")) return { result: WasmResult.BadArgument, token: 0 };
    const token = (vm.nextHttpCallId += 4);
    const call = startHttpCall(base, lower, body, timeoutMs);
    vm.httpCalls.set(token, { cancel: call.cancel });
    const p: Promise<void> = call.done.then(
      (res) => {
        this.inflight.delete(p);
        this.schedule(() => vm.deliverHttpCallResponse(token, res));
      },
      (e) => {
        this.inflight.delete(p);
        this.asyncError ??= e;
      },
    );
    this.inflight.add(p);
    void root;
    return { result: WasmResult.Ok, token };
  }

  async settle(): Promise<void> {
    while (this.inflight.size) await Promise.all([...this.inflight]);
    if (this.asyncError) {
      const e = this.asyncError;
      this.asyncError = null;
      throw e;
    }
  }
}

export class Host extends HostCore {
  readonly plugins: Plugin[] = [];
  private nextWorker = 0;
  private nextConnectionId = 1;
  private timers: NodeJS.Timeout[] = [];
  private timersRunning = false;

  private constructor(opts: HostOptions) {
    super(opts);
    this.onTimerChange = () => {
      if (this.timersRunning) this.startTimers();
    };
  }

  /** Loads and starts every filter; throws HostLoadError with Envoy's message when one fails. */
  static async create(opts: HostOptions): Promise<Host> {
    const host = new Host(opts);
    for (const f of opts.filters) host.plugins.push(new Plugin(host, f));
    return host;
  }

  private get workers(): number {
    return Math.max(1, ...this.plugins.map((p) => p.vms.length));
  }

  /** A new HTTP stream through the chain; `worker` picks the VM instance (default round-robin). */
  newStream(opts: StreamOptions = {}): Stream {
    const worker = opts.worker ?? this.nextWorker++ % this.workers;
    return new Stream(this, this.plugins, worker, opts, this.nextConnectionId++);
  }

  getLogs(level: LogLevelName): string[] {
    return this.logs.filter((e) => e.level === level).map((e) => e.message);
  }

  getLogEntries(): LogEntry[] {
    return [...this.logs];
  }

  getMetric(name: string): { type: Metric["type"]; value: bigint; samples?: bigint[] } | undefined {
    const m = this.metrics.get(name);
    if (!m) return undefined;
    return m.type === "histogram" ? { type: m.type, value: m.value, samples: [...m.samples] } : { type: m.type, value: m.value };
  }

  /** /stats/prometheus as Envoy renders it, with envoy.yaml's stats_config.stats_tags applied. */
  prometheus(statsTags: TagSpecifier[] = []): string {
    return this.metrics.prometheus(statsTags);
  }

  getSharedData(key: string, vmId = ""): { value: Buffer; cas: number } | undefined {
    const v = this.sharedData.get(vmId, key);
    return v ? { value: Buffer.from(v.value), cas: v.cas } : undefined;
  }

  /** proxy_on_tick on every root context that set a tick period. */
  tick(): void {
    for (const p of this.plugins) for (const vm of p.vms) if (vm.root.tickPeriodMs > 0) vm.tick();
  }

  /** Real timers for server mode: each root context ticks at its own period. */
  startTimers(): void {
    this.stopTimers();
    this.timersRunning = true;
    for (const p of this.plugins) {
      for (const vm of p.vms) {
        const period = vm.root.tickPeriodMs;
        if (period > 0) {
          const t = setInterval(() => vm.tick(), period);
          t.unref?.();
          this.timers.push(t);
        }
      }
    }
  }

  stopTimers(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.timersRunning = false;
  }

  memoryPages(filter: string, worker = 0): number {
    const p = this.plugins.find((x) => x.name === filter);
    if (!p) throw new Error(`no filter named ${filter}`);
    const vm = p.vms[worker];
    if (!vm) throw new Error(`filter ${filter} has no worker ${worker}`);
    return vm.mem.size / 65536;
  }

  /** Stops timers, cancels outstanding calls and shuts the root contexts down like
   * WasmBase::startShutdown: on_done, then on_delete when on_done returned true. */
  close(): void {
    this.stopTimers();
    for (const p of this.plugins) {
      for (const vm of p.retired) {
        for (const c of vm.httpCalls.values()) c.cancel();
        vm.httpCalls.clear();
      }
      for (const vm of p.vms) {
        for (const c of vm.httpCalls.values()) c.cancel();
        vm.httpCalls.clear();
        vm.shutdown();
      }
    }
  }
}
