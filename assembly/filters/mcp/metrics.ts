// The mcp filter's metrics. As ai-proxy's, names carry their labels as `;key=value` pairs that
// envoy.yaml's stats_tags turn into labels (cli/render/access-log.ts):
//   sluice.mcp_requests;method=tools/call;outcome=ok        every MCP request
//   sluice.mcp_calls;server=github;tool=github__echo;outcome=ok   routed calls
//   sluice.mcp_call_ms;server=github                      routed call duration (histogram)
//   sluice.mcp_fanout_failures;server=github;reason=timeout   a server left out of an answer
//   sluice.mcp_request_bytes;method=tools/call              request body sizes (histogram)
//   sluice.mcp_response_bytes;server=github                 routed answer sizes (histogram)
// Label values are bounded: methods from MCP's fixed set (else "other"), servers from the
// configuration, reasons from a fixed set, and tools (a client's value) only up to MAX_TOOL_LABELS
// distinct names per VM, then "other".
import { namedMetric, incrementMetric, recordMetric, METRIC_COUNTER, METRIC_HISTOGRAM } from "../../lib/sdk";

const METHODS = [
  "initialize", "ping", "tools/list", "tools/call", "prompts/list", "prompts/get", "resources/list",
  "resources/templates/list", "resources/read", "resources/subscribe", "resources/unsubscribe",
  "completion/complete", "logging/setLevel", "notification", "response", "delete", "get",
];
const MAX_TOOL_LABELS: i32 = 512;

const tools = new Set<string>();

export function methodLabel(method: string): string {
  if (method.startsWith("notifications/")) return "notification";
  return METHODS.includes(method) ? method : "other";
}

function toolLabel(tool: string): string {
  if (tools.has(tool)) return tool;
  if (tools.size >= MAX_TOOL_LABELS || tool.includes(";") || tool.includes("=")) return "other";
  tools.add(tool);
  return tool;
}

export function countRequest(method: string, outcome: string, bodyBytes: i64): void {
  const m = methodLabel(method);
  incrementMetric(namedMetric(METRIC_COUNTER, "sluice.mcp_requests;method=" + m + ";outcome=" + outcome), 1);
  if (bodyBytes >= 0) recordMetric(namedMetric(METRIC_HISTOGRAM, "sluice.mcp_request_bytes;method=" + m), <u64>bodyBytes);
}

export function countCall(server: string, tool: string, outcome: string, ms: i64, responseBytes: i64): void {
  incrementMetric(namedMetric(METRIC_COUNTER, "sluice.mcp_calls;server=" + server + ";tool=" + (tool.length ? toolLabel(tool) : "none") + ";outcome=" + outcome), 1);
  recordMetric(namedMetric(METRIC_HISTOGRAM, "sluice.mcp_call_ms;server=" + server), <u64>(ms > 0 ? ms : 0));
  recordMetric(namedMetric(METRIC_HISTOGRAM, "sluice.mcp_response_bytes;server=" + server), <u64>(responseBytes > 0 ? responseBytes : 0));
}

/** reason: unreachable, timeout, http_error, invalid_answer, jsonrpc_error, no_credential. */
export function countFanoutFailure(server: string, reason: string): void {
  incrementMetric(namedMetric(METRIC_COUNTER, "sluice.mcp_fanout_failures;server=" + server + ";reason=" + reason), 1);
}
