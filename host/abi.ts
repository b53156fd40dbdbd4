// proxy-wasm ABI 0.2.1 constants, as proxy-wasm-cpp-host and the SDKs define them
// (proxy_wasm_common.h; proxy-wasm-go-sdk proxywasm/internal/abi_enums.go).

export const WasmResult = {
  Ok: 0,
  NotFound: 1,
  BadArgument: 2,
  SerializationFailure: 3,
  ParseFailure: 4,
  BadExpression: 5,
  InvalidMemoryAccess: 6,
  Empty: 7,
  CasMismatch: 8,
  ResultMismatch: 9,
  InternalFailure: 10,
  BrokenConnection: 11,
  Unimplemented: 12,
} as const;

export const MapType = {
  RequestHeaders: 0,
  RequestTrailers: 1,
  ResponseHeaders: 2,
  ResponseTrailers: 3,
  GrpcReceiveInitialMetadata: 4,
  GrpcReceiveTrailingMetadata: 5,
  HttpCallResponseHeaders: 6,
  HttpCallResponseTrailers: 7,
  MAX: 7,
} as const;

export const BufferType = {
  HttpRequestBody: 0,
  HttpResponseBody: 1,
  NetworkDownstreamData: 2,
  NetworkUpstreamData: 3,
  HttpCallResponseBody: 4,
  GrpcReceiveBuffer: 5,
  VmConfiguration: 6,
  PluginConfiguration: 7,
  CallData: 8,
  MAX: 8,
} as const;

export const StreamType = { Request: 0, Response: 1, Downstream: 2, Upstream: 3, MAX: 3 } as const;

// Envoy's Http::FilterHeadersStatus values as cpp-host converts them (context.cc
// convertVmCallResultToFilterHeadersStatus): anything above 4 becomes StopAllIterationAndWatermark.
export const HeadersStatus = {
  Continue: 0,
  StopIteration: 1,
  ContinueAndEndStream: 2,
  StopAllIterationAndBuffer: 3,
  StopAllIterationAndWatermark: 4,
} as const;

export const DataStatus = {
  Continue: 0,
  StopIterationAndBuffer: 1,
  StopIterationAndWatermark: 2,
  StopIterationNoBuffer: 3,
} as const;

export const TrailersStatus = { Continue: 0, StopIteration: 1 } as const;

export const MetricType = { Counter: 0, Gauge: 1, Histogram: 2, MAX: 2 } as const;

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "critical"] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];

export function logLevelNumber(name: LogLevelName): number {
  const n = LOG_LEVELS.indexOf(name);
  if (n < 0) throw new Error(`unknown log level ${name}`);
  return n;
}

// gRPC status codes Envoy accepts for a local reply (Grpc::Status::WellKnownGrpcStatus Ok..MaximumKnown).
export const GRPC_MAX_KNOWN_STATUS = 16;
export const GRPC_UNAVAILABLE = 14;

// cpp-host include/proxy-wasm/limits.h
export const PAIRS_MAX_BYTES = 1024 * 1024;
export const PAIRS_MAX_COUNT = 1024;
export const RANDOM_GET_MAX_BYTES = 64 * 1024;
