// The built-in prompt classifier: a task type and a complexity score, deterministic, explainable,
// and cheap enough for every request (no model, no allocation proportional to a long prompt).
//
// Method (README "ai-router" describes it for operators):
// 1. The text is case-folded and split into words. Cues are read from the first 4,000 and the last
//    2,000 characters (where instructions sit: "Summarize this: <document>", "<document> Translate
//    the above into French"); length counts the whole text.
// 2. Task type: a lexicon of cue words and phrases, each with a task and a weight, plus structural
//    evidence (code fences, code-like punctuation, arithmetic expressions, a language named after
//    "into"/"to"). Each distinct cue counts once; a cue within the first or last 200 characters of a
//    long text (the instruction) counts 1.5 times. The task with the highest score wins if it
//    reaches 2.0; otherwise the prompt is `chat` (conversation, questions of fact, creative
//    writing). Ties go to the earlier task in the order code, math, translate, summarize, extract,
//    reasoning.
// 3. Complexity in [0, 1]: 0.35 x length (log scale: ~0 under 8 tokens, 1 at 2,000 tokens)
//    + 0.25 x structure (code blocks, list items, several questions, explicit constraints)
//    + 0.30 x reasoning cues (prove, derive, step by step, trade-offs, design, optimize, edge cases...)
//    + a task prior (reasoning 0.15, code and math 0.10, others 0), clipped to [0, 1].
import { foldString } from "../../lib/regex";
import { Text } from "./text";

export const TASK_CODE: i32 = 0;
export const TASK_MATH: i32 = 1;
export const TASK_REASONING: i32 = 2;
export const TASK_SUMMARIZE: i32 = 3;
export const TASK_EXTRACT: i32 = 4;
export const TASK_TRANSLATE: i32 = 5;
export const TASK_CHAT: i32 = 6;
const TASKS: i32 = 7;
// Pseudo-task for complexity cues.
const CX: i32 = 7;
// Pseudo-task for constraint words (complexity structure).
const CONSTRAINT: i32 = 8;

export const TASK_NAMES: Array<string> = ["code", "math", "reasoning", "summarize", "extract", "translate", "chat"];

export function taskIndex(name: string): i32 {
  for (let i = 0; i < TASK_NAMES.length; i++) if (TASK_NAMES[i] == name) return i;
  return -1;
}

const HEAD_CHARS: i32 = 4000;
const TAIL_CHARS: i32 = 2000;
const HEAD_ZONE: i32 = 400;
const TAIL_ZONE: i32 = 300;
const SHORT_CHARS: i32 = 400;
const MATERIAL_FACTOR: f64 = 0.4;
const MATERIAL_CAP: f64 = 4.0;
const LEAD_FACTOR: f64 = 1.5;
const WIN_SCORE: f64 = 2.0;

// ---------------------------------------------------------------------------------------------
// The lexicon: "phrase|weight" per task. Phrases are folded words separated by spaces; a trailing
// * on the last word matches any word starting with it.

const CODE_CUES = [
  "code|2", "coding|2", "function|2", "functions|2", "bug|2", "bugs|2", "debug*|2", "compil*|2", "refactor*|3",
  "stack trace|3", "traceback|3", "exception|2", "regex|2.5", "regular expression|2.5", "sql|2.5", "query|1",
  "python|2.5", "javascript|2.5", "typescript|2.5", "java|2", "rust|2", "golang|2.5", "kotlin|2.5", "ruby|1.5",
  "php|2.5", "c++|2.5", "c#|2.5", "bash|2", "shell script|2.5", "script|1.5", "api|1", "endpoint|1.5",
  "unit test*|2.5", "test case*|1.5", "implement*|1.5", "class|1", "method|1", "variable*|1.5", "array|1.5",
  "loop|1.5", "recursion|1.5", "recursive|1.5", "algorithm|1.5", "dockerfile|3", "docker|2", "kubernetes|2",
  "yaml|1", "npm|2", "pip|1.5", "git|2", "commit|1", "repository|1", "pull request|2", "segfault|3",
  "null pointer|3", "typeerror|3", "syntax error|2.5", "html|2", "css|2", "react|2", "frontend|1.5",
  "backend|1.5", "database|1", "schema|1", "linter|2", "runtime|1", "programming|2", "program|1",
  "snippet|2", "library|1", "async|2", "await|2", "thread*|1", "memory leak|3", "endpoint*|1", "json schema|1",
  "compile error|2", "stderr|2", "stdout|2", "cli|1.5", "command line|1.5", "terminal|1", "nginx|2",
  "webpack|2", "pandas|2", "numpy|2", "dataframe|2", "lambda|1.5", "struct|2", "pointer*|1.5", "deploy*|1",
  "microservice*|1.5", "migration|1", "orm|2", "graphql|2", "rest api|1", "http|1", "websocket*|2",
  "binary search|2", "linked list|2.5", "hash map|2", "big o|2", "time complexity|2", "o(n)|2",
  "cron|1.5", "powershell|2", "postgresql|2.5", "postgres|2.5", "mysql|2.5", "sqlite|2.5", "mongodb|2.5", "redis|2", "kafka|2", "elasticsearch|2", "foreign key*|2", "uuid*|1.5", "kubectl|3", "helm|1.5", "pod|1", "pods|1", "container*|1", "curl|2", "grep|2", "ssh|1.5", "systemctl|3", "list comprehension|3", "command|0.5", "stack overflow|1", "ide|1", "makefile|3", "cmake|3", "vim|1.5", "emacs|1.5", "terraform|2", "ansible|2",
  "write a function|2", "fix this|1", "this error|1", "error message|1", "crash*|1", "null|1", "undefined|1",
];

const MATH_CUES = [
  "solve|2", "equation*|2.5", "integral*|3", "derivative*|3", "differentiate|3", "integrate|1.5",
  "calculate|2", "calculat*|1", "compute|1", "probability|2.5", "probabilit*|1", "percent|1.5", "percentage|1.5",
  "average|1", "mean|0.5", "median|1.5", "variance|2", "standard deviation|2.5", "prime|1.5", "primes|1.5",
  "factorial|2.5", "matrix|2", "matrices|2", "eigenvalue*|3", "determinant|2.5", "algebra*|2.5",
  "geometry|2.5", "triangle|2", "circle|1", "radius|2", "hypotenuse|3", "angle*|1.5", "theorem|2",
  "prove that|2", "proof|1.5", "limit|1", "series|1", "converge*|2", "logarithm*|3", "log|1", "exponent*|1.5",
  "fraction*|2", "ratio|1.5", "interest rate|1.5", "compound interest|3", "how many|1.5", "how much|0.5",
  "modulo|2", "divisible|2.5", "polynomial*|3", "quadratic|3", "linear equation*|2", "vector*|1",
  "statistic*|1.5", "expected value|2.5", "arithmetic|2", "sum of|1.5", "product of|1.5", "square root|3",
  "cube root|3", "perimeter|2.5", "compounded|2", "show that|1", "minutes|0.5", "hours|0.5", "seconds|0.5", "kilometers|0.5", "miles|0.5", "liters|0.5", "grams|0.5", "interest|1", "convert|1", "per second|1", "per hour|1", "meters|0.5", "units|0.5", "area of|2", "volume of|2", "digits|1", "integer*|1.5", "divided by|2",
  "times|0.5", "plus|1", "minus|1.5", "multiplied|2", "dice|2", "coin|1", "odds|1.5", "combinatoric*|3",
  "permutation*|2.5", "combinations|1.5", "binomial|3", "sequence|1", "geometric|2", "arithmetic sequence|3",
  "inequality|2.5", "inequalities|2.5", "simplify|1.5", "expand|0.5", "f(x)|3", "dx|2", "km/h|1.5",
  "mph|1.5", "speed|0.5", "mod|1", "gcd|3", "lcm|3", "number theory|3", "irrational|2.5", "calculus|3",
];

const REASONING_CUES = [
  "why|1", "explain why|1.5", "reasoning|1.5", "reason|0.5", "step by step|1", "compare|2", "comparison|2",
  "versus|2", "vs|1.5", "pros and cons|3", "trade-off*|3", "tradeoff*|3", "trade off*|3", "should i|2",
  "should we|2", "which is better|2.5", "which one|1", "better choice|2", "evaluate|1.5", "analy*|1.5",
  "implication*|2", "argue|2", "argument*|1.5", "counterargument*|2.5", "critique|2", "assess*|1.5",
  "decide|2", "decision|2", "strategy|1.5", "strategies|1.5", "what would happen|2.5", "what happens if|2",
  "what if|1.5", "consequence*|2", "logic|1.5", "logical*|1.5", "puzzle|2.5", "riddle|2.5", "deduce|2.5",
  "infer|1.5", "hypothes*|1.5", "root cause|1.5", "justify|2", "recommend*|1", "risk*|1.5", "advantages|2",
  "disadvantages|2", "weigh|2", "dilemma|2.5", "ethic*|2", "plan|1", "prioriti*|1.5", "choose between|2.5",
  "is it worth|2", "is it better|2", "better to|1.5", "better off|1.5", "makes more sense|2", "explain your reasoning|2", "your reasoning|1", "who owns|1.5", "different|0.5", "worth it|1.5", "make sense|1", "would you|0.5", "cause|0.5", "causes|1", "explain how|1",
  "how does|1", "how do|0.5", "difference between|1.5", "differences between|1.5", "if all|2", "some are|2",
  "true or false|1.5", "paradox|2.5", "think through|2", "walk me through|1", "long-term|1", "impact*|1",
  "investment|1", "predict*|1", "scenario*|1.5", "approach|0.5", "options|1", "alternative*|1",
  "liars|2.5", "truth-teller*|3", "knights|1.5", "who is lying|3", "which box|2", "fallacy|2.5",
];

const SUMMARIZE_CUES = [
  "summar*|4", "tl;dr|4", "tldr|4", "key points|3", "main points|3", "key takeaways|3", "takeaway*|2",
  "condense|3", "shorten|2.5", "recap|3", "gist|3", "overview|1.5", "in a nutshell|3", "bullet points|1",
  "abstract|1", "highlights|1.5", "boil down|3", "in one sentence|2", "in two sentences|2",
  "in three sentences|2", "in a few sentences|2", "short version|2.5", "brief|1", "briefly|1",
  "main idea|3", "main ideas|3", "what is this article about|3", "meeting notes|1.5", "transcript|1.5",
  "executive summary|2", "shorter|1.5", "100 words|1.5", "50 words|1.5", "synopsis|3",
];

const EXTRACT_CUES = [
  "extract*|4", "pull out|3", "list all|2", "find all|2", "identify all|2", "identify the|1", "parse|2",
  "fields|1.5", "entities|3", "named entit*|3", "structured|1.5", "into json|3", "as json|3", "json|1.5",
  "csv|2", "table|1", "key-value|2", "fill in|1", "invoice|1.5", "dates|1.5", "names|1", "email address*|2",
  "phone number*|2", "addresses|1.5", "amounts|1.5", "from the following|1.5", "from this text|2",
  "from the text|2", "from this email|2", "from the email|2", "from this document|2", "retrieve|1",
  "capture|1", "classify|2", "categorize|2", "categorise|2", "label each|2", "tag each|2", "sentiment|2",
  "mentioned|1.5", "mentions|1", "which companies|1.5", "all the|0.5", "get the|0.5", "return only|1.5",
  "output only|1", "keys|1", "values|0.5", "format as|1", "line items|2.5", "sku|2", "order number|2",
  "total amount|2", "due date|2", "skills|1", "contact details|2", "people mentioned|3", "timestamps|1.5",
  "action items|2",
];

const TRANSLATE_CUES = [
  "translate*|5", "translation*|4", "how do you say|4", "how to say|3.5", "how would you say|3.5",
  "in english|1", "what does|0.5", "localize|2.5", "localise|2.5", "subtitle*|1", "phrase|0.5",
];

const CHAT_CUES = [
  "hi|1.5", "hello|1.5", "hey|1.5", "thanks|1.5", "thank you|1.5", "how are you|2", "joke|2", "poem|2.5",
  "story|2", "haiku|2.5", "limerick|2.5", "song|1.5", "lyrics|1.5", "write an email|1.5", "email to|1",
  "birthday|1.5", "recipe|2", "good morning|2", "what's up|2", "tell me about|1", "who was|1.5",
  "who is|1", "what is the capital|2", "capital of|1.5", "fun fact*|2", "suggest|1", "ideas for|1.5",
  "name for|1.5", "names for|1.5", "slogan|2", "tagline|2", "caption|1.5", "tweet|1.5", "cover letter|1.5",
  "wedding|1.5", "gift|1.5", "movie|1", "book|0.5", "weather|1", "cook|1.5", "vacation|1.5", "trip|1",
  "rewrite|1", "rephrase|1.5", "polite|1", "friendly|1", "advice|1",
];

const CX_CUES = [
  "step by step|1", "prove|1.5", "proof|1", "derive|1.5", "rigorous*|1.5", "trade-off*|1", "tradeoff*|1",
  "design|1", "architecture|1.5", "architect|1", "optimi*|1", "edge case*|1.5", "complexity|1",
  "scalab*|1.5", "concurren*|1.5", "distributed|1.5", "algorithm*|1", "in depth|1", "in-depth|1",
  "detailed|0.75", "comprehensive|1", "thorough*|1", "multi-step|1", "strategy|0.75", "evaluate|0.5",
  "analy*|0.75", "compare|0.5", "justify|1", "why|0.5", "explain why|0.5", "race condition*|1.5",
  "deadlock*|1.5", "consisten*|0.75", "security|1", "threat model|1.5", "migrate|0.75", "refactor*|0.75",
  "production|0.75", "performance|0.75", "bottleneck*|1", "invariant*|1.5", "formal*|1", "theorem|1",
  "counterexample*|1.5", "dynamic programming|1.5", "induction|1.5", "implications|0.75", "nuance*|1",
  "critique|0.75", "plan|0.5", "roadmap|1", "policy|0.5", "legal|0.75", "contract|0.5", "regulat*|0.75",
  "research|0.75", "literature|0.75", "hypothes*|0.75", "statistical*|0.75", "significance|0.75",
  "integral|0.5", "eigen*|1", "differential|1", "probability|0.5", "puzzle|0.75", "paradox|1",
  "multiple|0.5", "several|0.5", "each of|0.5", "show that|1.5", "clinical|1", "medical|0.75", "diagnos*|1", "interaction*|0.5", "investor*|0.5", "financial|0.5", "rank*|0.5", "flag|0.5", "nuanc*|0.5",
];

const CONSTRAINT_CUES = [
  "must|1", "should|0.5", "without|1", "ensure|1", "at least|1", "at most|1", "exactly|1", "only|0.5",
  "requirement*|1", "constraint*|1", "do not|1", "don't|1", "never|0.5", "always|0.5", "make sure|1",
  "no more than|1", "handle|0.5", "including|0.5", "also|0.5", "preserv*|1", "keep|0.5", "keeping|0.5",
  "maintain*|0.5", "respect|0.5", "consistent|0.5", "unchanged|1", "under|0.3", "no longer than|1", "style of|1",
  "tone|0.5", "register|0.5", "untouched|1", "include|0.5", "format|0.5", "limit|0.5", "and explain|1", "explain the|0.5", "each|0.3",
];

// Language names: a language after "into" / "to" / "in" (or before "translation") is strong
// evidence of translation.
const LANGUAGES = [
  "english", "french", "spanish", "german", "italian", "portuguese", "japanese", "chinese", "mandarin",
  "korean", "russian", "arabic", "hindi", "dutch", "polish", "turkish", "swedish", "norwegian", "danish",
  "finnish", "greek", "hebrew", "vietnamese", "thai", "indonesian", "ukrainian", "czech", "romanian",
  "hungarian", "bengali", "urdu", "persian", "farsi", "swahili", "catalan", "tagalog", "malay", "latin",
  "cantonese",
];

class Cue {
  words: Array<string>;
  prefixLast: bool;
  group: i32;
  weight: f64;
  constructor(words: Array<string>, prefixLast: bool, group: i32, weight: f64) {
    this.words = words;
    this.prefixLast = prefixLast;
    this.group = group;
    this.weight = weight;
  }
}

/** The first three UTF-16 units of s[at...] as one number. */
function stemKey(s: string, at: i32): i32 {
  const b = changetype<usize>(s) + (<usize>at << 1);
  return ((<i32>load<u16>(b) & 0x3ff) << 20) | ((<i32>load<u16>(b + 2) & 0x3ff) << 10) | (<i32>load<u16>(b + 4) & 0x3ff);
}

const TABLE_SIZE: i32 = 4096; // open addressing over first words; a power of two, > 4 x entries

/** FNV-1a over the UTF-16 units [at, at + len) of s. */
function hashAt(s: string, at: i32, len: i32): u32 {
  let h: u32 = 2166136261;
  const base = changetype<usize>(s) + (<usize>at << 1);
  for (let i = 0; i < len; i++) h = (h ^ <u32>load<u16>(base + (<usize>i << 1))) * 16777619;
  return h;
}

/** Whether s[at, at + len) equals w. */
@inline function equalAt(s: string, at: i32, len: i32, w: string): bool {
  return len == w.length && memory.compare(changetype<usize>(s) + (<usize>at << 1), changetype<usize>(w), <usize>len << 1) == 0;
}

/** Whether s[at, at + len) starts with w. */
@inline function startsAt(s: string, at: i32, len: i32, w: string): bool {
  return len >= w.length && memory.compare(changetype<usize>(s) + (<usize>at << 1), changetype<usize>(w), <usize>w.length << 1) == 0;
}

class Lexicon {
  // Exact first words: slot -> entry (-1 empty); entry -> word, cues starting with it, language?
  slots: StaticArray<i32> = new StaticArray<i32>(TABLE_SIZE);
  words: Array<string> = [];
  starts: Array<Array<i32>> = [];
  language: Array<bool> = [];
  // Single-word prefix cues (e.g. "summar*") by their first three characters (stems have three).
  prefixes: Map<i32, Array<i32>> = new Map();
  cues: Array<Cue> = [];

  constructor() {
    for (let i = 0; i < TABLE_SIZE; i++) this.slots[i] = -1;
  }

  /** The entry of word s[at, at + len), or -1. */
  find(s: string, at: i32, len: i32): i32 {
    let slot = <i32>(hashAt(s, at, len) & <u32>(TABLE_SIZE - 1));
    while (true) {
      const e = unchecked(this.slots[slot]);
      if (e < 0) return -1;
      if (equalAt(s, at, len, unchecked(this.words[e]))) return e;
      slot = (slot + 1) & (TABLE_SIZE - 1);
    }
  }

  entry(w: string): i32 {
    const found = this.find(w, 0, w.length);
    if (found >= 0) return found;
    let slot = <i32>(hashAt(w, 0, w.length) & <u32>(TABLE_SIZE - 1));
    while (this.slots[slot] >= 0) slot = (slot + 1) & (TABLE_SIZE - 1);
    const e = this.words.length;
    this.slots[slot] = e;
    this.words.push(w);
    this.starts.push([]);
    this.language.push(false);
    return e;
  }
}

let lexicon: Lexicon | null = null;

function addCues(lx: Lexicon, list: Array<string>, group: i32): void {
  for (let i = 0; i < list.length; i++) {
    const entry = list[i];
    const bar = entry.lastIndexOf("|");
    const phrase = entry.substring(0, bar);
    const weight = parseFloat(entry.substring(bar + 1));
    let prefixLast = false;
    let text = phrase;
    if (text.endsWith("*")) {
      prefixLast = true;
      text = text.substring(0, text.length - 1);
    }
    const words = splitWords(text);
    if (words.length == 0) continue;
    const id = lx.cues.length;
    lx.cues.push(new Cue(words, prefixLast, group, weight));
    if (prefixLast && words.length == 1 && words[0].length >= 3) {
      const key = stemKey(words[0], 0);
      if (!lx.prefixes.has(key)) lx.prefixes.set(key, []);
      lx.prefixes.get(key).push(id);
    } else {
      lx.starts[lx.entry(words[0])].push(id);
    }
  }
}

function getLexicon(): Lexicon {
  let lx = lexicon;
  if (lx !== null) return lx;
  const l = new Lexicon();
  addCues(l, CODE_CUES, TASK_CODE);
  addCues(l, MATH_CUES, TASK_MATH);
  addCues(l, REASONING_CUES, TASK_REASONING);
  addCues(l, SUMMARIZE_CUES, TASK_SUMMARIZE);
  addCues(l, EXTRACT_CUES, TASK_EXTRACT);
  addCues(l, TRANSLATE_CUES, TASK_TRANSLATE);
  addCues(l, CHAT_CUES, TASK_CHAT);
  addCues(l, CX_CUES, CX);
  addCues(l, CONSTRAINT_CUES, CONSTRAINT);
  for (let i = 0; i < LANGUAGES.length; i++) l.language[l.entry(LANGUAGES[i])] = true;
  lexicon = l;
  return l;
}

/** Warms the lexicon (at configure time, so the first request does not pay for it). */
export function initClassifier(): void {
  getLexicon();
}

// Word characters for cue matching: ASCII letters and digits, and a few symbols that belong to
// names (c++, c#, f(x), o(n), km/h, tl;dr, x =) are handled by the splitter below.
@inline function isLetter(c: i32): bool {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x5f || c >= 0xc0;
}

/** Splits folded text into words: letter/digit runs, with '+', '#', "'", "-" kept inside names. */
function splitWords(s: string): Array<string> {
  const out = new Array<string>();
  const n = s.length;
  let i = 0;
  while (i < n) {
    while (i < n && !isWordStart(<i32>s.charCodeAt(i))) i++;
    if (i >= n) break;
    const start = i;
    i = wordEnd(s, i, n);
    out.push(s.substring(start, i));
  }
  return out;
}

@inline function isWordStart(c: i32): bool {
  return isLetter(c);
}

/** End of the word starting at i: letters, inner '-' / '\'' / ';' (tl;dr) / '/' (km/h), and
 * trailing "++" / "#" (c++, c#), "(x)"/"(n)" (f(x), o(n)). */
function wordEnd(s: string, i: i32, n: i32): i32 {
  while (i < n) {
    const c = <i32>s.charCodeAt(i);
    if (isLetter(c)) { i++; continue; }
    if ((c == 0x2d || c == 0x27 || c == 0x3b || c == 0x2f) && i + 1 < n && isLetter(<i32>s.charCodeAt(i + 1)) && i > 0 && isLetter(<i32>s.charCodeAt(i - 1))) {
      i++;
      continue;
    }
    if (c == 0x2b && i + 1 < n && <i32>s.charCodeAt(i + 1) == 0x2b) { i += 2; break; } // ++
    if (c == 0x23) { i++; break; } // #
    if (c == 0x28 && i + 2 < n && isLetter(<i32>s.charCodeAt(i + 1)) && <i32>s.charCodeAt(i + 2) == 0x29) { i += 3; break; }
    break;
  }
  return i;
}

export class Classification {
  task: i32 = TASK_CHAT;
  complexity: f64 = 0;
  scores: StaticArray<f64> = new StaticArray<f64>(TASKS);
}

/** The words of a text as offsets and lengths into it. */
class Words {
  text: string;
  offsets: Array<i32> = [];
  lengths: Array<i32> = [];
  constructor(text: string) { this.text = text; }
  push(at: i32, len: i32): void { this.offsets.push(at); this.lengths.push(len); }
  get count(): i32 { return this.offsets.length; }
  @inline at(w: i32): i32 { return unchecked(this.offsets[w]); }
  @inline len(w: i32): i32 { return unchecked(this.lengths[w]); }
  is(w: i32, s: string): bool { return equalAt(this.text, this.at(w), this.len(w), s); }
  starts(w: i32, s: string): bool { return startsAt(this.text, this.at(w), this.len(w), s); }
  isNumber(w: i32): bool {
    const at = this.at(w);
    const n = this.len(w);
    for (let i = 0; i < n; i++) if (!isDigit(<i32>load<u16>(changetype<usize>(this.text) + (<usize>(at + i) << 1)))) return false;
    return n > 0;
  }
}

/** Classifies a prompt. Deterministic: the same text always gives the same result. */
export function classify(text: Text): Classification {
  const lx = getLexicon();
  const out = new Classification();
  const total = text.length;
  // The cue window: head and tail of long texts. Only these are decoded: the rest of a long text
  // counts by its length alone.
  let window: string;
  let tailStart: i32 = 0; // offset of the tail part in window, or -1
  if (total <= HEAD_CHARS + TAIL_CHARS) {
    window = foldString(text.slice(0, total));
  } else {
    window = foldString(text.slice(0, HEAD_CHARS) + "\n\n" + text.slice(total - TAIL_CHARS, total));
    tailStart = HEAD_CHARS + 2;
  }
  const wn = window.length;
  const longText = total > SHORT_CHARS;
  // Instruction zones of a long text: its first paragraph (at most HEAD_ZONE characters) and a
  // short last paragraph or line ("<document>\n\nTranslate the above into French").
  let headEnd = window.indexOf("\n\n");
  if (headEnd < 0 || headEnd > HEAD_ZONE) headEnd = HEAD_ZONE;
  let tailZone = wn;
  const lastPara = window.lastIndexOf("\n\n");
  if (lastPara > headEnd && wn - lastPara <= TAIL_ZONE) tailZone = lastPara;
  else {
    // A short last line, unless it is the last item of a list.
    const lastLine = window.lastIndexOf("\n");
    if (lastLine > headEnd && wn - lastLine <= TAIL_ZONE && !startsListItem(window, lastLine + 1)) tailZone = lastLine;
  }

  // Words as offsets into the window (no copies).
  const words = new Words(window);
  {
    let i = 0;
    while (i < wn) {
      while (i < wn && !isWordStart(<i32>load<u16>(changetype<usize>(window) + (<usize>i << 1)))) i++;
      if (i >= wn) break;
      const start = i;
      i = wordEnd(window, i, wn);
      words.push(start, i - start);
    }
  }
  const nw = words.count;

  let wordMath = 0;
  // Cue hits: each distinct cue once, with the largest factor of its occurrences.
  const hit = new Hits(lx.cues.length);
  const scores = new StaticArray<f64>(9);
  for (let w = 0; w < nw; w++) {
    const at = words.at(w);
    const len = words.len(w);
    // The instruction (all of a short prompt; the start and end of a long one) counts fully; the
    // material it works on (a document, code, a transcript) counts less, and is capped per task.
    const zone = !longText || at < headEnd || at >= tailZone;
    let factor: f64 = zone ? 1.0 : MATERIAL_FACTOR;
    // The verb that opens an instruction sentence ("Summarize ...", "Can you translate ...") says
    // what is asked more than words further on.
    if (zone && sentenceStart(window, words, w)) factor = LEAD_FACTOR;
    const e = lx.find(window, at, len);
    if (e >= 0) {
      const ids = unchecked(lx.starts[e]);
      for (let k = 0; k < ids.length; k++) {
        const id = unchecked(ids[k]);
        if (phraseAt(unchecked(lx.cues[id]), words, w)) noteHit(hit, id, factor);
      }
    }
    if (len >= 3) {
      const key = stemKey(window, at);
      if (lx.prefixes.has(key)) {
        const ids = lx.prefixes.get(key);
        for (let k = 0; k < ids.length; k++) {
          const id = ids[k];
          if (startsAt(window, at, len, lx.cues[id].words[0])) noteHit(hit, id, factor);
        }
      }
    }
    // A language named after into / to / in, or before "translation".
    if (e >= 0 && unchecked(lx.language[e])) {
      let s: f64 = 0.5;
      if (w > 0) {
        if (words.is(w - 1, "into") || words.is(w - 1, "to")) s = 3.5;
        else if (words.is(w - 1, "in") || words.is(w - 1, "from")) {
          // "What's 'good night' in Russian?": the language ends the question.
          const after = at + len;
          s = after >= wn || window.charCodeAt(after) == 0x3f ? 3.5 : 1.5;
        }
      }
      if (w + 1 < nw && words.starts(w + 1, "translat")) s = 3.5;
      unchecked((scores[TASK_TRANSLATE] += s * (factor > 1.0 ? 1.0 : factor)));
    }
    // Arithmetic in words: "17 times 23", "100 divided by 4", "3 to the power of 4".
    if (w + 2 < nw && words.isNumber(w)) {
      let k = -1;
      if (words.is(w + 1, "times") || words.is(w + 1, "plus") || words.is(w + 1, "minus") || words.is(w + 1, "mod") || words.is(w + 1, "modulo")) k = w + 2;
      else if ((words.is(w + 1, "divided") || words.is(w + 1, "multiplied")) && words.is(w + 2, "by")) k = w + 3;
      else if (words.is(w + 1, "to") && w + 5 < nw && words.is(w + 2, "the") && words.is(w + 3, "power") && words.is(w + 4, "of")) k = w + 5;
      if (k > 0 && k < nw && words.isNumber(k)) wordMath++;
    }
  }
  const ids = hit.ids;
  const material = new StaticArray<f64>(9);
  for (let k = 0; k < ids.length; k++) {
    const cue = lx.cues[ids[k]];
    const f = hit.factor[ids[k]];
    if (f < 1.0) unchecked((material[cue.group] += cue.weight * f));
    else unchecked((scores[cue.group] += cue.weight * (cue.group < TASK_CHAT ? f : 1.0)));
  }
  for (let g = 0; g < 9; g++) scores[g] += min(material[g], MATERIAL_CAP);

  // Structure, over the whole text (cheap byte scans).
  // Structure over the same window (bounded work for any prompt size).
  const st = scanStructure(window);
  st.mathExprs += wordMath;
  if (st.fences >= 2) scores[TASK_CODE] += 3.0;
  else if (st.fences == 1) scores[TASK_CODE] += 1.5;
  if (st.inlineCode >= 2) scores[TASK_CODE] += 1.0;
  if (st.codeLines >= 3) scores[TASK_CODE] += 2.0;
  else if (st.codeLines >= 1) scores[TASK_CODE] += 1.0;
  if (st.mathExprs >= 3) scores[TASK_MATH] += 3.0;
  else if (st.mathExprs >= 1) scores[TASK_MATH] += 2.0;
  // Mostly non-Latin text with a short Latin instruction is often a translation request.
  if (st.nonLatin > 20 && st.nonLatin * 3 > wn) scores[TASK_TRANSLATE] += 1.0;

  let best = TASK_CHAT;
  let bestScore: f64 = 0;
  // Tie order: code, math, translate, summarize, extract, reasoning.
  const order: StaticArray<i32> = [TASK_CODE, TASK_MATH, TASK_TRANSLATE, TASK_SUMMARIZE, TASK_EXTRACT, TASK_REASONING];
  for (let k = 0; k < order.length; k++) {
    const t = order[k];
    if (scores[t] > bestScore) {
      bestScore = scores[t];
      best = t;
    }
  }
  // Chat cues argue against a weak task signal (greetings, jokes, stories).
  if (bestScore < WIN_SCORE || scores[TASK_CHAT] > bestScore) best = TASK_CHAT;
  for (let t = 0; t < TASKS; t++) out.scores[t] = scores[t];
  out.task = best;

  // Complexity.
  const tokens = <f64>(total + 3) / 4.0;
  let len = (Math.log2(tokens + 1) - 3.0) / 8.0;
  len = clamp01(len);
  let structure = 0.5 * min1(<f64>st.fences / 2.0 * 0.5 + (st.codeLines >= 5 ? 0.5 : 0))
    + 0.3 * min1(<f64>st.listItems / 5.0)
    + 0.3 * min1(<f64>(st.questions > 1 ? st.questions - 1 : 0) / 3.0)
    + 0.3 * min1(scores[CONSTRAINT] / 4.0);
  structure = min1(structure);
  const reasoning = min1(scores[CX] / 2.0);
  let prior: f64 = 0;
  if (best == TASK_REASONING) prior = 0.15;
  else if (best == TASK_CODE || best == TASK_MATH) prior = 0.1;
  out.complexity = clamp01(0.35 * len + 0.25 * structure + 0.30 * reasoning + prior);
  void tailStart;
  return out;
}

/** The cues seen, each with the largest factor of its occurrences. */
class Hits {
  factor: StaticArray<f64>;
  ids: Array<i32> = [];
  constructor(n: i32) { this.factor = new StaticArray<f64>(n); }
}

function noteHit(hit: Hits, id: i32, factor: f64): void {
  const f = hit.factor[id];
  if (f == 0) hit.ids.push(id);
  if (f < factor) hit.factor[id] = factor;
}

function phraseAt(cue: Cue, words: Words, w: i32): bool {
  const cw = cue.words;
  const n = cw.length;
  if (w + n > words.count) return false;
  for (let k = 1; k < n; k++) {
    if (k == n - 1 && cue.prefixLast) {
      if (!words.starts(w + k, unchecked(cw[k]))) return false;
    } else if (!words.is(w + k, unchecked(cw[k]))) return false;
  }
  return true;
}

@inline function clamp01(x: f64): f64 {
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

@inline function min1(x: f64): f64 {
  return x > 1 ? 1 : x;
}

class Structure {
  fences: i32 = 0; // ``` markers
  inlineCode: i32 = 0; // `x` spans
  codeLines: i32 = 0; // lines that look like code
  listItems: i32 = 0; // lines starting with -, *, •, or "1." / "1)"
  questions: i32 = 0; // '?' marks
  mathExprs: i32 = 0; // digit-operator-digit runs, powers, equations with a variable
  nonLatin: i32 = 0; // characters beyond Latin script
}

/** UTF-16 unit i of s; the callers keep i within bounds. */
@inline function cu(s: string, i: i32): i32 {
  return <i32>load<u16>(changetype<usize>(s) + (<usize>i << 1));
}

/** One pass over the text for the structural signals. */
function scanStructure(text: string): Structure {
  const s = new Structure();
  const n = text.length;
  let lineFirst = -1; // first non-space character of the line
  let lineLast = -1; // last non-space character
  let lineSymbols = 0;
  let lineLen = 0;
  let inFence = false;
  let i = 0;
  while (i <= n) {
    const c = i < n ? cu(text, i) : 0x0a;
    if (c == 0x0a) {
      // End of line: judge it.
      if (lineLen > 0) {
        if (!inFence && lineLooksLikeCode(lineFirst, lineLast, lineSymbols, lineLen)) s.codeLines++;
        else if (inFence) s.codeLines++;
      }
      lineFirst = -1;
      lineLast = -1;
      lineSymbols = 0;
      lineLen = 0;
      i++;
      continue;
    }
    if (c == 0x60) {
      if (i + 2 < n && cu(text, i + 1) == 0x60 && cu(text, i + 2) == 0x60) {
        s.fences++;
        inFence = !inFence;
        i += 3;
        lineLen = 0; // the fence line itself is not code
        // Skip the rest of the fence line (the language tag).
        while (i < n && cu(text, i) != 0x0a) i++;
        continue;
      }
      // Inline code: a closing backtick within 80 characters on the same line.
      let j = i + 1;
      while (j < n && j < i + 80 && cu(text, j) != 0x60 && cu(text, j) != 0x0a) j++;
      if (j < n && j > i + 1 && cu(text, j) == 0x60) {
        s.inlineCode++;
        i = j + 1;
        lineLen += 2;
        continue;
      }
    }
    if (c != 0x20 && c != 0x09 && c != 0x0d) {
      if (lineFirst < 0) {
        lineFirst = c;
        // List items: "- x", "* x", "• x", "1. x", "1) x".
        if ((c == 0x2d || c == 0x2a || c == 0x2022) && i + 1 < n && cu(text, i + 1) == 0x20) s.listItems++;
        else if (c >= 0x30 && c <= 0x39) {
          let j = i;
          while (j < n && j < i + 3 && isDigit(cu(text, j))) j++;
          if (j + 1 < n && (cu(text, j) == 0x2e || cu(text, j) == 0x29) && cu(text, j + 1) == 0x20) s.listItems++;
        }
      }
      lineLast = c;
      lineLen++;
      if (c == 0x7b || c == 0x7d || c == 0x3b || c == 0x28 || c == 0x29 || c == 0x3d || c == 0x5b || c == 0x5d || c == 0x3c || c == 0x3e) lineSymbols++;
    }
    if (c == 0x3f) s.questions++;
    if (c >= 0x370 && !(c >= 0x2000 && c <= 0x2bff)) s.nonLatin++; // not Latin, not punctuation/symbols
    // Arithmetic: digit [space] operator [space] digit, x^2, or 2x
    if (isDigit(c) || c == 0x78 || c == 0x79 || c == 0x6e) {
      let j = i + 1;
      while (j < n && isDigit(cu(text, j))) j++;
      let k = j;
      while (k < n && cu(text, k) == 0x20) k++;
      if (k < n) {
        const op = cu(text, k);
        if (op == 0x25 && isDigit(c) && k + 4 < n && cu(text, k + 1) == 0x20 && cu(text, k + 2) == 0x6f && cu(text, k + 3) == 0x66) {
          s.mathExprs++; // "15% of"
          i = k + 4;
          continue;
        }
        if (op == 0x2b || op == 0x2a || op == 0x2f || op == 0x5e || op == 0xd7 || op == 0xf7 || op == 0x3d || (op == 0x2d && k > j)) {
          let m = k + 1;
          while (m < n && cu(text, m) == 0x20) m++;
          if (m < n && (isDigit(cu(text, m)) || ((op == 0x5e || op == 0x3d) && isMathVar(cu(text, m))))) {
            // x/y-style operands must be single letters (not words like "yes").
            if (isDigit(c) || !isLetterAt(text, i + 1) && (i == 0 || !isLetterAt(text, i - 1))) {
              s.mathExprs++;
              i = m;
              continue;
            }
          }
        }
      }
    }
    if (c == 0x221a || c == 0x222b || c == 0x2211 || c == 0x03c0 || c == 0x2264 || c == 0x2265 || c == 0xb2) s.mathExprs++; // √ ∫ ∑ π ≤ ≥ ²
    i++;
  }
  return s;
}

/** Whether word w opens a sentence: first word, after . ! ? : or a line break, or after
 * "please" / "can you" / "could you". */
function sentenceStart(text: string, words: Words, w: i32): bool {
  if (w == 0) return true;
  if (words.is(w - 1, "please") || words.is(w - 1, "you")) return true;
  let i = words.at(w) - 1;
  while (i >= 0 && (text.charCodeAt(i) == 0x20 || text.charCodeAt(i) == 0x09)) i--;
  if (i < 0) return true;
  const c = <i32>text.charCodeAt(i);
  return c == 0x2e || c == 0x21 || c == 0x3f || c == 0x3a || c == 0x0a;
}

function startsListItem(s: string, i: i32): bool {
  while (i < s.length && (s.charCodeAt(i) == 0x20 || s.charCodeAt(i) == 0x09)) i++;
  if (i >= s.length) return false;
  const c = <i32>s.charCodeAt(i);
  return isDigit(c) || c == 0x2d || c == 0x2a || c == 0x2022;
}

@inline function isDigit(c: i32): bool {
  return c >= 0x30 && c <= 0x39;
}

@inline function isMathVar(c: i32): bool {
  return c == 0x78 || c == 0x79 || c == 0x6e || c == 0x28;
}

function isLetterAt(text: string, i: i32): bool {
  if (i < 0 || i >= text.length) return false;
  const c = <i32>text.charCodeAt(i) | 0x20;
  return c >= 0x61 && c <= 0x7a;
}

function lineLooksLikeCode(first: i32, last: i32, symbols: i32, len: i32): bool {
  if (len < 4) return false;
  // Ends like a statement or a block, or is dense with code punctuation.
  if (last == 0x3b || last == 0x7b || (last == 0x7d && first == 0x7d)) return true;
  if (first == 0x23 && last != 0x3f && len < 40 && symbols > 0) return true; // #include, # comment with code
  return symbols * 6 >= len && symbols >= 3;
}
