// Phone numbers in the forms people write them, not any long number: international (+ and 8 to 15
// digits, E.164's most, with or without groupings; or a 00 prefix and separated groups), national
// numbers with a trunk 0 (UK 020 7946 0958, FR 01 23 45 67 89, DE 030 1234567: 10 or 11 digits in
// groups of two or more), and North American numbers ((555) 123-4567, 555.123.4567, 1-800-555-0199).
// A run of digits with no separator and no '+' (an order number, a Unix time, a date 20240115) is
// never a phone number; neither are dates, times, versions or IP addresses (their groups do not fit).
import { Hits } from "./hits";
import { unit, isDigit, isWordish, afterDigits } from "./text";

const MAX_GROUPS = 8;
const groupLen = new StaticArray<i32>(MAX_GROUPS);
const groupFirst = new StaticArray<i32>(MAX_GROUPS);

/** Characters a phone number may not follow (it would be the middle of something else). */
@inline function blocksStart(c: i32): bool {
  return isWordish(c) || c == 0x2b || c == 0x2e || c == 0x2d || c == 0x2f || c == 0x5f || c == 0x40 || c == 0x3a;
}

export function findPhones<T>(t: usize, n: i32, det: i32, hits: Hits): void {
  let i = 0;
  while (i < n) {
    const c = unit<T>(t, i);
    if ((c == 0x2b || c == 0x28 || isDigit(c)) && (i == 0 || !blocksStart(unit<T>(t, i - 1))) && !afterDigits<T>(t, i)) {
      const end = phoneAt<T>(t, n, i);
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

/** The end of the phone number that starts at `start`, or -1. Reads at most about 40 units. */
function phoneAt<T>(t: usize, n: i32, start: i32): i32 {
  let p = start;
  const plus = unit<T>(t, p) == 0x2b;
  if (plus) p++;
  let groups = 0;
  let digits = 0;
  let first = -1; // the first digit
  let second = -1;
  let end = -1;
  while (p < n && groups < MAX_GROUPS) {
    let open = false;
    if (unit<T>(t, p) == 0x28) {
      open = true;
      p++;
    }
    const gs = p;
    while (p < n && isDigit(unit<T>(t, p)) && p - gs < 16) p++;
    const g = p - gs;
    if (g == 0) break;
    if (open) {
      if (p >= n || unit<T>(t, p) != 0x29) break;
      p++;
    }
    if (first < 0) {
      first = unit<T>(t, gs);
      second = g > 1 ? unit<T>(t, gs + 1) : -1;
    }
    groupFirst[groups] = unit<T>(t, gs);
    groupLen[groups++] = g;
    digits += g;
    end = p;
    if (digits > 15) return -1;
    // A separator (one space, hyphen or dot), then another group; after ')' none is needed.
    let q = p;
    if (q < n) {
      const s = unit<T>(t, q);
      if (s == 0x20 || s == 0x2d || s == 0x2e) q++;
    }
    if (q < n && (unit<T>(t, q) == 0x28 || (isDigit(unit<T>(t, q)) && (q > p || open)))) {
      p = q;
      continue;
    }
    break;
  }
  if (end < 0) return -1;
  // What follows must end it: not a letter or digit, not a separator and more digits.
  if (end < n) {
    const c = unit<T>(t, end);
    if (isWordish(c) || c == 0x40) return -1;
    if ((c == 0x2e || c == 0x2d || c == 0x2f || c == 0x3a) && end + 1 < n && isDigit(unit<T>(t, end + 1))) return -1;
  }
  if (plus) return digits >= 8 && digits <= 15 && first != 0x30 ? end : -1;
  if (groups < 2) return -1;
  if (first == 0x30 && second == 0x30) return digits >= 10 && digits <= 15 ? end : -1;
  if (first == 0x30) {
    if (digits < 10 || digits > 11) return -1;
    for (let k = 0; k < groups; k++) if (groupLen[k] < 2) return -1;
    return end;
  }
  // North American: [3,3,4] or 1 [3,3,4]; the area code begins with 2-9.
  let k = 0;
  if (groups == 4 && groupLen[0] == 1 && first == 0x31) k = 1;
  else if (groups != 3) return -1;
  if (groupLen[k] != 3 || groupLen[k + 1] != 3 || groupLen[k + 2] != 4) return -1;
  return groupFirst[k] >= 0x32 ? end : -1;
}
