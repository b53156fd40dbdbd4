// Envoy's stats store as far as wasm custom metrics reach it (Envoy context.cc defineMetric and
// friends). A metric is stored once per name for the whole Host, so every VM instance (worker) and
// every plugin defining the same name shares it, as Envoy's scope does. Envoy names it
// "wasmcustom.<name>" (custom_stat_namespace_); getMetric() takes the name as the filter defined it.
import { stringMatcher, type StringMatch } from "./native/match.js";

export type MetricKind = "counter" | "gauge" | "histogram";

export interface Metric {
  name: string;
  type: MetricKind;
  value: bigint;
  /** Histograms: the most recent samples (at most KEPT_SAMPLES; older ones are dropped). */
  samples: bigint[];
  /** Histograms: every sample ever recorded, as Envoy keeps them: count, sum, cumulative bucket counts. */
  count: number;
  sum: bigint;
  /** Histograms: each bucket's upper bound, fixed when the histogram is made (stats_config.histogram_bucket_settings). */
  bounds: readonly number[];
  buckets: number[];
}

// Envoy's default histogram buckets (Stats::HistogramSettingsImpl::defaultBuckets).
export const DEFAULT_BUCKETS: readonly number[] = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];

/**
 * envoy.config.metrics.v3.HistogramBucketSettings: the first whose matcher (a StringMatcher, as
 * native/match.ts reads it) takes a histogram's full name (custom namespace included) gives its
 * buckets, else the defaults (HistogramSettingsImpl::buckets). envoy-config.ts takes the exact,
 * prefix, suffix and contains forms.
 */
export interface HistogramBuckets {
  match: { exact?: string; prefix?: string; suffix?: string; contains?: string };
  buckets: number[];
}

/** A histogram keeps its recent samples for tests (getMetric), not all of them: a gateway records
 * one or two per request and would otherwise grow without bound. */
export const KEPT_SAMPLES = 1024;

/** Envoy recordValue on a histogram: counted into its buckets; the sample kept among the recent. */
export function recordSample(m: Metric, v: bigint): void {
  m.count++;
  m.sum += v;
  const n = Number(v);
  for (let i = 0; i < m.bounds.length; i++) if (n <= m.bounds[i]) m.buckets[i]++;
  m.samples.push(v);
  if (m.samples.length >= 2 * KEPT_SAMPLES) m.samples.splice(0, m.samples.length - KEPT_SAMPLES);
}

export class Metrics {
  private byName = new Map<string, Metric>();

  private readonly histogramBuckets: { matches: StringMatch; buckets: readonly number[] }[];

  constructor(histogramBuckets: readonly HistogramBuckets[] = []) {
    this.histogramBuckets = histogramBuckets.map((h, i) => ({ matches: stringMatcher(h.match, `stats_config.histogram_bucket_settings[${i}].match`), buckets: h.buckets }));
  }

  private bucketsFor(fullName: string): readonly number[] {
    return this.histogramBuckets.find((h) => h.matches(fullName))?.buckets ?? DEFAULT_BUCKETS;
  }

  define(name: string, type: MetricKind): Metric {
    // Envoy keys stats by name within type; the same name as another type is a separate stat.
    const key = `${type}\u0000${name}`;
    let m = this.byName.get(key);
    if (!m) {
      const bounds = type === "histogram" ? this.bucketsFor(`${CUSTOM_NAMESPACE}.${name}`) : [];
      this.byName.set(key, (m = { name, type, value: 0n, samples: [], count: 0, sum: 0n, bounds, buckets: bounds.map(() => 0) }));
    }
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
   * Prometheus text as Envoy's /stats/prometheus renders these stats (source/server/admin/
   * prometheus_stats_formatter.cc). Each stat is named "wasmcustom.<name>"; `statsTags` (envoy.yaml
   * stats_config.stats_tags) are applied as Envoy's TagExtractor does: the first capture group is cut
   * from the name, the second (or the first) is the tag value. "wasmcustom" is a registered custom stat
   * namespace (the Wasm filter factory registers it), so the tag-extracted name is printed without it
   * and without the "envoy_" prefix, every character outside [a-zA-Z0-9_] becoming "_"; a name that
   * would start with a digit is left out. Tag values escape \\, newline and ".
   */
  prometheus(statsTags: TagSpecifier[] = []): string {
    const extractors = statsTags.map((t) => ({ name: t.tagName, re: new RegExp(t.regex, "d") }));
    const families = new Map<string, { type: MetricKind; lines: { labels: [string, string][]; m: Metric }[] }>();
    for (const m of this.all()) {
      const { name, tags } = extractTags(`${CUSTOM_NAMESPACE}.${m.name}`, extractors);
      const stripped = name.slice(CUSTOM_NAMESPACE.length + 1);
      const family = stripped.replace(/[^a-zA-Z0-9_]/g, "_");
      if (!family || /^[0-9]/.test(family)) continue;
      const key = `${family}\u0000${m.type}`;
      let f = families.get(key);
      if (!f) families.set(key, (f = { type: m.type, lines: [] }));
      f.lines.push({ labels: tags, m });
    }
    const out: string[] = [];
    const keys = [...families.keys()].sort();
    for (const key of keys) {
      const family = key.split("\u0000")[0];
      const f = families.get(key)!;
      out.push(`# TYPE ${family} ${f.type}`);
      f.lines.sort((a, b) => (labelText(a.labels) < labelText(b.labels) ? -1 : 1));
      for (const { labels, m } of f.lines) {
        const tags = labelText(labels);
        if (m.type !== "histogram") {
          out.push(`${family}{${tags}} ${m.value}`);
          continue;
        }
        const histTags = tags ? `${tags},` : "";
        m.bounds.forEach((b, i) => out.push(`${family}_bucket{${histTags}le="${b}"} ${m.buckets[i]}`));
        out.push(`${family}_bucket{${histTags}le="+Inf"} ${m.count}`);
        out.push(`${family}_sum{${tags}} ${m.sum}`);
        out.push(`${family}_count{${tags}} ${m.count}`);
      }
    }
    return out.length ? out.join("\n") + "\n" : "";
  }
}

/** envoy.config.metrics.v3.TagSpecifier with a regex (fixed_value tags are not supported here). */
export interface TagSpecifier {
  tagName: string;
  regex: string;
}

/** Envoy's custom stat namespace for Wasm metrics (Extensions::Common::Wasm::CustomStatNamespace). */
export const CUSTOM_NAMESPACE = "wasmcustom";

/**
 * TagProducerImpl::produceTags with regex extractors: each regex runs on the full stat name; a match
 * with at least one capture group adds tag (name, group 2 or group 1) and marks group 1 for removal;
 * a tag name already produced is not produced again. The removals are applied together at the end.
 */
export function extractTags(statName: string, extractors: { name: string; re: RegExp }[]): { name: string; tags: [string, string][] } {
  const tags: [string, string][] = [];
  const remove: [number, number][] = [];
  for (const x of extractors) {
    if (tags.some(([n]) => n === x.name)) continue;
    x.re.lastIndex = 0;
    const m = x.re.exec(statName) as (RegExpExecArray & { indices?: [number, number][] }) | null;
    if (!m || m.length < 2 || m[1] === undefined) continue;
    tags.push([x.name, m[2] ?? m[1]]);
    remove.push(m.indices![1]);
  }
  let name = "";
  for (let i = 0; i < statName.length; i++) if (!remove.some(([a, b]) => i >= a && i < b)) name += statName[i];
  return { name, tags };
}

function labelText(labels: [string, string][]): string {
  return labels
    .map(([k, v]) => `${k.replace(/[^a-zA-Z0-9_]/g, "_")}="${v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')}"`)
    .join(",");
}
