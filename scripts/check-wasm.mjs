// `npm run check-wasm [-- file.wasm ...]`: would Envoy load these modules? The same check the build
// runs on every module it writes (host/envoy-abi.mjs checkModule): the ABI marker and an
// allocator exported, nothing imported but Envoy's proxy-wasm host functions and its WASI functions.
// Without arguments it checks every build/*.wasm. Exits 1 when a module fails.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { checkModule } from "../host/envoy-abi.mjs";

const usage = `usage: npm run check-wasm [-- <file.wasm> ...]
  Checks that each module would load in Envoy (default: every build/*.wasm).
  --help  this text`;
let parsed;
try {
  parsed = parseArgs({ options: { help: { type: "boolean", short: "h" } }, allowPositionals: true, strict: true });
} catch (e) {
  console.error(`${e.message}\n${usage}`);
  process.exit(2);
}
if (parsed.values.help) {
  console.log(usage);
  process.exit(0);
}
const build = join(dirname(fileURLToPath(import.meta.url)), "..", "build");
const files = parsed.positionals.length ? parsed.positionals : readdirSync(build).filter((f) => f.endsWith(".wasm")).map((f) => join(build, f));
if (!files.length) {
  console.error("no modules to check: run `npm run build` first");
  process.exit(1);
}
let failed = 0;
for (const f of files) {
  const problems = checkModule(readFileSync(f));
  if (problems.length) failed++;
  console.log(problems.length ? `${f}: FAILS\n${problems.map((p) => `  - ${p}`).join("\n")}` : `${f}: ok`);
}
process.exit(failed ? 1 : 0);
