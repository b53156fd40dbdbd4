// Fallback through the local gateway with the official `openai` and `@anthropic-ai/sdk` clients:
// the first instance of each pool refuses connections (nothing listens) or answers 500; the second
// speaks OpenAI's, Anthropic's, Gemini's or an OpenAI-compatible server's format. Every client gets
// a real answer from the second instance, streamed or not, and the access log names who answered
// and who failed first.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { Host } from "../../host/index.js";
import { startGateway, type Gateway } from "../../host/server.js";
import type { Stream } from "../../host/stream.js";
import { startMock, type MockServer } from "../../scripts/mocks/index.js";

const TARGETS = {
  openai: { provider: "openai", base: "/v1", model: "gpt-4o" },
  anthropic: { provider: "anthropic", base: "", model: "claude-sonnet-4-5" },
  gemini: { provider: "gemini", base: "/v1beta", model: "gemini-2.5-flash" },
  "openai-compatible": { provider: "openai-compatible", base: "/v1", model: "mock-model" },
} as const;
type Target = keyof typeof TARGETS;
const FAILS = ["refused", "500"] as const;

let mocks: Record<Target | "failing", MockServer>;
let gateway: Gateway;
const log: { status: number; instance?: string; attempts?: string; fallbackFrom?: string; details: string | null; pool?: string }[] = [];

beforeAll(async () => {
  mocks = {} as typeof mocks;
  for (const t of Object.keys(TARGETS) as Target[]) mocks[t] = await startMock(t, { apiKey: `key-${t}` });
  mocks.failing = await startMock("openai", { apiKey: "key-a" });
  mocks.failing.set({ serverError: 500 });
  const instances: Record<string, unknown>[] = [
    { name: "refused", provider: "openai", api_key: "key-a", endpoint: "http://127.0.0.1:9/v1", priority: 0 },
    { name: "500", provider: "openai", api_key: "key-a", endpoint: mocks.failing.url + "/v1", priority: 0 },
  ];
  const pools: { name: string; instances: string[] }[] = [];
  for (const t of Object.keys(TARGETS) as Target[]) {
    instances.push({ name: `b-${t}`, provider: TARGETS[t].provider, api_key: `key-${t}`, endpoint: mocks[t].url + TARGETS[t].base, model: TARGETS[t].model, priority: 1 });
    for (const f of FAILS) pools.push({ name: `${f}-then-${t}`, instances: [f, `b-${t}`] });
  }
  const clusters: Record<string, { url: string }> = { refused: { url: "http://127.0.0.1:9" }, "500": { url: mocks.failing.url } };
  for (const t of Object.keys(TARGETS) as Target[]) clusters[`b-${t}`] = { url: mocks[t].url };
  const host = await Host.create({
    filters: [{
      name: "ai-proxy", wasm: "build/ai-proxy.wasm", allowOnHeadersStopIteration: true,
      // The failing instances stay in: every request goes through a fallback.
      configuration: { instances, pools, instance_header: true, health: { failures: 1000 } },
    }],
    // Fallbacks leave through proxy_http_call, to the same clusters.
    clusters: Object.fromEntries(Object.entries(clusters).map(([k, v]) => [k, v.url])),
  });
  gateway = await startGateway({
    host, clusterHeader: "x-sluice-cluster", clusters, routeTimeoutMs: 30_000,
    accessLog: (s: Stream, status: number) => log.push({
      status, details: s.info.responseCodeDetails ?? null,
      instance: s.getFilterState("sluice.instance"), attempts: s.getFilterState("sluice.attempts"), fallbackFrom: s.getFilterState("sluice.fallback_from"),
    }),
  });
});

afterAll(async () => {
  await gateway?.close();
  for (const m of Object.values(mocks ?? {})) await m.close();
});

const openai = () => new OpenAI({ apiKey: "client-key", baseURL: `${gateway.url}/v1`, maxRetries: 0 });
const anthropic = () => new Anthropic({ apiKey: "client-key", baseURL: gateway.url, maxRetries: 0 });

/** The access log of the requests since `from`: each answered by b after the first instance failed. */
async function expectLogged(from: number, target: Target, fail: (typeof FAILS)[number]) {
  await new Promise((r) => setTimeout(r, 20)); // the log is written once the exchange ends
  const lines = log.slice(from);
  expect(lines).toHaveLength(2);
  for (const l of lines) {
    expect(l).toMatchObject({ status: 200, instance: `b-${target}`, attempts: "2", fallbackFrom: `${fail}:${fail === "refused" ? "connect_failure" : "5xx"}` });
    // response_code_details is Envoy's, about the request the router sent (the first attempt): a
    // filter cannot change it, which is why fallback_from and instance say what happened.
    expect(l.details).toBe(fail === "refused" ? "upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}" : "via_upstream");
  }
}

describe.each(Object.keys(TARGETS) as Target[])("fallback to %s through the gateway", (target) => {
  for (const fail of FAILS) {
    const pool = `${fail}-then-${target}`;

    it(`first instance ${fail}: openai client, plain and streamed`, async () => {
      const from = log.length;
      const { data, response } = await openai().chat.completions.create({ model: pool, messages: [{ role: "user", content: "Bonjour plain" }] }).withResponse();
      expect(data.choices[0].message.content).toContain("Bonjour plain");
      expect(data.usage!.completion_tokens).toBeGreaterThan(0);
      expect(response.headers.get("x-sluice-instance")).toBe(`b-${target}`);

      const { data: stream, response: sr } = await openai().chat.completions.create({ model: pool, messages: [{ role: "user", content: "Bonjour streamed" }], stream: true, stream_options: { include_usage: true } }).withResponse();
      expect(sr.headers.get("content-type")).toContain("text/event-stream");
      expect(sr.headers.get("x-sluice-instance")).toBe(`b-${target}`);
      let text = "";
      let chunks = 0;
      let finish: string | null = null;
      let usage: OpenAI.CompletionUsage | null | undefined;
      for await (const c of stream) {
        chunks++;
        text += c.choices[0]?.delta?.content ?? "";
        finish = c.choices[0]?.finish_reason ?? finish;
        if (c.usage) usage = c.usage;
      }
      expect(chunks).toBeGreaterThan(1);
      expect(text).toContain("Bonjour streamed");
      expect(finish).toBe("stop");
      expect(usage!.completion_tokens).toBeGreaterThan(0);
      await expectLogged(from, target, fail);
    });

    it(`first instance ${fail}: anthropic client, plain and streamed`, async () => {
      const from = log.length;
      const { data, response } = await anthropic().messages.create({ model: pool, max_tokens: 200, messages: [{ role: "user", content: "Hallo plain" }] }).withResponse();
      expect(data.content.map((b) => (b.type === "text" ? b.text : "")).join("")).toContain("Hallo plain");
      expect(data.usage.output_tokens).toBeGreaterThan(0);
      expect(response.headers.get("x-sluice-instance")).toBe(`b-${target}`);

      const stream = anthropic().messages.stream({ model: pool, max_tokens: 200, messages: [{ role: "user", content: "Hallo streamed" }] });
      const final = await stream.finalMessage();
      expect(final.content.map((b) => (b.type === "text" ? b.text : "")).join("")).toContain("Hallo streamed");
      expect(final.stop_reason).toBe("end_turn");
      expect(final.usage.output_tokens).toBeGreaterThan(0);
      await expectLogged(from, target, fail);
    });
  }
});
