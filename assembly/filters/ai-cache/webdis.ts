// A store several Envoys share: Redis, reached over HTTP through Webdis (Redis's HTTP interface, a
// Debian package), with proxy_http_call. A lookup is GET /GET/<prefix><key in hex> (the value as it
// is: ?type=application/octet-stream; 404 when there is none); an answer is kept with
// PUT /SETEX/<prefix><key>/<seconds> and the value as the body, so Redis expires it; Redis's own
// maxmemory and an LRU policy bound it (docs/cache.md). The value is store.ts's encodeEntry, and a
// lookup checks the whole key and the expiry in it, as the shared-data store does.
//
// Failures never fail a request: a lookup that errs or times out is a miss, a write that errs is
// counted (sluice_cache_stores{outcome="refused"}), and both count sluice_cache_store_errors.
import { Context, RootContext, BaseContext } from "../../lib/sdk";
import { httpCall, httpCallStatus, httpCallBody } from "../../lib/http-call";
import { toHex } from "../../lib/sha256";
import { AnswerStore, Entry, Finding, Found, StoreStats, decodeEntry } from "./store";
import { countStore, countStoreError } from "./metrics";

export class WebdisSettings {
  cluster: string = "";
  authority: string = "";
  /** Prepended to every Redis key (several gateways may share one Redis). */
  prefix: string = "sluice:cache:";
  authHeader: string = "";
  /** The credential header's value, or null for none. */
  authValue: string | null = null;
  timeoutMs: u32 = 200;
  /** The largest value read back. */
  maxBytes: i64 = 0;
}

class PendingFind {
  key: StaticArray<u8>;
  nowMs: i64;
  found: Found;
  ctx: Context;
  store: WebdisStore;

  constructor(key: StaticArray<u8>, nowMs: i64, found: Found, ctx: Context, store: WebdisStore) {
    this.key = key;
    this.nowMs = nowMs;
    this.found = found;
    this.ctx = ctx;
    this.store = store;
  }
}

// Lookups out, by their stream's context id.
const finds = new Map<u32, PendingFind>();

export class WebdisStore extends AnswerStore {
  s: WebdisSettings;

  constructor(s: WebdisSettings) {
    super();
    this.s = s;
  }

  headers(method: string, path: string): Array<string> {
    const h = [":method", method, ":path", path, ":authority", this.s.authority];
    if (this.s.authValue !== null) {
      h.push(this.s.authHeader);
      h.push(this.s.authValue as string);
    }
    return h;
  }

  find(key: StaticArray<u8>, nowMs: i64, ctx: Context, root: RootContext, found: Found): Finding {
    const f = new Finding();
    const path = "/GET/" + this.s.prefix + toHex(key) + "?type=application/octet-stream";
    if (!httpCall(root, this.s.cluster, this.headers("GET", path), new ArrayBuffer(0), this.s.timeoutMs, ctx, onGet)) {
      countStoreError();
      return f;
    }
    finds.set(ctx.context_id, new PendingFind(key, nowMs, found, ctx, this));
    f.pending = true;
    return f;
  }

  keep(key: StaticArray<u8>, data: ArrayBuffer, expiresMs: i64, nowMs: i64, root: RootContext, stats: StoreStats): bool {
    let seconds = (expiresMs - nowMs + 999) / 1000;
    if (seconds < 1) seconds = 1;
    const path = "/SETEX/" + this.s.prefix + toHex(key) + "/" + seconds.toString();
    // The answer to a write concerns no stream: it goes to the root context.
    if (!httpCall(root, this.s.cluster, this.headers("PUT", path), data, this.s.timeoutMs, root, onSet)) {
      countStoreError();
      return false;
    }
    stats.pending = true;
    return true;
  }

  drop(ctx: Context): void {
    finds.delete(ctx.context_id);
  }
}

function onGet(origin: BaseContext, headers: u32, bodySize: usize, _trailers: u32): void {
  const id = origin.context_id;
  if (!finds.has(id)) return;
  const p = finds.get(id);
  finds.delete(id);
  const status = httpCallStatus(headers);
  let e: Entry | null = null;
  if (status == 200 && <i64>bodySize <= p.store.s.maxBytes) e = decodeEntry(httpCallBody(bodySize), p.key, p.nowMs);
  else if (status != 404) countStoreError();
  const found = p.found;
  found(p.ctx, e);
}

function onSet(_origin: BaseContext, headers: u32, bodySize: usize, _trailers: u32): void {
  // Webdis answers 200 {"SETEX":[true,"OK"]} when Redis took the value, and 200 with false and
  // Redis's error (out of memory, say) when it did not.
  const ok = httpCallStatus(headers) == 200 && bodySize < 256 && String.UTF8.decode(httpCallBody(bodySize)).includes("[true");
  if (ok) countStore("stored", false);
  else {
    countStoreError();
    countStore("refused", false);
  }
}
