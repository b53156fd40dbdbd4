// An OpenAI client's stream from an OpenAI-format provider when the client did not ask for usage.
// ai-proxy asks the provider for it (stream_options.include_usage) to write the usage record, so
// the stream cannot pass through untouched; it is reframed instead: every provider chunk goes out
// with its data as the provider wrote it, so nothing the gateway does not model is lost (logprobs,
// system_fingerprint, service_tier, fields added later), and only what the gateway itself asked
// for (the usage) is taken out.
import { describe, it, expect, beforeAll, afterEach } from "vitest";
import { Host } from "../../host/index.js";
import { send, upstream, reply, usage, dataOf } from "../providers/helpers.js";

const CONFIG = {
  instances: [
    { name: "oa", provider: "openai", api_key: "sk-openai-test", models: ["gpt-*"] },
    { name: "mi", provider: "mistral", api_key: "sk-mistral-test", models: ["mistral-*"] },
  ],
};

const hosts: Host[] = [];
afterEach(() => {
  for (const h of hosts) expect(h.getLogEntries().filter((e) => /failed: Uncaught|abort/i.test(e.message))).toEqual([]);
});

const BASE = { id: "chatcmpl-AbC", object: "chat.completion.chunk", created: 1761000000, model: "gpt-4o-2024-08-06", service_tier: "default", system_fingerprint: "fp_f33640a400" };
const logprob = (token: string) => ({ content: [{ token, logprob: -0.01, bytes: [...Buffer.from(token)], top_logprobs: [] }], refusal: null });
// As OpenAI streams with logprobs on and include_usage (which the gateway added).
const CHUNKS = [
  { ...BASE, choices: [{ index: 0, delta: { role: "assistant", content: "", refusal: null }, logprobs: { content: [], refusal: null }, finish_reason: null }], usage: null, obfuscation: "x1" },
  { ...BASE, choices: [{ index: 0, delta: { content: "Hel" }, logprobs: logprob("Hel"), finish_reason: null }], usage: null, obfuscation: "x2" },
  { ...BASE, choices: [{ index: 0, delta: { content: "lo é🌍" }, logprobs: logprob("lo é🌍"), finish_reason: null }], usage: null, obfuscation: "x3" },
  { ...BASE, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }], usage: null, obfuscation: "x4" },
  { ...BASE, choices: [], usage: { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } }, obfuscation: "x5" },
];
const sse = (chunks: object[]) => chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`).join("") + "data: [DONE]\n\n";

describe("ai-proxy: an OpenAI stream reframed for a client that did not ask for usage", () => {
  let h: Host;
  beforeAll(async () => {
    h = await Host.create({ filters: [{ name: "ai-proxy", wasm: "build/ai-proxy.wasm", configuration: CONFIG, allowOnHeadersStopIteration: true }] });
    hosts.push(h);
  });

  it("passes every chunk as the provider wrote it, leaves out only the usage chunk, and still records the usage", () => {
    const s = send(h, { model: "gpt-4o", stream: true, logprobs: true, messages: [{ role: "user", content: "hi" }] });
    expect(upstream(s).stream_options).toEqual({ include_usage: true });
    const text = reply(s, 200, "text/event-stream", [sse(CHUNKS)]);
    expect(text).toBe(CHUNKS.slice(0, 4).map((c) => `data: ${JSON.stringify(c)}\n\n`).join("") + "data: [DONE]\n\n");
    expect(usage(s)).toMatchObject({ prompt: "9", completion: "3", total: "12", source: "provider" });
  });

  it("gives the same stream whatever the chunk boundaries, keep-alive comments in place", () => {
    const body = Buffer.from(": OPENROUTER PROCESSING\n\n" + sse(CHUNKS).replace("\n\n", "\n\n: keep-alive\n\n"));
    const whole = reply(send(h, { model: "gpt-4o", stream: true, messages: [{ role: "user", content: "hi" }] }), 200, "text/event-stream", [body]);
    for (const size of [1, 7, 64, 333]) {
      const parts: Buffer[] = [];
      for (let i = 0; i < body.length; i += size) parts.push(body.subarray(i, i + size));
      const s = send(h, { model: "gpt-4o", stream: true, messages: [{ role: "user", content: "hi" }] });
      expect(reply(s, 200, "text/event-stream", parts)).toBe(whole);
    }
    expect(whole.startsWith(": OPENROUTER PROCESSING\n\n")).toBe(true);
    expect(whole.indexOf(": keep-alive\n\n")).toBe(whole.indexOf("\n\n", whole.indexOf("data: ")) + 2);
  });

  it("takes usage out of a final chunk that also has choices (Mistral), keeping the rest", () => {
    const last = { id: "cmpl-1", object: "chat.completion.chunk", created: 1, model: "mistral-small-latest", choices: [{ index: 0, delta: { content: "" }, finish_reason: "stop", logprobs: null }], usage: { prompt_tokens: 5, total_tokens: 7, completion_tokens: 2 }, p: "abcd" };
    const first = { id: "cmpl-1", object: "chat.completion.chunk", created: 1, model: "mistral-small-latest", choices: [{ index: 0, delta: { role: "assistant", content: "Hi" }, finish_reason: null }], p: "efgh" };
    const s = send(h, { model: "mistral-small-latest", stream: true, messages: [{ role: "user", content: "hi" }] });
    const events = dataOf(reply(s, 200, "text/event-stream", [sse([first, last])]));
    const { usage: _dropped, ...rest } = last;
    expect(events).toEqual([first, rest, "[DONE]"]);
    expect(usage(s)).toMatchObject({ prompt: "5", completion: "2", source: "provider" });
  });

  it("a client that asked for usage gets the stream byte for byte", () => {
    const s = send(h, { model: "gpt-4o", stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "hi" }] });
    const body = sse(CHUNKS);
    expect(reply(s, 200, "text/event-stream", [body])).toBe(body);
  });

  it("drops what is not JSON, writes errors in OpenAI's shape, ends with [DONE], never passes invalid UTF-8", () => {
    const bad = Buffer.concat([
      Buffer.from(`data: ${JSON.stringify(CHUNKS[1])}\n\n`),
      Buffer.from("data: {not json\n\n: a comment\n\n"),
      Buffer.from(`data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"a`), Buffer.from([0xff]), Buffer.from(`b"}}]}\n\n`),
      Buffer.from(`data: {"error":{"message":"overloaded","type":"server_error","code":null}}\n\n`),
      Buffer.from(`data: ${JSON.stringify(CHUNKS[2])}\n\n`),
    ]);
    const s = send(h, { model: "gpt-4o", stream: true, messages: [{ role: "user", content: "hi" }] });
    s.callOnResponseHeaders({ ":status": "200", "content-type": "text/event-stream" }, false);
    s.callOnResponseBody(bad, true);
    s.completeHttpContext();
    const out = s.downstream.body;
    expect(out.includes(Buffer.from([0xff]))).toBe(false);
    // The comment passes on in place (a keep-alive); the event that is not JSON does not.
    expect(out.toString()).toContain(`data: ${JSON.stringify(CHUNKS[1])}\n\n: a comment\n\ndata: {"id":"c"`);
    const events = dataOf(out.toString().replace(/^:.*\n\n/gm, ""));
    expect(events[0]).toEqual(CHUNKS[1]);
    expect(events[1].choices[0].delta.content).toBe("a\ufffdb");
    expect(events[2].error).toMatchObject({ message: expect.stringContaining("overloaded"), type: expect.any(String) });
    expect(events.slice(3)).toEqual(["[DONE]"]); // nothing after the error but the end
  });

  it("a chunk with an \"error\" member that is no error loses it; data in several lines goes out in one (both found by the fuzz test)", () => {
    const s = send(h, { model: "gpt-4o", stream: true, messages: [{ role: "user", content: "hi" }] });
    const text = reply(s, 200, "text/event-stream", [
      `data: {"id":"c","object":"chat.completion.chunk","error":null,"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n`
      + `data: {"id":"c","object":"chat.completion.chunk","error":"","choices":[]}\n\n`
      + `data: {"id":"c",\ndata: "object":"chat.completion.chunk",\ndata: "choices":[{"index":0,"delta":{"content":"b"}}]}\n\n`
      + "data: [DONE]\n\n",
    ]);
    for (const block of text.split("\n\n").filter(Boolean)) expect(block.split("\n"), block).toHaveLength(1);
    expect(dataOf(text)).toEqual([
      { id: "c", object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: "a" } }] },
      { id: "c", object: "chat.completion.chunk", choices: [] },
      { id: "c", object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: "b" } }] },
      "[DONE]",
    ]);
  });

  it("a stream cut short ends with an error and [DONE]", () => {
    const s = send(h, { model: "gpt-4o", stream: true, messages: [{ role: "user", content: "hi" }] });
    const events = dataOf(reply(s, 200, "text/event-stream", [`data: ${JSON.stringify(CHUNKS[1])}\n\n`]));
    expect(events[0]).toEqual(CHUNKS[1]);
    expect(events[1].error.code).toBe("upstream_incomplete");
    expect(events[2]).toBe("[DONE]");
  });
});
