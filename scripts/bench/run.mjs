#!/usr/bin/env node
// npm run bench [-- options]: Sluice's benchmarks (issue 8).
//
//   npm run bench                      everything, then the report: (1) filter cost in-process
//                                      (scripts/bench/filters.ts), (2) memory over 100,000 requests
//                                      (scripts/bench/memory.ts, twice: default V8 flags and the young
//                                      generation pre-sized), (3) gateway-added latency: mock direct,
//                                      Sluice's local gateway and Portkey's gateway side by side
//                                      (scripts/bench/gateway.ts, about 6 minutes), then BENCHMARKS.md
//                                      and docs/bench/added-latency.svg (scripts/bench/report.ts).
//                                      JSON of every part in bench-results/ (not committed).
//   npm run bench -- --filters [opts]  part 1 only (also: any filter option without a part flag)
//   npm run bench -- --gateway [opts]  part 2 only: --rounds 5 --duration 2 --concurrency 1,16,64
//                                      --modes plain,stream --paced-rounds 6 --paced-concurrency 1,16,64
//   npm run bench -- --memory [opts]   part 3 only: --requests 100000 --every 5000 --warmup 10000
//   npm run bench -- --soak [opts]     part 4 only: the soak (scripts/bench/soak.ts): a mixed hostile
//                                      workload through the local gateway (plain, streamed, translated,
//                                      256 KB prompts, bursts of 256, long streams, hang-ups) for
//                                      --seconds 60, RSS, V8 heap and pages after every round
//   npm run bench -- --long-stream     part 5 only: CPU per streamed chunk through the local gateway
//                                      for streams of 50, 2,000 and 8,000 chunks (scripts/bench/
//                                      long-stream.ts; --host DIR measures another checkout's host/)
//   npm run bench -- --report          rewrite BENCHMARKS.md's generated blocks and the chart from the
//                                      JSON files in bench-results/ (no measuring)
//   Parts run alone leave BENCHMARKS.md as it is (add --report to rewrite it).
//
// Filter options (part 1):
//   npm run bench -- --only b,f        some cases (a b c d e f g)
//   npm run bench -- --rounds 30 --warmup 2000 --round-ms 25
//   npm run bench -- --ab build,/tmp/other-build [--ab-wasm]   the same cases on several builds, rounds
//                                      interleaved (A/B a change under the same load)
//   npm run bench -- --no-build        use build/ as it is (any part)
//   npm run bench -- --profile [--case b] [--seconds 5]
//       builds named (--debug) copies of the filters into bench-results/named/, runs one case under
//       node --cpu-prof, writes bench-results/filters-<case>.cpuprofile (open it in Chrome DevTools
//       or speedscope) and prints the hottest functions of the measured window, wasm and JS.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { useSmallBlocks } from "../asc-runtime.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const args = process.argv.slice(2);

// Every flag of every part, declared for node's util.parseArgs so a typo is refused with the usage
// text (the part's own script checks that its flags are its own: scripts/bench/cli.ts checkArgs).
const USAGE = `usage: npm run bench -- [part] [options]
With no part and no option: every part, then BENCHMARKS.md and docs/bench/added-latency.svg.
Results as JSON in bench-results/. A part run alone leaves BENCHMARKS.md as it is (add --report).

parts:
  --filters           filter cost in-process (also: any filter option without a part flag)
  --gateway           gateway-added latency: mock direct, Sluice's local gateway, Portkey's gateway
  --memory            memory over 100,000 requests (default V8 flags, then the young generation pre-sized)
  --soak              a mixed hostile workload through the local gateway, memory after every round
  --long-stream       CPU per streamed chunk for streams of 50, 2,000 and 8,000 chunks
  --report            rewrite BENCHMARKS.md's generated blocks and the chart from bench-results/

any part:
  --no-build          use build/ as it is
  --json <file>       where the part's results go

--filters:  --only <a,b,..> (cases a-g)  --rounds <n> (30)  --warmup <n> (2000)  --round-ms <ms> (25)
            --ab <dir,dir,..> (the same cases on several builds, rounds interleaved)  --wasm-dir <dir> (build)
            --ab-wasm (with --ab: the time inside the modules, as the targets are set, not the total)
            --profile [--case <c> (b)] [--seconds <s> (5)]: one case under node --cpu-prof on a named
            build, writes bench-results/filters-<case>.cpuprofile and prints the hottest functions
--gateway:  --rounds <n> (5)  --duration <s> (2)  --warmup <s> (1)  --concurrency <n,n,..> (1,16,64)
            --modes plain,stream  --paced-rounds <n> (6)  --paced-concurrency <n,..> (1,16,64)
            --setups direct,sluice,portkey  --envoy <file>  --sluice-key <key>  --watchdog <s>
--memory:   --requests <n> (100000)  --every <n> (5000)  --warmup <n> (10000)  --wasm-dir <dir>  --no-gc-each
--soak:     --seconds <s> (60)
--long-stream: --host <dir> (another checkout's host/, for an A/B)
  -h, --help          this text`;
const FLAGS = {
  ...Object.fromEntries(["filters", "gateway", "memory", "soak", "long-stream", "report", "no-build", "profile", "no-gc-each", "ab-wasm", "help"].map((f) => [f, { type: "boolean" }])),
  ...Object.fromEntries(
    ["json", "only", "rounds", "warmup", "round-ms", "ab", "wasm-dir", "case", "seconds", "duration", "concurrency", "modes", "paced-rounds", "paced-concurrency", "setups", "envoy", "sluice-key", "watchdog", "requests", "every", "host"].map((f) => [f, { type: "string" }]),
  ),
};
try {
  if (parseArgs({ args, options: { ...FLAGS, help: { type: "boolean", short: "h" } }, strict: true }).values.help) {
    console.log(USAGE);
    process.exit(0);
  }
} catch (e) {
  console.error(`bench: ${e.message}\n\n${USAGE}`);
  process.exit(2);
}
const has = (f) => args.includes(f);
function take(name, def) {
  const i = args.indexOf(name);
  if (i < 0) return def;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
}
const PARTS = ["--filters", "--gateway", "--memory", "--soak", "--long-stream", "--report"];
const chosen = PARTS.filter(has);
for (const p of PARTS) while (args.includes(p)) args.splice(args.indexOf(p), 1);
// No part named: everything when there are no other options, else (as before) the filter benchmark.
const all = chosen.length === 0 && args.filter((a) => a !== "--no-build").length === 0;
const doFilters = all || chosen.includes("--filters") || (chosen.length === 0 && !all);
const doGateway = all || chosen.includes("--gateway");
const doMemory = all || chosen.includes("--memory");
const doSoak = all || chosen.includes("--soak");
const doLongStream = all || chosen.includes("--long-stream");
const doReport = all || chosen.includes("--report");
const profile = has("--profile");
const noBuild = has("--no-build");
// --case and --seconds are --profile's; without it, --seconds is the soak's and passes through.
const profCase = take("--case", "b");
const profSeconds = profile ? take("--seconds", "5") : "5";
const passThrough = args.filter((a) => a !== "--profile" && a !== "--no-build");

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { cwd: root, stdio: "inherit", ...opts });
  if (r.status !== 0) process.exit(r.status ?? 1);
  return r;
}

// Only the filters measured: a half-finished other filter must not stop the benchmark.
if (!noBuild) run(process.execPath, ["scripts/build.mjs", "--if-needed", "ai-proxy", "key-auth"], { stdio: ["inherit", "ignore", "inherit"] });
// The size table lists every module: bring the others up to date too, but a filter that does not
// build right now only leaves its older .wasm in the table.
if (!noBuild && (doMemory || doSoak)) {
  const r = spawnSync(process.execPath, ["scripts/build.mjs", "--if-needed"], { cwd: root, stdio: ["inherit", "ignore", "ignore"] });
  if (r.status !== 0) console.error("bench: building every filter failed; the size table lists the .wasm files build/ has");
}

if (!profile) {
  const tsx = (file, argv, node = []) => run(process.execPath, [...node, "--import", "tsx", file, ...argv]);
  // Filter cost last in a full run: the newest build and the quietest moment of the run.
  if (doMemory) {
    tsx("scripts/bench/memory.ts", chosen.includes("--memory") ? passThrough : [], ["--expose-gc"]);
    tsx("scripts/bench/memory.ts", [...(chosen.includes("--memory") ? passThrough : []), "--json", "bench-results/memory-young16.json"], ["--expose-gc", "--min-semi-space-size=16", "--max-semi-space-size=16"]);
  }
  if (doSoak) tsx("scripts/bench/soak.ts", chosen.includes("--soak") ? passThrough : []);
  if (doLongStream) tsx("scripts/bench/long-stream.ts", chosen.includes("--long-stream") ? passThrough : []);
  if (doGateway) tsx("scripts/bench/gateway.ts", chosen.includes("--gateway") ? passThrough : []);
  if (doFilters) tsx("scripts/bench/filters.ts", all ? [] : passThrough);
  if (doReport) tsx("scripts/bench/report.ts", []);
  process.exit(0);
}

// ------------------------------------------------------------------------------------ --profile
const out = join(root, "bench-results");
const named = join(out, "named");
mkdirSync(named, { recursive: true });
const ascModule = await import("assemblyscript/asc");
useSmallBlocks(ascModule); // the runtime the shipped modules are built with (scripts/asc-runtime.mjs)
const asc = ascModule.default;
// Every filter, so any case can be profiled (it was ai-proxy and key-auth only: the guard and mcp cases failed).
for (const name of readdirSync(join(root, "assembly", "filters"))) {
  const entry = `assembly/filters/${name}/index.ts`;
  const target = join(named, `${name}.wasm`);
  const newest = Math.max(...["assembly", "patches"].map((d) => newestMtime(join(root, d))), ...["asconfig.json", "scripts/asc-runtime.mjs"].map((f) => statSync(join(root, f)).mtimeMs));
  if (existsSync(target) && statSync(target).mtimeMs >= newest) continue;
  // The release build with a name section: V8's profiler then shows AssemblyScript function names.
  const { error } = await asc.main([entry, "--config", "asconfig.json", "--target", "release", "--debug", "-o", relative(root, target)], { stdout: process.stdout, stderr: process.stderr });
  if (error) {
    console.error(`bench: named build of ${name} failed: ${error.message}`);
    process.exit(1);
  }
}
const profName = `filters-${profCase}.cpuprofile`;
const windowFile = join(out, "profile-window.json");
run(process.execPath, [
  "--cpu-prof", "--cpu-prof-dir", out, "--cpu-prof-name", profName, "--cpu-prof-interval", "50",
  "--import", "tsx", "scripts/bench/filters.ts", "--only", profCase, "--profile-run", profSeconds,
  "--wasm-dir", relative(root, named), "--profile-window", relative(root, windowFile), ...passThrough,
]);
summarize(join(out, profName), JSON.parse(readFileSync(windowFile, "utf8")));

function newestMtime(dir) {
  let newest = 0;
  if (!existsSync(dir)) return 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** What a sampled frame is: host JS, Node/V8, or which part of the .wasm (AssemblyScript runtime or our code). */
function group(cf) {
  const f = cf.functionName, u = cf.url;
  if (!u.startsWith("wasm://")) {
    if (u.includes("/host/")) return "host (TypeScript)";
    if (u.includes("/scripts/bench/")) return "bench driver";
    if (f.startsWith("(")) return f;
    return "node/V8 (Buffer, strings, builtins)";
  }
  if (/~lib\/rt\/itcms|~lib\/rt\/__visit|__visit|__link/.test(f)) return "wasm: AS GC (itcms marking, barriers, sweep)";
  if (/~lib\/rt\/tlsf|~lib\/rt\/tcms|__alloc|__free|__new|__renew/.test(f)) return "wasm: AS allocator (tlsf, __new)";
  if (/stack_check/.test(f)) return "wasm: AS shadow stack (~stack_check)";
  if (/~lib\/string|~lib\/util\/string|~lib\/util\/number/.test(f)) return "wasm: AS strings (UTF-8 decode/encode, concat, join, ==, itoa)";
  if (/~lib\//.test(f)) return "wasm: AS std (arrays, maps, memcpy)";
  if (/lib\/json/.test(f)) return "wasm: lib/json (parser, ByteBuilder)";
  if (/^wasm-function/.test(f)) return "wasm: unnamed";
  return "wasm: filters, providers, lib (other)";
}

/** Self and inclusive time over the measured window: by kind, hottest functions, hottest of our own code. */
function summarize(file, win) {
  const prof = JSON.parse(readFileSync(file, "utf8"));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map();
  const incl = new Map();
  const kinds = new Map();
  let t = prof.startTime;
  let total = 0;
  const label = (cf) => {
    const wasm = cf.url.startsWith("wasm://");
    const where = wasm ? "" : cf.url.replace(/^file:\/\//, "").replace(root + "/", "");
    return `${wasm ? "wasm" : "js"}\t${cf.functionName || "(anonymous)"}\t${where}`;
  };
  for (let i = 0; i < prof.samples.length; i++) {
    t += prof.timeDeltas[i];
    if (t < win.startUs || t > win.endUs) continue;
    const dt = i + 1 < prof.timeDeltas.length ? Math.max(0, prof.timeDeltas[i + 1]) : 0;
    const leaf = byId.get(prof.samples[i]).callFrame;
    self.set(label(leaf), (self.get(label(leaf)) ?? 0) + dt);
    kinds.set(group(leaf), (kinds.get(group(leaf)) ?? 0) + dt);
    const seen = new Set();
    for (let id = prof.samples[i]; id !== undefined; id = parent.get(id)) {
      const cf = byId.get(id).callFrame;
      if (!cf.url.startsWith("wasm://") || !/^assembly\//.test(cf.functionName)) continue;
      if (seen.has(cf.functionName)) continue;
      seen.add(cf.functionName);
      incl.set(cf.functionName, (incl.get(cf.functionName) ?? 0) + dt);
    }
    total += dt;
  }
  if (!total) {
    console.log("profile: no samples in the measured window");
    return;
  }
  const pct = (v) => ((100 * v) / total).toFixed(1).padStart(5) + "%";
  console.log(`\nprofile ${relative(root, file)}: case (${win.case}) ${win.title}; ${(total / 1e6).toFixed(2)} s sampled in the measured window, ${win.iterations} iterations (${win.usPerUnit.toFixed(1)} µs each under the profiler)`);
  console.log(`\nself time by kind:`);
  for (const [k, v] of [...kinds].sort((a, b) => b[1] - a[1])) console.log(`${pct(v)}  ${k}`);
  console.log(`\nhottest functions (self time):`);
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) {
    const [kind, fn, where] = k.split("\t");
    console.log(`${pct(v)}  ${kind.padEnd(4)} ${fn}${where ? "  " + where : ""}`);
  }
  console.log(`\nour wasm code, inclusive time (callees included; AS runtime work lands in whoever allocates):`);
  for (const [k, v] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`${pct(v)}  ${k}`);
}
