// The documentation a clone holds is complete: every link in README.md and docs/ points at a file (and
// a heading) inside the repository, and nothing links outside it.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

function markdownFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (name === "node_modules" || name === "build" || name.startsWith(".")) return [];
    return statSync(p).isDirectory() ? markdownFiles(p) : name.endsWith(".md") ? [p] : [];
  });
}

/** GitHub's heading anchors: lower case, punctuation other than - and _ dropped, spaces to -. */
function anchors(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split("\n")) {
    const m = /^#{1,6}\s+(.*)$/.exec(line);
    if (m) out.add(m[1].trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-"));
  }
  return out;
}

/** Markdown links outside fenced code blocks: [text](target). */
function links(text: string): string[] {
  const out: string[] = [];
  let fenced = false;
  for (const line of text.split("\n")) {
    if (line.trimStart().startsWith("```")) fenced = !fenced;
    if (fenced) continue;
    for (const m of line.replace(/`[^`]*`/g, "").matchAll(/\]\(([^)\s]+)\)/g)) out.push(m[1]);
  }
  return out;
}

// Every Markdown file of the repository (README, docs/, and the notes beside the code).
const files = markdownFiles(root).filter((f) => !relative(root, f).startsWith("bench-results"));

describe("documentation links", () => {
  for (const file of files) {
    it(`${relative(root, file)} links only to files and headings inside the repository`, () => {
      const text = readFileSync(file, "utf8");
      const broken: string[] = [];
      for (const target of links(text)) {
        if (/^[a-z]+:/i.test(target)) {
          broken.push(`${target}: links outside the repository`);
          continue;
        }
        const [path, anchor] = target.split("#");
        const full = path ? resolve(dirname(file), path) : file;
        // A clone holds only the repository: a link that climbs out of it (../ past the root) points at
        // a file this machine may have and a reader's clone does not.
        if (full !== root && !full.startsWith(root + sep)) {
          broken.push(`${target}: outside the repository`);
          continue;
        }
        if (!existsSync(full)) {
          broken.push(`${target}: no such file`);
          continue;
        }
        if (anchor && full.endsWith(".md") && !anchors(readFileSync(full, "utf8")).has(anchor)) broken.push(`${target}: no such heading`);
      }
      expect(broken).toEqual([]);
    });
  }
});
