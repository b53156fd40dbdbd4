// gateway.yaml `identity`: what the schema cannot check, and the identity filter's JSON
// (assembly/filters/identity/config.ts reads it; docs/identity.md).
import type { NativeConfig } from "./native-config.js";

type Path = (string | number)[];
type Fail = (path: Path, message: string, keyOf?: string) => void;

/** The identity filter's JSON configuration, without key_auth_anonymous (render adds it). */
export type IdentityJson = Record<string, unknown>;

const KINDS = ["jwt_claim", "mtls", "metadata", "header"] as const;

/** A claim or metadata key: "a.b" is a path, a list is the path's names as they are. */
function segments(v: string | string[]): string[] {
  return Array.isArray(v) ? v : v.split(".");
}

function checkSource(src: any, at: Path, native: NativeConfig, fail: Fail, groups: boolean): Record<string, unknown> | null {
  const kinds = KINDS.filter((k) => src[k] !== undefined);
  const allowed = groups ? "jwt_claim, metadata or header" : "jwt_claim, mtls, metadata or header";
  if (kinds.length !== 1) {
    fail(at, kinds.length ? `give one of ${allowed}, not ${kinds.join(" and ")} together (list each as its own source)` : `give one of ${allowed}`);
    return null;
  }
  const kind = kinds[0];
  if (src.trusted !== undefined && kind !== "header") fail(at, "trusted applies only to a header source", "trusted");
  switch (kind) {
    case "jwt_claim": {
      const segs = segments(src.jwt_claim);
      if (segs.some((s) => s === "")) fail([...at, "jwt_claim"], `'${src.jwt_claim}' has an empty name (a.b is the claim b inside a)`);
      if (!native.jwt) {
        // Not an error: Istio's RequestAuthentication (outside gateway.yaml) may verify the token.
        return { jwt_claim: segs, warn: "auth.jwt is not configured here: the claim is read only if another jwt_authn (e.g. Istio's RequestAuthentication) verified the token" };
      }
      return { jwt_claim: segs };
    }
    case "mtls":
      if (groups) {
        fail([...at, "mtls"], "a certificate field is one value, not a source of groups");
        return null;
      }
      return { mtls: src.mtls };
    case "metadata": {
      const segs = segments(src.metadata.key);
      if (segs.some((s) => s === "")) fail([...at, "metadata", "key"], `'${src.metadata.key}' has an empty name`);
      return { metadata: { namespace: src.metadata.namespace, key: segs } };
    }
    case "header": {
      const name = String(src.header).toLowerCase();
      // Headers Envoy's own filters write are removed from the client's request before they run
      // (sluice.identity_headers, cli/render/native-filters.ts identityHeaders): safe without trusted.
      const written = (native.jwt?.providers ?? []).some((p) => p.claimToHeaders.some((c) => c.header === name)) ||
        (native.extAuthz?.http?.upstreamHeaders ?? []).includes(name);
      if (!written && src.trusted !== true) {
        fail([...at, "header"], `a client can send '${name}' itself and name any consumer: set trusted: true only if a proxy in front of the gateway removes it from every request and sets it (docs/identity.md), or take the identity from a JWT claim, the certificate or ext_authz`);
        return null;
      }
      return { header: name };
    }
  }
}

/** gateway.yaml `identity` -> the filter's JSON; null when there is no identity section. */
export function checkIdentity(
  v: any,
  native: NativeConfig,
  keyAuth: { enabled: boolean; anonymous: boolean },
  fail: Fail,
  warn: (path: Path, message: string) => void,
): IdentityJson | null {
  if (v === undefined) return null;
  const at: Path = ["identity"];
  if (keyAuth.enabled && !keyAuth.anonymous) {
    // key-auth runs first and answers 401 to a request without an API key: identity would only ever
    // see keyed requests, whose consumer it keeps.
    warn(at, "key-auth answers 401 to every request without an API key before identity runs: set filters.key_auth.anonymous to let identity decide for those, or filters.key_auth.enabled: false");
  }
  const json: IdentityJson = {};
  const warned = new Set<string>();
  const strip = (s: Record<string, unknown> | null, path: Path) => {
    if (s?.warn !== undefined) {
      if (!warned.has(String(s.warn))) warn(path, String(s.warn));
      warned.add(String(s.warn));
      delete s.warn;
    }
    return s;
  };
  json.sources = (v.sources as any[]).map((s, i) => strip(checkSource(s, [...at, "sources", i], native, fail, false), [...at, "sources", i]));
  if (v.groups !== undefined) json.groups = strip(checkSource(v.groups, [...at, "groups"], native, fail, true), [...at, "groups"]);
  const maxLength = v.max_consumer_length ?? 128;
  for (const [from, to] of Object.entries((v.map ?? {}) as Record<string, string>)) {
    if (to.length > maxLength) fail([...at, "map", from], `'${to}' is longer than max_consumer_length (${maxLength})`);
  }
  if (v.anonymous !== undefined && v.anonymous.length > maxLength) fail([...at, "anonymous"], `is longer than max_consumer_length (${maxLength})`);
  for (const k of ["map", "anonymous", "realm", "jwt_payload_key", "max_consumer_length", "max_groups"]) if (v[k] !== undefined) json[k] = v[k];
  return json;
}
