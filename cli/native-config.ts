// gateway.yaml's sections for Envoy's own filters (auth.jwt, auth.ext_authz, cors, rbac,
// request_rate_limit): what the schema cannot check, normalised for cli/render/native-filters.ts.
// The schema has already refused unknown fields and wrong types; every problem here names its field.
import { envoyDuration } from "./duration.js";

type Path = (string | number)[];
type Fail = (path: Path, message: string, keyOf?: string) => void;

/** Envoy's dynamic metadata namespace of jwt_authn, and the key its verified payload is written under. */
export const JWT_METADATA_NAMESPACE = "envoy.filters.http.jwt_authn";
export const JWT_PAYLOAD_KEY = "jwt_payload";
/** ... and the key of a failed verification's {code, message} (failed_status_in_metadata). */
export const JWT_FAILURE_KEY = "jwt_failure";

export interface JwtProvider {
  name: string;
  issuer: string;
  audiences: string[];
  /** A remote JWKS: the URL, parsed, with Envoy durations. */
  remote: { url: URL; cacheDuration: string; timeout: string } | null;
  /** A local JWKS: a file path or the JSON inline. */
  local: { file: string } | { inline: string } | null;
  fromHeaders: { name: string; valuePrefix?: string }[] | null;
  forward: boolean;
  claimToHeaders: { claim: string; header: string }[];
  clockSkewSeconds: number;
}

export interface JwtRule {
  prefix: string;
  /** Provider names; empty: the path passes unverified. */
  requires: string[];
  allowMissing: boolean;
}

export interface ExtAuthz {
  http: { url: URL; upstreamHeaders: string[] } | null;
  grpc: { address: string; port: number } | null;
  timeout: string;
  failureModeAllow: boolean;
  allowedHeaders: string[];
}

export interface Cors {
  /** Each origin as a matcher: exact, a subdomain wildcard (regex) or any. */
  allowOrigins: ({ exact: string } | { regex: string } | { any: true })[];
  allowMethods: string[];
  allowHeaders: string[];
  exposeHeaders: string[];
  maxAgeSeconds: number;
  allowCredentials: boolean;
}

export interface RbacPolicy {
  name: string;
  consumers?: string[];
  claims?: Record<string, string[]>;
  headers?: Record<string, string[]>;
  paths?: string[];
  methods?: string[];
}

export interface Bucket {
  /** What tells clients apart (consumer bucket only): consumer, claim:<name> or header:<name>. */
  key?: string;
  requests: number;
  burst: number;
  /** Envoy duration. */
  per: string;
}

export interface NativeConfig {
  jwt: { providers: JwtProvider[]; rules: JwtRule[] } | null;
  extAuthz: ExtAuthz | null;
  cors: Cors | null;
  rbac: { action: "ALLOW" | "DENY"; policies: RbacPolicy[] } | null;
  requestRateLimit: { listener: Bucket | null; consumer: Bucket | null; maxConsumers: number; headers: boolean } | null;
}

/** Request headers the OpenAI and Anthropic SDKs send from a browser (their own and their x-stainless-* ones). */
export const CORS_DEFAULT_ALLOW_HEADERS = [
  "authorization", "content-type", "x-api-key", "anthropic-version", "anthropic-beta", "anthropic-dangerous-direct-browser-access",
  "openai-organization", "openai-project", "x-stainless-arch", "x-stainless-lang", "x-stainless-os", "x-stainless-package-version",
  "x-stainless-retry-count", "x-stainless-runtime", "x-stainless-runtime-version", "x-stainless-timeout",
];
/** Response headers a page may read by default: Sluice's and the rate limits'. */
export const CORS_DEFAULT_EXPOSE_HEADERS = [
  "x-request-id", "retry-after", "x-sluice-route", "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens",
  "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset",
];

/** Envoy's local_ratelimit refills no faster than every 50 ms (LocalRateLimit.token_bucket, local_rate_limit.proto). */
const MIN_FILL_SECONDS = 0.05;

function seconds(d: string): number {
  return Number(envoyDuration(d).slice(0, -1));
}

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** A URL of an auth service or JWKS: parsed, http(s), no credentials in it; https unless `plainOk` or the host is loopback. */
function serviceUrl(v: string, path: Path, fail: Fail, plainOk: boolean): URL | null {
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    fail(path, `${JSON.stringify(v)} is not a valid URL`);
    return null;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return fail(path, `must be an http or https URL (got ${url.protocol})`), null;
  if (url.username || url.password) return fail(path, "must not carry a user name or password (they would be written into envoy.yaml)"), null;
  if (url.protocol === "http:" && !plainOk && !LOOPBACK.has(url.hostname)) {
    return fail(path, "must be https: keys fetched over plain http could be replaced on the way (http is accepted only for localhost)"), null;
  }
  return url;
}

function checkJwt(j: any, fail: Fail): NativeConfig["jwt"] {
  const at = (...p: Path): Path => ["auth", "jwt", ...p];
  const providers: JwtProvider[] = [];
  const names = new Map<string, number>();
  (j.providers as any[]).forEach((p, i) => {
    const pp = (...x: Path) => at("providers", i, ...x);
    if (names.has(p.name)) fail(pp("name"), `duplicate provider name '${p.name}' (also providers[${names.get(p.name)}])`);
    names.set(p.name, i);
    const issuer = String(p.issuer);
    if (issuer.trim() !== issuer || issuer === "") fail(pp("issuer"), "must not be blank or start or end with white space");
    else if (/^[a-z][a-z0-9+.-]*:/i.test(issuer) && !/^urn:/i.test(issuer)) {
      // An issuer that is a URL (OIDC's are) must be one: a typo here rejects every token.
      let url: URL | null = null;
      try {
        url = new URL(issuer);
      } catch {
        fail(pp("issuer"), `${JSON.stringify(issuer)} is not a valid URL`);
      }
      if (url && url.protocol !== "https:" && !(url.protocol === "http:" && LOOPBACK.has(url.hostname))) fail(pp("issuer"), "an issuer URL must be https (OpenID Connect), or http on localhost");
    }
    if ((p.remote_jwks === undefined) === (p.local_jwks === undefined)) fail(pp(), "give remote_jwks or local_jwks, exactly one (where the issuer's public keys come from)");
    let remote: JwtProvider["remote"] = null;
    if (p.remote_jwks !== undefined) {
      const url = serviceUrl(p.remote_jwks.url, pp("remote_jwks", "url"), fail, false);
      const cache = p.remote_jwks.cache_duration ?? "10m";
      if (seconds(cache) < 0.001) fail(pp("remote_jwks", "cache_duration"), "must be at least 1ms (Envoy's RemoteJwks.cache_duration)");
      const timeout = p.remote_jwks.timeout ?? "5s";
      if (seconds(timeout) === 0) fail(pp("remote_jwks", "timeout"), "must be above 0");
      if (url) remote = { url, cacheDuration: envoyDuration(cache), timeout: envoyDuration(timeout) };
    }
    let local: JwtProvider["local"] = null;
    if (p.local_jwks !== undefined) {
      const l = p.local_jwks;
      if ((l.file === undefined) === (l.inline === undefined)) fail(pp("local_jwks"), "give file or inline, exactly one");
      else if (l.inline !== undefined) {
        let keys: unknown;
        try {
          keys = JSON.parse(l.inline)?.keys;
        } catch (e) {
          fail(pp("local_jwks", "inline"), `is not JSON: ${(e as Error).message}`);
          keys = null;
        }
        if (keys !== null && (!Array.isArray(keys) || keys.length === 0)) fail(pp("local_jwks", "inline"), 'must be a JWKS: {"keys": [ ...at least one key... ]}');
        else if (Array.isArray(keys) && keys.some((k: any) => k?.d !== undefined || k?.p !== undefined || k?.k !== undefined)) {
          // A private or symmetric key would be written into envoy.yaml.
          fail(pp("local_jwks", "inline"), "holds a private or symmetric key (d, p or k): give only public keys, or use file");
        }
        local = { inline: l.inline };
      } else local = { file: l.file };
    }
    const headerNames = new Set<string>();
    (p.claim_to_headers ?? []).forEach((c: any, k: number) => {
      const h = c.header.toLowerCase();
      if (headerNames.has(h)) fail(pp("claim_to_headers", k, "header"), `'${h}' is listed twice`);
      headerNames.add(h);
    });
    providers.push({
      name: p.name,
      issuer,
      audiences: p.audiences ?? [],
      remote,
      local,
      fromHeaders: p.from_headers ? p.from_headers.map((h: any) => ({ name: h.name, ...(h.value_prefix !== undefined ? { valuePrefix: h.value_prefix } : {}) })) : null,
      forward: p.forward ?? false,
      claimToHeaders: (p.claim_to_headers ?? []).map((c: any) => ({ claim: c.claim, header: c.header.toLowerCase() })),
      clockSkewSeconds: Math.round(seconds(p.clock_skew ?? "60s")),
    });
  });
  const rules: JwtRule[] = [];
  if (j.rules === undefined) rules.push({ prefix: "/", requires: providers.map((p) => p.name), allowMissing: false });
  else {
    (j.rules as any[]).forEach((r, i) => {
      const requires: string[] = r.requires ?? providers.map((p) => p.name);
      requires.forEach((n, k) => {
        if (!names.has(n)) fail(at("rules", i, "requires", k), `no provider named '${n}' (providers: ${[...names.keys()].join(", ")})`);
      });
      if (r.allow_missing && requires.length === 0) fail(at("rules", i, "allow_missing"), "has no effect with requires: [] (the path is not checked at all)");
      rules.push({ prefix: r.prefix, requires, allowMissing: r.allow_missing ?? false });
    });
  }
  return { providers, rules };
}

function checkExtAuthz(e: any, fail: Fail): ExtAuthz | null {
  const at = (...p: Path): Path => ["auth", "ext_authz", ...p];
  if ((e.http === undefined) === (e.grpc === undefined)) {
    fail(at(), "give http or grpc, exactly one (the authorization service)");
    return null;
  }
  const timeout = e.timeout ?? "200ms";
  if (seconds(timeout) === 0) fail(at("timeout"), "must be above 0");
  let http: ExtAuthz["http"] = null;
  if (e.http) {
    // The service is inside the operator's network: plain http is normal there.
    const url = serviceUrl(e.http.url, at("http", "url"), fail, true);
    if (url && (url.search || url.hash)) fail(at("http", "url"), "must not have a query or fragment (the request's path is appended to it)");
    if (url) http = { url, upstreamHeaders: (e.http.upstream_headers ?? []).map((h: string) => h.toLowerCase()) };
  }
  return {
    http,
    grpc: e.grpc ? { address: e.grpc.address, port: e.grpc.port } : null,
    timeout: envoyDuration(timeout),
    failureModeAllow: e.failure_mode_allow ?? false,
    allowedHeaders: (e.allowed_headers ?? ["authorization"]).map((h: string) => h.toLowerCase()),
  };
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function checkCors(c: any, fail: Fail): Cors {
  const allowOrigins: Cors["allowOrigins"] = (c.allow_origins as string[]).map((o) => {
    if (o === "*") return { any: true as const };
    const m = /^(https?:\/\/)\*\.(.+)$/.exec(o);
    // https://*.example.com: one or more labels before example.com, nothing else (no path, no other port).
    if (m) return { regex: `^${escapeRegex(m[1])}[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*\\.${escapeRegex(m[2])}$` };
    return { exact: o.toLowerCase() };
  });
  if (c.allow_credentials && allowOrigins.some((o) => "any" in o)) fail(["cors", "allow_credentials"], "browsers refuse credentials with origin * : list the origins instead");
  return {
    allowOrigins,
    allowMethods: c.allow_methods ?? ["GET", "POST", "OPTIONS"],
    allowHeaders: (c.allow_headers ?? CORS_DEFAULT_ALLOW_HEADERS).map((h: string) => h.toLowerCase()),
    exposeHeaders: (c.expose_headers ?? CORS_DEFAULT_EXPOSE_HEADERS).map((h: string) => h.toLowerCase()),
    maxAgeSeconds: Math.round(seconds(c.max_age ?? "10m")),
    allowCredentials: c.allow_credentials ?? false,
  };
}

const list = (v: string | string[]): string[] => (typeof v === "string" ? [v] : v);

function checkRbac(r: any, jwtOn: boolean, fail: Fail): NativeConfig["rbac"] {
  const names = new Map<string, number>();
  const policies: RbacPolicy[] = (r.policies as any[]).map((p, i) => {
    const at = (...x: Path): Path => ["rbac", "policies", i, ...x];
    if (names.has(p.name)) fail(at("name"), `duplicate policy name '${p.name}' (also policies[${names.get(p.name)}])`);
    names.set(p.name, i);
    if (!["consumers", "claims", "headers", "paths", "methods"].some((k) => p[k] !== undefined)) {
      fail(at(), "needs at least one of consumers, claims, headers, paths, methods (otherwise it matches every request)");
    }
    if (p.claims !== undefined && !jwtOn) fail(at("claims"), "claims come from auth.jwt, which is not configured");
    const out: RbacPolicy = { name: p.name };
    if (p.consumers) out.consumers = p.consumers;
    if (p.claims) out.claims = Object.fromEntries(Object.entries(p.claims).map(([k, v]) => [k, list(v as string | string[])]));
    if (p.headers) {
      out.headers = {};
      for (const [k, v] of Object.entries(p.headers)) {
        if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(k)) fail(at("headers"), `'${k}' is not an HTTP header name`, k);
        out.headers[k.toLowerCase()] = list(v as string | string[]);
      }
    }
    if (p.paths) out.paths = p.paths;
    if (p.methods) out.methods = p.methods;
    return out;
  });
  return { action: r.action === "deny" ? "DENY" : "ALLOW", policies };
}

function checkBucket(b: any, path: Path, fail: Fail): Bucket {
  const per = seconds(b.per);
  if (per < MIN_FILL_SECONDS) fail([...path, "per"], "must be at least 50ms (Envoy's local rate limit refills no faster)");
  if (b.burst !== undefined && b.burst < b.requests) fail([...path, "burst"], `must be at least requests (${b.requests}): the bucket could never hold one refill`);
  return { ...(b.key !== undefined ? { key: b.key } : {}), requests: b.requests, burst: b.burst ?? b.requests, per: envoyDuration(b.per) };
}

function checkRequestRateLimit(r: any, jwtOn: boolean, fail: Fail): NativeConfig["requestRateLimit"] {
  if (r.listener === undefined && r.consumer === undefined) {
    fail(["request_rate_limit"], "give listener, consumer or both (the buckets)");
    return null;
  }
  const listener = r.listener ? checkBucket(r.listener, ["request_rate_limit", "listener"], fail) : null;
  const consumer = r.consumer ? { ...checkBucket(r.consumer, ["request_rate_limit", "consumer"], fail), key: r.consumer.key ?? "consumer" } : null;
  if (consumer?.key.startsWith("claim:") && !jwtOn) fail(["request_rate_limit", "consumer", "key"], "claims come from auth.jwt, which is not configured");
  // No relation between the two intervals is needed: each bucket refills at its own rate, timer-free
  // (source/extensions/filters/common/local_ratelimit/local_ratelimit_impl.cc, LocalRateLimiterImpl;
  // the proto's note that a descriptor's fill_interval be a multiple of the filter's is older than that).
  return { listener, consumer, maxConsumers: r.max_consumers ?? 10000, headers: r.headers ?? true };
}

/** The native sections of a gateway.yaml that passed the schema. */
export function checkNative(data: any, fail: Fail): NativeConfig {
  const jwt = data.auth?.jwt ? checkJwt(data.auth.jwt, fail) : null;
  return {
    jwt,
    extAuthz: data.auth?.ext_authz ? checkExtAuthz(data.auth.ext_authz, fail) : null,
    cors: data.cors ? checkCors(data.cors, fail) : null,
    rbac: data.rbac ? checkRbac(data.rbac, jwt !== null, fail) : null,
    requestRateLimit: data.request_rate_limit ? checkRequestRateLimit(data.request_rate_limit, jwt !== null, fail) : null,
  };
}
