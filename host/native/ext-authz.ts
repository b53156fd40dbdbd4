// envoy.filters.http.ext_authz (envoy.extensions.filters.http.ext_authz.v3.ExtAuthz) with an HTTP
// authorization service, in the local gateway. As Envoy does (source/extensions/filters/http/ext_authz/
// ext_authz.cc Filter::decodeHeaders / onComplete, and filters/common/ext_authz/ext_authz_http_impl.cc
// RawHttpClientImpl, ClientConfig::toRequestMatchers / toClientMatchers / toUpstreamMatchers):
// - The check: a request to http_service.server_uri.cluster with the client's method, path_prefix +
//   path, authority, `content-length: 0` and no body, carrying the headers :method, :path, host and
//   authorization plus those matched by allowed_headers (authorization_request.allowed_headers or the
//   top-level allowed_headers), and authorization_request.headers_to_add; timeout server_uri.timeout.
// - 200: allowed. Headers of the answer matched by allowed_upstream_headers replace the request's,
//   allowed_upstream_headers_to_append are added to it, allowed_client_headers_on_success go on the
//   response, and dynamic_metadata_from_headers become dynamic metadata of namespace
//   envoy.filters.http.ext_authz (header name -> value).
// - Another status below 500: denied. A local reply with the service's status and body, the answer's
//   headers matched by allowed_client_headers (none listed: all but host; listed: those plus
//   :status, content-length, www-authenticate and location), details ext_authz_denied, flag UAEX.
// - No answer (connection failure, timeout) or a 5xx: an error. failure_mode_allow: the request goes
//   on (with `x-envoy-auth-failure-mode-allowed: true` when failure_mode_allow_header_add). Else a
//   local reply with status_on_error (default 403 Forbidden), no body, details ext_authz_error, flag UAEX.
// - An ExtAuthzPerRoute with disabled: true in the route's (else the virtual host's)
//   typed_per_filter_config turns the check off for the route (Filter::decodeHeaders skipCheckForRoute).
// The gRPC service, with_request_body, check_settings and the rest are refused.
import { getFirst, type HeaderList } from "../headers.js";
import { startHttpCall } from "../http-call.js";
import { checkType, duration, fail, list, obj, only, type NativeCallbacks, type NativeFilter, type NativeStreamFilter } from "./filter.js";
import { httpStatus, removeHeader, setHeader, stringMatcher, type StringMatch } from "./match.js";

export const EXT_AUTHZ_TYPE = "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz";
export const EXT_AUTHZ_METADATA = "envoy.filters.http.ext_authz";
export const EXT_AUTHZ_PER_ROUTE_TYPE = "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute";

/** envoy.type.matcher.v3.ListStringMatcher {patterns} matched on lower-case header names. */
function listMatcher(v: unknown, at: string): StringMatch[] {
  if (v === undefined) return [];
  const l = obj(v, at);
  only(l, at, ["patterns"]);
  return list(l.patterns, `${at}.patterns`).map((p, i) => stringMatcher(p, `${at}.patterns[${i}]`));
}

const anyOf = (ms: StringMatch[], name: string) => ms.some((m) => m(name));

export class ExtAuthzFilter implements NativeFilter {
  readonly cluster: string;
  readonly authority: string;
  readonly pathPrefix: string;
  readonly timeoutMs: number;
  readonly allowedHeaders: StringMatch[];
  readonly headersToAdd: [string, string][];
  readonly upstream: StringMatch[];
  readonly upstreamAppend: StringMatch[];
  readonly client: StringMatch[];
  readonly clientOnSuccess: StringMatch[];
  readonly metadataFromHeaders: StringMatch[];
  readonly failureModeAllow: boolean;
  readonly failureModeAllowHeaderAdd: boolean;
  readonly statusOnError: number;
  /** The route's ExtAuthzPerRoute says disabled: true. */
  readonly disabled: boolean = false;

  /** @param perRoute the ExtAuthzPerRoute of the route's (else the virtual host's) typed_per_filter_config */
  constructor(
    readonly name: string,
    typedConfig: unknown,
    at = "typed_config",
    perRoute?: { config: unknown; at: string },
  ) {
    const c = obj(typedConfig, at);
    checkType(c, EXT_AUTHZ_TYPE, at);
    only(c, at, ["@type", "http_service", "transport_api_version", "failure_mode_allow", "failure_mode_allow_header_add", "status_on_error", "stat_prefix", "allowed_headers"]);
    if (c.transport_api_version !== undefined && c.transport_api_version !== "V3") fail(`${at}.transport_api_version`, "expected V3");
    const hs = obj(c.http_service, `${at}.http_service`);
    only(hs, `${at}.http_service`, ["server_uri", "path_prefix", "authorization_request", "authorization_response"]);
    const su = obj(hs.server_uri, `${at}.http_service.server_uri`);
    only(su, `${at}.http_service.server_uri`, ["uri", "cluster", "timeout"]);
    if (typeof su.cluster !== "string" || !su.cluster) fail(`${at}.http_service.server_uri.cluster`, "required");
    this.cluster = su.cluster;
    try {
      this.authority = new URL(String(su.uri)).host;
    } catch {
      fail(`${at}.http_service.server_uri.uri`, "expected a URL");
    }
    this.timeoutMs = duration(su.timeout, `${at}.http_service.server_uri.timeout`);
    this.pathPrefix = String(hs.path_prefix ?? "");
    if (this.pathPrefix && !this.pathPrefix.startsWith("/")) fail(`${at}.http_service.path_prefix`, "must start with /");
    const rq = obj(hs.authorization_request ?? {}, `${at}.http_service.authorization_request`);
    only(rq, `${at}.http_service.authorization_request`, ["allowed_headers", "headers_to_add"]);
    this.allowedHeaders = [...listMatcher(rq.allowed_headers, `${at}.http_service.authorization_request.allowed_headers`), ...listMatcher(c.allowed_headers, `${at}.allowed_headers`)];
    this.headersToAdd = list(rq.headers_to_add, `${at}.http_service.authorization_request.headers_to_add`).map((h, i) => {
      const hat = `${at}.http_service.authorization_request.headers_to_add[${i}]`;
      only(obj(h, hat), hat, ["key", "value"]);
      if (typeof h.key !== "string" || !h.key) fail(`${hat}.key`, "required");
      return [h.key.toLowerCase(), String(h.value ?? "")] as [string, string];
    });
    const rs = obj(hs.authorization_response ?? {}, `${at}.http_service.authorization_response`);
    const rat = `${at}.http_service.authorization_response`;
    only(rs, rat, ["allowed_upstream_headers", "allowed_upstream_headers_to_append", "allowed_client_headers", "allowed_client_headers_on_success", "dynamic_metadata_from_headers"]);
    this.upstream = listMatcher(rs.allowed_upstream_headers, `${rat}.allowed_upstream_headers`);
    this.upstreamAppend = listMatcher(rs.allowed_upstream_headers_to_append, `${rat}.allowed_upstream_headers_to_append`);
    this.client = listMatcher(rs.allowed_client_headers, `${rat}.allowed_client_headers`);
    this.clientOnSuccess = listMatcher(rs.allowed_client_headers_on_success, `${rat}.allowed_client_headers_on_success`);
    this.metadataFromHeaders = listMatcher(rs.dynamic_metadata_from_headers, `${rat}.dynamic_metadata_from_headers`);
    this.failureModeAllow = c.failure_mode_allow === true;
    this.failureModeAllowHeaderAdd = c.failure_mode_allow_header_add === true;
    this.statusOnError = c.status_on_error === undefined ? 403 : httpStatus(c.status_on_error, `${at}.status_on_error`);
    if (perRoute) {
      const pr = obj(perRoute.config, perRoute.at);
      checkType(pr, EXT_AUTHZ_PER_ROUTE_TYPE, perRoute.at);
      only(pr, perRoute.at, ["@type", "disabled"]);
      this.disabled = pr.disabled === true;
    }
  }

  /** The check request's headers (RawHttpClientImpl::check). */
  checkHeaders(req: HeaderList): HeaderList {
    const out: HeaderList = [];
    for (const [k, v] of req) {
      if (k === "content-length") continue;
      const always = k === ":method" || k === ":path" || k === ":authority" || k === "authorization";
      if (!always && !anyOf(this.allowedHeaders, k)) continue;
      out.push([k, k === ":path" ? this.pathPrefix + v : v]);
    }
    out.push(["content-length", "0"], ...this.headersToAdd);
    return out;
  }

  /** toClientMatchers for a denied answer. */
  clientHeader(name: string): boolean {
    if (!this.client.length) return name !== "host" && name !== ":authority";
    return anyOf(this.client, name) || name === "content-length" || name === "www-authenticate" || name === "location";
  }

  newStreamFilter(cb: NativeCallbacks): NativeStreamFilter {
    let cancel: (() => void) | null = null;
    let gone = false;
    let onSuccess: HeaderList = [];
    return {
      decodeHeaders: (headers) => {
        if (this.disabled) return "continue";
        const cluster = cb.host.clusters.get(this.cluster);
        const call = cluster ? startHttpCall(cluster, this.checkHeaders(headers), Buffer.alloc(0), this.timeoutMs) : null;
        cancel = call?.cancel ?? null;
        cb.async(call ? call.done : Promise.resolve(null), (res) => {
          cancel = null;
          if (gone) return;
          const status = res ? Number(getFirst(res.headers, ":status")) : 0;
          if (!res || !(status >= 200 && status < 500)) {
            if (this.failureModeAllow) {
              if (this.failureModeAllowHeaderAdd) setHeader(headers, "x-envoy-auth-failure-mode-allowed", "true");
              cb.continueDecoding();
              return;
            }
            cb.sendLocalReply({ status: this.statusOnError, body: "", details: "ext_authz_error", responseFlag: "UAEX" });
            return;
          }
          const answer = res.headers.filter(([k]) => !k.startsWith(":"));
          if (status !== 200) {
            const hs = answer.filter(([k]) => k !== "content-length" && this.clientHeader(k));
            cb.sendLocalReply({ status, body: res.body.toString("utf8"), headers: hs, details: "ext_authz_denied", responseFlag: "UAEX" });
            return;
          }
          for (const [k, v] of answer) {
            if (anyOf(this.upstream, k)) setHeader(headers, k, v);
            else if (anyOf(this.upstreamAppend, k)) headers.push([k, v]);
          }
          onSuccess = answer.filter(([k]) => anyOf(this.clientOnSuccess, k));
          const md = Object.fromEntries(answer.filter(([k]) => anyOf(this.metadataFromHeaders, k)));
          if (Object.keys(md).length) cb.setDynamicMetadata(EXT_AUTHZ_METADATA, md);
          cb.continueDecoding();
        });
        return "stop";
      },
      encodeHeaders: (headers) => {
        for (const [k, v] of onSuccess) {
          removeHeader(headers, k);
          headers.push([k, v]);
        }
      },
      onDestroy: () => {
        gone = true;
        cancel?.();
      },
    };
  }
}
