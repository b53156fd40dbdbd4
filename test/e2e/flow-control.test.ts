// Envoy's watermark flow control in the local gateway, both ways, on a route no filter buffers:
// above a connection's high watermark (its per_connection_buffer_limit_bytes) the other side is no
// longer read, so one slow party costs bounded memory. Bounds on bytes moved, not times.
import { afterEach, describe, expect, it } from "vitest";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Host } from "../../host/index.js";
import { startGateway, type Gateway } from "../../host/server.js";

const MiB = 1024 * 1024;
/** Connection buffers (1 MiB each here) plus the kernel's socket buffers on both hops. */
const MAX_IN_FLIGHT = 48 * MiB;

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

async function listen(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  closers.push(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function gatewayTo(url: string): Promise<Gateway> {
  const host = await Host.create({ filters: [] });
  const g = await startGateway({ host, clusterHeader: "x-cluster", clusters: { up: { url, bufferLimitBytes: MiB } }, listenerBufferLimitBytes: MiB });
  closers.push(() => g.close());
  return g;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("flow control in the local gateway", () => {
  it("stops reading the upstream while the client does not read", async () => {
    let written = 0;
    const url = await listen((_req, res) => {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      const chunk = Buffer.alloc(64 * 1024, "z");
      const pour = () => {
        while (!res.destroyed) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", pour);
        }
      };
      pour();
    });
    const g = await gatewayTo(url);
    const u = new URL(g.url);
    const req = http.request({ host: u.hostname, port: u.port, path: "/", headers: { "x-cluster": "up" } });
    req.on("response", (res) => res.pause()); // never read
    req.on("error", () => {});
    req.end();
    await sleep(1500);
    const first = written;
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThan(MAX_IN_FLIGHT);
    await sleep(1000);
    expect(written - first).toBeLessThan(MiB); // it has stopped, not slowed
    req.destroy();
  });

  it("reads the upstream again once the client has read (below the low watermark): the whole body arrives", async () => {
    const total = 24 * MiB;
    const url = await listen((_req, res) => {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      const chunk = Buffer.alloc(64 * 1024, "w");
      let sent = 0;
      const pour = () => {
        while (sent < total) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", pour);
        }
        res.end();
      };
      pour();
    });
    const g = await gatewayTo(url);
    const u = new URL(g.url);
    const received = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: u.hostname, port: u.port, path: "/", headers: { "x-cluster": "up" } });
      req.on("response", (res) => {
        res.pause();
        let n = 0;
        setTimeout(() => {
          res.on("data", (c: Buffer) => (n += c.length));
          res.on("end", () => resolve(n));
          res.resume();
        }, 500);
      });
      req.on("error", reject);
      req.end();
    });
    expect(received).toBe(total);
  });

  it("stops reading the client's request body while the upstream does not read it", async () => {
    let answer: http.ServerResponse | null = null;
    const url = await listen((req, res) => {
      req.pause(); // reads nothing, answers only at the end of the test
      answer = res;
    });
    const g = await gatewayTo(url);
    const u = new URL(g.url);
    let sent = 0;
    const req = http.request({ host: u.hostname, port: u.port, path: "/", method: "POST", headers: { "x-cluster": "up", "transfer-encoding": "chunked" } });
    req.on("error", () => {});
    const chunk = Buffer.alloc(64 * 1024, "y");
    const pour = () => {
      while (!req.destroyed && sent < 1024 * MiB) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once("drain", pour);
      }
    };
    pour();
    await sleep(1500);
    const first = sent;
    expect(first).toBeLessThan(MAX_IN_FLIGHT);
    await sleep(1000);
    expect(sent - first).toBeLessThan(MiB);
    // (A paused socket does not see its peer go away, in Node as in any reader: end the exchange.)
    answer!.writeHead(200).end();
    req.destroy();
  });
});
