// envoy.filters.http.jwt_authn (envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication) in the
// local gateway. Signatures are checked by the `jose` library against the provider's JWKS (inline, or
// fetched from a cluster); everything around the signature follows Envoy:
// - Filter::decodeHeaders / Filter::onComplete (source/extensions/filters/http/jwt_authn/filter.cc):
//   the first rule whose match fits the path picks the requirement (no rule: the request passes);
//   bypass_cors_preflight lets a CORS preflight through; a failure is a local reply 401 (403 for
//   "Audiences in Jwt are not allowed") whose body is the status string, with
//   `www-authenticate: Bearer realm="<scheme>://<host><path>"` (path cut at 256 characters) plus
//   `, error="invalid_token"` unless the JWT is missing, and response_code_details
//   jwt_authn_access_denied{<status, spaces made _>}. strip_failure_response: empty body, no header.
// - The status strings: source/common/jwt/status.cc getStatusString ("Jwt is missing",
//   "Jwt is expired", "Jwt verification fails", ...).
// - Extraction (extractor.cc ExtractorImpl): from_headers with value_prefix (the token starts at the
//   first base64url character after the prefix), from_params; neither given: `authorization: Bearer`
//   and the access_token query parameter. forward_payload_header and claim_to_headers names are
//   removed from the request first (sanitizeHeaders).
// - Verification (authenticator.cc AuthenticatorImpl::startVerify): parse (Jwt::parseFromString,
//   source/common/jwt/jwt.cc), issuer allowed, time (Jwt::verifyTimeConstraint: nbf > now + skew is
//   "not yet valid", exp set and now > exp + skew is "expired"; skew clock_skew_seconds, default 60),
//   audiences (none configured: any; else one of the JWT's, compared without http(s):// and a
//   trailing /, as jwt_verify_lib's CheckAudience), then the signature. On success
//   (handleGoodJwt): forward_payload_header, claim_to_headers (strings, integers, booleans), the token
//   removed unless forward, header_in_metadata / payload_in_metadata into the dynamic metadata of
//   namespace envoy.filters.http.jwt_authn. Every token found must verify.
// - Requirements (verifier.cc): provider_name, provider_and_audiences, requires_any (OK at the first
//   success, else the last failure), requires_all (the first failure), allow_missing,
//   allow_missing_or_failed, and {} (allow all); a rule's requirement_name names one of
//   requirement_map (filter_config.cc FilterConfigImpl: an unknown name is a config error).
// - A PerRouteConfig in the route's (else the virtual host's) typed_per_filter_config replaces the
//   rules (FilterConfigImpl::findPerRouteVerifier): disabled, or requirement_name from
//   requirement_map; an unknown name answers 403 "Failed JWT authentication: Wrong requirement_name:
//   <name>. It should be one of [<sorted names>]".
import { readFileSync } from "node:fs";
import { compactVerify, createLocalJWKSet, errors, type JSONWebKeySet } from "jose";
import { getFirst, type HeaderList } from "../headers.js";
import { startHttpCall } from "../http-call.js";
import type { JsonObject } from "../proto.js";
import { checkType, duration, fail, list, obj, only, uint, type NativeCallbacks, type NativeFilter, type NativeHost, type NativeStreamFilter } from "./filter.js";
import { removeHeader } from "./match.js";

export const JWT_AUTHN_TYPE = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication";
export const JWT_AUTHN_METADATA = "envoy.filters.http.jwt_authn";
export const JWT_AUTHN_PER_ROUTE_TYPE = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig";

const S = {
  Ok: "OK",
  JwtMissed: "Jwt is missing",
  JwtNotYetValid: "Jwt not yet valid",
  JwtExpired: "Jwt is expired",
  JwtBadFormat: "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
  JwtHeaderParseErrorBadBase64: "Jwt header is an invalid Base64url encoded",
  JwtHeaderParseErrorBadJson: "Jwt header is an invalid JSON",
  JwtHeaderBadAlg: "Jwt header [alg] field is required and must be a string",
  JwtHeaderNotImplementedAlg: "Jwt header [alg] is not supported",
  JwtHeaderBadKid: "Jwt header [kid] field is not a string",
  JwtPayloadParseErrorBadBase64: "Jwt payload is an invalid Base64url encoded",
  JwtPayloadParseErrorBadJson: "Jwt payload is an invalid JSON",
  JwtPayloadParseErrorIssNotString: "Jwt payload [iss] field is not a string",
  JwtPayloadParseErrorSubNotString: "Jwt payload [sub] field is not a string",
  JwtPayloadParseErrorIatNotInteger: "Jwt payload [iat] field is not an integer",
  JwtPayloadParseErrorNbfNotInteger: "Jwt payload [nbf] field is not an integer",
  JwtPayloadParseErrorExpNotInteger: "Jwt payload [exp] field is not an integer",
  JwtPayloadParseErrorJtiNotString: "Jwt payload [jti] field is not a string",
  JwtPayloadParseErrorAudNotString: "Jwt payload [aud] field is not a string or string list",
  JwtSignatureParseErrorBadBase64: "Jwt signature is an invalid Base64url encoded",
  JwtUnknownIssuer: "Jwt issuer is not configured",
  JwtAudienceNotAllowed: "Audiences in Jwt are not allowed",
  JwtVerificationFail: "Jwt verification fails",
  JwksParseError: "Jwks is an invalid JSON",
  JwksNoKeys: "Jwks does not have [keys] field",
  JwksBadKeys: "[keys] in Jwks is not an array",
  JwksNoValidKeys: "Jwks doesn't have any valid public key",
  JwksKidAlgMismatch: "Jwks doesn't have key to match kid or alg from Jwt",
  JwksFetchFail: "Jwks remote fetch is failed",
} as const;
type Status = (typeof S)[keyof typeof S];

/** The Status enum's numbers (source/common/jwt/status.h, enum class Status, in declaration order),
 * which failed_status_in_metadata writes as `code` (authenticator.cc doneWithStatus: enumToInt). */
const CODE: Record<Status, number> = {
  [S.Ok]: 0, [S.JwtMissed]: 1, [S.JwtNotYetValid]: 2, [S.JwtExpired]: 3, [S.JwtBadFormat]: 4,
  [S.JwtHeaderParseErrorBadBase64]: 5, [S.JwtHeaderParseErrorBadJson]: 6, [S.JwtHeaderBadAlg]: 7,
  [S.JwtHeaderNotImplementedAlg]: 8, [S.JwtHeaderBadKid]: 9, [S.JwtPayloadParseErrorBadBase64]: 10,
  [S.JwtPayloadParseErrorBadJson]: 11, [S.JwtPayloadParseErrorIssNotString]: 12, [S.JwtPayloadParseErrorSubNotString]: 13,
  [S.JwtPayloadParseErrorIatNotInteger]: 14, [S.JwtPayloadParseErrorNbfNotInteger]: 16, [S.JwtPayloadParseErrorExpNotInteger]: 18,
  [S.JwtPayloadParseErrorJtiNotString]: 20, [S.JwtPayloadParseErrorAudNotString]: 21, [S.JwtSignatureParseErrorBadBase64]: 22,
  [S.JwtUnknownIssuer]: 24, [S.JwtAudienceNotAllowed]: 25, [S.JwtVerificationFail]: 26, [S.JwksParseError]: 28,
  [S.JwksNoKeys]: 29, [S.JwksBadKeys]: 30, [S.JwksNoValidKeys]: 31, [S.JwksKidAlgMismatch]: 32, [S.JwksFetchFail]: 40,
};

// jwt.cc isImplemented.
const ALGS = new Set(["ES256", "ES384", "ES512", "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"]);
const B64URL = /^[A-Za-z0-9_-]*$/;

interface Parsed {
  token: string;
  header: JsonObject;
  payload: JsonObject;
  payloadB64: string;
  iss: string;
  audiences: string[];
  nbf: number;
  exp: number;
}

function b64json(part: string): { ok: true; v: unknown } | { ok: false; bad: "base64" | "json" } {
  if (!B64URL.test(part)) return { ok: false, bad: "base64" };
  try {
    return { ok: true, v: JSON.parse(Buffer.from(part, "base64url").toString("utf8")) };
  } catch {
    return { ok: false, bad: "json" };
  }
}

const isObj = (v: unknown): v is JsonObject => v !== null && typeof v === "object" && !Array.isArray(v);

/** Jwt::parseFromString (source/common/jwt/jwt.cc). */
function parseJwt(token: string): Parsed | Status {
  if ((token.match(/\./g) ?? []).length !== 2) return S.JwtBadFormat;
  const parts = token.split(".");
  if (parts.some((p) => p === "")) return S.JwtBadFormat;
  const h = b64json(parts[0]);
  if (!h.ok) return h.bad === "base64" ? S.JwtHeaderParseErrorBadBase64 : S.JwtHeaderParseErrorBadJson;
  if (!isObj(h.v)) return S.JwtHeaderParseErrorBadJson;
  if (typeof h.v.alg !== "string") return S.JwtHeaderBadAlg;
  if (!ALGS.has(h.v.alg)) return S.JwtHeaderNotImplementedAlg;
  if (h.v.kid !== undefined && typeof h.v.kid !== "string") return S.JwtHeaderBadKid;
  const p = b64json(parts[1]);
  if (!p.ok) return p.bad === "base64" ? S.JwtPayloadParseErrorBadBase64 : S.JwtPayloadParseErrorBadJson;
  if (!isObj(p.v)) return S.JwtPayloadParseErrorBadJson;
  const pl = p.v;
  if (pl.iss !== undefined && typeof pl.iss !== "string") return S.JwtPayloadParseErrorIssNotString;
  if (pl.sub !== undefined && typeof pl.sub !== "string") return S.JwtPayloadParseErrorSubNotString;
  const int = (v: unknown) => v === undefined || (typeof v === "number" && Number.isInteger(v));
  if (!int(pl.iat)) return S.JwtPayloadParseErrorIatNotInteger;
  if (!int(pl.nbf)) return S.JwtPayloadParseErrorNbfNotInteger;
  if (!int(pl.exp)) return S.JwtPayloadParseErrorExpNotInteger;
  if (pl.jti !== undefined && typeof pl.jti !== "string") return S.JwtPayloadParseErrorJtiNotString;
  let audiences: string[] = [];
  if (typeof pl.aud === "string") audiences = [pl.aud];
  else if (Array.isArray(pl.aud) && pl.aud.every((a) => typeof a === "string")) audiences = pl.aud as string[];
  else if (pl.aud !== undefined) return S.JwtPayloadParseErrorAudNotString;
  if (!B64URL.test(parts[2])) return S.JwtSignatureParseErrorBadBase64;
  return {
    token,
    header: h.v,
    payload: pl,
    payloadB64: parts[1],
    iss: (pl.iss as string | undefined) ?? "",
    audiences,
    nbf: (pl.nbf as number | undefined) ?? 0,
    exp: (pl.exp as number | undefined) ?? 0,
  };
}

/** jwt_verify_lib CheckAudience: the scheme and a trailing slash do not count. */
function sanitizeAudience(a: string): string {
  let s = a;
  if (s.startsWith("http://")) s = s.slice(7);
  else if (s.startsWith("https://")) s = s.slice(8);
  if (s.endsWith("/")) s = s.slice(0, -1);
  return s;
}

function audiencesAllowed(allowed: string[], jwtAud: string[]): boolean {
  if (allowed.length === 0) return true;
  const set = new Set(allowed.map(sanitizeAudience));
  return jwtAud.some((a) => set.has(sanitizeAudience(a)));
}

type KeySet = ReturnType<typeof createLocalJWKSet>;

/** A JWKS as jwt_verify_lib's Jwks::createFrom checks it, then handed to jose. */
function keySetOf(text: string): KeySet | Status {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    return S.JwksParseError;
  }
  if (!isObj(j)) return S.JwksParseError;
  if (j.keys === undefined) return S.JwksNoKeys;
  if (!Array.isArray(j.keys)) return S.JwksBadKeys;
  if (j.keys.length === 0) return S.JwksNoValidKeys;
  try {
    return createLocalJWKSet(j as unknown as JSONWebKeySet);
  } catch {
    return S.JwksNoValidKeys;
  }
}

interface Provider {
  name: string;
  issuer: string;
  audiences: string[];
  forward: boolean;
  fromHeaders: { name: string; prefix: string }[];
  fromParams: string[];
  forwardPayloadHeader: string;
  padForwardPayloadHeader: boolean;
  payloadInMetadata: string;
  headerInMetadata: string;
  failedStatusInMetadata: string;
  claimToHeaders: { header: string; claim: string }[];
  clockSkewSeconds: number;
  local: KeySet | Status | null;
  /** asyncRefetchMs: remote_jwks.async_fetch's failed_refetch_duration (null: no async_fetch). */
  remote: { cluster: string; path: string; authority: string; timeoutMs: number; cacheMs: number; asyncRefetchMs: number | null } | null;
  /** The remote JWKS and when it expires (host clock, ns). */
  cached: { keys: KeySet | Status; until: bigint } | null;
  fetching: Promise<KeySet | Status> | null;
}

function parseProvider(name: string, v: unknown, at: string): Provider {
  const p = obj(v, at);
  only(p, at, [
    "issuer", "audiences", "local_jwks", "remote_jwks", "forward", "from_headers", "from_params", "forward_payload_header",
    "pad_forward_payload_header", "payload_in_metadata", "header_in_metadata", "failed_status_in_metadata", "claim_to_headers", "clock_skew_seconds",
  ]);
  if ((p.local_jwks === undefined) === (p.remote_jwks === undefined)) fail(at, "give exactly one of local_jwks or remote_jwks");
  let local: Provider["local"] = null;
  let remote: Provider["remote"] = null;
  if (p.local_jwks !== undefined) {
    const lj = obj(p.local_jwks, `${at}.local_jwks`);
    only(lj, `${at}.local_jwks`, ["inline_string", "filename"]);
    if ((typeof lj.inline_string === "string") === (typeof lj.filename === "string")) fail(`${at}.local_jwks`, "the local gateway reads inline_string or filename (one of them)");
    let text: string;
    if (typeof lj.filename === "string") {
      // Config::DataSource::read: the file is read when the configuration loads; one that cannot
      // be read rejects the configuration.
      try {
        text = readFileSync(lj.filename, "utf8");
      } catch (e) {
        fail(`${at}.local_jwks.filename`, `cannot read ${lj.filename}: ${(e as Error).message}`);
      }
    } else text = lj.inline_string;
    local = keySetOf(text);
  } else {
    const rj = obj(p.remote_jwks, `${at}.remote_jwks`);
    only(rj, `${at}.remote_jwks`, ["http_uri", "cache_duration", "async_fetch"]);
    let asyncRefetchMs: number | null = null;
    if (rj.async_fetch !== undefined) {
      const af = obj(rj.async_fetch, `${at}.remote_jwks.async_fetch`);
      only(af, `${at}.remote_jwks.async_fetch`, ["fast_listener", "failed_refetch_duration"]);
      // fast_listener true opens the listener before the first fetch ends; the local gateway waits
      // for it (the default, false), so true is refused rather than run differently.
      if (af.fast_listener === true) fail(`${at}.remote_jwks.async_fetch.fast_listener`, "the local gateway waits for the first fetch (true is refused)");
      // JwksAsyncFetcher: a failed fetch is retried after failed_refetch_duration, default 1 s.
      asyncRefetchMs = af.failed_refetch_duration === undefined ? 1000 : duration(af.failed_refetch_duration, `${at}.remote_jwks.async_fetch.failed_refetch_duration`);
    }
    const hu = obj(rj.http_uri, `${at}.remote_jwks.http_uri`);
    only(hu, `${at}.remote_jwks.http_uri`, ["uri", "cluster", "timeout"]);
    let url: URL;
    try {
      url = new URL(String(hu.uri));
    } catch {
      fail(`${at}.remote_jwks.http_uri.uri`, "expected a URL");
    }
    if (typeof hu.cluster !== "string" || !hu.cluster) fail(`${at}.remote_jwks.http_uri.cluster`, "required");
    remote = {
      cluster: hu.cluster,
      path: url.pathname + url.search,
      authority: url.host,
      timeoutMs: duration(hu.timeout, `${at}.remote_jwks.http_uri.timeout`),
      // JwksCache: cache_duration, default 600 s (DefaultCacheExpirationSec).
      cacheMs: rj.cache_duration === undefined ? 600_000 : duration(rj.cache_duration, `${at}.remote_jwks.cache_duration`),
      asyncRefetchMs,
    };
  }
  return {
    name,
    issuer: String(p.issuer ?? ""),
    audiences: list(p.audiences, `${at}.audiences`).map(String),
    forward: p.forward === true,
    fromHeaders: list(p.from_headers, `${at}.from_headers`).map((h, i) => {
      const hat = `${at}.from_headers[${i}]`;
      only(obj(h, hat), hat, ["name", "value_prefix"]);
      if (typeof h.name !== "string" || !h.name) fail(`${hat}.name`, "required");
      return { name: h.name.toLowerCase(), prefix: String(h.value_prefix ?? "") };
    }),
    fromParams: list(p.from_params, `${at}.from_params`).map(String),
    forwardPayloadHeader: String(p.forward_payload_header ?? "").toLowerCase(),
    padForwardPayloadHeader: p.pad_forward_payload_header === true,
    payloadInMetadata: String(p.payload_in_metadata ?? ""),
    headerInMetadata: String(p.header_in_metadata ?? ""),
    failedStatusInMetadata: String(p.failed_status_in_metadata ?? ""),
    claimToHeaders: list(p.claim_to_headers, `${at}.claim_to_headers`).map((c, i) => {
      const cat = `${at}.claim_to_headers[${i}]`;
      only(obj(c, cat), cat, ["header_name", "claim_name"]);
      if (typeof c.header_name !== "string" || !c.header_name || typeof c.claim_name !== "string" || !c.claim_name) fail(cat, "needs header_name and claim_name");
      return { header: c.header_name.toLowerCase(), claim: c.claim_name };
    }),
    clockSkewSeconds: p.clock_skew_seconds === undefined ? 0 : uint(p.clock_skew_seconds, `${at}.clock_skew_seconds`),
    local,
    remote,
    cached: null,
    fetching: null,
  };
}

type Requirement =
  | { kind: "provider"; provider: Provider; audiences: string[] | null }
  | { kind: "any" | "all"; children: Requirement[] }
  | { kind: "allow_missing" | "allow_missing_or_failed"; providers: Provider[] }
  | { kind: "allow_all" };

function parseRequirement(v: unknown, at: string, providers: Map<string, Provider>, parentProviders: Provider[] = []): Requirement {
  const r = obj(v, at);
  only(r, at, ["provider_name", "provider_and_audiences", "requires_any", "requires_all", "allow_missing", "allow_missing_or_failed"]);
  const kinds = Object.keys(r);
  if (kinds.length > 1) fail(at, "give one requirement kind");
  const byName = (n: unknown, nat: string): Provider => {
    const p = providers.get(String(n));
    // verifier.cc innerCreate: "Required provider ['<name>'] is not configured."
    if (!p) fail(nat, `Required provider ['${String(n)}'] is not configured.`);
    return p;
  };
  switch (kinds[0]) {
    case undefined:
      return { kind: "allow_all" };
    case "provider_name":
      return { kind: "provider", provider: byName(r.provider_name, `${at}.provider_name`), audiences: null };
    case "provider_and_audiences": {
      const pa = obj(r.provider_and_audiences, `${at}.provider_and_audiences`);
      only(pa, `${at}.provider_and_audiences`, ["provider_name", "audiences"]);
      return { kind: "provider", provider: byName(pa.provider_name, `${at}.provider_and_audiences.provider_name`), audiences: list(pa.audiences, `${at}.provider_and_audiences.audiences`).map(String) };
    }
    case "requires_all": {
      const l = obj(r.requires_all, `${at}.requires_all`);
      only(l, `${at}.requires_all`, ["requirements"]);
      return { kind: "all", children: list(l.requirements, `${at}.requires_all.requirements`).map((c, i) => parseRequirement(c, `${at}.requires_all.requirements[${i}]`, providers)) };
    }
    case "requires_any": {
      // AnyVerifierImpl: the regular requirements in order, then one allow_missing(_or_failed)
      // (allow_missing_or_failed wins) over the providers the others named.
      const l = obj(r.requires_any, `${at}.requires_any`);
      only(l, `${at}.requires_any`, ["requirements"]);
      const reqs = list(l.requirements, `${at}.requires_any.requirements`);
      const used: Provider[] = [];
      let bypass: { v: unknown; at: string; kind: string } | null = null;
      const children: Requirement[] = [];
      reqs.forEach((c, i) => {
        const cat = `${at}.requires_any.requirements[${i}]`;
        const co = obj(c, cat);
        if (co.allow_missing !== undefined || co.allow_missing_or_failed !== undefined) {
          const kind = co.allow_missing_or_failed !== undefined ? "allow_missing_or_failed" : "allow_missing";
          if (bypass === null || bypass.kind === "allow_missing") bypass = { v: c, at: cat, kind };
          return;
        }
        if (co.provider_name !== undefined) used.push(byName(co.provider_name, `${cat}.provider_name`));
        if (co.provider_and_audiences !== undefined) used.push(byName(co.provider_and_audiences?.provider_name, `${cat}.provider_and_audiences.provider_name`));
        children.push(parseRequirement(c, cat, providers));
      });
      if (bypass) children.push(parseRequirement((bypass as { v: unknown }).v, (bypass as { at: string }).at, providers, used));
      return { kind: "any", children };
    }
    case "allow_missing":
    case "allow_missing_or_failed":
      return { kind: kinds[0], providers: parentProviders };
    default:
      return fail(at, `unknown requirement ${kinds[0]}`);
  }
}

interface Rule {
  match: (path: string) => boolean;
  requirement: Requirement;
}

function parseRule(v: unknown, at: string, providers: Map<string, Provider>, named: Map<string, Requirement>): Rule {
  const r = obj(v, at);
  only(r, at, ["match", "requires", "requirement_name"]);
  const m = obj(r.match, `${at}.match`);
  only(m, `${at}.match`, ["prefix", "path"]);
  let match: Rule["match"];
  // RouteMatcher on the path without its query (PathUtil::removeQueryAndFragment), as a route does.
  const bare = (p: string) => p.split(/[?#]/)[0];
  if (typeof m.prefix === "string") match = (p) => bare(p).startsWith(m.prefix);
  else if (typeof m.path === "string") match = (p) => bare(p) === m.path;
  else fail(`${at}.match`, "the local gateway matches rules by prefix or path");
  if (r.requirement_name !== undefined) {
    const req = named.get(String(r.requirement_name));
    if (!req) fail(`${at}.requirement_name`, wrongName(String(r.requirement_name), named));
    return { match, requirement: req };
  }
  // No requirement at all: the rule matches and nothing is verified (a null verifier).
  return { match, requirement: r.requires === undefined ? { kind: "allow_all" } : parseRequirement(r.requires, `${at}.requires`, providers) };
}

function wrongName(name: string, named: Map<string, Requirement>): string {
  return `Wrong requirement_name: ${name}. It should be one of [${[...named.keys()].sort().join(",")}]`;
}

interface Location {
  token: string;
  /** The provider issuers that name this location ("" in the list: any issuer). */
  issuers: Set<string>;
  remove: (headers: HeaderList) => void;
}

/** ExtractorImpl::extract for a set of providers (one for provider_name, several for allow_missing). */
function extract(providers: Provider[], headers: HeaderList): Location[] {
  const headerLocs = new Map<string, { name: string; prefix: string; issuers: Set<string> }>();
  const paramLocs = new Map<string, Set<string>>();
  for (const p of providers) {
    const hs = p.fromHeaders.length || p.fromParams.length ? p.fromHeaders : [{ name: "authorization", prefix: "Bearer " }];
    const ps = p.fromHeaders.length || p.fromParams.length ? p.fromParams : ["access_token"];
    for (const h of hs) {
      const key = h.name + h.prefix;
      const loc = headerLocs.get(key) ?? { ...h, issuers: new Set<string>() };
      loc.issuers.add(p.issuer);
      headerLocs.set(key, loc);
    }
    for (const q of ps) paramLocs.set(q, (paramLocs.get(q) ?? new Set()).add(p.issuer));
  }
  const out: Location[] = [];
  // std::map order: by header name + prefix.
  for (const [, loc] of [...headerLocs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    for (const [k, value] of headers) {
      if (k !== loc.name) continue;
      let token = value;
      if (loc.prefix) {
        const pos = value.indexOf(loc.prefix);
        if (pos < 0) continue;
        // extractJWT: from the first base64url character (or dot) after the prefix.
        const rest = value.slice(pos + loc.prefix.length);
        const start = rest.search(/[A-Za-z0-9_.-]/);
        token = start < 0 ? value : rest.slice(start);
      }
      out.push({ token, issuers: loc.issuers, remove: (h) => removeHeader(h, loc.name) });
    }
  }
  const path = getFirst(headers, ":path");
  if (paramLocs.size && path !== undefined) {
    const q = path.indexOf("?");
    const params = new URLSearchParams(q < 0 ? "" : path.slice(q + 1).split("#")[0]);
    for (const [name, issuers] of [...paramLocs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const v = params.get(name);
      if (v === null) continue;
      out.push({
        token: v,
        issuers,
        remove: (h) => {
          const cur = getFirst(h, ":path") ?? "";
          const i = cur.indexOf("?");
          if (i < 0) return;
          const ps = new URLSearchParams(cur.slice(i + 1));
          ps.delete(name);
          const qs = ps.toString();
          removeHeader(h, ":path");
          h.unshift([":path", cur.slice(0, i) + (qs ? `?${qs}` : "")]);
        },
      });
    }
  }
  return out;
}

/** addJWTClaimToHeader (authenticator.cc): a claim (a.b for nested) that is a string, number, boolean,
 * list or object; null or absent: no header. */
function claimString(payload: JsonObject, claim: string): string {
  let v: unknown = payload;
  for (const part of claim.split(".")) {
    if (!isObj(v)) return "";
    v = v[part];
  }
  if (typeof v === "string") return v;
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "number") {
    // convertClaimDoubleToString: whole non-negative numbers as integers, others as std::to_string.
    return Number.isInteger(v) && v >= 0 ? String(v) : v.toFixed(6);
  }
  // A list or an object: its compact JSON (ProtobufUtil::MessageToJsonString), base64-encoded
  // (Envoy::Base64::encode, standard alphabet with padding). Object keys keep the token's order.
  if (v !== null && typeof v === "object") return Buffer.from(JSON.stringify(v)).toString("base64");
  return "";
}

/** A cache entry of the async fetcher: it does not expire. */
const NEVER = 2n ** 63n;

/** JwksAsyncFetcher: after a good fetch the next one comes 5 s before the cache would expire
 * (RefetchBeforeExpiredSec), when cache_duration is longer than that. */
const goodRefetchMs = (cacheMs: number) => (cacheMs > 5000 ? cacheMs - 5000 : cacheMs);

export class JwtAuthnFilter implements NativeFilter {
  readonly providers = new Map<string, Provider>();
  readonly named = new Map<string, Requirement>();
  readonly rules: Rule[];
  readonly bypassCorsPreflight: boolean;
  readonly stripFailureResponse: boolean;
  /** The route's PerRouteConfig: what replaces the rules (null: the rules decide). */
  readonly perRoute: { requirement: Requirement | null } | { error: string } | null = null;

  /** @param perRoute the PerRouteConfig of the route's (else the virtual host's) typed_per_filter_config */
  constructor(
    readonly name: string,
    typedConfig: unknown,
    at = "typed_config",
    perRoute?: { config: unknown; at: string },
  ) {
    const c = obj(typedConfig, at);
    checkType(c, JWT_AUTHN_TYPE, at);
    only(c, at, ["@type", "providers", "rules", "requirement_map", "bypass_cors_preflight", "strip_failure_response"]);
    for (const [n, p] of Object.entries(obj(c.providers ?? {}, `${at}.providers`))) this.providers.set(n, parseProvider(n, p, `${at}.providers.${n}`));
    for (const [n, r] of Object.entries(obj(c.requirement_map ?? {}, `${at}.requirement_map`))) this.named.set(n, parseRequirement(r, `${at}.requirement_map.${n}`, this.providers));
    this.rules = list(c.rules, `${at}.rules`).map((r, i) => parseRule(r, `${at}.rules[${i}]`, this.providers, this.named));
    if (perRoute) {
      const pr = obj(perRoute.config, perRoute.at);
      checkType(pr, JWT_AUTHN_PER_ROUTE_TYPE, perRoute.at);
      only(pr, perRoute.at, ["@type", "disabled", "requirement_name"]);
      if (pr.disabled === true) this.perRoute = { requirement: null };
      else {
        const req = this.named.get(String(pr.requirement_name ?? ""));
        this.perRoute = req ? { requirement: req } : { error: wrongName(String(pr.requirement_name ?? ""), this.named) };
      }
    }
    this.bypassCorsPreflight = c.bypass_cors_preflight === true;
    this.stripFailureResponse = c.strip_failure_response === true;
  }

  newStreamFilter(cb: NativeCallbacks): NativeStreamFilter {
    return new JwtAuthnStream(this, cb);
  }

  /** The provider's keys: inline, or the cached remote JWKS (fetched through its cluster when stale). */
  keys(p: Provider, host: NativeHost): Promise<KeySet | Status> {
    // An invalid local JWKS leaves the provider without keys (jwks_cache.cc JwksDataImpl: "Invalid
    // inline jwks", a warning), and authenticator.cc startVerify answers JwksNoValidKeys.
    if (p.local) return Promise.resolve(typeof p.local === "string" ? S.JwksNoValidKeys : p.local);
    const r = p.remote!;
    // Keys the async fetcher brought never expire on the request path (jwks_cache.cc JwksDataImpl::
    // setJwksToAllThreads: expire_ = time_point::max()); the next async fetch replaces them. Keys not
    // there yet, or stale, are fetched for the request (authenticator.cc startVerify) and kept
    // cache_duration (JwksDataImpl::setRemoteJwks).
    if (p.cached && p.cached.until > host.now()) return Promise.resolve(p.cached.keys);
    return this.fetch(p, host);
  }

  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;

  /**
   * remote_jwks.async_fetch (source/extensions/filters/http/jwt_authn/jwks_async_fetcher.cc
   * JwksAsyncFetcher): each such provider's JWKS is fetched when the configuration loads, again
   * cache_duration - 5 s after a good fetch, and failed_refetch_duration after a failed one. The promise
   * settles when every first fetch has ended, well or not: with fast_listener false Envoy opens the
   * listener only then, and the local gateway awaits it before it listens.
   */
  startAsyncFetch(host: NativeHost): Promise<void> {
    const refetch = (p: Provider): Promise<void> =>
      this.fetch(p, host).then((keys) => {
        if (typeof keys !== "string") p.cached = { keys, until: NEVER };
        if (this.stopped) return;
        const t = setTimeout(() => {
          this.timers.delete(t);
          void refetch(p);
        }, typeof keys === "string" ? p.remote!.asyncRefetchMs! : goodRefetchMs(p.remote!.cacheMs));
        t.unref();
        this.timers.add(t);
      });
    return Promise.all([...this.providers.values()].filter((p) => p.remote && p.remote.asyncRefetchMs !== null).map(refetch)).then(() => {});
  }

  /** Stops the async fetches' timers (the gateway closes). */
  stopAsyncFetch(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private fetch(p: Provider, host: NativeHost): Promise<KeySet | Status> {
    const r = p.remote!;
    if (p.fetching) return p.fetching;
    const cluster = host.clusters.get(r.cluster);
    if (!cluster) return Promise.resolve(S.JwksFetchFail);
    const call = startHttpCall(cluster, [[":method", "GET"], [":path", r.path], [":authority", r.authority]], Buffer.alloc(0), r.timeoutMs);
    p.fetching = call.done.then((res) => {
      p.fetching = null;
      // JwksFetcherImpl::onSuccess (source/extensions/filters/http/common/jwks_fetcher.cc): a 200
      // with a body, else a fetch failure (not cached).
      if (!res || getFirst(res.headers, ":status") !== "200" || !res.body.length) return S.JwksFetchFail;
      // A body that is not a valid JWKS is a failed fetch too (onJwksError(InvalidJwks)).
      const keys = keySetOf(res.body.toString("utf8"));
      if (typeof keys === "string") return S.JwksFetchFail;
      p.cached = { keys, until: host.now() + BigInt(r.cacheMs) * 1_000_000n };
      return keys;
    });
    return p.fetching;
  }
}

class JwtAuthnStream implements NativeStreamFilter {
  private done = false;
  private readonly payload: JsonObject = {};

  constructor(
    private readonly f: JwtAuthnFilter,
    private readonly cb: NativeCallbacks,
  ) {}

  decodeHeaders(headers: HeaderList): "continue" | "stop" {
    const method = getFirst(headers, ":method");
    if (this.f.bypassCorsPreflight && method === "OPTIONS" && getFirst(headers, "origin") && getFirst(headers, "access-control-request-method")) return "continue";
    const path = getFirst(headers, ":path") ?? "";
    let requirement: Requirement | null;
    const pr = this.f.perRoute;
    if (pr && "error" in pr) {
      // filter.cc decodeHeaders: the per-route lookup failed.
      this.done = true;
      const details = `jwt_authn_access_denied{${pr.error.replace(/\s/g, "_")}}`;
      this.cb.sendLocalReply({ status: 403, body: this.f.stripFailureResponse ? "" : `Failed JWT authentication: ${pr.error}`, details });
      return "stop";
    }
    if (pr) requirement = pr.requirement;
    else requirement = this.f.rules.find((r) => r.match(path))?.requirement ?? null;
    if (!requirement) return "continue";
    // buildOriginalUri: scheme://host + path (the path cut at 256 characters).
    const uri = `${getFirst(headers, ":scheme") ?? "http"}://${getFirst(headers, ":authority") ?? ""}${path.slice(0, 256)}`;
    this.cb.async(this.verify(requirement, headers), (status) => this.complete(status, uri));
    return "stop";
  }

  onDestroy(): void {
    this.done = true;
  }

  private complete(status: Status, uri: string): void {
    if (this.done) return;
    this.done = true;
    // verifier.cc BaseVerifierImpl::completeWithStatus: the extracted data (payloads and headers of
    // the JWTs that verified, failed_status_in_metadata of those that did not) becomes the dynamic
    // metadata of envoy.filters.http.jwt_authn whatever the outcome (Filter::setExtractedData), before
    // the filter answers, so a local_reply_config metadata_filter sees the failure.
    if (Object.keys(this.payload).length) this.cb.setDynamicMetadata(JWT_AUTHN_METADATA, this.payload);
    if (status !== S.Ok) {
      const details = `jwt_authn_access_denied{${status.replace(/\s/g, "_")}}`;
      const code = status === S.JwtAudienceNotAllowed ? 403 : 401;
      if (this.f.stripFailureResponse) {
        this.cb.sendLocalReply({ status: code, body: "", details });
        return;
      }
      const auth = `Bearer realm="${uri}"${status === S.JwtMissed ? "" : ', error="invalid_token"'}`;
      this.cb.sendLocalReply({ status: code, body: status, headers: [["www-authenticate", auth]], details });
      return;
    }
    this.cb.continueDecoding();
  }

  private async verify(req: Requirement, headers: HeaderList): Promise<Status> {
    switch (req.kind) {
      case "allow_all":
        return S.Ok;
      case "provider":
        return this.authenticate([req.provider], req.provider, req.audiences, false, false, headers);
      case "allow_missing":
      case "allow_missing_or_failed":
        return this.authenticate(req.providers, null, null, req.kind === "allow_missing_or_failed", true, headers);
      case "all":
        for (const c of req.children) {
          const s = await this.verify(c, headers);
          if (s !== S.Ok) return s;
        }
        return S.Ok;
      case "any": {
        let last: Status = S.Ok;
        for (const c of req.children) {
          last = await this.verify(c, headers);
          if (last === S.Ok) return S.Ok;
        }
        return last;
      }
    }
  }

  /** AuthenticatorImpl::verify / startVerify / doneWithStatus over every token found. */
  private async authenticate(providers: Provider[], provider: Provider | null, audiences: string[] | null, allowFailed: boolean, allowMissing: boolean, headers: HeaderList): Promise<Status> {
    // sanitizeHeaders: a client cannot send what the filter would add.
    for (const p of providers) {
      if (p.forwardPayloadHeader) removeHeader(headers, p.forwardPayloadHeader);
      for (const c of p.claimToHeaders) removeHeader(headers, c.header);
    }
    const tokens = extract(providers, headers);
    const finish = (s: Status) => (allowFailed ? S.Ok : allowMissing && s === S.JwtMissed ? S.Ok : s);
    // The provider whose data the authenticator holds (jwks_data_): the fixed one, set before the
    // token is parsed, or the one the token's issuer names.
    let known: Provider | null = null;
    const done = (s: Status): Status => {
      if (s !== S.Ok) this.failedStatus(s, known);
      return s;
    };
    if (tokens.length === 0) return finish(done(S.JwtMissed));
    // Envoy takes the tokens from the back of the list.
    for (let i = tokens.length - 1; i >= 0; i--) {
      const s = await this.verifyOne(tokens[i], provider, audiences, headers, (p) => (known = p));
      done(s);
      if ((s !== S.Ok && !allowFailed && !allowMissing) || i === 0) return finish(s);
    }
    return S.Ok;
  }

  /**
   * authenticator.cc AuthenticatorImpl::doneWithStatus: a failure is written as {code, message} under
   * the failed_status_in_metadata key of the provider the authenticator knows (the fixed one, or the
   * token issuer's), else of the only provider configured (JwksCache::getSingleProvider); none: not
   * written.
   */
  private failedStatus(s: Status, known: Provider | null): void {
    const p = known ?? (this.f.providers.size === 1 ? [...this.f.providers.values()][0] : null);
    if (p?.failedStatusInMetadata) this.payload[p.failedStatusInMetadata] = { code: CODE[s], message: s };
  }

  private async verifyOne(loc: Location, fixed: Provider | null, audiences: string[] | null, headers: HeaderList, found: (p: Provider) => void): Promise<Status> {
    if (fixed) found(fixed);
    const jwt = parseJwt(loc.token);
    if (typeof jwt === "string") return jwt;
    if (!loc.issuers.has("") && !loc.issuers.has(jwt.iss)) return S.JwtUnknownIssuer;
    // Without a fixed provider: the first provider with the JWT's issuer, else one with none.
    const p = fixed ?? [...this.f.providers.values()].find((x) => x.issuer === jwt.iss) ?? [...this.f.providers.values()].find((x) => x.issuer === "");
    if (!p) return S.JwtUnknownIssuer;
    found(p);
    const skew = p.clockSkewSeconds > 0 ? p.clockSkewSeconds : 60;
    const now = Number(this.cb.host.now() / 1_000_000_000n);
    if (now + skew < jwt.nbf) return S.JwtNotYetValid;
    if (jwt.exp && now > jwt.exp + skew) return S.JwtExpired;
    if (!audiencesAllowed(audiences ?? p.audiences, jwt.audiences)) return S.JwtAudienceNotAllowed;
    const keys = await this.f.keys(p, this.cb.host);
    if (typeof keys === "string") return keys;
    try {
      await compactVerify(jwt.token, keys);
    } catch (e) {
      if (e instanceof errors.JWKSNoMatchingKey) return S.JwksKidAlgMismatch;
      return S.JwtVerificationFail;
    }
    // handleGoodJwt.
    if (p.forwardPayloadHeader) {
      const b = jwt.payloadB64;
      headers.push([p.forwardPayloadHeader, p.padForwardPayloadHeader ? b + "=".repeat((4 - (b.length % 4)) % 4) : b]);
    }
    for (const c of p.claimToHeaders) {
      const v = claimString(jwt.payload, c.claim);
      if (v) headers.push([c.header, v]);
    }
    if (!p.forward) loc.remove(headers);
    if (p.headerInMetadata) this.payload[p.headerInMetadata] = jwt.header;
    if (p.payloadInMetadata) this.payload[p.payloadInMetadata] = jwt.payload;
    return S.Ok;
  }
}
