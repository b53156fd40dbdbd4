// A bedrock provider (and a bedrock-anthropic one, InvokeModel) from gateway.yaml: checked (region, no API key, credentials by variable),
// rendered (the regional endpoint's TLS cluster over HTTP/2, the AWS variables passed to ai-proxy's
// VM) and valid for Envoy, and served by the local gateway: with no AWS credentials in the
// environment the Bedrock mock answers, and it accepts only requests the filter signed with the
// credentials the gateway gave its VM.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { parseGatewayConfig } from "../../cli/gateway-config.js";
import { validateEnvoyYaml } from "../../cli/envoy-validate.js";
import type { LocalGateway } from "../../cli/start.js";
import { LOCAL_HEAD, renderYaml, startRendered, type Rendered } from "../fixtures/local-gateway.js";
import { MINIMAL_GATEWAY, problemsOf } from "../fixtures/gateway-yaml.js";

const PROVIDERS = `
providers:
  - name: claude-on-bedrock
    provider: bedrock
    region: eu-central-1
    models: ["anthropic.*"]
  - name: claude-invoke
    provider: bedrock-anthropic
    region: eu-central-1
    models: ["us.anthropic.*"]
`;

let gw: LocalGateway;
let rendered: Rendered;

beforeAll(async () => {
  rendered = renderYaml(PROVIDERS);
  gw = await startRendered(rendered);
}, 60_000);

afterAll(() => gw?.close());

describe("bedrock from gateway.yaml", () => {
  it("renders the regional endpoint, TLS with h2, and the AWS variables for ai-proxy's VM; valid for Envoy", () => {
    expect(validateEnvoyYaml(rendered.envoy).errors).toEqual([]);
    expect(rendered.envoy).toContain("bedrock-runtime.eu-central-1.amazonaws.com");
    // (The filters' configurations are in their ECDS files.)
    for (const k of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]) expect(rendered.ecds("ai-proxy")).toContain(k);
    const cfg = parseGatewayConfig(LOCAL_HEAD + PROVIDERS, { env: {} });
    expect(cfg.providers[0]).toMatchObject({ provider: "bedrock", region: "eu-central-1", endpoint: "https://bedrock-runtime.eu-central-1.amazonaws.com", http2: true });
  });

  it("is served by the Bedrock mock when no AWS credentials are set, signed by the filter", async () => {
    expect(gw.providers).toContainEqual(expect.objectContaining({ instance: "claude-on-bedrock", provider: "bedrock", mode: "mock" }));
    const client = new OpenAI({ apiKey: "sk-alice-123", baseURL: `${gw.url}/v1`, maxRetries: 0 });
    const r = await client.chat.completions.create({ model: "anthropic.claude-sonnet-4-5-v1:0", messages: [{ role: "user", content: "Hello from gateway.yaml" }] });
    expect(r.choices[0].message.content).toBe("Echo: Hello from gateway.yaml");
    let text = "";
    for await (const c of await client.chat.completions.create({ model: "anthropic.claude-sonnet-4-5-v1:0", messages: [{ role: "user", content: "And streamed" }], stream: true })) text += c.choices[0]?.delta?.content ?? "";
    expect(text).toBe("Echo: And streamed");
  });

  it("bedrock-anthropic: InvokeModel through npm start's Bedrock mock, the Anthropic client streamed and whole", async () => {
    expect(gw.providers).toContainEqual(expect.objectContaining({ instance: "claude-invoke", provider: "bedrock-anthropic", mode: "mock" }));
    const client = new Anthropic({ apiKey: "sk-alice-123", baseURL: gw.url, maxRetries: 0 });
    const m = await client.messages.create({ model: "us.anthropic.claude-3-5-haiku-20241022-v1:0", max_tokens: 50, messages: [{ role: "user", content: "Claude from gateway.yaml" }] });
    expect(m.content).toEqual([{ type: "text", text: "Echo: Claude from gateway.yaml" }]);
    const s = client.messages.stream({ model: "us.anthropic.claude-3-5-haiku-20241022-v1:0", max_tokens: 50, messages: [{ role: "user", content: "And streamed" }] });
    let text = "";
    s.on("text", (t) => (text += t));
    expect((await s.finalMessage()).stop_reason).toBe("end_turn");
    expect(text).toBe("Echo: And streamed");
  });

  it("refuses what does not fit bedrock, with the field", () => {
    const base = MINIMAL_GATEWAY.replace("    api_key_env: OPENAI_API_KEY\n", "    api_key_env: OPENAI_API_KEY\n  - name: br\n    provider: bedrock\n");
    expect(problemsOf(base).join("\n")).toContain("missing required field 'region'");
    expect(problemsOf(base.replace("provider: bedrock\n", "provider: bedrock\n    region: us-east-1\n    api_key_env: X\n")).join("\n")).toContain("providers[1].api_key_env");
    expect(problemsOf(base.replace("provider: bedrock\n", "provider: bedrock\n    region: mars-1\n")).join("\n")).toContain("providers[1].region");
    expect(problemsOf(MINIMAL_GATEWAY.replace("    api_key_env: OPENAI_API_KEY\n", "    api_key_env: OPENAI_API_KEY\n    region: us-east-1\n")).join("\n")).toContain("is only read for providers bedrock, bedrock-anthropic, vertex and vertex-anthropic");
  });
});
