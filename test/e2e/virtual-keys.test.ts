// Issue 19 item 3 through the local gateway, without a restart: `npm run keys` (runKeys, the command's
// own code) creates, rotates and revokes virtual keys in the keys file; npm start's watch re-renders
// and the running gateway takes them up (ECDS). The official clients use the keys; a key's scopes are
// refused in each client's shape and /v1/models lists only the key's models; a key's own token limit
// is enforced by ai-ratelimit.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { GoogleGenAI } from "@google/genai";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import type { FSWatcher } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { render } from "../../cli/render.js";
import { runKeys } from "../../cli/keys.js";
import { readKeysFile, epochSeconds } from "../../cli/keys-file.js";
import { startLocalGateway, type LocalGateway } from "../../cli/start.js";
import { watchGatewayYaml, type WatchEvent } from "../../cli/reload.js";
import { startHeldStream } from "../fixtures/held-stream.js";

/** An OpenAI-compatible server whose streams hold after their first chunk until released. */
const held: (() => void)[] = [];
let streamArrived: (() => void) | null = null;
const slow = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    startHeldStream(res, "slow-model", held);
    streamArrived?.();
  });
});

const GATEWAY_YAML = (slowPort: number) => `
listener: { port: 10000 }
access_log: { path: /dev/null }
consumers:
  - { name: ops, keys: [sk-ops] }
providers:
  - { name: openai, provider: openai, api_key_env: OPENAI_API_KEY, models: [gpt-4o, gpt-4o-mini] }
  - { name: anthropic, provider: anthropic, api_key_env: ANTHROPIC_API_KEY, models: [claude-sonnet-4-5] }
  - { name: gemini, provider: gemini, api_key_env: GEMINI_API_KEY, models: [gemini-2.5-flash] }
  - { name: slow, provider: openai-compatible, endpoint: "http://127.0.0.1:${slowPort}/v1", models: [slow-model] }
filters:
  ai_ratelimit:
    rules:
      - { name: per-consumer, key: [consumer], limit: 10000000, window: 1h }
virtual_keys: { file: keys.yaml }
`;

let dir: string;
let gw: LocalGateway;
let watcher: FSWatcher;
let reloaded: ((e: WatchEvent) => void) | null = null;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "sluice-vkeys-"));
  await new Promise<void>((r) => slow.listen(0, "127.0.0.1", r));
  writeFileSync(join(dir, "gateway.yaml"), GATEWAY_YAML((slow.address() as AddressInfo).port));
  writeFileSync(join(dir, "keys.yaml"), "keys: []\n");
  render({ config: join(dir, "gateway.yaml"), outDir: join(dir, "envoy"), env: {} });
  gw = await startLocalGateway({ envoyYaml: join(dir, "envoy", "envoy.yaml"), port: 0, adminPort: 0, env: {}, mock: "auto", accessLog: () => {} });
  watcher = watchGatewayYaml({ config: join(dir, "gateway.yaml"), outDir: join(dir, "envoy"), gateway: gw, onEvent: (e) => reloaded?.(e) });
}, 60_000);

afterAll(async () => {
  watcher?.close();
  for (const release of held) release();
  await gw?.close();
  slow.close();
});

/** Runs `npm run keys -- <args>` on the temp dir and waits until the gateway has the new key-auth. */
async function keys(...args: string[]): Promise<string> {
  const applied = new Promise<WatchEvent>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("no reload within 10 s")), 10_000);
    reloaded = (e) => {
      if (e.kind === "reloaded" && !e.result.applied.some((f) => f.includes("key"))) return;
      clearTimeout(t);
      reloaded = null;
      resolve(e);
    };
  });
  const r = runKeys([...args, "--config", join(dir, "gateway.yaml"), "--out", join(dir, "envoy")]);
  const e = await applied;
  expect(e.kind).toBe("reloaded");
  return r.out;
}

const openai = (key: string) => new OpenAI({ apiKey: key, baseURL: `${gw.url}/v1`, maxRetries: 0 });
const chat = (key: string, model = "gpt-4o-mini", max_tokens = 16) =>
  openai(key).chat.completions.create({ model, max_tokens, messages: [{ role: "user", content: "Hello there" }] });
const status = (p: Promise<unknown>) => p.then(() => 200, (e: { status?: number }) => e.status ?? -1);

describe("virtual keys through the local gateway, without a restart", () => {
  it("create, use, rotate (both valid during grace), revoke (refused at once), expire", async () => {
    const host = gw.host;
    const secret = await keys("create", "--id", "ci-bot", "--owner", "alice", "--team", "platform");
    expect(secret).toMatch(/^sk-sluice-ci-bot-[A-Za-z0-9_-]{43}$/);
    // Only the digest is stored.
    expect(readFileSync(join(dir, "keys.yaml"), "utf8")).not.toContain(secret);
    const r = await chat(secret);
    expect(r.choices[0].message.content).toContain("Hello there");

    const rotated = await keys("rotate", "--id", "ci-bot", "--grace", "1h");
    expect(rotated).not.toBe(secret);
    expect(await status(chat(secret))).toBe(200);
    expect(await status(chat(rotated))).toBe(200);

    await keys("revoke", "--id", "ci-bot");
    expect(await status(chat(rotated))).toBe(401);
    expect(await status(chat(secret))).toBe(401);

    // Expiry, and a rotation's grace period running out, on the gateway's clock.
    const short = await keys("create", "--id", "short", "--owner", "bob", "--expires", "2s");
    const graced = await keys("create", "--id", "graced", "--owner", "bob");
    const fresh = await keys("rotate", "--id", "graced", "--grace", "2s");
    expect(await status(chat(short))).toBe(200);
    expect(await status(chat(graced))).toBe(200);
    const file = readKeysFile(join(dir, "keys.yaml"));
    const until = Math.max(epochSeconds(file.keys.find((k) => k.id === "short")!.expires!), ...file.keys.find((k) => k.id === "graced")!.secrets.map((s) => (s.expires ? epochSeconds(s.expires) : 0)));
    await new Promise((res) => setTimeout(res, until * 1000 - Date.now() + 50));
    const err = await chat(short).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(err.error).toMatchObject({ code: "invalid_api_key", message: "The API key has expired." });
    expect(await status(chat(graced))).toBe(401);
    expect(await status(chat(fresh))).toBe(200);
    // Every change was taken up by the running gateway: never restarted, the host only swapped.
    expect(gw.host).not.toBe(host);
    expect(gw.url).toBeTruthy();
  }, 30_000);

  it("a stream in flight when its key is revoked finishes under the old keys; the next request is refused", async () => {
    const k = await keys("create", "--id", "streamer", "--owner", "erin");
    const arrived = new Promise<void>((r) => (streamArrived = r));
    const stream = await openai(k).chat.completions.create({ model: "slow-model", stream: true, messages: [{ role: "user", content: "Hi" }] });
    const reading = (async () => {
      let text = "";
      for await (const c of stream) text += c.choices[0]?.delta?.content ?? "";
      return text;
    })();
    await arrived;
    await keys("revoke", "--id", "streamer");
    expect(await status(chat(k))).toBe(401);
    held.shift()!();
    expect(await reading).toBe("first last");
  }, 30_000);

  it("a key's scopes: 403 model_not_allowed in each client's shape, /v1/models lists the key's models", async () => {
    const k = await keys("create", "--id", "scoped", "--owner", "carol", "--models", "gpt-4o-mini,gemini-2.5-flash-lite*");
    expect(await status(chat(k, "gpt-4o-mini"))).toBe(200);

    const o = await chat(k, "gpt-4o").catch((e) => e);
    expect(o).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(o.error).toMatchObject({ code: "model_not_allowed", type: "permission_error" });

    const a = await new Anthropic({ apiKey: k, baseURL: gw.url, maxRetries: 0 }).messages
      .create({ model: "claude-sonnet-4-5", max_tokens: 16, messages: [{ role: "user", content: "Hi" }] })
      .catch((e) => e);
    expect(a).toBeInstanceOf(Anthropic.PermissionDeniedError);
    expect(a.error).toMatchObject({ type: "error", error: { type: "permission_error" } });

    const g = await new GoogleGenAI({ apiKey: k, httpOptions: { baseUrl: gw.url } }).models
      .generateContent({ model: "gemini-2.5-flash", contents: "Hi" })
      .catch((e) => e);
    expect(g.status).toBe(403);
    expect(JSON.parse(g.message.slice(g.message.indexOf("{")))).toMatchObject({ error: { code: 403, status: "PERMISSION_DENIED" } });

    const listed: string[] = [];
    for await (const m of openai(k).models.list()) listed.push(m.id);
    expect(listed).toEqual(["gpt-4o-mini"]);
    const anthropicListed = (await new Anthropic({ apiKey: k, baseURL: gw.url, maxRetries: 0 }).models.list()).data.map((m) => m.id);
    expect(anthropicListed).toEqual(["gpt-4o-mini"]);
    const geminiListed: string[] = [];
    for await (const m of await new GoogleGenAI({ apiKey: k, httpOptions: { baseUrl: gw.url } }).models.list()) geminiListed.push(m.name!);
    expect(geminiListed).toEqual(["models/gpt-4o-mini"]);
    // A model outside the scope is not found either.
    expect(await status(openai(k).models.retrieve("gpt-4o"))).toBe(404);
    // The consumer's own key sees everything.
    const all: string[] = [];
    for await (const m of openai("sk-ops").models.list()) all.push(m.id);
    expect(all).toEqual(["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash", "slow-model"]);
  }, 30_000);

  it("a key's own token limit is an ai-ratelimit rule keyed by the key", async () => {
    const k = await keys("create", "--id", "tiny", "--owner", "dave", "--tokens", "40/1h");
    const e = await chat(k, "gpt-4o-mini", 64).catch((x) => x);
    expect(e).toBeInstanceOf(OpenAI.RateLimitError);
    expect(JSON.stringify(e.error)).toContain("vk-tiny-0");
    // Another key of the same owner is not counted against it.
    const other = await keys("create", "--id", "roomy", "--owner", "dave");
    expect(await status(chat(other, "gpt-4o-mini", 64))).toBe(200);
  }, 30_000);
});
