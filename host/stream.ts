// One HTTP stream through the filter chain, iterated the way Envoy's FilterManager does it
// (source/common/http/filter_manager.cc): request callbacks in chain order, response callbacks in
// reverse; a filter that stops holds everything behind it until it continues; StopAll* on headers
// holds the body too and, on continue, hands the held body to that same filter first
// (iterate_from_current_filter_); StopIteration on headers (allow_on_headers_stop_iteration) keeps
// feeding that filter body and its Continue on data releases headers and body; local replies run
// through the encoder chain. Module-deferred actions (continue, local reply) queue here and run when
// the current step returns, like cpp-host's DeferAfterCallActions.
import { DataStatus, HeadersStatus, MapType, TrailersStatus } from "./abi.js";
import { Body, type Context } from "./context.js";
import { HostViolation } from "./errors.js";
import { cloneHeaders, getFirst, toHeaderList, type HeaderList, type HeadersInput } from "./headers.js";
import type { HostCore } from "./host.js";
import type { Plugin } from "./plugin.js";
import type { Vm } from "./vm.js";

export type Action = "Continue" | "Pause";
type DirName = "request" | "response";

export interface Slot {
  index: number;
  stream: Stream;
  plugin: Plugin;
  vm: Vm;
  ctx: Context;
}

export interface LocalReply {
  statusCode: number;
  body: Buffer;
  headers: HeaderList;
  grpcStatus: number | null;
  details: string;
}

export interface SentLocalResponse {
  statusCode: number;
  statusDetails: string;
  headers: [string, string][];
  body: Buffer;
  grpcStatus: number | null;
}

/** What passed every filter in one direction (toward the router, or toward the client). */
export interface Sink {
  headers: [string, string][] | null;
  body: Buffer;
  ended: boolean;
  trailers: [string, string][] | null;
}

export interface StreamInfo {
  startTimeNs: bigint;
  completeNs: bigint | null;
  protocol: string;
  sourceAddress: string;
  destinationAddress: string;
  connectionId: number;
  mtls: boolean;
  responseCode: number | null;
  responseCodeDetails: string | null;
  bytesReceived: number;
  bytesSent: number;
}

export interface StreamOptions {
  worker?: number;
  sourceAddress?: string;
  destinationAddress?: string;
  mtls?: boolean;
}

const EMPTY = Buffer.alloc(0);

class Dir {
  headers: HeaderList | null = null;
  headersEnd = false;
  started = false;
  /** Position (in this direction's order) where iteration stopped, -1 while flowing. */
  stopAt = -1;
  stopKind: "all" | "single" | "data" | "trailers" | null = null;
  held: Buffer = EMPTY;
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

function newSink(): Sink {
  return { headers: null, body: EMPTY, ended: false, trailers: null };
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

export class Stream {
  readonly slots: Slot[] = [];
  readonly filterState = new Map<string, Buffer>();
  readonly upstream: Sink = newSink();
  readonly downstream: Sink = newSink();
  readonly info: StreamInfo;
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
    for (const plugin of plugins) {
      const vm = plugin.vms[worker % plugin.vms.length];
      // Envoy's filter factory leaves a failed fail-open plugin out of the chain entirely.
      if (vm.failed && plugin.failOpen) continue;
      const ctx = vm.newContext(vm.root);
      const slot: Slot = { index: this.slots.length, stream: this, plugin, vm, ctx };
      ctx.slot = slot;
      this.slots.push(slot);
    }
    this.req = new Dir("request", this.slots, this.upstream);
    this.resp = new Dir("response", [...this.slots].reverse(), this.downstream);
    this.info = {
      startTimeNs: host.now(),
      completeNs: null,
      protocol: "HTTP/1.1",
      sourceAddress: opts.sourceAddress ?? `127.0.0.1:${40000 + (connectionId % 20000)}`,
      destinationAddress: opts.destinationAddress ?? "127.0.0.1:10000",
      connectionId,
      mtls: opts.mtls ?? false,
      responseCode: null,
      responseCodeDetails: null,
      bytesReceived: 0,
      bytesSent: 0,
    };
  }

  // ---------------------------------------------------------------- test API

  callOnRequestHeaders(headers: HeadersInput, endOfStream = false): Action {
    if (this.req.started) throw new Error("request headers were already sent on this stream");
    return this.step(this.req, () => {
      const d = this.req;
      d.started = true;
      d.headers = toHeaderList(headers);
      d.headersEnd = endOfStream;
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
    return this.step(this.resp, () => this.runData(this.resp, 0, data, endOfStream));
  }

  callOnResponseTrailers(trailers: HeadersInput): Action {
    this.checkResponseAllowed();
    if (!this.resp.started) throw new Error("response trailers before response headers");
    return this.step(this.resp, () => this.runTrailers(this.resp, 0, toHeaderList(trailers)));
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
  getFilterState(key: string): string | undefined {
    return this.filterState.get(`wasm.${key}`)?.toString("utf8");
  }

  private currentBody(d: Dir): Buffer {
    // What is buffered at the stop point, else what has passed toward the sink.
    if (d.stopAt >= 0) return Buffer.from(d.held);
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
  localReply(_slot: Slot, lr: LocalReply): void {
    this.enqueue(() => this.doLocalReply(lr));
  }

  /** proxy_continue_stream (continueDecoding / continueEncoding), after the callback returns. */
  continueFrom(slot: Slot, dir: DirName): void {
    this.enqueue(() => this.doContinue(slot, dir));
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
  addTrailers(dir: DirName, slot: Slot): HeaderList {
    const d = dir === "request" ? this.req : this.resp;
    const list: HeaderList = [];
    d.addedTrailers = { pos: d.order.indexOf(slot), list };
    d.trailers = list;
    return list;
  }

  /** Changing headers that already left: Envoy ignores it silently; the host fails the test. */
  checkHeaderMutation(ctx: Context, type: number, map: HeaderList): void {
    if (type === MapType.RequestHeaders && map === this.req.headers && this.req.headersSent) {
      throw new HostViolation(
        `filter ${ctx.vm.plugin.name} changed request headers after they went upstream; Envoy would ignore ` +
          `the change (stop on headers and change them before continuing)`,
      );
    }
    if (type === MapType.ResponseHeaders && map === this.resp.headers && this.resp.headersSent) {
      throw new HostViolation(
        `filter ${ctx.vm.plugin.name} changed response headers after they went downstream; Envoy would ignore the change`,
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
    if (!this.buffering(d, s)) return d.held;
    const body = d.name === "request" ? s.ctx.requestBody : s.ctx.responseBody;
    return body ? body.data : d.held;
  }

  private sinkHeaders(d: Dir): void {
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
        d.held = d.held.length ? Buffer.concat([d.held, cur]) : cur;
        d.heldData = true;
        d.heldEnd ||= curEnd;
        return;
      }
      const s = d.order[p];
      const isStop = p === d.stopAt;
      let body: Body;
      if (isStop && this.buffering(d, s)) {
        // StopIterationAndBuffer before: the filter sees everything buffered so far plus this chunk.
        const held = this.heldBy(d, s);
        body = new Body(held.length ? Buffer.concat([held, cur]) : cur);
        d.held = EMPTY;
      } else body = new Body(cur);
      d.addedTrailers = null;
      const st = this.callData(d, s, body, curEnd);
      if (d.aborted) return;
      const added = d.addedTrailers as { pos: number; list: HeaderList } | null;
      if (added && curEnd) curEnd = false; // the data is followed by the trailers the filter added
      if (st === DataStatus.Continue) {
        if (isStop) {
          const kind = d.stopKind;
          cur = d.held.length ? Buffer.concat([d.held, body.data]) : body.data;
          d.held = EMPTY;
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
      if (st === DataStatus.StopIterationAndBuffer || st === DataStatus.StopIterationAndWatermark) {
        d.held = d.held.length ? Buffer.concat([d.held, body.data]) : body.data;
      }
      // StopIterationNoBuffer: the chunk is not kept (the filter took responsibility for it).
      d.heldData = true;
      d.heldEnd ||= curEnd;
      if (added) d.heldTrailers = added.list;
      return;
    }
    if (cur.length) d.sink.body = d.sink.body.length ? Buffer.concat([d.sink.body, cur]) : Buffer.from(cur);
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
          // Continue on trailers releases what the filter held: headers, data, then the trailers.
          const kind = d.stopKind;
          const held = d.held;
          const heldData = d.heldData;
          d.held = EMPTY;
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
    d.held = EMPTY;
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

  private doLocalReply(lr: LocalReply): void {
    if (this.reset) return;
    this.req.aborted = true; // decoding stops: the filters after the sender never see the request
    this.info.responseCodeDetails = lr.details;
    this.info.responseCode = lr.statusCode;
    // Utility::sendLocalReply: :status, the filter's headers, then content-length/-type for a body.
    const headers: HeaderList = [[":status", String(lr.statusCode)], ...lr.headers.map(([k, v]) => [k, v] as [string, string])];
    if (lr.body.length) {
      headers.push(["content-length", String(lr.body.length)]);
      if (getFirst(headers, "content-type") === undefined) headers.push(["content-type", "text/plain"]);
    }
    const sent: SentLocalResponse = {
      statusCode: lr.statusCode,
      statusDetails: lr.details,
      headers: cloneHeaders(headers),
      body: Buffer.from(lr.body),
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
      // The response is inside the encoder chain: sendDirectLocalReply bypasses the filters.
      d.aborted = true;
      d.headers = headers;
      d.headersSent = true;
      this.downstream.headers = cloneHeaders(headers);
      this.downstream.body = Buffer.from(lr.body);
      this.downstream.trailers = null;
      this.downstream.ended = true;
      this.info.bytesSent = lr.body.length;
      return;
    }
    // Through the encoder chain, every filter that saw the request (the sender included).
    d.started = true;
    d.headers = headers;
    d.headersEnd = lr.body.length === 0;
    this.runHeaders(d, 0);
    if (d.aborted || !lr.body.length) return;
    this.runData(d, 0, Buffer.from(lr.body), true);
  }
}
