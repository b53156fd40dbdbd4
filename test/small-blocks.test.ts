// The runtime's small-block lists (assembly/runtime/small-blocks.ts, put into the minimal runtime by
// scripts/asc-runtime.mjs) through a real module, build/test/small-blocks.wasm: blocks handed out
// again hold what their new owner writes, and TLSF takes the listed blocks back before it grows
// memory. (The pages measured with TLSF alone come from the same module built without the lists.)
import { describe, it, expect } from "vitest";
import { Host, type Stream } from "../host/index.js";
import { useSmallBlocks } from "../scripts/asc-runtime.mjs";

const WASM = "build/test/small-blocks.wasm";

async function start() {
  return Host.create({ filters: [{ name: "small-blocks", wasm: WASM, configuration: {} }], logLevel: "warn" });
}

function request(h: Host, headers: Record<string, string>): Record<string, string> {
  const s: Stream = h.newStream();
  s.callOnRequestHeaders({ ":method": "GET", ":path": "/", ":authority": "x", ...headers }, true);
  const sent = Object.fromEntries(s.upstream.headers ?? []);
  s.completeHttpContext();
  return sent;
}

describe("small-block lists in the runtime", () => {
  it("hands freed blocks out again without two owners: every live object keeps its bytes over 400 streams of churn", async () => {
    const h = await start();
    for (let i = 1; i <= 400; i++) {
      // 300 objects of 1 to 600 bytes a stream, one in eight kept (replacing an older one).
      const r = request(h, { "x-churn": `${i * 7919},300,8` });
      expect(r["x-bad"], `stream ${i}`).toBe("0");
    }
    expect(h.getLogEntries().filter((e) => e.level === "error" || e.level === "critical")).toEqual([]);
    // Measured: 32 pages, as with TLSF alone (the garbage of the 16 streams between collections).
    expect(h.memoryPages("small-blocks")).toBeLessThanOrEqual(32);
  });

  it("gives the listed blocks back before memory grows: a body's buffer after a burst of small garbage fits where TLSF alone fitted it", async () => {
    const h = await start();
    // About 200 KB of small objects, none kept. Memory grew for them, so the SDK layer collects
    // when the stream ends, and the freed blocks go onto the lists (up to a quarter of memory).
    request(h, { "x-churn": "17,700,0" });
    const before = h.memoryPages("small-blocks");
    // 440 KB: more than the free memory above the garbage, so TLSF needs the freed run whole.
    // Measured: 8 pages before and after, as with TLSF alone; 16 after when the lists keep their
    // blocks (the module built without the give-back), from 400 KB up.
    request(h, { "x-big": String(440 << 10) });
    expect(before).toBe(8);
    expect(h.memoryPages("small-blocks")).toBe(before);
  });

  it("refuses to build with a runtime whose calls are not where the rename expects them", () => {
    const fake = { libraryFiles: { "rt/tcms": "export function __new(size: usize): usize { return __alloc(size); }" } as Record<string, string> };
    expect(() => useSmallBlocks(fake)).toThrow(/rt\/tcms has not exactly one "__alloc\(OBJECT_OVERHEAD \+ size\)"/);
    expect(fake.libraryFiles["rt/small-blocks"]).toBeUndefined();
  });
});
