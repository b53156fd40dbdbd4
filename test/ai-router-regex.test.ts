// assembly/lib/regex.ts on its own: compiled at test time (a small harness module, held in memory)
// and checked against JavaScript's RegExp on random patterns and texts, then on hostile inputs:
// the work counter (regexSteps) must grow linearly with the text, whatever the pattern.
import { describe, it, expect, beforeAll } from "vitest";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import fc from "fast-check";

const ROOT = resolve(".");
const HARNESS = join(ROOT, "ai-router-regex-harness.ts"); // virtual: never written to disk
const HARNESS_SOURCE = `
import { Regex, regexError, regexSteps } from "./assembly/lib/regex";
const cache = new Map<string, Regex | null>();
let lastError = "";
function get(p: string): Regex | null {
  if (cache.has(p)) return cache.get(p);
  const r = Regex.compile(p);
  lastError = r === null ? regexError : "";
  cache.set(p, r);
  return r;
}
/** 1 match, 0 no match, -1 the pattern does not compile. */
export function test(pattern: string, text: string): i32 {
  const r = get(pattern);
  if (r === null) return -1;
  return r.test(text) ? 1 : 0;
}
export function error(pattern: string): string {
  cache.delete(pattern);
  get(pattern);
  return lastError;
}
export function size(pattern: string): i32 {
  const r = get(pattern);
  return r === null ? -1 : r.size;
}
export function steps(): f64 { return <f64>regexSteps; }
export function within(pattern: string, text: string, budget: f64): i32 {
  const r = get(pattern);
  return r === null ? -2 : r.testWithin(text, <i64>budget);
}
`;

interface Harness {
  test(pattern: string, text: string): number;
  error(pattern: string): string;
  size(pattern: string): number;
  steps(): number;
  within(pattern: string, text: string, budget: number): number;
}

async function buildHarness(): Promise<Harness> {
  const asc = (await import("assemblyscript/asc")).default;
  let wasm: Uint8Array | null = null;
  const { error, stderr } = await asc.main(
    [HARNESS, "--runtime", "incremental", "--exportRuntime", "-O2", "--noAssert", "-o", "harness.wasm"],
    {
      readFile: (name: string, baseDir: string) => {
        const p = resolve(baseDir, name);
        if (p === HARNESS) return HARNESS_SOURCE;
        if (p.endsWith("asconfig.json")) return null; // the filters' build settings are not for the harness
        try { return readFileSync(p, "utf8"); } catch { return null; }
      },
      writeFile: (name: string, contents: string | Uint8Array) => { if (name.endsWith(".wasm") && typeof contents !== "string") wasm = contents; },
      listFiles: () => [],
    },
  );
  if (error) throw new Error(`harness build failed: ${error.message}\n${stderr.toString()}`);
  const instance = await WebAssembly.instantiate(new WebAssembly.Module(wasm! as Uint8Array<ArrayBuffer>), {
    env: { abort: () => { throw new Error("abort"); }, seed: () => 0 },
  });
  const x = instance.exports as Record<string, any>;
  const mem = () => x.memory as WebAssembly.Memory;
  const lower = (s: string): number => {
    const ptr = x.__new(s.length << 1, 2) >>> 0;
    const u16 = new Uint16Array(mem().buffer);
    for (let i = 0; i < s.length; i++) u16[(ptr >>> 1) + i] = s.charCodeAt(i);
    return x.__pin(ptr) >>> 0;
  };
  const lift = (ptr: number): string => {
    if (!ptr) return "";
    const len = new Uint32Array(mem().buffer)[(ptr - 4) >>> 2] >>> 1;
    const u16 = new Uint16Array(mem().buffer, ptr, len);
    let s = "";
    for (let i = 0; i < len; i += 4096) s += String.fromCharCode(...u16.subarray(i, i + 4096));
    return s;
  };
  const call = <T>(args: string[], f: (...ptrs: number[]) => T): T => {
    const ptrs = args.map(lower);
    try { return f(...ptrs); } finally { for (const p of ptrs) x.__unpin(p); }
  };
  return {
    test: (p, t) => call([p, t], (a, b) => x.test(a, b)),
    error: (p) => call([p], (a) => lift(x.error(a) >>> 0)),
    size: (p) => call([p], (a) => x.size(a)),
    steps: () => x.steps(),
    within: (p, t, b) => call([p, t], (a, c) => x.within(a, c, b)),
  };
}

let re: Harness;
beforeAll(async () => {
  re = await buildHarness();
}, 120_000);

describe("regex: the supported syntax", () => {
  const yes: [string, string][] = [
    ["abc", "xxabcxx"], ["^abc$", "abc"], ["a.c", "abc"], ["a[bx]c", "axc"], ["a[^b]c", "aac"], ["[a-z]+\\d{2,3}", "--abc12--"],
    ["\\bcat\\b", "a cat!"], ["\\Bat", "cat"], ["\\w+@\\w+\\.com", "mail bob@example.com now"], ["colou?r", "color"],
    ["(?:ab)+$", "xabab"], ["(a|b)*c", "ababc"], ["x{3}", "axxxb"], ["x{2,}", "xx"], ["\\s\\S", " a"], ["\\D\\W", "a!"],
    ["[\\d.]+", "3.14"], ["a\\.b", "a.b"], ["\\(\\)", "f()"], ["[]a]", "]"], ["[a-]", "-"], ["\\x41", "A"], ["\\u00e9", "é"],
    ["(?i)hello", "HeLLo"], ["(?i)[a-c]+x", "ABCX"], ["(?i)ÉCOLE", "école"], ["(?i)ПРИВЕТ", "привет"], ["(?s)a.b", "a\nb"],
    ["(?m)^b$", "a\nb\nc"], ["^.$", "😀"], ["a{,2}", "a{,2}"], ["a{x", "a{x"], ["", "anything"], ["()", ""], ["(a*)*b", "aab"],
    ["(?i)\\bPAY(MENT)?S?\\b", "late payments due"], ["a|", "zzz"], ["ab*?c", "abbc"], ["\\A\\w+\\z", "word"],
  ];
  const no: [string, string][] = [
    ["^abc$", "abcd"], ["a.c", "a\nc"], ["a[^b]c", "abc"], ["\\bcat\\b", "concat"], ["(?m)^b$", "ab\nc"], ["^b", "a\nb"],
    ["hello", "HELLO"], ["x{3}", "xx"], ["(a|b)*c$", "ababca"], ["\\d", "abc"], ["[a-c]", "xyz"], ["(?i)[^a]", "AAA"],
  ];
  it.each(yes)("%j matches %j", (p, t) => expect(re.test(p, t)).toBe(1));
  it.each(no)("%j does not match %j", (p, t) => expect(re.test(p, t)).toBe(0));

  it("refuses what it does not support, saying why and where", () => {
    const bad: [string, RegExp][] = [
      ["(abc", /missing \) at offset 4/], ["abc)", /unmatched \)/], ["[abc", /missing \]/], ["*a", /nothing to repeat/],
      ["a**", /repetition of a repetition/], ["a(?=b)", /lookahead/], ["(?<=a)b", /lookbehind/], ["(?P<n>a)", /named groups/],
      ["(a)\\1", /backreferences/], ["\\p{L}", /Unicode classes/], ["[[:alpha:]]", /POSIX classes/], ["a{1001}", /over 1000/],
      ["a{3,2}", /n < m/], ["x(?i)y", /flags are supported only at the start/], ["\\q", /unknown escape/], ["a++", /possessive/],
      ["\\", /trailing backslash/], ["[z-a]", /bad range/], ["\\x4", /hex escape/], ["(((a{100}){100}){100})", /pattern too large/],
      ["(".repeat(300) + ")".repeat(300), /nesting too deep/], ["^*", /nothing to repeat/],
    ];
    for (const [p, why] of bad) {
      expect(re.test(p, "x"), p).toBe(-1);
      expect(re.error(p), p).toMatch(why);
    }
  });
});

describe("regex: never traps", () => {
  it("on arbitrary patterns and texts (compiles or says why; answers or not)", () => {
    const pat = fc.oneof(
      fc.string({ unit: fc.constantFrom(..."()[]{}|*+?.^$\\-,:=!<>PpdwsbBxu0123456789aAz ".split("")), maxLength: 24 }),
      fc.string({ unit: "binary", maxLength: 16 }),
    );
    fc.assert(
      fc.property(pat, fc.string({ unit: "binary", maxLength: 64 }), (p, t) => {
        const r = re.test(p, t);
        expect([-1, 0, 1]).toContain(r);
        if (r === -1) expect(re.error(p).length).toBeGreaterThan(0);
      }),
      { numRuns: 5000, seed: 44 },
    );
  });
});

describe("regex: agrees with JavaScript's RegExp", () => {
  // Patterns over a small alphabet, in the subset where RE2 and JavaScript agree (no flags that
  // differ, ASCII texts without \r).
  const atom = fc.constantFrom("a", "b", "c", ".", "[ab]", "[^a]", "[a-c]", "\\d", "\\w", "\\s", "\\W", "1", " ", "_");
  const pattern: fc.Arbitrary<string> = fc.letrec((tie) => ({
    node: fc.oneof({ depthSize: "small", withCrossShrink: true }, atom, tie("seq"), tie("alt"), tie("rep"), tie("group"), tie("anchor")),
    seq: fc.array(tie("node"), { minLength: 2, maxLength: 4 }).map((xs) => (xs as string[]).join("")),
    alt: fc.array(tie("node"), { minLength: 2, maxLength: 3 }).map((xs) => `(?:${(xs as string[]).join("|")})`),
    group: tie("node").map((x) => `(${x})`),
    rep: fc.tuple(tie("node"), fc.constantFrom("*", "+", "?", "{2}", "{1,3}", "{0,2}", "{2,}", "*?", "+?")).map(([x, q]) => `(?:${x})${q}`),
    anchor: fc.constantFrom("^", "$", "\\b", "\\B"),
  })).node as fc.Arbitrary<string>;
  const text = fc.string({ unit: fc.constantFrom("a", "b", "c", "1", " ", "_", "-", "\n"), maxLength: 20 });

  it("on random patterns and texts (match or not)", () => {
    fc.assert(
      fc.property(pattern, text, (p, t) => {
        expect(re.test(p, t), `/${p}/ on ${JSON.stringify(t)}`).toBe(new RegExp(p).test(t) ? 1 : 0);
      }),
      { numRuns: 3000, seed: 42 },
    );
  });

  it("case-insensitive, on ASCII", () => {
    const ci = fc.string({ unit: fc.constantFrom("a", "B", "c", "A", "b", "C", "1", " "), maxLength: 12 });
    fc.assert(
      fc.property(pattern, ci, (p, t) => {
        expect(re.test("(?i)" + p, t), `/${p}/i on ${JSON.stringify(t)}`).toBe(new RegExp(p, "i").test(t) ? 1 : 0);
      }),
      { numRuns: 1500, seed: 43 },
    );
  });
});

describe("regex: hostile inputs cost linear work", () => {
  it("stops when a step budget is spent (-1), and answers within it otherwise", () => {
    const t = "a".repeat(50_000);
    expect(re.within("(a|a)*b", t, 10_000)).toBe(-1);
    const before = re.steps();
    expect(re.within("(a|a)*b", "aac", 10_000)).toBe(0);
    expect(re.steps() - before).toBeLessThan(100);
    expect(re.within("a+$", t, 1e9)).toBe(1);
    // The overshoot past the budget is at most one position's work.
    const b2 = re.steps();
    expect(re.within("(.*a){20}z", t, 5_000)).toBe(-1);
    expect(re.steps() - b2).toBeLessThan(5_000 + 4 * re.size("(.*a){20}z"));
  });

  // Each pattern is catastrophic for a backtracking engine on the matching text (exponential or
  // polynomial blow-up on a near miss).
  const cases: [string, (n: number) => string][] = [
    ["(a+)+$", (n) => "a".repeat(n) + "!"],
    ["(a|a)*b", (n) => "a".repeat(n)],
    ["(a|aa)+$", (n) => "a".repeat(n) + "b"],
    ["(x+x+)+y", (n) => "x".repeat(n)],
    ["(\\w+\\s?)*;$", (n) => "word ".repeat(n / 5)],
    ["(.*a){20}z", (n) => "a".repeat(n)],
    ["(?i)(a*)*b", (n) => "A".repeat(n)],
    ["^(([a-z])+.)+[A-Z]([a-z])+$", (n) => "aaaa".repeat(n / 4) + "!"],
  ];
  it.each(cases)("%s: steps grow linearly with the text, within len(text) x len(program)", (p, make) => {
    const sizes = [10_000, 20_000, 50_000, 100_000];
    const per: number[] = [];
    for (const n of sizes) {
      const t = make(n);
      const before = re.steps();
      const started = performance.now();
      expect(re.test(p, t)).toBe(0);
      const ms = performance.now() - started;
      const steps = re.steps() - before;
      // The bound the engine guarantees: a few steps per (position, instruction).
      expect(steps).toBeLessThanOrEqual(4 * (t.length + 1) * re.size(p));
      per.push(steps / t.length);
      expect(ms).toBeLessThan(5_000); // sanity only
    }
    // Linear: the work per character is the same at 10 KB and at 100 KB.
    const ratio = per[per.length - 1] / per[0];
    expect(ratio).toBeGreaterThan(0.9);
    expect(ratio).toBeLessThan(1.1);
  });
});
