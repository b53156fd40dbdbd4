// key-auth's virtual keys (docs/virtual-keys.md): keys from the keys file, each with an id, an owner
// consumer, a team, an expiry and scopes, held only as SHA-256 digests of their secrets. A rotated
// key has two secrets for a while: the old one carries its own expiry (the end of the grace period).
import { ConfigReader } from "../../lib/config";
import { JsonValue } from "../../lib/json";
import { parseHexDigest } from "../../lib/sha256";

/** Bounds on what one key may carry (filter state values stay short). */
const MAX_KEYS: i32 = 100000;
const MAX_SECRETS: i32 = 4;
const MAX_SCOPES: i32 = 64;
const MAX_NAME: i32 = 64;
const MAX_PATTERN: i32 = 256;
/** 9999-12-31T23:59:59Z: expiries are seconds since the epoch. */
const MAX_EPOCH_SECONDS: i64 = 253402300799;

export class VirtualKey {
  id: string = "";
  consumer: string = "";
  team: string = "";
  /** Seconds since the epoch; 0: never. */
  expires: i64 = 0;
  /** Comma-separated model patterns / pool names for filter state; empty: any. */
  models: string = "";
  pools: string = "";
}

/** One secret of a virtual key: its digest and when it stops being accepted. */
export class VirtualSecret {
  key: i32 = 0;
  digest: StaticArray<u8> = new StaticArray<u8>(32);
  /** Seconds since the epoch (the earlier of the key's and the secret's own); 0: never. */
  expires: i64 = 0;
}

function isId(s: string): bool {
  if (s.length == 0 || s.length > MAX_NAME) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c == 0x2d || c == 0x5f;
    if (!ok) return false;
  }
  return true;
}

/** A scope entry: printable, no comma (the filter-state separator), no white space. */
function isScope(s: string): bool {
  if (s.length == 0 || s.length > MAX_PATTERN) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c == 0x2c || c == 0x7f) return false;
  }
  return true;
}

function scopes(r: ConfigReader, v: JsonValue, key: string, path: string): string {
  const list = r.array(v, key, path, false);
  if (list.length > MAX_SCOPES) r.fail(path + "." + key, "at most " + MAX_SCOPES.toString() + " entries");
  let out = "";
  for (let i = 0; i < list.length && r.ok; i++) {
    const p = path + "." + key + "[" + i.toString() + "]";
    if (!list[i].isString() || !isScope(list[i].s)) {
      r.fail(p, "must be a name or pattern (1 to " + MAX_PATTERN.toString() + " characters, no spaces or commas)");
      break;
    }
    if (i) out += ",";
    out += list[i].s;
  }
  if (r.ok && list.length == 0 && v.get(key) !== null) r.fail(path + "." + key, "must list at least one entry (leave it out for no restriction)");
  return out;
}

/** Reads key-auth's `virtual_keys`; secrets go to `secrets` (digests only), keys to `keys`. */
export function readVirtualKeys(r: ConfigReader, cfg: JsonValue, keys: Array<VirtualKey>, secrets: Array<VirtualSecret>): void {
  const list = r.array(cfg, "virtual_keys", "key-auth", false);
  if (list.length > MAX_KEYS) r.fail("key-auth.virtual_keys", "at most " + MAX_KEYS.toString() + " keys");
  const ids = new Set<string>();
  for (let i = 0; i < list.length && r.ok; i++) {
    const path = "key-auth.virtual_keys[" + i.toString() + "]";
    const v = list[i];
    if (!v.isObject()) {
      r.fail(path, "must be an object with id, consumer and secrets");
      break;
    }
    r.onlyKnown(v, path, ["id", "consumer", "team", "expires", "secrets", "models", "pools"]);
    const k = new VirtualKey();
    k.id = r.str(v, "id", path, "");
    if (r.ok && !isId(k.id)) r.fail(path + ".id", "must be 1 to 64 letters, digits, '-' or '_'");
    if (r.ok && ids.has(k.id)) r.fail(path + ".id", "duplicate virtual key id '" + k.id + "'");
    ids.add(k.id);
    k.consumer = r.str(v, "consumer", path, "");
    if (r.ok && k.consumer.trim().length == 0) r.fail(path + ".consumer", "is required (the consumer that owns the key)");
    k.team = r.str(v, "team", path, "");
    if (r.ok && k.team.length && !isId(k.team)) r.fail(path + ".team", "must be 1 to 64 letters, digits, '-' or '_'");
    k.expires = r.int(v, "expires", path, 0, 1, MAX_EPOCH_SECONDS);
    k.models = scopes(r, v, "models", path);
    k.pools = scopes(r, v, "pools", path);
    const ss = r.array(v, "secrets", path, true);
    if (r.ok && (ss.length == 0 || ss.length > MAX_SECRETS)) r.fail(path + ".secrets", "must list 1 to " + MAX_SECRETS.toString() + " secrets");
    for (let j = 0; j < ss.length && r.ok; j++) {
      const sp = path + ".secrets[" + j.toString() + "]";
      const sv = ss[j];
      if (!sv.isObject()) {
        r.fail(sp, "must be an object with sha256");
        break;
      }
      r.onlyKnown(sv, sp, ["sha256", "expires"]);
      const d = parseHexDigest(r.str(sv, "sha256", sp, ""));
      if (d === null) {
        r.fail(sp + ".sha256", "must be 64 hex characters (the SHA-256 digest of the secret)");
        break;
      }
      const sec = new VirtualSecret();
      sec.key = keys.length;
      sec.digest = d as StaticArray<u8>;
      const own = r.int(sv, "expires", sp, 0, 1, MAX_EPOCH_SECONDS);
      sec.expires = own == 0 ? k.expires : k.expires == 0 || own < k.expires ? own : k.expires;
      secrets.push(sec);
    }
    keys.push(k);
  }
}
