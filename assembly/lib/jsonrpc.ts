// JSON-RPC 2.0 messages as MCP (Streamable HTTP) and A2A carry them over HTTP: what one message is
// (request, notification, response, or not a JSON-RPC message at all) and the error replies the
// gateway writes itself. The mcp and a2a filters read the body once with lib/json.ts and hand the
// parsed value here; nothing here parses again.
import { ByteBuilder, JsonValue } from "./json";
import { sendLocalResponse } from "./sdk";

// The error codes JSON-RPC 2.0 defines (section 5.1), and the range left for implementations.
export const PARSE_ERROR: i32 = -32700;
export const INVALID_REQUEST: i32 = -32600;
export const METHOD_NOT_FOUND: i32 = -32601;
export const INVALID_PARAMS: i32 = -32602;
export const INTERNAL_ERROR: i32 = -32603;
/** Implementation-defined server errors are -32000 to -32099; the gateway's own refusals use these. */
export const SERVER_ERROR: i32 = -32000;

export const REQUEST: i32 = 1;
export const NOTIFICATION: i32 = 2;
export const RESPONSE: i32 = 3;
export const INVALID: i32 = 0;

/** Longest method name the gateway reads; longer ones are invalid (a method also becomes a log field). */
export const MAX_METHOD_BYTES: i32 = 128;

/**
 * One JSON-RPC message. `id` is kept as the bytes the client wrote (a string with its quotes, or a
 * number exactly as written) so the reply echoes it unchanged; "null" when there is none or it was
 * unreadable.
 */
export class JsonRpcMessage {
  kind: i32 = INVALID;
  method: string = "";
  id: string = "null";
  params: JsonValue | null = null;
  /** A response's result or error member (kind RESPONSE). */
  result: JsonValue | null = null;
  error: JsonValue | null = null;
  /** Why the message is INVALID, for the error reply's message. */
  problem: string = "";
}

/** The id's JSON text, or null when it is not a string or number (JSON-RPC allows null ids only in errors). */
function idText(v: JsonValue): string | null {
  // An id is echoed in the reply and may reach a log: bounded like a method name.
  if (v.isString()) return v.units <= 256 ? jsonQuoted(v.s) : null;
  if (v.isNumber()) {
    const s = v.s;
    // Fractional ids are discouraged by JSON-RPC; they are still echoed exactly, but bounded.
    return s.length <= 32 ? s : null;
  }
  return null;
}

function jsonQuoted(s: string): string {
  const b = new ByteBuilder(s.length + 2);
  b.str(s);
  return String.UTF8.decode(b.toArrayBuffer());
}

function invalid(m: JsonRpcMessage, problem: string): JsonRpcMessage {
  m.kind = INVALID;
  m.problem = problem;
  return m;
}

/**
 * Classifies a parsed body. An array (a batch) is INVALID here: MCP removed batches in its
 * 2025-06-18 revision and A2A never had them, so the caller answers it with one error.
 */
export function readMessage(v: JsonValue): JsonRpcMessage {
  const m = new JsonRpcMessage();
  if (v.isArray()) return invalid(m, "JSON-RPC batches are not supported");
  if (!v.isObject()) return invalid(m, "a JSON-RPC message is a JSON object");
  const idv = v.get("id");
  if (idv !== null && !idv.isNull()) {
    const t = idText(idv);
    if (t === null) return invalid(m, "id must be a string (at most 256 characters) or a number");
    m.id = t;
  }
  const version = v.get("jsonrpc");
  if (version === null || !version.isString() || version.s != "2.0") return invalid(m, 'jsonrpc must be "2.0"');
  const method = v.get("method");
  if (method !== null) {
    if (!method.isString()) return invalid(m, "method must be a string");
    const name = method.s;
    if (name.length == 0 || name.length > MAX_METHOD_BYTES || !printableAscii(name)) return invalid(m, "method must be 1 to 128 printable ASCII characters");
    m.method = name;
    const params = v.get("params");
    if (params !== null && !params.isObject() && !params.isArray()) return invalid(m, "params must be an object or an array");
    m.params = params;
    m.kind = idv === null ? NOTIFICATION : REQUEST;
    if (idv !== null && idv.isNull()) return invalid(m, "a request's id must not be null");
    return m;
  }
  m.result = v.get("result");
  m.error = v.get("error");
  if (idv === null || (m.result === null) == (m.error === null)) return invalid(m, "a message needs a method, or an id with exactly one of result and error");
  m.kind = RESPONSE;
  return m;
}

function printableAscii(s: string): bool {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

/** {"jsonrpc":"2.0","id":<id>,"error":{"code":..,"message":..}} with `id` as JSON text ("null" when unknown). */
export function writeError(b: ByteBuilder, id: string, code: i32, message: string): void {
  b.raw('{"jsonrpc":"2.0","id":').raw(id).raw(',"error":{"code":').int(<i64>code).raw(',"message":').str(message).raw("}}");
}

export function errorBody(id: string, code: i32, message: string): ArrayBuffer {
  const b = new ByteBuilder(64 + message.length);
  writeError(b, id, code, message);
  return b.toArrayBuffer();
}

/** {"jsonrpc":"2.0","id":<id>,"result":<resultJson>} */
export function resultBody(id: string, resultJson: ArrayBuffer): ArrayBuffer {
  const b = new ByteBuilder(40 + resultJson.byteLength);
  b.raw('{"jsonrpc":"2.0","id":').raw(id).raw(',"result":').buffer(resultJson).byte(0x7d);
  return b.toArrayBuffer();
}

/**
 * Sends a JSON-RPC error as the local reply. Protocol errors (unparseable, not JSON-RPC, too large)
 * go with a 4xx status, as the MCP SDK's own server answers them; an error about one method call
 * (unknown method, a denied tool) goes with 200, because it is the call's answer, in the shape every
 * JSON-RPC client reads. `details` is Envoy's response code details (short, no spaces).
 */
export function sendJsonRpcError(status: u32, id: string, code: i32, message: string, details: string, extraHeaders: Array<string> = []): void {
  const headers = extraHeaders.slice(0);
  headers.push("content-type");
  headers.push("application/json");
  sendLocalResponse(status, details, errorBody(id, code, message), headers);
}
