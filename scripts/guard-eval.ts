// Precision and recall of ai-guard's built-in detectors on the labelled corpus in the repository
// (test/fixtures/guard-corpus.jsonl: synthetic, real-looking texts; each line lists what every
// detector should find in it, and a line that lists nothing for a detector is a negative for it),
// measured through the compiled filter (build/ai-guard.wasm) and the host.
//
//   npm run guard-eval            prints the table
//   npm run guard-eval -- --misses   also prints every false positive and false negative
//   npm run guard-eval -- --injection   the prompt-injection detector instead (scripts/injection-eval.ts)
//
// Each detector runs alone with action mask; what it found is read back from the masked text (the
// values the placeholders stand for). A found value counts once per occurrence.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Host } from "../host/index.js";

export const DETECTORS = ["email", "phone", "card", "iban", "ssn", "ip", "credential"] as const;
export type Detector = (typeof DETECTORS)[number];
export const CORPUS = fileURLToPath(new URL("../test/fixtures/guard-corpus.jsonl", import.meta.url));
const WASM = fileURLToPath(new URL("../build/ai-guard.wasm", import.meta.url));

export interface Line { text: string; expect: Partial<Record<Detector, string[]>> }
export interface Score { detector: Detector; tp: number; fp: number; fn: number; precision: number; recall: number; misses: string[] }

export function readCorpus(path = CORPUS): Line[] {
  return readFileSync(path, "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
}

/**
 * The values a masked text's placeholders stand for: the masked text as an anchored pattern, each
 * placeholder a group (the same placeholder again a back-reference: the same value), matched against
 * the original.
 */
export function maskedValues(original: string, masked: string): string[] {
  const seen = new Map<string, number>();
  const order: string[] = [];
  const pattern = masked.split(/(<[A-Z_]+_\d+>)/).map((part, i) => {
    if (i % 2 === 0) return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    if (seen.has(part)) return `\\${seen.get(part)}`;
    seen.set(part, seen.size + 1);
    order.push(part);
    return "([\\s\\S]+)";
  }).join("");
  const m = new RegExp(`^${pattern}$`).exec(original);
  if (!m) throw new Error(`the masked text does not align with the original: ${JSON.stringify(masked)}`);
  // Every occurrence counts: a placeholder used twice stands for the value twice.
  const values = order.map((_, k) => m[k + 1]);
  return masked.match(/<[A-Z_]+_\d+>/g)!.map((p) => values[order.indexOf(p)]);
}

export async function evaluate(lines: Line[] = readCorpus(), wasm = WASM): Promise<Score[]> {
  const scores: Score[] = [];
  for (const d of DETECTORS) {
    const h = await Host.create({ filters: [{ name: "ai-guard", wasm, configuration: { detectors: { [d]: "mask" } }, allowOnHeadersStopIteration: true }] });
    const s: Score = { detector: d, tp: 0, fp: 0, fn: 0, precision: 0, recall: 0, misses: [] };
    for (const line of lines) {
      const st = h.newStream();
      st.callOnRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "eval" }, false);
      st.callOnRequestBody(JSON.stringify({ model: "m", messages: [{ role: "user", content: line.text }] }), true);
      const masked: string = JSON.parse(st.upstream.body.toString()).messages[0].content;
      const found = masked === line.text ? [] : maskedValues(line.text, masked);
      const want = [...(line.expect[d] ?? [])];
      for (const f of found) {
        const i = want.indexOf(f);
        if (i >= 0) {
          s.tp++;
          want.splice(i, 1);
        } else {
          s.fp++;
          s.misses.push(`FP ${JSON.stringify(f)} in ${JSON.stringify(line.text)}`);
        }
      }
      s.fn += want.length;
      for (const w of want) s.misses.push(`FN ${JSON.stringify(w)} in ${JSON.stringify(line.text)}`);
    }
    s.precision = s.tp + s.fp ? s.tp / (s.tp + s.fp) : 1;
    s.recall = s.tp + s.fn ? s.tp / (s.tp + s.fn) : 1;
    scores.push(s);
    h.close();
  }
  return scores;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1] && process.argv.includes("--injection")) {
  const { printInjectionEval } = await import("./injection-eval.js");
  await printInjectionEval(process.argv.includes("--misses"));
} else if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const lines = readCorpus();
  const scores = await evaluate(lines);
  console.log(`ai-guard detectors on ${lines.length} labelled lines (${CORPUS.replace(process.cwd() + "/", "")})\n`);
  console.log("detector     positives  TP   FP   FN  precision  recall");
  for (const s of scores) {
    console.log(`${s.detector.padEnd(12)} ${String(s.tp + s.fn).padStart(9)} ${String(s.tp).padStart(4)} ${String(s.fp).padStart(4)} ${String(s.fn).padStart(4)}  ${s.precision.toFixed(3).padStart(9)}  ${s.recall.toFixed(3).padStart(6)}`);
  }
  if (process.argv.includes("--misses")) for (const s of scores) for (const m of s.misses) console.log(`${s.detector}: ${m}`);
}
