// ai-proxy's cap on what it buffers of a provider's answer (max_response_body_bytes), through
// build/ai-proxy.wasm: a whole answer, an error body, a fallback's held failure and a fallback's
// answer. Past the cap the client gets a 502 in its own format at once (a local reply, which Envoy
// sends straight to the client while the response headers are held), nothing more is buffered,
// and the usage record is still written. A stream is not buffered, so it is not capped.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { Host } from "../../host/index.js";
import { startMock, type MockServer } from "../../scripts/mocks/index.js";
import { WASM, send, header, sseData, usageRecord, proxyHost, RENDERED_STREAM_BUFFER_LIMIT } from "./helpers.js";

const CAP = 1000;
const CONFIG = { instances: [{ name: "oa", provider: "openai", api_key: "k", models: ["gpt-*"] }], max_response_body_bytes: CAP, instance_header: true };
const CHAT = { model: "gpt-4o", messages: [{ role: "user", content: "Hello" }] };

/** A chat answer whose content makes it about `bytes` long. */
function bigAnswer(bytes: number): string {
  return JSON.stringify({
    id: "c1", object: "chat.completion", created: 1, model: "gpt-4o",
    choices: [{ index: 0, message: { role: "assistant", content: "w ".repeat(bytes / 2) }, finish_reason: "stop" }],
    usage: { prompt_tokens: 5, completion_tokens: 9, total_tokens: 14 },
  });
}

/** Feeds `body` in `chunk`-byte pieces while the stream takes them; returns how many were fed. */
function feed(s: ReturnType<Host["newStream"]>, body: string | Buffer, chunk: number): number {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
  let n = 0;
  for (let at = 0; at < buf.length; at += chunk) {
    if (s.getSentLocalResponse()) break; // the filter answered: Envoy resets the upstream request
    s.callOnResponseBody(buf.subarray(at, at + chunk), at + chunk >= buf.length);
    n++;
  }
  return n;
}

function tooLarge(s: ReturnType<Host["newStream"]>, client: "openai" | "anthropic" = "openai") {
  expect(s.getSentLocalResponse()?.statusCode).toBe(502);
  expect(s.info.responseCodeDetails).toBe("sluice_ai_proxy_upstream_response_too_large");
  expect(header(s.downstream.headers, ":status")).toBe("502");
  const body = JSON.parse(s.downstream.body.toString());
  if (client === "anthropic") expect(body).toMatchObject({ type: "error", error: { type: "api_error" } });
  else expect(body.error).toMatchObject({ type: "api_error", code: "upstream_response_too_large" });
}

describe("max_response_body_bytes", () => {
  it("a whole answer past the cap: 502 in the client's format at once, the answer charged as an estimate", async () => {
    const h = await proxyHost(CONFIG);
    for (const [client, path] of [["openai", "/v1/chat/completions"], ["anthropic", "/v1/messages"]] as const) {
      const s = send(h, path, { ...CHAT, max_tokens: 100 });
      s.callOnResponseHeaders({ ":status": "200", "content-type": "application/json" }, false);
      const fed = feed(s, bigAnswer(50 * CAP), 300);
      expect(fed).toBe(4); // the fourth piece passed 1,000 bytes; nothing after it was taken
      tooLarge(s, client);
      expect(header(s.downstream.headers, "x-sluice-instance")).toBe("oa");
      s.completeHttpContext();
      const u = usageRecord(s);
      expect(u.source).toBe("estimate");
      // 1,200 bytes seen would be ~300 tokens; the request allowed 100.
      expect(Number(u.completion)).toBe(100);
      expect(Number(u.prompt)).toBeGreaterThan(0);
    }
  });

  it("an answer at the cap passes; a stream is never capped", async () => {
    const h = await proxyHost({ ...CONFIG, max_response_body_bytes: 100_000 });
    const ok = send(h, "/v1/chat/completions", CHAT);
    ok.callOnResponseHeaders({ ":status": "200", "content-type": "application/json" }, false);
    feed(ok, bigAnswer(90_000), 7000);
    expect(header(ok.downstream.headers, ":status")).toBe("200");
    expect(JSON.parse(ok.downstream.body.toString()).usage.completion_tokens).toBe(9);

    const small = await proxyHost(CONFIG);
    const s = send(small, "/v1/chat/completions", { ...CHAT, stream: true });
    s.callOnResponseHeaders({ ":status": "200", "content-type": "text/event-stream" }, false);
    let sse = "";
    for (let i = 0; i < 200; i++) sse += `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "gpt-4o", choices: [{ index: 0, delta: { content: "word " }, finish_reason: null }] })}\n\n`;
    sse += `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "gpt-4o", choices: [{ index: 0, delta: {}, finish_reason: "stop" }] })}\n\ndata: [DONE]\n\n`;
    feed(s, sse, 500);
    expect(s.getSentLocalResponse()).toBeFalsy();
    expect(sseData(s.downstream.body.toString()).at(-1)).toBe("[DONE]");
  });

  it("a provider error body past the cap: 502, nothing charged", async () => {
    const h = await proxyHost(CONFIG);
    const s = send(h, "/v1/chat/completions", CHAT);
    s.callOnResponseHeaders({ ":status": "400", "content-type": "application/json" }, false);
    feed(s, JSON.stringify({ error: { message: "x".repeat(5000), type: "invalid_request_error" } }), 600);
    tooLarge(s);
    s.completeHttpContext();
    expect(usageRecord(s)).toMatchObject({ total: "0", source: "provider" });
  });

  it("a JSON answer to a stream request (replayed) past the cap: 502", async () => {
    const h = await proxyHost(CONFIG);
    const s = send(h, "/v1/chat/completions", { ...CHAT, stream: true });
    s.callOnResponseHeaders({ ":status": "200", "content-type": "application/json" }, false);
    feed(s, bigAnswer(4000), 600);
    tooLarge(s);
  });
});

describe("max_response_body_bytes and fallback", () => {
  let openai: MockServer;
  beforeAll(async () => {
    openai = await startMock("openai", { apiKey: "k-b" });
  });
  afterAll(async () => {
    await openai.close();
  });

  async function pool() {
    return Host.create({
      filters: [{
        name: "ai-proxy", wasm: WASM, allowOnHeadersStopIteration: true,
        configuration: {
          instances: [
            { name: "a", provider: "openai", api_key: "k-a", endpoint: "http://a.internal/v1", priority: 0 },
            { name: "b", provider: "openai", api_key: "k-b", endpoint: "http://b.internal/v1", model: "gpt-4o", priority: 1 },
          ],
          pools: [{ name: "m", instances: ["a", "b"] }],
          max_response_body_bytes: CAP,
          instance_header: true,
        },
      }],
      clusters: { b: openai.url },
    });
  }

  it("the failed answer held for a fallback past the cap: 502 at once, no fallback", async () => {
    const h = await pool();
    const before = openai.requests.length;
    const s = send(h, "/v1/chat/completions", { model: "m", messages: [{ role: "user", content: "x" }] });
    s.callOnResponseHeaders({ ":status": "500", "content-type": "text/html" }, false);
    feed(s, "<html>" + "x".repeat(5000), 700);
    await h.settle();
    tooLarge(s);
    expect(openai.requests.length).toBe(before);
  });

  it("a fallback's answer past the cap: 502 from the instance that sent it, charged as an estimate", async () => {
    const h = await pool();
    openai.script({ raw: { status: 200, headers: { "content-type": "application/json" }, body: bigAnswer(10 * CAP) } });
    for (const [path, client] of [["/v1/chat/completions", "openai"], ["/v1/messages", "anthropic"]] as const) {
      if (client === "anthropic") openai.script({ raw: { status: 200, headers: { "content-type": "application/json" }, body: bigAnswer(10 * CAP) } });
      const s = send(h, path, { model: "m", max_tokens: 50, stream: true, messages: [{ role: "user", content: "x" }] });
      s.callOnResponseHeaders({ ":status": "500", "content-type": "application/json" }, false);
      s.callOnResponseBody(JSON.stringify({ error: { message: "boom", type: "server_error" } }), true);
      await h.settle();
      s.completeHttpContext();
      expect(header(s.downstream.headers, ":status")).toBe("502");
      expect(header(s.downstream.headers, "content-type")).toBe("application/json");
      expect(header(s.downstream.headers, "x-sluice-instance")).toBe("b");
      const body = JSON.parse(s.downstream.body.toString());
      if (client === "anthropic") expect(body).toMatchObject({ type: "error", error: { type: "api_error" } });
      else expect(body.error.code).toBe("upstream_response_too_large");
      expect(usageRecord(s).source).toBe("estimate");
      expect(Number(usageRecord(s).completion)).toBe(50);
    }
  });
});

describe("ai-proxy's linear memory after a 30 MB answer", () => {
  it("stays bounded at the default cap (10 MiB), and the next request is served", async () => {
    const h = await Host.create({ filters: [{ name: "ai-proxy", wasm: WASM, configuration: { instances: [{ name: "oa", provider: "openai", api_key: "k" }] }, allowOnHeadersStopIteration: true }], bufferLimitBytes: RENDERED_STREAM_BUFFER_LIMIT });
    const warm = send(h, "/v1/chat/completions", CHAT);
    warm.callOnResponseHeaders({ ":status": "200", "content-type": "application/json" }, false);
    feed(warm, bigAnswer(2000), 1000);
    const base = h.memoryPages("ai-proxy");
    const s = send(h, "/v1/chat/completions", CHAT);
    s.callOnResponseHeaders({ ":status": "200", "content-type": "application/json" }, false);
    const mb = Buffer.alloc(1024 * 1024, 0x61);
    for (let i = 0; i < 30 && !s.getSentLocalResponse(); i++) s.callOnResponseBody(mb, i === 29);
    tooLarge(s);
    s.completeHttpContext();
    // Nothing of the answer was copied into the VM: a few pages at most, far from the 30 MB
    // (480 pages) the answer would take, let alone its parse and translation.
    expect(h.memoryPages("ai-proxy")).toBeLessThanOrEqual(base + 4);
    const next = send(h, "/v1/chat/completions", CHAT);
    next.callOnResponseHeaders({ ":status": "200", "content-type": "application/json" }, false);
    feed(next, bigAnswer(2000), 1000);
    expect(header(next.downstream.headers, ":status")).toBe("200");
  });

  it("an answer just under the cap, translated or passed through, takes at most 1,024 pages (64 MiB)", async () => {
    // The whole answer is copied in, parsed, its text decoded and (translated) written out again,
    // and the VM's memory grows by doubling: 10 MiB of answer stays within 64 MiB (32 MiB passed
    // through untouched). Lower max_response_body_bytes to lower this.
    for (const path of ["/v1/chat/completions", "/v1/messages"]) {
      const h = await Host.create({ filters: [{ name: "ai-proxy", wasm: WASM, configuration: { instances: [{ name: "oa", provider: "openai", api_key: "k" }] }, allowOnHeadersStopIteration: true }], bufferLimitBytes: RENDERED_STREAM_BUFFER_LIMIT });
      const s = send(h, path, { ...CHAT, max_tokens: 10 });
      s.callOnResponseHeaders({ ":status": "200", "content-type": "application/json" }, false);
      s.callOnResponseBody(bigAnswer(10 * 1024 * 1024 - 1024), true);
      s.completeHttpContext();
      expect(header(s.downstream.headers, ":status")).toBe("200");
      expect(h.memoryPages("ai-proxy")).toBeLessThanOrEqual(path === "/v1/messages" ? 1024 : 512);
      h.close();
    }
  });
});
