// The usage a request is charged and shown when the provider did not report all of it: what the
// provider said, the rest estimated. One function, so the usage record and the usage a client
// sees in its stream are the same numbers.
import { Usage } from "../../providers/types";
import { estimateTokens } from "../../lib/tokens";

/**
 * The provider's counts where it reported them; a missing prompt is the gateway's prompt
 * estimate; the completion is at least the estimate from the text generated (a partial count,
 * reported before the stream stopped, can lag what was already sent). A request that reached a
 * provider is never free.
 */
export function estimatedUsage(reported: Usage | null, promptEstimate: i64, chars: i64): Usage {
  const u = new Usage();
  if (reported !== null) {
    u.prompt = reported.prompt;
    u.completion = reported.completion;
    u.cached = reported.cached;
    u.reasoning = reported.reasoning;
    u.cacheWrite = reported.cacheWrite;
  }
  if (u.prompt < 0) u.prompt = promptEstimate > 0 ? promptEstimate : 1;
  const est = estimateTokens(chars);
  if (u.completion < est) u.completion = est;
  u.total = u.prompt + u.completion;
  return u;
}
