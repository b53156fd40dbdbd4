// Which tools a consumer may see and call: the first access entry naming the consumer or one of its
// groups, else the default; allow and deny are globs where * matches any run of characters, and a
// deny wins over an allow. Patterns are split at configure, so a check is a few substring tests.
import { Access, Settings } from "./config";
import { getFilterState } from "../../lib/sdk";
import { CONSUMER, GROUPS } from "../../lib/keys";

export class Glob {
  /** The literal pieces between the stars; `anchoredStart`/`anchoredEnd`: no star at that end. */
  parts: Array<string> = [];
  anchoredStart: bool = true;
  anchoredEnd: bool = true;

  matches(s: string): bool {
    const parts = this.parts;
    const n = parts.length;
    if (n == 1 && this.anchoredStart && this.anchoredEnd) return s == parts[0];
    let at = 0;
    for (let i = 0; i < n; i++) {
      const p = parts[i];
      if (i == 0 && this.anchoredStart) {
        if (!s.startsWith(p)) return false;
        at = p.length;
        continue;
      }
      if (i == n - 1 && this.anchoredEnd) return s.length - p.length >= at && s.endsWith(p);
      const k = s.indexOf(p, at);
      if (k < 0) return false;
      at = k + p.length;
    }
    return true;
  }
}

export function compileGlobs(patterns: Array<string>): Array<Glob> {
  const out = new Array<Glob>();
  for (let i = 0; i < patterns.length; i++) {
    const p = patterns[i];
    const g = new Glob();
    g.anchoredStart = !p.startsWith("*");
    g.anchoredEnd = !p.endsWith("*");
    const pieces = p.split("*");
    for (let j = 0; j < pieces.length; j++) if (pieces[j].length) g.parts.push(pieces[j]);
    if (g.parts.length == 0) {
      // "*" (or "**"): everything.
      g.anchoredStart = false;
      g.anchoredEnd = false;
    }
    out.push(g);
  }
  return out;
}

function anyMatch(globs: Array<Glob>, name: string): bool {
  for (let i = 0; i < globs.length; i++) if (globs[i].matches(name)) return true;
  return false;
}

/** The tool (as the client names it, server__tool) is visible and callable under this access. */
export function toolAllowed(a: Access, name: string): bool {
  return anyMatch(a.allow, name) && !anyMatch(a.deny, name);
}

/** The access entry of the request's consumer (filter state from key-auth / identity). */
export function accessFor(s: Settings): Access {
  if (s.access.length == 0) return s.defaultAccess;
  const c = getFilterState(CONSUMER);
  const consumer = c !== null ? c as string : "";
  const g = getFilterState(GROUPS);
  const groups = g !== null && (g as string).length ? (g as string).split(",") : new Array<string>();
  for (let i = 0; i < s.access.length; i++) {
    const a = s.access[i];
    if (consumer.length && a.consumers.includes(consumer)) return a;
    for (let j = 0; j < groups.length; j++) if (a.groups.includes(groups[j])) return a;
  }
  return s.defaultAccess;
}
