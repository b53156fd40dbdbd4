// npm run bench -- --long-stream: does a streamed chunk cost the local gateway more the longer the
// stream is? (Envoy moves each chunk once; a host that appended every chunk to one buffer and copied
// it on each write paid more per chunk at the end of a long stream than at its start.) One process:
// a fake provider that writes N OpenAI chunks as fast as the gateway reads them, the local gateway
// with no filters (the host's own cost: buffers, flow control, writes) and a client that reads
// everything. Prints process CPU per stream and per chunk for 50, 2,000 and 8,000 chunks; per-chunk
// cost must not grow with N. --host DIR measures another checkout's host/ (an A/B with an older one).
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { checkArgs, opt } from "./cli.js";

const hostDir = resolve(opt("--host", join(import.meta.dirname, "..", "..", "host"), "the host/ directory to measure (another checkout's, for an A/B)"));
checkArgs(import.meta.url, "CPU per streamed chunk through the local gateway for streams of 50, 2,000 and 8,000 chunks.");
const { Host } = await import(pathToFileURL(join(hostDir, "index.ts")).href);
const { startGateway } = await import(pathToFileURL(join(hostDir, "server.ts")).href);

const chunk = (i: number) =>
  `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "gpt-4o", choices: [{ index: 0, delta: { content: `tok${i} ` }, finish_reason: null }] })}\n\n`;
const provider = http.createServer((req, res) => {
  const n = Number(new URL(req.url ?? "/", "http://x").searchParams.get("n") ?? 0);
  req.resume();
  req.on("end", () => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    let i = 0;
    const pour = () => {
      while (i < n) if (!res.write(chunk(i++))) return void res.once("drain", pour);
      res.end("data: [DONE]\n\n");
    };
    pour();
  });
});
await new Promise<void>((r) => provider.listen(0, "127.0.0.1", r));
const url = `http://127.0.0.1:${(provider.address() as AddressInfo).port}`;
const gateway = await startGateway({ host: await Host.create({ filters: [] }), clusterHeader: "x-cluster", clusters: { up: { url } } });

async function stream(n: number): Promise<void> {
  const res = await fetch(`${gateway.url}/stream?n=${n}`, { headers: { "x-cluster": "up" } });
  const reader = res.body!.getReader();
  while (!(await reader.read()).done);
}

console.log(`host: ${hostDir}`);
console.log("| chunks | CPU µs per stream | CPU µs per chunk |\n|--:|--:|--:|");
for (const [n, reps] of [[50, 200], [2000, 10], [8000, 3]] as const) {
  await stream(n); // warm-up
  const before = process.cpuUsage();
  for (let k = 0; k < reps; k++) await stream(n);
  const used = process.cpuUsage(before);
  const perStream = (used.user + used.system) / reps;
  console.log(`| ${n} | ${perStream.toFixed(0)} | ${(perStream / n).toFixed(2)} |`);
}
await gateway.close();
provider.close();
