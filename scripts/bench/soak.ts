// Soak: a long mixed hostile workload through `npm start`'s local gateway (issue 13, item 6), to show
// that memory is given back. The gateway runs in a child process (scripts/bench/soak-gateway.ts) with
// mock providers on loopback; this process is the clients. Rounds of, in turn:
//   plain      OpenAI chat, answered by the OpenAI mock
//   stream     the same, streamed
//   translated an OpenAI client asking for a Claude model (Anthropic mock), plain and streamed
//   big        256 KB prompts to model "auto" (ai-router classifies them, ai-proxy sends them on)
//   burst      256 requests at once
//   long       streams of 400 chunks
//   hangup     clients that hang up in the middle of a stream
// After each round the child's RSS, V8 heap and every filter's linear-memory pages are sampled
// (after a full GC). Bounded: --seconds of traffic at most (default 60), loopback only.
//
//   node --import tsx scripts/bench/soak.ts [--seconds 60] [--json bench-results/soak.json]
//   (npm run bench -- --soak [--seconds N])
import { fork } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import http from "node:http";
import { dirname, join } from "node:path";
import { ROOT, checkArgs, opt } from "./cli.js";

process.chdir(ROOT);
const SECONDS = Number(opt("--seconds", "60", "how long the soak runs"));
const JSON_OUT = opt("--json", "bench-results/soak.json", "where the results go");
checkArgs(import.meta.url, "The soak: a mixed hostile workload through the local gateway, memory after every round.");
const KEY = "sk-sluice-demo";

interface Sample { t: number; round: number; requests: number; rss: number; heapUsed: number; external: number; arrayBuffers: number; pages: Record<string, number>; held: { logEntries: number; mockRequests: number } }

const child = fork(join(ROOT, "scripts/bench/soak-gateway.ts"), ["gateway.yaml"], { execArgv: ["--expose-gc", "--import", "tsx"], stdio: ["ignore", "ignore", "inherit", "ipc"] });
const ready = await new Promise<{ url: string; filters: string[] }>((resolve, reject) => {
  child.once("message", (m: any) => (m.type === "ready" ? resolve(m) : reject(new Error(String(m)))));
  child.once("exit", (c) => reject(new Error(`gateway exited (${c})`)));
});
const url = new URL(ready.url);
const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });

function sample(): Promise<Omit<Sample, "t" | "round" | "requests">> {
  return new Promise((resolve) => {
    child.once("message", (m: any) => resolve(m));
    child.send({ type: "sample" });
  });
}

/** One request; resolves with the status (0: hung up on purpose or failed). hangUpAfter: bytes read
 * before this client closes the connection. */
function request(path: string, body: unknown, headers: Record<string, string> = {}, hangUpAfter = 0): Promise<number> {
  const data = Buffer.from(JSON.stringify(body));
  return new Promise((resolve) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path, method: "POST", agent: hangUpAfter ? false : agent, headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json", "content-length": String(data.length), ...headers } },
      (res) => {
        let got = 0;
        res.on("data", (c: Buffer) => {
          got += c.length;
          if (hangUpAfter && got >= hangUpAfter) {
            req.destroy();
            resolve(0);
          }
        });
        res.on("end", () => resolve(res.statusCode ?? 0));
        res.on("error", () => resolve(0));
      },
    );
    req.on("error", () => resolve(0));
    req.end(data);
  });
}

const chat = (model: string, content: string, stream = false) => ({ model, messages: [{ role: "user", content }], ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}) });
const big = "Summarise the following notes. " + "lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(Math.ceil((256 * 1024) / 57));

const kinds: [string, () => Promise<number>[]][] = [
  ["plain", () => Array.from({ length: 64 }, (_, i) => request("/v1/chat/completions", chat("gpt-4o", `plain ${i}`)))],
  ["stream", () => Array.from({ length: 64 }, (_, i) => request("/v1/chat/completions", chat("gpt-4o", `stream ${i} a b c d e f`, true)))],
  ["translated", () => Array.from({ length: 64 }, (_, i) => request("/v1/chat/completions", chat("claude-sonnet-4-5", `translated ${i} a b c`, i % 2 === 0)))],
  ["big", () => Array.from({ length: 16 }, () => request("/v1/chat/completions", chat("auto", big)))],
  ["burst", () => Array.from({ length: 256 }, (_, i) => request("/v1/chat/completions", chat(i % 2 ? "gpt-4o" : "claude-sonnet-4-5", `burst ${i}`, i % 3 === 0)))],
  ["long", () => Array.from({ length: 16 }, () => request("/v1/chat/completions", chat("gpt-4o", "long", true), { "x-mock-chunks": "400" }))],
  ["hangup", () => Array.from({ length: 64 }, (_, i) => request("/v1/chat/completions", chat(i % 2 ? "gpt-4o" : "claude-sonnet-4-5", "hang up on me a b c d e f g h", true), { "x-mock-inter-chunk-delay-ms": "5" }, 200))],
];

const samples: Sample[] = [];
const t0 = Date.now();
let requests = 0;
let failures = 0;
samples.push({ t: 0, round: 0, requests: 0, ...(await sample()) });
let round = 0;
while (Date.now() - t0 < SECONDS * 1000) {
  round++;
  for (const [name, make] of kinds) {
    const statuses = await Promise.all(make());
    requests += statuses.length;
    if (name !== "hangup") failures += statuses.filter((s) => s !== 200).length;
  }
  const s = { t: (Date.now() - t0) / 1000, round, requests, ...(await sample()) };
  samples.push(s);
  const mb = (n: number) => (n / 1048576).toFixed(0);
  console.log(`round ${String(round).padStart(3)}  ${s.t.toFixed(0).padStart(4)} s  ${String(requests).padStart(7)} requests  rss ${mb(s.rss)} MiB  heap ${mb(s.heapUsed)} MiB  pages ${Object.entries(s.pages).map(([k, v]) => `${k} ${v}`).join(", ")}  held: ${s.held.logEntries} log entries, ${s.held.mockRequests} mock requests`);
}
child.send({ type: "stop" });
await new Promise((r) => child.once("exit", r));
agent.destroy();

const first = samples[1] ?? samples[0];
const last = samples.at(-1)!;
const summary = {
  seconds: SECONDS,
  rounds: round,
  requests,
  failures,
  rssStartMiB: +(samples[0].rss / 1048576).toFixed(1),
  rssAfterRound1MiB: +(first.rss / 1048576).toFixed(1),
  rssMaxMiB: +(Math.max(...samples.map((s) => s.rss)) / 1048576).toFixed(1),
  rssEndMiB: +(last.rss / 1048576).toFixed(1),
  heapAfterRound1MiB: +(first.heapUsed / 1048576).toFixed(1),
  heapEndMiB: +(last.heapUsed / 1048576).toFixed(1),
  pagesAfterRound1: first.pages,
  pagesEnd: last.pages,
  heldEnd: last.held,
};
console.log(JSON.stringify(summary, null, 2));
mkdirSync(dirname(JSON_OUT), { recursive: true });
writeFileSync(JSON_OUT, JSON.stringify({ summary, samples }, null, 2));
if (failures) {
  console.error(`soak: ${failures} requests did not get 200`);
  process.exitCode = 1;
}
