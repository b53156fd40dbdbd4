// Usage accuracy end to end: the official `openai` and `@anthropic-ai/sdk` clients through the
// local gateway (ai-ratelimit + ai-proxy, built .wasm) to small fake providers that stream as
// their APIs do — one that honours the output limit, one that ignores it and would go on for
// thousands of tokens, one that never sends usage. What the client is shown and what the usage
// record says are checked against what each provider actually produced.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import http from "node:http";
import type { AddressInfo } from "node:net";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { Host } from "../../host/index.js";
import { startGateway, type Gateway } from "../../host/server.js";
import type { Stream } from "../../host/stream.js";

/** What a fake provider did for one request. */
interface Served {
  body: any;
  produced: number; // text pieces written
  closedEarly: boolean; // the connection closed before the provider finished
  finished: boolean;
}

interface Fake {
  url: string;
  served: Served[];
  close(): Promise<void>;
}

// Each text piece is 8 characters: 2 tokens by the gateway's estimate, and counted as 2 by the
// fakes, so the provider's count and the gateway's estimate agree.
const PIECE = "abc def ";
const PIECE_TOKENS = 2;

/**
 * A streaming provider. It writes one piece every 2 ms until it has written `total` tokens, or
 * the limit the request asked for when it `honours` it; it stops as soon as its connection closes
 * (as real providers stop generating when the client goes away).
 */
async function fakeProvider(format: "openai" | "anthropic", opts: { total: number; honours: boolean; usage: boolean }): Promise<Fake> {
  const served: Served[] = [];
  const server = http.createServer((req, res) => {
    let raw = "";
    req.on("data", (c) => (raw += c));
    req.on("end", () => {
      const body = JSON.parse(raw);
      const s: Served = { body, produced: 0, closedEarly: false, finished: false };
      served.push(s);
      const limit = format === "openai" ? body.max_completion_tokens ?? body.max_tokens : body.max_tokens;
      const total = opts.honours && limit ? Math.min(opts.total, limit) : opts.total;
      const pieces = Math.floor(total / PIECE_TOKENS);
      res.on("close", () => {
        if (!s.finished) s.closedEarly = true;
      });
      res.writeHead(200, { "content-type": "text/event-stream" });
      const ev = (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
      const chunk = (delta: object, finish: string | null = null) =>
        `data: ${JSON.stringify({ id: "chatcmpl-f", object: "chat.completion.chunk", created: 1, model: "fake-model", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
      if (format === "anthropic") {
        res.write(ev("message_start", { message: { id: "msg_f", type: "message", role: "assistant", model: "fake-model", content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 1234, output_tokens: 1 } } }));
        res.write(ev("content_block_start", { index: 0, content_block: { type: "text", text: "" } }));
      } else res.write(chunk({ role: "assistant", content: "" }));
      const finish = () => {
        const stop = total < opts.total;
        const out = s.produced * PIECE_TOKENS;
        if (format === "anthropic") {
          res.write(ev("content_block_stop", { index: 0 }));
          res.write(ev("message_delta", { delta: { stop_reason: stop ? "max_tokens" : "end_turn", stop_sequence: null }, usage: { output_tokens: out } }));
          res.write(ev("message_stop", {}));
        } else {
          res.write(chunk({}, stop ? "length" : "stop"));
          if (opts.usage) res.write(`data: ${JSON.stringify({ id: "chatcmpl-f", object: "chat.completion.chunk", created: 1, model: "fake-model", choices: [], usage: { prompt_tokens: 77, completion_tokens: out, total_tokens: 77 + out } })}\n\n`);
          res.write("data: [DONE]\n\n");
        }
        s.finished = true;
        res.end();
      };
      const next = () => {
        if (s.closedEarly) return; // the gateway closed the connection: stop generating
        if (s.produced >= pieces) return finish();
        s.produced++;
        res.write(format === "anthropic" ? ev("content_block_delta", { index: 0, delta: { type: "text_delta", text: PIECE } }) : chunk({ content: PIECE }));
        setTimeout(next, 2);
      };
      next();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    served,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

interface Logged {
  prompt: number;
  completion: number;
  source: string | undefined;
  cut: string | undefined;
  reset: string | null;
}

let fakes: Record<string, Fake>;
let gateway: Gateway;
const log: Logged[] = [];

// A completion-token rule with stream_margin: about 100 tokens for a stream (50 reserved for a
// request without max_tokens, what the window has left, and the margin).
// Each test has its own counter (x-budget-key), so one test's usage leaves another's budget alone.
const RATELIMIT = { rules: [{ name: "tight", key: ["header:x-budget-key"], limit: 100, window: "1m", strategy: "completion_tokens", stream_margin: 5 }], default_max_tokens: 50 };

beforeAll(async () => {
  fakes = {
    honest: await fakeProvider("openai", { total: 4000, honours: true, usage: true }),
    runaway: await fakeProvider("openai", { total: 4000, honours: false, usage: true }),
    silent: await fakeProvider("openai", { total: 40, honours: true, usage: false }),
    anthropic: await fakeProvider("anthropic", { total: 4000, honours: true, usage: true }),
    anthropicRunaway: await fakeProvider("anthropic", { total: 4000, honours: false, usage: true }),
  };
  const instances = [
    { name: "honest", provider: "openai", api_key: "k", endpoint: fakes.honest.url + "/v1", models: ["honest"] },
    { name: "runaway", provider: "openai", api_key: "k", endpoint: fakes.runaway.url + "/v1", models: ["runaway"] },
    { name: "silent", provider: "openai-compatible", api_key: "k", endpoint: fakes.silent.url + "/v1", models: ["silent"] },
    { name: "anthropic", provider: "anthropic", api_key: "k", endpoint: fakes.anthropic.url, models: ["claude-honest"] },
    { name: "anthropicRunaway", provider: "anthropic", api_key: "k", endpoint: fakes.anthropicRunaway.url, models: ["claude-runaway"] },
  ];
  const host = await Host.create({
    filters: [
      { name: "ai-ratelimit", wasm: "build/ai-ratelimit.wasm", configuration: RATELIMIT, allowOnHeadersStopIteration: true },
      { name: "ai-proxy", wasm: "build/ai-proxy.wasm", configuration: { instances }, allowOnHeadersStopIteration: true },
    ],
  });
  gateway = await startGateway({
    host,
    clusterHeader: "x-sluice-cluster",
    clusters: Object.fromEntries(instances.map((i) => [i.name, { url: fakes[i.name].url }])),
    accessLog: (s: Stream) => {
      const get = (k: string) => s.getFilterState(`sluice.${k}`);
      log.push({
        prompt: Number(get("prompt_tokens")), completion: Number(get("completion_tokens")), source: get("usage_source"),
        cut: get("stream_cut"), reset: s.reset,
      });
    },
  });
});

afterAll(async () => {
  await gateway?.close();
  for (const f of Object.values(fakes ?? {})) await f.close();
});

let counter = 0;
const openai = () => new OpenAI({ apiKey: "client-key", baseURL: `${gateway.url}/v1`, maxRetries: 0, defaultHeaders: { "x-budget-key": String(++counter) } });
const anthropic = () => new Anthropic({ apiKey: "client-key", baseURL: gateway.url, maxRetries: 0, defaultHeaders: { "x-budget-key": String(++counter) } });

/** The access log line of the request that just finished (the log is written when it completes). */
async function lastLog(n: number): Promise<Logged> {
  for (let i = 0; i < 200 && log.length < n; i++) await new Promise((r) => setTimeout(r, 5));
  expect(log.length).toBe(n);
  return log[n - 1];
}

/** Waits for something the servers do after the client is done (a closed connection seen). */
async function settled(cond: () => boolean) {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  return cond();
}

/** Every chunk an OpenAI stream yields, and the error it ended with (if any). */
async function readOpenAI(stream: AsyncIterable<OpenAI.ChatCompletionChunk>) {
  const chunks: OpenAI.ChatCompletionChunk[] = [];
  let error: unknown = null;
  try {
    for await (const c of stream) chunks.push(c);
  } catch (e) {
    error = e;
  }
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
  const finish = chunks.map((c) => c.choices[0]?.finish_reason).filter(Boolean).at(-1);
  return { chunks, error, text, finish, usage: chunks.at(-1)?.usage ?? null };
}

describe("usage end to end, official clients through the local gateway", () => {
  it("an OpenAI client that asked for usage gets a usage chunk when the provider sends none", async () => {
    const before = log.length;
    const stream = await openai().chat.completions.create({ model: "silent", max_tokens: 40, stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "Say something" }] });
    const r = await readOpenAI(stream);
    expect(r.error).toBeNull();
    expect(r.text).toBe(PIECE.repeat(20));
    expect(r.usage).not.toBeNull();
    expect(r.usage!.completion_tokens).toBe(Math.ceil(r.text.length / 4));
    const rec = await lastLog(before + 1);
    expect(rec).toMatchObject({ prompt: r.usage!.prompt_tokens, completion: r.usage!.completion_tokens, source: "estimate" });
  });

  it("a provider that honours the limit the gateway asked for stops at the budget: a clean stream, its own usage", async () => {
    const before = log.length;
    const stream = await openai().chat.completions.create({ model: "honest", stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "Write a lot" }] });
    const r = await readOpenAI(stream);
    expect(r.error).toBeNull();
    const served = fakes.honest.served.at(-1)!;
    const budget = served.body.max_completion_tokens;
    expect(budget).toBeGreaterThan(50);
    expect(budget).toBeLessThan(110);
    expect(served.finished).toBe(true);
    expect(r.finish).toBe("length");
    expect(r.usage!.completion_tokens).toBe(served.produced * PIECE_TOKENS);
    expect(r.usage!.completion_tokens).toBeLessThanOrEqual(budget);
    expect(await lastLog(before + 1)).toMatchObject({ completion: served.produced * PIECE_TOKENS, source: "provider" });
  });

  it("a provider that ignores the limit is stopped at the cut and charged what it produced, not the 4,000 tokens it would have gone on to", async () => {
    const before = log.length;
    const stream = await openai().chat.completions.create({ model: "runaway", stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "Write a lot" }] });
    const r = await readOpenAI(stream);
    // The client got a complete stream: the text, finish_reason length, the usage chunk (and
    // [DONE], which the SDK consumes) ...
    expect(r.finish).toBe("length");
    expect(r.usage).not.toBeNull();
    expect(r.usage!.completion_tokens).toBe(Math.ceil(r.text.length / 4));
    // ... and then the reset that stopped the provider: the SDK reads on after [DONE] until the
    // connection ends, so it reports the connection error after the last chunk.
    expect(r.error).not.toBeNull();
    const served = fakes.runaway.served.at(-1)!;
    expect(await settled(() => served.closedEarly)).toBe(true);
    expect(served.finished).toBe(false);
    const producedTokens = served.produced * PIECE_TOKENS;
    expect(producedTokens).toBeLessThan(1000);
    const rec = await lastLog(before + 1);
    expect(rec.reset).toBe("wasm_close_stream");
    expect(rec.cut).toBe("budget");
    // Charged: what was delivered and what was in flight when the provider was stopped, never
    // more than it produced.
    expect(rec.completion).toBeGreaterThanOrEqual(r.usage!.completion_tokens);
    expect(rec.completion).toBeLessThanOrEqual(producedTokens);
  });

  it("an Anthropic client under a budget: finalMessage() has the provider's input tokens and its output", async () => {
    const before = log.length;
    const stream = anthropic().messages.stream({ model: "claude-honest", max_tokens: 60, messages: [{ role: "user", content: "Write a lot" }] });
    let startInput = -1;
    stream.on("streamEvent", (e) => {
      if (e.type === "message_start") startInput = e.message.usage.input_tokens;
    });
    const final = await stream.finalMessage();
    const served = fakes.anthropic.served.at(-1)!;
    expect(served.body.max_tokens).toBe(60);
    expect(startInput).toBe(1234);
    expect(final.stop_reason).toBe("max_tokens");
    expect(final.usage.input_tokens).toBe(1234);
    expect(final.usage.output_tokens).toBe(served.produced * PIECE_TOKENS);
    expect(final.usage.output_tokens).toBe(60);
    expect(await lastLog(before + 1)).toMatchObject({ prompt: 1234, completion: 60, source: "provider" });
  });

  it("an Anthropic client whose provider ignores the limit: the cut's message_delta has the input and output tokens", async () => {
    const before = log.length;
    const stream = anthropic().messages.stream({ model: "claude-runaway", max_tokens: 60, messages: [{ role: "user", content: "Write a lot" }] });
    const events: Anthropic.MessageStreamEvent[] = [];
    let error: unknown = null;
    try {
      for await (const e of stream) events.push(e);
    } catch (e) {
      error = e;
    }
    const start = events.find((e) => e.type === "message_start") as Anthropic.RawMessageStartEvent;
    expect(start.message.usage.input_tokens).toBe(1234);
    const delta = events.filter((e) => e.type === "message_delta").at(-1) as Anthropic.RawMessageDeltaEvent;
    expect(delta.delta.stop_reason).toBe("max_tokens");
    const text = events.map((e) => (e.type === "content_block_delta" && e.delta.type === "text_delta" ? e.delta.text : "")).join("");
    expect(delta.usage.output_tokens).toBe(Math.ceil(text.length / 4));
    expect(delta.usage.input_tokens).toBe(1234);
    expect(events.at(-1)!.type).toBe("message_stop");
    expect(error).not.toBeNull(); // the reset after message_stop (see above)
    const served = fakes.anthropicRunaway.served.at(-1)!;
    expect(await settled(() => served.closedEarly)).toBe(true);
    const rec = await lastLog(before + 1);
    expect(rec.prompt).toBe(1234);
    expect(rec.completion).toBeGreaterThanOrEqual(delta.usage.output_tokens!);
    expect(rec.completion).toBeLessThanOrEqual(served.produced * PIECE_TOKENS);
  });
});
