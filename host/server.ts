// The local gateway: the host as an HTTP server doing what Envoy's HTTP connection manager and
// router do for Sluice's envoy.yaml — one listener, the wasm filter chain, a route that picks the
// cluster from a header (route.cluster_header), clusters with endpoints, and the router's own
// answers when an upstream cannot be reached (503) or is too slow (504), the route's idle timeout
// (408 before the response starts, a reset after), and the access log.
// Four timers, each an Envoy setting of its own (see routeAction in cli/render.ts):
//   connect    cluster connect_timeout: only while the connection (TCP, and TLS for https) opens;
//              a reused keep-alive connection has none. Past it: 503, connection failure (UF).
//   first byte route retry_policy.per_try_timeout: armed once the request is sent on an open
//              connection, disarmed by the response headers (Envoy's UpstreamRequest::onPerTryTimeout
//              ignores it once the response has started). Past it: 504 upstream_per_try_timeout (UT).
//   idle       route idle_timeout: restarted by every byte either way. Past it: 408 (SI), or a reset.
//   total      route timeout: end of request to end of response, streams included (0: off).
// Bodies stream both ways:
// nothing is buffered here beyond what the filters ask Envoy to buffer, and that is bounded by the
// stream's buffer limit (Envoy's 413 / 500 past it, host/stream.ts). Envoy's flow control bounds
// the rest: above a connection's high watermark the other side is no longer read, below the low
// watermark (half) it is read again. A chunk is written once and never kept. An upstream reset in
// the middle of a body the filters still hold gets the router's local reply, directly (rewritten by
// local_reply_config). close() drains: no new connections, in-flight requests finish.
// startAdmin() serves /stats/prometheus and /ready, and the live page (host/live/).
import http from "node:http";
import https from "node:https";
import { randomUUID } from "node:crypto";
import type { AddressInfo, Socket } from "node:net";
import { TLSSocket } from "node:tls";
import { X509Certificate } from "node:crypto";
import type { Host } from "./host.js";
import type { TagSpecifier } from "./metrics.js";
import { DEFAULT_BUFFER_LIMIT, type Stream, type TlsInfo } from "./stream.js";
import { sanMatch, sansAllowed, type SanMatcher } from "./listener-tls.js";
import { certificateNames } from "./x509.js";
import { rewriteLocalReply } from "./local-reply.js";
import type { RecentRequests } from "./live/recent.js";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { sniFor } from "./http-call.js";

export interface ClusterTarget {
  /** Base URL of the cluster's endpoint: http(s)://host:port */
  url: string;
  /** Envoy cluster connect_timeout. */
  connectTimeoutMs?: number;
  /** The cluster's per_connection_buffer_limit_bytes (default 1 MiB): the upstream connection's
   * write high watermark; above it the client's request body is no longer read. */
  bufferLimitBytes?: number;
}

/** The listener's TLS (envoy.yaml's DownstreamTlsContext, host/listener-tls.ts) with its PEM read. */
export interface ListenerTlsOptions {
  cert: string;
  key: string;
  /** Trusted CAs for client certificates (absent: none is asked for). */
  ca?: string;
  /** Refuse a client that presents no certificate (require_client_certificate, or SAN matchers). */
  requireClientCertificate: boolean;
  sanMatchers: SanMatcher[];
  minVersion: "TLSv1.2" | "TLSv1.3";
  maxVersion: "TLSv1.2" | "TLSv1.3";
  /** ALPN offered (the local gateway speaks http/1.1 only). */
  alpn: string[];
}

export interface GatewayOptions {
  host: Host;
  /** Serve HTTPS with these settings (absent: plaintext). */
  tls?: ListenerTlsOptions;
  port?: number;
  address?: string;
  /** route.cluster_header: the request header naming the cluster. */
  clusterHeader: string;
  clusters: Record<string, ClusterTarget>;
  /**
   * Worker threads (Envoy's --concurrency, default 1): a downstream connection is handed to one worker
   * and all its streams run on that worker's VMs, as Envoy's listener does (connections balance
   * across workers; a connection never moves).
   */
  workers?: number;
  /** route.timeout: from the end of the request to the end of the upstream response (Envoy's
   * default is 15 s; 0 or unset: none here). */
  routeTimeoutMs?: number;
  /** route.idle_timeout: longest silence on the stream in either direction (0 or unset: none). */
  idleTimeoutMs?: number;
  /** route.retry_policy.per_try_timeout: from the request sent on an open connection to the response
   * headers (0 or unset: none). */
  firstByteTimeoutMs?: number;
  /** The listener's per_connection_buffer_limit_bytes (default 1 MiB): the client connection's write
   * high watermark (above it the upstream response is no longer read) and each stream's buffer limit. */
  listenerBufferLimitBytes?: number;
  /** The route's request_body_buffer_limit: raises the stream's buffer limit above the listener's. */
  routeRequestBodyBufferLimitBytes?: number;
  /** close(): how long in-flight requests may take before their connections are cut (default 30 s). */
  drainTimeoutMs?: number;
  /** Called once per finished stream, after the filters' on_log (Envoy's access log). */
  accessLog?: (s: Stream, downstreamStatus: number, extra: { cluster: string | null }) => void;
}

export interface Gateway {
  url: string;
  port: number;
  server: http.Server | https.Server;
  /** Stops accepting, lets in-flight requests finish, then resolves. */
  close(): Promise<void>;
  /**
   * New streams run on `next` (a filter configuration update, host/reload.ts); streams already started
   * keep the host they started on, which is closed once the last of them ends (resolves then).
   */
  setHost(next: Host): Promise<void>;
}

/** An address as Envoy prints it (Address::Instance::asString): "ip:port", IPv6 in brackets. */
function envoyAddress(ip: string | undefined, port: number | undefined): string {
  const a = ip ?? "127.0.0.1";
  return `${a.includes(":") ? `[${a}]` : a}:${port ?? 0}`;
}

/** The connection pool handed the request a connection (TLS: after the handshake): upstream.address,
 * local_address and tls_version (StreamInfo::upstreamInfo()). */
function recordUpstreamHost(req: http.ClientRequest, s: Stream): void {
  req.on("socket", (sock) => {
    const tlsSock = sock instanceof TLSSocket ? sock : null;
    const record = () =>
      s.setUpstreamHost({
        address: envoyAddress(sock.remoteAddress, sock.remotePort),
        localAddress: envoyAddress(sock.localAddress, sock.localPort),
        ...(tlsSock?.getProtocol() ? { tls: { version: tlsSock.getProtocol()! } } : {}),
      });
    if (!sock.connecting) record();
    else sock.once(tlsSock ? "secureConnect" : "connect", record);
  });
}

// The HTTP/1 codec's request header limits, Envoy's defaults: max_request_headers_kb 60 (the sum of
// header name and value lengths, ConnectionImpl::checkMaxHeadersSize in
// source/common/http/http1/codec_impl.cc) and common_http_protocol_options.max_headers_count 100
// (ServerConnectionImpl: http1.too_many_headers). Past either, the codec answers 431 itself.
export const MAX_REQUEST_HEADERS_BYTES = 60 * 1024;
export const MAX_REQUEST_HEADERS_COUNT = 100;
// Node's own header parser stops at this many bytes of header block (it counts the request line and
// the separators too, so anything it refuses is past Envoy's limit as well): the clientError handler
// then answers with Envoy's 431.
const NODE_MAX_HEADER_SIZE = 256 * 1024;

// Hop-by-hop headers Envoy never forwards (RFC 9110 §7.6.1).
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer", "host"]);

// The x-envoy-* headers that steer Envoy's router (retries, timeouts, tracing), which the HCM
// removes from every request that is not internal (ConnectionManagerUtility::cleanInternalHeaders in
// source/common/http/conn_manager_utility.cc). Since Envoy 1.33 no address is internal unless
// internal_address_config says so (DefaultInternalAddressConfig, conn_manager_config.h), and Sluice's
// envoy.yaml sets none: a client can never ask for retries or other timeouts.
const ENVOY_CONTROL_HEADERS = new Set([
  "x-envoy-retriable-status-codes", "x-envoy-retriable-header-names", "x-envoy-retry-on", "x-envoy-retry-grpc-on",
  "x-envoy-max-retries", "x-envoy-upstream-alt-stat-name", "x-envoy-upstream-rq-timeout-ms",
  "x-envoy-upstream-rq-per-try-timeout-ms", "x-envoy-upstream-rq-timeout-alt-response", "x-envoy-expected-rq-timeout-ms",
  "x-envoy-force-trace", "x-envoy-ip-tags", "x-envoy-original-url", "x-envoy-hedge-on-per-try-timeout",
]);

/** One request through the chain and, when the filters let it, to the upstream and back. */
class Exchange {
  private readonly s: Stream;
  /** The host (filter configuration) this stream started on; a reload does not change it. */
  readonly host: Host;
  private upstreamReq: http.ClientRequest | null = null;
  /** The upstream response being read (paused above the client connection's high watermark). */
  private upstreamRes: http.IncomingMessage | null = null;
  /** This side ended the upstream request (a local reply, an abort): its errors are not resets. */
  private upstreamClosed = false;
  private upstreamPaused = false;
  private downstreamPaused = false;
  private upEnded = false;
  private downHeaders = false;
  private localWritten = false;
  private done = false;
  private timer: NodeJS.Timeout | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private connectTimer: NodeJS.Timeout | null = null;
  private firstByteTimer: NodeJS.Timeout | null = null;
  /** The upstream connection is open (TCP, and TLS for https): Envoy's pool is ready. */
  private connected = false;
  private responseStarted = false;
  private cluster: string | null = null;
  /** When the request's last byte went to the router (the router's downstream_request_complete_time_). */
  private requestCompleteAt = 0;
  /** The request has no body: it is complete with its headers (Node marks it complete only later). */
  private noRequestBody = false;
  /** Body chunks taken while deciding the response's framing, written right after the headers. */
  private readonly pendingEarly: Buffer[] = [];
  /** The server is draining: this response tells the client to close the connection. */
  closeConnection = false;

  constructor(
    private readonly g: GatewayOptions,
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
    private readonly active: Set<Exchange>,
    worker: number,
  ) {
    // Envoy: the listener's limit is the stream's buffer limit; the route's request_body_buffer_limit
    // can only raise it (data-plane-api route_components.proto, Route.request_body_buffer_limit).
    const limit = Math.max(g.listenerBufferLimitBytes ?? DEFAULT_BUFFER_LIMIT, g.routeRequestBodyBufferLimitBytes ?? 0);
    this.host = g.host;
    this.s = this.host.newStream({
      worker,
      sourceAddress: envoyAddress(req.socket.remoteAddress, req.socket.remotePort),
      destinationAddress: envoyAddress(req.socket.localAddress, req.socket.localPort),
      protocol: req.httpVersion === "2.0" ? "HTTP/2" : `HTTP/${req.httpVersion}`,
      ...(req.socket instanceof TLSSocket ? downstreamTls(req.socket) : {}),
      bufferLimitBytes: limit,
      keepBodies: false,
    });
  }

  /** :scheme and x-forwarded-proto: the downstream connection's. Envoy's HCM sets an absent
   * x-forwarded-proto from the connection's encryption and an HTTP/1 request's :scheme from it
   * (ConnectionManagerUtility::mutateRequestHeaders; Envoy's docs, http_conn_man/headers.rst ":scheme"). */
  private get scheme(): string {
    return this.req.socket instanceof TLSSocket ? "https" : "http";
  }

  start(): void {
    const { req } = this;
    const headers: [string, string][] = [
      [":method", req.method ?? "GET"],
      [":path", req.url ?? "/"],
      [":authority", req.headers.host ?? "localhost"],
      [":scheme", this.scheme],
    ];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const k = req.rawHeaders[i].toLowerCase();
      if (!HOP_BY_HOP.has(k) && !ENVOY_CONTROL_HEADERS.has(k)) headers.push([k, req.rawHeaders[i + 1]]);
    }
    if (!req.headers["x-request-id"]) headers.push(["x-request-id", randomUUID()]);
    // ConnectionManagerUtility::mutateRequestHeaders: x-forwarded-proto is set only when absent
    // (use_remote_address is not set in Sluice's envoy.yaml).
    // The scheme is the connection's (https on a TLS listener).
    if (!req.headers["x-forwarded-proto"]) headers.push(["x-forwarded-proto", this.scheme]);
    const noBody = req.headers["content-length"] === "0" || (req.headers["content-length"] === undefined && req.headers["transfer-encoding"] === undefined);
    this.noRequestBody = noBody;
    this.guard(() => this.s.callOnRequestHeaders(headers, noBody));
    this.touch();
    if (!noBody) {
      req.on("data", (chunk: Buffer) => {
        this.touch();
        this.guard(() => this.s.callOnRequestBody(chunk, false));
      });
      req.on("end", () => this.guard(() => this.s.callOnRequestBody(Buffer.alloc(0), true)));
    }
    // The client went away before the answer was complete: Envoy resets the upstream too.
    this.res.on("close", () => {
      if (!this.res.writableFinished) this.abort();
    });
    // The client read what was queued for it: below the low watermark the upstream is read again.
    this.res.on("drain", () => this.flowControl());
  }

  /** Activity on the stream: restarts the route idle timer (HCM stream idle timeout semantics). */
  private touch(): void {
    const ms = this.g.idleTimeoutMs;
    if (!ms || this.done) return;
    if (this.idleTimer) this.idleTimer.refresh();
    else this.idleTimer = setTimeout(() => this.onIdle(), ms);
  }

  private onIdle(): void {
    if (this.done) return;
    // Envoy: 408 if no upstream response header has been received, otherwise a stream reset.
    if (this.responseStarted) this.abort();
    else this.routerReply(408, "stream timeout", "stream_idle_timeout", "SI");
  }

  /** Runs a host step, then forwards whatever the filters released. */
  guard(fn: () => void): void {
    if (this.done) return;
    try {
      fn();
      this.pump();
    } catch (e) {
      this.fail(e);
    }
  }

  pump(): void {
    if (this.done) return;
    const s = this.s;
    if (s.reset) {
      // A filter reset the stream (proxy_close_stream) or replied after the response began: as
      // Envoy does, what already passed the filters has been written, the upstream request is
      // reset (the provider's connection closes) and so is the client's (HTTP/1.1: the
      // connection closes before the chunked body's last chunk).
      if (this.downHeaders) for (const chunk of s.downstream.take()) this.res.write(chunk);
      this.abort();
      return;
    }
    const local = s.getSentLocalResponse();
    if (local && !this.localWritten) {
      // A local reply ends the stream; Envoy then resets the upstream request, also when a filter
      // sent the reply while it held the upstream's response (sendDirectLocalReply): the rest of
      // that response is never read.
      this.localWritten = true;
      this.closeUpstream();
    }
    // Toward the upstream: each chunk once, as it passed the filters.
    if (s.upstream.headers && !this.upstreamReq && !local) this.openUpstream();
    const up = s.upstream.take();
    if (this.upstreamReq && !this.upstreamClosed) for (const chunk of up) this.upstreamReq.write(chunk);
    if (this.upstreamReq && !this.upstreamClosed && s.upstream.ended && !this.upEnded) {
      this.upEnded = true;
      this.upstreamReq.end();
      this.requestCompleteAt = performance.now();
      // Envoy's route timeout runs from the end of the downstream request to the end of the response.
      if (this.g.routeTimeoutMs && !this.timer) {
        this.timer = setTimeout(() => this.routerReply(504, "upstream request timeout", "upstream_response_timeout", "UT"), this.g.routeTimeoutMs);
      }
      this.armFirstByte();
    }
    // Toward the client.
    const down = s.downstream;
    let headNow = false;
    if (down.headers && !this.downHeaders) {
      this.downHeaders = true;
      const status = Number(down.headers.find(([k]) => k === ":status")?.[1] ?? 502);
      const out: [string, string][] = down.headers.filter(([k]) => !k.startsWith(":") && !HOP_BY_HOP.has(k) && k !== "server");
      // The HCM's server_header_transformation (default OVERWRITE) with server_name "envoy": every
      // response, proxied or local, says "server: envoy" (ActiveStream::encodeHeaders). A date the
      // upstream sent is kept; Node adds one (the same IMF-fixdate) where it is missing, as the HCM does.
      out.push(["server", "envoy"]);
      // Draining, or answering before the request is complete: HTTP/1.1 closes the connection after
      // this response (Envoy conn_manager_impl.cc ActiveStream::encodeHeaders: a response before the
      // request's last byte, downstream_rq_response_before_rq_complete, drains an HTTP/1 connection
      // rather than reading the rest of the body).
      if (this.closeConnection || (!this.req.complete && !this.noRequestBody)) out.push(["connection", "close"]);
      // Otherwise no connection header at all: Envoy's HTTP/1 codec keeps an HTTP/1.1 connection open
      // without saying so, and never writes Keep-Alive. Node would add "Connection: keep-alive" and
      // "Keep-Alive: timeout=N"; removing the header before writeHead stops both and keeps the socket.
      else this.res.removeHeader("connection");
      // A headers-only response: Envoy's HTTP/1 codec writes "content-length: 0" rather than an empty
      // chunked body (ResponseEncoderImpl encodeHeaders with end_stream; not for 1xx/204/304 or HEAD).
      if (down.ended && !out.some(([k]) => k === "content-length") && status >= 200 && status !== 204 && status !== 304 && this.req.method !== "HEAD") {
        const early = down.take();
        if (early.every((c) => c.length === 0)) out.push(["content-length", "0"]);
        else for (const c of early) this.pendingEarly.push(c);
      }
      this.res.writeHead(status, out.flat());
      headNow = true;
    }
    // The headers leave with the body bytes released with them, in one write (Node sends its
    // header block with the first non-empty chunk or the end), or alone when none came with them:
    // a write of the headers on their own was a system call per request.
    let bodyNow = false;
    if (this.pendingEarly.length) for (const chunk of this.pendingEarly.splice(0)) bodyNow = this.toClient(chunk) || bodyNow;
    if (this.downHeaders) for (const chunk of down.take()) bodyNow = this.toClient(chunk) || bodyNow;
    if (this.downHeaders && down.ended) {
      this.finish();
      return;
    }
    if (headNow && !bodyNow) this.res.flushHeaders();
    this.flowControl();
  }

  /** Writes a chunk to the client; whether it held any bytes. */
  private toClient(chunk: Buffer): boolean {
    this.res.write(chunk);
    return chunk.length > 0;
  }

  /**
   * Envoy's watermark flow control. Toward the client: above the client connection's high watermark
   * (the listener's per_connection_buffer_limit_bytes) the HCM read-disables the upstream
   * (onAboveWriteBufferHighWatermark -> the router's UpstreamRequest readDisable), and re-enables it
   * under the low watermark, half the limit (Buffer::WatermarkBuffer::setWatermarks). Toward the
   * upstream likewise with the cluster's limit and the client's request. A filter's watermark stop
   * past the stream's limit read-disables its direction too (onDecoderFilterAboveWriteBufferHighWatermark).
   */
  flowControl(): void {
    if (this.done) return;
    const s = this.s;
    const r = this.upstreamRes;
    if (r) {
      const high = this.g.listenerBufferLimitBytes ?? DEFAULT_BUFFER_LIMIT;
      const queued = this.res.writableLength;
      const held = s.aboveHighWatermark("response");
      if (!this.upstreamPaused && (queued > high || held)) {
        this.upstreamPaused = true;
        r.pause();
      } else if (this.upstreamPaused && !held && queued <= high / 2) {
        this.upstreamPaused = false;
        r.resume();
      }
    }
    if (!this.req.complete) {
      const high = this.clusterTarget?.bufferLimitBytes ?? DEFAULT_BUFFER_LIMIT;
      const queued = this.upstreamReq && !this.upstreamClosed ? this.upstreamReq.writableLength : 0;
      const held = s.aboveHighWatermark("request");
      if (!this.downstreamPaused && (queued > high || held)) {
        this.downstreamPaused = true;
        this.req.pause();
      } else if (this.downstreamPaused && !held && queued <= high / 2) {
        this.downstreamPaused = false;
        this.req.resume();
      }
    }
  }

  private clusterTarget: ClusterTarget | null = null;

  /** Ends the upstream request from this side; what it reports afterwards is not a reset. */
  private closeUpstream(): void {
    this.upstreamClosed = true;
    this.upstreamReq?.destroy();
    if (this.upstreamPaused) this.upstreamRes?.resume(); // let the socket go
  }

  /**
   * The upstream connection ended in the middle of its answer. Envoy: Router::Filter::onUpstreamReset
   * -> onUpstreamAbort sets the response flag (UC, connection termination) and calls sendLocalReply
   * with 503 and details upstream_reset_after_response_started{connection_termination}
   * (source/common/router/router.cc); DownstreamFilterManager::sendLocalReply answers directly when
   * the response headers went into the filters but none let them out (a filter holds a JSON answer
   * while it buffers), and resets the stream once headers reached the client (filter_manager.cc).
   */
  private onUpstreamReset(): void {
    if (this.done || this.upstreamClosed) return;
    this.upstreamClosed = true;
    this.guard(() =>
      this.s.routerLocalReply(
        503,
        "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
        "upstream_reset_after_response_started{connection_termination}",
        "UC",
      ),
    );
  }

  openUpstream(): void {
    const s = this.s;
    const up = s.upstream.headers!;
    const get = (k: string) => up.find(([n]) => n === k)?.[1];
    const clusterName = get(this.g.clusterHeader);
    const cluster = clusterName ? this.g.clusters[clusterName] : undefined;
    this.cluster = cluster ? clusterName! : null;
    this.clusterTarget = cluster ?? null;
    // The router resolved the route's cluster (StreamInfo::setUpstreamClusterInfo): xds.cluster_*.
    if (cluster) this.s.setUpstreamCluster(clusterName!);
    if (!cluster) {
      // Envoy: a cluster_header that is absent names the cluster "" (RouteEntryImplBase::
      // pickClusterViaClusterHeader); an unknown cluster gets the route's cluster_not_found_response_code,
      // default SERVICE_UNAVAILABLE: 503, empty body, details cluster_not_found, flag NC
      // (Router::Filter::decodeHeaders in source/common/router/router.cc).
      this.routerReply(503, "", "cluster_not_found", "NC");
      return;
    }
    const target = new URL(cluster.url);
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of up) {
      if (k.startsWith(":") || HOP_BY_HOP.has(k)) continue;
      const prev = headers[k];
      headers[k] = prev === undefined ? v : ([] as string[]).concat(prev, v);
    }
    headers.host = get(":authority") ?? target.host;
    // The router tells the upstream how long it will wait (FilterUtility::finalTimeout in
    // source/common/router/router.cc: x-envoy-expected-rq-timeout-ms, the route timeout, unless
    // suppress_envoy_headers); the filters never see it, the router adds it after them.
    if (this.g.routeTimeoutMs) headers["x-envoy-expected-rq-timeout-ms"] = String(this.g.routeTimeoutMs);
    const mod = target.protocol === "https:" ? https : http;
    const upstreamReq = mod.request({
      protocol: target.protocol,
      hostname: target.hostname,
      port: target.port || (target.protocol === "https:" ? 443 : 80),
      method: get(":method") ?? "GET",
      path: get(":path") ?? "/",
      headers,
      servername: target.protocol === "https:" ? sniFor(String(headers.host)) : undefined,
    });
    this.upstreamReq = upstreamReq;
    // The connect timeout covers opening the connection only (Envoy's pool connect timer is
    // disabled on the Connected event, which a TLS socket raises after its handshake).
    upstreamReq.on("socket", (sock) => {
      if (!sock.connecting && (target.protocol !== "https:" || (sock as { encrypted?: boolean }).encrypted)) {
        this.onConnected();
        return;
      }
      const ms = cluster.connectTimeoutMs ?? 5000;
      this.connectTimer = setTimeout(() => upstreamReq.destroy(new Error("connect timeout")), ms);
      sock.once(target.protocol === "https:" ? "secureConnect" : "connect", () => this.onConnected());
    });
    const openedAt = performance.now();
    upstreamReq.on("drain", () => this.flowControl());
    upstreamReq.on("response", (r) => {
      if (this.firstByteTimer) clearTimeout(this.firstByteTimer);
      this.firstByteTimer = null;
      if (this.upstreamClosed) {
        r.resume();
        return;
      }
      this.responseStarted = true;
      this.upstreamRes = r;
      const rh: [string, string][] = [[":status", String(r.statusCode ?? 502)]];
      for (let i = 0; i < r.rawHeaders.length; i += 2) {
        const k = r.rawHeaders[i].toLowerCase();
        if (!HOP_BY_HOP.has(k)) rh.push([k, r.rawHeaders[i + 1]]);
      }
      // The router adds x-envoy-upstream-service-time (ms from the end of the downstream request to
      // the upstream's response headers) before the response enters the filters (Router::Filter::
      // onUpstreamHeaders; the router's suppress_envoy_headers is not set in Sluice's envoy.yaml).
      const since = this.requestCompleteAt || openedAt;
      rh.push(["x-envoy-upstream-service-time", String(Math.max(0, Math.round(performance.now() - since)))]);
      const noBody = r.headers["content-length"] === "0";
      this.touch();
      this.guard(() => this.s.callOnResponseHeaders(rh, noBody));
      r.on("data", (chunk: Buffer) => {
        this.touch();
        this.guard(() => this.s.callOnResponseBody(chunk, false));
      });
      r.on("end", () => {
        if (this.timer) clearTimeout(this.timer);
        if (!noBody) this.guard(() => this.s.callOnResponseBody(Buffer.alloc(0), true));
      });
      r.on("error", () => this.onUpstreamReset());
      r.on("aborted", () => this.onUpstreamReset());
    });
    upstreamReq.on("error", (e: NodeJS.ErrnoException) => {
      if (this.upstreamClosed) return;
      if (this.upstreamRes) {
        // Reset after the response began.
        this.onUpstreamReset();
        return;
      }
      const [reason, transport, flag] = this.connected ? ["connection termination", "", "UC"] : connectFailure(e);
      // UpstreamRequest::onPoolFailure still records the host it tried and the transport failure
      // reason (%UPSTREAM_HOST%, %UPSTREAM_TRANSPORT_FAILURE_REASON%).
      const tried = e as NodeJS.ErrnoException & { address?: string; port?: number };
      if (!this.connected && tried.address) this.s.setUpstreamHost({ address: envoyAddress(tried.address, tried.port), transportFailureReason: transport });
      this.routerReply(503, upstreamResetBody(reason, transport), upstreamResetDetails(reason, transport), flag);
    });
    recordUpstreamHost(upstreamReq, this.s);
  }

  private onConnected(): void {
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this.connected = true;
    this.armFirstByte();
  }

  /** Envoy arms the per-try timer when the request is complete and the pool has a connection. */
  private armFirstByte(): void {
    const ms = this.g.firstByteTimeoutMs;
    if (!ms || !this.connected || !this.upEnded || this.responseStarted || this.firstByteTimer || this.done) return;
    this.firstByteTimer = setTimeout(() => this.routerReply(504, "upstream request timeout", "upstream_per_try_timeout", "UT"), ms);
  }

  /** The router's own answer before any upstream response: a local reply with its response flag,
   * which (as in Envoy, sendLocalReplyViaFilterChain) passes through the filters' response callbacks
   * after local_reply_config's rewrite. */
  routerReply(status: number, body: string, details: string, responseFlag: string): void {
    if (this.done) return;
    if (this.responseStarted) {
      // The route timeout after the upstream response began (router onResponseTimeout ->
      // onUpstreamAbort): sendLocalReply answers directly while a filter holds the response
      // headers, and resets the stream once they reached the client (doLocalReply).
      if (status === 504 && this.upstreamRes && !this.upstreamClosed) {
        this.closeUpstream();
        this.guard(() => this.s.routerLocalReply(status, body, details, responseFlag));
      }
      return;
    }
    this.responseStarted = true;
    this.closeUpstream();
    this.guard(() => this.s.routerLocalReply(status, body, details, responseFlag));
  }

  private clearTimers(): void {
    for (const t of [this.timer, this.idleTimer, this.connectTimer, this.firstByteTimer]) if (t) clearTimeout(t);
    this.timer = this.idleTimer = this.connectTimer = this.firstByteTimer = null;
  }

  finish(): void {
    if (this.done) return;
    this.done = true;
    this.clearTimers();
    this.res.end();
    this.complete();
  }

  abort(): void {
    if (this.done) return;
    this.done = true;
    this.clearTimers();
    this.closeUpstream();
    this.res.destroy();
    this.complete();
  }

  fail(e: unknown): void {
    this.host.log("gateway", 0, 4, `request failed in the host: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    if (!this.res.headersSent) {
      this.res.writeHead(500, { "content-type": "application/json" });
      this.res.end(JSON.stringify({ error: { message: "Internal gateway error.", type: "api_error", param: null, code: "internal_error" } }));
    } else this.res.destroy();
    this.done = true;
    this.clearTimers();
    this.closeUpstream();
    this.complete();
  }

  private complete(): void {
    this.active.delete(this);
    this.onComplete();
    try {
      this.s.completeHttpContext();
    } catch (e) {
      this.host.log("gateway", 0, 4, `on_log/on_done failed: ${String(e)}`);
    }
    try {
      this.g.accessLog?.(this.s, this.res.headersSent ? this.res.statusCode : 0, { cluster: this.cluster });
    } catch (e) {
      this.host.log("gateway", 0, 4, `access log failed: ${String(e)}`);
    }
  }

  /** Set by the server: called when the exchange is over (draining waits for these). */
  onComplete: () => void = () => {};
}

/** What a TLS connection's streams read as connection.* (set once the handshake is accepted). */
const connectionTls = new WeakMap<TLSSocket, { tls: TlsInfo; requestedServerName: string }>();

function downstreamTls(sock: TLSSocket): { tls?: TlsInfo; requestedServerName?: string } {
  return connectionTls.get(sock) ?? {};
}

/**
 * Envoy's Ssl::ConnectionInfo of an accepted connection (connection.* properties): version
 * (SSL_get_version), whether the peer presented a certificate, both certificates' RFC 2253 subjects
 * and SANs (host/x509.ts), the peer certificate's SHA-256.
 */
function tlsInfo(sock: TLSSocket, local: ReturnType<typeof certificateNames>, p: ReturnType<typeof certificateNames> | null): TlsInfo {
  const of = (n: ReturnType<typeof certificateNames> | null, type: string) => (n ? n.sans.filter((s) => s.type === type).map((s) => s.value) : []);
  return {
    version: sock.getProtocol() ?? "",
    peerCertificatePresented: p !== null,
    subjectLocalCertificate: local.subject,
    uriSanLocalCertificate: of(local, "uri"),
    dnsSanLocalCertificate: of(local, "dns"),
    ...(p
      ? { subjectPeerCertificate: p.subject, uriSanPeerCertificate: of(p, "uri"), dnsSanPeerCertificate: of(p, "dns"), sha256PeerCertificateDigest: p.sha256 }
      : {}),
  };
}

/**
 * An HTTPS server for the listener's TLS. node:tls checks the chain against `ca` and, with
 * rejectUnauthorized, refuses a client without a valid certificate in the handshake; a client that
 * offers a certificate where none is required must still present a valid one (Envoy verifies every
 * certificate it asked for), and the SAN matchers run once the handshake is done, before any byte
 * of the request is read: a connection that fails either is closed without an HTTP answer. (Envoy
 * fails the handshake itself with a TLS alert; node:tls has no server-side hook for that.)
 */
function httpsServer(t: ListenerTlsOptions, handler: http.RequestListener): https.Server {
  let server: https.Server;
  let local: ReturnType<typeof certificateNames>;
  try {
    local = certificateNames(new X509Certificate(t.cert).raw);
    server = https.createServer({
      maxHeaderSize: NODE_MAX_HEADER_SIZE,
      cert: t.cert,
      key: t.key,
      ...(t.ca ? { ca: t.ca, requestCert: true, rejectUnauthorized: t.requireClientCertificate } : {}),
      // Envoy's trust store has X509_V_FLAG_PARTIAL_CHAIN (an intermediate given as trusted_ca is an anchor).
      allowPartialTrustChain: true,
      minVersion: t.minVersion,
      maxVersion: t.maxVersion,
      ...(t.alpn.length ? { ALPNProtocols: t.alpn.filter((p) => p === "http/1.1") } : {}),
    }, handler);
  } catch (e) {
    throw new Error(`listener TLS: the certificate, key or client CA is not usable: ${(e as Error).message}`);
  }
  const matchers = t.sanMatchers.map((m) => ({ type: m.type, match: sanMatch(m) }));
  // First, before the HTTP server's own listener starts reading the connection.
  server.prependListener("secureConnection", (sock: TLSSocket) => {
    try {
      const der = sock.getPeerX509Certificate()?.raw;
      const peer = der ? certificateNames(der) : null;
      let ok = !t.ca || !peer || sock.authorized;
      if (ok && matchers.length) ok = !!peer && sansAllowed(matchers, peer.sans);
      if (ok) {
        connectionTls.set(sock, { tls: tlsInfo(sock, local, peer), requestedServerName: typeof sock.servername === "string" ? sock.servername : "" });
        return;
      }
    } catch {
      // A certificate whose DER host/x509.ts cannot read: refused, as a certificate that fails a check.
    }
    sock.destroy();
  });
  return server;
}

export async function startGateway(g: GatewayOptions): Promise<Gateway> {
  const active = new Set<Exchange>();
  // The worker each downstream connection was handed to (round-robin as connections arrive).
  const workerOf = new WeakMap<object, number>();
  let nextWorker = 0;
  const workers = g.workers ?? 1;
  const workerFor = (sock: object): number => {
    let w = workerOf.get(sock);
    if (w === undefined) {
      w = nextWorker++ % workers;
      workerOf.set(sock, w);
    }
    return w;
  };
  let draining = false;
  let drained: (() => void) | null = null;
  const handler: http.RequestListener = (req, res) => {
    const tooLarge = requestHeadersTooLarge(req.rawHeaders);
    if (tooLarge) {
      codecReply(g, res, tooLarge);
      return;
    }
    // An HTTP/2 request's socket is a per-stream proxy; its connection is the stream's session.
    const connection = (req as unknown as { stream?: { session?: object } }).stream?.session ?? req.socket;
    const x = new Exchange(g, req, res, active, workerFor(connection));
    // A request that arrives on a kept-alive connection while draining is served, then the
    // connection closes (Envoy drains with "connection: close").
    x.closeConnection = draining;
    x.onComplete = () => {
      if (x.host !== g.host) retiredStreamDone(x.host);
      if (!draining) return;
      setImmediate(() => server.closeIdleConnections());
      if (active.size === 0) drained?.();
    };
    active.add(x);
    x.start();
  };
  const server = g.tls ? httpsServer(g.tls, handler) : http.createServer({ maxHeaderSize: NODE_MAX_HEADER_SIZE }, handler);
  const pumpAll = () => {
    for (const x of [...active]) x.pump();
  };
  g.host.afterAsync = pumpAll;
  // Hosts replaced by setHost, each closed when no active stream uses it.
  const retired = new Map<Host, () => void>();
  const retiredStreamDone = (h: Host) => {
    const done = retired.get(h);
    if (!done || [...active].some((x) => x.host === h)) return;
    retired.delete(h);
    h.close();
    done();
  };
  server.keepAliveTimeout = 65_000;
  // Every header reaches the size and count checks (Node would drop those past 2000 silently).
  server.maxHeadersCount = 0;
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
    // Envoy's codec answers what it cannot parse with its own local reply and closes the connection:
    // 431 for a header block past the limit, 400 "Bad Request" for the rest (sendProtocolError's
    // default error_code_). A connection reset by the client gets nothing.
    if (socket.writable && err.code !== "ECONNRESET") {
      socket.end(err.code === "HPE_HEADER_OVERFLOW" ? rawCodecReply(g, 431, "http1.headers_too_large") : rawCodecReply(g, 400, "http1.codec_error"));
      return;
    }
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(g.port ?? 0, g.address ?? "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  g.host.startTimers();
  const shown = g.address === undefined || g.address === "0.0.0.0" || g.address === "::" ? "127.0.0.1" : g.address;
  let closing: Promise<void> | null = null;
  return {
    url: `${g.tls ? "https" : "http"}://${shown.includes(":") ? `[${shown}]` : shown}:${port}`,
    port,
    server,
    setHost(next: Host) {
      const old = g.host;
      if (next === old) return Promise.resolve();
      next.afterAsync = pumpAll;
      g.host = next;
      next.startTimers();
      // The old host keeps its timers and VMs for the streams still on it.
      const gone = new Promise<void>((resolve) => retired.set(old, resolve));
      retiredStreamDone(old);
      return gone;
    },
    close() {
      closing ??= (async () => {
        draining = true;
        for (const x of active) x.closeConnection = true;
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        if (active.size) {
          await new Promise<void>((resolve) => {
            drained = resolve;
            const t = setTimeout(resolve, g.drainTimeoutMs ?? 30_000);
            t.unref?.();
          });
        }
        server.closeAllConnections();
        await closed;
        g.host.stopTimers();
        for (const h of [...retired.keys()]) retiredStreamDone(h);
      })();
      return closing;
    },
  };
}

// The live page's files (host/live/), read when the first admin port starts, not when this module
// loads. The page may load only what this port serves.
const LIVE_DIR = join(dirname(fileURLToPath(import.meta.url)), "live");
// Keyed by paths, which start with "/": no object member answers for one.
let liveFiles: Record<string, { body: Buffer; type: string }> | null = null;

function readLiveFiles(): Record<string, { body: Buffer; type: string }> {
  const file = (name: string, type: string) => ({ body: readFileSync(join(LIVE_DIR, name)), type });
  const page = file("page.html", "text/html; charset=utf-8");
  return {
    "/": page,
    "/live": page,
    "/live/page.js": file("page.js", "text/javascript; charset=utf-8"),
    "/live/page.css": file("page.css", "text/css; charset=utf-8"),
  };
}
const LIVE_HEADERS = {
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "cache-control": "no-store",
  "referrer-policy": "no-referrer",
};

export interface AdminOptions {
  host: Host;
  port?: number;
  address?: string;
  /** stats_config.stats_tags of envoy.yaml */
  statsTags?: TagSpecifier[];
  /** GET /ready answers 200 LIVE while this returns true (Envoy: server state LIVE), else 503. */
  ready?: () => boolean;
  /** The last requests, for the live page's table (/live/recent.json); none: an empty list. */
  recent?: RecentRequests;
}

/**
 * The part of Envoy's admin interface the local gateway offers: /stats/prometheus and /ready. And,
 * the local gateway's own, the live page (docs/live-page.md): / and /live, its script and style, and
 * /live/recent.json.
 */
export async function startAdmin(a: AdminOptions): Promise<{ url: string; port: number; close(): Promise<void> }> {
  const files = (liveFiles ??= readLiveFiles());
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const page = files[path];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { "content-type": "text/plain" }).end("method not allowed\n");
    } else if (page) {
      res.writeHead(200, { "content-type": page.type, ...LIVE_HEADERS }).end(page.body);
    } else if (path === "/favicon.ico") {
      // Browsers ask for it; none is better than a 404 in the page's console.
      res.writeHead(204, LIVE_HEADERS).end();
    } else if (path === "/live/recent.json") {
      res.writeHead(200, { "content-type": "application/json", ...LIVE_HEADERS }).end(JSON.stringify(a.recent?.list() ?? []));
    } else if (path === "/stats/prometheus") {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(a.host.prometheus(a.statsTags ?? []));
    } else if (path === "/ready") {
      const live = a.ready?.() ?? true;
      res.writeHead(live ? 200 : 503, { "content-type": "text/plain" }).end(live ? "LIVE\n" : "DRAINING\n");
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("invalid path. admin commands are: /ready, /stats/prometheus; the live page is /\n");
    }
  });
  await new Promise<void>((resolve) => server.listen(a.port ?? 0, a.address ?? "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const shown = a.address === undefined || a.address === "0.0.0.0" ? "127.0.0.1" : a.address;
  return {
    url: `http://${shown}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

// The socket errors a failed connect reports, as the kernel's strerror words them (Envoy's transport
// failure reason is "delayed connect error: " and that text).
const CONNECT_ERRORS: Record<string, string> = {
  ECONNREFUSED: "Connection refused",
  ECONNRESET: "Connection reset by peer",
  EHOSTUNREACH: "No route to host",
  ENETUNREACH: "Network is unreachable",
  ETIMEDOUT: "Connection timed out",
};

/** A connection that was never made, in Envoy's words: reset reason, transport failure reason, flag.
 * The connect timeout is ConnectionTimeout ("connection timeout"), a refused or failed connect
 * RemoteConnectionFailure ("remote connection failure"); both are UF (Router::Filter::
 * streamResetReasonToResponseFlag, Http::Utility::resetReasonToString). */
function connectFailure(e: NodeJS.ErrnoException): [string, string, string] {
  if (/timeout/i.test(e.message) && !e.code) return ["connection timeout", "", "UF"];
  const text = (e.code && CONNECT_ERRORS[e.code]) ?? e.message;
  return ["remote connection failure", `delayed connect error: ${text}`, "UF"];
}

/** Router::Filter::onUpstreamReset's body (source/common/router/router.cc). */
export function upstreamResetBody(reason: string, transport: string): string {
  return `upstream connect error or disconnect/reset before headers. reset reason: ${reason}${transport ? `, transport failure reason: ${transport}` : ""}`;
}

/** ... and its response_code_details: the reason and transport reason joined by "|", spaces made "_"
 * (StringUtil::replaceAllEmptySpace). */
export function upstreamResetDetails(reason: string, transport: string): string {
  return `upstream_reset_before_response_started{${reason}${transport ? `|${transport}` : ""}}`.replace(/\s/g, "_");
}

/** Envoy's HTTP/1 codec limits on a request's header block: the details of its 431, or null. */
export function requestHeadersTooLarge(raw: string[]): string | null {
  if (raw.length / 2 > MAX_REQUEST_HEADERS_COUNT) return "http1.too_many_headers";
  let bytes = 0;
  for (const part of raw) bytes += Buffer.byteLength(part, "latin1");
  return bytes > MAX_REQUEST_HEADERS_BYTES ? "http1.headers_too_large" : null;
}

/**
 * The codec's 431: ServerConnectionImpl::sendProtocolError calls sendLocalReply with 431 and the
 * body "Request Header Fields Too Large" (CodeUtility::toString), so local_reply_config rewrites it
 * as any local reply (there are no request headers to match yet). The HCM then closes the connection
 * (a codec protocol error, flag DPE; the response goes out before the request completed, so it says
 * connection: close). The wasm filters never see the request: its headers were never decoded.
 */
function codecLocalReply(g: GatewayOptions, status: number, details: string): { status: number; headers: [string, string][]; body: Buffer } {
  const rw = rewriteLocalReply(g.host.localReplyConfig, {
    requestHeaders: [],
    statusCode: status,
    body: Buffer.from(http.STATUS_CODES[status] ?? ""),
    details,
    responseFlags: ["DPE"],
  });
  const headers: [string, string][] = [];
  if (rw.body.length) headers.push(["content-length", String(rw.body.length)], ["content-type", rw.contentType]);
  headers.push(["server", "envoy"], ["connection", "close"]);
  return { status: rw.statusCode, headers, body: rw.body };
}

function codecReply(g: GatewayOptions, res: http.ServerResponse, details: string): void {
  const r = codecLocalReply(g, 431, details);
  res.writeHead(r.status, r.headers.flat());
  res.end(r.body);
}

/** The same reply written on the socket, for a header block Node's parser refused before a request existed. */
function rawCodecReply(g: GatewayOptions, status: number, details: string): Buffer {
  const r = codecLocalReply(g, status, details);
  const head = [`HTTP/1.1 ${r.status} ${http.STATUS_CODES[r.status] ?? ""}`, ...r.headers.map(([k, v]) => `${k}: ${v}`), `date: ${new Date().toUTCString()}`];
  if (!r.body.length) head.push("content-length: 0");
  return Buffer.concat([Buffer.from(head.join("\r\n") + "\r\n\r\n", "latin1"), r.body]);
}
