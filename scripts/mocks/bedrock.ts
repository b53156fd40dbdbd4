// Amazon Bedrock Runtime: the Converse API, POST /model/{modelId}/converse and
// /model/{modelId}/converse-stream, and InvokeModel for Anthropic's models, as a mock that checks
// what a gateway can get wrong.
//
// Wire facts (Bedrock Runtime API reference, Converse and ConverseStream; the AWS SDK's
// @aws-sdk/client-bedrock-runtime, which this mock's own test uses as the judge):
// - Every request is signed with AWS Signature Version 4 (service "bedrock"). The mock signs the same
//   request again with the AWS SDK's signer (@smithy/signature-v4), using the request's x-amz-date
//   and signed headers, and compares:
//   - 403 UnrecognizedClientException for an unknown access key;
//   - 403 InvalidSignatureException for a signature that differs;
//   - 403 MissingAuthenticationTokenException without one;
//   - 403 for a time more than 5 minutes off ("Signature expired").
// - The model id is one path segment; ":" and "/" in it arrive percent-encoded.
// - The request:
//   - messages: [{role: user|assistant, content: [{text} | {image} | {toolUse: {toolUseId, name,
//     input}} | {toolResult: {toolUseId, content: [{text} | {json}], status}} | {reasoningContent}]}];
//     the first message is the user's, and roles alternate;
//   - system: [{text}];
//   - inferenceConfig: {maxTokens, temperature, topP, stopSequences};
//   - toolConfig: {tools: [{toolSpec: {name, description, inputSchema: {json}}}], toolChoice: {auto} |
//     {any} | {tool: {name}}}.
// - The answer: {output: {message: {role: assistant, content: [...]}}, stopReason: end_turn |
//   tool_use | max_tokens | stop_sequence, usage: {inputTokens, outputTokens, totalTokens}, metrics:
//   {latencyMs}}.
// - Errors: JSON {"message": ...} with the error's name in x-amzn-ErrorType, e.g. 400
//   ValidationException, 404 ResourceNotFoundException, 429 ThrottlingException, 500
//   InternalServerException, 503 ServiceUnavailableException.
// - A stream is application/vnd.amazon.eventstream: binary messages (prelude, headers, payload,
//   CRC32s; written with the AWS SDK's own codec), each an event with headers :message-type event,
//   :event-type, :content-type application/json.
//   - The events, in order: messageStart {role}; for each content block, contentBlockStart ({start:
//     {toolUse: {toolUseId, name}}} for a tool call), contentBlockDelta ({delta: {text} |
//     {toolUse: {input: <a piece of JSON text>}} | {reasoningContent: {text}}}) and
//     contentBlockStop, each with contentBlockIndex; messageStop {stopReason}; metadata {usage,
//     metrics}.
//   - Every event's payload has a "p" member of padding letters, as Bedrock sends to hide the
//     tokens' lengths.
//   - An error in a stream is a message with :message-type exception and :exception-type (for
//     example throttlingException), payload {"message": ...}.
// - InvokeModel for Anthropic's models (POST /model/{modelId}/invoke and
//   /invoke-with-response-stream; Anthropic's "Claude on Amazon Bedrock" and Bedrock's Anthropic
//   Messages reference): Anthropic's Messages body without `model` and `stream` (each an
//   "extraneous key ... is not permitted" ValidationException) and with anthropic_version
//   "bedrock-2023-05-31"; the answer is Anthropic's message (its usage also in
//   X-Amzn-Bedrock-Input-Token-Count and -Output-Token-Count). The stream is the same event stream
//   with one event type, chunk, whose payload {"bytes": <base64>, "p"} holds one of Anthropic's
//   stream events as JSON; message_stop carries "amazon-bedrock-invocationMetrics".
import http from "node:http";
import type { AddressInfo } from "node:net";
import { SignatureV4 } from "@smithy/signature-v4";
import { Sha256 } from "@aws-crypto/sha256-js";
import { HttpRequest } from "@smithy/core/protocols";
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { decideReply, chunkText, hashString, isObject, mulberry32, type Conversation, type Ctx, type Reply, type ScriptStep, type Turn } from "./common.js";
import { anthropicConversation, anthropicMessage, anthropicStream } from "./anthropic.js";
import { splitPositions } from "./server.js";

export interface AwsMockCredentials { accessKeyId: string; secretAccessKey: string; sessionToken?: string }

export interface BedrockMockOptions {
  credentials: AwsMockCredentials;
  region?: string;
  /** Models the account can use; others are 404. Default: any. */
  models?: string[];
  /** Split each written event into random pieces (a reader must put them back together). */
  split?: boolean;
}

export interface BedrockRequest { method: string; path: string; model: string; headers: Record<string, string>; body: any; rawBody: string }

export interface BedrockMock {
  url: string;
  requests: BedrockRequest[];
  /** The next answers: text, tool calls, usage, an error, or an exception after N stream events. */
  script(step: ScriptStep | ScriptStep[]): void;
  close(): Promise<void>;
}

const codec = new EventStreamCodec((b) => new TextDecoder().decode(b), (s) => new TextEncoder().encode(s));

function errorReply(res: http.ServerResponse, status: number, type: string, message: string): void {
  res.writeHead(status, { "content-type": "application/json", "x-amzn-errortype": `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/`, "x-amzn-requestid": hashString(message, 8, "hex") });
  res.end(JSON.stringify({ message }));
}

/** Why the request's signature is refused (status, type, message), or null when it is AWS's. */
async function checkSignature(req: http.IncomingMessage, path: string, body: string, o: BedrockMockOptions, region: string): Promise<[number, string, string] | null> {
  const auth = req.headers.authorization;
  if (typeof auth !== "string") return [403, "MissingAuthenticationTokenException", "Missing Authentication Token"];
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return [403, "IncompleteSignatureException", "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'."];
  const [, keyId, , scopeRegion, service, signedNames, signature] = m;
  if (keyId !== o.credentials.accessKeyId) return [403, "UnrecognizedClientException", "The security token included in the request is invalid."];
  if (scopeRegion !== region || service !== "bedrock") return [403, "InvalidSignatureException", `Credential should be scoped to a valid region and service 'bedrock'.`];
  if ((o.credentials.sessionToken ?? "") !== (req.headers["x-amz-security-token"] ?? "")) return [403, "UnrecognizedClientException", "The security token included in the request is invalid."];
  const date = String(req.headers["x-amz-date"] ?? "");
  const t = Date.parse(date.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, "$1-$2-$3T$4:$5:$6Z"));
  if (!Number.isFinite(t)) return [403, "IncompleteSignatureException", "Date must be in ISO-8601 'basic format'."];
  if (Math.abs(Date.now() - t) > 5 * 60_000) return [403, "InvalidSignatureException", "Signature expired: the request time is more than 5 minutes from the server's."];
  const headers: Record<string, string> = {};
  for (const name of signedNames.split(";")) {
    const v = req.headers[name];
    if (v === undefined) return [403, "InvalidSignatureException", `The request signature we calculated does not match the signature you provided: '${name}' is signed but missing.`];
    headers[name] = Array.isArray(v) ? v.join(",") : v;
  }
  const signer = new SignatureV4({ service: "bedrock", region, sha256: Sha256, credentials: o.credentials });
  const signed = await signer.sign(new HttpRequest({ method: req.method, protocol: "https:", hostname: headers.host, path, headers, body }), { signingDate: new Date(t) });
  const expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization))?.[1];
  if (expected !== signature) return [403, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."];
  return null;
}

/** The Converse request read into the mocks' neutral view; a string is the ValidationException's message. */
function conversation(b: any, model: string): Conversation | string {
  if (!isObject(b)) return "Malformed input request, please reformat your input and try again.";
  if (!Array.isArray(b.messages) || b.messages.length === 0) return "A conversation must start with a user message. Try again with a conversation that starts with a user message.";
  const turns: Turn[] = [];
  let prev = "";
  for (const [i, m] of b.messages.entries()) {
    if (!isObject(m) || (m.role !== "user" && m.role !== "assistant")) return `1 validation error detected: Value at 'messages.${i + 1}.member.role' failed to satisfy constraint: Member must satisfy enum value set: [user, assistant]`;
    if (i === 0 && m.role !== "user") return "A conversation must start with a user message. Try again with a conversation that starts with a user message.";
    if (m.role === prev) return "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.";
    prev = m.role;
    if (!Array.isArray(m.content) || m.content.length === 0) return `The content field in the Message object at messages.${i}.content is empty. Add a ContentBlock object to the content field and try again.`;
    const turn: Turn = { role: m.role, text: "", images: 0 };
    for (const c of m.content) {
      if (typeof c?.text === "string") turn.text += (turn.text ? "\n" : "") + c.text;
      else if (c?.image) turn.images++;
      else if (c?.toolUse) (turn.toolCalls ??= []).push({ id: c.toolUse.toolUseId, name: c.toolUse.name, args: JSON.stringify(c.toolUse.input ?? {}) });
      else if (c?.toolResult) {
        const parts = (c.toolResult.content ?? []).map((p: any) => (typeof p.text === "string" ? p.text : JSON.stringify(p.json)));
        (turn.toolResults ??= []).push({ id: c.toolResult.toolUseId, content: parts.join("") });
      } else if (!c?.reasoningContent) return `messages.${i}.content: a content block must be one of text, image, document, video, toolUse, toolResult, guardContent, cachePoint, reasoningContent.`;
    }
    turns.push(turn);
  }
  if (turns.at(-1)!.role !== "user") return "A conversation must end with a user message. Try again with a conversation that ends with a user message.";
  const ic = isObject(b.inferenceConfig) ? b.inferenceConfig : {};
  const tools = (b.toolConfig?.tools ?? []).map((t: any) => ({ name: t.toolSpec?.name, schema: t.toolSpec?.inputSchema?.json ?? {} }));
  const tc = b.toolConfig?.toolChoice;
  return {
    model,
    system: (b.system ?? []).map((s: any) => s.text ?? "").join("\n"),
    turns,
    tools,
    toolChoice: tc?.any ? { mode: "required" } : tc?.tool ? { mode: "required", name: tc.tool.name } : { mode: "auto" },
    maxTokens: typeof ic.maxTokens === "number" ? ic.maxTokens : undefined,
    stop: Array.isArray(ic.stopSequences) ? ic.stopSequences : [],
    wantsReasoning: isObject(b.additionalModelRequestFields?.thinking) || isObject(b.additionalModelRequestFields?.reasoning_config),
  };
}

const STOP: Record<Reply["finish"], string> = { stop: "end_turn", length: "max_tokens", tool_calls: "tool_use" };

function stopReason(r: Reply): string {
  return r.nativeFinish ?? (r.stopSequence !== null ? "stop_sequence" : STOP[r.finish]);
}

function usage(r: Reply) {
  return { inputTokens: r.usage.input, outputTokens: r.usage.output + r.usage.reasoning, totalTokens: r.usage.input + r.usage.output + r.usage.reasoning };
}

function converseAnswer(r: Reply) {
  const content: unknown[] = [];
  if (r.reasoning) content.push({ reasoningContent: { reasoningText: { text: r.reasoning, signature: hashString(r.reasoning, 24, "b64url") } } });
  if (r.text) content.push({ text: r.text });
  for (const c of r.toolCalls) content.push({ toolUse: { toolUseId: c.id, name: c.name, input: JSON.parse(c.args) } });
  return { output: { message: { role: "assistant", content } }, stopReason: stopReason(r), usage: usage(r), metrics: { latencyMs: 120 } };
}

/** One event message, its payload padded as Bedrock pads it. */
function eventFrame(type: string, payload: Record<string, unknown>, n: number): Buffer {
  const p = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".slice(0, 1 + ((n * 7) % 40));
  return Buffer.from(codec.encode({
    headers: {
      ":event-type": { type: "string", value: type },
      ":content-type": { type: "string", value: "application/json" },
      ":message-type": { type: "string", value: "event" },
    },
    body: new TextEncoder().encode(JSON.stringify({ ...payload, p })),
  }));
}

function exceptionFrame(type: string, message: string): Buffer {
  return Buffer.from(codec.encode({
    headers: {
      ":exception-type": { type: "string", value: type },
      ":content-type": { type: "string", value: "application/json" },
      ":message-type": { type: "string", value: "exception" },
    },
    body: new TextEncoder().encode(JSON.stringify({ message })),
  }));
}

/** The ConverseStream events of a reply. */
function streamFrames(r: Reply): Buffer[] {
  const frames: Buffer[] = [];
  let n = 0;
  const ev = (type: string, payload: Record<string, unknown>) => frames.push(eventFrame(type, payload, n++));
  ev("messageStart", { role: "assistant" });
  let block = 0;
  if (r.reasoning) {
    for (const piece of chunkText(r.reasoning, null)) ev("contentBlockDelta", { contentBlockIndex: block, delta: { reasoningContent: { text: piece } } });
    ev("contentBlockDelta", { contentBlockIndex: block, delta: { reasoningContent: { signature: hashString(r.reasoning, 24, "b64url") } } });
    ev("contentBlockStop", { contentBlockIndex: block++ });
  }
  if (r.text) {
    for (const piece of chunkText(r.text, null)) ev("contentBlockDelta", { contentBlockIndex: block, delta: { text: piece } });
    ev("contentBlockStop", { contentBlockIndex: block++ });
  }
  for (const c of r.toolCalls) {
    ev("contentBlockStart", { contentBlockIndex: block, start: { toolUse: { toolUseId: c.id, name: c.name } } });
    for (const piece of chunkText(c.args, null)) ev("contentBlockDelta", { contentBlockIndex: block, delta: { toolUse: { input: piece } } });
    ev("contentBlockStop", { contentBlockIndex: block++ });
  }
  ev("messageStop", { stopReason: stopReason(r) });
  ev("metadata", { usage: usage(r), metrics: { latencyMs: 120 } });
  return frames;
}

/** An InvokeModel body for an Anthropic model read into the neutral view; a string is the ValidationException's message. */
function invokeConversation(b: any, model: string): Conversation | string {
  const malformed = (why: string) => `Malformed input request: ${why}, please reformat your input and try again.`;
  if (!isObject(b)) return malformed("#: expected type: JSONObject");
  for (const k of ["model", "stream"]) if (k in b) return malformed(`#: extraneous key [${k}] is not permitted`);
  if (b.anthropic_version === undefined) return malformed("#: required key [anthropic_version] not found");
  if (b.anthropic_version !== "bedrock-2023-05-31") return "Invalid API version";
  if (typeof b.max_tokens !== "number") return malformed("#: required key [max_tokens] not found");
  if (!Array.isArray(b.messages) || b.messages.length === 0) return malformed("#/messages: expected minimum item count: 1");
  return { ...anthropicConversation(b), model };
}

/** What anthropic.ts's writers need of a request context: ids from the request, the default chunking. */
function idContext(material: string): Ctx {
  return { id: (label: string, n: number, a?: "base62" | "hex" | "b64url") => hashString(`${material}#${label}`, n, a), switches: { chunks: null } } as unknown as Ctx;
}

/** The InvokeModelWithResponseStream chunks of an Anthropic stream (its SSE events, each wrapped). */
function invokeFrames(events: string[], r: Reply): Buffer[] {
  return events.map((sse, n) => {
    const data = JSON.parse(/\ndata: (.*)\n/.exec(sse)![1]);
    if (data.type === "message_stop") {
      data["amazon-bedrock-invocationMetrics"] = { inputTokenCount: r.usage.input, outputTokenCount: r.usage.output + r.usage.reasoning, invocationLatency: 120, firstByteLatency: 40 };
    }
    return eventFrame("chunk", { bytes: Buffer.from(JSON.stringify(data)).toString("base64") }, n);
  });
}

const ERROR_TYPES: Record<number, string> = { 400: "ValidationException", 403: "AccessDeniedException", 404: "ResourceNotFoundException", 408: "ModelTimeoutException", 424: "ModelErrorException", 429: "ThrottlingException", 500: "InternalServerException", 503: "ServiceUnavailableException" };

export async function startBedrockMock(o: BedrockMockOptions): Promise<BedrockMock> {
  const region = o.region ?? "us-east-1";
  const requests: BedrockRequest[] = [];
  const queue: ScriptStep[] = [];
  let seq = 0;
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const rawBody = Buffer.concat(chunks).toString("utf8");
    const url = new URL(req.url ?? "/", "http://x");
    const route = /^\/model\/([^/]+)\/(converse|converse-stream|invoke|invoke-with-response-stream)$/.exec(url.pathname);
    const model = route ? decodeURIComponent(route[1]) : "";
    let body: any;
    try {
      body = rawBody ? JSON.parse(rawBody) : undefined;
    } catch {
      body = undefined;
    }
    requests.push({ method: req.method ?? "", path: url.pathname, model, headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : String(v)])), body, rawBody });
    const refused = await checkSignature(req, url.pathname, rawBody, o, region);
    if (refused) return errorReply(res, ...refused);
    if (!route || req.method !== "POST") return errorReply(res, 404, "UnknownOperationException", "Unknown operation");
    if (o.models && !o.models.includes(model)) return errorReply(res, 404, "ResourceNotFoundException", "The provided model identifier is invalid.");
    if (body === undefined) return errorReply(res, 400, "ValidationException", "Malformed input request, please reformat your input and try again.");
    const invoke = route[2].startsWith("invoke");
    const conv = invoke ? invokeConversation(body, model) : conversation(body, model);
    if (typeof conv === "string") return errorReply(res, 400, "ValidationException", conv);
    const step = queue.shift();
    if (step?.error) return errorReply(res, step.error.status, step.error.type ?? ERROR_TYPES[step.error.status] ?? "InternalServerException", step.error.message ?? "Mock error");
    const requestNo = seq++;
    const reply = decideReply(conv, step, (i) => `tooluse_${hashString(`${rawBody}#${requestNo}#${i}`, 22)}`);
    const ids = idContext(`${rawBody}#${requestNo}`);
    if (route[2] === "converse" || route[2] === "invoke") {
      const answer = invoke ? anthropicMessage(ids, model, reply) : converseAnswer(reply);
      const counts = invoke ? { "x-amzn-bedrock-input-token-count": String(reply.usage.input), "x-amzn-bedrock-output-token-count": String(reply.usage.output + reply.usage.reasoning) } : {};
      res.writeHead(200, { "content-type": "application/json", "x-amzn-requestid": hashString(`${requestNo}`, 8, "hex"), ...counts });
      return void res.end(JSON.stringify(answer));
    }
    res.writeHead(200, { "content-type": "application/vnd.amazon.eventstream", "x-amzn-requestid": hashString(`${requestNo}`, 8, "hex") });
    const frames = invoke ? invokeFrames(anthropicStream(ids, model, reply), reply) : streamFrames(reply);
    const after = step?.streamError?.afterEvents;
    if (after !== undefined) frames.splice(after, frames.length - after, exceptionFrame("throttlingException", "Too many tokens, please wait before trying again."));
    const rnd = mulberry32(requestNo + 1);
    for (const f of frames) {
      if (!o.split) {
        res.write(f);
        continue;
      }
      let prev = 0;
      for (const cut of [...splitPositions(f, rnd), f.length]) {
        res.write(f.subarray(prev, cut));
        prev = cut;
      }
    }
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    script: (s) => void queue.push(...(Array.isArray(s) ? s : [s])),
    close: () => new Promise((r) => server.close(() => r())),
  };
}
