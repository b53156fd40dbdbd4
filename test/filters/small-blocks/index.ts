// Drives the runtime's small-block lists (assembly/runtime/small-blocks.ts) through a real module,
// for test/small-blocks.test.ts. Each request's headers say what to do:
//  - x-churn: "<seed>,<objects>,<keep>": makes that many small objects of sizes 1 to 600 bytes
//    (both sides of the lists' limit), keeps one in <keep> in a live set (replacing an older one;
//    0: none) and drops the rest; each object holds a pattern of its own. Then every live object's
//    pattern is checked, and the answer says how many were wrong (x-bad).
//  - x-big: "<bytes>": allocates and fills one buffer of that size (a body's), then drops it.
// The SDK layer collects between streams (after 16 of them, or when memory grew), so objects
// dropped in one stream are freed, and their blocks handed out again, in the next ones.
export * from "@gcoredev/proxy-wasm-sdk-as/assembly/proxy";
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context,
} from "@gcoredev/proxy-wasm-sdk-as/assembly";

const LIVE = 512;
const live = new Array<Uint8Array | null>(LIVE);

let state: u32 = 1;
function rand(): u32 {
  // xorshift32: the same sequence for the same seed, so a failure replays.
  let x = state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  state = x;
  return x;
}

function patterned(size: i32, tag: u32): Uint8Array {
  const a = new Uint8Array(size);
  for (let i = 0; i < size; i++) a[i] = <u8>(tag + <u32>i * 31);
  // The tag itself, so a check does not need to know it.
  if (size >= 4) store<u32>(a.dataStart, tag);
  return a;
}

function intact(a: Uint8Array): bool {
  const size = a.length;
  if (size < 4) return true;
  const tag = load<u32>(a.dataStart);
  for (let i = 4; i < size; i++) if (a[i] != <u8>(tag + <u32>i * 31)) return false;
  return true;
}

function churn(seed: u32, objects: i32, keep: u32): i32 {
  state = seed == 0 ? 1 : seed;
  for (let n = 0; n < objects; n++) {
    const r = rand();
    const a = patterned(<i32>(1 + r % 600), r);
    if (keep != 0 && (r >> 10) % keep == 0) live[(r >> 13) % LIVE] = a;
  }
  let bad = 0;
  for (let i = 0; i < LIVE; i++) {
    const a = live[i];
    if (a !== null && !intact(a)) bad++;
  }
  return bad;
}

function big(bytes: i32): void {
  const b = new ArrayBuffer(bytes);
  memory.fill(changetype<usize>(b), 0x5a, <usize>bytes);
}

class Root extends RootContext {
  createContext(id: u32): Context {
    return new Stream(id, this);
  }
}

class Stream extends Context {
  onRequestHeaders(n: u32, eos: bool): FilterHeadersStatusValues {
    const headers = stream_context.headers.request;
    const c = headers.get("x-churn");
    if (c.length) {
      const parts = c.split(",");
      const bad = churn(<u32>I32.parseInt(parts[0]), I32.parseInt(parts[1]), <u32>I32.parseInt(parts[2]));
      headers.add("x-bad", bad.toString());
    }
    const b = headers.get("x-big");
    if (b.length) big(I32.parseInt(b));
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((id: u32) => new Root(id), "small-blocks");
