// The HCM's local_reply_config: Envoy's own errors in the client's API shape.

/** An error body in each client API's shape for Envoy's own local replies (local_reply_config). */
const ANTHROPIC_ERROR = (type: string) => ({ type: "error", error: { type, message: "%LOCAL_REPLY_BODY%" } });
const OPENAI_ERROR = (type: string, code: string) => ({ error: { message: "%LOCAL_REPLY_BODY%", type, code } });

// An Anthropic client: the mappers see the request headers as the filters left them, and ai-proxy
// rewrites :path to the provider's; anthropic-version (required by Anthropic's API, sent by its
// SDKs) stays, as does the path when the provider speaks Anthropic too.
export const ANTHROPIC_CLIENT = {
  or_filter: {
    filters: [
      { header_filter: { header: { name: ":path", string_match: { prefix: "/v1/messages" } } } },
      { header_filter: { header: { name: "anthropic-version", present_match: true } } },
    ],
  },
};

/**
 * The HCM's local_reply_config: Envoy's own answers that no filter can shape, in the client's API
 * shape (Anthropic for an Anthropic client, OpenAI otherwise). Envoy applies it to every local reply, the
 * filters' included, so each mapper matches only what Envoy itself sends:
 * - 503 with response flag UC or UR: the provider's connection ended in the middle of an answer a
 *   filter still held (router onUpstreamReset; sendLocalReply answers directly, past the filters).
 *   Before any answer the same reply goes through ai-proxy, which keeps its own wording (it reads
 *   response.code_details) and may fall back. Rewritten to 502.
 * - 500: a buffered answer past the stream's buffer limit (responseDataTooLarge). Rewritten to 502.
 * - 504 with response flag UT: the route timeout (router onResponseTimeout), directly once a filter
 *   holds the answer; before any answer ai-proxy sees it and keeps its own wording. Stays 504.
 * - 429 with response flag RL: Envoy's global rate limit filter refused the request (distributed token
 *   limits; ratelimit.cc sets CoreResponseFlag::RateLimited and sends an empty 429). Its body is made
 *   the same error ai-ratelimit's own 429 carries, so an SDK reads both alike. ai-ratelimit's 429 has
 *   no response flag and keeps its own body and x-ratelimit-* headers.
 * Envoy's own 413 (a body past the route's request_body_buffer_limit) is not mapped: that limit is
 * rendered above ai-proxy's max_request_body_bytes, so ai-proxy's 413 in the client's shape comes
 * first, and a filter's 413 must not be rewritten (a mapper cannot tell the two apart by status).
 * `extraMappers` come first: those of Envoy's own filters in the chain (native-replies.ts).
 */
export function localReplyConfig(extraMappers: unknown[] = []): Record<string, unknown> {
  const status = (code: number, key: string) => ({ status_code_filter: { comparison: { op: "EQ", value: { default_value: code, runtime_key: `sluice.local_reply.${key}` } } } });
  const cases: { when: unknown[]; message: string; code: string; status: number; openaiType?: string; anthropicType?: string }[] = [
    {
      when: [status(503, "upstream_reset"), { response_flag_filter: { flags: ["UC", "UR"] } }],
      message: "The provider closed the connection before its answer was complete.",
      code: "upstream_reset",
      status: 502,
    },
    { when: [status(500, "response_too_large")], message: "The provider's answer is larger than the gateway's buffer limit.", code: "upstream_response_too_large", status: 502 },
    {
      when: [status(504, "upstream_timeout"), { response_flag_filter: { flags: ["UT"] } }],
      message: "The provider did not answer in time.",
      code: "upstream_timeout",
      status: 504,
    },
    {
      when: [status(429, "rate_limited"), { response_flag_filter: { flags: ["RL"] } }],
      message: "Token limit exceeded: the gateway's shared rate limit refused the request.",
      code: "rate_limit_exceeded",
      status: 429,
      openaiType: "tokens",
      anthropicType: "rate_limit_error",
    },
  ];
  const mappers: unknown[] = [];
  for (const c of cases) {
    mappers.push({
      filter: { and_filter: { filters: [...c.when, ANTHROPIC_CLIENT] } },
      status_code: c.status,
      body: { inline_string: c.message },
      body_format_override: { json_format: ANTHROPIC_ERROR(c.anthropicType ?? "api_error") },
    });
    mappers.push({
      filter: c.when.length > 1 ? { and_filter: { filters: c.when } } : c.when[0],
      status_code: c.status,
      body: { inline_string: c.message },
      body_format_override: { json_format: OPENAI_ERROR(c.openaiType ?? "api_error", c.code) },
    });
  }
  // Mappers of the native filters' denials (native-replies.ts) match on their own metadata and flags.
  return { mappers: [...extraMappers, ...mappers] };
}
