// Amazon Bedrock's Converse API (POST /model/{modelId}/converse and /converse-stream), one API for
// every model Bedrock serves, translated from and to OpenAI's chat format. Requests are signed with
// AWS Signature Version 4 (lib/sigv4.ts; ai-proxy's request.ts signs the final body); streams are
// AWS's binary event stream (lib/eventstream.ts; ai-proxy's stream.ts reads the frames and hands
// each event here by its :event-type).
//
// The request: OpenAI's system and developer messages become `system` [{text}]; user, assistant and
// tool messages become `messages` that alternate user and assistant (a tool result is a user
// turn's toolResult block; consecutive turns of one role are merged, as Converse requires); an
// assistant's tool_calls are toolUse blocks with their arguments as JSON; max_tokens, temperature,
// top_p and stop go to `inferenceConfig`; tools and tool_choice to `toolConfig` (tool_choice none
// leaves the tools out: Converse cannot forbid them). What Converse has no place for is refused
// with a 400 naming it, never dropped.
//
// The answer: text, toolUse and reasoningContent blocks; stopReason end_turn and stop_sequence ->
// stop, max_tokens -> length, tool_use -> tool_calls, guardrail_intervened and content_filtered ->
// content_filter; usage inputTokens, outputTokens, totalTokens, cacheReadInputTokens and
// cacheWriteInputTokens.
import { JsonValue, ByteBuilder, parseJsonAt } from "../lib/json";
import { nowNanos } from "../lib/sdk";
import { SseEvent } from "../lib/sse";
import { ChatResult, Choice, ClientError, Instance, Provider, StreamDecoder, StreamSink, ToolCall, Upstream, Usage, invalidModel } from "./types";

/** Longest model id or ARN accepted (Bedrock's own limit). */
const MAX_MODEL_ID: i32 = 2048;

function invalid(param: string, why: string): ClientError {
  const e = ClientError.of(400, why, "invalid_request_error", "invalid_value");
  e.param = param;
  return e;
}

function unsupported(field: string): ClientError {
  const e = ClientError.of(400, "'" + field + "' is not supported by provider bedrock.", "invalid_request_error", "unsupported_parameter");
  e.param = field;
  return e;
}

/** A model id or ARN as one path segment: ":" and "/" percent-encoded, as the AWS SDK sends them. */
export function modelSegment(model: string): string {
  let out = "";
  for (let i = 0; i < model.length; i++) {
    const c = model.charCodeAt(i);
    if (c == 0x3a) out += "%3A";
    else if (c == 0x2f) out += "%2F";
    else out += String.fromCharCode(c);
  }
  return out;
}

/** A Bedrock model id or ARN, which goes into the path as one segment (modelSegment). */
export function bedrockModelError(model: string): ClientError | null {
  const n = model.length;
  if (n == 0 || n > MAX_MODEL_ID) return invalidModel("must be 1 to 2048 characters");
  for (let i = 0; i < n; i++) {
    const c = model.charCodeAt(i);
    const ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x2e || c == 0x5f || c == 0x2d || c == 0x3a || c == 0x2f;
    if (!ok) return invalidModel("must be a Bedrock model id or ARN: letters, digits, '.', '_', '-', ':' and '/'");
  }
  if (model.includes("..")) return invalidModel("must be a Bedrock model id or ARN");
  return null;
}

/** A Bedrock runtime call: the model's operation path, and the answer asked for (an event stream, or JSON). */
export function bedrockUpstream(inst: Instance, model: string, operation: string, stream: bool): Upstream {
  const u = new Upstream();
  u.path = inst.basePath + "/model/" + modelSegment(model) + operation;
  u.headers = ["accept", stream ? "application/vnd.amazon.eventstream" : "application/json"];
  return u;
}

/** Text of an OpenAI content value (a string, or parts of type text); null when a part is not text. */
function textOf(content: JsonValue | null): string | null {
  if (content === null || content.isNull()) return "";
  if (content.isString()) return content.s;
  if (!content.isArray()) return null;
  let out = "";
  for (let i = 0; i < content.length; i++) {
    const p = content.at(i);
    if (p.getString("type") != "text") return null;
    const t = p.getString("text");
    if (t === null) return null;
    out += t as string;
  }
  return out;
}

/** Writes the blocks of one turn and keeps turns alternating: a turn of the same role as the last one is merged into it. */
class Turns {
  out: ByteBuilder;
  role: string = "";
  blocks: i32 = 0;
  count: i32 = 0;

  constructor(out: ByteBuilder) {
    this.out = out;
  }

  /** Starts a block of role's turn (a new turn when the role changes). */
  block(role: string): ByteBuilder {
    if (role != this.role) {
      if (this.count) this.out.raw("]}");
      if (this.count) this.out.byte(0x2c);
      this.out.raw('{"role":').str(role).raw(',"content":[');
      this.role = role;
      this.count++;
      this.blocks = 0;
    }
    if (this.blocks++) this.out.byte(0x2c);
    return this.out;
  }

  close(): void {
    if (this.count) this.out.raw("]}");
  }
}

function writeImage(url: string, mi: i32, t: Turns): ClientError | null {
  // Converse takes image bytes, not URLs: only data: URLs of its formats.
  const prefixes = ["data:image/png;base64,", "data:image/jpeg;base64,", "data:image/gif;base64,", "data:image/webp;base64,"];
  const formats = ["png", "jpeg", "gif", "webp"];
  for (let i = 0; i < prefixes.length; i++) {
    if (!url.startsWith(prefixes[i])) continue;
    t.block("user").raw('{"image":{"format":"').raw(formats[i]).raw('","source":{"bytes":').str(url.substring(prefixes[i].length)).raw("}}}");
    return null;
  }
  return invalid("messages[" + mi.toString() + "].content", "provider bedrock takes images as data: URLs of PNG, JPEG, GIF or WebP (base64).");
}

function writeUser(content: JsonValue | null, mi: i32, t: Turns): ClientError | null {
  if (content !== null && content.isString()) {
    t.block("user").raw('{"text":').strValue(content).byte(0x7d);
    return null;
  }
  if (content === null || !content.isArray() || content.length == 0) return invalid("messages[" + mi.toString() + "].content", "must be a string or a list of parts.");
  for (let i = 0; i < content.length; i++) {
    const p = content.at(i);
    const type = p.getString("type");
    if (type == "text") {
      const text = p.get("text");
      if (text === null || !text.isString()) return invalid("messages[" + mi.toString() + "].content", "a text part needs its text.");
      t.block("user").raw('{"text":').strValue(text).byte(0x7d);
    } else if (type == "image_url") {
      const iu = p.get("image_url");
      const url = iu !== null ? (iu.isString() ? iu.s : iu.getString("url")) : null;
      if (url === null) return invalid("messages[" + mi.toString() + "].content", "an image_url part needs its url.");
      const e = writeImage(url as string, mi, t);
      if (e !== null) return e;
    } else return unsupported("messages[" + mi.toString() + "].content[" + i.toString() + "]." + (type !== null ? type as string : "type"));
  }
  return null;
}

function writeAssistant(m: JsonValue, mi: i32, t: Turns): ClientError | null {
  const text = textOf(m.get("content"));
  if (text === null) return invalid("messages[" + mi.toString() + "].content", "an assistant message's content must be text.");
  const calls = m.get("tool_calls");
  const hasCalls = calls !== null && calls.isArray() && calls.length > 0;
  if ((text as string).length) t.block("assistant").raw('{"text":').str(text as string).byte(0x7d);
  else if (!hasCalls) t.block("assistant").raw('{"text":" "}');
  if (!hasCalls) return null;
  const c = calls as JsonValue;
  for (let i = 0; i < c.length; i++) {
    const call = c.at(i);
    const id = call.getString("id");
    const f = call.get("function");
    const name = f !== null ? f.getString("name") : null;
    const args = f !== null ? f.getString("arguments") : null;
    if (id === null || name === null) return invalid("messages[" + mi.toString() + "].tool_calls[" + i.toString() + "]", "needs an id and a function name.");
    const a = args !== null && (args as string).length ? args as string : "{}";
    const parsed = parseJsonAt(changetype<usize>(String.UTF8.encode(a)), <usize>String.UTF8.byteLength(a));
    if (parsed === null || !parsed.isObject()) return invalid("messages[" + mi.toString() + "].tool_calls[" + i.toString() + "].function.arguments", "must be a JSON object.");
    t.block("assistant").raw('{"toolUse":{"toolUseId":').str(id as string).raw(',"name":').str(name as string).raw(',"input":').value(parsed as JsonValue).raw("}}");
  }
  return null;
}

function writeToolResult(m: JsonValue, mi: i32, t: Turns): ClientError | null {
  const id = m.getString("tool_call_id");
  if (id === null) return invalid("messages[" + mi.toString() + "].tool_call_id", "is required.");
  const text = textOf(m.get("content"));
  if (text === null) return invalid("messages[" + mi.toString() + "].content", "a tool message's content must be text.");
  t.block("user").raw('{"toolResult":{"toolUseId":').str(id as string).raw(',"content":[{"text":').str(text as string).raw("}]}}");
  return null;
}

function writeTools(tools: JsonValue, b: ByteBuilder): ClientError | null {
  if (!tools.isArray()) return invalid("tools", "must be a list.");
  b.raw('"tools":[');
  for (let i = 0; i < tools.length; i++) {
    const t = tools.at(i);
    const f = t.get("function");
    if (t.getString("type") != "function" || f === null) return unsupported("tools[" + i.toString() + "].type");
    const name = f.getString("name");
    if (name === null) return invalid("tools[" + i.toString() + "].function.name", "is required.");
    if (i) b.byte(0x2c);
    b.raw('{"toolSpec":{"name":').str(name as string);
    const d = f.get("description");
    if (d !== null && d.isString()) b.raw(',"description":').strValue(d);
    const params = f.get("parameters");
    b.raw(',"inputSchema":{"json":');
    if (params !== null && params.isObject()) b.value(params);
    else b.raw('{"type":"object","properties":{}}');
    b.raw("}}}");
  }
  b.byte(0x5d);
  return null;
}

/** The OpenAI request members Converse has a place for; any other is refused. */
const KNOWN = ["model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "tools", "tool_choice", "parallel_tool_calls", "user", "metadata", "store", "n", "service_tier"];

export function writeBedrockRequest(req: JsonValue, inst: Instance, b: ByteBuilder): ClientError | null {
  for (let i = 0, n = req.length; i < n; i++) {
    const k = req.keyAt(i);
    if (!KNOWN.includes(k)) return unsupported(k);
  }
  const n = req.get("n");
  if (n !== null && !(n.isInteger() && n.n == 1)) return unsupported("n");
  const msgs = req.get("messages");
  if (msgs === null || !msgs.isArray() || msgs.length == 0) return invalid("messages", "must be a non-empty list.");
  const system = new Array<string>();
  const conv = new ByteBuilder(1024);
  const t = new Turns(conv);
  for (let i = 0; i < msgs.length; i++) {
    const m = msgs.at(i);
    const role = m.getString("role");
    let e: ClientError | null = null;
    if (role == "system" || role == "developer") {
      const s = textOf(m.get("content"));
      if (s === null) e = invalid("messages[" + i.toString() + "].content", "a system message's content must be text.");
      else if ((s as string).length) system.push(s as string);
    } else if (role == "user") e = writeUser(m.get("content"), i, t);
    else if (role == "assistant") e = writeAssistant(m, i, t);
    else if (role == "tool") e = writeToolResult(m, i, t);
    else e = invalid("messages[" + i.toString() + "].role", "must be system, developer, user, assistant or tool.");
    if (e !== null) return e;
  }
  t.close();
  if (t.count == 0 || t.role != "user") return invalid("messages", "provider bedrock needs the conversation to end with a user or tool message.");
  b.raw('{"messages":[').buffer(conv.toArrayBuffer()).byte(0x5d);
  if (system.length) {
    b.raw(',"system":[');
    for (let i = 0; i < system.length; i++) {
      if (i) b.byte(0x2c);
      b.raw('{"text":').str(system[i]).byte(0x7d);
    }
    b.byte(0x5d);
  }
  // inferenceConfig
  const ic = new ByteBuilder(64);
  let fields = 0;
  let max: JsonValue | null = req.get("max_completion_tokens");
  if (max === null) max = req.get("max_tokens");
  if (inst.maxTokens >= 0) {
    ic.raw('"maxTokens":').int(inst.maxTokens);
    fields++;
  } else if (max !== null && !max.isNull()) {
    if (!max.isInteger() || max.n < 1) return invalid("max_tokens", "must be a positive whole number.");
    ic.raw('"maxTokens":').value(max);
    fields++;
  }
  const names = ["temperature", "top_p"];
  const bedrock = ["temperature", "topP"];
  for (let i = 0; i < names.length; i++) {
    const v = req.get(names[i]);
    if (v === null || v.isNull()) continue;
    if (!v.isNumber()) return invalid(names[i], "must be a number.");
    if (fields++) ic.byte(0x2c);
    ic.raw('"').raw(bedrock[i]).raw('":').value(v);
  }
  const stop = req.get("stop");
  if (stop !== null && !stop.isNull()) {
    if (fields++) ic.byte(0x2c);
    ic.raw('"stopSequences":');
    if (stop.isString()) ic.byte(0x5b).strValue(stop).byte(0x5d);
    else if (stop.isArray()) ic.value(stop);
    else return invalid("stop", "must be a string or a list of strings.");
  }
  if (fields) b.raw(',"inferenceConfig":{').buffer(ic.toArrayBuffer()).byte(0x7d);
  // toolConfig
  const tools = req.get("tools");
  const choice = req.get("tool_choice");
  const none = choice !== null && choice.isString() && choice.s == "none";
  if (tools !== null && tools.isArray() && tools.length > 0 && !none) {
    b.raw(',"toolConfig":{');
    const e = writeTools(tools, b);
    if (e !== null) return e;
    if (choice !== null && !choice.isNull()) {
      if (choice.isString() && choice.s == "required") b.raw(',"toolChoice":{"any":{}}');
      else if (choice.isString() && choice.s == "auto") b.raw(',"toolChoice":{"auto":{}}');
      else if (choice.isObject()) {
        const f = choice.get("function");
        const name = f !== null ? f.getString("name") : null;
        if (name === null) return invalid("tool_choice", "must be none, auto, required or a function by name.");
        b.raw(',"toolChoice":{"tool":{"name":').str(name as string).raw("}}");
      } else return invalid("tool_choice", "must be none, auto, required or a function by name.");
    }
    b.byte(0x7d);
  }
  // Instance options are Converse members of the operator's (additionalModelRequestFields, ...).
  const options = inst.options;
  if (options !== null) {
    for (let i = 0, n = options.length; i < n; i++) b.byte(0x2c).str(options.keyAt(i)).byte(0x3a).value(options.at(i));
  }
  b.byte(0x7d);
  return null;
}

export function finishOf(stop: string): string {
  if (stop == "max_tokens") return "length";
  if (stop == "tool_use") return "tool_calls";
  if (stop == "guardrail_intervened" || stop == "content_filtered") return "content_filter";
  return "stop";
}

function int(v: JsonValue | null, key: string): i64 {
  if (v === null) return -1;
  const n = v.get(key);
  return n !== null && n.isInteger() && n.n >= 0 ? <i64>n.n : -1;
}

/** Converse's usage into u. */
export function readBedrockUsage(v: JsonValue | null, u: Usage): void {
  if (v === null || !v.isObject()) return;
  const input = int(v, "inputTokens");
  const cacheRead = int(v, "cacheReadInputTokens");
  const cacheWrite = int(v, "cacheWriteInputTokens");
  // Bedrock's inputTokens leaves out the cached reads and writes, as Anthropic's input_tokens does;
  // the record's prompt counts them all, as OpenAI's prompt_tokens does.
  if (input >= 0) u.prompt = input + (cacheRead > 0 ? cacheRead : 0) + (cacheWrite > 0 ? cacheWrite : 0);
  u.completion = int(v, "outputTokens");
  if (cacheRead > 0) u.cached = cacheRead;
  if (cacheWrite > 0) u.cacheWrite = cacheWrite;
  u.settle();
}

export function readConverse(body: JsonValue, out: ChatResult): bool {
  if (!body.isObject()) return false;
  const output = body.get("output");
  const message = output !== null ? output.get("message") : null;
  const content = message !== null ? message.get("content") : null;
  if (content === null || !content.isArray()) return false;
  const c = new Choice();
  for (let i = 0; i < content.length; i++) {
    const block = content.at(i);
    const text = block.get("text");
    if (text !== null && text.isString()) {
      const before: string = c.content !== null ? c.content as string : "";
      c.content = before + text.s;
      continue;
    }
    const tu = block.get("toolUse");
    if (tu !== null) {
      const t = new ToolCall();
      const id = tu.getString("toolUseId");
      const name = tu.getString("name");
      if (id === null || name === null) return false;
      t.id = id as string;
      t.name = name as string;
      const input = tu.get("input");
      const a = new ByteBuilder(64);
      if (input !== null) a.value(input);
      else a.raw("{}");
      t.arguments = a.toString();
      c.toolCalls.push(t);
      continue;
    }
    const rc = block.get("reasoningContent");
    if (rc !== null) {
      const rt = rc.get("reasoningText");
      const r = rt !== null ? rt.getString("text") : null;
      if (r !== null) {
        const before: string = c.reasoning !== null ? c.reasoning as string : "";
        c.reasoning = before + (r as string);
      }
    }
  }
  const stop = body.getString("stopReason");
  c.finishReason = finishOf(stop !== null ? stop as string : "");
  out.choices.push(c);
  // Converse's answer names no id: the gateway's own (the model is set from the request: answer.ts).
  const now = nowNanos();
  out.id = "bedrock-" + now.toString(16);
  out.created = <i64>(now / 1000000000);
  readBedrockUsage(body.get("usage"), out.usage);
  return true;
}

/** An error's status as AWS names its exceptions (a stream's exception events are lower camel case). */
function statusOf(type: string): u32 {
  const t = type.toLowerCase();
  if (t.startsWith("throttling")) return 429;
  if (t.startsWith("validation")) return 400;
  if (t.startsWith("accessdenied") || t.startsWith("unrecognizedclient") || t.startsWith("invalidsignature")) return 403;
  if (t.startsWith("resourcenotfound")) return 404;
  if (t.startsWith("modeltimeout")) return 408;
  if (t.startsWith("serviceunavailable")) return 503;
  return 502;
}

function errorType(status: u32): string {
  if (status == 429) return "rate_limit_error";
  if (status == 401 || status == 403) return "authentication_error";
  if (status == 404) return "not_found_error";
  if (status >= 500) return "api_error";
  return "invalid_request_error";
}

/** A stream's exception message (an event named "exception:<type>", payload {"message"}) as the error it reports. */
export function streamException(name: string, v: JsonValue | null): ClientError {
  const msg = v !== null && v.isObject() ? v.getString("message") : null;
  const type = name.substring(10);
  const status = statusOf(type);
  return ClientError.of(status, msg !== null ? msg as string : "The provider's stream ended with " + type + ".", errorType(status), type);
}

/** Bedrock's error answer ({"message"}, its name in x-amzn-ErrorType) as the client's error. */
export function bedrockError(provider: string, status: u32, body: JsonValue | null): ClientError {
  const msg = body !== null && body.isObject() ? body.getString("message") : null;
  return ClientError.of(status, msg !== null ? msg as string : "The " + provider + " provider returned HTTP " + status.toString() + ".", errorType(status), "");
}

/**
 * Converse's stream events (ai-proxy's stream.ts hands each frame over as an SseEvent named by its
 * :event-type, or "exception:<type>" for an exception message) into sink calls.
 */
export class BedrockStreamDecoder extends StreamDecoder {
  started: bool = false;
  /** Content block index -> tool position, for the blocks that are tool calls. */
  tools: Map<i32, i32> = new Map();
  stopReason: string = "";

  event(e: SseEvent, sink: StreamSink): void {
    if (this.done) return;
    const name = e.event;
    const v = parseJsonAt(e.ptr, e.len, e.owner);
    if (name.startsWith("exception:")) {
      sink.error(this.providerError(streamException(name, v)));
      this.done = true;
      this.needsDone = true;
      return;
    }
    if (v === null || !v.isObject()) return;
    if (!this.started) {
      this.started = true;
      // Converse's stream names no id or model: the gateway's own id, the model asked.
      const now = nowNanos();
      sink.start("bedrock-" + now.toString(16), this.model, <i64>(now / 1000000000));
    }
    if (name == "contentBlockStart") {
      const start = v.get("start");
      const tu = start !== null ? start.get("toolUse") : null;
      if (tu === null) return;
      const idx = <i32>int(v, "contentBlockIndex");
      const pos = this.tools.size;
      this.tools.set(idx, pos);
      const id = tu.getString("toolUseId");
      const tname = tu.getString("name");
      sink.toolStart(0, pos, id !== null ? id as string : "", tname !== null ? tname as string : "");
    } else if (name == "contentBlockDelta") {
      const d = v.get("delta");
      if (d === null) return;
      const text = d.get("text");
      if (text !== null && text.isString()) {
        sink.textValue(0, text);
        return;
      }
      const tu = d.get("toolUse");
      if (tu !== null) {
        const input = tu.get("input");
        const idx = <i32>int(v, "contentBlockIndex");
        if (input !== null && input.isString() && this.tools.has(idx)) sink.toolArgsValue(0, this.tools.get(idx), input);
        return;
      }
      const rc = d.get("reasoningContent");
      if (rc !== null) {
        const r = rc.get("text");
        if (r !== null && r.isString()) sink.reasoningValue(0, r);
      }
    } else if (name == "messageStop") {
      const s = v.getString("stopReason");
      this.stopReason = s !== null ? s as string : "";
      sink.finish(0, finishOf(this.stopReason), null);
    } else if (name == "metadata") {
      readBedrockUsage(v.get("usage"), this.usage);
      this.done = true;
    }
  }
}

export class BedrockProvider extends Provider {
  get name(): string { return "bedrock"; }
  get genAiName(): string { return "aws.bedrock"; }

  get maxTokensField(): string { return "max_tokens"; }

  get awsService(): string { return "bedrock"; }

  get eventStream(): bool { return true; }

  /** No default: the endpoint names the region (bedrock-runtime.<region>.amazonaws.com); render writes it. */
  defaultEndpoint(): string { return ""; }

  modelError(inst: Instance, model: string): ClientError | null {
    return bedrockModelError(model);
  }

  chatUpstream(inst: Instance, model: string, stream: bool): Upstream {
    return bedrockUpstream(inst, model, stream ? "/converse-stream" : "/converse", stream);
  }

  chatRequest(req: JsonValue, model: string, stream: bool, inst: Instance, out: ByteBuilder): ClientError | null {
    return writeBedrockRequest(req, inst, out);
  }

  chatResponse(body: JsonValue, out: ChatResult, mode: i32): bool {
    return readConverse(body, out);
  }

  streamDecoder(): StreamDecoder {
    return new BedrockStreamDecoder();
  }

  probePath(inst: Instance): string {
    return "";
  }

  error(status: u32, body: JsonValue | null): ClientError {
    return bedrockError(this.name, status, body);
  }
}
