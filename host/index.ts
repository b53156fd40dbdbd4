// Public API of the host (see API.md).
export { Host, type HostOptions, type LogEntry } from "./host.js";
export { HostLoadError, HostViolation } from "./errors.js";
export { Stream, type Action, type SentLocalResponse, type Sink, type StreamOptions } from "./stream.js";
export type { FailurePolicy, FilterOptions, ReloadEvents } from "./plugin.js";
export type { AbiVersion } from "./signatures.js";
export { serializePairs, deserializePairs, type HeaderList, type HeadersInput } from "./headers.js";
export { WasmResult, MapType, BufferType, StreamType, HeadersStatus, DataStatus, MetricType } from "./abi.js";

import { serializePairs, toHeaderList, type HeadersInput } from "./headers.js";
/** Serialises headers (object or pairs) into the proxy-wasm pair format, for tests. */
export function serializeHeaders(headers: HeadersInput): Uint8Array {
  return serializePairs(toHeaderList(headers));
}

// The stream info the properties are read from, and what the tests and the local gateway seed it with.
export type { ListenerInfo, StreamInfo, TlsInfo, RouteInfo, ClusterInfo, UpstreamHostInfo } from "./stream-info.js";
export type { FilterMetadata, Json, JsonObject, Locality, NodeInfo } from "./proto.js";
