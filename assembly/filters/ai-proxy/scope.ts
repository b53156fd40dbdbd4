// A virtual key's scopes (docs/virtual-keys.md): key-auth writes the models (patterns) and pools the
// key may use to sluice.key_models / sluice.key_pools; ai-proxy, which knows the model the request is
// served as and its pool, refuses anything else before a provider is asked (403 model_not_allowed in
// the client's shape), and GET /v1/models lists only what the key may use.
import { getFilterState } from "../../lib/sdk";
import * as keys from "../../lib/keys";
import { ClientError } from "../../providers/types";
import { ModelList } from "./models";
import { resolvePool } from "./selection";
import { Settings } from "./config";
import { Exchange } from "./state";

/** An exact name, or a prefix ending in `*` (as ai-ratelimit's conditions and the price table). */
function matchesAny(patterns: Array<string>, v: string): bool {
  for (let i = 0; i < patterns.length; i++) {
    const p = unchecked(patterns[i]);
    if (p.endsWith("*") ? v.startsWith(p.substring(0, p.length - 1)) : p == v) return true;
  }
  return false;
}

function listOf(key: string): Array<string> | null {
  const v = getFilterState(key);
  return v === null || (v as string).length == 0 ? null : (v as string).split(",");
}

function notAllowed(message: string): ClientError {
  const e = ClientError.of(403, message, "permission_error", "model_not_allowed");
  e.param = "model";
  return e;
}

/**
 * The refusal for a request outside its key's scopes, or null. The model checked is the one the
 * request is served as: the router's (a rule's `model`) when it set one, else the client's. The pool
 * is resolved here (as choose() would) so that the pool scope is checked before an instance is picked.
 */
export function scopeError(x: Exchange): ClientError | null {
  if (x.virtualKey().length == 0) return null; // only a virtual key has scopes
  const models = listOf(keys.KEY_MODELS);
  const pools = listOf(keys.KEY_POOLS);
  if (models === null && pools === null) return null;
  if (models !== null) {
    const routed = getFilterState(keys.ROUTE_MODEL);
    const model = routed !== null && (routed as string).length ? routed as string : x.requestModel;
    if (!matchesAny(models as Array<string>, model)) return notAllowed("This API key may not use model '" + safe(model) + "'.");
  }
  if (pools !== null) {
    if (x.pool === null) x.pool = resolvePool(x);
    if (x.pool === null) return null; // choose() answers with why there is no pool
    const name = x.pool!.name;
    if (!(pools as Array<string>).includes(name)) return notAllowed("This API key may not use '" + safe(name) + "' (its pools: " + (pools as Array<string>).join(", ") + ").");
  }
  return null;
}

/** The model list a request may see: the whole list without scopes, else the key's models only. */
export function scopedModels(s: Settings): ModelList {
  const models = listOf(keys.KEY_MODELS);
  const pools = listOf(keys.KEY_POOLS);
  if (models === null && pools === null) return s.models;
  const all = s.models;
  const keep = new Array<bool>(all.ids.length);
  for (let i = 0; i < all.ids.length; i++) {
    let ok = models === null || matchesAny(models as Array<string>, all.ids[i]);
    if (ok && pools !== null) {
      ok = false;
      for (let p = 0; p < s.pools.length && !ok; p++) {
        if (!(pools as Array<string>).includes(s.pools[p].name)) continue;
        const members = s.pools[p].members;
        const by = all.servers[i];
        for (let m = 0; m < by.length; m++) if (members.includes(by[m])) ok = true;
      }
    }
    keep[i] = ok;
  }
  return all.only(keep);
}

/** A client's model name in a message: short, printable. */
function safe(s: string): string {
  let out = s.length > 128 ? s.substring(0, 128) : s;
  let clean = "";
  for (let i = 0; i < out.length; i++) {
    const c = out.charCodeAt(i);
    clean += c < 0x20 || c == 0x7f ? "?" : String.fromCharCode(c);
  }
  return clean;
}
