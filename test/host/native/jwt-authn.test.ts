// envoy.filters.http.jwt_authn in the host's chain: signatures checked by jose against a JWKS made in
// the test; the replies, details and metadata as Envoy's filter.cc / authenticator.cc give them.
import http from "node:http";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { header, nativeHost } from "./helpers.js";
import { parseLocalReplyConfig } from "../../../host/local-reply.js";
import { JwtAuthnFilter } from "../../../host/native/jwt-authn.js";

let jwks = "";
let otherJwks = "";
let sign: (claims: Record<string, unknown>, kid?: string) => Promise<string>;

beforeAll(async () => {
  const { privateKey, publicKey } = await generateKeyPair("RS256");
  const other = await generateKeyPair("RS256");
  jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" }] });
  otherJwks = JSON.stringify({ keys: [{ ...(await exportJWK(other.publicKey)), kid: "k1", alg: "RS256", use: "sig" }] });
  sign = (claims, kid = "k1") => new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid }).sign(privateKey);
});

const NOW = Date.UTC(2026, 11, 4, 12, 0, 0) / 1000;

function config(jwksText: string, extra = "", rules = "") {
  return `
- name: envoy.filters.http.jwt_authn
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication
    providers:
      idp:
        issuer: https://idp.example
        audiences: [sluice]
        local_jwks:
          inline_string: '${jwksText}'
        payload_in_metadata: jwt_payload
        claim_to_headers:
          - header_name: x-jwt-sub
            claim_name: sub
${extra}
    rules:
${rules || `      - match: { prefix: /v1 }
        requires: { provider_name: idp }`}
`;
}

const good = { iss: "https://idp.example", aud: "sluice", sub: "alice", groups: ["eng"], exp: NOW + 600 };
const PROPS = ["metadata|filter_metadata|envoy.filters.http.jwt_authn|jwt_payload|sub", "request|headers|x-jwt-sub", "request|headers|authorization"];

describe("jwt_authn", () => {
  it("passes a JWT signed by a key of the local JWKS: the payload is dynamic metadata the wasm filters read, claim_to_headers set, the token removed", async () => {
    const t = await nativeHost(config(jwks), { props: PROPS });
    const token = await sign(good);
    const r = await t.send([[":method", "POST"], [":path", "/v1/chat/completions"], ["authorization", `Bearer ${token}`], ["x-jwt-sub", "forged"]]);
    expect(r.local).toBeNull();
    expect(r.s.info.dynamicMetadata["envoy.filters.http.jwt_authn"]).toEqual({ jwt_payload: good });
    expect(header(r.upstream, "x-jwt-sub")).toBe("alice");
    expect(r.upstream?.filter(([k]) => k === "x-jwt-sub")).toHaveLength(1); // the client's was removed first
    expect(header(r.upstream, "authorization")).toBeUndefined(); // forward: false
    const seen = t.read("request_headers");
    expect(seen["metadata|filter_metadata|envoy.filters.http.jwt_authn|jwt_payload|sub"]).toBe("alice");
    expect(seen["request|headers|x-jwt-sub"]).toBe("alice");
  });

  it("answers an expired JWT with 401 \"Jwt is expired\", www-authenticate and Envoy's details; the wasm filters never see the request", async () => {
    const t = await nativeHost(config(jwks), { props: PROPS });
    const token = await sign({ ...good, exp: NOW - 61 }); // past the default 60 s clock skew
    const r = await t.send([[":method", "GET"], [":path", "/v1/models?x=1"], ["authorization", `Bearer ${token}`]]);
    expect(r.local?.statusCode).toBe(401);
    expect(r.local?.body.toString()).toBe("Jwt is expired");
    expect(header(r.local?.headers, "www-authenticate")).toBe('Bearer realm="http://gw.example/v1/models?x=1", error="invalid_token"');
    expect(r.local?.statusDetails).toBe("jwt_authn_access_denied{Jwt_is_expired}");
    expect(r.upstream).toBeNull();
    expect(t.read("request_headers")).toEqual({});
  });

  it("honours clock_skew_seconds: expired 30 s ago passes with the default 60 s skew, fails with 10 s", async () => {
    const token = await sign({ ...good, exp: NOW - 30 });
    const ok = await (await nativeHost(config(jwks))).send([[":method", "GET"], [":path", "/v1/x"], ["authorization", `Bearer ${token}`]]);
    expect(ok.local).toBeNull();
    const strict = await nativeHost(config(jwks).replace("payload_in_metadata: jwt_payload", "payload_in_metadata: jwt_payload\n        clock_skew_seconds: 10"));
    const r = await strict.send([[":method", "GET"], [":path", "/v1/x"], ["authorization", `Bearer ${token}`]]);
    expect(r.local?.body.toString()).toBe("Jwt is expired");
  });

  it("answers a wrong audience with 403 \"Audiences in Jwt are not allowed\"", async () => {
    const t = await nativeHost(config(jwks));
    const r = await t.send([[":method", "GET"], [":path", "/v1/x"], ["authorization", `Bearer ${await sign({ ...good, aud: "someone-else" })}`]]);
    expect(r.local?.statusCode).toBe(403);
    expect(r.local?.body.toString()).toBe("Audiences in Jwt are not allowed");
    expect(r.local?.statusDetails).toBe("jwt_authn_access_denied{Audiences_in_Jwt_are_not_allowed}");
  });

  it("answers a JWT signed by another key with 401 \"Jwt verification fails\"; a missing JWT with 401 \"Jwt is missing\" without error=", async () => {
    const t = await nativeHost(config(otherJwks));
    const bad = await t.send([[":method", "GET"], [":path", "/v1/x"], ["authorization", `Bearer ${await sign(good)}`]]);
    expect(bad.local?.statusCode).toBe(401);
    expect(bad.local?.body.toString()).toBe("Jwt verification fails");
    const missing = await t.send([[":method", "GET"], [":path", "/v1/x"]]);
    expect(missing.local?.body.toString()).toBe("Jwt is missing");
    expect(header(missing.local?.headers, "www-authenticate")).toBe('Bearer realm="http://gw.example/v1/x"');
    const unknownKid = await (await nativeHost(config(jwks))).send([[":method", "GET"], [":path", "/v1/x"], ["authorization", `Bearer ${await sign(good, "k9")}`]]);
    expect(unknownKid.local?.body.toString()).toBe("Jwks doesn't have key to match kid or alg from Jwt");
  });

  it("answers a wrong issuer and a malformed token with Envoy's status strings", async () => {
    const t = await nativeHost(config(jwks));
    const iss = await t.send([[":method", "GET"], [":path", "/v1/x"], ["authorization", `Bearer ${await sign({ ...good, iss: "https://evil.example" })}`]]);
    expect(iss.local?.body.toString()).toBe("Jwt issuer is not configured");
    const junk = await t.send([[":method", "GET"], [":path", "/v1/x"], ["authorization", "Bearer not-a-jwt"]]);
    expect(junk.local?.body.toString()).toBe("Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections");
  });

  it("lets paths no rule matches through, and allow_missing lets a request without a JWT through but not one with a bad JWT", async () => {
    const rules = `      - match: { prefix: /v1 }
        requires:
          requires_any:
            requirements:
              - provider_name: idp
              - allow_missing: {}`;
    const t = await nativeHost(config(jwks, "", rules));
    expect((await t.send([[":method", "GET"], [":path", "/health"]])).local).toBeNull();
    const none = await t.send([[":method", "GET"], [":path", "/v1/x"]]);
    expect(none.local).toBeNull();
    expect(none.s.info.dynamicMetadata["envoy.filters.http.jwt_authn"]).toBeUndefined();
    const expired = await t.send([[":method", "GET"], [":path", "/v1/x"], ["authorization", `Bearer ${await sign({ ...good, exp: NOW - 3600 })}`]]);
    expect(expired.local?.body.toString()).toBe("Jwt is expired");
  });

  it("fetches a remote JWKS through its cluster once and caches it", async () => {
    let fetches = 0;
    const srv = http.createServer((req, res) => {
      fetches++;
      expect(req.url).toBe("/.well-known/jwks.json");
      res.writeHead(200, { "content-type": "application/json" }).end(jwks);
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const port = (srv.address() as AddressInfo).port;
    try {
      const yaml = config(jwks).replace(/local_jwks:\n\s+inline_string: '[^']*'/, `remote_jwks:\n          http_uri: { uri: "http://idp.example/.well-known/jwks.json", cluster: idp_jwks, timeout: 1s }`);
      const t = await nativeHost(yaml, { clusters: { idp_jwks: `http://127.0.0.1:${port}` } });
      const token = await sign(good);
      for (let i = 0; i < 2; i++) expect((await t.send([[":method", "GET"], [":path", "/v1/x"], ["authorization", `Bearer ${token}`]])).local).toBeNull();
      expect(fetches).toBe(1);
    } finally {
      srv.close();
    }
  });

  it("holds the request body while it verifies, then lets headers and body go on in order", async () => {
    const t = await nativeHost(config(jwks));
    const s = t.h.newStream();
    s.callOnRequestHeaders([[":scheme", "http"], [":authority", "gw.example"], [":method", "POST"], [":path", "/v1/chat/completions"], ["authorization", `Bearer ${await sign(good)}`]], false);
    s.callOnRequestBody('{"model":', false);
    expect(s.upstream.headers).toBeNull(); // still verifying
    s.callOnRequestBody('"gpt-4o"}', true);
    await t.h.settle();
    expect(s.upstream.headers).not.toBeNull();
    expect(s.upstream.body.toString()).toBe('{"model":"gpt-4o"}');
    expect(s.upstream.ended).toBe(true);
  });

  it("a stream that ends while its JWKS is being fetched is left alone when the fetch returns", async () => {
    let release: () => void = () => {};
    const srv = http.createServer((_req, res) => {
      release = () => res.writeHead(200).end(jwks);
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    try {
      const yaml = config(jwks).replace(/local_jwks:\n\s+inline_string: '[^']*'/, `remote_jwks:\n          http_uri: { uri: "http://idp.example/jwks", cluster: idp_jwks, timeout: 5s }`);
      const t = await nativeHost(yaml, { clusters: { idp_jwks: `http://127.0.0.1:${(srv.address() as AddressInfo).port}` } });
      const s = t.h.newStream();
      s.callOnRequestHeaders([[":scheme", "http"], [":authority", "gw.example"], [":method", "GET"], [":path", "/v1/x"], ["authorization", `Bearer ${await sign(good)}`]], true);
      await new Promise((r) => setTimeout(r, 50));
      s.completeHttpContext(); // the client went away
      release();
      await t.h.settle();
      expect(s.getSentLocalResponse()).toBeNull();
      expect(s.upstream.headers).toBeNull();
    } finally {
      srv.close();
    }
  });

  it("requirement_map: rules name a requirement; a route's PerRouteConfig replaces the rules (disabled, a name, or Envoy's 403 for a wrong name)", async () => {
    const yaml = config(jwks, "", "      - match: { prefix: /v1 }\n        requirement_name: idp_required").replace("    rules:", "    requirement_map:\n      idp_required: { provider_name: idp }\n      anyone: { allow_missing_or_failed: {} }\n    rules:");
    const byRule = await nativeHost(yaml);
    expect((await byRule.send([[":method", "GET"], [":path", "/v1/x"]])).local?.body.toString()).toBe("Jwt is missing");
    const PR = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig";
    const at = "routes[0].typed_per_filter_config.envoy.filters.http.jwt_authn";
    const disabled = await nativeHost(yaml, { perRoute: [{ config: { "@type": PR, disabled: true }, at }] });
    expect((await disabled.send([[":method", "GET"], [":path", "/v1/x"]])).local).toBeNull();
    const named = await nativeHost(yaml, { perRoute: [{ config: { "@type": PR, requirement_name: "idp_required" }, at }] });
    expect((await named.send([[":method", "GET"], [":path", "/other"]])).local?.body.toString()).toBe("Jwt is missing"); // the rules no longer decide
    const wrong = await (await nativeHost(yaml, { perRoute: [{ config: { "@type": PR, requirement_name: "nope" }, at }] })).send([[":method", "GET"], [":path", "/v1/x"]]);
    expect(wrong.local?.statusCode).toBe(403);
    expect(wrong.local?.body.toString()).toBe("Failed JWT authentication: Wrong requirement_name: nope. It should be one of [anyone,idp_required]");
    expect(wrong.local?.statusDetails).toBe("jwt_authn_access_denied{Wrong_requirement_name:_nope._It_should_be_one_of_[anyone,idp_required]}");
    await expect(nativeHost(yaml.replace("requirement_name: idp_required", "requirement_name: rr"))).rejects.toThrow(/Wrong requirement_name: rr\. It should be one of \[anyone,idp_required\]/);
  });

  it("refuses config fields it does not implement, by name", async () => {
    await expect(nativeHost(config(jwks).replace("payload_in_metadata: jwt_payload", "payload_in_metadata: jwt_payload\n        from_cookies: [session]"))).rejects.toThrow(
      /providers\.idp\.from_cookies: the local gateway does not implement this field/,
    );
    await expect(nativeHost(config(jwks, "", "      - match: { prefix: /v1 }\n        requires: { provider_name: nobody }"))).rejects.toThrow(/Required provider \['nobody'\] is not configured/);
  });

  it("failed_status_in_metadata: a failure's {code, message} is dynamic metadata before the 401, so a local_reply_config metadata_filter rewrites it", async () => {
    const localReplyConfig = parseLocalReplyConfig({
      mappers: [
        {
          filter: { metadata_filter: { matcher: { filter: "envoy.filters.http.jwt_authn", path: [{ key: "jwt_failure" }], value: { present_match: true } }, match_if_key_not_found: false } },
          body_format_override: { json_format: { error: { message: "%LOCAL_REPLY_BODY%", code: "invalid_token" } } },
        },
      ],
    });
    const t = await nativeHost(config(jwks, "        failed_status_in_metadata: jwt_failure"), { localReplyConfig });
    const expired = await t.send([[":method", "GET"], [":path", "/v1/x"], ["authorization", `Bearer ${await sign({ ...good, exp: NOW - 3600 })}`]]);
    // source/common/jwt/status.h: JwtExpired is 3, JwtMissed 1 (authenticator.cc doneWithStatus, enumToInt).
    expect(expired.s.info.dynamicMetadata["envoy.filters.http.jwt_authn"]).toEqual({ jwt_failure: { code: 3, message: "Jwt is expired" } });
    expect(expired.local?.statusCode).toBe(401);
    expect(JSON.parse(expired.local!.body.toString())).toEqual({ error: { message: "Jwt is expired", code: "invalid_token" } });
    const missing = await t.send([[":method", "GET"], [":path", "/v1/x"]]);
    expect(missing.s.info.dynamicMetadata["envoy.filters.http.jwt_authn"]).toEqual({ jwt_failure: { code: 1, message: "Jwt is missing" } });
    // Without the key the mapper's metadata_filter does not match (match_if_key_not_found false).
    const plain = await nativeHost(config(jwks), { localReplyConfig });
    expect((await plain.send([[":method", "GET"], [":path", "/v1/x"]])).local?.body.toString()).toBe("Jwt is missing");
  });

  it("remote_jwks.async_fetch: fetched before any request, refetched after failed_refetch_duration when the fetch failed", async () => {
    let fetches = 0;
    let up = false;
    const srv = http.createServer((_req, res) => {
      fetches++;
      if (up) res.writeHead(200, { "content-type": "application/json" }).end(jwks);
      else res.writeHead(503).end();
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    try {
      const yaml = config(jwks).replace(
        /local_jwks:\n\s+inline_string: '[^']*'/,
        `remote_jwks:\n          http_uri: { uri: "http://idp.example/jwks", cluster: idp_jwks, timeout: 1s }\n          async_fetch: { failed_refetch_duration: 0.1s }`,
      );
      const t = await nativeHost(yaml, { clusters: { idp_jwks: `http://127.0.0.1:${(srv.address() as AddressInfo).port}` } });
      const f = t.h.natives[0] as JwtAuthnFilter;
      await f.startAsyncFetch(t.h);
      expect(fetches).toBe(1); // the first fetch, failed
      up = true;
      await new Promise((r) => setTimeout(r, 300));
      expect(fetches).toBe(2); // retried after 0.1 s, then kept for cache_duration
      const token = await sign(good);
      expect((await t.send([[":method", "GET"], [":path", "/v1/x"], ["authorization", `Bearer ${token}`]])).local).toBeNull();
      expect(fetches).toBe(2);
      f.stopAsyncFetch();
    } finally {
      srv.close();
    }
  });

  it("local_jwks.filename is read when the configuration loads; an invalid local JWKS leaves no keys (JwksNoValidKeys), an invalid remote one is a failed fetch", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sluice-jwks-"));
    writeFileSync(join(dir, "jwks.json"), jwks);
    const fromFile = config(jwks).replace(/inline_string: '[^']*'/, `filename: ${join(dir, "jwks.json")}`);
    const t = await nativeHost(fromFile);
    expect((await t.send([[":method", "GET"], [":path", "/v1/x"], ["authorization", `Bearer ${await sign(good)}`]])).local).toBeNull();
    await expect(nativeHost(config(jwks).replace(/inline_string: '[^']*'/, `filename: ${join(dir, "missing.json")}`))).rejects.toThrow(/local_jwks\.filename: cannot read/);
    const bad = await nativeHost(config("{not json"));
    expect((await bad.send([[":method", "GET"], [":path", "/v1/x"], ["authorization", `Bearer ${await sign(good)}`]])).local?.body.toString()).toBe("Jwks doesn't have any valid public key");
    const srv = http.createServer((_req, res) => res.writeHead(200).end('{"keys": "nope"}'));
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    try {
      const yaml = config(jwks).replace(/local_jwks:\n\s+inline_string: '[^']*'/, `remote_jwks:\n          http_uri: { uri: "http://idp.example/jwks", cluster: idp_jwks, timeout: 1s }`);
      const r = await nativeHost(yaml, { clusters: { idp_jwks: `http://127.0.0.1:${(srv.address() as AddressInfo).port}` } });
      expect((await r.send([[":method", "GET"], [":path", "/v1/x"], ["authorization", `Bearer ${await sign(good)}`]])).local?.body.toString()).toBe("Jwks remote fetch is failed");
    } finally {
      srv.close();
    }
  });

  it("claim_to_headers: a list or object claim is its JSON, base64-encoded (addJWTClaimToHeader)", async () => {
    const t = await nativeHost(config(jwks).replace("claim_name: sub", "claim_name: groups"));
    const r = await t.send([[":method", "GET"], [":path", "/v1/x"], ["authorization", `Bearer ${await sign(good)}`]]);
    expect(header(r.upstream, "x-jwt-sub")).toBe(Buffer.from('["eng"]').toString("base64"));
  });
});
