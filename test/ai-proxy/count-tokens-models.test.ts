// Anthropic's token counting (POST /v1/messages/count_tokens) and the model lists
// (GET /v1/models, GET /v1/models/{id}) in each client's shape, through the compiled ai-proxy.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Host } from "../../host/index.js";
import { answer, header, proxyHost, send, upstreamJson } from "./helpers.js";

const CONFIG = {
  instances: [
    { name: "oa", provider: "openai", api_key: "sk-provider-oa", models: ["gpt-4o", "meta/llama-3"] },
    { name: "claude", provider: "anthropic", api_key: "sk-ant-provider", models: ["claude-sonnet-4-5"], max_tokens: 512 },
    { name: "claude-quiet", provider: "anthropic", api_key: "sk-ant-quiet", models: ["claude-haiku-4-5"], redact_upstream_errors: true },
  ],
};
const COUNT = "/v1/messages/count_tokens";
const ANTHROPIC = { "anthropic-version": "2023-06-01", "x-api-key": "client-key" };

let h: Host;
beforeAll(async () => {
  h = await proxyHost(CONFIG);
});
afterAll(() => h.close());

function get(path: string, extra: Record<string, string> = {}) {
  const s = h.newStream();
  s.callOnRequestHeaders({ ":method": "GET", ":path": path, ":authority": "gw", ...extra }, true);
  return s;
}

describe("ai-proxy: POST /v1/messages/count_tokens", () => {
  const body = { model: "claude-sonnet-4-5", system: "Be brief.", messages: [{ role: "user", content: "How many tokens is this?" }] };

  it("goes to an Anthropic instance's own count endpoint, with the provider's credential and only the model set", () => {
    const s = send(h, COUNT, body, ANTHROPIC);
    expect(s.getSentLocalResponse()).toBeNull();
    const up = s.upstream.headers!;
    expect(header(up, ":path")).toBe("/v1/messages/count_tokens");
    expect(header(up, "x-api-key")).toBe("sk-ant-provider");
    expect(header(up, "anthropic-version")).toBe("2023-06-01");
    expect(header(up, "authorization")).toBeUndefined();
    // The instance's max_tokens is not added: the count endpoint takes none.
    expect(upstreamJson(s)).toEqual(body);
    expect(s.getFilterState("sluice.request_type")).toBe("ai_count_tokens");
    const out = answer(s, 200, "application/json", ['{"input_tokens":', "17}"]);
    expect(JSON.parse(out)).toEqual({ input_tokens: 17 });
    // Counting generates nothing: nothing is charged.
    expect(s.getFilterState("sluice.prompt_tokens")).toBe("0");
    expect(s.getFilterState("sluice.completion_tokens")).toBe("0");
  });

  it("passes the instance's error on as Anthropic wrote it", () => {
    const s = send(h, COUNT, body, ANTHROPIC);
    const err = { type: "error", error: { type: "invalid_request_error", message: "messages: text content blocks must be non-empty" } };
    const out = answer(s, 400, "application/json", [JSON.stringify(err)]);
    expect(JSON.parse(out)).toEqual(err);
    expect(s.getFilterState("sluice.prompt_tokens")).toBe("0");
  });

  it("a client that hangs up before the answer is charged nothing", () => {
    const s = send(h, COUNT, body, ANTHROPIC);
    s.completeHttpContext();
    expect(s.getFilterState("sluice.prompt_tokens")).toBe("0");
  });

  it("is estimated by the gateway, and marked so, for a model no Anthropic instance serves", () => {
    const s = send(h, COUNT, { ...body, model: "gpt-4o" }, ANTHROPIC);
    const r = s.getSentLocalResponse()!;
    expect(r.statusCode).toBe(200);
    expect(header(r.headers, "x-sluice-token-count")).toBe("estimate");
    const n = JSON.parse(r.body.toString()).input_tokens;
    expect(Number.isInteger(n) && n > 5 && n < 40).toBe(true);
    expect(s.upstream.headers).toBeNull();
    expect(s.getFilterState("sluice.request_type")).toBe("ai_count_tokens");
    s.completeHttpContext();
  });

  it("is estimated for an instance whose errors are hidden (its answers would pass as they are)", () => {
    const s = send(h, COUNT, { ...body, model: "claude-haiku-4-5" }, ANTHROPIC);
    expect(s.getSentLocalResponse()?.statusCode).toBe(200);
    expect(s.upstream.headers).toBeNull();
    s.completeHttpContext();
  });

  it("needs no max_tokens, but checks the messages as /v1/messages does, in Anthropic's shape", () => {
    const s = send(h, COUNT, { model: "claude-sonnet-4-5", messages: [] }, ANTHROPIC);
    const r = s.getSentLocalResponse()!;
    expect(r.statusCode).toBe(400);
    const e = JSON.parse(r.body.toString());
    expect(e.type).toBe("error");
    expect(e.error.type).toBe("invalid_request_error");
    expect(e.error.message).toMatch(/messages/);
  });

  it("takes POST only", () => {
    const s = get(COUNT, ANTHROPIC);
    const r = s.getSentLocalResponse()!;
    expect(r.statusCode).toBe(405);
    expect(header(r.headers, "allow")).toBe("POST");
  });
});

describe("ai-proxy: GET /v1/models and /v1/models/{id}", () => {
  it("lists the configured models in OpenAI's shape", () => {
    const r = get("/v1/models").getSentLocalResponse()!;
    expect(r.statusCode).toBe(200);
    expect(JSON.parse(r.body.toString())).toEqual({
      object: "list",
      data: [
        { id: "gpt-4o", object: "model", created: 0, owned_by: "openai" },
        { id: "meta/llama-3", object: "model", created: 0, owned_by: "openai" },
        { id: "claude-sonnet-4-5", object: "model", created: 0, owned_by: "anthropic" },
        { id: "claude-haiku-4-5", object: "model", created: 0, owned_by: "anthropic" },
      ],
    });
  });

  it("lists them in Anthropic's shape when the client sends anthropic-version", () => {
    const r = get("/v1/models", ANTHROPIC).getSentLocalResponse()!;
    const list = JSON.parse(r.body.toString());
    expect(list.has_more).toBe(false);
    expect(list.first_id).toBe("gpt-4o");
    expect(list.last_id).toBe("claude-haiku-4-5");
    expect(list.data).toHaveLength(4);
    expect(list.data[2]).toEqual({ type: "model", id: "claude-sonnet-4-5", display_name: "claude-sonnet-4-5", created_at: "1970-01-01T00:00:00Z" });
  });

  it("answers one model, its id percent-decoded as the SDKs encode it", () => {
    const a = get("/v1/models/meta%2Fllama-3").getSentLocalResponse()!;
    expect(a.statusCode).toBe(200);
    expect(JSON.parse(a.body.toString())).toEqual({ id: "meta/llama-3", object: "model", created: 0, owned_by: "openai" });
    const b = get("/v1/models/claude-sonnet-4-5", ANTHROPIC).getSentLocalResponse()!;
    expect(JSON.parse(b.body.toString()).type).toBe("model");
  });

  it("an unknown or badly encoded model is a 404 in the client's shape", () => {
    for (const [path, extra, type] of [
      ["/v1/models/gpt-5", {}, "invalid_request_error"],
      ["/v1/models/bad%zz", {}, "invalid_request_error"],
      ["/v1/models/claude-9", ANTHROPIC, "not_found_error"],
    ] as const) {
      const r = get(path, extra).getSentLocalResponse()!;
      expect(r.statusCode, path).toBe(404);
      const e = JSON.parse(r.body.toString());
      expect(e.error.type, path).toBe(type);
      if (type === "invalid_request_error") expect(e.error.code).toBe("model_not_found");
    }
  });

  it("takes GET only", () => {
    const s = h.newStream();
    s.callOnRequestHeaders({ ":method": "DELETE", ":path": "/v1/models/gpt-4o", ":authority": "gw" }, true);
    const r = s.getSentLocalResponse()!;
    expect(r.statusCode).toBe(405);
    expect(header(r.headers, "allow")).toBe("GET");
  });
});
