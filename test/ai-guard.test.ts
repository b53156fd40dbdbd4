// ai-guard's request side through build/ai-guard.wasm and the Envoy-faithful host: each detector's
// positives and tricky negatives (Luhn and mod-97 rejections included), block / mask / log, every
// client API's body and its error shape, JSON escapes and multi-byte text in masked bodies, policy
// overrides, filter state and metrics, and bad configuration.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { HostLoadError, type Host } from "../host/index.js";
import { guard, send, chat, through, ALL } from "./ai-guard-helpers.js";

describe("ai-guard: detectors (each masking, so the test sees exactly what each one found)", () => {
  let h: Host;
  beforeAll(async () => {
    h = await guard({ detectors: ALL("mask") });
  });
  afterAll(() => h.close());

  const cases: [string, string, string][] = [
    // [detector, text, text sent on]
    ["email", "write to jane.doe+news@mail.example.co.uk today", "write to <EMAIL_1> today"],
    ["email", "addresses a_b@x.io, c@d.org.", "addresses <EMAIL_1>, <EMAIL_2>."],
    ["email (not: no dot in the domain, a handle, a decorator)", "user@localhost, @jane, @Override foo@bar", "user@localhost, @jane, @Override foo@bar"],
    ["email (not: a numeric top label)", "ping admin@10.0.0", "ping admin@10.0.0"],
    ["phone E.164", "call +14155552671 now", "call <PHONE_1> now"],
    ["phone international grouped", "+44 20 7946 0958 or +33 1 23 45 67 89", "<PHONE_1> or <PHONE_2>"],
    ["phone North American", "(415) 555-2671, 415.555.2671, 1-800-555-0199", "<PHONE_1>, <PHONE_2>, <PHONE_3>"],
    ["phone national with trunk 0", "ring 020 7946 0958 or 07700 900123 or 030 1234567", "ring <PHONE_1> or <PHONE_2> or <PHONE_3>"],
    ["phone (not: plain long numbers, Unix times, dates, times, versions)", "order 4155552671, ts 1700000000, 2024-01-15 10:30:00, v1.2.3, 12.05.2023", "order 4155552671, ts 1700000000, 2024-01-15 10:30:00, v1.2.3, 12.05.2023"],
    ["phone (not: an ISBN, a North American number with area code 1xx)", "ISBN 978-3-16-148410-0, 155-555-2671", "ISBN 978-3-16-148410-0, 155-555-2671"],
    ["card", "pay with 4111 1111 1111 1111 or 5500-0000-0000-0004 or 340000000000009", "pay with <CARD_1> or <CARD_2> or <CARD_3>"],
    ["card followed by another number (the groups that make a card are kept)", "cards 4111 1111 1111 1111 10 each; 5500-0000-0000-0004-2024", "cards <CARD_1> 10 each; <CARD_2>-2024"],
    ["card (not: failing Luhn)", "4111 1111 1111 1112 and 5500000000000005", "4111 1111 1111 1112 and 5500000000000005"],
    ["card (not: a prefix no network uses, digits in pairs)", "9111 1111 1111 1111 11 11 11 11 11 11 11 11", "9111 1111 1111 1111 11 11 11 11 11 11 11 11"],
    ["iban", "IBAN DE89 3704 0044 0532 0130 00 and GB82WEST12345698765432", "IBAN <IBAN_1> and <IBAN_2>"],
    ["iban (not: failing mod-97, a wrong length, an unknown country)", "DE89 3704 0044 0532 0130 01 DE89370400440532013 ZZ89370400440532013000", "DE89 3704 0044 0532 0130 01 DE89370400440532013 ZZ89370400440532013000"],
    ["ssn", "SSN 123-45-6789 and 536 22 1234", "SSN <SSN_1> and <SSN_2>"],
    ["ssn (not: area 000, 666, 9xx; group 00; serial 0000)", "000-12-3456 666-12-3456 912-34-5678 123-00-4567 123-45-0000", "000-12-3456 666-12-3456 912-34-5678 123-00-4567 123-45-0000"],
    ["ip", "hosts 192.168.1.20 and 2001:db8::8a2e:370:7334 and ::1 and fe80::1%eth0", "hosts <IP_1> and <IP_2> and <IP_3> and <IP_4>%eth0"],
    ["ip v6 full and with IPv4", "2001:0db8:85a3:0000:0000:8a2e:0370:7334 ::ffff:192.0.2.128", "<IP_1> <IP_2>"],
    ["ip (not: versions, octets over 255, times, MAC addresses)", "1.2.3.4.5 256.1.1.1 10:30:00 00:1A:2B:3C:4D:5E std::vector", "1.2.3.4.5 256.1.1.1 10:30:00 00:1A:2B:3C:4D:5E std::vector"],
    ["credential OpenAI and Anthropic keys", "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t and sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2", "<CREDENTIAL_1> and <CREDENTIAL_2>"],
    ["credential AWS and GitHub", "AKIAIOSFODNN7EXAMPLE ASIAY34FZKBOKMUTVV7A ghp_16C7e42F292c6912E7710c838347Ae178B4a github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "<CREDENTIAL_1> <CREDENTIAL_2> <CREDENTIAL_3> <CREDENTIAL_4>"],
    ["credential JWT", "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U.", "token <CREDENTIAL_1>."],
    ["credential PEM private key", "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\nthanks", "key:\n<CREDENTIAL_1>\nthanks"],
    ["credential (not: sk-learn, a public key, an AKIA prefix too short)", "pip install sk-learn; -----BEGIN PUBLIC KEY----- AKIA1234", "pip install sk-learn; -----BEGIN PUBLIC KEY----- AKIA1234"],
  ];
  for (const [name, text, want] of cases) {
    it(name, () => expect(through(h, text)).toBe(want));
  }

  it("gives the same value the same placeholder across the request, a new one to each new value", () => {
    const r = send(h, "/v1/chat/completions", {
      model: "m",
      messages: [
        { role: "system", content: "Support for a@x.io" },
        { role: "user", content: "I am a@x.io, my colleague is b@x.io, again a@x.io" },
      ],
    });
    const m = r.upstream().messages;
    expect(m[0].content).toBe("Support for <EMAIL_1>");
    expect(m[1].content).toBe("I am <EMAIL_1>, my colleague is <EMAIL_2>, again <EMAIL_1>");
  });
});

describe("ai-guard: actions, filter state and metrics", () => {
  let h: Host;
  beforeAll(async () => {
    h = await guard({
      detectors: { email: "mask", card: "block", ip: "log", credential: "block" },
      custom: [{ name: "ticket", regex: "(?i)ticket-[0-9]{3,}", action: "mask" }],
      keywords: [{ name: "codename", words: ["Project Falcon", "bluebird"], action: "block" }],
    });
  });
  afterAll(() => h.close());

  it("block: 400 in OpenAI's shape naming the category, never the value; nothing goes upstream", () => {
    const r = send(h, "/v1/chat/completions", chat("charge 4111 1111 1111 1111 please"));
    expect(r.reply?.statusCode).toBe(400);
    expect(r.reply?.statusDetails).toBe("sluice_guard_blocked");
    const body = JSON.parse(r.reply!.body.toString());
    expect(body.error.type).toBe("invalid_request_error");
    expect(body.error.code).toBe("content_blocked");
    expect(body.error.message).toContain("card");
    expect(r.reply!.body.toString()).not.toContain("4111");
    expect(r.s.upstream.headers).toBeNull();
    expect(r.verdict).toBe("block");
    expect(r.categories).toBe("card");
  });

  it("block wins over mask; the categories name every detector that found something", () => {
    const r = send(h, "/v1/chat/completions", chat("from a@x.io at 10.0.0.1: key sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t"));
    expect(r.reply?.statusCode).toBe(400);
    expect(JSON.parse(r.reply!.body.toString()).error.message).toContain("credential");
    expect(JSON.parse(r.reply!.body.toString()).error.message).not.toContain("email");
    expect(r.categories).toBe("email,ip,credential");
  });

  it("mask: the body is rewritten, content-length removed, the verdict mask; log only records", () => {
    const r = send(h, "/v1/chat/completions", chat("I am a@x.io on 10.0.0.1 about TICKET-4821"));
    expect(r.reply).toBeNull();
    expect(r.onBody).toBe("Continue");
    expect(r.upstream().messages[0].content).toBe("I am <EMAIL_1> on 10.0.0.1 about <TICKET_1>");
    expect(r.s.upstream.headers!.find(([k]) => k === "content-length")).toBeUndefined();
    expect(r.verdict).toBe("mask");
    expect(r.categories).toBe("email,ip,ticket");
  });

  it("allow: the body passes byte for byte, content-length kept; log-only findings are recorded", () => {
    const body = JSON.stringify(chat("server 10.0.0.1 is down"));
    const r = send(h, "/v1/chat/completions", body);
    expect(r.s.upstream.body.toString()).toBe(body);
    expect(r.s.upstream.headers!.find(([k]) => k === "content-length")?.[1]).toBe(String(body.length));
    expect(r.verdict).toBe("allow");
    expect(r.categories).toBe("ip");
    const clean = send(h, "/v1/chat/completions", chat("hello"));
    expect(clean.verdict).toBe("allow");
    expect(clean.categories).toBeUndefined();
  });

  it("keyword lists match whole words, case-insensitively", () => {
    expect(send(h, "/v1/chat/completions", chat("status of PROJECT FALCON?")).reply?.statusCode).toBe(400);
    expect(send(h, "/v1/chat/completions", chat("a Bluebird flew")).reply?.statusCode).toBe(400);
    expect(send(h, "/v1/chat/completions", chat("bluebirds and project falcons")).reply).toBeNull();
  });

  it("counts requests per verdict and detections per detector and action", () => {
    const before = (n: string) => h.getMetric(n)?.value ?? 0n;
    const blocked = before("sluice.guard_requests;verdict=block");
    const card = before("sluice.guard_detections;detector=card;action=block");
    const masked = before("sluice.guard_requests;verdict=mask");
    const email = before("sluice.guard_detections;detector=email;action=mask");
    send(h, "/v1/chat/completions", chat("4111 1111 1111 1111"));
    send(h, "/v1/chat/completions", chat("a@x.io and b@x.io"));
    expect(h.getMetric("sluice.guard_requests;verdict=block")!.value).toBe(blocked + 1n);
    expect(h.getMetric("sluice.guard_detections;detector=card;action=block")!.value).toBe(card + 1n);
    expect(h.getMetric("sluice.guard_requests;verdict=mask")!.value).toBe(masked + 1n);
    expect(h.getMetric("sluice.guard_detections;detector=email;action=mask")!.value).toBe(email + 1n);
  });

  it("reads a body that ends with trailers when the trailers arrive (and blocks it then)", () => {
    const s = h.newStream();
    s.callOnRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw" }, false);
    const body = JSON.stringify(chat("card 4111 1111 1111 1111"));
    expect(s.callOnRequestBody(body.slice(0, 20), false)).toBe("Pause");
    expect(s.callOnRequestBody(body.slice(20), false)).toBe("Pause");
    s.callOnRequestTrailers({ "x-checksum": "1" });
    expect(s.getSentLocalResponse()?.statusCode).toBe(400);
    expect(s.upstream.headers).toBeNull();
  });

  it("masks a body that ends with trailers: the rewritten body, not the original, goes on with the trailers", () => {
    const s = h.newStream();
    s.callOnRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw" }, false);
    const body = JSON.stringify(chat("write to me@example.com"));
    expect(s.callOnRequestBody(body.slice(0, 20), false)).toBe("Pause");
    expect(s.callOnRequestBody(body.slice(20), false)).toBe("Pause");
    s.callOnRequestTrailers({ "x-checksum": "1" });
    expect(s.getSentLocalResponse()).toBeNull();
    // Envoy hands a buffering filter the decoding buffer itself (Context::getBuffer: decodingBuffer()),
    // so what it writes from its trailers callback is what continues upstream.
    expect(JSON.parse(s.upstream.body.toString()).messages[0].content).toBe("write to <EMAIL_1>");
    expect(s.upstream.trailers).toEqual([["x-checksum", "1"]]);
  });

  it("leaves alone what is not a client API's POST", () => {
    const s = h.newStream();
    expect(s.callOnRequestHeaders({ ":method": "GET", ":path": "/v1/models", ":authority": "gw" }, true)).toBe("Continue");
    const r = send(h, "/v1/files", "4111 1111 1111 1111");
    expect(r.reply).toBeNull();
    expect(r.onHeaders).toBe("Continue");
    expect(r.verdict).toBeUndefined();
  });
});

describe("ai-guard: every client API's request texts, and its error shape", () => {
  let h: Host;
  beforeAll(async () => {
    h = await guard({ detectors: { email: "mask", card: "block" } });
  });
  afterAll(() => h.close());
  const CARD = "4111 1111 1111 1111";

  it("Chat Completions: content strings and text parts, tool call arguments, tool results; images passed by", () => {
    const img = { type: "image_url", image_url: { url: "data:image/png;base64,YUB4LmlvCg==" } };
    const r = send(h, "/v1/chat/completions", {
      model: "m",
      messages: [
        { role: "user", content: [{ type: "text", text: "mail a@x.io" }, img] },
        { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "send", arguments: "{\"to\":\"b@x.io\"}" } }] },
        { role: "tool", tool_call_id: "c1", content: "sent to b@x.io" },
      ],
    });
    const m = r.upstream().messages;
    expect(m[0].content[0].text).toBe("mail <EMAIL_1>");
    expect(m[0].content[1]).toEqual(img);
    expect(m[1].tool_calls[0].function.arguments).toBe("{\"to\":\"<EMAIL_2>\"}");
    expect(JSON.parse(m[1].tool_calls[0].function.arguments)).toEqual({ to: "<EMAIL_2>" });
    expect(m[2].content).toBe("sent to <EMAIL_2>");
  });

  it("Anthropic Messages: system, text blocks, tool_use input, tool_result; block in Anthropic's shape", () => {
    const r = send(h, "/v1/messages", {
      model: "claude", max_tokens: 10,
      system: [{ type: "text", text: "ops a@x.io" }],
      messages: [
        { role: "user", content: "hi from c@x.io" },
        { role: "assistant", content: [{ type: "tool_use", id: "t1", name: "mail", input: { to: ["d@x.io"], n: 1 } }] },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "t1", content: [{ type: "text", text: "ok d@x.io" }] }] },
      ],
    });
    const b = r.upstream();
    expect(b.system[0].text).toBe("ops <EMAIL_1>");
    expect(b.messages[0].content).toBe("hi from <EMAIL_2>");
    expect(b.messages[1].content[0].input).toEqual({ to: ["<EMAIL_3>"], n: 1 });
    expect(b.messages[2].content[0].content[0].text).toBe("ok <EMAIL_3>");
    const blocked = send(h, "/v1/messages", { model: "claude", max_tokens: 10, system: `card ${CARD}`, messages: [{ role: "user", content: "hi" }] });
    expect(blocked.reply?.statusCode).toBe(400);
    const e = JSON.parse(blocked.reply!.body.toString());
    expect(e.type).toBe("error");
    expect(e.error.type).toBe("invalid_request_error");
    expect(e.error.message).toContain("card");
  });

  it("OpenAI Responses: instructions, input string and items (messages, function calls and outputs)", () => {
    expect(send(h, "/v1/responses", { model: "m", input: `pay ${CARD}` }).reply?.statusCode).toBe(400);
    const r = send(h, "/v1/responses", {
      model: "m",
      instructions: "agent for a@x.io",
      input: [
        { role: "user", content: [{ type: "input_text", text: "hi, b@x.io here" }, { type: "input_image", image_url: "https://img/c@x.io.png" }] },
        { type: "function_call", call_id: "c", name: "f", arguments: "{\"e\":\"a@x.io\"}" },
        { type: "function_call_output", call_id: "c", output: "done for b@x.io" },
      ],
    });
    const b = r.upstream();
    expect(b.instructions).toBe("agent for <EMAIL_1>");
    expect(b.input[0].content[0].text).toBe("hi, <EMAIL_2> here");
    expect(b.input[0].content[1].image_url).toBe("https://img/c@x.io.png");
    expect(b.input[1].arguments).toBe("{\"e\":\"<EMAIL_1>\"}");
    expect(b.input[2].output).toBe("done for <EMAIL_2>");
    const e = JSON.parse(send(h, "/v1/responses", { model: "m", instructions: CARD, input: "x" }).reply!.body.toString());
    expect(e.error.code).toBe("content_blocked");
  });

  it("Gemini generateContent: systemInstruction, text parts (not thoughts), functionCall args, functionResponse; Gemini's error shape", () => {
    const r = send(h, "/v1beta/models/gemini-2.5-flash:generateContent", {
      systemInstruction: { parts: [{ text: "for a@x.io" }] },
      contents: [
        { role: "user", parts: [{ text: "I am b@x.io" }, { inlineData: { mimeType: "image/png", data: "AAAA" } }] },
        { role: "model", parts: [{ text: "thinking about z@x.io", thought: true }, { functionCall: { name: "f", args: { who: "b@x.io" } } }] },
        { role: "user", parts: [{ functionResponse: { name: "f", response: { result: "mailed c@x.io" } } }] },
      ],
    });
    const b = r.upstream();
    expect(b.systemInstruction.parts[0].text).toBe("for <EMAIL_1>");
    expect(b.contents[0].parts[0].text).toBe("I am <EMAIL_2>");
    expect(b.contents[1].parts[0].text).toBe("thinking about z@x.io");
    expect(b.contents[1].parts[1].functionCall.args.who).toBe("<EMAIL_2>");
    expect(b.contents[2].parts[0].functionResponse.response.result).toBe("mailed <EMAIL_3>");
    const blocked = send(h, "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", { contents: [{ parts: [{ text: CARD }] }] });
    expect(blocked.reply?.statusCode).toBe(400);
    expect(JSON.parse(blocked.reply!.body.toString())).toEqual({ error: { code: 400, message: expect.stringContaining("card"), status: "INVALID_ARGUMENT" } });
  });

  it("embeddings: input strings (OpenAI) and Gemini's embedContent / batchEmbedContents; token arrays passed by", () => {
    expect(send(h, "/v1/embeddings", { model: "e", input: ["x", CARD] }).reply?.statusCode).toBe(400);
    expect(send(h, "/v1/embeddings", { model: "e", input: "a@x.io" }).upstream().input).toBe("<EMAIL_1>");
    expect(send(h, "/v1/embeddings", { model: "e", input: [[1, 2, 3]] }).reply).toBeNull();
    expect(send(h, "/v1beta/models/text-embedding-004:embedContent", { content: { parts: [{ text: CARD }] } }).reply?.statusCode).toBe(400);
    const batch = send(h, "/v1beta/models/text-embedding-004:batchEmbedContents", { requests: [{ content: { parts: [{ text: "a@x.io" }] } }] });
    expect(batch.upstream().requests[0].content.parts[0].text).toBe("<EMAIL_1>");
  });

  it("Anthropic's count_tokens and Gemini's countTokens are read like their requests", () => {
    expect(send(h, "/v1/messages/count_tokens", { model: "c", messages: [{ role: "user", content: CARD }] }).reply?.statusCode).toBe(400);
    expect(send(h, "/v1beta/models/g:countTokens", { generateContentRequest: { contents: [{ parts: [{ text: CARD }] }] } }).reply?.statusCode).toBe(400);
  });
});

describe("ai-guard: masked bodies stay valid JSON", () => {
  let h: Host;
  beforeAll(async () => {
    h = await guard({ detectors: ALL("mask") });
  });
  afterAll(() => h.close());

  it("keeps escapes, quotes, control characters, multi-byte text and lone surrogates around a masked value", () => {
    const text = "Grüße 👋 \"quoted\" \\ back\tslash\n日本語 a@x.io \u0001 end \ud800 ✓";
    const raw = JSON.stringify(chat(text)); // JSON.stringify writes the lone surrogate as \ud800
    const r = send(h, "/v1/chat/completions", raw);
    const out = r.s.upstream.body.toString();
    expect(() => JSON.parse(out)).not.toThrow();
    expect(JSON.parse(out).messages[0].content).toBe(text.replace("a@x.io", "<EMAIL_1>"));
  });

  it("finds values written with escapes (\\u0040 for @) and masks what they decode to", () => {
    const r = send(h, "/v1/chat/completions", '{"model":"m","messages":[{"role":"user","content":"write a\\u0040x.io or \\u00e9t\\u00e9 4111\\u00201111 1111 1111"}]}');
    expect(r.upstream().messages[0].content).toBe("write <EMAIL_1> or été <CARD_1>");
  });

  it("rewrites values in document order whatever order the API's fields are read in", () => {
    const r = send(h, "/v1/messages", '{"messages":[{"role":"user","content":"b@x.io"}],"system":"a@x.io","model":"c","max_tokens":5}');
    expect(r.upstream()).toEqual({ messages: [{ role: "user", content: "<EMAIL_2>" }], system: "<EMAIL_1>", model: "c", max_tokens: 5 });
  });
});

describe("ai-guard: policies per consumer, route rule and pool", () => {
  let h: Host;
  beforeAll(async () => {
    h = await guard({
      detectors: { email: "mask" },
      consumers: { auditor: { detectors: { email: "log" } } },
      routes: { internal: { detectors: { email: "block" } } },
      pools: { "eu-pool": { detectors: { email: "mask", iban: "block" } } },
    });
  });
  afterAll(() => h.close());
  const iban = "a@x.io GB82WEST12345698765432";

  it("the default policy without a matching override", () => {
    expect(send(h, "/v1/chat/completions", chat(iban), {}, { "sluice.consumer": "bob" }).upstream().messages[0].content).toBe("<EMAIL_1> GB82WEST12345698765432");
  });
  it("a consumer's policy replaces the default, and wins over route and pool", () => {
    const r = send(h, "/v1/chat/completions", chat(iban), {}, { "sluice.consumer": "auditor", "sluice.route_rule": "internal", "sluice.pool": "eu-pool" });
    expect(r.upstream().messages[0].content).toBe(iban);
    expect(r.categories).toBe("email");
  });
  it("the route rule's policy (ai-router's sluice.route_rule) wins over the pool's", () => {
    expect(send(h, "/v1/chat/completions", chat(iban), {}, { "sluice.route_rule": "internal", "sluice.pool": "eu-pool" }).reply?.statusCode).toBe(400);
  });
  it("the pool's policy (sluice.pool)", () => {
    const r = send(h, "/v1/chat/completions", chat(iban), {}, { "sluice.pool": "eu-pool" });
    expect(JSON.parse(r.reply!.body.toString()).error.message).toContain("iban");
  });
});

describe("ai-guard: bodies it cannot read are refused (a guard must not pass what it did not check)", () => {
  let h: Host;
  beforeAll(async () => {
    h = await guard({ detectors: { email: "mask" }, max_body_bytes: 8192, max_json_values: 1000, custom: [{ name: "slow", regex: "(a|aa)*b", action: "mask" }], max_regex_steps: 5000 });
  });
  afterAll(() => h.close());

  it("not JSON: 400 in the client's shape", () => {
    const r = send(h, "/v1/messages", "{not json");
    expect(r.reply?.statusCode).toBe(400);
    expect(JSON.parse(r.reply!.body.toString()).type).toBe("error");
    expect(r.reply?.statusDetails).toBe("sluice_guard_unreadable");
  });
  it("over max_body_bytes: 413, by content-length at the headers or by the body's size", () => {
    const big = JSON.stringify(chat("x".repeat(10000)));
    const r = send(h, "/v1/chat/completions", big);
    expect(r.reply?.statusCode).toBe(413);
    expect(JSON.parse(r.reply!.body.toString()).error.code).toBe("request_too_large");
    const s = h.newStream();
    s.callOnRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw" }, false);
    s.callOnRequestBody(big.slice(0, 5000), false);
    s.callOnRequestBody(big.slice(5000), true);
    expect(s.getSentLocalResponse()?.statusCode).toBe(413);
  });
  it("over max_json_values: 400", () => {
    const r = send(h, "/v1/chat/completions", { model: "m", messages: [{ role: "user", content: "x" }], extra: new Array(1200).fill(0).map(() => ({})) });
    expect(r.reply?.statusCode).toBe(400);
    expect(JSON.parse(r.reply!.body.toString()).error.message).toContain("JSON values");
  });
  it("a custom pattern that runs out of max_regex_steps refuses the request instead of passing it unchecked", () => {
    const r = send(h, "/v1/chat/completions", chat("a".repeat(1500)));
    expect(r.reply?.statusCode).toBe(400);
    expect(r.reply?.statusDetails).toBe("sluice_guard_budget_exceeded");
    expect(h.getMetric("sluice.guard_regex_budget_exceeded")!.value).toBeGreaterThan(0n);
  });
});

describe("ai-guard: configuration errors", () => {
  async function loadError(configuration: object | string): Promise<string> {
    try {
      const h = await guard(configuration);
      h.close();
    } catch (e) {
      expect(e).toBeInstanceOf(HostLoadError);
      return (e as HostLoadError).logs.join("\n");
    }
    throw new Error("configuration was accepted: " + JSON.stringify(configuration));
  }
  it("refuses unknown detectors, actions, fields, bad patterns and names", async () => {
    expect(await loadError({ detectors: { mail: "mask" } })).toContain("ai-guard.detectors.mail: unknown detector");
    expect(await loadError({ detectors: { email: "redact" } })).toContain("ai-guard.detectors.email: must be one of: off, log, mask, block");
    expect(await loadError({ detector: {} })).toContain("unknown field");
    expect(await loadError({ custom: [{ name: "x", regex: "(a" }] })).toContain("ai-guard.custom[0].regex");
    expect(await loadError({ custom: [{ name: "x", regex: "a*" }] })).toContain("matches the empty string");
    expect(await loadError({ custom: [{ name: "Bad Name", regex: "a" }] })).toContain("ai-guard.custom[0].name");
    expect(await loadError({ custom: [{ name: "email", regex: "a" }] })).toContain("already a detector name");
    expect(await loadError({ keywords: [{ name: "k", words: [] }] })).toContain("ai-guard.keywords[0].words");
    expect(await loadError({ consumers: { a: { detectors: { card: "nope" } } } })).toContain("ai-guard.consumers.a.detectors.card");
  });
});
