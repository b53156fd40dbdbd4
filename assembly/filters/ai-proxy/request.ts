// The request phase: what the client asked for (path, method, client API), the body read once,
// validated and translated for the chosen instance, and the held headers pointed at it. Errors
// before anything reaches a provider go out here too (fail), in the client's API shape.
import {
  FilterHeadersStatusValues, REQUEST_HEADERS, REQUEST_BODY, getHeaderPairs, removeHeader, replaceHeader,
  sendLocalResponse, setFilterState, getFilterState, clearRouteCache, nowNanos,
} from "../../lib/sdk";
import { JsonValue, ByteBuilder, parseJson, jsonError, jsonTooManyValues, writeMerged } from "../../lib/json";
import * as keys from "../../lib/keys";
import { estimatePromptTokens } from "../../lib/tokens";
import { ClientError, Instance, Provider, Upstream, isPlainModelName, invalidModel, MAX_MODEL_NAME } from "../../providers/types";
import { validateRequest, isJsonMediaType } from "./validate";
import { capOutput } from "./budget";
import { captureCap } from "./capture";
import { signUpstream } from "./aws";
import { authorize } from "./upstream-token";
import { pickKey, useKey, countKey } from "./key-pool";
import { CLIENT_OPENAI, CLIENT_ANTHROPIC, CLIENT_GEMINI, CLIENT_RESPONSES, RESPONSES_PATH, clientOf, toOpenAIRequest } from "./client";
import { countedRequest } from "./client-gemini";
import { geminiEmbedToOpenAI } from "./client-gemini-embeddings";
import { asksForSse, decodePathSegment, geminiRoute } from "../../lib/path";
import { validateResponses, responseNotFound } from "./responses-request";
import { StoredEntry, findStored, historyOf, keeperFor, deleteStored, mayBeStored } from "./responses-store";
import { Converted } from "./client-anthropic";
import { choose, useInstance } from "./selection";
import { scopeError, scopedModels } from "./scope";
import { answerEstimate, countTokensUpstream } from "./count-tokens";
import {
  Exchange, CHAT, EMBEDDINGS, COUNT_TOKENS, HAS_CONTENT_LENGTH, HAS_ACCEPT_ENCODING, HAS_AUTHORIZATION, HAS_X_API_KEY, HAS_API_KEY, HAS_GOOG_KEY,
  proxyMetrics, replaceBody, nowMs,
} from "./state";

/** Gemini's own API (client-gemini.ts): its unknown paths get Gemini's 404. */
const GEMINI_PREFIX = "/v1beta/";

/** GET and DELETE /v1/responses/{id}: the gateway's stored responses (responses-store.ts). */
const STORED_PREFIX = RESPONSES_PATH + "/";

/** GET /v1/models/{id} (models.ts). */
const MODELS_PREFIX = "/v1/models/";

/** Anthropic's token counting (count-tokens.ts). */
const COUNT_TOKENS_PATH = "/v1/messages/count_tokens";

/** request_type of a request to an AI path the gateway does not serve (404 / 405). */
const REQUEST_UNSUPPORTED = "ai_unsupported";

/** A client's header value inside an error message: printable ASCII, at most 64 characters. */
function safeForMessage(v: string): string {
  let out = "";
  for (let i = 0; i < v.length && i < 64; i++) {
    const c = v.charCodeAt(i);
    out += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : "?";
  }
  return out;
}

/** The request headers: the API asked for, its client API, and what targeting must remove. */
export function readRequestHeaders(x: Exchange, endOfStream: bool): FilterHeadersStatusValues {
  x.startNs = nowNanos();
  const h = getHeaderPairs(REQUEST_HEADERS);
  let method = "";
  let path = "";
  let contentLength: i64 = -1;
  let contentType: string | null = null;
  let anthropicVersion = false;
  let clusterHeader = false;
  for (let i = 0; i < h.count; i++) {
    if (h.keyIs(i, ":method")) method = h.value(i);
    else if (h.keyIs(i, ":path")) path = h.value(i);
    else if (h.keyIs(i, "content-type")) contentType = h.value(i);
    else if (h.keyIs(i, "anthropic-version")) anthropicVersion = true;
    else if (h.keyIs(i, "anthropic-beta")) x.anthropicBeta = x.anthropicBeta.length ? x.anthropicBeta + "," + h.value(i) : h.value(i);
    else if (h.keyIs(i, "content-length")) {
      contentLength = I64.parseInt(h.value(i));
      x.present |= HAS_CONTENT_LENGTH;
    } else if (h.keyIs(i, "accept-encoding")) x.present |= HAS_ACCEPT_ENCODING;
    else if (h.keyIs(i, "authorization")) x.present |= HAS_AUTHORIZATION;
    else if (h.keyIs(i, "x-api-key")) x.present |= HAS_X_API_KEY;
    else if (h.keyIs(i, "api-key")) x.present |= HAS_API_KEY;
    else if (h.keyIs(i, "x-goog-api-key")) x.present |= HAS_GOOG_KEY;
    else if (h.keyIs(i, x.settings.clusterHeader)) clusterHeader = true;
  }
  const q = path.indexOf("?");
  const route = q >= 0 ? path.substring(0, q) : path;
  if (route.length > STORED_PREFIX.length && route.startsWith(STORED_PREFIX) && route.indexOf("/", STORED_PREFIX.length) < 0 && owns(x, route)) {
    return storedResponse(x, method, route.substring(STORED_PREFIX.length), q >= 0 ? path.substring(q + 1) : "");
  }
  // The paths ai-proxy serves, each with its one method; the client's API shape is the path's
  // (client.ts clientOf; Gemini's API by its own paths, lib/path.ts geminiRoute).
  const gemini = geminiRoute(route);
  let allow = "";
  if (gemini !== null) allow = gemini.method.length ? "POST" : "GET";
  else if (route == "/v1/models" || route.startsWith(MODELS_PREFIX)) allow = "GET";
  else if (route == "/v1/chat/completions" || route == "/v1/messages" || route == "/v1/embeddings" || route == COUNT_TOKENS_PATH || route == RESPONSES_PATH) allow = "POST";
  x.client = gemini !== null || route.startsWith(GEMINI_PREFIX) ? CLIENT_GEMINI : clientOf(route, anthropicVersion);
  if (allow.length && method != allow) {
    // A known API with the wrong method: 405 with the method it takes (RFC 9110, 15.5.6).
    setFilterState(keys.REQUEST_TYPE, REQUEST_UNSUPPORTED);
    x.allow = allow;
    fail(x, ClientError.of(405, "Method " + method + " is not allowed on " + route + "; use " + allow + ".", "invalid_request_error", "method_not_allowed"));
    return FilterHeadersStatusValues.StopIteration;
  }
  if (gemini !== null && gemini.method.length == 0) return answerModels(x, gemini.model.length ? gemini.model : null);
  if (gemini === null && (route == "/v1/models" || route.startsWith(MODELS_PREFIX))) {
    return answerModels(x, route == "/v1/models" ? null : route.substring(MODELS_PREFIX.length));
  }
  if (gemini !== null) {
    const m = gemini.method;
    if (m == "generateContent" || m == "streamGenerateContent") x.kind = CHAT;
    else if (m == "countTokens") x.kind = COUNT_TOKENS;
    else if (m == "embedContent" || m == "batchEmbedContents") x.kind = EMBEDDINGS;
    else {
      setFilterState(keys.REQUEST_TYPE, REQUEST_UNSUPPORTED);
      fail(x, ClientError.of(404, "The gateway does not serve Gemini's '" + safeForMessage(m) + "' method.", "invalid_request_error", "unknown_path"));
      return FilterHeadersStatusValues.StopIteration;
    }
    const model = decodePathSegment(gemini.model);
    if (model === null || (model as string).length == 0) {
      fail(x, invalidModel("is not a valid model in the path"));
      return FilterHeadersStatusValues.StopIteration;
    }
    // @google/genai names the model as its resource (models/<id>) in the body's sense; the path has the id.
    x.pathModel = model as string;
    x.geminiMethod = m;
    x.stream = m == "streamGenerateContent";
    x.geminiArray = x.stream && !asksForSse(q >= 0 ? path.substring(q + 1) : "");
  } else if (route == "/v1/chat/completions" || route == "/v1/messages" || route == RESPONSES_PATH) x.kind = CHAT;
  else if (route == "/v1/embeddings") x.kind = EMBEDDINGS;
  else if (route == COUNT_TOKENS_PATH) x.kind = COUNT_TOKENS;
  else if (owns(x, route)) {
    // Under the AI API's prefix but not an API the gateway serves (/v1/responses/{id}, a typo): the
    // client's SDK reads a JSON 404 it understands.
    setFilterState(keys.REQUEST_TYPE, REQUEST_UNSUPPORTED);
    fail(x, ClientError.of(404, "The gateway does not serve " + method + " " + route + ".", "invalid_request_error", "unknown_path"));
    return FilterHeadersStatusValues.StopIteration;
  } else {
    setFilterState(keys.REQUEST_TYPE, "traditional_http");
    // The route takes its cluster from this header: on a path no filter routed, a client's own value
    // would pick any cluster (an MCP server's or an A2A agent's, without their filter's checks). Only
    // the mcp and a2a filters route other paths, and they say so in filter state.
    if (clusterHeader && getFilterState(keys.MCP_METHOD) === null && getFilterState(keys.A2A_METHOD) === null) {
      removeHeader(REQUEST_HEADERS, x.settings.clusterHeader);
    }
    return FilterHeadersStatusValues.Continue;
  }
  // The body is read as JSON; a body that says it is something else is refused rather than
  // guessed at (no media type at all is read as JSON, as the providers' APIs do).
  if (contentType !== null && !isJsonMediaType(contentType as string)) {
    fail(x, ClientError.of(400, "The request body must be JSON (content-type: application/json), not '" + safeForMessage(contentType as string) + "'.", "invalid_request_error", "invalid_content_type"));
    return FilterHeadersStatusValues.StopIteration;
  }
  if (endOfStream) {
    fail(x, ClientError.of(400, "The request needs a JSON body.", "invalid_request_error", ""));
    return FilterHeadersStatusValues.StopIteration;
  }
  if (contentLength > x.settings.maxBodyBytes) {
    tooLarge(x);
    return FilterHeadersStatusValues.StopIteration;
  }
  return FilterHeadersStatusValues.StopIteration;
}

/** GET of the model list (`id` null) or of one model, in the client's shape (models.ts). */
function answerModels(x: Exchange, id: string | null): FilterHeadersStatusValues {
  setFilterState(keys.REQUEST_TYPE, "ai_models");
  const models = scopedModels(x.settings);
  let body: ArrayBuffer | null;
  if (id === null) body = models.list(x.client);
  else {
    const decoded = decodePathSegment(id as string);
    body = decoded !== null ? models.one(decoded as string, x.client) : null;
    if (body === null) {
      const e = ClientError.of(404, "The model '" + safeForMessage(decoded !== null ? decoded as string : id as string) + "' is not served by this gateway.", "invalid_request_error", "model_not_found");
      e.param = "model";
      fail(x, e);
      return FilterHeadersStatusValues.StopIteration;
    }
  }
  x.replied = true;
  sendLocalResponse(200, "sluice_models", body as ArrayBuffer, ["content-type", "application/json"]);
  return FilterHeadersStatusValues.StopIteration;
}

/**
 * GET /v1/responses/{id}: the stored Response; DELETE: it is deleted (a tombstone in its slot) and
 * the client gets {"id", "object": "response", "deleted": true}. Only the consumer that created it
 * finds it; an unknown, expired, deleted or another consumer's id is a 404 in OpenAI's shape.
 * Both are local replies (Envoy sends them from this filter; nothing goes upstream).
 */
function storedResponse(x: Exchange, method: string, segment: string, query: string): FilterHeadersStatusValues {
  setFilterState(keys.REQUEST_TYPE, "ai_stored_response");
  // OpenAI's error shape, whatever headers came along (anthropic-version would pick Anthropic's).
  x.client = CLIENT_RESPONSES;
  if (method != "GET" && method != "DELETE") {
    x.allow = "GET, DELETE";
    fail(x, ClientError.of(405, "Method " + method + " is not allowed on /v1/responses/{id}; use GET or DELETE.", "invalid_request_error", "method_not_allowed"));
    return FilterHeadersStatusValues.StopIteration;
  }
  if (method == "GET" && query.indexOf("stream=true") >= 0) {
    const e = ClientError.of(400, "A stored response is returned whole through the gateway; 'stream' is not supported here.", "invalid_request_error", "unsupported_parameter");
    e.param = "stream";
    fail(x, e);
    return FilterHeadersStatusValues.StopIteration;
  }
  const id = decodePathSegment(segment);
  const found = id !== null ? findStored(x.settings.store, id as string, consumerOf(), x.settings.maxJsonValues) : null;
  if (found === null || (method == "DELETE" && !deleteStored(found as StoredEntry))) {
    fail(x, responseNotFound(safeForMessage(id !== null ? id as string : segment), 404, ""));
    return FilterHeadersStatusValues.StopIteration;
  }
  const b = new ByteBuilder(method == "GET" ? 4096 : 128);
  if (method == "GET") b.value((found as StoredEntry).entry.get("response") as JsonValue);
  else b.raw('{"id":').str(id as string).raw(',"object":"response","deleted":true}');
  x.replied = true;
  sendLocalResponse(200, "sluice_stored_response", b.toArrayBuffer(), ["content-type", "application/json"]);
  return FilterHeadersStatusValues.StopIteration;
}

/** The consumer the response store scopes entries to (identity's sluice.consumer). */
function consumerOf(): string {
  const c = getFilterState(keys.CONSUMER);
  return c !== null ? c as string : "anonymous";
}

/** The stored response a Responses request's previous_response_id names, when the gateway has it (for this consumer). */
export function previousStored(x: Exchange, req: JsonValue): StoredEntry | null {
  const prev = req.getString("previous_response_id");
  // (OpenAI's own ids never name a slot: nothing is read for them.)
  if (prev === null || !mayBeStored(x.settings.store, prev as string)) return null;
  return findStored(x.settings.store, prev as string, consumerOf(), x.settings.maxJsonValues);
}

/**
 * A Responses request in chat format for a provider without OpenAI's Responses API: the stored
 * conversation its previous_response_id names (stored: previousStored's) after the instructions,
 * then its input; unless it says store: false, its answer will be stored (x.keeper).
 */
export function responsesChat(x: Exchange, req: JsonValue, stored: StoredEntry | null): Converted {
  const c = toOpenAIRequest(CLIENT_RESPONSES, req, "", false, stored !== null ? historyOf(stored as StoredEntry) : null);
  if (c.error !== null) return c;
  // The prompt the provider reads includes the stored conversation (the usage estimate's base).
  if (stored !== null) x.promptEstimate = estimatePromptTokens(c.req as JsonValue);
  if (x.settings.store.maxEntries > 0) x.keeper = keeperFor(x.settings.store, req, consumerOf(), c.req as JsonValue);
  return c;
}

/** ai-proxy answers for this path (api_prefixes): it is under the AI API. */
export function owns(x: Exchange, route: string): bool {
  const prefixes = x.settings.apiPrefixes;
  for (let i = 0; i < prefixes.length; i++) if (route.startsWith(prefixes[i])) return true;
  return false;
}

export function tooLarge(x: Exchange): void {
  fail(x, ClientError.of(413, "The request body is larger than " + x.settings.maxBodyBytes.toString() + " bytes.", "invalid_request_error", "request_too_large"));
}

/** Parses, translates and targets the request. Returns the error to send, or null. */
export function prepare(x: Exchange, body: ArrayBuffer): ClientError | null {
  x.bodyLen = body.byteLength;
  const parsed = parseJson(body, x.settings.maxJsonValues);
  if (parsed === null && jsonTooManyValues) {
    return ClientError.of(400, "The request body has more than " + x.settings.maxJsonValues.toString() + " JSON values.", "invalid_request_error", "request_too_complex");
  }
  if (parsed === null) return ClientError.of(400, "The request body is not valid JSON: " + jsonError + ".", "invalid_request_error", "invalid_json");
  let req = parsed as JsonValue;
  const clientReq = req;
  if (x.client == CLIENT_GEMINI) {
    // The model and the stream switch come from the path; the body is read into OpenAI's format
    // first, so the checks, the estimate and the routing below read it as any other request.
    const c = x.kind == EMBEDDINGS
      ? geminiEmbedToOpenAI(req, x.pathModel, x.geminiMethod == "batchEmbedContents")
      : toOpenAIRequest(CLIENT_GEMINI, x.kind == COUNT_TOKENS ? countedRequest(req) : req, x.pathModel, x.stream);
    if (c.error !== null) return c.error;
    req = c.req as JsonValue;
    x.untranslatable = c.untranslatable;
    x.openaiReq = req;
  }
  // What the gateway reads to route, translate and account (one pass over the parsed tree).
  const responses = x.client == CLIENT_RESPONSES;
  let invalid = validateRequest(req, x.kind != EMBEDDINGS && !responses, x.client == CLIENT_ANTHROPIC, x.settings.limits, x.kind == COUNT_TOKENS);
  // A Responses request's own members (what is refused for every provider, types and bounds).
  if (invalid === null && responses) invalid = validateResponses(req, x.settings.limits);
  if (invalid !== null) return invalid;
  // model and stream are named alike in OpenAI's and Anthropic's formats.
  const model = req.get("model");
  x.requestModel = model !== null ? model.s : "";
  const stream = req.get("stream");
  x.stream = x.kind == CHAT && stream !== null && stream.isBool() && stream.b;

  x.clientReq = clientReq;
  // (Only when ai-cache is in the chain: asking costs a host call on every request.)
  if (x.kind == CHAT && x.settings.cacheCapture) x.captureCap = captureCap();
  // From the text the model reads, once: balancing and the usage record both use it.
  x.promptEstimate = estimatePromptTokens(req);
  // A virtual key's model and pool scopes, before any instance is picked or asked.
  const outOfScope = scopeError(x);
  if (outOfScope !== null) return outOfScope;
  const i = choose(x);
  if (i < 0) return x.noInstance;
  useInstance(x, i);
  const inst = x.inst as Instance;
  const provider = x.provider as Provider;
  if (x.upstreamModel.length == 0) return ClientError.of(400, "'model' is required.", "invalid_request_error", "missing_model");
  // Model names go into upstream paths, filter state and logs: checked before anything leaves.
  const badModel = provider.modelError(inst, x.upstreamModel);
  if (badModel !== null) return badModel;
  if (x.requestModel.length && !isPlainModelName(x.requestModel)) return invalidModel("must be 1 to " + MAX_MODEL_NAME.toString() + " characters without control characters");
  if (x.kind == COUNT_TOKENS) {
    const up = countTokensUpstream(x);
    if (up === null) {
      answerEstimate(x);
      return null;
    }
    x.native = true;
    // Gemini's count names its model in the path: the body goes on as it came.
    if (x.client == CLIENT_GEMINI) return send(x, body, null, up);
    const out = new ByteBuilder(body.byteLength + 64);
    writeMerged(out, req, JsonValue.object().set("model", JsonValue.str(x.upstreamModel)));
    return send(x, body, out, up);
  }
  const budget = getFilterState(keys.STREAM_BUDGET);
  if (budget !== null && x.stream) x.budget = I64.parseInt(budget as string);

  if (x.client == CLIENT_ANTHROPIC) {
    if (provider.speaksAnthropic && x.budget < 0 && !x.redacts()) {
      // Same format both ways: the body passes through with only model, limit and options set,
      // so nothing Anthropic-specific (thinking signatures, cache_control, betas) is lost.
      x.native = true;
      return send(x, body, nativeBody(x, req, inst, body.byteLength), provider.chatUpstream(inst, x.upstreamModel, x.stream));
    }
    const c = toOpenAIRequest(x.client, req);
    if (c.error !== null) return c.error;
    req = c.req as JsonValue;
  } else if (responses) {
    // An instance with its own Responses API (OpenAI, Azure OpenAI) takes the body as it is, with
    // only model, limit and options set (previous_response_id, conversation and built-in tools
    // included); the others get it translated into their chat API. A previous_response_id the
    // gateway stored (a translated answer's) is continued from its store, for every provider; one
    // it does not have is an OpenAI instance's own, or unknown (400 for a translated provider).
    const stored = req.get("previous_response_id") !== null ? previousStored(x, req) : null;
    const rup = provider.responsesUpstream(inst, x.upstreamModel);
    if (rup !== null && stored === null && x.budget < 0 && !x.redacts()) {
      x.native = true;
      return send(x, body, nativeBody(x, req, inst, body.byteLength), rup);
    }
    const c = responsesChat(x, req, stored);
    if (c.error !== null) return c.error;
    req = c.req as JsonValue;
  } else if (x.client == CLIENT_GEMINI && provider.speaksGemini && x.budget < 0 && !x.redacts() && !x.geminiArray && inst.options === null && inst.maxTokens < 0) {
    // Gemini's own API both ways: the body passes on as it came (the model is in the path), so
    // nothing only Gemini knows (safetySettings, cachedContent, thought signatures) is lost. A
    // JSON-array stream, instance options or a limit are written by the gateway instead.
    x.native = true;
    const up = x.kind == EMBEDDINGS ? provider.nativeUpstream(inst, x.upstreamModel, x.geminiMethod) : provider.chatUpstream(inst, x.upstreamModel, x.stream);
    return send(x, body, null, up as Upstream);
  }
  if (x.untranslatable !== null) return x.untranslatable;
  x.openaiReq = req;
  if (x.kind == CHAT && x.budget >= 0) x.capped = capOutput(req, inst, x.budget);
  if (x.kind == CHAT) {
    const so = req.get("stream_options");
    if (so !== null && so.isObject()) {
      const iu = so.get("include_usage");
      x.includeUsage = iu !== null && iu.isBool() && iu.b;
    }
    // An OpenAI client of an OpenAI-format provider gets the answer as sent. Its stream is
    // reframed (startStream): chunk data as sent, but the gateway may have to add the usage
    // chunk the client asked for, before [DONE], when the provider sends none.
    x.native = x.client == CLIENT_OPENAI && provider.speaksOpenAI && !x.stream && x.budget < 0 && !x.redacts();
  } else {
    const input = req.get("input");
    if (input === null || (!input.isString() && !input.isArray())) {
      return ClientError.of(400, "'input' must be a string or a list.", "invalid_request_error", "invalid_value");
    }
  }

  const out = new ByteBuilder(body.byteLength + 256);
  let err: ClientError | null;
  let up: Upstream | null;
  if (x.kind == CHAT) {
    err = provider.chatRequest(req, x.upstreamModel, x.stream, inst, out);
    if (err === null) x.answerMode = provider.answerMode(req, x.upstreamModel, inst);
    up = provider.chatUpstream(inst, x.upstreamModel, x.stream);
  } else {
    up = provider.embeddingsUpstream(inst, x.upstreamModel);
    if (up === null) return ClientError.of(400, "Embeddings are not supported by provider " + provider.name + ".", "invalid_request_error", "unsupported_endpoint");
    err = provider.embeddingsRequest(req, x.upstreamModel, inst, out);
  }
  if (err !== null) return err;
  return send(x, body, out, up as Upstream);
}

/** The client's body with the upstream model, the instance's limit and options set. */
export function nativeBody(x: Exchange, req: JsonValue, inst: Instance, sizeHint: i32): ByteBuilder {
  const out = new ByteBuilder(sizeHint + 256);
  writeNative(x, req, inst, false, out);
  return out;
}

/** Writes the client's body with the instance's members set (noStream: a fallback's, never streamed). */
export function writeNative(x: Exchange, req: JsonValue, inst: Instance, noStream: bool, out: ByteBuilder): void {
  // Claude on Vertex and Bedrock: the model is in the URL, and the body names its Anthropic version
  // instead; on Bedrock whether it streams is in the URL too.
  const provider = x.provider as Provider;
  const version = provider.bodyAnthropicVersion;
  writeMerged(out, req, overrides(x, inst, noStream), version.length ? "model" : "", provider.streamInUrl ? "stream" : "");
}

/** Members a native pass-through body gets from the instance (and stream off for a fallback). */
export function overrides(x: Exchange, inst: Instance, noStream: bool): JsonValue {
  const provider = x.provider as Provider;
  const responses = x.client == CLIENT_RESPONSES;
  const version = provider.bodyAnthropicVersion;
  const overrides = version.length
    ? JsonValue.object().set("anthropic_version", JsonValue.str(version))
    : JsonValue.object().set("model", JsonValue.str(responses ? provider.responsesModel(inst, x.upstreamModel) : x.upstreamModel));
  if (inst.maxTokens >= 0) overrides.set(responses ? "max_output_tokens" : provider.maxTokensField, JsonValue.int(inst.maxTokens));
  const options = inst.options;
  if (options !== null) {
    for (let i = 0, n = options.length; i < n; i++) overrides.set(options.keyAt(i), options.at(i));
  }
  // (Where the URL says whether it streams, the body has no stream member: nativeBody drops it.)
  if (noStream && !provider.streamInUrl) overrides.set("stream", JsonValue.boolean(false));
  // Bedrock reads an Anthropic client's betas from the body, not the anthropic-beta header.
  if (provider.betasInBody && x.anthropicBeta.length && x.client == CLIENT_ANTHROPIC) overrides.set("anthropic_beta", betaList(x.anthropicBeta));
  return overrides;
}

/** The anthropic-beta header's comma-separated names as a JSON list (Bedrock answers for names it does not know). */
function betaList(header: string): JsonValue {
  const list = JsonValue.array();
  const parts = header.split(",");
  for (let i = 0; i < parts.length; i++) {
    const name = parts[i].trim();
    if (name.length) list.push(JsonValue.str(name));
  }
  return list;
}

/**
 * Replaces the body (out null: it goes on as the client sent it), points the held headers at the
 * instance and records who serves it.
 */
export function send(x: Exchange, original: ArrayBuffer, out: ByteBuilder | null, up: Upstream): ClientError | null {
  const inst = x.inst as Instance;
  const provider = x.provider as Provider;
  const source = x.proxyRoot.tokens.length > x.instIndex ? x.proxyRoot.tokens[x.instIndex] : null;
  if (source !== null) {
    const e = authorize(source, inst.name, up, nowMs());
    if (e !== null) return e;
  }
  x.keyIndex = pickKey(inst, nowMs());
  useKey(inst, up, x.keyIndex);
  countKey(inst, x.keyIndex);
  if (out !== null) signUpstream(provider, inst, up, changetype<usize>(out.buf), out.len);
  else signUpstream(provider, inst, up, changetype<usize>(original), original.byteLength);
  if (out !== null) replaceBody(REQUEST_BODY, <u32>original.byteLength, out);
  target(x, inst, up.path, up.headers);
  setFilterState(keys.REQUEST_TYPE, x.requestType());
  setFilterState(keys.REQUEST_MODEL, x.requestModel);
  setFilterState(keys.MODEL, x.upstreamModel);
  setFilterState(keys.PROVIDER, provider.name);
  setFilterState(keys.INSTANCE, inst.name);
  proxyMetrics.instancePicked(inst.name);
  return null;
}

/** Points the held request headers at the instance. */
export function target(x: Exchange, inst: Instance, path: string, headers: Array<string>): void {
  replaceHeader(REQUEST_HEADERS, ":path", path);
  replaceHeader(REQUEST_HEADERS, ":authority", inst.authority);
  replaceHeader(REQUEST_HEADERS, x.settings.clusterHeader, inst.cluster);
  replaceHeader(REQUEST_HEADERS, "content-type", "application/json");
  // The body changed length; Envoy re-frames it. Compressed answers could not be translated.
  // (Only headers seen in onRequestHeaders are removed: each removal is a host call.)
  const p = x.present;
  if (p & HAS_CONTENT_LENGTH) removeHeader(REQUEST_HEADERS, "content-length");
  if (p & HAS_ACCEPT_ENCODING) removeHeader(REQUEST_HEADERS, "accept-encoding");
  // The client's own credentials never reach a provider.
  if (p & HAS_AUTHORIZATION) removeHeader(REQUEST_HEADERS, "authorization");
  if (p & HAS_X_API_KEY) removeHeader(REQUEST_HEADERS, "x-api-key");
  if (p & HAS_API_KEY) removeHeader(REQUEST_HEADERS, "api-key");
  if (p & HAS_GOOG_KEY) removeHeader(REQUEST_HEADERS, "x-goog-api-key");
  for (let i = 0; i + 1 < headers.length; i += 2) replaceHeader(REQUEST_HEADERS, headers[i], headers[i + 1]);
  for (let i = 0; i + 1 < inst.headers.length; i += 2) replaceHeader(REQUEST_HEADERS, inst.headers[i], inst.headers[i + 1]);
  // Envoy chose the route before this filter set the cluster header.
  clearRouteCache();
}

/** Sends an error in the client's format, before anything reached a provider. */
export function fail(x: Exchange, e: ClientError): void {
  x.replied = true;
  const consumer = getFilterState(keys.CONSUMER);
  proxyMetrics.rejected(consumer !== null ? consumer as string : "anonymous", e.status);
  const b = new ByteBuilder(128 + e.message.length);
  x.writeError(e, b);
  const headers = ["content-type", "application/json"];
  if (x.retryAfterS > 0) {
    headers.push("retry-after");
    headers.push(x.retryAfterS.toString());
  }
  if (x.allow.length) {
    headers.push("allow");
    headers.push(x.allow);
  }
  sendLocalResponse(e.status, "sluice_ai_proxy_" + (e.code.length ? e.code : "error"), b.toArrayBuffer(), headers);
}
