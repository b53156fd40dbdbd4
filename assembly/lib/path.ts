// Paths of the client APIs that name their model in the path: OpenAI's and Anthropic's
// GET /v1/models/{id}, and Gemini's /v1beta/models/{model}:{method}. Shared by ai-proxy, which
// serves them, and ai-ratelimit and ai-router, which must see the same model.

/** A path of Gemini's API: a model's method (/v1beta/models/{model}:{method}), one model, or the list. */
export class GeminiRoute {
  /** The model as it stands in the path (still percent-encoded); "" for the list. */
  model: string = "";
  /** generateContent, streamGenerateContent, countTokens, ...; "" for GET of a model or the list. */
  method: string = "";
}

/**
 * The Gemini route of a path without its query, or null. Gemini's API lives under /v1beta/ (and
 * /v1/ for its stable methods, told apart from OpenAI's /v1/models/{id} by the ":method").
 */
export function geminiRoute(route: string): GeminiRoute | null {
  let rest: string;
  if (route.startsWith("/v1beta/models")) rest = route.substring(14);
  else if (route.startsWith("/v1/models/") && route.indexOf(":") > 0) rest = route.substring(10);
  else return null;
  const r = new GeminiRoute();
  if (rest.length == 0) return r;
  if (!rest.startsWith("/") || rest.length == 1) return null;
  rest = rest.substring(1);
  const colon = rest.lastIndexOf(":");
  if (colon >= 0) {
    r.model = rest.substring(0, colon);
    r.method = rest.substring(colon + 1);
  } else r.model = rest;
  return r;
}

/** The query asks for server-sent events (alt=sse); without it, streamGenerateContent answers a JSON array. */
export function asksForSse(query: string): bool {
  const parts = query.split("&");
  for (let i = 0; i < parts.length; i++) if (parts[i] == "alt=sse") return true;
  return false;
}

function hexValue(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  return -1;
}

/**
 * A path segment percent-decoded (the SDKs encode a model name with a slash as %2F); null when the
 * encoding is broken. A decoded name is compared or validated before it goes anywhere.
 */
export function decodePathSegment(segment: string): string | null {
  if (segment.indexOf("%") < 0) return segment;
  const bytes = String.UTF8.encode(segment);
  const src = Uint8Array.wrap(bytes);
  const out = new Uint8Array(src.length);
  let n = 0;
  for (let i = 0; i < src.length; i++) {
    const c = <i32>src[i];
    if (c != 0x25) {
      out[n++] = <u8>c;
      continue;
    }
    if (i + 2 >= src.length) return null;
    const hi = hexValue(<i32>src[i + 1]);
    const lo = hexValue(<i32>src[i + 2]);
    if (hi < 0 || lo < 0) return null;
    out[n++] = <u8>((hi << 4) | lo);
    i += 2;
  }
  return String.UTF8.decode(out.buffer.slice(0, n));
}
