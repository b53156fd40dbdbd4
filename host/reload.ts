// What a new envoy.yaml + ECDS render changes, and which of it a running gateway can take.
//
// Envoy takes a wasm filter's new TypedExtensionConfig through ECDS without a restart
// (source/common/filter/config_discovery_impl.cc: the new factory serves streams created after the
// update; a stream keeps the filter chain it was built with). Everything in the static envoy.yaml
// (listener, HCM filter chain order, route, clusters, admin, access log) would need LDS/RDS/CDS, which
// Sluice does not serve: those changes are reported as needing a restart, never applied halfway.
import { isDeepStrictEqual } from "node:util";
import type { LocalGatewayConfig } from "./envoy-config.js";

/** The parts of envoy.yaml that differ and that only a restart applies (empty: ECDS can deliver it all). */
export function restartNeeded(running: LocalGatewayConfig, next: LocalGatewayConfig): string[] {
  const out: string[] = [];
  const same = (a: unknown, b: unknown) => isDeepStrictEqual(a, b);
  const chain = (c: LocalGatewayConfig) => c.filters.map((f) => f.filterName);
  if (!same(chain(running), chain(next))) out.push(`http_filters: ${chain(running).join(", ")} -> ${chain(next).join(", ")} (the listener's filter chain)`);
  if (!same(running.listener, next.listener)) out.push("listener (address, port, buffer limit)");
  if (!same(running.admin, next.admin)) out.push("admin");
  const clusters = (c: LocalGatewayConfig) => Object.keys(c.clusters).sort();
  if (!same(clusters(running), clusters(next))) out.push(`clusters: ${clusters(running).join(", ")} -> ${clusters(next).join(", ")}`);
  else if (!same(running.clusters, next.clusters)) out.push("clusters (endpoint, TLS, timeouts)");
  if (!same(running.route, next.route) || !same(running.routeInfo, next.routeInfo)) out.push("route (timeouts, buffer limit)");
  if (!same(running.accessLog, next.accessLog)) out.push("access_log");
  if (!same(running.localReply, next.localReply)) out.push("local_reply_config");
  if (!same(running.statsTags, next.statsTags)) out.push("stats_tags");
  if (!same(running.histogramBuckets, next.histogramBuckets)) out.push("histogram_bucket_settings");
  if (!same(running.notRun, next.notRun)) out.push("Envoy-only filters");
  return out;
}
