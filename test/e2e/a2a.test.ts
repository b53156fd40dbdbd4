// A2A end to end: the official @a2a-js/sdk client, authenticating with its own fetch wrapper, against
// two official-SDK agents (scripts/mocks/a2a-agent.ts) behind the local gateway started from a rendered
// gateway.yaml `a2a` section: the card names the gateway, calls and a streamed task go through, a
// task is read and canceled, the agent's credential reaches it and the client's does not, bad JSON-RPC
// and unknown agents get JSON-RPC errors, a requests rule limits calls per agent, and the access log.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { ClientFactory, ClientFactoryOptions, DefaultAgentCardResolver, JsonRpcTransportFactory, createAuthenticatingFetchWithRetry, type Client } from "@a2a-js/sdk/client";
import { Role, TaskState } from "@a2a-js/sdk";
import { render } from "../../cli/render.js";
import { validateEnvoyYaml } from "../../cli/envoy-validate.js";
import { startLocalGateway, type LocalGateway } from "../../cli/start.js";
import { startA2aAgent, type A2aTestAgent } from "../../scripts/mocks/a2a-agent.js";

const PLANNER_TOKEN = "planner-agent-token";
let planner: A2aTestAgent; // needs the gateway's credential
let writer: A2aTestAgent;
let gw: LocalGateway;
const log: string[] = [];

function gatewayYaml(): string {
  return `
listener: { address: 127.0.0.1, port: 10000 }
admin: { port: 9901 }
consumers:
  - name: alice
    keys: [sk-alice-123]
providers:
  - name: small
    provider: openai
    api_key_env: OPENAI_API_KEY
a2a:
  agents:
    - name: planner
      url: ${planner.url}
      card_url: http://127.0.0.1:${planner.port}/.well-known/agent-card.json
      auth: { value_env: PLANNER_TOKEN, prefix: "Bearer " }
    - name: writer
      url: ${writer.url}
    - name: gone
      url: http://127.0.0.1:9/a2a/jsonrpc
filters:
  ai_ratelimit:
    rules:
      - { name: writer-sends, key: [consumer], when: { a2a_agent: writer, a2a_method: SendMessage }, limit: 3, window: 1h, strategy: requests }
`;
}

/** The SDK's own client for an agent behind the gateway, sending the gateway key on every request. */
async function client(agent: string, key = "sk-alice-123"): Promise<Client> {
  const fetchImpl = createAuthenticatingFetchWithRetry(fetch, {
    headers: async () => ({ authorization: `Bearer ${key}` }),
    shouldRetryWithHeaders: async () => undefined,
  });
  const factory = new ClientFactory(ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
    transports: [new JsonRpcTransportFactory({ fetchImpl })],
    cardResolver: new DefaultAgentCardResolver({ fetchImpl }),
  }));
  // The card URL itself (path ""): the SDK resolves a bare base URL against the host root.
  return factory.createFromUrl(`${gw.url}/a2a/${agent}/.well-known/agent-card.json`, "");
}

const message = (t: string) => ({
  message: { messageId: randomUUID(), contextId: "", taskId: "", role: Role.ROLE_USER, parts: [{ content: { $case: "text" as const, value: t }, metadata: undefined, filename: "", mediaType: "" }], metadata: undefined, extensions: [], referenceTaskIds: [] },
  tenant: "", configuration: undefined, metadata: undefined,
});

const textOf = (m: any): string => m?.parts?.[0]?.content?.value ?? "";

beforeAll(async () => {
  planner = await startA2aAgent({ name: "planner", token: PLANNER_TOKEN });
  writer = await startA2aAgent({ name: "writer" });
  const dir = mkdtempSync(join(tmpdir(), "sluice-a2a-"));
  writeFileSync(join(dir, "gateway.yaml"), gatewayYaml());
  render({ config: join(dir, "gateway.yaml"), outDir: join(dir, "envoy"), env: {} });
  const envoyYaml = join(dir, "envoy", "envoy.yaml");
  expect(validateEnvoyYaml(readFileSync(envoyYaml, "utf8")).errors).toEqual([]);
  gw = await startLocalGateway({ envoyYaml, port: 0, adminPort: 0, env: { PLANNER_TOKEN }, accessLog: (l) => log.push(l) });
});

afterAll(async () => {
  await gw?.close();
  await planner?.close();
  await writer?.close();
});

describe("A2A through the gateway", () => {
  it("serves each agent's card naming the gateway's URL and key, not the agent's", async () => {
    const r = await fetch(`${gw.url}/a2a/planner/.well-known/agent-card.json`, { headers: { authorization: "Bearer sk-alice-123", "a2a-version": "1.0" } });
    expect(r.status).toBe(200);
    const card = await r.json();
    expect(card.name).toBe("planner");
    expect(card.supportedInterfaces).toEqual([{ protocolBinding: "JSONRPC", tenant: "", protocolVersion: "1.0", url: `${gw.url}/a2a/planner` }]);
    expect(JSON.stringify(card)).not.toContain(String(planner.port));
    expect(card.securitySchemes).toEqual({ sluice: { httpAuthSecurityScheme: { description: "the gateway key", scheme: "Bearer" } } });
    expect(card.signatures).toBeUndefined();
    const noKey = await fetch(`${gw.url}/a2a/planner/.well-known/agent-card.json`);
    expect(noKey.status).toBe(401);
  });

  it("sends a message and gets the agent's answer", async () => {
    const c = await client("planner");
    const r: any = await c.sendMessage(message("echo hello") as never);
    expect(textOf(r)).toBe("planner: hello");
    expect(textOf(await (await client("writer")).sendMessage(message("echo there") as never))).toBe("writer: there");
  });

  it("relays a streamed task's updates as the agent sends them", async () => {
    const c = await client("planner");
    const kinds: string[] = [];
    const notes: string[] = [];
    let final: number | undefined;
    for await (const e of c.sendMessageStream(message("steps 4") as never) as AsyncGenerator<any>) {
      kinds.push(e.payload.$case);
      if (e.payload.$case === "statusUpdate") {
        notes.push(textOf(e.payload.value.status.message));
        final = e.payload.value.status.state;
      }
    }
    expect(kinds[0]).toBe("task");
    expect(kinds).toContain("artifactUpdate");
    expect(notes.slice(0, 4)).toEqual(["planner: step 1", "planner: step 2", "planner: step 3", "planner: step 4"]);
    expect(final).toBe(TaskState.TASK_STATE_COMPLETED);
  });

  it("reads and cancels a task through the gateway", async () => {
    const c = await client("planner");
    const stream = c.sendMessageStream(message("wait") as never) as AsyncGenerator<any>;
    const first = (await stream.next()).value;
    const taskId = first.payload.value.id;
    const got: any = await c.getTask({ tenant: "", id: taskId, historyLength: undefined } as never);
    expect(got.id).toBe(taskId);
    const canceled: any = await c.cancelTask({ tenant: "", id: taskId, metadata: undefined } as never);
    expect(canceled.id).toBe(taskId);
    await stream.return(undefined);
  });

  it("the agent gets its own credential, never the client's key", () => {
    const calls = planner.requests.filter((r) => r.method === "POST");
    expect(calls.length).toBeGreaterThan(0);
    for (const r of planner.requests) {
      expect(JSON.stringify(r.headers)).not.toContain("sk-alice-123");
      expect(r.headers.authorization).toBe(`Bearer ${PLANNER_TOKEN}`);
    }
    for (const r of writer.requests) expect(r.headers.authorization).toBeUndefined();
  });

  it("limits calls per agent and method with a requests rule: a JSON-RPC 429", async () => {
    const post = (id: number) =>
      fetch(`${gw.url}/a2a/writer`, {
        method: "POST",
        headers: { authorization: "Bearer sk-alice-123", "content-type": "application/json", "a2a-version": "1.0" },
        body: JSON.stringify({ jsonrpc: "2.0", id, method: "SendMessage", params: { message: { messageId: randomUUID(), role: "ROLE_USER", parts: [{ text: "echo x" }] } } }),
      });
    let limited: Response | null = null;
    for (let i = 0; i < 5 && !limited; i++) {
      const r = await post(100 + i);
      if (r.status === 429) limited = r;
      else await r.text();
    }
    expect(limited).not.toBeNull();
    expect(Number(limited!.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await limited!.json()).toMatchObject({ jsonrpc: "2.0", error: { code: -32000 } });
  });

  it("bad JSON-RPC, unknown methods and agents get JSON-RPC errors; a down agent names itself only", async () => {
    const post = (path: string, body: string) => fetch(`${gw.url}${path}`, { method: "POST", headers: { authorization: "Bearer sk-alice-123", "content-type": "application/json" }, body });
    const cases: [string, string, number, number][] = [
      ["/a2a/planner", "{oops", 400, -32700],
      ["/a2a/planner", '[{"jsonrpc":"2.0","id":1,"method":"GetTask"}]', 400, -32600],
      ["/a2a/planner", '{"jsonrpc":"2.0","id":1,"method":"tools/call"}', 200, -32601],
      ["/a2a/nobody", '{"jsonrpc":"2.0","id":1,"method":"GetTask"}', 404, -32601],
      ["/a2a/gone", '{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"x"}}', 503, -32603],
    ];
    for (const [path, body, status, code] of cases) {
      const r = await post(path, body);
      expect(r.status, `${path} ${body}`).toBe(status);
      const j = await r.json();
      expect(j.jsonrpc).toBe("2.0");
      expect(j.error.code).toBe(code);
      expect(JSON.stringify(j)).not.toContain("127.0.0.1:9");
    }
    const card = await fetch(`${gw.url}/a2a/gone/.well-known/agent-card.json`, { headers: { authorization: "Bearer sk-alice-123" } });
    expect(card.status).toBe(502);
    expect((await card.json()).error.message).toMatch(/agent 'gone' did not give its card/);
    expect(gw.host.logs.filter((l) => /Uncaught|abort|trap/i.test(l.message))).toEqual([]);
  });

  it("the access log says which agent and method", async () => {
    for (let i = 0; i < 50 && !log.some((l) => l.includes("GetTask")); i++) await new Promise((r) => setTimeout(r, 10));
    const lines = log.flatMap((l) => l.split("\n").filter(Boolean)).map((l) => JSON.parse(l));
    expect(lines.find((l) => l.a2a_method === "SendStreamingMessage")).toMatchObject({ a2a_agent: "planner", consumer: "alice", status: 200 });
    expect(lines.find((l) => l.a2a_method === "card")).toMatchObject({ a2a_agent: "planner" });
    expect(lines.some((l) => l.a2a_method === "CancelTask" && l.a2a_agent === "planner")).toBe(true);
  });
});
