// ai-cache's bounds under a fill: thousands of distinct answers keep shared data within
// max_entries slots of at most max_entry_bytes (plus a fixed header) and the VM's memory flat;
// hostile request bodies never trap and are sent on.
import { describe, it, expect } from "vitest";
import { cacheChain, ask, reply, got, isHit, openaiAnswer } from "./helpers.js";

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
