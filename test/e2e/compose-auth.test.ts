// Issue 25's promise, end to end through `npm start` (startLocalGateway on the rendered envoy.yaml):
// a gateway.yaml with jwt_authn (a local JWKS file), identity (the consumer from the token's sub,
// else the client certificate's URI SAN), rbac, cors, ai-router and ai-ratelimit, called with the
// official SDKs. A JWT client gets its own route and token limit; an expired or wrong-audience token
// is an error the SDKs parse; a suspended consumer is denied by rbac; a browser's preflight is
// answered; over TLS, a client certificate alone makes the consumer.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import OpenAI from "openai";
import { Agent, fetch as undiciFetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { render } from "../../cli/render.js";
import { startLocalGateway, type LocalGateway } from "../../cli/start.js";

const ISSUER = "https://idp.example";
const TLS = resolve("test/fixtures/tls");
const now = () => Math.floor(Date.now() / 1000);

function gatewayYaml(jwksFile: string, tls: boolean): string {
  return `
listener:
  address: 127.0.0.1
  port: 10000
${tls ? `  tls:
    certificate: ${TLS}/server.pem
    private_key: ${TLS}/server.key
    client_ca: ${TLS}/ca.pem
` : ""}
cors:
  allow_origins: ["https://chat.example.com"]
auth:
  jwt:
    providers:
      - name: corp
        issuer: ${ISSUER}
        audiences: [sluice]
        local_jwks: { file: ${jwksFile} }
    rules:
      - prefix: /
        requires: [corp]
        allow_missing: true     # no token: identity tries the client certificate, else answers 401
identity:
  sources: [{ jwt_claim: sub }, { mtls: uri_san }]
  groups: { jwt_claim: groups }
rbac:
  action: deny
  policies:
    - name: suspended
      consumers: [mallory]
providers:
  - { name: openai-mini, provider: openai, api_key_env: OPENAI_API_KEY, model: gpt-4o-mini }
  - { name: claude, provider: anthropic, api_key_env: ANTHROPIC_API_KEY, model: claude-sonnet-4-5 }
pools:
  - { name: cheap, instances: [openai-mini] }
  - { name: capable, instances: [claude] }
filters:
  key_auth: { enabled: false }
  ai_router:
    route_header: true
    rules:
      - { name: vip, pool: capable, when: { consumer: [alice] } }
      - { name: everyone, pool: cheap, when: { model: auto } }
  ai_ratelimit:
    default_max_tokens: 100
    rules:
      - { name: per-consumer, key: [consumer], limit: 150, window: 1h }
`;
}

async function startOn(yaml: string, dir: string, log: string[]): Promise<LocalGateway> {
  writeFileSync(join(dir, "gateway.yaml"), yaml);
  render({ config: join(dir, "gateway.yaml"), outDir: join(dir, "envoy"), env: {} });
  return startLocalGateway({ envoyYaml: join(dir, "envoy", "envoy.yaml"), port: 0, adminPort: 0, env: {}, accessLog: (l) => log.push(l) });
}

let sign: (claims: Record<string, unknown>) => Promise<string>;
let jwksFile = "";

beforeAll(async () => {
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const dir = mkdtempSync(join(tmpdir(), "sluice-jwks-"));
  jwksFile = join(dir, "jwks.json");
  writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256" }] }));
  sign = (claims) => new SignJWT({ iss: ISSUER, aud: "sluice", exp: now() + 600, ...claims }).setProtectedHeader({ alg: "ES256", kid: "k1" }).sign(privateKey);
});

describe("JWT auth + routes + token limits + rbac + cors, through npm start", () => {
  let gw: LocalGateway;
  const log: string[] = [];
  beforeAll(async () => {
    gw = await startOn(gatewayYaml(jwksFile, false), mkdtempSync(join(tmpdir(), "sluice-compose-")), log);
  }, 40_000);
  afterAll(async () => gw?.close());

  // No token: the SDK needs a key, so its Authorization header is taken off instead.
  const openai = (token: string) => new OpenAI({ apiKey: token || "none", baseURL: `${gw.url}/v1`, maxRetries: 0, ...(token ? {} : { defaultHeaders: { authorization: null } }) });
  const anthropic = (token: string) => new Anthropic({ apiKey: null, authToken: token, baseURL: gw.url, maxRetries: 0 });
  const ask = (c: OpenAI) => c.chat.completions.create({ model: "auto", max_tokens: 100, messages: [{ role: "user", content: "hello" }] }).withResponse();
  const lastLog = () => JSON.parse(log.at(-1)!);

  it("a JWT's sub is the consumer, with its own route: alice to the capable pool, bob to the cheap one", async () => {
    const a = await ask(openai(await sign({ sub: "alice", groups: ["eng"] })));
    expect(a.response.headers.get("x-sluice-route")).toBe("vip");
    expect(a.data.model).toMatch(/claude-sonnet-4-5/);
    expect(lastLog()).toMatchObject({ consumer: "alice", identity_source: "jwt", groups: "eng" });
    const b = await ask(openai(await sign({ sub: "bob" })));
    expect(b.response.headers.get("x-sluice-route")).toBe("everyone");
    expect(b.data.model).toMatch(/gpt-4o-mini/);
    expect(lastLog()).toMatchObject({ consumer: "bob", identity_source: "jwt" });
  });

  it("each consumer has its own token limit: carol runs out, dave still gets answers", async () => {
    const carol = openai(await sign({ sub: "carol" }));
    let refused: any = null;
    for (let i = 0; i < 10 && !refused; i++) refused = await ask(carol).then(() => null, (e) => e);
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    expect(refused.error.message).toMatch(/per-consumer/);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    const dave = await ask(openai(await sign({ sub: "dave" })));
    expect(dave.data.choices[0].message.content).toBeTruthy();
  });

  it("an expired JWT is a 401 both SDKs parse; a wrong audience is Envoy's 403, parsed as well", async () => {
    // Past jwt_authn's default clock skew of 60 s (clock_skew_seconds).
    const expired = await sign({ sub: "alice", exp: now() - 600 });
    const e1 = await ask(openai(expired)).catch((e) => e);
    expect(e1).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(e1.error.message).toMatch(/Jwt is expired/);
    const e2 = await anthropic(expired).messages.create({ model: "auto", max_tokens: 50, messages: [{ role: "user", content: "hi" }] }).catch((e) => e);
    expect(e2).toBeInstanceOf(Anthropic.AuthenticationError);
    expect(e2.error.type).toBe("error");
    // jwt_authn answers an audience it does not accept with 403 "Audiences in Jwt are not allowed"
    // (source/extensions/filters/http/jwt_authn/verifier.cc, Status::JwtAudienceNotAllowed -> 403).
    const e3 = await ask(openai(await sign({ sub: "alice", aud: "someone-else" }))).catch((e) => e);
    expect(e3).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(e3.error.message).toMatch(/Audiences in Jwt are not allowed/);
  });

  it("no token and no certificate: identity's 401 in the client's shape", async () => {
    const e = await ask(openai("")).catch((x) => x);
    expect(e).toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it("rbac denies a suspended consumer with 403 in the client's shape", async () => {
    const e = await ask(openai(await sign({ sub: "mallory" }))).catch((x) => x);
    expect(e).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(e.error.message).toMatch(/access/i);
  });

  it("a browser's CORS preflight is answered before authentication", async () => {
    const r = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "OPTIONS",
      headers: { origin: "https://chat.example.com", "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" },
    });
    expect(r.status).toBe(200);
    expect(r.headers.get("access-control-allow-origin")).toBe("https://chat.example.com");
    expect(r.headers.get("access-control-allow-methods")).toMatch(/POST/);
    const other = await fetch(`${gw.url}/v1/chat/completions`, { method: "OPTIONS", headers: { origin: "https://evil.example", "access-control-request-method": "POST" } });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("the consumer from an mTLS client certificate, through npm start", () => {
  let gw: LocalGateway;
  const log: string[] = [];
  beforeAll(async () => {
    gw = await startOn(gatewayYaml(jwksFile, true), mkdtempSync(join(tmpdir(), "sluice-compose-tls-")), log);
  }, 40_000);
  afterAll(async () => gw?.close());

  const client = (cert: string | null, token = "") => {
    const dispatcher = new Agent({
      connect: { ca: readFileSync(`${TLS}/ca.pem`), servername: "localhost", ...(cert ? { cert: readFileSync(`${TLS}/${cert}.pem`), key: readFileSync(`${TLS}/${cert}.key`) } : {}) },
    });
    return new OpenAI({
      apiKey: token || "none", baseURL: `${gw.url}/v1`, maxRetries: 0, fetch: ((url: any, init: any) => undiciFetch(url, { ...init, dispatcher })) as any,
      ...(token ? {} : { defaultHeaders: { authorization: null } }),
    });
  };
  const ask = (c: OpenAI) => c.chat.completions.create({ model: "auto", messages: [{ role: "user", content: "hello" }] });

  it("a client certificate alone makes the consumer: its URI SAN", async () => {
    expect(gw.url).toMatch(/^https:/);
    const r = await ask(client("client-team-a"));
    expect(r.choices[0].message.content).toBeTruthy();
    expect(JSON.parse(log.at(-1)!)).toMatchObject({ consumer: "spiffe://example.org/team-a", identity_source: "mtls" });
  });

  it("a JWT wins over the certificate (the first source with a value decides)", async () => {
    await ask(client("client-team-a", await sign({ sub: "alice" })));
    expect(JSON.parse(log.at(-1)!)).toMatchObject({ consumer: "alice", identity_source: "jwt" });
  });

  it("neither a certificate nor a token: 401 in the client's shape", async () => {
    const e = await ask(client(null)).catch((x) => x);
    expect(e).toBeInstanceOf(OpenAI.AuthenticationError);
  });
});
