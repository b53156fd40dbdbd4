// Payment card numbers: 13 to 19 digits, written together or in groups of 3 to 6 split by one space
// or hyphen (the same one throughout), beginning like a card network's numbers (2 to 6), and passing
// the Luhn check (ISO/IEC 7812), which one random number in ten passes: the grouping and the first
// digit keep the others out.
import { Hits } from "./hits";
import { unit, isDigit, isWordish, afterDigits } from "./text";

@inline function blocksStart(c: i32): bool {
  return isWordish(c) || c == 0x2d || c == 0x2e || c == 0x2f || c == 0x5f || c == 0x2b;
}

export function findCards<T>(t: usize, n: i32, det: i32, hits: Hits): void {
  let i = 0;
  while (i < n) {
    if (isDigit(unit<T>(t, i)) && (i == 0 || !blocksStart(unit<T>(t, i - 1))) && !afterDigits<T>(t, i)) {
      const end = cardAt<T>(t, n, i);
      if (end > 0) {
        hits.add(i, end, det);
        i = end;
        continue;
      }
    }
    // Not a start: step over the rest of its run too (none of its characters can start one).
    if (isDigit(unit<T>(t, i))) while (i < n && isDigit(unit<T>(t, i))) i++;
    else i++;
  }
}

// Group ends and digit counts of the run being read (a card has at most 19 digits: 19 groups).
const groupEnd = new StaticArray<i32>(20);
const groupDigits = new StaticArray<i32>(20);

/**
 * The end of the card number at `start`, or -1. The run of digit groups is read whole; when it is
 * not a card (a card followed by " 10" in a list, a date after it), shorter runs of its first groups
 * are tried, longest first.
 */
function cardAt<T>(t: usize, n: i32, start: i32): i32 {
  const first = unit<T>(t, start);
  if (first < 0x32 || first > 0x36) return -1;
  let p = start;
  let digits = 0;
  let groups = 0;
  let sep = -1;
  while (groups < 20) {
    const gs = p;
    while (p < n && isDigit(unit<T>(t, p)) && digits <= 19) {
      p++;
      digits++;
    }
    groupEnd[groups] = p;
    groupDigits[groups] = digits;
    groups++;
    if (digits > 19 || p - gs > 6 && groups > 1) break;
    if (p + 1 < n && isDigit(unit<T>(t, p + 1))) {
      const s = unit<T>(t, p);
      if ((s == 0x20 || s == 0x2d) && (sep < 0 || sep == s)) {
        sep = s;
        p++;
        continue;
      }
    }
    break;
  }
  for (let k = groups - 1; k >= 0; k--) {
    const d = groupDigits[k];
    if (d < 13 || d > 19) continue;
    const end = groupEnd[k];
    // Grouped: every group of 3 to 6 digits.
    let ok = true;
    if (k > 0) {
      for (let g = 0; g <= k && ok; g++) {
        const len = groupDigits[g] - (g > 0 ? groupDigits[g - 1] : 0);
        ok = len >= 3 && len <= 6;
      }
    }
    if (!ok) continue;
    if (end < n) {
      const c = unit<T>(t, end);
      if (isWordish(c)) continue;
      if ((c == 0x2e || c == 0x2f || c == 0x2c) && end + 1 < n && isDigit(unit<T>(t, end + 1))) continue;
      if (c == 0x2d && end + 1 < n && isDigit(unit<T>(t, end + 1)) && sep != 0x2d) continue;
    }
    if (luhn<T>(t, start, end)) return end;
  }
  return -1;
}

/** The Luhn check over the digits of [start, end) (separators skipped). */
export function luhn<T>(t: usize, start: i32, end: i32): bool {
  let sum = 0;
  let double = false;
  for (let k = end - 1; k >= start; k--) {
    const c = unit<T>(t, k);
    if (!isDigit(c)) continue;
    let d = c - 0x30;
    if (double) {
      d <<= 1;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 == 0;
}
