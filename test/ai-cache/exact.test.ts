// ai-cache's exact cache through the compiled modules: a miss's answer kept from ai-proxy's record of
// it, the same request answered from the cache (JSON, or the stream the client asked for, in its own
// API), what is never kept, and scopes.
import { describe, it, expect } from "vitest";
import { cacheChain, ask, reply, header, got, isHit, openaiAnswer, openaiStream, sseData } from "./helpers.js";

const CHAT = "/v1/chat/completions";
const Q = { model: "gpt-4o", messages: [{ role: "user", content: "What is the capital of France?" }], temperature: 0 };

describe("ai-cache: exact hits", () => {
  it("keeps a complete answer and answers the same request from the cache, with the usage record of a hit", async () => {
    const h = await cacheChain();
    const first = await ask(h, CHAT, Q);
    expect(first.upstream.headers).not.toBeNull();
    reply(first, "application/json", [openaiAnswer("Paris.")]);
    expect(header(first, "x-sluice-cache")).toBe("miss");
    expect(first.getFilterState("sluice.cache")).toBe("miss");

    const second = await ask(h, CHAT, Q);
    const r = got(second);
    expect(r.status).toBe(200);
    expect(header(second, "x-sluice-cache")).toBe("hit");
    expect(second.upstream.headers).toBeNull(); // no provider asked
    const body = JSON.parse(r.body);
    expect(body.object).toBe("chat.completion");
    expect(body.choices[0].message.content).toBe("Paris.");
    expect(body.usage).toMatchObject({ prompt_tokens: 12, completion_tokens: 9 });
    // The usage record: the provider produced nothing for this request.
    expect(second.getFilterState("sluice.cache")).toBe("hit");
    expect(second.getFilterState("sluice.prompt_tokens")).toBe("0");
    expect(second.getFilterState("sluice.completion_tokens")).toBe("0");
    expect(second.getFilterState("sluice.usage_source")).toBe("cache");
    expect(second.getFilterState("sluice.cache_saved_tokens")).toBe("21");
    expect(second.getFilterState("sluice.request_type")).toBe("ai_chat");
    expect(h.getMetric("sluice.cache_requests;outcome=hit;reason=exact")?.value).toBe(1n);
    expect(h.getMetric("sluice.cache_requests;outcome=miss;reason=none")?.value).toBe(1n);
    expect(h.getMetric("sluice.cache_saved_tokens")?.value).toBe(21n);
  });

  it("matches the same request however its JSON is laid out, and not one that differs in what the model reads", async () => {
    const h = await cacheChain();
    reply(await ask(h, CHAT, Q), "application/json", [openaiAnswer("Paris.")]);
    // Members reordered, stream options and user changed: the same question.
    const same = await ask(h, CHAT, { temperature: 0, user: "u-9", messages: [{ content: "What is the capital of France?", role: "user" }], model: "gpt-4o" });
    expect(header(same, "x-sluice-cache")).toBe("hit");
    for (const other of [
      { ...Q, temperature: 1 },
      { ...Q, model: "gpt-4o-mini" },
      { ...Q, messages: [{ role: "system", content: "Answer in German." }, ...Q.messages] },
      { ...Q, messages: [{ role: "user", content: "What is the capital of Spain?" }] },
    ]) {
      const s = await ask(h, CHAT, other);
      expect(s.getSentLocalResponse()).toBeNull();
      expect(s.upstream.headers).not.toBeNull();
    }
  });

  it("replays a whole answer as the stream a client asks for, in pieces, with [DONE]", async () => {
    const h = await cacheChain({ replay_chunk_chars: 8 });
    const text = "The capital of France is Paris, on the Seine.";
    reply(await ask(h, CHAT, Q), "application/json", [openaiAnswer(text)]);
    const s = await ask(h, CHAT, { ...Q, stream: true, stream_options: { include_usage: true } });
    const local = s.getSentLocalResponse()!;
    expect(local.headers).toContainEqual(["content-type", "text/event-stream"]);
    expect(local.headers).toContainEqual(["x-sluice-cache", "hit"]);
    const data = sseData(local.body.toString());
    expect(data.at(-1)).toBe("[DONE]");
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    const deltas = chunks.flatMap((c) => c.choices.map((ch: any) => ch.delta?.content ?? "")).filter(Boolean);
    expect(deltas.join("")).toBe(text);
    expect(deltas.length).toBeGreaterThan(3); // pieces, not one event
    expect(chunks.find((c) => c.usage)?.usage).toMatchObject({ prompt_tokens: 12, completion_tokens: 9 });
    expect(s.getFilterState("sluice.request_type")).toBe("ai_stream");
  });

  it("replays to Gemini's own API: whole, as SSE, and as the JSON-array stream without alt=sse", async () => {
    const h = await cacheChain();
    const body = { contents: [{ role: "user", parts: [{ text: "What is the capital of France?" }] }] };
    const gem = (stream: string) => `/v1beta/models/gemini-2.5-flash:${stream}`;
    const first = await ask(h, gem("generateContent"), body);
    reply(first, "application/json", [JSON.stringify({
      candidates: [{ content: { role: "model", parts: [{ text: "The capital of France is Paris." }] }, finishReason: "STOP", index: 0 }],
      usageMetadata: { promptTokenCount: 8, candidatesTokenCount: 7, totalTokenCount: 15 }, modelVersion: "gemini-2.5-flash",
    })]);
    const whole = await ask(h, gem("generateContent"), body);
    expect(isHit(whole)).toBe(true);
    expect(JSON.parse(got(whole).body).candidates[0].content.parts[0].text).toBe("The capital of France is Paris.");
    const sse = await ask(h, gem("streamGenerateContent?alt=sse"), body);
    expect(header(sse, "content-type")).toBe("text/event-stream");
    const chunks = sseData(got(sse).body).map((d) => JSON.parse(d));
    expect(chunks.map((c) => c.candidates[0].content.parts.map((p: any) => p.text ?? "").join("")).join("")).toBe("The capital of France is Paris.");
    expect(chunks.at(-1).usageMetadata).toMatchObject({ promptTokenCount: 8, candidatesTokenCount: 7 });
    const array = await ask(h, gem("streamGenerateContent"), body);
    expect(header(array, "content-type")).toBe("application/json");
    const items = JSON.parse(got(array).body);
    expect(Array.isArray(items)).toBe(true);
    expect(items.map((c: any) => c.candidates[0].content.parts.map((p: any) => p.text ?? "").join("")).join("")).toBe("The capital of France is Paris.");
  });

  it("keeps a streamed answer and serves it whole to a client that does not stream", async () => {
    const h = await cacheChain();
    const first = await ask(h, CHAT, { ...Q, stream: true });
    reply(first, "text/event-stream", openaiStream(["The capital ", "is Paris."]));
    expect(h.getMetric("sluice.cache_stores;outcome=stored")?.value).toBe(1n);
    const s = await ask(h, CHAT, Q);
    const body = JSON.parse(got(s).body);
    expect(body.choices[0].message.content).toBe("The capital is Paris.");
    expect(body.choices[0].finish_reason).toBe("stop");
    expect(body.usage.completion_tokens).toBe(9);
  });
});

describe("ai-cache: never kept", () => {
  it("keeps no error, no stream cut short, and no answer that calls a tool", async () => {
    const h = await cacheChain();
    reply(await ask(h, CHAT, Q), "application/json", [JSON.stringify({ error: { message: "overloaded", type: "server_error" } })], 503);
    expect(isHit(await ask(h, CHAT, Q))).toBe(false);

    const cut = await ask(h, CHAT, { ...Q, stream: true });
    reply(cut, "text/event-stream", openaiStream(["The capital "]).slice(0, 2)); // no finish, no [DONE]
    expect(isHit(await ask(h, CHAT, Q))).toBe(false);

    const tools = { ...Q, tools: [{ type: "function", function: { name: "lookup", parameters: { type: "object" } } }] };
    reply(await ask(h, CHAT, tools), "application/json", [JSON.stringify({
      id: "c", object: "chat.completion", created: 1, model: "gpt-4o",
      choices: [{ index: 0, message: { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "lookup", arguments: "{}" } }] }, finish_reason: "tool_calls" }],
      usage: { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 },
    })]);
    expect(h.getMetric("sluice.cache_stores;outcome=tool_calls")?.value).toBe(1n);
    expect(isHit(await ask(h, CHAT, tools))).toBe(false);
  });

  it("caches tool calls when configured to, and replays them in the stream", async () => {
    const h = await cacheChain({ cache_tool_calls: true });
    const tools = { ...Q, tools: [{ type: "function", function: { name: "lookup", parameters: { type: "object" } } }] };
    reply(await ask(h, CHAT, tools), "application/json", [JSON.stringify({
      id: "c", object: "chat.completion", created: 1, model: "gpt-4o",
      choices: [{ index: 0, message: { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "lookup", arguments: "{\"city\":\"Paris\"}" } }] }, finish_reason: "tool_calls" }],
      usage: { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 },
    })]);
    const s = await ask(h, CHAT, { ...tools, stream: true });
    const chunks = sseData(got(s).body).slice(0, -1).map((d) => JSON.parse(d));
    const calls = chunks.flatMap((c) => c.choices.flatMap((ch: any) => ch.delta?.tool_calls ?? []));
    expect(calls[0].function.name).toBe("lookup");
    expect(calls.map((c: any) => c.function.arguments ?? "").join("")).toBe("{\"city\":\"Paris\"}");
    expect(chunks.at(-1).choices[0]?.finish_reason ?? chunks.find((c) => c.choices[0]?.finish_reason)?.choices[0].finish_reason).toBe("tool_calls");
  });

  it("bypasses on cache-control: no-cache and x-sluice-cache: bypass, and keeps nothing of those", async () => {
    const h = await cacheChain();
    const a = await ask(h, CHAT, Q, { headers: { "cache-control": "no-cache" } });
    reply(a, "application/json", [openaiAnswer("Paris.")]);
    expect(header(a, "x-sluice-cache")).toBe("bypass");
    const b = await ask(h, CHAT, Q, { headers: { "x-sluice-cache": "bypass" } });
    // The client's own header never reaches the provider.
    expect(b.upstream.headers?.find(([k]) => k === "x-sluice-cache")).toBeUndefined();
    reply(b, "application/json", [openaiAnswer("Paris.")]);
    expect(isHit(await ask(h, CHAT, Q))).toBe(false);
    expect(h.getMetric("sluice.cache_requests;outcome=bypass;reason=cache_control")?.value).toBe(1n);
    expect(h.getMetric("sluice.cache_requests;outcome=bypass;reason=header")?.value).toBe(1n);
  });

  it("keeps no answer past max_entry_bytes", async () => {
    const h = await cacheChain({ max_entry_bytes: 1024 });
    reply(await ask(h, CHAT, Q), "application/json", [openaiAnswer("x".repeat(2000))]);
    expect(h.getMetric("sluice.cache_stores;outcome=too_large")?.value).toBe(1n);
    expect(isHit(await ask(h, CHAT, Q))).toBe(false);
  });
});

describe("ai-cache: scope", () => {
  it("never gives one consumer's answer to another, unless the scope is shared", async () => {
    const h = await cacheChain();
    reply(await ask(h, CHAT, Q, { state: { consumer: "alice" } }), "application/json", [openaiAnswer("Alice's answer.")]);
    const bob = await ask(h, CHAT, Q, { state: { consumer: "bob" } });
    expect(bob.getSentLocalResponse()).toBeNull();
    reply(bob, "application/json", [openaiAnswer("Bob's answer.")]);
    expect(JSON.parse(got(await ask(h, CHAT, Q, { state: { consumer: "alice" } })).body).choices[0].message.content).toBe("Alice's answer.");
    expect(JSON.parse(got(await ask(h, CHAT, Q, { state: { consumer: "bob" } })).body).choices[0].message.content).toBe("Bob's answer.");

    const shared = await cacheChain({ scope: "shared" });
    reply(await ask(shared, CHAT, Q, { state: { consumer: "alice" } }), "application/json", [openaiAnswer("Shared.")]);
    expect(header(await ask(shared, CHAT, Q, { state: { consumer: "bob" } }), "x-sluice-cache")).toBe("hit");
  });

  it("keys on the pool and the route's model: another pool is another answer", async () => {
    const h = await cacheChain();
    reply(await ask(h, CHAT, Q, { state: { consumer: "alice", pool: "fast" } }), "application/json", [openaiAnswer("Fast.")]);
    expect(isHit(await ask(h, CHAT, Q, { state: { consumer: "alice", pool: "smart" } }))).toBe(false);
    expect(header(await ask(h, CHAT, Q, { state: { consumer: "alice", pool: "fast" } }), "x-sluice-cache")).toBe("hit");
  });

  it("serves every worker from one store", async () => {
    const h = await cacheChain({}, { workers: 2 });
    reply(await ask(h, CHAT, Q, { worker: 0 }), "application/json", [openaiAnswer("Paris.")]);
    expect(header(await ask(h, CHAT, Q, { worker: 1 }), "x-sluice-cache")).toBe("hit");
  });
});
