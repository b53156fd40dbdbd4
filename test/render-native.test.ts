// gateway.yaml's auth (jwt, ext_authz), cors, rbac and request_rate_limit: rendered as Envoy's own
// filters (jwt_authn, ext_authz, rbac, cors, local_ratelimit) around Sluice's, validated strictly
// against Envoy's protos (newer fields declared in NEWER_FIELDS), and refused with line and field
// when wrong.
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { GatewayConfigError, parseGatewayConfig, type GatewayConfig } from "../cli/gateway-config.js";
import { renderEcds, renderEnvoy as renderEnvoyYaml, renderFiles } from "../cli/render.js";
import { renderedInline } from "./fixtures/ecds.js";

/** envoy.yaml as Envoy runs it: the wasm filters' ECDS files inlined. */
const renderEnvoy = (cfg: any, opts: any = {}) => renderedInline(renderEnvoyYaml, renderEcds, cfg, opts);
import { validateEnvoyConfig } from "../cli/envoy-validate.js";
import { parseLocalReplyConfig, rewriteLocalReply } from "../host/local-reply.js";

const ENV = { OPENAI_API_KEY: "sk-o", ANTHROPIC_API_KEY: "sk-a" };

const JWKS = JSON.stringify({ keys: [{ kty: "EC", crv: "P-256", kid: "k1", x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" }] });

/** Every native filter at once, beside every Sluice filter. */
const ALL = `
listener: { port: 10000 }
cors:
  allow_origins: ["https://chat.example.com", "https://*.example.org", "http://localhost:5173"]
  allow_credentials: true
  max_age: 5m
auth:
  jwt:
    providers:
      - name: corp
        issuer: https://login.example.com/realms/corp
        audiences: [sluice, sluice-dev]
        remote_jwks: { url: "https://login.example.com/realms/corp/certs", cache_duration: 15m, timeout: 2s }
        claim_to_headers:
          - { claim: sub, header: X-User }
          - { claim: realm_access.team, header: x-team }
        clock_skew: 30s
      - name: ci
        issuer: sluice-ci
        local_jwks: { inline: '${JWKS}' }
        from_headers: [{ name: x-ci-token }]
        forward: true
      - name: partner
        issuer: https://partner.example.net
        local_jwks: { file: /etc/sluice/partner-jwks.json }
    rules:
      - prefix: /v1/models
        requires: []
      - prefix: /ci/
        requires: [ci]
      - prefix: /
        requires: [corp, partner]
        allow_missing: true
  ext_authz:
    http:
      url: http://authz.internal:9000/check
      upstream_headers: [x-tenant]
    timeout: 300ms
    allowed_headers: [authorization, x-api-key]
rbac:
  action: allow
  policies:
    - name: admins
      claims: { groups: [admins, ops] }
    - name: team-a-chat
      consumers: [team-a]
      paths: ["/v1/chat/completions", "/v1/messages*"]
      methods: [POST]
    - name: tenant-header
      headers: { X-Tenant: acme }
request_rate_limit:
  listener: { requests: 100, per: 1s, burst: 200 }
  consumer: { requests: 10, per: 2s }
  max_consumers: 500
consumers:
  - name: team-a
    keys: [key-a]
providers:
  - name: small
    provider: openai
    api_key_env: OPENAI_API_KEY
    model: gpt-4o-mini
    models: [auto]
pools:
  - name: cheap
    instances: [small]
filters:
  ai_router:
    rules:
      - name: all
        pool: cheap
  ai_ratelimit:
    rules:
      - name: consumer-minute
        key: [consumer]
        limit: 1000
        window: 1m
`;

function hcmOf(envoy: Record<string, unknown>): any {
  return (envoy as any).static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
}
const filter = (envoy: Record<string, unknown>, name: string) => hcmOf(envoy).http_filters.find((f: any) => f.name === name)?.typed_config;
/** The local reply mappers of a gateway without native filters. */
function renderEnvoyDefaultMappers(): unknown[] {
  const plain = parseGatewayConfig("listener: { port: 10000 }\nproviders: [{ name: small, provider: openai, api_key_env: OPENAI_API_KEY }]\nfilters: { key_auth: { enabled: false } }\n", { env: ENV });
  return hcmOf(renderEnvoy(plain)).local_reply_config.mappers;
}
const clusterOf = (envoy: Record<string, unknown>, name: string) => (envoy as any).static_resources.clusters.find((c: any) => c.name === name);

function refusal(yaml: string): string {
  try {
    parseGatewayConfig(yaml, { env: ENV });
  } catch (e) {
    expect(e).toBeInstanceOf(GatewayConfigError);
    return (e as Error).message;
  }
  throw new Error("accepted");
}

/** ALL with one line replaced (the line must be there). */
function withLine(from: string, to: string): string {
  expect(ALL).toContain(from);
  return ALL.replace(from, to);
}

describe("Envoy's own filters from gateway.yaml", () => {
  const cfg: GatewayConfig = parseGatewayConfig(ALL, { env: ENV });
  const envoy = renderEnvoy(cfg);

  it("the envoy.yaml with every native filter validates against Envoy's protos, with no deprecated field", () => {
    const r = validateEnvoyConfig(envoy);
    expect(r.errors).toEqual([]);
    expect(r.warnings).toEqual([]);
    for (const t of [
      "envoy.extensions.filters.http.cors.v3.Cors",
      "envoy.extensions.filters.http.cors.v3.CorsPolicy",
      "envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
      "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
      "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
      "envoy.extensions.filters.http.rbac.v3.RBAC",
      "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
      "envoy.extensions.rate_limit_descriptors.expr.v3.Descriptor",
    ]) expect(r.types).toContain(t);
    // Fields newer than the shipped protos: declared, and reported where used.
    const newer = r.newerFieldsUsed.map((u) => u.replace(/ @ .*/, ""));
    expect(newer).toContain("envoy.config.rbac.v3.Principal.sourced_metadata (Envoy >= 1.33.0)");
    expect(newer).toContain("envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit.rate_limits (Envoy >= 1.32.0)");
    expect(newer).toContain("envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit.max_dynamic_descriptors (Envoy >= 1.34.0)");
    // Against the shipped protos alone, exactly those newer fields are unknown.
    const strict = validateEnvoyConfig(envoy, { newerFields: false });
    const unknown = new Set(strict.errors.flatMap((e) => /unknown field '([a-z_]+)'/.exec(e)?.[1] ?? []));
    expect([...unknown].sort()).toEqual(["allow_on_headers_stop_iteration", "failure_policy", "max_dynamic_descriptors", "rate_limits", "reload_config", "request_body_buffer_limit", "sourced_metadata"]);
    // ... and the principal that held only sourced_metadata then has no identifier at all.
    expect(strict.errors.filter((e) => !e.includes("unknown field"))).toEqual([expect.stringMatching(/policies\.admins\.principals\[0\]: one of .* is required in envoy\.config\.rbac\.v3\.Principal$/)]);
  });

  it("the validator refuses the claim principal written both ways (sourced_metadata joins the identifier oneof)", () => {
    const copy = JSON.parse(JSON.stringify(envoy));
    const principal = filter(copy, "envoy.filters.http.rbac").rules.policies.admins.principals[0];
    principal.metadata = principal.sourced_metadata.metadata_matcher;
    const r = validateEnvoyConfig(copy);
    expect(r.errors).toEqual([expect.stringContaining("belong to the same oneof 'identifier'")]);
  });

  it("order: cors first, then the identity headers' removal, jwt_authn, ext_authz; key-auth; rbac and local_ratelimit once the consumer is known; then ai-router, ai-ratelimit, ai-proxy, router", () => {
    expect(hcmOf(envoy).http_filters.map((f: any) => f.name)).toEqual([
      "envoy.filters.http.cors",
      "sluice.identity_headers",
      "envoy.filters.http.jwt_authn",
      "envoy.filters.http.ext_authz",
      "sluice.key_auth",
      "envoy.filters.http.rbac",
      "envoy.filters.http.local_ratelimit",
      "sluice.ai_router",
      "sluice.ai_ratelimit",
      "sluice.ai_proxy",
      "envoy.filters.http.router",
    ]);
    // Only what is configured is rendered: auth alone adds no cors, rbac or local_ratelimit.
    const onlyJwt = parseGatewayConfig(
      `listener: { port: 10000 }
auth: { jwt: { providers: [{ name: corp, issuer: https://login.example.com, remote_jwks: { url: https://login.example.com/jwks } }] } }
providers: [{ name: small, provider: openai, api_key_env: OPENAI_API_KEY }]
filters: { key_auth: { enabled: false } }
`,
      { env: ENV },
    );
    expect(hcmOf(renderEnvoy(onlyJwt)).http_filters.map((f: any) => f.name)).toEqual(["envoy.filters.http.jwt_authn", "sluice.ai_proxy", "envoy.filters.http.router"]);
  });

  it("cors: the filter, and the policy as the virtual host's typed_per_filter_config (not the deprecated VirtualHost.cors)", () => {
    expect(filter(envoy, "envoy.filters.http.cors")).toEqual({ "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors" });
    const vh = hcmOf(envoy).route_config.virtual_hosts[0];
    expect(vh.cors).toBeUndefined();
    const policy = vh.typed_per_filter_config["envoy.filters.http.cors"];
    expect(policy["@type"]).toBe("type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy");
    expect(policy.allow_origin_string_match[0]).toEqual({ exact: "https://chat.example.com", ignore_case: true });
    expect(policy.allow_origin_string_match[2]).toEqual({ exact: "http://localhost:5173", ignore_case: true });
    const sub = new RegExp(policy.allow_origin_string_match[1].safe_regex.regex);
    expect(sub.test("https://app.example.org")).toBe(true);
    expect(sub.test("https://a.b.example.org")).toBe(true);
    expect(sub.test("https://example.org")).toBe(false);
    expect(sub.test("https://evil-example.org")).toBe(false);
    expect(sub.test("https://app.example.org.evil.com")).toBe(false);
    expect(sub.test("http://app.example.org")).toBe(false);
    expect(policy.allow_methods).toBe("GET,POST,OPTIONS");
    expect(policy.allow_headers.split(",")).toEqual(expect.arrayContaining(["authorization", "content-type", "x-api-key", "anthropic-version", "x-stainless-retry-count"]));
    expect(policy.expose_headers.split(",")).toEqual(expect.arrayContaining(["retry-after", "x-ratelimit-remaining-tokens", "x-ratelimit-remaining"]));
    expect(policy.max_age).toBe("300");
    expect(policy.allow_credentials).toBe(true);
    // A preflight from an origin not allowed is answered by Envoy, never passed to authentication.
    expect(policy.forward_not_matching_preflights).toBe(false);
  });

  it("jwt_authn: issuers, audiences, remote JWKS through its own TLS cluster (cached, fetched at start), local JWKS inline or file, payload in metadata, claims to headers, clock skew, rules", () => {
    const j = filter(envoy, "envoy.filters.http.jwt_authn");
    expect(j.providers.corp).toEqual({
      issuer: "https://login.example.com/realms/corp",
      audiences: ["sluice", "sluice-dev"],
      remote_jwks: {
        http_uri: { uri: "https://login.example.com/realms/corp/certs", cluster: "sluice-jwks-corp", timeout: "2s" },
        cache_duration: "900s",
        async_fetch: {},
      },
      forward: false,
      payload_in_metadata: "jwt_payload",
      failed_status_in_metadata: "jwt_failure",
      claim_to_headers: [
        { header_name: "x-user", claim_name: "sub" },
        { header_name: "x-team", claim_name: "realm_access.team" },
      ],
      clock_skew_seconds: 30,
    });
    expect(j.providers.ci).toEqual({
      issuer: "sluice-ci",
      local_jwks: { inline_string: JWKS },
      forward: true,
      from_headers: [{ name: "x-ci-token" }],
      payload_in_metadata: "jwt_payload",
      failed_status_in_metadata: "jwt_failure",
      clock_skew_seconds: 60,
    });
    expect(j.providers.partner.local_jwks).toEqual({ filename: "/etc/sluice/partner-jwks.json" });
    expect(j.rules).toEqual([
      { match: { prefix: "/v1/models" } },
      { match: { prefix: "/ci/" }, requires: { provider_name: "ci" } },
      { match: { prefix: "/" }, requires: { requires_any: { requirements: [{ provider_name: "corp" }, { provider_name: "partner" }, { allow_missing: {} }] } } },
    ]);
    expect(j.bypass_cors_preflight).toBe(true);
    const c = clusterOf(envoy, "sluice-jwks-corp");
    expect(c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address).toEqual({ address: "login.example.com", port_value: 443 });
    expect(c.transport_socket.typed_config.sni).toBe("login.example.com");
    expect(c.transport_socket.typed_config.common_tls_context.validation_context.match_typed_subject_alt_names).toEqual([{ san_type: "DNS", matcher: { exact: "login.example.com" } }]);
    // Local JWKS need no cluster.
    expect(clusterOf(envoy, "sluice-jwks-ci")).toBeUndefined();
  });

  it("the headers jwt_authn and ext_authz write are removed from the client's request before they run (jwt_authn appends to a client's value)", () => {
    expect(filter(envoy, "sluice.identity_headers")).toEqual({
      "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
      mutations: { request_mutations: [{ remove: "x-user" }, { remove: "x-team" }, { remove: "x-tenant" }] },
    });
  });

  it("ext_authz: an HTTP service (path prefix, timeout, headers both ways) or a gRPC one (HTTP/2 cluster), failing closed by default", () => {
    const e = filter(envoy, "envoy.filters.http.ext_authz");
    expect(e).toEqual({
      "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
      http_service: {
        server_uri: { uri: "http://authz.internal:9000/check", cluster: "sluice-ext-authz", timeout: "0.3s" },
        path_prefix: "/check",
        authorization_response: { allowed_upstream_headers: { patterns: [{ exact: "x-tenant", ignore_case: true }] } },
      },
      transport_api_version: "V3",
      failure_mode_allow: false,
      allowed_headers: { patterns: [{ exact: "authorization", ignore_case: true }, { exact: "x-api-key", ignore_case: true }] },
    });
    const c = clusterOf(envoy, "sluice-ext-authz");
    expect(c.transport_socket).toBeUndefined();
    expect(c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address).toEqual({ address: "authz.internal", port_value: 9000 });

    const grpc = parseGatewayConfig(ALL.replace(/    http:\n      url: .*\n      upstream_headers: .*\n/, "    grpc: { address: 10.0.0.7, port: 9001 }\n    failure_mode_allow: true\n"), { env: ENV });
    const g = renderEnvoy(grpc);
    expect(validateEnvoyConfig(g).errors).toEqual([]);
    const ge = filter(g, "envoy.filters.http.ext_authz");
    expect(ge.grpc_service).toEqual({ envoy_grpc: { cluster_name: "sluice-ext-authz" }, timeout: "0.3s" });
    expect(ge.http_service).toBeUndefined();
    expect(ge.failure_mode_allow).toBe(true);
    const gc = clusterOf(g, "sluice-ext-authz");
    expect(gc.type).toBe("STATIC");
    expect(gc.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].explicit_http_config).toEqual({ http2_protocol_options: {} });
    // x-tenant is no longer written by anyone: not removed either.
    expect(filter(g, "sluice.identity_headers").mutations.request_mutations).toEqual([{ remove: "x-user" }, { remove: "x-team" }]);
  });

  it("rbac: by claim (the jwt payload in dynamic metadata, a string or a list claim), by consumer (filter state), by path, method and header", () => {
    const r = filter(envoy, "envoy.filters.http.rbac");
    expect(r.rules.action).toBe("ALLOW");
    const claim = (v: string) => [{ string_match: { exact: v } }, { list_match: { one_of: { string_match: { exact: v } } } }];
    expect(r.rules.policies.admins).toEqual({
      permissions: [{ any: true }],
      principals: [
        {
          sourced_metadata: {
            metadata_matcher: {
              filter: "envoy.filters.http.jwt_authn",
              path: [{ key: "jwt_payload" }, { key: "groups" }],
              value: { or_match: { value_matchers: [...claim("admins"), ...claim("ops")] } },
            },
          },
        },
      ],
    });
    expect(r.rules.policies["team-a-chat"]).toEqual({
      permissions: [
        {
          and_rules: {
            rules: [
              { or_rules: { rules: [{ url_path: { path: { exact: "/v1/chat/completions" } } }, { url_path: { path: { prefix: "/v1/messages" } } }] } },
              { header: { name: ":method", string_match: { exact: "POST" } } },
            ],
          },
        },
      ],
      principals: [{ filter_state: { key: "wasm.sluice.consumer", string_match: { exact: "team-a" } } }],
    });
    expect(r.rules.policies["tenant-header"].principals).toEqual([{ header: { name: "x-tenant", string_match: { exact: "acme" } } }]);
    const deny = renderEnvoy(parseGatewayConfig(withLine("  action: allow", "  action: deny"), { env: ENV }));
    expect(filter(deny, "envoy.filters.http.rbac").rules.action).toBe("DENY");
  });

  it("local_ratelimit: a listener bucket and one bucket per consumer (a wildcard descriptor), enabled and enforced for every request, x-ratelimit headers", () => {
    const l = filter(envoy, "envoy.filters.http.local_ratelimit");
    const hundred = (k: string) => ({ runtime_key: k, default_value: { numerator: 100, denominator: "HUNDRED" } });
    expect(l).toEqual({
      "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
      stat_prefix: "sluice_requests",
      token_bucket: { max_tokens: 200, tokens_per_fill: 100, fill_interval: "1s" },
      filter_enabled: hundred("sluice.request_rate_limit.enabled"),
      filter_enforced: hundred("sluice.request_rate_limit.enforced"),
      descriptors: [{ entries: [{ key: "consumer" }], token_bucket: { max_tokens: 10, tokens_per_fill: 10, fill_interval: "2s" } }],
      rate_limits: [
        {
          actions: [
            {
              extension: {
                name: "envoy.rate_limit_descriptors.expr",
                typed_config: { "@type": "type.googleapis.com/envoy.extensions.rate_limit_descriptors.expr.v3.Descriptor", descriptor_key: "consumer", text: "filter_state['wasm.sluice.consumer']" },
              },
            },
          ],
        },
      ],
      max_dynamic_descriptors: 500,
      enable_x_ratelimit_headers: "DRAFT_VERSION_03",
    });
    const byClaim = renderEnvoy(parseGatewayConfig(withLine("  consumer: { requests: 10, per: 2s }", '  consumer: { key: "claim:realm_access.team", requests: 10, per: 2s }'), { env: ENV }));
    expect(validateEnvoyConfig(byClaim).errors).toEqual([]);
    expect(filter(byClaim, "envoy.filters.http.local_ratelimit").rate_limits[0].actions).toEqual([
      { metadata: { descriptor_key: "consumer", metadata_key: { key: "envoy.filters.http.jwt_authn", path: [{ key: "jwt_payload" }, { key: "realm_access" }, { key: "team" }] }, source: "DYNAMIC" } },
    ]);
    const byHeader = renderEnvoy(parseGatewayConfig(withLine("  consumer: { requests: 10, per: 2s }", '  consumer: { key: "header:x-team", requests: 10, per: 2s }\n  headers: false'), { env: ENV }));
    const h = filter(byHeader, "envoy.filters.http.local_ratelimit");
    expect(h.rate_limits[0].actions).toEqual([{ request_headers: { header_name: "x-team", descriptor_key: "consumer" } }]);
    expect(h.enable_x_ratelimit_headers).toBeUndefined();
    // A listener bucket alone: no descriptors, no actions.
    const listenerOnly = filter(renderEnvoy(parseGatewayConfig(withLine("  consumer: { requests: 10, per: 2s }\n", ""), { env: ENV })), "envoy.filters.http.local_ratelimit");
    expect(listenerOnly.descriptors).toBeUndefined();
    expect(listenerOnly.rate_limits).toBeUndefined();
  });

  it("their denials answer in the client's API shape: local reply mappers keyed on what each filter leaves (jwt_authn's failure metadata, rbac's denied result, RL, UAEX), ahead of Sluice's own", () => {
    const mappers: any[] = hcmOf(envoy).local_reply_config.mappers;
    const openai = (m: any) => m.body_format_override.json_format.error;
    const anthropic = (m: any) => m.body_format_override.json_format.error;
    // Two mappers per denial (Anthropic client first, then OpenAI), before Envoy's own four pairs.
    expect(mappers).toHaveLength(2 * 5 + 8);
    // jwt_authn's pair comes last of the five: its failure status can stay in the metadata of a request
    // it let through (native-replies.ts), so it also asks for no verified payload and a 401 / 403.
    const jwt = mappers[9];
    expect(jwt.filter).toEqual({
      and_filter: {
        filters: [
          { metadata_filter: { matcher: { filter: "envoy.filters.http.jwt_authn", path: [{ key: "jwt_failure" }], value: { present_match: true } }, match_if_key_not_found: false } },
          { metadata_filter: { matcher: { filter: "envoy.filters.http.jwt_authn", path: [{ key: "jwt_payload" }], value: { null_match: {} } }, match_if_key_not_found: true } },
          {
            or_filter: {
              filters: [
                { status_code_filter: { comparison: { op: "EQ", value: { default_value: 401, runtime_key: "sluice.local_reply.jwt_denied" } } } },
                { status_code_filter: { comparison: { op: "EQ", value: { default_value: 403, runtime_key: "sluice.local_reply.jwt_audience_denied" } } } },
              ],
            },
          },
        ],
      },
    });
    // Envoy's own text ("Jwt is expired") is the message; the status (401) stays.
    expect(jwt.body).toBeUndefined();
    expect(jwt.status_code).toBeUndefined();
    expect(openai(jwt)).toEqual({ message: "%LOCAL_REPLY_BODY%", type: "invalid_request_error", code: "invalid_token" });
    expect(mappers[8].filter.and_filter.filters.slice(0, 3)).toEqual(jwt.filter.and_filter.filters);
    expect(anthropic(mappers[8])).toEqual({ type: "authentication_error", message: "%LOCAL_REPLY_BODY%" });
    const rbac = mappers[5];
    expect(rbac.filter).toEqual({
      metadata_filter: {
        matcher: { filter: "envoy.filters.http.rbac", path: [{ key: "sluice_enforced_engine_result" }], value: { string_match: { exact: "denied" } } },
        match_if_key_not_found: false,
      },
    });
    expect(anthropic(mappers[4]).type).toBe("permission_error");
    // Sluice's own mappers follow, unchanged.
    expect(mappers.slice(10)).toEqual(renderEnvoyDefaultMappers());

    // The flag-keyed ones, through the local gateway's implementation of local_reply_config: the
    // local rate limit's 429 becomes JSON, ai-ratelimit's own (already shaped, no RL flag) is left alone.
    const flagged = parseLocalReplyConfig({ mappers: mappers.filter((m) => JSON.stringify(m.filter).includes("response_flag_filter") && !JSON.stringify(m.filter).includes("metadata_filter")) });
    const input = (statusCode: number, body: string, flags: string[], path = "/v1/chat/completions") => ({
      requestHeaders: [[":path", path]] as any,
      statusCode,
      body: Buffer.from(body),
      details: "",
      responseFlags: flags,
    });
    const limited = rewriteLocalReply(flagged, input(429, "local_rate_limited", ["RL"]));
    expect(limited.statusCode).toBe(429);
    expect(JSON.parse(limited.body.toString())).toEqual({ error: { message: "Too many requests: the gateway's request rate limit was reached.", type: "requests", code: "rate_limit_exceeded" } });
    const anthropicLimited = rewriteLocalReply(flagged, input(429, "local_rate_limited", ["RL"], "/v1/messages"));
    expect(JSON.parse(anthropicLimited.body.toString())).toEqual({ type: "error", error: { type: "rate_limit_error", message: "Too many requests: the gateway's request rate limit was reached." } });
    const own = '{"error":{"message":"token limit","type":"tokens","code":"rate_limit_exceeded"}}';
    expect(rewriteLocalReply(flagged, input(429, own, [])).rewritten).toBe(false);
    const denied = rewriteLocalReply(flagged, input(403, "", ["UAEX"]));
    expect([denied.statusCode, JSON.parse(denied.body.toString()).error.code]).toEqual([403, "access_denied"]);
    const unauthenticated = rewriteLocalReply(flagged, input(401, "", ["UAEX"], "/v1/messages"));
    expect([unauthenticated.statusCode, JSON.parse(unauthenticated.body.toString()).error.type]).toEqual([401, "authentication_error"]);
  });

  it("the default gateway.yaml renders none of them (its envoy/ files stay as they were)", () => {
    const text = readFileSync("envoy/envoy.yaml", "utf8");
    for (const name of ["cors", "jwt_authn", "ext_authz", "rbac", "local_ratelimit", "header_mutation"]) expect(text).not.toContain(name);
  });
});

describe("a bad native section is refused with its line and field", () => {
  it("a provider without an issuer, or without keys", () => {
    expect(refusal(withLine("        issuer: sluice-ci\n", ""))).toMatch(/gateway\.yaml:\d+:\d+: auth\.jwt\.providers\[1\]: missing required field 'issuer'/);
    expect(refusal(withLine('        local_jwks: { file: /etc/sluice/partner-jwks.json }\n', ""))).toMatch(
      /gateway\.yaml:\d+:\d+: auth\.jwt\.providers\[2\]: give remote_jwks or local_jwks, exactly one/,
    );
    expect(refusal(withLine("        issuer: sluice-ci", '        issuer: " sluice-ci"'))).toMatch(/auth\.jwt\.providers\[1\]\.issuer: must not be blank or start or end with white space/);
  });

  it("bad URLs: a JWKS URL that is not one, a JWKS over plain http, credentials in a URL, an issuer URL that does not parse", () => {
    expect(refusal(withLine('        remote_jwks: { url: "https://login.example.com/realms/corp/certs"', '        remote_jwks: { url: "login.example.com/certs"'))).toMatch(
      /gateway\.yaml:\d+:\d+: auth\.jwt\.providers\[0\]\.remote_jwks\.url: "login\.example\.com\/certs" is not valid/,
    );
    expect(refusal(withLine('        remote_jwks: { url: "https://login.example.com/realms/corp/certs"', '        remote_jwks: { url: "http://login.example.com/certs"'))).toMatch(
      /auth\.jwt\.providers\[0\]\.remote_jwks\.url: must be https: keys fetched over plain http could be replaced/,
    );
    expect(refusal(withLine("      url: http://authz.internal:9000/check", "      url: http://user:pw@authz.internal:9000/check"))).toMatch(/auth\.ext_authz\.http\.url: /);
    expect(refusal(withLine("        issuer: https://login.example.com/realms/corp", "        issuer: https://login example.com"))).toMatch(/auth\.jwt\.providers\[0\]\.issuer: "https:\/\/login example\.com" is not a valid URL/);
    expect(refusal(withLine("        issuer: https://login.example.com/realms/corp", "        issuer: http://login.example.com"))).toMatch(/auth\.jwt\.providers\[0\]\.issuer: an issuer URL must be https/);
    // A JWKS on localhost may be plain http (a local identity provider).
    expect(() => parseGatewayConfig(withLine('"https://login.example.com/realms/corp/certs"', '"http://127.0.0.1:8080/certs"'), { env: ENV })).not.toThrow();
  });

  it("unknown fields, at every level", () => {
    expect(refusal(withLine("  max_age: 5m", "  max_age: 5m\n  allow_origin: x"))).toMatch(/gateway\.yaml:\d+:\d+: cors\.allow_origin: unknown field 'allow_origin' \(allowed: allow_origins,/);
    expect(refusal(withLine("        clock_skew: 30s", "        clock_skew: 30s\n        jwks_uri: https://x"))).toMatch(/auth\.jwt\.providers\[0\]\.jwks_uri: unknown field 'jwks_uri'/);
    expect(refusal(withLine("rbac:\n", "rbac:\n  shadow: true\n"))).toMatch(/rbac\.shadow: unknown field 'shadow'/);
    expect(refusal(withLine("auth:\n", "auth:\n  oauth2: {}\n"))).toMatch(/auth\.oauth2: unknown field 'oauth2' \(allowed: jwt, ext_authz\)/);
  });

  it("what the schema cannot check: names, references, secrets, impossible limits", () => {
    expect(refusal(withLine("        requires: [ci]", "        requires: [cii]"))).toMatch(/auth\.jwt\.rules\[1\]\.requires\[0\]: no provider named 'cii' \(providers: corp, ci, partner\)/);
    expect(refusal(withLine("      - name: partner", "      - name: corp"))).toMatch(/auth\.jwt\.providers\[2\]\.name: duplicate provider name 'corp'/);
    const secret = JSON.stringify({ keys: [{ kty: "oct", k: "c2VjcmV0" }] });
    expect(refusal(withLine(`local_jwks: { inline: '${JWKS}' }`, `local_jwks: { inline: '${secret}' }`))).toMatch(/local_jwks\.inline: holds a private or symmetric key/);
    expect(refusal(withLine(`local_jwks: { inline: '${JWKS}' }`, `local_jwks: { inline: 'not json' }`))).toMatch(/local_jwks\.inline: is not JSON/);
    expect(refusal(withLine("    http:\n", "    grpc: { address: authz, port: 1 }\n    http:\n"))).toMatch(/auth\.ext_authz: give http or grpc, exactly one/);
    expect(refusal(withLine("  allow_credentials: true", "  allow_credentials: true\n  allow_origins: ['*']").replace('  allow_origins: ["https://chat.example.com", "https://*.example.org", "http://localhost:5173"]\n', ""))).toMatch(
      /cors\.allow_credentials: browsers refuse credentials with origin \*/,
    );
    expect(refusal(withLine('"https://*.example.org"', '"https://example.org/app"'))).toMatch(/cors\.allow_origins\[1\]: "https:\/\/example\.org\/app" is not valid: an origin/);
    expect(refusal(withLine("    - name: tenant-header\n      headers: { X-Tenant: acme }\n", "    - name: empty\n"))).toMatch(/rbac\.policies\[2\]: needs at least one of consumers, claims/);
    expect(refusal(withLine("  consumer: { requests: 10, per: 2s }", "  consumer: { requests: 10, per: 20ms }"))).toMatch(/request_rate_limit\.consumer\.per: must be at least 50ms/);
    expect(refusal(withLine("  listener: { requests: 100, per: 1s, burst: 200 }", "  listener: { requests: 100, per: 10ms, burst: 50 }"))).toMatch(
      /request_rate_limit\.listener\.per: must be at least 50ms[\s\S]*request_rate_limit\.listener\.burst: must be at least requests \(100\)/,
    );
    expect(refusal(withLine("request_rate_limit:\n  listener: { requests: 100, per: 1s, burst: 200 }\n  consumer: { requests: 10, per: 2s }\n", "request_rate_limit:\n  headers: true\n"))).toMatch(
      /request_rate_limit: give listener, consumer or both/,
    );
  });

  it("claims need auth.jwt", () => {
    const noJwt = ALL.replace(/  jwt:\n[\s\S]*?(?=  ext_authz:)/, "");
    expect(noJwt).not.toContain("jwt:");
    expect(refusal(noJwt)).toMatch(/rbac\.policies\[0\]\.claims: claims come from auth\.jwt, which is not configured/);
    expect(refusal(noJwt.replace("  consumer: { requests: 10, per: 2s }", '  consumer: { key: "claim:sub", requests: 10, per: 2s }'))).toMatch(/request_rate_limit\.consumer\.key: claims come from auth\.jwt/);
  });
});

describe("examples/jwt-ratelimit-proxy.gateway.yaml (docs/native-filters.md): JWT auth + token rate limiting + AI proxy", () => {
  const text = readFileSync("examples/jwt-ratelimit-proxy.gateway.yaml", "utf8");
  const cfg = parseGatewayConfig(text, { name: "jwt-ratelimit-proxy.gateway.yaml", env: ENV });

  it("renders every file, and its envoy.yaml validates", () => {
    const files = renderFiles(cfg);
    expect(Object.keys(files)).toEqual(expect.arrayContaining(["envoy.yaml", "envoy.mock.yaml", "istio/sluice-envoyfilter.yaml"]));
    const envoy = renderEnvoy(cfg);
    const r = validateEnvoyConfig(envoy);
    expect(r.errors).toEqual([]);
    expect(r.warnings).toEqual([]);
    expect(validateEnvoyConfig(renderEnvoy(cfg, { mock: true })).errors).toEqual([]);
  });

  it("chains CORS, the JWT, RBAC on its groups claim, request limits per user, token limits per user and the proxy", () => {
    const envoy = renderEnvoy(cfg);
    expect(hcmOf(envoy).http_filters.map((f: any) => f.name)).toEqual([
      "envoy.filters.http.cors",
      "sluice.identity_headers",
      "envoy.filters.http.jwt_authn",
      "envoy.filters.http.rbac",
      "envoy.filters.http.local_ratelimit",
      "sluice.ai_ratelimit",
      "sluice.ai_proxy",
      "envoy.filters.http.router",
    ]);
    // The token limits key on the header jwt_authn writes from the verified sub, which a client cannot set.
    const ratelimit = JSON.parse(filter(envoy, "sluice.ai_ratelimit").config.configuration.value);
    expect(ratelimit.rules.map((r: any) => r.key)).toEqual([["header:x-user"], ["header:x-user"]]);
    expect(filter(envoy, "envoy.filters.http.jwt_authn").providers.corp.claim_to_headers).toEqual([{ header_name: "x-user", claim_name: "sub" }]);
    expect(filter(envoy, "sluice.identity_headers").mutations.request_mutations).toEqual([{ remove: "x-user" }]);
  });
});
