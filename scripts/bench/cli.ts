// What every benchmark script starts with: the repository's root (each works from there: the
// paths in its options are relative to it) and its `--name value` options. Each option is declared
// where it is read (opt, flag); checkArgs then refuses, with the usage text, any flag the script did
// not declare (node's util.parseArgs), and prints that text for --help.
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The command-line arguments after the script's name. */
export const argv = process.argv.slice(2);

const declared = new Map<string, { type: "string" | "boolean"; def?: string; doc: string }>();

/** The value after `name` on the command line, or `def`. */
export function opt(name: string, def: string, doc = ""): string {
  declared.set(name, { type: "string", def, doc });
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : def;
}

/** Whether the flag `name` (no value) is on the command line. */
export function flag(name: string, doc: string): boolean {
  declared.set(name, { type: "boolean", doc });
  return argv.includes(name);
}

/** After the script's opt/flag calls, when it runs as the command (`moduleUrl` = its import.meta.url):
 * --help prints the usage and exits 0; a flag not declared, or one without its value, exits 2. */
export function checkArgs(moduleUrl: string, what: string): void {
  if (!process.argv[1] || fileURLToPath(moduleUrl) !== resolve(process.argv[1])) return;
  const script = fileURLToPath(moduleUrl).slice(ROOT.length + 1);
  const lines = [`usage: node --import tsx ${script} [options]`, what, ""];
  for (const [name, d] of declared) lines.push(`  ${(d.type === "string" ? `${name} <v>` : name).padEnd(24)}${d.doc}${d.def !== undefined && d.def !== "" ? ` (default: ${d.def})` : ""}`);
  lines.push(`  ${"-h, --help".padEnd(24)}this text`);
  const usage = lines.join("\n");
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = { help: { type: "boolean", short: "h" } };
  for (const [name, d] of declared) options[name.replace(/^--/, "")] = { type: d.type };
  try {
    if (parseArgs({ args: argv, options, strict: true }).values.help) {
      console.log(usage);
      process.exit(0);
    }
  } catch (e) {
    console.error(`${script}: ${(e as Error).message}\n\n${usage}`);
    process.exit(2);
  }
}
