// Cost arithmetic per provider (issue 19, "Done when"): every provider's own usage fields, as its API
// documents them, priced through build/ai-proxy.wasm: uncached input, cached reads, cache writes,
// output and reasoning apart, streamed and not, on each client API that reaches it. Prices are whole
// or exact binary fractions so each expected cost is exact arithmetic, written out in the comment.
// (test/ai-proxy/cost.test.ts has OpenAI's cached input, Anthropic's cache read and write, OpenAI's
// reasoning with a fee and Gemini's thoughts through Chat Completions.)
import { describe, expect, it } from "vitest";
import { answer, proxyHost, send } from "./helpers.js";

const PRICE = { input: 2, output: 8, cached_input: 0.5, cache_write: 2.5, reasoning: 16 };
const CONFIG = {
  instances: [
    { name: "oa", provider: "openai", api_key: "sk-oa", models: ["gpt-x"], price: PRICE },
    { name: "az", provider: "azure-openai", api_key: "az", endpoint: "https://res.openai.azure.com/openai", deployment: "prod", models: ["azure-x"], price: PRICE },
    { name: "ds", provider: "deepseek", api_key: "ds", models: ["deepseek-reasoner"], price: PRICE },
    { name: "mi", provider: "mistral", api_key: "mi", models: ["mistral-large-latest"], price: PRICE },
    { name: "vl", provider: "openai-compatible", endpoint: "http://vllm.internal:8000/v1", models: ["llama-x"], price: PRICE },
    { name: "an", provider: "anthropic", api_key: "an", models: ["claude-x"], price: PRICE },
    { name: "ge", provider: "gemini", api_key: "ge", models: ["gemini-x"], price: PRICE },
  ],
};
const CHAT = "/v1/chat/completions";
const cost = (s: ReturnType<typeof send>) => s.getFilterState("sluice.cost");
const chatAnswer = (model: string, usage: object, extra: object = {}) =>
  JSON.stringify({ id: "c1", object: "chat.completion", created: 1, model, choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }], usage, ...extra });
const sse = (events: object[]) => events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join("") + "data: [DONE]\n\n";

describe("cost per provider, with cached, cache-write and reasoning tokens", () => {
  it("Azure OpenAI: prompt_tokens_details.cached_tokens and completion_tokens_details.reasoning_tokens", async () => {
    const h = await proxyHost(CONFIG);
    const s = send(h, CHAT, { model: "azure-x", messages: [{ role: "user", content: "hi" }] });
    answer(s, 200, "application/json", [chatAnswer("gpt-4o", {
      prompt_tokens: 1000, completion_tokens: 300, total_tokens: 1300,
      prompt_tokens_details: { cached_tokens: 600, audio_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 100, audio_tokens: 0 },
    }, { prompt_filter_results: [] })]);
    // 400 × 2 + 600 × 0.5 + 200 × 8 + 100 × 16 = 4300
    expect(cost(s)).toBe("4300");
    h.close();
  });

  it("DeepSeek: prompt_cache_hit_tokens alone is the cached count; reasoning tokens at the reasoning price; streamed with usage in the finish chunk", async () => {
    const h = await proxyHost(CONFIG);
    const s = send(h, CHAT, { model: "deepseek-reasoner", messages: [{ role: "user", content: "hi" }] });
    answer(s, 200, "application/json", [chatAnswer("deepseek-reasoner", {
      prompt_tokens: 500, completion_tokens: 250, total_tokens: 750, prompt_cache_hit_tokens: 200, prompt_cache_miss_tokens: 300,
      completion_tokens_details: { reasoning_tokens: 150 },
    })]);
    // 300 × 2 + 200 × 0.5 + 100 × 8 + 150 × 16 = 3900
    expect(cost(s)).toBe("3900");
    const st = send(h, CHAT, { model: "deepseek-reasoner", stream: true, messages: [{ role: "user", content: "hi" }] });
    const base = { id: "d1", object: "chat.completion.chunk", created: 1, model: "deepseek-reasoner" };
    answer(st, 200, "text/event-stream", [sse([
      { ...base, choices: [{ index: 0, delta: { role: "assistant", content: null, reasoning_content: "think" }, finish_reason: null }] },
      { ...base, choices: [{ index: 0, delta: { content: "ok" }, finish_reason: "stop" }], usage: {
        prompt_tokens: 500, completion_tokens: 250, total_tokens: 750, prompt_tokens_details: { cached_tokens: 200 }, prompt_cache_hit_tokens: 200, prompt_cache_miss_tokens: 300,
        completion_tokens_details: { reasoning_tokens: 150 },
      } },
    ])]);
    expect(cost(st)).toBe("3900");
    h.close();
  });

  it("Mistral: prompt and completion only (its usage has no cache or reasoning detail)", async () => {
    const h = await proxyHost(CONFIG);
    const s = send(h, CHAT, { model: "mistral-large-latest", messages: [{ role: "user", content: "hi" }] });
    answer(s, 200, "application/json", [chatAnswer("mistral-large-latest", { prompt_tokens: 120, total_tokens: 170, completion_tokens: 50 })]);
    // 120 × 2 + 50 × 8 = 640
    expect(cost(s)).toBe("640");
    h.close();
  });

  it("an OpenAI-compatible server (vLLM): cached_tokens when it reports them, streamed with include_usage", async () => {
    const h = await proxyHost(CONFIG);
    const s = send(h, CHAT, { model: "llama-x", stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "hi" }] });
    const base = { id: "v1", object: "chat.completion.chunk", created: 1, model: "llama-x" };
    answer(s, 200, "text/event-stream", [sse([
      { ...base, choices: [{ index: 0, delta: { role: "assistant", content: "ok" }, finish_reason: null }] },
      { ...base, choices: [{ index: 0, delta: {}, finish_reason: "stop" }] },
      { ...base, choices: [], usage: { prompt_tokens: 64, completion_tokens: 10, total_tokens: 74, prompt_tokens_details: { cached_tokens: 32 } } },
    ])]);
    // 32 × 2 + 32 × 0.5 + 10 × 8 = 160
    expect(cost(s)).toBe("160");
    h.close();
  });

  it("OpenAI streamed Chat Completions: the usage chunk's cached and reasoning tokens", async () => {
    const h = await proxyHost(CONFIG);
    const s = send(h, CHAT, { model: "gpt-x", stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "hi" }] });
    const base = { id: "o1", object: "chat.completion.chunk", created: 1, model: "gpt-x" };
    answer(s, 200, "text/event-stream", [sse([
      { ...base, choices: [{ index: 0, delta: { role: "assistant", content: "ok" }, finish_reason: "stop" }] },
      { ...base, choices: [], usage: { prompt_tokens: 2000, completion_tokens: 500, total_tokens: 2500, prompt_tokens_details: { cached_tokens: 1024 }, completion_tokens_details: { reasoning_tokens: 256 } } },
    ])]);
    // 976 × 2 + 1024 × 0.5 + 244 × 8 + 256 × 16 = 1952 + 512 + 1952 + 4096 = 8512
    expect(cost(s)).toBe("8512");
    h.close();
  });

  it("OpenAI Responses (its own API): input_tokens_details.cached_tokens and output_tokens_details.reasoning_tokens", async () => {
    const h = await proxyHost(CONFIG);
    const s = send(h, "/v1/responses", { model: "gpt-x", input: "hi", store: false });
    answer(s, 200, "application/json", [JSON.stringify({
      id: "resp_1", object: "response", created_at: 1, status: "completed", error: null, incomplete_details: null, model: "gpt-x",
      output: [{ id: "m1", type: "message", status: "completed", role: "assistant", content: [{ type: "output_text", text: "ok", annotations: [] }] }],
      usage: { input_tokens: 300, input_tokens_details: { cached_tokens: 100 }, output_tokens: 60, output_tokens_details: { reasoning_tokens: 40 }, total_tokens: 360 },
    })]);
    // 200 × 2 + 100 × 0.5 + 20 × 8 + 40 × 16 = 400 + 50 + 160 + 640 = 1250
    expect(cost(s)).toBe("1250");
    h.close();
  });

  it("Anthropic streamed: message_start's cache read and cache write, message_delta's output", async () => {
    const h = await proxyHost(CONFIG);
    const s = send(h, "/v1/messages", { model: "claude-x", max_tokens: 500, stream: true, messages: [{ role: "user", content: "hi" }] }, { "anthropic-version": "2023-06-01" });
    const ev = (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
    answer(s, 200, "text/event-stream", [[
      ev("message_start", { message: { id: "msg_1", type: "message", role: "assistant", model: "claude-x", content: [], stop_reason: null, stop_sequence: null,
        usage: { input_tokens: 40, cache_read_input_tokens: 2000, cache_creation_input_tokens: 400, output_tokens: 1 } } }),
      ev("content_block_start", { index: 0, content_block: { type: "text", text: "" } }),
      ev("content_block_delta", { index: 0, delta: { type: "text_delta", text: "ok" } }),
      ev("content_block_stop", { index: 0 }),
      ev("message_delta", { delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: 90 } }),
      ev("message_stop", {}),
    ].join("")]);
    // 40 × 2 + 2000 × 0.5 + 400 × 2.5 + 90 × 8 = 80 + 1000 + 1000 + 720 = 2800
    expect(cost(s)).toBe("2800");
    h.close();
  });

  it("Gemini's own API: cachedContentTokenCount is cached (inside promptTokenCount), thoughtsTokenCount is reasoning; streamed the same", async () => {
    const h = await proxyHost(CONFIG);
    const body = { contents: [{ role: "user", parts: [{ text: "hi" }] }] };
    const usageMetadata = { promptTokenCount: 1000, cachedContentTokenCount: 800, candidatesTokenCount: 50, thoughtsTokenCount: 30, totalTokenCount: 1080 };
    const s = send(h, "/v1beta/models/gemini-x:generateContent", body);
    answer(s, 200, "application/json", [JSON.stringify({ candidates: [{ content: { role: "model", parts: [{ text: "ok" }] }, finishReason: "STOP", index: 0 }], usageMetadata, modelVersion: "gemini-x" })]);
    // 200 × 2 + 800 × 0.5 + 50 × 8 + 30 × 16 = 400 + 400 + 400 + 480 = 1680
    expect(cost(s)).toBe("1680");
    const st = send(h, "/v1beta/models/gemini-x:streamGenerateContent?alt=sse", body);
    answer(st, 200, "text/event-stream", [
      `data: ${JSON.stringify({ candidates: [{ content: { role: "model", parts: [{ text: "o" }] }, index: 0 }], usageMetadata: { promptTokenCount: 1000, cachedContentTokenCount: 800 }, modelVersion: "gemini-x" })}\r\n\r\n`,
      `data: ${JSON.stringify({ candidates: [{ content: { role: "model", parts: [{ text: "k" }] }, finishReason: "STOP", index: 0 }], usageMetadata, modelVersion: "gemini-x" })}\r\n\r\n`,
    ]);
    expect(cost(st)).toBe("1680");
    h.close();
  });

  it("embeddings: the prompt at the input price, no output (Gemini's embedContent reports no usage: its estimate is priced, test/e2e/spend-apis.test.ts)", async () => {
    const h = await proxyHost(CONFIG);
    const s = send(h, "/v1/embeddings", { model: "gpt-x", input: ["a", "b"] });
    answer(s, 200, "application/json", [JSON.stringify({ object: "list", data: [{ object: "embedding", index: 0, embedding: [0.1] }, { object: "embedding", index: 1, embedding: [0.2] }], model: "gpt-x", usage: { prompt_tokens: 37, total_tokens: 37 } })]);
    // 37 × 2 = 74
    expect(cost(s)).toBe("74");
    h.close();
  });
});
