// The exact cache's key: SHA-256 over the request in a canonical form, so two requests that ask a
// model the same thing get the same key however their JSON is laid out.
//
// What goes in: the client API (each replays its own answers: a Messages request and a Chat request
// are different keys), the scope (the consumer, unless the scope is shared), the pool ai-router
// chose and the model after its rule's mapping (sluice.route_model replaces the client's), and every
// member of the body except those that do not change what the model writes (whether it streams, who
// the end user is, metadata, storage and tier hints). Objects are written with their members sorted
// by key; strings and numbers exactly as the client wrote them.
import { ByteBuilder, JsonValue, JsonKind } from "../../lib/json";
import { sha256 } from "../../lib/sha256";

/** Top-level members that never change the answer (any client API). */
const IGNORED = ["model", "stream", "stream_options", "user", "metadata", "store", "service_tier", "prompt_cache_key", "safety_identifier", "background"];

/** The canonical form of v into out: members sorted by key, arrays in order, scalars as written. */
export function canonical(v: JsonValue, out: ByteBuilder, top: bool, skip: string = ""): void {
  if (v.kind != JsonKind.Object) {
    if (v.kind != JsonKind.Array || v.isNumberSpan()) {
      out.value(v);
      return;
    }
    out.byte(0x5b);
    for (let i = 0, n = v.length; i < n; i++) {
      if (i) out.byte(0x2c);
      canonical(v.at(i), out, false);
    }
    out.byte(0x5d);
    return;
  }
  const n = v.length;
  const order = new Array<i32>(n);
  for (let i = 0; i < n; i++) unchecked((order[i] = i));
  // (AssemblyScript has no closures, so no comparator can read v's keys: sorted by hand.)
  sortByKey(v, order);
  out.byte(0x7b);
  let written = 0;
  for (let j = 0; j < n; j++) {
    const i = unchecked(order[j]);
    const k = v.keyAt(i);
    if (top && (IGNORED.includes(k) || k == skip)) continue;
    if (written++) out.byte(0x2c);
    out.str(k).byte(0x3a);
    canonical(v.at(i), out, false);
  }
  out.byte(0x7d);
}

/** Insertion sort of member indexes by key (objects in requests have a handful of members). */
function sortByKey(v: JsonValue, order: Array<i32>): void {
  for (let i = 1; i < order.length; i++) {
    const cur = unchecked(order[i]);
    const key = v.keyAt(cur);
    let j = i - 1;
    while (j >= 0 && v.keyAt(unchecked(order[j])) > key) {
      unchecked((order[j + 1] = order[j]));
      j--;
    }
    unchecked((order[j + 1] = cur));
  }
}

/** The key's 32 bytes for a request (see the top of this file). */
export function requestKey(client: i32, scope: string, pool: string, model: string, body: JsonValue, sizeHint: i32): StaticArray<u8> {
  const out = new ByteBuilder(sizeHint + 128);
  out.raw("sluice-cache-1\n").int(client).byte(0x0a);
  out.str(scope).byte(0x0a).str(pool).byte(0x0a).str(model).byte(0x0a);
  canonical(body, out, true);
  return sha256(changetype<usize>(out.buf), <usize>out.len);
}
