// Serve every mock provider: `node --import tsx scripts/mocks/cli.ts [--port 18080] [--host 127.0.0.1] [--ports] [--api-key KEY]`.
// Default: one port, each provider under /<kind> (e.g. http://127.0.0.1:18080/anthropic/v1/messages), control API under /__mock/<kind>/.
// --ports: one port per provider, counting up from --port, each at its provider's own paths.
import { MOCK_KINDS, type MockOptions } from "./common.js";
import { parseArgs } from "node:util";
import { startMock, startMockRouter, type MockServer } from "./server.js";

const USAGE = `usage: node --import tsx scripts/mocks/cli.ts [options]
Serves every mock provider (each in its provider's wire format) for Envoy or tests.

  --port <n>          the port, or with --ports the first port (default: 18080; 0 = any free port)
  --host <address>    the address to listen on (default: 127.0.0.1)
  --ports             one port per provider, counting up from --port, each at its provider's own paths
                      (default: one port, each provider under /<kind>, control API under /__mock/<kind>/)
  --api-key <key>     the key the mocks require (default: any key is accepted)
  -h, --help          this text`;

async function main(): Promise<void> {
  // parseArgs here, not cli/command-line.ts: docker compose mounts only scripts/mocks/.
  let cli;
  try {
    cli = parseArgs({
      options: { port: { type: "string" }, host: { type: "string" }, ports: { type: "boolean" }, "api-key": { type: "string" }, help: { type: "boolean", short: "h" } },
      strict: true,
    });
  } catch (e) {
    console.error(`mocks: ${(e as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (cli.values.help) {
    console.log(USAGE);
    return;
  }
  const arg = (name: "port" | "host" | "api-key") => cli.values[name];
  const port = Number(arg("port") ?? 18080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`mocks: --port ${arg("port")} is not a port number\n\n${USAGE}`);
    process.exit(2);
  }
  const host = arg("host") || "127.0.0.1";
  const key = arg("api-key");
  const all: MockOptions = { host, ...(key ? { apiKey: key } : {}) };
  let close: () => Promise<void>;
  if (cli.values.ports) {
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
