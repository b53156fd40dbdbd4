// The access log's JSON format and the stats tags that turn Sluice's `;key=value` metric names into labels.
/** The filter-state keys the access log prints (assembly/lib/keys.ts), in log order. */
export const LOG_KEYS = [
  "request_type", "consumer",
  // identity: jwt, mtls, metadata, header, key-auth or anonymous; the consumer's groups
  "identity_source", "groups",
  // key-auth: a virtual key's id and its team (docs/spend.md)
  "key_id", "team",
  // ai-router
  "pool", "route_rule", "route_model", "task_type", "complexity",
  // ai-guard: its verdict and the detectors that found something (never what they found)
  "guard_verdict", "guard_categories", "guard_response_verdict", "guard_response_categories",
  // ai-proxy
  "provider", "instance", "attempts",
  // ai-proxy: the request under OpenTelemetry's GenAI conventions (gen_ai.operation.name, gen_ai.provider.name)
  "gen_ai_operation", "gen_ai_provider", "fallback_from", "model", "request_model", "ttft_ms",
  "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens", "usage_source", "cost", "stream_cut",
  // ai-cache (docs/cache.md): hit, miss or bypass; what a hit spared the provider; a semantic hit's similarity
  "cache", "cache_saved_tokens", "cache_saved_cost", "cache_similarity",
  // ai-ratelimit
  "ratelimit_rule",
  // mcp (docs/mcp.md): the JSON-RPC method, the server, the tool, how the call ended; and the request's JSON-RPC id
  "mcp_method", "mcp_server", "mcp_tool", "mcp_outcome", "jsonrpc_id",
  // a2a (docs/a2a.md): the agent and the JSON-RPC method (or "card")
  "a2a_agent", "a2a_method",
] as const;

/**
 * Labels Sluice's metric names carry as `;key=value`: ai-proxy (metrics.ts: provider, model,
 * consumer, team, key, request_type, status, instance, cause), ai-router and ai-ratelimit (rule),
 * ai-guard (detector, action, verdict, outcome), mcp (method, server, tool, reason), a key pool's
 * upstream_key (a key's short id, never the key); pool is kept for
 * dashboards that group by it.
 */
export const METRIC_TAGS = ["provider", "model", "consumer", "request_type", "status", "rule", "instance", "cause", "pool", "detector", "action", "verdict", "outcome", "team", "key", "method", "server", "tool", "reason", "upstream_key"] as const;

export function accessLogFormat(): Record<string, string> {
  const f: Record<string, string> = {
    start_time: "%START_TIME%",
    method: "%REQ(:METHOD)%",
    path: "%REQ(:PATH)%", // as the filters left it (key-auth removes a query key); never a client's x-envoy-original-path
    request_id: "%REQ(X-REQUEST-ID)%",
    status: "%RESPONSE_CODE%",
    response_code_details: "%RESPONSE_CODE_DETAILS%",
    duration: "%DURATION%",
    // Envoy's own reasons for a failure (UF refused/failed connect, UT timeout, UC/UR reset, ...; "-" for none).
    response_flags: "%RESPONSE_FLAGS%",
    upstream_host: "%UPSTREAM_HOST%", // the provider address Envoy connected to (or tried)
    upstream_transport_failure_reason: "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
    // The provider's id for the request, to quote to the provider: OpenAI's (and Azure OpenAI's)
    // x-request-id, Anthropic's request-id (Envoy takes one alternative: %RESP(X?Y)%).
    provider_request_id: "%RESP(X-REQUEST-ID?REQUEST-ID)%",
    bytes_received: "%BYTES_RECEIVED%",
    bytes_sent: "%BYTES_SENT%",
  };
  for (const k of LOG_KEYS) f[k] = filterStateField(k);
  return f;
}

/** The substitution-format command that prints a Sluice filter-state key as its plain bytes. */
export function filterStateField(key: string): string {
  return `%FILTER_STATE(wasm.sluice.${key}:PLAIN)%`;
}

export function statsTags(): { tag_name: string; regex: string }[] {
  // First capture group: removed from the name; second: the tag value (envoy.config.metrics.v3.TagSpecifier).
  return METRIC_TAGS.map((t) => ({ tag_name: t, regex: `(;${t}=([^;]*))` }));
}
