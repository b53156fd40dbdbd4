// A Redis and a Webdis in front of it, started for a test from Debian's packages (redis-server, webdis:
// .ci/run installs them), on free loopback ports, with Webdis's ACL: basic auth, GET and SETEX only.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function until(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => {
      const c = net.connect(port, "127.0.0.1", () => (c.end(), r(true)));
      c.on("error", () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

export interface Webdis {
  url: string;
  user: string;
  password: string;
  stop(): Promise<void>;
  stopWebdis(): Promise<void>;
}

export async function startWebdis(): Promise<Webdis> {
  const dir = mkdtempSync(join(tmpdir(), "sluice-webdis-"));
  const redisPort = await freePort();
  const redis = spawn("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"], { stdio: "ignore" });
  await until(redisPort);
  const httpPort = await freePort();
  const user = "sluice";
  const password = "cache-secret";
  writeFileSync(join(dir, "webdis.json"), JSON.stringify({
    redis_host: "127.0.0.1", redis_port: redisPort, http_host: "127.0.0.1", http_port: httpPort, threads: 2, daemonize: false, database: 0,
    acl: [{ disabled: ["*"] }, { http_basic_auth: `${user}:${password}`, enabled: ["GET", "SETEX"] }],
    verbosity: 1, logfile: join(dir, "webdis.log"),
  }));
  const webdis: ChildProcess = spawn("webdis", [join(dir, "webdis.json")], { stdio: "ignore" });
  await until(httpPort);
  const kill = (p: ChildProcess) => new Promise<void>((r) => {
    if (p.exitCode !== null) return r();
    p.once("exit", () => r());
    p.kill("SIGTERM");
  });
  return {
    url: `http://127.0.0.1:${httpPort}`, user, password,
    stopWebdis: () => kill(webdis),
    stop: async () => {
      await kill(webdis);
      await kill(redis);
    },
  };
}
