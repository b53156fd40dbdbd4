// ai-cache's metrics, labels as `;key=value` pairs that envoy.yaml's stats_tags extract:
//   sluice.cache_requests;outcome=<hit|miss|bypass>;reason=<exact|semantic|why bypassed|none>
//   sluice.cache_saved_tokens                       tokens hits spared the provider (prompt + completion)
//   sluice.cache_saved_cost                         their cost, micro-units of the configured currency
//   sluice.cache_hit_ms                             a hit's time to its answer (histogram): its TTFT
//   sluice.cache_stores;outcome=<stored|...>        what became of each answer the cache could keep
//   sluice.cache_evictions                          live answers replaced to make room
//   sluice.cache_embedding_errors                   semantic lookups the embeddings instance failed
//   sluice.cache_store_errors                       a remote store's failed lookups and writes
// The hit ratio is hits / (hits + misses). Labels come from fixed sets: series stay bounded.
import { namedMetric, incrementMetric, recordMetric, METRIC_COUNTER, METRIC_HISTOGRAM } from "../../lib/sdk";


export function countRequest(outcome: string, reason: string): void {
  incrementMetric(namedMetric(METRIC_COUNTER, "sluice.cache_requests;outcome=" + outcome + ";reason=" + reason), 1);
}

export function countHit(tokens: i64, costMicros: i64, ms: i64): void {
  if (tokens > 0) incrementMetric(namedMetric(METRIC_COUNTER, "sluice.cache_saved_tokens"), tokens);
  if (costMicros > 0) incrementMetric(namedMetric(METRIC_COUNTER, "sluice.cache_saved_cost"), costMicros);
  recordMetric(namedMetric(METRIC_HISTOGRAM, "sluice.cache_hit_ms"), <u64>(ms > 0 ? ms : 0));
}

export function countStore(outcome: string, evicted: bool): void {
  incrementMetric(namedMetric(METRIC_COUNTER, "sluice.cache_stores;outcome=" + outcome), 1);
  if (evicted) incrementMetric(namedMetric(METRIC_COUNTER, "sluice.cache_evictions"), 1);
}

export function countStoreError(): void {
  incrementMetric(namedMetric(METRIC_COUNTER, "sluice.cache_store_errors"), 1);
}

export function countEmbeddingError(): void {
  incrementMetric(namedMetric(METRIC_COUNTER, "sluice.cache_embedding_errors"), 1);
}
