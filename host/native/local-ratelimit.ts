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
// - descriptors with the filter's own rate_limits (Envoy >= 1.32): each rate_limits entry yields one
//   request descriptor from its actions; a configured descriptor whose entries equal it (a value left
//   out is a wildcard, Envoy >= 1.34: one bucket per distinct value, at most max_dynamic_descriptors)
//   has its own bucket (LocalRateLimiterImpl::requestAllowed, below).
// Per-connection buckets, route-level rate_limits and other actions are refused.
import { checkType, duration, fail, list, obj, only, uint, type NativeCallbacks, type NativeFilter, type NativeHost, type NativeStreamFilter } from "./filter.js";
import type { HeaderList } from "../headers.js";
import { applyHeaderValues, draw, fractionalPercent, headerValueOptions, httpStatus } from "./match.js";
import { rateLimitAction, type Action } from "./rate-limit-actions.js";

export const LOCAL_RATELIMIT_TYPE = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";

/**
 * A token bucket (filters/common/local_ratelimit/local_ratelimit_impl.cc RateLimitTokenBucket over
 * source/common/common/token_bucket_impl.cc AtomicTokenBucketImpl): starts full, fills continuously
 * at tokens_per_fill per fill_interval up to max_tokens; a request takes one whole token.
 */
class TokenBucket {
  readonly maxTokens: number;
  /** Tokens per second (AtomicTokenBucketImpl fill_rate_). */
  private readonly rate: number;
  private tokens: number;
  /** When the bucket was last filled (host clock, ns); null before the first request (full then). */
  private lastFillNs: bigint | null = null;

  constructor(v: unknown, at: string, what = "local rate limit token bucket") {
    const tb = obj(v, at);
    only(tb, at, ["max_tokens", "tokens_per_fill", "fill_interval"]);
    this.maxTokens = uint(tb.max_tokens, `${at}.max_tokens`);
    if (this.maxTokens < 1) fail(`${at}.max_tokens`, "must be at least 1");
    const perFill = tb.tokens_per_fill === undefined ? 1 : uint(tb.tokens_per_fill, `${at}.tokens_per_fill`);
    const fill = duration(tb.fill_interval, `${at}.fill_interval`);
    if (fill < 50) fail(`${at}.fill_interval`, `${what} fill timer must be >= 50ms`);
    this.tokens = this.maxTokens;
    // The minimal fill rate is one token a year (token_bucket_impl.cc kMinFillRate).
    this.rate = Math.max(perFill / (fill / 1000), 1 / (365 * 24 * 60 * 60));
  }

  /** Tokens per second: matched descriptors are tried slowest-filling first. */
  get fillRate(): number {
    return this.rate;
  }

  /** AtomicTokenBucketImpl::consume: fill for the time since the last fill, then take one whole token. */
  consume(host: { now(): bigint }): boolean {
    const now = host.now();
    if (this.lastFillNs !== null) this.tokens = Math.min(this.maxTokens, this.tokens + (Number(now - this.lastFillNs) / 1e9) * this.rate);
    this.lastFillNs = now;
    if (Math.floor(this.tokens) === 0) return false;
    this.tokens -= 1;
    return true;
  }

  remaining(): number {
    return Math.floor(this.tokens);
  }

  /** resetSeconds: ceil(1 / fill_rate in ms) divided into whole seconds, 0 while a token is left. */
  resetSeconds(): number {
    return this.tokens >= 1 ? 0 : Math.floor(Math.ceil((1 / this.rate) * 1000) / 1000);
  }
}

const DESCRIPTOR_BUCKET = "local rate limit descriptor token bucket";

/** A configured descriptor: its entries (value "" is a wildcard, Envoy >= 1.34) and its bucket. */
interface Descriptor {
  entries: { key: string; value: string }[];
  wildcard: boolean;
  bucket: TokenBucket | null;
  /** Wildcard descriptors: one bucket per distinct request value set, least recently used first. */
  dynamic: Map<string, TokenBucket>;
  bucketConfig: unknown;
  at: string;
}

/** One LocalRateLimit (the filter's, or a route's) with its buckets. */
export class LocalRateLimitConfig {
  readonly status: number;
  readonly enabled: number;
  readonly enforced: number;
  readonly xRateLimitHeaders: boolean;
  readonly responseHeaders: ReturnType<typeof headerValueOptions>;
  readonly requestHeadersWhenNotEnforced: ReturnType<typeof headerValueOptions>;
  /** The filter's token_bucket; null when not configured (only descriptors limit). */
  private readonly defaultBucket: TokenBucket | null;
  private readonly descriptors: Descriptor[];
  /** rate_limits: each yields one request descriptor, from all of its actions. */
  private readonly rateLimits: Action[][];
  private readonly alwaysConsumeDefault: boolean;
  /** max_dynamic_descriptors (default 20): the wildcard buckets kept, per wildcard descriptor. */
  private readonly maxDynamic: number;

  constructor(typedConfig: unknown, at: string, perRoute: boolean) {
    const c = obj(typedConfig, at);
    checkType(c, LOCAL_RATELIMIT_TYPE, at);
    if (perRoute && c.token_bucket === undefined) fail(at, "local rate limit token bucket must be set for per filter configs");
    only(c, at, [
      "@type", "stat_prefix", "status", "token_bucket", "filter_enabled", "filter_enforced", "response_headers_to_add",
      "request_headers_to_add_when_not_enforced", "enable_x_ratelimit_headers", "always_consume_default_token_bucket", "local_rate_limit_per_downstream_connection",
      "descriptors", "rate_limits", "max_dynamic_descriptors",
    ]);
    if (typeof c.stat_prefix !== "string" || !c.stat_prefix) fail(`${at}.stat_prefix`, "required");
    if (c.local_rate_limit_per_downstream_connection === true) fail(`${at}.local_rate_limit_per_downstream_connection`, "the local gateway runs one bucket for the listener (true is refused)");
    // toErrorCode: a status below 400 is replaced by 429.
    const st = c.status === undefined ? 429 : httpStatus(c.status, `${at}.status`);
    this.status = st < 400 ? 429 : st;
    this.defaultBucket = c.token_bucket === undefined ? null : new TokenBucket(c.token_bucket, `${at}.token_bucket`);
    this.alwaysConsumeDefault = c.always_consume_default_token_bucket !== false;
    this.maxDynamic = c.max_dynamic_descriptors === undefined ? 20 : uint(c.max_dynamic_descriptors, `${at}.max_dynamic_descriptors`);
    const seen = new Set<string>();
    this.descriptors = list(c.descriptors, `${at}.descriptors`).map((d, i) => {
      const dat = `${at}.descriptors[${i}]`;
      only(obj(d, dat), dat, ["entries", "token_bucket"]);
      const entries = list(d.entries, `${dat}.entries`).map((e, j) => {
        const eat = `${dat}.entries[${j}]`;
        only(obj(e, eat), eat, ["key", "value"]);
        if (typeof e.key !== "string" || !e.key) fail(`${eat}.key`, "required");
        return { key: e.key, value: typeof e.value === "string" ? e.value : "" };
      });
      if (!entries.length) fail(`${dat}.entries`, "required");
      const id = JSON.stringify(entries);
      // LocalRateLimiterImpl's constructor: "duplicate descriptor in the local rate descriptor".
      if (seen.has(id)) fail(dat, "duplicate descriptor in the local rate descriptor");
      seen.add(id);
      const wildcard = entries.some((e) => e.value === "");
      // Checked now for a wildcard too (its buckets are made per value later).
      const bucket = new TokenBucket(d.token_bucket, `${dat}.token_bucket`, DESCRIPTOR_BUCKET);
      return { entries, wildcard, bucket: wildcard ? null : bucket, dynamic: new Map(), bucketConfig: d.token_bucket, at: `${dat}.token_bucket` };
    });
    this.rateLimits = list(c.rate_limits, `${at}.rate_limits`).map((r, i) => {
      const rat = `${at}.rate_limits[${i}]`;
      only(obj(r, rat), rat, ["actions"]);
      const actions = list(r.actions, `${rat}.actions`).map((a, j) => rateLimitAction(a, `${rat}.actions[${j}]`));
      if (!actions.length) fail(`${rat}.actions`, "required");
      return actions;
    });
    this.enabled = c.filter_enabled === undefined ? 0 : fractionalPercent(c.filter_enabled, `${at}.filter_enabled`, true);
    this.enforced = c.filter_enforced === undefined ? 0 : fractionalPercent(c.filter_enforced, `${at}.filter_enforced`, true);
    const xr = c.enable_x_ratelimit_headers ?? "OFF";
    if (xr !== "OFF" && xr !== "DRAFT_VERSION_03") fail(`${at}.enable_x_ratelimit_headers`, "expected OFF or DRAFT_VERSION_03");
    this.xRateLimitHeaders = xr === "DRAFT_VERSION_03";
    this.responseHeaders = headerValueOptions(c.response_headers_to_add, `${at}.response_headers_to_add`);
    this.requestHeadersWhenNotEnforced = headerValueOptions(c.request_headers_to_add_when_not_enforced, `${at}.request_headers_to_add_when_not_enforced`);
  }

  /** The request's descriptors (Filter::populateDescriptors from the filter's own rate_limits). */
  private requestDescriptors(cb: NativeCallbacks, headers: HeaderList): [string, string][][] {
    const out: [string, string][][] = [];
    for (const actions of this.rateLimits) {
      const entries: [string, string][] = [];
      let ok = true;
      for (const a of actions) {
        const e = a(headers, cb.stream.info, cb.stream.filterState);
        if (e === "skip") continue;
        if (e === null) {
          ok = false;
          break;
        }
        entries.push(e);
      }
      if (ok && entries.length) out.push(entries);
    }
    return out;
  }

  /**
   * The bucket for a request descriptor (requestAllowed): a configured descriptor with the same
   * entries, else the first wildcard one whose keys match and whose non-empty values equal the
   * request's (DynamicDescriptorMap::getBucket, matchDescriptorEntries); null when none does.
   */
  private bucketFor(req: [string, string][]): TokenBucket | null {
    const fits = (d: Descriptor) =>
      d.entries.length === req.length && d.entries.every((e, i) => e.key === req[i][0] && (e.value === "" || e.value === req[i][1]));
    const exact = this.descriptors.find((d) => !d.wildcard && fits(d));
    if (exact) return exact.bucket;
    const d = this.descriptors.find((x) => x.wildcard && fits(x));
    if (!d) return null;
    // DynamicDescriptor::addOrGetDescriptor: one bucket per distinct request descriptor, most
    // recently used first; past max_dynamic_descriptors the least recently used is dropped (it
    // starts full again when it comes back).
    const id = JSON.stringify(req);
    let b = d.dynamic.get(id);
    if (b) d.dynamic.delete(id);
    else b = new TokenBucket(d.bucketConfig, d.at, DESCRIPTOR_BUCKET);
    d.dynamic.set(id, b);
    if (d.dynamic.size > this.maxDynamic) d.dynamic.delete(d.dynamic.keys().next().value!);
    return b;
  }

  /**
   * LocalRateLimiterImpl::requestAllowed (filters/common/local_ratelimit/local_ratelimit_impl.cc,
   * Envoy >= 1.34): the buckets of the matching descriptors, slowest-filling
   * first, each charged in turn (the first empty one limits the request, later ones are not charged);
   * then the default bucket, when nothing matched or always_consume_default_token_bucket (default
   * true). Returns whether the request is allowed and the bucket the x-ratelimit headers describe
   * (the first matched descriptor's, else the default one).
   */
  private requestAllowed(cb: NativeCallbacks, headers: HeaderList): { allowed: boolean; bucket: TokenBucket | null } {
    const host = cb.host;
    const matched: TokenBucket[] = [];
    if (this.descriptors.length) {
      for (const req of this.requestDescriptors(cb, headers)) {
        const b = this.bucketFor(req);
        if (b) matched.push(b);
      }
    }
    matched.sort((a, b) => a.fillRate - b.fillRate);
    for (const b of matched) if (!b.consume(host)) return { allowed: false, bucket: b };
    if (matched.length === 0 || this.alwaysConsumeDefault) {
      if (this.defaultBucket === null) return { allowed: true, bucket: matched[0] ?? null };
      return { allowed: this.defaultBucket.consume(host), bucket: matched[0] ?? this.defaultBucket };
    }
    return { allowed: true, bucket: matched[0] };
  }

  streamFilter(cb: NativeCallbacks): NativeStreamFilter {
    let counted: TokenBucket | null = null;
    return {
      decodeHeaders: (headers) => {
        // No token bucket and no descriptors: no limit at all (a global config enabled only for routes).
        if (!draw(this.enabled) || (this.defaultBucket === null && this.descriptors.length === 0)) return "continue";
        const r = this.requestAllowed(cb, headers);
        counted = r.bucket;
        if (r.allowed) return "continue";
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
        headers.push(["x-ratelimit-limit", String(counted.maxTokens)], ["x-ratelimit-remaining", String(counted.remaining())], ["x-ratelimit-reset", String(counted.resetSeconds())]);
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
