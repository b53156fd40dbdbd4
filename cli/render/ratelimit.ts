// Distributed token limits through Envoy's global rate limit filter and envoyproxy/ratelimit.
import type { DistributedRule, GatewayConfig } from "../gateway-config.js";
import { isIp } from "./clusters.js";

/** Envoy's global rate limit: the cluster of the rate limit service (gRPC over HTTP/2). */
export const RATELIMIT_CLUSTER = "sluice-ratelimit";
/** Compose service names and ports of envoyproxy/ratelimit (gRPC 8081) for envoy.mock.yaml. */
export const RATELIMIT_SERVICE = "ratelimit";
export const RATELIMIT_PORT = 8081;
const RATELIMIT_FILTER = "envoy.filters.http.ratelimit";

const PROMPT_ESTIMATE = "%FILTER_STATE(wasm.sluice.ratelimit_prompt_estimate:PLAIN)%";
const COMPLETION_TOKENS = "%FILTER_STATE(wasm.sluice.completion_tokens:PLAIN)%";
/** ai-proxy's cost of the request, micro-units of the currency (absent when the model has no price). */
const COST = "%FILTER_STATE(wasm.sluice.cost:PLAIN)%";
/**
 * Filter-state key of each key part, as Envoy's CEL sees it (filter state `wasm.<key>`). `key` and
 * `team` are a virtual key's id and team (assembly/lib/keys.ts KEY_ID, TEAM), written by key-auth.
 */
const PART_STATE: Record<string, string> = {
  consumer: "wasm.sluice.consumer", pool: "wasm.sluice.pool", model: "wasm.sluice.request_model",
  key: "wasm.sluice.key_id", team: "wasm.sluice.team",
  mcp_server: "wasm.sluice.mcp_server", mcp_tool: "wasm.sluice.mcp_tool", mcp_method: "wasm.sluice.mcp_method",
  a2a_agent: "wasm.sluice.a2a_agent", a2a_method: "wasm.sluice.a2a_method",
};

/** A single-quoted CEL string literal (CEL has JSON's escapes, and \' inside single quotes). */
function celString(s: string): string {
  return `'${JSON.stringify(s).slice(1, -1).replace(/\\"/g, '"').replace(/'/g, "\\'")}'`;
}

/** A CEL expression for the value of a key part. Filter state is bytes to CEL: string() it to compare. */
function celValue(part: string, forComparison: boolean): string {
  if (part.startsWith("header:")) return `request.headers[${celString(part.slice(7))}]`;
  const v = `filter_state[${celString(PART_STATE[part])}]`;
  return forComparison ? `string(${v})` : v;
}

function exprAction(key: string, text: string) {
  return {
    extension: {
      name: "envoy.rate_limit_descriptors.expr",
      typed_config: { "@type": "type.googleapis.com/envoy.extensions.rate_limit_descriptors.expr.v3.Descriptor", descriptor_key: key, text },
    },
  };
}

/**
 * The descriptor of a rule: ("rule", name), then ("when", "true"|"false") when the rule has
 * conditions, then one entry per key part. A part the request lacks (a CEL error, an absent header)
 * drops the whole descriptor, as the local filter skips a rule whose part is missing.
 */
export function rateLimitActions(rule: DistributedRule): unknown[] {
  const actions: unknown[] = [{ generic_key: { descriptor_key: "rule", descriptor_value: rule.name } }];
  if (rule.when.length) {
    const terms = rule.when.map(({ part, patterns }) => {
      const v = celValue(part, true);
      const alts = patterns.map((p) => (p.endsWith("*") ? `${v}.startsWith(${celString(p.slice(0, -1))})` : `${v} == ${celString(p)}`));
      return alts.length === 1 ? alts[0] : `(${alts.join(" || ")})`;
    });
    actions.push(exprAction("when", terms.join(" && ")));
  }
  for (const part of rule.parts) {
    if (part.startsWith("header:")) actions.push({ request_headers: { header_name: part.slice(7), descriptor_key: part } });
    else actions.push(exprAction(part, celValue(part, false)));
  }
  return actions;
}

/**
 * The RateLimitPerRoute.rate_limits of every distributed rule: a request-time and a stream-end entry.
 *
 * Envoy (source/extensions/filters/common/ratelimit_config/ratelimit_config.cc, populateDescriptors)
 * formats a hits_addend format at each call and takes a number, or a string that parses as one, from
 * 0 to 1,000,000,000; anything else (an absent filter state formats as null, a non-number) drops the
 * descriptor from that call with a warning: nothing is checked or charged for it.
 */
export function routeRateLimits(rules: DistributedRule[]): unknown[] {
  const out: unknown[] = [];
  for (const rule of rules) {
    const actions = rateLimitActions(rule);
    if (rule.strategy === "requests") {
      // Calls: one per request, counted when it is admitted.
      out.push({ actions, hits_addend: { number: 1 } });
      continue;
    }
    if (rule.strategy === "cost") {
      // Money: the reservation stays local (the exact per-Envoy counter). The service's counter can
      // only grow (hits_addend is unsigned), so it is charged once, with what was spent: a check that
      // adds nothing at request time (refused once the spend is past the budget), then ai-proxy's
      // recorded cost when the stream is done. Reserving globally would charge the reservation and
      // the cost both, with no way to give the difference back.
      out.push({ actions, hits_addend: { number: 0 } });
      out.push({ actions, apply_on_stream_done: true, hits_addend: { format: COST } });
      continue;
    }
    // At request time: the prompt (estimated), spent once the request is sent; a completion-only
    // rule checks without adding.
    out.push({ actions, hits_addend: rule.strategy === "completion_tokens" ? { number: 0 } : { format: PROMPT_ESTIMATE } });
    // When the stream ends: the completion tokens of ai-proxy's usage record.
    if (rule.strategy !== "prompt_tokens") out.push({ actions, apply_on_stream_done: true, hits_addend: { format: COMPLETION_TOKENS } });
  }
  return out;
}

export function rateLimitFilter(cluster: string, d: NonNullable<NonNullable<GatewayConfig["aiRatelimit"]>["distributed"]>) {
  return {
    name: RATELIMIT_FILTER,
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit",
      domain: d.domain,
      // The service is a cross-instance ceiling: if it is down or slow, the local limit still holds.
      failure_mode_deny: false,
      timeout: d.timeout,
      rate_limited_status: { code: "TooManyRequests" },
      rate_limit_service: { transport_api_version: "V3", grpc_service: { envoy_grpc: { cluster_name: cluster } } },
    },
  };
}

export function rateLimitPerRoute(rules: DistributedRule[]) {
  return {
    [RATELIMIT_FILTER]: {
      "@type": "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimitPerRoute",
      rate_limits: routeRateLimits(rules),
    },
  };
}

/** envoyproxy/ratelimit's configuration for the distributed rules (envoy/ratelimit/config.yaml). */
export function rateLimitServiceConfig(cfg: GatewayConfig): Record<string, unknown> {
  const d = cfg.aiRatelimit?.distributed;
  if (!d) return { domain: "sluice", descriptors: [] };
  return {
    domain: d.domain,
    descriptors: d.rules.map((rule) => {
      // Tokens, or micro-units of the currency for a money budget (hits_addend carries the same units).
      const limit = { rate_limit: { unit: rule.unit, requests_per_unit: rule.limit } };
      // Innermost first: the key parts (no value: one counter per value), then "when" = "true".
      let inner: Record<string, unknown> = limit;
      for (const part of [...rule.parts].reverse()) inner = { descriptors: [{ key: part, ...inner }] };
      if (rule.when.length) inner = { descriptors: [{ key: "when", value: "true", ...inner }] };
      return { key: "rule", value: rule.name, ...inner };
    }),
  };
}


/** The rate limit service: gRPC, so HTTP/2 (prior knowledge, plain text, as envoyproxy/ratelimit serves it). */
export function rateLimitCluster(cfg: GatewayConfig, target: { host: string; port: number }) {
  return {
    name: RATELIMIT_CLUSTER,
    type: isIp(target.host) ? "STATIC" : "STRICT_DNS",
    connect_timeout: cfg.timeouts.connect,
    ...(isIp(target.host) ? {} : { dns_lookup_family: "V4_PREFERRED" }),
    load_assignment: {
      cluster_name: RATELIMIT_CLUSTER,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: target.host, port_value: target.port } } } }] }],
    },
    typed_extension_protocol_options: {
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        explicit_http_config: { http2_protocol_options: {} },
      },
    },
  };
}

