// Gateway-added latency, side by side (issue 8, item 2):
//
//   node --import tsx scripts/bench/gateway.ts [--rounds 5] [--duration 2] [--concurrency 1,16,64]
//        [--modes plain,stream] [--warmup 1] [--paced-rounds 6] [--paced-concurrency 1,16,64]
//        [--setups direct,sluice,sluice-full,portkey] [--json bench-results/gateway.json]
//        [--envoy envoy/envoy.yaml] [--sluice-key sk-sluice-demo] [--watchdog SECONDS]
//   (npm run bench -- --gateway [options])
//
// Four setups in front of ONE mock provider (the OpenAI mock of scripts/mocks, zero delay,
// deterministic), each server a child process on 127.0.0.1:
//   direct       client → mock
//   sluice       client → local gateway (host/server.ts, envoy/envoy.yaml: key-auth + ai-proxy) → mock
//   sluice-full  the same with the whole rendered chain (key-auth, ai-router, ai-ratelimit with its
//                limits raised, ai-proxy): what users run
//   portkey  client → Portkey's open-source gateway (@portkey-ai/gateway, its own CLI, headers
//            x-portkey-provider: openai + x-portkey-custom-host: <mock>/v1) → mock
// The client is autocannon (in this process), at each concurrency, plain and streaming, with the
// same 2 KB OpenAI chat request as the filter benchmark. Per cell (concurrency × mode): a warm-up of
// every setup, then R rounds; in each round every setup runs D seconds, in an order that rotates
// from round to round, so load from other processes hits all setups alike. Latencies are taken
// from autocannon's per-response times (µs resolution; its own histogram rounds to whole ms).
// Added latency of a setup = its percentile − direct's in the same round; the table gives the
// median over rounds. Then a paced phase: the mock sends 64 chunks 20 ms apart and a node:http
// client measures the time to the first body byte and to the first token, and the gaps between
// tokens, per setup, interleaved the same way.
// Every loop is bounded (rounds × duration); the children exit with the IPC channel or after their
// lifetime; a watchdog ends the run.
import { fork, spawn, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execSync } from "node:child_process";
import autocannon from "autocannon";
import { openaiRequest2k } from "./fixtures.js";
import { gatewayTables } from "./report.js";
import { ROOT, checkArgs, opt } from "./cli.js";

process.chdir(ROOT);
const require = createRequire(import.meta.url);

// ------------------------------------------------------------------------------------------ args
const ROUNDS = Number(opt("--rounds", "5", "rounds per concurrency and mode"));
const DURATION_S = Number(opt("--duration", "2", "seconds per round"));
const WARMUP_S = Number(opt("--warmup", "1", "seconds of warm-up per setup"));
const CONCURRENCY = opt("--concurrency", "1,16,64", "concurrent connections, comma-separated").split(",").map(Number);
const MODES = opt("--modes", "plain,stream", "plain and/or stream").split(",") as Mode[];
const PACED_ROUNDS = Number(opt("--paced-rounds", "6", "rounds of the paced (slow provider) streams"));
const PACED_CONCURRENCY = opt("--paced-concurrency", "1,16,64", "concurrency of the paced streams, comma-separated").split(",").map(Number);
const SETUPS = opt("--setups", "direct,sluice,sluice-full,portkey", "direct, sluice, sluice-full and/or portkey").split(",") as SetupName[];
const JSON_OUT = opt("--json", "bench-results/gateway.json", "where the results go");
const ENVOY = opt("--envoy", "envoy/envoy.yaml", "the envoy.yaml the local gateway runs");
const SLUICE_KEY = opt("--sluice-key", "sk-sluice-demo", "the consumer key sent to Sluice");
const UPSTREAM_KEY = "sk-bench-upstream-0123456789";
const PACED = { chunks: 64, gapMs: 20 };
// Longest the whole run may take before the watchdog ends it (children included).
const WATCHDOG_S = Number(opt("--watchdog", String(300 + CONCURRENCY.length * MODES.length * (SETUPS.length * (WARMUP_S + ROUNDS * DURATION_S) + 10) + PACED_ROUNDS * SETUPS.length * 12), "seconds before the whole run is stopped"));
checkArgs(import.meta.url, "Gateway-added latency: the mock direct, Sluice's local gateway and Portkey's gateway side by side.");

type Mode = "plain" | "stream";
type SetupName = "direct" | "sluice" | "sluice-full" | "portkey";
interface Setup {
  name: SetupName;
  label: string;
  url: string;
  headers: Record<string, string>;
  child: ChildProcess | null;
}

// ------------------------------------------------------------------------------------- helpers
function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
function pct(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const r3 = (x: number) => Math.round(x * 1000) / 1000;

const children: ChildProcess[] = [];
function killChildren(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null && c.pid) try { process.kill(c.pid, "SIGTERM"); } catch { /* gone */ }
}
process.on("exit", killChildren);
const watchdog = setTimeout(() => {
  console.error(`gateway bench: watchdog (${WATCHDOG_S} s) — stopping`);
  killChildren();
  process.exit(4);
}, WATCHDOG_S * 1000);
watchdog.unref();

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** Forks scripts/bench/servers.ts in a mode; resolves with its ready message. */
function forkServer(mode: string, args: string[]): Promise<{ child: ChildProcess; ready: any }> {
  const child = fork(join(ROOT, "scripts/bench/servers.ts"), [mode, ...args, "--lifetime-s", String(WATCHDOG_S + 60)], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${mode} did not start within 60 s`)), 60_000);
    child.once("exit", (code) => reject(new Error(`${mode} exited (${code}) before it was ready`)));
    const onMsg = (m: any) => {
      if (m?.ready) {
        clearTimeout(t);
        child.off("message", onMsg);
        resolve({ child, ready: m });
      }
    };
    child.on("message", onMsg);
  });
}

function ask<T>(child: ChildProcess, msg: object, key: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ${key} answer`)), 10_000);
    const onMsg = (m: any) => {
      if (m && key in m) {
        clearTimeout(t);
        child.off("message", onMsg);
        resolve(m[key]);
      }
    };
    child.on("message", onMsg);
    child.send(msg);
  });
}

async function startPortkey(): Promise<{ child: ChildProcess; url: string; version: string }> {
  const pkgPath = require.resolve("@portkey-ai/gateway/package.json");
  const pkg = JSON.parse(readFileSync(pkgPath, "utf8"));
  const bin = join(dirname(pkgPath), typeof pkg.bin === "string" ? pkg.bin : Object.values(pkg.bin as Record<string, string>)[0]);
  const port = await freePort();
  // Its CLI: `--port=N`, `--headless` (no console UI). It listens on every interface; the preload
  // binds it to 127.0.0.1 and ends it with this process.
  let out = "";
  const child = spawn(process.execPath, ["--import", join(ROOT, "scripts/bench/portkey-preload.mjs"), bin, `--port=${port}`, "--headless"], {
    stdio: ["ignore", "pipe", "pipe", "ipc"],
    env: { ...process.env, BENCH_LIFETIME_S: String(WATCHDOG_S + 60) },
  });
  children.push(child);
  const keep = (b: Buffer) => void (out = (out + b.toString()).slice(-4000));
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 150; i++) {
    if (child.exitCode !== null) throw new Error(`Portkey exited (${child.exitCode}): ${out}`);
    try {
      const r = await fetch(url + "/");
      if (r.ok) return { child, url, version: pkg.version };
    } catch {
      /* not yet */
    }
    await sleep(200);
  }
  throw new Error(`Portkey did not answer on ${url} within 30 s: ${out}`);
}

// ----------------------------------------------------------------------------- process figures
/** utime + stime of a process, in µs (/proc/<pid>/stat, clock ticks). */
const TICK_US = 1e6 / Number(execSync("getconf CLK_TCK", { encoding: "utf8" }).trim() || 100);
function cpuUs(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * TICK_US;
  } catch {
    return 0;
  }
}
function rssMiB(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}
/** Machine CPU: busy and total jiffies over all cores (/proc/stat). */
function machineJiffies(): { busy: number; total: number } {
  const l = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = l[3] + (l[4] ?? 0);
  const total = l.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}
const NCPU = os.cpus().length;

/** Wraps a measured stretch: CPU used by the machine, by our processes, and by everyone else. */
function cpuWindow(pids: (number | undefined)[]) {
  const m0 = machineJiffies();
  const own0 = process.cpuUsage();
  const p0 = pids.map(cpuUs);
  const t0 = process.hrtime.bigint();
  return () => {
    const wallUs = Number(process.hrtime.bigint() - t0) / 1e3;
    const m1 = machineJiffies();
    const own = process.cpuUsage(own0);
    const p = pids.map((pid, i) => cpuUs(pid) - p0[i]);
    const machineCores = ((m1.busy - m0.busy) / Math.max(1, m1.total - m0.total)) * NCPU;
    const oursCores = (own.user + own.system + p.reduce((a, b) => a + b, 0)) / wallUs;
    return { wallUs, machineCores, oursCores, othersCores: Math.max(0, machineCores - oursCores), perPidUs: p, clientUs: own.user + own.system };
  };
}

// ------------------------------------------------------------------------------------ the load
interface RoundResult {
  setup: SetupName;
  round: number;
  count: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  max: number;
  /** CPU µs per request: the gateway process (0 for direct), the mock, the client. */
  gatewayCpuUs: number;
  mockCpuUs: number;
  clientCpuUs: number;
  othersCores: number;
  load1: number;
}

function cannon(s: Setup, body: string, connections: number, seconds: number): Promise<{ lat: number[]; non2xx: number; errors: number; timeouts: number; durationS: number }> {
  return new Promise((resolve, reject) => {
    const lat: number[] = [];
    let non2xx = 0;
    const t0 = process.hrtime.bigint();
    const inst = autocannon(
      {
        url: s.url + "/v1/chat/completions",
        method: "POST",
        headers: { "content-type": "application/json", ...s.headers },
        body,
        connections,
        pipelining: 1,
        duration: seconds,
        timeout: 10,
      },
      (err: Error | null, res: any) => {
        if (err) return reject(err);
        resolve({ lat, non2xx, errors: res.errors, timeouts: res.timeouts, durationS: Number(process.hrtime.bigint() - t0) / 1e9 });
      },
    );
    inst.on("response", (_client: unknown, status: number, _bytes: number, ms: number) => {
      if (status >= 200 && status < 300) lat.push(ms);
      else non2xx++;
    });
  });
}

async function cell(setups: Setup[], mock: ChildProcess, mode: Mode, c: number): Promise<RoundResult[]> {
  const body = openaiRequest2k("gpt-4o", mode === "stream");
  const out: RoundResult[] = [];
  for (const s of setups) await cannon(s, body, c, WARMUP_S);
  for (let r = 0; r < ROUNDS; r++) {
    for (let j = 0; j < setups.length; j++) {
      const s = setups[(j + r) % setups.length];
      const w = cpuWindow([s.child?.pid, mock.pid]);
      const res = await cannon(s, body, c, DURATION_S);
      const cpu = w();
      const sorted = res.lat.sort((a, b) => a - b);
      const n = sorted.length;
      out.push({
        setup: s.name, round: r, count: n, non2xx: res.non2xx, errors: res.errors, timeouts: res.timeouts,
        rps: n / res.durationS,
        p50: pct(sorted, 50), p90: pct(sorted, 90), p99: pct(sorted, 99),
        mean: sorted.reduce((a, b) => a + b, 0) / Math.max(1, n), max: sorted[n - 1] ?? NaN,
        gatewayCpuUs: s.child ? cpu.perPidUs[0] / Math.max(1, n) : 0,
        mockCpuUs: cpu.perPidUs[1] / Math.max(1, n),
        clientCpuUs: cpu.clientUs / Math.max(1, n),
        othersCores: cpu.othersCores,
        load1: os.loadavg()[0],
      });
      if (res.non2xx || res.errors) process.stderr.write(`\n  warning: ${s.name} ${mode} c=${c} round ${r}: ${res.non2xx} non-2xx, ${res.errors} errors`);
    }
  }
  return out;
}

interface CellSummary {
  mode: Mode;
  concurrency: number;
  setups: Record<string, {
    p50: number; p99: number; rps: number; mean: number;
    addedP50: number | null; addedP99: number | null;
    gatewayCpuUsPerReq: number; count: number; non2xx: number; errors: number;
  }>;
  othersCores: number;
  load1: number[];
}

function summarize(mode: Mode, c: number, rounds: RoundResult[]): CellSummary {
  const by = (n: SetupName) => rounds.filter((x) => x.setup === n);
  const direct = by("direct");
  const setups: CellSummary["setups"] = {};
  for (const name of SETUPS) {
    const rs = by(name);
    const paired = (k: "p50" | "p99") => direct.length && name !== "direct" ? median(rs.map((x) => x[k] - (direct.find((d) => d.round === x.round)?.[k] ?? NaN)).filter((v) => !Number.isNaN(v))) : null;
    setups[name] = {
      p50: median(rs.map((x) => x.p50)), p99: median(rs.map((x) => x.p99)), rps: median(rs.map((x) => x.rps)), mean: median(rs.map((x) => x.mean)),
      addedP50: paired("p50"), addedP99: paired("p99"),
      gatewayCpuUsPerReq: median(rs.map((x) => x.gatewayCpuUs)),
      count: rs.reduce((a, x) => a + x.count, 0), non2xx: rs.reduce((a, x) => a + x.non2xx, 0), errors: rs.reduce((a, x) => a + x.errors, 0),
    };
  }
  return { mode, concurrency: c, setups, othersCores: median(rounds.map((x) => x.othersCores)), load1: rounds.map((x) => r3(x.load1)) };
}

// ---------------------------------------------------------- paced stream: TTFB, TTFT and gaps
interface StreamTiming { headersMs: number; ttfbMs: number; ttftMs: number; totalMs: number; tokens: number; gaps: number[] }

/** The text a chunk carries (choices[0].delta.content), or "" (role-only, finish, usage, [DONE]). */
function tokenOf(event: string): string {
  const data = event.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
  if (!data || data === "[DONE]") return "";
  try {
    const c = JSON.parse(data)?.choices?.[0]?.delta?.content;
    return typeof c === "string" ? c : "";
  } catch {
    return "";
  }
}

/** One paced stream: time to response headers, to the first body byte, to the first token, and the
 * gaps between consecutive tokens (chunks with delta.content) as this client receives them. */
function pacedStream(s: Setup, body: string, agent: http.Agent): Promise<StreamTiming> {
  return new Promise((resolve, reject) => {
    const u = new URL(s.url + "/v1/chat/completions");
    const t0 = performance.now();
    let headersMs = NaN, ttfbMs = NaN, ttftMs = NaN, last = NaN, tokens = 0, buf = "";
    const gaps: number[] = [];
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), ...s.headers } }, (res) => {
      headersMs = performance.now() - t0;
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`${s.name}: paced stream answered ${res.statusCode}`));
      }
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        const now = performance.now();
        if (Number.isNaN(ttfbMs)) ttfbMs = now - t0;
        buf += d;
        let i: number;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const ev = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (!tokenOf(ev)) continue;
          if (tokens === 0) ttftMs = now - t0;
          else gaps.push(now - last);
          last = now;
          tokens++;
        }
      });
      res.on("end", () => resolve({ headersMs, ttfbMs, ttftMs, totalMs: performance.now() - t0, tokens, gaps }));
      res.on("error", reject);
    });
    req.setTimeout(15_000, () => req.destroy(new Error(`${s.name}: paced stream timed out`)));
    req.on("error", reject);
    req.end(body);
  });
}

interface PacedSummary {
  concurrency: number;
  setups: Record<string, {
    streams: number; tokens: number;
    ttfbP50: number; ttftP50: number; ttftP99: number; addedTtfbP50: number | null; addedTtftP50: number | null; addedTtftP99: number | null;
    gapP50: number; gapP99: number; addedGapP50: number | null; addedGapP99: number | null; totalP50: number;
  }>;
  othersCores: number;
}

async function paced(setups: Setup[], mock: ChildProcess): Promise<PacedSummary[]> {
  await ask(mock, { pace: "paced" }, "paced");
  const body = openaiRequest2k("gpt-4o", true);
  const results: PacedSummary[] = [];
  for (const c of PACED_CONCURRENCY) {
    const agents = new Map(setups.map((s) => [s.name, new http.Agent({ keepAlive: true, maxSockets: c })]));
    const timings = new Map<SetupName, StreamTiming[][]>(setups.map((s) => [s.name, []])); // per round
    const others: number[] = [];
    // warm-up: one batch each
    for (const s of setups) await Promise.all(Array.from({ length: c }, () => pacedStream(s, body, agents.get(s.name)!)));
    for (let r = 0; r < PACED_ROUNDS; r++) {
      for (let j = 0; j < setups.length; j++) {
        const s = setups[(j + r) % setups.length];
        const w = cpuWindow([s.child?.pid, mock.pid]);
        // c = 1: two streams one after the other; otherwise one batch of c streams at once.
        const batch: StreamTiming[] = [];
        for (let k = 0; k < (c === 1 ? 2 : 1); k++) batch.push(...(await Promise.all(Array.from({ length: c }, () => pacedStream(s, body, agents.get(s.name)!)))));
        others.push(w().othersCores);
        timings.get(s.name)!.push(batch);
      }
      process.stderr.write(".");
    }
    for (const a of agents.values()) a.destroy();
    const summary: PacedSummary = { concurrency: c, setups: {}, othersCores: median(others) };
    const roundStat = (name: SetupName, f: (ts: StreamTiming[]) => number[], p: number) => timings.get(name)!.map((ts) => pct(f(ts).sort((a, b) => a - b), p));
    const ttfb = (ts: StreamTiming[]) => ts.map((t) => t.ttfbMs);
    const ttft = (ts: StreamTiming[]) => ts.map((t) => t.ttftMs);
    const gaps = (ts: StreamTiming[]) => ts.flatMap((t) => t.gaps);
    for (const s of setups) {
      const all = timings.get(s.name)!.flat();
      if (all.some((t) => t.tokens !== PACED.chunks)) process.stderr.write(`\n  warning: ${s.name}: a paced stream had ${all.find((t) => t.tokens !== PACED.chunks)!.tokens} tokens, not ${PACED.chunks}`);
      const diff = (f: (ts: StreamTiming[]) => number[], p: number) => {
        if (s.name === "direct" || !timings.has("direct")) return null;
        const a = roundStat(s.name, f, p), d = roundStat("direct", f, p);
        return median(a.map((v, i) => v - d[i]));
      };
      summary.setups[s.name] = {
        streams: all.length,
        tokens: median(all.map((t) => t.tokens)),
        ttfbP50: median(roundStat(s.name, ttfb, 50)),
        ttftP50: median(roundStat(s.name, ttft, 50)), ttftP99: pct(ttft(all).sort((a, b) => a - b), 99),
        addedTtfbP50: diff(ttfb, 50), addedTtftP50: diff(ttft, 50), addedTtftP99: diff(ttft, 99),
        gapP50: median(roundStat(s.name, gaps, 50)), gapP99: median(roundStat(s.name, gaps, 99)),
        addedGapP50: diff(gaps, 50), addedGapP99: diff(gaps, 99),
        totalP50: median(all.map((t) => t.totalMs)),
      };
    }
    results.push(summary);
    process.stderr.write(` paced c=${c} done\n`);
  }
  await ask(mock, { pace: "fast" }, "paced");
  return results;
}

// ------------------------------------------------------------------------------- preflight
async function preflight(s: Setup): Promise<{ plainBytes: number; streamEvents: number; headers: string[] }> {
  const post = async (stream: boolean) => {
    const r = await fetch(s.url + "/v1/chat/completions", { method: "POST", headers: { "content-type": "application/json", ...s.headers }, body: openaiRequest2k("gpt-4o", stream) });
    return { status: r.status, headers: [...r.headers.keys()], text: await r.text() };
  };
  const p = await post(false);
  if (p.status !== 200) throw new Error(`${s.name}: plain request answered ${p.status}: ${p.text.slice(0, 300)}`);
  const j = JSON.parse(p.text);
  if (j.object !== "chat.completion" || !String(j.choices?.[0]?.message?.content ?? "").startsWith("Echo:")) throw new Error(`${s.name}: unexpected answer ${p.text.slice(0, 300)}`);
  const st = await post(true);
  if (st.status !== 200 || !st.text.trimEnd().endsWith("data: [DONE]")) throw new Error(`${s.name}: stream answered ${st.status}: ${st.text.slice(0, 300)}`);
  return { plainBytes: Buffer.byteLength(p.text), streamEvents: st.text.split("\n\n").filter((e) => e.includes("data:")).length, headers: p.headers };
}

// ---------------------------------------------------------------------------------------- main
function machine() {
  const cpus = os.cpus();
  let commit = "unknown";
  try {
    commit = execSync("git rev-parse --short HEAD", { encoding: "utf8" }).trim();
  } catch {
    /* not a checkout */
  }
  return { cpu: cpus[0]?.model ?? "unknown", cores: cpus.length, node: process.version, os: `${os.type()} ${os.release()} ${os.arch()}`, memoryGiB: Math.round(os.totalmem() / 2 ** 30), commit };
}

const f = (x: number | null | undefined, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? "—" : x.toFixed(d));

async function main(): Promise<void> {
  const started = new Date();
  const loadSamples: number[] = [];
  const loadTimer = setInterval(() => loadSamples.push(r3(os.loadavg()[0])), 5000);
  loadTimer.unref();
  loadSamples.push(r3(os.loadavg()[0]));
  const autocannonVersion = JSON.parse(readFileSync(require.resolve("autocannon/package.json"), "utf8")).version;

  process.stderr.write("gateway bench: starting the mock, the local gateway and Portkey on 127.0.0.1 ...\n");
  const mock = await forkServer("mock", ["--key", UPSTREAM_KEY]);
  const mockUrl: string = mock.ready.ready;
  const setups: Setup[] = [];
  let sluiceInfo: { filters: string[]; dropped: string[] } | null = null;
  let sluiceFullInfo: { filters: string[]; dropped: string[] } | null = null;
  let portkeyVersion = "";
  for (const name of SETUPS) {
    if (name === "direct") setups.push({ name, label: "client → mock", url: mockUrl, headers: { authorization: `Bearer ${UPSTREAM_KEY}` }, child: null });
    else if (name === "sluice") {
      const g = await forkServer("sluice", ["--upstream", mockUrl, "--key", UPSTREAM_KEY, "--envoy", ENVOY]);
      sluiceInfo = { filters: g.ready.filters, dropped: g.ready.dropped };
      setups.push({ name, label: "client → Sluice local gateway → mock", url: g.ready.ready, headers: { authorization: `Bearer ${SLUICE_KEY}` }, child: g.child });
    } else if (name === "sluice-full") {
      const g = await forkServer("sluice", ["--upstream", mockUrl, "--key", UPSTREAM_KEY, "--envoy", ENVOY, "--chain", "full"]);
      sluiceFullInfo = { filters: g.ready.filters, dropped: g.ready.dropped };
      setups.push({ name, label: "client → Sluice local gateway, whole chain → mock", url: g.ready.ready, headers: { authorization: `Bearer ${SLUICE_KEY}` }, child: g.child });
    } else if (name === "portkey") {
      const p = await startPortkey();
      portkeyVersion = p.version;
      setups.push({
        name, label: "client → Portkey gateway → mock", url: p.url, child: p.child,
        headers: { authorization: `Bearer ${UPSTREAM_KEY}`, "x-portkey-provider": "openai", "x-portkey-custom-host": `${mockUrl}/v1` },
      });
    }
  }
  const pre: Record<string, Awaited<ReturnType<typeof preflight>>> = {};
  for (const s of setups) pre[s.name] = await preflight(s);
  process.stderr.write(`  ${setups.map((s) => `${s.name} ${s.url}`).join(", ")}; mock ${mockUrl}\n`);

  const rssOf = () => Object.fromEntries(setups.filter((s) => s.child).map((s) => [s.name, r3(rssMiB(s.child!.pid))]));
  const sluiceChild = setups.find((s) => s.name === "sluice")?.child;
  const sluiceStats = async () => (sluiceChild ? await ask<any>(sluiceChild, { stats: true }, "stats") : null);
  const memory: { at: string; rssMiB: Record<string, number>; sluice: any }[] = [];
  memory.push({ at: "after start", rssMiB: rssOf(), sluice: await sluiceStats() });

  // A global warm-up: every setup, both modes, at the middle concurrency (JIT, connection pools),
  // then briefly at the highest, so each VM's linear memory (which never shrinks) has met the
  // run's peak concurrency: "flat after warm-up" then means no growth per request.
  const peak = Math.max(...CONCURRENCY);
  for (const s of setups) for (const m of MODES) {
    await cannon(s, openaiRequest2k("gpt-4o", m === "stream"), 16, 2);
    if (peak > 16) await cannon(s, openaiRequest2k("gpt-4o", m === "stream"), peak, 1);
  }
  memory.push({ at: "after warm-up", rssMiB: rssOf(), sluice: await sluiceStats() });

  const cells: CellSummary[] = [];
  const rounds: Record<string, RoundResult[]> = {};
  for (const mode of MODES) {
    for (const c of CONCURRENCY) {
      process.stderr.write(`  ${mode} c=${c} ...`);
      const rs = await cell(setups, mock.child, mode, c);
      rounds[`${mode}-${c}`] = rs;
      const sum = summarize(mode, c, rs);
      cells.push(sum);
      memory.push({ at: `after ${mode} c=${c}`, rssMiB: rssOf(), sluice: await sluiceStats() });
      process.stderr.write(` ${SETUPS.filter((n) => n !== "direct").map((n) => `${n} +${f(sum.setups[n].addedP50)}/+${f(sum.setups[n].addedP99)} ms`).join(", ")}\n`);
    }
  }
  process.stderr.write(`  paced streams (${PACED.chunks} chunks, ${PACED.gapMs} ms apart) `);
  const pacedResults = await paced(setups, mock.child);
  memory.push({ at: "end", rssMiB: rssOf(), sluice: await sluiceStats() });
  loadSamples.push(r3(os.loadavg()[0]));

  const result = {
    date: started.toISOString(),
    finished: new Date().toISOString(),
    machine: machine(),
    loadAverage1m: { samples: loadSamples, min: Math.min(...loadSamples), median: median(loadSamples), max: Math.max(...loadSamples) },
    method: { rounds: ROUNDS, durationS: DURATION_S, warmupS: WARMUP_S, concurrency: CONCURRENCY, modes: MODES, pacedRounds: PACED_ROUNDS, pacedConcurrency: PACED_CONCURRENCY, paced: PACED },
    tools: { autocannon: autocannonVersion, portkey: portkeyVersion, node: process.version },
    setups: setups.map((s) => ({ name: s.name, label: s.label, headers: Object.keys(s.headers), answer: pre[s.name] })),
    sluice: sluiceInfo,
    sluiceFull: sluiceFullInfo,
    cells,
    paced: pacedResults,
    memory,
    rounds,
  };
  mkdirSync(dirname(JSON_OUT), { recursive: true });
  writeFileSync(JSON_OUT, JSON.stringify(result, null, 2) + "\n");
  console.log(gatewayTables(result));
  console.log(`\nwrote ${JSON_OUT}`);
  for (const c of setups) c.child?.disconnect?.();
  killChildren();
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  await main().catch((e) => {
    console.error(e);
    killChildren();
    process.exit(1);
  });
  process.exit(0);
}
