// ai-router through build/ai-router.wasm and the Envoy-faithful host: every condition, combinations,
// first-match order, the default pool, model rewrite, the route header, metrics, Anthropic bodies,
// semantic rules against a local embeddings server (and their failures), hostile prompts, bad
// configuration, and inputs that must never trap.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import http from "node:http";
import type { AddressInfo } from "node:net";
import fc from "fast-check";
import { Host, HostLoadError } from "../host/index.js";

const WASM = process.env.AI_ROUTER_WASM ?? "build/ai-router.wasm";
type Stream = ReturnType<Host["newStream"]>;

async function router(configuration: object | string, opts: { clusters?: Record<string, string>; workers?: number } = {}) {
  return Host.create({
    filters: [{ name: "ai-router", wasm: WASM, configuration, allowOnHeadersStopIteration: true, workers: opts.workers ?? 1 }],
    clusters: opts.clusters,
  });
}

const HEADERS = { ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw", "content-type": "application/json" };

/** Sends one request through the chain (headers, then the body in one or more chunks). */
function send(h: Host, body: object | string, headers: Record<string, string> = {}, chunks = 1) {
  const s = h.newStream();
  const bytes = Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
  const onHeaders = s.callOnRequestHeaders({ ...HEADERS, ...headers }, false);
  let onBody = "Continue";
  // Chunks split anywhere, even inside a UTF-8 character, as the network may.
  const size = Math.ceil(bytes.length / chunks);
  for (let i = 0; i < chunks; i++) onBody = s.callOnRequestBody(bytes.subarray(i * size, (i + 1) * size), i === chunks - 1);
  return { s, onHeaders, onBody };
}

function routed(s: Stream) {
  return {
    pool: s.getFilterState("sluice.pool"),
    rule: s.getFilterState("sluice.route_rule"),
    model: s.getFilterState("sluice.route_model"),
  };
}

/** The rule a single user message is routed by. */
function ruleFor(h: Host, text: string, extra: object = {}, headers: Record<string, string> = {}) {
  return routed(send(h, { model: "some-model", messages: [{ role: "user", content: text }], ...extra }, headers).s).rule;
}

const user = (text: string, extra: object = {}) => ({ model: "some-model", messages: [{ role: "user", content: text }], ...extra });

function header(pairs: [string, string][] | null | undefined, name: string) {
  return (pairs ?? []).filter(([k]) => k === name).map(([, v]) => v);
}

async function loadError(configuration: object | string): Promise<HostLoadError> {
  try {
    const h = await router(configuration);
    h.close();
  } catch (e) {
    expect(e).toBeInstanceOf(HostLoadError);
    return e as HostLoadError;
  }
  throw new Error("configuration was accepted: " + JSON.stringify(configuration));
}

describe("ai-router: requests it routes and requests it leaves alone", () => {
  let h: Host;
  beforeAll(async () => {
    h = await router({ default_pool: "general", rules: [{ name: "code", pool: "capable", when: { task: "code" } }] });
  });
  afterAll(() => h.close());

  it("routes POST /v1/chat/completions by its body: headers held, body buffered, then the request continues unchanged", () => {
    const body = JSON.stringify(user("Write a Python function that merges two sorted lists."));
    const { s, onHeaders, onBody } = send(h, body);
    expect(onHeaders).toBe("Pause");
    expect(onBody).toBe("Continue");
    expect(routed(s)).toEqual({ pool: "capable", rule: "code", model: undefined });
    expect(s.upstream.body.toString()).toBe(body);
    expect(header(s.upstream.headers, ":path")).toEqual(["/v1/chat/completions"]);
    expect(s.upstream.ended).toBe(true);
  });

  it("routes POST /v1/messages (Anthropic) and ignores the query string", () => {
    const { s } = send(h, { model: "claude-x", max_tokens: 10, messages: [{ role: "user", content: "Hello there!" }] }, { ":path": "/v1/messages?beta=true" });
    expect(routed(s)).toEqual({ pool: "general", rule: "default", model: undefined });
  });

  it("routes Gemini's generateContent and streamGenerateContent by the path's model and the contents' parts", async () => {
    const g = await router({
      default_pool: "general",
      rules: [
        { name: "gemini-model", pool: "fast", when: { model: "gemini-2.5-*", keywords: ["weather"] } },
        { name: "images", pool: "vision", when: { images: true } },
        { name: "json", pool: "json", when: { json_mode: true } },
        { name: "tools", pool: "tools", when: { tools: true } },
        { name: "last-user", pool: "support", when: { keywords: ["refund"] } },
      ],
    });
    const gem = (path: string, body: object) => routed(send(g, body, { ":path": path }).s).rule;
    const turn = (text: string) => ({ role: "user", parts: [{ text }] });
    expect(gem("/v1beta/models/gemini-2.5-flash:generateContent", { contents: [turn("what is the weather")] })).toBe("gemini-model");
    expect(gem("/v1beta/models/gpt-4o:generateContent", { contents: [turn("what is the weather")] })).toBe("default");
    expect(gem("/v1beta/models/x:streamGenerateContent?alt=sse", { contents: [{ role: "user", parts: [{ inlineData: { mimeType: "image/png", data: "aGk=" } }] }] })).toBe("images");
    expect(gem("/v1beta/models/x:generateContent", { contents: [turn("hi")], generationConfig: { responseMimeType: "application/json" } })).toBe("json");
    expect(gem("/v1beta/models/x:generateContent", { contents: [turn("hi")], tools: [{ functionDeclarations: [{ name: "f" }] }] })).toBe("tools");
    // The last user turn is what the user says: a model turn or an earlier thought is not.
    expect(gem("/v1beta/models/x:generateContent", { contents: [turn("I want a refund"), { role: "model", parts: [{ text: "ok" }] }] })).toBe("last-user");
    expect(gem("/v1beta/models/x:generateContent", { contents: [{ role: "user", parts: [{ text: "refund", thought: true }, { text: "hello" }] }] })).toBe("default");
    // Other Gemini methods are not chats to route.
    expect(send(g, { contents: [turn("weather")] }, { ":path": "/v1beta/models/gemini-2.5-flash:countTokens" }).s.getFilterState("sluice.pool")).toBeUndefined();
    g.close();
  });

  it("passes other paths and methods untouched, without filter state", () => {
    for (const [method, path] of [["GET", "/v1/models"], ["POST", "/v1/embeddings"], ["GET", "/v1/chat/completions"], ["POST", "/healthz"]]) {
      const s = h.newStream();
      expect(s.callOnRequestHeaders({ ...HEADERS, ":method": method, ":path": path }, method === "GET")).toBe("Continue");
      if (method !== "GET") expect(s.callOnRequestBody(JSON.stringify(user("Write code")), true)).toBe("Continue");
      expect(routed(s)).toEqual({ pool: undefined, rule: undefined, model: undefined });
    }
  });

  it("reads a body that arrives in many chunks once it is complete", () => {
    const { s, onHeaders } = send(h, user("Fix this bug in my JavaScript code: `const x = [1,2,3].map(x => x * 2` "), {}, 7);
    expect(onHeaders).toBe("Pause");
    expect(routed(s).rule).toBe("code");
    expect(s.upstream.body.toString()).toBe(JSON.stringify(user("Fix this bug in my JavaScript code: `const x = [1,2,3].map(x => x * 2` ")));
  });

  it("routes a request without a body (end of stream on headers) by what it knows", () => {
    const s = h.newStream();
    expect(s.callOnRequestHeaders(HEADERS, true)).toBe("Continue");
    expect(routed(s)).toEqual({ pool: "general", rule: "default", model: undefined });
  });
});

describe("ai-router: conditions", () => {
  let h: Host;
  const rules = [
    { name: "hdr-exact", pool: "p", when: { header: { name: "X-Team", exact: "ml" } } },
    { name: "hdr-prefix", pool: "p", when: { header: { name: "x-team", prefix: "research-" } } },
    { name: "hdr-regex", pool: "p", when: { header: { name: "x-tier", regex: "^(gold|platinum)$" } } },
    { name: "hdr-present", pool: "p", when: { header: { name: "x-debug", present: true } } },
    { name: "path", pool: "p", when: { path: { exact: "/v1/messages" }, header: { name: "x-path-test", present: true } } },
    { name: "model-exact", pool: "p", when: { model: "o1" } },
    { name: "model-glob", pool: "p", when: { model: ["gpt-4*", "claude-?-opus"] } },
    { name: "keywords", pool: "p", when: { keywords: ["stack trace", "SegFault"] } },
    { name: "regex", pool: "p", when: { regex: ["\\bticket\\s+#?\\d{4,}\\b", "(?i)^urgent:"] } },
    { name: "conversation", pool: "p", when: { keywords: ["confidential"], in: "conversation" } },
    { name: "tokens", pool: "p", when: { tokens: { gt: 2000 } } },
    { name: "messages", pool: "p", when: { messages: { gt: 6 } } },
    { name: "tools", pool: "p", when: { tools: true } },
    { name: "images", pool: "p", when: { images: true } },
    { name: "json", pool: "p", when: { json_mode: true } },
    { name: "math", pool: "p", when: { task: ["math"] } },
    { name: "complex", pool: "p", when: { complexity: { gt: 0.5 } } },
    { name: "small", pool: "p", when: { tokens: { lt: 2 }, keywords: ["ok"] } },
  ];
  beforeAll(async () => {
    h = await router({ default_pool: "default-pool", rules });
  });
  afterAll(() => h.close());

  it("header: exact (names are case-insensitive, values are not), prefix, regex, present", () => {
    expect(ruleFor(h, "hi", {}, { "x-team": "ml" })).toBe("hdr-exact");
    expect(ruleFor(h, "hi", {}, { "x-team": "ML" })).toBe("default");
    expect(ruleFor(h, "hi", {}, { "x-team": "research-nlp" })).toBe("hdr-prefix");
    expect(ruleFor(h, "hi", {}, { "x-tier": "platinum" })).toBe("hdr-regex");
    expect(ruleFor(h, "hi", {}, { "x-tier": "platinum-ish" })).toBe("default");
    expect(ruleFor(h, "hi", {}, { "x-debug": "" })).toBe("hdr-present");
  });

  it("a rule of header conditions only is decided on the headers: the request is not held", () => {
    const s = h.newStream();
    expect(s.callOnRequestHeaders({ ...HEADERS, "x-team": "ml" }, false)).toBe("Continue");
    expect(routed(s).rule).toBe("hdr-exact");
    expect(s.callOnRequestBody(JSON.stringify(user("hi")), true)).toBe("Continue");
    expect(s.upstream.ended).toBe(true);
  });

  it("path", () => {
    const s = send(h, { model: "claude-3-haiku", max_tokens: 5, messages: [{ role: "user", content: "hi" }] }, { ":path": "/v1/messages", "x-path-test": "1" }).s;
    expect(routed(s).rule).toBe("path");
    expect(ruleFor(h, "hi", {}, { "x-path-test": "1" })).toBe("default");
  });

  it("model: exact and globs (* any run, ? one character)", () => {
    expect(ruleFor(h, "hi", { model: "o1" })).toBe("model-exact");
    expect(ruleFor(h, "hi", { model: "o1-mini" })).toBe("default");
    expect(ruleFor(h, "hi", { model: "gpt-4o" })).toBe("model-glob");
    expect(ruleFor(h, "hi", { model: "gpt-4" })).toBe("model-glob");
    expect(ruleFor(h, "hi", { model: "gpt-3.5-turbo" })).toBe("default");
    expect(ruleFor(h, "hi", { model: "claude-3-opus" })).toBe("model-glob");
    expect(ruleFor(h, "hi", { model: "claude-35-opus" })).toBe("default");
  });

  it("keys written with escapes are read by their value; a repeated key by its last value, as JSON.parse reads it", () => {
    const escaped = String.raw`{"mod\u0065l":"o1","m\u0065ssages":[{"role":"user","content":"hi"}]}`;
    expect(routed(send(h, escaped).s).rule).toBe("model-exact");
    const tools = String.raw`{"model":"m","messages":[{"role":"user","content":"hi there"}],"t\u006fols":[{"type":"function","function":{"name":"f"}}]}`;
    expect(routed(send(h, tools).s).rule).toBe("tools");
    const repeated = `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"model":"o1"}`;
    expect(routed(send(h, repeated).s).rule).toBe("model-exact");
    const lastWins = `{"model":"o1","messages":[{"role":"user","content":"hi"}],"model":"o1-mini"}`;
    expect(routed(send(h, lastWins).s).rule).toBe("default");
    // A message's keys too.
    const message = String.raw`{"model":"m","messages":[{"r\u006fle":"user","c\u006fntent":"Please look at ticket #48213 today"}]}`;
    expect(routed(send(h, message).s).rule).toBe("regex");
    const repeatedRole = `{"model":"m","messages":[{"role":"user","content":"Please look at ticket #48213 today","role":"assistant"}]}`;
    expect(routed(send(h, repeatedRole).s).rule).toBe("default");
  });

  it("texts with escapes and non-ASCII characters read the same whichever text a rule reads first", async () => {
    // Each text is decoded when a rule first reads it (prompt.ts): the last user turn before the
    // conversation here, the conversation first in the second router.
    const userFirst = await router({ default_pool: "d", rules: [
      { name: "task", pool: "p", when: { task: ["math"] } },
      { name: "conv", pool: "p", when: { keywords: ["naïve café"], in: "conversation" } },
      { name: "args", pool: "p", when: { regex: ['"city":"Zürich"'], in: "conversation" } },
    ] });
    const convFirst = await router({ default_pool: "d", rules: [
      { name: "none", pool: "p", when: { keywords: ["zzz"], in: "conversation" } },
      { name: "user", pool: "p", when: { keywords: ["naïve café"] } },
    ] });
    const system = String.raw`{"model":"m","messages":[{"role":"system","content":"At the na\u00efve caf\u00e9 \"we\" serve tea"},{"role":"user","content":"hello there"}]}`;
    expect(routed(send(userFirst, system).s).rule).toBe("conv");
    const call = String.raw`{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"w","arguments":"{\"city\":\"Z\u00fcrich\"}"}}]},{"role":"user","content":"and tomorrow?"}]}`;
    expect(routed(send(userFirst, call).s).rule).toBe("args");
    const user = String.raw`{"model":"m","messages":[{"role":"user","content":"I like the na\u00efve caf\u00e9\n\"really\""}]}`;
    expect(routed(send(convFirst, user).s).rule).toBe("user");
    expect(routed(send(userFirst, user).s).rule).toBe("conv");
    userFirst.close();
    convFirst.close();
  });

  it("keywords: case-insensitive whole words and phrases", () => {
    expect(ruleFor(h, "Here is the Stack Trace from prod")).toBe("keywords");
    expect(ruleFor(h, "it died with a segfault.")).toBe("keywords");
    expect(ruleFor(h, "my stack traces are long")).toBe("default"); // not the whole phrase
    expect(ruleFor(h, "segfaults everywhere")).toBe("default");
  });

  it("regex: anywhere in the last user turn, (?i) for case-insensitive", () => {
    expect(ruleFor(h, "Please look at ticket #48213 today")).toBe("regex");
    expect(ruleFor(h, "ticket 12")).toBe("default");
    expect(ruleFor(h, "URGENT: the site is down")).toBe("regex");
    expect(ruleFor(h, "not urgent: later")).toBe("default");
  });

  it("in: conversation reads every message and the system prompt; last_user (default) only the last user turn", () => {
    const conv = { model: "m", messages: [{ role: "system", content: "This chat is CONFIDENTIAL." }, { role: "user", content: "hello" }] };
    expect(routed(send(h, conv).s).rule).toBe("conversation");
    const older = { model: "m", messages: [{ role: "user", content: "ticket #99999" }, { role: "assistant", content: "ok" }, { role: "user", content: "thanks" }] };
    expect(routed(send(h, older).s).rule).toBe("default");
  });

  it("tokens (estimated from the text: ~4 characters a token) and messages", () => {
    expect(ruleFor(h, "word ".repeat(2000))).toBe("tokens"); // 10,000 characters
    expect(ruleFor(h, "word ".repeat(1000))).toBe("default");
    expect(ruleFor(h, "ok")).toBe("small");
    const many = { model: "m", messages: Array.from({ length: 7 }, (_, i) => ({ role: i % 2 ? "assistant" : "user", content: "hello there" })) };
    expect(routed(send(h, many).s).rule).toBe("messages");
    many.messages.pop();
    expect(routed(send(h, many).s).rule).toBe("default");
  });

  it("tools (tools or functions), images (OpenAI and Anthropic parts), JSON mode (json_object, json_schema)", () => {
    expect(ruleFor(h, "hi there", { tools: [{ type: "function", function: { name: "f", parameters: {} } }] })).toBe("tools");
    expect(ruleFor(h, "hi there", { tools: [] })).toBe("default");
    expect(ruleFor(h, "hi there", { functions: [{ name: "f" }] })).toBe("tools");
    const img = { model: "m", messages: [{ role: "user", content: [{ type: "text", text: "what is this?" }, { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } }] }] };
    expect(routed(send(h, img).s).rule).toBe("images");
    expect(ruleFor(h, "hi there", { response_format: { type: "json_object" } })).toBe("json");
    expect(ruleFor(h, "hi there", { response_format: { type: "json_schema", json_schema: { name: "x", schema: {} } } })).toBe("json");
    expect(ruleFor(h, "hi there", { response_format: { type: "text" } })).toBe("default");
  });

  it("task type and complexity from the built-in classifier", () => {
    expect(ruleFor(h, "Solve for x: 2x + 6 = 14")).toBe("math");
    const hard =
      "Design a distributed rate limiter for 50 stateless servers. It must be consistent under network partitions, " +
      "handle clock skew, and degrade gracefully. Compare token bucket and sliding window approaches, analyze the trade-offs, " +
      "and explain step by step how you would test it for race conditions and edge cases.\n\n" +
      "- requirement 1: p99 under 2 ms\n- requirement 2: no single point of failure\n- requirement 3: per-tenant limits\n" +
      "What would you choose? Why? What are the risks?";
    expect(ruleFor(h, hard)).toBe("complex");
    expect(ruleFor(h, "Tell me a joke about penguins")).toBe("default");
  });
});

describe("ai-router: combinations, order, default, outputs", () => {
  it("all / any / not and several conditions in one object (all of them)", async () => {
    const h = await router({
      default_pool: "d",
      rules: [
        { name: "and", pool: "p1", when: { model: "gpt-4*", keywords: ["invoice"] } },
        { name: "any-all", pool: "p2", when: { any: [{ header: { name: "x-vip", exact: "1" } }, { all: [{ task: "translate" }, { tokens: { lt: 100 } }] }] } },
        { name: "not", pool: "p3", when: { not: { model: ["gpt-4*", "gpt-3*"] } } },
      ],
    });
    expect(ruleFor(h, "Extract the invoice total", { model: "gpt-4o" })).toBe("and");
    expect(ruleFor(h, "Extract the invoice total", { model: "gpt-3.5" })).toBe("default");
    expect(ruleFor(h, "hello", { model: "gpt-3.5" }, { "x-vip": "1" })).toBe("any-all");
    expect(ruleFor(h, "Translate 'good morning' into French", { model: "gpt-3.5" })).toBe("any-all");
    expect(ruleFor(h, "Translate this into French: " + "bonjour ".repeat(200), { model: "gpt-3.5" })).toBe("default");
    expect(ruleFor(h, "hello", { model: "mistral-large" })).toBe("not");
    h.close();
  });

  it("first match wins, in configuration order; no default_pool sets no pool", async () => {
    const h = await router({
      rules: [
        { name: "first", pool: "a", when: { keywords: ["alpha"] } },
        { name: "second", pool: "b", when: { keywords: ["alpha", "beta"] } },
        { name: "catch-all", pool: "c" },
      ],
    });
    expect(routed(send(h, user("alpha beta")).s)).toEqual({ pool: "a", rule: "first", model: undefined });
    expect(routed(send(h, user("beta")).s)).toEqual({ pool: "b", rule: "second", model: undefined });
    expect(routed(send(h, user("gamma")).s)).toEqual({ pool: "c", rule: "catch-all", model: undefined });
    h.close();
    const h2 = await router({ rules: [{ name: "x", pool: "a", when: { keywords: ["alpha"] } }] });
    expect(routed(send(h2, user("gamma")).s)).toEqual({ pool: undefined, rule: "default", model: undefined });
    h2.close();
  });

  it("a rule decided on the headers wins before rules that would need the body", async () => {
    const h = await router({ default_pool: "d", rules: [{ name: "team", pool: "t", when: { header: { name: "x-team", exact: "a" } } }, { name: "code", pool: "c", when: { task: "code" } }] });
    const s = h.newStream();
    expect(s.callOnRequestHeaders({ ...HEADERS, "x-team": "a" }, false)).toBe("Continue");
    expect(routed(s).rule).toBe("team");
    const s2 = h.newStream();
    expect(s2.callOnRequestHeaders({ ...HEADERS, "x-team": "b" }, false)).toBe("Pause");
    h.close();
  });

  it("model rewrite (sluice.route_model), x-sluice-route on the response, metrics per rule", async () => {
    const h = await router({
      default_pool: "cheap",
      route_header: true,
      rules: [{ name: "code-big", pool: "capable", model: "gpt-4o", when: { task: "code" } }],
    });
    const { s } = send(h, user("Refactor this Java class to use dependency injection"));
    expect(routed(s)).toEqual({ pool: "capable", rule: "code-big", model: "gpt-4o" });
    s.callOnResponseHeaders({ ":status": "200", "content-type": "application/json" }, false);
    expect(header(s.downstream.headers, "x-sluice-route")).toEqual(["code-big"]);
    const d = send(h, user("Hi!")).s;
    expect(routed(d)).toEqual({ pool: "cheap", rule: "default", model: undefined });
    d.callOnResponseHeaders({ ":status": "200" }, true);
    expect(header(d.downstream.headers, "x-sluice-route")).toEqual(["default"]);
    send(h, user("Debug this Python traceback please"));
    expect(h.getMetric("sluice.router_matched;rule=code-big")).toEqual({ type: "counter", value: 2n });
    expect(h.getMetric("sluice.router_matched;rule=default")).toEqual({ type: "counter", value: 1n });
    h.close();
  });

  it("no x-sluice-route unless route_header is set", async () => {
    const h = await router({ default_pool: "cheap", rules: [] });
    const { s } = send(h, user("hi"));
    s.callOnResponseHeaders({ ":status": "200" }, true);
    expect(header(s.downstream.headers, "x-sluice-route")).toEqual([]);
    h.close();
  });

  it("annotate writes sluice.task_type and sluice.complexity for every routed request", async () => {
    const h = await router({ default_pool: "d", annotate: true, rules: [{ name: "team", pool: "t", when: { header: { name: "x-team", exact: "a" } } }] });
    const { s, onHeaders } = send(h, user("Translate 'thank you' into German"), { "x-team": "a" });
    expect(onHeaders).toBe("Pause"); // held to read the body, though the rule was known on the headers
    expect(routed(s).rule).toBe("team");
    expect(s.getFilterState("sluice.task_type")).toBe("translate");
    expect(s.getFilterState("sluice.complexity")).toMatch(/^[01]\.\d\d$/);
    h.close();
  });

  it("consumer (sluice.consumer, set by key-auth before the router)", async () => {
    const h = await Host.create({
      filters: [
        { name: "key-auth", wasm: "build/key-auth.wasm", configuration: { consumers: [{ name: "alice", keys: ["k-alice"] }, { name: "bob", keys: ["k-bob"] }] } },
        { name: "ai-router", wasm: WASM, allowOnHeadersStopIteration: true, configuration: { default_pool: "d", rules: [{ name: "alice", pool: "a", when: { consumer: ["alice", "carol"] } }] } },
      ],
    });
    expect(routed(send(h, user("hi"), { authorization: "Bearer k-alice" }).s).rule).toBe("alice");
    expect(routed(send(h, user("hi"), { authorization: "Bearer k-bob" }).s).rule).toBe("default");
    h.close();
  });
});

describe("ai-router: Anthropic bodies", () => {
  let h: Host;
  beforeAll(async () => {
    h = await router({
      default_pool: "d",
      rules: [
        { name: "sys", pool: "p", when: { keywords: ["pirate"], in: "conversation" } },
        { name: "img", pool: "p", when: { images: true } },
        { name: "tools", pool: "p", when: { tools: true, task: "math" } },
        { name: "code", pool: "p", when: { task: "code" } },
        { name: "few", pool: "p", when: { messages: { lt: 2 } } },
      ],
    });
  });
  afterAll(() => h.close());

  const anthropic = (messages: object[], extra: object = {}) => ({ model: "claude-sonnet-4", max_tokens: 100, messages, ...extra });

  it("top-level system (string or blocks) is part of the conversation", () => {
    expect(routed(send(h, anthropic([{ role: "user", content: "hello" }], { system: "Talk like a pirate." }), { ":path": "/v1/messages" }).s).rule).toBe("sys");
    expect(routed(send(h, anthropic([{ role: "user", content: "hello" }], { system: [{ type: "text", text: "You are a PIRATE" }] }), { ":path": "/v1/messages" }).s).rule).toBe("sys");
  });

  it("image blocks and tools", () => {
    const img = anthropic([{ role: "user", content: [{ type: "image", source: { type: "base64", media_type: "image/png", data: "AAAA" } }, { type: "text", text: "describe" }] }]);
    expect(routed(send(h, img, { ":path": "/v1/messages" }).s).rule).toBe("img");
    const tools = anthropic([{ role: "user", content: "Calculate the compound interest on $1000 at 5% for 3 years" }], { tools: [{ name: "calc", input_schema: { type: "object" } }] });
    expect(routed(send(h, tools, { ":path": "/v1/messages" }).s).rule).toBe("tools");
  });

  it("OpenAI's Responses API (/v1/responses): instructions, input as a string or items, tools, images and text.format", () => {
    const R = { ":path": "/v1/responses" };
    const resp = (input: unknown, extra: object = {}) => ({ model: "gpt-4o", input, ...extra });
    expect(routed(send(h, resp("hello", { instructions: "Talk like a pirate." }), R).s).rule).toBe("sys");
    expect(routed(send(h, resp("Write a TypeScript function that parses ISO dates."), R).s).rule).toBe("code");
    expect(routed(send(h, resp([{ role: "user", content: [{ type: "input_text", text: "what is this?" }, { type: "input_image", image_url: "data:image/png;base64,AAAA" }] }]), R).s).rule).toBe("img");
    const calc = resp("Calculate the compound interest on $1000 at 5% for 3 years", { tools: [{ type: "function", name: "calc", parameters: { type: "object" } }] });
    expect(routed(send(h, calc, R).s).rule).toBe("tools");
    // A function's output is context, not the user's turn; two messages are not "few".
    const items = resp([
      { role: "user", content: [{ type: "input_text", text: "Write a TypeScript function that parses ISO dates." }] },
      { type: "function_call", call_id: "c1", name: "run", arguments: "{}" },
      { type: "function_call_output", call_id: "c1", output: "ok, thanks, lovely weather" },
      { role: "assistant", content: [{ type: "output_text", text: "Done." }] },
    ]);
    expect(routed(send(h, items, R).s).rule).toBe("code");
  });

  it("the last user turn is the last user message with text: tool results are not a user turn", () => {
    const body = anthropic([
      { role: "user", content: [{ type: "text", text: "Write a TypeScript function that parses ISO dates." }] },
      { role: "assistant", content: [{ type: "tool_use", id: "t1", name: "run", input: { code: "x" } }] },
      { role: "user", content: [{ type: "tool_result", tool_use_id: "t1", content: "ok, thanks, lovely weather" }] },
    ]);
    expect(routed(send(h, body, { ":path": "/v1/messages" }).s).rule).toBe("code");
  });
});

describe("ai-router: bodies it cannot read", () => {
  let h: Host;
  beforeAll(async () => {
    h = await router({
      default_pool: "d",
      max_body_bytes: 1000,
      rules: [
        { name: "not-code", pool: "p", when: { not: { task: "code" } } },
        { name: "hdr", pool: "h", when: { header: { name: "x-a", exact: "1" } } },
      ],
    });
  });
  afterAll(() => h.close());

  it("not JSON, or not an object: body conditions are unknown, their rules skipped, the request continues", () => {
    for (const body of ["{not json", "[1,2,3]", '"text"', ""]) {
      const { s, onBody } = send(h, body, { "x-a": "1" });
      expect(onBody).toBe("Continue");
      expect(routed(s).rule).toBe("hdr"); // "not-code" is neither true nor false: skipped
      expect(s.upstream.body.toString()).toBe(body);
    }
  });

  it("a body over max_body_bytes (content-length, or as it arrives) is not read", () => {
    const big = JSON.stringify(user("hello ".repeat(400)));
    const s = h.newStream();
    expect(s.callOnRequestHeaders({ ...HEADERS, "content-length": String(big.length) }, false)).toBe("Continue");
    expect(routed(s).rule).toBe("default");
    const { s: s2 } = send(h, big, {}, 4);
    expect(routed(s2).rule).toBe("default");
    expect(s2.upstream.body.toString()).toBe(big);
  });

  it("past max_body_bytes it stops holding the body: a body 10x over the cap in many chunks flows on and leaves linear memory where it was", async () => {
    const cap = 64 * 1024;
    const r = await router({ default_pool: "d", max_body_bytes: cap, annotate: true, rules: [{ name: "kw", pool: "p", when: { keywords: ["urgent"] } }] });
    send(r, user("warm up: urgent")).s.completeHttpContext();
    const before = r.memoryPages("ai-router");
    const s = r.newStream();
    expect(s.callOnRequestHeaders(HEADERS, false)).toBe("Pause");
    const chunk = Buffer.alloc(4096, 0x61);
    const results: string[] = [];
    for (let i = 0; i < (10 * cap) / chunk.length; i++) results.push(s.callOnRequestBody(chunk, false));
    results.push(s.callOnRequestBody(Buffer.alloc(0), true));
    // Held until the chunk that crossed the cap, then decided without the body and passed on.
    expect(results.indexOf("Continue")).toBe(cap / chunk.length);
    expect(results.slice(cap / chunk.length).every((x) => x === "Continue")).toBe(true);
    expect(routed(s).rule).toBe("default");
    expect(s.upstream.body.length).toBe(10 * cap);
    s.completeHttpContext();
    expect(r.memoryPages("ai-router")).toBe(before);
    r.close();
  });
});

describe("ai-router: hostile prompts", () => {
  it("a request that spends its regular-expression budget (max_regex_steps) skips the rules that need more", async () => {
    const h = await router({
      default_pool: "d",
      max_regex_steps: 5000,
      rules: [
        { name: "ends-z", pool: "p", when: { regex: "(a|b)*z$" } },
        { name: "not-ends-z", pool: "p", when: { not: { regex: "(a|b)*z$" } } },
        { name: "kw", pool: "k", when: { keywords: ["hello"] } },
      ],
    });
    expect(ruleFor(h, "abz")).toBe("ends-z");
    expect(ruleFor(h, "hello ab")).toBe("not-ends-z");
    expect(h.getMetric("sluice.router_regex_budget_exceeded")?.value).toBe(0n);
    // 20,000 characters: neither answer is known within 5,000 steps, so neither rule matches.
    expect(ruleFor(h, "hello " + "ab".repeat(10_000) + "z")).toBe("kw");
    expect(h.getMetric("sluice.router_regex_budget_exceeded")?.value).toBe(1n);
    h.close();
  });

  it("routes a 100 KB prompt built to make backtracking regexes explode, in bounded time", async () => {
    const h = await router({
      default_pool: "d",
      rules: [
        { name: "r1", pool: "p", when: { regex: "(a+)+$" } },
        { name: "r2", pool: "p", when: { regex: "(a|a)*b" } },
        { name: "r3", pool: "p", when: { regex: ["^(a|aa)+$", "(x+x+)+y", "(?i)(\\w+\\s?)*;$", "(.*a){20}z", "(a*)*b"] } },
        { name: "kw", pool: "p", when: { keywords: ["aaaaaaaaab", "a a a b"], in: "conversation" } },
        { name: "cx", pool: "p", when: { complexity: { gt: 0.99 }, task: "code" } },
        { name: "hdr", pool: "p", when: { header: { name: "x-h", regex: "(a+)+$" } } },
      ],
    });
    const evil = "a".repeat(100_000) + "!";
    const started = performance.now();
    const { s } = send(h, user(evil), { "x-h": "a".repeat(8000) + "!" });
    const ms = performance.now() - started;
    // None matches ("!" ends the text): a backtracking engine would try exponentially many ways first.
    expect(routed(s)).toEqual({ pool: "d", rule: "default", model: undefined });
    expect(ms).toBeLessThan(10_000); // sanity only; the linear bound is asserted on step counts in ai-router-regex.test.ts
    h.close();
  });
});

// ---------------------------------------------------------------------------------------------
// Semantic rules against a local embeddings server (OpenAI /v1/embeddings format) whose vectors
// are deterministic bags of words: texts that share words are close.

const DIM = 64;
function embed(text: string): number[] {
  const v = new Array(DIM).fill(0);
  for (const w of text.toLowerCase().match(/[a-z]+/g) ?? []) {
    let hsh = 2166136261;
    for (const ch of w) hsh = Math.imul(hsh ^ ch.charCodeAt(0), 16777619) >>> 0;
    v[hsh % DIM] += 1;
  }
  return v;
}

interface EmbeddingServer {
  url: string;
  requests: { inputs: string[]; auth: string | undefined; model: string }[];
  failPrompts: boolean;
  failExamples: boolean;
  delayMs: number;
  close(): Promise<void>;
}

async function embeddingServer(): Promise<EmbeddingServer> {
  const state = { requests: [] as EmbeddingServer["requests"], failPrompts: false, failExamples: false, delayMs: 0 };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString());
      const inputs: string[] = Array.isArray(body.input) ? body.input : [body.input];
      state.requests.push({ inputs, auth: req.headers.authorization, model: body.model });
      const fail = inputs.length === 1 ? state.failPrompts : state.failExamples;
      setTimeout(() => {
        if (res.destroyed) return;
        if (req.url !== "/v1/embeddings" || fail) {
          res.writeHead(500, { "content-type": "application/json" }).end('{"error":{"message":"boom"}}');
          return;
        }
        // Answer out of order, as the index field allows.
        const data = inputs.map((t, index) => ({ object: "embedding", index, embedding: embed(t) })).reverse();
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ object: "list", data, model: body.model }));
      }, state.delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(state, {
    url,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  }) as EmbeddingServer;
}

const BILLING = ["I was charged twice on my credit card", "refund my last invoice payment", "why is my bill higher this month"];
function semanticConfig(extra: object = {}, rules?: object[]) {
  return {
    default_pool: "general",
    embeddings: { cluster: "emb", model: "test-embed", api_key: "sk-emb", timeout_ms: 500, retry_ms: 0, ...extra },
    rules: rules ?? [
      { name: "vip", pool: "vip", when: { header: { name: "x-vip", exact: "1" } } },
      { name: "billing", pool: "support", when: { semantic: { examples: BILLING, threshold: 0.6 } } },
      { name: "code", pool: "capable", when: { task: "code" } },
    ],
  };
}

describe("ai-router: semantic rules", () => {
  let srv: EmbeddingServer;
  beforeAll(async () => {
    srv = await embeddingServer();
  });
  afterAll(() => srv.close());
  const reset = () => {
    srv.requests.length = 0;
    srv.failPrompts = srv.failExamples = false;
    srv.delayMs = 0;
  };

  it("matches by cosine similarity; the request waits for the embedding, then continues from the callback", async () => {
    reset();
    const h = await router(semanticConfig(), { clusters: { emb: srv.url } });
    const body = JSON.stringify(user("Hi, my credit card was charged twice for one invoice"));
    const { s, onHeaders, onBody } = send(h, body);
    expect(onHeaders).toBe("Pause");
    expect(onBody).toBe("Pause");
    expect(s.upstream.headers).toBeNull();
    await h.settle();
    expect(routed(s)).toEqual({ pool: "support", rule: "billing", model: undefined });
    expect(s.upstream.body.toString()).toBe(body);
    expect(s.upstream.ended).toBe(true);

    // Not similar: the next rules decide.
    const other = send(h, user("Write a Go function that reverses a slice")).s;
    await h.settle();
    expect(routed(other).rule).toBe("code");
    const chat = send(h, user("What a lovely day")).s;
    await h.settle();
    expect(routed(chat).rule).toBe("default");

    // The examples were embedded once, in one request; each prompt once.
    const exampleCalls = srv.requests.filter((r) => r.inputs.length === BILLING.length);
    expect(exampleCalls).toHaveLength(1);
    expect(exampleCalls[0].inputs).toEqual(BILLING);
    expect(srv.requests.filter((r) => r.inputs.length === 1).map((r) => r.inputs[0])).toEqual([
      "Hi, my credit card was charged twice for one invoice", "Write a Go function that reverses a slice", "What a lovely day",
    ]);
    expect(srv.requests.every((r) => r.auth === "Bearer sk-emb" && r.model === "test-embed")).toBe(true);
    expect(h.getLogs("error")).toEqual([]);
    h.close();
  });

  it("caches the example embeddings in shared data: another worker does not fetch them again", async () => {
    reset();
    const h = await router(semanticConfig(), { clusters: { emb: srv.url }, workers: 2 });
    const a = h.newStream({ worker: 0 });
    a.callOnRequestHeaders(HEADERS, false);
    a.callOnRequestBody(JSON.stringify(user("refund my invoice please")), true);
    await h.settle();
    expect(routed(a).rule).toBe("billing");
    const b = h.newStream({ worker: 1 });
    b.callOnRequestHeaders(HEADERS, false);
    b.callOnRequestBody(JSON.stringify(user("my bill is higher this month, why?")), true);
    await h.settle();
    expect(routed(b).rule).toBe("billing");
    expect(srv.requests.filter((r) => r.inputs.length > 1)).toHaveLength(1);
    expect(srv.requests.filter((r) => r.inputs.length === 1)).toHaveLength(2);
    h.close();
  });

  it("warms up on a tick: the examples are fetched before the first request needs them", async () => {
    reset();
    const h = await router(semanticConfig(), { clusters: { emb: srv.url } });
    expect(srv.requests).toHaveLength(0);
    h.tick();
    await h.settle();
    expect(srv.requests.map((r) => r.inputs.length)).toEqual([BILLING.length]);
    const { s } = send(h, user("charged twice on my card"));
    await h.settle();
    expect(routed(s).rule).toBe("billing");
    expect(srv.requests.map((r) => r.inputs.length)).toEqual([BILLING.length, 1]);
    h.tick(); // ready: no more fetches
    await h.settle();
    expect(srv.requests).toHaveLength(2);
    h.close();
  });

  it("does not embed when an earlier rule decides, or when the rule is settled without the semantic condition", async () => {
    reset();
    const h = await router(semanticConfig({}, [
      { name: "vip", pool: "vip", when: { header: { name: "x-vip", exact: "1" } } },
      { name: "anyof", pool: "a", when: { any: [{ semantic: { examples: BILLING, threshold: 0.6 } }, { keywords: ["urgent"] }] } },
      { name: "allof", pool: "b", when: { all: [{ semantic: { examples: BILLING, threshold: 0.6 } }, { model: "never" }] } },
    ]), { clusters: { emb: srv.url } });
    const vip = send(h, user("charged twice"), { "x-vip": "1" });
    expect(vip.onHeaders).toBe("Continue");
    expect(routed(vip.s).rule).toBe("vip");
    const urgent = send(h, user("urgent: charged twice"));
    expect(urgent.onBody).toBe("Continue");
    expect(routed(urgent.s).rule).toBe("anyof");
    await h.settle();
    expect(srv.requests).toHaveLength(0);
    h.close();
  });

  it("on a failed prompt embedding (error status) the rule is skipped, never the request", async () => {
    reset();
    srv.failPrompts = true;
    const h = await router(semanticConfig(), { clusters: { emb: srv.url } });
    const { s } = send(h, user("charged twice on my card for my invoice"));
    await h.settle();
    expect(routed(s)).toEqual({ pool: "general", rule: "default", model: undefined });
    expect(s.upstream.ended).toBe(true);
    expect(h.getMetric("sluice.router_embedding_errors")?.value).toBe(1n);
    expect(h.getLogs("warn").join("\n")).toMatch(/embedding the prompt failed \(status 500\)/);
    h.close();
  });

  it("on a timeout the rule is skipped", async () => {
    reset();
    const h = await router(semanticConfig({ timeout_ms: 50 }), { clusters: { emb: srv.url } });
    h.tick();
    await h.settle(); // examples ready
    srv.delayMs = 400;
    const { s } = send(h, user("Write a Rust function to parse a CSV line, I was charged twice"));
    await h.settle();
    expect(routed(s).rule).toBe("code");
    expect(s.upstream.ended).toBe(true);
    h.close();
  });

  it("when the examples cannot be embedded, semantic rules are skipped until a retry succeeds", async () => {
    reset();
    srv.failExamples = true;
    const h = await router(semanticConfig({ retry_ms: 0 }), { clusters: { emb: srv.url } });
    const first = send(h, user("refund my last invoice payment")).s;
    await h.settle();
    expect(routed(first).rule).toBe("default");
    expect(h.getLogs("warn").join("\n")).toMatch(/embedding the semantic examples failed \(status 500\)/);
    srv.failExamples = false;
    const second = send(h, user("refund my last invoice payment")).s;
    await h.settle();
    expect(routed(second).rule).toBe("billing");
    h.close();
  });

  it("a cluster Envoy does not know: the call is refused at once and the rule skipped without waiting", async () => {
    reset();
    const h = await router(semanticConfig(), { clusters: {} });
    const { s, onBody } = send(h, user("refund my last invoice payment"));
    expect(onBody).toBe("Continue");
    expect(routed(s).rule).toBe("default");
    h.close();
  });

  it("a client that hangs up while its request waits for an embedding leaves nothing broken", async () => {
    reset();
    srv.delayMs = 50;
    const h = await router(semanticConfig(), { clusters: { emb: srv.url } });
    const { s } = send(h, user("refund my last invoice payment"));
    s.completeHttpContext();
    await h.settle();
    expect(routed(s).rule).toBeUndefined();
    const next = send(h, user("refund my last invoice payment")).s;
    await h.settle();
    expect(routed(next).rule).toBe("billing");
    expect(h.getLogs("error")).toEqual([]);
    h.close();
  });
});

describe("ai-router: bad configuration is refused with the field named", () => {
  const cases: [string, object | string, RegExp][] = [
    ["not JSON", "{rules:", /ai-router: invalid configuration: configuration: is not valid JSON/],
    ["unknown top-level field", { rule: [] }, /ai-router\.rule: unknown field/],
    ["unknown rule field", { rules: [{ name: "a", pool: "p", poool: "x" }] }, /ai-router\.rules\[0\]\.poool: unknown field/],
    ["unknown condition", { rules: [{ name: "a", pool: "p", when: { modle: "gpt-4" } }] }, /ai-router\.rules\[0\]\.when\.modle: unknown field \(expected one of: header, path/],
    ["bad regex", { rules: [{ name: "a", pool: "p", when: { regex: ["ok", "(unclosed"] } }] }, /rules\[0\]\.when\.regex\[1\]: invalid regular expression: missing \)/],
    ["lookahead", { rules: [{ name: "a", pool: "p", when: { regex: "a(?=b)" } }] }, /when\.regex: invalid regular expression: lookahead is not supported/],
    ["backreference", { rules: [{ name: "a", pool: "p", when: { regex: "(a)\\1" } }] }, /backreferences are not supported/],
    ["bad header regex", { rules: [{ name: "a", pool: "p", when: { header: { name: "x", regex: "[z-a]" } } }] }, /when\.header\.regex: invalid regular expression: bad range/],
    ["huge repetition", { rules: [{ name: "a", pool: "p", when: { regex: "(a{1000}){1000}" } }] }, /pattern too large/],
    ["unknown task type", { rules: [{ name: "a", pool: "p", when: { task: ["code", "poetry"] } }] }, /when\.task\[1\]: unknown task type 'poetry' \(expected one of: code, math, reasoning, summarize, extract, translate, chat\)/],
    ["complexity out of range", { rules: [{ name: "a", pool: "p", when: { complexity: { lt: 1.5 } } }] }, /when\.complexity\.lt: must be a number from 0 to 1/],
    ["empty range", { rules: [{ name: "a", pool: "p", when: { tokens: { gt: 10, lt: 5 } } }] }, /when\.tokens: gt must be less than lt/],
    ["semantic threshold out of range", { embeddings: { cluster: "e", model: "m" }, rules: [{ name: "a", pool: "p", when: { semantic: { examples: ["x"], threshold: 1.2 } } }] }, /when\.semantic\.threshold: must be a number above 0 and at most 1/],
    ["semantic without embeddings", { rules: [{ name: "a", pool: "p", when: { semantic: { examples: ["x"], threshold: 0.8 } } }] }, /when\.semantic: needs the top-level embeddings section/],
    ["embeddings without model", { embeddings: { cluster: "e" } }, /ai-router\.embeddings\.model: is required/],
    ["missing pool", { rules: [{ name: "a" }] }, /rules\[0\]\.pool: is required/],
    ["duplicate rule names", { rules: [{ name: "a", pool: "p" }, { name: "a", pool: "q" }] }, /rules\[1\]\.name: duplicate rule name 'a'/],
    ["reserved name", { rules: [{ name: "default", pool: "p" }] }, /rules\[0\]\.name: 'default' is reserved/],
    ["name with spaces", { rules: [{ name: "my rule", pool: "p" }] }, /rules\[0\]\.name: must use only letters/],
    ["two matchers", { rules: [{ name: "a", pool: "p", when: { header: { name: "x", exact: "1", prefix: "2" } } }] }, /when\.header: needs exactly one of exact, prefix, regex, present/],
    ["in without text condition", { rules: [{ name: "a", pool: "p", when: { in: "conversation", model: "x" } }] }, /when\.in: applies to keywords, regex, task and complexity/],
    ["empty any", { rules: [{ name: "a", pool: "p", when: { any: [] } }] }, /when\.any: must be a non-empty list of conditions/],
    ["condition not an object", { rules: [{ name: "a", pool: "p", when: { not: ["x"] } }] }, /when\.not: must be an object of conditions/],
    ["wrong type", { route_header: "yes" }, /ai-router\.route_header: must be true or false/],
    ["nested too deep", { rules: [{ name: "a", pool: "p", when: JSON.parse('{"not":'.repeat(40) + "{}" + "}".repeat(40)) }] }, /conditions nested deeper than 32/],
  ];
  for (const [what, cfg, message] of cases) {
    it(what, async () => {
      const e = await loadError(cfg);
      expect(e.filter).toBe("ai-router");
      expect(e.logs.join("\n")).toMatch(message);
    });
  }
});

describe("ai-router: never traps", () => {
  it("on arbitrary configurations: accepted, or refused with a reason, never a trap", async () => {
    const cond = fc.letrec((tie) => ({
      c: fc.dictionary(
        fc.constantFrom("header", "path", "consumer", "model", "keywords", "regex", "in", "tokens", "messages", "tools", "images", "json_mode", "task", "complexity", "any", "all", "not", "bogus"),
        fc.oneof({ depthSize: "small" }, fc.anything({ maxDepth: 2 }), fc.array(tie("c"), { maxLength: 3 }), tie("c"),
          fc.record({ name: fc.string(), exact: fc.string(), regex: fc.string({ maxLength: 12 }), gt: fc.double(), lt: fc.double() }, { requiredKeys: [] })),
        { maxKeys: 3 },
      ),
    })).c;
    const config = fc.record({
      default_pool: fc.oneof(fc.string(), fc.anything()),
      route_header: fc.anything(),
      max_regex_steps: fc.oneof(fc.integer(), fc.anything()),
      rules: fc.oneof(fc.array(fc.record({ name: fc.oneof(fc.constantFrom("a", "b", "default"), fc.string()), pool: fc.string(), model: fc.anything(), when: cond }, { requiredKeys: ["name", "pool"] }), { maxLength: 3 }), fc.anything()),
    }, { requiredKeys: [] });
    await fc.assert(
      fc.asyncProperty(config, async (cfg) => {
        try {
          const h = await router(cfg);
          const { onBody } = send(h, user("Write a Python function, please: hello world?"), { "x-a": "1" });
          expect(onBody).toBe("Continue");
          expect(h.getLogs("error")).toEqual([]);
          h.close();
        } catch (e) {
          expect(e).toBeInstanceOf(HostLoadError);
          const logs = (e as HostLoadError).logs.join("\n");
          expect(logs).toMatch(/ai-router: invalid configuration: /);
          expect(logs).not.toMatch(/RuntimeError|unreachable|failed:/);
        }
      }),
      { numRuns: 150, seed: 11 },
    );
  });

  it("on arbitrary bodies, headers and chunkings", async () => {
    const h = await router({
      default_pool: "d",
      rules: [
        { name: "h", pool: "p", when: { header: { name: "x-a", regex: "^\\w+$" } } },
        { name: "r", pool: "p", when: { regex: ["(?i)\\bpay(ment)?s?\\b", "[\\x00-\\x1f]{3,}", "(a|b)*c$"], in: "conversation" } },
        { name: "k", pool: "p", when: { keywords: ["é", "naïve", "日本"] } },
        { name: "all", pool: "p", when: { all: [{ tokens: { gt: 5 } }, { messages: { lt: 4 } }, { not: { task: ["chat", "code"] } }, { complexity: { gt: 0.2 } }] } },
        { name: "m", pool: "p", when: { model: "*4?-*" } },
      ],
    });
    const content = fc.oneof(
      fc.string({ unit: "grapheme", maxLength: 300 }),
      fc.string({ unit: "binary", maxLength: 300 }),
      fc.array(fc.oneof(
        fc.record({ type: fc.constantFrom("text", "image_url", "image", "tool_result", "tool_use", "input_text"), text: fc.string(), content: fc.anything() }),
        fc.anything(),
      ), { maxLength: 5 }),
      fc.anything(),
    );
    const message = fc.oneof(fc.record({ role: fc.constantFrom("user", "assistant", "system", "tool", 7), content, tool_calls: fc.anything() }), fc.anything());
    const body = fc.oneof(
      fc.record({ model: fc.oneof(fc.string(), fc.anything()), messages: fc.oneof(fc.array(message, { maxLength: 6 }), fc.anything()), system: fc.anything(), tools: fc.anything(), response_format: fc.anything() }).map((b) => JSON.stringify(b)),
      fc.json(),
      fc.string({ unit: "binary", maxLength: 200 }),
    );
    fc.assert(
      fc.property(body, fc.string({ maxLength: 40 }), fc.integer({ min: 1, max: 5 }), fc.boolean(), (b, hv, chunks, anthropic) => {
        const headers: Record<string, string> = { "x-a": hv.replace(/[\r\n\0]/g, "") };
        if (anthropic) headers[":path"] = "/v1/messages";
        const { s, onBody } = send(h, b, headers, chunks);
        expect(onBody).toBe("Continue");
        expect(routed(s).rule).toBeDefined();
        expect(s.getSentLocalResponse()).toBeNull();
        expect(s.upstream.body.equals(Buffer.from(b))).toBe(true);
        s.completeHttpContext();
      }),
      { numRuns: 300, seed: 7 },
    );
    expect(h.getLogs("error")).toEqual([]);
    expect(h.getLogs("critical")).toEqual([]);
    h.close();
  });
});

describe("ai-router in the chain, before ai-proxy", () => {
  let srv: EmbeddingServer;
  beforeAll(async () => {
    srv = await embeddingServer();
  });
  afterAll(() => srv.close());

  const proxy = {
    name: "ai-proxy",
    wasm: "build/ai-proxy.wasm",
    allowOnHeadersStopIteration: true,
    configuration: {
      instances: [
        { name: "small", provider: "openai", api_key: "k1", models: ["*"] },
        { name: "big", provider: "openai", api_key: "k2", models: ["*"] },
      ],
      pools: [{ name: "cheap", instances: ["small"] }, { name: "capable", instances: ["big"] }],
    },
  };

  async function chain() {
    return Host.create({
      filters: [
        { name: "ai-router", wasm: WASM, allowOnHeadersStopIteration: true, configuration: { ...semanticConfig({}, [
          { name: "billing", pool: "capable", model: "gpt-4o", when: { semantic: { examples: BILLING, threshold: 0.6 } } },
          { name: "code", pool: "capable", when: { task: "code" } },
        ]), default_pool: "cheap" } },
        proxy,
      ],
      clusters: { emb: srv.url },
    });
  }

  it("ai-proxy receives the held request with the router's pool and model, also when it resumes from the embedding callback", async () => {
    srv.requests.length = 0;
    const h = await chain();
    // Semantic rule: the request waits for the embedding, then both filters let it through.
    const a = send(h, user("I was charged twice on my credit card", { model: "gpt-4o-mini" }));
    expect(a.onBody).toBe("Pause");
    await h.settle();
    expect(routed(a.s)).toEqual({ pool: "capable", rule: "billing", model: "gpt-4o" });
    expect(a.s.getFilterState("sluice.instance")).toBe("big");
    expect(header(a.s.upstream.headers, "x-sluice-cluster")).toEqual(["big"]);
    expect(JSON.parse(a.s.upstream.body.toString()).model).toBe("gpt-4o");
    expect(a.s.upstream.ended).toBe(true);

    // No rule matches: the default pool, and the client's model.
    const b = send(h, user("What a lovely day", { model: "gpt-4o-mini" }));
    await h.settle();
    expect(routed(b.s)).toEqual({ pool: "cheap", rule: "default", model: undefined });
    expect(b.s.getFilterState("sluice.instance")).toBe("small");
    expect(JSON.parse(b.s.upstream.body.toString()).model).toBe("gpt-4o-mini");
    h.close();
  });
});
