// The OpenAI Responses API (POST /v1/responses) through build/ai-proxy.wasm, translated for
// providers without it: the request read into Chat Completions, whole answers written as a
// Response, streams as Responses events (checked by the openai SDK's own accumulator, which throws
// on an event out of place), errors and refusals in OpenAI's error shape.
import { describe, it, expect, beforeAll, afterEach } from "vitest";
import type { Host } from "../../host/index.js";
import { recordedStreams, RECORDED_TEXT, RECORDED_TOOL } from "../../scripts/mocks/recorded.js";
import { proxyHost, foldResponsesStream } from "./helpers.js";
import { send, upstream, reply, rejected, usage } from "../providers/helpers.js";

const CONFIG = {
  instances: [
    { name: "vl", provider: "openai-compatible", endpoint: "http://vllm.internal:8000/v1", models: ["mock-model", "local-*"] },
    { name: "an", provider: "anthropic", api_key: "sk-ant", models: ["claude-sonnet-4-5-20250929"] },
    { name: "ge", provider: "gemini", api_key: "gm-key", models: ["gemini-2.5-flash"] },
  ],
};
const R = "/v1/responses";

const hosts: Host[] = [];
afterEach(() => {
  for (const h of hosts) expect(h.getLogEntries().filter((e) => /failed: Uncaught|abort/i.test(e.message))).toEqual([]);
});

const chatAnswer = (message: object, finish = "stop", usage = { prompt_tokens: 11, completion_tokens: 5, total_tokens: 16, prompt_tokens_details: { cached_tokens: 3 }, completion_tokens_details: { reasoning_tokens: 2 } }) =>
  JSON.stringify({ id: "chatcmpl-1", object: "chat.completion", created: 1761000000, model: "mock-model", choices: [{ index: 0, message: { role: "assistant", ...message }, finish_reason: finish }], usage });

describe("ai-proxy: Responses requests read into Chat Completions", () => {
  let h: Host;
  beforeAll(async () => { h = await proxyHost(CONFIG); hosts.push(h); });

  it("a string input becomes one user message; instructions the system message; settings carried", () => {
    const s = send(h, { model: "mock-model", instructions: "Be terse.", input: "Hi", max_output_tokens: 50, temperature: 0.2, top_p: 0.9, metadata: { a: "b" }, store: false, user: "u1" }, R);
    const up = upstream(s);
    expect(s.upstream.headers!.find(([k]) => k === ":path")![1]).toBe("/v1/chat/completions");
    expect(up.messages).toEqual([{ role: "system", content: "Be terse." }, { role: "user", content: "Hi" }]);
    expect(up).toMatchObject({ model: "mock-model", max_completion_tokens: 50, temperature: 0.2, top_p: 0.9, user: "u1" });
    // Responses-only members do not reach a chat API.
    for (const k of ["input", "instructions", "metadata", "store", "max_output_tokens"]) expect(up).not.toHaveProperty(k);
  });

  it("message items of every role, text and image parts, and a function call round trip", () => {
    const s = send(h, {
      model: "mock-model",
      input: [
        { role: "developer", content: "Use tools." },
        { type: "message", role: "system", content: [{ type: "input_text", text: "Sys." }] },
        { role: "user", content: [{ type: "input_text", text: "Weather?" }, { type: "input_image", image_url: "data:image/png;base64,AAAA", detail: "low" }] },
        { type: "message", role: "assistant", content: [{ type: "output_text", text: "Checking." }] },
        { type: "function_call", call_id: "call_1", name: "get_weather", arguments: "{\"city\":\"Oslo\"}" },
        { type: "function_call", call_id: "call_2", name: "get_weather", arguments: "{\"city\":\"Rome\"}" },
        { type: "function_call_output", call_id: "call_1", output: "4C" },
        { type: "function_call_output", call_id: "call_2", output: [{ type: "input_text", text: "19C" }] },
        { type: "reasoning", id: "rs_1", summary: [], encrypted_content: "opaque" },
      ],
      tools: [{ type: "function", name: "get_weather", description: "Weather", parameters: { type: "object", properties: { city: { type: "string" } } }, strict: true }],
      tool_choice: { type: "function", name: "get_weather" },
      parallel_tool_calls: false,
    }, R);
    const up = upstream(s);
    expect(up.messages).toEqual([
      { role: "system", content: "Use tools." },
      { role: "system", content: "Sys." },
      { role: "user", content: [{ type: "text", text: "Weather?" }, { type: "image_url", image_url: { url: "data:image/png;base64,AAAA", detail: "low" } }] },
      {
        role: "assistant", content: "Checking.", tool_calls: [
          { id: "call_1", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Oslo\"}" } },
          { id: "call_2", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Rome\"}" } },
        ],
      },
      { role: "tool", tool_call_id: "call_1", content: "4C" },
      { role: "tool", tool_call_id: "call_2", content: "19C" },
    ]);
    expect(up.tools).toEqual([{ type: "function", function: { name: "get_weather", description: "Weather", parameters: { type: "object", properties: { city: { type: "string" } } }, strict: true } }]);
    expect(up.tool_choice).toEqual({ type: "function", function: { name: "get_weather" } });
    expect(up.parallel_tool_calls).toBe(false);
  });

  it("text.format and reasoning.effort map to response_format and reasoning_effort; streams ask for usage", () => {
    const schema = { type: "object", properties: { a: { type: "number" } }, required: ["a"] };
    let up = upstream(send(h, { model: "mock-model", input: "x", text: { format: { type: "json_schema", name: "out", schema, strict: true } }, reasoning: { effort: "low", summary: "auto" }, stream: true }, R));
    expect(up.response_format).toEqual({ type: "json_schema", json_schema: { name: "out", schema, strict: true } });
    expect(up.reasoning_effort).toBe("low");
    expect(up.stream).toBe(true);
    expect(up.stream_options).toEqual({ include_usage: true });
    up = upstream(send(h, { model: "mock-model", input: "x", text: { format: { type: "json_object" } } }, R));
    expect(up.response_format).toEqual({ type: "json_object" });
    up = upstream(send(h, { model: "mock-model", input: "x", text: { format: { type: "text" } }, tool_choice: "required" }, R));
    expect(up).not.toHaveProperty("response_format");
    expect(up.tool_choice).toBe("required");
  });

  it("reaches Anthropic and Gemini in their own formats", () => {
    const an = send(h, { model: "claude-sonnet-4-5-20250929", instructions: "Be terse.", input: "Hi", max_output_tokens: 64 }, R);
    expect(upstream(an)).toMatchObject({ system: "Be terse.", max_tokens: 64, messages: [{ role: "user", content: [{ type: "text", text: "Hi" }] }] });
    const ge = send(h, { model: "gemini-2.5-flash", input: "Hi", max_output_tokens: 64 }, R);
    expect(upstream(ge)).toMatchObject({ contents: [{ role: "user", parts: [{ text: "Hi" }] }], generationConfig: { maxOutputTokens: 64 } });
  });

  const refusals: [string, object, string, string][] = [
    ["a built-in tool", { tools: [{ type: "web_search" }] }, "tools[0].type", "unsupported_parameter"],
    ["background", { background: true }, "background", "unsupported_parameter"],
    ["conversation", { conversation: "conv_1" }, "conversation", "unsupported_parameter"],
    ["an unknown previous_response_id (translated provider)", { previous_response_id: "resp_1" }, "previous_response_id", "previous_response_not_found"],
    ["previous_response_id a number", { previous_response_id: 3 }, "previous_response_id", "invalid_type"],
    ["store a string", { store: "no" }, "store", "invalid_type"],
    ["a stored prompt", { prompt: { id: "pmpt_1" } }, "prompt", "unsupported_parameter"],
    ["an item_reference", { input: [{ type: "item_reference", id: "msg_1" }] }, "input[0].type", "unsupported_parameter"],
    ["an input_file part", { input: [{ role: "user", content: [{ type: "input_file", file_id: "f" }] }] }, "input[0].content[0]", "unsupported_parameter"],
    ["an image by file_id", { input: [{ role: "user", content: [{ type: "input_image", file_id: "f" }] }] }, "input[0].content[0].image_url", "unsupported_parameter"],
    ["input missing", { input: undefined }, "input", "invalid_value"],
    ["input a number", { input: 3 }, "input", "invalid_value"],
    ["input empty", { input: [] }, "input", "invalid_value"],
    ["an item that is a string", { input: ["hi"] }, "input[0]", "invalid_type"],
    ["an unknown role", { input: [{ role: "tool", content: "x" }] }, "input[0].role", "invalid_value"],
    ["an unknown item type", { input: [{ type: "computer_call_output", call_id: "c" }] }, "input[0].type", "unsupported_parameter"],
    ["a function_call without call_id", { input: [{ type: "function_call", name: "f", arguments: "{}" }] }, "input[0]", "missing_required_parameter"],
    ["max_output_tokens zero", { max_output_tokens: 0 }, "max_output_tokens", "invalid_value"],
    ["max_output_tokens past the gateway's max", { max_output_tokens: 1e12 }, "max_output_tokens", "invalid_value"],
    ["max_output_tokens a string", { max_output_tokens: "5" }, "max_output_tokens", "invalid_value"],
    ["temperature a string", { temperature: "hot" }, "temperature", "invalid_type"],
    ["metadata with a number", { metadata: { a: 1 } }, "metadata", "invalid_value"],
    ["metadata with 17 keys", { metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"])) }, "metadata", "invalid_type"],
    ["an allowed_tools tool_choice", { tool_choice: { type: "allowed_tools", mode: "auto", tools: [] } }, "tool_choice", "unsupported_parameter"],
    ["a tool without a name", { tools: [{ type: "function", parameters: {} }] }, "tools[0].name", "missing_required_parameter"],
    ["json_schema without schema", { text: { format: { type: "json_schema", name: "x" } } }, "text.format", "missing_required_parameter"],
    ["instructions a list", { instructions: [{ role: "system", content: "x" }] }, "instructions", "invalid_type"],
  ];
  for (const [name, extra, param, code] of refusals) {
    it(`refuses ${name} with a 400 in OpenAI's error shape, nothing sent`, () => {
      const e = rejected(send(h, { model: "mock-model", input: "hi", ...extra }, R));
      expect(e).toMatchObject({ type: "invalid_request_error", param, code });
      expect(typeof e.message).toBe("string");
    });
  }

  it("refuses too many input items (max_messages) and a GET with 405", async () => {
    const h2 = await proxyHost({ ...CONFIG, request_limits: { max_messages: 3 } });
    hosts.push(h2);
    const e = rejected(send(h2, { model: "mock-model", input: Array.from({ length: 4 }, () => ({ role: "user", content: "x" })) }, R));
    expect(e).toMatchObject({ param: "input", code: "too_many_messages" });
    const s = h.newStream();
    s.callOnRequestHeaders({ ":method": "GET", ":path": R, ":authority": "gw" }, true);
    expect(s.getSentLocalResponse()!.statusCode).toBe(405);
  });
});

describe("ai-proxy: whole Responses answers", () => {
  let h: Host;
  beforeAll(async () => { h = await proxyHost(CONFIG); hosts.push(h); });

  it("a text answer becomes a completed Response with a message item and Responses usage", () => {
    const s = send(h, { model: "mock-model", input: "Hi", metadata: { trace: "t1" }, instructions: "Be terse." }, R);
    const r = JSON.parse(reply(s, 200, "application/json", [chatAnswer({ content: "Hello é🌍" })]));
    // The provider's id, and the Response's place in the gateway's store (responses-store.ts).
    expect(r.id).toMatch(/^resp_chatcmpl-1_s\d+$/);
    expect(r).toMatchObject({
      object: "response", created_at: 1761000000, status: "completed", error: null, incomplete_details: null,
      model: "mock-model", metadata: { trace: "t1" }, instructions: "Be terse.",
      output: [{ type: "message", id: "msg_chatcmpl-1", status: "completed", role: "assistant", content: [{ type: "output_text", text: "Hello é🌍", annotations: [] }] }],
      usage: { input_tokens: 11, input_tokens_details: { cached_tokens: 3 }, output_tokens: 5, output_tokens_details: { reasoning_tokens: 2 }, total_tokens: 16 },
    });
    // output_text is the SDK's convenience, not on the wire.
    expect(r).not.toHaveProperty("output_text");
    expect(usage(s)).toMatchObject({ prompt: "11", completion: "5", total: "16", cached: "3", reasoning: "2", source: "provider" });
  });

  it("tool calls become function_call items; a length finish is incomplete with max_output_tokens", () => {
    const s = send(h, { model: "mock-model", input: "Weather?" }, R);
    const r = JSON.parse(reply(s, 200, "application/json", [chatAnswer({ content: null, tool_calls: [{ id: "call_9", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Oslo\"}" } }] }, "tool_calls")]));
    expect(r.status).toBe("completed");
    expect(r.output).toEqual([{ id: "fc_call_9", type: "function_call", status: "completed", call_id: "call_9", name: "get_weather", arguments: "{\"city\":\"Oslo\"}" }]);
    const cut = JSON.parse(reply(send(h, { model: "mock-model", input: "Long", max_output_tokens: 5 }, R), 200, "application/json", [chatAnswer({ content: "Once upon" }, "length")]));
    expect(cut).toMatchObject({ status: "incomplete", incomplete_details: { reason: "max_output_tokens" }, max_output_tokens: 5 });
    expect(cut.output[0].status).toBe("incomplete");
  });

  it("a provider error comes back in OpenAI's error shape with the provider's status", () => {
    const s = send(h, { model: "claude-sonnet-4-5-20250929", input: "Hi" }, R);
    const body = reply(s, 429, "application/json", [JSON.stringify({ type: "error", error: { type: "rate_limit_error", message: "slow down" } })]);
    expect(s.downstream.headers!.find(([k]) => k === ":status")![1]).toBe("429");
    expect(JSON.parse(body).error).toMatchObject({ message: "slow down", type: "rate_limit_error" });
  });
});

describe("ai-proxy: translated Responses streams", () => {
  let h: Host;
  beforeAll(async () => { h = await proxyHost(CONFIG); hosts.push(h); });
  const rec = recordedStreams();

  for (const provider of ["anthropic", "gemini", "openai-compatible"] as const) {
    it(`a ${provider} text stream: the exact event order, the text, and the usage as recorded`, () => {
      const r = rec[provider].text;
      const s = send(h, { model: r.model, input: "Say hello", stream: true }, R);
      const out = foldResponsesStream(reply(s, 200, r.contentType, [r.bytes.length ? Buffer.from(r.bytes) : ""]));
      expect(out.types).toEqual([
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        ...out.types.slice(4, -4).map(() => "response.output_text.delta"),
        "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed",
      ]);
      expect(out.events.filter((e) => e.type === "response.output_text.delta").map((e) => e.delta).join("")).toBe(RECORDED_TEXT);
      expect(out.events.find((e) => e.type === "response.output_text.done").text).toBe(RECORDED_TEXT);
      expect(out.snapshot.output[0].content[0].text).toBe(RECORDED_TEXT);
      expect(out.final.status).toBe("completed");
      expect(out.final.output).toEqual(out.snapshot.output);
      const u = usage(s);
      expect(out.final.usage).toMatchObject({ input_tokens: Number(u.prompt), output_tokens: Number(u.completion), total_tokens: Number(u.total), input_tokens_details: { cached_tokens: Number(u.cached) } });
      expect(u.source).toBe("provider");
    });

    it(`a ${provider} tool-call stream: output_item.added, arguments deltas, .done with the whole arguments`, () => {
      const r = rec[provider].tool;
      const s = send(h, { model: r.model, input: "Weather?", stream: true, tools: [{ type: "function", name: "get_weather", parameters: { type: "object" } }] }, R);
      const out = foldResponsesStream(reply(s, 200, r.contentType, [Buffer.from(r.bytes)]));
      const calls = out.final.output.filter((o: any) => o.type === "function_call");
      expect(calls).toHaveLength(1);
      expect(calls[0]).toMatchObject({ name: RECORDED_TOOL.name, status: "completed" });
      expect(JSON.parse(calls[0].arguments)).toEqual(RECORDED_TOOL.arguments);
      const done = out.events.find((e) => e.type === "response.function_call_arguments.done");
      expect(done).toMatchObject({ name: RECORDED_TOOL.name, arguments: calls[0].arguments, item_id: calls[0].id });
      expect(out.snapshot.output).toEqual(out.final.output);
      const i = out.types.indexOf("response.function_call_arguments.done");
      expect(out.types.slice(i)).toEqual(["response.function_call_arguments.done", "response.output_item.done", "response.completed"]);
    });
  }

  it("a provider stream cut short ends in response.failed with the usage estimated", () => {
    const r = rec.anthropic.text;
    const half = Buffer.from(r.bytes).subarray(0, Math.floor(r.bytes.length * 0.6));
    const s = send(h, { model: r.model, input: "Hi", stream: true }, R);
    const out = foldResponsesStream(reply(s, 200, r.contentType, [half]));
    expect(out.types[out.types.length - 1]).toBe("response.failed");
    expect(out.final).toMatchObject({ status: "failed", error: { code: "server_error" } });
    expect(usage(s).source).toBe("estimate");
  });

  it("holds at most max_response_body_bytes of the answer for the final events: past it, response.failed (502), usage still recorded", async () => {
    const small = await proxyHost({ ...CONFIG, max_response_body_bytes: 4096 });
    hosts.push(small);
    const chunk = (o: object) => `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", created: 1, model: "mock-model", ...o })}\n\n`;
    const pieces = Array.from({ length: 40 }, () => chunk({ choices: [{ index: 0, delta: { content: "é".repeat(100) }, finish_reason: null }] }));
    const body = pieces.join("") + chunk({ choices: [{ index: 0, delta: {}, finish_reason: "stop" }] }) + chunk({ choices: [], usage: { prompt_tokens: 4, completion_tokens: 4000, total_tokens: 4004 } }) + "data: [DONE]\n\n";
    const s = send(small, { model: "mock-model", input: "Hi", stream: true }, R);
    const out = foldResponsesStream(reply(s, 200, "text/event-stream", [body]));
    expect(out.types.at(-1)).toBe("response.failed");
    expect(out.types.filter((t) => t === "response.failed")).toHaveLength(1);
    expect(out.final.error.message).toContain("4096");
    // What was written before the bound is all the client got; nothing follows the failure.
    expect(out.types.filter((t) => t === "response.output_text.delta").length).toBeLessThan(40);
    expect(usage(s)).toMatchObject({ prompt: "4", completion: "4000", source: "provider" });
  });

  it("a length finish ends in response.incomplete with reason max_output_tokens", () => {
    const chunk = (o: object) => `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", created: 1, model: "mock-model", ...o })}\n\n`;
    const body = chunk({ choices: [{ index: 0, delta: { role: "assistant", content: "Once" }, finish_reason: null }] }) +
      chunk({ choices: [{ index: 0, delta: {}, finish_reason: "length" }] }) +
      chunk({ choices: [], usage: { prompt_tokens: 4, completion_tokens: 1, total_tokens: 5 } }) + "data: [DONE]\n\n";
    const s = send(h, { model: "mock-model", input: "Hi", stream: true, max_output_tokens: 1 }, R);
    const out = foldResponsesStream(reply(s, 200, "text/event-stream", [body]));
    expect(out.types[out.types.length - 1]).toBe("response.incomplete");
    expect(out.final).toMatchObject({ status: "incomplete", incomplete_details: { reason: "max_output_tokens" }, usage: { input_tokens: 4, output_tokens: 1, total_tokens: 5 } });
    expect(out.final.output[0].status).toBe("incomplete");
  });
});
