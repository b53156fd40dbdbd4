// String matching for rule conditions: model globs and keywords.
import { foldCase } from "../../lib/regex";
import { keywordAt, wordish } from "../../lib/keywords";
import { Text, TextUnits } from "./text";

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

/**
 * Whether the text, case-folded, contains one of the folded keywords as a whole word or phrase:
 * where a keyword begins (ends) with a letter or digit, the text must not continue with one before
 * (after) it, so "sql" does not match "nosql" and "c++" still matches "c++ code". The text is read
 * where it lies (text.ts), folding as it goes: no copy of it is made. Parts are searched one by
 * one: the separators between them are line breaks, word boundaries a keyword without a line break
 * cannot span, so this is the answer over the joined text.
 */
export function textContainsKeyword(text: Text, keywords: Array<string>): bool {
  for (let k = 0; k < keywords.length; k++) {
    if (keywords[k].indexOf("\n") >= 0 && keywordsInUnits(new TextUnits(text), 0, text.length, [keywords[k]])) return true;
  }
  let units: TextUnits | null = null;
  let at = 0;
  for (let i = 0; i < text.count; i++) {
    if (i > 0) at += text.sep.length;
    const v = text.part(i);
    const n = text.partLength(i);
    if (v.src === null) {
      const s = v.s;
      for (let k = 0; k < keywords.length; k++) if (keywordIn<u16>(changetype<usize>(s), s.length, keywords[k])) return true;
    } else if (!v.rawComplex) {
      for (let k = 0; k < keywords.length; k++) if (keywordIn<u8>(v.raw, v.rawLen, keywords[k])) return true;
    } else {
      // Decoded as it is read: one pass for all the keywords.
      if (units === null) units = new TextUnits(text);
      if (keywordsInUnits(units as TextUnits, at, at + n, keywords)) return true;
    }
    at += n;
  }
  return false;
}

/** The keyword search over tn units at t (random access: bytes or a string). */
@inline function keywordIn<T>(t: usize, tn: i32, keyword: string): bool {
  return keywordAt<T>(t, tn, keyword, 0) >= 0;
}

const CHUNK: i32 = 2048;

/**
 * The keyword search over offsets [from, to) of a text read forwards only (a part decoded as it is
 * read): the text is folded into a small buffer a chunk at a time, keeping the last units of the
 * previous chunk, and each position is judged once the unit after the longest keyword is there.
 */
function keywordsInUnits(src: TextUnits, from: i32, to: i32, keywords: Array<string>): bool {
  let longest = 0;
  for (let k = 0; k < keywords.length; k++) if (keywords[k].length > longest) longest = keywords[k].length;
  if (longest == 0 || longest > to - from) return false;
  const buf = new StaticArray<u16>(longest + 1 + CHUNK);
  const b = changetype<usize>(buf);
  let bufStart = from; // text offset of buf[0]
  let len = 0;
  let pos = from; // the next offset to read
  let judged = from; // candidates starting before it are judged
  while (true) {
    const n = to - pos < CHUNK ? to - pos : CHUNK;
    for (let k = 0; k < n; k++) store<u16>(b + (<usize>(len + k) << 1), <u16>foldCase(src.unit(pos + k)));
    len += n;
    pos += n;
    const atEnd = pos == to;
    // Candidates whose following unit is read (or that end the text).
    const limit = atEnd ? to - 1 : pos - longest - 1;
    for (let q = 0; q < keywords.length; q++) {
      const keyword = unchecked(keywords[q]);
      const kn = keyword.length;
      const k = changetype<usize>(keyword);
      const first = <i32>load<u16>(k);
      const checkBefore = wordish(first);
      const checkAfter = wordish(<i32>load<u16>(k + (<usize>(kn - 1) << 1)));
      const last = limit < to - kn ? limit : to - kn;
      for (let at = judged; at <= last; at++) {
        const o = at - bufStart;
        if (<i32>load<u16>(b + (<usize>o << 1)) != first) continue;
        if (kn > 1 && memory.compare(b + (<usize>(o + 1) << 1), k + 2, <usize>(kn - 1) << 1) != 0) continue;
        const okBefore = !checkBefore || at == from || !wordish(<i32>load<u16>(b + (<usize>(o - 1) << 1)));
        const okAfter = !checkAfter || at + kn == to || !wordish(<i32>load<u16>(b + (<usize>(o + kn) << 1)));
        if (okBefore && okAfter) return true;
      }
    }
    if (atEnd) return false;
    if (limit >= judged) judged = limit + 1;
    // Keep the unit before the next candidate and everything after it.
    const keepFrom = judged - 1 > bufStart ? judged - 1 : bufStart;
    const drop = keepFrom - bufStart;
    if (drop > 0) {
      memory.copy(b, b + (<usize>drop << 1), <usize>(len - drop) << 1);
      len -= drop;
      bufStart = keepFrom;
    }
  }
}
