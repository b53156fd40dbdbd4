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
  return {
    h,
    /** The tree's and the tape's dumps of body. */
    read(body: string | Uint8Array): { tree: string; tape: string } {
      h.logs.length = 0;
      const s = h.newStream();
      s.callOnRequestHeaders(HEADERS, false);
      s.callOnRequestBody(body, true);
      s.completeHttpContext();
      const lines = h.getLogs("info");
      const of = (p: string) => (lines.find((l) => l.startsWith(p + "\t")) ?? "missing").slice(p.length + 1);
      return { tree: of("tree"), tape: of("tape") };
    },
  };
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
