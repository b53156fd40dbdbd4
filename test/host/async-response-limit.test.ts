// The host's calls out (proxy_http_call, jwt_authn's JWKS fetch, ext_authz's check) hold an upstream
// answer's body only up to Envoy's AsyncClient response buffer limit (32 MiB,
// source/common/http/async_client_impl.cc AsyncRequestSharedImpl::onData): past it the stream is
// reset and the caller gets a failure, never a body it would have to hold whole.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ASYNC_RESPONSE_BUFFER_LIMIT, startHttpCall } from "../../host/http-call.js";
import { nativeHost } from "./native/helpers.js";

const MIB = 1024 * 1024;
let server: http.Server;
let url = "";
/** Bytes the server managed to write before the client went away, per path. */
const written: Record<string, number> = {};

/** Streams `size` bytes of a JSON-ish filler in 1 MiB chunks, following back-pressure. */
function stream(res: http.ServerResponse, path: string, status: number, size: number): void {
  res.writeHead(status, { "content-type": "application/json" });
  written[path] = 0;
  const chunk = Buffer.alloc(MIB, 0x20);
  const next = () => {
    while (written[path] < size) {
      const n = Math.min(MIB, size - written[path]);
      written[path] += n;
      if (!res.write(n === MIB ? chunk : chunk.subarray(0, n))) {
        res.once("drain", next);
        return;
      }
    }
    res.end();
  };
  res.on("error", () => {});
  next();
}

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const path = req.url ?? "";
    if (path === "/over") stream(res, path, 200, ASYNC_RESPONSE_BUFFER_LIMIT + 1);
    else if (path === "/at") stream(res, path, 200, ASYNC_RESPONSE_BUFFER_LIMIT);
    else if (path.startsWith("/check")) stream(res, "/check", 401, ASYNC_RESPONSE_BUFFER_LIMIT + MIB);
    else if (path === "/jwks") stream(res, path, 200, ASYNC_RESPONSE_BUFFER_LIMIT + MIB);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => server.close());

const GET = (path: string): [string, string][] => [[":method", "GET"], [":path", path], [":authority", "svc.internal"]];

describe("the AsyncClient response buffer limit (32 MiB)", () => {
  it("a body of exactly the limit is delivered; one byte more resets the call (a failure, no body)", async () => {
    const at = await startHttpCall({ url }, GET("/at"), Buffer.alloc(0), 30_000).done;
    expect(at?.body.length).toBe(ASYNC_RESPONSE_BUFFER_LIMIT);
    const over = await startHttpCall({ url }, GET("/over"), Buffer.alloc(0), 30_000).done;
    expect(over).toBeNull();
  }, 60_000);

  it("ext_authz: a denial whose body passes the limit is the service failing (status_on_error 403, ext_authz_error), not its 401", async () => {
    const t = await nativeHost(
      `
- name: envoy.filters.http.ext_authz
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
    transport_api_version: V3
    http_service:
      server_uri: { uri: "http://authz.internal", cluster: authz, timeout: 30s }
      path_prefix: /check
`,
      { clusters: { authz: url } },
    );
    const r = await t.send([[":method", "GET"], [":path", "/v1/models"]]);
    expect(r.local?.statusCode).toBe(403);
    expect(r.local?.statusDetails).toBe("ext_authz_error");
    expect(r.local?.body.length).toBe(0);
  }, 60_000);

  it("jwt_authn: a JWKS past the limit is a failed fetch (401 \"Jwks remote fetch is failed\")", async () => {
    const { privateKey } = await generateKeyPair("ES256");
    const token = await new SignJWT({ iss: "https://idp.example", exp: Math.floor(Date.UTC(2026, 11, 4, 13) / 1000) }).setProtectedHeader({ alg: "ES256", kid: "k" }).sign(privateKey);
    const t = await nativeHost(
      `
- name: envoy.filters.http.jwt_authn
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication
    providers:
      idp:
        issuer: https://idp.example
        remote_jwks: { http_uri: { uri: "http://idp.example/jwks", cluster: idp_jwks, timeout: 30s } }
    rules: [ { match: { prefix: / }, requires: { provider_name: idp } } ]
`,
      { clusters: { idp_jwks: url } },
    );
    const r = await t.send([[":method", "GET"], [":path", "/v1/models"], ["authorization", `Bearer ${token}`]]);
    expect(r.local?.statusCode).toBe(401);
    expect(r.local?.body.toString()).toBe("Jwks remote fetch is failed");
  }, 60_000);
});
