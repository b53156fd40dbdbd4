// What an upstream answer says about its instance (passive health): the failure's cause, the
// provider's rate-limit and quota headers, the health report every worker sees, and Envoy's own
// transport failures mapped to the statuses a client gets (502, 504).
import { RESPONSE_HEADERS, getHeader, getHeaderPairs, replaceHeader, getProperty } from "../../lib/sdk";
import { Instance, Provider } from "../../providers/types";
import { Settings } from "./config";
import { keyAnswered } from "./key-pool";
import {
  report, wentDown, parseReset, OUTCOME_SUCCESS, OUTCOME_FAILURE, OUTCOME_RATE_LIMITED, OUTCOME_EXHAUSTED,
} from "./health";
import { Exchange, nowMs, proxyMetrics } from "./state";

/** Passive and active health reports, with the per-instance metrics (availability, cooldowns). */
export function healthReport(s: Settings, instance: string, outcome: i32, now: i64, until: i64): void {
  const h = report(s.health, instance, outcome, now, until);
  proxyMetrics.instanceHealth(instance, h.available(now), wentDown);
}

/**
 * Why the answer counts as a failure of the instance: connect_failure and timeout (Envoy's router
 * answered for it, see response.code_details), 429, 5xx, else the status ("" for 2xx).
 */
export function failureCause(x: Exchange): string {
  if (x.status >= 200 && x.status < 300) return "";
  const details = getProperty(["response", "code_details"]);
  if (details !== null) {
    const d = String.UTF8.decode(details as ArrayBuffer);
    if (d.startsWith("upstream_reset_before_response_started") || d == "no_healthy_upstream" || d == "cluster_not_found") return "connect_failure";
    if (d == "upstream_response_timeout" || d.startsWith("upstream_per_try_timeout")) return "timeout";
  }
  if (x.status == 429) return "429";
  if (x.status >= 500) return "5xx";
  return x.status.toString();
}

/** Passive health: what this answer says about the instance, for every worker to see. */
export function reportOutcome(x: Exchange, cause: string, headersMap: i32): void {
  const s = x.settings;
  const inst = x.inst as Instance;
  const now = nowMs();
  const metrics = proxyMetrics;
  // A key of a pool that is refused or spent is set aside; the instance stays in while another key is.
  if (x.keyIndex >= 0 && (x.status == 401 || x.status == 403 || x.status == 429)) {
    if (keyAnswered(inst, x.keyIndex, x.status, x.status == 429 ? retryAfterUntil(headersMap, now) : 0, now)) return;
  }
  if (cause.length == 0) {
    const until = exhaustedUntil(headersMap, now);
    if (until > now) healthReport(s, inst.name, OUTCOME_EXHAUSTED, now, until);
    else if (x.health.failures > 0 || x.health.backoff > 0) healthReport(s, inst.name, OUTCOME_SUCCESS, now, 0);
    return;
  }
  if (cause == "429") {
    metrics.instanceFailed(inst.name, cause);
    healthReport(s, inst.name, OUTCOME_RATE_LIMITED, now, retryAfterUntil(headersMap, now));
  } else if (cause == "connect_failure" || cause == "timeout" || cause == "5xx") {
    metrics.instanceFailed(inst.name, cause);
    healthReport(s, inst.name, OUTCOME_FAILURE, now, 0);
  }
}

/**
 * Envoy's router answers for the provider when it cannot reach it (503 "upstream connect error")
 * or gives up waiting (504). Clients get 502 and 504 with a JSON error.
 */
export function mapTransportError(x: Exchange, cause: string): void {
  const status = transportStatus(cause);
  if (status == 0) return;
  x.status = status;
  replaceHeader(RESPONSE_HEADERS, ":status", status.toString());
}

/** A rate-limit reset in the headers (429 answers): Retry-After, else the provider's reset headers. */
function retryAfterUntil(map: i32, now: i64): i64 {
  const ra = getHeader(map, "retry-after");
  if (ra !== null) {
    const t = parseReset(ra as string, now);
    if (t > now) return t;
  }
  return exhaustedUntil(map, now, true);
}

/**
 * When a provider says a quota is spent (x-ratelimit-remaining-* or anthropic-ratelimit-*-remaining
 * at 0), the latest matching reset time; 0 when nothing is exhausted. `any` takes any reset header
 * (for a 429, where the remaining counts may be absent).
 */
function exhaustedUntil(map: i32, now: i64, any: bool = false): i64 {
  const h = getHeaderPairs(map);
  let until: i64 = 0;
  for (let i = 0; i < h.count; i++) {
    if (!h.keyHas(i, "-remaining", true) && !h.keyHas(i, "x-ratelimit-remaining-", false)) continue;
    const k = h.key(i);
    if (!any && h.value(i).trim() != "0") continue;
    // x-ratelimit-remaining-tokens -> x-ratelimit-reset-tokens; anthropic-ratelimit-tokens-remaining -> ...-reset
    const resetName = k.startsWith("x-ratelimit-remaining-") ? "x-ratelimit-reset-" + k.substring(22) : k.substring(0, k.length - 9) + "reset";
    for (let j = 0; j < h.count; j++) {
      if (h.keyIs(j, resetName)) {
        const t = parseReset(h.value(j), now);
        if (t > until) until = t;
      }
    }
  }
  return until;
}

/** A content-type that says the body is an SSE stream. */
export function isEventStream(contentType: string | null, provider: Provider | null = null): bool {
  if (contentType === null) return false;
  const ct = (contentType as string).toLowerCase();
  // Bedrock streams AWS's binary event stream.
  if (provider !== null && provider.eventStream) return ct.includes("application/vnd.amazon.eventstream");
  return ct.includes("text/event-stream");
}

/** Envoy's router answered for an instance it could not reach (502) or that was too slow (504). */
export function transportStatus(cause: string): u32 {
  if (cause == "connect_failure") return 502;
  if (cause == "timeout") return 504;
  return 0;
}
