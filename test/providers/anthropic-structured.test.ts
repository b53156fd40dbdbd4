// Chat response_format and reasoning_effort to Anthropic (assembly/providers/anthropic.ts), through
// build/ai-proxy.wasm: structured outputs (output_config.format) on the generations that have them,
// the forced JSON tool elsewhere (its input back as the message content, in whole answers and in
// streams, usage intact), and reasoning_effort as a thinking budget with its max_tokens rule.
import { describe, it, expect, beforeAll } from "vitest";
import { Host } from "../../host/index.js";
import { providerHosts, send, upstream, reply, rejected, usage, dataOf, assemble } from "./helpers.js";

const NOW_S = 1_750_000_000;

const CONFIG = {
  instances: [
    // No model set: the client's model goes upstream, so each test picks the generation.
    { name: "claude", provider: "anthropic", api_key: "sk-ant-test", models: ["claude-*", "anthropic.claude-*", "my-alias"] },
    { name: "forced", provider: "anthropic", api_key: "sk-ant-test", models: ["alias-tool"], model: "claude-sonnet-4-5", structured_output: "tool" },
    { name: "native", provider: "anthropic", api_key: "sk-ant-test", models: ["alias-native"], model: "company-claude", structured_output: "native" },
    { name: "capped", provider: "anthropic", api_key: "sk-ant-test", models: ["alias-capped"], model: "claude-sonnet-4-5", max_tokens: 800 },
  ],
  pools: [],
};

// Nothing the provider does may trap the VM: checked after each test (helpers.ts providerHosts).
const makeHost = providerHosts(CONFIG, NOW_S);

const MSGS = [{ role: "user", content: "Weather in Paris as JSON" }];
const SCHEMA = { type: "object", properties: { city: { type: "string" }, temp: { type: "number" } }, required: ["city", "temp"], additionalProperties: false };
const JSON_SCHEMA = { type: "json_schema", json_schema: { name: "weather", strict: true, schema: SCHEMA } };
const USAGE = { input_tokens: 40, output_tokens: 25, cache_read_input_tokens: 0, cache_creation_input_tokens: 0 };

function toolAnswer(input: object) {
  return {
    id: "msg_01J", type: "message", role: "assistant", model: "claude-3-5-haiku-20241022",
    content: [{ type: "tool_use", id: "toolu_01", name: "weather", input }],
    stop_reason: "tool_use", stop_sequence: null, usage: USAGE,
  };
}

const ev = (o: { type: string }) => `event: ${o.type}\ndata: ${JSON.stringify(o)}\n\n`;

/** A forced-tool stream the way Anthropic sends it: the input in input_json_delta pieces. */
function toolStream(pieces: string[]) {
  return [
    ev({ type: "message_start", message: { id: "msg_01S", type: "message", role: "assistant", model: "claude-3-5-haiku-20241022", content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 40, output_tokens: 1 } } } as any),
    ev({ type: "content_block_start", index: 0, content_block: { type: "tool_use", id: "toolu_01", name: "weather", input: {} } } as any),
    ev({ type: "ping" }),
    ...pieces.map((p) => ev({ type: "content_block_delta", index: 0, delta: { type: "input_json_delta", partial_json: p } } as any)),
    ev({ type: "content_block_stop", index: 0 } as any),
    ev({ type: "message_delta", delta: { stop_reason: "tool_use", stop_sequence: null }, usage: { output_tokens: 25 } } as any),
    ev({ type: "message_stop" }),
  ].join("");
}

describe("anthropic: response_format", () => {
  let h: Host;
  beforeAll(async () => {
    h = await makeHost();
  });

  it("json_schema on a generation with structured outputs: output_config.format, the text answer as it is", () => {
    const s = send(h, { model: "claude-sonnet-4-5-20250929", messages: MSGS, response_format: JSON_SCHEMA });
    const body = upstream(s);
    expect(body.output_config).toEqual({ format: { type: "json_schema", schema: SCHEMA } });
    expect(body.tools).toBeUndefined();
    expect(body.tool_choice).toBeUndefined();
    const out = JSON.parse(reply(s, 200, "application/json", [JSON.stringify({
      id: "msg_01N", type: "message", role: "assistant", model: "claude-sonnet-4-5-20250929",
      content: [{ type: "text", text: "{\"city\":\"Paris\",\"temp\":21}" }], stop_reason: "end_turn", stop_sequence: null, usage: USAGE,
    })]));
    expect(JSON.parse(out.choices[0].message.content)).toEqual({ city: "Paris", temp: 21 });
    expect(out.choices[0].finish_reason).toBe("stop");
  });

  it("which model ids get structured outputs, and the instance setting that overrides the name", () => {
    const native = (model: string) => upstream(send(h, { model, messages: MSGS, response_format: JSON_SCHEMA })).output_config !== undefined;
    for (const m of ["claude-sonnet-4-5", "claude-opus-4-5-20251101", "claude-haiku-4-5@20251001", "claude-opus-4-6", "claude-sonnet-4-6", "anthropic.claude-opus-4-7-v1:0", "claude-opus-5"]) {
      expect(native(m), m).toBe(true);
    }
    for (const m of ["claude-3-5-haiku-20241022", "claude-3-7-sonnet-latest", "claude-sonnet-4-20250514", "claude-opus-4-1-20250805", "claude-opus-4", "my-alias"]) {
      expect(native(m), m).toBe(false);
    }
    expect(native("alias-native"), "structured_output: native").toBe(true);
    expect(native("alias-tool"), "structured_output: tool on a 4.5 model").toBe(false);
  });

  it("json_schema without structured outputs: a forced tool with the client's schema, its input back as content", () => {
    const s = send(h, { model: "claude-3-5-haiku-20241022", messages: MSGS, response_format: JSON_SCHEMA });
    const body = upstream(s);
    expect(body.output_config).toBeUndefined();
    expect(body.tools).toEqual([{ name: "weather", description: expect.any(String), input_schema: SCHEMA }]);
    expect(body.tool_choice).toEqual({ type: "tool", name: "weather", disable_parallel_tool_use: true });
    const out = JSON.parse(reply(s, 200, "application/json", [JSON.stringify(toolAnswer({ city: "Paris", temp: 21 }))]));
    const m = out.choices[0].message;
    expect(JSON.parse(m.content)).toEqual({ city: "Paris", temp: 21 });
    expect(m.tool_calls).toBeUndefined();
    expect(out.choices[0].finish_reason).toBe("stop");
    expect(out.usage).toMatchObject({ prompt_tokens: 40, completion_tokens: 25, total_tokens: 65 });
    expect(usage(s)).toMatchObject({ prompt: "40", completion: "25", total: "65", source: "provider" });
  });

  it("json_object: a forced tool taking any object, on every generation; a name Anthropic cannot take is replaced", () => {
    for (const model of ["claude-sonnet-4-5", "claude-3-5-haiku-20241022"]) {
      const body = upstream(send(h, { model, messages: MSGS, response_format: { type: "json_object" } }));
      expect(body.tools).toEqual([{ name: "json_response", description: expect.any(String), input_schema: { type: "object" } }]);
      expect(body.tool_choice).toMatchObject({ type: "tool", name: "json_response" });
    }
    const body = upstream(send(h, { model: "alias-tool", messages: MSGS, response_format: { type: "json_schema", json_schema: { name: "bad name!", schema: { properties: { a: { type: "string" } } } } } }));
    expect(body.tools[0]).toMatchObject({ name: "json_response", input_schema: { type: "object", properties: { a: { type: "string" } } } });
  });

  it("the forced tool in a stream: input_json_delta pieces are content deltas, finish stop, usage intact, whatever the chunk cuts", () => {
    const stream = toolStream(["", "{\"city\": \"Pa", "rís\", \"te", "mp\": 21}"]);
    const run = (chunks: (string | Buffer)[]) => {
      const s = send(h, { model: "claude-3-5-haiku-20241022", messages: MSGS, response_format: JSON_SCHEMA, stream: true, stream_options: { include_usage: true } });
      expect(upstream(s).tool_choice).toMatchObject({ type: "tool", name: "weather" });
      return { s, out: reply(s, 200, "text/event-stream", chunks) };
    };
    const { s, out } = run([stream]);
    const chunks = dataOf(out);
    const a = assemble(chunks);
    expect(JSON.parse(a.content)).toEqual({ city: "París", temp: 21 });
    expect(a.tools).toEqual([]);
    expect(a.finish).toBe("stop");
    expect(a.usage).toMatchObject({ prompt_tokens: 40, completion_tokens: 25, total_tokens: 65 });
    expect(usage(s)).toMatchObject({ prompt: "40", completion: "25", total: "65", source: "provider" });
    const bytes = Buffer.from(stream, "utf8");
    for (let cut = 1; cut < bytes.length; cut += 5) {
      const again = run([bytes.subarray(0, cut), bytes.subarray(cut)]);
      expect(again.out).toBe(out);
      expect(usage(again.s)).toEqual(usage(s));
    }
    expect(run(Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1))).out).toBe(out);
  });

  it("a forced-tool answer that is replayed as a stream (JSON to a stream request) carries the content too", () => {
    const s = send(h, { model: "claude-3-5-haiku-20241022", messages: MSGS, response_format: JSON_SCHEMA, stream: true });
    const a = assemble(dataOf(reply(s, 200, "application/json", [JSON.stringify(toolAnswer({ city: "Paris", temp: 21 }))])));
    expect(JSON.parse(a.content)).toEqual({ city: "Paris", temp: 21 });
    expect(a.finish).toBe("stop");
  });

  it("refuses what the forced tool cannot serve, in the client's error shape", () => {
    const tools = [{ type: "function", function: { name: "f", parameters: { type: "object" } } }];
    const cases: [object, RegExp][] = [
      [{ response_format: JSON_SCHEMA, tools }, /cannot be combined with 'tools'/],
      [{ response_format: { type: "json_object" }, reasoning_effort: "low" }, /thinking or reasoning_effort/],
      [{ response_format: JSON_SCHEMA, thinking: { type: "enabled", budget_tokens: 2048 } }, /thinking or reasoning_effort/],
      [{ response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "array", items: { type: "string" } } } } }, /must describe an object/],
    ];
    for (const [extra, msg] of cases) {
      const e = rejected(send(h, { model: "claude-3-5-haiku-20241022", messages: MSGS, ...extra }));
      expect(e.message, JSON.stringify(extra)).toMatch(msg);
      expect(e.type).toBe("invalid_request_error");
      expect(e.param).toBe("response_format" + (msg.source.includes("object") ? ".json_schema.schema" : ""));
    }
    // From an Anthropic client's point of view the same refusals are Anthropic errors (no such field there).
    // With structured outputs, tools and reasoning combine.
    const body = upstream(send(h, { model: "claude-sonnet-4-5", messages: MSGS, response_format: JSON_SCHEMA, tools, reasoning_effort: "low" }));
    expect(body.output_config.format.schema).toEqual(SCHEMA);
    expect(body.tools[0].name).toBe("f");
    expect(body.thinking).toEqual({ type: "enabled", budget_tokens: 1024 });
  });
});

describe("anthropic: reasoning_effort", () => {
  let h: Host;
  beforeAll(async () => {
    h = await makeHost();
  });
  const req = (extra: object, model = "claude-sonnet-4-5") => send(h, { model, messages: MSGS, ...extra });

  it("maps low / medium / high to a thinking budget and raises max_tokens when the client set none", () => {
    const cases: [string, number][] = [["low", 1024], ["medium", 8192], ["high", 24576]];
    for (const [effort, budget] of cases) {
      const body = upstream(req({ reasoning_effort: effort }));
      expect(body.thinking, effort).toEqual({ type: "enabled", budget_tokens: budget });
      expect(body.max_tokens, effort).toBe(budget + 4096);
    }
  });

  it("none and minimal send no thinking", () => {
    for (const effort of ["none", "minimal"]) {
      const body = upstream(req({ reasoning_effort: effort }));
      expect(body.thinking).toBeUndefined();
      expect(body.max_tokens).toBe(4096);
    }
  });

  it("a client limit stays (reasoning counts inside it): above the budget as is, else half of it for thinking, 1024 or less a 400", () => {
    expect(upstream(req({ reasoning_effort: "high", max_completion_tokens: 30000 }))).toMatchObject({ max_tokens: 30000, thinking: { budget_tokens: 24576 } });
    expect(upstream(req({ reasoning_effort: "high", max_completion_tokens: 4000 }))).toMatchObject({ max_tokens: 4000, thinking: { budget_tokens: 2000 } });
    expect(upstream(req({ reasoning_effort: "low", max_tokens: 1500 }))).toMatchObject({ max_tokens: 1500, thinking: { budget_tokens: 1024 } });
    const e = rejected(req({ reasoning_effort: "low", max_tokens: 1000 }));
    expect(e.param).toBe("max_tokens");
    expect(e.message).toMatch(/more than 1024/);
    expect(rejected(req({ reasoning_effort: "medium", max_completion_tokens: 1024 })).param).toBe("max_completion_tokens");
    // An instance whose max_tokens leaves no room for thinking.
    const c = rejected(req({ reasoning_effort: "low" }, "alias-capped"));
    expect(c.param).toBe("reasoning_effort");
    expect(c.message).toMatch(/limits answers to 800 tokens/);
    expect(upstream(req({ reasoning_effort: "none" }, "alias-capped")).max_tokens).toBe(800);
  });

  it("thinking (Anthropic's own switch) wins over reasoning_effort", () => {
    const body = upstream(req({ reasoning_effort: "high", thinking: { type: "enabled", budget_tokens: 2000 }, max_tokens: 3000 }));
    expect(body.thinking).toEqual({ type: "enabled", budget_tokens: 2000 });
    expect(body.max_tokens).toBe(3000);
  });

  it("thinking comes back as reasoning_content; reasoning_tokens stays 0 (Anthropic counts thinking inside output_tokens only)", () => {
    const s = req({ reasoning_effort: "low" });
    const out = JSON.parse(reply(s, 200, "application/json", [JSON.stringify({
      id: "msg_01T", type: "message", role: "assistant", model: "claude-sonnet-4-5",
      content: [{ type: "thinking", thinking: "Paris in spring…", signature: "Eq" }, { type: "text", text: "Mild." }],
      stop_reason: "end_turn", stop_sequence: null, usage: USAGE,
    })]));
    expect(out.choices[0].message).toMatchObject({ content: "Mild.", reasoning_content: "Paris in spring…" });
    expect(out.usage.completion_tokens).toBe(25);
    expect(out.usage.completion_tokens_details).toEqual({ reasoning_tokens: 0 });
  });
});
