// A miss's answer kept: ai-proxy wrote it to filter state (sluice.cache_answer, OpenAI's
// chat.completion with the provider's usage) only when it ended complete, so what is here is an
// answer, and it is kept as it is (a hit reads it). Left out: answers past max_entry_bytes, answers that call tools (unless cache_tool_calls),
// and any answer to a request whose stream was cut on the consumer's budget.
import { getProperty, getFilterState } from "../../lib/sdk";
import * as keys from "../../lib/keys";
import { RootContext } from "../../lib/sdk";
import { Settings } from "./config";
import { AnswerStore, Entry, StoreStats, encodeEntry } from "./store";
import { countStore } from "./metrics";

function intState(key: string): i64 {
  const v = getFilterState(key);
  if (v === null || (v as string).length == 0) return -1;
  return I64.parseInt(v as string);
}

// ai-proxy writes `,"tool_calls":[` into a message only when it calls tools (client-openai.ts
// writeChoiceMessage); inside a JSON string every quote is escaped (`\"`), so these bytes appear
// nowhere else, and a scan finds them without parsing the answer.
const TOOL_CALLS = String.UTF8.encode(',"tool_calls":[');

/** Calls a tool in any choice. */
function callsTools(answer: ArrayBuffer): bool {
  const p = changetype<usize>(answer);
  const n = answer.byteLength;
  const t = changetype<usize>(TOOL_CALLS);
  const m = TOOL_CALLS.byteLength;
  for (let i = 0; i + m <= n; i++) {
    if (load<u8>(p + <usize>i) != 0x2c) continue;
    if (memory.compare(p + <usize>i, t, <usize>m) == 0) return true;
  }
  return false;
}

/** Stores the answer ai-proxy left for key; what became of it is counted (sluice.cache_stores). */
export function keepAnswer(s: Settings, store: AnswerStore, root: RootContext, key: StaticArray<u8>, nowMs: i64): string {
  if (getFilterState(keys.STREAM_CUT) !== null) return done("cut", false);
  const answer = getProperty([keys.CACHE_ANSWER]);
  if (answer === null) return done("incomplete", false);
  if (answer.byteLength == 0) return done("too_large", false);
  if (<i64>answer.byteLength > s.maxEntryBytes) return done("too_large", false);
  if (!s.cacheToolCalls && callsTools(answer)) return done("tool_calls", false);
  const e = new Entry();
  e.expiresMs = nowMs + s.ttlMs;
  e.promptTokens = intState(keys.PROMPT_TOKENS);
  e.completionTokens = intState(keys.COMPLETION_TOKENS);
  e.costMicros = intState(keys.COST);
  const stats = new StoreStats();
  if (!store.keep(key, encodeEntry(key, e, changetype<usize>(answer), answer.byteLength), e.expiresMs, nowMs, root, stats)) return done("refused", false);
  // A remote store counts its outcome when it answers.
  if (stats.pending) return "stored";
  return done("stored", stats.evicted);
}

function done(outcome: string, evicted: bool): string {
  countStore(outcome, evicted);
  return outcome;
}
