// identity configuration (the filter's JSON; gateway.yaml `identity`, docs/identity.md). Every
// mistake is reported with the path of the field at fault.
import { ConfigReader, isHeaderName } from "../../lib/config";
import { JsonValue, JsonKind } from "../../lib/json";
import { defineMetric, METRIC_COUNTER } from "../../lib/sdk";
import { validConsumer } from "./values";

export const FROM_JWT: i32 = 0;
export const FROM_MTLS: i32 = 1;
export const FROM_METADATA: i32 = 2;
export const FROM_HEADER: i32 = 3;

/** The names written to sluice.identity_source, by FROM_*. */
export const SOURCE_NAMES: StaticArray<string> = ["jwt", "mtls", "metadata", "header"];

const JWT_NAMESPACE = "envoy.filters.http.jwt_authn";
const JWT_PAYLOAD_KEY = "jwt_payload";
const MAX_CONSUMER_LENGTH: i64 = 256;
const MAX_GROUPS: i64 = 64;
const MAX_PATH_SEGMENTS: i32 = 16;

/** One place an identity (or the groups) is read from. */
export class Source {
  kind: i32 = FROM_JWT;
  /** A property path (jwt, mtls, metadata); empty for a header. */
  property: Array<string> = [];
  /** For FROM_HEADER: the header's name, lower case. */
  header: string = "";
}

export class Settings {
  sources: Array<Source> = [];
  groups: Source | null = null;
  /** Identity -> consumer name (gateway.yaml identity.map). */
  map: Map<string, string> = new Map();
  anonymous: string = "";
  /** key-auth's own anonymous consumer: a request key-auth let in without a key is not identified yet. */
  keyAuthAnonymous: string = "";
  realm: string = "sluice";
  maxConsumerLength: i32 = 128;
  maxGroups: i32 = 16;
  allowed: u32 = 0;
  denied: u32 = 0;
}

/** A list of path segments (["org", "team"]), each a non-empty string. */
function readSegments(r: ConfigReader, v: JsonValue | null, path: string): Array<string> {
  const out = new Array<string>();
  if (v === null || v.kind != JsonKind.Array || v.length == 0 || v.length > MAX_PATH_SEGMENTS) {
    r.fail(path, "must be a list of 1 to " + MAX_PATH_SEGMENTS.toString() + " names, e.g. [\"org\", \"team\"]");
    return out;
  }
  const items = v.items as Array<JsonValue>;
  for (let i = 0; i < items.length; i++) {
    if (!items[i].isString() || items[i].s.length == 0) {
      r.fail(path + "[" + i.toString() + "]", "must be a non-empty string");
      break;
    }
    out.push(items[i].s);
  }
  return out;
}

function readSource(r: ConfigReader, v: JsonValue, path: string, jwtNs: string, payloadKey: string, mtlsAllowed: bool): Source | null {
  if (!v.isObject() || v.length != 1) {
    r.fail(path, "must be an object with exactly one of jwt_claim, " + (mtlsAllowed ? "mtls, " : "") + "metadata or header");
    return null;
  }
  const s = new Source();
  const kind = v.keyAt(0);
  const val = v.at(0);
  if (kind == "jwt_claim") {
    s.kind = FROM_JWT;
    // jwt_authn's payload_in_metadata: metadata.filter_metadata[<namespace>][<payload key>] is the
    // payload as a Struct; a nested claim is a path into it.
    s.property = ["metadata", "filter_metadata", jwtNs, payloadKey];
    const segs = readSegments(r, val, path + ".jwt_claim");
    for (let i = 0; i < segs.length; i++) s.property.push(segs[i]);
  } else if (kind == "mtls") {
    if (!mtlsAllowed) {
      r.fail(path, "mtls is not a source of groups (a certificate field is one value)");
      return null;
    }
    s.kind = FROM_MTLS;
    // context.cc SslExtractorsValues: the first URI / DNS SAN, and the RFC 2253 subject ("" without a
    // peer certificate).
    let field = "";
    if (val.isString() && val.s == "uri_san") field = "uri_san_peer_certificate";
    else if (val.isString() && val.s == "dns_san") field = "dns_san_peer_certificate";
    else if (val.isString() && val.s == "subject") field = "subject_peer_certificate";
    else {
      r.fail(path + ".mtls", "must be uri_san, dns_san or subject");
      return null;
    }
    s.property = ["connection", field];
  } else if (kind == "metadata") {
    s.kind = FROM_METADATA;
    if (!val.isObject()) {
      r.fail(path + ".metadata", "must be an object with namespace and key");
      return null;
    }
    r.onlyKnown(val, path + ".metadata", ["namespace", "key"]);
    const ns = r.str(val, "namespace", path + ".metadata", "");
    if (r.ok && ns.length == 0) r.fail(path + ".metadata.namespace", "is required, e.g. envoy.filters.http.ext_authz");
    s.property = ["metadata", "filter_metadata", ns];
    const segs = readSegments(r, val.get("key"), path + ".metadata.key");
    for (let i = 0; i < segs.length; i++) s.property.push(segs[i]);
  } else if (kind == "header") {
    s.kind = FROM_HEADER;
    if (!val.isString() || !isHeaderName(val.s.toLowerCase()) || val.s.startsWith(":")) {
      r.fail(path + ".header", "must be an HTTP header name");
      return null;
    }
    s.header = val.s.toLowerCase();
  } else {
    r.fail(path + "." + kind, "unknown source (expected jwt_claim, " + (mtlsAllowed ? "mtls, " : "") + "metadata or header)");
    return null;
  }
  return r.ok ? s : null;
}

/** A quoted-string of www-authenticate without escapes: printable ASCII but '"' and '\\'. */
function validRealm(realm: string): bool {
  if (realm.length == 0 || realm.length > 256) return false;
  for (let i = 0; i < realm.length; i++) {
    const c = realm.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c == 0x22 || c == 0x5c) return false;
  }
  return true;
}

export function readSettings(buf: ArrayBuffer): Settings | null {
  const r = new ConfigReader("identity");
  const cfg = r.parse(buf);
  if (cfg === null) {
    r.report();
    return null;
  }
  const s = new Settings();
  r.onlyKnown(cfg, "identity", [
    "sources", "groups", "map", "anonymous", "key_auth_anonymous", "realm", "jwt_namespace", "jwt_payload_key", "max_consumer_length", "max_groups",
  ]);
  const jwtNs = r.str(cfg, "jwt_namespace", "identity", JWT_NAMESPACE);
  const payloadKey = r.str(cfg, "jwt_payload_key", "identity", JWT_PAYLOAD_KEY);
  if (r.ok && (jwtNs.length == 0 || payloadKey.length == 0)) r.fail("identity", "jwt_namespace and jwt_payload_key must not be empty");
  s.maxConsumerLength = <i32>r.int(cfg, "max_consumer_length", "identity", 128, 1, MAX_CONSUMER_LENGTH);
  s.maxGroups = <i32>r.int(cfg, "max_groups", "identity", 16, 1, MAX_GROUPS);
  s.realm = r.str(cfg, "realm", "identity", "sluice");
  if (r.ok && !validRealm(s.realm)) r.fail("identity.realm", "must be 1 to 256 printable ASCII characters without quotes or backslashes");
  s.anonymous = r.str(cfg, "anonymous", "identity", "");
  if (r.ok && s.anonymous.length && !validConsumer(s.anonymous, s.maxConsumerLength)) r.fail("identity.anonymous", "'" + s.anonymous + "' is not a valid consumer name");
  s.keyAuthAnonymous = r.str(cfg, "key_auth_anonymous", "identity", "");

  const sources = r.array(cfg, "sources", "identity", true);
  if (r.ok && sources.length == 0) r.fail("identity.sources", "must list at least one source");
  for (let i = 0; i < sources.length && r.ok; i++) {
    const src = readSource(r, sources[i], "identity.sources[" + i.toString() + "]", jwtNs, payloadKey, true);
    if (src !== null) s.sources.push(src);
  }
  const groups = cfg.get("groups");
  if (groups !== null && r.ok) s.groups = readSource(r, groups, "identity.groups", jwtNs, payloadKey, false);

  const map = r.stringMap(cfg, "map", "identity", "identities to consumer names");
  for (let i = 0; i + 1 < map.length && r.ok; i += 2) {
    if (!validConsumer(map[i + 1], s.maxConsumerLength)) r.fail("identity.map." + map[i], "'" + map[i + 1] + "' is not a valid consumer name");
    s.map.set(map[i], map[i + 1]);
  }
  if (!r.report()) return null;
  s.allowed = defineMetric(METRIC_COUNTER, "sluice.identity.allowed");
  s.denied = defineMetric(METRIC_COUNTER, "sluice.identity.denied");
  return s;
}
