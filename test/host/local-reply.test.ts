// The router's local reply in the middle of a response and the HCM's local_reply_config, as Envoy
// does them: DownstreamFilterManager::sendLocalReply answers directly (past the filters) while a
// filter holds the response headers, resets once they reached the client; LocalReplyImpl::rewrite
// (first matching mapper, then its body format) applies to every local reply. The config is the one
// cli/render.ts writes into envoy.yaml.
import { describe, expect, it } from "vitest";
import { Host } from "../../host/index.js";
import { parseLocalReplyConfig, rewriteLocalReply } from "../../host/local-reply.js";
import { localReplyConfig } from "../../cli/render.js";
import { Wat } from "./filters.js";

const RESET_BODY = "upstream connect error or disconnect/reset before headers. reset reason: connection termination";
const RESET_DETAILS = "upstream_reset_after_response_started{connection_termination}";

/** Holds the response headers (StopIteration) and buffers the body, as ai-proxy does with a JSON answer; respHeaders 0 lets headers through. */
function holder(respHeaders: number): Uint8Array {
  return new Wat().build(`
    (func (export "proxy_on_context_create") (param $id i32) (param $parent i32))
    (func (export "proxy_on_configure") (param $id i32) (param $n i32) (result i32) (i32.const 1))
    (func (export "proxy_on_request_headers") (param $id i32) (param $n i32) (param $end i32) (result i32) (i32.const 0))
    (func (export "proxy_on_response_headers") (param $id i32) (param $n i32) (param $end i32) (result i32) (i32.const ${respHeaders}))
    (func (export "proxy_on_response_body") (param $id i32) (param $n i32) (param $end i32) (result i32)
      (call $logn (local.get $n))
      (if (result i32) (local.get $end) (then (i32.const 0)) (else (i32.const 1))))
    (func (export "proxy_on_done") (param $id i32) (result i32) (i32.const 1))
  `);
}

async function gateway(respHeaders: number) {
  return Host.create({
    filters: [{ name: "holder", wasm: holder(respHeaders), allowOnHeadersStopIteration: true }],
    localReplyConfig: parseLocalReplyConfig(localReplyConfig()),
  });
}

function request(path: string, extra: Record<string, string> = {}) {
  return { ":method": "POST", ":path": path, ":authority": "gw", ":scheme": "http", ...extra };
}

describe("the router's local reply once the response is under way", () => {
  it("answers directly, past the filters, while a filter holds the response headers; local_reply_config makes it a 502 in the client's shape", async () => {
    const h = await gateway(1);
    const s = h.newStream();
    s.callOnRequestHeaders(request("/v1/chat/completions"), true);
    s.callOnResponseHeaders({ ":status": "200", "content-type": "application/json" }, false);
    s.callOnResponseBody('{"id":"x","choices":[{"message":{"content":"half', false);
    expect(s.downstream.headers).toBeNull();
    s.routerLocalReply(503, RESET_BODY, RESET_DETAILS, "UC");
    expect(s.reset).toBeNull();
    expect(s.downstream.headers).toEqual([[":status", "502"], ["content-length", String(s.downstream.body.length)], ["content-type", "application/json"]]);
    expect(JSON.parse(s.downstream.body.toString())).toEqual({
      error: { message: "The provider closed the connection before its answer was complete.", type: "api_error", code: "upstream_reset" },
    });
    expect(s.downstream.ended).toBe(true);
    expect(s.info.responseCodeDetails).toBe(RESET_DETAILS);
    expect(s.info.responseFlags).toEqual(["UC"]);
    // Direct: the filter's response callbacks never saw the reply (it logged the first chunk only).
    expect(h.getLogs("info")).toEqual(["48"]);
  });

  it("in Anthropic's shape for an Anthropic client (its path, or anthropic-version once ai-proxy rewrote the path)", async () => {
    const h = await gateway(1);
    for (const req of [request("/v1/messages"), request("/v1/chat/completions", { "anthropic-version": "2023-06-01" })]) {
      const s = h.newStream();
      s.callOnRequestHeaders(req, true);
      s.callOnResponseHeaders({ ":status": "200" }, false);
      s.routerLocalReply(503, RESET_BODY, RESET_DETAILS, "UC");
      expect(JSON.parse(s.downstream.body.toString())).toEqual({
        type: "error",
        error: { type: "api_error", message: "The provider closed the connection before its answer was complete." },
      });
    }
  });

  it("the route timeout while a filter holds the answer: a direct 504 in the client's shape", async () => {
    const h = await gateway(1);
    const s = h.newStream();
    s.callOnRequestHeaders(request("/v1/chat/completions"), true);
    s.callOnResponseHeaders({ ":status": "200" }, false);
    s.routerLocalReply(504, "upstream request timeout", "upstream_response_timeout", "UT");
    expect(s.downstream.headers).toContainEqual([":status", "504"]);
    expect(JSON.parse(s.downstream.body.toString())).toEqual({ error: { message: "The provider did not answer in time.", type: "api_error", code: "upstream_timeout" } });
  });

  it("resets the stream once the response headers reached the client", async () => {
    const h = await gateway(0);
    const s = h.newStream();
    s.callOnRequestHeaders(request("/v1/chat/completions"), true);
    s.callOnResponseHeaders({ ":status": "200" }, false);
    expect(s.downstream.headers).toContainEqual([":status", "200"]);
    s.routerLocalReply(503, RESET_BODY, RESET_DETAILS, "UC");
    expect(s.reset).toContain(RESET_DETAILS);
  });

  it("before any response the reply goes through the filters, unrewritten without the flag the mappers look for", async () => {
    const h = await gateway(0);
    const s = h.newStream();
    s.callOnRequestHeaders(request("/v1/chat/completions"), true);
    s.routerLocalReply(503, "upstream connect error or disconnect/reset before headers. reset reason: connection failure", "upstream_reset_before_response_started{connection_failure}", "UF");
    expect(s.downstream.headers).toContainEqual([":status", "503"]);
    expect(s.downstream.headers).toContainEqual(["content-type", "text/plain"]);
    expect(s.downstream.body.toString()).toContain("connection failure");
    expect(h.getLogs("info")).toEqual([String(s.downstream.body.length)]); // the filter saw it
  });
});

describe("local_reply_config (LocalReplyImpl::rewrite)", () => {
  const cfg = parseLocalReplyConfig(localReplyConfig());
  const base = { requestHeaders: [[":path", "/v1/chat/completions"]] as [string, string][], body: Buffer.from("Internal Server Error"), details: "response_payload_too_large", responseFlags: [] };

  it("maps Envoy's 500 for a buffered answer past the limit to a 502 in the client's shape, and leaves other codes alone", () => {
    const r = rewriteLocalReply(cfg, { ...base, statusCode: 500 });
    expect(r.statusCode).toBe(502);
    expect(r.contentType).toBe("application/json");
    expect(JSON.parse(r.body.toString()).error.code).toBe("upstream_response_too_large");
    // A filter's own 503 (no response flag) and Envoy's 413 pass as they are.
    for (const statusCode of [503, 413]) {
      const same = rewriteLocalReply(cfg, { ...base, statusCode, body: Buffer.from('{"error":{}}') });
      expect([same.statusCode, same.body.toString(), same.rewritten]).toEqual([statusCode, '{"error":{}}', false]);
    }
  });

  it("gives the global rate limit filter's empty 429 (flag RL) the body of ai-ratelimit's own 429, in each client's shape", () => {
    const refused = { ...base, statusCode: 429, body: Buffer.alloc(0), details: "request_rate_limited", responseFlags: ["RL"] };
    const openai = rewriteLocalReply(cfg, refused);
    expect(openai.statusCode).toBe(429);
    expect(JSON.parse(openai.body.toString())).toEqual({
      error: { message: "Token limit exceeded: the gateway's shared rate limit refused the request.", type: "tokens", code: "rate_limit_exceeded" },
    });
    const anthropic = rewriteLocalReply(cfg, { ...refused, requestHeaders: [[":path", "/v1/messages"]] });
    expect(JSON.parse(anthropic.body.toString())).toEqual({ type: "error", error: { type: "rate_limit_error", message: "Token limit exceeded: the gateway's shared rate limit refused the request." } });
    // ai-ratelimit's own 429 (no flag) keeps its body.
    const own = rewriteLocalReply(cfg, { ...refused, responseFlags: [], body: Buffer.from('{"error":{"code":"rate_limit_exceeded"}}') });
    expect([own.rewritten, own.body.toString()]).toEqual([false, '{"error":{"code":"rate_limit_exceeded"}}']);
  });

  it("formats with %RESPONSE_CODE% (a number alone), %RESPONSE_CODE_DETAILS% and %RESPONSE_FLAGS%, and refuses what it does not run", () => {
    const c = parseLocalReplyConfig({ body_format: { json_format: { code: "%RESPONSE_CODE%", why: "%RESPONSE_CODE_DETAILS% (%RESPONSE_FLAGS%)", text: "%LOCAL_REPLY_BODY%" } } });
    const r = rewriteLocalReply(c, { ...base, statusCode: 504, body: Buffer.from("upstream request timeout"), details: "upstream_response_timeout", responseFlags: ["UT"] });
    expect(JSON.parse(r.body.toString())).toEqual({ code: 504, why: "upstream_response_timeout (UT)", text: "upstream request timeout" });
    expect(() => parseLocalReplyConfig({ body_format: { json_format: { t: "%START_TIME%" } } })).toThrow(/not %START_TIME%/);
    expect(() => parseLocalReplyConfig({ mappers: [{ filter: { duration_filter: {} } }] })).toThrow(/duration_filter/);
    expect(() => parseLocalReplyConfig({ mappers: [{ filter: { status_code_filter: { comparison: { op: "EQ", value: { default_value: 500 } } } }, headers_to_add: [] }] })).toThrow(/headers_to_add/);
  });
});
