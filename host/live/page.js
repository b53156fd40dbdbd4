// The live page of the local gateway's admin port (docs/live-page.md). Every 2 s it reads this
// admin port's /stats/prometheus and /live/recent.json, nothing else, and fills the page's tables.
// Values go into the page as text (textContent), never as markup: model and consumer names come
// from configuration and clients.
"use strict";

const EVERY_MS = 2000;
/** Rows a table shows at most: the metrics are bounded by the configuration, the page is too. */
const MAX_ROWS = 200;

let previous = null; // { at: ms, requests: n, tokens: n }

/** Prometheus text → [{ name, labels: {..}, value }]; comments and malformed lines are skipped. */
function parsePrometheus(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    let l;
    // One pass over the escapes, so an escaped backslash before an "n" stays a backslash and an "n".
    while ((l = re.exec(m[3] || "")) !== null) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

const sum = (samples, name, pick = () => true) => samples.filter((s) => s.name === name && pick(s)).reduce((a, s) => a + s.value, 0);

/** Sums of a metric grouped by some labels: Map "a\u0000b" → { labels, value }. */
function groupBy(samples, name, keys) {
  const groups = new Map();
  for (const s of samples) {
    if (s.name !== name) continue;
    const k = keys.map((key) => s.labels[key] ?? "").join("\u0000");
    const g = groups.get(k) ?? { labels: Object.fromEntries(keys.map((key) => [key, s.labels[key] ?? ""])), value: 0 };
    g.value += s.value;
    groups.set(k, g);
  }
  return groups;
}

/** A quantile from cumulative buckets, interpolated within the bucket as Prometheus's histogram_quantile does. */
function quantile(q, buckets) {
  const b = [...buckets].sort((x, y) => x.le - y.le);
  const total = b.length ? b[b.length - 1].count : 0;
  if (total === 0) return NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const { le, count } of b) {
    if (count >= rank) {
      if (le === Infinity) return prevLe;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(count - prevCount, 1e-9);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

const fmt = (n, digits = 0) => (Number.isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "–");
const money = (micros) => fmt(micros / 1e6, 6);

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function fill(tableId, rows) {
  const body = document.querySelector(`#${tableId} tbody`);
  const fresh = document.createElement("tbody");
  for (const cells of rows.slice(0, MAX_ROWS)) {
    const tr = document.createElement("tr");
    for (const c of cells) tr.append(c);
    fresh.append(tr);
  }
  body.replaceWith(fresh);
}

function setText(id, text) {
  document.getElementById(id).textContent = text;
}

function render(samples, recent, at) {
  const requests = sum(samples, "sluice_ai_requests");
  const tokens = sum(samples, "sluice_ai_prompt_tokens") + sum(samples, "sluice_ai_completion_tokens");
  if (previous && at > previous.at) {
    const seconds = (at - previous.at) / 1000;
    setText("rps", fmt(Math.max(0, requests - previous.requests) / seconds, 2));
    setText("tps", fmt(Math.max(0, tokens - previous.tokens) / seconds, 1));
  }
  previous = { at, requests, tokens };
  setText("requests", fmt(requests));
  setText("tokens", fmt(tokens));
  setText("cost", money(sum(samples, "sluice_ai_cost_micros")));
  setText("errors", fmt(sum(samples, "sluice_ai_errors")));

  const keys = ["consumer", "model"];
  const req = groupBy(samples, "sluice_ai_requests", keys);
  const prompt = groupBy(samples, "sluice_ai_prompt_tokens", keys);
  const completion = groupBy(samples, "sluice_ai_completion_tokens", keys);
  const cost = groupBy(samples, "sluice_ai_cost_micros", keys);
  fill("by-consumer", [...req.entries()].sort((a, b) => b[1].value - a[1].value).map(([k, g]) => [
    cell(g.labels.consumer), cell(g.labels.model), cell(fmt(g.value), "n"),
    cell(fmt(prompt.get(k)?.value ?? 0), "n"), cell(fmt(completion.get(k)?.value ?? 0), "n"), cell(money(cost.get(k)?.value ?? 0), "n"),
  ]));

  // TTFT per provider and model from the histogram's cumulative buckets. Series that differ in
  // another label (a stats tag added later) are summed bucket by bucket first, as
  // sum by (le, provider, model) before histogram_quantile, so each le appears once.
  const series = new Map();
  for (const s of samples) {
    if (s.name !== "sluice_ai_ttft_ms_bucket") continue;
    const k = `${s.labels.provider}\u0000${s.labels.model}`;
    const e = series.get(k) ?? { provider: s.labels.provider ?? "", model: s.labels.model ?? "", counts: new Map() };
    const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
    e.counts.set(le, (e.counts.get(le) ?? 0) + s.value);
    series.set(k, e);
  }
  const ttft = [...series.values()].map((e) => ({ ...e, buckets: [...e.counts].map(([le, count]) => ({ le, count })) }));
  fill("ttft", ttft.filter((e) => e.buckets.some((b) => b.count > 0)).map((e) => {
    const n = Math.max(...e.buckets.map((b) => b.count));
    return [cell(e.provider), cell(e.model), cell(fmt(n), "n"), ...[0.5, 0.9, 0.99].map((q) => cell(fmt(quantile(q, e.buckets)), "n"))];
  }));

  const picked = groupBy(samples, "sluice_ai_instance_picked", ["instance"]);
  const failed = groupBy(samples, "sluice_ai_instance_failed", ["instance"]);
  fill("instances", samples.filter((s) => s.name === "sluice_ai_instance_available").map((s) => {
    const name = s.labels.instance;
    const up = s.value >= 1;
    return [cell(name), cell(up ? "available" : "cooling down", up ? "up" : "down"), cell(fmt(picked.get(name)?.value ?? 0), "n"), cell(fmt(failed.get(name)?.value ?? 0), "n")];
  }));

  fill("recent", recent.map((r) => [
    cell(new Date(r.time).toLocaleTimeString("en-GB")), cell(`${r.method} ${r.path}`), cell(String(r.status), r.status >= 400 ? "fail n" : "n"),
    cell(r.consumer || "–"), cell(r.provider || "–"), cell(r.model || "–"),
    cell(r.promptTokens || r.completionTokens ? `${r.promptTokens || "–"} / ${r.completionTokens || "–"}` : "–", "n"),
    cell(r.ttftMs || "–", "n"), cell(String(r.durationMs), "n"), cell(r.cost ? money(Number(r.cost)) : "–", "n"), cell(r.cache || "–"),
  ]));
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    const [stats, recent] = await Promise.all([
      fetch("/stats/prometheus", { cache: "no-store" }).then((r) => (r.ok ? r.text() : Promise.reject(new Error(`/stats/prometheus: ${r.status}`)))),
      fetch("/live/recent.json", { cache: "no-store" }).then((r) => (r.ok ? r.json() : Promise.reject(new Error(`/live/recent.json: ${r.status}`)))),
    ]);
    const at = Date.now();
    render(parsePrometheus(stats), recent, at);
    status.textContent = `updated ${new Date(at).toLocaleTimeString("en-GB")}`;
    status.className = "";
    document.body.dataset.refreshed = String(at);
  } catch (e) {
    status.textContent = `cannot read the gateway: ${e.message}`;
    status.className = "error";
  }
}

refresh();
setInterval(refresh, EVERY_MS);
