// The client-API seam: which API a client speaks, and the few things that differ by it (its error
// shape, its whole answer, its stream writer, its stream's error ending, its request read into
// OpenAI's format, which providers speak it natively). A new client API (OpenAI Responses, Gemini's
// own, count_tokens) adds a CLIENT_* value, its client-<name>.ts, and a case in each function here;
// the stream, fallback and answer code call only these.
import { ByteBuilder, JsonValue } from "../../lib/json";
import { ChatResult, ClientError, Provider, StreamDecoder, StreamSink, Usage } from "../../providers/types";
import { OpenAIStreamSink, writeOpenAIChat, writeOpenAIError } from "./client-openai";
import { AnthropicStreamSink, Converted, anthropicToOpenAI, isAnthropicError, writeAnthropicError, writeAnthropicMessage } from "./client-anthropic";
import { geminiToOpenAI, isGeminiAnswer, isGeminiError, writeGeminiError } from "./client-gemini";
import { GeminiStreamSink, writeGeminiResponse } from "./client-gemini-answer";
import { writeGeminiEmbeddings } from "./client-gemini-embeddings";
import { ResponsesStreamSink, writeResponsesAnswer, writeResponsesError, writeResponsesErrorEvent, responseEcho } from "./client-responses";
import { responsesToOpenAI } from "./responses-request";
import { ResponsesNativeDecoder, nextSequence } from "./responses-native";
import { ResponseKeeper } from "./responses-store";

export const CLIENT_OPENAI: i32 = 0;
export const CLIENT_ANTHROPIC: i32 = 1;
/** Gemini's own API (/v1beta/models/{model}:generateContent ...): request.ts tells it by its path. */
export const CLIENT_GEMINI: i32 = 2;
/** OpenAI's Responses API, POST /v1/responses (client-responses.ts). */
export const CLIENT_RESPONSES: i32 = 3;

export const RESPONSES_PATH = "/v1/responses";

/**
 * The client's API shape from its path: Anthropic's for /v1/messages and below it, else Anthropic's
 * when the request carries anthropic-version (Anthropic's SDKs always send it), else OpenAI's.
 */
export function clientOf(route: string, anthropicVersion: bool): i32 {
  if (route == RESPONSES_PATH) return CLIENT_RESPONSES;
  if (route.startsWith("/v1/messages") || (anthropicVersion && route != "/v1/chat/completions" && route != "/v1/embeddings")) {
    return CLIENT_ANTHROPIC;
  }
  return CLIENT_OPENAI;
}

/** The provider speaks the client's API: its answers can pass through as they are. */
export function speaksClient(provider: Provider, client: i32): bool {
  if (client == CLIENT_ANTHROPIC) return provider.speaksAnthropic;
  if (client == CLIENT_GEMINI) return provider.speaksGemini;
  // (An instance's own Responses API is used for the first attempt only: request.ts.)
  if (client == CLIENT_RESPONSES) return false;
  return provider.speaksOpenAI;
}

/**
 * A client's chat request in OpenAI's format (the providers' common input); req itself for OpenAI
 * clients. A Gemini request names its model and stream in the path, not the body. history: the
 * stored conversation a Responses request's previous_response_id names (responses-store.ts).
 */
export function toOpenAIRequest(client: i32, req: JsonValue, model: string = "", stream: bool = false, history: JsonValue | null = null): Converted {
  if (client == CLIENT_ANTHROPIC) return anthropicToOpenAI(req);
  if (client == CLIENT_GEMINI) return geminiToOpenAI(req, model, stream);
  if (client == CLIENT_RESPONSES) return responsesToOpenAI(req, history);
  const c = new Converted();
  c.req = req;
  return c;
}

/** e as the client's API writes errors (Anthropic's shape or OpenAI's). */
export function writeClientError(client: i32, e: ClientError, out: ByteBuilder): void {
  if (client == CLIENT_ANTHROPIC) writeAnthropicError(e, out);
  else if (client == CLIENT_GEMINI) writeGeminiError(e, out);
  else if (client == CLIENT_RESPONSES) writeResponsesError(e, out);
  else writeOpenAIError(e, out);
}

/** A provider's error body already in the client's own shape (it passes on as the provider wrote it). */
export function isClientError(client: i32, v: JsonValue): bool {
  if (client == CLIENT_ANTHROPIC) return isAnthropicError(v);
  if (client == CLIENT_GEMINI) return isGeminiError(v);
  return false;
}

/** A native answer says it is one of the client's API before it passes on untouched. */
export function isClientAnswer(client: i32, v: JsonValue): bool {
  if (client == CLIENT_ANTHROPIC) return v.getString("type") == "message";
  if (client == CLIENT_GEMINI) return isGeminiAnswer(v);
  return true;
}

/**
 * A whole chat answer in the client's API (clientReq: the client's body, which a Response echoes;
 * keeper: where a Response is stored, when it is).
 */
export function writeClientAnswer(client: i32, result: ChatResult, out: ByteBuilder, clientReq: JsonValue | null = null, keeper: ResponseKeeper | null = null): void {
  if (client == CLIENT_ANTHROPIC) writeAnthropicMessage(result, out);
  else if (client == CLIENT_GEMINI) writeGeminiResponse(result, out);
  else if (client == CLIENT_RESPONSES) writeResponsesAnswer(result, out, responseEcho(clientReq), keeper);
  else writeOpenAIChat(result, out);
}

/**
 * An embeddings answer in the client's API, with its usage; false when the provider's answer is
 * not one. `batch`: Gemini's batchEmbedContents (else embedContent's single embedding).
 */
export function writeClientEmbeddings(client: i32, provider: Provider, parsed: JsonValue, model: string, batch: bool, out: ByteBuilder, usage: Usage): bool {
  if (client == CLIENT_GEMINI) {
    const vectors = provider.embeddingVectors(parsed, usage);
    if (vectors === null) return false;
    writeGeminiEmbeddings(vectors, batch, out);
    return true;
  }
  return provider.embeddingsResponse(parsed, model, out, usage);
}

/** The media type of a stream in the client's API (`array`: Gemini's JSON-array stream, without alt=sse). */
export function streamContentType(client: i32, array: bool): string {
  return client == CLIENT_GEMINI && array ? "application/json" : "text/event-stream";
}

/**
 * The writer of a translated stream in the client's API (`array`: Gemini's JSON-array framing; a
 * Responses stream echoes the client's body and holds at most maxHeld bytes of the answer for its
 * final events).
 */
export function clientStreamSink(client: i32, includeUsage: bool, promptEstimate: i64, array: bool = false, clientReq: JsonValue | null = null, maxHeld: i64 = 0, keeper: ResponseKeeper | null = null): StreamSink {
  if (client == CLIENT_ANTHROPIC) return new AnthropicStreamSink(promptEstimate);
  if (client == CLIENT_GEMINI) return new GeminiStreamSink(promptEstimate, array);
  if (client == CLIENT_RESPONSES) return new ResponsesStreamSink(promptEstimate, responseEcho(clientReq), maxHeld, keeper);
  return new OpenAIStreamSink(includeUsage, promptEstimate);
}

/** The reader of the provider's stream: its own chat stream, or its own Responses stream (native). */
export function clientStreamDecoder(client: i32, native: bool, provider: Provider): StreamDecoder {
  if (client == CLIENT_RESPONSES && native) return new ResponsesNativeDecoder();
  return provider.streamDecoder();
}

/**
 * The client API's ending for a stream that ends in error e (decoder: the provider stream's, whose
 * last Responses event the ending is numbered after).
 */
export function clientStreamEnding(client: i32, e: ClientError, decoder: StreamDecoder | null = null): ArrayBuffer {
  const b = new ByteBuilder(160);
  // The provider may have stopped inside a line or an event: blank lines end it first (an
  // empty event dispatches nothing), so the error is read as its own event.
  b.raw("\n\n");
  if (client == CLIENT_ANTHROPIC) {
    b.raw("event: error\ndata: ");
    writeAnthropicError(e, b);
    b.raw("\n\n");
  } else if (client == CLIENT_GEMINI) {
    // Only SSE streams pass through natively (a JSON-array stream is always written by the sink).
    b.raw("data: ");
    writeGeminiError(e, b);
    b.raw("\r\n\r\n");
  } else if (client == CLIENT_RESPONSES) {
    writeResponsesErrorEvent(e, nextSequence(decoder), b);
  } else {
    b.raw("data: ");
    writeOpenAIError(e, b);
    b.raw("\n\ndata: [DONE]\n\n");
  }
  return b.toArrayBuffer();
}
