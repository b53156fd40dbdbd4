// ai-cache's settings, read once at configure from the JSON the renderer writes (gateway.yaml
// filters.ai_cache, docs/cache.md).
import { ConfigReader } from "../../lib/config";
import { JsonValue } from "../../lib/json";
import { readCredential } from "../../lib/config";
import { SemanticSettings, readSemantic } from "./semantic-config";
import { WebdisSettings } from "./webdis";

/** Whose answers a request may get: its own consumer's (default), or every consumer's. */
export const SCOPE_CONSUMER: i32 = 0;
export const SCOPE_SHARED: i32 = 1;

export class Settings {
  scope: i32 = SCOPE_CONSUMER;
  /** How long an answer is served after it was stored. */
  ttlMs: i64 = 3600000;
  /** Answers kept (rounded up to whole sets of store.ts WAYS). */
  maxEntries: i64 = 1024;
  /** The largest answer kept (its JSON); a larger one is not stored. */
  maxEntryBytes: i64 = 65536;
  /** The largest request read; a larger one passes uncached. */
  maxBodyBytes: i64 = 1048576;
  /** Answers that call tools are not cached unless this is set (a tool's result may change). */
  cacheToolCalls: bool = false;
  /** About how many characters each replayed stream event carries. */
  replayChunkChars: i32 = 24;
  semantic: SemanticSettings | null = null;
  /** A Redis behind Webdis that several Envoys share; null: Envoy's shared data. */
  webdis: WebdisSettings | null = null;
}

const FIELDS = ["scope", "ttl_ms", "max_entries", "max_entry_bytes", "max_body_bytes", "cache_tool_calls", "replay_chunk_chars", "semantic", "store"];

function readWebdis(r: ConfigReader, v: JsonValue, at: string, maxEntryBytes: i64): WebdisSettings | null {
  if (!v.isObject()) {
    r.fail(at, "must be an object");
    return null;
  }
  r.onlyKnown(v, at, ["type", "cluster", "authority", "prefix", "auth", "timeout_ms"]);
  if (r.str(v, "type", at, "") != "webdis") r.fail(at + ".type", "must be webdis");
  const w = new WebdisSettings();
  w.cluster = r.str(v, "cluster", at, "");
  if (w.cluster.length == 0) r.fail(at + ".cluster", "is required (the Envoy cluster of the Webdis server)");
  w.authority = r.str(v, "authority", at, w.cluster);
  w.prefix = r.str(v, "prefix", at, "sluice:cache:");
  // Webdis reads "/" as an argument separator and "." as the start of a format suffix.
  for (let i = 0; i < w.prefix.length; i++) {
    const c = w.prefix.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c == 0x2f || c == 0x2e || c == 0x3f || c == 0x25 || c == 0x23) r.fail(at + ".prefix", "must be printable ASCII without / . ? % #");
  }
  w.timeoutMs = <u32>r.int(v, "timeout_ms", at, 200, 1, 60000);
  const auth = v.get("auth");
  if (auth !== null && auth.isObject()) {
    const c = readCredential(r, auth as JsonValue, at + ".auth");
    w.authHeader = c.header;
    w.authValue = c.value;
  }
  w.maxBytes = maxEntryBytes + 64;
  return w;
}

export function readSettings(buf: ArrayBuffer): Settings | null {
  const r = new ConfigReader("ai-cache");
  const cfg = r.parse(buf);
  if (cfg === null) {
    r.report();
    return null;
  }
  const c = cfg as JsonValue;
  r.onlyKnown(c, "ai-cache", FIELDS);
  const s = new Settings();
  const scope = r.str(c, "scope", "ai-cache", "consumer");
  if (scope == "shared") s.scope = SCOPE_SHARED;
  else if (scope != "consumer") r.fail("ai-cache.scope", "must be consumer or shared");
  s.ttlMs = r.int(c, "ttl_ms", "ai-cache", 3600000, 1000, 30 * 86400000);
  s.maxEntries = r.int(c, "max_entries", "ai-cache", 1024, 8, 1 << 20);
  s.maxEntryBytes = r.int(c, "max_entry_bytes", "ai-cache", 65536, 256, 16 << 20);
  s.maxBodyBytes = r.int(c, "max_body_bytes", "ai-cache", 1048576, 1024, 64 << 20);
  s.cacheToolCalls = r.bool(c, "cache_tool_calls", "ai-cache", false);
  s.replayChunkChars = <i32>r.int(c, "replay_chunk_chars", "ai-cache", 24, 1, 65536);
  const st = c.get("store");
  if (st !== null) s.webdis = readWebdis(r, st as JsonValue, "ai-cache.store", s.maxEntryBytes);
  const sem = c.get("semantic");
  if (sem !== null) s.semantic = readSemantic(r, sem as JsonValue, "ai-cache.semantic");
  if (!r.report()) return null;
  return s;
}
