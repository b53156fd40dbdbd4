// A provider that sends a 30 MB plain answer, through the local gateway with the official openai
// client: ai-proxy answers 502 upstream_response_too_large past max_response_body_bytes (10 MiB by
// default), its linear memory stays where it was, the provider's connection is closed (Envoy resets
// the upstream request once the local reply ends the stream), and another client is served.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import http from "node:http";
import type { AddressInfo } from "node:net";
import OpenAI from "openai";
import { Host } from "../../host/index.js";
import { startGateway, type Gateway } from "../../host/server.js";
import { RENDERED_STREAM_BUFFER_LIMIT } from "../ai-proxy/helpers.js";

const ANSWER_BYTES = 30 * 1024 * 1024;
let provider: http.Server;
let host: Host;
let gateway: Gateway;
const sent: { bytes: number; closedEarly: boolean }[] = [];

/** An OpenAI-format provider: "huge" gets a 30 MB answer written in 64 KiB pieces, others a small one. */
function startProvider(): Promise<string> {
  provider = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const huge = JSON.parse(body).messages[0].content === "huge";
      const head = '{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"';
      const tail = '"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}';
      res.writeHead(200, { "content-type": "application/json" });
      if (!huge) {
        res.end(head + "fine" + tail);
        return;
      }
      const record = { bytes: 0, closedEarly: false };
      sent.push(record);
      res.on("close", () => (record.closedEarly = !res.writableFinished));
      res.write(head);
      const piece = Buffer.alloc(64 * 1024, 0x61);
      const more = () => {
        if (res.destroyed) return;
        if (record.bytes >= ANSWER_BYTES) {
          res.end(tail);
          return;
        }
        record.bytes += piece.length;
        if (res.write(piece)) setImmediate(more);
        else res.once("drain", more);
      };
      more();
    });
  });
  return new Promise((r) => provider.listen(0, "127.0.0.1", () => r(`http://127.0.0.1:${(provider.address() as AddressInfo).port}`)));
}

beforeAll(async () => {
  const url = await startProvider();
  host = await Host.create({
    filters: [{ name: "ai-proxy", wasm: "build/ai-proxy.wasm", allowOnHeadersStopIteration: true, configuration: { instances: [{ name: "oa", provider: "openai", api_key: "k", endpoint: url + "/v1" }] } }],
  });
  // The route's buffer limit as rendered: above ai-proxy's cap, so the filter's own 502 comes first.
  gateway = await startGateway({ host, clusterHeader: "x-sluice-cluster", clusters: { oa: { url } }, routeTimeoutMs: 60_000, routeRequestBodyBufferLimitBytes: RENDERED_STREAM_BUFFER_LIMIT });
});

afterAll(async () => {
  await gateway?.close();
  await new Promise((r) => provider?.close(r));
});

describe("a 30 MB plain answer through the gateway", () => {
  it("is a 502 in OpenAI's shape; ai-proxy's memory stays put; the provider is cut off; others are served", async () => {
    const client = new OpenAI({ apiKey: "x", baseURL: `${gateway.url}/v1`, maxRetries: 0 });
    const ok = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "warm up" }] });
    expect(ok.choices[0].message.content).toBe("fine");
    const before = host.memoryPages("ai-proxy");

    const big = client.chat.completions.create({ model: "gpt-4o", max_tokens: 100, messages: [{ role: "user", content: "huge" }] }).catch((e) => e);
    // Another client meanwhile.
    const other = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "small" }] });
    expect(other.choices[0].message.content).toBe("fine");
    const err = await big;
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err.status).toBe(502);
    expect(err.error).toMatchObject({ type: "api_error", code: "upstream_response_too_large" });

    await new Promise((r) => setTimeout(r, 200));
    expect(sent).toHaveLength(1);
    expect(sent[0].closedEarly).toBe(true);
    expect(sent[0].bytes).toBeLessThan(ANSWER_BYTES);
    expect(host.memoryPages("ai-proxy")).toBeLessThanOrEqual(before + 4);
  });
});
