// Issue 14 item 2: modules built the way each proxy-wasm SDK's toolchain builds them start as Envoy
// starts them. One WAT conformance module per convention, each run through Host.create and a stream.
// Sources (proxy-wasm-cpp-host): src/wasm.cc WasmBase::getFunctions (_initialize, then main and
// __main_void only for a reactor; _start only without _initialize; malloc before
// proxy_on_memory_allocate), WasmBase::startVm (start functions with only the start-time host
// functions allowed, before any root context), WasmBase::initialize / start and src/context.cc
// ContextBase::onStart / onConfigure / onCreate (on_context_create(root, 0) with the plugin set, then
// on_vm_start, then on_configure; stream contexts get on_context_create(id, root)); Envoy context.cc
// Context::onHttpCallResponse (answers go to the root context that made the call, whatever context
// called proxy_http_call).
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Host, HostLoadError, serializeHeaders } from "../../host/index.js";
import { compileWat, LOG_FUNCS } from "./wat.js";

const REQ = { ":method": "GET", ":path": "/", ":authority": "gw" };

/** Data segments for strings; s() returns "(i32.const ptr) (i32.const len)". */
class Strings {
  private segs: string[] = [];
  private next = 1024;
  s(text: string | Uint8Array): string {
    const b = Buffer.from(text);
    const p = this.next;
    this.next += b.length + 8;
    this.segs.push(`(data (i32.const ${p}) "${[...b].map((x) => "\\" + x.toString(16).padStart(2, "0")).join("")}")`);
    return `(i32.const ${p}) (i32.const ${b.length})`;
  }
  get data(): string {
    return this.segs.join("\n");
  }
}

interface Convention {
  /** start-up exports (WAT funcs) */
  start: string;
  /** which allocator exports the module has */
  allocators: Array<"malloc" | "proxy_on_memory_allocate">;
  /** extra WAT (e.g. a start section) */
  extra?: string;
}

/**
 * A module of one toolchain's shape. Every callback logs what it was called with; the root context's
 * on_context_create also logs the plugin_root_id property it reads there.
 */
function conventionModule(c: Convention, strs = new Strings()): Uint8Array {
  const rootId = strs.s("plugin_root_id");
  const alloc = (name: string, counter: string) => `
    (func (export "${name}") (param $n i32) (result i32) (local $p i32)
      (global.set ${counter} (i32.add (global.get ${counter}) (i32.const 1)))
      (local.set $p (global.get $heap))
      (global.set $heap (i32.add (global.get $heap) (local.get $n)))
      (local.get $p))`;
  const body = `
    (import "env" "proxy_log" (func $proxy_log (param i32 i32 i32) (result i32)))
    (import "env" "proxy_get_property" (func $get_prop (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
    (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes (param i32 i32) (result i32)))
    (memory (export "memory") 2)
    (global $heap (mut i32) (i32.const 65536))
    (global $mallocs (export "mallocs") (mut i32) (i32.const 0))
    (global $allocs (export "allocs") (mut i32) (i32.const 0))
    ${c.allocators.includes("malloc") ? alloc("malloc", "$mallocs") : ""}
    ${c.allocators.includes("proxy_on_memory_allocate") ? alloc("proxy_on_memory_allocate", "$allocs") : ""}
    (func (export "proxy_abi_version_0_2_1"))
    ${LOG_FUNCS}
    (func $startup_wasi
      ;; what Go's and Rust's runtimes call while they initialise (cpp-host allows these at start)
      (drop (call $clock (i32.const 1) (i64.const 0) (i32.const 600)))
      (drop (call $random (i32.const 600) (i32.const 8)))
      (drop (call $environ_sizes (i32.const 600) (i32.const 604))))
    (func (export "proxy_on_context_create") (param $id i32) (param $parent i32)
      (call $log ${strs.s("create")}) (call $logn (local.get $id)) (call $logn (local.get $parent))
      (if (i32.eqz (local.get $parent))
        (then
          (call $logn (call $get_prop ${rootId} (i32.const 512) (i32.const 516)))
          (call $log (i32.load (i32.const 512)) (i32.load (i32.const 516))))))
    (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (call $log ${strs.s("vm_start")}) (i32.const 1))
    (func (export "proxy_on_configure") (param i32 i32) (result i32) (call $log ${strs.s("configure")}) (i32.const 1))
    (func (export "proxy_on_request_headers") (param $id i32) (param i32 i32) (result i32)
      (call $log ${strs.s("request_headers")}) (call $logn (local.get $id)) (i32.const 0))
    ${c.start}
    ${c.extra ?? ""}`;
  return compileWat(`(module ${body} ${strs.data})`);
}

/** Logs `name` when called; main-like exports take (argc, argv) and log them. */
function startFns(strs: Strings, ...names: string[]): string {
  return names
    .map((n) => {
      if (n === "main") {
        return `(func (export "main") (param $argc i32) (param $argv i32) (result i32)
          (call $log ${strs.s("main")}) (call $logn (local.get $argc)) (call $logn (local.get $argv)) (i32.const 0))`;
      }
      const result = n === "__main_void" ? "(result i32)" : "";
      return `(func (export "${n}") ${result} (call $startup_wasi) (call $log ${strs.s(n)}) ${result ? "(i32.const 0)" : ""})`;
    })
    .join("\n");
}

const ROOT_START = ["create", "1", "0", "0", "my-root", "vm_start", "configure"];
const STREAM = ["create", "2", "1", "request_headers", "2"];

async function run(wasm: Uint8Array) {
  const host = await Host.create({ filters: [{ name: "f", wasm, rootId: "my-root" }] });
  const s = host.newStream();
  expect(s.callOnRequestHeaders(REQ, true)).toBe("Continue");
  expect(s.upstream.headers).not.toBeNull();
  const ex = host.plugins[0].vms[0].instance.exports as Record<string, WebAssembly.Global>;
  return { host, logs: host.getLogs("info"), mallocs: Number(ex.mallocs.value), allocs: Number(ex.allocs.value) };
}

describe("each toolchain's start-up and allocator, as cpp-host runs them", () => {
  it("C++ SDK (emscripten): _start that returns runs once before the root context; malloc allocates", async () => {
    const strs = new Strings();
    const r = await run(conventionModule({ start: startFns(strs, "_start"), allocators: ["malloc"] }, strs));
    expect(r.logs).toEqual(["_start", ...ROOT_START, ...STREAM]);
    expect(r.mallocs).toBeGreaterThan(0); // the plugin_root_id value was copied out through malloc
  });

  it("TinyGo: _start, and proxy_on_memory_allocate as the allocator", async () => {
    const strs = new Strings();
    const r = await run(conventionModule({ start: startFns(strs, "_start"), allocators: ["proxy_on_memory_allocate"] }, strs));
    expect(r.logs).toEqual(["_start", ...ROOT_START, ...STREAM]);
    expect(r.allocs).toBeGreaterThan(0);
  });

  it("Go 1.24 wasip1 c-shared: the _initialize reactor runs; _start is not called when _initialize exists", async () => {
    const strs = new Strings();
    const r = await run(
      conventionModule({ start: startFns(strs, "_initialize", "_start"), allocators: ["proxy_on_memory_allocate"] }, strs),
    );
    expect(r.logs).toEqual(["_initialize", ...ROOT_START, ...STREAM]);
    expect(r.allocs).toBeGreaterThan(0);
  });

  it("Rust: _initialize then main(0, 0) of a reactor; __main_void when there is no main", async () => {
    let strs = new Strings();
    let r = await run(
      conventionModule({ start: startFns(strs, "_initialize", "main", "__main_void"), allocators: ["proxy_on_memory_allocate"] }, strs),
    );
    expect(r.logs).toEqual(["_initialize", "main", "0", "0", ...ROOT_START, ...STREAM]);
    strs = new Strings();
    r = await run(conventionModule({ start: startFns(strs, "_initialize", "__main_void"), allocators: ["proxy_on_memory_allocate"] }, strs));
    expect(r.logs).toEqual(["_initialize", "__main_void", ...ROOT_START, ...STREAM]);
    // A command module's main is not called: only _start is (WasmBase::getFunctions looks main up for reactors).
    strs = new Strings();
    r = await run(conventionModule({ start: startFns(strs, "_start", "main"), allocators: ["malloc"] }, strs));
    expect(r.logs).toEqual(["_start", ...ROOT_START, ...STREAM]);
  });

  it("AssemblyScript: a start section and no start export; malloc", async () => {
    const strs = new Strings();
    // The start section runs at instantiation; a flag shows it ran before on_context_create.
    const ran = strs.s("start section ran");
    const r = await run(
      conventionModule(
        {
          start: "",
          allocators: ["malloc"],
          extra: `(global $started (mut i32) (i32.const 0))
            (func $as_start (global.set $started (i32.const 1)))
            (start $as_start)
            (func (export "proxy_on_tick") (param i32) (if (global.get $started) (then (call $log ${ran}))))`,
        },
        strs,
      ),
    );
    expect(r.logs).toEqual([...ROOT_START, ...STREAM]);
    r.host.plugins[0].vms[0].tick();
    expect(r.host.getLogs("info").at(-1)).toBe("start section ran");
  });

  it("prefers malloc over proxy_on_memory_allocate when a module exports both", async () => {
    const strs = new Strings();
    const r = await run(conventionModule({ start: startFns(strs, "_start"), allocators: ["malloc", "proxy_on_memory_allocate"] }, strs));
    expect(r.mallocs).toBeGreaterThan(0);
    expect(r.allocs).toBe(0);
  });

  it("each worker's VM runs the start function once, before its own root context", async () => {
    const strs = new Strings();
    const host = await Host.create({
      filters: [{ name: "f", wasm: conventionModule({ start: startFns(strs, "_initialize"), allocators: ["malloc"] }, strs), rootId: "my-root", workers: 2 }],
    });
    expect(host.getLogs("info")).toEqual(["_initialize", ...ROOT_START, "_initialize", ...ROOT_START]);
  });

  it("a host call outside the start-time allow-list traps in _start (restricted_callback)", async () => {
    const strs = new Strings();
    const rootId = strs.s("plugin_root_id");
    const wasm = conventionModule(
      { start: `(func (export "_start") (drop (call $get_prop ${rootId} (i32.const 512) (i32.const 516))))`, allocators: ["malloc"] },
      strs,
    );
    const e = await Host.create({ filters: [{ name: "f", wasm }] }).catch((x) => x);
    expect(e).toBeInstanceOf(HostLoadError);
    expect(e.message).toMatch(/^Function: _start failed: Uncaught .*restricted_callback/);
  });
});

describe("root-context id conventions", () => {
  let server: http.Server;
  let base = "";
  beforeAll(async () => {
    server = http.createServer((_req, res) => res.end("pong"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it("an http call made from a stream context is answered on the root context id; the SDK switches back with set_effective_context", async () => {
    const strs = new Strings();
    const hdrs = strs.s(serializeHeaders({ ":method": "GET", ":path": "/ping", ":authority": "up" }));
    const wasm = compileWat(`(module
      (import "env" "proxy_log" (func $proxy_log (param i32 i32 i32) (result i32)))
      (import "env" "proxy_http_call" (func $http_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
      (import "env" "proxy_set_effective_context" (func $set_eff (param i32) (result i32)))
      (import "env" "proxy_continue_stream" (func $continue (param i32) (result i32)))
      (memory (export "memory") 2)
      (global $heap (mut i32) (i32.const 65536))
      (global $stream (mut i32) (i32.const 0))
      (func (export "proxy_on_memory_allocate") (param $n i32) (result i32) (local $p i32)
        (local.set $p (global.get $heap)) (global.set $heap (i32.add (global.get $heap) (local.get $n))) (local.get $p))
      (func (export "proxy_abi_version_0_2_1"))
      (func (export "_start"))
      ${LOG_FUNCS}
      (func (export "proxy_on_request_headers") (param $id i32) (param i32 i32) (result i32)
        (global.set $stream (local.get $id))
        (drop (call $http_call ${strs.s("up")} ${hdrs} (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 5000) (i32.const 520)))
        (i32.const 1))
      (func (export "proxy_on_http_call_response") (param $id i32) (param $token i32) (param i32 i32 i32)
        (call $logn (local.get $id))
        (call $logn (i32.eq (local.get $token) (i32.load (i32.const 520))))
        (drop (call $set_eff (global.get $stream)))
        (drop (call $continue (i32.const 0))))
      ${strs.data})`);
    const host = await Host.create({ filters: [{ name: "f", wasm }], clusters: { up: base } });
    const s = host.newStream();
    expect(s.callOnRequestHeaders(REQ, true)).toBe("Pause");
    await host.settle();
    // Root context 1 (the stream's context is 2), with the token proxy_http_call returned.
    expect(host.getLogs("info")).toEqual(["1", "1"]);
    expect(s.upstream.headers).not.toBeNull();
  });
});
