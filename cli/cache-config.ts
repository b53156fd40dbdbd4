// gateway.yaml `filters.ai_cache`: what the schema cannot check, and the ai-cache filter's JSON
// (assembly/filters/ai-cache reads it). Its semantic lookups embed prompts with the instance
// ai-router's embeddings section names (docs/cache.md).
import type { Embeddings, Instance, RouterConfig } from "./gateway-config.js";
import { authorityOf, httpUrl } from "./mcp-config.js";

type Path = (string | number)[];
type Fail = (path: Path, message: string, keyOf?: string) => void;

/** gateway.yaml filters.ai_cache as checked. */
export interface CacheConfig {
  /** The filter's JSON without the embeddings instance (render adds it for its cluster). */
  json: Record<string, unknown>;
  /** ai-router's embeddings section, when the cache is semantic. */
  embeddings: Embeddings | null;
  /** The Webdis server several Envoys share (cluster sluice-cache-store), when there is one. */
  webdis: { url: URL; auth: { header: string; value_env: string; prefix: string } | null } | null;
}

/** The cluster of the shared store's Webdis server. */
export const CACHE_STORE_CLUSTER = "sluice-cache-store";

/** The Webdis server as a cluster target (rendered like a provider's). */
export function cacheStoreTargets(c: CacheConfig | null): Instance[] {
  if (!c?.webdis) return [];
  const u = c.webdis.url;
  return [{ name: CACHE_STORE_CLUSTER, provider: "openai-compatible", apiKeyEnv: null, apiKey: null, endpoint: u.href, url: u, http2: false }];
}

/** The ai-cache filter's store JSON: the cluster (clusterOf names it for Istio), its authority and credential. */
export function cacheStoreJson(c: CacheConfig, clusterOf?: (i: Instance) => string): Record<string, unknown> | null {
  if (!c.webdis) return null;
  const t = cacheStoreTargets(c)[0];
  const out: Record<string, unknown> = { type: "webdis", cluster: clusterOf?.(t) ?? t.name, authority: authorityOf(c.webdis.url) };
  if (c.webdis.auth) out.auth = c.webdis.auth;
  return out;
}

/** A gateway.yaml duration (500ms, 5s, 2m) in milliseconds. */
function durationMs(d: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m)$/.exec(d);
  if (!m) return NaN;
  const n = Number(m[1]);
  return Math.round(m[2] === "ms" ? n : m[2] === "s" ? n * 1000 : n * 60000);
}

const MAX_TTL_MS = 30 * 86400000;

export function checkCache(c: any, router: RouterConfig | null, fail: Fail): CacheConfig | null {
  if (c === undefined || c.enabled === false) return null;
  const at = (...p: Path): Path => ["filters", "ai_cache", ...p];
  const json: Record<string, unknown> = {};
  for (const k of ["scope", "max_entries", "max_entry_bytes", "max_body_bytes", "cache_tool_calls", "replay_chunk_chars"]) if (c[k] !== undefined) json[k] = c[k];
  if (c.ttl !== undefined) {
    const ms = durationMs(c.ttl);
    if (!(ms >= 1000 && ms <= MAX_TTL_MS)) fail(at("ttl"), "must be from 1s to 43200m");
    else json.ttl_ms = ms;
  }
  let webdis: CacheConfig["webdis"] = null;
  if (c.store !== undefined) {
    const url = httpUrl(c.store.webdis, at("store", "webdis"), fail, "webdis");
    if (url && (url.pathname !== "/" || url.search)) fail(at("store", "webdis"), "must be the server's root URL (http://host:port), without a path or query");
    else if (url) {
      const a = c.store.auth;
      webdis = { url, auth: a ? { header: String(a.header ?? "authorization").toLowerCase(), value_env: a.value_env, prefix: a.prefix ?? "" } : null };
    }
    for (const k of ["prefix", "timeout_ms"]) if (c.store[k] !== undefined) json[`store_${k}`] = c.store[k];
    if (typeof c.store.prefix === "string" && /[/.?%#]/.test(c.store.prefix)) fail(at("store", "prefix"), "must not hold / . ? % or # (Webdis reads them in its URLs)");
  }
  let embeddings: Embeddings | null = null;
  if (c.semantic !== undefined) {
    embeddings = router?.embeddingsSection ?? null;
    if (!embeddings) fail(at("semantic"), "semantic caching embeds prompts with filters.ai_router.embeddings: add that section (ai-router enabled, an instance or an endpoint, and the model)");
    json.semantic = { ...c.semantic };
  }
  return { json, embeddings, webdis };
}

/** The host_env_keys ai-cache's VM needs for its store: the credential's variable. */
export function cacheStoreEnvKeys(c: CacheConfig | null): string[] {
  return c?.webdis?.auth ? [c.webdis.auth.value_env] : [];
}
