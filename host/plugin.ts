// One http filter of the chain: its configuration, its compiled module and its VM instances
// (one per worker), started the way Envoy starts a plugin (cpp-host WasmBase::initialize,
// ContextBase::onStart and onConfigure).
import { readFileSync, statSync } from "node:fs";
import { ENVOY_WASI_FUNCTIONS, HOST_FUNCTIONS_BY_ABI, WASI_MODULES } from "./envoy-abi.mjs";
import { HostLoadError } from "./errors.js";
import type { HostCore } from "./host-core.js";
import { exportSignatureProblem, signatureProblem, type AbiVersion } from "./signatures.js";
import { Vm } from "./vm.js";
import { readExports, readImports, type ExportSig } from "./wasm-binary.js";

export interface FilterOptions {
  name: string;
  wasm: string | Uint8Array;
  configuration?: unknown;
  rootId?: string;
  vmId?: string;
  vmConfiguration?: unknown;
  /** Envoy's deprecated PluginConfig.fail_open: the same as failurePolicy "FAIL_OPEN", and in the
   * stream that saw the trap the filter is skipped too (cpp-host plugin_->fail_open_). Only one of
   * failOpen and failurePolicy may be set, as in Envoy. */
  failOpen?: boolean;
  /** Envoy >= 1.33 PluginConfig.failure_policy: what streams get after the VM failed (trapped).
   * Default (UNSPECIFIED) FAIL_CLOSED. */
  failurePolicy?: FailurePolicy;
  /** FAIL_RELOAD only: ReloadConfig.backoff.base_interval in ms (Envoy default 1000). A reload is
   * tried when a new stream arrives at least a jittered [base, 1.5 * base) after the last load. */
  reloadBackoffMs?: number;
  workers?: number;
  allowOnHeadersStopIteration?: boolean;
  /** The VM's environment variables, visible through WASI environ_get (Envoy:
   * vm_config.environment_variables; resolve host_env_keys before passing them). Default none. */
  env?: Record<string, string>;
}

function toBytes(v: unknown): Buffer {
  if (v === undefined || v === null) return Buffer.alloc(0);
  if (typeof v === "string") return Buffer.from(v);
  if (v instanceof Uint8Array) return Buffer.from(v);
  return Buffer.from(JSON.stringify(v));
}

export type FailurePolicy = "UNSPECIFIED" | "FAIL_CLOSED" | "FAIL_OPEN" | "FAIL_RELOAD";

/**
 * Envoy source/extensions/common/wasm/wasm.cc PluginConfig::PluginConfig: fail_open: true is
 * FAIL_OPEN and may not be combined with failure_policy; UNSPECIFIED is FAIL_CLOSED.
 */
function resolveFailurePolicy(opts: FilterOptions): Exclude<FailurePolicy, "UNSPECIFIED"> {
  const policy = opts.failurePolicy ?? "UNSPECIFIED";
  if (!["UNSPECIFIED", "FAIL_CLOSED", "FAIL_OPEN", "FAIL_RELOAD"].includes(policy)) {
    throw new Error(`filter ${opts.name}: unknown failure policy`);
  }
  if (opts.failOpen) {
    if (policy !== "UNSPECIFIED") throw new Error(`filter ${opts.name}: only one of fail_open or failure_policy can be set`);
    return "FAIL_OPEN";
  }
  return policy === "UNSPECIFIED" ? "FAIL_CLOSED" : policy;
}

/** What FAIL_RELOAD did (Envoy's WasmEvent VmReloadBackoff / VmReloadSuccess / VmReloadFailure). */
export interface ReloadEvents {
  backoff: number;
  success: number;
  failure: number;
}

const moduleCache = new Map<string, { module: WebAssembly.Module; bytes: Uint8Array }>();

const ABI_MARKERS: Record<string, AbiVersion> = {
  proxy_abi_version_0_1_0: "0.1.0",
  proxy_abi_version_0_2_0: "0.2.0",
  proxy_abi_version_0_2_1: "0.2.1",
};

/**
 * cpp-host BytecodeUtil::getAbiVersion: the first function export, in export-section order, whose
 * name is one of the three markers decides; a module exporting two markers loads with the first.
 * Other export kinds with a marker's name do not count. null: none (WasmBase::load refuses it).
 */
export function abiVersionOf(exports: ExportSig[]): AbiVersion | null {
  for (const e of exports) if (e.kind === "function" && ABI_MARKERS[e.name]) return ABI_MARKERS[e.name];
  return null;
}

// The order cpp-host's WasmBase::getFunctions looks exports up (start functions and the allocator
// first, then the callbacks), so the first bad signature reported is the one Envoy logs first.
const FIRST_LOOKED_UP = ["_initialize", "main", "__main_void", "_start", "malloc", "proxy_on_memory_allocate"];

/** Why Envoy would refuse the module before running it, or its ABI version. Messages are cpp-host's. */
function checkModule(module: WebAssembly.Module, bytes: Uint8Array): { problem: string } | { abi: AbiVersion } {
  const exportSigs = readExports(bytes);
  // WasmBase::load
  const abi = abiVersionOf(exportSigs);
  if (!abi) return { problem: "Missing or unknown Proxy-Wasm ABI version" };
  // V8::link reports the first import it cannot resolve; registerCallbacks decides what each ABI gets.
  const hostFunctions = HOST_FUNCTIONS_BY_ABI[abi];
  for (const imp of WebAssembly.Module.imports(module)) {
    const known =
      imp.kind === "function" &&
      ((imp.module === "env" && hostFunctions.has(imp.name)) ||
        (WASI_MODULES.has(imp.module) && ENVOY_WASI_FUNCTIONS.has(imp.name)));
    if (!known) return { problem: `Failed to load Wasm module due to a missing import: ${imp.module}.${imp.name}` };
  }
  for (const imp of readImports(bytes)) {
    const problem = imp.kind === "function" ? signatureProblem(imp) : null;
    if (problem) return { problem };
  }
  // WasmBase::getFunctions
  const exported = new Set(exportSigs.map((e) => e.name));
  const byName = new Map(exportSigs.map((e) => [e.name, e]));
  for (const name of FIRST_LOOKED_UP) {
    const e = byName.get(name);
    const problem = e ? exportSignatureProblem(e, abi, exported) : null;
    if (problem) return { problem };
  }
  if (!exported.has("malloc") && !exported.has("proxy_on_memory_allocate")) return { problem: "Wasm module is missing malloc function." };
  for (const e of exportSigs) {
    if (FIRST_LOOKED_UP.includes(e.name)) continue;
    const problem = exportSignatureProblem(e, abi, exported);
    if (problem) return { problem };
  }
  return { abi };
}

export class Plugin {
  readonly name: string;
  readonly rootId: string;
  readonly vmId: string;
  /** cpp-host PluginBase::fail_open_: Envoy builds it from the deprecated fail_open only. */
  readonly failOpen: boolean;
  readonly failurePolicy: Exclude<FailurePolicy, "UNSPECIFIED">;
  readonly reloadBackoffMs: number;
  readonly reloadEvents: ReloadEvents = { backoff: 0, success: 0, failure: 0 };
  /** SinglePluginHandle::last_load per worker (host clock, ns). */
  private readonly lastLoad: bigint[] = [];
  private module!: WebAssembly.Module;
  readonly allowOnHeadersStopIteration: boolean;
  readonly vmConfiguration: Buffer;
  readonly pluginConfiguration: Buffer;
  readonly env: ReadonlyArray<readonly [string, string]>;
  readonly vms: Vm[] = [];
  /** VMs FAIL_RELOAD replaced (kept for Host.close). */
  readonly retired: Vm[] = [];
  /** The Proxy-Wasm ABI the module exports (cpp-host WasmBase::abiVersion). */
  abiVersion!: AbiVersion;

  constructor(
    readonly host: HostCore,
    opts: FilterOptions,
  ) {
    this.name = opts.name;
    this.rootId = opts.rootId ?? "";
    this.vmId = opts.vmId ?? "";
    this.failOpen = opts.failOpen ?? false;
    this.failurePolicy = resolveFailurePolicy(opts);
    this.reloadBackoffMs = opts.reloadBackoffMs ?? 1000;
    if (!Number.isFinite(this.reloadBackoffMs) || this.reloadBackoffMs <= 0) {
      throw new Error(`filter ${opts.name}: reloadBackoffMs must be a positive number of milliseconds`);
    }
    this.allowOnHeadersStopIteration = opts.allowOnHeadersStopIteration ?? false;
    this.vmConfiguration = toBytes(opts.vmConfiguration);
    this.pluginConfiguration = toBytes(opts.configuration);
    this.env = Object.entries(opts.env ?? {});
    for (const [k] of this.env) if (!k || k.includes("=") || k.includes("\0")) throw new Error(`filter ${opts.name}: bad environment variable name ${JSON.stringify(k)}`);
    const workers = opts.workers ?? 1;
    if (!Number.isInteger(workers) || workers < 1) throw new Error(`filter ${opts.name}: workers must be a positive integer`);
    const { module, bytes } = this.compile(opts.wasm);
    const checked = checkModule(module, bytes);
    if ("problem" in checked) throw this.loadError(checked.problem);
    this.abiVersion = checked.abi;
    this.module = module;
    for (let w = 0; w < workers; w++) {
      this.vms.push(this.startVm(module, w));
      this.lastLoad.push(host.now());
    }
  }

  /**
   * The VM a new stream on this worker uses, or null when the filter is left out of the chain
   * (Envoy PluginConfig::createContext: a failed VM under FAIL_OPEN adds no filter; under
   * FAIL_CLOSED the filter is there and fails the stream with a 503; FAIL_RELOAD first tries a new
   * VM in maybeReloadHandleIfNeeded).
   */
  vmForNewStream(worker: number): Vm | null {
    const i = worker % this.vms.length;
    if (this.vms[i].failed && this.failurePolicy === "FAIL_RELOAD") this.maybeReload(i);
    const vm = this.vms[i];
    if (vm.failed && this.failurePolicy === "FAIL_OPEN") return null;
    return vm;
  }

  /**
   * Envoy PluginConfig::maybeReloadHandleIfNeeded: only a VM that failed at run time (a trap) is
   * reloaded; within the backoff (JitteredLowerBoundBackOffStrategy: a fresh draw in
   * [base, 1.5 * base) each time) since the last load the failed VM stays (so the stream fails
   * closed); otherwise the load time is updated and a new VM is started as on a new worker
   * (getOrCreateThreadLocalPlugin: start functions, on_context_create, on_vm_start, on_configure).
   * A new VM that fails to start leaves the failed one in place.
   */
  private maybeReload(i: number): void {
    const intervalMs = this.reloadBackoffMs + Math.floor(Math.random() * (this.reloadBackoffMs / 2));
    const now = this.host.now();
    if (now - this.lastLoad[i] < BigInt(Math.floor(intervalMs * 1e6))) {
      this.reloadEvents.backoff++;
      return;
    }
    this.lastLoad[i] = now;
    try {
      const failed = this.vms[i];
      this.vms[i] = this.startVm(this.module, i);
      // Streams that began on the failed VM keep it; the host still cancels its calls on close.
      this.retired.push(failed);
      this.reloadEvents.success++;
    } catch (e) {
      if (!(e instanceof HostLoadError)) throw e;
      this.reloadEvents.failure++;
      // getOrCreateThreadLocalPlugin's words for a thread-local VM that does not start.
      const message = e.message
        .replace("Failed to start base Wasm", "Failed to start thread-local Wasm")
        .replace("Failed to configure base Wasm plugin", "Failed to configure thread-local Wasm plugin");
      this.host.log(this.name, i, 4, message, true);
    }
  }

  private loadError(message: string): HostLoadError {
    const e = new HostLoadError(message);
    e.filter = this.name;
    e.logs = this.host.logs.filter((l) => l.filter === this.name).map((l) => l.message);
    return e;
  }

  private compile(wasm: string | Uint8Array): { module: WebAssembly.Module; bytes: Uint8Array } {
    // Compiled modules are reused while the file is unchanged (hosts are created per test).
    const key = typeof wasm === "string" ? (() => {
      const st = statSync(wasm);
      return `${wasm}:${st.size}:${st.mtimeMs}`;
    })() : null;
    const cached = key ? moduleCache.get(key) : undefined;
    if (cached) return cached;
    const bytes = typeof wasm === "string" ? readFileSync(wasm) : wasm;
    let module: WebAssembly.Module;
    try {
      module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
    } catch {
      throw this.loadError("Failed to parse corrupted Wasm module");
    }
    const entry = { module, bytes };
    if (key) moduleCache.set(key, entry);
    return entry;
  }

  private startVm(module: WebAssembly.Module, worker: number): Vm {
    const vm = new Vm(this, worker);
    const err = vm.instantiate(module);
    if (err) throw this.loadError(err);
    const root = vm.newContext(null);
    vm.root = root;
    // ContextBase::onStart: on_context_create(root, 0) with the plugin readable, then on_vm_start
    // (independent of the plugin, so its configuration is not readable there).
    root.tempPluginConfig = this.pluginConfiguration;
    if (vm.has("proxy_on_context_create")) vm.callback(root, "proxy_on_context_create", [root.id, 0]);
    root.tempPluginConfig = null;
    root.created = true;
    if (vm.failed) throw this.loadError(vm.failMessage);
    if (vm.has("proxy_on_vm_start")) {
      const ok = vm.callback(root, "proxy_on_vm_start", [root.id, this.vmConfiguration.length]);
      if (vm.failed) throw this.loadError(vm.failMessage);
      if (Number(ok) === 0) throw this.loadError("Failed to start base Wasm");
    }
    // ContextBase::onConfigure: plugin configuration readable only during this call.
    if (vm.has("proxy_on_configure")) {
      root.tempPluginConfig = this.pluginConfiguration;
      const ok = vm.callback(root, "proxy_on_configure", [root.id, this.pluginConfiguration.length]);
      root.tempPluginConfig = null;
      if (vm.failed) throw this.loadError(vm.failMessage);
      if (Number(ok) === 0) throw this.loadError("Failed to configure base Wasm plugin");
    }
    return vm;
  }
}
