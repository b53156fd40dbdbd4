// The semantic cache: after an exact miss, the prompt (prompt.ts) is embedded by the embeddings
// instance (one proxy_http_call, the request held meanwhile) and compared with the prompts of
// answers kept earlier in the same group; the closest one at or above the threshold answers, if
// its answer is still in the store (index.ts looks it up by the key found here).
//
// Vectors are kept in shared data as a ring of max_vectors keys, `sluice.ai-cache.v.<slot>`, and a
// counter `sluice.ai-cache.v.next` (compare-and-swap): an answer kept takes the counter's next
// number n and writes slot n % max_vectors. A record is its number, when it expires, its group, the
// key of its answer in the store, its sketch (sketch.ts) and the vector quantized to one signed byte
// a dimension (the unit vector times 127: cosine similarity within about 1 % of the float
// vectors'). Each worker keeps a copy of the ring (at most max_vectors records) and reads only the
// records numbered since its last look, so a lookup costs one counter read when nothing changed. A
// lookup compares sketches first and whole vectors only where the sketch is close.
import { Context, RootContext, BaseContext, getSharedData, setSharedData, nowNanos, WasmResultValues } from "../../lib/sdk";
import { ByteBuilder, JsonValue } from "../../lib/json";
import { httpCall, httpCallStatus, httpCallBody } from "../../lib/http-call";
import { parseEmbeddings, normalize } from "../../lib/vectors";
import { Settings } from "./config";
import { SemanticSettings } from "./semantic-config";
import { Prompt, readPrompt } from "./prompt";
import { countEmbeddingError } from "./metrics";
import { Projection, SKETCH, MARGIN } from "./sketch";

const RING = "sluice.ai-cache.v.";
const COUNTER = "sluice.ai-cache.v.next";
const HEADER: i32 = 64;
/** Where the vector starts in a record: after the header and the sketch. */
const VECTOR: i32 = HEADER + SKETCH;
const MAX_CAS_TRIES = 16;
/** Numbers taken this many before the counter and still unwritten are given up on. */
const STALE: i64 = 64;

/** One kept prompt. */
class Rec {
  n: i64 = -1;
  expiresMs: i64 = 0;
  group: u64 = 0;
  key: StaticArray<u8> = new StaticArray<u8>(32);
  vec: StaticArray<i8> = new StaticArray<i8>(0);
  norm: f64 = 0;
  sketch: StaticArray<i8> = new StaticArray<i8>(0);
  sketchNorm: f64 = 0;
}

/** This worker's copy of the ring. */
export class SemanticIndex {
  s: SemanticSettings;
  recs: Array<Rec | null>;
  /** The next record number not yet read. */
  seen: i64 = 0;
  /** The sketch's signs for the embedding's dimension (made when the first vector comes). */
  projection: Projection | null = null;

  /** The sketch of q: the projection made for its dimension the first time. */
  sketchOf(q: StaticArray<i8>): StaticArray<i8> {
    let p = this.projection;
    if (p === null || p.dims != q.length) {
      p = new Projection(q.length);
      this.projection = p;
    }
    return p.sketch(q);
  }

  constructor(s: Settings) {
    const sem = s.semantic as SemanticSettings;
    this.s = sem;
    this.recs = new Array<Rec | null>(sem.maxVectors);
  }

  /** Reads the records written since the last look. */
  refresh(): void {
    const max = <i64>this.s.maxVectors;
    const next = counter();
    if (next - this.seen > max) this.seen = next - max;
    while (this.seen < next) {
      const n = this.seen;
      const v = getSharedData(RING + (n % max).toString()).value;
      if (v === null || v.byteLength < VECTOR || load<i64>(changetype<usize>(v)) != n + 1) {
        // Already overwritten by a later number, or taken by a writer that never wrote it (its
        // worker went away): skipped once later numbers are well past it.
        if ((v !== null && v.byteLength >= VECTOR && load<i64>(changetype<usize>(v)) > n + 1) || next - n > STALE) {
          this.seen++;
          continue;
        }
        // Taken and not yet written: looked at again next time.
        break;
      }
      this.recs[<i32>(n % max)] = readRec(v, n);
      this.seen++;
    }
  }

  /** The closest record of the group at or above the threshold, or null. */
  nearest(group: u64, q: StaticArray<i8>, qnorm: f64, sketch: StaticArray<i8>, nowMs: i64): Rec | null {
    let best: Rec | null = null;
    let bestSim: f64 = this.s.threshold;
    const floor = this.s.threshold - MARGIN;
    const skNorm = norm8(sketch);
    for (let i = 0; i < this.recs.length; i++) {
      const r = unchecked(this.recs[i]);
      if (r === null || r.group != group || r.expiresMs <= nowMs || r.vec.length != q.length) continue;
      if (<f64>dot8(r.sketch, sketch) / (r.sketchNorm * skNorm) < floor) continue;
      const sim = <f64>dot8(r.vec, q) / (r.norm * qnorm);
      if (sim >= bestSim) {
        bestSim = sim;
        best = r;
      }
    }
    return best;
  }
}

function readRec(v: ArrayBuffer, n: i64): Rec {
  const p = changetype<usize>(v);
  const r = new Rec();
  r.n = n;
  r.expiresMs = load<i64>(p, 8);
  r.group = load<u64>(p, 16);
  memory.copy(changetype<usize>(r.key), p + 24, 32);
  const dims = load<i32>(p, 56);
  const d = dims > 0 && dims <= v.byteLength - VECTOR ? dims : 0;
  r.sketch = new StaticArray<i8>(SKETCH);
  memory.copy(changetype<usize>(r.sketch), p + <usize>HEADER, <usize>SKETCH);
  r.sketchNorm = norm8(r.sketch);
  r.vec = new StaticArray<i8>(d);
  memory.copy(changetype<usize>(r.vec), p + <usize>VECTOR, <usize>d);
  r.norm = norm8(r.vec);
  return r;
}

function counter(): i64 {
  const c = getSharedData(COUNTER).value;
  if (c === null || c.byteLength != 8) return 0;
  return load<i64>(changetype<usize>(c));
}

/** The counter's next number, process-wide; -1 when shared data refuses it. */
function takeNumber(): i64 {
  for (let i = 0; i < MAX_CAS_TRIES; i++) {
    const cur = getSharedData(COUNTER);
    let n: i64 = 0;
    if (cur.value !== null && (cur.value as ArrayBuffer).byteLength == 8) n = load<i64>(changetype<usize>(cur.value as ArrayBuffer));
    const next = new ArrayBuffer(8);
    store<i64>(changetype<usize>(next), n + 1);
    const r = setSharedData(COUNTER, next, cur.cas);
    if (r == WasmResultValues.Ok) return n;
    if (r != WasmResultValues.CasMismatch) return -1;
  }
  return -1;
}

function dot8(a: StaticArray<i8>, b: StaticArray<i8>): i32 {
  let sum: i32 = 0;
  const pa = changetype<usize>(a);
  const pb = changetype<usize>(b);
  for (let i = 0, n = a.length; i < n; i++) sum += <i32>load<i8>(pa + <usize>i) * <i32>load<i8>(pb + <usize>i);
  return sum;
}

function norm8(v: StaticArray<i8>): f64 {
  const s = dot8(v, v);
  return s > 0 ? Math.sqrt(<f64>s) : 1;
}

/** A unit vector as one signed byte a dimension. */
function quantize(v: StaticArray<f32>): StaticArray<i8> {
  const q = new StaticArray<i8>(v.length);
  for (let i = 0; i < v.length; i++) {
    let x = Math.round(<f64>v[i] * 127);
    if (x > 127) x = 127;
    if (x < -127) x = -127;
    q[i] = <i8>x;
  }
  return q;
}

export type LookupDone = (ctx: Context) => void;

/** One request's semantic lookup: its prompt, its vector once embedded, and the nearest kept prompt's key. */
export class Lookup {
  ctx: Context;
  done: LookupDone;
  prompt: Prompt;
  vec: StaticArray<i8> | null = null;
  sketch: StaticArray<i8> = new StaticArray<i8>(0);
  /** The key of the nearest kept prompt's answer at or above the threshold, or null. */
  candidate: StaticArray<u8> | null = null;
  similarity: f64 = 0;
  index: SemanticIndex;

  constructor(ctx: Context, done: LookupDone, prompt: Prompt, index: SemanticIndex) {
    this.ctx = ctx;
    this.done = done;
    this.prompt = prompt;
    this.index = index;
  }
}

// The lookups out, by their stream's context id (the embedding's answer names only the stream).
const pending = new Map<u32, Lookup>();

/**
 * Starts embedding the request's prompt; null when there is nothing to compare (no user text, too
 * long) or Envoy refused the call: the request is then a plain miss.
 */
export function startLookup(ctx: Context, root: RootContext, s: Settings, index: SemanticIndex, client: i32, scope: string, pool: string, model: string, body: JsonValue, done: LookupDone): Lookup | null {
  const sem = s.semantic as SemanticSettings;
  const p = readPrompt(client, scope, pool, model, body, sem.input, sem.maxInputChars);
  if (p === null) return null;
  const b = new ByteBuilder(p.text.len + 128);
  b.raw('{"model":').str(sem.model).raw(',"input":"').bytes(changetype<usize>(p.text.buf), p.text.len).raw('"');
  if (sem.dimensions > 0) b.raw(',"dimensions":').int(sem.dimensions);
  b.byte(0x7d);
  const h = [":method", "POST", ":path", sem.path, ":authority", sem.authority, "content-type", "application/json"];
  if (sem.apiKey.length) {
    h.push("authorization");
    h.push("Bearer " + sem.apiKey);
  }
  if (!httpCall(root, sem.cluster, h, b.toArrayBuffer(), sem.timeoutMs, ctx, onEmbedding)) {
    countEmbeddingError();
    return null;
  }
  const l = new Lookup(ctx, done, p, index);
  pending.set(ctx.context_id, l);
  return l;
}

function onEmbedding(origin: BaseContext, headers: u32, bodySize: usize, _trailers: u32): void {
  const id = origin.context_id;
  if (!pending.has(id)) return;
  const l = pending.get(id);
  pending.delete(id);
  const status = httpCallStatus(headers);
  const vecs = status == 200 && <i64>bodySize <= 16 * 1048576 ? parseEmbeddings(httpCallBody(bodySize), 1) : null;
  if (vecs === null || vecs[0].length > l.index.s.maxDimensions) {
    countEmbeddingError();
  } else {
    const v = vecs[0];
    normalize(v);
    const q = quantize(v);
    l.vec = q;
    search(l, q, <i64>(nowNanos() / 1000000));
  }
  const done = l.done;
  done(l.ctx);
}

function search(l: Lookup, q: StaticArray<i8>, nowMs: i64): void {
  const index = l.index;
  index.refresh();
  const sketch = index.sketchOf(q);
  l.sketch = sketch;
  const r = index.nearest(l.prompt.group, q, norm8(q), sketch, nowMs);
  if (r === null) return;
  l.candidate = r.key;
  l.similarity = <f64>dot8(r.vec, q) / (r.norm * norm8(q));
  if (l.similarity > 1) l.similarity = 1;
}

/** Forgets a lookup whose stream ended while its embedding was out. */
export function dropLookup(ctx: Context): void {
  pending.delete(ctx.context_id);
}

/** Keeps the prompt's vector for the answer just stored under key. */
export function rememberPrompt(l: Lookup, key: StaticArray<u8>, expiresMs: i64): void {
  if (l.vec === null || l.sketch.length != SKETCH) return;
  const q = l.vec as StaticArray<i8>;
  const n = takeNumber();
  if (n < 0) return;
  const v = new ArrayBuffer(VECTOR + q.length);
  const p = changetype<usize>(v);
  store<i64>(p, n + 1);
  store<i64>(p, expiresMs, 8);
  store<u64>(p, l.prompt.group, 16);
  memory.copy(p + 24, changetype<usize>(key), 32);
  store<i32>(p, q.length, 56);
  memory.copy(p + <usize>HEADER, changetype<usize>(l.sketch), <usize>SKETCH);
  memory.copy(p + <usize>VECTOR, changetype<usize>(q), <usize>q.length);
  setSharedData(RING + (n % <i64>l.index.s.maxVectors).toString(), v, 0);
}
