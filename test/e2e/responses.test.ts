// OpenAI's Responses API with the official `openai` client (client.responses.create and
// client.responses.stream, as Codex CLI and the current SDKs call it) through the local gateway
// (build/key-auth.wasm + build/ai-proxy.wasm) to mock providers speaking their own wire formats:
// OpenAI's and Azure OpenAI's own Responses API (passed through), Anthropic's Messages and Gemini's generateContent
// (translated). Each does a whole answer, a stream, and a function-call round trip, and the usage
// record (the access log's filter state) holds what the client was shown. For Anthropic and Gemini
// the gateway's own response store serves previous_response_id, retrieve and delete.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import OpenAI from "openai";
import { Host } from "../../host/index.js";
import { startGateway, type Gateway } from "../../host/server.js";
import type { Stream } from "../../host/stream.js";
import { startMock, type MockServer } from "../../scripts/mocks/index.js";

const KINDS = ["openai", "azure-openai", "anthropic", "gemini"] as const;
type Kind = (typeof KINDS)[number];
const MODEL: Record<Kind, string> = { openai: "gpt-4o", "azure-openai": "azure-gpt-4o", anthropic: "claude-sonnet-4-5", gemini: "gemini-2.5-flash" };
const BASE: Record<Kind, string> = { openai: "/v1", "azure-openai": "/openai", anthropic: "", gemini: "/v1beta" };
const UPSTREAM_PATH: Record<Kind, RegExp> = { openai: /^\/v1\/responses$/, "azure-openai": /^\/openai\/v1\/responses$/, anthropic: /^\/v1\/messages$/, gemini: /:(generateContent|streamGenerateContent)/ };

const WEATHER: OpenAI.Responses.FunctionTool = {
  type: "function", name: "get_weather", description: "Current weather for a city", strict: true,
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false },
};

let mocks: Record<string, MockServer>;
let gateway: Gateway;
let host: Host;
const records: Record<string, string | undefined>[] = [];

beforeAll(async () => {
  mocks = {};
  for (const k of KINDS) mocks[k] = await startMock(k, { apiKey: `provider-key-${k}` });
  const instances = KINDS.map((k) => ({
    name: k, provider: k, api_key: `provider-key-${k}`, endpoint: mocks[k].url + BASE[k], models: [MODEL[k]],
    ...(k === "azure-openai" ? { deployment: "gpt-4o-prod" } : {}),
  }));
  host = await Host.create({
    filters: [
      { name: "key-auth", wasm: "build/key-auth.wasm", configuration: { consumers: [{ name: "team-a", keys: ["sluice-client-key"] }, { name: "team-b", keys: ["sluice-other-key"] }] } },
      { name: "ai-proxy", wasm: "build/ai-proxy.wasm", configuration: { instances }, allowOnHeadersStopIteration: true },
    ],
  });
  gateway = await startGateway({
    host,
    clusterHeader: "x-sluice-cluster",
    clusters: Object.fromEntries(KINDS.map((k) => [k, { url: mocks[k].url }])),
    routeTimeoutMs: 30_000,
    accessLog: (s: Stream) => {
      const get = (k: string) => s.getFilterState(`sluice.${k}`);
      records.push({ prompt: get("prompt_tokens"), completion: get("completion_tokens"), total: get("total_tokens"), source: get("usage_source"), provider: get("provider") });
    },
  });
});

afterAll(async () => {
  await gateway?.close();
  for (const m of Object.values(mocks ?? {})) await m.close();
});

const client = (apiKey = "sluice-client-key") => new OpenAI({ apiKey, baseURL: `${gateway.url}/v1`, maxRetries: 0 });

/** The usage record of the request the gateway logged last (the access log runs as the stream ends). */
async function lastRecord() {
  for (let i = 0; i < 50 && records.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 20));
  return records.at(-1)!;
}

describe.each(KINDS)("the openai client's Responses API through the gateway to %s", (kind) => {
  it("responses.create: a Response with its text, status and usage, recorded as shown", async () => {
    records.length = 0;
    const r = await client().responses.create({ model: MODEL[kind], instructions: "Be terse.", input: "Hello there", max_output_tokens: 200 });
    expect(r.object).toBe("response");
    expect(r.id).toMatch(/^resp_/);
    expect(r.status).toBe("completed");
    expect(r.output_text).toContain("Hello there");
    expect(r.output[0].type).toBe("message");
    expect(r.usage!.output_tokens).toBeGreaterThan(0);
    const seen = mocks[kind].requests.at(-1)!;
    expect(seen.path).toMatch(UPSTREAM_PATH[kind]);
    expect(JSON.stringify(seen.headers)).not.toContain("sluice-client-key");
    if (kind === "azure-openai") expect(seen.body.model).toBe("gpt-4o-prod");
    const rec = await lastRecord();
    expect(rec).toMatchObject({ provider: kind, source: "provider", prompt: String(r.usage!.input_tokens), completion: String(r.usage!.output_tokens), total: String(r.usage!.total_tokens) });
  });

  it("responses.stream: text deltas, the final response and its usage", async () => {
    records.length = 0;
    const stream = client().responses.stream({ model: MODEL[kind], input: [{ role: "user", content: [{ type: "input_text", text: "Stream me a reply" }] }] });
    let text = "";
    const types: string[] = [];
    stream.on("response.output_text.delta", (e) => (text += e.delta));
    stream.on("event", (e) => types.push(e.type));
    const final = await stream.finalResponse();
    expect(text).toContain("Stream me a reply");
    expect(final.output_text).toBe(text);
    expect(final.status).toBe("completed");
    expect(types[0]).toBe("response.created");
    expect(types.at(-1)).toBe("response.completed");
    expect(final.usage!.output_tokens).toBeGreaterThan(0);
    const rec = await lastRecord();
    expect(rec).toMatchObject({ provider: kind, source: "provider", completion: String(final.usage!.output_tokens), total: String(final.usage!.total_tokens) });
  });

  it("a function call round trip, streamed, then answered with the call's output", async () => {
    const c = client();
    const input: OpenAI.Responses.ResponseInput = [{ role: "user", content: "Use the get_weather tool for city=Paris" }];
    const stream = c.responses.stream({ model: MODEL[kind], input, tools: [WEATHER] });
    let args = "";
    stream.on("response.function_call_arguments.delta", (e) => (args += e.delta));
    const first = await stream.finalResponse();
    const calls = first.output.filter((o) => o.type === "function_call") as OpenAI.Responses.ResponseFunctionToolCall[];
    expect(calls).toHaveLength(1);
    expect(calls[0].name).toBe("get_weather");
    expect(calls[0].call_id).toBeTruthy();
    expect(calls[0].arguments).toBe(args);
    expect(JSON.parse(calls[0].arguments)).toEqual({ city: "Paris" });
    // Codex's way: the call and its output go back in the next request's input.
    input.push({ type: "function_call", call_id: calls[0].call_id, name: calls[0].name, arguments: calls[0].arguments });
    input.push({ type: "function_call_output", call_id: calls[0].call_id, output: "18 degrees and sunny" });
    const final = await c.responses.create({ model: MODEL[kind], input, tools: [WEATHER] });
    expect(final.output_text).toContain("18 degrees and sunny");
  });

  it("errors reach the SDK as its own error classes, in OpenAI's shape", async () => {
    const c = client();
    const bad = await c.responses.create({ model: MODEL[kind], input: [] }).catch((e) => e);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    expect(bad.param).toBe("input");
    const bg = await c.responses.create({ model: MODEL[kind], input: "x", background: true }).catch((e) => e);
    expect(bg).toBeInstanceOf(OpenAI.BadRequestError);
    expect(bg.code).toBe("unsupported_parameter");
  });
});

describe.each(["anthropic", "gemini"] as const)("the gateway's response store through the openai client, %s", (kind) => {
  it("previous_response_id continues a conversation; retrieve and delete; another consumer finds nothing", async () => {
    const c = client();
    const first = await c.responses.create({ model: MODEL[kind], instructions: "Be terse.", input: "My name is Ada" });
    expect(first.id).toMatch(/^resp_.+_s\d+$/);
    const second = await c.responses.create({ model: MODEL[kind], previous_response_id: first.id, input: "What is my name?" });
    expect(second.status).toBe("completed");
    // The provider got the whole conversation in its own format; the earlier instructions stayed behind.
    const seen = mocks[kind].requests.at(-1)!.body;
    const sent = JSON.stringify(kind === "anthropic" ? seen.messages : seen.contents);
    for (const text of ["My name is Ada", first.output_text, "What is my name?"]) expect(sent).toContain(JSON.stringify(text).slice(1, -1));
    expect(JSON.stringify(seen)).not.toContain("Be terse.");

    // A stream continues from the second, and is stored in turn.
    const stream = c.responses.stream({ model: MODEL[kind], previous_response_id: second.id, input: "Once more" });
    const third = await stream.finalResponse();
    expect(third.status).toBe("completed");
    const got = await c.responses.retrieve(third.id);
    expect(got.id).toBe(third.id);
    // (The stream helper adds `parsed` to its parts; the stored Response is as the wire had it.)
    expect(got.output.map((o) => o.id)).toEqual(third.output.map((o) => o.id));
    expect(got.status).toBe("completed");
    expect(got.output_text).toBe(third.output_text);

    const other = await client("sluice-other-key").responses.retrieve(second.id).catch((e) => e);
    expect(other).toBeInstanceOf(OpenAI.NotFoundError);
    const cross = await client("sluice-other-key").responses.create({ model: MODEL[kind], previous_response_id: second.id, input: "x" }).catch((e) => e);
    expect(cross).toBeInstanceOf(OpenAI.BadRequestError);
    expect(cross.code).toBe("previous_response_not_found");

    await c.responses.delete(second.id);
    const gone = await c.responses.retrieve(second.id).catch((e) => e);
    expect(gone).toBeInstanceOf(OpenAI.NotFoundError);
    const after = await c.responses.create({ model: MODEL[kind], previous_response_id: second.id, input: "x" }).catch((e) => e);
    expect(after).toBeInstanceOf(OpenAI.BadRequestError);
    expect(after.param).toBe("previous_response_id");
    expect(after.message).toContain(`Previous response with id '${second.id}' not found.`);

    // store: false is answered, not kept.
    const unstored = await c.responses.create({ model: MODEL[kind], input: "Hi", store: false });
    expect(await c.responses.retrieve(unstored.id).catch((e) => e)).toBeInstanceOf(OpenAI.NotFoundError);
  });
});

describe("Responses features only OpenAI's own API has", () => {
  it("previous_response_id of OpenAI's own goes on to OpenAI, and is not found for a translated provider", async () => {
    const c = client();
    await c.responses.create({ model: MODEL.openai, input: "again", previous_response_id: "resp_123" });
    expect(mocks.openai.requests.at(-1)!.body.previous_response_id).toBe("resp_123");
    const e = await c.responses.create({ model: MODEL.anthropic, input: "again", previous_response_id: "resp_123" }).catch((x) => x);
    expect(e).toBeInstanceOf(OpenAI.BadRequestError);
    expect(e.param).toBe("previous_response_id");
    expect(e.code).toBe("previous_response_not_found");
  });
});
