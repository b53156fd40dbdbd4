// Picking an instance from a pool: priority groups, then the pool's algorithm over the instances
// that are available (health.ts). Algorithms:
//   weighted_round_robin  smooth weighted round-robin (nginx's): exact proportions, no bursts
//   least_latency         lowest moving average of time to first token (streams) or duration
//   lowest_cost           cheapest for this request from the price table and the token estimate
//   least_inflight        fewest requests in flight across all workers
//   consistent_hash       a ring of virtual nodes keyed by the consumer or a header, so a user
//                         sticks to one instance (warm provider prompt caches); when an instance
//                         leaves, only its keys move
import { getSharedData, setSharedData, WasmResultValues } from "../../lib/sdk";
import { Instance } from "../../providers/types";

export const WRR: i32 = 0;
export const LEAST_LATENCY: i32 = 1;
export const LOWEST_COST: i32 = 2;
export const LEAST_INFLIGHT: i32 = 3;
export const CONSISTENT_HASH: i32 = 4;

export const ALGORITHMS: Array<string> = ["weighted_round_robin", "least_latency", "lowest_cost", "least_inflight", "consistent_hash"];

const VNODES: i32 = 160;

export class Pool {
  name: string = "";
  members: Array<i32> = []; // instance indices
  algorithm: i32 = WRR;
  /** consistent_hash: "consumer" or a request header name. */
  hashOn: string = "consumer";
  // Smooth WRR state, per VM (Envoy's own round-robin is per worker too).
  current: Array<i64> = [];
  // Consistent-hash ring: sorted virtual-node hashes and the member each belongs to.
  ring: Array<u32> = [];
  ringOwner: Array<i32> = [];
  // Rotates tie-breaks so equal scores do not all land on the first member.
  turn: i32 = 0;

  buildRing(instances: Array<Instance>): void {
    const pairs = new Array<u64>();
    for (let m = 0; m < this.members.length; m++) {
      const name = instances[this.members[m]].name;
      for (let v = 0; v < VNODES; v++) pairs.push((<u64>hash32(name + "#" + v.toString()) << 32) | <u64>m);
    }
    pairs.sort((a: u64, b: u64): i32 => (a < b ? -1 : a > b ? 1 : 0));
    this.ring = new Array<u32>(pairs.length);
    this.ringOwner = new Array<i32>(pairs.length);
    for (let i = 0; i < pairs.length; i++) {
      this.ring[i] = <u32>(pairs[i] >> 32);
      this.ringOwner[i] = <i32>(pairs[i] & 0xffffffff);
    }
  }
}

/** FNV-1a, then a murmur-style finalizer so nearby strings spread over the ring. */
export function hash32(s: string): u32 {
  let h: u32 = 2166136261;
  for (let i = 0; i < s.length; i++) {
    h ^= <u32>s.charCodeAt(i);
    h *= 16777619;
  }
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  h *= 0xc2b2ae35;
  h ^= h >> 16;
  return h;
}

/** What the algorithms need to know about the request. */
export class PickInput {
  available: Array<bool> = []; // per pool member
  hashKey: string = "";
  stream: bool = false;
  promptTokens: i64 = 0;
  completionTokens: i64 = 0;
}

/** Returns a pool member position, or -1 when no member is available. */
export function pick(pool: Pool, instances: Array<Instance>, input: PickInput): i32 {
  // Priority groups: only the most preferred (lowest number) group with an available member.
  let best: i32 = i32.MAX_VALUE;
  for (let m = 0; m < pool.members.length; m++) {
    if (input.available[m] && instances[pool.members[m]].priority < best) best = instances[pool.members[m]].priority;
  }
  if (best == i32.MAX_VALUE) return -1;
  const eligible = new Array<bool>(pool.members.length);
  for (let m = 0; m < pool.members.length; m++) eligible[m] = input.available[m] && instances[pool.members[m]].priority == best;

  if (pool.algorithm == CONSISTENT_HASH) return ringPick(pool, eligible, input.hashKey);
  if (pool.algorithm == WRR) return smoothWrr(pool, instances, eligible);
  // Score-based: lowest score wins; ties rotate.
  let winner = -1;
  let winnerScore: f64 = Infinity;
  const n = pool.members.length;
  pool.turn = (pool.turn + 1) % (n > 0 ? n : 1);
  for (let k = 0; k < n; k++) {
    const m = (k + pool.turn) % n;
    if (!eligible[m]) continue;
    const inst = instances[pool.members[m]];
    let score: f64;
    if (pool.algorithm == LEAST_LATENCY) score = latencyScore(inst.name, input.stream);
    else if (pool.algorithm == LOWEST_COST) score = inst.priceIn * <f64>input.promptTokens + inst.priceOut * <f64>input.completionTokens;
    else score = <f64>readInflight(inst.name);
    if (score < winnerScore) {
      winnerScore = score;
      winner = m;
    }
  }
  return winner;
}

function smoothWrr(pool: Pool, instances: Array<Instance>, eligible: Array<bool>): i32 {
  while (pool.current.length < pool.members.length) pool.current.push(0);
  let total: i64 = 0;
  let best = -1;
  for (let m = 0; m < pool.members.length; m++) {
    if (!eligible[m]) continue;
    const w = <i64>instances[pool.members[m]].weight;
    pool.current[m] += w;
    total += w;
    if (best < 0 || pool.current[m] > pool.current[best]) best = m;
  }
  if (best >= 0) pool.current[best] -= total;
  return best;
}

function ringPick(pool: Pool, eligible: Array<bool>, key: string): i32 {
  const ring = pool.ring;
  if (ring.length == 0) return -1;
  const h = hash32(key);
  // First virtual node at or after h (binary search), then clockwise to an eligible owner.
  let lo = 0, hi = ring.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ring[mid] < h) lo = mid + 1;
    else hi = mid;
  }
  for (let k = 0; k < ring.length; k++) {
    const m = pool.ringOwner[(lo + k) % ring.length];
    if (eligible[m]) return m;
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------
// Latency and in-flight counts, shared by all workers.

const LATENCY = "sluice.ai-proxy.latency.";
const INFLIGHT = "sluice.ai-proxy.inflight.";
const ALPHA: f64 = 0.3; // weight of the newest sample
const MAX_CAS_TRIES = 32;

/** The moving averages (ms) of time to first token and of duration: "ttft,duration". */
function readLatency(name: string): Array<f64> {
  const v = getSharedData(LATENCY + name).value;
  if (v === null) return [0, 0];
  const parts = String.UTF8.decode(v as ArrayBuffer).split(",");
  if (parts.length != 2) return [0, 0];
  return [parseFloat(parts[0]), parseFloat(parts[1])];
}

function latencyScore(name: string, stream: bool): f64 {
  const l = readLatency(name);
  return stream ? l[0] : l[1];
}

export function recordLatency(name: string, ttftMs: f64, durationMs: f64): void {
  const key = LATENCY + name;
  for (let attempt = 0; attempt < MAX_CAS_TRIES; attempt++) {
    const cur = getSharedData(key);
    let ttft = ttftMs, duration = durationMs;
    if (cur.value !== null) {
      const parts = String.UTF8.decode(cur.value as ArrayBuffer).split(",");
      if (parts.length == 2) {
        const oldT = parseFloat(parts[0]), oldD = parseFloat(parts[1]);
        if (ttftMs >= 0) ttft = oldT > 0 ? oldT + ALPHA * (ttftMs - oldT) : ttftMs;
        else ttft = oldT;
        duration = oldD > 0 ? oldD + ALPHA * (durationMs - oldD) : durationMs;
      }
    }
    if (ttft < 0) ttft = 0;
    const v = String.UTF8.encode(ttft.toString() + "," + duration.toString());
    if (setSharedData(key, v, cur.value === null ? 0 : cur.cas) != WasmResultValues.CasMismatch) return;
  }
}

export function readInflight(name: string): i64 {
  const v = getSharedData(INFLIGHT + name).value;
  if (v === null) return 0;
  return I64.parseInt(String.UTF8.decode(v as ArrayBuffer));
}

export function addInflight(name: string, delta: i64): void {
  const key = INFLIGHT + name;
  for (let attempt = 0; attempt < MAX_CAS_TRIES; attempt++) {
    const cur = getSharedData(key);
    let n: i64 = cur.value !== null ? I64.parseInt(String.UTF8.decode(cur.value as ArrayBuffer)) : 0;
    n += delta;
    if (n < 0) n = 0;
    if (setSharedData(key, String.UTF8.encode(n.toString()), cur.value === null ? 0 : cur.cas) != WasmResultValues.CasMismatch) return;
  }
}
