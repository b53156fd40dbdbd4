// HTTP plumbing of the mock providers: recording, switches, scripted steps, the SSE writer
// (delays, split writes, disconnects, hangs), one server per provider or all behind path prefixes.
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import {
  DEFAULT_SWITCHES,
  MOCK_KINDS,
  hashString,
  mulberry32,
  sleep,
  type Ctx,
  type InjectedError,
  type MockKind,
  type MockOptions,
  type Outcome,
  type ProviderModule,
  type RecordedRequest,
  type ScriptStep,
  type Switches,
} from "./common.js";
import { openai } from "./openai.js";
import { azureOpenai } from "./azure-openai.js";
import { anthropic } from "./anthropic.js";
import { gemini } from "./gemini.js";
import { deepseek } from "./deepseek.js";
import { mistral } from "./mistral.js";
import { openaiCompatible } from "./openai-compatible.js";

export const PROVIDERS: Record<MockKind, ProviderModule> = {
  openai,
  "azure-openai": azureOpenai,
  anthropic,
  gemini,
  deepseek,
  mistral,
  "openai-compatible": openaiCompatible,
};

/** Per-provider state: what tests read and steer. */
export class MockState {
  readonly requests: RecordedRequest[] = [];
  readonly queue: ScriptStep[] = [];
  switches: Switches;
  seq = 0;
  constructor(
    readonly kind: MockKind,
    readonly opts: MockOptions,
  ) {
    this.switches = { ...DEFAULT_SWITCHES, ...opts.switches };
  }
  script(next: ScriptStep | ScriptStep[]): void {
    this.queue.push(...(Array.isArray(next) ? next : [next]));
  }
  set(sw: Partial<Switches>): void {
    this.switches = { ...this.switches, ...sw };
  }
  reset(): void {
    this.switches = { ...DEFAULT_SWITCHES, ...this.opts.switches };
    this.queue.length = 0;
    this.requests.length = 0;
  }
}

// ---------- x-mock-* headers ----------

const HEADER_SWITCHES: Record<string, keyof Switches> = {
  "x-mock-first-token-delay-ms": "firstTokenDelayMs",
  "x-mock-inter-chunk-delay-ms": "interChunkDelayMs",
  "x-mock-split": "split",
  "x-mock-split-seed": "splitSeed",
  "x-mock-split-delay-ms": "splitDelayMs",
  "x-mock-disconnect-after": "disconnectAfter",
  "x-mock-rate-limit": "rateLimit",
  "x-mock-429": "rateLimit",
  "x-mock-server-error": "serverError",
  "x-mock-5xx": "serverError",
  "x-mock-hang": "hang",
  "x-mock-hang-after": "hangAfter",
  "x-mock-chunks": "chunks",
  "x-mock-keep-alive": "keepAlive",
  "x-mock-stream-error-after": "streamErrorAfter",
  "x-mock-stream-error-status": "streamErrorStatus",
};

/** Switches named by `x-mock-*` request headers. `x-mock-split: 7` splits with seed 7. */
export function switchesFromHeaders(headers: http.IncomingHttpHeaders): Partial<Switches> {
  const out: Partial<Switches> = {};
  for (const [name, key] of Object.entries(HEADER_SWITCHES)) {
    const v = headers[name];
    if (typeof v !== "string") continue;
    const s = v.trim().toLowerCase();
    if (key === "split" || key === "hang") {
      const on = s !== "0" && s !== "false" && s !== "off";
      (out as any)[key] = on;
      if (key === "split" && /^\d+$/.test(s) && s !== "0" && s !== "1") out.splitSeed = Number(s);
    } else if (s === "" || s === "null" || s === "off") {
      (out as any)[key] = key === "keepAlive" ? 0 : null;
    } else if (/^-?\d+$/.test(s)) {
      (out as any)[key] = Number(s);
    }
  }
  return out;
}

function flatHeaders(h: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(", ") : v;
  return out;
}

// ---------- writing ----------

/** Cut positions for one write: random sizes, plus a cut inside the first multi-byte UTF-8 character. */
export function splitPositions(buf: Uint8Array, rnd: () => number): number[] {
  const cuts = new Set<number>();
  const cont = buf.findIndex((b) => (b & 0xc0) === 0x80);
  if (cont > 0) cuts.add(cont);
  const max = Math.max(1, Math.ceil(buf.length / 3));
  let pos = 0;
  while (true) {
    pos += 1 + Math.floor(rnd() * max);
    if (pos >= buf.length) break;
    cuts.add(pos);
  }
  return [...cuts].filter((c) => c > 0 && c < buf.length).sort((a, b) => a - b);
}

class Writer {
  private rnd: () => number;
  constructor(
    private res: http.ServerResponse,
    private sw: Switches,
    requestNo: number,
  ) {
    this.rnd = mulberry32((sw.splitSeed * 2654435761 + requestNo) >>> 0);
  }
  get dead(): boolean {
    return this.res.destroyed || this.res.socket === null || this.res.socket.destroyed;
  }
  async write(data: string | Buffer): Promise<void> {
    const buf = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    if (!this.sw.split || buf.length < 2) {
      this.res.write(buf);
      return;
    }
    let prev = 0;
    for (const cut of [...splitPositions(buf, this.rnd), buf.length]) {
      if (this.dead) return;
      this.res.write(buf.subarray(prev, cut));
      prev = cut;
      if (cut < buf.length && this.sw.splitDelayMs > 0) await sleep(this.sw.splitDelayMs);
    }
  }
}

/** Let what was written reach the wire, then drop the connection (no final chunk: the client sees a cut stream). */
async function flushThenDestroy(res: http.ServerResponse): Promise<void> {
  const socket = res.socket;
  if (!socket) return;
  for (let i = 0; i < 200 && socket.writableLength > 0 && !socket.destroyed; i++) await sleep(1);
  await sleep(5);
  socket.destroy();
}

function waitClose(res: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    if (res.destroyed || res.socket?.destroyed) return resolve();
    res.on("close", () => resolve());
  });
}

async function execute(res: http.ServerResponse, outcome: Outcome, sw: Switches, requestNo: number): Promise<void> {
  res.socket?.setNoDelay(true);
  if (sw.hang) return waitClose(res);
  const w = new Writer(res, sw, requestNo);
  if (outcome.type !== "sse") {
    const body =
      outcome.type === "json"
        ? Buffer.from(outcome.pretty ? JSON.stringify(outcome.body, null, 2) : JSON.stringify(outcome.body), "utf8")
        : Buffer.from(outcome.body);
    const headers: Record<string, string> = {
      ...(outcome.type === "json" ? { "content-type": "application/json" } : {}),
      ...outcome.headers,
      "content-length": String(body.length),
    };
    if (sw.firstTokenDelayMs > 0) await sleep(sw.firstTokenDelayMs);
    if (w.dead) return;
    res.writeHead(outcome.status, headers);
    if (sw.disconnectAfter !== null) {
      res.write(body.subarray(0, Math.floor(body.length / 2)));
      return flushThenDestroy(res);
    }
    await w.write(body);
    res.end();
    return;
  }

  res.writeHead(outcome.status ?? 200, { "content-type": "text/event-stream", ...outcome.headers });
  res.flushHeaders();
  const comment = outcome.comment ?? ": keep-alive";
  for (let i = 0; i < sw.keepAlive; i++) {
    if (w.dead) return;
    await w.write(`${comment}\n\n`);
    if (sw.firstTokenDelayMs > 0) await sleep(Math.floor(sw.firstTokenDelayMs / (sw.keepAlive + 1)));
  }
  const rest = sw.firstTokenDelayMs - (sw.keepAlive > 0 ? Math.floor(sw.firstTokenDelayMs / (sw.keepAlive + 1)) * sw.keepAlive : 0);
  if (rest > 0) await sleep(rest);
  for (let i = 0; i < outcome.frames.length; i++) {
    if (w.dead) return;
    if (sw.disconnectAfter !== null && i >= sw.disconnectAfter) return flushThenDestroy(res);
    if (sw.hangAfter !== null && i >= sw.hangAfter) return waitClose(res);
    if (sw.streamErrorAfter !== null && i >= sw.streamErrorAfter && outcome.errorFrame) {
      await w.write(outcome.errorFrame(sw.streamErrorStatus));
      res.end();
      return;
    }
    if (i > 0 && sw.interChunkDelayMs > 0) await sleep(sw.interChunkDelayMs);
    await w.write(outcome.frames[i]);
  }
  if (sw.hangAfter !== null && sw.hangAfter >= outcome.frames.length) return waitClose(res);
  if (!w.dead) res.end();
}

// ---------- one provider's request handling ----------

function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        resolve(null);
        req.destroy();
        return;
      }
      parts.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(parts)));
    req.on("error", reject);
  });
}

export class ProviderHandler {
  readonly state: MockState;
  constructor(
    readonly module: ProviderModule,
    opts: MockOptions = {},
  ) {
    this.state = new MockState(module.kind, opts);
  }

  async handle(req: http.IncomingMessage, res: http.ServerResponse, path: string, query: URLSearchParams): Promise<void> {
    const state = this.state;
    const opts = state.opts;
    const body = await readBody(req, opts.maxBodyBytes ?? 64 * 1024 * 1024);
    if (body === null) {
      res.writeHead(413, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: "Request too large" } }));
      return;
    }
    const rawBody = body.toString("utf8");
    let json: any = undefined;
    let parseError = false;
    if (rawBody.trim() !== "") {
      try {
        json = JSON.parse(rawBody);
      } catch {
        parseError = true;
      }
    }
    const requestNo = ++state.seq;
    const clock = opts.clock ?? Date.now;
    // Only the latest maxRecorded are kept, trimmed in place (tests hold the same array).
    const keep = state.opts.maxRecorded ?? 1000;
    if (state.requests.length >= keep) state.requests.splice(0, state.requests.length - keep + 1);
    state.requests.push({
      provider: state.kind,
      method: req.method ?? "GET",
      path,
      query: Object.fromEntries(query),
      headers: flatHeaders(req.headers),
      body: json,
      rawBody,
      time: clock(),
    });
    const headerSwitches = switchesFromHeaders(req.headers);
    let began = false;
    const ctx: Ctx = {
      kind: state.kind,
      method: req.method ?? "GET",
      path,
      query,
      headers: req.headers,
      rawBody,
      json,
      parseError,
      opts,
      now: clock,
      id: (label, length, alphabet) => hashString(`${opts.seed ?? "sluice"}:${state.kind}:${requestNo}:${label}`, length, alphabet),
      switches: { ...state.switches, ...headerSwitches },
      begin: () => {
        if (began) throw new Error("begin() called twice");
        began = true;
        const step = state.queue.shift();
        const sw: Switches = { ...state.switches, ...step?.switches, ...headerSwitches };
        if (step?.streamError) {
          sw.streamErrorAfter = step.streamError.afterEvents;
          if (step.streamError.status) sw.streamErrorStatus = step.streamError.status;
        }
        ctx.switches = sw;
        let injected: InjectedError | null = null;
        if (step?.error) injected = { ...step.error };
        else if (sw.rateLimit !== null) injected = { status: 429, retryAfter: sw.rateLimit };
        else if (sw.serverError !== null) injected = { status: sw.serverError };
        return { step, switches: sw, injected };
      },
    };
    let outcome: Outcome;
    try {
      outcome = await this.module.handle(ctx);
    } catch (e) {
      outcome = { type: "json", status: 500, body: { error: { message: `mock ${state.kind} failed: ${(e as Error).message}` } } };
    }
    await execute(res, outcome, ctx.switches, requestNo);
  }
}

// ---------- servers ----------

export interface MockServer {
  kind: MockKind;
  url: string;
  port: number;
  requests: RecordedRequest[];
  /** Queue what the next request(s) answer. */
  script(next: ScriptStep | ScriptStep[]): void;
  /** Change switches until changed again or reset(). */
  set(switches: Partial<Switches>): void;
  /** Default switches, empty script queue, no recorded requests. */
  reset(): void;
  lastRequest(): RecordedRequest | undefined;
  close(): Promise<void>;
}

function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function trackSockets(server: http.Server): () => Promise<void> {
  const sockets = new Set<Socket>();
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  return () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
      server.closeAllConnections?.();
    });
}

function handle(state: MockState, port: number, host: string, close: () => Promise<void>, prefix = ""): MockServer {
  return {
    kind: state.kind,
    url: `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${port}${prefix}`,
    port,
    requests: state.requests,
    script: (next) => state.script(next),
    set: (sw) => state.set(sw),
    reset: () => state.reset(),
    lastRequest: () => state.requests[state.requests.length - 1],
    close,
  };
}

/** Start one mock provider on its own port (0 = any free port). */
export async function startMock(kind: MockKind, opts: MockOptions = {}): Promise<MockServer> {
  const provider = new ProviderHandler(PROVIDERS[kind], opts);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://mock");
    provider.handle(req, res, url.pathname, url.searchParams).catch(() => res.destroy());
  });
  const close = trackSockets(server);
  const host = opts.host ?? "127.0.0.1";
  const port = await listen(server, opts.port ?? 0, host);
  return handle(provider.state, port, host, close);
}

export type AllMocks = Record<MockKind, MockServer> & { close(): Promise<void> };

/** Start every provider, each on its own port. `opts[kind]` applies to that provider. */
export async function startAllMocks(opts: Partial<Record<MockKind, MockOptions>> & { all?: MockOptions } = {}): Promise<AllMocks> {
  const servers = await Promise.all(MOCK_KINDS.map((k) => startMock(k, { ...opts.all, ...opts[k] })));
  const out = Object.fromEntries(servers.map((s) => [s.kind, s])) as Record<MockKind, MockServer>;
  return Object.assign(out, { close: async () => void (await Promise.all(servers.map((s) => s.close()))) });
}

/**
 * All providers behind one port, each under `/<kind>` (e.g. /anthropic/v1/messages, /azure-openai/openai/deployments/x/chat/completions),
 * with a control API under `/__mock/<kind>/…`: GET requests, POST script (step or array), POST switches, POST reset.
 */
export async function startMockRouter(opts: Partial<Record<MockKind, MockOptions>> & { all?: MockOptions; port?: number; host?: string } = {}): Promise<{
  url: string;
  port: number;
  mocks: Record<MockKind, MockServer>;
  close(): Promise<void>;
}> {
  const handlers = new Map<string, ProviderHandler>(MOCK_KINDS.map((k) => [k, new ProviderHandler(PROVIDERS[k], { ...opts.all, ...opts[k] })]));
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://mock");
    const segs = url.pathname.split("/");
    if (segs[1] === "__mock") {
      control(req, res, handlers.get(segs[2] ?? ""), segs[3] ?? "").catch(() => res.destroy());
      return;
    }
    const h = handlers.get(segs[1] ?? "");
    if (!h) {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: `no mock provider at /${segs[1] ?? ""}; use one of ${MOCK_KINDS.map((k) => `/${k}`).join(", ")}` } }));
      return;
    }
    const rest = "/" + segs.slice(2).join("/");
    h.handle(req, res, rest, url.searchParams).catch(() => res.destroy());
  });
  const close = trackSockets(server);
  const host = opts.host ?? "127.0.0.1";
  const port = await listen(server, opts.port ?? 0, host);
  const mocks = Object.fromEntries([...handlers].map(([k, h]) => [k, handle(h.state, port, host, close, `/${k}`)])) as Record<MockKind, MockServer>;
  return { url: `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`, port, mocks, close };
}

async function control(req: http.IncomingMessage, res: http.ServerResponse, h: ProviderHandler | undefined, action: string): Promise<void> {
  const send = (status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  if (!h) return send(404, { error: "unknown provider" });
  const raw = (await readBody(req, 1 << 20))?.toString("utf8") ?? "";
  let body: any;
  try {
    body = raw ? JSON.parse(raw) : undefined;
  } catch {
    return send(400, { error: "body must be JSON" });
  }
  if (req.method === "GET" && action === "requests") return send(200, h.state.requests);
  if (req.method === "POST" && action === "script") {
    h.state.script(body);
    return send(200, { queued: h.state.queue.length });
  }
  if (req.method === "POST" && action === "switches") {
    h.state.set(body ?? {});
    return send(200, h.state.switches);
  }
  if (req.method === "POST" && action === "reset") {
    h.state.reset();
    return send(200, { ok: true });
  }
  send(404, { error: "use GET requests, POST script, POST switches, POST reset" });
}
