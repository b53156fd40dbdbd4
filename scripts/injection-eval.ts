// Precision and recall of ai-guard's `injection` detector on its labelled set
// (test/fixtures/injection-corpus.jsonl: synthetic injection attempts and benign prompts, hard
// negatives included; each line says whether it is an injection, where it sits -- a user message, a
// tool result or a document -- and its split: `tune`, the part the cues and the default threshold
// were tuned on, or `holdout`, kept aside and measured without tuning), through the compiled filter
// (build/ai-guard.wasm) and the host.
//
//   npm run guard-eval -- --injection           the table at the default threshold, and a sweep
//   npm run guard-eval -- --injection --misses  also every miss, tune and holdout parts
//
// A line is sent as a Chat Completions user message, a tool result after an assistant tool call, or
// an Anthropic plain-text document, so each counts with the factor of where it sits.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Host } from "../host/index.js";

export const INJECTION_CORPUS = fileURLToPath(new URL("../test/fixtures/injection-corpus.jsonl", import.meta.url));
const WASM = fileURLToPath(new URL("../build/ai-guard.wasm", import.meta.url));

export interface InjectionLine { text: string; injection: boolean; where: "user" | "tool" | "document"; split: "tune" | "holdout" }
export interface InjectionScore { split: string; threshold: number | null; tp: number; fp: number; fn: number; tn: number; precision: number; recall: number; misses: string[] }

export function readInjectionCorpus(path = INJECTION_CORPUS): InjectionLine[] {
  return readFileSync(path, "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
}

/** The request a line is sent as: [path, body]. */
export function injectionRequest(line: InjectionLine): [string, object] {
  if (line.where === "tool") {
    return ["/v1/chat/completions", {
      model: "m",
      messages: [
        { role: "user", content: "Please look this up for me." },
        { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "lookup", arguments: "{}" } }] },
        { role: "tool", tool_call_id: "call_1", content: line.text },
      ],
    }];
  }
  if (line.where === "document") {
    return ["/v1/messages", {
      model: "m", max_tokens: 100,
      messages: [{ role: "user", content: [{ type: "document", source: { type: "text", media_type: "text/plain", data: line.text } }, { type: "text", text: "Summarize the document." }] }],
    }];
  }
  return ["/v1/chat/completions", { model: "m", messages: [{ role: "user", content: line.text }] }];
}

/** Scores per split ("tune", "holdout", "all") at one threshold (null: the filter's default). */
export async function evaluateInjection(lines: InjectionLine[], threshold: number | null = null, wasm = WASM): Promise<InjectionScore[]> {
  const configuration: Record<string, unknown> = { detectors: { injection: "block" } };
  if (threshold !== null) configuration.injection_threshold = threshold;
  const h = await Host.create({ filters: [{ name: "ai-guard", wasm, configuration, allowOnHeadersStopIteration: true }] });
  const scores = new Map<string, InjectionScore>();
  for (const split of ["tune", "holdout", "all"]) scores.set(split, { split, threshold, tp: 0, fp: 0, fn: 0, tn: 0, precision: 0, recall: 0, misses: [] });
  for (const line of lines) {
    const [path, body] = injectionRequest(line);
    const st = h.newStream();
    st.callOnRequestHeaders({ ":method": "POST", ":path": path, ":authority": "eval", "content-type": "application/json" }, false);
    st.callOnRequestBody(JSON.stringify(body), true);
    const flagged = st.getSentLocalResponse() !== undefined && st.getSentLocalResponse() !== null;
    for (const s of [scores.get(line.split)!, scores.get("all")!]) {
      if (flagged && line.injection) s.tp++;
      else if (flagged) { s.fp++; s.misses.push(`FP [${line.where}] ${JSON.stringify(line.text)}`); }
      else if (line.injection) { s.fn++; s.misses.push(`FN [${line.where}] ${JSON.stringify(line.text)}`); }
      else s.tn++;
    }
  }
  h.close();
  for (const s of scores.values()) {
    s.precision = s.tp + s.fp ? s.tp / (s.tp + s.fp) : 1;
    s.recall = s.tp + s.fn ? s.tp / (s.tp + s.fn) : 1;
  }
  return [...scores.values()];
}

function row(s: InjectionScore): string {
  return `${s.split.padEnd(8)} ${String(s.threshold ?? "default").padStart(9)} ${String(s.tp + s.fn).padStart(5)} ${String(s.tp + s.fp + s.fn + s.tn).padStart(6)} ${String(s.tp).padStart(4)} ${String(s.fp).padStart(4)} ${String(s.fn).padStart(4)}  ${s.precision.toFixed(3).padStart(9)}  ${s.recall.toFixed(3).padStart(6)}`;
}

export async function printInjectionEval(misses: boolean): Promise<void> {
  const lines = readInjectionCorpus();
  console.log(`ai-guard injection detector on ${lines.length} labelled lines (${INJECTION_CORPUS.replace(process.cwd() + "/", "")})\n`);
  const head = "split    threshold  pos.  lines   TP   FP   FN  precision  recall";
  console.log(head);
  const scores = await evaluateInjection(lines);
  for (const s of scores) console.log(row(s));
  console.log("\nthreshold sweep on the tune part:\n" + head);
  for (const t of [1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5]) console.log(row((await evaluateInjection(lines.filter((l) => l.split === "tune"), t))[0]));
  // The held-out misses are for reading (the docs list them), not for tuning against.
  if (misses) for (const s of scores.slice(0, 2)) for (const m of s.misses) console.log(`${s.split}: ${m}`);
}
