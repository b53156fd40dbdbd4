// Shared by the ai-guard tests: a host with ai-guard alone, and one request sent through it.
import { Host } from "../host/index.js";

export const WASM = process.env.AI_GUARD_WASM ?? "build/ai-guard.wasm";

/** Every built-in detector with one action. */
export const ALL = (action: string) => ({
  email: action, phone: action, card: action, iban: action, ssn: action, ip: action, credential: action,
});

export async function guard(configuration: object | string, workers = 1): Promise<Host> {
  return Host.create({ filters: [{ name: "ai-guard", wasm: WASM, configuration, allowOnHeadersStopIteration: true, workers }] });
}

export function send(h: Host, path: string, body: object | string | Buffer, extra: Record<string, string> = {}, state: Record<string, string> = {}) {
  const s = h.newStream();
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
  // Filter state other filters (key-auth, ai-router) would have set before ai-guard runs.
  for (const [k, v] of Object.entries(state)) s.filterState.set(`wasm.${k}`, Buffer.from(v));
  const onHeaders = s.callOnRequestHeaders({ ":method": "POST", ":path": path, ":authority": "gw", "content-type": "application/json", "content-length": String(bytes.length), ...extra }, false);
  const onBody = s.callOnRequestBody(bytes, true);
  const reply = s.getSentLocalResponse();
  return {
    s,
    onHeaders,
    onBody,
    reply,
    /** The body that went on toward the provider, parsed. */
    upstream: () => JSON.parse(s.upstream.body.toString()),
    verdict: s.getFilterState("sluice.guard_verdict"),
    categories: s.getFilterState("sluice.guard_categories"),
  };
}

/** One chat request with one user message. */
export const chat = (text: string) => ({ model: "m", messages: [{ role: "user", content: text }] });

/** What the guard does to one text in a chat request: the text sent on, or "BLOCKED". */
export function through(h: Host, text: string): string {
  const r = send(h, "/v1/chat/completions", chat(text));
  if (r.reply) return "BLOCKED";
  return r.upstream().messages[0].content;
}
