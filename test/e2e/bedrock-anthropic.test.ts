// Claude on Amazon Bedrock through InvokeModel (provider bedrock-anthropic) with the official
// Anthropic, OpenAI and Google clients, through the local gateway (key-auth + ai-proxy), against the
// Bedrock mock, which checks each request's SigV4 signature with the AWS SDK's signer and refuses a
// body with `model` or `stream` as Bedrock does. Anthropic clients pass through with only the model
// and stream moved to the URL (so thinking signatures reach the client); the binary event stream's
// base64 chunks come out as Anthropic's SSE, whole frames or cut into random pieces; other clients
// are translated; usage is recorded; Bedrock's errors reach each client in its own shape.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { GoogleGenAI } from "@google/genai";
import { startBedrockMock, type BedrockMock } from "../../scripts/mocks/bedrock.js";
import { AWS_CREDS as CREDS, startBedrockGateway, type BedrockGateway } from "../fixtures/bedrock-gateway.js";

const MODEL = "anthropic.claude-sonnet-4-5-20250929-v1:0";
const SPLIT_MODEL = "us.anthropic.claude-3-5-haiku-20241022-v1:0";
let mock: BedrockMock;
let split: BedrockMock;
let gw: BedrockGateway;

beforeAll(async () => {
  mock = await startBedrockMock({ credentials: CREDS, region: "eu-central-1" });
  split = await startBedrockMock({ credentials: CREDS, region: "eu-central-1", split: true });
  gw = await startBedrockGateway([
    { name: "claude", provider: "bedrock-anthropic", endpoint: mock.url, region: "eu-central-1", models: ["anthropic.*"] },
    { name: "claude-split", provider: "bedrock-anthropic", endpoint: split.url, region: "eu-central-1", models: ["us.anthropic.*"] },
  ]);
});

afterAll(async () => {
  await gw?.gateway.close();
  await mock?.close();
  await split?.close();
});

const openai = () => gw.openai();
const anthropic = () => gw.anthropic();
const lastRecord = () => gw.lastRecord();

describe("Claude on Bedrock (InvokeModel) through the gateway", () => {
  it("Anthropic Messages, whole: the client's body with anthropic_version for model, signed, the answer as Bedrock sent it", async () => {
    gw.records.length = 0;
    const r = await anthropic().messages.create({ model: MODEL, max_tokens: 100, system: "Be brief.", messages: [{ role: "user", content: [{ type: "text", text: "Hello Claude on Bedrock", cache_control: { type: "ephemeral" } }] }] });
    expect(r.content).toEqual([{ type: "text", text: "Echo: Hello Claude on Bedrock" }]);
    expect(r.stop_reason).toBe("end_turn");
    const seen = mock.requests.at(-1)!;
    expect(seen.path).toBe("/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke");
    expect(seen.body).toEqual({ anthropic_version: "bedrock-2023-05-31", max_tokens: 100, system: "Be brief.", messages: [{ role: "user", content: [{ type: "text", text: "Hello Claude on Bedrock", cache_control: { type: "ephemeral" } }] }] });
    expect(seen.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE\/\d{8}\/eu-central-1\/bedrock\/aws4_request/);
    expect(JSON.stringify(seen.headers)).not.toContain("key-a");
    const rec = await lastRecord();
    expect(rec).toMatchObject({ provider: "bedrock-anthropic", source: "provider", model: MODEL, completion: String(r.usage.output_tokens) });
  });

  it("Anthropic Messages, streamed: the event stream's base64 chunks become Anthropic's SSE (whole frames or random pieces), thinking signatures kept", async () => {
    for (const model of [MODEL, SPLIT_MODEL]) {
      gw.records.length = 0;
      const s = anthropic().messages.stream({ model, max_tokens: 2048, thinking: { type: "enabled", budget_tokens: 1024 }, messages: [{ role: "user", content: "Think, then stream a reply long enough to come in several chunks" }] });
      let text = "";
      s.on("text", (t) => (text += t));
      const final = await s.finalMessage();
      expect(text).toBe("Echo: Think, then stream a reply long enough to come in several chunks");
      const thinking = final.content.find((b) => b.type === "thinking");
      expect(thinking?.type === "thinking" && thinking.signature.length).toBeGreaterThan(20);
      expect(final.stop_reason).toBe("end_turn");
      const rec = await lastRecord();
      expect(rec).toMatchObject({ provider: "bedrock-anthropic", source: "provider", completion: String(final.usage.output_tokens) });
    }
    const seen = split.requests.at(-1)!;
    expect(seen.path).toBe("/model/us.anthropic.claude-3-5-haiku-20241022-v1%3A0/invoke-with-response-stream");
    expect(seen.body.stream).toBeUndefined();
    expect(seen.body.model).toBeUndefined();
  });

  it("OpenAI Chat, whole and streamed with a tool call: translated to Anthropic's body for Bedrock and back", async () => {
    const r = await openai().chat.completions.create({ model: MODEL, messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hello from OpenAI" }], max_tokens: 50 });
    expect(r.choices[0].message.content).toBe("Echo: Hello from OpenAI");
    const sent = mock.requests.at(-1)!.body;
    expect(sent).toMatchObject({ anthropic_version: "bedrock-2023-05-31", max_tokens: 50, system: "Be brief." });
    expect(sent.model).toBeUndefined();
    const tools: OpenAI.ChatCompletionTool[] = [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } }];
    const stream = await openai().chat.completions.create({ model: SPLIT_MODEL, messages: [{ role: "user", content: "Use the get_weather tool for city=Paris" }], tools, stream: true, stream_options: { include_usage: true } });
    let args = "";
    let name = "";
    let finish = "";
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const c of stream) {
      const call = c.choices[0]?.delta?.tool_calls?.[0];
      if (call?.function?.name) name = call.function.name;
      args += call?.function?.arguments ?? "";
      finish ||= c.choices[0]?.finish_reason ?? "";
      if (c.usage) usage = c.usage;
    }
    expect(name).toBe("get_weather");
    expect(JSON.parse(args)).toEqual({ city: "Paris" });
    expect(finish).toBe("tool_calls");
    expect(usage?.completion_tokens).toBeGreaterThan(0);
    expect(split.requests.at(-1)!.body.stream).toBeUndefined();
  });

  it("OpenAI Responses and Gemini's own API, streamed, with the usage recorded", async () => {
    let text = "";
    const s = await openai().responses.create({ model: MODEL, input: "Streamed Responses", store: false, stream: true });
    for await (const e of s) if (e.type === "response.output_text.delta") text += e.delta;
    expect(text).toBe("Echo: Streamed Responses");
    gw.records.length = 0;
    const google = new GoogleGenAI({ apiKey: "key-a", httpOptions: { baseUrl: gw.gateway.url } });
    let gs = "";
    for await (const c of await google.models.generateContentStream({ model: SPLIT_MODEL, contents: "Gemini streamed" })) gs += c.text ?? "";
    expect(gs).toBe("Echo: Gemini streamed");
    const rec = await lastRecord();
    expect(rec).toMatchObject({ provider: "bedrock-anthropic", source: "provider" });
    expect(Number(rec.completion)).toBeGreaterThan(0);
  });

  it("Bedrock's errors in the client's shape: throttling, an exception mid-stream, a body Bedrock refuses", async () => {
    mock.script({ error: { status: 429 } });
    const slow = await anthropic().messages.create({ model: MODEL, max_tokens: 10, messages: [{ role: "user", content: "hi" }] }).catch((e) => e);
    expect(slow).toBeInstanceOf(Anthropic.RateLimitError);
    expect(slow.error).toMatchObject({ type: "error", error: { type: "rate_limit_error" } });
    for (const client of ["anthropic", "openai"] as const) {
      mock.script({ streamError: { afterEvents: 3 } });
      const err = await (async () => {
        if (client === "anthropic") {
          const s = anthropic().messages.stream({ model: MODEL, max_tokens: 100, messages: [{ role: "user", content: "a long answer please, long enough" }] });
          await s.finalMessage();
        } else {
          const s = await openai().chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "a long answer please, long enough" }], stream: true });
          for await (const _c of s) void _c;
        }
      })().catch((e) => e);
      expect(err, client).toBeInstanceOf(client === "anthropic" ? Anthropic.APIError : OpenAI.APIError);
      expect(String(err.message)).toContain("Too many tokens");
    }
    const bad = await anthropic().messages.create({ model: "anthropic.claude v2", max_tokens: 10, messages: [{ role: "user", content: "hi" }] }).catch((e) => e);
    expect(bad).toBeInstanceOf(Anthropic.BadRequestError);
  });
});
