// String matching for rule conditions: model globs and keywords.
import { isAsciiWordChar } from "../../lib/regex";

/**
 * Glob match: `*` matches any run of characters (also none), `?` exactly one; everything else
 * matches itself, case-sensitively. Linear in practice: on a mismatch only the last `*` is
 * retried (the classic wildcard algorithm, O(len(pattern) x len(text)) at worst).
 */
export function globMatch(pattern: string, text: string): bool {
  const pn = pattern.length;
  const tn = text.length;
  let p = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < tn) {
    if (p < pn) {
      const c = pattern.charCodeAt(p);
      if (c == 0x2a) { // *
        star = p++;
        mark = t;
        continue;
      }
      if (c == 0x3f || c == text.charCodeAt(t)) {
        p++;
        t++;
        continue;
      }
    }
    if (star < 0) return false;
    p = star + 1;
    t = ++mark;
  }
  while (p < pn && pattern.charCodeAt(p) == 0x2a) p++;
  return p == pn;
}

@inline function wordish(c: i32): bool {
  return isAsciiWordChar(c) || c >= 0xc0;
}

/**
 * Whether folded text contains the folded keyword as a whole word or phrase: where the keyword
 * begins (ends) with a letter or digit, the text must not continue with one before (after) it, so
 * "sql" does not match "nosql" and "c++" still matches "c++ code".
 */
export function containsKeyword(text: string, keyword: string): bool {
  const kn = keyword.length;
  const tn = text.length;
  if (kn == 0 || kn > tn) return false;
  const checkBefore = wordish(<i32>keyword.charCodeAt(0));
  const checkAfter = wordish(<i32>keyword.charCodeAt(kn - 1));
  let from = 0;
  while (from <= tn - kn) {
    const at = text.indexOf(keyword, from);
    if (at < 0) return false;
    const okBefore = !checkBefore || at == 0 || !wordish(<i32>text.charCodeAt(at - 1));
    const okAfter = !checkAfter || at + kn == tn || !wordish(<i32>text.charCodeAt(at + kn));
    if (okBefore && okAfter) return true;
    from = at + 1;
  }
  return false;
}
