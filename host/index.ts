// Public API of the host (see API.md).
export { Host, type HostOptions, type ListenerInfo, type LogEntry } from "./host.js";
export { HostLoadError, HostViolation } from "./errors.js";
export { Stream, type Action, type SentLocalResponse, type Sink, type StreamOptions, type StreamInfo, type TlsInfo, type RouteInfo, type ClusterInfo, type UpstreamHostInfo } from "./stream.js";
export type { FilterMetadata, Json, JsonObject, Locality, NodeInfo } from "./proto.js";
export type { FilterOptions } from "./plugin.js";
export { serializePairs, deserializePairs, type HeaderList, type HeadersInput } from "./headers.js";
export { WasmResult, MapType, BufferType, StreamType, HeadersStatus, DataStatus, MetricType } from "./abi.js";

import { serializePairs, toHeaderList, type HeadersInput } from "./headers.js";
/** Serialises headers (object or pairs) into the proxy-wasm pair format, for tests. */
export function serializeHeaders(headers: HeadersInput): Uint8Array {
  return serializePairs(toHeaderList(headers));
}
