// ai-cache: answers repeated and near-repeated chat requests from a store inside Envoy (docs/cache.md).
// After ai-guard (a blocked prompt is never answered; a masked one is looked up masked) and before
// ai-ratelimit and ai-proxy (a hit reserves no tokens and reaches no provider). A request's key is
// its canonical form (key.ts); a hit is a local reply in the client's API, streamed when the client
// asked (hit.ts); on a miss ai-proxy leaves the complete answer in filter state and it is kept when
// the response ends (keep.ts). With `semantic`, an exact miss embeds the prompt and looks for a
// cached prompt close enough (semantic.ts).
export * from "@gcoredev/proxy-wasm-sdk-as/assembly/proxy";
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, FilterDataStatusValues, FilterTrailersStatusValues,
  REQUEST_HEADERS, RESPONSE_HEADERS, REQUEST_BODY, getHeaderPairs, getHeader, getBuffer, replaceHeader, removeHeader,
  pluginConfiguration, setFilterState, setFilterStateInt, getFilterState, nowNanos, continueRequest,
} from "../../lib/sdk";
import { parseJson, JsonValue } from "../../lib/json";
import * as keys from "../../lib/keys";
import { Settings, SCOPE_SHARED, readSettings } from "./config";
import { CacheRequest, readHeaders, streams, includeUsage, bodyModel, bodyBypass } from "./request";
import { requestKey } from "./key";
import { AnswerStore, Entry, SharedStore } from "./store";
import { WebdisStore, WebdisSettings } from "./webdis";
import { HitRequest, serveHit } from "./hit";
import { keepAnswer } from "./keep";
import { countRequest } from "./metrics";
import { SemanticIndex, Lookup, startLookup, rememberPrompt, dropLookup } from "./semantic";

/** The most JSON values read from one request (each costs memory a VM never gives back). */
const MAX_REQUEST_VALUES: i32 = 500000;

// Where a request is.
const IDLE: i32 = 0; // not a chat request, or bypassed: nothing to do
const READING: i32 = 1; // headers held, body arriving
const LOOKING: i32 = 2; // waiting on the prompt's embedding
const HIT: i32 = 3; // answered from the cache
const MISS: i32 = 4; // sent on; its answer may be kept

class CacheRoot extends RootContext {
  settings: Settings | null = null;
  store: AnswerStore | null = null;
  index: SemanticIndex | null = null;

  createContext(context_id: u32): Context {
    return new CacheStream(context_id, this);
  }

  onConfigure(size: u32): bool {
    const s = readSettings(pluginConfiguration(size));
    if (s === null) return false;
    this.settings = s;
    this.store = s.webdis !== null ? new WebdisStore(s.webdis as WebdisSettings) as AnswerStore : new SharedStore(s.maxEntries) as AnswerStore;
    this.index = s.semantic !== null ? new SemanticIndex(s) : null;
    return true;
  }
}

class CacheStream extends Context {
  s: Settings | null = null;
  state: i32 = IDLE;
  req: CacheRequest | null = null;
  hit: HitRequest = new HitRequest();
  body: JsonValue | null = null;
  key: StaticArray<u8> = new StaticArray<u8>(0);
  scopeName: string = "";
  pool: string = "";
  model: string = "";
  bodyLength: usize = 0;
  status: i32 = 0;
  lookup: Lookup | null = null;

  constructor(id: u32, root: CacheRoot) {
    super(id, root);
  }

  get cacheRoot(): CacheRoot {
    return changetype<CacheRoot>(this.root_context);
  }

  onRequestHeaders(_n: u32, endOfStream: bool): FilterHeadersStatusValues {
    const s = this.cacheRoot.settings;
    if (s === null || endOfStream) return FilterHeadersStatusValues.Continue;
    const r = readHeaders(getHeaderPairs(REQUEST_HEADERS));
    if (r === null) return FilterHeadersStatusValues.Continue;
    this.s = s;
    this.req = r;
    this.hit.startNs = nowNanos();
    if (r.ownHeader) removeHeader(REQUEST_HEADERS, "x-sluice-cache");
    if (r.bypass.length) return this.bypass(r.bypass);
    if (r.contentLength > s.maxBodyBytes) return this.bypass("too_large");
    this.state = READING;
    return FilterHeadersStatusValues.StopIteration;
  }

  bypass(reason: string): FilterHeadersStatusValues {
    this.state = IDLE;
    setFilterState(keys.CACHE, "bypass");
    countRequest("bypass", reason);
    return FilterHeadersStatusValues.Continue;
  }

  onRequestBody(length: usize, endOfStream: bool): FilterDataStatusValues {
    if (this.state == LOOKING) return FilterDataStatusValues.StopIterationAndBuffer;
    if (this.state != READING) return FilterDataStatusValues.Continue;
    this.bodyLength = length;
    if (<i64>length > (this.s as Settings).maxBodyBytes) {
      this.bypass("too_large");
      return FilterDataStatusValues.Continue;
    }
    if (!endOfStream) return FilterDataStatusValues.StopIterationAndBuffer;
    return this.decide(getBuffer(REQUEST_BODY, 0, <u32>length));
  }

  onRequestTrailers(_n: u32): FilterTrailersStatusValues {
    if (this.state == READING) {
      // (A chat request has no trailers, but a client may send them: the body ended before them.)
      if (this.decide(getBuffer(REQUEST_BODY, 0, <u32>this.bodyLength)) == FilterDataStatusValues.Continue) return FilterTrailersStatusValues.Continue;
      return FilterTrailersStatusValues.StopIteration;
    }
    return this.state == LOOKING || this.state == HIT ? FilterTrailersStatusValues.StopIteration : FilterTrailersStatusValues.Continue;
  }

  /** The whole body: answered from the cache, looked up semantically, or sent on as a miss. */
  decide(buf: ArrayBuffer): FilterDataStatusValues {
    const s = this.s as Settings;
    const r = this.req as CacheRequest;
    const parsed = parseJson(buf, MAX_REQUEST_VALUES);
    // An unreadable request is ai-proxy's to refuse, in the client's shape.
    if (parsed === null) {
      this.bypass("unreadable");
      return FilterDataStatusValues.Continue;
    }
    const body = parsed as JsonValue;
    const why = bodyBypass(r, body);
    if (why.length) {
      this.bypass(why);
      return FilterDataStatusValues.Continue;
    }
    this.body = body;
    const h = this.hit;
    h.client = r.client;
    h.stream = streams(r, body);
    h.includeUsage = includeUsage(body);
    h.geminiArray = r.geminiArray;
    h.model = bodyModel(r, body);
    const routeModel = getFilterState(keys.ROUTE_MODEL);
    const pool = getFilterState(keys.POOL);
    const model = routeModel !== null && (routeModel as string).length ? routeModel as string : h.model;
    this.scopeName = this.scope(s);
    this.pool = pool !== null ? pool as string : "";
    this.model = model;
    this.key = requestKey(r.client, this.scopeName, this.pool, model, body, <i32>buf.byteLength);
    const f = this.store.find(this.key, nowMs(), this, this.cacheRoot, onExactFound);
    if (f.pending) {
      this.state = LOOKING;
      return FilterDataStatusValues.StopIterationAndBuffer;
    }
    this.afterExact(f.entry);
    return this.state == HIT ? FilterDataStatusValues.StopIterationNoBuffer : this.state == MISS ? FilterDataStatusValues.Continue : FilterDataStatusValues.StopIterationAndBuffer;
  }

  get store(): AnswerStore {
    return this.cacheRoot.store as AnswerStore;
  }

  /**
   * The exact lookup's entry (null: none): a hit answers; else a semantic lookup starts when there
   * is one to make; else the request goes on as a miss. Leaves state HIT, LOOKING or MISS.
   */
  afterExact(e: Entry | null): void {
    const s = this.s as Settings;
    if (e !== null && serveHit(s, e, this.body as JsonValue, this.hit, "exact", 1.0)) {
      this.state = HIT;
      return;
    }
    if (s.semantic !== null) {
      const l = startLookup(this, this.cacheRoot, s, this.cacheRoot.index as SemanticIndex, this.hit.client, this.scopeName, this.pool, this.model, this.body as JsonValue, onEmbedded);
      if (l !== null) {
        this.lookup = l;
        this.state = LOOKING;
        return;
      }
    }
    this.miss();
  }

  /** A step that waited has ended: a miss lets the held request go on. */
  resumed(): void {
    if (this.state == MISS) continueRequest();
  }

  /** The prompt's embedding came back (or failed): the nearest kept prompt's answer is looked up. */
  embedded(): void {
    if (this.state != LOOKING) return;
    const l = this.lookup as Lookup;
    if (l.candidate === null) {
      this.miss();
      this.resumed();
      return;
    }
    const f = this.store.find(l.candidate as StaticArray<u8>, nowMs(), this, this.cacheRoot, onSemanticFound);
    if (!f.pending) this.semanticFound(f.entry);
  }

  /** The nearest kept prompt's answer (null: gone): a semantic hit, or a miss. */
  semanticFound(e: Entry | null): void {
    if (this.state != LOOKING) return;
    const s = this.s as Settings;
    if (e !== null && serveHit(s, e, this.body as JsonValue, this.hit, "semantic", (this.lookup as Lookup).similarity)) {
      this.state = HIT;
      return;
    }
    this.miss();
    this.resumed();
  }

  exactFound(e: Entry | null): void {
    if (this.state != LOOKING) return;
    this.afterExact(e);
    this.resumed();
  }

  /** The consumer whose answers this request may get ("*" for every consumer's). */
  scope(s: Settings): string {
    if (s.scope == SCOPE_SHARED) return "*";
    const c = getFilterState(keys.CONSUMER);
    return c !== null && (c as string).length ? "c:" + (c as string) : "anonymous";
  }

  miss(): void {
    this.state = MISS;
    setFilterState(keys.CACHE, "miss");
    setFilterStateInt(keys.CACHE_CAPTURE, (this.s as Settings).maxEntryBytes);
    countRequest("miss", "none");
  }


  onResponseHeaders(_n: u32, endOfStream: bool): FilterHeadersStatusValues {
    if (this.state == MISS) {
      const st = getHeader(RESPONSE_HEADERS, ":status");
      this.status = st !== null ? <i32>I32.parseInt(st as string) : 0;
      replaceHeader(RESPONSE_HEADERS, "x-sluice-cache", "miss");
      if (endOfStream) this.state = IDLE;
    } else if (this.req !== null && this.state == IDLE) {
      replaceHeader(RESPONSE_HEADERS, "x-sluice-cache", "bypass");
    }
    return FilterHeadersStatusValues.Continue;
  }

  onResponseBody(_length: usize, endOfStream: bool): FilterDataStatusValues {
    if (this.state != MISS || !endOfStream) return FilterDataStatusValues.Continue;
    this.state = IDLE;
    if (this.status != 200) return FilterDataStatusValues.Continue;
    const s = this.s as Settings;
    const now = nowMs();
    const outcome = keepAnswer(s, this.store, this.cacheRoot, this.key, now);
    if (outcome == "stored" && this.lookup !== null) rememberPrompt(this.lookup as Lookup, this.key, now + s.ttlMs);
    return FilterDataStatusValues.Continue;
  }

  onDone(): bool {
    // A client that hung up while the embedding was out: its answer finds nothing to do.
    if (this.state == LOOKING) {
      dropLookup(this);
      this.store.drop(this);
    }
    this.state = IDLE;
    return true;
  }
}

function nowMs(): i64 {
  return <i64>(nowNanos() / 1000000);
}

function onExactFound(ctx: Context, e: Entry | null): void {
  changetype<CacheStream>(ctx).exactFound(e);
}

function onEmbedded(ctx: Context): void {
  changetype<CacheStream>(ctx).embedded();
}

function onSemanticFound(ctx: Context, e: Entry | null): void {
  changetype<CacheStream>(ctx).semanticFound(e);
}

registerRootContext((context_id: u32) => new CacheRoot(context_id), "ai-cache");
