// ai-cache's bounds under a fill: thousands of distinct answers keep shared data within
// max_entries slots of at most max_entry_bytes (plus a fixed header) and the VM's memory flat;
// hostile request bodies never trap and are sent on.
import { describe, it, expect } from "vitest";
import { cacheChain, ask, reply, got, isHit, openaiAnswer, openaiStream } from "./helpers.js";

const CHAT = "/v1/chat/completions";

describe("ai-cache: bounds", () => {
  it("holds at most max_entries answers in shared data whatever is stored, and its memory stays flat", async () => {
    const maxEntries = 64;
    const maxEntryBytes = 4096;
    const h = await cacheChain({ max_entries: maxEntries, max_entry_bytes: maxEntryBytes });
    const fill = async (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const s = await ask(h, CHAT, { model: "gpt-4o", messages: [{ role: "user", content: `question ${i}` }] });
        reply(s, "application/json", [openaiAnswer(`answer ${i} `.padEnd(3000, "x"))]);
      }
    };
    await fill(0, 300);
    const pages = h.memoryPages("ai-cache");
    await fill(300, 2000);
    expect(h.memoryPages("ai-cache")).toBe(pages);
    const sets = maxEntries / 8;
    const { keys, bytes } = h.sharedDataSize();
    expect(keys).toBeLessThanOrEqual(sets * 9);
    expect(bytes).toBeLessThanOrEqual(maxEntries * (maxEntryBytes + 64) + sets * 8 * 32);
    expect(h.getMetric("sluice.cache_evictions")?.value).toBeGreaterThan(1800n);
    // The most recent answers are still there.
    expect(isHit(await ask(h, CHAT, { model: "gpt-4o", messages: [{ role: "user", content: "question 1999" }] }))).toBe(true);
  });

  it("captures a streamed answer of 4,000 pieces with ai-proxy's memory flat (the pieces joined in one pass)", async () => {
    // Array<string>#join is a loop of string concatenations when the modules are built with a
    // shrinkLevel above 0: 4,000 pieces made ~50 MB of garbage inside one callback, and linear
    // memory, which never shrinks, grew to hold it.
    const h = await cacheChain();
    const pieces = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag}${i % 10} `);
    const stream = async (n: number, tag: string) => {
      const s = await ask(h, CHAT, { model: "gpt-4o", stream: true, messages: [{ role: "user", content: `tell me ${tag}` }] });
      reply(s, "text/event-stream", openaiStream(pieces(n, tag)));
    };
    await stream(4000, "x");
    const pages = h.memoryPages("ai-proxy");
    await stream(8000, "y");
    // Measured: 24 pages after either stream; built with shrinkLevel 2, 768 and then 3,072 (192 MiB).
    expect(h.memoryPages("ai-proxy")).toBe(pages);
    expect(pages).toBeLessThanOrEqual(32);
    // The answer was captured whole: asked again, it comes from the cache.
    const again = await ask(h, CHAT, { model: "gpt-4o", messages: [{ role: "user", content: "tell me y" }] });
    expect(isHit(again)).toBe(true);
    expect(JSON.parse(got(again).body).choices[0].message.content).toBe(pieces(8000, "y").join(""));
  });

  it("evicts the least recently used answer of a set first", async () => {
    // One set of eight ways: every key shares it.
    const h = await cacheChain({ max_entries: 8 });
    const q = (i: number) => ({ model: "gpt-4o", messages: [{ role: "user", content: `q${i}` }] });
    for (let i = 0; i < 8; i++) reply(await ask(h, CHAT, q(i)), "application/json", [openaiAnswer(`a${i}`)]);
    // q0 is used (a hit moves its last use forward at most once a second: wait that long).
    await new Promise((r) => setTimeout(r, 1100));
    expect(isHit(await ask(h, CHAT, q(0)))).toBe(true);
    reply(await ask(h, CHAT, q(8)), "application/json", [openaiAnswer("a8")]);
    expect(isHit(await ask(h, CHAT, q(0)))).toBe(true);
    expect(isHit(await ask(h, CHAT, q(1)))).toBe(false);
  });

  it("never traps on hostile bodies: each is sent on to ai-proxy, which answers in the client's shape", async () => {
    const h = await cacheChain();
    const bodies = [
      "", "{", "[]", "null", '{"messages":5}', '{"model":"gpt-4o","messages":[' + "[".repeat(5000) + "]".repeat(5000) + "]}",
      '{"model":"gpt-4o","messages":[{"role":"user","content":"\\ud800"}]}', '{"model":"gpt-4o","stream":"yes","messages":[]}',
      JSON.stringify({ model: "gpt-4o", n: 3, messages: [{ role: "user", content: "hi" }] }),
    ];
    for (const b of bodies) {
      const s = h.newStream();
      s.filterState.set("wasm.sluice.consumer", Buffer.from("alice"));
      s.callOnRequestHeaders({ ":method": "POST", ":path": CHAT, ":authority": "gw", "content-type": "application/json" }, false);
      s.callOnRequestBody(b, true);
      await h.settle();
      const r = got(s);
      // ai-proxy refused it (400) or sent it on; ai-cache never answered it and never trapped.
      expect(s.getSentLocalResponse()?.headers.some(([k]) => k === "x-sluice-cache") ?? false).toBe(false);
      expect(r.status === 0 || r.status === 400).toBe(true);
    }
    expect(h.getLogs("critical")).toEqual([]);
  });
});
