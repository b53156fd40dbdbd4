// The listener's TLS (gateway.yaml listener.tls): the filter chain's transport socket, Envoy's
// envoy.transport_sockets.tls with a DownstreamTlsContext.
// - TLS 1.2 at least (Envoy's server default, written out), 1.3 at most.
// - ALPN h2 then http/1.1: the HCM's codec_type AUTO serves what the client picked; without ALPN a
//   client would get HTTP/1.1 only.
// - validation_context.trusted_ca asks for a client certificate and refuses one that does not chain
//   to it; match_typed_subject_alt_names keeps only certificates with a matching SAN and, in Envoy,
//   makes the certificate required (DefaultCertValidator::initializeSslContexts,
//   source/common/tls/cert_validator/default_validator.cc); require_client_certificate is written
//   out so the envoy.yaml says so either way.
import type { ListenerTlsConfig } from "../gateway-config.js";

export const DOWNSTREAM_TLS_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";

const SAN_TYPE: Record<ListenerTlsConfig["allowedSans"][number]["type"], string> = { uri: "URI", dns: "DNS", email: "EMAIL", ip_address: "IP_ADDRESS" };

export function listenerTransportSocket(t: ListenerTlsConfig): Record<string, unknown> {
  const validation: Record<string, unknown> = {};
  if (t.clientCa) validation.trusted_ca = { filename: t.clientCa };
  if (t.allowedSans.length) {
    validation.match_typed_subject_alt_names = t.allowedSans.map((m) => ({ san_type: SAN_TYPE[m.type], matcher: { [m.match]: m.value } }));
  }
  return {
    name: "envoy.transport_sockets.tls",
    typed_config: {
      "@type": DOWNSTREAM_TLS_TYPE,
      common_tls_context: {
        tls_params: { tls_minimum_protocol_version: t.minVersion === "1.3" ? "TLSv1_3" : "TLSv1_2", tls_maximum_protocol_version: "TLSv1_3" },
        alpn_protocols: ["h2", "http/1.1"],
        tls_certificates: [{ certificate_chain: { filename: t.certificate }, private_key: { filename: t.privateKey } }],
        ...(t.clientCa ? { validation_context: validation } : {}),
      },
      require_client_certificate: t.requireClientCertificate || t.allowedSans.length > 0,
    },
  };
}
