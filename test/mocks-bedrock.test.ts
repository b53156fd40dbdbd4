// The Bedrock mock judged by the official AWS SDK (@aws-sdk/client-bedrock-runtime): Converse and
// ConverseStream signed by the SDK are accepted and their answers and binary event streams decoded
// by it (split into random pieces too), tool calls and usage included; a wrong secret or an unknown
// key is refused the way AWS refuses it, and errors reach the SDK as its own exception classes, in a
// whole answer and in a stream. InvokeModel for Anthropic's models: the SDK's answer is Anthropic's
// message, and its stream's chunks, base64 inside the event stream, are Anthropic's events.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import {
  BedrockRuntimeClient, ConverseCommand, ConverseStreamCommand, InvokeModelCommand, InvokeModelWithResponseStreamCommand, ThrottlingException, ValidationException, ResourceNotFoundException,
} from "@aws-sdk/client-bedrock-runtime";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { startBedrockMock, type BedrockMock } from "../scripts/mocks/bedrock.js";

const CREDS = { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", sessionToken: "FwoGZXIvYXdzEJr//////////wEaDEXAMPLE" };
const MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0";
let mock: BedrockMock;
let split: BedrockMock;

beforeAll(async () => {
  mock = await startBedrockMock({ credentials: CREDS, region: "us-west-2", models: [MODEL] });
  split = await startBedrockMock({ credentials: CREDS, region: "us-west-2", split: true });
});
afterAll(async () => {
  await mock?.close();
  await split?.close();
});

// HTTP/1.1, as the gateway's clusters speak to the mock (the SDK's default handler for this service is HTTP/2).
const client = (m: BedrockMock, credentials = CREDS) => new BedrockRuntimeClient({ region: "us-west-2", endpoint: m.url, credentials, maxAttempts: 1, requestHandler: new NodeHttpHandler() });
const WEATHER = { toolSpec: { name: "get_weather", description: "Weather by city", inputSchema: { json: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } } };

describe("the Bedrock mock, as the AWS SDK sees it", () => {
  it("Converse: the SDK's signed request is accepted and its answer read", async () => {
    const r = await client(mock).send(new ConverseCommand({ modelId: MODEL, system: [{ text: "Be brief." }], messages: [{ role: "user", content: [{ text: "Hello Bedrock" }] }], inferenceConfig: { maxTokens: 200 } }));
    expect(r.output?.message?.content?.[0]?.text).toBe("Echo: Hello Bedrock");
    expect(r.stopReason).toBe("end_turn");
    expect(r.usage?.outputTokens).toBeGreaterThan(0);
    const seen = mock.requests.at(-1)!;
    expect(seen.path).toBe("/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse");
    expect(seen.model).toBe(MODEL);
    expect(seen.headers["x-amz-security-token"]).toBe(CREDS.sessionToken);
  });

  it("ConverseStream: the SDK decodes the binary event stream, whole or in random pieces, text and tool calls", async () => {
    for (const m of [mock, split]) {
      const r = await client(m).send(new ConverseStreamCommand({ modelId: MODEL, messages: [{ role: "user", content: [{ text: "Stream me something long enough to be cut into several pieces" }] }] }));
      let text = "";
      const types: string[] = [];
      for await (const e of r.stream!) {
        types.push(Object.keys(e).find((k) => (e as any)[k] !== undefined)!);
        text += e.contentBlockDelta?.delta?.text ?? "";
        if (e.metadata) expect(e.metadata.usage?.totalTokens).toBeGreaterThan(0);
      }
      expect(text).toBe("Echo: Stream me something long enough to be cut into several pieces");
      expect(types[0]).toBe("messageStart");
      expect(types.slice(-2)).toEqual(["messageStop", "metadata"]);
    }
    const r = await client(mock).send(new ConverseStreamCommand({ modelId: MODEL, messages: [{ role: "user", content: [{ text: "Use the get_weather tool for city=Paris" }] }], toolConfig: { tools: [WEATHER] } }));
    let args = "";
    let name = "";
    let stop = "";
    for await (const e of r.stream!) {
      name ||= e.contentBlockStart?.start?.toolUse?.name ?? "";
      args += e.contentBlockDelta?.delta?.toolUse?.input ?? "";
      stop ||= e.messageStop?.stopReason ?? "";
    }
    expect(name).toBe("get_weather");
    expect(JSON.parse(args)).toEqual({ city: "Paris" });
    expect(stop).toBe("tool_use");
  });

  it("InvokeModel (Anthropic's body): the answer is Anthropic's message; model and stream in the body are refused", async () => {
    const body = { anthropic_version: "bedrock-2023-05-31", max_tokens: 100, messages: [{ role: "user", content: "Hello Claude" }] };
    const r = await client(mock).send(new InvokeModelCommand({ modelId: MODEL, contentType: "application/json", accept: "application/json", body: JSON.stringify(body) }));
    const msg = JSON.parse(new TextDecoder().decode(r.body));
    expect(msg).toMatchObject({ type: "message", role: "assistant", model: MODEL, content: [{ type: "text", text: "Echo: Hello Claude" }], stop_reason: "end_turn" });
    expect(msg.usage.output_tokens).toBeGreaterThan(0);
    expect(mock.requests.at(-1)!.path).toBe("/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke");
    for (const extra of [{ model: MODEL }, { stream: true }]) {
      const e = await client(mock).send(new InvokeModelCommand({ modelId: MODEL, body: JSON.stringify({ ...body, ...extra }) })).catch((x) => x);
      expect(e).toBeInstanceOf(ValidationException);
      expect(e.message).toContain(`extraneous key [${Object.keys(extra)[0]}] is not permitted`);
    }
  });

  it("InvokeModelWithResponseStream: the SDK decodes each chunk, whole or in random pieces, into Anthropic's stream events", async () => {
    for (const m of [mock, split]) {
      const body = { anthropic_version: "bedrock-2023-05-31", max_tokens: 100, messages: [{ role: "user", content: "Stream me a few words from Claude please" }] };
      const r = await client(m).send(new InvokeModelWithResponseStreamCommand({ modelId: MODEL, body: JSON.stringify(body) }));
      const events: any[] = [];
      for await (const e of r.body!) events.push(JSON.parse(new TextDecoder().decode(e.chunk!.bytes)));
      expect(events[0].type).toBe("message_start");
      expect(events.at(-1).type).toBe("message_stop");
      expect(events.at(-1)["amazon-bedrock-invocationMetrics"].outputTokenCount).toBeGreaterThan(0);
      const text = events.filter((e) => e.type === "content_block_delta").map((e) => e.delta.text).join("");
      expect(text).toBe("Echo: Stream me a few words from Claude please");
    }
  });

  it("refuses a wrong secret, an unknown key and a missing session token as AWS does", async () => {
    const wrong = await client(mock, { ...CREDS, secretAccessKey: "not-the-secret" }).send(new ConverseCommand({ modelId: MODEL, messages: [{ role: "user", content: [{ text: "hi" }] }] })).catch((e) => e);
    expect(wrong.name).toBe("InvalidSignatureException");
    expect(wrong.$metadata.httpStatusCode).toBe(403);
    const unknown = await client(mock, { ...CREDS, accessKeyId: "AKIANOTKNOWN" }).send(new ConverseCommand({ modelId: MODEL, messages: [{ role: "user", content: [{ text: "hi" }] }] })).catch((e) => e);
    expect(unknown.name).toBe("UnrecognizedClientException");
    const { sessionToken: _t, ...noToken } = CREDS;
    const missing = await client(mock, noToken as typeof CREDS).send(new ConverseCommand({ modelId: MODEL, messages: [{ role: "user", content: [{ text: "hi" }] }] })).catch((e) => e);
    expect(missing.name).toBe("UnrecognizedClientException");
  });

  it("errors reach the SDK as its own exceptions: validation, unknown model, throttling, and an exception in a stream", async () => {
    const bad = await client(mock).send(new ConverseCommand({ modelId: MODEL, messages: [{ role: "assistant", content: [{ text: "hi" }] }] })).catch((e) => e);
    expect(bad).toBeInstanceOf(ValidationException);
    const gone = await client(mock).send(new ConverseCommand({ modelId: "no.such-model-v1:0", messages: [{ role: "user", content: [{ text: "hi" }] }] })).catch((e) => e);
    expect(gone).toBeInstanceOf(ResourceNotFoundException);
    mock.script({ error: { status: 429 } });
    const slow = await client(mock).send(new ConverseCommand({ modelId: MODEL, messages: [{ role: "user", content: [{ text: "hi" }] }] })).catch((e) => e);
    expect(slow).toBeInstanceOf(ThrottlingException);
    mock.script({ streamError: { afterEvents: 3 } });
    const r = await client(mock).send(new ConverseStreamCommand({ modelId: MODEL, messages: [{ role: "user", content: [{ text: "a long answer please" }] }] }));
    const seen: string[] = [];
    const err = await (async () => {
      for await (const e of r.stream!) seen.push(Object.keys(e)[0]);
    })().catch((e) => e);
    expect(seen).toHaveLength(3);
    expect(err).toBeInstanceOf(ThrottlingException);
  });
});
