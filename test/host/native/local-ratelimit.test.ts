// envoy.filters.http.local_ratelimit in the host's chain: the token bucket, 429 with Envoy's body and
// flag, the x-ratelimit-* headers, and filter_enabled / filter_enforced.
import { describe, expect, it } from "vitest";
import { parseLocalReplyConfig } from "../../../host/local-reply.js";
import { parse } from "yaml";
import { header, nativeHost } from "./helpers.js";

const limit = (extra = "") => `
- name: envoy.filters.http.local_ratelimit
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
    stat_prefix: http_local_rate_limiter
    token_bucket: { max_tokens: 2, tokens_per_fill: 1, fill_interval: 10s }
    filter_enabled: { default_value: { numerator: 100, denominator: HUNDRED }, runtime_key: rl_enabled }
    enable_x_ratelimit_headers: DRAFT_VERSION_03
${extra}
`;
const ENFORCED = "    filter_enforced: { default_value: { numerator: 100, denominator: HUNDRED }, runtime_key: rl_enforced }";
const GET: [string, string][] = [[":method", "GET"], [":path", "/v1/models"]];

describe("local_ratelimit", () => {
  it("takes a token per request, answers 429 local_rate_limited (flag RL) when none is left, and refills tokens_per_fill per fill_interval", async () => {
    const t = await nativeHost(limit(ENFORCED));
    const first = await t.send(GET);
    expect(first.local).toBeNull();
    first.s.callOnResponseHeaders([[":status", "200"]], true);
    expect([header(first.response.headers, "x-ratelimit-limit"), header(first.response.headers, "x-ratelimit-remaining"), header(first.response.headers, "x-ratelimit-reset")]).toEqual(["2", "1", "0"]);
    expect((await t.send(GET)).local).toBeNull();
    const limited = await t.send(GET);
    expect(limited.local?.statusCode).toBe(429);
    expect(limited.local?.body.toString()).toBe("local_rate_limited");
    expect(limited.local?.statusDetails).toBe("local_rate_limited");
    expect(limited.s.info.responseFlags).toContain("RL");
    expect(header(limited.response.headers, "x-ratelimit-remaining")).toBe("0");
    expect(header(limited.response.headers, "x-ratelimit-reset")).toBe("10"); // one token takes 10 s
    t.advanceMs(5_000); // half a token
    expect((await t.send(GET)).local?.statusCode).toBe(429);
    t.advanceMs(5_000);
    expect((await t.send(GET)).local).toBeNull();
    expect((await t.send(GET)).local?.statusCode).toBe(429);
  });

  it("counts but lets requests through when filter_enforced is unset, adding request_headers_to_add_when_not_enforced", async () => {
    const t = await nativeHost(limit("    request_headers_to_add_when_not_enforced: [{ header: { key: x-local-ratelimited, value: \"true\" } }]"));
    await t.send(GET);
    await t.send(GET);
    const over = await t.send(GET);
    expect(over.local).toBeNull();
    expect(header(over.upstream, "x-local-ratelimited")).toBe("true");
  });

  it("its 429 goes through local_reply_config like any local reply (a mapper on the RL flag)", async () => {
    const localReplyConfig = parseLocalReplyConfig({
      mappers: [{ filter: { response_flag_filter: { flags: ["RL"] } }, body_format_override: { json_format: { error: { message: "%LOCAL_REPLY_BODY%", type: "rate_limit_error", code: "%RESPONSE_CODE%" } } } }],
    });
    const t = await nativeHost(limit(ENFORCED).replace("max_tokens: 2", "max_tokens: 1"), { localReplyConfig });
    await t.send(GET);
    const r = await t.send(GET);
    expect(r.local?.statusCode).toBe(429);
    expect(JSON.parse(r.local!.body.toString())).toEqual({ error: { message: "local_rate_limited", type: "rate_limit_error", code: 429 } });
  });

  it("a LocalRateLimit in the route's typed_per_filter_config replaces the filter's, bucket and all (the filter itself only has a stat_prefix)", async () => {
    const filter = `
- name: envoy.filters.http.local_ratelimit
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
    stat_prefix: http_local_rate_limiter
`;
    const route = parse(limit(ENFORCED).replace("max_tokens: 2", "max_tokens: 1"))[0].typed_config;
    const t = await nativeHost(filter, { perRoute: [{ config: route, at: "routes[0].typed_per_filter_config.envoy.filters.http.local_ratelimit" }] });
    expect((await t.send(GET)).local).toBeNull();
    expect((await t.send(GET)).local?.statusCode).toBe(429);
    const off = await nativeHost(filter);
    for (let i = 0; i < 3; i++) expect((await off.send(GET)).local).toBeNull();
  });

  it("refuses a rate limit action or CEL text it does not run, and a fill interval under 50 ms", async () => {
    await expect(nativeHost(limit("    rate_limits: [ { actions: [ { remote_address: {} } ] } ]"))).rejects.toThrow(/rate_limits\[0\]\.actions\[0\]\.remote_address: the local gateway runs the request_headers, metadata, generic_key and expr extension actions/);
    const cel = `    rate_limits: [ { actions: [ { extension: { name: e, typed_config: { "@type": type.googleapis.com/envoy.extensions.rate_limit_descriptors.expr.v3.Descriptor, descriptor_key: k, text: "request.path" } } } ] } ]`;
    await expect(nativeHost(limit(cel))).rejects.toThrow(/typed_config\.text: the local gateway evaluates only the CEL expression filter_state\['<key>'\]/);
    await expect(nativeHost(limit().replace("fill_interval: 10s", "fill_interval: 0.01s"))).rejects.toThrow(/fill timer must be >= 50ms/);
  });

  // The shape cli/render/native-filters.ts writes for request_rate_limit.consumer: a wildcard descriptor
  // filled by the filter's own rate_limits.
  const perKey = (action: string, extra = "") => `
- name: envoy.filters.http.local_ratelimit
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
    stat_prefix: l
    filter_enabled: { default_value: { numerator: 100, denominator: HUNDRED }, runtime_key: e }
    filter_enforced: { default_value: { numerator: 100, denominator: HUNDRED }, runtime_key: f }
    enable_x_ratelimit_headers: DRAFT_VERSION_03
    token_bucket: { max_tokens: 100, tokens_per_fill: 100, fill_interval: 60s }
    descriptors:
      - { entries: [ { key: consumer } ], token_bucket: { max_tokens: 2, tokens_per_fill: 2, fill_interval: 60s } }
      - { entries: [ { key: consumer, value: vip } ], token_bucket: { max_tokens: 3, tokens_per_fill: 3, fill_interval: 60s } }
    rate_limits: [ { actions: [ ${action} ] } ]
${extra}
`;
  const asUser = (u?: string): [string, string][] => [...GET, ...(u ? ([["x-user", u]] as [string, string][]) : [])];

  it("descriptors: a wildcard gives each value its own bucket, an exact descriptor wins over it, the x-ratelimit-* headers describe the descriptor's bucket", async () => {
    const t = await nativeHost(perKey("{ request_headers: { header_name: x-user, descriptor_key: consumer } }"));
    const a1 = await t.send(asUser("alice"));
    a1.s.callOnResponseHeaders([[":status", "200"]], true);
    expect([header(a1.response.headers, "x-ratelimit-limit"), header(a1.response.headers, "x-ratelimit-remaining")]).toEqual(["2", "1"]);
    expect((await t.send(asUser("alice"))).local).toBeNull();
    const limited = await t.send(asUser("alice"));
    expect(limited.local?.statusCode).toBe(429);
    expect(limited.s.info.responseFlags).toContain("RL");
    expect((await t.send(asUser("bob"))).local).toBeNull(); // bob's own bucket
    for (let i = 0; i < 3; i++) expect((await t.send(asUser("vip"))).local).toBeNull(); // the exact descriptor: 3
    expect((await t.send(asUser("vip"))).local?.statusCode).toBe(429);
    // No header: no descriptor; only the filter's bucket (100) counts.
    const none = await t.send(asUser());
    none.s.callOnResponseHeaders([[":status", "200"]], true);
    expect(none.local).toBeNull();
    expect(header(none.response.headers, "x-ratelimit-limit")).toBe("100");
  });

  it("descriptors: past max_dynamic_descriptors the least recently used value's bucket is dropped and starts full again", async () => {
    const t = await nativeHost(perKey("{ request_headers: { header_name: x-user, descriptor_key: consumer } }", "    max_dynamic_descriptors: 2"));
    await t.send(asUser("a"));
    await t.send(asUser("a"));
    expect((await t.send(asUser("a"))).local?.statusCode).toBe(429);
    await t.send(asUser("b"));
    await t.send(asUser("c")); // a is the least recently used of three: dropped
    expect((await t.send(asUser("a"))).local).toBeNull();
  });

  it("descriptors from dynamic metadata (a jwt_authn claim) and from filter state (the CEL form filter_state['key'])", async () => {
    const claim = `{ metadata: { descriptor_key: consumer, metadata_key: { key: envoy.filters.http.jwt_authn, path: [ { key: jwt_payload }, { key: sub } ] }, source: DYNAMIC } }`;
    const byClaim = await nativeHost(perKey(claim));
    const md = (sub: string | number) => ({ dynamicMetadata: { "envoy.filters.http.jwt_authn": { jwt_payload: { sub } } } });
    await byClaim.send(GET, md("alice"));
    await byClaim.send(GET, md("alice"));
    expect((await byClaim.send(GET, md("alice"))).local?.statusCode).toBe(429);
    expect((await byClaim.send(GET, md("bob"))).local).toBeNull();
    // A claim that is not a string yields no descriptor (metadataValue(...).string_value() is empty).
    for (let i = 0; i < 3; i++) expect((await byClaim.send(GET, md(7))).local).toBeNull();

    const cel = `{ extension: { name: envoy.rate_limit_descriptors.expr, typed_config: { "@type": type.googleapis.com/envoy.extensions.rate_limit_descriptors.expr.v3.Descriptor, descriptor_key: consumer, text: "filter_state['wasm.sluice.consumer']" } } }`;
    const byState = await nativeHost(perKey(cel));
    const as = async (consumer: string | null) => {
      const s = byState.h.newStream();
      if (consumer) s.filterState.set("wasm.sluice.consumer", Buffer.from(consumer));
      s.callOnRequestHeaders([[":scheme", "http"], [":authority", "gw.example"], ...GET], true);
      await byState.h.settle();
      return s.getSentLocalResponse();
    };
    await as("team-a");
    await as("team-a");
    expect((await as("team-a"))?.statusCode).toBe(429);
    expect(await as("team-b")).toBeNull();
    for (let i = 0; i < 3; i++) expect(await as(null)).toBeNull(); // no consumer: the filter's bucket only
  });
});
