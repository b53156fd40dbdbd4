// Host function signatures as cpp-host registers them (include/proxy-wasm/exports.h; its V8
// backend maps Word to i32 on wasm32 and (u)int64_t to i64). V8::link rejects a module whose import
// differs: "Failed to load Wasm module due to an import type mismatch". JavaScript would silently
// accept any arity, so the host checks this itself. Note cpp-host's own quirks are kept:
// path_link takes 6 parameters and path_symlink 4 (WASI has 7 and 5).
import type { ImportSig } from "./wasm-binary.js";

const I = "i32";
const L = "i64";
const sig = (params: string[], result: string[] = [I]) => ({ params, results: result });
const n = (count: number) => Array<string>(count).fill(I);

export const ENV_SIGNATURES: Record<string, { params: string[]; results: string[] }> = {
  proxy_log: sig(n(3)),
  proxy_get_status: sig(n(3)),
  proxy_set_property: sig(n(4)),
  proxy_get_property: sig(n(4)),
  proxy_send_local_response: sig(n(8)),
  proxy_get_shared_data: sig(n(5)),
  proxy_set_shared_data: sig(n(5)),
  proxy_register_shared_queue: sig(n(3)),
  proxy_resolve_shared_queue: sig(n(5)),
  proxy_dequeue_shared_queue: sig(n(3)),
  proxy_enqueue_shared_queue: sig(n(3)),
  proxy_get_header_map_value: sig(n(5)),
  proxy_add_header_map_value: sig(n(5)),
  proxy_replace_header_map_value: sig(n(5)),
  proxy_remove_header_map_value: sig(n(3)),
  proxy_get_header_map_pairs: sig(n(3)),
  proxy_set_header_map_pairs: sig(n(3)),
  proxy_get_header_map_size: sig(n(2)),
  proxy_get_buffer_status: sig(n(3)),
  proxy_get_buffer_bytes: sig(n(5)),
  proxy_set_buffer_bytes: sig(n(5)),
  proxy_http_call: sig(n(10)),
  proxy_grpc_call: sig(n(12)),
  proxy_grpc_stream: sig(n(9)),
  proxy_grpc_cancel: sig(n(1)),
  proxy_grpc_close: sig(n(1)),
  proxy_grpc_send: sig(n(4)),
  proxy_set_tick_period_milliseconds: sig(n(1)),
  proxy_get_current_time_nanoseconds: sig(n(1)),
  proxy_define_metric: sig(n(4)),
  proxy_increment_metric: sig([I, L]),
  proxy_record_metric: sig([I, L]),
  proxy_get_metric: sig(n(2)),
  proxy_set_effective_context: sig(n(1)),
  proxy_done: sig([]),
  proxy_call_foreign_function: sig(n(6)),
  proxy_continue_stream: sig(n(1)),
  proxy_close_stream: sig(n(1)),
  proxy_get_log_level: sig(n(1)),
  // ABI 0.1.0 only
  proxy_get_configuration: sig(n(2)),
  proxy_continue_request: sig([]),
  proxy_continue_response: sig([]),
  proxy_clear_route_cache: sig([]),
  pthread_equal: sig(n(2)),
  emscripten_notify_memory_growth: sig(n(1), []),
};

export const WASI_SIGNATURES: Record<string, { params: string[]; results: string[] }> = {
  path_open: sig([I, I, I, I, I, L, L, I, I]),
  fd_prestat_get: sig(n(2)),
  fd_filestat_get: sig(n(2)),
  fd_prestat_dir_name: sig(n(3)),
  fd_write: sig(n(4)),
  fd_read: sig(n(4)),
  fd_seek: sig([I, L, I, I]),
  fd_close: sig(n(1)),
  fd_fdstat_get: sig(n(2)),
  fd_fdstat_set_flags: sig(n(2)),
  environ_get: sig(n(2)),
  environ_sizes_get: sig(n(2)),
  args_get: sig(n(2)),
  args_sizes_get: sig(n(2)),
  sched_yield: sig([]),
  poll_oneoff: sig(n(4)),
  proc_exit: sig(n(1), []),
  clock_time_get: sig([I, L, I]),
  clock_res_get: sig(n(2)),
  fd_advise: sig([I, L, L, I]),
  fd_allocate: sig([I, L, L]),
  fd_datasync: sig(n(1)),
  fd_fdstat_set_rights: sig([I, L, L]),
  fd_filestat_set_size: sig([I, L]),
  fd_filestat_set_times: sig([I, L, L, I]),
  fd_pread: sig([I, I, I, L, I]),
  fd_pwrite: sig([I, I, I, L, I]),
  fd_readdir: sig([I, I, I, L, I]),
  fd_renumber: sig(n(2)),
  fd_sync: sig(n(1)),
  fd_tell: sig(n(2)),
  path_create_directory: sig(n(3)),
  path_filestat_get: sig(n(5)),
  path_filestat_set_times: sig([I, I, I, I, L, L, I]),
  path_link: sig(n(6)),
  path_readlink: sig(n(6)),
  path_remove_directory: sig(n(3)),
  path_rename: sig(n(6)),
  path_symlink: sig(n(4)),
  path_unlink_file: sig(n(3)),
  sock_accept: sig(n(3)),
  sock_recv: sig(n(6)),
  sock_send: sig(n(5)),
  sock_shutdown: sig(n(2)),
  random_get: sig(n(2)),
};

export type AbiVersion = "0.1.0" | "0.2.0" | "0.2.1";

/**
 * The module exports cpp-host looks up (WasmBase::getFunctions, types from include/proxy-wasm/wasm.h:
 * WasmCallWord<n> is n i32 parameters -> i32, WasmCallVoid<n> n i32 parameters -> void). The headers
 * callbacks differ by ABI: 0.1.0 has (context_id, headers), 0.2.x adds end_of_stream; 0.1.0 does not
 * look up proxy_on_foreign_function at all. An export with another type fails the load (V8
 * getModuleFunctionImpl "Bad function signature for: ...").
 */
export function exportSignatures(abi: AbiVersion): Record<string, { params: string[]; results: string[] }> {
  const word = (k: number) => sig(n(k));
  const voidFn = (k: number) => sig(n(k), []);
  const headers = abi === "0.1.0" ? word(2) : word(3);
  const table: Record<string, { params: string[]; results: string[] }> = {
    _initialize: voidFn(0), _start: voidFn(0), main: word(2), __main_void: word(0), malloc: word(1),
    proxy_on_memory_allocate: word(1),
    proxy_validate_configuration: word(2), proxy_on_vm_start: word(2), proxy_on_configure: word(2),
    proxy_on_tick: voidFn(1), proxy_on_context_create: voidFn(2), proxy_on_new_connection: word(1),
    proxy_on_downstream_data: word(3), proxy_on_upstream_data: word(3),
    proxy_on_downstream_connection_close: voidFn(2), proxy_on_upstream_connection_close: voidFn(2),
    proxy_on_request_headers: headers, proxy_on_request_body: word(3), proxy_on_request_trailers: word(2),
    proxy_on_request_metadata: word(2), proxy_on_response_headers: headers, proxy_on_response_body: word(3),
    proxy_on_response_trailers: word(2), proxy_on_response_metadata: word(2),
    proxy_on_http_call_response: voidFn(5), proxy_on_grpc_receive: voidFn(3), proxy_on_grpc_close: voidFn(3),
    proxy_on_grpc_receive_initial_metadata: voidFn(3), proxy_on_grpc_receive_trailing_metadata: voidFn(3),
    proxy_on_queue_ready: voidFn(2), proxy_on_done: word(1), proxy_on_log: voidFn(1), proxy_on_delete: voidFn(1),
  };
  if (abi !== "0.1.0") table.proxy_on_foreign_function = voidFn(3);
  return table;
}

const show = (t: string[]) => (t.length ? t.join(" ") : "void");

/**
 * The V8 getModuleFunctionImpl message for an export cpp-host would call with another type, or null.
 * cpp-host looks up _start only when there is no _initialize, main and __main_void only when there is
 * one, and proxy_on_memory_allocate only when there is no malloc (WasmBase::getFunctions).
 */
export function exportSignatureProblem(
  exp: { name: string; kind: string; params: string[]; results: string[] },
  abi: AbiVersion,
  exported: Set<string>,
): string | null {
  if (exp.kind !== "function") return null;
  const want = exportSignatures(abi)[exp.name];
  if (!want) return null;
  const reactor = exported.has("_initialize");
  if (exp.name === "_start" && reactor) return null;
  if ((exp.name === "main" || exp.name === "__main_void") && !reactor) return null;
  if (exp.name === "proxy_on_memory_allocate" && exported.has("malloc")) return null;
  const same = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
  if (same(want.params, exp.params) && same(want.results, exp.results)) return null;
  return (
    `Bad function signature for: ${exp.name}, want: ${show(want.params)} -> ${show(want.results)}, ` +
    `but the module exports: ${show(exp.params)} -> ${show(exp.results)}`
  );
}

/** The V8::link type-mismatch message for an import, or null when it matches. */
export function signatureProblem(imp: ImportSig): string | null {
  const want = imp.module === "env" ? ENV_SIGNATURES[imp.name] : WASI_SIGNATURES[imp.name];
  if (!want) return null;
  const same = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
  if (same(want.params, imp.params) && same(want.results, imp.results)) return null;
  return (
    `Failed to load Wasm module due to an import type mismatch: ${imp.module}.${imp.name}, ` +
    `want: ${show(imp.params)} -> ${show(imp.results)}, but host exports: ${show(want.params)} -> ${show(want.results)}`
  );
}
