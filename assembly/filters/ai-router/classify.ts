// The built-in prompt classifier: a task type and a complexity score, deterministic, explainable,
// and cheap enough for every request (no model, no allocation proportional to a long prompt).
//
// Method (docs/filters/ai-router.md describes it for operators):
// 1. The text is case-folded and split into words. Cues are read from the first 4,000 and the last
//    2,000 characters (where instructions sit: "Summarize this: <document>", "<document> Translate
//    the above into French"); length counts the whole text.
// 2. Task type: a lexicon of cue words and phrases, each with a task and a weight, plus structural
//    evidence (code fences, code-like punctuation, arithmetic expressions, a language named after
//    "into"/"to"). Each distinct cue counts once; a cue within the first or last 200 characters of a
//    long text (the instruction) counts 1.5 times. The task with the highest score wins if it
//    reaches 2.0; otherwise the prompt is `chat` (conversation, questions of fact, creative
//    writing). Ties go to the earlier task in the order code, math, translate, summarize, extract,
//    reasoning.
// 3. Complexity in [0, 1]: 0.35 x length (log scale: ~0 under 8 tokens, 1 at 2,000 tokens)
//    + 0.25 x structure (code blocks, list items, several questions, explicit constraints)
//    + 0.30 x reasoning cues (prove, derive, step by step, trade-offs, design, optimize, edge cases...)
//    + a task prior (reasoning 0.15, code and math 0.10, others 0), clipped to [0, 1].
import { foldString } from "../../lib/regex";
import { Text } from "./text";
import { CONSTRAINT, CX, getLexicon, Lexicon, stemKey, TASK_CHAT, TASK_CODE, TASK_EXTRACT, TASK_MATH, TASK_REASONING, TASK_SUMMARIZE, TASK_TRANSLATE, TASKS } from "./lexicon";
import { cu, equalAt, isWordStart, startsAt, wordEnd } from "./words";
import { isDigit, scanStructure, startsListItem } from "./structure";

export { initClassifier, TASK_CHAT, TASK_CODE, TASK_EXTRACT, TASK_MATH, TASK_NAMES, TASK_REASONING, TASK_SUMMARIZE, TASK_TRANSLATE, taskIndex } from "./lexicon";


const HEAD_CHARS: i32 = 4000;
const TAIL_CHARS: i32 = 2000;
const HEAD_ZONE: i32 = 400;
const TAIL_ZONE: i32 = 300;
const SHORT_CHARS: i32 = 400;
const MATERIAL_FACTOR: f64 = 0.4;
const MATERIAL_CAP: f64 = 4.0;
const LEAD_FACTOR: f64 = 1.5;
const WIN_SCORE: f64 = 2.0;


export class Classification {
  task: i32 = TASK_CHAT;
  complexity: f64 = 0;
  scores: StaticArray<f64> = new StaticArray<f64>(TASKS);
}

/**
 * The words of a text as offsets and lengths into it, in pairs in one array. One per VM, reused: a
 * request's classification keeps the array's capacity instead of growing a new one word by word.
 */
class Words {
  text: string = "";
  spans: StaticArray<i32> = new StaticArray<i32>(512);
  count: i32 = 0;
  reset(text: string): void {
    this.text = text;
    this.count = 0;
  }
  push(at: i32, len: i32): void {
    const n = this.count;
    if ((n + 1) << 1 > this.spans.length) {
      const grown = new StaticArray<i32>(this.spans.length << 1);
      memory.copy(changetype<usize>(grown), changetype<usize>(this.spans), <usize>n << 3);
      this.spans = grown;
    }
    const a = changetype<usize>(this.spans) + (<usize>n << 3);
    store<i32>(a, at);
    store<i32>(a, len, 4);
    this.count = n + 1;
  }
  @inline at(w: i32): i32 { return load<i32>(changetype<usize>(this.spans) + (<usize>w << 3)); }
  @inline len(w: i32): i32 { return load<i32>(changetype<usize>(this.spans) + (<usize>w << 3), 4); }
  is(w: i32, s: string): bool { return equalAt(this.text, this.at(w), this.len(w), s); }
  starts(w: i32, s: string): bool { return startsAt(this.text, this.at(w), this.len(w), s); }
  isNumber(w: i32): bool {
    const at = this.at(w);
    const n = this.len(w);
    for (let i = 0; i < n; i++) if (!isDigit(<i32>load<u16>(changetype<usize>(this.text) + (<usize>(at + i) << 1)))) return false;
    return n > 0;
  }
}

/** Classifies a prompt. Deterministic: the same text always gives the same result. */
export function classify(text: Text): Classification {
  const lx = getLexicon();
  const out = new Classification();
  const total = text.length;
  // The cue window: head and tail of long texts. Only these are decoded: the rest of a long text
  // counts by its length alone.
  let window: string;
  let tailStart: i32 = 0; // offset of the tail part in window, or -1
  if (total <= HEAD_CHARS + TAIL_CHARS) {
    window = text.foldedSlice(0, total);
  } else {
    window = foldString(text.slice(0, HEAD_CHARS) + "\n\n" + text.slice(total - TAIL_CHARS, total));
    tailStart = HEAD_CHARS + 2;
  }
  const wn = window.length;
  const longText = total > SHORT_CHARS;
  // Instruction zones of a long text: its first paragraph (at most HEAD_ZONE characters) and a
  // short last paragraph or line ("<document>\n\nTranslate the above into French").
  let headEnd = firstBlankLine(window, HEAD_ZONE);
  if (headEnd < 0 || headEnd > HEAD_ZONE) headEnd = HEAD_ZONE;
  let tailZone = wn;
  const lastPara = lastBlankLine(window);
  if (lastPara > headEnd && wn - lastPara <= TAIL_ZONE) tailZone = lastPara;
  else {
    // A short last line, unless it is the last item of a list.
    const lastLine = lastLineBreak(window);
    if (lastLine > headEnd && wn - lastLine <= TAIL_ZONE && !startsListItem(window, lastLine + 1)) tailZone = lastLine;
  }

  // Words as offsets into the window (no copies).
  const words = WORDS;
  words.reset(window);
  {
    let i = 0;
    while (i < wn) {
      while (i < wn && !isWordStart(<i32>load<u16>(changetype<usize>(window) + (<usize>i << 1)))) i++;
      if (i >= wn) break;
      const start = i;
      i = wordEnd(window, i, wn);
      words.push(start, i - start);
    }
  }
  const nw = words.count;

  let wordMath = 0;
  // Cue hits: each distinct cue once, with the largest factor of its occurrences.
  const hit = hitsFor(lx.count);
  const scores = new StaticArray<f64>(9);
  for (let w = 0; w < nw; w++) {
    const at = words.at(w);
    const len = words.len(w);
    // The instruction (all of a short prompt; the start and end of a long one) counts fully; the
    // material it works on (a document, code, a transcript) counts less, and is capped per task.
    const zone = !longText || at < headEnd || at >= tailZone;
    let factor: f64 = zone ? 1.0 : MATERIAL_FACTOR;
    // The verb that opens an instruction sentence ("Summarize ...", "Can you translate ...") says
    // what is asked more than words further on.
    if (zone && sentenceStart(window, words, w)) factor = LEAD_FACTOR;
    const e = lx.find(window, at, len);
    if (e >= 0) {
      const to = unchecked(lx.entryFrom[e + 1]);
      for (let k = unchecked(lx.entryFrom[e]); k < to; k++) {
        const id = unchecked(lx.entryCues[k]);
        if (phraseAt(lx, id, words, w)) noteHit(hit, id, factor);
      }
    }
    if (len >= 3) {
      const slot = lx.stem(stemKey(window, at));
      if (slot >= 0) {
        const to = unchecked(lx.stemTo[slot]);
        for (let k = unchecked(lx.stemFrom[slot]); k < to; k++) {
          const id = unchecked(lx.stemCues[k]);
          if (lx.wordStarts(window, at, len, unchecked(lx.cueWord[id]))) noteHit(hit, id, factor);
        }
      }
    }
    // A language named after into / to / in, or before "translation".
    if (e >= 0 && unchecked(lx.entryLanguage[e])) {
      let s: f64 = 0.5;
      if (w > 0) {
        if (words.is(w - 1, "into") || words.is(w - 1, "to")) s = 3.5;
        else if (words.is(w - 1, "in") || words.is(w - 1, "from")) {
          // "What's 'good night' in Russian?": the language ends the question.
          const after = at + len;
          s = after >= wn || window.charCodeAt(after) == 0x3f ? 3.5 : 1.5;
        }
      }
      if (w + 1 < nw && words.starts(w + 1, "translat")) s = 3.5;
      unchecked((scores[TASK_TRANSLATE] += s * (factor > 1.0 ? 1.0 : factor)));
    }
    // Arithmetic in words: "17 times 23", "100 divided by 4", "3 to the power of 4".
    if (w + 2 < nw && words.isNumber(w)) {
      let k = -1;
      if (words.is(w + 1, "times") || words.is(w + 1, "plus") || words.is(w + 1, "minus") || words.is(w + 1, "mod") || words.is(w + 1, "modulo")) k = w + 2;
      else if ((words.is(w + 1, "divided") || words.is(w + 1, "multiplied")) && words.is(w + 2, "by")) k = w + 3;
      else if (words.is(w + 1, "to") && w + 5 < nw && words.is(w + 2, "the") && words.is(w + 3, "power") && words.is(w + 4, "of")) k = w + 5;
      if (k > 0 && k < nw && words.isNumber(k)) wordMath++;
    }
  }
  const ids = hit.ids;
  const material = new StaticArray<f64>(9);
  for (let k = 0; k < ids.length; k++) {
    const id = ids[k];
    const group = lx.cueGroup[id];
    const weight = lx.cueWeight[id];
    const f = hit.factor[id];
    if (f < 1.0) unchecked((material[group] += weight * f));
    else unchecked((scores[group] += weight * (group < TASK_CHAT ? f : 1.0)));
  }
  for (let g = 0; g < 9; g++) scores[g] += min(material[g], MATERIAL_CAP);
  hit.clear();

  // Structure, over the whole text (cheap byte scans).
  // Structure over the same window (bounded work for any prompt size).
  const st = scanStructure(window);
  st.mathExprs += wordMath;
  if (st.fences >= 2) scores[TASK_CODE] += 3.0;
  else if (st.fences == 1) scores[TASK_CODE] += 1.5;
  if (st.inlineCode >= 2) scores[TASK_CODE] += 1.0;
  if (st.codeLines >= 3) scores[TASK_CODE] += 2.0;
  else if (st.codeLines >= 1) scores[TASK_CODE] += 1.0;
  if (st.mathExprs >= 3) scores[TASK_MATH] += 3.0;
  else if (st.mathExprs >= 1) scores[TASK_MATH] += 2.0;
  // Mostly non-Latin text with a short Latin instruction is often a translation request.
  if (st.nonLatin > 20 && st.nonLatin * 3 > wn) scores[TASK_TRANSLATE] += 1.0;

  let best = TASK_CHAT;
  let bestScore: f64 = 0;
  // Tie order: code, math, translate, summarize, extract, reasoning.
  const order: StaticArray<i32> = [TASK_CODE, TASK_MATH, TASK_TRANSLATE, TASK_SUMMARIZE, TASK_EXTRACT, TASK_REASONING];
  for (let k = 0; k < order.length; k++) {
    const t = order[k];
    if (scores[t] > bestScore) {
      bestScore = scores[t];
      best = t;
    }
  }
  // Chat cues argue against a weak task signal (greetings, jokes, stories).
  if (bestScore < WIN_SCORE || scores[TASK_CHAT] > bestScore) best = TASK_CHAT;
  for (let t = 0; t < TASKS; t++) out.scores[t] = scores[t];
  out.task = best;

  // Complexity.
  const tokens = <f64>(total + 3) / 4.0;
  let len = (Math.log2(tokens + 1) - 3.0) / 8.0;
  len = clamp01(len);
  let structure = 0.5 * min1(<f64>st.fences / 2.0 * 0.5 + (st.codeLines >= 5 ? 0.5 : 0))
    + 0.3 * min1(<f64>st.listItems / 5.0)
    + 0.3 * min1(<f64>(st.questions > 1 ? st.questions - 1 : 0) / 3.0)
    + 0.3 * min1(scores[CONSTRAINT] / 4.0);
  structure = min1(structure);
  const reasoning = min1(scores[CX] / 2.0);
  let prior: f64 = 0;
  if (best == TASK_REASONING) prior = 0.15;
  else if (best == TASK_CODE || best == TASK_MATH) prior = 0.1;
  out.complexity = clamp01(0.35 * len + 0.25 * structure + 0.30 * reasoning + prior);
  void tailStart;
  return out;
}

// Line searches over the window's units (String#indexOf compares a whole string at every position).

/** Offset of the first "\n\n" if it starts before limit, else -1. */
function firstBlankLine(s: string, limit: i32): i32 {
  const n = s.length - 1;
  const stop = limit < n ? limit : n;
  for (let i = 0; i < stop; i++) if (cu(s, i) == 0x0a && cu(s, i + 1) == 0x0a) return i;
  return -1;
}

/** Offset of the last "\n\n", or -1 (as lastIndexOf). */
function lastBlankLine(s: string): i32 {
  for (let i = s.length - 2; i >= 0; i--) if (cu(s, i + 1) == 0x0a && cu(s, i) == 0x0a) return i;
  return -1;
}

/** Offset of the last "\n", or -1 (as lastIndexOf). */
function lastLineBreak(s: string): i32 {
  for (let i = s.length - 1; i >= 0; i--) if (cu(s, i) == 0x0a) return i;
  return -1;
}

/** The cues seen, each with the largest factor of its occurrences. Reused: cleared after each text. */
class Hits {
  factor: StaticArray<f64>;
  ids: Array<i32> = [];
  constructor(n: i32) { this.factor = new StaticArray<f64>(n); }
  /** Back to no cue seen, touching only the cues that were. */
  clear(): void {
    const ids = this.ids;
    for (let k = 0; k < ids.length; k++) unchecked((this.factor[unchecked(ids[k])] = 0));
    ids.length = 0;
  }
}

const WORDS = new Words();
let HITS: Hits | null = null;

function hitsFor(cues: i32): Hits {
  let h = HITS;
  if (h === null || h.factor.length != cues) HITS = h = new Hits(cues);
  return h as Hits;
}

function noteHit(hit: Hits, id: i32, factor: f64): void {
  const f = hit.factor[id];
  if (f == 0) hit.ids.push(id);
  if (f < factor) hit.factor[id] = factor;
}

/** Whether cue id's words follow from word w on (its first word is w's, found by the caller). */
function phraseAt(lx: Lexicon, id: i32, words: Words, w: i32): bool {
  const first = unchecked(lx.cueWord[id]);
  const n = unchecked(lx.cueWords[id]);
  if (w + n > words.count) return false;
  const text = words.text;
  for (let k = 1; k < n; k++) {
    const at = words.at(w + k);
    const len = words.len(w + k);
    if (k == n - 1 && unchecked(lx.cuePrefixLast[id])) {
      if (!lx.wordStarts(text, at, len, first + k)) return false;
    } else if (!lx.wordIs(text, at, len, first + k)) return false;
  }
  return true;
}

@inline function clamp01(x: f64): f64 {
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

@inline function min1(x: f64): f64 {
  return x > 1 ? 1 : x;
}


/** Whether word w opens a sentence: first word, after . ! ? : or a line break, or after
 * "please" / "can you" / "could you". */
function sentenceStart(text: string, words: Words, w: i32): bool {
  if (w == 0) return true;
  if (words.is(w - 1, "please") || words.is(w - 1, "you")) return true;
  let i = words.at(w) - 1;
  while (i >= 0 && (text.charCodeAt(i) == 0x20 || text.charCodeAt(i) == 0x09)) i--;
  if (i < 0) return true;
  const c = <i32>text.charCodeAt(i);
  return c == 0x2e || c == 0x21 || c == 0x3f || c == 0x3a || c == 0x0a;
}

