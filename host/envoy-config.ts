// Reads the part of an Envoy bootstrap (envoy/envoy.yaml) that the local gateway runs: the one
// listener, its http_connection_manager (wasm filters in order, then the router), the route that
// takes its cluster from a header, the clusters' endpoints, the file access log, the admin port and
// stats_config.stats_tags. Anything else that would change how requests are handled is refused with
// a message naming it, rather than ignored. (Cluster health checks and outlier detection are read by
// Envoy only; the local gateway has one endpoint per cluster and nothing to eject it in favour of.)
// Listed in `notRun` instead: Envoy's global rate limit filter (Sluice's distributed mode) with
// failure_mode_deny false. The local gateway has no rate limit service, and Envoy with that setting
// admits every request the service cannot answer, which is what the local gateway does. And what
// only reports (the OpenTelemetry access logger and tracing): they change no answer.
import type { FailurePolicy, FilterOptions } from "./plugin.js";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { discoveredFilter, type EcdsReader } from "./ecds.js";
import { parse } from "yaml";
import { LocalReplyConfigError, parseLocalReplyConfig, type LocalReplyConfig } from "./local-reply.js";
import type { HistogramBuckets, TagSpecifier } from "./metrics.js";
import type { FilterMetadata, Json, JsonObject, Locality, NodeInfo } from "./proto.js";
import { NATIVE_TYPES, NativeConfigError, nativeFilter, parseCorsPolicy, PER_ROUTE_TYPES, type NativeFilter } from "./native/index.js";
import { CORS_POLICY_TYPE } from "./native/cors.js";
import { stringMatcher } from "./native/match.js";
import { parseListenerTls, type ListenerTls } from "./listener-tls.js";

const HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const WASM = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
const FILE_LOG = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog";
const OTEL_LOG = "type.googleapis.com/envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig";
const TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
const STRING_VALUE = "type.googleapis.com/google.protobuf.StringValue";
const RATELIMIT = "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit";
const RATELIMIT_PER_ROUTE = "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimitPerRoute";

export interface WasmFilterConfig {
  /** http_filters[].name */
  filterName: string;
  /** PluginConfig.name (plugin_name) */
  name: string;
  rootId: string;
  vmId: string;
  runtime: string;
  /** vm_config.code.local.filename as written */
  wasmFile: string;
  configuration: string;
  failOpen: boolean;
  /** PluginConfig.failure_policy (Envoy >= 1.33), as its enum name; "UNSPECIFIED" when absent. */
  failurePolicy: FailurePolicy;
  /** PluginConfig.reload_config.backoff.base_interval in ms (Envoy default 1s). */
  reloadBackoffMs: number;
  allowOnHeadersStopIteration: boolean;
  /** vm_config.environment_variables */
  hostEnvKeys: string[];
  keyValues: Record<string, string>;
}

export interface ClusterConfig {
  name: string;
  /** scheme://host:port; the scheme is https when the cluster has a TLS transport socket. */
  url: string;
  sni: string | null;
  connectTimeoutMs: number;
  /** per_connection_buffer_limit_bytes (Envoy's default 1 MiB). */
  bufferLimitBytes: number;
  /** metadata.filter_metadata (xds.cluster_metadata); absent when the cluster has none. */
  metadata?: FilterMetadata;
  /** The endpoint's lb_endpoints[0].metadata (xds.upstream_host_metadata) and its locality
   * (upstream.locality); absent when not given. */
  hostMetadata?: FilterMetadata;
  hostLocality?: Locality;
}

export type AccessLogFormat = { json: Record<string, unknown> } | { text: string };

export interface LocalGatewayConfig {
  /** bufferLimitBytes: the listener's per_connection_buffer_limit_bytes (Envoy's default 1 MiB);
   * tls: the filter chain's DownstreamTlsContext (absent: plaintext), host/listener-tls.ts. */
  listener: { address: string; port: number; bufferLimitBytes: number; tls?: ListenerTls };
  admin: { address: string; port: number } | null;
  filters: WasmFilterConfig[];
  /** Envoy's native http filters (jwt_authn, rbac, cors, local_ratelimit, ext_authz, header_mutation),
   * in order, each with its place among the wasm filters (wasmBefore; host/native/). */
  natives: NativeFilter[];
  /** timeoutMs: route timeout (total); idleTimeoutMs: route idle_timeout; firstByteTimeoutMs:
   * retry_policy.per_try_timeout (ignored by Envoy once the response has started). 0: off.
   * requestBodyBufferLimitBytes: the route's request_body_buffer_limit (null when unset). */
  route: { clusterHeader: string; timeoutMs: number; idleTimeoutMs: number; firstByteTimeoutMs: number; requestBodyBufferLimitBytes: number | null };
  /** The HCM's local_reply_config, null when absent. */
  localReply: LocalReplyConfig | null;
  clusters: Record<string, ClusterConfig>;
  accessLog: { path: string; format: AccessLogFormat } | null;
  statsTags: TagSpecifier[];
  /** stats_config.histogram_bucket_settings, in order (the first match wins). */
  histogramBuckets: HistogramBuckets[];
  /** http filters Envoy runs that the local gateway does not, each with the reason. */
  notRun: { name: string; why: string }[];
  /** The route's and its virtual host's name and metadata.filter_metadata (xds.route_name,
   * route_metadata, virtual_host_name, virtual_host_metadata). */
  routeInfo: { name: string; metadata: FilterMetadata; virtualHost: { name: string; metadata: FilterMetadata } };
  /** The bootstrap's node (xds.node). */
  node: NodeInfo;
  /** The listener's metadata and traffic_direction, the filter chain's name (xds.listener_*,
   * xds.filter_chain_name). */
  listenerInfo: { metadata: FilterMetadata; direction: number; filterChainName: string };
}

export class EnvoyConfigError extends Error {
  constructor(message: string) {
    super(`envoy.yaml: ${message}`);
    this.name = "EnvoyConfigError";
  }
}

/** google.protobuf.Duration JSON ("1.5s") to milliseconds. */
export function durationMs(v: unknown, at: string): number {
  if (typeof v !== "string" || !/^[0-9]+(\.[0-9]{1,9})?s$/.test(v)) throw new EnvoyConfigError(`${at}: expected a duration such as "5s", got ${JSON.stringify(v)}`);
  return Math.round(Number(v.slice(0, -1)) * 1000);
}

/** Envoy's default per_connection_buffer_limit_bytes (listener and cluster): 1 MiB. */
const DEFAULT_BUFFER_LIMIT = 1024 * 1024;

/** A UInt32Value / UInt64Value byte count (proto3 JSON: a number, or a decimal string for 64 bits). */
function bytes(v: unknown, at: string, fallback: number): number {
  if (v === undefined) return fallback;
  const n = typeof v === "string" && /^[0-9]+$/.test(v) ? Number(v) : v;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) throw new EnvoyConfigError(`${at}: expected a byte count, got ${JSON.stringify(v)}`);
  return n;
}

function obj(v: unknown, at: string): Record<string, any> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new EnvoyConfigError(`${at}: expected a mapping`);
  return v as Record<string, any>;
}

function list(v: unknown, at: string): any[] {
  if (!Array.isArray(v)) throw new EnvoyConfigError(`${at}: expected a list`);
  return v;
}

function one(v: unknown, at: string): any {
  const l = list(v, at);
  if (l.length !== 1) throw new EnvoyConfigError(`${at}: the local gateway runs exactly one (found ${l.length})`);
  return l[0];
}

function typed(v: unknown, type: string, at: string): Record<string, any> {
  const o = obj(v, at);
  if (o["@type"] !== type) throw new EnvoyConfigError(`${at}: the local gateway does not run ${o["@type"] ?? "(no @type)"} (expected ${type})`);
  return o;
}

/** A google.protobuf.Struct in YAML: any mapping of JSON values. */
function struct(v: unknown, at: string): JsonObject {
  const o = obj(v, at);
  const check = (x: unknown, path: string): Json => {
    if (x === null || typeof x === "string" || typeof x === "boolean") return x;
    if (typeof x === "number") return x;
    if (Array.isArray(x)) return x.map((e, i) => check(e, `${path}[${i}]`));
    if (typeof x === "object") return Object.fromEntries(Object.entries(x as object).map(([k, e]) => [k, check(e, `${path}.${k}`)]));
    throw new EnvoyConfigError(`${path}: not a JSON value`);
  };
  return check(o, at) as JsonObject;
}

/**
 * envoy.config.core.v3.Metadata: filter_metadata (namespace -> Struct). typed_filter_metadata holds
 * Any messages the local gateway cannot decode: refused rather than served differently.
 */
function metadataOf(v: unknown, at: string): FilterMetadata {
  if (v === undefined) return {};
  const m = obj(v, at);
  for (const k of Object.keys(m)) {
    if (k !== "filter_metadata") throw new EnvoyConfigError(`${at}.${k}: the local gateway reads filter_metadata only`);
  }
  const out: FilterMetadata = {};
  for (const [ns, fields] of Object.entries(obj(m.filter_metadata ?? {}, `${at}.filter_metadata`))) {
    if (!ns) throw new EnvoyConfigError(`${at}.filter_metadata: a namespace must not be empty`);
    out[ns] = struct(fields, `${at}.filter_metadata.${ns}`);
  }
  return out;
}

function nodeOf(v: unknown): NodeInfo {
  if (v === undefined) return {};
  const n = obj(v, "node");
  const out: NodeInfo = {};
  if (n.id !== undefined) out.id = String(n.id);
  if (n.cluster !== undefined) out.cluster = String(n.cluster);
  if (n.metadata !== undefined) out.metadata = struct(n.metadata, "node.metadata");
  if (n.locality !== undefined) out.locality = localityOf(n.locality, "node.locality");
  return out;
}

function localityOf(v: unknown, at: string): Locality {
  const l = obj(v, at);
  const loc: Locality = {};
  if (l.region !== undefined) loc.region = String(l.region);
  if (l.zone !== undefined) loc.zone = String(l.zone);
  if (l.sub_zone !== undefined) loc.subZone = String(l.sub_zone);
  return loc;
}

const TRAFFIC_DIRECTION: Record<string, number> = { UNSPECIFIED: 0, INBOUND: 1, OUTBOUND: 2 };

function socket(v: unknown, at: string): { address: string; port: number } {
  const s = obj(obj(v, at).socket_address, `${at}.socket_address`);
  if (typeof s.address !== "string" || !Number.isInteger(s.port_value)) throw new EnvoyConfigError(`${at}.socket_address: needs address and port_value`);
  return { address: s.address, port: s.port_value };
}

// envoy/extensions/wasm/v3/wasm.proto enum FailurePolicy (proto3 JSON: the name or the number).
const FAILURE_POLICIES: FailurePolicy[] = ["UNSPECIFIED", "FAIL_RELOAD", "FAIL_CLOSED", "FAIL_OPEN"];

/** failure_policy and reload_config, checked as Envoy's PluginConfig constructor checks them. */
function failurePolicy(c: Record<string, any>, at: string): { failurePolicy: FailurePolicy; reloadBackoffMs: number } {
  const v = c.failure_policy ?? "UNSPECIFIED";
  const policy = typeof v === "number" ? FAILURE_POLICIES[v] : FAILURE_POLICIES.find((p) => p === v);
  if (!policy) throw new EnvoyConfigError(`${at}.failure_policy: unknown failure policy ${JSON.stringify(v)}`);
  if (c.fail_open === true && policy !== "UNSPECIFIED") {
    throw new EnvoyConfigError(`${at}: only one of fail_open or failure_policy can be set`);
  }
  const base = c.reload_config?.backoff?.base_interval;
  return { failurePolicy: policy, reloadBackoffMs: base === undefined ? 1000 : durationMs(base, `${at}.reload_config.backoff.base_interval`) };
}

function wasmFilter(f: Record<string, any>, at: string): WasmFilterConfig {
  const w = typed(f.typed_config, WASM, `${at}.typed_config`);
  const c = obj(w.config, `${at}.typed_config.config`);
  const vm = obj(c.vm_config, `${at}.typed_config.config.vm_config`);
  const file = vm.code?.local?.filename;
  if (typeof file !== "string") throw new EnvoyConfigError(`${at}: vm_config.code.local.filename is required (the local gateway loads local files only)`);
  const conf = c.configuration;
  let configuration = "";
  if (conf !== undefined) {
    // StringValue (and BytesValue) configurations reach the plugin without the wrapper.
    typed(conf, STRING_VALUE, `${at}.typed_config.config.configuration`);
    configuration = String(conf.value ?? "");
  }
  const env = vm.environment_variables ?? {};
  return {
    filterName: String(f.name),
    name: String(c.name ?? ""),
    rootId: String(c.root_id ?? ""),
    vmId: String(vm.vm_id ?? ""),
    runtime: String(vm.runtime ?? ""),
    wasmFile: file,
    configuration,
    failOpen: c.fail_open === true,
    ...failurePolicy(c, `${at}.typed_config.config`),
    allowOnHeadersStopIteration: c.allow_on_headers_stop_iteration === true,
    hostEnvKeys: (env.host_env_keys ?? []).map(String),
    keyValues: Object.fromEntries(Object.entries(env.key_values ?? {}).map(([k, v]) => [k, String(v)])),
  };
}

function cluster(c: Record<string, any>, at: string): ClusterConfig {
  const name = String(c.name);
  const la = obj(c.load_assignment, `${at}.load_assignment`);
  const eps = one(la.endpoints, `${at}.load_assignment.endpoints`);
  const lb = one(eps.lb_endpoints, `${at}.load_assignment.endpoints[0].lb_endpoints`);
  const addr = socket(lb.endpoint?.address, `${at}...endpoint.address`);
  let sni: string | null = null;
  if (c.transport_socket !== undefined) {
    const tls = typed(c.transport_socket.typed_config, TLS, `${at}.transport_socket.typed_config`);
    sni = typeof tls.sni === "string" ? tls.sni : null;
  }
  const host = addr.address.includes(":") ? `[${addr.address}]` : addr.address;
  return {
    name,
    url: `${c.transport_socket ? "https" : "http"}://${host}:${addr.port}`,
    sni,
    connectTimeoutMs: c.connect_timeout === undefined ? 5000 : durationMs(c.connect_timeout, `${at}.connect_timeout`),
    bufferLimitBytes: bytes(c.per_connection_buffer_limit_bytes, `${at}.per_connection_buffer_limit_bytes`, DEFAULT_BUFFER_LIMIT),
    ...(c.metadata === undefined ? {} : { metadata: metadataOf(c.metadata, `${at}.metadata`) }),
    ...(lb.metadata === undefined ? {} : { hostMetadata: metadataOf(lb.metadata, `${at}...lb_endpoints[0].metadata`) }),
    ...(eps.locality === undefined ? {} : { hostLocality: localityOf(eps.locality, `${at}.load_assignment.endpoints[0].locality`) }),
  };
}

/**
 * route.retry_policy: the local gateway reads per_try_timeout (Sluice's first-byte timeout) and runs no
 * retries itself (ai-proxy falls back), so a policy that would retry is refused rather than ignored.
 * Envoy drops a per-try timeout at or above the route timeout (FilterUtility::finalTimeout); the
 * caller compares the two.
 */
function perTryTimeoutMs(rp: unknown): number {
  if (rp === undefined) return 0;
  const p = obj(rp, "routes[0].route.retry_policy");
  for (const k of Object.keys(p)) {
    if (k !== "per_try_timeout" && k !== "num_retries" && k !== "retry_on") throw new EnvoyConfigError(`routes[0].route.retry_policy.${k}: the local gateway does not run it`);
  }
  if (p.retry_on && p.num_retries !== 0) throw new EnvoyConfigError("routes[0].route.retry_policy: the local gateway does not retry (give num_retries: 0)");
  return p.per_try_timeout === undefined ? 0 : durationMs(p.per_try_timeout, "routes[0].route.retry_policy.per_try_timeout");
}

/** A native filter's typed_config refusal, as every other refusal of envoy.yaml. */
function native<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof NativeConfigError) throw new EnvoyConfigError(e.message);
    throw e;
  }
}

export function parseEnvoyConfig(text: string, readEcds: EcdsReader = noEcds): LocalGatewayConfig {
  const root = obj(parse(text), "(root)");
  const sr = obj(root.static_resources, "static_resources");
  const listener = obj(one(sr.listeners, "static_resources.listeners"), "static_resources.listeners[0]");
  const chain = obj(one(listener.filter_chains, "listeners[0].filter_chains"), "listeners[0].filter_chains[0]");
  const hcmFilter = obj(one(chain.filters, "filter_chains[0].filters"), "filter_chains[0].filters[0]");
  const hcm = typed(hcmFilter.typed_config, HCM, "filter_chains[0].filters[0].typed_config");

  const filters: WasmFilterConfig[] = [];
  const nativeRaw: { name: string; typedConfig: unknown; at: string; wasmBefore: number }[] = [];
  const notRun: LocalGatewayConfig["notRun"] = [];
  const httpFilters = list(hcm.http_filters, "http_filters");
  httpFilters.forEach((entry, i) => {
    let f = entry;
    const at = `http_filters[${i}]`;
    if (obj(f, at).config_discovery !== undefined) {
      // ECDS (host/ecds.ts): the filter's configuration lives in its own file.
      try {
        f = discoveredFilter(f, at, readEcds);
      } catch (e) {
        throw new EnvoyConfigError((e as Error).message);
      }
    }
    const type = f.typed_config?.["@type"];
    if (type === ROUTER) {
      if (i !== httpFilters.length - 1) throw new EnvoyConfigError(`${at}: the router must be the last http filter`);
      return;
    }
    if (type === RATELIMIT) {
      if (f.typed_config.failure_mode_deny === true) throw new EnvoyConfigError(`${at}: the local gateway has no rate limit service; it can stand in for Envoy's global rate limit filter only with failure_mode_deny false (requests admitted when the service cannot answer)`);
      notRun.push({ name: String(f.name), why: "global rate limit (Envoy and a rate limit service only; with failure_mode_deny false Envoy admits what the service cannot answer, as the local gateway does)" });
      return;
    }
    if (NATIVE_TYPES.includes(type)) {
      // In the chain where envoy.yaml lists it, among the wasm filters (Stream places it by wasmBefore).
      nativeRaw.push({ name: String(f.name), typedConfig: f.typed_config, at: `${at}.typed_config`, wasmBefore: filters.length });
      return;
    }
    if (type !== WASM) throw new EnvoyConfigError(`${at}: the local gateway does not run ${type ?? "(no @type)"} (it runs wasm, jwt_authn, rbac, cors, local_ratelimit, ext_authz, header_mutation, and the router)`);
    filters.push(wasmFilter(f, at));
  });
  if (httpFilters.at(-1)?.typed_config?.["@type"] !== ROUTER) throw new EnvoyConfigError("http_filters: the last filter must be envoy.filters.http.router");

  const rc = obj(hcm.route_config, "route_config");
  const vh = obj(one(rc.virtual_hosts, "route_config.virtual_hosts"), "route_config.virtual_hosts[0]");
  const r = obj(one(vh.routes, "virtual_hosts[0].routes"), "virtual_hosts[0].routes[0]");
  if (r.match?.prefix !== "/") throw new EnvoyConfigError("routes[0].match: the local gateway runs one route matching prefix /");
  // The native filters' per-route configs, under the filter's name: the route's, then the virtual
  // host's (Envoy's resolveMostSpecificPerFilterConfig / getAllPerFilterConfig).
  const perRoute = new Map<string, { config: unknown; at: string }[]>();
  const perFilter = (tpfc: unknown, at: string, extra: (name: string, c: any) => boolean) => {
    for (const [name, c] of Object.entries(obj(tpfc ?? {}, at))) {
      const type = (c as any)?.["@type"];
      const f = nativeRaw.find((n) => n.name === name);
      if (f && PER_ROUTE_TYPES[(f.typedConfig as any)?.["@type"]] === type) perRoute.set(name, [...(perRoute.get(name) ?? []), { config: c, at: `${at}.${name}` }]);
      // Envoy loads a CorsPolicy by its type; only a cors filter of that name reads it.
      else if (type === CORS_POLICY_TYPE && !f) native(() => parseCorsPolicy(c, `${at}.${name}`));
      else if (!extra(name, c)) throw new EnvoyConfigError(`${at}.${name}: the local gateway does not run it`);
    }
  };
  // The global rate limit's per-route descriptors belong to a filter the local gateway does not run.
  perFilter(r.typed_per_filter_config, "routes[0].typed_per_filter_config", (name, c) => c?.["@type"] === RATELIMIT_PER_ROUTE && notRun.some((n) => n.name === name));
  perFilter(vh.typed_per_filter_config, "virtual_hosts[0].typed_per_filter_config", () => false);
  const natives = nativeRaw.map((n) => {
    const f = native(() => nativeFilter(n.name, n.typedConfig, n.at, perRoute.get(n.name)));
    f.wasmBefore = n.wasmBefore;
    return f;
  });
  const ra = obj(r.route, "routes[0].route");
  // The deprecated route-level CORS (VirtualHost.cors / RouteAction.cors), which Envoy's cors filter
  // reads when no CorsPolicy is in typed_per_filter_config: not run here, so refused.
  if (vh.cors !== undefined) throw new EnvoyConfigError("virtual_hosts[0].cors: the local gateway reads CORS policies from typed_per_filter_config (CorsPolicy) only");
  if (ra.cors !== undefined) throw new EnvoyConfigError("routes[0].route.cors: the local gateway reads CORS policies from typed_per_filter_config (CorsPolicy) only");
  if (typeof ra.cluster_header !== "string") throw new EnvoyConfigError("routes[0].route: the local gateway routes by cluster_header only");
  const route = {
    clusterHeader: ra.cluster_header.toLowerCase(),
    // Envoy's default route timeout is 15 s; 0s disables it.
    timeoutMs: ra.timeout === undefined ? 15_000 : durationMs(ra.timeout, "routes[0].route.timeout"),
    idleTimeoutMs: ra.idle_timeout === undefined ? 0 : durationMs(ra.idle_timeout, "routes[0].route.idle_timeout"),
    firstByteTimeoutMs: perTryTimeoutMs(ra.retry_policy),
    requestBodyBufferLimitBytes: r.request_body_buffer_limit === undefined ? null : bytes(r.request_body_buffer_limit, "routes[0].request_body_buffer_limit", 0),
  };
  if (r.per_request_buffer_limit_bytes !== undefined) throw new EnvoyConfigError("routes[0].per_request_buffer_limit_bytes: deprecated; the local gateway reads request_body_buffer_limit");
  let localReply: LocalReplyConfig | null = null;
  try {
    localReply = hcm.local_reply_config === undefined ? null : parseLocalReplyConfig(hcm.local_reply_config);
  } catch (e) {
    if (e instanceof LocalReplyConfigError) throw new EnvoyConfigError(e.message);
    throw e;
  }

  // FilterUtility::finalTimeout: a per-try timeout not below the (non-zero) route timeout is dropped.
  if (route.timeoutMs > 0 && route.firstByteTimeoutMs >= route.timeoutMs) route.firstByteTimeoutMs = 0;

  const clusters: Record<string, ClusterConfig> = {};
  list(sr.clusters ?? [], "static_resources.clusters").forEach((c, i) => {
    const cc = cluster(obj(c, `clusters[${i}]`), `clusters[${i}]`);
    clusters[cc.name] = cc;
  });

  let accessLog: LocalGatewayConfig["accessLog"] = null;
  if (hcm.tracing !== undefined) notRun.push({ name: "tracing", why: "spans to a tracer (Envoy only; the access log has the same fields)" });
  if (hcm.access_log !== undefined) {
    // The OpenTelemetry logger exports the same record to a collector over OTLP/gRPC: Envoy's only.
    const loggers = list(hcm.access_log, "access_log").filter((l) => {
      if (l?.typed_config?.["@type"] !== OTEL_LOG) return true;
      notRun.push({ name: String(l.name), why: "the OpenTelemetry access logger (Envoy only; the JSON access log has the same fields)" });
      return false;
    });
    const al = obj(one(loggers, "access_log"), "access_log[0]");
    const fl = typed(al.typed_config, FILE_LOG, "access_log[0].typed_config");
    const lf = fl.log_format;
    let format: AccessLogFormat;
    if (lf?.json_format !== undefined) format = { json: obj(lf.json_format, "log_format.json_format") };
    else if (lf?.text_format_source?.inline_string !== undefined) format = { text: String(lf.text_format_source.inline_string) };
    else if (lf === undefined) throw new EnvoyConfigError("access_log[0]: give log_format (json_format or text_format_source.inline_string)");
    else throw new EnvoyConfigError("access_log[0].log_format: the local gateway supports json_format and text_format_source.inline_string");
    accessLog = { path: String(fl.path), format };
  }

  const admin = root.admin?.address ? socket(root.admin.address, "admin.address") : null;
  const statsTags = list(root.stats_config?.stats_tags ?? [], "stats_config.stats_tags").map((t, i) => {
    if (typeof t.tag_name !== "string" || typeof t.regex !== "string") throw new EnvoyConfigError(`stats_tags[${i}]: the local gateway supports tag_name with regex`);
    return { tagName: t.tag_name, regex: t.regex };
  });

  const histogramBuckets = list(root.stats_config?.histogram_bucket_settings ?? [], "stats_config.histogram_bucket_settings").map((h, i) => histogramBucketSetting(h, i));

  const listenerAt = socket(listener.address, "listeners[0].address");
  const direction = listener.traffic_direction ?? "UNSPECIFIED";
  if (!(direction in TRAFFIC_DIRECTION)) throw new EnvoyConfigError(`listeners[0].traffic_direction: expected UNSPECIFIED, INBOUND or OUTBOUND, got ${JSON.stringify(direction)}`);
  return {
    listener: {
      ...listenerAt,
      bufferLimitBytes: bytes(listener.per_connection_buffer_limit_bytes, "listeners[0].per_connection_buffer_limit_bytes", DEFAULT_BUFFER_LIMIT),
      ...tlsOf(listenerTls(listener, chain)),
    },
    admin,
    filters,
    natives,
    route,
    localReply,
    clusters,
    accessLog,
    statsTags,
    histogramBuckets,
    notRun,
    routeInfo: {
      name: String(r.name ?? ""),
      metadata: metadataOf(r.metadata, "routes[0].metadata"),
      virtualHost: { name: String(vh.name ?? ""), metadata: metadataOf(vh.metadata, "virtual_hosts[0].metadata") },
    },
    node: nodeOf(root.node),
    listenerInfo: { metadata: metadataOf(listener.metadata, "listeners[0].metadata"), direction: TRAFFIC_DIRECTION[direction], filterChainName: String(chain.name ?? "") },
  };
}

/**
 * The filter chain's transport socket: none (plaintext) or envoy.transport_sockets.tls with a
 * DownstreamTlsContext. Anything else, or a TLS setting the local gateway does not implement, is
 * refused: it never serves plain HTTP where Envoy would have required TLS.
 */
function listenerTls(listener: Record<string, any>, chain: Record<string, any>): ListenerTls | null {
  if (listener.transport_socket !== undefined) throw new EnvoyConfigError("listeners[0].transport_socket: Envoy reads the transport socket from the filter chain (filter_chains[0].transport_socket)");
  if (listener.default_filter_chain !== undefined) throw new EnvoyConfigError("listeners[0].default_filter_chain: the local gateway runs filter_chains[0] only");
  if (listener.listener_filters !== undefined) throw new EnvoyConfigError("listeners[0].listener_filters: the local gateway runs none (a TLS inspector or proxy protocol filter would change what the connection is)");
  if (chain.filter_chain_match !== undefined) throw new EnvoyConfigError("filter_chains[0].filter_chain_match: the local gateway runs one filter chain for every connection");
  if (chain.transport_socket === undefined) return null;
  try {
    return parseListenerTls(chain.transport_socket, "filter_chains[0].transport_socket");
  } catch (e) {
    if (e instanceof NativeConfigError) throw new EnvoyConfigError(e.message);
    throw e;
  }
}

const tlsOf = (tls: ListenerTls | null) => (tls ? { tls } : {});

function noEcds(path: string): string {
  throw new EnvoyConfigError(`${path}: an ECDS file, but no reader was given (loadEnvoyConfig maps ${MOUNT}/ to envoy.yaml's directory)`);
}

/** Where docker-compose mounts envoy/ (cli/render/constants.ts); the local gateway maps it back. */
const MOUNT = "/etc/sluice";

/** Reads ECDS files named under /etc/sluice/ from the directory envoy.yaml is in, as docker-compose mounts them. */
export function ecdsReaderFor(envoyDir: string): EcdsReader {
  return (path) => readFileSync(path.startsWith(`${MOUNT}/`) ? join(envoyDir, path.slice(MOUNT.length + 1)) : path, "utf8");
}

/** Reads a file envoy.yaml names (a TLS certificate or key) from the local gateway's side of the
 * docker-compose mount: /etc/sluice/... from envoy.yaml's directory, any other path as it is. */
export function mountedPath(path: string, envoyDir: string): string {
  return path.startsWith(`${MOUNT}/`) ? join(envoyDir, path.slice(MOUNT.length + 1)) : path;
}

export function loadEnvoyConfig(path: string): LocalGatewayConfig {
  return parseEnvoyConfig(readFileSync(path, "utf8"), ecdsReaderFor(dirname(path)));
}

/**
 * The plugin a wasm filter of envoy.yaml loads as, for Host.create: the module at `wasm` (envoy.yaml
 * names its path inside Envoy's container) and the VM's environment already resolved.
 */
export function pluginOptions(f: WasmFilterConfig, wasm: string | Uint8Array, env: Record<string, string>): FilterOptions {
  return {
    name: f.name,
    wasm,
    configuration: f.configuration,
    rootId: f.rootId,
    vmId: f.vmId,
    failOpen: f.failOpen,
    failurePolicy: f.failurePolicy,
    reloadBackoffMs: f.reloadBackoffMs,
    allowOnHeadersStopIteration: f.allowOnHeadersStopIteration,
    env,
  };
}

/**
 * A filter's VM environment as Envoy builds it: each host_env_keys entry present in Envoy's
 * environment, then key_values (Envoy rejects a key given both ways).
 */
export function vmEnvironment(f: WasmFilterConfig, processEnv: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of f.hostEnvKeys) if (processEnv[k] !== undefined) out[k] = processEnv[k]!;
  for (const [k, v] of Object.entries(f.keyValues)) {
    if (f.hostEnvKeys.includes(k)) throw new EnvoyConfigError(`${f.filterName}: environment variable ${k} is in both host_env_keys and key_values`);
    out[k] = v;
  }
  return out;
}

/**
 * One stats_config.histogram_bucket_settings entry. Envoy's proto requires a matcher and at least one
 * bucket, each above 0 (envoy/config/metrics/v3/stats.proto HistogramBucketSettings); Envoy sorts them
 * (HistogramSettingsImpl), so they are sorted here too.
 */
function histogramBucketSetting(h: any, i: number): HistogramBuckets {
  const at = `stats_config.histogram_bucket_settings[${i}]`;
  const m = h?.match;
  const forms = m && typeof m === "object" ? Object.keys(m).filter((k) => k !== "ignore_case") : [];
  if (forms.length !== 1 || !["exact", "prefix", "suffix", "contains"].includes(forms[0]) || typeof m[forms[0]] !== "string") {
    throw new EnvoyConfigError(`${at}.match: the local gateway supports one of exact, prefix, suffix or contains`);
  }
  if (m.ignore_case) throw new EnvoyConfigError(`${at}.match.ignore_case: not supported by the local gateway`);
  // The rest of the matcher's rules (a prefix, suffix or contains is not empty), as Metrics reads it.
  native(() => stringMatcher(m, `${at}.match`));
  const buckets = h.buckets;
  if (!Array.isArray(buckets) || buckets.length === 0 || !buckets.every((b) => typeof b === "number" && b > 0)) {
    throw new EnvoyConfigError(`${at}.buckets: give at least one number above 0`);
  }
  return { match: { [forms[0]]: m[forms[0]] }, buckets: [...buckets].sort((a, b) => a - b) };
}
