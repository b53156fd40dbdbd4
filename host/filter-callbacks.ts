// The two sides of a filter in a stream's chain, as Envoy's filter manager has them: what the
// stream calls on each filter (StreamFilterContext, Envoy's StreamDecoderFilter/StreamEncoderFilter)
// and what a filter may ask of the stream it is in (FilterCallbacks, Envoy's
// StreamDecoderFilterCallbacks/StreamEncoderFilterCallbacks). Declared here, below both, so the wasm
// contexts (host/context.ts, host/vm.ts) and the native filters (host/native/) know the stream only
// through this interface, and the stream (host/stream.ts) sits above them.
import type { Body } from "./buffers.js";
import type { HeaderList } from "./headers.js";
import type { JsonObject } from "./proto.js";
import type { StreamInfo } from "./stream-info.js";

export type Direction = "request" | "response";

/** What the filter manager calls on each filter of the chain: a wasm filter's Context, or a native
 * filter's NativeContext (host/native/filter.ts). */
export interface StreamFilterContext {
  decodeHeaders(headers: HeaderList, end: boolean): number;
  decodeData(body: Body, end: boolean): number;
  decodeTrailers(trailers: HeaderList): number;
  encodeHeaders(headers: HeaderList, end: boolean): number;
  encodeData(body: Body, end: boolean): number;
  encodeTrailers(trailers: HeaderList): number;
  bufferingRequestBody: boolean;
  bufferingResponseBody: boolean;
  requestBody: Body | null;
  responseBody: Body | null;
  log(requestHeaders: HeaderList | null, responseHeaders: HeaderList | null, responseTrailers: HeaderList | null): void;
  destroy(): void;
}

/** A filter's place in one stream's chain; the stream knows its slots by identity. */
export interface FilterSlot {
  index: number;
  stream: FilterCallbacks;
}

export interface LocalReply {
  statusCode: number;
  body: Buffer;
  headers: HeaderList;
  grpcStatus: number | null;
  details: string;
}

/** What a filter may ask of the stream it is in (host/stream.ts implements it). */
export interface FilterCallbacks {
  readonly info: StreamInfo;
  /** Filter state: what set_property stored (as wasm.<key>) and the filter_state property reads. */
  readonly filterState: Map<string, Buffer>;
  /** clear_route_cache calls so far (the router re-resolves the route from the headers). */
  routeCacheClears: number;
  /** sendLocalReply: through the local_reply_config, after the current callback returns. */
  localReply(slot: FilterSlot, lr: LocalReply): void;
  /** encodeHeaders(headers, end_stream): a headers-only answer that is not a local reply. */
  directReply(headers: HeaderList, details: string): void;
  /** continueDecoding / continueEncoding from where this filter stopped. */
  continueFrom(slot: FilterSlot, dir: Direction): void;
  resetStream(details: string): void;
  /** addDecodedTrailers / addEncodedTrailers in the filter's last body callback. */
  addTrailers(dir: Direction, slot: FilterSlot): HeaderList;
  /** Checks a change to headers that may already have left (filter: the filter's name, for the message). */
  checkHeaderMutation(filter: string, type: number, map: HeaderList): void;
  /** StreamInfo::setDynamicMetadata: the metadata property the wasm filters read. */
  setDynamicMetadata(namespace: string, fields: JsonObject): void;
}
