// ai-proxy's metrics under OpenTelemetry's GenAI semantic conventions (docs/observability.md), beside
// Sluice's own (metrics.ts), so an OpenTelemetry dashboard or collector reads the gateway without a
// mapping of its own:
//   gen_ai.client.token.usage            tokens of one request, by gen_ai.token.type (input, output)
//   gen_ai.server.request.duration       request to last byte, with error.type on a failure
//   gen_ai.server.time_to_first_token    request to the provider's first byte
//   gen_ai.server.time_per_output_token  a stream's mean gap between output tokens after the first
// The attributes travel as `;key=value` pairs in the name, as Sluice's labels do; envoy.yaml's
// stats_tags make each a Prometheus label (dots become underscores there) and its
// histogram_bucket_settings give each histogram the conventions' bucket boundaries
// (cli/render/genai-stats.ts). Envoy's histograms take integers, so durations are recorded in
// milliseconds, the boundaries scaled to match.
//
// Every attribute value is bounded by the configuration: models are configured names or "other",
// providers a fixed name per provider type, operations and token types fixed words, error types
// three-digit statuses.
import { defineMetric, recordMetric, METRIC_HISTOGRAM, NO_METRIC } from "../../lib/sdk";
import { Metrics, RECENT, clean } from "./metrics";
import { Recent } from "./recent";

/** A request's gen_ai.operation.name: Gemini's generateContent, embeddings, or chat. */
export const OPERATION_CHAT = "chat";
export const OPERATION_GENERATE_CONTENT = "generate_content";
export const OPERATION_EMBEDDINGS = "embeddings";

/** The histograms of one (operation, provider, request model, response model), so a request builds no names. */
class Series {
  operation: string = "";
  provider: string = "";
  requestModel: string = "";
  responseModel: string = "";
  /** Their `;key=value` attributes, as the names carry them. */
  attrs: string = "";
  inputTokens: u32 = NO_METRIC;
  outputTokens: u32 = NO_METRIC;
  duration: u32 = NO_METRIC;
  ttft: u32 = NO_METRIC;
  tpot: u32 = NO_METRIC;
}

export class GenAiMetrics {
  private recent: Recent<Series> = new Recent<Series>(RECENT);

  /** `ids` defines the failed requests' durations, one series per error.type, by name. */
  constructor(private ids: Metrics) {}

  private series(operation: string, provider: string, requestModel: string, responseModel: string): Series {
    const recent = this.recent.items;
    for (let i = 0; i < recent.length; i++) {
      const s = unchecked(recent[i]);
      if (s.requestModel == requestModel && s.responseModel == responseModel && s.provider == provider && s.operation == operation) return s;
    }
    const s = new Series();
    s.operation = operation;
    s.provider = provider;
    s.requestModel = requestModel;
    s.responseModel = responseModel;
    const attrs = attributes(operation, provider, requestModel, responseModel);
    s.attrs = attrs;
    s.inputTokens = defineMetric(METRIC_HISTOGRAM, "gen_ai.client.token.usage" + attrs + ";gen_ai.token.type=input");
    s.outputTokens = defineMetric(METRIC_HISTOGRAM, "gen_ai.client.token.usage" + attrs + ";gen_ai.token.type=output");
    s.duration = defineMetric(METRIC_HISTOGRAM, "gen_ai.server.request.duration" + attrs);
    s.ttft = defineMetric(METRIC_HISTOGRAM, "gen_ai.server.time_to_first_token" + attrs);
    s.tpot = defineMetric(METRIC_HISTOGRAM, "gen_ai.server.time_per_output_token" + attrs);
    return this.recent.add(s);
  }

  /**
   * One finished request through a provider. Token counts below zero are unknown; `input` and
   * `output` of zero are recorded only for a success (a refusal generated nothing and is not a
   * sample of how many tokens requests take), and embeddings have no output. `ttftMs` is -1 when no
   * byte came; `tpotMs` -1 when the request was not a stream that produced two tokens or more.
   */
  request(operation: string, provider: string, requestModel: string, responseModel: string, status: u32, input: i64, output: i64, durationMs: i64, ttftMs: i64, tpotMs: i64): void {
    const s = this.series(operation, provider, requestModel, responseModel);
    const ok = status < 400;
    if (input > 0 || (ok && input == 0)) record(s.inputTokens, input);
    if (operation != OPERATION_EMBEDDINGS && (output > 0 || (ok && output == 0))) record(s.outputTokens, output);
    if (ok) record(s.duration, durationMs);
    else record(this.ids.id(METRIC_HISTOGRAM, "gen_ai.server.request.duration" + s.attrs + ";error.type=" + errorType(status)), durationMs);
    if (ok) record(s.ttft, ttftMs);
    record(s.tpot, tpotMs);
  }
}

function record(id: u32, value: i64): void {
  if (id != NO_METRIC && value >= 0) recordMetric(id, <u64>value);
}

function attributes(operation: string, provider: string, requestModel: string, responseModel: string): string {
  return ";gen_ai.operation.name=" + operation + ";gen_ai.provider.name=" + provider + ";gen_ai.request.model=" + clean(requestModel) + ";gen_ai.response.model=" + clean(responseModel);
}

/** The conventions' error.type for an HTTP failure: its status code, or _OTHER outside 400-599. */
function errorType(status: u32): string {
  return status >= 400 && status <= 599 ? status.toString() : "_OTHER";
}
