// Envoy's stats_config for Sluice's metrics: the tags that turn `;key=value` pairs in the filters'
// metric names into labels (Sluice's and the OpenTelemetry GenAI attributes), and the GenAI
// histograms' bucket boundaries. envoy.yaml carries it as its bootstrap's stats_config; under Istio,
// the gateway pods get it through a bootstrap override (istio-stats.ts).
import { statsTags } from "./access-log.js";
import { genAiStatsTags, histogramBucketSettings } from "./genai-stats.js";

export function statsConfig() {
  return { stats_tags: [...statsTags(), ...genAiStatsTags()], histogram_bucket_settings: histogramBucketSettings() };
}
