// envoy.yaml: the listener, its filter chain (the Sluice wasm filters, then the router), the route and the clusters.
import { createHash } from "node:crypto";
import type { FailurePolicyName, GatewayConfig } from "../gateway-config.js";
import { accessLogFormat } from "./access-log.js";
import { statsConfig } from "./stats-config.js";
import { openTelemetryAccessLog, openTelemetryCluster, openTelemetryTracing } from "./opentelemetry.js";
import { cluster, mockTarget, realTarget } from "./clusters.js";
import { AI_PROXY_MAX_BODY, BUFFER_HEADROOM, CONNECTION_BUFFER_LIMIT, WASM_DIR, WASM_TYPE_URL } from "./constants.js";
import { aiCacheJson, aiGuardJson, aiProxyJson, aiRatelimitJson, aiRouterJson, cacheEnvKeys, envKeys, awsEnvKeys, entraEnvKeys, entraTargets, guardEnvKeys, identityJson, keyAuthJson, routerEnvKeys } from "./filter-config.js";
import { moderationTarget } from "../guard-moderation.js";
import { mcpEnvKeys, mcpJson, mcpTargets } from "../mcp-config.js";
import { a2aEnvKeys, a2aJson, a2aTargets } from "../a2a-config.js";
import { cacheStoreEnvKeys, cacheStoreTargets } from "../cache-config.js";
import { discoveredFilter, ecdsRelPath, ecdsResponse } from "./ecds.js";
import { localReplyConfig } from "./local-reply.js";
import { nativeAccessFilters, nativeAuthFilters, nativeClusters, nativeVirtualHostConfig } from "./native-filters.js";
import { nativeReplyMappers } from "./native-replies.js";
import { listenerTransportSocket } from "./listener-tls.js";
import { RATELIMIT_CLUSTER, RATELIMIT_PORT, RATELIMIT_SERVICE, rateLimitCluster, rateLimitFilter, rateLimitPerRoute } from "./ratelimit.js";

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

/** gateway.yaml's failure_policy -> PluginConfig.failure_policy (envoy/extensions/wasm/v3/wasm.proto enum FailurePolicy). */
export const ENVOY_FAILURE_POLICY: Record<FailurePolicyName, string> = { closed: "FAIL_CLOSED", open: "FAIL_OPEN", reload: "FAIL_RELOAD" };
/**
 * FAIL_RELOAD's backoff, Envoy's default written out: after a trap the worker's streams get 503 until
 * a jittered [base, 1.5 * base) has passed since the VM was loaded, then the next stream starts a new
 * VM (source/extensions/common/wasm/wasm.cc PluginConfig::PluginConfig reads only base_interval, a
 * JitteredLowerBoundBackOffStrategy; maybeReloadHandleIfNeeded). Istio's WasmPlugin cannot set it.
 */
export const RELOAD_BACKOFF = "1s";

export function wasmFilter(
  name: string,
  configuration: unknown,
  extra: { failurePolicy: FailurePolicyName; env?: string[]; allowOnHeadersStopIteration?: boolean },
) {
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
    // Envoy >= 1.33 (the deprecated fail_open is never written: Envoy refuses the two together).
    // Written even for FAIL_CLOSED: what UNSPECIFIED means has changed between Envoy builds.
    failure_policy: ENVOY_FAILURE_POLICY[extra.failurePolicy],
  };
  if (extra.failurePolicy === "reload") config.reload_config = { backoff: { base_interval: RELOAD_BACKOFF } };
  // Envoy >= 1.35 (envoyproxy/envoy#40213): lets ai-router, ai-guard, ai-ratelimit and ai-proxy hold the headers
  // while they read the body (without it Envoy withholds the body from a filter that stopped on headers).
  // Envoy >= 1.37.6 for the body to arrive whole (see ENVOY_VERSION_FLOOR).
  if (extra.allowOnHeadersStopIteration) config.allow_on_headers_stop_iteration = true;
  return {
    name: `sluice.${name.replace(/-/g, "_")}`,
    typed_config: { "@type": WASM_TYPE_URL, config },
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
 *   Istio's route is merged, not written: see istioRouteAction (istio.ts).
 * - idle_timeout: the stream's longest silence in either direction (HCM stream idle timer, per route):
 *   408 before the response starts, a reset after.
 * The connect timeout is the cluster's connect_timeout (TCP and TLS handshake).
 */
export function routeAction(cfg: GatewayConfig): Record<string, unknown> {
  const t = cfg.timeouts;
  const perTry = t.firstByte === "0s" ? null : { num_retries: 0, per_try_timeout: t.firstByte };
  return { cluster_header: cfg.aiProxy.clusterHeader, timeout: t.total, idle_timeout: t.idle, ...(perTry ? { retry_policy: perTry } : {}) };
}
/** The Sluice wasm filters in docs/architecture.md's order: key-auth, identity, mcp, ai-router, ai-guard, ai-ratelimit, ai-proxy. */
export function sluiceWasmFilters(cfg: GatewayConfig, opts: EnvoyRenderOptions = {}): { file: string; name: string; typed_config: unknown }[] {
  const mock = !!opts.mock;
  const credential = mock ? "mock" : "env";
  const out: { file: string; name: string; typed_config: unknown }[] = [];
  const add = (file: string, f: { name: string; typed_config: unknown }) => out.push({ file, ...f });
  const fp = cfg.failurePolicy;
  if (cfg.keyAuth.enabled) add("key-auth", wasmFilter("key-auth", keyAuthJson(cfg), { failurePolicy: fp["key-auth"] }));
  // Authentication, like key-auth: FAIL_CLOSED (fp.identity has no setting).
  if (cfg.identity) add("identity", wasmFilter("identity", identityJson(cfg), { failurePolicy: fp.identity }));
  // Once the consumer is known (its tool access depends on it); FAIL_CLOSED like key-auth. Its
  // servers are real even with mock (the compose file has no MCP server), so its env keys always.
  if (cfg.mcp) add("mcp", wasmFilter("mcp", mcpJson(cfg.mcp, cfg.aiProxy.clusterHeader), { failurePolicy: fp.mcp, env: mcpEnvKeys(cfg.mcp), allowOnHeadersStopIteration: true }));
  // The same place and policy for A2A agents (real even with mock, like the MCP servers).
  if (cfg.a2a) add("a2a", wasmFilter("a2a", a2aJson(cfg.a2a, cfg.aiProxy.clusterHeader, cfg.keyAuth.header), { failurePolicy: fp.a2a, env: a2aEnvKeys(cfg.a2a), allowOnHeadersStopIteration: true }));
  if (cfg.aiRouter) add("ai-router", wasmFilter("ai-router", aiRouterJson(cfg, credential), { failurePolicy: fp["ai-router"], env: mock ? [] : routerEnvKeys(cfg), allowOnHeadersStopIteration: true }));
  // After ai-router (its route rule and pool choose the guard's policy), before ai-ratelimit (a blocked
  // request reserves no tokens). FAIL_CLOSED by default: a guard that fails open passes what it guards.
  if (cfg.aiGuard) add("ai-guard", wasmFilter("ai-guard", aiGuardJson(cfg, credential), { failurePolicy: fp["ai-guard"], env: mock ? [] : guardEnvKeys(cfg), allowOnHeadersStopIteration: true }));
  // After ai-guard (a blocked prompt is never answered from the cache; a masked one is looked up
  // masked), before ai-ratelimit (a hit reserves no tokens). FAIL_OPEN by default: skipped, it only caches nothing.
  if (cfg.aiCache) add("ai-cache", wasmFilter("ai-cache", aiCacheJson(cfg, credential), { failurePolicy: fp["ai-cache"], env: mock ? cacheStoreEnvKeys(cfg.aiCache) : cacheEnvKeys(cfg), allowOnHeadersStopIteration: true }));
  if (cfg.aiRatelimit) add("ai-ratelimit", wasmFilter("ai-ratelimit", aiRatelimitJson(cfg), { failurePolicy: fp["ai-ratelimit"], allowOnHeadersStopIteration: true }));
  // The compose file's mock service has no Bedrock or Vertex: those instances stay real, with their variables.
  add("ai-proxy", wasmFilter("ai-proxy", aiProxyJson(cfg, credential), { failurePolicy: fp["ai-proxy"], env: mock ? [...awsEnvKeys(cfg), ...entraEnvKeys(cfg)] : envKeys(cfg), allowOnHeadersStopIteration: true }));
  return out;
}

/** Each wasm filter's ECDS file (a DiscoveryResponse), by path relative to envoy/. */
export function renderEcds(cfg: GatewayConfig, opts: EnvoyRenderOptions = {}): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const f of sluiceWasmFilters(cfg, opts)) {
    // The version names the content, so Envoy's version_text stat tells which render is running.
    const version = createHash("sha256").update(JSON.stringify(f.typed_config)).digest("hex").slice(0, 16);
    out[ecdsRelPath(f.file, !!opts.mock)] = ecdsResponse(f, version);
  }
  return out;
}

export interface EnvoyRenderOptions {
  /** Point every cluster at the docker-compose mock service and use a dummy inline key. */
  mock?: boolean;
}

export function renderEnvoy(cfg: GatewayConfig, opts: EnvoyRenderOptions = {}): Record<string, unknown> {
  const mock = !!opts.mock;
  // Every Sluice wasm filter's configuration comes from its ECDS file (cli/render/envoy.ts renderEcds):
  // consumers and keys (key-auth), routes (ai-router), limits (ai-ratelimit), pools and providers
  // (ai-proxy) all change while Envoy runs. The filter's place in the chain stays in envoy.yaml:
  // docs/architecture.md's order, with Envoy's own filters around the identity (docs/native-filters.md):
  // cors, jwt_authn, ext_authz before it, rbac and local_ratelimit once the consumer is known.
  const sluice = sluiceWasmFilters(cfg, opts);
  const identity = sluice.filter((f) => f.file === "key-auth" || f.file === "identity");
  const httpFilters: unknown[] = [
    ...nativeAuthFilters(cfg),
    ...identity.map((f) => discoveredFilter(f, mock)),
    ...nativeAccessFilters(cfg),
    ...sluice.filter((f) => !identity.includes(f)).map((f) => discoveredFilter(f, mock)),
  ];
  const distributed = cfg.aiRatelimit?.distributed ?? null;
  // After ai-proxy: its request-time check runs once filter state is complete (consumer, pool, model,
  // prompt estimate), and only for requests that really go upstream.
  if (distributed) httpFilters.push(rateLimitFilter(RATELIMIT_CLUSTER, distributed));
  httpFilters.push({ name: "envoy.filters.http.router", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } });

  const clusters = cfg.providers.map((i) => cluster(cfg, i, mock && !["bedrock", "bedrock-anthropic", "vertex", "vertex-anthropic"].includes(i.provider) ? mockTarget(i) : realTarget(i)));
  const emb = cfg.aiRouter?.embeddings ?? cfg.aiCache?.embeddings;
  if (emb?.dedicated) clusters.push(cluster(cfg, emb.target, mock ? mockTarget(emb.target) : realTarget(emb.target)));
  // ai-guard's moderation service: its real endpoint even with mock (the compose file has no mock of it).
  const moderation = moderationTarget(cfg.aiGuard);
  if (moderation) clusters.push(cluster(cfg, moderation, realTarget(moderation)));
  // The MCP servers and their OAuth token endpoints (mcp_<name>, mcp_<name>_oauth): real targets always.
  for (const t of mcpTargets(cfg.mcp)) clusters.push(cluster(cfg, t, realTarget(t)));
  // Entra ID token endpoints are real even with mock (the compose file has none).
  for (const t of entraTargets(cfg)) clusters.push(cluster(cfg, t, realTarget(t)));
  // ai-cache's shared store is real even with mock (the compose file has no Redis).
  for (const t of cacheStoreTargets(cfg.aiCache)) clusters.push(cluster(cfg, t, realTarget(t)));
  for (const t of a2aTargets(cfg.a2a)) clusters.push(cluster(cfg, t, realTarget(t)));
  if (distributed) clusters.push(rateLimitCluster(cfg, mock ? { host: RATELIMIT_SERVICE, port: RATELIMIT_PORT } : { host: distributed.address, port: distributed.port }));
  clusters.push(...(nativeClusters(cfg) as typeof clusters));
  clusters.push(...(openTelemetryCluster(cfg, mock) as typeof clusters));
  const vhostFilterConfig = nativeVirtualHostConfig(cfg);

  const admin = mock ? { address: "0.0.0.0", port: cfg.admin.port } : cfg.admin;
  return {
    admin: { address: { socket_address: { address: admin.address, port_value: admin.port } } },
    // Sluice's labels and the OpenTelemetry GenAI attributes as tags; the GenAI histograms' buckets
    // as the semantic conventions advise (cli/render/genai-stats.ts).
    stats_config: statsConfig(),
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
              // HTTPS, and client certificates, when gateway.yaml has listener.tls (listener-tls.ts).
              ...(cfg.listener.tls ? { transport_socket: listenerTransportSocket(cfg.listener.tls) } : {}),
              filters: [
                {
                  name: "envoy.filters.network.http_connection_manager",
                  typed_config: {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    stat_prefix: "sluice",
                    codec_type: "AUTO",
                    local_reply_config: localReplyConfig(nativeReplyMappers(cfg)),
                    // gateway.yaml opentelemetry.traces: a span per request with the GenAI attributes.
                    ...openTelemetryTracing(cfg),
                    access_log: [
                      {
                        name: "envoy.access_loggers.file",
                        typed_config: {
                          "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                          path: cfg.accessLog.path,
                          log_format: { json_format: accessLogFormat() },
                        },
                      },
                      // The same record to an OpenTelemetry Collector (gateway.yaml opentelemetry).
                      ...openTelemetryAccessLog(cfg),
                    ],
                    route_config: {
                      name: "sluice",
                      virtual_hosts: [
                        {
                          name: "sluice",
                          domains: ["*"],
                          ...(vhostFilterConfig ? { typed_per_filter_config: vhostFilterConfig } : {}),
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
