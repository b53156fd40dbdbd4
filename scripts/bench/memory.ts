// Memory and size (issue 8, item 3):
//
//   node --expose-gc --import tsx scripts/bench/memory.ts [--requests 100000] [--every 5000]
//        [--warmup 10000] [--json bench-results/memory.json]
//   (npm run bench -- --memory [options])
//
// 100,000 requests through the chain key-auth + ai-proxy, in-process through the host (one VM per
// filter, as one Envoy worker), cycling through four kinds so every path that allocates is taken:
//   1. a 2 KB OpenAI chat request passed through to an OpenAI instance, 1 KB answer
//   2. the same to an Anthropic instance, translated both ways
//   3. a streamed Anthropic answer of 20 content deltas translated to OpenAI chunks
//   4. a wrong API key: key-auth's 401 local reply
// Every --every requests: the process RSS, V8 heap used, external and ArrayBuffer memory, and each
// VM's linear-memory pages. "Flat" is judged after --warmup requests: linear memory must not grow
// at all; RSS and heap are fitted with a line (least squares), growth per 10,000 requests reported.
// The host logs at "info", as the local gateway does (its log store is part of what is measured).
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import v8 from "node:v8";
import os from "node:os";
import { dirname, join } from "node:path";
import { execSync } from "node:child_process";
import { Host, type Stream } from "../../host/index.js";
import { anthropicAnswer, anthropicStream, openaiAnswer, openaiRequest2k } from "./fixtures.js";
import { ROOT, checkArgs, flag, opt } from "./cli.js";

process.chdir(ROOT);
const REQUESTS = Number(opt("--requests", "100000", "requests through the filters"));
const EVERY = Number(opt("--every", "5000", "requests between samples"));
const WARMUP = Number(opt("--warmup", "10000", "requests before the first sample"));
const WASM_DIR = opt("--wasm-dir", "build", "where the .wasm files are");
const JSON_OUT = opt("--json", "bench-results/memory.json", "where the results go");
const gc = (globalThis as { gc?: () => void }).gc;
// A full GC before every sample (default): the V8 heap figure is then what is still referenced,
// not where the collector happened to be; --no-gc-each samples as the process runs.
const GC_EACH = !flag("--no-gc-each", "sample as the process runs, without a full GC before each sample");
checkArgs(import.meta.url, "Memory over many requests through key-auth and ai-proxy (run with node --expose-gc).");

const FILTERS = ["key-auth", "ai-proxy"];
const host = await Host.create({
  filters: [
    { name: "key-auth", wasm: join(WASM_DIR, "key-auth.wasm"), configuration: { consumers: [{ name: "c", keys: ["key-1"] }] } },
    {
      name: "ai-proxy",
      wasm: join(WASM_DIR, "ai-proxy.wasm"),
      configuration: {
        instances: [
          { name: "oa", provider: "openai", api_key: "k", models: ["gpt-*"] },
          { name: "cl", provider: "anthropic", api_key: "k", models: ["claude-*"] },
        ],
      },
      allowOnHeadersStopIteration: true,
    },
  ],
  logLevel: "info",
});

const REQ_HEADERS = (key: string) => ({
  ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gateway.local", ":scheme": "https",
  "content-type": "application/json", "user-agent": "OpenAI/JS 6.49.0", authorization: `Bearer ${key}`,
});
const JSON_RESP = { ":status": "200", "content-type": "application/json" };
const SSE_RESP = { ":status": "200", "content-type": "text/event-stream; charset=utf-8" };
const reqOpenAI = Buffer.from(openaiRequest2k("gpt-4o"));
const reqClaude = Buffer.from(openaiRequest2k("claude-sonnet-4-5"));
const reqClaudeStream = Buffer.from(openaiRequest2k("claude-sonnet-4-5", true));
const ansOpenAI = Buffer.from(openaiAnswer("gpt-4o"));
const ansClaude = Buffer.from(anthropicAnswer("claude-sonnet-4-5"));
const ev = anthropicStream("claude-sonnet-4-5", 20);
const streamEvents = [...ev.head, ...ev.deltas, ...ev.tail].map((e) => Buffer.from(e));

function fail(msg: string): never {
  throw new Error(`memory bench: ${msg}`);
}

function one(i: number): void {
  const kind = i % 4;
  const s: Stream = host.newStream();
  if (kind === 3) {
    s.callOnRequestHeaders(REQ_HEADERS("wrong-key"), false);
    if (s.getSentLocalResponse()?.statusCode !== 401) fail(`request ${i}: no 401 for a wrong key`);
    s.completeHttpContext();
    return;
  }
  s.callOnRequestHeaders(REQ_HEADERS("key-1"), false);
  if (kind === 2) {
    s.callOnRequestBody(reqClaudeStream, true);
    s.callOnResponseHeaders(SSE_RESP, false);
    for (let k = 0; k < streamEvents.length; k++) {
      s.callOnResponseBody(streamEvents[k], k === streamEvents.length - 1);
      s.downstream.body = Buffer.alloc(0); // the client reads as it goes (Envoy's codec drains)
    }
  } else {
    s.callOnRequestBody(kind === 0 ? reqOpenAI : reqClaude, true);
    s.callOnResponseHeaders(JSON_RESP, false);
    s.callOnResponseBody(kind === 0 ? ansOpenAI : ansClaude, true);
  }
  if (s.getSentLocalResponse()) fail(`request ${i}: local reply ${s.getSentLocalResponse()!.statusCode}`);
  if (!s.downstream.ended) fail(`request ${i}: the answer did not end`);
  s.completeHttpContext();
}

interface Sample { requests: number; rssMiB: number; rssAnonMiB: number; v8CommittedMiB: number; codeSpaceMiB: number; heapUsedMiB: number; externalMiB: number; arrayBuffersMiB: number; pages: Record<string, number>; hostLogEntries: number; histogramSamples: number; seconds: number }
const MiB = 1024 * 1024;
const t0 = process.hrtime.bigint();
function sample(requests: number, forceGc = false): Sample {
  if (forceGc && gc) gc();
  const m = process.memoryUsage();
  const pages: Record<string, number> = {};
  for (const f of FILTERS) pages[f] = host.memoryPages(f);
  const status = readFileSync("/proc/self/status", "utf8");
  const anon = /RssAnon:\s+(\d+) kB/.exec(status);
  const heap = v8.getHeapStatistics();
  const code = v8.getHeapSpaceStatistics().find((x) => x.space_name === "code_space");
  return {
    requests, rssMiB: m.rss / MiB, rssAnonMiB: anon ? Number(anon[1]) / 1024 : NaN,
    v8CommittedMiB: heap.total_physical_size / MiB, codeSpaceMiB: (code?.physical_space_size ?? 0) / MiB, heapUsedMiB: m.heapUsed / MiB, externalMiB: m.external / MiB, arrayBuffersMiB: m.arrayBuffers / MiB, pages,
    hostLogEntries: host.getLogEntries().length,
    // histogram samples the host's stats store keeps (getMetric(name).samples)
    histogramSamples: host.metrics.all().reduce((n, m) => n + (m.type === "histogram" ? m.samples.length : 0), 0),
    seconds: Number(process.hrtime.bigint() - t0) / 1e9,
  };
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n, my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0, den = 0;
  for (let i = 0; i < n; i++) (num += (xs[i] - mx) * (ys[i] - my)), (den += (xs[i] - mx) ** 2);
  return den ? num / den : 0;
}

const samples: Sample[] = [];
const before = sample(0, true);
samples.push(before);
process.stderr.write(`memory bench: ${REQUESTS} requests (pass-through, translated, streamed 20 chunks, 401), a sample every ${EVERY} `);
const deadline = Date.now() + 20 * 60_000; // bounded in time as well as in count
for (let i = 0; i < REQUESTS; i++) {
  one(i);
  if ((i + 1) % EVERY === 0) {
    samples.push(sample(i + 1, GC_EACH));
    process.stderr.write(".");
    if (Date.now() > deadline) fail(`over 20 minutes after ${i + 1} requests`);
  }
}
const after = sample(REQUESTS, true);
process.stderr.write(" done\n");
const bad = host.getLogEntries().filter((e) => e.level === "error" || e.level === "critical");
if (bad.length) fail(`${bad[0].filter}: ${bad[0].message}`);
host.close();

const steady = samples.filter((s) => s.requests >= WARMUP);
const xs = steady.map((s) => s.requests / 10_000);
const pagesGrowth: Record<string, number> = {};
for (const f of FILTERS) pagesGrowth[f] = steady[steady.length - 1].pages[f] - steady[0].pages[f];
const wasmSizes: Record<string, number> = {};
for (const f of readdirSync(WASM_DIR).filter((x) => x.endsWith(".wasm")).sort()) wasmSizes[f] = statSync(join(WASM_DIR, f)).size;
let commit = "unknown";
try {
  commit = execSync("git rev-parse --short HEAD", { encoding: "utf8" }).trim();
} catch {
  /* not a checkout */
}
const result = {
  date: new Date().toISOString(),
  machine: { cpu: os.cpus()[0]?.model ?? "unknown", cores: os.cpus().length, node: process.version, commit, loadAverage1m: Number(os.loadavg()[0].toFixed(2)) },
  requests: REQUESTS, every: EVERY, warmup: WARMUP, forcedGc: !!gc, gcEach: GC_EACH && !!gc, execArgv: process.execArgv.filter((a) => !a.includes("tsx") && a !== "--import"),
  before, after, samples,
  steady: {
    from: steady[0].requests,
    pagesGrowth,
    rssMiBPer10k: slope(xs, steady.map((s) => s.rssMiB)),
    heapUsedMiBPer10k: slope(xs, steady.map((s) => s.heapUsedMiB)),
    rssRangeMiB: [Math.min(...steady.map((s) => s.rssMiB)), Math.max(...steady.map((s) => s.rssMiB))],
    hostLogEntries: after.hostLogEntries,
    histogramSamples: after.histogramSamples,
    heapUsedMiB: [steady[0].heapUsedMiB, steady[steady.length - 1].heapUsedMiB],
  },
  wasmSizes,
  wasmDir: WASM_DIR,
};
mkdirSync(dirname(JSON_OUT), { recursive: true });
writeFileSync(JSON_OUT, JSON.stringify(result, null, 2) + "\n");
const { memoryTables } = await import("./report.js");
console.log(memoryTables(result));
console.log(`\nwrote ${JSON_OUT}`);
