// ai-proxy: one OpenAI-compatible API (and Anthropic's Messages API) over every provider.
// Filter 4 of the chain (docs/architecture.md): picks the instance, translates the request and
// targets its cluster, translates the answer or SSE stream back, and writes the usage record.
// The files and their jobs: docs/architecture.md, "ai-proxy's files"; the callbacks are in
// context.ts, the root context (configuration, health probes) in root.ts.
//
// Envoy >= 1.35 with `allow_on_headers_stop_iteration: true` on this plugin: the request headers
// are held (StopIteration) while the body arrives, because the body decides the upstream path,
// authority and cluster. Without the knob Envoy would withhold the body from this filter.
export * from "../../lib/abi-exports";
export { proxy_on_request_body, proxy_on_response_headers, proxy_on_response_body } from "@gcoredev/proxy-wasm-sdk-as/assembly/exports";
import { registerRootContext } from "../../lib/sdk";
import { AiProxyRoot } from "./root";

registerRootContext((id: u32) => new AiProxyRoot(id), "ai-proxy");
