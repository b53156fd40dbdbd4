// The gateway's own store of recent Responses, for providers without OpenAI's Responses API
// (previous_response_id, GET and DELETE /v1/responses/{id}); an OpenAI or Azure OpenAI instance
// keeps its own. It lives in proxy-wasm shared data, which Envoy keeps once per process for
// every worker VM with the same vm_id (proxy-wasm-cpp-host src/shared_data.cc, SharedData: a map
// of vm_id -> key -> (value, cas)).
//
// Bounded: shared data has no delete a filter can call (proxy-wasm-cpp-host src/exports.cc:
// set_shared_data is the only write; SharedData::remove in src/shared_data.cc is the host's own,
// not an export), so the store is a ring of `max_entries` keys,
// `sluice.ai-proxy.responses.<slot>`, and a counter key. Each stored
// response takes the counter's next number n (a compare-and-swap increment, so workers never
// share one) and writes slot n % max_entries, replacing the oldest entry there; the number is in
// the response's id (`..._s<n>`), so a lookup reads exactly one key and checks that the entry
// there is that id's (a reused slot holds another id: not found). An entry past max_entry_bytes
// is not written; DELETE writes an empty value (a tombstone). So the store holds at most
// max_entries + 1 keys of at most max_entry_bytes each, whatever clients send (an expired entry
// keeps its slot until the ring comes round; a configuration with fewer max_entries leaves the
// slots past it as they were, unread, until Envoy restarts).
//
// An entry is one JSON object: {"id", "consumer", "expires_ms", "response": the Response as the
// client got it, "messages": the conversation before this answer in OpenAI chat format (the
// earlier stored conversation, then this request's input; not its instructions, which OpenAI
// does not carry over to the next response)}. The answer itself is read back from the
// Response's output (its message and function_call items are input items too).
import { getSharedData, setSharedData, setSharedDataBytes, nowNanos, WasmResultValues } from "../../lib/sdk";
import { ByteBuilder, JsonValue, parseJsonAt } from "../../lib/json";
import { Converted } from "./client-anthropic";
import { convertItem } from "./responses-request";

/** responses_store in ai-proxy's configuration. */
export class StoreConfig {
  /** Responses kept (the ring's slots); 0 turns the store off. */
  maxEntries: i64 = 1000;
  /** Largest entry (the Response and the conversation, as JSON); a larger one is not stored. */
  maxEntryBytes: i64 = 262144;
  /** How long an entry can be read. */
  ttlMs: i64 = 3600000;
}

const PREFIX = "sluice.ai-proxy.responses.";
const COUNTER = "sluice.ai-proxy.responses.next";
/** What separates the ring number at the end of a stored response's id. */
const MARK = "_s";
const MAX_CAS_TRIES = 32;
/** An empty value: what a deleted entry's slot holds. */
const TOMBSTONE = new ArrayBuffer(0);

function nowMs(): i64 {
  return <i64>(nowNanos() / 1000000);
}

/** The counter's next number, process-wide; -1 when shared data refuses it. */
function nextNumber(): i64 {
  for (let i = 0; i < MAX_CAS_TRIES; i++) {
    const cur = getSharedData(COUNTER);
    let n: i64 = 0;
    if (cur.value !== null && (cur.value as ArrayBuffer).byteLength) n = I64.parseInt(String.UTF8.decode(cur.value as ArrayBuffer));
    if (n < 0) n = 0;
    // (A key not yet set is written whatever the cas, src/shared_data.cc SharedData::set: the
    // first two writers may both take 0. Their ids still differ by the provider's id, and the
    // later write wins the slot.)
    const r = setSharedData(COUNTER, String.UTF8.encode((n + 1).toString()), cur.value === null ? 0 : cur.cas);
    if (r == WasmResultValues.Ok) return n;
    if (r != WasmResultValues.CasMismatch) return -1;
  }
  return -1;
}

/** The ring number in a stored response's id; -1 when the id has none. */
function numberOf(id: string): i64 {
  const at = id.lastIndexOf(MARK);
  if (at < 0) return -1;
  const digits = id.length - at - MARK.length;
  if (digits < 1 || digits > 15) return -1;
  for (let i = at + MARK.length; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
  }
  return I64.parseInt(id.substring(at + MARK.length));
}

/** The id can name a stored response (it ends in a ring number, and the store is on). */
export function mayBeStored(cfg: StoreConfig, id: string): bool {
  return cfg.maxEntries > 0 && numberOf(id) >= 0;
}

function slotKey(cfg: StoreConfig, n: i64): string {
  return PREFIX + (n % cfg.maxEntries).toString();
}

/**
 * One translated Responses request's part in the store: what it writes once its answer is
 * complete. Made only when the store is on and the request does not say `store: false`.
 */
export class ResponseKeeper {
  cfg: StoreConfig;
  consumer: string;
  /** The chat messages the provider was sent; those from `from` on are stored (not instructions). */
  messages: JsonValue;
  from: i32;
  /** The ring number (-2: not taken yet; -1: shared data refused one, nothing is stored). */
  n: i64 = -2;

  constructor(cfg: StoreConfig, consumer: string, messages: JsonValue, from: i32) {
    this.cfg = cfg;
    this.consumer = consumer;
    this.messages = messages;
    this.from = from;
  }

  /** What the Response's id ends with (`_s<n>`), taking a number the first time. */
  suffix(): string {
    if (this.n == -2) this.n = nextNumber();
    return this.n >= 0 ? MARK + this.n.toString() : "";
  }

  /**
   * Stores the Response just written (the JSON at ptr, len bytes) with the conversation, unless
   * the entry would be larger than max_entry_bytes. One shared-data write.
   */
  keep(id: string, ptr: usize, len: i32): void {
    if (this.n < 0) return;
    const max = this.cfg.maxEntryBytes;
    if (<i64>len > max) return;
    const b = new ByteBuilder(len + 256);
    b.raw('{"id":').str(id).raw(',"consumer":').str(this.consumer).raw(',"expires_ms":').int(nowMs() + this.cfg.ttlMs);
    b.raw(',"response":').bytes(ptr, len).raw(',"messages":[');
    const m = this.messages;
    for (let i = this.from, k = m.length; i < k; i++) {
      if (i > this.from) b.byte(0x2c);
      b.value(m.at(i));
      if (<i64>b.len > max) return; // too large: not stored (previous_response_id to it is a 400)
    }
    b.raw("]}");
    if (<i64>b.len > max) return;
    setSharedDataBytes(slotKey(this.cfg, this.n), changetype<usize>(b.buf), b.len, 0);
  }
}

/** A keeper for the request, or null: the store is off, or the client said `store: false`. */
export function keeperFor(cfg: StoreConfig, clientReq: JsonValue, consumer: string, chatReq: JsonValue): ResponseKeeper | null {
  if (cfg.maxEntries <= 0) return null;
  const store = clientReq.get("store");
  if (store !== null && store.isBool() && !store.b) return null;
  const messages = chatReq.get("messages");
  if (messages === null || !messages.isArray()) return null;
  // The instructions are the first message when the request has them (responsesToOpenAI).
  const ins = clientReq.get("instructions");
  return new ResponseKeeper(cfg, consumer, messages, ins !== null && ins.isString() ? 1 : 0);
}

/** A stored entry read back: its parsed JSON and the cas it was read with. */
export class StoredEntry {
  entry: JsonValue;
  cas: u32;
  key: string;

  constructor(entry: JsonValue, cas: u32, key: string) {
    this.entry = entry;
    this.cas = cas;
    this.key = key;
  }
}

/**
 * The entry stored for id, when it is there, this consumer's and not expired; else null (the
 * same for all three, so an id of another consumer's is not told from an unknown one).
 */
export function findStored(cfg: StoreConfig, id: string, consumer: string, maxValues: i32): StoredEntry | null {
  if (cfg.maxEntries <= 0) return null;
  const n = numberOf(id);
  if (n < 0) return null;
  const key = slotKey(cfg, n);
  const v = getSharedData(key);
  if (v.value === null) return null;
  const buf = v.value as ArrayBuffer;
  if (buf.byteLength == 0) return null; // deleted, or never written
  const e = parseJsonAt(changetype<usize>(buf), <usize>buf.byteLength, buf, maxValues);
  if (e === null || !e.isObject()) return null;
  if (e.getString("id") != id || e.getString("consumer") != consumer) return null;
  const exp = e.get("expires_ms");
  if (exp === null || !exp.isNumber() || <i64>exp.n <= nowMs()) return null;
  return new StoredEntry(e, v.cas, key);
}

/**
 * The conversation up to and including a stored response, as chat messages: its stored messages,
 * then its output (message and function_call items read as input items are).
 */
export function historyOf(s: StoredEntry): JsonValue | null {
  const messages = s.entry.get("messages");
  const response = s.entry.get("response");
  if (messages === null || !messages.isArray() || response === null) return null;
  const out = response.get("output");
  if (out === null || !out.isArray()) return messages;
  const r = new Converted();
  for (let i = 0, n = out.length; i < n && r.error === null; i++) {
    const item = out.at(i);
    const type = item.getString("type");
    // Only what the gateway writes (message and function_call items) is there.
    if (type == "message" || type == "function_call") convertItem(item, i, messages, r);
  }
  return r.error === null ? messages : null;
}

/** Tombstones a stored response (compare-and-swap: an entry written since is left alone). */
export function deleteStored(s: StoredEntry): bool {
  return setSharedDataBytes(s.key, changetype<usize>(TOMBSTONE), 0, s.cas) == WasmResultValues.Ok;
}
