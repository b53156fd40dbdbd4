// The ai-router classifier on the labelled prompt set (test/fixtures/router-prompts.json), through
// build/ai-router.wasm and the host: task-type accuracy and the cheap/capable split, printed per
// split (dev: used to tune the lexicon; holdout: written afterwards, never tuned on).
import { describe, it, expect, beforeAll } from "vitest";
import { readFileSync } from "node:fs";
import { Host } from "../host/index.js";

const WASM = process.env.AI_ROUTER_WASM ?? "build/ai-router.wasm";
/** A prompt whose complexity reaches this is judged to need the capable tier (README). */
const CAPABLE_AT = 0.3;
const TASKS = ["code", "math", "reasoning", "summarize", "extract", "translate", "chat"];

interface Labelled { id: number; split: "dev" | "holdout"; task: string; tier: "cheap" | "capable"; prompt: string }
const FIXTURE: { prompts: Labelled[] } = JSON.parse(readFileSync("test/fixtures/router-prompts.json", "utf8"));

interface Result { item: Labelled; task: string; complexity: number }

function classifyAll(h: Host, items: Labelled[]): Result[] {
  return items.map((item) => {
    const s = h.newStream();
    s.callOnRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw" }, false);
    s.callOnRequestBody(JSON.stringify({ model: "m", messages: [{ role: "user", content: item.prompt }] }), true);
    const task = s.getFilterState("sluice.task_type") ?? "?";
    const complexity = Number(s.getFilterState("sluice.complexity"));
    s.completeHttpContext();
    return { item, task, complexity };
  });
}

function pct(n: number, d: number): string {
  return d ? `${((100 * n) / d).toFixed(1)}% (${n}/${d})` : "n/a";
}

function report(name: string, rs: Result[]): { task: number; tier: number } {
  const taskOk = rs.filter((r) => r.task === r.item.task).length;
  const tierOk = rs.filter((r) => (r.complexity >= CAPABLE_AT ? "capable" : "cheap") === r.item.tier).length;
  const lines = [`ai-router classifier, ${name} (${rs.length} prompts):`, `  task type accuracy:        ${pct(taskOk, rs.length)}`, `  cheap/capable accuracy:    ${pct(tierOk, rs.length)} (capable when complexity >= ${CAPABLE_AT})`];
  // Confusion rows: label -> predicted counts.
  lines.push(`  confusion (rows: label; columns: ${TASKS.join(" ")}):`);
  for (const t of TASKS) {
    const row = TASKS.map((p) => rs.filter((r) => r.item.task === t && r.task === p).length);
    lines.push(`    ${t.padEnd(10)} ${row.map((n) => String(n).padStart(3)).join(" ")}`);
  }
  const mean = (tier: string) => {
    const xs = rs.filter((r) => r.item.tier === tier).map((r) => r.complexity);
    return xs.length ? (xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(2) : "n/a";
  };
  lines.push(`  mean complexity: cheap ${mean("cheap")}, capable ${mean("capable")}`);
  const misses = rs.filter((r) => r.task !== r.item.task || (r.complexity >= CAPABLE_AT ? "capable" : "cheap") !== r.item.tier);
  if (process.env.AI_ROUTER_MISSES) {
    for (const m of misses) lines.push(`    #${m.item.id} ${m.item.task}/${m.item.tier} -> ${m.task}/${m.complexity.toFixed(2)}: ${m.item.prompt.slice(0, 90).replace(/\n/g, " ")}`);
  }
  console.log(lines.join("\n"));
  return { task: taskOk / rs.length, tier: tierOk / rs.length };
}

describe("ai-router classifier on the labelled prompts", () => {
  let h: Host;
  let results: Result[];
  beforeAll(async () => {
    h = await Host.create({ filters: [{ name: "ai-router", wasm: WASM, configuration: { annotate: true }, allowOnHeadersStopIteration: true }] });
    results = classifyAll(h, FIXTURE.prompts);
  });

  it("has at least 60 labelled prompts covering every task type and both tiers", () => {
    expect(FIXTURE.prompts.length).toBeGreaterThanOrEqual(60);
    for (const t of TASKS) expect(FIXTURE.prompts.some((p) => p.task === t)).toBe(true);
    expect(new Set(FIXTURE.prompts.map((p) => p.tier))).toEqual(new Set(["cheap", "capable"]));
    expect(new Set(FIXTURE.prompts.map((p) => p.id)).size).toBe(FIXTURE.prompts.length);
  });

  it("prints task-type and cheap/capable accuracy (all, dev, holdout)", () => {
    const all = report("all", results);
    report("dev split", results.filter((r) => r.item.split === "dev"));
    const holdout = results.filter((r) => r.item.split === "holdout");
    if (holdout.length) report("holdout split", holdout);
    // Floors against regressions, below the figures in README.
    expect(all.task).toBeGreaterThanOrEqual(0.8);
    expect(all.tier).toBeGreaterThanOrEqual(0.75);
  });

  it("is deterministic: the same prompt gets the same answer on every worker and every time", async () => {
    const h2 = await Host.create({ filters: [{ name: "ai-router", wasm: WASM, configuration: { annotate: true }, allowOnHeadersStopIteration: true, workers: 2 }] });
    const sample = FIXTURE.prompts.slice(0, 20);
    const a = classifyAll(h2, sample);
    const b = classifyAll(h2, sample);
    expect(b.map((r) => [r.task, r.complexity])).toEqual(a.map((r) => [r.task, r.complexity]));
    expect(a.map((r) => [r.task, r.complexity])).toEqual(results.slice(0, 20).map((r) => [r.task, r.complexity]));
  });

  it("writes a task type for every prompt and a complexity within [0, 1]", () => {
    for (const r of results) {
      expect(TASKS).toContain(r.task);
      expect(r.complexity).toBeGreaterThanOrEqual(0);
      expect(r.complexity).toBeLessThanOrEqual(1);
    }
  });
});
