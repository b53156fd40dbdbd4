// Windows and the counters behind them.
//
// A rule's window is cut into buckets of `width` nanoseconds, numbered from the Unix epoch
// (bucket = now / width), so every worker and every Envoy restart agrees on the boundaries.
//   fixed:   one bucket per window; the count of the current bucket is the usage.
//   sliding: the window is N sub-buckets; the usage is the N-1 newest sub-buckets in full plus the
//            current one, plus the oldest (which the trailing window only partly covers) weighted
//            by the part still inside. N = 1 is the classic two-bucket approximation.
//            Error bound: the usage of the oldest sub-bucket is assumed spread evenly over it, so
//            the estimate is off by at most the tokens charged to that one sub-bucket (<= the
//            tokens of W/N seconds); with an even load, about limit/N.
//
// Counters of one key live in ONE shared-data value, a ring of `slots` entries (fixed: 1,
// sliding: N+1), each 16 bytes little-endian: i64 bucket number, i64 count. A bucket reuses the
// entry (bucket mod slots) of the one N+1 buckets before it, so a key never grows; one CAS covers
// the whole window, so checking and reserving are a single atomic step.

const NS_PER_SEC: i64 = 1000000000;
const NS_PER_DAY: i64 = 86400 * NS_PER_SEC;

/** Calendar windows (fixed only): a UTC week from Monday 00:00, a UTC calendar month. */
export const CAL_NONE: i32 = 0;
export const CAL_WEEK: i32 = 1;
export const CAL_MONTH: i32 = 2;

/** Days since 1970-01-01 of the first day of a month (y, m 1-12), proleptic Gregorian (Hinnant's days_from_civil). */
function daysFromCivil(y: i64, m: i64): i64 {
  if (m <= 2) y -= 1;
  const era = (y >= 0 ? y : y - 399) / 400;
  const yoe = y - era * 400;
  const mp = m > 2 ? m - 3 : m + 9;
  const doy = (153 * mp + 2) / 5; // day 1 of the month
  const doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/** Months since January 1970 of a day since 1970-01-01 (Hinnant's civil_from_days). */
function monthOfDay(z0: i64): i64 {
  const z = z0 + 719468;
  const era = (z >= 0 ? z : z - 146096) / 146097;
  const doe = z - era * 146097;
  const yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  let y = yoe + era * 400;
  const doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const mp = (5 * doy + 2) / 153;
  const m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) y += 1;
  return (y - 1970) * 12 + (m - 1);
}
/** Saturation for counts: far above any limit, far below i64 overflow. */
const MAX_COUNT: i64 = 100000000000000000; // 1e17

export class Window {
  seconds: i64;
  sliding: bool;
  /** Sub-buckets per window (1 when fixed). */
  n: i32;
  width: i64;
  slots: i32;

  /** CAL_WEEK or CAL_MONTH: buckets are calendar weeks or months, whatever their length. */
  calendar: i32 = CAL_NONE;

  constructor(seconds: i64, sliding: bool, n: i32, calendar: i32 = CAL_NONE) {
    this.calendar = calendar;
    this.seconds = seconds;
    this.sliding = sliding;
    this.n = n < 1 ? 1 : n;
    let w = (seconds * NS_PER_SEC) / <i64>this.n;
    if (w < 1) w = 1;
    this.width = w;
    this.slots = sliding ? this.n + 1 : 1;
  }

  bucket(now: i64): i64 {
    if (now < 0) return 0;
    if (this.calendar == CAL_WEEK) return (now / NS_PER_DAY + 3) / 7; // 1970-01-01 was a Thursday
    if (this.calendar == CAL_MONTH) return monthOfDay(now / NS_PER_DAY);
    return now / this.width;
  }

  /** Where bucket b ends (a fixed window's reset time), in ns since the epoch. */
  end(b: i64): i64 {
    if (this.calendar == CAL_WEEK) return ((b + 1) * 7 - 3) * NS_PER_DAY;
    if (this.calendar == CAL_MONTH) {
      const next = b + 1;
      return daysFromCivil(1970 + next / 12, next % 12 + 1) * NS_PER_DAY;
    }
    return (b + 1) * this.width;
  }

  /** Usage at `now` (fractional for a sliding window). */
  used(ring: Ring, now: i64): f64 {
    const c = this.bucket(now);
    if (!this.sliding) return <f64>ring.get(c);
    let full: i64 = 0;
    for (let k = 0; k < this.n; k++) full += ring.get(c - k);
    const old = ring.get(c - this.n);
    if (old == 0) return <f64>full;
    const e = now - c * this.width;
    return <f64>full + <f64>old * (<f64>(this.width - e) / <f64>this.width);
  }

  /**
   * Nanoseconds from `now` until the usage is at most `target`, if nothing more is charged;
   * -1 when it never will be (target < 0: the request alone is over the limit).
   */
  waitFor(ring: Ring, now: i64, target: f64): i64 {
    if (target < 0) return -1;
    if (this.used(ring, now) <= target) return 0;
    const c = this.bucket(now);
    if (!this.sliding) return this.end(c) - now;
    const n = <i64>this.n;
    // Segment k: bucket c+k is current; buckets c+k-n+1..c count in full (later ones are empty),
    // bucket c+k-n decays linearly from full to nothing over the segment.
    for (let k: i64 = 0; k <= n; k++) {
      let full: i64 = 0;
      for (let j = c + k - n + 1; j <= c; j++) full += ring.get(j);
      if (<f64>full > target) continue;
      const start = (c + k) * this.width;
      const old = ring.get(c + k - n);
      let at = start;
      if (old > 0) {
        // full + old * (1 - x/width) = target
        let x = <f64>this.width * (1 - (target - <f64>full) / <f64>old);
        if (x < 0) x = 0;
        if (x > <f64>this.width) x = <f64>this.width;
        at = start + <i64>Math.ceil(x);
      }
      return at > now ? at - now : 0;
    }
    return (c + n + 1) * this.width - now;
  }

  /** Nanoseconds from `now` until the usage is back to zero if nothing more is charged. */
  resetIn(ring: Ring, now: i64): i64 {
    const c = this.bucket(now);
    if (!this.sliding) return ring.get(c) > 0 ? this.end(c) - now : 0;
    const n = <i64>this.n;
    for (let j = c; j >= c - n; j--) {
      if (ring.get(j) > 0) {
        const end = (j + n + 1) * this.width;
        return end > now ? end - now : 0;
      }
    }
    return 0;
  }

  /** Whether bucket b still counts (fully or partly) toward the usage at `now`. */
  counts(b: i64, now: i64): bool {
    const c = this.bucket(now);
    return b <= c && b >= c - (this.sliding ? <i64>this.n : 0);
  }
}

export class Ring {
  slots: i32;
  idx: StaticArray<i64>;
  cnt: StaticArray<i64>;

  constructor(slots: i32) {
    this.slots = slots;
    this.idx = new StaticArray<i64>(slots);
    this.cnt = new StaticArray<i64>(slots);
    for (let i = 0; i < slots; i++) unchecked((this.idx[i] = -1));
  }

  /**
   * Reads a stored ring. A value written with another number of slots (the configuration changed)
   * is re-homed by bucket number; anything malformed reads as empty, never traps.
   */
  static decode(buf: ArrayBuffer | null, slots: i32): Ring {
    const r = new Ring(slots);
    if (buf === null) return r;
    const b = buf as ArrayBuffer;
    const entries = b.byteLength >> 4;
    const base = changetype<usize>(b);
    for (let i = 0; i < entries; i++) {
      const idx = load<i64>(base + (<usize>i << 4));
      const cnt = load<i64>(base + (<usize>i << 4) + 8);
      if (idx < 0 || cnt < 0) continue;
      const s = <i32>(idx % <i64>slots);
      if (unchecked(r.idx[s]) < idx) {
        unchecked((r.idx[s] = idx));
        unchecked((r.cnt[s] = cnt > MAX_COUNT ? MAX_COUNT : cnt));
      }
    }
    return r;
  }

  encode(): ArrayBuffer {
    const out = new ArrayBuffer(this.slots << 4);
    const base = changetype<usize>(out);
    for (let i = 0; i < this.slots; i++) {
      store<i64>(base + (<usize>i << 4), unchecked(this.idx[i]));
      store<i64>(base + (<usize>i << 4) + 8, unchecked(this.cnt[i]));
    }
    return out;
  }

  @inline private slot(b: i64): i32 {
    return <i32>((b < 0 ? 0 : b) % <i64>this.slots);
  }

  /** The count of bucket b, 0 when the ring no longer (or not yet) holds it. */
  get(b: i64): i64 {
    if (b < 0) return 0;
    const s = this.slot(b);
    return unchecked(this.idx[s]) == b ? unchecked(this.cnt[s]) : 0;
  }

  has(b: i64): bool {
    return b >= 0 && unchecked(this.idx[this.slot(b)]) == b;
  }

  /** Adds x to bucket b, taking over the slot of an older bucket. */
  add(b: i64, x: i64): void {
    if (b < 0) b = 0;
    const s = this.slot(b);
    if (unchecked(this.idx[s]) != b) {
      if (unchecked(this.idx[s]) > b) return; // a newer bucket owns the slot: b is long gone
      unchecked((this.idx[s] = b));
      unchecked((this.cnt[s] = 0));
    }
    let v = unchecked(this.cnt[s]) + x;
    if (v < 0) v = 0;
    if (v > MAX_COUNT) v = MAX_COUNT;
    unchecked((this.cnt[s] = v));
  }
}

/**
 * A duration as OpenAI's x-ratelimit-reset-* headers write it (Go's time.Duration format, to the
 * millisecond): "0s", "250ms", "1s", "6m0s", "1h2m3.5s".
 */
export function goDuration(ns: i64): string {
  if (ns <= 0) return "0s";
  const ms = (ns + 999999) / 1000000;
  if (ms < 1000) return ms.toString() + "ms";
  const h = ms / 3600000;
  const m = (ms / 60000) % 60;
  const s = (ms / 1000) % 60;
  const frac = ms % 1000;
  let sec = s.toString();
  if (frac > 0) {
    let f = frac.toString();
    while (f.length < 3) f = "0" + f;
    while (f.endsWith("0")) f = f.substring(0, f.length - 1);
    sec += "." + f;
  }
  if (h > 0) return h.toString() + "h" + m.toString() + "m" + sec + "s";
  if (m > 0) return m.toString() + "m" + sec + "s";
  return sec + "s";
}

/** Whole seconds for Retry-After, rounded up, at least 1. */
export function retryAfterSeconds(ns: i64): i64 {
  if (ns <= 0) return 1;
  const s = (ns + NS_PER_SEC - 1) / NS_PER_SEC;
  return s < 1 ? 1 : s;
}
