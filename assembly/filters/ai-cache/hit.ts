// A hit: the stored answer sent as a local reply in the client's API (JSON, or its stream), and the
// request's usage record, which says the provider produced nothing for it: limits, budgets and
// spend count nothing, and what the hit spared is kept beside (cache_saved_tokens, cache_saved_cost).
//
// Envoy sends a local reply from a decoder filter through the encoder filters of every filter that
// saw the request, the sender included (source/common/http/filter_manager.cc,
// sendLocalReplyViaFilterChain), so ai-guard still checks the answer and puts back what it masked in
// this request's prompt.
import { sendLocalResponse, setFilterState, setFilterStateInt, nowNanos } from "../../lib/sdk";
import { ByteBuilder, JsonValue, parseJson, parseJsonAt } from "../../lib/json";
import * as keys from "../../lib/keys";
import { writeUsageRecord } from "../../lib/usage";
import { ChatResult } from "../../providers/types";
import { readOpenAIChat } from "../../providers/openai";
import { CLIENT_OPENAI, streamContentType } from "../ai-proxy/client";
import { Entry } from "./store";
import { Settings } from "./config";
import { writeAnswer, writeStream, storedUsage } from "./replay";
import { countHit, countRequest } from "./metrics";

/** What a hit needs of its request. */
export class HitRequest {
  client: i32 = 0;
  stream: bool = false;
  includeUsage: bool = false;
  geminiArray: bool = false;
  model: string = "";
  startNs: u64 = 0;
}

/**
 * The model of a kept answer, without parsing it: ai-proxy writes it as `,"model":"..."` near the
 * start (client-openai.ts writeOpenAIChat); "" if it is not there.
 */
function modelOf(answer: ArrayBuffer): string {
  const p = changetype<usize>(answer);
  const n = answer.byteLength;
  const at = changetype<usize>(MODEL_MEMBER);
  const m = MODEL_MEMBER.byteLength;
  for (let i = 0; i + m <= n && i < 512; i++) {
    if (memory.compare(p + <usize>i, at, <usize>m) != 0) continue;
    const start = i + m - 1;
    let end = start + 1;
    while (end < n && load<u8>(p + <usize>end) != 0x22) end += load<u8>(p + <usize>end) == 0x5c ? 2 : 1;
    const v = parseJsonAt(p + <usize>start, <usize>(end + 1 - start));
    return v !== null && v.isString() ? v.s : "";
  }
  return "";
}

const MODEL_MEMBER = String.UTF8.encode(',"model":"');

/** Answers from e; false when the stored answer cannot be read (it is then a miss). */
export function serveHit(s: Settings, e: Entry, body: JsonValue, r: HitRequest, kind: string, similarity: f64): bool {
  if (r.client == CLIENT_OPENAI && !r.stream) {
    // Kept as OpenAI's chat.completion with its usage: what an OpenAI client gets, as it is.
    sendLocalResponse(200, "sluice_ai_cache_hit", e.answer, ["content-type", "application/json", "x-sluice-cache", "hit"]);
    record(r, modelOf(e.answer), e, kind, similarity);
    return true;
  }
  const parsed = parseJson(e.answer);
  const result = new ChatResult();
  if (parsed === null || !readOpenAIChat(parsed as JsonValue, result)) return false;
  result.usage = storedUsage(e.promptTokens, e.completionTokens);
  let out: ByteBuilder;
  if (r.stream) {
    out = writeStream(r.client, result, body, r.includeUsage, r.geminiArray, s.replayChunkChars, s.maxEntryBytes * 4);
  } else {
    out = new ByteBuilder(e.answer.byteLength + 512);
    writeAnswer(r.client, result, body, out);
  }
  const headers = ["content-type", r.stream ? streamContentType(r.client, r.geminiArray) : "application/json", "x-sluice-cache", "hit"];
  if (r.stream) {
    headers.push("cache-control");
    headers.push("no-cache");
  }
  sendLocalResponse(200, "sluice_ai_cache_hit", out.toArrayBuffer(), headers);
  record(r, result.model, e, kind, similarity);
  return true;
}

function record(r: HitRequest, answerModel: string, e: Entry, kind: string, similarity: f64): void {
  const ms = <i64>((nowNanos() - r.startNs) / 1000000);
  setFilterState(keys.CACHE, "hit");
  setFilterState(keys.REQUEST_TYPE, r.stream ? "ai_stream" : "ai_chat");
  if (r.model.length) setFilterState(keys.REQUEST_MODEL, r.model);
  if (answerModel.length) setFilterState(keys.MODEL, answerModel);
  setFilterStateInt(keys.TTFT_MS, ms);
  writeUsageRecord(0, 0, 0, 0, 0, "cache");
  setFilterStateInt(keys.COST, 0);
  const saved = (e.promptTokens > 0 ? e.promptTokens : 0) + (e.completionTokens > 0 ? e.completionTokens : 0);
  setFilterStateInt(keys.CACHE_SAVED_TOKENS, saved);
  if (e.costMicros >= 0) setFilterStateInt(keys.CACHE_SAVED_COST, e.costMicros);
  if (kind == "semantic") setFilterState(keys.CACHE_SIMILARITY, fourPlaces(similarity));
  countRequest("hit", kind);
  countHit(saved, e.costMicros, ms);
}

/** x (0 to 1) with four decimals, as the access log shows it. */
export function fourPlaces(x: f64): string {
  const n = <i64>Math.round(x * 10000);
  const frac = (n % 10000).toString();
  return (n / 10000).toString() + "." + "0000".substring(frac.length) + frac;
}
