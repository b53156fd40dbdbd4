// Every error a Sluice filter returns to a client: an OpenAI-style JSON body with the right status
// (docs/architecture.md, "Errors"), sent as an Envoy local reply.
import { ByteBuilder } from "./json";
import { sendLocalResponse } from "./sdk";

/**
 * {"error":{"message":...,"type":...,"param":...,"code":...}} as OpenAI writes an error (an empty
 * param or code is null). The one writer of the shape: ai-proxy's client-openai.ts uses it too.
 */
export function writeOpenAIErrorJson(b: ByteBuilder, message: string, type: string, param: string, code: string): void {
  b.raw('{"error":{"message":').str(message).raw(',"type":').str(type).raw(',"param":');
  if (param.length) b.str(param);
  else b.raw("null");
  b.raw(',"code":');
  if (code.length) b.str(code);
  else b.raw("null");
  b.raw("}}");
}

/** {"type":"error","error":{"type":...,"message":...}} as Anthropic's Messages API writes an error. */
export function writeAnthropicErrorJson(b: ByteBuilder, type: string, message: string): void {
  b.raw('{"type":"error","error":{"type":').str(type).raw(',"message":').str(message).raw("}}");
}

/** Gemini's status name for an HTTP status (google.rpc.Code as Gemini maps it). */
export function geminiStatus(status: u32): string {
  if (status == 400 || status == 413 || status == 405) return "INVALID_ARGUMENT";
  if (status == 401) return "UNAUTHENTICATED";
  if (status == 403) return "PERMISSION_DENIED";
  if (status == 404) return "NOT_FOUND";
  if (status == 409) return "ABORTED";
  if (status == 429) return "RESOURCE_EXHAUSTED";
  if (status == 499) return "CANCELLED";
  if (status == 501) return "UNIMPLEMENTED";
  if (status == 502 || status == 503 || status == 529) return "UNAVAILABLE";
  if (status == 504) return "DEADLINE_EXCEEDED";
  if (status >= 500) return "INTERNAL";
  return "FAILED_PRECONDITION";
}

/** {"error":{"code":<status>,"message":...,"status":"INVALID_ARGUMENT"|...}} as Gemini's API writes an error. */
export function writeGeminiErrorJson(b: ByteBuilder, status: u32, message: string): void {
  b.raw('{"error":{"code":').int(<i64>status).raw(',"message":').str(message).raw(',"status":').str(geminiStatus(status)).raw("}}");
}

/** The Gemini-shaped error body. */
export function geminiErrorBody(status: u32, message: string): ArrayBuffer {
  const b = new ByteBuilder(80 + message.length);
  writeGeminiErrorJson(b, status, message);
  return b.toArrayBuffer();
}

/** The OpenAI-shaped error body, param null. */
export function errorBody(message: string, type: string, code: string): ArrayBuffer {
  const b = new ByteBuilder(64 + message.length);
  writeOpenAIErrorJson(b, message, type, "", code);
  return b.toArrayBuffer();
}

/** The Anthropic-shaped error body. */
export function anthropicErrorBody(message: string, type: string): ArrayBuffer {
  const b = new ByteBuilder(64 + message.length);
  writeAnthropicErrorJson(b, type, message);
  return b.toArrayBuffer();
}

/**
 * Sends the error as a local reply. `details` becomes Envoy's response code details
 * (%RESPONSE_CODE_DETAILS% in the access log): short, no spaces, e.g. "sluice_key_auth_denied".
 * extraHeaders is a flat [name, value, ...] list.
 */
export function sendError(status: u32, message: string, type: string, code: string, details: string, extraHeaders: Array<string> = []): void {
  const headers = extraHeaders.slice(0);
  headers.push("content-type");
  headers.push("application/json");
  sendLocalResponse(status, details, errorBody(message, type, code), headers);
}
