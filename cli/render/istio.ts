// Istio manifests: WasmPlugins, the EnvoyFilter that carries the chain, the providers as mesh-external services,
// and the stats configuration for the gateway's proxies.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { FailurePolicyName, FilterName, GatewayConfig, Instance } from "../gateway-config.js";
import { wasmImage } from "../oci-image.js";
import { realTarget } from "./clusters.js";
import { CONNECTION_BUFFER_LIMIT, ENVOY_VERSION_FLOOR, WASM_DIR } from "./constants.js";
import { streamBufferLimit, wasmFilter } from "./envoy.js";
import { aiCacheJson, aiGuardJson, aiProxyJson, aiRatelimitJson, aiRouterJson, cacheEnvKeys, envKeys, entraTargets, guardEnvKeys, identityJson, keyAuthJson, routerEnvKeys } from "./filter-config.js";
import { moderationTarget } from "../guard-moderation.js";
import { mcpEnvKeys, mcpJson, mcpTargets } from "../mcp-config.js";
import { a2aEnvKeys, a2aJson, a2aTargets } from "../a2a-config.js";
import { cacheStoreTargets } from "../cache-config.js";
import { localReplyConfig } from "./local-reply.js";
import { rateLimitFilter, rateLimitPerRoute } from "./ratelimit.js";
import { ISTIO_STATS_FILE, istioStatsBootstrap } from "./istio-stats.js";

/**
 * The Istio releases the manifests are written and checked for (test/istio-crds.test.ts, against each
 * one's CRD schemas in test/fixtures/istio-crds/). Istio 1.30 builds its proxy from Envoy's
 * release/v1.38 branch, 1.31 from release/v1.39 (istio/proxy ENVOY_VERSION.txt on each release
 * branch: 1.38.4-dev and 1.39.1-dev on 2026-08-20). Sluice needs the filter-manager fix of Envoy
 * 1.37.6 (envoyproxy/envoy#46842, backported to v1.38 and v1.39 on 2026-08-26): Envoy 1.38.4 and
 * 1.39.1 on those branches, so only the Istio patch releases built on them qualify.
 */
export const ISTIO_VERSIONS = ["1.30", "1.31"] as const;

/** The gateway's pods as a WasmPlugin names them: a Gateway API Gateway, or their labels. */
function pluginTarget(cfg: GatewayConfig) {
  const s = cfg.istio;
  return s.targetRefs ? { targetRefs: s.targetRefs } : { selector: { matchLabels: s.podLabels } };
}

/** The same for an EnvoyFilter (targetRefs since Istio 1.22, istio/api#3160). */
function envoyFilterTarget(cfg: GatewayConfig) {
  const s = cfg.istio;
  return s.targetRefs ? { targetRefs: s.targetRefs } : { workloadSelector: { labels: s.podLabels } };
}

/**
 * The route action the EnvoyFilter MERGEs into the VirtualService's route named `sluice`. Istio merges
 * with protobuf merge semantics (pkg/proto/merge/merge.go, mergeMessage): a field the patch leaves out
 * keeps Istio's value, and a zero scalar is "not set", so `num_retries: 0` inside the wrapper cannot
 * lower the 2 retries Istio gives every route (pilot/pkg/networking/core/route/retry/retry.go,
 * defaultRetryOn "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes").
 * A retry under ai-proxy would repeat a request ai-proxy has already counted, behind its fallback, so:
 * - retry_on is replaced (a non-empty string does replace) by "retriable-headers" alone: with no
 *   retriable_headers listed it never matches a response, and it is not a reset or timeout condition
 *   (Envoy source/common/router/retry_state_impl.cc, wouldRetryFromHeaders / wouldRetryFromReset).
 * - num_retries 0 takes effect when the VirtualService says `retries: { attempts: 0 }`, as
 *   docs/deploy-istio.md asks: Istio then renders no retry policy and this one is the route's own.
 * - per_try_timeout is timeouts.first_byte, as in envoy.yaml (a Duration is replaced whole: Istio
 *   special-cases it). It is armed with or without retries (Envoy UpstreamRequest::setupPerTryTimeout)
 *   and only bounds the wait for the response headers.
 * - timeout: only when timeouts.total is set. Left out, the VirtualService's own `timeout` holds, and
 *   Istio's default is none (0s; pilot/pkg/networking/core/route/route.go, setTimeout): a stream is
 *   never cut by its age, only by idle_timeout.
 */
export function istioRouteAction(cfg: GatewayConfig): Record<string, unknown> {
  const t = cfg.timeouts;
  return {
    cluster_header: cfg.aiProxy.clusterHeader,
    ...(t.total === "0s" ? {} : { timeout: t.total }),
    idle_timeout: t.idle,
    retry_policy: { retry_on: "retriable-headers", num_retries: 0, ...(t.firstByte === "0s" ? {} : { per_try_timeout: t.firstByte }) },
  };
}

/** Istio's outbound cluster for a ServiceEntry host: outbound|<port>||<host>. */
export function istioCluster(i: Instance): string {
  const t = realTarget(i);
  return `outbound|${t.port}||${t.host}`;
}

/**
 * WasmPlugin failStrategy (istio/api extensions/v1alpha1/wasm.proto enum FailStrategy). FAIL_RELOAD
 * needs Istio >= 1.27 (istio/api#3471, 5e743e9a); it maps to Envoy's failure_policy FAIL_RELOAD with
 * Envoy's default backoff (1s).
 */
export const ISTIO_FAIL_STRATEGY: Record<FailurePolicyName, string> = { closed: "FAIL_CLOSE", open: "FAIL_OPEN", reload: "FAIL_RELOAD" };

/**
 * A WasmPlugin's url. With gateway.yaml `istio.image`, the OCI image `npm run oci` builds from build/<name>.wasm,
 * by digest (Istio then checks the pulled manifest against it): the digest is computed here from the same .wasm
 * with the same code (cli/oci-image.ts), so render needs build/ but not a built layout, and the two agree.
 * Without it, a file:// path: the committed example gateway.yaml has no `istio.image`, so the committed
 * envoy/istio files do not change whenever assembly/ (and so build/) does, and stay checkable against a fresh render.
 */
function wasmUrl(cfg: GatewayConfig, name: string): string {
  if (!cfg.istioImage) return `file://${WASM_DIR}/${name}.wasm`;
  const wasm = readFileSync(join(dirname(fileURLToPath(import.meta.url)), "..", "..", "build", `${name}.wasm`));
  const { registry, repository } = cfg.istioImage;
  return `oci://${registry}/${repository}/${name}@${wasmImage(name, wasm).manifest.digest}`;
}

/** Istio's WasmPlugin spec for one of the filters that hold the request headers. */
function istioWasmPlugin(cfg: GatewayConfig, name: FilterName, priority: number, env: string[], pluginConfig: unknown, phase = "UNSPECIFIED_PHASE") {
  return {
    apiVersion: "extensions.istio.io/v1alpha1",
    kind: "WasmPlugin",
    metadata: { name: `sluice-${name}`, namespace: cfg.istio.namespace },
    spec: {
      ...pluginTarget(cfg),
      url: wasmUrl(cfg, name),
      pluginName: name,
      phase,
      priority,
      failStrategy: ISTIO_FAIL_STRATEGY[cfg.failurePolicy[name]],
      type: "HTTP",
      ...(env.length ? { vmConfig: { env: env.map((n) => ({ name: n, valueFrom: "HOST" })) } } : {}),
      pluginConfig,
    },
  };
}

/** The EnvoyFilter file that carries ai-router, ai-guard, ai-ratelimit and ai-proxy with the knob WasmPlugin lacks. */
export const ISTIO_ENVOYFILTER = "sluice-envoyfilter.yaml";

/** Istio's cluster name for the rate limit service (a Service or ServiceEntry in the mesh). */
export function istioRateLimitCluster(d: { address: string; port: number }): string {
  return `outbound|${d.port}||${d.address}`;
}

export function renderIstio(cfg: GatewayConfig): Record<string, { comment: string; docs: unknown[] }> {
  const files: Record<string, { comment: string; docs: unknown[] }> = {};
  if (cfg.keyAuth.enabled) {
    files["key-auth.yaml"] = {
      comment: [
        "key-auth as an Istio WasmPlugin: phase AUTHN puts it before Istio's own authn/authz filters.",
        `url: the .wasm must be mounted at ${WASM_DIR} in the gateway pods (or push it as an OCI image and use oci://).`,
      ].join("\n"),
      docs: [istioWasmPlugin(cfg, "key-auth", 100, [], keyAuthJson(cfg), "AUTHN")],
    };
  }
  if (cfg.identity) {
    files["identity.yaml"] = {
      comment: [
        "identity as an Istio WasmPlugin: phase AUTHZ puts it after Istio's authentication filters (RequestAuthentication's",
        "jwt_authn, whose payload it reads: set identity.jwt_payload_key to the token's issuer, Istio's payload_in_metadata)",
        "and before Istio's authorization filters, so an AuthorizationPolicy sees the consumer.",
        `url: the .wasm must be mounted at ${WASM_DIR} in the gateway pods (or push it as an OCI image and use oci://).`,
      ].join("\n"),
      docs: [istioWasmPlugin(cfg, "identity", 100, [], identityJson(cfg), "AUTHZ")],
    };
  }
  const warning = (name: string) => [
    "",
    `WARNING: Istio's WasmPlugin API cannot set allow_on_headers_stop_iteration (Envoy >= 1.35), which ${name} needs:`,
    "without it Envoy withholds the request body from a filter that holds the headers, and requests stall.",
    `Apply ${ISTIO_ENVOYFILTER} INSTEAD of the ${cfg.mcp ? "mcp, " : ""}${cfg.a2a ? "a2a, " : ""}ai-router, ai-guard, ${cfg.aiCache ? "ai-cache, " : ""}ai-ratelimit and ai-proxy WasmPlugins (never both). These`,
    "manifests are kept for meshes whose Istio gains the knob.",
  ];
  const order = "In UNSPECIFIED_PHASE (the end of the chain, before the router) a higher priority runs first: ai-router 30, ai-guard 25, ai-cache 22, ai-ratelimit 20, ai-proxy 10.";
  // The chain, in order, for the EnvoyFilter: each is inserted just before the router.
  const chain: unknown[] = [];
  const mcpEnv = mcpEnvKeys(cfg.mcp);
  if (cfg.mcp) {
    // First in the chain before the router, so after key-auth (AUTHN) and identity (AUTHZ); its servers
    // are ServiceEntries in providers.yaml, named outbound|<port>||<host> in its configuration.
    const json = mcpJson(cfg.mcp, cfg.aiProxy.clusterHeader, istioCluster);
    files["mcp.yaml"] = {
      comment: [
        "mcp as an Istio WasmPlugin: the MCP endpoint in front of the MCP servers (docs/mcp.md); failStrategy FAIL_CLOSE, like key-auth.",
        "In UNSPECIFIED_PHASE a higher priority runs first: mcp 40 runs before ai-router 30.",
        ...warning("mcp"),
      ].join("\n"),
      docs: [istioWasmPlugin(cfg, "mcp", 40, mcpEnv, json)],
    };
    chain.push(wasmFilter("mcp", json, { failurePolicy: cfg.failurePolicy.mcp, env: mcpEnv, allowOnHeadersStopIteration: true }));
  }
  const a2aEnv = a2aEnvKeys(cfg.a2a);
  if (cfg.a2a) {
    const json = a2aJson(cfg.a2a, cfg.aiProxy.clusterHeader, cfg.keyAuth.header, istioCluster);
    files["a2a.yaml"] = {
      comment: [
        "a2a as an Istio WasmPlugin: A2A agents behind the gateway (docs/a2a.md); failStrategy FAIL_CLOSE, like key-auth.",
        "In UNSPECIFIED_PHASE a higher priority runs first: a2a 35 runs after mcp 40 and before ai-router 30.",
        ...warning("a2a"),
      ].join("\n"),
      docs: [istioWasmPlugin(cfg, "a2a", 35, a2aEnv, json)],
    };
    chain.push(wasmFilter("a2a", json, { failurePolicy: cfg.failurePolicy.a2a, env: a2aEnv, allowOnHeadersStopIteration: true }));
  }
  const routerEnv = routerEnvKeys(cfg);
  if (cfg.aiRouter) {
    const json = aiRouterJson(cfg, "env", istioCluster);
    files["ai-router.yaml"] = {
      comment: ["ai-router as an Istio WasmPlugin: decides each chat request's pool.", order, ...warning("ai-router")].join("\n"),
      docs: [istioWasmPlugin(cfg, "ai-router", 30, routerEnv, json)],
    };
    chain.push(wasmFilter("ai-router", json, { failurePolicy: cfg.failurePolicy["ai-router"], env: routerEnv, allowOnHeadersStopIteration: true }));
  }
  if (cfg.aiGuard) {
    const moderation = moderationTarget(cfg.aiGuard);
    const json = aiGuardJson(cfg, "env", moderation ? istioCluster(moderation) : undefined);
    files["ai-guard.yaml"] = {
      comment: [
        "ai-guard as an Istio WasmPlugin: blocks, masks or records what its detectors find in each request's text (failStrategy",
        "FAIL_CLOSE by default: a guard that fails open passes what it guards).",
        order,
        ...warning("ai-guard"),
      ].join("\n"),
      docs: [istioWasmPlugin(cfg, "ai-guard", 25, guardEnvKeys(cfg), json)],
    };
    chain.push(wasmFilter("ai-guard", json, { failurePolicy: cfg.failurePolicy["ai-guard"], env: guardEnvKeys(cfg), allowOnHeadersStopIteration: true }));
  }
  const cacheEnv = cacheEnvKeys(cfg);
  if (cfg.aiCache) {
    const json = aiCacheJson(cfg, "env", istioCluster);
    files["ai-cache.yaml"] = {
      comment: [
        "ai-cache as an Istio WasmPlugin: answers repeated chat requests from the proxy's shared data (failStrategy",
        "FAIL_OPEN by default: a cache that fails is skipped).",
        order,
        ...warning("ai-cache"),
      ].join("\n"),
      docs: [istioWasmPlugin(cfg, "ai-cache", 22, cacheEnv, json)],
    };
    chain.push(wasmFilter("ai-cache", json, { failurePolicy: cfg.failurePolicy["ai-cache"], env: cacheEnv, allowOnHeadersStopIteration: true }));
  }
  if (cfg.aiRatelimit) {
    const json = aiRatelimitJson(cfg);
    files["ai-ratelimit.yaml"] = {
      comment: [
        "ai-ratelimit as an Istio WasmPlugin: token limits per Envoy (counters in the proxy's shared data).",
        order,
        ...warning("ai-ratelimit"),
      ].join("\n"),
      docs: [istioWasmPlugin(cfg, "ai-ratelimit", 20, [], json)],
    };
    chain.push(wasmFilter("ai-ratelimit", json, { failurePolicy: cfg.failurePolicy["ai-ratelimit"], allowOnHeadersStopIteration: true }));
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
    docs: [istioWasmPlugin(cfg, "ai-proxy", 10, env, aiProxyIstio)],
  };
  chain.push(wasmFilter("ai-proxy", aiProxyIstio, { failurePolicy: cfg.failurePolicy["ai-proxy"], env, allowOnHeadersStopIteration: true }));
  const distributed = cfg.aiRatelimit?.distributed ?? null;
  if (distributed) chain.push(rateLimitFilter(istioRateLimitCluster(distributed), distributed));
  const hcm = "envoy.filters.network.http_connection_manager";
  const filterMatch = { context: "GATEWAY", listener: { filterChain: { filter: { name: hcm, subFilter: { name: "envoy.filters.http.router" } } } } };
  const allEnv = [...new Set([...env, ...routerEnv, ...guardEnvKeys(cfg), ...cacheEnv, ...mcpEnv, ...a2aEnv])];
  files[ISTIO_ENVOYFILTER] = {
    comment: [
      "The Sluice chain through an EnvoyFilter, because Istio's WasmPlugin cannot set allow_on_headers_stop_iteration.",
      `Needs Istio with Envoy >= ${ENVOY_VERSION_FLOOR}: Istio 1.30 (Envoy >= 1.38.4) and 1.31 (Envoy >= 1.39.1), which also have failStrategy FAIL_RELOAD (Istio >= 1.27); docs/deploy-istio.md. Inserts, in order, just before the router: ` +
        [cfg.mcp ? "mcp" : "", cfg.a2a ? "a2a" : "", cfg.aiRouter ? "ai-router" : "", cfg.aiGuard ? "ai-guard" : "", cfg.aiCache ? "ai-cache" : "", cfg.aiRatelimit ? "ai-ratelimit" : "", "ai-proxy", distributed ? "envoy.filters.http.ratelimit" : ""].filter(Boolean).join(", ") +
        " (key-auth stays a WasmPlugin in AUTHN),",
      "and makes the route named `sluice` pick its cluster from the header ai-proxy sets, with no retries and no total timeout",
      "(unless timeouts.total is set): ai-proxy owns retries, fallback and their accounting. Give your VirtualService's http route that name:",
      "  http: [{ name: sluice, retries: { attempts: 0 }, route: [{ destination: { host: api.openai.com } }] }]   # any destination; replaced",
      "It also gives the gateway's HTTP connection manager envoy.yaml's local_reply_config (Envoy's own errors in the client's API",
      `shape), and its listeners and provider clusters envoy.yaml's per_connection_buffer_limit_bytes (${CONNECTION_BUFFER_LIMIT}; Istio's EDGE`,
      "connection profile would set 32 KiB).",
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
        metadata: { name: "sluice", namespace: cfg.istio.namespace },
        spec: {
          ...envoyFilterTarget(cfg),
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
                  route: istioRouteAction(cfg),
                  ...(distributed ? { typed_per_filter_config: rateLimitPerRoute(distributed.rules) } : {}),
                },
              },
            },
            // Envoy's own local replies (413, 500, 503, 504) in the client's API shape, as in envoy.yaml.
            // Istio merges the typed_config into the HCM's own (envoyfilter/listener_patch.go
            // patchNetworkFilter, util.MergeAnyWithAny); Istio writes no local_reply_config itself.
            {
              applyTo: "NETWORK_FILTER",
              match: { context: "GATEWAY", listener: { filterChain: { filter: { name: hcm } } } },
              patch: {
                operation: "MERGE",
                value: {
                  name: hcm,
                  typed_config: {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    local_reply_config: localReplyConfig(),
                  },
                },
              },
            },
            // The client connection's buffer, as in envoy.yaml. Istio leaves it to Envoy's default (1 MiB)
            // unless ProxyConfig connectionSettings sets it (its EDGE profile, Istio 1.31: 32 KiB;
            // pilot/pkg/networking/core/gateway.go). Patches apply after the listener is built, so this holds.
            {
              applyTo: "LISTENER",
              match: { context: "GATEWAY" },
              patch: { operation: "MERGE", value: { per_connection_buffer_limit_bytes: CONNECTION_BUFFER_LIMIT } },
            },
            // The provider connections' buffer, as envoy.yaml's clusters: stated, as a ProxyConfig
            // connectionSettings (istio/api mesh/v1alpha1/proxy.proto) may lower it for every cluster.
            ...providerHosts(cfg).map((t) => ({
              applyTo: "CLUSTER",
              match: { context: "GATEWAY", cluster: { service: t.host, portNumber: t.port } },
              patch: { operation: "MERGE", value: { per_connection_buffer_limit_bytes: CONNECTION_BUFFER_LIMIT } },
            })),
          ],
        },
      },
    ],
  };
  files["providers.yaml"] = {
    comment: [
      "The provider endpoints as mesh-external services, one ServiceEntry and DestinationRule per host and port. The plugins'",
      "configurations name their clusters (outbound|<port>||<host>).",
      `Scoped to the gateway: in its namespace (${cfg.istio.namespace}), exported to that namespace only, and the DestinationRules'`,
      "TLS origination applies to the gateway's pods only (workloadSelector), so a sidecar elsewhere in the mesh that speaks TLS to",
      "the same host is not wrapped in a second TLS layer. No outlierDetection: ai-proxy owns provider health (docs/deploy-istio.md).",
    ].join("\n"),
    docs: providerDocs(cfg),
  };
  files[ISTIO_STATS_FILE] = istioStatsBootstrap(cfg);
  return files;
}

/** The distinct provider hosts and ports (with the dedicated embeddings endpoint and ai-guard's moderation service): one Istio service each. */
function providerHosts(cfg: GatewayConfig): { host: string; port: number; tls: boolean }[] {
  const external = [...cfg.providers];
  const emb = cfg.aiRouter?.embeddings ?? cfg.aiCache?.embeddings;
  if (emb?.dedicated) external.push(emb.target);
  const moderation = moderationTarget(cfg.aiGuard);
  if (moderation) external.push(moderation);
  // MCP servers outside the mesh; one that is a Service of the cluster (*.svc[.cluster.local]) already has its cluster.
  external.push(...[...mcpTargets(cfg.mcp), ...a2aTargets(cfg.a2a), ...cacheStoreTargets(cfg.aiCache), ...entraTargets(cfg)].filter((t) => !/\.svc(\.cluster\.local)?$/.test(t.url.hostname)));
  const byKey = new Map<string, { host: string; port: number; tls: boolean }>();
  for (const i of external) {
    const t = realTarget(i);
    const host = t.host.toLowerCase();
    if (!byKey.has(`${host}:${t.port}`)) byKey.set(`${host}:${t.port}`, { host, port: t.port, tls: t.tls });
  }
  return [...byKey.values()];
}

/**
 * A ServiceEntry and a DestinationRule per distinct provider host and port (several instances may share
 * api.openai.com; two DestinationRules for one host would conflict). Scoped to the gateway:
 * - in the gateway's namespace, `exportTo: ["."]`: no other namespace's sidecars see them;
 * - the DestinationRule's `workloadSelector` (istio/api#2207, Istio 1.14) limits its TLS origination to
 *   the gateway's pods. Istio applies a selector only within the rule's own namespace and refuses one
 *   exported beyond it (pkg/config/validation/validation.go, validateExportTo), hence both.
 * No outlierDetection: each host is one DNS endpoint, and Envoy's panic threshold sends traffic to a
 * lone ejected host anyway, so ejection changes nothing; ai-proxy's passive and active health decide
 * which instance gets a request, and it falls back to another.
 */
function providerDocs(cfg: GatewayConfig): unknown[] {
  const docs: unknown[] = [];
  for (const t of providerHosts(cfg)) {
    const host = t.host;
    const name = t.port === (t.tls ? 443 : 80) ? `sluice-${host}` : `sluice-${host}-${t.port}`;
    const metadata = { name, namespace: cfg.istio.namespace };
    docs.push({
      apiVersion: "networking.istio.io/v1",
      kind: "ServiceEntry",
      metadata,
      spec: {
        hosts: [host],
        exportTo: ["."],
        location: "MESH_EXTERNAL",
        resolution: "DNS",
        ports: [{ number: t.port, name: t.tls ? "https" : "http", protocol: t.tls ? "HTTPS" : "HTTP" }],
      },
    });
    docs.push({
      apiVersion: "networking.istio.io/v1",
      kind: "DestinationRule",
      metadata,
      spec: {
        host,
        exportTo: ["."],
        workloadSelector: { matchLabels: cfg.istio.podLabels },
        trafficPolicy: {
          ...(t.tls ? { tls: { mode: "SIMPLE", sni: host } } : {}),
          connectionPool: { tcp: { connectTimeout: cfg.timeouts.connect } },
        },
      },
    });
  }
  return docs;
}
