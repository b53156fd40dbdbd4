// Runs a policy's detectors over one text (T = u8: ASCII bytes where they lie in the body; u16: a
// decoded string) and collects what they find. Each family lives in its own detect-*.ts; custom
// patterns run on the linear-time engine (lib/regex.ts) within the request's step budget, keyword
// lists through lib/keywords.ts (case-insensitive, whole words).
import { regexSteps } from "../../lib/regex";
import { keywordAt } from "../../lib/keywords";
import { Hits } from "./hits";
import { Policy, A_OFF, D_EMAIL, D_PHONE, D_CARD, D_IBAN, D_SSN, D_IP, D_CREDENTIAL, D_INJECTION } from "./policy";
import { findInjection } from "./injection";
import { findEmails } from "./detect-email";
import { findPhones } from "./detect-phone";
import { findCards } from "./detect-card";
import { findIbans } from "./detect-iban";
import { findSsns } from "./detect-ssn";
import { findIps } from "./detect-ip";
import { findCredentials } from "./detect-credential";
import { unit } from "./text";

/** The regular-expression steps a request may still spend, and the first detector that ran out. */
export class Budget {
  left: i64;
  /** The custom detector whose answer is unknown (it ran out of steps), or -1. */
  exceededBy: i32 = -1;
  constructor(left: i64) { this.left = left; }
}

/** A text's units for the regex engine. */
@final class Units<T> {
  constructor(public base: usize) {}
  @inline unit(i: i32): i32 {
    return unit<T>(this.base, i);
  }
}

/**
 * `acts`: the actions that say which detectors run (the policy's request actions when null);
 * `injectionFactor`: how much an injection cue counts where this text sits (injection.ts factorOf).
 */
export function scanText<T>(t: usize, n: i32, p: Policy, hits: Hits, budget: Budget, acts: Array<i32> | null = null, injectionFactor: f64 = 1): void {
  if (n == 0) return;
  const a = acts === null ? p.actions : acts;
  if (a[D_INJECTION] != A_OFF) findInjection<T>(t, n, p.injectionThreshold, injectionFactor, D_INJECTION, hits);
  // Credentials first: a key's characters must not be taken for a phone number or an address.
  if (a[D_CREDENTIAL] != A_OFF) findCredentials<T>(t, n, D_CREDENTIAL, hits);
  if (a[D_EMAIL] != A_OFF) findEmails<T>(t, n, D_EMAIL, hits);
  if (a[D_CARD] != A_OFF) findCards<T>(t, n, D_CARD, hits);
  if (a[D_IBAN] != A_OFF) findIbans<T>(t, n, D_IBAN, hits);
  if (a[D_SSN] != A_OFF) findSsns<T>(t, n, D_SSN, hits);
  if (a[D_IP] != A_OFF) findIps<T>(t, n, D_IP, hits);
  if (a[D_PHONE] != A_OFF) findPhones<T>(t, n, D_PHONE, hits);
  const cb = p.customBase;
  for (let i = 0; i < p.customs.length; i++) {
    if (a[cb + i] == A_OFF) continue;
    const re = p.customs[i];
    const src = new Units<T>(t);
    let from = 0;
    while (from < n) {
      if (budget.left <= 0) {
        if (budget.exceededBy < 0) budget.exceededBy = cb + i;
        break;
      }
      const before = regexSteps;
      const at = re.findUnitsWithin<Units<T>>(src, n, from, budget.left);
      budget.left -= regexSteps - before;
      if (at == -2) {
        if (budget.exceededBy < 0) budget.exceededBy = cb + i;
        break;
      }
      if (at < 0) break;
      const end = re.matchEnd;
      hits.add(at, end, cb + i);
      from = end > at ? end : at + 1;
    }
  }
  const kb = p.keywordBase;
  for (let i = 0; i < p.words.length; i++) {
    if (a[kb + i] == A_OFF) continue;
    const words = p.words[i];
    for (let w = 0; w < words.length; w++) {
      const word = words[w];
      let from = 0;
      while (true) {
        const at = keywordAt<T>(t, n, word, from);
        if (at < 0) break;
        hits.add(at, at + word.length, kb + i);
        from = at + word.length;
      }
    }
  }
}
