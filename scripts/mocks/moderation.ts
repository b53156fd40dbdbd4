// Mock moderation service for ai-guard's external moderation: OpenAI's POST /v1/moderations, Azure AI
// Content Safety's POST /contentsafety/text:analyze, and Sluice's webhook contract (POST /moderate),
// all on one port. A text is flagged when it holds a trigger word (whole word, any case); switches
// make it slow (answers after delayMs), fail (errorStatus) or answer garbage.
import http from "node:http";
import type { AddressInfo } from "node:net";

/** OpenAI's moderation categories (omni-moderation-latest), as the API names them. */
export const OPENAI_CATEGORIES = [
  "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
  "self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "sexual/minors", "violence", "violence/graphic",
];
/** Azure AI Content Safety's text categories and the OpenAI category each mock trigger maps to. */
const AZURE_OF: Record<string, string> = { hate: "Hate", "self-harm": "SelfHarm", sexual: "Sexual", violence: "Violence" };

export interface ModerationSwitches {
  /** Answer after this many milliseconds (slow mode: past the gateway's timeout_ms). */
  delayMs: number;
  /** Answer every request with this status and the service's error body (0: off). */
  errorStatus: number;
  /** Answer 200 with a body that is not the service's shape. */
  garbage: boolean;
}

export interface ModerationRequest {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: any;
}

export interface ModerationMock {
  url: string;
  requests: ModerationRequest[];
  set(s: Partial<ModerationSwitches>): void;
  reset(): void;
  close(): Promise<void>;
}

export interface ModerationOptions {
  port?: number;
  /** Required credential: Bearer for /v1/moderations, Ocp-Apim-Subscription-Key for Azure, Bearer for the webhook. */
  apiKey?: string;
  /** Trigger word -> OpenAI category (default: "attack" -> violence, "slur" -> hate, "explicit" -> sexual, "hurtmyself" -> self-harm). */
  triggers?: Record<string, string>;
}

const DEFAULT_TRIGGERS: Record<string, string> = { attack: "violence", slur: "hate", explicit: "sexual", hurtmyself: "self-harm" };

/** The OpenAI categories a text triggers. */
function triggered(text: string, triggers: Record<string, string>): Set<string> {
  const out = new Set<string>();
  const words = text.toLowerCase().split(/[^\p{L}\p{N}]+/u);
  for (const w of words) if (triggers[w]) out.add(triggers[w]);
  return out;
}

export async function startModerationMock(opts: ModerationOptions = {}): Promise<ModerationMock> {
  const triggers = opts.triggers ?? DEFAULT_TRIGGERS;
  const defaults: ModerationSwitches = { delayMs: 0, errorStatus: 0, garbage: false };
  let sw = { ...defaults };
  const requests: ModerationRequest[] = [];

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://x");
      let body: any = null;
      try { body = JSON.parse(Buffer.concat(chunks).toString()); } catch { /* answered below */ }
      requests.push({ path: url.pathname + url.search, headers: req.headers, body });
      const send = (status: number, v: unknown) => {
        const out = typeof v === "string" ? v : JSON.stringify(v);
        const go = () => {
          if (res.destroyed) return;
          res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(out) });
          res.end(out);
        };
        if (sw.delayMs > 0) setTimeout(go, sw.delayMs);
        else go();
      };
      const isAzure = url.pathname === "/contentsafety/text:analyze";
      const azureError = (status: number, code: string, message: string) => send(status, { error: { code, message } });
      const openaiError = (status: number, message: string) => send(status, { error: { message, type: "invalid_request_error", param: null, code: null } });
      if (sw.errorStatus) return isAzure ? azureError(sw.errorStatus, "InternalServerError", "mock error") : openaiError(sw.errorStatus, "mock error");
      if (sw.garbage) return send(200, "<html>not json</html>");
      if (req.method !== "POST") return openaiError(405, "POST only");

      if (url.pathname === "/v1/moderations") {
        if (opts.apiKey && req.headers.authorization !== `Bearer ${opts.apiKey}`) return openaiError(401, "Incorrect API key provided");
        const input = body?.input;
        const texts = typeof input === "string" ? [input] : Array.isArray(input) && input.every((t) => typeof t === "string") ? input : null;
        if (!texts || texts.length === 0) return openaiError(400, "'input' is required: a string or an array of strings");
        const results = texts.map((t: string) => {
          const hit = triggered(t, triggers);
          const categories: Record<string, boolean> = {};
          const scores: Record<string, number> = {};
          const types: Record<string, string[]> = {};
          for (const c of OPENAI_CATEGORIES) {
            categories[c] = hit.has(c);
            scores[c] = hit.has(c) ? 0.93 : 0.0004;
            types[c] = ["text"];
          }
          return { flagged: hit.size > 0, categories, category_scores: scores, category_applied_input_types: types };
        });
        return send(200, { id: `modr-${requests.length}`, model: body.model ?? "omni-moderation-latest", results });
      }

      if (isAzure) {
        if (url.searchParams.get("api-version") !== "2024-09-01") return azureError(404, "InvalidApiVersion", "unsupported api-version");
        if (opts.apiKey && req.headers["ocp-apim-subscription-key"] !== opts.apiKey) return azureError(401, "401", "Access denied due to invalid subscription key");
        if (typeof body?.text !== "string") return azureError(400, "InvalidRequestBody", "text is required");
        if (body.text.length > 10000) return azureError(400, "InvalidRequestBody", "text is longer than 10000 characters");
        const asked: string[] = Array.isArray(body.categories) && body.categories.length ? body.categories : Object.values(AZURE_OF);
        const hit = triggered(body.text, triggers);
        const flagged = new Set([...hit].map((c) => AZURE_OF[c]).filter(Boolean));
        const categoriesAnalysis = asked.map((category) => ({ category, severity: flagged.has(category) ? 6 : 0 }));
        return send(200, { blocklistsMatch: [], categoriesAnalysis });
      }

      if (url.pathname === "/moderate") {
        if (opts.apiKey && req.headers.authorization !== `Bearer ${opts.apiKey}`) return send(401, { error: "unauthorized" });
        if (!Array.isArray(body?.texts)) return send(400, { error: "texts is required" });
        const hit = new Set<string>();
        for (const t of body.texts) for (const c of triggered(String(t), triggers)) hit.add(c);
        return send(200, { flagged: hit.size > 0, categories: [...hit] });
      }
      return openaiError(404, "unknown path");
    });
  });
  await new Promise<void>((r) => server.listen(opts.port ?? 0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    set: (s) => { sw = { ...sw, ...s }; },
    reset: () => { sw = { ...defaults }; requests.length = 0; },
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
