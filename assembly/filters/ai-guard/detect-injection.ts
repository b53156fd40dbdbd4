// Prompt-injection heuristics: a text's score is the sum of the weights of the distinct cues found in
// it (injection-cues.ts: phrases, literal role and template markers, and structural cues: a fake
// role line, a long base64 run, a markdown image whose URL carries data). One pass over the text,
// case-folded as it goes, nothing allocated per unit: phrases are tried at word starts against the
// few cues filed under the word's first unit, literals at the units they start with. Every try is
// bounded (a word of more than MAX_WORD units matches no slot, at most MAX_SEP separator units
// between words, at most three words per gap), so the cost is linear in the text whatever it holds.
import { foldCase } from "../../lib/regex";
import { unit } from "./text";
import { Cue, Lexicon, injectionLexicon, phraseBucket, BUCKETS, BASE64_RUN } from "./injection-cues";

const MAX_WORD: i32 = 48;
const MAX_SEP: i32 = 12;
const GAP_WORDS: i32 = 3;
const MARKDOWN_TRIES: i32 = 16;
const MARKDOWN_SPAN: i32 = 600;

/** Which cues were found in the text being scored (each counts once); reused across texts. */
let found = new StaticArray<u8>(0);

@inline function folded<T>(t: usize, i: i32): i32 {
  return foldCase(unit<T>(t, i));
}

/** A folded unit that continues a word: a-z, 0-9, '_' and anything from U+00C0 on (lib/keywords.ts's rule). */
@inline function wordish(c: i32): bool {
  return <u32>(c - 0x61) < 26 || <u32>(c - 0x30) < 10 || c == 0x5f || c >= 0xc0;
}

/** The end of the word starting at i, read at most MAX_WORD + 1 units far (a longer word matches no slot). */
function wordEnd<T>(t: usize, n: i32, i: i32): i32 {
  const stop = min(n, i + MAX_WORD + 1);
  while (i < stop && wordish(folded<T>(t, i))) i++;
  return i;
}

/** The start of the next word at or after i, past at most MAX_SEP separators, or -1. */
function nextWord<T>(t: usize, n: i32, i: i32): i32 {
  const stop = min(n, i + MAX_SEP);
  while (i < stop && !wordish(folded<T>(t, i))) i++;
  return i < n && wordish(folded<T>(t, i)) ? i : -1;
}

function slotMatches<T>(t: usize, ws: i32, we: i32, alts: Array<string>, prefix: Array<bool>): bool {
  const len = we - ws;
  for (let a = 0; a < alts.length; a++) {
    const alt = unchecked(alts[a]);
    const m = alt.length;
    if (unchecked(prefix[a]) ? len < m : len != m) continue;
    const p = changetype<usize>(alt);
    let k = 0;
    while (k < m && folded<T>(t, ws + k) == <i32>load<u16>(p + (<usize>k << 1))) k++;
    if (k == m) return true;
  }
  return false;
}

/** Whether the cue's slots from s on match the words from ws on. */
function matchFrom<T>(t: usize, n: i32, cue: Cue, s: i32, ws: i32): bool {
  const slots = cue.slots;
  if (s == slots.length) return true;
  if (ws < 0) return false;
  const slot = unchecked(slots[s]);
  if (slot.gap) {
    let w = ws;
    for (let k = 0; k <= GAP_WORDS && w >= 0; k++) {
      if (matchFrom<T>(t, n, cue, s + 1, w)) return true;
      const we = wordEnd<T>(t, n, w);
      if (we - w > MAX_WORD) return false;
      w = nextWord<T>(t, n, we);
    }
    return false;
  }
  const we = wordEnd<T>(t, n, ws);
  if (we - ws > MAX_WORD || !slotMatches<T>(t, ws, we, slot.alts, slot.prefix)) return false;
  return s + 1 == slots.length || matchFrom<T>(t, n, cue, s + 1, nextWord<T>(t, n, we));
}

function isBase64(c: i32): bool {
  return (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a) || c == 0x2b || c == 0x2f || c == 0x3d;
}

/** "![alt](http...?k=v)": an image a client renders by fetching a URL that carries data. */
function markdownExfil<T>(t: usize, n: i32, i: i32): bool {
  const stop = min(n - 1, i + MARKDOWN_SPAN);
  let j = i + 2;
  while (j < stop && !(unit<T>(t, j) == 0x5d && unit<T>(t, j + 1) == 0x28)) j++; // "]("
  if (j >= stop) return false;
  j += 2;
  if (j + 4 > n || folded<T>(t, j) != 0x68 || folded<T>(t, j + 1) != 0x74 || folded<T>(t, j + 2) != 0x74 || folded<T>(t, j + 3) != 0x70) return false;
  let query = false;
  for (; j < stop; j++) {
    const c = unit<T>(t, j);
    if (c == 0x29 || c == 0x20 || c == 0x0a) return false;
    if (c == 0x3f) query = true;
    else if (c == 0x3d && query) return true;
  }
  return false;
}

/** A text's injection score (the sum of its distinct cues' weights). */
export function injectionScore<T>(t: usize, n: i32): f64 {
  const lx = injectionLexicon();
  if (found.length != lx.count) found = new StaticArray<u8>(lx.count);
  memory.fill(changetype<usize>(found), 0, <usize>lx.count);
  let inWord = false;
  let lineStart = true;
  let b64 = 0, b64Classes = 0;
  let markdownTries = 0;
  const ascii = lx.asciiLiteral;
  for (let i = 0; i < n; i++) {
    const raw = unit<T>(t, i);
    const c = foldCase(raw);
    // Base64 runs: long, with upper case, lower case and digits.
    if (isBase64(raw)) {
      b64++;
      b64Classes |= raw >= 0x61 ? 1 : raw >= 0x41 ? 2 : raw >= 0x30 && raw <= 0x39 ? 4 : 0;
      if (b64 >= BASE64_RUN && b64Classes == 7) unchecked(found[lx.base64] = 1);
    } else {
      b64 = 0;
      b64Classes = 0;
    }
    const isWord = wordish(c);
    if ((!isWord && (c >= 0x80 || unchecked(ascii[c]) != 0)) || c >= 0x3000) {
      const lits = unchecked(lx.literals[c & (BUCKETS - 1)]);
      for (let k = 0; k < lits.length; k++) {
        const lit = unchecked(lits[k]);
        const s = lit.text;
        const m = s.length;
        if (i + m > n || <i32>load<u16>(changetype<usize>(s)) != c) continue;
        let q = 1;
        while (q < m && folded<T>(t, i + q) == <i32>load<u16>(changetype<usize>(s) + (<usize>q << 1))) q++;
        if (q == m) unchecked(found[lit.id] = 1);
      }
    }
    if (c == 0x21) {
      if (i + 1 < n && unit<T>(t, i + 1) == 0x5b && markdownTries < MARKDOWN_TRIES) {
        markdownTries++;
        if (markdownExfil<T>(t, n, i)) unchecked(found[lx.markdown] = 1);
      }
    }
    if (isWord) {
      if (!inWord) {
        inWord = true;
        // Only the cues whose first word starts with this unit and has this length are tried; the
        // first slot is checked against the word found once here.
        const we = wordEnd<T>(t, n, i);
        if (we - i <= MAX_WORD) {
          const cues = unchecked(lx.phrases[phraseBucket(c, we - i)]);
          for (let k = 0; k < cues.length; k++) {
            const cue = unchecked(cues[k]);
            if (unchecked(found[cue.id]) != 0) continue;
            const first = unchecked(cue.slots[0]);
            if (!slotMatches<T>(t, i, we, first.alts, first.prefix)) continue;
            if (cue.slots.length == 1 || matchFrom<T>(t, n, cue, 1, nextWord<T>(t, n, we))) unchecked(found[cue.id] = 1);
          }
        }
        if (lineStart) roleLine<T>(t, n, i, lx);
        lineStart = false;
      }
    } else {
      inWord = false;
      if (c == 0x0a) lineStart = true;
      else if (c != 0x20 && c != 0x09 && c != 0x0d && c != 0x23 && c != 0x2a && c != 0x3e && c != 0x5b) lineStart = false;
    }
  }
  let score: f64 = 0;
  for (let k = 0; k < lx.count; k++) if (unchecked(found[k])) score += unchecked(lx.weights[k]);
  return score;
}

/** A line opening with "system:" / "developer:" (or "assistant:"): a role label a model may take as a turn. */
function roleLine<T>(t: usize, n: i32, i: i32, lx: Lexicon): void {
  const we = wordEnd<T>(t, n, i);
  let j = we;
  while (j < n && j < we + 2 && unit<T>(t, j) == 0x20) j++;
  if (j >= n || unit<T>(t, j) != 0x3a) return;
  const len = we - i;
  if ((len == 6 && spellsFolded<T>(t, i, "system")) || (len == 9 && spellsFolded<T>(t, i, "developer"))) unchecked(found[lx.roleSystem] = 1);
  else if (len == 9 && spellsFolded<T>(t, i, "assistant")) unchecked(found[lx.roleAssistant] = 1);
}

function spellsFolded<T>(t: usize, i: i32, s: string): bool {
  for (let k = 0; k < s.length; k++) if (folded<T>(t, i + k) != <i32>s.charCodeAt(k)) return false;
  return true;
}
