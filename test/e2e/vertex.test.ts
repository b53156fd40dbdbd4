// Google Vertex AI (Gemini models) through the local gateway: the access token comes from the GCE
// metadata server (scripts/mocks/gce-metadata.ts), once for every worker, and goes to Vertex as a
// Bearer token on the project's publisher path (the Gemini mock serves Vertex's paths and checks the
// token). The official Google client passes through natively, the OpenAI client is translated, both
// whole and streamed; a metadata server that is down gives a 503 in the client's shape.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { GoogleGenAI } from "@google/genai";
import { Host } from "../../host/index.js";
import { startGateway, type Gateway } from "../../host/server.js";
import { startMock, type MockServer } from "../../scripts/mocks/index.js";
import { startMetadataMock, METADATA_TOKEN_PATH, type MetadataMock } from "../../scripts/mocks/gce-metadata.js";
import { validateEnvoyYaml } from "../../cli/envoy-validate.js";
import { renderYaml, startRendered } from "../fixtures/local-gateway.js";

const BASE = "/v1/projects/acme-ai/locations/europe-west4/publishers/google";
const CLAUDE_BASE = "/v1/projects/acme-ai/locations/europe-west4/publishers/anthropic";
let vertex: MockServer;
let claude: MockServer;
let metadata: MetadataMock;
let gateway: Gateway;

beforeAll(async () => {
  vertex = await startMock("gemini", { apiKey: "ya29.mock-1" });
  claude = await startMock("anthropic");
  metadata = await startMetadataMock();
  const token = { source: "metadata", cluster: "gce_metadata", authority: "metadata.google.internal", path: METADATA_TOKEN_PATH, scope: "https://www.googleapis.com/auth/cloud-platform" };
  const host = await Host.create({
    filters: [
      { name: "key-auth", wasm: "build/key-auth.wasm", configuration: { consumers: [{ name: "team-a", keys: ["key-a"] }] } },
      {
        name: "ai-proxy", wasm: "build/ai-proxy.wasm", allowOnHeadersStopIteration: true, workers: 2,
        configuration: {
          instances: [
            { name: "vertex", provider: "vertex", endpoint: `${vertex.url}${BASE}`, models: ["gemini-*"], token },
            { name: "vertex-claude", provider: "vertex-anthropic", endpoint: `${claude.url}${CLAUDE_BASE}`, models: ["claude-*"], token },
          ],
        },
      },
    ],
    clusters: { gce_metadata: metadata.url },
  });
  gateway = await startGateway({ host, clusterHeader: "x-sluice-cluster", clusters: { vertex: { url: vertex.url }, "vertex-claude": { url: claude.url } }, routeTimeoutMs: 30_000 });
  for (let i = 0; i < 100 && metadata.issued.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
}, 30_000);

afterAll(async () => {
  await gateway?.close();
  await vertex?.close();
  await claude?.close();
  await metadata?.close();
});

describe("Vertex AI with the metadata server's token", () => {
  it("the Google client's generateContent, whole and streamed, on the project's path with the Bearer token", async () => {
    const ai = new GoogleGenAI({ apiKey: "key-a", httpOptions: { baseUrl: gateway.url } });
    const r = await ai.models.generateContent({ model: "gemini-2.5-flash", contents: "Hello Vertex" });
    expect(r.text).toBe("Echo: Hello Vertex");
    const seen = vertex.requests.at(-1)!;
    expect(seen.path).toBe(`${BASE}/models/gemini-2.5-flash:generateContent`);
    expect(seen.headers.authorization).toBe("Bearer ya29.mock-1");
    expect(seen.headers["x-goog-api-key"]).toBeUndefined();
    let text = "";
    for await (const c of await ai.models.generateContentStream({ model: "gemini-2.5-flash", contents: "Streamed on Vertex" })) text += c.text ?? "";
    expect(text).toBe("Echo: Streamed on Vertex");
    // One token per instance, not per worker (the Claude instance has its own).
    expect(metadata.issued).toEqual(["ya29.mock-1", "ya29.mock-2"]);
    expect(metadata.scopes[0]).toBe("https://www.googleapis.com/auth/cloud-platform");
  });

  it("the OpenAI client, translated, whole and streamed", async () => {
    const c = new OpenAI({ apiKey: "key-a", baseURL: `${gateway.url}/v1`, maxRetries: 0 });
    const r = await c.chat.completions.create({ model: "gemini-2.5-flash", messages: [{ role: "user", content: "OpenAI to Vertex" }] });
    expect(r.choices[0].message.content).toBe("Echo: OpenAI to Vertex");
    let text = "";
    for await (const ch of await c.chat.completions.create({ model: "gemini-2.5-flash", messages: [{ role: "user", content: "Streamed too" }], stream: true })) text += ch.choices[0]?.delta?.content ?? "";
    expect(text).toBe("Echo: Streamed too");
  });

  it("a metadata server that is down: a 503 in the client's shape, saying why", async () => {
    const h = await Host.create({
      filters: [{
        name: "ai-proxy", wasm: "build/ai-proxy.wasm", allowOnHeadersStopIteration: true,
        configuration: { instances: [{ name: "vertex", provider: "vertex", endpoint: `http://127.0.0.1:9${BASE}`, token: { source: "metadata", cluster: "down", path: METADATA_TOKEN_PATH } }] },
      }],
      clusters: { down: "http://127.0.0.1:9" },
    });
    h.tick();
    await h.settle();
    const s = h.newStream();
    s.callOnRequestHeaders({ ":method": "POST", ":path": "/v1beta/models/gemini-2.5-flash:generateContent", ":authority": "gw", "content-type": "application/json" }, false);
    s.callOnRequestBody(JSON.stringify({ contents: [{ role: "user", parts: [{ text: "hi" }] }] }), true);
    const r = s.getSentLocalResponse()!;
    expect(r.statusCode).toBe(503);
    const body = JSON.parse(r.body.toString());
    expect(body.error.status).toBe("UNAVAILABLE");
    expect(body.error.message).toContain("no access token for instance 'vertex'");
    expect(body.error.message).toContain("HTTP 503");
    h.close();
  });
});

describe("Claude on Vertex AI (vertex-anthropic)", () => {
  it("the Anthropic client streamed and the OpenAI client whole: rawPredict with the model in the path and anthropic_version in the body", async () => {
    const s = new Anthropic({ apiKey: "key-a", baseURL: gateway.url, maxRetries: 0 }).messages.stream({ model: "claude-sonnet-4-5@20250929", max_tokens: 100, messages: [{ role: "user", content: "Claude on Vertex" }] });
    let text = "";
    s.on("text", (t) => (text += t));
    const final = await s.finalMessage();
    expect(text).toBe("Echo: Claude on Vertex");
    expect(final.stop_reason).toBe("end_turn");
    const seen = claude.requests.at(-1)!;
    expect(seen.path).toBe(`${CLAUDE_BASE}/models/claude-sonnet-4-5@20250929:streamRawPredict`);
    expect(seen.headers.authorization).toMatch(/^Bearer ya29\.mock-/);
    expect(seen.headers["x-api-key"]).toBeUndefined();
    expect(seen.body.anthropic_version).toBe("vertex-2023-10-16");
    expect(seen.body.model).toBeUndefined();
    const c = new OpenAI({ apiKey: "key-a", baseURL: `${gateway.url}/v1`, maxRetries: 0 });
    const r = await c.chat.completions.create({ model: "claude-sonnet-4-5@20250929", messages: [{ role: "user", content: "OpenAI to Claude on Vertex" }] });
    expect(r.choices[0].message.content).toBe("Echo: OpenAI to Claude on Vertex");
    expect(claude.requests.at(-1)!.path).toBe(`${CLAUDE_BASE}/models/claude-sonnet-4-5@20250929:rawPredict`);
  });
});

describe("vertex from gateway.yaml", () => {
  it("renders the project's regional endpoint and the metadata server's cluster, and npm start serves it with mocks", async () => {
    const r = renderYaml(`
providers:
  - name: gemini-on-vertex
    provider: vertex
    project: acme-ai-prod
    region: europe-west4
    models: ["gemini-*"]
  - name: claude-on-vertex
    provider: vertex-anthropic
    project: acme-ai-prod
    region: global
    models: ["claude-*"]
`);
    expect(validateEnvoyYaml(r.envoy).errors).toEqual([]);
    expect(r.envoy).toContain("europe-west4-aiplatform.googleapis.com");
    expect(r.envoy).toContain("metadata.google.internal");
    expect(r.ecds("ai-proxy")).toContain("/v1/projects/acme-ai-prod/locations/europe-west4/publishers/google");
    expect(r.ecds("ai-proxy")).toContain("/v1/projects/acme-ai-prod/locations/global/publishers/anthropic");
    expect(r.envoy).toContain("aiplatform.googleapis.com");
    const gw = await startRendered(r);
    try {
      expect(gw.providers).toContainEqual(expect.objectContaining({ instance: "gemini-on-vertex", mode: "mock" }));
      const ai = new GoogleGenAI({ apiKey: "sk-alice-123", httpOptions: { baseUrl: gw.url } });
      let text = "";
      for (let i = 0; i < 40 && !text; i++) {
        text = await ai.models.generateContent({ model: "gemini-2.5-flash", contents: "Hello from gateway.yaml" }).then((r) => r.text ?? "", async (e) => {
          if (!String(e).includes("503")) throw e;
          await new Promise((res) => setTimeout(res, 100));
          return "";
        });
      }
      expect(text).toBe("Echo: Hello from gateway.yaml");
      const claudeText = await new OpenAI({ apiKey: "sk-alice-123", baseURL: `${gw.url}/v1`, maxRetries: 0 }).chat.completions.create({ model: "claude-sonnet-4-5@20250929", messages: [{ role: "user", content: "Claude from gateway.yaml" }] });
      expect(claudeText.choices[0].message.content).toBe("Echo: Claude from gateway.yaml");
    } finally {
      await gw.close();
    }
  }, 30_000);
});
