// Several keys for one instance (`api_keys` / `api_keys_env`): requests take them in turn, and a key
// the provider refuses (401, 403) or says is spent (429, with its reset) is set aside until then,
// for every worker (shared data `sluice.ai-proxy.key.<instance>.<id>`: the time it is back), while
// the others go on. The instance itself is marked rate-limited only when every key is set aside.
// Keys are named in metrics and logs by a stable short id (the first 8 hex digits of the key's
// SHA-256), never by themselves.
import { getSharedData, setSharedData, logWarn, namedMetric, incrementMetric, METRIC_COUNTER } from "../../lib/sdk";
import { sha256, toHex } from "../../lib/sha256";
import { Instance, Upstream } from "../../providers/types";

/** How long a key the provider refused (401, 403) is set aside: a revoked key does not come back soon. */
const REFUSED_MS: i64 = 300000;
/** How long a spent key (429) is set aside when the provider gives no reset time. */
const SPENT_MS: i64 = 60000;

/** A key's short id: the first 8 hex digits of its SHA-256. */
export function keyId(key: string): string {
  const b = String.UTF8.encode(key);
  return toHex(sha256(changetype<usize>(b), <usize>b.byteLength)).substring(0, 8);
}

// The next key each instance's requests take, per VM (an even spread, not a shared counter).
const next = new Map<string, i32>();

function asideKey(inst: Instance, k: i32): string {
  return "sluice.ai-proxy.key." + inst.name + "." + inst.keyIds[k];
}

function asideUntil(inst: Instance, k: i32): i64 {
  const v = getSharedData(asideKey(inst, k)).value;
  return v !== null && v.byteLength > 0 ? I64.parseInt(String.UTF8.decode(v)) : 0;
}

/**
 * The key this request takes: the next one in turn that is not set aside (when all are, the one
 * back soonest: the provider decides). -1 for an instance with one key.
 */
export function pickKey(inst: Instance, nowMs: i64): i32 {
  const n = inst.keys.length;
  if (n < 2) return -1;
  const start = next.has(inst.name) ? next.get(inst.name) : 0;
  let soonest = start % n;
  let soonestAt = i64.MAX_VALUE;
  for (let i = 0; i < n; i++) {
    const k = (start + i) % n;
    const until = asideUntil(inst, k);
    if (until <= nowMs) {
      next.set(inst.name, k + 1);
      return k;
    }
    if (until < soonestAt) {
      soonestAt = until;
      soonest = k;
    }
  }
  next.set(inst.name, soonest + 1);
  return soonest;
}

/** Puts key k on the request in place of the instance's first key (whatever header carries it). */
export function useKey(inst: Instance, up: Upstream, k: i32): void {
  if (k <= 0) return;
  const first = inst.keys[0];
  const key = inst.keys[k];
  for (let i = 1; i < up.headers.length; i += 2) {
    const v = up.headers[i];
    if (v.includes(first)) up.headers[i] = v.replace(first, key);
  }
  incrementMetric(namedMetric(METRIC_COUNTER, "sluice.ai_key_requests;instance=" + inst.name + ";upstream_key=" + inst.keyIds[k]), 1);
}

/** Counts the first key's requests too (useKey leaves its headers as they are). */
export function countKey(inst: Instance, k: i32): void {
  if (k == 0) incrementMetric(namedMetric(METRIC_COUNTER, "sluice.ai_key_requests;instance=" + inst.name + ";upstream_key=" + inst.keyIds[0]), 1);
}

/**
 * The provider's answer to a request with key k: a refusal or a spent key sets it aside (true:
 * handled here, the instance stays in); false when there is nothing to do or every key is aside.
 */
export function keyAnswered(inst: Instance, k: i32, status: u32, resetMs: i64, nowMs: i64): bool {
  if (k < 0 || (status != 401 && status != 403 && status != 429)) return false;
  const until = status == 429 ? (resetMs > nowMs ? resetMs : nowMs + SPENT_MS) : nowMs + REFUSED_MS;
  const key = asideKey(inst, k);
  const cur = getSharedData(key);
  setSharedData(key, String.UTF8.encode(until.toString()), cur.value === null ? 0 : cur.cas);
  incrementMetric(namedMetric(METRIC_COUNTER, "sluice.ai_key_set_aside;instance=" + inst.name + ";upstream_key=" + inst.keyIds[k] + ";status=" + status.toString()), 1);
  logWarn("ai-proxy: key " + inst.keyIds[k] + " of instance " + inst.name + " set aside for " + ((until - nowMs) / 1000).toString() + " s (HTTP " + status.toString() + ")");
  for (let i = 0; i < inst.keys.length; i++) if (asideUntil(inst, i) <= nowMs) return true;
  return false;
}
