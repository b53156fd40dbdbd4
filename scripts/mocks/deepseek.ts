// DeepSeek: OpenAI-compatible Chat Completions at /chat/completions and /v1/chat/completions, models at /models and /v1/models.
//
// Wire facts: Bearer key (401 {"error":{"message":"Authentication Fails, Your api key: ****abcd is invalid","type":"authentication_error",
// "param":null,"code":"invalid_request_error"}}); usage adds prompt_cache_hit_tokens / prompt_cache_miss_tokens next to
// prompt_tokens_details.cached_tokens; deepseek-reasoner returns `reasoning_content` in the message and in deltas (reasoning first,
// with content null); without stream_options the finish chunk itself carries `usage` (other chunks have none); ids are UUIDs;
// `: keep-alive` SSE comments may precede the first event; 402 Insufficient Balance.
import { bearer, isObject, keyAccepted, uuidFrom, type Ctx, type InjectedError, type Outcome, type ProviderModule, type Reply } from "./common.js";
import { CLOUDFLARE_HTML, oaErrorOutcome, serveChat, type OAError, type OAFlavor } from "./openai.js";

export const DEEPSEEK_MODELS = ["deepseek-chat", "deepseek-reasoner"];


const dsErr = (status: number, message: string, type: string | null, headers: Record<string, string> = {}): Outcome =>
  oaErrorOutcome({ status, message, type, param: null, code: "invalid_request_error" }, headers);

export const deepseekUsage = (r: Reply) => {
  const u: Record<string, unknown> = {
    prompt_tokens: r.usage.input,
    completion_tokens: r.usage.output + r.usage.reasoning,
    total_tokens: r.usage.input + r.usage.output + r.usage.reasoning,
    prompt_tokens_details: { cached_tokens: r.usage.cached },
  };
  if (r.usage.reasoning) u.completion_tokens_details = { reasoning_tokens: r.usage.reasoning };
  u.prompt_cache_hit_tokens = r.usage.cached;
  u.prompt_cache_miss_tokens = r.usage.input - r.usage.cached;
  return u;
};

export function deepseekFlavor(reasoner: boolean): OAFlavor {
  return {
    kind: "deepseek",
    chatId: (ctx) => uuidFrom(ctx.id("chat", 32)),
    toolId: (ctx, i) => `call_0_${uuidFrom(ctx.id(`tool${i}`, 32))}`,
    responseModel: (m) => m,
    systemFingerprint: "fp_sluiceds_prod0820_fp8_kvcache",
    serviceTier: false,
    logprobs: true,
    messageExtras: {},
    firstDelta: { role: "assistant", content: "" },
    finalDelta: { content: "" },
    usage: deepseekUsage,
    streamUsage: "deepseek",
    toolStream: "fragments",
    reasoningField: reasoner ? "reasoning_content" : null,
    azure: false,
  };
}

function validate(ctx: Ctx): OAError | null {
  if (ctx.parseError) return { status: 400, message: "Failed to parse the request body as JSON", type: "invalid_request_error", code: "invalid_request_error" };
  const b = ctx.json;
  const missing = (field: string): OAError => ({
    status: 422,
    message: `Failed to deserialize the JSON body into the target type: missing field \`${field}\` at line 1 column ${ctx.rawBody.length}`,
    type: "invalid_request_error",
    code: "invalid_request_error",
  });
  if (!isObject(b)) return { status: 422, message: "Failed to deserialize the JSON body into the target type: invalid type: expected struct", type: "invalid_request_error", code: "invalid_request_error" };
  if (b.model === undefined) return missing("model");
  if (b.messages === undefined) return missing("messages");
  if (!Array.isArray(b.messages) || b.messages.length === 0) return { status: 400, message: "Empty input messages", type: "invalid_request_error", code: "invalid_request_error" };
  for (let i = 0; i < b.messages.length; i++) {
    const m = b.messages[i];
    if (!isObject(m) || !["system", "user", "assistant", "tool"].includes(m.role)) {
      return {
        status: 422,
        message: `Failed to deserialize the JSON body into the target type: messages[${i}]: unknown variant \`${isObject(m) ? m.role : ""}\`, expected one of \`system\`, \`user\`, \`assistant\`, \`tool\``,
        type: "invalid_request_error",
        code: "invalid_request_error",
      };
    }
  }
  // Unknown fields are ignored, as DeepSeek does.
  if (b.stream_options !== undefined && b.stream_options !== null && b.stream !== true) {
    return { status: 400, message: "stream_options should be set along with stream = true", type: "invalid_request_error", code: "invalid_request_error" };
  }
  return null;
}

function injected(inj: InjectedError): Outcome {
  if (inj.body !== undefined) return { type: "json", status: inj.status, headers: inj.headers, body: inj.body };
  if (inj.status === 429) {
    const ra = inj.retryAfter ?? 1;
    return dsErr(429, inj.message ?? "Rate Limit Reached", inj.type ?? "rate_limit_error", { "retry-after": String(ra), ...inj.headers });
  }
  if (inj.status === 402) return dsErr(402, inj.message ?? "Insufficient Balance", "unknown_error", inj.headers);
  if (inj.status === 502 || inj.status === 504) return { type: "text", status: inj.status, headers: { "content-type": "text/html", ...inj.headers }, body: CLOUDFLARE_HTML(inj.status) };
  if (inj.status === 503) return dsErr(503, inj.message ?? "Server Overloaded", inj.type ?? "server_error", inj.headers);
  if (inj.status >= 500) return dsErr(inj.status, inj.message ?? "Server Error", inj.type ?? "server_error", inj.headers);
  return dsErr(inj.status, inj.message ?? "Invalid Request", inj.type ?? "invalid_request_error", inj.headers);
}

export const deepseek: ProviderModule = {
  kind: "deepseek",
  handle(ctx) {
    const path = ctx.path.replace(/\/+$/, "").replace(/^\/v1(?=\/)/, "");
    const route = `${ctx.method} ${path}`;
    if (route !== "POST /chat/completions" && route !== "GET /models") return dsErr(404, "Not Found", "invalid_request_error");
    const key = bearer(ctx.headers);
    if (!key) return dsErr(401, "Authentication Fails (auth header format should be Bearer sk-...)", "authentication_error");
    if (!keyAccepted(ctx.opts, key)) return dsErr(401, `Authentication Fails, Your api key: ****${key.slice(-4)} is invalid`, "authentication_error");
    const models = ctx.opts.models ?? DEEPSEEK_MODELS;
    if (route === "GET /models") {
      return { type: "json", status: 200, body: { object: "list", data: models.map((id) => ({ id, object: "model", owned_by: "deepseek" })) } };
    }
    const model = isObject(ctx.json) && typeof ctx.json.model === "string" ? ctx.json.model : "";
    const reasoner = /reasoner/.test(model) || (isObject(ctx.json) && isObject(ctx.json.thinking) && ctx.json.thinking.type === "enabled");
    return serveChat(ctx, deepseekFlavor(reasoner), {
      model,
      validate: () => validate(ctx),
      errorOutcome: (e) => oaErrorOutcome(e),
      injected,
      modelNotFound: () => (models.includes(model) ? null : dsErr(400, "Model Not Exist", "invalid_request_error")),
      conversation: (c) => {
        c.wantsReasoning = reasoner;
      },
      headers: { "x-ds-trace-id": ctx.id("trace", 32, "hex") },
      streamHeaders: { "x-ds-trace-id": ctx.id("trace", 32, "hex") },
    });
  },
};
