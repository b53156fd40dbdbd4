// The one usage record of a request (docs/architecture.md): written to filter state once, read by
// ai-ratelimit and the access log.
import { setFilterState, setFilterStateInt } from "./sdk";
import {
  PROMPT_TOKENS, COMPLETION_TOKENS, TOTAL_TOKENS, CACHED_TOKENS, REASONING_TOKENS, USAGE_SOURCE,
} from "./keys";

export function writeUsageRecord(prompt: i64, completion: i64, total: i64, cached: i64, reasoning: i64, source: string): void {
  setFilterStateInt(PROMPT_TOKENS, prompt);
  setFilterStateInt(COMPLETION_TOKENS, completion);
  setFilterStateInt(TOTAL_TOKENS, total);
  setFilterStateInt(CACHED_TOKENS, cached);
  setFilterStateInt(REASONING_TOKENS, reasoning);
  setFilterState(USAGE_SOURCE, source);
}
