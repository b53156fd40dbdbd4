// A key pool through build/ai-proxy.wasm: requests take the instance's keys in turn; a key the
// provider says is spent (429 with its reset) or refuses (401) is set aside for every worker while
// the others go on, and the instance stays in; when every key is aside, the instance is rate-limited
// as before. Keys appear in metrics only as short ids.
import { describe, it, expect } from "vitest";
import { createHash } from "node:crypto";
import { proxyHost, send, answer, header } from "./helpers.js";
import { renderYaml, startRendered } from "../fixtures/local-gateway.js";

const KEYS = ["sk-pool-one", "sk-pool-two", "sk-pool-three"];
const id = (k: string) => createHash("sha256").update(k).digest("hex").slice(0, 8);
const CONFIG = { instances: [{ name: "oa", provider: "openai", api_keys: KEYS, models: ["gpt-*"] }] };
const CHAT = { model: "gpt-4o", messages: [{ role: "user", content: "hi" }] };
const OK = JSON.stringify({ id: "c", object: "chat.completion", created: 1, model: "gpt-4o", choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } });

describe("ai-proxy: key pools", () => {
  it("takes the keys in turn and counts each by its short id", async () => {
    const h = await proxyHost(CONFIG);
    const used: string[] = [];
    for (let i = 0; i < 6; i++) {
      const s = send(h, "/v1/chat/completions", CHAT);
      used.push(header(s.upstream.headers, "authorization")!);
      answer(s, 200, "application/json", [OK]);
    }
    expect(used).toEqual([...KEYS, ...KEYS].map((k) => `Bearer ${k}`));
    for (const k of KEYS) expect(h.getMetric(`sluice.ai_key_requests;instance=oa;upstream_key=${id(k)}`)?.value).toBe(2n);
    expect(JSON.stringify(h.prometheus())).not.toContain("sk-pool");
  });

  it("sets a spent key aside until its reset (in shared data, for every worker) and keeps the instance in", async () => {
    const h = await proxyHost(CONFIG);
    const first = send(h, "/v1/chat/completions", CHAT);
    answer(first, 200, "application/json", [OK]);
    const second = send(h, "/v1/chat/completions", CHAT);
    expect(header(second.upstream.headers, "authorization")).toBe(`Bearer ${KEYS[1]}`);
    answer(second, 429, "application/json", [JSON.stringify({ error: { message: "Rate limit reached", type: "requests", code: "rate_limit_exceeded" } })], { "retry-after": "30" });
    expect(h.getMetric(`sluice.ai_key_set_aside;instance=oa;upstream_key=${id(KEYS[1])};status=429`)?.value).toBe(1n);
    const used: string[] = [];
    for (let i = 0; i < 4; i++) {
      const s = send(h, "/v1/chat/completions", CHAT);
      expect(s.getSentLocalResponse()).toBeNull(); // the instance is still in
      used.push(header(s.upstream.headers, "authorization")!);
      answer(s, 200, "application/json", [OK]);
    }
    expect(used).not.toContain(`Bearer ${KEYS[1]}`);
    expect(new Set(used)).toEqual(new Set([`Bearer ${KEYS[0]}`, `Bearer ${KEYS[2]}`]));
    expect(h.getLogs("warn").some((l) => l.includes(id(KEYS[1])) && !l.includes("sk-pool"))).toBe(true);
  });

  it("sets a refused key aside, and rate-limits the instance only when every key is aside", async () => {
    const h = await proxyHost(CONFIG);
    for (const status of [401, 429, 429]) {
      const s = send(h, "/v1/chat/completions", CHAT);
      answer(s, status, "application/json", [JSON.stringify({ error: { message: "no", type: "invalid_request_error" } })], status === 429 ? { "retry-after": "30" } : {});
    }
    expect(h.getMetric(`sluice.ai_key_set_aside;instance=oa;upstream_key=${id(KEYS[0])};status=401`)?.value).toBe(1n);
    expect(h.getMetric("sluice.ai_instance_failed;instance=oa;cause=429")?.value).toBe(1n);
  });

  it("refuses a pool with a key given twice, or with api_key beside it", async () => {
    const why = (cfg: object) => proxyHost(cfg).then(() => "", (e) => (e.logs ?? []).join("\n"));
    expect(await why({ instances: [{ name: "oa", provider: "openai", api_keys: ["a", "a"] }] })).toContain("the same key is given twice");
    expect(await why({ instances: [{ name: "oa", provider: "openai", api_key: "x", api_keys: ["a", "b"] }] })).toContain("a key pool, not both");
  });
});

describe("key pools from gateway.yaml", () => {
  it("api_keys_env is rendered with every variable for the VM, and npm start's mock sees the keys in turn", async () => {
    const r = renderYaml(`
providers:
  - name: pooled
    provider: openai
    api_keys_env: [OPENAI_KEY_A, OPENAI_KEY_B]
`);
    expect(r.ecds("ai-proxy")).toContain("OPENAI_KEY_A");
    expect(r.ecds("ai-proxy")).toContain("OPENAI_KEY_B");
    const gw = await startRendered(r);
    try {
      for (let i = 0; i < 4; i++) {
        const r = await fetch(`${gw.url}/v1/chat/completions`, { method: "POST", headers: { authorization: "Bearer sk-alice-123", "content-type": "application/json" }, body: JSON.stringify(CHAT) });
        expect(r.status).toBe(200);
      }
      const seen = gw.mocks.pooled.requests.map((r) => r.headers.authorization);
      expect(seen).toEqual(["Bearer sluice-mock-key-1", "Bearer sluice-mock-key-2", "Bearer sluice-mock-key-1", "Bearer sluice-mock-key-2"]);
    } finally {
      await gw.close();
    }
  }, 30_000);
});
