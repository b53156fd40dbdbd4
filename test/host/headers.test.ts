import { describe, expect, it } from "vitest";
import { deserializePairs, serializeHeaders, serializePairs } from "../../host/index.js";
import { toHeaderList, replaceValue, byteSize, getFirst } from "../../host/headers.js";

describe("header pair serialization (cpp-host PairsUtil)", () => {
  it("lays out count, sizes, then NUL-terminated keys and values, little-endian", () => {
    const b = Buffer.from(serializePairs([[":path", "/a"], ["x", ""]]));
    expect(b.readUInt32LE(0)).toBe(2);
    expect(b.readUInt32LE(4)).toBe(5);
    expect(b.readUInt32LE(8)).toBe(2);
    expect(b.readUInt32LE(12)).toBe(1);
    expect(b.readUInt32LE(16)).toBe(0);
    expect(b.subarray(20).toString("latin1")).toBe(":path\0/a\0x\0\0");
    expect(b.length).toBe(4 + 2 * 8 + 6 + 3 + 2 + 1);
  });

  it("round-trips, including empty maps and UTF-8", () => {
    const pairs: [string, string][] = [["a", "1"], ["a", "2"], ["ü", "é"]];
    expect(deserializePairs(serializePairs(pairs))).toEqual(pairs);
    expect(deserializePairs(serializePairs([]))).toEqual([]);
  });

  it("yields an empty list for malformed input, as toPairs does", () => {
    const good = Buffer.from(serializePairs([["k", "v"]]));
    expect(deserializePairs(good.subarray(0, good.length - 1))).toEqual([]); // truncated
    expect(deserializePairs(Buffer.concat([good, Buffer.from([0])]))).toEqual([]); // trailing byte
    const noNul = Buffer.from(good);
    noNul[noNul.length - 1] = 0x41;
    expect(deserializePairs(noNul)).toEqual([]);
    expect(deserializePairs(Buffer.from([1, 0]))).toEqual([]); // shorter than the count
    const tooMany = Buffer.alloc(4);
    tooMany.writeUInt32LE(1025);
    expect(deserializePairs(tooMany)).toEqual([]);
  });

  it("serializeHeaders accepts objects (with repeated values) and lower-cases keys", () => {
    const b = serializeHeaders({ ":Method": "GET", "X-A": ["1", "2"] });
    expect(deserializePairs(b)).toEqual([[":method", "GET"], ["x-a", "1"], ["x-a", "2"]]);
  });

  it("header map operations follow Envoy's HeaderMapImpl", () => {
    const m = toHeaderList([["X-A", "1"], ["x-a", "2"], ["b", "3"]]);
    expect(getFirst(m, "X-A")).toBe("1");
    replaceValue(m, "x-a", "9");
    expect(m).toEqual([["x-a", "9"], ["b", "3"]]);
    expect(byteSize(m)).toBe(3 + 1 + 1 + 1);
  });
});
