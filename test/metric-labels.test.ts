// Metric labels of key-auth, ai-router and ai-ratelimit come only from their configuration (rule
// names; consumers never become labels): hostile traffic with thousands of distinct models, keys,
// header values, paths and query strings adds no series. (ai-proxy's labels: test/ai-proxy.)
import { describe, it, expect } from "vitest";
import { Host } from "../host/index.js";

const KEY_AUTH = { consumers: [{ name: "alice", keys: ["sk-alice"] }], query: "key", header: "x-goog-api-key" };
const ROUTER = {
  default_pool: "general",
  annotate: true,
  rules: [
    { name: "team", pool: "t", when: { header: { name: "x-team", prefix: "red" } } },
    { name: "models", pool: "m", when: { model: ["o1*"] } },
    { name: "code", pool: "c", when: { task: "code" } },
  ],
};
const RATELIMIT = {
  rules: [
    { name: "per-consumer", key: ["consumer"], limit: 1_000_000_000, window: "1m" },
    { name: "per-model-team", key: ["model", "header:x-team", "path"], limit: 1_000_000_000, window: "1m", max_keys: 10 },
  ],
};

describe("metric labels are bounded by the configuration", () => {
  it("2,000 requests with distinct models, keys, headers and paths leave the series as they were", async () => {
    const h = await Host.create({
      filters: [
        { name: "key-auth", wasm: "build/key-auth.wasm", configuration: KEY_AUTH },
        { name: "ai-router", wasm: "build/ai-router.wasm", configuration: ROUTER, allowOnHeadersStopIteration: true },
        { name: "ai-ratelimit", wasm: "build/ai-ratelimit.wasm", configuration: RATELIMIT, allowOnHeadersStopIteration: true },
      ],
    });
    const series = () => h.prometheus().split("\n").filter((l) => l && !l.startsWith("#"));
    const before = series();
    // Every label is a configured rule name, or "default".
    for (const line of before) {
      const labels = /\{(.*)\}/.exec(line)?.[1];
      if (labels) expect(labels).toMatch(/^rule="(team|models|code|default|per-consumer|per-model-team)"$/);
    }
    for (let i = 0; i < 2000; i++) {
      const s = h.newStream();
      const auth: Record<string, string> = i % 3 === 0 ? { authorization: `Bearer sk-guess-${i}` } : i % 3 === 1 ? { "x-goog-api-key": "sk-alice" } : {};
      const path = i % 2 ? `/v1/chat/completions?key=sk-alice&n=${i}` : `/v1/chat/completions;rule=x${i}`;
      s.callOnRequestHeaders({ ":method": "POST", ":path": path, ":authority": "gw", "x-team": `red;rule=${i}`, ...auth }, false);
      s.callOnRequestBody(JSON.stringify({ model: `m-${i};rule="x"`, messages: [{ role: "user", content: `write code ${i}` }] }), true);
      s.completeHttpContext();
    }
    const after = series();
    expect(after.map((l) => l.replace(/ \d+$/, ""))).toEqual(before.map((l) => l.replace(/ \d+$/, "")));
    // The traffic was counted: the labels exist and moved.
    expect(h.getMetric("sluice.key_auth.denied")!.value).toBeGreaterThan(0n);
    expect(h.getMetric("sluice.router_matched;rule=team")!.value).toBeGreaterThan(0n);
    expect(h.getMetric("sluice.ratelimit_admitted_tokens;rule=per-consumer")!.value).toBeGreaterThan(0n);
    h.close();
  });
});
