// The OpenTelemetry GenAI metrics ai-proxy records (assembly/filters/ai-proxy/genai-metrics.ts): their
// attributes as Envoy stats tags and their bucket boundaries as Envoy histogram bucket settings.
//
// The boundaries are the semantic conventions' explicit bucket advice (model/gen-ai metrics, listed
// with their source in test/fixtures/otel-genai-semconv.json). Envoy histograms record integers, so
// the filter records durations in milliseconds and the boundaries given in seconds are scaled by 1000;
// token counts are recorded as they are.

export interface GenAiHistogram {
  /** The convention's metric name, which is also the stat name the filter defines. */
  name: string;
  /** The convention's unit. */
  unit: "s" | "{token}";
  /** The unit the filter records in. */
  recorded: "ms" | "{token}";
  /** The convention's boundaries, in its unit. */
  boundaries: number[];
}

const DURATION_BOUNDARIES = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];

export const GENAI_HISTOGRAMS: GenAiHistogram[] = [
  {
    name: "gen_ai.client.token.usage",
    unit: "{token}",
    recorded: "{token}",
    boundaries: [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864],
  },
  { name: "gen_ai.server.request.duration", unit: "s", recorded: "ms", boundaries: DURATION_BOUNDARIES },
  {
    name: "gen_ai.server.time_to_first_token",
    unit: "s",
    recorded: "ms",
    boundaries: [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0],
  },
  {
    name: "gen_ai.server.time_per_output_token",
    unit: "s",
    recorded: "ms",
    boundaries: [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5],
  },
];

/** The attributes the filter puts on them, as `;key=value` in the stat name. */
export const GENAI_ATTRIBUTES = [
  "gen_ai.operation.name",
  "gen_ai.provider.name",
  "gen_ai.request.model",
  "gen_ai.response.model",
  "gen_ai.token.type",
  "error.type",
] as const;

/** The boundaries as the filter records: milliseconds for durations (rounded off float error). */
export function recordedBoundaries(h: GenAiHistogram): number[] {
  return h.recorded === "ms" ? h.boundaries.map((b) => Math.round(b * 1000 * 1000) / 1000) : h.boundaries;
}

/** envoy.config.metrics.v3.StatsConfig histogram_bucket_settings: each histogram's boundaries by its stat name. */
export function histogramBucketSettings(): { match: { prefix: string }; buckets: number[] }[] {
  // Envoy matches the full stat name, which starts with the custom namespace of Wasm metrics.
  return GENAI_HISTOGRAMS.map((h) => ({ match: { prefix: `wasmcustom.${h.name};` }, buckets: recordedBoundaries(h) }));
}

/** Stats tags for the attributes: dots are escaped in the regex; Prometheus shows the tag name with underscores. */
export function genAiStatsTags(): { tag_name: string; regex: string }[] {
  return GENAI_ATTRIBUTES.map((a) => ({ tag_name: a, regex: `(;${a.replaceAll(".", "\\.")}=([^;]*))` }));
}
