// ai-cache end to end with the official SDKs: key-auth -> ai-cache -> ai-proxy through the local
// gateway to mock providers. For each client API (OpenAI Chat, Anthropic Messages, OpenAI Responses
// translated and to OpenAI's own Responses API, Gemini's own) an answer produced once is served again from the cache, whole and as the client's
// own stream (which the SDK parses), without a provider call; the usage record of a hit holds no
// provider tokens; one consumer never gets another's answer.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { GoogleGenAI } from "@google/genai";
import { Host } from "../../host/index.js";
import { startGateway, type Gateway } from "../../host/server.js";
import type { Stream } from "../../host/stream.js";
import { startMock, type MockServer } from "../../scripts/mocks/index.js";

const KINDS = ["openai", "anthropic", "gemini"] as const;
const BASE = { openai: "/v1", anthropic: "", gemini: "/v1beta" } as const;

let mocks: Record<string, MockServer>;
let gateway: Gateway;
const records: Record<string, string | undefined>[] = [];

beforeAll(async () => {
  mocks = {};
  for (const k of KINDS) mocks[k] = await startMock(k, { apiKey: `provider-key-${k}` });
  const instances = [
    { name: "openai", provider: "openai", api_key: "provider-key-openai", endpoint: mocks.openai.url + BASE.openai, models: ["gpt-4o"] },
    { name: "anthropic", provider: "anthropic", api_key: "provider-key-anthropic", endpoint: mocks.anthropic.url, models: ["claude-sonnet-4-5"] },
    { name: "gemini", provider: "gemini", api_key: "provider-key-gemini", endpoint: mocks.gemini.url + BASE.gemini, models: ["gemini-2.5-flash"] },
  ];
  const host = await Host.create({
    filters: [
      { name: "key-auth", wasm: "build/key-auth.wasm", configuration: { consumers: [{ name: "team-a", keys: ["key-a"] }, { name: "team-b", keys: ["key-b"] }] } },
      { name: "ai-cache", wasm: "build/ai-cache.wasm", configuration: { replay_chunk_chars: 6 }, allowOnHeadersStopIteration: true },
      { name: "ai-proxy", wasm: "build/ai-proxy.wasm", configuration: { instances, cache_capture: true }, allowOnHeadersStopIteration: true },
    ],
  });
  gateway = await startGateway({
    host,
    clusterHeader: "x-sluice-cluster",
    clusters: Object.fromEntries(KINDS.map((k) => [k, { url: mocks[k].url }])),
    routeTimeoutMs: 30_000,
    accessLog: (s: Stream) => {
      const get = (k: string) => s.getFilterState(`sluice.${k}`);
      records.push({ cache: get("cache"), prompt: get("prompt_tokens"), completion: get("completion_tokens"), source: get("usage_source"), saved: get("cache_saved_tokens"), type: get("request_type") });
    },
  });
});

afterAll(async () => {
  await gateway?.close();
  for (const m of Object.values(mocks ?? {})) await m.close();
});

const calls = () => Object.values(mocks).reduce((n, m) => n + m.requests.length, 0);

async function lastRecord() {
  for (let i = 0; i < 50 && records.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 20));
  return records.at(-1)!;
}

const openai = (key = "key-a") => new OpenAI({ apiKey: key, baseURL: `${gateway.url}/v1`, maxRetries: 0 });
const anthropic = (key = "key-a") => new Anthropic({ apiKey: key, baseURL: gateway.url, maxRetries: 0 });
const google = (key = "key-a") => new GoogleGenAI({ apiKey: key, httpOptions: { baseUrl: gateway.url } });

/** A client API's call, whole and streamed: the text the SDK read, and the raw response's cache header. */
interface Api {
  whole(prompt: string, key?: string): Promise<{ text: string; cache: string | null }>;
  stream(prompt: string, key?: string): Promise<{ text: string; cache: string | null }>;
}

/** The Responses API to one model (store: false, so the cache may answer). */
const responsesApi = (model: string): Api => ({
  async whole(prompt, key) {
    const { data, response } = await openai(key).responses.create({ model, input: prompt, store: false }).withResponse();
    expect(data.status).toBe("completed");
    return { text: data.output_text, cache: response.headers.get("x-sluice-cache") };
  },
  async stream(prompt, key) {
    const { data, response } = await openai(key).responses.create({ model, input: prompt, store: false, stream: true }).withResponse();
    let text = "";
    let completed: OpenAI.Responses.Response | null = null;
    for await (const e of data) {
      if (e.type === "response.output_text.delta") text += e.delta;
      if (e.type === "response.completed") completed = e.response;
    }
    expect(completed?.status).toBe("completed");
    expect(completed?.output_text ?? (completed?.output[0] as any)?.content?.[0]?.text).toBe(text);
    return { text, cache: response.headers.get("x-sluice-cache") };
  },
});

const APIS: Record<string, Api> = {
  "OpenAI Chat": {
    async whole(prompt, key) {
      const { data, response } = await openai(key).chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: prompt }] }).withResponse();
      expect(data.choices[0].finish_reason).toBe("stop");
      return { text: data.choices[0].message.content ?? "", cache: response.headers.get("x-sluice-cache") };
    },
    async stream(prompt, key) {
      const { data, response } = await openai(key).chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: prompt }], stream: true, stream_options: { include_usage: true } }).withResponse();
      let text = "";
      let usage = false;
      for await (const chunk of data) {
        text += chunk.choices[0]?.delta?.content ?? "";
        if (chunk.usage) usage = true;
      }
      expect(usage).toBe(true);
      return { text, cache: response.headers.get("x-sluice-cache") };
    },
  },
  "Anthropic Messages": {
    async whole(prompt, key) {
      const { data, response } = await anthropic(key).messages.create({ model: "claude-sonnet-4-5", max_tokens: 200, messages: [{ role: "user", content: prompt }] }).withResponse();
      expect(data.stop_reason).toBe("end_turn");
      return { text: data.content.map((b) => (b.type === "text" ? b.text : "")).join(""), cache: response.headers.get("x-sluice-cache") };
    },
    async stream(prompt, key) {
      const s = anthropic(key).messages.stream({ model: "claude-sonnet-4-5", max_tokens: 200, messages: [{ role: "user", content: prompt }] });
      let text = "";
      s.on("text", (t) => (text += t));
      const final = await s.finalMessage();
      expect(final.content.map((b) => (b.type === "text" ? b.text : "")).join("")).toBe(text);
      const { response } = await s.withResponse();
      return { text, cache: response.headers.get("x-sluice-cache") };
    },
  },
  "OpenAI Responses, translated to Anthropic": responsesApi("claude-sonnet-4-5"),
  "OpenAI Responses, to OpenAI's own Responses API": responsesApi("gpt-4o"),
  "Gemini generateContent": {
    async whole(prompt, key) {
      const r = await google(key).models.generateContent({ model: "gemini-2.5-flash", contents: prompt });
      return { text: r.text ?? "", cache: (r.sdkHttpResponse?.headers?.["x-sluice-cache"] as string | undefined) ?? null };
    },
    async stream(prompt, key) {
      let text = "";
      let cache: string | null = null;
      for await (const chunk of await google(key).models.generateContentStream({ model: "gemini-2.5-flash", contents: prompt })) {
        text += chunk.text ?? "";
        cache ??= (chunk.sdkHttpResponse?.headers?.["x-sluice-cache"] as string | undefined) ?? null;
      }
      return { text, cache };
    },
  },
};

describe.each(Object.keys(APIS))("ai-cache through the gateway: %s", (name) => {
  const api = APIS[name];

  it("a whole answer is kept and served again, whole and as the client's stream, with no provider call", async () => {
    const prompt = `${name}: what is the capital of France?`;
    const first = await api.whole(prompt);
    expect(first.cache).toBe("miss");
    expect(first.text.length).toBeGreaterThan(0);
    expect(await lastRecord()).toMatchObject({ cache: "miss", source: "provider" });
    const n = calls();
    const again = await api.whole(prompt);
    expect(again).toEqual({ text: first.text, cache: "hit" });
    const rec = await lastRecord();
    expect(rec).toMatchObject({ cache: "hit", prompt: "0", completion: "0", source: "cache", type: "ai_chat" });
    expect(Number(rec.saved)).toBeGreaterThan(0);
    const streamed = await api.stream(prompt);
    expect(streamed).toEqual({ text: first.text, cache: "hit" });
    expect((await lastRecord()).type).toBe("ai_stream");
    expect(calls()).toBe(n);
  });

  it("a streamed answer is kept and served again, as a stream and whole", async () => {
    const prompt = `${name}: name three rivers in Europe.`;
    const first = await api.stream(prompt);
    expect(first.cache).toBe("miss");
    const n = calls();
    expect(await api.stream(prompt)).toEqual({ text: first.text, cache: "hit" });
    expect(await api.whole(prompt)).toEqual({ text: first.text, cache: "hit" });
    expect(calls()).toBe(n);
  });

  it("another consumer's identical request is not served from the first consumer's answer", async () => {
    const prompt = `${name}: a private question.`;
    await api.whole(prompt, "key-a");
    const n = calls();
    const other = await api.whole(prompt, "key-b");
    expect(other.cache).toBe("miss");
    expect(calls()).toBe(n + 1);
  });
});
