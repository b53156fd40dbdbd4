// MCP servers for tests and for trying the gateway's MCP endpoint by hand: the official
// @modelcontextprotocol/sdk McpServer over its StreamableHTTPServerTransport, stateful (the server
// issues an Mcp-Session-Id) or stateless, answering with JSON or with SSE streams. Each server's
// tools, prompts and resources say which server answered, so a test sees where a call was routed, and
// every request's headers are recorded (a client's credential must never arrive here).
//   tsx scripts/mocks/mcp-server.ts [--name github] [--port 3001] [--stateless] [--json] [--token T]
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";
import { McpServer, ResourceTemplate } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
// zod: the SDK's schema library (its peer dependency), which McpServer's tool and prompt schemas take.
import { z } from "zod";

export interface McpTestServerOptions {
  /** Shown in every answer ("<name>: ..."), and the server's implementation name. */
  name: string;
  port?: number;
  host?: string;
  /** The MCP endpoint's path (default /mcp). */
  path?: string;
  /** No Mcp-Session-Id: every request stands alone (a new McpServer and transport per request). */
  stateless?: boolean;
  /** Answer requests with application/json instead of an SSE stream. */
  json?: boolean;
  /** When set, every request must carry `authorization: Bearer <token>` (else 401). */
  token?: string;
  /** Requests kept in `requests` (default 200). */
  maxRecorded?: number;
}

export interface RecordedMcpRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** The JSON-RPC method of a POST (undefined for GET/DELETE or an unreadable body). */
  rpcMethod?: string;
  body?: unknown;
}

export interface McpTestServer {
  name: string;
  /** The MCP endpoint: http://127.0.0.1:PORT/mcp */
  url: string;
  port: number;
  requests: RecordedMcpRequest[];
  /** The session ids this server issued and has not seen deleted (stateful only). */
  sessions: Set<string>;
  /** Session ids deleted by a client's DELETE. */
  deleted: string[];
  close(): Promise<void>;
}

/** The tools, prompts and resources every test server offers, each answer naming the server. */
function buildServer(name: string): McpServer {
  const server = new McpServer({ name: `sluice-test-${name}`, version: "1.0.0" }, { capabilities: { logging: {} } });
  server.registerTool("echo", { description: `Echoes text back (server ${name})`, inputSchema: { text: z.string() } }, async ({ text }) => ({
    content: [{ type: "text", text: `${name}: ${text}` }],
  }));
  server.registerTool("add", { description: "Adds two numbers", inputSchema: { a: z.number(), b: z.number() } }, async ({ a, b }) => ({
    content: [{ type: "text", text: `${name}: ${a + b}` }],
    structuredContent: { sum: a + b },
    // outputSchema is not declared: structuredContent is extra information here.
  }));
  server.registerTool(
    "count",
    { description: "Counts to n, sending a progress notification for each step", inputSchema: { n: z.number().int().min(1).max(50), delay_ms: z.number().int().min(0).max(1000).optional() } },
    async ({ n, delay_ms }, extra) => {
      const token = extra._meta?.progressToken;
      for (let i = 1; i <= n; i++) {
        if (token !== undefined) await extra.sendNotification({ method: "notifications/progress", params: { progressToken: token, progress: i, total: n, message: `step ${i}` } });
        if (delay_ms) await new Promise((r) => setTimeout(r, delay_ms));
      }
      return { content: [{ type: "text", text: `${name}: counted to ${n}` }] };
    },
  );
  server.registerTool("delete_repo", { description: "A dangerous tool the gateway's access lists can hide", inputSchema: { repo: z.string() } }, async ({ repo }) => ({
    content: [{ type: "text", text: `${name}: deleted ${repo}` }],
  }));
  server.registerTool("fail", { description: "Always answers a tool error" }, async () => ({ isError: true, content: [{ type: "text", text: `${name}: failed on purpose` }] }));
  server.registerPrompt("greeting", { description: "A greeting", argsSchema: { who: z.string() } }, ({ who }) => ({
    messages: [{ role: "user", content: { type: "text", text: `${name} greets ${who}` } }],
  }));
  server.registerResource("readme", `note://${name}/readme`, { description: "A fixed note", mimeType: "text/plain" }, async (uri) => ({
    contents: [{ uri: uri.href, mimeType: "text/plain", text: `${name} readme` }],
  }));
  server.registerResource(
    "note",
    new ResourceTemplate(`note://${name}/notes/{id}`, { list: undefined }),
    { description: "A note by id", mimeType: "text/plain" },
    async (uri, { id }) => ({ contents: [{ uri: uri.href, mimeType: "text/plain", text: `${name} note ${id}` }] }),
  );
  return server;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

export async function startMcpServer(opts: McpTestServerOptions): Promise<McpTestServer> {
  const path = opts.path ?? "/mcp";
  const max = opts.maxRecorded ?? 200;
  const requests: RecordedMcpRequest[] = [];
  const sessions = new Set<string>();
  const deleted: string[] = [];
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const servers: McpServer[] = [];

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const raw = req.method === "POST" ? await readBody(req) : "";
    let body: unknown;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      body = undefined;
    }
    const rpcMethod = body && typeof body === "object" && !Array.isArray(body) ? (body as { method?: string }).method : undefined;
    requests.push({ method: req.method ?? "", path: url.pathname, headers: { ...req.headers }, rpcMethod, body });
    if (requests.length > max) requests.shift();
    if (url.pathname !== path) return void res.writeHead(404).end();
    if (opts.token && req.headers.authorization !== `Bearer ${opts.token}`) {
      res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ error: "unauthorized" }));
      return;
    }
    if (opts.stateless) {
      if (req.method !== "POST") return void res.writeHead(405, { allow: "POST" }).end();
      const server = buildServer(opts.name);
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: !!opts.json });
      res.on("close", () => {
        void transport.close();
        void server.close();
      });
      await server.connect(transport);
      await transport.handleRequest(req, res, body);
      return;
    }
    const sid = req.headers["mcp-session-id"];
    let transport = typeof sid === "string" ? transports.get(sid) : undefined;
    if (!transport) {
      if (typeof sid === "string" || rpcMethod !== "initialize") {
        res.writeHead(typeof sid === "string" ? 404 : 400, { "content-type": "application/json" });
        res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message: typeof sid === "string" ? "Session not found" : "Bad Request: No valid session ID provided" }, id: null }));
        return;
      }
      const server = buildServer(opts.name);
      servers.push(server);
      const t: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        enableJsonResponse: !!opts.json,
        onsessioninitialized: (id) => {
          transports.set(id, t);
          sessions.add(id);
        },
        onsessionclosed: (id) => {
          transports.delete(id);
          sessions.delete(id);
          deleted.push(id);
        },
      });
      await server.connect(t);
      transport = t;
    }
    await transport.handleRequest(req, res, body);
  };

  const http: Server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end(String((e as Error).message));
    });
  });
  await new Promise<void>((r) => http.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", r));
  const port = (http.address() as AddressInfo).port;
  return {
    name: opts.name,
    url: `http://${opts.host ?? "127.0.0.1"}:${port}${path}`,
    port,
    requests,
    sessions,
    deleted,
    async close() {
      for (const t of transports.values()) await t.close().catch(() => {});
      for (const s of servers) await s.close().catch(() => {});
      http.closeAllConnections();
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      name: { type: "string", default: "demo" },
      port: { type: "string", default: "3001" },
      host: { type: "string", default: "127.0.0.1" },
      stateless: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      token: { type: "string" },
    },
  });
  const s = await startMcpServer({ name: values.name!, port: Number(values.port), host: values.host, stateless: values.stateless, json: values.json, token: values.token, maxRecorded: 16 });
  console.error(`MCP test server '${s.name}' at ${s.url} (${values.stateless ? "stateless" : "stateful"}, ${values.json ? "JSON" : "SSE"} answers${values.token ? ", bearer token required" : ""})`);
  console.error("tools: echo, add, count (progress notifications), delete_repo, fail; prompt: greeting; resources: note://<name>/readme, note://<name>/notes/{id}");
  process.on("SIGINT", () => void s.close().then(() => process.exit(0)));
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
