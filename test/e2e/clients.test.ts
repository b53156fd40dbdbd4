// The official `openai` and `@anthropic-ai/sdk` clients, pointed at the local gateway (the host as
// an HTTP server running build/key-auth.wasm + build/ai-proxy.wasm), complete chat, streaming chat
// and tool-call round trips against every mock provider, each speaking its own wire format.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { GoogleGenAI, ApiError, type Content } from "@google/genai";
import { Host } from "../../host/index.js";
import { startGateway, type Gateway } from "../../host/server.js";
import { startMock, type MockServer } from "../../scripts/mocks/index.js";

const KINDS = ["openai", "azure-openai", "anthropic", "gemini", "deepseek", "mistral", "openai-compatible"] as const;
type Kind = (typeof KINDS)[number];

// The model a client asks for, per provider, and where the provider's API sits under the mock.
const MODEL: Record<Kind, string> = {
  openai: "gpt-4o", "azure-openai": "azure-gpt-4o", anthropic: "claude-sonnet-4-5", gemini: "gemini-2.5-flash",
  deepseek: "deepseek-chat", mistral: "mistral-large-latest", "openai-compatible": "llama-3.1-8b",
};
const BASE: Record<Kind, string> = {
  openai: "/v1", "azure-openai": "/openai", anthropic: "", gemini: "/v1beta", deepseek: "", mistral: "/v1", "openai-compatible": "/v1",
};

const WEATHER_TOOL = {
  type: "function" as const,
  function: { name: "get_weather", description: "Current weather for a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } },
};

let mocks: Record<string, MockServer>;
let gateway: Gateway;
let host: Host;

beforeAll(async () => {
  mocks = {};
  for (const k of KINDS) mocks[k] = await startMock(k, { apiKey: `provider-key-${k}` });
  const instances = KINDS.map((k) => ({
    name: k, provider: k, api_key: `provider-key-${k}`, endpoint: mocks[k].url + BASE[k], models: [MODEL[k]],
    ...(k === "azure-openai" ? { deployment: "gpt-4o-prod" } : {}),
  }));
  host = await Host.create({
    filters: [
      { name: "key-auth", wasm: "build/key-auth.wasm", configuration: { consumers: [{ name: "team-a", keys: ["sluice-client-key"] }] } },
      { name: "ai-proxy", wasm: "build/ai-proxy.wasm", configuration: { instances }, allowOnHeadersStopIteration: true },
    ],
  });
  gateway = await startGateway({
    host,
    clusterHeader: "x-sluice-cluster",
    clusters: Object.fromEntries(KINDS.map((k) => [k, { url: mocks[k].url }])),
    routeTimeoutMs: 30_000,
  });
});

afterAll(async () => {
  await gateway?.close();
  for (const m of Object.values(mocks ?? {})) await m.close();
});

const openai = () => new OpenAI({ apiKey: "sluice-client-key", baseURL: `${gateway.url}/v1`, maxRetries: 0 });
const anthropic = () => new Anthropic({ apiKey: "sluice-client-key", baseURL: gateway.url, maxRetries: 0 });
const google = () => new GoogleGenAI({ apiKey: "sluice-client-key", httpOptions: { baseUrl: gateway.url } });

describe.each(KINDS)("official clients through the gateway to %s", (kind) => {
  it("OpenAI client: chat", async () => {
    const r = await openai().chat.completions.create({ model: MODEL[kind], messages: [{ role: "user", content: "Hello there" }] });
    expect(r.choices[0].message.content).toContain("Hello there");
    expect(r.usage!.total_tokens).toBeGreaterThan(0);
    const seen = mocks[kind].requests.at(-1)!;
    // The provider got its own key, never the client's.
    expect(JSON.stringify(seen.headers)).toContain(`provider-key-${kind}`);
    expect(JSON.stringify(seen.headers)).not.toContain("sluice-client-key");
  });

  it("OpenAI client: streaming chat", async () => {
    const stream = await openai().chat.completions.create({ model: MODEL[kind], messages: [{ role: "user", content: "Stream me a reply" }], stream: true, stream_options: { include_usage: true } });
    let text = "";
    let usage: OpenAI.CompletionUsage | null | undefined;
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toContain("Stream me a reply");
    expect(finish).toBe("stop");
    expect(usage!.completion_tokens).toBeGreaterThan(0);
  });

  it("OpenAI client: tool-call round trip, streamed", async () => {
    const client = openai();
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: "Use the get_weather tool for city=Paris" }];
    const stream = await client.chat.completions.create({ model: MODEL[kind], messages, tools: [WEATHER_TOOL], stream: true });
    const calls: { id: string; name: string; args: string }[] = [];
    for await (const chunk of stream) {
      for (const t of chunk.choices[0]?.delta?.tool_calls ?? []) {
        if (t.id) calls[t.index] = { id: t.id, name: t.function?.name ?? "", args: "" };
        calls[t.index].args += t.function?.arguments ?? "";
      }
    }
    expect(calls).toHaveLength(1);
    expect(calls[0].name).toBe("get_weather");
    expect(JSON.parse(calls[0].args)).toEqual({ city: "Paris" });
    messages.push({ role: "assistant", content: null, tool_calls: [{ id: calls[0].id, type: "function", function: { name: "get_weather", arguments: calls[0].args } }] });
    messages.push({ role: "tool", tool_call_id: calls[0].id, content: "18 degrees and sunny" });
    const final = await client.chat.completions.create({ model: MODEL[kind], messages, tools: [WEATHER_TOOL] });
    expect(final.choices[0].message.content).toContain("18 degrees and sunny");
  });

  it("Anthropic client: messages, streaming and a tool round trip", async () => {
    const client = anthropic();
    const r = await client.messages.create({ model: MODEL[kind], max_tokens: 200, messages: [{ role: "user", content: "Bonjour 🌍" }] });
    expect(r.content[0].type).toBe("text");
    expect((r.content[0] as Anthropic.TextBlock).text).toContain("Bonjour 🌍");
    expect(r.usage.output_tokens).toBeGreaterThan(0);

    const stream = client.messages.stream({ model: MODEL[kind], max_tokens: 200, messages: [{ role: "user", content: "Stream please" }] });
    let text = "";
    stream.on("text", (t) => (text += t));
    const final = await stream.finalMessage();
    expect(text).toContain("Stream please");
    expect(final.stop_reason).toBe("end_turn");

    const tools: Anthropic.Tool[] = [{ name: "get_weather", description: "Current weather", input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } }];
    const first = await client.messages.create({ model: MODEL[kind], max_tokens: 200, tools, messages: [{ role: "user", content: "Use the get_weather tool for city=Lyon" }] });
    expect(first.stop_reason).toBe("tool_use");
    const use = first.content.find((b) => b.type === "tool_use") as Anthropic.ToolUseBlock;
    expect(use.input).toEqual({ city: "Lyon" });
    const second = await client.messages.create({
      model: MODEL[kind], max_tokens: 200, tools,
      messages: [
        { role: "user", content: "Use the get_weather tool for city=Lyon" },
        { role: "assistant", content: first.content },
        { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "21 degrees" }] },
      ],
    });
    expect((second.content.find((b) => b.type === "text") as Anthropic.TextBlock).text).toContain("21 degrees");
  });
});

describe("the gateway's own answers", () => {
  it("a wrong client key gets 401 from key-auth, in OpenAI's format", async () => {
    const client = new OpenAI({ apiKey: "wrong", baseURL: `${gateway.url}/v1`, maxRetries: 0 });
    const err = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "x" }] }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(err.status).toBe(401);
  });

  it("a provider's 429 reaches the client as a RateLimitError with Retry-After", async () => {
    mocks.openai.script({ error: { status: 429 } });
    const err = await openai().chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "x" }] }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(err.headers.get("retry-after")).toBeTruthy();
  });

  it("an unreachable provider gives 502 with a JSON error", async () => {
    const h = await Host.create({
      filters: [{ name: "ai-proxy", wasm: "build/ai-proxy.wasm", configuration: { instances: [{ name: "dead", provider: "openai", api_key: "k", endpoint: "http://127.0.0.1:9/v1" }] }, allowOnHeadersStopIteration: true }],
    });
    const g = await startGateway({ host: h, clusterHeader: "x-sluice-cluster", clusters: { dead: { url: "http://127.0.0.1:9" } } });
    try {
      const err = await new OpenAI({ apiKey: "x", baseURL: `${g.url}/v1`, maxRetries: 0 }).chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "x" }] }).catch((e) => e);
      expect(err.status).toBe(502);
      expect(err.error.code).toBe("upstream_unreachable");
    } finally {
      await g.close();
    }
  });

  it("lists models with GET /v1/models", async () => {
    const list = await openai().models.list();
    expect(list.data.map((m) => m.id)).toEqual(expect.arrayContaining(Object.values(MODEL)));
  });
});

describe("token counts and model lists with the official clients", () => {
  it.each(KINDS)("Anthropic client: messages.countTokens for a %s model (the provider's own count, else the gateway's estimate)", async (kind) => {
    const { data, response } = await anthropic()
      .messages.countTokens({ model: MODEL[kind], system: "Be brief.", messages: [{ role: "user", content: "How many tokens are in this sentence?" }] })
      .withResponse();
    expect(data.input_tokens).toBeGreaterThan(5);
    if (kind === "anthropic") {
      expect(response.headers.get("x-sluice-token-count")).toBeNull();
      expect(mocks.anthropic.requests.at(-1)!.path).toBe("/v1/messages/count_tokens");
    } else {
      expect(response.headers.get("x-sluice-token-count")).toBe("estimate");
    }
  });

  it("Anthropic client: models.list and models.retrieve", async () => {
    const ids: string[] = [];
    for await (const m of anthropic().models.list()) ids.push(m.id);
    expect(ids).toEqual(expect.arrayContaining(Object.values(MODEL)));
    const one = await anthropic().models.retrieve("claude-sonnet-4-5");
    expect(one.id).toBe("claude-sonnet-4-5");
    expect(one.type).toBe("model");
    const missing = await anthropic().models.retrieve("claude-0").catch((e) => e);
    expect(missing).toBeInstanceOf(Anthropic.NotFoundError);
  });

  it("OpenAI client: models.retrieve, and NotFoundError for a model the gateway does not serve", async () => {
    const one = await openai().models.retrieve("gemini-2.5-flash");
    expect(one).toMatchObject({ id: "gemini-2.5-flash", object: "model", owned_by: "gemini" });
    const missing = await openai().models.retrieve("gpt-0").catch((e) => e);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    expect(missing.error.code).toBe("model_not_found");
  });
});

const WEATHER_DECL = { name: "get_weather", description: "Current weather for a city", parametersJsonSchema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } };

describe.each(KINDS)("Google's @google/genai client through the gateway to %s", (kind) => {
  it("generateContent, with Gemini's usage", async () => {
    const r = await google().models.generateContent({ model: MODEL[kind], contents: "Hello there", config: { systemInstruction: "Be brief.", temperature: 0.1 } });
    expect(r.text).toContain("Hello there");
    expect(r.candidates![0].finishReason).toBe("STOP");
    expect(r.usageMetadata!.totalTokenCount).toBeGreaterThan(0);
    const seen = mocks[kind].requests.at(-1)!;
    expect(JSON.stringify(seen.headers)).toContain(`provider-key-${kind}`);
    expect(JSON.stringify(seen.headers)).not.toContain("sluice-client-key");
  });

  it("generateContentStream", async () => {
    const stream = await google().models.generateContentStream({ model: MODEL[kind], contents: "Stream me a reply" });
    let text = "";
    let total = 0;
    for await (const chunk of stream) {
      text += chunk.text ?? "";
      if (chunk.usageMetadata?.totalTokenCount) total = chunk.usageMetadata.totalTokenCount;
    }
    expect(text).toContain("Stream me a reply");
    expect(total).toBeGreaterThan(0);
  });

  it("a function-call round trip", async () => {
    const ai = google();
    const contents: Content[] = [{ role: "user", parts: [{ text: "Use the get_weather tool for city=Oslo" }] }];
    const config = { tools: [{ functionDeclarations: [WEATHER_DECL] }] };
    const first = await ai.models.generateContent({ model: MODEL[kind], contents, config });
    const call = first.functionCalls![0];
    expect(call.name).toBe("get_weather");
    expect(call.args).toMatchObject({ city: expect.any(String) });
    contents.push(first.candidates![0].content!);
    contents.push({ role: "user", parts: [{ functionResponse: { name: "get_weather", id: call.id, response: { result: "18 degrees" } } }] });
    const final = await ai.models.generateContent({ model: MODEL[kind], contents, config });
    expect(final.text).toContain("18 degrees");
  });

  it("countTokens: the provider's own count for Gemini, the gateway's estimate elsewhere", async () => {
    const r = await google().models.countTokens({ model: MODEL[kind], contents: "How many tokens are in this sentence?" });
    expect(r.totalTokens).toBeGreaterThan(3);
  });
});

describe("Google's @google/genai client: models and errors", () => {
  it.each(["openai", "gemini"] as const)("embedContent through the gateway to %s", async (kind) => {
    const model = kind === "openai" ? "text-embedding-3-small" : "gemini-embedding-001";
    const h = await Host.create({
      filters: [{ name: "ai-proxy", wasm: "build/ai-proxy.wasm", configuration: { instances: [{ name: kind, provider: kind, api_key: `provider-key-${kind}`, endpoint: mocks[kind].url + BASE[kind], models: [model] }] }, allowOnHeadersStopIteration: true }],
    });
    const g = await startGateway({ host: h, clusterHeader: "x-sluice-cluster", clusters: { [kind]: { url: mocks[kind].url } } });
    try {
      const ai = new GoogleGenAI({ apiKey: "x", httpOptions: { baseUrl: g.url } });
      const r = await ai.models.embedContent({ model, contents: ["first text", "second text"] });
      expect(r.embeddings).toHaveLength(2);
      expect(r.embeddings![0].values!.length).toBeGreaterThan(0);
    } finally {
      await g.close();
    }
  });

  it("models.list and models.get", async () => {
    const names: string[] = [];
    for await (const m of await google().models.list()) names.push(m.name!);
    expect(names).toEqual(expect.arrayContaining(Object.values(MODEL).map((m) => `models/${m}`)));
    const one = await google().models.get({ model: "gemini-2.5-flash" });
    expect(one.name).toBe("models/gemini-2.5-flash");
  });

  it("a wrong key is an ApiError with status 401", async () => {
    const ai = new GoogleGenAI({ apiKey: "wrong", httpOptions: { baseUrl: gateway.url } });
    const err = await ai.models.generateContent({ model: "gpt-4o", contents: "x" }).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(401);
  });

  it("an unknown model is an ApiError with status 404", async () => {
    const err = await google().models.generateContent({ model: "no-such-model", contents: "x" }).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(404);
  });
});
