// Serve every mock provider: `node --import tsx scripts/mocks/cli.ts [--port 18080] [--host 127.0.0.1] [--ports] [--api-key KEY]`.
// Default: one port, each provider under /<kind> (e.g. http://127.0.0.1:18080/anthropic/v1/messages), control API under /__mock/<kind>/.
// --ports: one port per provider, counting up from --port, each at its provider's own paths.
import { MOCK_KINDS, type MockOptions } from "./common.js";
import { startMock, startMockRouter, type MockServer } from "./server.js";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = process.argv[i + 1];
  return v === undefined || v.startsWith("--") ? "" : v;
}

async function main(): Promise<void> {
  if (arg("help") !== undefined) {
    console.log("usage: node --import tsx scripts/mocks/cli.ts [--port 18080] [--host 127.0.0.1] [--ports] [--api-key KEY]");
    return;
  }
  const port = Number(arg("port") ?? 18080);
  const host = arg("host") || "127.0.0.1";
  const key = arg("api-key");
  const all: MockOptions = { host, ...(key ? { apiKey: key } : {}) };
  let close: () => Promise<void>;
  if (arg("ports") !== undefined) {
    const servers: MockServer[] = [];
    for (const [i, kind] of MOCK_KINDS.entries()) servers.push(await startMock(kind, { ...all, port: port === 0 ? 0 : port + i }));
    for (const s of servers) console.log(`${s.kind.padEnd(18)} ${s.url}`);
    close = async () => void (await Promise.all(servers.map((s) => s.close())));
  } else {
    const r = await startMockRouter({ all, port, host });
    for (const kind of MOCK_KINDS) console.log(`${kind.padEnd(18)} ${r.mocks[kind].url}`);
    console.log(`${"control".padEnd(18)} ${r.url}/__mock/<kind>/{requests,script,switches,reset}`);
    close = r.close;
  }
  const stop = () => {
    close().then(() => process.exit(0));
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
