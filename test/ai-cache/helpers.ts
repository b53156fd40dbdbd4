// Drivers for ai-cache tests: ai-cache in front of ai-proxy through the host, the provider's answers
// given by hand in each provider's wire format.
import { Host } from "../../host/index.js";
import { RENDERED_STREAM_BUFFER_LIMIT } from "../ai-proxy/helpers.js";

export const PROXY = {
  instances: [
    { name: "oa", provider: "openai", api_key: "k", models: ["gpt-*"] },
    { name: "cl", provider: "anthropic", api_key: "k", models: ["claude-*"] },
    { name: "ge", provider: "gemini", api_key: "k", models: ["gemini-*"] },
  ],
  pools: [{ name: "fast", instances: ["oa"] }, { name: "smart", instances: ["oa"] }],
  cache_capture: true,
};

export type Stream = ReturnType<Host["newStream"]>;

export async function cacheChain(cache: object = {}, extra: { workers?: number; embeddings?: string } = {}) {
  return Host.create({
    filters: [
      { name: "ai-cache", wasm: "build/ai-cache.wasm", allowOnHeadersStopIteration: true, configuration: cache, workers: extra.workers ?? 1 },
      { name: "ai-proxy", wasm: "build/ai-proxy.wasm", allowOnHeadersStopIteration: true, configuration: PROXY, workers: extra.workers ?? 1 },
    ],
    bufferLimitBytes: RENDERED_STREAM_BUFFER_LIMIT,
    clusters: extra.embeddings ? { embeddings: extra.embeddings } : {},
  });
}

/** A client request through the chain; `state` is what earlier filters wrote (consumer, pool, ...). */
export async function ask(h: Host, path: string, body: unknown, opts: { headers?: Record<string, string>; state?: Record<string, string>; worker?: number } = {}) {
  const s = h.newStream({ worker: opts.worker ?? 0 });
  for (const [k, v] of Object.entries(opts.state ?? { consumer: "alice" })) s.filterState.set(`wasm.sluice.${k}`, Buffer.from(v));
  s.callOnRequestHeaders({
    ":method": "POST", ":path": path, ":authority": "gateway.local", ":scheme": "http",
    "content-type": "application/json", ...(opts.headers ?? {}),
  }, false);
  s.callOnRequestBody(JSON.stringify(body), true);
  await h.settle();
  return s;
}

/** The provider's answer, whole or in chunks, and the end of the exchange. */
export function reply(s: Stream, contentType: string, chunks: string[], status = 200) {
  s.callOnResponseHeaders({ ":status": String(status), "content-type": contentType }, false);
  chunks.forEach((c, i) => s.callOnResponseBody(c, i === chunks.length - 1));
  s.completeHttpContext();
  return s.downstream.body.toString();
}

export function header(s: Stream, name: string): string | undefined {
  const local = s.getSentLocalResponse();
  const pairs = local ? local.headers : s.downstream.headers ?? [];
  return pairs.find(([k]) => k === name)?.[1];
}

/** Answered from the cache (a local reply, no provider asked). */
export function isHit(s: Stream): boolean {
  const hit = s.getSentLocalResponse()?.headers.some(([k, v]) => k === "x-sluice-cache" && v === "hit") ?? false;
  if (!hit && s.upstream.headers === null) throw new Error("neither a hit nor sent to the provider");
  return hit;
}

/** What the client got: a local reply (a hit) or what passed the chain. */
export function got(s: Stream): { status: number; body: string } {
  const local = s.getSentLocalResponse();
  if (local) return { status: local.statusCode, body: local.body.toString() };
  return { status: Number(s.downstream.headers?.find(([k]) => k === ":status")?.[1] ?? 0), body: s.downstream.body.toString() };
}

export const openaiAnswer = (text: string, extra: object = {}) => JSON.stringify({
  id: "chatcmpl-1", object: "chat.completion", created: 1700000000, model: "gpt-4o-2024-08-06",
  choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }],
  usage: { prompt_tokens: 12, completion_tokens: 9, total_tokens: 21 }, ...extra,
});

const oaChunk = (delta: object, finish: string | null = null, usage: object | null = null) =>
  `data: ${JSON.stringify({ id: "chatcmpl-2", object: "chat.completion.chunk", created: 1700000000, model: "gpt-4o-2024-08-06", choices: usage ? [] : [{ index: 0, delta, finish_reason: finish }], ...(usage ? { usage } : {}) })}\n\n`;

/** An OpenAI stream of the given text pieces, with its usage chunk and [DONE]. */
export function openaiStream(pieces: string[], usage = { prompt_tokens: 12, completion_tokens: 9, total_tokens: 21 }): string[] {
  return [oaChunk({ role: "assistant", content: "" }), ...pieces.map((p) => oaChunk({ content: p })), oaChunk({}, "stop"), oaChunk({}, null, usage), "data: [DONE]\n\n"];
}

/** Splits SSE text into the data payloads of its events. */
export function sseData(text: string): string[] {
  return text.split(/\r?\n\r?\n/).filter((b) => b.includes("data:")).map((b) => b.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n"));
}
