// The client-API seam: which API a client speaks, and the few things that differ by it (its error
// shape, its whole answer, its stream writer, its stream's error ending, its request read into
// OpenAI's format, which providers speak it natively). A new client API (OpenAI Responses, Gemini's
// own, count_tokens) adds a CLIENT_* value, its client-<name>.ts, and a case in each function here;
// the stream, fallback and answer code call only these.
import { ByteBuilder, JsonValue } from "../../lib/json";
import { ChatResult, ClientError, Provider, StreamDecoder, StreamSink } from "../../providers/types";
import { OpenAIStreamSink, writeOpenAIChat, writeOpenAIError } from "./client-openai";
import { AnthropicStreamSink, Converted, anthropicToOpenAI, writeAnthropicError, writeAnthropicMessage } from "./client-anthropic";
import { ResponsesStreamSink, writeResponsesAnswer, writeResponsesError, writeResponsesErrorEvent, responseEcho } from "./client-responses";
import { responsesToOpenAI } from "./responses-request";
import { ResponsesNativeDecoder, nextSequence } from "./responses-native";

export const CLIENT_OPENAI: i32 = 0;
export const CLIENT_ANTHROPIC: i32 = 1;
/** OpenAI's Responses API, POST /v1/responses (client-responses.ts). */
export const CLIENT_RESPONSES: i32 = 2;

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
  // (An instance's own Responses API is used for the first attempt only: request.ts.)
  if (client == CLIENT_RESPONSES) return false;
  return provider.speaksOpenAI;
}

/** A client's chat request in OpenAI's format (the providers' common input); req itself for OpenAI clients. */
export function toOpenAIRequest(client: i32, req: JsonValue): Converted {
  if (client == CLIENT_ANTHROPIC) return anthropicToOpenAI(req);
  if (client == CLIENT_RESPONSES) return responsesToOpenAI(req);
  const c = new Converted();
  c.req = req;
  return c;
}

/** e as the client's API writes errors (Anthropic's shape or OpenAI's). */
export function writeClientError(client: i32, e: ClientError, out: ByteBuilder): void {
  if (client == CLIENT_ANTHROPIC) writeAnthropicError(e, out);
  else if (client == CLIENT_RESPONSES) writeResponsesError(e, out);
  else writeOpenAIError(e, out);
}

/** A whole chat answer in the client's API (clientReq: the client's body, which a Response echoes). */
export function writeClientAnswer(client: i32, result: ChatResult, out: ByteBuilder, clientReq: JsonValue | null = null): void {
  if (client == CLIENT_ANTHROPIC) writeAnthropicMessage(result, out);
  else if (client == CLIENT_RESPONSES) writeResponsesAnswer(result, out, responseEcho(clientReq));
  else writeOpenAIChat(result, out);
}

/**
 * The writer of a translated stream in the client's API (a Responses stream echoes the client's
 * body and holds at most maxHeld bytes of the answer for its final events).
 */
export function clientStreamSink(client: i32, includeUsage: bool, promptEstimate: i64, clientReq: JsonValue | null = null, maxHeld: i64 = 0): StreamSink {
  if (client == CLIENT_ANTHROPIC) return new AnthropicStreamSink(promptEstimate);
  if (client == CLIENT_RESPONSES) return new ResponsesStreamSink(promptEstimate, responseEcho(clientReq), maxHeld);
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
  } else if (client == CLIENT_RESPONSES) {
    writeResponsesErrorEvent(e, nextSequence(decoder), b);
  } else {
    b.raw("data: ");
    writeOpenAIError(e, b);
    b.raw("\n\ndata: [DONE]\n\n");
  }
  return b.toArrayBuffer();
}
