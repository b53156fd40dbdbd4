// key-auth: identifies the consumer from an API key, rejects with 401, strips the credential.
// Filter 1 of the chain (docs/architecture.md). Configuration: docs/filters/key-auth.md.
export * from "../../lib/abi-exports";
import {
  sendLocalResponse,
  RootContext, Context, registerRootContext, FilterHeadersStatusValues,
  REQUEST_HEADERS, getHeaderPairs, removeHeader, replaceHeader, setFilterState, pluginConfiguration,
  defineMetric, incrementMetric, METRIC_COUNTER, logInfo, getFilterState, nowNanos,
} from "../../lib/sdk";
import { ConfigReader } from "../../lib/config";
import { geminiErrorBody, sendError } from "../../lib/errors";
import { CONSUMER, GROUPS, KEY_ID, KEY_MODELS, KEY_POOLS, TEAM } from "../../lib/keys";
import { sha256, toHex, parseHexDigest, digestsEqual } from "../../lib/sha256";
import { JsonValue } from "../../lib/json";
import { decodeQueryComponent, takeQueryParam } from "./query";
import { readVirtualKeys, VirtualKey, VirtualSecret } from "./virtual";

const HASH_PREFIX = "sha256:";

class Settings {
  // Digest (hex) of every key -> index into names. Lookup by digest: an attacker controls the key,
  // not its digest, so timing reveals nothing about how close a guess is.
  byDigest: Map<string, i32> = new Map(); // digest hex -> key index
  digests: Array<StaticArray<u8>> = []; // per key
  owners: Array<i32> = []; // per key: index into names (-1: a virtual key)
  /** Per key: index into virtualKeys, -1 for a consumer's own key. */
  virtual: Array<i32> = [];
  /** Per key: seconds since the epoch after which it is refused; 0: never. */
  expires: Array<i64> = [];
  virtualKeys: Array<VirtualKey> = [];
  names: Array<string> = [];
  header: string = "";
  query: string = "";
  hideCredentials: bool = true;
  anonymous: string = "";
  realm: string = "sluice";
  allowed: u32 = 0;
  denied: u32 = 0;
}

function readSettings(buf: ArrayBuffer): Settings | null {
  const r = new ConfigReader("key-auth");
  const cfg = r.parse(buf);
  if (cfg === null) {
    r.report();
    return null;
  }
  const s = new Settings();
  r.onlyKnown(cfg, "key-auth", ["consumers", "virtual_keys", "header", "query", "hide_credentials", "anonymous", "realm"]);
  s.header = r.str(cfg, "header", "key-auth", "").toLowerCase();
  s.query = r.str(cfg, "query", "key-auth", "");
  s.hideCredentials = r.bool(cfg, "hide_credentials", "key-auth", true);
  s.anonymous = r.str(cfg, "anonymous", "key-auth", "");
  s.realm = r.str(cfg, "realm", "key-auth", "sluice");
  if (s.header == "authorization" || s.header == "x-api-key") s.header = ""; // read anyway
  if (s.realm.includes("\"") || s.realm.includes("\\")) r.fail("key-auth.realm", "must not contain quotes or backslashes");

  const consumers = r.array(cfg, "consumers", "key-auth", cfg.get("virtual_keys") === null);
  const seenNames = new Set<string>();
  for (let i = 0; i < consumers.length && r.ok; i++) {
    const path = "key-auth.consumers[" + i.toString() + "]";
    const c = consumers[i];
    if (!c.isObject()) {
      r.fail(path, "must be an object with name and keys");
      break;
    }
    r.onlyKnown(c, path, ["name", "keys"]);
    const name = r.str(c, "name", path, "");
    if (r.ok && name.trim().length == 0) r.fail(path + ".name", "must not be empty");
    if (r.ok && seenNames.has(name)) r.fail(path + ".name", "duplicate consumer name '" + name + "'");
    seenNames.add(name);
    const keys = r.array(c, "keys", path, true);
    if (r.ok && keys.length == 0) r.fail(path + ".keys", "must list at least one key");
    const index = s.names.length;
    s.names.push(name);
    for (let k = 0; k < keys.length && r.ok; k++) {
      addKey(r, s, keys[k], path + ".keys[" + k.toString() + "]", index);
    }
  }
  const secrets = new Array<VirtualSecret>();
  if (r.ok) readVirtualKeys(r, cfg, s.virtualKeys, secrets);
  for (let i = 0; i < secrets.length && r.ok; i++) {
    const sec = secrets[i];
    const hex = toHex(sec.digest);
    const id = s.virtualKeys[sec.key].id;
    if (s.byDigest.has(hex)) {
      r.fail("key-auth.virtual_keys", "virtual key '" + id + "' has a secret that is already " + ownerOf(s, s.byDigest.get(hex)));
      break;
    }
    s.byDigest.set(hex, s.digests.length);
    s.digests.push(sec.digest);
    s.owners.push(-1);
    s.virtual.push(sec.key);
    s.expires.push(sec.expires);
  }
  if (r.ok && s.anonymous.length && seenNames.has(s.anonymous)) {
    // Allowed, but worth saying: keyless requests then count against that consumer's limits.
    logInfo("key-auth: anonymous requests are attributed to consumer '" + s.anonymous + "'");
  }
  if (!r.report()) return null;
  s.allowed = defineMetric(METRIC_COUNTER, "sluice.key_auth.allowed");
  s.denied = defineMetric(METRIC_COUNTER, "sluice.key_auth.denied");
  return s;
}

function addKey(r: ConfigReader, s: Settings, key: JsonValue, path: string, consumer: i32): void {
  if (!key.isString()) {
    r.fail(path, "must be a string");
    return;
  }
  let digest: StaticArray<u8> | null;
  if (key.s.startsWith(HASH_PREFIX)) {
    digest = parseHexDigest(key.s.substring(HASH_PREFIX.length));
    if (digest === null) {
      r.fail(path, "sha256: must be followed by 64 hex characters");
      return;
    }
  } else {
    if (key.s.length == 0) {
      r.fail(path, "must not be empty");
      return;
    }
    if (key.s != key.s.trim()) {
      r.fail(path, "must not start or end with white space");
      return;
    }
    const bytes = String.UTF8.encode(key.s);
    digest = sha256(changetype<usize>(bytes), <usize>bytes.byteLength);
  }
  const hex = toHex(digest as StaticArray<u8>);
  if (s.byDigest.has(hex)) {
    // Never print the key: name the owners instead.
    r.fail(path, "duplicate key (also " + ownerOf(s, s.byDigest.get(hex)) + ")");
    return;
  }
  s.byDigest.set(hex, s.digests.length);
  s.digests.push(digest as StaticArray<u8>);
  s.owners.push(consumer);
  s.virtual.push(-1);
  s.expires.push(0);
}

/** Who holds key i, for messages: never the key itself. */
function ownerOf(s: Settings, i: i32): string {
  const v = s.virtual[i];
  return v >= 0 ? "virtual key '" + s.virtualKeys[v].id + "'" : "given to consumer '" + s.names[s.owners[i]] + "'";
}

class KeyAuthRoot extends RootContext {
  settings: Settings | null = null;

  createContext(context_id: u32): Context {
    return new KeyAuth(context_id, this);
  }

  onConfigure(size: u32): bool {
    const s = readSettings(pluginConfiguration(size));
    if (s === null) return false;
    this.settings = s;
    return true;
  }
}

// Where a presented key came from, so hide_credentials removes exactly those fields.
const FROM_AUTHORIZATION: i32 = 1;
const FROM_X_API_KEY: i32 = 2;
const FROM_HEADER: i32 = 4;
const FROM_QUERY: i32 = 8;
const FROM_GOOG_KEY: i32 = 16;

/** Gemini's API takes its key as ?key= too (Gemini API reference, "API keys"). */
const GEMINI_QUERY = "key";

/** A path of Gemini's own API (ai-proxy's client-gemini.ts): under /v1beta/, or a model's :method. */
function isGeminiPath(path: string): bool {
  if (path.startsWith("/v1beta/")) return true;
  const q = path.indexOf("?");
  const route = q >= 0 ? path.substring(0, q) : path;
  return route.startsWith("/v1/models/") && route.indexOf(":") > 0;
}

class KeyAuth extends Context {
  /** The request is to Gemini's own API: its key may be in ?key=, its errors are Gemini's. */
  gemini: bool = false;
  constructor(id: u32, root: KeyAuthRoot) {
    super(id, root);
  }

  onRequestHeaders(_n: u32, _eos: bool): FilterHeadersStatusValues {
    const s = (this.root_context as KeyAuthRoot).settings;
    if (s === null) return FilterHeadersStatusValues.Continue; // unreachable: Envoy refuses the config
    const h = getHeaderPairs(REQUEST_HEADERS);

    let presented: string | null = null;
    let sources: i32 = 0;
    let conflicting = false;
    let path: string | null = null;
    for (let i = 0; i < h.count; i++) {
      let from: i32 = 0;
      let key: string | null = null;
      if (h.keyIs(i, "authorization")) {
        const v = h.value(i);
        // RFC 7235: the scheme is case-insensitive; other schemes (Basic...) are not ours.
        if (v.length >= 6 && v.substring(0, 6).toLowerCase() == "bearer" && (v.length == 6 || v.charCodeAt(6) == 0x20)) {
          key = v.substring(6).trim();
          from = FROM_AUTHORIZATION;
        }
      } else if (h.keyIs(i, "x-api-key")) {
        key = h.value(i).trim();
        from = FROM_X_API_KEY;
      } else if (h.keyIs(i, "x-goog-api-key")) {
        key = h.value(i).trim();
        from = FROM_GOOG_KEY;
      } else if (s.header.length && h.keyIs(i, s.header)) {
        key = h.value(i).trim();
        from = FROM_HEADER;
      } else if (h.keyIs(i, ":path")) {
        path = h.value(i);
      }
      if (key === null) continue;
      if (presented !== null && presented != key) conflicting = true;
      presented = key;
      sources |= from;
    }
    // The configured query parameter, and Gemini's own (`key`) on Gemini's paths, where its
    // clients and examples put the key.
    const queries = new Array<string>();
    if (s.query.length) queries.push(s.query);
    this.gemini = path !== null && isGeminiPath(path as string);
    if (this.gemini && s.query != GEMINI_QUERY) queries.push(GEMINI_QUERY);
    for (let qi = 0; qi < queries.length; qi++) {
      const fromQuery = takeQueryParam(path as string, queries[qi]);
      if (fromQuery === null) continue;
      // Each occurrence is a key, as each repeated header is: two that differ conflict.
      const raws = fromQuery.values;
      for (let i = 0; i < raws.length; i++) {
        const key = decodeQueryComponent(raws[i]);
        if (presented !== null && presented != key) conflicting = true;
        presented = key;
      }
      sources |= FROM_QUERY;
      // Envoy's access log prints :path as the filters left it: a wasm filter edits the stream's
      // own request header map in place (source/extensions/common/wasm/context.cc,
      // Context::decodeHeaders keeps a pointer to it; replaceHeaderMapValue writes through it),
      // and %REQ(:PATH)% reads that map when the log is written (StreamInfo::getRequestHeaders).
      // A rejection is logged too: the key leaves :path on every outcome, whatever
      // hide_credentials says.
      path = fromQuery.path;
      replaceHeader(REQUEST_HEADERS, ":path", fromQuery.path);
    }

    if (conflicting) return this.deny(s, "Conflicting API keys in one request; send exactly one.", "invalid_request");
    if (presented === null) {
      if (s.anonymous.length) {
        setFilterState(CONSUMER, s.anonymous);
        incrementMetric(s.allowed, 1);
        return FilterHeadersStatusValues.Continue;
      }
      return this.deny(s, "Missing API key. Send it as 'Authorization: Bearer <key>' or in the 'x-api-key' header (Gemini clients: 'x-goog-api-key').", "");
    }
    const key = presented as string;
    if (key.length == 0) return this.deny(s, "Empty API key.", "invalid_token");

    const bytes = String.UTF8.encode(key);
    const digest = sha256(changetype<usize>(bytes), <usize>bytes.byteLength);
    const hex = toHex(digest);
    if (!s.byDigest.has(hex)) return this.deny(s, "Invalid API key.", "invalid_token");
    const keyIndex = s.byDigest.get(hex);
    // The map matched on the digest's hex; confirm on the digest bytes in constant time.
    if (!digestsEqual(digest, s.digests[keyIndex])) return this.deny(s, "Invalid API key.", "invalid_token");

    // An expired key (or a rotated key's old secret past its grace period) is refused like a wrong
    // one. The clock is the host's wall clock (proxy_get_current_time_nanoseconds).
    const expires = s.expires[keyIndex];
    if (expires > 0 && <i64>(nowNanos() / 1000000000) >= expires) return this.deny(s, "The API key has expired.", "invalid_token");
    const v = s.virtual[keyIndex];
    if (v >= 0) {
      const vk = s.virtualKeys[v];
      setFilterState(CONSUMER, vk.consumer);
      setFilterState(KEY_ID, vk.id);
      if (vk.team.length) {
        setFilterState(TEAM, vk.team);
        // The team is the consumer's group unless something before key-auth set groups: group rules
        // of ai-ratelimit and ai-router then apply to the key's team.
        if (getFilterState(GROUPS) === null) setFilterState(GROUPS, vk.team);
      }
      if (vk.models.length) setFilterState(KEY_MODELS, vk.models);
      if (vk.pools.length) setFilterState(KEY_POOLS, vk.pools);
    } else setFilterState(CONSUMER, s.names[s.owners[keyIndex]]);
    if (s.hideCredentials) {
      if (sources & FROM_AUTHORIZATION) removeHeader(REQUEST_HEADERS, "authorization");
      if (sources & FROM_X_API_KEY) removeHeader(REQUEST_HEADERS, "x-api-key");
      if (sources & FROM_GOOG_KEY) removeHeader(REQUEST_HEADERS, "x-goog-api-key");
      if (sources & FROM_HEADER) removeHeader(REQUEST_HEADERS, s.header);
    }
    incrementMetric(s.allowed, 1);
    return FilterHeadersStatusValues.Continue;
  }

  deny(s: Settings, message: string, error: string): FilterHeadersStatusValues {
    incrementMetric(s.denied, 1);
    // RFC 6750 §3: a request without credentials gets no error code; a bad token gets invalid_token.
    let challenge = "Bearer realm=\"" + s.realm + "\"";
    if (error.length) challenge += ", error=\"" + error + "\"";
    if (this.gemini) {
      // Gemini's clients read Gemini's error shape (the rendered local-reply mappers give
      // Anthropic's clients theirs by path; Gemini's shape is answered here).
      sendLocalResponse(401, "sluice_key_auth_denied", geminiErrorBody(401, message), ["www-authenticate", challenge, "content-type", "application/json"]);
      return FilterHeadersStatusValues.StopIteration;
    }
    sendError(401, message, "invalid_request_error", "invalid_api_key", "sluice_key_auth_denied", ["www-authenticate", challenge]);
    return FilterHeadersStatusValues.StopIteration;
  }
}

registerRootContext((id: u32) => new KeyAuthRoot(id), "key-auth");
