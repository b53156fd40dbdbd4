// envoy.filters.http.cors in the host's chain: the policy from typed_per_filter_config, the preflight
// answered by the filter (not a local reply), and the headers on the responses.
import { describe, expect, it } from "vitest";
import { parseLocalReplyConfig } from "../../../host/local-reply.js";
import { parseCorsPolicy } from "../../../host/native/index.js";
import { header, nativeHost } from "./helpers.js";

const FILTER = `
- name: envoy.filters.http.cors
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors
`;
const policy = (extra: Record<string, unknown> = {}) => {
  const p = {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
    allow_origin_string_match: [{ exact: "https://app.example" }, { suffix: ".corp.example" }],
    allow_methods: "GET, POST",
    allow_headers: "authorization, content-type",
    expose_headers: "x-sluice-route",
    max_age: "600",
    allow_credentials: true,
    ...extra,
  };
  return { config: p, at: "routes[0].typed_per_filter_config.envoy.filters.http.cors" };
};

const PREFLIGHT: [string, string][] = [[":method", "OPTIONS"], [":path", "/v1/chat/completions"], ["origin", "https://app.example"], ["access-control-request-method", "POST"]];

describe("cors", () => {
  it("answers a preflight from an allowed origin itself: 200, Envoy's headers, details cors_response, untouched by local_reply_config", async () => {
    const localReplyConfig = parseLocalReplyConfig({ body_format: { json_format: { error: "%LOCAL_REPLY_BODY%" } } });
    const t = await nativeHost(FILTER, { perRoute: [policy()], localReplyConfig });
    const r = await t.send(PREFLIGHT);
    expect(r.upstream).toBeNull();
    expect(r.local?.statusCode).toBe(200);
    expect(r.local?.statusDetails).toBe("cors_response");
    expect(r.local?.body.length).toBe(0);
    expect(r.response.headers).toEqual([
      [":status", "200"],
      ["access-control-allow-origin", "https://app.example"],
      ["access-control-allow-credentials", "true"],
      ["access-control-allow-methods", "GET, POST"],
      ["access-control-allow-headers", "authorization, content-type"],
      ["access-control-max-age", "600"],
      ["access-control-expose-headers", "x-sluice-route"],
    ]);
  });

  it("forwards a preflight from an origin not allowed (forward_not_matching_preflights default) and adds nothing to its response", async () => {
    const t = await nativeHost(FILTER, { perRoute: [policy()] });
    const r = await t.send([[":method", "OPTIONS"], [":path", "/v1/x"], ["origin", "https://evil.example"], ["access-control-request-method", "POST"]]);
    expect(r.local).toBeNull();
    expect(r.upstream).not.toBeNull();
    r.s.callOnResponseHeaders([[":status", "204"]], true);
    expect(header(r.response.headers, "access-control-allow-origin")).toBeUndefined();
    const answered = await (await nativeHost(FILTER, { perRoute: [policy({ forward_not_matching_preflights: false })] })).send([[":method", "OPTIONS"], [":path", "/"], ["origin", "https://evil.example"], ["access-control-request-method", "POST"]]);
    expect(answered.local?.statusCode).toBe(200);
    expect(header(answered.response.headers, "access-control-allow-origin")).toBeUndefined();
  });

  it("adds allow-origin, credentials and expose-headers to a simple request's response from an allowed origin", async () => {
    const t = await nativeHost(FILTER, { perRoute: [policy()] });
    const r = await t.send([[":method", "POST"], [":path", "/v1/x"], ["origin", "https://a.corp.example"]]);
    r.s.callOnResponseHeaders([[":status", "200"]], true);
    expect(header(r.response.headers, "access-control-allow-origin")).toBe("https://a.corp.example");
    expect(header(r.response.headers, "access-control-allow-credentials")).toBe("true");
    expect(header(r.response.headers, "access-control-expose-headers")).toBe("x-sluice-route");
  });

  it("refuses policy fields it does not run", () => {
    const p = policy({ shadow_enabled: { default_value: { numerator: 100 } } });
    expect(() => parseCorsPolicy(p.config, p.at)).toThrow(/shadow_enabled: the local gateway does not implement this field/);
  });
});
