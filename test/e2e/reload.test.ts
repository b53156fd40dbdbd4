// Issue 15 item 9 through the local gateway: gateway.yaml edited while a stream is in flight. The stream
// finishes on the configuration it started with; the next request uses the new one; a broken edit
// (a gateway.yaml that does not load, or a filter configuration the filter refuses) keeps the old
// configuration and says why. No sleeps: the test waits on the watch's events and the provider's
// requests.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FSWatcher } from "node:fs";
import { render } from "../../cli/render.js";
import { startLocalGateway, type LocalGateway } from "../../cli/start.js";
import { describe as describeWatch, watchGatewayYaml, type WatchEvent } from "../../cli/reload.js";
import { startHeldStream } from "../fixtures/held-stream.js";

/** A provider speaking OpenAI's chat completions: a stream holds after its first chunk until released. */
function slowProvider() {
  const held: (() => void)[] = [];
  let arrived: ((n: number) => void) | null = null;
  let requests = 0;
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      requests++;
      const stream = JSON.parse(body).stream === true;
      if (!stream) {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({
          id: "c1", object: "chat.completion", created: 1, model: "m",
          choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
          usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
        }));
        return;
      }
      startHeldStream(res, "m", held);
      arrived?.(held.length);
    });
  });
  return {
    server,
    held,
    get requests() {
      return requests;
    },
    /** Resolves once a stream is being held. */
    streamHeld: () => new Promise<void>((r) => (held.length ? r() : (arrived = () => r()))),
  };
}

const gatewayYaml = (port: number, o: { keys: string[]; limit: number; rateLimitConfig?: string }) => `
listener: { port: 10000 }
access_log: { path: /dev/null }
consumers:
  - name: team-a
    keys: [${o.keys.join(", ")}]
providers:
  - name: local
    provider: openai-compatible
    endpoint: http://127.0.0.1:${port}/v1
    models: ["*"]
filters:
  ai_ratelimit:
    rules:
      - name: per-consumer
        key: [consumer]
        limit: ${o.limit}
        window: 1m
${o.rateLimitConfig ?? ""}`;

let dir: string;
let provider: ReturnType<typeof slowProvider>;
let port: number;
let gw: LocalGateway;
let watcher: FSWatcher;
const events: WatchEvent[] = [];
let waiting: ((e: WatchEvent) => void) | null = null;

/** The next watch event that did something (one save can raise several file events). */
function nextEvent(): Promise<WatchEvent> {
  return new Promise((resolve) => {
    waiting = (e) => {
      if (e.kind === "reloaded" && !e.result.applied.length && !e.result.refused.length && !e.result.error && !e.result.restartNeeded.length) return;
      waiting = null;
      resolve(e);
    };
  });
}

/** Replaces gateway.yaml as an editor or `mv` does (atomic rename). */
function edit(text: string): void {
  const tmp = join(dir, ".gateway.yaml.tmp");
  writeFileSync(tmp, text);
  renameSync(tmp, join(dir, "gateway.yaml"));
}

const chat = (key: string, stream = false) =>
  fetch(`${gw.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "m", stream, max_tokens: 16, messages: [{ role: "user", content: "Hello there" }], ...(stream ? { stream_options: { include_usage: true } } : {}) }),
  });

beforeAll(async () => {
  provider = slowProvider();
  await new Promise<void>((r) => provider.server.listen(0, "127.0.0.1", r));
  port = (provider.server.address() as AddressInfo).port;
  dir = mkdtempSync(join(tmpdir(), "sluice-reload-"));
  writeFileSync(join(dir, "gateway.yaml"), gatewayYaml(port, { keys: ["key-old"], limit: 100000 }));
  render({ config: join(dir, "gateway.yaml"), outDir: join(dir, "envoy"), env: {} });
  gw = await startLocalGateway({ envoyYaml: join(dir, "envoy", "envoy.yaml"), port: 0, adminPort: 0, env: {}, mock: "never", accessLog: () => {} });
  watcher = watchGatewayYaml({ config: join(dir, "gateway.yaml"), outDir: join(dir, "envoy"), gateway: gw, onEvent: (e) => (events.push(e), waiting?.(e)) });
});

afterAll(async () => {
  watcher?.close();
  for (const release of provider?.held ?? []) release();
  await gw?.close();
  provider?.server.close();
});

describe("configuration without restarts (ECDS in the local gateway)", () => {
  it("a stream in flight finishes on the old configuration; the next request uses the new key and the lower limit", async () => {
    expect((await chat("key-old")).status).toBe(200);
    expect((await chat("key-new")).status).toBe(401);

    const inFlight = await chat("key-old", true);
    expect(inFlight.status).toBe(200);
    await provider.streamHeld();

    const oldHost = gw.host;
    const reloaded = nextEvent();
    edit(gatewayYaml(port, { keys: ["key-new"], limit: 1 }));
    const e = await reloaded;
    expect(e.kind).toBe("reloaded");
    if (e.kind !== "reloaded") return;
    expect(e.result.applied).toEqual(["key-auth", "ai-ratelimit"]);
    expect(e.result.restartNeeded).toEqual([]);
    expect(describeWatch(e, "gateway.yaml")[0]).toMatch(/new streams use the new configuration of key-auth, ai-ratelimit/);

    // The old filters still run the stream that started on them: it completes, with its usage.
    let oldClosed = false;
    void e.result.retired.then(() => (oldClosed = true));
    provider.held.shift()!();
    const text = await inFlight.text();
    expect(text).toContain('"content":"last"');
    expect(text).toContain("data: [DONE]");
    await e.result.retired;
    expect(oldClosed).toBe(true);

    // As in Envoy, shared data (ai-ratelimit's counters) and stats outlive the configuration.
    expect(gw.host).not.toBe(oldHost);
    expect(gw.host.sharedData).toBe(oldHost.sharedData);
    expect(gw.host.metrics).toBe(oldHost.metrics);

    // New requests: the new key works, the old one is gone, the lower limit refuses.
    expect((await chat("key-old")).status).toBe(401);
    const limited = await chat("key-new");
    expect(limited.status).toBe(429);
    expect((await limited.json()).error).toBeDefined();
  });

  it("a gateway.yaml that does not load is refused with its error, and the running configuration kept", async () => {
    const seen = provider.requests;
    const refused = nextEvent();
    edit(gatewayYaml(port, { keys: ["key-other"], limit: 100000 }).replace("provider: openai-compatible", "provider: openia"));
    const e = await refused;
    expect(e.kind).toBe("refused");
    expect(describeWatch(e, "gateway.yaml").join("\n")).toMatch(/gateway\.yaml changed but is not valid; nothing was re-rendered, the running configuration is kept:\n.*providers\[0\]\.provider: must be one of/);
    // Nothing was written: envoy/ still holds the last good render.
    expect(readFileSync(join(dir, "envoy", "ecds", "key-auth.yaml"), "utf8")).not.toContain("key-other");
    expect((await chat("key-other")).status).toBe(401);
    expect((await chat("key-new")).status).toBe(429); // still the lower limit
    expect(provider.requests).toBe(seen);
  });

  it("a configuration the filter's onConfigure refuses is refused; the running one stays, and the log says why", async () => {
    const before = gw.host;
    // A key-auth configuration, delivered as an ECDS file is (renamed into place), that parses as YAML
    // and JSON but that key-auth's onConfigure refuses (Envoy: "Unable to create Wasm HTTP filter").
    const filters = join(dir, "envoy", "ecds", "key-auth.yaml");
    const good = readFileSync(filters, "utf8");
    const broken = good.replace(/value: '(\{.*\})'/, (_m, json: string) => `value: '${JSON.stringify({ ...JSON.parse(json), consumers: "none" })}'`);
    expect(broken).not.toBe(good);
    writeFileSync(filters + ".tmp", broken);
    renameSync(filters + ".tmp", filters);
    const result = await gw.reload();
    expect(result.applied).toEqual([]);
    expect(result.refused).toEqual([{ filter: "key-auth", why: expect.stringMatching(/^Failed to configure base Wasm plugin: .*consumers/) }]);
    expect(describeWatch({ kind: "reloaded", result }, "gateway.yaml")).toEqual([expect.stringMatching(/^gateway\.yaml: key-auth refused its new configuration, the running one is kept: Failed to configure base Wasm plugin/)]);
    expect(gw.host).toBe(before);
    expect((await chat("key-new")).status).toBe(429);
    expect((await chat("key-old")).status).toBe(401);
  });

  it("a change only a restart applies (the listener port, a cluster added) is reported, not silently ignored", async () => {
    const reloaded = nextEvent();
    edit(gatewayYaml(port, { keys: ["key-new"], limit: 1 }).replace("port: 10000", "port: 10001"));
    const e = await reloaded;
    expect(e.kind).toBe("reloaded");
    if (e.kind !== "reloaded") return;
    expect(e.result.restartNeeded).toEqual(["listener (address, port, buffer limit)"]);
    expect(describeWatch(e, "gateway.yaml").join("\n")).toMatch(/need a restart \(Envoy would need LDS\/CDS for them\): listener/);
  });
});
