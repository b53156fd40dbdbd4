// Fallback through build/ai-proxy.wasm for every client format (OpenAI chat completions, Anthropic
// messages) × fallback target format (OpenAI, Anthropic, Gemini, an OpenAI-compatible server, and
// OpenAI's dialects Azure, DeepSeek and Mistral),
// streamed and not. The first instance fails (connect failure or 500, driven on the stream); the
// fallback goes over real HTTP (proxy_http_call) to mock providers speaking their own formats.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { Host } from "../../host/index.js";
import { startMock, type MockServer, type MockKind } from "../../scripts/mocks/index.js";
import { WASM, send, header, sseData, sseEvents, usageRecord, upstreamJson, proxyHost } from "./helpers.js";

type Stream = ReturnType<Host["newStream"]>;

/** Envoy's router could not connect to the first instance. */
function connectFailure(s: Stream) {
  s.info.responseCodeDetails = "upstream_reset_before_response_started{connection_failure}";
  s.callOnResponseHeaders({ ":status": "503", "content-type": "text/plain" }, false);
  s.callOnResponseBody("upstream connect error or disconnect/reset before headers. reset reason: connection failure", true);
}

/** The first instance answered 500. */
function serverError(s: Stream) {
  s.info.responseCodeDetails = "via_upstream";
  s.callOnResponseHeaders({ ":status": "500", "content-type": "application/json" }, false);
  s.callOnResponseBody(JSON.stringify({ error: { message: "boom", type: "server_error", param: null, code: null } }), true);
}

const TARGETS: { kind: MockKind; instance: Record<string, unknown>; model: string }[] = [
  { kind: "openai", instance: { provider: "openai", endpoint: "http://openai-b.internal/v1", model: "gpt-4o" }, model: "gpt-4o" },
  { kind: "anthropic", instance: { provider: "anthropic", endpoint: "http://anthropic-b.internal", model: "claude-sonnet-4-5" }, model: "claude-sonnet-4-5" },
  { kind: "gemini", instance: { provider: "gemini", endpoint: "http://gemini-b.internal/v1beta", model: "gemini-2.5-flash" }, model: "gemini-2.5-flash" },
  { kind: "openai-compatible", instance: { provider: "openai-compatible", endpoint: "http://vllm-b.internal/v1", model: "mock-model" }, model: "mock-model" },
  // The rest of the OpenAI dialect family.
  { kind: "azure-openai", instance: { provider: "azure-openai", endpoint: "http://res-b.openai.azure.com/openai", model: "gpt-4o" }, model: "gpt-4o" },
  { kind: "deepseek", instance: { provider: "deepseek", endpoint: "http://deepseek-b.internal", model: "deepseek-chat" }, model: "deepseek-chat" },
  { kind: "mistral", instance: { provider: "mistral", endpoint: "http://mistral-b.internal/v1", model: "mistral-large-latest" }, model: "mistral-large-latest" },
];

const CLIENTS = [
  { name: "OpenAI client", path: "/v1/chat/completions" },
  { name: "Anthropic client", path: "/v1/messages" },
  // The first instance (OpenAI) is asked on its own Responses API; the fallback is translated.
  { name: "Responses client", path: "/v1/responses" },
] as const;

function requestBody(client: (typeof CLIENTS)[number]["path"], stream: boolean) {
  if (client === "/v1/responses") return { model: "m", max_output_tokens: 100, stream, input: [{ role: "user", content: "Bonjour" }] };
  return { model: "m", max_tokens: 100, stream, messages: [{ role: "user", content: "Bonjour" }] };
}

/** The client's text and finish, read from whatever it got, in its own format. */
function readAnswer(client: (typeof CLIENTS)[number]["path"], stream: boolean, body: string): { text: string; done: boolean } {
  if (client === "/v1/responses") {
    if (!stream) {
      const j = JSON.parse(body);
      return { text: j.output.filter((o: any) => o.type === "message").map((o: any) => o.content[0].text).join(""), done: j.object === "response" && j.status === "completed" };
    }
    const events = sseEvents(body).map((e) => JSON.parse(e.data));
    return { text: events.filter((e) => e.type === "response.output_text.delta").map((e) => e.delta).join(""), done: events[0]?.type === "response.created" && events.at(-1)?.type === "response.completed" };
  }
  if (!stream) {
    const j = JSON.parse(body);
    if (client === "/v1/chat/completions") return { text: j.choices[0].message.content, done: j.object === "chat.completion" && !!j.choices[0].finish_reason };
    return { text: j.content.filter((b: any) => b.type === "text").map((b: any) => b.text).join(""), done: j.type === "message" && !!j.stop_reason };
  }
  if (client === "/v1/chat/completions") {
    const data = sseData(body);
    const chunks = data.filter((d) => d !== "[DONE]").map((d) => JSON.parse(d));
    expect(chunks.every((c) => c.object === "chat.completion.chunk")).toBe(true);
    return { text: chunks.map((c) => c.choices[0]?.delta?.content ?? "").join(""), done: data.at(-1) === "[DONE]" && chunks.some((c) => c.choices[0]?.finish_reason) };
  }
  const events = sseEvents(body);
  expect(events.some((e) => e.event === "error")).toBe(false);
  const text = events.filter((e) => e.event === "content_block_delta").map((e) => JSON.parse(e.data).delta.text ?? "").join("");
  return { text, done: events[0]?.event === "message_start" && events.at(-1)?.event === "message_stop" };
}

describe("fallback: every client format × every target format, streamed and not", () => {
  const mocks: Partial<Record<MockKind, MockServer>> = {};
  beforeAll(async () => {
    for (const t of TARGETS) mocks[t.kind] = await startMock(t.kind, { apiKey: "k-b" });
  });
  afterAll(async () => {
    for (const m of Object.values(mocks)) await m!.close();
  });

  for (const client of CLIENTS) {
    for (const target of TARGETS) {
      for (const stream of [false, true]) {
        it(`${client.name} → ${target.kind} fallback, ${stream ? "streamed" : "plain"}: a real answer from the instance that gave it`, async () => {
          const h = await Host.create({
            filters: [{
              name: "ai-proxy", wasm: WASM, allowOnHeadersStopIteration: true,
              configuration: {
                instances: [
                  { name: "a", provider: "openai", api_key: "k-a", endpoint: "http://openai-a.internal/v1", priority: 0 },
                  { name: "b", api_key: "k-b", priority: 1, ...target.instance },
                ],
                pools: [{ name: "m", instances: ["a", "b"] }],
                instance_header: true,
              },
            }],
            clusters: { b: mocks[target.kind]!.url },
          });
          for (const fail of [connectFailure, serverError]) {
            const before = mocks[target.kind]!.requests.length;
            const s = send(h, client.path, requestBody(client.path, stream));
            expect(header(s.upstream.headers, "x-sluice-cluster")).toBe("a");
            if (client.path === "/v1/responses") expect(header(s.upstream.headers, ":path")).toBe("/v1/responses");
            fail(s);
            await h.settle();
            s.completeHttpContext();
            // The fallback asked for a whole answer, whatever the client asked.
            const seen = mocks[target.kind]!.requests.slice(before);
            expect(seen).toHaveLength(1);
            expect(seen[0].body?.stream ?? false).toBe(false);
            expect(seen[0].body?.stream_options).toBeUndefined();
            if (target.kind === "gemini") expect(seen[0].path).toMatch(/:generateContent$/);
            // The client got a real answer in its own format, from b.
            expect(header(s.downstream.headers, ":status")).toBe("200");
            expect(header(s.downstream.headers, "content-type")).toBe(stream ? "text/event-stream" : "application/json");
            expect(header(s.downstream.headers, "x-sluice-instance")).toBe("b");
            const got = readAnswer(client.path, stream, s.downstream.body.toString());
            expect(got.text).toContain("Bonjour");
            expect(got.done).toBe(true);
            // The log says who answered and who failed first.
            expect(s.getFilterState("sluice.instance")).toBe("b");
            expect(s.getFilterState("sluice.attempts")).toBe("2");
            expect(s.getFilterState("sluice.fallback_from")).toBe(fail === connectFailure ? "a:connect_failure" : "a:5xx");
            expect(usageRecord(s).source).toBe("provider");
            expect(Number(usageRecord(s).completion)).toBeGreaterThan(0);
          }
        });
      }
    }
  }
});

describe("fallback: a target that streams although asked not to, or answers garbage", () => {
  let openai: MockServer;
  beforeAll(async () => {
    openai = await startMock("openai", { apiKey: "k-b" });
  });
  afterAll(async () => {
    await openai.close();
  });

  const CONFIG = {
    instances: [
      { name: "a", provider: "anthropic", api_key: "k-a", endpoint: "http://anthropic-a.internal", priority: 0 },
      { name: "b", provider: "openai", api_key: "k-b", endpoint: "http://openai-b.internal/v1", model: "gpt-4o", priority: 1 },
    ],
    pools: [{ name: "m", instances: ["a", "b"] }],
    instance_header: true,
  };
  const SSE = [
    { id: "c1", object: "chat.completion.chunk", created: 1, model: "gpt-4o", choices: [{ index: 0, delta: { role: "assistant", content: "Hi " }, finish_reason: null }] },
    { id: "c1", object: "chat.completion.chunk", created: 1, model: "gpt-4o", choices: [{ index: 0, delta: { content: "there" }, finish_reason: "stop" }] },
    { id: "c1", object: "chat.completion.chunk", created: 1, model: "gpt-4o", choices: [], usage: { prompt_tokens: 7, completion_tokens: 2, total_tokens: 9 } },
  ].map((c) => `data: ${JSON.stringify(c)}\n\n`).join("") + "data: [DONE]\n\n";

  async function run(path: string, stream: boolean, raw: { status: number; headers?: Record<string, string>; body: string }) {
    const h = await Host.create({
      filters: [{ name: "ai-proxy", wasm: WASM, configuration: CONFIG, allowOnHeadersStopIteration: true }],
      clusters: { b: openai.url },
    });
    openai.script({ raw });
    const s = send(h, path, { model: "m", max_tokens: 50, stream, messages: [{ role: "user", content: "Hello" }] });
    serverError(s);
    await h.settle();
    s.completeHttpContext();
    return s;
  }

  it("an SSE answer is read as a stream for a client that asked for one (both client formats)", async () => {
    const s = await run("/v1/chat/completions", true, { status: 200, headers: { "content-type": "text/event-stream" }, body: SSE });
    expect(header(s.downstream.headers, ":status")).toBe("200");
    expect(header(s.downstream.headers, "content-type")).toBe("text/event-stream");
    expect(readAnswer("/v1/chat/completions", true, s.downstream.body.toString())).toEqual({ text: "Hi there", done: true });
    expect(usageRecord(s)).toMatchObject({ prompt: "7", completion: "2", source: "provider" });
    expect(header(s.downstream.headers, "x-sluice-instance")).toBe("b");

    const a = await run("/v1/messages", true, { status: 200, headers: { "content-type": "text/event-stream" }, body: SSE });
    expect(header(a.downstream.headers, ":status")).toBe("200");
    expect(readAnswer("/v1/messages", true, a.downstream.body.toString())).toEqual({ text: "Hi there", done: true });
  });

  it("an SSE answer to a plain request is a 502 in the client's shape, never a 200 error", async () => {
    const s = await run("/v1/chat/completions", false, { status: 200, headers: { "content-type": "text/event-stream" }, body: SSE });
    expect(header(s.downstream.headers, ":status")).toBe("502");
    expect(JSON.parse(s.downstream.body.toString()).error.code).toBe("bad_upstream_response");
    expect(header(s.downstream.headers, "x-sluice-instance")).toBe("b");
    // The provider answered: it is charged (estimated), never free.
    expect(usageRecord(s).source).toBe("estimate");
    expect(Number(usageRecord(s).completion)).toBeGreaterThan(0);

    const a = await run("/v1/messages", false, { status: 200, headers: { "content-type": "text/event-stream" }, body: SSE });
    expect(header(a.downstream.headers, ":status")).toBe("502");
    expect(JSON.parse(a.downstream.body.toString())).toMatchObject({ type: "error", error: { type: "api_error" } });
  });

  it("a 200 the gateway cannot read is a 502, streamed or not, in either client format", async () => {
    for (const path of ["/v1/chat/completions", "/v1/messages"]) {
      for (const stream of [false, true]) {
        for (const raw of [
          { status: 200, headers: { "content-type": "application/json" }, body: "{not json" },
          { status: 200, headers: { "content-type": "text/event-stream" }, body: ": nothing but a comment\n\n" },
        ]) {
          const s = await run(path, stream, raw);
          expect(header(s.downstream.headers, ":status")).toBe("502");
          expect(header(s.downstream.headers, "content-type")).toBe("application/json");
          const e = JSON.parse(s.downstream.body.toString());
          if (path === "/v1/messages") expect(e).toMatchObject({ type: "error", error: { type: "api_error" } });
          else expect(e.error.code).toBe("bad_upstream_response");
        }
      }
    }
  });
});

describe("the stream member of an OpenAI-dialect body is the gateway's", () => {
  it("first attempt: the client's member as it means (null and false kept), true only when streaming", async () => {
    const h = await proxyHost({ instances: [{ name: "oa", provider: "openai", api_key: "k" }] });
    const body = (stream: unknown) => upstreamJson(send(h, "/v1/chat/completions", { model: "gpt-4o", stream, messages: [{ role: "user", content: "x" }] }));
    expect(body(null)).toMatchObject({ stream: null });
    expect(body(null).stream_options).toBeUndefined();
    expect(body(false)).toMatchObject({ stream: false });
    expect(body(true)).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    expect("stream" in body(undefined)).toBe(false);
  });
});
