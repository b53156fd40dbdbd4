// Benchmark, not a timed test: µs per routing decision through build/ai-router.wasm and the host,
// for a 2 KB and a 32 KB prompt with 20 rules (the common conditions, four regular expressions,
// the classifier), against the same requests with no rules (body parse and host cost only).
// Prints a table; asserts only that the routing is what the rules say.
//   AI_ROUTER_BENCH_MS=2000 npx vitest run test/ai-router-bench.test.ts   (longer rounds)
import { describe, it, expect } from "vitest";
import { Host } from "../host/index.js";

const WASM = process.env.AI_ROUTER_WASM ?? "build/ai-router.wasm";
const ROUND_MS = Number(process.env.AI_ROUTER_BENCH_MS ?? 300);

const RULES = [
  { name: "vip-header", pool: "vip", when: { header: { name: "x-tier", exact: "platinum" } } },
  { name: "team-prefix", pool: "research", when: { header: { name: "x-team", prefix: "research-" } } },
  { name: "beta-regex", pool: "beta", when: { header: { name: "x-client", regex: "^beta-\\d+$" } } },
  { name: "consumer", pool: "partners", when: { consumer: ["partner-a", "partner-b"] } },
  { name: "o-models", pool: "reasoning", when: { model: ["o1*", "o3*"] } },
  { name: "embeddings-path", pool: "emb", when: { path: { prefix: "/v1/embed" } } },
  { name: "images", pool: "vision", when: { images: true } },
  { name: "json", pool: "structured", when: { json_mode: true, tokens: { lt: 4000 } } },
  { name: "pii", pool: "private", when: { regex: ["\\b\\d{3}-\\d{2}-\\d{4}\\b", "(?i)\\b(passport|social security) number\\b"], in: "conversation" } },
  { name: "incident", pool: "oncall", when: { keywords: ["sev1", "outage", "pager", "incident"], regex: "(?i)\\bprod(uction)?\\b" } },
  { name: "legal", pool: "legal", when: { keywords: ["contract", "indemnify", "liability", "gdpr"], task: ["extract", "summarize"] } },
  { name: "long-context", pool: "long", when: { tokens: { gt: 30000 } } },
  { name: "agent", pool: "capable", when: { tools: true, messages: { gt: 10 } } },
  { name: "translate", pool: "cheap", when: { task: "translate", complexity: { lt: 0.4 } } },
  { name: "hard-math", pool: "capable", when: { task: "math", complexity: { gt: 0.3 } } },
  { name: "hard-code", pool: "capable", when: { task: "code", complexity: { gt: 0.45 } } },
  { name: "not-chat", pool: "mid", when: { all: [{ not: { task: "chat" } }, { complexity: { gt: 0.6 } }] } },
  { name: "reasoning", pool: "capable", when: { any: [{ task: "reasoning", complexity: { gt: 0.35 } }, { keywords: ["step by step"] }] } },
  { name: "summaries", pool: "cheap", when: { task: "summarize", complexity: { lt: 0.5 } } },
  { name: "simple", pool: "cheap", when: { complexity: { lt: 0.3 } } },
];

// Realistic prompts: a document to summarize (2 KB) and a code review with a long file (32 KB).
const PARAGRAPH =
  "The quarterly report shows revenue growth in every region, led by Europe, where new distribution " +
  "agreements doubled the number of retail partners. Costs rose more slowly than revenue, although logistics " +
  "remained expensive because of port congestion in the second month. Management expects demand to stay " +
  "strong and plans to hire forty engineers for the platform team before the end of the year. ";
function docPrompt(bytes: number) {
  let body = "";
  while (body.length < bytes - 200) body += PARAGRAPH;
  return "Summarize the following report in five bullet points for the leadership team:\n\n" + body;
}
const CODE_LINE = "  const total = items.reduce((sum, item) => sum + item.price * item.quantity, 0); // running total\n";
function codePrompt(bytes: number) {
  let code = "```ts\nexport function checkout(items: Item[], user: User): Receipt {\n";
  while (code.length < bytes - 400) code += CODE_LINE;
  code += "  return { total, user: user.id };\n}\n```\n";
  return "Review this TypeScript module for bugs, race conditions and performance problems, and explain the trade-offs of each fix:\n\n" + code;
}

function request(text: string) {
  return JSON.stringify({ model: "gpt-4o", messages: [{ role: "system", content: "You are a helpful assistant." }, { role: "user", content: text }] });
}

async function host(rules: object[]) {
  return Host.create({ filters: [{ name: "ai-router", wasm: WASM, allowOnHeadersStopIteration: true, configuration: { default_pool: "general", rules } }] });
}

const HEADERS = { ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw", "content-type": "application/json", "x-team": "platform" };

function once(h: Host, body: Buffer) {
  const s = h.newStream();
  s.callOnRequestHeaders(HEADERS, false);
  s.callOnRequestBody(body, true);
  const rule = s.getFilterState("sluice.route_rule");
  s.completeHttpContext();
  return rule;
}

/** Median µs per request over rounds of ROUND_MS / 5 each. */
function measure(h: Host, body: Buffer): number {
  for (let i = 0; i < 50; i++) once(h, body);
  const rounds: number[] = [];
  for (let r = 0; r < 5; r++) {
    let n = 0;
    const start = performance.now();
    let now = start;
    while (now - start < ROUND_MS / 5) {
      once(h, body);
      n++;
      now = performance.now();
    }
    rounds.push(((now - start) * 1000) / n);
  }
  rounds.sort((a, b) => a - b);
  return rounds[2];
}

describe("ai-router benchmark", () => {
  it("µs per routing decision, 20 rules, 2 KB and 32 KB prompts", async () => {
    expect(RULES).toHaveLength(20);
    const withRules = await host(RULES);
    const noRules = await host([]);
    const cases = [
      { name: "2 KB summary request", body: Buffer.from(request(docPrompt(2048))), rule: "summaries" },
      { name: "32 KB code review", body: Buffer.from(request(codePrompt(32768))), rule: "hard-code" },
    ];
    const lines = ["ai-router: µs per routing decision (median of 5 rounds; host + wasm, headers to decision)", "| prompt | body bytes | 20 rules | no rules | rules cost |", "|---|---|---|---|---|"];
    for (const c of cases) {
      expect(once(withRules, c.body)).toBe(c.rule);
      const a = measure(withRules, c.body);
      const b = measure(noRules, c.body);
      lines.push(`| ${c.name} | ${c.body.length} | ${a.toFixed(0)} µs | ${b.toFixed(0)} µs | ${(a - b).toFixed(0)} µs |`);
    }
    console.log(lines.join("\n"));
    withRules.close();
    noRules.close();
  });
});
