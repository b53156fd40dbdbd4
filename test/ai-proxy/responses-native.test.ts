// A Responses client (POST /v1/responses) of an OpenAI or Azure OpenAI instance: the request goes to
// the instance's own Responses API with only the model (and the instance's limit) set, the answer
// and the stream come back as the provider sent them, and the usage record is read from the
// Response's usage (a stream's response.completed), every token once.
import { describe, it, expect, beforeAll, afterEach } from "vitest";
import type { Host } from "../../host/index.js";
import { recordedResponsesStreams, RECORDED_TEXT } from "../../scripts/mocks/recorded.js";
import { proxyHost, foldResponsesStream } from "./helpers.js";
import { send, upstream, reply, usage, header } from "../providers/helpers.js";

const CONFIG = {
  instances: [
    { name: "oa", provider: "openai", api_key: "sk-oa", models: ["gpt-*"] },
    { name: "capped", provider: "openai", api_key: "sk-oa", max_tokens: 77, models: ["capped-*"] },
    { name: "az", provider: "azure-openai", api_key: "az-key", endpoint: "https://res.openai.azure.com/openai", deployment: "gpt4o-prod", models: ["azure-gpt-4o"] },
  ],
};
const R = "/v1/responses";

const hosts: Host[] = [];
afterEach(() => {
  for (const h of hosts) expect(h.getLogEntries().filter((e) => /failed: Uncaught|abort/i.test(e.message))).toEqual([]);
});

const RESPONSE = {
  id: "resp_abc", object: "response", created_at: 1761000000, status: "completed", error: null, incomplete_details: null,
  model: "gpt-4o-mini-2024-07-18", output: [{ id: "msg_1", type: "message", status: "completed", role: "assistant", content: [{ type: "output_text", text: "Hi there", annotations: [] }] }],
  usage: { input_tokens: 21, input_tokens_details: { cached_tokens: 8 }, output_tokens: 9, output_tokens_details: { reasoning_tokens: 4 }, total_tokens: 30 },
};

describe("ai-proxy: Responses passed through to OpenAI's own Responses API", () => {
  let h: Host;
  beforeAll(async () => { h = await proxyHost(CONFIG); hosts.push(h); });

  it("sends the body to /v1/responses with the model set and the client's credential replaced", () => {
    const body = { model: "gpt-4o-mini", input: [{ role: "user", content: "Hi" }], tools: [{ type: "web_search" }], previous_response_id: "resp_prev", store: true, include: ["reasoning.encrypted_content"] };
    const s = send(h, body, R);
    const up = upstream(s);
    expect(header(s.upstream.headers, ":path")).toBe("/v1/responses");
    expect(header(s.upstream.headers, "authorization")).toBe("Bearer sk-oa");
    // Built-in tools and previous_response_id are OpenAI's to serve: they go on as sent.
    expect(up).toEqual(body);
  });

  it("background is refused for OpenAI too (GET /v1/responses/{id} is answered from the gateway's own store, never OpenAI's)", () => {
    const s = send(h, { model: "gpt-4o-mini", input: "Hi", background: true }, R);
    const r = s.getSentLocalResponse()!;
    expect(r.statusCode).toBe(400);
    expect(JSON.parse(r.body.toString()).error).toMatchObject({ param: "background", code: "unsupported_parameter", type: "invalid_request_error" });
  });

  it("an instance's max_tokens is sent as max_output_tokens", () => {
    const up = upstream(send(h, { model: "capped-model", input: "Hi", max_output_tokens: 1000 }, R));
    expect(up.max_output_tokens).toBe(77);
    expect(up).not.toHaveProperty("max_completion_tokens");
  });

  it("Azure: its v1 Responses path, the deployment as the model, its api-key header", () => {
    const s = send(h, { model: "azure-gpt-4o", input: "Hi" }, R);
    expect(header(s.upstream.headers, ":path")).toBe("/openai/v1/responses");
    expect(header(s.upstream.headers, "api-key")).toBe("az-key");
    expect(upstream(s).model).toBe("gpt4o-prod");
  });

  it("a whole Response passes through untouched, its usage recorded once", () => {
    const s = send(h, { model: "gpt-4o-mini", input: "Hi" }, R);
    const text = JSON.stringify(RESPONSE);
    expect(reply(s, 200, "application/json", [text])).toBe(text);
    expect(usage(s)).toEqual({ prompt: "21", completion: "9", total: "30", cached: "8", reasoning: "4", source: "provider" });
    expect(s.getFilterState("sluice.model")).toBe("gpt-4o-mini-2024-07-18");
  });

  it("a 200 that is not a Response is a 502, charged as an estimate", () => {
    const s = send(h, { model: "gpt-4o-mini", input: "Hi" }, R);
    const body = reply(s, 200, "application/json", [JSON.stringify({ id: "chatcmpl-1", object: "chat.completion", choices: [] })]);
    expect(header(s.downstream.headers, ":status")).toBe("502");
    expect(JSON.parse(body).error.code).toBe("bad_upstream_response");
  });

  it("a Response without usage is estimated from its output", () => {
    const s = send(h, { model: "gpt-4o-mini", input: "Hi" }, R);
    reply(s, 200, "application/json", [JSON.stringify({ ...RESPONSE, usage: null })]);
    expect(usage(s).source).toBe("estimate");
    expect(Number(usage(s).completion)).toBeGreaterThan(0);
  });

  for (const name of ["text", "tool"] as const) {
    it(`a ${name} stream passes through byte for byte; the usage comes from response.completed`, () => {
      const rec = recordedResponsesStreams()[name];
      const s = send(h, { model: rec.model, input: "Say hello", stream: true }, R);
      const out = reply(s, 200, rec.contentType, [Buffer.from(rec.bytes)]);
      expect(out).toBe(rec.text);
      const folded = foldResponsesStream(out);
      const u = folded.final.usage;
      expect(usage(s)).toEqual({
        prompt: String(u.input_tokens), completion: String(u.output_tokens), total: String(u.total_tokens),
        cached: String(u.input_tokens_details.cached_tokens), reasoning: String(u.output_tokens_details.reasoning_tokens), source: "provider",
      });
      if (name === "text") expect(folded.snapshot.output[0].content[0].text).toBe(RECORDED_TEXT);
    });
  }

  it("a native stream cut short gets an error event numbered after the provider's last, and an estimate", () => {
    const rec = recordedResponsesStreams().text;
    const cut = rec.text.slice(0, rec.text.indexOf("response.output_text.done") - 10);
    const s = send(h, { model: rec.model, input: "Hi", stream: true }, R);
    const out = reply(s, 200, rec.contentType, [cut]);
    expect(out.startsWith(cut)).toBe(true);
    const complete = cut.split("\n\n").slice(0, -1);
    const before = JSON.parse(complete[complete.length - 1].split("data: ")[1]);
    const events = out.slice(cut.length).split("\n\n").filter((b) => b.includes("data: "));
    expect(events).toHaveLength(1);
    const last = JSON.parse(events[0].split("data: ")[1]);
    expect(last).toMatchObject({ type: "error", code: "upstream_incomplete", sequence_number: before.sequence_number + 1 });
    expect(usage(s).source).toBe("estimate");
    expect(Number(usage(s).completion)).toBeGreaterThan(0);
  });

  it("a client that hangs up mid-stream is charged the prompt estimate and the text it was sent", () => {
    const rec = recordedResponsesStreams().text;
    const s = send(h, { model: rec.model, input: "Hi", stream: true }, R);
    s.callOnResponseHeaders({ ":status": "200", "content-type": rec.contentType }, false);
    s.callOnResponseBody(rec.text.slice(0, rec.text.indexOf("response.output_text.done") - 10), false);
    s.completeHttpContext();
    const u = usage(s);
    expect(u.source).toBe("estimate");
    expect(Number(u.completion)).toBeGreaterThan(0);
    expect(Number(u.prompt)).toBeGreaterThan(0);
  });

  it("a provider error passes in OpenAI's error shape with its status", () => {
    const s = send(h, { model: "gpt-4o-mini", input: "Hi" }, R);
    const body = reply(s, 400, "application/json", [JSON.stringify({ error: { message: "Previous response with id 'resp_x' not found.", type: "invalid_request_error", param: "previous_response_id", code: "previous_response_not_found" } })]);
    expect(header(s.downstream.headers, ":status")).toBe("400");
    expect(JSON.parse(body).error).toMatchObject({ param: "previous_response_id", code: "previous_response_not_found" });
    expect(usage(s)).toMatchObject({ prompt: "0", completion: "0", source: "provider" });
  });
});
