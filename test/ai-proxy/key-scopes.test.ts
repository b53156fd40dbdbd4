// A virtual key's scopes in ai-proxy (build/ai-proxy.wasm): key-auth's sluice.key_models and
// sluice.key_pools. A request outside them is a 403 model_not_allowed in the client's shape and
// nothing goes upstream; the router's model (sluice.route_model) is what is checked when it set one;
// GET /v1/models lists only what the key may use.
import { describe, it, expect, beforeAll } from "vitest";
import type { Host } from "../../host/index.js";
import { proxyHost } from "./helpers.js";

const CONFIG = {
  instances: [
    { name: "oa", provider: "openai", api_key: "k-oa", models: ["gpt-4o", "gpt-4o-mini"] },
    { name: "cl", provider: "anthropic", api_key: "k-cl", models: ["claude-sonnet-4-5"] },
    { name: "gm", provider: "gemini", api_key: "k-gm", models: ["gemini-2.5-flash"] },
  ],
  pools: [{ name: "fast", instances: ["oa"] }, { name: "smart", instances: ["cl"] }],
};

let h: Host;
beforeAll(async () => {
  h = await proxyHost(CONFIG);
});

function call(state: Record<string, string>, path: string, body: unknown | null, headers: Record<string, string> = {}) {
  const s = h.newStream();
  // key-auth writes a virtual key's scopes with its id; ai-proxy reads scopes only for a virtual key.
  for (const [k, v] of Object.entries({ key_id: "k-1", ...state })) s.filterState.set(`wasm.sluice.${k}`, Buffer.from(v));
  s.callOnRequestHeaders({ ":method": body === null ? "GET" : "POST", ":path": path, ":authority": "gw", "content-type": "application/json", ...headers }, body === null);
  if (body !== null) s.callOnRequestBody(JSON.stringify(body), true);
  return s;
}

const chat = (model: string) => ({ model, max_tokens: 8, messages: [{ role: "user", content: "hi" }] });

function refused(s: ReturnType<Host["newStream"]>) {
  const r = s.getSentLocalResponse();
  expect(r?.statusCode).toBe(403);
  expect(s.upstream.headers).toBeFalsy();
  return JSON.parse(r!.body.toString());
}

describe("virtual key scopes in ai-proxy", () => {
  it("models: exact names and prefixes; 403 in OpenAI's, Anthropic's and Gemini's shapes", () => {
    const scope = { key_models: "gpt-4o-mini,claude-*" };
    expect(call(scope, "/v1/chat/completions", chat("gpt-4o-mini")).getSentLocalResponse()).toBeNull();
    expect(call(scope, "/v1/messages", chat("claude-sonnet-4-5"), { "anthropic-version": "2023-06-01" }).getSentLocalResponse()).toBeNull();
    expect(refused(call(scope, "/v1/chat/completions", chat("gpt-4o"))).error).toMatchObject({
      type: "permission_error", code: "model_not_allowed", param: "model", message: "This API key may not use model 'gpt-4o'.",
    });
    expect(refused(call({ key_models: "gpt-4o-mini" }, "/v1/messages", chat("claude-sonnet-4-5"), { "anthropic-version": "2023-06-01" }))).toMatchObject({
      type: "error", error: { type: "permission_error" },
    });
    expect(refused(call(scope, "/v1beta/models/gemini-2.5-flash:generateContent", { contents: [{ role: "user", parts: [{ text: "hi" }] }] }))).toMatchObject({
      error: { code: 403, status: "PERMISSION_DENIED" },
    });
    // Embeddings and the Responses API are scoped alike.
    expect(refused(call(scope, "/v1/embeddings", { model: "gpt-4o", input: "x" })).error.code).toBe("model_not_allowed");
    expect(refused(call(scope, "/v1/responses", { model: "gpt-4o", input: "x" })).error.code).toBe("model_not_allowed");
  });

  it("the router's model is the one checked when it set one", () => {
    expect(refused(call({ key_models: "gpt-4o-mini", pool: "fast", route_model: "gpt-4o" }, "/v1/chat/completions", chat("auto"))).error.message).toContain("'gpt-4o'");
    expect(call({ key_models: "gpt-4o-mini", pool: "fast", route_model: "gpt-4o-mini" }, "/v1/chat/completions", chat("auto")).getSentLocalResponse()).toBeNull();
  });

  it("pools: the pool the request resolves to (router's, named, or the model's instances) must be listed", () => {
    expect(call({ key_pools: "fast", pool: "fast" }, "/v1/chat/completions", chat("gpt-4o")).getSentLocalResponse()).toBeNull();
    expect(refused(call({ key_pools: "fast", pool: "smart" }, "/v1/chat/completions", chat("claude-sonnet-4-5"))).error.message).toBe("This API key may not use 'smart' (its pools: fast).");
    // Without the router: the model's own instances are no listed pool.
    expect(refused(call({ key_pools: "fast" }, "/v1/chat/completions", chat("gpt-4o"))).error.code).toBe("model_not_allowed");
    expect(call({ key_pools: "smart" }, "/v1/chat/completions", chat("smart")).getSentLocalResponse()).toBeNull();
  });

  it("GET /v1/models lists only the key's models, in each shape; one outside is a 404", () => {
    const list = (state: Record<string, string>, path = "/v1/models", headers: Record<string, string> = {}) =>
      JSON.parse(call(state, path, null, headers).getSentLocalResponse()!.body.toString());
    expect(list({}).data.map((m: { id: string }) => m.id)).toEqual(["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash"]);
    expect(list({ key_models: "gpt-4o*" }).data.map((m: { id: string }) => m.id)).toEqual(["gpt-4o", "gpt-4o-mini"]);
    expect(list({ key_pools: "smart" }).data.map((m: { id: string }) => m.id)).toEqual(["claude-sonnet-4-5"]);
    expect(list({ key_models: "gpt-4o*", key_pools: "smart" }).data).toEqual([]);
    expect(list({ key_models: "claude-*" }, "/v1/models", { "anthropic-version": "2023-06-01" })).toMatchObject({ data: [{ id: "claude-sonnet-4-5", type: "model" }], first_id: "claude-sonnet-4-5", last_id: "claude-sonnet-4-5" });
    expect(list({ key_models: "gemini-*" }, "/v1beta/models").models.map((m: { name: string }) => m.name)).toEqual(["models/gemini-2.5-flash"]);
    expect(call({ key_models: "gpt-4o-mini" }, "/v1/models/gpt-4o", null).getSentLocalResponse()?.statusCode).toBe(404);
    expect(call({ key_models: "gpt-4o-mini" }, "/v1/models/gpt-4o-mini", null).getSentLocalResponse()?.statusCode).toBe(200);
  });
});
