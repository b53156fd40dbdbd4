// Azure OpenAI: POST /openai/deployments/{deployment}/chat/completions?api-version=… and …/embeddings,
// plus the v1 surface POST /openai/v1/chat/completions and POST /openai/v1/responses (OpenAI's Responses API,
// openai-responses.ts; model in the body names the deployment, no api-version).
//
// Wire facts: `api-key` header (or Entra `Authorization: Bearer`); no api-version → 404 {"error":{"code":"404","message":"Resource not found"}};
// bad key → 401 {"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint. …"}};
// unknown deployment → 404 DeploymentNotFound; responses carry prompt_filter_results and per-choice content_filter_results;
// streams open with a chunk whose choices is [] and id/model/object are "" carrying prompt_filter_results; keys come sorted.
import { bearer, decideReply, isObject, keyAccepted, type Ctx, type InjectedError, type Outcome, type ProviderModule } from "./common.js";
import {
  OPENAI_CHAT_FIELDS,
  oaErrorOutcome,
  openaiUsage,
  rawOutcome,
  serveChat,
  serveEmbeddings,
  validateOpenAIChat,
  type OAFlavor,
} from "./openai.js";
import { responsesConversation, responsesOutcome } from "./openai-responses.js";

const azErr = (status: number, code: string, message: string, headers: Record<string, string> = {}): Outcome => ({
  type: "json",
  status,
  headers: { "content-type": "application/json", "apim-request-id": "00000000-0000-4000-8000-000000000000", ...headers },
  body: { error: { code, message } },
});

const SNAPSHOTS: Record<string, string> = { "gpt-4o": "gpt-4o-2024-08-06", "gpt-4o-mini": "gpt-4o-mini-2024-07-18", "gpt-35-turbo": "gpt-35-turbo" };

export function azureFlavor(): OAFlavor {
  return {
    kind: "azure-openai",
    chatId: (ctx) => `chatcmpl-${ctx.id("chat", 29)}`,
    toolId: (ctx, i) => `call_${ctx.id(`tool${i}`, 24)}`,
    responseModel: (m) => SNAPSHOTS[m] ?? m,
    systemFingerprint: "fp_sluiceaz",
    serviceTier: false,
    logprobs: true,
    messageExtras: { refusal: null },
    firstDelta: { role: "assistant", content: "", refusal: null },
    finalDelta: {},
    usage: openaiUsage,
    streamUsage: "openai",
    toolStream: "fragments",
    reasoningField: null,
    azure: true,
  };
}

function injected(ctx: Ctx, inj: InjectedError, apiVersion: string): Outcome {
  if (inj.body !== undefined) return { type: "json", status: inj.status, headers: inj.headers, body: inj.body };
  if (inj.status === 429) {
    const ra = inj.retryAfter ?? 1;
    return azErr(
      429,
      "429",
      inj.message ??
        `Requests to the ChatCompletions_Create Operation under Azure OpenAI API version ${apiVersion} have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after ${ra} seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.`,
      {
        "retry-after": String(ra),
        "retry-after-ms": String(ra * 1000),
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-remaining-tokens": "0",
        ...inj.headers,
      },
    );
  }
  if (inj.status === 503) return azErr(503, "ServiceUnavailable", inj.message ?? "The service is temporarily unable to process your request. Please try again later.", inj.headers);
  if (inj.status >= 500) return azErr(inj.status, "InternalServerError", inj.message ?? "The server had an error while processing your request. Sorry about that!", inj.headers);
  return azErr(inj.status, String(inj.status), inj.message ?? "Bad request", inj.headers);
}

export const azureOpenai: ProviderModule = {
  kind: "azure-openai",
  handle(ctx) {
    const path = ctx.path.replace(/\/+$/, "");
    const dep = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|embeddings)$/.exec(path);
    const v1 = /^\/openai\/v1\/(chat\/completions|embeddings|responses)$/.exec(path);
    if (ctx.method !== "POST" || (!dep && !v1)) return azErr(404, "404", "Resource not found");
    const apiVersion = ctx.query.get("api-version");
    if (dep && !apiVersion) return azErr(404, "404", "Resource not found");
    if (dep && !/^\d{4}-\d{2}-\d{2}(-preview)?$/.test(apiVersion!)) return azErr(400, "BadRequest", "API version not supported");
    const apiKey = typeof ctx.headers["api-key"] === "string" ? ctx.headers["api-key"] : bearer(ctx.headers);
    if (!keyAccepted(ctx.opts, apiKey)) {
      return azErr(
        401,
        "401",
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
      );
    }
    let model: string;
    if (dep) {
      const name = decodeURIComponent(dep[1]);
      if (ctx.opts.deployments && !(name in ctx.opts.deployments)) {
        return azErr(
          404,
          "DeploymentNotFound",
          "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.",
        );
      }
      model = ctx.opts.deployments?.[name] ?? name;
    } else {
      model = isObject(ctx.json) && typeof ctx.json.model === "string" ? ctx.json.model : "";
    }
    const version = apiVersion ?? "v1";
    const headers = { "apim-request-id": `${ctx.id("apim", 8, "hex")}-0000-4000-8000-000000000000`, "x-ms-region": "East US", "x-ratelimit-remaining-requests": "999", "x-ratelimit-remaining-tokens": "99000" };
    const kind = (dep?.[2] ?? v1![1]) as "chat/completions" | "embeddings" | "responses";
    if (kind === "responses") {
      if (ctx.parseError || !isObject(ctx.json)) return oaErrorOutcome({ status: 400, message: "We could not parse the JSON body of your request.", type: "invalid_request_error" });
      if (!model) return oaErrorOutcome({ status: 400, message: "Missing required parameter: 'model'.", type: "invalid_request_error", param: "model", code: "missing_required_parameter" });
      if (ctx.opts.deployments && !(model in ctx.opts.deployments)) {
        return azErr(404, "DeploymentNotFound", "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.");
      }
      const { step, injected: inj } = ctx.begin();
      if (step?.raw) return rawOutcome(step.raw);
      if (inj) return injected(ctx, inj, version);
      const reply = decideReply(responsesConversation(ctx.json, model), step, (i) => azureFlavor().toolId(ctx, i));
      return responsesOutcome(ctx, ctx.opts.deployments?.[model] ?? model, reply);
    }
    if (kind === "embeddings") {
      return serveEmbeddings(ctx, model, { errorOutcome: (e) => oaErrorOutcome(e), injected: (i) => injected(ctx, i, version), requireModel: !!v1 });
    }
    const f = azureFlavor();
    return serveChat(ctx, f, {
      model,
      validate: () => validateOpenAIChat(ctx, { requireModel: !!v1, knownFields: [...OPENAI_CHAT_FIELDS, "data_sources", "user_security_context"] }),
      errorOutcome: (e) => oaErrorOutcome(e),
      injected: (inj) => injected(ctx, inj, version),
      headers,
      streamHeaders: headers,
    });
  },
};

