// mTLS at the listener (issue 25): gateway.yaml listener.tls renders Envoy's DownstreamTlsContext, and
// the local gateway serves that envoy.yaml as Envoy would: TLS, a client certificate required and
// checked against the client CA and the SAN matchers, and the connection.* properties a filter reads
// (build/test/properties.wasm) answering as Envoy's do. Certificates: test/fixtures/tls/ (make.sh).
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { startLocalGateway, type LocalGateway } from "../../cli/start.js";
import { parseGatewayConfig, GatewayConfigError } from "../../cli/gateway-config.js";
import { renderEcds, renderEnvoy } from "../../cli/render.js";
import { ecdsReaderOf } from "../fixtures/ecds.js";
import { listenerTransportSocket } from "../../cli/render/listener-tls.js";
import { validateEnvoyConfig } from "../../cli/envoy-validate.js";
import { mountedPath, parseEnvoyConfig } from "../../host/envoy-config.js";
import { certificateNames, dnsNameMatch } from "../../host/x509.js";
import { sanMatch, sansAllowed } from "../../host/listener-tls.js";
import { restartNeeded } from "../../host/reload.js";
import { X509Certificate } from "node:crypto";
import { MINIMAL_GATEWAY } from "../fixtures/gateway-yaml.js";

const TLS_DIR = resolve("test/fixtures/tls");
const pem = (name: string) => readFileSync(join(TLS_DIR, name), "utf8");

const TLS_YAML = `
  tls:
    certificate: ${TLS_DIR}/server.pem
    private_key: ${TLS_DIR}/server.key
    client_ca: ${TLS_DIR}/ca.pem
    require_client_certificate: true
    allowed_sans:
      - { type: uri, exact: "spiffe://example.org/team-a" }
      - { type: dns, suffix: ".partners.example.com" }
`;
const gatewayYaml = (tls: string) => MINIMAL_GATEWAY.replace("listener: { port: 10000 }", `listener:\n  port: 10000\n${tls}`);

describe("gateway.yaml listener.tls: render", () => {
  it("renders the filter chain's DownstreamTlsContext, which Envoy's API accepts", () => {
    const cfg = parseGatewayConfig(gatewayYaml(TLS_YAML));
    const envoy = renderEnvoy(cfg) as any;
    const chain = envoy.static_resources.listeners[0].filter_chains[0];
    expect(chain.transport_socket).toEqual({
      name: "envoy.transport_sockets.tls",
      typed_config: {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
        common_tls_context: {
          tls_params: { tls_minimum_protocol_version: "TLSv1_2", tls_maximum_protocol_version: "TLSv1_3" },
          alpn_protocols: ["h2", "http/1.1"],
          tls_certificates: [{ certificate_chain: { filename: `${TLS_DIR}/server.pem` }, private_key: { filename: `${TLS_DIR}/server.key` } }],
          validation_context: {
            trusted_ca: { filename: `${TLS_DIR}/ca.pem` },
            match_typed_subject_alt_names: [
              { san_type: "URI", matcher: { exact: "spiffe://example.org/team-a" } },
              { san_type: "DNS", matcher: { suffix: ".partners.example.com" } },
            ],
          },
        },
        require_client_certificate: true,
      },
    });
    expect(validateEnvoyConfig(envoy).errors).toEqual([]);
    // The local gateway reads what was rendered.
    const local = parseEnvoyConfig(stringify(envoy), ecdsReaderOf(Object.fromEntries(Object.entries(renderEcds(cfg)).map(([k, v]) => [k, stringify(v)])))).listener.tls!;
    expect(local.requireClientCertificate).toBe(true);
    expect(local.alpn).toEqual(["h2", "http/1.1"]);
    expect(local.sanMatchers.map((m) => m.type)).toEqual(["uri", "dns"]);
  });

  it("without listener.tls the listener stays plaintext", () => {
    const envoy = renderEnvoy(parseGatewayConfig(gatewayYaml(""))) as any;
    expect(envoy.static_resources.listeners[0].filter_chains[0].transport_socket).toBeUndefined();
  });

  it("refuses client checks without a client CA, and relative paths", () => {
    const bad = (tls: string) => {
      try {
        parseGatewayConfig(gatewayYaml(tls));
      } catch (e) {
        expect(e).toBeInstanceOf(GatewayConfigError);
        return (e as Error).message;
      }
      return "accepted";
    };
    expect(bad("  tls: { certificate: /c.pem, private_key: /k.pem, require_client_certificate: true }")).toMatch(/require_client_certificate.*needs client_ca/s);
    expect(bad("  tls: { certificate: /c.pem, private_key: /k.pem, allowed_sans: [{ type: uri, exact: x }] }")).toMatch(/allowed_sans.*needs client_ca/s);
    expect(bad("  tls: { certificate: c.pem, private_key: /k.pem }")).toMatch(/certificate/);
    expect(bad("  tls: { certificate: /c.pem, private_key: /k.pem, client_ca: /ca.pem, allowed_sans: [{ type: uri, exact: x, prefix: y }] }")).toMatch(/exactly one of exact, prefix, suffix/);
  });
});

describe("host/x509.ts: what Envoy reads from a certificate", () => {
  it("prints the subject as X509_NAME_print_ex(XN_FLAG_RFC2253): last RDN first, + inside a multi-valued RDN, escaped comma", () => {
    // The expected string is what `openssl x509 -subject -nameopt RFC2253` prints for this certificate.
    const n = certificateNames(new X509Certificate(pem("client-team-a.pem")).raw);
    expect(n.subject).toBe("CN=team-a+OU=AI,O=Example\\, Inc.,C=US");
    expect(n.sans).toEqual([
      { type: "uri", value: "spiffe://example.org/team-a" },
      { type: "uri", value: "spiffe://example.org/second" },
      { type: "dns", value: "team-a.clients.example.com" },
      { type: "dns", value: "alt.example.com" },
      { type: "email", value: "team-a@example.com" },
    ]);
    expect(certificateNames(new X509Certificate(pem("server.pem")).raw).sans).toEqual([{ type: "dns", value: "localhost" }, { type: "ip", value: "127.0.0.1" }]);
  });

  it("escapes as RFC 2253 printing does: specials, a leading # or space, a trailing space, non-ASCII bytes in hex", () => {
    // Again what `openssl x509 -subject -nameopt RFC2253` prints for this certificate.
    const n = certificateNames(new X509Certificate(pem("client-escapes.pem")).raw);
    expect(n.subject).toBe('CN=\\#hash=eq,OU=\\ lead\\+trail\\ ,O=Caf\\C3\\A9\\; \\"Bar\\" \\<x\\>,DC=example,DC=org');
    expect(n.sans).toEqual([{ type: "ip", value: "2001:db8::1" }, { type: "ip", value: "10.0.0.1" }]);
  });

  it("matches DNS names as Envoy's Utility::dnsNameMatch: the certificate's SAN is the pattern", () => {
    expect(dnsNameMatch("a.example.com", "*.example.com")).toBe(true);
    expect(dnsNameMatch("A.Example.com", "a.example.COM")).toBe(true);
    expect(dnsNameMatch("a.b.example.com", "*.example.com")).toBe(false);
    expect(dnsNameMatch("api.example.com", "a*.example.com")).toBe(true);
    expect(dnsNameMatch("xn--a.example.com", "xn--*.example.com")).toBe(false);
    expect(dnsNameMatch("*.example.com", "a.example.com")).toBe(false);
  });
});

const PATHS = [
  "connection|mtls", "connection|tls_version", "connection|subject_peer_certificate", "connection|uri_san_peer_certificate",
  "connection|dns_san_peer_certificate", "connection|subject_local_certificate", "connection|dns_san_local_certificate",
  "connection|sha256_peer_certificate_digest", "connection|requested_server_name",
];

/** envoy.yaml with the rendered transport socket and the property reader as the filter. */
function envoyYaml(upstreamPort: number, tls: string): string {
  const cfg = parseGatewayConfig(gatewayYaml(tls));
  const doc = {
    static_resources: {
      listeners: [{
        name: "sluice",
        address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
        filter_chains: [{
          transport_socket: listenerTransportSocket(cfg.listener.tls!),
          filters: [{
            name: "envoy.filters.network.http_connection_manager",
            typed_config: {
              "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
              stat_prefix: "sluice",
              route_config: { name: "sluice", virtual_hosts: [{ name: "all", domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster_header: "x-sluice-cluster" } }] }] },
              http_filters: [
                {
                  name: "props",
                  typed_config: {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                    config: {
                      name: "props",
                      configuration: { "@type": "type.googleapis.com/google.protobuf.StringValue", value: PATHS.join("\n") },
                      vm_config: { runtime: "envoy.wasm.runtime.v8", code: { local: { filename: resolve("build/test/properties.wasm") } } },
                    },
                  },
                },
                { name: "envoy.filters.http.router", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } },
              ],
            },
          }],
        }],
      }],
      clusters: [{
        name: "openai",
        connect_timeout: "1s",
        load_assignment: { cluster_name: "openai", endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: upstreamPort } } } }] }] },
      }],
    },
  };
  const dir = mkdtempSync(join(tmpdir(), "sluice-mtls-"));
  writeFileSync(join(dir, "envoy.yaml"), stringify(doc));
  return join(dir, "envoy.yaml");
}

type Outcome = { status: number; body: string; seenUpstream: Record<string, string> } | { error: string };

describe("local gateway: mTLS", () => {
  let upstream: http.Server;
  let upstreamPort = 0;
  let lastUpstreamHeaders: http.IncomingHttpHeaders = {};
  beforeAll(async () => {
    upstream = http.createServer((req, res) => {
      lastUpstreamHeaders = req.headers;
      res.end("ok");
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    upstreamPort = (upstream.address() as AddressInfo).port;
  });
  afterAll(() => new Promise((r) => upstream.close(r)));

  /** One request over a fresh TLS connection, with the given client certificate (or none). */
  function call(gw: LocalGateway, client: string | null, servername = "localhost"): Promise<Outcome> {
    return new Promise((done) => {
      const req = https.request(`${gw.url}/v1/x`, {
        method: "GET",
        headers: { "x-sluice-cluster": "openai" },
        ca: pem("ca.pem"),
        servername,
        agent: false,
        ...(client ? { cert: pem(`${client}.pem`), key: pem(`${client}.key`) } : {}),
      }, (res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => done({ status: res.statusCode!, body, seenUpstream: lastUpstreamHeaders as Record<string, string> }));
      });
      req.on("error", (e) => done({ error: String((e as NodeJS.ErrnoException).code ?? e.message) }));
      req.end();
    });
  }

  it("requires a client certificate from the client CA with an allowed SAN; the filters read the connection as Envoy serves it", async () => {
    const gw = await startLocalGateway({ envoyYaml: envoyYaml(upstreamPort, TLS_YAML), port: 0, adminPort: 0, env: {}, accessLog: () => {} });
    try {
      expect(gw.url).toMatch(/^https:/);
      // No certificate: refused in the handshake (require_client_certificate), no HTTP answer.
      expect(await call(gw, null)).toHaveProperty("error");
      // A certificate from another CA: refused.
      expect(await call(gw, "client-untrusted")).toHaveProperty("error");
      // From the right CA, but no SAN matches: refused before any request is read.
      expect(await call(gw, "client-intruder")).toHaveProperty("error");
      expect(gw.host.getLogs("info").filter((l) => l.startsWith("request_headers"))).toEqual([]);

      const ok = await call(gw, "client-team-a");
      expect(ok).toMatchObject({ status: 200, body: "ok" });
      // The HCM's scheme on a TLS connection.
      expect((ok as any).seenUpstream["x-forwarded-proto"]).toBe("https");
      const lines = gw.host.getLogs("info").map((l) => l.split("\t")).filter(([ph]) => ph === "request_headers");
      const read = (path: string) => {
        const l = lines.find(([, p]) => p === path)!;
        return { rc: Number(l[2]), value: Buffer.from(l[3], "hex") };
      };
      const str = (path: string) => read(path).value.toString();
      expect(read("connection|mtls")).toEqual({ rc: 0, value: Buffer.from([1]) });
      expect(str("connection|tls_version")).toBe("TLSv1.3");
      expect(str("connection|subject_peer_certificate")).toBe("CN=team-a+OU=AI,O=Example\\, Inc.,C=US");
      // Envoy answers the first SAN of the kind (SslExtractorsValues in context.cc).
      expect(str("connection|uri_san_peer_certificate")).toBe("spiffe://example.org/team-a");
      expect(str("connection|dns_san_peer_certificate")).toBe("team-a.clients.example.com");
      expect(str("connection|subject_local_certificate")).toBe("CN=localhost");
      expect(str("connection|dns_san_local_certificate")).toBe("localhost");
      expect(str("connection|sha256_peer_certificate_digest")).toBe(new X509Certificate(pem("client-team-a.pem")).fingerprint256.replace(/:/g, "").toLowerCase());
      expect(str("connection|requested_server_name")).toBe("localhost");
    } finally {
      await gw.close();
    }
  });

  it("a client CA without require_client_certificate: the certificate is optional, but one presented must be valid", async () => {
    const tls = `
  tls:
    certificate: ${TLS_DIR}/server.pem
    private_key: ${TLS_DIR}/server.key
    client_ca: ${TLS_DIR}/ca.pem
    min_version: "1.2"
`;
    const gw = await startLocalGateway({ envoyYaml: envoyYaml(upstreamPort, tls), port: 0, adminPort: 0, env: {}, accessLog: () => {} });
    try {
      expect(await call(gw, null)).toMatchObject({ status: 200 });
      const without = gw.host.getLogs("info").map((l) => l.split("\t")).filter(([ph, p]) => ph === "request_headers" && p === "connection|mtls");
      expect(without.at(-1)![3]).toBe("00");
      expect(await call(gw, "client-untrusted")).toHaveProperty("error");
      // Any SAN from the CA will do without matchers.
      expect(await call(gw, "client-intruder")).toMatchObject({ status: 200 });
    } finally {
      await gw.close();
    }
  });
});

describe("local gateway: listener TLS it cannot serve is refused, never served as plain HTTP", () => {
  const withSocket = (ts: unknown) => {
    const cfg = parse(stringify({
      static_resources: {
        listeners: [{
          address: { socket_address: { address: "127.0.0.1", port_value: 1 } },
          filter_chains: [{
            transport_socket: ts,
            filters: [{ name: "hcm", typed_config: {
              "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
              route_config: { virtual_hosts: [{ name: "v", domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster_header: "x-c" } }] }] },
              http_filters: [{ name: "r", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } }],
            } }],
          }],
        }],
      },
    }));
    return () => parseEnvoyConfig(stringify(cfg));
  };
  const base = () => listenerTransportSocket({ certificate: "/c.pem", privateKey: "/k.pem", clientCa: "/ca.pem", requireClientCertificate: true, allowedSans: [], minVersion: "1.2" }) as any;

  it("refuses a second way to a filter chain (default_filter_chain, filter_chain_match, listener filters)", () => {
    const listenerWith = (extra: Record<string, unknown>, chainExtra: Record<string, unknown> = {}) => () => {
      const doc = parse(stringify({ static_resources: { listeners: [{ address: { socket_address: { address: "127.0.0.1", port_value: 1 } }, ...extra, filter_chains: [{ ...chainExtra, filters: [{ name: "hcm", typed_config: {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        route_config: { virtual_hosts: [{ name: "v", domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster_header: "x-c" } }] }] },
        http_filters: [{ name: "r", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } }],
      } }] }] }] } }));
      return parseEnvoyConfig(stringify(doc));
    };
    expect(listenerWith({ default_filter_chain: { transport_socket: base() } })).toThrow(/default_filter_chain: the local gateway runs filter_chains\[0\] only/);
    expect(listenerWith({ listener_filters: [{ name: "envoy.filters.listener.tls_inspector" }] })).toThrow(/listener_filters/);
    expect(listenerWith({}, { filter_chain_match: { server_names: ["a.example.com"] } })).toThrow(/filter_chain_match/);
    expect(listenerWith({})().listener.tls).toBeUndefined();
  });

  it("accepts the rendered socket and names every unimplemented setting", () => {
    expect(withSocket(base())().listener.tls).toMatchObject({ requireClientCertificate: true, trustedCa: { filename: "/ca.pem" } });
    const crl = base();
    crl.typed_config.common_tls_context.validation_context.crl = { filename: "/crl.pem" };
    expect(withSocket(crl)).toThrow(/validation_context\.crl: the local gateway does not implement/);
    const untrusted = base();
    untrusted.typed_config.common_tls_context.validation_context.trust_chain_verification = "ACCEPT_UNTRUSTED";
    expect(withSocket(untrusted)).toThrow(/trust_chain_verification/);
    const other = base();
    other.typed_config["@type"] = "type.googleapis.com/envoy.extensions.transport_sockets.quic.v3.QuicDownstreamTransport";
    expect(withSocket(other)).toThrow(/serves plaintext or .*DownstreamTlsContext/);
    const h2only = base();
    h2only.typed_config.common_tls_context.alpn_protocols = ["h2"];
    expect(withSocket(h2only)).toThrow(/HTTP\/1\.1 only/);
    const old = base();
    old.typed_config.common_tls_context.tls_params.tls_minimum_protocol_version = "TLSv1_0";
    expect(withSocket(old)).toThrow(/below 1\.2/);
    const noCa = base();
    delete noCa.typed_config.common_tls_context.validation_context;
    expect(withSocket(noCa)).toThrow(/trusted_ca: needed to require or match client certificates/);
    const otherName = base();
    otherName.typed_config.common_tls_context.validation_context.match_typed_subject_alt_names = [{ san_type: "OTHER_NAME", matcher: { exact: "x" } }];
    expect(withSocket(otherName)).toThrow(/OTHER_NAME/);
  });

  it("SAN matchers match only SANs of their type; an exact DNS matcher takes the certificate's wildcard", () => {
    const matchers = (l: any[]) => l.map((m, i) => ({ type: m.type, match: sanMatch({ ...m, at: `m[${i}]` }) }));
    const dns = matchers([{ type: "dns", matcher: { exact: "api.example.com" } }]);
    expect(sansAllowed(dns, [{ type: "dns", value: "*.example.com" }])).toBe(true);
    expect(sansAllowed(dns, [{ type: "uri", value: "api.example.com" }])).toBe(false);
    expect(sansAllowed(dns, [])).toBe(false);
    const ip = matchers([{ type: "ip", matcher: { exact: "2001:db8::1" } }]);
    expect(sansAllowed(ip, certificateNames(new X509Certificate(pem("client-escapes.pem")).raw).sans)).toBe(true);
  });

  it("the same listener TLS read twice needs no restart; another one does", () => {
    const text = (require: boolean) => {
      const ts = base();
      ts.typed_config.common_tls_context.validation_context.match_typed_subject_alt_names = [{ san_type: "URI", matcher: { prefix: "spiffe://" } }];
      ts.typed_config.require_client_certificate = require;
      return withSocket(ts)();
    };
    expect(restartNeeded(text(true), text(true))).toEqual([]);
    const changed = base();
    changed.typed_config.common_tls_context.tls_params.tls_minimum_protocol_version = "TLSv1_3";
    expect(restartNeeded(text(true), withSocket(changed)())).toEqual(["listener (address, port, buffer limit)"]);
  });

  it("docker compose mounts envoy/tls at /etc/sluice/tls, where npm start reads it too", () => {
    const compose = parse(readFileSync("envoy/docker-compose.yaml", "utf8"));
    expect(compose.services.envoy.volumes).toContain("./tls:/etc/sluice/tls:ro");
    expect(mountedPath("/etc/sluice/tls/server.key", resolve("envoy"))).toBe(resolve("envoy/tls/server.key"));
    expect(mountedPath("/certs/server.key", resolve("envoy"))).toBe("/certs/server.key");
  });

  it("a certificate file that cannot be read stops npm start", async () => {
    const tls = `
  tls:
    certificate: ${TLS_DIR}/missing.pem
    private_key: ${TLS_DIR}/server.key
`;
    await expect(startLocalGateway({ envoyYaml: envoyYaml(1, tls), port: 0, adminPort: 0, env: {}, accessLog: () => {} })).rejects.toThrow(/listener TLS certificate chain .*missing\.pem.*ENOENT/);
  });
});
