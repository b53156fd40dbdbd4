// E-mail addresses: local@domain.tld, the domain two or more labels with a letters-only top label.
// Found from each '@': the local part is read backwards, the domain forwards, so a text is read a
// bounded number of times whatever it holds (each backward read stops at the '@' before it).
import { Hits } from "./hits";
import { unit, isAlnum, isLetter } from "./text";

@inline function isLocal(c: i32): bool {
  return isAlnum(c) || c == 0x2e || c == 0x5f || c == 0x25 || c == 0x2b || c == 0x2d; // . _ % + -
}

@inline function isLabel(c: i32): bool {
  return isAlnum(c) || c == 0x2d;
}

export function findEmails<T>(t: usize, n: i32, det: i32, hits: Hits): void {
  let floor = 0; // nothing before it belongs to a new address
  for (let i = 0; i < n; i++) {
    if (unit<T>(t, i) != 0x40) continue;
    let s = i;
    while (s > floor && isLocal(unit<T>(t, s - 1))) s--;
    while (s < i && unit<T>(t, s) == 0x2e) s++; // a local part does not start with a dot
    if (s == i || unit<T>(t, i - 1) == 0x2e) {
      floor = i + 1;
      continue;
    }
    // The domain: labels of letters, digits and inner hyphens, joined by dots.
    let p = i + 1;
    let labels = 0;
    let end = -1;
    let tldOk = false;
    while (p < n) {
      const ls = p;
      while (p < n && isLabel(unit<T>(t, p))) p++;
      const len = p - ls;
      if (len == 0 || len > 63 || unit<T>(t, ls) == 0x2d || unit<T>(t, p - 1) == 0x2d) break;
      labels++;
      end = p;
      tldOk = len >= 2;
      for (let k = ls; k < p && tldOk; k++) if (!isLetter(unit<T>(t, k))) tldOk = false;
      if (p + 1 < n && unit<T>(t, p) == 0x2e && isLabel(unit<T>(t, p + 1))) p++;
      else break;
    }
    if (labels >= 2 && tldOk) {
      hits.add(s, end, det);
      floor = end;
      i = end - 1;
    } else floor = i + 1;
  }
}
