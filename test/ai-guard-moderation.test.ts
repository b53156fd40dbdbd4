// ai-guard's external moderation through the compiled filter and the host's proxy_http_call
// plumbing, against the mock moderation service (scripts/mocks/moderation.ts): OpenAI, Azure AI
// Content Safety and webhook shapes; flagged -> 400 in each client API's shape; pass -> continued;
// slow -> timeout on the fail-open and fail-closed paths; errors; the masked text is what the
// service receives; a client hang-up while the call is out.
import { describe, it, expect, beforeAll, afterAll, beforeEach } from "vitest";
import { Host, HostLoadError } from "../host/index.js";
import { startModerationMock, type ModerationMock } from "../scripts/mocks/moderation.js";
import { WASM, chat } from "./ai-guard-helpers.js";

let mock: ModerationMock;
beforeAll(async () => { mock = await startModerationMock({ apiKey: "mod-secret" }); });
afterAll(async () => { await mock.close(); });
beforeEach(() => mock.reset());

function guard(moderation: object, extra: object = {}) {
  return Host.create({
    filters: [{
      name: "ai-guard", wasm: WASM, allowOnHeadersStopIteration: true, workers: 1,
      configuration: { moderation: { cluster: "mod", api_key_env: "MOD_KEY", ...moderation }, ...extra },
      env: { MOD_KEY: "mod-secret" },
    }],
    clusters: { mod: mock.url },
  });
}

function send(h: Host, path: string, body: object, state: Record<string, string> = {}) {
  const s = h.newStream();
  for (const [k, v] of Object.entries(state)) s.filterState.set(`wasm.${k}`, Buffer.from(v));
  const bytes = Buffer.from(JSON.stringify(body));
  const onHeaders = s.callOnRequestHeaders({ ":method": "POST", ":path": path, ":authority": "gw", "content-type": "application/json", "content-length": String(bytes.length) }, false);
  const onBody = s.callOnRequestBody(bytes, true);
  return { s, onHeaders, onBody };
}

const metric = (h: Host, outcome: string) => h.getMetric(`sluice.guard_moderation;outcome=${outcome}`)?.value ?? 0n;
const state = (s: ReturnType<Host["newStream"]>, k: string) => s.getFilterState(k);

describe("ai-guard moderation: openai provider", () => {
  it("a clean prompt waits for the service, then continues unchanged; the key goes as Bearer", async () => {
    const h = await guard({ provider: "openai" });
    const body = chat("What is the capital of France?");
    const { s, onHeaders, onBody } = send(h, "/v1/chat/completions", body);
    expect(onHeaders).toBe("Pause");
    expect(onBody).toBe("Pause");
    expect(s.upstream.headers).toBeNull();
    await h.settle();
    expect(s.getSentLocalResponse()).toBeNull();
    expect(JSON.parse(s.upstream.body.toString())).toEqual(body);
    expect(s.upstream.ended).toBe(true);
    expect(mock.requests).toHaveLength(1);
    expect(mock.requests[0].path).toBe("/v1/moderations");
    expect(mock.requests[0].headers.authorization).toBe("Bearer mod-secret");
    expect(mock.requests[0].body).toEqual({ model: "omni-moderation-latest", input: ["What is the capital of France?"] });
    expect(metric(h, "passed")).toBe(1n);
    expect(state(s, "sluice.guard_verdict")).toBe("allow");
    h.close();
  });

  it("a flagged prompt is refused with a 400 in each client API's shape naming the category", async () => {
    const h = await guard({ provider: "openai" });
    const cases: [string, object, (b: any) => void][] = [
      ["/v1/chat/completions", chat("plan the attack now"), (b) => { expect(b.error.code).toBe("content_blocked"); expect(b.error.message).toContain("violence"); }],
      ["/v1/messages", { model: "c", max_tokens: 5, messages: [{ role: "user", content: "plan the attack now" }] }, (b) => { expect(b.type).toBe("error"); expect(b.error.type).toBe("invalid_request_error"); expect(b.error.message).toContain("violence"); }],
      ["/v1beta/models/gemini-2.0-flash:generateContent", { contents: [{ role: "user", parts: [{ text: "plan the attack now" }] }] }, (b) => { expect(b.error.code).toBe(400); expect(b.error.status).toBe("INVALID_ARGUMENT"); expect(b.error.message).toContain("violence"); }],
      ["/v1/responses", { model: "m", input: "plan the attack now" }, (b) => expect(b.error.message).toContain("violence")],
    ];
    for (const [path, body, check] of cases) {
      const { s } = send(h, path, body);
      await h.settle();
      const r = s.getSentLocalResponse();
      expect(r, path).not.toBeNull();
      expect(r!.statusCode).toBe(400);
      expect(r!.statusDetails).toBe("sluice_guard_moderation_blocked");
      check(JSON.parse(r!.body.toString()));
      expect(s.upstream.headers).toBeNull();
      expect(state(s, "sluice.guard_verdict")).toBe("block");
      expect(state(s, "sluice.guard_categories")).toBe("moderation:violence");
    }
    expect(metric(h, "flagged")).toBe(4n);
    h.close();
  });

  it("score threshold and category list decide what blocks", async () => {
    const h = await guard({ provider: "openai", categories: ["hate"], threshold: 0.5 });
    const a = send(h, "/v1/chat/completions", chat("plan the attack now")).s; // violence: not listed
    const b = send(h, "/v1/chat/completions", chat("that slur again")).s; // hate 0.93 >= 0.5
    await h.settle();
    expect(a.getSentLocalResponse()).toBeNull();
    expect(b.getSentLocalResponse()!.statusCode).toBe(400);
    expect(state(b, "sluice.guard_categories")).toBe("moderation:hate");
    h.close();
  });

  it("the service receives the masked text, never the masked value; local blocks make no call", async () => {
    const h = await guard({ provider: "openai" }, { detectors: { email: "mask", card: "block" } });
    const { s } = send(h, "/v1/chat/completions", chat("mail jane.doe@example.com about it"));
    await h.settle();
    expect(mock.requests[0].body.input).toEqual(["mail <EMAIL> about it"]);
    expect(JSON.stringify(mock.requests[0].body)).not.toContain("jane.doe");
    expect(JSON.parse(s.upstream.body.toString()).messages[0].content).toBe("mail <EMAIL_1> about it");
    expect(state(s, "sluice.guard_verdict")).toBe("mask");
    const blocked = send(h, "/v1/chat/completions", chat("card 4111 1111 1111 1111")).s;
    await h.settle();
    expect(blocked.getSentLocalResponse()!.statusDetails).toBe("sluice_guard_blocked");
    expect(mock.requests).toHaveLength(1);
    h.close();
  });

  it("a policy may turn moderation off", async () => {
    const h = await guard({ provider: "openai" }, { consumers: { trusted: { moderation: false } } });
    const { s, onBody } = send(h, "/v1/chat/completions", chat("plan the attack now"), { "sluice.consumer": "trusted" });
    expect(onBody).toBe("Continue");
    await h.settle();
    expect(s.getSentLocalResponse()).toBeNull();
    expect(mock.requests).toHaveLength(0);
    h.close();
  });
});

describe("ai-guard moderation: failures", () => {
  it("slow service, fail closed: 503 in the client's shape when timeout_ms passes", async () => {
    const h = await guard({ provider: "openai", timeout_ms: 50, failure: "closed" });
    mock.set({ delayMs: 400 });
    const { s } = send(h, "/v1/messages", { model: "c", max_tokens: 5, messages: [{ role: "user", content: "hello" }] });
    await h.settle();
    const r = s.getSentLocalResponse()!;
    expect(r.statusCode).toBe(503);
    expect(r.statusDetails).toBe("sluice_guard_moderation_unavailable");
    const b = JSON.parse(r.body.toString());
    expect(b.type).toBe("error");
    expect(b.error.message).toContain("in time");
    expect(r.body.toString()).not.toContain("mod-secret");
    expect(s.upstream.headers).toBeNull();
    expect(metric(h, "timeout")).toBe(1n);
    h.close();
  });

  it("slow service, fail open: the request continues and is counted", async () => {
    const h = await guard({ provider: "openai", timeout_ms: 50, failure: "open" });
    mock.set({ delayMs: 400 });
    const { s } = send(h, "/v1/chat/completions", chat("plan the attack now"));
    await h.settle();
    expect(s.getSentLocalResponse()).toBeNull();
    expect(s.upstream.ended).toBe(true);
    expect(metric(h, "timeout")).toBe(1n);
    expect(metric(h, "failed_open")).toBe(1n);
    h.close();
  });

  it("a 500, a 2xx that is not the service's shape and an unknown cluster all take the failure path", async () => {
    const h = await guard({ provider: "openai" });
    mock.set({ errorStatus: 500 });
    const a = send(h, "/v1/chat/completions", chat("hi")).s;
    await h.settle();
    mock.set({ errorStatus: 0, garbage: true });
    const b = send(h, "/v1/chat/completions", chat("hi")).s;
    await h.settle();
    for (const s of [a, b]) expect(s.getSentLocalResponse()!.statusDetails).toBe("sluice_guard_moderation_unavailable");
    expect(metric(h, "error")).toBe(2n);
    h.close();
    const h2 = await Host.create({ filters: [{ name: "ai-guard", wasm: WASM, allowOnHeadersStopIteration: true, configuration: { moderation: { provider: "openai", cluster: "nowhere" } } }] });
    const c = send(h2, "/v1/chat/completions", chat("hi"));
    expect(c.s.getSentLocalResponse()!.statusCode).toBe(503);
    h2.close();
  });

  it("a client that hangs up while the call is out leaves nothing broken", async () => {
    const h = await guard({ provider: "openai" });
    mock.set({ delayMs: 50 });
    const { s } = send(h, "/v1/chat/completions", chat("plan the attack now"));
    s.completeHttpContext();
    await h.settle();
    expect(s.getSentLocalResponse()).toBeNull();
    mock.set({ delayMs: 0 });
    const next = send(h, "/v1/chat/completions", chat("plan the attack now")).s;
    await h.settle();
    expect(next.getSentLocalResponse()!.statusCode).toBe(400);
    expect(h.getLogs("error")).toEqual([]);
    h.close();
  });

  it("a prompt longer than max_text_bytes: refused when fail closed, checked in part when fail open", async () => {
    const long = "word ".repeat(100) + "attack";
    const closed = await guard({ provider: "openai", max_text_bytes: 256 });
    const a = send(closed, "/v1/chat/completions", chat(long)).s;
    expect(a.getSentLocalResponse()!.statusCode).toBe(413);
    expect(a.getSentLocalResponse()!.statusDetails).toBe("sluice_guard_moderation_too_large");
    closed.close();
    const open = await guard({ provider: "openai", max_text_bytes: 256, failure: "open" });
    const b = send(open, "/v1/chat/completions", chat(long)).s;
    await open.settle();
    expect(b.getSentLocalResponse()).toBeNull();
    expect(Buffer.byteLength(mock.requests[0].body.input.join(""))).toBe(256);
    expect(metric(open, "truncated")).toBe(1n);
    open.close();
  });
});

describe("ai-guard moderation: azure and webhook providers", () => {
  it("azure: text, categories and outputType sent with the subscription key; severity decides", async () => {
    const h = await guard({ provider: "azure", severity: 4 });
    const ok = send(h, "/v1/chat/completions", chat("hello there")).s;
    await h.settle();
    expect(ok.getSentLocalResponse()).toBeNull();
    const req = mock.requests[0];
    expect(req.path).toBe("/contentsafety/text:analyze?api-version=2024-09-01");
    expect(req.headers["ocp-apim-subscription-key"]).toBe("mod-secret");
    expect(req.headers.authorization).toBeUndefined();
    expect(req.body).toEqual({ text: "hello there", categories: ["Hate", "SelfHarm", "Sexual", "Violence"], outputType: "FourSeverityLevels" });
    const bad = send(h, "/v1/chat/completions", chat("plan the attack now")).s;
    await h.settle();
    expect(bad.getSentLocalResponse()!.statusCode).toBe(400);
    expect(state(bad, "sluice.guard_categories")).toBe("moderation:Violence");
    h.close();
  });

  it("azure: a long prompt is sent in pieces of at most 10,000 bytes, one call each; any flagged piece blocks", async () => {
    const h = await guard({ provider: "azure" });
    const { s } = send(h, "/v1/chat/completions", chat("é".repeat(6000) + " attack"));
    await h.settle();
    expect(mock.requests.length).toBe(2);
    for (const r of mock.requests) expect(Buffer.byteLength(r.body.text)).toBeLessThanOrEqual(10000);
    expect(s.getSentLocalResponse()!.statusCode).toBe(400);
    h.close();
  });

  it("webhook: texts and the request's context in, {flagged, categories} out", async () => {
    const h = await guard({ provider: "webhook" });
    const { s } = send(h, "/v1/chat/completions", chat("that slur again"), { "sluice.consumer": "team-a", "sluice.route_rule": "r1" });
    await h.settle();
    expect(mock.requests[0].path).toBe("/moderate");
    expect(mock.requests[0].body).toEqual({ texts: ["that slur again"], context: { api: "openai", consumer: "team-a", route: "r1" } });
    expect(s.getSentLocalResponse()!.statusCode).toBe(400);
    expect(state(s, "sluice.guard_categories")).toBe("moderation:hate");
    h.close();
  });
});

describe("ai-guard moderation: configuration errors name the field", () => {
  const cases: [object, RegExp][] = [
    [{ moderation: { provider: "perspective", cluster: "m" } }, /ai-guard\.moderation\.provider: must be one of: openai, azure, webhook/],
    [{ moderation: { provider: "openai" } }, /ai-guard\.moderation\.cluster: is required/],
    [{ moderation: { provider: "openai", cluster: "m", failure: "maybe" } }, /ai-guard\.moderation\.failure: must be closed or open/],
    [{ moderation: { provider: "azure", cluster: "m", threshold: 0.5 } }, /ai-guard\.moderation\.threshold: applies to provider openai only/],
    [{ moderation: { provider: "azure", cluster: "m", categories: ["Gore"] } }, /ai-guard\.moderation\.categories\[0\]: must be one of Azure/],
    [{ moderation: { provider: "openai", cluster: "m", api_key_env: "NOT_THERE" } }, /ai-guard\.moderation\.api_key_env: environment variable 'NOT_THERE' is not passed/],
    [{ consumers: { a: { moderation: true } } }, /ai-guard\.consumers\.a\.moderation: needs the top-level moderation section/],
  ];
  for (const [configuration, re] of cases) {
    it(re.source, async () => {
      let logs = "";
      try {
        (await Host.create({ filters: [{ name: "ai-guard", wasm: WASM, configuration }] })).close();
      } catch (e) {
        expect(e).toBeInstanceOf(HostLoadError);
        logs = (e as HostLoadError).logs.join("\n");
      }
      expect(logs).toMatch(re);
    });
  }
});
