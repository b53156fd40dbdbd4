// lib/json-tape.ts reads what lib/json.ts reads: build/test/json-tape.wasm (test/filters/json-tape)
// parses each body with both and logs what each offers its callers (decoded strings and their
// UTF-16 lengths, numbers as written and as read, an object's members by lookup, lengths, kinds),
// or the error, with the flags (bad UTF-8, repeated key, too many values). Every body here, valid
// or not, must give the same two lines.
import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { Host } from "../host/index.js";
import { BOMB_SHAPES } from "./json-bombs.js";

const WASM = "build/test/json-tape.wasm";
const HEADERS = { ":method": "POST", ":path": "/", ":authority": "gw", "content-type": "application/json" };

async function reader(maxValues = 100000) {
  const h = await Host.create({ filters: [{ name: "json-tape", wasm: WASM, configuration: String(maxValues) }] });
  /** Sends body through the module; the text of each info line it logged, by its first field. */
  function logged(body: string | Uint8Array): (field: string) => string {
    h.logs.length = 0;
    const s = h.newStream();
    s.callOnRequestHeaders(HEADERS, false);
    s.callOnRequestBody(body, true);
    s.completeHttpContext();
    const lines = h.getLogs("info");
    return (field) => lines.find((l) => l.startsWith(field + "\t"))?.slice(field.length + 1) ?? "missing";
  }
  return {
    h,
    /** The tree's and the tape's dumps of body. */
    read(body: string | Uint8Array): { tree: string; tape: string } {
      const of = logged(body);
      return { tree: of("tree"), tape: of("tape") };
    },
    /** A body that is one JSON string, read as JSON text from its decoded value and from its bytes. */
    text(body: string | Uint8Array): { fromString: string; fromBytes: string } {
      const of = logged(body);
      return { fromString: of("string"), fromBytes: of("text") };
    },
  };
}

/** s as a JSON string with every character past ASCII, and every `every`-th one, written as a \u escape. */
function allEscaped(s: string, every = 1): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7e || c < 0x20 || c === 0x22 || c === 0x5c || i % every === 0) out += "\\u" + c.toString(16).padStart(4, "0");
    else out += s[i];
  }
  return out + '"';
}

function same(r: { tree: string; tape: string }) {
  expect(r.tape).toBe(r.tree);
  expect(r.tree).not.toBe("missing");
}

describe("json-tape: reads what the tree reads", () => {
  it("valid texts: the same values, members, lengths and numbers", async () => {
    const { h, read } = await reader();
    const cases = [
      '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"max_tokens":512,"temperature":0.4,"stream":true,"stop":null}',
      '  [1, -0, 2.5e-3, 1E+400, 123456789012345678901234567890, [], {}, [[]], ""]  ',
      '{"s":"tab\\there \\"quoted\\" \\\\ \\/ \\b\\f\\n\\r \\u00e9 \\ud83c\\udf0d lone \\ud800 end"}',
      '{"é":"héllo wörld 🌍 — 你好","k":"\\u0000"}',
      '"just a string"', "0", "true", "false", "null",
    ];
    for (const c of cases) same(read(c));
    expect(read(cases[0]).tape).toBe('ok\t---\t{"model":"gpt-4o"#6,"messages":[{"role":"user"#4,"content":"hi"#2}],"max_tokens":512=512.0,"temperature":0.4=0.4,"stream":true,"stop":null}');
    h.close();
  });

  it("repeated keys: the last value wins and the flag is set, in small objects and in indexed ones", async () => {
    const { h, read } = await reader();
    const r = read('{"model":"a","x":1,"model":"b"}');
    same(r);
    expect(r.tape).toBe('ok\t-D-\t{"model":"b"#1,"x":1=1.0}');
    // Written differently, the same key: an escape spells what bytes spell.
    same(read('{"model":"a","mod\\u0065l":"b"}'));
    expect(read('{"model":"a","mod\\u0065l":"b"}').tape).toContain("-D-");
    // 40 keys (past the tree's index threshold), the repeat at the end.
    const many = Array.from({ length: 40 }, (_, i) => `"k${i}":${i}`).join(",");
    same(read(`{${many},"k3":"again"}`));
    expect(read(`{${many},"k3":"again"}`).tape).toContain("-D-");
    same(read(`{${many}}`));
    expect(read(`{${many}}`).tape).toMatch(/^ok\t---/);
    h.close();
  });

  it("invalid UTF-8 in keys and values: both decode it to U+FFFD and flag it", async () => {
    const { h, read } = await reader();
    for (const bytes of [
      [0x7b, 0x22, 0x61, 0xff, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d], // {"a\xff":"\xc3("}
      [0x5b, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x5d], // a UTF-8 encoded surrogate
      [0x5b, 0x22, 0xf4, 0x90, 0x80, 0x80, 0x22, 0x5d], // past U+10FFFF
      [0x5b, 0x22, 0xe2, 0x82, 0x22, 0x5d], // truncated sequence
    ]) {
      const r = read(new Uint8Array(bytes));
      same(r);
      expect(r.tape).toMatch(/^ok\tB--/);
    }
    h.close();
  });

  it("a string's first byte that is not plain, at every offset of the eight-byte scan: read as JSON.parse reads it", async () => {
    // scanString skips eight plain bytes at a time and jumps to the first one that is not (a quote,
    // a backslash, a control character, a byte past ASCII). Both readers share it, so each is held
    // to JSON.parse here, not only to the other.
    const { h, read } = await reader();
    const specials = ['"', "\\n", "\\\\", '\\"', "\\u00e9", "\\ud83c\\udf0d", "é", "日", "🌍", "\u0001", "\u001f", "\u007f", " ", "~"];
    for (const x of specials) {
      for (let before = 0; before < 18; before++) {
        for (const after of [0, 1, 7, 9]) {
          const body = '"' + "a".repeat(before) + x + "b".repeat(after) + '"';
          let expected: string | null = null;
          try {
            expected = JSON.parse(body);
          } catch {
            expected = null;
          }
          const r = read(body);
          expect(r.tape, body).toBe(r.tree);
          if (expected === null) expect(r.tree, body).toMatch(/^error\t/);
          else {
            const m = /^ok\t---\t(.*)#(\d+)$/s.exec(r.tree);
            expect(m, body).not.toBeNull();
            expect(JSON.parse(m![1]), body).toBe(expected);
            expect(Number(m![2]), body).toBe(expected.length);
          }
        }
      }
    }
    h.close();
  });

  it("malformed texts: the same error at the same byte", async () => {
    const { h, read } = await reader();
    const bad = [
      "", " ", "{", "[", "[1,]", "[1 2]", '{"a" 1}', '{"a":}', '{a:1}', '{"a":1,}', '{"a":1', "[01]", "[-]", "[1.]",
      "[1e]", "[.5]", "[+1]", "tru", "nul", "[true false]", '"abc', '"a\\x"', '"\\u12g4"', '"\u0001"', '{"a":1}x',
      "[1]]", "{}{}", "[\"a\",\n", "NaN", "[Infinity]", "\u00a0[]",
      "[".repeat(65) + "]".repeat(65), "[".repeat(64) + "]".repeat(64), "[".repeat(66) + "]".repeat(66),
    ];
    for (const b of bad) same(read(b));
    expect(read("[1,]").tape).toBe("error\t---\tunexpected character at byte 3");
    h.close();
  });

  it("the value bound: the same values counted, the same refusal", async () => {
    const { h, read } = await reader(1000);
    for (const [name, make] of Object.entries(BOMB_SHAPES)) {
      for (const bytes of [200, 2000, 20000]) {
        const r = read(make(bytes));
        expect(r.tape, name).toBe(r.tree);
        if (bytes == 20000) expect(r.tape, name).toMatch(/^error\t--M\tmore than 1000 values at byte/);
      }
    }
    h.close();
  });

  it("any JSON, and any JSON with bytes cut, changed or added: both read it alike (property)", async () => {
    const { h, read } = await reader(5000);
    const edit = fc.tuple(fc.nat(), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 255 }));
    fc.assert(
      fc.property(fc.oneof(fc.json({ maxDepth: 4 }), fc.json({ maxDepth: 2, noUnicodeString: false })), fc.array(edit, { maxLength: 3 }), (text, edits) => {
        let b = Buffer.from(text);
        for (const [at, op, byte] of edits) {
          const i = b.length ? at % b.length : 0;
          if (op === 0) b = b.subarray(0, i); // cut
          else if (op === 1) b = Buffer.concat([b.subarray(0, i), Buffer.from([byte]), b.subarray(i)]); // add
          else if (op === 2 && b.length) b[i] = byte; // change
          else b = Buffer.concat([b.subarray(0, i), Buffer.from(" \\\"{[,:"[byte % 7]), b.subarray(i)]);
        }
        const r = read(b);
        expect(r.tape).toBe(r.tree);
        if (edits.length === 0) expect(r.tape).toMatch(/^ok\t/);
      }),
      { numRuns: 3000 },
    );
    h.close();
  });
});

describe("parseJsonText: a string's JSON text read from its bytes, as parseJsonString reads its decoded value", () => {
  // Tool calls' arguments are JSON text inside a JSON string; ai-proxy resolves their escapes
  // straight into UTF-8 (lib/json.ts unescapeUtf8) instead of decoding the string and encoding it
  // back. Surrogates written as escapes (pairs, lone ones, one next to a raw character) must give
  // the bytes String.UTF8.encode gives, so that the parse, its errors and its flags are the same.
  it("texts with escapes of every kind, surrogates paired, lone or next to raw characters, and invalid texts", async () => {
    const { h, text } = await reader();
    // Each body is the outer JSON string as sent; \\uXXXX inside is an escape of the inner text,
    // \uXXXX one of the outer string (resolved before the inner text is parsed).
    const bodies = [
      JSON.stringify('{"order_id":"NW-48213","include_items":true}'),
      JSON.stringify('{"s":"tab\there \"quoted\" \\ \/ é 🌍","n":[1,2.5e3,-0]}'),
      allEscaped('{"city":"Zürich 🌍 日本"}'),
      allEscaped('{"a":"x"}', 2),
      String.raw`"{\"a\":\"\\ud83c\\udf0d\"}"`, // a pair escaped in the inner text
      String.raw`"{\"a\":\"\ud83c\udf0d\"}"`, // a pair escaped in the outer string: raw in the text
      String.raw`"{\"a\":\"\\ud800\"}"`, // a lone high surrogate escaped in the inner text
      String.raw`"{\"a\":\"\ud800x\"}"`, // a lone high surrogate in the text itself
      String.raw`"{\"a\":\"\udc00\"}"`, // a lone low surrogate
      String.raw`"{\"a\":\"\ud83c🌍\"}"`, // a high surrogate escape, then a raw character past U+FFFF
      String.raw`"{\"a\":\"\ud83c\u0041\"}"`, // a high surrogate, then a plain escape
      String.raw`"{\"a\":\"\udf0d\ud83c\"}"`, // low then high: two lone ones
      String.raw`"\ud83c"`, String.raw`"\udf0d\ud83c"`, // surrogates alone as the whole text
      JSON.stringify('{"a":1,"a":2}'), // a repeated key
      JSON.stringify('{"a":'), JSON.stringify("[1,]"), JSON.stringify(""), JSON.stringify("  "), // invalid
      allEscaped('{"a" : [true , null]} x'),
    ];
    for (const b of bodies) {
      const r = text(b);
      expect(r.fromBytes, b).toBe(r.fromString);
      expect(r.fromString, b).not.toBe("missing");
    }
    expect(text(bodies[0]).fromBytes).toBe('ok\t---\t{"order_id":"NW-48213"#8,"include_items":true}');
    h.close();
  });

  it("any JSON text, written with any escapes, with escapes and characters put in anywhere (property)", async () => {
    const { h, text } = await reader();
    let valid = 0;
    const unit = fc.oneof(fc.constantFrom(String.raw`\ud83c`, String.raw`\udf0d`, String.raw`\ud800`, String.raw`\udc00`, String.raw`\u0041`, String.raw`\u00e9`, String.raw`\n`, String.raw`\\`, String.raw`\"`, String.raw`\/`, "🌍", "é", "x"), fc.string({ maxLength: 3 }));
    fc.assert(
      fc.property(fc.json({ maxDepth: 3, noUnicodeString: false }), fc.nat({ max: 4 }), fc.array(fc.tuple(fc.nat(), unit), { maxLength: 3 }), (json, every, inserts) => {
        let body = every === 0 ? JSON.stringify(json) : allEscaped(json, every);
        for (const [at, u] of inserts) {
          // Between two characters or escapes of the outer string, inside its quotes.
          const starts: number[] = [];
          for (let i = 1; i < body.length; i += body[i] !== "\\" ? 1 : body[i + 1] === "u" ? 6 : 2) starts.push(i);
          const i = starts[at % starts.length];
          body = body.slice(0, i) + u + body.slice(i);
        }
        const r = text(body);
        expect(r.fromBytes, body).toBe(r.fromString);
        if (r.fromString !== "missing") valid++;
      }),
      { numRuns: 2000 },
    );
    expect(valid).toBeGreaterThan(1000); // most bodies are one valid string, read as text both ways
    h.close();
  });
});
