// The one usage record of a request (ARCHITECTURE.md): written to filter state once, read by
// ai-ratelimit and the access log.
import { setFilterState } from "./sdk";
import {
  PROMPT_TOKENS, COMPLETION_TOKENS, TOTAL_TOKENS, CACHED_TOKENS, REASONING_TOKENS, USAGE_SOURCE,
} from "./keys";

export function writeUsageRecord(prompt: i64, completion: i64, total: i64, cached: i64, reasoning: i64, source: string): void {
  setFilterState(PROMPT_TOKENS, prompt.toString());
  setFilterState(COMPLETION_TOKENS, completion.toString());
  setFilterState(TOTAL_TOKENS, total.toString());
  setFilterState(CACHED_TOKENS, cached.toString());
  setFilterState(REASONING_TOKENS, reasoning.toString());
  setFilterState(USAGE_SOURCE, source);
}
