// Property: a provider's stream translated by ai-proxy does not depend on where the bytes were cut.
//
// Every provider's recorded real-format streams (scripts/mocks/recorded.ts: text, tool-call and
// thinking/reasoning answers, and JSON answers to response_format, Anthropic's forced tool among
// them; each holding 2-, 3- and 4-byte UTF-8 characters; Gemini's framed
// with "\r\n") go through build/ai-proxy.wasm for each client format, once whole and then split at
// random byte positions (fast-check): anywhere, inside a multi-byte character, between "\r" and
// "\n", around event boundaries, one byte per chunk. The translated bytes, the response headers
// and the usage record must be identical to the unsplit run, and the unsplit run must itself be a
// correct stream in the client's format with the recorded text, reasoning and tool arguments.
//
// Deterministic: fast-check runs with a fixed seed (SLUICE_FC_SEED overrides it); a failure
// message names the stream, the client, the seed and the shrunk cut positions.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import fc from "fast-check";
import type { Host } from "../../host/index.js";
import { recordedStreams, recordedResponsesStreams, type RecordedStream } from "../../scripts/mocks/recorded.js";
import { proxyHost, header, sseData, sseEvents, foldResponsesStream } from "./helpers.js";

const SEED = Number(process.env.SLUICE_FC_SEED ?? 20250101);
const RUNS = Number(process.env.SLUICE_FC_RUNS ?? 100);
const CLOCK_NS = 1_735_689_600_000_000_000n;

// One instance per provider family, selected by the recorded streams' model names.
const CONFIG = {
  instances: [
    { name: "oa", provider: "openai", api_key: "sk-oa", models: ["gpt-4o-mini"] },
    { name: "az", provider: "azure-openai", api_key: "az-key", endpoint: "https://res.openai.azure.com/openai", deployment: "gpt4o-prod", models: ["gpt-4o"] },
    { name: "an", provider: "anthropic", api_key: "sk-ant", models: ["claude-sonnet-4-5-20250929", "claude-3-5-haiku-20241022"] },
    { name: "ge", provider: "gemini", api_key: "gm-key", models: ["gemini-2.5-flash"] },
    { name: "ds", provider: "deepseek", api_key: "ds-key", models: ["deepseek-chat", "deepseek-reasoner"] },
    { name: "mi", provider: "mistral", api_key: "mi-key", models: ["mistral-small-latest"] },
    { name: "oc", provider: "openai-compatible", endpoint: "http://vllm.internal:8000/v1", models: ["mock-model"] },
  ],
};

const PROVIDERS = ["openai", "azure-openai", "anthropic", "gemini", "deepseek", "mistral", "openai-compatible"] as const;

type Client = "openai" | "openai+usage" | "anthropic" | "gemini" | "gemini-array" | "responses";
const CLIENTS: Client[] = ["openai", "openai+usage", "anthropic", "gemini", "gemini-array", "responses"];
// OpenAI and Azure OpenAI answer a Responses client with their own Responses stream (passed
// through): their chat streams are not what a Responses client gets, their Responses streams are.
const NATIVE_RESPONSES = ["openai", "azure-openai"];


const TOOL = { name: "get_weather", description: "Weather for a city", schema: { type: "object", properties: { city: { type: "string" }, unit: { type: "string" } }, required: ["city"] } };
const PROMPT = "Say hello in three languages, then check the weather in São Paulo.";

function requestFor(rec: RecordedStream, client: Client): { path: string; body: object } {
  const tools = rec.name === "tool";
  if (client === "gemini" || client === "gemini-array") {
    // Gemini's own API: the model and the stream in the path; SSE with alt=sse, else a JSON array.
    return {
      path: `/v1beta/models/${rec.model}:streamGenerateContent${client === "gemini" ? "?alt=sse" : ""}`,
      body: {
        systemInstruction: { parts: [{ text: "You are terse." }] },
        contents: [{ role: "user", parts: [{ text: PROMPT }] }],
        ...(tools ? { tools: [{ functionDeclarations: [{ name: TOOL.name, description: TOOL.description, parametersJsonSchema: TOOL.schema }] }] } : {}),
        // A JSON answer: Gemini's JSON mode with the recorded schema.
        ...(rec.request ? { generationConfig: { responseMimeType: "application/json", responseJsonSchema: (rec.request as any).response_format.json_schema.schema } } : {}),
      },
    };
  }
  if (client === "responses") {
    return {
      path: "/v1/responses",
      body: {
        // store: false, as Codex sends it: a stored response's id carries its number in the
        // gateway's store, which differs from run to run (responses-store.test.ts covers the store).
        model: rec.model, stream: true, store: false, instructions: "You are terse.", input: [{ role: "user", content: [{ type: "input_text", text: PROMPT }] }],
        ...(tools ? { tools: [{ type: "function", name: TOOL.name, description: TOOL.description, parameters: TOOL.schema }] } : {}),
        // A JSON answer: the Responses API's text.format with the recorded schema.
        ...(rec.request ? { text: { format: { type: "json_schema", name: (rec.request as any).response_format.json_schema.name, schema: (rec.request as any).response_format.json_schema.schema, strict: true } } } : {}),
      },
    };
  }
  if (client === "anthropic") {
    return {
      path: "/v1/messages",
      body: {
        model: rec.model, max_tokens: 1024, stream: true, system: "You are terse.",
        messages: [{ role: "user", content: PROMPT }],
        ...(tools ? { tools: [{ name: TOOL.name, description: TOOL.description, input_schema: TOOL.schema }] } : {}),
      },
    };
  }
  return {
    path: "/v1/chat/completions",
    body: {
      model: rec.model, stream: true,
      ...(client === "openai+usage" ? { stream_options: { include_usage: true } } : {}),
      ...(rec.request ?? {}),
      messages: [{ role: "system", content: "You are terse." }, { role: "user", content: PROMPT }],
      ...(tools ? { tools: [{ type: "function", function: { name: TOOL.name, description: TOOL.description, parameters: TOOL.schema } }] } : {}),
    },
  };
}

const USAGE_KEYS = ["prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens", "usage_source", "model", "request_type"];

interface Outcome {
  body: Buffer;
  headers: [string, string][];
  state: Record<string, string | undefined>;
  local: boolean;
}

/** One stream through the filter: the recorded request, then the recorded answer in the given chunks. */
function run(h: Host, rec: RecordedStream, client: Client, chunks: Uint8Array[]): Outcome {
  const { path, body } = requestFor(rec, client);
  const s = h.newStream();
  s.callOnRequestHeaders({
    ":method": "POST", ":path": path, ":authority": "gateway.local", ":scheme": "http",
    "content-type": "application/json", authorization: "Bearer client-secret",
  }, false);
  s.callOnRequestBody(JSON.stringify(body), true);
  if (s.getSentLocalResponse()) {
    return { body: s.getSentLocalResponse()!.body, headers: [], state: {}, local: true };
  }
  s.callOnResponseHeaders({ ":status": "200", "content-type": rec.contentType }, false);
  chunks.forEach((c, i) => s.callOnResponseBody(Buffer.from(c.buffer, c.byteOffset, c.byteLength), i === chunks.length - 1));
  s.completeHttpContext();
  const state: Record<string, string | undefined> = {};
  for (const k of USAGE_KEYS) state[k] = s.getFilterState(`sluice.${k}`);
  return { body: Buffer.from(s.downstream.body), headers: s.downstream.headers ?? [], state, local: false };
}

/** Splits bytes at the given positions (sorted, deduplicated, within 1..len-1). */
function split(bytes: Uint8Array, cuts: number[], emptyEnd: boolean): Uint8Array[] {
  const points = [...new Set(cuts.filter((c) => c > 0 && c < bytes.length))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let at = 0;
  for (const p of points) {
    out.push(bytes.subarray(at, p));
    at = p;
  }
  out.push(bytes.subarray(at));
  // Envoy may end a body with an empty data frame carrying end_stream.
  if (emptyEnd) out.push(new Uint8Array(0));
  return out;
}

/** Positions where a cut is most likely to break a naive parser. */
function interestingCuts(bytes: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 1; i < bytes.length; i++) {
    const b = bytes[i];
    if ((b & 0xc0) === 0x80) out.push(i); // inside a multi-byte UTF-8 character
    if (b === 0x0a && bytes[i - 1] === 0x0d) out.push(i); // between "\r" and "\n"
    if (b === 0x0a || b === 0x0d) out.push(i, i + 1); // around line ends (events end in a blank line)
    if (b === 0x5c) out.push(i + 1); // right after a backslash (inside a JSON escape)
  }
  return [...new Set(out)].filter((c) => c > 0 && c < bytes.length);
}

function cutsArbitrary(bytes: Uint8Array) {
  const len = bytes.length;
  const interesting = interestingCuts(bytes);
  const position = fc.oneof(
    { arbitrary: fc.integer({ min: 1, max: len - 1 }), weight: 2 },
    { arbitrary: fc.constantFrom(...interesting), weight: 3 },
  );
  return fc.record({
    cuts: fc.oneof(
      { arbitrary: fc.array(position, { minLength: 1, maxLength: 8 }), weight: 3 },
      { arbitrary: fc.array(position, { minLength: 8, maxLength: 120 }), weight: 2 },
      // A dense run of one-byte chunks somewhere in the stream.
      {
        arbitrary: fc.tuple(fc.integer({ min: 1, max: len - 1 }), fc.integer({ min: 1, max: 200 }))
          .map(([from, n]) => Array.from({ length: Math.min(n, len - from) }, (_, i) => from + i)),
        weight: 1,
      },
    ),
    emptyEnd: fc.boolean(),
  });
}

// ---------------------------------------------------------------------------------------------
// What a correct translation looks like, per client format.

function toolExpectation(rec: RecordedStream) {
  return rec.expected.toolCalls.map((t) => ({ name: t.name, arguments: t.arguments }));
}

function checkOpenAIStream(text: string, rec: RecordedStream, client: Client, state: Record<string, string | undefined>) {
  const data = sseData(text);
  expect(data.at(-1), "the stream ends with data: [DONE]").toBe("[DONE]");
  expect(data.filter((d) => d === "[DONE]")).toHaveLength(1);
  // Azure's own prompt-annotation chunk (no choices, empty id and model) reaches a client that
  // gets Azure's stream as it is; it is not part of the answer.
  const chunks = data.slice(0, -1).map((d) => JSON.parse(d)).filter((c) => !(c.prompt_filter_results && !c.choices?.length));
  for (const c of chunks) {
    expect(c.error, `no error chunk: ${JSON.stringify(c)}`).toBeUndefined();
    expect(c.object).toBe("chat.completion.chunk");
    expect(c.id, `every chunk carries the answer's id: ${JSON.stringify(c).slice(0, 200)}`).toBeTruthy();
    expect(c.model, `every chunk carries the answering model: ${JSON.stringify(c).slice(0, 200)}`).toBeTruthy();
  }
  expect(new Set(chunks.map((c) => c.id)).size, "one id for the whole stream").toBe(1);
  const deltas = chunks.flatMap((c) => (c.choices ?? []).map((ch: { delta?: Record<string, unknown> }) => ch.delta ?? {}));
  expect(deltas.map((d) => (typeof d.content === "string" ? d.content : "")).join(""), "text").toBe(rec.expected.text);
  expect(deltas.map((d) => (typeof d.reasoning_content === "string" ? d.reasoning_content : "")).join(""), "reasoning").toBe(rec.expected.reasoning);
  const calls = new Map<number, { id?: string; name?: string; args: string }>();
  for (const d of deltas) {
    for (const t of (d.tool_calls as { index: number; id?: string; function?: { name?: string; arguments?: string } }[] | undefined) ?? []) {
      const c = calls.get(t.index) ?? { args: "" };
      if (t.id) c.id = t.id;
      if (t.function?.name) c.name = t.function.name;
      c.args += t.function?.arguments ?? "";
      calls.set(t.index, c);
    }
  }
  const got = [...calls.entries()].sort(([a], [b]) => a - b).map(([, c]) => {
    expect(c.id, "every tool call has an id").toBeTruthy();
    return { name: c.name, arguments: JSON.parse(c.args) };
  });
  expect(got, "tool calls").toEqual(toolExpectation(rec));
  const finishes = chunks.flatMap((c) => (c.choices ?? []).map((ch: { finish_reason?: string | null }) => ch.finish_reason).filter(Boolean));
  expect(finishes, "one finish_reason").toEqual([rec.expected.toolCalls.length ? "tool_calls" : "stop"]);
  const usage = chunks.filter((c) => c.usage);
  if (client === "openai+usage") {
    expect(usage.length, "the usage chunk a client asked for").toBeGreaterThanOrEqual(1);
    expect(String(usage.at(-1).usage.total_tokens)).toBe(state.total_tokens);
  } else {
    expect(usage, "no usage chunk for a client that did not ask").toEqual([]);
  }
}

function checkAnthropicStream(text: string, rec: RecordedStream) {
  const events = sseEvents(text);
  const names = events.map((e) => e.event);
  expect(names[0], "message_start first").toBe("message_start");
  expect(names.at(-1), "message_stop last").toBe("message_stop");
  expect(names.at(-2), "message_delta before message_stop").toBe("message_delta");
  expect(names.filter((n) => n === "message_start" || n === "message_stop" || n === "message_delta")).toEqual(["message_start", "message_delta", "message_stop"]);
  expect(names).not.toContain("error");
  let open: { index: number; type: string } | null = null;
  let nextIndex = 0;
  let textOut = "";
  let thinking = "";
  const tools: { name: string; json: string }[] = [];
  for (const e of events) {
    const d = JSON.parse(e.data);
    expect(d.type, "event name and data type agree").toBe(e.event);
    if (e.event === "message_start") {
      expect(d.message.id, "message id").toMatch(/^msg_./);
      expect(d.message.model, "the answering model").toBeTruthy();
    }
    if (e.event === "content_block_start") {
      expect(open, "blocks do not overlap").toBeNull();
      expect(d.index).toBe(nextIndex++);
      open = { index: d.index, type: d.content_block.type };
      if (d.content_block.type === "tool_use") {
        expect(d.content_block.id).toBeTruthy();
        tools.push({ name: d.content_block.name, json: "" });
      }
    } else if (e.event === "content_block_delta") {
      expect(open, "a delta inside an open block").not.toBeNull();
      expect(d.index).toBe(open!.index);
      if (d.delta.type === "text_delta") textOut += d.delta.text;
      else if (d.delta.type === "thinking_delta") thinking += d.delta.thinking;
      else if (d.delta.type === "input_json_delta") tools.at(-1)!.json += d.delta.partial_json;
    } else if (e.event === "content_block_stop") {
      expect(open).not.toBeNull();
      expect(d.index).toBe(open!.index);
      open = null;
    } else if (e.event === "message_delta") {
      expect(open, "every block closed before message_delta").toBeNull();
      expect(d.delta.stop_reason).toBe(rec.expected.toolCalls.length ? "tool_use" : "end_turn");
      expect(typeof d.usage.output_tokens).toBe("number");
    }
  }
  expect(textOut, "text").toBe(rec.expected.text);
  expect(thinking, "thinking").toBe(rec.expected.reasoning);
  expect(tools.map((t) => ({ name: t.name, arguments: JSON.parse(t.json) })), "tool calls").toEqual(toolExpectation(rec));
}

/** Gemini's stream: GenerateContentResponses (SSE events, or the elements of one JSON array). */
function checkGeminiStream(text: string, rec: RecordedStream, client: Client) {
  const events: any[] = client === "gemini-array" ? JSON.parse(text) : sseData(text).map((d) => JSON.parse(d));
  expect(events.length).toBeGreaterThan(0);
  let textOut = "";
  let thinking = "";
  const tools: { name: string; arguments: unknown }[] = [];
  for (const e of events) {
    expect(e.error, "no error element").toBeUndefined();
    for (const part of e.candidates?.[0]?.content?.parts ?? []) {
      if (typeof part.text === "string") {
        if (part.thought) thinking += part.text;
        else textOut += part.text;
      } else if (part.functionCall) tools.push({ name: part.functionCall.name, arguments: part.functionCall.args });
    }
  }
  const last = events.at(-1);
  expect(last.candidates[0].finishReason, "the last element ends the turn").toBe("STOP");
  expect(last.usageMetadata.totalTokenCount, "usage on the last element").toBeGreaterThan(0);
  expect(textOut, "text").toBe(rec.expected.text);
  expect(thinking, "thinking").toBe(rec.expected.reasoning);
  expect(tools, "tool calls").toEqual(toolExpectation(rec));
}

/** A Responses stream: the SDK folds it without complaint, and it holds the recorded answer and the recorded usage. */
function checkResponsesStream(text: string, rec: RecordedStream, state: Record<string, string | undefined>) {
  const out = foldResponsesStream(text);
  expect(out.types[0]).toBe("response.created");
  expect(out.types.at(-1), "response.completed last").toBe("response.completed");
  const messages = out.final.output.filter((o: { type: string }) => o.type === "message");
  const textOut = messages.flatMap((m: { content: { text: string }[] }) => m.content.map((c) => c.text)).join("");
  expect(textOut, "text").toBe(rec.expected.text);
  const calls = out.final.output.filter((o: { type: string }) => o.type === "function_call");
  for (const c of calls) expect(c.call_id, "every function call has a call_id").toBeTruthy();
  expect(calls.map((c: { name: string; arguments: string }) => ({ name: c.name, arguments: JSON.parse(c.arguments) })), "tool calls").toEqual(toolExpectation(rec));
  expect(out.snapshot.output, "the events add up to the final response").toEqual(out.final.output);
  expect(String(out.final.usage.total_tokens)).toBe(state.total_tokens);
}

// ---------------------------------------------------------------------------------------------

const RECORDED = recordedStreams();
const RECORDED_RESPONSES = recordedResponsesStreams();

function noTrap(h: Host) {
  const fatal = h.getLogEntries().filter((e) => (e.level === "error" || e.level === "critical") && /failed|RuntimeError|abort/i.test(e.message));
  expect(fatal, "nothing trapped").toEqual([]);
}

describe("ai-proxy: translated streams do not depend on chunk boundaries (property)", () => {
  let h: Host;
  beforeAll(async () => {
    h = await proxyHost(CONFIG, { clock: () => CLOCK_NS });
  });
  afterAll(() => {
    h?.close();
  });

  it("covers every provider with text, tool and thinking streams holding multi-byte characters", () => {
    for (const p of PROVIDERS) {
      expect(Object.keys(RECORDED[p]), p).toEqual(expect.arrayContaining(["text", "tool"]));
      for (const rec of Object.values(RECORDED[p])) {
        const t = rec.text;
        expect([...t].some((ch) => Buffer.byteLength(ch) === 2), `${p}/${rec.name} 2-byte`).toBe(true);
        if (rec.name !== "tool" || rec.expected.text) {
          expect([...t].some((ch) => Buffer.byteLength(ch) === 3), `${p}/${rec.name} 3-byte`).toBe(true);
          expect([...t].some((ch) => Buffer.byteLength(ch) === 4), `${p}/${rec.name} 4-byte`).toBe(true);
        }
      }
    }
    expect(RECORDED.gemini.text.text).toContain("\r\n");
    expect(Object.keys(RECORDED.anthropic)).toEqual(expect.arrayContaining(["thinking", "json-native", "json-tool"]));
    expect(Object.keys(RECORDED.gemini)).toContain("json");
    // The forced-tool stream carries its JSON as input_json_delta pieces, the others as text.
    expect(RECORDED.anthropic["json-tool"].text).toContain("input_json_delta");
    expect(RECORDED.anthropic["json-native"].text).not.toContain("input_json_delta");
    expect(Object.keys(RECORDED.gemini)).toContain("thinking");
    expect(Object.keys(RECORDED.deepseek)).toContain("reasoning");
  });

  const cases: [string, string, RecordedStream, Client][] = [];
  for (const provider of PROVIDERS) {
    for (const [name, rec] of Object.entries(RECORDED[provider])) {
      for (const client of CLIENTS) {
        if (client === "responses" && NATIVE_RESPONSES.includes(provider)) continue;
        // A JSON answer (response_format) answers Chat Completions, Responses and Gemini clients. The
        // forced tool's recorded stream is named after a Chat client's schema name, which a Gemini
        // client cannot give.
        if (rec.request && (client === "anthropic" || (name === "json-tool" && client.startsWith("gemini")))) continue;
        cases.push([provider, name, rec, client]);
      }
    }
  }
  for (const [name, rec] of Object.entries(RECORDED_RESPONSES)) cases.push(["openai (Responses API)", name, rec, "responses"]);
  for (const [provider, name, rec, client] of cases) {
    {
      {
        // The unsplit translation is a correct stream in the client's format.
        it(`${provider}/${name} → ${client} client: the unsplit translation is correct`, () => {
          const whole = run(h, rec, client, [rec.bytes]);
          expect(whole.local, `request rejected: ${whole.body.toString()}`).toBe(false);
          expect(header(whole.headers, ":status")).toBe("200");
          expect(header(whole.headers, "content-type")).toBe(client === "gemini-array" ? "application/json" : "text/event-stream");
          expect(whole.state.usage_source).toBe("provider");
          expect(Number(whole.state.total_tokens)).toBeGreaterThan(0);
          const text = whole.body.toString("utf8");
          expect(Buffer.from(text, "utf8").equals(whole.body), "the output is valid UTF-8").toBe(true);
          if (client === "anthropic") checkAnthropicStream(text, rec);
          else if (client === "gemini" || client === "gemini-array") checkGeminiStream(text, rec, client);
          else if (client === "responses") checkResponsesStream(text, rec, whole.state);
          else checkOpenAIStream(text, rec, client, whole.state);
          noTrap(h);
        });

        // Split anywhere, it is the same bytes, headers and usage record.
        it(`${provider}/${name} → ${client} client: split at random byte positions, identical output`, () => {
          const whole = run(h, rec, client, [rec.bytes]);
          expect(whole.local, `request rejected: ${whole.body.toString()}`).toBe(false);
          const same = (got: Outcome, what: string) => {
            if (!got.body.equals(whole.body)) {
              // Show where the bytes first differ, not two 6 KB strings.
              let i = 0;
              while (i < got.body.length && i < whole.body.length && got.body[i] === whole.body[i]) i++;
              throw new Error(`${provider}/${name} → ${client}: ${what}: output differs at byte ${i}:\n  split:   ${JSON.stringify(got.body.subarray(Math.max(0, i - 60), i + 60).toString())}\n  unsplit: ${JSON.stringify(whole.body.subarray(Math.max(0, i - 60), i + 60).toString())}`);
            }
            expect(got.headers, `${what}: response headers`).toEqual(whole.headers);
            expect(got.state, `${what}: usage record`).toEqual(whole.state);
          };

          // One byte per chunk, once (it is deterministic).
          same(run(h, rec, client, Array.from(rec.bytes, (_, i) => rec.bytes.subarray(i, i + 1))), "one byte per chunk");

          // fast-check's failure message carries the seed, the path and the shrunk cuts.
          fc.assert(
            fc.property(cutsArbitrary(rec.bytes), ({ cuts, emptyEnd }) => {
              same(run(h, rec, client, split(rec.bytes, cuts, emptyEnd)), `cut at [${[...new Set(cuts)].sort((a, b) => a - b).join(",")}]${emptyEnd ? " + empty end chunk" : ""}`);
            }),
            { seed: SEED, numRuns: RUNS },
          );
          noTrap(h);
        });
      }
    }
  }
});
