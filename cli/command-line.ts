// The command line of a Sluice command, read with node's util.parseArgs: every flag is declared, so an
// unknown one (a typo, a flag of another command) is refused with the usage text instead of ignored.
import { parseArgs } from "node:util";

export type FlagSpec = Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }>;
export interface CommandLine {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/** process.argv after the script. --help / -h prints `usage` and exits 0; a bad command line prints why
 * and the usage on stderr and exits 2. */
export function commandLine(command: string, usage: string, flags: FlagSpec, opts: { positionals?: boolean; args?: string[] } = {}): CommandLine {
  let parsed: CommandLine;
  try {
    parsed = parseArgs({
      args: opts.args ?? process.argv.slice(2),
      options: { ...flags, help: { type: "boolean", short: "h" } },
      allowPositionals: opts.positionals ?? false,
      strict: true,
    }) as CommandLine;
  } catch (e) {
    console.error(`${command}: ${(e as Error).message}\n\n${usage}`);
    process.exit(2);
  }
  if (parsed.values.help) {
    console.log(usage);
    process.exit(0);
  }
  return parsed;
}
