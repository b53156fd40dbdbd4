// Azure OpenAI with Microsoft Entra ID through the local gateway: the instance's token is fetched with
// the client-credentials grant from a token endpoint (scripts/mocks/oauth-token.ts) once for every
// worker and sent as a Bearer token in place of the api-key; the official OpenAI client's requests
// go through with it; a refused client or an endpoint that is down gives a 503 in OpenAI's shape that
// says why, and never the secret; an instance without a token is skipped by its pool and shows as
// unavailable.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import OpenAI from "openai";
import { Host } from "../../host/index.js";
import { startGateway, type Gateway } from "../../host/server.js";
import { startMock, type MockServer } from "../../scripts/mocks/index.js";
import { startTokenMock, type TokenMock } from "../../scripts/mocks/oauth-token.js";
import { validateEnvoyYaml } from "../../cli/envoy-validate.js";
import { renderYaml, startRendered } from "../fixtures/local-gateway.js";

let azure: MockServer;
let idp: TokenMock;
let refused: TokenMock;
let gateway: Gateway;
let hostRef: Host;

beforeAll(async () => {
  azure = await startMock("azure-openai");
  idp = await startTokenMock({ clientId: "app-id", clientSecret: "app-secret", path: "/tenant-1/oauth2/v2.0/token" });
  refused = await startTokenMock({ clientId: "someone-else", clientSecret: "x", path: "/tenant-2/oauth2/v2.0/token" });
  const entra = (cluster: string, tenant: string) => ({ source: "client_credentials", cluster, authority: "login.microsoftonline.com", path: `/${tenant}/oauth2/v2.0/token`, scope: "https://cognitiveservices.azure.com/.default" });
  const host = await Host.create({
    filters: [
      { name: "key-auth", wasm: "build/key-auth.wasm", configuration: { consumers: [{ name: "team-a", keys: ["key-a"] }] } },
      {
        name: "ai-proxy", wasm: "build/ai-proxy.wasm", allowOnHeadersStopIteration: true, workers: 2,
        configuration: {
          instances: [
            { name: "azure-entra", provider: "azure-openai", endpoint: `${azure.url}/openai`, deployment: "gpt-4o-prod", models: ["gpt-4o"], token: entra("idp", "tenant-1") },
            { name: "azure-refused", provider: "azure-openai", endpoint: `${azure.url}/openai`, deployment: "gpt-4o-prod", models: ["refused-*"], token: entra("idp-refused", "tenant-2") },
            // A pool whose preferred instance has no token: its requests go to the one with a key.
            { name: "pooled-refused", provider: "azure-openai", endpoint: `${azure.url}/openai`, deployment: "gpt-4o-prod", models: ["pooled"], priority: 0, token: entra("idp-refused", "tenant-2") },
            { name: "pooled-key", provider: "azure-openai", endpoint: `${azure.url}/openai`, deployment: "gpt-4o-prod", models: ["pooled"], priority: 1, api_key: "azure-key" },
          ],
          pools: [{ name: "pooled", instances: ["pooled-refused", "pooled-key"] }],
        },
        env: { AZURE_CLIENT_ID: "app-id", AZURE_CLIENT_SECRET: "app-secret" },
      },
    ],
    // The token endpoints are proxy_http_call clusters (Envoy clusters too).
    clusters: { idp: new URL(idp.url).origin, "idp-refused": new URL(refused.url).origin },
  });
  hostRef = host;
  gateway = await startGateway({
    host,
    clusterHeader: "x-sluice-cluster",
    clusters: { "azure-entra": { url: azure.url }, "azure-refused": { url: azure.url }, "pooled-refused": { url: azure.url }, "pooled-key": { url: azure.url } },
    routeTimeoutMs: 30_000,
  });
  // The first fetch is on the root's first tick (once a second).
  for (let i = 0; i < 100 && (idp.issued.length === 0 || refused.requests.length === 0); i++) await new Promise((r) => setTimeout(r, 50));
}, 30_000);

afterAll(async () => {
  await gateway?.close();
  await azure?.close();
  await idp?.close();
  await refused?.close();
});

const client = () => new OpenAI({ apiKey: "key-a", baseURL: `${gateway.url}/v1`, maxRetries: 0 });

describe("Azure OpenAI with Microsoft Entra ID", () => {
  it("fetches one token for every worker and sends it as a Bearer token instead of an api-key", async () => {
    expect(idp.issued).toEqual(["tok-1"]);
    expect(idp.requests[0]).toMatchObject({ grant_type: "client_credentials", client_id: "app-id", client_secret: "app-secret", scope: "https://cognitiveservices.azure.com/.default" });
    for (let i = 0; i < 4; i++) {
      const r = await client().chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: `Hello ${i}` }] });
      expect(r.choices[0].message.content).toBe(`Echo: Hello ${i}`);
    }
    const seen = azure.requests.at(-1)!;
    expect(seen.headers.authorization).toBe("Bearer tok-1");
    expect(seen.headers["api-key"]).toBeUndefined();
    expect(JSON.stringify(seen.headers)).not.toContain("key-a");
    // Both workers used the one token: still one fetch.
    expect(idp.issued).toEqual(["tok-1"]);
  });

  it("answers 503 in OpenAI's shape, saying why, when the token endpoint refuses the client", async () => {
    const e = await client().chat.completions.create({ model: "refused-model", messages: [{ role: "user", content: "hi" }] }).catch((x) => x);
    expect(e).toBeInstanceOf(OpenAI.APIError);
    expect(e.status).toBe(503);
    expect(e.code).toBe("upstream_credential_unavailable");
    expect(e.message).toContain("azure-refused");
    expect(e.message).toContain("HTTP 401");
    expect(e.message).not.toContain("app-secret");
  });
});

describe("an instance without a token is out, as a down one is", () => {
  it("its pool's requests go to the next instance, and its availability gauge is 0 while the others' are 1", async () => {
    for (let i = 0; i < 3; i++) {
      const r = await client().chat.completions.create({ model: "pooled", messages: [{ role: "user", content: `Pooled ${i}` }] });
      expect(r.choices[0].message.content).toBe(`Echo: Pooled ${i}`);
      expect(azure.requests.at(-1)!.headers["api-key"]).toBe("azure-key");
    }
    // The gauges follow the tokens on the root's tick (once a second).
    const gauge = (name: string) => hostRef.getMetric(`sluice.ai_instance_available;instance=${name}`)?.value;
    for (let i = 0; i < 60 && (gauge("pooled-refused") !== 0n || gauge("azure-entra") !== 1n); i++) await new Promise((r) => setTimeout(r, 50));
    expect(hostRef.getMetric("sluice.ai_instance_available;instance=pooled-refused")?.value).toBe(0n);
    expect(hostRef.getMetric("sluice.ai_instance_available;instance=azure-refused")?.value).toBe(0n);
    expect(hostRef.getMetric("sluice.ai_instance_available;instance=azure-entra")?.value).toBe(1n);
    expect(hostRef.getMetric("sluice.ai_instance_available;instance=pooled-key")?.value).toBe(1n);
  });
});

describe("Entra ID from gateway.yaml", () => {
  it("renders the token endpoint's cluster and the client's variables, and npm start serves it with mocks when they are unset", async () => {
    const r = renderYaml(`
providers:
  - name: azure
    provider: azure-openai
    endpoint: https://contoso.openai.azure.com/openai
    deployment: gpt-4o-prod
    entra: { tenant_id: contoso.onmicrosoft.com }
`);
    expect(validateEnvoyYaml(r.envoy).errors).toEqual([]);
    expect(r.envoy).toContain("azure_entra");
    expect(r.envoy).toContain("login.microsoftonline.com");
    expect(r.ecds("ai-proxy")).toContain("AZURE_CLIENT_ID");
    expect(r.ecds("ai-proxy")).toContain("/contoso.onmicrosoft.com/oauth2/v2.0/token");
    const gw = await startRendered(r);
    try {
      expect(gw.providers).toContainEqual(expect.objectContaining({ instance: "azure", mode: "mock" }));
      const c = new OpenAI({ apiKey: "sk-alice-123", baseURL: `${gw.url}/v1`, maxRetries: 0 });
      let r: OpenAI.ChatCompletion | null = null;
      // The first token comes on the first tick (within a second).
      for (let i = 0; i < 40 && r === null; i++) {
        r = await c.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "Hello Entra" }] }).catch(async (e) => {
          if (e.status !== 503) throw e;
          await new Promise((res) => setTimeout(res, 100));
          return null;
        });
      }
      expect(r?.choices[0].message.content).toBe("Echo: Hello Entra");
    } finally {
      await gw.close();
    }
  }, 30_000);
});
