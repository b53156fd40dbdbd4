// The Gemini provider (assembly/providers/gemini.ts) through build/ai-proxy.wasm and the
// Envoy-faithful host: OpenAI requests translated to generateContent / streamGenerateContent /
// batchEmbedContents, answers, streams and errors translated back, and the usage record.
import { describe, it, expect, beforeAll } from "vitest";
import { readFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Host } from "../../host/index.js";
import { providerHosts, header, send, upstream, reply, rejected, usage, dataOf, eventsOf, assemble, type Pairs, type S } from "./helpers.js";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "fixtures");
// Recorded in Gemini's framing: `data: <GenerateContentResponse>\r\n\r\n`, usageMetadata on every
// chunk, finishReason on the last, no [DONE].
const TEXT_STREAM = readFileSync(join(FIXTURES, "gemini-stream-text.sse"), "utf8");
const TOOL_STREAM = readFileSync(join(FIXTURES, "gemini-stream-tools.sse"), "utf8");
const NOW_S = 1_750_000_000;

const CONFIG = { instances: [{ name: "gem", provider: "gemini", api_key: "g-test", model: "gemini-2.5-flash" }] };


// Nothing the provider does may trap the VM: checked after each test (helpers.ts providerHosts).
const makeHost = providerHosts(CONFIG, NOW_S, /failed: Uncaught|abort|unreachable/i);

/** One Gemini SSE event, framed as Gemini frames it. */
const gev = (o: object) => `data: ${JSON.stringify(o)}\r\n\r\n`;

const ANSWER = {
  candidates: [{
    content: { parts: [{ text: "The user greets me.", thought: true }, { text: "Bonjour" }, { text: " !" }], role: "model" },
    finishReason: "STOP", index: 0,
    safetyRatings: [{ category: "HARM_CATEGORY_HARASSMENT", probability: "NEGLIGIBLE" }],
  }],
  usageMetadata: { promptTokenCount: 10, candidatesTokenCount: 5, totalTokenCount: 22, thoughtsTokenCount: 7, cachedContentTokenCount: 4 },
  modelVersion: "gemini-2.5-flash-001",
  responseId: "resp-1",
};

const TOOL_ANSWER = {
  candidates: [{
    content: {
      parts: [
        { functionCall: { name: "get_weather", args: { city: "Paris" } }, thoughtSignature: "Cv4B+3/x9Q==" },
        { functionCall: { id: "fc-7", name: "get_time", args: {} } },
      ],
      role: "model",
    },
    finishReason: "STOP",
  }],
  usageMetadata: { promptTokenCount: 30, candidatesTokenCount: 12, totalTokenCount: 42 },
  modelVersion: "gemini-2.5-flash-001",
  responseId: "resp-2",
};

const FULL = {
  model: "whatever-the-client-says",
  messages: [
    { role: "system", content: "Be brief." },
    { role: "developer", content: [{ type: "text", text: "Answer in French." }] },
    { role: "user", content: "What is in these pictures?" },
    {
      role: "user", content: [
        { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
        { type: "image_url", image_url: { url: "https://example.com/cat.webp?size=large", detail: "high" } },
        { type: "image_url", image_url: { url: "https://example.com/photo" } },
      ],
    },
    {
      role: "assistant", content: "Let me look the weather up.", tool_calls: [
        { id: "call_a", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Paris\"}" } },
        { id: "call_b", type: "function", function: { name: "get_time", arguments: "" } },
      ],
    },
    { role: "tool", tool_call_id: "call_a", content: "{\"temp\":21}" },
    { role: "tool", tool_call_id: "call_b", content: [{ type: "text", text: "12:00" }] },
    { role: "user", content: "Thanks!" },
  ],
  temperature: 0.3, top_p: 0.9, max_tokens: 200, stop: "END", seed: 7, presence_penalty: 0.1, frequency_penalty: 0.2, n: 1,
  user: "u-1", parallel_tool_calls: true, store: false, metadata: { a: "b" },
  tools: [
    {
      type: "function",
      function: {
        name: "get_weather", description: "Weather for a city", strict: true,
        parameters: { $schema: "http://json-schema.org/draft-07/schema#", type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false },
      },
    },
    { type: "function", function: { name: "get_time", parameters: { type: "object", properties: {} } } },
  ],
  tool_choice: "auto",
};

describe("gemini provider: request translation", () => {
  let h: Host;
  beforeAll(async () => {
    h = await makeHost();
  });

  it("targets generateContent with x-goog-api-key, never the client's credential", () => {
    const s = send(h, { model: "gpt-4o", messages: [{ role: "user", content: "Hi" }] }, "/v1/chat/completions", { "x-goog-api-key": "client-goog", "x-api-key": "client-x" });
    const up = s.upstream.headers!;
    expect(header(up, ":path")).toBe("/v1beta/models/gemini-2.5-flash:generateContent");
    expect(header(up, ":authority")).toBe("generativelanguage.googleapis.com");
    expect(header(up, "x-goog-api-key")).toBe("g-test");
    expect(header(up, "x-sluice-cluster")).toBe("gem");
    expect(header(up, "authorization")).toBeUndefined();
    expect(header(up, "x-api-key")).toBeUndefined();
    expect(header(up, "content-length")).toBeUndefined();
    expect(up.map(([, v]) => v).join("\n")).not.toContain("client-");
    expect(upstream(s)).toEqual({ contents: [{ role: "user", parts: [{ text: "Hi" }] }] });
    expect(s.getFilterState("sluice.provider")).toBe("gemini");
    expect(s.getFilterState("sluice.model")).toBe("gemini-2.5-flash");
    expect(s.getFilterState("sluice.request_model")).toBe("gpt-4o");
  });

  it("streams through streamGenerateContent?alt=sse", () => {
    const s = send(h, { model: "m", messages: [{ role: "user", content: "Hi" }], stream: true, stream_options: { include_usage: true } });
    expect(header(s.upstream.headers, ":path")).toBe("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
    expect(upstream(s)).toEqual({ contents: [{ role: "user", parts: [{ text: "Hi" }] }] });
  });

  it("translates a full request: system, merged turns, images, tool calls and results, tools, sampling", () => {
    const s = send(h, FULL);
    expect(upstream(s)).toEqual({
      contents: [
        {
          role: "user", parts: [
            { text: "What is in these pictures?" },
            { inlineData: { mimeType: "image/png", data: "iVBORw0KGgo=" } },
            { fileData: { mimeType: "image/webp", fileUri: "https://example.com/cat.webp?size=large" } },
            { fileData: { mimeType: "image/jpeg", fileUri: "https://example.com/photo" } },
          ],
        },
        {
          role: "model", parts: [
            { text: "Let me look the weather up." },
            { functionCall: { name: "get_weather", args: { city: "Paris" } } },
            { functionCall: { name: "get_time", args: {} } },
          ],
        },
        {
          role: "user", parts: [
            { functionResponse: { name: "get_weather", response: { content: { temp: 21 } } } },
            { functionResponse: { name: "get_time", response: { content: "12:00" } } },
            { text: "Thanks!" },
          ],
        },
      ],
      systemInstruction: { parts: [{ text: "Be brief." }, { text: "Answer in French." }] },
      tools: [{
        functionDeclarations: [
          { name: "get_weather", description: "Weather for a city", parameters: { type: "OBJECT", properties: { city: { type: "STRING" } }, required: ["city"] } },
          { name: "get_time" },
        ],
      }],
      toolConfig: { functionCallingConfig: { mode: "AUTO" } },
      generationConfig: {
        temperature: 0.3, topP: 0.9, seed: 7, presencePenalty: 0.1, frequencyPenalty: 0.2, candidateCount: 1,
        maxOutputTokens: 200, stopSequences: ["END"],
      },
    });
  });

  it("maps tool_choice none / required / a named function", () => {
    const base = { model: "m", messages: [{ role: "user", content: "x" }], tools: [FULL.tools[0]] };
    const mode = (tool_choice: unknown) => upstream(send(h, { ...base, tool_choice })).toolConfig;
    expect(mode("none")).toEqual({ functionCallingConfig: { mode: "NONE" } });
    expect(mode("required")).toEqual({ functionCallingConfig: { mode: "ANY" } });
    expect(mode({ type: "function", function: { name: "get_weather" } })).toEqual({ functionCallingConfig: { mode: "ANY", allowedFunctionNames: ["get_weather"] } });
    // Without tools, tool_choice means nothing to Gemini.
    expect(upstream(send(h, { model: "m", messages: [{ role: "user", content: "x" }], tool_choice: "none" })).toolConfig).toBeUndefined();
    expect(rejected(send(h, { ...base, tool_choice: "sometimes" })).message).toMatch(/tool_choice/);
  });

  it("stop lists, max_completion_tokens over max_tokens, top_k, JSON mode and JSON schema", () => {
    const msgs = [{ role: "user", content: "x" }];
    const gc = (extra: object) => upstream(send(h, { model: "m", messages: msgs, ...extra })).generationConfig;
    expect(gc({ stop: ["a", "b"], max_tokens: 10, max_completion_tokens: 20, top_k: 40 })).toEqual({ stopSequences: ["a", "b"], maxOutputTokens: 20, topK: 40 });
    expect(gc({ response_format: { type: "text" } })).toBeUndefined();
    expect(gc({ response_format: { type: "json_object" } })).toEqual({ responseMimeType: "application/json" });
    expect(gc({
      response_format: {
        type: "json_schema",
        json_schema: { name: "answer", strict: true, schema: { type: "object", properties: { a: { type: "string" }, b: { type: ["number", "null"] } }, required: ["a", "b"], additionalProperties: false } },
      },
    })).toEqual({
      responseMimeType: "application/json",
      responseSchema: { type: "OBJECT", properties: { a: { type: "STRING" }, b: { type: "NUMBER", nullable: true } }, required: ["a", "b"] },
    });
  });

  it("converts JSON Schema to Gemini's OpenAPI subset: $ref/$defs, anyOf null, enums, formats, dropped keywords", () => {
    const parameters = {
      $schema: "http://json-schema.org/draft-07/schema#",
      type: "object",
      properties: {
        when: { type: "string", format: "date-time" },
        email: { type: "string", format: "email", description: "Address" },
        count: { type: ["integer", "null"], minimum: 1, exclusiveMinimum: 0 },
        level: { enum: [1, 2, "three", null] },
        kind: { const: "fixed" },
        tags: { type: "array", items: { type: "string" }, uniqueItems: true, maxItems: 5 },
        address: { $ref: "#/$defs/Address", description: "Where" },
        maybe: { anyOf: [{ type: "string" }, { type: "null" }], default: null, title: "Maybe" },
        either: { oneOf: [{ type: "string" }, { type: "number" }] },
        legacy: { allOf: [{ $ref: "#/definitions/Legacy" }] },
        free: { type: "object", additionalProperties: true },
      },
      required: ["when"],
      additionalProperties: false,
      $defs: { Address: { type: "object", properties: { street: { type: "string" } }, additionalProperties: false, description: "A postal address" } },
      definitions: { Legacy: { type: "boolean" } },
    };
    const body = upstream(send(h, { model: "m", messages: [{ role: "user", content: "x" }], tools: [{ type: "function", function: { name: "f", parameters } }] }));
    expect(body.tools[0].functionDeclarations[0].parameters).toEqual({
      type: "OBJECT",
      properties: {
        when: { type: "STRING", format: "date-time" },
        email: { type: "STRING", description: "Address" },
        count: { type: "INTEGER", minimum: 1, nullable: true },
        level: { enum: ["1", "2", "three"], nullable: true },
        kind: { enum: ["fixed"] },
        tags: { type: "ARRAY", items: { type: "STRING" }, maxItems: 5 },
        address: { type: "OBJECT", properties: { street: { type: "STRING" } }, description: "Where" },
        maybe: { type: "STRING", default: null, title: "Maybe", nullable: true },
        either: { anyOf: [{ type: "STRING" }, { type: "NUMBER" }] },
        legacy: { type: "BOOLEAN" },
        free: { type: "OBJECT" },
      },
      required: ["when"],
    });
  });

  it("schemas Gemini cannot express are a 400 naming the tool", () => {
    const tool = (parameters: object) => ({ model: "m", messages: [{ role: "user", content: "x" }], tools: [{ type: "function", function: { name: "f", parameters } }] });
    const recursive = { type: "object", properties: { child: { $ref: "#" } } };
    expect(rejected(send(h, tool(recursive))).message).toMatch(/tools\[0\]\.function\.parameters: .*24 levels/);
    expect(rejected(send(h, tool({ type: "object", properties: { a: { $ref: "https://x/schema.json" } } }))).message).toMatch(/\$ref/);
    expect(rejected(send(h, tool({ type: "object", properties: { a: { allOf: [{ type: "string" }, { minLength: 2 }] } } }))).message).toMatch(/allOf/);
    expect(rejected(send(h, tool({ type: "object", properties: { a: { type: "array", items: [{ type: "string" }] } } }))).message).toMatch(/tuple/);
    expect(rejected(send(h, tool({ type: "object", properties: { a: { type: "date" } } }))).message).toMatch(/unknown type/);
    // $ref inlining cannot be turned into a "billion laughs": 20^3 copies of a leaf, or 2^20.
    const wide: Record<string, object> = { D0: { type: "string" } };
    for (let i = 1; i <= 3; i++) wide[`D${i}`] = { type: "object", properties: Object.fromEntries(Array.from({ length: 20 }, (_, k) => [`p${k}`, { $ref: `#/$defs/D${i - 1}` }])) };
    expect(rejected(send(h, tool({ type: "object", properties: { x: { $ref: "#/$defs/D3" } }, $defs: wide }))).message).toMatch(/expand to more than 256 copies/);
    const deep: Record<string, object> = { D0: { type: "string" } };
    for (let i = 1; i <= 20; i++) deep[`D${i}`] = { type: "object", properties: { a: { $ref: `#/$defs/D${i - 1}` }, b: { $ref: `#/$defs/D${i - 1}` } } };
    expect(rejected(send(h, tool({ type: "object", properties: { x: { $ref: "#/$defs/D20" } }, $defs: deep }))).message).toMatch(/24 levels|256 copies/);
    expect(rejected(send(h, tool({ type: "object", properties: { a: "string" } }))).message).toMatch(/a schema must be an object/);
    expect(rejected(send(h, { model: "m", messages: [{ role: "user", content: "x" }], tools: [{ type: "web_search" }] })).message).toMatch(/tool type 'web_search' is not supported by provider gemini/);
  });

  it("thinking from Anthropic clients and reasoning_effort become thinkingConfig", () => {
    const msgs = [{ role: "user", content: "x" }];
    const gc = (extra: object) => upstream(send(h, { model: "m", messages: msgs, ...extra })).generationConfig;
    expect(gc({ thinking: { type: "enabled", budget_tokens: 2048 } })).toEqual({ thinkingConfig: { thinkingBudget: 2048, includeThoughts: true } });
    expect(gc({ thinking: { type: "adaptive" } })).toEqual({ thinkingConfig: { thinkingBudget: -1, includeThoughts: true } });
    expect(gc({ thinking: { type: "disabled" } })).toBeUndefined();
    expect(gc({ reasoning_effort: "low" })).toEqual({ thinkingConfig: { thinkingBudget: 1024 } });
    expect(gc({ reasoning_effort: "high" })).toEqual({ thinkingConfig: { thinkingBudget: 24576 } });
    expect(gc({ reasoning_effort: "none" })).toEqual({ thinkingConfig: { thinkingBudget: 0 } });
    expect(rejected(send(h, { model: "m", messages: msgs, reasoning_effort: "extreme" })).message).toMatch(/reasoning_effort/);
  });

  it("reasoning_effort on Gemini 3 and later is a thinkingLevel (none is minimal: Gemini 3 cannot stop thinking)", async () => {
    const msgs = [{ role: "user", content: "x" }];
    const any = await makeHost({ instances: [{ name: "any", provider: "gemini", api_key: "g-test" }] });
    const gc = (model: string, effort: string) => upstream(send(any, { model, messages: msgs, reasoning_effort: effort })).generationConfig;
    expect(gc("gemini-3-pro-preview", "low")).toEqual({ thinkingConfig: { thinkingLevel: "low" } });
    expect(gc("gemini-3-flash-preview", "medium")).toEqual({ thinkingConfig: { thinkingLevel: "medium" } });
    expect(gc("models/gemini-3.1-pro", "high")).toEqual({ thinkingConfig: { thinkingLevel: "high" } });
    expect(gc("gemini-3-flash-preview", "none")).toEqual({ thinkingConfig: { thinkingLevel: "minimal" } });
    expect(gc("gemini-3-flash-preview", "minimal")).toEqual({ thinkingConfig: { thinkingLevel: "minimal" } });
    expect(gc("gemini-2.5-flash", "medium")).toEqual({ thinkingConfig: { thinkingBudget: 8192 } });
  });

  it("a response_format schema keyword Gemini cannot express is a 400, not silently dropped (tools keep dropping it)", () => {
    const msgs = [{ role: "user", content: "x" }];
    const rf = (schema: object) => ({ model: "m", messages: msgs, response_format: { type: "json_schema", json_schema: { name: "a", schema } } });
    for (const schema of [
      { type: "object", properties: { n: { type: "integer", multipleOf: 2 } } },
      { type: "array", items: { type: "string" }, uniqueItems: true },
      { type: "object", additionalProperties: { type: "number" } },
      { type: "object", properties: { s: { not: { type: "string" } } } },
      { type: "object", properties: { n: { type: "number", exclusiveMinimum: 0 } } },
    ]) {
      const e = rejected(send(h, rf(schema)));
      expect(e.message, JSON.stringify(schema)).toMatch(/response_format\.json_schema\.schema: '\w+' has no equivalent in Gemini's response schema/);
      expect(e.type).toBe("invalid_request_error");
    }
    // additionalProperties: false (strict mode's habit) says nothing Gemini would not do: dropped.
    expect(upstream(send(h, rf({ type: "object", properties: { a: { type: "string" } }, additionalProperties: false }))).generationConfig.responseSchema).toEqual({ type: "OBJECT", properties: { a: { type: "STRING" } } });
    const tool = { type: "function", function: { name: "f", parameters: { type: "object", properties: { n: { type: "integer", multipleOf: 2 } } } } };
    expect(upstream(send(h, { model: "m", messages: msgs, tools: [tool] })).tools[0].functionDeclarations[0].parameters).toEqual({ type: "OBJECT", properties: { n: { type: "INTEGER" } } });
  });

  it("audio and PDF parts become inlineData; PDFs by URL become fileData", () => {
    const body = upstream(send(h, {
      model: "m", messages: [{
        role: "user", content: [
          { type: "input_audio", input_audio: { data: "UklGRg==", format: "wav" } },
          { type: "file", file: { filename: "report.pdf", file_data: "data:application/pdf;base64,JVBERi0=" } },
          { type: "file", file: { filename: "notes.pdf", file_data: "JVBERi0=" } },
          { type: "image_url", image_url: { url: "gs://bucket/doc.PDF" } },
        ],
      }],
    }));
    expect(body.contents[0].parts).toEqual([
      { inlineData: { mimeType: "audio/wav", data: "UklGRg==" } },
      { inlineData: { mimeType: "application/pdf", data: "JVBERi0=" } },
      { inlineData: { mimeType: "application/pdf", data: "JVBERi0=" } },
      { fileData: { mimeType: "application/pdf", fileUri: "gs://bucket/doc.PDF" } },
    ]);
  });

  it("answers a clear 400 for what Gemini cannot take", () => {
    const msgs = [{ role: "user", content: "x" }];
    const no = (extra: object, re: RegExp) => {
      const e = rejected(send(h, { model: "m", messages: msgs, ...extra }));
      expect(e.type).toBe("invalid_request_error");
      expect(e.message).toMatch(re);
    };
    no({ logprobs: true }, /'logprobs' is not supported by provider gemini/);
    no({ top_logprobs: 3 }, /'top_logprobs'/);
    no({ logit_bias: { "50256": -100 } }, /'logit_bias'/);
    no({ modalities: ["text", "audio"] }, /'modalities'/);
    no({ functions: [{ name: "f" }] }, /'functions'/);
    no({ web_search_options: {} }, /'web_search_options'/);
    no({ some_future_field: 1 }, /'some_future_field'/);
    no({ temperature: "hot" }, /temperature: must be a number/);
    no({ n: 1.5 }, /'n' must be a positive integer/); // refused by ai-proxy before any provider
    no({ stop: [1] }, /stop: must be a string or a list of strings/);
    no({ response_format: { type: "xml" } }, /response_format/);
    no({ thinking: { type: "enabled" } }, /thinking/);
    // Harmless when off or empty.
    expect(upstream(send(h, { model: "m", messages: msgs, logprobs: false, logit_bias: {}, modalities: ["text"], top_logprobs: null })).contents).toBeDefined();
  });

  it("rejects messages it cannot express, with the path of the offending part", () => {
    const no = (messages: unknown[], re: RegExp) => expect(rejected(send(h, { model: "m", messages })).message).toMatch(re);
    no([{ role: "user", content: [{ type: "image_url", image_url: { url: "ftp://x/y.png" } }] }], /messages\[0\]\.content\[0\]: must be an https/);
    no([{ role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png,rawbytes" } }] }], /only base64 data: URLs/);
    no([{ role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png;base64,@@@" } }] }], /not valid base64/);
    no([{ role: "user", content: [{ type: "file", file: { file_id: "file-123" } }] }], /messages\[0\]\.content\[0\]: a file without file_data is not supported/);
    no([{ role: "user", content: [{ type: "video", video: {} }] }], /content type 'video'/);
    no([{ role: "user", content: "x" }, { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{oops" } }] }], /messages\[1\]\.tool_calls\[0\]: function\.arguments must be a JSON object/);
    no([{ role: "user", content: "x" }, { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "[1]" } }] }], /must be a JSON object/);
    no([{ role: "user", content: "x" }, { role: "tool", tool_call_id: "nope", content: "r" }], /messages\[1\]: tool_call_id 'nope' matches no earlier assistant tool call/);
    no([{ role: "system", content: [{ type: "image_url", image_url: { url: "https://x/y.png" } }] }, { role: "user", content: "x" }], /messages\[0\]\.content\[0\]: anything but text/);
    no([{ role: "function", name: "f", content: "x" }], /role 'function'/);
    no([{ role: "system", content: "only a system prompt" }], /no non-empty user or assistant message/);
    no([{ role: "user", content: "" }], /no non-empty user or assistant message/);
  });

  it("a client-chosen model must be a plain Gemini model name: it becomes part of the path", async () => {
    const open = await makeHost({ instances: [{ name: "g", provider: "gemini", api_key: "k" }] });
    for (const model of ["../../v1beta/files", "gemini-2.5-flash:generateContent?key=x", "a/b/c", "gemini 2", "/x", "x/", "gemini-é"]) {
      expect(rejected(send(open, { model, messages: [{ role: "user", content: "x" }] })).message).toMatch(/not a valid Gemini model name/);
    }
    expect(header(send(open, { model: "tunedModels/my-model-7", messages: [{ role: "user", content: "x" }] }).upstream.headers, ":path")).toBe("/v1beta/tunedModels/my-model-7:generateContent");
    expect(header(send(open, { model: "models/gemini-2.0-flash", messages: [{ role: "user", content: "x" }] }).upstream.headers, ":path")).toBe("/v1beta/models/gemini-2.0-flash:generateContent");
  });

  it("a configured max_tokens forces maxOutputTokens; options are Gemini members and win", async () => {
    const h2 = await makeHost({
      instances: [{
        name: "g2", provider: "gemini", api_key: "k", model: "gemini-2.5-pro", max_tokens: 64, endpoint: "https://eu-gemini.example.com/v1",
        options: {
          generationConfig: { temperature: 0, responseModalities: ["TEXT"] },
          safetySettings: [{ category: "HARM_CATEGORY_HATE_SPEECH", threshold: "BLOCK_NONE" }],
          systemInstruction: { parts: [{ text: "Operator prompt." }] },
          contents: "ignored",
        },
      }],
    });
    const s = send(h2, { model: "x", messages: [{ role: "system", content: "Client prompt." }, { role: "user", content: "x" }], max_tokens: 9999, temperature: 1.5, top_p: 0.5 });
    expect(header(s.upstream.headers, ":path")).toBe("/v1/models/gemini-2.5-pro:generateContent");
    expect(header(s.upstream.headers, ":authority")).toBe("eu-gemini.example.com");
    expect(upstream(s)).toEqual({
      contents: [{ role: "user", parts: [{ text: "x" }] }],
      generationConfig: { topP: 0.5, maxOutputTokens: 64, temperature: 0, responseModalities: ["TEXT"] },
      safetySettings: [{ category: "HARM_CATEGORY_HATE_SPEECH", threshold: "BLOCK_NONE" }],
      systemInstruction: { parts: [{ text: "Operator prompt." }] },
    });
  });

  it("Anthropic clients: system, thinking and max_tokens reach Gemini", () => {
    const s = send(h, {
      model: "claude-sonnet-4-5", max_tokens: 1024, system: "Be brief.", thinking: { type: "enabled", budget_tokens: 512 }, top_k: 5,
      stop_sequences: ["STOP"], messages: [{ role: "user", content: [{ type: "text", text: "Hi" }] }],
    }, "/v1/messages", { "x-api-key": "client-anthropic" });
    expect(header(s.upstream.headers, "x-api-key")).toBeUndefined();
    expect(upstream(s)).toEqual({
      contents: [{ role: "user", parts: [{ text: "Hi" }] }],
      systemInstruction: { parts: [{ text: "Be brief." }] },
      generationConfig: { topK: 5, maxOutputTokens: 1024, stopSequences: ["STOP"], thinkingConfig: { thinkingBudget: 512, includeThoughts: true } },
    });
  });
});

describe("gemini provider: answers", () => {
  let h: Host;
  beforeAll(async () => {
    h = await makeHost();
  });

  const ask = (body: object = { model: "gpt-4o", messages: [{ role: "user", content: "Salut" }] }) => send(h, body);

  it("translates text and thoughts into a chat.completion, with the usage record", () => {
    const s = ask();
    const out = JSON.parse(reply(s, 200, "application/json; charset=UTF-8", [JSON.stringify(ANSWER)]));
    expect(out).toEqual({
      id: "resp-1", object: "chat.completion", created: NOW_S, model: "gemini-2.5-flash-001",
      choices: [{ index: 0, message: { role: "assistant", content: "Bonjour !", reasoning_content: "The user greets me.", refusal: null }, logprobs: null, finish_reason: "stop" }],
      usage: { prompt_tokens: 10, completion_tokens: 12, total_tokens: 22, prompt_tokens_details: { cached_tokens: 4 }, completion_tokens_details: { reasoning_tokens: 7 } },
    });
    expect(header(s.downstream.headers, ":status")).toBe("200");
    expect(header(s.downstream.headers, "content-type")).toBe("application/json");
    expect(usage(s)).toEqual({ prompt: "10", completion: "12", total: "22", cached: "4", reasoning: "7", source: "provider" });
    expect(s.getFilterState("sluice.model")).toBe("gemini-2.5-flash-001");
    expect(s.getFilterState("sluice.request_type")).toBe("ai_chat");
  });

  it("function calls become tool calls with stable ids; the thought signature rides in the id and comes back", () => {
    const s = ask();
    const out = JSON.parse(reply(s, 200, "application/json", [JSON.stringify(TOOL_ANSWER)]));
    const msg = out.choices[0].message;
    expect(out.choices[0].finish_reason).toBe("tool_calls");
    expect(msg.content).toBeNull();
    expect(msg.tool_calls).toEqual([
      { id: "call_resp-2_0__sig_Cv4B-3_x9Q", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Paris\"}" } },
      { id: "fc-7", type: "function", function: { name: "get_time", arguments: "{}" } },
    ]);
    expect(usage(s)).toEqual({ prompt: "30", completion: "12", total: "42", cached: "0", reasoning: "0", source: "provider" });
    // The client sends the calls back with their results: the signature returns to Gemini.
    const next = upstream(send(h, {
      model: "gpt-4o",
      messages: [
        { role: "user", content: "Weather and time in Paris?" },
        msg,
        { role: "tool", tool_call_id: msg.tool_calls[0].id, content: "{\"temp\":21}" },
        { role: "tool", tool_call_id: "fc-7", content: "12:00" },
      ],
    }));
    expect(next.contents[1]).toEqual({
      role: "model", parts: [
        { functionCall: { name: "get_weather", args: { city: "Paris" } }, thoughtSignature: "Cv4B-3_x9Q" },
        { functionCall: { name: "get_time", args: {} } },
      ],
    });
    expect(next.contents[2].parts.map((p: any) => p.functionResponse.name)).toEqual(["get_weather", "get_time"]);
  });

  it("Gemini 3 models get the documented stand-in signature for calls made elsewhere", async () => {
    const h3 = await makeHost({ instances: [{ name: "g3", provider: "gemini", api_key: "k", model: "gemini-3-pro-preview" }] });
    const messages = [
      { role: "user", content: "x" },
      { role: "assistant", content: null, tool_calls: [{ id: "toolu_01", type: "function", function: { name: "f", arguments: "{}" } }, { id: "toolu_02", type: "function", function: { name: "g", arguments: "{}" } }] },
      { role: "tool", tool_call_id: "toolu_01", content: "1" },
      { role: "tool", tool_call_id: "toolu_02", content: "2" },
    ];
    expect(upstream(send(h3, { model: "x", messages })).contents[1].parts).toEqual([
      { functionCall: { name: "f", args: {} }, thoughtSignature: "skip_thought_signature_validator" },
      { functionCall: { name: "g", args: {} } },
    ]);
    // Gemini 2.5 does not validate signatures: nothing is added there.
    expect(upstream(send(h, { model: "x", messages })).contents[1].parts).toEqual([
      { functionCall: { name: "f", args: {} } },
      { functionCall: { name: "g", args: {} } },
    ]);
  });

  it("maps every finishReason", () => {
    const cases: [string, string][] = [
      ["STOP", "stop"], ["MAX_TOKENS", "length"], ["SAFETY", "content_filter"], ["RECITATION", "content_filter"],
      ["BLOCKLIST", "content_filter"], ["PROHIBITED_CONTENT", "content_filter"], ["SPII", "content_filter"],
      ["OTHER", "stop"], ["MALFORMED_FUNCTION_CALL", "stop"], ["LANGUAGE", "stop"],
    ];
    for (const [reason, finish] of cases) {
      const s = ask();
      const body = { candidates: [{ content: { parts: [{ text: "t" }], role: "model" }, finishReason: reason }], usageMetadata: { promptTokenCount: 1, candidatesTokenCount: 1, totalTokenCount: 2 }, responseId: "r", modelVersion: "m" };
      expect(JSON.parse(reply(s, 200, "application/json", [JSON.stringify(body)])).choices[0].finish_reason, reason).toBe(finish);
    }
    // A candidate stopped for safety with no content at all: empty content, not null.
    const s = ask();
    const out = JSON.parse(reply(s, 200, "application/json", [JSON.stringify({ candidates: [{ finishReason: "SAFETY", index: 0 }], usageMetadata: { promptTokenCount: 3, totalTokenCount: 3 } })]));
    expect(out.choices[0].message.content).toBe("");
    expect(out.choices[0].finish_reason).toBe("content_filter");
  });

  it("several candidates become several choices", () => {
    const s = ask({ model: "m", messages: [{ role: "user", content: "x" }], n: 2 });
    expect(upstream(s).generationConfig).toEqual({ candidateCount: 2 });
    const body = {
      candidates: [
        { content: { parts: [{ text: "one" }], role: "model" }, finishReason: "STOP" },
        { content: { parts: [{ text: "two" }], role: "model" }, finishReason: "MAX_TOKENS", index: 1 },
      ],
      usageMetadata: { promptTokenCount: 2, candidatesTokenCount: 6, totalTokenCount: 8 }, responseId: "r", modelVersion: "m",
    };
    const out = JSON.parse(reply(s, 200, "application/json", [JSON.stringify(body)]));
    expect(out.choices.map((c: any) => [c.index, c.message.content, c.finish_reason])).toEqual([[0, "one", "stop"], [1, "two", "length"]]);
  });

  it("a blocked prompt is an answer with finish content_filter and a refusal, and its prompt is charged", () => {
    const s = ask();
    const body = { promptFeedback: { blockReason: "SAFETY", safetyRatings: [] }, usageMetadata: { promptTokenCount: 8, totalTokenCount: 8 }, modelVersion: "gemini-2.5-flash-001", responseId: "blk" };
    const out = JSON.parse(reply(s, 200, "application/json", [JSON.stringify(body)]));
    expect(out.choices).toEqual([{ index: 0, message: { role: "assistant", content: "", refusal: "The prompt was blocked by Gemini (SAFETY)." }, logprobs: null, finish_reason: "content_filter" }]);
    expect(usage(s)).toEqual({ prompt: "8", completion: "0", total: "8", cached: "0", reasoning: "0", source: "provider" });
  });

  it("Anthropic clients get a Messages answer with the thinking block", () => {
    const s = send(h, { model: "claude", max_tokens: 100, messages: [{ role: "user", content: "Salut" }] }, "/v1/messages");
    const out = JSON.parse(reply(s, 200, "application/json", [JSON.stringify(ANSWER)]));
    expect(out.type).toBe("message");
    expect(out.content).toEqual([{ type: "thinking", thinking: "The user greets me.", signature: "" }, { type: "text", text: "Bonjour !" }]);
    expect(out.stop_reason).toBe("end_turn");
    expect(out.usage).toMatchObject({ input_tokens: 6, output_tokens: 12, cache_read_input_tokens: 4 });
    const t = send(h, { model: "claude", max_tokens: 100, messages: [{ role: "user", content: "Weather?" }] }, "/v1/messages");
    const tout = JSON.parse(reply(t, 200, "application/json", [JSON.stringify(TOOL_ANSWER)]));
    expect(tout.stop_reason).toBe("tool_use");
    expect(tout.content).toEqual([
      { type: "tool_use", id: "call_resp-2_0__sig_Cv4B-3_x9Q", name: "get_weather", input: { city: "Paris" } },
      { type: "tool_use", id: "fc-7", name: "get_time", input: {} },
    ]);
  });

  it("an unreadable answer is a 502 JSON error, never a trap", () => {
    const bodies = [
      "not json", "[]", "null", "{}", "{\"candidates\":\"x\"}", "{\"error\":{\"code\":500}}",
      "{\"candidates\":[{\"content\":{\"parts\":\"x\"}}]}",
      "{\"candidates\":[null,5,\"s\",{\"index\":-1},{\"index\":1e9},{\"content\":{\"parts\":[null,{\"text\":5},{\"functionCall\":\"x\"},{\"functionCall\":{\"args\":[1]}}]}}]}",
      "{\"usageMetadata\":{\"promptTokenCount\":\"many\"}}",
    ];
    for (const b of bodies) {
      const s = ask();
      const text = reply(s, 200, "application/json", [b]);
      const out = JSON.parse(text);
      if (out.error) expect(out.error.code, b).toBe("bad_upstream_response");
      else expect(out.object, b).toBe("chat.completion");
    }
  });
});

describe("gemini provider: streams", () => {
  let h: Host;
  beforeAll(async () => {
    h = await makeHost();
  });

  function streamed(chunks: (string | Buffer)[], include_usage = true, path = "/v1/chat/completions", contentType = "text/event-stream") {
    const body = path === "/v1/messages"
      ? { model: "claude", max_tokens: 100, messages: [{ role: "user", content: "x" }], stream: true }
      : { model: "gpt-4o", messages: [{ role: "user", content: "x" }], stream: true, stream_options: { include_usage } };
    const s = send(h, body, path);
    expect(header(s.upstream.headers, ":path")).toBe("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
    const out = reply(s, 200, contentType, chunks);
    return { s, out };
  }

  it("text and thoughts: OpenAI chunks, the last usageMetadata, [DONE]", () => {
    const { s, out } = streamed([TEXT_STREAM]);
    expect(header(s.downstream.headers, "content-type")).toBe("text/event-stream");
    const chunks = dataOf(out);
    expect(chunks[chunks.length - 1]).toBe("[DONE]");
    for (const c of chunks.slice(0, -1)) {
      expect(c.id).toBe("rsp-TEXT1");
      expect(c.object).toBe("chat.completion.chunk");
      expect(c.model).toBe("gemini-2.5-flash-001");
      expect(c.created).toBe(NOW_S);
    }
    expect(chunks[0].choices[0].delta).toEqual({ role: "assistant", reasoning_content: "Weighing the greeting." });
    const a = assemble(chunks);
    expect(a.reasoning).toBe("Weighing the greeting.");
    expect(a.content).toBe("Héllo wörld 🌍!");
    expect(a.finish).toBe("stop");
    expect(a.usage).toEqual({ prompt_tokens: 9, completion_tokens: 16, total_tokens: 25, prompt_tokens_details: { cached_tokens: 3 }, completion_tokens_details: { reasoning_tokens: 12 } });
    expect(usage(s)).toEqual({ prompt: "9", completion: "16", total: "25", cached: "3", reasoning: "12", source: "provider" });
    expect(s.getFilterState("sluice.request_type")).toBe("ai_stream");
  });

  it("function calls arrive whole: one start and one arguments chunk each, finish tool_calls", () => {
    const { s, out } = streamed([TOOL_STREAM], false);
    const chunks = dataOf(out);
    const a = assemble(chunks);
    expect(a.content).toBe("Let me check.");
    expect(a.tools).toEqual([
      { id: "call_rsp-TOOL1_0__sig_Cv4B-3_x9Q", name: "get_weather", args: "{\"city\":\"Paris\",\"units\":\"metric\"}" },
      { id: "call_rsp-TOOL1_1", name: "get_time", args: "{\"tz\":\"Europe/Paris\"}" },
    ]);
    expect(a.finish).toBe("tool_calls");
    expect(a.usage).toBeNull(); // the client did not ask for usage
    const toolChunks = chunks.filter((c) => c !== "[DONE]" && c.choices[0]?.delta?.tool_calls);
    expect(toolChunks.map((c) => [c.choices[0].delta.tool_calls[0].index, !!c.choices[0].delta.tool_calls[0].id])).toEqual([[0, true], [0, false], [1, true], [1, false]]);
    expect(usage(s)).toEqual({ prompt: "40", completion: "22", total: "62", cached: "0", reasoning: "0", source: "provider" });
  });

  it("gives the same output whatever the chunk boundaries (every split point, and byte by byte)", () => {
    for (const stream of [TEXT_STREAM, TOOL_STREAM]) {
      const whole = streamed([stream]).out;
      const bytes = Buffer.from(stream, "utf8");
      for (let cut = 1; cut < bytes.length; cut++) {
        expect(streamed([bytes.subarray(0, cut), bytes.subarray(cut)]).out).toBe(whole);
      }
      for (let a = 1; a + 5 < bytes.length; a += 37) {
        expect(streamed([bytes.subarray(0, a), bytes.subarray(a, a + 5), bytes.subarray(a + 5)]).out).toBe(whole);
      }
      const single = Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
      expect(streamed(single).out).toBe(whole);
      // LF-only framing is SSE too.
      expect(streamed([stream.replace(/\r\n/g, "\n")]).out).toBe(whole);
    }
  });

  it("Anthropic clients get Messages events: thinking, text, tool_use, usage, message_stop", () => {
    const text = eventsOf(streamed([TEXT_STREAM], true, "/v1/messages").out);
    expect(text.map((e) => e.event)).toEqual([
      "message_start", "ping",
      "content_block_start", "content_block_delta", "content_block_stop",
      "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
      "message_delta", "message_stop",
    ]);
    expect(text[2].data.content_block.type).toBe("thinking");
    expect(text[5].data.content_block.type).toBe("text");
    expect(text[9].data.delta.stop_reason).toBe("end_turn");
    expect(text[9].data.usage).toMatchObject({ input_tokens: 6, output_tokens: 16, cache_read_input_tokens: 3 });
    const tools = eventsOf(streamed([TOOL_STREAM], true, "/v1/messages").out);
    const uses = tools.filter((e) => e.event === "content_block_start" && e.data.content_block.type === "tool_use");
    expect(uses.map((e) => [e.data.content_block.id, e.data.content_block.name])).toEqual([["call_rsp-TOOL1_0__sig_Cv4B-3_x9Q", "get_weather"], ["call_rsp-TOOL1_1", "get_time"]]);
    expect(tools.find((e) => e.event === "message_delta")!.data.delta.stop_reason).toBe("tool_use");
  });

  it("MAX_TOKENS and SAFETY end the stream with length and content_filter", () => {
    for (const [reason, finish] of [["MAX_TOKENS", "length"], ["SAFETY", "content_filter"]]) {
      const stream = gev({ candidates: [{ content: { parts: [{ text: "abc" }], role: "model" }, finishReason: reason }], usageMetadata: { promptTokenCount: 2, candidatesTokenCount: 1, totalTokenCount: 3 }, responseId: "r", modelVersion: "m" });
      const a = assemble(dataOf(streamed([stream]).out));
      expect(a.finish).toBe(finish);
      expect(a.content).toBe("abc");
    }
  });

  it("a blocked prompt: a refusal and finish content_filter, the prompt charged", () => {
    const { s, out } = streamed([gev({ promptFeedback: { blockReason: "PROHIBITED_CONTENT" }, usageMetadata: { promptTokenCount: 7, totalTokenCount: 7 }, responseId: "b", modelVersion: "m" })]);
    const chunks = dataOf(out);
    const a = assemble(chunks);
    expect(a.refusal).toBe("The prompt was blocked by Gemini (PROHIBITED_CONTENT).");
    expect(a.finish).toBe("content_filter");
    expect(chunks.some((c) => c !== "[DONE]" && c.error)).toBe(false);
    expect(usage(s)).toEqual({ prompt: "7", completion: "0", total: "7", cached: "0", reasoning: "0", source: "provider" });
  });

  it("an error event mid-stream: the client gets an OpenAI error chunk and [DONE]", () => {
    const first = TEXT_STREAM.split("\r\n\r\n")[1] + "\r\n\r\n";
    const err = gev({ error: { code: 503, message: "The model is overloaded. Please try again later.", status: "UNAVAILABLE" } });
    const chunks = dataOf(streamed([first, err]).out);
    expect(chunks[chunks.length - 1]).toBe("[DONE]");
    const e = chunks.find((c) => c !== "[DONE]" && c.error);
    expect(e.error).toMatchObject({ message: "The model is overloaded. Please try again later.", type: "api_error", code: "unavailable" });
    expect(assemble(chunks).content).toBe("Héllo");
  });

  it("a stream cut before the finishReason ends with an error and an estimated usage", () => {
    const parts = TEXT_STREAM.split("\r\n\r\n");
    const { s, out } = streamed([parts[0] + "\r\n\r\n" + parts[1] + "\r\n\r\n"]);
    const chunks = dataOf(out);
    expect(chunks[chunks.length - 1]).toBe("[DONE]");
    expect(chunks.find((c) => c !== "[DONE]" && c.error).error.code).toBe("upstream_incomplete");
    const u = usage(s);
    expect(u.source).toBe("estimate");
    expect(u.prompt).toBe("9"); // Gemini reported the prompt; only the output is estimated
    expect(Number(u.completion)).toBeGreaterThan(0);
  });

  it("a client that hangs up mid-stream is charged an estimate", () => {
    const s = send(h, { model: "gpt-4o", messages: [{ role: "user", content: "x" }], stream: true });
    s.callOnResponseHeaders({ ":status": "200", "content-type": "text/event-stream" }, false);
    s.callOnResponseBody(TEXT_STREAM.split("\r\n\r\n").slice(0, 2).join("\r\n\r\n") + "\r\n\r\n", false);
    s.completeHttpContext();
    const u = usage(s);
    expect(u.source).toBe("estimate");
    expect(u.prompt).toBe("9");
    expect(Number(u.completion)).toBeGreaterThan(0);
  });

  it("a JSON answer to a stream request is replayed as a stream", () => {
    const { s, out } = streamed([JSON.stringify(TOOL_ANSWER)], true, "/v1/chat/completions", "application/json");
    expect(header(s.downstream.headers, "content-type")).toBe("text/event-stream");
    const chunks = dataOf(out);
    const a = assemble(chunks);
    expect(a.tools.map((t) => t.id)).toEqual(["call_resp-2_0__sig_Cv4B-3_x9Q", "fc-7"]);
    expect(a.finish).toBe("tool_calls");
    expect(chunks[chunks.length - 1]).toBe("[DONE]");
    expect(usage(s)).toMatchObject({ prompt: "30", completion: "12", source: "provider" });
  });

  it("nothing after an error event reaches the client", () => {
    const err = gev({ error: { code: 500, message: "internal", status: "INTERNAL" } });
    const chunks = dataOf(streamed([err, TEXT_STREAM]).out);
    expect(chunks.filter((c) => c !== "[DONE]").map((c) => c.error?.code)).toEqual(["internal"]);
    expect(chunks[chunks.length - 1]).toBe("[DONE]");
  });

  it("ignores malformed and hostile events without trapping", () => {
    const junk = [
      "data: not json\r\n\r\n", "data: [1,2]\r\n\r\n", "data: null\r\n\r\n", ": keep-alive\r\n\r\n",
      gev({ candidates: "x" }), gev({ candidates: [null, 7, { index: 1e9 }, { index: -3 }, { index: 2.5 }] }),
      gev({ candidates: [{ content: { parts: [null, 3, { text: 5 }, { functionCall: 1 }, { functionCall: { name: 5, args: "s" } }] } }] }),
      gev({ usageMetadata: { promptTokenCount: "x", candidatesTokenCount: null } }),
      gev({ error: "flat string" }),
    ];
    for (const j of junk) {
      const { out } = streamed([j, TEXT_STREAM]);
      const chunks = dataOf(out);
      expect(chunks[chunks.length - 1], j).toBe("[DONE]");
    }
  });
});

describe("gemini provider: errors", () => {
  let h: Host;
  beforeAll(async () => {
    h = await makeHost();
  });

  const gerr = (code: number, status: string, message: string) => JSON.stringify({ error: { code, message, status } }, null, 2);

  it("400 INVALID_ARGUMENT: invalid_request_error with Gemini's message, nothing charged", () => {
    const s = send(h, { model: "m", messages: [{ role: "user", content: "x" }] });
    const out = JSON.parse(reply(s, 400, "application/json; charset=UTF-8", [gerr(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unknown name \"foo\": Cannot find field.")]));
    expect(header(s.downstream.headers, ":status")).toBe("400");
    expect(out).toEqual({ error: { message: "Invalid JSON payload received. Unknown name \"foo\": Cannot find field.", type: "invalid_request_error", param: null, code: "invalid_argument" } });
    expect(usage(s)).toEqual({ prompt: "0", completion: "0", total: "0", cached: "0", reasoning: "0", source: "provider" });
  });

  it("429 RESOURCE_EXHAUSTED: rate_limit_error, for streaming requests too", () => {
    for (const stream of [false, true]) {
      const s = send(h, { model: "m", messages: [{ role: "user", content: "x" }], stream });
      const body = JSON.stringify({ error: { code: 429, message: "You exceeded your current quota.", status: "RESOURCE_EXHAUSTED", details: [{ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "7s" }] } });
      const out = JSON.parse(reply(s, 429, "application/json", [body]));
      expect(header(s.downstream.headers, ":status")).toBe("429");
      expect(out.error).toMatchObject({ message: "You exceeded your current quota.", type: "rate_limit_error", code: "resource_exhausted" });
    }
  });

  it("401 / 403 / 404 / 500 / 503 / 504 keep their status with the matching type and code", () => {
    const cases: [number, string, string][] = [
      [401, "UNAUTHENTICATED", "authentication_error"], [403, "PERMISSION_DENIED", "permission_error"], [404, "NOT_FOUND", "not_found_error"],
      [400, "FAILED_PRECONDITION", "invalid_request_error"], [500, "INTERNAL", "api_error"], [503, "UNAVAILABLE", "api_error"], [504, "DEADLINE_EXCEEDED", "api_error"],
    ];
    for (const [code, status, type] of cases) {
      const s = send(h, { model: "m", messages: [{ role: "user", content: "x" }] });
      const out = JSON.parse(reply(s, code, "application/json", [gerr(code, status, `msg ${status}`)]));
      expect(header(s.downstream.headers, ":status"), status).toBe(String(code));
      expect(out.error, status).toMatchObject({ message: `msg ${status}`, type, code: status.toLowerCase() });
    }
  });

  it("an error body that is not Gemini's still gives a JSON error with the status", () => {
    const s = send(h, { model: "m", messages: [{ role: "user", content: "x" }] });
    const out = JSON.parse(reply(s, 502, "text/html", ["<html>Bad Gateway</html>"]));
    expect(out.error.type).toBe("api_error");
    const t = send(h, { model: "m", messages: [{ role: "user", content: "x" }] });
    const tout = JSON.parse(reply(t, 500, "application/json", [JSON.stringify([{ error: { code: 500, message: "array-wrapped", status: "INTERNAL" } }])]));
    expect(tout.error).toMatchObject({ message: "array-wrapped", code: "internal" });
  });

  it("Anthropic clients get Anthropic errors", () => {
    const s = send(h, { model: "claude", max_tokens: 10, messages: [{ role: "user", content: "x" }] }, "/v1/messages");
    const out = JSON.parse(reply(s, 429, "application/json", [gerr(429, "RESOURCE_EXHAUSTED", "slow down")]));
    expect(out).toEqual({ type: "error", error: { type: "rate_limit_error", message: "slow down" } });
  });
});

describe("gemini provider: embeddings", () => {
  let h: Host;
  beforeAll(async () => {
    h = await makeHost({
      instances: [
        { name: "emb", provider: "gemini", api_key: "g-emb", model: "gemini-embedding-001", options: { taskType: "RETRIEVAL_DOCUMENT", safetySettings: [] } },
      ],
    });
  });

  it("translates input lists to batchEmbedContents and the answer to OpenAI's list", () => {
    const req = { model: "text-embedding-3-small", input: ["first text", "second ✓"], dimensions: 256, encoding_format: "float", user: "u" };
    const s = send(h, req, "/v1/embeddings");
    expect(header(s.upstream.headers, ":path")).toBe("/v1beta/models/gemini-embedding-001:batchEmbedContents");
    expect(header(s.upstream.headers, "x-goog-api-key")).toBe("g-emb");
    expect(upstream(s)).toEqual({
      requests: [
        { model: "models/gemini-embedding-001", content: { parts: [{ text: "first text" }] }, outputDimensionality: 256, taskType: "RETRIEVAL_DOCUMENT" },
        { model: "models/gemini-embedding-001", content: { parts: [{ text: "second ✓" }] }, outputDimensionality: 256, taskType: "RETRIEVAL_DOCUMENT" },
      ],
    });
    const out = JSON.parse(reply(s, 200, "application/json", [JSON.stringify({ embeddings: [{ values: [0.1, -0.25, 3e-5] }, { values: [1, 0, -1] }] })]));
    expect(out).toEqual({
      object: "list",
      data: [{ object: "embedding", index: 0, embedding: [0.1, -0.25, 3e-5] }, { object: "embedding", index: 1, embedding: [1, 0, -1] }],
      model: "gemini-embedding-001",
      usage: { prompt_tokens: 0, total_tokens: 0 },
    });
    // Gemini reports no usage for embeddings: the record is the gateway's estimate of the input
    // text ("first text" and "second ✓": 20 bytes).
    const u = usage(s);
    expect(u.source).toBe("estimate");
    expect(u.prompt).toBe("5");
    expect(u.completion).toBe("0");
  });

  it("a single string input, and a usageMetadata when Gemini sends one", () => {
    const s = send(h, { model: "x", input: "hello" }, "/v1/embeddings");
    expect(upstream(s).requests).toEqual([{ model: "models/gemini-embedding-001", content: { parts: [{ text: "hello" }] }, taskType: "RETRIEVAL_DOCUMENT" }]);
    const out = JSON.parse(reply(s, 200, "application/json", [JSON.stringify({ embeddings: [{ values: [0.5] }], usageMetadata: { promptTokenCount: 2 } })]));
    expect(out.usage).toEqual({ prompt_tokens: 2, total_tokens: 2 });
    expect(usage(s)).toMatchObject({ prompt: "2", completion: "0", total: "2", source: "provider" });
  });

  it("rejects token arrays, base64 encoding and unknown fields", () => {
    const no = (body: object, re: RegExp) => expect(rejected(send(h, body, "/v1/embeddings")).message).toMatch(re);
    no({ model: "x", input: [[1, 2, 3]] }, /token arrays/);
    no({ model: "x", input: [1, 2, 3] }, /token arrays/);
    no({ model: "x", input: [] }, /input: must not be empty/);
    no({ model: "x", input: "a", encoding_format: "base64" }, /encoding_format 'base64' is not supported by provider gemini/);
    no({ model: "x", input: "a", dimensions: 0 }, /dimensions: must be a positive integer/);
    no({ model: "x", input: "a", task: "search" }, /'task' is not supported/);
  });

  it("an unreadable embeddings answer is a 502, never a trap", () => {
    for (const b of ["{}", "[]", "{\"embeddings\":[{\"values\":\"x\"}]}", "{\"embeddings\":[null]}", "{\"embeddings\":7}"]) {
      const s = send(h, { model: "x", input: "a" }, "/v1/embeddings");
      const out = JSON.parse(reply(s, 200, "application/json", [b]));
      expect(out.error?.code, b).toBe("bad_upstream_response");
    }
  });

  it("embedding errors are translated", () => {
    const s = send(h, { model: "x", input: "a" }, "/v1/embeddings");
    const out = JSON.parse(reply(s, 400, "application/json", [JSON.stringify({ error: { code: 400, message: "Request contains an invalid argument.", status: "INVALID_ARGUMENT" } })]));
    expect(out.error).toMatchObject({ type: "invalid_request_error", code: "invalid_argument" });
  });
});
