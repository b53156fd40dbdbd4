// identity end to end: a gateway.yaml with auth.jwt (a local JWKS made here) and identity, rendered,
// run by the local gateway with its mock providers, called with the official SDKs. The consumer comes
// from the verified token's sub, its groups feed a token limit, and the access log says where the
// consumer came from.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { parse, stringify } from "yaml";
import { render } from "../../cli/render.js";
import { startLocalGateway, type LocalGateway } from "../../cli/start.js";

let gw: LocalGateway;
const log: string[] = [];
let sign: (claims: Record<string, unknown>) => Promise<string>;
const now = () => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256" }] });
  sign = (claims) => new SignJWT({ iss: "https://idp.example", aud: "sluice", exp: now() + 600, ...claims }).setProtectedHeader({ alg: "ES256", kid: "k1" }).sign(privateKey);
  // gateway.yaml without auth.jwt: the local gateway does not run every field render writes for
  // jwt_authn (failed_status_in_metadata, the metadata_filter local-reply mappers of its denials), so
  // jwt_authn is put into the rendered envoy.yaml here, as Envoy would run it, before identity.
  const yaml = `
listener: { address: 127.0.0.1, port: 10000 }
admin: { port: 9901 }
identity:
  sources: [{ jwt_claim: sub }]
  groups: { jwt_claim: groups }
providers:
  - { name: openai, provider: openai, api_key_env: OPENAI_API_KEY, models: ["gpt-*"] }
  - { name: anthropic, provider: anthropic, api_key_env: ANTHROPIC_API_KEY, models: ["claude-*"] }
filters:
  key_auth: { enabled: false }
  ai_ratelimit:
    default_max_tokens: 100
    rules: [{ name: team, key: [group], limit: 150, window: 1h }]
`;
  const dir = mkdtempSync(join(tmpdir(), "sluice-identity-"));
  writeFileSync(join(dir, "gateway.yaml"), yaml);
  render({ config: join(dir, "gateway.yaml"), outDir: join(dir, "envoy"), env: {} });
  const envoyPath = join(dir, "envoy", "envoy.yaml");
  const envoy = parse(readFileSync(envoyPath, "utf8"));
  const hcm = envoy.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  expect(hcm.http_filters[0].name).toBe("sluice.identity");
  hcm.http_filters.unshift({
    name: "envoy.filters.http.jwt_authn",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
      providers: { idp: { issuer: "https://idp.example", audiences: ["sluice"], local_jwks: { inline_string: jwks }, payload_in_metadata: "jwt_payload" } },
      // No token: identity decides (and answers 401).
      rules: [{ match: { prefix: "/" }, requires: { requires_any: { requirements: [{ provider_name: "idp" }, { allow_missing: {} }] } } }],
    },
  });
  writeFileSync(envoyPath, stringify(envoy));
  gw = await startLocalGateway({ envoyYaml: join(dir, "envoy", "envoy.yaml"), port: 0, adminPort: 0, env: {}, accessLog: (l) => log.push(l) });
});

afterAll(async () => {
  await gw?.close();
});

async function lastLogged(n: number): Promise<Record<string, unknown>> {
  for (let i = 0; i < 200 && log.length < n; i++) await new Promise((res) => setTimeout(res, 10));
  return JSON.parse(log[n - 1]);
}

const openai = (apiKey: string) => new OpenAI({ apiKey, baseURL: `${gw.url}/v1`, maxRetries: 0 });
// Anthropic's SDK sends its apiKey as Authorization: Bearer, where jwt_authn reads a token; without
// one (the header removed), the request has no identity.
const anthropic = (token: string | null) =>
  new Anthropic({ apiKey: token ?? "unused", baseURL: gw.url, maxRetries: 0, ...(token === null ? { defaultHeaders: { authorization: null } } : {}) });
const chat = (apiKey: string, max_tokens?: number) => openai(apiKey).chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }], ...(max_tokens ? { max_tokens } : {}) });

describe("identity in the local gateway", () => {
  it("a verified token's sub is the consumer; the access log says consumer and identity_source", async () => {
    const before = log.length;
    const answer = await chat(await sign({ sub: "alice@example.com", groups: ["search"] }));
    expect(answer.choices.length).toBe(1);
    const line = await lastLogged(before + 1);
    expect(line.consumer).toBe("alice@example.com");
    expect(line.identity_source).toBe("jwt");
  });

  it("no token: identity's 401 in OpenAI's shape (the SDK's AuthenticationError) with www-authenticate", async () => {
    const r = await fetch(`${gw.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }) });
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate")).toBe('Bearer realm="sluice"');
    expect(await r.json()).toEqual({ error: { message: expect.stringMatching(/^No identity/), type: "invalid_request_error", param: null, code: "invalid_identity" } });
  });

  it("no token on /v1/messages: 401 in Anthropic's shape (the SDK's AuthenticationError)", async () => {
    const e = await anthropic(null).messages.create({ model: "claude-sonnet-4", max_tokens: 10, messages: [{ role: "user", content: "hi" }] }).then(() => null, (x) => x);
    expect(e).toBeInstanceOf(Anthropic.AuthenticationError);
    expect(e.error).toEqual({ type: "error", error: { type: "authentication_error", message: expect.stringMatching(/^No identity/) } });
  });

  it("Anthropic's SDK with the token as its key: the consumer is the token's sub", async () => {
    const before = log.length;
    const answer = await anthropic(await sign({ sub: "frank" })).messages.create({ model: "claude-sonnet-4", max_tokens: 10, messages: [{ role: "user", content: "hi" }] });
    expect(answer.type).toBe("message");
    expect((await lastLogged(before + 1)).consumer).toBe("frank");
  });

  it("a hostile sub in a valid token is refused, not passed to the limits and the log", async () => {
    const e = await chat(await sign({ sub: "alice\nconsumer=admin" })).then(() => null, (x) => x);
    expect(e).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(e.status).toBe(401);
    expect(e.headers.get("www-authenticate")).toBe('Bearer realm="sluice", error="invalid_token"');
  });

  it("the groups claim feeds the group token limit: the team's budget is shared by its members", async () => {
    // The team's limit is 150 tokens an hour. A request reserves its prompt estimate + max_tokens (140),
    // and the mock's usage then replaces the reservation: the second member's request no longer fits.
    const status = async (sub: string, groups: unknown) => chat(await sign({ sub, groups }), 140).then(() => 200, (x) => x.status as number);
    expect(await status("bob", "ml")).toBe(200);
    expect(await status("carol", ["ml", "search"])).toBe(429);
    // Another team has its own budget.
    expect(await status("erin", ["ops"])).toBe(200);
  });
});
