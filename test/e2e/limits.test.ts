// The local gateway takes its buffer limits from envoy.yaml, as Envoy does: the listener's
// per_connection_buffer_limit_bytes, raised by the route's request_body_buffer_limit, bounds what a
// filter may buffer (Envoy's own 413 past it for a request; its 500, which the rendered
// local_reply_config makes a 502 in the client's shape, for an answer).
import { describe, it, expect, afterEach } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { render } from "../../cli/render.js";
import { validateEnvoyYaml } from "../../cli/envoy-validate.js";
import { startLocalGateway, type LocalGateway } from "../../cli/start.js";

const KiB = 1024;
const GATEWAY_YAML = `
listener: { address: 127.0.0.1, port: 10000 }
admin: { port: 9901 }
consumers:
  - name: team-a
    keys: [sk-team-a]
providers:
  - name: openai
    provider: openai
    api_key_env: OPENAI_API_KEY
    models: ["gpt-*"]
`;

let gw: LocalGateway | null = null;
afterEach(async () => {
  await gw?.close();
  gw = null;
});

/** The rendered envoy.yaml with the route's limit replaced (or removed) and the listener's set. */
function envoyYaml(route: number | null, listener: number): string {
  const dir = mkdtempSync(join(tmpdir(), "sluice-limits-"));
  writeFileSync(join(dir, "gateway.yaml"), GATEWAY_YAML);
  render({ config: join(dir, "gateway.yaml"), outDir: join(dir, "envoy"), env: {} });
  const doc = parse(readFileSync(join(dir, "envoy", "envoy.yaml"), "utf8"));
  const l = doc.static_resources.listeners[0];
  l.per_connection_buffer_limit_bytes = listener;
  const r = l.filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0];
  if (route === null) delete r.request_body_buffer_limit;
  else r.request_body_buffer_limit = route;
  const text = stringify(doc);
  expect(validateEnvoyYaml(text).errors).toEqual([]);
  const path = join(dir, "envoy", "envoy.yaml");
  writeFileSync(path, text);
  return path;
}

async function chat(content: string): Promise<{ status: number; type: string; body: string }> {
  const r = await fetch(`${gw!.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: "Bearer sk-team-a", "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content }] }),
  });
  return { status: r.status, type: r.headers.get("content-type") ?? "", body: await r.text() };
}

describe("buffer limits read from envoy.yaml", () => {
  it("the listener's limit alone: a request body past it gets Envoy's 413", async () => {
    gw = await startLocalGateway({ envoyYaml: envoyYaml(null, 64 * KiB), port: 0, adminPort: 0, env: {}, accessLog: () => {} });
    expect(gw.config.listener.bufferLimitBytes).toBe(64 * KiB);
    expect((await chat("small")).status).toBe(200);
    const big = await chat("x".repeat(100 * KiB));
    expect([big.status, big.body]).toEqual([413, "Payload Too Large"]);
  });

  it("the route's request_body_buffer_limit raises it: the same body passes, and an answer past it is a 502 in the client's shape", async () => {
    gw = await startLocalGateway({ envoyYaml: envoyYaml(160 * KiB, 64 * KiB), port: 0, adminPort: 0, env: {}, accessLog: () => {} });
    expect(gw.config.route.requestBodyBufferLimitBytes).toBe(160 * KiB);
    // The mock provider echoes the prompt: 100 KiB in, an answer of about as much out.
    expect((await chat("x".repeat(100 * KiB))).status).toBe(200);
    // A request just under the limit fits; its echo, with the answer's framing, does not: Envoy's 500.
    const over = await chat("y".repeat(160 * KiB - 100));
    expect(over.status).toBe(502);
    expect(over.type).toBe("application/json");
    expect(JSON.parse(over.body).error).toMatchObject({ type: "api_error", code: "upstream_response_too_large" });
  });
});
