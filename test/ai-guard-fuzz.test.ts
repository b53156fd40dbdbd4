// ai-guard under hostile input, through build/ai-guard.wasm: any body, any text, any client API,
// never a trap (a trap fails the VM); a masked body is always valid JSON with only the found values
// replaced; memory stays bounded over many large requests; custom patterns' spans agree with
// JavaScript's RegExp (leftmost-first, as RE2 and Envoy's safe_regex).
// Deterministic: fast-check with a fixed seed (SLUICE_FC_SEED overrides it).
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import fc from "fast-check";
import type { Host } from "../host/index.js";
import { guard, send, chat, ALL } from "./ai-guard-helpers.js";

const SEED = Number(process.env.SLUICE_FC_SEED ?? 424242);
const FC = (n: number) => ({ seed: SEED, numRuns: n });
const PATHS = ["/v1/chat/completions", "/v1/messages", "/v1/responses", "/v1/embeddings", "/v1beta/models/g:generateContent", "/v1beta/models/g:batchEmbedContents"];

// Text made of the pieces detectors look for, glued at random: digits, separators, '@', hex, keys.
const piece = fc.constantFrom(
  "4111", " ", "-", ".", ":", "::", "@", "a", "x.io", "+", "(", ")", "0", "00", "1", "9", "DE89", "GB82", "sk-", "AKIA", "ghp_", "eyJ",
  "-----BEGIN ", "PRIVATE KEY-----", "-----END ", "é", "👋", "\n", "\"", "\\", "\u0000", "\ud800", "ffff", "255.", "999",
);
const text = fc.oneof(fc.string({ maxLength: 200 }), fc.array(piece, { maxLength: 120 }).map((a) => a.join("")));

describe("ai-guard: never traps", () => {
  let h: Host;
  beforeAll(async () => {
    h = await guard({
      detectors: ALL("mask"),
      custom: [{ name: "nested", regex: "(a|ab)(c|bcd)(d*)", action: "mask" }],
      keywords: [{ name: "k", words: ["a", "x.io", "é"], action: "log" }],
    });
  });
  afterAll(() => h.close());

  it("masks any text of a chat request into valid JSON with the same text outside the placeholders", () => {
    fc.assert(
      fc.property(text, (t) => {
        const r = send(h, "/v1/chat/completions", chat(t));
        expect(r.reply).toBeNull();
        const out = r.upstream().messages[0].content as string;
        // What is left once placeholders are taken out is a subsequence of the original text.
        const rest = out.split(/<[A-Z_]+_\d+>/);
        let at = 0;
        for (const part of rest) {
          const i = t.indexOf(part, at);
          expect(i).toBeGreaterThanOrEqual(0);
          at = i + part.length;
        }
      }),
      FC(400),
    );
  });

  it("answers any body on any path with a pass, or a 4xx JSON error, never a trap", () => {
    const json = fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.stringify(v));
    const body = fc.oneof(json, fc.string({ maxLength: 300 }), text.map((t) => JSON.stringify({ messages: [{ role: "user", content: t }], input: t, contents: [{ parts: [{ text: t }] }] })));
    fc.assert(
      fc.property(fc.constantFrom(...PATHS), body, (path, b) => {
        const r = send(h, path, b);
        if (r.reply) {
          expect(r.reply.statusCode).toBeGreaterThanOrEqual(400);
          expect(r.reply.statusCode).toBeLessThan(500);
          expect(() => JSON.parse(r.reply!.body.toString())).not.toThrow();
        } else {
          expect(() => JSON.parse(r.s.upstream.body.toString())).not.toThrow();
        }
      }),
      FC(400),
    );
    expect(h.getLogs("critical")).toEqual([]);
  });

  it("survives invalid UTF-8, truncated JSON at every byte and deep nesting", () => {
    const full = JSON.stringify(chat("mail a@x.io card 4111 1111 1111 1111 ✓"));
    for (let i = 0; i < full.length; i++) send(h, "/v1/chat/completions", full.slice(0, i));
    send(h, "/v1/chat/completions", Buffer.from([0x7b, 0x22, 0x6d, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]));
    const deep = "[".repeat(10000) + "]".repeat(10000);
    expect(send(h, "/v1/chat/completions", `{"messages":${deep}}`).reply?.statusCode).toBe(400);
    // Still answering.
    expect(send(h, "/v1/chat/completions", chat("a@x.io")).upstream().messages[0].content).toBe("<EMAIL_1>");
  });
});

describe("ai-guard: bounded memory and work", () => {
  it("memory stays flat over many large prompts full of findings", async () => {
    const h = await guard({ detectors: ALL("mask"), keywords: [{ name: "k", words: ["alpha", "beta"], action: "mask" }] });
    const big = Array.from({ length: 4000 }, (_, i) => `u${i}@x.io 4111 1111 1111 1111 10.0.${i % 250}.1 alpha`).join(" ");
    send(h, "/v1/chat/completions", chat(big));
    const pages = h.memoryPages("ai-guard");
    for (let i = 0; i < 20; i++) {
      const r = send(h, "/v1/chat/completions", chat(big));
      expect(r.upstream().messages[0].content).toContain("<EMAIL_4000>");
    }
    expect(h.memoryPages("ai-guard")).toBe(pages);
    h.close();
  });

  it("long runs of one character (200,000 of each detector's trigger characters) are answered, never a trap", async () => {
    const h = await guard({ detectors: ALL("block") });
    for (const c of ["1", "a", "@", ".", ":", "-", "f", "+", "s", "e"]) {
      const r = send(h, "/v1/chat/completions", chat(c.repeat(200000)));
      expect(["allow", "block"]).toContain(r.verdict);
      if (r.reply) expect(r.reply.statusCode).toBe(400);
    }
    expect(h.getLogs("critical")).toEqual([]);
    h.close();
  });
});

describe("ai-guard: custom patterns mask what JavaScript's RegExp finds (leftmost-first, non-overlapping)", () => {
  const patterns = ["a+b", "(a|ab)(c|bcd)(d*)", "b(a|aa)*c?", "[ab]{2,3}", "(?i)AB+", "a|b|ab", "\\bab\\b", "c.?d", "(ab)+|b"];
  let hosts: Host[] = [];
  beforeAll(async () => {
    hosts = await Promise.all(patterns.map((p) => guard({ custom: [{ name: "p", regex: p, action: "mask" }] })));
  });
  afterAll(() => hosts.forEach((h) => h.close()));

  it("for every pattern and random texts over a small alphabet", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: patterns.length - 1 }), fc.stringMatching(/^[abcd ]{0,40}$/), (k, t) => {
        const src = patterns[k].replace("(?i)", "");
        const re = new RegExp(src, patterns[k].startsWith("(?i)") ? "gi" : "g");
        const seen = new Map<string, string>();
        const want = t.replace(re, (m) => {
          if (!seen.has(m)) seen.set(m, `<P_${seen.size + 1}>`);
          return seen.get(m)!;
        });
        expect(send(hosts[k], "/v1/chat/completions", chat(t)).upstream().messages[0].content).toBe(want);
      }),
      FC(600),
    );
  });
});
