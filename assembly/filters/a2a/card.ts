// An agent's card as the gateway serves it: the agent's own card (fetched with proxy_http_call,
// kept in shared data for card_ttl so every worker uses one fetch), rewritten for each request so
// that a client talks to the gateway and shows the gateway's key:
// - the JSON-RPC interface's URL becomes the gateway's URL for the agent (v1.0 supportedInterfaces,
//   v0.3 url and additionalInterfaces); interfaces of other bindings (gRPC, HTTP+JSON) are left out:
//   the gateway routes JSON-RPC only;
// - securitySchemes and the requirements name the gateway's own auth (a bearer token, or an API key
//   header), in the card's own version's shape;
// - signatures are left out: they sign the agent's card, which this no longer is.
import { ByteBuilder, JsonValue, parseJson } from "../../lib/json";
import { getSharedData, setSharedData } from "../../lib/sdk";
import { Settings, AUTH_API_KEY } from "./config";

const DROPPED = ["signatures", "securitySchemes", "securityRequirements", "security"];

/** The cache's key for one agent and A2A version (the version the client asked for, validated). */
export function cacheKey(agent: string, version: string): string {
  return "sluice.a2a.card." + agent + "." + version;
}

/** The cached card (the agent's own bytes) when it is still fresh, else null. */
export function cachedCard(key: string, nowMs: i64): ArrayBuffer | null {
  const v = getSharedData(key).value;
  if (v === null || (v as ArrayBuffer).byteLength < 8) return null;
  const b = v as ArrayBuffer;
  if (load<i64>(changetype<usize>(b)) <= nowMs) return null;
  return b.slice(8);
}

export function storeCard(key: string, card: ArrayBuffer, expiresMs: i64): void {
  const b = new ArrayBuffer(8 + card.byteLength);
  store<i64>(changetype<usize>(b), expiresMs);
  memory.copy(changetype<usize>(b) + 8, changetype<usize>(card), card.byteLength);
  setSharedData(key, b, 0);
}

/** True when the interface (an object with url) is a JSON-RPC one: v1.0 protocolBinding, v0.3 transport. */
function jsonRpcInterface(v: JsonValue): bool {
  if (!v.isObject()) return false;
  const b = v.get("protocolBinding");
  const t = v.get("transport");
  const binding = b !== null && b.isString() ? b.s : t !== null && t.isString() ? t.s : "JSONRPC";
  return binding.toUpperCase() == "JSONRPC";
}

function writeInterface(out: ByteBuilder, v: JsonValue, url: string): void {
  out.byte(0x7b);
  let first = true;
  for (let i = 0; i < v.length; i++) {
    const k = v.keyAt(i);
    if (k == "url") continue;
    if (!first) out.byte(0x2c);
    first = false;
    out.str(k).byte(0x3a).value(v.at(i));
  }
  if (!first) out.byte(0x2c);
  out.raw('"url":').str(url).byte(0x7d);
}

function writeInterfaces(out: ByteBuilder, list: JsonValue, url: string): void {
  out.byte(0x5b);
  let n = 0;
  for (let i = 0; i < list.length; i++) {
    const item = list.at(i);
    if (!jsonRpcInterface(item)) continue;
    if (n++ > 0) out.byte(0x2c);
    writeInterface(out, item, url);
  }
  out.byte(0x5d);
}

/**
 * The card a client gets, or null when the agent's card is not a JSON object. `url` is the gateway's
 * URL for this agent.
 */
export function rewriteCard(s: Settings, card: ArrayBuffer, url: string): ArrayBuffer | null {
  const v = parseJson(card, 100000);
  if (v === null || !v.isObject()) return null;
  const v1 = v.get("supportedInterfaces") !== null;
  const out = new ByteBuilder(card.byteLength + 256);
  out.byte(0x7b);
  let first = true;
  for (let i = 0; i < v.length; i++) {
    const k = v.keyAt(i);
    if (DROPPED.includes(k)) continue;
    const item = v.at(i);
    if (!first) out.byte(0x2c);
    first = false;
    out.str(k).byte(0x3a);
    if (k == "url" && !v1) out.str(url);
    else if ((k == "supportedInterfaces" || k == "additionalInterfaces") && item.isArray()) writeInterfaces(out, item, url);
    else if (k == "preferredTransport") out.raw('"JSONRPC"');
    else out.value(item);
  }
  if (!first) out.byte(0x2c);
  const apiKey = s.authType == AUTH_API_KEY;
  if (v1) {
    out.raw('"securitySchemes":{"sluice":');
    if (apiKey) out.raw('{"apiKeySecurityScheme":{"description":"the gateway key","location":"header","name":').str(s.authHeader).raw("}}");
    else out.raw('{"httpAuthSecurityScheme":{"description":"the gateway key","scheme":"Bearer"}}');
    out.raw('},"securityRequirements":[{"schemes":{"sluice":{}}}]');
  } else {
    out.raw('"securitySchemes":{"sluice":');
    if (apiKey) out.raw('{"type":"apiKey","description":"the gateway key","in":"header","name":').str(s.authHeader).byte(0x7d);
    else out.raw('{"type":"http","description":"the gateway key","scheme":"bearer"}');
    out.raw('},"security":[{"sluice":[]}]');
  }
  out.byte(0x7d);
  return out.toArrayBuffer();
}
