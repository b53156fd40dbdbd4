// What a request cost: the usage record priced per model (docs/filters/ai-proxy.md, "Cost"). ai-proxy
// prices the usage record; ai-ratelimit prices a request's reservation for money budgets. Prices are per one
// million tokens in the configured currency, so a price times a token count is exactly the cost in
// micro-units (millionths of the currency): the record holds that integer, never a float.
//
// Where a price comes from, first that has one: the instance's `price` (gateway.yaml providers[].price,
// also what lowest_cost balancing reads), the configuration's `prices` table (by the upstream model:
// exact name first, then the longest `prefix*` pattern), then the built-in table below. No price: no
// cost (the access log shows "-" and no cost metric counts), never a guess.
//
// Token classes, in OpenAI's accounting (every provider's usage is read into it, providers/types.ts
// Usage): prompt_tokens include cached reads and cache writes; completion_tokens include reasoning.
//   uncached input = prompt - cached - cache_write, at `input`
//   cached input   = cached, at `cached_input` (default: `input`)
//   cache write    = cache_write (Anthropic's cache_creation_input_tokens), at `cache_write` (default: `input`)
//   output         = completion - reasoning, at `output`
//   reasoning      = reasoning, at `reasoning` (default: `output`)
// plus `request`, a fee per request in the currency.
import { Usage } from "../providers/types";
import { ConfigReader } from "./config";
import { JsonValue } from "./json";

export class Price {
  input: f64 = 0;
  output: f64 = 0;
  /** Negative: not given (the input price applies). */
  cachedInput: f64 = -1;
  cacheWrite: f64 = -1;
  /** Negative: not given (the output price applies). */
  reasoning: f64 = -1;
  request: f64 = 0;

  static of(input: f64, output: f64, cachedInput: f64 = -1, cacheWrite: f64 = -1): Price {
    const p = new Price();
    p.input = input;
    p.output = output;
    p.cachedInput = cachedInput;
    p.cacheWrite = cacheWrite;
    return p;
  }
}

/** The cost of a usage record in micro-units of the currency, rounded to the nearest. */
export function costMicros(u: Usage, p: Price): i64 {
  const prompt: f64 = u.prompt > 0 ? <f64>u.prompt : 0;
  const completion: f64 = u.completion > 0 ? <f64>u.completion : 0;
  let cached: f64 = u.cached > 0 ? <f64>u.cached : 0;
  if (cached > prompt) cached = prompt;
  let write: f64 = u.cacheWrite > 0 ? <f64>u.cacheWrite : 0;
  if (write > prompt - cached) write = prompt - cached;
  let reasoning: f64 = u.reasoning > 0 ? <f64>u.reasoning : 0;
  if (reasoning > completion) reasoning = completion;
  const c = (prompt - cached - write) * p.input
    + cached * (p.cachedInput >= 0 ? p.cachedInput : p.input)
    + write * (p.cacheWrite >= 0 ? p.cacheWrite : p.input)
    + (completion - reasoning) * p.output
    + reasoning * (p.reasoning >= 0 ? p.reasoning : p.output)
    + p.request * 1e6;
  return <i64>Math.round(c);
}

/** A request's most, for a money budget's reservation: prompt tokens at `input`, output at `output`. */
export function reservationMicros(prompt: i64, completion: i64, p: Price): i64 {
  const u = new Usage();
  u.prompt = prompt;
  u.completion = completion;
  return costMicros(u, p);
}

/** Prices by model: exact names, and `prefix*` patterns matched longest first. */
export class PriceTable {
  exact: Map<string, Price> = new Map();
  prefixes: Array<string> = [];
  prefixPrices: Array<Price> = [];

  set(pattern: string, p: Price): void {
    if (!pattern.endsWith("*")) {
      this.exact.set(pattern, p);
      return;
    }
    const prefix = pattern.substring(0, pattern.length - 1);
    const same = this.prefixes.indexOf(prefix);
    if (same >= 0) {
      this.prefixPrices[same] = p;
      return;
    }
    // Kept longest first, so the first match is the most specific.
    let at = 0;
    while (at < this.prefixes.length && this.prefixes[at].length > prefix.length) at++;
    // (AssemblyScript's splice takes no items to insert: push, then shift the tail up by one.)
    this.prefixes.push(prefix);
    this.prefixPrices.push(p);
    for (let i = this.prefixes.length - 1; i > at; i--) {
      this.prefixes[i] = this.prefixes[i - 1];
      this.prefixPrices[i] = this.prefixPrices[i - 1];
    }
    this.prefixes[at] = prefix;
    this.prefixPrices[at] = p;
  }

  find(model: string): Price | null {
    if (this.exact.has(model)) return this.exact.get(model);
    for (let i = 0; i < this.prefixes.length; i++) if (model.startsWith(this.prefixes[i])) return this.prefixPrices[i];
    return null;
  }
}

/**
 * List prices in US dollars per million tokens, standard (not batch) tier, as the providers published
 * them for these models (Anthropic's pricing page; OpenAI's, as quoted consistently in December 2026).
 * Only models whose every listed price was confirmed are here; anything else needs `prices` in
 * gateway.yaml. Prices change: override them there (`prices` wins over this table).
 */
export function builtinPrices(): PriceTable {
  const t = new PriceTable();
  // Anthropic: base input, 5-minute cache write, cache read, output.
  t.set("claude-opus-4-5*", Price.of(5, 25, 0.5, 6.25));
  t.set("claude-opus-4-1*", Price.of(15, 75, 1.5, 18.75));
  t.set("claude-opus-4-0*", Price.of(15, 75, 1.5, 18.75));
  t.set("claude-opus-4-2*", Price.of(15, 75, 1.5, 18.75));
  t.set("claude-sonnet-4*", Price.of(3, 15, 0.3, 3.75));
  t.set("claude-3-7-sonnet*", Price.of(3, 15, 0.3, 3.75));
  t.set("claude-haiku-4-5*", Price.of(1, 5, 0.1, 1.25));
  t.set("claude-3-5-haiku*", Price.of(0.8, 4, 0.08, 1));
  t.set("claude-3-haiku*", Price.of(0.25, 1.25, 0.03, 0.3));
  // OpenAI: input, output, cached input.
  t.set("gpt-4o*", Price.of(2.5, 10, 1.25));
  t.set("gpt-4o-mini*", Price.of(0.15, 0.6, 0.075));
  t.set("gpt-4.1*", Price.of(2, 8, 0.5));
  t.set("gpt-4.1-mini*", Price.of(0.4, 1.6, 0.1));
  t.set("gpt-4.1-nano*", Price.of(0.1, 0.4, 0.025));
  t.set("o3", Price.of(2, 8, 0.5));
  t.set("o3-2025-04-16", Price.of(2, 8, 0.5));
  t.set("o4-mini*", Price.of(1.1, 4.4, 0.275));
  t.set("text-embedding-3-small", Price.of(0.02, 0));
  t.set("text-embedding-3-large", Price.of(0.13, 0));
  return t;
}

const PRICE_FIELDS: Array<string> = ["input", "output", "cached_input", "cache_write", "reasoning", "request"];

/** A price object: per million tokens of each class, and a fee per request (prices.ts). */
export function readPrice(r: ConfigReader, v: JsonValue, path: string): Price | null {
  if (!v.isObject()) {
    r.fail(path, "must be {\"input\": <per million tokens>, \"output\": <per million tokens>, ...}");
    return null;
  }
  r.onlyKnown(v, path, PRICE_FIELDS);
  const p = new Price();
  for (let i = 0; i < PRICE_FIELDS.length; i++) {
    const k = PRICE_FIELDS[i];
    const n = v.get(k);
    if (n === null) continue;
    if (!n.isNumber() || n.n < 0 || n.n > 1e6) {
      r.fail(path + "." + k, "must be a number from 0 to 1000000");
      continue;
    }
    if (k == "input") p.input = n.n;
    else if (k == "output") p.output = n.n;
    else if (k == "cached_input") p.cachedInput = n.n;
    else if (k == "cache_write") p.cacheWrite = n.n;
    else if (k == "reasoning") p.reasoning = n.n;
    else p.request = n.n;
  }
  return p;
}

/** `prices`: {"<model or prefix*>": <price>, ...}, set over `table` (at: the field's path). */
export function readPrices(r: ConfigReader, v: JsonValue | null, table: PriceTable, at: string): void {
  if (v === null) return;
  if (!v.isObject()) {
    r.fail(at, "must be an object of model name (or prefix*) to price");
    return;
  }
  for (let i = 0; i < v.length; i++) {
    const model = v.keyAt(i);
    const path = at + "." + model;
    if (model.length == 0 || model.length > 256 || (model.indexOf("*") >= 0 && model.indexOf("*") != model.length - 1)) {
      r.fail(path, "a model name, or a prefix ending in *");
      continue;
    }
    const p = readPrice(r, v.at(i), path);
    if (p !== null) table.set(model, p);
  }
}
