// The usage record, written once per request whatever happened (the provider's numbers, else an
// estimate of what is missing), with the request's metrics and the instance's latency; and the
// charge for an answer that was produced but not read (too large, unreadable, a hang-up).
import { nowNanos, getFilterState, setFilterState, setFilterStateInt } from "../../lib/sdk";
import { JsonValue } from "../../lib/json";
import * as keys from "../../lib/keys";
import { writeUsageRecord } from "../../lib/usage";
import { Instance, Provider, StreamDecoder, StreamSink, Usage } from "../../providers/types";
import { estimatedUsage } from "./estimate";
import { Price, costMicros } from "../../lib/prices";
import { recordLatency } from "./balancer";
import { releaseInflight } from "./selection";
import { Exchange, PASS, EMBEDDINGS, COUNT_TOKENS, NO_USAGE, proxyMetrics, genAiMetrics } from "./state";
import { OPERATION_CHAT, OPERATION_EMBEDDINGS, OPERATION_GENERATE_CONTENT } from "./genai-metrics";
import { CLIENT_GEMINI } from "./client";

/**
 * Writes the record once: the provider's numbers when the answer completed with them, else an
 * estimate of whatever is missing.
 */
export function record(x: Exchange, u: Usage, complete: bool): Usage {
  if (x.usageWritten) return x.recorded;
  x.usageWritten = true;
  releaseInflight(x);
  if (complete && x.settings.trackLatency) {
    const ttft: f64 = x.firstByteNs > 0 ? <f64>(x.firstByteNs - x.startNs) / 1e6 : -1;
    recordLatency((x.inst as Instance).name, ttft, <f64>(nowNanos() - x.startNs) / 1e6);
  }
  // Embeddings have no completion; a chat answer without a completion count is estimated.
  if (complete && u.prompt >= 0 && (u.completion >= 0 || x.kind == EMBEDDINGS)) {
    u.settle();
    publish(x, u, "provider");
    x.recorded = u;
    return u;
  }
  // Estimate only what the provider did not report (Anthropic and Gemini report the prompt at
  // the start of a stream; a cut stream never brings the completion count). A completion count
  // of a finished answer is taken as it is; one from a stream that stopped early is at least
  // what the text seen makes.
  const e = estimatedUsage(u, x.promptEstimate, complete && u.completion >= 0 ? 0 : x.responseChars);
  publish(x, e, "estimate");
  x.recorded = e;
  return e;
}

/** The usage record to filter state (with its cost, when the model has a price), and the request's metrics. */
export function publish(x: Exchange, u: Usage, source: string): void {
  writeUsageRecord(u.prompt, u.completion, u.total, u.cached, u.reasoning, source);
  // A request that generated nothing (refused, failed, a token count) costs nothing, fee included.
  const price = x.settings.priceOf(x.instIndex, x.upstreamModel);
  const cost: i64 = price === null ? -1 : u.prompt <= 0 && u.completion <= 0 ? 0 : costMicros(u, price as Price);
  if (cost >= 0) setFilterStateInt(keys.COST, cost);
  const now = nowNanos();
  const ttft: i64 = x.firstByteNs > 0 ? <i64>((x.firstByteNs - x.startNs) / 1000000) : -1;
  const durationMs = <i64>((now - x.startNs) / 1000000);
  const consumer = getFilterState(keys.CONSUMER);
  // The model label is a configured name or "other": clients choose model names (wildcard
  // instances pass them on), and series must not grow with them.
  proxyMetrics.request(
    (x.provider as Provider).name, x.settings.modelLabel(x.upstreamModel), consumer !== null ? consumer as string : "anonymous",
    x.requestType(), x.status, u.prompt, u.completion, ttft, durationMs, cost, teamOf(x), x.virtualKey(),
  );
  if (x.kind != COUNT_TOKENS) publishGenAi(x, u, source == "provider", now, ttft, durationMs);
}

/**
 * The request under OpenTelemetry's GenAI conventions (genai-metrics.ts). Counting tokens is not an
 * operation the conventions name, so a token count has none. Time to first token is a stream's (a
 * whole answer's first byte is its last); time per output token a finished stream's: the time
 * from the first byte to the end over the gaps between its output tokens.
 */
function publishGenAi(x: Exchange, u: Usage, complete: bool, now: u64, ttft: i64, durationMs: i64): void {
  const operation = x.kind == EMBEDDINGS ? OPERATION_EMBEDDINGS : x.client == CLIENT_GEMINI ? OPERATION_GENERATE_CONTENT : OPERATION_CHAT;
  let tpot: i64 = -1;
  if (complete && x.stream && x.status < 400 && x.firstByteNs > 0 && u.completion >= 2) {
    const gaps = <u64>(u.completion - 1);
    tpot = <i64>((now - x.firstByteNs + gaps * 500000) / (gaps * 1000000));
  }
  const provider = (x.provider as Provider).genAiName;
  // For the OpenTelemetry access log and the trace span (cli/render/opentelemetry.ts).
  setFilterState(keys.GEN_AI_OPERATION, operation);
  setFilterState(keys.GEN_AI_PROVIDER, provider);
  const s = x.settings;
  genAiMetrics.request(
    operation, provider, s.modelLabel(x.requestModel), s.modelLabel(x.upstreamModel),
    x.status, u.prompt, u.completion, durationMs, x.stream ? ttft : -1, tpot,
  );
}

/**
 * The team a request's spend is counted to: the virtual key's team (key-auth writes sluice.team only
 * with a virtual key), else the consumer's first group (identity lists them as the identity provider
 * gave them), else none. One label, so a consumer in several groups is counted to the first only; a
 * money budget keyed by group charges each.
 */
function teamOf(x: Exchange): string {
  if (x.virtualKey().length) {
    const team = getFilterState(keys.TEAM);
    if (team !== null && (team as string).length > 0) return team as string;
  }
  const groups = getFilterState(keys.GROUPS);
  if (groups === null) return "";
  const g = groups as string;
  const comma = g.indexOf(",");
  return comma < 0 ? g : g.substring(0, comma);
}

/** The provider refused or failed: it generated nothing, so nothing is charged. */
export function recordNothing(x: Exchange): void {
  if (x.usageWritten) return;
  x.usageWritten = true;
  releaseInflight(x);
  publish(x, NO_USAGE, "provider");
  x.recorded = NO_USAGE;
}

export function finishRecord(x: Exchange): void {
  releaseInflight(x);
  // A token count generates nothing, whether or not its answer came.
  if (x.kind == COUNT_TOKENS) {
    if (!x.replied && x.provider !== null) recordNothing(x);
    return;
  }
  // The client hung up (or the upstream reset) before the answer finished: charge what was seen.
  if (x.kind != PASS && !x.replied && x.provider !== null && !x.usageWritten) {
    if (x.sink !== null) {
      x.responseChars = (x.sink as StreamSink).generatedChars;
      record(x, (x.decoder as StreamDecoder).usage, false);
      return;
    }
    record(x, new Usage(), false);
  }
}

/**
 * The usage record for an answer the provider produced but the gateway did not read (too large,
 * or not in a shape it understands): the prompt estimate, and what `bytes` of answer would hold,
 * never more than the request let the model write (embeddings write nothing).
 */
export function chargeUnread(x: Exchange, bytes: i64): void {
  // The answer is taken to hold `bytes` characters of text, or as many as the limit allows
  // (estimateTokens counts four characters a token).
  x.responseChars = x.kind == EMBEDDINGS ? 0 : withinOutputLimit(x, bytes, 0);
  record(x, new Usage(), false);
}

/**
 * Characters of answer to charge for `chars` the gateway did not read, at most what the request's
 * output limit lets the model write (estimateTokens counts four characters a token), and never
 * less than `floor`, the characters the client already got.
 */
export function withinOutputLimit(x: Exchange, chars: i64, floor: i64): i64 {
  const limit = maxTokensAsked(x);
  if (limit > 0 && chars > limit * 4) chars = limit * 4;
  return chars > floor ? chars : floor;
}

/** The output limit the request carried (the instance's forced one first); 0 when none. */
export function maxTokensAsked(x: Exchange): i64 {
  const inst = x.inst as Instance;
  if (inst.maxTokens >= 0) return inst.maxTokens;
  const req = x.clientReq;
  if (req === null) return 0;
  const names = ["max_completion_tokens", "max_tokens", "max_output_tokens"];
  for (let i = 0; i < names.length; i++) {
    const v = (req as JsonValue).get(names[i]);
    if (v !== null && v.isInteger() && v.n > 0) return <i64>v.n;
  }
  return 0;
}
