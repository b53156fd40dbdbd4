// The cloud providers through `npm start`'s own code, from one gateway.yaml: Bedrock (Converse),
// Claude on Bedrock (InvokeModel), Vertex AI (Gemini) and Claude on Vertex, each mocked as npm start
// mocks them (Bedrock mocks that check SigV4 signatures; a GCE metadata server for Vertex's tokens).
// Every client API (OpenAI Chat and Responses, Anthropic Messages, Gemini's own), whole and streamed,
// with the official SDKs, to each of the four; each answer's usage is in the access log, as the
// provider counted it.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { GoogleGenAI } from "@google/genai";
import { startLocalGateway, type LocalGateway } from "../../cli/start.js";
import { renderYaml } from "../fixtures/local-gateway.js";

const PROVIDERS = `
providers:
  - name: nova
    provider: bedrock
    region: us-east-1
    models: ["amazon.*"]
  - name: claude-invoke
    provider: bedrock-anthropic
    region: us-east-1
    models: ["anthropic.*"]
  - name: gemini-vertex
    provider: vertex
    project: acme-ai
    region: europe-west4
    models: ["gemini-*"]
  - name: claude-vertex
    provider: vertex-anthropic
    project: acme-ai
    region: europe-west4
    models: ["claude-*"]
`;

const TARGETS = [
  { instance: "nova", provider: "bedrock", model: "amazon.nova-pro-v1:0" },
  { instance: "claude-invoke", provider: "bedrock-anthropic", model: "anthropic.claude-3-5-haiku-20241022-v1:0" },
  { instance: "gemini-vertex", provider: "vertex", model: "gemini-2.5-flash" },
  { instance: "claude-vertex", provider: "vertex-anthropic", model: "claude-sonnet-4-5@20250929" },
];

let gw: LocalGateway;
const log: string[] = [];

beforeAll(async () => {
  const r = renderYaml(PROVIDERS);
  gw = await startLocalGateway({ envoyYaml: r.envoyYaml, port: 0, adminPort: 0, env: {}, accessLog: (l) => log.push(l) });
  // Vertex's first token is fetched on the root's first tick.
  for (let i = 0; i < 100; i++) {
    const m = await (await fetch(`${gw.adminUrl}/stats/prometheus`)).text();
    if (m.includes('sluice_upstream_token_valid{server="gemini-vertex"} 1') && m.includes('sluice_upstream_token_valid{server="claude-vertex"} 1')) break;
    await new Promise((res) => setTimeout(res, 50));
  }
}, 60_000);

afterAll(() => gw?.close());

/** The access-log line of the request whose prompt said `tag` (the mock echoes it; the log has the path and usage). */
async function record(before: number) {
  for (let i = 0; i < 100 && log.length <= before; i++) await new Promise((r) => setTimeout(r, 10));
  return JSON.parse(log.slice(before).join("\n").split("\n").filter(Boolean).at(-1)!);
}

type Call = (model: string, prompt: string) => Promise<string>;
const openai = () => new OpenAI({ apiKey: "sk-alice-123", baseURL: `${gw.url}/v1`, maxRetries: 0 });
const anthropic = () => new Anthropic({ apiKey: "sk-alice-123", baseURL: gw.url, maxRetries: 0 });
const google = () => new GoogleGenAI({ apiKey: "sk-alice-123", httpOptions: { baseUrl: gw.url } });

const CLIENTS: { api: string; whole: Call; streamed: Call }[] = [
  {
    api: "OpenAI Chat",
    whole: async (model, prompt) => (await openai().chat.completions.create({ model, messages: [{ role: "user", content: prompt }] })).choices[0].message.content ?? "",
    streamed: async (model, prompt) => {
      let t = "";
      for await (const c of await openai().chat.completions.create({ model, messages: [{ role: "user", content: prompt }], stream: true })) t += c.choices[0]?.delta?.content ?? "";
      return t;
    },
  },
  {
    api: "Anthropic Messages",
    whole: async (model, prompt) => {
      const m = await anthropic().messages.create({ model, max_tokens: 200, messages: [{ role: "user", content: prompt }] });
      return m.content.map((b) => (b.type === "text" ? b.text : "")).join("");
    },
    streamed: async (model, prompt) => {
      let t = "";
      const s = anthropic().messages.stream({ model, max_tokens: 200, messages: [{ role: "user", content: prompt }] });
      s.on("text", (x) => (t += x));
      await s.finalMessage();
      return t;
    },
  },
  {
    api: "OpenAI Responses",
    whole: async (model, prompt) => (await openai().responses.create({ model, input: prompt, store: false })).output_text,
    streamed: async (model, prompt) => {
      let t = "";
      for await (const e of await openai().responses.create({ model, input: prompt, store: false, stream: true })) if (e.type === "response.output_text.delta") t += e.delta;
      return t;
    },
  },
  {
    api: "Gemini",
    whole: async (model, prompt) => (await google().models.generateContent({ model, contents: prompt })).text ?? "",
    streamed: async (model, prompt) => {
      let t = "";
      for await (const c of await google().models.generateContentStream({ model, contents: prompt })) t += c.text ?? "";
      return t;
    },
  },
];

describe("cloud providers through npm start: every client API, whole and streamed", () => {
  it("npm start mocks all four, signing and tokens included", () => {
    for (const t of TARGETS) expect(gw.providers).toContainEqual(expect.objectContaining({ instance: t.instance, provider: t.provider, mode: "mock" }));
  });

  for (const t of TARGETS) {
    for (const c of CLIENTS) {
      for (const mode of ["whole", "streamed"] as const) {
        it(`${c.api} → ${t.provider}, ${mode}: the answer, and the provider's usage in the access log`, async () => {
          const prompt = `${c.api} to ${t.instance} ${mode}`;
          const before = log.length;
          expect(await c[mode](t.model, prompt)).toBe(`Echo: ${prompt}`);
          const rec = await record(before);
          expect(rec).toMatchObject({ provider: t.provider, instance: t.instance, model: t.model, usage_source: "provider", status: 200 });
          expect(Number(rec.prompt_tokens)).toBeGreaterThan(0);
          expect(Number(rec.completion_tokens)).toBeGreaterThan(0);
        });
      }
    }
  }
});
