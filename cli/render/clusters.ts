// The clusters of envoy.yaml: one per provider instance (TLS with SNI and SAN checks), and the gateway's own services.
import type { GatewayConfig, Instance } from "../gateway-config.js";
import { CA_BUNDLE, CONNECTION_BUFFER_LIMIT, MOCK_BASE_PORT, MOCK_ORDER, MOCK_SERVICE } from "./constants.js";

export function isIp(host: string): boolean {
  return /^[0-9.]+$/.test(host) || host.includes(":");
}

export function cluster(cfg: GatewayConfig, i: Instance, target: { host: string; port: number; tls: boolean }) {
  const c: Record<string, unknown> = {
    name: i.name,
    type: isIp(target.host) ? "STATIC" : target.tls ? "LOGICAL_DNS" : "STRICT_DNS",
    connect_timeout: cfg.timeouts.connect,
    // The upstream connection's buffers (flow control toward the provider); Envoy's default, stated.
    per_connection_buffer_limit_bytes: CONNECTION_BUFFER_LIMIT,
  };
  if (!isIp(target.host)) c.dns_lookup_family = "V4_PREFERRED";
  c.load_assignment = {
    cluster_name: i.name,
    endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: target.host, port_value: target.port } }, hostname: target.host } }] }],
  };
  if (target.tls) {
    c.transport_socket = {
      name: "envoy.transport_sockets.tls",
      typed_config: {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        sni: target.host,
        common_tls_context: {
          validation_context: {
            trusted_ca: { filename: CA_BUNDLE },
            match_typed_subject_alt_names: [{ san_type: "DNS", matcher: { exact: target.host } }],
          },
        },
      },
    };
  }
  const http2 = target.tls && i.http2;
  c.typed_extension_protocol_options = {
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
      "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
      common_http_protocol_options: { idle_timeout: "60s" },
      // auto_config: h2 when the provider offers it by ALPN, else HTTP/1.1.
      ...(http2 ? { auto_config: { http_protocol_options: {}, http2_protocol_options: {} } } : { explicit_http_config: { http_protocol_options: {} } }),
    },
  };
  // No health_checks and no outlier_detection: each cluster has one endpoint, and with a lone host
  // Envoy's panic threshold (healthy_panic_threshold, 50% by default) routes to it whether it is
  // healthy, unhealthy or ejected (LoadBalancerBase::isHostSetInPanic / recalculateLoadInTotalPanic,
  // source/extensions/load_balancing_policies/common/load_balancer_impl.cc). A TCP check of a
  // provider's edge would only cost TLS handshakes. ai-proxy's health routes traffic (docs/health.md).
  return c;
}

export function realTarget(i: Instance) {
  const tls = i.url.protocol === "https:";
  return { host: i.url.hostname.replace(/^\[|\]$/g, ""), port: Number(i.url.port || (tls ? 443 : 80)), tls };
}

export function mockTarget(i: Instance) {
  return { host: MOCK_SERVICE, port: MOCK_BASE_PORT + MOCK_ORDER.indexOf(i.provider), tls: false };
}

/** A cluster for a service of the gateway's own (JWKS, authorization): TLS with SNI and SAN check for https. */
export function serviceCluster(cfg: GatewayConfig, name: string, host: string, port: number, tls: boolean, http2: boolean) {
  const ip = isIp(host);
  return {
    name,
    type: ip ? "STATIC" : "STRICT_DNS",
    connect_timeout: cfg.timeouts.connect,
    ...(ip ? {} : { dns_lookup_family: "V4_PREFERRED" }),
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: port } } } }] }] },
    ...(tls
      ? {
          transport_socket: {
            name: "envoy.transport_sockets.tls",
            typed_config: {
              "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
              sni: host,
              common_tls_context: { validation_context: { trusted_ca: { filename: CA_BUNDLE }, match_typed_subject_alt_names: [{ san_type: "DNS", matcher: { exact: host } }] } },
            },
          },
        }
      : {}),
    typed_extension_protocol_options: {
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        explicit_http_config: http2 ? { http2_protocol_options: {} } : { http_protocol_options: {} },
      },
    },
  };
}
