// Counters in Envoy's shared data, seen by every worker's VM: read, change, compare-and-swap,
// and start over on a CAS mismatch, so concurrent workers never lose or double-count an update.
//
// Keys: sluice.ai-ratelimit.<rule>.<key>, the value a ring of buckets (window.ts). Per rule, at
// most max_keys distinct keys are created (counted in sluice.ai-ratelimit.<rule>.~keys); later ones
// share sluice.ai-ratelimit.<rule>.~other, so hostile header or model values cannot grow shared
// data without bound. Shared data is never deleted in Envoy, and never needs to be: a key's ring
// has a fixed size.
//
// The one non-atomic step: proxy_set_shared_data cannot create a key conditionally (the CAS is
// ignored for a key that does not exist). A new key is therefore created empty (two workers
// creating it at once write the same empty value) and then updated with CAS like any other.
import { getSharedData, setSharedData, incrementMetric, logWarn, logError, WasmResultValues } from "../../lib/sdk";
import { Rule, Settings } from "./config";
import { Ring } from "./window";

export const MAX_ATTEMPTS: i32 = 64;

export class Outcome {
  ok: bool = false;
  /** The shared-data key used (the overflow key when the rule's max_keys was reached). */
  key: string = "";
  /** Bucket the reservation went to; -1 when none was made. */
  bucket: i64 = -1;
  /** Usage after the reservation (admitted) or before it (rejected), in the rule's unit. */
  used: f64 = 0;
  /** ns until the request would fit (-1: never, it is larger than the limit). */
  wait: i64 = 0;
  /** ns until the usage is back to zero. */
  reset: i64 = 0;
}

const warnedOverflow = new Set<string>();

function encodeCount(n: i64): ArrayBuffer {
  const b = new ArrayBuffer(8);
  store<i64>(changetype<usize>(b), n);
  return b;
}

function decodeCount(b: ArrayBuffer | null): i64 {
  if (b === null || (b as ArrayBuffer).byteLength < 8) return 0;
  return load<i64>(changetype<usize>(b));
}

/**
 * Creates the counter `key` of a rule (empty), or returns the overflow key when the rule already
 * has max_keys keys. Called when `key` was found missing.
 */
function create(s: Settings, rule: Rule, key: string): string {
  const other = rule.prefix + "~other";
  if (key != other) {
    const dir = rule.prefix + "~keys";
    let full = false;
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      const d = getSharedData(dir);
      const n = decodeCount(d.value);
      if (n >= rule.maxKeys) {
        full = true;
        break;
      }
      const r = setSharedData(dir, encodeCount(n + 1), d.value === null ? 0 : d.cas);
      if (r == WasmResultValues.Ok) break;
      if (r != WasmResultValues.CasMismatch) break;
      incrementMetric(s.casRetries, 1);
    }
    if (full) {
      if (!warnedOverflow.has(rule.name)) {
        warnedOverflow.add(rule.name);
        logWarn("ai-ratelimit: rule '" + rule.name + "' reached max_keys (" + rule.maxKeys.toString() + "); new keys share one counter");
      }
      key = other;
    }
  }
  // Only if still missing: never overwrite what another worker created meanwhile.
  if (getSharedData(key).value === null) setSharedData(key, new Ring(rule.window.slots).encode(), 0);
  return key;
}

/** Reserves `cost` on the counter if it fits under the limit. */
export function reserve(s: Settings, rule: Rule, key: string, cost: i64, now: i64): Outcome {
  const w = rule.window;
  const out = new Outcome();
  out.key = key;
  for (let i = 0; i < MAX_ATTEMPTS; i++) {
    const sv = getSharedData(out.key);
    if (sv.value === null) {
      out.key = create(s, rule, out.key);
      continue;
    }
    const ring = Ring.decode(sv.value, w.slots);
    const used = w.used(ring, now);
    const usedUp = <i64>Math.ceil(used);
    if (usedUp + cost > rule.limit) {
      out.ok = false;
      out.used = used;
      out.wait = w.waitFor(ring, now, <f64>(rule.limit - cost));
      out.reset = w.resetIn(ring, now);
      return out;
    }
    const b = w.bucket(now);
    ring.add(b, cost);
    const r = setSharedData(out.key, ring.encode(), sv.cas);
    if (r == WasmResultValues.Ok) {
      out.ok = true;
      out.bucket = b;
      out.used = used + <f64>cost;
      out.reset = w.resetIn(ring, now);
      return out;
    }
    if (r != WasmResultValues.CasMismatch) break;
    incrementMetric(s.casRetries, 1);
  }
  // The shared store refused, or contention beyond reason: admit without a reservation (fail open,
  // as Envoy's rate limit filter does by default) rather than reject for the gateway's own trouble.
  logWarn("ai-ratelimit: could not update counter " + out.key + "; admitted without a reservation");
  out.ok = true;
  out.bucket = -1;
  out.used = 0;
  out.reset = 0;
  return out;
}

/** What reserve would decide, without changing anything. */
export function peek(rule: Rule, key: string, cost: i64, now: i64): Outcome {
  const w = rule.window;
  const out = new Outcome();
  out.key = key;
  const ring = Ring.decode(getSharedData(key).value, w.slots);
  const used = w.used(ring, now);
  out.used = used;
  out.ok = <i64>Math.ceil(used) + cost <= rule.limit;
  out.wait = out.ok ? 0 : w.waitFor(ring, now, <f64>(rule.limit - cost));
  out.reset = w.resetIn(ring, now);
  return out;
}

/**
 * Replaces a reservation made in bucket b with the actual cost. While b still counts toward the
 * window, b itself is corrected (exact accounting). Once b has left the window, its reservation
 * left with it; whatever the request used beyond its reservation is charged to the current bucket.
 */
export function settle(s: Settings, rule: Rule, key: string, b: i64, reserved: i64, actual: i64, now: i64): void {
  if (b < 0) {
    charge(s, rule, key, actual, now);
    return;
  }
  const w = rule.window;
  const delta = actual - reserved;
  for (let i = 0; i < MAX_ATTEMPTS; i++) {
    const sv = getSharedData(key);
    if (sv.value === null) {
      // Shared data is never deleted; only a store that lost it could get here.
      charge(s, rule, key, actual, now);
      return;
    }
    const ring = Ring.decode(sv.value, w.slots);
    if (ring.has(b) && w.counts(b, now)) {
      if (delta == 0) return;
      ring.add(b, delta);
    } else {
      if (delta <= 0) return;
      ring.add(w.bucket(now), delta);
    }
    const r = setSharedData(key, ring.encode(), sv.cas);
    if (r == WasmResultValues.Ok) return;
    if (r != WasmResultValues.CasMismatch) break;
    incrementMetric(s.casRetries, 1);
  }
  logError("ai-ratelimit: could not settle counter " + key + " (" + delta.toString() + " tokens lost)");
}

/** Adds `amount` to the current bucket (charges without a reservation: instance rules). */
export function charge(s: Settings, rule: Rule, key: string, amount: i64, now: i64): void {
  if (amount <= 0) return;
  const w = rule.window;
  for (let i = 0; i < MAX_ATTEMPTS; i++) {
    const sv = getSharedData(key);
    if (sv.value === null) {
      key = create(s, rule, key);
      continue;
    }
    const ring = Ring.decode(sv.value, w.slots);
    ring.add(w.bucket(now), amount);
    const r = setSharedData(key, ring.encode(), sv.cas);
    if (r == WasmResultValues.Ok) return;
    if (r != WasmResultValues.CasMismatch) break;
    incrementMetric(s.casRetries, 1);
  }
  logError("ai-ratelimit: could not charge counter " + key + " (" + amount.toString() + " tokens lost)");
}
