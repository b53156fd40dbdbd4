// Anthropic Messages API: POST /v1/messages (plain and SSE), POST /v1/messages/count_tokens, GET /v1/models.
//
// Wire facts: `x-api-key` and `anthropic-version` headers are required (401 authentication_error "x-api-key header is required",
// 400 invalid_request_error "anthropic-version: header is required"); errors are {"type":"error","error":{"type","message"},"request_id"};
// 429 rate_limit_error with retry-after and anthropic-ratelimit-* headers; 529 overloaded_error.
// Streams: `event: <type>\ndata: <json>\n\n` in the order message_start, content_block_start, ping, content_block_delta…,
// content_block_stop, (more blocks), message_delta (stop_reason + usage.output_tokens), message_stop; an `error` event may arrive mid-stream.
import {
  bearer,
  chunkText,
  decideReply,
  fragments,
  isObject,
  keyAccepted,
  type Conversation,
  type Ctx,
  type InjectedError,
  type Outcome,
  type ProviderModule,
  type Reply,
  type Turn,
} from "./common.js";
import { rawOutcome } from "./openai.js";

const TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  403: "permission_error",
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  500: "api_error",
  529: "overloaded_error",
};

function requestId(ctx: Ctx): string {
  return `req_011C${ctx.id("request-id", 20)}`;
}

function errBody(ctx: Ctx, type: string, message: string) {
  return { type: "error", error: { type, message }, request_id: requestId(ctx) };
}

function err(ctx: Ctx, status: number, message: string, headers: Record<string, string> = {}, type?: string): Outcome {
  return {
    type: "json",
    status,
    headers: { "content-type": "application/json", "request-id": requestId(ctx), "x-should-retry": String(status === 429 || status >= 500), ...headers },
    body: errBody(ctx, type ?? TYPES[status] ?? (status >= 500 ? "api_error" : "invalid_request_error"), message),
  };
}

const bad = (ctx: Ctx, message: string) => err(ctx, 400, message);

function rateHeaders(limited: boolean, now: number, retryAfter = 0): Record<string, string> {
  const reset = new Date(Math.floor(now / 1000) * 1000 + retryAfter * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
  return {
    "anthropic-ratelimit-requests-limit": "4000",
    "anthropic-ratelimit-requests-remaining": limited ? "0" : "3999",
    "anthropic-ratelimit-requests-reset": reset,
    "anthropic-ratelimit-input-tokens-limit": "400000",
    "anthropic-ratelimit-input-tokens-remaining": limited ? "0" : "399000",
    "anthropic-ratelimit-input-tokens-reset": reset,
    "anthropic-ratelimit-output-tokens-limit": "80000",
    "anthropic-ratelimit-output-tokens-remaining": limited ? "0" : "79000",
    "anthropic-ratelimit-output-tokens-reset": reset,
    "anthropic-ratelimit-tokens-limit": "480000",
    "anthropic-ratelimit-tokens-remaining": limited ? "0" : "478000",
    "anthropic-ratelimit-tokens-reset": reset,
  };
}

function injected(ctx: Ctx, inj: InjectedError, model: string): Outcome {
  if (inj.body !== undefined) return { type: "json", status: inj.status, headers: inj.headers, body: inj.body };
  if (inj.status === 429) {
    const ra = inj.retryAfter ?? 1;
    return err(
      ctx,
      429,
      inj.message ??
        `This request would exceed your organization's rate limit of 50 requests per minute (org: 00000000-0000-4000-8000-000000000000, model: ${model}). For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase.`,
      { ...rateHeaders(true, ctx.now(), ra), "retry-after": String(ra), ...inj.headers },
      inj.type,
    );
  }
  if (inj.status === 529) return err(ctx, 529, inj.message ?? "Overloaded", inj.headers, inj.type);
  if (inj.status >= 500) return err(ctx, inj.status, inj.message ?? "Internal server error", inj.headers, inj.type ?? "api_error");
  return err(ctx, inj.status, inj.message ?? "Invalid request", inj.headers, inj.type);
}

// ---------- validation ----------

const FIELDS = [
  "model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature", "top_p", "top_k", "tools",
  "tool_choice", "metadata", "thinking", "service_tier", "container", "mcp_servers", "context_management", "output_format",
  "output_config",
];
const BLOCK_TYPES = [
  "text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking", "search_result",
  "server_tool_use", "web_search_tool_result", "container_upload",
];

function blocksOf(content: unknown): any[] {
  return typeof content === "string" ? [{ type: "text", text: content }] : Array.isArray(content) ? content : [];
}

function validate(ctx: Ctx): Outcome | null {
  if (ctx.parseError) return bad(ctx, "There was an issue with the format or content of your request: the body is not valid JSON.");
  if (!isObject(ctx.json)) return bad(ctx, "The request body must be a JSON object.");
  const b = ctx.json;
  for (const k of Object.keys(b)) if (!FIELDS.includes(k) && !(ctx.opts.extraFields ?? []).includes(k)) return bad(ctx, `${k}: Extra inputs are not permitted`);
  if (b.model === undefined) return bad(ctx, "model: Field required");
  if (typeof b.model !== "string") return bad(ctx, "model: Input should be a valid string");
  if (b.max_tokens === undefined) return bad(ctx, "max_tokens: Field required");
  if (!Number.isInteger(b.max_tokens)) return bad(ctx, "max_tokens: Input should be a valid integer");
  if (b.max_tokens < 1) return bad(ctx, "max_tokens: Input should be greater than or equal to 1");
  if (b.messages === undefined) return bad(ctx, "messages: Field required");
  if (!Array.isArray(b.messages)) return bad(ctx, "messages: Input should be a valid list");
  if (b.messages.length === 0) return bad(ctx, "messages: at least one message is required");
  if (typeof b.temperature === "number" && (b.temperature < 0 || b.temperature > 1)) {
    return bad(ctx, b.temperature > 1 ? "temperature: Input should be less than or equal to 1" : "temperature: Input should be greater than or equal to 0");
  }
  if (b.system !== undefined && typeof b.system !== "string") {
    if (!Array.isArray(b.system)) return bad(ctx, "system: Input should be a valid string");
    for (let i = 0; i < b.system.length; i++) if (!isObject(b.system[i]) || b.system[i].type !== "text") return bad(ctx, `system.${i}.type: Input should be 'text'`);
  }
  if (b.stop_sequences !== undefined && !(Array.isArray(b.stop_sequences) && b.stop_sequences.every((s: unknown) => typeof s === "string"))) {
    return bad(ctx, "stop_sequences: Input should be a valid list");
  }
  if (b.thinking !== undefined) {
    if (!isObject(b.thinking) || !["enabled", "disabled"].includes(b.thinking.type)) return bad(ctx, "thinking: Input tag does not match any of the expected tags: 'enabled', 'disabled'");
    if (b.thinking.type === "enabled") {
      if (!Number.isInteger(b.thinking.budget_tokens)) return bad(ctx, "thinking.enabled.budget_tokens: Field required");
      if (b.thinking.budget_tokens < 1024) return bad(ctx, "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024");
      if (b.thinking.budget_tokens >= b.max_tokens) {
        return bad(
          ctx,
          "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size",
        );
      }
    }
  }
  if (b.output_config !== undefined) {
    const oc = b.output_config;
    if (!isObject(oc)) return bad(ctx, "output_config: Input should be a valid dictionary");
    const f = oc.format;
    if (f !== undefined && f !== null && (!isObject(f) || f.type !== "json_schema" || !isObject(f.schema))) {
      return bad(ctx, "output_config.format: Input tag does not match the expected tag: 'json_schema' (with a schema object)");
    }
    // Structured outputs exist on Claude 4.5 and later (the older ids of ANTHROPIC_MODELS answer 400).
    if (isObject(f) && !/claude-(opus|sonnet|haiku)-(4-[5-9]|[5-9])/.test(b.model)) {
      return bad(ctx, `'${b.model}' does not support output_config.format.`);
    }
  }
  if (b.output_format !== undefined) return bad(ctx, "output_format: use output_config.format (the structured outputs beta parameter moved there)");
  if (b.tools !== undefined) {
    if (!Array.isArray(b.tools)) return bad(ctx, "tools: Input should be a valid list");
    for (let i = 0; i < b.tools.length; i++) {
      const t = b.tools[i];
      if (!isObject(t)) return bad(ctx, `tools.${i}: Input should be a valid dictionary`);
      if (t.type !== undefined && t.type !== "custom") continue; // server tools (web_search_…, bash_…) carry their own shapes
      if (typeof t.name !== "string") return bad(ctx, `tools.${i}.custom.name: Field required`);
      if (!/^[a-zA-Z0-9_-]{1,128}$/.test(t.name)) return bad(ctx, `tools.${i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'`);
      if (!isObject(t.input_schema)) return bad(ctx, `tools.${i}.custom.input_schema: Field required`);
    }
  }
  if (b.tool_choice !== undefined) {
    const tc = b.tool_choice;
    if (!isObject(tc) || !["auto", "any", "tool", "none"].includes(tc.type)) {
      return bad(ctx, "tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'");
    }
    if (tc.type === "tool" && typeof tc.name !== "string") return bad(ctx, "tool_choice.tool.name: Field required");
    // Extended thinking takes tool_choice auto or none only (Anthropic's extended thinking page, "Extended thinking with tool use").
    if ((tc.type === "tool" || tc.type === "any") && isObject(b.thinking) && b.thinking.type === "enabled") {
      return bad(ctx, "Thinking may not be enabled when tool_choice forces tool use.");
    }
  }
  let pendingToolUse: string[] = [];
  let pendingAt = -1;
  for (let i = 0; i < b.messages.length; i++) {
    const m = b.messages[i];
    if (!isObject(m)) return bad(ctx, `messages.${i}: Input should be a valid dictionary`);
    if (m.role === "system") {
      return bad(ctx, 'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, not "system" as an input message role.');
    }
    if (m.role !== "user" && m.role !== "assistant") return bad(ctx, `messages.${i}.role: Input should be 'user' or 'assistant'`);
    if (m.content === undefined) return bad(ctx, `messages.${i}.content: Field required`);
    if (typeof m.content !== "string" && !Array.isArray(m.content)) return bad(ctx, `messages.${i}.content: Input should be a valid list`);
    const blocks = blocksOf(m.content);
    for (let j = 0; j < blocks.length; j++) {
      const blk = blocks[j];
      if (!isObject(blk) || typeof blk.type !== "string") return bad(ctx, `messages.${i}.content.${j}: Input should be a valid dictionary`);
      if (!BLOCK_TYPES.includes(blk.type)) {
        return bad(ctx, `messages.${i}.content.${j}: Input tag '${blk.type}' found using 'type' does not match any of the expected tags: ${BLOCK_TYPES.map((t) => `'${t}'`).join(", ")}`);
      }
      if (blk.type === "text" && typeof blk.text !== "string") return bad(ctx, `messages.${i}.content.${j}.text.text: Field required`);
      if (blk.type === "text" && blk.text === "" && typeof m.content !== "string") return bad(ctx, `messages: text content blocks must be non-empty`);
      if (blk.type === "image") {
        const s = blk.source;
        if (!isObject(s)) return bad(ctx, `messages.${i}.content.${j}.image.source: Field required`);
        if (s.type === "base64") {
          if (!["image/jpeg", "image/png", "image/gif", "image/webp"].includes(s.media_type)) {
            return bad(ctx, `messages.${i}.content.${j}.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'`);
          }
          if (typeof s.data !== "string") return bad(ctx, `messages.${i}.content.${j}.image.source.base64.data: Field required`);
        } else if (s.type === "url") {
          if (typeof s.url !== "string") return bad(ctx, `messages.${i}.content.${j}.image.source.url.url: Field required`);
        } else if (s.type !== "file") {
          return bad(ctx, `messages.${i}.content.${j}.image.source: Input tag '${s.type}' found using 'type' does not match any of the expected tags: 'base64', 'url', 'file'`);
        }
      }
      if (blk.type === "tool_use" && (typeof blk.id !== "string" || typeof blk.name !== "string" || !isObject(blk.input))) {
        return bad(ctx, `messages.${i}.content.${j}.tool_use: id, name and input are required`);
      }
      if (blk.type === "tool_result" && typeof blk.tool_use_id !== "string") return bad(ctx, `messages.${i}.content.${j}.tool_result.tool_use_id: Field required`);
    }
    if (pendingToolUse.length) {
      const results = blocks.filter((x) => x?.type === "tool_result").map((x) => x.tool_use_id as string);
      const missing = pendingToolUse.filter((id) => !results.includes(id));
      if (m.role !== "user" || missing.length) {
        return bad(
          ctx,
          `messages.${pendingAt}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(", ")}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`,
        );
      }
    }
    const prev = i > 0 ? blocksOf(b.messages[i - 1].content) : [];
    const prevIds = b.messages[i - 1]?.role === "assistant" ? prev.filter((x) => x?.type === "tool_use").map((x) => x.id) : [];
    const results = blocks.map((x, j) => [x, j] as const).filter(([x]) => x?.type === "tool_result");
    for (const [x, j] of results) {
      if (!prevIds.includes(x.tool_use_id)) {
        return bad(
          ctx,
          `messages.${i}.content.${j}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${x.tool_use_id}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`,
        );
      }
    }
    pendingToolUse = m.role === "assistant" ? blocks.filter((x) => x?.type === "tool_use").map((x) => x.id) : [];
    pendingAt = i;
  }
  if (pendingToolUse.length && b.messages[b.messages.length - 1].role === "assistant") {
    // A trailing assistant message with tool_use and nothing after it is a prefill the API rejects.
    return bad(
      ctx,
      `messages.${pendingAt}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${pendingToolUse.join(", ")}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`,
    );
  }
  return null;
}

// ---------- conversation ----------

function resultText(content: unknown): string {
  if (typeof content === "string") return content;
  return blocksOf(content)
    .filter((x) => x?.type === "text")
    .map((x) => x.text)
    .join("\n");
}

export function anthropicConversation(b: any): Conversation {
  const turns: Turn[] = [];
  for (const m of b.messages) {
    const blocks = blocksOf(m.content);
    const text = blocks.filter((x) => x.type === "text").map((x) => x.text).join("\n");
    const images = blocks.filter((x) => x.type === "image" || x.type === "document").length;
    if (m.role === "assistant") {
      const calls = blocks.filter((x) => x.type === "tool_use").map((x) => ({ id: x.id, name: x.name, args: JSON.stringify(x.input) }));
      turns.push({ role: "assistant", text, images, toolCalls: calls.length ? calls : undefined });
    } else {
      const results = blocks.filter((x) => x.type === "tool_result").map((x) => ({ id: x.tool_use_id, content: resultText(x.content) }));
      if (results.length) turns.push({ role: "tool", text, images, toolResults: results });
      else turns.push({ role: "user", text, images });
    }
  }
  const system = typeof b.system === "string" ? b.system : Array.isArray(b.system) ? b.system.map((x: any) => x.text).join("\n") : "";
  const tc = b.tool_choice;
  return {
    model: b.model,
    system,
    turns,
    tools: (b.tools ?? []).filter((t: any) => t.input_schema).map((t: any) => ({ name: t.name, schema: t.input_schema })),
    toolChoice: !tc || tc.type === "auto" ? { mode: "auto" } : tc.type === "none" ? { mode: "none" } : tc.type === "any" ? { mode: "required" } : { mode: "required", name: tc.name },
    maxTokens: b.max_tokens,
    stop: b.stop_sequences ?? [],
    wantsReasoning: isObject(b.thinking) && b.thinking.type === "enabled",
    json: isObject(b.output_config?.format) ? b.output_config.format.schema : undefined,
  };
}

// ---------- responses ----------

function stopReason(r: Reply): string {
  if (r.nativeFinish) return r.nativeFinish;
  if (r.finish === "tool_calls") return "tool_use";
  if (r.finish === "length") return "max_tokens";
  return r.stopSequence !== null ? "stop_sequence" : "end_turn";
}

function usageOf(r: Reply) {
  return {
    input_tokens: Math.max(0, r.usage.input - r.usage.cached - r.usage.cacheCreation),
    cache_creation_input_tokens: r.usage.cacheCreation,
    cache_read_input_tokens: r.usage.cached,
    cache_creation: { ephemeral_5m_input_tokens: r.usage.cacheCreation, ephemeral_1h_input_tokens: 0 },
    output_tokens: r.usage.output + r.usage.reasoning,
    service_tier: "standard",
  };
}

function signature(ctx: Ctx): string {
  return `Eq${ctx.id("signature", 86, "b64url")}==`;
}

export function anthropicMessage(ctx: Ctx, model: string, r: Reply) {
  const content: unknown[] = [];
  if (r.reasoning) content.push({ type: "thinking", thinking: r.reasoning, signature: signature(ctx) });
  if (r.text) content.push({ type: "text", text: r.text });
  for (const c of r.toolCalls) content.push({ type: "tool_use", id: c.id, name: c.name, input: JSON.parse(c.args || "{}") });
  return {
    id: `msg_01${ctx.id("msg", 22)}`,
    type: "message",
    role: "assistant",
    model,
    content,
    stop_reason: stopReason(r),
    stop_sequence: r.stopSequence,
    usage: usageOf(r),
  };
}

const ev = (type: string, data: unknown) => `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;

export function anthropicStream(ctx: Ctx, model: string, r: Reply): string[] {
  const chunks = ctx.switches.chunks;
  const u = usageOf(r);
  const frames = [
    ev("message_start", {
      type: "message_start",
      message: {
        id: `msg_01${ctx.id("msg", 22)}`,
        type: "message",
        role: "assistant",
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { ...u, output_tokens: 1 },
      },
    }),
  ];
  let index = 0;
  let pinged = false;
  const ping = () => {
    if (!pinged) frames.push(ev("ping", { type: "ping" }));
    pinged = true;
  };
  if (r.reasoning) {
    frames.push(ev("content_block_start", { type: "content_block_start", index, content_block: { type: "thinking", thinking: "" } }));
    ping();
    for (const piece of chunkText(r.reasoning, chunks)) frames.push(ev("content_block_delta", { type: "content_block_delta", index, delta: { type: "thinking_delta", thinking: piece } }));
    frames.push(ev("content_block_delta", { type: "content_block_delta", index, delta: { type: "signature_delta", signature: signature(ctx) } }));
    frames.push(ev("content_block_stop", { type: "content_block_stop", index }));
    index++;
  }
  if (r.text || (!r.toolCalls.length && !r.reasoning)) {
    frames.push(ev("content_block_start", { type: "content_block_start", index, content_block: { type: "text", text: "" } }));
    ping();
    for (const piece of chunkText(r.text, chunks)) frames.push(ev("content_block_delta", { type: "content_block_delta", index, delta: { type: "text_delta", text: piece } }));
    frames.push(ev("content_block_stop", { type: "content_block_stop", index }));
    index++;
  }
  for (const c of r.toolCalls) {
    frames.push(ev("content_block_start", { type: "content_block_start", index, content_block: { type: "tool_use", id: c.id, name: c.name, input: {} } }));
    ping();
    for (const piece of ["", ...fragments(c.args, chunks)]) {
      frames.push(ev("content_block_delta", { type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: piece } }));
    }
    frames.push(ev("content_block_stop", { type: "content_block_stop", index }));
    index++;
  }
  frames.push(
    ev("message_delta", { type: "message_delta", delta: { stop_reason: stopReason(r), stop_sequence: r.stopSequence }, usage: { output_tokens: u.output_tokens } }),
  );
  frames.push(ev("message_stop", { type: "message_stop" }));
  return frames;
}

export function anthropicErrorEvent(status: number): string {
  const type = status === 529 ? "overloaded_error" : status === 429 ? "rate_limit_error" : "api_error";
  return ev("error", { type: "error", error: { type, message: status === 529 ? "Overloaded" : "Internal server error" } });
}

export const ANTHROPIC_MODELS = ["claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805", "claude-3-5-haiku-20241022"];

export const anthropic: ProviderModule = {
  kind: "anthropic",
  handle(ctx) {
    const path = ctx.path.replace(/\/+$/, "");
    // Vertex AI serves Claude at a project's publisher path (:rawPredict, :streamRawPredict) with a
    // Bearer access token; the model is in the path, and the body names anthropic_version instead.
    const vertex = /^\/v1\/projects\/[^/]+\/locations\/[^/]+\/publishers\/anthropic\/models\/([^/:]+):(rawPredict|streamRawPredict)$/.exec(path);
    if (vertex && ctx.method === "POST") {
      const token = bearer(ctx.headers);
      if (!token || !keyAccepted(ctx.opts, token)) return err(ctx, 401, "Request had invalid authentication credentials.");
      if (!isObject(ctx.json)) return bad(ctx, "The request body must be a JSON object.");
      if (ctx.json.anthropic_version !== "vertex-2023-10-16") return bad(ctx, "anthropic_version: Input should be 'vertex-2023-10-16'");
      if (ctx.json.model !== undefined) return bad(ctx, "model: Extra inputs are not permitted (the model is in the URL)");
      if ((vertex[2] === "streamRawPredict") !== (ctx.json.stream === true)) return bad(ctx, "stream: must be true for streamRawPredict and absent or false for rawPredict");
      const { anthropic_version: _v, ...rest } = ctx.json;
      ctx.json = { ...rest, model: decodeURIComponent(vertex[1]) };
    }
    const routes = ["POST /v1/messages", "POST /v1/messages/count_tokens", "GET /v1/models"];
    const route = vertex && ctx.method === "POST" ? "POST /v1/messages" : `${ctx.method} ${path}`;
    if (!routes.includes(route)) return err(ctx, 404, "Not Found");
    if (!vertex) {
      const key = ctx.headers["x-api-key"];
      if (typeof key !== "string" || key === "") return err(ctx, 401, "x-api-key header is required");
      if (!keyAccepted(ctx.opts, key)) return err(ctx, 401, "invalid x-api-key");
      if (typeof ctx.headers["anthropic-version"] !== "string" || ctx.headers["anthropic-version"] === "") return bad(ctx, "anthropic-version: header is required");
    }
    const ok = { "request-id": requestId(ctx), "anthropic-organization-id": "00000000-0000-4000-8000-000000000000", ...rateHeaders(false, ctx.now()) };
    if (route === "GET /v1/models") {
      const ids = ctx.opts.models ?? ANTHROPIC_MODELS;
      return {
        type: "json",
        status: 200,
        headers: ok,
        body: {
          data: ids.map((id) => ({ type: "model", id, display_name: id, created_at: "2025-01-01T00:00:00Z" })),
          has_more: false,
          first_id: ids[0] ?? null,
          last_id: ids[ids.length - 1] ?? null,
        },
      };
    }
    if (route === "POST /v1/messages/count_tokens") {
      if (!isObject(ctx.json) || !Array.isArray(ctx.json.messages)) return bad(ctx, "messages: Field required");
      const conv = anthropicConversation({ max_tokens: 1, ...ctx.json });
      return { type: "json", status: 200, headers: ok, body: { input_tokens: decideReply(conv, undefined, () => "x").usage.input } };
    }
    const invalid = validate(ctx);
    if (invalid) return invalid;
    const model: string = ctx.json.model;
    if (ctx.opts.models && !ctx.opts.models.includes(model)) return err(ctx, 404, `model: ${model}`);
    const { step, injected: inj } = ctx.begin();
    if (step?.raw) return rawOutcome(step.raw);
    if (inj) return injected(ctx, inj, model);
    const conv = anthropicConversation(ctx.json);
    const reply = decideReply(conv, step, (i) => `toolu_01${ctx.id(`tool${i}`, 22)}`);
    if (ctx.json.stream === true) {
      return {
        type: "sse",
        headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", ...ok },
        frames: anthropicStream(ctx, model, reply),
        errorFrame: anthropicErrorEvent,
      };
    }
    return { type: "json", status: 200, headers: ok, body: anthropicMessage(ctx, model, reply) };
  },
};
