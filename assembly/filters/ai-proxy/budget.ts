// Mid-stream budgets (ai-ratelimit's sluice.stream_budget): the request asks the provider for no
// more output than the budget, so an honest provider stops there by itself. That is the only way
// the client's stream ends cleanly *and* the provider stops generating: proxy-wasm offers no way
// to end the client's response early or to reset only the upstream (proxy_close_stream resets
// both sides; see lib/sdk.ts closeResponse), so a cut by the gateway always ends in a reset.
import { JsonValue } from "../../lib/json";
import { Instance } from "../../providers/types";
import { MIN_THINKING_BUDGET } from "../../providers/anthropic";

/**
 * A provider that was asked for at most the budget but streams on past twice the budget (by the
 * gateway's estimate, which differs from the provider's tokenizer by tens of percent) ignores the
 * limit: the gateway cuts it then.
 */
export const CAPPED_CUT_FACTOR: i64 = 2;

/**
 * Lowers the output limit of an OpenAI-format request to the budget (per choice when n > 1):
 * the client's max_completion_tokens / max_tokens when higher, else max_completion_tokens added
 * (each provider translates it to its own field). False when the limit is not the request's to
 * lower: the instance forces its own (max_tokens above the budget, or an option that sets it), or
 * an Anthropic thinking budget needs more (Anthropic refuses max_tokens <= budget_tokens; a
 * reasoning_effort's budget is at least 1024).
 */
export function capOutput(req: JsonValue, inst: Instance, budget: i64): bool {
  if (inst.maxTokens >= 0) return inst.maxTokens <= budget;
  const o = inst.options;
  if (o !== null && (o.get("max_tokens") !== null || o.get("max_completion_tokens") !== null || o.get("maxOutputTokens") !== null)) return false;
  let n: i64 = 1;
  const nv = req.get("n");
  if (nv !== null && nv.isInteger() && nv.n > 1) n = <i64>nv.n;
  const cap = budget / n;
  if (cap < 1) return false;
  const thinking = req.get("thinking");
  if (thinking !== null && thinking.isObject()) {
    const bt = thinking.get("budget_tokens");
    if (bt !== null && bt.isNumber() && bt.n >= <f64>cap) return false;
  }
  // reasoning_effort becomes a thinking budget of at least 1024 for Anthropic, which must stay
  // under the limit: a smaller one would turn the request into a 400 naming a limit the client
  // did not set that low (providers/anthropic.ts, limits).
  const effort = req.get("reasoning_effort");
  if (effort !== null && effort.isString() && (effort.s == "low" || effort.s == "medium" || effort.s == "high") && cap <= MIN_THINKING_BUDGET) return false;
  let present = false;
  const fields = ["max_completion_tokens", "max_tokens"];
  for (let i = 0; i < fields.length; i++) {
    const v = req.get(fields[i]);
    if (v === null || v.isNull()) continue;
    present = true;
    if (v.isNumber() && v.n > <f64>cap) req.set(fields[i], JsonValue.int(cap));
  }
  if (!present) req.set("max_completion_tokens", JsonValue.int(cap));
  return true;
}
