// The four upstream timeouts through the local gateway (gateway.yaml -> render -> npm start's gateway),
// each against a small fake provider that misbehaves on purpose: a connection that never finishes
// opening, a slow first byte, a stream that stalls midway, a stream that keeps sending for longer than
// every timeout together. Timeouts are short; the assertions are on outcomes, never on elapsed times.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { parse } from "yaml";
import { render } from "../../cli/render.js";
import { validateEnvoyYaml } from "../../cli/envoy-validate.js";
import { startLocalGateway, type LocalGateway } from "../../cli/start.js";

// connect 100ms; first byte 1s; idle 1.5s; total off (the default).
const gatewayYaml = (silentPort: number, timeouts: string) => `
listener: { address: 127.0.0.1, port: 10000 }
admin: { port: 9901 }
access_log: { path: /dev/stdout }
timeouts: ${timeouts}
consumers:
  - name: team-a
    keys: [sk-team-a]
providers:
  - name: openai
    provider: openai
    api_key_env: OPENAI_API_KEY
    models: ["gpt-*"]
  # TCP opens at once but the TLS handshake is never answered: the connection never finishes opening.
  - name: silent
    provider: openai-compatible
    endpoint: https://127.0.0.1:${silentPort}/v1
    models: ["silent-*"]
filters:
  ai_proxy:
    health: { failures: 100 }
`;

let silent: net.Server;
const silentSockets = new Set<net.Socket>();
const dirs: string[] = [];

async function gateway(timeouts: string): Promise<{ gw: LocalGateway; log: Record<string, unknown>[]; envoyYaml: string }> {
  const dir = mkdtempSync(join(tmpdir(), "sluice-timeouts-"));
  dirs.push(dir);
  writeFileSync(join(dir, "gateway.yaml"), gatewayYaml((silent.address() as net.AddressInfo).port, timeouts));
  render({ config: join(dir, "gateway.yaml"), outDir: join(dir, "envoy"), env: {} });
  const envoyYaml = readFileSync(join(dir, "envoy", "envoy.yaml"), "utf8");
  expect(validateEnvoyYaml(envoyYaml).errors).toEqual([]);
  const log: Record<string, unknown>[] = [];
  const gw = await startLocalGateway({ envoyYaml: join(dir, "envoy", "envoy.yaml"), port: 0, adminPort: 0, env: {}, accessLog: (l) => log.push(JSON.parse(l)) });
  return { gw, log, envoyYaml };
}

let main: Awaited<ReturnType<typeof gateway>>;
const client = (gw: LocalGateway) => new OpenAI({ apiKey: "sk-team-a", baseURL: `${gw.url}/v1`, maxRetries: 0 });
const settle = () => new Promise((r) => setTimeout(r, 50));

beforeAll(async () => {
  silent = net.createServer((s) => {
    silentSockets.add(s);
    s.on("close", () => silentSockets.delete(s));
    s.on("error", () => {});
  });
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  main = await gateway("{ connect: 100ms, first_byte: 1s, idle: 1500ms }");
});

afterAll(async () => {
  await main?.gw.close();
  for (const s of silentSockets) s.destroy();
  await new Promise((r) => silent.close(r));
});

describe("timeouts: connect, first byte, idle and total are four settings", () => {
  it("renders each to its own Envoy field: cluster connect_timeout, per_try_timeout, idle_timeout, and route timeout 0s (off)", () => {
    const doc = parse(main.envoyYaml);
    const hcm = doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
    const route = hcm.route_config.virtual_hosts[0].routes[0].route;
    expect(route).toMatchObject({ timeout: "0s", idle_timeout: "1.5s", retry_policy: { num_retries: 0, per_try_timeout: "1s" } });
    expect(doc.static_resources.clusters.find((c: { name: string }) => c.name === "silent").connect_timeout).toBe("0.1s");
    expect(main.gw.config.route).toMatchObject({ timeoutMs: 0, idleTimeoutMs: 1500, firstByteTimeoutMs: 1000 });
  });

  it("a first byte later than the connect timeout is served (it was 502 'could not be reached')", async () => {
    const r = await client(main.gw).chat.completions.create(
      { model: "gpt-4o", messages: [{ role: "user", content: "slow but fine" }] },
      { headers: { "x-mock-first-token-delay-ms": "350" } },
    );
    expect(r.choices[0].message.content).toContain("slow but fine");
    await settle();
    expect(main.log.at(-1)).toMatchObject({ status: 200, response_code_details: "via_upstream" });
  });

  it("no first byte within first_byte: 504 'did not answer in time' (cause timeout, details upstream_per_try_timeout), not 'unreachable'", async () => {
    const err = await client(main.gw)
      .chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "x" }] }, { headers: { "x-mock-hang": "1" } })
      .catch((e) => e);
    expect(err.status).toBe(504);
    expect(err.error).toMatchObject({ code: "upstream_timeout" });
    await settle();
    expect(main.log.at(-1)).toMatchObject({ status: 504, response_code_details: "upstream_per_try_timeout", instance: "openai", response_flags: "UT", upstream_transport_failure_reason: null });
    expect(main.log.at(-1)!.upstream_host).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it("a connection that never finishes opening (TLS never answered): 502 'could not be reached' after the connect timeout", async () => {
    const err = await client(main.gw)
      .chat.completions.create({ model: "silent-1", messages: [{ role: "user", content: "x" }] })
      .catch((e) => e);
    expect(err.status).toBe(502);
    expect(err.error).toMatchObject({ code: "upstream_unreachable" });
    await settle();
    expect(String(main.log.at(-1)!.response_code_details)).toMatch(/^upstream_reset_before_response_started/);
  });

  it("a stream that stalls midway is reset by the idle timeout: the client sees an error, never a clean end", async () => {
    const stream = await client(main.gw).chat.completions.create(
      { model: "gpt-4o", messages: [{ role: "user", content: "one two three four five six" }], stream: true },
      { headers: { "x-mock-hang-after": "2" } },
    );
    let chunks = 0;
    const err = await (async () => {
      for await (const _ of stream) chunks++;
    })().catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(chunks).toBeGreaterThan(0);
  });

  it("a stream that keeps sending for longer than connect + first_byte + idle together is never cut", async () => {
    // 13 chunks 200 ms apart: about 2.6 s, each gap far below the idle timeout.
    const words = Array.from({ length: 12 }, (_, i) => `w${i}`).join(" ");
    const stream = await client(main.gw).chat.completions.create(
      { model: "gpt-4o", messages: [{ role: "user", content: words }], stream: true },
      { headers: { "x-mock-inter-chunk-delay-ms": "200" } },
    );
    let text = "";
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? "";
    expect(text).toBe(`Echo: ${words}`);
    await settle();
    expect(main.log.at(-1)).toMatchObject({ status: 200, request_type: "ai_stream" });
  });

  it("a client that stops sending its body midway gets 408 from the idle timeout (before any response)", async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${main.gw.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: "Bearer sk-team-a", "content-type": "application/json", "content-length": "200" },
      });
      req.on("response", (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      });
      req.on("error", reject);
      req.write('{"model":"gpt-4o","messages":[');
    });
    expect(status).toBe(408);
    await settle();
    expect(main.log.at(-1)).toMatchObject({ status: 408, response_code_details: "stream_idle_timeout" });
  });

  it("total, when set, does cut a stream that outlives it (Envoy's route timeout spans the whole response)", async () => {
    const t = await gateway("{ connect: 1s, first_byte: 500ms, idle: 1s, total: 1200ms }");
    try {
      expect(t.gw.config.route).toMatchObject({ timeoutMs: 1200, firstByteTimeoutMs: 500 });
      const words = Array.from({ length: 12 }, (_, i) => `w${i}`).join(" ");
      const stream = await client(t.gw).chat.completions.create(
        { model: "gpt-4o", messages: [{ role: "user", content: words }], stream: true },
        { headers: { "x-mock-inter-chunk-delay-ms": "250" } },
      );
      let text = "";
      const err = await (async () => {
        for await (const c of stream) text += c.choices[0]?.delta?.content ?? "";
      })().catch((e) => e);
      expect(err).toBeInstanceOf(Error);
      expect(text.length).toBeLessThan(`Echo: ${words}`.length);
    } finally {
      await t.gw.close();
    }
  });
});
