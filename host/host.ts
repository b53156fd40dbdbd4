// The Host: an Envoy stand-in holding a filter chain (one Plugin per http filter) and timers, over
// the shared parts every plugin, VM and stream uses (host/host-core.ts).
import type { LogLevelName } from "./abi.js";
import { HostCore, type HostCoreOptions, type LogEntry } from "./host-core.js";
import type { Metric, TagSpecifier } from "./metrics.js";
import { Plugin, type FilterOptions } from "./plugin.js";
import { Stream, type StreamOptions } from "./stream.js";

// What the host's users and tests have always found here.
export { HostCore, MAX_LOG_ENTRIES, type HostCoreOptions, type Instrument, type LogEntry } from "./host-core.js";
export type { ListenerInfo } from "./stream-info.js";

export interface HostOptions extends HostCoreOptions {
  filters: FilterOptions[];
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

  /** The keys of a vm_id's shared data and their values' bytes: what a filter keeps in Envoy's process. */
  sharedDataSize(vmId = ""): { keys: number; bytes: number } {
    return this.sharedData.size(vmId);
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
