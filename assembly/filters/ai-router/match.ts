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
  const t = changetype<usize>(text);
  const k = changetype<usize>(keyword);
  const first = load<u16>(k);
  const checkBefore = wordish(<i32>first);
  const checkAfter = wordish(<i32>load<u16>(k + (<usize>(kn - 1) << 1)));
  const last = tn - kn;
  for (let at = 0; at <= last; at++) {
    // Find the first character, then compare the rest.
    if (load<u16>(t + (<usize>at << 1)) != first) continue;
    if (kn > 1 && memory.compare(t + (<usize>(at + 1) << 1), k + 2, <usize>(kn - 1) << 1) != 0) continue;
    const okBefore = !checkBefore || at == 0 || !wordish(<i32>load<u16>(t + (<usize>(at - 1) << 1)));
    const okAfter = !checkAfter || at + kn == tn || !wordish(<i32>load<u16>(t + (<usize>(at + kn) << 1)));
    if (okBefore && okAfter) return true;
  }
  return false;
}
