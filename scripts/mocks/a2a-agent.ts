// An A2A agent built with the official @a2a-js/sdk (v1.0 protocol, JSON-RPC over HTTP, its express
// handlers), for the a2a filter's tests and for trying the gateway by hand:
//   tsx scripts/mocks/a2a-agent.ts --name planner --port 4000 [--token T]
// It serves its card at /.well-known/agent-card.json and JSON-RPC at /a2a/jsonrpc. A message "echo X"
// is answered with a message "<name>: X"; "steps N" starts a task that streams N working updates, an
// artifact and its completion; "wait" starts a task that works until it is canceled. Every request
// is recorded (headers included) so tests see what reached the agent.
import express from "express";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { Role, TaskState, type AgentCard } from "@a2a-js/sdk";
import { DefaultRequestHandler, InMemoryTaskStore, type AgentExecutor, type ExecutionEventBus, type RequestContext } from "@a2a-js/sdk/server";
import { jsonRpcHandler, agentCardHandler, UserBuilder } from "@a2a-js/sdk/server/express";

export interface A2aAgentOptions {
  name: string;
  port?: number;
  /** Bearer token the agent requires (absent: none). */
  token?: string;
}

export interface RecordedA2aRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  rpcMethod?: string;
}

export interface A2aTestAgent {
  name: string;
  url: string;
  port: number;
  card: AgentCard;
  requests: RecordedA2aRequest[];
  close(): Promise<void>;
}

function text(message: { parts?: { content?: { $case: string; value: unknown } }[] } | undefined): string {
  for (const p of message?.parts ?? []) if (p.content?.$case === "text") return String(p.content.value);
  return "";
}

function agentMessage(name: string, body: string, taskId = "", contextId = "") {
  return { messageId: randomUUID(), contextId, taskId, role: Role.ROLE_AGENT, parts: [{ content: { $case: "text" as const, value: `${name}: ${body}` }, metadata: undefined, filename: "", mediaType: "" }], metadata: undefined, extensions: [], referenceTaskIds: [] };
}

class Executor implements AgentExecutor {
  private readonly canceled = new Set<string>();
  constructor(private readonly name: string) {}

  async execute(ctx: RequestContext, bus: ExecutionEventBus): Promise<void> {
    const said = text(ctx.userMessage as never);
    const [verb, arg] = said.split(/\s+/, 2);
    if (verb !== "steps" && verb !== "wait") {
      bus.publish({ kind: "message", data: agentMessage(this.name, said.replace(/^echo\s+/, ""), "", ctx.contextId) } as never);
      bus.finished();
      return;
    }
    const status = (state: TaskState, note: string) => ({ state, message: agentMessage(this.name, note, ctx.taskId, ctx.contextId), timestamp: new Date().toISOString() });
    bus.publish({ kind: "task", data: { id: ctx.taskId, contextId: ctx.contextId, status: status(TaskState.TASK_STATE_SUBMITTED, "submitted"), artifacts: [], history: [ctx.userMessage], metadata: undefined } } as never);
    const n = verb === "steps" ? Math.min(Number(arg) || 3, 50) : 1000;
    for (let i = 1; i <= n; i++) {
      if (this.canceled.has(ctx.taskId)) return;
      await new Promise((r) => setTimeout(r, verb === "wait" ? 20 : 10));
      bus.publish({ kind: "statusUpdate", data: { taskId: ctx.taskId, contextId: ctx.contextId, status: status(TaskState.TASK_STATE_WORKING, `step ${i}`), metadata: undefined } } as never);
    }
    bus.publish({ kind: "artifactUpdate", data: { taskId: ctx.taskId, contextId: ctx.contextId, artifact: { artifactId: "result", name: "result", description: "", parts: [agentMessage(this.name, `did ${n} steps`).parts[0]], metadata: undefined, extensions: [] }, append: false, lastChunk: true, metadata: undefined } } as never);
    bus.publish({ kind: "statusUpdate", data: { taskId: ctx.taskId, contextId: ctx.contextId, status: status(TaskState.TASK_STATE_COMPLETED, "done"), metadata: undefined } } as never);
    bus.finished();
  }

  async cancelTask(taskId: string, bus: ExecutionEventBus): Promise<void> {
    this.canceled.add(taskId);
    bus.publish({ kind: "statusUpdate", data: { taskId, contextId: "", status: { state: TaskState.TASK_STATE_CANCELED, message: undefined, timestamp: new Date().toISOString() }, metadata: undefined } } as never);
    bus.finished();
  }
}

export async function startA2aAgent(opts: A2aAgentOptions): Promise<A2aTestAgent> {
  const app = express();
  const requests: RecordedA2aRequest[] = [];
  const card = {
    name: opts.name,
    description: `test agent ${opts.name}`,
    supportedInterfaces: [] as { url: string; protocolBinding: string; tenant: string; protocolVersion: string }[],
    provider: undefined,
    version: "1.0.0",
    capabilities: { streaming: true, pushNotifications: false, extensions: [], extendedAgentCard: false },
    securitySchemes: {},
    securityRequirements: [],
    defaultInputModes: ["text/plain"],
    defaultOutputModes: ["text/plain"],
    skills: [{ id: "echo", name: "echo", description: "echoes", tags: ["test"], examples: [], inputModes: [], outputModes: [], securityRequirements: [] }],
    signatures: [],
  } as unknown as AgentCard;
  const handler = new DefaultRequestHandler(card, new InMemoryTaskStore(), new Executor(opts.name));
  app.use((req, res, next) => {
    let body = "";
    req.setEncoding("utf8");
    const rec: RecordedA2aRequest = { method: req.method, path: req.url, headers: { ...req.headers } };
    requests.push(rec);
    if (opts.token && req.headers.authorization !== `Bearer ${opts.token}`) {
      res.status(401).json({ error: "unauthorized" });
      return;
    }
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      try {
        rec.rpcMethod = body ? JSON.parse(body).method : undefined;
      } catch {
        /* not JSON: the handler answers */
      }
      (req as unknown as { body: unknown }).body = body ? safeJson(body) : undefined;
      next();
    });
  });
  app.use("/.well-known/agent-card.json", agentCardHandler({ agentCardProvider: handler }));
  app.use("/a2a/jsonrpc", jsonRpcHandler({ requestHandler: handler, userBuilder: UserBuilder.noAuthentication }));
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(opts.port ?? 0, "127.0.0.1", () => resolve(s));
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}/a2a/jsonrpc`;
  (card as unknown as { supportedInterfaces: unknown[] }).supportedInterfaces.push({ url, protocolBinding: "JSONRPC", tenant: "", protocolVersion: "1.0" });
  return {
    name: opts.name, url, port, card, requests,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (n: string) => {
    const i = process.argv.indexOf(`--${n}`);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const a = await startA2aAgent({ name: arg("name") ?? "agent", port: Number(arg("port") ?? 4000), token: arg("token") });
  console.error(`A2A agent ${a.name}: card http://127.0.0.1:${a.port}/.well-known/agent-card.json, JSON-RPC ${a.url}`);
}
