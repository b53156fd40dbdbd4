// Every client API is charged (issue 19): Chat Completions, Messages, Responses, Gemini
// generateContent and streamGenerateContent, and embeddings (OpenAI's and Gemini's embedContent),
// each called with its official SDK through the local gateway (a rendered gateway.yaml, mock
// providers), each writes sluice.cost (the access log's cost), counts it in sluice_ai_cost_micros
// under its team, and settles a strategy cost budget to exactly that cost; `npm run spend -- --by
// team,consumer` prints it.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { GoogleGenAI } from "@google/genai";
import { render } from "../../cli/render.js";
import { startLocalGateway, type LocalGateway } from "../../cli/start.js";
import { samples } from "../../cli/spend-report.js";

let gw: LocalGateway;
const log: string[] = [];
const WHO = { "x-user": "alice", "x-groups": "research,ml" };

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "sluice-spend-apis-"));
  // Whole-number prices, so each cost can be checked against the usage the SDK saw.
  writeFileSync(join(dir, "gateway.yaml"), `
listener: { address: 127.0.0.1, port: 10000 }
admin: { port: 9901 }
identity:
  sources: [{ header: x-user, trusted: true }]
  groups: { header: x-groups, trusted: true }
providers:
  - { name: openai, provider: openai, api_key_env: OPENAI_API_KEY, models: ["gpt-4o", "text-embedding-3-small"] }
  - { name: anthropic, provider: anthropic, api_key_env: ANTHROPIC_API_KEY, models: ["claude-sonnet-4-5"] }
  - { name: gemini, provider: gemini, api_key_env: GEMINI_API_KEY, models: ["gemini-2.5-flash", "gemini-embedding-001"] }
filters:
  key_auth: { enabled: false }
  ai_proxy:
    prices:
      gpt-4o: { input: 2, output: 10 }
      claude-sonnet-4-5: { input: 3, output: 15 }
      gemini-2.5-flash: { input: 1, output: 4 }
      text-embedding-3-small: { input: 1, output: 0 }
      gemini-embedding-001: { input: 2, output: 0 }
  ai_ratelimit:
    default_max_tokens: 256
    rules: [{ name: team-spend, key: [group], strategy: cost, budget: 100, window: 1d }]
`);
  render({ config: join(dir, "gateway.yaml"), outDir: join(dir, "envoy"), env: {} });
  gw = await startLocalGateway({ envoyYaml: join(dir, "envoy", "envoy.yaml"), port: 0, adminPort: 0, env: {}, mock: "always", accessLog: (l) => log.push(l) });
}, 30_000);
afterAll(async () => gw?.close());

async function metrics(): Promise<string> {
  return (await fetch(`${gw.adminUrl}/stats/prometheus`)).text();
}
const sum = (text: string, name: string, labels: Record<string, string>) =>
  samples(text, name).filter((s) => Object.entries(labels).every(([k, v]) => (s.labels[k] ?? "") === v)).reduce((t, s) => t + s.value, 0);

/**
 * Runs one client call and returns what it was charged: the access log's cost, and how much the
 * cost counter (team research, first of the consumer's groups) and the budget's settled charge
 * (each group's counter: research and ml) moved.
 */
async function charged(call: () => Promise<unknown>) {
  const before = await metrics();
  const lines = log.length;
  await call();
  for (let i = 0; i < 200 && log.length === lines; i++) await new Promise((r) => setTimeout(r, 10));
  const entry = JSON.parse(log[lines]);
  const after = await metrics();
  const delta = (name: string, labels: Record<string, string>) => sum(after, name, labels) - sum(before, name, labels);
  return {
    entry,
    cost: Number(entry.cost),
    counted: delta("sluice_ai_cost_micros", { consumer: "alice", team: "research" }),
    settled: delta("sluice_ratelimit_charged_tokens", { rule: "team-spend" }),
  };
}

const openai = () => new OpenAI({ apiKey: "unused", baseURL: `${gw.url}/v1`, maxRetries: 0, defaultHeaders: WHO });
const anthropic = () => new Anthropic({ apiKey: "unused", baseURL: gw.url, maxRetries: 0, defaultHeaders: WHO });
const google = () => new GoogleGenAI({ apiKey: "unused", httpOptions: { baseUrl: gw.url, headers: WHO } });

function expectCharged(c: Awaited<ReturnType<typeof charged>>, expected?: number) {
  expect(c.cost).toBeGreaterThan(0);
  if (expected !== undefined) expect(c.cost).toBe(expected);
  expect(c.counted).toBe(c.cost);
  // A consumer in two groups is charged in both of the rule's counters.
  expect(c.settled).toBe(2 * c.cost);
  expect(c.entry.groups).toBe("research,ml");
}

describe("every client API is charged, through the local gateway with its official SDK", () => {
  it("Chat Completions (OpenAI SDK)", async () => {
    let usage: OpenAI.CompletionUsage | undefined;
    const c = await charged(async () => {
      usage = (await openai().chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hello there" }] })).usage;
    });
    expectCharged(c, usage!.prompt_tokens * 2 + usage!.completion_tokens * 10);
    expect(c.entry.request_type).toBe("ai_chat");
  });

  it("Chat Completions streamed (OpenAI SDK)", async () => {
    let usage: OpenAI.CompletionUsage | null | undefined;
    const c = await charged(async () => {
      const stream = await openai().chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "stream please" }], stream: true, stream_options: { include_usage: true } });
      for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
    });
    expectCharged(c, usage!.prompt_tokens * 2 + usage!.completion_tokens * 10);
  });

  it("Messages (Anthropic SDK), streamed too", async () => {
    let msg: Anthropic.Message | undefined;
    const c = await charged(async () => {
      msg = await anthropic().messages.create({ model: "claude-sonnet-4-5", max_tokens: 200, messages: [{ role: "user", content: "hello there" }] });
    });
    const u = msg!.usage;
    expectCharged(c, (u.input_tokens + (u.cache_read_input_tokens ?? 0) + (u.cache_creation_input_tokens ?? 0)) * 3 + u.output_tokens * 15);
    let final: Anthropic.Message | undefined;
    const s = await charged(async () => {
      final = await anthropic().messages.stream({ model: "claude-sonnet-4-5", max_tokens: 200, messages: [{ role: "user", content: "stream please" }] }).finalMessage();
    });
    expectCharged(s, final!.usage.input_tokens * 3 + final!.usage.output_tokens * 15);
  });

  it("Responses (OpenAI SDK)", async () => {
    let usage: OpenAI.Responses.ResponseUsage | undefined;
    const c = await charged(async () => {
      usage = (await openai().responses.create({ model: "gpt-4o", input: "hello there", store: false })).usage;
    });
    expectCharged(c, usage!.input_tokens * 2 + usage!.output_tokens * 10);
  });

  it("Gemini generateContent and streamGenerateContent (@google/genai)", async () => {
    let meta: { promptTokenCount?: number; candidatesTokenCount?: number; thoughtsTokenCount?: number } | undefined;
    const c = await charged(async () => {
      meta = (await google().models.generateContent({ model: "gemini-2.5-flash", contents: "hello there" })).usageMetadata;
    });
    expectCharged(c, meta!.promptTokenCount! * 1 + (meta!.candidatesTokenCount! + (meta!.thoughtsTokenCount ?? 0)) * 4);
    let last: typeof meta;
    const s = await charged(async () => {
      for await (const chunk of await google().models.generateContentStream({ model: "gemini-2.5-flash", contents: "stream please" })) last = chunk.usageMetadata ?? last;
    });
    expectCharged(s, last!.promptTokenCount! * 1 + (last!.candidatesTokenCount! + (last!.thoughtsTokenCount ?? 0)) * 4);
  });

  it("embeddings: OpenAI's /v1/embeddings (OpenAI SDK) and Gemini's embedContent (@google/genai)", async () => {
    let usage: OpenAI.CreateEmbeddingResponse.Usage | undefined;
    const c = await charged(async () => {
      usage = (await openai().embeddings.create({ model: "text-embedding-3-small", input: ["first text", "second text"] })).usage;
    });
    expectCharged(c, usage!.prompt_tokens * 1);
    expect(c.entry.request_type).toBe("ai_embeddings");
    // Gemini's embedContent reports no usage: the prompt estimate is priced (usage_source estimate).
    const g = await charged(() => google().models.embedContent({ model: "gemini-embedding-001", contents: ["first text", "second text"] }));
    expectCharged(g, Number(g.entry.prompt_tokens) * 2);
  });

  it("npm run spend -- --by team,consumer prints the team's spend as the counters hold it", async () => {
    const text = await metrics();
    const total = sum(text, "sluice_ai_cost_micros", { consumer: "alice", team: "research" });
    expect(total).toBeGreaterThan(0);
    const r = await promisify(execFile)(process.execPath, ["--import", "tsx", "cli/spend.ts", "--admin", gw.adminUrl, "--by", "team,consumer"], { encoding: "utf8", timeout: 30_000 });
    const row = r.stdout.split("\n").find((l) => l.startsWith("research"))!.trim().split(/\s+/);
    expect(row.slice(0, 2)).toEqual(["research", "alice"]);
    expect(row.at(-1)).toBe((total / 1e6).toFixed(6));
  });
});
