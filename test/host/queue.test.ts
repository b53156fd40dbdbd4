import { describe, expect, it } from "vitest";
import { Host } from "../../host/index.js";
import { Wat } from "./wat.js";

describe("shared queues and effective context", () => {
  it("delivers proxy_on_queue_ready to the registering VM later, and dequeues in order", async () => {
    const w = new Wat();
    const name = w.s("q");
    const imports = `
      (import "env" "proxy_register_shared_queue" (func $reg (param i32 i32 i32) (result i32)))
      (import "env" "proxy_resolve_shared_queue" (func $res (param i32 i32 i32 i32 i32) (result i32)))
      (import "env" "proxy_enqueue_shared_queue" (func $enq (param i32 i32 i32) (result i32)))
      (import "env" "proxy_dequeue_shared_queue" (func $deq (param i32 i32 i32) (result i32)))`;
    const wasm = w.build(`
      (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
        (drop (call $reg ${name} (i32.const 520))) (i32.const 1))
      (func (export "proxy_on_request_headers") (param $id i32) (param i32 i32) (result i32)
        (call $logn (call $res (i32.const 0) (i32.const 0) ${name} (i32.const 524)))
        (call $logn (call $enq (i32.load (i32.const 524)) ${w.s("m1")}))
        (call $logn (call $enq (i32.load (i32.const 524)) ${w.s("m2")}))
        (call $logn (call $enq (i32.const 999) ${w.s("x")}))
        (call $logn (call $set_eff (i32.const 777)))
        (i32.const 0))
      (func (export "proxy_on_queue_ready") (param $id i32) (param $token i32)
        (call $logn (local.get $id))
        (call $logn (call $deq (local.get $token) (i32.const 512) (i32.const 516))) (call $logout)
        (call $logn (call $deq (local.get $token) (i32.const 512) (i32.const 516))) (call $logout)
        (call $logn (call $deq (local.get $token) (i32.const 512) (i32.const 516))))
    `, { imports });
    const host = await Host.create({ filters: [{ name: "Q", wasm }] });
    host.newStream().callOnRequestHeaders({ ":path": "/" }, true);
    // resolve OK, enqueue OK twice, unknown token NOT_FOUND, unknown context BAD_ARGUMENT
    expect(host.getLogs("info")).toEqual(["0", "0", "0", "1", "2"]);
    await host.settle();
    // First on_queue_ready (root id 1) drains both, then EMPTY (7); the second finds it EMPTY
    // throughout ($logout then repeats the stale out-params: "m2").
    expect(host.getLogs("info").slice(5)).toEqual(["1", "0", "m1", "0", "m2", "7", "1", "7", "m2", "7", "m2", "7"]);
  });

  it("writes fd_write output to the filter's log (stdout info, stderr error)", async () => {
    const w = new Wat();
    const msg = w.s("hello\n");
    const wasm = w.build(
      `(func (export "_initialize")
        (i32.store (i32.const 700) (i32.const ${msg.match(/i32\.const (\d+)/)![1]}))
        (i32.store (i32.const 704) (i32.const 6))
        (drop (call $fd_write (i32.const 1) (i32.const 700) (i32.const 1) (i32.const 708)))
        (drop (call $fd_write (i32.const 2) (i32.const 700) (i32.const 1) (i32.const 708)))
        (call $logn (i32.load (i32.const 708))))`,
      { imports: `(import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))` },
    );
    const host = await Host.create({ filters: [{ name: "W", wasm }] });
    expect(host.getLogEntries()).toEqual([
      { filter: "W", worker: 0, level: "info", message: "hello" },
      { filter: "W", worker: 0, level: "error", message: "hello" },
      { filter: "W", worker: 0, level: "info", message: "6" },
    ]);
  });
});

describe("root context, timers, close_stream, shutdown", () => {
  it("gives a root context no stream maps, ticks with real timers, and shuts down with on_done/on_delete", async () => {
    const w = new Wat();
    const path = w.s(":path");
    const wasm = w.build(`
      (global $ticks (mut i32) (i32.const 0))
      (func (export "proxy_on_configure") (param $id i32) (param i32) (result i32)
        (call $logn (call $get_hdr (i32.const 0) ${path} (i32.const 512) (i32.const 516)))
        (i32.store (i32.const 512) (i32.const 77))
        (call $logn (call $get_pairs (i32.const 3) (i32.const 512) (i32.const 516)))
        (call $logn (i32.load (i32.const 512)))
        (call $logn (i32.load (i32.const 516)))
        (call $logn (call $get_buf (i32.const 0) (i32.const 0) (i32.const 10) (i32.const 512) (i32.const 516)))
        (call $logn (call $set_tick (i32.const 5)))
        (i32.const 1))
      (func (export "proxy_on_tick") (param i32) (global.set $ticks (i32.add (global.get $ticks) (i32.const 1))))
      (func (export "proxy_on_done") (param $id i32) (result i32) (call $log ${w.s("done")}) (call $logn (global.get $ticks)) (i32.const 1))
      (func (export "proxy_on_delete") (param $id i32) (call $log ${w.s("delete")}))
    `);
    const host = await Host.create({ filters: [{ name: "R", wasm }] });
    // BAD_ARGUMENT; pairs Ok with pointer 0 and size 0; empty request body Ok; tick period Ok
    expect(host.getLogs("info")).toEqual(["2", "0", "0", "0", "0", "0"]);
    host.tick();
    host.startTimers();
    await new Promise((r) => setTimeout(r, 60));
    host.stopTimers();
    host.close();
    const logs = host.getLogs("info").slice(6);
    expect(logs[0]).toBe("done");
    expect(Number(logs[1])).toBeGreaterThanOrEqual(3);
    expect(logs[2]).toBe("delete");
  });

  it("resets the stream on proxy_close_stream", async () => {
    const w = new Wat();
    const wasm = w.build(
      `(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (call $logn (call $close (i32.const 0))) (call $logn (call $close (i32.const 9))) (i32.const 0))`,
      { imports: `(import "env" "proxy_close_stream" (func $close (param i32) (result i32)))` },
    );
    const host = await Host.create({ filters: [{ name: "C", wasm }] });
    const s = host.newStream();
    expect(s.callOnRequestHeaders({ ":path": "/" }, false)).toBe("Pause");
    expect(s.reset).toBe("wasm_close_stream");
    expect(host.getLogs("info")).toEqual(["0", "2"]);
    expect(s.callOnRequestBody("x", true)).toBe("Pause");
  });

  it("proxy_close_stream in a body callback: that callback's data never reaches the client", async () => {
    // Envoy Context::closeStream runs resetStream() as an after-VM-call action, before the filter
    // manager passes the callback's data on (source/extensions/common/wasm/context.cc).
    const w = new Wat();
    const wasm = w.build(
      `(func (export "proxy_on_response_body") (param i32 i32 i32) (result i32)
        (if (i32.eq (local.get 1) (i32.const 6)) (then (drop (call $close (i32.const 1))))) (i32.const 0))`,
      { imports: `(import "env" "proxy_close_stream" (func $close (param i32) (result i32)))` },
    );
    const host = await Host.create({ filters: [{ name: "C", wasm }] });
    const s = host.newStream();
    s.callOnRequestHeaders({ ":path": "/" }, true);
    s.callOnResponseHeaders({ ":status": "200" }, false);
    expect(s.callOnResponseBody("hello", false)).toBe("Continue");
    expect(s.callOnResponseBody("secret", false)).toBe("Pause");
    expect(s.reset).toBe("wasm_close_stream");
    expect(s.downstream.body.toString()).toBe("hello");
    expect(s.downstream.ended).toBe(false);
  });
});
