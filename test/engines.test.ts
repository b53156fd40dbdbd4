// package.json `engines` is honest: every package npm installs (package-lock.json records each one's
// own engines.node) runs on the lowest Node of each major the range allows, and the range's floor is
// the one some package needs (vite 7: ^20.19.0 || >=22.12.0), so npm warns about nothing on a Node
// the range accepts.
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";

type V = [number, number, number];

function parse(v: string): V {
  const [a, b, c] = v.replace(/^v/, "").split(".").map((p) => (/^\d+$/.test(p) ? Number(p) : 0));
  return [a ?? 0, b ?? 0, c ?? 0];
}

function cmp(a: V, b: V): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/** One comparator of an npm range (>=, >, <=, <, =, ^, ~, or a version with x / * parts). */
function comparator(c: string, v: V): boolean {
  const m = /^(>=|<=|>|<|=|\^|~)?\s*v?([0-9x*]+)(?:\.([0-9x*]+))?(?:\.([0-9x*]+))?$/.exec(c.trim());
  if (!m) throw new Error(`range part not understood: ${c}`);
  const [, op = "", ...parts] = m;
  const given = parts.filter((p) => p !== undefined && p !== "x" && p !== "*").length;
  const base = parse(parts.map((p) => (p === undefined || p === "x" || p === "*" ? "0" : p)).join("."));
  if (op === ">=") return cmp(v, base) >= 0;
  if (op === ">") return cmp(v, base) > 0;
  if (op === "<=") return cmp(v, base) <= 0;
  if (op === "<") return cmp(v, base) < 0;
  if (op === "^") return cmp(v, base) >= 0 && v[0] === base[0] && (base[0] !== 0 || v[1] === base[1]);
  if (op === "~") return cmp(v, base) >= 0 && v[0] === base[0] && (given < 2 || v[1] === base[1]);
  // A bare or x-range version: the parts given must match.
  return v.slice(0, given).every((n, i) => n === base[i]);
}

function satisfies(version: string, range: string): boolean {
  const v = parse(version);
  return range.split("||").some((alt) => {
    const parts = alt.trim().replace(/(>=|<=|>|<|=)\s+/g, "$1").split(/\s+/).filter(Boolean);
    return parts.length === 0 || parts.every((p) => p === "*" || comparator(p, v));
  });
}

const pkg = JSON.parse(readFileSync("package.json", "utf8"));
const lock = JSON.parse(readFileSync("package-lock.json", "utf8"));
const range: string = pkg.engines.node;
const needs = Object.entries(lock.packages as Record<string, { engines?: { node?: string } }>)
  .filter(([path, p]) => path && typeof p.engines?.node === "string")
  .map(([path, p]) => ({ name: path.replace(/^.*node_modules\//, ""), node: p.engines!.node! }));

/** The lowest version of each major the range allows (the range is a list of ^X.Y.Z or >=X.Y.Z). */
const floors = range.split("||").map((alt) => alt.trim().replace(/^(\^|>=)\s*/, ""));

describe("package.json engines", () => {
  it("the range checker reads npm ranges as npm does", () => {
    expect(satisfies("20.19.0", "^20.19.0 || >=22.12.0")).toBe(true);
    expect(satisfies("20.18.3", "^20.19.0 || >=22.12.0")).toBe(false);
    expect(satisfies("21.7.0", "^20.19.0 || >=22.12.0")).toBe(false);
    expect(satisfies("20.0.0", ">= 16")).toBe(true);
    expect(satisfies("20.0.0", "10.* || >= 12.*")).toBe(true);
    expect(satisfies("20.0.0", ">=22")).toBe(false);
    expect(satisfies("13.8.0", "^10 || ^12 || ^13.7 || ^14 || >=15.0.1")).toBe(true);
  });

  it("every installed package accepts the lowest Node of each major the range allows", () => {
    expect(needs.length).toBeGreaterThan(20);
    for (const floor of floors) {
      expect(satisfies(floor, range), `${floor} is in ${range}`).toBe(true);
      expect(needs.filter((n) => !satisfies(floor, n.node)).map((n) => `${n.name} wants ${n.node}`), `on Node ${floor}`).toEqual([]);
    }
  });

  it("the floor is no lower than a package needs: one below it is refused by some package", () => {
    for (const floor of floors) {
      const [a, b] = parse(floor);
      const below = `${a}.${b - 1}.99`;
      expect(needs.some((n) => !satisfies(below, n.node)), `Node ${below}`).toBe(true);
    }
  });

  it("the Node running the tests is one the range accepts", () => {
    expect(satisfies(process.versions.node, range), `${process.versions.node} in ${range}`).toBe(true);
  });
});
