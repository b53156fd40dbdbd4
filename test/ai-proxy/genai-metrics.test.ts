// ai-proxy's OpenTelemetry GenAI metrics (issue 23), through the compiled filter with the rendered
// stats configuration: each metric's name, attributes and buckets against the semantic conventions
// (test/fixtures/otel-genai-semconv.json), and the values a request records.
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import type { Host } from "../../host/index.js";
import { proxyHost, send, answer } from "./helpers.js";
import { statsTags } from "../../cli/render/access-log.js";
import { GENAI_ATTRIBUTES, GENAI_HISTOGRAMS, genAiStatsTags, histogramBucketSettings, recordedBoundaries } from "../../cli/render/genai-stats.js";
import { ecdsReaderFor, loadEnvoyConfig, parseEnvoyConfig } from "../../host/envoy-config.js";

const SEMCONV = JSON.parse(readFileSync("test/fixtures/otel-genai-semconv.json", "utf8"));

const CONFIG = {
  instances: [
    { name: "oa", provider: "openai", api_key: "sk-oa", models: ["gpt-4o", "text-embedding-3-small"], model_map: { fast: "gpt-4o-mini" } },
    { name: "gem", provider: "gemini", api_key: "goog", models: ["gemini-2.5-flash"] },
    { name: "claude", provider: "anthropic", api_key: "sk-ant", models: ["claude-sonnet-4-5"] },
  ],
};

/** A host on the rendered envoy.yaml's stats configuration, with a clock the test moves. */
async function host() {
  const cfg = loadEnvoyConfig("envoy/envoy.yaml");
  const clock = { ns: 1_000_000_000n };
  const h = await proxyHost(CONFIG, { histogramBuckets: cfg.histogramBuckets, clock: () => clock.ns });
  const advance = (ms: number) => (clock.ns += BigInt(ms) * 1_000_000n);
  const prometheus = () => h.prometheus(cfg.statsTags);
  return { h, advance, prometheus };
}

const chunk = (delta: object, extra: object = {}) => `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "gpt-4o-mini-2024-07-18", choices: [{ index: 0, delta, finish_reason: null }], ...extra })}\n\n`;

/** A histogram's recorded samples (the host keeps them for tests). */
function samples(h: Host, name: string): number[] {
  return (h.getMetric(name)?.samples ?? []).map(Number);
}

const CHAT_4O = ";gen_ai.operation.name=chat;gen_ai.provider.name=openai;gen_ai.request.model=gpt-4o;gen_ai.response.model=gpt-4o";
const CHAT_FAST = ";gen_ai.operation.name=chat;gen_ai.provider.name=openai;gen_ai.request.model=fast;gen_ai.response.model=gpt-4o-mini";

describe("OpenTelemetry GenAI metrics: the conventions", () => {
  it("every metric is a histogram with the conventions' name, unit and bucket boundaries", () => {
    expect(GENAI_HISTOGRAMS.map((h) => h.name).sort()).toEqual(Object.keys(SEMCONV.metrics).sort());
    for (const h of GENAI_HISTOGRAMS) {
      const spec = SEMCONV.metrics[h.name];
      expect(spec.instrument, h.name).toBe("histogram");
      expect(h.unit, h.name).toBe(spec.unit);
      expect(h.boundaries, h.name).toEqual(spec.boundaries);
      // Durations are recorded in milliseconds (Envoy's histograms take integers), boundaries scaled alike.
      if (spec.unit === "s") expect(recordedBoundaries(h), h.name).toEqual(spec.boundaries.map((b: number) => Math.round(b * 1e6) / 1e3));
      else expect(recordedBoundaries(h), h.name).toEqual(spec.boundaries);
    }
  });

  it("the attributes are the conventions' required ones plus the models and error.type (server.* are left out: see docs)", () => {
    const all = new Set<string>();
    for (const spec of Object.values<any>(SEMCONV.metrics)) [...spec.required, ...spec.conditionally_required, ...spec.recommended].forEach((a: string) => all.add(a));
    for (const a of GENAI_ATTRIBUTES) expect(all.has(a), a).toBe(true);
    for (const spec of Object.values<any>(SEMCONV.metrics)) for (const a of spec.required) expect(GENAI_ATTRIBUTES, a).toContain(a);
  });

  it("the operations and token types the filter writes are the conventions' well-known values", () => {
    const src = readFileSync("assembly/filters/ai-proxy/genai-metrics.ts", "utf8");
    const ops = [...src.matchAll(/export const OPERATION_[A-Z_]+ = "([^"]+)";/g)].map((m) => m[1]);
    expect(ops.sort()).toEqual(["chat", "embeddings", "generate_content"]);
    for (const op of ops) expect(SEMCONV.operation_names, op).toContain(op);
    const types = [...src.matchAll(/gen_ai\.token\.type=([a-z]+)/g)].map((m) => m[1]);
    expect(types.sort()).toEqual(SEMCONV.token_types);
  });

  it("each provider's gen_ai.provider.name is a well-known value, or its own name where none fits", () => {
    const src = (p: string) => readFileSync(`assembly/providers/${p}.ts`, "utf8").match(/get genAiName\(\): string \{ return "([^"]+)"; \}/)?.[1];
    const names: Record<string, string | undefined> = {};
    for (const p of ["openai", "azure-openai", "anthropic", "gemini", "vertex", "vertex-anthropic", "bedrock", "bedrock-anthropic", "deepseek", "mistral", "openai-compatible"]) names[p] = src(p);
    expect(names).toEqual({
      openai: "openai", "azure-openai": "azure.ai.openai", anthropic: "anthropic", gemini: "gcp.gemini", vertex: "gcp.vertex_ai", "vertex-anthropic": "gcp.vertex_ai",
      bedrock: "aws.bedrock", "bedrock-anthropic": "aws.bedrock", deepseek: "deepseek", mistral: "mistral_ai", "openai-compatible": "openai_compatible",
    });
    for (const [p, n] of Object.entries(names)) if (p !== "openai-compatible") expect(SEMCONV.provider_names, p).toContain(n);
  });

  it("the rendered envoy.yaml carries the attributes as tags and the boundaries as histogram bucket settings", () => {
    const y = parse(readFileSync("envoy/envoy.yaml", "utf8"));
    expect(y.stats_config.histogram_bucket_settings).toEqual(histogramBucketSettings());
    for (const t of genAiStatsTags()) expect(y.stats_config.stats_tags).toContainEqual(t);
    for (const t of statsTags()) expect(y.stats_config.stats_tags).toContainEqual(t);
  });
});

describe("OpenTelemetry GenAI metrics: what a request records", () => {
  it("a whole chat answer: input and output tokens, the duration; no time to first token (its first byte is its last)", async () => {
    const { h, advance, prometheus } = await host();
    const s = send(h, "/v1/chat/completions", { model: "gpt-4o", messages: [{ role: "user", content: "hi" }] });
    advance(420);
    answer(s, 200, "application/json", [JSON.stringify({ id: "c1", object: "chat.completion", created: 1, model: "gpt-4o-2024-08-06", choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }], usage: { prompt_tokens: 30, completion_tokens: 7, total_tokens: 37 } })]);
    expect(samples(h, `gen_ai.client.token.usage${CHAT_4O};gen_ai.token.type=input`)).toEqual([30]);
    expect(samples(h, `gen_ai.client.token.usage${CHAT_4O};gen_ai.token.type=output`)).toEqual([7]);
    expect(samples(h, `gen_ai.server.request.duration${CHAT_4O}`)).toEqual([420]);
    expect(samples(h, `gen_ai.server.time_to_first_token${CHAT_4O}`)).toEqual([]);
    expect(samples(h, `gen_ai.server.time_per_output_token${CHAT_4O}`)).toEqual([]);
    // As Prometheus reads them: the attributes are labels (dots as underscores), the buckets the conventions'.
    const text = prometheus();
    const labels = 'gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt-4o",gen_ai_response_model="gpt-4o"';
    expect(text).toContain(`gen_ai_client_token_usage_bucket{${labels},gen_ai_token_type="input",le="16"} 0`);
    expect(text).toContain(`gen_ai_client_token_usage_bucket{${labels},gen_ai_token_type="input",le="64"} 1`);
    expect(text).toContain(`gen_ai_server_request_duration_bucket{${labels},le="320"} 0`);
    expect(text).toContain(`gen_ai_server_request_duration_bucket{${labels},le="640"} 1`);
    expect(text).toContain(`gen_ai_server_request_duration_sum{${labels}} 420`);
    const les = [...text.matchAll(/gen_ai_server_request_duration_bucket\{[^}]*le="([^"]+)"\}/g)].map((m) => m[1]);
    expect(les).toEqual([...recordedBoundaries(GENAI_HISTOGRAMS[1]).map(String), "+Inf"]);
    h.close();
  });

  it("a stream: time to first token, and time per output token as the mean gap after the first", async () => {
    const { h, advance } = await host();
    const s = send(h, "/v1/chat/completions", { model: "fast", stream: true, messages: [{ role: "user", content: "count" }] });
    advance(180);
    s.callOnResponseHeaders({ ":status": "200", "content-type": "text/event-stream" }, false);
    s.callOnResponseBody(chunk({ role: "assistant", content: "1" }), false);
    // 11 output tokens over 1,000 ms after the first: 10 gaps of 100 ms.
    for (let i = 2; i <= 11; i++) {
      advance(100);
      s.callOnResponseBody(chunk({ content: ` ${i}` }), false);
    }
    s.callOnResponseBody(`data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "gpt-4o-mini", choices: [], usage: { prompt_tokens: 12, completion_tokens: 11, total_tokens: 23 } })}\n\ndata: [DONE]\n\n`, true);
    s.completeHttpContext();
    expect(samples(h, `gen_ai.server.time_to_first_token${CHAT_FAST}`)).toEqual([180]);
    expect(samples(h, `gen_ai.server.time_per_output_token${CHAT_FAST}`)).toEqual([100]);
    expect(samples(h, `gen_ai.server.request.duration${CHAT_FAST}`)).toEqual([1180]);
    expect(samples(h, `gen_ai.client.token.usage${CHAT_FAST};gen_ai.token.type=output`)).toEqual([11]);
    h.close();
  });

  it("a stream the client left: no time per output token (it did not finish), the tokens seen are still counted", async () => {
    const { h, advance } = await host();
    const s = send(h, "/v1/chat/completions", { model: "gpt-4o", stream: true, messages: [{ role: "user", content: "count" }] });
    advance(50);
    s.callOnResponseHeaders({ ":status": "200", "content-type": "text/event-stream" }, false);
    s.callOnResponseBody(chunk({ role: "assistant", content: "one two three four five six seven eight" }), false);
    advance(300);
    s.completeHttpContext();
    expect(samples(h, `gen_ai.server.time_per_output_token${CHAT_4O}`)).toEqual([]);
    expect(samples(h, `gen_ai.server.time_to_first_token${CHAT_4O}`)).toEqual([50]);
    const out = samples(h, `gen_ai.client.token.usage${CHAT_4O};gen_ai.token.type=output`);
    expect(out.length).toBe(1);
    expect(out[0]).toBeGreaterThan(0);
    h.close();
  });

  it("a failure: the duration with error.type, the status; no tokens, no time to first token", async () => {
    const { h, advance, prometheus } = await host();
    const s = send(h, "/v1/chat/completions", { model: "gpt-4o", messages: [{ role: "user", content: "hi" }] });
    advance(75);
    answer(s, 503, "application/json", [JSON.stringify({ error: { message: "overloaded", type: "server_error" } })]);
    expect(samples(h, `gen_ai.server.request.duration${CHAT_4O};error.type=503`)).toEqual([75]);
    expect(samples(h, `gen_ai.server.request.duration${CHAT_4O}`)).toEqual([]);
    expect(samples(h, `gen_ai.client.token.usage${CHAT_4O};gen_ai.token.type=input`)).toEqual([]);
    expect(samples(h, `gen_ai.server.time_to_first_token${CHAT_4O}`)).toEqual([]);
    expect(prometheus()).toContain('gen_ai_server_request_duration_count{gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt-4o",gen_ai_response_model="gpt-4o",error_type="503"} 1');
    h.close();
  });

  it("Gemini's generateContent is generate_content by gcp.gemini; embeddings have input tokens only", async () => {
    const { h } = await host();
    const g = send(h, "/v1beta/models/gemini-2.5-flash:generateContent", { contents: [{ role: "user", parts: [{ text: "hi" }] }] }, { "x-goog-api-key": "client" });
    answer(g, 200, "application/json", [JSON.stringify({ candidates: [{ content: { role: "model", parts: [{ text: "Hi!" }] }, finishReason: "STOP", index: 0 }], usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 2, totalTokenCount: 5 }, modelVersion: "gemini-2.5-flash" })]);
    const gen = ";gen_ai.operation.name=generate_content;gen_ai.provider.name=gcp.gemini;gen_ai.request.model=gemini-2.5-flash;gen_ai.response.model=gemini-2.5-flash";
    expect(samples(h, `gen_ai.client.token.usage${gen};gen_ai.token.type=input`)).toEqual([3]);
    expect(samples(h, `gen_ai.client.token.usage${gen};gen_ai.token.type=output`)).toEqual([2]);

    const e = send(h, "/v1/embeddings", { model: "text-embedding-3-small", input: ["a", "b"] });
    answer(e, 200, "application/json", [JSON.stringify({ object: "list", data: [{ object: "embedding", index: 0, embedding: [0.1] }], model: "text-embedding-3-small", usage: { prompt_tokens: 37, total_tokens: 37 } })]);
    const emb = ";gen_ai.operation.name=embeddings;gen_ai.provider.name=openai;gen_ai.request.model=text-embedding-3-small;gen_ai.response.model=text-embedding-3-small";
    expect(samples(h, `gen_ai.client.token.usage${emb};gen_ai.token.type=input`)).toEqual([37]);
    expect(h.getMetric(`gen_ai.client.token.usage${emb};gen_ai.token.type=output`)?.samples ?? []).toEqual([]);
    h.close();
  });

  it("client-chosen model names are 'other': 1,000 of them (separators included) add no series", async () => {
    const h = await proxyHost({ instances: [{ name: "any", provider: "openai", api_key: "k" }] });
    const ask = (model: string) => {
      const s = send(h, "/v1/chat/completions", { model, messages: [{ role: "user", content: "hi" }] });
      answer(s, 200, "application/json", [JSON.stringify({ id: "c", object: "chat.completion", created: 1, model, choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } })]);
    };
    ask("warm-up");
    const before = h.metrics.all().length;
    for (let i = 0; i < 1000; i++) ask(`model-${i};gen_ai.token.type=input`);
    expect(h.metrics.all().length).toBe(before);
    expect(h.getMetric("gen_ai.server.request.duration;gen_ai.operation.name=chat;gen_ai.provider.name=openai;gen_ai.request.model=other;gen_ai.response.model=other")?.samples?.length).toBe(1001);
    h.close();
  });

  it("the local gateway takes histogram_bucket_settings as Envoy does (first match, sorted) and refuses what it cannot honor", () => {
    const text = readFileSync("envoy/envoy.yaml", "utf8");
    const y = parse(text);
    const withBuckets = (settings: unknown) => {
      y.stats_config.histogram_bucket_settings = settings;
      return parseEnvoyConfig(JSON.stringify(y), ecdsReaderFor("envoy"));
    };
    expect(withBuckets([{ match: { suffix: "x" }, buckets: [5, 1, 2] }]).histogramBuckets).toEqual([{ match: { suffix: "x" }, buckets: [1, 2, 5] }]);
    expect(() => withBuckets([{ match: { safe_regex: { regex: "x" } }, buckets: [1] }])).toThrow(/exact, prefix, suffix or contains/);
    expect(() => withBuckets([{ match: { prefix: "x" }, buckets: [] }])).toThrow(/at least one number above 0/);
    expect(() => withBuckets([{ match: { prefix: "x" }, buckets: [0] }])).toThrow(/at least one number above 0/);
  });
});
