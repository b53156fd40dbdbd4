// The key-auth query credential never reaches the access log: the local gateway run from a rendered
// envoy.yaml, keys sent as ?key=..., every access-log line read back (its path is
// %REQ(:PATH)%, the request headers as the filters left them).
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { render } from "../../cli/render.js";
import { startLocalGateway, type LocalGateway } from "../../cli/start.js";

const GATEWAY_YAML = `
listener: { address: 127.0.0.1, port: 10000 }
admin: { port: 9901 }
consumers:
  - name: team-a
    keys: [sk-team-a-secret]
providers:
  - name: openai
    provider: openai
    api_key_env: OPENAI_API_KEY
    models: ["gpt-*"]
filters:
  key_auth: { query: key }
`;

let gw: LocalGateway;
const log: string[] = [];

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "sluice-keylog-"));
  writeFileSync(join(dir, "gateway.yaml"), GATEWAY_YAML);
  render({ config: join(dir, "gateway.yaml"), outDir: join(dir, "envoy"), env: {} });
  gw = await startLocalGateway({ envoyYaml: join(dir, "envoy", "envoy.yaml"), port: 0, adminPort: 0, env: {}, accessLog: (l) => log.push(l) });
});

afterAll(async () => {
  await gw?.close();
});

async function logged(n: number): Promise<Record<string, unknown>[]> {
  for (let i = 0; i < 100 && log.length < n; i++) await new Promise((res) => setTimeout(res, 10));
  return log.map((l) => JSON.parse(l));
}

describe("key-auth query keys and the access log", () => {
  it("no outcome prints the key: wrong, conflicting, empty and valid keys are all logged without it", async () => {
    const chat = JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] });
    const post = (q: string) => fetch(`${gw.url}/v1/chat/completions?${q}`, { method: "POST", headers: { "content-type": "application/json" }, body: chat });
    const cases: [string, number][] = [
      ["key=sk-wrong-secret&trace=1", 401],
      ["trace=1&key=sk-team-a-secret&key=sk-wrong-secret", 401],
      ["trace=1;%6Bey=sk-wrong-secret", 401],
      ["key=&trace=1", 401],
      ["key=sk-team-a-secret&trace=1", 200],
      ["trace=1&k%65y=sk-team-a-secret", 200],
    ];
    for (const [q, status] of cases) {
      const r = await post(q);
      await r.text();
      expect(r.status, q).toBe(status);
    }
    const lines = await logged(cases.length);
    expect(lines).toHaveLength(cases.length);
    expect(lines.map((l) => l.status)).toEqual(cases.map(([, s]) => s));
    // Rejected: the client's path without the key. Admitted: the path ai-proxy sent upstream.
    expect(lines.map((l) => l.path)).toEqual([
      ...Array(4).fill("/v1/chat/completions?trace=1"),
      ...Array(2).fill("/v1/chat/completions"),
    ]);
    const text = log.join("\n");
    expect(text).not.toContain("secret");
    expect(text).not.toMatch(/key=|%6Bey|k%65y/);
  });

  it("a client cannot choose the logged path: its own x-envoy-original-path is not what the log prints", async () => {
    // Envoy strips x-envoy-original-path from a request only at the edge (use_remote_address and an
    // external client, ConnectionManagerUtility::cleanInternalHeaders); the log reads :path instead.
    const before = log.length;
    const r = await fetch(`${gw.url}/v1/chat/completions?key=sk-wrong-secret`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-envoy-original-path": "/v1/chat/completions?key=sk-spoofed-secret" },
      body: "{}",
    });
    await r.text();
    expect(r.status).toBe(401);
    const lines = await logged(before + 1);
    expect(lines[before].path).toBe("/v1/chat/completions");
    expect(log.slice(before).join("\n")).not.toContain("secret");
  });
});
