// host/envoy-config.ts reads the native filters from envoy.yaml: their order, the CORS policy from the
// route or the virtual host, and refusals (named) of what the local gateway does not run.
import { describe, expect, it } from "vitest";
import { parseEnvoyConfig } from "../../../host/envoy-config.js";

const RBAC = `{ name: envoy.filters.http.rbac, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC } }`;
const CORS = `{ name: envoy.filters.http.cors, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors } }`;
const WASM = `{ name: w, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm, config: { vm_config: { code: { local: { filename: /x.wasm } } } } } }`;
const ROUTER = `{ name: r, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router } }`;
const POLICY = `{ "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy, allow_origin_string_match: [ { exact: "https://a.example" } ] }`;

const yaml = (filters: string[], route = "", vh = "") => `
static_resources:
  listeners:
  - address: { socket_address: { address: 127.0.0.1, port_value: 1 } }
    filter_chains:
    - filters:
      - name: hcm
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          route_config: { virtual_hosts: [ { name: v, domains: ["*"], ${vh} routes: [ { match: { prefix: / }, ${route} route: { cluster_header: x-c } } ] } ] }
          http_filters: [ ${filters.join(", ")} ]
`;

describe("envoy-config: native filters", () => {
  it("reads them in order before the wasm filters, and the CORS policy from the virtual host", () => {
    const c = parseEnvoyConfig(yaml([CORS, RBAC, WASM, ROUTER], "", `typed_per_filter_config: { envoy.filters.http.cors: ${POLICY} },`));
    expect(c.natives.map((n) => n.name)).toEqual(["envoy.filters.http.cors", "envoy.filters.http.rbac"]);
    expect(c.filters.map((f) => f.filterName)).toEqual(["w"]);
    expect((c.natives[0] as unknown as { originAllowed(o: string): boolean }).originAllowed("https://a.example")).toBe(true);
  });

  it("a route's RBACPerRoute replaces the filter's rules; the virtual host's counts only without the route's", () => {
    const rbacOf = (c: ReturnType<typeof parseEnvoyConfig>) => c.natives[0] as unknown as { action: string | null; policies: { name: string }[] };
    const DENY_ALL = `{ "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute, rbac: { rules: { action: DENY, policies: { all: { permissions: [ { any: true } ], principals: [ { any: true } ] } } } } }`;
    const NONE = `{ "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute }`;
    expect(rbacOf(parseEnvoyConfig(yaml([RBAC, ROUTER], `typed_per_filter_config: { envoy.filters.http.rbac: ${DENY_ALL} },`))).policies.map((p) => p.name)).toEqual(["all"]);
    expect(rbacOf(parseEnvoyConfig(yaml([RBAC, ROUTER], `typed_per_filter_config: { envoy.filters.http.rbac: ${NONE} },`, `typed_per_filter_config: { envoy.filters.http.rbac: ${DENY_ALL} },`))).action).toBeNull();
    expect(rbacOf(parseEnvoyConfig(yaml([RBAC, ROUTER], "", `typed_per_filter_config: { envoy.filters.http.rbac: ${DENY_ALL} },`))).action).toBe("DENY");
  });

  it("accepts a route's CorsPolicy without a cors filter (Envoy loads it by type; nothing reads it) but checks it", () => {
    expect(parseEnvoyConfig(yaml([RBAC, ROUTER], `typed_per_filter_config: { envoy.filters.http.cors: ${POLICY} },`)).natives.map((n) => n.name)).toEqual(["envoy.filters.http.rbac"]);
    const bad = POLICY.replace("allow_origin_string_match", "shadow_enabled: { default_value: { numerator: 1 } }, allow_origin_string_match");
    expect(() => parseEnvoyConfig(yaml([RBAC, ROUTER], `typed_per_filter_config: { envoy.filters.http.cors: ${bad} },`))).toThrow(/envoy\.filters\.http\.cors\.shadow_enabled: the local gateway does not implement this field/);
  });

  it("places a native filter after a wasm filter where envoy.yaml lists it (wasmBefore)", () => {
    const c = parseEnvoyConfig(yaml([CORS, WASM, RBAC, ROUTER]));
    expect(c.natives.map((n) => [n.name, n.wasmBefore])).toEqual([["envoy.filters.http.cors", 0], ["envoy.filters.http.rbac", 1]]);
  });

  it("refuses a per-route config it does not run, and an http filter it does not know", () => {
    const AUTHZ = `{ name: authz, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz, http_service: { server_uri: { uri: "http://a", cluster: a, timeout: 1s } } } }`;
    expect(() =>
      parseEnvoyConfig(yaml([AUTHZ, ROUTER], `typed_per_filter_config: { authz: { "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute, check_settings: { context_extensions: { a: b } } } },`)),
    ).toThrow(/routes\[0\]\.typed_per_filter_config\.authz\.check_settings: the local gateway does not implement this field/);
    expect(() => parseEnvoyConfig(yaml([CORS, ROUTER], "", `cors: { allow_origin_string_match: [ { exact: "https://a.example" } ] },`))).toThrow(/virtual_hosts\[0\]\.cors: the local gateway reads CORS policies from typed_per_filter_config/);
    const LRL = `{ name: lrl, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit, stat_prefix: l } }`;
    expect(() => parseEnvoyConfig(yaml([LRL, ROUTER], `typed_per_filter_config: { lrl: { "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit, stat_prefix: r } },`))).toThrow(
      /routes\[0\]\.typed_per_filter_config\.lrl: local rate limit token bucket must be set for per filter configs/,
    );
    expect(() => parseEnvoyConfig(yaml([`{ name: o, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.oauth2.v3.OAuth2 } }`, ROUTER]))).toThrow(
      /http_filters\[0\]: the local gateway does not run type.googleapis.com\/envoy.extensions.filters.http.oauth2.v3.OAuth2/,
    );
    expect(() => parseEnvoyConfig(yaml([`{ name: l, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit, stat_prefix: l, local_rate_limit_per_downstream_connection: true } }`, ROUTER]))).toThrow(
      /envoy.yaml: http_filters\[0\]\.typed_config\.local_rate_limit_per_downstream_connection: the local gateway runs one bucket for the listener/,
    );
    const HM = `{ name: h, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation, mutations: { request_mutations: [ { append: { header: { key: a, value: b } } } ] } } }`;
    expect(() => parseEnvoyConfig(yaml([HM, ROUTER]))).toThrow(/http_filters\[0\]\.typed_config\.mutations\.request_mutations\[0\]\.append: the local gateway does not implement this field/);
  });
});
