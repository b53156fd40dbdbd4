// envoy.filters.http.cors (envoy.extensions.filters.http.cors.v3.Cors) in the local gateway. The filter's
// own config is empty; the policy (envoy.extensions.filters.http.cors.v3.CorsPolicy) sits in the
// route's or the virtual host's typed_per_filter_config under the filter's name, the route's first
// (CorsFilter::initializeCorsPolicies: each field is taken from the first policy that sets it).
// As CorsFilter does (source/extensions/filters/http/cors/cors_filter.cc):
// - decodeHeaders: no policy, filter_enabled off, or no Origin: nothing happens. An origin is allowed
//   when one allow_origin_string_match matches it (or matches "*"). Not a preflight (OPTIONS with
//   Origin and Access-Control-Request-Method): the request goes on. A preflight from an origin that
//   is not allowed goes on to the upstream (forward_not_matching_preflights, default true); else the
//   filter answers 200 itself (decoder_callbacks_->encodeHeaders, details cors_response: not a local
//   reply, so local_reply_config does not touch it) with access-control-allow-origin (the origin, when
//   allowed), -allow-credentials "true", -allow-methods and -allow-headers ("*" echoes the request's
//   Access-Control-Request-Method / -Headers), -max-age, and -allow-private-network.
// - encodeHeaders (every response of a CORS request from an allowed origin, the filter's own answer
//   included): access-control-allow-origin, -allow-credentials, -expose-headers.
import type { HeaderList } from "../headers.js";
import { getFirst } from "../headers.js";
import { checkType, fail, list, obj, only, type NativeCallbacks, type NativeFilter, type NativeStreamFilter } from "./filter.js";
import { draw, fractionalPercent, setHeader, stringMatcher, type StringMatch } from "./match.js";

export const CORS_TYPE = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors";
export const CORS_POLICY_TYPE = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy";

export interface CorsPolicy {
  allowOrigins: StringMatch[];
  allowMethods: string;
  allowHeaders: string;
  exposeHeaders: string;
  maxAge: string;
  allowCredentials: boolean | null;
  allowPrivateNetworkAccess: boolean | null;
  forwardNotMatchingPreflights: boolean | null;
  /** filter_enabled's chance (default 100%). */
  enabled: number;
}

export function parseCorsPolicy(v: unknown, at: string): CorsPolicy {
  const p = obj(v, at);
  checkType(p, CORS_POLICY_TYPE, at);
  only(p, at, ["@type", "allow_origin_string_match", "allow_methods", "allow_headers", "expose_headers", "max_age", "allow_credentials", "allow_private_network_access", "forward_not_matching_preflights", "filter_enabled"]);
  const bool = (x: unknown, f: string) => (x === undefined ? null : typeof x === "boolean" ? x : fail(`${at}.${f}`, "expected true or false"));
  return {
    allowOrigins: list(p.allow_origin_string_match, `${at}.allow_origin_string_match`).map((m, i) => stringMatcher(m, `${at}.allow_origin_string_match[${i}]`)),
    allowMethods: String(p.allow_methods ?? ""),
    allowHeaders: String(p.allow_headers ?? ""),
    exposeHeaders: String(p.expose_headers ?? ""),
    maxAge: String(p.max_age ?? ""),
    allowCredentials: bool(p.allow_credentials, "allow_credentials"),
    allowPrivateNetworkAccess: bool(p.allow_private_network_access, "allow_private_network_access"),
    forwardNotMatchingPreflights: bool(p.forward_not_matching_preflights, "forward_not_matching_preflights"),
    enabled: p.filter_enabled === undefined ? 1 : fractionalPercent(p.filter_enabled, `${at}.filter_enabled`, true),
  };
}

export class CorsFilter implements NativeFilter {
  /**
   * @param policies the route's policy then the virtual host's (either may be absent).
   */
  constructor(
    readonly name: string,
    typedConfig: unknown,
    readonly policies: CorsPolicy[],
    at = "typed_config",
  ) {
    const c = obj(typedConfig, at);
    checkType(c, CORS_TYPE, at);
    only(c, at, ["@type"]);
  }

  private first<T>(get: (p: CorsPolicy) => T | null | "", fallback: T): T {
    for (const p of this.policies) {
      const v = get(p);
      if (v !== null && v !== "") return v as T;
    }
    return fallback;
  }

  originAllowed(origin: string): boolean {
    const origins = this.policies.find((p) => p.allowOrigins.length)?.allowOrigins ?? [];
    return origins.some((m) => m("*") || m(origin));
  }

  newStreamFilter(cb: NativeCallbacks): NativeStreamFilter {
    let latchedOrigin = "";
    let corsRequest = false;
    const allowCredentials = this.first((p) => p.allowCredentials, false);
    return {
      decodeHeaders: (headers) => {
        if (!this.policies.length || !draw(this.policies[0].enabled)) return "continue";
        const origin = getFirst(headers, "origin");
        if (!origin) return "continue";
        const allowed = this.originAllowed(origin);
        if (allowed) latchedOrigin = origin;
        corsRequest = true;
        const requestMethod = getFirst(headers, "access-control-request-method");
        if (getFirst(headers, ":method") !== "OPTIONS" || !requestMethod) return "continue";
        if (!allowed && this.first((p) => p.forwardNotMatchingPreflights, true)) return "continue";
        const out: HeaderList = [[":status", "200"]];
        if (allowed) out.push(["access-control-allow-origin", origin]);
        if (allowCredentials) out.push(["access-control-allow-credentials", "true"]);
        const methods = this.first((p) => p.allowMethods, "");
        if (methods) out.push(["access-control-allow-methods", methods === "*" ? requestMethod : methods]);
        const hdrs = this.first((p) => p.allowHeaders, "");
        if (hdrs) out.push(["access-control-allow-headers", hdrs === "*" ? (getFirst(headers, "access-control-request-headers") ?? "") : hdrs]);
        const maxAge = this.first((p) => p.maxAge, "");
        if (maxAge) out.push(["access-control-max-age", maxAge]);
        if (this.first((p) => p.allowPrivateNetworkAccess, false) && getFirst(headers, "access-control-request-private-network") === "true") {
          out.push(["access-control-allow-private-network", "true"]);
        }
        cb.respond(out, "cors_response");
        return "stop";
      },
      encodeHeaders: (headers) => {
        if (!corsRequest || !latchedOrigin) return;
        setHeader(headers, "access-control-allow-origin", latchedOrigin);
        if (allowCredentials) setHeader(headers, "access-control-allow-credentials", "true");
        const expose = this.first((p) => p.exposeHeaders, "");
        if (expose) setHeader(headers, "access-control-expose-headers", expose);
      },
    };
  }
}
