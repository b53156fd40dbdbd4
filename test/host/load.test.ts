import { describe, expect, it } from "vitest";
import { Host, HostLoadError } from "../../host/index.js";
import { compileWat, Wat } from "./wat.js";

const MINIMAL = `
  (memory (export "memory") 1)
  (func (export "malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_abi_version_0_2_1"))`;

async function load(wasm: Uint8Array, extra: Record<string, unknown> = {}) {
  return Host.create({ filters: [{ name: "f", wasm, ...extra }] });
}

async function loadError(wasm: Uint8Array, extra: Record<string, unknown> = {}): Promise<HostLoadError> {
  try {
    await load(wasm, extra);
  } catch (e) {
    expect(e).toBeInstanceOf(HostLoadError);
    return e as HostLoadError;
  }
  throw new Error("module loaded");
}

describe("load checks (Envoy's messages)", () => {
  it("accepts a minimal module", async () => {
    const host = await load(compileWat(`(module ${MINIMAL})`));
    expect(host.memoryPages("f")).toBe(1);
  });

  it("rejects an import Envoy does not provide", async () => {
    const e = await loadError(compileWat(`(module (import "env" "foo" (func)) ${MINIMAL})`));
    expect(e.message).toBe("Failed to load Wasm module due to a missing import: env.foo");
  });

  it("rejects an unknown WASI function and a non-function import", async () => {
    let e = await loadError(compileWat(`(module (import "wasi_snapshot_preview1" "sock_open" (func)) ${MINIMAL})`));
    expect(e.message).toBe("Failed to load Wasm module due to a missing import: wasi_snapshot_preview1.sock_open");
    e = await loadError(compileWat(`(module (import "env" "g" (global i32)) ${MINIMAL})`));
    expect(e.message).toBe("Failed to load Wasm module due to a missing import: env.g");
  });

  it("rejects an import whose signature differs from the host's (V8 link check)", async () => {
    const e = await loadError(
      compileWat(`(module (import "env" "proxy_log" (func (param i32 i32) (result i32))) ${MINIMAL})`),
    );
    expect(e.message).toBe(
      "Failed to load Wasm module due to an import type mismatch: env.proxy_log, want: i32 i32 -> i32, but host exports: i32 i32 i32 -> i32",
    );
  });

  it("rejects a module without the ABI marker", async () => {
    const e = await loadError(
      compileWat(`(module (memory (export "memory") 1) (func (export "malloc") (param i32) (result i32) (i32.const 0)))`),
    );
    expect(e.message).toBe("Missing or unknown Proxy-Wasm ABI version");
  });

  it("rejects a module without malloc", async () => {
    const e = await loadError(compileWat(`(module (memory (export "memory") 1) (func (export "proxy_abi_version_0_2_1")))`));
    expect(e.message).toBe("Wasm module is missing malloc function.");
  });

  it("accepts proxy_on_memory_allocate instead of malloc", async () => {
    await load(
      compileWat(`(module (memory (export "memory") 1) (func (export "proxy_abi_version_0_2_1"))
        (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 1024)))`),
    );
  });

  it("fails when proxy_on_vm_start or proxy_on_configure returns false", async () => {
    let e = await loadError(
      compileWat(`(module ${MINIMAL} (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 0)))`),
    );
    expect(e.message).toBe("Failed to start base Wasm");
    e = await loadError(
      compileWat(`(module ${MINIMAL} (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 0)))`),
    );
    expect(e.message).toBe("Failed to configure base Wasm plugin");
  });

  it("reports a trap during start", async () => {
    const e = await loadError(compileWat(`(module ${MINIMAL} (func (export "_initialize") unreachable))`));
    expect(e.message).toMatch(/^Function: _initialize failed: Uncaught RuntimeError: unreachable/);
  });

  it("traps a restricted host call during _initialize (cpp-host restricted_callback)", async () => {
    const e = await loadError(
      compileWat(`(module
        (import "env" "proxy_set_tick_period_milliseconds" (func $t (param i32) (result i32)))
        ${MINIMAL}
        (func (export "_initialize") (drop (call $t (i32.const 5)))))`),
    );
    expect(e.message).toContain("restricted_callback");
  });

  it("runs the start sequence in Envoy's order with the right sizes and ids", async () => {
    const w = new Wat();
    const wasm = w.build(`
      (func (export "_initialize") (call $log ${w.s("initialize")}))
      (func (export "proxy_on_context_create") (param $id i32) (param $parent i32)
        (call $log ${w.s("create")}) (call $logn (local.get $id)) (call $logn (local.get $parent)))
      (func (export "proxy_on_vm_start") (param $id i32) (param $n i32) (result i32)
        (call $log ${w.s("vm_start")}) (call $logn (local.get $n))
        ;; VM configuration: readable (Envoy getBuffer always returns it)
        (drop (call $get_buf (i32.const 6) (i32.const 0) (local.get $n) (i32.const 512) (i32.const 516)))
        (call $logout)
        ;; plugin configuration: not readable here -> NOT_FOUND (1)
        (call $logn (call $get_buf (i32.const 7) (i32.const 0) (i32.const 100) (i32.const 512) (i32.const 516)))
        (i32.const 1))
      (func (export "proxy_on_configure") (param $id i32) (param $n i32) (result i32)
        (call $log ${w.s("configure")}) (call $logn (local.get $n))
        (drop (call $get_buf (i32.const 7) (i32.const 0) (local.get $n) (i32.const 512) (i32.const 516)))
        (call $logout)
        (i32.const 1))
      (func (export "proxy_on_request_headers") (param $id i32) (param $n i32) (param $end i32) (result i32)
        (call $logn (local.get $id))
        (call $logn (call $get_buf (i32.const 7) (i32.const 0) (i32.const 100) (i32.const 512) (i32.const 516)))
        (i32.const 0))
    `);
    const host = await load(wasm, { configuration: { a: 1 }, vmConfiguration: "vmconf" });
    expect(host.getLogs("info")).toEqual([
      "initialize", "create", "1", "0", "vm_start", "6", "vmconf", "1", "configure", "7", '{"a":1}',
    ]);
    const s = host.newStream();
    s.callOnRequestHeaders({ ":path": "/" }, true);
    // Stream context id 2 (root is 1), plugin configuration NOT_FOUND outside on_configure.
    expect(host.getLogs("info").slice(-5)).toEqual(["create", "2", "1", "2", "1"]);
  });
});
