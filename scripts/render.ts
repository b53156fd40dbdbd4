// `npm run render`: gateway.yaml -> envoy/envoy.yaml, envoy/envoy.mock.yaml and envoy/istio/*.yaml.
//   tsx scripts/render.ts [--config gateway.yaml] [--out envoy]
// Nothing is written unless every file renders: each goes to a temporary file first and is renamed
// into place only when all are ready.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { stringify } from "yaml";
import { GatewayConfigError, GatewayConfigReadError, loadGatewayConfig, type DistributedRule, type GatewayConfig, type Instance } from "./gateway-config.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Where docker-compose mounts build/ (the local gateway maps it back to build/). */
export const WASM_DIR = "/etc/sluice/build";
/** The CA bundle of the official Envoy image (Ubuntu's ca-certificates). */
export const CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";
/** Mock providers in docker compose: `scripts/mocks/cli.ts --ports`, one port per kind from 18080. */
export const MOCK_SERVICE = "mock";
export const MOCK_BASE_PORT = 18080;
export const MOCK_KEY = "sluice-mock-key";
const MOCK_ORDER = ["openai", "azure-openai", "anthropic", "gemini", "deepseek", "mistral", "openai-compatible"];

/** The filter-state keys the access log prints (assembly/lib/keys.ts), in log order. */
export const LOG_KEYS = [
  "request_type", "consumer",
  // ai-router
  "pool", "route_rule", "route_model", "task_type", "complexity",
  // ai-proxy
  "provider", "instance", "attempts", "fallback_from", "model", "request_model", "ttft_ms",
  "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens", "usage_source", "stream_cut",
  // ai-ratelimit
  "ratelimit_rule",
] as const;

/**
 * Labels Sluice's metric names carry as `;key=value`: ai-proxy (metrics.ts: provider, model,
 * consumer, request_type, status, instance, cause), ai-router and ai-ratelimit (rule); pool is kept
 * for dashboards that group by it.
 */
export const METRIC_TAGS = ["provider", "model", "consumer", "request_type", "status", "rule", "instance", "cause", "pool"] as const;

/** Envoy's global rate limit: the cluster of the rate limit service (gRPC over HTTP/2). */
export const RATELIMIT_CLUSTER = "sluice-ratelimit";
/** Compose service names and ports of envoyproxy/ratelimit (gRPC 8081) for envoy.mock.yaml. */
export const RATELIMIT_SERVICE = "ratelimit";
export const RATELIMIT_PORT = 8081;
const RATELIMIT_FILTER = "envoy.filters.http.ratelimit";

export function accessLogFormat(): Record<string, string> {
  const f: Record<string, string> = {
    start_time: "%START_TIME%",
    method: "%REQ(:METHOD)%",
    path: "%REQ(:PATH)%", // as the filters left it (key-auth removes a query key); never a client's x-envoy-original-path
    request_id: "%REQ(X-REQUEST-ID)%",
    status: "%RESPONSE_CODE%",
    response_code_details: "%RESPONSE_CODE_DETAILS%",
    duration: "%DURATION%",
  };
  for (const k of LOG_KEYS) f[k] = `%FILTER_STATE(wasm.sluice.${k}:PLAIN)%`;
  return f;
}

export function statsTags(): { tag_name: string; regex: string }[] {
  // First capture group: removed from the name; second: the tag value (envoy.config.metrics.v3.TagSpecifier).
  return METRIC_TAGS.map((t) => ({ tag_name: t, regex: `(;${t}=([^;]*))` }));
}

/** Envoy's default per_connection_buffer_limit_bytes (listener and cluster), rendered explicitly. */
export const CONNECTION_BUFFER_LIMIT = 1024 * 1024;
/** ai-proxy's default max_request_body_bytes / max_response_body_bytes (assembly/filters/ai-proxy/config.ts). */
export const AI_PROXY_MAX_BODY = 10 * 1024 * 1024;
/** Room above the largest body a filter buffers, so the filter's own cap (an error in the client's shape) is met before Envoy's. */
export const BUFFER_HEADROOM = 1024 * 1024;

/**
 * The route's request_body_buffer_limit: Envoy raises the stream's buffer limit (what a buffering
 * filter may hold, request and response alike: one FilterManager buffer_limit_, setBufferLimit) to
 * it. The field exists since Envoy 1.36, but only from 1.37 is it applied when the route is matched
 * (changelogs/1.37.0.yaml, envoyproxy/envoy#42607); 1.36 applies it when the router filter is reached,
 * after Sluice's filters have held the headers and buffered the body under the listener's 1 MiB. It must fit
 * the largest body ai-proxy buffers (max_request_body_bytes, max_response_body_bytes; 10 MiB each by
 * default), plus headroom: Envoy's wasm filter adds a chunk to the filter manager's buffer before the
 * filter sees it, so with equal limits Envoy's plain 413 / 500 would answer before ai-proxy's own.
 */
export function streamBufferLimit(cfg: GatewayConfig): number {
  const a = cfg.aiProxy;
  return Math.max(a.maxRequestBodyBytes ?? AI_PROXY_MAX_BODY, a.maxResponseBodyBytes ?? AI_PROXY_MAX_BODY) + BUFFER_HEADROOM;
}

/** An error body in each client API's shape for Envoy's own local replies (local_reply_config). */
const ANTHROPIC_ERROR = { type: "error", error: { type: "api_error", message: "%LOCAL_REPLY_BODY%" } };
const OPENAI_ERROR = (code: string) => ({ error: { message: "%LOCAL_REPLY_BODY%", type: "api_error", code } });

/**
 * The HCM's local_reply_config: Envoy's own answers that no filter can shape, in the client's API
 * shape (Anthropic for an Anthropic client, OpenAI otherwise). Envoy applies it to every local reply, the
 * filters' included, so each mapper matches only what Envoy itself sends:
 * - 503 with response flag UC or UR: the provider's connection ended in the middle of an answer a
 *   filter still held (router onUpstreamReset; sendLocalReply answers directly, past the filters).
 *   Before any answer the same reply goes through ai-proxy, which keeps its own wording (it reads
 *   response.code_details) and may fall back. Rewritten to 502.
 * - 500: a buffered answer past the stream's buffer limit (responseDataTooLarge). Rewritten to 502.
 * - 504 with response flag UT: the route timeout (router onResponseTimeout), directly once a filter
 *   holds the answer; before any answer ai-proxy sees it and keeps its own wording. Stays 504.
 */
export function localReplyConfig(): Record<string, unknown> {
  const status = (code: number, key: string) => ({ status_code_filter: { comparison: { op: "EQ", value: { default_value: code, runtime_key: `sluice.local_reply.${key}` } } } });
  // An Anthropic client: the mappers see the request headers as the filters left them, and ai-proxy
  // rewrites :path to the provider's; anthropic-version (required by Anthropic's API, sent by its
  // SDKs) stays, as does the path when the provider speaks Anthropic too.
  const anthropicPath = {
    or_filter: {
      filters: [
        { header_filter: { header: { name: ":path", string_match: { prefix: "/v1/messages" } } } },
        { header_filter: { header: { name: "anthropic-version", present_match: true } } },
      ],
    },
  };
  const cases = [
    {
      when: [status(503, "upstream_reset"), { response_flag_filter: { flags: ["UC", "UR"] } }],
      message: "The provider closed the connection before its answer was complete.",
      code: "upstream_reset",
      status: 502,
    },
    { when: [status(500, "response_too_large")], message: "The provider's answer is larger than the gateway's buffer limit.", code: "upstream_response_too_large", status: 502 },
    {
      when: [status(504, "upstream_timeout"), { response_flag_filter: { flags: ["UT"] } }],
      message: "The provider did not answer in time.",
      code: "upstream_timeout",
      status: 504,
    },
  ];
  const mappers: unknown[] = [];
  for (const c of cases) {
    mappers.push({
      filter: { and_filter: { filters: [...c.when, anthropicPath] } },
      status_code: c.status,
      body: { inline_string: c.message },
      body_format_override: { json_format: ANTHROPIC_ERROR },
    });
    mappers.push({
      filter: c.when.length > 1 ? { and_filter: { filters: c.when } } : c.when[0],
      status_code: c.status,
      body: { inline_string: c.message },
      body_format_override: { json_format: OPENAI_ERROR(c.code) },
    });
  }
  return { mappers };
}

function keyAuthJson(cfg: GatewayConfig): Record<string, unknown> {
  const k = cfg.keyAuth;
  return {
    consumers: cfg.consumers,
    ...(k.header !== undefined ? { header: k.header } : {}),
    ...(k.query !== undefined ? { query: k.query } : {}),
    ...(k.hideCredentials !== undefined ? { hide_credentials: k.hideCredentials } : {}),
    ...(k.anonymous !== undefined ? { anonymous: k.anonymous } : {}),
    ...(k.realm !== undefined ? { realm: k.realm } : {}),
  };
}

function instanceJson(i: Instance, credential: "env" | "mock", cluster?: string): Record<string, unknown> {
  const out: Record<string, unknown> = { name: i.name, provider: i.provider };
  if (credential === "mock" && (i.apiKeyEnv || i.apiKey)) out.api_key = MOCK_KEY;
  else if (i.apiKeyEnv) out.api_key_env = i.apiKeyEnv;
  else if (i.apiKey) out.api_key = i.apiKey; // written inline only because the user wrote it inline
  out.endpoint = i.endpoint;
  if (cluster) out.cluster = cluster;
  if (i.models) out.models = i.models;
  if (i.model) out.model = i.model;
  if (i.modelMap) out.model_map = i.modelMap;
  if (i.options) out.options = i.options;
  if (i.maxTokens !== undefined) out.max_tokens = i.maxTokens;
  if (i.apiVersion) out.api_version = i.apiVersion;
  if (i.deployment) out.deployment = i.deployment;
  if (i.headers) out.headers = i.headers;
  if (i.weight !== undefined) out.weight = i.weight;
  if (i.priority !== undefined) out.priority = i.priority;
  if (i.price) out.price = i.price;
  if (i.redactUpstreamErrors !== undefined) out.redact_upstream_errors = i.redactUpstreamErrors;
  return out;
}

export function aiProxyJson(cfg: GatewayConfig, credential: "env" | "mock", clusterOf?: (i: Instance) => string): Record<string, unknown> {
  const a = cfg.aiProxy;
  return {
    instances: cfg.providers.map((i) => instanceJson(i, credential, clusterOf?.(i))),
    ...(cfg.pools.length ? { pools: cfg.pools } : {}),
    ...(a.defaultPool !== undefined ? { default_pool: a.defaultPool } : {}),
    ...(a.health !== undefined ? { health: a.health } : {}),
    ...(a.fallback !== undefined ? { fallback: a.fallback } : {}),
    ...(a.instanceHeader !== undefined ? { instance_header: a.instanceHeader } : {}),
    ...(a.requestLimits !== undefined ? { request_limits: a.requestLimits } : {}),
    ...(a.maxJsonValues !== undefined ? { max_json_values: a.maxJsonValues } : {}),
    ...(a.apiPrefixes !== undefined ? { api_prefixes: a.apiPrefixes } : {}),
    cluster_header: a.clusterHeader,
    ...(a.maxRequestBodyBytes !== undefined ? { max_request_body_bytes: a.maxRequestBodyBytes } : {}),
    ...(a.maxResponseBodyBytes !== undefined ? { max_response_body_bytes: a.maxResponseBodyBytes } : {}),
    ...(a.maxStreamEventBytes !== undefined ? { max_stream_event_bytes: a.maxStreamEventBytes } : {}),
  };
}

/** The host_env_keys ai-proxy's VM needs: every api_key_env, once. */
export function envKeys(cfg: GatewayConfig): string[] {
  return [...new Set(cfg.providers.map((i) => i.apiKeyEnv).filter((k): k is string => !!k))];
}

/** The host_env_keys ai-router's VM needs: its embeddings key variable, if any. */
export function routerEnvKeys(cfg: GatewayConfig): string[] {
  const k = cfg.aiRouter?.embeddings?.apiKeyEnv;
  return k ? [k] : [];
}

/**
 * ai-router's JSON configuration. Its embeddings (only when a rule is semantic) go to the cluster of
 * their providers[] entry or to the sluice-embeddings cluster; `clusterOf` names it for Istio.
 */
export function aiRouterJson(cfg: GatewayConfig, credential: "env" | "mock", clusterOf?: (i: Instance) => string): Record<string, unknown> {
  const r = cfg.aiRouter!;
  const out: Record<string, unknown> = { ...r.json };
  const e = r.embeddings;
  if (e) {
    const emb: Record<string, unknown> = {
      cluster: clusterOf?.(e.target) ?? e.target.name,
      model: e.model,
      path: e.path,
      authority: e.target.url.host,
    };
    if (credential === "mock" && (e.apiKeyEnv || e.apiKey)) emb.api_key = MOCK_KEY;
    else if (e.apiKeyEnv) emb.api_key_env = e.apiKeyEnv;
    else if (e.apiKey) emb.api_key = e.apiKey;
    Object.assign(emb, e.options);
    out.embeddings = emb;
  }
  return out;
}

/** ai-ratelimit's JSON configuration. */
export function aiRatelimitJson(cfg: GatewayConfig): Record<string, unknown> {
  return { ...cfg.aiRatelimit!.json };
}

// ------------------------------------------------------------------- distributed rate limiting

const PROMPT_ESTIMATE = "%FILTER_STATE(wasm.sluice.ratelimit_prompt_estimate:PLAIN)%";
const COMPLETION_TOKENS = "%FILTER_STATE(wasm.sluice.completion_tokens:PLAIN)%";
/** Filter-state key of each key part, as Envoy's CEL sees it (filter state `wasm.<key>`). */
const PART_STATE: Record<string, string> = { consumer: "wasm.sluice.consumer", pool: "wasm.sluice.pool", model: "wasm.sluice.request_model" };

/** A single-quoted CEL string literal (CEL has JSON's escapes, and \' inside single quotes). */
function celString(s: string): string {
  return `'${JSON.stringify(s).slice(1, -1).replace(/\\"/g, '"').replace(/'/g, "\\'")}'`;
}

/** A CEL expression for the value of a key part. Filter state is bytes to CEL: string() it to compare. */
function celValue(part: string, forComparison: boolean): string {
  if (part.startsWith("header:")) return `request.headers[${celString(part.slice(7))}]`;
  const v = `filter_state[${celString(PART_STATE[part])}]`;
  return forComparison ? `string(${v})` : v;
}

function exprAction(key: string, text: string) {
  return {
    extension: {
      name: "envoy.rate_limit_descriptors.expr",
      typed_config: { "@type": "type.googleapis.com/envoy.extensions.rate_limit_descriptors.expr.v3.Descriptor", descriptor_key: key, text },
    },
  };
}

/**
 * The descriptor of a rule: ("rule", name), then ("when", "true"|"false") when the rule has
 * conditions, then one entry per key part. A part the request lacks (a CEL error, an absent header)
 * drops the whole descriptor, as the local filter skips a rule whose part is missing.
 */
export function rateLimitActions(rule: DistributedRule): unknown[] {
  const actions: unknown[] = [{ generic_key: { descriptor_key: "rule", descriptor_value: rule.name } }];
  if (rule.when.length) {
    const terms = rule.when.map(({ part, patterns }) => {
      const v = celValue(part, true);
      const alts = patterns.map((p) => (p.endsWith("*") ? `${v}.startsWith(${celString(p.slice(0, -1))})` : `${v} == ${celString(p)}`));
      return alts.length === 1 ? alts[0] : `(${alts.join(" || ")})`;
    });
    actions.push(exprAction("when", terms.join(" && ")));
  }
  for (const part of rule.parts) {
    if (part.startsWith("header:")) actions.push({ request_headers: { header_name: part.slice(7), descriptor_key: part } });
    else actions.push(exprAction(part, celValue(part, false)));
  }
  return actions;
}

/** The RateLimitPerRoute.rate_limits of every distributed rule: a request-time and a stream-end entry. */
export function routeRateLimits(rules: DistributedRule[]): unknown[] {
  const out: unknown[] = [];
  for (const rule of rules) {
    const actions = rateLimitActions(rule);
    // At request time: the prompt (estimated), spent once the request is sent; a completion-only
    // rule checks without adding.
    out.push({ actions, hits_addend: rule.strategy === "completion_tokens" ? { number: 0 } : { format: PROMPT_ESTIMATE } });
    // When the stream ends: the completion tokens of ai-proxy's usage record.
    if (rule.strategy !== "prompt_tokens") out.push({ actions, apply_on_stream_done: true, hits_addend: { format: COMPLETION_TOKENS } });
  }
  return out;
}

function rateLimitFilter(cluster: string, d: NonNullable<NonNullable<GatewayConfig["aiRatelimit"]>["distributed"]>) {
  return {
    name: RATELIMIT_FILTER,
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit",
      domain: d.domain,
      // The service is a cross-instance ceiling: if it is down or slow, the local limit still holds.
      failure_mode_deny: false,
      timeout: d.timeout,
      rate_limited_status: { code: "TooManyRequests" },
      rate_limit_service: { transport_api_version: "V3", grpc_service: { envoy_grpc: { cluster_name: cluster } } },
    },
  };
}

function rateLimitPerRoute(rules: DistributedRule[]) {
  return {
    [RATELIMIT_FILTER]: {
      "@type": "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimitPerRoute",
      rate_limits: routeRateLimits(rules),
    },
  };
}

/** envoyproxy/ratelimit's configuration for the distributed rules (envoy/ratelimit/config.yaml). */
export function rateLimitServiceConfig(cfg: GatewayConfig): Record<string, unknown> {
  const d = cfg.aiRatelimit?.distributed;
  if (!d) return { domain: "sluice", descriptors: [] };
  return {
    domain: d.domain,
    descriptors: d.rules.map((rule) => {
      const limit = { rate_limit: { unit: rule.unit, requests_per_unit: rule.limit } };
      // Innermost first: the key parts (no value: one counter per value), then "when" = "true".
      let inner: Record<string, unknown> = limit;
      for (const part of [...rule.parts].reverse()) inner = { descriptors: [{ key: part, ...inner }] };
      if (rule.when.length) inner = { descriptors: [{ key: "when", value: "true", ...inner }] };
      return { key: "rule", value: rule.name, ...inner };
    }),
  };
}

function wasmFilter(name: string, configuration: unknown, extra: { env?: string[]; allowOnHeadersStopIteration?: boolean } = {}) {
  const vmConfig: Record<string, unknown> = {
    vm_id: name,
    runtime: "envoy.wasm.runtime.v8",
    code: { local: { filename: `${WASM_DIR}/${name}.wasm` } },
  };
  if (extra.env?.length) vmConfig.environment_variables = { host_env_keys: extra.env };
  const config: Record<string, unknown> = {
    name,
    root_id: name,
    vm_config: vmConfig,
    configuration: { "@type": "type.googleapis.com/google.protobuf.StringValue", value: JSON.stringify(configuration) },
    fail_open: false,
  };
  // Envoy >= 1.35 (envoyproxy/envoy#40213): lets ai-router, ai-ratelimit and ai-proxy hold the headers
  // while they read the body (without it Envoy withholds the body from a filter that stopped on headers).
  if (extra.allowOnHeadersStopIteration) config.allow_on_headers_stop_iteration = true;
  return {
    name: `sluice.${name.replace(/-/g, "_")}`,
    typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm", config },
  };
}

/**
 * The route's timeouts (gateway.yaml `timeouts`), each its own Envoy setting, as Envoy's router applies
 * them (source/common/router/router.cc, upstream_request.cc):
 * - timeout: from the end of the request to the end of the response, streams included, then 504 or a
 *   reset (details upstream_response_timeout). Envoy's default is 15s, so "0s" (off) is written out.
 * - retry_policy.per_try_timeout: armed once the request is sent on a connection
 *   (UpstreamRequest::setupPerTryTimeout); UpstreamRequest::onPerTryTimeout ignores it once the
 *   response has started downstream, so it bounds the wait for the first byte (response headers) and
 *   never a stream: 504, details upstream_per_try_timeout. num_retries 0: ai-proxy does the fallback.
 *   Under Istio only per_try_timeout is merged (the VirtualService keeps its own retries).
 * - idle_timeout: the stream's longest silence in either direction (HCM stream idle timer, per route):
 *   408 before the response starts, a reset after.
 * The connect timeout is the cluster's connect_timeout (TCP and TLS handshake).
 */
function routeAction(cfg: GatewayConfig, opts: { istio?: boolean } = {}): Record<string, unknown> {
  const t = cfg.timeouts;
  const perTry = t.firstByte === "0s" ? null : opts.istio ? { per_try_timeout: t.firstByte } : { num_retries: 0, per_try_timeout: t.firstByte };
  return { cluster_header: cfg.aiProxy.clusterHeader, timeout: t.total, idle_timeout: t.idle, ...(perTry ? { retry_policy: perTry } : {}) };
}

function isIp(host: string): boolean {
  return /^[0-9.]+$/.test(host) || host.includes(":");
}

function cluster(cfg: GatewayConfig, i: Instance, target: { host: string; port: number; tls: boolean }) {
  const c: Record<string, unknown> = {
    name: i.name,
    type: isIp(target.host) ? "STATIC" : target.tls ? "LOGICAL_DNS" : "STRICT_DNS",
    connect_timeout: cfg.timeouts.connect,
    // The upstream connection's buffers (flow control toward the provider); Envoy's default, stated.
    per_connection_buffer_limit_bytes: CONNECTION_BUFFER_LIMIT,
  };
  if (!isIp(target.host)) c.dns_lookup_family = "V4_PREFERRED";
  c.load_assignment = {
    cluster_name: i.name,
    endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: target.host, port_value: target.port } }, hostname: target.host } }] }],
  };
  if (target.tls) {
    c.transport_socket = {
      name: "envoy.transport_sockets.tls",
      typed_config: {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        sni: target.host,
        common_tls_context: {
          validation_context: {
            trusted_ca: { filename: CA_BUNDLE },
            match_typed_subject_alt_names: [{ san_type: "DNS", matcher: { exact: target.host } }],
          },
        },
      },
    };
  }
  const http2 = target.tls && i.http2;
  c.typed_extension_protocol_options = {
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
      "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
      common_http_protocol_options: { idle_timeout: "60s" },
      // auto_config: h2 when the provider offers it by ALPN, else HTTP/1.1.
      ...(http2 ? { auto_config: { http_protocol_options: {}, http2_protocol_options: {} } } : { explicit_http_config: { http_protocol_options: {} } }),
    },
  };
  const hc = i.healthCheck;
  if (hc.type !== "none") {
    c.health_checks = [
      {
        timeout: "3s",
        interval: hc.interval,
        no_traffic_interval: "60s",
        unhealthy_threshold: 3,
        healthy_threshold: 1,
        ...(hc.type === "http" ? { http_health_check: { path: hc.path, host: target.host } } : { tcp_health_check: {} }),
      },
    ];
  }
  c.outlier_detection = {
    consecutive_5xx: 5,
    consecutive_gateway_failure: 3,
    interval: "10s",
    base_ejection_time: "30s",
    max_ejection_percent: 100,
  };
  return c;
}

function realTarget(i: Instance) {
  const tls = i.url.protocol === "https:";
  return { host: i.url.hostname.replace(/^\[|\]$/g, ""), port: Number(i.url.port || (tls ? 443 : 80)), tls };
}

function mockTarget(i: Instance) {
  return { host: MOCK_SERVICE, port: MOCK_BASE_PORT + MOCK_ORDER.indexOf(i.provider), tls: false };
}

export interface EnvoyRenderOptions {
  /** Point every cluster at the docker-compose mock service and use a dummy inline key. */
  mock?: boolean;
}

export function renderEnvoy(cfg: GatewayConfig, opts: EnvoyRenderOptions = {}): Record<string, unknown> {
  const mock = !!opts.mock;
  const credential = mock ? "mock" : "env";
  // ARCHITECTURE.md's order: key-auth, ai-router, ai-ratelimit, ai-proxy, (the global rate limit), router.
  const httpFilters: unknown[] = [];
  if (cfg.keyAuth.enabled) httpFilters.push(wasmFilter("key-auth", keyAuthJson(cfg)));
  if (cfg.aiRouter) httpFilters.push(wasmFilter("ai-router", aiRouterJson(cfg, credential), { env: mock ? [] : routerEnvKeys(cfg), allowOnHeadersStopIteration: true }));
  if (cfg.aiRatelimit) httpFilters.push(wasmFilter("ai-ratelimit", aiRatelimitJson(cfg), { allowOnHeadersStopIteration: true }));
  httpFilters.push(wasmFilter("ai-proxy", aiProxyJson(cfg, credential), { env: mock ? [] : envKeys(cfg), allowOnHeadersStopIteration: true }));
  const distributed = cfg.aiRatelimit?.distributed ?? null;
  // After ai-proxy: its request-time check runs once filter state is complete (consumer, pool, model,
  // prompt estimate), and only for requests that really go upstream.
  if (distributed) httpFilters.push(rateLimitFilter(RATELIMIT_CLUSTER, distributed));
  httpFilters.push({ name: "envoy.filters.http.router", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } });

  const clusters = cfg.providers.map((i) => cluster(cfg, i, mock ? mockTarget(i) : realTarget(i)));
  const emb = cfg.aiRouter?.embeddings;
  if (emb?.dedicated) clusters.push(cluster(cfg, emb.target, mock ? mockTarget(emb.target) : realTarget(emb.target)));
  if (distributed) clusters.push(rateLimitCluster(cfg, mock ? { host: RATELIMIT_SERVICE, port: RATELIMIT_PORT } : { host: distributed.address, port: distributed.port }));

  const admin = mock ? { address: "0.0.0.0", port: cfg.admin.port } : cfg.admin;
  return {
    admin: { address: { socket_address: { address: admin.address, port_value: admin.port } } },
    stats_config: { stats_tags: statsTags() },
    static_resources: {
      listeners: [
        {
          name: "sluice",
          address: { socket_address: { address: cfg.listener.address, port_value: cfg.listener.port } },
          // The client connection's buffers: above this Envoy stops reading the provider until the
          // client has read half of it (flow control). Envoy's default, stated.
          per_connection_buffer_limit_bytes: CONNECTION_BUFFER_LIMIT,
          filter_chains: [
            {
              filters: [
                {
                  name: "envoy.filters.network.http_connection_manager",
                  typed_config: {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    stat_prefix: "sluice",
                    codec_type: "AUTO",
                    local_reply_config: localReplyConfig(),
                    access_log: [
                      {
                        name: "envoy.access_loggers.file",
                        typed_config: {
                          "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                          path: cfg.accessLog.path,
                          log_format: { json_format: accessLogFormat() },
                        },
                      },
                    ],
                    route_config: {
                      name: "sluice",
                      virtual_hosts: [
                        {
                          name: "sluice",
                          domains: ["*"],
                          routes: [
                            {
                              name: "sluice",
                              match: { prefix: "/" },
                              // What a buffering filter may hold; see streamBufferLimit.
                              request_body_buffer_limit: streamBufferLimit(cfg),
                              // ai-proxy names the instance's cluster in this header and clears the route cache.
                              route: routeAction(cfg),
                              ...(distributed ? { typed_per_filter_config: rateLimitPerRoute(distributed.rules) } : {}),
                            },
                          ],
                        },
                      ],
                    },
                    http_filters: httpFilters,
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters,
    },
  };
}

/** The rate limit service: gRPC, so HTTP/2 (prior knowledge, plain text, as envoyproxy/ratelimit serves it). */
function rateLimitCluster(cfg: GatewayConfig, target: { host: string; port: number }) {
  return {
    name: RATELIMIT_CLUSTER,
    type: isIp(target.host) ? "STATIC" : "STRICT_DNS",
    connect_timeout: cfg.timeouts.connect,
    ...(isIp(target.host) ? {} : { dns_lookup_family: "V4_PREFERRED" }),
    load_assignment: {
      cluster_name: RATELIMIT_CLUSTER,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: target.host, port_value: target.port } } } }] }],
    },
    typed_extension_protocol_options: {
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        explicit_http_config: { http2_protocol_options: {} },
      },
    },
  };
}

// ------------------------------------------------------------------------------------------ Istio

const ISTIO_NAMESPACE = "istio-system";
const ISTIO_SELECTOR = { istio: "ingressgateway" };

/** Istio's outbound cluster for a ServiceEntry host: outbound|<port>||<host>. */
export function istioCluster(i: Instance): string {
  const t = realTarget(i);
  return `outbound|${t.port}||${t.host}`;
}

/** Istio's WasmPlugin spec for one of the filters that hold the request headers. */
function istioWasmPlugin(name: string, priority: number, env: string[], pluginConfig: unknown) {
  return {
    apiVersion: "extensions.istio.io/v1alpha1",
    kind: "WasmPlugin",
    metadata: { name: `sluice-${name}`, namespace: ISTIO_NAMESPACE },
    spec: {
      selector: { matchLabels: ISTIO_SELECTOR },
      url: `file://${WASM_DIR}/${name}.wasm`,
      pluginName: name,
      phase: "UNSPECIFIED_PHASE",
      priority,
      failStrategy: "FAIL_CLOSE",
      type: "HTTP",
      ...(env.length ? { vmConfig: { env: env.map((n) => ({ name: n, valueFrom: "HOST" })) } } : {}),
      pluginConfig,
    },
  };
}

/** The EnvoyFilter file that carries ai-router, ai-ratelimit and ai-proxy with the knob WasmPlugin lacks. */
export const ISTIO_ENVOYFILTER = "sluice-envoyfilter.yaml";

/** Istio's cluster name for the rate limit service (a Service or ServiceEntry in the mesh). */
export function istioRateLimitCluster(d: { address: string; port: number }): string {
  return `outbound|${d.port}||${d.address}`;
}

export function renderIstio(cfg: GatewayConfig): Record<string, { comment: string; docs: unknown[] }> {
  const files: Record<string, { comment: string; docs: unknown[] }> = {};
  const wasmUrl = (name: string) => `file://${WASM_DIR}/${name}.wasm`;
  if (cfg.keyAuth.enabled) {
    files["key-auth.yaml"] = {
      comment: [
        "key-auth as an Istio WasmPlugin: phase AUTHN puts it before Istio's own authn/authz filters.",
        `url: the .wasm must be mounted at ${WASM_DIR} in the gateway pods (or push it as an OCI image and use oci://).`,
      ].join("\n"),
      docs: [
        {
          apiVersion: "extensions.istio.io/v1alpha1",
          kind: "WasmPlugin",
          metadata: { name: "sluice-key-auth", namespace: ISTIO_NAMESPACE },
          spec: {
            selector: { matchLabels: ISTIO_SELECTOR },
            url: wasmUrl("key-auth"),
            pluginName: "key-auth",
            phase: "AUTHN",
            priority: 100,
            failStrategy: "FAIL_CLOSE",
            type: "HTTP",
            pluginConfig: keyAuthJson(cfg),
          },
        },
      ],
    };
  }
  const warning = (name: string) => [
    "",
    `WARNING: Istio's WasmPlugin API cannot set allow_on_headers_stop_iteration (Envoy >= 1.35), which ${name} needs:`,
    "without it Envoy withholds the request body from a filter that holds the headers, and requests stall.",
    `Apply ${ISTIO_ENVOYFILTER} INSTEAD of the ai-router, ai-ratelimit and ai-proxy WasmPlugins (never both). These`,
    "manifests are kept for meshes whose Istio gains the knob.",
  ];
  const order = "In UNSPECIFIED_PHASE (the end of the chain, before the router) a higher priority runs first: ai-router 30, ai-ratelimit 20, ai-proxy 10.";
  // The chain, in order, for the EnvoyFilter: each is inserted just before the router.
  const chain: unknown[] = [];
  const routerEnv = routerEnvKeys(cfg);
  if (cfg.aiRouter) {
    const json = aiRouterJson(cfg, "env", istioCluster);
    files["ai-router.yaml"] = {
      comment: ["ai-router as an Istio WasmPlugin: decides each chat request's pool.", order, ...warning("ai-router")].join("\n"),
      docs: [istioWasmPlugin("ai-router", 30, routerEnv, json)],
    };
    chain.push(wasmFilter("ai-router", json, { env: routerEnv, allowOnHeadersStopIteration: true }));
  }
  if (cfg.aiRatelimit) {
    const json = aiRatelimitJson(cfg);
    files["ai-ratelimit.yaml"] = {
      comment: [
        "ai-ratelimit as an Istio WasmPlugin: token limits per Envoy (counters in the proxy's shared data).",
        order,
        ...warning("ai-ratelimit"),
      ].join("\n"),
      docs: [istioWasmPlugin("ai-ratelimit", 20, [], json)],
    };
    chain.push(wasmFilter("ai-ratelimit", json, { allowOnHeadersStopIteration: true }));
  }
  const aiProxyIstio = aiProxyJson(cfg, "env", istioCluster);
  const env = envKeys(cfg);
  files["ai-proxy.yaml"] = {
    comment: [
      "ai-proxy as an Istio WasmPlugin: picks the provider instance, translates, targets its cluster.",
      order,
      ...warning("ai-proxy"),
      "Provider clusters come from providers.yaml (ServiceEntry + DestinationRule).",
    ].join("\n"),
    docs: [istioWasmPlugin("ai-proxy", 10, env, aiProxyIstio)],
  };
  chain.push(wasmFilter("ai-proxy", aiProxyIstio, { env, allowOnHeadersStopIteration: true }));
  const distributed = cfg.aiRatelimit?.distributed ?? null;
  if (distributed) chain.push(rateLimitFilter(istioRateLimitCluster(distributed), distributed));
  const filterMatch = {
    context: "GATEWAY",
    listener: { filterChain: { filter: { name: "envoy.filters.network.http_connection_manager", subFilter: { name: "envoy.filters.http.router" } } } },
  };
  const allEnv = [...new Set([...env, ...routerEnv])];
  files[ISTIO_ENVOYFILTER] = {
    comment: [
      "The Sluice chain through an EnvoyFilter, because Istio's WasmPlugin cannot set allow_on_headers_stop_iteration.",
      "Needs Istio with Envoy >= 1.37 (the route's request_body_buffer_limit is applied at route match from 1.37). Inserts, in order, just before the router: " +
        [cfg.aiRouter ? "ai-router" : "", cfg.aiRatelimit ? "ai-ratelimit" : "", "ai-proxy", distributed ? "envoy.filters.http.ratelimit" : ""].filter(Boolean).join(", ") +
        " (key-auth stays a WasmPlugin in AUTHN),",
      "and makes the route named `sluice` pick its cluster from the header ai-proxy sets. Give your VirtualService's http route that name:",
      "  http: [{ name: sluice, route: [{ destination: { host: api.openai.com } }] }]   # any destination; replaced",
      `The key variables (${allEnv.join(", ") || "none"}) must be in the gateway pods' environment.`,
      ...(distributed
        ? [
            `Distributed rate limiting: the rate limit service is ${distributed.address}:${distributed.port} in the mesh (its cluster`,
            `${istioRateLimitCluster(distributed)}); name its Service port grpc-... so Istio speaks HTTP/2 to it, and load`,
            "ratelimit/config.yaml (rendered next to envoy.yaml) into it.",
          ]
        : []),
    ].join("\n"),
    docs: [
      {
        apiVersion: "networking.istio.io/v1alpha3",
        kind: "EnvoyFilter",
        metadata: { name: "sluice", namespace: ISTIO_NAMESPACE },
        spec: {
          workloadSelector: { labels: ISTIO_SELECTOR },
          configPatches: [
            // Patches apply in order: each INSERT_BEFORE the router lands after the previous one.
            ...chain.map((value) => ({ applyTo: "HTTP_FILTER", match: filterMatch, patch: { operation: "INSERT_BEFORE", value } })),
            {
              applyTo: "HTTP_ROUTE",
              match: { context: "GATEWAY", routeConfiguration: { vhost: { route: { name: "sluice" } } } },
              patch: {
                operation: "MERGE",
                value: {
                  request_body_buffer_limit: streamBufferLimit(cfg),
                  route: routeAction(cfg, { istio: true }),
                  ...(distributed ? { typed_per_filter_config: rateLimitPerRoute(distributed.rules) } : {}),
                },
              },
            },
          ],
        },
      },
    ],
  };
  const docs: unknown[] = [];
  const external = [...cfg.providers];
  if (cfg.aiRouter?.embeddings?.dedicated) external.push(cfg.aiRouter.embeddings.target);
  for (const i of external) {
    const t = realTarget(i);
    docs.push({
      apiVersion: "networking.istio.io/v1beta1",
      kind: "ServiceEntry",
      metadata: { name: `sluice-${i.name}`, namespace: ISTIO_NAMESPACE },
      spec: {
        hosts: [t.host],
        location: "MESH_EXTERNAL",
        resolution: "DNS",
        ports: [{ number: t.port, name: t.tls ? "https" : "http", protocol: t.tls ? "HTTPS" : "HTTP" }],
      },
    });
    docs.push({
      apiVersion: "networking.istio.io/v1beta1",
      kind: "DestinationRule",
      metadata: { name: `sluice-${i.name}`, namespace: ISTIO_NAMESPACE },
      spec: {
        host: t.host,
        trafficPolicy: {
          ...(t.tls ? { tls: { mode: "SIMPLE", sni: t.host } } : {}),
          connectionPool: { tcp: { connectTimeout: cfg.timeouts.connect } },
          outlierDetection: { consecutive5xxErrors: 5, consecutiveGatewayErrors: 3, interval: "10s", baseEjectionTime: "30s", maxEjectionPercent: 100 },
        },
      },
    });
  }
  files["providers.yaml"] = {
    comment: "The provider endpoints as mesh-external services. The plugins' configurations name their clusters (outbound|<port>||<host>).",
    docs,
  };
  return files;
}

// ------------------------------------------------------------------------------------------ files

const HEADER = "# Rendered from gateway.yaml by `npm run render` (scripts/render.ts). Edit gateway.yaml, not this file.\n";

export function envoyYamlText(cfg: GatewayConfig, opts: EnvoyRenderOptions = {}): string {
  const note = opts.mock
    ? "# docker compose (envoy/docker-compose.yaml): every cluster points at the mock provider service and a dummy key.\n"
    : "# Needs Envoy >= 1.37 (allow_on_headers_stop_iteration for ai-router, ai-ratelimit, ai-proxy: 1.35; the route's request_body_buffer_limit applied when the route is matched: 1.37) with the v8 Wasm runtime.\n";
  return HEADER + note + stringify(renderEnvoy(cfg, opts), { lineWidth: 0, aliasDuplicateObjects: false });
}

function istioText(file: { comment: string; docs: unknown[] }): string {
  const comment = file.comment.split("\n").map((l) => (l ? `# ${l}` : "#")).join("\n");
  return HEADER + comment + "\n" + file.docs.map((d) => stringify(d, { lineWidth: 0, aliasDuplicateObjects: false })).join("---\n");
}

function rateLimitServiceText(cfg: GatewayConfig): string {
  const d = cfg.aiRatelimit?.distributed;
  const note = d
    ? "# envoyproxy/ratelimit's configuration for filters.ai_ratelimit.distributed: one descriptor tree per rule,\n" +
      "# (rule, <name>) [-> (when, true)] -> key parts, the limit in tokens (hits_addend carries the token counts).\n"
    : "# filters.ai_ratelimit.distributed is not set in gateway.yaml: no rule is enforced by the rate limit service.\n";
  return HEADER + note + stringify(rateLimitServiceConfig(cfg), { lineWidth: 0, aliasDuplicateObjects: false });
}

/** Every rendered file, by path relative to the output directory. */
export function renderFiles(cfg: GatewayConfig): Record<string, string> {
  const out: Record<string, string> = {
    "envoy.yaml": envoyYamlText(cfg),
    "envoy.mock.yaml": envoyYamlText(cfg, { mock: true }),
    "ratelimit/config.yaml": rateLimitServiceText(cfg),
  };
  for (const [name, file] of Object.entries(renderIstio(cfg))) out[`istio/${name}`] = istioText(file);
  return out;
}

/** Writes all files or none: temporaries first, renamed into place once every one is written. */
export function writeAtomically(outDir: string, files: Record<string, string>): string[] {
  const temps: [string, string][] = [];
  try {
    for (const [rel, text] of Object.entries(files)) {
      const target = join(outDir, rel);
      mkdirSync(dirname(target), { recursive: true });
      const tmp = `${target}.tmp-${process.pid}-${Date.now()}`;
      writeFileSync(tmp, text);
      temps.push([tmp, target]);
    }
  } catch (e) {
    for (const [tmp] of temps) rmSync(tmp, { force: true });
    throw e;
  }
  for (const [tmp, target] of temps) renameSync(tmp, target);
  return temps.map(([, t]) => t);
}

export interface RenderOptions {
  config?: string;
  outDir?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Rendered manifests this render no longer makes (a filter disabled, a renamed file): removed, so
 * `kubectl apply -f envoy/istio/` never applies a stale one. Only files that carry the render header.
 */
export function removeStale(outDir: string, files: Record<string, string>): string[] {
  const removed: string[] = [];
  const dir = join(outDir, "istio");
  if (!existsSync(dir)) return removed;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (!name.endsWith(".yaml") || `istio/${name}` in files) continue;
    if (!readFileSync(path, "utf8").startsWith(HEADER)) continue;
    rmSync(path);
    removed.push(path);
  }
  return removed;
}

/** Loads gateway.yaml and writes every file; throws GatewayConfigError (nothing written) on a bad config. */
export function render(opts: RenderOptions = {}): { cfg: GatewayConfig; written: string[]; removed: string[] } {
  const config = resolve(opts.config ?? join(root, "gateway.yaml"));
  const outDir = resolve(opts.outDir ?? join(root, "envoy"));
  const cfg = loadGatewayConfig(config, { env: opts.env });
  const files = renderFiles(cfg);
  const written = writeAtomically(outDir, files);
  return { cfg, written, removed: removeStale(outDir, files) };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    const { written, removed } = render({ config: arg("config"), outDir: arg("out") });
    for (const f of written) console.log(`wrote ${f}`);
    for (const f of removed) console.log(`removed ${f} (no longer rendered)`);
  } catch (e) {
    if (e instanceof GatewayConfigReadError) {
      console.error(`render: ${e.message}`);
      process.exit(1);
    }
    if (e instanceof GatewayConfigError) {
      console.error(`render: ${e.file} is not valid; nothing was written.\n${e.message}`);
      process.exit(1);
    }
    throw e;
  }
}
