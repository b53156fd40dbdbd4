// The whole chain end to end: a gateway.yaml with key-auth, ai-router, ai-ratelimit and ai-proxy ->
// render -> strict validation against Envoy's protos -> the local gateway run from that envoy.yaml
// (mock providers) -> the official `openai` client: a simple prompt goes to the cheap pool and a
// complex one to the capable pool, every request is charged in tokens (x-ratelimit-remaining-tokens
// goes down), a request past the consumer's per-minute budget gets 429 with Retry-After, and the
// access log and /stats/prometheus say what happened.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { render } from "../../cli/render.js";
import { validateEnvoyYaml } from "../../cli/envoy-validate.js";
import { startLocalGateway, type LocalGateway } from "../../cli/start.js";

const LIMIT = 2000;
const GATEWAY_YAML = `
listener: { address: 127.0.0.1, port: 10000 }
admin: { port: 9901 }
timeouts: { first_byte: 4s, idle: 5s, connect: 2s }
consumers:
  - name: team-a
    keys: [sk-team-a]
providers:
  - name: small
    provider: openai
    api_key_env: OPENAI_API_KEY
    model: gpt-4o-mini
    models: [auto]
  - name: big
    provider: anthropic
    api_key_env: ANTHROPIC_API_KEY
    model: claude-sonnet-4-5
    models: [auto]
pools:
  - name: cheap
    instances: [small]
  - name: capable
    instances: [big]
filters:
  ai_router:
    route_header: true
    rules:
      - name: simple
        pool: cheap
        when: { model: auto, complexity: { lt: 0.3 } }
      - name: complex
        pool: capable
        when: { model: auto }
  ai_ratelimit:
    default_max_tokens: 256
    rules:
      - name: consumer-minute
        key: [consumer]
        limit: ${LIMIT}
        window: 1m
`;

const SIMPLE = "What is the capital of France?";
const COMPLEX =
  "Design a lock-free multi-producer queue in C++ and prove it is linearizable. Discuss the trade-offs, edge cases and race conditions step by step.";

let gw: LocalGateway;
const log: string[] = [];
const client = () => new OpenAI({ apiKey: "sk-team-a", baseURL: `${gw.url}/v1`, maxRetries: 0 });
const settle = () => new Promise((res) => setTimeout(res, 60)); // the log line is written as the stream completes
const lastLog = (): Record<string, any> => JSON.parse(log.at(-1)!);

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "sluice-chain-e2e-"));
  writeFileSync(join(dir, "gateway.yaml"), GATEWAY_YAML);
  render({ config: join(dir, "gateway.yaml"), outDir: join(dir, "envoy"), env: {} });
  const v = validateEnvoyYaml(readFileSync(join(dir, "envoy", "envoy.yaml"), "utf8"));
  expect(v.errors).toEqual([]);
  gw = await startLocalGateway({ envoyYaml: join(dir, "envoy", "envoy.yaml"), port: 0, adminPort: 0, env: {}, accessLog: (l) => log.push(l) });
  // Windows are aligned on the minute: start early in one, so the test's requests share a window.
  const left = 60_000 - (Date.now() % 60_000);
  if (left < 20_000) await new Promise((res) => setTimeout(res, left + 200));
}, 40_000);

afterAll(async () => {
  await gw?.close();
});

describe("key-auth -> ai-router -> ai-ratelimit -> ai-proxy, from gateway.yaml to the openai client", () => {
  it("runs the four filters in order, every provider instance mocked", () => {
    expect(gw.config.filters.map((f) => f.name)).toEqual(["key-auth", "ai-router", "ai-ratelimit", "ai-proxy"]);
    expect(gw.providers.map((p) => [p.instance, p.mode])).toEqual([["small", "mock"], ["big", "mock"]]);
  });

  const remaining: number[] = [];

  it("a simple prompt goes to the cheap pool; the access log carries consumer, pool, route_rule, model, tokens, ttft_ms", async () => {
    const { data, response } = await client().chat.completions.create({ model: "auto", max_tokens: 200, messages: [{ role: "user", content: SIMPLE }] }).withResponse();
    expect(response.status).toBe(200);
    expect(response.headers.get("x-sluice-route")).toBe("simple");
    expect(data.model).toMatch(/^gpt-4o-mini/);
    expect(data.choices[0].message.content).toContain(SIMPLE);
    expect(response.headers.get("x-ratelimit-limit-tokens")).toBe(String(LIMIT));
    remaining.push(Number(response.headers.get("x-ratelimit-remaining-tokens")));
    expect(remaining[0]).toBeLessThan(LIMIT - 200); // the reservation: max_tokens and the prompt estimate
    await settle();
    const line = lastLog();
    expect(line).toMatchObject({
      status: 200,
      consumer: "team-a",
      pool: "cheap",
      route_rule: "simple",
      task_type: "chat",
      provider: "openai",
      instance: "small",
      request_model: "auto",
      model: data.model,
      prompt_tokens: String(data.usage!.prompt_tokens),
      completion_tokens: String(data.usage!.completion_tokens),
      total_tokens: String(data.usage!.total_tokens),
      usage_source: "provider",
      ratelimit_rule: null,
    });
    expect(Number(line.complexity)).toBeLessThan(0.3);
    expect(Number(line.ttft_ms)).toBeGreaterThanOrEqual(0);
  });

  it("a complex prompt goes to the capable pool (Anthropic, translated back to OpenAI's format), streamed; its tokens are charged too", async () => {
    const { data: stream, response } = await client()
      .chat.completions.create({ model: "auto", max_tokens: 200, stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: COMPLEX }] })
      .withResponse();
    expect(response.headers.get("x-sluice-route")).toBe("complex");
    let text = "";
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      usage = chunk.usage ?? usage;
    }
    expect(text).toContain("lock-free");
    remaining.push(Number(response.headers.get("x-ratelimit-remaining-tokens")));
    await settle();
    expect(lastLog()).toMatchObject({
      status: 200,
      request_type: "ai_stream",
      consumer: "team-a",
      pool: "capable",
      route_rule: "complex",
      task_type: "reasoning",
      provider: "anthropic",
      instance: "big",
      model: "claude-sonnet-4-5",
      completion_tokens: String(usage!.completion_tokens),
    });
    expect(Number(lastLog().complexity)).toBeGreaterThanOrEqual(0.3);
  });

  it("x-ratelimit-remaining-tokens goes down request after request (the earlier requests' actual usage is charged)", async () => {
    const { response } = await client().chat.completions.create({ model: "auto", max_tokens: 200, messages: [{ role: "user", content: SIMPLE }] }).withResponse();
    remaining.push(Number(response.headers.get("x-ratelimit-remaining-tokens")));
    expect(remaining).toHaveLength(3);
    expect(remaining[1]).toBeLessThan(remaining[0]);
    expect(remaining[2]).toBeLessThan(remaining[1]);
  });

  it("once the consumer's per-minute budget is spent: 429, Retry-After, an OpenAI-style error naming the rule", async () => {
    // This request would reserve more than is left in the window (though less than the limit).
    const err = await client()
      .chat.completions.create({ model: "auto", max_tokens: LIMIT - 100, messages: [{ role: "user", content: SIMPLE }] })
      .catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(err.status).toBe(429);
    expect(err.code).toBe("rate_limit_exceeded");
    expect(err.message).toMatch(/Rate limit reached for rule 'consumer-minute' on tokens per 1m: Limit 2000/);
    const retryAfter = Number(err.headers.get("retry-after"));
    expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60).toBe(true);
    expect(Number(err.headers.get("x-ratelimit-remaining-tokens"))).toBeLessThan(LIMIT - 100);
    await settle();
    expect(lastLog()).toMatchObject({ status: 429, consumer: "team-a", pool: "cheap", route_rule: "simple", ratelimit_rule: "consumer-minute", instance: null, prompt_tokens: null });
  });

  it("/stats/prometheus: requests per router rule, tokens admitted and charged and requests rejected per rate-limit rule", async () => {
    const prom = await (await fetch(`${gw.adminUrl}/stats/prometheus`)).text();
    expect(prom).toMatch(/^sluice_router_matched\{rule="simple"\} 3$/m);
    expect(prom).toMatch(/^sluice_router_matched\{rule="complex"\} 1$/m);
    expect(prom).toMatch(/^sluice_ratelimit_rejected\{rule="consumer-minute"\} 1$/m);
    const charged = Number(/^sluice_ratelimit_charged_tokens\{rule="consumer-minute"\} (\d+)$/m.exec(prom)?.[1]);
    const logged = log.map((l) => JSON.parse(l)).filter((l) => l.status === 200).reduce((n, l) => n + Number(l.total_tokens), 0);
    expect(charged).toBe(logged);
    expect(prom).not.toContain(";");
  });
});
