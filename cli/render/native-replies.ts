// Local reply mappers for the denials of Envoy's own filters (native-filters.ts): Envoy answers them in
// plain text ("Jwt is expired", "RBAC: access denied", "local_rate_limited"); these mappers give the
// client the same status in its own API's error shape, so an OpenAI or Anthropic SDK can parse it.
// Each matches only what its filter leaves behind, never a Sluice filter's reply (already shaped):
// - jwt_authn: the failure status it writes to dynamic metadata (failed_status_in_metadata), which
//   authenticator.cc AuthenticatorImpl::doneWithStatus writes when it knows the provider: the one a
//   token named, or the only one configured. A request with no token at all under a rule that accepts
//   several providers leaves none, and keeps Envoy's plain 401. doneWithStatus also writes it for a
//   failure that does not deny the request (one provider of requires_any failing before another
//   passes, a missing token under allow_missing), and verifier.cc completeWithStatus keeps it in the
//   metadata of a request that goes on; so the mapper also asks for no verified payload (every
//   rendered rule that denies has verified none) and for jwt_authn's statuses (401, 403), and comes
//   after the other denials' mappers: a later rbac, ext_authz or rate limit reply of such a request
//   is shaped as what it is.
// - rbac: <rules_stat_prefix>enforced_engine_result "denied" in its dynamic metadata
//   (source/extensions/filters/common/rbac/utility.h DynamicMetadataKeys).
// - local_ratelimit: 429 with response flag RL (local_ratelimit filter.cc Filter::decodeHeaders).
// - ext_authz: response flag UAEX (a denial, or the service failing with failure_mode_allow false).
import type { GatewayConfig } from "../gateway-config.js";
import { JWT_FAILURE_KEY, JWT_METADATA_NAMESPACE, JWT_PAYLOAD_KEY } from "../native-config.js";
import { shapedMappers, statusIs, type ShapedReply } from "./local-reply.js";
import { RBAC_FILTER, RBAC_STAT_PREFIX } from "./native-filters.js";

/** A dynamic metadata entry; absent means no match (MetadataFilter matches an absent key by default). */
function metadata(filter: string, key: string, value: unknown) {
  return { metadata_filter: { matcher: { filter, path: [{ key }], value }, match_if_key_not_found: false } };
}

/** No dynamic metadata entry under the key: an absent key matches (match_if_key_not_found), a present
 * one only if it is null (null_match), which jwt_authn's payload, a struct, never is. */
function noMetadata(filter: string, key: string) {
  return { metadata_filter: { matcher: { filter, path: [{ key }], value: { null_match: {} } }, match_if_key_not_found: true } };
}

export function nativeReplyMappers(cfg: GatewayConfig): unknown[] {
  const n = cfg.native;
  const denials: ShapedReply[] = [];
  if (n.extAuthz) {
    const flag = { response_flag_filter: { flags: ["UAEX"] } };
    denials.push({ when: [statusIs(401, "ext_authz_unauthenticated"), flag], message: "The authorization service did not accept the request's credentials.", openai: { type: "invalid_request_error", code: "invalid_credentials" }, anthropic: "authentication_error" });
    denials.push({ when: [flag], message: "The authorization service denied the request.", openai: { type: "invalid_request_error", code: "access_denied" }, anthropic: "permission_error" });
  }
  if (n.rbac) {
    denials.push({
      when: [metadata(RBAC_FILTER, `${RBAC_STAT_PREFIX}enforced_engine_result`, { string_match: { exact: "denied" } })],
      message: "Access denied by the gateway's access rules.",
      openai: { type: "invalid_request_error", code: "access_denied" },
      anthropic: "permission_error",
    });
  }
  if (n.requestRateLimit) {
    // Envoy's global rate limit filter (distributed token limits) leaves the same status and flag, and
    // a mapper cannot tell the two apart (their details differ, which no AccessLogFilter reads): with
    // both in the chain the message names both.
    const both = !!cfg.aiRatelimit?.distributed;
    denials.push({
      when: [statusIs(429, "request_rate_limited"), { response_flag_filter: { flags: ["RL"] } }],
      message: both ? "Too many requests: the gateway's request or token rate limit was reached." : "Too many requests: the gateway's request rate limit was reached.",
      openai: { type: "requests", code: "rate_limit_exceeded" },
      anthropic: "rate_limit_error",
    });
  }
  if (n.jwt) {
    // filter.cc Filter::onComplete: 401, or 403 for a wrong audience.
    const jwtStatus = { or_filter: { filters: [statusIs(401, "jwt_denied"), statusIs(403, "jwt_audience_denied")] } };
    denials.push({
      when: [metadata(JWT_METADATA_NAMESPACE, JWT_FAILURE_KEY, { present_match: true }), noMetadata(JWT_METADATA_NAMESPACE, JWT_PAYLOAD_KEY), jwtStatus],
      openai: { type: "invalid_request_error", code: "invalid_token" },
      anthropic: "authentication_error",
    });
  }
  return denials.flatMap(shapedMappers);
}
