// One http filter of the chain: its configuration, its compiled module and its VM instances
// (one per worker), started the way Envoy starts a plugin (cpp-host WasmBase::initialize,
// ContextBase::onStart and onConfigure).
import { readFileSync, statSync } from "node:fs";
import { ENVOY_HOST_FUNCTIONS, ENVOY_WASI_FUNCTIONS, WASI_MODULES } from "../scripts/wasm-imports.mjs";
import { HostLoadError } from "./errors.js";
import type { HostCore } from "./host.js";
import { signatureProblem } from "./signatures.js";
import { Vm } from "./vm.js";
import { readImports } from "./wasm-binary.js";

export interface FilterOptions {
  name: string;
  wasm: string | Uint8Array;
  configuration?: unknown;
  rootId?: string;
  vmId?: string;
  vmConfiguration?: unknown;
  failOpen?: boolean;
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

const moduleCache = new Map<string, { module: WebAssembly.Module; bytes: Uint8Array }>();

/** Why Envoy would refuse the module before instantiating it, or null. Messages are cpp-host's. */
function checkModule(module: WebAssembly.Module, bytes: Uint8Array): string | null {
  const exports = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
  if (!exports.has("proxy_abi_version_0_2_1")) {
    if (exports.has("proxy_abi_version_0_2_0") || exports.has("proxy_abi_version_0_1_0")) {
      return "Proxy-Wasm ABI versions other than 0.2.1 are not supported by this host";
    }
    return "Missing or unknown Proxy-Wasm ABI version";
  }
  // V8::link reports the first import it cannot resolve.
  for (const imp of WebAssembly.Module.imports(module)) {
    const known =
      imp.kind === "function" &&
      ((imp.module === "env" && ENVOY_HOST_FUNCTIONS.has(imp.name)) ||
        (WASI_MODULES.has(imp.module) && ENVOY_WASI_FUNCTIONS.has(imp.name)));
    if (!known) return `Failed to load Wasm module due to a missing import: ${imp.module}.${imp.name}`;
  }
  for (const imp of readImports(bytes)) {
    const problem = imp.kind === "function" ? signatureProblem(imp) : null;
    if (problem) return problem;
  }
  if (!exports.has("malloc") && !exports.has("proxy_on_memory_allocate")) return "Wasm module is missing malloc function.";
  return null;
}

export class Plugin {
  readonly name: string;
  readonly rootId: string;
  readonly vmId: string;
  readonly failOpen: boolean;
  readonly allowOnHeadersStopIteration: boolean;
  readonly vmConfiguration: Buffer;
  readonly pluginConfiguration: Buffer;
  readonly env: ReadonlyArray<readonly [string, string]>;
  readonly vms: Vm[] = [];

  constructor(
    readonly host: HostCore,
    opts: FilterOptions,
  ) {
    this.name = opts.name;
    this.rootId = opts.rootId ?? "";
    this.vmId = opts.vmId ?? "";
    this.failOpen = opts.failOpen ?? false;
    this.allowOnHeadersStopIteration = opts.allowOnHeadersStopIteration ?? false;
    this.vmConfiguration = toBytes(opts.vmConfiguration);
    this.pluginConfiguration = toBytes(opts.configuration);
    this.env = Object.entries(opts.env ?? {});
    for (const [k] of this.env) if (!k || k.includes("=") || k.includes("\0")) throw new Error(`filter ${opts.name}: bad environment variable name ${JSON.stringify(k)}`);
    const workers = opts.workers ?? 1;
    if (!Number.isInteger(workers) || workers < 1) throw new Error(`filter ${opts.name}: workers must be a positive integer`);
    const { module, bytes } = this.compile(opts.wasm);
    const problem = checkModule(module, bytes);
    if (problem) throw this.loadError(problem);
    for (let w = 0; w < workers; w++) this.vms.push(this.startVm(module, w));
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
