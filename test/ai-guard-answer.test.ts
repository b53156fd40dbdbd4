// ai-guard's answer side through build/ai-guard.wasm: per-direction actions, whole answers and
// streams of Chat Completions, Anthropic Messages, OpenAI Responses and Gemini (block, mask,
// mask_and_restore), stored Responses fetched again, the
// hold-back window, stream endings in the client's format, fail-closed bounds, filter state and
// metrics, and the configuration's errors.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import fc from "fast-check";
import { HostLoadError, type Host } from "../host/index.js";
import { guard, send } from "./ai-guard-helpers.js";
import { exchange, events, streamedText, streamedArgs, chatSse, messagesSse, responsesSse, geminiSse, type Api } from "./ai-guard-answer-helpers.js";

const CONFIG = {
  detectors: {
    email: { request: "mask_and_restore", response: "mask" },
    card: { request: "block", response: "block" },
    ip: { response: "mask" },
    ssn: "mask",
  },
  keywords: [{ name: "codename", words: ["project falcon"], action: { response: "block" } }],
};

const chatAnswer = (content: string, args?: string) => ({
  id: "chatcmpl-1", object: "chat.completion", created: 1700000000, model: "gpt-4o",
  choices: [{ index: 0, message: { role: "assistant", content, ...(args ? { tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: args } }] } : {}) }, finish_reason: "stop" }],
  usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 },
});
const messagesAnswer = (text: string, input?: object) => ({
  id: "msg_1", type: "message", role: "assistant", model: "claude",
  content: [{ type: "text", text }, ...(input ? [{ type: "tool_use", id: "t1", name: "f", input }] : [])],
  stop_reason: "end_turn", stop_sequence: null, usage: { input_tokens: 5, output_tokens: 7 },
});

describe("ai-guard answers: whole", () => {
  let h: Host;
  beforeAll(async () => { h = await guard(CONFIG); });
  afterAll(() => h.close());

  it("Chat: restores mask_and_restore placeholders, masks answer findings, drops content-length", () => {
    const r = exchange(h, "chat", "mail jane@corp.example please", chatAnswer("Sent to <EMAIL_1>; cc bob@other.example from 10.0.0.7.", '{"to":"<EMAIL_1>"}'));
    expect(r.upstream.messages[0].content).toBe("mail <EMAIL_1> please");
    const a = JSON.parse(r.body);
    expect(a.choices[0].message.content).toBe("Sent to jane@corp.example; cc <EMAIL_2> from <IP_1>.");
    expect(a.choices[0].message.tool_calls[0].function.arguments).toBe('{"to":"jane@corp.example"}');
    expect(a.usage.total_tokens).toBe(12);
    expect(r.headers!.find(([k]) => k === "content-length")).toBeUndefined();
    expect(r.verdict).toBe("mask");
    expect(r.categories).toBe("email,ip");
  });

  it("Chat: a blocked answer becomes finish_reason content_filter with null content, usage kept", () => {
    const r = exchange(h, "chat", "hi", chatAnswer("your card is 4111 1111 1111 1111"));
    const a = JSON.parse(r.body);
    expect(a.choices).toEqual([{ index: 0, message: { role: "assistant", content: null, refusal: null }, logprobs: null, finish_reason: "content_filter" }]);
    expect(a.usage.completion_tokens).toBe(7);
    expect(a.id).toBe("chatcmpl-1");
    expect(r.body).not.toContain("4111");
    expect(r.verdict).toBe("block");
    expect(r.categories).toBe("card");
  });

  it("Messages: restores and masks in text blocks and tool_use input; blocks with stop_reason refusal", () => {
    const r = exchange(h, "messages", "I am jane@corp.example", messagesAnswer("Hello <EMAIL_1>, ssn kept 123-45-6789", { to: "<EMAIL_1>", n: [1, "ip 192.168.1.1"] }));
    const a = JSON.parse(r.body);
    expect(a.content[0].text).toBe("Hello jane@corp.example, ssn kept 123-45-6789"); // ssn: request only
    expect(a.content[1].input).toEqual({ to: "jane@corp.example", n: [1, "ip <IP_1>"] });
    const b = exchange(h, "messages", "hi", messagesAnswer("about Project Falcon"));
    expect(JSON.parse(b.body)).toEqual({ id: "msg_1", type: "message", role: "assistant", model: "claude", content: [], stop_reason: "refusal", stop_sequence: null, usage: { input_tokens: 5, output_tokens: 7 } });
    expect(b.verdict).toBe("block");
    expect(b.categories).toBe("codename");
  });

  it("a placeholder the model did not echo exactly passes as it is; an answer with nothing found is untouched", () => {
    const r = exchange(h, "chat", "jane@corp.example", chatAnswer("<EMAIL_9> <email_1> <EMAIL_1"));
    expect(JSON.parse(r.body).choices[0].message.content).toBe("<EMAIL_9> <email_1> <EMAIL_1");
    const raw = JSON.stringify(chatAnswer("nothing here"));
    const c = exchange(h, "chat", "hello", chatAnswer("nothing here"));
    expect(c.body).toBe(raw);
    expect(c.verdict).toBe("allow");
  });

  it("error answers pass as they came", () => {
    const err = { error: { message: "bad 4111 1111 1111 1111", type: "invalid_request_error" } };
    const r = exchange(h, "chat", "hi", err, [], 400);
    expect(JSON.parse(r.body)).toEqual(err);
  });
});

describe("ai-guard answers: bounds fail closed", () => {
  it("a whole answer over response.max_body_bytes is withheld with 502 in the client's shape", async () => {
    const h = await guard({ ...CONFIG, response: { max_body_bytes: 1024 } });
    const r = exchange(h, "chat", "hi", chatAnswer("x".repeat(2000)), [700]);
    expect(r.local!.statusCode).toBe(502);
    expect(r.local!.statusDetails).toBe("sluice_guard_answer_too_large");
    expect(JSON.parse(r.local!.body.toString()).error.code).toBe("answer_unchecked");
    const m = exchange(h, "messages", "hi", messagesAnswer("x".repeat(2000)));
    expect(JSON.parse(m.local!.body.toString()).type).toBe("error");
    h.close();
  });

  it("a stream event over response.max_body_bytes ends the stream as blocked", async () => {
    const h = await guard({ ...CONFIG, response: { max_body_bytes: 1024 } });
    const r = exchange(h, "chat", "hi", chatSse(["a".repeat(3000)]));
    const evs = events(r.body);
    expect(evs.at(-1)!.data).toBe("[DONE]");
    expect(evs.at(-2)!.data.choices[0].finish_reason).toBe("content_filter");
    expect(r.body).not.toContain("aaaa");
    h.close();
  });
});

const APIS: Api[] = ["chat", "messages"];
const sse = (api: Api, deltas: string[], extra?: string[]) => (api === "chat" ? chatSse(deltas, { args: extra }) : messagesSse(deltas, { json: extra }));

describe("ai-guard answers: streams", () => {
  let h: Host;
  beforeAll(async () => { h = await guard(CONFIG); });
  afterAll(() => h.close());

  for (const api of APIS) {
    it(`${api}: masks a value split across deltas and chunks, restores placeholders split anywhere`, () => {
      const deltas = ["Wrote to <EMA", "IL_1> and b", "ob@oth", "er.example", " from 10.0", ".0.7 done"];
      const r = exchange(h, api, "to jane@corp.example", sse(api, deltas), [37, 200, 333]);
      expect(streamedText(api, r.body)).toBe("Wrote to jane@corp.example and <EMAIL_2> from <IP_1> done");
      expect(r.verdict).toBe("mask");
    });

    it(`${api}: tool call arguments are checked as JSON text (an original put back is escaped)`, async () => {
      const h2 = await guard({ custom: [{ name: "quote", regex: 'Q"[a-z]+"', action: { request: "mask_and_restore" } }] });
      const r = exchange(h2, api, 'say Q"abc" now', sse(api, ["ok"], ['{"a":"<QU', 'OTE_1>"}']));
      expect(JSON.parse(streamedArgs(api, r.body))).toEqual({ a: 'Q"abc"' });
      h2.close();
    });

    it(`${api}: a block ends the stream in the client's format and drops the rest`, () => {
      const r = exchange(h, api, "hi", sse(api, ["Sure: 4111 1111", " 1111 1111 is", " the card", " and more text"]));
      expect(r.body).not.toContain("4111");
      expect(r.body).not.toContain("more text");
      const evs = events(r.body);
      if (api === "chat") {
        expect(evs.at(-2)!.data.choices[0]).toEqual({ index: 0, delta: {}, finish_reason: "content_filter" });
        expect(evs.at(-1)!.data).toBe("[DONE]");
      } else {
        expect(evs.slice(-3).map((e) => e.event)).toEqual(["content_block_stop", "message_delta", "message_stop"]);
        expect(evs.at(-2)!.data.delta.stop_reason).toBe("refusal");
      }
      expect(r.verdict).toBe("block");
      expect(r.categories).toBe("card");
    });

    it(`${api}: text is released within the window, not held to the end`, () => {
      // 40 deltas of 10 characters: with a 256-unit window the first ones go out before the end.
      const deltas = Array.from({ length: 40 }, (_, i) => `chunk ${String(i).padStart(3, "0")} `);
      const body = sse(api, deltas);
      const r = exchange(h, api, "hi", body);
      const evs = events(r.body).filter((e) => (api === "chat" ? e.data?.choices?.[0]?.delta?.content : e.data?.delta?.text));
      expect(streamedText(api, r.body)).toBe(deltas.join(""));
      // Released text rides the deltas as they come: most delta events carry text.
      expect(evs.length).toBeGreaterThan(10);
    });
  }

  it("chat: refusal deltas are a text of their own; Messages: text in a content_block_start counts", () => {
    const head = { id: "c", object: "chat.completion.chunk", created: 1, model: "m" };
    const ev = (delta: object, finish: string | null = null) => `data: ${JSON.stringify({ ...head, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    const r = exchange(h, "chat", "hi", ev({ refusal: "I cannot mail bob@" }) + ev({ refusal: "x.example, sorry" }) + ev({}, "stop") + "data: [DONE]\n\n");
    const refusal = events(r.body).map((e) => e.data?.choices?.[0]?.delta?.refusal ?? "").join("");
    expect(refusal).toBe("I cannot mail <EMAIL_1>, sorry");
    const start = `event: content_block_start\ndata: ${JSON.stringify({ type: "content_block_start", index: 0, content_block: { type: "text", text: "card 4111 1111 1111 1111" } })}\n\n`;
    const m = exchange(h, "messages", "hi", start + `event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n`);
    expect(m.body).not.toContain("4111");
    expect(m.verdict).toBe("block");
  });

  it("a stream naming ever new choice indexes is ended as blocked past 1,024 texts (bounded memory)", () => {
    const head = { id: "c", object: "chat.completion.chunk", created: 1, model: "m" };
    let body = "";
    for (let i = 0; i < 1500; i++) body += `data: ${JSON.stringify({ ...head, choices: [{ index: i, delta: { content: "hello" }, finish_reason: null }] })}\n\n`;
    const r = exchange(h, "chat", "hi", body + "data: [DONE]\n\n");
    const evs = events(r.body);
    expect(evs.at(-1)!.data).toBe("[DONE]");
    expect(evs.at(-2)!.data.choices[0].finish_reason).toBe("content_filter");
    expect(r.verdict).toBe("block");
  });

  it("a release point never splits a surrogate pair: every event's text stays valid UTF-8", async () => {
    const h2 = await guard({ detectors: { ssn: { response: "mask" } } }); // an 11-character window
    const text = "x".repeat(11) + "😀" + "y".repeat(10) + " and Grüße ✓ 123-45-6789 😀";
    const r = exchange(h2, "chat", "hi", chatSse([text.slice(0, 23), text.slice(23)]), [7, 150, 151, 152]);
    expect(r.body).not.toMatch(/\\ud[89ab]/i);
    expect(streamedText("chat", r.body)).toBe(text.replace("123-45-6789", "<SSN_1>"));
    h2.close();
  });

  it("a custom pattern that runs out of max_regex_steps on the answer ends it as blocked (fail closed)", async () => {
    const h2 = await guard({ custom: [{ name: "slow", regex: "(a|aa)*b", action: { response: "mask" } }], max_regex_steps: 1000 });
    const r = exchange(h2, "chat", "hi", chatSse(["a".repeat(60), "a".repeat(60), "c"]));
    expect(events(r.body).at(-2)!.data.choices[0].finish_reason).toBe("content_filter");
    expect(r.verdict).toBe("block");
    h2.close();
  });

  it("without answer actions or restores, a stream passes byte for byte", async () => {
    const h2 = await guard({ detectors: { email: "mask" } });
    const body = chatSse(["a@b.io is ", "fine"]);
    const r = exchange(h2, "chat", "hello", body, [50]);
    expect(r.body).toBe(body);
    h2.close();
  });

  it("records answer metrics per detector and verdict", () => {
    const before = (n: string) => h.getMetric(n)?.value ?? 0n;
    const ip = before("sluice.guard_answer_detections;detector=ip;action=mask");
    const masked = before("sluice.guard_answers;verdict=mask");
    exchange(h, "chat", "hi", chatSse(["at 10.1.1.1 ok"]));
    expect(h.getMetric("sluice.guard_answer_detections;detector=ip;action=mask")!.value).toBe(ip + 1n);
    expect(h.getMetric("sluice.guard_answers;verdict=mask")!.value).toBe(masked + 1n);
  });
});

describe("ai-guard answers: mask_and_restore round trip at every byte boundary (property)", () => {
  let h: Host;
  beforeAll(async () => { h = await guard({ detectors: { email: "mask_and_restore", phone: "mask_and_restore" } }); });
  afterAll(() => h.close());

  for (const api of APIS) {
    it(`${api}: a stream cut into deltas and chunks anywhere restores exactly the originals`, () => {
      fc.assert(
        fc.property(
          fc.array(fc.string({ maxLength: 12 }).map((s) => s.replace(/[<>@+]/g, "")), { minLength: 1, maxLength: 6 }),
          fc.array(fc.nat(), { maxLength: 6 }),
          fc.array(fc.nat(), { maxLength: 8 }),
          (words, deltaCuts, byteCuts) => {
            const text = `${words.join(" ")} <EMAIL_1> ${words[0]} <PHONE_1> <EMAIL_2>.`;
            const want = `${words.join(" ")} ann@corp.example ${words[0]} +44 20 7946 0958 bo@x.org.`;
            const cuts = [...new Set(deltaCuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
            const deltas: string[] = [];
            let at = 0;
            for (const c of [...cuts, text.length]) { deltas.push(text.slice(at, c)); at = c; }
            const body = sse(api, deltas);
            const r = exchange(h, api, "ann@corp.example called +44 20 7946 0958 and bo@x.org", body, byteCuts.map((c) => c % body.length).sort((a, b) => a - b));
            return streamedText(api, r.body) === want;
          },
        ),
        { numRuns: 150 },
      );
    });
  }

  for (const api of APIS) {
    it(`${api}: every single byte boundary of one stream`, () => {
      const body = sse(api, ["Mail <EM", "AIL_1> or call <PHONE_1>", "."]);
      for (let c = 1; c < body.length; c++) {
        const r = exchange(h, api, "ann@corp.example +44 20 7946 0958", body, [c]);
        expect(streamedText(api, r.body)).toBe("Mail ann@corp.example or call +44 20 7946 0958.");
      }
    });
  }
});

describe("ai-guard answers: configuration", () => {
  const bad: [string, object, string][] = [
    ["mask_and_restore on the answer", { detectors: { email: { response: "mask_and_restore" } } }, "ai-guard.detectors.email.response"],
    ["an unknown direction", { detectors: { email: { answer: "mask" } } }, "ai-guard.detectors.email"],
    ["a custom pattern's bad direction action", { custom: [{ name: "t", regex: "T-[0-9]+", action: { response: "nope" } }] }, "ai-guard.custom[0].action.response"],
    ["hold_back_bytes out of range", { response: { hold_back_bytes: 10 } }, "hold_back_bytes"],
    ["an unknown response field", { response: { window: 1 } }, "ai-guard.response"],
  ];
  for (const [name, cfg, path] of bad) {
    it(`refuses ${name}`, async () => {
      const err = await guard(cfg).then((h) => { h.close(); return null; }, (e) => e);
      expect(err).toBeInstanceOf(HostLoadError);
      expect((err as HostLoadError).logs.join("\n")).toContain(path);
    });
  }
});

const responsesAnswer = (text: string, args?: string) => ({
  id: "resp_1", object: "response", created_at: 1700000000, status: "completed", model: "gpt-4o",
  output: [
    { id: "msg_1", type: "message", status: "completed", role: "assistant", content: [{ type: "output_text", text, annotations: [] }] },
    ...(args ? [{ id: "fc_1", type: "function_call", status: "completed", call_id: "c1", name: "f", arguments: args }] : []),
  ],
  usage: { input_tokens: 5, output_tokens: 7, total_tokens: 12 },
});
const geminiAnswer = (text: string, args?: object) => ({
  candidates: [{ content: { role: "model", parts: [{ text }, ...(args ? [{ functionCall: { name: "f", args } }] : [])] }, finishReason: "STOP", index: 0 }],
  usageMetadata: { promptTokenCount: 5, candidatesTokenCount: 7, totalTokenCount: 12 }, modelVersion: "gemini-2.5-flash",
});

describe("ai-guard answers: OpenAI Responses and Gemini", () => {
  let h: Host;
  beforeAll(async () => { h = await guard(CONFIG); });
  afterAll(() => h.close());

  it("Responses whole: restores and masks output_text and function_call arguments; a block is status incomplete, reason content_filter", () => {
    const r = exchange(h, "responses", "I am jane@corp.example", responsesAnswer("Hi <EMAIL_1> from 10.0.0.7", '{"to":"<EMAIL_1>"}'));
    const a = JSON.parse(r.body);
    expect(a.output[0].content[0].text).toBe("Hi jane@corp.example from <IP_1>");
    expect(a.output[1].arguments).toBe('{"to":"jane@corp.example"}');
    const b = exchange(h, "responses", "hi", responsesAnswer("card 4111 1111 1111 1111"));
    expect(JSON.parse(b.body)).toEqual({ id: "resp_1", object: "response", created_at: 1700000000, status: "incomplete", error: null, incomplete_details: { reason: "content_filter" }, model: "gpt-4o", output: [], usage: { input_tokens: 5, output_tokens: 7, total_tokens: 12 } });
  });

  it("Responses: a stored response fetched again (GET /v1/responses/{id}) is checked like the first answer", () => {
    const s = h.newStream();
    s.callOnRequestHeaders({ ":method": "GET", ":path": "/v1/responses/resp_1", ":authority": "gw" }, true);
    const body = Buffer.from(JSON.stringify(responsesAnswer("card 4111 1111 1111 1111")));
    s.callOnResponseHeaders({ ":status": "200", "content-type": "application/json", "content-length": String(body.length) }, false);
    s.callOnResponseBody(body, true);
    expect(JSON.parse(s.downstream.body.toString()).incomplete_details).toEqual({ reason: "content_filter" });
    expect(s.getFilterState("sluice.guard_response_verdict")).toBe("block");
  });

  it("Responses stream: deltas, the .done events and response.completed all carry the same checked text", () => {
    const deltas = ["Hi <EMA", "IL_1>, ping 10.0", ".0.7 ok"];
    const r = exchange(h, "responses", "I am jane@corp.example", responsesSse(deltas, { args: ['{"to":"<EM', 'AIL_1>"}'] }), [90, 400, 777]);
    const want = "Hi jane@corp.example, ping <IP_1> ok";
    expect(streamedText("responses", r.body)).toBe(want);
    expect(JSON.parse(streamedArgs("responses", r.body))).toEqual({ to: "jane@corp.example" });
    const evs = events(r.body);
    const by = (t: string) => evs.filter((e) => e.data.type === t).map((e) => e.data);
    expect(by("response.output_text.done")[0].text).toBe(want);
    expect(by("response.content_part.done")[0].part.text).toBe(want);
    expect(by("response.output_item.done")[0].item.content[0].text).toBe(want);
    expect(by("response.function_call_arguments.done")[0].arguments).toBe('{"to":"jane@corp.example"}');
    const done = by("response.completed")[0].response;
    expect(done.output[0].content[0].text).toBe(want);
    expect(done.output[1].arguments).toBe('{"to":"jane@corp.example"}');
    expect(r.body).not.toContain("10.0.0.7");
  });

  it("Responses stream: a block ends with response.incomplete (content_filter) and nothing after", () => {
    const r = exchange(h, "responses", "hi", responsesSse(["card 4111 1111 ", "1111 1111 ", "is yours", " and more"]));
    const evs = events(r.body);
    expect(evs.at(-1)!.event).toBe("response.incomplete");
    expect(evs.at(-1)!.data.response).toMatchObject({ id: "resp_1", status: "incomplete", incomplete_details: { reason: "content_filter" }, output: [] });
    expect(evs.at(-1)!.data.sequence_number).toBeGreaterThan(evs.at(-2)!.data.sequence_number);
    expect(r.body).not.toContain("4111");
    expect(r.body).not.toContain("and more");
  });

  it("Gemini whole: restores, masks text and functionCall args; a block is finishReason SAFETY", () => {
    const r = exchange(h, "gemini", "I am jane@corp.example", geminiAnswer("Hi <EMAIL_1> at 10.0.0.7", { to: "<EMAIL_1>" }));
    const a = JSON.parse(r.body);
    expect(a.candidates[0].content.parts[0].text).toBe("Hi jane@corp.example at <IP_1>");
    expect(a.candidates[0].content.parts[1].functionCall.args).toEqual({ to: "jane@corp.example" });
    const b = exchange(h, "gemini", "hi", geminiAnswer("the Project Falcon plan"));
    expect(JSON.parse(b.body)).toEqual({ candidates: [{ content: { role: "model", parts: [] }, finishReason: "SAFETY", index: 0 }], usageMetadata: { promptTokenCount: 5, candidatesTokenCount: 7, totalTokenCount: 12 }, modelVersion: "gemini-2.5-flash" });
  });

  it("Gemini alt=sse stream: restored and masked across events; a block ends with finishReason SAFETY", () => {
    const r = exchange(h, "gemini", "I am jane@corp.example", geminiSse(["Hi <EMA", "IL_1> at 10.0", ".0.7 ok"]), [30, 111]);
    expect(streamedText("gemini", r.body)).toBe("Hi jane@corp.example at <IP_1> ok");
    const b = exchange(h, "gemini", "hi", geminiSse(["about project ", "falcon today", " more"]));
    const evs = events(b.body);
    expect(evs.at(-1)!.data.candidates[0]).toEqual({ content: { role: "model", parts: [] }, finishReason: "SAFETY", index: 0 });
    expect(b.body.toLowerCase()).not.toContain("falcon");
  });

  it("Gemini JSON-array stream (no alt=sse): elements checked as they come, cut anywhere; a block closes the array", () => {
    const texts = ["Hi <EMA", "IL_1> at 10.0", ".0.7 ok, and a long tail of text ".repeat(12)];
    const want = texts.join("").replace("<EMAIL_1>", "jane@corp.example").replace("10.0.0.7", "<IP_1>");
    const els = texts.map((t, i) => ({ candidates: [{ content: { role: "model", parts: [{ text: t }] }, index: 0, ...(i === 2 ? { finishReason: "STOP" } : {}) }] }));
    for (const cuts of [[], [1, 2, 50, 51, 52, 200], Array.from({ length: 60 }, (_, i) => i * 13)]) {
      const r = arrayStream(h, "I am jane@corp.example", "[" + els.map((e) => JSON.stringify(e)).join(",\r\n") + "]", cuts);
      const out = JSON.parse(r.body);
      expect(out.map((e: any) => e.candidates[0].content.parts[0].text).join("")).toBe(want);
      if (r.chunks > 0) expect(r.firstOut).toBeLessThan(r.chunks); // something went out before the last chunk
    }
    const b = arrayStream(h, "hi", JSON.stringify([{ candidates: [{ content: { parts: [{ text: "about project " }] }, index: 0 }] }, { candidates: [{ content: { parts: [{ text: "falcon now" }] }, index: 0 }] }, { candidates: [{ content: { parts: [{ text: "more" }] }, index: 0, finishReason: "STOP" }] }]), [10, 90]);
    const arr = JSON.parse(b.body);
    expect(arr.at(-1).candidates[0]).toEqual({ content: { role: "model", parts: [] }, finishReason: "SAFETY", index: 0 });
    expect(b.body.toLowerCase()).not.toContain("falcon");
  });

  it("random Gemini JSON-array streams, cut anywhere, never trap the filter; a well-formed one stays a JSON array", () => {
    const el = fc.string({ maxLength: 30 }).map((t) => JSON.stringify({ candidates: [{ content: { parts: [{ text: t + " 4111 1111 1111 1111".slice(0, t.length % 3 ? 0 : 20) }] }, index: 0 }] }));
    fc.assert(
      fc.property(fc.array(el, { maxLength: 8 }), fc.constantFrom("]", "", "x", "{", "\"", ",{\"a\":\"}\"}]"), fc.array(fc.nat(), { maxLength: 6 }), (els, junk, cuts) => {
        const body = "[" + els.join(",") + junk;
        const r = arrayStream(h, "hi", body, cuts.map((c) => c % (body.length + 1)));
        if (junk === "]") expect(Array.isArray(JSON.parse(r.body))).toBe(true);
        return true;
      }),
      { numRuns: 200 },
    );
  });
});

/** A Gemini streamGenerateContent answer without alt=sse: one JSON array, cut at the given offsets. */
function arrayStream(h: Host, prompt: string, answer: string, cuts: number[]) {
  const r = send(h, "/v1beta/models/gemini-2.5-flash:streamGenerateContent", { contents: [{ role: "user", parts: [{ text: prompt }] }] });
  const s = r.s;
  s.callOnResponseHeaders({ ":status": "200", "content-type": "application/json" }, false);
  const bytes = Buffer.from(answer);
  const points = [...new Set(cuts.filter((c) => c > 0 && c < bytes.length)), bytes.length].sort((a, b) => a - b);
  let at = 0;
  let firstOut = -1;
  points.forEach((c, i) => {
    s.callOnResponseBody(bytes.subarray(at, c), c === bytes.length);
    if (firstOut < 0 && s.downstream.body.length) firstOut = i;
    at = c;
  });
  return { body: s.downstream.body.toString(), firstOut, chunks: points.length - 1 };
}

describe("ai-guard answers: hostile streams", () => {
  it("random events, cut anywhere, never trap the filter; every stream it ends is ended once", async () => {
    const h = await guard(CONFIG);
    const apis: Api[] = ["chat", "messages", "responses", "gemini"];
    const piece = fc.oneof(
      fc.constantFrom("data: [DONE]\n\n", ": ping\n\n", "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", "data: {\"choices\":null}\n\n", "data: {\"candidates\":[{\"index\":1e308}]}\n\n"),
      fc.string({ maxLength: 40 }).map((t) => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: t } }] })}\n\n`),
      fc.string({ maxLength: 40 }).map((t) => `event: content_block_delta\ndata: ${JSON.stringify({ type: "content_block_delta", index: 99999999, delta: { type: "text_delta", text: t } })}\n\n`),
      fc.string({ maxLength: 40 }).map((t) => `data: ${JSON.stringify({ type: "response.output_text.delta", output_index: -5, content_index: 7000, delta: t })}\n\n`),
      fc.constantFrom("4111 1111 1111 1111", "<EMAIL_1>", "a@b.co", "\r", "\n", "data: {", "}}]", "\\ud800"),
    );
    fc.assert(
      fc.property(fc.constantFrom(...apis), fc.array(piece, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 5 }), (api, parts, cuts) => {
        const body = parts.join("");
        const r = exchange(h, api, "to jane@corp.example", body, cuts.map((c) => c % (body.length + 1)).sort((a, b) => a - b));
        r.s.completeHttpContext();
        return r.local === null && r.s.reset === null; // a trap would be a local 503 or a reset stream
      }),
      { numRuns: 300 },
    );
    h.close();
  });
});
