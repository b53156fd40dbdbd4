// Where ai-cache keeps answers: the one small interface (AnswerStore) and the format of a kept answer,
// both stores' (this file's SharedStore, in Envoy's shared data; webdis.ts's, in a Redis that several
// Envoys share, through Webdis).
//
// SharedStore: proxy-wasm shared data, one store per Envoy process for every worker VM of the
// plugin (proxy-wasm-cpp-host src/shared_data.cc: a map of vm_id -> key -> (value, cas)).
//
// Shared data has no delete a filter can call (proxy-wasm-cpp-host src/exports.cc: set_shared_data
// is the only write), so the store is a fixed set of keys, reused: `max_entries` slots in sets of
// WAYS (a set-associative cache, as CPU caches are). A key's set is fixed by its hash; within the set
// an entry goes to a free or expired way, else to the way used least recently. Each set has a meta
// key (`sluice.ai-cache.m.<set>`: per way, the key's first 16 bytes, when it expires, when it was
// last used) and each way a data key (`sluice.ai-cache.d.<slot>`: the whole key, the record, the
// answer). A lookup reads one meta (WAYS * 32 bytes) and, on a match, one data key.
//
// Bounded whatever clients send: at most sets * (1 + WAYS) keys; a data value is at most
// max_entry_bytes + HEADER bytes, a meta value WAYS * 32. Workers write with compare-and-swap on the
// meta; two workers that fill the same way at once may leave a data key whose whole key does not
// match its meta, which a lookup checks (that is a miss, never another request's answer).
import { Context, RootContext, getSharedData, setSharedData, setSharedDataBytes, WasmResultValues } from "../../lib/sdk";

export const WAYS: i32 = 8;
const META_WAY: i32 = 32;
/** Bytes before the answer in a data value: key (32), expires, prompt, completion, cost (8 each). */
export const HEADER: i32 = 64;
const META = "sluice.ai-cache.m.";
const DATA = "sluice.ai-cache.d.";
const MAX_CAS_TRIES = 8;
/** A hit moves its way's last use forward at most this often (each move is a meta write). */
const TOUCH_MS: i64 = 1000;

/** One answer as stored: the provider's usage and cost when it was produced, and the answer's JSON. */
export class Entry {
  answer: ArrayBuffer = new ArrayBuffer(0);
  expiresMs: i64 = 0;
  promptTokens: i64 = 0;
  completionTokens: i64 = 0;
  /** Micro-units of the configured currency; -1 when the model had no price. */
  costMicros: i64 = -1;
}

/**
 * A kept answer as both stores hold it: the whole key (32 bytes), when it expires, the prompt and
 * completion tokens and the cost when it was produced (8 bytes each, little-endian), then the answer.
 */
export function encodeEntry(key: StaticArray<u8>, e: Entry, answerPtr: usize, answerLen: i32): ArrayBuffer {
  const data = new ArrayBuffer(HEADER + answerLen);
  const p = changetype<usize>(data);
  memory.copy(p, changetype<usize>(key), 32);
  store<i64>(p, e.expiresMs, 32);
  store<i64>(p, e.promptTokens, 40);
  store<i64>(p, e.completionTokens, 48);
  store<i64>(p, e.costMicros, 56);
  memory.copy(p + <usize>HEADER, answerPtr, <usize>answerLen);
  return data;
}

/** The entry in data when it is key's and has not expired, else null. */
export function decodeEntry(data: ArrayBuffer, key: StaticArray<u8>, nowMs: i64): Entry | null {
  if (data.byteLength < HEADER || !sameKey(changetype<usize>(data), key)) return null;
  const p = changetype<usize>(data);
  const e = new Entry();
  e.expiresMs = load<i64>(p, 32);
  if (e.expiresMs <= nowMs) return null;
  e.promptTokens = load<i64>(p, 40);
  e.completionTokens = load<i64>(p, 48);
  e.costMicros = load<i64>(p, 56);
  e.answer = data.slice(HEADER);
  return e;
}

export class StoreStats {
  stored: bool = false;
  /** A live entry of another key was replaced to make room. */
  evicted: bool = false;
  /** The store answers later (a remote store): the outcome is counted then. */
  pending: bool = false;
}

/** What a lookup found: the entry (or null), or that the answer comes later through Found. */
export class Finding {
  entry: Entry | null = null;
  pending: bool = false;
}

/** A remote store's answer to a lookup, for the stream that asked (its context). */
export type Found = (ctx: Context, e: Entry | null) => void;

/** Where answers are kept. */
export abstract class AnswerStore {
  /** Looks key up for ctx: at once (entry set), or later through found (pending set). */
  abstract find(key: StaticArray<u8>, nowMs: i64, ctx: Context, root: RootContext, found: Found): Finding;
  /** Keeps data (encodeEntry's) under key until it expires; stats say what became of it. */
  abstract keep(key: StaticArray<u8>, data: ArrayBuffer, expiresMs: i64, nowMs: i64, root: RootContext, stats: StoreStats): bool;
  /** Forgets a lookup whose stream ended before the answer came. */
  drop(ctx: Context): void {}
}

export class SharedStore extends AnswerStore {
  sets: i32;

  constructor(maxEntries: i64) {
    super();
    this.sets = <i32>((maxEntries + WAYS - 1) / WAYS);
  }

  find(key: StaticArray<u8>, nowMs: i64, _ctx: Context, _root: RootContext, _found: Found): Finding {
    const f = new Finding();
    f.entry = this.lookup(key, nowMs);
    return f;
  }

  keep(key: StaticArray<u8>, data: ArrayBuffer, expiresMs: i64, nowMs: i64, _root: RootContext, stats: StoreStats): bool {
    return this.put(key, data, expiresMs, nowMs, stats);
  }

  /** The set a key lives in: its first four bytes, as a number. */
  setOf(key: StaticArray<u8>): i32 {
    const h = (<u32>key[0] << 24) | (<u32>key[1] << 16) | (<u32>key[2] << 8) | <u32>key[3];
    return <i32>(h % <u32>this.sets);
  }

  /** The live entry for key, or null. */
  lookup(key: StaticArray<u8>, nowMs: i64): Entry | null {
    const set = this.setOf(key);
    const metaKey = META + set.toString();
    const m = getSharedData(metaKey);
    if (m.value === null) return null;
    const meta = m.value as ArrayBuffer;
    if (meta.byteLength != WAYS * META_WAY) return null;
    const base = changetype<usize>(meta);
    for (let w = 0; w < WAYS; w++) {
      const at = base + <usize>(w * META_WAY);
      if (!samePrefix(at, key)) continue;
      const expires = load<i64>(at, 16);
      if (expires <= nowMs) return null;
      const d = getSharedData(DATA + (set * WAYS + w).toString());
      if (d.value === null) return null;
      const e = decodeEntry(d.value as ArrayBuffer, key, nowMs);
      if (e === null) return null;
      if (nowMs - load<i64>(at, 24) >= TOUCH_MS) {
        // The least-recently-used order, coarsely: a lost race only leaves the older time.
        store<i64>(at, nowMs, 24);
        setSharedData(metaKey, meta, m.cas);
      }
      return e;
    }
    return null;
  }

  /** Keeps data under key until expiresMs; the way for it is the key's own, a free one, or the least recently used. */
  put(key: StaticArray<u8>, data: ArrayBuffer, expiresMs: i64, nowMs: i64, stats: StoreStats): bool {
    const set = this.setOf(key);
    const metaKey = META + set.toString();
    const p = changetype<usize>(data);
    for (let tries = 0; tries < MAX_CAS_TRIES; tries++) {
      const m = getSharedData(metaKey);
      let meta: ArrayBuffer;
      if (m.value === null || (m.value as ArrayBuffer).byteLength != WAYS * META_WAY) meta = new ArrayBuffer(WAYS * META_WAY);
      else meta = m.value as ArrayBuffer;
      const base = changetype<usize>(meta);
      const w = chooseWay(base, key, nowMs);
      const at = base + <usize>(w * META_WAY);
      stats.evicted = !samePrefix(at, key) && load<i64>(at, 16) > nowMs;
      if (setSharedDataBytes(DATA + (set * WAYS + w).toString(), p, data.byteLength, 0) != WasmResultValues.Ok) return false;
      memory.copy(at, changetype<usize>(key), 16);
      store<i64>(at, expiresMs, 16);
      store<i64>(at, nowMs, 24);
      const r = setSharedData(metaKey, meta, m.cas);
      if (r == WasmResultValues.Ok) {
        stats.stored = true;
        return true;
      }
      if (r != WasmResultValues.CasMismatch) return false;
    }
    return false;
  }
}

/** The key's own way, else a free or expired one, else the one used least recently. */
function chooseWay(base: usize, key: StaticArray<u8>, nowMs: i64): i32 {
  let free = -1;
  let oldest = 0;
  let oldestUse = i64.MAX_VALUE;
  for (let w = 0; w < WAYS; w++) {
    const at = base + <usize>(w * META_WAY);
    if (samePrefix(at, key)) return w;
    if (free < 0 && load<i64>(at, 16) <= nowMs) free = w;
    const used = load<i64>(at, 24);
    if (used < oldestUse) {
      oldestUse = used;
      oldest = w;
    }
  }
  return free >= 0 ? free : oldest;
}

function samePrefix(at: usize, key: StaticArray<u8>): bool {
  return load<u64>(at) == load<u64>(changetype<usize>(key)) && load<u64>(at, 8) == load<u64>(changetype<usize>(key), 8);
}

function sameKey(at: usize, key: StaticArray<u8>): bool {
  const k = changetype<usize>(key);
  for (let i: usize = 0; i < 32; i += 8) if (load<u64>(at + i) != load<u64>(k + i)) return false;
  return true;
}
