// lib/eventstream.ts through a compiled module (test/filters/eventstream), on streams the AWS SDK's own
// codec (@smithy/eventstream-codec) encodes as Bedrock sends them: every message read whatever the
// chunks (cut at every byte, or all at once), payloads and headers as encoded; a broken prelude or
// message CRC, lengths that do not add up, a message past the bound: the stream stops with the reason.
import { describe, it, expect } from "vitest";
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { Host } from "../host/index.js";

const toUtf8 = (b: Uint8Array) => new TextDecoder().decode(b);
const fromUtf8 = (s: string) => new TextEncoder().encode(s);
const codec = new EventStreamCodec(toUtf8, fromUtf8);
const event = (type: string, payload: object) => Buffer.from(codec.encode({
  headers: {
    ":event-type": { type: "string", value: type },
    ":content-type": { type: "string", value: "application/json" },
    ":message-type": { type: "string", value: "event" },
  },
  body: fromUtf8(JSON.stringify(payload)),
}));
const exception = (type: string, message: string) => Buffer.from(codec.encode({
  headers: {
    ":exception-type": { type: "string", value: type },
    ":content-type": { type: "string", value: "application/json" },
    ":message-type": { type: "string", value: "exception" },
    // Headers of the other types, which the reader must step over.
    flag: { type: "boolean", value: true }, n: { type: "integer", value: 7 }, big: { type: "long", value: { bytes: new Uint8Array(8) } as any },
    raw: { type: "binary", value: new Uint8Array([1, 2, 3]) }, at: { type: "timestamp", value: new Date(0) }, id: { type: "uuid", value: "00000000-0000-4000-8000-000000000000" },
  },
  body: fromUtf8(JSON.stringify({ message })),
}));

const STREAM = Buffer.concat([
  event("messageStart", { role: "assistant" }),
  event("contentBlockDelta", { contentBlockIndex: 0, delta: { text: "Hello, " } }),
  event("contentBlockDelta", { contentBlockIndex: 0, delta: { text: "wörld 😀" } }),
  event("messageStop", { stopReason: "end_turn" }),
  event("metadata", { usage: { inputTokens: 12, outputTokens: 4, totalTokens: 16 }, metrics: { latencyMs: 321 } }),
]);

async function read(runs: { bytes: Buffer; cuts: number[]; max?: number }[]) {
  const h = await Host.create({ filters: [{ name: "eventstream", wasm: "build/test/eventstream.wasm", configuration: { runs: runs.map((r) => ({ hex: r.bytes.toString("hex"), cuts: r.cuts, max: r.max ?? 1 << 20 })) } }] });
  const lines = h.getLogs("info").map((l) => l.split("\t"));
  h.close();
  return runs.map((_, i) => ({
    messages: lines.filter((l) => l[0] === String(i) && l[1] === "msg").map((l) => ({ messageType: l[2], eventType: l[3], errorMessage: l[4], payload: l[5] })),
    end: lines.find((l) => l[0] === String(i) && l[1] === "end")!,
  }));
}

const EXPECTED = [
  { messageType: "event", eventType: "messageStart", errorMessage: "", payload: '{"role":"assistant"}' },
  { messageType: "event", eventType: "contentBlockDelta", errorMessage: "", payload: '{"contentBlockIndex":0,"delta":{"text":"Hello, "}}' },
  { messageType: "event", eventType: "contentBlockDelta", errorMessage: "", payload: '{"contentBlockIndex":0,"delta":{"text":"wörld 😀"}}' },
  { messageType: "event", eventType: "messageStop", errorMessage: "", payload: '{"stopReason":"end_turn"}' },
  { messageType: "event", eventType: "metadata", errorMessage: "", payload: '{"usage":{"inputTokens":12,"outputTokens":4,"totalTokens":16},"metrics":{"latencyMs":321}}' },
];

describe("the AWS event stream reader", () => {
  it("reads every message whole, and with the stream cut at any one byte", async () => {
    const runs = [{ bytes: STREAM, cuts: [] as number[] }, ...Array.from({ length: STREAM.length - 1 }, (_, i) => ({ bytes: STREAM, cuts: [i + 1] }))];
    for (const r of await read(runs)) {
      expect(r.messages).toEqual(EXPECTED);
      expect(r.end.slice(2)).toEqual(["", "0"]);
    }
  });

  it("reads a stream fed a byte at a time, and messages of every header type", async () => {
    const bytes = Buffer.concat([STREAM, exception("throttlingException", "Too many requests")]);
    const [r] = await read([{ bytes, cuts: Array.from({ length: bytes.length - 1 }, (_, i) => i + 1) }]);
    expect(r.messages.slice(0, 5)).toEqual(EXPECTED);
    expect(r.messages[5]).toEqual({ messageType: "exception", eventType: "throttlingException", errorMessage: "", payload: '{"message":"Too many requests"}' });
    expect(r.end.slice(2)).toEqual(["", "0"]);
  });

  it("holds an unfinished message and reads nothing more past a broken one", async () => {
    const first = event("messageStart", { role: "assistant" });
    const second = event("contentBlockDelta", { contentBlockIndex: 0, delta: { text: "x" } });
    const badPrelude = Buffer.from(second);
    badPrelude[9] ^= 1;
    const badMessage = Buffer.from(second);
    badMessage[badMessage.length - 6] ^= 1;
    const badLengths = Buffer.from(second);
    badLengths.writeUInt32BE(second.length, 4); // headers as long as the whole message
    badLengths.writeUInt32BE(codecPreludeCrc(badLengths), 8);
    const [unfinished, prelude, message, lengths, tooBig] = await read([
      { bytes: Buffer.concat([first, second.subarray(0, 20)]), cuts: [] },
      { bytes: Buffer.concat([first, badPrelude, first]), cuts: [] },
      { bytes: Buffer.concat([first, badMessage, first]), cuts: [40] },
      { bytes: Buffer.concat([first, badLengths]), cuts: [] },
      { bytes: Buffer.concat([first, second]), cuts: [], max: first.length },
    ]);
    expect(unfinished.messages).toHaveLength(1);
    expect(unfinished.end.slice(2)).toEqual(["", "20"]);
    expect(prelude.messages).toHaveLength(1);
    expect(prelude.end[2]).toBe("an event stream message's prelude CRC does not match");
    expect(message.messages).toHaveLength(1);
    expect(message.end[2]).toBe("an event stream message's CRC does not match");
    expect(lengths.end[2]).toBe("an event stream message's lengths do not add up");
    expect(tooBig.messages).toHaveLength(1);
    expect(tooBig.end[2]).toBe(`an event stream message is larger than ${first.length} bytes`);
  });
});

/** CRC32 of a message's first 8 bytes (its prelude CRC), as the codec computes it. */
function codecPreludeCrc(b: Buffer): number {
  let c = 0xffffffff;
  for (let i = 0; i < 8; i++) {
    c ^= b[i];
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}
