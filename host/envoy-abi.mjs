// What Envoy (proxy-wasm-cpp-host, src/wasm.cc WasmBase::registerCallbacks) offers a module, by the
// ABI version it exports (proxy_abi_version_0_1_0 / _0_2_0 / _0_2_1). Shared by the build checks and
// by the host's load checks, so the two can never disagree. Every version gets FOR_ALL_HOST_FUNCTIONS;
// proxy_get_configuration, proxy_continue_request/response and proxy_clear_route_cache are ABI 0.1.0
// only (in 0.2.x route-cache clearing goes through proxy_call_foreign_function("clear_route_cache")),
// proxy_continue_stream and proxy_close_stream 0.2.x, proxy_get_log_level 0.2.1 only.
const COMMON_HOST_FUNCTIONS = `proxy_log proxy_get_status proxy_set_property proxy_get_property
  proxy_send_local_response proxy_get_shared_data proxy_set_shared_data proxy_register_shared_queue
  proxy_resolve_shared_queue proxy_dequeue_shared_queue proxy_enqueue_shared_queue
  proxy_get_header_map_value proxy_add_header_map_value proxy_replace_header_map_value
  proxy_remove_header_map_value proxy_get_header_map_pairs proxy_set_header_map_pairs
  proxy_get_header_map_size proxy_get_buffer_status proxy_get_buffer_bytes proxy_set_buffer_bytes
  proxy_http_call proxy_grpc_call proxy_grpc_stream proxy_grpc_close proxy_grpc_cancel proxy_grpc_send
  proxy_set_tick_period_milliseconds proxy_get_current_time_nanoseconds proxy_define_metric
  proxy_increment_metric proxy_record_metric proxy_get_metric proxy_set_effective_context
  proxy_done proxy_call_foreign_function pthread_equal emscripten_notify_memory_growth`;
const names = (s) => new Set(s.trim().split(/\s+/));

export const HOST_FUNCTIONS_BY_ABI = {
  "0.1.0": names(`${COMMON_HOST_FUNCTIONS} proxy_get_configuration proxy_continue_request
    proxy_continue_response proxy_clear_route_cache`),
  "0.2.0": names(`${COMMON_HOST_FUNCTIONS} proxy_continue_stream proxy_close_stream`),
  "0.2.1": names(`${COMMON_HOST_FUNCTIONS} proxy_continue_stream proxy_close_stream proxy_get_log_level`),
};

/** Sluice's own filters are built for ABI 0.2.1 (a project policy: the host loads every version). */
export const ENVOY_HOST_FUNCTIONS = HOST_FUNCTIONS_BY_ABI["0.2.1"];

/** Every host function some ABI version offers (what the host implements). */
export const ALL_HOST_FUNCTIONS = new Set(Object.values(HOST_FUNCTIONS_BY_ABI).flatMap((s) => [...s]));

// FOR_ALL_WASI_FUNCTIONS in proxy-wasm-cpp-host include/proxy-wasm/exports.h, registered under
// both wasi_unstable and wasi_snapshot_preview1.
export const ENVOY_WASI_FUNCTIONS = new Set(
  `fd_write fd_read fd_seek fd_close fd_fdstat_get fd_fdstat_set_flags fd_fdstat_set_rights
  environ_get environ_sizes_get args_get args_sizes_get clock_time_get clock_res_get fd_advise
  fd_allocate fd_datasync fd_filestat_set_size fd_filestat_set_times fd_pread fd_pwrite fd_readdir
  fd_renumber fd_sync fd_tell path_create_directory path_filestat_set_times path_link path_readlink
  path_remove_directory path_rename path_symlink path_unlink_file sock_accept sock_recv sock_send
  sock_shutdown random_get sched_yield poll_oneoff proc_exit path_open fd_prestat_get
  fd_prestat_dir_name path_filestat_get fd_filestat_get`.split(/\s+/),
);

export const WASI_MODULES = new Set(["wasi_snapshot_preview1", "wasi_unstable"]);

/** Returns the reasons a Sluice filter would not load in Envoy as the project builds them (ABI 0.2.1;
 * the host itself loads every version, host/plugin.ts), empty when it would. */
export function checkModule(bytes) {
  let mod;
  try {
    mod = new WebAssembly.Module(bytes);
  } catch (e) {
    return [`not a valid WebAssembly module: ${e.message}`];
  }
  const problems = [];
  const exports = new Set(WebAssembly.Module.exports(mod).map((e) => e.name));
  if (!exports.has("proxy_abi_version_0_2_1")) problems.push("does not export proxy_abi_version_0_2_1 (the ABI marker Envoy looks for)");
  if (!exports.has("malloc") && !exports.has("proxy_on_memory_allocate")) problems.push("does not export malloc or proxy_on_memory_allocate");
  if (!exports.has("memory")) problems.push("does not export its memory");
  for (const imp of WebAssembly.Module.imports(mod)) {
    const known =
      (imp.module === "env" && ENVOY_HOST_FUNCTIONS.has(imp.name)) ||
      (WASI_MODULES.has(imp.module) && ENVOY_WASI_FUNCTIONS.has(imp.name));
    if (!known) problems.push(`imports ${imp.module}.${imp.name}, which Envoy does not provide (missing import)`);
  }
  return problems;
}
