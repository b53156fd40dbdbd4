// Gemini API (generativelanguage): POST /v1beta/models/{model}:generateContent, :streamGenerateContent (?alt=sse, or a JSON array
// without it), :countTokens, :embedContent, :batchEmbedContents; GET /v1beta/models. /v1/ works the same. Vertex AI's
// path for Google's models (/v1/projects/{p}/locations/{l}/publishers/google/models/{model}:{method}) too, with an
// `Authorization: Bearer` access token instead of a key (missing or wrong: 401 UNAUTHENTICATED).
//
// Wire facts: `x-goog-api-key` header or `key` query; missing → 403 PERMISSION_DENIED, bad → 400 INVALID_ARGUMENT with
// ErrorInfo reason API_KEY_INVALID; errors {"error":{"code","message","status","details"?}} pretty-printed; unknown fields →
// 400 `Invalid JSON payload received. Unknown name "x"`; proto JSON accepts camelCase and snake_case names.
// Plain responses are pretty-printed (2 spaces). Streams (alt=sse) are `data: <GenerateContentResponse>\r\n\r\n` with
// `"key": value` spacing, usageMetadata on every chunk, finishReason on the last, and no [DONE].
// 429 is RESOURCE_EXHAUSTED with RetryInfo.retryDelay in the body and no Retry-After header.
import {
  bearer,
  chunkText,
  decideReply,
  embeddingVector,
  estimateTokens,
  googleJson,
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
import { CLOUDFLARE_HTML, rawOutcome } from "./openai.js";

const STATUS: Record<number, string> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  429: "RESOURCE_EXHAUSTED",
  500: "INTERNAL",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
};

const JSON_HEADERS = {
  "content-type": "application/json; charset=UTF-8",
  vary: "Origin, X-Origin, Referer",
  server: "scaffolding on HTTPServer2",
  "x-content-type-options": "nosniff",
};

function gErr(status: number, message: string, details?: unknown[], headers: Record<string, string> = {}): Outcome {
  return {
    type: "json",
    status,
    pretty: true,
    headers: { ...JSON_HEADERS, ...headers },
    body: { error: { code: status, message, status: STATUS[status] ?? (status >= 500 ? "INTERNAL" : "INVALID_ARGUMENT"), ...(details ? { details } : {}) } },
  };
}

const unknownName = (name: string, where = "") => {
  const msg = `Invalid JSON payload received. Unknown name "${name}"${where}: Cannot find field.`;
  return gErr(400, msg, [{ "@type": "type.googleapis.com/google.rpc.BadRequest", fieldViolations: [{ description: msg }] }]);
};

/** Read a proto-JSON field by its camelCase name or its snake_case name. */
function g(o: any, camel: string): any {
  if (!isObject(o)) return undefined;
  if (camel in o) return o[camel];
  const snake = camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  return o[snake];
}

const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const allowed = (fields: string[]) => new Set(fields.flatMap((f) => [f, snake(f)]));

const REQUEST_FIELDS = allowed(["contents", "tools", "toolConfig", "safetySettings", "systemInstruction", "generationConfig", "cachedContent", "model"]);
const CONTENT_FIELDS = allowed(["role", "parts"]);
const PART_FIELDS = allowed([
  "text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode", "codeExecutionResult", "thought",
  "thoughtSignature", "videoMetadata", "partMetadata",
]);
const GEN_FIELDS = allowed([
  "stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema", "responseModalities", "candidateCount",
  "maxOutputTokens", "temperature", "topP", "topK", "seed", "presencePenalty", "frequencyPenalty", "responseLogprobs",
  "logprobs", "enableEnhancedCivicAnswers", "speechConfig", "thinkingConfig", "mediaResolution", "imageConfig",
]);

function injected(inj: InjectedError, model: string): Outcome {
  if (inj.body !== undefined) return { type: "json", status: inj.status, headers: inj.headers, body: inj.body, pretty: true };
  if (inj.status === 429) {
    const ra = inj.retryAfter ?? 1;
    return gErr(
      429,
      inj.message ??
        `You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_paid_tier_input_token_count, limit: 1000000, model: ${model}\nPlease retry in ${ra}s.`,
      [
        { "@type": "type.googleapis.com/google.rpc.Help", links: [{ description: "Learn more about Gemini API quotas", url: "https://ai.google.dev/gemini-api/docs/rate-limits" }] },
        {
          "@type": "type.googleapis.com/google.rpc.QuotaFailure",
          violations: [
            {
              quotaMetric: "generativelanguage.googleapis.com/generate_content_paid_tier_input_token_count",
              quotaId: "GenerateContentPaidTierInputTokensPerModelPerMinute",
              quotaDimensions: { location: "global", model },
              quotaValue: "1000000",
            },
          ],
        },
        { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: `${ra}s` },
      ],
      inj.headers,
    );
  }
  if (inj.status === 502) return { type: "text", status: 502, headers: { "content-type": "text/html; charset=UTF-8", ...inj.headers }, body: CLOUDFLARE_HTML(502).replace("cloudflare", "GFE/2.0") };
  if (inj.status === 503) return gErr(503, inj.message ?? "The model is overloaded. Please try again later.", undefined, inj.headers);
  if (inj.status === 504) return gErr(504, inj.message ?? "Deadline expired before operation could complete.", undefined, inj.headers);
  if (inj.status >= 500) return gErr(inj.status, inj.message ?? "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting", undefined, inj.headers);
  return gErr(inj.status, inj.message ?? "Request contains an invalid argument.", undefined, inj.headers);
}

// ---------- validation ----------

function validateGenerate(ctx: Ctx): Outcome | null {
  if (ctx.parseError) {
    return gErr(400, `Invalid JSON payload received. Unexpected token.\n${ctx.rawBody.slice(0, 20)}\n^`, [
      { "@type": "type.googleapis.com/google.rpc.BadRequest", fieldViolations: [{ description: "Invalid JSON payload received. Unexpected token." }] },
    ]);
  }
  const b = ctx.json;
  if (!isObject(b)) return gErr(400, "Invalid JSON payload received. Expected an object.");
  const extra = new Set(ctx.opts.extraFields ?? []);
  for (const k of Object.keys(b)) if (!REQUEST_FIELDS.has(k) && !extra.has(k)) return unknownName(k);
  const contents = g(b, "contents");
  if (!Array.isArray(contents) || contents.length === 0) return gErr(400, "* GenerateContentRequest.contents: contents is not specified\n");
  for (let i = 0; i < contents.length; i++) {
    const c = contents[i];
    if (!isObject(c)) return gErr(400, `Invalid value at 'contents[${i}]', must be an object`);
    for (const k of Object.keys(c)) if (!CONTENT_FIELDS.has(k)) return unknownName(k, ` at 'contents[${i}]'`);
    const role = c.role;
    if (role !== undefined && role !== "user" && role !== "model" && role !== "function" && role !== "") return gErr(400, "Please use a valid role: user, model.");
    const parts = c.parts;
    if (!Array.isArray(parts) || parts.length === 0) return gErr(400, `* GenerateContentRequest.contents[${i}].parts: contents.parts must not be empty.\n`);
    for (let j = 0; j < parts.length; j++) {
      const p = parts[j];
      if (!isObject(p)) return gErr(400, `Invalid value at 'contents[${i}].parts[${j}]', must be an object`);
      for (const k of Object.keys(p)) if (!PART_FIELDS.has(k)) return unknownName(k, ` at 'contents[${i}].parts[${j}]'`);
      const inline = g(p, "inlineData");
      if (inline !== undefined && (!isObject(inline) || typeof g(inline, "mimeType") !== "string" || typeof inline.data !== "string")) {
        return gErr(400, `* GenerateContentRequest.contents[${i}].parts[${j}].inline_data.mime_type: mime_type is not specified\n`);
      }
      const fc = g(p, "functionCall");
      if (fc !== undefined && (!isObject(fc) || typeof fc.name !== "string")) return gErr(400, `* GenerateContentRequest.contents[${i}].parts[${j}].function_call.name: Name cannot be empty.\n`);
      const fr = g(p, "functionResponse");
      if (fr !== undefined && (!isObject(fr) || typeof fr.name !== "string")) return gErr(400, `* GenerateContentRequest.contents[${i}].parts[${j}].function_response.name: Name cannot be empty.\n`);
    }
    const hasResponse = parts.some((p: any) => g(p, "functionResponse") !== undefined);
    if (hasResponse) {
      const prev = contents[i - 1];
      const calls = isObject(prev) && Array.isArray(prev.parts) ? prev.parts.filter((p: any) => g(p, "functionCall") !== undefined).length : 0;
      if (calls === 0) {
        return gErr(
          400,
          "Please ensure that function response turn comes immediately after a function call turn. And the number of function response parts should be equal to number of function call parts of the function call turn.",
        );
      }
      const responses = parts.filter((p: any) => g(p, "functionResponse") !== undefined).length;
      if (responses !== calls) {
        return gErr(400, "Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.");
      }
    }
  }
  const gen = g(b, "generationConfig");
  if (gen !== undefined) {
    if (!isObject(gen)) return gErr(400, "Invalid value at 'generation_config', must be an object");
    for (const k of Object.keys(gen)) if (!GEN_FIELDS.has(k)) return unknownName(k, " at 'generation_config'");
    const t = g(gen, "temperature");
    if (typeof t === "number" && (t < 0 || t > 2)) return gErr(400, "* GenerateContentRequest.generation_config.temperature: must be in the range [0.0, 2.0]\n");
    const mime = g(gen, "responseMimeType");
    if ((g(gen, "responseSchema") !== undefined || g(gen, "responseJsonSchema") !== undefined) && mime !== "application/json" && mime !== "text/x.enum") {
      return gErr(400, "* GenerateContentRequest.generation_config.response_mime_type: allowed mimetypes are `application/json` and `text/x.enum` when response_schema is set.\n");
    }
    const tc = g(gen, "thinkingConfig");
    if (isObject(tc)) {
      const level = g(tc, "thinkingLevel");
      if (level !== undefined && g(tc, "thinkingBudget") !== undefined) return gErr(400, "You can only set either thinking budget or thinking level.");
      if (level !== undefined) {
        if (!/gemini-3/.test(String(b.model ?? ctx.path))) return gErr(400, "Thinking level is not supported for this model.");
        if (!["minimal", "low", "medium", "high"].includes(String(level).toLowerCase())) return gErr(400, `Invalid value at 'generation_config.thinking_config.thinking_level' (${level})`);
      }
    }
  }
  const sys = g(b, "systemInstruction");
  if (sys !== undefined && !(isObject(sys) && Array.isArray(sys.parts))) return gErr(400, "Invalid value at 'system_instruction', must be a Content object");
  const tools = b.tools;
  if (tools !== undefined) {
    if (!Array.isArray(tools)) return gErr(400, "Invalid value at 'tools', must be a list");
    for (let i = 0; i < tools.length; i++) {
      const decls = g(tools[i], "functionDeclarations");
      if (decls === undefined) continue;
      for (let j = 0; j < decls.length; j++) {
        const name = decls[j]?.name;
        if (typeof name !== "string" || !/^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$/.test(name)) {
          return gErr(400, `* GenerateContentRequest.tools[${i}].function_declarations[${j}].name: Invalid function name. Must start with a letter or an underscore. Must be a-z, A-Z, 0-9, or contains underscores, dots, colons and dashes, with a maximum length of 64.\n`);
        }
      }
    }
  }
  return null;
}

// ---------- conversation ----------

function partsOf(c: any): any[] {
  return Array.isArray(c?.parts) ? c.parts : [];
}

export function geminiConversation(b: any, model: string): Conversation {
  const turns: Turn[] = [];
  for (const c of g(b, "contents")) {
    const parts = partsOf(c);
    const text = parts.filter((p) => typeof p.text === "string" && !p.thought).map((p) => p.text).join("\n");
    const images = parts.filter((p) => g(p, "inlineData") !== undefined || g(p, "fileData") !== undefined).length;
    if (c.role === "model") {
      const calls = parts.filter((p) => g(p, "functionCall")).map((p, i) => {
        const fc = g(p, "functionCall");
        return { id: fc.id ?? `call-${i}`, name: fc.name, args: JSON.stringify(fc.args ?? {}) };
      });
      turns.push({ role: "assistant", text, images, toolCalls: calls.length ? calls : undefined });
    } else {
      const results = parts.filter((p) => g(p, "functionResponse")).map((p) => {
        const fr = g(p, "functionResponse");
        return { id: fr.id ?? fr.name, name: fr.name, content: JSON.stringify(fr.response ?? {}) };
      });
      turns.push(results.length ? { role: "tool", text, images, toolResults: results } : { role: "user", text, images });
    }
  }
  const tools: Conversation["tools"] = [];
  for (const t of Array.isArray(b.tools) ? b.tools : []) {
    for (const d of g(t, "functionDeclarations") ?? []) tools.push({ name: d.name, schema: d.parameters ?? g(d, "parametersJsonSchema") });
  }
  const fcc = g(g(b, "toolConfig"), "functionCallingConfig");
  const mode = g(fcc, "mode");
  const names = g(fcc, "allowedFunctionNames");
  const gen = g(b, "generationConfig") ?? {};
  const thinking = g(gen, "thinkingConfig");
  const sys = g(b, "systemInstruction");
  return {
    model,
    system: partsOf(sys).map((p) => p.text ?? "").join("\n"),
    turns,
    tools,
    toolChoice:
      mode === "NONE"
        ? { mode: "none" }
        : mode === "ANY"
          ? { mode: "required", name: Array.isArray(names) && names.length === 1 ? names[0] : undefined }
          : { mode: "auto" },
    maxTokens: g(gen, "maxOutputTokens"),
    stop: g(gen, "stopSequences") ?? [],
    wantsReasoning: isObject(thinking) && g(thinking, "includeThoughts") === true,
    json: g(gen, "responseMimeType") === "application/json" ? (g(gen, "responseSchema") ?? g(gen, "responseJsonSchema") ?? {}) : undefined,
  };
}

// ---------- responses ----------

function finishReason(r: Reply): string {
  if (r.nativeFinish) return r.nativeFinish;
  return r.finish === "length" ? "MAX_TOKENS" : "STOP";
}

function usageMetadata(r: Reply, candidates: number, thoughts: number) {
  const u: Record<string, unknown> = {
    promptTokenCount: r.usage.input,
    candidatesTokenCount: candidates,
    totalTokenCount: r.usage.input + candidates + thoughts,
    ...(r.usage.cached ? { cachedContentTokenCount: r.usage.cached } : {}),
    promptTokensDetails: [{ modality: "TEXT", tokenCount: r.usage.input }],
    ...(r.usage.cached ? { cacheTokensDetails: [{ modality: "TEXT", tokenCount: r.usage.cached }] } : {}),
    ...(thoughts ? { thoughtsTokenCount: thoughts } : {}),
  };
  return u;
}

const signs = (model: string) => /2\.5|gemini-3/.test(model);

function callParts(ctx: Ctx, model: string, r: Reply) {
  return r.toolCalls.map((c, i) => ({
    functionCall: { name: c.name, args: JSON.parse(c.args || "{}") },
    ...(i === 0 && signs(model) ? { thoughtSignature: `Cs${ctx.id("thought-signature", 62, "b64url")}=` } : {}),
  }));
}

export function geminiResponse(ctx: Ctx, model: string, r: Reply) {
  const parts: unknown[] = [];
  if (r.reasoning) parts.push({ text: r.reasoning, thought: true });
  if (r.text) parts.push({ text: r.text });
  parts.push(...callParts(ctx, model, r));
  return {
    candidates: [
      {
        content: { parts, role: "model" },
        finishReason: finishReason(r),
        index: 0,
        ...(r.toolCalls.length ? { finishMessage: "Model generated function call(s)." } : {}),
      },
    ],
    usageMetadata: usageMetadata(r, r.usage.output, r.usage.reasoning),
    modelVersion: model,
    responseId: ctx.id("response", 23, "b64url"),
  };
}

/** The GenerateContentResponse chunks of a stream, in order. */
export function geminiChunks(ctx: Ctx, model: string, r: Reply): unknown[] {
  const chunks = ctx.switches.chunks;
  const responseId = ctx.id("response", 23, "b64url");
  const out: unknown[] = [];
  let seen = 0;
  const thoughts = r.usage.reasoning;
  const push = (parts: unknown[], last: boolean, extra: Record<string, unknown> = {}) => {
    out.push({
      candidates: [{ content: { parts, role: "model" }, ...(last ? { finishReason: finishReason(r) } : {}), index: 0, ...extra }],
      usageMetadata: usageMetadata(r, last ? r.usage.output : Math.min(seen, r.usage.output), thoughts),
      modelVersion: model,
      responseId,
    });
  };
  for (const piece of chunkText(r.reasoning, chunks)) push([{ text: piece, thought: true }], false);
  const texts = chunkText(r.text, chunks);
  texts.forEach((piece, i) => {
    seen += estimateTokens(piece);
    const last = i === texts.length - 1 && r.toolCalls.length === 0;
    push([{ text: piece }], last);
  });
  if (r.toolCalls.length) push(callParts(ctx, model, r), true, { finishMessage: "Model generated function call(s)." });
  if (out.length === 0 || (texts.length === 0 && r.toolCalls.length === 0)) push([{ text: "" }], true);
  return out;
}

export const geminiFrame = (chunk: unknown) => `data: ${googleJson(chunk)}\r\n\r\n`;

function errorFrame(status: number): string {
  return `data: ${googleJson({ error: { code: status, message: status === 503 ? "The model is overloaded. Please try again later." : "An internal error has occurred.", status: STATUS[status] ?? "INTERNAL" } })}\r\n\r\n`;
}

export const GEMINI_MODELS = ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash", "gemini-embedding-001", "text-embedding-004"];

function modelInfo(id: string) {
  const embed = /embed/.test(id);
  return {
    name: `models/${id}`,
    version: "001",
    displayName: id,
    inputTokenLimit: embed ? 2048 : 1048576,
    outputTokenLimit: embed ? 1 : 65536,
    supportedGenerationMethods: embed ? ["embedContent", "batchEmbedContents"] : ["generateContent", "countTokens", "streamGenerateContent"],
  };
}

function embedDims(model: string, content: any): number {
  const d = g(content, "outputDimensionality");
  if (typeof d === "number") return d;
  return /gemini-embedding/.test(model) ? 3072 : 768;
}

function contentText(c: any): string | null {
  if (!isObject(c) || !Array.isArray(c.parts) || c.parts.length === 0) return null;
  return c.parts.map((p: any) => p.text ?? "").join(" ");
}

export const gemini: ProviderModule = {
  kind: "gemini",
  handle(ctx) {
    // Vertex AI serves the same API under a project's publisher path, with a Bearer access token.
    const vertex = /^\/v1\/projects\/[^/]+\/locations\/[^/]+\/publishers\/google\/models\/([^/:]+):([A-Za-z]+)$/.exec(ctx.path);
    const m = vertex ? [ctx.path, "v1", vertex[1], vertex[2]] : /^\/(v1beta|v1|v1alpha)\/models(?:\/([^/:]+)(?::([A-Za-z]+))?)?\/?$/.exec(ctx.path);
    const key = vertex ? bearer(ctx.headers) : (ctx.headers["x-goog-api-key"] as string | undefined) ?? ctx.query.get("key") ?? undefined;
    const notFound = () => gErr(404, `Method not found.`);
    if (!m) return notFound();
    if (vertex && (!key || !keyAccepted(ctx.opts, key))) {
      return gErr(401, "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.");
    }
    if (!key) {
      return gErr(
        403,
        "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
      );
    }
    if (!keyAccepted(ctx.opts, key)) {
      return gErr(400, "API key not valid. Please pass a valid API key.", [
        { "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "API_KEY_INVALID", domain: "googleapis.com", metadata: { service: "generativelanguage.googleapis.com" } },
        { "@type": "type.googleapis.com/google.rpc.LocalizedMessage", locale: "en-US", message: "API key not valid. Please pass a valid API key." },
      ]);
    }
    const [, version, rawModel, method] = m;
    const ids = ctx.opts.models ?? GEMINI_MODELS;
    if (!rawModel) {
      if (ctx.method !== "GET") return notFound();
      return { type: "json", status: 200, pretty: true, headers: JSON_HEADERS, body: { models: ids.map(modelInfo) } };
    }
    const model = decodeURIComponent(rawModel);
    if (!method) {
      if (ctx.method !== "GET") return notFound();
      if (ctx.opts.models && !ctx.opts.models.includes(model)) return gErr(404, `models/${model} is not found for API version ${version}, or is not supported for get. Call ListModels to see the list of available models and their supported methods.`);
      return { type: "json", status: 200, pretty: true, headers: JSON_HEADERS, body: modelInfo(model) };
    }
    if (ctx.method !== "POST") return notFound();
    const methods = ["generateContent", "streamGenerateContent", "countTokens", "embedContent", "batchEmbedContents"];
    if (!methods.includes(method)) return notFound();
    if (ctx.opts.models && !ctx.opts.models.includes(model)) {
      return gErr(
        404,
        `models/${model} is not found for API version ${version}, or is not supported for ${method}. Call ListModels to see the list of available models and their supported methods.`,
      );
    }

    if (method === "embedContent" || method === "batchEmbedContents") {
      if (ctx.parseError || !isObject(ctx.json)) return gErr(400, "Invalid JSON payload received.");
      const requests: any[] = method === "embedContent" ? [ctx.json] : ctx.json.requests;
      if (!Array.isArray(requests) || requests.length === 0) return gErr(400, "* BatchEmbedContentsRequest.requests: requests is not specified\n");
      const texts: string[] = [];
      for (let i = 0; i < requests.length; i++) {
        const t = contentText(requests[i]?.content);
        if (t === null) return gErr(400, `* ${method === "embedContent" ? "EmbedContentRequest" : `BatchEmbedContentsRequest.requests[${i}]`}.content: contents is not specified\n`);
        texts.push(t);
      }
      const { step, injected: inj } = ctx.begin();
      if (step?.raw) return rawOutcome(step.raw);
      if (inj) return injected(inj, model);
      const vectors = texts.map((t, i) => ({ values: step?.embeddings?.[i] ?? embeddingVector(t, embedDims(model, requests[i])) }));
      return { type: "json", status: 200, pretty: true, headers: JSON_HEADERS, body: method === "embedContent" ? { embedding: vectors[0] } : { embeddings: vectors } };
    }

    if (method === "countTokens") {
      const body = isObject(ctx.json) && isObject(ctx.json.generateContentRequest) ? ctx.json.generateContentRequest : ctx.json;
      if (!isObject(body) || !Array.isArray(g(body, "contents"))) return gErr(400, "* CountTokensRequest.contents: contents is not specified\n");
      const conv = geminiConversation(body, model);
      const total = decideReply(conv, undefined, () => "").usage.input;
      return { type: "json", status: 200, pretty: true, headers: JSON_HEADERS, body: { totalTokens: total, promptTokensDetails: [{ modality: "TEXT", tokenCount: total }] } };
    }

    const invalid = validateGenerate(ctx);
    if (invalid) return invalid;
    const { step, injected: inj } = ctx.begin();
    if (step?.raw) return rawOutcome(step.raw);
    if (inj) return injected(inj, model);
    const conv = geminiConversation(ctx.json, model);
    // 2.5 and later models think by default: thoughtsTokenCount is reported even when no thought parts are asked for.
    conv.hiddenReasoning = !conv.wantsReasoning && signs(model);
    const reply = decideReply(conv, step, () => "");
    if (method === "generateContent") return { type: "json", status: 200, pretty: true, headers: JSON_HEADERS, body: geminiResponse(ctx, model, reply) };
    const chunks = geminiChunks(ctx, model, reply);
    if (ctx.query.get("alt") === "sse") {
      return {
        type: "sse",
        headers: { "content-type": "text/event-stream", "content-disposition": "attachment", server: "scaffolding on HTTPServer2", "x-content-type-options": "nosniff" },
        frames: chunks.map(geminiFrame),
        errorFrame,
      };
    }
    // Without alt=sse the stream is one JSON array, its elements written as they are produced.
    const frames = chunks.map((c, i) => `${i === 0 ? "[" : ",\r\n"}${JSON.stringify(c, null, 2)}`);
    frames.push("]");
    return { type: "sse", headers: { ...JSON_HEADERS }, frames, errorFrame };
  },
};
