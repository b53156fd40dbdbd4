// A policy: what each detector does (off, log, mask or block; mask_and_restore on the request) to
// the request and to the answer, with its custom patterns and keyword lists, compiled once at
// configure. The filter has a default policy and overrides per consumer,
// route rule and pool (config.ts); a request is scanned with exactly one of them.
import { JsonValue } from "../../lib/json";
import { ConfigReader } from "../../lib/config";
import { Regex, regexError, foldString } from "../../lib/regex";
import { defineMetric, METRIC_COUNTER, NO_METRIC } from "../../lib/sdk";
import { readInjection, DEFAULT_INJECTION_THRESHOLD } from "./injection";

export const A_OFF: i32 = 0;
export const A_LOG: i32 = 1;
export const A_MASK: i32 = 2;
export const A_BLOCK: i32 = 3;
/** Request only: masked toward the provider, the original put back in the answer (answer.ts). */
export const A_MASK_RESTORE: i32 = 4;
export const ACTION_NAMES: Array<string> = ["off", "log", "mask", "block", "mask_and_restore"];

/** Masks the value (mask, or mask_and_restore on the request side). */
@inline export function masks(a: i32): bool {
  return a == A_MASK || a == A_MASK_RESTORE;
}

// The built-in detectors, by index; custom patterns and keyword lists follow them.
export const D_EMAIL: i32 = 0;
export const D_PHONE: i32 = 1;
export const D_CARD: i32 = 2;
export const D_IBAN: i32 = 3;
export const D_SSN: i32 = 4;
export const D_IP: i32 = 5;
export const D_CREDENTIAL: i32 = 6;
export const D_INJECTION: i32 = 7; // prompt-injection heuristics (detect-injection.ts): log or block only
export const BUILTIN: Array<string> = ["email", "phone", "card", "iban", "ssn", "ip", "credential", "injection"];

const POLICY_FIELDS = ["detectors", "custom", "keywords", "injection_threshold", "moderation"];
const CUSTOM_FIELDS = ["name", "regex", "action"];
const KEYWORD_FIELDS = ["name", "words", "action"];
const MAX_NAME = 32;
const MAX_WORDS = 1000;

export class Custom {
  re: Regex;
  constructor(re: Regex) { this.re = re; }
}

export class Policy {
  /** Per detector (built-ins, then custom, then keyword lists): its name, action, placeholder tag. */
  names: Array<string> = [];
  actions: Array<i32> = [];
  tags: Array<string> = [];
  /** Counter per detector: requests it found something in (label detector, action). */
  metrics: Array<u32> = [];
  /** Per detector: its action on the answer (never mask_and_restore), and its counter there. */
  answers: Array<i32> = [];
  answerMetrics: Array<u32> = [];
  customs: Array<Regex> = [];
  /** Keyword lists: folded words, one array per list. */
  words: Array<Array<string>> = [];
  get customBase(): i32 { return BUILTIN.length; }
  get keywordBase(): i32 { return BUILTIN.length + this.customs.length; }
  /** Some detector is on (otherwise the body need not be read). */
  active: bool = false;
  /** Some detector is on for the answer (otherwise answers pass untouched). */
  answerActive: bool = false;
  /** Some detector masks with mask_and_restore: answers get the originals back. */
  restores: bool = false;
  /** Units of answer text held back (answer-window.ts answerWindow, set at configure). */
  answerWindow: i32 = 0;
  /** The score at which a text counts as a prompt injection (readInjection, injection.ts). */
  injectionThreshold: f64 = DEFAULT_INJECTION_THRESHOLD;
  /** The policy's `moderation` switch: -1 unset (on when the filter has a moderation section), 0 off, 1 on. */
  moderation: i32 = -1;
  /** The prompt goes to the external moderation service (config.ts settles it). */
  moderate: bool = false;

  /** Adds a detector; `both` is its request action, with its answer action shifted by 8 (actions()). */
  add(name: string, both: i32): void {
    const action = both & 0xff, answer = both >> 8;
    this.names.push(name);
    this.actions.push(action);
    this.answers.push(answer);
    this.tags.push(name.toUpperCase().replaceAll("-", "_"));
    this.metrics.push(action == A_OFF ? NO_METRIC : defineMetric(METRIC_COUNTER, "sluice.guard_detections;detector=" + name + ";action=" + ACTION_NAMES[action]));
    this.answerMetrics.push(answer == A_OFF ? NO_METRIC : defineMetric(METRIC_COUNTER, "sluice.guard_answer_detections;detector=" + name + ";action=" + ACTION_NAMES[answer]));
    if (action != A_OFF) this.active = true;
    if (answer != A_OFF) this.answerActive = true;
    if (action == A_MASK_RESTORE) this.restores = true;
  }
}

const DIRECTION_FIELDS = ["request", "response"];
const ANSWER_ACTIONS = "off, log, mask, block";

function oneAction(r: ConfigReader, v: JsonValue, path: string, answer: bool): i32 {
  if (v.isString()) {
    const i = ACTION_NAMES.indexOf(v.s);
    if (i >= 0 && !(answer && i == A_MASK_RESTORE)) return i;
  }
  r.fail(path, "must be one of: " + (answer ? ANSWER_ACTIONS + " (mask_and_restore is for the request side)" : ACTION_NAMES.join(", ")));
  return A_OFF;
}

/**
 * A detector's actions: a name (the request's action; the answer is not checked) or
 * {request, response} (each defaults to off). Packed: request | response << 8.
 */
function action(r: ConfigReader, v: JsonValue, path: string): i32 {
  if (!v.isObject()) return oneAction(r, v, path, false);
  r.onlyKnown(v, path, DIRECTION_FIELDS);
  const q = v.get("request"), a = v.get("response");
  const req = q === null ? A_OFF : oneAction(r, q, path + ".request", false);
  const ans = a === null ? A_OFF : oneAction(r, a, path + ".response", true);
  return req | (ans << 8);
}

/** Custom pattern and keyword list names: metric labels and placeholder tags. */
function isName(s: string): bool {
  if (s.length == 0 || s.length > MAX_NAME) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x5f || c == 0x2d)) return false;
  }
  return true;
}

/** Reads a policy object ({detectors, custom, keywords}) at `path`. */
export function readPolicy(r: ConfigReader, obj: JsonValue, path: string): Policy {
  const p = new Policy();
  if (!obj.isObject()) {
    r.fail(path, "must be an object with detectors, custom and keywords");
    return p;
  }
  r.onlyKnown(obj, path, POLICY_FIELDS);
  if (obj.get("moderation") !== null) p.moderation = r.bool(obj, "moderation", path, false) ? 1 : 0;
  const dets = obj.get("detectors");
  const acts = new Array<i32>(BUILTIN.length).fill(A_OFF); // packed, see action()
  if (dets !== null) {
    if (!dets.isObject()) r.fail(path + ".detectors", "must map detector names (" + BUILTIN.join(", ") + ") to actions or {request, response}");
    else {
      for (let i = 0, n = dets.length; i < n; i++) {
        const k = dets.keyAt(i);
        const d = BUILTIN.indexOf(k);
        if (d < 0) r.fail(path + ".detectors." + k, "unknown detector (expected one of: " + BUILTIN.join(", ") + ")");
        else acts[d] = action(r, dets.at(i), path + ".detectors." + k);
      }
    }
  }
  for (let d = 0; d < BUILTIN.length; d++) p.add(BUILTIN[d], acts[d]);
  p.injectionThreshold = readInjection(r, obj, path, acts[D_INJECTION]);
  const seen = BUILTIN.slice(0);
  const customs = r.array(obj, "custom", path, false);
  for (let i = 0; i < customs.length; i++) {
    const at = path + ".custom[" + i.toString() + "]";
    const c = customs[i];
    if (!c.isObject()) { r.fail(at, "must be an object with name, regex and action"); continue; }
    r.onlyKnown(c, at, CUSTOM_FIELDS);
    const name = readName(r, c, at, seen);
    const src = r.str(c, "regex", at, "");
    const act = c.get("action") === null ? A_BLOCK : action(r, c.get("action") as JsonValue, at + ".action");
    if (src.length == 0) { r.fail(at + ".regex", "is required"); continue; }
    const re = Regex.compile(src);
    if (re === null) { r.fail(at + ".regex", regexError); continue; }
    if ((re as Regex).matchesEmpty) { r.fail(at + ".regex", "matches the empty string (it must match some text to mask or block)"); continue; }
    p.customs.push(re as Regex);
    p.add(name, act);
  }
  const lists = r.array(obj, "keywords", path, false);
  for (let i = 0; i < lists.length; i++) {
    const at = path + ".keywords[" + i.toString() + "]";
    const k = lists[i];
    if (!k.isObject()) { r.fail(at, "must be an object with name, words and action"); continue; }
    r.onlyKnown(k, at, KEYWORD_FIELDS);
    const name = readName(r, k, at, seen);
    const act = k.get("action") === null ? A_BLOCK : action(r, k.get("action") as JsonValue, at + ".action");
    const ws = r.array(k, "words", at, true);
    if (ws.length == 0 || ws.length > MAX_WORDS) r.fail(at + ".words", "must list 1 to " + MAX_WORDS.toString() + " words");
    const words = new Array<string>();
    for (let j = 0; j < ws.length; j++) {
      const w = ws[j];
      if (!w.isString() || w.s.trim().length == 0) { r.fail(at + ".words[" + j.toString() + "]", "must be a non-empty string"); continue; }
      words.push(foldString(w.s.trim()));
    }
    p.words.push(words);
    p.add(name, act);
  }
  return p;
}

function readName(r: ConfigReader, obj: JsonValue, at: string, seen: Array<string>): string {
  const name = r.str(obj, "name", at, "");
  if (!isName(name)) r.fail(at + ".name", "must be 1 to " + MAX_NAME.toString() + " of a-z, 0-9, '_' and '-' (it names a metric label and the placeholder)");
  else if (seen.includes(name)) r.fail(at + ".name", "'" + name + "' is already a detector name in this policy");
  seen.push(name);
  return name;
}
