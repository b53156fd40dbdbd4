// A call one server answers (tools/call, prompts/get, resources/read, completion/complete,
// resources/subscribe): which server the prefixed name or uri names, the body with the name as
// that server knows it (the bytes around it copied, not re-serialized), and the request's headers
// pointed at the server through Envoy's router, so a streamed answer streams through.
import { ByteBuilder, JsonValue } from "../../lib/json";
import { REQUEST_HEADERS, replaceHeader, removeHeader } from "../../lib/sdk";
import { routeTo } from "../../lib/upstream-route";
import { Settings, Server } from "./config";
import { Member } from "./session";
import { credentialFor } from "./auth";

/** Where a routed call goes: the server, and the string value in the body that names the target. */
export class Target {
  server: Server | null = null;
  /** The JSON string value holding the prefixed name or uri (its bytes are in the body). */
  value: JsonValue | null = null;
  /** The name or uri as the server knows it. */
  local: string = "";
  /** Why there is no target (shown to the client). */
  problem: string = "";
}

/** The value that names the call's target: params.name, params.uri, or params.ref's name or uri. */
function namingValue(method: string, params: JsonValue | null): JsonValue | null {
  if (params === null || !params.isObject()) return null;
  if (method == "tools/call" || method == "prompts/get") return params.get("name");
  if (method == "resources/read" || method == "resources/subscribe" || method == "resources/unsubscribe") return params.get("uri");
  if (method == "completion/complete") {
    const ref = params.get("ref");
    if (ref === null || !ref.isObject()) return null;
    const n = ref.get("name");
    return n !== null ? n : ref.get("uri");
  }
  return null;
}

/** True for a uri-named target (`<server>+<uri>`); false for a name (`<server>__<name>`). */
function byUri(method: string, params: JsonValue | null): bool {
  if (method.startsWith("resources/")) return true;
  if (method == "completion/complete" && params !== null) {
    const ref = params.get("ref");
    return ref !== null && ref.isObject() && ref.get("name") === null;
  }
  return false;
}

export function targetOf(s: Settings, method: string, params: JsonValue | null): Target {
  const t = new Target();
  const v = namingValue(method, params);
  if (v === null || !v.isString()) {
    t.problem = method + " needs a string " + (byUri(method, params) ? "uri" : "name");
    return t;
  }
  const full = v.s;
  const sep = byUri(method, params) ? "+" : "__";
  const at = full.indexOf(sep);
  if (at <= 0) {
    t.problem = "'" + bounded(full) + "' names no server of this gateway (expected <server>" + sep + "...)";
    return t;
  }
  const server = s.server(full.substring(0, at));
  if (server === null) {
    t.problem = "'" + bounded(full) + "' names no server of this gateway";
    return t;
  }
  t.server = server;
  t.value = v;
  t.local = full.substring(at + sep.length);
  return t;
}

/** A client value quoted in a message: at most 128 characters. */
export function bounded(v: string): string {
  return v.length <= 128 ? v : v.substring(0, 128) + "...";
}

/** The body with the target's value replaced by the server's own name for it. */
export function rewrittenBody(body: ArrayBuffer, t: Target): ArrayBuffer {
  const v = t.value as JsonValue;
  const start = <i32>(v.raw - changetype<usize>(body));
  const end = start + v.rawLen;
  const b = new ByteBuilder(body.byteLength);
  b.bytes(changetype<usize>(body), start);
  b.strRange(t.local, 0, t.local.length);
  b.bytes(changetype<usize>(body) + <usize>end, body.byteLength - end);
  return b.toArrayBuffer();
}

/** Points the held request at the server: path, authority, cluster, its session, its credential. */
export function pointAt(s: Settings, server: Server, member: Member, bodyLength: i32): void {
  replaceHeader(REQUEST_HEADERS, "content-length", bodyLength.toString());
  replaceHeader(REQUEST_HEADERS, "accept", "application/json, text/event-stream");
  if (member.id.length) replaceHeader(REQUEST_HEADERS, "mcp-session-id", member.id);
  else removeHeader(REQUEST_HEADERS, "mcp-session-id");
  if (member.version.length) replaceHeader(REQUEST_HEADERS, "mcp-protocol-version", member.version);
  routeTo(s.clusterHeader, server.cluster, server.authority, server.path, server.authHeader, credentialFor(server));
}

/**
 * A resources/read answer (JSON, or the SSE events carrying it) with every `"uri":"` member
 * prefixed by its server. A scan, not a parse: inside a JSON string a quote is escaped, so an
 * unescaped `"uri"` followed by a colon and a quote is always a member name.
 */
export function prefixUris(body: ArrayBuffer, prefix: string): ArrayBuffer {
  const p = changetype<usize>(body);
  const n = body.byteLength;
  const b = new ByteBuilder(n + 64);
  let copied = 0;
  let i = 0;
  while (i + 5 <= n) {
    if (load<u8>(p + i) == 0x22 && load<u8>(p + i + 1) == 0x75 && load<u8>(p + i + 2) == 0x72 && load<u8>(p + i + 3) == 0x69 && load<u8>(p + i + 4) == 0x22 && (i == 0 || load<u8>(p + i - 1) != 0x5c)) {
      let j = i + 5;
      while (j < n && isSpace(load<u8>(p + j))) j++;
      if (j < n && load<u8>(p + j) == 0x3a) {
        j++;
        while (j < n && isSpace(load<u8>(p + j))) j++;
        if (j < n && load<u8>(p + j) == 0x22) {
          b.bytes(p + copied, j + 1 - copied);
          b.strRange(prefix, 0, prefix.length);
          copied = j + 1;
          i = j + 1;
          continue;
        }
      }
    }
    i++;
  }
  b.bytes(p + copied, n - copied);
  return b.toArrayBuffer();
}

function isSpace(c: u8): bool {
  return c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d;
}
