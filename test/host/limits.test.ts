// Envoy's buffer limits in the host (filter_manager.cc): what a buffering filter holds is bounded by
// the stream's buffer limit (1 MiB by default); past it Envoy answers 413 for a request
// (requestDataTooLarge) and 500 or a reset for a response (responseDataTooLarge); a watermark stop
// only stops reading. Held chunks are appended, never re-concatenated per chunk.
import { afterEach, describe, expect, it, vi } from "vitest";
import { Host } from "../../host/index.js";
import { Wat } from "./filters.js";

const REQ = { ":method": "POST", ":path": "/v1/x", ":authority": "gw", ":scheme": "http" };
const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Logs "<dir>:<body length>" on every body callback and holds the body until its end with
 * `status` (1 StopIterationAndBuffer, 2 StopIterationAndWatermark); response headers return
 * `respHeaders` (0 Continue, 1 StopIteration: held while the body buffers, as ai-proxy does).
 */
function buffering(status = 1, respHeaders = 0): Uint8Array {
  const w = new Wat();
  return w.build(`
    (func (export "proxy_on_context_create") (param $id i32) (param $parent i32))
    (func (export "proxy_on_configure") (param $id i32) (param $n i32) (result i32) (i32.const 1))
    (func (export "proxy_on_request_headers") (param $id i32) (param $n i32) (param $end i32) (result i32) (i32.const 0))
    (func (export "proxy_on_request_body") (param $id i32) (param $n i32) (param $end i32) (result i32)
      (call $logn (local.get $n))
      (if (result i32) (local.get $end) (then (i32.const 0)) (else (i32.const ${status}))))
    (func (export "proxy_on_response_headers") (param $id i32) (param $n i32) (param $end i32) (result i32) (i32.const ${respHeaders}))
    (func (export "proxy_on_response_body") (param $id i32) (param $n i32) (param $end i32) (result i32)
      (call $logn (local.get $n))
      (if (result i32) (local.get $end) (then (i32.const 0)) (else (i32.const ${status}))))
    (func (export "proxy_on_done") (param $id i32) (result i32) (i32.const 1))
  `);
}

async function host(wasm: Uint8Array, opts: { bufferLimitBytes?: number; allow?: boolean } = {}) {
  return Host.create({ filters: [{ name: "buf", wasm, allowOnHeadersStopIteration: opts.allow }], bufferLimitBytes: opts.bufferLimitBytes });
}

const chunk = (n: number, c = "a") => Buffer.alloc(n, c);

afterEach(() => vi.restoreAllMocks());

describe("Envoy's buffer limit on buffered bodies", () => {
  it("answers 413 Payload Too Large itself once a buffered request body passes 1 MiB, before the filter sees it", async () => {
    const h = await host(buffering());
    const s = h.newStream();
    s.callOnRequestHeaders(REQ, false);
    expect(s.callOnRequestBody(chunk(600 * KiB), false)).toBe("Pause");
    expect(s.callOnRequestBody(chunk(600 * KiB), false)).toBe("Pause");
    const lr = s.getSentLocalResponse();
    expect(lr?.statusCode).toBe(413);
    expect(lr?.body.toString()).toBe("Payload Too Large");
    expect(lr?.statusDetails).toBe("request_payload_too_large");
    expect(s.downstream.headers).toContainEqual([":status", "413"]);
    expect(s.downstream.body.toString()).toBe("Payload Too Large");
    // The filter saw the first chunk only: the limit answered before the 1.2 MB body reached it.
    // (17: the 413's own body, which goes through the filter's response callbacks.)
    expect(h.getLogs("info")).toEqual([String(600 * KiB), "17"]);
    expect(s.upstream.body.length).toBe(0);
    // Nothing more is taken in.
    s.callOnRequestBody(chunk(10), true);
    expect(h.getLogs("info")).toEqual([String(600 * KiB), "17"]);
  });

  it("lets a body of exactly the limit through (the watermark is passed only above it)", async () => {
    const h = await host(buffering());
    const s = h.newStream();
    s.callOnRequestHeaders(REQ, false);
    s.callOnRequestBody(chunk(MiB / 2), false);
    s.callOnRequestBody(chunk(MiB / 2), true);
    expect(s.getSentLocalResponse()).toBeNull();
    expect(s.upstream.body.length).toBe(MiB);
  });

  it("takes the limit from the host's bufferLimitBytes (the rendered envoy.yaml raises it)", async () => {
    const h = await host(buffering(), { bufferLimitBytes: 4 * MiB });
    const s = h.newStream();
    s.callOnRequestHeaders(REQ, false);
    for (let i = 0; i < 3; i++) s.callOnRequestBody(chunk(MiB), false);
    s.callOnRequestBody(chunk(10), true);
    expect(s.getSentLocalResponse()).toBeNull();
    expect(s.upstream.body.length).toBe(3 * MiB + 10);
    const over = h.newStream({ bufferLimitBytes: MiB });
    over.callOnRequestHeaders(REQ, false);
    over.callOnRequestBody(chunk(MiB + 1), false);
    expect(over.getSentLocalResponse()?.statusCode).toBe(413);
  });

  it("answers 500 directly (bypassing the filters) when a buffered response passes the limit while a filter holds its headers", async () => {
    const h = await host(buffering(1, 1), { allow: true });
    const s = h.newStream();
    s.callOnRequestHeaders(REQ, true);
    s.callOnResponseHeaders({ ":status": "200", "content-type": "application/json" }, false);
    expect(s.downstream.headers).toBeNull();
    s.callOnResponseBody(chunk(700 * KiB), false);
    s.callOnResponseBody(chunk(700 * KiB), false);
    expect(s.downstream.headers).toContainEqual([":status", "500"]);
    expect(s.downstream.body.toString()).toBe("Internal Server Error");
    expect(s.downstream.ended).toBe(true);
    expect(s.info.responseCodeDetails).toBe("response_payload_too_large");
    expect(s.reset).toBeNull();
  });

  it("resets the stream when the response headers already went out", async () => {
    const h = await host(buffering(1, 0));
    const s = h.newStream();
    s.callOnRequestHeaders(REQ, true);
    s.callOnResponseHeaders({ ":status": "200" }, false);
    expect(s.downstream.headers).toContainEqual([":status", "200"]);
    s.callOnResponseBody(chunk(MiB), false);
    s.callOnResponseBody(chunk(1), false);
    expect(s.reset).toContain("response_payload_too_large");
    expect(s.downstream.body.length).toBe(0);
  });

  it("only stops reading past the limit at a watermark stop (StopIterationAndWatermark), no 413", async () => {
    const h = await host(buffering(2));
    const s = h.newStream();
    s.callOnRequestHeaders(REQ, false);
    s.callOnRequestBody(chunk(MiB), false);
    expect(s.aboveHighWatermark("request")).toBe(false);
    s.callOnRequestBody(chunk(MiB), false);
    expect(s.aboveHighWatermark("request")).toBe(true);
    expect(s.getSentLocalResponse()).toBeNull();
    s.callOnRequestBody(chunk(1), true);
    expect(s.aboveHighWatermark("request")).toBe(false);
    expect(s.upstream.body.length).toBe(2 * MiB + 1);
  });

  it("appends held chunks instead of re-concatenating everything held on each chunk", async () => {
    const h = await host(buffering(), { bufferLimitBytes: 8 * MiB });
    const s = h.newStream();
    s.callOnRequestHeaders(REQ, false);
    const concat = vi.spyOn(Buffer, "concat");
    const copies = vi.spyOn(Buffer.prototype, "copy");
    for (let i = 0; i < 2000; i++) s.callOnRequestBody(chunk(2 * KiB, String.fromCharCode(97 + (i % 26))), false);
    s.callOnRequestBody(Buffer.alloc(0), true);
    expect(concat).not.toHaveBeenCalled();
    // Bytes the host copied to hold 4 MB: each chunk once, plus the doublings (< 2x the body).
    // copy(target, targetStart, sourceStart = 0, sourceEnd = source.length)
    const copied = copies.mock.calls.reduce((n, c, i) => n + ((c[3] as number | undefined) ?? (copies.mock.contexts[i] as Buffer).length) - ((c[2] as number | undefined) ?? 0), 0);
    expect(copied).toBeLessThan(3 * 2000 * 2 * KiB);
    const body = s.upstream.body;
    expect(body.length).toBe(2000 * 2 * KiB);
    expect(body.subarray(2 * KiB * 27, 2 * KiB * 27 + 1).toString()).toBe("b");
    expect(h.getLogs("info").at(-1)).toBe(String(2000 * 2 * KiB));
  });

  it("keeps nothing in a sink the embedder drains: chunks are handed over once, uncopied", async () => {
    const h = await host(buffering(0));
    const s = h.newStream({ keepBodies: false });
    s.callOnRequestHeaders(REQ, true);
    s.callOnResponseHeaders({ ":status": "200" }, false);
    const sent: Buffer[] = [];
    const concat = vi.spyOn(Buffer, "concat");
    for (let i = 0; i < 2000; i++) {
      const c = chunk(100);
      s.callOnResponseBody(c, false);
      const got = s.downstream.take();
      expect(got).toEqual([c]);
      expect(got[0]).toBe(c);
      sent.push(...got);
    }
    expect(concat).not.toHaveBeenCalled();
    expect(s.downstream.body.length).toBe(0);
    expect(sent.length).toBe(2000);
  });
});
