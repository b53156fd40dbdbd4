// POST /v1/messages/count_tokens, Anthropic's token counting (Claude Code asks it before a turn),
// and Gemini's :countTokens. An instance of the client's own provider answers it itself: the body
// goes on as the client sent it (Anthropic's with only the upstream model set), and the answer
// comes back as it is. No other provider has such an endpoint,
// so for them the gateway answers with its own estimate of the prompt (the one balancing and the
// usage record use), marked as an estimate: x-sluice-token-count: estimate. A count generates
// nothing, so nothing is charged: the usage record holds zeros.
import { FilterHeadersStatusValues, RESPONSE_HEADERS, getHeader, replaceHeader, sendLocalResponse, setFilterState } from "../../lib/sdk";
import * as keys from "../../lib/keys";
import { Instance, Provider, Upstream } from "../../providers/types";
import { failureCause, reportOutcome } from "./outcome";
import { recordNothing } from "./record";
import { releaseInflight } from "./selection";
import { Exchange } from "./state";
import { CLIENT_GEMINI, speaksClient } from "./client";

/** The instance's own count endpoint, or null when the gateway estimates (or hides the provider's errors). */
export function countTokensUpstream(x: Exchange): Upstream | null {
  // Only an instance of the client's own API can count the client's body.
  if (x.redacts() || !speaksClient(x.provider as Provider, x.client)) return null;
  return (x.provider as Provider).countTokensUpstream(x.inst as Instance, x.upstreamModel);
}

/** Answers {"input_tokens": N} (Gemini's countTokens: {"totalTokens": N}) from the gateway's estimate. */
export function answerEstimate(x: Exchange): void {
  x.replied = true;
  x.usageWritten = true;
  releaseInflight(x);
  setFilterState(keys.REQUEST_TYPE, x.requestType());
  setFilterState(keys.REQUEST_MODEL, x.requestModel);
  const n = x.promptEstimate.toString();
  const body = x.client == CLIENT_GEMINI ? '{"totalTokens":' + n + "}" : '{"input_tokens":' + n + "}";
  sendLocalResponse(200, "sluice_token_count_estimate", String.UTF8.encode(body), [
    "content-type", "application/json",
    "x-sluice-token-count", "estimate",
  ]);
}

/** The instance's answer to a count: passed on as it is; its status still tells the instance's health. */
export function countTokensAnswered(x: Exchange): FilterHeadersStatusValues {
  const status = getHeader(RESPONSE_HEADERS, ":status");
  x.status = status !== null ? <u32>U32.parseInt(status as string) : 0;
  reportOutcome(x, failureCause(x), RESPONSE_HEADERS);
  if (x.settings.instanceHeader) replaceHeader(RESPONSE_HEADERS, "x-sluice-instance", (x.inst as Instance).name);
  recordNothing(x);
  return FilterHeadersStatusValues.Continue;
}
