// Envoy's native http filters in the host's chain (jwt_authn, rbac, cors, local_ratelimit, ext_authz):
// the one interface they share, and the adapter that puts one in a Stream's slot beside the wasm
// filters. A native filter parses its typed_config once (NativeFilter) and makes one NativeStreamFilter
// per stream. Only what these filters do is offered: look at and change the request headers, stop
// decoding while an answer is awaited (the filter manager holds the body behind the stop, as after
// StopAllIterationAndWatermark), continue, answer with a local reply (through local_reply_config, with
// a response flag), answer with headers of its own (decoder_callbacks_->encodeHeaders, no rewrite),
// set dynamic metadata, and touch the response headers on the way out.
import { DataStatus, HeadersStatus, TrailersStatus } from "../abi.js";
import type { Body } from "../buffers.js";
import type { FilterCallbacks, FilterSlot, StreamFilterContext } from "../filter-callbacks.js";
import type { HeaderList } from "../headers.js";
import type { CallCluster } from "../http-call.js";
import type { JsonObject } from "../proto.js";

export interface NativeFilter {
  /** http_filters[].name (also the key of its typed_per_filter_config). */
  readonly name: string;
  /** How many wasm filters come before it in envoy.yaml's http_filters (absent: 0, first). */
  wasmBefore?: number;
  newStreamFilter(cb: NativeCallbacks): NativeStreamFilter;
}

export interface NativeStreamFilter {
  /** "stop": decoding waits (the body is held) until cb.continueDecoding() or a reply. */
  decodeHeaders(headers: HeaderList, end: boolean): "continue" | "stop";
  /** The response headers (from the upstream or any local reply) on their way to the client. */
  encodeHeaders?(headers: HeaderList, end: boolean): void;
  onDestroy?(): void;
}

export interface LocalReplyArgs {
  status: number;
  body: string;
  /** Headers the filter adds to its reply (the modify_headers callback of sendLocalReply). */
  headers?: [string, string][];
  /** response_code_details */
  details: string;
  /** A response flag the filter sets (RL, UAEX), seen by local_reply_config's response_flag_filter. */
  responseFlag?: string;
}

/** What a native filter uses of the host (host/host-core.ts HostCore). */
export interface NativeHost {
  readonly clusters: Map<string, CallCluster>;
  now(): bigint;
  runAsync<T>(work: Promise<T>, then: (v: T) => void): void;
}

export interface NativeCallbacks {
  readonly host: NativeHost;
  readonly stream: FilterCallbacks;
  /** decoder_callbacks_->sendLocalReply: the HCM's local_reply_config applies, as to every local reply. */
  sendLocalReply(r: LocalReplyArgs): void;
  /** decoder_callbacks_->encodeHeaders(headers, end_stream, details): a headers-only answer that goes
   * through the encoder filters but is not a local reply (no local_reply_config). */
  respond(headers: HeaderList, details: string): void;
  continueDecoding(): void;
  /** StreamInfo::setDynamicMetadata (the metadata property the wasm filters read). */
  setDynamicMetadata(namespace: string, fields: JsonObject): void;
  /** Work off the stream (a JWKS fetch, a signature check, an authorization call): `then` runs on a
   * later turn, counted by Host.settle(), and the embedder forwards what it released. */
  async<T>(work: Promise<T>, then: (v: T) => void): void;
}

/** The slot's context for a native filter: what the Stream calls on every filter of its chain. */
export class NativeContext implements StreamFilterContext {
  bufferingRequestBody = false;
  bufferingResponseBody = false;
  requestBody: Body | null = null;
  responseBody: Body | null = null;
  private readonly f: NativeStreamFilter;
  private destroyed = false;

  constructor(filter: NativeFilter, host: NativeHost, slot: FilterSlot) {
    const stream = slot.stream;
    this.f = filter.newStreamFilter({
      host,
      stream,
      sendLocalReply: (r) => {
        if (r.responseFlag && !stream.info.responseFlags.includes(r.responseFlag)) stream.info.responseFlags.push(r.responseFlag);
        stream.localReply(slot, { statusCode: r.status, body: Buffer.from(r.body), headers: r.headers ?? [], grpcStatus: null, details: r.details });
      },
      respond: (headers, details) => stream.directReply(headers, details),
      continueDecoding: () => stream.continueFrom(slot, "request"),
      setDynamicMetadata: (ns, fields) => stream.setDynamicMetadata(ns, fields),
      async: (work, then) => host.runAsync(work, then),
    });
  }

  decodeHeaders(headers: HeaderList, end: boolean): number {
    return this.f.decodeHeaders(headers, end) === "continue" ? HeadersStatus.Continue : HeadersStatus.StopAllIterationAndWatermark;
  }
  decodeData(_body: Body, _end: boolean): number {
    return DataStatus.Continue;
  }
  decodeTrailers(_trailers: HeaderList): number {
    return TrailersStatus.Continue;
  }
  encodeHeaders(headers: HeaderList, end: boolean): number {
    this.f.encodeHeaders?.(headers, end);
    return HeadersStatus.Continue;
  }
  encodeData(_body: Body, _end: boolean): number {
    return DataStatus.Continue;
  }
  encodeTrailers(_trailers: HeaderList): number {
    return TrailersStatus.Continue;
  }
  log(): void {}
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.f.onDestroy?.();
  }
}

/** The typed_config reader's refusal: names the field, as envoy-config.ts does. */
export class NativeConfigError extends Error {}

export function fail(at: string, msg: string): never {
  throw new NativeConfigError(`${at}: ${msg}`);
}

export function obj(v: unknown, at: string): Record<string, any> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) fail(at, "expected a mapping");
  return v as Record<string, any>;
}

export function list(v: unknown, at: string): any[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) fail(at, "expected a list");
  return v;
}

/** Refuses every field of `o` the local gateway does not implement, by name. */
export function only(o: Record<string, any>, at: string, known: string[]): void {
  for (const k of Object.keys(o)) if (!known.includes(k)) fail(`${at}.${k}`, "the local gateway does not implement this field (refused rather than ignored)");
}

/** google.protobuf.Duration JSON ("1.5s") to milliseconds. */
export function duration(v: unknown, at: string): number {
  if (typeof v !== "string" || !/^[0-9]+(\.[0-9]{1,9})?s$/.test(v)) fail(at, `expected a duration such as "5s", got ${JSON.stringify(v)}`);
  return Math.round(Number(v.slice(0, -1)) * 1000);
}

/** A UInt32 (proto3 JSON: a number or a decimal string). */
export function uint(v: unknown, at: string): number {
  const n = typeof v === "string" && /^[0-9]+$/.test(v) ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > 0xffffffff) fail(at, `expected an unsigned integer, got ${JSON.stringify(v)}`);
  return n;
}

export function checkType(o: Record<string, any>, type: string, at: string): void {
  if (o["@type"] !== type) fail(at, `expected @type ${type}, got ${JSON.stringify(o["@type"])}`);
}
