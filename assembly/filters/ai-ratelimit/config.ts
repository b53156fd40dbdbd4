// ai-ratelimit configuration: rules, each with a key, a limit, a window and a cost strategy.
// See README, "ai-ratelimit". Every mistake is reported with the path of the field at fault.
import { PriceTable, builtinPrices, readPrices } from "../../lib/prices";
import { ConfigReader, isHeaderName } from "../../lib/config";
import { JsonValue, JsonKind } from "../../lib/json";
import { defineMetric, METRIC_COUNTER } from "../../lib/sdk";
import { Window, CAL_NONE, CAL_WEEK, CAL_MONTH } from "./window";

// Key parts: where a rule's counter key (and its `when` conditions) take their values from.
export const PART_CONSUMER: i32 = 0; // filter state sluice.consumer (key-auth)
export const PART_MODEL: i32 = 1; // the "model" member of the JSON request body
export const PART_POOL: i32 = 2; // filter state sluice.pool (ai-router)
export const PART_INSTANCE: i32 = 3; // filter state sluice.instance (ai-proxy; known only at on_log)
export const PART_PATH: i32 = 4; // :path without the query string
export const PART_HEADER: i32 = 5; // a request header
// filter state sluice.groups (identity): a consumer in several groups has one counter in each; as a
// condition, any of its groups matching is a match.
export const PART_GROUP: i32 = 6;
export const PART_KEY: i32 = 7; // filter state sluice.key_id (key-auth, a virtual key's id)
export const PART_TEAM: i32 = 8; // filter state sluice.team (key-auth, a virtual key's team)
// Agent traffic (docs/mcp.md, docs/a2a.md): filter state the mcp and a2a filters write before this one runs.
export const PART_MCP_SERVER: i32 = 9;
export const PART_MCP_TOOL: i32 = 10;
export const PART_MCP_METHOD: i32 = 11;
export const PART_A2A_AGENT: i32 = 12;
export const PART_A2A_METHOD: i32 = 13;

export const PART_NAMES = "consumer, group, key, team, model, pool, instance, path, mcp_server, mcp_tool, mcp_method, a2a_agent, a2a_method or header:<name>";

export const STRATEGY_TOTAL: i32 = 0;
export const STRATEGY_PROMPT: i32 = 1;
export const STRATEGY_COMPLETION: i32 = 2;
export const STRATEGY_WEIGHTED: i32 = 3;
/** Money: micro-units of the prices' currency (lib/prices.ts); `budget` sets the limit in whole units. */
export const STRATEGY_COST: i32 = 4;
/** Calls: each admitted request counts 1, whatever it used; the only strategy that applies to agent traffic. */
export const STRATEGY_REQUESTS: i32 = 5;

const MAX_LIMIT: i64 = 1000000000000000; // 1e15: sums of costs stay exact in i64 and f64
const MAX_WINDOW_SECONDS: i64 = 366 * 86400;
// The same default as ai-router's max_body_bytes and ai-proxy's max_request_body_bytes.
const DEFAULT_MAX_BODY: i64 = 10485760;

export class Part {
  kind: i32 = PART_CONSUMER;
  /** For PART_HEADER: index into Settings.headerNames. */
  header: i32 = -1;
  name: string = "";
}

/** A `when` condition: the part's value must match one of the patterns (exact, or prefix*). */
export class Condition {
  part: Part = new Part();
  patterns: Array<string> = [];

  matches(value: string | null): bool {
    if (value === null) return false;
    const v = value as string;
    for (let i = 0; i < this.patterns.length; i++) {
      const p = unchecked(this.patterns[i]);
      if (p.endsWith("*")) {
        if (v.startsWith(p.substring(0, p.length - 1))) return true;
      } else if (p == v) return true;
    }
    return false;
  }
}

export class Rule {
  index: i32 = 0;
  name: string = "";
  parts: Array<Part> = [];
  when: Array<Condition> = [];
  limit: i64 = 0;
  window: Window = new Window(60, false, 1);
  windowText: string = "";
  strategy: i32 = STRATEGY_TOTAL;
  wPrompt: f64 = 1;
  wCompletion: f64 = 1;
  wCached: f64 = 1;
  /** Mid-stream enforcement: margin added to the stream budget; -1 when disabled. */
  streamMargin: i64 = -1;
  maxKeys: i64 = 10000;
  /** Soft limit: past this share of the limit an admitted request is warned (0: never). */
  warnAt: f64 = 0;
  warnedMetric: u32 = 0;
  /** Has the key part group: one counter per group of the consumer. */
  groupKey: bool = false;
  /** Its `when` condition on group, if any: only the groups it matches get a counter. */
  groupWhen: Condition | null = null;
  /** Keyed by (or conditioned on) the instance: charged at on_log, never checked at admission. */
  meter: bool = false;
  /** Shared-data key prefix: sluice.ai-ratelimit.<name>. */
  prefix: string = "";
  admittedMetric: u32 = 0;
  rejectedMetric: u32 = 0;
  chargedMetric: u32 = 0;

  /**
   * The rule's cost of a usage: its unit is tokens, weighted tokens, or (strategy cost) the usage's
   * price in micro-units, `money`. Never negative.
   */
  cost(prompt: i64, completion: i64, cached: i64, total: i64, money: i64 = 0): i64 {
    if (this.strategy == STRATEGY_REQUESTS) return 1;
    if (this.strategy == STRATEGY_COST) return money < 0 ? 0 : money > MAX_LIMIT ? MAX_LIMIT : money;
    if (prompt < 0) prompt = 0;
    if (completion < 0) completion = 0;
    if (cached < 0) cached = 0;
    if (cached > prompt) cached = prompt;
    if (total < 0) total = prompt + completion;
    let c: i64;
    if (this.strategy == STRATEGY_TOTAL) c = total;
    else if (this.strategy == STRATEGY_PROMPT) c = prompt;
    else if (this.strategy == STRATEGY_COMPLETION) c = completion;
    else {
      const f = <f64>(prompt - cached) * this.wPrompt + <f64>completion * this.wCompletion + <f64>cached * this.wCached;
      c = f >= <f64>MAX_LIMIT ? MAX_LIMIT : <i64>Math.ceil(f);
    }
    if (c < 0) c = 0;
    return c > MAX_LIMIT ? MAX_LIMIT : c;
  }

  /** How many cost units one completion token is worth (0: completions are free for this rule). */
  get completionWeight(): f64 {
    if (this.strategy == STRATEGY_COST || this.strategy == STRATEGY_REQUESTS) return 0; // (a money budget is not cut mid-stream yet)
    if (this.strategy == STRATEGY_TOTAL || this.strategy == STRATEGY_COMPLETION) return 1;
    if (this.strategy == STRATEGY_PROMPT) return 0;
    return this.wCompletion;
  }
}

export class Settings {
  rules: Array<Rule> = [];
  /** Rules checked at admission, and rules charged only at on_log (instance). */
  admission: Array<Rule> = [];
  meters: Array<Rule> = [];
  /** Request headers any rule reads, lower case. */
  headerNames: Array<string> = [];
  /** Some rule is keyed by, or conditioned on, group (sluice.groups is read then). */
  usesGroups: bool = false;
  /** The parts (1 << PART_*) any rule's key or condition names: only their filter state is read. */
  usedParts: i32 = 0;
  defaultMaxTokens: i64 = 1024;
  rejectedStatus: u32 = 429;
  /** Some rule counts requests: MCP and A2A calls (filter state) are looked for then. */
  usesRequests: bool = false;
  /** Largest request body held for admission (max_body_bytes); a larger one gets 413 at once. */
  maxBodyBytes: i64 = DEFAULT_MAX_BODY;
  casRetries: u32 = 0;
  /** Some rule is a money budget (strategy cost): requests are priced at admission. */
  usesCost: bool = false;
  /** Prices by model (the same table ai-proxy prices its usage record with). */
  prices: PriceTable = builtinPrices();
}

function validName(name: string): bool {
  if (name.length == 0 || name.length > 64) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    const ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x2d || c == 0x5f;
    if (!ok) return false;
  }
  return true;
}

function readPart(r: ConfigReader, s: Settings, text: string, path: string): Part | null {
  const p = new Part();
  p.name = text;
  if (text == "consumer") p.kind = PART_CONSUMER;
  else if (text == "group") {
    p.kind = PART_GROUP;
    s.usesGroups = true;
  }
  else if (text == "key") p.kind = PART_KEY;
  else if (text == "team") p.kind = PART_TEAM;
  else if (text == "model") p.kind = PART_MODEL;
  else if (text == "pool") p.kind = PART_POOL;
  else if (text == "instance") p.kind = PART_INSTANCE;
  else if (text == "path") p.kind = PART_PATH;
  else if (text == "mcp_server") p.kind = PART_MCP_SERVER;
  else if (text == "mcp_tool") p.kind = PART_MCP_TOOL;
  else if (text == "mcp_method") p.kind = PART_MCP_METHOD;
  else if (text == "a2a_agent") p.kind = PART_A2A_AGENT;
  else if (text == "a2a_method") p.kind = PART_A2A_METHOD;
  else if (text.startsWith("header:")) {
    const h = text.substring(7).trim().toLowerCase();
    if (!isHeaderName(h)) {
      r.fail(path, "'" + text + "': the header name must be a valid HTTP header name, e.g. header:x-team");
      return null;
    }
    p.kind = PART_HEADER;
    p.name = "header:" + h;
    let i = s.headerNames.indexOf(h);
    if (i < 0) {
      i = s.headerNames.length;
      s.headerNames.push(h);
    }
    p.header = i;
  } else {
    r.fail(path, "unknown key part '" + text + "' (expected " + PART_NAMES + ")");
    return null;
  }
  s.usedParts |= 1 << p.kind;
  return p;
}

/** "30s", "15m", "24h", "7d", or a whole number of seconds. Returns seconds, or 0 after r.fail. */
function readWindow(r: ConfigReader, v: JsonValue | null, path: string): i64 {
  if (v === null) {
    r.fail(path, "is required (e.g. \"1m\", \"1h\", \"1d\", \"week\", \"month\", or seconds)");
    return 0;
  }
  let secs: i64 = 0;
  if (v.isNumber()) {
    if (!v.isInteger()) {
      r.fail(path, "must be a whole number of seconds or a duration such as \"1m\"");
      return 0;
    }
    secs = <i64>v.n;
  } else if (v.isString()) {
    const t = v.s;
    if (t.length < 2) {
      r.fail(path, "'" + t + "' is not a duration (expected a number followed by s, m, h or d, e.g. \"1m\")");
      return 0;
    }
    const unit = t.charCodeAt(t.length - 1);
    let mult: i64 = 0;
    if (unit == 0x73) mult = 1; // s
    else if (unit == 0x6d) mult = 60; // m
    else if (unit == 0x68) mult = 3600; // h
    else if (unit == 0x64) mult = 86400; // d
    const digits = t.substring(0, t.length - 1);
    let ok = mult > 0 && digits.length > 0 && digits.length <= 9;
    for (let i = 0; ok && i < digits.length; i++) {
      const c = digits.charCodeAt(i);
      if (c < 0x30 || c > 0x39) ok = false;
    }
    if (!ok) {
      r.fail(path, "'" + t + "' is not a duration (expected a number followed by s, m, h or d, e.g. \"1m\")");
      return 0;
    }
    secs = I64.parseInt(digits) * mult;
  } else {
    r.fail(path, "must be a duration such as \"1m\" or a whole number of seconds");
    return 0;
  }
  if (secs <= 0) {
    r.fail(path, "must be longer than 0 seconds");
    return 0;
  }
  if (secs > MAX_WINDOW_SECONDS) {
    r.fail(path, "must be at most 366 days");
    return 0;
  }
  return secs;
}

function readWeight(r: ConfigReader, obj: JsonValue, key: string, path: string, def: f64): f64 {
  const v = obj.get(key);
  if (v === null) return def;
  if (!v.isNumber() || !isFinite(v.n) || v.n < 0 || v.n > 1000000) {
    r.fail(path + "." + key, "must be a number from 0 to 1000000");
    return def;
  }
  return v.n;
}

function readRule(r: ConfigReader, s: Settings, v: JsonValue, path: string, seen: Set<string>): Rule | null {
  if (!v.isObject()) {
    r.fail(path, "must be an object with name, limit and window");
    return null;
  }
  r.onlyKnown(v, path, ["name", "key", "when", "limit", "budget", "window", "window_type", "sub_buckets", "strategy", "weights", "stream_margin", "max_keys", "warn_at"]);
  if (!r.ok) return null;
  const rule = new Rule();
  rule.name = r.str(v, "name", path, "");
  if (!r.ok) return null;
  if (!validName(rule.name)) {
    r.fail(path + ".name", rule.name.length == 0 ? "is required" : "'" + rule.name + "' must be 1 to 64 letters, digits, '-' or '_'");
    return null;
  }
  if (seen.has(rule.name)) {
    r.fail(path + ".name", "duplicate rule name '" + rule.name + "'");
    return null;
  }
  seen.add(rule.name);

  const key = r.array(v, "key", path, false);
  const used = new Set<string>();
  for (let i = 0; i < key.length && r.ok; i++) {
    const kp = path + ".key[" + i.toString() + "]";
    const item = key[i];
    if (!item.isString()) {
      r.fail(kp, "must be a string (" + PART_NAMES + ")");
      break;
    }
    const part = readPart(r, s, item.s, kp);
    if (part === null) break;
    if (used.has(part.name)) {
      r.fail(kp, "'" + part.name + "' is listed twice");
      break;
    }
    used.add(part.name);
    if (part.kind == PART_INSTANCE) rule.meter = true;
    if (part.kind == PART_GROUP) rule.groupKey = true;
    rule.parts.push(part);
  }

  const when = v.get("when");
  if (when !== null && r.ok) {
    if (!when.isObject()) r.fail(path + ".when", "must be an object such as {\"model\": [\"gpt-4o*\"]}");
    else {
      const keys = when.keys as Array<string>;
      const vals = when.vals as Array<JsonValue>;
      for (let i = 0; i < keys.length && r.ok; i++) {
        const wp = path + ".when." + keys[i];
        const part = readPart(r, s, keys[i], wp);
        if (part === null) break;
        const c = new Condition();
        c.part = part;
        const list = vals[i];
        if (list.isString()) c.patterns.push(list.s);
        else if (list.kind == JsonKind.Array && list.length > 0) {
          const items = list.items as Array<JsonValue>;
          for (let j = 0; j < items.length; j++) {
            if (!items[j].isString()) {
              r.fail(wp + "[" + j.toString() + "]", "must be a string");
              break;
            }
            c.patterns.push(items[j].s);
          }
        } else r.fail(wp, "must be a string or a non-empty list of strings (exact values, or prefixes ending in *)");
        if (part.kind == PART_INSTANCE) rule.meter = true;
        if (part.kind == PART_GROUP) rule.groupWhen = c;
        rule.when.push(c);
      }
    }
  }
  if (!r.ok) return null;

  // A money budget (strategy cost) is `budget` in whole units of the currency; counted in micro-units.
  const money = r.str(v, "strategy", path, "total_tokens") == "cost";
  if (money) {
    const b = v.get("budget");
    if (v.get("limit") !== null) r.fail(path + ".limit", "a cost rule takes budget (in the prices' currency), not limit");
    else if (b === null || !b.isNumber() || b.n <= 0 || b.n > 1e9) r.fail(path + ".budget", "is required with strategy cost: the money per window, in the prices' currency (e.g. 50 for 50 dollars)");
    else rule.limit = <i64>Math.round(b.n * 1e6);
    if (!r.ok) return null;
  } else if (v.get("budget") !== null) {
    r.fail(path + ".budget", "applies only to strategy cost (a money budget); a token limit is limit");
    return null;
  } else if (v.get("limit") === null) {
    r.fail(path + ".limit", "is required (tokens per window, at least 1)");
    return null;
  } else rule.limit = r.int(v, "limit", path, 0, 1, MAX_LIMIT);
  const win = v.get("window");
  // "week" (UTC, from Monday) and "month" (the UTC calendar month) are calendar windows, fixed only.
  const calendar = win !== null && win.isString() ? (win.s == "week" ? CAL_WEEK : win.s == "month" ? CAL_MONTH : CAL_NONE) : CAL_NONE;
  const secs: i64 = calendar == CAL_WEEK ? 7 * 86400 : calendar == CAL_MONTH ? 31 * 86400 : readWindow(r, win, path + ".window");
  if (!r.ok) return null;
  rule.windowText = win !== null && win.isString() ? win.s : secs.toString() + "s";

  const type = r.str(v, "window_type", path, "fixed");
  if (type != "fixed" && type != "sliding") {
    r.fail(path + ".window_type", "unknown window type '" + type + "' (expected fixed or sliding)");
    return null;
  }
  const sliding = type == "sliding";
  if (sliding && calendar != CAL_NONE) {
    r.fail(path + ".window_type", "a calendar window (week, month) is fixed: it starts over at each week or month");
    return null;
  }
  if (!sliding && v.get("sub_buckets") !== null) {
    r.fail(path + ".sub_buckets", "applies only to window_type sliding");
    return null;
  }
  const sub = <i32>r.int(v, "sub_buckets", path, 10, 1, 60);
  if (!r.ok) return null;
  rule.window = new Window(secs, sliding, sliding ? sub : 1, calendar);

  const strategy = r.str(v, "strategy", path, "total_tokens");
  if (strategy == "total_tokens") rule.strategy = STRATEGY_TOTAL;
  else if (strategy == "prompt_tokens") rule.strategy = STRATEGY_PROMPT;
  else if (strategy == "completion_tokens") rule.strategy = STRATEGY_COMPLETION;
  else if (strategy == "weighted") rule.strategy = STRATEGY_WEIGHTED;
  else if (strategy == "requests") {
    rule.strategy = STRATEGY_REQUESTS;
    s.usesRequests = true;
  }
  else if (strategy == "cost") {
    rule.strategy = STRATEGY_COST;
    s.usesCost = true;
  } else {
    r.fail(path + ".strategy", "unknown strategy '" + strategy + "' (expected total_tokens, prompt_tokens, completion_tokens, weighted, cost or requests)");
    return null;
  }
  const weights = v.get("weights");
  if (rule.strategy == STRATEGY_WEIGHTED) {
    if (weights === null || !weights.isObject()) {
      r.fail(path + ".weights", "is required with strategy weighted, e.g. {\"prompt\": 1, \"completion\": 4, \"cached\": 0.1}");
      return null;
    }
    r.onlyKnown(weights, path + ".weights", ["prompt", "completion", "cached"]);
    rule.wPrompt = readWeight(r, weights, "prompt", path + ".weights", 1);
    rule.wCompletion = readWeight(r, weights, "completion", path + ".weights", 1);
    rule.wCached = readWeight(r, weights, "cached", path + ".weights", rule.wPrompt);
    if (r.ok && rule.wPrompt == 0 && rule.wCompletion == 0 && rule.wCached == 0) {
      r.fail(path + ".weights", "must not all be 0");
    }
  } else if (weights !== null) {
    r.fail(path + ".weights", "applies only to strategy weighted");
  }
  if (!r.ok) return null;

  if (v.get("stream_margin") !== null) {
    rule.streamMargin = r.int(v, "stream_margin", path, 0, 0, 1000000000);
    if (r.ok && rule.meter) r.fail(path + ".stream_margin", "is not available on a rule keyed by instance (charged only when the stream ends)");
    if (r.ok && rule.completionWeight == 0) r.fail(path + ".stream_margin", "needs a strategy that counts completion tokens");
  }
  rule.maxKeys = r.int(v, "max_keys", path, 10000, 1, 1000000);
  const warn = v.get("warn_at");
  if (warn !== null) {
    if (!warn.isNumber() || warn.n <= 0 || warn.n >= 1) r.fail(path + ".warn_at", "must be a share of the limit between 0 and 1, e.g. 0.8");
    else rule.warnAt = warn.n;
  }
  if (!r.ok) return null;
  rule.prefix = "sluice.ai-ratelimit." + rule.name + ".";
  return rule;
}

export function readSettings(buf: ArrayBuffer): Settings | null {
  const r = new ConfigReader("ai-ratelimit");
  const cfg = r.parse(buf);
  if (cfg === null) {
    r.report();
    return null;
  }
  const s = new Settings();
  r.onlyKnown(cfg, "ai-ratelimit", ["rules", "default_max_tokens", "rejected_status", "max_body_bytes", "prices"]);
  readPrices(r, cfg.get("prices"), s.prices, "ai-ratelimit.prices");
  s.defaultMaxTokens = r.int(cfg, "default_max_tokens", "ai-ratelimit", 1024, 0, 1000000000);
  s.rejectedStatus = <u32>r.int(cfg, "rejected_status", "ai-ratelimit", 429, 400, 599);
  s.maxBodyBytes = r.int(cfg, "max_body_bytes", "ai-ratelimit", DEFAULT_MAX_BODY, 1, 1073741824);
  const rules = r.array(cfg, "rules", "ai-ratelimit", true);
  if (r.ok && rules.length == 0) r.fail("ai-ratelimit.rules", "must list at least one rule");
  const seen = new Set<string>();
  for (let i = 0; i < rules.length && r.ok; i++) {
    const rule = readRule(r, s, rules[i], "ai-ratelimit.rules[" + i.toString() + "]", seen);
    if (rule === null) break;
    rule.index = s.rules.length;
    s.rules.push(rule);
    if (rule.meter) s.meters.push(rule);
    else s.admission.push(rule);
  }
  if (!r.report()) return null;
  for (let i = 0; i < s.rules.length; i++) {
    const rule = s.rules[i];
    rule.admittedMetric = defineMetric(METRIC_COUNTER, "sluice.ratelimit_admitted_tokens;rule=" + rule.name);
    rule.rejectedMetric = defineMetric(METRIC_COUNTER, "sluice.ratelimit_rejected;rule=" + rule.name);
    rule.chargedMetric = defineMetric(METRIC_COUNTER, "sluice.ratelimit_charged_tokens;rule=" + rule.name);
    if (rule.warnAt > 0) rule.warnedMetric = defineMetric(METRIC_COUNTER, "sluice.ratelimit_warned;rule=" + rule.name);
  }
  s.casRetries = defineMetric(METRIC_COUNTER, "sluice.ratelimit_cas_retries");
  return s;
}
