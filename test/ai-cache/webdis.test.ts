// ai-cache's shared store: a Redis behind Webdis that several Envoys use, through the compiled
// modules. Two hosts (two Envoys) share answers; Redis expires them; Webdis's ACL takes the
// gateway's credential; a store that fails or is down makes misses, never failed requests.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { Host } from "../../host/index.js";
import { RENDERED_STREAM_BUFFER_LIMIT } from "../ai-proxy/helpers.js";
import { PROXY, ask, reply, got, isHit, openaiAnswer } from "./helpers.js";
import { startWebdis, type Webdis } from "./webdis-server.js";

const CHAT = "/v1/chat/completions";
let webdis: Webdis;

beforeAll(async () => {
  webdis = await startWebdis();
}, 30_000);
afterAll(() => webdis?.stop());

async function envoy(store: object = {}, env: Record<string, string> = {}) {
  return Host.create({
    filters: [
      {
        name: "ai-cache", wasm: "build/ai-cache.wasm", allowOnHeadersStopIteration: true,
        configuration: { store: { type: "webdis", cluster: "sluice-cache-store", authority: "webdis.local", auth: { header: "authorization", value_env: "WEBDIS_AUTH", prefix: "Basic " }, ...store } },
        env: { WEBDIS_AUTH: Buffer.from(`${webdis.user}:${webdis.password}`).toString("base64"), ...env },
      },
      { name: "ai-proxy", wasm: "build/ai-proxy.wasm", allowOnHeadersStopIteration: true, configuration: PROXY },
    ],
    clusters: { "sluice-cache-store": webdis.url },
    bufferLimitBytes: RENDERED_STREAM_BUFFER_LIMIT,
  });
}

const q = (text: string) => ({ model: "gpt-4o", messages: [{ role: "user", content: text }] });

/** Waits for the store's write (fire and forget after the response) to be counted. */
async function stored(h: Host, n: bigint) {
  for (let i = 0; i < 100 && (h.getMetric("sluice.cache_stores;outcome=stored")?.value ?? 0n) < n; i++) await h.settle(), await new Promise((r) => setTimeout(r, 10));
  expect(h.getMetric("sluice.cache_stores;outcome=stored")?.value).toBe(n);
}

describe("ai-cache with a Redis behind Webdis", () => {
  it("one Envoy's answer serves another's request", async () => {
    const a = await envoy();
    const b = await envoy();
    const text = `shared ${Date.now()}`;
    reply(await ask(a, CHAT, q(text)), "application/json", [openaiAnswer("From Envoy A.")]);
    await stored(a, 1n);
    const hit = await ask(b, CHAT, q(text));
    expect(isHit(hit)).toBe(true);
    expect(JSON.parse(got(hit).body).choices[0].message.content).toBe("From Envoy A.");
    // Consumers stay apart in the shared store too.
    expect(isHit(await ask(b, CHAT, q(text), { state: { consumer: "mallory" } }))).toBe(false);
  });

  it("streams a hit from the shared store in the client's API", async () => {
    const a = await envoy();
    const text = `streamed ${Date.now()}`;
    reply(await ask(a, CHAT, q(text)), "application/json", [openaiAnswer("Streamed back.")]);
    await stored(a, 1n);
    const s = await ask(a, "/v1/messages", { model: "claude-sonnet-4-5", max_tokens: 50, messages: [{ role: "user", content: text }] });
    // Another client API is another key: a miss.
    expect(isHit(s)).toBe(false);
    const again = await ask(a, CHAT, { ...q(text), stream: true });
    expect(isHit(again)).toBe(true);
    expect(got(again).body).toContain("data: [DONE]");
  });

  it("lets Redis expire answers after ttl", async () => {
    const h2 = await Host.create({
      filters: [
        { name: "ai-cache", wasm: "build/ai-cache.wasm", allowOnHeadersStopIteration: true, configuration: { ttl_ms: 1000, store: { type: "webdis", cluster: "s", auth: { header: "authorization", value_env: "WEBDIS_AUTH", prefix: "Basic " } } }, env: { WEBDIS_AUTH: Buffer.from(`${webdis.user}:${webdis.password}`).toString("base64") } },
        { name: "ai-proxy", wasm: "build/ai-proxy.wasm", allowOnHeadersStopIteration: true, configuration: PROXY },
      ],
      clusters: { s: webdis.url },
    });
    const text = `expiring ${Date.now()}`;
    reply(await ask(h2, CHAT, q(text)), "application/json", [openaiAnswer("Soon gone.")]);
    await stored(h2, 1n);
    expect(isHit(await ask(h2, CHAT, q(text)))).toBe(true);
    await new Promise((r) => setTimeout(r, 2100));
    expect(isHit(await ask(h2, CHAT, q(text)))).toBe(false);
  });

  it("a wrong credential or a store that is down: misses, counted, requests go on", async () => {
    const wrong = await envoy({}, { WEBDIS_AUTH: Buffer.from("sluice:nope").toString("base64") });
    const s = await ask(wrong, CHAT, q(`denied ${Date.now()}`));
    expect(isHit(s)).toBe(false);
    reply(s, "application/json", [openaiAnswer("Still answered.")]);
    expect(JSON.parse(got(s).body).choices[0].message.content).toBe("Still answered.");
    for (let i = 0; i < 50 && !wrong.getMetric("sluice.cache_stores;outcome=refused"); i++) await wrong.settle(), await new Promise((r) => setTimeout(r, 10));
    expect(wrong.getMetric("sluice.cache_stores;outcome=refused")?.value).toBe(1n);
    expect(wrong.getMetric("sluice.cache_store_errors")?.value).toBe(2n);

    const down = await Host.create({
      filters: [
        { name: "ai-cache", wasm: "build/ai-cache.wasm", allowOnHeadersStopIteration: true, configuration: { store: { type: "webdis", cluster: "gone", timeout_ms: 300 } } },
        { name: "ai-proxy", wasm: "build/ai-proxy.wasm", allowOnHeadersStopIteration: true, configuration: PROXY },
      ],
      clusters: { gone: "http://127.0.0.1:1" },
    });
    const d = await ask(down, CHAT, q("anyone there?"));
    expect(isHit(d)).toBe(false);
    expect(d.upstream.headers).not.toBeNull();
  });
});
