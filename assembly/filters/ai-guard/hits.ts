// What the detectors found in one text: unit ranges [start, end) with the detector that found each.
// Detectors append; settle() orders them and drops overlaps, so each unit is masked at most once.

export class Hits {
  starts: Array<i32> = [];
  ends: Array<i32> = [];
  dets: Array<i32> = [];

  get length(): i32 {
    return this.starts.length;
  }

  add(start: i32, end: i32, det: i32): void {
    this.starts.push(start);
    this.ends.push(end);
    this.dets.push(det);
  }

  clear(): void {
    this.starts.length = 0;
    this.ends.length = 0;
    this.dets.length = 0;
  }

  /**
   * Sorts by start (the longer first at the same start, then the detector listed first) and drops
   * every hit that overlaps one kept before it: an e-mail inside a custom pattern's match, a phone
   * number inside an IBAN. O(n log n) (Array.sort), whatever a hostile text holds.
   */
  settle(): void {
    const n = this.starts.length;
    if (n == 0) return;
    const order = new Array<i32>(n);
    for (let i = 0; i < n; i++) order[i] = i;
    sorting = this;
    order.sort(byPosition);
    const s = new Array<i32>(), e = new Array<i32>(), d = new Array<i32>();
    let lastEnd = -1;
    for (let k = 0; k < n; k++) {
      const i = order[k];
      if (this.starts[i] < lastEnd) continue;
      s.push(this.starts[i]);
      e.push(this.ends[i]);
      d.push(this.dets[i]);
      lastEnd = this.ends[i];
    }
    this.starts = s;
    this.ends = e;
    this.dets = d;
  }
}

let sorting: Hits = new Hits();

function byPosition(a: i32, b: i32): i32 {
  const h = sorting;
  const sa = h.starts[a], sb = h.starts[b];
  if (sa != sb) return sa - sb;
  const ea = h.ends[a], eb = h.ends[b];
  if (ea != eb) return eb - ea;
  return h.dets[a] - h.dets[b];
}
