// The injection detector's precision and recall on its labelled set (test/fixtures/injection-corpus.jsonl),
// through build/ai-guard.wasm, as `npm run guard-eval -- --injection` prints them. The floors are the
// figures measured when the set was written (docs/filters/ai-guard.md), rounded down, for the part the
// cues were tuned on and for the held-out part separately: a change to the cues or the default
// threshold that loses precision or recall on either fails here.
import { describe, it, expect, beforeAll } from "vitest";
import { evaluateInjection, readInjectionCorpus, type InjectionScore } from "../scripts/injection-eval.js";

const MIN: Record<string, { precision: number; recall: number }> = {
  tune: { precision: 0.99, recall: 0.98 },
  holdout: { precision: 0.88, recall: 0.81 },
};

describe("ai-guard injection detector on the labelled set", () => {
  const lines = readInjectionCorpus();
  let scores: InjectionScore[] = [];
  beforeAll(async () => {
    scores = await evaluateInjection(lines);
  }, 60000);

  it("the set has 150+ injections and 250+ benign prompts, tool results and documents among them, in both splits", () => {
    expect(lines.filter((l) => l.injection).length).toBeGreaterThanOrEqual(150);
    expect(lines.filter((l) => !l.injection).length).toBeGreaterThanOrEqual(250);
    for (const where of ["user", "tool", "document"]) for (const injection of [true, false]) {
      expect(lines.filter((l) => l.where === where && l.injection === injection).length).toBeGreaterThanOrEqual(10);
    }
    expect(lines.filter((l) => l.split === "holdout").length).toBeGreaterThanOrEqual(lines.length / 4);
  });

  for (const split of ["tune", "holdout"]) {
    it(`${split}: precision >= ${MIN[split].precision}, recall >= ${MIN[split].recall}`, () => {
      const s = scores.find((x) => x.split === split)!;
      expect(s.precision, s.misses.join("\n")).toBeGreaterThanOrEqual(MIN[split].precision);
      expect(s.recall, s.misses.join("\n")).toBeGreaterThanOrEqual(MIN[split].recall);
    });
  }
});
