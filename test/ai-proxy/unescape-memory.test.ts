// A long escaped string costs ai-proxy its decoded size once, not three times (issue 13, "memory
// that is never given back"). Translating an OpenAI request for Anthropic decodes the system prompt
// (escapes such as \n become text). The JSON reader decoded into a scratch buffer it kept for good,
// twice the size of the largest string it ever decoded, and then copied the scratch into the
// string: a 4 MB escaped prompt took ai-proxy to 864 pages. Now a string over 64 KiB is decoded
// straight into the string (its length counted first), and only a small scratch is kept: 432.
import { describe, it, expect } from "vitest";
import { proxyHost, send, upstreamJson } from "./helpers.js";

const CONFIG = { instances: [{ name: "cl", provider: "anthropic", api_key: "k", models: ["claude-*"] }] };
const MIB = 1024 * 1024;

describe("ai-proxy: memory for a long escaped string", () => {
  it("a 4 MB escaped system prompt translated for Anthropic: pages stay near the text's own cost, and the text arrives intact", async () => {
    const h = await proxyHost(CONFIG);
    // Escapes, non-ASCII (two and three bytes) and a code point past U+FFFF (a surrogate pair).
    const line = 'ab\ncd\t"q" – ü 😀\n';
    const system = line.repeat(Math.floor((4 * MIB) / line.length));
    const s = send(h, "/v1/chat/completions", { model: "claude-x", max_tokens: 10, messages: [{ role: "system", content: system }, { role: "user", content: "hi" }] });
    expect(s.getSentLocalResponse()).toBeFalsy();
    const up = upstreamJson(s);
    expect(up.system === system || up.system?.[0]?.text === system).toBe(true);
    s.completeHttpContext();
    const pages = h.memoryPages("ai-proxy");
    console.log(`4 MB escaped system prompt: ai-proxy at ${pages} pages`);
    // Measured 432 (the body, the decoded text, the translated body, within the allocator's growth
    // step); 864 with the kept scratch.
    expect(pages).toBeLessThanOrEqual(480);
    h.close();
  });

  it("short and long escaped strings decode alike (the scratch path and the direct path)", async () => {
    const h = await proxyHost(CONFIG);
    for (const n of [1, 100, 20_000, 40_000, 200_000]) {
      const system = "x\\y\n\"é€😀\u0001".repeat(n).slice(0, n * 3);
      const s = send(h, "/v1/chat/completions", { model: "claude-x", max_tokens: 10, messages: [{ role: "system", content: system }, { role: "user", content: "hi" }] });
      const up = upstreamJson(s);
      expect(up.system === system || up.system?.[0]?.text === system, `${n}`).toBe(true);
      s.completeHttpContext();
    }
    h.close();
  });
});
