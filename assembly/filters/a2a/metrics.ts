// The a2a filter's metrics, labels as `;key=value` pairs that envoy.yaml's stats_tags extract:
//   sluice.a2a_requests;server=<agent>;method=<method>;outcome=<outcome>   every A2A request
//   sluice.a2a_call_ms;server=<agent>                                       routed call duration (histogram)
// Agents come from the configuration, methods from A2A's fixed list (methods.ts) or "card" / "other",
// outcomes from a fixed set: the series are bounded whatever clients send.
import { namedMetric, incrementMetric, recordMetric, METRIC_COUNTER, METRIC_HISTOGRAM } from "../../lib/sdk";


export function countRequest(agent: string, method: string, outcome: string, ms: i64, routed: bool): void {
  const a = agent.length ? agent : "none";
  incrementMetric(namedMetric(METRIC_COUNTER, "sluice.a2a_requests;server=" + a + ";method=" + method + ";outcome=" + outcome), 1);
  if (routed) recordMetric(namedMetric(METRIC_HISTOGRAM, "sluice.a2a_call_ms;server=" + a), <u64>(ms > 0 ? ms : 0));
}
