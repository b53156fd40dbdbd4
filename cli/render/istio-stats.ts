// envoy/istio/stats-bootstrap.yaml: envoy.yaml's stats_config for the gateway's pods under Istio.
// Istio writes the proxies' bootstrap itself, so the tags that make Sluice's and the GenAI metrics'
// labels, and the GenAI histograms' buckets, are missing there unless added. Istio merges a JSON
// bootstrap from a ConfigMap into the one it generates when a pod carries the annotation
// sidecar.istio.io/bootstrapOverride naming the ConfigMap (its injection templates mount it at
// /etc/istio/custom-bootstrap and pilot-agent merges custom_bootstrap.json, repeated fields
// appended), so Istio's own tags stay and Sluice's come after them. The bootstrap is read when the
// proxy starts: a change needs the pods restarted.
import type { GatewayConfig } from "../gateway-config.js";
import { statsConfig } from "./stats-config.js";

export const ISTIO_STATS_FILE = "stats-bootstrap.yaml";
export const ISTIO_STATS_CONFIGMAP = "sluice-stats-bootstrap";
/** The key Istio's bootstrap override reads. */
export const BOOTSTRAP_OVERRIDE_KEY = "custom_bootstrap.json";

export function istioStatsBootstrap(cfg: GatewayConfig): { comment: string; docs: unknown[] } {
  return {
    comment: [
      "Envoy's stats_config of envoy.yaml for the gateway's pods: the stats tags that make Sluice's metric labels and the",
      "OpenTelemetry GenAI attributes Prometheus labels, and the GenAI histograms' bucket boundaries (docs/deploy-istio.md).",
      "Istio merges it into the bootstrap it generates when the gateway's pod template carries the annotation",
      `  sidecar.istio.io/bootstrapOverride: ${ISTIO_STATS_CONFIGMAP}`,
      "and reads it when a proxy starts: restart the gateway's pods after applying or changing it. Istio's default stats",
      "inclusion list has the prefix `wasm`, which keeps the filters' `wasmcustom.` metrics; a ProxyConfig proxyStatsMatcher",
      "of your own must keep them too (inclusionPrefixes: [wasmcustom.]).",
    ].join("\n"),
    docs: [
      {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: ISTIO_STATS_CONFIGMAP, namespace: cfg.istio.namespace },
        data: { [BOOTSTRAP_OVERRIDE_KEY]: JSON.stringify({ stats_config: statsConfig() }, null, 2) + "\n" },
      },
    ],
  };
}
