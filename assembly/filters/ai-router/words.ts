// Words of folded text, for the classifier's cue matching: what a word is, where it ends, and
// comparisons of a slice of text with a word without copying it.
// Word characters for cue matching: ASCII letters and digits, and a few symbols that belong to
// names (c++, c#, f(x), o(n), km/h, tl;dr, x =) are handled by the splitter below.
/** UTF-16 unit i of s; the callers keep i within bounds. */
@inline export function cu(s: string, i: i32): i32 {
  return <i32>load<u16>(changetype<usize>(s) + (<usize>i << 1));
}

@inline export function isLetter(c: i32): bool {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x5f || c >= 0xc0;
}

/** Splits folded text into words: letter/digit runs, with '+', '#', "'", "-" kept inside names. */
export function splitWords(s: string): Array<string> {
  const out = new Array<string>();
  const n = s.length;
  let i = 0;
  while (i < n) {
    while (i < n && !isWordStart(<i32>s.charCodeAt(i))) i++;
    if (i >= n) break;
    const start = i;
    i = wordEnd(s, i, n);
    out.push(s.substring(start, i));
  }
  return out;
}

@inline export function isWordStart(c: i32): bool {
  return isLetter(c);
}

/** End of the word starting at i: letters, inner '-' / '\'' / ';' (tl;dr) / '/' (km/h), and
 * trailing "++" / "#" (c++, c#), "(x)"/"(n)" (f(x), o(n)). n <= s.length (units are read
 * without charCodeAt's bounds check). */
export function wordEnd(s: string, i: i32, n: i32): i32 {
  while (i < n) {
    const c = cu(s, i);
    if (isLetter(c)) { i++; continue; }
    if ((c == 0x2d || c == 0x27 || c == 0x3b || c == 0x2f) && i + 1 < n && isLetter(cu(s, i + 1)) && i > 0 && isLetter(cu(s, i - 1))) {
      i++;
      continue;
    }
    if (c == 0x2b && i + 1 < n && cu(s, i + 1) == 0x2b) { i += 2; break; } // ++
    if (c == 0x23) { i++; break; } // #
    if (c == 0x28 && i + 2 < n && isLetter(cu(s, i + 1)) && cu(s, i + 2) == 0x29) { i += 3; break; }
    break;
  }
  return i;
}


/** Whether s[at, at + len) equals w. */
@inline export function equalAt(s: string, at: i32, len: i32, w: string): bool {
  return len == w.length && memory.compare(changetype<usize>(s) + (<usize>at << 1), changetype<usize>(w), <usize>len << 1) == 0;
}

/** Whether s[at, at + len) starts with w. */
@inline export function startsAt(s: string, at: i32, len: i32, w: string): bool {
  return len >= w.length && memory.compare(changetype<usize>(s) + (<usize>at << 1), changetype<usize>(w), <usize>w.length << 1) == 0;
}
