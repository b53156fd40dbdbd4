// Istio manifests: WasmPlugins, the EnvoyFilter that carries the chain, and the providers as mesh-external services.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { GatewayConfig, Instance } from "../gateway-config.js";
import { wasmImage } from "../oci-image.js";
import { realTarget } from "./clusters.js";
import { WASM_DIR } from "./constants.js";
import { streamBufferLimit, routeAction, wasmFilter } from "./envoy.js";
import { aiProxyJson, aiRatelimitJson, aiRouterJson, envKeys, keyAuthJson, routerEnvKeys } from "./filter-config.js";
import { rateLimitFilter, rateLimitPerRoute } from "./ratelimit.js";

const ISTIO_NAMESPACE = "istio-system";
const ISTIO_SELECTOR = { istio: "ingressgateway" };

/** Istio's outbound cluster for a ServiceEntry host: outbound|<port>||<host>. */
export function istioCluster(i: Instance): string {
  const t = realTarget(i);
  return `outbound|${t.port}||${t.host}`;
}

/**
 * A WasmPlugin's url. With gateway.yaml `istio.image`, the OCI image `npm run oci` builds from build/<name>.wasm,
 * by digest (Istio then checks the pulled manifest against it): the digest is computed here from the same .wasm
 * with the same code (scripts/oci-image.ts), so render needs build/ but not a built layout, and the two agree.
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
function istioWasmPlugin(cfg: GatewayConfig, name: string, priority: number, env: string[], pluginConfig: unknown) {
  return {
    apiVersion: "extensions.istio.io/v1alpha1",
    kind: "WasmPlugin",
    metadata: { name: `sluice-${name}`, namespace: ISTIO_NAMESPACE },
    spec: {
      selector: { matchLabels: ISTIO_SELECTOR },
      url: wasmUrl(cfg, name),
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
            url: wasmUrl(cfg, "key-auth"),
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
      docs: [istioWasmPlugin(cfg, "ai-router", 30, routerEnv, json)],
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
      docs: [istioWasmPlugin(cfg, "ai-ratelimit", 20, [], json)],
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
    docs: [istioWasmPlugin(cfg, "ai-proxy", 10, env, aiProxyIstio)],
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

