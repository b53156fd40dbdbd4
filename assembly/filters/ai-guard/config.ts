// ai-guard configuration: the default policy, overrides per consumer, route rule and pool, and the
// bounds of one request's scan. Every mistake is reported with the path of the field at fault
// (ConfigReader); docs/filters/ai-guard.md has the format.
import { JsonValue } from "../../lib/json";
import { ConfigReader } from "../../lib/config";
import { defineMetric, METRIC_COUNTER, NO_METRIC } from "../../lib/sdk";
import { Policy, readPolicy } from "./policy";
import { answerWindow } from "./answer-window";
import { Moderation, readModeration } from "./moderation-config";

const TOP_FIELDS = ["detectors", "custom", "keywords", "injection_threshold", "consumers", "routes", "pools", "max_body_bytes", "max_json_values", "max_regex_steps", "response", "moderation"];
const RESPONSE_FIELDS = ["hold_back_bytes", "max_body_bytes"];

export class Settings {
  policy: Policy = new Policy();
  consumers: Map<string, Policy> = new Map();
  routes: Map<string, Policy> = new Map();
  pools: Map<string, Policy> = new Map();
  /** Largest body scanned; a larger one is refused (413): a guard that cannot read a body must not pass it. */
  maxBodyBytes: i64 = 10485760;
  /** Most JSON values a body may hold (ai-proxy's default): past it the body is refused (400). */
  maxJsonValues: i32 = 500000;
  /** Regular-expression steps one request may spend on the custom patterns. */
  regexBudget: i64 = 10000000;
  /** Answers: the most text units held back per output text, and the largest whole answer read (else 502). */
  holdBack: i32 = 256;
  answerMaxBytes: i64 = 10485760;
  /** The external moderation service (moderation-config.ts), or null. */
  moderation: Moderation | null = null;
  usesConsumer: bool = false;
  usesRoute: bool = false;
  // Counters.
  allowed: u32 = NO_METRIC;
  masked: u32 = NO_METRIC;
  blocked: u32 = NO_METRIC;
  unreadable: u32 = NO_METRIC;
  regexBudgetExceeded: u32 = NO_METRIC;
  answersAllowed: u32 = NO_METRIC;
  answersMasked: u32 = NO_METRIC;
  answersBlocked: u32 = NO_METRIC;
}

export function readSettings(buf: ArrayBuffer): Settings | null {
  const r = new ConfigReader("ai-guard");
  const cfg = r.parse(buf);
  if (cfg === null) {
    r.report();
    return null;
  }
  const c = cfg as JsonValue;
  r.onlyKnown(c, "ai-guard", TOP_FIELDS);
  const s = new Settings();
  const top = JsonValue.object();
  for (let i = 0; i < c.length; i++) {
    const k = c.keyAt(i);
    if (k == "detectors" || k == "custom" || k == "keywords" || k == "injection_threshold") top.set(k, c.at(i));
  }
  s.policy = readPolicy(r, top, "ai-guard");
  readOverrides(r, c, "consumers", s.consumers);
  readOverrides(r, c, "routes", s.routes);
  readOverrides(r, c, "pools", s.pools);
  const mod = c.get("moderation");
  if (mod !== null) s.moderation = readModeration(r, mod, "ai-guard.moderation");
  settleModeration(r, s);
  s.usesConsumer = s.consumers.size > 0;
  s.usesRoute = s.routes.size > 0 || s.pools.size > 0;
  s.maxBodyBytes = r.int(c, "max_body_bytes", "ai-guard", s.maxBodyBytes, 1024, 1073741824);
  s.maxJsonValues = <i32>r.int(c, "max_json_values", "ai-guard", s.maxJsonValues, 1000, 100000000);
  s.regexBudget = r.int(c, "max_regex_steps", "ai-guard", s.regexBudget, 1000, 1000000000000);
  const resp = c.get("response");
  if (resp !== null) {
    if (!resp.isObject()) r.fail("ai-guard.response", "must be an object with hold_back_bytes and max_body_bytes");
    else {
      r.onlyKnown(resp, "ai-guard.response", RESPONSE_FIELDS);
      s.holdBack = <i32>r.int(resp, "hold_back_bytes", "ai-guard.response", s.holdBack, 64, 65536);
      s.answerMaxBytes = r.int(resp, "max_body_bytes", "ai-guard.response", s.answerMaxBytes, 1024, 1073741824);
    }
  }
  if (!r.report()) return null;
  setWindow(s.policy, s.holdBack);
  const groups = [s.consumers, s.routes, s.pools];
  for (let g = 0; g < groups.length; g++) {
    const ps = groups[g].values();
    for (let i = 0; i < ps.length; i++) setWindow(ps[i], s.holdBack);
  }
  s.allowed = defineMetric(METRIC_COUNTER, "sluice.guard_requests;verdict=allow");
  s.masked = defineMetric(METRIC_COUNTER, "sluice.guard_requests;verdict=mask");
  s.blocked = defineMetric(METRIC_COUNTER, "sluice.guard_requests;verdict=block");
  s.unreadable = defineMetric(METRIC_COUNTER, "sluice.guard_unreadable");
  s.regexBudgetExceeded = defineMetric(METRIC_COUNTER, "sluice.guard_regex_budget_exceeded");
  s.answersAllowed = defineMetric(METRIC_COUNTER, "sluice.guard_answers;verdict=allow");
  s.answersMasked = defineMetric(METRIC_COUNTER, "sluice.guard_answers;verdict=mask");
  s.answersBlocked = defineMetric(METRIC_COUNTER, "sluice.guard_answers;verdict=block");
  return s;
}

function readOverrides(r: ConfigReader, c: JsonValue, key: string, into: Map<string, Policy>): void {
  const v = c.get(key);
  if (v === null) return;
  if (!v.isObject()) {
    r.fail("ai-guard." + key, "must map names to policies");
    return;
  }
  for (let i = 0, n = v.length; i < n; i++) {
    const name = v.keyAt(i);
    into.set(name, readPolicy(r, v.at(i), "ai-guard." + key + "." + name));
  }
}

function setWindow(p: Policy, cap: i32): void {
  p.answerWindow = answerWindow(p, cap);
}

/** Which policies moderate: the default one when the section exists, an override unless it says moderation: false. */
function settleModeration(r: ConfigReader, s: Settings): void {
  const on = s.moderation !== null;
  s.policy.moderate = on;
  const groups = ["consumers", "routes", "pools"];
  const maps = [s.consumers, s.routes, s.pools];
  for (let g = 0; g < maps.length; g++) {
    const names = maps[g].keys();
    for (let i = 0; i < names.length; i++) {
      const p = maps[g].get(names[i]);
      if (p.moderation == 1 && !on) r.fail("ai-guard." + groups[g] + "." + names[i] + ".moderation", "needs the top-level moderation section (the service to call)");
      p.moderate = on && p.moderation != 0;
    }
  }
}
