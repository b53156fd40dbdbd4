// ai-cache from gateway.yaml to two running gateways: one gateway.yaml with filters.ai_cache and a
// Redis behind Webdis is rendered, and two local gateways (two Envoys) start from the rendered
// envoy.yaml. The official OpenAI client asks one, and the same question to the other is answered
// from the shared store without a provider call; the access log and /stats/prometheus say so.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import OpenAI from "openai";
import { renderYaml } from "../fixtures/local-gateway.js";
import { validateEnvoyYaml } from "../../cli/envoy-validate.js";
import { startLocalGateway, type LocalGateway } from "../../cli/start.js";
import { startWebdis, type Webdis } from "../ai-cache/webdis-server.js";

let webdis: Webdis;
let a: LocalGateway;
let b: LocalGateway;
const logA: string[] = [];
const logB: string[] = [];

beforeAll(async () => {
  webdis = await startWebdis();
  const r = renderYaml(`
providers:
  - name: small
    provider: openai
    api_key_env: OPENAI_API_KEY
    models: ["gpt-*"]
filters:
  ai_cache:
    ttl: 10m
    store: { webdis: "${webdis.url}", auth: { value_env: WEBDIS_AUTH, prefix: "Basic " } }
`);
  const envoyYaml = r.envoyYaml;
  expect(validateEnvoyYaml(r.envoy).errors).toEqual([]);
  const env = { WEBDIS_AUTH: Buffer.from(`${webdis.user}:${webdis.password}`).toString("base64") };
  // No provider key in the environment: each gateway answers with the mock providers.
  a = await startLocalGateway({ envoyYaml, port: 0, adminPort: 0, env, accessLog: (l) => logA.push(l) });
  b = await startLocalGateway({ envoyYaml, port: 0, adminPort: 0, env, accessLog: (l) => logB.push(l) });
}, 60_000);

afterAll(async () => {
  await a?.close();
  await b?.close();
  await webdis?.stop();
});

const client = (gw: LocalGateway) => new OpenAI({ apiKey: "sk-alice-123", baseURL: `${gw.url}/v1`, maxRetries: 0 });

async function lastLog(log: string[]) {
  for (let i = 0; i < 50 && log.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 20));
  return JSON.parse(log.at(-1)!);
}

describe("ai-cache rendered from gateway.yaml, shared by two gateways through Redis", () => {
  it("one gateway's answer is served by the other, streamed, and both say so in the log and the metrics", async () => {
    const question = `What is the tallest mountain? (${Date.now()})`;
    const first = await client(a).chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: question }] }).withResponse();
    expect(first.response.headers.get("x-sluice-cache")).toBe("miss");
    expect(await lastLog(logA)).toMatchObject({ cache: "miss", usage_source: "provider" });
    // The write to Redis goes out when the response ends: wait until it is there.
    const stored = async () => (await (await fetch(`${a.adminUrl}/stats/prometheus`)).text()).includes('sluice_cache_stores{outcome="stored"} 1');
    for (let i = 0; i < 100 && !(await stored()); i++) await new Promise((r) => setTimeout(r, 20));
    expect(await stored()).toBe(true);

    const stream = await client(b).chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: question }], stream: true }).withResponse();
    expect(stream.response.headers.get("x-sluice-cache")).toBe("hit");
    let text = "";
    for await (const chunk of stream.data) text += chunk.choices[0]?.delta?.content ?? "";
    expect(text).toBe(first.data.choices[0].message.content);
    const rec = await lastLog(logB);
    expect(rec).toMatchObject({ cache: "hit", usage_source: "cache", prompt_tokens: "0", completion_tokens: "0", request_type: "ai_stream" });
    expect(Number(rec.cache_saved_tokens)).toBeGreaterThan(0);
    const metrics = await (await fetch(`${b.adminUrl}/stats/prometheus`)).text();
    expect(metrics).toContain('sluice_cache_requests{outcome="hit",reason="exact"} 1');
  });
});
