// Which instance serves a request: the pool (ai-router's choice, a pool named like the model, the
// instances serving the model, the default pool), the pick among its available members (balancer.ts),
// panic mode when none is healthy, and the in-flight count of the chosen instance.
import { REQUEST_HEADERS, getHeader, getFilterState } from "../../lib/sdk";
import { JsonValue } from "../../lib/json";
import * as keys from "../../lib/keys";
import { ClientError } from "../../providers/types";
import { Pool, PickInput, pick, addInflight, CONSISTENT_HASH } from "./balancer";
import { HealthState, readHealth } from "./health";
import { TokenSource } from "../../lib/oauth-token";
import { Exchange, nowMs } from "./state";

// Requests whose implicit pools (instances serving a model) are remembered per plugin; model names
// come from clients, so the cache is bounded.
const MAX_IMPLICIT_POOLS: i32 = 256;

/**
 * The pool for this request: the one ai-router chose, else the pool named like the requested
 * model, else the instances that serve the model, else the default pool.
 */
export function resolvePool(x: Exchange): Pool | null {
  const s = x.settings;
  const chosen = getFilterState(keys.POOL);
  if (chosen !== null) {
    for (let p = 0; p < s.pools.length; p++) if (s.pools[p].name == chosen) return s.pools[p];
    x.noInstance = ClientError.of(500, "The router chose pool '" + (chosen as string) + "', which ai-proxy does not configure.", "api_error", "pool_not_found");
    return null;
  }
  for (let p = 0; p < s.pools.length; p++) if (s.pools[p].name == x.requestModel) return s.pools[p];
  const root = x.proxyRoot;
  if (root.implicitPools.has(x.requestModel)) return root.implicitPools.get(x.requestModel);
  const pool = new Pool();
  pool.name = x.requestModel;
  for (let i = 0; i < s.instances.length; i++) if (s.instances[i].serves(x.requestModel)) pool.members.push(i);
  if (pool.members.length) {
    if (root.implicitPools.size < MAX_IMPLICIT_POOLS) root.implicitPools.set(x.requestModel, pool);
    return pool;
  }
  if (s.defaultPool >= 0) return s.pools[s.defaultPool];
  x.noInstance = ClientError.of(404, "No provider instance serves model '" + x.requestModel + "'.", "invalid_request_error", "model_not_found");
  return null;
}

/** Picks an available instance of the pool not tried yet; -1 (and noInstance) when none. */
export function choose(x: Exchange): i32 {
  const s = x.settings;
  let pool = x.pool;
  if (pool === null) {
    pool = resolvePool(x);
    if (pool === null) return -1;
    x.pool = pool;
  }
  const input = new PickInput();
  const now = nowMs();
  let soonest: i64 = 0;
  const states = new Array<HealthState>(pool.members.length);
  // An instance without an access token (its token endpoint failing) is out like a down one.
  const credentialed = new Array<bool>(pool.members.length);
  for (let m = 0; m < pool.members.length; m++) {
    const i = pool.members[m];
    const h = readHealth(s.instances[i].name);
    states[m] = h;
    credentialed[m] = hasCredential(x, i, now);
    const ok = !x.tried.includes(i) && h.available(now) && s.instances[i].weight > 0 && credentialed[m];
    input.available.push(ok);
    if (!ok && h.until > now && (soonest == 0 || h.until < soonest)) soonest = h.until;
  }
  input.stream = x.stream;
  input.promptTokens = x.promptEstimate;
  input.completionTokens = expectedCompletion(x);
  if (pool.algorithm == CONSISTENT_HASH) input.hashKey = hashKey(x, pool);
  let m = pick(pool, s.instances, input);
  if (m < 0) {
    // Panic mode, as Envoy's load balancer does when no host is healthy: rather than refuse,
    // try an instance not tried yet even though it is cooling down; it may have recovered.
    // One without a token is tried last: its answer is the 503 saying why (request.ts send).
    for (let k = 0; k < pool.members.length; k++) input.available[k] = !x.tried.includes(pool.members[k]) && s.instances[pool.members[k]].weight > 0 && credentialed[k];
    m = pick(pool, s.instances, input);
    if (m < 0) {
      for (let k = 0; k < pool.members.length; k++) input.available[k] = !x.tried.includes(pool.members[k]) && s.instances[pool.members[k]].weight > 0;
      m = pick(pool, s.instances, input);
    }
  }
  if (m < 0) {
    const e = ClientError.of(503, "No healthy provider instance is available for '" + (x.requestModel.length ? x.requestModel : pool.name) + "'.", "api_error", "no_healthy_instance");
    x.noInstance = e;
    x.retryAfterS = soonest > now ? (soonest - now + 999) / 1000 : 0;
    return -1;
  }
  x.health = states[m];
  return pool.members[m];
}

/** Whether instance i can be sent a request now: it needs no access token, or has a current one. */
function hasCredential(x: Exchange, i: i32, now: i64): bool {
  const tokens = x.proxyRoot.tokens;
  const t = tokens.length > i ? tokens[i] : null;
  return t === null || (t as TokenSource).current(now) !== null;
}

export function expectedCompletion(x: Exchange): i64 {
  const req = x.clientReq;
  if (req === null) return 512;
  const mt = (req as JsonValue).get("max_completion_tokens");
  if (mt !== null && mt.isInteger()) return <i64>mt.n;
  const m2 = (req as JsonValue).get("max_tokens");
  if (m2 !== null && m2.isInteger()) return <i64>m2.n;
  return 512;
}

export function hashKey(x: Exchange, pool: Pool): string {
  if (pool.hashOn.startsWith("header:")) {
    const v = getHeader(REQUEST_HEADERS, pool.hashOn.substring(7));
    return v !== null ? v as string : "";
  }
  const c = getFilterState(keys.CONSUMER);
  return c !== null ? c as string : "";
}

/** Makes instance i the one serving the request. */
export function useInstance(x: Exchange, i: i32): void {
  const s = x.settings;
  x.instIndex = i;
  x.inst = s.instances[i];
  x.provider = s.providers[i];
  // ai-router may rewrite the model (a rule's `model`); the client's stays in request_model.
  const routed = getFilterState(keys.ROUTE_MODEL);
  x.upstreamModel = s.instances[i].upstreamModel(routed !== null && (routed as string).length ? routed as string : x.requestModel);
  x.tried.push(i);
  if (s.trackInflight) {
    if (x.inflightName.length) addInflight(x.inflightName, -1);
    x.inflightName = s.instances[i].name;
    addInflight(x.inflightName, 1);
  }
}

export function releaseInflight(x: Exchange): void {
  if (x.inflightName.length) {
    addInflight(x.inflightName, -1);
    x.inflightName = "";
  }
}
