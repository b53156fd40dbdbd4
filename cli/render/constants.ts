// Paths, names and sizes the rendered files share.

/** Where docker-compose mounts build/ (the local gateway maps it back to build/). */
export const WASM_DIR = "/etc/sluice/build";
/** The CA bundle of the official Envoy image (Ubuntu's ca-certificates). */
export const CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";
/** Mock providers in docker compose: `scripts/mocks/cli.ts --ports`, one port per kind from 18080. */
export const MOCK_SERVICE = "mock";
export const MOCK_BASE_PORT = 18080;
export const MOCK_KEY = "sluice-mock-key";
export const MOCK_ORDER = ["openai", "azure-openai", "anthropic", "gemini", "deepseek", "mistral", "openai-compatible"];

/** Envoy's default per_connection_buffer_limit_bytes (listener and cluster), rendered explicitly. */
export const CONNECTION_BUFFER_LIMIT = 1024 * 1024;
/** ai-proxy's default max_request_body_bytes / max_response_body_bytes (assembly/filters/ai-proxy/config.ts). */
export const AI_PROXY_MAX_BODY = 10 * 1024 * 1024;
/** Room above the largest body a filter buffers, so the filter's own cap (an error in the client's shape) is met before Envoy's. */
export const BUFFER_HEADROOM = 1024 * 1024;

/**
 * The oldest Envoy the rendered files are for. 1.37.6 fixes the filter manager dropping body data
 * behind a filter that stopped on headers with allow_on_headers_stop_iteration and then buffered a
 * later frame (envoyproxy/envoy changelogs/1.37.6.yaml, bug_fixes, area http; runtime guard
 * envoy.reloadable_features.filter_manager_forward_added_data_on_continue). ai-router, ai-ratelimit
 * and ai-proxy all do exactly that. The fields it needs: failure_policy 1.33, allow_on_headers_stop_iteration
 * 1.35, the route's request_body_buffer_limit applied at route match 1.37 (cli/envoy-validate.ts).
 */
export const ENVOY_VERSION_FLOOR = "1.37.6";
export const ENVOY_VERSION_WHY = "1.37.6 stops the filter manager dropping request and response body data behind a filter that holds the headers with allow_on_headers_stop_iteration";
/** envoy.filters.http.wasm's configuration type. */
export const WASM_TYPE_URL = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
