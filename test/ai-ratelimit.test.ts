// ai-ratelimit through build/ai-ratelimit.wasm and the Envoy-faithful host, alone and chained with
// key-auth (consumers) and ai-proxy (usage records), with a controlled clock.
import { describe, it, expect } from "vitest";
import { Host, HostLoadError } from "../host/index.js";

const RL = "build/ai-ratelimit.wasm";
const KA = "build/key-auth.wasm";
const AP = "build/ai-proxy.wasm";

// A day boundary, so minute/hour/day windows all start here.
const T0 = 1_699_920_000n * 1_000_000_000n;
const SEC = 1_000_000_000n;

const CONSUMERS = ["alice", "bob", "carol", "dave"];
const KEY_AUTH = { consumers: CONSUMERS.map((n) => ({ name: n, keys: [`sk-${n}`] })) };
const PROXY = {
  instances: [
    { name: "oa", provider: "openai", api_key: "sk-up", models: ["gpt-*"] },
    { name: "mini", provider: "openai", api_key: "sk-up", models: ["mini-*"] },
  ],
};

type Pairs = [string, string][];
const header = (p: Pairs | null | undefined, n: string) => (p ?? []).find(([k]) => k === n)?.[1];

class Clock {
  now = T0;
  advance(ns: bigint) {
    this.now += ns;
  }
}

interface ChainOpts {
  workers?: number;
  keyAuth?: boolean;
  proxy?: boolean;
  clock?: Clock;
}

async function chain(rl: object, o: ChainOpts = {}) {
  const clock = o.clock ?? new Clock();
  const workers = o.workers ?? 1;
  const filters = [];
  if (o.keyAuth !== false) filters.push({ name: "key-auth", wasm: KA, configuration: KEY_AUTH, workers });
  filters.push({ name: "ai-ratelimit", wasm: RL, configuration: rl, allowOnHeadersStopIteration: true, workers });
  if (o.proxy !== false) filters.push({ name: "ai-proxy", wasm: AP, configuration: PROXY, allowOnHeadersStopIteration: true, workers });
  const h = await Host.create({ filters, clock: () => clock.now });
  return { h, clock };
}

interface Req {
  consumer?: string;
  path?: string;
  body?: unknown;
  headers?: Record<string, string>;
  worker?: number;
}

const CHAT = (model = "gpt-4o", max_tokens?: number, extra: object = {}) => ({
  model, messages: [{ role: "user", content: "Hello there" }], ...(max_tokens !== undefined ? { max_tokens } : {}), ...extra,
});

function send(h: Host, r: Req = {}) {
  const s = h.newStream(r.worker !== undefined ? { worker: r.worker } : {});
  s.callOnRequestHeaders({
    ":method": "POST", ":path": r.path ?? "/v1/chat/completions", ":authority": "gw", ":scheme": "http",
    "content-type": "application/json", authorization: `Bearer sk-${r.consumer ?? "alice"}`, ...(r.headers ?? {}),
  }, false);
  const text = typeof r.body === "string" ? r.body : JSON.stringify(r.body ?? CHAT());
  s.callOnRequestBody(text, true);
  return s;
}

// Members whose strings the prompt estimate counts, and members inside them that are not text
// (assembly/lib/tokens.ts).
const PROMPT_MEMBERS = ["messages", "system", "tools", "functions", "input", "instructions", "systemInstruction", "content", "requests", "contents"];
const NOT_TEXT = ["role", "type", "id", "tool_call_id", "tool_use_id", "cache_control", "image_url", "source", "signature", "media_type", "detail", "input_audio", "file", "inlineData", "fileData", "thoughtSignature", "model", "taskType", "call_id", "encrypted_content"];

/** Bytes of the strings the model reads, as the client wrote them (escapes included). */
function textBytes(v: unknown): number {
  if (typeof v === "string") return Buffer.byteLength(JSON.stringify(v)) - 2;
  if (Array.isArray(v)) return v.reduce((n: number, x) => n + textBytes(x), 0);
  if (v && typeof v === "object") return Object.entries(v).reduce((n, [k, x]) => n + (NOT_TEXT.includes(k) ? 0 : textBytes(x)), 0);
  return 0;
}

/** The prompt estimate: text bytes / 4, and for a chat 3 tokens a message and 3 a request. */
function promptEstimate(body: Record<string, unknown>) {
  const bytes = PROMPT_MEMBERS.reduce((n, k) => n + (k in body ? textBytes(body[k]) : 0), 0);
  const turns = body.messages ?? body.contents;
  const messages = Array.isArray(turns) ? turns.length : 0;
  return Math.ceil(bytes / 4) + (messages ? 3 * messages + 3 : 0);
}

/** The reservation the filter makes for a body: prompt estimate + output limit. */
function estimate(body: unknown, maxTokens: number) {
  const prompt = promptEstimate((typeof body === "string" ? JSON.parse(body) : body) as Record<string, unknown>);
  return { prompt, completion: maxTokens, total: prompt + maxTokens };
}

type Stream = ReturnType<Host["newStream"]>;

/** The provider answers with this usage; the stream completes. */
function answer(s: Stream, usage: { prompt: number; completion: number; cached?: number }, extraHeaders: Record<string, string> = {}) {
  const body = {
    id: "chatcmpl-1", object: "chat.completion", created: 1700000000, model: "gpt-4o",
    choices: [{ index: 0, message: { role: "assistant", content: "Hi" }, finish_reason: "stop" }],
    usage: {
      prompt_tokens: usage.prompt, completion_tokens: usage.completion, total_tokens: usage.prompt + usage.completion,
      prompt_tokens_details: { cached_tokens: usage.cached ?? 0 },
    },
  };
  s.callOnResponseHeaders({ ":status": "200", "content-type": "application/json", ...extraHeaders }, false);
  s.callOnResponseBody(JSON.stringify(body), true);
  s.completeHttpContext();
}

/** The ring of a counter: bucket number -> count. */
function ring(h: Host, key: string): Map<bigint, bigint> {
  const m = new Map<bigint, bigint>();
  const v = h.getSharedData(key);
  if (!v) return m;
  for (let i = 0; i + 16 <= v.value.length; i += 16) {
    const idx = v.value.readBigInt64LE(i);
    if (idx >= 0n) m.set(idx, v.value.readBigInt64LE(i + 8));
  }
  return m;
}

/** Usage of a fixed-window counter at the clock's time. */
function used(h: Host, key: string, clock: Clock, windowSeconds = 60n): number {
  const b = clock.now / (windowSeconds * SEC);
  return Number(ring(h, key).get(b) ?? 0n);
}

function rejection(s: Stream) {
  const r = s.getSentLocalResponse();
  if (!r) return null;
  return { status: r.statusCode, headers: r.headers, body: JSON.parse(r.body.toString()), details: r.statusDetails };
}

async function loadError(configuration: object): Promise<string> {
  const err = await Host.create({ filters: [{ name: "ai-ratelimit", wasm: RL, configuration, allowOnHeadersStopIteration: true }] }).catch((e) => e);
  expect(err).toBeInstanceOf(HostLoadError);
  return String(err.message) + "\n" + (err.logs ?? []).join("\n");
}

function expectNoTraps(h: Host) {
  expect(h.getLogs("error").filter((l) => l.includes("failed: Uncaught"))).toEqual([]);
}

// -------------------------------------------------------------------------------------------------

describe("ai-ratelimit: configuration", () => {
  const rule = (r: object) => ({ rules: [{ name: "r", limit: 100, window: "1m", ...r }] });
  const cases: [string, object, RegExp][] = [
    ["zero limit", rule({ limit: 0 }), /ai-ratelimit\.rules\[0\]\.limit: must be a whole number from 1/],
    ["negative limit", rule({ limit: -5 }), /rules\[0\]\.limit: must be a whole number from 1/],
    ["missing limit", { rules: [{ name: "r", window: "1m" }] }, /rules\[0\]\.limit: is required/],
    ["unknown key part", rule({ key: ["consumer", "tenant"] }), /rules\[0\]\.key\[1\]: unknown key part 'tenant'/],
    ["bad header part", rule({ key: ["header:"] }), /rules\[0\]\.key\[0\]: 'header:'/],
    ["window 0", rule({ window: 0 }), /rules\[0\]\.window: must be longer than 0 seconds/],
    ["window 0s", rule({ window: "0s" }), /rules\[0\]\.window: must be longer than 0 seconds/],
    ["window garbage", rule({ window: "5 minutes" }), /rules\[0\]\.window: '5 minutes' is not a duration/],
    ["window too long", rule({ window: "400d" }), /rules\[0\]\.window: must be at most 366 days/],
    ["missing window", { rules: [{ name: "r", limit: 1 }] }, /rules\[0\]\.window: is required/],
    ["unknown strategy", rule({ strategy: "calls" }), /rules\[0\]\.strategy: unknown strategy 'calls'/],
    ["weighted without weights", rule({ strategy: "weighted" }), /rules\[0\]\.weights: is required with strategy weighted/],
    ["weights without weighted", rule({ weights: { prompt: 1 } }), /rules\[0\]\.weights: applies only to strategy weighted/],
    ["negative weight", rule({ strategy: "weighted", weights: { completion: -1 } }), /rules\[0\]\.weights\.completion: must be a number from 0/],
    ["unknown weight", rule({ strategy: "weighted", weights: { output: 1 } }), /rules\[0\]\.weights\.output: unknown field/],
    ["unknown field", rule({ limits: 5 }), /rules\[0\]\.limits: unknown field/],
    ["unknown top-level field", { rules: rule({}).rules, rule: [] }, /ai-ratelimit\.rule: unknown field/],
    ["no rules", { rules: [] }, /ai-ratelimit\.rules: must list at least one rule/],
    ["rules missing", {}, /ai-ratelimit\.rules: is required/],
    ["duplicate names", { rules: [rule({}).rules[0], rule({}).rules[0]] }, /rules\[1\]\.name: duplicate rule name 'r'/],
    ["bad name", rule({ name: "a.b" }), /rules\[0\]\.name: 'a\.b' must be 1 to 64 letters/],
    ["window type", rule({ window_type: "rolling" }), /rules\[0\]\.window_type: unknown window type 'rolling'/],
    ["sub_buckets on fixed", rule({ sub_buckets: 4 }), /rules\[0\]\.sub_buckets: applies only to window_type sliding/],
    ["sub_buckets range", rule({ window_type: "sliding", sub_buckets: 0 }), /rules\[0\]\.sub_buckets: must be a whole number from 1 to 60/],
    ["stream margin on prompt rule", rule({ strategy: "prompt_tokens", stream_margin: 10 }), /rules\[0\]\.stream_margin: needs a strategy that counts completion tokens/],
    ["stream margin on instance rule", rule({ key: ["instance"], stream_margin: 10 }), /rules\[0\]\.stream_margin: is not available on a rule keyed by instance/],
    ["bad when", rule({ when: { model: [] } }), /rules\[0\]\.when\.model: must be a string or a non-empty list/],
    ["when unknown part", rule({ when: { region: "eu" } }), /rules\[0\]\.when\.region: unknown key part 'region'/],
    ["rejected_status", { ...rule({}), rejected_status: 200 }, /ai-ratelimit\.rejected_status: must be a whole number from 400 to 599/],
    ["max_body_bytes 0", { ...rule({}), max_body_bytes: 0 }, /ai-ratelimit\.max_body_bytes: must be a whole number from 1 to 1073741824/],
    ["max_body_bytes not a number", { ...rule({}), max_body_bytes: "10MB" }, /ai-ratelimit\.max_body_bytes: /],
    ["not JSON", "{rules:", /configuration: is not valid JSON/] as unknown as [string, object, RegExp],
  ];
  for (const [name, configuration, message] of cases) {
    it(`rejects ${name}`, async () => {
      const text = await loadError(configuration);
      expect(text).toMatch(/ai-ratelimit: invalid configuration: /);
      expect(text).toMatch(message);
    });
  }

  it("accepts a full configuration and defines its metrics", async () => {
    const { h } = await chain({
      rules: [
        { name: "per-consumer", key: ["consumer"], limit: 1000, window: "1m" },
        { name: "per-model-day", key: ["model", "header:x-team"], limit: 100000, window: "1d", window_type: "sliding", sub_buckets: 24 },
        { name: "cost", key: ["consumer"], when: { model: ["gpt-4o*", "o1"] }, limit: 5000, window: 3600, strategy: "weighted", weights: { prompt: 1, completion: 4, cached: 0.25 }, stream_margin: 50 },
        { name: "per-instance", key: ["instance"], limit: 90000, window: "1m" },
      ],
      default_max_tokens: 256,
      rejected_status: 429,
    });
    expect(h.getMetric("sluice.ratelimit_admitted_tokens;rule=per-consumer")).toEqual({ type: "counter", value: 0n });
    expect(h.getMetric("sluice.ratelimit_rejected;rule=cost")).toEqual({ type: "counter", value: 0n });
    expect(h.getMetric("sluice.ratelimit_charged_tokens;rule=per-instance")).toEqual({ type: "counter", value: 0n });
  });
});

// -------------------------------------------------------------------------------------------------

describe("ai-ratelimit: admission with reservation", () => {
  it("limits per consumer: reserves the estimate, charges the actual usage, rejects what does not fit", async () => {
    const { h, clock } = await chain({ rules: [{ name: "per-consumer", key: ["consumer"], limit: 1000, window: "1m" }] });
    const body = CHAT("gpt-4o", 300);
    const est = estimate(body, 300);
    const key = "sluice.ai-ratelimit.per-consumer.alice";

    const s1 = send(h, { body });
    expect(s1.getSentLocalResponse()).toBeNull();
    expect(s1.upstream.headers).not.toBeNull(); // reached ai-proxy and the router
    expect(used(h, key, clock)).toBe(est.total); // reserved while in flight
    expect(s1.getFilterState("sluice.ratelimit_prompt_estimate")).toBe(String(est.prompt));
    answer(s1, { prompt: 20, completion: 100 });
    expect(used(h, key, clock)).toBe(120); // the actual usage replaced the reservation
    expect(h.getMetric("sluice.ratelimit_admitted_tokens;rule=per-consumer")!.value).toBe(BigInt(est.total));
    expect(h.getMetric("sluice.ratelimit_charged_tokens;rule=per-consumer")!.value).toBe(120n);

    // Two more in flight: 120 + 2 * est fits in 1000 only if est <= 440.
    const s2 = send(h, { body });
    const s3 = send(h, { body });
    expect(s2.getSentLocalResponse()).toBeNull();
    expect(s3.getSentLocalResponse()).toBeNull();
    expect(used(h, key, clock)).toBe(120 + 2 * est.total);
    // A third would overshoot: the reservations in flight count, not only finished requests.
    const s4 = send(h, { body });
    const r = rejection(s4)!;
    expect(r.status).toBe(429);
    expect(r.details).toBe("sluice_ai_ratelimit_rejected");
    expect(r.body.error).toMatchObject({ type: "tokens", code: "rate_limit_exceeded", param: null });
    expect(r.body.error.message).toMatch(/Rate limit reached for rule 'per-consumer' on tokens per 1m: Limit 1000, Used \d+, Requested \d+/);
    expect(header(r.headers, "content-type")).toBe("application/json");
    expect(header(r.headers, "retry-after")).toBe("60");
    expect(header(r.headers, "x-ratelimit-limit-tokens")).toBe("1000");
    expect(header(r.headers, "x-ratelimit-remaining-tokens")).toBe(String(1000 - 120 - 2 * est.total));
    expect(header(r.headers, "x-ratelimit-reset-tokens")).toBe("1m0s");
    expect(s4.upstream.headers).toBeNull(); // nothing reached the provider
    expect(s4.getFilterState("sluice.ratelimit_rule")).toBe("per-consumer");
    expect(h.getMetric("sluice.ratelimit_rejected;rule=per-consumer")!.value).toBe(1n);
    s4.completeHttpContext();
    expect(used(h, key, clock)).toBe(120 + 2 * est.total); // a rejected request leaves nothing behind

    // Another consumer has its own counter.
    const b1 = send(h, { consumer: "bob", body });
    expect(b1.getSentLocalResponse()).toBeNull();
    answer(b1, { prompt: 10, completion: 10 });
    expect(used(h, "sluice.ai-ratelimit.per-consumer.bob", clock)).toBe(20);

    answer(s2, { prompt: 10, completion: 5 });
    answer(s3, { prompt: 10, completion: 5 });
    expect(used(h, key, clock)).toBe(150);
    // 30 seconds later the window still holds 150; a minute after its start it is empty.
    clock.advance(30n * SEC);
    const s5 = send(h, { body });
    expect(s5.getSentLocalResponse()).toBeNull();
    answer(s5, { prompt: 1, completion: 1 });
    expect(used(h, key, clock)).toBe(152);
    clock.advance(30n * SEC);
    expect(used(h, key, clock)).toBe(0);
    expectNoTraps(h);
  });

  it("limits per model, and `when` restricts a rule to some models", async () => {
    const { h, clock } = await chain({
      rules: [
        { name: "per-model", key: ["model"], limit: 400, window: "1m" },
        { name: "gpt4-consumer", key: ["consumer"], when: { model: ["gpt-4*"] }, limit: 250, window: "1m" },
      ],
    });
    const big = CHAT("gpt-4o", 150);
    const est = estimate(big, 150).total;
    const s1 = send(h, { body: big });
    expect(s1.getSentLocalResponse()).toBeNull();
    expect(used(h, "sluice.ai-ratelimit.per-model.gpt-4o", clock)).toBe(est);
    expect(used(h, "sluice.ai-ratelimit.gpt4-consumer.alice", clock)).toBe(est);
    // The gpt-4 consumer rule is full for alice, the model rule is not: all rules must admit.
    const s2 = send(h, { body: big });
    expect(rejection(s2)!.status).toBe(429);
    expect(s2.getFilterState("sluice.ratelimit_rule")).toBe("gpt4-consumer");
    // Rolled back: the model counter did not keep s2's reservation.
    expect(used(h, "sluice.ai-ratelimit.per-model.gpt-4o", clock)).toBe(est);
    // Another model: not under the gpt-4 rule, and its own model counter.
    const m = CHAT("mini-1", 150);
    const s3 = send(h, { body: m });
    expect(s3.getSentLocalResponse()).toBeNull();
    expect(used(h, "sluice.ai-ratelimit.per-model.mini-1", clock)).toBe(estimate(m, 150).total);
    expect(h.getSharedData("sluice.ai-ratelimit.gpt4-consumer.alice")).toBeDefined();
    // bob may use gpt-4o until the model counter (shared by everyone) is full.
    const b = send(h, { consumer: "bob", body: big });
    expect(b.getSentLocalResponse()).toBeNull();
    const b2 = send(h, { consumer: "carol", body: big });
    expect(rejection(b2)!.status).toBe(429);
    expect(b2.getFilterState("sluice.ratelimit_rule")).toBe("per-model");
    for (const s of [s1, s3, b]) answer(s, { prompt: 5, completion: 5 });
    expect(used(h, "sluice.ai-ratelimit.per-model.gpt-4o", clock)).toBe(20);
    expectNoTraps(h);
  });

  it("applies several rules at once (per minute and per day): all must admit, and the longest wait wins", async () => {
    const { h, clock } = await chain({
      rules: [
        { name: "minute", key: ["consumer"], limit: 300, window: "1m" },
        { name: "day", key: ["consumer"], limit: 500, window: "1d" },
      ],
    });
    const body = CHAT("gpt-4o", 100);
    const est = estimate(body, 100).total;
    expect(est).toBeGreaterThan(50);
    expect(est).toBeLessThan(150);
    const s1 = send(h, { body });
    answer(s1, { prompt: 100, completion: 150 }); // 250 in both windows
    // The minute is full, the day is not: the minute rule rejects, Retry-After is the minute's.
    const s2 = send(h, { body });
    const r2 = rejection(s2)!;
    expect(r2.status).toBe(429);
    expect(s2.getFilterState("sluice.ratelimit_rule")).toBe("minute");
    expect(header(r2.headers, "retry-after")).toBe("60");
    expect(header(r2.headers, "x-ratelimit-remaining-tokens")).toBe("50");

    clock.advance(60n * SEC); // the minute window is empty again, the day is not
    const s3 = send(h, { body });
    expect(s3.getSentLocalResponse()).toBeNull();
    answer(s3, { prompt: 100, completion: 100 }); // minute 200, day 450
    // Both refuse now; the day frees much later, so it is the binding rule.
    const s4 = send(h, { body });
    const r4 = rejection(s4)!;
    expect(s4.getFilterState("sluice.ratelimit_rule")).toBe("day");
    expect(header(r4.headers, "retry-after")).toBe(String(86400 - 60));
    expect(header(r4.headers, "x-ratelimit-reset-tokens")).toBe("23h59m0s");
    expect(header(r4.headers, "x-ratelimit-remaining-tokens")).toBe("50");
    expect(h.getMetric("sluice.ratelimit_rejected;rule=day")!.value).toBe(1n);
    expect(h.getMetric("sluice.ratelimit_rejected;rule=minute")!.value).toBe(1n);

    // A new minute: the minute rule admits and reserves, the day rule refuses: rolled back.
    clock.advance(60n * SEC);
    const s5 = send(h, { body });
    expect(rejection(s5)!.status).toBe(429);
    expect(s5.getFilterState("sluice.ratelimit_rule")).toBe("day");
    expect(used(h, "sluice.ai-ratelimit.minute.alice", clock)).toBe(0);
    expect(used(h, "sluice.ai-ratelimit.day.alice", clock, 86400n)).toBe(450);
    expectNoTraps(h);
  });

  it("charges by strategy: prompt, completion, total and weighted cost (cached tokens at their own weight)", async () => {
    const { h, clock } = await chain({
      rules: [
        { name: "total", limit: 100000, window: "1h" },
        { name: "prompt", limit: 100000, window: "1h", strategy: "prompt_tokens" },
        { name: "completion", limit: 100000, window: "1h", strategy: "completion_tokens" },
        { name: "weighted", limit: 100000, window: "1h", strategy: "weighted", weights: { prompt: 1, completion: 4, cached: 0.1 } },
        { name: "weighted-default-cached", limit: 100000, window: "1h", strategy: "weighted", weights: { prompt: 2, completion: 3 } },
      ],
    });
    const body = CHAT("gpt-4o", 200);
    const est = estimate(body, 200);
    const s = send(h, { body });
    const u = (rule: string) => used(h, `sluice.ai-ratelimit.${rule}.*`, clock, 3600n);
    expect(u("total")).toBe(est.total);
    expect(u("prompt")).toBe(est.prompt);
    expect(u("completion")).toBe(200);
    expect(u("weighted")).toBe(est.prompt + 4 * 200);
    expect(u("weighted-default-cached")).toBe(2 * est.prompt + 3 * 200);
    answer(s, { prompt: 1000, completion: 50, cached: 600 });
    expect(u("total")).toBe(1050);
    expect(u("prompt")).toBe(1000);
    expect(u("completion")).toBe(50);
    // (1000 - 600) * 1 + 50 * 4 + 600 * 0.1 = 660
    expect(u("weighted")).toBe(660);
    // cached defaults to the prompt weight: 1000 * 2 + 50 * 3
    expect(u("weighted-default-cached")).toBe(2150);
    expect(h.getMetric("sluice.ratelimit_charged_tokens;rule=weighted")!.value).toBe(660n);
    expectNoTraps(h);
  });

  it("reserves max_completion_tokens (chat), max_tokens times n, the configured default, and no output for embeddings", async () => {
    const { h, clock } = await chain({ rules: [{ name: "all", limit: 1_000_000, window: "1m" }], default_max_tokens: 77 });
    const key = "sluice.ai-ratelimit.all.*";
    const cases: [string, unknown, number][] = [
      ["/v1/chat/completions", CHAT("gpt-4o", 100, { max_completion_tokens: 40 }), 40],
      ["/v1/chat/completions", CHAT("gpt-4o", 100, { n: 3 }), 300],
      ["/v1/chat/completions", CHAT("gpt-4o"), 77],
      ["/v1/messages", { model: "gpt-4o", max_tokens: 64, max_completion_tokens: 5, messages: [{ role: "user", content: "hi" }] }, 64],
      ["/v1/embeddings", { model: "gpt-embed", input: "some text", max_tokens: 500 }, 0],
    ];
    for (const [path, body, completion] of cases) {
      const before = used(h, key, clock);
      const s = send(h, { path, body });
      expect(s.getSentLocalResponse()).toBeNull();
      expect(used(h, key, clock) - before).toBe(estimate(body, completion).total);
      s.completeHttpContext(); // hung up before any answer: see the stream tests
    }
  });

  it("limits OpenAI Responses requests (/v1/responses): reserves max_output_tokens, settles on the Response's usage, refuses in OpenAI's shape", async () => {
    const { h, clock } = await chain({ rules: [{ name: "r", key: ["consumer"], limit: 500, window: "1m" }], default_max_tokens: 77 });
    const key = "sluice.ai-ratelimit.r.alice";
    const body = {
      model: "gpt-4o", instructions: "Be terse.", max_output_tokens: 40,
      input: [
        { role: "user", content: [{ type: "input_text", text: "Weather in Paris?" }] },
        { type: "function_call", call_id: "call_1", name: "get_weather", arguments: "{\"city\":\"Paris\"}" },
        { type: "function_call_output", call_id: "call_1", output: "18C and sunny" },
        { type: "reasoning", id: "rs_1", summary: [], encrypted_content: "B".repeat(4000) },
      ],
    };
    const s = send(h, { path: "/v1/responses", body });
    expect(s.getSentLocalResponse()).toBeNull();
    // The estimate counts instructions and the items' text (not the encrypted reasoning, not ids).
    expect(Number(s.getFilterState("sluice.ratelimit_prompt_estimate"))).toBe(promptEstimate(body));
    expect(promptEstimate(body)).toBeLessThan(30);
    expect(used(h, key, clock)).toBe(estimate(body, 40).total);
    s.callOnResponseHeaders({ ":status": "200", "content-type": "application/json" }, false);
    s.callOnResponseBody(JSON.stringify({ id: "resp_1", object: "response", status: "completed", model: "gpt-4o", output: [], usage: { input_tokens: 30, input_tokens_details: { cached_tokens: 0 }, output_tokens: 12, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 42 } }), true);
    s.completeHttpContext();
    expect(used(h, key, clock)).toBe(42);
    const big = send(h, { path: "/v1/responses", body: { model: "gpt-4o", input: "hi", max_output_tokens: 1000 } });
    const r = rejection(big)!;
    expect(r.status).toBe(429);
    // OpenAI's error shape, as OpenAI words a token limit (type "tokens").
    expect(r.body.error).toMatchObject({ type: "tokens" });
    expect(typeof r.body.error.message).toBe("string");
    expectNoTraps(h);
  });

  it("adds OpenAI's x-ratelimit headers for the tightest rule; remaining decreases request after request", async () => {
    const { h, clock } = await chain({
      rules: [
        { name: "loose", key: ["consumer"], limit: 100000, window: "1d" },
        { name: "tight", key: ["consumer"], limit: 5000, window: "1m" },
      ],
    });
    const body = CHAT("gpt-4o", 100);
    const est = estimate(body, 100).total;
    const seen: number[] = [];
    for (let i = 0; i < 6; i++) {
      const s = send(h, { body });
      expect(s.getSentLocalResponse()).toBeNull();
      clock.advance(1500n * 1_000_000n); // 1.5 s per request
      answer(s, { prompt: 30, completion: 70 }, { "x-ratelimit-remaining-tokens": "999999", "x-ratelimit-limit-tokens": "2000000" });
      const out = s.downstream.headers!;
      expect(header(out, "x-ratelimit-limit-tokens")).toBe("5000"); // ours replace the provider's
      const remaining = Number(header(out, "x-ratelimit-remaining-tokens"));
      seen.push(remaining);
      // At admission: earlier requests charged 100 each, this one reserved est.
      expect(remaining).toBe(5000 - 100 * i - est);
      const reset = header(out, "x-ratelimit-reset-tokens")!;
      expect(reset).toMatch(/^(\d+m)?\d+(\.\d+)?s$|^\d+ms$/);
      expect(reset).toBe(`${60 - (i + 1) * 1.5}s`); // 58.5s, 57s, ...
    }
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeLessThan(seen[i - 1]);
    expectNoTraps(h);
  });

  it("releases the reservation when the request never reaches a provider or the provider fails", async () => {
    const { h, clock } = await chain({ rules: [{ name: "c", key: ["consumer"], limit: 10000, window: "1m" }] });
    const key = "sluice.ai-ratelimit.c.alice";
    // ai-proxy's local replies: unknown model (404), invalid JSON (400), missing messages (400).
    for (const body of [CHAT("unknown-model", 100), "{not json", { model: "gpt-4o" }]) {
      const s = send(h, { body });
      expect(s.getSentLocalResponse()!.statusCode).toBeGreaterThanOrEqual(400);
      expect(used(h, key, clock)).toBeGreaterThan(0); // reserved at admission
      s.completeHttpContext();
      expect(used(h, key, clock)).toBe(0);
    }
    // The provider answers with an error: ai-proxy records zero usage.
    const s = send(h, { body: CHAT("gpt-4o", 100) });
    s.callOnResponseHeaders({ ":status": "500", "content-type": "application/json" }, false);
    s.callOnResponseBody(JSON.stringify({ error: { message: "boom", type: "server_error" } }), true);
    s.completeHttpContext();
    expect(used(h, key, clock)).toBe(0);
    // Envoy could not connect (router's 503): zero too.
    const t = send(h, { body: CHAT("gpt-4o", 100) });
    t.callOnResponseHeaders({ ":status": "503", "content-type": "text/plain" }, false);
    t.callOnResponseBody("upstream connect error or disconnect/reset before headers", true);
    t.completeHttpContext();
    expect(used(h, key, clock)).toBe(0);
    expect(h.getMetric("sluice.ratelimit_charged_tokens;rule=c")!.value).toBe(0n);
    expectNoTraps(h);
  });

  it("without ai-proxy: a local reply releases, an upstream answer without a usage record keeps the reservation", async () => {
    const { h, clock } = await chain({ rules: [{ name: "c", key: ["consumer"], limit: 10000, window: "1m" }] }, { proxy: false });
    const key = "sluice.ai-ratelimit.c.alice";
    const body = CHAT("gpt-4o", 100);
    const s = send(h, { body });
    s.callOnResponseHeaders({ ":status": "200", "content-type": "application/json" }, false);
    s.callOnResponseBody("{}", true);
    s.completeHttpContext();
    expect(used(h, key, clock)).toBe(estimate(body, 100).total);
    // A client that hangs up before anything went upstream-bound is released.
    const t = h.newStream();
    t.callOnRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw", authorization: "Bearer sk-alice" }, false);
    t.callOnRequestBody('{"model":"gpt-4o",', false);
    t.completeHttpContext();
    expect(used(h, key, clock)).toBe(estimate(body, 100).total);
  });

  it("rejects a request larger than the limit for good (no Retry-After)", async () => {
    const { h } = await chain({ rules: [{ name: "small", limit: 500, window: "1m" }] });
    const s = send(h, { body: CHAT("gpt-4o", 4096) });
    const r = rejection(s)!;
    expect(r.status).toBe(429);
    expect(header(r.headers, "retry-after")).toBeUndefined();
    expect(r.body.error.message).toMatch(/Request too large for rule 'small' on tokens per 1m: Limit 500, Requested \d+/);
    expect(header(r.headers, "x-ratelimit-remaining-tokens")).toBe("500");
    expect(header(r.headers, "x-ratelimit-reset-tokens")).toBe("0s");
  });

  it("answers Anthropic clients in Anthropic's error format, with a configurable status", async () => {
    const { h } = await chain({ rules: [{ name: "small", limit: 100, window: "10s" }], rejected_status: 503 });
    const s = send(h, { path: "/v1/messages", body: { model: "gpt-4o", max_tokens: 1000, messages: [{ role: "user", content: "hi" }] } });
    const r = rejection(s)!;
    expect(r.status).toBe(503);
    expect(r.body).toEqual({ type: "error", error: { type: "rate_limit_error", message: expect.stringMatching(/Request too large for rule 'small' on tokens per 10s/) } });
  });

  it("limits Gemini's own API like any chat: the model from the path, maxOutputTokens reserved, Gemini's error shape", async () => {
    const { h, clock } = await chain({ rules: [{ name: "per-model", limit: 400, window: "1m", key: ["model"] }] });
    const body = {
      systemInstruction: { parts: [{ text: "Be brief." }] },
      contents: [{ role: "user", parts: [{ text: "Hello there", thoughtSignature: "c2lnbmF0dXJl" }, { inlineData: { mimeType: "image/png", data: "aGVsbG8=" } }] }],
      generationConfig: { maxOutputTokens: 150, candidateCount: 2 },
    };
    const s = send(h, { path: "/v1beta/models/gpt-4o:streamGenerateContent?alt=sse", body });
    expect(s.getSentLocalResponse()).toBeNull();
    expect(used(h, "sluice.ai-ratelimit.per-model.gpt-4o", clock)).toBe(estimate(body, 300).total);
    s.completeHttpContext();
    const big = send(h, { path: "/v1beta/models/gpt-4o:generateContent", body: { ...body, generationConfig: { maxOutputTokens: 1000 } } });
    const r = rejection(big)!;
    expect(r.status).toBe(429);
    expect(r.body).toEqual({ error: { code: 429, message: expect.stringMatching(/Request too large for rule 'per-model'/), status: "RESOURCE_EXHAUSTED" } });
    // countTokens generates nothing: not limited.
    const count = send(h, { path: "/v1beta/models/gpt-4o:countTokens", body: { contents: body.contents } });
    expect(count.getSentLocalResponse()?.statusCode).toBe(200);
  });

  it("leaves other paths alone and never holds them", async () => {
    const { h } = await chain({ rules: [{ name: "all", limit: 1, window: "1m" }] }, { proxy: false });
    for (const [method, path] of [["GET", "/v1/models"], ["POST", "/v1/completions"], ["GET", "/v1/chat/completions"], ["POST", "/healthz"]]) {
      const s = h.newStream();
      const a = s.callOnRequestHeaders({ ":method": method, ":path": path, ":authority": "gw", authorization: "Bearer sk-alice" }, method === "GET");
      expect(a).toBe("Continue");
      expect(s.upstream.headers).not.toBeNull();
      if (method === "POST") expect(s.callOnRequestBody("x".repeat(100), true)).toBe("Continue");
      s.callOnResponseHeaders({ ":status": "200" }, true);
      expect(header(s.downstream.headers, "x-ratelimit-limit-tokens")).toBeUndefined();
      s.completeHttpContext();
    }
    expect(h.getSharedData("sluice.ai-ratelimit.all.*")).toBeUndefined();
  });

  it("keys by path, request header and pool; a rule whose key part is missing does not apply", async () => {
    const { h, clock } = await chain({
      rules: [
        { name: "team", key: ["header:X-Team", "path"], limit: 1000, window: "1m" },
        { name: "pool", key: ["pool"], limit: 1000, window: "1m" },
      ],
    }, { proxy: false });
    const s = h.newStream();
    s.callOnRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions?x=1", ":authority": "gw", authorization: "Bearer sk-alice", "x-team": "red.team" }, false);
    // ai-router (filter 2) would have chosen the pool by now.
    s.filterState.set("wasm.sluice.pool", Buffer.from("fast"));
    s.callOnRequestBody(JSON.stringify(CHAT("gpt-4o", 10)), true);
    const est = estimate(CHAT("gpt-4o", 10), 10).total;
    // Dots in values are escaped so ("red.team", path) can never collide with ("red", "team...").
    expect(used(h, "sluice.ai-ratelimit.team.red%2Eteam./v1/chat/completions", clock)).toBe(est);
    expect(used(h, "sluice.ai-ratelimit.pool.fast", clock)).toBe(est);
    // No x-team header and no pool: neither rule applies; the request passes.
    const t = send(h, { body: CHAT("gpt-4o", 10) });
    expect(t.getSentLocalResponse()).toBeNull();
    expect(t.upstream.headers).not.toBeNull();
  });

  it("admits a body that ends with trailers at the trailers", async () => {
    const { h, clock } = await chain({ rules: [{ name: "c", key: ["consumer"], limit: 100000, window: "1m" }] }, { proxy: false });
    const s = h.newStream();
    s.callOnRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw", authorization: "Bearer sk-alice" }, false);
    expect(s.callOnRequestBody(JSON.stringify(CHAT("gpt-4o", 100)), false)).toBe("Pause");
    expect(used(h, "sluice.ai-ratelimit.c.alice", clock)).toBe(0);
    expect(s.callOnRequestTrailers({ "x-trailer": "1" })).toBe("Continue");
    expect(s.upstream.headers).not.toBeNull();
    expect(used(h, "sluice.ai-ratelimit.c.alice", clock)).toBeGreaterThanOrEqual(100);
    expectNoTraps(h);
  });

  it("caps the number of keys per rule (max_keys): further values share one overflow counter", async () => {
    const { h, clock } = await chain({ rules: [{ name: "hdr", key: ["header:x-user"], limit: 100000, window: "1m", max_keys: 2 }] }, { proxy: false });
    for (const u of ["u1", "u2", "u3", "u4"]) send(h, { headers: { "x-user": u }, body: CHAT("gpt-4o", 10) });
    const est = estimate(CHAT("gpt-4o", 10), 10).total;
    expect(used(h, "sluice.ai-ratelimit.hdr.u1", clock)).toBe(est);
    expect(used(h, "sluice.ai-ratelimit.hdr.u2", clock)).toBe(est);
    expect(h.getSharedData("sluice.ai-ratelimit.hdr.u3")).toBeUndefined();
    expect(used(h, "sluice.ai-ratelimit.hdr.~other", clock)).toBe(2 * est);
    expect(h.getLogs("warn").some((l) => l.includes("rule 'hdr' reached max_keys (2)"))).toBe(true);
  });
});

// -------------------------------------------------------------------------------------------------

describe("ai-ratelimit: prompt estimate", () => {
  const estimateOf = async (body: unknown) => {
    const { h } = await chain({ rules: [{ name: "r", key: ["consumer"], limit: 1_000_000, window: "1m" }] }, { proxy: false });
    return Number(send(h, { body }).getFilterState("sluice.ratelimit_prompt_estimate"));
  };
  const messages = [
    { role: "system", content: "You are terse." },
    { role: "user", content: [{ type: "text", text: "Summarise the plot of Hamlet in one line." }] },
  ];

  it("counts the text the model reads, not the JSON syntax: stream and stream_options do not change it", async () => {
    const plain = await estimateOf({ model: "gpt-4o", messages });
    const streamed = await estimateOf({ model: "gpt-4o", stream: true, messages });
    const withUsage = await estimateOf({ model: "gpt-4o", stream: true, stream_options: { include_usage: true }, messages, temperature: 0.2 });
    // Spaces and newlines between the members are syntax too.
    const pretty = await estimateOf(JSON.stringify({ model: "gpt-4o", messages }, null, 8));
    // 14 + 41 text bytes -> 14 tokens, 2 messages * 3, 3 for the request.
    expect(plain).toBe(23);
    expect([streamed, withUsage, pretty]).toEqual([plain, plain, plain]);
  });

  it("counts tool calls, tool results and tool definitions, in either client format", async () => {
    const tools = [{ type: "function", function: { name: "get_weather", description: "Weather for a city", parameters: { type: "object", properties: { city: { type: "string" } } } } }];
    const openai = {
      model: "gpt-4o", tools,
      messages: [
        { role: "user", content: "Weather in Paris?" },
        { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Paris\"}" } }] },
        { role: "tool", tool_call_id: "call_1", content: "18C and sunny" },
      ],
    };
    expect(await estimateOf(openai)).toBe(promptEstimate(openai));
    const anthropic = {
      model: "claude-x", max_tokens: 100, system: [{ type: "text", text: "Be brief.", cache_control: { type: "ephemeral" } }],
      tools: [{ name: "get_weather", description: "Weather for a city", input_schema: { type: "object", properties: { city: { type: "string" } } } }],
      messages: [
        { role: "user", content: "Weather in Paris?" },
        { role: "assistant", content: [{ type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } }] },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "18C and sunny" }] },
      ],
    };
    expect(await estimateOf(anthropic)).toBe(promptEstimate(anthropic));
    // A base64 image is not text: its bytes are not counted as prompt text.
    const image = { model: "gpt-4o", messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png;base64," + "A".repeat(40_000) } }] }] };
    expect(await estimateOf(image)).toBe(3 + 3);
    // Embeddings: the input text, no chat wrapping.
    expect(await estimateOf({ model: "text-embedding-3-small", input: ["first text", "second ✓"] })).toBe(5);
  });

  it("counts embeddings' token ids one token each, in one list or in lists of lists (they counted 0)", async () => {
    const ids = Array.from({ length: 3000 }, (_, i) => (i * 7919) % 100000);
    expect(await estimateOf({ model: "text-embedding-3-small", input: ids })).toBe(3000);
    expect(await estimateOf({ model: "text-embedding-3-small", input: [ids.slice(0, 1000), ids.slice(1000, 1500), [42]] })).toBe(1501);
    // Spaces between the ids are syntax; an empty list has no ids.
    expect(await estimateOf(`{"model":"text-embedding-3-small","input":[ [ 1 , 2 ,3 ] , [] ,[4]] }`)).toBe(4);
    expect(await estimateOf({ model: "text-embedding-3-small", input: [] })).toBe(0);
  });
});

describe("ai-ratelimit: windows", () => {
  it("fixed: Retry-After counts down to the end of the window, then the request fits", async () => {
    const { h, clock } = await chain({ rules: [{ name: "m", limit: 1000, window: "1m" }] });
    clock.advance(10n * SEC);
    const s = send(h, { body: CHAT("gpt-4o", 100) });
    answer(s, { prompt: 500, completion: 400 });
    clock.advance(15n * SEC + 300_000_000n);
    const r = rejection(send(h, { body: CHAT("gpt-4o", 100) }))!;
    expect(header(r.headers, "retry-after")).toBe("35"); // 34.7 s rounded up
    expect(header(r.headers, "x-ratelimit-reset-tokens")).toBe("34.7s");
    clock.advance(34_700_000_000n);
    expect(send(h, { body: CHAT("gpt-4o", 100) }).getSentLocalResponse()).toBeNull();
  });

  it("sliding (two buckets): the previous window counts in proportion to its overlap", async () => {
    const { h, clock } = await chain({ rules: [{ name: "s", limit: 1000, window: "1m", window_type: "sliding", sub_buckets: 1 }] });
    const s = send(h, { body: CHAT("gpt-4o", 100) });
    answer(s, { prompt: 500, completion: 300 }); // 800 in bucket 0
    expect(ring(h, "sluice.ai-ratelimit.s.*").get(T0 / (60n * SEC))).toBe(800n);
    clock.advance(75n * SEC); // 25% into bucket 1: 800 * 0.75 = 600 still count
    const small = CHAT("gpt-4o", 10);
    const p = send(h, { body: small });
    answer(p, { prompt: 0, completion: 0 });
    expect(Number(header(p.downstream.headers, "x-ratelimit-remaining-tokens"))).toBe(1000 - 600 - estimate(small, 10).total);
    // A request of 450 does not fit under 1000 - 600; it fits once 800 * (1 - x/60) <= 550,
    // x = 18.75 s into bucket 1: 3.75 s from now.
    const m = 450 - estimate(CHAT("gpt-4o", 100), 0).prompt;
    const big = CHAT("gpt-4o", m);
    expect(estimate(big, m).total).toBe(450);
    const r = rejection(send(h, { body: big }))!;
    expect(header(r.headers, "retry-after")).toBe("4");
    expect(r.body.error.message).toMatch(/Please try again in 3\.75s\./);
    expect(header(r.headers, "x-ratelimit-reset-tokens")).toBe("45s"); // bucket 0 has fully left at 120 s
    clock.advance(3_700_000_000n);
    expect(rejection(send(h, { body: big }))).not.toBeNull();
    clock.advance(100_000_000n);
    expect(send(h, { body: big }).getSentLocalResponse()).toBeNull();
    expectNoTraps(h);
  });

  it("sliding (ring of sub-buckets): usage leaves the window sub-bucket by sub-bucket", async () => {
    const { h, clock } = await chain({ rules: [{ name: "s", limit: 10000, window: "1m", window_type: "sliding", sub_buckets: 6 }] });
    // 100 tokens charged in each 10 s sub-bucket for a minute: 600 in the window.
    for (let i = 0; i < 6; i++) {
      const s = send(h, { body: CHAT("gpt-4o", 10) });
      answer(s, { prompt: 50, completion: 50 });
      clock.advance(10n * SEC);
    }
    // Now at the start of sub-bucket 6: the oldest (0) still counts in full (weight 1).
    const key = "sluice.ai-ratelimit.s.*";
    expect([...ring(h, key).values()].reduce((a, b) => a + b, 0n)).toBe(600n);
    const probe = () => {
      const s = send(h, { body: CHAT("gpt-4o", 10) });
      const remaining = Number(header((answer(s, { prompt: 0, completion: 0 }), s.downstream.headers), "x-ratelimit-remaining-tokens"));
      return 10000 - remaining - estimate(CHAT("gpt-4o", 10), 10).total;
    };
    expect(probe()).toBe(600);
    clock.advance(5n * SEC); // half of sub-bucket 0 has left the window
    expect(probe()).toBe(550);
    clock.advance(5n * SEC); // all of it
    expect(probe()).toBe(500);
    clock.advance(60n * SEC);
    expect(probe()).toBe(0);
    // The ring has 7 slots, whatever the time: shared data does not grow.
    expect(h.getSharedData(key)!.value.length).toBe(7 * 16);
  });

  it("settles a request in the bucket that admitted it; one that outlives its window charges its excess to the current one", async () => {
    const { h, clock } = await chain({ rules: [{ name: "m", limit: 100000, window: "1m" }] });
    const key = "sluice.ai-ratelimit.m.*";
    const body = CHAT("gpt-4o", 100);
    const est = estimate(body, 100).total;
    const a = send(h, { body });
    const b = send(h, { body });
    clock.advance(59n * SEC);
    answer(a, { prompt: 10, completion: 10 }); // same window: replaced in place
    expect(used(h, key, clock)).toBe(est + 20);
    clock.advance(2n * SEC);
    answer(b, { prompt: 100, completion: est }); // next window: only what exceeded the reservation
    expect(used(h, key, clock)).toBe(100);
  });
});

// -------------------------------------------------------------------------------------------------

describe("ai-ratelimit: streams", () => {
  const sseChunk = (content: string) =>
    `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "gpt-4o", choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;

  it("charges a stream the client cut mid-way with ai-proxy's estimate, settled in on_done", async () => {
    const { h, clock } = await chain({ rules: [{ name: "c", key: ["consumer"], limit: 100000, window: "1m" }] });
    const key = "sluice.ai-ratelimit.c.alice";
    const body = CHAT("gpt-4o", 500, { stream: true });
    const est = estimate(body, 500).total;
    const s = send(h, { body });
    s.callOnResponseHeaders({ ":status": "200", "content-type": "text/event-stream" }, false);
    s.callOnResponseBody(sseChunk("The answer is forty-two, and here is why it matters so much."), false);
    // Envoy's order at stream end: on_log of every filter in chain order, then on_done per filter.
    // When ai-ratelimit's on_log runs, ai-proxy (after it in the chain) has not written the
    // hang-up estimate yet: there is no usage record to charge.
    const rl = s.slots.find((x) => x.plugin?.name === "ai-ratelimit")!;
    const log = rl.ctx.log.bind(rl.ctx);
    let recordAtOwnLog: string | undefined = "unset";
    rl.ctx.log = (...a: Parameters<typeof log>) => {
      recordAtOwnLog = s.getFilterState("sluice.total_tokens");
      log(...a);
    };
    s.completeHttpContext(); // the client went away: no end of stream
    expect(recordAtOwnLog).toBeUndefined();
    expect(used(h, key, clock)).toBeGreaterThan(0); // never free
    // ai-proxy wrote its estimate in its on_log; ai-ratelimit settled in on_done with it.
    expect(s.getFilterState("sluice.usage_source")).toBe("estimate");
    const proxyEstimate = Number(s.getFilterState("sluice.total_tokens"));
    expect(proxyEstimate).toBeGreaterThan(0);
    expect(proxyEstimate).toBeLessThan(est);
    expect(used(h, key, clock)).toBe(proxyEstimate);
    expect(h.getMetric("sluice.ratelimit_charged_tokens;rule=c")!.value).toBe(BigInt(proxyEstimate));
  });

  it("keeps the reservation as the charge when no usage record exists even at on_done", async () => {
    const { h, clock } = await chain({ rules: [{ name: "c", key: ["consumer"], limit: 100000, window: "1m" }] });
    const body = CHAT("gpt-4o", 500, { stream: true });
    const s = send(h, { body });
    s.callOnResponseHeaders({ ":status": "200", "content-type": "text/event-stream" }, false);
    s.callOnResponseBody(sseChunk("Partial answer"), false);
    // A usage-record writer that only publishes in its on_done (as ai-proxy did before it wrote
    // at on_log): too late for this filter, whose on_done runs first.
    const proxy = s.slots.find((x) => x.plugin?.name === "ai-proxy")!;
    proxy.ctx.log = () => {};
    s.completeHttpContext();
    expect(s.getFilterState("sluice.usage_source")).toBe("estimate"); // written, but after us
    expect(used(h, "sluice.ai-ratelimit.c.alice", clock)).toBe(estimate(body, 500).total); // the upper bound
  });

  it("charges a complete stream with the provider's usage", async () => {
    const { h, clock } = await chain({ rules: [{ name: "c", key: ["consumer"], limit: 100000, window: "1m" }] });
    const s = send(h, { body: CHAT("gpt-4o", 500, { stream: true }) });
    s.callOnResponseHeaders({ ":status": "200", "content-type": "text/event-stream" }, false);
    s.callOnResponseBody(sseChunk("Hi"), false);
    s.callOnResponseBody(`data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "gpt-4o", choices: [], usage: { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 } })}\n\ndata: [DONE]\n\n`, true);
    s.completeHttpContext();
    expect(used(h, "sluice.ai-ratelimit.c.alice", clock)).toBe(11);
  });

  it("writes sluice.stream_budget for the tightest completion-counting rule with stream_margin", async () => {
    const { h } = await chain({
      rules: [
        { name: "total", key: ["consumer"], limit: 5000, window: "1m", stream_margin: 20 },
        { name: "weighted", key: ["consumer"], limit: 9000, window: "1m", strategy: "weighted", weights: { prompt: 1, completion: 3 }, stream_margin: 10 },
        { name: "prompt", key: ["consumer"], limit: 1000, window: "1m", strategy: "prompt_tokens" },
      ],
    });
    const body = CHAT("gpt-4o", 100, { stream: true });
    const est = estimate(body, 100);
    const s = send(h, { body });
    // total: own 100 + (5000 - est.total) left + 20 = 5020 - est.prompt
    const total = 100 + (5000 - est.total) + 20;
    // weighted: left = 9000 - (est.prompt + 300); 100 + floor(left / 3) + 10
    const weighted = 100 + Math.floor((9000 - (est.prompt + 300)) / 3) + 10;
    expect(s.getFilterState("sluice.stream_budget")).toBe(String(Math.min(total, weighted)));
    // No rule with stream_margin: no budget.
    const { h: h2 } = await chain({ rules: [{ name: "t", limit: 5000, window: "1m" }] });
    expect(send(h2, { body }).getFilterState("sluice.stream_budget")).toBeUndefined();
  });
});

// -------------------------------------------------------------------------------------------------

describe("ai-ratelimit: instance rules (charged at on_log)", () => {
  it("charges the instance ai-proxy picked with the actual usage; never rejects at admission", async () => {
    const { h, clock } = await chain({
      rules: [
        { name: "inst", key: ["instance"], limit: 10, window: "1m" },
        { name: "inst-model", key: ["instance", "model"], when: { instance: "mini" }, limit: 10, window: "1m" },
      ],
    });
    for (const model of ["gpt-4o", "gpt-4o", "mini-1"]) {
      const s = send(h, { body: CHAT(model, 100) });
      expect(s.getSentLocalResponse()).toBeNull(); // 10 tokens of limit, yet admitted: metering only
      expect(header(s.downstream.headers, "x-ratelimit-limit-tokens")).toBeUndefined();
      answer(s, { prompt: 7, completion: 5 });
    }
    expect(used(h, "sluice.ai-ratelimit.inst.oa", clock)).toBe(24);
    expect(used(h, "sluice.ai-ratelimit.inst.mini", clock)).toBe(12);
    expect(used(h, "sluice.ai-ratelimit.inst-model.mini.mini-1", clock)).toBe(12);
    expect(h.getSharedData("sluice.ai-ratelimit.inst-model.oa.gpt-4o")).toBeUndefined();
    expect(h.getMetric("sluice.ratelimit_charged_tokens;rule=inst")!.value).toBe(36n);
  });
});

// -------------------------------------------------------------------------------------------------

describe("ai-ratelimit: hostile input", () => {
  it("reads the model the way ai-proxy does: escaped member names, the last of repeated members", async () => {
    const { h, clock } = await chain({ rules: [{ name: "m", key: ["model"], limit: 100000, window: "1m" }] }, { proxy: false });
    send(h, { body: '{"mod\\u0065l":"gpt-4o","messages":[]}' });
    expect(h.getSharedData("sluice.ai-ratelimit.m.gpt-4o")).toBeDefined();
    send(h, { body: '{"model":"cheap","messages":[{"model":"nested"}],"model":"gpt-x"}' });
    expect(h.getSharedData("sluice.ai-ratelimit.m.gpt-x")).toBeDefined();
    expect(h.getSharedData("sluice.ai-ratelimit.m.cheap")).toBeUndefined();
    expect(h.getSharedData("sluice.ai-ratelimit.m.nested")).toBeUndefined();
    void clock;
  });

  it("never traps on malformed bodies, huge numbers or odd values", async () => {
    const { h } = await chain({
      rules: [
        { name: "m", key: ["model", "header:x-u"], limit: 1_000_000_000_000_000, window: "1m", strategy: "weighted", weights: { prompt: 1000000, completion: 1000000 } },
        { name: "c", key: ["consumer"], limit: 1000, window: "1m", window_type: "sliding", sub_buckets: 60 },
      ],
    }, { proxy: false });
    const bodies = [
      "", "null", "[]", "{", "}", '{"model":', '{"model":"a', '{"model":"a"', '{"model":1e999,"max_tokens":1e999}',
      '{"model":"m","max_tokens":-5,"n":1e30}', '{"model":"m","max_tokens":"100"}', '{"model":"\\ud800","n":-1}',
      '{"model":"' + "x".repeat(5000) + '"}', "[".repeat(10000), '{"a":' + "[".repeat(5000) + "]".repeat(5000) + ',"model":"deep"}',
      '{"model":"m\\u0000.x","max_completion_tokens":99999999999999999999}', Buffer.from([0xff, 0xfe, 0x7b, 0x22, 0x00]).toString("latin1"),
      '{"model":"m" "max_tokens":5}', '{"\\":1}',
    ];
    for (const body of bodies) {
      const s = send(h, { body, headers: { "x-u": "\u00e9.%~*#" } });
      const r = s.getSentLocalResponse();
      if (r) expect(r.statusCode).toBe(429);
      s.completeHttpContext();
    }
    // Bodyless AI request.
    const s = h.newStream();
    s.callOnRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw", authorization: "Bearer sk-bob" }, true);
    s.completeHttpContext();
    // Garbage in the usage record.
    const t = send(h, { body: CHAT("gpt-4o", 10) });
    for (const [k, v] of [["total_tokens", "-1"], ["prompt_tokens", "1e9"], ["completion_tokens", "x"], ["cached_tokens", "99999999999999999999"]]) {
      t.filterState.set(`wasm.sluice.${k}`, Buffer.from(v));
    }
    t.completeHttpContext();
    expectNoTraps(h);
    expect(h.getLogs("critical")).toEqual([]);
  });
});

// -------------------------------------------------------------------------------------------------

/** Deterministic PRNG (mulberry32). */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("ai-ratelimit: request body cap (max_body_bytes)", () => {
  const CAP = 64 * 1024;
  const RULES = { rules: [{ name: "c", key: ["consumer"], limit: 100_000_000, window: "1m" }], max_body_bytes: CAP };

  function start(h: Host, path = "/v1/chat/completions", extra: Record<string, string> = {}) {
    const s = h.newStream();
    const a = s.callOnRequestHeaders({
      ":method": "POST", ":path": path, ":authority": "gw", "content-type": "application/json", authorization: "Bearer sk-alice", ...extra,
    }, false);
    return { s, a };
  }

  it("answers 413 at the headers when content-length is over the cap, in OpenAI's and Anthropic's shape", async () => {
    const { h, clock } = await chain(RULES, { proxy: false });
    const { s, a } = start(h, "/v1/chat/completions", { "content-length": String(CAP + 1) });
    expect(a).toBe("Pause");
    const r = rejection(s)!;
    expect(r.status).toBe(413);
    expect(r.details).toBe("sluice_ai_ratelimit_request_too_large");
    expect(header(r.headers, "content-type")).toBe("application/json");
    expect(r.body).toEqual({ error: { message: `The request body is larger than ${CAP} bytes.`, type: "invalid_request_error", param: null, code: "request_too_large" } });
    expect(s.upstream.headers).toBeNull();

    const m = start(h, "/v1/messages", { "content-length": String(CAP * 10) }).s;
    expect(rejection(m)!.status).toBe(413);
    expect(rejection(m)!.body).toEqual({ type: "error", error: { type: "request_too_large", message: `The request body is larger than ${CAP} bytes.` } });
    s.completeHttpContext();
    m.completeHttpContext();
    expect(used(h, "sluice.ai-ratelimit.c.alice", clock)).toBe(0); // nothing reserved, nothing charged
  });

  it("answers 413 as soon as the chunks pass the cap (no content-length); a body 10x over it leaves linear memory where it was", async () => {
    const { h, clock } = await chain(RULES, { proxy: false });
    // Warm up with one admitted request, so the pages counted are those of a working filter.
    send(h, { body: CHAT("gpt-4o", 10) }).completeHttpContext();
    const before = h.memoryPages("ai-ratelimit");
    const { s } = start(h);
    const chunk = Buffer.alloc(4096, 0x20);
    let chunks = 0;
    let refusedAt = -1;
    for (; chunks < (10 * CAP) / chunk.length; chunks++) {
      s.callOnRequestBody(chunk, false);
      if (refusedAt < 0 && s.getSentLocalResponse()) refusedAt = chunks + 1;
    }
    s.callOnRequestBody(Buffer.alloc(0), true);
    // Refused with the chunk that crossed the cap, not at the end of the body.
    expect(refusedAt).toBe(CAP / chunk.length + 1);
    expect(rejection(s)!.status).toBe(413);
    expect(rejection(s)!.body.error.code).toBe("request_too_large");
    expect(s.upstream.headers).toBeNull();
    s.completeHttpContext();
    expect(h.memoryPages("ai-ratelimit")).toBe(before);
    expect(used(h, "sluice.ai-ratelimit.c.alice", clock)).toBe(0);
    expectNoTraps(h);
  });

  it("admits a body of exactly max_body_bytes, and defaults to 10 MiB", async () => {
    const { h } = await chain(RULES, { proxy: false });
    const text = JSON.stringify(CHAT("gpt-4o", 10));
    const body = text.slice(0, -1) + " ".repeat(CAP - Buffer.byteLength(text)) + "}";
    expect(Buffer.byteLength(body)).toBe(CAP);
    const { s } = start(h, "/v1/chat/completions", { "content-length": String(CAP) });
    s.callOnRequestBody(body.slice(0, 1000), false);
    s.callOnRequestBody(body.slice(1000), true);
    expect(s.getSentLocalResponse()).toBeNull();
    expect(s.upstream.headers).not.toBeNull();

    const d = (await chain({ rules: RULES.rules }, { proxy: false })).h;
    const ok = start(d, "/v1/chat/completions", { "content-length": String(10 * 1024 * 1024) }).s;
    expect(ok.getSentLocalResponse()).toBeNull();
    const big = start(d, "/v1/chat/completions", { "content-length": String(10 * 1024 * 1024 + 1) }).s;
    expect(rejection(big)!.status).toBe(413);
  });
});

describe("ai-ratelimit: concurrency", () => {
  it("4 workers, 2,000 interleaved requests, CAS conflicts injected: counters exact, windows never over the limit", async () => {
    const random = rng(20250125);
    const clock = new Clock();
    const WORKERS = 4;
    const L_CONSUMER = 12000; // per consumer, fixed 1-minute window
    const L_MODEL = 15000; // per model, sliding minute in 4 sub-buckets
    const W = 60n * SEC;
    const SUB = 4n;
    const WIDTH = W / SUB;
    const { h } = await chain({
      rules: [
        { name: "consumer", key: ["consumer"], limit: L_CONSUMER, window: "1m" },
        { name: "model", key: ["model"], limit: L_MODEL, window: "1m", window_type: "sliding", sub_buckets: Number(SUB) },
      ],
    }, { workers: WORKERS, clock });

    // The model of the counters: rule key -> bucket -> count, updated exactly as documented.
    const model = new Map<string, Map<bigint, number>>();
    const bucketsOf = (k: string) => model.get(k) ?? (model.set(k, new Map()), model.get(k)!);
    const add = (k: string, b: bigint, x: number) => bucketsOf(k).set(b, Math.max(0, (bucketsOf(k).get(b) ?? 0) + x));
    const isConsumer = (k: string) => k.startsWith("sluice.ai-ratelimit.consumer.");
    const modelUsed = (k: string, now: bigint) => {
      const m = bucketsOf(k);
      if (isConsumer(k)) return m.get(now / W) ?? 0;
      const width = WIDTH;
      const c = now / width;
      let full = 0;
      for (let j = 0n; j < SUB; j++) full += m.get(c - j) ?? 0;
      const old = m.get(c - SUB) ?? 0;
      if (old === 0) return full;
      const e = now - c * width;
      return full + old * (Number(width - e) / Number(width));
    };

    // Another worker's update landing between a filter's read and its CAS write: at the first read
    // of a planned key, a few tokens are added to its current bucket behind the filter's back (and
    // to the model). A filter that wrote without CAS would erase them; one that did not retry would
    // lose its own update. Either way the final counters would differ from the model.
    const store = h.sharedData;
    const get = store.get.bind(store);
    const plan = new Map<string, number>();
    let injected = 0;
    store.get = (vmId: string, key: string) => {
      const v = get(vmId, key);
      const d = plan.get(key);
      if (d === undefined || !v) return v;
      plan.delete(key);
      const width = isConsumer(key) ? W : WIDTH;
      const slots = isConsumer(key) ? 1n : SUB + 1n;
      const c = clock.now / width;
      const buf = Buffer.from(v.value);
      const off = Number(c % slots) * 16;
      const idx = buf.readBigInt64LE(off);
      if (idx > c) return v;
      buf.writeBigInt64LE(c, off);
      buf.writeBigInt64LE((idx === c ? buf.readBigInt64LE(off + 8) : 0n) + BigInt(d), off + 8);
      store.set(vmId, key, buf, 0);
      add(key, c, d);
      injected++;
      return v; // the filter holds the old value and the old CAS
    };
    /** Plans interference on these keys; returns what will land on keys that exist (admission sees it). */
    const planFor = (keys: string[]) => {
      plan.clear();
      const planned = new Map<string, number>();
      for (const k of keys) {
        if (random() < 0.35) {
          const d = 1 + Math.floor(random() * 20);
          plan.set(k, d);
          if (get("", k)) planned.set(k, d);
        }
      }
      return planned;
    };

    interface Open {
      s: Stream;
      consumer: string;
      modelName: string;
      cost: number;
      prompt: number;
      maxTokens: number;
      at: bigint;
    }
    const open: Open[] = [];
    const admitted: { consumer: string; modelName: string; at: bigint; charged: number }[] = [];
    let charged = 0;
    let rejected = 0;
    let maxCost = 0;

    const complete = (i: number) => {
      const o = open.splice(i, 1)[0];
      const p = Math.max(1, Math.floor(o.prompt * (0.5 + random() / 2)));
      const c = Math.floor(random() * (o.maxTokens + 1));
      planFor([`sluice.ai-ratelimit.consumer.${o.consumer}`, `sluice.ai-ratelimit.model.${o.modelName}`]);
      answer(o.s, { prompt: p, completion: c });
      plan.clear();
      const actual = p + c;
      charged += actual;
      admitted.push({ consumer: o.consumer, modelName: o.modelName, at: o.at, charged: actual });
      const now = clock.now;
      for (const [k, kind] of [[`sluice.ai-ratelimit.consumer.${o.consumer}`, "consumer"], [`sluice.ai-ratelimit.model.${o.modelName}`, "model"]] as const) {
        const width = kind === "consumer" ? W : WIDTH;
        const b = o.at / width;
        const c0 = now / width;
        const counts = kind === "consumer" ? b === c0 : b >= c0 - SUB && b <= c0;
        if (counts) add(k, b, actual - o.cost);
        else if (actual > o.cost) add(k, c0, actual - o.cost);
      }
    };

    let sent = 0;
    while (sent < 2000 || open.length) {
      clock.advance(BigInt(Math.floor(random() * 150)) * 1_000_000n);
      if (sent < 2000 && (open.length === 0 || random() < 0.55)) {
        const consumer = CONSUMERS[Math.floor(random() * CONSUMERS.length)];
        const modelName = ["gpt-a", "gpt-b", "gpt-c"][Math.floor(random() * 3)];
        const maxTokens = 50 + Math.floor(random() * 400);
        const body = { model: modelName, messages: [{ role: "user", content: "x".repeat(Math.floor(random() * 600)) }], max_tokens: maxTokens };
        const est = estimate(body, maxTokens);
        maxCost = Math.max(maxCost, est.total);
        const now = clock.now;
        const ck = `sluice.ai-ratelimit.consumer.${consumer}`;
        const mk = `sluice.ai-ratelimit.model.${modelName}`;
        const planned = planFor([ck, mk]);
        // What the filter will see: the counter with the interference in its current bucket.
        const usedWith = (k: string) => {
          const d = planned.get(k) ?? 0;
          const b = now / (isConsumer(k) ? W : WIDTH);
          add(k, b, d);
          const u = modelUsed(k, now);
          add(k, b, -d);
          return u;
        };
        const fitsC = Math.ceil(usedWith(ck)) + est.total <= L_CONSUMER;
        const fitsM = Math.ceil(usedWith(mk)) + est.total <= L_MODEL;
        const s = send(h, { consumer, body, worker: Math.floor(random() * WORKERS) });
        plan.clear();
        sent++;
        const r = s.getSentLocalResponse();
        // The filter decides exactly as the documented arithmetic says.
        expect(r === null).toBe(fitsC && fitsM);
        if (r) {
          expect(r.statusCode).toBe(429);
          rejected++;
          s.completeHttpContext();
          continue;
        }
        add(ck, now / W, est.total);
        add(mk, now / WIDTH, est.total);
        // Never more than the limit reserved or charged in a window, at any moment.
        expect(modelUsed(ck, now)).toBeLessThanOrEqual(L_CONSUMER);
        expect(modelUsed(mk, now)).toBeLessThanOrEqual(L_MODEL);
        open.push({ s, consumer, modelName, cost: est.total, prompt: est.prompt, maxTokens, at: now });
      } else {
        complete(Math.floor(random() * open.length));
      }
    }

    // Final counters: every bucket a ring still holds equals the exact sum the model expects.
    let compared = 0;
    for (const [k, buckets] of model) {
      const r = ring(h, k);
      expect(r.size).toBeGreaterThan(0);
      for (const [b, v] of r) {
        expect(Number(v)).toBe(buckets.get(b) ?? 0);
        compared++;
      }
    }
    console.log(`concurrency: ${sent} requests, ${admitted.length} admitted, ${rejected} rejected, ${injected} CAS conflicts injected, ` +
      `${h.getMetric("sluice.ratelimit_cas_retries")!.value} retries, ${charged} tokens charged, ${compared} buckets compared`);
    expect(compared).toBeGreaterThan(10);
    expect(rejected).toBeGreaterThan(100);
    expect(admitted.length).toBeGreaterThan(500);
    expect(injected).toBeGreaterThan(1000);
    expect(h.getMetric("sluice.ratelimit_cas_retries")!.value).toBeGreaterThan(0n);
    // Metrics: every charged token of every request, per rule.
    expect(h.getMetric("sluice.ratelimit_charged_tokens;rule=consumer")!.value).toBe(BigInt(charged));
    expect(h.getMetric("sluice.ratelimit_charged_tokens;rule=model")!.value).toBe(BigInt(charged));

    // What was really used, by admission time: a fixed window never holds more than its limit plus
    // one request's reservation (here usage never exceeds the reservation, so never more than the limit).
    const perWindow = new Map<string, number>();
    for (const a of admitted) {
      const k = `${a.consumer}/${a.at / W}`;
      perWindow.set(k, (perWindow.get(k) ?? 0) + a.charged);
    }
    for (const v of perWindow.values()) expect(v).toBeLessThanOrEqual(L_CONSUMER + maxCost);
    expect(Math.max(...perWindow.values())).toBeLessThanOrEqual(L_CONSUMER);
    // Sliding: any trailing minute ending at an admission holds at most the limit plus the tokens
    // of the one sub-bucket the approximation weighs (README's error bound) plus one reservation.
    for (const m of ["gpt-a", "gpt-b", "gpt-c"]) {
      const list = admitted.filter((a) => a.modelName === m).sort((x, y) => (x.at < y.at ? -1 : 1));
      for (const a of list) {
        const trailing = list.filter((x) => x.at > a.at - W && x.at <= a.at).reduce((n, x) => n + x.charged, 0);
        const c = a.at / WIDTH;
        const oldest = list.filter((x) => x.at / WIDTH === c - SUB).reduce((n, x) => n + x.charged, 0);
        expect(trailing).toBeLessThanOrEqual(L_MODEL + oldest + maxCost);
      }
    }
    expectNoTraps(h);
  });
});

describe("ai-ratelimit: money budgets (strategy cost)", () => {
  const SPEND = { rules: [{ name: "spend", key: ["consumer"], strategy: "cost", budget: 0.01, window: "1h" }] };

  it("reserves the request's most at the model's price, settles to ai-proxy's recorded cost, refuses past the budget", async () => {
    const { h, clock } = await chain(SPEND);
    const key = "sluice.ai-ratelimit.spend.alice";
    const body = CHAT("gpt-4o", 100);
    // gpt-4o's built-in price: 2.50 per million prompt tokens, 10 per million completion tokens,
    // so a token costs 2.5 and 10 micro-dollars.
    const s = send(h, { body });
    expect(s.getSentLocalResponse()).toBeNull();
    expect(used(h, key, clock, 3600n)).toBe(Math.round(estimate(body, 100).prompt * 2.5 + 100 * 10));
    answer(s, { prompt: 400, completion: 80 });
    expect(s.getFilterState("sluice.cost")).toBe("1800"); // 400 × 2.5 + 80 × 10
    expect(used(h, key, clock, 3600n)).toBe(1800);
    let refused: ReturnType<typeof rejection> = null;
    let settled = 1800;
    for (let i = 0; i < 10 && !refused; i++) {
      const t = send(h, { body });
      refused = rejection(t);
      if (refused) break;
      answer(t, { prompt: 400, completion: 80 });
      settled += Number(t.getFilterState("sluice.cost"));
    }
    // 5 × 1800 = 9000 spent; the next one's reservation (about 1000) no longer fits 10000.
    expect(settled).toBe(9000);
    expect(used(h, key, clock, 3600n)).toBe(9000);
    expect(refused!.status).toBe(429);
    expect(refused!.body.error.message).toMatch(/rule 'spend'/);
    // Another consumer has its own budget.
    const bob = send(h, { consumer: "bob", body });
    expect(bob.getSentLocalResponse()).toBeNull();
    expectNoTraps(h);
  });

  it("a model without a price cannot be kept to a budget: 400 in the client's shape, nothing reserved", async () => {
    const { h, clock } = await chain(SPEND);
    const s = send(h, { body: CHAT("mini-x", 10) });
    const r = rejection(s)!;
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe("model_not_priced");
    expect(r.body.error.message).toMatch(/'mini-x' has no price/);
    expect(used(h, "sluice.ai-ratelimit.spend.alice", clock, 3600n)).toBe(0);
    const a = send(h, { path: "/v1/messages", body: { model: "mini-x", max_tokens: 10, messages: [{ role: "user", content: "hi" }] } });
    expect(rejection(a)!.body.type).toBe("error");
  });

  it("prices from its own configuration: the table gateway.yaml renders for ai-proxy too", async () => {
    const { h, clock } = await chain({ ...SPEND, prices: { "mini-*": { input: 1, output: 2 } } });
    const s = send(h, { body: CHAT("mini-x", 10) });
    expect(s.getSentLocalResponse()).toBeNull();
    expect(used(h, "sluice.ai-ratelimit.spend.alice", clock, 3600n)).toBe(estimate(CHAT("mini-x", 10), 10).prompt * 1 + 10 * 2);
  });

  it("budget only with strategy cost; a cost rule takes budget, not limit", async () => {
    expect(await loadError({ rules: [{ name: "r", limit: 100, budget: 5, window: "1m" }] })).toMatch(/rules\[0\]\.budget: applies only to strategy cost/);
    expect(await loadError({ rules: [{ name: "r", strategy: "cost", limit: 100, window: "1m" }] })).toMatch(/rules\[0\]\.limit: a cost rule takes budget/);
    expect(await loadError({ rules: [{ name: "r", strategy: "cost", window: "1m" }] })).toMatch(/rules\[0\]\.budget: is required with strategy cost/);
  });
});

describe("ai-ratelimit: calendar windows (week, month)", () => {
  // T0 is 2023-11-14 00:00 UTC, a Tuesday.
  const MONTH_NOV_2023 = BigInt((2023 - 1970) * 12 + 10);
  const DEC_1 = 1_701_388_800n; // 2023-12-01 00:00 UTC
  const MON_NOV_20 = 1_700_438_400n; // 2023-11-20 00:00 UTC

  it("month: one counter per UTC calendar month; a refusal waits for the 1st; the next month starts empty", async () => {
    const { h, clock } = await chain({ rules: [{ name: "monthly", key: ["consumer"], limit: 300, window: "month" }] });
    const key = "sluice.ai-ratelimit.monthly.alice";
    answer(send(h, { body: CHAT("gpt-4o", 100) }), { prompt: 100, completion: 100 });
    expect(ring(h, key).get(MONTH_NOV_2023)).toBe(200n);
    clock.advance(10n * 86400n * SEC); // the 24th: still November
    const r = rejection(send(h, { body: CHAT("gpt-4o", 150) }))!;
    expect(r.status).toBe(429);
    expect(Number(header(r.headers, "retry-after"))).toBe(Number(DEC_1 - clock.now / SEC));
    clock.now = DEC_1 * SEC;
    const next = send(h, { body: CHAT("gpt-4o", 150) });
    expect(next.getSentLocalResponse()).toBeNull();
    expect(ring(h, key).get(MONTH_NOV_2023 + 1n)).toBeGreaterThan(0n);
    expectNoTraps(h);
  });

  it("week: from Monday 00:00 UTC", async () => {
    const { h, clock } = await chain({ rules: [{ name: "weekly", key: ["consumer"], limit: 300, window: "week" }] });
    answer(send(h, { body: CHAT("gpt-4o", 100) }), { prompt: 100, completion: 100 });
    const r = rejection(send(h, { body: CHAT("gpt-4o", 150) }))!;
    expect(Number(header(r.headers, "retry-after"))).toBe(Number(MON_NOV_20 - clock.now / SEC)); // 6 days
    clock.now = MON_NOV_20 * SEC;
    expect(send(h, { body: CHAT("gpt-4o", 150) }).getSentLocalResponse()).toBeNull();
  });

  it("a calendar window is fixed", async () => {
    expect(await loadError({ rules: [{ name: "r", limit: 10, window: "month", window_type: "sliding" }] })).toMatch(/rules\[0\]\.window_type: a calendar window \(week, month\) is fixed/);
  });
});

describe("ai-ratelimit: money budgets are exact under concurrency", () => {
  it("4 workers, 2,000 requests in flight eight at a time, random costs: never over budget, and the final spend is the sum of the recorded costs", async () => {
    const random = rng(20261204);
    const BUDGET_MICROS = 2_000_000; // budget: 2 dollars
    const { h, clock } = await chain({ rules: [{ name: "spend", key: ["consumer"], strategy: "cost", budget: 2, window: "1h" }] }, { workers: 4 });
    const key = "sluice.ai-ratelimit.spend.alice";
    let spent = 0;
    let admitted = 0;
    let refused = 0;
    for (let round = 0; round < 250; round++) {
      const batch: { s: Stream; max: number; prompt: number }[] = [];
      for (let i = 0; i < 8; i++) {
        const max = 1 + Math.floor(random() * 400);
        const body = CHAT("gpt-4o", max);
        const s = send(h, { body, worker: (round * 8 + i) % 4 });
        if (s.getSentLocalResponse()) {
          expect(s.getSentLocalResponse()!.statusCode).toBe(429);
          refused++;
          continue;
        }
        batch.push({ s, max, prompt: estimate(body, max).prompt });
      }
      // Answered in random order, each within what was reserved for it.
      batch.sort(() => random() - 0.5);
      for (const b of batch) {
        answer(b.s, { prompt: 1 + Math.floor(random() * b.prompt), completion: Math.floor(random() * (b.max + 1)) });
        spent += Number(b.s.getFilterState("sluice.cost"));
        admitted++;
      }
      expect(used(h, key, clock, 3600n)).toBe(spent);
      expect(spent).toBeLessThanOrEqual(BUDGET_MICROS);
    }
    expect(admitted + refused).toBe(2000);
    expect(refused).toBeGreaterThan(0);
    expect(used(h, key, clock, 3600n)).toBe(spent);
    expectNoTraps(h);
  });
});

describe("ai-ratelimit: soft limits (warn_at)", () => {
  it("admits past the soft limit, and says so on the answer and in a metric", async () => {
    const { h } = await chain({ rules: [{ name: "team", key: ["consumer"], limit: 1000, window: "1h", warn_at: 0.5 }] });
    const ask = () => {
      const s = send(h, { body: CHAT("gpt-4o", 100) });
      expect(s.getSentLocalResponse()).toBeNull();
      answer(s, { prompt: 150, completion: 100 });
      return header(s.downstream.headers, "x-sluice-limit-warning");
    };
    expect(ask()).toBeUndefined(); // about 110 reserved of 1000
    expect(ask()).toBeUndefined(); // 250 spent + the reservation: under half
    expect(ask()).toMatch(/^rule=team; used=(5\d|6\d)%$/); // 500 spent + the reservation
    expect(h.getMetric("sluice.ratelimit_warned;rule=team")?.value).toBe(1n);
    expect(await loadError({ rules: [{ name: "r", limit: 10, window: "1m", warn_at: 1.5 }] })).toMatch(/rules\[0\]\.warn_at: must be a share of the limit between 0 and 1/);
  });
});
