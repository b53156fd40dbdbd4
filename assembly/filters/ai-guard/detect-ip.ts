// IP addresses. IPv4: four dotted decimal numbers 0-255 without leading zeros (1.2.3.4.5 and
// 01.02.03.04 are not addresses). IPv6 (RFC 4291 text forms): eight groups of 1-4 hex digits, or
// fewer with one "::", optionally ending in a dotted IPv4 address; times (10:30:00) and MAC
// addresses (six groups) are not.
import { Hits } from "./hits";
import { unit, isDigit, isHex, isWordish } from "./text";

export function findIps<T>(t: usize, n: i32, det: i32, hits: Hits): void {
  let i = 0;
  while (i < n) {
    const c = unit<T>(t, i);
    const b = i > 0 ? unit<T>(t, i - 1) : -1;
    if ((isHex(c) || c == 0x3a) && !(isWordish(b) || b == 0x2e || b == 0x3a || b == 0x2d || b == 0x5f)) {
      let end = isDigit(c) ? ipv4At<T>(t, n, i) : -1;
      if (end < 0) end = ipv6At<T>(t, n, i);
      if (end > 0) {
        hits.add(i, end, det);
        i = end;
        continue;
      }
    }
    // Not a start: step over the rest of its run too (none of its characters can start one).
    if (isHex(unit<T>(t, i))) while (i < n && isHex(unit<T>(t, i))) i++;
    else i++;
  }
}

/** The end of the dotted IPv4 address at p, or -1; it must not go on (1.2.3.4.5, 1.2.3.45x). */
function ipv4At<T>(t: usize, n: i32, p: i32): i32 {
  for (let k = 0; k < 4; k++) {
    if (k > 0) {
      if (p >= n || unit<T>(t, p) != 0x2e) return -1;
      p++;
    }
    const s = p;
    let v = 0;
    while (p < n && isDigit(unit<T>(t, p)) && p - s < 4) {
      v = v * 10 + unit<T>(t, p) - 0x30;
      p++;
    }
    const len = p - s;
    if (len == 0 || len > 3 || v > 255 || (len > 1 && unit<T>(t, s) == 0x30)) return -1;
  }
  if (p < n) {
    const c = unit<T>(t, p);
    if (isWordish(c)) return -1;
    if ((c == 0x2e || c == 0x2d) && p + 1 < n && isDigit(unit<T>(t, p + 1))) return -1;
  }
  return p;
}

function ipv6At<T>(t: usize, n: i32, start: i32): i32 {
  let p = start;
  let groups = 0;
  let compressed = false;
  let colons = 0;
  if (p + 1 < n && unit<T>(t, p) == 0x3a && unit<T>(t, p + 1) == 0x3a) {
    compressed = true;
    colons = 2;
    p += 2;
  } else if (unit<T>(t, p) == 0x3a) return -1;
  let end = compressed ? p : -1;
  while (p < n && groups < 8) {
    // A final dotted IPv4 address counts as two groups.
    if (groups <= 6 && (compressed || groups == 6) && colons > 0 && isDigit(unit<T>(t, p))) {
      const v4 = ipv4At<T>(t, n, p);
      if (v4 > 0) {
        groups += 2;
        end = v4;
        p = v4;
        break;
      }
    }
    const s = p;
    while (p < n && isHex(unit<T>(t, p)) && p - s < 5) p++;
    const len = p - s;
    if (len == 0 || len > 4) return -1;
    groups++;
    end = p;
    if (p + 1 < n && unit<T>(t, p) == 0x3a) {
      if (unit<T>(t, p + 1) == 0x3a) {
        if (compressed) return -1;
        compressed = true;
        colons += 2;
        p += 2;
        end = p;
        if (p >= n || !isHex(unit<T>(t, p))) break;
        continue;
      }
      if (isHex(unit<T>(t, p + 1))) {
        colons++;
        p++;
        continue;
      }
    }
    break;
  }
  if (colons < 2 || groups == 0 && !compressed) return -1;
  if (compressed ? groups > 7 : groups != 8) return -1;
  if (end < n) {
    const c = unit<T>(t, end);
    if (isWordish(c) || c == 0x3a || c == 0x2e && end + 1 < n && isHex(unit<T>(t, end + 1))) return -1;
  }
  return end;
}
