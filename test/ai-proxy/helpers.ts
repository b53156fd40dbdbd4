// Shared drivers for ai-proxy tests: one stream through build/ai-proxy.wasm, from the client's
// request to the provider's answer.
import { expect } from "vitest";
import { accumulateResponse } from "openai/lib/responses/ResponseAccumulator";
import { Host } from "../../host/index.js";
import { AI_PROXY_MAX_BODY, BUFFER_HEADROOM } from "../../cli/render.js";

/** cli/render.ts streamBufferLimit for the default ai-proxy caps. */
export const RENDERED_STREAM_BUFFER_LIMIT = AI_PROXY_MAX_BODY + BUFFER_HEADROOM;

export const WASM = "build/ai-proxy.wasm";

export type Pairs = [string, string][];

/**
 * ai-proxy through the host, with the stream buffer limit the rendered envoy.yaml sets (the route's
 * request_body_buffer_limit, 11 MiB by default; Envoy's own default would be 1 MiB), so bodies up
 * to ai-proxy's own caps reach the filter as they do in Envoy.
 */
export async function proxyHost(configuration: object, extra: Partial<Parameters<typeof Host.create>[0]> = {}) {
  return Host.create({
    filters: [{ name: "ai-proxy", wasm: WASM, configuration, allowOnHeadersStopIteration: true }],
    bufferLimitBytes: RENDERED_STREAM_BUFFER_LIMIT,
    ...extra,
  });
}

export function header(pairs: Pairs | null | undefined, name: string): string | undefined {
  return (pairs ?? []).find(([k]) => k === name)?.[1];
}

export function headers(pairs: Pairs | null | undefined, name: string): string[] {
  return (pairs ?? []).filter(([k]) => k === name).map(([, v]) => v);
}

/**
 * Sends a client request; returns the stream and what reached the provider. `filterState` is what the
 * filters before ai-proxy (key-auth, identity, ai-router) would have written, set before the request
 * reaches it: `{ key_id: "k-1" }` is `wasm.sluice.key_id`.
 */
export function send(h: Host, path: string, body: unknown, extraHeaders: Record<string, string> = {}, filterState: Record<string, string> = {}) {
  const s = h.newStream();
  for (const [k, v] of Object.entries(filterState)) s.filterState.set(`wasm.sluice.${k}`, Buffer.from(v));
  s.callOnRequestHeaders({
    ":method": "POST", ":path": path, ":authority": "gateway.local", ":scheme": "http",
    "content-type": "application/json", "accept-encoding": "gzip", authorization: "Bearer client-secret",
    ...extraHeaders,
  }, false);
  const text = typeof body === "string" ? body : JSON.stringify(body);
  s.callOnRequestBody(text, true);
  return s;
}

export function upstreamJson(s: ReturnType<Host["newStream"]>) {
  return JSON.parse(s.upstream.body.toString());
}

/** Delivers a provider answer (whole, or in the given chunks) and completes the stream. */
export function answer(s: ReturnType<Host["newStream"]>, status: number, contentType: string, chunks: (string | Buffer)[], extraHeaders: Record<string, string> = {}) {
  s.callOnResponseHeaders({ ":status": String(status), "content-type": contentType, "content-length": "123", ...extraHeaders }, false);
  chunks.forEach((c, i) => s.callOnResponseBody(c, i === chunks.length - 1));
  s.completeHttpContext();
  return s.downstream.body.toString();
}

/** Splits SSE text into the data payloads of its events. */
/** SSE blocks that are events: comment-only blocks (keep-alives) carry none, as clients read them. */
function eventBlocks(text: string): string[] {
  return text.split(/\r?\n\r?\n/).filter((e) => e.split(/\r?\n/).some((l) => l.trim() && !l.startsWith(":")));
}

export function sseData(text: string): string[] {
  return eventBlocks(text).map((e) =>
    e.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n"));
}

/** Splits SSE text into {event, data} pairs. */
export function sseEvents(text: string): { event: string; data: string }[] {
  return eventBlocks(text).map((e) => {
    const lines = e.split(/\r?\n/);
    const event = lines.find((l) => l.startsWith("event:"))?.slice(6).trim() ?? "";
    const data = lines.filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
    return { event, data };
  });
}

export function usageRecord(s: ReturnType<Host["newStream"]>) {
  const get = (k: string) => s.getFilterState(`sluice.${k}`);
  return {
    prompt: get("prompt_tokens"), completion: get("completion_tokens"), total: get("total_tokens"),
    cached: get("cached_tokens"), reasoning: get("reasoning_tokens"), source: get("usage_source"),
  };
}

/** Events of a Responses stream, each checked for its `event:` line, type and sequence number, folded by the SDK. */
export function foldResponsesStream(text: string) {
  const events = sseEvents(text).map(({ event, data }) => {
    const d = JSON.parse(data);
    expect(d.type).toBe(event);
    return d;
  });
  events.forEach((e, i) => expect(e.sequence_number).toBe(i));
  let snapshot: any;
  for (const e of events) snapshot = accumulateResponse(e, snapshot);
  return { events, types: events.map((e) => e.type), final: events[events.length - 1]?.response, snapshot };
}

