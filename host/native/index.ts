// Envoy's native http filters the local gateway runs, by the @type of their typed_config.
import { CORS_POLICY_TYPE, CORS_TYPE, CorsFilter, parseCorsPolicy, type CorsPolicy } from "./cors.js";
import { EXT_AUTHZ_PER_ROUTE_TYPE, EXT_AUTHZ_TYPE, ExtAuthzFilter } from "./ext-authz.js";
import { fail, type NativeFilter } from "./filter.js";
import { HEADER_MUTATION_PER_ROUTE_TYPE, HEADER_MUTATION_TYPE, HeaderMutationFilter } from "./header-mutation.js";
import { JWT_AUTHN_PER_ROUTE_TYPE, JWT_AUTHN_TYPE, JwtAuthnFilter } from "./jwt-authn.js";
import { LOCAL_RATELIMIT_TYPE, LocalRateLimitFilter } from "./local-ratelimit.js";
import { RBAC_PER_ROUTE_TYPE, RBAC_TYPE, RbacFilter } from "./rbac.js";

export { NativeConfigError, type NativeFilter } from "./filter.js";
export { parseCorsPolicy, type CorsPolicy };

export const NATIVE_TYPES = [JWT_AUTHN_TYPE, RBAC_TYPE, CORS_TYPE, LOCAL_RATELIMIT_TYPE, EXT_AUTHZ_TYPE, HEADER_MUTATION_TYPE];

/** The per-route config types a filter reads from typed_per_filter_config (the filter's @type -> the
 * per-route @type). */
export const PER_ROUTE_TYPES: Record<string, string> = {
  [CORS_TYPE]: CORS_POLICY_TYPE,
  [JWT_AUTHN_TYPE]: JWT_AUTHN_PER_ROUTE_TYPE,
  [RBAC_TYPE]: RBAC_PER_ROUTE_TYPE,
  [LOCAL_RATELIMIT_TYPE]: LOCAL_RATELIMIT_TYPE,
  [EXT_AUTHZ_TYPE]: EXT_AUTHZ_PER_ROUTE_TYPE,
  [HEADER_MUTATION_TYPE]: HEADER_MUTATION_PER_ROUTE_TYPE,
};

/**
 * One http filter from its typed_config. `perRoute`: what the route's, then the virtual host's,
 * typed_per_filter_config hold under the filter's name (CORS reads both, in that order; the others
 * the most specific).
 */
export function nativeFilter(name: string, typedConfig: any, at: string, perRoute: { config: unknown; at: string }[] = []): NativeFilter {
  switch (typedConfig?.["@type"]) {
    case JWT_AUTHN_TYPE:
      return new JwtAuthnFilter(name, typedConfig, at, perRoute[0]);
    case RBAC_TYPE:
      return new RbacFilter(name, typedConfig, at, perRoute[0]);
    case CORS_TYPE:
      return new CorsFilter(name, typedConfig, perRoute.map((p) => parseCorsPolicy(p.config, p.at)), at);
    case LOCAL_RATELIMIT_TYPE:
      return new LocalRateLimitFilter(name, typedConfig, at, perRoute[0]);
    case EXT_AUTHZ_TYPE:
      return new ExtAuthzFilter(name, typedConfig, at, perRoute[0]);
    case HEADER_MUTATION_TYPE:
      return new HeaderMutationFilter(name, typedConfig, at, perRoute[0]);
    default:
      return fail(at, `not a native filter the local gateway runs: ${String(typedConfig?.["@type"])}`);
  }
}
