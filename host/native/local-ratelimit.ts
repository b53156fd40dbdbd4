// envoy.filters.http.local_ratelimit (envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit)
// in the local gateway: one token bucket for the listener, shared by every request, as Envoy's
// FilterConfig holds one LocalRateLimiterImpl for all workers.
// - The bucket (source/extensions/filters/common/local_ratelimit/local_ratelimit_impl.cc
//   RateLimitTokenBucket over source/common/common/token_bucket_impl.cc AtomicTokenBucketImpl): it
//   starts full (max_tokens) and fills continuously at tokens_per_fill per fill_interval (at least
//   50 ms), never above max_tokens; a request takes one whole token, less than one left: limited.
// - Filter::decodeHeaders (source/extensions/filters/http/local_ratelimit/local_ratelimit.cc):
//   filter_enabled unset or off: nothing is counted. Limited but filter_enforced unset or off: the
//   request goes on with request_headers_to_add_when_not_enforced. Enforced: a local reply with
//   `status` (default 429 Too Many Requests; a code below 400 is 429, toErrorCode), body
//   "local_rate_limited", response_code_details local_rate_limited, response flag RL, and
//   response_headers_to_add.
// - Filter::encodeHeaders: with enable_x_ratelimit_headers DRAFT_VERSION_03, every response of a
//   counted request says x-ratelimit-limit (max_tokens), x-ratelimit-remaining (whole tokens left)
//   and x-ratelimit-reset (RateLimitTokenBucket::resetSeconds: 0 while a token is left, else the
//   whole seconds one token takes to fill, AtomicTokenBucketImpl::nextTokenAvailable).
// - A LocalRateLimit in the route's (else the virtual host's) typed_per_filter_config under the filter's
//   name replaces the filter's own config, bucket included (resolveMostSpecificPerFilterConfig; a
//   per-route config must have a token_bucket, FilterConfig's constructor).
// Descriptors, rate_limits and per-connection buckets are refused.
import { checkType, duration, fail, obj, only, uint, type NativeCallbacks, type NativeFilter, type NativeHost, type NativeStreamFilter } from "./filter.js";
import { applyHeaderValues, draw, fractionalPercent, headerValueOptions, httpStatus } from "./match.js";

export const LOCAL_RATELIMIT_TYPE = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";

/** One LocalRateLimit (the filter's, or a route's) with its bucket. */
export class LocalRateLimitConfig {
  readonly status: number;
  readonly maxTokens: number;
  readonly tokensPerFill: number;
  readonly fillIntervalMs: number;
  readonly enabled: number;
  readonly enforced: number;
  readonly xRateLimitHeaders: boolean;
  readonly responseHeaders: ReturnType<typeof headerValueOptions>;
  readonly requestHeadersWhenNotEnforced: ReturnType<typeof headerValueOptions>;
  /** Tokens per second (AtomicTokenBucketImpl fill_rate_). */
  private readonly rate: number;
  private tokens: number;
  /** When the bucket was last filled (host clock, ns); null before the first request (full then). */
  private lastFillNs: bigint | null = null;

  constructor(typedConfig: unknown, at: string, perRoute: boolean) {
    const c = obj(typedConfig, at);
    checkType(c, LOCAL_RATELIMIT_TYPE, at);
    if (perRoute && c.token_bucket === undefined) fail(at, "local rate limit token bucket must be set for per filter configs");
    only(c, at, [
      "@type", "stat_prefix", "status", "token_bucket", "filter_enabled", "filter_enforced", "response_headers_to_add",
      "request_headers_to_add_when_not_enforced", "enable_x_ratelimit_headers", "always_consume_default_token_bucket", "local_rate_limit_per_downstream_connection",
    ]);
    if (typeof c.stat_prefix !== "string" || !c.stat_prefix) fail(`${at}.stat_prefix`, "required");
    if (c.local_rate_limit_per_downstream_connection === true) fail(`${at}.local_rate_limit_per_downstream_connection`, "the local gateway runs one bucket for the listener (true is refused)");
    // toErrorCode: a status below 400 is replaced by 429.
    const st = c.status === undefined ? 429 : httpStatus(c.status, `${at}.status`);
    this.status = st < 400 ? 429 : st;
    let maxTokens = 0;
    let tokensPerFill = 1;
    let fill = 0;
    if (c.token_bucket !== undefined) {
      const tb = obj(c.token_bucket, `${at}.token_bucket`);
      only(tb, `${at}.token_bucket`, ["max_tokens", "tokens_per_fill", "fill_interval"]);
      maxTokens = uint(tb.max_tokens, `${at}.token_bucket.max_tokens`);
      if (maxTokens < 1) fail(`${at}.token_bucket.max_tokens`, "must be at least 1");
      if (tb.tokens_per_fill !== undefined) tokensPerFill = uint(tb.tokens_per_fill, `${at}.token_bucket.tokens_per_fill`);
      fill = duration(tb.fill_interval, `${at}.token_bucket.fill_interval`);
      if (fill < 50) fail(`${at}.token_bucket.fill_interval`, "local rate limit token bucket fill timer must be >= 50ms");
    }
    this.maxTokens = maxTokens;
    this.tokensPerFill = tokensPerFill;
    this.fillIntervalMs = fill;
    this.tokens = maxTokens;
    // The minimal fill rate is one token a year (token_bucket_impl.cc kMinFillRate).
    this.rate = fill ? Math.max(tokensPerFill / (fill / 1000), 1 / (365 * 24 * 60 * 60)) : 0;
    this.enabled = c.filter_enabled === undefined ? 0 : fractionalPercent(c.filter_enabled, `${at}.filter_enabled`, true);
    this.enforced = c.filter_enforced === undefined ? 0 : fractionalPercent(c.filter_enforced, `${at}.filter_enforced`, true);
    const xr = c.enable_x_ratelimit_headers ?? "OFF";
    if (xr !== "OFF" && xr !== "DRAFT_VERSION_03") fail(`${at}.enable_x_ratelimit_headers`, "expected OFF or DRAFT_VERSION_03");
    this.xRateLimitHeaders = xr === "DRAFT_VERSION_03";
    this.responseHeaders = headerValueOptions(c.response_headers_to_add, `${at}.response_headers_to_add`);
    this.requestHeadersWhenNotEnforced = headerValueOptions(c.request_headers_to_add_when_not_enforced, `${at}.request_headers_to_add_when_not_enforced`);
  }

  /** AtomicTokenBucketImpl::consume: fill for the time since the last fill, then take one whole token. */
  private consume(host: NativeHost): boolean {
    const now = host.now();
    if (this.lastFillNs !== null) this.tokens = Math.min(this.maxTokens, this.tokens + (Number(now - this.lastFillNs) / 1e9) * this.rate);
    this.lastFillNs = now;
    if (Math.floor(this.tokens) === 0) return false;
    this.tokens -= 1;
    return true;
  }

  /** resetSeconds: ceil(1 / fill_rate in ms) divided into whole seconds, 0 while a token is left. */
  private resetSeconds(): number {
    return this.tokens >= 1 ? 0 : Math.floor(Math.ceil((1 / this.rate) * 1000) / 1000);
  }

  streamFilter(cb: NativeCallbacks): NativeStreamFilter {
    let counted = false;
    return {
      decodeHeaders: (headers) => {
        // No token bucket: no limit at all (a global config enabled only for routes).
        if (!draw(this.enabled) || this.maxTokens === 0) return "continue";
        counted = true;
        if (this.consume(cb.host)) return "continue";
        if (!draw(this.enforced)) {
          applyHeaderValues(headers, this.requestHeadersWhenNotEnforced);
          return "continue";
        }
        cb.sendLocalReply({
          status: this.status,
          body: "local_rate_limited",
          headers: this.responseHeaders.map((h) => [h.name, h.value] as [string, string]),
          details: "local_rate_limited",
          responseFlag: "RL",
        });
        return "stop";
      },
      encodeHeaders: (headers) => {
        if (!counted || !this.xRateLimitHeaders) return;
        headers.push(["x-ratelimit-limit", String(this.maxTokens)], ["x-ratelimit-remaining", String(Math.floor(this.tokens))], ["x-ratelimit-reset", String(this.resetSeconds())]);
      },
    };
  }
}

export class LocalRateLimitFilter implements NativeFilter {
  /** The config requests use: the route's when it has one, else the filter's. */
  readonly used: LocalRateLimitConfig;

  /** @param perRoute the LocalRateLimit of the route's (else the virtual host's) typed_per_filter_config */
  constructor(
    readonly name: string,
    typedConfig: unknown,
    at = "typed_config",
    perRoute?: { config: unknown; at: string },
  ) {
    const own = new LocalRateLimitConfig(typedConfig, at, false);
    this.used = perRoute ? new LocalRateLimitConfig(perRoute.config, perRoute.at, true) : own;
  }

  newStreamFilter(cb: NativeCallbacks): NativeStreamFilter {
    return this.used.streamFilter(cb);
  }
}
