// ai-guard's answer side keeps bounded memory per stream: a long streamed answer is never held
// whole (only each output text's hold-back window), and many streamed answers one after another
// leave the VM's linear memory (which never shrinks) where it was.
import { describe, it, expect } from "vitest";
import { guard } from "./ai-guard-helpers.js";
import { exchange, chatSse, messagesSse, streamedText } from "./ai-guard-answer-helpers.js";

const CONFIG = { detectors: { email: { request: "mask_and_restore", response: "mask" }, card: { response: "block" }, ip: { response: "mask" } } };

/** Deltas of ~100 characters, one address and one echoed placeholder in every tenth. */
function deltas(n: number): string[] {
  return Array.from({ length: n }, (_, i) => (i % 10 === 0 ? `line ${i} to <EMAIL_1> and x${i}@mail.example; ` : `line ${i} of the answer, with nothing to find in it at all, just words. `).padEnd(100, "."));
}

describe("ai-guard answers: memory", () => {
  it("memory does not grow with a streamed answer's length (1 MB, then 4 MB with 4,000 different addresses)", async () => {
    const h = await guard(CONFIG);
    const stream = (n: number) => {
      const body = chatSse(deltas(n));
      const cuts = Array.from({ length: 2000 }, (_, i) => Math.floor((body.length * (i + 1)) / 2001));
      return exchange(h, "chat", "to jane@corp.example", body, cuts);
    };
    stream(10_000);
    const start = h.memoryPages("ai-guard");
    const r = stream(40_000);
    const text = streamedText("chat", r.body);
    expect(text.length).toBeGreaterThan(3_900_000);
    expect(text).not.toContain("<EMAIL_1>");
    expect(text).toContain("jane@corp.example");
    expect(text).not.toContain("@mail.example");
    // Held: each output text's window; kept: at most 1,024 remembered values. The 4 MB answer
    // (64 pages) is never held.
    expect(h.memoryPages("ai-guard") - start).toBeLessThanOrEqual(2);
    h.close();
  }, 60_000);

  it("500 streamed answers one after another leave linear memory flat", async () => {
    const h = await guard(CONFIG);
    const body = messagesSse(deltas(50));
    for (let i = 0; i < 50; i++) exchange(h, "messages", "to jane@corp.example", body, [999, 2500]).s.completeHttpContext();
    const start = h.memoryPages("ai-guard");
    for (let i = 0; i < 450; i++) {
      const r = exchange(h, "messages", "to jane@corp.example", body, [999, 2500]);
      if (i % 100 === 0) expect(streamedText("messages", r.body)).toContain("jane@corp.example");
      r.s.completeHttpContext();
    }
    expect(h.memoryPages("ai-guard")).toBe(start);
    h.close();
  }, 60_000);
});
