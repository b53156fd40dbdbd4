// Mid-stream enforcement across the chain: ai-ratelimit grants a stream a completion budget
// (sluice.stream_budget) and ai-proxy ends the client's stream cleanly once it is spent.
import { describe, it, expect } from "vitest";
import { Host } from "../../host/index.js";
import { WASM, send, answer, sseData, sseEvents, usageRecord, foldResponsesStream } from "./helpers.js";

async function chain() {
  return Host.create({
    filters: [
      { name: "ai-ratelimit", wasm: "build/ai-ratelimit.wasm", allowOnHeadersStopIteration: true, configuration: {
        rules: [{ name: "tight", key: [], limit: 300, window: "1m", strategy: "completion_tokens", stream_margin: 5 }],
        default_max_tokens: 100, // reserved for a request without max_tokens
      } },
      { name: "ai-proxy", wasm: WASM, allowOnHeadersStopIteration: true, configuration: {
        instances: [{ name: "oa", provider: "openai", api_key: "k", models: ["gpt-*"] }, { name: "cl", provider: "anthropic", api_key: "k", models: ["claude-*"] }],
      } },
    ],
  });
}

const chunk = (text: string) => `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "gpt-4o", choices: [{ index: 0, delta: { content: text }, finish_reason: null }] })}\n\n`;
// 80 chunks of 40 characters: about 800 tokens, far past the budget.
const LONG = Array.from({ length: 80 }, (_, i) => chunk(`${String(i).padStart(2, "0")} the quick brown fox jumps over it. `)).join("")
  + `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "gpt-4o", choices: [], usage: { prompt_tokens: 10, completion_tokens: 800, total_tokens: 810 } })}\n\ndata: [DONE]\n\n`;

describe("mid-stream budget", () => {
  it("ends an OpenAI client's stream with finish_reason length and [DONE] once the budget is spent", async () => {
    const h = await chain();
    const s = send(h, "/v1/chat/completions", { model: "gpt-4o", max_tokens: 20, stream: true, messages: [{ role: "user", content: "go" }] });
    const budget = Number(s.getFilterState("sluice.stream_budget"));
    expect(budget).toBeGreaterThan(0);
    const parts = LONG.match(/[\s\S]{1,500}/g)!;
    const data = sseData(answer(s, 200, "text/event-stream", parts));
    expect(data.at(-1)).toBe("[DONE]");
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    expect(chunks.at(-1).choices[0].finish_reason).toBe("length");
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
    // The provider was asked for 20 tokens (below the budget, so left as it was) and streams on
    // regardless: the gateway cuts a provider that ignores its limit at twice the budget.
    expect(JSON.parse(s.upstream.body.toString()).max_tokens).toBe(20);
    expect(Math.ceil(text.length / 4)).toBeGreaterThan(2 * budget);
    expect(Math.ceil(text.length / 4)).toBeLessThanOrEqual(2 * budget + 15);
    expect(text.length).toBeLessThan(LONG.length / 3);
    expect(s.getFilterState("sluice.stream_cut")).toBe("budget");
    // The provider is stopped at its next chunk after the cut (the stream is reset once the
    // client's ending has gone out) and charged what it produced until then, not the 800 tokens
    // it would have gone on to generate.
    expect(s.reset).toBe("wasm_close_stream");
    const rec = usageRecord(s);
    expect(rec.source).toBe("estimate");
    expect(Number(rec.completion)).toBeGreaterThanOrEqual(Math.ceil(text.length / 4));
    expect(Number(rec.completion)).toBeLessThanOrEqual(Math.ceil(text.length / 4) + 2 * 125); // two 500-byte chunks in flight at most
  });

  it("a Responses client of an OpenAI instance: asked in chat format (the cut needs a stream the gateway writes), ended with response.incomplete at the budget", async () => {
    const h = await chain();
    const s = send(h, "/v1/responses", { model: "gpt-4o", max_output_tokens: 20, stream: true, input: "go" });
    expect(s.upstream.headers!.find(([k]) => k === ":path")![1]).toBe("/v1/chat/completions");
    const out = foldResponsesStream(answer(s, 200, "text/event-stream", LONG.match(/[\s\S]{1,500}/g)!));
    expect(out.types.at(-1)).toBe("response.incomplete");
    expect(out.final.incomplete_details).toEqual({ reason: "max_output_tokens" });
    expect(s.getFilterState("sluice.stream_cut")).toBe("budget");
    const rec = usageRecord(s);
    expect(rec.source).toBe("estimate");
    // The client is shown the usage at the cut; the record adds what was in flight after it.
    expect(out.final.usage.output_tokens).toBeGreaterThan(0);
    expect(out.final.usage.output_tokens).toBeLessThanOrEqual(Number(rec.completion));
  });

  it("charges the provider's own count when its stream ends in the chunk that was cut", async () => {
    const h = await chain();
    const s = send(h, "/v1/chat/completions", { model: "gpt-4o", max_tokens: 20, stream: true, messages: [{ role: "user", content: "go" }] });
    const data = sseData(answer(s, 200, "text/event-stream", [LONG]));
    expect(data.at(-1)).toBe("[DONE]");
    expect(s.reset).toBeNull();
    expect(usageRecord(s)).toMatchObject({ completion: "800", source: "provider" });
  });

  it("asks the provider for no more than the budget, so it stops there itself", async () => {
    const h = await chain();
    const msgs = [{ role: "user", content: "go" }];
    const upstreamBody = (s: ReturnType<typeof send>) => JSON.parse(s.upstream.body.toString());
    // No limit from the client: max_completion_tokens (OpenAI's field) at the budget.
    let s = send(h, "/v1/chat/completions", { model: "gpt-4o", stream: true, messages: msgs });
    expect(upstreamBody(s).max_completion_tokens).toBe(Number(s.getFilterState("sluice.stream_budget")));
    s.completeHttpContext();
    // n choices share it.
    s = send(h, "/v1/chat/completions", { model: "gpt-4o", stream: true, n: 2, messages: msgs });
    expect(upstreamBody(s).max_completion_tokens).toBe(Math.floor(Number(s.getFilterState("sluice.stream_budget")) / 2));
    s.completeHttpContext();
    // A client limit is reserved at admission, so it is within the budget: it stays as it is.
    s = send(h, "/v1/messages", { model: "claude-x", stream: true, max_tokens: 50, messages: msgs });
    expect(upstreamBody(s).max_tokens).toBe(50);
    expect(Number(s.getFilterState("sluice.stream_budget"))).toBeGreaterThan(50);
  });

  it("a budget too small for a reasoning_effort's thinking is not asked of Anthropic (no 400 about a limit the client never set): the gateway cuts instead", async () => {
    const h = await chain();
    const s = send(h, "/v1/chat/completions", { model: "claude-x", stream: true, reasoning_effort: "low", messages: [{ role: "user", content: "go" }] });
    expect(s.getSentLocalResponse()).toBeNull();
    const body = JSON.parse(s.upstream.body.toString());
    expect(Number(s.getFilterState("sluice.stream_budget"))).toBeLessThanOrEqual(1024);
    expect(body.thinking).toEqual({ type: "enabled", budget_tokens: 1024 });
    expect(body.max_tokens).toBe(1024 + 4096);
    s.completeHttpContext();
  });

  it("cuts at the budget itself when the instance forces a larger limit", async () => {
    const h = await Host.create({
      filters: [
        { name: "ai-ratelimit", wasm: "build/ai-ratelimit.wasm", allowOnHeadersStopIteration: true, configuration: {
          rules: [{ name: "tight", key: [], limit: 300, window: "1m", strategy: "completion_tokens", stream_margin: 5 }],
        } },
        { name: "ai-proxy", wasm: WASM, allowOnHeadersStopIteration: true, configuration: { instances: [{ name: "oa", provider: "openai", api_key: "k", max_tokens: 4096 }] } },
      ],
    });
    const s = send(h, "/v1/chat/completions", { model: "gpt-4o", max_tokens: 20, stream: true, messages: [{ role: "user", content: "go" }] });
    const budget = Number(s.getFilterState("sluice.stream_budget"));
    expect(JSON.parse(s.upstream.body.toString()).max_completion_tokens).toBe(4096);
    const data = sseData(answer(s, 200, "text/event-stream", LONG.match(/[\s\S]{1,500}/g)!));
    const text = data.slice(0, -1).map((d) => JSON.parse(d)).map((c) => c.choices[0]?.delta?.content ?? "").join("");
    expect(Math.ceil(text.length / 4)).toBeGreaterThan(budget);
    expect(Math.ceil(text.length / 4)).toBeLessThanOrEqual(budget + 15);
  });

  it("ends an Anthropic client's stream with stop_reason max_tokens and message_stop", async () => {
    const h = await chain();
    const s = send(h, "/v1/messages", { model: "gpt-4o", max_tokens: 20, stream: true, messages: [{ role: "user", content: "go" }] });
    const events = sseEvents(answer(s, 200, "text/event-stream", [LONG]));
    expect(events.at(-1)!.event).toBe("message_stop");
    const delta = JSON.parse(events.find((e) => e.event === "message_delta")!.data);
    expect(delta.delta.stop_reason).toBe("max_tokens");
  });
});
