// The runtime the filters are built with: AssemblyScript's minimal runtime (asconfig.json), with its
// object allocation and its sweep going through the small-block lists of
// assembly/runtime/small-blocks.ts instead of straight to TLSF, and TLSF taking the listed blocks
// back before it grows memory.
//
// The compiler reads its standard library from the table asc exports (libraryFiles), not from
// disk, and it gives a runtime named by path the incremental collector's semantics; so the file
// is added to that table and four lines of the runtime's source are edited there, before a build.
// Each edit checks that its text is where it was written for (assemblyscript 0.28): a release that
// moves it fails the build instead of running without.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

// [library file, text, replacement]: each text must occur exactly once.
const EDITS = [
  // The minimal runtime's __new: every managed object's block.
  ["rt/tcms", "__alloc(OBJECT_OVERHEAD + size)", "__alloc_small(OBJECT_OVERHEAD + size)"],
  // Its sweep in __collect: every unreachable object's block.
  ["rt/tcms", "__free(changetype<usize>(iter) + BLOCK_OVERHEAD)", "__free_small(changetype<usize>(iter) + BLOCK_OVERHEAD)"],
  // __collect, before it marks: the lists start each cycle empty, and on or off by how full the
  // heap got (total: the bytes of every object, the garbage included, at their peak).
  ["rt/tcms", "  // Mark roots (add to toSpace)\n", "  __small_blocks_cycle(total);\n  // Mark roots (add to toSpace)\n"],
  // TLSF's allocateBlock, when no free block fits: the listed blocks back first, then grow.
  [
    "rt/tlsf",
    "let block = searchBlock(root, payloadSize);\n  if (!block) {",
    "let block = searchBlock(root, payloadSize);\n  if (!block && __free_small_all()) block = searchBlock(root, payloadSize);\n  if (!block) {",
  ],
];

/** Puts the small-block lists into the library table of `ascModule` (import("assemblyscript/asc")). Idempotent. */
export function useSmallBlocks(ascModule) {
  const lib = ascModule.libraryFiles;
  if (lib["rt/small-blocks"] !== undefined) return;
  const edited = {};
  for (const [file, from, to] of EDITS) {
    const text = edited[file] ?? lib[file];
    if (typeof text !== "string" || text.split(from).length !== 2) {
      throw new Error(`asc-runtime: ${file} has not exactly one ${JSON.stringify(from)}; this assemblyscript release needs scripts/asc-runtime.mjs looked at`);
    }
    edited[file] = text.replace(from, to);
  }
  lib["rt/small-blocks"] = readFileSync(join(root, "assembly/runtime/small-blocks.ts"), "utf8");
  for (const [file, text] of Object.entries(edited)) lib[file] = file === "rt/tcms" ? `import "./small-blocks";\n${text}` : text;
}
