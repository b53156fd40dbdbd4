// gateway.yaml `filters.ai_cache`: what the schema cannot check, and the ai-cache filter's JSON
// (assembly/filters/ai-cache reads it). Its semantic lookups embed prompts with the instance
// ai-router's embeddings section names (docs/cache.md).
import type { Embeddings, RouterConfig } from "./gateway-config.js";

type Path = (string | number)[];
type Fail = (path: Path, message: string, keyOf?: string) => void;

/** gateway.yaml filters.ai_cache as checked. */
export interface CacheConfig {
  /** The filter's JSON without the embeddings instance (render adds it for its cluster). */
  json: Record<string, unknown>;
  /** ai-router's embeddings section, when the cache is semantic. */
  embeddings: Embeddings | null;
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
  let embeddings: Embeddings | null = null;
  if (c.semantic !== undefined) {
    embeddings = router?.embeddingsSection ?? null;
    if (!embeddings) fail(at("semantic"), "semantic caching embeds prompts with filters.ai_router.embeddings: add that section (ai-router enabled, an instance or an endpoint, and the model)");
    json.semantic = { ...c.semantic };
  }
  return { json, embeddings };
}
