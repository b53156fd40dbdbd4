// Whole-word keyword search over text read where it lies (ASCII bytes of a request body, or a
// UTF-16 string), case-folded as it goes: shared by ai-router's keywords condition and ai-guard's
// keyword lists. Keywords are given folded (lib/regex.ts foldString).
import { isAsciiWordChar, foldCase } from "./regex";

/** A character that continues a word: ASCII letters, digits, '_' and anything from U+00C0 on. */
@inline export function wordish(c: i32): bool {
  return isAsciiWordChar(c) || c >= 0xc0;
}

/** Code unit i of the units of T (u8: ASCII bytes, u16: UTF-16) at base, folded. */
@inline function unitAt<T>(base: usize, i: i32): i32 {
  return foldCase(<i32>load<T>(base + (<usize>i << alignof<T>())));
}

/**
 * Where the folded keyword first occurs as a whole word or phrase in the tn units at t, from unit
 * `from` on, or -1: where a keyword begins (ends) with a letter or digit, the text must not
 * continue with one before (after) it, so "sql" does not match "nosql" and "c++" still matches
 * "c++ code".
 */
export function keywordAt<T>(t: usize, tn: i32, keyword: string, from: i32): i32 {
  const kn = keyword.length;
  if (kn == 0 || kn > tn) return -1;
  const k = changetype<usize>(keyword);
  const first = <i32>load<u16>(k);
  const checkBefore = wordish(first);
  const checkAfter = wordish(<i32>load<u16>(k + (<usize>(kn - 1) << 1)));
  const last = tn - kn;
  for (let at = from; at <= last; at++) {
    // Find the first character, then compare the rest.
    if (unitAt<T>(t, at) != first) continue;
    let j = 1;
    while (j < kn && unitAt<T>(t, at + j) == <i32>load<u16>(k + (<usize>j << 1))) j++;
    if (j < kn) continue;
    const okBefore = !checkBefore || at == 0 || !wordish(unitAt<T>(t, at - 1));
    const okAfter = !checkAfter || at + kn == tn || !wordish(unitAt<T>(t, at + kn));
    if (okBefore && okAfter) return at;
  }
  return -1;
}
