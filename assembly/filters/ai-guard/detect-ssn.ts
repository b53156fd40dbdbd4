// US Social Security numbers written AAA-GG-SSSS (or with spaces), without the numbers the SSA never
// issues: area 000, 666 or 900-999, group 00, serial 0000. Nine digits without separators are not
// taken: too many other numbers look like that.
import { Hits } from "./hits";
import { unit, isDigit, isWordish } from "./text";

@inline function digitsAt<T>(t: usize, p: i32, k: i32): i32 {
  let v = 0;
  for (let i = 0; i < k; i++) {
    const c = unit<T>(t, p + i);
    if (!isDigit(c)) return -1;
    v = v * 10 + c - 0x30;
  }
  return v;
}

export function findSsns<T>(t: usize, n: i32, det: i32, hits: Hits): void {
  for (let i = 0; i + 11 <= n; i++) {
    if (!isDigit(unit<T>(t, i))) continue;
    if (i > 0) {
      const b = unit<T>(t, i - 1);
      if (isWordish(b) || b == 0x2d || b == 0x2e || b == 0x2b || b == 0x2f) continue;
    }
    const sep = unit<T>(t, i + 3);
    if ((sep != 0x2d && sep != 0x20) || unit<T>(t, i + 6) != sep) continue;
    const area = digitsAt<T>(t, i, 3), group = digitsAt<T>(t, i + 4, 2), serial = digitsAt<T>(t, i + 7, 4);
    if (area < 0 || group < 0 || serial < 0) continue;
    const end = i + 11;
    if (end < n) {
      const c = unit<T>(t, end);
      if (isWordish(c)) continue;
      if ((c == 0x2d || c == 0x2e || c == 0x20 || c == 0x2f) && end + 1 < n && isDigit(unit<T>(t, end + 1))) continue;
    }
    if (area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0) continue;
    hits.add(i, end, det);
    i = end - 1;
  }
}
