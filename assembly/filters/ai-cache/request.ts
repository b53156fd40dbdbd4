// Which requests ai-cache reads, and what it needs from each: the client API (as ai-proxy tells it,
// by the path and Anthropic's version header), whether it streams (and Gemini's framing), the model
// Gemini names in its path, and the reasons a request is not served from the cache.
import { HeaderPairs } from "../../lib/sdk";
import { JsonValue } from "../../lib/json";
import { geminiRoute, asksForSse, decodePathSegment } from "../../lib/path";
import { CLIENT_OPENAI, CLIENT_ANTHROPIC, CLIENT_GEMINI, CLIENT_RESPONSES, clientOf } from "../ai-proxy/client";

/** A chat request ai-cache may answer, as its headers describe it. */
export class CacheRequest {
  client: i32 = CLIENT_OPENAI;
  /** Gemini's model, from its path ("" for the other APIs: it is in the body). */
  pathModel: string = "";
  /** Streaming is asked in the path (Gemini's streamGenerateContent). */
  pathStream: bool = false;
  /** Gemini's JSON-array stream (streamGenerateContent without alt=sse). */
  geminiArray: bool = false;
  /** Why the cache is bypassed (the client asked), or "". */
  bypass: string = "";
  /** The client sent x-sluice-cache (the gateway's own header: removed before the provider sees it). */
  ownHeader: bool = false;
  contentLength: i64 = -1;
}

/** The chat request the headers announce, or null for anything ai-cache leaves alone. */
export function readHeaders(h: HeaderPairs): CacheRequest | null {
  let method = "";
  let path = "";
  let anthropicVersion = false;
  const r = new CacheRequest();
  for (let i = 0; i < h.count; i++) {
    if (h.keyIs(i, ":method")) method = h.value(i);
    else if (h.keyIs(i, ":path")) path = h.value(i);
    else if (h.keyIs(i, "anthropic-version")) anthropicVersion = true;
    else if (h.keyIs(i, "content-length")) r.contentLength = I64.parseInt(h.value(i));
    else if (h.keyIs(i, "x-sluice-cache")) {
      r.ownHeader = true;
      if (h.value(i).toLowerCase() == "bypass") r.bypass = "header";
    } else if (h.keyIs(i, "cache-control")) {
      // RFC 9111 5.2.1: no-cache asks for a fresh answer; no-store that nothing be kept.
      const v = h.value(i).toLowerCase();
      if (v.includes("no-cache") || v.includes("no-store")) r.bypass = "cache_control";
    }
  }
  if (method != "POST") return null;
  const q = path.indexOf("?");
  const route = q >= 0 ? path.substring(0, q) : path;
  const gemini = geminiRoute(route);
  if (gemini !== null) {
    const m = gemini.method;
    if (m != "generateContent" && m != "streamGenerateContent") return null;
    const model = decodePathSegment(gemini.model);
    if (model === null || (model as string).length == 0) return null;
    r.client = CLIENT_GEMINI;
    r.pathModel = model as string;
    r.pathStream = m == "streamGenerateContent";
    r.geminiArray = r.pathStream && !asksForSse(q >= 0 ? path.substring(q + 1) : "");
    return r;
  }
  if (route != "/v1/chat/completions" && route != "/v1/messages" && route != "/v1/responses") return null;
  r.client = clientOf(route, anthropicVersion);
  return r;
}

/** The client asked for a stream. */
export function streams(r: CacheRequest, body: JsonValue): bool {
  if (r.client == CLIENT_GEMINI) return r.pathStream;
  const s = body.get("stream");
  return s !== null && s.isBool() && s.b;
}

/** An OpenAI client asked for the usage chunk at the end of its stream. */
export function includeUsage(body: JsonValue): bool {
  const o = body.get("stream_options");
  if (o === null) return false;
  const iu = (o as JsonValue).get("include_usage");
  return iu !== null && iu.isBool() && iu.b;
}

/** The model the body names (Gemini's is in its path). */
export function bodyModel(r: CacheRequest, body: JsonValue): string {
  if (r.client == CLIENT_GEMINI) return r.pathModel;
  const m = body.getString("model");
  return m !== null ? m as string : "";
}

/**
 * Why a request that reached the body is not served from or kept in the cache, or "": a Response
 * that is stored or continues a stored conversation (its id must name something the provider or
 * ai-proxy keeps; an answer from the cache is kept by neither), and several answers at once (n > 1,
 * candidateCount > 1: kept as one they would all be the same).
 */
export function bodyBypass(r: CacheRequest, body: JsonValue): string {
  if (!body.isObject()) return "unreadable";
  if (r.client == CLIENT_RESPONSES) {
    const store = body.get("store");
    if (store === null || !store.isBool() || store.b) return "responses_store";
    if (body.get("previous_response_id") !== null || body.get("conversation") !== null) return "responses_store";
  }
  const n = body.get("n");
  if (n !== null && n.isNumber() && n.n != 1) return "n";
  if (r.client == CLIENT_GEMINI) {
    const gc = body.get("generationConfig");
    const cc = gc !== null ? (gc as JsonValue).get("candidateCount") : null;
    if (cc !== null && cc.isNumber() && cc.n != 1) return "n";
  }
  if (r.client == CLIENT_ANTHROPIC || r.client == CLIENT_OPENAI || r.client == CLIENT_RESPONSES || r.client == CLIENT_GEMINI) return "";
  return "unreadable";
}
