// Envoy's own HTTP filters in Sluice's chain, from gateway.yaml's auth, cors, rbac and
// request_rate_limit (cli/native-config.ts checks them). Each function renders one filter's
// typed_config as Envoy's v3 API spells it (data-plane-api, envoy/extensions/filters/http/<name>/v3/).
//
// The chain (renderEnvoy): cors, the removal of client-sent identity headers, jwt_authn, ext_authz
// (nativeAuthFilters), then Sluice's key-auth and identity filters, then rbac and local_ratelimit
// (nativeAccessFilters), then ai-router, ai-ratelimit, ai-proxy. cors is first so a browser's
// preflight is answered before any credential is asked for. rbac and local_ratelimit come after the
// consumer is known: their rules "by consumer" read filter state sluice.consumer, which key-auth (or
// identity, from a JWT claim) writes; JWT claims (dynamic metadata) and headers are there too by then.
import type { GatewayConfig } from "../gateway-config.js";
import { JWT_FAILURE_KEY, JWT_METADATA_NAMESPACE, JWT_PAYLOAD_KEY, type Bucket, type JwtProvider, type RbacPolicy } from "../native-config.js";
import { serviceCluster } from "./clusters.js";

export const CORS_FILTER = "envoy.filters.http.cors";
export const JWT_FILTER = "envoy.filters.http.jwt_authn";
export const EXT_AUTHZ_FILTER = "envoy.filters.http.ext_authz";
export const RBAC_FILTER = "envoy.filters.http.rbac";
export const LOCAL_RATELIMIT_FILTER = "envoy.filters.http.local_ratelimit";
/** rbac's rules_stat_prefix: its stats and its dynamic metadata (<prefix>enforced_engine_result) carry it. */
export const RBAC_STAT_PREFIX = "sluice_";
/** Cluster of the authorization service; of a provider's JWKS: sluice-jwks-<provider>. */
export const EXT_AUTHZ_CLUSTER = "sluice-ext-authz";
export const jwksCluster = (provider: string) => `sluice-jwks-${provider}`;
/** Where Envoy keeps the consumer key-auth / identity set (proxy-wasm set_property writes filter state wasm.<key>). */
const CONSUMER_STATE = "wasm.sluice.consumer";

const TYPE = (name: string, msg: string) => `type.googleapis.com/envoy.extensions.filters.http.${name}.v3.${msg}`;

/** A runtime fraction of 100%: local_ratelimit's filter_enabled / filter_enforced default to 0%. */
function always(key: string) {
  return { runtime_key: key, default_value: { numerator: 100, denominator: "HUNDRED" } };
}

// ---- cors ------------------------------------------------------------------------------------

/**
 * The CORS filter has no settings of its own; the policy is the virtual host's
 * typed_per_filter_config under the filter's name (VirtualHost.cors is deprecated since v3.0:
 * route_components.proto). forward_not_matching_preflights false: Envoy answers a preflight from an
 * origin it does not allow itself (without CORS headers, so the browser stops) instead of passing an
 * OPTIONS request on to authentication and ai-proxy.
 */
export function corsFilter() {
  return { name: CORS_FILTER, typed_config: { "@type": TYPE("cors", "Cors") } };
}

export function corsPolicy(cfg: GatewayConfig) {
  const c = cfg.native.cors!;
  return {
    "@type": TYPE("cors", "CorsPolicy"),
    allow_origin_string_match: c.allowOrigins.map((o) => ("any" in o ? { safe_regex: { regex: ".*" } } : "regex" in o ? { safe_regex: { regex: o.regex } } : { exact: o.exact, ignore_case: true })),
    allow_methods: c.allowMethods.join(","),
    allow_headers: c.allowHeaders.join(","),
    expose_headers: c.exposeHeaders.join(","),
    max_age: String(c.maxAgeSeconds),
    allow_credentials: c.allowCredentials,
    forward_not_matching_preflights: false,
  };
}

// ---- jwt_authn ---------------------------------------------------------------------------------

function jwtProvider(p: JwtProvider) {
  const out: Record<string, unknown> = { issuer: p.issuer };
  if (p.audiences.length) out.audiences = p.audiences;
  if (p.remote) {
    out.remote_jwks = {
      http_uri: { uri: p.remote.url.href, cluster: jwksCluster(p.name), timeout: p.remote.timeout },
      cache_duration: p.remote.cacheDuration,
      // Fetched when Envoy starts and refreshed before the cache expires, not on the first request
      // (the listener waits for the first fetch: fast_listener false).
      async_fetch: {},
    };
  } else if (p.local && "file" in p.local) out.local_jwks = { filename: p.local.file };
  else if (p.local) out.local_jwks = { inline_string: p.local.inline };
  out.forward = p.forward;
  if (p.fromHeaders) out.from_headers = p.fromHeaders.map((h) => ({ name: h.name, ...(h.valuePrefix !== undefined ? { value_prefix: h.valuePrefix } : {}) }));
  // The verified payload as dynamic metadata envoy.filters.http.jwt_authn / jwt_payload: the filters
  // read claims through the `metadata` property, rbac through a metadata principal.
  out.payload_in_metadata = JWT_PAYLOAD_KEY;
  // A failed verification's {code, message}: the local reply mapper that answers in the client's
  // shape matches on it (native-replies.ts).
  out.failed_status_in_metadata = JWT_FAILURE_KEY;
  if (p.claimToHeaders.length) out.claim_to_headers = p.claimToHeaders.map((c) => ({ header_name: c.header, claim_name: c.claim }));
  out.clock_skew_seconds = p.clockSkewSeconds;
  return out;
}

/** A rule's JwtRequirement: one provider, any of several, optionally a missing token; none: unchecked. */
function requirement(requires: string[], allowMissing: boolean): Record<string, unknown> | null {
  if (requires.length === 0) return null;
  if (requires.length === 1 && !allowMissing) return { provider_name: requires[0] };
  const any: unknown[] = requires.map((n) => ({ provider_name: n }));
  if (allowMissing) any.push({ allow_missing: {} });
  return { requires_any: { requirements: any } };
}

export function jwtAuthnFilter(cfg: GatewayConfig) {
  const j = cfg.native.jwt!;
  return {
    name: JWT_FILTER,
    typed_config: {
      "@type": TYPE("jwt_authn", "JwtAuthentication"),
      providers: Object.fromEntries(j.providers.map((p) => [p.name, jwtProvider(p)])),
      rules: j.rules.map((r) => {
        const req = requirement(r.requires, r.allowMissing);
        return { match: { prefix: r.prefix }, ...(req ? { requires: req } : {}) };
      }),
      // A preflight carries no token; the CORS filter before this one answers those it allows.
      bypass_cors_preflight: true,
    },
  };
}

// ---- identity headers ----------------------------------------------------------------------------

/**
 * The headers jwt_authn (claim_to_headers) and ext_authz (upstream_headers) write, removed from the
 * client's request before either runs. jwt_authn adds a claim's header with addCopy
 * (source/extensions/filters/http/jwt_authn/authenticator.cc, addJWTClaimToHeader; envoyproxy/envoy#23444):
 * a value the client sent would stay beside the verified one, and stays alone when the token lacks
 * the claim or the path is unchecked. Same for an authorization answer that omits a header.
 */
export const IDENTITY_HEADERS_FILTER = "sluice.identity_headers";

export function identityHeaders(cfg: GatewayConfig): string[] {
  const n = cfg.native;
  const names = new Set<string>();
  for (const p of n.jwt?.providers ?? []) for (const c of p.claimToHeaders) names.add(c.header);
  for (const h of n.extAuthz?.http?.upstreamHeaders ?? []) names.add(h);
  return [...names];
}

export function identityHeadersFilter(names: string[]) {
  return {
    name: IDENTITY_HEADERS_FILTER,
    typed_config: {
      "@type": TYPE("header_mutation", "HeaderMutation"),
      mutations: { request_mutations: names.map((remove) => ({ remove })) },
    },
  };
}

// ---- ext_authz ---------------------------------------------------------------------------------

const exactList = (names: string[]) => ({ patterns: names.map((n) => ({ exact: n, ignore_case: true })) });

export function extAuthzFilter(cfg: GatewayConfig) {
  const e = cfg.native.extAuthz!;
  const config: Record<string, unknown> = { "@type": TYPE("ext_authz", "ExtAuthz") };
  if (e.http) {
    const path = e.http.url.pathname.replace(/\/+$/, "");
    config.http_service = {
      server_uri: { uri: e.http.url.href, cluster: EXT_AUTHZ_CLUSTER, timeout: e.timeout },
      ...(path ? { path_prefix: path } : {}),
      ...(e.http.upstreamHeaders.length ? { authorization_response: { allowed_upstream_headers: exactList(e.http.upstreamHeaders) } } : {}),
    };
  } else {
    config.grpc_service = { envoy_grpc: { cluster_name: EXT_AUTHZ_CLUSTER }, timeout: e.timeout };
  }
  config.transport_api_version = "V3";
  config.failure_mode_allow = e.failureModeAllow;
  // Client headers the service sees (besides :method, :path, :authority, which are always sent).
  config.allowed_headers = exactList(e.allowedHeaders);
  return { name: EXT_AUTHZ_FILTER, typed_config: config };
}

// ---- rbac --------------------------------------------------------------------------------------

// Principal sets are { ids: [...] }, Permission sets { rules: [...] } (envoy/config/rbac/v3/rbac.proto).
const setOf = (key: string, items: unknown[]): unknown => (items.length === 1 ? items[0] : { [key]: { [key.endsWith("_ids") ? "ids" : "rules"]: items } });
const anyOf = (items: unknown[], key: "or_ids" | "or_rules") => setOf(key, items);
const allOf = (items: unknown[], key: "and_ids" | "and_rules") => setOf(key, items);

/** A claim of the verified payload: a string claim equal to one of the values, or a list claim holding one. */
function claimPrincipal(claim: string, values: string[]) {
  const one = (v: string) => ({ string_match: { exact: v } });
  const value = { or_match: { value_matchers: values.flatMap((v) => [one(v), { list_match: { one_of: one(v) } }]) } };
  // sourced_metadata (Envoy >= 1.33) replaces the deprecated `metadata` principal; its source is
  // dynamic metadata by default, where jwt_authn writes the payload.
  return { sourced_metadata: { metadata_matcher: { filter: JWT_METADATA_NAMESPACE, path: [{ key: JWT_PAYLOAD_KEY }, ...claim.split(".").map((key) => ({ key }))], value } } };
}

function headerMatch(name: string, values: string[]) {
  return anyOf(values.map((v) => ({ header: { name, string_match: { exact: v } } })), "or_ids");
}

function rbacPolicy(p: RbacPolicy) {
  const principals: unknown[] = [];
  if (p.consumers) principals.push(anyOf(p.consumers.map((c) => ({ filter_state: { key: CONSUMER_STATE, string_match: { exact: c } } })), "or_ids"));
  for (const [claim, values] of Object.entries(p.claims ?? {})) principals.push(claimPrincipal(claim, values));
  for (const [name, values] of Object.entries(p.headers ?? {})) principals.push(headerMatch(name, values));
  const permissions: unknown[] = [];
  // url_path matches the path without its query string.
  if (p.paths) permissions.push(anyOf(p.paths.map((x) => ({ url_path: { path: x.endsWith("*") ? { prefix: x.slice(0, -1) } : { exact: x } } })), "or_rules"));
  if (p.methods) permissions.push(anyOf(p.methods.map((m) => ({ header: { name: ":method", string_match: { exact: m } } })), "or_rules"));
  return {
    permissions: [permissions.length ? allOf(permissions, "and_rules") : { any: true }],
    principals: [principals.length ? allOf(principals, "and_ids") : { any: true }],
  };
}

export function rbacFilter(cfg: GatewayConfig) {
  const r = cfg.native.rbac!;
  return {
    name: RBAC_FILTER,
    typed_config: {
      "@type": TYPE("rbac", "RBAC"),
      rules: { action: r.action, policies: Object.fromEntries(r.policies.map((p) => [p.name, rbacPolicy(p)])) },
      // rbac.<prefix>allowed / denied, and per policy with track_per_rule_stats.
      rules_stat_prefix: RBAC_STAT_PREFIX,
      track_per_rule_stats: true,
    },
  };
}

// ---- local_ratelimit ---------------------------------------------------------------------------

function tokenBucket(b: Bucket) {
  return { max_tokens: b.burst, tokens_per_fill: b.requests, fill_interval: b.per };
}

/** The rate limit action that yields the ("consumer", <value>) descriptor entry; no value, no descriptor. */
function consumerAction(key: string) {
  if (key.startsWith("header:")) return { request_headers: { header_name: key.slice(7), descriptor_key: "consumer" } };
  if (key.startsWith("claim:")) {
    const path = [{ key: JWT_PAYLOAD_KEY }, ...key.slice(6).split(".").map((k) => ({ key: k }))];
    return { metadata: { descriptor_key: "consumer", metadata_key: { key: JWT_METADATA_NAMESPACE, path }, source: "DYNAMIC" } };
  }
  // Sluice's consumer: filter state, which only CEL reads (the same expression as the global rate limit's).
  return {
    extension: {
      name: "envoy.rate_limit_descriptors.expr",
      typed_config: { "@type": "type.googleapis.com/envoy.extensions.rate_limit_descriptors.expr.v3.Descriptor", descriptor_key: "consumer", text: `filter_state['${CONSUMER_STATE}']` },
    },
  };
}

/**
 * Requests per interval, beside ai-ratelimit's tokens. The listener bucket is the filter's
 * token_bucket; the consumer bucket is a descriptor whose value is left out (a wildcard: one bucket
 * per distinct value, Envoy >= 1.34), filled by the filter's own rate_limits (Envoy >= 1.32) from
 * filter state sluice.consumer (CEL), a verified JWT claim (dynamic metadata) or a header. Both are charged
 * (always_consume_default_token_bucket defaults to true). A request without a consumer yields no
 * descriptor and counts against the listener bucket only.
 */
export function localRateLimitFilter(cfg: GatewayConfig) {
  const r = cfg.native.requestRateLimit!;
  const config: Record<string, unknown> = {
    "@type": TYPE("local_ratelimit", "LocalRateLimit"),
    stat_prefix: "sluice_requests",
    ...(r.listener ? { token_bucket: tokenBucket(r.listener) } : {}),
    filter_enabled: always("sluice.request_rate_limit.enabled"),
    filter_enforced: always("sluice.request_rate_limit.enforced"),
  };
  if (r.consumer) {
    config.descriptors = [{ entries: [{ key: "consumer" }], token_bucket: tokenBucket(r.consumer) }];
    config.rate_limits = [{ actions: [consumerAction(r.consumer.key ?? "consumer")] }];
    config.max_dynamic_descriptors = r.maxConsumers;
  }
  if (r.headers) config.enable_x_ratelimit_headers = "DRAFT_VERSION_03";
  return { name: LOCAL_RATELIMIT_FILTER, typed_config: config };
}

// ---- the chain and what it needs ------------------------------------------------------------------

/** Before Sluice's key-auth / identity: cors, the identity headers' removal, jwt_authn, ext_authz (each when configured). */
export function nativeAuthFilters(cfg: GatewayConfig): unknown[] {
  const n = cfg.native;
  const strip = identityHeaders(cfg);
  return [
    n.cors ? corsFilter() : null,
    strip.length ? identityHeadersFilter(strip) : null,
    n.jwt ? jwtAuthnFilter(cfg) : null,
    n.extAuthz ? extAuthzFilter(cfg) : null,
  ].filter((f) => f !== null);
}

/** After Sluice's key-auth / identity, before ai-router: rbac, local_ratelimit (each when configured). */
export function nativeAccessFilters(cfg: GatewayConfig): unknown[] {
  const n = cfg.native;
  return [n.rbac ? rbacFilter(cfg) : null, n.requestRateLimit ? localRateLimitFilter(cfg) : null].filter((f) => f !== null);
}

/** The virtual host's typed_per_filter_config the native filters need (the CORS policy), or null. */
export function nativeVirtualHostConfig(cfg: GatewayConfig): Record<string, unknown> | null {
  return cfg.native.cors ? { [CORS_FILTER]: corsPolicy(cfg) } : null;
}

function urlTarget(url: URL) {
  const tls = url.protocol === "https:";
  return { host: url.hostname.replace(/^\[|\]$/g, ""), port: Number(url.port || (tls ? 443 : 80)), tls };
}

/** The clusters of the remote JWKS and of the authorization service. */
export function nativeClusters(cfg: GatewayConfig): unknown[] {
  const out: unknown[] = [];
  for (const p of cfg.native.jwt?.providers ?? []) {
    if (!p.remote) continue;
    const t = urlTarget(p.remote.url);
    out.push(serviceCluster(cfg, jwksCluster(p.name), t.host, t.port, t.tls, false));
  }
  const e = cfg.native.extAuthz;
  if (e?.http) {
    const t = urlTarget(e.http.url);
    out.push(serviceCluster(cfg, EXT_AUTHZ_CLUSTER, t.host, t.port, t.tls, false));
  } else if (e?.grpc) out.push(serviceCluster(cfg, EXT_AUTHZ_CLUSTER, e.grpc.address, e.grpc.port, false, true));
  return out;
}
