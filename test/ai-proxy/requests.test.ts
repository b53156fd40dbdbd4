// What ai-proxy lets through to a provider, and what it answers itself (issue 13): malformed
// requests refused with a 400 in the client's API shape and nothing sent upstream, valid unusual
// requests forwarded untouched, JSON 404/405 answers on AI paths it does not serve, and the
// request types of the usage record.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import type { Host } from "../../host/index.js";
import { HostLoadError } from "../../host/index.js";
import { proxyHost, header } from "./helpers.js";

/** What ai-proxy logged when it refused a configuration. */
async function configError(configuration: object): Promise<string> {
  const e = await proxyHost(configuration).then((g) => { g.close(); return null; }, (err) => err);
  expect(e).toBeInstanceOf(HostLoadError);
  return (e as HostLoadError).logs.join("\n");
}

const CONFIG = {
  instances: [
    { name: "oa", provider: "openai", api_key: "sk-provider-oa", models: ["gpt-*", "text-embedding-*"] },
    { name: "claude", provider: "anthropic", api_key: "sk-ant-provider", models: ["claude-*"] },
  ],
};

const CHAT = "/v1/chat/completions";
const MESSAGES = "/v1/messages";
type Client = "openai" | "anthropic";

let h: Host;
beforeAll(async () => {
  h = await proxyHost(CONFIG);
});
afterAll(() => h.close());

function post(path: string, body: string | Buffer, headers: Record<string, string | null> = {}) {
  const s = h.newStream();
  const all: Record<string, string> = {};
  const base: Record<string, string | null> = {
    ":method": "POST", ":path": path, ":authority": "gw", "content-type": "application/json", authorization: "Bearer client", ...headers,
  };
  for (const [k, v] of Object.entries(base)) if (v !== null) all[k] = v;
  s.callOnRequestHeaders(all, false);
  if (!s.getSentLocalResponse()) s.callOnRequestBody(body, true);
  return s;
}

/** The error body is the client's API shape: OpenAI's {"error":{...}} or Anthropic's {"type":"error",...}. */
function expectErrorShape(body: Buffer, client: Client, type = "invalid_request_error") {
  const e = JSON.parse(body.toString());
  if (client === "openai") {
    expect(Object.keys(e)).toEqual(["error"]);
    expect(e.error.type).toBe(type);
    expect(typeof e.error.message).toBe("string");
    expect(e.error).toHaveProperty("param");
    expect(e.error).toHaveProperty("code");
  } else {
    expect(e.type).toBe("error");
    expect(e.error.type).toBe(type);
    expect(typeof e.error.message).toBe("string");
  }
  return e;
}

const OA = { model: "gpt-4o", messages: [{ role: "user", content: "hi" }] };
const AN = { model: "claude-sonnet-4-5", max_tokens: 100, messages: [{ role: "user", content: "hi" }] };
const j = (o: object) => JSON.stringify(o);
/** A body with one member written as raw JSON text (numbers JavaScript cannot hold, duplicates). */
const withRaw = (o: object, raw: string) => j(o).slice(0, -1) + "," + raw + "}";
const many = (n: number) => Array.from({ length: n }, (_, i) => ({ role: i % 2 ? "assistant" : "user", content: "m" }));
const badUtf8 = (o: object, marker: string) => {
  const [a, b] = j(o).split(marker);
  return Buffer.concat([Buffer.from(a), Buffer.from([0xff, 0xc3, 0x28]), Buffer.from(b)]);
};

type Case = [name: string, body: string | Buffer, headers?: Record<string, string | null>];

const OPENAI_MALFORMED: Case[] = [
  ["not JSON", "{bad"],
  ["an empty body", ""],
  ["a JSON array", "[]"],
  ["a JSON string", '"hi"'],
  ["data after the JSON value", j(OA) + "x"],
  ["truncated JSON", j(OA).slice(0, 30)],
  ["model a number", j({ ...OA, model: 4 })],
  ["stream a string", j({ ...OA, stream: "yes" })],
  ["stream_options a string", j({ ...OA, stream: true, stream_options: "yes" })],
  ["include_usage a string", j({ ...OA, stream: true, stream_options: { include_usage: "yes" } })],
  ["messages missing", j({ model: "gpt-4o" })],
  ["messages empty", j({ ...OA, messages: [] })],
  ["messages an object", j({ ...OA, messages: { role: "user", content: "hi" } })],
  ["a message that is a string", j({ ...OA, messages: ["hi"] })],
  ["a message without role", j({ ...OA, messages: [{ content: "hi" }] })],
  ["a bad role", j({ ...OA, messages: [{ role: "wizard", content: "hi" }] })],
  ["a role that is a number", j({ ...OA, messages: [{ role: 7, content: "hi" }] })],
  ["content a number", j({ ...OA, messages: [{ role: "user", content: 42 }] })],
  ["a content part without type", j({ ...OA, messages: [{ role: "user", content: [{ text: "hi" }] }] })],
  ["a content part that is a number", j({ ...OA, messages: [{ role: "user", content: [1] }] })],
  ["max_tokens negative", j({ ...OA, max_tokens: -1 })],
  ["max_tokens 0", j({ ...OA, max_tokens: 0 })],
  ["max_tokens 1.5", j({ ...OA, max_tokens: 1.5 })],
  ["max_tokens 1e400", withRaw(OA, '"max_tokens":1e400')],
  ["max_tokens a string", j({ ...OA, max_tokens: "100" })],
  ["max_tokens over the bound", j({ ...OA, max_tokens: 1e12 })],
  ["max_completion_tokens negative", j({ ...OA, max_completion_tokens: -5 })],
  ["n 1e9", j({ ...OA, n: 1e9 })],
  ["n 0", j({ ...OA, n: 0 })],
  ["n 1.5", j({ ...OA, n: 1.5 })],
  ["n a string", j({ ...OA, n: "2" })],
  ["10,000 messages", j({ ...OA, messages: many(10000) })],
  ["an Anthropic body (top-level system)", j({ ...AN, model: "gpt-4o", system: "Be brief." })],
  ["an Anthropic tool_result block", j({ ...OA, messages: [{ role: "user", content: [{ type: "tool_result", tool_use_id: "t1", content: "42" }] }] })],
  // Every Anthropic-only block type, and roles one letter off a known one (same length).
  ...["image", "tool_use", "document", "thinking", "redacted_thinking"].map((type): Case =>
    [`an Anthropic ${type} block`, j({ ...OA, messages: [{ role: "user", content: [{ type: "text", text: "a" }, { type }] }] })]),
  ...["User", "toll", "systen", "functioN", "developed", "assistanT"].map((role): Case =>
    [`role ${role}`, j({ ...OA, messages: [{ role, content: "hi" }] })]),
  ["a duplicate model key", withRaw(OA, '"model":"claude-sonnet-4-5"')],
  // (Objects of 32 keys or more are checked through an index: the duplicate is still seen.)
  ["a duplicate key in a large object", withRaw({ ...OA, metadata: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, "v"])) }, '"x":1').replace('"k99":"v"', '"k99":"v","k7":"w"')],
  ["a duplicate key inside a message", j({ ...OA, messages: [{ role: "user", content: "hi" }] }).replace('"content":"hi"', '"content":"hi","role":"system"')],
  ["invalid UTF-8 in a string", badUtf8({ ...OA, messages: [{ role: "user", content: "a@b" }] }, "@")],
  ["invalid UTF-8 in a key", badUtf8({ ...OA, "x@y": 1 }, "@")],
  ["text/plain", j(OA), { "content-type": "text/plain" }],
  ["a form body", "model=gpt-4o", { "content-type": "application/x-www-form-urlencoded" }],
  ["nesting deeper than the reader takes", withRaw(OA, '"x":' + "[".repeat(5000) + "]".repeat(5000))],
];

const ANTHROPIC_MALFORMED: Case[] = [
  ["not JSON", "{bad"],
  ["a JSON array", "[1]"],
  ["a system role in messages (an OpenAI body)", j({ ...AN, messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "hi" }] })],
  ["a tool role", j({ ...AN, messages: [{ role: "tool", content: "42" }] })],
  ["a bad role", j({ ...AN, messages: [{ role: "wizard", content: "hi" }] })],
  ["max_tokens missing", j({ model: AN.model, messages: AN.messages })],
  ["max_tokens negative", j({ ...AN, max_tokens: -1 })],
  ["max_tokens 1.5", j({ ...AN, max_tokens: 1.5 })],
  ["max_tokens 1e400", withRaw({ model: AN.model, messages: AN.messages }, '"max_tokens":1e400')],
  ["max_tokens a string", j({ ...AN, max_tokens: "100" })],
  ["max_tokens over the bound", j({ ...AN, max_tokens: 1e12 })],
  ["messages empty", j({ ...AN, messages: [] })],
  ["content missing", j({ ...AN, messages: [{ role: "user" }] })],
  ["content a number", j({ ...AN, messages: [{ role: "user", content: 42 }] })],
  ["a content block without type", j({ ...AN, messages: [{ role: "user", content: [{ text: "hi" }] }] })],
  ["system a number", j({ ...AN, system: 5 })],
  ["stream a string", j({ ...AN, stream: "true" })],
  ["10,000 messages", j({ ...AN, messages: many(10000) })],
  ["a duplicate model key", withRaw(AN, '"model":"gpt-4o"')],
  ["a duplicate max_tokens key", withRaw(AN, '"max_tokens":64000')],
  ["invalid UTF-8 in a string", badUtf8({ ...AN, messages: [{ role: "user", content: "a@b" }] }, "@")],
  ["text/plain", j(AN), { "content-type": "text/plain" }],
];

describe("ai-proxy: malformed requests get a 400 in the client's shape and never reach a provider", () => {
  for (const [client, path, cases] of [["openai", CHAT, OPENAI_MALFORMED], ["anthropic", MESSAGES, ANTHROPIC_MALFORMED]] as const) {
    for (const [name, body, headers] of cases) {
      it(`${path}: ${name}`, () => {
        const s = post(path, body, headers);
        const r = s.getSentLocalResponse();
        expect(r, "answered by the gateway").not.toBeNull();
        expect(r!.statusCode).toBe(400);
        expect(header(r!.headers, "content-type")).toBe("application/json");
        expectErrorShape(r!.body, client);
        expect(s.upstream.headers, "nothing went upstream").toBeNull();
        expect(s.upstream.body.length).toBe(0);
        s.completeHttpContext();
      });
    }
  }

  it("says which member is wrong and why, with OpenAI's param", () => {
    const s = post(CHAT, j({ ...OA, n: 1e9 }));
    const e = expectErrorShape(s.getSentLocalResponse()!.body, "openai");
    expect(e.error.param).toBe("n");
    expect(e.error.message).toMatch(/'n' must be a positive integer, at most 128/);
    const t = post(MESSAGES, j({ ...AN, messages: [{ role: "system", content: "x" }] }));
    expect(expectErrorShape(t.getSentLocalResponse()!.body, "anthropic").error.message).toMatch(/messages\[0\]\.role.*'user' or 'assistant'/);
  });

  it("takes its bounds from request_limits", async () => {
    const g = await proxyHost({ ...CONFIG, request_limits: { max_messages: 3, max_n: 2, max_tokens: 50 } });
    const send = (path: string, o: object) => {
      const s = g.newStream();
      s.callOnRequestHeaders({ ":method": "POST", ":path": path, ":authority": "gw", "content-type": "application/json" }, false);
      s.callOnRequestBody(j(o), true);
      return s.getSentLocalResponse()?.statusCode ?? "forwarded";
    };
    expect(send(CHAT, { ...OA, messages: many(3) })).toBe("forwarded");
    expect(send(CHAT, { ...OA, messages: many(4) })).toBe(400);
    expect(send(CHAT, { ...OA, n: 2 })).toBe("forwarded");
    expect(send(CHAT, { ...OA, n: 3 })).toBe(400);
    expect(send(CHAT, { ...OA, max_completion_tokens: 50 })).toBe("forwarded");
    expect(send(CHAT, { ...OA, max_completion_tokens: 51 })).toBe(400);
    expect(send(MESSAGES, { ...AN, max_tokens: 51 })).toBe(400);
    g.close();
    expect(await configError({ ...CONFIG, request_limits: { max_n: 0 } })).toMatch(/request_limits\.max_n/);
  });
});

const OPENAI_UNUSUAL: Case[] = [
  ["an assistant turn with tool calls and null content, then a tool result", j({ ...OA, messages: [
    { role: "user", content: "weather?" },
    { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "w", arguments: "{}" } }] },
    { role: "tool", tool_call_id: "c1", content: "sunny" },
  ] })],
  ["every chat role", j({ ...OA, messages: ["system", "developer", "user", "assistant", "tool", "function"].map((role) => ({ role, content: "x" })) })],
  ["developer and legacy function roles", j({ ...OA, messages: [{ role: "developer", content: "d" }, { role: "function", name: "f", content: "x" }, { role: "user", content: "hi" }] })],
  ["text and image parts", j({ ...OA, messages: [{ role: "user", content: [{ type: "text", text: "what is it" }, { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } }] }] })],
  ["a content part type the gateway does not know", j({ ...OA, messages: [{ role: "user", content: [{ type: "input_video", video: "x" }] }] })],
  ["the bounds themselves", j({ ...OA, n: 128, max_tokens: 1000000, messages: many(2048) })],
  ["null for optional numbers", j({ ...OA, n: null, max_tokens: null, max_completion_tokens: null, stream: null })],
  ["fields the gateway does not know", j({ ...OA, some_future_field: { a: [1, { b: null }] }, temperature: 0.2, metadata: { k: "v" } })],
  ["non-ASCII and escaped text", j({ ...OA, messages: [{ role: "user", content: "héllo 🌍 \u0000 \u2028 \"q\"" }] })],
  ["charset in the content type", j(OA), { "content-type": "application/json; charset=utf-8" }],
  ["no content type", j(OA), { "content-type": null }],
];

const ANTHROPIC_UNUSUAL: Case[] = [
  ["system blocks with cache_control", j({ ...AN, system: [{ type: "text", text: "Be brief.", cache_control: { type: "ephemeral" } }] })],
  ["tool use, tool result, image and thinking blocks", j({ ...AN, messages: [
    { role: "user", content: [{ type: "text", text: "look" }, { type: "image", source: { type: "base64", media_type: "image/png", data: "AAAA" } }] },
    { role: "assistant", content: [{ type: "thinking", thinking: "hm", signature: "sig" }, { type: "tool_use", id: "t1", name: "w", input: { q: 1 } }] },
    { role: "user", content: [{ type: "tool_result", tool_use_id: "t1", content: "sunny" }] },
  ] })],
  ["fields the gateway does not know", j({ ...AN, metadata: { user_id: "u1" }, stop_sequences: ["\n\n"], top_k: 5, some_future_field: [1] })],
];

describe("ai-proxy: valid unusual requests pass untouched", () => {
  for (const [path, cases] of [[CHAT, OPENAI_UNUSUAL], [MESSAGES, ANTHROPIC_UNUSUAL]] as const) {
    for (const [name, body, headers] of cases) {
      it(`${path}: ${name}`, () => {
        const s = post(path, body, headers);
        expect(s.getSentLocalResponse()?.body.toString() ?? null).toBeNull();
        expect(s.upstream.headers).not.toBeNull();
        // Same provider format both ways: the body the provider gets means what the client sent.
        expect(JSON.parse(s.upstream.body.toString())).toEqual(JSON.parse(body.toString()));
        s.completeHttpContext();
      });
    }
  }
});

describe("ai-proxy: requests to AI paths it does not serve get JSON in the client's shape", () => {
  function call(method: string, path: string, extra: Record<string, string> = {}) {
    const s = h.newStream();
    s.callOnRequestHeaders({ ":method": method, ":path": path, ":authority": "gw", ...extra }, method === "GET" || method === "HEAD");
    return s;
  }

  it("a wrong method on a known path: 405 with allow", () => {
    for (const [method, path, allow, client] of [
      ["GET", CHAT, "POST", "openai"], ["DELETE", "/v1/embeddings", "POST", "openai"], ["GET", MESSAGES, "POST", "anthropic"],
      ["POST", "/v1/models", "GET", "openai"], ["PUT", `${CHAT}?x=1`, "POST", "openai"], ["GET", "/v1/responses", "POST", "openai"],
    ] as const) {
      const s = call(method, path);
      const r = s.getSentLocalResponse()!;
      expect(r?.statusCode, `${method} ${path}`).toBe(405);
      expect(header(r.headers, "allow")).toBe(allow);
      expect(header(r.headers, "content-type")).toBe("application/json");
      expectErrorShape(r.body, client);
      expect(s.upstream.headers).toBeNull();
      expect(s.getFilterState("sluice.request_type")).toBe("ai_unsupported");
      s.completeHttpContext();
    }
  });

  it("an unknown path under /v1/: 404, Anthropic's shape under /v1/messages or with anthropic-version", () => {
    for (const [method, path, extra, client] of [
      ["GET", "/v1/responses/resp_123", {}, "openai"],
      ["DELETE", "/v1/responses/resp_123", {}, "openai"],
      ["GET", "/v1/files", {}, "openai"],
      ["POST", "/v1/completions", {}, "openai"],
      ["POST", "/v1/messages/batches", {}, "anthropic"],
      ["POST", "/v1/complete", { "anthropic-version": "2023-06-01" }, "anthropic"],
      ["POST", `${CHAT}/`, {}, "openai"],
    ] as const) {
      const s = call(method, path, extra);
      const r = s.getSentLocalResponse()!;
      expect(r?.statusCode, `${method} ${path}`).toBe(404);
      expect(header(r.headers, "content-type")).toBe("application/json");
      expectErrorShape(r.body, client, client === "openai" ? "invalid_request_error" : "not_found_error");
      expect(s.upstream.headers).toBeNull();
      s.completeHttpContext();
    }
  });

  it("leaves other paths untouched (traditional_http), and api_prefixes says which are the AI API's", async () => {
    for (const path of ["/healthz", "/v1", "/v2/chat/completions", "/api/v1/x"]) {
      const s = call("GET", path);
      expect(s.getSentLocalResponse(), path).toBeNull();
      expect(s.upstream.headers).not.toBeNull();
      expect(s.getFilterState("sluice.request_type")).toBe("traditional_http");
      s.completeHttpContext();
    }
    const g = await proxyHost({ ...CONFIG, api_prefixes: ["/v1/", "/openai/"] });
    const a = g.newStream();
    a.callOnRequestHeaders({ ":method": "GET", ":path": "/openai/deployments", ":authority": "gw" }, true);
    expect(a.getSentLocalResponse()?.statusCode).toBe(404);
    g.close();
    const k = await proxyHost({ ...CONFIG, api_prefixes: [] });
    const b = k.newStream();
    b.callOnRequestHeaders({ ":method": "GET", ":path": "/v1/files", ":authority": "gw" }, true);
    expect(b.getSentLocalResponse()).toBeNull();
    expect(b.getFilterState("sluice.request_type")).toBe("traditional_http");
    k.close();
    expect(await configError({ ...CONFIG, api_prefixes: ["v1"] })).toMatch(/api_prefixes\[0\]/);
  });

  it("on other paths, a client's own cluster header is removed: only the mcp and a2a filters route there", async () => {
    const g = await proxyHost(CONFIG);
    const up = (state: Record<string, string>) => {
      const s = g.newStream();
      for (const [k, v] of Object.entries(state)) s.filterState.set(`wasm.${k}`, Buffer.from(v));
      s.callOnRequestHeaders({ ":method": "POST", ":path": "/mcp/", ":authority": "gw", "x-sluice-cluster": "mcp_github" }, true);
      const headers = Object.fromEntries(s.upstream.headers!);
      s.completeHttpContext();
      return headers["x-sluice-cluster"];
    };
    expect(up({})).toBeUndefined();
    // A call the mcp (or a2a) filter routed keeps the cluster it named.
    expect(up({ "sluice.mcp_method": "tools/call" })).toBe("mcp_github");
    expect(up({ "sluice.a2a_method": "SendMessage" })).toBe("mcp_github");
    g.close();
  });
});

describe("ai-proxy: request types", () => {
  it("embeddings are ai_embeddings and GET /v1/models is ai_models, in the record and the metrics", async () => {
    const g = await proxyHost(CONFIG);
    const e = g.newStream();
    e.callOnRequestHeaders({ ":method": "POST", ":path": "/v1/embeddings", ":authority": "gw", "content-type": "application/json" }, false);
    e.callOnRequestBody(j({ model: "text-embedding-3-small", input: "hello" }), true);
    expect(e.getFilterState("sluice.request_type")).toBe("ai_embeddings");
    e.callOnResponseHeaders({ ":status": "200", "content-type": "application/json" }, false);
    e.callOnResponseBody(j({ object: "list", data: [{ object: "embedding", index: 0, embedding: [0.1] }], model: "text-embedding-3-small", usage: { prompt_tokens: 2, total_tokens: 2 } }), true);
    e.completeHttpContext();
    expect(g.getMetric("sluice.ai_requests;provider=openai;model=other;consumer=anonymous;request_type=ai_embeddings")?.value).toBe(1n);
    expect(g.getMetric("sluice.ai_requests;provider=openai;model=other;consumer=anonymous;request_type=ai_chat")).toBeUndefined();
    const m = g.newStream();
    m.callOnRequestHeaders({ ":method": "GET", ":path": "/v1/models", ":authority": "gw" }, true);
    expect(m.getSentLocalResponse()?.statusCode).toBe(200);
    expect(m.getFilterState("sluice.request_type")).toBe("ai_models");
    g.close();
  });
});
