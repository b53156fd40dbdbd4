// Issue 14 item 1: the host loads every Proxy-Wasm ABI version Envoy loads (0.1.0, 0.2.0, 0.2.1) with
// cpp-host's per-version differences, and refuses what Envoy refuses with cpp-host's words.
// Sources: proxy-wasm-cpp-host src/bytecode_util.cc BytecodeUtil::getAbiVersion, src/wasm.cc
// WasmBase::load / registerCallbacks / getFunctions, src/context.cc ContextBase::onRequestHeaders,
// src/v8/v8.cc V8::link / getModuleFunctionImpl; Envoy context.cc Context::getConfiguration.
import { describe, expect, it } from "vitest";
import { Host, HostLoadError } from "../../host/index.js";
import { compileWat } from "./wat.js";

const MEM = `(memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (func (export "malloc") (param $n i32) (result i32) (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (local.get $p))`;
const LOG = `(import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))`;

async function loadError(wasm: Uint8Array, extra: Record<string, unknown> = {}): Promise<HostLoadError> {
  try {
    await Host.create({ filters: [{ name: "f", wasm, ...extra }] });
  } catch (e) {
    expect(e).toBeInstanceOf(HostLoadError);
    return e as HostLoadError;
  }
  throw new Error("module loaded");
}

/** A module of the given ABI whose headers callbacks log how many arguments they were given. */
function headersModule(abi: "0_1_0" | "0_2_0" | "0_2_1"): Uint8Array {
  const params = abi === "0_1_0" ? "(param i32 i32)" : "(param i32 i32 i32)";
  const msg = abi === "0_1_0" ? "two arguments" : "three arguments";
  return compileWat(`(module ${LOG} ${MEM}
    (data (i32.const 100) "${msg}")
    (func (export "proxy_abi_version_${abi}"))
    (func (export "proxy_on_request_headers") ${params} (result i32)
      (drop (call $log (i32.const 2) (i32.const 100) (i32.const ${msg.length}))) (i32.const 0)))`);
}

describe("ABI versions Envoy loads", () => {
  for (const [abi, args] of [["0_1_0", "two"], ["0_2_0", "three"], ["0_2_1", "three"]] as const) {
    it(`loads a proxy_abi_version_${abi} module and calls its headers callback with ${args} arguments`, async () => {
      const host = await Host.create({ filters: [{ name: "f", wasm: headersModule(abi) }] });
      const s = host.newStream();
      expect(s.callOnRequestHeaders({ ":method": "GET", ":path": "/", ":authority": "a" }, true)).toBe("Continue");
      expect(host.getLogs("info")).toEqual([`${args} arguments`]);
      expect(s.upstream.headers).not.toBeNull();
    });
  }

  it("refuses a headers callback with the other ABI's arity (V8 getModuleFunctionImpl)", async () => {
    let e = await loadError(
      compileWat(`(module ${MEM} (func (export "proxy_abi_version_0_1_0"))
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 0)))`),
    );
    expect(e.message).toBe(
      "Bad function signature for: proxy_on_request_headers, want: i32 i32 -> i32, but the module exports: i32 i32 i32 -> i32",
    );
    e = await loadError(
      compileWat(`(module ${MEM} (func (export "proxy_abi_version_0_2_1"))
        (func (export "proxy_on_response_headers") (param i32 i32) (result i32) (i32.const 0)))`),
    );
    expect(e.message).toBe(
      "Bad function signature for: proxy_on_response_headers, want: i32 i32 i32 -> i32, but the module exports: i32 i32 -> i32",
    );
    e = await loadError(
      compileWat(`(module ${MEM} (func (export "proxy_abi_version_0_2_0"))
        (func (export "proxy_on_done") (param i32)))`),
    );
    expect(e.message).toBe("Bad function signature for: proxy_on_done, want: i32 -> i32, but the module exports: i32 -> void");
  });

  it("looks proxy_on_foreign_function up for 0.2.x only (0.1.0 never calls it, so its type does not matter)", async () => {
    const foreign = (abi: string) =>
      compileWat(`(module ${MEM} (func (export "proxy_abi_version_${abi}")) (func (export "proxy_on_foreign_function") (param i32)))`);
    await Host.create({ filters: [{ name: "f", wasm: foreign("0_1_0") }] });
    const e = await loadError(foreign("0_2_0"));
    expect(e.message).toBe("Bad function signature for: proxy_on_foreign_function, want: i32 i32 i32 -> void, but the module exports: i32 -> void");
  });

  it("refuses no marker and an unknown version with cpp-host's message", async () => {
    let e = await loadError(compileWat(`(module ${MEM})`));
    expect(e.message).toBe("Missing or unknown Proxy-Wasm ABI version");
    e = await loadError(compileWat(`(module ${MEM} (func (export "proxy_abi_version_0_3_0")))`));
    expect(e.message).toBe("Missing or unknown Proxy-Wasm ABI version");
    // Only a function export is a marker.
    e = await loadError(compileWat(`(module ${MEM} (global (export "proxy_abi_version_0_2_1") i32 (i32.const 0)))`));
    expect(e.message).toBe("Missing or unknown Proxy-Wasm ABI version");
  });

  it("takes the first marker of a module that exports two, as getAbiVersion does", async () => {
    // 0.1.0 first: the 0.1.0 arity is expected, so a 3-argument headers callback is refused...
    const two = (first: string, second: string, params: string) =>
      compileWat(`(module ${MEM} (func (export "proxy_abi_version_${first}")) (func (export "proxy_abi_version_${second}"))
        (func (export "proxy_on_request_headers") ${params} (result i32) (i32.const 0)))`);
    const e = await loadError(two("0_1_0", "0_2_1", "(param i32 i32 i32)"));
    expect(e.message).toMatch(/^Bad function signature for: proxy_on_request_headers, want: i32 i32 -> i32/);
    // ...and the same module with the markers swapped loads as 0.2.1.
    const host = await Host.create({ filters: [{ name: "f", wasm: two("0_2_1", "0_1_0", "(param i32 i32 i32)") }] });
    expect(host.plugins[0].abiVersion).toBe("0.2.1");
  });

  it("offers each version only its own host functions (WasmBase::registerCallbacks)", async () => {
    const importing = (abi: string, fn: string, sig: string) =>
      compileWat(`(module (import "env" "${fn}" (func ${sig})) ${MEM} (func (export "proxy_abi_version_${abi}")))`);
    const missing = (fn: string) => `Failed to load Wasm module due to a missing import: env.${fn}`;
    expect((await loadError(importing("0_2_0", "proxy_get_log_level", "(param i32) (result i32)"))).message).toBe(missing("proxy_get_log_level"));
    expect((await loadError(importing("0_1_0", "proxy_continue_stream", "(param i32) (result i32)"))).message).toBe(missing("proxy_continue_stream"));
    expect((await loadError(importing("0_1_0", "proxy_close_stream", "(param i32) (result i32)"))).message).toBe(missing("proxy_close_stream"));
    expect((await loadError(importing("0_2_1", "proxy_continue_request", "(result i32)"))).message).toBe(missing("proxy_continue_request"));
    expect((await loadError(importing("0_2_1", "proxy_get_configuration", "(param i32 i32) (result i32)"))).message).toBe(missing("proxy_get_configuration"));
    expect((await loadError(importing("0_2_0", "proxy_clear_route_cache", "(result i32)"))).message).toBe(missing("proxy_clear_route_cache"));
    for (const [abi, fn, sig] of [
      ["0_1_0", "proxy_get_configuration", "(param i32 i32) (result i32)"],
      ["0_1_0", "proxy_continue_request", "(result i32)"],
      ["0_1_0", "proxy_continue_response", "(result i32)"],
      ["0_1_0", "proxy_clear_route_cache", "(result i32)"],
      ["0_2_0", "proxy_continue_stream", "(param i32) (result i32)"],
      ["0_2_0", "proxy_close_stream", "(param i32) (result i32)"],
      ["0_2_1", "proxy_get_log_level", "(param i32) (result i32)"],
    ]) {
      await Host.create({ filters: [{ name: "f", wasm: importing(abi, fn, sig) }] });
    }
  });

  it("0.1.0: get_configuration reads the plugin configuration in on_configure, continue_request resumes, clear_route_cache clears", async () => {
    const wasm = compileWat(`(module ${LOG}
      (import "env" "proxy_get_configuration" (func $get_conf (param i32 i32) (result i32)))
      (import "env" "proxy_continue_request" (func $continue_request (result i32)))
      (import "env" "proxy_clear_route_cache" (func $clear (result i32)))
      ${MEM}
      (func (export "proxy_abi_version_0_1_0"))
      (func $log_conf
        (drop (call $get_conf (i32.const 512) (i32.const 516)))
        (drop (call $log (i32.const 2) (i32.load (i32.const 512)) (i32.load (i32.const 516)))))
      (func (export "proxy_on_configure") (param i32 i32) (result i32) (call $log_conf) (i32.const 1))
      (func (export "proxy_on_request_headers") (param i32 i32) (result i32)
        (call $log_conf) (drop (call $clear)) (i32.const 1))
      (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
        (drop (call $continue_request)) (i32.const 1)))`);
    const host = await Host.create({
      filters: [{ name: "f", wasm, configuration: "plugin-conf", vmConfiguration: "vm-conf", allowOnHeadersStopIteration: true }],
    });
    const s = host.newStream();
    expect(s.callOnRequestHeaders({ ":method": "POST", ":path": "/", ":authority": "a" }, false)).toBe("Pause");
    // Outside on_configure Envoy's getConfiguration falls back to the VM configuration.
    expect(host.getLogs("info")).toEqual(["plugin-conf", "vm-conf"]);
    expect(s.routeCacheClears).toBe(1);
    s.callOnRequestBody("x", true);
    expect(s.upstream.headers).not.toBeNull();
  });
});
