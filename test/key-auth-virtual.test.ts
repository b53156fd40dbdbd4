// key-auth's virtual keys through build/key-auth.wasm: a key's id, owner, team and scopes reach filter
// state; an expired key, and a rotated key's old secret past its grace period, are refused (the host's
// clock, proxy_get_current_time_nanoseconds, is moved by the test).
import { describe, it, expect } from "vitest";
import { createHash } from "node:crypto";
import { Host, HostLoadError } from "../host/index.js";

const WASM = "build/key-auth.wasm";
const sha = (s: string) => createHash("sha256").update(s).digest("hex");
const T0 = 1_800_000_000; // seconds since the epoch

function config(extra: object[] = []) {
  return {
    consumers: [{ name: "alice", keys: ["sk-alice"] }],
    virtual_keys: [
      { id: "ci-bot", consumer: "alice", team: "platform", secrets: [{ sha256: sha("sk-sluice-ci-bot-new") }, { sha256: sha("sk-sluice-ci-bot-old"), expires: T0 + 3600 }], models: ["gpt-4o*", "claude-sonnet-4-5"], pools: ["fast"] },
      { id: "short", consumer: "bob", expires: T0 + 60, secrets: [{ sha256: sha("sk-sluice-short-x") }] },
      ...extra,
    ],
  };
}

async function host(configuration: object, clock: { s: number }) {
  return Host.create({ filters: [{ name: "key-auth", wasm: WASM, configuration }], clock: () => BigInt(clock.s) * 1_000_000_000n });
}

function call(h: Host, headers: Record<string, string>, path = "/v1/chat/completions") {
  const s = h.newStream();
  const action = s.callOnRequestHeaders({ ":method": "POST", ":path": path, ":authority": "gw", ...headers }, false);
  return { s, action };
}

function expect401(s: ReturnType<Host["newStream"]>, message: RegExp) {
  const r = s.getSentLocalResponse();
  expect(r?.statusCode).toBe(401);
  expect(JSON.parse(r!.body.toString()).error).toMatchObject({ code: "invalid_api_key", message: expect.stringMatching(message) });
  expect(s.getFilterState("sluice.consumer")).toBeUndefined();
  expect(s.getFilterState("sluice.key_id")).toBeUndefined();
}

describe("key-auth virtual keys", () => {
  it("a virtual key sets the owner, key id, team, groups and scopes, and is removed before upstream", async () => {
    const clock = { s: T0 };
    const h = await host(config(), clock);
    const { s, action } = call(h, { authorization: "Bearer sk-sluice-ci-bot-new" });
    expect(action).toBe("Continue");
    expect(s.getFilterState("sluice.consumer")).toBe("alice");
    expect(s.getFilterState("sluice.key_id")).toBe("ci-bot");
    expect(s.getFilterState("sluice.team")).toBe("platform");
    expect(s.getFilterState("sluice.groups")).toBe("platform");
    expect(s.getFilterState("sluice.key_models")).toBe("gpt-4o*,claude-sonnet-4-5");
    expect(s.getFilterState("sluice.key_pools")).toBe("fast");
    expect((s.upstream.headers ?? []).filter(([k]) => k === "authorization")).toEqual([]);
    // A consumer's own key stays a consumer key: no key id, team or scopes.
    const own = call(h, { authorization: "Bearer sk-alice" }).s;
    expect(own.getFilterState("sluice.consumer")).toBe("alice");
    expect(own.getFilterState("sluice.key_id")).toBeUndefined();
    expect(own.getFilterState("sluice.team")).toBeUndefined();
    expect(own.getFilterState("sluice.key_models")).toBeUndefined();
    // A key without team or scopes writes neither.
    const short = call(h, { "x-api-key": "sk-sluice-short-x" }).s;
    expect(short.getFilterState("sluice.consumer")).toBe("bob");
    expect(short.getFilterState("sluice.key_id")).toBe("short");
    expect(short.getFilterState("sluice.team")).toBeUndefined();
    expect(short.getFilterState("sluice.groups")).toBeUndefined();
    expect(short.getFilterState("sluice.key_pools")).toBeUndefined();
  });

  it("refuses an expired key with 401 (OpenAI shape, and Gemini's on Gemini paths)", async () => {
    const clock = { s: T0 + 59 };
    const h = await host(config(), clock);
    expect(call(h, { authorization: "Bearer sk-sluice-short-x" }).action).toBe("Continue");
    clock.s = T0 + 60;
    const { s, action } = call(h, { authorization: "Bearer sk-sluice-short-x" });
    expect(action).not.toBe("Continue");
    expect401(s, /expired/);
    const g = call(h, { "x-goog-api-key": "sk-sluice-short-x" }, "/v1beta/models/gemini-2.5-flash:generateContent").s;
    const r = g.getSentLocalResponse();
    expect(r?.statusCode).toBe(401);
    expect(JSON.parse(r!.body.toString()).error).toMatchObject({ code: 401, status: "UNAUTHENTICATED" });
  });

  it("a rotated key: old and new secrets both valid during the grace period, then only the new one", async () => {
    const clock = { s: T0 + 3599 };
    const h = await host(config(), clock);
    for (const k of ["sk-sluice-ci-bot-new", "sk-sluice-ci-bot-old"]) {
      const { s } = call(h, { authorization: `Bearer ${k}` });
      expect(s.getSentLocalResponse()).toBeNull();
      expect(s.getFilterState("sluice.key_id")).toBe("ci-bot");
    }
    clock.s = T0 + 3600;
    expect401(call(h, { authorization: "Bearer sk-sluice-ci-bot-old" }).s, /expired/);
    expect(call(h, { authorization: "Bearer sk-sluice-ci-bot-new" }).s.getFilterState("sluice.key_id")).toBe("ci-bot");
  });

  it("a revoked key (gone from the configuration) is refused as unknown", async () => {
    const clock = { s: T0 };
    const h = await host({ ...config(), virtual_keys: config().virtual_keys.slice(1) }, clock);
    expect401(call(h, { authorization: "Bearer sk-sluice-ci-bot-new" }).s, /Invalid API key/);
  });

  it("stops growing linear memory over 50,000 virtual-key requests (valid, rotated, expired)", async () => {
    const clock = { s: T0 + 30 };
    const h = await host(config(), clock);
    const keys = ["Bearer sk-sluice-ci-bot-new", "Bearer sk-sluice-ci-bot-old", "Bearer sk-sluice-short-x", "Bearer wrong"];
    const run = (n: number) => {
      for (let i = 0; i < n; i++) {
        if (i === n / 2) clock.s = T0 + 90; // short has expired from here on
        const s = h.newStream();
        s.callOnRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw", authorization: keys[i % 4] }, false);
        s.completeHttpContext();
      }
      clock.s = T0 + 30;
    };
    run(10_000);
    const before = h.memoryPages("key-auth");
    run(50_000);
    expect(h.memoryPages("key-auth")).toBe(before);
  });

  it("refuses bad virtual_keys with the field named, never the secret", async () => {
    const cases: [object, RegExp][] = [
      [{ id: "x y", consumer: "a", secrets: [{ sha256: sha("a") }] }, /virtual_keys\[2\]\.id: must be 1 to 64/],
      [{ id: "ci-bot", consumer: "a", secrets: [{ sha256: sha("a") }] }, /virtual_keys\[2\]\.id: duplicate virtual key id 'ci-bot'/],
      [{ id: "z", consumer: "", secrets: [{ sha256: sha("a") }] }, /virtual_keys\[2\]\.consumer: is required/],
      [{ id: "z", consumer: "a", secrets: [] }, /virtual_keys\[2\]\.secrets: must list 1 to 4/],
      [{ id: "z", consumer: "a", secrets: [{ sha256: "nothex" }] }, /secrets\[0\]\.sha256: must be 64 hex/],
      [{ id: "z", consumer: "a", secrets: [{ sha256: sha("a") }], models: ["a,b"] }, /models\[0\]: must be a name or pattern/],
      [{ id: "z", consumer: "a", secrets: [{ sha256: sha("sk-alice") }] }, /virtual key 'z' has a secret that is already given to consumer 'alice'/],
      [{ id: "z", consumer: "a", secrets: [{ sha256: sha("a") }], extra: 1 }, /virtual_keys\[2\]\.extra: unknown field/],
    ];
    for (const [bad, message] of cases) {
      const err = await host(config([bad]), { s: T0 }).catch((e) => e);
      expect(err).toBeInstanceOf(HostLoadError);
      const logs = (err as HostLoadError).logs.join("\n");
      expect(logs).toMatch(message);
      expect(logs).not.toContain("sk-alice");
    }
  });
});

describe("ai-ratelimit's key parts key and team, from key-auth's virtual keys", () => {
  it("a team rule counts every key of the team together; a key rule each key alone; a consumer key is in neither", async () => {
    const clock = { s: T0 };
    const keyAuth = {
      consumers: [{ name: "ops", keys: ["sk-ops"] }],
      virtual_keys: [
        { id: "a1", consumer: "alice", team: "red", secrets: [{ sha256: sha("sk-a1") }] },
        { id: "a2", consumer: "bob", team: "red", secrets: [{ sha256: sha("sk-a2") }] },
        { id: "b1", consumer: "carol", team: "blue", secrets: [{ sha256: sha("sk-b1") }] },
      ],
    };
    const rules = {
      rules: [
        { name: "per-team", key: ["team"], when: { team: "red" }, limit: 150, window: "1h", strategy: "completion_tokens" },
        { name: "per-key", key: ["key"], limit: 100, window: "1h", strategy: "completion_tokens" },
      ],
    };
    const h = await Host.create({
      filters: [
        { name: "key-auth", wasm: WASM, configuration: keyAuth },
        { name: "ai-ratelimit", wasm: "build/ai-ratelimit.wasm", configuration: rules, allowOnHeadersStopIteration: true },
      ],
      clock: () => BigInt(clock.s) * 1_000_000_000n,
    });
    const send = (key: string, max_tokens: number) => {
      const s = h.newStream();
      s.callOnRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw", "content-type": "application/json", authorization: `Bearer ${key}` }, false);
      s.callOnRequestBody(JSON.stringify({ model: "m", max_tokens, messages: [{ role: "user", content: "hi" }] }), true);
      const r = s.getSentLocalResponse();
      return r ? `${r.statusCode} ${s.getFilterState("sluice.ratelimit_rule")}` : "admitted";
    };
    expect(send("sk-a1", 90)).toBe("admitted"); // red: 90 reserved, a1: 90
    expect(send("sk-a1", 20)).toBe("429 per-key"); // a1 would pass 100
    expect(send("sk-a2", 70)).toBe("429 per-team"); // red would pass 150 (a2 alone is fine)
    expect(send("sk-a2", 60)).toBe("admitted");
    expect(send("sk-b1", 100)).toBe("admitted"); // blue has no team rule; b1 its own key counter
    expect(send("sk-ops", 1000)).toBe("admitted"); // no key id, no team: neither rule applies
  });
});
