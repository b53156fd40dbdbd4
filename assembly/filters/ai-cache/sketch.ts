// A short sketch of each quantized vector, so a semantic lookup compares a few bytes per kept prompt
// before it compares whole vectors: a random projection onto SKETCH dimensions (each a sum of the
// vector's components with fixed random signs), scaled to unit length and quantized like the vector.
// Random projections keep cosine similarity on average (Johnson-Lindenstrauss); with 64 dimensions
// the sketch's similarity strays from the vector's by about 0.02 near 0.92 and about 0.1 near 0.5, so
// a kept prompt whose sketch is more than MARGIN below the threshold is left out without the full
// comparison, and one that is a match never is. The signs come from a fixed seed: every worker and
// every Envoy makes the same sketch of the same vector.

export const SKETCH: i32 = 64;
/** How far below the threshold a sketch may be and still have its whole vector compared. */
export const MARGIN: f64 = 0.2;

/** The fixed signs for vectors of one dimension, SKETCH rows of dims each (+1 or -1). */
export class Projection {
  dims: i32;
  signs: StaticArray<i8>;

  constructor(dims: i32) {
    this.dims = dims;
    this.signs = new StaticArray<i8>(SKETCH * dims);
    // splitmix64 from a fixed seed: reproducible, and its bits are even enough for signs.
    let state: u64 = 0x5c1ce0a15eed;
    let bits: u64 = 0;
    let left = 0;
    for (let i = 0; i < SKETCH * dims; i++) {
      if (left == 0) {
        state += 0x9e3779b97f4a7c15;
        let z = state;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
        z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
        bits = z ^ (z >> 31);
        left = 64;
      }
      unchecked((this.signs[i] = (bits & 1) != 0 ? 1 : -1));
      bits >>= 1;
      left--;
    }
  }

  /** The sketch of q (of this.dims), quantized to a byte a dimension. */
  sketch(q: StaticArray<i8>): StaticArray<i8> {
    const sums = new StaticArray<f64>(SKETCH);
    const dims = this.dims;
    const qp = changetype<usize>(q);
    const sp = changetype<usize>(this.signs);
    let norm: f64 = 0;
    for (let j = 0; j < SKETCH; j++) {
      let s: i32 = 0;
      const row = sp + <usize>(j * dims);
      for (let i = 0; i < dims; i++) s += <i32>load<i8>(qp + <usize>i) * <i32>load<i8>(row + <usize>i);
      unchecked((sums[j] = <f64>s));
      norm += <f64>s * <f64>s;
    }
    const out = new StaticArray<i8>(SKETCH);
    const scale = norm > 0 ? 127 / Math.sqrt(norm) : 0;
    for (let j = 0; j < SKETCH; j++) unchecked((out[j] = <i8>Math.round(unchecked(sums[j]) * scale)));
    return out;
  }
}
