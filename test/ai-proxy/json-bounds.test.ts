// A body made of many tiny JSON values (issue 13, "Hostile input is normal input", "Memory that is
// never given back"). ai-proxy parses every request body and every buffered provider answer into
// a tree, and a wasm VM's memory never shrinks: before max_json_values, a 6 MB body of 3,000,000
// zeros was forwarded and left ai-proxy at 12,288 pages (768 MiB) for good, and one at the 10 MiB
// request cap went past 1 GiB. Now a parse stops at max_json_values (default 500,000): the client
// gets a 400 `request_too_complex` in its API shape, a provider answer past it is unreadable (502).
import { describe, it, expect } from "vitest";
import { HostLoadError } from "../../host/index.js";
import { proxyHost, send, answer } from "./helpers.js";
import { BOMB_SHAPES } from "../json-bombs.js";

const CONFIG = {
  instances: [
    { name: "oa", provider: "openai", api_key: "sk-provider-oa", models: ["gpt-*", "text-embedding-*"] },
    { name: "claude", provider: "anthropic", api_key: "sk-ant-provider", models: ["claude-*"] },
  ],
};

const CAP = 10 * 1024 * 1024; // max_request_body_bytes' default

// The bound on ai-proxy's linear memory after the worst body at the cap: 500,000 values at up to
// ~190 bytes each for the costliest shapes (an object of distinct keys: a 48-byte value, the key
// string, the duplicate-key index and the member stacks; or empty arrays / objects, 96 bytes each
// plus the member stack), about 95 MB, plus the 10 MiB body the filter reads, within the
// allocator's growth step (it doubles the heap when it runs out). These shapes end at 1,360 pages
// here; 2,048 pages is 128 MiB. Before the bound, the zeros body alone took ai-proxy past 1 GiB.
const BOMB_PAGES = 2048;

const SHAPES: Record<string, (bytes: number) => string> = {
  ...BOMB_SHAPES,
  // 64 levels (the depth bound) over and over: wide and deep.
  "nested arrays": (bytes) => "[" + ("[".repeat(60) + "]".repeat(60) + ",").repeat(bytes / 121) + "0]",
};

/** A body of about `bytes` (under the cap) for each API, with `bomb` as an extra member. */
function bodyFor(path: string, bomb: (bytes: number) => string): string {
  const room = CAP - 200;
  if (path === "/v1/embeddings") return `{"model":"text-embedding-3-small","input":${bomb(room)}}`;
  if (path === "/v1/messages") return `{"model":"claude-x","max_tokens":16,"messages":[{"role":"user","content":"hi"}],"x":${bomb(room)}}`;
  return `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"x":${bomb(room)}}`;
}

function errorOf(s: ReturnType<typeof send>, shape: "openai" | "anthropic") {
  const lr = s.getSentLocalResponse();
  expect(lr, "a local reply").toBeTruthy();
  const body = JSON.parse(lr!.body.toString());
  if (shape === "anthropic") {
    expect(body.type).toBe("error");
    expect(body.error.type).toBe("invalid_request_error");
  } else {
    expect(body.error.type).toBe("invalid_request_error");
  }
  return { status: lr!.statusCode, body };
}

describe("ai-proxy: a request body of too many JSON values", () => {
  for (const [name, shape] of Object.entries(SHAPES)) {
    it(`${name} at the request cap: 400 in the client's shape on every path, nothing upstream, memory bounded`, async () => {
      const h = await proxyHost(CONFIG);
      for (const [path, client] of [["/v1/chat/completions", "openai"], ["/v1/messages", "anthropic"], ["/v1/embeddings", "openai"]] as const) {
        const body = bodyFor(path, shape);
        expect(body.length).toBeLessThanOrEqual(CAP);
        expect(body.length).toBeGreaterThan(CAP - 1024 * 1024);
        const s = send(h, path, body);
        const { status, body: err } = errorOf(s, client);
        expect(status).toBe(400);
        if (name === "nested arrays") {
          // Each branch is 61 deep; the whole is far more than max_json_values values.
          expect(err.error.message).toContain("more than 500000 JSON values");
        } else {
          expect(err.error.message).toBe("The request body has more than 500000 JSON values.");
        }
        if (client === "openai") expect(err.error.code).toBe("request_too_complex");
        expect(s.upstream.body.length).toBe(0);
        s.completeHttpContext();
      }
      const pages = h.memoryPages("ai-proxy");
      console.log(`${name}: ai-proxy at ${pages} pages after three bombs`);
      expect(pages).toBeLessThanOrEqual(BOMB_PAGES);
      // Still serving.
      const ok = send(h, "/v1/chat/completions", { model: "gpt-4o", messages: [{ role: "user", content: "hi" }] });
      expect(ok.getSentLocalResponse()).toBeFalsy();
      expect(JSON.parse(ok.upstream.body.toString()).model).toBe("gpt-4o");
      h.close();
    });
  }

  it("nesting past 64 levels is refused before it costs anything", async () => {
    const h = await proxyHost(CONFIG);
    const s = send(h, "/v1/chat/completions", `{"model":"gpt-4o","messages":[],"x":${"[".repeat(CAP / 2 - 100)}${"]".repeat(CAP / 2 - 100)}}`);
    const { status, body } = errorOf(s, "openai");
    expect(status).toBe(400);
    expect(body.error.message).toMatch(/nesting deeper than 64/);
    expect(h.memoryPages("ai-proxy")).toBeLessThanOrEqual(BOMB_PAGES);
    h.close();
  });

  it("max_json_values is the exact bound: a body of that many values passes, one more is refused", async () => {
    const h = await proxyHost({ ...CONFIG, max_json_values: 1000 });
    // The object, model, messages, the message, role and content, x: 7 values, then the zeros.
    const body = (zeros: number) => `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"x":[${Array(zeros).fill(0).join(",")}]}`;
    const ok = send(h, "/v1/chat/completions", body(993));
    expect(ok.getSentLocalResponse()).toBeFalsy();
    expect(JSON.parse(ok.upstream.body.toString()).x).toHaveLength(993);
    const over = send(h, "/v1/chat/completions", body(994));
    const { status, body: err } = errorOf(over, "openai");
    expect(status).toBe(400);
    expect(err.error).toMatchObject({ code: "request_too_complex", message: "The request body has more than 1000 JSON values." });
    const anth = send(h, "/v1/messages", `{"model":"claude-x","max_tokens":16,"messages":[{"role":"user","content":"hi"}],"x":[${Array(1000).fill(0).join(",")}]}`);
    expect(errorOf(anth, "anthropic").body.error.message).toBe("The request body has more than 1000 JSON values.");
    h.close();
  });

  it("max_json_values below 1,000 is refused at configuration", async () => {
    const e = await proxyHost({ ...CONFIG, max_json_values: 10 }).then((g) => { g.close(); return null; }, (err) => err);
    expect(e).toBeInstanceOf(HostLoadError);
    expect((e as HostLoadError).logs.join("\n")).toMatch(/max_json_values/);
  });
});

describe("ai-proxy: large real requests stay under the default bound", () => {
  it("an embeddings request of 300,000 token ids (OpenAI's per-request maximum) is forwarded untouched", async () => {
    const h = await proxyHost(CONFIG);
    const input = Array.from({ length: 300 }, (_, i) => Array.from({ length: 1000 }, (_, j) => (i * 7919 + j * 104729) % 100256));
    const s = send(h, "/v1/embeddings", { model: "text-embedding-3-small", input });
    expect(s.getSentLocalResponse()).toBeFalsy();
    expect(JSON.parse(s.upstream.body.toString()).input).toEqual(input);
    const reply = answer(s, 200, "application/json", [JSON.stringify({
      object: "list", model: "text-embedding-3-small",
      data: input.map((_, i) => ({ object: "embedding", index: i, embedding: [0.1, -0.2] })),
      usage: { prompt_tokens: 300000, total_tokens: 300000 },
    })]);
    expect(JSON.parse(reply).data).toHaveLength(300);
    // An array of numbers costs no value per item (it stays as its bytes): 60 pages here, where a
    // value per token id took 960.
    expect(h.memoryPages("ai-proxy")).toBeLessThanOrEqual(128);
    h.close();
  });

  it("a long agent conversation with many tool schemas is forwarded, to OpenAI and translated to Anthropic", async () => {
    const h = await proxyHost(CONFIG);
    const schema = (i: number) => ({
      type: "object",
      properties: Object.fromEntries(Array.from({ length: 20 }, (_, p) => [`p${p}`, { type: p % 2 ? "string" : "integer", description: `field ${p} of tool ${i}`, enum: p % 5 ? undefined : ["a", "b", "c"] }])),
      required: ["p0", "p1"],
    });
    const tools = Array.from({ length: 128 }, (_, i) => ({ type: "function", function: { name: `tool_${i}`, description: `tool ${i}`, parameters: schema(i) } }));
    const messages: object[] = [{ role: "system", content: "You are an agent." }];
    for (let t = 0; messages.length < 2000; t++) {
      messages.push({ role: "user", content: `step ${t}` });
      messages.push({ role: "assistant", content: null, tool_calls: [{ id: `call_${t}`, type: "function", function: { name: `tool_${t % 128}`, arguments: JSON.stringify({ p0: t, p1: "x" }) } }] });
      messages.push({ role: "tool", tool_call_id: `call_${t}`, content: `result ${t}` });
    }
    for (const model of ["gpt-4o", "claude-x"]) {
      const s = send(h, "/v1/chat/completions", { model, max_tokens: 100, messages, tools });
      expect(s.getSentLocalResponse()).toBeFalsy();
      const up = JSON.parse(s.upstream.body.toString());
      expect(up.tools).toHaveLength(128);
      expect(up.messages.length).toBeGreaterThan(1300);
      s.completeHttpContext();
    }
    h.close();
  });
});

describe("ai-proxy: a provider answer of too many JSON values", () => {
  const zeros = (bytes: number) => "[" + "0,".repeat(bytes / 2) + "0]";

  it("a 200 OpenAI answer padded with ~5,000,000 values: 502 in the client's shape, memory bounded", async () => {
    const h = await proxyHost(CONFIG);
    for (const [path, model, client] of [["/v1/chat/completions", "gpt-4o", "openai"], ["/v1/messages", "gpt-4o", "anthropic"]] as const) {
      const s = send(h, path, { model, max_tokens: 16, messages: [{ role: "user", content: "hi" }] });
      expect(s.getSentLocalResponse()).toBeFalsy();
      const text = answer(s, 200, "application/json", [
        `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6},"x":${zeros(CAP - 400)}}`,
      ]);
      expect(s.downstream.headers?.find(([k]) => k === ":status")?.[1]).toBe("502");
      const body = JSON.parse(text);
      if (client === "anthropic") expect(body).toMatchObject({ type: "error", error: { type: "api_error" } });
      else expect(body.error).toMatchObject({ type: "api_error", code: "bad_upstream_response" });
    }
    const pages = h.memoryPages("ai-proxy");
    console.log(`answer bomb: ai-proxy at ${pages} pages`);
    expect(pages).toBeLessThanOrEqual(BOMB_PAGES);
    h.close();
  });

  it("an Anthropic answer padded with ~5,000,000 values to an Anthropic client: 502", async () => {
    const h = await proxyHost(CONFIG);
    const s = send(h, "/v1/messages", { model: "claude-x", max_tokens: 16, messages: [{ role: "user", content: "hi" }] });
    const text = answer(s, 200, "application/json", [
      `{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","usage":{"input_tokens":5,"output_tokens":1},"x":${zeros(CAP - 400)}}`,
    ]);
    expect(s.downstream.headers?.find(([k]) => k === ":status")?.[1]).toBe("502");
    expect(JSON.parse(text)).toMatchObject({ type: "error", error: { type: "api_error" } });
    expect(h.memoryPages("ai-proxy")).toBeLessThanOrEqual(BOMB_PAGES);
    h.close();
  });
});

describe("ai-proxy: a streamed event of too many JSON values", () => {
  it("is dropped like any unreadable event; the stream goes on and memory stays bounded", async () => {
    const h = await proxyHost(CONFIG);
    const s = send(h, "/v1/chat/completions", { model: "gpt-4o", stream: true, messages: [{ role: "user", content: "hi" }] });
    expect(s.getSentLocalResponse()).toBeFalsy();
    const base = '"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o"';
    const text = answer(s, 200, "text/event-stream", [
      `data: {${base},"choices":[{"index":0,"delta":{"role":"assistant","content":"hello"},"finish_reason":null}]}\n\n`,
      // 6 MiB: under max_stream_event_bytes (8 MiB), so the event is read and meets the value bound.
      `data: {${base},"choices":[],"x":${SHAPES["empty arrays"](6 * 1024 * 1024)}}\n\n`,
      `data: {${base},"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}\n\ndata: [DONE]\n\n`,
    ]);
    expect(text).toContain("hello");
    expect(text).toContain('"finish_reason":"stop"');
    expect(text.trimEnd().endsWith("data: [DONE]")).toBe(true);
    expect(h.memoryPages("ai-proxy")).toBeLessThanOrEqual(BOMB_PAGES);
    h.close();
  });
});

// Arrays of numbers only are kept as their bytes (no value per item): what goes out must be what
// came in, and anything else in an array must still be read (or refused) as before.
describe("ai-proxy: arrays of numbers", () => {
  const GEMINI = { instances: [...CONFIG.instances, { name: "gem", provider: "gemini", api_key: "gm-key", models: ["gemini-*"] }] };

  it("pass through with every number as written, and the others still read", async () => {
    const h = await proxyHost(CONFIG);
    const body = '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"a":[ 1 , -2.5e3,0 ,1E+2, 0.000001 ],"b":[1,"a",2],"c":[1,{"d":[2]}],"e":[[3],[4,5]],"f":[ ]}';
    const s = send(h, "/v1/chat/completions", body);
    expect(s.getSentLocalResponse()).toBeFalsy();
    const up = s.upstream.body.toString();
    expect(up).toContain("-2.5e3");
    expect(up).toContain("1E+2");
    expect(JSON.parse(up)).toMatchObject({ a: [1, -2500, 0, 100, 0.000001], b: [1, "a", 2], c: [1, { d: [2] }], e: [[3], [4, 5]], f: [] });
    h.close();
  });

  for (const bad of ["[1,]", "[01]", "[1 2]", "[-]", "[1.]", "[1e]", "[1,2", "[1,-]"]) {
    it(`${bad} is not JSON: 400 invalid_json`, async () => {
      const h = await proxyHost(CONFIG);
      const s = send(h, "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"x":${bad}}`);
      const { status, body } = errorOf(s, "openai");
      expect(status).toBe(400);
      expect(body.error.code).toBe("invalid_json");
      h.close();
    });
  }

  it("numbers in a tool schema reach Anthropic intact when translated", async () => {
    const h = await proxyHost(CONFIG);
    const parameters = { type: "object", properties: { n: { type: "integer", enum: [1, 2, 30000000000], minimum: -1.5 } } };
    const s = send(h, "/v1/chat/completions", { model: "claude-x", max_tokens: 16, messages: [{ role: "user", content: "hi" }], tools: [{ type: "function", function: { name: "f", parameters } }] });
    expect(s.getSentLocalResponse()).toBeFalsy();
    expect(JSON.parse(s.upstream.body.toString()).tools[0].input_schema).toEqual(parameters);
    h.close();
  });

  it("a Gemini embeddings answer's vectors reach an OpenAI client as sent; token ids to Gemini are refused", async () => {
    const h = await proxyHost(GEMINI);
    const s = send(h, "/v1/embeddings", { model: "gemini-embedding-001", input: ["a", "b"] });
    expect(s.getSentLocalResponse()).toBeFalsy();
    const text = answer(s, 200, "application/json", ['{"embeddings":[{"values":[0.1,-0.25,3e-5]},{"values":[ 1 ,2]}]}']);
    expect(text).toContain("3e-5");
    expect(JSON.parse(text).data.map((d: { embedding: number[] }) => d.embedding)).toEqual([[0.1, -0.25, 3e-5], [1, 2]]);
    const ids = send(h, "/v1/embeddings", { model: "gemini-embedding-001", input: [[1, 2, 3]] });
    expect(errorOf(ids, "openai").status).toBe(400);
    expect(ids.upstream.body.length).toBe(0);
    h.close();
  });
});
