// The last requests the local gateway served, for the live page's table (host/live/page.js). Each is
// a few fields of the access log's record, named one by one: never a header, a body, a query string
// or anything a filter did not put in its usage record, so a prompt or a key cannot reach the page.
// The ring holds a fixed number of records, so the gateway's memory does not grow with its traffic.
import type { Stream } from "../stream.js";

export interface RecentRequest {
  /** ms since the epoch, when the request started. */
  time: number;
  method: string;
  /** The path without its query (a key may be in it). */
  path: string;
  status: number;
  durationMs: number;
  consumer: string;
  provider: string;
  model: string;
  promptTokens: string;
  completionTokens: string;
  cost: string;
  ttftMs: string;
  cache: string;
}

/** How many the page shows. */
export const RECENT_REQUESTS = 50;
/** Longest value kept of a field (a path or a model name), so a record stays small. */
const MAX_FIELD = 200;

export class RecentRequests {
  private ring: RecentRequest[] = [];
  private next = 0;

  constructor(readonly size = RECENT_REQUESTS) {}

  add(r: RecentRequest): void {
    if (this.ring.length < this.size) this.ring.push(r);
    else this.ring[this.next] = r;
    this.next = (this.next + 1) % this.size;
  }

  /** Newest first. */
  list(): RecentRequest[] {
    const older = this.ring.slice(this.next);
    const newer = this.ring.slice(0, this.next);
    return [...older, ...newer].reverse();
  }
}

/** The record of a finished stream, as the access log would print it (`status`: the one sent downstream). */
export function recentOf(s: Stream, status: number): RecentRequest {
  const fs = (k: string) => clip(s.filterState.get(`wasm.sluice.${k}`)?.toString("utf8") ?? "");
  const headers = s.getCurrentRequestHeaders();
  const header = (n: string) => headers?.find(([k]) => k === n)?.[1] ?? "";
  const done = s.info.completeNs ?? s.info.startTimeNs;
  return {
    time: Number(s.info.startTimeNs / 1_000_000n),
    method: clip(header(":method")),
    path: clip(header(":path").split("?")[0]),
    status,
    durationMs: Number((done - s.info.startTimeNs) / 1_000_000n),
    consumer: fs("consumer"),
    provider: fs("provider"),
    model: fs("model"),
    promptTokens: fs("prompt_tokens"),
    completionTokens: fs("completion_tokens"),
    cost: fs("cost"),
    ttftMs: fs("ttft_ms"),
    cache: fs("cache"),
  };
}

function clip(v: string): string {
  return v.length > MAX_FIELD ? v.slice(0, MAX_FIELD) : v;
}
