// ai-router's linear memory under 256 KB prompts (issue 13: they left it at 256 pages). Wasm memory
// never shrinks, so what one request needs at once is what every worker keeps. The prompt is read
// where it lies in the body: keywords, regular expressions and the classifier's window are read
// from the body's bytes (or the decoded text of a part that needs decoding), never from lowered,
// joined or decoded copies of the whole prompt, and a decided request lets go of its body at once.
import { describe, it, expect } from "vitest";
import { Host } from "../host/index.js";

const HEADERS = { ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw", "content-type": "application/json" };

// Every kind of rule that reads the prompt, over the last user message and over the conversation.
const CONFIG = {
  default_pool: "general",
  annotate: true,
  rules: [
    { name: "pii", pool: "private", when: { regex: ["\\b\\d{3}-\\d{2}-\\d{4}\\b", "(?i)\\b(passport|social security) number\\b"], in: "conversation" } },
    { name: "incident", pool: "oncall", when: { keywords: ["sev1", "outage", "pager"], regex: "(?i)\\bprod(uction)?\\b" } },
    { name: "legal", pool: "legal", when: { all: [{ keywords: ["indemnify", "liability"], in: "conversation" }, { task: ["extract", "summarize"] }] } },
    { name: "hard-code", pool: "capable", when: { task: "code", complexity: { gt: 0.45 }, in: "conversation" } },
    { name: "long", pool: "long", when: { tokens: { gt: 30000 } } },
  ],
};

const KB = 1024;

/** A 256 KB user message: an instruction, then a document, then `tail` at its very end. */
function prompt(line: string, tail: string) {
  let doc = "";
  while (doc.length < 256 * KB) doc += line;
  return "Summarize the following incident report for the leadership team:\n\n" + doc + tail;
}

function route(h: Host, body: object) {
  const s = h.newStream();
  s.callOnRequestHeaders(HEADERS, false);
  s.callOnRequestBody(JSON.stringify(body), true);
  const r = { rule: s.getFilterState("sluice.route_rule"), task: s.getFilterState("sluice.task_type") };
  s.completeHttpContext();
  return r;
}

const cases = [
  // Plain ASCII: the body's bytes are the text.
  ["ASCII", "The quarterly report shows revenue growth in every region, led by Europe. "],
  // Escapes (\n, \") and non-ASCII characters: the text differs from the bytes.
  ["escaped and non-ASCII", "Der \"Umsatz\" stieg in jeder Region – geführt von Europa.\n"],
] as const;

describe("ai-router: linear memory under 256 KB prompts", () => {
  for (const [name, line] of cases) {
    it(`${name}: rules over the whole prompt are still decided right, and memory stays at the body's size`, async () => {
      const h = await Host.create({ filters: [{ name: "ai-router", wasm: "build/ai-router.wasm", configuration: CONFIG, allowOnHeadersStopIteration: true }] });
      const start = h.memoryPages("ai-router");
      const system = { role: "system", content: "You are careful." };
      const results = [];
      for (let i = 0; i < 4; i++) {
        // Matches only at the end of the conversation, past 256 KB of text.
        results.push(route(h, { model: "m", messages: [system, { role: "user", content: prompt(line, "\n\nCustomer SSN 123-45-6789.") }] }).rule);
        // A keyword and a case-insensitive regex at the very end of the last user message.
        results.push(route(h, { model: "m", messages: [system, { role: "user", content: prompt(line, "\n\nThis is a SEV1 in PRODUCTION") }] }).rule);
        // A keyword in the system prompt, read over the conversation, with the classifier's task.
        results.push(route(h, { model: "m", messages: [{ role: "system", content: "Flag any Liability." }, { role: "user", content: prompt(line, "") }] }));
      }
      for (let i = 0; i < 4; i++) {
        expect(results[3 * i]).toBe("pii");
        expect(results[3 * i + 1]).toBe("incident");
        expect(results[3 * i + 2]).toEqual({ rule: "legal", task: "summarize" });
      }
      // The body (~256-400 KB, held by the host's allocation in the VM) and the filter's own ~0.5 MiB:
      // 1 MiB. Before, each of these copied the prompt several times over: 128 pages (8 MiB).
      expect(start).toBeLessThanOrEqual(8);
      expect(h.memoryPages("ai-router")).toBeLessThanOrEqual(16);
      h.close();
    });
  }
});

describe("ai-router: concurrent streams with 256 KB prompts", () => {
  it("16 streams decided but not finished hold no prompt: linear memory stays at one body's size", async () => {
    const h = await Host.create({ filters: [{ name: "ai-router", wasm: "build/ai-router.wasm", configuration: CONFIG, allowOnHeadersStopIteration: true }] });
    const body = JSON.stringify({ model: "m", messages: [{ role: "system", content: "You are careful." }, { role: "user", content: prompt(cases[1][1], "\n\nThis is a SEV1 in PRODUCTION") }] });
    for (let round = 0; round < 3; round++) {
      const streams = Array.from({ length: 16 }, () => {
        const s = h.newStream();
        s.callOnRequestHeaders(HEADERS, false);
        return s;
      });
      // The bodies arrive interleaved; each stream is routed when its body ends, and lives on (its
      // answer still to come) while the others are routed.
      for (const s of streams) s.callOnRequestBody(body.slice(0, 100_000), false);
      for (const s of streams) s.callOnRequestBody(body.slice(100_000), true);
      for (const s of streams) expect(s.getFilterState("sluice.route_rule")).toBe("incident");
      for (const s of streams) s.completeHttpContext();
    }
    // Before, each stream kept its decoded, lowered and joined copies until it ended: 512 pages.
    expect(h.memoryPages("ai-router")).toBeLessThanOrEqual(16);
    h.close();
  });
});

// The prompt's texts are read by one of three readers (text.ts): ASCII bytes in place, a decoded
// string (parts that fit the per-request decode budget), or raw bytes decoded as they are read.
// Whichever reads it, every rule must see the same text.
describe("ai-router: a text reads the same whichever way it is read", () => {
  it("decoded once or decoded as read (across windows): the same rule, task and complexity", async () => {
    const fc = (await import("fast-check")).default;
    const lastUserRules = [
      { name: "kw", pool: "p", when: { keywords: ["größe", "sql", "c++", "a\nb", "ΣΑΣ", "😀x", "\"q\"", "Ünï"] } },
      { name: "re-i", pool: "p", when: { regex: "(?i)\\bgrö(ß|ss)e\\b" } },
      { name: "re-nl", pool: "p", when: { regex: "\\d{2}\\n\\d" } },
      { name: "re-astral", pool: "p", when: { regex: "😀[^a]" } },
      { name: "re-end", pool: "p", when: { regex: "(?i)σας$" } },
      { name: "re-quote", pool: "p", when: { regex: "\"q\\\\" } },
    ];
    const hosts = await Promise.all(lastUserRules.map((rule) => Host.create({
      filters: [{ name: "ai-router", wasm: "build/ai-router.wasm", allowOnHeadersStopIteration: true, configuration: { default_pool: "d", annotate: true, rules: [rule] } }],
    })));
    const alphabet = fc.constantFrom("a", "b", " ", "\n", "ü", "Ü", "g", "r", "ö", "ß", "e", "s", "q", "l", "S", "Q", "L", "c", "+", "\"", "\\", "😀", "x", "Σ", "σ", "ς", "1", "2", "Ï", "n", "\t", "é", "?", "\u0000",
      // Pieces that the rules look for, so that some texts match.
      "12\n3", " GRÖSSE ", "😀y", "\"q\\", " SQL ", "a\nb", "ΣΑΣ", " σας");
    const text = fc.array(alphabet, { minLength: 800, maxLength: 2500 }).map((a) => a.join(""));
    // A system prompt of ~32,000 units with escapes takes the decode budget: the user's text is then
    // decoded as it is read; after a one-word system prompt it is decoded once.
    const bigSystem = "é\n".repeat(16000);
    const decision = (h: Host, system: string, user: string) => {
      const s = h.newStream();
      s.callOnRequestHeaders(HEADERS, false);
      s.callOnRequestBody(JSON.stringify({ model: "m", messages: [{ role: "system", content: system }, { role: "user", content: user }] }), true);
      const d = [s.getFilterState("sluice.route_rule"), s.getFilterState("sluice.task_type"), s.getFilterState("sluice.complexity")];
      s.completeHttpContext();
      return d;
    };
    let matched = 0;
    fc.assert(fc.property(text, (user) => {
      for (const h of hosts) {
        const once = decision(h, "hi", user);
        if (once[0] !== "default") matched++;
        expect(decision(h, bigSystem, user)).toEqual(once);
      }
    }), { numRuns: 40 });
    expect(matched).toBeGreaterThan(0); // the rules do match some of these texts
    for (const h of hosts) h.close();
  });
});
