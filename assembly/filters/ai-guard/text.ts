// How the detectors read a text: the units of a JSON string value where they lie, as ASCII bytes of
// the request body (T = u8, a value without escapes or non-ASCII bytes) or as a decoded UTF-16
// string (T = u16). Offsets are UTF-16 units either way, so a hit is an offset range of the string
// value's decoded text (what actions.ts masks).

/** Unit i of the text at base (no bounds check: callers keep 0 <= i < n). */
@inline export function unit<T>(base: usize, i: i32): i32 {
  return <i32>load<T>(base + (<usize>i << alignof<T>()));
}

@inline export function isDigit(c: i32): bool {
  return c >= 0x30 && c <= 0x39;
}

@inline export function isUpper(c: i32): bool {
  return c >= 0x41 && c <= 0x5a;
}

@inline export function isLetter(c: i32): bool {
  return (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a;
}

@inline export function isAlnum(c: i32): bool {
  return isDigit(c) || isLetter(c);
}

@inline export function isHex(c: i32): bool {
  return isDigit(c) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66);
}

/** A letter or digit of any script (U+00C0 and up count): a token that goes on. */
@inline export function isWordish(c: i32): bool {
  return isAlnum(c) || c >= 0xc0;
}

/** Unit before `at`, or -1 at the start. */
@inline export function before<T>(base: usize, at: i32): i32 {
  return at > 0 ? unit<T>(base, at - 1) : -1;
}

/** Unit at `at`, or -1 past the end. */
@inline export function at<T>(base: usize, n: i32, i: i32): i32 {
  return i < n ? unit<T>(base, i) : -1;
}

/** Whether the units at i spell the ASCII text s. */
export function spells<T>(base: usize, n: i32, i: i32, s: string): bool {
  const m = s.length;
  if (i + m > n) return false;
  for (let k = 0; k < m; k++) if (unit<T>(base, i + k) != <i32>s.charCodeAt(k)) return false;
  return true;
}

/**
 * Whether the text before i is a digit and one separator ("3704 0044 ..."): a number starting at i
 * would be the tail of a longer one (an account number, a failed IBAN, a list of numbers), not a
 * phone or card number of its own.
 */
@inline export function afterDigits<T>(t: usize, i: i32): bool {
  if (i < 2) return false;
  const s = unit<T>(t, i - 1);
  return (s == 0x20 || s == 0x2d || s == 0x2e) && isDigit(unit<T>(t, i - 2));
}
