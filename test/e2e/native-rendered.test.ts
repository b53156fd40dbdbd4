// What `npm run render` writes for gateway.yaml's auth.jwt, auth.ext_authz, rbac, request_rate_limit and
// cors, run by the local gateway as Envoy would run it: a gateway.yaml with every section is rendered,
// the local gateway starts on that envoy.yaml (startLocalGateway, a mock OpenAI provider), and the
// official SDKs see each filter's behaviour. The JWKS comes from a small HTTP server through the
// rendered remote JWKS cluster (async_fetch: fetched before the listener opens), the authorization
// service is a small HTTP server behind the rendered ext_authz cluster, and every denial reaches the
// client in its own API's error shape through the rendered local_reply_config mappers.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { render } from "../../cli/render.js";
import { validateEnvoyYaml } from "../../cli/envoy-validate.js";
import { startLocalGateway, type LocalGateway } from "../../cli/start.js";

const ISSUER = "https://idp.example";
const now = () => Math.floor(Date.now() / 1000);

function listen(server: http.Server): Promise<number> {
  return new Promise((r) => server.listen(0, "127.0.0.1", () => r((server.address() as AddressInfo).port)));
}

describe("local gateway on a rendered gateway.yaml with every native section", () => {
  let gw: LocalGateway;
  let jwksServer: http.Server;
  let authzServer: http.Server;
  let jwksFetches = 0;
  let jwksAtStart = 0;
  const authzSaw: http.IncomingHttpHeaders[] = [];
  let sign: (claims: Record<string, unknown>) => Promise<string>;
  let envoyYaml = "";

  beforeAll(async () => {
    const { privateKey, publicKey } = await generateKeyPair("ES256");
    const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256" }] });
    sign = (claims) => new SignJWT({ iss: ISSUER, aud: "sluice", exp: now() + 600, ...claims }).setProtectedHeader({ alg: "ES256", kid: "k1" }).sign(privateKey);
    jwksServer = http.createServer((req, res) => {
      jwksFetches++;
      res.writeHead(req.url === "/jwks" ? 200 : 404, { "content-type": "application/json" }).end(jwks);
    });
    // The authorization service: denies a request whose x-authz-test says deny (403, its own body),
    // answers 401 for "nocreds", and otherwise allows it with x-tenant for the upstream.
    authzServer = http.createServer((req, res) => {
      authzSaw.push(req.headers);
      const t = req.headers["x-authz-test"];
      if (t === "deny") res.writeHead(403, { "content-type": "text/plain" }).end("denied by policy 7");
      else if (t === "nocreds") res.writeHead(401).end();
      else res.writeHead(200, { "x-tenant": "acme" }).end();
    });
    const jwksPort = await listen(jwksServer);
    const authzPort = await listen(authzServer);
    const dir = mkdtempSync(join(tmpdir(), "sluice-native-rendered-"));
    writeFileSync(
      join(dir, "gateway.yaml"),
      `
listener: { address: 127.0.0.1, port: 10000 }
consumers:
  - { name: team-a, keys: [key-a] }
  - { name: team-b, keys: [key-b] }
  - { name: team-c, keys: [key-c] }
providers:
  - { name: openai, provider: openai, api_key_env: OPENAI_API_KEY }
cors:
  allow_origins: ["https://chat.example.com"]
auth:
  jwt:
    providers:
      - name: corp
        issuer: ${ISSUER}
        audiences: [sluice]
        remote_jwks: { url: "http://127.0.0.1:${jwksPort}/jwks" }
        claim_to_headers: [{ claim: sub, header: x-user }]
    rules:
      - prefix: /
        requires: [corp]
  ext_authz:
    http:
      url: http://127.0.0.1:${authzPort}/check
      upstream_headers: [x-tenant]
    allowed_headers: [x-authz-test]
rbac:
  action: deny
  policies:
    - name: suspended
      claims: { groups: [suspended] }
    - name: team-c-blocked
      consumers: [team-c]
request_rate_limit:
  listener: { requests: 1000, per: 60s }
  consumer: { requests: 2, per: 60s }
`,
    );
    render({ config: join(dir, "gateway.yaml"), outDir: join(dir, "envoy"), env: {} });
    envoyYaml = join(dir, "envoy", "envoy.yaml");
    gw = await startLocalGateway({ envoyYaml, port: 0, env: {}, accessLog: () => {} });
    jwksAtStart = jwksFetches;
  }, 40_000);

  afterAll(async () => {
    await gw?.close();
    await new Promise((r) => jwksServer?.close(r));
    await new Promise((r) => authzServer?.close(r));
  });

  const openai = (jwt: string, key: string, extra: Record<string, string> = {}) =>
    new OpenAI({ apiKey: jwt, baseURL: `${gw.url}/v1`, defaultHeaders: { "x-api-key": key, ...extra }, maxRetries: 0 });
  const chat = (c: OpenAI) => c.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hello" }] });
  // The JWT in authorization (jwt_authn's default place), the consumer's key in x-api-key.
  const anthropic = (jwt: string, key: string) => new Anthropic({ apiKey: null, authToken: jwt, baseURL: gw.url, defaultHeaders: { "x-api-key": key }, maxRetries: 0 });
  const failure = async <E>(p: Promise<unknown>, cls: new (...a: any[]) => E): Promise<E & { status: number; error: any; headers?: any }> => {
    const e = await p.then(() => null, (x) => x);
    expect(e).toBeInstanceOf(cls);
    return e;
  };

  it("the rendered envoy.yaml is valid for Envoy, and the gateway loads every filter of it in the rendered order", () => {
    expect(validateEnvoyYaml(readFileSync(envoyYaml, "utf8")).errors).toEqual([]);
    expect(gw.config.natives.map((n) => [n.name, n.wasmBefore])).toEqual([
      ["envoy.filters.http.cors", 0],
      ["sluice.identity_headers", 0],
      ["envoy.filters.http.jwt_authn", 0],
      ["envoy.filters.http.ext_authz", 0],
      ["envoy.filters.http.rbac", 1], // after key-auth, which sets the consumer
      ["envoy.filters.http.local_ratelimit", 1],
    ]);
  });

  it("jwt_authn: the JWKS was fetched through the rendered cluster before the listener opened; a JWT it signs passes, its sub replaces a client-sent x-user", async () => {
    expect(jwksAtStart).toBe(1);
    const jwt = await sign({ sub: "alice", groups: ["eng"] });
    const answer = await chat(openai(jwt, "key-b", { "x-user": "mallory", "x-tenant": "evil" }));
    expect(answer.object).toBe("chat.completion");
    const seen = gw.mocks.openai.lastRequest()!.headers;
    // sluice.identity_headers removed the client's x-user and x-tenant; jwt_authn and ext_authz set them.
    expect(seen["x-user"]).toBe("alice");
    expect(seen["x-tenant"]).toBe("acme");
    expect(jwksFetches).toBe(1); // the cached keys served the request
  });

  it("jwt_authn: an expired JWT is 401 in OpenAI's shape (failed_status_in_metadata mapper), and in Anthropic's for an Anthropic client", async () => {
    const expired = await sign({ sub: "alice", exp: now() - 3600 });
    const e = await failure(chat(openai(expired, "key-b")), OpenAI.AuthenticationError);
    expect(e.status).toBe(401);
    expect(e.error).toMatchObject({ message: "Jwt is expired", type: "invalid_request_error", code: "invalid_token" });
    expect(e.headers?.get("www-authenticate")).toMatch(/^Bearer realm=".*", error="invalid_token"$/);
    const a = await failure(anthropic(expired, "key-b").messages.create({ model: "claude-sonnet-4-5", max_tokens: 5, messages: [{ role: "user", content: "hi" }] }), Anthropic.AuthenticationError);
    expect(a.error).toEqual({ type: "error", error: { type: "authentication_error", message: "Jwt is expired" } });
  });

  it("ext_authz: the service's denial is the client's 403 in its shape; its 401 is an authentication error", async () => {
    const jwt = await sign({ sub: "alice" });
    const e = await failure(chat(openai(jwt, "key-b", { "x-authz-test": "deny" })), OpenAI.PermissionDeniedError);
    expect(e.status).toBe(403);
    expect(e.error).toMatchObject({ message: "The authorization service denied the request.", type: "invalid_request_error", code: "access_denied" });
    expect(authzSaw.at(-1)?.["x-authz-test"]).toBe("deny");
    const u = await failure(chat(openai(jwt, "key-b", { "x-authz-test": "nocreds" })), OpenAI.AuthenticationError);
    expect(u.error).toMatchObject({ code: "invalid_credentials" });
  });

  it("rbac: a DENY policy on a claim (sourced_metadata) and one on a consumer (filter_state) answer 403 in the client's shape", async () => {
    const suspended = await sign({ sub: "eve", groups: ["suspended"] });
    const e = await failure(chat(openai(suspended, "key-b")), OpenAI.PermissionDeniedError);
    expect(e.error).toMatchObject({ message: "Access denied by the gateway's access rules.", code: "access_denied" });
    const jwt = await sign({ sub: "carol" });
    const c = await failure(anthropic(jwt, "key-c").messages.create({ model: "claude-sonnet-4-5", max_tokens: 5, messages: [{ role: "user", content: "hi" }] }), Anthropic.PermissionDeniedError);
    expect(c.error).toEqual({ type: "error", error: { type: "permission_error", message: "Access denied by the gateway's access rules." } });
  });

  it("local_ratelimit: each consumer has its own bucket (wildcard descriptor from filter state); past it, 429 in the client's shape with Envoy's x-ratelimit-* headers", async () => {
    const jwt = await sign({ sub: "alice" });
    const first = await chat(openai(jwt, "key-a")).withResponse();
    expect(first.response.headers.get("x-ratelimit-limit")).toBe("2");
    expect(first.response.headers.get("x-ratelimit-remaining")).toBe("1");
    await chat(openai(jwt, "key-a"));
    const e = await failure(chat(openai(jwt, "key-a")), OpenAI.RateLimitError);
    expect(e.status).toBe(429);
    expect(e.error).toMatchObject({ message: "Too many requests: the gateway's request rate limit was reached.", type: "requests", code: "rate_limit_exceeded" });
    expect(e.headers?.get("x-ratelimit-remaining")).toBe("0");
    const a = await failure(anthropic(jwt, "key-a").messages.create({ model: "claude-sonnet-4-5", max_tokens: 5, messages: [{ role: "user", content: "hi" }] }), Anthropic.RateLimitError);
    expect(a.error).toEqual({ type: "error", error: { type: "rate_limit_error", message: "Too many requests: the gateway's request rate limit was reached." } });
    // team-b's bucket is its own: still served.
    expect((await chat(openai(jwt, "key-b"))).object).toBe("chat.completion");
  });
});
