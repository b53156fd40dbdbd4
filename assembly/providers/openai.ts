// OpenAI Chat Completions and Embeddings (https://platform.openai.com/docs/api-reference/chat).
// The request format is Sluice's own, so the request passes through with the model set, operator
// options merged and, when streaming, stream_options.include_usage forced so usage arrives.
// Anthropic clients' `thinking` becomes reasoning_effort for OpenAI and Azure reasoning models
// (thinkingEffort) and is dropped everywhere else.
// Azure OpenAI, DeepSeek, Mistral and OpenAI-compatible servers extend this class.
import { JsonValue, ByteBuilder, parseJsonAt, nonEmpty } from "../lib/json";
import { SseEvent } from "../lib/sse";
import {
  Provider, Instance, Upstream, ChatResult, Choice, ToolCall, Usage, ClientError, StreamDecoder, StreamSink,
} from "./types";

export class OpenAIProvider extends Provider {
  get name(): string { return "openai"; }
  get genAiName(): string { return "openai"; }

  defaultEndpoint(): string { return "https://api.openai.com/v1"; }

  get speaksOpenAI(): bool { return true; }

  chatUpstream(inst: Instance, model: string, stream: bool): Upstream {
    const u = new Upstream();
    u.path = inst.basePath + "/chat/completions";
    this.auth(inst, u);
    return u;
  }

  /**
   * OpenAI's own Responses API (https://platform.openai.com/docs/api-reference/responses): a
   * Responses client's request goes there as it is, with the model set. Only OpenAI itself:
   * the OpenAI-format families below override it (their servers have no /responses).
   */
  responsesUpstream(inst: Instance, model: string): Upstream | null {
    const u = new Upstream();
    u.path = inst.basePath + "/responses";
    this.auth(inst, u);
    return u;
  }

  embeddingsUpstream(inst: Instance, model: string): Upstream | null {
    const u = new Upstream();
    u.path = inst.basePath + "/embeddings";
    this.auth(inst, u);
    return u;
  }

  auth(inst: Instance, u: Upstream): void {
    if (inst.apiKey.length) {
      u.headers.push("authorization");
      u.headers.push("Bearer " + inst.apiKey);
    }
  }

  /**
   * Fields this provider rejects, with the reason (checked before writing). Subclasses list what
   * their API does not take; OpenAI takes everything an OpenAI client sends.
   */
  unsupported(req: JsonValue): string | null {
    return rejectFields(req, ["top_k"], this.name);
  }

  /**
   * Renames a member on the way out ("" drops it). Subclasses override for dialect differences.
   * `thinking` (Anthropic clients' extended thinking switch) is dropped for every OpenAI-dialect
   * provider: the answer then simply has no thinking blocks.
   */
  renameField(key: string): string {
    return key == "thinking" ? "" : key;
  }

  /**
   * The reasoning_effort an Anthropic client's `thinking` stands for, or null (dropped). OpenAI and
   * Azure OpenAI only, and only for a model that reasons (reasonsByName): reasoning_effort is a 400
   * on OpenAI's other models, which answered these requests before. The budget thresholds are the
   * midpoints between the budgets reasoning_effort maps to for Anthropic and Gemini (1024 / 8192 /
   * 24576): budget_tokens < 4096 -> low, < 16384 -> medium, else high. adaptive and disabled send
   * nothing: the model's default effort (OpenAI's reasoning models cannot all switch reasoning off).
   */
  thinkingEffort(req: JsonValue, model: string): string | null {
    if (this.name != "openai" && this.name != "azure-openai") return null;
    const t = req.get("thinking");
    if (t === null || !t.isObject() || t.getString("type") != "enabled" || !reasonsByName(model)) return null;
    const bt = t.get("budget_tokens");
    if (bt === null || !bt.isNumber()) return null;
    return bt.n < 4096 ? "low" : bt.n < 16384 ? "medium" : "high";
  }

  /** Adds stream_options.include_usage (OpenAI sends usage in streams only when asked). */
  get wantsStreamOptions(): bool { return true; }

  chatRequest(req: JsonValue, model: string, stream: bool, inst: Instance, out: ByteBuilder): ClientError | null {
    const why = this.unsupported(req);
    if (why !== null) return ClientError.of(400, why as string, "invalid_request_error", "unsupported_parameter");
    writeOpenAIBody(this, req, model, stream, inst, out, true);
    return null;
  }

  embeddingsRequest(req: JsonValue, model: string, inst: Instance, out: ByteBuilder): ClientError | null {
    writeOpenAIBody(this, req, model, false, inst, out, false);
    return null;
  }

  embeddingsResponse(body: JsonValue, model: string, out: ByteBuilder, usage: Usage): bool {
    const data = body.get("data");
    if (!body.isObject() || data === null || !data.isArray()) return false;
    readOpenAIUsage(body.get("usage"), usage);
    out.value(body);
    return true;
  }

  chatResponse(body: JsonValue, out: ChatResult, mode: i32): bool {
    return readOpenAIChat(body, out);
  }

  streamDecoder(): StreamDecoder {
    return new OpenAIStreamDecoder();
  }

  error(status: u32, body: JsonValue | null): ClientError {
    return openAIStyleError(status, body, this.name);
  }
}

/** The message for the first of `fields` present in req, or null. */
export function rejectFields(req: JsonValue, fields: Array<string>, provider: string): string | null {
  for (let i = 0; i < fields.length; i++) {
    if (req.get(fields[i]) !== null) return "'" + fields[i] + "' is not supported by provider " + provider + ".";
  }
  return null;
}

/** True when any message has a content part of this type (e.g. image_url). */
export function hasContentPart(req: JsonValue, type: string): bool {
  const msgs = req.get("messages");
  if (msgs === null || !msgs.isArray()) return false;
  for (let i = 0, n = msgs.length; i < n; i++) {
    const c = msgs.at(i).get("content");
    if (c === null || !c.isArray()) continue;
    for (let j = 0; j < c.length; j++) {
      if (c.at(j).getString("type") == type) return true;
    }
  }
  return false;
}

/**
 * An OpenAI model that takes reasoning_effort, by its name: the o-series (o1, o3-mini, o4-mini...)
 * and GPT-5 and later (gpt-5, gpt-5-mini, gpt-5.1...). A prefix such as "openai/" is skipped.
 */
export function reasonsByName(model: string): bool {
  const name = model.substring(model.lastIndexOf("/") + 1);
  const c1 = name.length > 1 ? name.charCodeAt(1) : 0;
  if (name.startsWith("o") && c1 >= 0x31 && c1 <= 0x39) return true;
  if (!name.startsWith("gpt-")) return false;
  let major = 0;
  let i = 4;
  while (i < name.length && i < 7 && name.charCodeAt(i) >= 0x30 && name.charCodeAt(i) <= 0x39) major = major * 10 + (name.charCodeAt(i++) - 0x30);
  return i > 4 && major >= 5;
}

/** Writes an OpenAI-dialect body: the client's members, the upstream model, options, usage. */
export function writeOpenAIBody(p: OpenAIProvider, req: JsonValue, model: string, stream: bool, inst: Instance, out: ByteBuilder, chat: bool): void {
  const options = inst.options;
  out.byte(0x7b);
  let first = true;
  out.str("model").byte(0x3a).str(model);
  first = false;
  let wroteStream = false;
  for (let i = 0, n = req.length; i < n; i++) {
    const key = req.keyAt(i);
    if (key == "model") continue;
    if (options !== null && options.get(key) !== null) continue; // operator options win
    if (chat && key == "stream_options") continue; // rewritten below
    if (chat && key == "stream") {
      // The gateway decides whether the provider streams (a fallback never does: its answer is
      // read whole). The client's member stays where it is when it means the same (false, null).
      if (stream) out.raw(',"stream":true');
      else if (!req.at(i).isBool() || !req.at(i).b) out.byte(0x2c).str(key).byte(0x3a).value(req.at(i));
      wroteStream = true;
      continue;
    }
    if (chat && inst.maxTokens >= 0 && (key == "max_tokens" || key == "max_completion_tokens")) continue;
    if (chat && key == "thinking") {
      const effort = req.get("reasoning_effort") === null && (options === null || options.get("reasoning_effort") === null) ? p.thinkingEffort(req, model) : null;
      if (effort !== null) out.raw(',"reasoning_effort":').str(effort as string);
      continue;
    }
    const name = p.renameField(key);
    if (name.length == 0) continue;
    out.byte(0x2c).str(name).byte(0x3a).value(req.at(i));
  }
  if (options !== null) {
    for (let i = 0, n = options.length; i < n; i++) {
      const name = p.renameField(options.keyAt(i));
      if (name.length == 0) continue;
      out.byte(0x2c).str(name).byte(0x3a).value(options.at(i));
    }
  }
  if (chat && inst.maxTokens >= 0) {
    out.byte(0x2c).str(p.renameField("max_completion_tokens")).byte(0x3a).int(inst.maxTokens);
  }
  if (chat && stream && !wroteStream) out.raw(',"stream":true');
  if (chat && stream && p.wantsStreamOptions) {
    // Keep the client's other stream options; force usage on.
    out.raw(',"stream_options":{"include_usage":true');
    const so = req.get("stream_options");
    if (so !== null && so.isObject()) {
      for (let i = 0, n = so.length; i < n; i++) {
        if (so.keyAt(i) == "include_usage") continue;
        out.byte(0x2c).str(so.keyAt(i)).byte(0x3a).value(so.at(i));
      }
    }
    out.byte(0x7d);
  }
  out.byte(0x7d);
}

/** Reads OpenAI's usage object (and DeepSeek's cache fields) into u. */
/** A token count from provider JSON: a whole number from 0 to 10^15, else -1 (ignored). */
export function tokenCount(v: JsonValue | null): i64 {
  if (v === null || !v.isInteger() || v.n < 0 || v.n > 1e15) return -1;
  return <i64>v.n;
}

export function readOpenAIUsage(v: JsonValue | null, u: Usage): void {
  if (v === null || !v.isObject()) return;
  const pt = tokenCount(v.get("prompt_tokens"));
  const ct = tokenCount(v.get("completion_tokens"));
  const tt = tokenCount(v.get("total_tokens"));
  if (pt >= 0) u.prompt = pt;
  if (ct >= 0) u.completion = ct;
  if (tt >= 0) u.total = tt;
  const pd = v.get("prompt_tokens_details");
  if (pd !== null && pd.isObject()) {
    const c = tokenCount(pd.get("cached_tokens"));
    if (c >= 0) u.cached = c;
  }
  const hit = tokenCount(v.get("prompt_cache_hit_tokens")); // DeepSeek
  if (hit >= 0 && u.cached == 0) u.cached = hit;
  const cd = v.get("completion_tokens_details");
  if (cd !== null && cd.isObject()) {
    const r = tokenCount(cd.get("reasoning_tokens"));
    if (r >= 0) u.reasoning = r;
  }
}

function str(v: JsonValue | null): string | null {
  if (v === null || !v.isString()) return null;
  return v.s;
}

function readToolCalls(v: JsonValue | null, out: Array<ToolCall>): void {
  if (v === null || !v.isArray()) return;
  for (let i = 0; i < v.length; i++) {
    const t = v.at(i);
    const tc = new ToolCall();
    const id = str(t.get("id"));
    if (id !== null) tc.id = id;
    const f = t.get("function");
    if (f !== null) {
      const name = str(f.get("name"));
      if (name !== null) tc.name = name;
      const args = f.get("arguments");
      if (args !== null) {
        if (args.isString()) tc.arguments = args.s;
        else {
          const b = new ByteBuilder();
          b.value(args);
          tc.arguments = b.toString();
        }
      }
    }
    out.push(tc);
  }
}

/** Parses an OpenAI chat.completion into the neutral result. */
export function readOpenAIChat(body: JsonValue, out: ChatResult): bool {
  if (!body.isObject()) return false;
  const choices = body.get("choices");
  if (choices === null || !choices.isArray()) return false;
  const id = str(body.get("id"));
  if (id !== null) out.id = id;
  const model = str(body.get("model"));
  if (model !== null) out.model = model;
  const created = body.get("created");
  if (created !== null && created.isNumber()) out.created = <i64>created.n;
  for (let i = 0; i < choices.length; i++) {
    const c = choices.at(i);
    const ch = new Choice();
    ch.index = smallIndex(c.get("index"), i);
    const m = c.get("message");
    if (m !== null && m.isObject()) {
      ch.content = str(m.get("content"));
      ch.refusal = str(m.get("refusal"));
      ch.reasoning = str(m.get("reasoning_content"));
      readToolCalls(m.get("tool_calls"), ch.toolCalls);
    }
    const fr = str(c.get("finish_reason"));
    if (fr !== null) ch.finishReason = fr;
    out.choices.push(ch);
  }
  readOpenAIUsage(body.get("usage"), out.usage);
  return true;
}

/** Maps an OpenAI-style error body ({"error":{message,type,code}}) with the provider's status. */
export function openAIStyleError(status: u32, body: JsonValue | null, provider: string): ClientError {
  const e = new ClientError();
  e.status = status;
  e.type = errorTypeForStatus(status);
  e.message = "The " + provider + " provider returned HTTP " + status.toString() + ".";
  if (body !== null && body.isObject()) {
    let err = body.get("error");
    // Some servers (vLLM, Mistral) put message/type at the top level.
    if (err === null || !err.isObject()) err = body;
    const m = err.get("message");
    if (m !== null && m.isString() && m.s.length) e.message = m.s;
    else if (m !== null && m.isArray()) {
      // Mistral/pydantic-style validation lists.
      const b = new ByteBuilder();
      b.value(m);
      e.message = b.toString();
    }
    const t = err.get("type");
    if (t !== null && t.isString() && t.s.length) e.type = t.s;
    const c = err.get("code");
    if (c !== null && c.isString()) e.code = c.s;
    else if (c !== null && c.isNumber()) e.code = c.s;
    const p = err.get("param");
    if (p !== null && p.isString()) e.param = p.s;
  }
  return e;
}

/** OpenAI's error type for a status when the provider gives none. */
export function errorTypeForStatus(status: u32): string {
  if (status == 401) return "authentication_error";
  if (status == 403) return "permission_error";
  if (status == 404) return "not_found_error";
  if (status == 429) return "rate_limit_error";
  if (status == 413) return "request_too_large";
  if (status >= 500) return "api_error";
  return "invalid_request_error";
}

/** Most choices (n) or tool calls per answer a stream may address; more is hostile input. */
export const MAX_INDEX: i32 = 128;

/**
 * A choice or tool-call index from provider JSON: the given value when it is a whole number in
 * [0, MAX_INDEX), the fallback when absent, -1 (ignore) when it is anything else.
 */
export function smallIndex(v: JsonValue | null, fallback: i32): i32 {
  if (v === null) return fallback;
  if (!v.isInteger() || v.n < 0 || v.n >= <f64>MAX_INDEX) return -1;
  return <i32>v.n;
}

/** Decodes OpenAI chat.completion.chunk events. */
export const EVENT_IGNORED: i32 = 0; // not JSON, not an object, or after the end
export const EVENT_CHUNK: i32 = 1;
export const EVENT_ERROR: i32 = 2;
export const EVENT_DONE: i32 = 3;

export class OpenAIStreamDecoder extends StreamDecoder {
  started: bool = false;
  // What the last event was, for a caller that forwards the events themselves (ai-proxy's
  // reframed streams): its kind, the parsed chunk, the error as the client should see it, and
  // whether it carried usage (with no choices: only the usage the gateway asked for).
  lastKind: i32 = EVENT_IGNORED;
  lastChunk: JsonValue | null = null;
  lastError: ClientError | null = null;
  carriesUsage: bool = false;
  gatewayOnly: bool = false;
  /** The chunk has an "error" member that is not an error (null, a string): clients would read one. */
  strayError: bool = false;
  // Tool calls already announced, per choice: OpenAI sends id/name once, then argument pieces.
  announced: Array<Set<i32>> = [];

  event(e: SseEvent, sink: StreamSink): void {
    this.lastKind = EVENT_IGNORED;
    this.lastChunk = null;
    this.carriesUsage = false;
    this.gatewayOnly = false;
    this.strayError = false;
    if (this.done) return; // nothing after [DONE] or an error event belongs to the answer
    if (e.dataIs("[DONE]")) {
      this.done = true;
      this.lastKind = EVENT_DONE;
      return;
    }
    const v = parseJsonAt(e.ptr, e.len, e.owner);
    if (v === null || !v.isObject()) return; // not JSON: nothing a client could use
    const err = v.get("error");
    if (err !== null && err.isObject()) {
      const ce = this.providerError(openAIStyleError(500, v, "upstream"));
      this.lastKind = EVENT_ERROR;
      this.lastError = ce;
      sink.error(ce);
      this.done = true;
      this.needsDone = true; // OpenAI clients still expect data: [DONE] after an error event
      return;
    }
    const choices = v.get("choices");
    if (!this.started) {
      // Azure opens its streams with an empty-id chunk carrying only prompt_filter_results: the
      // answer's id and model come with the first chunk that has them (or has choices).
      const id = v.get("id");
      const idText = id !== null && id.isString() ? id.s : "";
      if (idText.length || (choices !== null && choices.length > 0)) {
        this.started = true;
        const model = v.get("model");
        const created = v.get("created");
        sink.start(idText, model !== null && model.isString() ? model.s : "", created !== null && created.isNumber() ? <i64>created.n : 0);
      }
    }
    if (choices !== null && choices.isArray()) {
      for (let i = 0; i < choices.length; i++) this.choice(choices.at(i), i, sink);
    }
    const usage = v.get("usage");
    this.lastKind = EVENT_CHUNK;
    this.lastChunk = v;
    this.strayError = err !== null;
    this.carriesUsage = usage !== null && usage.isObject();
    // stream_options.include_usage: a last chunk with no choices, only the usage.
    this.gatewayOnly = this.carriesUsage && choices !== null && choices.isArray() && choices.length == 0;
    if (usage !== null && usage.isObject()) {
      readOpenAIUsage(usage, this.usage);
      sink.usage(this.usage);
    }
  }

  choice(c: JsonValue, position: i32, sink: StreamSink): void {
    const index = smallIndex(c.get("index"), position);
    if (index < 0) return;
    const delta = c.get("delta");
    if (delta !== null && delta.isObject()) {
      const reasoning = delta.get("reasoning_content");
      if (nonEmpty(reasoning)) sink.reasoningValue(index, reasoning as JsonValue);
      const content = delta.get("content");
      if (nonEmpty(content)) sink.textValue(index, content as JsonValue);
      const refusal = delta.get("refusal");
      if (nonEmpty(refusal)) sink.refusalValue(index, refusal as JsonValue);
      const tools = delta.get("tool_calls");
      if (tools !== null && tools.isArray()) {
        for (let t = 0; t < tools.length; t++) this.tool(index, tools.at(t), t, sink);
      }
    }
    const fr = c.get("finish_reason");
    if (fr !== null && fr.isString() && fr.s.length) sink.finish(index, fr.s, null);
  }

  tool(choice: i32, t: JsonValue, position: i32, sink: StreamSink): void {
    while (this.announced.length <= choice) this.announced.push(new Set<i32>());
    const tool = smallIndex(t.get("index"), position);
    if (tool < 0) return;
    const f = t.get("function");
    const seen = this.announced[choice];
    if (!seen.has(tool)) {
      seen.add(tool);
      const id = t.get("id");
      let name = "";
      if (f !== null) {
        const n = f.get("name");
        if (n !== null && n.isString()) name = n.s;
      }
      sink.toolStart(choice, tool, id !== null && id.isString() ? id.s : "", name);
    }
    if (f !== null) {
      const args = f.get("arguments");
      if (nonEmpty(args)) sink.toolArgsValue(choice, tool, args as JsonValue);
    }
  }
}
