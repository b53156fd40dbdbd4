// The gateway side of the soak benchmark (scripts/bench/soak.ts): `npm start`'s local gateway, run
// from the repository's gateway.yaml rendered into a temporary folder, every provider served by the
// built-in mock (loopback only). Answers the parent's "sample" messages (IPC) with this process's
// RSS, V8 heap and each filter's linear-memory pages, so the driver's own memory is not counted.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseDocument } from "yaml";
import { render } from "../../cli/render.js";
import { startLocalGateway } from "../../cli/start.js";

const dir = mkdtempSync(join(tmpdir(), "sluice-soak-"));
// The shipped gateway.yaml, with its token limit raised out of the way: the soak measures memory, and
// a 429 would end most requests before they reach a provider.
const doc = parseDocument(readFileSync(process.argv[2] ?? "gateway.yaml", "utf8"));
const rules = doc.getIn(["filters", "ai_ratelimit", "rules"]) as { items: unknown[] } | undefined;
for (let i = 0; i < (rules?.items.length ?? 0); i++) doc.setIn(["filters", "ai_ratelimit", "rules", i, "limit"], 1_000_000_000_000);
writeFileSync(join(dir, "gateway.yaml"), doc.toString());
render({ config: join(dir, "gateway.yaml"), outDir: join(dir, "envoy"), env: {} });
const gw = await startLocalGateway({ envoyYaml: join(dir, "envoy", "envoy.yaml"), port: 0, adminPort: 0, env: {}, mock: "always", accessLog: () => {} });
const filters = gw.config.filters.map((f) => f.name);
const gc = (globalThis as { gc?: () => void }).gc;

process.on("message", (m: { type: string }) => {
  if (m.type === "sample") {
    gc?.();
    const mem = process.memoryUsage();
    const pages: Record<string, number> = {};
    for (const f of filters) pages[f] = gw.host.memoryPages(f);
    // What the process still holds on to: the host's log store and the mocks' recorded requests.
    const held = { logEntries: gw.host.logs.length, mockRequests: Object.values(gw.mocks).reduce((n, m) => n + m.requests.length, 0) };
    process.send!({ type: "sample", rss: mem.rss, heapUsed: mem.heapUsed, external: mem.external, arrayBuffers: mem.arrayBuffers, pages, held });
  } else if (m.type === "stop") {
    void gw.close().then(() => {
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    });
  }
});
process.send!({ type: "ready", url: gw.url, filters });
