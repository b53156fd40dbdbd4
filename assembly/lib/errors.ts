// Every error a Sluice filter returns to a client: an OpenAI-style JSON body with the right status
// (ARCHITECTURE.md, "Errors"), sent as an Envoy local reply.
import { ByteBuilder } from "./json";
import { sendLocalResponse } from "./sdk";

/** The body {"error":{"message":...,"type":...,"param":null,"code":...}} as OpenAI sends it. */
export function errorBody(message: string, type: string, code: string): ArrayBuffer {
  const b = new ByteBuilder(64 + message.length);
  b.raw('{"error":{"message":').str(message).raw(',"type":').str(type).raw(',"param":null,"code":');
  if (code.length) b.str(code);
  else b.raw("null");
  b.raw("}}");
  return b.toArrayBuffer();
}

/** The body {"type":"error","error":{"type":...,"message":...}} as Anthropic's Messages API sends it. */
export function anthropicErrorBody(message: string, type: string): ArrayBuffer {
  const b = new ByteBuilder(64 + message.length);
  b.raw('{"type":"error","error":{"type":').str(type).raw(',"message":').str(message).raw("}}");
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
