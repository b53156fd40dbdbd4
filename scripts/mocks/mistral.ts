// Mistral: POST /v1/chat/completions (plain and SSE), POST /v1/embeddings, GET /v1/models.
//
// Wire facts: request bodies are validated strictly: an unknown field (top level or inside a message) is
// 422 {"object":"error","message":{"detail":[{"type":"extra_forbidden","loc":["body",…],"msg":"Extra inputs are not permitted","input":…}]},
// "type":"invalid_request_error","param":null,"code":null} — OpenAI fields such as max_completion_tokens, store, metadata, seed,
// user, stream_options and assistant reasoning_content are rejected; `random_seed` is the seed; tool_choice is
// auto/none/any/required or a named function. Streams carry usage in the final chunk (finish_reason set) without any option,
// and a tool call arrives whole in one chunk. 401 is {"message":"Unauthorized","request_id":…}; unknown paths {"detail":"Not Found"}.
import { bearer, isObject, keyAccepted, type Ctx, type InjectedError, type Outcome, type ProviderModule, type Reply } from "./common.js";
import { serveChat, serveEmbeddings, type OAError, type OAFlavor } from "./openai.js";

export const MISTRAL_MODELS = ["mistral-small-latest", "mistral-medium-latest", "mistral-large-latest", "codestral-latest", "mistral-embed"];

const CHAT_FIELDS = [
  "model", "messages", "temperature", "top_p", "max_tokens", "stream", "stop", "random_seed", "response_format", "tools",
  "tool_choice", "presence_penalty", "frequency_penalty", "n", "safe_prompt", "prediction", "parallel_tool_calls", "prompt_mode",
];
const EMBED_FIELDS = ["model", "input", "output_dimension", "output_dtype", "encoding_format"];
const MESSAGE_FIELDS: Record<string, string[]> = {
  system: ["role", "content"],
  user: ["role", "content"],
  assistant: ["role", "content", "tool_calls", "prefix"],
  tool: ["role", "content", "tool_call_id", "name"],
};

interface Detail {
  type: string;
  loc: (string | number)[];
  msg: string;
  input: unknown;
}

function err422(details: Detail[]): Outcome {
  return {
    type: "json",
    status: 422,
    body: { object: "error", message: { detail: details }, type: "invalid_request_error", param: null, code: null },
  };
}

const mErr = (status: number, message: string, type: string, code: string | null, headers: Record<string, string> = {}): Outcome => ({
  type: "json",
  status,
  headers,
  body: { object: "error", message, type, param: null, code },
});

function validateChat(ctx: Ctx): Detail[] {
  const b = ctx.json;
  const d: Detail[] = [];
  if (ctx.parseError) return [{ type: "json_invalid", loc: ["body", 0], msg: "JSON decode error", input: {} }];
  if (!isObject(b)) return [{ type: "model_attributes_type", loc: ["body"], msg: "Input should be a valid dictionary or object to extract fields from", input: b }];
  const extra = ctx.opts.extraFields ?? [];
  for (const [k, v] of Object.entries(b)) if (!CHAT_FIELDS.includes(k) && !extra.includes(k)) d.push({ type: "extra_forbidden", loc: ["body", k], msg: "Extra inputs are not permitted", input: v });
  if (b.model === undefined) d.push({ type: "missing", loc: ["body", "model"], msg: "Field required", input: b });
  if (b.messages === undefined) d.push({ type: "missing", loc: ["body", "messages"], msg: "Field required", input: b });
  else if (!Array.isArray(b.messages)) d.push({ type: "list_type", loc: ["body", "messages"], msg: "Input should be a valid list", input: b.messages });
  else {
    b.messages.forEach((m: any, i: number) => {
      if (!isObject(m) || !(m.role in MESSAGE_FIELDS)) {
        d.push({
          type: "union_tag_invalid",
          loc: ["body", "messages", i],
          msg: `Input tag '${isObject(m) ? m.role : ""}' found using 'role' does not match any of the expected tags: 'assistant', 'system', 'tool', 'user'`,
          input: m,
        });
        return;
      }
      for (const [k, v] of Object.entries(m)) {
        if (!MESSAGE_FIELDS[m.role].includes(k)) d.push({ type: "extra_forbidden", loc: ["body", "messages", i, m.role, k], msg: "Extra inputs are not permitted", input: v });
      }
      if (Array.isArray(m.content)) {
        m.content.forEach((p: any, j: number) => {
          const types = ["text", "image_url", "document_url", "input_audio", "reference", "file", "thinking"];
          if (!isObject(p) || !types.includes(p.type)) {
            d.push({
              type: "union_tag_invalid",
              loc: ["body", "messages", i, m.role, "content", j],
              msg: `Input tag '${isObject(p) ? p.type : ""}' found using 'type' does not match any of the expected tags: ${types.map((t) => `'${t}'`).join(", ")}`,
              input: p,
            });
          }
        });
      }
    });
  }
  const tc = b.tool_choice;
  if (tc !== undefined && !(["auto", "none", "any", "required"].includes(tc) || (isObject(tc) && isObject(tc.function) && typeof tc.function.name === "string"))) {
    d.push({ type: "enum", loc: ["body", "tool_choice"], msg: "Input should be 'auto', 'none', 'any' or 'required'", input: tc });
  }
  if (typeof b.temperature === "number" && (b.temperature < 0 || b.temperature > 1.5)) {
    d.push({ type: "less_than_equal", loc: ["body", "temperature"], msg: "Input should be less than or equal to 1.5", input: b.temperature });
  }
  return d;
}

function injected(inj: InjectedError): Outcome {
  if (inj.body !== undefined) return { type: "json", status: inj.status, headers: inj.headers, body: inj.body };
  if (inj.status === 429) {
    const ra = inj.retryAfter ?? 1;
    return mErr(429, inj.message ?? "Requests rate limit exceeded", inj.type ?? "rate_limited", "1300", { "retry-after": String(ra), ...inj.headers });
  }
  if (inj.status === 503) return mErr(503, inj.message ?? "Service unavailable.", inj.type ?? "service_unavailable", "1000", inj.headers);
  if (inj.status >= 500) return mErr(inj.status, inj.message ?? "Internal server error", inj.type ?? "internal_server_error", "1000", inj.headers);
  return mErr(inj.status, inj.message ?? "Invalid request", inj.type ?? "invalid_request_error", null, inj.headers);
}

export const mistralFlavor: OAFlavor = {
  kind: "mistral",
  chatId: (ctx) => ctx.id("chat", 32, "hex"),
  toolId: (ctx, i) => ctx.id(`tool${i}`, 9),
  responseModel: (m) => m,
  systemFingerprint: null,
  serviceTier: false,
  logprobs: false,
  messageExtras: { tool_calls: null, prefix: false },
  firstDelta: { role: "assistant", content: "" },
  finalDelta: { content: "" },
  usage: (r: Reply) => ({ prompt_tokens: r.usage.input, total_tokens: r.usage.input + r.usage.output, completion_tokens: r.usage.output }),
  streamUsage: "final-chunk",
  toolStream: "whole",
  reasoningField: null,
  azure: false,
};

export const mistral: ProviderModule = {
  kind: "mistral",
  handle(ctx) {
    const path = ctx.path.replace(/\/+$/, "");
    const route = `${ctx.method} ${path}`;
    if (!["POST /v1/chat/completions", "POST /v1/embeddings", "GET /v1/models"].includes(route)) return { type: "json", status: 404, body: { detail: "Not Found" } };
    const key = bearer(ctx.headers);
    if (!keyAccepted(ctx.opts, key)) return { type: "json", status: 401, body: { message: "Unauthorized", request_id: ctx.id("request-id", 32, "hex") } };
    const models = ctx.opts.models ?? MISTRAL_MODELS;
    if (route === "GET /v1/models") {
      return {
        type: "json",
        status: 200,
        body: {
          object: "list",
          data: models.map((id) => ({ id, object: "model", created: 1735689600, owned_by: "mistralai", capabilities: { completion_chat: !/embed/.test(id), function_calling: !/embed/.test(id) } })),
        },
      };
    }
    const model = isObject(ctx.json) && typeof ctx.json.model === "string" ? ctx.json.model : "";
    const modelNotFound = () => (models.includes(model) ? null : mErr(400, `Invalid model: ${model}`, "invalid_model", "1500"));
    if (route === "POST /v1/embeddings") {
      if (isObject(ctx.json)) {
        const extra = Object.entries(ctx.json).filter(([k]) => !EMBED_FIELDS.includes(k) && !(ctx.opts.extraFields ?? []).includes(k));
        if (extra.length) return err422(extra.map(([k, v]) => ({ type: "extra_forbidden", loc: ["body", k], msg: "Extra inputs are not permitted", input: v })));
      }
      return serveEmbeddings(ctx, model, {
        errorOutcome: (e: OAError) => err422([{ type: "missing", loc: ["body", e.param ?? "input"], msg: e.message, input: ctx.json }]),
        injected,
        modelNotFound,
        requireModel: true,
        defaultDims: typeof ctx.json?.output_dimension === "number" ? ctx.json.output_dimension : 1024,
      });
    }
    const details = validateChat(ctx);
    return serveChat(ctx, mistralFlavor, {
      model,
      validate: () => (details.length ? { status: 422, message: "" } : null),
      errorOutcome: () => err422(details),
      injected,
      modelNotFound,
      headers: { "mistral-correlation-id": `${ctx.id("corr", 8, "hex")}-0000-4000-8000-000000000000` },
      streamHeaders: { "mistral-correlation-id": `${ctx.id("corr", 8, "hex")}-0000-4000-8000-000000000000` },
    });
  },
};
