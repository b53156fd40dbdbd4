import { describe, expect, it } from "vitest";
import { Host, HostViolation } from "../../host/index.js";
import { CONTINUE_REQUEST, tracer, Wat } from "./filters.js";

const REQ = { ":method": "POST", ":path": "/v1/x", ":authority": "gw", ":scheme": "http" };

async function chain(...filters: Array<{ name: string; wasm: Uint8Array; allowOnHeadersStopIteration?: boolean; failOpen?: boolean }>) {
  return Host.create({ filters });
}

describe("filter chain iteration (Envoy FilterManager)", () => {
  it("runs request callbacks in order, response callbacks in reverse, then log/done/delete", async () => {
    const host = await chain({ name: "A", wasm: tracer("A") }, { name: "B", wasm: tracer("B") });
    const s = host.newStream();
    expect(s.callOnRequestHeaders(REQ, false)).toBe("Continue");
    expect(s.callOnRequestBody("x", true)).toBe("Continue");
    expect(s.upstream.headers).toContainEqual([":path", "/v1/x"]);
    expect(s.upstream.body.toString()).toBe("x");
    expect(s.upstream.ended).toBe(true);
    expect(s.callOnResponseHeaders({ ":status": "200" }, false)).toBe("Continue");
    expect(s.callOnResponseBody("y", true)).toBe("Continue");
    s.completeHttpContext();
    expect(host.getLogs("info")).toEqual([
      "A:create", "A:reqh", "B:create", "B:reqh", "A:reqb:x", "B:reqb:x",
      "B:resph:200", "A:resph:200", "B:respb:y", "A:respb:y",
      "A:log", "B:log", "A:done", "A:delete", "B:done", "B:delete",
    ]);
    expect(s.downstream.body.toString()).toBe("y");
    expect(s.downstream.ended).toBe(true);
  });

  it("turns StopIteration on headers into StopAllIterationAndWatermark; continue hands the held body to the stopped filter first", async () => {
    const host = await chain(
      {
        name: "A",
        wasm: tracer("A", {
          configure: "(drop (call $set_tick (i32.const 1000)))",
          reqHeadersResult: "(i32.const 1)",
          tick: CONTINUE_REQUEST,
        }),
      },
      { name: "B", wasm: tracer("B") },
    );
    const s = host.newStream();
    expect(s.callOnRequestHeaders(REQ, false)).toBe("Pause");
    expect(s.callOnRequestBody("ab", false)).toBe("Pause");
    expect(s.callOnRequestBody("cd", true)).toBe("Pause");
    expect(host.getLogs("info")).toEqual(["A:create", "A:reqh"]);
    expect(s.upstream.headers).toBeNull();
    host.tick();
    expect(host.getLogs("info")).toEqual(["A:create", "A:reqh", "B:create", "B:reqh", "A:reqb:abcd", "B:reqb:abcd"]);
    expect(s.upstream.headers).not.toBeNull();
    expect(s.upstream.body.toString()).toBe("abcd");
    expect(s.upstream.ended).toBe(true);
  });

  it("with allowOnHeadersStopIteration keeps feeding body to the filter; Continue on body releases headers and body", async () => {
    const w = new Wat();
    const key = w.s("x-late");
    const val = w.s("1");
    const host = await chain(
      {
        name: "A",
        allowOnHeadersStopIteration: true,
        wasm: tracer(
          "A",
          {
            globals: "(global $calls (mut i32) (i32.const 0))",
            reqHeadersResult: "(i32.const 1)",
            // second body chunk: change request headers, which already went upstream
            reqBody: `(global.set $calls (i32.add (global.get $calls) (i32.const 1)))
              (if (i32.eq (global.get $calls) (i32.const 2)) (then (drop (call $add_hdr (i32.const 0) ${key} ${val}))))`,
          },
          w,
        ),
      },
      { name: "B", wasm: tracer("B") },
    );
    const s = host.newStream();
    expect(s.callOnRequestHeaders(REQ, false)).toBe("Pause");
    expect(s.callOnRequestBody("ab", false)).toBe("Continue");
    expect(host.getLogs("info")).toEqual(["A:create", "A:reqh", "A:reqb:ab", "B:create", "B:reqh", "B:reqb:ab"]);
    expect(s.upstream.body.toString()).toBe("ab");
    expect(() => s.callOnRequestBody("cd", true)).toThrow(HostViolation);
  });

  it("accumulates body while a filter returns StopIterationAndBuffer and passes it on whole", async () => {
    const host = await chain(
      { name: "A", wasm: tracer("A", { reqBodyResult: "(select (i32.const 0) (i32.const 1) (local.get $end))" }) },
      { name: "B", wasm: tracer("B") },
    );
    const s = host.newStream();
    s.callOnRequestHeaders(REQ, false);
    expect(s.callOnRequestBody("ab", false)).toBe("Pause");
    expect(s.getCurrentRequestBody().toString()).toBe("ab");
    expect(s.callOnRequestBody("cd", false)).toBe("Pause");
    expect(s.callOnRequestBody("ef", true)).toBe("Continue");
    expect(host.getLogs("info").filter((l) => l.includes("reqb"))).toEqual([
      "A:reqb:ab", "A:reqb:abcd", "A:reqb:abcdef", "B:reqb:abcdef",
    ]);
    expect(s.upstream.body.toString()).toBe("abcdef");
  });

  it("with StopIterationAndWatermark the filter sees each chunk; the buffer still goes on whole", async () => {
    const host = await chain(
      { name: "A", wasm: tracer("A", { reqBodyResult: "(select (i32.const 0) (i32.const 2) (local.get $end))" }) },
      { name: "B", wasm: tracer("B") },
    );
    const s = host.newStream();
    s.callOnRequestHeaders(REQ, false);
    s.callOnRequestBody("ab", false);
    s.callOnRequestBody("cd", false);
    s.callOnRequestBody("ef", true);
    expect(host.getLogs("info").filter((l) => l.includes("reqb"))).toEqual(["A:reqb:ab", "A:reqb:cd", "A:reqb:ef", "B:reqb:abcdef"]);
  });

  it("sends a local reply after the callback; earlier filters and the sender see it, later ones only log", async () => {
    const w = new Wat();
    const hdrs = w.s(Buffer.from(await import("../../host/index.js").then((m) => m.serializeHeaders({ "X-Why": "no key" }))));
    const host = await chain(
      { name: "A", wasm: tracer("A") },
      {
        name: "B",
        wasm: tracer(
          "B",
          {
            reqHeaders: `(drop (call $send_local (i32.const 401) ${w.s("no key given")} ${w.s("denied")} ${hdrs} (i32.const -1)))`,
          },
          w,
        ),
      },
      { name: "C", wasm: tracer("C") },
    );
    const s = host.newStream();
    expect(s.callOnRequestHeaders(REQ, false)).toBe("Pause");
    const lr = s.getSentLocalResponse()!;
    expect(lr.statusCode).toBe(401);
    expect(lr.statusDetails).toBe("no_key_given");
    expect(lr.body.toString()).toBe("denied");
    expect(lr.grpcStatus).toBeNull();
    expect(lr.headers).toEqual([
      [":status", "401"], ["x-why", "no key"], ["content-length", "6"], ["content-type", "text/plain"],
    ]);
    expect(s.upstream.headers).toBeNull();
    expect(s.downstream.headers).toContainEqual([":status", "401"]);
    expect(s.downstream.body.toString()).toBe("denied");
    expect(s.downstream.ended).toBe(true);
    expect(s.callOnRequestBody("x", true)).toBe("Pause");
    expect(() => s.callOnResponseHeaders({ ":status": "200" })).toThrow(/local reply/);
    s.completeHttpContext();
    expect(host.getLogs("info")).toEqual([
      "A:create", "A:reqh", "B:create", "B:reqh",
      "B:resph:401", "A:resph:401", "B:respb:denied", "A:respb:denied",
      "A:log", "B:log", "C:create", "C:log",
      "A:done", "A:delete", "B:done", "B:delete", "C:done", "C:delete",
    ]);
  });

  it("sends a response-phase local reply straight to the client (sendDirectLocalReply)", async () => {
    const w = new Wat();
    const host = await chain(
      { name: "A", wasm: tracer("A", { respHeaders: `(drop (call $send_local (i32.const 502) ${w.s("bad")} ${w.s("oops")} (i32.const 0) (i32.const 0) (i32.const -1)))` }, w) },
      { name: "B", wasm: tracer("B") },
    );
    const s = host.newStream();
    s.callOnRequestHeaders(REQ, true);
    expect(s.callOnResponseHeaders({ ":status": "200" }, false)).toBe("Pause");
    expect(s.downstream.headers).toContainEqual([":status", "502"]);
    expect(s.downstream.body.toString()).toBe("oops");
    expect(s.callOnResponseBody("late", true)).toBe("Pause");
    expect(host.getLogs("info").filter((l) => l.includes("resp"))).toEqual(["B:resph:200", "A:resph:200"]);
  });

  it("answers header-map calls per phase: BAD_ARGUMENT for unavailable maps, NOT_FOUND for missing keys", async () => {
    const w = new Wat();
    const path = w.s(":path");
    const nope = w.s("x-nope");
    const host = await chain({
      name: "A",
      wasm: tracer(
        "A",
        {
          reqHeaders: `
            (call $logn (call $get_hdr (i32.const 2) ${path} (i32.const 512) (i32.const 516)))
            (call $logn (call $get_hdr (i32.const 0) ${nope} (i32.const 512) (i32.const 516)))
            (call $logn (call $get_hdr (i32.const 0) ${path} (i32.const 512) (i32.const 516))) (call $logout)
            (call $logn (call $get_hdr (i32.const 8) ${path} (i32.const 512) (i32.const 516)))`,
          // headers were continued: Envoy dropped request_headers_
          reqBody: `(call $logn (call $get_hdr (i32.const 0) ${path} (i32.const 512) (i32.const 516)))`,
          log: `(call $logn (call $get_hdr (i32.const 0) ${path} (i32.const 512) (i32.const 516))) (call $logout)
                (call $logn (call $get_hdr (i32.const 1) ${path} (i32.const 512) (i32.const 516)))`,
        },
        w,
      ),
    });
    const s = host.newStream();
    s.callOnRequestHeaders(REQ, false);
    s.callOnRequestBody("b", true);
    s.completeHttpContext();
    expect(host.getLogs("info")).toEqual([
      "A:create", "A:reqh", "2", "1", "0", "/v1/x", "2", "A:reqb:b", "2", "A:log", "0", "/v1/x", "1", "A:done", "A:delete",
    ]);
  });

  it("implements set_buffer_bytes like Envoy's Buffer::copyFrom", async () => {
    const w = new Wat();
    const host = await chain({
      name: "A",
      wasm: tracer(
        "A",
        {
          reqBody: `
            (call $logn (call $set_buf (i32.const 0) (i32.const 0) (i32.const 0) ${w.s("<")}))
            (call $logn (call $set_buf (i32.const 0) (i32.const -1) (i32.const 0) ${w.s(">")}))
            (call $logn (call $set_buf (i32.const 0) (i32.const 1) (i32.const 0) ${w.s("?")}))
            (call $logn (call $set_buf (i32.const 0) (i32.const 0) (i32.const 2) ${w.s("[")}))
            (call $logn (call $set_buf (i32.const 4) (i32.const 0) (i32.const 0) ${w.s("?")}))
            (call $logn (call $set_buf (i32.const 6) (i32.const 0) (i32.const 0) ${w.s("?")}))`,
        },
        w,
      ),
    });
    const s = host.newStream();
    s.callOnRequestHeaders(REQ, false);
    s.callOnRequestBody("body", true);
    // "<body" -> "<body>" -> BAD_ARGUMENT -> drain 2, prepend "[" -> "[ody>"; HttpCallResponseBody
    // is NOT_FOUND outside its callback; VmConfiguration is read-only (BAD_ARGUMENT).
    expect(host.getLogs("info").slice(3)).toEqual(["0", "0", "2", "0", "1", "2"]);
    expect(s.upstream.body.toString()).toBe("[ody>");
  });
});
