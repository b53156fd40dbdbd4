// Embedding vectors: reading OpenAI's /v1/embeddings answer, normalizing, cosine similarity.
import { JsonValue, parseJson } from "./json";

const MAX_DIM: i32 = 16384;

/**
 * The vectors of an OpenAI-format embeddings answer {"data": [{"embedding": [...], "index": i}]},
 * ordered by index; null unless there are exactly `count`, all numeric, of one dimension.
 */
export function parseEmbeddings(body: ArrayBuffer, count: i32): Array<StaticArray<f32>> | null {
  const v = parseJson(body);
  if (v === null || !v.isObject()) return null;
  const data = v.get("data");
  if (data === null || !data.isArray() || data.length != count) return null;
  const items = data.items as Array<JsonValue>;
  const out = new Array<StaticArray<f32>>(count);
  const filled = new StaticArray<bool>(count);
  let dim = -1;
  for (let i = 0; i < count; i++) {
    const it = items[i];
    if (!it.isObject()) return null;
    let index = i;
    const ix = it.get("index");
    if (ix !== null) {
      if (!ix.isInteger() || ix.n < 0 || ix.n >= <f64>count) return null;
      index = <i32>ix.n;
    }
    if (filled[index]) return null;
    const e = it.get("embedding");
    if (e === null || !e.isArray()) return null;
    const n = e.length;
    if (n == 0 || n > MAX_DIM || (dim >= 0 && n != dim)) return null;
    dim = n;
    const nums = e.items as Array<JsonValue>;
    const vec = new StaticArray<f32>(n);
    for (let k = 0; k < n; k++) {
      const x = nums[k];
      if (!x.isNumber() || !isFinite(x.n)) return null;
      vec[k] = <f32>x.n;
    }
    out[index] = vec;
    filled[index] = true;
  }
  return out;
}

/** Scales v to unit length (a zero vector stays zero), so cosine similarity is a dot product. */
export function normalize(v: StaticArray<f32>): void {
  let sum: f64 = 0;
  for (let i = 0; i < v.length; i++) sum += <f64>v[i] * <f64>v[i];
  if (sum <= 0) return;
  const inv = 1.0 / Math.sqrt(sum);
  for (let i = 0; i < v.length; i++) v[i] = <f32>(<f64>v[i] * inv);
}

export function dot(a: StaticArray<f32>, b: StaticArray<f32>): f64 {
  let sum: f64 = 0;
  for (let i = 0; i < a.length; i++) sum += <f64>unchecked(a[i]) * <f64>unchecked(b[i]);
  return sum;
}
