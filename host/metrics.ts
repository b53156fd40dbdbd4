// Envoy's stats store as far as wasm custom metrics reach it (Envoy context.cc defineMetric and
// friends). A metric is stored once per name for the whole Host, so every VM instance (worker) and
// every plugin defining the same name shares it, as Envoy's scope does. Envoy names it
// "wasmcustom.<name>" (custom_stat_namespace_); getMetric() takes the name as the filter defined it.

export type MetricKind = "counter" | "gauge" | "histogram";

export interface Metric {
  name: string;
  type: MetricKind;
  value: bigint;
  samples: bigint[];
}

// Envoy's default histogram buckets (Stats::HistogramSettingsImpl::defaultBuckets).
const BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];

export class Metrics {
  private byName = new Map<string, Metric>();

  define(name: string, type: MetricKind): Metric {
    // Envoy keys stats by name within type; the same name as another type is a separate stat.
    const key = `${type}\u0000${name}`;
    let m = this.byName.get(key);
    if (!m) this.byName.set(key, (m = { name, type, value: 0n, samples: [] }));
    return m;
  }

  get(name: string): Metric | undefined {
    for (const t of ["counter", "gauge", "histogram"] as const) {
      const m = this.byName.get(`${t}\u0000${name}`);
      if (m) return m;
    }
    return undefined;
  }

  all(): Metric[] {
    return [...this.byName.values()];
  }

  /**
   * Prometheus text as Envoy's /stats/prometheus renders these stats: "wasmcustom.<name>" with every
   * character outside [a-zA-Z0-9_] replaced by "_" and the "envoy_" prefix
   * (PrometheusStatsFormatter::metricName / sanitizeName).
   */
  prometheus(): string {
    const out: string[] = [];
    const sorted = this.all().sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const m of sorted) {
      const n = "envoy_" + `wasmcustom.${m.name}`.replace(/[^a-zA-Z0-9_]/g, "_");
      out.push(`# TYPE ${n} ${m.type}`);
      if (m.type !== "histogram") {
        out.push(`${n}{} ${m.value}`);
        continue;
      }
      let sum = 0n;
      for (const s of m.samples) sum += s;
      for (const b of BUCKETS) {
        const count = m.samples.filter((s) => Number(s) <= b).length;
        out.push(`${n}_bucket{le="${b}"} ${count}`);
      }
      out.push(`${n}_bucket{le="+Inf"} ${m.samples.length}`);
      out.push(`${n}_sum{} ${sum}`);
      out.push(`${n}_count{} ${m.samples.length}`);
    }
    return out.length ? out.join("\n") + "\n" : "";
  }
}
