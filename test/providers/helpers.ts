// Drivers shared by the provider tests: one stream through build/ai-proxy.wasm, and readers for
// what came out (OpenAI chunks, Anthropic events, the usage record).
import { afterEach, expect } from "vitest";
import { Host } from "../../host/index.js";

export type Pairs = [string, string][];

/**
 * A maker of ai-proxy hosts (build/ai-proxy.wasm, `config` unless another is given, the clock at
 * `nowS` seconds) whose logs are checked after each test: nothing a provider sends may trap the VM
 * (a trap fails it, and Envoy logs it), so a log line matching `traps` fails the test.
 */
export function providerHosts(config: object, nowS: number, traps = /failed: Uncaught|abort/i) {
  const hosts: Host[] = [];
  afterEach(() => {
    for (const h of hosts) expect(h.getLogEntries().filter((e) => traps.test(e.message))).toEqual([]);
  });
  return async (configuration: object = config): Promise<Host> => {
    const h = await Host.create({
      filters: [{ name: "ai-proxy", wasm: "build/ai-proxy.wasm", configuration, allowOnHeadersStopIteration: true }],
      clock: () => BigInt(nowS) * 1_000_000_000n,
    });
    hosts.push(h);
    return h;
  };
}
export type S = ReturnType<Host["newStream"]>;

export function header(pairs: Pairs | null | undefined, name: string): string | undefined {
  return (pairs ?? []).find(([k]) => k === name)?.[1];
}

export function send(h: Host, body: unknown, path = "/v1/chat/completions", extra: Record<string, string> = {}): S {
  const s = h.newStream();
  s.callOnRequestHeaders({
    ":method": "POST", ":path": path, ":authority": "gw", "content-type": "application/json",
    authorization: "Bearer client-key", ...extra,
  }, false);
  s.callOnRequestBody(typeof body === "string" ? body : JSON.stringify(body), true);
  return s;
}

export function upstream(s: S) {
  expect(s.getSentLocalResponse()).toBeNull();
  return JSON.parse(s.upstream.body.toString());
}

export function reply(s: S, status: number, contentType: string, chunks: (string | Buffer)[], extra: Record<string, string> = {}): string {
  s.callOnResponseHeaders({ ":status": String(status), "content-type": contentType, ...extra }, false);
  chunks.forEach((c, i) => s.callOnResponseBody(c, i === chunks.length - 1));
  s.completeHttpContext();
  return s.downstream.body.toString();
}

/** Local 400 (nothing reached the provider): the OpenAI error body. */
export function rejected(s: S, status = 400) {
  const r = s.getSentLocalResponse();
  expect(r).not.toBeNull();
  expect(r!.statusCode).toBe(status);
  expect(s.upstream.headers).toBeNull();
  return JSON.parse(r!.body.toString()).error;
}

export function usage(s: S) {
  const g = (k: string) => s.getFilterState(`sluice.${k}`);
  return {
    prompt: g("prompt_tokens"), completion: g("completion_tokens"), total: g("total_tokens"),
    cached: g("cached_tokens"), reasoning: g("reasoning_tokens"), source: g("usage_source"),
  };
}

/** data: payloads of an SSE text, JSON-parsed except [DONE]. */
/** The SSE events of a text, without comment-only blocks (keep-alives), which carry no event. */
function eventBlocks(text: string): string[] {
  return text.split(/\n\n/).filter((e) => e.split("\n").some((l) => l.trim() && !l.startsWith(":")));
}

export function dataOf(text: string): any[] {
  return eventBlocks(text).map((e) => {
    const d = e.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
    return d === "[DONE]" ? d : JSON.parse(d);
  });
}

export function eventsOf(text: string): { event: string; data: any }[] {
  return eventBlocks(text).map((e) => {
    const lines = e.split("\n");
    const event = lines.find((l) => l.startsWith("event:"))?.slice(6).trim() ?? "";
    const data = lines.filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
    return { event, data: JSON.parse(data) };
  });
}

/** Reassembles an OpenAI chunk stream into what a client would see (choice 0). */
export function assemble(chunks: any[]) {
  let content = "";
  let reasoning = "";
  let refusal = "";
  const tools: { id?: string; name?: string; args: string }[] = [];
  let finish: string | null = null;
  let usageChunk: any = null;
  for (const c of chunks) {
    if (c === "[DONE]") continue;
    if (c.usage) usageChunk = c.usage;
    for (const ch of c.choices ?? []) {
      const d = ch.delta ?? {};
      if (d.content) content += d.content;
      if (d.reasoning_content) reasoning += d.reasoning_content;
      if (d.refusal) refusal += d.refusal;
      for (const t of d.tool_calls ?? []) {
        tools[t.index] ??= { args: "" };
        if (t.id) tools[t.index].id = t.id;
        if (t.function?.name) tools[t.index].name = t.function.name;
        if (t.function?.arguments) tools[t.index].args += t.function.arguments;
      }
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  return { content, reasoning, refusal, tools, finish, usage: usageChunk };
}
