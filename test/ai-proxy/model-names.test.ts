// Client-chosen model names on their way upstream, through build/ai-proxy.wasm: Azure puts the
// model in the deployment path, Gemini in the model resource path; every provider puts it in
// filter state and logs. A bad name is a 400 in the client's format and nothing goes upstream
// (assembly/providers/types.ts, "Client-chosen model names").
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { Host, HostLoadError } from "../../host/index.js";
import { startMock, type MockServer } from "../../scripts/mocks/index.js";
import { WASM, send, header, proxyHost } from "./helpers.js";

const CONFIG = {
  instances: [
    { name: "az", provider: "azure-openai", api_key: "k-az", endpoint: "http://res.openai.azure.com/openai", models: ["az-*"] },
    { name: "gm", provider: "gemini", api_key: "k-gm", models: ["gm-*", "models/gm-*", "tunedModels/gm-*"] },
    { name: "oa", provider: "openai", api_key: "k-oa", models: ["oa-*"] },
    { name: "cl", provider: "anthropic", api_key: "k-cl", models: ["cl-*"] },
    { name: "ds", provider: "deepseek", api_key: "k-ds", models: ["ds-*"] },
    { name: "mi", provider: "mistral", api_key: "k-mi", models: ["mi-*"] },
    { name: "vl", provider: "openai-compatible", endpoint: "http://vllm.internal/v1", models: ["vl-*"] },
  ],
};

const LONG = "x".repeat(300);
// Each is bad for every provider: a control character, or too long.
const BAD_EVERYWHERE = ["a\r\nx-injected: 1", "a\nb", "a\u0000b", "a\tb", "a\u007fb", LONG];
// Bad where the name is a path segment (Azure, Gemini); fine in a JSON body.
const BAD_IN_PATH = ["x/../../../admin/delete?all=1#", "x y", "x?alt=json", "x#frag", "x%2f..", "x:generateContent", "x/y", "é", "x\\y"];

function rejected(s: ReturnType<Host["newStream"]>, client: "openai" | "anthropic") {
  expect(s.getSentLocalResponse()?.statusCode).toBe(400);
  expect(s.upstream.headers).toBeFalsy(); // nothing left for the provider
  const body = JSON.parse(s.getSentLocalResponse()!.body.toString());
  if (client === "anthropic") {
    expect(body).toMatchObject({ type: "error", error: { type: "invalid_request_error" } });
    return body.error.message as string;
  }
  expect(body.error).toMatchObject({ type: "invalid_request_error", param: "model" });
  return body.error.message as string;
}

describe("model names that go upstream", () => {
  for (const [client, path] of [["openai", "/v1/chat/completions"], ["anthropic", "/v1/messages"]] as const) {
    it(`${client} client: a name that would leave its path segment is a 400 for Azure and Gemini`, async () => {
      const h = await proxyHost(CONFIG);
      for (const prefix of ["az-", "gm-", "models/gm-", "tunedModels/gm-"]) {
        for (const bad of [...BAD_IN_PATH, ...BAD_EVERYWHERE]) {
          const s = send(h, path, { model: prefix + bad, max_tokens: 10, messages: [{ role: "user", content: "x" }] });
          expect(s.getSentLocalResponse()?.statusCode, JSON.stringify(prefix + bad)).toBe(400);
          rejected(s, client);
        }
      }
    });

    it(`${client} client: control characters and over-long names are a 400 for every provider`, async () => {
      const h = await proxyHost(CONFIG);
      for (const prefix of ["oa-", "cl-", "ds-", "mi-", "vl-"]) {
        for (const bad of BAD_EVERYWHERE) {
          const s = send(h, path, { model: prefix + bad, max_tokens: 10, messages: [{ role: "user", content: "x" }] });
          expect(rejected(s, client)).toMatch(/model/);
        }
      }
    });
  }

  it("plain names reach Azure and Gemini paths as sent; body-only providers take any printable name", async () => {
    const h = await proxyHost(CONFIG);
    const chat = (model: string) => send(h, "/v1/chat/completions", { model, messages: [{ role: "user", content: "x" }] });
    expect(header(chat("az-gpt-4o_2024.11").upstream.headers, ":path")).toBe("/openai/deployments/az-gpt-4o_2024.11/chat/completions?api-version=2024-10-21");
    expect(header(chat("gm-2.5-flash").upstream.headers, ":path")).toBe("/v1beta/models/gm-2.5-flash:generateContent");
    expect(header(chat("tunedModels/gm-tuned-7").upstream.headers, ":path")).toBe("/v1beta/tunedModels/gm-tuned-7:generateContent");
    expect(header(chat("az-" + "d".repeat(61)).upstream.headers, ":path")).toContain("/deployments/az-ddd");
    expect(chat("az-" + "d".repeat(62)).getSentLocalResponse()?.statusCode).toBe(400); // 65 characters
    // A space or non-ASCII letter is a JSON string in the body, nothing more.
    expect(header(chat("oa-my model é").upstream.headers, ":path")).toBe("/v1/chat/completions");
    expect(header(chat("oa-" + "y".repeat(253)).upstream.headers, ":path")).toBe("/v1/chat/completions");
  });

  it("'.' and '..' alone are never a path segment", async () => {
    for (const provider of ["azure-openai", "gemini"]) {
      const h = await proxyHost({ instances: [{ name: "i", provider, api_key: "k", endpoint: "http://x.internal/base" }] });
      for (const model of [".", "..", "models/..", "tunedModels/."]) {
        expect(send(h, "/v1/chat/completions", { model, messages: [{ role: "user", content: "x" }] }).getSentLocalResponse()?.statusCode).toBe(400);
      }
    }
  });

  it("embeddings check the name too (Azure and Gemini put it in the path)", async () => {
    const h = await proxyHost(CONFIG);
    for (const model of ["az-x/../../admin", "gm-x/../y", "gm-a b"]) {
      const s = send(h, "/v1/embeddings", { model, input: "x" });
      rejected(s, "openai");
    }
  });

  it("a configured deployment or model keeps a client's odd (but printable) name out of the path", async () => {
    const h = await proxyHost({
      instances: [
        { name: "az", provider: "azure-openai", api_key: "k", endpoint: "http://res.openai.azure.com/openai", deployment: "prod-4o" },
      ],
    });
    const s = send(h, "/v1/chat/completions", { model: "any name/../x", messages: [{ role: "user", content: "x" }] });
    expect(header(s.upstream.headers, ":path")).toBe("/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21");
    // Control characters stay out of filter state and the log even then.
    const bad = send(h, "/v1/chat/completions", { model: "a\r\nb", messages: [{ role: "user", content: "x" }] });
    expect(bad.getSentLocalResponse()?.statusCode).toBe(400);
  });
});

describe("model names on fallback", () => {
  let azure: MockServer;
  beforeAll(async () => {
    azure = await startMock("azure-openai", { apiKey: "k-az" });
  });
  afterAll(async () => {
    await azure.close();
  });

  it("an instance whose URL cannot carry the name is skipped: nothing reaches it, the client gets the first failure", async () => {
    const h = await Host.create({
      filters: [{
        name: "ai-proxy", wasm: WASM, allowOnHeadersStopIteration: true,
        configuration: {
          instances: [
            { name: "oa", provider: "openai", api_key: "k-oa", priority: 0 },
            { name: "az", provider: "azure-openai", api_key: "k-az", endpoint: "http://res.openai.azure.com/openai", priority: 1 },
          ],
          pools: [{ name: "p", instances: ["oa", "az"] }],
        },
      }],
      clusters: { az: azure.url },
    });
    // ai-router picked the pool; the client's model is fine for OpenAI's body, not for Azure's path.
    const s = h.newStream();
    s.filterState.set("wasm.sluice.pool", Buffer.from("p"));
    s.callOnRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw", "content-type": "application/json" }, false);
    s.callOnRequestBody(JSON.stringify({ model: "my model", messages: [{ role: "user", content: "x" }] }), true);
    expect(header(s.upstream.headers, "x-sluice-cluster")).toBe("oa");
    s.callOnResponseHeaders({ ":status": "500", "content-type": "application/json" }, false);
    s.callOnResponseBody(JSON.stringify({ error: { message: "boom", type: "server_error" } }), true);
    await h.settle();
    s.completeHttpContext();
    expect(azure.requests).toHaveLength(0);
    expect(header(s.downstream.headers, ":status")).toBe("500");
    expect(JSON.parse(s.downstream.body.toString()).error.message).toBe("boom");
  });
});

describe("configured names that go into upstream URLs", () => {
  async function loadError(instance: object): Promise<string> {
    try {
      const h = await proxyHost({ instances: [{ name: "i", api_key: "k", endpoint: "http://x.internal/base", ...instance }] });
      h.close();
    } catch (e) {
      expect(e).toBeInstanceOf(HostLoadError);
      return (e as HostLoadError).logs.join("\n");
    }
    throw new Error("configuration was accepted");
  }

  it("are refused at load with the field named, as a client's would be per request", async () => {
    expect(await loadError({ provider: "azure-openai", deployment: "prod/../admin" })).toMatch(/instances\[0\]\.deployment: must be 1 to 64 letters/);
    expect(await loadError({ provider: "azure-openai", api_version: "2024-10-21&x=1" })).toMatch(/instances\[0\]\.api_version: must be 1 to 64 letters/);
    expect(await loadError({ provider: "azure-openai", model: "gpt 4o" })).toMatch(/instances\[0\]\.model: 'model' names the Azure deployment/);
    expect(await loadError({ provider: "gemini", model_map: { fast: "gemini-2.5-flash?x" } })).toMatch(/instances\[0\]\.model_map\.fast: 'model' is not a valid Gemini model name/);
    expect(await loadError({ provider: "openai", model: "gpt-4o\r\nx: 1" })).toMatch(/instances\[0\]\.model: 'model' must be 1 to 256 characters without control characters/);
    // A configured deployment carries the path: the model may then be any printable name.
    const h = await proxyHost({ instances: [{ name: "i", provider: "azure-openai", api_key: "k", endpoint: "http://x.internal/openai", deployment: "prod-4o", model: "gpt 4o (2024)" }] });
    h.close();
  });
});
