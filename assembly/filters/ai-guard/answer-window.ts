// The answer side's text filter: one output text (a choice's content, a content block, a tool
// call's arguments) arriving in pieces is released as soon as no finding can still start in it,
// with at most W units held back (W: the longest a policy's answer detectors can match, capped by
// response.hold_back_bytes). Released text has its masked findings replaced by placeholders and
// the placeholders of mask_and_restore replaced by their originals; a finding whose action is
// block stops the answer. A whole answer is the same with its text final at once.
//
// Why a hit that starts before len - W is final: it spans at most W units, so it ends before the
// text's end, with at least one unit after it that told the detector where it stops. Detectors
// also look a little behind a start (a digit group before a card number): LEFT units of released
// text are kept as context and scanned again, but never released twice. A pattern that can match
// more than W units (credentials' PEM blocks and tokens, custom regexes) is found within W: what
// lay before the window was already released (docs/filters/ai-guard.md, "Hold-back window").
import { Policy, A_OFF, A_LOG, A_BLOCK, A_MASK } from "./policy";
import { jsonString } from "../../lib/json";
import { Hits } from "./hits";
import { Budget, scanText } from "./detectors";
import { Placeholders, MAX_PLACEHOLDER } from "./placeholders";

/**
 * Channel keys: a choice's (or content block's, output item's, candidate's) index times PER_INDEX,
 * plus 1 + a tool call's index (or a Responses content part's index).
 */
export const PER_INDEX: i32 = 1024;

/** Units of already released text kept as the detectors' left context. */
const LEFT: i32 = 8;

/** The longest match of each built-in detector in units (-1: no bound), by index (policy.ts). */
const BUILTIN_SPAN: Array<i32> = [
  254, // email: RFC 5321's longest path
  32, // phone: 15 digits, '+' or '00', separators and a parenthesised area code
  37, // card: 19 digits and the separators of their groups
  42, // iban: 34 characters in groups of four
  11, // ssn
  45, // ip: IPv6 with an embedded IPv4
  -1, // credential: tokens and PEM blocks have no length bound
];

/** The hold-back window of a policy's answer detectors: their longest match, capped at `cap`. */
export function answerWindow(p: Policy, cap: i32): i32 {
  let w = p.restores ? MAX_PLACEHOLDER : 0;
  for (let d = 0; d < p.answers.length; d++) {
    if (p.answers[d] == A_OFF) continue;
    let span = -1;
    if (d < BUILTIN_SPAN.length) span = BUILTIN_SPAN[d];
    else if (d >= p.keywordBase) {
      const words = p.words[d - p.keywordBase];
      span = 0;
      for (let i = 0; i < words.length; i++) if (words[i].length > span) span = words[i].length;
    }
    if (span < 0 || span > cap) span = cap;
    if (span > w) w = span;
  }
  return w;
}

/** One output text of an answer: what is held back, and the tail of what was released. */
export class Channel {
  held: string = "";
  left: string = "";
  /** The text is JSON source (tool call arguments): an original put back is escaped as JSON string content. */
  constructor(public key: i32, public json: bool = false) {}
}

/** The answer-side scan of one exchange: what was found, and whether the answer is blocked. */
export class AnswerScan {
  /** Per detector: it found something in the answer. */
  found: Array<bool>;
  blocked: bool = false;
  masked: bool = false;
  restored: bool = false;
  /** A custom pattern ran out of steps where its answer was mask or block. */
  undecided: bool = false;
  private hits: Hits = new Hits();
  budget: Budget;

  constructor(public p: Policy, public w: i32, public names: Placeholders, public steps: i64) {
    this.found = new Array<bool>(p.names.length).fill(false);
    this.budget = new Budget(steps);
  }

  /**
   * Takes the next piece of a channel's text and returns what can be released of it and of what
   * was held (masked and restored); `last` releases everything (the text ended). Returns "" once
   * the answer is blocked.
   */
  feed(ch: Channel, piece: string, last: bool): string {
    if (this.blocked) return "";
    const p = this.p;
    const buf = ch.left + ch.held + piece;
    const base = ch.left.length;
    const n = buf.length;
    let release = last ? n : n - this.w;
    if (release <= base) {
      ch.held = buf.substring(base);
      return "";
    }
    const hits = this.hits;
    hits.clear();
    // Each scan has the whole budget: a scan covers at most W units and the new text, so a long
    // stream never runs out for its length alone.
    const budget = this.budget;
    budget.left = this.steps;
    budget.exceededBy = -1;
    scanText<u16>(changetype<usize>(buf), n, p, hits, budget, p.answers);
    const over = budget.exceededBy;
    if (over >= 0 && p.answers[over] != A_OFF && p.answers[over] != A_LOG) {
      // Could not decide within the budget whether a masked or blocking pattern is there.
      this.undecided = true;
      this.blocked = true;
      return "";
    }
    hits.settle();
    let out = "";
    let at = base;
    for (let k = 0; k < hits.length; k++) {
      const s = hits.starts[k];
      if (s < base) continue; // found (or not) when it was released
      if (s >= release) break; // not final yet
      const d = hits.dets[k];
      this.found[d] = true;
      const a = p.answers[d];
      if (a == A_BLOCK) {
        this.blocked = true;
        ch.held = "";
        return "";
      }
      const e = hits.ends[k];
      if (e > release) release = e;
      if (a == A_MASK) {
        out += this.restore(buf.substring(at, s), ch.json);
        out += this.names.name(p.tags[d], buf.substring(s, e), false, true);
        this.masked = true;
        at = e;
      }
    }
    if (!last && p.restores && this.names.originals.size > 0) release = this.beforePlaceholder(buf, at, release);
    // Never between the two halves of a surrogate pair: each event's text must be valid UTF-8.
    if (release > at && release < n) {
      const c = buf.charCodeAt(release - 1);
      if (c >= 0xd800 && c < 0xdc00) release--;
    }
    if (release > at) out += this.restore(buf.substring(at, release), ch.json);
    ch.held = buf.substring(release);
    const l = release - LEFT;
    ch.left = buf.substring(l > 0 ? l : 0, release);
    return out;
  }

  /** Moves the release point back to a '<' that may begin a placeholder not complete yet. */
  private beforePlaceholder(buf: string, from: i32, release: i32): i32 {
    const stop = release - MAX_PLACEHOLDER > from ? release - MAX_PLACEHOLDER : from;
    for (let i = release - 1; i >= stop; i--) {
      const c = buf.charCodeAt(i);
      if (c == 0x3e) return release; // '>': any placeholder before it is whole
      if (c == 0x3c) return i;
    }
    return release;
  }

  /** The text with every placeholder of mask_and_restore replaced by its original. */
  restore(text: string, json: bool = false): string {
    const originals = this.names.originals;
    if (originals.size == 0) return text;
    let i = text.indexOf("<");
    if (i < 0) return text;
    let out = "";
    let at = 0;
    while (i >= 0) {
      const j = text.indexOf(">", i + 1);
      if (j < 0 || j - i >= MAX_PLACEHOLDER) break;
      const ph = text.substring(i, j + 1);
      if (originals.has(ph)) {
        const orig = originals.get(ph);
        out += text.substring(at, i) + (json ? jsonContent(orig) : orig);
        at = j + 1;
        this.restored = true;
        i = text.indexOf("<", j + 1);
      } else i = text.indexOf("<", i + 1);
    }
    return at == 0 ? text : out + text.substring(at);
  }
}

/** s escaped as the content of a JSON string (without its quotes). */
function jsonContent(s: string): string {
  const q = jsonString(s);
  return q.substring(1, q.length - 1);
}
