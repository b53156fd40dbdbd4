// A body 10x over the cap, in many chunks, through the whole chain (key-auth, ai-router,
// ai-ratelimit, ai-proxy): the first filter that buffers it answers 413 at the chunk that crosses
// its cap, no filter's linear memory grows, and another client is served meanwhile.
import { describe, it, expect } from "vitest";
import { Host } from "../host/index.js";

const CAP = 64 * 1024;

describe("a body 10x over the cap through the chain", () => {
  it("413 at once from ai-ratelimit, every filter's pages unchanged, a second client served meanwhile", async () => {
    const h = await Host.create({
      filters: [
        { name: "key-auth", wasm: "build/key-auth.wasm", configuration: { consumers: [{ name: "alice", keys: ["sk-alice"] }] } },
        { name: "ai-router", wasm: "build/ai-router.wasm", configuration: { default_pool: "p", annotate: true, max_body_bytes: CAP, rules: [] }, allowOnHeadersStopIteration: true },
        { name: "ai-ratelimit", wasm: "build/ai-ratelimit.wasm", configuration: { rules: [{ name: "c", key: ["consumer"], limit: 1_000_000_000, window: "1m" }], max_body_bytes: CAP }, allowOnHeadersStopIteration: true },
        {
          name: "ai-proxy", wasm: "build/ai-proxy.wasm", allowOnHeadersStopIteration: true,
          configuration: { instances: [{ name: "oa", provider: "openai", api_key: "sk-up", models: ["gpt-*"] }], pools: [{ name: "p", instances: ["oa"] }], max_request_body_bytes: CAP },
        },
      ],
    });
    const names = ["key-auth", "ai-router", "ai-ratelimit", "ai-proxy"];
    const headers = { ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw", "content-type": "application/json", authorization: "Bearer sk-alice" };
    const small = JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hello" }] });
    const served = () => {
      const s = h.newStream();
      s.callOnRequestHeaders(headers, false);
      s.callOnRequestBody(small, true);
      const ok = s.upstream.headers !== null && s.getSentLocalResponse() === null;
      s.completeHttpContext();
      return ok;
    };
    // Warm: past the first collections (every 64 streams), each VM is at its steady size.
    for (let i = 0; i < 200; i++) expect(served()).toBe(true);
    const before = names.map((n) => h.memoryPages(n));

    const big = h.newStream();
    big.callOnRequestHeaders(headers, false);
    const chunk = Buffer.alloc(4096, 0x20);
    let refusedAt = -1;
    let others = 0;
    for (let i = 0; i < (10 * CAP) / chunk.length; i++) {
      big.callOnRequestBody(chunk, false);
      if (refusedAt < 0 && big.getSentLocalResponse()) refusedAt = i + 1;
      if (i % 16 === 0 && served()) others++;
    }
    big.callOnRequestBody(Buffer.alloc(0), true);
    expect(refusedAt).toBe(CAP / chunk.length + 1);
    const r = big.getSentLocalResponse()!;
    expect(r.statusCode).toBe(413);
    expect(r.statusDetails).toBe("sluice_ai_ratelimit_request_too_large");
    expect(JSON.parse(r.body.toString()).error.code).toBe("request_too_large");
    expect(big.upstream.headers).toBeNull();
    big.completeHttpContext();
    expect(others).toBe(10);
    expect(names.map((n) => h.memoryPages(n))).toEqual(before);
    h.close();
  });
});
