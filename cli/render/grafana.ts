// The Grafana dashboard of the gateway's Prometheus metrics: `npm run render` writes it to
// envoy/grafana/sluice.json, which docker compose's observability profile provisions into Grafana
// (docs/dashboard.md). A pure function of the currency the costs are counted in.
//
// It is typed with @grafana/schema, the types Grafana generates from its dashboard kind and its panel
// plugins' schemas, spelled as JSON spells them (AsJson: a string enum member is its string), so
// `tsc` refuses a field Grafana does not know, and test/grafana-dashboard.test.ts checks the written
// file against the same types.
//
// Every query names only metrics the gateway emits; the same test scrapes a running gateway and
// checks each name and label. The OpenTelemetry GenAI histograms are in milliseconds (Envoy's
// histograms take integers), hence the unit "ms" on the latency panels.
import type { DataQuery, Dashboard, FieldConfigSource, Panel, RowPanel, VariableModel } from "@grafana/schema";
import type { Options as StatOptions } from "@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen";
import type { FieldConfig as TimeSeriesFieldConfig, Options as TimeSeriesOptions } from "@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen";

/** A Grafana type as a JSON file spells it: a string enum's members are their values ("list", not LegendDisplayMode.List). */
export type AsJson<T> = T extends string
  ? `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends readonly (infer U)[]
      ? AsJson<U>[]
      : T extends object
        ? { [K in keyof T]: AsJson<T[K]> }
        : T;

/**
 * A Prometheus panel query. The dashboard schema leaves targets to the data source; these are the
 * fields of Grafana's Prometheus query model the dashboard uses, over the schema's DataQuery (a type,
 * not an interface: the schema's targets are records, which an interface is not assignable to).
 */
export type PromQuery = AsJson<DataQuery> & {
  expr: string;
  legendFormat?: string;
  range?: boolean;
  instant?: boolean;
  editorMode?: "code" | "builder";
};

export type DashboardJson = AsJson<Dashboard>;
type PanelJson = AsJson<Panel>;

/** The dashboard schema version of @grafana/schema 13.2.3 (Grafana 13.2); a test compares it with the package's default. */
export const GRAFANA_SCHEMA_VERSION = 42;
export const DASHBOARD_UID = "sluice-gateway";
/** The Prometheus data source envoy/grafana/provisioning provides; elsewhere the variable picks one. */
export const PROMETHEUS_DATASOURCE_UID = "sluice-prometheus";
export const DASHBOARD_FILE = "grafana/sluice.json";

const DS = { type: "prometheus", uid: "${datasource}" };
const RATE = "$__rate_interval";
/** Sluice's request, token, cost and error counters, narrowed by the dashboard's variables. */
const SPEND = `provider=~"$provider", model=~"$model", consumer=~"$consumer"`;
/** The GenAI histograms: their response model is the configured model name, as Sluice's `model` label. */
const GENAI = `gen_ai_response_model=~"$model"`;

function query(expr: string, legendFormat: string, refId: string, instant = false): PromQuery {
  return { refId, datasource: DS, editorMode: "code", expr, legendFormat, range: !instant, instant };
}

/** Targets A, B, C... from [expr, legend] pairs. */
function queries(pairs: [string, string][], instant = false): PromQuery[] {
  return pairs.map(([e, l], i) => query(e, l, String.fromCharCode(65 + i), instant));
}

interface Cell {
  w: number;
  h: number;
  panel: Omit<PanelJson, "id" | "gridPos">;
}

type Steps = [color: string, from: number][];

/** Colours over green, each from its value up: [["orange", 0.01], ["red", 0.05]]. A panel with steps is coloured by them. */
function fieldDefaults(unit: string, custom?: AsJson<TimeSeriesFieldConfig>, steps: Steps = []): AsJson<FieldConfigSource> {
  return {
    defaults: {
      unit,
      ...(custom ? { custom } : {}),
      color: { mode: steps.length ? "thresholds" : "palette-classic" },
      thresholds: { mode: "absolute", steps: [{ color: "green", value: null }, ...steps.map(([color, value]) => ({ color, value }))] },
    },
    overrides: [],
  };
}

/** A time series panel; `stack` for parts of a whole (tokens by kind, requests by model). */
function timeseries(title: string, description: string, unit: string, targets: PromQuery[], opts: { stack?: boolean; w?: number } = {}): Cell {
  const custom: AsJson<TimeSeriesFieldConfig> = {
    drawStyle: "line",
    lineWidth: 1,
    fillOpacity: opts.stack ? 30 : 10,
    showPoints: "never",
    spanNulls: false,
    stacking: { mode: opts.stack ? "normal" : "none", group: "A" },
    axisSoftMin: 0,
  };
  const options: AsJson<TimeSeriesOptions> = {
    legend: { showLegend: true, displayMode: "list", placement: "bottom", calcs: [] },
    tooltip: { mode: "multi", sort: "desc" },
  };
  return { w: opts.w ?? 12, h: 8, panel: { type: "timeseries", title, description, datasource: DS, fieldConfig: fieldDefaults(unit, custom), options, targets } };
}

/** A single figure over the dashboard's range (an instant query), or one per series (instances). */
function stat(title: string, description: string, unit: string, targets: PromQuery[], opts: { mappings?: AsJson<FieldConfigSource>["defaults"]["mappings"]; steps?: Steps; w?: number; h?: number } = {}): Cell {
  const options: AsJson<StatOptions> = {
    reduceOptions: { calcs: ["lastNotNull"], fields: "", values: false },
    orientation: "auto",
    textMode: "auto",
    colorMode: opts.mappings || opts.steps ? "background" : "value",
    graphMode: "none",
    justifyMode: "auto",
    showPercentChange: false,
    percentChangeColorMode: "standard",
    wideLayout: true,
  };
  const fieldConfig = fieldDefaults(unit, undefined, opts.steps);
  if (opts.mappings) fieldConfig.defaults = { ...fieldConfig.defaults, color: { mode: "thresholds" }, mappings: opts.mappings };
  return { w: opts.w ?? 4, h: opts.h ?? 4, panel: { type: "stat", title, description, datasource: DS, fieldConfig, options, targets } };
}

/** p50, p90 and p99 of a histogram, by `by` labels. */
function percentiles(bucket: string, selector: string, by: string[] = []): PromQuery[] {
  const labels = ["le", ...by].join(", ");
  const suffix = by.map((l) => ` {{${l}}}`).join("");
  return queries(
    [0.5, 0.9, 0.99].map((q) => [`histogram_quantile(${q}, sum by (${labels}) (rate(${bucket}{${selector}}[${RATE}])))`, `p${Math.round(q * 100)}${suffix}`]),
  );
}

/** Currencies Grafana has a unit for (currencyUSD...); it has none for, say, CAD or CNY. */
const GRAFANA_CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CHF", "SEK", "NOK", "DKK", "ISK", "CZK", "PLN", "RUB", "UAH", "BRL", "ZAR", "INR", "KRW"];

/** Grafana's unit for a currency it knows, else the code after the value. */
function currencyUnit(currency: string): string {
  return GRAFANA_CURRENCIES.includes(currency) ? `currency${currency}` : `suffix: ${currency}`;
}

function sections(currency: string): { title: string; cells: Cell[] }[] {
  const money = currencyUnit(currency);
  return [
    {
      title: "Overview",
      cells: [
        stat("Requests per second", "Requests through a provider (sluice_ai_requests), over the last 5 minutes.", "reqps", queries([[`sum(rate(sluice_ai_requests{${SPEND}}[5m]))`, "requests"]], true)),
        stat("Tokens per second", "Prompt and completion tokens (sluice_ai_prompt_tokens + sluice_ai_completion_tokens), over the last 5 minutes.", "short", queries([[`sum(rate(sluice_ai_prompt_tokens{${SPEND}}[5m])) + sum(rate(sluice_ai_completion_tokens{${SPEND}}[5m]))`, "tokens"]], true)),
        stat(`Cost in range (${currency})`, "What the dashboard's time range cost (sluice_ai_cost_micros is in micro-units of the currency).", money, queries([[`sum(increase(sluice_ai_cost_micros{${SPEND}}[$__range])) / 1e6`, "cost"]], true)),
        stat("Error ratio", "Answers of status 400 and above over requests, last 5 minutes. Requests the gateway refused before any provider (provider none) count as errors only.", "percentunit", queries([[`sum(rate(sluice_ai_errors{${SPEND}}[5m])) / sum(rate(sluice_ai_requests{${SPEND}}[5m]))`, "errors"]], true), { steps: [["orange", 0.01], ["red", 0.05]] }),
        stat("Time to first token p90", "90th percentile of streams' time to the provider's first byte (gen_ai.server.time_to_first_token, milliseconds), last 5 minutes.", "ms", queries([[`histogram_quantile(0.9, sum by (le) (rate(gen_ai_server_time_to_first_token_bucket{${GENAI}}[5m])))`, "p90"]], true)),
        stat("Instances down", "Provider instances out of their pool now (sluice_ai_instance_available is 0): failing, cooling down or without a token.", "none", queries([[`count(min by (instance) (sluice_ai_instance_available) == 0) or vector(0)`, "down"]], true), { steps: [["red", 1]] }),
      ],
    },
    {
      title: "Traffic",
      cells: [
        timeseries("Requests by provider and model", "sluice_ai_requests per second; model is the configured name the request was sent to, or other.", "reqps", queries([[`sum by (provider, model) (rate(sluice_ai_requests{${SPEND}}[${RATE}]))`, "{{provider}} {{model}}"]]), { stack: true }),
        timeseries("Requests by consumer and type", "sluice_ai_requests per second by consumer and request_type (ai_chat, ai_stream, ai_embeddings...).", "reqps", queries([[`sum by (consumer, request_type) (rate(sluice_ai_requests{${SPEND}}[${RATE}]))`, "{{consumer}} {{request_type}}"]]), { stack: true }),
      ],
    },
    {
      title: "Tokens and cost",
      cells: [
        timeseries("Tokens per second by model", "sluice_ai_prompt_tokens and sluice_ai_completion_tokens.", "short", queries([
          [`sum by (model) (rate(sluice_ai_prompt_tokens{${SPEND}}[${RATE}]))`, "{{model}} prompt"],
          [`sum by (model) (rate(sluice_ai_completion_tokens{${SPEND}}[${RATE}]))`, "{{model}} completion"],
        ]), { stack: true }),
        timeseries("Tokens per second by consumer", "sluice_ai_prompt_tokens and sluice_ai_completion_tokens by consumer.", "short", queries([
          [`sum by (consumer) (rate(sluice_ai_prompt_tokens{${SPEND}}[${RATE}]))`, "{{consumer}} prompt"],
          [`sum by (consumer) (rate(sluice_ai_completion_tokens{${SPEND}}[${RATE}]))`, "{{consumer}} completion"],
        ]), { stack: true }),
        timeseries(`Cost per hour by model (${currency})`, "sluice_ai_cost_micros as money per hour at the current rate.", money, queries([[`sum by (model) (rate(sluice_ai_cost_micros{${SPEND}}[${RATE}])) * 3600 / 1e6`, "{{model}}"]]), { stack: true }),
        timeseries(`Cost per hour by consumer (${currency})`, "sluice_ai_cost_micros by consumer.", money, queries([[`sum by (consumer) (rate(sluice_ai_cost_micros{${SPEND}}[${RATE}])) * 3600 / 1e6`, "{{consumer}}"]]), { stack: true }),
        timeseries("Tokens per request", "Median and 90th percentile of a request's tokens by gen_ai.token.type (gen_ai.client.token.usage).", "short", queries([0.5, 0.9].map((q) => [
          `histogram_quantile(${q}, sum by (le, gen_ai_token_type) (rate(gen_ai_client_token_usage_bucket{${GENAI}}[${RATE}])))`, `p${q * 100} {{gen_ai_token_type}}`,
        ])), { w: 24 }),
      ],
    },
    {
      title: "Latency (milliseconds)",
      cells: [
        timeseries("Time to first token", "Streams: request to the provider's first byte (gen_ai.server.time_to_first_token).", "ms", percentiles("gen_ai_server_time_to_first_token_bucket", GENAI)),
        timeseries("Time per output token", "Finished streams of two output tokens or more: (end - first byte) / (output tokens - 1) (gen_ai.server.time_per_output_token).", "ms", percentiles("gen_ai_server_time_per_output_token_bucket", GENAI)),
        timeseries("Request duration", "Request headers to the answer's end, failures included (gen_ai.server.request.duration).", "ms", percentiles("gen_ai_server_request_duration_bucket", GENAI)),
        timeseries("Time to first token p90 by provider and model", "gen_ai.server.time_to_first_token by the conventions' provider name and the model sent to.", "ms", queries([[
          `histogram_quantile(0.9, sum by (le, gen_ai_provider_name, gen_ai_response_model) (rate(gen_ai_server_time_to_first_token_bucket{${GENAI}}[${RATE}])))`,
          "{{gen_ai_provider_name}} {{gen_ai_response_model}}",
        ]])),
      ],
    },
    {
      title: "Errors",
      cells: [
        timeseries("Errors by status", "sluice_ai_errors per second by the status the client got; provider none: refused before any provider.", "reqps", queries([[`sum by (status) (rate(sluice_ai_errors{${SPEND}}[${RATE}]))`, "{{status}}"]]), { stack: true, w: 8 }),
        timeseries("Failed requests by error type", "Failed requests through a provider (gen_ai.server.request.duration with error.type, the HTTP status).", "reqps", queries([[
          `sum by (error_type, gen_ai_provider_name) (rate(gen_ai_server_request_duration_count{error_type!="", ${GENAI}}[${RATE}]))`, "{{error_type}} {{gen_ai_provider_name}}",
        ]]), { stack: true, w: 8 }),
        timeseries("Instance failures by cause", "sluice_ai_instance_failed: connect_failure, timeout, 429 or 5xx, counted against the instance (and what fallback acts on).", "reqps", queries([[`sum by (instance, cause) (rate(sluice_ai_instance_failed[${RATE}]))`, "{{instance}} {{cause}}"]]), { stack: true, w: 8 }),
      ],
    },
    {
      title: "Instances",
      cells: [
        stat("Instance availability", "sluice_ai_instance_available: 1 when the instance is in its pool, 0 when cooling down after failures or without an access token. The lowest over every Envoy.", "none",
          queries([["min by (instance) (sluice_ai_instance_available)", "{{instance}}"]], true),
          { w: 24, mappings: [{ type: "value", options: { "0": { text: "down", color: "red", index: 0 }, "1": { text: "up", color: "green", index: 1 } } }] }),
        timeseries("Picks by instance", "sluice_ai_instance_picked per second: how the balancer spreads requests.", "reqps", queries([[`sum by (instance) (rate(sluice_ai_instance_picked[${RATE}]))`, "{{instance}}"]]), { stack: true }),
        timeseries("Cooldowns by instance", "sluice_ai_instance_cooldowns: times an instance was taken out of its pool, per hour.", "short", queries([[`sum by (instance) (rate(sluice_ai_instance_cooldowns[${RATE}])) * 3600`, "{{instance}}"]])),
      ],
    },
    {
      title: "Cache (ai-cache)",
      cells: [
        timeseries("Cache lookups by outcome", "sluice_cache_requests: hit, miss or bypass, and the reason (exact, semantic, or why bypassed). Empty without ai-cache.", "reqps", queries([[`sum by (outcome, reason) (rate(sluice_cache_requests[${RATE}]))`, "{{outcome}} {{reason}}"]]), { stack: true }),
        stat("Hit ratio", "Hits over hits and misses in the dashboard's range.", "percentunit", queries([[
          `sum(increase(sluice_cache_requests{outcome="hit"}[$__range])) / sum(increase(sluice_cache_requests{outcome=~"hit|miss"}[$__range]))`, "hit ratio",
        ]], true), { h: 8 }),
        stat("Tokens saved", "Prompt and completion tokens that hits spared the providers in the range (sluice_cache_saved_tokens).", "short", queries([["sum(increase(sluice_cache_saved_tokens[$__range]))", "tokens"]], true), { h: 8 }),
        stat(`Cost saved (${currency})`, "What those tokens would have cost (sluice_cache_saved_cost, micro-units).", money, queries([["sum(increase(sluice_cache_saved_cost[$__range])) / 1e6", "cost"]], true), { h: 8 }),
      ],
    },
    {
      title: "Guardrails (ai-guard)",
      cells: [
        timeseries("Prompt verdicts", "sluice_guard_requests: allow, mask or block. Empty without ai-guard.", "reqps", queries([[`sum by (verdict) (rate(sluice_guard_requests[${RATE}]))`, "{{verdict}}"]]), { stack: true, w: 8 }),
        timeseries("Answer verdicts", "sluice_guard_answers: allow, mask or block of the providers' answers.", "reqps", queries([[`sum by (verdict) (rate(sluice_guard_answers[${RATE}]))`, "{{verdict}}"]]), { stack: true, w: 8 }),
        timeseries("Detections by detector and action", "sluice_guard_detections (prompts) and sluice_guard_answer_detections (answers).", "short", queries([
          [`sum by (detector, action) (rate(sluice_guard_detections[${RATE}]))`, "prompt {{detector}} {{action}}"],
          [`sum by (detector, action) (rate(sluice_guard_answer_detections[${RATE}]))`, "answer {{detector}} {{action}}"],
        ]), { w: 8 }),
      ],
    },
    {
      title: "Token limits (ai-ratelimit)",
      cells: [
        timeseries("Requests refused by rule", "sluice_ratelimit_rejected: 429s by the rule whose budget was spent.", "reqps", queries([[`sum by (rule) (rate(sluice_ratelimit_rejected[${RATE}]))`, "{{rule}}"]])),
        timeseries("Tokens admitted and charged by rule", "sluice_ratelimit_admitted_tokens (the estimate reserved at admission) and sluice_ratelimit_charged_tokens (the usage charged at the end).", "short", queries([
          [`sum by (rule) (rate(sluice_ratelimit_admitted_tokens[${RATE}]))`, "{{rule}} admitted"],
          [`sum by (rule) (rate(sluice_ratelimit_charged_tokens[${RATE}]))`, "{{rule}} charged"],
        ])),
      ],
    },
  ];
}

/** A query variable over Sluice's request counter: every value or several, "All" matching empty labels too. */
function labelVariable(name: string, label: string, selector: string): AsJson<VariableModel> {
  return {
    type: "query",
    name,
    label,
    datasource: DS,
    query: `label_values(${selector}, ${name})`,
    refresh: 2, // on time range change: new providers and models appear without a reload
    includeAll: true,
    multi: true,
    allValue: ".*",
    current: { text: "All", value: "$__all" },
    sort: 1,
  };
}

/** Rows and panels laid out on Grafana's 24-column grid, ids in order. */
function layout(all: { title: string; cells: Cell[] }[]): (PanelJson | AsJson<RowPanel>)[] {
  const out: (PanelJson | AsJson<RowPanel>)[] = [];
  let id = 1;
  let y = 0;
  for (const s of all) {
    out.push({ type: "row", id: id++, title: s.title, collapsed: false, panels: [], gridPos: { x: 0, y: y++, w: 24, h: 1 } });
    let x = 0;
    let rowHeight = 0;
    for (const c of s.cells) {
      if (x + c.w > 24) {
        y += rowHeight;
        x = 0;
        rowHeight = 0;
      }
      out.push({ ...c.panel, id: id++, gridPos: { x, y, w: c.w, h: c.h } });
      x += c.w;
      rowHeight = Math.max(rowHeight, c.h);
    }
    y += rowHeight;
  }
  return out;
}

/** The dashboard; `currency` is filters.ai_proxy.currency (USD by default). */
export function grafanaDashboard(currency = "USD"): DashboardJson {
  return {
    uid: DASHBOARD_UID,
    title: "Sluice AI gateway",
    description: "Requests, tokens, cost, latency, errors, instance health, cache and guardrails of a Sluice gateway (docs/dashboard.md in the Sluice repository).",
    tags: ["sluice", "envoy", "genai"],
    editable: true,
    graphTooltip: 1,
    refresh: "30s",
    schemaVersion: GRAFANA_SCHEMA_VERSION,
    time: { from: "now-1h", to: "now" },
    timezone: "browser",
    templating: {
      list: [
        {
          type: "datasource",
          name: "datasource",
          label: "Prometheus",
          query: "prometheus",
          current: { text: "Prometheus", value: PROMETHEUS_DATASOURCE_UID },
        },
        labelVariable("provider", "Provider", "sluice_ai_requests"),
        labelVariable("model", "Model", `sluice_ai_requests{provider=~"$provider"}`),
        labelVariable("consumer", "Consumer", "sluice_ai_requests"),
      ],
    },
    panels: layout(sections(currency)),
  };
}

/** The rendered file, by path relative to the output directory (cli/render/files.ts writes it with the others). */
export function grafanaFiles(currency = "USD"): Record<string, string> {
  return { [DASHBOARD_FILE]: JSON.stringify(grafanaDashboard(currency), null, 2) + "\n" };
}
