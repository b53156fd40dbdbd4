// Shows each fix in patches/@gcoredev+proxy-wasm-sdk-as+1.2.3.patch working through a real module
// (build/test/sdk-patches.wasm, which uses the SDK's own wrappers, not assembly/lib).
import { describe, it, expect } from "vitest";
import { Host } from "../host/index.js";

const WASM = "build/test/sdk-patches.wasm";
const SECRET = "sk-this-must-never-be-logged";

async function start() {
  return Host.create({
    filters: [{ name: "sdk-patches", wasm: WASM, configuration: { key: SECRET } }],
    logLevel: "trace",
  });
}

describe("SDK patches", () => {
  it("get_metric reads the metric (it used to overwrite it through proxy_record_metric)", async () => {
    const h = await start();
    expect(h.getLogs("info")).toContain("get_metric result=0 value=5");
    expect(h.getMetric("patch.counter")!.value).toBe(5n);
  });

  it("Gauge.record and Histogram.record write to their own metric", async () => {
    const h = await start();
    expect(h.getMetric("patch.gauge")!.value).toBe(42n);
    expect(h.getMetric("patch.histogram")!.samples).toEqual([7n]);
  });

  it("logs through proxy_log, and never logs the plugin configuration, even at trace", async () => {
    const h = await start();
    expect(h.getLogs("info")).toContain(`configured with ${JSON.stringify({ key: SECRET }).length} bytes`);
    const all = h.getLogEntries().map((e) => e.message).join("\n");
    expect(all).not.toContain(SECRET);
  });

  it("on_done and on_delete of the root context do not trap", async () => {
    const h = await start();
    const s = h.newStream();
    s.callOnRequestHeaders({ ":method": "GET", ":path": "/", ":authority": "x" }, true);
    s.completeHttpContext();
    h.close();
    expect(h.getLogs("critical")).toEqual([]);
  });

  it("interleaved streams each get their own context (the last-context shortcut follows the id)", async () => {
    const h = await start();
    const req = (tag: string) => ({ ":method": "GET", ":path": "/", ":authority": "x", "x-tag": tag });
    const tagOf = (s: ReturnType<typeof h.newStream>) => (s.downstream.headers ?? []).find(([k]) => k === "x-tag")?.[1];
    const a = h.newStream(), b = h.newStream();
    a.callOnRequestHeaders(req("a"), true);
    b.callOnRequestHeaders(req("b"), true);
    a.callOnResponseHeaders({ ":status": "200" }, true);
    b.callOnResponseHeaders({ ":status": "200" }, true);
    expect([tagOf(a), tagOf(b)]).toEqual(["a", "b"]);
    // The stream answered last is deleted; a new one must not be handed its context.
    b.completeHttpContext();
    const c = h.newStream();
    c.callOnRequestHeaders(req("c"), true);
    c.callOnResponseHeaders({ ":status": "200" }, true);
    a.completeHttpContext();
    expect(tagOf(c)).toBe("c");
    expect(h.getLogs("critical")).toEqual([]);
  });

  it("an abort traps (and so fails the VM as in Envoy) instead of carrying on", async () => {
    const h = await start();
    const s = h.newStream();
    s.callOnRequestHeaders({ ":method": "GET", ":path": "/abort", ":authority": "x" }, true);
    expect(s.getSentLocalResponse()?.statusCode).toBe(503);
    expect((s.upstream.headers ?? []).some(([k]) => k === "x-after-abort")).toBe(false);
    expect(h.getLogs("critical").join("\n")).toMatch(/abort: deliberate abort/);
    const next = h.newStream();
    next.callOnRequestHeaders({ ":method": "GET", ":path": "/", ":authority": "x" }, true);
    expect(next.getSentLocalResponse()?.statusCode).toBe(503);
  });
});
