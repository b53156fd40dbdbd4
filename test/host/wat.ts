// Tiny proxy-wasm modules written in WAT for host tests, compiled with wabt.
// A Wat collects string constants into data segments; build() wraps the test's functions in a
// prelude: memory, a bump malloc that counts calls, the ABI marker, the env imports tests use, and
// helpers ($log ptr len, $logn number, $logout = log the value a host call returned via 512/516).
import wabtInit from "wabt";

const wabt = await wabtInit();

const IMPORTS = `
  (import "env" "proxy_log" (func $proxy_log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get_hdr (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add_hdr (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_pairs" (func $get_pairs (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $get_buf (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_buffer_bytes" (func $set_buf (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $send_local (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_continue_stream" (func $continue (param i32) (result i32)))
  (import "env" "proxy_set_effective_context" (func $set_eff (param i32) (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds" (func $set_tick (param i32) (result i32)))
  (import "env" "proxy_get_shared_data" (func $get_shared (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_shared_data" (func $set_shared (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_http_call" (func $http_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_property" (func $get_prop (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_property" (func $set_prop (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_define_metric" (func $define_metric (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $inc_metric (param i32 i64) (result i32)))
  (import "env" "proxy_record_metric" (func $rec_metric (param i32 i64) (result i32)))
  (import "env" "proxy_call_foreign_function" (func $foreign (param i32 i32 i32 i32 i32 i32) (result i32)))
`;

/** $log (ptr, len) and $logn (a number in decimal, written below offset 640): any module that
 * imports proxy_log as $proxy_log can include them. */
export const LOG_FUNCS = `
  (func $log (param $p i32) (param $l i32) (drop (call $proxy_log (i32.const 2) (local.get $p) (local.get $l))))
  (func $logn (param $n i32) (local $p i32)
    (local.set $p (i32.const 640))
    (loop $l
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p) (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $l (local.get $n)))
    (call $log (local.get $p) (i32.sub (i32.const 640) (local.get $p))))`;

const HELPERS = `
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (global $mallocs (export "mallocs") (mut i32) (i32.const 0))
  (func (export "malloc") (param $n i32) (result i32) (local $p i32)
    (global.set $mallocs (i32.add (global.get $mallocs) (i32.const 1)))
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (local.get $p))
  (func (export "proxy_abi_version_0_2_1"))
  (func $logout (call $log (i32.load (i32.const 512)) (i32.load (i32.const 516))))
${LOG_FUNCS}
`;

export class Wat {
  private segments: string[] = [];
  private next = 1024;

  /** Places bytes in memory; returns "(i32.const ptr) (i32.const len)" for use as call arguments. */
  s(text: string | Uint8Array): string {
    const bytes = typeof text === "string" ? Buffer.from(text) : Buffer.from(text);
    const ptr = this.next;
    this.next += bytes.length + 8;
    const esc = [...bytes].map((b) => "\\" + b.toString(16).padStart(2, "0")).join("");
    this.segments.push(`(data (i32.const ${ptr}) "${esc}")`);
    return `(i32.const ${ptr}) (i32.const ${bytes.length})`;
  }

  build(body: string, opts: { prelude?: boolean; imports?: string } = {}): Uint8Array {
    const src =
      opts.prelude === false
        ? `(module ${opts.imports ?? ""} ${body})`
        : `(module ${IMPORTS} ${opts.imports ?? ""} ${HELPERS} ${this.segments.join("\n")} ${body})`;
    return compileWat(src);
  }
}

export function compileWat(src: string): Uint8Array {
  const mod = wabt.parseWat("test.wat", src);
  try {
    return new Uint8Array(mod.toBinary({}).buffer);
  } finally {
    mod.destroy();
  }
}

/** Out-parameter addresses the helpers use. */
export const OUT_PTR = 512;
export const OUT_SIZE = 516;
export const OUT_AUX = 520;
