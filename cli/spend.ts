// `npm run spend`: spend per virtual key, team, consumer, model and provider from a running gateway's metrics endpoint
// (Envoy's admin port, or npm start's), as a table (cli/spend-report.ts). With --window, two
// readings that far apart: the spend within it; without, everything since the process started.
import { commandLine } from "./command-line.js";
import { GROUPS, spend, table, type Group } from "./spend-report.js";

const USAGE = `usage: npm run spend -- [options]
Spend per virtual key, team, consumer, model and provider, from the gateway's metrics (ai-proxy's cost and token counters).

  --admin <url>       the metrics endpoint's base URL (default: http://127.0.0.1:9901, Envoy's admin port)
  --by <list>         what to group by, comma-separated: key, team, consumer, model, provider
                      (default: consumer,model); "-" is a request without that label
  --window <seconds>  read twice this many seconds apart and show the spend in between (default: since start)
  --currency <code>   the prices' currency, for the heading (default: USD)
  -h, --help          this text`;

async function reading(admin: string): Promise<string> {
  const r = await fetch(new URL("/stats/prometheus", admin));
  if (!r.ok) throw new Error(`${admin}/stats/prometheus answered ${r.status}`);
  return r.text();
}

async function main(): Promise<number> {
  const cli = commandLine("spend", USAGE, { admin: { type: "string" }, by: { type: "string" }, window: { type: "string" }, currency: { type: "string" } });
  const admin = (cli.values.admin as string | undefined) ?? "http://127.0.0.1:9901";
  const by = ((cli.values.by as string | undefined) ?? "consumer,model").split(",").map((s) => s.trim()).filter(Boolean);
  const bad = by.find((g) => !(GROUPS as readonly string[]).includes(g));
  if (bad !== undefined || by.length === 0) {
    console.error(`spend: --by takes ${GROUPS.join(", ")} (got ${JSON.stringify(bad ?? "")})\n\n${USAGE}`);
    return 2;
  }
  const windowS = cli.values.window === undefined ? 0 : Number(cli.values.window);
  if (!Number.isFinite(windowS) || windowS < 0 || windowS > 86400) {
    console.error(`spend: --window takes seconds, 0 to 86400\n\n${USAGE}`);
    return 2;
  }
  try {
    const first = await reading(admin);
    if (windowS === 0) {
      console.log(table(spend(first, by as Group[]), by as Group[], (cli.values.currency as string | undefined) ?? "USD"));
      return 0;
    }
    await new Promise((r) => setTimeout(r, windowS * 1000));
    const second = await reading(admin);
    console.log(table(spend(second, by as Group[], first), by as Group[], (cli.values.currency as string | undefined) ?? "USD"));
    return 0;
  } catch (e) {
    console.error(`spend: ${(e as Error).message}`);
    return 1;
  }
}

main().then((code) => process.exit(code));
