// The proxy-wasm entry points every filter module exports: its VM's and root context's lifecycle,
// timers, queues, the answers to its calls out, and a stream's first and last callbacks. A filter
// adds the stream callbacks it has work in (`export { proxy_on_request_body } from
// "@gcoredev/proxy-wasm-sdk-as/assembly/exports"`), and only those.
//
// Envoy does not call a callback a module does not export: proxy-wasm-cpp-host's
// ContextBase::onRequestBody, onResponseBody, the trailers and metadata callbacks return Continue
// when the export is missing (src/context.cc). So a streamed answer's chunks never enter key-auth,
// and a crossing into a module that would only answer "continue" costs nothing. The host does the
// same (host/context.ts, dataCall).
export { malloc } from "@gcoredev/proxy-wasm-sdk-as/assembly/malloc";
export {
  proxy_abi_version_0_2_1, proxy_on_vm_start, proxy_validate_configuration, proxy_on_configure,
  proxy_on_tick, proxy_on_foreign_function, proxy_on_queue_ready, proxy_on_http_call_response,
  proxy_on_context_create, proxy_on_request_headers, proxy_on_log, proxy_on_done, proxy_on_delete,
} from "@gcoredev/proxy-wasm-sdk-as/assembly/exports";
