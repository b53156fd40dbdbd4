// Structured output and reasoning across providers, end to end: the official `openai` client,
// pointed at the local gateway (the host as an HTTP server running build/ai-proxy.wasm), asks
// Anthropic and Gemini mocks (each speaking its own wire format) for response_format json_schema
// and reasoning_effort, in whole answers and streams.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { Host } from "../../host/index.js";
import { startGateway, type Gateway } from "../../host/server.js";
import { startMock, type MockServer } from "../../scripts/mocks/index.js";

// Client model -> the instance serving it: Claude 4.5 has structured outputs, Claude 3.5 Haiku
// gets the forced tool; Gemini 2.5 takes a thinking budget, Gemini 3 a thinking level.
const MODELS = {
  "claude-sonnet-4-5": "anthropic",
  "claude-3-5-haiku-20241022": "anthropic",
  "gemini-2.5-flash": "gemini",
  "gemini-3-flash-preview": "gemini",
} as const;
type Model = keyof typeof MODELS;

const WEATHER = {
  type: "json_schema" as const,
  json_schema: {
    name: "weather",
    strict: true,
    schema: { type: "object", properties: { city: { type: "string" }, temp: { type: "number" } }, required: ["city", "temp"], additionalProperties: false },
  },
};

let mocks: Record<"anthropic" | "gemini", MockServer>;
let gateway: Gateway;

beforeAll(async () => {
  mocks = { anthropic: await startMock("anthropic", { apiKey: "provider-key-anthropic" }), gemini: await startMock("gemini", { apiKey: "provider-key-gemini" }) };
  const instances = (Object.keys(MODELS) as Model[]).map((m, i) => ({
    name: `i${i}`, provider: MODELS[m], api_key: `provider-key-${MODELS[m]}`, models: [m],
    endpoint: mocks[MODELS[m]].url + (MODELS[m] === "gemini" ? "/v1beta" : ""), cluster: MODELS[m],
  }));
  const host = await Host.create({
    filters: [{ name: "ai-proxy", wasm: "build/ai-proxy.wasm", configuration: { instances }, allowOnHeadersStopIteration: true }],
  });
  gateway = await startGateway({
    host,
    clusterHeader: "x-sluice-cluster",
    clusters: { anthropic: { url: mocks.anthropic.url }, gemini: { url: mocks.gemini.url } },
    routeTimeoutMs: 30_000,
  });
});

afterAll(async () => {
  await gateway?.close();
  for (const m of Object.values(mocks ?? {})) await m.close();
});

const openai = () => new OpenAI({ apiKey: "client-key", baseURL: `${gateway.url}/v1`, maxRetries: 0 });
const lastRequest = (model: Model) => mocks[MODELS[model]].requests.at(-1)!.body;

describe.each(Object.keys(MODELS) as Model[])("openai SDK through the gateway to %s", (model) => {
  it("response_format json_schema: the content parses as JSON following the schema", async () => {
    const r = await openai().chat.completions.create({ model, messages: [{ role: "user", content: "Weather: city=Lyon" }], response_format: WEATHER });
    const m = r.choices[0].message;
    expect(JSON.parse(m.content!)).toEqual({ city: "Lyon", temp: 1 });
    expect(m.tool_calls ?? []).toEqual([]);
    expect(r.choices[0].finish_reason).toBe("stop");
    expect(r.usage!.completion_tokens).toBeGreaterThan(0);
    const sent = lastRequest(model);
    if (model === "claude-sonnet-4-5") expect(sent.output_config.format.schema).toEqual(WEATHER.json_schema.schema);
    if (model === "claude-3-5-haiku-20241022") expect(sent.tool_choice).toMatchObject({ type: "tool", name: "weather" });
    if (MODELS[model] === "gemini") expect(sent.generationConfig).toMatchObject({ responseMimeType: "application/json", responseSchema: { type: "OBJECT" } });
  });

  it("response_format json_schema, streamed: the content deltas join into the JSON, with usage", async () => {
    const stream = await openai().chat.completions.create({ model, messages: [{ role: "user", content: "Weather: city=Nice" }], response_format: WEATHER, stream: true, stream_options: { include_usage: true } });
    let text = "";
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      expect(chunk.choices[0]?.delta?.tool_calls).toBeUndefined();
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(JSON.parse(text)).toEqual({ city: "Nice", temp: 1 });
    expect(finish).toBe("stop");
    expect(usage!.total_tokens).toBeGreaterThan(0);
  });

  it("reasoning_effort low works", async () => {
    const r = await openai().chat.completions.create({ model, messages: [{ role: "user", content: "Think a little" }], reasoning_effort: "low" });
    expect(r.choices[0].message.content).toContain("Think a little");
    const sent = lastRequest(model);
    if (MODELS[model] === "anthropic") {
      expect(sent.thinking).toEqual({ type: "enabled", budget_tokens: 1024 });
      // Anthropic's thinking comes back to a Chat client as reasoning_content.
      expect((r.choices[0].message as unknown as { reasoning_content?: string }).reasoning_content).toContain("Think a little");
    } else {
      expect(sent.generationConfig.thinkingConfig).toEqual(model === "gemini-3-flash-preview" ? { thinkingLevel: "low" } : { thinkingBudget: 1024 });
    }
  });
});

describe("@anthropic-ai/sdk through the gateway to Gemini", () => {
  it("structured outputs (output_config.format) come back as a text block of JSON following the schema", async () => {
    const client = new Anthropic({ apiKey: "client-key", baseURL: gateway.url, maxRetries: 0 });
    const params = {
      model: "gemini-2.5-flash", max_tokens: 256, messages: [{ role: "user" as const, content: "Weather: city=Brest" }],
      output_config: { format: { type: "json_schema", schema: WEATHER.json_schema.schema } },
    };
    const r = await client.messages.create(params as Anthropic.MessageCreateParamsNonStreaming);
    const block = r.content[0];
    expect(block.type).toBe("text");
    expect(JSON.parse((block as Anthropic.TextBlock).text)).toEqual({ city: "Brest", temp: 1 });
    expect(lastRequest("gemini-2.5-flash").generationConfig.responseMimeType).toBe("application/json");
  });
});
