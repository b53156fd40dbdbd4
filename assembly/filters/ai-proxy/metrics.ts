// ai-proxy's metrics. Names carry their labels as `;key=value` pairs, e.g.
//   sluice.ai_requests;provider=openai;model=gpt-4o;consumer=team-a;request_type=ai_chat
// Envoy shows them as wasmcustom.<name>; the stats_tags that envoy.yaml carries turn each pair into
// a Prometheus label, so dashboards get real labels instead of names with values baked in.
//
// Every label value comes from the configuration or from a fixed set, never from a client or a
// provider: models are configured names or "other" (Settings.modelLabel), consumers are key-auth's
// configured names, statuses are three-digit HTTP codes. So the number of series, and this VM's
// map of metric ids, are bounded by the configuration whatever traffic arrives. The spend counters
// (requests, tokens, cost) also carry `team` and `key` (spendLabels): a virtual key's id and team come
// from key-auth's keys file, groups from identity, which refuses names outside a small set; both are
// checked again here (labelValue) and left out when empty, which Prometheus reads as the empty label.
import { defineMetric, incrementMetric, recordMetric, METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM, NO_METRIC } from "../../lib/sdk";
import { Recent } from "./recent";

/** Label values may not contain the separators. */
export function clean(v: string): string {
  if (v.length == 0) return "none";
  if (!v.includes(";") && !v.includes("=")) return v;
  return v.replaceAll(";", "_").replaceAll("=", "_");
}

/**
 * A team or key label value: 1 to 64 of the characters identity allows in a group name, without `=`
 * (a metric name's separator); anything else is "other", so a value no filter vouched for cannot
 * split a name or grow the series.
 */
export function labelValue(v: string): string {
  if (v.length == 0) return "";
  if (v.length > 64) return "other";
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    const ok = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 45 || c == 95 || c == 46 || c == 64 || c == 58 || c == 47 || c == 43;
    if (!ok) return "other";
  }
  return v;
}

/** `;team=<t>;key=<k>`, each pair only when its value is not empty. */
function spendLabels(team: string, key: string): string {
  const t = labelValue(team);
  const k = labelValue(key);
  return (t.length ? ";team=" + t : "") + (k.length ? ";key=" + k : "");
}

/** An HTTP status as a label: a provider may send any number, a label takes 100-599 only. */
function statusLabel(status: u32): string {
  return status >= 100 && status <= 599 ? status.toString() : "other";
}

/** The ids of one (provider, model, consumer, request type)'s metrics, so a request builds no names. */
class RequestIds {
  provider: string = "";
  model: string = "";
  consumer: string = "";
  requestType: string = "";
  team: string = "";
  key: string = "";
  requests: u32 = NO_METRIC;
  prompt: u32 = NO_METRIC;
  completion: u32 = NO_METRIC;
  cost: u32 = NO_METRIC;
  ttft: u32 = NO_METRIC;
  duration: u32 = NO_METRIC;
}

/** Label combinations remembered (recent.ts). */
export const RECENT: i32 = 32;

export class Metrics {
  // One id per full name, defined on first use (Envoy allows defining metrics at any time).
  private ids: Map<string, u32> = new Map();
  private recent: Recent<RequestIds> = new Recent<RequestIds>(RECENT);
  private picked: Map<string, u32> = new Map();

  /** The id of `name`, defined on first use. */
  id(type: i32, name: string): u32 {
    if (this.ids.has(name)) return this.ids.get(name);
    const id = defineMetric(type, name);
    this.ids.set(name, id);
    return id;
  }

  count(name: string, by: i64): void {
    // Envoy refuses a counter increment of zero or less.
    if (by <= 0) return;
    const id = this.id(METRIC_COUNTER, name);
    if (id != NO_METRIC) incrementMetric(id, by);
  }

  observe(name: string, value: u64): void {
    const id = this.id(METRIC_HISTOGRAM, name);
    if (id != NO_METRIC) recordMetric(id, value);
  }

  private requestIds(provider: string, model: string, consumer: string, requestType: string, team: string, key: string): RequestIds {
    const recent = this.recent.items;
    for (let i = 0; i < recent.length; i++) {
      const r = unchecked(recent[i]);
      if (r.model == model && r.consumer == consumer && r.provider == provider && r.requestType == requestType && r.team == team && r.key == key) return r;
    }
    const r = new RequestIds();
    r.provider = provider;
    r.model = model;
    r.consumer = consumer;
    r.requestType = requestType;
    r.team = team;
    r.key = key;
    const who = ";provider=" + clean(provider) + ";model=" + clean(model);
    const whoAndConsumer = who + ";consumer=" + clean(consumer) + spendLabels(team, key);
    r.requests = this.id(METRIC_COUNTER, "sluice.ai_requests" + whoAndConsumer + ";request_type=" + clean(requestType));
    r.prompt = this.id(METRIC_COUNTER, "sluice.ai_prompt_tokens" + whoAndConsumer);
    r.completion = this.id(METRIC_COUNTER, "sluice.ai_completion_tokens" + whoAndConsumer);
    r.cost = this.id(METRIC_COUNTER, "sluice.ai_cost_micros" + whoAndConsumer);
    r.ttft = this.id(METRIC_HISTOGRAM, "sluice.ai_ttft_ms" + who);
    r.duration = this.id(METRIC_HISTOGRAM, "sluice.ai_duration_ms" + who);
    return this.recent.add(r);
  }

  /**
   * One finished request through a provider. `model` is a configured name or "other"; `costMicros`
   * its cost in micro-units of the currency, -1 when the model has no price; `team` and `key` the
   * spend labels ("" for none).
   */
  request(provider: string, model: string, consumer: string, requestType: string, status: u32, prompt: i64, completion: i64, ttftMs: i64, durationMs: i64, costMicros: i64 = -1, team: string = "", key: string = ""): void {
    const r = this.requestIds(provider, model, consumer, requestType, team, key);
    incrementMetric(r.requests, 1);
    // Envoy refuses a counter increment of zero or less.
    if (prompt > 0) incrementMetric(r.prompt, prompt);
    if (completion > 0) incrementMetric(r.completion, completion);
    if (costMicros > 0) incrementMetric(r.cost, costMicros);
    if (status >= 400) {
      this.count("sluice.ai_errors;provider=" + clean(provider) + ";model=" + clean(model) + ";consumer=" + clean(consumer) + ";status=" + statusLabel(status), 1);
    }
    if (ttftMs >= 0) recordMetric(r.ttft, <u64>ttftMs);
    if (durationMs >= 0) recordMetric(r.duration, <u64>durationMs);
  }

  instancePicked(instance: string): void {
    const picked = this.picked;
    let id: u32;
    if (picked.has(instance)) id = picked.get(instance);
    else {
      id = this.id(METRIC_COUNTER, "sluice.ai_instance_picked;instance=" + clean(instance));
      picked.set(instance, id);
    }
    incrementMetric(id, 1);
  }

  instanceFailed(instance: string, cause: string): void {
    this.count("sluice.ai_instance_failed;instance=" + clean(instance) + ";cause=" + clean(cause), 1);
  }

  /** Health as this report left it: a gauge of availability, and a count of times taken out. */
  instanceHealth(instance: string, available: bool, wentDown: bool): void {
    const name = "sluice.ai_instance_available;instance=" + clean(instance);
    const id = this.id(METRIC_GAUGE, name);
    if (id != NO_METRIC) recordMetric(id, available ? 1 : 0);
    if (wentDown) this.count("sluice.ai_instance_cooldowns;instance=" + clean(instance), 1);
  }

  /** A request the gateway refused before any provider saw it. */
  rejected(consumer: string, status: u32): void {
    this.count("sluice.ai_errors;provider=none;model=none;consumer=" + clean(consumer) + ";status=" + statusLabel(status), 1);
  }
}
