// envoy.filters.http.ext_authz with an HTTP authorization service (a small server in the test), in
// the host's chain: the check request, allowed / denied / error, headers and metadata.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { header, nativeHost } from "./helpers.js";

let authz: http.Server;
let authzUrl = "";
const seen: { method?: string; url?: string; headers: http.IncomingHttpHeaders }[] = [];

beforeAll(async () => {
  authz = http.createServer((req, res) => {
    seen.push({ method: req.method, url: req.url, headers: req.headers });
    const key = req.headers["authorization"];
    if (key === "Bearer team-a") {
      res.writeHead(200, { "x-consumer": "team-a", "x-team": "a", "x-trace-authz": "t1", "set-cookie": "s=1", "x-internal": "no" }).end();
    } else if (key === "Bearer boom") {
      res.writeHead(503).end("down");
    } else {
      res.writeHead(401, { "content-type": "application/json", "www-authenticate": "Bearer", "x-internal": "no" }).end('{"error":"who are you"}');
    }
  });
  await new Promise<void>((r) => authz.listen(0, "127.0.0.1", r));
  authzUrl = `http://127.0.0.1:${(authz.address() as AddressInfo).port}`;
});
afterAll(() => authz.close());

const config = (extra = "") => `
- name: envoy.filters.http.ext_authz
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
    transport_api_version: V3
    http_service:
      server_uri: { uri: "http://authz.internal", cluster: authz, timeout: 1s }
      path_prefix: /check
      authorization_request:
        allowed_headers: { patterns: [{ exact: x-model }] }
      authorization_response:
        allowed_upstream_headers: { patterns: [{ exact: x-consumer }] }
        allowed_client_headers: { patterns: [{ exact: content-type }] }
        allowed_client_headers_on_success: { patterns: [{ exact: set-cookie }] }
        dynamic_metadata_from_headers: { patterns: [{ exact: x-team }] }
${extra}
`;

describe("ext_authz (HTTP service)", () => {
  it("sends the check with the method, path_prefix + path, authorization and allowed headers only; on 200 sets the allowed headers, metadata and client headers", async () => {
    const t = await nativeHost(config(), { clusters: { authz: authzUrl } });
    seen.length = 0;
    const r = await t.send([[":method", "POST"], [":path", "/v1/chat/completions"], ["authorization", "Bearer team-a"], ["x-model", "gpt-4o"], ["x-secret", "s"], ["x-consumer", "forged"]]);
    expect(r.local).toBeNull();
    expect(seen[0].method).toBe("POST");
    expect(seen[0].url).toBe("/check/v1/chat/completions");
    expect(seen[0].headers["x-model"]).toBe("gpt-4o");
    expect(seen[0].headers["x-secret"]).toBeUndefined();
    expect(seen[0].headers["content-length"]).toBe("0");
    expect(r.upstream?.filter(([k]) => k === "x-consumer")).toEqual([["x-consumer", "team-a"]]);
    expect(header(r.upstream, "x-internal")).toBeUndefined();
    expect(r.s.info.dynamicMetadata["envoy.filters.http.ext_authz"]).toEqual({ "x-team": "a" });
    r.s.callOnResponseHeaders([[":status", "200"]], true);
    expect(header(r.response.headers, "set-cookie")).toBe("s=1");
  });

  it("a denied check returns the service's status, body and allowed headers (plus www-authenticate), details ext_authz_denied, flag UAEX", async () => {
    const t = await nativeHost(config(), { clusters: { authz: authzUrl } });
    const r = await t.send([[":method", "POST"], [":path", "/v1/x"], ["authorization", "Bearer nobody"]]);
    expect(r.upstream).toBeNull();
    expect(r.local?.statusCode).toBe(401);
    expect(r.local?.body.toString()).toBe('{"error":"who are you"}');
    expect(header(r.local?.headers, "content-type")).toBe("application/json");
    expect(header(r.local?.headers, "www-authenticate")).toBe("Bearer");
    expect(header(r.local?.headers, "x-internal")).toBeUndefined();
    expect(r.local?.statusDetails).toBe("ext_authz_denied");
    expect(r.s.info.responseFlags).toContain("UAEX");
  });

  it("a 5xx or an unreachable service is an error: 403 ext_authz_error, or with failure_mode_allow the request goes on (header added when asked)", async () => {
    const t = await nativeHost(config(), { clusters: { authz: authzUrl } });
    const r = await t.send([[":method", "GET"], [":path", "/v1/x"], ["authorization", "Bearer boom"]]);
    expect(r.local?.statusCode).toBe(403);
    expect(r.local?.body.length).toBe(0);
    expect(r.local?.statusDetails).toBe("ext_authz_error");
    const down = await nativeHost(config("    failure_mode_allow: true\n    failure_mode_allow_header_add: true"), { clusters: { authz: "http://127.0.0.1:1" } });
    const open = await down.send([[":method", "GET"], [":path", "/v1/x"]]);
    expect(open.local).toBeNull();
    expect(header(open.upstream, "x-envoy-auth-failure-mode-allowed")).toBe("true");
    const custom = await nativeHost(config("    status_on_error: { code: ServiceUnavailable }"), { clusters: { authz: "http://127.0.0.1:1" } });
    expect((await custom.send([[":method", "GET"], [":path", "/"]])).local?.statusCode).toBe(503);
  });

  it("a route's ExtAuthzPerRoute disabled: true skips the check", async () => {
    const t = await nativeHost(config(), {
      clusters: { authz: authzUrl },
      perRoute: [{ config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute", disabled: true }, at: "routes[0].typed_per_filter_config.envoy.filters.http.ext_authz" }],
    });
    seen.length = 0;
    const r = await t.send([[":method", "GET"], [":path", "/v1/x"], ["authorization", "Bearer nobody"]]);
    expect(r.local).toBeNull();
    expect(seen).toHaveLength(0);
  });

  it("refuses the gRPC service and with_request_body, by name", async () => {
    await expect(nativeHost(config("    with_request_body: { max_request_bytes: 1024 }"))).rejects.toThrow(/typed_config\.with_request_body: the local gateway does not implement this field/);
  });
});
