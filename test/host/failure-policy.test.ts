// Issue 14 item 6: PluginConfig.failure_policy as Envoy >= 1.33 applies it after a VM trap.
// Sources: Envoy source/extensions/common/wasm/wasm.cc PluginConfig::PluginConfig (fail_open maps to
// FAIL_OPEN, both set is an error, UNSPECIFIED is FAIL_CLOSED), PluginConfig::createContext (a failed
// VM: FAIL_OPEN adds no filter, otherwise an empty Context that fails the stream),
// PluginConfig::maybeReloadHandleIfNeeded (FAIL_RELOAD: a new VM after a runtime failure, at most one
// per jittered [base, 1.5 * base) backoff); proxy-wasm-cpp-host src/context.cc CHECK_FAIL (the stream
// that saw the trap fails open only with the legacy fail_open, plugin_->fail_open_).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Host } from "../../host/index.js";
import { parseEnvoyConfig as parseEnvoyText, pluginOptions } from "../../host/envoy-config.js";
import { startLocalGateway } from "../../cli/start.js";
import { parseGatewayConfig } from "../../cli/gateway-config.js";
import { renderFiles, WASM_DIR } from "../../cli/render.js";
import { parseRendered } from "../fixtures/ecds.js";
import { OUT_PTR, OUT_SIZE, Wat } from "./wat.js";

/** Traps in proxy_on_request_headers when the request has an x-trap header; logs each VM start.
 * proxy_on_configure fails when the shared data key "refuse-configure" exists. */
function trapOnDemand(): Uint8Array {
  const w = new Wat();
  const trap = w.s("x-trap");
  const started = w.s("vm started");
  const refuse = w.s("refuse-configure");
  return w.build(`
    (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (call $log ${started}) (i32.const 1))
    (func (export "proxy_on_configure") (param i32 i32) (result i32)
      (i32.ne (call $get_shared ${refuse} (i32.const ${OUT_PTR}) (i32.const ${OUT_SIZE}) (i32.const 520)) (i32.const 0)))
    (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (if (i32.eqz (call $get_hdr (i32.const 0) ${trap} (i32.const ${OUT_PTR}) (i32.const ${OUT_SIZE})))
        (then unreachable))
      (i32.const 0))`);
}

const REQ = { ":method": "GET", ":path": "/", ":authority": "gw" };
const TRAP = { ...REQ, "x-trap": "1" };

async function hostWith(filter: Record<string, unknown>, clock?: () => bigint) {
  return Host.create({ filters: [{ name: "f", wasm: trapOnDemand(), ...filter }], clock });
}

describe("failure_policy after a trap", () => {
  it("FAIL_CLOSED (the default): 503 wasm_fail_stream for that stream and every later stream of that worker", async () => {
    for (const filter of [{}, { failurePolicy: "FAIL_CLOSED" }, { failurePolicy: "UNSPECIFIED" }]) {
      const host = await hostWith({ ...filter, workers: 2 });
      const s1 = host.newStream({ worker: 0 });
      expect(s1.callOnRequestHeaders(TRAP, true)).toBe("Pause");
      expect(s1.getSentLocalResponse()).toMatchObject({ statusCode: 503, statusDetails: "wasm_fail_stream" });
      expect(host.getLogs("error")[0]).toMatch(/^Function: proxy_on_request_headers failed: Uncaught RuntimeError: unreachable/);
      const s2 = host.newStream({ worker: 0 });
      expect(s2.callOnRequestHeaders(REQ, true)).toBe("Pause");
      expect(s2.getSentLocalResponse()?.statusCode).toBe(503);
      expect(s2.upstream.headers).toBeNull();
      // The other worker's VM did not fail.
      const s3 = host.newStream({ worker: 1 });
      expect(s3.callOnRequestHeaders(REQ, true)).toBe("Continue");
    }
  });

  it("FAIL_OPEN: later streams skip the filter; the stream that trapped still fails (fail_open_ is the legacy flag)", async () => {
    const host = await hostWith({ failurePolicy: "FAIL_OPEN" });
    const s1 = host.newStream();
    expect(s1.callOnRequestHeaders(TRAP, true)).toBe("Pause");
    expect(s1.getSentLocalResponse()?.statusCode).toBe(503);
    const s2 = host.newStream();
    expect(s2.callOnRequestHeaders(TRAP, true)).toBe("Continue");
    expect(s2.getSentLocalResponse()).toBeNull();
    expect(s2.slots).toHaveLength(0); // not in the chain at all
    expect(s2.upstream.headers).not.toBeNull();
  });

  it("the deprecated fail_open is FAIL_OPEN, and the trapping stream passes too", async () => {
    const host = await hostWith({ failOpen: true });
    expect(host.plugins[0].failurePolicy).toBe("FAIL_OPEN");
    const s1 = host.newStream();
    expect(s1.callOnRequestHeaders(TRAP, true)).toBe("Continue");
    expect(s1.getSentLocalResponse()).toBeNull();
    const s2 = host.newStream();
    expect(s2.callOnRequestHeaders(REQ, true)).toBe("Continue");
    expect(s2.slots).toHaveLength(0);
  });

  it("refuses fail_open together with failure_policy, as Envoy's PluginConfig does", async () => {
    await expect(hostWith({ failOpen: true, failurePolicy: "FAIL_CLOSED" })).rejects.toThrow(
      "only one of fail_open or failure_policy can be set",
    );
    await expect(hostWith({ failurePolicy: "FAIL_SOMETIMES" })).rejects.toThrow("unknown failure policy");
  });

  it("FAIL_RELOAD: fails closed within the backoff, then a new VM serves the worker", async () => {
    let now = 0n;
    const ms = (n: number) => BigInt(n) * 1_000_000n;
    const host = await hostWith({ failurePolicy: "FAIL_RELOAD" }, () => now);
    const plugin = host.plugins[0];
    const first = plugin.vms[0];
    expect(host.getLogs("info")).toEqual(["vm started"]);

    now = ms(100);
    const s1 = host.newStream();
    expect(s1.callOnRequestHeaders(TRAP, true)).toBe("Pause");
    expect(s1.getSentLocalResponse()?.statusCode).toBe(503);

    // 200 ms after the VM was loaded: inside the 1 s backoff, the failed VM stays and the stream fails.
    now = ms(200);
    const s2 = host.newStream();
    expect(s2.callOnRequestHeaders(REQ, true)).toBe("Pause");
    expect(s2.getSentLocalResponse()?.statusCode).toBe(503);
    expect(plugin.reloadEvents).toEqual({ backoff: 1, success: 0, failure: 0 });

    // Past 1.5 s (the jitter's upper bound): a new VM, started like a new worker's.
    now = ms(1600);
    const s3 = host.newStream();
    expect(s3.callOnRequestHeaders(REQ, true)).toBe("Continue");
    expect(s3.upstream.headers).not.toBeNull();
    expect(plugin.vms[0]).not.toBe(first);
    expect(plugin.reloadEvents).toEqual({ backoff: 1, success: 1, failure: 0 });
    expect(host.getLogs("info")).toEqual(["vm started", "vm started"]);
    // The stream that saw the trap keeps its failed VM; its callbacks stay failed.
    expect(s2.slots[0].vm).toBe(first);

    // The backoff counts from the reload: a second trap right after it fails closed until 1.5 s later.
    now = ms(1700);
    expect(host.newStream().callOnRequestHeaders(TRAP, true)).toBe("Pause");
    now = ms(2500);
    expect(host.newStream().callOnRequestHeaders(REQ, true)).toBe("Pause");
    now = ms(3100);
    expect(host.newStream().callOnRequestHeaders(REQ, true)).toBe("Continue");
    expect(plugin.reloadEvents).toEqual({ backoff: 2, success: 2, failure: 0 });
  });

  it("FAIL_RELOAD: a new VM that does not configure leaves the failed one (still 503) and is retried after the backoff", async () => {
    let now = 0n;
    const ms = (n: number) => BigInt(n) * 1_000_000n;
    const host = await hostWith({ failurePolicy: "FAIL_RELOAD", reloadBackoffMs: 100 }, () => now);
    const plugin = host.plugins[0];
    host.sharedData.set("", "refuse-configure", Buffer.from("1"), 0);
    host.newStream().callOnRequestHeaders(TRAP, true);
    now = ms(200);
    const s = host.newStream();
    expect(s.callOnRequestHeaders(REQ, true)).toBe("Pause");
    expect(s.getSentLocalResponse()?.statusCode).toBe(503);
    expect(plugin.reloadEvents).toEqual({ backoff: 0, success: 0, failure: 1 });
    expect(host.getLogs("error")).toContain("Failed to configure thread-local Wasm plugin");
    // Retried once the backoff from that attempt has passed, not before.
    now = ms(250);
    expect(host.newStream().callOnRequestHeaders(REQ, true)).toBe("Pause");
    now = ms(400);
    expect(host.newStream().callOnRequestHeaders(REQ, true)).toBe("Pause");
    expect(plugin.reloadEvents).toEqual({ backoff: 1, success: 0, failure: 2 });
  });
});

describe("failure_policy in envoy.yaml (local gateway)", () => {
  // The repository's envoy.yaml with the first plugin's failure_policy line (in its ECDS file) replaced.
  const envoyYaml = readFileSync("envoy/envoy.yaml", "utf8");
  const base = readFileSync("envoy/ecds/key-auth.yaml", "utf8");
  const line = base.match(/^( *)failure_policy: FAIL_CLOSED$/m)!;
  const withKeyAuth = (keyAuth: string) => (path: string) => (path.endsWith("/ecds/key-auth.yaml") ? keyAuth : readFileSync(path.replace(/^\/etc\/sluice\//, "envoy/"), "utf8"));
  const parseEnvoyConfig = (keyAuth: string) => parseEnvoyText(envoyYaml, withKeyAuth(keyAuth));
  const yaml = (lines: string[]) => base.replace(line[0], lines.map((l) => line[1] + l).join("\n"));

  it("reads failure_policy, reload_config and the deprecated fail_open", () => {
    let f = parseEnvoyConfig(yaml(["failure_policy: FAIL_RELOAD", "reload_config: { backoff: { base_interval: 0.5s } }"])).filters[0];
    expect(f).toMatchObject({ failurePolicy: "FAIL_RELOAD", reloadBackoffMs: 500, failOpen: false });
    f = parseEnvoyConfig(yaml(["failure_policy: FAIL_OPEN"])).filters[0];
    expect(f).toMatchObject({ failurePolicy: "FAIL_OPEN", reloadBackoffMs: 1000 });
    f = parseEnvoyConfig(yaml(["fail_open: true"])).filters[0];
    expect(f).toMatchObject({ failurePolicy: "UNSPECIFIED", failOpen: true });
    f = parseEnvoyConfig(yaml([])).filters[0];
    expect(f).toMatchObject({ failurePolicy: "UNSPECIFIED", failOpen: false });
    // As rendered: key-auth fails closed, the others reload after Envoy's default 1 s backoff.
    expect(parseEnvoyConfig(base).filters.map((p) => [p.name, p.failurePolicy, p.reloadBackoffMs, p.failOpen])).toEqual([
      ["key-auth", "FAIL_CLOSED", 1000, false],
      ["ai-router", "FAIL_RELOAD", 1000, false],
      ["ai-ratelimit", "FAIL_RELOAD", 1000, false],
      ["ai-proxy", "FAIL_RELOAD", 1000, false],
    ]);
    expect(() => parseEnvoyConfig(yaml(["fail_open: true", "failure_policy: FAIL_CLOSED"]))).toThrow(
      "only one of fail_open or failure_policy can be set",
    );
    expect(() => parseEnvoyConfig(yaml(["failure_policy: FAIL_LOUDLY"]))).toThrow("unknown failure policy");
  });

  it("the local gateway runs each filter with the policy envoy.yaml gives it", async () => {
    const config = parseEnvoyConfig(yaml(["failure_policy: FAIL_RELOAD", "reload_config: { backoff: { base_interval: 2s } }"]));
    const gw = await startLocalGateway({ config, port: 0, adminPort: 0, env: {}, mock: "always", accessLog: () => {} });
    try {
      const [first, ...rest] = gw.host.plugins;
      expect(first).toMatchObject({ failurePolicy: "FAIL_RELOAD", reloadBackoffMs: 2000, failOpen: false });
      for (const p of rest) expect(p).toMatchObject({ failurePolicy: "FAIL_RELOAD", reloadBackoffMs: 1000 });
    } finally {
      await gw.close();
    }
  });
});

// Issue 15 item 1: the policies `npm run render` writes, run by the host as Envoy runs them. A trap is
// injected into the real compiled filter (the host's instrument hook makes its proxy_on_request_headers
// throw as a trapping module does), so what recovers is the filter itself, restarted from build/.
describe("a rendered envoy.yaml: a trapped filter under the rendered failure policy", () => {
  const GATEWAY = `
listener: { port: 10000 }
consumers: [{ name: team-a, keys: [key-a] }]
providers:
  - { name: openai, provider: openai, api_key_env: OPENAI_API_KEY }
filters:
  ai_ratelimit:
    rules: [{ name: per-consumer, key: [consumer], limit: 1000000, window: 1m }]
`;
  const REQUEST = { ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw", authorization: "Bearer key-a", "content-type": "application/json" };
  const BODY = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
  const ms = (n: number) => BigInt(n) * 1_000_000n;

  /** The chain of envoy.mock.yaml rendered from GATEWAY; `trap.armed` names the filter whose next request-headers callback traps. */
  async function renderedHost() {
    const config = parseRendered(renderFiles(parseGatewayConfig(GATEWAY, { env: {} })), "envoy.mock.yaml");
    const clock = { now: 0n };
    const trap: { armed: string | null } = { armed: null };
    const host = await Host.create({
      clock: () => clock.now,
      localReplyConfig: config.localReply ?? undefined,
      filters: config.filters.map((f) => pluginOptions(f, f.wasmFile.replace(WASM_DIR, "build"), { OPENAI_API_KEY: "sk-test" })),
      instrument: {
        export: (filter, name, fn) =>
          name !== "proxy_on_request_headers"
            ? fn
            : (...args: unknown[]) => {
                if (trap.armed === filter) {
                  trap.armed = null;
                  throw new WebAssembly.RuntimeError("unreachable");
                }
                return fn(...args);
              },
      },
    });
    /** One request through the chain: its local reply, or null when it reached the upstream. */
    const request = () => {
      const s = host.newStream();
      s.callOnRequestHeaders(REQUEST, false);
      if (!s.getSentLocalResponse()) s.callOnRequestBody(BODY, true);
      const reply = s.getSentLocalResponse();
      if (!reply) expect(s.upstream.headers).not.toBeNull();
      return reply;
    };
    return { host, clock, trap, request, plugin: (name: string) => host.plugins.find((p) => p.name === name)! };
  }

  it("renders key-auth FAIL_CLOSED and the others FAIL_RELOAD with a 1 s backoff", async () => {
    const { host } = await renderedHost();
    expect(host.plugins.map((p) => [p.name, p.failurePolicy, p.reloadBackoffMs])).toEqual([
      ["key-auth", "FAIL_CLOSED", 1000],
      ["ai-ratelimit", "FAIL_RELOAD", 1000],
      ["ai-proxy", "FAIL_RELOAD", 1000],
    ]);
    host.close();
  });

  it("ai-ratelimit (FAIL_RELOAD): 503 while the backoff runs, then a new VM serves requests again", async () => {
    const { host, clock, trap, request, plugin } = await renderedHost();
    expect(request()).toBeNull();
    trap.armed = "ai-ratelimit";
    clock.now = ms(100);
    expect(request()).toMatchObject({ statusCode: 503, statusDetails: "wasm_fail_stream" });
    clock.now = ms(900); // within [1 s, 1.5 s) of the VM's load: the failed VM stays
    expect(request()?.statusCode).toBe(503);
    clock.now = ms(1600);
    expect(request()).toBeNull();
    expect(request()).toBeNull();
    expect(plugin("ai-ratelimit").reloadEvents).toEqual({ backoff: 1, success: 1, failure: 0 });
    expect(plugin("ai-ratelimit").retired).toHaveLength(1);
    host.close();
  });

  it("key-auth (FAIL_CLOSED): 503 for every later request on that worker, however long one waits", async () => {
    const { host, clock, trap, request, plugin } = await renderedHost();
    expect(request()).toBeNull();
    trap.armed = "key-auth";
    expect(request()).toMatchObject({ statusCode: 503, statusDetails: "wasm_fail_stream" });
    for (const t of [1600, 60_000, 3_600_000]) {
      clock.now = ms(t);
      expect(request()?.statusCode).toBe(503);
    }
    expect(plugin("key-auth").reloadEvents).toEqual({ backoff: 0, success: 0, failure: 0 });
    host.close();
  });
});
