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
});
