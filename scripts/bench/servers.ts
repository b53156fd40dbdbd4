// Child processes of the gateway benchmark (scripts/bench/gateway.ts), one server each, on loopback:
//
//   node --import tsx scripts/bench/servers.ts mock   --key KEY
//       the OpenAI mock provider (scripts/mocks), zero delay, deterministic; the parent switches it
//       between "fast" (default chunking, no delay) and "paced" (64 chunks, 20 ms apart) over IPC.
//   node --import tsx scripts/bench/servers.ts sluice --upstream URL --key KEY [--envoy envoy/envoy.yaml]
//        [--chain minimal|full]
//       the local gateway (host/server.ts through cli/start.ts) from the rendered envoy.yaml, every
//       provider cluster pointed at the mock. minimal: key-auth + ai-proxy. full: every filter the
//       rendered chain has (the shipped one: key-auth, ai-router, ai-ratelimit, ai-proxy), with
//       ai-ratelimit's limits raised out of reach (a refusal is not the path measured).
//
// Started with fork() by the parent: each sends { ready: url } over IPC once it listens; it answers { stats: true } with its RSS and (Sluice) each VM's
// linear-memory pages. A child exits by itself when the IPC channel closes (the parent is gone) or
// after --lifetime-s seconds, so nothing outlives a crashed benchmark.
import { basename } from "node:path";
import { startMock } from "../mocks/index.js";
import { loadEnvoyConfig } from "../../host/envoy-config.js";
import { startLocalGateway } from "../../cli/start.js";

const argv = process.argv.slice(2);
const mode = argv[0];
const opt = (name: string, def = ""): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : def;
};
const send = (m: unknown) => process.send?.(m);

const lifetime = setTimeout(() => process.exit(3), Number(opt("lifetime-s", "3600")) * 1000);
lifetime.unref();
process.on("disconnect", () => process.exit(0));

async function mock(): Promise<void> {
  const m = await startMock("openai", { port: 0, apiKey: opt("key") });
  // The mock records every request for tests; a benchmark of 100,000s of requests must not keep them.
  setInterval(() => (m.requests.length = 0), 250).unref();
  process.on("message", (msg: { pace?: "fast" | "paced"; stats?: boolean; check?: boolean }) => {
    if (msg.pace === "paced") m.set({ chunks: 64, interChunkDelayMs: 20 });
    if (msg.pace === "fast") m.reset();
    if (msg.pace) send({ paced: msg.pace });
    if (msg.stats) send({ stats: { rss: process.memoryUsage.rss() } });
  });
  send({ ready: m.url });
}

async function sluice(): Promise<void> {
  const upstream = opt("upstream");
  const cfg = loadEnvoyConfig(opt("envoy", "envoy/envoy.yaml"));
  const all = cfg.filters.map((f) => f.name);
  if (opt("chain", "minimal") === "full") {
    for (const f of cfg.filters) {
      if (basename(f.wasmFile) !== "ai-ratelimit.wasm") continue;
      const c = JSON.parse(f.configuration);
      for (const r of c.rules ?? []) r.limit = 1e15;
      f.configuration = JSON.stringify(c);
    }
  } else {
    // The proxy alone: key-auth + ai-proxy as rendered (ai-router / ai-ratelimit, when gateway.yaml
    // enables them, are left out, so the figure is the proxy's, not a classifier's).
    const keep = ["key-auth.wasm", "ai-proxy.wasm"];
    cfg.filters = cfg.filters.filter((f) => keep.includes(basename(f.wasmFile)));
    if (cfg.filters.length !== 2) throw new Error(`envoy.yaml: expected key-auth and ai-proxy, found ${cfg.filters.map((f) => f.name).join(", ")}`);
  }
  const dropped = all.filter((n) => !cfg.filters.some((f) => f.name === n));
  for (const c of Object.values(cfg.clusters)) c.url = upstream;
  cfg.admin = null; // not on the request path
  // Every provider key variable gets the mock's key (the VM reads it as in Envoy).
  const env: NodeJS.ProcessEnv = {};
  for (const v of ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "DEEPSEEK_API_KEY", "MISTRAL_API_KEY", "AZURE_OPENAI_API_KEY"]) env[v] = opt("key");
  let logBytes = 0;
  const gw = await startLocalGateway({
    config: cfg,
    port: 0,
    address: "127.0.0.1",
    env,
    mock: "never",
    // The access log is formatted per request as in Envoy (JSON line), then discarded here.
    accessLog: (line) => void (logBytes += line.length),
  });
  const filters = cfg.filters.map((f) => f.name);
  process.on("message", (msg: { stats?: boolean }) => {
    if (!msg.stats) return;
    const pages: Record<string, number> = {};
    for (const f of filters) pages[f] = gw.host.memoryPages(f);
    send({ stats: { rss: process.memoryUsage.rss(), pages, accessLogBytes: logBytes, hostLogEntries: gw.host.getLogEntries().length } });
  });
  send({ ready: gw.url, filters, dropped });
}

if (mode === "mock") await mock();
else if (mode === "sluice") await sluice();
else {
  console.error(`servers.ts: unknown mode ${mode}`);
  process.exit(2);
}
