// redact_upstream_errors (issue 13): a self-hosted OpenAI-compatible server's error messages carry
// internal hostnames and addresses; with the setting (the default for openai-compatible) the client
// gets the status and its class only, in every path an error takes: a buffered error answer, an
// error event in a stream (translated or reframed), and the last failure after fallback. The public
// APIs keep their documented messages.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Host } from "../../host/index.js";
import { WASM, proxyHost, send, answer, header, sseData, sseEvents } from "./helpers.js";

const LEAK = "connect to 10.0.3.7:8000 (gpu-node-3.cluster.internal) failed: /srv/models/llama/config.json";
const leaky = (status: number) => JSON.stringify({ error: { message: LEAK, type: "server_error", param: "gpu-node-3", code: "node_down" }, status });
// vLLM's own error shape (message and type at the top level).
const VLLM_400 = JSON.stringify({ object: "error", message: `model path /srv/models on 10.0.3.7 has no tokenizer`, type: "BadRequestError", param: null, code: 400 });

const CONFIG = {
  instances: [
    { name: "local", provider: "openai-compatible", endpoint: "http://vllm.internal:8000/v1", models: ["llama-*"] },
    { name: "local-open", provider: "openai-compatible", endpoint: "http://vllm2.internal:8000/v1", models: ["open-*"], redact_upstream_errors: false },
    { name: "oa", provider: "openai", api_key: "sk-oa", models: ["gpt-*"] },
    { name: "claude", provider: "anthropic", api_key: "sk-ant", models: ["claude-*"], redact_upstream_errors: true },
  ],
};
const chat = (model: string, extra: object = {}) => ({ model, messages: [{ role: "user", content: "hi" }], ...extra });
const messages = (model: string, extra: object = {}) => ({ model, max_tokens: 50, messages: [{ role: "user", content: "hi" }], ...extra });

function expectNoLeak(text: string) {
  expect(text).not.toMatch(/10\.0\.3\.7|internal|gpu-node|\/srv\/|node_down|BadRequestError/);
}

let h: Host;
beforeAll(async () => {
  h = await proxyHost(CONFIG);
});
afterAll(() => h.close());

describe("redact_upstream_errors", () => {
  it("openai-compatible (default on): a buffered error keeps its status, says only its class", () => {
    const s = send(h, "/v1/chat/completions", chat("llama-3"));
    const out = answer(s, 503, "application/json", [leaky(503)]);
    expect(header(s.downstream.headers, ":status")).toBe("503");
    expect(JSON.parse(out)).toEqual({ error: { message: "The provider returned a server error (HTTP 5xx).", type: "api_error", param: null, code: null } });
    expectNoLeak(out);
    const t = send(h, "/v1/chat/completions", chat("llama-3"));
    const out4 = answer(t, 400, "application/json", [VLLM_400]);
    expect(header(t.downstream.headers, ":status")).toBe("400");
    expect(JSON.parse(out4).error).toMatchObject({ message: "The provider returned a client error (HTTP 4xx).", type: "invalid_request_error" });
    expectNoLeak(out4);
    const r = send(h, "/v1/chat/completions", chat("llama-3"));
    expect(JSON.parse(answer(r, 429, "application/json", [leaky(429)])).error.type).toBe("rate_limit_error");
  });

  it("an Anthropic client of a redacting instance gets Anthropic's shape, redacted", () => {
    const s = send(h, "/v1/messages", messages("llama-3"));
    const out = answer(s, 500, "application/json", [leaky(500)]);
    expect(JSON.parse(out)).toEqual({ type: "error", error: { type: "api_error", message: "The provider returned a server error (HTTP 5xx)." } });
    expectNoLeak(out);
  });

  it("a redacting Anthropic instance does not pass its own error shape through either", () => {
    const s = send(h, "/v1/messages", messages("claude-sonnet-4-5"));
    const out = answer(s, 400, "application/json", [JSON.stringify({ type: "error", error: { type: "invalid_request_error", message: LEAK } })]);
    expect(JSON.parse(out)).toEqual({ type: "error", error: { type: "invalid_request_error", message: "The provider returned a client error (HTTP 4xx)." } });
  });

  it("public APIs and instances that turn it off keep the provider's message", () => {
    const s = send(h, "/v1/chat/completions", chat("gpt-4o"));
    expect(JSON.parse(answer(s, 500, "application/json", [leaky(500)])).error).toMatchObject({ message: LEAK, code: "node_down" });
    const t = send(h, "/v1/chat/completions", chat("open-1"));
    expect(JSON.parse(answer(t, 400, "application/json", [VLLM_400])).error.message).toMatch(/no tokenizer/);
  });

  it("an error event in a stream is redacted, whether the client asked for usage (reframed) or not", () => {
    const chunk = `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "llama-3", choices: [{ index: 0, delta: { content: "Hel" }, finish_reason: null }] })}\n\n`;
    const error = `data: ${leaky(500)}\n\n`;
    for (const extra of [{ stream: true }, { stream: true, stream_options: { include_usage: true } }]) {
      const s = send(h, "/v1/chat/completions", chat("llama-3", extra));
      const out = answer(s, 200, "text/event-stream", [chunk, error]);
      expectNoLeak(out);
      const data = sseData(out);
      expect(JSON.parse(data[0]).choices[0].delta.content).toBe("Hel");
      expect(data.map((d) => (d.startsWith("{") ? JSON.parse(d).error?.message : d))).toContain("The provider returned a server error (HTTP 5xx).");
      expect(data.at(-1)).toBe("[DONE]");
    }
    const a = send(h, "/v1/messages", messages("llama-3", { stream: true }));
    const out = answer(a, 200, "text/event-stream", [chunk, error]);
    expectNoLeak(out);
    const ev = sseEvents(out).find((e) => e.event === "error")!;
    expect(JSON.parse(ev.data).error.message).toBe("The provider returned a server error (HTTP 5xx).");
    // Not redacted: the public API's message reaches the client.
    const p = send(h, "/v1/chat/completions", chat("gpt-4o", { stream: true }));
    expect(answer(p, 200, "text/event-stream", [chunk, error])).toContain("gpu-node-3");
  });

  it("after fallback, the last instance's error is redacted too", async () => {
    const server = http.createServer((_req, res) => {
      res.writeHead(502, { "content-type": "application/json" });
      res.end(leaky(502));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const g = await Host.create({
      filters: [{
        name: "ai-proxy", wasm: WASM, allowOnHeadersStopIteration: true,
        configuration: {
          instances: [
            { name: "a", provider: "openai-compatible", endpoint: "http://a.internal/v1" },
            { name: "b", provider: "openai-compatible", endpoint: "http://b.internal/v1" },
          ],
          pools: [{ name: "llama", instances: ["a", "b"] }],
        },
      }],
      clusters: { a: url, b: url },
    });
    try {
      const s = send(g, "/v1/chat/completions", chat("llama"));
      s.callOnResponseHeaders({ ":status": "502", "content-type": "application/json" }, false);
      s.callOnResponseBody(leaky(502), true);
      await g.settle();
      s.completeHttpContext();
      const out = s.downstream.body.toString();
      expect(s.getFilterState("sluice.attempts")).toBe("2");
      expect(JSON.parse(out).error.message).toBe("The provider returned a server error (HTTP 5xx).");
      expectNoLeak(out);
    } finally {
      g.close();
      await new Promise((r) => server.close(r));
    }
  });
});
