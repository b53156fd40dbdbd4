// The `injection` detector as a policy sees it: its configuration (an action of log or block, and
// injection_threshold) and what it adds to a text's hits. Masking is refused: an injection is not a
// value with edges that a placeholder could stand for (cutting out the cue words would leave the
// rest of the planted instructions), so the choice is to record it or to refuse the request.
import { JsonValue } from "../../lib/json";
import { ConfigReader } from "../../lib/config";
import { Hits } from "./hits";
import { injectionScore } from "./detect-injection";
import { injectionLexicon } from "./injection-cues";
import { AT_OPERATOR, AT_DATA } from "./request";

/** Chosen on the tuning part of test/fixtures/injection-corpus.jsonl (docs/filters/ai-guard.md). */
export const DEFAULT_INJECTION_THRESHOLD: f64 = 3.0;
const MIN_THRESHOLD: f64 = 0.5;
const MAX_THRESHOLD: f64 = 100;
// policy.ts's (not imported: policy.ts imports this file)
const A_MASK: i32 = 2;
const A_MASK_RESTORE: i32 = 4;

/**
 * Reads injection_threshold at `path` and checks the detector's actions (packed as policy.ts's
 * action(): request | response << 8); compiles the cues when it is on. Answers are not scored: a
 * response action is refused rather than accepted and never applied.
 */
export function readInjection(r: ConfigReader, obj: JsonValue, path: string, packed: i32): f64 {
  const action = packed & 0xff;
  if (action == A_MASK || action == A_MASK_RESTORE) r.fail(path + ".detectors.injection", "must be off, log or block (an injection has no value a placeholder could stand for)");
  if ((packed >> 8) != 0) r.fail(path + ".detectors.injection.response", "must be off: injection is scored on requests only (answers are not scored)");
  let threshold = DEFAULT_INJECTION_THRESHOLD;
  const v = obj.get("injection_threshold");
  if (v !== null) {
    if (!v.isNumber() || !(v.n >= MIN_THRESHOLD && v.n <= MAX_THRESHOLD)) r.fail(path + ".injection_threshold", "must be a number from 0.5 to 100");
    else threshold = v.n;
  }
  if (action != 0) injectionLexicon(); // compiled at configure, once per VM
  return threshold;
}

/**
 * Scores the text; at or over the threshold (after the factor of where the text sits), records an
 * empty hit at the text's end: the detector names the text, not a span of it, and an empty hit there
 * never overlaps (so never hides) another detector's span in the same text.
 */
export function findInjection<T>(t: usize, n: i32, threshold: f64, factor: f64, det: i32, hits: Hits): void {
  if (factor <= 0) return;
  if (injectionScore<T>(t, n) * factor >= threshold) hits.add(n, n, det);
}

/** Tool results and documents: data that instructs is what an indirect injection is. */
export const TOOL_FACTOR: f64 = 1.5;

/**
 * How much an injection cue counts where a text sits (request.ts Texts.where): the operator's own
 * instructions are not scored (they are the application's text, and "never reveal your system
 * prompt" is normal there), tool results and documents count TOOL_FACTOR times, the rest once.
 */
export function factorOf(at: u8): f64 {
  return at == AT_OPERATOR ? 0 : at == AT_DATA ? TOOL_FACTOR : 1;
}
