// proxy_get_property as Envoy answers it. Sources (envoyproxy/envoy):
//  - source/extensions/common/wasm/context.cc: Context::getProperty walks the NUL-separated path
//    (a map is indexed by the segment, a message by field name, a list by decimal index; anything
//    else is NotFound), Context::findValue resolves the first segment (the CEL activation below,
//    then plugin_name / plugin_root_id / plugin_vm_id / connection_id, then the filter-state object
//    "wasm.<segment>" a filter set with set_property), serializeValue encodes the result: strings
//    and bytes raw, int64/uint64/double 8 bytes little-endian, bool 1 byte, duration and timestamp
//    int64 nanoseconds, messages as protobuf bytes, maps and lists as proxy-wasm pairs.
//  - source/extensions/filters/common/expr/evaluator.cc StreamActivation::FindValue: the top-level
//    names request, response, connection, upstream, source, destination, metadata, filter_state,
//    upstream_filter_state (these need the stream's info: NotFound in a root context) and xds
//    (also in a root context, where only xds.node answers). The old top-level wasm names
//    (route_metadata, cluster_name, node, ...) went in Envoy 1.33 (envoyproxy/envoy#36619).
//  - source/extensions/filters/common/expr/context.cc: every attribute under those names (the
//    *LookupValues tables, the SSL extractors, PeerWrapper, XDSWrapper), including which are
//    absent (NotFound) and which are empty.
// host/API.md lists every property with its type, the phase it is available in and its source.
import { WasmResult } from "./abi.js";
import type { Context } from "./context.js";
import { serializePairs, type HeaderList } from "./headers.js";
import { encodeLocality, encodeMetadata, encodeNode, type FilterMetadata, type Json, type JsonObject, type Locality, type NodeInfo } from "./proto.js";
import type { ListenerInfo, StreamInfo, TlsInfo } from "./stream-info.js";

/** A CEL value as Envoy's getProperty sees it. */
type Val =
  | { t: "string"; v: string }
  | { t: "bytes"; v: Buffer }
  | { t: "int"; v: bigint } // int64, and durations / timestamps (same 8 bytes of nanoseconds)
  | { t: "uint"; v: bigint }
  | { t: "double"; v: number }
  | { t: "bool"; v: boolean }
  | { t: "null" }
  /** keys null: Envoy's attribute wrappers (BaseWrapper::ListKeys is unimplemented), which can be
   * indexed but not serialized whole (SerializationFailure). */
  | { t: "map"; keys: (() => string[]) | null; get: (k: string) => Val | undefined }
  | { t: "list"; items: Val[] }
  | { t: "message"; bytes: () => Buffer; field: (name: string) => Val | undefined };

type Result = { result: number; value?: Buffer };

const str = (v: string): Val => ({ t: "string", v });
const int = (v: bigint | number): Val => ({ t: "int", v: BigInt(v) });
const uint = (v: bigint | number): Val => ({ t: "uint", v: BigInt(v) });
const bool = (v: boolean): Val => ({ t: "bool", v });
const opt = <T>(v: T | null | undefined, f: (x: T) => Val): Val | undefined => (v === null || v === undefined ? undefined : f(v));

function wrapper(fields: Record<string, () => Val | undefined>, fallback?: (k: string) => Val | undefined): Val {
  return { t: "map", keys: null, get: (k) => (Object.hasOwn(fields, k) ? fields[k]() : fallback?.(k)) };
}

function mapOf(entries: [string, Val][]): Val {
  const m = new Map(entries);
  return { t: "map", keys: () => [...m.keys()], get: (k) => m.get(k) };
}

/** google.protobuf.Struct / Value / ListValue as CEL unwraps them (CelProtoWrapper::CreateMessage):
 * a Struct is a map, a ListValue a list, a Value its kind (a number is a double). */
function json(v: Json): Val {
  if (v === null) return { t: "null" };
  if (typeof v === "string") return str(v);
  if (typeof v === "number") return { t: "double", v };
  if (typeof v === "boolean") return bool(v);
  if (Array.isArray(v)) return { t: "list", items: v.map(json) };
  return struct(v);
}

function struct(o: JsonObject): Val {
  return { t: "map", keys: () => Object.keys(o), get: (k) => (Object.hasOwn(o, k) ? json(o[k]) : undefined) };
}

/** envoy.config.core.v3.Metadata: bytes whole; filter_metadata a map of Structs. */
function metadata(m: FilterMetadata | undefined): Val {
  const fm = m ?? {};
  return {
    t: "message",
    bytes: () => encodeMetadata(fm),
    field: (name) => {
      if (name === "filter_metadata") return { t: "map", keys: () => Object.keys(fm), get: (k) => (Object.hasOwn(fm, k) ? struct(fm[k]) : undefined) };
      if (name === "typed_filter_metadata") return mapOf([]);
      return undefined;
    },
  };
}

function locality(l: Locality): Val {
  return {
    t: "message",
    bytes: () => encodeLocality(l),
    field: (name) => {
      const fields: Record<string, string | undefined> = { region: l.region, zone: l.zone, sub_zone: l.subZone };
      return Object.hasOwn(fields, name) ? str(fields[name] ?? "") : undefined;
    },
  };
}

/** A message field the host leaves at its default: empty bytes, no fields modelled. */
const emptyMessage: Val = { t: "message", bytes: () => Buffer.alloc(0), field: () => undefined };

/** The plugin's names and its host's node and listener (host/vm.ts passes its plugin). */
export interface PropertyPlugin {
  readonly name: string;
  readonly rootId: string;
  readonly vmId: string;
  readonly host: { readonly node: NodeInfo; readonly listener: ListenerInfo };
}

function node(plugin: PropertyPlugin): Val {
  const n = plugin.host.node;
  const fields: Record<string, () => Val> = {
    id: () => str(n.id ?? ""),
    cluster: () => str(n.cluster ?? ""),
    metadata: () => struct(n.metadata ?? {}),
    locality: () => locality(n.locality ?? {}),
    user_agent_name: () => str("envoy"),
    user_agent_version: () => str(""),
    user_agent_build_version: () => emptyMessage,
    extensions: () => ({ t: "list", items: [] }),
    client_features: () => ({ t: "list", items: [] }),
    listening_addresses: () => ({ t: "list", items: [] }),
    dynamic_parameters: () => mapOf([]),
  };
  return { t: "message", bytes: () => encodeNode(n), field: (name) => (Object.hasOwn(fields, name) ? fields[name]() : undefined) };
}

// ------------------------------------------------------------------ headers

/** Envoy HeaderUtility::headerNameIsValid: an HTTP token, or ":" and a token (pseudo-header). */
function headerNameIsValid(k: string): boolean {
  return /^:?[!#$%&'*+\-.^_`|~0-9a-zA-Z]+$/.test(k);
}

function joined(map: HeaderList, key: string): string | undefined {
  let out: string | undefined;
  for (const [hk, v] of map) if (hk === key) out = out === undefined ? v : `${out},${v}`;
  return out;
}

/** HeadersWrapper: each name once with all its values joined by "," (getAllOfHeaderAsString);
 * no map (outside the phase that holds it): an empty map whose entries are all NotFound. */
function headersMap(map: HeaderList | null): Val {
  return {
    t: "map",
    keys: () => (map ? [...new Set(map.map(([k]) => k))] : []),
    get: (k) => (map && headerNameIsValid(k) ? opt(joined(map, k.toLowerCase()), str) : undefined),
  };
}

/** HeaderMap::byteSize: the sum of every name's and value's length. */
function byteSize(map: HeaderList | null): number {
  let n = 0;
  if (map) for (const [k, v] of map) n += Buffer.byteLength(k) + Buffer.byteLength(v);
  return n;
}

// ------------------------------------------------------------------ the activation

/** SslExtractorsValues (context.cc): what a TLS connection's info answers. */
function ssl(tls: TlsInfo, key: string): Val | undefined {
  const first = (l: string[] | undefined) => (l && l.length ? str(l[0]) : undefined);
  switch (key) {
    case "tls_version":
      return str(tls.version);
    case "subject_local_certificate":
      return str(tls.subjectLocalCertificate ?? "");
    case "subject_peer_certificate":
      return str(tls.subjectPeerCertificate ?? "");
    case "uri_san_local_certificate":
      return first(tls.uriSanLocalCertificate);
    case "uri_san_peer_certificate":
      return first(tls.uriSanPeerCertificate);
    case "dns_san_local_certificate":
      return first(tls.dnsSanLocalCertificate);
    case "dns_san_peer_certificate":
      return first(tls.dnsSanPeerCertificate);
    case "sha256_peer_certificate_digest":
      return tls.sha256PeerCertificateDigest ? str(tls.sha256PeerCertificateDigest) : undefined;
  }
  return undefined;
}

/** Envoy's Address::Instance::asString: "ip:port", IPv6 in brackets. */
function port(address: string): bigint | undefined {
  const m = /:(\d+)$/.exec(address);
  return m ? BigInt(m[1]) : undefined;
}

/** Grpc::Common::getGrpcStatus(map): grpc-status parsed, -1 (InvalidCode) when not a number or
 * past the last well-known code (16). */
function grpcStatusOf(map: HeaderList | null): bigint | undefined {
  const v = map ? joined(map, "grpc-status") : undefined;
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) > 16) return -1n;
  return BigInt(v);
}

/** Grpc::Utility::httpToGrpcStatus. */
function httpToGrpcStatus(code: number): bigint {
  switch (code) {
    case 400:
      return 13n; // Internal
    case 401:
      return 16n; // Unauthenticated
    case 403:
      return 7n; // PermissionDenied
    case 404:
      return 12n; // Unimplemented
    case 429:
    case 502:
    case 503:
    case 504:
      return 14n; // Unavailable
  }
  return 2n; // Unknown
}

/** CoreResponseFlag order (envoy/stream_info/stream_info.h); legacyResponseFlags sets bit 1<<index. */
const RESPONSE_FLAG_BITS = [
  "LH", "UH", "UT", "LR", "UR", "UF", "UC", "UO", "NR", "DI", "FI", "RL", "UAEX", "RLSE", "DC", "URX",
  "SI", "IH", "DPE", "UMSDR", "RFCF", "NFCF", "DT", "UPE", "NC", "OM", "DF", "DO", "DR", "UDO",
];

function legacyResponseFlags(flags: string[]): bigint {
  let out = 0n;
  for (const f of flags) {
    const i = RESPONSE_FLAG_BITS.indexOf(f);
    if (i >= 0) out |= 1n << BigInt(i);
  }
  return out;
}

/** What request.* and response.* read: one object per lookup, the field tables below shared. */
type Exchange = { info: StreamInfo; headers: HeaderList | null; trailers: HeaderList | null };

/**
 * A message whose fields are computed when read, from a field table built once. (A table of closures
 * made per lookup cost a function object per field on every get_property, the most frequent host
 * call; under tsx each one also took a naming call.)
 */
function fieldsOf<C>(fields: Record<string, (c: C) => Val | undefined>, c: C): Val {
  return { t: "map", keys: null, get: (k) => (Object.hasOwn(fields, k) ? fields[k](c) : undefined) };
}

const requestHeader = (x: Exchange, k: string) => (x.headers ? opt(joined(x.headers, k), str) : undefined);
const requestPath = (x: Exchange) => (x.headers ? joined(x.headers, ":path") ?? "" : undefined);

const REQUEST_FIELDS: Record<string, (x: Exchange) => Val | undefined> = {
  headers: (x) => headersMap(x.headers),
  headers_bytes: (x) => int(byteSize(x.headers)),
  time: (x) => int(x.info.startTimeNs),
  size: (x) => {
    const cl = x.headers ? joined(x.headers, "content-length") : undefined;
    if (cl === undefined) return int(x.info.bytesReceived);
    return /^[+-]?\d+$/.test(cl) ? int(BigInt(cl)) : undefined; // invalid content-length: absent
  },
  total_size: (x) => int(x.info.bytesReceived + byteSize(x.headers)),
  duration: (x) => opt(x.info.completeNs, (c) => int(c - x.info.startTimeNs)),
  protocol: (x) => str(x.info.protocol),
  path: (x) => requestHeader(x, ":path"),
  url_path: (x) => opt(requestPath(x), (p) => str(p.split("?")[0])),
  host: (x) => requestHeader(x, ":authority"),
  scheme: (x) => requestHeader(x, ":scheme"),
  method: (x) => requestHeader(x, ":method"),
  referer: (x) => requestHeader(x, "referer"),
  id: (x) => requestHeader(x, "x-request-id"),
  useragent: (x) => requestHeader(x, "user-agent"),
  query: (x) =>
    opt(requestPath(x), (p) => {
      const i = p.indexOf("?");
      if (i < 0) return str("");
      const q = p.slice(i + 1);
      const f = q.indexOf("#");
      return str(f < 0 ? q : q.slice(0, f));
    }),
};

const RESPONSE_FIELDS: Record<string, (x: Exchange) => Val | undefined> = {
  code: (x) => opt(x.info.responseCode, int),
  code_details: (x) => opt(x.info.responseCodeDetails, str),
  flags: (x) => int(legacyResponseFlags(x.info.responseFlags)),
  grpc_status: (x) => {
    const s = grpcStatusOf(x.trailers) ?? grpcStatusOf(x.headers) ?? opt(x.info.responseCode, (c) => int(httpToGrpcStatus(c)));
    return typeof s === "bigint" ? int(s) : s;
  },
  headers: (x) => headersMap(x.headers),
  headers_bytes: (x) => int(byteSize(x.headers)),
  trailers: (x) => headersMap(x.trailers),
  size: (x) => int(x.info.bytesSent),
  total_size: (x) => int(x.info.bytesSent + byteSize(x.headers) + byteSize(x.trailers)),
  backend_latency: (x) =>
    x.info.firstUpstreamTxNs !== null && x.info.lastUpstreamRxNs !== null ? int(x.info.lastUpstreamRxNs - x.info.firstUpstreamTxNs) : undefined,
};

function request(info: StreamInfo, headers: HeaderList | null): Val {
  return fieldsOf(REQUEST_FIELDS, { info, headers, trailers: null });
}

function response(info: StreamInfo, headers: HeaderList | null, trailers: HeaderList | null): Val {
  return fieldsOf(RESPONSE_FIELDS, { info, headers, trailers });
}

function connection(info: StreamInfo): Val {
  const tls = info.downstreamTls;
  return wrapper(
    {
      mtls: () => bool(tls !== null && tls.peerCertificatePresented === true),
      requested_server_name: () => str(info.requestedServerName),
      id: () => uint(info.connectionId),
      termination_details: () => opt(info.connectionTerminationDetails, str),
      transport_failure_reason: () => (info.downstreamTransportFailureReason ? str(info.downstreamTransportFailureReason) : undefined),
    },
    (k) => (tls ? ssl(tls, k) : undefined),
  );
}

function upstream(info: StreamInfo): Val {
  const up = info.upstream;
  return wrapper(
    {
      address: () => opt(up?.address, str),
      port: () => {
        const p = up ? port(up.address) : undefined;
        return p === undefined ? undefined : int(p);
      },
      local_address: () => opt(up?.localAddress, str),
      locality: () => (up ? locality(up.locality ?? {}) : undefined),
      transport_failure_reason: () => (up ? str(up.transportFailureReason ?? "") : undefined),
      cx_pool_ready_duration: () => opt(up?.poolReadyNs, int),
      request_attempt_count: () => uint(info.attemptCount ?? 0),
      num_endpoints: () => opt(info.cluster, (c) => uint(c.endpoints ?? 1)),
    },
    (k) => (up?.tls ? ssl(up.tls, k) : undefined),
  );
}

function peer(info: StreamInfo, local: boolean): Val {
  const a = local ? info.destinationAddress : info.sourceAddress;
  return wrapper({
    address: () => str(a),
    port: () => {
      const p = port(a);
      return p === undefined ? undefined : int(p);
    },
  });
}

function xds(plugin: PropertyPlugin, info: StreamInfo | null): Val {
  const host = plugin.host;
  const l = host.listener;
  return wrapper({
    node: () => node(plugin),
    cluster_name: () => opt(info?.cluster, (c) => str(c.name)),
    cluster_metadata: () => opt(info?.cluster, (c) => metadata(c.metadata)),
    route_name: () => opt(info?.route, (r) => str(r.name ?? "")),
    route_metadata: () => opt(info?.route, (r) => metadata(r.metadata)),
    virtual_host_name: () => opt(info?.route?.virtualHost, (v) => str(v.name ?? "")),
    virtual_host_metadata: () => opt(info?.route?.virtualHost, (v) => metadata(v.metadata)),
    upstream_host_metadata: () => opt(info?.upstream, (u) => metadata(u.metadata)),
    upstream_host_locality_metadata: () => opt(info?.upstream, (u) => metadata(u.localityMetadata)),
    filter_chain_name: () => (info ? str(l.filterChainName ?? "") : undefined),
    listener_metadata: () => (info ? metadata(l.metadata) : undefined),
    listener_direction: () => (info ? int(l.direction ?? 0) : undefined),
  });
}

function filterState(state: Map<string, Buffer>): Val {
  // set_property stores a CelState of type bytes: its value is the raw bytes.
  return wrapper({}, (k) => opt(state.get(k), (v) => ({ t: "bytes", v })));
}

function findValue(ctx: Context, plugin: PropertyPlugin, name: string): Val | undefined {
  const stream = ctx.slot?.stream ?? null;
  const info = stream?.info ?? null;
  if (name === "xds") return xds(plugin, info);
  if (stream && info) {
    // Envoy's activation headers: the live map while the filter holds it, else the access-log copy.
    const reqHeaders = ctx.requestHeaders ?? (ctx.accessLogPhase ? ctx.accessLogRequestHeaders : null);
    const respHeaders = ctx.responseHeaders ?? (ctx.accessLogPhase ? ctx.accessLogResponseHeaders : null);
    const respTrailers = ctx.responseTrailers ?? (ctx.accessLogPhase ? ctx.accessLogResponseTrailers : null);
    switch (name) {
      case "request":
        return request(info, reqHeaders);
      case "response":
        return response(info, respHeaders, respTrailers);
      case "connection":
        return connection(info);
      case "upstream":
        return upstream(info);
      case "source":
        return peer(info, false);
      case "destination":
        return peer(info, true);
      case "metadata":
        return metadata(info.dynamicMetadata);
      case "filter_state":
        return filterState(stream.filterState);
      case "upstream_filter_state":
        return undefined; // the host keeps no upstream filter state
    }
  }
  switch (name) {
    case "plugin_name":
      return str(plugin.name);
    case "plugin_root_id":
      return str(plugin.rootId);
    case "plugin_vm_id":
      return str(plugin.vmId);
    case "connection_id":
      return opt(info, (i) => uint(i.connectionId));
  }
  // Anything else: the filter-state object a filter set with set_property (CelState, bytes).
  const state = stream?.filterState.get(`wasm.${name}`);
  return state === undefined ? undefined : { t: "bytes", v: state };
}

function serialize(v: Val): Buffer | null {
  switch (v.t) {
    case "string":
      return Buffer.from(v.v, "utf8");
    case "bytes":
      return v.v;
    case "int":
    case "uint": {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(BigInt.asUintN(64, v.v));
      return b;
    }
    case "double": {
      const b = Buffer.alloc(8);
      b.writeDoubleLE(v.v);
      return b;
    }
    case "bool":
      return Buffer.from([v.v ? 1 : 0]);
    case "null":
      return null; // serializeValue has no case for null: SerializationFailure
    case "message":
      return v.bytes();
    case "map": {
      if (!v.keys) return null;
      const pairs: [Buffer, Buffer][] = [];
      for (const k of v.keys()) {
        const val = v.get(k);
        const sv = val === undefined ? null : serialize(val);
        if (sv === null) return null;
        pairs.push([Buffer.from(k, "utf8"), sv]);
      }
      return Buffer.from(serializePairs(pairs));
    }
    case "list": {
      const pairs: [Buffer, Buffer][] = [];
      for (const item of v.items) {
        const s = serialize(item);
        if (s === null) return null;
        pairs.push([s, Buffer.alloc(0)]);
      }
      return Buffer.from(serializePairs(pairs));
    }
  }
}

export function getProperty(ctx: Context, path: Buffer, plugin: PropertyPlugin): Result {
  const parts = path.toString("utf8").split("\u0000");
  // A trailing NUL ends the last segment rather than starting an empty one (Envoy's loop).
  if (parts.length > 1 && parts[parts.length - 1] === "") parts.pop();
  if (parts.length === 0 || parts[0] === "") return { result: WasmResult.NotFound };
  let v = findValue(ctx, plugin, parts[0]);
  for (let i = 1; v !== undefined && i < parts.length; i++) {
    const part = parts[i];
    if (v.t === "map") v = v.get(part);
    else if (v.t === "message") v = v.field(part);
    else if (v.t === "list") v = /^\d+$/.test(part) && Number(part) < v.items.length ? v.items[Number(part)] : undefined;
    else v = undefined;
  }
  if (v === undefined) return { result: WasmResult.NotFound };
  const value = serialize(v);
  if (value === null) return { result: WasmResult.SerializationFailure };
  return { result: WasmResult.Ok, value };
}
