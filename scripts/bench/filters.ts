// Filter cost, in-process through the host (issue 3 "speed", issue 8 item 1).
//
//   node --import tsx scripts/bench/filters.ts [--only a,b] [--rounds 30] [--warmup 2000]
//        [--round-ms 25] [--wasm-dir build] [--json bench-results/filters.json]
//        [--ab dirA,dirB,...]      (the cases on several builds, rounds interleaved: A/B a change)
//        [--profile-run SECONDS]   (one case, plain host only, for node --cpu-prof; see run.mjs)
//
// Each case drives whole streams through build/<filter>.wasm as Envoy would (headers, body, the
// provider's answer, on_log/on_done/on_delete). After a warm-up, R rounds of N iterations; the
// figure of a round is its mean µs per request (per chunk for streams); the table gives the median
// and p99 over rounds. Three measurements are interleaved round by round, in one process:
//   - the plain host (no instrumentation): the total;
//   - an instrumented host whose VM exports and imports are wrapped (Host option `instrument`):
//     the time inside the .wasm, i.e. between a crossing into the module and the next crossing out
//     (host function call or return), minus the measured cost of one clock read per interval;
//     "in host" = total - in wasm;
//   - V8's floor: JSON.parse of the bodies the filter reads + JSON.stringify of the bodies it
//     writes (the same bytes, captured from the filter's own output).
import { execSync } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { parse } from "yaml";
import os from "node:os";
import { dirname, join } from "node:path";
import { Host, type Stream } from "../../host/index.js";
import type { Instrument } from "../../host/host.js";
import { anthropicAnswer, anthropicStream, openaiAnswer, openaiRequest2k, openaiRequest256k, openaiRequest32k, sseDataOf } from "./fixtures.js";
import { ROOT, checkArgs, flag, opt } from "./cli.js";
import { randomUUID } from "node:crypto";
import { sealSession } from "../mocks/mcp-session.js";

process.chdir(ROOT);

// ------------------------------------------------------------------------------------------ args
const ONLY = opt("--only", "", "cases to run, comma-separated (a to v; default: all)").split(",").filter(Boolean);
const ROUNDS = Number(opt("--rounds", "30", "measured rounds per case"));
const WARMUP = Number(opt("--warmup", "2000", "iterations before measuring"));
const ROUND_MS = Number(opt("--round-ms", "25", "length of a round in ms"));
const WASM_DIR = opt("--wasm-dir", "build", "where the .wasm files are");
const JSON_OUT = opt("--json", "bench-results/filters.json", "where the results go");
const PROFILE_RUN = Number(opt("--profile-run", "0", "seconds of one case under the profiler (0: the normal benchmark; set by run.mjs --profile)")); // seconds; 0 = normal benchmark
const AB = opt("--ab", "", "several build directories, comma-separated: the same cases on each, rounds interleaved").split(",").filter(Boolean); // A/B: several wasm dirs, rounds interleaved
const AB_WASM = flag("--ab-wasm", "with --ab: time inside the modules (instrumented hosts, clock cost removed) instead of the total");
const PROFILE_WINDOW = opt("--profile-window", "bench-results/profile-window.json", "where --profile-run writes the measured window");
checkArgs(import.meta.url, "Filter cost in-process: the compiled filters through the host, case by case.");

// ----------------------------------------------------------------------------------- the filters
const aiProxy = (dir: string) => ({
  name: "ai-proxy",
  wasm: join(dir, "ai-proxy.wasm"),
  configuration: {
    instances: [
      { name: "oa", provider: "openai", api_key: "k", models: ["gpt-*"] },
      { name: "cl", provider: "anthropic", api_key: "k", models: ["claude-*"] },
    ],
  },
  allowOnHeadersStopIteration: true,
});
const keyAuth = (dir: string) => ({ name: "key-auth", wasm: join(dir, "key-auth.wasm"), configuration: { consumers: [{ name: "c", keys: ["key-1"] }] } });
// ai-guard with every built-in detector masking, a custom pattern and a keyword list: the scan's cost.
const aiGuard = (dir: string) => ({
  name: "ai-guard",
  wasm: join(dir, "ai-guard.wasm"),
  configuration: {
    detectors: { email: "mask", phone: "mask", card: "mask", iban: "mask", ssn: "mask", ip: "mask", credential: "mask" },
    custom: [{ name: "ticket", regex: "TICKET-[0-9]{4,}", action: "mask" }],
    keywords: [{ name: "codename", words: ["project falcon", "bluebird"], action: "log" }],
  },
  allowOnHeadersStopIteration: true,
});
// The same detectors on the answer too (response: mask), for the streamed answer of case (j).
const aiGuardAnswer = (dir: string) => {
  const g = aiGuard(dir);
  const both = (a: string) => ({ request: a, response: "mask" });
  g.configuration = {
    detectors: Object.fromEntries(Object.keys(g.configuration.detectors).map((k) => [k, both("mask")])) as any,
    custom: [{ name: "ticket", regex: "TICKET-[0-9]{4,}", action: both("mask") as any }],
    keywords: [{ name: "codename", words: ["project falcon", "bluebird"], action: both("log") as any }],
  };
  return g;
};
// ai-guard with only the prompt-injection heuristics on (log): their scan's cost alone.
const aiGuardInjection = (dir: string) => ({ ...aiGuard(dir), name: "ai-guard", configuration: { detectors: { injection: "log" } } });
// The mcp filter in front of three servers, each with a credential, and access lists to check.
const MCP_SECRET = "bench-session-secret-of-at-least-32-bytes";
const mcp = (dir: string) => ({
  name: "mcp",
  rootId: "mcp",
  wasm: join(dir, "mcp.wasm"),
  configuration: {
    servers: ["github", "docs", "search"].map((n) => ({ name: n, cluster: `mcp_${n}`, authority: `${n}.internal:443`, path: "/mcp", auth: { header: "authorization", value_env: "MCP_TOKEN", prefix: "Bearer " } })),
    access: [{ consumers: ["other"], allow: ["docs__*"] }],
    default_access: { allow: ["github__*", "docs__*", "search__*"], deny: ["*__delete_*"], max_argument_bytes: 65536 },
  },
  env: { SLUICE_MCP_SESSION_KEY: MCP_SECRET, MCP_TOKEN: "server-token" },
  allowOnHeadersStopIteration: true,
});
// ai-cache with its defaults (exact keys, per consumer).
const aiCache = (dir: string) => ({ name: "ai-cache", wasm: join(dir, "ai-cache.wasm"), configuration: {}, allowOnHeadersStopIteration: true });
// ai-proxy as rendered with ai-cache in the chain: it leaves the answers ai-cache keeps.
const aiProxyCached = (dir: string) => {
  const p = aiProxy(dir);
  return { ...p, configuration: { ...p.configuration, cache_capture: true } };
};
// ai-router and ai-ratelimit as the shipped gateway.yaml renders them (envoy/ecds/): what users run.
const shipped = (filter: string) => {
  const doc = parse(readFileSync(join("envoy", "ecds", `${filter}.yaml`), "utf8"));
  return JSON.parse(doc.resources[0].typed_config.config.configuration.value);
};
const aiRouter = (dir: string) => ({ name: "ai-router", wasm: join(dir, "ai-router.wasm"), configuration: shipped("ai-router"), allowOnHeadersStopIteration: true });
// Its limits raised out of reach: millions of iterations a minute would be refused otherwise, and a
// refusal is not the path measured.
const aiRatelimit = (dir: string) => {
  const c = shipped("ai-ratelimit");
  for (const r of c.rules) r.limit = 1e15;
  return { name: "ai-ratelimit", wasm: join(dir, "ai-ratelimit.wasm"), configuration: c, allowOnHeadersStopIteration: true };
};
// ai-proxy with the pools the shipped ai-router rules name, both on the Anthropic instance (as case f).
const aiProxyPools = (dir: string) => {
  const p = aiProxy(dir);
  return { ...p, configuration: { ...p.configuration, pools: [{ name: "cheap", instances: ["cl"] }, { name: "capable", instances: ["cl"] }] } };
};
type FilterName = "key-auth" | "ai-proxy" | "ai-guard" | "ai-guard-answer" | "ai-guard-injection" | "mcp" | "ai-cache" | "ai-proxy-cached" | "ai-router" | "ai-ratelimit" | "ai-proxy-pools";
const FILTERS = { "key-auth": keyAuth, "ai-proxy": aiProxy, "ai-guard": aiGuard, "ai-guard-answer": aiGuardAnswer, "ai-guard-injection": aiGuardInjection, mcp, "ai-cache": aiCache, "ai-proxy-cached": aiProxyCached, "ai-router": aiRouter, "ai-ratelimit": aiRatelimit, "ai-proxy-pools": aiProxyPools };

// ------------------------------------------------------------------------------ instrumentation
// A flat timeline: the clock is read at every crossing between host and module; an interval that
// starts with a crossing into the module (export call, host function return) and ends with one out
// of it (export return, host function call) is time inside the .wasm. Nested calls (the host's
// malloc from inside a host function) follow the same rule, so no time is counted twice.
const hr = process.hrtime.bigint;
interface Acc { key: string; ns: bigint; calls: number }
const prof = {
  enter: 0n,
  wasmNs: 0n,
  intervals: 0,
  exportAcc: new Map<string, Acc>(), // exclusive wasm time by export (innermost export owns the interval)
  importAcc: new Map<string, Acc>(), // host time inside each host function (nested wasm excluded)
  stack: [] as Acc[],
};
function acc(map: Map<string, Acc>, key: string): Acc {
  let a = map.get(key);
  if (!a) map.set(key, (a = { key, ns: 0n, calls: 0 }));
  return a;
}
function resetProf(): void {
  prof.wasmNs = 0n;
  prof.intervals = 0;
  for (const a of prof.exportAcc.values()) (a.ns = 0n), (a.calls = 0);
  for (const a of prof.importAcc.values()) (a.ns = 0n), (a.calls = 0);
}
const instrument: Instrument = {
  export(filter, name, fn) {
    const a = acc(prof.exportAcc, `${filter} ${name}`);
    return (...args: unknown[]) => {
      prof.stack.push(a);
      a.calls++;
      prof.enter = hr();
      const r = fn(...args);
      const d = hr() - prof.enter;
      prof.wasmNs += d;
      prof.intervals++;
      a.ns += d;
      prof.stack.pop();
      return r;
    };
  },
  import(filter, module, name, fn) {
    const a = acc(prof.importAcc, `${filter} ${module === "env" ? "" : module + "."}${name}`);
    return (...args: unknown[]) => {
      const t = hr();
      const d = t - prof.enter;
      prof.wasmNs += d;
      prof.intervals++;
      const top = prof.stack[prof.stack.length - 1];
      if (top) top.ns += d;
      const w0 = prof.wasmNs;
      const r = fn(...args);
      const e = hr();
      a.ns += e - t - (prof.wasmNs - w0);
      a.calls++;
      prof.enter = e;
      return r;
    };
  },
};

/** Clock cost inside one measured interval (enter = hr(); ...; d = hr() - enter), in ns. */
function clockIntervalNs(): number {
  const noop = (x: number) => x + 1;
  let sink = 0;
  const samples: number[] = [];
  for (let r = 0; r < 21; r++) {
    let sum = 0n;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const e = hr();
      sink = noop(sink);
      sum += hr() - e;
    }
    samples.push(Number(sum) / n);
  }
  if (sink < 0) console.log(sink);
  return median(samples);
}

// ------------------------------------------------------------------------------------- helpers
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

const REQ_HEADERS = {
  ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gateway.local", ":scheme": "https",
  "content-type": "application/json", "accept-encoding": "gzip, br", "user-agent": "OpenAI/JS 6.49.0",
  "x-request-id": "5f0c1f7e-8a55-4b8c-9d0e-2b7b9f4f6a11", authorization: "Bearer key-1",
};
const JSON_RESP_HEADERS = { ":status": "200", "content-type": "application/json", "content-length": "1024", date: "Mon, 16 Jun 2025 10:00:00 GMT", "x-request-id": "req_0a1b2c" };
const SSE_RESP_HEADERS = { ":status": "200", "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", date: "Mon, 16 Jun 2025 10:00:00 GMT" };

// --------------------------------------------------------------------------------------- cases
interface Times {
  /** µs per unit of this iteration is computed by the driver from these (ns). */
  req: number;
  resp: number;
  unitNs: number;
  /** Instrumented host only: wasm ns and wasm intervals inside the unit's region. */
  wasmNs: bigint;
  intervals: number;
}
const newTimes = (): Times => ({ req: 0, resp: 0, unitNs: 0, wasmNs: 0n, intervals: 0 });
interface Case {
  id: string;
  title: string;
  filters: FilterName[];
  unit: "request" | "chunk";
  /** Units per iteration (chunks per stream; 1 for requests). */
  perIter: number;
  /** One iteration through the host; fills t (ns). */
  run(h: Host, t: Times): void;
  /** Verifies one iteration's output; returns the bodies the filter read and wrote (for the floor). */
  check(h: Host): { reads: string[]; writes: unknown[] } | null;
  sizes: Record<string, number>;
}

function fail(msg: string): never {
  throw new Error(`bench: ${msg}`);
}

/** One request and its whole JSON answer through the chain, timed: the request and response phases, and the time in wasm. */
function timedExchange(h: Host, t: Times, headers: Record<string, string>, reqBuf: Buffer, ansBuf: Buffer): Stream {
  const w0 = prof.wasmNs, n0 = prof.intervals;
  const t0 = hr();
  const s = h.newStream();
  s.callOnRequestHeaders(headers, false);
  s.callOnRequestBody(reqBuf, true);
  const t1 = hr();
  s.callOnResponseHeaders(JSON_RESP_HEADERS, false);
  s.callOnResponseBody(ansBuf, true);
  s.completeHttpContext();
  const t2 = hr();
  t.req = Number(t1 - t0);
  t.resp = Number(t2 - t1);
  t.unitNs = t.req + t.resp;
  t.wasmNs = prof.wasmNs - w0;
  t.intervals = prof.intervals - n0;
  return s;
}

/** A request the filters answer themselves (or only read): headers, body, the stream's end. */
function timedRequest(h: Host, t: Times, headers: Record<string, string>, reqBuf: Buffer): Stream {
  const w0 = prof.wasmNs, n0 = prof.intervals;
  const t0 = hr();
  const s = h.newStream();
  s.callOnRequestHeaders(headers, false);
  s.callOnRequestBody(reqBuf, true);
  s.completeHttpContext();
  const t1 = hr();
  t.req = Number(t1 - t0);
  t.resp = 0;
  t.unitNs = t.req;
  t.wasmNs = prof.wasmNs - w0;
  t.intervals = prof.intervals - n0;
  return s;
}

/** A whole JSON request: client request, provider answer, stream end. */
function jsonCase(id: string, title: string, filters: FilterName[], model: string, reqBody: string, answer: string, translated: boolean): Case {
  const reqBuf = Buffer.from(reqBody);
  const ansBuf = Buffer.from(answer);
  let last: Stream | null = null;
  const c: Case = {
    id, title, filters, unit: "request", perIter: 1,
    sizes: { request: reqBuf.length, answer: ansBuf.length },
    run(h, t) {
      last = timedExchange(h, t, REQ_HEADERS, reqBuf, ansBuf);
    },
    check(h) {
      c.run(h, newTimes());
      const s = last!;
      if (s.getSentLocalResponse()) fail(`${id}: local reply ${s.getSentLocalResponse()!.statusCode} ${s.getSentLocalResponse()!.body}`);
      const hasAuth = (s.upstream.headers ?? []).some(([k, v]) => v.includes("key-1"));
      if (hasAuth && filters.includes("key-auth")) fail(`${id}: client credential reached the provider`);
      if (filters.includes("ai-router") && !s.getFilterState("sluice.pool")) fail(`${id}: ai-router chose no pool`);
      if (!filters.some((f) => f.startsWith("ai-proxy"))) return { reads: [], writes: [] };
      const up = JSON.parse(s.upstream.body.toString());
      const down = JSON.parse(s.downstream.body.toString());
      if (translated) {
        if (!Array.isArray(up.messages) || typeof up.system !== "string" || !up.tools?.[0]?.input_schema) fail(`${id}: upstream is not an Anthropic request`);
        if (down.object !== "chat.completion" || !down.choices?.[0]?.message?.content) fail(`${id}: answer not translated to OpenAI`);
      } else if (up.model !== model || down.object !== "chat.completion") fail(`${id}: pass-through changed the bodies`);
      if (s.getFilterState("sluice.usage_source") !== "provider") fail(`${id}: no usage record`);
      return { reads: [reqBody, answer], writes: [up, down] };
    },
  };
  return c;
}

/** A streamed Anthropic answer translated to OpenAI chunks: µs per content_block_delta event. */
function streamCase(id: string, title: string, filters: FilterName[], deltas: number): Case {
  const req = Buffer.from(openaiRequest2k("claude-sonnet-4-5", true));
  const ev = anthropicStream("claude-sonnet-4-5", deltas);
  const head = ev.head.map((e) => Buffer.from(e));
  const body = ev.deltas.map((e) => Buffer.from(e));
  const tail = ev.tail.map((e) => Buffer.from(e));
  let out: Buffer[] = [];
  let keep = false;
  // The client reads what reaches it after every chunk (Envoy's codec drains it): without this the
  // host would re-concatenate the whole downstream body on every chunk, a cost Envoy never has.
  const drain = (s: Stream) => {
    if (keep && s.downstream.body.length) out.push(s.downstream.body);
    s.downstream.body = Buffer.alloc(0);
  };
  const c: Case = {
    id, title, filters, unit: "chunk", perIter: deltas,
    sizes: { request: req.length, chunk: Math.round(body.reduce((n, b) => n + b.length, 0) / deltas), chunks: deltas },
    run(h, t) {
      const t0 = hr();
      const s = h.newStream();
      s.callOnRequestHeaders(REQ_HEADERS, false);
      s.callOnRequestBody(req, true);
      s.callOnResponseHeaders(SSE_RESP_HEADERS, false);
      for (const b of head) {
        s.callOnResponseBody(b, false);
        drain(s);
      }
      const w0 = prof.wasmNs, n0 = prof.intervals;
      const t1 = hr();
      for (let i = 0; i < body.length; i++) {
        s.callOnResponseBody(body[i], false);
        drain(s);
      }
      const t2 = hr();
      t.wasmNs = prof.wasmNs - w0;
      t.intervals = prof.intervals - n0;
      for (let i = 0; i < tail.length; i++) {
        s.callOnResponseBody(tail[i], i === tail.length - 1);
        drain(s);
      }
      s.completeHttpContext();
      const t3 = hr();
      t.req = Number(t1 - t0 + (t3 - t2)); // everything but the deltas
      t.resp = Number(t2 - t1);
      t.unitNs = t.resp;
    },
    check(h) {
      keep = true;
      out = [];
      c.run(h, newTimes());
      keep = false;
      const text = Buffer.concat(out).toString();
      // Events only: the provider's ping passes on as a keep-alive comment, which carries none.
      const datas = text.split("\n\n").filter((e) => e.trim() && !e.startsWith(":")).map(sseDataOf);
      if (datas[datas.length - 1] !== "[DONE]") fail(`${id}: stream does not end with [DONE]`);
      const chunks = datas.slice(0, -1).map((d) => JSON.parse(d));
      const content = chunks.filter((x) => x.choices?.[0]?.delta?.content);
      if (content.length !== deltas || content.some((x) => x.object !== "chat.completion.chunk")) fail(`${id}: expected ${deltas} content chunks, got ${content.length}`);
      // Floor per chunk: parse one Anthropic delta event's data, stringify the OpenAI chunk written for it.
      const mid = deltas >> 1;
      return { reads: [sseDataOf(ev.deltas[mid])], writes: [content[mid]] };
    },
  };
  return c;
}

function keyAuthCase(): Case {
  const c = jsonCase("e", "key-auth alone (2 KB request, 1 KB answer pass by)", ["key-auth"], "gpt-4o", openaiRequest2k("gpt-4o"), openaiAnswer("gpt-4o"), false);
  const check = c.check;
  c.check = (h) => {
    const r = check(h);
    return r ? null : r; // no JSON work in key-auth: no floor
  };
  return c;
}

/**
 * ai-guard alone on the 32 KB chat request (the scan of every text: µs per request; divide by the
 * request's KB for the cost per KB), clean or with findings to mask in its last message.
 */
function guardCase(id: string, title: string, findings: boolean, filter: FilterName = "ai-guard"): Case {
  const base = JSON.parse(openaiRequest32k("gpt-4o"));
  if (findings) base.messages.push({ role: "user", content: "Reach me at jane.doe@example.com or +44 20 7946 0958, card 4111 1111 1111 1111, TICKET-20417." });
  const reqBody = JSON.stringify(base);
  const reqBuf = Buffer.from(reqBody);
  let last: Stream | null = null;
  const c: Case = {
    id, title, filters: [filter], unit: "request", perIter: 1,
    sizes: { request: reqBuf.length },
    run(h, t) {
      last = timedRequest(h, t, REQ_HEADERS, reqBuf);
    },
    check(h) {
      c.run(h, newTimes());
      const s = last!;
      if (s.getSentLocalResponse()) fail(`${id}: local reply ${s.getSentLocalResponse()!.statusCode}`);
      const want = findings ? "mask" : "allow";
      if (s.getFilterState("sluice.guard_verdict") !== want) fail(`${id}: verdict ${s.getFilterState("sluice.guard_verdict")}, expected ${want}`);
      const up = s.upstream.body.toString();
      if (findings && !up.includes("<EMAIL_1>")) fail(`${id}: nothing masked`);
      // Floor: parse the request; write it back when the filter rewrote it.
      return { reads: [reqBody], writes: findings ? [JSON.parse(up)] : [] };
    },
  };
  return c;
}

/**
 * ai-guard alone on a streamed Chat Completions answer: 200 chunks of about 24 characters (one
 * event per callOnResponseBody), every detector masking on the answer, two values to mask: µs per
 * chunk. The check also prints how many chunks pass before the first text is released (the added
 * time to first token is that many chunks' arrival time: the hold-back window).
 */
function guardStreamCase(id: string, title: string, deltas: number): Case {
  const req = Buffer.from(JSON.stringify({ model: "gpt-4o", stream: true, messages: [{ role: "user", content: "Tell me a story." }] }));
  const head = { id: "chatcmpl-1", object: "chat.completion.chunk", created: 1700000000, model: "gpt-4o" };
  const chunk = (delta: object, finish: string | null = null) => Buffer.from(`data: ${JSON.stringify({ ...head, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`);
  const words = (i: number) => (i === 50 ? "write to jane.doe@example.com " : i === 120 ? "or call +44 20 7946 0958 now " : `the story goes on, part ${i}. `);
  const body = Array.from({ length: deltas }, (_, i) => chunk({ content: words(i) }));
  const tail = [chunk({}, "stop"), Buffer.from("data: [DONE]\n\n")];
  let out: Buffer[] = [];
  let keep = false;
  let firstAt = -1;
  const drain = (s: Stream, i: number) => {
    if (keep && s.downstream.body.length) {
      if (firstAt < 0 && s.downstream.body.toString().includes('"content":"t')) firstAt = i;
      out.push(s.downstream.body);
    }
    s.downstream.body = Buffer.alloc(0);
  };
  const c: Case = {
    id, title, filters: ["ai-guard-answer"], unit: "chunk", perIter: deltas,
    sizes: { request: req.length, chunk: Math.round(body.reduce((n, b) => n + b.length, 0) / deltas), chunks: deltas },
    run(h, t) {
      const t0 = hr();
      const s = h.newStream();
      s.callOnRequestHeaders(REQ_HEADERS, false);
      s.callOnRequestBody(req, true);
      s.callOnResponseHeaders(SSE_RESP_HEADERS, false);
      s.callOnResponseBody(chunk({ role: "assistant", content: "" }), false);
      drain(s, -1);
      const w0 = prof.wasmNs, n0 = prof.intervals;
      const t1 = hr();
      for (let i = 0; i < body.length; i++) {
        s.callOnResponseBody(body[i], false);
        drain(s, i);
      }
      const t2 = hr();
      t.wasmNs = prof.wasmNs - w0;
      t.intervals = prof.intervals - n0;
      for (let i = 0; i < tail.length; i++) {
        s.callOnResponseBody(tail[i], i === tail.length - 1);
        drain(s, deltas);
      }
      s.completeHttpContext();
      const t3 = hr();
      t.req = Number(t1 - t0 + (t3 - t2));
      t.resp = Number(t2 - t1);
      t.unitNs = t.resp;
    },
    check(h) {
      keep = true;
      out = [];
      firstAt = -1;
      c.run(h, newTimes());
      keep = false;
      const text = Buffer.concat(out).toString();
      const datas = text.split("\n\n").filter((e) => e.trim()).map(sseDataOf);
      if (datas[datas.length - 1] !== "[DONE]") fail(`${id}: stream does not end with [DONE]`);
      const got = datas.slice(0, -1).map((d) => JSON.parse(d).choices[0]?.delta?.content ?? "").join("");
      if (!got.includes("<EMAIL_1>") || !got.includes("<PHONE_1>") || got.includes("jane.doe")) fail(`${id}: answer not masked`);
      process.stderr.write(`${id}: first text released after ${firstAt + 1} of ${deltas} chunks\n`);
      const mid = deltas >> 1;
      return { reads: [sseDataOf(body[mid].toString())], writes: [JSON.parse(sseDataOf(body[mid].toString()))] };
    },
  };
  return c;
}

/**
 * mcp alone: one routed tools/call with about 2 KB of arguments on a three-server session (the
 * session id opened and checked, the tool's access, the body rewritten with the server's own tool
 * name, the request pointed at the server), then a 1 KB JSON result passed back: µs per call.
 */
function mcpCase(id: string, title: string): Case {
  const session = sealSession(MCP_SECRET, {
    openedMs: Date.now(), consumer: "", version: "2025-06-18",
    members: ["github", "docs", "search"].map((server) => ({ server, id: randomUUID(), version: "2025-06-18" })),
  });
  const args = { repo: "acme/gateway", title: "Flaky test in the router", body: "The test ".repeat(200), labels: ["bug", "ci"] };
  const reqBody = JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/call", params: { name: "github__create_issue", arguments: args, _meta: { progressToken: 7 } } });
  const reqBuf = Buffer.from(reqBody);
  const headers = { ":method": "POST", ":path": "/mcp", ":authority": "gateway.local", ":scheme": "https", "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-session-id": session, "mcp-protocol-version": "2025-06-18", "content-length": String(reqBuf.length) };
  const answer = Buffer.from(JSON.stringify({ jsonrpc: "2.0", id: 7, result: { content: [{ type: "text", text: "Created issue #4242: ".padEnd(1000, "x") }], isError: false } }));
  let last: Stream | null = null;
  const c: Case = {
    id, title, filters: ["mcp"], unit: "request", perIter: 1,
    sizes: { request: reqBuf.length, answer: answer.length },
    run(h, t) {
      last = timedExchange(h, t, headers, reqBuf, answer);
    },
    check(h) {
      c.run(h, newTimes());
      const s = last!;
      if (s.getSentLocalResponse()) fail(`${id}: local reply ${s.getSentLocalResponse()!.statusCode}: ${s.getSentLocalResponse()!.body}`);
      const up = JSON.parse(s.upstream.body.toString());
      if (up.params.name !== "create_issue") fail(`${id}: tool name not rewritten`);
      return { reads: [reqBody], writes: [up] };
    },
  };
  return c;
}

/**
 * ai-cache in the chain key-auth + ai-cache + ai-proxy, 2 KB OpenAI chat to anthropic with a 1 KB
 * answer. hit: the same request every time, answered from the cache (a local reply, whole or as a
 * stream of the client's chunks). miss: a new request every time (a counter in the prompt), sent on
 * and its answer kept: compare with case (f), the same chain without ai-cache.
 */
function cacheCase(id: string, title: string, kind: "hit" | "hit-stream" | "miss"): Case {
  const base = JSON.parse(openaiRequest2k("claude-sonnet-4-5"));
  const answer = Buffer.from(anthropicAnswer("claude-sonnet-4-5"));
  const body = (n: number, stream: boolean) => Buffer.from(JSON.stringify({ ...base, stream, messages: [...base.messages.slice(0, -1), { role: "user", content: `${base.messages.at(-1).content} (${n})` }] }));
  const fixed = body(0, false);
  const streamed = body(0, true);
  let n = 0;
  let last: Stream | null = null;
  const c: Case = {
    id, title, filters: ["key-auth", "ai-cache", "ai-proxy-cached"], unit: "request", perIter: 1,
    sizes: { request: fixed.length, answer: answer.length },
    run(h, t) {
      if (kind === "miss") {
        last = timedExchange(h, t, REQ_HEADERS, body(++n, false), answer);
        return;
      }
      last = timedRequest(h, t, REQ_HEADERS, kind === "hit" ? fixed : streamed);
    },
    check(h) {
      // The first request of the hit cases is the miss that keeps the answer.
      if (kind !== "miss") timedExchange(h, newTimes(), REQ_HEADERS, fixed, answer);
      c.run(h, newTimes());
      const s = last!;
      const local = s.getSentLocalResponse();
      if (kind === "miss") {
        if (local) fail(`${id}: a miss was answered locally: ${local.statusCode}`);
        if (s.getFilterState("sluice.cache") !== "miss" || !s.getFilterState("sluice.cache_answer")) fail(`${id}: the answer was not left for the cache`);
        return { reads: [fixed.toString(), answer.toString()], writes: [JSON.parse(s.upstream.body.toString()), JSON.parse(s.downstream.body.toString())] };
      }
      if (!local || !local.headers.some(([k, v]) => k === "x-sluice-cache" && v === "hit")) fail(`${id}: not a hit`);
      if (kind === "hit") return { reads: [fixed.toString()], writes: [JSON.parse(local!.body.toString())] };
      const events = local!.body.toString().split("\n\n").filter((e) => e.startsWith("data:")).map(sseDataOf).filter((d) => d !== "[DONE]");
      return { reads: [streamed.toString()], writes: events.map((d) => JSON.parse(d)) };
    },
  };
  return c;
}

const CASES: Case[] = [
  jsonCase("a", "OpenAI 2 KB chat → openai (pass-through) + 1 KB answer", ["ai-proxy"], "gpt-4o", openaiRequest2k("gpt-4o"), openaiAnswer("gpt-4o"), false),
  jsonCase("b", "OpenAI 2 KB chat → anthropic (translated both ways) + 1 KB answer", ["ai-proxy"], "claude-sonnet-4-5", openaiRequest2k("claude-sonnet-4-5"), anthropicAnswer("claude-sonnet-4-5"), true),
  jsonCase("c", "OpenAI 32 KB chat → anthropic + 1 KB answer", ["ai-proxy"], "claude-sonnet-4-5", openaiRequest32k("claude-sonnet-4-5"), anthropicAnswer("claude-sonnet-4-5"), true),
  streamCase("d", "stream anthropic → OpenAI chunks, 200 content_block_delta", ["ai-proxy"], 200),
  keyAuthCase(),
  jsonCase("f", "chain key-auth + ai-proxy, 2 KB → anthropic + 1 KB answer", ["key-auth", "ai-proxy"], "claude-sonnet-4-5", openaiRequest2k("claude-sonnet-4-5"), anthropicAnswer("claude-sonnet-4-5"), true),
  streamCase("g", "chain key-auth + ai-proxy, stream anthropic → OpenAI, 200 deltas", ["key-auth", "ai-proxy"], 200),
  guardCase("h", "ai-guard alone, 32 KB chat, every detector on, nothing found", false),
  guardCase("i", "ai-guard alone, 32 KB chat, every detector on, 4 values masked", true),
  guardStreamCase("j", "ai-guard alone, streamed chat answer, every detector masking, 200 chunks", 200),
  guardCase("k", "ai-guard alone, 32 KB chat, injection heuristics only, nothing found", false, "ai-guard-injection"),
  mcpCase("l", "mcp alone, a routed tools/call with 2 KB arguments on a 3-server session, 1 KB result"),
  cacheCase("m", "chain key-auth + ai-cache + ai-proxy, 2 KB chat answered from the cache (1 KB answer)", "hit"),
  cacheCase("n", "chain key-auth + ai-cache + ai-proxy, 2 KB chat answered from the cache as a stream", "hit-stream"),
  cacheCase("o", "chain key-auth + ai-cache + ai-proxy, 2 KB → anthropic, a miss whose 1 KB answer is kept", "miss"),
  jsonCase("p", "ai-router alone, 2 KB chat for model auto, the shipped rules (complexity classifier)", ["ai-router"], "auto", openaiRequest2k("auto"), openaiAnswer("auto"), false),
  jsonCase("q", "ai-ratelimit alone, 2 KB chat, the shipped rule (tokens per consumer per minute) + 1 KB answer", ["ai-ratelimit"], "auto", openaiRequest2k("auto"), openaiAnswer("auto"), false),
  jsonCase("r", "the shipped chain key-auth + ai-router + ai-ratelimit + ai-proxy, 2 KB for auto → anthropic + 1 KB answer", ["key-auth", "ai-router", "ai-ratelimit", "ai-proxy-pools"], "auto", openaiRequest2k("auto"), anthropicAnswer("claude-sonnet-4-5"), true),
  // What users send beyond 2 KB, and streams of every length (issue 24 item 3).
  jsonCase("s", "the shipped chain, 32 KB for auto → anthropic + 1 KB answer", ["key-auth", "ai-router", "ai-ratelimit", "ai-proxy-pools"], "auto", openaiRequest32k("auto"), anthropicAnswer("claude-sonnet-4-5"), true),
  jsonCase("t", "the shipped chain, 256 KB for auto → anthropic + 1 KB answer", ["key-auth", "ai-router", "ai-ratelimit", "ai-proxy-pools"], "auto", openaiRequest256k("auto"), anthropicAnswer("claude-sonnet-4-5"), true),
  streamCase("u", "chain key-auth + ai-proxy, stream anthropic → OpenAI, 50 deltas", ["key-auth", "ai-proxy"], 50),
  streamCase("v", "chain key-auth + ai-proxy, stream anthropic → OpenAI, 2,000 deltas", ["key-auth", "ai-proxy"], 2000),
];

// ------------------------------------------------------------------------------------- driver
async function makeHost(c: Case, instrumented: boolean, dir = WASM_DIR): Promise<Host> {
  return Host.create({ filters: c.filters.map((f) => FILTERS[f](dir)), logLevel: "warn", ...(instrumented ? { instrument } : {}) });
}

function assertHealthy(h: Host, id: string): void {
  const bad = h.getLogEntries().filter((e) => e.level === "error" || e.level === "critical" || /failed: Uncaught/.test(e.message));
  if (bad.length) fail(`${id}: ${bad[0].filter}: ${bad[0].message}`);
}

/** The floor for one iteration: JSON.parse what the filter reads, JSON.stringify what it writes. */
function floorFn(reads: string[], writes: unknown[]): () => number {
  return () => {
    let n = 0;
    for (const r of reads) n += (JSON.parse(r) as object) ? 1 : 0;
    for (const w of writes) n += JSON.stringify(w).length;
    return n;
  };
}

interface Stat { median: number; p99: number }
const stat = (xs: number[]): Stat => ({ median: median(xs), p99: pct(xs, 99) });

interface CaseResult {
  id: string;
  title: string;
  unit: string;
  filters: string[];
  sizes: Record<string, number>;
  iterationsPerRound: number;
  rounds: number;
  perUnitUs: Stat;
  /** Process CPU time (user + system, all threads) per iteration / units: includes the stream's
   * non-unit work for streams; robust to other processes sharing the CPU. */
  cpuPerUnitUs: number;
  requestPhaseUs?: Stat;
  responsePhaseUs?: Stat;
  streamOverheadUs?: Stat;
  instrumentedPerUnitUs: Stat;
  inWasmUs: Stat;
  inWasmRawUs: Stat;
  inHostUs: number;
  crossingsPerUnit: number;
  floorUs: Stat | null;
  ratioToFloor: number | null;
  wasmByExport: { name: string; usPerUnit: number; callsPerUnit: number }[];
  hostByImport: { name: string; usPerUnit: number; callsPerUnit: number }[];
  memoryPages: Record<string, number>;
}

let sink = 0;

/** Per-round µs and calls per unit for every export / host function (whole iterations: for a
 * stream, the request and the non-delta events are spread over its chunks). */
type Snapshot = Map<string, { us: number; calls: number }>;
function snapshot(m: Map<string, Acc>, units: number): Snapshot {
  const out: Snapshot = new Map();
  for (const a of m.values()) if (a.calls) out.set(a.key, { us: Number(a.ns) / units / 1e3, calls: a.calls / units });
  return out;
}
function breakdown(rounds: Snapshot[]): { name: string; usPerUnit: number; callsPerUnit: number }[] {
  const names = new Set(rounds.flatMap((r) => [...r.keys()]));
  return [...names].map((name) => ({
    name,
    usPerUnit: median(rounds.map((r) => r.get(name)?.us ?? 0)),
    callsPerUnit: median(rounds.map((r) => r.get(name)?.calls ?? 0)),
  })).sort((x, y) => y.usPerUnit - x.usPerUnit);
}

async function runCase(c: Case, clockNs: number): Promise<CaseResult> {
  const plain = await makeHost(c, false);
  const inst = await makeHost(c, true);
  const floorIO = c.check(plain);
  c.check(inst);
  assertHealthy(plain, c.id);
  assertHealthy(inst, c.id);
  const floor = floorIO && (floorIO.reads.length || floorIO.writes.length) ? floorFn(floorIO.reads, floorIO.writes) : null;

  const t = newTimes();
  // Warm-up: WARMUP units (and at least 0.4 s) on each host and the floor, so V8 has tiered up.
  const warmIters = Math.max(1, Math.ceil(WARMUP / c.perIter));
  const warm = (fn: () => void) => {
    const start = Date.now();
    for (let i = 0; i < warmIters || Date.now() - start < 400; i++) fn();
  };
  warm(() => c.run(plain, t));
  warm(() => c.run(inst, t));
  if (floor) warm(() => (sink += floor()));

  // Iterations per round from the warm-up speed.
  const t0 = hr();
  let k = 0;
  while (Number(hr() - t0) < 20e6) {
    c.run(plain, t);
    k++;
  }
  const iterNs = Number(hr() - t0) / k;
  const N = Math.max(5, Math.round((ROUND_MS * 1e6) / iterNs));

  const cpu: number[] = [];
  const per: number[] = [], req: number[] = [], resp: number[] = [], instPer: number[] = [], wasm: number[] = [], wasmRaw: number[] = [], fl: number[] = [], cross: number[] = [];
  const units = N * c.perIter;
  const exportRounds: Snapshot[] = [], importRounds: Snapshot[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // plain
    let sumUnit = 0, sumReq = 0, sumResp = 0;
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < N; i++) {
      c.run(plain, t);
      sumUnit += t.unitNs;
      sumReq += t.req;
      sumResp += t.resp;
    }
    const cpuUsed = process.cpuUsage(cpu0);
    cpu.push((cpuUsed.user + cpuUsed.system) / (N * c.perIter));
    per.push(sumUnit / units / 1e3);
    req.push(sumReq / N / 1e3);
    resp.push(sumResp / N / 1e3);
    // floor
    if (floor) {
      // one floor() is one unit's JSON work (a request's bodies, or one chunk)
      const f0 = hr();
      for (let i = 0; i < units; i++) sink += floor();
      fl.push(Number(hr() - f0) / units / 1e3);
    }
    // instrumented: only the unit's own crossings count (for a stream, the deltas)
    let sumInst = 0;
    let sumWasm = 0n;
    let sumIntervals = 0;
    resetProf();
    for (let i = 0; i < N; i++) {
      c.run(inst, t);
      sumInst += t.unitNs;
      sumWasm += t.wasmNs;
      sumIntervals += t.intervals;
    }
    exportRounds.push(snapshot(prof.exportAcc, units));
    importRounds.push(snapshot(prof.importAcc, units));
    instPer.push(sumInst / units / 1e3);
    wasmRaw.push(Number(sumWasm) / units / 1e3);
    wasm.push(Math.max(0, Number(sumWasm) - sumIntervals * clockNs) / units / 1e3);
    cross.push(sumIntervals / units);
  }

  const byExport = breakdown(exportRounds);
  const byImport = breakdown(importRounds);

  assertHealthy(plain, c.id);
  assertHealthy(inst, c.id);
  const pages: Record<string, number> = {};
  for (const f of c.filters) pages[f] = plain.memoryPages(FILTERS[f](WASM_DIR).name); // the plugin's own name (ai-guard-answer is ai-guard)
  plain.close();
  inst.close();

  const perUnit = stat(per);
  const w = stat(wasm);
  const floorStat = floor ? stat(fl) : null;
  return {
    id: c.id, title: c.title, unit: c.unit, filters: c.filters, sizes: c.sizes, iterationsPerRound: N, rounds: ROUNDS,
    perUnitUs: perUnit,
    cpuPerUnitUs: median(cpu),
    ...(c.unit === "request" ? { requestPhaseUs: stat(req), responsePhaseUs: stat(resp) } : { streamOverheadUs: stat(req) }),
    instrumentedPerUnitUs: stat(instPer),
    inWasmUs: w,
    inWasmRawUs: stat(wasmRaw),
    inHostUs: Math.max(0, perUnit.median - w.median),
    crossingsPerUnit: median(cross),
    floorUs: floorStat,
    ratioToFloor: floorStat ? perUnit.median / floorStat.median : null,
    wasmByExport: byExport.slice(0, 12),
    hostByImport: byImport.slice(0, 12),
    memoryPages: pages,
  };
}

// ---------------------------------------------------------------------------------------- main
function machine() {
  const cpus = os.cpus();
  let commit = "unknown";
  let dirty: string[] = [];
  try {
    commit = execSync("git rev-parse --short HEAD", { encoding: "utf8" }).trim();
    dirty = execSync("git status --porcelain -- assembly host patches asconfig.json", { encoding: "utf8" }).split("\n").filter(Boolean).map((l) => l.slice(3));
  } catch {
    /* not a git checkout */
  }
  return {
    cpu: cpus[0]?.model ?? "unknown", cores: cpus.length, node: process.version, v8: process.versions.v8,
    os: `${os.type()} ${os.release()} ${os.arch()}`, memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    commit, uncommittedSources: dirty,
    loadAverage1m: Number(os.loadavg()[0].toFixed(2)),
  };
}

function wasmSizes(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of readdirSync(WASM_DIR).filter((x) => x.endsWith(".wasm")).sort()) out[f] = statSync(join(WASM_DIR, f)).size;
  return out;
}

const f1 = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

function table(results: CaseResult[]): string {
  const rows = [
    "| case | unit | median µs | p99 µs | cpu µs | request phase µs | response phase µs | in wasm µs | in host µs | crossings | V8 JSON floor µs | × floor |",
    "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
  ];
  for (const r of results) {
    rows.push(`| (${r.id}) ${r.title} | ${r.unit} | **${f1(r.perUnitUs.median)}** | ${f1(r.perUnitUs.p99)} | ${r.unit === "request" ? f1(r.cpuPerUnitUs) : "—"} | ${r.requestPhaseUs ? f1(r.requestPhaseUs.median) : "—"} | ${r.responsePhaseUs ? f1(r.responsePhaseUs.median) : "—"} | ${f1(r.inWasmUs.median)} | ${f1(r.inHostUs)} | ${r.crossingsPerUnit.toFixed(0)} | ${r.floorUs ? f1(r.floorUs.median) : "—"} | ${r.ratioToFloor ? r.ratioToFloor.toFixed(1) + "×" : "—"} |`);
  }
  return rows.join("\n");
}

async function profileRun(seconds: number): Promise<void> {
  // One case on the plain host for node --cpu-prof: warm-up, then a marked window of steady state.
  const id = ONLY[0] ?? "b";
  const c = CASES.find((x) => x.id === id) ?? fail(`no case ${id}`);
  const h = await makeHost(c, false);
  c.check(h);
  const t = newTimes();
  const start = Date.now();
  for (let i = 0; i < WARMUP || Date.now() - start < 1000; i++) c.run(h, t);
  const w0 = hr();
  let n = 0;
  let sum = 0;
  while (Number(hr() - w0) < seconds * 1e9) {
    c.run(h, t);
    sum += t.unitNs;
    n++;
  }
  const w1 = hr();
  assertHealthy(h, c.id);
  mkdirSync(dirname(PROFILE_WINDOW), { recursive: true });
  // hrtime and V8's profile timestamps share the monotonic clock (µs in the profile).
  writeFileSync(PROFILE_WINDOW, JSON.stringify({ case: c.id, title: c.title, startUs: Number(w0 / 1000n), endUs: Number(w1 / 1000n), iterations: n, usPerUnit: sum / (n * c.perIter) / 1e3, wasmDir: WASM_DIR }));
  console.log(`profiled (${c.id}) ${c.title}: ${n} iterations, ${(sum / (n * c.perIter) / 1e3).toFixed(2)} µs/${c.unit} (under the profiler, ${WASM_DIR}/)`);
}

/** --ab dirA,dirB,...: the same cases against several builds, rounds interleaved (A B C A B C ...),
 * so that load from other processes hits every build alike. Plain hosts, or with --ab-wasm
 * instrumented ones and the time in wasm (what issue 24's targets are set on). */
async function abRun(): Promise<void> {
  const cases = ONLY.length ? CASES.filter((c) => ONLY.includes(c.id)) : CASES;
  const clockNs = AB_WASM ? clockIntervalNs() : 0;
  const rows = [`| case | unit | ${AB.map((d) => `${d} ${AB_WASM ? "µs in wasm" : "µs"} (cpu µs)`).join(" | ")} | loaded as listed, reversed |`, `|---|---|${AB.map(() => "--:").join("|")}|--:|`];
  for (const c of cases) {
    const wall: number[][] = AB.map(() => []), cpu: number[][] = AB.map(() => []);
    const passPct: string[] = [];
    // Two passes with fresh hosts, the builds loaded in the listed order, then in reverse: in one
    // process the build loaded second ran up to 6 % slower than an identical build loaded first,
    // which a single pass reports as that build's cost.
    for (const reversed of [false, true]) {
      const order = AB.map((_, j) => (reversed ? AB.length - 1 - j : j));
      const hosts: Host[] = new Array(AB.length);
      for (const j of order) {
        const h = await makeHost(c, AB_WASM, AB[j]);
        c.check(h);
        hosts[j] = h;
      }
      const t = newTimes();
      const warmIters = Math.max(1, Math.ceil(WARMUP / c.perIter));
      for (const j of order) for (let i = 0; i < warmIters; i++) c.run(hosts[j], t);
      const t0 = hr();
      let k = 0;
      while (Number(hr() - t0) < 20e6) (c.run(hosts[order[0]], t), k++);
      const N = Math.max(5, Math.round((ROUND_MS * 1e6) / (Number(hr() - t0) / k)));
      const passWall: number[][] = AB.map(() => []);
      for (let r = 0; r < Math.ceil(ROUNDS / 2); r++) {
        for (let q = 0; q < hosts.length; q++) {
          const x = order[(q + r) % hosts.length]; // rotate the order too
          let sum = 0;
          const c0 = process.cpuUsage();
          for (let i = 0; i < N; i++) (c.run(hosts[x], t), (sum += AB_WASM ? Math.max(0, Number(t.wasmNs) - t.intervals * clockNs) : t.unitNs));
          const cu = process.cpuUsage(c0);
          passWall[x].push(sum / (N * c.perIter) / 1e3);
          cpu[x].push((cu.user + cu.system) / (N * c.perIter));
        }
      }
      for (const h of hosts) (assertHealthy(h, c.id), h.close());
      for (let j = 0; j < AB.length; j++) wall[j].push(...passWall[j]);
      const b0 = median(passWall[0]);
      passPct.push(AB.slice(1).map((_, j) => `${((100 * (median(passWall[j + 1]) - b0)) / b0).toFixed(0)}%`).join("/"));
    }
    const base = median(wall[0]);
    rows.push(`| (${c.id}) ${c.title} | ${c.unit} | ${AB.map((_, j) => `${f1(median(wall[j]))}${j ? ` (${((100 * (median(wall[j]) - base)) / base).toFixed(0)}%)` : ""} (${c.unit === "chunk" ? "—" : f1(median(cpu[j]))})`).join(" | ")} | ${passPct.join(", ")} |`);
    process.stderr.write(`  (${c.id}) done\n`);
  }
  console.log(`A/B: ${ROUNDS} rounds of ~${ROUND_MS} ms per build, interleaved, in two passes (the builds loaded as listed, then in reverse, fresh hosts each); median µs per unit${AB_WASM ? " inside the modules (instrumented hosts)" : ""} over both (% vs the first), process CPU µs per unit in parentheses; the last column is each pass's % alone\n`);
  console.log(rows.join("\n"));
}

async function main(): Promise<void> {
  if (PROFILE_RUN > 0) return profileRun(PROFILE_RUN);
  if (AB.length) return abRun();
  const cases = ONLY.length ? CASES.filter((c) => ONLY.includes(c.id)) : CASES;
  const info = machine();
  const sizes = wasmSizes();
  console.log(`# Sluice filter benchmark\n`);
  console.log(`${info.cpu}, ${info.cores} cores, ${info.memoryGiB} GiB, ${info.os}; Node ${info.node} (V8 ${info.v8}); commit ${info.commit}${info.uncommittedSources.length ? ` + uncommitted changes in ${info.uncommittedSources.join(", ")}` : ""}`);
  if (info.loadAverage1m > 0.5) console.log(`warning: load average ${info.loadAverage1m} at start: other processes share the CPU, figures are pessimistic`);
  console.log(`wasm: ${Object.entries(sizes).map(([f, s]) => `${WASM_DIR}/${f} ${(s / 1024).toFixed(1)} KiB`).join(", ")}`);
  const clockNs = clockIntervalNs();
  console.log(`method: warm-up ${WARMUP} units (≥ 0.4 s), ${ROUNDS} rounds of ~${ROUND_MS} ms; median and p99 of the per-round means; clock read ${clockNs.toFixed(0)} ns (subtracted per wasm interval)\n`);
  const results: CaseResult[] = [];
  for (const c of cases) {
    process.stderr.write(`  (${c.id}) ${c.title} ...`);
    const r = await runCase(c, clockNs);
    process.stderr.write(` ${f1(r.perUnitUs.median)} µs/${r.unit}\n`);
    results.push(r);
  }
  console.log(table(results));
  console.log(`\nin wasm: time inside the module's code (instrumented host, clock cost removed); in host: median total − in wasm (the host's ABI functions, stream iteration, copies). crossings: host↔wasm transitions per unit. Floor: V8 JSON.parse of the bodies read + JSON.stringify of the bodies written, same run. Request phase: new stream + request headers + body; response phase: answer headers + body + on_log/on_done/on_delete. Streams: µs per content_block_delta chunk (one event per callOnResponseBody), the stream's other work excluded.`);
  const f = results.find((r) => r.id === "f"), g = results.find((r) => r.id === "g");
  if (f || g) {
    console.log(`\nTargets (issue 8): full chain ≤ 25 µs per 2 KB request with translation${f ? ` → (f) ${f1(f.perUnitUs.median)} µs (${f1(f.inWasmUs.median)} in wasm)` : ""}; ≤ 2 µs per streamed chunk${g ? ` → (g) ${f1(g.perUnitUs.median)} µs (${f1(g.inWasmUs.median)} in wasm)` : ""}.`);
  }
  console.log(`\nWhere the time goes (instrumented host, µs per ${results.some((r) => r.unit === "chunk") ? "unit; for streams, whole-stream work spread over its chunks" : "unit"}; median over rounds):`);
  for (const r of results) {
    console.log(`(${r.id}) in wasm by export: ${r.wasmByExport.slice(0, 5).map((e) => `${e.name} ${f1(e.usPerUnit)}`).join(", ")}`);
    console.log(`(${r.id}) in host functions: ${r.hostByImport.slice(0, 6).map((e) => `${e.name} ${f1(e.usPerUnit)} (${e.callsPerUnit.toFixed(1)}×)`).join(", ")}`);
  }
  mkdirSync(dirname(JSON_OUT), { recursive: true });
  writeFileSync(JSON_OUT, JSON.stringify({ date: new Date().toISOString(), machine: info, wasmDir: WASM_DIR, wasmSizes: sizes, method: { warmupUnits: WARMUP, rounds: ROUNDS, roundMs: ROUND_MS, clockIntervalNs: clockNs }, cases: results }, null, 2) + "\n");
  console.log(`\nwrote ${JSON_OUT}`);
  if (sink === 42) console.log("");
}

await main();
