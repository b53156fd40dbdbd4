// The host's files import one way (docs/architecture.md, "The host and the local gateway"): a
// circle, even of `import type`, makes a reader hold several files at once, and the host belongs to
// itself: nothing in it comes from the product's commands (cli/) or the developer tools (scripts/).
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const hostDir = join(root, "host");

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : /\.(ts|mjs)$/.test(e.name) ? [join(dir, e.name)] : [],
  );
}

/** Relative imports and re-exports of one file (static, dynamic and type-only), resolved to paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)) {
    out.push(resolve(dirname(file), m[1].replace(/\.js$/, ".ts")));
  }
  return out;
}

/** Every circle of the import graph, as a list of files (Tarjan's strongly connected components). */
function circles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const part: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        part.push(relative(root, w));
      } while (w !== v);
      if (part.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(part.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return found;
}

describe("host/ imports", () => {
  const files = sources(hostDir);
  const graph = new Map(files.map((f) => [f, importsOf(f)]));

  it("reads the imports it checks (the test would pass on nothing otherwise)", () => {
    expect(files.length).toBeGreaterThan(20);
    expect(graph.get(join(hostDir, "host.ts"))).toContain(join(hostDir, "stream.ts"));
    expect(graph.get(join(hostDir, "context.ts"))).toContain(join(hostDir, "filter-callbacks.ts"));
  });

  it("form no circle, type-only imports included", () => {
    expect(circles(graph)).toEqual([]);
  });

  it("finds a circle when there is one", () => {
    const a = join(hostDir, "a.ts");
    const b = join(hostDir, "b.ts");
    expect(circles(new Map([[a, [b]], [b, [a]]]))).toEqual([["host/a.ts", "host/b.ts"]]);
  });

  it("take nothing from cli/ or scripts/", () => {
    const outside = [...graph].flatMap(([f, deps]) =>
      deps.filter((d) => /^(cli|scripts)\//.test(relative(root, d))).map((d) => `${relative(root, f)} -> ${relative(root, d)}`),
    );
    expect(outside).toEqual([]);
  });
});
