// OpenAI: POST /v1/chat/completions (plain and SSE), POST /v1/responses (openai-responses.ts), POST /v1/embeddings, GET /v1/models.
// Also the Chat Completions builders shared by the OpenAI-shaped providers (Azure, DeepSeek, Mistral, OpenAI-compatible).
//
// Wire facts (see README of this folder for sources):
// - SSE frames `data: <chunk>\n\n`, ending `data: [DONE]\n\n`.
// - stream_options.include_usage: one more chunk before [DONE] whose `choices` is [] and `usage` is set; every other chunk has `usage: null`.
// - Tool calls stream as: a delta with index, id, type "function", function.name and arguments "", then argument fragments by index.
// - Errors: {"error":{"message","type","param","code"}}; 429 carries x-ratelimit-* headers.
import {
  bearer,
  partsText,
  chunkText,
  decideReply,
  embeddingVector,
  estimateTokens,
  float32Base64,
  fragments,
  isObject,
  keyAccepted,
  maskKey,
  type Conversation,
  type Ctx,
  type InjectedError,
  type MockKind,
  type Outcome,
  type ProviderModule,
  type Reply,
  type ScriptStep,
  type Turn,
} from "./common.js";
import { responsesConversation, responsesOutcome } from "./openai-responses.js";

// ---------- request → conversation ----------

export function openaiConversation(body: any, model: string): Conversation {
  const turns: Turn[] = [];
  const system: string[] = [];
  for (const m of Array.isArray(body.messages) ? body.messages : []) {
    if (!isObject(m)) continue;
    const { text, images } = partsText(m.content);
    if (m.role === "system" || m.role === "developer") system.push(text);
    else if (m.role === "assistant") {
      const calls = Array.isArray(m.tool_calls)
        ? m.tool_calls.map((c: any) => ({ id: String(c?.id ?? ""), name: String(c?.function?.name ?? ""), args: String(c?.function?.arguments ?? "") }))
        : undefined;
      turns.push({ role: "assistant", text, images, toolCalls: calls });
    } else if (m.role === "tool" || m.role === "function") {
      const prev = turns[turns.length - 1];
      const result = { id: String(m.tool_call_id ?? m.name ?? ""), name: m.name, content: text };
      if (prev?.role === "tool") prev.toolResults!.push(result);
      else turns.push({ role: "tool", text: "", images: 0, toolResults: [result] });
    } else turns.push({ role: "user", text, images });
  }
  const tools = (Array.isArray(body.tools) ? body.tools : [])
    .filter((t: any) => isObject(t) && isObject(t.function))
    .map((t: any) => ({ name: String(t.function.name), schema: t.function.parameters }));
  for (const f of Array.isArray(body.functions) ? body.functions : []) if (isObject(f)) tools.push({ name: String(f.name), schema: f.parameters });
  const tc = body.tool_choice;
  const toolChoice: Conversation["toolChoice"] =
    tc === "none"
      ? { mode: "none" }
      : tc === "required" || tc === "any"
        ? { mode: "required" }
        : isObject(tc) && isObject(tc.function)
          ? { mode: "required", name: String(tc.function.name) }
          : { mode: "auto" };
  const max = body.max_completion_tokens ?? body.max_tokens;
  const stop = typeof body.stop === "string" ? [body.stop] : Array.isArray(body.stop) ? body.stop.filter((s: unknown) => typeof s === "string") : [];
  return {
    model,
    system: system.join("\n"),
    turns,
    tools,
    toolChoice,
    maxTokens: typeof max === "number" ? max : undefined,
    stop,
    wantsReasoning: false,
  };
}

// ---------- validation ----------

export interface OAError {
  status: number;
  message: string;
  type?: string | null;
  param?: string | null;
  code?: string | null;
}

export const OPENAI_CHAT_FIELDS = [
  "model", "messages", "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
  "max_completion_tokens", "max_tokens", "metadata", "modalities", "n", "parallel_tool_calls", "prediction",
  "presence_penalty", "prompt_cache_key", "prompt_cache_retention", "reasoning_effort", "response_format",
  "safety_identifier", "seed", "service_tier", "stop", "store", "stream", "stream_options", "temperature",
  "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity", "web_search_options",
];

const ROLES = ["system", "assistant", "user", "function", "tool", "developer"];

export const isReasoningModel = (model: string) => /^(o\d|gpt-5)/.test(model);

/** Validation of a Chat Completions body as OpenAI does it (the subset a gateway can get wrong). */
export function validateOpenAIChat(ctx: Ctx, o: { requireModel: boolean; knownFields: string[] | null }): OAError | null {
  const bad = (message: string, param: string | null = null, code: string | null = null): OAError => ({ status: 400, message, type: "invalid_request_error", param, code });
  if (ctx.parseError || !isObject(ctx.json)) {
    return bad(
      "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
    );
  }
  const b = ctx.json;
  if (o.knownFields) {
    const extra = Object.keys(b).filter((k) => !o.knownFields!.includes(k) && !(ctx.opts.extraFields ?? []).includes(k));
    if (extra.length) return bad(`Unrecognized request argument supplied: ${extra.join(", ")}`);
  }
  if (o.requireModel && (typeof b.model !== "string" || b.model === "")) return bad("you must provide a model parameter");
  if (b.messages === undefined) return bad("Missing required parameter: 'messages'.", "messages", "missing_required_parameter");
  if (!Array.isArray(b.messages)) return bad(`Invalid type for 'messages': expected an array, but got ${typeof b.messages} instead.`, "messages", "invalid_type");
  if (b.messages.length === 0) return bad("Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.", "messages", "empty_array");
  const pendingCalls = new Map<string, number>();
  let lastAssistantWithCalls = -1;
  for (let i = 0; i < b.messages.length; i++) {
    const m = b.messages[i];
    if (!isObject(m)) return bad(`Invalid type for 'messages[${i}]': expected an object, but got ${typeof m} instead.`, `messages[${i}]`, "invalid_type");
    if (m.role === undefined) return bad(`Missing required parameter: 'messages[${i}].role'.`, `messages[${i}].role`, "missing_required_parameter");
    if (!ROLES.includes(m.role)) {
      return bad(`Invalid value: '${m.role}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.`, `messages[${i}].role`, "invalid_value");
    }
    if (Array.isArray(m.content)) {
      for (let j = 0; j < m.content.length; j++) {
        const p = m.content[j];
        if (!isObject(p) || typeof p.type !== "string") return bad(`Missing required parameter: 'messages[${i}].content[${j}].type'.`, `messages[${i}].content[${j}].type`, "missing_required_parameter");
        if (p.type === "text" && typeof p.text !== "string") return bad(`Missing required parameter: 'messages[${i}].content[${j}].text'.`, `messages[${i}].content[${j}].text`, "missing_required_parameter");
        if (p.type === "image_url" && !(isObject(p.image_url) && typeof p.image_url.url === "string")) {
          return bad(`Missing required parameter: 'messages[${i}].content[${j}].image_url.url'.`, `messages[${i}].content[${j}].image_url.url`, "missing_required_parameter");
        }
        if (!["text", "image_url", "input_audio", "file", "refusal"].includes(p.type)) {
          return bad(
            `Invalid value: '${p.type}'. Supported values are: 'text', 'image_url', 'input_audio', 'refusal', and 'file'.`,
            `messages[${i}].content[${j}].type`,
            "invalid_value",
          );
        }
      }
    } else if (m.content !== undefined && m.content !== null && typeof m.content !== "string") {
      return bad(`Invalid type for 'messages[${i}].content': expected one of a string or array of objects, but got ${typeof m.content} instead.`, `messages[${i}].content`, "invalid_type");
    }
    if (m.role === "tool") {
      if (typeof m.tool_call_id !== "string") return bad(`Missing required parameter: 'messages[${i}].tool_call_id'.`, `messages[${i}].tool_call_id`, "missing_required_parameter");
      if (!pendingCalls.has(m.tool_call_id)) {
        return bad("Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.", `messages.[${i}].role`);
      }
      pendingCalls.delete(m.tool_call_id);
      continue;
    }
    if (pendingCalls.size > 0) {
      return bad(
        `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${[...pendingCalls.keys()].join(", ")}`,
        `messages.[${lastAssistantWithCalls}].role`,
      );
    }
    if (m.role === "assistant" && Array.isArray(m.tool_calls)) {
      lastAssistantWithCalls = i;
      for (const c of m.tool_calls) {
        if (!isObject(c) || typeof c.id !== "string" || !isObject(c.function) || typeof c.function.name !== "string") {
          return bad(`Missing required parameter: 'messages[${i}].tool_calls[0].function'.`, `messages[${i}].tool_calls`, "missing_required_parameter");
        }
        pendingCalls.set(c.id, i);
      }
    }
  }
  if (pendingCalls.size > 0) {
    return bad(
      `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${[...pendingCalls.keys()].join(", ")}`,
      `messages.[${lastAssistantWithCalls}].role`,
    );
  }
  if (b.tools !== undefined) {
    if (!Array.isArray(b.tools)) return bad("Invalid type for 'tools': expected an array, but got an object instead.", "tools", "invalid_type");
    for (let i = 0; i < b.tools.length; i++) {
      const t = b.tools[i];
      if (!isObject(t) || t.type !== "function" && t.type !== "custom") return bad(`Missing required parameter: 'tools[${i}].type'.`, `tools[${i}].type`, "missing_required_parameter");
      if (t.type === "function" && !(isObject(t.function) && typeof t.function.name === "string")) {
        return bad(`Missing required parameter: 'tools[${i}].function.name'.`, `tools[${i}].function.name`, "missing_required_parameter");
      }
    }
  }
  if (b.stream_options !== undefined && b.stream_options !== null && b.stream !== true) {
    return bad("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options", "invalid_value");
  }
  if (typeof b.temperature === "number" && (b.temperature < 0 || b.temperature > 2)) {
    return bad(`Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got ${b.temperature} instead.`, "temperature", "decimal_above_max_value");
  }
  if (typeof b.model === "string" && isReasoningModel(b.model) && b.max_tokens !== undefined) {
    return bad("Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.", "max_tokens", "unsupported_parameter");
  }
  if (b.n !== undefined && (typeof b.n !== "number" || b.n < 1 || b.n > 128)) return bad(`Invalid 'n': integer below minimum value.`, "n", "integer_below_min_value");
  return null;
}

// ---------- response builders ----------

export interface OAFlavor {
  kind: MockKind;
  chatId(ctx: Ctx): string;
  toolId(ctx: Ctx, i: number): string;
  responseModel(model: string): string;
  systemFingerprint: string | null;
  serviceTier: boolean;
  /** Include `"logprobs": null` in choices. */
  logprobs: boolean;
  messageExtras: Record<string, unknown>;
  firstDelta: Record<string, unknown>;
  finalDelta: Record<string, unknown>;
  usage(r: Reply): Record<string, unknown>;
  /**
   * openai: usage only with include_usage (extra chunk, `choices: []`, others `usage: null`);
   * final-chunk: usage on the finish chunk always (Mistral);
   * deepseek: usage on the finish chunk unless include_usage, then like OpenAI.
   */
  streamUsage: "openai" | "final-chunk" | "deepseek";
  /** fragments: OpenAI-style argument fragments; whole: each call complete in one chunk (Mistral). */
  toolStream: "fragments" | "whole";
  reasoningField: string | null;
  azure: boolean;
}

export const openaiUsage = (r: Reply) => ({
  prompt_tokens: r.usage.input,
  completion_tokens: r.usage.output + r.usage.reasoning,
  total_tokens: r.usage.input + r.usage.output + r.usage.reasoning,
  prompt_tokens_details: { cached_tokens: r.usage.cached, audio_tokens: 0 },
  completion_tokens_details: { reasoning_tokens: r.usage.reasoning, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
});

const SAFE = { filtered: false, severity: "safe" };
export const AZURE_FILTERS = { hate: SAFE, self_harm: SAFE, sexual: SAFE, violence: SAFE };
export const AZURE_PROMPT_FILTERS = [
  { prompt_index: 0, content_filter_results: { ...AZURE_FILTERS, jailbreak: { filtered: false, detected: false } } },
];

export function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (isObject(v)) return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]));
  return v;
}

function finishOf(r: Reply): string {
  return r.nativeFinish ?? r.finish;
}

export function chatCompletion(ctx: Ctx, f: OAFlavor, model: string, r: Reply, n = 1): Record<string, unknown> {
  const message: Record<string, unknown> = { role: "assistant", content: r.toolCalls.length && r.text === "" ? null : r.text, ...f.messageExtras };
  if (f.reasoningField && r.reasoning) message[f.reasoningField] = r.reasoning;
  if (r.refusal !== undefined) {
    message.content = null;
    message.refusal = r.refusal;
  }
  if (r.toolCalls.length) {
    message.tool_calls = r.toolCalls.map((c, i) => ({
      id: c.id,
      type: "function",
      function: { name: c.name, arguments: c.args },
      ...(f.kind === "mistral" ? { index: i } : {}),
    }));
  }
  const choices = Array.from({ length: n }, (_, i) => ({
    index: i,
    message,
    ...(f.logprobs ? { logprobs: null } : {}),
    finish_reason: finishOf(r),
    ...(f.azure ? { content_filter_results: AZURE_FILTERS } : {}),
  }));
  const body: Record<string, unknown> = {
    id: f.chatId(ctx),
    object: "chat.completion",
    created: Math.floor(ctx.now() / 1000),
    model: f.responseModel(model),
    choices,
    usage: f.usage(r),
  };
  if (f.serviceTier) body.service_tier = "default";
  if (f.systemFingerprint !== null) body.system_fingerprint = f.systemFingerprint;
  if (f.azure) body.prompt_filter_results = AZURE_PROMPT_FILTERS;
  return f.azure ? (sortKeys(body) as Record<string, unknown>) : body;
}

export function chatStreamFrames(ctx: Ctx, f: OAFlavor, model: string, r: Reply, includeUsage: boolean): string[] {
  const id = f.chatId(ctx);
  const created = Math.floor(ctx.now() / 1000);
  const oaUsage = (f.streamUsage === "openai" || f.streamUsage === "deepseek") && includeUsage;
  const usageOnFinish = f.streamUsage === "final-chunk" || (f.streamUsage === "deepseek" && !includeUsage);
  const chunks = ctx.switches.chunks;
  const frames: string[] = [];
  const emit = (obj: Record<string, unknown>) => frames.push(`data: ${JSON.stringify(f.azure ? sortKeys(obj) : obj)}\n\n`);
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => {
    const c: Record<string, unknown> = { id, object: "chat.completion.chunk", created, model: f.responseModel(model) };
    if (f.serviceTier) c.service_tier = "default";
    if (f.systemFingerprint !== null) c.system_fingerprint = f.systemFingerprint;
    c.choices = choices;
    if (oaUsage) c.usage = null;
    Object.assign(c, extra);
    emit(c);
  };
  const choice = (delta: Record<string, unknown>, finish: string | null = null, filters: unknown = AZURE_FILTERS) => ({
    index: 0,
    delta,
    ...(f.logprobs ? { logprobs: null } : {}),
    finish_reason: finish,
    ...(f.azure ? { content_filter_results: filters } : {}),
  });
  const toolStart = (i: number) => ({
    index: i,
    id: r.toolCalls[i].id,
    type: "function",
    function: { name: r.toolCalls[i].name, arguments: "" },
  });

  if (f.azure) emit({ choices: [], created: 0, id: "", model: "", object: "", prompt_filter_results: AZURE_PROMPT_FILTERS });

  const onlyTools = r.text === "" && r.reasoning === "" && r.refusal === undefined && r.toolCalls.length > 0;
  let firstToolMerged = false;
  if (onlyTools && f.toolStream === "fragments" && f.kind === "openai") {
    chunk([choice({ role: "assistant", content: null, tool_calls: [toolStart(0)], refusal: null }, null, {})]);
    firstToolMerged = true;
  } else if (f.reasoningField && r.reasoning) {
    chunk([choice({ role: "assistant", content: null, [f.reasoningField]: "" }, null, {})]);
  } else {
    chunk([choice({ ...f.firstDelta }, null, {})]);
  }
  if (f.reasoningField) for (const piece of chunkText(r.reasoning, chunks)) chunk([choice({ content: null, [f.reasoningField]: piece })]);
  if (r.refusal !== undefined) for (const piece of chunkText(r.refusal, chunks)) chunk([choice({ refusal: piece })]);
  for (const piece of chunkText(r.text, chunks)) chunk([choice(f.reasoningField && r.reasoning ? { content: piece, [f.reasoningField]: null } : { content: piece })]);
  if (f.toolStream === "whole") {
    if (r.toolCalls.length) {
      chunk([choice({ tool_calls: r.toolCalls.map((c, i) => ({ id: c.id, function: { name: c.name, arguments: c.args }, index: i })) })]);
    }
  } else {
    r.toolCalls.forEach((c, i) => {
      if (!(i === 0 && firstToolMerged)) chunk([choice({ tool_calls: [toolStart(i)] })]);
      for (const frag of fragments(c.args, chunks)) chunk([choice({ tool_calls: [{ index: i, function: { arguments: frag } }] })]);
    });
  }
  chunk([choice({ ...f.finalDelta }, finishOf(r), {})], usageOnFinish ? { usage: f.usage(r) } : {});
  if (oaUsage) chunk([], { usage: f.usage(r) });
  frames.push("data: [DONE]\n\n");
  return frames;
}

// ---------- embeddings ----------

export function embeddingInputs(input: unknown): string[] | null {
  if (typeof input === "string") return [input];
  if (Array.isArray(input) && input.length > 0) {
    if (input.every((x) => typeof x === "string")) return input as string[];
    if (input.every((x) => typeof x === "number")) return [input.join(" ")];
    if (input.every((x) => Array.isArray(x) && x.every((y) => typeof y === "number"))) return (input as number[][]).map((x) => x.join(" "));
  }
  return null;
}

export function defaultDims(model: string): number {
  if (/3-large/.test(model)) return 3072;
  if (/mistral-embed/.test(model)) return 1024;
  if (/nomic|bge-base|e5-base/.test(model)) return 768;
  return 1536;
}

export function embeddingsBody(model: string, inputs: string[], dims: number, base64: boolean, step: ScriptStep | undefined) {
  const tokens = inputs.reduce((s, t) => s + estimateTokens(t), 0);
  return {
    object: "list",
    data: inputs.map((t, index) => {
      const v = step?.embeddings?.[index] ?? embeddingVector(t, dims);
      return { object: "embedding", index, embedding: base64 ? float32Base64(v) : v };
    }),
    model,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  };
}

// ---------- the OpenAI provider ----------

export function oaErrorOutcome(e: OAError, headers: Record<string, string> = {}): Outcome {
  return {
    type: "json",
    status: e.status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
    body: { error: { message: e.message, type: e.type ?? null, param: e.param ?? null, code: e.code ?? null } },
  };
}

export const CLOUDFLARE_HTML = (status: number) =>
  `<html>\r\n<head><title>${status} ${status === 502 ? "Bad Gateway" : "Gateway Time-out"}</title></head>\r\n<body>\r\n<center><h1>${status} ${status === 502 ? "Bad Gateway" : "Gateway Time-out"}</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n`;

function ratelimitHeaders(ctx: Ctx, retryAfter?: number): Record<string, string> {
  const limited = retryAfter !== undefined;
  return {
    "x-ratelimit-limit-requests": "10000",
    "x-ratelimit-limit-tokens": "30000000",
    "x-ratelimit-remaining-requests": limited ? "0" : "9999",
    "x-ratelimit-remaining-tokens": limited ? "0" : "29999000",
    "x-ratelimit-reset-requests": limited ? `${retryAfter}s` : "6ms",
    "x-ratelimit-reset-tokens": limited ? `${retryAfter}s` : "2ms",
    "x-request-id": `req_${ctx.id("request-id", 32, "hex")}`,
    "openai-version": "2020-10-01",
    "openai-organization": "org-sluice-mock",
    "openai-processing-ms": "42",
  };
}

export function openaiInjected(ctx: Ctx, inj: InjectedError, model: string): Outcome {
  if (inj.body !== undefined) return { type: "json", status: inj.status, headers: inj.headers, body: inj.body };
  if (inj.status === 429) {
    const ra = inj.retryAfter ?? 1;
    return oaErrorOutcome(
      {
        status: 429,
        message:
          inj.message ??
          `Rate limit reached for ${model} in organization org-sluice-mock on tokens per min (TPM): Limit 30000, Used 30000, Requested 100. Please try again in ${ra}s. Visit https://platform.openai.com/account/rate-limits to learn more.`,
        type: inj.type ?? "tokens",
        code: "rate_limit_exceeded",
      },
      { ...ratelimitHeaders(ctx, ra), "retry-after": String(ra), ...inj.headers },
    );
  }
  if (inj.status === 502 || inj.status === 504) {
    return { type: "text", status: inj.status, headers: { "content-type": "text/html", ...inj.headers }, body: CLOUDFLARE_HTML(inj.status) };
  }
  if (inj.status >= 500) {
    return oaErrorOutcome(
      {
        status: inj.status,
        message: inj.message ?? (inj.status === 503 ? "The server is overloaded or not ready yet." : "The server had an error while processing your request. Sorry about that!"),
        type: inj.type ?? "server_error",
      },
      { "x-request-id": `req_${ctx.id("request-id", 32, "hex")}`, ...inj.headers },
    );
  }
  return oaErrorOutcome({ status: inj.status, message: inj.message ?? "Invalid request", type: inj.type ?? "invalid_request_error" }, inj.headers);
}

export function rawOutcome(raw: NonNullable<ScriptStep["raw"]>): Outcome {
  return typeof raw.body === "string"
    ? { type: "text", status: raw.status, headers: raw.headers, body: raw.body }
    : { type: "json", status: raw.status, headers: raw.headers, body: raw.body };
}

const SNAPSHOTS: Record<string, string> = {
  "gpt-4o": "gpt-4o-2024-08-06",
  "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
  "gpt-4.1": "gpt-4.1-2025-04-14",
  "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
  "o3-mini": "o3-mini-2025-01-31",
};

export const OPENAI_MODELS = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3-mini", "text-embedding-3-small", "text-embedding-3-large"];

export const openaiFlavor: OAFlavor = {
  kind: "openai",
  chatId: (ctx) => `chatcmpl-${ctx.id("chat", 29)}`,
  toolId: (ctx, i) => `call_${ctx.id(`tool${i}`, 24)}`,
  responseModel: (m) => SNAPSHOTS[m] ?? m,
  systemFingerprint: "fp_sluicemock",
  serviceTier: true,
  logprobs: true,
  messageExtras: { refusal: null, annotations: [] },
  firstDelta: { role: "assistant", content: "", refusal: null },
  finalDelta: {},
  usage: openaiUsage,
  streamUsage: "openai",
  toolStream: "fragments",
  reasoningField: null,
  azure: false,
};

function modelList(ctx: Ctx, ids: string[], ownedBy: string) {
  return { object: "list", data: ids.map((id) => ({ id, object: "model", created: 1715367049, owned_by: ownedBy })) };
}

/** Shared flow for a Chat Completions endpoint after routing and auth. */
export function serveChat(
  ctx: Ctx,
  f: OAFlavor,
  o: {
    model: string;
    validate: () => OAError | null;
    errorOutcome: (e: OAError) => Outcome;
    injected: (inj: InjectedError) => Outcome;
    conversation?: (c: Conversation) => void;
    headers?: Record<string, string>;
    streamHeaders?: Record<string, string>;
    modelNotFound?: () => Outcome | null;
  },
): Outcome {
  const err = o.validate();
  if (err) return o.errorOutcome(err);
  const notFound = o.modelNotFound?.();
  if (notFound) return notFound;
  const { step, injected } = ctx.begin();
  if (step?.raw) return rawOutcome(step.raw);
  if (injected) return o.injected(injected);
  const conv = openaiConversation(ctx.json, o.model);
  o.conversation?.(conv);
  const reply = decideReply(conv, step, (i) => f.toolId(ctx, i));
  if (ctx.json.stream === true) {
    const includeUsage = isObject(ctx.json.stream_options) && ctx.json.stream_options.include_usage === true;
    return {
      type: "sse",
      headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", ...o.streamHeaders },
      frames: chatStreamFrames(ctx, f, o.model, reply, includeUsage),
      errorFrame: () =>
        `data: ${JSON.stringify({ error: { message: "The server had an error while processing your request. Sorry about that!", type: "server_error", param: null, code: null } })}\n\n`,
    };
  }
  const n = typeof ctx.json.n === "number" ? ctx.json.n : 1;
  return { type: "json", status: 200, headers: { "content-type": "application/json", ...o.headers }, body: chatCompletion(ctx, f, o.model, reply, n) };
}

export const openai: ProviderModule = {
  kind: "openai",
  handle(ctx) {
    const route = `${ctx.method} ${ctx.path.replace(/\/+$/, "")}`;
    const known = ["POST /v1/chat/completions", "POST /v1/responses", "POST /v1/embeddings", "GET /v1/models"].includes(route) || /^GET \/v1\/models\/[^/]+$/.test(route);
    if (!known) {
      return oaErrorOutcome({ status: 404, message: `Invalid URL (${ctx.method} ${ctx.path})`, type: "invalid_request_error" });
    }
    const key = bearer(ctx.headers);
    if (!key) {
      return oaErrorOutcome({
        status: 401,
        message:
          "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
        type: "invalid_request_error",
      });
    }
    if (!keyAccepted(ctx.opts, key)) {
      return oaErrorOutcome({
        status: 401,
        message: `Incorrect API key provided: ${maskKey(key)}. You can find your API key at https://platform.openai.com/account/api-keys.`,
        type: "invalid_request_error",
        code: "invalid_api_key",
      });
    }
    const models = ctx.opts.models ?? OPENAI_MODELS;
    if (route === "GET /v1/models") return { type: "json", status: 200, body: modelList(ctx, models, "system") };
    if (route.startsWith("GET /v1/models/")) {
      const id = decodeURIComponent(ctx.path.split("/").pop()!);
      if (ctx.opts.models && !ctx.opts.models.includes(id)) {
        return oaErrorOutcome({ status: 404, message: `The model '${id}' does not exist`, type: "invalid_request_error", param: "model", code: "model_not_found" });
      }
      return { type: "json", status: 200, body: { id, object: "model", created: 1715367049, owned_by: "system" } };
    }
    const model = isObject(ctx.json) && typeof ctx.json.model === "string" ? ctx.json.model : "";
    const modelNotFound = () =>
      ctx.opts.models && !ctx.opts.models.includes(model)
        ? oaErrorOutcome({ status: 404, message: `The model \`${model}\` does not exist or you do not have access to it.`, type: "invalid_request_error", code: "model_not_found" })
        : null;
    if (route === "POST /v1/embeddings") return serveEmbeddings(ctx, model, { errorOutcome: (e) => oaErrorOutcome(e), injected: (i) => openaiInjected(ctx, i, model), modelNotFound, requireModel: true });
    if (route === "POST /v1/responses") {
      if (ctx.parseError || !isObject(ctx.json)) return oaErrorOutcome({ status: 400, message: "We could not parse the JSON body of your request.", type: "invalid_request_error" });
      if (!model) return oaErrorOutcome({ status: 400, message: "Missing required parameter: 'model'.", type: "invalid_request_error", param: "model", code: "missing_required_parameter" });
      if (ctx.json.input === undefined) return oaErrorOutcome({ status: 400, message: "Missing required parameter: 'input'.", type: "invalid_request_error", param: "input", code: "missing_required_parameter" });
      const notFound = modelNotFound();
      if (notFound) return notFound;
      const { step, injected } = ctx.begin();
      if (step?.raw) return rawOutcome(step.raw);
      if (injected) return openaiInjected(ctx, injected, model);
      const reply = decideReply(responsesConversation(ctx.json, model), step, (i) => openaiFlavor.toolId(ctx, i));
      return responsesOutcome(ctx, model, reply);
    }
    return serveChat(ctx, openaiFlavor, {
      model,
      validate: () => validateOpenAIChat(ctx, { requireModel: true, knownFields: OPENAI_CHAT_FIELDS }),
      errorOutcome: (e) => oaErrorOutcome(e),
      injected: (inj) => openaiInjected(ctx, inj, model),
      conversation: (c) => {
        c.hiddenReasoning = isReasoningModel(model);
      },
      headers: ratelimitHeaders(ctx),
      streamHeaders: ratelimitHeaders(ctx),
      modelNotFound,
    });
  },
};

export function serveEmbeddings(
  ctx: Ctx,
  model: string,
  o: { errorOutcome: (e: OAError) => Outcome; injected: (inj: InjectedError) => Outcome; modelNotFound?: () => Outcome | null; requireModel: boolean; defaultDims?: number },
): Outcome {
  const bad = (message: string, param: string | null = null, code: string | null = null) => o.errorOutcome({ status: 400, message, type: "invalid_request_error", param, code });
  if (ctx.parseError || !isObject(ctx.json)) return bad("We could not parse the JSON body of your request.");
  if (o.requireModel && !model) return bad("you must provide a model parameter");
  if (ctx.json.input === undefined) return bad("Missing required parameter: 'input'.", "input", "missing_required_parameter");
  const inputs = embeddingInputs(ctx.json.input);
  if (!inputs) return bad("'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.", "input");
  if (inputs.some((s) => s === "")) return bad("'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.", "input");
  const fmt = ctx.json.encoding_format;
  if (fmt !== undefined && fmt !== "float" && fmt !== "base64") {
    return bad(`Invalid value: '${fmt}'. Supported values are: 'float' and 'base64'.`, "encoding_format", "invalid_value");
  }
  const notFound = o.modelNotFound?.();
  if (notFound) return notFound;
  const { step, injected } = ctx.begin();
  if (step?.raw) return rawOutcome(step.raw);
  if (injected) return o.injected(injected);
  const dims = typeof ctx.json.dimensions === "number" ? ctx.json.dimensions : (o.defaultDims ?? defaultDims(model));
  return { type: "json", status: 200, body: embeddingsBody(model, inputs, dims, fmt === "base64", step) };
}
