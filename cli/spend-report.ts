// Spend per virtual key, team, consumer, model and provider, read from the metrics endpoint (Envoy's
// admin /stats/prometheus, or the local gateway's): ai-proxy's counters sluice_ai_cost_micros,
// sluice_ai_prompt_tokens, sluice_ai_completion_tokens and sluice_ai_requests, summed over the labels
// not asked for. A series without a label (key and team are left out when empty) shows "-". The counters run from the start of the process: a window is the difference of two
// readings (cli/spend.ts takes them).

export const GROUPS = ["key", "team", "consumer", "model", "provider"] as const;
export type Group = (typeof GROUPS)[number];

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** One metric family's samples from Prometheus' text format (name without labels, `# ` lines skipped). */
export function samples(text: string, name: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith(name + "{") && !line.startsWith(name + " ")) continue;
    const m = /^([^{ ]+)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, "$1");
    const value = Number(m[3]);
    if (Number.isFinite(value)) out.push({ labels, value });
  }
  return out;
}

export interface Row {
  key: string[];
  requests: number;
  promptTokens: number;
  completionTokens: number;
  costMicros: number;
}

const METRICS: [keyof Omit<Row, "key">, string][] = [
  ["requests", "sluice_ai_requests"],
  ["promptTokens", "sluice_ai_prompt_tokens"],
  ["completionTokens", "sluice_ai_completion_tokens"],
  ["costMicros", "sluice_ai_cost_micros"],
];

/** The rows of one reading, grouped by `by`; `since`, an earlier reading, is subtracted. */
export function spend(text: string, by: Group[], since?: string): Row[] {
  const rows = new Map<string, Row>();
  const add = (t: string, sign: number) => {
    for (const [field, name] of METRICS) {
      for (const s of samples(t, name)) {
        // Prometheus reads an empty label as no label: both are "-".
        const key = by.map((g) => s.labels[g] || "-");
        const id = JSON.stringify(key);
        let r = rows.get(id);
        if (!r) rows.set(id, (r = { key, requests: 0, promptTokens: 0, completionTokens: 0, costMicros: 0 }));
        r[field] += sign * s.value;
      }
    }
  };
  add(text, 1);
  if (since !== undefined) add(since, -1);
  return [...rows.values()].filter((r) => r.requests || r.promptTokens || r.completionTokens || r.costMicros).sort((a, b) => b.costMicros - a.costMicros || b.requests - a.requests);
}

/** A plain-text table, money in whole units of the currency with six decimals (micro-units exact). */
export function table(rows: Row[], by: Group[], currency: string): string {
  const head = [...by, "requests", "prompt tokens", "completion tokens", `cost (${currency})`];
  const body = rows.map((r) => [...r.key, String(r.requests), String(r.promptTokens), String(r.completionTokens), (r.costMicros / 1e6).toFixed(6)]);
  const total = rows.reduce((t, r) => ({ requests: t.requests + r.requests, p: t.p + r.promptTokens, c: t.c + r.completionTokens, m: t.m + r.costMicros }), { requests: 0, p: 0, c: 0, m: 0 });
  body.push([...by.map((_, i) => (i === 0 ? "total" : "")), String(total.requests), String(total.p), String(total.c), (total.m / 1e6).toFixed(6)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < by.length ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ").trimEnd();
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...body.map(line)].join("\n");
}
