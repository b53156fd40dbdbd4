// bedrock-anthropic through build/ai-proxy.wasm, at the byte level: the InvokeModel body (no model or
// stream member, anthropic_version instead, also on a fallback's call), and the wrapped event stream
// (each Anthropic event base64 in a chunk's {"bytes"}) written as Anthropic's SSE for an Anthropic
// client, whatever the members' order; the anthropic-beta header as the body's anthropic_beta; a chunk that is not base64 or a broken frame ends the client's
// stream with an error in its shape, with the usage recorded so far.
import { describe, it, expect } from "vitest";
import { startBedrockMock } from "../../scripts/mocks/bedrock.js";
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { Host } from "../../host/index.js";
import { RENDERED_STREAM_BUFFER_LIMIT, WASM, header, send, answer, upstreamJson, sseEvents, usageRecord } from "./helpers.js";

const codec = new EventStreamCodec((b) => new TextDecoder().decode(b), (s) => new TextEncoder().encode(s));
const ENV = { AWS_ACCESS_KEY_ID: "AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" };
const MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0";
const config = { instances: [{ name: "claude", provider: "bedrock-anthropic", endpoint: "https://bedrock-runtime.us-east-1.amazonaws.com", models: ["anthropic.*"] }] };

function frame(headers: Record<string, string>, payload: string): Buffer {
  const h: Record<string, { type: "string"; value: string }> = {};
  for (const [k, v] of Object.entries(headers)) h[k] = { type: "string", value: v };
  return Buffer.from(codec.encode({ headers: h, body: new TextEncoder().encode(payload) }));
}
const chunk = (event: unknown) => frame({ ":event-type": "chunk", ":content-type": "application/json", ":message-type": "event" }, JSON.stringify({ bytes: Buffer.from(JSON.stringify(event)).toString("base64"), p: "abcdefgh" }));

const EVENTS = [
  { type: "message_start", message: { id: "msg_bdrk_01", type: "message", role: "assistant", model: "claude-3-5-haiku-20241022", content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 12, output_tokens: 1 } } },
  { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
  { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Hello" } },
  // Members in another order: the event line is still its type.
  { index: 0, delta: { text: " there", type: "text_delta" }, type: "content_block_delta" },
  { type: "content_block_stop", index: 0 },
  { type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: 7 } },
  { type: "message_stop", "amazon-bedrock-invocationMetrics": { inputTokenCount: 12, outputTokenCount: 7, invocationLatency: 300, firstByteLatency: 90 } },
];

const proxy = () => Host.create({ filters: [{ name: "ai-proxy", wasm: WASM, configuration: config, env: ENV, allowOnHeadersStopIteration: true }], bufferLimitBytes: RENDERED_STREAM_BUFFER_LIMIT });

async function streamed(client: "anthropic" | "openai") {
  const h = await proxy();
  const body = { model: MODEL, max_tokens: 64, stream: true, messages: [{ role: "user", content: "hi" }] };
  return client === "anthropic"
    ? send(h, "/v1/messages", body, { "anthropic-version": "2023-06-01", "x-api-key": "client-key" })
    : send(h, "/v1/chat/completions", body);
}

describe("bedrock-anthropic (InvokeModel) in the filter", () => {
  it("an Anthropic client's body goes to /invoke-with-response-stream without model and stream, signed", async () => {
    const s = await streamed("anthropic");
    expect(header(s.upstream.headers, ":path")).toBe("/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/invoke-with-response-stream");
    expect(upstreamJson(s)).toEqual({ anthropic_version: "bedrock-2023-05-31", max_tokens: 64, messages: [{ role: "user", content: "hi" }] });
    expect(header(s.upstream.headers, "authorization")).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/us-east-1\/bedrock\/aws4_request, SignedHeaders=\S*host;x-amz-content-sha256;x-amz-date/);
    expect(header(s.upstream.headers, "x-api-key")).toBeUndefined();
  });

  it("the wrapped events reach an Anthropic client as Anthropic's SSE, split at every byte", async () => {
    const bytes = Buffer.concat(EVENTS.map(chunk));
    const s = await streamed("anthropic");
    const pieces = [...bytes].map((b) => Buffer.from([b]));
    const out = sseEvents(answer(s, 200, "application/vnd.amazon.eventstream", pieces));
    expect(out.map((e) => e.event)).toEqual(EVENTS.map((e) => e.type));
    expect(out.map((e) => JSON.parse(e.data))).toEqual(EVENTS);
    expect(header(s.downstream.headers, "content-type")).toBe("text/event-stream");
    expect(usageRecord(s)).toMatchObject({ prompt: "12", completion: "7", source: "provider" });
  });

  it("an exception mid-stream ends the client's stream with its error event (Anthropic's and OpenAI's)", async () => {
    const exception = frame({ ":exception-type": "modelStreamErrorException", ":content-type": "application/json", ":message-type": "exception" }, JSON.stringify({ message: "The model stream broke." }));
    const a = sseEvents(answer(await streamed("anthropic"), 200, "application/vnd.amazon.eventstream", [Buffer.concat([...EVENTS.slice(0, 3).map(chunk), exception])]));
    expect(a.at(-1)!.event).toBe("error");
    expect(JSON.parse(a.at(-1)!.data)).toMatchObject({ type: "error", error: { message: "The model stream broke." } });
    expect(a.filter((e) => e.event === "error")).toHaveLength(1);
    const o = answer(await streamed("openai"), 200, "application/vnd.amazon.eventstream", [Buffer.concat([...EVENTS.slice(0, 3).map(chunk), exception])]);
    expect(o).toContain("The model stream broke.");
    expect(o).toContain("Hello");
  });

  it("a chunk without base64 bytes breaks the stream: a 502 error event after what came, usage recorded", async () => {
    const bad = frame({ ":event-type": "chunk", ":content-type": "application/json", ":message-type": "event" }, JSON.stringify({ bytes: "not base64!" }));
    const s = await streamed("anthropic");
    const out = sseEvents(answer(s, 200, "application/vnd.amazon.eventstream", [Buffer.concat([...EVENTS.slice(0, 3).map(chunk), bad, ...EVENTS.slice(3).map(chunk)])]));
    expect(out.map((e) => e.event)).toEqual(["message_start", "content_block_start", "content_block_delta", "error"]);
    expect(JSON.parse(out.at(-1)!.data).error.message).toContain("without base64 bytes");
    expect(s.getFilterState("sluice.stream_cut")).toBe("bad_event_stream");
    expect(Number(usageRecord(s).completion)).toBeGreaterThan(0);
  });

  it("the client's anthropic-beta header becomes the body's anthropic_beta list, where Bedrock reads betas", async () => {
    const h = await proxy();
    const s = send(h, "/v1/messages", { model: MODEL, max_tokens: 16, messages: [{ role: "user", content: "hi" }] }, { "anthropic-version": "2023-06-01", "anthropic-beta": "interleaved-thinking-2025-05-14, token-efficient-tools-2025-02-19,," });
    expect(upstreamJson(s)).toEqual({ anthropic_version: "bedrock-2023-05-31", max_tokens: 16, messages: [{ role: "user", content: "hi" }], anthropic_beta: ["interleaved-thinking-2025-05-14", "token-efficient-tools-2025-02-19"] });
    const plain = send(h, "/v1/messages", { model: MODEL, max_tokens: 16, messages: [{ role: "user", content: "hi" }] }, { "anthropic-version": "2023-06-01" });
    expect(upstreamJson(plain).anthropic_beta).toBeUndefined();
  });

  it("a whole answer is Anthropic's message: passed through to an Anthropic client, translated for OpenAI's", async () => {
    const message = { id: "msg_bdrk_02", type: "message", role: "assistant", model: "claude-3-5-haiku-20241022", content: [{ type: "text", text: "Hi!" }], stop_reason: "end_turn", stop_sequence: null, usage: { input_tokens: 5, output_tokens: 3 } };
    const h = await proxy();
    const a = send(h, "/v1/messages", { model: MODEL, max_tokens: 16, messages: [{ role: "user", content: "hi" }] }, { "anthropic-version": "2023-06-01" });
    expect(header(a.upstream.headers, ":path")).toBe("/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/invoke");
    expect(JSON.parse(answer(a, 200, "application/json", [JSON.stringify(message)]))).toEqual(message);
    const o = send(h, "/v1/chat/completions", { model: MODEL, messages: [{ role: "user", content: "hi" }] });
    expect(upstreamJson(o).model).toBeUndefined();
    expect(upstreamJson(o).stream).toBeUndefined();
    const chat = JSON.parse(answer(o, 200, "application/json", [JSON.stringify(message)]));
    expect(chat.choices[0].message.content).toBe("Hi!");
    expect(chat.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 3 });
    const e = send(h, "/v1/messages", { model: MODEL, max_tokens: 16, messages: [{ role: "user", content: "hi" }] }, { "anthropic-version": "2023-06-01" });
    const err = JSON.parse(answer(e, 400, "application/json", [JSON.stringify({ message: "Malformed input request: #: extraneous key [foo] is not permitted, please reformat your input and try again." })], { "x-amzn-errortype": "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/" }));
    expect(err).toMatchObject({ type: "error", error: { type: "invalid_request_error", message: expect.stringContaining("extraneous key [foo]") } });
  });

  it("a fallback to Claude on Bedrock sends an Anthropic client's body without model or stream, signed, and the client gets the answer", async () => {
    const mock = await startBedrockMock({ credentials: { accessKeyId: ENV.AWS_ACCESS_KEY_ID, secretAccessKey: ENV.AWS_SECRET_ACCESS_KEY }, region: "us-east-1" });
    try {
      const h = await Host.create({
        filters: [{
          name: "ai-proxy", wasm: WASM, allowOnHeadersStopIteration: true, env: ENV,
          configuration: {
            instances: [
              { name: "a", provider: "anthropic", api_key: "k-a", endpoint: "http://anthropic-a.internal", priority: 0 },
              { name: "b", provider: "bedrock-anthropic", endpoint: mock.url, region: "us-east-1", model: MODEL, priority: 1 },
            ],
            pools: [{ name: "m", instances: ["a", "b"] }],
          },
        }],
        clusters: { b: mock.url },
      });
      for (const stream of [false, true]) {
        const s = send(h, "/v1/messages", { model: "m", max_tokens: 50, stream, messages: [{ role: "user", content: "Bonjour" }] }, { "anthropic-version": "2023-06-01" });
        s.info.responseCodeDetails = "via_upstream";
        s.callOnResponseHeaders({ ":status": "500", "content-type": "application/json" }, false);
        s.callOnResponseBody(JSON.stringify({ type: "error", error: { type: "api_error", message: "boom" } }), true);
        await h.settle();
        s.completeHttpContext();
        const seen = mock.requests.at(-1)!;
        expect(seen.path).toBe("/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/invoke");
        expect(seen.body).toEqual({ anthropic_version: "bedrock-2023-05-31", max_tokens: 50, messages: [{ role: "user", content: "Bonjour" }] });
        expect(header(s.downstream.headers, ":status")).toBe("200");
        const text = s.downstream.body.toString();
        expect(text).toContain("Echo: Bonjour");
        expect(s.getFilterState("sluice.instance")).toBe("b");
      }
    } finally {
      await mock.close();
    }
  });
});
