// The properties Envoy serves (host/properties.ts), read by a real module (build/test/properties.wasm,
// test/filters/properties) through proxy_get_property in every phase, checked byte for byte against
// Envoy's encoding (source/extensions/common/wasm/context.cc serializeValue; the attributes of
// source/extensions/filters/common/expr/context.cc). Whole messages are decoded with Envoy's own
// protos (shipped in @grpc/grpc-js-xds), so the check does not lean on the host's encoder
// (protobufjs names google.protobuf.Value's fields in camelCase: stringValue, structValue, ...).
import { describe, expect, it } from "vitest";
import { Host, serializePairs, WasmResult, type FilterOptions, type HostOptions, type StreamOptions } from "../../host/index.js";
import { tracer } from "./filters.js";
import { Wat } from "./wat.js";
import { loadEnvoyApi } from "../../cli/envoy-validate.js";

const WASM = "build/test/properties.wasm";
const REQ = { ":method": "POST", ":path": "/v1/chat?model=a&x=1#frag", ":authority": "gw.example", ":scheme": "https", "user-agent": "ua/1", referer: "https://r.example/", "x-request-id": "rid-1", "content-length": "5", "x-dup": "a" };

type Read = { rc: number; hex: string };
const hex = (b: Buffer | Uint8Array) => Buffer.from(b).toString("hex");
const s = (x: string) => hex(Buffer.from(x));
const i64 = (n: number | bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigInt64LE(BigInt(n));
  return hex(b);
};
const f64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(n);
  return hex(b);
};
const pairs = (p: [string, string | Buffer][]) => hex(serializePairs(p));
const ok = (h: string): Read => ({ rc: WasmResult.Ok, hex: h });
const NOT_FOUND: Read = { rc: WasmResult.NotFound, hex: "" };
const SERIALIZATION_FAILURE: Read = { rc: WasmResult.SerializationFailure, hex: "" };

async function host(paths: string[], opts: Partial<HostOptions> = {}, before: FilterOptions[] = []) {
  let now = 1_000_000_000n;
  const h = await Host.create({ filters: [...before, { name: "props", wasm: WASM, configuration: paths.join("\n") }], clock: () => now, ...opts });
  /** What the module read in `phase` (the last time it ran), per path. */
  const read = (phase: string): Record<string, Read> => {
    const out: Record<string, Read> = {};
    for (const line of h.getLogs("info")) {
      const [ph, path, rc, value] = line.split("\t");
      if (ph === phase) out[path] = { rc: Number(rc), hex: value };
    }
    return out;
  };
  const advance = (ns: bigint) => (now += ns);
  return { h, read, advance, stream: (o: StreamOptions = {}) => h.newStream(o) };
}

describe("request.* (RequestWrapper, expr/context.cc)", () => {
  const P = ["request|path", "request|url_path", "request|query", "request|host", "request|scheme", "request|method", "request|referer", "request|useragent", "request|id", "request|protocol", "request|time", "request|duration", "request|size", "request|total_size", "request|headers_bytes", "request|headers|x-dup", "request|headers|X-DUP", "request|headers|bad name", "request|headers|absent", "request|headers", "request", "request|nope"];

  it("reads each attribute from the request headers with Envoy's types while the filter holds them", async () => {
    const t = await host(P);
    const st = t.stream({ protocol: "HTTP/2" });
    st.callOnRequestHeaders([...Object.entries(REQ), ["x-dup", "b"]], false);
    const r = t.read("request_headers");
    expect(r["request|path"]).toEqual(ok(s("/v1/chat?model=a&x=1#frag")));
    expect(r["request|url_path"]).toEqual(ok(s("/v1/chat")));
    // The query stops at the fragment.
    expect(r["request|query"]).toEqual(ok(s("model=a&x=1")));
    expect(r["request|host"]).toEqual(ok(s("gw.example")));
    expect(r["request|scheme"]).toEqual(ok(s("https")));
    expect(r["request|method"]).toEqual(ok(s("POST")));
    expect(r["request|referer"]).toEqual(ok(s("https://r.example/")));
    expect(r["request|useragent"]).toEqual(ok(s("ua/1")));
    expect(r["request|id"]).toEqual(ok(s("rid-1")));
    expect(r["request|protocol"]).toEqual(ok(s("HTTP/2")));
    // A timestamp: int64 nanoseconds since the epoch.
    expect(r["request|time"]).toEqual(ok(i64(1_000_000_000n)));
    // Not complete yet: absent.
    expect(r["request|duration"]).toEqual(NOT_FOUND);
    // content-length wins over the bytes received so far.
    expect(r["request|size"]).toEqual(ok(i64(5)));
    const headerBytes = [...Object.entries(REQ), ["x-dup", "b"]].reduce((n, [k, v]) => n + k.length + v.length, 0);
    expect(r["request|headers_bytes"]).toEqual(ok(i64(headerBytes)));
    expect(r["request|total_size"]).toEqual(ok(i64(headerBytes)));
    // Every value of a repeated header, joined with ","; names are case-insensitive; an invalid name is absent.
    expect(r["request|headers|x-dup"]).toEqual(ok(s("a,b")));
    expect(r["request|headers|X-DUP"]).toEqual(ok(s("a,b")));
    expect(r["request|headers|bad name"]).toEqual(NOT_FOUND);
    expect(r["request|headers|absent"]).toEqual(NOT_FOUND);
    // The whole map: each name once.
    const expected: [string, string][] = Object.entries(REQ).map(([k, v]) => [k, k === "x-dup" ? "a,b" : v]);
    expect(r["request|headers"]).toEqual(ok(pairs(expected)));
    // The wrapper itself cannot be serialized (BaseWrapper::ListKeys is unimplemented).
    expect(r["request"]).toEqual(SERIALIZATION_FAILURE);
    expect(r["request|nope"]).toEqual(NOT_FOUND);
  });

  it("outside the header phase the header attributes are absent and the map is empty; duration appears when the stream completes", async () => {
    const t = await host(P);
    const st = t.stream();
    st.callOnRequestHeaders({ ":method": "GET", ":path": "/plain", ":authority": "gw" }, false);
    expect(t.read("request_headers")["request|query"]).toEqual(ok("")); // no "?": empty, not absent
    expect(t.read("request_headers")["request|protocol"]).toEqual(ok(s("HTTP/1.1")));
    st.callOnRequestBody("hello", true);
    const b = t.read("request_body");
    expect(b["request|path"]).toEqual(NOT_FOUND);
    expect(b["request|query"]).toEqual(NOT_FOUND);
    expect(b["request|headers"]).toEqual(ok(pairs([])));
    expect(b["request|headers|x-dup"]).toEqual(NOT_FOUND);
    // Without request headers, size is the bytes received.
    expect(b["request|size"]).toEqual(ok(i64(5)));
    expect(b["request|total_size"]).toEqual(ok(i64(5)));
    st.callOnResponseHeaders({ ":status": "200" }, true);
    t.advance(7_000n);
    st.completeHttpContext();
    const l = t.read("log");
    // In on_log Envoy hands the access-log copy of the headers back.
    expect(l["request|path"]).toEqual(ok(s("/plain")));
    expect(l["request|duration"]).toEqual(ok(i64(7_000)));
  });

  it("an invalid content-length makes request.size absent", async () => {
    const t = await host(["request|size"]);
    t.stream().callOnRequestHeaders({ ":method": "POST", ":path": "/", ":authority": "gw", "content-length": "x5" }, false);
    expect(t.read("request_headers")["request|size"]).toEqual(NOT_FOUND);
  });
});

describe("response.* (ResponseWrapper)", () => {
  const P = ["response|code", "response|code_details", "response|flags", "response|grpc_status", "response|headers|content-type", "response|headers", "response|trailers|grpc-message", "response|size", "response|total_size", "response|headers_bytes", "response|backend_latency"];

  it("is absent before the response, then carries the upstream's answer; backend_latency once the upstream finished", async () => {
    const t = await host(P);
    const st = t.stream();
    st.callOnRequestHeaders({ ":method": "GET", ":path": "/", ":authority": "gw" }, true);
    const q = t.read("request_headers");
    expect(q["response|code"]).toEqual(NOT_FOUND);
    expect(q["response|code_details"]).toEqual(NOT_FOUND);
    expect(q["response|grpc_status"]).toEqual(NOT_FOUND);
    expect(q["response|flags"]).toEqual(ok(i64(0)));
    expect(q["response|size"]).toEqual(ok(i64(0)));
    expect(q["response|headers"]).toEqual(ok(pairs([])));
    expect(q["response|backend_latency"]).toEqual(NOT_FOUND);
    t.advance(250n);
    st.callOnResponseHeaders({ ":status": "200", "content-type": "application/grpc", "grpc-status": "5" }, false);
    const r = t.read("response_headers");
    expect(r["response|code"]).toEqual(ok(i64(200)));
    expect(r["response|code_details"]).toEqual(ok(s("via_upstream")));
    expect(r["response|headers|content-type"]).toEqual(ok(s("application/grpc")));
    expect(r["response|grpc_status"]).toEqual(ok(i64(5)));
    expect(r["response|headers_bytes"]).toEqual(ok(i64(":status200content-typeapplication/grpcgrpc-status5".length)));
    st.callOnResponseBody("abcd", false);
    t.advance(750n);
    st.callOnResponseTrailers({ "grpc-status": "x", "grpc-message": "m" });
    st.completeHttpContext();
    const l = t.read("log");
    // Trailers before headers; a grpc-status that is not a number is InvalidCode (-1).
    expect(l["response|grpc_status"]).toEqual(ok(i64(-1)));
    expect(l["response|trailers|grpc-message"]).toEqual(ok(s("m")));
    expect(l["response|size"]).toEqual(ok(i64(4)));
    expect(l["response|total_size"]).toEqual(ok(i64(4 + ":status200content-typeapplication/grpcgrpc-status5".length + "grpc-statusxgrpc-messagem".length)));
    // From the request headers going upstream to the upstream's last byte.
    expect(l["response|backend_latency"]).toEqual(ok(i64(1000)));
  });

  it("a router local reply sets Envoy's legacy flag bit and the gRPC status comes from the HTTP status", async () => {
    const t = await host(P);
    const st = t.stream();
    st.callOnRequestHeaders({ ":method": "GET", ":path": "/", ":authority": "gw" }, true);
    st.routerLocalReply(503, "no healthy upstream", "no_healthy_upstream", "UH");
    const r = t.read("response_headers");
    expect(r["response|code"]).toEqual(ok(i64(503)));
    expect(r["response|code_details"]).toEqual(ok(s("no_healthy_upstream")));
    expect(r["response|flags"]).toEqual(ok(i64(0x2))); // NoHealthyUpstream is CoreResponseFlag 1
    expect(r["response|grpc_status"]).toEqual(ok(i64(14))); // 503 -> Unavailable
    st.completeHttpContext();
    expect(t.read("log")["response|backend_latency"]).toEqual(NOT_FOUND); // never reached an upstream
  });
});

describe("connection.*, source.*, destination.* (ConnectionWrapper, SSL extractors, PeerWrapper)", () => {
  const P = ["connection|mtls", "connection|requested_server_name", "connection|tls_version", "connection|subject_peer_certificate", "connection|subject_local_certificate", "connection|dns_san_peer_certificate", "connection|uri_san_peer_certificate", "connection|uri_san_local_certificate", "connection|sha256_peer_certificate_digest", "connection|id", "connection|termination_details", "connection|transport_failure_reason", "connection_id", "source|address", "source|port", "destination|address", "destination|port"];

  it("plaintext: mtls false, SNI empty, every TLS attribute absent", async () => {
    const t = await host(P);
    const st = t.stream({ sourceAddress: "[2001:db8::1]:51000", destinationAddress: "127.0.0.1:10000" });
    st.callOnRequestHeaders({ ":method": "GET", ":path": "/", ":authority": "gw" }, true);
    const r = t.read("request_headers");
    expect(r["connection|mtls"]).toEqual(ok("00"));
    expect(r["connection|requested_server_name"]).toEqual(ok(""));
    for (const k of ["tls_version", "subject_peer_certificate", "dns_san_peer_certificate", "sha256_peer_certificate_digest", "termination_details", "transport_failure_reason"]) {
      expect(r[`connection|${k}`], k).toEqual(NOT_FOUND);
    }
    expect(r["connection|id"]).toEqual(r["connection_id"]);
    expect(r["connection|id"].rc).toBe(WasmResult.Ok);
    expect(r["connection|id"].hex).toHaveLength(16);
    expect(r["source|address"]).toEqual(ok(s("[2001:db8::1]:51000")));
    expect(r["source|port"]).toEqual(ok(i64(51000)));
    expect(r["destination|address"]).toEqual(ok(s("127.0.0.1:10000")));
    expect(r["destination|port"]).toEqual(ok(i64(10000)));
  });

  it("TLS with a client certificate: the SSL extractors answer, a SAN list gives its first entry, an empty one is absent", async () => {
    const t = await host(P);
    const st = t.stream({
      requestedServerName: "api.example",
      tls: { version: "TLSv1.3", peerCertificatePresented: true, subjectPeerCertificate: "CN=client,O=Example", subjectLocalCertificate: "CN=gw", dnsSanPeerCertificate: ["client.example", "alt.example"], uriSanPeerCertificate: ["spiffe://example/ns/a"], uriSanLocalCertificate: [], sha256PeerCertificateDigest: "ab12" },
    });
    st.callOnRequestHeaders({ ":method": "GET", ":path": "/", ":authority": "gw" }, true);
    const r = t.read("request_headers");
    expect(r["connection|mtls"]).toEqual(ok("01"));
    expect(r["connection|requested_server_name"]).toEqual(ok(s("api.example")));
    expect(r["connection|tls_version"]).toEqual(ok(s("TLSv1.3")));
    expect(r["connection|subject_peer_certificate"]).toEqual(ok(s("CN=client,O=Example")));
    expect(r["connection|subject_local_certificate"]).toEqual(ok(s("CN=gw")));
    expect(r["connection|dns_san_peer_certificate"]).toEqual(ok(s("client.example")));
    expect(r["connection|uri_san_peer_certificate"]).toEqual(ok(s("spiffe://example/ns/a")));
    expect(r["connection|uri_san_local_certificate"]).toEqual(NOT_FOUND);
    expect(r["connection|sha256_peer_certificate_digest"]).toEqual(ok(s("ab12")));
  });

  it("a root context has no stream info: connection.*, request.*, source.* and connection_id are absent", async () => {
    const t = await host(["connection|id", "connection_id", "request|path", "source|address", "plugin_name"]);
    const r = t.read("configure");
    expect(r["connection|id"]).toEqual(NOT_FOUND);
    expect(r["connection_id"]).toEqual(NOT_FOUND);
    expect(r["request|path"]).toEqual(NOT_FOUND);
    expect(r["source|address"]).toEqual(NOT_FOUND);
    expect(r["plugin_name"]).toEqual(ok(s("props")));
  });
});

describe("upstream.* (UpstreamWrapper)", () => {
  const P = ["upstream|address", "upstream|port", "upstream|local_address", "upstream|tls_version", "upstream|subject_peer_certificate", "upstream|dns_san_peer_certificate", "upstream|transport_failure_reason", "upstream|request_attempt_count", "upstream|num_endpoints", "upstream|locality", "upstream|locality|region", "upstream|cx_pool_ready_duration"];

  it("is absent until the router reaches a host; then address, port, TLS and the attempt count answer", async () => {
    const t = await host(P);
    const st = t.stream();
    st.callOnRequestHeaders({ ":method": "GET", ":path": "/", ":authority": "gw" }, true);
    const q = t.read("request_headers");
    for (const k of ["address", "port", "local_address", "tls_version", "transport_failure_reason", "num_endpoints", "locality", "cx_pool_ready_duration"]) {
      expect(q[`upstream|${k}`], k).toEqual(NOT_FOUND);
    }
    expect(q["upstream|request_attempt_count"]).toEqual(ok(i64(0)));
    st.setUpstreamCluster("openai");
    st.setUpstreamHost({ address: "10.1.2.3:443", localAddress: "10.0.0.9:40001", locality: { region: "us-east1", zone: "b" }, tls: { version: "TLSv1.2", subjectPeerCertificate: "CN=api.openai.com", dnsSanPeerCertificate: ["api.openai.com"] }, poolReadyNs: 1234n });
    st.callOnResponseHeaders({ ":status": "200" }, true);
    const r = t.read("response_headers");
    expect(r["upstream|address"]).toEqual(ok(s("10.1.2.3:443")));
    expect(r["upstream|port"]).toEqual(ok(i64(443)));
    expect(r["upstream|local_address"]).toEqual(ok(s("10.0.0.9:40001")));
    expect(r["upstream|tls_version"]).toEqual(ok(s("TLSv1.2")));
    expect(r["upstream|subject_peer_certificate"]).toEqual(ok(s("CN=api.openai.com")));
    expect(r["upstream|dns_san_peer_certificate"]).toEqual(ok(s("api.openai.com")));
    // Present and empty once there is an upstream request.
    expect(r["upstream|transport_failure_reason"]).toEqual(ok(""));
    expect(r["upstream|request_attempt_count"]).toEqual(ok(i64(1)));
    expect(r["upstream|num_endpoints"]).toEqual(ok(i64(1)));
    expect(r["upstream|cx_pool_ready_duration"]).toEqual(ok(i64(1234)));
    expect(r["upstream|locality|region"]).toEqual(ok(s("us-east1")));
    const Locality = loadEnvoyApi().lookupType("envoy.config.core.v3.Locality");
    expect(Locality.toObject(Locality.decode(Buffer.from(r["upstream|locality"].hex, "hex")))).toEqual({ region: "us-east1", zone: "b" });
  });
});

describe("metadata (the stream's dynamic metadata, envoy.config.core.v3.Metadata)", () => {
  const NS = "envoy.filters.http.jwt_authn";
  const base = `metadata|filter_metadata|${NS}`;
  const P = ["metadata", "metadata|filter_metadata", `${base}`, `${base}|payload|sub`, `${base}|payload|n`, `${base}|payload|admin`, `${base}|payload|groups`, `${base}|payload|groups|1`, `${base}|payload|nothing`, `${base}|payload|missing`, "metadata|filter_metadata|absent.ns", "metadata|typed_filter_metadata", "metadata|no_such_field", "metadata|filter_metadata|late|k"];
  const seeded = { [NS]: { payload: { sub: "u-1", n: 2, admin: true, groups: ["a", "b"], nothing: null } } };

  it("the whole value is the Metadata message's protobuf bytes; paths walk into the Structs", async () => {
    const t = await host(P);
    const st = t.stream({ dynamicMetadata: seeded });
    st.callOnRequestHeaders({ ":method": "GET", ":path": "/", ":authority": "gw" }, true);
    const r = t.read("request_headers");
    expect(r["metadata"].rc).toBe(WasmResult.Ok);
    const Metadata = loadEnvoyApi().lookupType("envoy.config.core.v3.Metadata");
    const decoded = Metadata.toObject(Metadata.decode(Buffer.from(r["metadata"].hex, "hex")), { oneofs: false });
    expect(decoded.filter_metadata[NS].fields.payload.structValue.fields.sub).toEqual({ stringValue: "u-1" });
    expect(decoded.filter_metadata[NS].fields.payload.structValue.fields.n).toEqual({ numberValue: 2 });
    expect(decoded.filter_metadata[NS].fields.payload.structValue.fields.admin).toEqual({ boolValue: true });
    expect(decoded.filter_metadata[NS].fields.payload.structValue.fields.nothing).toEqual({ nullValue: 0 });
    expect(decoded.filter_metadata[NS].fields.payload.structValue.fields.groups.listValue.values).toEqual([{ stringValue: "a" }, { stringValue: "b" }]);
    // Struct values as CEL unwraps them: a string raw, a number a double, a bool one byte.
    expect(r[`${base}|payload|sub`]).toEqual(ok(s("u-1")));
    expect(r[`${base}|payload|n`]).toEqual(ok(f64(2)));
    expect(r[`${base}|payload|admin`]).toEqual(ok("01"));
    // A list is pairs of (item, ""), indexed by position.
    expect(r[`${base}|payload|groups`]).toEqual(ok(pairs([["a", ""], ["b", ""]])));
    expect(r[`${base}|payload|groups|1`]).toEqual(ok(s("b")));
    // A null cannot be serialized, and neither can a map holding one.
    expect(r[`${base}|payload|nothing`]).toEqual(SERIALIZATION_FAILURE);
    expect(r[base]).toEqual(SERIALIZATION_FAILURE);
    expect(r[`${base}|payload|missing`]).toEqual(NOT_FOUND);
    expect(r["metadata|filter_metadata|absent.ns"]).toEqual(NOT_FOUND);
    expect(r["metadata|typed_filter_metadata"]).toEqual(ok(pairs([])));
    expect(r["metadata|no_such_field"]).toEqual(NOT_FOUND);
  });

  it("no metadata is an empty message (Ok, no bytes); metadata another filter sets later is seen later", async () => {
    const t = await host(P);
    const st = t.stream();
    st.callOnRequestHeaders({ ":method": "GET", ":path": "/", ":authority": "gw" }, true);
    const q = t.read("request_headers");
    expect(q["metadata"]).toEqual(ok(""));
    expect(q["metadata|filter_metadata"]).toEqual(ok(pairs([])));
    expect(q["metadata|filter_metadata|late|k"]).toEqual(NOT_FOUND);
    st.setDynamicMetadata("late", { k: "v" });
    st.callOnResponseHeaders({ ":status": "200" }, true);
    const r = t.read("response_headers");
    expect(r["metadata|filter_metadata|late|k"]).toEqual(ok(s("v")));
    expect(r["metadata|filter_metadata"]).toEqual(ok(pairs([["late", Buffer.from(serializePairs([["k", "v"]]))]])));
  });
});

describe("xds.* (XDSWrapper)", () => {
  const P = ["xds|node", "xds|node|id", "xds|node|cluster", "xds|node|user_agent_name", "xds|node|metadata|team", "xds|route_name", "xds|route_metadata", "xds|route_metadata|filter_metadata|sluice|tier", "xds|virtual_host_name", "xds|virtual_host_metadata|filter_metadata|sluice|vh", "xds|cluster_name", "xds|cluster_metadata", "xds|cluster_metadata|filter_metadata|sluice|provider", "xds|upstream_host_metadata|filter_metadata|lb|canary", "xds|upstream_host_locality_metadata", "xds|filter_chain_name", "xds|listener_metadata", "xds|listener_direction", "route_metadata", "cluster_metadata"];
  const opts: Partial<HostOptions> = {
    node: { id: "gw-1", cluster: "sluice", metadata: { team: "ai" } },
    route: { name: "ai", metadata: { sluice: { tier: "gold" } }, virtualHost: { name: "all", metadata: { sluice: { vh: true } } } },
    clusterInfo: { openai: { metadata: { sluice: { provider: "openai" } } } },
    listener: { direction: 2, filterChainName: "fc" },
  };

  it("route and node answer from the first callback; the cluster once the router picked it; the host after it connected", async () => {
    const t = await host(P, opts);
    const st = t.stream();
    st.callOnRequestHeaders({ ":method": "GET", ":path": "/", ":authority": "gw" }, true);
    const q = t.read("request_headers");
    const Node = loadEnvoyApi().lookupType("envoy.config.core.v3.Node");
    expect(Node.toObject(Node.decode(Buffer.from(q["xds|node"].hex, "hex")))).toEqual({ id: "gw-1", cluster: "sluice", metadata: { fields: { team: { stringValue: "ai" } } }, user_agent_name: "envoy" });
    expect(q["xds|node|id"]).toEqual(ok(s("gw-1")));
    expect(q["xds|node|cluster"]).toEqual(ok(s("sluice")));
    expect(q["xds|node|user_agent_name"]).toEqual(ok(s("envoy")));
    expect(q["xds|node|metadata|team"]).toEqual(ok(s("ai")));
    expect(q["xds|route_name"]).toEqual(ok(s("ai")));
    const Metadata = loadEnvoyApi().lookupType("envoy.config.core.v3.Metadata");
    expect(Metadata.toObject(Metadata.decode(Buffer.from(q["xds|route_metadata"].hex, "hex")))).toEqual({ filter_metadata: { sluice: { fields: { tier: { stringValue: "gold" } } } } });
    expect(q["xds|route_metadata|filter_metadata|sluice|tier"]).toEqual(ok(s("gold")));
    expect(q["xds|virtual_host_name"]).toEqual(ok(s("all")));
    expect(q["xds|virtual_host_metadata|filter_metadata|sluice|vh"]).toEqual(ok("01"));
    expect(q["xds|cluster_name"]).toEqual(NOT_FOUND);
    expect(q["xds|cluster_metadata"]).toEqual(NOT_FOUND);
    expect(q["xds|upstream_host_metadata|filter_metadata|lb|canary"]).toEqual(NOT_FOUND);
    expect(q["xds|filter_chain_name"]).toEqual(ok(s("fc")));
    expect(q["xds|listener_metadata"]).toEqual(ok(""));
    expect(q["xds|listener_direction"]).toEqual(ok(i64(2)));
    // Envoy 1.37 serves these only under xds.
    expect(q["route_metadata"]).toEqual(NOT_FOUND);
    expect(q["cluster_metadata"]).toEqual(NOT_FOUND);

    st.setUpstreamCluster("openai");
    st.setUpstreamHost({ address: "10.1.2.3:443", metadata: { lb: { canary: false } } });
    st.callOnResponseHeaders({ ":status": "200" }, true);
    const r = t.read("response_headers");
    expect(r["xds|cluster_name"]).toEqual(ok(s("openai")));
    expect(r["xds|cluster_metadata|filter_metadata|sluice|provider"]).toEqual(ok(s("openai")));
    expect(r["xds|upstream_host_metadata|filter_metadata|lb|canary"]).toEqual(ok("00"));
    expect(r["xds|upstream_host_locality_metadata"]).toEqual(ok(""));
  });

  it("a root context answers xds.node only", async () => {
    const t = await host(P, opts);
    const r = t.read("configure");
    expect(r["xds|node|id"]).toEqual(ok(s("gw-1")));
    for (const k of ["route_name", "route_metadata", "cluster_name", "filter_chain_name", "listener_metadata", "listener_direction"]) expect(r[`xds|${k}`], k).toEqual(NOT_FOUND);
  });

  it("a cluster_header route resolves the cluster the request names before the first filter; an unknown name is no cluster", async () => {
    const t = await host(["xds|cluster_name", "xds|cluster_metadata|filter_metadata|sluice|provider"], { ...opts, route: { name: "ai", clusterHeader: "x-sluice-cluster" } });
    t.stream().callOnRequestHeaders({ ":method": "GET", ":path": "/", ":authority": "gw", "x-sluice-cluster": "openai" }, true);
    const r = t.read("request_headers");
    expect(r["xds|cluster_name"]).toEqual(ok(s("openai")));
    expect(r["xds|cluster_metadata|filter_metadata|sluice|provider"]).toEqual(ok(s("openai")));
    t.h.logs.length = 0;
    t.stream().callOnRequestHeaders({ ":method": "GET", ":path": "/", ":authority": "gw", "x-sluice-cluster": "nope" }, true);
    expect(t.read("request_headers")["xds|cluster_name"]).toEqual(NOT_FOUND);
  });

  it("after a filter names the cluster and clears the route cache, the cluster changes only when the router resolves the route again", async () => {
    const w = new Wat();
    const setCluster = tracer("C", {
      reqHeaders: `(drop (call $add_hdr (i32.const 0) ${w.s("x-sluice-cluster")} ${w.s("openai")}))
        (drop (call $foreign ${w.s("clear_route_cache")} (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))`,
    }, w);
    const t = await host(["xds|cluster_name"], { ...opts, route: { name: "ai", clusterHeader: "x-sluice-cluster" } }, [{ name: "C", wasm: setCluster }]);
    const st = t.stream();
    st.callOnRequestHeaders({ ":method": "GET", ":path": "/", ":authority": "gw" }, true);
    // StreamInfo keeps the cluster of the first resolution (none) until the router asks again.
    expect(t.read("request_headers")["xds|cluster_name"]).toEqual(NOT_FOUND);
    st.callOnResponseHeaders({ ":status": "200" }, true);
    expect(t.read("response_headers")["xds|cluster_name"]).toEqual(ok(s("openai")));
  });

  it("a stream that matched no route has no route attributes", async () => {
    const t = await host(P, opts);
    t.stream({ route: null }).callOnRequestHeaders({ ":method": "GET", ":path": "/", ":authority": "gw" }, true);
    const r = t.read("request_headers");
    expect(r["xds|route_name"]).toEqual(NOT_FOUND);
    expect(r["xds|route_metadata"]).toEqual(NOT_FOUND);
    expect(r["xds|virtual_host_name"]).toEqual(NOT_FOUND);
  });
});

describe("filter_state", () => {
  it("filter_state.<key> is the object's bytes; the short wasm.<name> form reads the same object", async () => {
    const t = await host(["filter_state|wasm.sluice.model", "sluice.model", "filter_state|wasm.absent"]);
    const st = t.stream();
    // What another wasm filter's set_property("sluice.model", ...) stores.
    st.filterState.set("wasm.sluice.model", Buffer.from("gpt-4o"));
    st.callOnRequestHeaders({ ":method": "GET", ":path": "/", ":authority": "gw" }, true);
    const r = t.read("request_headers");
    expect(r["filter_state|wasm.sluice.model"]).toEqual(ok(s("gpt-4o")));
    expect(r["sluice.model"]).toEqual(ok(s("gpt-4o")));
    expect(r["filter_state|wasm.absent"]).toEqual(NOT_FOUND);
  });
});
