// Token estimates for when a provider reports no usage (a client that hung up mid-stream, a
// server that never sends usage). Deliberately simple and cheap: about four characters of
// English per token for GPT/Claude/Gemini tokenizers; never zero for non-empty text, so a cut
// stream is never free.

export function estimateTokens(chars: i64): i64 {
  if (chars <= 0) return 0;
  const t = (chars + 3) / 4;
  return t < 1 ? 1 : t;
}

/**
 * Prompt tokens from a JSON request body's size: the JSON punctuation and field names roughly
 * cancel the per-message overhead the tokenizers add, so bytes/4 tracks the real count within
 * tens of percent for chat requests.
 */
export function estimatePromptTokens(bodyBytes: i64): i64 {
  return estimateTokens(bodyBytes);
}
