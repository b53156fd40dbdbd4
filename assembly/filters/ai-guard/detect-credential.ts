// Credentials that must not reach a provider: OpenAI keys (sk-..., sk-proj-...), Anthropic keys
// (sk-ant-...), AWS access key ids (AKIA / ASIA and 16 more), GitHub tokens (ghp_, gho_, ghu_, ghs_,
// ghr_ and 36 more; github_pat_...), PEM private-key blocks (from BEGIN to END, or to the end of
// the text when the END line is missing) and JSON Web Tokens (three base64url parts, the first two
// JSON objects: "eyJ").
import { Hits } from "./hits";
import { unit, isDigit, isUpper, isAlnum, isLetter, spells } from "./text";

@inline function isKeyChar(c: i32): bool {
  return isAlnum(c) || c == 0x2d || c == 0x5f;
}

export function findCredentials<T>(t: usize, n: i32, det: i32, hits: Hits): void {
  let i = 0;
  while (i < n) {
    const c = unit<T>(t, i);
    let end = -1;
    if (c == 0x2d) end = pemAt<T>(t, n, i);
    else if (i == 0 || !isKeyChar(unit<T>(t, i - 1))) {
      if (c == 0x73) end = secretKeyAt<T>(t, n, i);
      else if (c == 0x41) end = awsKeyAt<T>(t, n, i);
      else if (c == 0x67) end = githubAt<T>(t, n, i);
      else if (c == 0x65) end = jwtAt<T>(t, n, i);
    }
    if (end > 0) {
      hits.add(i, end, det);
      i = end;
      continue;
    }
    i++;
  }
}

/** End of the run of key characters from p. */
function keyRun<T>(t: usize, n: i32, p: i32): i32 {
  while (p < n && isKeyChar(unit<T>(t, p))) p++;
  return p;
}

/** sk-... (OpenAI, Anthropic's sk-ant-...): at least 20 more key characters, letters and digits among them. */
function secretKeyAt<T>(t: usize, n: i32, i: i32): i32 {
  if (!spells<T>(t, n, i, "sk-")) return -1;
  const end = keyRun<T>(t, n, i + 3);
  if (end - (i + 3) < 20) return -1;
  let digit = false, letter = false;
  for (let k = i + 3; k < end; k++) {
    const c = unit<T>(t, k);
    if (isDigit(c)) digit = true;
    else if (isLetter(c)) letter = true;
  }
  return digit && letter ? end : -1;
}

/** AKIA / ASIA and 16 upper-case letters or digits. */
function awsKeyAt<T>(t: usize, n: i32, i: i32): i32 {
  if (!spells<T>(t, n, i, "AKIA") && !spells<T>(t, n, i, "ASIA")) return -1;
  const end = i + 20;
  if (end > n) return -1;
  for (let k = i + 4; k < end; k++) {
    const c = unit<T>(t, k);
    if (!isUpper(c) && !isDigit(c)) return -1;
  }
  return end < n && isKeyChar(unit<T>(t, end)) ? -1 : end;
}

function githubAt<T>(t: usize, n: i32, i: i32): i32 {
  if (spells<T>(t, n, i, "github_pat_")) {
    const end = keyRun<T>(t, n, i + 11);
    return end - (i + 11) >= 22 ? end : -1;
  }
  if (i + 4 > n || unit<T>(t, i + 1) != 0x68 || unit<T>(t, i + 3) != 0x5f) return -1;
  const k = unit<T>(t, i + 2);
  if (k != 0x70 && k != 0x6f && k != 0x75 && k != 0x73 && k != 0x72) return -1; // p o u s r
  let p = i + 4;
  while (p < n && isAlnum(unit<T>(t, p))) p++;
  if (p - (i + 4) < 36 || (p < n && isKeyChar(unit<T>(t, p)))) return -1;
  return p;
}

@inline function isB64url(c: i32): bool {
  return isAlnum(c) || c == 0x2d || c == 0x5f;
}

/** eyJ....eyJ....sig: header and payload of at least 10 characters, a signature of at least 16. */
function jwtAt<T>(t: usize, n: i32, i: i32): i32 {
  if (!spells<T>(t, n, i, "eyJ")) return -1;
  let p = i;
  while (p < n && isB64url(unit<T>(t, p))) p++;
  if (p - i < 10 || p >= n || unit<T>(t, p) != 0x2e || !spells<T>(t, n, p + 1, "eyJ")) return -1;
  const s2 = p + 1;
  p = s2;
  while (p < n && isB64url(unit<T>(t, p))) p++;
  if (p - s2 < 10 || p >= n || unit<T>(t, p) != 0x2e) return -1;
  const s3 = p + 1;
  p = s3;
  while (p < n && isB64url(unit<T>(t, p))) p++;
  return p - s3 >= 16 ? p : -1;
}

/** -----BEGIN ... PRIVATE KEY----- to its -----END ...----- line (or the end of the text). */
function pemAt<T>(t: usize, n: i32, i: i32): i32 {
  if (!spells<T>(t, n, i, "-----BEGIN ")) return -1;
  // The label, on this line, up to the closing dashes.
  let p = i + 11;
  while (p < n && p - i < 80 && unit<T>(t, p) != 0x2d && unit<T>(t, p) != 0x0a) p++;
  if (!spells<T>(t, n, p, "-----") || p - 11 < i + 11 || !spells<T>(t, n, p - 11, "PRIVATE KEY")) return -1;
  p += 5;
  // The END line.
  while (p < n) {
    if (unit<T>(t, p) == 0x2d && spells<T>(t, n, p, "-----END ")) {
      let q = p + 9;
      while (q < n && q - p < 80 && unit<T>(t, q) != 0x0a) {
        if (spells<T>(t, n, q, "-----")) return q + 5;
        q++;
      }
      return q;
    }
    p++;
  }
  return n;
}
