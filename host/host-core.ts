// What every plugin, VM and stream of one host shares: the process-wide stores (shared data, queues,
// stats), the log, the clock, the clusters for proxy_http_call and the native filters' calls, and
// the work in flight off the streams. The host (host/host.ts) adds the filter chain and the timers
// on top; the layers below know only this.
import { LOG_LEVELS, logLevelNumber, WasmResult, type LogLevelName } from "./abi.js";
import type { HeaderList } from "./headers.js";
import { startHttpCall, type CallCluster, type CallResult } from "./http-call.js";
import { Metrics, type HistogramBuckets, type TagSpecifier } from "./metrics.js";
import { SharedData, SharedQueues } from "./shared-data.js";
import type { LocalReplyConfig } from "./local-reply.js";
import type { NodeInfo } from "./proto.js";
import { DEFAULT_BUFFER_LIMIT, type ClusterInfo, type ListenerInfo, type RouteInfo } from "./stream-info.js";
import type { NativeFilter } from "./native/filter.js";

/** What the host's shared parts are made from (host/host.ts adds the filters). */
export interface HostCoreOptions {
  /**
   * A host whose shared data and stats this one keeps (a filter configuration reload): in Envoy shared
   * data is process-wide, keyed by vm_id (proxy-wasm-cpp-host src/shared_data.cc), and stats live in
   * the server's store, so neither starts over when ECDS delivers a new configuration.
   */
  storesOf?: HostCore;
  /** proxy_http_call targets: cluster name -> base URL (http(s)://host:port), or the URL with the
   * cluster's connect_timeout. */
  clusters?: Record<string, string | CallCluster>;
  /** envoy.yaml stats_config.histogram_bucket_settings: the buckets of the histograms they match. */
  histogramBuckets?: HistogramBuckets[];
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

  constructor(opts: HostCoreOptions) {
    this.sharedData = opts.storesOf?.sharedData ?? new SharedData();
    this.metrics = opts.storesOf?.metrics ?? new Metrics(opts.histogramBuckets);
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

  /**
   * Envoy Context::httpCall checks, then the real request; `deliver` gets the response (null: the
   * call failed) on a later turn. Returns the result code and, when the call started, its cancel.
   */
  httpCall(cluster: string, headers: HeaderList, body: Buffer, timeoutMs: number, deliver: (res: CallResult | null) => void): { result: number; cancel?: () => void } {
    if (timeoutMs < 0) return { result: WasmResult.BadArgument };
    const base = this.clusters.get(cluster);
    if (base === undefined) return { result: WasmResult.BadArgument };
    const lower = headers.map(([k, v]) => [k.toLowerCase(), v] as [string, string]);
    const has = (k: string) => lower.some(([hk]) => hk === k);
    if (!has(":path") || !has(":method") || !has(":authority")) return { result: WasmResult.BadArgument };
    const call = startHttpCall(base, lower, body, timeoutMs);
    const p: Promise<void> = call.done.then(
      (res) => {
        this.inflight.delete(p);
        this.schedule(() => deliver(res));
      },
      (e) => {
        this.inflight.delete(p);
        this.asyncError ??= e;
      },
    );
    this.inflight.add(p);
    return { result: WasmResult.Ok, cancel: call.cancel };
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
