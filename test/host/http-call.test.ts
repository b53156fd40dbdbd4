// proxy_http_call to a TLS cluster, and the cluster's connect_timeout, as Envoy's async client has
// them: an https endpoint is reached over TLS (SNI from :authority), and a connection that is not
// usable within connect_timeout (TCP and TLS handshake) fails with the router's 503 "upstream
// connect error ... reset reason: connection timeout". Driven through ai-proxy's fallback, which
// sends the retry with proxy_http_call.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { Host } from "../../host/index.js";
import { WASM, send, header, RENDERED_STREAM_BUFFER_LIMIT } from "../ai-proxy/helpers.js";

const CONFIG = {
  instances: [
    { name: "a", provider: "openai", api_key: "k-a", endpoint: "http://openai-a.internal/v1", model: "gpt-4o", priority: 0 },
    { name: "b", provider: "openai", api_key: "k-b", endpoint: "https://openai-b.internal/v1", model: "gpt-4o", priority: 1 },
  ],
  pools: [{ name: "m", instances: ["a", "b"] }],
  instance_header: true,
};

describe("proxy_http_call to a TLS cluster whose handshake never completes", () => {
  let silent: net.Server;
  let port = 0;
  const sockets: net.Socket[] = [];
  beforeAll(async () => {
    // Accepts TCP, never says a word: a TLS client waits for the ServerHello for ever.
    silent = net.createServer((sock) => sockets.push(sock));
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    port = (silent.address() as AddressInfo).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
  });

  it("fails at the cluster's connect_timeout as Envoy's connection timeout, and the client gets a 502 in its shape", async () => {
    const h = await Host.create({
      filters: [{ name: "ai-proxy", wasm: WASM, configuration: CONFIG, allowOnHeadersStopIteration: true }],
      clusters: { b: { url: `https://127.0.0.1:${port}`, connectTimeoutMs: 150 } },
      bufferLimitBytes: RENDERED_STREAM_BUFFER_LIMIT,
    });
    const s = send(h, "/v1/chat/completions", { model: "m", messages: [{ role: "user", content: "Hello" }] });
    s.callOnResponseHeaders({ ":status": "500", "content-type": "application/json" }, false);
    s.callOnResponseBody(JSON.stringify({ error: { message: "boom", type: "server_error" } }), true);
    await h.settle();
    s.completeHttpContext();
    expect(header(s.downstream.headers, ":status")).toBe("502");
    expect(JSON.parse(s.downstream.body.toString()).error.code).toBe("upstream_unreachable");
    expect(header(s.downstream.headers, "x-sluice-instance")).toBe("b");
    expect(s.getFilterState("sluice.fallback_from")).toBe("a:5xx,b:connect_failure");
    // The TLS client did reach the endpoint: the connection was made, the handshake never finished.
    expect(sockets.length).toBe(1);
  });
});
