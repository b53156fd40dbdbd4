// Envoy's native filters in the local gateway, from envoy.yaml as Envoy reads it: cors, jwt_authn,
// rbac and local_ratelimit before a wasm filter (the property reader, build/test/properties.wasm),
// with an HCM local_reply_config mapper that turns their local replies into OpenAI's error shape.
// The client is the OpenAI SDK, its API key a JWT signed by a key of a JWKS made here.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { startLocalGateway, type LocalGateway } from "../../cli/start.js";
import { validateEnvoyYaml } from "../../cli/envoy-validate.js";
import { readFileSync } from "node:fs";

const PAYLOAD_SUB = "metadata|filter_metadata|envoy.filters.http.jwt_authn|jwt_payload|sub";
const PAYLOAD_GROUPS = "metadata|filter_metadata|envoy.filters.http.jwt_authn|jwt_payload|groups";

function envoyYaml(upstreamPort: number, jwks: string, filters?: unknown[], clusters: { name: string; port: number }[] = []): string {
  const http_filters = filters ?? [
    { name: "envoy.filters.http.cors", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors" } },
    {
      name: "envoy.filters.http.jwt_authn",
      typed_config: {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        providers: {
          idp: {
            issuer: "https://idp.example",
            audiences: ["sluice"],
            local_jwks: { inline_string: jwks },
            payload_in_metadata: "jwt_payload",
            claim_to_headers: [{ header_name: "x-sluice-user", claim_name: "sub" }],
          },
        },
        rules: [{ match: { prefix: "/v1" }, requires: { provider_name: "idp" } }],
      },
    },
    {
      name: "envoy.filters.http.rbac",
      typed_config: {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
        rules: {
          action: "DENY",
          policies: {
            "suspended-users": {
              permissions: [{ any: true }],
              principals: [{ metadata: { filter: "envoy.filters.http.jwt_authn", path: [{ key: "jwt_payload" }, { key: "groups" }], value: { list_match: { one_of: { string_match: { exact: "suspended" } } } } } }],
            },
          },
        },
      },
    },
    {
      name: "envoy.filters.http.local_ratelimit",
      typed_config: {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
        stat_prefix: "http_local_rate_limiter",
        token_bucket: { max_tokens: 2, tokens_per_fill: 2, fill_interval: "60s" },
        filter_enabled: { runtime_key: "local_rate_limit_enabled", default_value: { numerator: 100, denominator: "HUNDRED" } },
        filter_enforced: { runtime_key: "local_rate_limit_enforced", default_value: { numerator: 100, denominator: "HUNDRED" } },
        enable_x_ratelimit_headers: "DRAFT_VERSION_03",
      },
    },
    {
      name: "props",
      typed_config: {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        config: {
          name: "props",
          configuration: { "@type": "type.googleapis.com/google.protobuf.StringValue", value: [PAYLOAD_SUB, PAYLOAD_GROUPS, "request|headers|x-sluice-user"].join("\n") },
          vm_config: { runtime: "envoy.wasm.runtime.v8", code: { local: { filename: resolve("build/test/properties.wasm") } } },
        },
      },
    },
    { name: "envoy.filters.http.router", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } },
  ];
  const doc = {
    static_resources: {
      listeners: [{
        name: "sluice",
        address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
        filter_chains: [{
          filters: [{
            name: "envoy.filters.network.http_connection_manager",
            typed_config: {
              "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
              stat_prefix: "sluice",
              // The native filters' local replies in OpenAI's error shape, as any local reply.
              local_reply_config: {
                mappers: [{
                  filter: { and_filter: { filters: [
                    { status_code_filter: { comparison: { op: "GE", value: { default_value: 400, runtime_key: "unused" } } } },
                    { header_filter: { header: { name: ":path", string_match: { prefix: "/v1" } } } },
                  ] } },
                  body_format_override: { json_format: { error: { message: "%LOCAL_REPLY_BODY%", type: "sluice_error", param: null, code: "%RESPONSE_CODE_DETAILS%" } } },
                }],
              },
              route_config: {
                virtual_hosts: [{
                  name: "all",
                  domains: ["*"],
                  routes: [{
                    match: { prefix: "/" },
                    route: { cluster_header: "x-sluice-cluster" },
                    typed_per_filter_config: {
                      "envoy.filters.http.cors": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
                        allow_origin_string_match: [{ exact: "https://app.example" }],
                        allow_methods: "GET, POST, OPTIONS",
                        allow_headers: "authorization, content-type, x-sluice-cluster",
                        max_age: "86400",
                      },
                    },
                  }],
                }],
              },
              http_filters,
            },
          }],
        }],
      }],
      clusters: [{ name: "upstream", port: upstreamPort }, ...clusters].map((c) => ({
        name: c.name,
        connect_timeout: "1s",
        load_assignment: { cluster_name: c.name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: c.port } } } }] }] },
      })),
    },
  };
  const path = join(mkdtempSync(join(tmpdir(), "sluice-native-")), "envoy.yaml");
  writeFileSync(path, stringify(doc));
  return path;
}

describe("local gateway: Envoy's native filters before the wasm filters", () => {
  let gw: LocalGateway;
  let upstream: http.Server;
  let sign: (claims: Record<string, unknown>) => Promise<string>;
  let yamlPath = "";
  const upstreamSaw: http.IncomingHttpHeaders[] = [];
  const now = () => Math.floor(Date.now() / 1000);

  beforeAll(async () => {
    const { privateKey, publicKey } = await generateKeyPair("ES256");
    const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: "main", alg: "ES256" }] });
    sign = (claims) => new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: "main" }).sign(privateKey);
    upstream = http.createServer((req, res) => {
      upstreamSaw.push(req.headers);
      req.resume();
      req.on("end", () =>
        res.writeHead(200, { "content-type": "application/json" }).end(
          JSON.stringify({ id: "c1", object: "chat.completion", created: 1, model: "gpt-4o", choices: [{ index: 0, message: { role: "assistant", content: "hi" }, finish_reason: "stop" }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }),
        ),
      );
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    yamlPath = envoyYaml((upstream.address() as AddressInfo).port, jwks);
    gw = await startLocalGateway({ envoyYaml: yamlPath, port: 0, env: {}, accessLog: () => {} });
  });
  afterAll(async () => {
    await gw?.close();
    await new Promise((r) => upstream.close(r));
  });

  const client = (apiKey: string) => new OpenAI({ apiKey, baseURL: `${gw.url}/v1`, defaultHeaders: { "x-sluice-cluster": "upstream" }, maxRetries: 0 });
  const chat = (apiKey: string) => client(apiKey).chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hello" }] });
  const propRead = (path: string) => {
    const l = gw.host.getLogs("info").map((x) => x.split("\t")).filter(([ph, p]) => ph === "request_headers" && p === path).at(-1);
    return l && l[2] === "0" ? Buffer.from(l[3], "hex").toString() : undefined;
  };
  const failure = async (p: Promise<unknown>) => {
    const e = (await p.then(() => null, (x) => x)) as InstanceType<typeof OpenAI.APIError> | null;
    expect(e).toBeInstanceOf(OpenAI.APIError);
    return e!;
  };

  it("the envoy.yaml the gateway runs is valid for Envoy (its protos)", () => {
    const r = validateEnvoyYaml(readFileSync(yamlPath, "utf8"));
    expect(r.errors).toEqual([]);
    for (const t of ["jwt_authn.v3.JwtAuthentication", "rbac.v3.RBAC", "cors.v3.Cors", "cors.v3.CorsPolicy", "local_ratelimit.v3.LocalRateLimit"]) {
      expect([...r.types].some((x) => x.endsWith(`envoy.extensions.filters.http.${t}`))).toBe(true);
    }
  });

  // The order matters: the rate limit's bucket (2 tokens) counts only what jwt_authn and rbac let through.
  it("a JWT signed by a key of the local JWKS passes; its claims are in the metadata property the wasm filter reads", async () => {
    const token = await sign({ iss: "https://idp.example", aud: "sluice", sub: "alice", groups: ["eng"], exp: now() + 600 });
    const answer = await chat(token);
    expect(answer.choices[0].message.content).toBe("hi");
    expect(propRead(PAYLOAD_SUB)).toBe("alice");
    expect(propRead("request|headers|x-sluice-user")).toBe("alice");
    expect(upstreamSaw.at(-1)?.["x-sluice-user"]).toBe("alice");
    expect(upstreamSaw.at(-1)?.authorization).toBeUndefined(); // jwt_authn removes it (forward: false)
  });

  it("an expired JWT gets 401 \"Jwt is expired\" in a body the OpenAI SDK parses; a wrong audience gets Envoy's 403", async () => {
    const expired = await failure(chat(await sign({ iss: "https://idp.example", aud: "sluice", sub: "alice", exp: now() - 3600 })));
    expect(expired.status).toBe(401);
    expect(expired).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(expired.error).toEqual({ message: "Jwt is expired", type: "sluice_error", param: null, code: "jwt_authn_access_denied{Jwt_is_expired}" });
    expect(expired.headers?.get("www-authenticate")).toMatch(/^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions", error="invalid_token"$/);
    // Envoy's filter.cc answers JwtAudienceNotAllowed with 403 Forbidden, the rest with 401.
    const aud = await failure(chat(await sign({ iss: "https://idp.example", aud: "other", sub: "alice", exp: now() + 600 })));
    expect(aud.status).toBe(403);
    expect((aud.error as { message: string }).message).toBe("Audiences in Jwt are not allowed");
  });

  it("an RBAC DENY policy on a jwt_authn claim gets 403 \"RBAC: access denied\"", async () => {
    const e = await failure(chat(await sign({ iss: "https://idp.example", aud: "sluice", sub: "mallory", groups: ["suspended"], exp: now() + 600 })));
    expect(e.status).toBe(403);
    expect(e.error).toEqual({ message: "RBAC: access denied", type: "sluice_error", param: null, code: "rbac_access_denied_matched_policy[suspended-users]" });
  });

  it("a CORS preflight from an allowed origin is answered by the cors filter with Envoy's headers", async () => {
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "OPTIONS",
      headers: { origin: "https://app.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization" },
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("");
    expect(res.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(res.headers.get("access-control-allow-methods")).toBe("GET, POST, OPTIONS");
    expect(res.headers.get("access-control-allow-headers")).toBe("authorization, content-type, x-sluice-cluster");
    expect(res.headers.get("access-control-max-age")).toBe("86400");
    expect(res.headers.get("server")).toBe("envoy");
  });

  it("local_ratelimit answers 429 local_rate_limited once its bucket is empty, with the x-ratelimit-* headers", async () => {
    const token = await sign({ iss: "https://idp.example", aud: "sluice", sub: "bob", groups: ["eng"], exp: now() + 600 });
    const { response } = await client(token).chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "x" }] }).withResponse();
    expect(response.headers.get("x-ratelimit-limit")).toBe("2");
    expect(response.headers.get("x-ratelimit-remaining")).toBe("0");
    const e = await failure(chat(token));
    expect(e.status).toBe(429);
    expect(e).toBeInstanceOf(OpenAI.RateLimitError);
    expect(e.error).toEqual({ message: "local_rate_limited", type: "sluice_error", param: null, code: "local_rate_limited" });
    expect(e.headers?.get("x-ratelimit-remaining")).toBe("0");
  });
});

describe("local gateway: ext_authz against an HTTP authorization service", () => {
  let gw: LocalGateway;
  let upstream: http.Server;
  let authz: http.Server;

  beforeAll(async () => {
    upstream = http.createServer((req, res) => res.end(`upstream saw x-consumer=${req.headers["x-consumer"]}`));
    authz = http.createServer((req, res) => {
      if (req.headers.authorization === "Bearer good") res.writeHead(200, { "x-consumer": "team-a", "x-team": "a" }).end();
      else res.writeHead(403, { "content-type": "application/json" }).end('{"error":{"message":"not allowed","type":"permission_error"}}');
    });
    for (const s of [upstream, authz]) await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    const port = (s: http.Server) => (s.address() as AddressInfo).port;
    const filters = [
      {
        name: "envoy.filters.http.ext_authz",
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
          transport_api_version: "V3",
          http_service: {
            server_uri: { uri: "http://authz.internal", cluster: "authz", timeout: "1s" },
            authorization_response: {
              allowed_upstream_headers: { patterns: [{ exact: "x-consumer" }] },
              dynamic_metadata_from_headers: { patterns: [{ exact: "x-team" }] },
            },
          },
        },
      },
      {
        name: "props",
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
          config: {
            name: "props",
            configuration: { "@type": "type.googleapis.com/google.protobuf.StringValue", value: "metadata|filter_metadata|envoy.filters.http.ext_authz|x-team" },
            vm_config: { runtime: "envoy.wasm.runtime.v8", code: { local: { filename: resolve("build/test/properties.wasm") } } },
          },
        },
      },
      { name: "envoy.filters.http.router", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } },
    ];
    const path = envoyYaml(port(upstream), "", filters, [{ name: "authz", port: port(authz) }]);
    expect(validateEnvoyYaml(readFileSync(path, "utf8")).errors).toEqual([]);
    gw = await startLocalGateway({ envoyYaml: path, port: 0, env: {}, accessLog: () => {} });
  });
  afterAll(async () => {
    await gw?.close();
    for (const s of [upstream, authz]) await new Promise((r) => s.close(r));
  });

  it("an allowed check sets the upstream header and the metadata the wasm filter reads; a denied one returns the service's answer", async () => {
    const ok = await fetch(`${gw.url}/v1/x`, { headers: { authorization: "Bearer good", "x-sluice-cluster": "upstream", "x-consumer": "forged" } });
    expect(await ok.text()).toBe("upstream saw x-consumer=team-a");
    const l = gw.host.getLogs("info").map((x) => x.split("\t")).filter(([ph]) => ph === "request_headers").at(-1)!;
    expect(Buffer.from(l[3], "hex").toString()).toBe("a");
    // Outside /v1 no local_reply_config mapper matches: the service's own status, body and headers.
    const denied = await fetch(`${gw.url}/admin`, { headers: { authorization: "Bearer bad", "x-sluice-cluster": "upstream" } });
    expect(denied.status).toBe(403);
    expect(denied.headers.get("content-type")).toBe("application/json");
    expect(await denied.json()).toEqual({ error: { message: "not allowed", type: "permission_error" } });
    // Under /v1 the denial is a local reply like any other: the mapper rewrites it.
    const mapped = await fetch(`${gw.url}/v1/x`, { headers: { authorization: "Bearer bad", "x-sluice-cluster": "upstream" } });
    expect(mapped.status).toBe(403);
    expect(await mapped.json()).toEqual({ error: { message: '{"error":{"message":"not allowed","type":"permission_error"}}', type: "sluice_error", param: null, code: "ext_authz_denied" } });
  });
});
