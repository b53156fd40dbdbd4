// `npm run render`: gateway.yaml -> envoy/envoy.yaml, envoy/envoy.mock.yaml and envoy/istio/*.yaml.
//   tsx scripts/render.ts [--config gateway.yaml] [--out envoy]
// Nothing is written unless every file renders: each goes to a temporary file first and is renamed
// into place only when all are ready.
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { stringify } from "yaml";
import { GatewayConfigError, loadGatewayConfig, type GatewayConfig, type Instance } from "./gateway-config.js";

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
  "request_type", "consumer", "provider", "instance", "model", "request_model", "ttft_ms",
  "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens", "usage_source",
] as const;

/** Labels Sluice's metric names carry as `;key=value` (assembly/filters/ai-proxy/metrics.ts). */
export const METRIC_TAGS = ["provider", "model", "consumer", "request_type", "status", "rule", "instance", "pool"] as const;

export function accessLogFormat(): Record<string, string> {
  const f: Record<string, string> = {
    start_time: "%START_TIME%",
    method: "%REQ(:METHOD)%",
    path: "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
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
    cluster_header: a.clusterHeader,
    ...(a.maxRequestBodyBytes !== undefined ? { max_request_body_bytes: a.maxRequestBodyBytes } : {}),
  };
}

/** The host_env_keys ai-proxy's VM needs: every api_key_env, once. */
export function envKeys(cfg: GatewayConfig): string[] {
  return [...new Set(cfg.providers.map((i) => i.apiKeyEnv).filter((k): k is string => !!k))];
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
  // Envoy >= 1.35 (envoyproxy/envoy#40213): lets ai-proxy hold the headers while it reads the body.
  if (extra.allowOnHeadersStopIteration) config.allow_on_headers_stop_iteration = true;
  return {
    name: `sluice.${name.replace(/-/g, "_")}`,
    typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm", config },
  };
}

function isIp(host: string): boolean {
  return /^[0-9.]+$/.test(host) || host.includes(":");
}

function cluster(cfg: GatewayConfig, i: Instance, target: { host: string; port: number; tls: boolean }) {
  const c: Record<string, unknown> = {
    name: i.name,
    type: isIp(target.host) ? "STATIC" : target.tls ? "LOGICAL_DNS" : "STRICT_DNS",
    connect_timeout: cfg.timeouts.connect,
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
  const httpFilters: unknown[] = [];
  if (cfg.keyAuth.enabled) httpFilters.push(wasmFilter("key-auth", keyAuthJson(cfg)));
  // ai-router and ai-ratelimit go here once they exist (gateway.yaml holds placeholders).
  httpFilters.push(wasmFilter("ai-proxy", aiProxyJson(cfg, mock ? "mock" : "env"), { env: mock ? [] : envKeys(cfg), allowOnHeadersStopIteration: true }));
  httpFilters.push({ name: "envoy.filters.http.router", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } });

  const admin = mock ? { address: "0.0.0.0", port: cfg.admin.port } : cfg.admin;
  return {
    admin: { address: { socket_address: { address: admin.address, port_value: admin.port } } },
    stats_config: { stats_tags: statsTags() },
    static_resources: {
      listeners: [
        {
          name: "sluice",
          address: { socket_address: { address: cfg.listener.address, port_value: cfg.listener.port } },
          filter_chains: [
            {
              filters: [
                {
                  name: "envoy.filters.network.http_connection_manager",
                  typed_config: {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    stat_prefix: "sluice",
                    codec_type: "AUTO",
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
                              // ai-proxy names the instance's cluster in this header and clears the route cache.
                              route: { cluster_header: cfg.aiProxy.clusterHeader, timeout: cfg.timeouts.request, idle_timeout: cfg.timeouts.idle },
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
      clusters: cfg.providers.map((i) => cluster(cfg, i, mock ? mockTarget(i) : realTarget(i))),
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
  const aiProxyIstio = aiProxyJson(cfg, "env", istioCluster);
  const env = envKeys(cfg);
  files["ai-proxy.yaml"] = {
    comment: [
      "ai-proxy as an Istio WasmPlugin: UNSPECIFIED_PHASE is the end of the chain, just before the router;",
      "ai-router (priority 30) and ai-ratelimit (priority 20) will sit before it in the same phase (higher runs first).",
      "",
      "WARNING: Istio's WasmPlugin API cannot set allow_on_headers_stop_iteration (Envoy >= 1.35), which ai-proxy",
      "needs: without it Envoy withholds the request body from a filter that holds the headers, and requests stall.",
      "Apply ai-proxy-envoyfilter.yaml INSTEAD of this file (never both). This manifest is kept for meshes whose",
      "Istio gains the knob. Provider clusters come from providers.yaml (ServiceEntry + DestinationRule).",
    ].join("\n"),
    docs: [
      {
        apiVersion: "extensions.istio.io/v1alpha1",
        kind: "WasmPlugin",
        metadata: { name: "sluice-ai-proxy", namespace: ISTIO_NAMESPACE },
        spec: {
          selector: { matchLabels: ISTIO_SELECTOR },
          url: wasmUrl("ai-proxy"),
          pluginName: "ai-proxy",
          phase: "UNSPECIFIED_PHASE",
          priority: 10,
          failStrategy: "FAIL_CLOSE",
          type: "HTTP",
          vmConfig: { env: env.map((name) => ({ name, valueFrom: "HOST" })) },
          pluginConfig: aiProxyIstio,
        },
      },
    ],
  };
  const filter = wasmFilter("ai-proxy", aiProxyIstio, { env, allowOnHeadersStopIteration: true });
  files["ai-proxy-envoyfilter.yaml"] = {
    comment: [
      "ai-proxy through an EnvoyFilter, because Istio's WasmPlugin cannot set allow_on_headers_stop_iteration.",
      "Needs Istio with Envoy >= 1.35. Inserts the Wasm filter just before the router and makes the route named",
      "`sluice` pick its cluster from the header ai-proxy sets. Give your VirtualService's http route that name:",
      "  http: [{ name: sluice, route: [{ destination: { host: api.openai.com } }] }]   # any destination; replaced",
      `The provider keys (${env.join(", ") || "none"}) must be in the gateway pods' environment.`,
    ].join("\n"),
    docs: [
      {
        apiVersion: "networking.istio.io/v1alpha3",
        kind: "EnvoyFilter",
        metadata: { name: "sluice-ai-proxy", namespace: ISTIO_NAMESPACE },
        spec: {
          workloadSelector: { labels: ISTIO_SELECTOR },
          configPatches: [
            {
              applyTo: "HTTP_FILTER",
              match: {
                context: "GATEWAY",
                listener: { filterChain: { filter: { name: "envoy.filters.network.http_connection_manager", subFilter: { name: "envoy.filters.http.router" } } } },
              },
              patch: { operation: "INSERT_BEFORE", value: filter },
            },
            {
              applyTo: "HTTP_ROUTE",
              match: { context: "GATEWAY", routeConfiguration: { vhost: { route: { name: "sluice" } } } },
              patch: {
                operation: "MERGE",
                value: { route: { cluster_header: cfg.aiProxy.clusterHeader, timeout: cfg.timeouts.request, idle_timeout: cfg.timeouts.idle } },
              },
            },
          ],
        },
      },
    ],
  };
  const docs: unknown[] = [];
  for (const i of cfg.providers) {
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
    comment: "The provider endpoints as mesh-external services. ai-proxy's pluginConfig names their clusters (outbound|<port>||<host>).",
    docs,
  };
  return files;
}

// ------------------------------------------------------------------------------------------ files

const HEADER = "# Rendered from gateway.yaml by `npm run render` (scripts/render.ts). Edit gateway.yaml, not this file.\n";

export function envoyYamlText(cfg: GatewayConfig, opts: EnvoyRenderOptions = {}): string {
  const note = opts.mock
    ? "# docker compose (envoy/docker-compose.yaml): every cluster points at the mock provider service and a dummy key.\n"
    : "# Needs Envoy >= 1.35 (ai-proxy's allow_on_headers_stop_iteration) with the v8 Wasm runtime.\n";
  return HEADER + note + stringify(renderEnvoy(cfg, opts), { lineWidth: 0, aliasDuplicateObjects: false });
}

function istioText(file: { comment: string; docs: unknown[] }): string {
  const comment = file.comment.split("\n").map((l) => (l ? `# ${l}` : "#")).join("\n");
  return HEADER + comment + "\n" + file.docs.map((d) => stringify(d, { lineWidth: 0, aliasDuplicateObjects: false })).join("---\n");
}

/** Every rendered file, by path relative to the output directory. */
export function renderFiles(cfg: GatewayConfig): Record<string, string> {
  const out: Record<string, string> = {
    "envoy.yaml": envoyYamlText(cfg),
    "envoy.mock.yaml": envoyYamlText(cfg, { mock: true }),
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

/** Loads gateway.yaml and writes every file; throws GatewayConfigError (nothing written) on a bad config. */
export function render(opts: RenderOptions = {}): { cfg: GatewayConfig; written: string[] } {
  const config = resolve(opts.config ?? join(root, "gateway.yaml"));
  const outDir = resolve(opts.outDir ?? join(root, "envoy"));
  const cfg = loadGatewayConfig(config, { env: opts.env });
  return { cfg, written: writeAtomically(outDir, renderFiles(cfg)) };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    const { written } = render({ config: arg("config"), outDir: arg("out") });
    for (const f of written) console.log(`wrote ${f}`);
  } catch (e) {
    if (e instanceof GatewayConfigError) {
      console.error(`render: ${e.file} is not valid; nothing was written.\n${e.message}`);
      process.exit(1);
    }
    throw e;
  }
}
