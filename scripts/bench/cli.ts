// What every benchmark script starts with: the repository's root (each works from there: the
// paths in its options are relative to it) and its `--name value` options.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The command-line arguments after the script's name. */
export const argv = process.argv.slice(2);

/** The value after `name` on the command line, or `def`. */
export function opt(name: string, def: string): string {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : def;
}
