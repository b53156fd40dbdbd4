// Linear memory under concurrent streams. A wasm VM's memory never shrinks, and Envoy runs one VM
// per worker thread, so the high-water mark is what a deployment pays. With AssemblyScript's
// minimal runtime nothing is freed until the SDK patch collects (patches/, `collectIfDue`): it
// must collect often enough that many concurrent streams of small events (each parsed into a
// tree) do not pile up megabytes of garbage. Counting finished streams alone let 16 concurrent
// OpenAI streams take ai-proxy to 128 pages (8 MiB) here; collecting by body bytes read keeps it
// at 16-32.
import { describe, it, expect } from "vitest";
import { Host } from "../../host/index.js";

const CONFIG = { instances: [{ name: "oa", provider: "openai", api_key: "sk-test", models: ["gpt-*"] }] };
const HEADERS = { ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw", "content-type": "application/json" };

function openaiStream(words: number): Buffer {
  const base = { id: "chatcmpl-1", object: "chat.completion.chunk", created: 1, model: "gpt-4o", system_fingerprint: "fp_1" };
  const chunk = (o: object) => `data: ${JSON.stringify(o)}\n\n`;
  let sse = chunk({ ...base, choices: [{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }] });
  for (let i = 0; i < words; i++) sse += chunk({ ...base, choices: [{ index: 0, delta: { content: `word${i} ` }, logprobs: null, finish_reason: null }] });
  sse += chunk({ ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }] });
  sse += chunk({ ...base, choices: [], usage: { prompt_tokens: 10, completion_tokens: words, total_tokens: 10 + words } });
  return Buffer.from(sse + "data: [DONE]\n\n");
}

describe("ai-proxy linear memory", () => {
  it("stays small under concurrent streams, and stops growing", async () => {
    const h = await Host.create({ filters: [{ name: "ai-proxy", wasm: "build/ai-proxy.wasm", configuration: CONFIG, allowOnHeadersStopIteration: true }] });
    const request = JSON.stringify({ model: "gpt-4o", stream: true, messages: [{ role: "user", content: "x".repeat(2000) }] });
    const answer = openaiStream(44);
    const pagesAfter: number[] = [];
    for (let round = 0; round < 30; round++) {
      // 16 streams open at once, their answers arriving interleaved.
      const streams = Array.from({ length: 16 }, () => {
        const s = h.newStream();
        s.callOnRequestHeaders(HEADERS, false);
        s.callOnRequestBody(request, true);
        s.callOnResponseHeaders({ ":status": "200", "content-type": "text/event-stream" }, false);
        return s;
      });
      for (const s of streams) s.callOnResponseBody(answer, true);
      for (const s of streams) {
        expect(s.downstream.body.toString()).toContain("word43 ");
        s.completeHttpContext();
      }
      pagesAfter.push(h.memoryPages("ai-proxy"));
    }
    const peak = Math.max(...pagesAfter);
    expect(peak).toBeLessThanOrEqual(32); // 2 MiB
    // No growth once warm: the last two thirds of the rounds end where the first third did.
    expect(Math.max(...pagesAfter.slice(10))).toBe(Math.max(...pagesAfter.slice(0, 10)));
  });
});
