// Values that pass through ai-proxy as bytes (assembly/lib/json.ts keeps parsed strings and
// numbers as their source bytes; the Anthropic stream decoder reads text deltas of the documented
// shape without building a JSON tree). What these tests pin down: the fast paths change nothing a
// client or provider can see. Text, escapes, non-ASCII and numbers arrive with the same meaning;
// a delta spaced or ordered differently yields exactly what the canonical one does; the usage
// estimate counts the same characters; bad bytes are never copied through.
import { describe, it, expect, beforeAll, afterEach } from "vitest";
import { Host } from "../../host/index.js";
import { send, upstream, reply, usage, dataOf } from "../providers/helpers.js";

const WASM = "build/ai-proxy.wasm";
const CONFIG = {
  instances: [
    { name: "claude", provider: "anthropic", api_key: "sk-ant-test", model: "claude-sonnet-4-5", models: ["claude*"] },
    { name: "gpt", provider: "openai", api_key: "sk-openai-test", models: ["gpt*"] },
  ],
  // Whole numbers up to 2^53 are read exactly: the bound on max_tokens is raised to show it.
  request_limits: { max_tokens: 9007199254740991 },
};

const hosts: Host[] = [];
async function makeHost() {
  const h = await Host.create({
    filters: [{ name: "ai-proxy", wasm: WASM, configuration: CONFIG, allowOnHeadersStopIteration: true }],
  });
  hosts.push(h);
  return h;
}

afterEach(() => {
  for (const h of hosts) {
    const fatal = h.getLogEntries().filter((e) => /failed: Uncaught|abort/i.test(e.message));
    expect(fatal).toEqual([]);
  }
});

// Strings with every kind of escape, non-ASCII of each UTF-8 length, a surrogate pair written as
// escapes, a lone surrogate, and the characters JSON must escape.
const TRICKY = [
  "plain ascii",
  'quote " backslash \\ slash / tab \t newline \n return \r',
  "café – 日本語 – 🌍",
  "\u0001\u001f control",
  "\u2028\u2029 separators",
  "lone \ud800 surrogate",
  "",
];

function escapedVariant(s: string): string {
  // The same string, written with \u escapes for every non-ASCII unit and / as \/.
  let out = '"';
  for (const ch of s) {
    for (let i = 0; i < ch.length; i++) {
      const c = ch.charCodeAt(i);
      if (c === 0x22) out += '\\"';
      else if (c === 0x5c) out += "\\\\";
      else if (c === 0x2f) out += "\\/";
      else if (c < 0x20 || c > 0x7e) out += "\\u" + c.toString(16).padStart(4, "0");
      else out += ch[i];
    }
  }
  return out + '"';
}

describe("request values pass through as bytes", () => {
  let h: Host;
  beforeAll(async () => {
    h = await makeHost();
  });

  it("an OpenAI client's strings reach Anthropic with the same meaning, escaped or not", () => {
    for (const text of TRICKY.filter((t) => t.length)) {
      for (const literal of [JSON.stringify(text), escapedVariant(text)]) {
        const body = `{"model":"claude-x","messages":[{"role":"system","content":${literal}},{"role":"user","content":${literal}},`
          + `{"role":"assistant","content":[{"type":"text","text":${literal}}]},{"role":"user","content":[{"type":"text","text":${literal}}]}],`
          + `"stop":[${literal}],"user":${literal}}`;
        const s = send(h, body);
        const up = upstream(s);
        expect(up.system).toBe(text);
        expect(up.messages[0].content).toEqual([{ type: "text", text }]);
        expect(up.messages[1].content).toEqual([{ type: "text", text }]);
        expect(up.messages[2].content).toEqual([{ type: "text", text }]);
        expect(up.stop_sequences).toEqual([text]);
        expect(up.metadata.user_id).toBe(text);
        s.completeHttpContext();
      }
    }
  });

  it("numbers keep the exact text the client wrote; whole numbers are read exactly", () => {
    const s = send(h, '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":0.70,"top_p":1e-1,"seed":-9007199254740991,"max_tokens":4096,"n":1}');
    const raw = s.upstream.body.toString();
    expect(raw).toContain('"temperature":0.70');
    expect(raw).toContain('"top_p":1e-1');
    expect(raw).toContain('"seed":-9007199254740991');
    expect(JSON.parse(raw).max_tokens).toBe(4096);
    s.completeHttpContext();
    // Read as numbers: the Anthropic translation checks the ranges it must.
    const t = send(h, '{"model":"claude-x","messages":[{"role":"user","content":"hi"}],"max_tokens":123456789012345}');
    expect(upstream(t).max_tokens).toBe(123456789012345);
    t.completeHttpContext();
    const u = send(h, '{"model":"claude-x","messages":[{"role":"user","content":"hi"}],"temperature":-0.5}');
    expect(u.getSentLocalResponse()?.statusCode).toBe(400);
    expect(JSON.parse(u.getSentLocalResponse()!.body.toString()).error.message).toContain("got -0.5");
  });

  it("a request with invalid UTF-8 in a string is refused (400), never forwarded, raw or replaced", () => {
    const head = Buffer.from('{"model":"gpt-4o","messages":[{"role":"user","content":"a');
    const tail = Buffer.from('b"}]}');
    const s = h.newStream();
    s.callOnRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw", "content-type": "application/json" }, false);
    s.callOnRequestBody(Buffer.concat([head, Buffer.from([0xff, 0xc3]), tail]), true);
    expect(s.getSentLocalResponse()?.statusCode).toBe(400);
    expect(JSON.parse(s.getSentLocalResponse()!.body.toString()).error.code).toBe("invalid_encoding");
    expect(s.upstream.headers).toBeNull();
    s.completeHttpContext();
  });

  it("keys spelled with escapes are the same keys", () => {
    const s = send(h, '{"mod\\u0065l":"claude-x","m\\u0065ssages":[{"r\\u006fle":"user","content":"hi"}]}');
    expect(upstream(s).messages).toEqual([{ role: "user", content: [{ type: "text", text: "hi" }] }]);
    s.completeHttpContext();
  });
});

// --- streams ------------------------------------------------------------------------------------

const ev = (name: string, data: string) => `event: ${name}\ndata: ${data}\n\n`;
const START = ev("message_start", JSON.stringify({ type: "message_start", message: { id: "msg_1", type: "message", role: "assistant", model: "claude-sonnet-4-5", content: [], stop_reason: null, usage: { input_tokens: 12, output_tokens: 1 } } }))
  + ev("content_block_start", '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}');
const STOP = ev("content_block_stop", '{"type":"content_block_stop","index":0}')
  + ev("message_delta", '{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":40}}')
  + ev("message_stop", '{"type":"message_stop"}');

/** A text delta as Anthropic writes it (the decoder's fast path) ... */
const canonical = (literal: string, index = 0) => `{"type":"content_block_delta","index":${index},"delta":{"type":"text_delta","text":${literal}}}`;
/** ... and the same event written any other valid way (the full parser). */
const reordered = (literal: string, index = 0) => `{ "delta" : { "text" : ${literal} , "type" : "text_delta" } , "index" : ${index} , "type" : "content_block_delta" }`;

function streamThrough(h: Host, deltas: string[], opts: { end?: boolean } = {}) {
  const s = send(h, { model: "claude-x", stream: true, messages: [{ role: "user", content: "hi" }] });
  const chunks = [START, ...deltas.map((d) => ev("content_block_delta", d))];
  if (opts.end !== false) chunks.push(STOP);
  const text = reply(s, 200, "text/event-stream", chunks);
  const content = dataOf(text).filter((d) => d !== "[DONE]").map((d) => d.choices?.[0]?.delta?.content ?? "").join("");
  return { text, content, usage: usage(s), chunks: dataOf(text) };
}

/** The stream's chunks without what differs from run to run (created). */
const stable = (chunks: any[]) => chunks.map((c) => (c === "[DONE]" ? c : { ...c, created: 0 }));

describe("Anthropic text deltas: the fast path and the full parser agree", () => {
  let h: Host;
  beforeAll(async () => {
    h = await makeHost();
  });

  it("the same client stream, whichever way the deltas are written", () => {
    const literals = TRICKY.flatMap((t) => [JSON.stringify(t), escapedVariant(t)]);
    const fast = streamThrough(h, literals.map((l, i) => canonical(l, i % 2 ? 0 : 0)));
    const full = streamThrough(h, literals.map((l) => reordered(l)));
    expect(stable(fast.chunks)).toEqual(stable(full.chunks));
    expect(fast.content).toBe(TRICKY.flatMap((t) => [t, t]).join(""));
  });

  it("counts the same characters for the usage estimate when the provider never reports it", () => {
    const literals = TRICKY.map((t) => escapedVariant(t));
    // Cut before message_delta: completion tokens are estimated from the text seen.
    const fast = streamThrough(h, literals.map((l) => canonical(l)), { end: false });
    const full = streamThrough(h, literals.map((l) => reordered(l)), { end: false });
    expect(fast.usage.source).toBe("estimate");
    expect(fast.usage).toEqual(full.usage);
    // And the same as text written plainly (the count is of characters, not bytes or escapes).
    const plain = streamThrough(h, TRICKY.map((t) => canonical(JSON.stringify(t))), { end: false });
    expect(plain.usage).toEqual(fast.usage);
  });

  it("a delta of the canonical shape but with bad content falls back to the full parser's answer", () => {
    const bad = [
      canonical('"bad \\x escape"'),
      canonical('"unterminated'),
      canonical('"ok"') + " ",
      canonical('"ok"').replace("}}", "},\"extra\":1}"),
      '{"type":"content_block_delta","index":01,"delta":{"type":"text_delta","text":"leading zero"}}',
      '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":5}}',
    ];
    const r = streamThrough(h, [canonical('"A"'), ...bad, canonical('"Z"')]);
    // Not JSON (dropped), JSON with trailing space, an extra member (both read), a leading zero
    // (not JSON: dropped), a number (no text).
    expect(r.content).toBe("AokokZ");
    const raw = Buffer.from(r.text);
    expect(raw.includes(Buffer.from("\\x"))).toBe(false);
  });

  it("invalid UTF-8 inside a delta reaches the client as U+FFFD, not raw", () => {
    const s = send(h, { model: "claude-x", stream: true, messages: [{ role: "user", content: "hi" }] });
    const bad = Buffer.concat([Buffer.from(`event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x`), Buffer.from([0xfe]), Buffer.from('y"}}\n\n')]);
    s.callOnResponseHeaders({ ":status": "200", "content-type": "text/event-stream" }, false);
    for (const c of [Buffer.from(START), bad, Buffer.from(STOP)]) s.callOnResponseBody(c, c.toString().includes("message_stop"));
    s.completeHttpContext();
    const out = s.downstream.body;
    expect(out.includes(Buffer.from([0xfe]))).toBe(false);
    expect(dataOf(out.toString()).filter((d) => d !== "[DONE]").map((d) => d.choices?.[0]?.delta?.content ?? "").join("")).toBe("x\ufffdy");
  });
});

describe("keep-alive comments in translated streams", () => {
  let h: Host;
  beforeAll(async () => {
    h = await makeHost();
  });

  it("pass on in place (their text when it is printable ASCII, else a bare colon)", () => {
    const s = send(h, { model: "claude-x", stream: true, messages: [{ role: "user", content: "hi" }] });
    s.callOnResponseHeaders({ ":status": "200", "content-type": "text/event-stream" }, false);
    const hostile = Buffer.concat([Buffer.from(": bad "), Buffer.from([0xff, 0x00]), Buffer.from("\n\n")]);
    for (const c of [Buffer.from(START + ": thinking\n\n"), Buffer.from(ev("content_block_delta", canonical('"A"'))), hostile, Buffer.from(STOP)]) {
      s.callOnResponseBody(c, c.toString().includes("message_stop"));
    }
    s.completeHttpContext();
    const out = s.downstream.body;
    expect(out.includes(Buffer.from([0xff]))).toBe(false);
    const text = out.toString();
    const a = text.indexOf(": thinking\n\n"), b = text.indexOf('"content":"A"'), c = text.indexOf("\n\n:\n\n");
    expect(a).toBeGreaterThanOrEqual(0);
    expect(b).toBeGreaterThan(a);
    expect(c).toBeGreaterThan(b);
    expect(dataOf(text).at(-1)).toBe("[DONE]");
  });

  it("Anthropic's ping event becomes a comment for an OpenAI client, in place", () => {
    const r = streamThrough(h, [canonical('"A"'), '{"type": "ping"}', canonical('"B"')]);
    // streamThrough names every event content_block_delta; the ping is recognised by its type.
    expect(r.text.indexOf(": ping\n\n")).toBeGreaterThan(r.text.indexOf('"content":"A"'));
    expect(r.text.indexOf(": ping\n\n")).toBeLessThan(r.text.indexOf('"content":"B"'));
    expect(r.content).toBe("AB");
  });
});

describe("a translated answer's text, decoded and written again", () => {
  // An answer of one text block is copied as the provider's bytes (Choice.contentValue); several
  // blocks are decoded, joined and written into the OpenAI answer (ByteBuilder.str), four plain
  // units at a time where it can: every character class at every offset of a four-unit group must
  // come out as the same text, either way.
  it("is the provider's text, whatever sits at each offset", async () => {
    const h = await makeHost();
    const classes = ["a", '"', "\\", "\n", "\u0001", "\u001f", " ", "~", "\u007f", "é", "日", "🌍", "\u2028", "\ud800"];
    for (const c of classes) {
      for (let at = 0; at < 9; at++) {
        const text = "abcdefghijk".slice(0, at) + c + "lmnopqrstuvwxyz0123".slice(0, 4 + at);
        for (const blocks of [[text], ["", text], ["x", text]]) {
          const s = send(h, { model: "claude-sonnet-4-5", messages: [{ role: "user", content: "hi" }] });
          upstream(s);
          const body = reply(s, 200, "application/json", [JSON.stringify({
            id: "msg_1", type: "message", role: "assistant", model: "claude-sonnet-4-5",
            content: blocks.map((t) => ({ type: "text", text: t })), stop_reason: "end_turn", stop_sequence: null,
            usage: { input_tokens: 3, output_tokens: 5 },
          })]);
          expect(JSON.parse(body).choices[0].message.content, JSON.stringify(blocks)).toBe(blocks.join(""));
        }
        // The provider's text written with \u escapes for every non-ASCII unit, copied as it came.
        const s = send(h, { model: "claude-sonnet-4-5", messages: [{ role: "user", content: "hi" }] });
        upstream(s);
        const body = reply(s, 200, "application/json", ['{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":' + escapedVariant(text) + '}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":5}}']);
        expect(JSON.parse(body).choices[0].message.content, escapedVariant(text)).toBe(text);
      }
    }
  });
});
