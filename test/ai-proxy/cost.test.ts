// The cost of a request (issue 19, "Prices"): the usage record priced per model, in micro-units of
// the currency, through build/ai-proxy.wasm. Each provider's own usage fields — cached reads, cache
// writes, reasoning — priced apart; the instance's price over the `prices` table over the built-in
// one; no price, no cost.
import { describe, expect, it } from "vitest";
import { HostLoadError } from "../../host/index.js";
import { answer, proxyHost, send } from "./helpers.js";

const CONFIG = {
  instances: [
    { name: "oa", provider: "openai", api_key: "sk-oa", models: ["gpt-4o", "gpt-4o-mini", "o-custom", "gpt-5"] },
    { name: "an", provider: "anthropic", api_key: "sk-ant", models: ["claude-sonnet-4-5"] },
    { name: "ge", provider: "gemini", api_key: "g", models: ["gemini-2.5-flash"], price: { input: 0.3, output: 2.5 } },
  ],
  prices: { "o-custom": { input: 1, output: 4, reasoning: 8, request: 0.001 }, "gpt-4o-mini*": { input: 0.2, output: 0.8 } },
};

const CHAT = "/v1/chat/completions";
const cost = (s: ReturnType<typeof send>) => s.getFilterState("sluice.cost");

function openaiAnswer(model: string, usage: object) {
  return JSON.stringify({ id: "c1", object: "chat.completion", created: 1, model, choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }], usage });
}

describe("ai-proxy: the cost of a request", () => {
  it("OpenAI (built-in gpt-4o price): uncached input, cached input and output priced apart", async () => {
    const h = await proxyHost(CONFIG);
    const s = send(h, CHAT, { model: "gpt-4o", messages: [{ role: "user", content: "hi" }] });
    answer(s, 200, "application/json", [openaiAnswer("gpt-4o", { prompt_tokens: 1000, completion_tokens: 200, total_tokens: 1200, prompt_tokens_details: { cached_tokens: 400 } })]);
    // 600 × 2.50 + 400 × 1.25 + 200 × 10 = 4000 micro-dollars
    expect(cost(s)).toBe("4000");
    expect(h.getMetric("sluice.ai_cost_micros;provider=openai;model=gpt-4o;consumer=anonymous")?.value).toBe(4000n);
    h.close();
  });

  it("Anthropic (built-in Sonnet 4.5 price): cache reads and cache writes priced apart from plain input", async () => {
    const h = await proxyHost(CONFIG);
    const s = send(h, "/v1/messages", { model: "claude-sonnet-4-5", max_tokens: 500, messages: [{ role: "user", content: "hi" }] }, { "anthropic-version": "2023-06-01" });
    answer(s, 200, "application/json", [JSON.stringify({
      id: "msg_1", type: "message", role: "assistant", model: "claude-sonnet-4-5", content: [{ type: "text", text: "ok" }], stop_reason: "end_turn", stop_sequence: null,
      usage: { input_tokens: 100, cache_read_input_tokens: 1000, cache_creation_input_tokens: 500, output_tokens: 300 },
    })]);
    // 100 × 3 + 1000 × 0.30 + 500 × 3.75 + 300 × 15 = 6975
    expect(cost(s)).toBe("6975");
    h.close();
  });

  it("a prices entry with reasoning and a per-request fee (OpenAI reasoning tokens)", async () => {
    const h = await proxyHost(CONFIG);
    const s = send(h, CHAT, { model: "o-custom", messages: [{ role: "user", content: "hi" }] });
    answer(s, 200, "application/json", [openaiAnswer("o-custom", { prompt_tokens: 10, completion_tokens: 100, total_tokens: 110, completion_tokens_details: { reasoning_tokens: 60 } })]);
    // 10 × 1 + 40 × 4 + 60 × 8 + 0.001 × 1e6 = 1650
    expect(cost(s)).toBe("1650");
    h.close();
  });

  it("Gemini thoughts are reasoning, at the output price; the instance's price is used", async () => {
    const h = await proxyHost(CONFIG);
    const s = send(h, CHAT, { model: "gemini-2.5-flash", messages: [{ role: "user", content: "hi" }] });
    answer(s, 200, "application/json", [JSON.stringify({
      candidates: [{ content: { role: "model", parts: [{ text: "ok" }] }, finishReason: "STOP", index: 0 }],
      usageMetadata: { promptTokenCount: 20, candidatesTokenCount: 30, thoughtsTokenCount: 10, totalTokenCount: 60 }, modelVersion: "gemini-2.5-flash",
    })]);
    // 20 × 0.30 + 30 × 2.50 + 10 × 2.50 = 106
    expect(cost(s)).toBe("106");
    h.close();
  });

  it("the longest matching prefix wins, a prices entry over the built-in table", async () => {
    const h = await proxyHost(CONFIG);
    const s = send(h, CHAT, { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
    answer(s, 200, "application/json", [openaiAnswer("gpt-4o-mini", { prompt_tokens: 1000, completion_tokens: 1000, total_tokens: 2000 })]);
    // gpt-4o-mini* from prices (0.20 / 0.80), not the built-in gpt-4o-mini* (0.15 / 0.60) nor gpt-4o*.
    expect(cost(s)).toBe("1000");
    h.close();
  });

  it("no price for the model: no cost recorded, no cost counted", async () => {
    const h = await proxyHost(CONFIG);
    const s = send(h, CHAT, { model: "gpt-5", messages: [{ role: "user", content: "hi" }] });
    answer(s, 200, "application/json", [openaiAnswer("gpt-5", { prompt_tokens: 10, completion_tokens: 10, total_tokens: 20 })]);
    expect(s.getFilterState("sluice.prompt_tokens")).toBe("10");
    expect(cost(s)).toBeUndefined();
    expect(h.getMetric("sluice.ai_cost_micros;provider=openai;model=gpt-5;consumer=anonymous")?.value ?? 0n).toBe(0n);
    h.close();
  });

  it("an estimated record is priced too; a failed request costs nothing, fee included", async () => {
    const h = await proxyHost(CONFIG);
    const gone = send(h, CHAT, { model: "o-custom", messages: [{ role: "user", content: "hello there, how are you" }] });
    gone.completeHttpContext(); // the client hung up before any answer: the prompt estimate is charged
    expect(gone.getFilterState("sluice.usage_source")).toBe("estimate");
    expect(Number(cost(gone))).toBeGreaterThan(1000);
    const failed = send(h, CHAT, { model: "o-custom", messages: [{ role: "user", content: "hi" }] });
    answer(failed, 500, "application/json", ['{"error":{"message":"boom","type":"server_error"}}']);
    expect(cost(failed)).toBe("0");
    h.close();
  });

  it("refuses a bad price table, naming the field", async () => {
    for (const [prices, field] of [
      [{ "a*b": { input: 1 } }, /prices\.a\*b/],
      [{ "gpt-x": { input: -1 } }, /prices\.gpt-x\.input/],
      [{ "gpt-x": { tokens: 1 } }, /prices\.gpt-x\.tokens/],
    ] as const) {
      const e = await proxyHost({ ...CONFIG, prices }).then((g) => (g.close(), null), (x) => x);
      expect(e).toBeInstanceOf(HostLoadError);
      expect((e as HostLoadError).logs.join("\n")).toMatch(field);
    }
  });
});
