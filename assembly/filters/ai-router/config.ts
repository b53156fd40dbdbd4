// ai-router configuration: rules with condition trees, the default pool, the embeddings instance.
// Every mistake is reported with the path of the field at fault (ConfigReader); see README.md,
// "ai-router", for the format.
import { JsonValue } from "../../lib/json";
import { ConfigReader } from "../../lib/config";
import { Regex, regexError, foldString } from "../../lib/regex";
import { defineMetric, METRIC_COUNTER, NO_METRIC } from "../../lib/sdk";
import { getEnv } from "../../lib/env";
import { TASK_NAMES, taskIndex } from "./classify";

// Condition kinds.
export const C_ALL: i32 = 0;
export const C_ANY: i32 = 1;
export const C_NOT: i32 = 2;
export const C_HEADER: i32 = 3;
export const C_PATH: i32 = 4;
export const C_CONSUMER: i32 = 5;
/** The consumer is in one of the groups (filter state sluice.groups, set by identity). */
export const C_GROUP: i32 = 6;
// Kinds from here on need the body.
export const C_MODEL: i32 = 10;
export const C_KEYWORDS: i32 = 11;
export const C_REGEX: i32 = 12;
export const C_TOKENS: i32 = 13;
export const C_MESSAGES: i32 = 14;
export const C_TOOLS: i32 = 15;
export const C_IMAGES: i32 = 16;
export const C_JSON: i32 = 17;
export const C_TASK: i32 = 18;
export const C_COMPLEXITY: i32 = 19;
export const C_SEMANTIC: i32 = 20;

// String matchers (header, path).
export const M_EXACT: i32 = 0;
export const M_PREFIX: i32 = 1;
export const M_REGEX: i32 = 2;
export const M_PRESENT: i32 = 3;

// Text scopes.
export const SCOPE_LAST_USER: i32 = 0;
export const SCOPE_CONVERSATION: i32 = 1;

const MAX_DEPTH: i32 = 32;

export class Cond {
  kind: i32;
  kids: Array<Cond> = [];
  name: string = ""; // header name
  mode: i32 = M_EXACT;
  str: string = "";
  strs: Array<string> = []; // model globs, consumers, folded keywords
  res: Array<Regex> = [];
  want: bool = true;
  hasGt: bool = false;
  gt: f64 = 0;
  hasLt: bool = false;
  lt: f64 = 0;
  tasks: i32 = 0; // bit mask of task indexes
  scope: i32 = SCOPE_LAST_USER;
  exStart: i32 = 0; // semantic: examples [exStart, exEnd) in Settings.examples
  exEnd: i32 = 0;
  threshold: f64 = 0;
  semantic: bool = false; // this condition or one inside it is semantic
  constructor(kind: i32) { this.kind = kind; }
}

export class Rule {
  name: string = "";
  pool: string = "";
  model: string = ""; // rewrite; empty: keep the client's
  cond: Cond | null = null; // null: always
  metric: u32 = NO_METRIC;
}

export class Embeddings {
  cluster: string = "";
  model: string = "";
  path: string = "/v1/embeddings";
  authority: string = "";
  apiKey: string = "";
  dimensions: i32 = 0;
  timeoutMs: u32 = 1000;
  examplesTimeoutMs: u32 = 5000;
  maxInputChars: i32 = 4000;
  retryMs: u32 = 10000;
}

export class Settings {
  rules: Array<Rule> = [];
  defaultPool: string = "";
  routeHeader: bool = false;
  annotate: bool = false;
  maxBodyBytes: i64 = 10485760;
  // Most JSON values one request body may build (max_json_values, ai-proxy's default): each costs
  // linear memory a VM never gives back, so a body of a million empty arrays is left unread.
  maxJsonValues: i32 = 500000;
  regexBudget: i64 = 10000000;
  regexBudgetExceeded: u32 = NO_METRIC;
  embeddings: Embeddings | null = null;
  examples: Array<string> = []; // every semantic example text, in rule order
  usesConsumer: bool = false;
  usesGroups: bool = false;
  defaultMetric: u32 = NO_METRIC;
  embeddingErrors: u32 = NO_METRIC;
}

const TOP_FIELDS = ["rules", "default_pool", "route_header", "annotate", "max_body_bytes", "max_regex_steps", "max_json_values", "embeddings"];
const RULE_FIELDS = ["name", "pool", "model", "when"];
const COND_FIELDS = [
  "header", "path", "consumer", "group", "model", "keywords", "regex", "in", "tokens", "messages", "tools", "images",
  "json_mode", "task", "complexity", "semantic", "any", "all", "not",
];
const EMB_FIELDS = ["cluster", "model", "path", "authority", "api_key", "api_key_env", "dimensions", "timeout_ms", "examples_timeout_ms", "max_input_chars", "retry_ms"];

export function readSettings(buf: ArrayBuffer): Settings | null {
  const r = new ConfigReader("ai-router");
  const cfg = r.parse(buf);
  if (cfg === null) {
    r.report();
    return null;
  }
  const s = new Settings();
  const P = "ai-router";
  r.onlyKnown(cfg, P, TOP_FIELDS);
  s.defaultPool = r.str(cfg, "default_pool", P, "");
  if (r.ok && s.defaultPool.length && !isName(s.defaultPool, true)) r.fail(P + ".default_pool", "must be a name without spaces or control characters");
  s.routeHeader = r.bool(cfg, "route_header", P, false);
  s.annotate = r.bool(cfg, "annotate", P, false);
  s.maxBodyBytes = r.int(cfg, "max_body_bytes", P, 10485760, 1, 1073741824);
  s.regexBudget = r.int(cfg, "max_regex_steps", P, 10000000, 1000, 1000000000000);
  s.maxJsonValues = <i32>r.int(cfg, "max_json_values", P, 500000, 1000, 100000000);

  const emb = cfg.get("embeddings");
  if (emb !== null && r.ok) s.embeddings = readEmbeddings(r, emb, P + ".embeddings");

  const rules = r.array(cfg, "rules", P, false);
  const names = new Set<string>();
  for (let i = 0; i < rules.length && r.ok; i++) {
    const path = P + ".rules[" + i.toString() + "]";
    const rv = rules[i];
    if (!rv.isObject()) {
      r.fail(path, "must be an object with name, pool and when");
      break;
    }
    r.onlyKnown(rv, path, RULE_FIELDS);
    const rule = new Rule();
    rule.name = r.str(rv, "name", path, "");
    if (r.ok && rule.name.length == 0) r.fail(path + ".name", "is required");
    if (r.ok && !isName(rule.name, false)) r.fail(path + ".name", "must use only letters, digits, '-', '_' and '.' (it becomes a metric label and a header value)");
    if (r.ok && rule.name == "default") r.fail(path + ".name", "'default' is reserved for the default pool");
    if (r.ok && names.has(rule.name)) r.fail(path + ".name", "duplicate rule name '" + rule.name + "'");
    names.add(rule.name);
    rule.pool = r.str(rv, "pool", path, "");
    if (r.ok && rule.pool.length == 0) r.fail(path + ".pool", "is required");
    if (r.ok && !isName(rule.pool, true)) r.fail(path + ".pool", "must be a name without spaces or control characters");
    rule.model = r.str(rv, "model", path, "");
    if (r.ok && rv.get("model") !== null && rule.model.trim().length == 0) r.fail(path + ".model", "must not be empty");
    const when = rv.get("when");
    if (when !== null && r.ok) rule.cond = readCond(r, s, when, path + ".when", 0);
    s.rules.push(rule);
  }
  if (!r.report()) return null;
  for (let i = 0; i < s.rules.length; i++) {
    s.rules[i].metric = defineMetric(METRIC_COUNTER, "sluice.router_matched;rule=" + s.rules[i].name);
  }
  s.defaultMetric = defineMetric(METRIC_COUNTER, "sluice.router_matched;rule=default");
  s.regexBudgetExceeded = defineMetric(METRIC_COUNTER, "sluice.router_regex_budget_exceeded");
  if (s.embeddings !== null) s.embeddingErrors = defineMetric(METRIC_COUNTER, "sluice.router_embedding_errors");
  return s;
}

/** Rule names: metric labels and header values. Pools: no spaces or control characters. */
function isName(s: string, loose: bool): bool {
  if (s.length == 0 || s.length > 128) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (loose) {
      if (c <= 0x20 || c == 0x7f) return false;
      continue;
    }
    const ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x2d || c == 0x5f || c == 0x2e;
    if (!ok) return false;
  }
  return true;
}

function readEmbeddings(r: ConfigReader, v: JsonValue, path: string): Embeddings | null {
  if (!v.isObject()) {
    r.fail(path, "must be an object with cluster and model");
    return null;
  }
  r.onlyKnown(v, path, EMB_FIELDS);
  const e = new Embeddings();
  e.cluster = r.str(v, "cluster", path, "");
  if (r.ok && e.cluster.length == 0) r.fail(path + ".cluster", "is required (the Envoy cluster of the embeddings instance)");
  e.model = r.str(v, "model", path, "");
  if (r.ok && e.model.length == 0) r.fail(path + ".model", "is required");
  e.path = r.str(v, "path", path, "/v1/embeddings");
  if (r.ok && !e.path.startsWith("/")) r.fail(path + ".path", "must start with /");
  e.authority = r.str(v, "authority", path, e.cluster);
  e.apiKey = r.str(v, "api_key", path, "");
  const env = r.str(v, "api_key_env", path, "");
  if (r.ok && env.length) {
    if (e.apiKey.length) r.fail(path + ".api_key_env", "give api_key or api_key_env, not both");
    else {
      const k = getEnv(env);
      if (k === null) r.fail(path + ".api_key_env", "environment variable '" + env + "' is not passed to the VM");
      else e.apiKey = k as string;
    }
  }
  e.dimensions = <i32>r.int(v, "dimensions", path, 0, 0, 16384);
  e.timeoutMs = <u32>r.int(v, "timeout_ms", path, 1000, 1, 60000);
  e.examplesTimeoutMs = <u32>r.int(v, "examples_timeout_ms", path, 5000, 1, 600000);
  e.maxInputChars = <i32>r.int(v, "max_input_chars", path, 4000, 1, 1000000);
  e.retryMs = <u32>r.int(v, "retry_ms", path, 10000, 0, 3600000);
  return e;
}

function readCond(r: ConfigReader, s: Settings, v: JsonValue, path: string, depth: i32): Cond | null {
  if (depth > MAX_DEPTH) {
    r.fail(path, "conditions nested deeper than " + MAX_DEPTH.toString());
    return null;
  }
  if (!v.isObject()) {
    r.fail(path, "must be an object of conditions, e.g. {\"task\": \"code\"}");
    return null;
  }
  r.onlyKnown(v, path, COND_FIELDS);
  if (!r.ok) return null;
  let scope = SCOPE_LAST_USER;
  const inV = v.get("in");
  if (inV !== null) {
    if (!inV.isString() || (inV.s != "last_user" && inV.s != "conversation")) {
      r.fail(path + ".in", "must be \"last_user\" or \"conversation\"");
      return null;
    }
    scope = inV.s == "conversation" ? SCOPE_CONVERSATION : SCOPE_LAST_USER;
    if (v.get("keywords") === null && v.get("regex") === null && v.get("task") === null && v.get("complexity") === null) {
      r.fail(path + ".in", "applies to keywords, regex, task and complexity in the same object; none is given");
      return null;
    }
  }
  const all = new Cond(C_ALL);
  const keys = v.keys as Array<string>;
  const vals = v.vals as Array<JsonValue>;
  for (let i = 0; i < keys.length && r.ok; i++) {
    const k = keys[i];
    if (k == "in") continue;
    const c = readOne(r, s, k, vals[i], path + "." + k, depth, scope);
    if (c !== null) all.kids.push(c);
  }
  if (!r.ok) return null;
  return finish(all);
}

/** Orders kids so semantic ones run last (they may wait for an embedding) and collapses one kid. */
function finish(c: Cond): Cond {
  if (c.kind == C_ALL || c.kind == C_ANY) {
    const plain = new Array<Cond>();
    const sem = new Array<Cond>();
    for (let i = 0; i < c.kids.length; i++) {
      if (c.kids[i].semantic) sem.push(c.kids[i]);
      else plain.push(c.kids[i]);
    }
    c.kids = plain.concat(sem);
    c.semantic = sem.length > 0;
    if (c.kind == C_ALL && c.kids.length == 1) return c.kids[0];
  } else if (c.kind == C_NOT) {
    c.semantic = c.kids[0].semantic;
  }
  return c;
}

function readOne(r: ConfigReader, s: Settings, key: string, v: JsonValue, path: string, depth: i32, scope: i32): Cond | null {
  if (key == "any" || key == "all") {
    const c = new Cond(key == "any" ? C_ANY : C_ALL);
    if (!v.isArray() || v.length == 0) {
      r.fail(path, "must be a non-empty list of conditions");
      return null;
    }
    const items = v.items as Array<JsonValue>;
    for (let i = 0; i < items.length && r.ok; i++) {
      const k = readCond(r, s, items[i], path + "[" + i.toString() + "]", depth + 1);
      if (k !== null) c.kids.push(k);
    }
    return r.ok ? finish(c) : null;
  }
  if (key == "not") {
    const k = readCond(r, s, v, path, depth + 1);
    if (k === null) return null;
    const c = new Cond(C_NOT);
    c.kids.push(k);
    return finish(c);
  }
  if (key == "header" || key == "path") return readMatcher(r, s, key, v, path);
  if (key == "consumer") {
    const c = new Cond(C_CONSUMER);
    c.strs = stringList(r, v, path, "a consumer name or a list of them");
    s.usesConsumer = true;
    return c;
  }
  if (key == "group") {
    const c = new Cond(C_GROUP);
    c.strs = stringList(r, v, path, "a group name or a list of them");
    s.usesGroups = true;
    return c;
  }
  if (key == "model") {
    const c = new Cond(C_MODEL);
    c.strs = stringList(r, v, path, "a model name or glob (gpt-4*) or a list of them");
    return c;
  }
  if (key == "keywords") {
    const c = new Cond(C_KEYWORDS);
    c.scope = scope;
    const list = stringList(r, v, path, "a list of keywords");
    for (let i = 0; i < list.length; i++) {
      const k = list[i].trim();
      if (k.length == 0) {
        r.fail(path + "[" + i.toString() + "]", "must not be blank");
        return null;
      }
      c.strs.push(foldString(k));
    }
    return c;
  }
  if (key == "regex") {
    const c = new Cond(C_REGEX);
    c.scope = scope;
    const list = stringList(r, v, path, "a regular expression or a list of them");
    for (let i = 0; i < list.length && r.ok; i++) {
      const re = Regex.compile(list[i]);
      if (re === null) r.fail(v.isArray() ? path + "[" + i.toString() + "]" : path, "invalid regular expression: " + regexError);
      else c.res.push(re);
    }
    return c;
  }
  if (key == "tokens" || key == "messages") {
    const c = new Cond(key == "tokens" ? C_TOKENS : C_MESSAGES);
    readRange(r, v, path, c, 0, 1e12);
    return c;
  }
  if (key == "complexity") {
    const c = new Cond(C_COMPLEXITY);
    c.scope = scope;
    readRange(r, v, path, c, 0, 1);
    return c;
  }
  if (key == "tools" || key == "images" || key == "json_mode") {
    const c = new Cond(key == "tools" ? C_TOOLS : key == "images" ? C_IMAGES : C_JSON);
    if (!v.isBool()) r.fail(path, "must be true or false");
    else c.want = v.b;
    return c;
  }
  if (key == "task") {
    const c = new Cond(C_TASK);
    c.scope = scope;
    const list = stringList(r, v, path, "a task type or a list of them");
    for (let i = 0; i < list.length && r.ok; i++) {
      const t = taskIndex(list[i]);
      if (t < 0) r.fail(v.isArray() ? path + "[" + i.toString() + "]" : path, "unknown task type '" + list[i] + "' (expected one of: " + TASK_NAMES.join(", ") + ")");
      else c.tasks |= 1 << t;
    }
    return c;
  }
  // semantic
  return readSemantic(r, s, v, path);
}

function readMatcher(r: ConfigReader, s: Settings, key: string, v: JsonValue, path: string): Cond | null {
  const c = new Cond(key == "header" ? C_HEADER : C_PATH);
  if (!v.isObject()) {
    r.fail(path, key == "header" ? "must be an object: {\"name\": ..., \"exact\" | \"prefix\" | \"regex\" | \"present\": ...}" : "must be an object: {\"exact\" | \"prefix\" | \"regex\": ...}");
    return null;
  }
  r.onlyKnown(v, path, key == "header" ? ["name", "exact", "prefix", "regex", "present"] : ["exact", "prefix", "regex"]);
  if (key == "header") {
    c.name = r.str(v, "name", path, "").toLowerCase();
    if (r.ok && c.name.length == 0) r.fail(path + ".name", "is required");
  }
  let n = 0;
  if (v.get("exact") !== null) { n++; c.mode = M_EXACT; c.str = r.str(v, "exact", path, ""); }
  if (v.get("prefix") !== null) { n++; c.mode = M_PREFIX; c.str = r.str(v, "prefix", path, ""); }
  if (v.get("regex") !== null) {
    n++;
    c.mode = M_REGEX;
    const src = r.str(v, "regex", path, "");
    if (r.ok) {
      const re = Regex.compile(src);
      if (re === null) r.fail(path + ".regex", "invalid regular expression: " + regexError);
      else c.res.push(re);
    }
  }
  if (v.get("present") !== null) { n++; c.mode = M_PRESENT; c.want = r.bool(v, "present", path, true); }
  if (r.ok && n != 1) r.fail(path, key == "header" ? "needs exactly one of exact, prefix, regex, present" : "needs exactly one of exact, prefix, regex");
  void s;
  return c;
}

function readRange(r: ConfigReader, v: JsonValue, path: string, c: Cond, min: f64, max: f64): void {
  if (!v.isObject()) {
    r.fail(path, "must be an object with gt and/or lt");
    return;
  }
  r.onlyKnown(v, path, ["gt", "lt"]);
  const gt = v.get("gt");
  const lt = v.get("lt");
  if (gt === null && lt === null) {
    r.fail(path, "needs gt, lt or both");
    return;
  }
  if (gt !== null) {
    if (!gt.isNumber() || gt.n < min || gt.n > max) r.fail(path + ".gt", "must be a number from " + fmt(min) + " to " + fmt(max));
    else { c.hasGt = true; c.gt = gt.n; }
  }
  if (lt !== null) {
    if (!lt.isNumber() || lt.n < min || lt.n > max) r.fail(path + ".lt", "must be a number from " + fmt(min) + " to " + fmt(max));
    else { c.hasLt = true; c.lt = lt.n; }
  }
  if (r.ok && c.hasGt && c.hasLt && c.gt >= c.lt) r.fail(path, "gt must be less than lt (no value could match)");
}

function fmt(x: f64): string {
  if (x == Math.floor(x) && Math.abs(x) < 1e15) return (<i64>x).toString();
  return x.toString();
}

function readSemantic(r: ConfigReader, s: Settings, v: JsonValue, path: string): Cond | null {
  const c = new Cond(C_SEMANTIC);
  c.semantic = true;
  if (s.embeddings === null) {
    r.fail(path, "needs the top-level embeddings section (the instance that embeds the examples and prompts)");
    return null;
  }
  if (!v.isObject()) {
    r.fail(path, "must be an object with examples and threshold");
    return null;
  }
  r.onlyKnown(v, path, ["examples", "threshold"]);
  const ex = r.array(v, "examples", path, true);
  if (r.ok && ex.length == 0) r.fail(path + ".examples", "must list at least one example");
  c.exStart = s.examples.length;
  for (let i = 0; i < ex.length && r.ok; i++) {
    if (!ex[i].isString() || ex[i].s.trim().length == 0) r.fail(path + ".examples[" + i.toString() + "]", "must be a non-empty string");
    else s.examples.push(ex[i].s);
  }
  c.exEnd = s.examples.length;
  const t = v.get("threshold");
  if (t === null) r.fail(path + ".threshold", "is required (cosine similarity, e.g. 0.8)");
  else if (!t.isNumber() || t.n <= 0 || t.n > 1) r.fail(path + ".threshold", "must be a number above 0 and at most 1");
  else c.threshold = t.n;
  return c;
}

function stringList(r: ConfigReader, v: JsonValue, path: string, what: string): Array<string> {
  const out = new Array<string>();
  if (v.isString()) {
    if (v.s.length == 0) r.fail(path, "must not be empty");
    out.push(v.s);
    return out;
  }
  if (!v.isArray() || v.length == 0) {
    r.fail(path, "must be " + what);
    return out;
  }
  const items = v.items as Array<JsonValue>;
  for (let i = 0; i < items.length; i++) {
    if (!items[i].isString() || items[i].s.length == 0) {
      r.fail(path + "[" + i.toString() + "]", "must be a non-empty string");
      return out;
    }
    out.push(items[i].s);
  }
  return out;
}
