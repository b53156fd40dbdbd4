// International bank account numbers (ISO 13616): a country code, two check digits and the
// country's account number, at the exact length that country's IBANs have, written together or in
// groups of four split by single spaces, and passing the mod-97 check (the number with its first
// four characters moved to the end, letters as 10 to 35, leaves 1 when divided by 97). Countries
// outside the table below are not recognised.
import { Hits } from "./hits";
import { unit, isDigit, isUpper, isWordish } from "./text";

// Country code and IBAN length, from the IBAN registry (SWIFT, ISO 13616).
const LENGTHS =
  "AD24AE23AL28AT20AZ28BA20BE16BG22BH22BR29CH21CR22CY28CZ24DE22DK18DO28EE20EG29ES24FI18FO18FR27GB22GE22" +
  "GI23GL18GR27GT28HR21HU28IE22IL23IS26IT27JO30KW30KZ20LB28LI21LT20LU20LV21MC27MD24ME22MK19MR27MT31MU30" +
  "NL18NO15PK24PL28PS29PT25QA29RO24RS22SA24SE24SI19SK24SM27TN24TR26UA29VG24XK20";

function ibanLength(a: i32, b: i32): i32 {
  for (let i = 0; i < LENGTHS.length; i += 4) {
    if (<i32>LENGTHS.charCodeAt(i) == a && <i32>LENGTHS.charCodeAt(i + 1) == b) {
      return (<i32>LENGTHS.charCodeAt(i + 2) - 0x30) * 10 + <i32>LENGTHS.charCodeAt(i + 3) - 0x30;
    }
  }
  return 0;
}

const chars = new StaticArray<i32>(34);

export function findIbans<T>(t: usize, n: i32, det: i32, hits: Hits): void {
  for (let i = 0; i + 15 <= n; i++) {
    if (!isUpper(unit<T>(t, i)) || (i > 0 && isWordish(unit<T>(t, i - 1)))) continue;
    const end = ibanAt<T>(t, n, i);
    if (end > 0) {
      hits.add(i, end, det);
      i = end - 1;
    }
  }
}

function ibanAt<T>(t: usize, n: i32, start: i32): i32 {
  const a = unit<T>(t, start), b = unit<T>(t, start + 1);
  if (!isUpper(b) || !isDigit(unit<T>(t, start + 2)) || !isDigit(unit<T>(t, start + 3))) return -1;
  const len = ibanLength(a, b);
  if (len == 0) return -1;
  let p = start;
  let count = 0;
  while (count < len) {
    if (p >= n) return -1;
    let c = unit<T>(t, p);
    if (c == 0x20 && count > 0 && count % 4 == 0 && p + 1 < n) {
      p++;
      c = unit<T>(t, p);
    }
    if (!isDigit(c) && !isUpper(c)) return -1;
    chars[count++] = c;
    p++;
  }
  if (p < n && isWordish(unit<T>(t, p))) return -1;
  // mod 97 of the rearranged number, a digit (or a letter's two digits) at a time.
  let r = 0;
  for (let k = 0; k < len; k++) {
    const c = chars[(k + 4) % len];
    if (isDigit(c)) r = (r * 10 + c - 0x30) % 97;
    else r = (r * 100 + c - 0x41 + 10) % 97;
  }
  return r == 1 ? p : -1;
}
