#!/usr/bin/env node
// Compiles every folder under assembly/filters/ to build/<name>.wasm (and every folder under
// test/filters/ to build/test/<name>.wasm), with the runtime of scripts/asc-runtime.mjs (the
// minimal runtime with small-block lists), then checks that each module would load in Envoy:
// the ABI marker, malloc, and no import outside what Envoy provides for proxy-wasm 0.2.1.
//   node scripts/build.mjs              build everything
//   node scripts/build.mjs --if-needed  rebuild only modules older than their sources
//   node scripts/build.mjs key-auth     build the named filters
//   node scripts/build.mjs --src D --out O   build D/<name>/index.ts to O/<name>.wasm instead
import { readdirSync, statSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join, dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { checkModule } from "../host/envoy-abi.mjs";
import { useSmallBlocks } from "./asc-runtime.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const USAGE = `usage: npm run build -- [options] [filter ...]
Compiles assembly/filters/<name>/ to build/<name>.wasm and test/filters/<name>/ to build/test/<name>.wasm,
then refuses any module Envoy would not load (ABI marker, malloc, imports Envoy provides).

  filter ...          build only these (default: every filter and test module)
  --if-needed         rebuild only modules older than their sources
  --src <dir>         build <dir>/<name>/index.ts instead of the two folders above
  --out <dir>         with --src: where the .wasm files go (default: build)
  -h, --help          this text`;
let cli;
try {
  cli = parseArgs({
    options: { "if-needed": { type: "boolean" }, src: { type: "string" }, out: { type: "string" }, help: { type: "boolean", short: "h" } },
    allowPositionals: true,
    strict: true,
  });
} catch (e) {
  console.error(`build: ${e.message}\n\n${USAGE}`);
  process.exit(2);
}
if (cli.values.help) {
  console.log(USAGE);
  process.exit(0);
}
const ifNeeded = cli.values["if-needed"] === true;
const srcOverride = cli.values.src ?? null;
const outOverride = cli.values.out ?? null;
const only = cli.positionals;

function newestMtime(dir) {
  let newest = 0;
  if (!existsSync(dir)) return 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

function targets() {
  const out = [];
  const pairs = srcOverride ? [[srcOverride, outOverride ?? "build"]] : [["assembly/filters", "build"], ["test/filters", "build/test"]];
  for (const [srcDir, outDir] of pairs) {
    const abs = resolve(root, srcDir);
    if (!existsSync(abs)) continue;
    for (const name of readdirSync(abs).sort()) {
      const entry = join(abs, name, "index.ts");
      if (!existsSync(entry)) continue;
      if (only.length && !only.includes(name)) continue;
      out.push({ name, entry, srcDir: join(abs, name), out: resolve(root, outDir, `${name}.wasm`) });
    }
  }
  return out;
}

// Everything a filter can depend on: shared AssemblyScript code, the patched SDK, the config.
const sharedInputs = Math.max(
  newestMtime(join(root, "assembly/lib")),
  newestMtime(join(root, "assembly/providers")),
  newestMtime(join(root, "patches")),
  newestMtime(join(root, "assembly/runtime")),
  statSync(join(root, "scripts/asc-runtime.mjs")).mtimeMs,
  statSync(join(root, "asconfig.json")).mtimeMs,
  existsSync(join(root, "node_modules/@gcoredev/proxy-wasm-sdk-as/assembly"))
    ? newestMtime(join(root, "node_modules/@gcoredev/proxy-wasm-sdk-as/assembly"))
    : 0,
);

const ascModule = await import("assemblyscript/asc");
useSmallBlocks(ascModule);
const asc = ascModule.default;
// With `converge` (asconfig.json), asc optimizes until a round no longer shrinks the module and says
// "Last converge was suboptimal." when that last round grew it (asc.js, the converge loop in main):
// a note about the optimizer, not about the module, printed on every build. Not passed on, so a build's
// output is only what needs reading.
const withoutConvergeNote = (stream) => ({
  write(chunk, ...rest) {
    if (/^Last converge was suboptimal\.\s*$/.test(String(chunk))) return true;
    return stream.write(chunk, ...rest);
  },
});
let failed = false;
for (const t of targets()) {
  if (ifNeeded && existsSync(t.out)) {
    const built = statSync(t.out).mtimeMs;
    if (built >= Math.max(sharedInputs, newestMtime(t.srcDir))) continue;
  }
  mkdirSync(dirname(t.out), { recursive: true });
  const started = Date.now();
  const { error, stderr } = await asc.main(
    [relative(root, t.entry), "--config", "asconfig.json", "--target", "release", "-o", relative(root, t.out)],
    { stdout: withoutConvergeNote(process.stdout), stderr: withoutConvergeNote(process.stderr) },
  );
  if (error) {
    console.error(`build: ${t.name}: ${error.message}`);
    failed = true;
    continue;
  }
  const problems = checkModule(readFileSync(t.out));
  if (problems.length) {
    console.error(`build: ${relative(root, t.out)} would not load in Envoy:\n  - ${problems.join("\n  - ")}`);
    failed = true;
    continue;
  }
  const size = statSync(t.out).size;
  console.log(`build: ${relative(root, t.out)} ${(size / 1024).toFixed(1)} KiB (${Date.now() - started} ms)`);
}
process.exit(failed ? 1 : 0);
