// A provider that streams one event that never ends (issue 13, "every buffer has a bound"). A
// stream passes on chunk by chunk, but ai-proxy reads an event only once its blank line arrives,
// so it holds the unfinished event meanwhile; before max_stream_event_bytes that hold had no
// bound and a VM's memory never shrinks. Now past the bound (8 MiB by default) the client's stream
// ends with its format's error ending (502 upstream_event_too_large), the provider is stopped
// (the stream is reset at its next chunk) and the usage record is written.
import { describe, it, expect } from "vitest";
import { proxyHost, send, sseEvents, usageRecord } from "./helpers.js";

const CONFIG = {
  instances: [
    { name: "oa", provider: "openai", api_key: "sk-provider-oa", models: ["gpt-*"] },
    { name: "claude", provider: "anthropic", api_key: "sk-ant-provider", models: ["claude-*"] },
  ],
};

const MIB = 1024 * 1024;
const CHUNK = 256 * 1024;
// 32 MiB of one event offered in 256 KiB chunks: four times the bound.
const CHUNKS = 128;
// The bound (8 MiB of event held), the buffers it outgrew on the way (4 + 2 + 1 ... MiB, freed but
// not yet reused), the chunks read, the filter's own memory, within the allocator's growth step:
// measured at 512 pages (32 MiB); 640 pages is 40 MiB. Before, the filter held the whole event and
// doubled its buffer as it grew: 24 MiB of one event took it to 1,034 pages, and more without end.
const PAGES = 640;

const oaChunk = (content: string) => `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", created: 1, model: "gpt-4o", choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
const anEvent = (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;

/** The provider's start, a first piece of text, then the head of an event that never ends. */
const START = {
  openai: oaChunk("Hello there") + `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"`,
  anthropic: anEvent("message_start", { message: { id: "msg_1", type: "message", role: "assistant", model: "claude-x", content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 12, output_tokens: 1 } } })
    + anEvent("content_block_start", { index: 0, content_block: { type: "text", text: "" } })
    + anEvent("content_block_delta", { index: 0, delta: { type: "text_delta", text: "Hello there" } })
    + `event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"`,
};

const CLIENTS = {
  openai: { path: "/v1/chat/completions", model: { openai: "gpt-4o", anthropic: "claude-x" } },
  anthropic: { path: "/v1/messages", model: { openai: "gpt-4o", anthropic: "claude-x" } },
} as const;

/** The client's stream: the text it was given and the error event that ended it. */
function readClient(format: "openai" | "anthropic", body: string) {
  const events = sseEvents(body);
  let text = "";
  let error: any = null;
  for (const e of events) {
    let d: any;
    try {
      d = JSON.parse(e.data);
    } catch {
      continue; // the unfinished event a native stream passed on as it came, or [DONE]
    }
    if (format === "openai") {
      if (d.error) error = d.error;
      else text += d.choices?.[0]?.delta?.content ?? "";
    } else if (e.event === "error") error = d.error;
    else if (d.type === "content_block_delta") text += d.delta.text ?? "";
  }
  return { text, error, last: events.at(-1) };
}

describe("ai-proxy: a stream event that never ends", () => {
  for (const provider of ["openai", "anthropic"] as const) {
    for (const client of ["openai", "anthropic"] as const) {
      it(`${provider} provider, ${client} client: the stream ends with a 502 upstream_event_too_large, the provider is stopped, usage recorded, pages bounded`, async () => {
        const h = await proxyHost(CONFIG);
        const s = send(h, CLIENTS[client].path, { model: CLIENTS[client].model[provider], max_tokens: 1000, stream: true, messages: [{ role: "user", content: "go" }] });
        s.callOnResponseHeaders({ ":status": "200", "content-type": "text/event-stream" }, false);
        s.callOnResponseBody(START[provider], false);
        const filler = Buffer.alloc(CHUNK, 0x61); // "aaaa...": more of the unfinished text, no line break
        let fed = 0;
        while (fed < CHUNKS && !s.reset) {
          s.callOnResponseBody(filler, false);
          fed++;
        }
        // Stopped at the chunk after the one that crossed 8 MiB (the ending goes out first).
        expect(s.reset).toBe("wasm_close_stream");
        expect(fed).toBeLessThanOrEqual((8 * MIB) / CHUNK + 2);
        const pages = h.memoryPages("ai-proxy");
        console.log(`${provider} -> ${client}: ai-proxy at ${pages} pages after ${fed * CHUNK / MIB} MiB of one event`);
        expect(pages).toBeLessThanOrEqual(PAGES);
        s.completeHttpContext();

        const out = readClient(client, s.downstream.body.toString());
        expect(out.text).toBe("Hello there");
        if (client === "openai") {
          expect(out.error).toMatchObject({ type: "api_error", code: "upstream_event_too_large" });
          expect(out.last?.data).toBe("[DONE]");
        } else {
          expect(out.error).toMatchObject({ type: "api_error" });
          expect(out.last?.event).toBe("error");
        }
        expect(out.error.message).toBe("The provider sent a stream event larger than 8388608 bytes.");
        expect(s.getFilterState("sluice.stream_cut")).toBe("event_too_large");
        // Charged as an estimate: what was delivered and the dropped event, within max_tokens.
        const rec = usageRecord(s);
        expect(rec.source).toBe("estimate");
        expect(Number(rec.completion)).toBeGreaterThanOrEqual(3);
        expect(Number(rec.completion)).toBeLessThanOrEqual(1000);
        if (provider === "anthropic") expect(rec.prompt).toBe("12"); // the provider said so in message_start

        // The next stream is served.
        const next = send(h, CLIENTS[client].path, { model: CLIENTS[client].model[provider], max_tokens: 10, stream: true, messages: [{ role: "user", content: "again" }] });
        next.callOnResponseHeaders({ ":status": "200", "content-type": "text/event-stream" }, false);
        next.callOnResponseBody(START[provider] + (provider === "openai" ? 'bye"},"finish_reason":null}]}\n\n' : 'bye"}}\n\n'), false);
        expect(next.reset).toBeNull();
        next.completeHttpContext();
        expect(h.memoryPages("ai-proxy")).toBe(pages);
        h.close();
      });
    }
  }

  it("a large event under the bound passes whole (a Gemini-size chunk of 3 MiB of text across 12 chunks)", async () => {
    const h = await proxyHost(CONFIG);
    const s = send(h, "/v1/messages", { model: "gpt-4o", max_tokens: 1000000, stream: true, messages: [{ role: "user", content: "go" }] });
    s.callOnResponseHeaders({ ":status": "200", "content-type": "text/event-stream" }, false);
    const big = "b".repeat(3 * MIB);
    const stream = oaChunk(big) + `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", created: 1, model: "gpt-4o", choices: [{ index: 0, delta: {}, finish_reason: "stop" }] })}\n\ndata: [DONE]\n\n`;
    const parts = stream.match(/[\s\S]{1,262144}/g)!;
    parts.forEach((p, i) => s.callOnResponseBody(p, i === parts.length - 1));
    expect(s.reset).toBeNull();
    s.completeHttpContext();
    const out = readClient("anthropic", s.downstream.body.toString());
    expect(out.error).toBeNull();
    expect(out.text).toBe(big);
    expect(s.getFilterState("sluice.stream_cut")).toBeFalsy();
    h.close();
  });

  it("max_stream_event_bytes is settable", async () => {
    const h = await proxyHost({ ...CONFIG, max_stream_event_bytes: 65536 });
    const s = send(h, "/v1/chat/completions", { model: "gpt-4o", stream: true, messages: [{ role: "user", content: "go" }] });
    s.callOnResponseHeaders({ ":status": "200", "content-type": "text/event-stream" }, false);
    s.callOnResponseBody(oaChunk("x".repeat(60000)), false); // under the bound: passes
    s.callOnResponseBody(START.openai + "a".repeat(70000), false); // past it
    s.callOnResponseBody("more", false);
    expect(s.reset).toBe("wasm_close_stream");
    s.completeHttpContext();
    const out = readClient("openai", s.downstream.body.toString());
    expect(out.text).toBe("x".repeat(60000) + "Hello there");
    expect(out.error.message).toBe("The provider sent a stream event larger than 65536 bytes.");
    h.close();
  });
});
