// Amazon Bedrock through the local gateway (key-auth + ai-proxy) with the official OpenAI and
// Anthropic clients, against the Bedrock mock (scripts/mocks/bedrock.ts), which accepts only requests
// whose SigV4 signature the AWS SDK's own signer computes too: Converse whole and ConverseStream's
// binary event stream (whole frames and frames cut into random pieces), translated both ways, tool
// calls, the usage record, and Bedrock's errors in each client's shape.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { GoogleGenAI } from "@google/genai";
import { startBedrockMock, type BedrockMock } from "../../scripts/mocks/bedrock.js";
import { AWS_CREDS as CREDS, startBedrockGateway, type BedrockGateway } from "../fixtures/bedrock-gateway.js";

const MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0";
let mock: BedrockMock;
let split: BedrockMock;
let gw: BedrockGateway;

beforeAll(async () => {
  mock = await startBedrockMock({ credentials: CREDS, region: "us-west-2" });
  split = await startBedrockMock({ credentials: CREDS, region: "us-west-2", split: true });
  // Active health checks on: a bedrock instance is not probed (nothing to probe), never marked down by it.
  gw = await startBedrockGateway([
    { name: "bedrock", provider: "bedrock", endpoint: mock.url, region: "us-west-2", models: ["anthropic.*"] },
    { name: "bedrock-split", provider: "bedrock", endpoint: split.url, region: "us-west-2", models: ["amazon.*"] },
  ], { health: { active: { interval_ms: 100 } } });
});

afterAll(async () => {
  await gw?.gateway.close();
  await mock?.close();
  await split?.close();
});

const openai = () => gw.openai();
const anthropic = () => gw.anthropic();
const lastRecord = () => gw.lastRecord();

describe("Bedrock through the gateway", () => {
  it("Chat Completions, whole: translated to Converse, signed, and the answer translated back with its usage", async () => {
    gw.records.length = 0;
    const r = await openai().chat.completions.create({ model: MODEL, messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hello Bedrock" }], max_tokens: 100, temperature: 0.2, stop: ["###"] });
    expect(r.choices[0].message.content).toBe("Echo: Hello Bedrock");
    expect(r.choices[0].finish_reason).toBe("stop");
    expect(r.model).toBe(MODEL);
    const seen = mock.requests.at(-1)!;
    expect(seen.path).toBe("/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse");
    expect(seen.body).toEqual({ messages: [{ role: "user", content: [{ text: "Hello Bedrock" }] }], system: [{ text: "Be brief." }], inferenceConfig: { maxTokens: 100, temperature: 0.2, stopSequences: ["###"] } });
    expect(seen.headers["x-amz-security-token"]).toBe(CREDS.sessionToken);
    expect(JSON.stringify(seen.headers)).not.toContain("key-a");
    const rec = await lastRecord();
    expect(rec).toMatchObject({ provider: "bedrock", source: "provider", prompt: String(r.usage!.prompt_tokens), completion: String(r.usage!.completion_tokens) });
  });

  it("Chat Completions, streamed: the binary event stream read (also cut into random pieces) into OpenAI chunks with usage", async () => {
    for (const model of [MODEL, "amazon.nova-pro-v1:0"]) {
      const stream = await openai().chat.completions.create({ model, messages: [{ role: "user", content: "Stream a reply that is long enough to come in several events" }], stream: true, stream_options: { include_usage: true } });
      let text = "";
      let usage: OpenAI.CompletionUsage | undefined;
      let finish = "";
      for await (const c of stream) {
        text += c.choices[0]?.delta?.content ?? "";
        finish ||= c.choices[0]?.finish_reason ?? "";
        if (c.usage) usage = c.usage;
      }
      expect(text).toBe("Echo: Stream a reply that is long enough to come in several events");
      expect(finish).toBe("stop");
      expect(usage?.completion_tokens).toBeGreaterThan(0);
    }
    expect(split.requests.at(-1)!.path).toBe("/model/amazon.nova-pro-v1%3A0/converse-stream");
  });

  it("tool calls both ways: a streamed call, then its result in the next request", async () => {
    const tools: OpenAI.ChatCompletionTool[] = [{ type: "function", function: { name: "get_weather", description: "Weather by city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } }];
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: "Use the get_weather tool for city=Paris" }];
    const stream = await openai().chat.completions.create({ model: MODEL, messages, tools, stream: true });
    let args = "";
    let name = "";
    let id = "";
    let finish = "";
    for await (const c of stream) {
      const call = c.choices[0]?.delta?.tool_calls?.[0];
      if (call?.function?.name) name = call.function.name;
      if (call?.id) id = call.id;
      args += call?.function?.arguments ?? "";
      finish ||= c.choices[0]?.finish_reason ?? "";
    }
    expect(name).toBe("get_weather");
    expect(JSON.parse(args)).toEqual({ city: "Paris" });
    expect(finish).toBe("tool_calls");
    messages.push({ role: "assistant", content: null, tool_calls: [{ id, type: "function", function: { name, arguments: args } }] });
    messages.push({ role: "tool", tool_call_id: id, content: "18 degrees and sunny" });
    const r = await openai().chat.completions.create({ model: MODEL, messages, tools });
    expect(r.choices[0].message.content).toBe("Tool result: 18 degrees and sunny");
    const sent = mock.requests.at(-1)!.body;
    expect(sent.messages[1]).toEqual({ role: "assistant", content: [{ toolUse: { toolUseId: id, name: "get_weather", input: { city: "Paris" } } }] });
    expect(sent.messages[2]).toEqual({ role: "user", content: [{ toolResult: { toolUseId: id, content: [{ text: "18 degrees and sunny" }] } }] });
    expect(sent.toolConfig.tools[0].toolSpec.name).toBe("get_weather");
  });

  it("Anthropic Messages, streamed, to Bedrock", async () => {
    const s = anthropic().messages.stream({ model: MODEL, max_tokens: 200, messages: [{ role: "user", content: "Hi from the Anthropic SDK" }] });
    let text = "";
    s.on("text", (t) => (text += t));
    const final = await s.finalMessage();
    expect(text).toBe("Echo: Hi from the Anthropic SDK");
    expect(final.stop_reason).toBe("end_turn");
    expect(final.usage.output_tokens).toBeGreaterThan(0);
  });

  it("OpenAI Responses and Gemini's own API, whole and streamed, to Bedrock, with the usage recorded", async () => {
    gw.records.length = 0;
    const r = await openai().responses.create({ model: MODEL, input: "Responses to Bedrock", store: false });
    expect(r.output_text).toBe("Echo: Responses to Bedrock");
    expect(await lastRecord()).toMatchObject({ provider: "bedrock", source: "provider", completion: String(r.usage!.output_tokens) });
    let text = "";
    const s = await openai().responses.create({ model: MODEL, input: "Streamed Responses", store: false, stream: true });
    for await (const e of s) if (e.type === "response.output_text.delta") text += e.delta;
    expect(text).toBe("Echo: Streamed Responses");
    const google = new GoogleGenAI({ apiKey: "key-a", httpOptions: { baseUrl: gw.gateway.url } });
    const g = await google.models.generateContent({ model: MODEL, contents: "Gemini to Bedrock" });
    expect(g.text).toBe("Echo: Gemini to Bedrock");
    let gs = "";
    for await (const c of await google.models.generateContentStream({ model: MODEL, contents: "Gemini streamed" })) gs += c.text ?? "";
    expect(gs).toBe("Echo: Gemini streamed");
    const rec = await lastRecord();
    expect(rec).toMatchObject({ provider: "bedrock", source: "provider" });
    expect(Number(rec.completion)).toBeGreaterThan(0);
  });

  it("Bedrock's errors in the client's shape: throttling whole, an exception mid-stream, a parameter Converse cannot take", async () => {
    mock.script({ error: { status: 429 } });
    const slow = await openai().chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "hi" }] }).catch((e) => e);
    expect(slow).toBeInstanceOf(OpenAI.RateLimitError);
    mock.script({ streamError: { afterEvents: 3 } });
    const stream = await openai().chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "a long answer please, long enough" }], stream: true });
    const err = await (async () => {
      for await (const _c of stream) void _c;
    })().catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(String(err.message)).toContain("Too many tokens");
    const bad = await openai().chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "hi" }], logprobs: true }).catch((e) => e);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    expect(bad.param).toBe("logprobs");
  });
});
