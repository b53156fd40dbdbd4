// The listener's TLS as envoy.yaml gives it (filter_chains[0].transport_socket, an
// envoy.transport_sockets.tls DownstreamTlsContext), what the local gateway serves it with
// (host/server.ts, node:tls), and Envoy's client-certificate checks:
// - A certificate is requested when a trusted CA or a SAN matcher is given, and required when
//   require_client_certificate is true or a SAN matcher is given
//   (DefaultCertValidator::initializeSslContexts in source/common/tls/cert_validator/default_validator.cc:
//   trusted_ca sets SSL_VERIFY_PEER, match_typed_subject_alt_names SSL_VERIFY_PEER |
//   SSL_VERIFY_FAIL_IF_NO_PEER_CERT).
// - A presented certificate must chain to trusted_ca (doVerifyCertChain), then one matcher must
//   match one of its SANs of the matcher's type (DefaultCertValidator::matchSubjectAltName; a
//   certificate without a SAN extension fails; StringSanMatcher::match in san_matcher.cc: an exact
//   matcher on a DNS SAN follows Utility::dnsNameMatch, the certificate's SAN being the pattern).
// Settings the local gateway does not implement (CRLs, hash or SPKI pinning, OCSP, session tickets,
// cipher lists, accepting untrusted certificates, ...) are refused with their name.
import { NativeConfigError } from "./native/filter.js";
import { stringMatcher, type StringMatch } from "./native/match.js";
import { dnsNameMatch, type San } from "./x509.js";

const DOWNSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";

/** A config.core.v3.DataSource: a file (as Envoy sees it) or inline PEM. */
export type DataSource = { filename: string } | { inline: string };

/** One match_typed_subject_alt_names entry, as data (a running gateway compares configurations);
 * sanMatch compiles it. */
export interface SanMatcher {
  type: "dns" | "uri" | "email" | "ip";
  /** The envoy.type.matcher.v3.StringMatcher as envoy.yaml gives it. */
  matcher: Record<string, unknown>;
  at: string;
}

export interface ListenerTls {
  certificateChain: DataSource;
  privateKey: DataSource;
  /** validation_context.trusted_ca (null: none; then no client certificate is asked for). */
  trustedCa: DataSource | null;
  /** A client without a certificate is refused at the handshake. */
  requireClientCertificate: boolean;
  sanMatchers: SanMatcher[];
  /** tls_params, as node:tls names them: "TLSv1.2" / "TLSv1.3". */
  minVersion: "TLSv1.2" | "TLSv1.3";
  maxVersion: "TLSv1.2" | "TLSv1.3";
  /** common_tls_context.alpn_protocols, in order (empty: no ALPN). */
  alpn: string[];
}

function fail(at: string, msg: string): never {
  throw new NativeConfigError(`${at}: ${msg}`);
}

function obj(v: unknown, at: string): Record<string, any> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) fail(at, "expected a mapping");
  return v as Record<string, any>;
}

function only(o: Record<string, any>, at: string, known: string[]): void {
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) fail(`${at}.${k}`, "the local gateway does not implement this TLS setting (refused rather than served without it)");
  }
}

function dataSource(v: unknown, at: string): DataSource {
  const d = obj(v, at);
  only(d, at, ["filename", "inline_string", "inline_bytes"]);
  if (Object.keys(d).length !== 1) fail(at, "give exactly one of filename, inline_string, inline_bytes");
  if (typeof d.filename === "string" && d.filename) return { filename: d.filename };
  if (typeof d.inline_string === "string" && d.inline_string) return { inline: d.inline_string };
  if (typeof d.inline_bytes === "string" && d.inline_bytes) return { inline: Buffer.from(d.inline_bytes, "base64").toString("utf8") };
  fail(at, "must not be empty");
}

// envoy.extensions.transport_sockets.tls.v3.TlsParameters.TlsProtocol. A server's defaults are
// TLS 1.2 to TLS 1.3 (ServerContextConfigImpl DEFAULT_MIN_VERSION / DEFAULT_MAX_VERSION).
function tlsVersion(v: unknown, at: string, auto: "TLSv1.2" | "TLSv1.3"): "TLSv1.2" | "TLSv1.3" {
  if (v === undefined || v === "TLS_AUTO" || v === 0) return auto;
  if (v === "TLSv1_2" || v === 3) return "TLSv1.2";
  if (v === "TLSv1_3" || v === 4) return "TLSv1.3";
  if (v === "TLSv1_0" || v === "TLSv1_1" || v === 1 || v === 2) fail(at, "the local gateway does not serve TLS below 1.2");
  fail(at, `unknown TLS version ${JSON.stringify(v)}`);
}

const SAN_TYPES: Record<string, SanMatcher["type"]> = { DNS: "dns", URI: "uri", EMAIL: "email", IP_ADDRESS: "ip" };

function sanMatcher(v: unknown, at: string): SanMatcher {
  const m = obj(v, at);
  only(m, at, ["san_type", "matcher"]);
  const type = SAN_TYPES[m.san_type];
  if (!type) fail(`${at}.san_type`, m.san_type === "OTHER_NAME" ? "the local gateway does not match OTHER_NAME SANs" : `expected DNS, URI, EMAIL or IP_ADDRESS, got ${JSON.stringify(m.san_type)}`);
  const out: SanMatcher = { type, matcher: obj(m.matcher, `${at}.matcher`), at: `${at}.matcher` };
  sanMatch(out); // refused here rather than when serving
  return out;
}

/** A matcher for one SAN value of the matcher's type. An exact matcher on a DNS SAN follows DNS
 * matching (StringSanMatcher::match, san_matcher.cc). */
export function sanMatch(m: SanMatcher): StringMatch {
  if (m.type === "dns" && typeof m.matcher.exact === "string") {
    only(m.matcher, m.at, ["exact", "ignore_case"]);
    const exact = m.matcher.exact;
    return (san) => dnsNameMatch(exact, san);
  }
  return stringMatcher(m.matcher, m.at);
}

/** envoy.yaml's filter chain transport_socket, checked. */
export function parseListenerTls(v: unknown, at: string): ListenerTls {
  const ts = obj(v, at);
  only(ts, at, ["name", "typed_config"]);
  const tc = obj(ts.typed_config, `${at}.typed_config`);
  if (tc["@type"] !== DOWNSTREAM_TLS) fail(`${at}.typed_config`, `the local gateway serves plaintext or ${DOWNSTREAM_TLS}, not ${tc["@type"] ?? "(no @type)"}`);
  const tat = `${at}.typed_config`;
  only(tc, tat, ["@type", "common_tls_context", "require_client_certificate"]);
  const ctx = obj(tc.common_tls_context, `${tat}.common_tls_context`);
  const cat = `${tat}.common_tls_context`;
  only(ctx, cat, ["tls_params", "tls_certificates", "validation_context", "alpn_protocols"]);
  const params = obj(ctx.tls_params ?? {}, `${cat}.tls_params`);
  only(params, `${cat}.tls_params`, ["tls_minimum_protocol_version", "tls_maximum_protocol_version"]);
  const minVersion = tlsVersion(params.tls_minimum_protocol_version, `${cat}.tls_params.tls_minimum_protocol_version`, "TLSv1.2");
  const maxVersion = tlsVersion(params.tls_maximum_protocol_version, `${cat}.tls_params.tls_maximum_protocol_version`, "TLSv1.3");
  if (minVersion === "TLSv1.3" && maxVersion === "TLSv1.2") fail(`${cat}.tls_params`, "the minimum version is above the maximum");

  if (!Array.isArray(ctx.tls_certificates) || ctx.tls_certificates.length !== 1) fail(`${cat}.tls_certificates`, "the local gateway serves exactly one certificate");
  const c = obj(ctx.tls_certificates[0], `${cat}.tls_certificates[0]`);
  only(c, `${cat}.tls_certificates[0]`, ["certificate_chain", "private_key"]);
  const certificateChain = dataSource(c.certificate_chain, `${cat}.tls_certificates[0].certificate_chain`);
  const privateKey = dataSource(c.private_key, `${cat}.tls_certificates[0].private_key`);

  let trustedCa: DataSource | null = null;
  let sanMatchers: SanMatcher[] = [];
  if (ctx.validation_context !== undefined) {
    const vat = `${cat}.validation_context`;
    const vc = obj(ctx.validation_context, vat);
    only(vc, vat, ["trusted_ca", "match_typed_subject_alt_names"]);
    if (vc.trusted_ca !== undefined) trustedCa = dataSource(vc.trusted_ca, `${vat}.trusted_ca`);
    if (vc.match_typed_subject_alt_names !== undefined) {
      if (!Array.isArray(vc.match_typed_subject_alt_names)) fail(`${vat}.match_typed_subject_alt_names`, "expected a list");
      sanMatchers = vc.match_typed_subject_alt_names.map((m: unknown, i: number) => sanMatcher(m, `${vat}.match_typed_subject_alt_names[${i}]`));
    }
  }
  const rcc = tc.require_client_certificate;
  if (rcc !== undefined && typeof rcc !== "boolean") fail(`${tat}.require_client_certificate`, "expected true or false");
  // Without a trusted CA Envoy fails every presented certificate (nothing validates it), so a
  // required one would refuse every client; SAN matchers alone would accept any self-made certificate.
  if ((rcc === true || sanMatchers.length) && !trustedCa) fail(`${cat}.validation_context.trusted_ca`, "needed to require or match client certificates (the local gateway does not accept certificates it cannot verify)");

  if (ctx.alpn_protocols !== undefined && !Array.isArray(ctx.alpn_protocols)) fail(`${cat}.alpn_protocols`, "expected a list");
  const alpn = (ctx.alpn_protocols ?? []).map(String);
  // The local gateway speaks HTTP/1.1 only: with h2 offered too, a client that also offers
  // http/1.1 gets it; an ALPN list without http/1.1 would refuse every client here that Envoy serves.
  if (alpn.length && !alpn.includes("http/1.1")) fail(`${cat}.alpn_protocols`, "the local gateway speaks HTTP/1.1 only: the list must contain http/1.1");
  return { certificateChain, privateKey, trustedCa, requireClientCertificate: rcc === true || sanMatchers.length > 0, sanMatchers, minVersion, maxVersion, alpn };
}

/** Whether a client certificate's SANs pass the compiled matchers (true when there are none). */
export function sansAllowed(matchers: { type: SanMatcher["type"]; match: StringMatch }[], sans: San[]): boolean {
  if (!matchers.length) return true;
  return matchers.some((m) => sans.some((s) => s.type === m.type && m.match(s.value)));
}
