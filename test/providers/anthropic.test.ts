// The Anthropic provider (assembly/providers/anthropic.ts) through build/ai-proxy.wasm and the
// Envoy-faithful host: OpenAI requests translated to the Messages API, answers, streams and
// errors translated back, the usage record, and Anthropic clients round-tripping through it.
import { describe, it, expect, beforeAll } from "vitest";
import { readFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Host } from "../../host/index.js";
import { providerHosts, header, send, upstream, reply, rejected, usage, dataOf, eventsOf, assemble, type Pairs, type S } from "./helpers.js";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "fixtures");
const TEXT_STREAM = readFileSync(join(FIXTURES, "anthropic-stream-text.sse"), "utf8");
const TOOL_STREAM = readFileSync(join(FIXTURES, "anthropic-stream-tools.sse"), "utf8");
const NOW_S = 1_750_000_000;

const CONFIG = {
  instances: [
    { name: "claude", provider: "anthropic", api_key: "sk-ant-test", model: "claude-sonnet-4-5" },
  ],
};


// Nothing the provider does may trap the VM: checked after each test (helpers.ts providerHosts).
const makeHost = providerHosts(CONFIG, NOW_S);

const ANSWER = {
  id: "msg_01XFDUDYJgAACzvnptvVoYEL",
  type: "message",
  role: "assistant",
  model: "claude-sonnet-4-5-20250929",
  content: [
    { type: "thinking", thinking: "Need the weather tool.", signature: "EqQBCgIYAhIM" },
    { type: "text", text: "Let me check " },
    { type: "text", text: "the weather." },
    { type: "tool_use", id: "toolu_01A09q90qw90lq917835lq9", name: "get_weather", input: { location: "San Francisco, CA", unit: "celsius" } },
  ],
  stop_reason: "tool_use",
  stop_sequence: null,
  usage: { input_tokens: 2095, output_tokens: 503, cache_creation_input_tokens: 5, cache_read_input_tokens: 1000 },
};

describe("anthropic provider: request translation", () => {
  let h: Host;
  beforeAll(async () => {
    h = await makeHost();
  });

  it("targets /v1/messages with x-api-key and anthropic-version, never the client's credential", () => {
    const s = send(h, { model: "gpt-4o", messages: [{ role: "user", content: "Hi" }] }, "/v1/chat/completions", { "x-api-key": "client-x" });
    const up = s.upstream.headers!;
    expect(header(up, ":path")).toBe("/v1/messages");
    expect(header(up, ":authority")).toBe("api.anthropic.com");
    expect(header(up, "x-sluice-cluster")).toBe("claude");
    expect(header(up, "x-api-key")).toBe("sk-ant-test");
    expect(header(up, "anthropic-version")).toBe("2023-06-01");
    expect(header(up, "content-type")).toBe("application/json");
    expect(header(up, "authorization")).toBeUndefined();
    expect(up.map(([, v]) => v).join("\n")).not.toContain("client-");
    expect(upstream(s)).toEqual({
      model: "claude-sonnet-4-5", max_tokens: 4096,
      messages: [{ role: "user", content: [{ type: "text", text: "Hi" }] }],
    });
    expect(s.getFilterState("sluice.provider")).toBe("anthropic");
    expect(s.getFilterState("sluice.instance")).toBe("claude");
    expect(s.getFilterState("sluice.request_model")).toBe("gpt-4o");
    expect(s.getFilterState("sluice.model")).toBe("claude-sonnet-4-5");
  });

  it("translates a full request: system, turns, images, tools, tool results, sampling, stop, user", () => {
    const req = {
      model: "claude",
      messages: [
        { role: "system", content: "You are terse." },
        { role: "developer", content: [{ type: "text", text: "Answer in French." }] },
        { role: "user", content: "What's the weather?", name: "bob" },
        { role: "user", content: [
          { type: "text", text: "And look at this:" },
          { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=", detail: "high" } },
          { type: "image_url", image_url: { url: "https://example.com/cat.jpg" } },
          { type: "image_url", image_url: { url: "data:image/jpeg;name=a.jpg;base64,/9j/4AAQ" } },
        ] },
        { role: "assistant", content: "", tool_calls: [
          { id: "call_1", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Paris\"}" } },
          { id: "call_2", type: "function", function: { name: "get_time", arguments: "" } },
        ] },
        { role: "tool", tool_call_id: "call_1", content: "18°C" },
        { role: "tool", tool_call_id: "call_2", content: [{ type: "text", text: "14:00" }] },
        { role: "user", content: "Thanks" },
        { role: "assistant", content: [{ type: "text", text: "De rien" }] },
        { role: "assistant", content: "!" },
      ],
      max_completion_tokens: 1000,
      temperature: 0.7, top_p: 0.9, top_k: 40,
      stop: ["\n\nHuman:", "END"],
      user: "user-42",
      tools: [
        { type: "function", function: { name: "get_weather", description: "Weather by city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }, strict: true } },
        { type: "function", function: { name: "get_time", parameters: { properties: {} } } },
        { type: "function", function: { name: "noop" } },
      ],
      tool_choice: "required",
      parallel_tool_calls: false,
      // harmless drops
      seed: 7, store: false, metadata: { a: "b" }, stream_options: null, n: 1, response_format: { type: "text" },
      presence_penalty: 0, frequency_penalty: 0, logprobs: false, service_tier: "auto", prompt_cache_key: "k",
    };
    const body = upstream(send(h, req));
    expect(body).toEqual({
      model: "claude-sonnet-4-5",
      max_tokens: 1000,
      messages: [
        { role: "user", content: [
          { type: "text", text: "What's the weather?" },
          { type: "text", text: "And look at this:" },
          { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } },
          { type: "image", source: { type: "url", url: "https://example.com/cat.jpg" } },
          { type: "image", source: { type: "base64", media_type: "image/jpeg", data: "/9j/4AAQ" } },
        ] },
        { role: "assistant", content: [
          { type: "tool_use", id: "call_1", name: "get_weather", input: { city: "Paris" } },
          { type: "tool_use", id: "call_2", name: "get_time", input: {} },
        ] },
        { role: "user", content: [
          { type: "tool_result", tool_use_id: "call_1", content: "18°C" },
          { type: "tool_result", tool_use_id: "call_2", content: [{ type: "text", text: "14:00" }] },
          { type: "text", text: "Thanks" },
        ] },
        { role: "assistant", content: [{ type: "text", text: "De rien" }, { type: "text", text: "!" }] },
      ],
      system: "You are terse.\n\nAnswer in French.",
      temperature: 0.7, top_p: 0.9, top_k: 40,
      stop_sequences: ["\n\nHuman:", "END"],
      metadata: { user_id: "user-42" },
      tools: [
        { name: "get_weather", description: "Weather by city", input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } },
        { name: "get_time", input_schema: { type: "object", properties: {} } },
        { name: "noop", input_schema: { type: "object", properties: {} } },
      ],
      tool_choice: { type: "any", disable_parallel_tool_use: true },
    });
  });

  it("maps tool_choice auto / none / function, and parallel_tool_calls alone", () => {
    const tools = [{ type: "function", function: { name: "f", parameters: { type: "object" } } }];
    const base = { model: "m", messages: [{ role: "user", content: "x" }], tools };
    expect(upstream(send(h, { ...base, tool_choice: "auto" })).tool_choice).toEqual({ type: "auto" });
    expect(upstream(send(h, { ...base, tool_choice: "none", parallel_tool_calls: false })).tool_choice).toEqual({ type: "none" });
    expect(upstream(send(h, { ...base, tool_choice: { type: "function", function: { name: "f" } } })).tool_choice).toEqual({ type: "tool", name: "f" });
    expect(upstream(send(h, { ...base, parallel_tool_calls: false })).tool_choice).toEqual({ type: "auto", disable_parallel_tool_use: true });
    expect(upstream(send(h, { ...base, parallel_tool_calls: true })).tool_choice).toBeUndefined();
    // Without tools: auto/none say nothing; required cannot be honoured.
    expect(upstream(send(h, { model: "m", messages: [{ role: "user", content: "x" }], tool_choice: "none" })).tool_choice).toBeUndefined();
    expect(rejected(send(h, { model: "m", messages: [{ role: "user", content: "x" }], tool_choice: "required" })).param).toBe("tool_choice");
  });

  it("stop as a string, max_tokens, safety_identifier, thinking, stream", () => {
    const body = upstream(send(h, {
      model: "m", messages: [{ role: "user", content: "x" }], stop: "###", max_tokens: 77,
      user: "u1", safety_identifier: "sid", thinking: { type: "enabled", budget_tokens: 2048 }, stream: true,
    }));
    expect(body.stop_sequences).toEqual(["###"]);
    expect(body.max_tokens).toBe(77);
    expect(body.metadata).toEqual({ user_id: "sid" });
    expect(body.thinking).toEqual({ type: "enabled", budget_tokens: 2048 });
    expect(body.stream).toBe(true);
    expect(body.stream_options).toBeUndefined();
  });

  it("prefers max_completion_tokens over max_tokens", () => {
    expect(upstream(send(h, { model: "m", messages: [{ role: "user", content: "x" }], max_tokens: 5, max_completion_tokens: 9 })).max_tokens).toBe(9);
  });

  it("answers a clear 400 for what Anthropic cannot take", () => {
    const m = [{ role: "user", content: "x" }];
    const cases: [object, string, RegExp][] = [
      [{ temperature: 1.5 }, "temperature", /between 0 and 1.*1\.5/],
      [{ n: 2 }, "n", /must be 1/],
      [{ response_format: { type: "xml" } }, "response_format.type", /text, json_object or json_schema/],
      [{ response_format: { type: "json_schema" } }, "response_format.json_schema", /required/],
      [{ response_format: { type: "json_schema", json_schema: { name: "x", schema: [] } } }, "response_format.json_schema.schema", /JSON Schema object/],
      [{ logprobs: true }, "logprobs", /not supported by provider anthropic/],
      [{ top_logprobs: 3 }, "top_logprobs", /not supported/],
      [{ logit_bias: { "50256": -100 } }, "logit_bias", /not supported/],
      [{ presence_penalty: 0.5 }, "presence_penalty", /not supported/],
      [{ frequency_penalty: -1 }, "frequency_penalty", /not supported/],
      [{ modalities: ["text", "audio"] }, "modalities", /not supported/],
      [{ audio: { voice: "alloy", format: "wav" } }, "audio", /not supported/],
      [{ reasoning_effort: "max" }, "reasoning_effort", /none, minimal, low, medium or high/],
      [{ functions: [{ name: "f" }] }, "functions", /deprecated/],
      [{ web_search_options: {} }, "web_search_options", /not supported/],
      [{ some_future_field: 1 }, "some_future_field", /not supported/],
      [{ max_tokens: 0 }, "max_tokens", /positive integer/],
      [{ max_completion_tokens: 1.5 }, "max_completion_tokens", /positive integer/],
      [{ stop: [1] }, "stop", /string/],
      [{ thinking: true }, "thinking", /object/],
      [{ tools: [{ type: "custom", custom: { name: "x" } }] }, "tools[0].type", /only function tools/],
      [{ tools: [{ type: "function", function: { name: "f" } }], tool_choice: { type: "allowed_tools" } }, "tool_choice", /must be/],
    ];
    for (const [extra, param, msg] of cases) {
      const e = rejected(send(h, { model: "m", messages: m, ...extra }));
      expect(e.type, JSON.stringify(extra)).toBe("invalid_request_error");
      expect(e.param, JSON.stringify(extra)).toBe(param);
      expect(e.message, JSON.stringify(extra)).toMatch(msg);
    }
  });

  it("rejects messages it cannot express, with the path of the offending part", () => {
    const cases: [unknown[], string][] = [
      [[{ role: "assistant", content: null, tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "{not json" } }] }], "messages[0].tool_calls[0].function.arguments"],
      [[{ role: "assistant", content: null, tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "[1,2]" } }] }], "messages[0].tool_calls[0].function.arguments"],
      [[{ role: "assistant", content: null, tool_calls: [{ type: "function", function: { name: "f", arguments: "{}" } }] }], "messages[0].tool_calls[0].id"],
      [[{ role: "user", content: [{ type: "image_url", image_url: { url: "ftp://x/y.png" } }] }], "messages[0].content[0].image_url.url"],
      [[{ role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png,plain" } }] }], "messages[0].content[0].image_url.url"],
      [[{ role: "user", content: [{ type: "image_url", image_url: { url: "data:;base64,AAAA" } }] }], "messages[0].content[0].image_url.url"],
      [[{ role: "user", content: [{ type: "input_audio", input_audio: { data: "", format: "wav" } }] }], "messages[0].content[0]"],
      [[{ role: "user", content: [{ type: "file", file: { file_id: "f" } }] }], "messages[0].content[0]"],
      [[{ role: "user", content: 42 }], "messages[0].content"],
      [[{ role: "system", content: [{ type: "image_url", image_url: { url: "https://x" } }] }, { role: "user", content: "x" }], "messages[0].content[0]"],
      [[{ role: "tool", content: "x" }], "messages[0].tool_call_id"],
      [[{ role: "function", name: "f", content: "x" }], "messages[0].role"],
      [[{ role: "wizard", content: "x" }], "messages[0].role"],
      [["just a string"], "messages[0]"],
      [[{ role: "system", content: "only a system prompt" }], "messages"],
    ];
    for (const [messages, param] of cases) {
      const e = rejected(send(h, { model: "m", messages }));
      expect(e.param, JSON.stringify(messages)).toBe(param);
    }
  });

  it("a configured max_tokens forces the value; options are Anthropic members and win", async () => {
    const h2 = await makeHost({ instances: [{
      name: "c2", provider: "anthropic", api_key: "k2", model: "claude-haiku-4-5", max_tokens: 512,
      endpoint: "https://llm-proxy.internal/anthropic/v1", api_version: "2024-01-01",
      options: { top_k: 5, service_tier: "standard_only", temperature: 0.2 },
    }] });
    const s = send(h2, { model: "x", messages: [{ role: "user", content: "x" }], max_tokens: 9000, temperature: 0.9, top_k: 1 });
    const body = upstream(s);
    expect(body).toEqual({
      model: "claude-haiku-4-5", max_tokens: 512,
      messages: [{ role: "user", content: [{ type: "text", text: "x" }] }],
      top_k: 5, service_tier: "standard_only", temperature: 0.2,
    });
    expect(header(s.upstream.headers, ":path")).toBe("/anthropic/v1/messages");
    expect(header(s.upstream.headers, ":authority")).toBe("llm-proxy.internal");
    expect(header(s.upstream.headers, "anthropic-version")).toBe("2024-01-01");
  });

  it("embeddings: Anthropic has none", () => {
    const s = send(h, { model: "m", input: "hello" }, "/v1/embeddings");
    expect(rejected(s).code).toBe("unsupported_endpoint");
  });
});

describe("anthropic provider: answers", () => {
  let h: Host;
  beforeAll(async () => {
    h = await makeHost();
  });

  it("translates a Messages answer (thinking, text, tool_use) into a chat.completion, with the usage record", () => {
    const s = send(h, { model: "gpt-4o", messages: [{ role: "user", content: "Weather in SF?" }] });
    const out = JSON.parse(reply(s, 200, "application/json", [JSON.stringify(ANSWER)]));
    expect(out).toEqual({
      id: "msg_01XFDUDYJgAACzvnptvVoYEL",
      object: "chat.completion",
      created: NOW_S,
      model: "claude-sonnet-4-5-20250929",
      choices: [{
        index: 0,
        message: {
          role: "assistant",
          content: "Let me check the weather.",
          reasoning_content: "Need the weather tool.",
          refusal: null,
          tool_calls: [{ id: "toolu_01A09q90qw90lq917835lq9", type: "function", function: { name: "get_weather", arguments: "{\"location\":\"San Francisco, CA\",\"unit\":\"celsius\"}" } }],
        },
        logprobs: null,
        finish_reason: "tool_calls",
      }],
      usage: {
        prompt_tokens: 3100, completion_tokens: 503, total_tokens: 3603,
        prompt_tokens_details: { cached_tokens: 1000 }, completion_tokens_details: { reasoning_tokens: 0 },
      },
    });
    expect(usage(s)).toEqual({ prompt: "3100", completion: "503", total: "3603", cached: "1000", reasoning: "0", source: "provider" });
    expect(s.getFilterState("sluice.model")).toBe("claude-sonnet-4-5-20250929");
    expect(s.getFilterState("sluice.request_type")).toBe("ai_chat");
    expect(header(s.downstream.headers, "content-type")).toBe("application/json");
  });

  it("maps every stop_reason", () => {
    const cases: [string, string][] = [
      ["end_turn", "stop"], ["stop_sequence", "stop"], ["pause_turn", "stop"], ["max_tokens", "length"],
      ["model_context_window_exceeded", "length"], ["tool_use", "tool_calls"], ["refusal", "content_filter"], ["something_new", "stop"],
    ];
    for (const [stop, finish] of cases) {
      const s = send(h, { model: "m", messages: [{ role: "user", content: "x" }] });
      const body = { ...ANSWER, content: [{ type: "text", text: "ok" }], stop_reason: stop, stop_sequence: stop === "stop_sequence" ? "END" : null };
      const out = JSON.parse(reply(s, 200, "application/json", [JSON.stringify(body)]));
      expect(out.choices[0].finish_reason, stop).toBe(finish);
      expect(out.choices[0].message.content).toBe("ok");
    }
  });

  it("an answer with no content block gives empty content, not null", () => {
    const s = send(h, { model: "m", messages: [{ role: "user", content: "x" }] });
    const out = JSON.parse(reply(s, 200, "application/json", [JSON.stringify({ ...ANSWER, content: [], stop_reason: "end_turn", usage: { input_tokens: 3, output_tokens: 0 } })]));
    expect(out.choices[0].message.content).toBe("");
    expect(out.usage).toMatchObject({ prompt_tokens: 3, completion_tokens: 0, total_tokens: 3 });
  });

  it("an unreadable answer is a 502, never a trap", () => {
    for (const bad of ["{", "[]", '{"type":"message"}', '{"content":"text"}', '{"type":"error","content":[]}', "null", '{"content":[{"type":"tool_use","input":null}],"usage":{"input_tokens":1e400,"output_tokens":-5}}']) {
      const s = send(h, { model: "m", messages: [{ role: "user", content: "x" }] });
      const text = reply(s, 200, "application/json", [bad]);
      const out = JSON.parse(text);
      if (out.error) {
        // The status stays what the provider sent: ai-proxy's badAnswer() rewrites :status from the
        // body callback, after the response headers already left (reported as a shared-code bug).
        expect(out.error.code).toBe("bad_upstream_response");
      } else {
        expect(out.object).toBe("chat.completion");
      }
    }
  });
});

describe("anthropic provider: streams", () => {
  let h: Host;
  beforeAll(async () => {
    h = await makeHost();
  });

  function streamed(stream: string, chunks: (string | Buffer)[], include_usage = true) {
    const s = send(h, { model: "gpt-4o", messages: [{ role: "user", content: "x" }], stream: true, stream_options: { include_usage } });
    expect(upstream(s).stream).toBe(true);
    const out = reply(s, 200, "text/event-stream", chunks);
    return { s, out };
  }

  it("text and thinking: OpenAI chunks, usage merged from message_start and message_delta, [DONE]", () => {
    const { s, out } = streamed(TEXT_STREAM, [TEXT_STREAM]);
    expect(header(s.downstream.headers, "content-type")).toBe("text/event-stream");
    const chunks = dataOf(out);
    expect(chunks[chunks.length - 1]).toBe("[DONE]");
    for (const c of chunks.slice(0, -1)) {
      expect(c.id).toBe("msg_01XFDUDYJgAACzvnptvVoYEL");
      expect(c.object).toBe("chat.completion.chunk");
      expect(c.model).toBe("claude-sonnet-4-5-20250929");
      expect(c.created).toBe(NOW_S);
    }
    expect(chunks[0].choices[0].delta).toEqual({ role: "assistant", reasoning_content: "The user greets me in French; " });
    const a = assemble(chunks);
    expect(a.reasoning).toBe("The user greets me in French; answer kindly.");
    expect(a.content).toBe("Bonjour, ça va ? 🌍 — très \"bien\"\n");
    expect(a.finish).toBe("stop");
    // input 472 + cache read 2048 + cache creation 100
    expect(a.usage).toEqual({ prompt_tokens: 2620, completion_tokens: 37, total_tokens: 2657, prompt_tokens_details: { cached_tokens: 2048 }, completion_tokens_details: { reasoning_tokens: 0 } });
    expect(usage(s)).toEqual({ prompt: "2620", completion: "37", total: "2657", cached: "2048", reasoning: "0", source: "provider" });
    expect(s.getFilterState("sluice.request_type")).toBe("ai_stream");
  });

  it("tool_use blocks become tool calls 0, 1 with streamed arguments", () => {
    const { s, out } = streamed(TOOL_STREAM, [TOOL_STREAM], false);
    const chunks = dataOf(out);
    const a = assemble(chunks);
    expect(a.content).toBe("Checking the weather.");
    expect(a.tools).toEqual([
      { id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", name: "get_weather", args: "{\"location\": \"San Francisco, CA\"}" },
      { id: "toolu_02AbCdEf", name: "get_time", args: "{\"tz\":\"PST\"}" },
    ]);
    expect(a.finish).toBe("tool_calls");
    expect(a.usage).toBeNull(); // the client did not ask for usage
    const starts = chunks.filter((c) => c !== "[DONE]" && c.choices[0]?.delta?.tool_calls?.[0]?.id);
    expect(starts.map((c) => c.choices[0].delta.tool_calls[0].index)).toEqual([0, 1]);
    expect(usage(s)).toEqual({ prompt: "472", completion: "89", total: "561", cached: "0", reasoning: "0", source: "provider" });
  });

  it("gives the same output whatever the chunk boundaries (every split point, and byte by byte)", () => {
    for (const stream of [TEXT_STREAM, TOOL_STREAM]) {
      const whole = streamed(stream, [stream]).out;
      const bytes = Buffer.from(stream, "utf8");
      for (let cut = 1; cut < bytes.length; cut += 7) {
        expect(streamed(stream, [bytes.subarray(0, cut), bytes.subarray(cut)]).out).toBe(whole);
      }
      const single = Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
      expect(streamed(stream, single).out).toBe(whole);
      // CRLF line endings are SSE too.
      expect(streamed(stream, [stream.replace(/\n/g, "\r\n")]).out).toBe(whole);
    }
  });

  it("stop_sequence and max_tokens in message_delta", () => {
    const ev = (o: object) => `event: ${(o as any).type}\ndata: ${JSON.stringify(o)}\n\n`;
    const start = ev({ type: "message_start", message: { id: "msg_1", type: "message", role: "assistant", model: "claude", content: [], usage: { input_tokens: 5, output_tokens: 1 } } });
    for (const [stop, finish] of [["stop_sequence", "stop"], ["max_tokens", "length"], ["refusal", "content_filter"]]) {
      const stream = start
        + ev({ type: "content_block_start", index: 0, content_block: { type: "text", text: "" } })
        + ev({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "a" } })
        + ev({ type: "content_block_stop", index: 0 })
        + ev({ type: "message_delta", delta: { stop_reason: stop, stop_sequence: stop === "stop_sequence" ? "END" : null }, usage: { output_tokens: 3 } })
        + ev({ type: "message_stop" });
      const { s, out } = streamed(stream, [stream]);
      expect(assemble(dataOf(out)).finish).toBe(finish);
      expect(usage(s)).toMatchObject({ prompt: "5", completion: "3", source: "provider" });
    }
  });

  it("an error event mid-stream: the client gets an OpenAI error chunk and [DONE]", () => {
    const cut = TEXT_STREAM.indexOf("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}");
    const stream = TEXT_STREAM.slice(0, cut)
      + 'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n';
    const { s, out } = streamed(stream, [stream]);
    const chunks = dataOf(out);
    expect(chunks[chunks.length - 1]).toBe("[DONE]");
    const err = chunks.find((c) => c !== "[DONE]" && c.error);
    expect(err.error).toMatchObject({ type: "overloaded_error", message: "Overloaded" });
    expect(assemble(chunks).content).toBe("Bonjour, ça va ? 🌍 — très \"bien\"\n");
    // No usage from the provider: estimated, and never zero.
    const u = usage(s);
    expect(u.source).toBe("estimate");
    expect(Number(u.completion)).toBeGreaterThan(0);
    expect(Number(u.prompt)).toBeGreaterThan(0);
  });

  it("a stream cut before message_delta ends with an error for the client and an estimated usage", () => {
    const cut = TEXT_STREAM.indexOf("event: message_delta");
    const { s, out } = streamed(TEXT_STREAM, [TEXT_STREAM.slice(0, cut)]);
    const chunks = dataOf(out);
    expect(chunks.find((c) => c !== "[DONE]" && c.error)?.error.code).toBe("upstream_incomplete");
    expect(chunks[chunks.length - 1]).toBe("[DONE]");
    expect(usage(s).source).toBe("estimate");
  });

  it("a client that hangs up mid-stream is charged an estimate", () => {
    const s = send(h, { model: "m", messages: [{ role: "user", content: "x" }], stream: true });
    s.callOnResponseHeaders({ ":status": "200", "content-type": "text/event-stream" }, false);
    s.callOnResponseBody(TEXT_STREAM.slice(0, TEXT_STREAM.indexOf("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}")), false);
    s.completeHttpContext();
    const u = usage(s);
    expect(u.source).toBe("estimate");
    expect(Number(u.completion)).toBeGreaterThan(0);
  });

  it("ignores malformed and unknown events without trapping", () => {
    const stream = [
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":7,\"model\":null,\"usage\":{\"input_tokens\":\"many\"}}}\n\n",
      "data: not json\n\n",
      "data: [1,2,3]\n\n",
      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":-1,\"content_block\":{\"type\":\"tool_use\"}}\n\n",
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":99999999999,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n",
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":5}}\n\n",
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":\"x\"}\n\n",
      "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1.5}\n\n",
      "event: future_event\ndata: {\"type\":\"future_event\",\"x\":{}}\n\n",
      "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":null,\"usage\":{\"output_tokens\":1e400}}\n\n",
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"still here\"}}\n\n",
      "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"after the end\"}}\n\n",
    ].join("");
    const { out } = streamed(stream, [stream]);
    const chunks = dataOf(out);
    expect(chunks[chunks.length - 1]).toBe("[DONE]");
    const a = assemble(chunks);
    expect(a.content).toBe("still here");
    expect(a.finish).toBe("stop");
    // The nameless tool_use block still opens tool 0; the delta for an unknown block is dropped.
    expect(a.tools).toEqual([{ args: "" }]);
  });

  it("a JSON answer to a stream request is replayed as a stream", () => {
    const s = send(h, { model: "m", messages: [{ role: "user", content: "x" }], stream: true });
    const out = reply(s, 200, "application/json", [JSON.stringify(ANSWER)]);
    const a = assemble(dataOf(out));
    expect(a.content).toBe("Let me check the weather.");
    expect(a.tools[0]).toEqual({ id: "toolu_01A09q90qw90lq917835lq9", name: "get_weather", args: "{\"location\":\"San Francisco, CA\",\"unit\":\"celsius\"}" });
    expect(a.finish).toBe("tool_calls");
  });
});

describe("anthropic provider: errors", () => {
  let h: Host;
  beforeAll(async () => {
    h = await makeHost();
  });

  const err = (type: string, message: string) => JSON.stringify({ type: "error", error: { type, message }, request_id: "req_011CSHoEeqs5C35K2UUqR7Fy" });

  it("401: authentication_error in OpenAI's format, nothing charged", () => {
    const s = send(h, { model: "m", messages: [{ role: "user", content: "x" }] });
    const out = JSON.parse(reply(s, 401, "application/json", [err("authentication_error", "invalid x-api-key")]));
    expect(out).toEqual({ error: { message: "invalid x-api-key", type: "authentication_error", param: null, code: null } });
    expect(header(s.downstream.headers, ":status")).toBe("401");
    expect(usage(s)).toEqual({ prompt: "0", completion: "0", total: "0", cached: "0", reasoning: "0", source: "provider" });
  });

  it("429 keeps Retry-After and the rate_limit_error type", () => {
    const s = send(h, { model: "m", messages: [{ role: "user", content: "x" }] });
    const out = JSON.parse(reply(s, 429, "application/json", [err("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit")], { "retry-after": "17" }));
    expect(out.error).toMatchObject({ type: "rate_limit_error", message: expect.stringMatching(/rate limit/) });
    expect(header(s.downstream.headers, ":status")).toBe("429");
    expect(header(s.downstream.headers, "retry-after")).toBe("17");
  });

  it("529 stays 529 with overloaded_error, for streaming requests too", () => {
    for (const stream of [false, true]) {
      const s = send(h, { model: "m", messages: [{ role: "user", content: "x" }], stream });
      const out = JSON.parse(reply(s, 529, "application/json", [err("overloaded_error", "Overloaded")]));
      expect(out.error).toMatchObject({ type: "overloaded_error", message: "Overloaded" });
      expect(header(s.downstream.headers, ":status")).toBe("529");
    }
    // A 529 without a readable body.
    const s = send(h, { model: "m", messages: [{ role: "user", content: "x" }] });
    const out = JSON.parse(reply(s, 529, "application/json", ['{"type":"error"}']));
    expect(out.error.type).toBe("overloaded_error");
  });

  it("400 / 403 / 404 / 413 / 500 keep their types", () => {
    for (const [status, type] of [[400, "invalid_request_error"], [403, "permission_error"], [404, "not_found_error"], [413, "request_too_large"], [500, "api_error"]] as [number, string][]) {
      const s = send(h, { model: "m", messages: [{ role: "user", content: "x" }] });
      const out = JSON.parse(reply(s, status, "application/json", [err(type, `boom ${status}`)]));
      expect(out.error).toMatchObject({ type, message: `boom ${status}` });
    }
  });
});

describe("anthropic provider: Anthropic clients (POST /v1/messages) round trip", () => {
  let h: Host;
  beforeAll(async () => {
    h = await makeHost();
  });

  const REQ = {
    model: "claude-sonnet-4-5",
    max_tokens: 1024,
    system: [{ type: "text", text: "Be helpful." }],
    messages: [
      { role: "user", content: "Weather in SF?" },
      { role: "assistant", content: [{ type: "text", text: "Checking." }, { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "SF" } }] },
      { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "15°C" }, { type: "text", text: "And tomorrow?" }] },
    ],
    tools: [{ name: "get_weather", description: "Weather", input_schema: { type: "object", properties: { city: { type: "string" } } } }],
    tool_choice: { type: "auto", disable_parallel_tool_use: true },
    stop_sequences: ["STOP"],
    temperature: 0.5,
    top_k: 10,
    metadata: { user_id: "u-9" },
    thinking: { type: "enabled", budget_tokens: 1024 },
  };

  it("the request reaches Anthropic as the client sent it (native pass-through), with the instance's key", () => {
    const s = send(h, REQ, "/v1/messages", { "x-api-key": "client-anthropic-key", "anthropic-version": "2023-06-01" });
    const up = s.upstream.headers!;
    expect(header(up, "x-api-key")).toBe("sk-ant-test");
    expect(header(up, ":path")).toBe("/v1/messages");
    // Nothing Anthropic-specific is lost: system blocks, thinking, the order of members.
    expect(upstream(s)).toEqual(REQ);
    expect(Object.keys(upstream(s))).toEqual(Object.keys(REQ));
  });

  it("thinking blocks with signatures and cache_control reach Anthropic untouched", () => {
    const req = {
      ...REQ,
      system: [{ type: "text", text: "Long policy.", cache_control: { type: "ephemeral" } }],
      messages: [
        { role: "user", content: "Weather in SF?" },
        { role: "assistant", content: [{ type: "thinking", thinking: "Use the tool.", signature: "sig-abc" }, { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "SF" } }] },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "15°C" }] },
      ],
    };
    const s = send(h, req, "/v1/messages");
    expect(upstream(s)).toEqual(req);
  });

  it("the answer comes back exactly as Anthropic sent it, and its usage is recorded", () => {
    const s = send(h, REQ, "/v1/messages");
    const out = JSON.parse(reply(s, 200, "application/json", [JSON.stringify(ANSWER)]));
    expect(out).toEqual(ANSWER);
    expect(usage(s)).toMatchObject({ prompt: "3100", completion: "503", cached: "1000", source: "provider" });
  });

  it("stop_sequence survives the round trip", () => {
    const s = send(h, REQ, "/v1/messages");
    const out = JSON.parse(reply(s, 200, "application/json", [JSON.stringify({ ...ANSWER, content: [{ type: "text", text: "x" }], stop_reason: "stop_sequence", stop_sequence: "STOP" })]));
    expect(out.stop_reason).toBe("stop_sequence");
    expect(out.stop_sequence).toBe("STOP");
  });

  it("streams come back as Anthropic events", () => {
    for (const [stream, chunks] of [[TOOL_STREAM, [TOOL_STREAM]], [TEXT_STREAM, [...Buffer.from(TEXT_STREAM)].map((b) => Buffer.from([b]))]] as [string, (string | Buffer)[]][]) {
      const s = send(h, { ...REQ, stream: true }, "/v1/messages");
      expect(upstream(s).stream).toBe(true);
      const out = reply(s, 200, "text/event-stream", chunks);
      const events = eventsOf(out);
      const names = events.map((e) => e.event);
      expect(names[0]).toBe("message_start");
      expect(names.slice(-2)).toEqual(["message_delta", "message_stop"]);
      expect(events[0].data.message.id).toBe(stream === TOOL_STREAM ? "msg_014p7gG3wDgGV9EUtLvnow3U" : "msg_01XFDUDYJgAACzvnptvVoYEL");
      const delta = events[events.length - 2].data;
      if (stream === TOOL_STREAM) {
        expect(delta.delta.stop_reason).toBe("tool_use");
        expect(out).toBe(stream); // native pass-through: byte for byte
        expect(usage(s)).toMatchObject({ prompt: "472", completion: "89", source: "provider" });
        const toolStarts = events.filter((e) => e.event === "content_block_start" && e.data.content_block.type === "tool_use");
        expect(toolStarts.map((e) => e.data.content_block.name)).toEqual(["get_weather", "get_time"]);
        const json = events.filter((e) => e.data.delta?.type === "input_json_delta" && e.data.index === toolStarts[0].data.index).map((e) => e.data.delta.partial_json).join("");
        expect(JSON.parse(json)).toEqual({ location: "San Francisco, CA" });
      } else {
        expect(delta.delta.stop_reason).toBe("end_turn");
        expect(out).toBe(stream);
        const text = events.filter((e) => e.data.delta?.type === "text_delta").map((e) => e.data.delta.text).join("");
        expect(text).toBe("Bonjour, ça va ? 🌍 — très \"bien\"\n");
        const thinking = events.filter((e) => e.data.delta?.type === "thinking_delta").map((e) => e.data.delta.thinking).join("");
        expect(thinking).toBe("The user greets me in French; answer kindly.");
      }
    }
  });

  it("errors come back in Anthropic's format with the provider's status", () => {
    const s = send(h, REQ, "/v1/messages");
    const out = JSON.parse(reply(s, 529, "application/json", [JSON.stringify({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } })]));
    expect(out).toEqual({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } });
    expect(header(s.downstream.headers, ":status")).toBe("529");
  });

  it("a mid-stream error event reaches an Anthropic client as an error event", () => {
    const cut = TEXT_STREAM.indexOf("event: message_delta");
    const stream = TEXT_STREAM.slice(0, cut) + 'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n';
    const s = send(h, { ...REQ, stream: true }, "/v1/messages");
    const events = eventsOf(reply(s, 200, "text/event-stream", [stream]));
    const last = events[events.length - 1];
    expect(last.event).toBe("error");
    expect(last.data).toEqual({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } });
  });
});

describe("anthropic provider: adversarial requests never trap", () => {
  let h: Host;
  beforeAll(async () => {
    h = await makeHost();
  });

  it("odd shapes anywhere in the request give a 4xx JSON error or a valid upstream body", () => {
    const weird: unknown[] = [null, true, 0, -1, 1e308, "", "x", [], [null], {}, { type: null }, { type: "text" }, { type: "image_url", image_url: null }, { url: 5 }];
    const slots: ((w: unknown) => object)[] = [
      (w) => ({ model: "m", messages: [{ role: "user", content: w }] }),
      (w) => ({ model: "m", messages: [{ role: "user", content: [w] }] }),
      (w) => ({ model: "m", messages: [{ role: "assistant", content: "a", tool_calls: w }, { role: "user", content: "x" }] }),
      (w) => ({ model: "m", messages: [{ role: "assistant", content: null, tool_calls: [{ id: "c", function: w }] }] }),
      (w) => ({ model: "m", messages: [{ role: "assistant", content: null, tool_calls: [{ id: "c", function: { name: "f", arguments: w } }] }] }),
      (w) => ({ model: "m", messages: [{ role: "tool", tool_call_id: w, content: w }] }),
      (w) => ({ model: "m", messages: [{ role: "system", content: w }, { role: "user", content: "x" }] }),
      (w) => ({ model: "m", messages: [{ role: "user", content: "x" }], tools: w }),
      (w) => ({ model: "m", messages: [{ role: "user", content: "x" }], tools: [w] }),
      (w) => ({ model: "m", messages: [{ role: "user", content: "x" }], tools: [{ type: "function", function: { name: "f", parameters: w } }], tool_choice: w }),
      (w) => ({ model: "m", messages: [{ role: "user", content: "x" }], stop: w, temperature: w }),
      (w) => ({ model: "m", messages: [{ role: "user", content: "x" }], max_tokens: w, user: w, thinking: w, response_format: w }),
      (w) => ({ model: "m", messages: [{ role: "user", content: "x" }], n: w, logprobs: w, modalities: w, logit_bias: w, parallel_tool_calls: w }),
    ];
    for (const slot of slots) {
      for (const w of weird) {
        const s = send(h, slot(w));
        const local = s.getSentLocalResponse();
        if (local) {
          expect(local.statusCode).toBeGreaterThanOrEqual(400);
          expect(local.statusCode).toBeLessThan(500);
          expect(JSON.parse(local.body.toString()).error.message).toBeTruthy();
        } else {
          expect(() => JSON.parse(s.upstream.body.toString())).not.toThrow();
        }
      }
    }
  });
});
