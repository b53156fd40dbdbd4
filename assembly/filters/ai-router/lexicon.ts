// The classifier's lexicon: cue words and phrases per task, each with a weight, in a hash table of
// first words (open addressing) built once per VM. classify.ts reads a prompt against it.
import { splitWords } from "./words";

export const TASK_CODE: i32 = 0;
export const TASK_MATH: i32 = 1;
export const TASK_REASONING: i32 = 2;
export const TASK_SUMMARIZE: i32 = 3;
export const TASK_EXTRACT: i32 = 4;
export const TASK_TRANSLATE: i32 = 5;
export const TASK_CHAT: i32 = 6;
export const TASKS: i32 = 7;
// Pseudo-task for complexity cues.
export const CX: i32 = 7;
// Pseudo-task for constraint words (complexity structure).
export const CONSTRAINT: i32 = 8;

export const TASK_NAMES: Array<string> = ["code", "math", "reasoning", "summarize", "extract", "translate", "chat"];

export function taskIndex(name: string): i32 {
  for (let i = 0; i < TASK_NAMES.length; i++) if (TASK_NAMES[i] == name) return i;
  return -1;
}

// ---------------------------------------------------------------------------------------------
// The lexicon: "phrase|weight" per task. Phrases are folded words separated by spaces; a trailing
// * on the last word matches any word starting with it. Each list is returned by a function rather
// than held in a global: once the lexicon is built the lists are garbage, where a global array of
// strings would be marked by every collection for the VM's whole life.

function codeCues(): Array<string> {
  return [
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
}

function mathCues(): Array<string> {
  return [
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
}

function reasoningCues(): Array<string> {
  return [
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
}

function summarizeCues(): Array<string> {
  return [
    "summar*|4", "tl;dr|4", "tldr|4", "key points|3", "main points|3", "key takeaways|3", "takeaway*|2",
    "condense|3", "shorten|2.5", "recap|3", "gist|3", "overview|1.5", "in a nutshell|3", "bullet points|1",
    "abstract|1", "highlights|1.5", "boil down|3", "in one sentence|2", "in two sentences|2",
    "in three sentences|2", "in a few sentences|2", "short version|2.5", "brief|1", "briefly|1",
    "main idea|3", "main ideas|3", "what is this article about|3", "meeting notes|1.5", "transcript|1.5",
    "executive summary|2", "shorter|1.5", "100 words|1.5", "50 words|1.5", "synopsis|3",
  ];
}

function extractCues(): Array<string> {
  return [
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
}

function translateCues(): Array<string> {
  return [
    "translate*|5", "translation*|4", "how do you say|4", "how to say|3.5", "how would you say|3.5",
    "in english|1", "what does|0.5", "localize|2.5", "localise|2.5", "subtitle*|1", "phrase|0.5",
  ];
}

function chatCues(): Array<string> {
  return [
    "hi|1.5", "hello|1.5", "hey|1.5", "thanks|1.5", "thank you|1.5", "how are you|2", "joke|2", "poem|2.5",
    "story|2", "haiku|2.5", "limerick|2.5", "song|1.5", "lyrics|1.5", "write an email|1.5", "email to|1",
    "birthday|1.5", "recipe|2", "good morning|2", "what's up|2", "tell me about|1", "who was|1.5",
    "who is|1", "what is the capital|2", "capital of|1.5", "fun fact*|2", "suggest|1", "ideas for|1.5",
    "name for|1.5", "names for|1.5", "slogan|2", "tagline|2", "caption|1.5", "tweet|1.5", "cover letter|1.5",
    "wedding|1.5", "gift|1.5", "movie|1", "book|0.5", "weather|1", "cook|1.5", "vacation|1.5", "trip|1",
    "rewrite|1", "rephrase|1.5", "polite|1", "friendly|1", "advice|1",
  ];
}

function cxCues(): Array<string> {
  return [
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
}

function constraintCues(): Array<string> {
  return [
    "must|1", "should|0.5", "without|1", "ensure|1", "at least|1", "at most|1", "exactly|1", "only|0.5",
    "requirement*|1", "constraint*|1", "do not|1", "don't|1", "never|0.5", "always|0.5", "make sure|1",
    "no more than|1", "handle|0.5", "including|0.5", "also|0.5", "preserv*|1", "keep|0.5", "keeping|0.5",
    "maintain*|0.5", "respect|0.5", "consistent|0.5", "unchanged|1", "under|0.3", "no longer than|1", "style of|1",
    "tone|0.5", "register|0.5", "untouched|1", "include|0.5", "format|0.5", "limit|0.5", "and explain|1", "explain the|0.5", "each|0.3",
  ];
}

// Language names: a language after "into" / "to" / "in" (or before "translation") is strong
// evidence of translation.
function languages(): Array<string> {
  return [
    "english", "french", "spanish", "german", "italian", "portuguese", "japanese", "chinese", "mandarin",
    "korean", "russian", "arabic", "hindi", "dutch", "polish", "turkish", "swedish", "norwegian", "danish",
    "finnish", "greek", "hebrew", "vietnamese", "thai", "indonesian", "ukrainian", "czech", "romanian",
    "hungarian", "bengali", "urdu", "persian", "farsi", "swahili", "catalan", "tagalog", "malay", "latin",
    "cantonese",
  ];
}

/** The first three UTF-16 units of s[at...] as one number. */
export function stemKey(s: string, at: i32): i32 {
  const b = changetype<usize>(s) + (<usize>at << 1);
  return ((<i32>load<u16>(b) & 0x3ff) << 20) | ((<i32>load<u16>(b + 2) & 0x3ff) << 10) | (<i32>load<u16>(b + 4) & 0x3ff);
}

const TABLE_SIZE: i32 = 4096; // open addressing over first words; a power of two, > 4 x entries
const STEM_SLOTS: i32 = 512; // open addressing over prefix stems (under a hundred); a power of two

/** A stem key's first slot (stemKey is three 10-bit units: mixed so neighbours spread). */
@inline function stemSlot(key: i32): i32 {
  return <i32>((<u32>key * 2654435761) >> 23) & (STEM_SLOTS - 1);
}

/** FNV-1a over the UTF-16 units [at, at + len) of s. */
function hashAt(s: string, at: i32, len: i32): u32 {
  let h: u32 = 2166136261;
  const base = changetype<usize>(s) + (<usize>at << 1);
  for (let i = 0; i < len; i++) h = (h ^ <u32>load<u16>(base + (<usize>i << 1))) * 16777619;
  return h;
}

/**
 * The lexicon, built once per VM, as a few flat arrays rather than an object per cue and per word:
 * it lives as long as the VM, and every collection marks what is live (a lexicon of ~3,500 small
 * objects cost ai-router an eighth of its time per request in marking alone).
 *
 * - Words: every cue word, one after another in `pool`; word j is [wordAt[j], wordAt[j] + wordLen[j]).
 * - Cues: cue c is words cueWord[c] .. cueWord[c] + cueWords[c] - 1, with its task (group), weight,
 *   and whether its last word matches as a prefix ("summar*").
 * - First words: an open-addressing table, slot -> entry; entry e is word entryWord[e], the cues
 *   starting with it are entryCues[entryFrom[e] .. entryFrom[e + 1]), and entryLanguage[e] says
 *   whether it names a language.
 * - Stems: single-word prefix cues by their first three characters (stemKey): slot -> key, and the
 *   cues stemCues[stemFrom[slot] .. stemTo[slot]).
 */
export class Lexicon {
  pool: string = "";
  wordAt: Array<i32> = [];
  wordLen: Array<i32> = [];
  cueWord: Array<i32> = [];
  cueWords: Array<i32> = [];
  cueGroup: Array<i32> = [];
  cueWeight: Array<f64> = [];
  cuePrefixLast: Array<bool> = [];
  slots: StaticArray<i32> = new StaticArray<i32>(TABLE_SIZE);
  entryWord: Array<i32> = [];
  entryFrom: Array<i32> = [];
  entryCues: Array<i32> = [];
  entryLanguage: Array<bool> = [];
  stemKeys: StaticArray<i32> = new StaticArray<i32>(STEM_SLOTS);
  stemFrom: StaticArray<i32> = new StaticArray<i32>(STEM_SLOTS);
  stemTo: StaticArray<i32> = new StaticArray<i32>(STEM_SLOTS);
  stemCues: Array<i32> = [];

  constructor() {
    this.slots.fill(-1);
    this.stemKeys.fill(-1);
  }

  /** Number of cues. */
  get count(): i32 { return this.cueWord.length; }

  /** Whether s[at, at + len) is word j. */
  @inline wordIs(s: string, at: i32, len: i32, j: i32): bool {
    return len == unchecked(this.wordLen[j]) && this.sameUnits(s, at, j, len);
  }

  /** Whether s[at, at + len) starts with word j. */
  @inline wordStarts(s: string, at: i32, len: i32, j: i32): bool {
    const n = unchecked(this.wordLen[j]);
    return len >= n && this.sameUnits(s, at, j, n);
  }

  @inline private sameUnits(s: string, at: i32, j: i32, n: i32): bool {
    const a = changetype<usize>(s) + (<usize>at << 1);
    const b = changetype<usize>(this.pool) + (<usize>unchecked(this.wordAt[j]) << 1);
    return memory.compare(a, b, <usize>n << 1) == 0;
  }

  /** The entry of word s[at, at + len), or -1. */
  find(s: string, at: i32, len: i32): i32 {
    let slot = <i32>(hashAt(s, at, len) & <u32>(TABLE_SIZE - 1));
    while (true) {
      const e = unchecked(this.slots[slot]);
      if (e < 0) return -1;
      if (this.wordIs(s, at, len, unchecked(this.entryWord[e]))) return e;
      slot = (slot + 1) & (TABLE_SIZE - 1);
    }
  }

  /** The slot of the stem table holding key (stemKey), or -1. */
  stem(key: i32): i32 {
    let slot = stemSlot(key);
    while (true) {
      const k = unchecked(this.stemKeys[slot]);
      if (k == key) return slot;
      if (k < 0) return -1;
      slot = (slot + 1) & (STEM_SLOTS - 1);
    }
  }
}

/**
 * Builds a Lexicon from the lists. What it holds only while building (the words as strings, the
 * cue lists of each first word and stem, the maps that find them) is garbage once `done` returns.
 */
class LexiconBuilder {
  lx: Lexicon = new Lexicon();
  words: Array<string> = [];
  poolUnits: i32 = 0;
  entries: Map<string, i32> = new Map();
  entryLists: Array<Array<i32>> = [];
  stems: Map<i32, i32> = new Map();
  stemKeys: Array<i32> = [];
  stemLists: Array<Array<i32>> = [];

  addWord(w: string): i32 {
    const lx = this.lx;
    const j = lx.wordAt.length;
    this.words.push(w);
    lx.wordAt.push(this.poolUnits);
    lx.wordLen.push(w.length);
    this.poolUnits += w.length;
    return j;
  }

  /** The entry of first word w, added (and placed in the table) when new. */
  entry(w: string): i32 {
    if (this.entries.has(w)) return this.entries.get(w);
    const lx = this.lx;
    const e = lx.entryWord.length;
    this.entries.set(w, e);
    lx.entryWord.push(this.addWord(w));
    lx.entryLanguage.push(false);
    this.entryLists.push([]);
    let slot = <i32>(hashAt(w, 0, w.length) & <u32>(TABLE_SIZE - 1));
    while (lx.slots[slot] >= 0) slot = (slot + 1) & (TABLE_SIZE - 1);
    lx.slots[slot] = e;
    return e;
  }

  stemList(key: i32): Array<i32> {
    if (this.stems.has(key)) return this.stemLists[this.stems.get(key)];
    this.stems.set(key, this.stemKeys.length);
    this.stemKeys.push(key);
    const list = new Array<i32>();
    this.stemLists.push(list);
    return list;
  }

  addCues(list: Array<string>, group: i32): void {
    const lx = this.lx;
    for (let i = 0; i < list.length; i++) {
      const entry = list[i];
      const bar = entry.lastIndexOf("|");
      const weight = parseFloat(entry.substring(bar + 1));
      let text = entry.substring(0, bar);
      const prefixLast = text.endsWith("*");
      if (prefixLast) text = text.substring(0, text.length - 1);
      const words = splitWords(text);
      if (words.length == 0) continue;
      const id = lx.cueWord.length;
      lx.cueWord.push(lx.wordAt.length);
      lx.cueWords.push(words.length);
      lx.cueGroup.push(group);
      lx.cueWeight.push(weight);
      lx.cuePrefixLast.push(prefixLast);
      for (let k = 0; k < words.length; k++) this.addWord(words[k]);
      if (prefixLast && words.length == 1 && words[0].length >= 3) this.stemList(stemKey(words[0], 0)).push(id);
      else this.entryLists[this.entry(words[0])].push(id);
    }
  }

  /** The lexicon, its words copied into one string and each cue list into one flat array. */
  done(): Lexicon {
    const lx = this.lx;
    // One string of the length counted (Array#join("") of these 1,313 words grew linear memory
    // from 8 to 256 pages under shrink level 2's std library).
    const pool = changetype<string>(__new(<usize>this.poolUnits << 1, idof<string>()));
    for (let j = 0; j < this.words.length; j++) {
      const w = this.words[j];
      memory.copy(changetype<usize>(pool) + (<usize>lx.wordAt[j] << 1), changetype<usize>(w), <usize>w.length << 1);
    }
    lx.pool = pool;
    for (let e = 0; e < this.entryLists.length; e++) {
      lx.entryFrom.push(lx.entryCues.length);
      const ids = this.entryLists[e];
      for (let k = 0; k < ids.length; k++) lx.entryCues.push(ids[k]);
    }
    lx.entryFrom.push(lx.entryCues.length);
    for (let i = 0; i < this.stemKeys.length; i++) {
      const key = this.stemKeys[i];
      let slot = stemSlot(key);
      while (lx.stemKeys[slot] >= 0) slot = (slot + 1) & (STEM_SLOTS - 1);
      lx.stemKeys[slot] = key;
      lx.stemFrom[slot] = lx.stemCues.length;
      const ids = this.stemLists[i];
      for (let k = 0; k < ids.length; k++) lx.stemCues.push(ids[k]);
      lx.stemTo[slot] = lx.stemCues.length;
    }
    return lx;
  }
}

let lexicon: Lexicon | null = null;

export function getLexicon(): Lexicon {
  let lx = lexicon;
  if (lx !== null) return lx;
  const b = new LexiconBuilder();
  b.addCues(codeCues(), TASK_CODE);
  b.addCues(mathCues(), TASK_MATH);
  b.addCues(reasoningCues(), TASK_REASONING);
  b.addCues(summarizeCues(), TASK_SUMMARIZE);
  b.addCues(extractCues(), TASK_EXTRACT);
  b.addCues(translateCues(), TASK_TRANSLATE);
  b.addCues(chatCues(), TASK_CHAT);
  b.addCues(cxCues(), CX);
  b.addCues(constraintCues(), CONSTRAINT);
  const langs = languages();
  for (let i = 0; i < langs.length; i++) b.lx.entryLanguage[b.entry(langs[i])] = true;
  const l = b.done();
  lexicon = l;
  return l;
}

/** Warms the lexicon (at configure time, so the first request does not pay for it). */
export function initClassifier(): void {
  getLexicon();
}
