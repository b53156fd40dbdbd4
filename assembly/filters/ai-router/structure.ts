// Structural signals of a prompt for the classifier, in one pass over its text: code fences and
// code-like lines, list items, questions, arithmetic, non-Latin script.
import { cu } from "./words";

export class Structure {
  fences: i32 = 0; // ``` markers
  inlineCode: i32 = 0; // `x` spans
  codeLines: i32 = 0; // lines that look like code
  listItems: i32 = 0; // lines starting with -, *, •, or "1." / "1)"
  questions: i32 = 0; // '?' marks
  mathExprs: i32 = 0; // digit-operator-digit runs, powers, equations with a variable
  nonLatin: i32 = 0; // characters beyond Latin script
}

/** One pass over the text for the structural signals. */
export function scanStructure(text: string): Structure {
  const s = new Structure();
  const n = text.length;
  let lineFirst = -1; // first non-space character of the line
  let lineLast = -1; // last non-space character
  let lineSymbols = 0;
  let lineLen = 0;
  let inFence = false;
  let i = 0;
  while (i <= n) {
    const c = i < n ? cu(text, i) : 0x0a;
    // Most of a text is letters and spaces, which only extend a line: a letter other than the
    // arithmetic's n, x and y counts towards it and starts it (a list item starts otherwise), a
    // space does nothing. The checks below would find nothing else in either.
    if (c >= 0x61 && c <= 0x7a && c != 0x6e && c != 0x78 && c != 0x79) {
      if (lineFirst < 0) lineFirst = c;
      lineLast = c;
      lineLen++;
      i++;
      continue;
    }
    if (c == 0x20) {
      i++;
      continue;
    }
    if (c == 0x0a) {
      // End of line: judge it.
      if (lineLen > 0) {
        if (!inFence && lineLooksLikeCode(lineFirst, lineLast, lineSymbols, lineLen)) s.codeLines++;
        else if (inFence) s.codeLines++;
      }
      lineFirst = -1;
      lineLast = -1;
      lineSymbols = 0;
      lineLen = 0;
      i++;
      continue;
    }
    if (c == 0x60) {
      if (i + 2 < n && cu(text, i + 1) == 0x60 && cu(text, i + 2) == 0x60) {
        s.fences++;
        inFence = !inFence;
        i += 3;
        lineLen = 0; // the fence line itself is not code
        // Skip the rest of the fence line (the language tag).
        while (i < n && cu(text, i) != 0x0a) i++;
        continue;
      }
      // Inline code: a closing backtick within 80 characters on the same line.
      let j = i + 1;
      while (j < n && j < i + 80 && cu(text, j) != 0x60 && cu(text, j) != 0x0a) j++;
      if (j < n && j > i + 1 && cu(text, j) == 0x60) {
        s.inlineCode++;
        i = j + 1;
        lineLen += 2;
        continue;
      }
    }
    if (c != 0x20 && c != 0x09 && c != 0x0d) {
      if (lineFirst < 0) {
        lineFirst = c;
        // List items: "- x", "* x", "• x", "1. x", "1) x".
        if ((c == 0x2d || c == 0x2a || c == 0x2022) && i + 1 < n && cu(text, i + 1) == 0x20) s.listItems++;
        else if (c >= 0x30 && c <= 0x39) {
          let j = i;
          while (j < n && j < i + 3 && isDigit(cu(text, j))) j++;
          if (j + 1 < n && (cu(text, j) == 0x2e || cu(text, j) == 0x29) && cu(text, j + 1) == 0x20) s.listItems++;
        }
      }
      lineLast = c;
      lineLen++;
      if (c == 0x7b || c == 0x7d || c == 0x3b || c == 0x28 || c == 0x29 || c == 0x3d || c == 0x5b || c == 0x5d || c == 0x3c || c == 0x3e) lineSymbols++;
    }
    if (c == 0x3f) s.questions++;
    if (c >= 0x370 && !(c >= 0x2000 && c <= 0x2bff)) s.nonLatin++; // not Latin, not punctuation/symbols
    // Arithmetic: digit [space] operator [space] digit, x^2, or 2x
    if (isDigit(c) || c == 0x78 || c == 0x79 || c == 0x6e) {
      let j = i + 1;
      while (j < n && isDigit(cu(text, j))) j++;
      let k = j;
      while (k < n && cu(text, k) == 0x20) k++;
      if (k < n) {
        const op = cu(text, k);
        if (op == 0x25 && isDigit(c) && k + 4 < n && cu(text, k + 1) == 0x20 && cu(text, k + 2) == 0x6f && cu(text, k + 3) == 0x66) {
          s.mathExprs++; // "15% of"
          i = k + 4;
          continue;
        }
        if (op == 0x2b || op == 0x2a || op == 0x2f || op == 0x5e || op == 0xd7 || op == 0xf7 || op == 0x3d || (op == 0x2d && k > j)) {
          let m = k + 1;
          while (m < n && cu(text, m) == 0x20) m++;
          if (m < n && (isDigit(cu(text, m)) || ((op == 0x5e || op == 0x3d) && isMathVar(cu(text, m))))) {
            // x/y-style operands must be single letters (not words like "yes").
            if (isDigit(c) || !isLetterAt(text, i + 1) && (i == 0 || !isLetterAt(text, i - 1))) {
              s.mathExprs++;
              i = m;
              continue;
            }
          }
        }
      }
    }
    if (c == 0x221a || c == 0x222b || c == 0x2211 || c == 0x03c0 || c == 0x2264 || c == 0x2265 || c == 0xb2) s.mathExprs++; // √ ∫ ∑ π ≤ ≥ ²
    i++;
  }
  return s;
}

export function startsListItem(s: string, i: i32): bool {
  while (i < s.length && (s.charCodeAt(i) == 0x20 || s.charCodeAt(i) == 0x09)) i++;
  if (i >= s.length) return false;
  const c = <i32>s.charCodeAt(i);
  return isDigit(c) || c == 0x2d || c == 0x2a || c == 0x2022;
}

@inline export function isDigit(c: i32): bool {
  return c >= 0x30 && c <= 0x39;
}

@inline function isMathVar(c: i32): bool {
  return c == 0x78 || c == 0x79 || c == 0x6e || c == 0x28;
}

function isLetterAt(text: string, i: i32): bool {
  if (i < 0 || i >= text.length) return false;
  const c = <i32>text.charCodeAt(i) | 0x20;
  return c >= 0x61 && c <= 0x7a;
}

function lineLooksLikeCode(first: i32, last: i32, symbols: i32, len: i32): bool {
  if (len < 4) return false;
  // Ends like a statement or a block, or is dense with code punctuation.
  if (last == 0x3b || last == 0x7b || (last == 0x7d && first == 0x7d)) return true;
  if (first == 0x23 && last != 0x3f && len < 40 && symbols > 0) return true; // #include, # comment with code
  return symbols * 6 >= len && symbols >= 3;
}
