// OpenAI-compatible servers (vLLM, Ollama's /v1, llama.cpp, LM Studio…) at a base path (default /v1):
// {base}/chat/completions, {base}/embeddings, {base}/models. Bearer is optional unless a key is configured (vLLM --api-key).
//
// Wire facts: OpenAI's SSE shape and include_usage behaviour; unknown body fields are accepted (recorded, ignored);
// errors are vLLM's {"error":{"message","type":"BadRequestError","param","code":400}} or, with flavor "ollama",
// {"error":{"message","type":"api_error","param":null,"code":null}}; vLLM's 401 body is {"error":"Unauthorized"};
// reasoning parsers put `reasoning_content` in messages and deltas when the model reasons.
import { bearer, isObject, keyAccepted, type Ctx, type InjectedError, type Outcome, type ProviderModule } from "./common.js";
import { openaiUsage, serveChat, serveEmbeddings, validateOpenAIChat, type OAError, type OAFlavor } from "./openai.js";

function errorOutcome(ctx: Ctx, e: OAError, headers: Record<string, string> = {}): Outcome {
  const ollama = ctx.opts.flavor === "ollama";
  const vllmType: Record<number, string> = { 400: "BadRequestError", 404: "NotFoundError", 429: "TooManyRequestsError", 500: "InternalServerError", 503: "ServiceUnavailableError" };
  return {
    type: "json",
    status: e.status,
    headers,
    body: {
      error: ollama
        ? { message: e.message, type: e.status >= 500 ? "api_error" : "invalid_request_error", param: null, code: null }
        : { message: e.message, type: vllmType[e.status] ?? (e.status >= 500 ? "InternalServerError" : "BadRequestError"), param: e.param ?? null, code: e.status },
    },
  };
}

function injected(ctx: Ctx, inj: InjectedError): Outcome {
  if (inj.body !== undefined) return { type: "json", status: inj.status, headers: inj.headers, body: inj.body };
  const headers = { ...(inj.status === 429 ? { "retry-after": String(inj.retryAfter ?? 1) } : {}), ...inj.headers };
  const message = inj.message ?? (inj.status === 429 ? "Too many requests" : inj.status === 503 ? "Service Unavailable" : "Internal Server Error");
  return errorOutcome(ctx, { status: inj.status, message }, headers);
}

export const compatFlavor = (reasoning: boolean): OAFlavor => ({
  kind: "openai-compatible",
  chatId: (ctx) => `chatcmpl-${ctx.id("chat", 32, "hex")}`,
  toolId: (ctx, i) => `chatcmpl-tool-${ctx.id(`tool${i}`, 32, "hex")}`,
  responseModel: (m) => m,
  systemFingerprint: null,
  serviceTier: false,
  logprobs: true,
  messageExtras: {},
  firstDelta: { role: "assistant", content: "" },
  finalDelta: {},
  usage: (r) => {
    const u = openaiUsage(r) as Record<string, unknown>;
    delete u.completion_tokens_details;
    u.prompt_tokens_details = r.usage.cached ? { cached_tokens: r.usage.cached } : null;
    return u;
  },
  streamUsage: "openai",
  toolStream: "fragments",
  reasoningField: reasoning ? "reasoning_content" : null,
  azure: false,
});

export const openaiCompatible: ProviderModule = {
  kind: "openai-compatible",
  handle(ctx) {
    const base = (ctx.opts.basePath ?? "/v1").replace(/\/+$/, "");
    const path = ctx.path.replace(/\/+$/, "");
    const rest = path.startsWith(base) ? path.slice(base.length) : null;
    const route = `${ctx.method} ${rest}`;
    if (rest === null || !["POST /chat/completions", "POST /embeddings", "GET /models"].includes(route)) {
      return errorOutcome(ctx, { status: 404, message: "Not Found" });
    }
    const needKey = ctx.opts.apiKey !== undefined || ctx.opts.requireAuth === true;
    if (needKey && !keyAccepted(ctx.opts, bearer(ctx.headers))) return { type: "json", status: 401, body: { error: "Unauthorized" } };
    const models = ctx.opts.models ?? ["mock-model"];
    if (route === "GET /models") {
      return {
        type: "json",
        status: 200,
        body: { object: "list", data: models.map((id) => ({ id, object: "model", created: 1735689600, owned_by: ctx.opts.flavor === "ollama" ? "library" : "vllm", root: id, parent: null, max_model_len: 32768 })) },
      };
    }
    const model = isObject(ctx.json) && typeof ctx.json.model === "string" ? ctx.json.model : "";
    const modelNotFound = () => (ctx.opts.models && !ctx.opts.models.includes(model) ? errorOutcome(ctx, { status: 404, message: `The model \`${model}\` does not exist.`, param: "model" }) : null);
    if (route === "POST /embeddings") {
      return serveEmbeddings(ctx, model, { errorOutcome: (e) => errorOutcome(ctx, e), injected: (i) => injected(ctx, i), modelNotFound, requireModel: false, defaultDims: 768 });
    }
    const reasoning = /reason|r1|qwq|think/i.test(model);
    return serveChat(ctx, compatFlavor(reasoning), {
      model,
      validate: () => validateOpenAIChat(ctx, { requireModel: false, knownFields: null }),
      errorOutcome: (e) => errorOutcome(ctx, e),
      injected: (i) => injected(ctx, i),
      modelNotFound,
      conversation: (c) => {
        c.wantsReasoning = reasoning;
      },
    });
  },
};
