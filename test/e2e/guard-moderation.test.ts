// ai-guard's external moderation end to end: gateway.yaml with filters.ai_guard.moderation -> render
// (the sluice-moderation cluster) -> the local gateway (mock providers) with the mock moderation
// service -> the official openai and @anthropic-ai/sdk clients. A flagged prompt is a clean 400 each
// SDK parses (stream or not; openai, @anthropic-ai/sdk, @google/genai) naming the category and reaching no provider; a slow service past
// timeout_ms is a 503 each SDK parses (failure: closed); the masked text is what the service saw; the
// access log carries the verdict and the moderation category.
import { describe, it, expect, beforeAll, afterAll, beforeEach } from "vitest";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { type LocalGateway } from "../../cli/start.js";
import { THREE_PROVIDERS_YAML, sdkClients, startRendered } from "../fixtures/sdk-gateway.js";
import { startModerationMock, type ModerationMock } from "../../scripts/mocks/moderation.js";

const gatewayYaml = (moderationUrl: string) => `${THREE_PROVIDERS_YAML}  ai_guard:
    detectors: { email: mask }
    moderation: { provider: openai, endpoint: "${moderationUrl}", api_key_env: MODERATION_KEY, timeout_ms: 300, failure: closed }
`;

let gw: LocalGateway;
let mod: ModerationMock;
const log: string[] = [];
const { openai, anthropic, google } = sdkClients(() => gw.url, "sk-team-a");
const settle = () => new Promise((res) => setTimeout(res, 60));
const lastLog = (): Record<string, any> => JSON.parse(log.at(-1)!);
const seen = () => Object.values(gw.mocks).reduce((n, m) => n + m.requests.length, 0);

beforeAll(async () => {
  mod = await startModerationMock({ apiKey: "mod-key" });
  gw = await startRendered(gatewayYaml(mod.url), { env: { MODERATION_KEY: "mod-key" }, accessLog: (l) => log.push(l) });
}, 40_000);

afterAll(async () => {
  await gw?.close();
  await mod?.close();
});

beforeEach(() => mod.reset());

describe("ai-guard external moderation through the local gateway with the official SDKs", () => {
  it("a clean prompt reaches the provider after the service passed it; the service saw the masked text", async () => {
    const r = await openai().chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "write to jane@example.com about lunch" }] });
    expect(r.choices[0].message.content).toBeTruthy();
    expect(mod.requests).toHaveLength(1);
    expect(mod.requests[0].headers.authorization).toBe("Bearer mod-key");
    expect(mod.requests[0].body.input).toEqual(["write to <EMAIL> about lunch"]);
    await settle();
    expect(lastLog()).toMatchObject({ status: 200, guard_verdict: "mask" });
  });

  it("openai and anthropic: a flagged prompt is a BadRequestError naming the category, stream or not; no provider is called", async () => {
    const before = seen();
    for (const stream of [false, true]) {
      const err = await openai()
        .chat.completions.create({ model: "gpt-4o-mini", stream, messages: [{ role: "user", content: "plan the attack at dawn" }] } as any)
        .then(() => null, (e) => e);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect(err.code).toBe("content_blocked");
      expect(err.message).toContain("violence");
      const a = await anthropic()
        .messages.create({ model: "claude-sonnet-4-5", max_tokens: 20, stream, messages: [{ role: "user", content: "plan the attack at dawn" }] } as any)
        .then(() => null, (e) => e);
      expect(a).toBeInstanceOf(Anthropic.BadRequestError);
      expect(a.error.error.type).toBe("invalid_request_error");
      expect(a.message).toContain("violence");
    }
    for (const stream of [false, true]) {
      const ai = google();
      const call = stream
        ? ai.models.generateContentStream({ model: "gemini-2.5-flash", contents: "plan the attack at dawn" }).then(async (s) => { for await (const _ of s) void _; })
        : ai.models.generateContent({ model: "gemini-2.5-flash", contents: "plan the attack at dawn" });
      const err = await call.then(() => null, (e) => e);
      expect(err?.status).toBe(400);
      expect(String(err?.message)).toContain("INVALID_ARGUMENT");
      expect(String(err?.message)).toContain("violence");
    }
    expect(seen()).toBe(before);
    await settle();
    expect(lastLog()).toMatchObject({ status: 400, guard_verdict: "block", guard_categories: "moderation:violence", response_code_details: "sluice_guard_moderation_blocked" });
  });

  it("a slow service (failure: closed) is a 503 each SDK parses; nothing reaches the provider", async () => {
    mod.set({ delayMs: 1500 });
    const before = seen();
    const err = await openai().chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hello" }] }).then(() => null, (e) => e);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect(err.status).toBe(503);
    expect(err.message).toContain("moderation");
    expect(err.message).not.toContain("mod-key");
    const a = await anthropic().messages.create({ model: "claude-sonnet-4-5", max_tokens: 20, messages: [{ role: "user", content: "hello" }] }).then(() => null, (e) => e);
    expect(a).toBeInstanceOf(Anthropic.InternalServerError);
    expect(a.status).toBe(503);
    const g = await google().models.generateContent({ model: "gemini-2.5-flash", contents: "hello" }).then(() => null, (e) => e);
    expect(g?.status).toBe(503);
    expect(String(g?.message)).toContain("UNAVAILABLE");
    expect(seen()).toBe(before);
    await settle();
    expect(lastLog()).toMatchObject({ status: 503, response_code_details: "sluice_guard_moderation_unavailable" });
  });
});
