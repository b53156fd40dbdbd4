// Gemini's own client API (/v1beta/models/{model}:generateContent, :streamGenerateContent,
// :countTokens, GET /v1beta/models) through the compiled ai-proxy: translated to other providers
// and back, passed through to Gemini itself, errors in Gemini's shape.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Host } from "../../host/index.js";
import { answer, header, proxyHost, sseData, upstreamJson, usageRecord } from "./helpers.js";

const CONFIG = {
  instances: [
    { name: "oa", provider: "openai", api_key: "sk-provider-oa", models: ["gpt-4o"] },
    { name: "claude", provider: "anthropic", api_key: "sk-ant-provider", models: ["claude-sonnet-4-5"] },
    { name: "gem", provider: "gemini", api_key: "goog-provider", models: ["gemini-2.5-flash"] },
  ],
};

let h: Host;
beforeAll(async () => {
  h = await proxyHost(CONFIG);
});
afterAll(() => h.close());

function post(path: string, body: unknown, extra: Record<string, string> = {}) {
  const s = h.newStream();
  s.callOnRequestHeaders({ ":method": "POST", ":path": path, ":authority": "gw", "content-type": "application/json", "x-goog-api-key": "client-key", ...extra }, false);
  if (!s.getSentLocalResponse()) s.callOnRequestBody(typeof body === "string" ? body : JSON.stringify(body), true);
  return s;
}

const gen = (model: string, method = "generateContent", query = "") => `/v1beta/models/${model}:${method}${query}`;

const REQ = {
  systemInstruction: { parts: [{ text: "Be brief." }] },
  contents: [
    { role: "user", parts: [{ text: "Weather in Paris?" }] },
    { role: "model", parts: [{ functionCall: { name: "get_weather", args: { city: "Paris" } } }] },
    { role: "user", parts: [{ functionResponse: { name: "get_weather", response: { temp: 21 } } }] },
  ],
  tools: [{ functionDeclarations: [{ name: "get_weather", description: "Weather", parameters: { type: "OBJECT", properties: { city: { type: "STRING" } }, required: ["city"] } }] }],
  toolConfig: { functionCallingConfig: { mode: "ANY", allowedFunctionNames: ["get_weather"] } },
  generationConfig: { temperature: 0.2, topP: 0.9, maxOutputTokens: 64, stopSequences: ["END"], responseMimeType: "application/json", thinkingConfig: { thinkingBudget: 512 } },
};

const OPENAI_ANSWER = {
  id: "chatcmpl-1", object: "chat.completion", created: 1, model: "gpt-4o-2024-08-06",
  choices: [{ index: 0, message: { role: "assistant", content: "{\"answer\":\"21C\"}", tool_calls: [{ id: "call_9", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Lyon\"}" } }] }, finish_reason: "stop" }],
  usage: { prompt_tokens: 30, completion_tokens: 12, total_tokens: 42, completion_tokens_details: { reasoning_tokens: 4 }, prompt_tokens_details: { cached_tokens: 10 } },
};

describe("Gemini clients: generateContent translated to another provider", () => {
  it("the request becomes OpenAI's format, model from the path", () => {
    const s = post(gen("gpt-4o"), REQ);
    expect(s.getSentLocalResponse()).toBeNull();
    expect(header(s.upstream.headers, ":path")).toBe("/v1/chat/completions");
    expect(header(s.upstream.headers, "x-goog-api-key")).toBeUndefined();
    const up = upstreamJson(s);
    expect(up.model).toBe("gpt-4o");
    expect(up.messages).toEqual([
      { role: "system", content: "Be brief." },
      { role: "user", content: [{ type: "text", text: "Weather in Paris?" }] },
      { role: "assistant", content: null, tool_calls: [{ id: "call_0_get_weather", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Paris\"}" } }] },
      { role: "tool", tool_call_id: "call_0_get_weather", content: "{\"temp\":21}" },
    ]);
    expect(up.tools[0].function.parameters).toEqual({ type: "object", properties: { city: { type: "string" } }, required: ["city"] });
    expect(up.tool_choice).toEqual({ type: "function", function: { name: "get_weather" } });
    expect(up.temperature).toBe(0.2);
    expect(up.top_p).toBe(0.9);
    expect(up.stop).toEqual(["END"]);
    expect(up.response_format).toEqual({ type: "json_object" });
    expect(up.reasoning_effort).toBe("low");
    expect(up.max_completion_tokens ?? up.max_tokens).toBe(64);
    s.completeHttpContext();
  });

  it("the answer comes back as a GenerateContentResponse, usage counted once", () => {
    const s = post(gen("gpt-4o"), { contents: [{ parts: [{ text: "hi" }] }] });
    const out = JSON.parse(answer(s, 200, "application/json", [JSON.stringify(OPENAI_ANSWER)]));
    expect(out.candidates).toEqual([{
      content: { role: "model", parts: [{ text: "{\"answer\":\"21C\"}" }, { functionCall: { id: "call_9", name: "get_weather", args: { city: "Lyon" } } }] },
      finishReason: "STOP", index: 0,
    }]);
    expect(out.usageMetadata).toEqual({ promptTokenCount: 30, candidatesTokenCount: 8, thoughtsTokenCount: 4, cachedContentTokenCount: 10, totalTokenCount: 42 });
    expect(out.modelVersion).toBe("gpt-4o-2024-08-06");
    expect(usageRecord(s)).toMatchObject({ prompt: "30", completion: "12", total: "42", source: "provider" });
  });

  it("a provider's error comes back in Gemini's error shape with its status", () => {
    const s = post(gen("gpt-4o"), { contents: [{ parts: [{ text: "hi" }] }] });
    const out = JSON.parse(answer(s, 429, "application/json", ['{"error":{"message":"Slow down","type":"rate_limit_error","code":"rate_limit_exceeded"}}']));
    expect(out.error.code).toBe(429);
    expect(out.error.status).toBe("RESOURCE_EXHAUSTED");
    expect(typeof out.error.message).toBe("string");
  });
});

const OPENAI_STREAM = [
  'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}\n\n',
  'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"lo"}}]}\n\n',
  'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\\"ci"}}]}}]}\n\n',
  'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ty\\":\\"Oslo\\"}"}}]}}]}\n\n',
  'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\n',
  'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":7,"total_tokens":16}}\n\n',
  "data: [DONE]\n\n",
];

describe("Gemini clients: streamGenerateContent translated to another provider", () => {
  function expectEvents(events: any[]) {
    const text = events.flatMap((e) => e.candidates?.[0]?.content?.parts ?? []).filter((p: any) => p.text).map((p: any) => p.text).join("");
    expect(text).toBe("Hello");
    const calls = events.flatMap((e) => e.candidates?.[0]?.content?.parts ?? []).filter((p: any) => p.functionCall);
    expect(calls).toEqual([{ functionCall: { id: "call_1", name: "get_weather", args: { city: "Oslo" } } }]);
    const last = events.at(-1);
    expect(last.candidates[0].finishReason).toBe("STOP");
    expect(last.usageMetadata).toEqual({ promptTokenCount: 9, candidatesTokenCount: 7, totalTokenCount: 16 });
  }

  it("with alt=sse: server-sent events, each a GenerateContentResponse", () => {
    const s = post(gen("gpt-4o", "streamGenerateContent", "?alt=sse"), { contents: [{ parts: [{ text: "hi" }] }] });
    expect(upstreamJson(s).stream).toBe(true);
    s.callOnResponseHeaders({ ":status": "200", "content-type": "text/event-stream" }, false);
    expect(header(s.downstream.headers, "content-type")).toBe("text/event-stream");
    OPENAI_STREAM.forEach((c, i) => s.callOnResponseBody(c, i === OPENAI_STREAM.length - 1));
    s.completeHttpContext();
    expectEvents(sseData(s.downstream.body.toString()).map((d) => JSON.parse(d)));
    expect(usageRecord(s)).toMatchObject({ prompt: "9", completion: "7", source: "provider" });
  });

  it("without alt=sse: one JSON array, written element by element", () => {
    const s = post(gen("gpt-4o", "streamGenerateContent"), { contents: [{ parts: [{ text: "hi" }] }] });
    s.callOnResponseHeaders({ ":status": "200", "content-type": "text/event-stream" }, false);
    expect(header(s.downstream.headers, "content-type")).toBe("application/json");
    OPENAI_STREAM.forEach((c, i) => s.callOnResponseBody(c, i === OPENAI_STREAM.length - 1));
    s.completeHttpContext();
    const events = JSON.parse(s.downstream.body.toString());
    expect(Array.isArray(events)).toBe(true);
    expectEvents(events);
  });

  it("a provider that fails mid-stream ends the array with Gemini's error", () => {
    const s = post(gen("gpt-4o", "streamGenerateContent"), { contents: [{ parts: [{ text: "hi" }] }] });
    s.callOnResponseHeaders({ ":status": "200", "content-type": "text/event-stream" }, false);
    s.callOnResponseBody(OPENAI_STREAM[0], false);
    s.callOnResponseBody('data: {"error":{"message":"overloaded","type":"server_error"}}\n\n', true);
    s.completeHttpContext();
    const events = JSON.parse(s.downstream.body.toString());
    expect(events.at(-1).error.status).toBeDefined();
  });
});

describe("Gemini clients: to Gemini itself", () => {
  const body = { contents: [{ role: "user", parts: [{ text: "hi" }] }], safetySettings: [{ category: "HARM_CATEGORY_HARASSMENT", threshold: "BLOCK_NONE" }] };

  it("generateContent passes through untouched, with the provider's key; usage read from usageMetadata", () => {
    const s = post(gen("gemini-2.5-flash"), body);
    const up = s.upstream.headers!;
    expect(header(up, ":path")).toBe("/v1beta/models/gemini-2.5-flash:generateContent");
    expect(header(up, "x-goog-api-key")).toBe("goog-provider");
    expect(upstreamJson(s)).toEqual(body);
    const g = { candidates: [{ content: { role: "model", parts: [{ text: "Hi!" }] }, finishReason: "STOP", index: 0 }], usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 2, totalTokenCount: 5 }, modelVersion: "gemini-2.5-flash", responseId: "r1" };
    expect(JSON.parse(answer(s, 200, "application/json", [JSON.stringify(g)]))).toEqual(g);
    expect(usageRecord(s)).toMatchObject({ prompt: "3", completion: "2", source: "provider" });
  });

  it("a Gemini error passes on as Gemini wrote it", () => {
    const s = post(gen("gemini-2.5-flash"), body);
    const err = { error: { code: 400, message: "Invalid JSON payload received.", status: "INVALID_ARGUMENT" } };
    expect(JSON.parse(answer(s, 400, "application/json", [JSON.stringify(err)]))).toEqual(err);
  });

  it("streamGenerateContent?alt=sse passes through, usage read on the way", () => {
    const s = post(gen("gemini-2.5-flash", "streamGenerateContent", "?alt=sse"), body);
    expect(header(s.upstream.headers, ":path")).toBe("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
    const chunks = [
      'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"Hi"}]},"index":0}],"usageMetadata":{"promptTokenCount":3},"modelVersion":"gemini-2.5-flash","responseId":"r2"}\r\n\r\n',
      'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"!"}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2,"totalTokenCount":5},"modelVersion":"gemini-2.5-flash","responseId":"r2"}\r\n\r\n',
    ];
    const out = answer(s, 200, "text/event-stream", chunks);
    expect(out).toBe(chunks.join(""));
    expect(usageRecord(s)).toMatchObject({ prompt: "3", completion: "2", source: "provider" });
  });

  it("a JSON-array stream is asked of Gemini as SSE and written as an array", () => {
    const s = post(gen("gemini-2.5-flash", "streamGenerateContent"), { contents: [{ parts: [{ text: "hi" }] }] });
    expect(header(s.upstream.headers, ":path")).toBe("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
    const out = answer(s, 200, "text/event-stream", [
      'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"Hi"}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":1,"totalTokenCount":4},"responseId":"r3"}\r\n\r\n',
    ]);
    const events = JSON.parse(out);
    expect(events[0].candidates[0].content.parts[0].text).toBe("Hi");
    expect(events.at(-1).usageMetadata.totalTokenCount).toBe(4);
  });
});

describe("Gemini clients: countTokens, models, errors", () => {
  it("countTokens goes to Gemini's own count, and is estimated for other providers", () => {
    const a = post(gen("gemini-2.5-flash", "countTokens"), { contents: [{ parts: [{ text: "count me" }] }] });
    expect(header(a.upstream.headers, ":path")).toBe("/v1beta/models/gemini-2.5-flash:countTokens");
    expect(JSON.parse(answer(a, 200, "application/json", ['{"totalTokens":3}']))).toEqual({ totalTokens: 3 });
    expect(a.getFilterState("sluice.prompt_tokens")).toBe("0");
    const b = post(gen("claude-sonnet-4-5", "countTokens"), { generateContentRequest: { contents: [{ parts: [{ text: "count me please" }] }] } });
    const r = b.getSentLocalResponse()!;
    expect(r.statusCode).toBe(200);
    expect(header(r.headers, "x-sluice-token-count")).toBe("estimate");
    expect(JSON.parse(r.body.toString()).totalTokens).toBeGreaterThan(0);
  });

  it("GET /v1beta/models and /v1beta/models/{id} in Gemini's shape", () => {
    const get = (path: string) => {
      const s = h.newStream();
      s.callOnRequestHeaders({ ":method": "GET", ":path": path, ":authority": "gw" }, true);
      return s.getSentLocalResponse()!;
    };
    const list = JSON.parse(get("/v1beta/models").body.toString());
    expect(list.models.map((m: any) => m.name)).toEqual(["models/gpt-4o", "models/claude-sonnet-4-5", "models/gemini-2.5-flash"]);
    expect(list.models[0].supportedGenerationMethods).toContain("generateContent");
    expect(JSON.parse(get("/v1beta/models/gpt-4o").body.toString()).name).toBe("models/gpt-4o");
    const missing = get("/v1beta/models/nope");
    expect(missing.statusCode).toBe(404);
    expect(JSON.parse(missing.body.toString()).error.status).toBe("NOT_FOUND");
  });

  it("bad requests, unknown methods and wrong verbs answer in Gemini's error shape", () => {
    const cases: [string, string, unknown, number, string][] = [
      ["POST", gen("gpt-4o"), { contents: "hi" }, 400, "INVALID_ARGUMENT"],
      ["POST", gen("gpt-4o"), { contents: [{ parts: [{ text: "x" }] }], tools: [{ googleSearch: {} }] }, 400, "INVALID_ARGUMENT"],
      ["POST", gen("gpt-4o"), { contents: [{ parts: [{ functionResponse: { name: "nobody", response: {} } }] }] }, 400, "INVALID_ARGUMENT"],
      ["POST", gen("gpt-4o", "predict"), {}, 404, "NOT_FOUND"],
      ["GET", gen("gpt-4o"), null, 405, "INVALID_ARGUMENT"],
      ["POST", "/v1beta/files", {}, 404, "NOT_FOUND"],
      ["POST", gen("no-such-model"), { contents: [{ parts: [{ text: "x" }] }] }, 404, "NOT_FOUND"],
    ];
    for (const [method, path, body, status, code] of cases) {
      const s = h.newStream();
      s.callOnRequestHeaders({ ":method": method, ":path": path, ":authority": "gw", "content-type": "application/json" }, body === null);
      if (!s.getSentLocalResponse() && body !== null) s.callOnRequestBody(JSON.stringify(body), true);
      const r = s.getSentLocalResponse()!;
      expect(r?.statusCode, `${method} ${path}`).toBe(status);
      const e = JSON.parse(r.body.toString());
      expect(e.error.code, path).toBe(status);
      expect(e.error.status, path).toBe(code);
      expect(s.upstream.headers).toBeNull();
      s.completeHttpContext();
    }
  });
});

describe("Gemini clients: embedContent and batchEmbedContents", () => {
  const OPENAI_EMB = { object: "list", data: [{ object: "embedding", index: 1, embedding: [0.3, 0.4] }, { object: "embedding", index: 0, embedding: [0.1, 0.2] }], model: "text-embedding-3-small", usage: { prompt_tokens: 6, total_tokens: 6 } };
  let g: Host;
  beforeAll(async () => {
    g = await proxyHost({ instances: [
      { name: "oa", provider: "openai", api_key: "sk-oa", models: ["text-embedding-3-small"] },
      { name: "ge", provider: "gemini", api_key: "goog-provider", models: ["gemini-embedding-001"] },
    ] });
  });
  afterAll(() => g.close());
  const postTo = (path: string, body: unknown) => {
    const s = g.newStream();
    s.callOnRequestHeaders({ ":method": "POST", ":path": path, ":authority": "gw", "content-type": "application/json" }, false);
    s.callOnRequestBody(JSON.stringify(body), true);
    return s;
  };

  it("batchEmbedContents to OpenAI: one input per request, vectors back in order, usage from the provider", () => {
    const s = postTo("/v1beta/models/text-embedding-3-small:batchEmbedContents", {
      requests: [
        { model: "models/text-embedding-3-small", content: { parts: [{ text: "first" }] }, taskType: "RETRIEVAL_DOCUMENT", outputDimensionality: 2 },
        { model: "models/text-embedding-3-small", content: { parts: [{ text: "second" }] } },
      ],
    });
    expect(header(s.upstream.headers, ":path")).toBe("/v1/embeddings");
    expect(upstreamJson(s)).toMatchObject({ model: "text-embedding-3-small", input: ["first", "second"], dimensions: 2 });
    const out = JSON.parse(answer(s, 200, "application/json", [JSON.stringify(OPENAI_EMB)]));
    expect(out).toEqual({ embeddings: [{ values: [0.1, 0.2] }, { values: [0.3, 0.4] }] });
    expect(usageRecord(s)).toMatchObject({ prompt: "6", completion: "0", source: "provider" });
    expect(s.getFilterState("sluice.request_type")).toBe("ai_embeddings");
  });

  it("embedContent to OpenAI: one embedding", () => {
    const s = postTo("/v1beta/models/text-embedding-3-small:embedContent", { content: { parts: [{ text: "hello" }, { text: "world" }] } });
    expect(upstreamJson(s)).toMatchObject({ input: "hello world" });
    const out = JSON.parse(answer(s, 200, "application/json", [JSON.stringify({ ...OPENAI_EMB, data: [OPENAI_EMB.data[1]] })]));
    expect(out).toEqual({ embedding: { values: [0.1, 0.2] } });
  });

  it("embedContent to Gemini itself passes through on its own path; usage is estimated (Gemini reports none)", () => {
    const body = { content: { parts: [{ text: "hello" }] }, taskType: "RETRIEVAL_QUERY" };
    const s = postTo("/v1beta/models/gemini-embedding-001:embedContent", body);
    expect(header(s.upstream.headers, ":path")).toBe("/v1beta/models/gemini-embedding-001:embedContent");
    expect(upstreamJson(s)).toEqual(body);
    const answerBody = { embedding: { values: [0.5, 0.6] } };
    expect(JSON.parse(answer(s, 200, "application/json", [JSON.stringify(answerBody)]))).toEqual(answerBody);
    expect(usageRecord(s)).toMatchObject({ completion: "0", source: "estimate" });
  });

  it("a batch naming another model, or content without text for another provider, is Gemini's 400", () => {
    for (const [path, body] of [
      ["/v1beta/models/text-embedding-3-small:batchEmbedContents", { requests: [{ model: "models/other", content: { parts: [{ text: "x" }] } }] }],
      ["/v1beta/models/text-embedding-3-small:embedContent", { content: { parts: [{ inlineData: { mimeType: "image/png", data: "aGk=" } }] } }],
      ["/v1beta/models/text-embedding-3-small:embedContent", {}],
    ] as const) {
      const r = postTo(path, body).getSentLocalResponse()!;
      expect(r?.statusCode, JSON.stringify(body)).toBe(400);
      expect(JSON.parse(r.body.toString()).error.status).toBe("INVALID_ARGUMENT");
    }
  });
});
