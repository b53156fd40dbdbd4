// gateway.yaml opentelemetry: the OpenTelemetry access logger, tracing, and the collector's cluster
// (docs/opentelemetry.md). Each request's record goes to the collector over OTLP/gRPC as a log whose
// attributes are the OpenTelemetry GenAI semantic conventions' where one exists, and Sluice's
// access-log fields (`sluice.*`) for the rest, read from the same filter state as the JSON log; with
// traces, the request's span carries the same GenAI attributes as tags.
import type { GatewayConfig, OpenTelemetryConfig } from "../gateway-config.js";
import { LOG_KEYS, filterStateField } from "./access-log.js";
import { serviceCluster } from "./clusters.js";

/** The collector's cluster; docker compose's collector service in mock mode. */
export const OTEL_CLUSTER = "sluice_otel";
export const OTEL_COMPOSE_SERVICE = "otel-collector";
const OTEL_COMPOSE_PORT = 4317;

/** The GenAI conventions' attributes and the filter state or Envoy field each comes from. */
export const GENAI_LOG_ATTRIBUTES: Record<string, string> = {
  "gen_ai.operation.name": filterStateField("gen_ai_operation"),
  "gen_ai.provider.name": filterStateField("gen_ai_provider"),
  "gen_ai.request.model": filterStateField("request_model"),
  // The model the provider says answered (its answer's), else the one the request was sent to.
  "gen_ai.response.model": filterStateField("model"),
  "gen_ai.usage.input_tokens": filterStateField("prompt_tokens"),
  "gen_ai.usage.output_tokens": filterStateField("completion_tokens"),
};

/** Envoy's own fields of the request, under the conventions' HTTP names. */
const HTTP_LOG_ATTRIBUTES: Record<string, string> = {
  "http.request.method": "%REQ(:METHOD)%",
  "url.path": "%REQ(:PATH)%", // as the filters left it (key-auth removes a query key)
  "http.response.status_code": "%RESPONSE_CODE%",
  "http.server.request.duration_ms": "%DURATION%",
  "envoy.response_flags": "%RESPONSE_FLAGS%",
  "envoy.response_code_details": "%RESPONSE_CODE_DETAILS%",
  "envoy.upstream_host": "%UPSTREAM_HOST%",
  "envoy.request_id": "%REQ(X-REQUEST-ID)%",
};

const kv = (attrs: Record<string, string>) => ({ values: Object.entries(attrs).map(([key, v]) => ({ key, value: { string_value: v } })) });

/**
 * The log's attributes: the conventions' first, then Envoy's fields, then every other access-log
 * field as sluice.<key> (a field the conventions name already is not sent twice).
 */
export function openTelemetryLogAttributes(): Record<string, string> {
  const attrs: Record<string, string> = { ...GENAI_LOG_ATTRIBUTES, ...HTTP_LOG_ATTRIBUTES };
  const named = new Set(Object.values(GENAI_LOG_ATTRIBUTES));
  for (const k of LOG_KEYS) {
    const v = filterStateField(k);
    if (!named.has(v)) attrs[`sluice.${k}`] = v;
  }
  return attrs;
}

/** The collector: its own address, or docker compose's collector in mock mode. */
function target(o: OpenTelemetryConfig, mock: boolean) {
  return mock ? { host: OTEL_COMPOSE_SERVICE, port: OTEL_COMPOSE_PORT, tls: false } : { host: o.address, port: o.port, tls: o.tls };
}

export function openTelemetryCluster(cfg: GatewayConfig, mock: boolean): unknown[] {
  const o = cfg.openTelemetry;
  if (!o) return [];
  const t = target(o, mock);
  // OTLP/gRPC is HTTP/2.
  return [serviceCluster(cfg, OTEL_CLUSTER, t.host, t.port, t.tls, true)];
}

/** The grpc_service both the logger and the tracer send through. */
export function otelGrpcService() {
  return { envoy_grpc: { cluster_name: OTEL_CLUSTER } };
}

/** envoy.access_loggers.open_telemetry, beside the JSON file log; none when logs are off. */
export function openTelemetryAccessLog(cfg: GatewayConfig): unknown[] {
  const o = cfg.openTelemetry;
  if (!o || !o.logs) return [];
  return [
    {
      name: "envoy.access_loggers.open_telemetry",
      typed_config: {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig",
        // Envoy 1.37's own fields; common_config, which held them before, is deprecated there.
        log_name: "sluice",
        grpc_service: otelGrpcService(),
        resource_attributes: kv({ "service.name": o.serviceName }),
        body: { string_value: `%REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE% ${filterStateField("model")}` },
        attributes: kv(openTelemetryLogAttributes()),
      },
    },
  ];
}

/**
 * What the request's span carries besides Envoy's own tags: the GenAI attributes and the figures a
 * trace reader asks for first. A custom tag's `value` is a substitution format string (Envoy >= 1.37)
 * evaluated when the stream ends, before any filter's on_log: an answer that ended has its usage
 * record there; a hung-up stream's estimate, written in on_log, is not (docs/opentelemetry.md).
 */
export function spanTags(): Record<string, string> {
  const tags: Record<string, string> = { ...GENAI_LOG_ATTRIBUTES };
  for (const k of ["consumer", "instance", "ttft_ms", "cost", "usage_source", "cache", "guard_verdict", "route_rule"]) tags[`sluice.${k}`] = filterStateField(k);
  return tags;
}

/** The http_connection_manager's tracing: OpenTelemetry spans to the collector; none without traces. */
export function openTelemetryTracing(cfg: GatewayConfig): Record<string, unknown> {
  const o = cfg.openTelemetry;
  if (!o || o.tracesSamplingPercent === null) return {};
  return {
    tracing: {
      provider: {
        name: "envoy.tracers.opentelemetry",
        typed_config: {
          "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
          grpc_service: { ...otelGrpcService(), timeout: "1s" },
          service_name: o.serviceName,
        },
      },
      random_sampling: { value: o.tracesSamplingPercent },
      custom_tags: Object.entries(spanTags()).map(([tag, value]) => ({ tag, value })),
    },
  };
}
