// The usage record and the usage a client is shown: one and the same, counted once, estimated only
// where the provider said nothing, whatever the stream's fate (complete, silent about usage, cut by
// a budget, hung up on).
import { describe, it, expect } from "vitest";
import { Host } from "../../host/index.js";
import { WASM, proxyHost, send, answer, sseData, sseEvents, usageRecord } from "./helpers.js";

const CONFIG = {
  instances: [
    { name: "oa", provider: "openai", api_key: "k", models: ["gpt-*"] },
    { name: "cl", provider: "anthropic", api_key: "k", models: ["claude-*"] },
    { name: "ge", provider: "gemini", api_key: "k", models: ["gemini-*"] },
  ],
};

const oaChunk = (delta: object, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", created: 1, model: "gpt-4o", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
/** An OpenAI-format stream with no usage chunk (a server that ignores stream_options). */
const NO_USAGE = oaChunk({ role: "assistant", content: "" }) + oaChunk({ content: "Forty-two is the answer." }) + oaChunk({}, "stop") + "data: [DONE]\n\n";

const anEvent = (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
const MESSAGE_START = anEvent("message_start", {
  message: { id: "msg_1", type: "message", role: "assistant", model: "claude-x", content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 1234, output_tokens: 1 } },
});
const textDelta = (text: string) => anEvent("content_block_delta", { index: 0, delta: { type: "text_delta", text } });

async function budgetChain(limit = 300, margin = 5) {
  return Host.create({
    filters: [
      { name: "ai-ratelimit", wasm: "build/ai-ratelimit.wasm", allowOnHeadersStopIteration: true, configuration: {
        rules: [{ name: "tight", key: [], limit, window: "1m", strategy: "completion_tokens", stream_margin: margin }],
      } },
      { name: "ai-proxy", wasm: WASM, allowOnHeadersStopIteration: true, configuration: CONFIG },
    ],
  });
}

describe("ai-proxy: prompt estimate", () => {
  it("is the same for the same prompt whatever stream and stream_options say", async () => {
    const h = await proxyHost(CONFIG);
    const messages = [{ role: "system", content: "You are terse." }, { role: "user", content: [{ type: "text", text: "Summarise the plot of Hamlet in one line." }] }];
    const estimate = (body: object) => {
      const s = send(h, "/v1/chat/completions", body);
      s.completeHttpContext(); // the client hung up before any answer: the prompt is estimated
      const u = usageRecord(s);
      expect(u.source).toBe("estimate");
      return Number(u.prompt);
    };
    const plain = estimate({ model: "gpt-4o", messages });
    expect(plain).toBe(23); // 55 text bytes -> 14, 3 per message, 3 per request
    expect(estimate({ model: "gpt-4o", stream: true, messages })).toBe(plain);
    expect(estimate({ model: "gpt-4o", stream: true, stream_options: { include_usage: true }, messages })).toBe(plain);
    // The same conversation in Anthropic's format reads the same text.
    expect(estimateAnthropic(h)).toBe(plain);
  });
});

describe("ai-proxy: prompt estimate of token ids", () => {
  it("embeddings input as token ids, or lists of token ids, counts one token per id (it was 0)", async () => {
    const h = await proxyHost({ instances: [{ name: "oa", provider: "openai", api_key: "k", models: ["text-embedding-*"] }] });
    const estimate = (input: unknown) => {
      const s = send(h, "/v1/embeddings", { model: "text-embedding-3-small", input });
      expect(s.getSentLocalResponse()).toBeFalsy();
      s.completeHttpContext(); // no answer: the prompt is estimated
      const u = usageRecord(s);
      expect(u.source).toBe("estimate");
      return Number(u.prompt);
    };
    const ids = Array.from({ length: 3000 }, (_, i) => (i * 7919) % 100000);
    expect(estimate(ids)).toBe(3000);
    expect(estimate([ids.slice(0, 1000), ids.slice(1000, 1500), [42]])).toBe(1501);
    // Text stays text: 4 bytes a token.
    expect(estimate(["first text", "second ✓"])).toBe(5);
    h.close();
  });
});

describe("ai-proxy: prompt estimate, members that are not text", () => {
  it("counts no string under a NOT_TEXT member, and counts members of the same length that are text", async () => {
    const h = await proxyHost(CONFIG);
    const estimate = (part: object) => {
      const s = send(h, "/v1/chat/completions", { model: "gpt-4o", messages: [{ role: "user", content: [{ type: "text", text: "Hello", ...part }] }] });
      s.completeHttpContext();
      return Number(usageRecord(s).prompt);
    };
    const plain = estimate({});
    const x = "x".repeat(400); // 100 tokens if counted
    for (const k of ["role", "type", "id", "tool_call_id", "tool_use_id", "cache_control", "image_url", "source", "signature", "media_type", "detail", "input_audio", "file"]) {
      expect(estimate({ [k]: x }), k).toBe(plain);
    }
    for (const k of ["ix", "name", "Type", "sourc3", "image_uri", "media_typo", "input_audi0", "tool_call_ix", "cache_contro1", "description"]) {
      expect(estimate({ [k]: x }), k).toBe(plain + 100);
    }
    h.close();
  });
});

function estimateAnthropic(h: Host): number {
  const s = send(h, "/v1/messages", {
    model: "claude-x", max_tokens: 50, stream: true, system: "You are terse.",
    messages: [{ role: "user", content: [{ type: "text", text: "Summarise the plot of Hamlet in one line." }] }],
  });
  s.completeHttpContext();
  // 1 message here, the system prompt is no message: 14 + 3 + 3 = 20, plus the system's 3.
  return Number(usageRecord(s).prompt) + 3;
}

describe("ai-proxy: usage after a hang-up", () => {
  it("keeps the input_tokens an Anthropic provider reported in message_start", async () => {
    const h = await proxyHost(CONFIG);
    for (const client of ["/v1/messages", "/v1/chat/completions"]) {
      const s = send(h, client, { model: "claude-x", max_tokens: 100, stream: true, messages: [{ role: "user", content: "go" }] });
      s.callOnResponseHeaders({ ":status": "200", "content-type": "text/event-stream" }, false);
      s.callOnResponseBody(MESSAGE_START + anEvent("content_block_start", { index: 0, content_block: { type: "text", text: "" } }) + textDelta("abcdefgh".repeat(5)), false);
      s.completeHttpContext(); // the client went away mid-stream
      expect(usageRecord(s)).toMatchObject({ prompt: "1234", completion: "10", total: "1244", source: "estimate" });
    }
  });

  it("keeps the prompt count a Gemini provider reported in its first chunk", async () => {
    const h = await proxyHost(CONFIG);
    const s = send(h, "/v1/chat/completions", { model: "gemini-x", stream: true, messages: [{ role: "user", content: "go" }] });
    s.callOnResponseHeaders({ ":status": "200", "content-type": "text/event-stream" }, false);
    s.callOnResponseBody(`data: ${JSON.stringify({ candidates: [{ content: { role: "model", parts: [{ text: "abcdefgh".repeat(5) }] }, index: 0 }], usageMetadata: { promptTokenCount: 777 } })}\n\n`, false);
    s.completeHttpContext();
    expect(usageRecord(s)).toMatchObject({ prompt: "777", completion: "10", source: "estimate" });
  });
});

describe("ai-proxy: the usage chunk an OpenAI client asked for", () => {
  it("is sent, estimated, when an OpenAI-format provider sends none (native pass-through)", async () => {
    const h = await proxyHost(CONFIG);
    const s = send(h, "/v1/chat/completions", { model: "gpt-4o", stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "Hi" }] });
    const data = sseData(answer(s, 200, "text/event-stream", [NO_USAGE]));
    expect(data.at(-1)).toBe("[DONE]");
    const last = JSON.parse(data.at(-2)!);
    expect(last).toMatchObject({ id: "c1", object: "chat.completion.chunk", model: "gpt-4o", choices: [] });
    const rec = usageRecord(s);
    expect(rec.source).toBe("estimate");
    expect(last.usage).toMatchObject({ prompt_tokens: Number(rec.prompt), completion_tokens: Number(rec.completion), total_tokens: Number(rec.total) });
    expect(last.usage.completion_tokens).toBe(6); // "Forty-two is the answer." is 24 characters
    // Every provider chunk went out as it came, the usage chunk just before [DONE].
    expect(data.slice(0, 3)).toEqual(NO_USAGE.split("\n\n").slice(0, 3).map((e) => e.slice(6)));
  });

  it("is the provider's own when the provider sends one (passed through as it came)", async () => {
    const h = await proxyHost(CONFIG);
    const s = send(h, "/v1/chat/completions", { model: "gpt-4o", stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "Hi" }] });
    const withUsage = NO_USAGE.replace("data: [DONE]", `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", created: 1, model: "gpt-4o", choices: [], usage: { prompt_tokens: 8, completion_tokens: 7, total_tokens: 15 } })}\n\ndata: [DONE]`);
    expect(answer(s, 200, "text/event-stream", [withUsage])).toBe(withUsage);
    expect(usageRecord(s)).toMatchObject({ prompt: "8", completion: "7", source: "provider" });
  });

  it("is sent, estimated, when a stream request got one JSON answer without usage (replayed as a stream)", async () => {
    const h = await proxyHost(CONFIG);
    const s = send(h, "/v1/chat/completions", { model: "gpt-4o", stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "Hi" }] });
    const json = { id: "c1", object: "chat.completion", created: 1, model: "gpt-4o", choices: [{ index: 0, message: { role: "assistant", content: "Forty-two is the answer." }, finish_reason: "stop" }] };
    const data = sseData(answer(s, 200, "application/json", [JSON.stringify(json)]));
    expect(data.at(-1)).toBe("[DONE]");
    const last = JSON.parse(data.at(-2)!);
    const rec = usageRecord(s);
    expect(rec).toMatchObject({ completion: "6", source: "estimate" });
    expect(last.usage).toMatchObject({ prompt_tokens: Number(rec.prompt), completion_tokens: 6, total_tokens: Number(rec.total) });
  });

  it("is sent, estimated, when a translated provider reports none", async () => {
    const h = await proxyHost(CONFIG);
    const s = send(h, "/v1/chat/completions", { model: "claude-x", max_tokens: 50, stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "Hi" }] });
    // An Anthropic-format stream whose message_delta has no usage.
    const body = MESSAGE_START + anEvent("content_block_start", { index: 0, content_block: { type: "text", text: "" } }) + textDelta("Forty-two is the answer.")
      + anEvent("content_block_stop", { index: 0 }) + anEvent("message_delta", { delta: { stop_reason: "end_turn", stop_sequence: null } }) + anEvent("message_stop", {});
    const data = sseData(answer(s, 200, "text/event-stream", [body]));
    const last = JSON.parse(data.at(-2)!);
    expect(last.usage).toMatchObject({ prompt_tokens: 1234, completion_tokens: 6, total_tokens: 1240 });
    expect(usageRecord(s)).toMatchObject({ prompt: "1234", completion: "6", total: "1240" });
  });
});

// 200 chunks of 40 characters: about 2,000 tokens, far past the budget (about 300; a provider that
// ignores the limit the gateway asked for is cut at twice that).
const LONG_TEXT = Array.from({ length: 200 }, (_, i) => `${String(i).padStart(3, "0")} the quick brown fox jumps over it.`);

describe("ai-proxy: usage under a stream budget", () => {
  it("an OpenAI client that asked for usage gets a usage chunk after a cut, equal to the record", async () => {
    const h = await budgetChain();
    const s = send(h, "/v1/chat/completions", { model: "gpt-4o", max_tokens: 20, stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "go" }] });
    s.callOnResponseHeaders({ ":status": "200", "content-type": "text/event-stream" }, false);
    for (const t of LONG_TEXT) s.callOnResponseBody(oaChunk({ content: t }), false);
    s.completeHttpContext();
    const data = sseData(s.downstream.body.toString());
    expect(data.at(-1)).toBe("[DONE]");
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    expect(chunks.at(-2).choices[0].finish_reason).toBe("length");
    const last = chunks.at(-1);
    expect(last.choices).toEqual([]);
    const delivered = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
    expect(last.usage.completion_tokens).toBe(Math.ceil(delivered.length / 4));
    expect(last.usage.total_tokens).toBe(last.usage.prompt_tokens + last.usage.completion_tokens);
    // The provider was stopped at its next chunk (the stream reset after the ending went out),
    // and what it produced until then is charged: what was delivered and the chunk in flight.
    expect(s.reset).toBe("wasm_close_stream");
    const rec = usageRecord(s);
    expect(rec).toMatchObject({ prompt: String(last.usage.prompt_tokens), source: "estimate" });
    expect(Number(rec.completion)).toBe(Math.ceil((delivered.length + LONG_TEXT[0].length) / 4));
    expect(Number(rec.completion)).toBeLessThan(1000); // the provider had 2,000 to go
  });

  it("an Anthropic client sees the provider's input tokens at message_start and the output in the final message_delta", async () => {
    const h = await budgetChain();
    const s = send(h, "/v1/messages", { model: "claude-x", max_tokens: 20, stream: true, messages: [{ role: "user", content: "go" }] });
    s.callOnResponseHeaders({ ":status": "200", "content-type": "text/event-stream" }, false);
    s.callOnResponseBody(MESSAGE_START + anEvent("content_block_start", { index: 0, content_block: { type: "text", text: "" } }), false);
    for (const t of LONG_TEXT) s.callOnResponseBody(textDelta(t), false);
    s.completeHttpContext();
    const events = sseEvents(s.downstream.body.toString());
    const start = JSON.parse(events.find((e) => e.event === "message_start")!.data);
    expect(start.message.usage.input_tokens).toBe(1234);
    const delta = JSON.parse(events.filter((e) => e.event === "message_delta").at(-1)!.data);
    expect(delta.delta.stop_reason).toBe("max_tokens");
    const text = events.filter((e) => e.event === "content_block_delta").map((e) => JSON.parse(e.data).delta.text).join("");
    expect(delta.usage.output_tokens).toBe(Math.ceil(text.length / 4));
    expect(delta.usage.input_tokens).toBe(1234);
    expect(events.at(-1)!.event).toBe("message_stop");
    // Charged: the provider's input tokens, and the output delivered plus the chunk in flight
    // when the provider was stopped.
    expect(s.reset).toBe("wasm_close_stream");
    expect(usageRecord(s)).toMatchObject({ prompt: "1234", completion: String(Math.ceil((text.length + LONG_TEXT[0].length) / 4)) });
  });
});
