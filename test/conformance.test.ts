// Host conformance: build/test/conformance.wasm (test/filters/conformance) calls every proxy-wasm
// 0.2.1 host function Envoy offers and logs "PASS <phase>.<check>" or "FAIL <phase>.<check>: why"
// for each result it checks against Envoy / proxy-wasm-cpp-host. This test drives every phase
// through the host with two workers and requires no FAIL line and exactly the expected number of
// PASS lines per phase, so a check that silently did not run fails too.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync } from "node:fs";
import { Host } from "../host/index.js";
import { ENVOY_HOST_FUNCTIONS } from "../host/envoy-abi.mjs";

const WASM = "build/test/conformance.wasm";
// Must match VM_CONFIG / PLUGIN_CONFIG / PLUGIN_NAME / ROOT_ID / CLUSTER in the filter.
const VM_CONFIG = "vm-config";
const PLUGIN_CONFIG = '{"conformance":true,"note":"plugin configuration"}';
const PLUGIN_NAME = "conformance";
const ROOT_ID = "conformance-root";
const CLUSTER = "conformance-upstream";
const WORKERS = 2; // the filter expects 2 (EXPECTED_WORKERS)

// How many checks each phase runs (PASS + FAIL lines). Root-context phases run once per worker.
const EXPECTED: Record<string, number> = {
  vm_start: 5 * WORKERS,
  configure: 48 * WORKERS,
  tick: 3 * WORKERS, // first host.tick() only: on_tick sets the period to 0
  req_headers: 77,
  req_body1: 3,
  req_body2: 21,
  req_trailers: 9,
  resp_headers: 15,
  resp_body1: 2,
  resp_body2: 5,
  resp_trailers: 5,
  log: 7,
  done: 1,
  delete: 1,
  queue_ready: 7, // two enqueues, one notification each, to the last VM that registered the queue
  callout: 8,
  http_response: 19,
  local: 2,
};

type Pairs = [string, string][] | null | undefined;
const values = (pairs: Pairs, name: string) => (pairs ?? []).filter(([k]) => k === name).map(([, v]) => v);

// proxy-wasm-cpp-host's exports as V8 links them (Word -> i32, int64_t/uint64_t -> i64); Envoy
// refuses a module whose import has another signature ("import type mismatch").
const I = "i32";
const sig = (n: number, ...i64At: number[]) =>
  `(${Array.from({ length: n }, (_, k) => (i64At.includes(k) ? "i64" : I)).join(",")})->i32`;
const ENVOY_SIGNATURES: Record<string, string> = {
  proxy_log: sig(3), proxy_get_log_level: sig(1), proxy_get_status: sig(3),
  proxy_set_property: sig(4), proxy_get_property: sig(4), proxy_send_local_response: sig(8),
  proxy_get_shared_data: sig(5), proxy_set_shared_data: sig(5), proxy_register_shared_queue: sig(3),
  proxy_resolve_shared_queue: sig(5), proxy_dequeue_shared_queue: sig(3), proxy_enqueue_shared_queue: sig(3),
  proxy_get_header_map_value: sig(5), proxy_add_header_map_value: sig(5), proxy_replace_header_map_value: sig(5),
  proxy_remove_header_map_value: sig(3), proxy_get_header_map_pairs: sig(3), proxy_set_header_map_pairs: sig(3),
  proxy_get_header_map_size: sig(2), proxy_get_buffer_status: sig(3), proxy_get_buffer_bytes: sig(5),
  proxy_set_buffer_bytes: sig(5), proxy_http_call: sig(10), proxy_grpc_call: sig(12), proxy_grpc_stream: sig(9),
  proxy_grpc_close: sig(1), proxy_grpc_cancel: sig(1), proxy_grpc_send: sig(4),
  proxy_set_tick_period_milliseconds: sig(1), proxy_get_current_time_nanoseconds: sig(1),
  proxy_define_metric: sig(4), proxy_increment_metric: sig(2, 1), proxy_record_metric: sig(2, 1),
  proxy_get_metric: sig(2), proxy_set_effective_context: sig(1), proxy_done: sig(0),
  proxy_call_foreign_function: sig(6), proxy_continue_stream: sig(1), proxy_close_stream: sig(1),
};

/** env imports of a module with their signatures, read from the type and import sections. */
function importSignatures(bytes: Uint8Array): Map<string, string> {
  let p = 8;
  const u32 = () => {
    let r = 0, shift = 0, b: number;
    do {
      b = bytes[p++];
      r |= (b & 0x7f) << shift;
      shift += 7;
    } while (b & 0x80);
    return r >>> 0;
  };
  const name = () => {
    const n = u32();
    const s = Buffer.from(bytes.subarray(p, p + n)).toString();
    p += n;
    return s;
  };
  const VAL: Record<number, string> = { 0x7f: "i32", 0x7e: "i64", 0x7d: "f32", 0x7c: "f64" };
  const types: string[] = [];
  const out = new Map<string, string>();
  while (p < bytes.length) {
    const id = bytes[p++];
    const size = u32();
    const end = p + size;
    if (id === 1) {
      for (let n = u32(); n > 0; n--) {
        p++; // 0x60
        const params = Array.from({ length: u32() }, () => VAL[bytes[p++]]);
        const results = Array.from({ length: u32() }, () => VAL[bytes[p++]]);
        types.push(`(${params.join(",")})->${results.join(",") || "void"}`);
      }
    } else if (id === 2) {
      for (let n = u32(); n > 0; n--) {
        const mod = name();
        const field = name();
        const kind = bytes[p++];
        if (kind === 0) {
          const t = types[u32()];
          if (mod === "env") out.set(field, t);
        } else if (kind === 1) {
          p++;
          const flags = u32();
          u32();
          if (flags & 1) u32();
        } else if (kind === 2) {
          const flags = u32();
          u32();
          if (flags & 1) u32();
        } else {
          p += 2; // global: valtype, mutability
        }
      }
    }
    p = end;
  }
  return out;
}

describe("host conformance (proxy-wasm 0.2.1 as Envoy implements it)", () => {
  let upstream: Server;
  let host: Host;
  const seen: { method?: string; url?: string; host?: string; body?: string }[] = [];

  // Three streams: /conformance (worker 0, every phase), /callout (worker 1, http_call + pause +
  // continue from the response), /local (worker 0, send_local_response).
  let A: ReturnType<Host["newStream"]>;
  let B: ReturnType<Host["newStream"]>;
  let C: ReturnType<Host["newStream"]>;
  const actions: Record<string, string> = {};
  const errors: string[] = [];

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks).toString();
        seen.push({ method: req.method, url: req.url, host: req.headers.host, body });
        res.writeHead(200, {
          "content-type": "text/plain",
          "x-echo-method": req.method ?? "",
          "x-echo-path": req.url ?? "",
          "x-echo-host": req.headers.host ?? "",
          "x-echo-req": String(req.headers["x-callout-req"] ?? ""),
          "x-echo-content-length": String(req.headers["content-length"] ?? ""),
        });
        res.end(`pong:${body}`);
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    const { port } = upstream.address() as AddressInfo;

    host = await Host.create({
      filters: [
        {
          name: PLUGIN_NAME,
          wasm: WASM,
          configuration: PLUGIN_CONFIG,
          rootId: ROOT_ID,
          vmId: "",
          vmConfiguration: VM_CONFIG,
          workers: WORKERS,
        },
      ],
      clusters: { [CLUSTER]: `http://127.0.0.1:${port}` },
      logLevel: "info",
    });

    // Each step runs on its own so that a host exception in one stream still lets the others run
    // (and is reported by "drives every phase without a host error").
    const step = async (name: string, fn: () => void | Promise<void>) => {
      try {
        await fn();
      } catch (e) {
        errors.push(`${name}: ${(e as Error)?.stack ?? String(e)}`);
      }
    };

    // Timers: on_tick disables its own timer, so the second tick reaches no VM.
    await step("tick", () => {
      host.tick();
      host.tick();
    });

    // Stream A: every request and response phase.
    await step("stream /conformance", async () => {
      A = host.newStream({ worker: 0 });
      actions.aHeaders = A.callOnRequestHeaders(
        { ":method": "POST", ":path": "/conformance", ":authority": "gw", ":scheme": "http", "x-conformance": "yes", "x-drop-me": "1" },
        false,
      );
      actions.aBody1 = A.callOnRequestBody("hello", false);
      actions.aBody2 = A.callOnRequestBody(" world", false);
      actions.aTrailers = A.callOnRequestTrailers({ "x-trailer": "t1" });
      actions.aRespHeaders = A.callOnResponseHeaders({ ":status": "200", "content-type": "text/plain", "x-upstream": "u" }, false);
      actions.aRespBody1 = A.callOnResponseBody("resp-1", false);
      actions.aRespBody2 = A.callOnResponseBody("resp-2", false);
      actions.aRespTrailers = A.callOnResponseTrailers({ "x-resp-trailer": "rt" });
      A.completeHttpContext();
      await host.settle(); // on_queue_ready for the two enqueues
    });

    // Stream B: http_call from worker 1, paused until the response continues it.
    await step("stream /callout", async () => {
      B = host.newStream({ worker: 1 });
      actions.bHeaders = B.callOnRequestHeaders({ ":method": "GET", ":path": "/callout", ":authority": "gw", ":scheme": "http" }, true);
      await host.settle();
      B.callOnResponseHeaders({ ":status": "200" }, true);
      B.completeHttpContext();
    });

    // Stream C: local response.
    await step("stream /local", async () => {
      C = host.newStream({ worker: 0 });
      actions.cHeaders = C.callOnRequestHeaders({ ":method": "GET", ":path": "/local", ":authority": "gw", ":scheme": "http" }, true);
      C.completeHttpContext();
      await host.settle();
    });
  });

  afterAll(async () => {
    host?.close();
    await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
  });

  const lines = () => host.getLogs("info").filter((l) => /^(PASS|FAIL) /.test(l));

  it("drives every phase without a host error", () => {
    expect(errors).toEqual([]);
  });

  it("reports no FAIL", () => {
    expect(lines().filter((l) => l.startsWith("FAIL "))).toEqual([]);
  });

  it("ran every check: the expected number of PASS lines per phase", () => {
    const count = (prefix: string, kind: string) =>
      lines().filter((l) => l.startsWith(`${kind} ${prefix}.`)).length;
    const got: Record<string, number> = {};
    for (const phase of Object.keys(EXPECTED)) got[phase] = count(phase, "PASS");
    expect(got).toEqual(EXPECTED);
    const total = Object.values(EXPECTED).reduce((a, b) => a + b, 0);
    expect(lines().filter((l) => l.startsWith("PASS ")).length).toBe(total);
  });

  it("drops log lines below the configured level", () => {
    const all = host.getLogEntries().map((e) => e.message);
    expect(all.some((m) => m.includes("debug line, below the configured level"))).toBe(false);
    expect(all.some((m) => m.includes("invalid level"))).toBe(false);
  });

  it("stream /conformance: the filter's changes reach upstream and downstream", () => {
    expect(actions.aHeaders).toBe("Continue");
    expect(actions.aBody1).toBe("Pause"); // StopIterationAndBuffer
    expect(actions.aBody2).toBe("Continue");
    expect(actions.aTrailers).toBe("Continue");
    expect(actions.aRespHeaders).toBe("Continue");
    expect(actions.aRespBody1).toBe("Pause");
    expect(actions.aRespBody2).toBe("Continue");
    expect(actions.aRespTrailers).toBe("Continue");
    const up = A.upstream;
    expect(values(up.headers, "x-set-pairs")).toEqual(["1"]);
    expect(values(up.headers, "x-drop-me")).toEqual([]);
    expect(values(up.headers, "x-upper")).toEqual(["U"]);
    expect(values(up.headers, "x-replaced")).toEqual(["r"]);
    expect(values(up.headers, "x-added")).toEqual([]);
    expect(values(up.headers, "x-empty")).toEqual([""]);
    expect(up.body.toString()).toBe("PRE:HELLO, WORLD+tail");
    expect(values(up.trailers, "x-trailer")).toEqual(["t2"]);
    expect(values(up.trailers, "x-trailer-added")).toEqual([]);
    const down = A.downstream;
    expect(values(down.headers, "x-set-pairs")).toEqual(["resp"]);
    expect(values(down.headers, "x-upstream")).toEqual(["u2"]);
    expect(values(down.headers, "content-type")).toEqual([]);
    expect(down.body.toString()).toBe("RESPONSE!");
    expect(values(down.trailers, "x-resp-trailer-added")).toEqual(["a"]);
    expect(A.getFilterState("sluice.conformance")).toBe("fs-2");
    expect(A.routeCacheClears).toBe(1);
  });

  it("stream /callout: http_call reached the cluster and its response continued the stream", () => {
    expect(actions.bHeaders).toBe("Pause");
    expect(seen).toHaveLength(1); // the refused calls (unknown cluster, missing :authority/:path) sent nothing
    expect(seen[0]).toMatchObject({ method: "POST", url: "/echo?q=1", host: "conformance.test", body: "ping" });
    expect(values(B.upstream.headers, "x-callout-status")).toEqual(["200"]);
    expect(values(B.upstream.headers, "x-callout-body")).toEqual(["pong:ping"]);
  });

  it("stream /local: send_local_response replied and nothing went upstream", () => {
    const r = C.getSentLocalResponse();
    expect(r).not.toBeNull();
    expect(r!.statusCode).toBe(403);
    expect(r!.statusDetails).toBe("conformance_denied");
    expect(r!.body.toString()).toBe("denied");
    expect(values(r!.headers, "x-local")).toEqual(["1"]);
    expect(C.upstream.headers).toBeNull();
  });

  it("shared data and metrics are shared by both workers", () => {
    expect(host.getSharedData("conformance.kv")?.value.toString()).toBe("v3");
    expect(host.getSharedData("conformance.empty")?.value.length).toBe(0);
    expect(host.getMetric("conformance.requests")).toMatchObject({ type: "counter", value: 7n });
    expect(host.getMetric("conformance.gauge")).toMatchObject({ type: "gauge", value: 42n });
    expect(host.getMetric("conformance.latency")).toMatchObject({ type: "histogram", samples: [7n, 9n] });
  });
});

describe("conformance.wasm", () => {
  it("imports exactly Envoy's host functions, with Envoy's signatures", () => {
    // The table above covers exactly what host/envoy-abi.mjs says Envoy offers (less the
    // two emscripten helpers, which are no proxy-wasm ABI).
    const offered = [...ENVOY_HOST_FUNCTIONS].filter((n) => n !== "pthread_equal" && n !== "emscripten_notify_memory_growth");
    expect(Object.keys(ENVOY_SIGNATURES).sort()).toEqual(offered.sort());
    const imports = importSignatures(new Uint8Array(readFileSync(WASM)));
    // Every proxy-wasm 0.2.1 host function Envoy offers is exercised.
    expect([...imports.keys()].sort()).toEqual(Object.keys(ENVOY_SIGNATURES).sort());
    const wrong = [...imports].filter(([n, s]) => ENVOY_SIGNATURES[n] !== s).map(([n, s]) => `${n}: ${s}, Envoy ${ENVOY_SIGNATURES[n]}`);
    expect(wrong).toEqual([]);
  });
});
