// A small regular-expression engine for filters: Thompson's construction compiled to a program,
// run by a Pike VM (Russ Cox, "Regular Expression Matching: the Virtual Machine Approach").
//
// Why not a package: the one AssemblyScript regex engine on npm (assemblyscript-regex 1.6) matches
// by recursive backtracking — exponential on patterns like (a+)+$ and one stack frame per input
// character, so a 100 KB prompt could trap the VM — and it targets AssemblyScript 0.18. Filters
// run regular expressions from operators' configuration over untrusted prompts; they need a
// guarantee, not a fast common case.
//
// Guarantee: matching costs O(len(input) x len(program)) steps and O(len(program)) memory, for any
// pattern and any input: every position advances a set of threads in lockstep, and a program
// counter enters the set at most once per position. No recursion at match time. `regexSteps`
// counts the work so tests can check the bound.
//
// Answer: whether the pattern matches anywhere in the text (RE2's PartialMatch); no captures.
//
// Syntax (a subset of RE2's, which Envoy's safe_regex uses; anything else is a compile error, never
// a silent difference):
//   literals; escapes \\ \. \* \+ \? \( \) \[ \] \{ \} \| \^ \$ \/ \- and any other punctuation;
//   \n \r \t \f \v \0; \xhh; \uhhhh
//   .            any character but \n (any character with the s flag)
//   [abc] [a-z] [^...]   classes, with \d \w \s \D \W \S and escapes inside
//   \d \w \s \D \W \S    ASCII digit, word character [0-9A-Za-z_], white space [\t\n\v\f\r ]
//   \b \B        ASCII word boundary / not a boundary
//   ^ $          start / end of the text (of a line with the m flag)
//   ( ) (?: )    groups (both non-capturing: only whether it matches is computed)
//   |            alternation
//   * + ? {m} {m,} {m,n}   greedy quantifiers; lazy forms *? +? ?? {m,n}? are accepted (the same
//                answer); m, n <= 1000
//   (?i) (?s) (?m) (?is) ...  flags, only at the start of the pattern: i = case-insensitive
//                (ASCII, Latin-1, Greek and Cyrillic letters), s = . matches \n, m = multi-line ^ $
// Not supported (compile error): backreferences, lookaround, named groups, possessive quantifiers,
// Unicode classes \p{...}.
// The text is read as code points (a surrogate pair is one character).

/** Work done by every match since the module started (threads visited and stepped). */
export let regexSteps: i64 = 0;
/** Why the last Regex.compile returned null. */
export let regexError: string = "";

const MAX_PROGRAM: i32 = 20000;
const MAX_REPEAT: i32 = 1000;
const MAX_DEPTH: i32 = 200;

const OP_CHAR: u8 = 0; // x = code point (folded when case-insensitive)
const OP_ANY: u8 = 1; // any but \n
const OP_ANYNL: u8 = 2; // any
const OP_CLASS: u8 = 3; // x = class index
const OP_SPLIT: u8 = 4; // x, y
const OP_JMP: u8 = 5; // x
const OP_ASSERT: u8 = 6; // x = assertion kind
const OP_MATCH: u8 = 7;

const A_BOT: i32 = 0; // beginning of text
const A_EOT: i32 = 1; // end of text
const A_BOL: i32 = 2; // beginning of line
const A_EOL: i32 = 3; // end of line
const A_WORD: i32 = 4; // \b
const A_NOTWORD: i32 = 5; // \B

// AST node kinds.
const N_EMPTY: i32 = 0;
const N_LIT: i32 = 1;
const N_ANY: i32 = 2;
const N_CLASS: i32 = 3;
const N_ASSERT: i32 = 4;
const N_CONCAT: i32 = 5;
const N_ALT: i32 = 6;
const N_REPEAT: i32 = 7;

class Node {
  kind: i32;
  v: i32 = 0; // code point, class index or assertion kind
  min: i32 = 0;
  max: i32 = 0; // -1: unbounded
  kids: Array<Node> | null = null;
  constructor(kind: i32) { this.kind = kind; }
}

/** A character class: sorted, merged ranges [lo, hi] inclusive, and a negation flag. */
class CharClass {
  ranges: Array<i32> = [];
  negated: bool = false;

  add(lo: i32, hi: i32): void {
    this.ranges.push(lo);
    this.ranges.push(hi);
  }

  /** Sorts and merges the ranges; with fold, adds the folded image of every range. */
  finish(fold: bool): void {
    const r = this.ranges;
    if (fold) {
      const n = r.length;
      for (let i = 0; i < n; i += 2) {
        const lo = unchecked(r[i]);
        const hi = unchecked(r[i + 1]);
        // Folding maps upper-case blocks onto lower-case ones; walk ranges up to a bounded size.
        if (hi - lo > 0x600) {
          this.foldBlock(lo, hi, 0x41, 0x5a);
          this.foldBlock(lo, hi, 0xc0, 0xde);
          this.foldBlock(lo, hi, 0x391, 0x3a9);
          this.foldBlock(lo, hi, 0x400, 0x42f);
        } else {
          for (let c = lo; c <= hi; c++) {
            const f = foldCase(c);
            if (f != c) { r.push(f); r.push(f); }
          }
        }
      }
    }
    // Insertion sort by lo (classes are small), then merge.
    const pairs = r.length >> 1;
    for (let i = 1; i < pairs; i++) {
      const lo = r[i * 2];
      const hi = r[i * 2 + 1];
      let j = i - 1;
      while (j >= 0 && r[j * 2] > lo) {
        r[(j + 1) * 2] = r[j * 2];
        r[(j + 1) * 2 + 1] = r[j * 2 + 1];
        j--;
      }
      r[(j + 1) * 2] = lo;
      r[(j + 1) * 2 + 1] = hi;
    }
    const out = new Array<i32>();
    for (let i = 0; i < pairs; i++) {
      const lo = r[i * 2];
      const hi = r[i * 2 + 1];
      const m = out.length;
      if (m > 0 && lo <= out[m - 1] + 1) {
        if (hi > out[m - 1]) out[m - 1] = hi;
      } else {
        out.push(lo);
        out.push(hi);
      }
    }
    this.ranges = out;
  }

  foldBlock(lo: i32, hi: i32, blo: i32, bhi: i32): void {
    const a = lo > blo ? lo : blo;
    const b = hi < bhi ? hi : bhi;
    for (let c = a; c <= b; c++) {
      const f = foldCase(c);
      if (f != c) { this.ranges.push(f); this.ranges.push(f); }
    }
  }

  has(c: i32): bool {
    const r = this.ranges;
    // Binary search over the ranges.
    let lo = 0;
    let hi = (r.length >> 1) - 1;
    let found = false;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (c < unchecked(r[mid * 2])) hi = mid - 1;
      else if (c > unchecked(r[mid * 2 + 1])) lo = mid + 1;
      else { found = true; break; }
    }
    return found != this.negated;
  }
}

/**
 * Simple case folding to lower case: ASCII, Latin-1 letters, Greek and Cyrillic capitals. Enough
 * for prompts in the languages Sluice's users write; other scripts compare exactly.
 */
// @ts-ignore: decorator
@inline export function foldCase(c: i32): i32 {
  if (c < 0x41) return c;
  if (c <= 0x5a) return c + 32;
  if (c < 0xc0) return c;
  if (c <= 0xde) return c == 0xd7 ? c : c + 32;
  if (c < 0x391) return c;
  if (c <= 0x3a9) return c == 0x3a2 ? c : c + 32;
  if (c < 0x400) return c;
  if (c <= 0x40f) return c + 80;
  if (c <= 0x42f) return c + 32;
  return c;
}

/** The text with every character folded as foldCase does (length in code units unchanged). */
export function foldString(s: string): string {
  const n = s.length;
  let i = 0;
  const src = changetype<usize>(s);
  // Most prompts are mostly lower case: copy only when something changes.
  while (i < n) {
    const c = <i32>load<u16>(src + (<usize>i << 1));
    if (foldCase(c) != c) break;
    i++;
  }
  if (i == n) return s;
  const out = changetype<string>(__new(<usize>n << 1, idof<string>()));
  memory.copy(changetype<usize>(out), changetype<usize>(s), <usize>i << 1);
  for (; i < n; i++) {
    // Folding never maps into or out of the surrogate range, so code units suffice.
    store<u16>(changetype<usize>(out) + (<usize>i << 1), <u16>foldCase(<i32>load<u16>(src + (<usize>i << 1))));
  }
  return out;
}

@inline function isWordChar(c: i32): bool {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x5f;
}

export function isAsciiWordChar(c: i32): bool {
  return isWordChar(c);
}

class Parser {
  src: string;
  p: i32 = 0;
  err: string = "";
  classes: Array<CharClass>;
  fold: bool;
  dotAll: bool;
  multiLine: bool;
  depth: i32 = 0;

  constructor(src: string, classes: Array<CharClass>, fold: bool, dotAll: bool, multiLine: bool) {
    this.src = src;
    this.classes = classes;
    this.fold = fold;
    this.dotAll = dotAll;
    this.multiLine = multiLine;
  }

  fail(msg: string): Node | null {
    if (this.err.length == 0) this.err = msg + " at offset " + this.p.toString();
    return null;
  }

  @inline more(): bool { return this.p < this.src.length; }
  @inline peek(): i32 { return <i32>this.src.charCodeAt(this.p); }

  alternation(): Node | null {
    if (++this.depth > MAX_DEPTH) return this.fail("nesting too deep");
    const alts = new Array<Node>();
    while (true) {
      const c = this.concat();
      if (c === null) return null;
      alts.push(c);
      if (this.more() && this.peek() == 0x7c) { // |
        this.p++;
        continue;
      }
      break;
    }
    this.depth--;
    if (alts.length == 1) return alts[0];
    const n = new Node(N_ALT);
    n.kids = alts;
    return n;
  }

  concat(): Node | null {
    const items = new Array<Node>();
    while (this.more()) {
      const c = this.peek();
      if (c == 0x7c || c == 0x29) break; // | )
      this.grouped = false;
      let atom = this.atom();
      if (atom === null) return null;
      atom = this.quantified(atom as Node);
      if (atom === null) return null;
      items.push(atom as Node);
    }
    if (items.length == 1) return items[0];
    const n = new Node(items.length == 0 ? N_EMPTY : N_CONCAT);
    if (items.length) n.kids = items;
    return n;
  }

  quantified(atom: Node): Node | null {
    let repeated = false;
    while (this.more()) {
      const c = this.peek();
      let min: i32;
      let max: i32;
      const at = this.p;
      if (c == 0x2a) { min = 0; max = -1; this.p++; } // *
      else if (c == 0x2b) { min = 1; max = -1; this.p++; } // +
      else if (c == 0x3f) { min = 0; max = 1; this.p++; } // ?
      else if (c == 0x7b) { // {
        if (!this.braces()) {
          if (this.err.length) return null;
          // Not a repetition: a literal '{' (RE2 does the same).
          this.p = at;
          return atom;
        }
        min = this.bmin;
        max = this.bmax;
      } else return atom;
      // A bare ^ $ \b cannot be repeated; a group that holds only one can, as in JavaScript.
      if (atom.kind == N_ASSERT && !this.grouped) return this.fail("nothing to repeat");
      if (repeated) return this.fail("a repetition of a repetition (use a group)");
      repeated = true;
      if (this.more() && this.peek() == 0x3f) this.p++; // lazy: same yes/no answer
      else if (this.more() && this.peek() == 0x2b) return this.fail("possessive quantifiers are not supported");
      const r = new Node(N_REPEAT);
      r.min = min;
      r.max = max;
      r.kids = [atom];
      atom = r;
    }
    return atom;
  }

  bmin: i32 = 0;
  bmax: i32 = 0;
  grouped: bool = false; // the last atom was a parenthesized group

  /** Parses {m}, {m,} or {m,n} at p; false (p unspecified) when it is not one. */
  braces(): bool {
    this.p++; // {
    const m = this.number();
    if (m < 0) return false;
    let n = m;
    if (this.more() && this.peek() == 0x2c) {
      this.p++;
      if (this.more() && this.peek() == 0x7d) n = -1;
      else {
        n = this.number();
        if (n < 0) return false;
      }
    }
    if (!this.more() || this.peek() != 0x7d) return false;
    this.p++;
    if (m > MAX_REPEAT || n > MAX_REPEAT) {
      this.fail("repetition count over " + MAX_REPEAT.toString());
      return false;
    }
    if (n >= 0 && n < m) {
      this.fail("repetition {m,n} with n < m");
      return false;
    }
    this.bmin = m;
    this.bmax = n;
    return true;
  }

  number(): i32 {
    let v: i32 = 0;
    let digits = 0;
    while (this.more()) {
      const c = this.peek();
      if (c < 0x30 || c > 0x39) break;
      if (v < 100000) v = v * 10 + (c - 0x30);
      digits++;
      this.p++;
    }
    return digits == 0 ? -1 : v;
  }

  lit(c: i32): Node {
    const n = new Node(N_LIT);
    n.v = this.fold ? foldCase(c) : c;
    return n;
  }

  assert(kind: i32): Node {
    const n = new Node(N_ASSERT);
    n.v = kind;
    return n;
  }

  classNode(cc: CharClass): Node {
    cc.finish(this.fold);
    const n = new Node(N_CLASS);
    n.v = this.classes.length;
    this.classes.push(cc);
    return n;
  }

  /** The code point at p (a surrogate pair counts as one); advances p. */
  codePoint(): i32 {
    const c = this.peek();
    this.p++;
    if (c >= 0xd800 && c < 0xdc00 && this.more()) {
      const lo = this.peek();
      if (lo >= 0xdc00 && lo < 0xe000) {
        this.p++;
        return 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
      }
    }
    return c;
  }

  atom(): Node | null {
    const c = this.peek();
    if (c == 0x28) return this.group(); // (
    if (c == 0x5b) return this.charClass(); // [
    if (c == 0x2e) { // .
      this.p++;
      return new Node(N_ANY);
    }
    if (c == 0x5e) { this.p++; return this.assert(this.multiLine ? A_BOL : A_BOT); } // ^
    if (c == 0x24) { this.p++; return this.assert(this.multiLine ? A_EOL : A_EOT); } // $
    if (c == 0x5c) return this.escape();
    if (c == 0x2a || c == 0x2b || c == 0x3f) return this.fail("nothing to repeat");
    if (c == 0x29) return this.fail("unmatched )");
    return this.lit(this.codePoint());
  }

  group(): Node | null {
    this.p++; // (
    if (this.more() && this.peek() == 0x3f) { // (?
      this.p++;
      if (!this.more()) return this.fail("unterminated group");
      const k = this.peek();
      if (k == 0x3a) this.p++; // (?:
      else if (k == 0x3d || k == 0x21) return this.fail("lookahead is not supported");
      else if (k == 0x3c) return this.fail("lookbehind and named groups are not supported");
      else if (k == 0x50) return this.fail("named groups are not supported");
      else return this.fail("flags are supported only at the start of the pattern, as (?i), (?s), (?m)");
    }
    const inner = this.alternation();
    if (inner === null) return null;
    if (!this.more() || this.peek() != 0x29) return this.fail("missing )");
    this.p++;
    this.grouped = true;
    return inner;
  }

  /** \d \w \s and their negations into cc; false if c is not one of them. */
  perlClass(c: i32, cc: CharClass): bool {
    if (c == 0x64) { cc.add(0x30, 0x39); return true; } // d
    if (c == 0x77) { cc.add(0x30, 0x39); cc.add(0x41, 0x5a); cc.add(0x5f, 0x5f); cc.add(0x61, 0x7a); return true; } // w
    if (c == 0x73) { cc.add(0x09, 0x0d); cc.add(0x20, 0x20); return true; } // s
    if (c == 0x44) { cc.add(0, 0x2f); cc.add(0x3a, 0x10ffff); return true; } // D
    if (c == 0x57) { cc.add(0, 0x2f); cc.add(0x3a, 0x40); cc.add(0x5b, 0x5e); cc.add(0x60, 0x60); cc.add(0x7b, 0x10ffff); return true; } // W
    if (c == 0x53) { cc.add(0, 0x08); cc.add(0x0e, 0x1f); cc.add(0x21, 0x10ffff); return true; } // S
    return false;
  }

  /** A single escaped character after the backslash (p on it); -1 with err set if invalid. */
  escapedChar(inClass: bool): i32 {
    const c = this.peek();
    this.p++;
    if (c == 0x6e) return 0x0a; // n
    if (c == 0x72) return 0x0d; // r
    if (c == 0x74) return 0x09; // t
    if (c == 0x66) return 0x0c; // f
    if (c == 0x76) return 0x0b; // v
    if (c == 0x30) return 0; // \0
    if (c == 0x62 && inClass) return 0x08; // [\b] is backspace
    if (c == 0x78) return this.hex(2); // x
    if (c == 0x75) return this.hex(4); // u
    if (c >= 0x31 && c <= 0x39) { this.p--; this.fail("backreferences are not supported"); return -1; }
    if (c < 0x80 && !isWordChar(c)) return c; // escaped punctuation or space
    this.p--;
    this.fail("unknown escape \\" + String.fromCharCode(c));
    return -1;
  }

  hex(digits: i32): i32 {
    let v: i32 = 0;
    for (let i = 0; i < digits; i++) {
      if (!this.more()) { this.fail("short hex escape"); return -1; }
      const c = this.peek();
      let d: i32;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) d = c - 0x61 + 10;
      else if (c >= 0x41 && c <= 0x46) d = c - 0x41 + 10;
      else { this.fail("bad hex escape"); return -1; }
      v = (v << 4) | d;
      this.p++;
    }
    return v;
  }

  escape(): Node | null {
    this.p++; // backslash
    if (!this.more()) return this.fail("trailing backslash");
    const c = this.peek();
    if (c == 0x62) { this.p++; return this.assert(A_WORD); } // \b
    if (c == 0x42) { this.p++; return this.assert(A_NOTWORD); } // \B
    if (c == 0x41) { this.p++; return this.assert(A_BOT); } // \A
    if (c == 0x7a) { this.p++; return this.assert(A_EOT); } // \z
    const cc = new CharClass();
    if (this.perlClass(c, cc)) {
      this.p++;
      return this.classNode(cc);
    }
    if (c == 0x70 || c == 0x50) return this.fail("Unicode classes \\p are not supported");
    const ch = this.escapedChar(false);
    if (ch < 0) return null;
    return this.lit(ch);
  }

  charClass(): Node | null {
    this.p++; // [
    const cc = new CharClass();
    if (this.more() && this.peek() == 0x5e) { cc.negated = true; this.p++; }
    let first = true;
    while (true) {
      if (!this.more()) return this.fail("missing ]");
      let c = this.peek();
      if (c == 0x5d && !first) { this.p++; break; } // ] (a leading ] is literal)
      first = false;
      if (c == 0x5b && this.p + 1 < this.src.length && <i32>this.src.charCodeAt(this.p + 1) == 0x3a) {
        return this.fail("POSIX classes [:name:] are not supported");
      }
      let lo: i32;
      if (c == 0x5c) {
        this.p++;
        if (!this.more()) return this.fail("missing ]");
        const e = this.peek();
        if (this.perlClass(e, cc)) { this.p++; continue; }
        lo = this.escapedChar(true);
        if (lo < 0) return null;
      } else lo = this.codePoint();
      let hi = lo;
      // A range, unless the '-' is the last character before ].
      if (this.p + 1 < this.src.length && this.peek() == 0x2d && <i32>this.src.charCodeAt(this.p + 1) != 0x5d) {
        this.p++;
        c = this.peek();
        if (c == 0x5c) {
          this.p++;
          if (!this.more()) return this.fail("missing ]");
          hi = this.escapedChar(true);
          if (hi < 0) return null;
        } else hi = this.codePoint();
        if (hi < lo) return this.fail("bad range in class");
      }
      cc.add(lo, hi);
    }
    return this.classNode(cc);
  }
}

class Compiler {
  op: Array<u8> = [];
  x: Array<i32> = [];
  y: Array<i32> = [];
  dotAll: bool;
  tooBig: bool = false;

  constructor(dotAll: bool) { this.dotAll = dotAll; }

  emit(op: u8, x: i32, y: i32): i32 {
    const pc = this.op.length;
    if (pc >= MAX_PROGRAM) {
      this.tooBig = true;
      return pc;
    }
    this.op.push(op);
    this.x.push(x);
    this.y.push(y);
    return pc;
  }

  @inline pc(): i32 { return this.op.length; }

  patchX(at: i32, v: i32): void { if (at < this.x.length) this.x[at] = v; }
  patchY(at: i32, v: i32): void { if (at < this.y.length) this.y[at] = v; }

  node(n: Node, depth: i32): void {
    if (this.tooBig || depth > MAX_DEPTH * 4) { this.tooBig = true; return; }
    switch (n.kind) {
      case N_EMPTY: return;
      case N_LIT: this.emit(OP_CHAR, n.v, 0); return;
      case N_ANY: this.emit(this.dotAll ? OP_ANYNL : OP_ANY, 0, 0); return;
      case N_CLASS: this.emit(OP_CLASS, n.v, 0); return;
      case N_ASSERT: this.emit(OP_ASSERT, n.v, 0); return;
      case N_CONCAT: {
        const kids = n.kids as Array<Node>;
        for (let i = 0; i < kids.length; i++) this.node(kids[i], depth + 1);
        return;
      }
      case N_ALT: {
        const kids = n.kids as Array<Node>;
        const jumps = new Array<i32>();
        for (let i = 0; i < kids.length; i++) {
          if (i < kids.length - 1) {
            const split = this.emit(OP_SPLIT, 0, 0);
            this.patchX(split, this.pc());
            this.node(kids[i], depth + 1);
            jumps.push(this.emit(OP_JMP, 0, 0));
            this.patchY(split, this.pc());
          } else this.node(kids[i], depth + 1);
        }
        const end = this.pc();
        for (let i = 0; i < jumps.length; i++) this.patchX(jumps[i], end);
        return;
      }
      default: { // N_REPEAT
        const e = (n.kids as Array<Node>)[0];
        const min = n.min;
        const max = n.max;
        if (max == -1) {
          if (min == 0) {
            const loop = this.emit(OP_SPLIT, 0, 0);
            this.patchX(loop, this.pc());
            this.node(e, depth + 1);
            this.emit(OP_JMP, loop, 0);
            this.patchY(loop, this.pc());
          } else {
            for (let i = 0; i < min - 1 && !this.tooBig; i++) this.node(e, depth + 1);
            const start = this.pc();
            this.node(e, depth + 1);
            this.emit(OP_SPLIT, start, this.pc() + 1);
          }
          return;
        }
        for (let i = 0; i < min && !this.tooBig; i++) this.node(e, depth + 1);
        const splits = new Array<i32>();
        for (let i = min; i < max && !this.tooBig; i++) {
          const s = this.emit(OP_SPLIT, 0, 0);
          this.patchX(s, this.pc());
          splits.push(s);
          this.node(e, depth + 1);
        }
        const end = this.pc();
        for (let i = 0; i < splits.length; i++) this.patchY(splits[i], end);
        return;
      }
    }
  }
}

export class Regex {
  source: string = "";
  caseInsensitive: bool = false;
  private op: StaticArray<u8> = new StaticArray<u8>(0);
  private x: StaticArray<i32> = new StaticArray<i32>(0);
  private y: StaticArray<i32> = new StaticArray<i32>(0);
  private classes: Array<CharClass> = [];
  private anchoredStart: bool = false;
  // Characters that can begin a match (ASCII bitmap + "any non-ASCII"); unused when a match can
  // begin with an empty string or an assertion other than ^.
  private first: StaticArray<u32> = new StaticArray<u32>(4);
  private firstNonAscii: bool = false;
  private useFirst: bool = false;
  // Thread lists: sparse sets over program counters, allocated once.
  private cur: StaticArray<i32> = new StaticArray<i32>(0);
  private nxt: StaticArray<i32> = new StaticArray<i32>(0);
  private seen: StaticArray<i32> = new StaticArray<i32>(0); // pc -> generation last added
  private stack: StaticArray<i32> = new StaticArray<i32>(0);
  private gen: i32 = 0;

  get size(): i32 { return this.op.length; }

  /** Compiles pattern; null with regexError set when it is not in the supported syntax. */
  static compile(pattern: string): Regex | null {
    regexError = "";
    let fold = false, dotAll = false, multiLine = false;
    let start = 0;
    // Leading flags: (?i) (?s) (?m) and combinations.
    if (pattern.startsWith("(?") && pattern.length > 3) {
      let i = 2;
      let ok = true;
      while (i < pattern.length && pattern.charCodeAt(i) != 0x29) {
        const f = pattern.charCodeAt(i);
        if (f == 0x69) fold = true;
        else if (f == 0x73) dotAll = true;
        else if (f == 0x6d) multiLine = true;
        else { ok = false; break; }
        i++;
      }
      if (ok && i < pattern.length && i > 2) start = i + 1;
    }
    const classes = new Array<CharClass>();
    const p = new Parser(pattern, classes, fold, dotAll, multiLine);
    p.p = start;
    const ast = p.alternation();
    if (ast === null || p.err.length) {
      regexError = p.err.length ? p.err : "invalid pattern";
      return null;
    }
    if (p.more()) {
      regexError = p.peek() == 0x29 ? "unmatched ) at offset " + p.p.toString() : "unexpected character at offset " + p.p.toString();
      return null;
    }
    const c = new Compiler(dotAll);
    c.node(ast as Node, 0);
    c.emit(OP_MATCH, 0, 0);
    if (c.tooBig) {
      regexError = "pattern too large once repetitions are expanded (over " + MAX_PROGRAM.toString() + " instructions)";
      return null;
    }
    const re = new Regex();
    re.source = pattern;
    re.caseInsensitive = fold;
    const n = c.op.length;
    re.op = new StaticArray<u8>(n);
    re.x = new StaticArray<i32>(n);
    re.y = new StaticArray<i32>(n);
    for (let i = 0; i < n; i++) {
      re.op[i] = c.op[i];
      re.x[i] = c.x[i];
      re.y[i] = c.y[i];
    }
    re.classes = classes;
    re.cur = new StaticArray<i32>(n);
    re.nxt = new StaticArray<i32>(n);
    re.seen = new StaticArray<i32>(n);
    re.stack = new StaticArray<i32>(n * 2 + 2);
    re.analyzeStart();
    return re;
  }

  /** Sets anchoredStart and the first-character set by walking the empty-width closure of pc 0. */
  private analyzeStart(): void {
    const n = this.op.length;
    const visited = new StaticArray<bool>(n);
    const work = new Array<i32>();
    work.push(0);
    let canEmpty = false;
    let onlyBot = true; // every path from 0 starts with ^ (text start)
    this.useFirst = true;
    // anchoredStart: pc 0 is a ^ (BOT) assertion directly.
    this.anchoredStart = this.op[0] == OP_ASSERT && this.x[0] == A_BOT;
    while (work.length) {
      const pc = work.pop();
      if (pc >= n || visited[pc]) continue;
      visited[pc] = true;
      const op = this.op[pc];
      if (op == OP_SPLIT) { work.push(this.x[pc]); work.push(this.y[pc]); }
      else if (op == OP_JMP) work.push(this.x[pc]);
      else if (op == OP_ASSERT) work.push(pc + 1); // over-approximation: ignore the assertion
      else if (op == OP_MATCH) canEmpty = true;
      else if (op == OP_CHAR) {
        const c = this.x[pc];
        if (c < 128) this.setFirst(c);
        else this.firstNonAscii = true;
        // Case-insensitive programs hold folded characters and see folded input: no extra work.
      } else if (op == OP_CLASS) {
        const cc = unchecked(this.classes[this.x[pc]]);
        for (let ch = 0; ch < 128; ch++) if (cc.has(ch)) this.setFirst(ch);
        this.firstNonAscii = true;
      } else {
        for (let ch = 0; ch < 128; ch++) this.setFirst(ch);
        this.firstNonAscii = true;
      }
    }
    if (canEmpty) this.useFirst = false;
    void onlyBot;
  }

  private setFirst(c: i32): void {
    unchecked((this.first[c >> 5] |= (<u32>1) << <u32>(c & 31)));
  }

  @inline private inFirst(c: i32): bool {
    if (c >= 128) return this.firstNonAscii;
    return (unchecked(this.first[c >> 5]) & ((<u32>1) << <u32>(c & 31))) != 0;
  }

  /** True when the pattern matches anywhere in text. */
  test(text: string): bool {
    return this.run<StringUnits>(new StringUnits(text), text.length, i64.MAX_VALUE) == 1;
  }

  /**
   * 1 when the pattern matches anywhere in text, 0 when it does not, -1 when the answer would take
   * more than `budget` steps (regexSteps tells how many were spent).
   */
  testWithin(text: string, budget: i64): i32 {
    return this.run<StringUnits>(new StringUnits(text), text.length, budget);
  }

  /**
   * testWithin over a text of n UTF-16 code units read through src.unit(i), so that a text need
   * not be one string in memory. The matcher reads positions in increasing order (a position, at
   * most the one after it, then later ones), which lets a reader walk pieces of text in turn.
   */
  testUnitsWithin<S>(src: S, n: i32, budget: i64): i32 {
    return this.run<S>(src, n, budget);
  }

  /** The end (exclusive) of the match findUnitsWithin found last. */
  matchEnd: i32 = 0;

  /** True when the pattern can match an empty text somewhere (a span finder refuses it). */
  get matchesEmpty(): bool {
    return !this.useFirst;
  }

  /**
   * Where the pattern first matches in units [from, n) of src: the start of the leftmost match
   * (matchEnd its end), -1 for no match, -2 when the answer would take more than `budget` steps.
   * Among matches starting there the one a backtracking engine would pick (leftmost-first, as
   * RE2): threads are kept in priority order, each carrying its start, and once a thread matches
   * the threads of lower priority are dropped and no new ones start. Linear like run().
   */
  findUnitsWithin<S>(src: S, n: i32, from: i32, budget: i64): i32 {
    const limit = regexSteps + budget < regexSteps ? i64.MAX_VALUE : regexSteps + budget;
    const fold = this.caseInsensitive;
    const prog = this.op;
    let starts = this.curStart;
    let nstarts = this.nxtStart;
    if (starts.length < prog.length) {
      starts = new StaticArray<i32>(prog.length);
      nstarts = new StaticArray<i32>(prog.length);
      this.curStart = starts;
      this.nxtStart = nstarts;
    }
    let clistLen = 0;
    let pos = from;
    let prev: i32 = -1;
    if (from > 0) {
      prev = src.unit(from - 1);
      if (prev >= 0xdc00 && prev < 0xe000 && from > 1) {
        const hi = src.unit(from - 2);
        if (hi >= 0xd800 && hi < 0xdc00) prev = 0x10000 + ((hi - 0xd800) << 10) + (prev - 0xdc00);
      }
      if (fold) prev = foldCase(prev);
    }
    let cur = codePointAt<S>(src, pos, n, fold);
    let w = cpWidth;
    let steps: i64 = 0;
    let found = -1;
    let foundEnd = 0;
    while (true) {
      if (clistLen == 0) {
        if (found >= 0) break;
        if (this.anchoredStart && pos > 0) break;
        if (this.useFirst) {
          while (cur >= 0 && !this.inFirst(cur)) {
            steps++;
            pos += w;
            prev = cur;
            cur = codePointAt<S>(src, pos, n, fold);
            w = cpWidth;
          }
          if (cur < 0) break;
        }
        this.nextGen();
      }
      // A new thread starts here, last in priority, until a match is found.
      if (found < 0) {
        const before = clistLen;
        const added = this.add(this.cur, clistLen, 0, prev, cur);
        steps += <i64>this.addSteps;
        if (added < 0) {
          // An empty match (refused for span finders at configure; kept correct all the same).
          found = pos;
          foundEnd = pos;
          break;
        }
        for (let k = before; k < added; k++) unchecked((starts[k] = pos));
        clistLen = added;
      }
      if (cur < 0) break;
      const npos = pos + w;
      const next = codePointAt<S>(src, npos, n, fold);
      const nw = cpWidth;
      this.nextGen();
      let nlen = 0;
      const clist = this.cur;
      for (let i = 0; i < clistLen; i++) {
        const pc = unchecked(clist[i]);
        steps++;
        const ok = this.consumes(pc, cur);
        if (!ok) continue;
        const before = nlen;
        const r = this.add(this.nxt, nlen, pc + 1, cur, next);
        steps += <i64>this.addSteps;
        const st = unchecked(starts[i]);
        if (r < 0) {
          // This thread matches: the best so far; threads after it rank lower and are dropped.
          found = st;
          foundEnd = npos;
          nlen = this.addedBeforeMatch;
          for (let k = before; k < nlen; k++) unchecked((nstarts[k] = st));
          break;
        }
        for (let k = before; k < r; k++) unchecked((nstarts[k] = st));
        nlen = r;
      }
      if (regexSteps + steps > limit) {
        regexSteps += steps;
        return -2;
      }
      const t = this.cur;
      this.cur = this.nxt;
      this.nxt = t;
      const ts = starts;
      starts = nstarts;
      nstarts = ts;
      clistLen = nlen;
      prev = cur;
      pos = npos;
      cur = next;
      w = nw;
    }
    this.curStart = starts;
    this.nxtStart = nstarts;
    regexSteps += steps;
    this.matchEnd = foundEnd;
    return found;
  }

  /** Whether the instruction at pc (a character, any, or a class) takes the code point cur. */
  @inline private consumes(pc: i32, cur: i32): bool {
    const op = unchecked(this.op[pc]);
    if (op == OP_CHAR) return unchecked(this.x[pc]) == cur;
    if (op == OP_ANY) return cur != 0x0a;
    if (op == OP_ANYNL) return true;
    if (op == OP_CLASS) return unchecked(this.classes[unchecked(this.x[pc])]).has(cur);
    return false;
  }

  private curStart: StaticArray<i32> = new StaticArray<i32>(0);
  private nxtStart: StaticArray<i32> = new StaticArray<i32>(0);
  private addedBeforeMatch: i32 = 0;

  private run<S>(src: S, n: i32, budget: i64): i32 {
    const limit = regexSteps + budget < regexSteps ? i64.MAX_VALUE : regexSteps + budget;
    const fold = this.caseInsensitive;
    let clistLen = 0;
    let pos = 0;
    let prev: i32 = -1;
    // Code point at pos and its width.
    let cur = codePointAt<S>(src, 0, n, fold);
    let w = cpWidth;
    let steps: i64 = 0;
    while (true) {
      // Skip ahead while no thread is alive and no match can start here.
      if (clistLen == 0) {
        if (this.anchoredStart && pos > 0) break;
        if (this.useFirst) {
          while (cur >= 0 && !this.inFirst(cur)) {
            steps++;
            pos += w;
            prev = cur;
            cur = codePointAt<S>(src, pos, n, fold);
            w = cpWidth;
          }
          if (cur < 0) break; // end of text: nothing can start (no empty match possible)
        }
      }
      // Start a thread at this position (unanchored search). The list of this position was built
      // under the current generation; an empty list may come from an earlier position, so it
      // gets a fresh one.
      if (clistLen == 0) this.nextGen();
      const added = this.add(this.cur, clistLen, 0, prev, cur);
      if (added < 0) { regexSteps += steps + <i64>this.addSteps; return 1; }
      clistLen = added;
      steps += <i64>this.addSteps;
      if (cur < 0) break;
      // The code point after cur (for assertions at the next position).
      const npos = pos + w;
      const next = codePointAt<S>(src, npos, n, fold);
      const nw = cpWidth;
      this.nextGen();
      let nlen = 0;
      const clist = this.cur;
      for (let i = 0; i < clistLen; i++) {
        const pc = unchecked(clist[i]);
        steps++;
        const ok = this.consumes(pc, cur);
        if (ok) {
          const r = this.add(this.nxt, nlen, pc + 1, cur, next);
          steps += <i64>this.addSteps;
          if (r < 0) { regexSteps += steps; return 1; }
          nlen = r;
        }
      }
      // Out of budget? (checked once per position: the overshoot is at most one position's work)
      if (regexSteps + steps > limit) {
        regexSteps += steps;
        return -1;
      }
      // Swap the lists.
      const t = this.cur;
      this.cur = this.nxt;
      this.nxt = t;
      clistLen = nlen;
      prev = cur;
      pos = npos;
      cur = next;
      w = nw;
    }
    regexSteps += steps;
    return 0;
  }

  private addSteps: i32 = 0;

  private nextGen(): void {
    if (this.gen >= 0x7ffffff0) {
      // Wrap without ever meeting a stale mark.
      const seen = this.seen;
      for (let i = 0; i < seen.length; i++) unchecked((seen[i] = 0));
      this.gen = 0;
    }
    this.gen++;
  }

  /**
   * Adds pc and its empty-width closure at the current position to list (length len), with prev
   * and cur the characters around the position. Returns the new length, or -1 if MATCH is reached.
   */
  private add(list: StaticArray<i32>, len: i32, pc0: i32, prev: i32, cur: i32): i32 {
    const stack = this.stack;
    const seen = this.seen;
    const gen = this.gen;
    let sp = 0;
    let steps = 0;
    unchecked((stack[sp++] = pc0));
    while (sp > 0) {
      const pc = unchecked(stack[--sp]);
      steps++;
      if (unchecked(seen[pc]) == gen) continue;
      unchecked((seen[pc] = gen));
      const op = unchecked(this.op[pc]);
      if (op == OP_JMP) {
        unchecked((stack[sp++] = unchecked(this.x[pc])));
      } else if (op == OP_SPLIT) {
        unchecked((stack[sp++] = unchecked(this.y[pc])));
        unchecked((stack[sp++] = unchecked(this.x[pc])));
      } else if (op == OP_ASSERT) {
        if (assertHolds(unchecked(this.x[pc]), prev, cur)) unchecked((stack[sp++] = pc + 1));
      } else if (op == OP_MATCH) {
        this.addSteps = steps;
        this.addedBeforeMatch = len;
        return -1;
      } else {
        unchecked((list[len++] = pc));
      }
    }
    this.addSteps = steps;
    return len;
  }
}

/** The width in code units (1 or 2; 0 past the text) of the code point codePointAt read last. */
let cpWidth: i32 = 0;

/**
 * The code point at unit pos of a text of n units read through src.unit(i): a surrogate pair whose
 * halves both lie before n is one code point; case-folded when `fold`. -1 at or past n. Its width goes
 * to cpWidth (the matchers step by it).
 */
@inline function codePointAt<S>(src: S, pos: i32, n: i32, fold: bool): i32 {
  if (pos >= n) {
    cpWidth = 0;
    return -1;
  }
  let c = src.unit(pos);
  cpWidth = 1;
  if (c >= 0xd800 && c < 0xdc00 && pos + 1 < n) {
    const lo = src.unit(pos + 1);
    if (lo >= 0xdc00 && lo < 0xe000) {
      c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
      cpWidth = 2;
    }
  }
  return fold ? foldCase(c) : c;
}

/** A string's code units, for Regex.run. */
@final class StringUnits {
  base: usize;
  constructor(text: string) {
    this.base = changetype<usize>(text);
  }
  @inline unit(i: i32): i32 {
    return <i32>load<u16>(this.base + (<usize>i << 1));
  }
}

function assertHolds(kind: i32, prev: i32, cur: i32): bool {
  switch (kind) {
    case A_BOT: return prev < 0;
    case A_EOT: return cur < 0;
    case A_BOL: return prev < 0 || prev == 0x0a;
    case A_EOL: return cur < 0 || cur == 0x0a;
    case A_WORD: return (prev >= 0 && isWordChar(prev)) != (cur >= 0 && isWordChar(cur));
    default: return (prev >= 0 && isWordChar(prev)) == (cur >= 0 && isWordChar(cur));
  }
}
