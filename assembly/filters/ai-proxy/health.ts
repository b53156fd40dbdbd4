// Instance health, shared by every worker VM through shared data (one key per instance), so an
// instance that fails on one worker is avoided by all of them — the flaw APISIX users report.
//
// Passive: 5xx, timeouts and connect failures count against an instance; `failures` in a row put
// it in cooldown (10 s, doubling up to max_cooldown). A 429 cools it down at once, for the
// provider's Retry-After when given. Provider rate-limit headers at zero remaining
// (x-ratelimit-remaining-tokens/-requests, anthropic-ratelimit-*-remaining) mark it exhausted
// until their reset time. A success clears the failures.
// Active (when configured): the root context probes each instance on a tick; an instance that
// failed passively is held out until `healthy` probes in a row succeed, and `unhealthy` failed
// probes in a row take a healthy instance out.
import { getSharedData, setSharedData, WasmResultValues } from "../../lib/sdk";

export class HealthConfig {
  failures: i32 = 3;
  cooldownMs: i64 = 10000;
  maxCooldownMs: i64 = 300000;
  active: bool = false;
  intervalMs: i64 = 10000;
  timeoutMs: i64 = 2000;
  healthy: i32 = 2;
  unhealthy: i32 = 3;
  /** Probe path appended to the instance's base path (GET); "" = the provider's models list. */
  path: string = "";
}

/** One instance's shared state. Encoded as text: "until,failures,backoff,down,ok,bad". */
export class HealthState {
  until: i64 = 0; // ms: unavailable before this (cooldown, or rate-limit reset)
  failures: i32 = 0; // passive failures in a row
  backoff: i64 = 0; // current cooldown length
  down: bool = false; // held out until active probes pass
  ok: i32 = 0; // probes succeeded in a row
  bad: i32 = 0; // probes failed in a row

  encode(): ArrayBuffer {
    return String.UTF8.encode(this.until.toString() + "," + this.failures.toString() + "," + this.backoff.toString() + "," + (this.down ? "1" : "0") + "," + this.ok.toString() + "," + this.bad.toString());
  }

  static decode(buf: ArrayBuffer | null): HealthState {
    const h = new HealthState();
    if (buf === null || buf.byteLength == 0) return h;
    const parts = String.UTF8.decode(buf).split(",");
    if (parts.length != 6) return h;
    h.until = I64.parseInt(parts[0]);
    h.failures = I32.parseInt(parts[1]);
    h.backoff = I64.parseInt(parts[2]);
    h.down = parts[3] == "1";
    h.ok = I32.parseInt(parts[4]);
    h.bad = I32.parseInt(parts[5]);
    return h;
  }

  available(nowMs: i64): bool {
    return !this.down && this.until <= nowMs;
  }
}

const PREFIX = "sluice.ai-proxy.health.";

/** Whether the last report() took the instance out (a cooldown, exhaustion or failed probes). */
export let wentDown: bool = false;
const MAX_CAS_TRIES = 32;

export function readHealth(instance: string): HealthState {
  return HealthState.decode(getSharedData(PREFIX + instance).value);
}

/** What happened to a request or probe. */
export const OUTCOME_SUCCESS: i32 = 0;
export const OUTCOME_FAILURE: i32 = 1; // 5xx, timeout, connect failure
export const OUTCOME_RATE_LIMITED: i32 = 2; // 429
export const OUTCOME_EXHAUSTED: i32 = 3; // success, but the provider says its quota is spent
export const OUTCOME_PROBE_OK: i32 = 4;
export const OUTCOME_PROBE_FAILED: i32 = 5;

/**
 * Applies an outcome with a compare-and-swap loop, so concurrent workers never lose an update.
 * `untilMs` is the provider's reset time for RATE_LIMITED / EXHAUSTED (0 = unknown).
 * Returns the new state.
 */
export function report(cfg: HealthConfig, instance: string, outcome: i32, nowMs: i64, untilMs: i64): HealthState {
  const key = PREFIX + instance;
  let h = new HealthState();
  for (let attempt = 0; attempt < MAX_CAS_TRIES; attempt++) {
    const cur = getSharedData(key);
    h = HealthState.decode(cur.value);
    const before = h.available(nowMs);
    apply(cfg, h, outcome, nowMs, untilMs);
    wentDown = before && !h.available(nowMs);
    // cas 0 would write unconditionally; a missing key has no cas, so the first write races only
    // with another first write, which Envoy resolves by the later one winning — acceptable for a
    // fresh instance.
    const r = setSharedData(key, h.encode(), cur.value === null ? 0 : cur.cas);
    if (r != WasmResultValues.CasMismatch) break;
  }
  return h;
}

function coolDown(cfg: HealthConfig, h: HealthState, nowMs: i64): void {
  h.backoff = h.backoff <= 0 ? cfg.cooldownMs : h.backoff * 2;
  if (h.backoff > cfg.maxCooldownMs) h.backoff = cfg.maxCooldownMs;
  h.until = nowMs + h.backoff;
  // With active checks, a failed instance waits for probes to pass, not just for the clock.
  if (cfg.active) {
    h.down = true;
    h.ok = 0;
  }
}

function apply(cfg: HealthConfig, h: HealthState, outcome: i32, nowMs: i64, untilMs: i64): void {
  if (outcome == OUTCOME_SUCCESS) {
    h.failures = 0;
    h.backoff = 0;
    return;
  }
  if (outcome == OUTCOME_FAILURE) {
    h.failures++;
    if (h.failures >= cfg.failures) {
      h.failures = 0;
      coolDown(cfg, h, nowMs);
    }
    return;
  }
  if (outcome == OUTCOME_RATE_LIMITED) {
    if (untilMs > nowMs) h.until = untilMs;
    else coolDown(cfg, h, nowMs);
    return;
  }
  if (outcome == OUTCOME_EXHAUSTED) {
    if (untilMs > h.until) h.until = untilMs;
    return;
  }
  if (outcome == OUTCOME_PROBE_OK) {
    h.bad = 0;
    h.ok++;
    if (h.down && h.ok >= cfg.healthy) {
      h.down = false;
      h.until = 0;
      h.failures = 0;
      h.backoff = 0;
    }
    return;
  }
  if (outcome == OUTCOME_PROBE_FAILED) {
    h.ok = 0;
    h.bad++;
    if (!h.down && h.bad >= cfg.unhealthy) h.down = true;
  }
}

/**
 * Parses a rate-limit reset: OpenAI's durations ("1s", "6m0s", "20ms", "1h2m3.5s"), plain seconds
 * ("30", as in Retry-After), or an RFC 3339 time (Anthropic's *-reset headers). Returns the reset
 * time in ms since the epoch, or 0 when unreadable.
 */
export function parseReset(v: string, nowMs: i64): i64 {
  const s = v.trim();
  if (s.length == 0) return 0;
  if (s.length >= 20 && s.charAt(4) == "-" && s.charAt(10) == "T") return parseRfc3339(s);
  let total: f64 = 0;
  let num = "";
  let seen = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charAt(i);
    if ((c >= "0" && c <= "9") || c == ".") {
      num += c;
      continue;
    }
    if (num.length == 0) return 0;
    const n = parseFloat(num);
    num = "";
    if (c == "h") total += n * 3600000;
    else if (c == "m" && i + 1 < s.length && s.charAt(i + 1) == "s") {
      total += n;
      i++;
    } else if (c == "m") total += n * 60000;
    else if (c == "s") total += n * 1000;
    else return 0;
    seen = true;
  }
  if (num.length) {
    if (seen) return 0;
    total = parseFloat(num) * 1000; // bare number: seconds
  }
  if (!(total >= 0)) return 0;
  return nowMs + <i64>total;
}

function digits(s: string, at: i32, n: i32): i32 {
  let v = 0;
  for (let i = at; i < at + n; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/** RFC 3339 UTC or with an offset, to ms since the epoch (0 when unreadable). */
function parseRfc3339(s: string): i64 {
  const y = digits(s, 0, 4), mo = digits(s, 5, 2), d = digits(s, 8, 2);
  const h = digits(s, 11, 2), mi = digits(s, 14, 2), se = digits(s, 17, 2);
  if (y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || mi < 0 || se < 0) return 0;
  // Days from the civil date (Howard Hinnant's algorithm).
  const yy = mo <= 2 ? y - 1 : y;
  const era = (yy >= 0 ? yy : yy - 399) / 400;
  const yoe = yy - era * 400;
  const mp = (mo + 9) % 12;
  const doy = (153 * mp + 2) / 5 + d - 1;
  const doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const days = <i64>(era * 146097 + doe - 719468);
  let ms = ((days * 24 + h) * 60 + mi) * 60000 + <i64>se * 1000;
  let i = 19;
  if (i < s.length && s.charAt(i) == ".") {
    i++;
    let frac: i64 = 0, scale: i64 = 100;
    while (i < s.length && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) {
      frac += <i64>(s.charCodeAt(i) - 48) * scale;
      scale /= 10;
      i++;
    }
    ms += frac;
  }
  if (i < s.length && (s.charAt(i) == "+" || s.charAt(i) == "-")) {
    const oh = digits(s, i + 1, 2), om = digits(s, i + 4, 2);
    if (oh < 0 || om < 0) return 0;
    const off = (<i64>oh * 60 + om) * 60000;
    ms = s.charAt(i) == "+" ? ms - off : ms + off;
  }
  return ms;
}
