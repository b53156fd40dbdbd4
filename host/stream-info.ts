// What Envoy knows of a stream besides its headers and bodies (StreamInfo, the connection, the
// route, the cluster, the listener): the facts the properties (host/properties.ts), the access log
// and the native filters read. Data only: the stream fills it, nothing here acts.
import type { FilterMetadata, Locality } from "./proto.js";

/** Envoy's default per_connection_buffer_limit_bytes (1 MiB), and so the default stream limit. */
export const DEFAULT_BUFFER_LIMIT = 1024 * 1024;

/** A TLS connection as Envoy's Ssl::ConnectionInfo describes it (connection.* / upstream.*). */
export interface TlsInfo {
  /** SSL_get_version: "TLSv1.2", "TLSv1.3". */
  version: string;
  /** The peer presented a certificate (connection.mtls). */
  peerCertificatePresented?: boolean;
  /** RFC 2253 subject, e.g. "CN=client,O=Example". */
  subjectLocalCertificate?: string;
  subjectPeerCertificate?: string;
  uriSanLocalCertificate?: string[];
  uriSanPeerCertificate?: string[];
  dnsSanLocalCertificate?: string[];
  dnsSanPeerCertificate?: string[];
  /** Hex SHA-256 of the peer certificate (DER). */
  sha256PeerCertificateDigest?: string;
}

/** The route the stream matched (StreamInfo::route(), set when the HCM resolves the route, before
 * the first decoder filter): xds.route_name / route_metadata / virtual_host_*. */
export interface RouteInfo {
  name?: string;
  /** route.cluster_header (lower case): the cluster is the one this request header names, resolved
   * with the route (before the first filter) and again when the router asks after clear_route_cache. */
  clusterHeader?: string;
  /** The route's metadata.filter_metadata. */
  metadata?: FilterMetadata;
  virtualHost?: { name?: string; metadata?: FilterMetadata };
}

/** The upstream cluster (StreamInfo::upstreamClusterInfo()): xds.cluster_name / cluster_metadata. */
export interface ClusterInfo {
  name: string;
  metadata?: FilterMetadata;
  /** membership_total (upstream.num_endpoints); default 1. */
  endpoints?: number;
  /** The cluster's endpoint: its metadata and locality, for setUpstreamHost when not given there. */
  hostMetadata?: FilterMetadata;
  hostLocality?: Locality;
}

/** The upstream host the router connected to (StreamInfo::upstreamInfo()). */
export interface UpstreamHostInfo {
  /** "ip:port" (IPv6 in brackets), as Envoy prints addresses. */
  address: string;
  localAddress?: string;
  metadata?: FilterMetadata;
  localityMetadata?: FilterMetadata;
  locality?: Locality;
  tls?: TlsInfo;
  transportFailureReason?: string;
  /** Connection-pool callback latency (upstream.cx_pool_ready_duration), ns. */
  poolReadyNs?: bigint;
}

export interface StreamInfo {
  startTimeNs: bigint;
  completeNs: bigint | null;
  protocol: string;
  sourceAddress: string;
  destinationAddress: string;
  connectionId: number;
  /** The downstream connection's TLS (null: plaintext). */
  downstreamTls: TlsInfo | null;
  /** SNI the client asked for ("" without TLS). */
  requestedServerName: string;
  connectionTerminationDetails: string | null;
  downstreamTransportFailureReason: string;
  responseCode: number | null;
  responseCodeDetails: string | null;
  /** Envoy's response flags (%RESPONSE_FLAGS%), e.g. UC when the upstream connection was terminated. */
  responseFlags: string[];
  bytesReceived: number;
  bytesSent: number;
  /** The stream's dynamic metadata (metadata property): set by Envoy filters such as jwt_authn. */
  dynamicMetadata: FilterMetadata;
  route: RouteInfo | null;
  cluster: ClusterInfo | null;
  upstream: UpstreamHostInfo | null;
  /** Upstream attempts the router made (null before the router). */
  attemptCount: number | null;
  /** UpstreamTiming first_upstream_tx_byte_sent_ / last_upstream_rx_byte_received_ (host clock). */
  firstUpstreamTxNs: bigint | null;
  lastUpstreamRxNs: bigint | null;
}

/** What Envoy's ListenerInfo and filter chain give xds.*. */
export interface ListenerInfo {
  /** The listener's metadata.filter_metadata. */
  metadata?: FilterMetadata;
  /** envoy.config.core.v3.TrafficDirection: 0 UNSPECIFIED, 1 INBOUND, 2 OUTBOUND. */
  direction?: number;
  filterChainName?: string;
}
