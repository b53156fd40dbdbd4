// The mock providers checked against each provider's documented wire format, with plain fetch.
import { describe, it, expect, beforeAll, afterAll, beforeEach } from "vitest";
import {
  MOCK_KINDS,
  RECORDED_TEXT,
  recordedStreams,
  splitPositions,
  startAllMocks,
  startMock,
  startMockRouter,
  mulberry32,
  type AllMocks,
  type MockServer,
} from "../scripts/mocks/index.js";

// ---------- helpers ----------

interface SseEvent {
  event?: string;
  data: string;
  comment?: string;
}

/** Parse an SSE body per the WHATWG rules we need (LF or CRLF line ends, comments, event/data fields). */
function parseSse(body: string): SseEvent[] {
  const out: SseEvent[] = [];
  for (const block of body.replace(/\r\n/g, "\n").split("\n\n")) {
    if (block.trim() === "") continue;
    const ev: SseEvent = { data: "" };
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) ev.comment = line.slice(1).trim();
      else if (line.startsWith("event:")) ev.event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    ev.data = data.join("\n");
    out.push(ev);
  }
  return out;
}

const jsonEvents = (body: string) =>
  parseSse(body)
    .filter((e) => e.data !== "" && e.data !== "[DONE]")
    .map((e) => JSON.parse(e.data));

function post(url: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal,
  });
}

const OA = { authorization: "Bearer sk-test-1234567890" };
const ANT = { "x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01" };
const GEM = { "x-goog-api-key": "AIza-test" };

const WEATHER_TOOL = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Weather for a city",
    parameters: { type: "object", properties: { city: { type: "string" }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } }, required: ["city", "unit"] },
  },
};

/** Read a streaming body as the chunks the client receives, with arrival times. */
async function readChunks(res: Response): Promise<{ chunks: Uint8Array[]; times: number[]; error?: unknown }> {
  const reader = res.body!.getReader();
  const chunks: Uint8Array[] = [];
  const times: number[] = [];
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      times.push(performance.now());
    }
  } catch (error) {
    return { chunks, times, error };
  }
  return { chunks, times };
}

const concat = (chunks: Uint8Array[]) => Buffer.concat(chunks.map((c) => Buffer.from(c))).toString("utf8");

let m: AllMocks;
beforeAll(async () => {
  m = await startAllMocks();
});
afterAll(async () => {
  await m.close();
});
beforeEach(() => {
  for (const k of MOCK_KINDS) m[k].reset();
});

// ---------- OpenAI ----------

describe("openai", () => {
  const url = () => `${m.openai.url}/v1/chat/completions`;

  it("answers a plain chat completion in OpenAI's shape and records the request", async () => {
    const res = await post(`${url()}?trace=1`, { model: "gpt-4o", messages: [{ role: "system", content: "be brief" }, { role: "user", content: "héllo there" }] }, OA);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.headers.get("x-request-id")).toMatch(/^req_/);
    expect(res.headers.get("x-ratelimit-remaining-requests")).toBe("9999");
    const body = await res.json();
    expect(body).toMatchObject({ object: "chat.completion", model: "gpt-4o-2024-08-06", service_tier: "default" });
    expect(body.id).toMatch(/^chatcmpl-/);
    expect(typeof body.created).toBe("number");
    expect(body.choices).toEqual([
      { index: 0, message: { role: "assistant", content: "Echo: héllo there", refusal: null, annotations: [] }, logprobs: null, finish_reason: "stop" },
    ]);
    const u = body.usage;
    expect(u.total_tokens).toBe(u.prompt_tokens + u.completion_tokens);
    expect(u.prompt_tokens_details).toEqual({ cached_tokens: 0, audio_tokens: 0 });
    expect(u.completion_tokens_details.reasoning_tokens).toBe(0);
    const rec = m.openai.lastRequest()!;
    expect(rec).toMatchObject({ provider: "openai", method: "POST", path: "/v1/chat/completions", query: { trace: "1" } });
    expect(rec.headers.authorization).toBe(OA.authorization);
    expect(rec.body.messages[1].content).toBe("héllo there");
  });

  it("streams chunks ending in [DONE]; include_usage adds a usage chunk with choices [] and usage null elsewhere", async () => {
    const res = await post(url(), { model: "gpt-4o-mini", stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "one two three" }] }, OA);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const text = await res.text();
    expect(text.endsWith("data: [DONE]\n\n")).toBe(true);
    expect(text).not.toContain("\r");
    const chunks = jsonEvents(text);
    expect(chunks[0].choices[0].delta).toEqual({ role: "assistant", content: "", refusal: null });
    for (const c of chunks) expect(c).toMatchObject({ object: "chat.completion.chunk", id: chunks[0].id, model: "gpt-4o-mini-2024-07-18" });
    const last = chunks[chunks.length - 1];
    expect(last.choices).toEqual([]);
    expect(last.usage.prompt_tokens).toBeGreaterThan(0);
    expect(last.usage.prompt_tokens_details).toHaveProperty("cached_tokens");
    for (const c of chunks.slice(0, -1)) expect(c.usage).toBeNull();
    expect(chunks[chunks.length - 2].choices[0]).toMatchObject({ delta: {}, finish_reason: "stop" });
    expect(chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("")).toBe("Echo: one two three");
  });

  it("streams without a usage field when include_usage is not set", async () => {
    const text = await (await post(url(), { model: "gpt-4o", stream: true, messages: [{ role: "user", content: "hi" }] }, OA)).text();
    for (const c of jsonEvents(text)) expect(c).not.toHaveProperty("usage");
  });

  it("streams a tool call as OpenAI does: id/type/name with empty arguments, then argument fragments", async () => {
    const res = await post(
      url(),
      { model: "gpt-4o", stream: true, tools: [WEATHER_TOOL], messages: [{ role: "user", content: "Use get_weather for city=Zürich unit=celsius" }] },
      OA,
    );
    const chunks = jsonEvents(await res.text());
    const first = chunks[0].choices[0].delta;
    expect(first).toMatchObject({ role: "assistant", content: null });
    expect(first.tool_calls[0]).toMatchObject({ index: 0, type: "function", function: { name: "get_weather", arguments: "" } });
    expect(first.tool_calls[0].id).toMatch(/^call_/);
    const frags = chunks.slice(1).flatMap((c) => c.choices[0]?.delta?.tool_calls ?? []);
    expect(frags.length).toBeGreaterThan(1);
    for (const f of frags) expect(Object.keys(f).sort()).toEqual(["function", "index"]);
    expect(JSON.parse(frags.map((f) => f.function.arguments).join(""))).toEqual({ city: "Zürich", unit: "celsius" });
    expect(chunks[chunks.length - 1].choices[0].finish_reason).toBe("tool_calls");
  });

  it("answers a tool call plainly, then the tool result as text", async () => {
    const first = await (await post(url(), { model: "gpt-4o", tools: [WEATHER_TOOL], messages: [{ role: "user", content: "call the tool please" }] }, OA)).json();
    const call = first.choices[0].message.tool_calls[0];
    expect(first.choices[0]).toMatchObject({ finish_reason: "tool_calls", message: { content: null } });
    expect(JSON.parse(call.function.arguments)).toEqual({ city: "test", unit: "celsius" });
    const second = await (
      await post(
        url(),
        {
          model: "gpt-4o",
          tools: [WEATHER_TOOL],
          messages: [
            { role: "user", content: "call the tool please" },
            first.choices[0].message,
            { role: "tool", tool_call_id: call.id, content: "22°C and sunny" },
          ],
        },
        OA,
      )
    ).json();
    expect(second.choices[0].message.content).toBe("Tool result: 22°C and sunny");
  });

  it("validates like OpenAI: auth, JSON, required fields, tool ordering, stream_options, o-series max_tokens, unknown fields, URLs", async () => {
    const cases: [Response, number, Record<string, unknown>][] = [
      [await post(url(), { model: "gpt-4o", messages: [] }), 401, { type: "invalid_request_error", code: null }],
      [await post(url(), "{not json", OA), 400, { type: "invalid_request_error", param: null }],
      [await post(url(), { model: "gpt-4o" }, OA), 400, { message: "Missing required parameter: 'messages'.", param: "messages", code: "missing_required_parameter" }],
      [await post(url(), { messages: [{ role: "user", content: "x" }] }, OA), 400, { message: "you must provide a model parameter" }],
      [await post(url(), { model: "gpt-4o", messages: [{ role: "user", content: "x" }], foo: 1 }, OA), 400, { message: "Unrecognized request argument supplied: foo" }],
      [
        await post(url(), { model: "gpt-4o", messages: [{ role: "user", content: "x" }, { role: "tool", tool_call_id: "call_1", content: "r" }] }, OA),
        400,
        { message: "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'." },
      ],
      [await post(url(), { model: "gpt-4o", messages: [{ role: "user", content: "x" }], stream_options: { include_usage: true } }, OA), 400, { param: "stream_options" }],
      [await post(url(), { model: "o3-mini", max_tokens: 10, messages: [{ role: "user", content: "x" }] }, OA), 400, { param: "max_tokens", code: "unsupported_parameter" }],
    ];
    for (const [res, status, error] of cases) {
      expect(res.status).toBe(status);
      const body = await res.json();
      expect(Object.keys(body.error).sort()).toEqual(["code", "message", "param", "type"]);
      expect(body.error).toMatchObject(error);
    }
    const missing = await post(
      url(),
      { model: "gpt-4o", messages: [{ role: "user", content: "x" }, { role: "assistant", content: null, tool_calls: [{ id: "call_9", type: "function", function: { name: "f", arguments: "{}" } }] }] },
      OA,
    );
    expect((await missing.json()).error.message).toMatch(/must be followed by tool messages responding to each 'tool_call_id'.*call_9/);
    const notFound = await post(`${m.openai.url}/v1/nope`, {}, OA);
    expect(notFound.status).toBe(404);
    expect((await notFound.json()).error.message).toBe("Invalid URL (POST /v1/nope)");
  });

  it("rejects a wrong key when keys are configured", async () => {
    const s = await startMock("openai", { apiKey: "sk-right-key-123" });
    try {
      const res = await post(`${s.url}/v1/chat/completions`, { model: "gpt-4o", messages: [{ role: "user", content: "x" }] }, { authorization: "Bearer sk-wrong-key-456" });
      expect(res.status).toBe(401);
      const body = await res.json();
      expect(body.error).toMatchObject({ code: "invalid_api_key", type: "invalid_request_error" });
      expect(body.error.message).toMatch(/^Incorrect API key provided: sk-\*+-456\./);
    } finally {
      await s.close();
    }
  });

  it("reports reasoning tokens for o-series models and truncates at max_completion_tokens with finish length", async () => {
    const o3 = await (await post(url(), { model: "o3-mini", messages: [{ role: "user", content: "think" }] }, OA)).json();
    expect(o3.usage.completion_tokens_details.reasoning_tokens).toBeGreaterThan(0);
    expect(o3.choices[0].message).not.toHaveProperty("reasoning_content");
    const cut = await (await post(url(), { model: "gpt-4o", max_completion_tokens: 2, messages: [{ role: "user", content: "a long sentence to echo back" }] }, OA)).json();
    expect(cut.choices[0].finish_reason).toBe("length");
    expect(cut.choices[0].message.content).toBe("Echo: a ");
  });

  it("serves embeddings (float and base64) and the model list", async () => {
    const e = await (await post(`${m.openai.url}/v1/embeddings`, { model: "text-embedding-3-small", input: ["a", "b"], dimensions: 8 }, OA)).json();
    expect(e).toMatchObject({ object: "list", model: "text-embedding-3-small", usage: { prompt_tokens: 2, total_tokens: 2 } });
    expect(e.data.map((d: any) => [d.object, d.index, d.embedding.length])).toEqual([
      ["embedding", 0, 8],
      ["embedding", 1, 8],
    ]);
    const again = await (await post(`${m.openai.url}/v1/embeddings`, { model: "text-embedding-3-small", input: "a", dimensions: 8 }, OA)).json();
    expect(again.data[0].embedding).toEqual(e.data[0].embedding);
    const b64 = await (await post(`${m.openai.url}/v1/embeddings`, { model: "text-embedding-3-small", input: "a", dimensions: 8, encoding_format: "base64" }, OA)).json();
    expect(Buffer.from(b64.data[0].embedding, "base64").length).toBe(32);
    const models = await (await fetch(`${m.openai.url}/v1/models`, { headers: OA })).json();
    expect(models.object).toBe("list");
    expect(models.data[0]).toMatchObject({ object: "model", owned_by: "system" });
  });

  it("answers 429 with Retry-After and x-ratelimit-* headers, 500 as JSON and 502 as Cloudflare HTML", async () => {
    const limited = await post(url(), { model: "gpt-4o", messages: [{ role: "user", content: "x" }] }, { ...OA, "x-mock-429": "7" });
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("7");
    expect(limited.headers.get("x-ratelimit-remaining-tokens")).toBe("0");
    expect(limited.headers.get("x-ratelimit-reset-tokens")).toBe("7s");
    expect((await limited.json()).error).toMatchObject({ type: "tokens", code: "rate_limit_exceeded", param: null });
    const s500 = await post(url(), { model: "gpt-4o", messages: [{ role: "user", content: "x" }] }, { ...OA, "x-mock-5xx": "500" });
    expect(s500.status).toBe(500);
    expect((await s500.json()).error.type).toBe("server_error");
    const s502 = await post(url(), { model: "gpt-4o", messages: [{ role: "user", content: "x" }] }, { ...OA, "x-mock-5xx": "502" });
    expect(s502.status).toBe(502);
    expect(s502.headers.get("content-type")).toBe("text/html");
    expect(await s502.text()).toContain("502 Bad Gateway");
  });

  it("passes images through validation and reports them in the echo", async () => {
    const body = await (
      await post(
        url(),
        { model: "gpt-4o", messages: [{ role: "user", content: [{ type: "text", text: "what is this" }, { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } }] }] },
        OA,
      )
    ).json();
    expect(body.choices[0].message.content).toBe("Echo: what is this [images: 1]");
    const bad = await post(url(), { model: "gpt-4o", messages: [{ role: "user", content: [{ type: "image_url", image_url: {} }] }] }, OA);
    expect(bad.status).toBe(400);
  });
});

// ---------- Azure OpenAI ----------

describe("azure-openai", () => {
  const url = (dep = "gpt-4o", v: string | null = "2024-10-21", what = "chat/completions") =>
    `${m["azure-openai"].url}/openai/deployments/${dep}/${what}${v ? `?api-version=${v}` : ""}`;
  const AZ = { "api-key": "azure-key" };

  it("needs api-version (404 Resource not found) and api-key (401 Azure message)", async () => {
    const noVersion = await post(url("gpt-4o", null), { messages: [{ role: "user", content: "x" }] }, AZ);
    expect(noVersion.status).toBe(404);
    expect(await noVersion.json()).toEqual({ error: { code: "404", message: "Resource not found" } });
    const noKey = await post(url(), { messages: [{ role: "user", content: "x" }] });
    expect(noKey.status).toBe(401);
    expect(await noKey.json()).toEqual({
      error: {
        code: "401",
        message:
          "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
      },
    });
  });

  it("answers with prompt_filter_results and content_filter_results, model from the deployment", async () => {
    const res = await post(url(), { messages: [{ role: "user", content: "hi" }] }, AZ);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(Object.keys(body)).toEqual([...Object.keys(body)].sort());
    expect(body.model).toBe("gpt-4o-2024-08-06");
    expect(body.prompt_filter_results[0]).toMatchObject({ prompt_index: 0, content_filter_results: { hate: { filtered: false, severity: "safe" }, jailbreak: { detected: false } } });
    expect(body.choices[0]).toMatchObject({ content_filter_results: { violence: { filtered: false, severity: "safe" } }, message: { content: "Echo: hi" } });
    expect(m["azure-openai"].lastRequest()!.query).toEqual({ "api-version": "2024-10-21" });
  });

  it("streams an opening prompt-filter chunk (choices [], empty id/model/object), then chunks with content_filter_results", async () => {
    const text = await (await post(url(), { stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "a b" }] }, AZ)).text();
    const chunks = jsonEvents(text);
    expect(chunks[0]).toEqual({ choices: [], created: 0, id: "", model: "", object: "", prompt_filter_results: expect.any(Array) });
    expect(chunks[1].choices[0].content_filter_results).toEqual({});
    expect(chunks[2].choices[0].content_filter_results.hate).toEqual({ filtered: false, severity: "safe" });
    expect(chunks[chunks.length - 1]).toMatchObject({ choices: [], usage: { prompt_tokens: expect.any(Number) } });
    expect(text.endsWith("data: [DONE]\n\n")).toBe(true);
  });

  it("maps deployments, serves embeddings, and rate-limits with retry-after and retry-after-ms", async () => {
    const s = await startMock("azure-openai", { deployments: { chat: "gpt-4o-mini", emb: "text-embedding-3-small" } });
    try {
      const unknown = await post(`${s.url}/openai/deployments/other/chat/completions?api-version=2024-10-21`, { messages: [{ role: "user", content: "x" }] }, AZ);
      expect(unknown.status).toBe(404);
      expect((await unknown.json()).error.code).toBe("DeploymentNotFound");
      const chat = await (await post(`${s.url}/openai/deployments/chat/chat/completions?api-version=2024-10-21`, { messages: [{ role: "user", content: "x" }] }, AZ)).json();
      expect(chat.model).toBe("gpt-4o-mini-2024-07-18");
      const emb = await (await post(`${s.url}/openai/deployments/emb/embeddings?api-version=2024-10-21`, { input: "x" }, AZ)).json();
      expect(emb.data[0].embedding).toHaveLength(1536);
      s.set({ rateLimit: 3 });
      const limited = await post(`${s.url}/openai/deployments/chat/chat/completions?api-version=2024-10-21`, { messages: [{ role: "user", content: "x" }] }, AZ);
      expect(limited.status).toBe(429);
      expect(limited.headers.get("retry-after")).toBe("3");
      expect(limited.headers.get("retry-after-ms")).toBe("3000");
      expect((await limited.json()).error).toMatchObject({ code: "429", message: expect.stringContaining("Please retry after 3 seconds") });
    } finally {
      await s.close();
    }
  });
});

// ---------- Anthropic ----------

describe("anthropic", () => {
  const url = () => `${m.anthropic.url}/v1/messages`;
  const base = { model: "claude-sonnet-4-5-20250929", max_tokens: 1024 };

  it("requires x-api-key (401) and anthropic-version (400) with Anthropic's error shape", async () => {
    const noKey = await post(url(), { ...base, messages: [{ role: "user", content: "x" }] }, { "anthropic-version": "2023-06-01" });
    expect(noKey.status).toBe(401);
    const nk = await noKey.json();
    expect(nk).toMatchObject({ type: "error", error: { type: "authentication_error", message: "x-api-key header is required" } });
    expect(nk.request_id).toMatch(/^req_/);
    const noVersion = await post(url(), { ...base, messages: [{ role: "user", content: "x" }] }, { "x-api-key": "k" });
    expect(noVersion.status).toBe(400);
    expect((await noVersion.json()).error).toEqual({ type: "invalid_request_error", message: "anthropic-version: header is required" });
  });

  it("validates the body like the Messages API", async () => {
    const msgs = [{ role: "user", content: "x" }];
    const cases: [unknown, string][] = [
      [{ model: base.model, messages: msgs }, "max_tokens: Field required"],
      [{ max_tokens: 5, messages: msgs }, "model: Field required"],
      [{ ...base }, "messages: Field required"],
      [{ ...base, messages: msgs, frequency_penalty: 1 }, "frequency_penalty: Extra inputs are not permitted"],
      [{ ...base, messages: msgs, temperature: 1.5 }, "temperature: Input should be less than or equal to 1"],
      [{ ...base, messages: [{ role: "system", content: "s" }, ...msgs] }, 'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, not "system" as an input message role.'],
      [{ ...base, messages: [{ role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_x", content: "r" }] }] }, "unexpected `tool_use_id` found in `tool_result` blocks: toolu_x"],
      [
        { ...base, messages: [...msgs, { role: "assistant", content: [{ type: "tool_use", id: "toolu_y", name: "f", input: {} }] }, { role: "user", content: "no result" }] },
        "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_y",
      ],
      [{ ...base, max_tokens: 1000, thinking: { type: "enabled", budget_tokens: 2000 }, messages: msgs }, "`max_tokens` must be greater than `thinking.budget_tokens`"],
    ];
    for (const [body, message] of cases) {
      const res = await post(url(), body, ANT);
      expect(res.status).toBe(400);
      const b = await res.json();
      expect(b.type).toBe("error");
      expect(b.error.type).toBe("invalid_request_error");
      expect(b.error.message).toContain(message);
    }
  });

  it("answers a plain message with Anthropic's usage fields and rate-limit headers", async () => {
    const res = await post(url(), { ...base, system: "terse", messages: [{ role: "user", content: "hello" }] }, ANT);
    expect(res.status).toBe(200);
    expect(res.headers.get("request-id")).toMatch(/^req_/);
    expect(res.headers.get("anthropic-ratelimit-requests-remaining")).toBe("3999");
    const body = await res.json();
    expect(body).toMatchObject({ type: "message", role: "assistant", model: base.model, content: [{ type: "text", text: "Echo: hello" }], stop_reason: "end_turn", stop_sequence: null });
    expect(body.id).toMatch(/^msg_01/);
    for (const k of ["input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"]) expect(typeof body.usage[k]).toBe("number");
  });

  it("streams the documented event sequence, each event as `event: <type>\\ndata: <json>`", async () => {
    const res = await post(url(), { ...base, stream: true, messages: [{ role: "user", content: "one two" }] }, ANT);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const text = await res.text();
    expect(text).toMatch(/^event: message_start\ndata: \{/);
    const events = parseSse(text);
    for (const e of events) expect(JSON.parse(e.data).type).toBe(e.event);
    const names = events.map((e) => e.event);
    expect(names).toEqual([
      "message_start",
      "content_block_start",
      "ping",
      ...Array(names.length - 6).fill("content_block_delta"),
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    const data = events.map((e) => JSON.parse(e.data));
    expect(data[0].message).toMatchObject({ content: [], stop_reason: null, usage: { output_tokens: 1 } });
    expect(data[0].message.usage.input_tokens).toBeGreaterThan(0);
    expect(data.filter((d) => d.type === "content_block_delta").map((d) => d.delta.text).join("")).toBe("Echo: one two");
    expect(data[data.length - 2]).toMatchObject({ delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: expect.any(Number) } });
  });

  it("streams thinking (thinking_delta, signature_delta) before text, and tool_use with input_json_delta", async () => {
    const thinking = parseSse(
      await (await post(url(), { ...base, max_tokens: 4096, stream: true, thinking: { type: "enabled", budget_tokens: 1024 }, messages: [{ role: "user", content: "why" }] }, ANT)).text(),
    ).map((e) => JSON.parse(e.data));
    const deltas = thinking.filter((d) => d.type === "content_block_delta").map((d) => `${d.index}:${d.delta.type}`);
    expect(deltas[0]).toBe("0:thinking_delta");
    expect(deltas).toContain("0:signature_delta");
    expect(deltas[deltas.length - 1]).toBe("1:text_delta");
    expect(thinking.find((d) => d.type === "content_block_start").content_block).toEqual({ type: "thinking", thinking: "" });

    const tools = [{ name: "get_weather", input_schema: WEATHER_TOOL.function.parameters }];
    const tool = parseSse(await (await post(url(), { ...base, stream: true, tools, messages: [{ role: "user", content: 'get_weather {"city":"Köln","unit":"celsius"}' }] }, ANT)).text()).map((e) =>
      JSON.parse(e.data),
    );
    const start = tool.find((d) => d.type === "content_block_start").content_block;
    expect(start).toMatchObject({ type: "tool_use", name: "get_weather", input: {} });
    expect(start.id).toMatch(/^toolu_01/);
    const json = tool.filter((d) => d.delta?.type === "input_json_delta").map((d) => d.delta.partial_json);
    expect(json[0]).toBe("");
    expect(JSON.parse(json.join(""))).toEqual({ city: "Köln", unit: "celsius" });
    expect(tool.find((d) => d.type === "message_delta").delta.stop_reason).toBe("tool_use");
  });

  it("honours tool_choice any and stop_sequences", async () => {
    const tools = [{ name: "lookup", input_schema: { type: "object", properties: {} } }];
    const forced = await (await post(url(), { ...base, tools, tool_choice: { type: "any" }, messages: [{ role: "user", content: "anything" }] }, ANT)).json();
    expect(forced.stop_reason).toBe("tool_use");
    expect(forced.content[0]).toMatchObject({ type: "tool_use", name: "lookup", input: {} });
    const stopped = await (await post(url(), { ...base, stop_sequences: ["STOP"], messages: [{ role: "user", content: "go STOP now" }] }, ANT)).json();
    expect(stopped).toMatchObject({ stop_reason: "stop_sequence", stop_sequence: "STOP", content: [{ text: "Echo: go " }] });
  });

  it("structured outputs: output_config.format answers JSON text on Claude 4.5+, 400 on older ids; forced tool_choice with thinking is a 400", async () => {
    const schema = { type: "object", properties: { city: { type: "string" }, temp: { type: "number" } }, required: ["city", "temp"], additionalProperties: false };
    const json = await (await post(url(), { ...base, output_config: { format: { type: "json_schema", schema } }, messages: [{ role: "user", content: "city=Paris" }] }, ANT)).json();
    expect(json.stop_reason).toBe("end_turn");
    expect(JSON.parse(json.content[0].text)).toEqual({ city: "Paris", temp: 1 });
    const old = await post(url(), { ...base, model: "claude-3-5-haiku-20241022", output_config: { format: { type: "json_schema", schema } }, messages: [{ role: "user", content: "x" }] }, ANT);
    expect(old.status).toBe(400);
    const beta = await post(url(), { ...base, output_format: { type: "json_schema", schema }, messages: [{ role: "user", content: "x" }] }, ANT);
    expect(beta.status).toBe(400);
    const tools = [{ name: "lookup", input_schema: { type: "object", properties: {} } }];
    const thinkingForced = await post(url(), { ...base, max_tokens: 5000, thinking: { type: "enabled", budget_tokens: 1024 }, tools, tool_choice: { type: "tool", name: "lookup" }, messages: [{ role: "user", content: "x" }] }, ANT);
    expect(thinkingForced.status).toBe(400);
    expect((await thinkingForced.json()).error.message).toMatch(/tool_choice forces tool use/);
  });

  it("answers 429 rate_limit_error with retry-after and anthropic-ratelimit-*, 529 overloaded_error, and an error event mid-stream", async () => {
    const limited = await post(url(), { ...base, messages: [{ role: "user", content: "x" }] }, { ...ANT, "x-mock-rate-limit": "12" });
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("12");
    expect(limited.headers.get("anthropic-ratelimit-requests-remaining")).toBe("0");
    expect(limited.headers.get("anthropic-ratelimit-input-tokens-reset")).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect((await limited.json()).error.type).toBe("rate_limit_error");
    const overloaded = await post(url(), { ...base, messages: [{ role: "user", content: "x" }] }, { ...ANT, "x-mock-5xx": "529" });
    expect(overloaded.status).toBe(529);
    expect((await overloaded.json()).error).toEqual({ type: "overloaded_error", message: "Overloaded" });
    m.anthropic.script({ streamError: { afterEvents: 3, status: 529 } });
    const events = parseSse(await (await post(url(), { ...base, stream: true, messages: [{ role: "user", content: "a b c" }] }, ANT)).text());
    expect(events.map((e) => e.event)).toEqual(["message_start", "content_block_start", "ping", "error"]);
    expect(JSON.parse(events[3].data)).toEqual({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } });
  });

  it("counts tokens and lists models", async () => {
    const count = await (await post(`${m.anthropic.url}/v1/messages/count_tokens`, { model: base.model, messages: [{ role: "user", content: "hello there" }] }, ANT)).json();
    expect(count.input_tokens).toBeGreaterThan(0);
    const models = await (await fetch(`${m.anthropic.url}/v1/models`, { headers: ANT })).json();
    expect(models).toMatchObject({ has_more: false, data: expect.arrayContaining([expect.objectContaining({ type: "model" })]) });
  });

  it("accepts images and documents in content", async () => {
    const body = await (
      await post(
        url(),
        {
          ...base,
          messages: [{ role: "user", content: [{ type: "image", source: { type: "base64", media_type: "image/png", data: "AAAA" } }, { type: "text", text: "describe" }] }],
        },
        ANT,
      )
    ).json();
    expect(body.content[0].text).toBe("Echo: describe [images: 1]");
    const bad = await post(url(), { ...base, messages: [{ role: "user", content: [{ type: "image", source: { type: "base64", media_type: "image/bmp", data: "A" } }] }] }, ANT);
    expect(bad.status).toBe(400);
  });
});

// ---------- Gemini ----------

describe("gemini", () => {
  const url = (model = "gemini-2.5-flash", method = "generateContent", q = "") => `${m.gemini.url}/v1beta/models/${model}:${method}${q}`;
  const req = (text: string, extra: Record<string, unknown> = {}) => ({ contents: [{ role: "user", parts: [{ text }] }], ...extra });

  it("takes the key from x-goog-api-key or ?key=, 403 without one, API_KEY_INVALID for a wrong one", async () => {
    expect((await post(url(), req("x"), GEM)).status).toBe(200);
    expect((await post(url("gemini-2.5-flash", "generateContent", "?key=AIza-q"), req("x"))).status).toBe(200);
    const none = await post(url(), req("x"));
    expect(none.status).toBe(403);
    expect((await none.json()).error).toMatchObject({ code: 403, status: "PERMISSION_DENIED" });
    const s = await startMock("gemini", { apiKey: "right" });
    try {
      const wrong = await post(`${s.url}/v1beta/models/gemini-2.5-flash:generateContent`, req("x"), { "x-goog-api-key": "wrong" });
      expect(wrong.status).toBe(400);
      const e = (await wrong.json()).error;
      expect(e).toMatchObject({ code: 400, message: "API key not valid. Please pass a valid API key.", status: "INVALID_ARGUMENT" });
      expect(e.details[0]).toMatchObject({ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "API_KEY_INVALID" });
    } finally {
      await s.close();
    }
  });

  it("answers generateContent pretty-printed with candidates, usageMetadata, modelVersion and responseId", async () => {
    const res = await post(url(), req("héllo", { system_instruction: { parts: [{ text: "be nice" }] }, generation_config: { temperature: 0.2 } }), GEM);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json; charset=UTF-8");
    const raw = await res.text();
    expect(raw).toMatch(/^\{\n  "candidates": \[\n/);
    const body = JSON.parse(raw);
    expect(body.candidates).toEqual([{ content: { parts: [{ text: "Echo: héllo" }], role: "model" }, finishReason: "STOP", index: 0 }]);
    const u = body.usageMetadata;
    expect(u.totalTokenCount).toBe(u.promptTokenCount + u.candidatesTokenCount + (u.thoughtsTokenCount ?? 0));
    expect(u.thoughtsTokenCount).toBeGreaterThan(0); // 2.5 models think by default
    expect(body.modelVersion).toBe("gemini-2.5-flash");
    expect(typeof body.responseId).toBe("string");
  });

  it("streams with alt=sse as `data: …\\r\\n\\r\\n`, usageMetadata on every chunk, finishReason on the last, no [DONE]", async () => {
    const res = await post(url("gemini-2.0-flash", "streamGenerateContent", "?alt=sse"), req("one two three"), GEM);
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const text = await res.text();
    expect(text).not.toContain("[DONE]");
    const frames = text.split("\r\n\r\n");
    expect(frames.pop()).toBe("");
    for (const f of frames) expect(f).toMatch(/^data: \{"candidates": \[/);
    const chunks = frames.map((f) => JSON.parse(f.slice(6)));
    for (const c of chunks) expect(c.usageMetadata.promptTokenCount).toBeGreaterThan(0);
    expect(chunks.slice(0, -1).every((c) => !("finishReason" in c.candidates[0]))).toBe(true);
    expect(chunks[chunks.length - 1].candidates[0].finishReason).toBe("STOP");
    expect(chunks.map((c) => c.candidates[0].content.parts[0].text).join("")).toBe("Echo: one two three");
  });

  it("streams a JSON array without alt=sse", async () => {
    const text = await (await post(url("gemini-2.0-flash", "streamGenerateContent"), req("a b"), GEM)).text();
    const arr = JSON.parse(text);
    expect(arr.map((c: any) => c.candidates[0].content.parts[0].text).join("")).toBe("Echo: a b");
  });

  it("returns functionCall parts (whole) for tools, thought parts with includeThoughts", async () => {
    const tools = [{ functionDeclarations: [{ name: "get_weather", parameters: { type: "OBJECT", properties: { city: { type: "STRING" } }, required: ["city"] } }] }];
    const chunks = jsonEvents(await (await post(url("gemini-2.5-flash", "streamGenerateContent", "?alt=sse"), req("get_weather city=Lyon", { tools }), GEM)).text());
    expect(chunks).toHaveLength(1);
    const part = chunks[0].candidates[0].content.parts[0];
    expect(part.functionCall).toEqual({ name: "get_weather", args: { city: "Lyon" } });
    expect(typeof part.thoughtSignature).toBe("string");
    expect(chunks[0].candidates[0].finishReason).toBe("STOP");
    const none = await (await post(url(), req("get_weather city=Lyon", { tools, toolConfig: { functionCallingConfig: { mode: "NONE" } } }), GEM)).json();
    expect(none.candidates[0].content.parts[0].text).toMatch(/^Echo:/);
    const thought = await (await post(url(), req("ponder", { generationConfig: { thinkingConfig: { includeThoughts: true, thinkingBudget: 512 } } }), GEM)).json();
    expect(thought.candidates[0].content.parts[0]).toEqual({ text: "Thinking about: ponder", thought: true });
    expect(thought.candidates[0].content.parts[1]).toEqual({ text: "Echo: ponder" });
  });

  it("JSON mode answers JSON text following responseSchema; thinkingLevel only on Gemini 3, never with thinkingBudget", async () => {
    const responseSchema = { type: "OBJECT", properties: { city: { type: "STRING" }, temp: { type: "NUMBER" } }, required: ["city", "temp"] };
    const out = await (await post(url(), req("city=Lyon", { generationConfig: { responseMimeType: "application/json", responseSchema } }), GEM)).json();
    expect(JSON.parse(out.candidates[0].content.parts[0].text)).toEqual({ city: "Lyon", temp: 1 });
    expect((await post(url(), req("x", { generationConfig: { responseSchema } }), GEM)).status).toBe(400);
    const level = (model: string, thinkingConfig: object) => post(url(model), req("x", { generationConfig: { thinkingConfig } }), GEM);
    expect((await level("gemini-3-flash-preview", { thinkingLevel: "low" })).status).toBe(200);
    expect((await level("gemini-2.5-flash", { thinkingLevel: "low" })).status).toBe(400);
    expect((await level("gemini-3-flash-preview", { thinkingLevel: "low", thinkingBudget: 1024 })).status).toBe(400);
  });

  it("rejects unknown fields, empty contents, bad roles and orphan function responses", async () => {
    const unknown = await post(url(), req("x", { temperature: 1 }), GEM);
    expect(unknown.status).toBe(400);
    const ue = (await unknown.json()).error;
    expect(ue).toMatchObject({ code: 400, status: "INVALID_ARGUMENT", message: 'Invalid JSON payload received. Unknown name "temperature": Cannot find field.' });
    const empty = await post(url(), { contents: [] }, GEM);
    expect((await empty.json()).error.message).toContain("contents is not specified");
    const role = await post(url(), { contents: [{ role: "assistant", parts: [{ text: "x" }] }] }, GEM);
    expect((await role.json()).error.message).toBe("Please use a valid role: user, model.");
    const orphan = await post(url(), { contents: [{ role: "user", parts: [{ functionResponse: { name: "f", response: {} } }] }] }, GEM);
    expect((await orphan.json()).error.message).toMatch(/function response turn comes immediately after a function call turn/);
  });

  it("counts tokens and lists models", async () => {
    const count = await (await post(url("gemini-2.5-flash", "countTokens"), req("hello there"), GEM)).json();
    expect(count.totalTokens).toBeGreaterThan(0);
    const list = await (await fetch(`${m.gemini.url}/v1beta/models`, { headers: GEM })).json();
    expect(list.models[0].name).toMatch(/^models\//);
  });

  it("embeds with embedContent and batchEmbedContents", async () => {
    const one = await (await post(url("text-embedding-004", "embedContent"), { content: { parts: [{ text: "x" }] } }, GEM)).json();
    expect(one.embedding.values).toHaveLength(768);
    const batch = await (
      await post(url("gemini-embedding-001", "batchEmbedContents"), { requests: [{ model: "models/gemini-embedding-001", content: { parts: [{ text: "a" }] }, outputDimensionality: 16 }, { model: "models/gemini-embedding-001", content: { parts: [{ text: "b" }] } }] }, GEM)
    ).json();
    expect(batch.embeddings.map((e: any) => e.values.length)).toEqual([16, 3072]);
  });

  it("answers 429 RESOURCE_EXHAUSTED with RetryInfo in the body and no Retry-After header; 503 UNAVAILABLE", async () => {
    const limited = await post(url(), req("x"), { ...GEM, "x-mock-429": "30" });
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBeNull();
    const e = (await limited.json()).error;
    expect(e).toMatchObject({ code: 429, status: "RESOURCE_EXHAUSTED" });
    expect(e.details.find((d: any) => d["@type"] === "type.googleapis.com/google.rpc.RetryInfo").retryDelay).toBe("30s");
    const unavailable = await post(url(), req("x"), { ...GEM, "x-mock-5xx": "503" });
    expect(unavailable.status).toBe(503);
    expect((await unavailable.json()).error).toEqual({ code: 503, message: "The model is overloaded. Please try again later.", status: "UNAVAILABLE" });
  });
});

// ---------- DeepSeek ----------

describe("deepseek", () => {
  it("serves /chat/completions and /v1/chat/completions with DeepSeek's usage fields", async () => {
    for (const path of ["/chat/completions", "/v1/chat/completions"]) {
      m.deepseek.script({ text: "ok", usage: { input: 20, cached: 16 } });
      const body = await (await post(`${m.deepseek.url}${path}`, { model: "deepseek-chat", messages: [{ role: "user", content: "x" }] }, OA)).json();
      expect(body.choices[0]).toMatchObject({ message: { role: "assistant", content: "ok" }, finish_reason: "stop", logprobs: null });
      expect(body.usage).toMatchObject({ prompt_tokens: 20, prompt_tokens_details: { cached_tokens: 16 }, prompt_cache_hit_tokens: 16, prompt_cache_miss_tokens: 4 });
      expect(body.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4/);
    }
  });

  it("deepseek-reasoner returns reasoning_content, and streams it before the content", async () => {
    const plain = await (await post(`${m.deepseek.url}/chat/completions`, { model: "deepseek-reasoner", messages: [{ role: "user", content: "why" }] }, OA)).json();
    expect(plain.choices[0].message).toMatchObject({ content: "Echo: why", reasoning_content: "Thinking about: why" });
    expect(plain.usage.completion_tokens_details.reasoning_tokens).toBeGreaterThan(0);
    const chunks = jsonEvents(await (await post(`${m.deepseek.url}/chat/completions`, { model: "deepseek-reasoner", stream: true, messages: [{ role: "user", content: "why" }] }, OA)).text());
    const deltas = chunks.map((c) => c.choices[0].delta);
    expect(deltas[0]).toEqual({ role: "assistant", content: null, reasoning_content: "" });
    const firstContent = deltas.findIndex((d) => typeof d.content === "string" && d.content !== "");
    const lastReasoning = deltas.map((d) => typeof d.reasoning_content === "string" && d.reasoning_content !== "").lastIndexOf(true);
    expect(lastReasoning).toBeLessThan(firstContent);
    expect(deltas.map((d) => d.reasoning_content ?? "").join("")).toBe("Thinking about: why");
  });

  it("puts usage on the finish chunk without stream_options, OpenAI-style with include_usage; keep-alive comments on request", async () => {
    const text = await (await post(`${m.deepseek.url}/chat/completions`, { model: "deepseek-chat", stream: true, messages: [{ role: "user", content: "a b" }] }, { ...OA, "x-mock-keep-alive": "2" })).text();
    const events = parseSse(text);
    expect(events.slice(0, 2).map((e) => e.comment)).toEqual(["keep-alive", "keep-alive"]);
    const chunks = jsonEvents(text);
    const last = chunks[chunks.length - 1];
    expect(last.choices[0]).toMatchObject({ delta: { content: "" }, finish_reason: "stop" });
    expect(last.usage.prompt_cache_miss_tokens).toBeGreaterThan(0);
    for (const c of chunks.slice(0, -1)) expect(c).not.toHaveProperty("usage");
    const withOpt = jsonEvents(await (await post(`${m.deepseek.url}/chat/completions`, { model: "deepseek-chat", stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "a" }] }, OA)).text());
    expect(withOpt[withOpt.length - 1]).toMatchObject({ choices: [], usage: { total_tokens: expect.any(Number) } });
  });

  it("answers DeepSeek's auth and model errors", async () => {
    const none = await post(`${m.deepseek.url}/chat/completions`, { model: "deepseek-chat", messages: [] });
    expect(none.status).toBe(401);
    expect((await none.json()).error).toEqual({ message: "Authentication Fails (auth header format should be Bearer sk-...)", type: "authentication_error", param: null, code: "invalid_request_error" });
    const model = await post(`${m.deepseek.url}/chat/completions`, { model: "gpt-4o", messages: [{ role: "user", content: "x" }] }, OA);
    expect(model.status).toBe(400);
    expect((await model.json()).error.message).toBe("Model Not Exist");
    const missing = await post(`${m.deepseek.url}/chat/completions`, { model: "deepseek-chat" }, OA);
    expect(missing.status).toBe(422);
  });
});

// ---------- Mistral ----------

describe("mistral", () => {
  const url = () => `${m.mistral.url}/v1/chat/completions`;

  it("rejects unknown fields with Mistral's 422 shape, at top level and inside messages", async () => {
    const res = await post(url(), { model: "mistral-small-latest", messages: [{ role: "user", content: "x" }], max_completion_tokens: 5, stream_options: { include_usage: true } }, OA);
    expect(res.status).toBe(422);
    const body = await res.json();
    expect(body).toMatchObject({ object: "error", type: "invalid_request_error", param: null, code: null });
    expect(body.message.detail).toEqual([
      { type: "extra_forbidden", loc: ["body", "max_completion_tokens"], msg: "Extra inputs are not permitted", input: 5 },
      { type: "extra_forbidden", loc: ["body", "stream_options"], msg: "Extra inputs are not permitted", input: { include_usage: true } },
    ]);
    const nested = await post(url(), { model: "mistral-small-latest", messages: [{ role: "user", content: "x" }, { role: "assistant", content: "y", reasoning_content: "z" }, { role: "user", content: "w" }] }, OA);
    expect((await nested.json()).message.detail[0].loc).toEqual(["body", "messages", 1, "assistant", "reasoning_content"]);
    const choice = await post(url(), { model: "mistral-small-latest", tool_choice: "sometimes", messages: [{ role: "user", content: "x" }] }, OA);
    expect(choice.status).toBe(422);
  });

  it("streams usage in the final chunk without stream_options, and a tool call whole in one chunk", async () => {
    const chunks = jsonEvents(await (await post(url(), { model: "mistral-small-latest", stream: true, random_seed: 42, messages: [{ role: "user", content: "a b" }] }, OA)).text());
    const last = chunks[chunks.length - 1];
    expect(last.choices[0].finish_reason).toBe("stop");
    expect(last.usage).toEqual({ prompt_tokens: expect.any(Number), total_tokens: expect.any(Number), completion_tokens: expect.any(Number) });
    expect(m.mistral.lastRequest()!.body.random_seed).toBe(42);
    const tools = [WEATHER_TOOL];
    const tc = jsonEvents(await (await post(url(), { model: "mistral-small-latest", stream: true, tools, tool_choice: "any", messages: [{ role: "user", content: "anything" }] }, OA)).text());
    const calls = tc.flatMap((c) => c.choices[0].delta.tool_calls ?? []);
    expect(calls).toHaveLength(1);
    expect(calls[0].id).toMatch(/^[A-Za-z0-9]{9}$/);
    expect(JSON.parse(calls[0].function.arguments)).toEqual({ city: "test", unit: "celsius" });
    expect(tc[tc.length - 1].choices[0].finish_reason).toBe("tool_calls");
    const none = await (await post(url(), { model: "mistral-small-latest", tools, tool_choice: "none", messages: [{ role: "user", content: "use the tool" }] }, OA)).json();
    expect(none.choices[0].message.content).toBe("Echo: use the tool");
    expect(none.choices[0].message.tool_calls).toBeNull();
  });

  it("answers 401 and unknown paths as Mistral does", async () => {
    const res = await post(url(), { model: "mistral-small-latest", messages: [] });
    expect(res.status).toBe(401);
    expect((await res.json()).message).toBe("Unauthorized");
    const nf = await post(`${m.mistral.url}/v1/nope`, {}, OA);
    expect(await nf.json()).toEqual({ detail: "Not Found" });
  });
});

// ---------- OpenAI-compatible ----------

describe("openai-compatible", () => {
  it("serves at a base path with optional Bearer, lenient fields, include_usage", async () => {
    const s = await startMock("openai-compatible", { basePath: "/api/v1" });
    try {
      const res = await post(`${s.url}/api/v1/chat/completions`, { model: "llama3", stream: true, stream_options: { include_usage: true }, top_k: 20, messages: [{ role: "user", content: "hey" }] });
      expect(res.status).toBe(200);
      const chunks = jsonEvents(await res.text());
      expect(chunks[chunks.length - 1]).toMatchObject({ choices: [], usage: { prompt_tokens: expect.any(Number) } });
      expect((await post(`${s.url}/v1/chat/completions`, { model: "x", messages: [] })).status).toBe(404);
      const models = await (await fetch(`${s.url}/api/v1/models`)).json();
      expect(models.data[0].id).toBe("mock-model");
    } finally {
      await s.close();
    }
    const keyed = await startMock("openai-compatible", { apiKey: "vllm-key" });
    try {
      expect((await post(`${keyed.url}/v1/chat/completions`, { model: "m", messages: [{ role: "user", content: "x" }] })).status).toBe(401);
      expect((await post(`${keyed.url}/v1/chat/completions`, { model: "m", messages: [{ role: "user", content: "x" }] }, { authorization: "Bearer vllm-key" })).status).toBe(200);
    } finally {
      await keyed.close();
    }
  });
});

// ---------- switches ----------

describe("switches", () => {
  const chat = (headers: Record<string, string> = {}, content = "one two three four", signal?: AbortSignal) =>
    post(`${m.openai.url}/v1/chat/completions`, { model: "gpt-4o", stream: true, messages: [{ role: "user", content }] }, { ...OA, ...headers }, signal);

  it("delays the first token (headers first) and spaces chunks", async () => {
    const t0 = performance.now();
    const res = await chat({ "x-mock-first-token-delay-ms": "400", "x-mock-inter-chunk-delay-ms": "40" });
    const headersAt = performance.now() - t0;
    const { times } = await readChunks(res);
    expect(headersAt).toBeLessThan(300);
    expect(times[0] - t0).toBeGreaterThanOrEqual(390);
    expect(times[times.length - 1] - times[0]).toBeGreaterThanOrEqual(40 * 4);
  });

  it("delays a plain response by the first-token delay", async () => {
    m.openai.set({ firstTokenDelayMs: 150 });
    const t0 = performance.now();
    await (await post(`${m.openai.url}/v1/chat/completions`, { model: "gpt-4o", messages: [{ role: "user", content: "x" }] }, OA)).json();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
  });

  it("splits events into many writes, cutting inside multi-byte characters, without changing the bytes", async () => {
    const content = "é漢🌍 ü";
    const whole = await (await chat({}, content)).text();
    const res = await chat({ "x-mock-split": "42", "x-mock-split-delay-ms": "4" }, content);
    const { chunks } = await readChunks(res);
    const text = concat(chunks);
    const norm = (s: string) => s.replace(/"created":\d+/g, "").replace(/chatcmpl-[A-Za-z0-9]+/g, "ID");
    expect(norm(text)).toBe(norm(whole));
    expect(parseSse(text).length).toBe(parseSse(whole).length);
    expect(jsonEvents(text).map((c) => c.choices[0]?.delta?.content ?? "").join("")).toBe(`Echo: ${content}`);
    expect(chunks.length).toBeGreaterThan(parseSse(text).length);
    const broken = chunks.some((c) => {
      try {
        new TextDecoder("utf-8", { fatal: true }).decode(c);
        return false;
      } catch {
        return true;
      }
    });
    expect(broken).toBe(true);
  });

  it("splitPositions always cuts inside the first multi-byte character", () => {
    const buf = Buffer.from('data: {"x":"aé"}\n\n');
    const at = buf.indexOf(0xa9); // continuation byte of é
    for (let seed = 1; seed < 50; seed++) expect(splitPositions(buf, mulberry32(seed))).toContain(at);
  });

  it("disconnects mid-stream after N events", async () => {
    const res = await chat({ "x-mock-disconnect-after": "2" });
    const { chunks, error } = await readChunks(res);
    expect(error).toBeDefined();
    expect(parseSse(concat(chunks))).toHaveLength(2);
  });

  it("cuts a plain body in the middle when disconnect is set", async () => {
    const res = await post(`${m.openai.url}/v1/chat/completions`, { model: "gpt-4o", messages: [{ role: "user", content: "x" }] }, { ...OA, "x-mock-disconnect-after": "0" });
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
  });

  it("hangs (for timeouts), before answering or after N events", async () => {
    await expect(chat({ "x-mock-hang": "1" }, "x", AbortSignal.timeout(200))).rejects.toThrow();
    const res = await chat({ "x-mock-hang-after": "2" }, "a b c", AbortSignal.timeout(300));
    const { chunks, error } = await readChunks(res);
    expect(error).toBeDefined();
    expect(parseSse(concat(chunks))).toHaveLength(2);
  });

  it("sets the number of stream chunks", async () => {
    const chunks = jsonEvents(await (await chat({ "x-mock-chunks": "3" }, "a fairly long sentence of words")).text());
    const content = chunks.filter((c) => c.choices[0]?.delta?.content);
    expect(content).toHaveLength(3);
    expect(content.map((c) => c.choices[0].delta.content).join("")).toBe("Echo: a fairly long sentence of words");
  });

  it("scripts answers in order: text, tool calls, errors, raw, one-shot switches; set() persists until reset()", async () => {
    m.openai.script([
      { text: "scripted" },
      { toolCalls: [{ name: "f", arguments: { a: 1 } }, { name: "g", arguments: "{}" }] },
      { error: { status: 503 } },
      { raw: { status: 418, body: "teapot" } },
      { text: "slow", switches: { firstTokenDelayMs: 100 } },
    ]);
    const p = () => post(`${m.openai.url}/v1/chat/completions`, { model: "gpt-4o", messages: [{ role: "user", content: "x" }] }, OA);
    expect((await (await p()).json()).choices[0].message.content).toBe("scripted");
    const tools = (await (await p()).json()).choices[0].message.tool_calls;
    expect(tools.map((t: any) => [t.function.name, t.function.arguments])).toEqual([
      ["f", '{"a":1}'],
      ["g", "{}"],
    ]);
    expect((await p()).status).toBe(503);
    const raw = await p();
    expect([raw.status, await raw.text()]).toEqual([418, "teapot"]);
    const t0 = performance.now();
    expect((await (await p()).json()).choices[0].message.content).toBe("slow");
    expect(performance.now() - t0).toBeGreaterThanOrEqual(90);
    expect((await (await p()).json()).choices[0].message.content).toBe("Echo: x");
    // a request that fails validation does not consume a scripted step
    m.openai.script({ text: "kept" });
    expect((await post(`${m.openai.url}/v1/chat/completions`, { model: "gpt-4o" }, OA)).status).toBe(400);
    expect((await (await p()).json()).choices[0].message.content).toBe("kept");
    m.openai.set({ serverError: 500 });
    expect((await p()).status).toBe(500);
    expect((await p()).status).toBe(500);
    m.openai.reset();
    expect((await p()).status).toBe(200);
    expect(m.openai.requests).toHaveLength(1);
  });
});

// ---------- router and CLI-style serving ----------

describe("router", () => {
  it("serves every provider under /<kind> on one port, with a control API", async () => {
    const r = await startMockRouter();
    try {
      const a = await post(`${r.url}/anthropic/v1/messages`, { model: "claude-x", max_tokens: 5, messages: [{ role: "user", content: "hi" }] }, ANT);
      expect((await a.json()).content[0].text).toBe("Echo: hi");
      const az = await post(`${r.url}/azure-openai/openai/deployments/d/chat/completions?api-version=2024-10-21`, { messages: [{ role: "user", content: "x" }] }, { "api-key": "k" });
      expect(az.status).toBe(200);
      expect(r.mocks.anthropic.requests[0].path).toBe("/v1/messages");
      await post(`${r.url}/__mock/gemini/script`, { text: "from control" });
      const g = await (await post(`${r.url}/gemini/v1beta/models/gemini-2.0-flash:generateContent`, { contents: [{ parts: [{ text: "x" }] }] }, GEM)).json();
      expect(g.candidates[0].content.parts[0].text).toBe("from control");
      const recorded = await (await fetch(`${r.url}/__mock/gemini/requests`)).json();
      expect(recorded).toHaveLength(1);
      await post(`${r.url}/__mock/gemini/switches`, { serverError: 500 });
      expect((await post(`${r.url}/gemini/v1beta/models/gemini-2.0-flash:generateContent`, { contents: [{ parts: [{ text: "x" }] }] }, GEM)).status).toBe(500);
      expect((await fetch(`${r.url}/nope/v1/x`)).status).toBe(404);
    } finally {
      await r.close();
    }
  });
});

// ---------- recorded streams ----------

describe("recorded streams", () => {
  const all = recordedStreams();

  it("are deterministic and cover text and tool calls for every provider", () => {
    expect(recordedStreams()).toEqual(all);
    for (const kind of MOCK_KINDS) {
      expect(all[kind].text.bytes.length).toBeGreaterThan(0);
      expect(all[kind].tool.bytes.length).toBeGreaterThan(0);
      expect(Buffer.from(all[kind].text.bytes).toString("utf8")).toBe(all[kind].text.text);
    }
  });

  it("reassemble to the expected text and tool arguments in each provider's format", () => {
    for (const kind of ["openai", "azure-openai", "deepseek", "mistral", "openai-compatible"] as const) {
      const text = jsonEvents(all[kind].text.text).map((c) => c.choices[0]?.delta?.content ?? "").join("");
      expect(text, kind).toBe(RECORDED_TEXT);
      expect(all[kind].text.text.endsWith("data: [DONE]\n\n")).toBe(true);
      const calls = jsonEvents(all[kind].tool.text).flatMap((c) => c.choices[0]?.delta?.tool_calls ?? []);
      expect(JSON.parse(calls.map((c: any) => c.function.arguments).join("")), kind).toEqual(all[kind].tool.expected.toolCalls[0].arguments);
    }
    const ant = parseSse(all.anthropic.text.text).map((e) => JSON.parse(e.data));
    expect(ant.filter((d) => d.delta?.type === "text_delta").map((d) => d.delta.text).join("")).toBe(RECORDED_TEXT);
    expect(ant[ant.length - 1].type).toBe("message_stop");
    const antTool = parseSse(all.anthropic.tool.text).map((e) => JSON.parse(e.data));
    expect(JSON.parse(antTool.filter((d) => d.delta?.type === "input_json_delta").map((d) => d.delta.partial_json).join(""))).toEqual(all.anthropic.tool.expected.toolCalls[0].arguments);
    expect(all.gemini.text.text).toContain("\r\n\r\n");
    expect(all.gemini.text.text.replace(/\r\n\r\n/g, "")).not.toContain("\n\n");
    const gem = jsonEvents(all.gemini.text.text);
    expect(gem.map((c) => c.candidates[0].content.parts.map((p: any) => p.text).join("")).join("")).toBe(RECORDED_TEXT);
    expect(all.gemini.thinking.text).toContain('"thought": true');
    expect(jsonEvents(all.deepseek.reasoning.text).map((c) => c.choices[0]?.delta?.reasoning_content ?? "").join("")).toBe(all.deepseek.reasoning.expected.reasoning);
  });

  it("match what the live mocks send for the same answer", async () => {
    m.anthropic.script({ text: RECORDED_TEXT });
    const live = await (await post(`${m.anthropic.url}/v1/messages`, { model: "claude-sonnet-4-5-20250929", max_tokens: 100, stream: true, messages: [{ role: "user", content: "x" }] }, ANT)).text();
    const shape = (s: string) => parseSse(s).map((e) => e.event);
    expect(shape(live)).toEqual(shape(all.anthropic.text.text));
  });
});
