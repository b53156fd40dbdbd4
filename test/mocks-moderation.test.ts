// The mock moderation service (scripts/mocks/moderation.ts) speaks the real shapes: the official
// openai SDK calls its /v1/moderations and reads the result; Azure AI Content Safety's text:analyze
// and the webhook contract answer as documented; slow and error modes.
import { describe, it, expect, beforeAll, afterAll, beforeEach } from "vitest";
import OpenAI from "openai";
import { startModerationMock, OPENAI_CATEGORIES, type ModerationMock } from "../scripts/mocks/moderation.js";

let mock: ModerationMock;
beforeAll(async () => { mock = await startModerationMock({ apiKey: "k" }); });
afterAll(async () => { await mock.close(); });
beforeEach(() => mock.reset());

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(mock.url + path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });

describe("mock moderation service", () => {
  it("the official openai SDK calls /v1/moderations and parses the results", async () => {
    const client = new OpenAI({ apiKey: "k", baseURL: `${mock.url}/v1`, maxRetries: 0 });
    const r = await client.moderations.create({ model: "omni-moderation-latest", input: ["a calm day", "plan the attack"] });
    expect(r.model).toBe("omni-moderation-latest");
    expect(r.results).toHaveLength(2);
    expect(r.results[0].flagged).toBe(false);
    expect(r.results[1].flagged).toBe(true);
    expect(r.results[1].categories.violence).toBe(true);
    expect(r.results[1].category_scores.violence).toBeGreaterThan(0.5);
    expect(Object.keys(r.results[0].categories).sort()).toEqual([...OPENAI_CATEGORIES].sort());
    const bad = await new OpenAI({ apiKey: "wrong", baseURL: `${mock.url}/v1`, maxRetries: 0 }).moderations.create({ input: "x" }).then(() => null, (e) => e);
    expect(bad).toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it("azure: text:analyze with the subscription key answers categoriesAnalysis with severities 0/2/4/6", async () => {
    const r = await post("/contentsafety/text:analyze?api-version=2024-09-01", { text: "that slur", categories: ["Hate", "Violence"], outputType: "FourSeverityLevels" }, { "ocp-apim-subscription-key": "k" });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ blocklistsMatch: [], categoriesAnalysis: [{ category: "Hate", severity: 6 }, { category: "Violence", severity: 0 }] });
    expect((await post("/contentsafety/text:analyze?api-version=2024-09-01", { text: "x" })).status).toBe(401);
    expect((await post("/contentsafety/text:analyze?api-version=2023-01-01", { text: "x" }, { "ocp-apim-subscription-key": "k" })).status).toBe(404);
  });

  it("webhook: {texts, context} in, {flagged, categories} out", async () => {
    const r = await post("/moderate", { texts: ["hello", "an explicit thing"], context: { api: "openai" } }, { authorization: "Bearer k" });
    expect(await r.json()).toEqual({ flagged: true, categories: ["sexual"] });
  });

  it("slow mode delays the answer; error mode answers the service's error; garbage mode answers non-JSON", async () => {
    mock.set({ delayMs: 200 });
    const t0 = Date.now();
    await post("/moderate", { texts: ["x"] }, { authorization: "Bearer k" });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    mock.set({ delayMs: 0, errorStatus: 500 });
    const e = await post("/v1/moderations", { input: "x" }, { authorization: "Bearer k" });
    expect(e.status).toBe(500);
    expect((await e.json()).error.message).toBe("mock error");
    mock.set({ errorStatus: 0, garbage: true });
    expect(await (await post("/v1/moderations", { input: "x" })).text()).toContain("not json");
  });
});
