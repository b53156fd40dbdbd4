// Money budgets across Envoys (issue 19, item 4): a distributed `strategy: cost` rule becomes a
// request-time check (hits_addend 0) and a stream-done charge of ai-proxy's recorded cost
// (%FILTER_STATE(wasm.sluice.cost:PLAIN)%) in the route's RateLimitPerRoute, and a descriptor in
// envoyproxy/ratelimit's configuration counted in micro-units; what the service cannot count is
// refused at render naming the field; the rendered service configuration is checked as the service
// loads it, and against the descriptors the routes send.
import { describe, it, expect } from "vitest";
import { parse } from "yaml";
import { parseGatewayConfig } from "../cli/gateway-config.js";
import { problemsOf } from "./fixtures/gateway-yaml.js";
import { rateLimitServiceConfig, renderEnvoy, renderFiles } from "../cli/render.js";
import { rateLimitProblems, validateRendered } from "../cli/render/files.js";
import { checkRouteDescriptors, validateRateLimitServiceConfig } from "../cli/ratelimit-validate.js";
import { validateEnvoyYaml } from "../cli/envoy-validate.js";

const GATEWAY = `
listener: { port: 10000 }
consumers:
  - name: team-a
    keys: [key-a]
providers:
  - name: small
    provider: openai
    api_key_env: OPENAI_API_KEY
    models: [gpt-4o-mini, gpt-4o]
filters:
  ai_ratelimit:
    rules:
      - name: consumer-day
        key: [consumer]
        strategy: cost
        budget: 50
        window: 1d
      - name: model-month
        key: [model]
        when: { model: ["gpt-4o*"] }
        strategy: cost
        budget: 4000.5
        window: 30d
      - name: tokens-week
        key: [consumer]
        limit: 7000000
        window: 7d
    distributed:
      service: { address: ratelimit.internal, port: 8081 }
`;


const route = (envoy: any) => envoy.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0];
const COST = "%FILTER_STATE(wasm.sluice.cost:PLAIN)%";

describe("distributed money budgets: rendered", () => {
  const cfg = parseGatewayConfig(GATEWAY, { env: {} });

  it("a cost rule checks at request time without adding, and adds the recorded cost when the stream is done", () => {
    const limits = route(renderEnvoy(cfg)).typed_per_filter_config["envoy.filters.http.ratelimit"].rate_limits;
    const consumer = limits[0].actions;
    expect(consumer[0]).toEqual({ generic_key: { descriptor_key: "rule", descriptor_value: "consumer-day" } });
    expect(limits.slice(0, 2)).toEqual([
      { actions: consumer, hits_addend: { number: 0 } },
      { actions: consumer, apply_on_stream_done: true, hits_addend: { format: COST } },
    ]);
    expect(limits[2]).toEqual({ actions: limits[2].actions, hits_addend: { number: 0 } });
    expect(limits[3]).toEqual({ actions: limits[2].actions, apply_on_stream_done: true, hits_addend: { format: COST } });
    // The token rule keeps its prompt estimate and completion tokens.
    expect(limits[4].hits_addend.format).toBe("%FILTER_STATE(wasm.sluice.ratelimit_prompt_estimate:PLAIN)%");
    expect(limits[5].hits_addend.format).toBe("%FILTER_STATE(wasm.sluice.completion_tokens:PLAIN)%");
  });

  it("the service counts budgets in micro-units; 1d, 30d and 7d are its day, month and week", () => {
    expect(rateLimitServiceConfig(cfg)).toEqual({
      domain: "sluice",
      descriptors: [
        { key: "rule", value: "consumer-day", descriptors: [{ key: "consumer", rate_limit: { unit: "day", requests_per_unit: 50_000_000 } }] },
        { key: "rule", value: "model-month", descriptors: [{ key: "when", value: "true", descriptors: [{ key: "model", rate_limit: { unit: "month", requests_per_unit: 4_000_500_000 } }] }] },
        { key: "rule", value: "tokens-week", descriptors: [{ key: "consumer", rate_limit: { unit: "week", requests_per_unit: 7_000_000 } }] },
      ],
    });
  });

  it("every rendered file passes: envoy.yaml against Envoy's API, ratelimit/config.yaml as the service loads it, each route descriptor found with a limit", () => {
    const files = renderFiles(cfg);
    expect(validateEnvoyYaml(files["envoy.yaml"]).errors).toEqual([]);
    expect(validateRateLimitServiceConfig(parse(files["ratelimit/config.yaml"]))).toEqual([]);
    expect(rateLimitProblems(files)).toEqual([]);
    expect(() => validateRendered(files)).not.toThrow();
  });

  it("a service configuration that has no descriptor for a route's rule, or a broken one, fails render's validation", () => {
    const files = renderFiles(cfg);
    const service = parse(files["ratelimit/config.yaml"]);
    service.descriptors.splice(1, 1);
    const broken = { ...files, "ratelimit/config.yaml": JSON.stringify(service) };
    expect(rateLimitProblems(broken).map((p) => p.file)).toEqual(["envoy.yaml", "envoy.mock.yaml"]);
    expect(rateLimitProblems(broken)[0].errors[0]).toBe(
      "listeners[0] virtual_hosts[0].routes[0].rate_limits[2]: the rate limit service has no descriptor for (rule, model-month) -> (when, true) -> (model) (stops at rule)",
    );
    expect(() => validateRendered(broken)).toThrow(/no descriptor for \(rule, model-month\)/);
  });
});

describe("the rate limit service's configuration, checked as envoyproxy/ratelimit loads it", () => {
  it("unknown keys, a bad unit, a requests_per_unit over uint32, duplicates, an empty key", () => {
    expect(validateRateLimitServiceConfig({
      domain: "sluice",
      descriptors: [
        { key: "rule", value: "a", rate_limit: { unit: "fortnight", requests_per_unit: 1 } },
        { key: "rule", value: "a", rate_limit: { unit: "DAY", requests_per_unit: 4294967296 } },
        { key: "", limit: 3 },
        { key: "rule", value: "b", rate_limit: { unit: "day", requests_per_unit: 5, per: 1 }, descriptors: [{ key: "x", value: 7 }] },
        { key: "rule", value: "c", rate_limit: { unlimited: true, unit: "day" } },
      ],
    })).toEqual([
      'descriptors[0].rate_limit.unit: must be one of second, minute, hour, day, week, month, year (got "fortnight")',
      "descriptors[1]: duplicate descriptor composite key 'rule_a'",
      "descriptors[1].rate_limit.requests_per_unit: must be a whole number from 0 to 4294967295 (got 4294967296)",
      "descriptors[2].limit: unknown key 'limit'",
      "descriptors[2].key: must be a non-empty string",
      "descriptors[3].rate_limit.per: unknown key 'per'",
      "descriptors[3].descriptors[0].value: must be a string",
      "descriptors[4].rate_limit.unit: must not be given when unlimited",
    ]);
    expect(validateRateLimitServiceConfig({ descriptors: [] })).toEqual(["domain: must be a non-empty string"]);
  });

  it("a route descriptor is walked as the service does: key_value first, then key; it must end on a limit", () => {
    const service = { domain: "d", descriptors: [{ key: "rule", value: "r", descriptors: [{ key: "consumer" }] }] };
    const actions = [{ generic_key: { descriptor_key: "rule", descriptor_value: "r" } }, { extension: { typed_config: { descriptor_key: "consumer" } } }];
    expect(checkRouteDescriptors([{ actions }], service, "route")).toEqual(["route.rate_limits[0]: the rate limit service's descriptor ends without a rate_limit"]);
    (service.descriptors[0].descriptors[0] as any).rate_limit = { unit: "day", requests_per_unit: 1 };
    expect(checkRouteDescriptors([{ actions }], service, "route")).toEqual([]);
  });
});

describe("distributed money budgets: what the service cannot count is refused at render, naming the field", () => {
  const keepLocal = "; keep it local by listing the other rules in distributed.rules";

  it("a calendar month or week, a window that is not one of the service's units, a sliding window, a soft limit, a budget over 4294.967295", () => {
    const text = GATEWAY.replace("budget: 50\n        window: 1d", "budget: 50\n        window: month")
      .replace("budget: 4000.5\n        window: 30d", "budget: 5000\n        window: 2d\n        window_type: sliding")
      .replace("limit: 7000000\n        window: 7d", "limit: 7000000\n        window: week\n        warn_at: 0.8");
    expect(problemsOf(text).map((l) => l.replace(/^gateway\.yaml:\d+:\d+: /, ""))).toEqual([
      `filters.ai_ratelimit.rules[0].window: rule 'consumer-day' cannot be distributed: the rate limit service has no calendar month: its week is 7 days from the Unix epoch (a Thursday) and its month 30 days; use window 30d, which both count alike${keepLocal}`,
      `filters.ai_ratelimit.rules[1].budget: rule 'model-month' cannot be distributed: the rate limit service's requests_per_unit is at most 4294967295, and a budget is counted in micro-units: at most 4294.967295 per window${keepLocal}`,
      `filters.ai_ratelimit.rules[1].window: rule 'model-month' cannot be distributed: the rate limit service's windows are 1s, 1m, 1h, 1d, 7d, 30d and 365d (got "2d")${keepLocal}`,
      `filters.ai_ratelimit.rules[1].window_type: rule 'model-month' cannot be distributed: the rate limit service counts fixed windows only${keepLocal}`,
      `filters.ai_ratelimit.rules[2].window: rule 'tokens-week' cannot be distributed: the rate limit service has no calendar week: its week is 7 days from the Unix epoch (a Thursday) and its month 30 days; use window 7d, which both count alike${keepLocal}`,
      `filters.ai_ratelimit.rules[2].warn_at: rule 'tokens-week' cannot be distributed: the rate limit service has no soft limit${keepLocal}`,
    ]);
  });
});

describe("the stream-done hits_addend, as Envoy reads it from a request through build/ai-proxy.wasm", () => {
  // Envoy's populateDescriptors (ratelimit_config.cc): a string must parse as a number from 0 to
  // 1,000,000,000, else the descriptor is dropped (null when the filter state is absent).
  const envoyHitsAddend = (v: string | undefined): number | "dropped" => {
    if (v === undefined || v.trim() === "" || !Number.isFinite(Number(v))) return "dropped";
    const n = Number(v);
    return n < 0 || n > 1e9 ? "dropped" : Math.floor(n);
  };
  const formatKey = (format: string) => /^%FILTER_STATE\((.+):PLAIN\)%$/.exec(format)![1];

  it("an answered request adds its cost in micro-units, a failed one 0, one refused before any provider nothing", async () => {
    const { proxyHost, send, answer } = await import("./ai-proxy/helpers.js");
    const limits = route(renderEnvoy(parseGatewayConfig(GATEWAY, { env: {} }))).typed_per_filter_config["envoy.filters.http.ratelimit"].rate_limits;
    const key = formatKey(limits[1].hits_addend.format);
    expect(key).toBe("wasm.sluice.cost");
    const h = await proxyHost({ instances: [{ name: "oa", provider: "openai", api_key: "sk", models: ["gpt-4o"] }] });
    const ok = send(h, "/v1/chat/completions", { model: "gpt-4o", messages: [{ role: "user", content: "hi" }] });
    answer(ok, 200, "application/json", [JSON.stringify({ id: "c", object: "chat.completion", created: 1, model: "gpt-4o", choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }], usage: { prompt_tokens: 1000, completion_tokens: 100, total_tokens: 1100 } })]);
    // gpt-4o's built-in price: 1000 × 2.5 + 100 × 10 = 3500 micro-dollars.
    expect(envoyHitsAddend(ok.filterState.get(key)?.toString())).toBe(3500);
    const failed = send(h, "/v1/chat/completions", { model: "gpt-4o", messages: [{ role: "user", content: "hi" }] });
    answer(failed, 503, "application/json", ['{"error":{"message":"overloaded","type":"server_error"}}']);
    expect(envoyHitsAddend(failed.filterState.get(key)?.toString())).toBe(0);
    const refused = send(h, "/v1/chat/completions", { model: "no-such-model", messages: [{ role: "user", content: "hi" }] });
    refused.completeHttpContext();
    expect(envoyHitsAddend(refused.filterState.get(key)?.toString())).toBe("dropped");
    h.close();
  });
});
