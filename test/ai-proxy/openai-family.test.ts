// ai-proxy with OpenAI-dialect providers (OpenAI, Azure OpenAI, DeepSeek, Mistral,
// OpenAI-compatible servers), for OpenAI and Anthropic clients, through build/ai-proxy.wasm.
import { describe, it, expect, beforeAll } from "vitest";
import type { Host } from "../../host/index.js";
import { proxyHost, send, upstreamJson, answer, header, sseData, sseEvents, usageRecord } from "./helpers.js";

const CONFIG = {
  instances: [
    { name: "oa", provider: "openai", api_key: "sk-provider-oa", models: ["gpt-*"], options: { temperature: 0.1 } },
    { name: "az", provider: "azure-openai", api_key: "az-key", endpoint: "https://res.openai.azure.com/openai", deployment: "gpt4o-prod", models: ["azure-gpt"], api_version: "2024-10-21" },
    { name: "ds", provider: "deepseek", api_key: "ds-key", models: ["deepseek-*"] },
    { name: "mi", provider: "mistral", api_key: "mi-key", models: ["mistral-*"] },
    { name: "local", provider: "openai-compatible", endpoint: "http://vllm.internal:8000/v1", models: ["llama-*"], model_map: { "llama-big": "meta-llama/Llama-3.3-70B-Instruct" } },
    { name: "fixed", provider: "openai", api_key: "sk-fixed", model: "gpt-4o-mini", max_tokens: 256, models: ["cheap"] },
  ],
};

const CHAT = { model: "gpt-4o", messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hello" }] };

const OPENAI_ANSWER = {
  id: "chatcmpl-1", object: "chat.completion", created: 1700000000, model: "gpt-4o-2024-08-06",
  choices: [{ index: 0, message: { role: "assistant", content: "Hi there!", refusal: null }, logprobs: null, finish_reason: "stop" }],
  usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15, prompt_tokens_details: { cached_tokens: 4 }, completion_tokens_details: { reasoning_tokens: 0 } },
};

function chunk(delta: object, finish: string | null = null, extra: object = {}) {
  return `data: ${JSON.stringify({ id: "chatcmpl-s", object: "chat.completion.chunk", created: 1700000001, model: "gpt-4o", choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], usage: null, ...extra })}\n\n`;
}
const USAGE_CHUNK = `data: ${JSON.stringify({ id: "chatcmpl-s", object: "chat.completion.chunk", created: 1700000001, model: "gpt-4o", choices: [], usage: { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 } })}\n\n`;
const OPENAI_STREAM = [
  chunk({ role: "assistant", content: "" }), chunk({ content: "Hel" }), chunk({ content: "lo" }), chunk({}, "stop"), USAGE_CHUNK, "data: [DONE]\n\n",
].join("");

describe("ai-proxy: OpenAI provider, OpenAI client", () => {
  let h: Host;
  beforeAll(async () => {
    h = await proxyHost(CONFIG);
  });

  it("targets the instance: path, authority, cluster header, credential, route cache", () => {
    const s = send(h, "/v1/chat/completions", CHAT);
    expect(s.getSentLocalResponse()).toBeNull();
    const up = s.upstream.headers!;
    expect(header(up, ":path")).toBe("/v1/chat/completions");
    expect(header(up, ":authority")).toBe("api.openai.com");
    expect(header(up, "x-sluice-cluster")).toBe("oa");
    expect(header(up, "authorization")).toBe("Bearer sk-provider-oa");
    expect(header(up, "accept-encoding")).toBeUndefined();
    expect(header(up, "content-length")).toBeUndefined();
    expect(s.routeCacheClears).toBeGreaterThan(0);
    const body = upstreamJson(s);
    expect(body.model).toBe("gpt-4o");
    expect(body.messages).toEqual(CHAT.messages);
    expect(body.temperature).toBe(0.1); // operator option merged
  });

  it("never forwards the client's own credentials", () => {
    const s = send(h, "/v1/chat/completions", CHAT, { "x-api-key": "client-anthropic-key", "api-key": "client-azure-key" });
    const up = s.upstream.headers!;
    expect(up.map(([, v]) => v).join("\n")).not.toContain("client-");
  });

  it("passes an OpenAI answer through untouched and writes the usage record", () => {
    const s = send(h, "/v1/chat/completions", CHAT);
    const out = answer(s, 200, "application/json", [JSON.stringify(OPENAI_ANSWER)]);
    expect(JSON.parse(out)).toEqual(OPENAI_ANSWER);
    expect(usageRecord(s)).toEqual({ prompt: "12", completion: "3", total: "15", cached: "4", reasoning: "0", source: "provider" });
    expect(s.getFilterState("sluice.request_type")).toBe("ai_chat");
    expect(s.getFilterState("sluice.request_model")).toBe("gpt-4o");
    expect(s.getFilterState("sluice.model")).toBe("gpt-4o-2024-08-06");
    expect(s.getFilterState("sluice.provider")).toBe("openai");
    expect(s.getFilterState("sluice.instance")).toBe("oa");
    expect(Number(s.getFilterState("sluice.ttft_ms"))).toBeGreaterThanOrEqual(0);
  });

  it("streams: forces include_usage upstream, hides the usage chunk from a client that did not ask", () => {
    const s = send(h, "/v1/chat/completions", { ...CHAT, stream: true });
    expect(upstreamJson(s).stream_options).toEqual({ include_usage: true });
    expect(s.getFilterState("sluice.request_type")).toBe("ai_stream");
    const out = answer(s, 200, "text/event-stream", [OPENAI_STREAM]);
    const data = sseData(out);
    expect(data.at(-1)).toBe("[DONE]");
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    expect(chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("")).toBe("Hello");
    expect(chunks.some((c) => c.usage)).toBe(false);
    expect(chunks.at(-1).choices[0].finish_reason).toBe("stop");
    expect(usageRecord(s)).toMatchObject({ prompt: "9", completion: "2", total: "11", source: "provider" });
  });

  it("streams usage to a client that asked for it, once, after the last choice", () => {
    const s = send(h, "/v1/chat/completions", { ...CHAT, stream: true, stream_options: { include_usage: true } });
    const data = sseData(answer(s, 200, "text/event-stream", [OPENAI_STREAM]));
    const withUsage = data.filter((d) => d !== "[DONE]").map((d) => JSON.parse(d)).filter((c) => c.usage);
    expect(withUsage).toHaveLength(1);
    expect(withUsage[0].choices).toEqual([]);
    expect(withUsage[0].usage).toMatchObject({ prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 });
  });

  it("translates a stream whatever the chunk boundaries, even inside a UTF-8 character", () => {
    const text = chunk({ content: "héllo wörld 🌍" }) + chunk({}, "stop") + USAGE_CHUNK + "data: [DONE]\n\n";
    const bytes = Buffer.from(text);
    const whole = sseData(answer(send(h, "/v1/chat/completions", { ...CHAT, stream: true }), 200, "text/event-stream", [bytes]));
    for (const cut of [1, 7, 40, bytes.indexOf(Buffer.from("🌍")) + 1, bytes.indexOf(Buffer.from("é")) + 1]) {
      const parts = [bytes.subarray(0, cut), bytes.subarray(cut)];
      const out = sseData(answer(send(h, "/v1/chat/completions", { ...CHAT, stream: true }), 200, "text/event-stream", parts));
      expect(out).toEqual(whole);
    }
    expect(whole.map((d) => (d === "[DONE]" ? "" : JSON.parse(d).choices[0]?.delta?.content ?? "")).join("")).toBe("héllo wörld 🌍");
  });

  it("streams tool calls: id and name first, then argument pieces", () => {
    const stream = [
      chunk({ role: "assistant", content: null, tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "get_weather", arguments: "" } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: "{\"city\":" } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: "\"Paris\"}" } }] }),
      chunk({}, "tool_calls"), "data: [DONE]\n\n",
    ].join("");
    const s = send(h, "/v1/chat/completions", { ...CHAT, stream: true, tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object" } } }] });
    const chunks = sseData(answer(s, 200, "text/event-stream", [stream])).filter((d) => d !== "[DONE]").map((d) => JSON.parse(d));
    const calls = chunks.flatMap((c) => c.choices[0]?.delta?.tool_calls ?? []);
    expect(calls[0]).toMatchObject({ index: 0, id: "call_1", type: "function", function: { name: "get_weather" } });
    expect(calls.map((c) => c.function.arguments).join("")).toBe("{\"city\":\"Paris\"}");
    expect(chunks.at(-1).choices[0].finish_reason).toBe("tool_calls");
  });

  it("estimates usage (never zero) when the client hangs up mid-stream", () => {
    const s = send(h, "/v1/chat/completions", { ...CHAT, stream: true });
    s.callOnResponseHeaders({ ":status": "200", "content-type": "text/event-stream" }, false);
    s.callOnResponseBody(chunk({ content: "The answer is forty-two, and here is why." }), false);
    s.completeHttpContext(); // no end of stream: the client went away
    const u = usageRecord(s);
    expect(u.source).toBe("estimate");
    expect(Number(u.prompt)).toBeGreaterThan(0);
    expect(Number(u.completion)).toBeGreaterThan(0);
    expect(Number(u.total)).toBe(Number(u.prompt) + Number(u.completion));
  });

  it("estimates usage when chunks carry usage: null and no usage chunk comes", () => {
    const s = send(h, "/v1/chat/completions", { ...CHAT, stream: true });
    answer(s, 200, "text/event-stream", [chunk({ content: "Hello world" }) + chunk({}, "stop") + "data: [DONE]\n\n"]);
    expect(usageRecord(s).source).toBe("estimate");
    expect(Number(usageRecord(s).completion)).toBeGreaterThan(0);
  });

  it("ends a stream the provider cut short with an error event and [DONE], not a broken stream", () => {
    const s = send(h, "/v1/chat/completions", { ...CHAT, stream: true });
    const data = sseData(answer(s, 200, "text/event-stream", [chunk({ content: "Hel" })]));
    expect(data.at(-1)).toBe("[DONE]");
    expect(JSON.parse(data.at(-2)!).error.code).toBe("upstream_incomplete");
  });

  it("passes provider errors through in OpenAI's format with the provider's status", () => {
    const s = send(h, "/v1/chat/completions", CHAT);
    const body = { error: { message: "Rate limit reached for gpt-4o", type: "tokens", param: null, code: "rate_limit_exceeded" } };
    const out = answer(s, 429, "application/json", [JSON.stringify(body)], { "retry-after": "7" });
    expect(s.downstream.headers!.find(([k]) => k === ":status")![1]).toBe("429");
    expect(header(s.downstream.headers, "retry-after")).toBe("7");
    expect(JSON.parse(out)).toEqual({ error: { message: "Rate limit reached for gpt-4o", type: "tokens", param: null, code: "rate_limit_exceeded" } });
    expect(usageRecord(s)).toMatchObject({ total: "0", source: "provider" });
  });

  it("turns Envoy's plain-text connect failure into a 502 JSON error", () => {
    const s = send(h, "/v1/chat/completions", CHAT);
    const out = answer(s, 503, "text/plain", ["upstream connect error or disconnect/reset before headers. reset reason: connection failure"]);
    const e = JSON.parse(out).error;
    expect(e.code).toBe("upstream_unreachable");
    expect(e.message).not.toContain("reset reason");
  });

  it("counts requests, tokens, errors, TTFT and duration per provider, model and consumer", async () => {
    const m = await proxyHost(CONFIG);
    const ok = send(m, "/v1/chat/completions", CHAT);
    answer(ok, 200, "application/json", [JSON.stringify(OPENAI_ANSWER)]);
    const err = send(m, "/v1/chat/completions", CHAT);
    answer(err, 500, "application/json", [JSON.stringify({ error: { message: "boom", type: "server_error" } })]);
    send(m, "/v1/chat/completions", "{bad json");
    // gpt-4o reaches "oa" through its wildcard (gpt-*): not a configured name, so labelled "other".
    const labels = ";provider=openai;model=other;consumer=anonymous";
    expect(m.getMetric(`sluice.ai_requests${labels};request_type=ai_chat`)?.value).toBe(2n);
    expect(m.getMetric(`sluice.ai_prompt_tokens${labels}`)?.value).toBe(12n);
    expect(m.getMetric(`sluice.ai_completion_tokens${labels}`)?.value).toBe(3n);
    expect(m.getMetric(`sluice.ai_errors${labels};status=500`)?.value).toBe(1n);
    expect(m.getMetric("sluice.ai_errors;provider=none;model=none;consumer=anonymous;status=400")?.value).toBe(1n);
    expect(m.getMetric("sluice.ai_ttft_ms;provider=openai;model=other")?.samples).toHaveLength(2);
    expect(m.getMetric("sluice.ai_duration_ms;provider=openai;model=other")?.samples).toHaveLength(2);
  });

  it("answers GET /v1/models from the configuration", () => {
    const s = h.newStream();
    s.callOnRequestHeaders({ ":method": "GET", ":path": "/v1/models", ":authority": "gw" }, true);
    const r = s.getSentLocalResponse()!;
    expect(r.statusCode).toBe(200);
    const ids = JSON.parse(r.body.toString()).data.map((m: { id: string }) => m.id);
    expect(ids).toEqual(expect.arrayContaining(["azure-gpt", "llama-big", "gpt-4o-mini", "cheap"]));
    expect(JSON.parse(r.body.toString()).object).toBe("list");
  });

  it("lets any other path through untouched as traditional_http", () => {
    const s = h.newStream();
    const action = s.callOnRequestHeaders({ ":method": "GET", ":path": "/healthz", ":authority": "gw", authorization: "Bearer x" }, true);
    expect(action).toBe("Continue");
    expect(header(s.upstream.headers, "authorization")).toBe("Bearer x");
    expect(s.getFilterState("sluice.request_type")).toBe("traditional_http");
  });
});

describe("ai-proxy: bad requests get OpenAI-style 4xx errors", () => {
  let h: Host;
  beforeAll(async () => {
    h = await proxyHost(CONFIG);
  });
  const cases: [string, unknown, number, RegExp][] = [
    ["malformed JSON", "{\"model\":", 400, /not valid JSON/],
    ["a JSON array", "[]", 400, /must be a JSON object/],
    ["no messages", { model: "gpt-4o" }, 400, /'messages' must be a non-empty list/],
    ["empty messages", { model: "gpt-4o", messages: [] }, 400, /non-empty/],
    ["model of the wrong type", { model: 4, messages: [{ role: "user", content: "x" }] }, 400, /'model' must be a string/],
    ["stream of the wrong type", { model: "gpt-4o", stream: "yes", messages: [{ role: "user", content: "x" }] }, 400, /'stream' must be true or false/],
    ["a model no instance serves", { model: "claude-3", messages: [{ role: "user", content: "x" }] }, 404, /No provider instance serves model 'claude-3'/],
    ["top_k for OpenAI", { model: "gpt-4o", top_k: 5, messages: [{ role: "user", content: "x" }] }, 400, /'top_k' is not supported by provider openai/],
    ["images for DeepSeek", { model: "deepseek-chat", messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://x/y.png" } }] }] }, 400, /Images are not supported by provider deepseek/],
  ];
  for (const [what, body, status, message] of cases) {
    it(`rejects ${what}`, () => {
      const s = send(h, "/v1/chat/completions", body);
      const r = s.getSentLocalResponse()!;
      expect(r.statusCode).toBe(status);
      expect(header(r.headers, "content-type")).toBe("application/json");
      const e = JSON.parse(r.body.toString()).error;
      expect(e.message).toMatch(message);
      expect(typeof e.type).toBe("string");
      expect(s.upstream.headers).toBeNull();
    });
  }

  it("rejects a body over max_request_body_bytes with 413", async () => {
    const small = await proxyHost({ ...CONFIG, max_request_body_bytes: 100 });
    const s = send(small, "/v1/chat/completions", { model: "gpt-4o", messages: [{ role: "user", content: "x".repeat(200) }] });
    expect(s.getSentLocalResponse()!.statusCode).toBe(413);
    expect(JSON.parse(s.getSentLocalResponse()!.body.toString()).error.code).toBe("request_too_large");
  });

  it("rejects a declared content-length over the limit before reading the body", async () => {
    const small = await proxyHost({ ...CONFIG, max_request_body_bytes: 100 });
    const s = small.newStream();
    s.callOnRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw", "content-length": "5000" }, false);
    expect(s.getSentLocalResponse()!.statusCode).toBe(413);
  });
});

describe("ai-proxy: OpenAI-dialect providers", () => {
  let h: Host;
  beforeAll(async () => {
    h = await proxyHost(CONFIG);
  });

  it("Azure: deployment URL, api-version, api-key header", () => {
    const s = send(h, "/v1/chat/completions", { ...CHAT, model: "azure-gpt" });
    expect(header(s.upstream.headers, ":path")).toBe("/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21");
    expect(header(s.upstream.headers, ":authority")).toBe("res.openai.azure.com");
    expect(header(s.upstream.headers, "api-key")).toBe("az-key");
    expect(header(s.upstream.headers, "authorization")).toBeUndefined();
  });

  it("Azure: embeddings go to the deployment's embeddings URL", () => {
    const s = send(h, "/v1/embeddings", { model: "azure-gpt", input: "hello" });
    expect(header(s.upstream.headers, ":path")).toBe("/openai/deployments/gpt4o-prod/embeddings?api-version=2024-10-21");
    const out = answer(s, 200, "application/json", [JSON.stringify({ object: "list", data: [{ object: "embedding", index: 0, embedding: [0.1, 0.2] }], model: "text-embedding-3-small", usage: { prompt_tokens: 1, total_tokens: 1 } })]);
    expect(JSON.parse(out).data[0].embedding).toEqual([0.1, 0.2]);
    expect(usageRecord(s)).toMatchObject({ prompt: "1", total: "1", source: "provider" });
  });

  it("DeepSeek: cache hits count as cached tokens, reasoning_content streams through", () => {
    const s = send(h, "/v1/chat/completions", { ...CHAT, model: "deepseek-reasoner" });
    expect(header(s.upstream.headers, ":path")).toBe("/chat/completions");
    expect(header(s.upstream.headers, ":authority")).toBe("api.deepseek.com");
    answer(s, 200, "application/json", [JSON.stringify({ ...OPENAI_ANSWER, usage: { prompt_tokens: 20, completion_tokens: 5, total_tokens: 25, prompt_cache_hit_tokens: 16, prompt_cache_miss_tokens: 4 } })]);
    expect(usageRecord(s)).toMatchObject({ prompt: "20", cached: "16" });
  });

  it("Mistral: max_completion_tokens becomes max_tokens, seed random_seed, user and stream_options dropped", () => {
    const s = send(h, "/v1/chat/completions", { ...CHAT, model: "mistral-large-latest", max_completion_tokens: 50, seed: 7, user: "u1", stream: true, stream_options: { include_usage: true } });
    const body = upstreamJson(s);
    expect(body.max_tokens).toBe(50);
    expect(body.random_seed).toBe(7);
    expect(body).not.toHaveProperty("max_completion_tokens");
    expect(body).not.toHaveProperty("user");
    expect(body).not.toHaveProperty("stream_options");
    expect(header(s.upstream.headers, "authorization")).toBe("Bearer mi-key");
    expect(header(s.upstream.headers, ":path")).toBe("/v1/chat/completions");
  });

  it("Mistral: rejects what it cannot take with a clear 400", () => {
    const s = send(h, "/v1/chat/completions", { ...CHAT, model: "mistral-small", logit_bias: { "1": 2 } });
    expect(s.getSentLocalResponse()!.statusCode).toBe(400);
    expect(JSON.parse(s.getSentLocalResponse()!.body.toString()).error.message).toMatch(/'logit_bias' is not supported by provider mistral/);
  });

  it("OpenAI-compatible: base URL, model map, no credential when none is configured, top_k allowed", () => {
    const s = send(h, "/v1/chat/completions", { ...CHAT, model: "llama-big", top_k: 40 });
    expect(header(s.upstream.headers, ":path")).toBe("/v1/chat/completions");
    expect(header(s.upstream.headers, ":authority")).toBe("vllm.internal:8000");
    expect(header(s.upstream.headers, "authorization")).toBeUndefined();
    expect(upstreamJson(s).model).toBe("meta-llama/Llama-3.3-70B-Instruct");
    expect(upstreamJson(s).top_k).toBe(40);
    expect(s.getFilterState("sluice.request_model")).toBe("llama-big");
  });

  it("a fixed model and max_tokens override the client's", () => {
    const s = send(h, "/v1/chat/completions", { ...CHAT, model: "cheap", max_tokens: 4000 });
    const body = upstreamJson(s);
    expect(body.model).toBe("gpt-4o-mini");
    expect(body.max_completion_tokens).toBe(256);
    expect(body).not.toHaveProperty("max_tokens");
  });
});

describe("ai-proxy: Anthropic clients (POST /v1/messages) on an OpenAI provider", () => {
  let h: Host;
  beforeAll(async () => {
    h = await proxyHost(CONFIG);
  });
  const MESSAGES = {
    model: "gpt-4o", max_tokens: 100, system: "Be brief.",
    messages: [
      { role: "user", content: "Weather in Paris?" },
      { role: "assistant", content: [{ type: "text", text: "Checking." }, { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } }] },
      { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "18C" }, { type: "text", text: "Thanks" }] },
    ],
    tools: [{ name: "get_weather", description: "Weather", input_schema: { type: "object", properties: { city: { type: "string" } } } }],
    tool_choice: { type: "any" }, stop_sequences: ["END"], metadata: { user_id: "u-9" },
  };

  it("translates the request to OpenAI's format", () => {
    const s = send(h, "/v1/messages", MESSAGES, { "x-api-key": "client-key", "anthropic-version": "2023-06-01" });
    const body = upstreamJson(s);
    expect(body.messages).toEqual([
      { role: "system", content: "Be brief." },
      { role: "user", content: "Weather in Paris?" },
      { role: "assistant", content: "Checking.", tool_calls: [{ id: "toolu_1", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Paris\"}" } }] },
      { role: "tool", tool_call_id: "toolu_1", content: "18C" },
      { role: "user", content: [{ type: "text", text: "Thanks" }] },
    ]);
    expect(body.tools[0]).toEqual({ type: "function", function: { name: "get_weather", description: "Weather", parameters: MESSAGES.tools[0].input_schema } });
    expect(body.tool_choice).toBe("required");
    expect(body.stop).toEqual(["END"]);
    expect(body.user).toBe("u-9");
    expect(header(s.upstream.headers, "x-api-key")).toBeUndefined();
  });

  it("answers in Anthropic's Messages format", () => {
    const s = send(h, "/v1/messages", MESSAGES);
    const out = JSON.parse(answer(s, 200, "application/json", [JSON.stringify({
      ...OPENAI_ANSWER,
      choices: [{ index: 0, message: { role: "assistant", content: "Let me look.", tool_calls: [{ id: "call_9", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Lyon\"}" } }] }, finish_reason: "tool_calls" }],
    })]));
    expect(out).toEqual({
      id: "msg_chatcmpl-1", type: "message", role: "assistant", model: "gpt-4o-2024-08-06",
      content: [{ type: "text", text: "Let me look." }, { type: "tool_use", id: "call_9", name: "get_weather", input: { city: "Lyon" } }],
      stop_reason: "tool_use", stop_sequence: null,
      usage: { input_tokens: 8, output_tokens: 3, cache_creation_input_tokens: 0, cache_read_input_tokens: 4 },
    });
  });

  it("streams Anthropic's event sequence from OpenAI chunks", () => {
    const s = send(h, "/v1/messages", { ...MESSAGES, stream: true });
    const events = sseEvents(answer(s, 200, "text/event-stream", [OPENAI_STREAM]));
    expect(events.map((e) => e.event)).toEqual([
      "message_start", "ping", "content_block_start", "content_block_delta", "content_block_delta",
      "content_block_stop", "message_delta", "message_stop",
    ]);
    const deltas = events.filter((e) => e.event === "content_block_delta").map((e) => JSON.parse(e.data).delta.text);
    expect(deltas.join("")).toBe("Hello");
    const md = JSON.parse(events.find((e) => e.event === "message_delta")!.data);
    expect(md.delta.stop_reason).toBe("end_turn");
    expect(md.usage).toMatchObject({ input_tokens: 9, output_tokens: 2 });
  });

  it("thinking becomes reasoning_effort for OpenAI and Azure models that reason (budget < 4096 low, < 16384 medium, else high)", () => {
    const base = { max_tokens: 20000, messages: [{ role: "user", content: "x" }] };
    const effort = (model: string, thinking: object) => {
      const body = upstreamJson(send(h, "/v1/messages", { ...base, model, thinking }));
      expect(body.thinking, "Anthropic's switch itself never reaches an OpenAI-dialect provider").toBeUndefined();
      return body.reasoning_effort;
    };
    expect(effort("gpt-5", { type: "enabled", budget_tokens: 1024 })).toBe("low");
    expect(effort("gpt-5-mini", { type: "enabled", budget_tokens: 4095 })).toBe("low");
    expect(effort("gpt-5.1", { type: "enabled", budget_tokens: 4096 })).toBe("medium");
    expect(effort("gpt-5", { type: "enabled", budget_tokens: 16383 })).toBe("medium");
    expect(effort("gpt-5", { type: "enabled", budget_tokens: 16384 })).toBe("high");
    // Models without reasoning_effort (it is a 400 there) and the provider's default switches send nothing.
    expect(effort("gpt-4o", { type: "enabled", budget_tokens: 8000 })).toBeUndefined();
    expect(effort("gpt-5", { type: "adaptive" })).toBeUndefined();
    expect(effort("gpt-5", { type: "disabled" })).toBeUndefined();
    // DeepSeek, Mistral and OpenAI-compatible servers keep dropping it.
    expect(effort("deepseek-reasoner", { type: "enabled", budget_tokens: 20000 })).toBeUndefined();
    expect(effort("llama-3", { type: "enabled", budget_tokens: 20000 })).toBeUndefined();
  });

  it("structured outputs (output_config.format, or the beta's output_format) become response_format json_schema; the JSON comes back as text", () => {
    const schema = { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false };
    const base = { model: "gpt-4o", max_tokens: 100, messages: [{ role: "user", content: "x" }] };
    for (const extra of [{ output_config: { format: { type: "json_schema", schema } } }, { output_format: { type: "json_schema", schema } }]) {
      const s = send(h, "/v1/messages", { ...base, ...extra });
      const body = upstreamJson(s);
      expect(body.response_format).toEqual({ type: "json_schema", json_schema: { name: "output", schema } });
      expect(body.output_config).toBeUndefined();
      const out = JSON.parse(answer(s, 200, "application/json", [JSON.stringify({ ...OPENAI_ANSWER, choices: [{ index: 0, message: { role: "assistant", content: "{\"city\":\"Lyon\"}" }, finish_reason: "stop" }] })]));
      expect(JSON.parse(out.content[0].text)).toEqual({ city: "Lyon" });
    }
    const bad = send(h, "/v1/messages", { ...base, output_config: { format: { type: "xml" } } });
    expect(bad.getSentLocalResponse()!.statusCode).toBe(400);
    expect(JSON.parse(bad.getSentLocalResponse()!.body.toString()).error.message).toMatch(/output_config\.format/);
  });

  it("reports errors in Anthropic's format", () => {
    const s = send(h, "/v1/messages", { model: "gpt-4o", messages: [{ role: "user", content: "x" }] });
    const r = s.getSentLocalResponse()!;
    expect(r.statusCode).toBe(400);
    expect(JSON.parse(r.body.toString())).toEqual({ type: "error", error: { type: "invalid_request_error", message: "max_tokens: Field required" } });
    const s2 = send(h, "/v1/messages", MESSAGES);
    const out = answer(s2, 429, "application/json", [JSON.stringify({ error: { message: "slow down", type: "requests", code: "rate_limit_exceeded" } })]);
    expect(JSON.parse(out)).toEqual({ type: "error", error: { type: "rate_limit_error", message: "slow down" } });
  });
});
