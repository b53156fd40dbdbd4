// npm start --concurrency N: each wasm filter runs one VM per worker, and a client connection stays on
// the worker that took it, as Envoy's listener hands a connection to one worker thread for its life.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import http from "node:http";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { render } from "../../cli/render.js";
import { startLocalGateway, type LocalGateway } from "../../cli/start.js";
import { MINIMAL_GATEWAY } from "../fixtures/gateway-yaml.js";

let gw: LocalGateway;
const workers: number[] = [];

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "sluice-concurrency-"));
  writeFileSync(join(dir, "gateway.yaml"), MINIMAL_GATEWAY);
  render({ config: join(dir, "gateway.yaml"), outDir: join(dir, "envoy"), env: {} });
  gw = await startLocalGateway({ envoyYaml: join(dir, "envoy", "envoy.yaml"), port: 0, adminPort: 0, env: {}, concurrency: 2, accessLog: () => {} });
  const host = gw.host;
  const newStream = host.newStream.bind(host);
  host.newStream = (opts = {}) => {
    workers.push(opts.worker ?? -1);
    return newStream(opts);
  };
});

afterAll(async () => {
  await gw?.close();
});

/** n requests in a row on one kept-alive connection; the workers their streams ran on. */
async function onOneConnection(n: number): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const from = workers.length;
  const body = JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] });
  for (let i = 0; i < n; i++) {
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${gw.url}/v1/chat/completions`, { method: "POST", agent, headers: { "content-type": "application/json", authorization: "Bearer key-a" } }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      req.on("error", reject);
      req.end(body);
    });
    expect(status).toBe(200);
  }
  agent.destroy();
  return workers.slice(from);
}

describe("--concurrency", () => {
  it("runs one VM per filter per worker", () => {
    for (const p of gw.host.plugins) expect(p.vms.length, p.name).toBe(2);
  });

  it("keeps a connection's streams on one worker and spreads connections over the workers", async () => {
    const a = await onOneConnection(3);
    const b = await onOneConnection(3);
    expect(new Set(a).size).toBe(1);
    expect(new Set(b).size).toBe(1);
    expect(a[0]).not.toBe(b[0]);
    expect([a[0], b[0]].sort()).toEqual([0, 1]);
  });

  it("refuses a worker count Envoy would not run", async () => {
    await expect(startLocalGateway({ envoyYaml: "/nonexistent", config: gw.config, port: 0, env: {}, concurrency: 0 })).rejects.toThrow(/concurrency/);
  });
});
