// The MCP test servers (scripts/mocks/mcp-server.ts) against the official SDK client, straight (no
// gateway): stateful and stateless, JSON and SSE answers, progress notifications, prompts, resources.
import { afterAll, describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startMcpServer, type McpTestServer } from "../scripts/mocks/mcp-server.js";

const started: McpTestServer[] = [];
afterAll(async () => {
  for (const s of started) await s.close();
});

async function connect(url: string, headers: Record<string, string> = {}) {
  const client = new Client({ name: "test", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  await client.connect(transport);
  return { client, transport };
}

describe("MCP test servers", () => {
  for (const mode of [{ stateless: false, json: false }, { stateless: false, json: true }, { stateless: true, json: false }, { stateless: true, json: true }]) {
    it(`${mode.stateless ? "stateless" : "stateful"}, ${mode.json ? "JSON" : "SSE"}: tools, progress, prompts, resources`, async () => {
      const s = await startMcpServer({ name: "alpha", ...mode });
      started.push(s);
      const { client, transport } = await connect(s.url, { "x-probe": "1" });
      expect(transport.sessionId === undefined).toBe(mode.stateless);
      const tools = await client.listTools();
      expect(tools.tools.map((t) => t.name).sort()).toEqual(["add", "count", "delete_repo", "echo", "fail"]);
      expect(await client.callTool({ name: "echo", arguments: { text: "hi" } })).toMatchObject({ content: [{ type: "text", text: "alpha: hi" }] });
      const progress: number[] = [];
      const r = await client.callTool({ name: "count", arguments: { n: 3 } }, undefined, { onprogress: (p) => progress.push(p.progress) });
      expect(r.content).toEqual([{ type: "text", text: "alpha: counted to 3" }]);
      // A JSON answer cannot carry notifications before the result.
      expect(progress).toEqual(mode.json ? [] : [1, 2, 3]);
      expect((await client.getPrompt({ name: "greeting", arguments: { who: "bob" } })).messages[0].content).toEqual({ type: "text", text: "alpha greets bob" });
      expect((await client.listResources()).resources.map((x) => x.uri)).toEqual(["note://alpha/readme"]);
      expect((await client.listResourceTemplates()).resourceTemplates.map((x) => x.uriTemplate)).toEqual(["note://alpha/notes/{id}"]);
      expect((await client.readResource({ uri: "note://alpha/notes/7" })).contents).toEqual([{ uri: "note://alpha/notes/7", mimeType: "text/plain", text: "alpha note 7" }]);
      expect(s.requests.some((q) => q.headers["x-probe"] === "1")).toBe(true);
      if (!mode.stateless) {
        const sid = transport.sessionId!;
        expect(s.sessions.has(sid)).toBe(true);
        await transport.terminateSession();
        expect(s.deleted).toContain(sid);
      }
      await client.close();
    });
  }

  it("a token, when set, is required", async () => {
    const s = await startMcpServer({ name: "locked", token: "t0k" });
    started.push(s);
    await expect(connect(s.url)).rejects.toThrow();
    const { client } = await connect(s.url, { authorization: "Bearer t0k" });
    expect((await client.callTool({ name: "add", arguments: { a: 2, b: 3 } })).structuredContent).toEqual({ sum: 5 });
    await client.close();
  });
});
