// envoy.filters.http.rbac (envoy.extensions.filters.http.rbac.v3.RBAC) in the local gateway, with
// Envoy's semantics:
// - RoleBasedAccessControlFilter::decodeHeaders (source/extensions/filters/http/rbac/rbac_filter.cc):
//   no rules: allowed; denied: a local reply 403 "RBAC: access denied" whose response_code_details
//   are rbac_access_denied_matched_policy[<policy>] (Filters::Common::RBAC::responseDetail,
//   filters/common/rbac/utility.cc: the DENY policy that matched, or "none" when no ALLOW policy
//   did; whitespace made _).
// - RoleBasedAccessControlEngineImpl::handleAction (filters/common/rbac/engine_impl.cc): ALLOW
//   allows when a policy matches, DENY allows when none does. A policy matches when one of its
//   permissions and one of its principals match (PolicyMatcher); policies are tried in the order
//   written (Envoy's map order is its own; only the name in the details can differ).
// - Matchers (filters/common/rbac/matchers.cc): permissions any, header, url_path (the path without
//   query), and_rules, or_rules, not_rule; principals any, authenticated (the peer certificate's
//   URI SANs, then DNS SANs, then subject; no certificate: no match), header, metadata (the stream's
//   dynamic metadata, e.g. jwt_authn's payload), and_ids, or_ids, not_id.
// - An RBACPerRoute in the route's (else the virtual host's) typed_per_filter_config under the filter's
//   name replaces the filter's rules (RoleBasedAccessControlFilterConfig::engine; its rbac unset:
//   no rules, every request allowed).
// shadow_rules, LOG and the CEL / IP / filter-state matchers are refused.
import type { HeaderList } from "../headers.js";
import type { FilterMetadata, Json } from "../proto.js";
import type { StreamInfo } from "../stream-info.js";
import { checkType, fail, list, obj, only, type NativeCallbacks, type NativeFilter, type NativeStreamFilter } from "./filter.js";
import { headerMatcher, metadataValue, stringMatcher, valueMatcher } from "./match.js";
import { getFirst } from "../headers.js";

export const RBAC_TYPE = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC";
/** The namespace of the filter's dynamic metadata, whatever the filter's name in http_filters. */
const RBAC_METADATA = "envoy.filters.http.rbac";
export const RBAC_PER_ROUTE_TYPE = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute";

/** What a rule reads: the request headers, the stream's info (dynamic metadata, TLS) and filter state. */
type Check = (headers: HeaderList, info: StreamInfo, filterState: Map<string, Buffer>) => boolean;

/**
 * Envoy's two rule trees (matchers.cc Matcher::create): a one-key object that is `any`, `header`, a
 * set (every / some member), a negation, or one of the tree's own leaves. Permissions and principals
 * differ only in the names of the set and negation keys and in their leaves.
 */
interface RuleTree {
  /** "permission" / "principal", for the refusal; `what` names one entry for "give exactly one". */
  name: string;
  what: string;
  and: string;
  or: string;
  /** The set's member list: rules / ids. */
  members: string;
  not: string;
  /** The tree's own leaves; null for a key it does not have. */
  leaf(k: string, v: Record<string, unknown>, at: string): Check | null;
  /** What the local gateway runs, for the refusal. */
  runs: string;
}

function rule(tree: RuleTree, v: unknown, at: string): Check {
  const p = obj(v, at);
  const keys = Object.keys(p);
  if (keys.length !== 1) fail(at, `give exactly one ${tree.what}`);
  const k = keys[0];
  if (k === "any") {
    if (p.any !== true) fail(`${at}.any`, "must be true");
    return () => true;
  }
  if (k === "header") return headerMatcher(p.header, `${at}.header`);
  if (k === tree.and || k === tree.or) {
    const s = obj(p[k], `${at}.${k}`);
    only(s, `${at}.${k}`, [tree.members]);
    const members = list(s[tree.members], `${at}.${k}.${tree.members}`).map((r, i) => rule(tree, r, `${at}.${k}.${tree.members}[${i}]`));
    return k === tree.and ? (h, i, s) => members.every((r) => r(h, i, s)) : (h, i, s) => members.some((r) => r(h, i, s));
  }
  if (k === tree.not) {
    const inner = rule(tree, p[k], `${at}.${k}`);
    return (h, i, s) => !inner(h, i, s);
  }
  return tree.leaf(k, p, at) ?? fail(`${at}.${k}`, `the local gateway does not run this ${tree.name} (it runs ${tree.runs})`);
}

const PERMISSIONS: RuleTree = {
  name: "permission",
  what: "permission rule",
  and: "and_rules",
  or: "or_rules",
  members: "rules",
  not: "not_rule",
  runs: "any, header, url_path, and_rules, or_rules, not_rule",
  leaf(k, p, at) {
    if (k !== "url_path") return null;
    const pm = obj(p.url_path, `${at}.url_path`);
    only(pm, `${at}.url_path`, ["path"]);
    const sm = stringMatcher(pm.path, `${at}.url_path.path`);
    return (h) => sm((getFirst(h, ":path") ?? "").split(/[?#]/)[0]);
  },
};

const PRINCIPALS: RuleTree = {
  name: "principal",
  what: "principal",
  and: "and_ids",
  or: "or_ids",
  members: "ids",
  not: "not_id",
  runs: "any, authenticated, header, metadata, sourced_metadata, filter_state, and_ids, or_ids, not_id",
  leaf(k, p, at) {
    if (k === "metadata") return metadataMatcher(p.metadata, `${at}.metadata`);
    if (k === "sourced_metadata") {
      // matchers.cc MetadataMatcher with a source (Envoy >= 1.33): DYNAMIC (the default) reads the
      // stream's dynamic metadata; ROUTE (the route's metadata) is refused.
      const sm = obj(p.sourced_metadata, `${at}.sourced_metadata`);
      only(sm, `${at}.sourced_metadata`, ["metadata_matcher", "metadata_source"]);
      if ((sm.metadata_source ?? "DYNAMIC") !== "DYNAMIC") fail(`${at}.sourced_metadata.metadata_source`, "the local gateway reads DYNAMIC metadata only");
      return metadataMatcher(sm.metadata_matcher, `${at}.sourced_metadata.metadata_matcher`);
    }
    if (k === "filter_state") return filterStateMatcher(p.filter_state, `${at}.filter_state`);
    if (k !== "authenticated") return null;
    const a = obj(p.authenticated, `${at}.authenticated`);
    only(a, `${at}.authenticated`, ["principal_name"]);
    const sm = a.principal_name === undefined ? null : stringMatcher(a.principal_name, `${at}.authenticated.principal_name`);
    return (_h, info) => {
      const tls = info.downstreamTls;
      if (!tls?.peerCertificatePresented && !tls?.subjectPeerCertificate) return false;
      if (!sm) return true;
      // AuthenticatedMatcher::matches: URI SANs, then DNS SANs, then the subject.
      const uris = tls.uriSanPeerCertificate ?? [];
      if (uris.length) return uris.some(sm);
      const dns = tls.dnsSanPeerCertificate ?? [];
      if (dns.length) return dns.some(sm);
      return sm(tls.subjectPeerCertificate ?? "");
    };
  },
};

/**
 * envoy.type.matcher.v3.FilterStateMatcher (source/common/common/matchers.cc FilterStateMatcher::match):
 * the object under `key`, serialized as a string (a proxy-wasm property set as wasm.<name> serializes
 * to its bytes), against the string matcher; no object: no match.
 */
function filterStateMatcher(v: unknown, at: string): Check {
  const m = obj(v, at);
  only(m, at, ["key", "string_match"]);
  if (typeof m.key !== "string" || !m.key) fail(`${at}.key`, "required");
  if (m.string_match === undefined) fail(at, "the local gateway runs string_match (address_match is refused)");
  const sm = stringMatcher(m.string_match, `${at}.string_match`);
  return (_h, _i, state) => {
    const value = state.get(m.key);
    return value !== undefined && sm(value.toString("utf8"));
  };
}

/** envoy.type.matcher.v3.MetadataMatcher against the stream's dynamic metadata. */
function metadataMatcher(v: unknown, at: string): Check {
  const m = obj(v, at);
  only(m, at, ["filter", "path", "value", "invert"]);
  if (typeof m.filter !== "string" || !m.filter) fail(`${at}.filter`, "required");
  const path = list(m.path, `${at}.path`).map((s, i) => {
    only(obj(s, `${at}.path[${i}]`), `${at}.path[${i}]`, ["key"]);
    return String(s.key);
  });
  if (!path.length) fail(`${at}.path`, "required");
  const vm = valueMatcher(m.value, `${at}.value`);
  const invert = m.invert === true;
  return (_h, info) => vm(metadataValue(info.dynamicMetadata as FilterMetadata, m.filter, path)) !== invert;
}

interface Policy {
  name: string;
  matches: Check;
}

export class RbacFilter implements NativeFilter {
  /** null: no rules (every request allowed). */
  readonly action: "ALLOW" | "DENY" | null;
  readonly policies: Policy[];
  /** rules_stat_prefix: it also prefixes the keys of the dynamic metadata the filter writes. */
  readonly rulesStatPrefix: string;

  /** @param perRoute the RBACPerRoute of the route's (else the virtual host's) typed_per_filter_config */
  constructor(
    readonly name: string,
    typedConfig: unknown,
    at = "typed_config",
    perRoute?: { config: unknown; at: string },
  ) {
    let c = obj(typedConfig, at);
    checkType(c, RBAC_TYPE, at);
    // track_per_rule_stats only adds stats, which the local gateway does not keep for these filters.
    only(c, at, ["@type", "rules", "shadow_rules_stat_prefix", "rules_stat_prefix", "track_per_rule_stats"]);
    this.rulesStatPrefix = typeof c.rules_stat_prefix === "string" ? c.rules_stat_prefix : "";
    if (perRoute) {
      const pr = obj(perRoute.config, perRoute.at);
      checkType(pr, RBAC_PER_ROUTE_TYPE, perRoute.at);
      only(pr, perRoute.at, ["@type", "rbac"]);
      at = `${perRoute.at}.rbac`;
      c = pr.rbac === undefined ? {} : obj(pr.rbac, at);
      only(c, at, ["rules", "shadow_rules_stat_prefix", "rules_stat_prefix", "track_per_rule_stats"]);
    }
    if (c.rules === undefined) {
      this.action = null;
      this.policies = [];
      return;
    }
    const r = obj(c.rules, `${at}.rules`);
    only(r, `${at}.rules`, ["action", "policies"]);
    const action = r.action ?? "ALLOW";
    if (action !== "ALLOW" && action !== "DENY") fail(`${at}.rules.action`, `the local gateway runs ALLOW and DENY, not ${JSON.stringify(action)}`);
    this.action = action;
    this.policies = Object.entries(obj(r.policies ?? {}, `${at}.rules.policies`)).map(([name, pv]) => {
      const pat = `${at}.rules.policies.${name}`;
      const p = obj(pv, pat);
      only(p, pat, ["permissions", "principals"]);
      const perms = list(p.permissions, `${pat}.permissions`).map((x, i) => rule(PERMISSIONS, x, `${pat}.permissions[${i}]`));
      const princ = list(p.principals, `${pat}.principals`).map((x, i) => rule(PRINCIPALS, x, `${pat}.principals[${i}]`));
      if (!perms.length || !princ.length) fail(pat, "needs at least one permission and one principal");
      return { name, matches: (h, i, st) => perms.some((f) => f(h, i, st)) && princ.some((f) => f(h, i, st)) };
    });
  }

  newStreamFilter(cb: NativeCallbacks): NativeStreamFilter {
    return {
      decodeHeaders: (headers) => {
        if (this.action === null) return "continue";
        const matched = this.policies.find((p) => p.matches(headers, cb.stream.info, cb.stream.filterState));
        const allowed = this.action === "ALLOW" ? matched !== undefined : matched === undefined;
        // rbac_filter.cc RoleBasedAccessControlFilter::decodeHeaders: the enforced engine's result as
        // dynamic metadata of envoy.filters.http.rbac, its keys prefixed with rules_stat_prefix:
        // <prefix>enforced_engine_result ("allowed" / "denied") and <prefix>enforced_effective_policy_id
        // (the policy that matched, when one did). A local_reply_config mapper can match on it.
        const md: Record<string, string> = {};
        if (matched) md[`${this.rulesStatPrefix}enforced_effective_policy_id`] = matched.name;
        md[`${this.rulesStatPrefix}enforced_engine_result`] = allowed ? "allowed" : "denied";
        cb.setDynamicMetadata(RBAC_METADATA, md);
        if (allowed) return "continue";
        const policy = this.action === "DENY" ? matched!.name : "none";
        cb.sendLocalReply({ status: 403, body: "RBAC: access denied", details: `rbac_access_denied_matched_policy[${policy.replace(/\s/g, "_")}]` });
        return "stop";
      },
    };
  }
}
