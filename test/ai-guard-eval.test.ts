// The detectors' precision and recall on the labelled corpus (test/fixtures/guard-corpus.jsonl), through
// build/ai-guard.wasm, as `npm run guard-eval` prints them. The thresholds are the figures measured when
// the corpus was written (docs/filters/ai-guard.md), rounded down: a change to a detector that loses
// precision or recall on it fails here. The known misses are listed in the docs.
import { describe, it, expect, beforeAll } from "vitest";
import { evaluate, readCorpus, maskedValues, DETECTORS, type Score } from "../scripts/guard-eval.js";

const MIN: Record<string, { precision: number; recall: number }> = {
  email: { precision: 0.99, recall: 0.98 },
  phone: { precision: 0.98, recall: 0.96 },
  card: { precision: 0.99, recall: 0.99 },
  iban: { precision: 0.99, recall: 0.93 },
  ssn: { precision: 0.99, recall: 0.97 },
  ip: { precision: 0.99, recall: 0.99 },
  credential: { precision: 0.99, recall: 0.95 },
};

describe("ai-guard detectors on the labelled corpus", () => {
  const lines = readCorpus();
  let scores: Score[] = [];
  beforeAll(async () => {
    scores = await evaluate(lines);
  }, 60000);

  it("the corpus has positives for every detector and tricky negatives", () => {
    for (const d of DETECTORS) expect(lines.filter((l) => (l.expect[d] ?? []).length > 0).length).toBeGreaterThanOrEqual(30);
    expect(lines.filter((l) => Object.keys(l.expect).length === 0).length).toBeGreaterThanOrEqual(150);
  });

  for (const d of DETECTORS) {
    it(`${d}: precision >= ${MIN[d].precision}, recall >= ${MIN[d].recall}`, () => {
      const s = scores.find((x) => x.detector === d)!;
      expect(s.precision, s.misses.join("\n")).toBeGreaterThanOrEqual(MIN[d].precision);
      expect(s.recall, s.misses.join("\n")).toBeGreaterThanOrEqual(MIN[d].recall);
    });
  }

  it("reads found values back from a masked text, repeated placeholders included", () => {
    expect(maskedValues("a x@y.io b x@y.io c z@y.io.", "a <EMAIL_1> b <EMAIL_1> c <EMAIL_2>.")).toEqual(["x@y.io", "x@y.io", "z@y.io"]);
  });
});
