// Spend reports (npm run spend, cli/spend.ts): the gateway's cost and token counters, read from its
// metrics endpoint after real requests through the local gateway, grouped and summed; and the
// report's arithmetic on a Prometheus text it did not make.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { render } from "../../cli/render.js";
import { startLocalGateway, type LocalGateway } from "../../cli/start.js";
import { samples, spend, table } from "../../cli/spend-report.js";

describe("spend report arithmetic", () => {
  const TEXT = [
    "# TYPE sluice_ai_cost_micros counter",
    'sluice_ai_cost_micros{provider="openai",model="gpt-4o",consumer="team-a"} 1500000',
    'sluice_ai_cost_micros{provider="anthropic",model="claude-sonnet-4-5",consumer="team-a"} 250',
    'sluice_ai_cost_micros{provider="openai",model="gpt-4o",consumer="team-b"} 3000000',
    'sluice_ai_requests{provider="openai",model="gpt-4o",consumer="team-a",request_type="ai_chat"} 3',
    'sluice_ai_requests{provider="openai",model="gpt-4o",consumer="team-a",request_type="ai_stream"} 2',
    'sluice_ai_requests{provider="openai",model="gpt-4o",consumer="team-b",request_type="ai_chat"} 1',
    'sluice_ai_prompt_tokens{provider="openai",model="gpt-4o",consumer="team-a"} 400',
    'sluice_ai_cost_micros_other{consumer="x"} 99',
  ].join("\n");

  it("reads one family's samples with their labels", () => {
    expect(samples(TEXT, "sluice_ai_cost_micros").map((s) => [s.labels.consumer, s.value])).toEqual([["team-a", 1500000], ["team-a", 250], ["team-b", 3000000]]);
  });

  it("groups by what is asked, sums the rest, subtracts an earlier reading, and prints money to the micro-unit", () => {
    expect(spend(TEXT, ["consumer"])).toEqual([
      { key: ["team-b"], requests: 1, promptTokens: 0, completionTokens: 0, costMicros: 3000000 },
      { key: ["team-a"], requests: 5, promptTokens: 400, completionTokens: 0, costMicros: 1500250 },
    ]);
    const later = TEXT.replace("consumer=\"team-b\"} 3000000", "consumer=\"team-b\"} 3500001");
    expect(spend(later, ["consumer"], TEXT)).toEqual([{ key: ["team-b"], requests: 0, promptTokens: 0, completionTokens: 0, costMicros: 500001 }]);
    const t = table(spend(TEXT, ["consumer", "model"]), ["consumer", "model"], "USD");
    expect(t.split("\n")[0]).toMatch(/^consumer\s+model\s+requests\s+prompt tokens\s+completion tokens\s+cost \(USD\)$/);
    expect(t).toContain("3.000000");
    expect(t).toContain("0.000250");
    expect(t.split("\n").at(-1)).toMatch(/^total\s+6\s+400\s+0\s+4\.500250$/);
  });
});

describe("spend per virtual key and team", () => {
  const TEXT = [
    'sluice_ai_cost_micros{provider="openai",model="gpt-4o",consumer="alice",team="red",key="ci-bot"} 400000',
    'sluice_ai_cost_micros{provider="openai",model="gpt-4o",consumer="bob",team="red",key="ci-bot"} 6150',
    'sluice_ai_cost_micros{provider="openai",model="gpt-4o",consumer="bob",team="red"} 1550',
    'sluice_ai_cost_micros{provider="openai",model="gpt-4o",consumer="carol",team="",key=""} 600',
    'sluice_ai_requests{provider="openai",model="gpt-4o",consumer="alice",team="red",key="ci-bot",request_type="ai_chat"} 30',
    'sluice_ai_requests{provider="openai",model="gpt-4o",consumer="bob",team="red",key="ci-bot",request_type="ai_stream"} 10',
    'sluice_ai_requests{provider="openai",model="gpt-4o",consumer="bob",team="red",request_type="ai_chat"} 2',
    'sluice_ai_requests{provider="openai",model="gpt-4o",consumer="carol",request_type="ai_chat"} 1',
  ].join("\n");

  it("groups by key and team; a series without the label (or with it empty, as Prometheus reads it) is '-'", () => {
    expect(spend(TEXT, ["team", "key"])).toEqual([
      { key: ["red", "ci-bot"], requests: 40, promptTokens: 0, completionTokens: 0, costMicros: 406150 },
      { key: ["red", "-"], requests: 2, promptTokens: 0, completionTokens: 0, costMicros: 1550 },
      { key: ["-", "-"], requests: 1, promptTokens: 0, completionTokens: 0, costMicros: 600 },
    ]);
    expect(spend(TEXT, ["key", "consumer"]).map((r) => [...r.key, r.costMicros])).toEqual([["ci-bot", "alice", 400000], ["ci-bot", "bob", 6150], ["-", "bob", 1550], ["-", "carol", 600]]);
    const t = table(spend(TEXT, ["team", "key"]), ["team", "key"], "USD").split("\n");
    expect(t[0]).toMatch(/^team\s+key\s+requests/);
    expect(t.at(-1)).toMatch(/^total\s+43\s+0\s+0\s+0\.408300$/);
  });
});

describe("npm run spend against the local gateway", () => {
  let gw: LocalGateway;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), "sluice-spend-"));
    writeFileSync(join(dir, "gateway.yaml"), `
listener: { address: 127.0.0.1, port: 10000 }
admin: { port: 9901 }
consumers:
  - { name: team-a, keys: [key-a] }
  - { name: team-b, keys: [key-b] }
providers:
  - { name: openai, provider: openai, api_key_env: OPENAI_API_KEY, models: ["gpt-4o"] }
`);
    render({ config: join(dir, "gateway.yaml"), outDir: join(dir, "envoy"), env: {} });
    gw = await startLocalGateway({ envoyYaml: join(dir, "envoy", "envoy.yaml"), port: 0, adminPort: 0, env: {}, mock: "always", accessLog: () => {} });
  }, 30_000);
  afterAll(async () => gw?.close());

  it("prints each consumer's spend as the usage records priced it", async () => {
    const ask = (key: string) => new OpenAI({ apiKey: key, baseURL: `${gw.url}/v1`, maxRetries: 0 }).chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hello there" }] });
    const answers = [await ask("key-a"), await ask("key-a"), await ask("key-b")];
    // gpt-4o's built-in price: 2.5 micro-dollars a prompt token, 10 a completion token.
    const costOf = (u: OpenAI.CompletionUsage) => u.prompt_tokens * 2.5 + u.completion_tokens * 10;
    const a = Math.round(costOf(answers[0].usage!)) + Math.round(costOf(answers[1].usage!));
    // Run as its own process, asynchronously: the gateway answering it lives in this one.
    const r = await promisify(execFile)(process.execPath, ["--import", "tsx", "cli/spend.ts", "--admin", gw.adminUrl, "--by", "consumer"], { encoding: "utf8", timeout: 30_000 });
    const lines = r.stdout.trim().split("\n");
    const row = (name: string) => lines.find((l) => l.startsWith(name))!.trim().split(/\s+/);
    expect(row("team-a")[1]).toBe("2");
    expect(row("team-a")[4]).toBe((a / 1e6).toFixed(6));
    expect(row("team-b")[1]).toBe("1");
  });
});
