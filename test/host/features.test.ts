import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Host, serializeHeaders } from "../../host/index.js";
import { CONTINUE_REQUEST, tracer, Wat } from "./filters.js";

const REQ = { ":method": "GET", ":path": "/p?q=1", ":authority": "gw", ":scheme": "http" };

describe("a trap fails the VM (cpp-host CHECK_FAIL, Envoy failStream)", () => {
  const trapping = () => tracer("T", { reqHeaders: "unreachable" });

  it("fails closed: this stream and later ones get a 503 local reply", async () => {
    const host = await Host.create({ filters: [{ name: "A", wasm: tracer("A") }, { name: "T", wasm: trapping() }] });
    const s1 = host.newStream();
    expect(s1.callOnRequestHeaders(REQ, true)).toBe("Pause");
    const lr = s1.getSentLocalResponse()!;
    expect(lr.statusCode).toBe(503);
    expect(lr.statusDetails).toBe("wasm_fail_stream");
    expect(lr.body.length).toBe(0);
    expect(lr.grpcStatus).toBe(14);
    expect(s1.upstream.headers).toBeNull();
    expect(host.getLogs("error")).toEqual(["Function: proxy_on_request_headers failed: Uncaught RuntimeError: unreachable"]);
    // The filter before the failed one sees the 503 on its response path.
    expect(host.getLogs("info")).toContain("A:resph:503");

    const s2 = host.newStream();
    expect(s2.callOnRequestHeaders(REQ, true)).toBe("Pause");
    expect(s2.getSentLocalResponse()!.statusCode).toBe(503);
    expect(s2.upstream.headers).toBeNull();
  });

  it("fails open: the trapping stream continues and later streams skip the filter", async () => {
    const host = await Host.create({ filters: [{ name: "T", wasm: trapping(), failOpen: true }, { name: "B", wasm: tracer("B") }] });
    const s1 = host.newStream();
    expect(s1.callOnRequestHeaders(REQ, true)).toBe("Continue");
    expect(s1.getSentLocalResponse()).toBeNull();
    const s2 = host.newStream();
    expect(s2.callOnRequestHeaders(REQ, true)).toBe("Continue");
    expect(s2.upstream.headers).not.toBeNull();
    expect(host.getLogs("info").filter((l) => l.startsWith("T:"))).toEqual(["T:create", "T:reqh"]);
  });
});

describe("shared data (cpp-host SharedData) across VM instances", () => {
  it("shares values between workers and rejects a stale CAS", async () => {
    const w = new Wat();
    const key = w.s("sluice.test.k");
    const wasm = tracer(
      "S",
      {
        globals: "(global $cas (mut i32) (i32.const 0))",
        // remember the CAS this worker saw
        reqHeaders: `(call $logn (call $get_shared ${key} (i32.const 512) (i32.const 516) (i32.const 520)))
          (global.set $cas (i32.load (i32.const 520)))`,
        // write the request body with that CAS
        reqBody: `(drop (call $get_buf (i32.const 0) (i32.const 0) (local.get $n) (i32.const 512) (i32.const 516)))
          (call $logn (call $set_shared ${key} (i32.load (i32.const 512)) (i32.load (i32.const 516)) (global.get $cas)))`,
        extra: `(func (export "proxy_on_vm_start") (param i32 i32) (result i32)
          (drop (call $set_shared ${key} ${w.s("v0")} (i32.const 0))) (i32.const 1))`,
      },
      w,
    );
    const host = await Host.create({ filters: [{ name: "S", wasm, workers: 2 }] });
    const first = host.getSharedData("sluice.test.k")!;
    expect(first.value.toString()).toBe("v0");
    expect(host.getSharedData("sluice.test.k", "other-vm")).toBeUndefined();

    const s0 = host.newStream({ worker: 0 });
    const s1 = host.newStream({ worker: 1 });
    s0.callOnRequestHeaders(REQ, false);
    s1.callOnRequestHeaders(REQ, false);
    s1.callOnRequestBody("one", true);
    s0.callOnRequestBody("zero", true);
    // get OK, get OK, set OK, set CAS_MISMATCH (8)
    expect(host.getLogs("info").filter((l) => /^\d+$/.test(l))).toEqual(["0", "0", "0", "8"]);
    const now = host.getSharedData("sluice.test.k")!;
    expect(now.value.toString()).toBe("one");
    expect(now.cas).toBeGreaterThan(first.cas);
  });
});

describe("proxy_http_call", () => {
  let server: http.Server;
  let base = "";
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        if (req.url === "/slow") return void setTimeout(() => res.end("late"), 500);
        res.setHeader("x-seen-host", String(req.headers.host));
        res.end(`${req.method} ${req.url} ${body}`);
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  function caller(cluster: string, headers: Record<string, string>, timeout = 5000) {
    const w = new Wat();
    const hdrs = w.s(serializeHeaders(headers));
    return tracer(
      "H",
      {
        reqHeaders: `(call $logn (call $http_call ${w.s(cluster)} ${hdrs} ${w.s("ping")} (i32.const 0) (i32.const 0) (i32.const ${timeout}) (i32.const 520)))
          (call $logn (i32.load (i32.const 520)))`,
        reqHeadersResult: "(i32.const 1)",
        httpCallResponse: `(call $logn (local.get $h)) (call $logn (local.get $b))
          (drop (call $get_buf (i32.const 4) (i32.const 0) (local.get $b) (i32.const 512) (i32.const 516))) (call $logout)
          ${CONTINUE_REQUEST}`,
      },
      w,
    );
  }

  it("returns BAD_ARGUMENT for an unknown cluster or missing :method/:path/:authority", async () => {
    const full = { ":method": "POST", ":path": "/x", ":authority": "up" };
    for (const [cluster, headers] of [
      ["nope", full],
      ["up", { ":method": "POST", ":path": "/x" }],
      ["up", { ":path": "/x", ":authority": "up" }],
      ["up", { ":method": "POST", ":authority": "up" }],
    ] as const) {
      const host = await Host.create({ filters: [{ name: "H", wasm: caller(cluster, headers) }], clusters: { up: base } });
      host.newStream().callOnRequestHeaders(REQ, true);
      expect(host.getLogs("info").slice(2, 4)).toEqual(["2", "0"]); // BAD_ARGUMENT, token 0
    }
  });

  it("makes the call and delivers the response to the root context, which can continue the stream", async () => {
    const host = await Host.create({
      filters: [{ name: "H", wasm: caller("up", { ":method": "POST", ":path": "/x", ":authority": "svc" }) }],
      clusters: { up: base },
    });
    const s = host.newStream();
    expect(s.callOnRequestHeaders(REQ, true)).toBe("Pause");
    expect(host.getLogs("info").slice(2)).toEqual(["0", "4"]); // OK, first token (HttpCall ids step by 4)
    await host.settle();
    // :status, x-seen-host, date, connection, content-length; body; then the held request continues.
    expect(host.getLogs("info").slice(4)).toEqual(["5", "12", "POST /x ping"]);
    expect(s.upstream.headers).not.toBeNull();
    expect(s.upstream.ended).toBe(true);
  });

  it("delivers Envoy's 504 local reply on timeout", async () => {
    const host = await Host.create({
      filters: [{ name: "H", wasm: caller("up", { ":method": "GET", ":path": "/slow", ":authority": "svc" }, 50) }],
      clusters: { up: base },
    });
    host.newStream().callOnRequestHeaders(REQ, true);
    await host.settle();
    expect(host.getLogs("info").slice(4)).toEqual(["3", "24", "upstream request timeout"]);
  });
});

describe("metrics, properties, foreign functions", () => {
  it("defines counters, gauges and histograms with Envoy's rules", async () => {
    const w = new Wat();
    const wasm = tracer(
      "M",
      {
        reqHeaders: `
          (drop (call $define_metric (i32.const 0) ${w.s("sluice.requests")} (i32.const 520)))
          (call $logn (i32.load (i32.const 520)))
          (call $logn (call $inc_metric (i32.load (i32.const 520)) (i64.const 1)))
          (call $logn (call $inc_metric (i32.load (i32.const 520)) (i64.const -1)))
          (call $logn (call $rec_metric (i32.load (i32.const 520)) (i64.const 2)))
          (drop (call $define_metric (i32.const 2) ${w.s("sluice.latency_ms")} (i32.const 520)))
          (call $logn (i32.load (i32.const 520)))
          (call $logn (call $inc_metric (i32.load (i32.const 520)) (i64.const 1)))
          (call $logn (call $rec_metric (i32.load (i32.const 520)) (i64.const 42)))
          (drop (call $define_metric (i32.const 1) ${w.s("sluice.inflight")} (i32.const 520)))
          (call $logn (call $inc_metric (i32.load (i32.const 520)) (i64.const 3)))
          (call $logn (call $inc_metric (i32.load (i32.const 520)) (i64.const -1)))
          (call $logn (call $define_metric (i32.const 3) ${w.s("bad")} (i32.const 520)))
          (call $logn (call $inc_metric (i32.const 404) (i64.const 1)))`,
      },
      w,
    );
    const host = await Host.create({ filters: [{ name: "M", wasm }] });
    host.newStream().callOnRequestHeaders(REQ, true);
    // counter id 4: inc OK, inc -1 BAD_ARGUMENT, record adds; histogram id 6: inc BAD_ARGUMENT,
    // record OK; gauge up and down; type 3 BAD_ARGUMENT; unknown counter id NOT_FOUND.
    expect(host.getLogs("info").slice(2)).toEqual(["4", "0", "2", "0", "6", "2", "0", "0", "0", "2", "1"]);
    expect(host.getMetric("sluice.requests")).toEqual({ type: "counter", value: 3n });
    expect(host.getMetric("sluice.inflight")).toEqual({ type: "gauge", value: 2n });
    expect(host.getMetric("sluice.latency_ms")).toEqual({ type: "histogram", value: 0n, samples: [42n] });
    // "wasmcustom" is a custom stat namespace: Envoy prints these without it and without "envoy_".
    const prom = host.prometheus();
    expect(prom).toContain("# TYPE sluice_requests counter\nsluice_requests{} 3");
    expect(prom).toContain('sluice_latency_ms_bucket{le="50"} 1');
  });

  it("reads properties with Envoy's encodings and shares set_property values as filter state", async () => {
    const w = new Wat();
    const get = (path: string) =>
      `(call $logn (call $get_prop ${w.s(path)} (i32.const 512) (i32.const 516))) (call $logout)`;
    const a = tracer("A", { reqHeaders: `(call $logn (call $set_prop ${w.s("sluice.consumer")} ${w.s("alice")}))` }, w);
    const w2 = new Wat();
    const get2 = (path: string) =>
      `(call $logn (call $get_prop ${w2.s(path)} (i32.const 512) (i32.const 516))) (call $logout)`;
    const b = tracer(
      "B",
      {
        reqHeaders: [get2("sluice.consumer"), get2("plugin_name"), get2("plugin_root_id"), get2("request\0url_path"),
          get2("request\0headers\0:authority"), get2("request\0method")].join("\n"),
        log: get2("request\0path"),
        configure: `(call $logn (call $set_prop ${w2.s("x")} ${w2.s("y")}))`,
      },
      w2,
    );
    void get;
    const host = await Host.create({ filters: [{ name: "A", wasm: a }, { name: "B", wasm: b, rootId: "r1" }] });
    // set_property in a root context: no stream info -> NOT_FOUND
    expect(host.getLogs("info")).toEqual(["1"]);
    const s = host.newStream();
    s.callOnRequestHeaders(REQ, true);
    s.completeHttpContext();
    expect(s.getFilterState("sluice.consumer")).toBe("alice");
    expect(host.getLogs("info").filter((l) => !l.includes(":"))).toEqual([
      "1", "0", "0", "alice", "0", "B", "0", "r1", "0", "/p", "0", "gw", "0", "GET", "0", "/p?q=1",
    ]);
  });

  it("encodes numbers as 8-byte little-endian and counts clear_route_cache", async () => {
    const w = new Wat();
    const wasm = tracer(
      "P",
      {
        reqHeaders: `
          (call $logn (call $get_prop ${w.s("request\0time")} (i32.const 512) (i32.const 516)))
          (call $logn (i32.load (i32.const 516)))
          (call $logn (i32.load (i32.load (i32.const 512))))
          (call $logn (call $get_prop ${w.s("response\0code")} (i32.const 512) (i32.const 516)))
          (call $logn (call $foreign ${w.s("clear_route_cache")} (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
          (call $logn (call $foreign ${w.s("no_such_function")} (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))`,
        respHeaders: `
          (call $logn (call $get_prop ${w.s("response\0code")} (i32.const 512) (i32.const 516)))
          (call $logn (i32.load (i32.const 516)))
          (call $logn (i32.load (i32.load (i32.const 512))))`,
      },
      w,
    );
    const host = await Host.create({ filters: [{ name: "P", wasm }], clock: () => 1234n });
    const s = host.newStream();
    s.callOnRequestHeaders(REQ, true);
    s.callOnResponseHeaders({ ":status": "201" }, true);
    expect(s.routeCacheClears).toBe(1);
    expect(host.getLogs("info").filter((l) => /^\d+$/.test(l))).toEqual(["0", "8", "1234", "1", "0", "1", "0", "8", "201"]);
  });
});
