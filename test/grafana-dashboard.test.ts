// The Grafana dashboard (cli/render/grafana.ts, envoy/grafana/sluice.json; docs/dashboard.md):
// - the committed file is what `npm run render` makes of gateway.yaml;
// - it validates against Grafana's dashboard schema: the TypeScript compiler checks the file's JSON
//   against the types @grafana/schema generates from Grafana's dashboard kind and from the schemas of
//   the panel plugins it uses (timeseries, stat), as a JSON file spells them; a broken copy fails;
// - every metric and label its queries and variables name exists in what a running gateway (npm
//   start's code, mock providers, ai-guard, ai-cache and ai-ratelimit on) serves at /stats/prometheus
//   after whole, streamed, cached, masked, refused and failed requests.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import OpenAI from "openai";
import { defaultDashboard } from "@grafana/schema";
import { loadGatewayConfig } from "../cli/gateway-config.js";
import { DASHBOARD_FILE, GRAFANA_SCHEMA_VERSION, grafanaDashboard, grafanaFiles } from "../cli/render/grafana.js";
import { startLocalGateway, type LocalGateway } from "../cli/start.js";
import { renderYaml } from "./fixtures/local-gateway.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const TEXT = readFileSync(join(root, "envoy", DASHBOARD_FILE), "utf8");
const DASHBOARD = JSON.parse(TEXT);

interface Target { refId: string; expr: string; datasource?: { type?: string; uid?: string } }
interface PanelJson { id: number; type: string; title: string; gridPos: { x: number; y: number; w: number; h: number }; datasource?: unknown; targets?: Target[]; options?: unknown; fieldConfig?: { defaults: { custom?: unknown } } }
const PANELS: PanelJson[] = DASHBOARD.panels;
const VARIABLES: { name: string; type: string; query: string }[] = DASHBOARD.templating.list;

// ---------- PromQL names ----------

/** Words PromQL reserves: operators, modifiers, and the number literals Inf and NaN. */
const KEYWORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan", "atan2"]);

/**
 * The metric and label names a PromQL expression (with Grafana's $variables in it) refers to. Strings
 * go first (a matcher's value may hold braces, brackets or words), then Grafana's variables, then each
 * label matcher block (its label names kept), range and subquery brackets, and the label lists of
 * by/without/on/ignoring/group_left/group_right. What remains is functions (a name before "("),
 * keywords, numbers, operators and metric names.
 */
export function promqlNames(expr: string): { metrics: string[]; labels: string[] } {
  const labels = new Set<string>();
  let s = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  s = s.replace(/\$\{[^}]*\}|\$\w+/g, "1");
  s = s.replace(/\{([^}]*)\}/g, (_, inner: string) => {
    for (const m of inner.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) labels.add(m[1]);
    return " ";
  });
  s = s.replace(/\[[^\]]*\]/g, " ");
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_, _kw, list: string) => {
    for (const l of list.split(",").map((x) => x.trim()).filter(Boolean)) labels.add(l);
    return " ";
  });
  const metrics = new Set<string>();
  for (const m of s.matchAll(/(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(\s*\()?/g)) {
    if (m[2] || KEYWORDS.has(m[1].toLowerCase())) continue; // a function or aggregation, or a keyword
    metrics.add(m[1]);
  }
  return { metrics: [...metrics].sort(), labels: [...labels].sort() };
}

/** A variable's query: label_values(<selector>, <label>) names the selector's metric and the label. */
export function variableNames(query: string): { metrics: string[]; labels: string[] } {
  const m = /^\s*label_values\(\s*(.*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$/.exec(query);
  if (!m) throw new Error(`not a label_values(metric, label) query: ${query}`);
  const inner = promqlNames(m[1]);
  return { metrics: inner.metrics, labels: [...new Set([...inner.labels, m[2]])].sort() };
}

describe("the PromQL name extractor", () => {
  it("a histogram quantile: the bucket series, by-labels and matcher labels; not functions, numbers or $variables", () => {
    expect(promqlNames('histogram_quantile(0.9, sum by (le, gen_ai_provider_name) (rate(gen_ai_server_time_to_first_token_bucket{gen_ai_response_model=~"$model"}[$__rate_interval])))'))
      .toEqual({ metrics: ["gen_ai_server_time_to_first_token_bucket"], labels: ["gen_ai_provider_name", "gen_ai_response_model", "le"] });
  });

  it("arithmetic between two metrics, scientific numbers and ranges", () => {
    expect(promqlNames('sum(rate(a_total{x="by (y)"}[5m])) / sum(rate(b:recorded[5m])) * 3600 / 1e6 + 2.5e-3'))
      .toEqual({ metrics: ["a_total", "b:recorded"], labels: ["x"] });
  });

  it("strings that hold braces, brackets, quotes and keywords", () => {
    expect(promqlNames(`a{path="/v1/{x}[0]", q='it\\'s or b', r!~"c|d"} unless on (k) e`))
      .toEqual({ metrics: ["a", "e"], labels: ["k", "path", "q", "r"] });
  });

  it("comparison, or vector(0), without, group_left, offset and a bare aggregation without spaces", () => {
    expect(promqlNames("count(min by(instance)(up_gauge) == 0) or vector(0)")).toEqual({ metrics: ["up_gauge"], labels: ["instance"] });
    expect(promqlNames("sum(rate(a[5m] offset 1h)) without (z) + on (k) group_left (m) b")).toEqual({ metrics: ["a", "b"], labels: ["k", "m", "z"] });
    expect(promqlNames("sum(x)by(le)")).toEqual({ metrics: ["x"], labels: ["le"] });
  });

  it("label_values variables", () => {
    expect(variableNames('label_values(sluice_ai_requests{provider=~"$provider"}, model)')).toEqual({ metrics: ["sluice_ai_requests"], labels: ["model", "provider"] });
    expect(() => variableNames("query_result(up)")).toThrow(/label_values/);
  });
});

// ---------- the file against Grafana's schema ----------

/** TypeScript diagnostics of `source` compiled as a file of the repository (so node_modules resolve). */
function compile(source: string): string[] {
  const file = join(root, "test", "grafana-dashboard.check.ts");
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true, noEmit: true, skipLibCheck: true, types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) => (resolve(name) === file ? ts.createSourceFile(name, source, lang) : getSourceFile(name, lang, ...rest));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => resolve(name) === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n").slice(0, 400));
}

/**
 * The dashboard as TypeScript: the whole file against the dashboard kind, then each panel's options,
 * field config and queries against its plugin's types (the dashboard kind leaves those open).
 */
function checkSource(text: string): string {
  const d = JSON.parse(text);
  const lines = [
    'import type { Dashboard } from "@grafana/schema";',
    'import type { Options as Stat } from "@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen";',
    'import type { Options as TimeSeries, FieldConfig as TimeSeriesField } from "@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen";',
    'import type { AsJson, PromQuery } from "../cli/render/grafana.js";',
    "type TimeSeriesPanel = { options: AsJson<TimeSeries>; custom: AsJson<TimeSeriesField>; targets: PromQuery[] };",
    "type StatPanel = { options: AsJson<Stat>; targets: PromQuery[] };",
    `export const dashboard: AsJson<Dashboard> = ${text};`,
  ];
  for (const p of d.panels as PanelJson[]) {
    const json = (v: unknown) => JSON.stringify(v ?? null);
    if (p.type === "timeseries") lines.push(`export const panel${p.id}: TimeSeriesPanel = { options: ${json(p.options)}, custom: ${json(p.fieldConfig?.defaults.custom)}, targets: ${json(p.targets)} };`);
    else if (p.type === "stat") lines.push(`export const panel${p.id}: StatPanel = { options: ${json(p.options)}, targets: ${json(p.targets)} };`);
    else if (p.type !== "row") lines.push(`export const panel${p.id}: never = "no schema check for panel type ${p.type}";`);
  }
  return lines.join("\n");
}

describe("envoy/grafana/sluice.json", () => {
  it("is what `npm run render` makes of gateway.yaml (re-render after changing cli/render/grafana.ts)", () => {
    const cfg = loadGatewayConfig(join(root, "gateway.yaml"), { env: {} });
    expect(TEXT).toBe(grafanaFiles(cfg.aiProxy.currency)[DASHBOARD_FILE]);
  });

  it("names the dashboard schema version of the @grafana/schema it is checked against", () => {
    expect(DASHBOARD.schemaVersion).toBe(GRAFANA_SCHEMA_VERSION);
    expect(defaultDashboard.schemaVersion).toBe(GRAFANA_SCHEMA_VERSION);
  });

  it("validates against Grafana's dashboard kind and its panels' plugin schemas (@grafana/schema)", () => {
    expect(compile(checkSource(TEXT))).toEqual([]);
  });

  it("the check refuses a dashboard Grafana's schema does not allow", () => {
    const broken = JSON.parse(TEXT);
    broken.graphTooltip = 7; // not a DashboardCursorSync
    broken.templating.list[1].refresh = "always"; // a VariableRefresh is a number
    const ts_ = broken.panels.find((p: PanelJson) => p.type === "timeseries");
    ts_.options.legend.displayMode = "lists";
    ts_.fieldConfig.defaults.custom.drawStyle = "curve";
    ts_.targets[0].legendFromat = "typo"; // a field neither DataQuery nor the Prometheus query has
    broken.panels.find((p: PanelJson) => p.type === "stat").options.colorMode = "rainbow";
    const errors = compile(checkSource(JSON.stringify(broken, null, 2))).join("\n");
    for (const bad of ["'7'", "VariableRefresh", '"lists"', '"curve"', "legendFromat", '"rainbow"']) expect(errors).toContain(bad);
  });

  it("lays its panels on the 24-column grid without overlap, ids unique, every query on the datasource variable", () => {
    const ids = PANELS.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const taken = new Set<string>();
    for (const p of PANELS) {
      const { x, y, w, h } = p.gridPos;
      expect(x >= 0 && w > 0 && x + w <= 24, p.title).toBe(true);
      for (let i = x; i < x + w; i++) for (let j = y; j < y + h; j++) {
        expect(taken.has(`${i},${j}`), `${p.title} overlaps at ${i},${j}`).toBe(false);
        taken.add(`${i},${j}`);
      }
      if (p.type === "row") continue;
      expect(p.datasource, p.title).toEqual({ type: "prometheus", uid: "${datasource}" });
      expect(p.targets!.length, p.title).toBeGreaterThan(0);
      expect(new Set(p.targets!.map((t) => t.refId)).size, p.title).toBe(p.targets!.length);
      for (const t of p.targets!) expect(t.datasource).toEqual(p.datasource);
    }
  });

  it("uses only the variables it defines and Grafana's own", () => {
    const defined = new Set(VARIABLES.map((v) => v.name));
    const used = [...TEXT.matchAll(/\$\{?(\w+)/g)].map((m) => m[1]).filter((n) => !n.startsWith("__"));
    expect([...new Set(used)].filter((n) => !defined.has(n))).toEqual([]);
    expect(VARIABLES.map((v) => v.name)).toEqual(["datasource", "provider", "model", "consumer"]);
  });

  it("shows costs in filters.ai_proxy.currency: Grafana's unit when it has one, else the code after the value", () => {
    const units = (currency: string) => new Set((grafanaDashboard(currency).panels as PanelJson[]).filter((p) => p.targets?.some((t) => /cost/.test(t.expr))).map((p) => (p.fieldConfig!.defaults as { unit?: string }).unit));
    expect(units("EUR")).toEqual(new Set(["currencyEUR"]));
    expect(units("CAD")).toEqual(new Set(["suffix: CAD"]));
  });

  it("the latency panels show the GenAI histograms in milliseconds, as the gateway records them", () => {
    for (const p of PANELS.filter((p) => p.targets?.some((t) => /gen_ai_server_\w+_bucket/.test(t.expr)))) {
      expect((p.fieldConfig!.defaults as { unit?: string }).unit, p.title).toBe("ms");
    }
  });
});

// ---------- the queries against a running gateway ----------

const GATEWAY_YAML = `
providers:
  - name: openai
    provider: openai
    api_key_env: OPENAI_API_KEY
    models: ["gpt-4o"]
  - name: claude
    provider: anthropic
    api_key_env: ANTHROPIC_API_KEY
    models: ["claude-sonnet-4-5"]
  # Nothing listens on port 9: its requests fail to connect, and one failure takes it out.
  - name: down
    provider: openai-compatible
    endpoint: http://127.0.0.1:9/v1
    models: ["llama-3"]
filters:
  ai_proxy:
    health: { failures: 1, cooldown_ms: 60000 }
  ai_guard:
    detectors: { email: { request: mask, response: mask } }   # answers too: sluice_guard_answer_detections
  ai_cache:
    ttl: 10m
  ai_ratelimit:
    rules:
      - name: per-consumer
        key: [consumer]
        limit: 1000000
        window: 1m
`;

let gw: LocalGateway;
/** Sample name (as scraped: histograms as _bucket, _sum, _count) -> every label name seen on it. */
const scraped = new Map<string, Set<string>>();

async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${gw.url}${path}`, { method: "POST", headers: { authorization: "Bearer sk-alice-123", "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
}

beforeAll(async () => {
  gw = await startLocalGateway({ envoyYaml: renderYaml(GATEWAY_YAML).envoyYaml, port: 0, adminPort: 0, env: {}, accessLog: () => {} });
  const openai = new OpenAI({ apiKey: "sk-alice-123", baseURL: `${gw.url}/v1`, maxRetries: 0 });
  const chat = { model: "gpt-4o", messages: [{ role: "user" as const, content: "What do dashboards show?" }] };
  // Whole, then the same again (a cache hit), then streamed.
  await openai.chat.completions.create(chat);
  const hit = await openai.chat.completions.create(chat).withResponse();
  expect(hit.response.headers.get("x-sluice-cache")).toBe("hit");
  let streamed = "";
  for await (const c of await openai.chat.completions.create({ ...chat, messages: [{ role: "user", content: "Stream a few words please" }], stream: true })) streamed += c.choices[0]?.delta?.content ?? "";
  expect(streamed).toContain("Stream a few words");
  // Anthropic's Messages API, streamed, with an e-mail address ai-guard masks.
  const msg = await post("/v1/messages", { model: "claude-sonnet-4-5", max_tokens: 100, stream: true, messages: [{ role: "user", content: "Write to ada@example.com today" }] }, { "anthropic-version": "2023-06-01" });
  expect(msg.status).toBe(200);
  expect(await msg.text()).toContain("<EMAIL_1>");
  // Failures: an instance that refuses connections (502), a model nobody serves (refused before any provider).
  expect((await post("/v1/chat/completions", { model: "llama-3", messages: [{ role: "user", content: "hi" }] })).status).toBe(502);
  expect((await post("/v1/chat/completions", { model: "no-such-model", messages: [{ role: "user", content: "hi" }] })).status).toBeGreaterThanOrEqual(400);

  const text = await (await fetch(`${gw.adminUrl}/stats/prometheus`)).text();
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$/.exec(line);
    if (!m) continue;
    const labels = scraped.get(m[1]) ?? new Set<string>();
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)) labels.add(l[1]);
    scraped.set(m[1], labels);
  }
}, 60_000);

afterAll(() => gw?.close());

/** What of `names` the scrape lacks: metrics not served, labels on none of the expression's metrics. */
function missing(names: { metrics: string[]; labels: string[] }): string[] {
  const out = names.metrics.filter((m) => !scraped.has(m)).map((m) => `metric ${m}`);
  const labels = new Set(names.metrics.flatMap((m) => [...(scraped.get(m) ?? [])]));
  return [...out, ...names.labels.filter((l) => !labels.has(l)).map((l) => `label ${l}`)];
}

describe("the dashboard's queries against a running gateway's /stats/prometheus", () => {
  it("the scrape has the gateway's own and the GenAI metrics", () => {
    for (const name of ["sluice_ai_requests", "sluice_cache_requests", "sluice_guard_requests", "sluice_ratelimit_rejected", "gen_ai_server_request_duration_bucket"]) expect(scraped.has(name), name).toBe(true);
  });

  for (const p of PANELS.filter((p) => p.type !== "row")) {
    it(`${p.title}: every metric and label of its queries is served`, () => {
      for (const t of p.targets!) {
        const names = promqlNames(t.expr);
        expect(names.metrics.length, t.expr).toBeGreaterThan(0);
        expect(missing(names), t.expr).toEqual([]);
      }
    });
  }

  it("every variable's query names a served metric and label", () => {
    for (const v of VARIABLES.filter((v) => v.type === "query")) expect(missing(variableNames(v.query)), v.name).toEqual([]);
  });
});
