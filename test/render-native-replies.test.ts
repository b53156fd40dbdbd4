// The rendered local_reply_config mappers for the native filters' denials, run by the host on the
// rendered envoy.yaml: each denial is shaped as what it is, also when jwt_authn left a failure status
// in the metadata of a request it let through (authenticator.cc doneWithStatus writes it for every
// failed token; verifier.cc keeps it when another provider of requires_any passes).
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { render } from "../cli/render.js";
import { Host } from "../host/index.js";
import { loadEnvoyConfig } from "../host/envoy-config.js";

async function issuer(name: string) {
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: name, alg: "ES256" }] });
  const sign = (claims: Record<string, unknown>) =>
    new SignJWT({ iss: `https://${name}.example`, exp: Math.floor(Date.now() / 1000) + 600, ...claims }).setProtectedHeader({ alg: "ES256", kid: name }).sign(privateKey);
  return { jwks, sign };
}

describe("rendered native denial mappers", () => {
  it("a request one provider of requires_any failed and another passed: its rbac denial is shaped as rbac's, a real jwt denial as jwt's", async () => {
    const a = await issuer("a");
    const b = await issuer("b");
    const dir = mkdtempSync(join(tmpdir(), "sluice-native-replies-"));
    writeFileSync(
      join(dir, "gateway.yaml"),
      `
listener: { port: 10000 }
consumers: [ { name: team-a, keys: [key-a] } ]
providers: [ { name: openai, provider: openai, api_key_env: OPENAI_API_KEY } ]
filters: { key_auth: { enabled: false } }
auth:
  jwt:
    providers:
      - { name: a, issuer: "https://a.example", local_jwks: { inline: '${a.jwks}' } }
      - { name: b, issuer: "https://b.example", local_jwks: { inline: '${b.jwks}' } }
    rules: [ { prefix: /, requires: [a, b] } ]
rbac:
  action: deny
  policies: [ { name: suspended, claims: { groups: [suspended] } } ]
`,
    );
    render({ config: join(dir, "gateway.yaml"), outDir: join(dir, "envoy"), env: {} });
    const cfg = loadEnvoyConfig(join(dir, "envoy", "envoy.yaml"));
    const host = await Host.create({ filters: [], nativeFilters: cfg.natives, localReplyConfig: cfg.localReply ?? undefined });
    const send = async (token: string) => {
      const s = host.newStream();
      s.callOnRequestHeaders([[":scheme", "http"], [":authority", "gw"], [":method", "POST"], [":path", "/v1/chat/completions"], ["authorization", `Bearer ${token}`]], true);
      await host.settle();
      return s;
    };
    // b's token: provider a fails (issuer not configured for it) and leaves its failure status; b passes.
    const denied = await send(await b.sign({ sub: "eve", groups: ["suspended"] }));
    expect(denied.info.dynamicMetadata["envoy.filters.http.jwt_authn"]?.jwt_failure).toEqual({ code: 24, message: "Jwt issuer is not configured" });
    const r = denied.getSentLocalResponse();
    expect(r?.statusCode).toBe(403);
    expect(JSON.parse(r!.body.toString())).toEqual({ error: { message: "Access denied by the gateway's access rules.", type: "invalid_request_error", code: "access_denied" } });
    // A token neither provider accepts: jwt_authn's own 401, shaped as an invalid token.
    const bad = (await send(await (await issuer("c")).sign({ sub: "x" }))).getSentLocalResponse();
    expect(bad?.statusCode).toBe(401);
    expect(JSON.parse(bad!.body.toString()).error).toMatchObject({ type: "invalid_request_error", code: "invalid_token" });
  });
});
