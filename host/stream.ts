// One HTTP stream through the filter chain, iterated the way Envoy's FilterManager does it
// (source/common/http/filter_manager.cc): request callbacks in chain order, response callbacks in
// reverse; a filter that stops holds everything behind it until it continues; StopAll* on headers
// holds the body too and, on continue, hands the held body to that same filter first
// (iterate_from_current_filter_); StopIteration on headers (allow_on_headers_stop_iteration) keeps
// feeding that filter body and its Continue on data releases headers and body; local replies run
// through the encoder chain. Module-deferred actions (continue, local reply) queue here and run when
// the current step returns, like cpp-host's DeferAfterCallActions.
import { DataStatus, HeadersStatus, MapType, TrailersStatus } from "./abi.js";
import { Body } from "./buffers.js";
import { HostViolation } from "./errors.js";
import { GrowBuffer } from "./grow-buffer.js";
import { cloneHeaders, getFirst, toHeaderList, type HeaderList, type HeadersInput } from "./headers.js";
import type { HostCore } from "./host-core.js";
import { rewriteLocalReply } from "./local-reply.js";
import type { Plugin } from "./plugin.js";
import type { FilterMetadata, JsonObject } from "./proto.js";
import { DEFAULT_BUFFER_LIMIT, type ClusterInfo, type RouteInfo, type StreamInfo, type TlsInfo, type UpstreamHostInfo } from "./stream-info.js";
import type { Direction, FilterCallbacks, FilterSlot, LocalReply, StreamFilterContext } from "./filter-callbacks.js";
import type { Vm } from "./vm.js";
import { NativeContext } from "./native/filter.js";

export type Action = "Continue" | "Pause";
type DirName = Direction;

// What the stream's users and tests have always found here.
export type { StreamInfo, TlsInfo, RouteInfo, ClusterInfo, UpstreamHostInfo } from "./stream-info.js";
export type { LocalReply, StreamFilterContext } from "./filter-callbacks.js";
export { DEFAULT_BUFFER_LIMIT };

/** A filter's slot as the stream keeps it: with the wasm plugin and VM (absent for a native filter). */
export interface Slot extends FilterSlot {
  stream: Stream;
  plugin?: Plugin;
  vm?: Vm;
  ctx: StreamFilterContext;
}

export interface SentLocalResponse {
  statusCode: number;
  statusDetails: string;
  headers: [string, string][];
  body: Buffer;
  grpcStatus: number | null;
}

/**
 * What passed every filter in one direction (toward the router, or toward the client). Tests read
 * the whole body; the local gateway takes the chunks as they come (take()) and nothing is kept, so
 * a chunk that has gone on is never copied again and the cost of a chunk does not grow with the
 * length of the stream.
 */
export class Sink {
  headers: [string, string][] | null = null;
  ended = false;
  trailers: [string, string][] | null = null;
  private readonly kept = new GrowBuffer();
  private queue: Buffer[] = [];
  constructor(private readonly keep: boolean) {}

  /** Everything that has passed so far (empty when the embedder takes the chunks). */
  get body(): Buffer {
    return this.kept.view();
  }

  /** Replaces what is kept (a test or bench drains the body as a client reads it). */
  set body(b: Buffer) {
    this.replaceBody(b);
  }

  push(chunk: Buffer): void {
    if (!chunk.length) return;
    if (this.keep) this.kept.append(chunk);
    else this.queue.push(chunk);
  }

  /** The chunks that passed since the last take(), in order; the sink keeps none of them. */
  take(): Buffer[] {
    if (!this.queue.length) return this.queue;
    const q = this.queue;
    this.queue = [];
    return q;
  }

  /** A direct local reply replaces what had not gone out yet. */
  replaceBody(body: Buffer): void {
    this.kept.clear();
    this.queue = [];
    this.push(body);
  }
}

export interface StreamOptions {
  worker?: number;
  sourceAddress?: string;
  destinationAddress?: string;
  /** Shorthand for a TLS downstream whose client presented a certificate (connection.mtls). */
  mtls?: boolean;
  /** The downstream connection's TLS (connection.tls_version, subject_*, *_san_*, ...). */
  tls?: TlsInfo;
  /** SNI (connection.requested_server_name). */
  requestedServerName?: string;
  /** request.protocol: "HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/3" (default HTTP/1.1). */
  protocol?: string;
  /** Dynamic metadata already on the stream (other Envoy filters set it, e.g. jwt_authn's
   * payload_in_metadata); Stream.setDynamicMetadata adds more later. */
  dynamicMetadata?: FilterMetadata;
  /** The matched route (default: the host's route). null: no route matched. */
  route?: RouteInfo | null;
  /** The upstream cluster the route names (default: none until the router picks one). */
  cluster?: ClusterInfo | null;
  /**
   * The stream's buffer limit (Envoy FilterManager buffer_limit_): the listener's
   * per_connection_buffer_limit_bytes, raised by the route's request_body_buffer_limit. Default:
   * the host's bufferLimitBytes (1 MiB, Envoy's default).
   */
  bufferLimitBytes?: number;
  /** false: the embedder takes what passes with Sink.take() and the sinks keep nothing (server mode). */
  keepBodies?: boolean;
}

const EMPTY = Buffer.alloc(0);

class Dir {
  headers: HeaderList | null = null;
  headersEnd = false;
  started = false;
  /** Position (in this direction's order) where iteration stopped, -1 while flowing. */
  stopAt = -1;
  stopKind: "all" | "single" | "data" | "trailers" | null = null;
  /** The stop is a watermark one (StopAllIterationAndWatermark / StopIterationAndWatermark): past the
   * limit Envoy stops reading instead of answering 413 / 500 (decoder/encoder_filters_streaming_). */
  stopStreaming = false;
  /** What the filter manager holds at the stop (buffered_request_data_ / buffered_response_data_). */
  readonly held = new GrowBuffer();
  /** Held past the limit at a watermark stop: the embedder stops reading this direction's input. */
  aboveHighWatermark = false;
  heldData = false;
  heldEnd = false;
  heldTrailers: HeaderList | null = null;
  trailers: HeaderList | null = null;
  addedTrailers: { pos: number; list: HeaderList } | null = null;
  aborted = false;
  headersSent = false;
  constructor(
    readonly name: DirName,
    readonly order: Slot[],
    readonly sink: Sink,
  ) {}
}


/**
 * A chunk as the filter chain holds it. Bytes are taken as they are, not copied (Envoy moves a
 * chunk into the chain; the host never writes into a body, it replaces it), so a caller must not
 * change a buffer after passing it.
 */
function asBuffer(body: string | Uint8Array): Buffer {
  if (typeof body === "string") return Buffer.from(body);
  return Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

export class Stream implements FilterCallbacks {
  readonly slots: Slot[] = [];
  readonly filterState = new Map<string, Buffer>();
  readonly upstream: Sink;
  readonly downstream: Sink;
  readonly info: StreamInfo;
  readonly bufferLimit: number;
  routeCacheClears = 0;
  /** Why the stream was reset (e.g. "wasm_close_stream", or a local reply after the response began). */
  reset: string | null = null;
  private readonly req: Dir;
  private readonly resp: Dir;
  private localResponse: SentLocalResponse | null = null;
  private busy = 0;
  private ops: Array<() => void> = [];
  private completed = false;

  constructor(
    private readonly host: HostCore,
    plugins: Plugin[],
    worker: number,
    opts: StreamOptions,
    connectionId: number,
  ) {
    const keep = opts.keepBodies ?? true;
    this.upstream = new Sink(keep);
    this.downstream = new Sink(keep);
    this.bufferLimit = opts.bufferLimitBytes ?? host.bufferLimitBytes;
    // Envoy's native filters sit where envoy.yaml lists them among the wasm filters (wasmBefore: how
    // many wasm filters precede one).
    const natives = (before: number, last: boolean) => {
      for (const native of host.natives) {
        const at = native.wasmBefore ?? 0;
        if (at !== before && !(last && at > before)) continue;
        const slot = { index: this.slots.length, stream: this } as unknown as Slot;
        slot.ctx = new NativeContext(native, host, slot);
        this.slots.push(slot);
      }
    };
    for (const [i, plugin] of plugins.entries()) {
      natives(i, false);
      // The failure policy decides (Plugin.vmForNewStream): FAIL_OPEN leaves a failed plugin out of
      // the chain, FAIL_RELOAD may start a new VM first.
      const vm = plugin.vmForNewStream(worker);
      if (!vm) continue;
      const ctx = vm.newContext(vm.root);
      const slot: Slot = { index: this.slots.length, stream: this, plugin, vm, ctx };
      ctx.slot = slot;
      this.slots.push(slot);
    }
    natives(plugins.length, true);
    this.req = new Dir("request", this.slots, this.upstream);
    this.resp = new Dir("response", [...this.slots].reverse(), this.downstream);
    this.info = {
      startTimeNs: host.now(),
      completeNs: null,
      protocol: "HTTP/1.1",
      sourceAddress: opts.sourceAddress ?? `127.0.0.1:${40000 + (connectionId % 20000)}`,
      destinationAddress: opts.destinationAddress ?? "127.0.0.1:10000",
      connectionId,
      downstreamTls: opts.tls ?? (opts.mtls ? { version: "TLSv1.3", peerCertificatePresented: true } : null),
      requestedServerName: opts.requestedServerName ?? "",
      connectionTerminationDetails: null,
      downstreamTransportFailureReason: "",
      responseCode: null,
      responseCodeDetails: null,
      responseFlags: [],
      bytesReceived: 0,
      bytesSent: 0,
      dynamicMetadata: opts.dynamicMetadata ? structuredClone(opts.dynamicMetadata) : {},
      route: opts.route === undefined ? host.route : opts.route,
      cluster: opts.cluster ?? null,
      upstream: null,
      attemptCount: null,
      firstUpstreamTxNs: null,
      lastUpstreamRxNs: null,
    };
    if (opts.protocol !== undefined) this.info.protocol = opts.protocol;
    this.clusterGiven = opts.cluster !== undefined;
  }

  // ---------------------------------------------------------------- test API

  callOnRequestHeaders(headers: HeadersInput, endOfStream = false): Action {
    if (this.req.started) throw new Error("request headers were already sent on this stream");
    return this.step(this.req, () => {
      const d = this.req;
      d.started = true;
      d.headers = toHeaderList(headers);
      d.headersEnd = endOfStream;
      // The HCM resolves the route, and with it the upstream cluster, before the first decoder filter
      // (ActiveStream::refreshCachedRoute -> StreamInfo::setUpstreamClusterInfo).
      this.resolveCluster();
      this.runHeaders(d, 0);
    });
  }

  callOnRequestBody(body: string | Uint8Array, endOfStream = false): Action {
    if (!this.req.started) throw new Error("request body before request headers");
    const data = asBuffer(body);
    this.info.bytesReceived += data.length;
    return this.step(this.req, () => this.runData(this.req, 0, data, endOfStream));
  }

  callOnRequestTrailers(trailers: HeadersInput): Action {
    if (!this.req.started) throw new Error("request trailers before request headers");
    return this.step(this.req, () => this.runTrailers(this.req, 0, toHeaderList(trailers)));
  }

  callOnResponseHeaders(headers: HeadersInput, endOfStream = false): Action {
    this.checkResponseAllowed();
    if (this.resp.started) throw new Error("response headers were already sent on this stream");
    return this.step(this.resp, () => {
      const d = this.resp;
      d.started = true;
      d.headers = toHeaderList(headers);
      d.headersEnd = endOfStream;
      if (endOfStream) this.upstreamResponseEnded();
      const status = Number(getFirst(d.headers, ":status"));
      if (Number.isFinite(status)) this.info.responseCode = status;
      this.info.responseCodeDetails ??= "via_upstream";
      this.runHeaders(d, 0);
    });
  }

  callOnResponseBody(body: string | Uint8Array, endOfStream = false): Action {
    this.checkResponseAllowed();
    if (!this.resp.started) throw new Error("response body before response headers");
    const data = asBuffer(body);
    if (endOfStream) this.upstreamResponseEnded();
    return this.step(this.resp, () => this.runData(this.resp, 0, data, endOfStream));
  }

  callOnResponseTrailers(trailers: HeadersInput): Action {
    this.checkResponseAllowed();
    if (!this.resp.started) throw new Error("response trailers before response headers");
    this.upstreamResponseEnded();
    return this.step(this.resp, () => this.runTrailers(this.resp, 0, toHeaderList(trailers)));
  }

  private clearsAtResolution = 0;
  /** The test named the cluster (StreamOptions.cluster): no route resolution replaces it. */
  private clusterGiven = false;

  /** A cluster_header route's cluster: the one the header names, if the host has it (else none, as
   * Envoy's cluster manager finds no cluster for the name). */
  private resolveCluster(): void {
    this.clearsAtResolution = this.routeCacheClears;
    const header = this.info.route?.clusterHeader;
    if (!header || this.clusterGiven) return;
    const name = getFirst(this.req.headers ?? [], header);
    const known = name !== undefined && (Object.hasOwn(this.host.clusterInfo, name) || this.host.clusters.has(name));
    this.info.cluster = known ? { name: name!, ...this.host.clusterInfo[name!] } : null;
  }

  /** The upstream's last response byte arrived (UpstreamTiming last_upstream_rx_byte_received). */
  private upstreamResponseEnded(): void {
    this.info.lastUpstreamRxNs ??= this.host.now();
  }

  /** Stream end: on_log for every filter in chain order, then on_done and on_delete for each
   * (Envoy doDeferredStreamDestroy: filter_manager_.log() before destroyFilters()). */
  completeHttpContext(): void {
    if (this.completed) return;
    this.completed = true;
    this.info.completeNs = this.host.now();
    this.enter(() => {
      for (const s of this.slots) s.ctx.log(this.req.headers, this.resp.headers, this.resp.trailers);
      for (const s of this.slots) s.ctx.destroy();
    });
  }

  getSentLocalResponse(): SentLocalResponse | null {
    return this.localResponse;
  }
  getCurrentRequestHeaders(): [string, string][] {
    return cloneHeaders(this.req.headers ?? []);
  }
  getCurrentResponseHeaders(): [string, string][] {
    return cloneHeaders(this.resp.headers ?? []);
  }
  getCurrentRequestBody(): Buffer {
    return this.currentBody(this.req);
  }
  getCurrentResponseBody(): Buffer {
    return this.currentBody(this.resp);
  }
  /**
   * Another Envoy filter sets dynamic metadata on the stream (StreamInfo::setDynamicMetadata merges
   * the fields into the namespace's Struct), e.g. jwt_authn's payload_in_metadata before the wasm
   * filters run. proxy-wasm 0.2.1 gives a module no way to set it.
   */
  setDynamicMetadata(namespace: string, fields: JsonObject): void {
    this.info.dynamicMetadata[namespace] = { ...this.info.dynamicMetadata[namespace], ...structuredClone(fields) };
  }

  /** The router picked the upstream cluster (Router::Filter::decodeHeaders): xds.cluster_name,
   * xds.cluster_metadata, upstream.num_endpoints. Metadata defaults to the host's for that name. */
  setUpstreamCluster(cluster: ClusterInfo | string): void {
    this.info.cluster = typeof cluster === "string" ? { name: cluster, ...this.host.clusterInfo[cluster] } : cluster;
  }

  /** The router's upstream request reached a host (upstreamInfo: upstream.*, xds.upstream_host_*);
   * each call is one attempt (upstream.request_attempt_count). */
  setUpstreamHost(upstream: UpstreamHostInfo): void {
    const c = this.info.cluster;
    this.info.upstream = { metadata: c?.hostMetadata, locality: c?.hostLocality, ...upstream };
    this.info.attemptCount = (this.info.attemptCount ?? 0) + 1;
  }

  getFilterState(key: string): string | undefined {
    return this.filterState.get(`wasm.${key}`)?.toString("utf8");
  }

  private currentBody(d: Dir): Buffer {
    // What is buffered at the stop point, else what has passed toward the sink.
    if (d.stopAt >= 0) return Buffer.from(d.held.view());
    return Buffer.from(d.sink.body);
  }

  private checkResponseAllowed(): void {
    if (this.upstream.headers) return;
    throw new Error(
      this.localResponse
        ? "the stream was answered by a local reply; no upstream response exists"
        : "response before the request headers reached the router",
    );
  }

  // ---------------------------------------------------------------- called by contexts and VMs

  /** Envoy Context::sendLocalResponse / failStream (deferred until the current step returns). */
  localReply(_slot: FilterSlot, lr: LocalReply): void {
    this.enqueue(() => this.doLocalReply(lr));
  }

  /**
   * A decoder filter answers with headers of its own (Envoy ActiveStreamDecoderFilter::encodeHeaders,
   * e.g. the CORS filter's preflight answer with details cors_response): the response goes through
   * the encoder filters like a local reply, but it is not one, so local_reply_config does not apply.
   */
  directReply(headers: HeaderList, details: string): void {
    this.enqueue(() => {
      const status = Number(getFirst(headers, ":status") ?? 200);
      const rest = headers.filter(([k]) => k !== ":status");
      this.doLocalReply({ statusCode: status, body: EMPTY, headers: rest, grpcStatus: null, details }, true);
    });
  }

  /** proxy_continue_stream (continueDecoding / continueEncoding), after the callback returns. */
  continueFrom(slot: FilterSlot, dir: DirName): void {
    this.enqueue(() => this.doContinue(slot as Slot, dir));
  }

  /**
   * The router's own answer (Envoy Router::Filter::onUpstreamAbort and the like: the response flag,
   * then sendLocalReply). Before a response it goes through the filters; once the response headers
   * are in the filters it answers directly, or resets once they reached the client (doLocalReply).
   */
  routerLocalReply(statusCode: number, body: string, details: string, responseFlag: string): void {
    if (responseFlag && !this.info.responseFlags.includes(responseFlag)) this.info.responseFlags.push(responseFlag);
    this.enqueue(() => this.doLocalReply({ statusCode, body: Buffer.from(body), headers: [], grpcStatus: null, details }));
  }

  /** Held past the buffer limit at a watermark stop: Envoy read-disables that direction's input
   * until the filter lets the data go (onDecoderFilterAboveWriteBufferHighWatermark). */
  aboveHighWatermark(dir: DirName): boolean {
    return (dir === "request" ? this.req : this.resp).aboveHighWatermark;
  }

  /**
   * proxy_close_stream: Envoy's Context::closeStream (source/extensions/common/wasm/context.cc)
   * queues encoder/decoder_callbacks_->resetStream() as an after-VM-call action, which runs when
   * the callback returns and before the filter manager goes on: the reset takes effect at once, and
   * what the callback left in the buffer never goes further (the iteration sees `aborted`).
   */
  resetStream(details: string): void {
    if (this.reset) return;
    this.reset = details;
    this.info.responseCodeDetails ??= details;
    this.req.aborted = this.resp.aborted = true;
  }

  /** A filter adds trailers in its last body callback (Envoy addDecodedTrailers/addEncodedTrailers). */
  addTrailers(dir: DirName, slot: FilterSlot): HeaderList {
    const d = dir === "request" ? this.req : this.resp;
    const list: HeaderList = [];
    d.addedTrailers = { pos: d.order.indexOf(slot as Slot), list };
    d.trailers = list;
    return list;
  }

  /** Changing headers that already left: Envoy ignores it silently; the host fails the test. */
  checkHeaderMutation(filter: string, type: number, map: HeaderList): void {
    if (type === MapType.RequestHeaders && map === this.req.headers && this.req.headersSent) {
      throw new HostViolation(
        `filter ${filter} changed request headers after they went upstream; Envoy would ignore ` +
          `the change (stop on headers and change them before continuing)`,
      );
    }
    if (type === MapType.ResponseHeaders && map === this.resp.headers && this.resp.headersSent) {
      throw new HostViolation(
        `filter ${filter} changed response headers after they went downstream; Envoy would ignore the change`,
      );
    }
  }

  // ---------------------------------------------------------------- iteration

  private enter(fn: () => void): void {
    this.busy++;
    try {
      fn();
    } finally {
      this.busy--;
    }
    if (this.busy === 0) {
      while (this.ops.length) {
        const op = this.ops.shift()!;
        this.busy++;
        try {
          op();
        } finally {
          this.busy--;
        }
      }
    }
  }

  private enqueue(op: () => void): void {
    if (this.busy > 0) this.ops.push(op);
    else this.enter(op);
  }

  private step(d: Dir, fn: () => void): Action {
    if (d.aborted || this.reset) return "Pause";
    this.enter(fn);
    return !d.aborted && !this.reset && d.stopAt < 0 ? "Continue" : "Pause";
  }

  private callHeaders(d: Dir, s: Slot, headers: HeaderList, end: boolean): number {
    return d.name === "request" ? s.ctx.decodeHeaders(headers, end) : s.ctx.encodeHeaders(headers, end);
  }
  private callData(d: Dir, s: Slot, body: Body, end: boolean): number {
    return d.name === "request" ? s.ctx.decodeData(body, end) : s.ctx.encodeData(body, end);
  }
  private callTrailers(d: Dir, s: Slot, trailers: HeaderList): number {
    return d.name === "request" ? s.ctx.decodeTrailers(trailers) : s.ctx.encodeTrailers(trailers);
  }
  private buffering(d: Dir, s: Slot): boolean {
    return d.name === "request" ? s.ctx.bufferingRequestBody : s.ctx.bufferingResponseBody;
  }

  /** What a filter stopped with StopIterationAndBuffer holds: its buffer as it is now. Envoy hands
   * the filter the filter manager's buffer itself (modifyDecodingBuffer / modifyEncodingBuffer), so
   * a change made later — e.g. from an http_call callback — is what continues downstream. */
  private heldBy(d: Dir, s: Slot): Buffer {
    if (!this.buffering(d, s)) return d.held.view();
    const body = d.name === "request" ? s.ctx.requestBody : s.ctx.responseBody;
    return body ? body.data : d.held.view();
  }

  /** Takes what the held buffer gave out back under its management when the filter replaced it. */
  private adoptHeld(d: Dir, data: Buffer): void {
    if (!d.held.holds(data)) d.held.reset(data);
  }

  /**
   * Envoy's buffer limit on what the filter manager holds: buffered_request_data_ and
   * buffered_response_data_ are WatermarkBuffers whose high watermark is the stream's buffer limit
   * (filter_manager.cc ActiveStreamDecoderFilter::createBuffer: setWatermarks(buffer_limit_)).
   * Past it, requestDataTooLarge answers 413 "Payload Too Large" (details request_payload_too_large)
   * and responseDataTooLarge answers 500 "Internal Server Error" (response_payload_too_large) through
   * sendLocalReply, which answers directly or resets once the response is under way. A watermark
   * stop (decoder/encoder_filters_streaming_) only stops reading instead. True when answered.
   */
  private overLimit(d: Dir): boolean {
    if (d.held.length <= this.bufferLimit) return false;
    if (d.stopStreaming) {
      d.aboveHighWatermark = true;
      return false;
    }
    d.held.clear();
    d.aborted = true;
    const request = d.name === "request";
    this.enqueue(() =>
      this.doLocalReply({
        statusCode: request ? 413 : 500,
        body: Buffer.from(request ? "Payload Too Large" : "Internal Server Error"),
        headers: [],
        grpcStatus: null,
        details: request ? "request_payload_too_large" : "response_payload_too_large",
      }),
    );
    return true;
  }

  /** The filter manager let go of what it held (continue): under the low watermark again. */
  private releaseHeld(d: Dir): void {
    d.held.clear();
    d.stopStreaming = false;
    d.aboveHighWatermark = false;
  }

  private sinkHeaders(d: Dir): void {
    if (d.name === "request") {
      // The router asks for the route: resolved again only if a filter cleared the route cache.
      if (this.routeCacheClears !== this.clearsAtResolution) this.resolveCluster();
      // The request headers go upstream: UpstreamTiming first_upstream_tx_byte_sent.
      this.info.firstUpstreamTxNs ??= this.host.now();
    }
    d.headersSent = true;
    d.sink.headers = cloneHeaders(d.headers!);
    if (d.headersEnd) d.sink.ended = true;
  }

  private runHeaders(d: Dir, from: number): void {
    for (let p = from; p < d.order.length; p++) {
      const st = this.callHeaders(d, d.order[p], d.headers!, d.headersEnd);
      if (d.aborted) return;
      if (st === HeadersStatus.Continue) continue;
      d.stopAt = p;
      d.stopKind = st === HeadersStatus.StopIteration ? "single" : "all";
      d.stopStreaming = st === HeadersStatus.StopAllIterationAndWatermark;
      return;
    }
    this.sinkHeaders(d);
  }

  private runData(d: Dir, from: number, data: Buffer, end: boolean): void {
    let cur = data;
    let curEnd = end;
    for (let p = from; p < d.order.length; p++) {
      if (p === d.stopAt && d.stopKind === "all") {
        // Headers stopped here with StopAll*: the filter manager buffers, the filter sees nothing.
        d.held.append(cur);
        d.heldData = true;
        d.heldEnd ||= curEnd;
        this.overLimit(d);
        return;
      }
      const s = d.order[p];
      const isStop = p === d.stopAt;
      let body: Body;
      const fedHeld = isStop && this.buffering(d, s);
      if (fedHeld) {
        // StopIterationAndBuffer before: the filter sees everything buffered so far plus this chunk.
        // Envoy's wasm filter adds the chunk to the filter manager's buffer first
        // (Context::decodeData: addDecodedData, then onRequestBody), so the limit answers before
        // the filter sees a body past it.
        this.adoptHeld(d, this.heldBy(d, s));
        d.held.append(cur);
        if (this.overLimit(d)) return;
        body = new Body(d.held.view());
      } else body = new Body(cur);
      d.addedTrailers = null;
      const st = this.callData(d, s, body, curEnd);
      if (d.aborted) return;
      const added = d.addedTrailers as { pos: number; list: HeaderList } | null;
      if (added && curEnd) curEnd = false; // the data is followed by the trailers the filter added
      if (st === DataStatus.Continue) {
        if (isStop) {
          const kind = d.stopKind;
          // A buffering filter saw the held bytes plus this chunk; otherwise they go first.
          cur = fedHeld || !d.held.length ? body.data : Buffer.concat([d.held.view(), body.data]);
          this.releaseHeld(d);
          d.heldData = false;
          curEnd ||= d.heldEnd && !added;
          d.heldEnd = false;
          d.stopAt = -1;
          d.stopKind = null;
          if (kind === "single") {
            this.runHeaders(d, p + 1);
            if (d.aborted) return;
          }
        } else cur = body.data;
        if (added) {
          this.runData(d, p + 1, cur, false);
          if (d.aborted) return;
          this.runTrailers(d, p + 1, added.list);
          return;
        }
        continue;
      }
      // Stopped on data.
      if (!isStop) {
        d.stopAt = p;
        d.stopKind = "data";
      }
      const buffered = st === DataStatus.StopIterationAndBuffer || st === DataStatus.StopIterationAndWatermark;
      if (buffered) {
        if (fedHeld) this.adoptHeld(d, body.data);
        else d.held.append(body.data);
        d.stopStreaming = st === DataStatus.StopIterationAndWatermark;
      } else if (fedHeld) {
        // StopIterationNoBuffer: the chunk is not kept (the filter took responsibility for it).
        d.held.clear();
      }
      d.heldData = true;
      d.heldEnd ||= curEnd;
      if (added) d.heldTrailers = added.list;
      if (buffered) this.overLimit(d);
      return;
    }
    d.sink.push(cur);
    if (d.name === "response") this.info.bytesSent += cur.length;
    if (curEnd) d.sink.ended = true;
  }

  private runTrailers(d: Dir, from: number, trailers: HeaderList): void {
    d.trailers = trailers;
    for (let p = from; p < d.order.length; p++) {
      if (p === d.stopAt && d.stopKind === "all") {
        d.heldTrailers = trailers;
        return;
      }
      const isStop = p === d.stopAt;
      const st = this.callTrailers(d, d.order[p], trailers);
      if (d.aborted) return;
      if (st === TrailersStatus.Continue) {
        if (isStop) {
          // Continue on trailers releases what the filter held: headers, data, then the trailers. A
          // buffering filter's buffer is the filter manager's own (Envoy's Context::getBuffer returns
          // decodingBuffer() while buffering_request_body_), so what it wrote in this callback goes on.
          const kind = d.stopKind;
          const held = this.heldBy(d, d.order[p]);
          const heldData = d.heldData;
          this.releaseHeld(d);
          d.heldData = d.heldEnd = false;
          d.stopAt = -1;
          d.stopKind = null;
          if (kind === "single") {
            this.runHeaders(d, p + 1);
            if (d.aborted) return;
          }
          if (heldData) {
            this.runData(d, p + 1, held, false);
            if (d.aborted) return;
          }
        }
        continue;
      }
      if (!isStop) {
        d.stopAt = p;
        d.stopKind = "trailers";
      }
      d.heldTrailers = trailers;
      return;
    }
    d.sink.trailers = cloneHeaders(trailers);
    d.sink.ended = true;
  }

  private doContinue(slot: Slot, dirName: DirName): void {
    const d = dirName === "request" ? this.req : this.resp;
    if (d.aborted || this.reset) return;
    const p = d.order.indexOf(slot);
    if (p < 0 || d.stopAt !== p) return; // not stopped here: continueDecoding has nothing to do
    const kind = d.stopKind;
    const held = this.heldBy(d, slot);
    const heldData = d.heldData;
    const heldEnd = d.heldEnd;
    const trailers = d.heldTrailers;
    this.releaseHeld(d);
    d.heldData = d.heldEnd = false;
    d.heldTrailers = null;
    d.stopAt = -1;
    d.stopKind = null;
    if (kind === "all" || kind === "single") {
      this.runHeaders(d, p + 1);
      if (d.aborted) return;
    }
    // After StopAll*, the held body goes to the stopped filter itself first (CanStartFromCurrent).
    const dataFrom = kind === "all" ? p : p + 1;
    if (heldData) {
      this.runData(d, dataFrom, held, heldEnd && !trailers);
      if (d.aborted) return;
    }
    if (trailers) this.runTrailers(d, kind === "all" ? p : p + 1, trailers);
  }

  private doLocalReply(lr: LocalReply, notRewritten = false): void {
    if (this.reset) return;
    this.req.aborted = true; // decoding stops: the filters after the sender never see the request
    this.releaseHeld(this.req);
    // The HCM's local_reply_config mappers, then its body format (Utility::sendLocalReply calls
    // LocalReplyImpl::rewrite for every local reply, through the filters or direct).
    const rw = notRewritten
      ? { statusCode: lr.statusCode, body: lr.body, contentType: "text/plain", rewritten: false }
      : rewriteLocalReply(this.host.localReplyConfig, {
      requestHeaders: this.req.headers ?? [],
      statusCode: lr.statusCode,
      body: lr.body,
      details: lr.details,
      responseFlags: this.info.responseFlags,
      dynamicMetadata: this.info.dynamicMetadata,
    });
    const statusCode = rw.statusCode;
    const body = rw.body;
    this.info.responseCodeDetails = lr.details;
    this.info.responseCode = statusCode;
    // Utility::sendLocalReply: :status, the filter's headers, then content-length/-type for a body
    // (the format's content type when the rewrite changed the body).
    const headers: HeaderList = [[":status", String(statusCode)], ...lr.headers.map(([k, v]) => [k, v] as [string, string])];
    if (body.length) {
      headers.push(["content-length", String(body.length)]);
      const ct = headers.findIndex(([k]) => k === "content-type");
      if (ct < 0) headers.push(["content-type", rw.contentType]);
      else if (rw.rewritten) headers[ct] = ["content-type", rw.contentType];
    }
    const sent: SentLocalResponse = {
      statusCode,
      statusDetails: lr.details,
      headers: cloneHeaders(headers),
      body: Buffer.from(body),
      grpcStatus: lr.grpcStatus,
    };
    const d = this.resp;
    if (d.headersSent) {
      // DownstreamFilterManager::sendLocalReply: headers already went to the client; reset.
      this.reset = `local reply after response headers were sent: ${lr.details}`;
      this.req.aborted = d.aborted = true;
      return;
    }
    this.localResponse = sent;
    if (d.started) {
      // The response headers went into the encoder chain but no filter let them out (e.g. a filter
      // holds them while it buffers the body): sendDirectLocalReply bypasses the filters.
      d.aborted = true;
      d.headers = headers;
      d.headersSent = true;
      this.releaseHeld(d);
      this.downstream.headers = cloneHeaders(headers);
      this.downstream.replaceBody(Buffer.from(body));
      this.downstream.trailers = null;
      this.downstream.ended = true;
      this.info.bytesSent = body.length;
      return;
    }
    // Through the encoder chain, every filter that saw the request (the sender included).
    d.started = true;
    d.headers = headers;
    d.headersEnd = body.length === 0;
    this.runHeaders(d, 0);
    if (d.aborted || !body.length) return;
    this.runData(d, 0, Buffer.from(body), true);
  }
}
