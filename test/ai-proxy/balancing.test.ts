// Load balancing, health (passive and active, shared by all workers) and fallback inside ai-proxy,
// through build/ai-proxy.wasm; fallback answers and health probes go over real HTTP to mock
// providers speaking their own wire formats.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { Host } from "../../host/index.js";
import { startMock, type MockServer } from "../../scripts/mocks/index.js";
import { WASM, send, answer, header, sseData, sseEvents, usageRecord, upstreamJson } from "./helpers.js";

const CHAT = { model: "m", messages: [{ role: "user", content: "Hello" }] };
const OK = (model = "gpt-4o") => JSON.stringify({
  id: "c1", object: "chat.completion", created: 1, model,
  choices: [{ index: 0, message: { role: "assistant", content: "fine" }, finish_reason: "stop" }],
  usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
});

async function proxy(configuration: object, extra: { workers?: number; clusters?: Record<string, string>; clock?: () => bigint } = {}) {
  return Host.create({
    filters: [{ name: "ai-proxy", wasm: WASM, configuration, allowOnHeadersStopIteration: true, workers: extra.workers ?? 1 }],
    clusters: extra.clusters, clock: extra.clock,
  });
}

/** Envoy's router could not connect: its 503 reply passes through the filters with these details. */
function connectFailure(s: ReturnType<Host["newStream"]>) {
  s.info.responseCodeDetails = "upstream_reset_before_response_started{connection_failure}";
  s.callOnResponseHeaders({ ":status": "503", "content-type": "text/plain" }, false);
  s.callOnResponseBody("upstream connect error or disconnect/reset before headers. reset reason: connection failure", true);
}

const cluster = (s: ReturnType<Host["newStream"]>) => header(s.upstream.headers, "x-sluice-cluster");

describe("load balancing", () => {
  it("honours weights within 5% over 10,000 picks (smooth weighted round-robin)", async () => {
    const h = await proxy({
      instances: [
        { name: "a", provider: "openai", api_key: "k", weight: 3 },
        { name: "b", provider: "openai", api_key: "k", weight: 1 },
        { name: "c", provider: "openai", api_key: "k", weight: 6 },
      ],
      pools: [{ name: "m", instances: ["a", "b", "c"] }],
    });
    const counts: Record<string, number> = { a: 0, b: 0, c: 0 };
    for (let i = 0; i < 10_000; i++) {
      const s = send(h, "/v1/chat/completions", CHAT);
      counts[cluster(s)!]++;
      answer(s, 200, "application/json", [OK()]);
    }
    expect(Math.abs(counts.a / 10_000 - 0.3)).toBeLessThan(0.05 * 0.3);
    expect(Math.abs(counts.b / 10_000 - 0.1)).toBeLessThan(0.05 * 0.1);
    expect(Math.abs(counts.c / 10_000 - 0.6)).toBeLessThan(0.05 * 0.6);
  });

  it("least_latency moves traffic away from a slow instance", async () => {
    let now = 1_700_000_000_000n * 1_000_000n;
    const h = await proxy({
      instances: [{ name: "slow", provider: "openai", api_key: "k" }, { name: "fast", provider: "openai", api_key: "k" }],
      pools: [{ name: "m", instances: ["slow", "fast"], algorithm: "least_latency" }],
    }, { clock: () => now });
    const counts: Record<string, number> = { slow: 0, fast: 0 };
    for (let i = 0; i < 200; i++) {
      const s = send(h, "/v1/chat/completions", CHAT);
      const c = cluster(s)!;
      counts[c]++;
      now += (c === "slow" ? 900n : 60n) * 1_000_000n;
      answer(s, 200, "application/json", [OK()]);
    }
    expect(counts.fast).toBeGreaterThan(190);
  });

  it("lowest_cost picks the cheaper instance for the request", async () => {
    const h = await proxy({
      instances: [
        { name: "pricey", provider: "openai", api_key: "k", price: { input: 5, output: 15 } },
        { name: "cheap", provider: "openai", api_key: "k", price: { input: 0.15, output: 0.6 } },
      ],
      pools: [{ name: "m", instances: ["pricey", "cheap"], algorithm: "lowest_cost" }],
    });
    for (let i = 0; i < 20; i++) expect(cluster(send(h, "/v1/chat/completions", CHAT))).toBe("cheap");
  });

  it("priority groups: the lower group only when the higher one is unavailable", async () => {
    const h = await proxy({
      instances: [{ name: "primary", provider: "openai", api_key: "k" }, { name: "backup", provider: "openai", api_key: "k", priority: 1 }],
      pools: [{ name: "m", instances: ["primary", "backup"] }],
      health: { failures: 1 },
      fallback: { max_retries: 0 },
    });
    for (let i = 0; i < 5; i++) {
      const s = send(h, "/v1/chat/completions", CHAT);
      expect(cluster(s)).toBe("primary");
      answer(s, 200, "application/json", [OK()]);
    }
    const s = send(h, "/v1/chat/completions", CHAT);
    answer(s, 500, "application/json", [JSON.stringify({ error: { message: "down", type: "server_error" } })]);
    expect(cluster(send(h, "/v1/chat/completions", CHAT))).toBe("backup");
  });

  it("consistent hash is stable per key and moves at most the leaving instance's keys", async () => {
    const pool = (names: string[]) => ({
      instances: ["i1", "i2", "i3", "i4"].map((name) => ({ name, provider: "openai", api_key: "k" })),
      pools: [{ name: "m", instances: names, algorithm: "consistent_hash", hash_on: "header:x-user" }],
    });
    const four = await proxy(pool(["i1", "i2", "i3", "i4"]));
    const three = await proxy(pool(["i1", "i2", "i3"]));
    const users = Array.from({ length: 2000 }, (_, i) => `user-${i}`);
    const where = (h: Host, u: string) => cluster(send(h, "/v1/chat/completions", CHAT, { "x-user": u }))!;
    const before = users.map((u) => where(four, u));
    expect(users.map((u) => where(four, u))).toEqual(before); // stable
    const after = users.map((u) => where(three, u));
    let moved = 0;
    users.forEach((_, i) => {
      if (before[i] !== "i4") expect(after[i]).toBe(before[i]); // only i4's keys move
      if (before[i] !== after[i]) moved++;
    });
    expect(moved / users.length).toBeLessThan(1 / 4 + 0.05);
    const share = before.filter((c) => c === "i4").length / users.length;
    expect(share).toBeGreaterThan(0.15);
    expect(share).toBeLessThan(0.35);
  });
});

describe("health shared by all workers, and fallback", () => {
  let openai: MockServer;
  let anthropic: MockServer;
  const clusters = () => ({ "oa-2": openai.url, "claude-2": anthropic.url, "claude-1": anthropic.url, "oa-1": openai.url });

  beforeAll(async () => {
    openai = await startMock("openai", { apiKey: "k-oa" });
    anthropic = await startMock("anthropic", { apiKey: "k-cl" });
  });
  afterAll(async () => {
    await openai.close();
    await anthropic.close();
  });

  const CONFIG = {
    instances: [
      { name: "oa-1", provider: "openai", api_key: "k-oa", endpoint: "http://openai-1.internal/v1", priority: 0 },
      { name: "claude-2", provider: "anthropic", api_key: "k-cl", endpoint: "http://anthropic-2.internal", model: "claude-sonnet-4-5", priority: 1 },
    ],
    pools: [{ name: "m", instances: ["oa-1", "claude-2"] }],
    health: { failures: 1, cooldown_ms: 60000 },
    instance_header: true,
  };

  it("with the first instance down, a plain request succeeds through fallback, translated (OpenAI client, Anthropic fallback)", async () => {
    const h = await proxy(CONFIG, { clusters: clusters() });
    const s = send(h, "/v1/chat/completions", CHAT);
    connectFailure(s);
    await h.settle();
    s.completeHttpContext();
    expect(header(s.downstream.headers, ":status")).toBe("200");
    expect(header(s.downstream.headers, "x-sluice-instance")).toBe("claude-2");
    const body = JSON.parse(s.downstream.body.toString());
    expect(body.object).toBe("chat.completion");
    expect(body.choices[0].message.content).toContain("Hello");
    expect(s.getFilterState("sluice.instance")).toBe("claude-2");
    expect(s.getFilterState("sluice.provider")).toBe("anthropic");
    expect(s.getFilterState("sluice.attempts")).toBe("2");
    expect(usageRecord(s).source).toBe("provider");
    // The fallback went out in Anthropic's own format, with Anthropic's credential.
    const seen = anthropic.requests.at(-1)!;
    expect(seen.path).toBe("/v1/messages");
    expect(seen.headers["x-api-key"]).toBe("k-cl");
    expect(h.getMetric("sluice.ai_instance_failed;instance=oa-1;cause=connect_failure")?.value).toBe(1n);
  });

  it("a streaming request gets a well-formed stream from the fallback", async () => {
    const h = await proxy(CONFIG, { clusters: clusters() });
    const s = send(h, "/v1/chat/completions", { ...CHAT, stream: true });
    s.callOnResponseHeaders({ ":status": "500", "content-type": "application/json" }, false);
    s.callOnResponseBody(JSON.stringify({ error: { message: "boom", type: "server_error" } }), true);
    await h.settle();
    s.completeHttpContext();
    expect(header(s.downstream.headers, ":status")).toBe("200");
    expect(header(s.downstream.headers, "content-type")).toBe("text/event-stream");
    const data = sseData(s.downstream.body.toString());
    expect(data.at(-1)).toBe("[DONE]");
    const text = data.slice(0, -1).map((d) => JSON.parse(d).choices[0]?.delta?.content ?? "").join("");
    expect(text).toContain("Hello");
  });

  it("Anthropic client: the Anthropic instance down, the OpenAI fallback answers in Anthropic's format (streamed too)", async () => {
    const h = await proxy({
      instances: [
        { name: "claude-1", provider: "anthropic", api_key: "k-cl", endpoint: "http://anthropic-1.internal" },
        { name: "oa-2", provider: "openai", api_key: "k-oa", endpoint: "http://openai-2.internal/v1", model: "gpt-4o" },
      ],
      pools: [{ name: "claude-sonnet-4-5", instances: ["claude-1", "oa-2"] }],
    }, { clusters: clusters() });
    const msg = { model: "claude-sonnet-4-5", max_tokens: 100, messages: [{ role: "user", content: "Bonjour" }] };
    for (const stream of [false, true]) {
      const s = send(h, "/v1/messages", { ...msg, stream });
      s.callOnResponseHeaders({ ":status": "529", "content-type": "application/json" }, false);
      s.callOnResponseBody(JSON.stringify({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } }), true);
      await h.settle();
      s.completeHttpContext();
      expect(header(s.downstream.headers, ":status")).toBe("200");
      const out = s.downstream.body.toString();
      if (stream) {
        const events = sseEvents(out).map((e) => e.event);
        expect(events[0]).toBe("message_start");
        expect(events.at(-1)).toBe("message_stop");
      } else {
        const m = JSON.parse(out);
        expect(m.type).toBe("message");
        expect(m.content[0].text).toContain("Bonjour");
      }
      expect(openai.requests.at(-1)!.body.model).toBe("gpt-4o");
    }
  });

  it("takes a failing instance out for every worker, and brings it back after it passes active checks", async () => {
    let now = 1_700_000_000_000n * 1_000_000n;
    const h = await proxy({
      instances: [
        { name: "oa-1", provider: "openai", api_key: "k-oa", endpoint: "http://openai-1.internal/v1" },
        { name: "oa-2", provider: "openai", api_key: "k-oa", endpoint: "http://openai-2.internal/v1" },
      ],
      pools: [{ name: "m", instances: ["oa-1", "oa-2"] }],
      health: { failures: 2, cooldown_ms: 5000, active: { interval_ms: 1000, timeout_ms: 1000, healthy: 2, unhealthy: 2 } },
      fallback: { max_retries: 0 },
    }, { workers: 2, clusters: clusters(), clock: () => now });
    // Two failures of oa-1, seen on two different workers.
    for (const worker of [0, 1]) {
      let s;
      do {
        s = h.newStream({ worker });
        s.callOnRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw" }, false);
        s.callOnRequestBody(JSON.stringify(CHAT), true);
        if (cluster(s) === "oa-2") answer(s, 200, "application/json", [OK()]);
      } while (cluster(s) !== "oa-1");
      answer(s, 500, "application/json", [JSON.stringify({ error: { message: "x", type: "server_error" } })]);
    }
    expect(h.getMetric("sluice.ai_instance_cooldowns;instance=oa-1")?.value).toBe(1n);
    expect(h.getMetric("sluice.ai_instance_available;instance=oa-1")?.value).toBe(0n);
    // Now no worker sends to oa-1.
    for (let i = 0; i < 20; i++) {
      const s = h.newStream({ worker: i % 2 });
      s.callOnRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw" }, false);
      s.callOnRequestBody(JSON.stringify(CHAT), true);
      expect(cluster(s)).toBe("oa-2");
      answer(s, 200, "application/json", [OK()]);
    }
    // Past the cooldown it stays out until the probes pass (the mock answers GET /v1/models).
    now += 6_000n * 1_000_000n;
    expect(cluster(send(h, "/v1/chat/completions", CHAT))).toBe("oa-2");
    for (let i = 0; i < 3; i++) {
      now += 1_100n * 1_000_000n;
      h.tick();
      await h.settle();
    }
    expect(openai.requests.some((r) => r.method === "GET" && r.path === "/v1/models")).toBe(true);
    expect(h.getMetric("sluice.ai_instance_available;instance=oa-1")?.value).toBe(1n);
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const s = send(h, "/v1/chat/completions", CHAT);
      seen.add(cluster(s)!);
      answer(s, 200, "application/json", [OK()]);
    }
    expect(seen.has("oa-1")).toBe(true);
  });

  it("a 429 with Retry-After, and rate-limit headers at zero, skip the instance until the reset", async () => {
    let now = 1_700_000_000_000n * 1_000_000n;
    const h = await proxy({
      instances: [{ name: "oa-1", provider: "openai", api_key: "k" }, { name: "oa-2", provider: "openai", api_key: "k" }],
      pools: [{ name: "m", instances: ["oa-1", "oa-2"] }],
      fallback: { max_retries: 0 },
    }, { clock: () => now });
    const toFirst = () => {
      for (;;) {
        const s = send(h, "/v1/chat/completions", CHAT);
        if (cluster(s) === "oa-1") return s;
        answer(s, 200, "application/json", [OK()]);
      }
    };
    answer(toFirst(), 429, "application/json", [JSON.stringify({ error: { message: "slow down", type: "requests" } })], { "retry-after": "30" });
    for (let i = 0; i < 10; i++) expect(cluster(send(h, "/v1/chat/completions", CHAT))).toBe("oa-2");
    now += 31_000n * 1_000_000n;
    // Back; then a success whose headers say the token quota is spent for 20 s.
    answer(toFirst(), 200, "application/json", [OK()], { "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "20s" });
    for (let i = 0; i < 10; i++) expect(cluster(send(h, "/v1/chat/completions", CHAT))).toBe("oa-2");
    now += 21_000n * 1_000_000n;
    const back = new Set<string>();
    for (let i = 0; i < 4; i++) back.add(cluster(send(h, "/v1/chat/completions", CHAT))!);
    expect(back.has("oa-1")).toBe(true);
  });

  it("never answers 500: every instance failing gives the last provider error", async () => {
    const h = await proxy({
      instances: [{ name: "oa-1", provider: "openai", api_key: "k" }],
      pools: [{ name: "m", instances: ["oa-1"] }],
    });
    const s = send(h, "/v1/chat/completions", CHAT);
    connectFailure(s);
    s.completeHttpContext();
    expect(header(s.downstream.headers, ":status")).toBe("502");
    expect(JSON.parse(s.downstream.body.toString()).error.code).toBe("upstream_unreachable");
    expect(upstreamJson(s).model).toBe("m");
  });
});

describe("Envoy's global rate limit filter", () => {
  it("a 429 with x-envoy-ratelimited is the gateway's refusal: no health penalty, no fallback, an OpenAI 429", async () => {
    const h = await proxy({
      instances: [{ name: "oa-1", provider: "openai", api_key: "k" }, { name: "oa-2", provider: "openai", api_key: "k" }],
      pools: [{ name: "m", instances: ["oa-1", "oa-2"] }],
      health: { failures: 1 },
    });
    const s = send(h, "/v1/chat/completions", CHAT);
    const first = cluster(s);
    s.callOnResponseHeaders({ ":status": "429", "x-envoy-ratelimited": "true", "content-type": "text/plain" }, false);
    s.callOnResponseBody("rate limited", true);
    s.completeHttpContext();
    expect(header(s.downstream.headers, ":status")).toBe("429");
    expect(JSON.parse(s.downstream.body.toString()).error).toMatchObject({ type: "rate_limit_error", code: "rate_limit_exceeded" });
    expect(usageRecord(s)).toMatchObject({ total: "0" });
    expect(h.getMetric(`sluice.ai_instance_failed;instance=${first};cause=429`)).toBeUndefined();
    // Still in rotation.
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add(cluster(send(h, "/v1/chat/completions", CHAT))!);
    expect(seen.has(first!)).toBe(true);
  });
});
