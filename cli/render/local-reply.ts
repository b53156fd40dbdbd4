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
/** A status_code_filter for one status, with its runtime key (sluice.local_reply.<key>). */
export function statusIs(code: number, key: string) {
  return { status_code_filter: { comparison: { op: "EQ", value: { default_value: code, runtime_key: `sluice.local_reply.${key}` } } } };
}

/** One local reply Envoy sends (all of `when` hold), rewritten into each client's error shape. */
export interface ShapedReply {
  when: unknown[];
  /** A fixed message; otherwise the reply's own text (%LOCAL_REPLY_BODY%). */
  message?: string;
  /** A new status; otherwise the reply's own. */
  status?: number;
  openai: { type: string; code: string };
  anthropic: string;
}

/** Its two mappers: an Anthropic client's (ANTHROPIC_CLIENT) first, then everyone else's in OpenAI's shape. */
export function shapedMappers(r: ShapedReply): unknown[] {
  const rewrite = { ...(r.status !== undefined ? { status_code: r.status } : {}), ...(r.message !== undefined ? { body: { inline_string: r.message } } : {}) };
  return [
    { filter: { and_filter: { filters: [...r.when, ANTHROPIC_CLIENT] } }, ...rewrite, body_format_override: { json_format: ANTHROPIC_ERROR(r.anthropic) } },
    { filter: r.when.length > 1 ? { and_filter: { filters: r.when } } : r.when[0], ...rewrite, body_format_override: { json_format: OPENAI_ERROR(r.openai.type, r.openai.code) } },
  ];
}

export function localReplyConfig(extraMappers: unknown[] = []): Record<string, unknown> {
  const replies: ShapedReply[] = [
    {
      when: [statusIs(503, "upstream_reset"), { response_flag_filter: { flags: ["UC", "UR"] } }],
      message: "The provider closed the connection before its answer was complete.",
      status: 502,
      openai: { type: "api_error", code: "upstream_reset" },
      anthropic: "api_error",
    },
    {
      when: [statusIs(500, "response_too_large")],
      message: "The provider's answer is larger than the gateway's buffer limit.",
      status: 502,
      openai: { type: "api_error", code: "upstream_response_too_large" },
      anthropic: "api_error",
    },
    {
      when: [statusIs(504, "upstream_timeout"), { response_flag_filter: { flags: ["UT"] } }],
      message: "The provider did not answer in time.",
      status: 504,
      openai: { type: "api_error", code: "upstream_timeout" },
      anthropic: "api_error",
    },
    {
      when: [statusIs(429, "rate_limited"), { response_flag_filter: { flags: ["RL"] } }],
      message: "Token limit exceeded: the gateway's shared rate limit refused the request.",
      status: 429,
      openai: { type: "tokens", code: "rate_limit_exceeded" },
      anthropic: "rate_limit_error",
    },
  ];
  const mappers = replies.flatMap(shapedMappers);
  // Mappers of the native filters' denials (native-replies.ts) match on their own metadata and flags.
  return { mappers: [...extraMappers, ...mappers] };
}
