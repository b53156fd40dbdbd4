// `npm run oci`: build/<filter>.wasm -> one OCI image layout per filter in build/oci/<filter>/ (oci-layout,
// index.json, blobs/sha256/...), no Docker engine needed. Push with any OCI client (docs/oci-images.md).
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { commandLine } from "./command-line.js";
import { layoutFiles, wasmImage } from "./oci-image.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

const USAGE = `usage: npm run oci -- [options] [filter ...]
Writes one OCI image layout per filter (the Wasm image format Istio pulls) from build/<filter>.wasm.
Run \`npm run build\` first. Prints each filter's manifest digest, the one the rendered WasmPlugins use.

  filter ...          filters to package (default: every build/*.wasm)
  --build <dir>       where the .wasm files are (default: build)
  --out <dir>         where the layouts go, one directory per filter (default: build/oci)
  -h, --help          this text`;

function main(): number {
  const cli = commandLine("oci", USAGE, { build: { type: "string" }, out: { type: "string" } }, { positionals: true });
  const buildDir = resolve(ROOT, (cli.values.build as string | undefined) ?? "build");
  const outDir = resolve(ROOT, (cli.values.out as string | undefined) ?? join("build", "oci"));
  const names = cli.positionals.length
    ? cli.positionals
    : readdirSync(buildDir).filter((f) => f.endsWith(".wasm")).map((f) => f.slice(0, -".wasm".length)).sort();
  if (!names.length) {
    console.error(`oci: no .wasm in ${buildDir}; run npm run build first`);
    return 1;
  }
  for (const name of names) {
    if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) {
      console.error(`oci: ${name} is not a filter name`);
      return 1;
    }
    let wasm: Buffer;
    try {
      wasm = readFileSync(join(buildDir, `${name}.wasm`));
    } catch {
      console.error(`oci: ${join(buildDir, `${name}.wasm`)} not found; run npm run build first`);
      return 1;
    }
    const img = wasmImage(name, wasm);
    const dir = join(outDir, name);
    rmSync(dir, { recursive: true, force: true }); // no blobs left over from an older build
    for (const [path, bytes] of layoutFiles(img)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), bytes);
    }
    console.log(`${name} ${img.manifest.digest} ${dir}`);
  }
  return 0;
}

process.exitCode = main();
