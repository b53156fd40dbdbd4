// The gateway's store of translated Responses (responses-store.ts) through build/ai-proxy.wasm:
// previous_response_id continues a stored conversation for providers without OpenAI's Responses
// API, GET and DELETE /v1/responses/{id} read and delete stored responses; all scoped to the
// consumer, expired by the host's clock, bounded by a ring of max_entries slots in shared data
// and a size per entry, skipped for store: false.
import { describe, it, expect, beforeAll, afterAll, afterEach } from "vitest";
import { Host, HostLoadError } from "../../host/index.js";
import { startMock, type MockServer } from "../../scripts/mocks/index.js";
import { recordedStreams } from "../../scripts/mocks/recorded.js";
import { proxyHost, foldResponsesStream, header, WASM } from "./helpers.js";

const R = "/v1/responses";
const STORE = { max_entries: 4, max_entry_bytes: 4096, ttl_seconds: 60 };
const CONFIG = {
  instances: [
    { name: "vl", provider: "openai-compatible", endpoint: "http://vllm.internal:8000/v1", models: ["mock-model"] },
    { name: "an", provider: "anthropic", api_key: "sk-ant", models: ["claude-sonnet-4-5-20250929"] },
    { name: "ge", provider: "gemini", api_key: "gm-key", models: ["gemini-2.5-flash"] },
    { name: "oa", provider: "openai", api_key: "sk-oa", models: ["gpt-4o"] },
  ],
  responses_store: STORE,
};

type Stream = ReturnType<Host["newStream"]>;
const hosts: Host[] = [];
afterEach(() => {
  for (const h of hosts) expect(h.getLogEntries().filter((e) => /failed: Uncaught|abort/i.test(e.message))).toEqual([]);
});

let now = 1_761_000_000_000n * 1_000_000n;
const clock = () => now;

function request(h: Host, method: string, path: string, body: unknown, consumer?: string): Stream {
  const s = h.newStream();
  if (consumer) s.filterState.set("wasm.sluice.consumer", Buffer.from(consumer));
  s.callOnRequestHeaders({ ":method": method, ":path": path, ":authority": "gw", "content-type": "application/json", authorization: "Bearer client-key" }, body === undefined);
  if (body !== undefined) s.callOnRequestBody(JSON.stringify(body), true);
  return s;
}

function upstream(s: Stream) {
  expect(s.getSentLocalResponse()).toBeNull();
  return JSON.parse(s.upstream.body.toString());
}

function reply(s: Stream, status: number, contentType: string, body: string | Buffer): string {
  s.callOnResponseHeaders({ ":status": String(status), "content-type": contentType }, false);
  s.callOnResponseBody(body, true);
  s.completeHttpContext();
  return s.downstream.body.toString();
}

/** A local reply: its status and JSON body. */
function local(s: Stream): { status: number; body: any } {
  const r = s.getSentLocalResponse();
  expect(r).not.toBeNull();
  expect(s.upstream.headers).toBeNull();
  expect(header(r!.headers, "content-type")).toBe("application/json");
  s.completeHttpContext();
  return { status: r!.statusCode, body: JSON.parse(Buffer.from(r!.body).toString()) };
}

let seq = 0;
const chatAnswer = (message: object, finish = "stop") =>
  JSON.stringify({ id: `chatcmpl-${++seq}`, object: "chat.completion", created: 1761000000, model: "mock-model", choices: [{ index: 0, message: { role: "assistant", ...message }, finish_reason: finish }], usage: { prompt_tokens: 10, completion_tokens: 3, total_tokens: 13 } });

/** One Responses turn answered by the OpenAI-compatible instance; returns the Response and what the provider was sent. */
function turn(h: Host, body: object, answer: object, consumer?: string, finish = "stop") {
  const s = request(h, "POST", R, { model: "mock-model", ...body }, consumer);
  const sent = upstream(s);
  const r = JSON.parse(reply(s, 200, "application/json", chatAnswer(answer, finish)));
  return { r, sent, s };
}

function get(h: Host, id: string, consumer?: string) {
  return local(request(h, "GET", `${R}/${encodeURIComponent(id)}`, undefined, consumer));
}

function notFound(res: { status: number; body: any }, id: string) {
  expect(res.status).toBe(400);
  expect(res.body.error).toEqual({ message: `Previous response with id '${id}' not found.`, type: "invalid_request_error", param: "previous_response_id", code: "previous_response_not_found" });
}

const TOOLS = [{ type: "function", name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } }];

describe("ai-proxy: previous_response_id for translated providers", () => {
  let h: Host;
  beforeAll(async () => { h = await proxyHost(CONFIG, { clock }); hosts.push(h); });

  it("a chain of three turns with a tool call and its output: each turn sends the whole conversation; instructions are not carried over", () => {
    const t1 = turn(h, { instructions: "Be terse.", input: "Weather in Oslo?", tools: TOOLS },
      { content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Oslo\"}" } }] }, undefined, "tool_calls");
    expect(t1.r.id).toMatch(/^resp_chatcmpl-\d+_s\d+$/);
    expect(t1.r.output[0]).toMatchObject({ type: "function_call", call_id: "call_1" });

    const t2 = turn(h, { previous_response_id: t1.r.id, instructions: "Be very terse.", input: [{ type: "function_call_output", call_id: "call_1", output: "4C" }], tools: TOOLS },
      { content: "It is 4C." });
    expect(t2.sent.messages).toEqual([
      { role: "system", content: "Be very terse." },
      { role: "user", content: "Weather in Oslo?" },
      { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Oslo\"}" } }] },
      { role: "tool", tool_call_id: "call_1", content: "4C" },
    ]);
    expect(t2.r.id).not.toBe(t1.r.id);

    const t3 = turn(h, { previous_response_id: t2.r.id, input: "Thanks" }, { content: "You're welcome." });
    expect(t3.sent.messages).toEqual([
      { role: "user", content: "Weather in Oslo?" },
      { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Oslo\"}" } }] },
      { role: "tool", tool_call_id: "call_1", content: "4C" },
      { role: "assistant", content: "It is 4C." },
      { role: "user", content: "Thanks" },
    ]);
    // The request that continues is not refused for its own previous_response_id member.
    expect(t3.sent).not.toHaveProperty("previous_response_id");
  });

  it("a continuation's usage estimate counts the stored conversation the provider read", () => {
    const first = turn(h, { input: "long ".repeat(600) }, { content: "ok" });
    const estimate = (body: object) => {
      const s = request(h, "POST", R, { model: "mock-model", ...body });
      upstream(s);
      // An answer without usage: the record is the gateway's estimate.
      reply(s, 200, "application/json", JSON.stringify({ id: "chatcmpl-x", object: "chat.completion", created: 1, model: "mock-model", choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }] }));
      expect(s.getFilterState("sluice.usage_source")).toBe("estimate");
      return Number(s.getFilterState("sluice.prompt_tokens"));
    };
    const alone = estimate({ input: "Thanks" });
    const continued = estimate({ input: "Thanks", previous_response_id: first.r.id });
    expect(continued - alone).toBeGreaterThan(500);
  });

  it("continues on Anthropic and Gemini in their own formats, and an OpenAI instance continues the gateway's own id translated", () => {
    const t1 = turn(h, { input: "My name is Ada.", instructions: "Remember names." }, { content: "Hello Ada." });
    const an = request(h, "POST", R, { model: "claude-sonnet-4-5-20250929", previous_response_id: t1.r.id, input: "What is my name?" });
    expect(upstream(an)).toMatchObject({
      messages: [{ role: "user", content: [{ type: "text", text: "My name is Ada." }] }, { role: "assistant", content: [{ type: "text", text: "Hello Ada." }] }, { role: "user", content: [{ type: "text", text: "What is my name?" }] }],
    });
    expect(upstream(an).system).toBeUndefined();
    const ge = request(h, "POST", R, { model: "gemini-2.5-flash", previous_response_id: t1.r.id, input: "What is my name?", instructions: "Answer in French." });
    expect(upstream(ge)).toMatchObject({
      systemInstruction: { parts: [{ text: "Answer in French." }] },
      contents: [{ role: "user", parts: [{ text: "My name is Ada." }] }, { role: "model", parts: [{ text: "Hello Ada." }] }, { role: "user", parts: [{ text: "What is my name?" }] }],
    });
    // gpt-4o is an OpenAI instance: an id of the gateway's goes to its chat API with the history...
    const oa = request(h, "POST", R, { model: "gpt-4o", previous_response_id: t1.r.id, input: "And again?" });
    expect(header(oa.upstream.headers, ":path")).toBe("/v1/chat/completions");
    expect(upstream(oa).messages).toHaveLength(3);
    // ...an id it does not have is OpenAI's own: passed to its Responses API as sent.
    const own = request(h, "POST", R, { model: "gpt-4o", previous_response_id: "resp_openai_own", input: "Hi" });
    expect(header(own.upstream.headers, ":path")).toBe("/v1/responses");
    expect(upstream(own).previous_response_id).toBe("resp_openai_own");
  });

  it("an unknown id, another consumer's, an expired one: 400 previous_response_not_found in OpenAI's words, nothing sent", () => {
    const t1 = turn(h, { input: "secret" }, { content: "ok" }, "alice");
    for (const id of ["resp_nope", "resp_x_s999999", t1.r.id.replace(/_s(\d+)$/, "_s9$1")]) notFound(local(request(h, "POST", R, { model: "mock-model", previous_response_id: id, input: "x" }, "alice")), id);
    // Another consumer (and no consumer at all: "anonymous") does not find it.
    notFound(local(request(h, "POST", R, { model: "mock-model", previous_response_id: t1.r.id, input: "x" }, "bob")), t1.r.id);
    notFound(local(request(h, "POST", R, { model: "claude-sonnet-4-5-20250929", previous_response_id: t1.r.id, input: "x" })), t1.r.id);
    expect(get(h, t1.r.id, "bob").status).toBe(404);
    // Its own consumer does, until the TTL (the host's clock) runs out.
    const ok = request(h, "POST", R, { model: "mock-model", previous_response_id: t1.r.id, input: "again" }, "alice");
    expect(upstream(ok).messages.map((m: any) => m.content)).toEqual(["secret", "ok", "again"]);
    ok.completeHttpContext();
    expect(get(h, t1.r.id, "alice").status).toBe(200);
    now += BigInt(STORE.ttl_seconds) * 1_000_000_000n + 1n;
    notFound(local(request(h, "POST", R, { model: "mock-model", previous_response_id: t1.r.id, input: "x" }, "alice")), t1.r.id);
    expect(get(h, t1.r.id, "alice").status).toBe(404);
  });

  it("store: false is not stored: its id names no slot, and continuing from it is a 400", () => {
    const before = [0, 1, 2, 3].map((i) => h.getSharedData(`sluice.ai-proxy.responses.${i}`)?.cas);
    const t = turn(h, { input: "forget me", store: false }, { content: "ok" });
    expect(t.r.id).toMatch(/^resp_chatcmpl-\d+$/);
    expect([0, 1, 2, 3].map((i) => h.getSharedData(`sluice.ai-proxy.responses.${i}`)?.cas)).toEqual(before);
    notFound(local(request(h, "POST", R, { model: "mock-model", previous_response_id: t.r.id, input: "x" })), t.r.id);
    expect(get(h, t.r.id).status).toBe(404);
  });
});

describe("ai-proxy: the response store's bounds", () => {
  it("a ring of max_entries slots: after N+k responses the oldest k are gone, shared data holds N slots and the counter", async () => {
    const h = await proxyHost(CONFIG, { clock });
    hosts.push(h);
    const ids: string[] = [];
    for (let i = 0; i < STORE.max_entries + 3; i++) ids.push(turn(h, { input: `turn ${i}` }, { content: `answer ${i}` }).r.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids.slice(0, 3)) expect(get(h, id).status).toBe(404);
    for (const id of ids.slice(3)) expect(get(h, id).status).toBe(200);
    for (let i = 0; i < STORE.max_entries; i++) {
      const v = h.getSharedData(`sluice.ai-proxy.responses.${i}`);
      expect(v).toBeDefined();
      expect(v!.value.length).toBeLessThanOrEqual(STORE.max_entry_bytes);
    }
    for (let i = STORE.max_entries; i < ids.length + 2; i++) expect(h.getSharedData(`sluice.ai-proxy.responses.${i}`)).toBeUndefined();
    expect(h.getSharedData("sluice.ai-proxy.responses.next")!.value.toString()).toBe(String(ids.length));
    // Many more responses: the store's size stays where it was (no key per response).
    const size = () => [...Array(STORE.max_entries).keys()].reduce((n, i) => n + h.getSharedData(`sluice.ai-proxy.responses.${i}`)!.value.length, 0);
    // Warm up past the collector's first full cycle: the heap doubles once (8 to 16 pages, at about
    // the 40th response with the current module layout) and then stays flat; a leak would keep growing.
    for (let i = 0; i < 100; i++) turn(h, { input: `turn ${i % 10}` }, { content: `answer ${i % 10}` });
    const pages = h.memoryPages("ai-proxy");
    for (let i = 0; i < 200; i++) turn(h, { input: `turn ${i % 10}` }, { content: `answer ${i % 10}` });
    expect(size()).toBeLessThanOrEqual(STORE.max_entries * STORE.max_entry_bytes);
    for (let i = STORE.max_entries; i < 60; i++) expect(h.getSharedData(`sluice.ai-proxy.responses.${i}`)).toBeUndefined();
    expect(h.memoryPages("ai-proxy")).toBe(pages);
  });

  it("a conversation past max_entry_bytes is answered but not stored: continuing from it is a 400", async () => {
    const h = await proxyHost(CONFIG, { clock });
    hosts.push(h);
    const big = turn(h, { input: "x".repeat(STORE.max_entry_bytes) }, { content: "ok" });
    expect(big.r.status).toBe("completed");
    expect(get(h, big.r.id).status).toBe(404);
    notFound(local(request(h, "POST", R, { model: "mock-model", previous_response_id: big.r.id, input: "x" })), big.r.id);
    // A conversation grows turn by turn until it no longer fits.
    let last = turn(h, { input: "a".repeat(1000) }, { content: "ok" }).r.id;
    let turns = 1;
    for (;;) {
      const s = request(h, "POST", R, { model: "mock-model", previous_response_id: last, input: "a".repeat(1000) });
      if (s.getSentLocalResponse()) {
        notFound(local(s), last);
        break;
      }
      upstream(s);
      last = JSON.parse(reply(s, 200, "application/json", chatAnswer({ content: "ok" }))).id;
      turns++;
      expect(turns).toBeLessThan(5);
    }
    // Three turns stored (each entry the whole conversation so far); the fourth answered, not stored.
    expect(turns).toBe(4);
  });

  it("max_entries 0 turns the store off: ids name no slot, GET is a 404, previous_response_id a 400", async () => {
    const h = await proxyHost({ ...CONFIG, responses_store: { max_entries: 0 } }, { clock });
    hosts.push(h);
    const t = turn(h, { input: "hi" }, { content: "ok" });
    expect(t.r.id).toMatch(/^resp_chatcmpl-\d+$/);
    expect(h.getSharedData("sluice.ai-proxy.responses.next")).toBeUndefined();
    expect(get(h, t.r.id).status).toBe(404);
    notFound(local(request(h, "POST", R, { model: "mock-model", previous_response_id: t.r.id, input: "x" })), t.r.id);
  });

  it("refuses a responses_store that is not one", async () => {
    const cases: [unknown, RegExp][] = [
      [{ max_entries: -1 }, /responses_store\.max_entries: must be a whole number from 0/],
      [{ max_entry_bytes: 10 }, /responses_store\.max_entry_bytes: must be a whole number from 1024/],
      [{ ttl_seconds: 0 }, /responses_store\.ttl_seconds: must be a whole number from 1/],
      [{ max_entries: 5, other: 1 }, /responses_store\.other: unknown field/],
      ["on", /responses_store: must be an object/],
    ];
    for (const [bad, message] of cases) {
      const e = await proxyHost({ ...CONFIG, responses_store: bad }).then(() => null, (x) => x as HostLoadError);
      expect(e).toBeInstanceOf(HostLoadError);
      expect(e!.logs.join("\n")).toMatch(message);
    }
  });
});

describe("ai-proxy: GET and DELETE /v1/responses/{id}", () => {
  let h: Host;
  beforeAll(async () => { h = await proxyHost(CONFIG, { clock }); hosts.push(h); });

  it("GET returns the stored Response as the client got it; DELETE deletes it; both are the consumer's own", () => {
    const t = turn(h, { input: "Hi", metadata: { k: "v" }, instructions: "Be kind." }, { content: "Hello!" }, "carol");
    const g = get(h, t.r.id, "carol");
    expect(g.status).toBe(200);
    expect(g.body).toEqual(t.r);
    expect(g.body.instructions).toBe("Be kind.");
    // Someone else's DELETE does not touch it.
    const other = local(request(h, "DELETE", `${R}/${t.r.id}`, undefined, "dave"));
    expect(other.status).toBe(404);
    expect(other.body.error).toMatchObject({ message: `Response with id '${t.r.id}' not found.`, type: "invalid_request_error" });
    const d = local(request(h, "DELETE", `${R}/${t.r.id}`, undefined, "carol"));
    expect(d).toEqual({ status: 200, body: { id: t.r.id, object: "response", deleted: true } });
    expect(get(h, t.r.id, "carol").status).toBe(404);
    expect(local(request(h, "DELETE", `${R}/${t.r.id}`, undefined, "carol")).status).toBe(404);
    notFound(local(request(h, "POST", R, { model: "mock-model", previous_response_id: t.r.id, input: "x" }, "carol")), t.r.id);
  });

  it("another method is a 405 naming GET and DELETE; a path below an id and a stream=true GET are refused", () => {
    const t = turn(h, { input: "Hi" }, { content: "Hello!" });
    const s = request(h, "POST", `${R}/${t.r.id}`, { x: 1 });
    const r = s.getSentLocalResponse()!;
    expect(r.statusCode).toBe(405);
    expect(header(r.headers, "allow")).toBe("GET, DELETE");
    s.completeHttpContext();
    expect(local(request(h, "GET", `${R}/${t.r.id}/input_items`, undefined)).status).toBe(404);
    const st = local(request(h, "GET", `${R}/${t.r.id}?stream=true`, undefined));
    expect(st.status).toBe(400);
    expect(st.body.error.param).toBe("stream");
    expect(get(h, t.r.id).status).toBe(200);
    expect(request(h, "GET", `${R}/${t.r.id}`, undefined).getFilterState("sluice.request_type")).toBe("ai_stored_response");
    // OpenAI's error shape even when an Anthropic header comes along.
    const s2 = h.newStream();
    s2.callOnRequestHeaders({ ":method": "GET", ":path": `${R}/resp_unknown_s1`, ":authority": "gw", "anthropic-version": "2023-06-01" }, true);
    expect(local(s2)).toMatchObject({ status: 404, body: { error: { message: "Response with id 'resp_unknown_s1' not found.", type: "invalid_request_error" } } });
  });
});

describe("ai-proxy: streamed and fallback answers are stored", () => {
  const rec = recordedStreams();

  it("a translated stream's final Response is stored: GET returns response.completed's response; the next turn carries its text", async () => {
    const h = await proxyHost(CONFIG, { clock });
    hosts.push(h);
    const r = rec.anthropic.text;
    const s = request(h, "POST", R, { model: r.model, input: "Say hello", stream: true });
    const out = foldResponsesStream(reply(s, 200, r.contentType, Buffer.from(r.bytes)));
    expect(out.final.status).toBe("completed");
    expect(out.events[0].response.id).toBe(out.final.id);
    const g = get(h, out.final.id);
    expect(g.status).toBe(200);
    expect(g.body).toEqual(out.final);
    const next = request(h, "POST", R, { model: "mock-model", previous_response_id: out.final.id, input: "Again" });
    expect(upstream(next).messages).toEqual([{ role: "user", content: "Say hello" }, { role: "assistant", content: out.final.output[0].content[0].text }, { role: "user", content: "Again" }]);
  });

  it("a stream that fails is not stored", async () => {
    const h = await proxyHost(CONFIG, { clock });
    hosts.push(h);
    const r = rec.anthropic.text;
    const s = request(h, "POST", R, { model: r.model, input: "Hi", stream: true });
    const out = foldResponsesStream(reply(s, 200, r.contentType, Buffer.from(r.bytes).subarray(0, Math.floor(r.bytes.length * 0.6))));
    expect(out.final.status).toBe("failed");
    expect(get(h, out.final.id).status).toBe(404);
  });

  describe("fallback", () => {
    let anthropic: MockServer;
    beforeAll(async () => { anthropic = await startMock("anthropic", { apiKey: "k-b" }); });
    afterAll(async () => { await anthropic.close(); });

    for (const stream of [false, true]) {
      it(`a fallback instance's answer (${stream ? "streamed" : "whole"}) is stored, and a continuation from it falls back with the history`, async () => {
        const h = await Host.create({
          filters: [{
            name: "ai-proxy", wasm: WASM, allowOnHeadersStopIteration: true,
            configuration: {
              instances: [
                { name: "a", provider: "openai-compatible", endpoint: "http://vllm-a.internal/v1", priority: 0 },
                { name: "b", provider: "anthropic", api_key: "k-b", endpoint: "http://anthropic-b.internal", model: "claude-sonnet-4-5", priority: 1 },
              ],
              pools: [{ name: "m", instances: ["a", "b"] }],
              responses_store: STORE,
            },
          }],
          clusters: { b: anthropic.url },
          clock,
        });
        hosts.push(h);
        const fail = (s: Stream) => {
          s.info.responseCodeDetails = "via_upstream";
          s.callOnResponseHeaders({ ":status": "500", "content-type": "application/json" }, false);
          s.callOnResponseBody(JSON.stringify({ error: { message: "boom", type: "server_error" } }), true);
        };
        const s = request(h, "POST", R, { model: "m", input: "Bonjour", stream });
        fail(s);
        await h.settle();
        s.completeHttpContext();
        expect(header(s.downstream.headers, ":status")).toBe("200");
        const body = s.downstream.body.toString();
        const final = stream ? foldResponsesStream(body).final : JSON.parse(body);
        expect(final.status).toBe("completed");
        expect(get(h, final.id).body).toEqual(final);

        const before = anthropic.requests.length;
        const next = request(h, "POST", R, { model: "m", input: "Encore", previous_response_id: final.id });
        expect(upstream(next).messages).toEqual([{ role: "user", content: "Bonjour" }, { role: "assistant", content: final.output[0].content[0].text }, { role: "user", content: "Encore" }]);
        fail(next);
        await h.settle();
        next.completeHttpContext();
        expect(header(next.downstream.headers, ":status")).toBe("200");
        const sent = anthropic.requests.slice(before);
        expect(sent).toHaveLength(1);
        expect(sent[0].body.messages.map((m: any) => m.role)).toEqual(["user", "assistant", "user"]);
      });
    }
  });
});
