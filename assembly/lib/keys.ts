// Filter-state keys shared by all Sluice filters (docs/architecture.md, "How filters talk").
// Stored by Envoy as wasm.<key>; the access log reads %FILTER_STATE(wasm.<key>:PLAIN)%.
export const CONSUMER = "sluice.consumer";
export const POOL = "sluice.pool";
export const ROUTE_RULE = "sluice.route_rule";
export const REQUEST_TYPE = "sluice.request_type";
export const REQUEST_MODEL = "sluice.request_model";
export const MODEL = "sluice.model";
export const PROVIDER = "sluice.provider";
/** The request under OpenTelemetry's GenAI conventions: gen_ai.operation.name and gen_ai.provider.name (ai-proxy genai-metrics.ts). */
export const GEN_AI_OPERATION = "sluice.gen_ai_operation";
export const GEN_AI_PROVIDER = "sluice.gen_ai_provider";
export const INSTANCE = "sluice.instance";
export const TTFT_MS = "sluice.ttft_ms";
export const PROMPT_TOKENS = "sluice.prompt_tokens";
export const COMPLETION_TOKENS = "sluice.completion_tokens";
export const TOTAL_TOKENS = "sluice.total_tokens";
export const CACHED_TOKENS = "sluice.cached_tokens";
export const REASONING_TOKENS = "sluice.reasoning_tokens";
export const USAGE_SOURCE = "sluice.usage_source";
/** Set by ai-proxy with the usage record: its cost in micro-units of the configured currency (absent: no price). */
export const COST = "sluice.cost";
export const RATELIMIT_RULE = "sluice.ratelimit_rule";
// Written by ai-router beside POOL and ROUTE_RULE.
/** The model the matched rule asks for instead of the client's (absent: keep the client's). */
export const ROUTE_MODEL = "sluice.route_model";
/** The classifier's task type of the prompt: code, math, reasoning, summarize, extract, translate, chat. */
export const TASK_TYPE = "sluice.task_type";
/** The classifier's complexity score of the prompt, 0.00 to 1.00. */
export const COMPLEXITY = "sluice.complexity";

// Set by ai-ratelimit on admission: completion tokens a stream may still produce (remaining
// budget + margin). ai-proxy ends a stream cleanly (finish_reason length) once it is exceeded.
export const STREAM_BUDGET = "sluice.stream_budget";
// Set by ai-proxy: how many instances a request tried (1 without fallback).
export const ATTEMPTS = "sluice.attempts";
// Set by ai-proxy after a fallback: the instances that failed first, "name:cause,..." (the instance
// that answered is INSTANCE; Envoy's response_code_details still names the first failure).
export const FALLBACK_FROM = "sluice.fallback_from";
// Set by ai-proxy when it ended a stream early on the consumer's budget.
export const STREAM_CUT = "sluice.stream_cut";
// Set by ai-ratelimit on admission: the prompt-token estimate it reserved (the global rate limit
// service's hits_addend at request time).
export const RATELIMIT_PROMPT_ESTIMATE = "sluice.ratelimit_prompt_estimate";
// Set by identity (assembly/filters/identity): the consumer's groups, comma-separated (bounded by
// its max_groups), and where the consumer came from: jwt, mtls, metadata, header, key-auth or anonymous.
export const GROUPS = "sluice.groups";
export const IDENTITY_SOURCE = "sluice.identity_source";
// Set by ai-guard (assembly/filters/ai-guard) on every request it reads: its verdict (allow, mask or
// block) and the detectors that found something, comma-separated (never what they found).
export const GUARD_VERDICT = "sluice.guard_verdict";
export const GUARD_CATEGORIES = "sluice.guard_categories";
// Set by ai-guard on every answer it checks: allow, mask, restore or block, and the detectors that
// found something in the answer.
export const GUARD_RESPONSE_VERDICT = "sluice.guard_response_verdict";
export const GUARD_RESPONSE_CATEGORIES = "sluice.guard_response_categories";
// Set by key-auth when the request's key is a virtual key (docs/spend.md): the key's id (a short,
// stable name from the keys file, never the key itself) and the team that owns it. ai-ratelimit's
// key parts and ai-proxy's cost counter read them.
export const KEY_ID = "sluice.key_id";
export const TEAM = "sluice.team";
// Set by key-auth for a virtual key with scopes: the models (patterns, exact or prefix*) and the pools
// it may use, comma-separated; absent: no restriction. ai-proxy refuses anything else with 403
// model_not_allowed and lists only those models on GET /v1/models.
export const KEY_MODELS = "sluice.key_models";
export const KEY_POOLS = "sluice.key_pools";
// Set by mcp (assembly/filters/mcp) on every MCP request: the JSON-RPC method, the upstream server
// that answered (absent when the gateway answered itself, e.g. a merged tools/list), the tool's
// name as the client sees it (server__tool), and how the call ended (ok, error, denied, limited,
// upstream_error, invalid). Never arguments or results.
export const MCP_METHOD = "sluice.mcp_method";
export const MCP_SERVER = "sluice.mcp_server";
export const MCP_TOOL = "sluice.mcp_tool";
export const MCP_OUTCOME = "sluice.mcp_outcome";
// Set by a2a (assembly/filters/a2a) on every A2A request: the agent's name from gateway.yaml and the
// JSON-RPC method (one of A2A's, or "card" for an agent card).
export const A2A_AGENT = "sluice.a2a_agent";
export const A2A_METHOD = "sluice.a2a_method";
// Set by mcp and a2a beside their method: the request's JSON-RPC id as the client wrote it (JSON
// text: a quoted string or a number), so a later filter's refusal (ai-ratelimit's 429, ai-guard's
// block) answers as a JSON-RPC error with the same id.
export const JSONRPC_ID = "sluice.jsonrpc_id";
// Set by ai-cache (assembly/filters/ai-cache, docs/cache.md) on every chat request it reads: hit, miss
// or bypass; on a hit, what the provider was spared (the tokens and the cost of the answer when it
// was produced) and, for a semantic hit, the prompts' cosine similarity.
export const CACHE = "sluice.cache";
export const CACHE_SAVED_TOKENS = "sluice.cache_saved_tokens";
export const CACHE_SAVED_COST = "sluice.cache_saved_cost";
export const CACHE_SIMILARITY = "sluice.cache_similarity";
// Set by ai-cache on a miss it may keep: the largest answer it keeps, in bytes. ai-proxy then writes
// the answer (OpenAI's chat.completion JSON, with the provider's usage) to CACHE_ANSWER when it ends
// complete, and ai-cache stores it when the response ends. Neither is in the access log.
export const CACHE_CAPTURE = "sluice.cache_capture";
export const CACHE_ANSWER = "sluice.cache_answer";
