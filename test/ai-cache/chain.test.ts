// ai-cache with its neighbours in the chain, through the compiled modules: ai-guard before it (a
// masked prompt is looked up masked, and a hit's answer gets this request's own values back, since
// Envoy sends the local reply through ai-guard's answer callbacks) and ai-ratelimit after it (a hit
// reserves and charges no tokens).
import { describe, it, expect } from "vitest";
import { Host } from "../../host/index.js";
import { RENDERED_STREAM_BUFFER_LIMIT } from "../ai-proxy/helpers.js";
import { PROXY, ask, reply, got, isHit, openaiAnswer } from "./helpers.js";

const CHAT = "/v1/chat/completions";

async function chain(filters: { name: string; configuration: object }[]) {
  return Host.create({
    filters: filters.map((f) => ({ ...f, wasm: `build/${f.name}.wasm`, allowOnHeadersStopIteration: true })),
    bufferLimitBytes: RENDERED_STREAM_BUFFER_LIMIT,
  });
}

describe("ai-cache in the chain", () => {
  it("after ai-guard: one masked prompt serves another person's, each answer with its own value restored", async () => {
    const h = await chain([
      { name: "ai-guard", configuration: { detectors: { email: { request: "mask_and_restore", response: "log" } } } },
      { name: "ai-cache", configuration: {} },
      { name: "ai-proxy", configuration: PROXY },
    ]);
    const q = (mail: string) => ({ model: "gpt-4o", messages: [{ role: "user", content: `Write a greeting to ${mail}` }] });
    const first = await ask(h, CHAT, q("ada@example.com"));
    const sent = JSON.parse(first.upstream.body.toString());
    expect(sent.messages[0].content).toBe("Write a greeting to <EMAIL_1>");
    reply(first, "application/json", [openaiAnswer("Dear <EMAIL_1>, hello!")]);
    expect(JSON.parse(got(first).body).choices[0].message.content).toBe("Dear ada@example.com, hello!");

    const second = await ask(h, CHAT, q("bob@example.org"));
    expect(isHit(second)).toBe(true);
    // The local reply went through ai-guard's answer side: Bob's address, never Ada's.
    const body = second.downstream.body.toString();
    expect(JSON.parse(body).choices[0].message.content).toBe("Dear bob@example.org, hello!");
    expect(body).not.toContain("ada@");
  });

  it("before ai-ratelimit: a hit reserves and charges nothing against a token limit", async () => {
    const h = await chain([
      { name: "ai-cache", configuration: {} },
      { name: "ai-ratelimit", configuration: { rules: [{ name: "tight", key: ["consumer"], limit: 60, window: "1m", strategy: "total_tokens" }] } },
      { name: "ai-proxy", configuration: PROXY },
    ]);
    const q = { model: "gpt-4o", max_tokens: 10, messages: [{ role: "user", content: "hi" }] };
    reply(await ask(h, CHAT, q), "application/json", [openaiAnswer("Hello.")]); // 21 tokens charged
    for (let i = 0; i < 10; i++) expect(isHit(await ask(h, CHAT, q))).toBe(true);
    // The limit still has room for requests that reach a provider: hits charged nothing.
    const other = await ask(h, CHAT, { ...q, messages: [{ role: "user", content: "hello" }] });
    expect(other.getSentLocalResponse()).toBeNull();
    expect(other.upstream.headers).not.toBeNull();
  });
});
