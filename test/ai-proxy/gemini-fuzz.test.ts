// Fuzz: Gemini's client API through build/ai-proxy.wasm never traps, answers every bad request with
// Gemini's error shape before anything reaches a provider, and turns any provider answer (random,
// truncated, garbage, split anywhere) into Gemini's shapes or Gemini's error, with a usage record
// of non-negative integers. Deterministic: fast-check with a fixed seed (SLUICE_FC_SEED overrides;
// SLUICE_FC_RUNS scales the runs).
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import fc from "fast-check";
import type { Host } from "../../host/index.js";
import { recordedStreams } from "../../scripts/mocks/recorded.js";
import { proxyHost, header } from "./helpers.js";

const SEED = Number(process.env.SLUICE_FC_SEED ?? 515151);
const SCALE = Number(process.env.SLUICE_FC_RUNS ?? 1);
const FC = (n: number) => ({ seed: SEED, numRuns: Math.max(1, Math.round(n * SCALE)) });

const CONFIG = {
  instances: [
    { name: "oa", provider: "openai", api_key: "sk-oa", models: ["fz-openai"], model: "gpt-4o-mini" },
    { name: "an", provider: "anthropic", api_key: "sk-ant", models: ["fz-anthropic"], model: "claude-sonnet-4-5" },
    { name: "ge", provider: "gemini", api_key: "gm-key", models: ["gemini-*"] },
  ],
};
const MODELS = ["fz-openai", "fz-anthropic", "gemini-2.5-flash"];
const METHODS = ["generateContent", "streamGenerateContent", "streamGenerateContent?alt=sse", "countTokens"];

let h: Host;
beforeAll(async () => {
  h = await proxyHost(CONFIG);
});
afterAll(() => h?.close());

function noTrap(what: string) {
  const fatal = h.getLogEntries().filter((e) => (e.level === "error" || e.level === "critical") && /failed|RuntimeError|abort|unreachable/i.test(e.message));
  if (fatal.length) throw new Error(`trap after ${what}: ${fatal[0].message}`);
}

function expectGeminiError(body: Buffer, status: number, what: string) {
  const e = JSON.parse(body.toString("utf8"));
  if (!e.error || e.error.code !== status || typeof e.error.message !== "string" || typeof e.error.status !== "string" || Object.keys(e).length !== 1) {
    throw new Error(`${what}: not Gemini's error shape for ${status}: ${body.toString().slice(0, 300)}`);
  }
}

function checkUsage(s: ReturnType<Host["newStream"]>, what: string) {
  if (s.getFilterState("sluice.usage_source") === undefined) return;
  for (const k of ["prompt_tokens", "completion_tokens", "total_tokens"]) {
    const v = s.getFilterState(`sluice.${k}`);
    if (!/^\d+$/.test(v ?? "")) throw new Error(`${what}: usage ${k}=${v}`);
  }
}

// A valid request, then mutated anywhere: wrong types, removed members, odd values, deep nesting.
const VALID = {
  systemInstruction: { parts: [{ text: "Be brief." }] },
  contents: [
    { role: "user", parts: [{ text: "héllo 🌍" }, { inlineData: { mimeType: "image/png", data: "aGk=" } }] },
    { role: "model", parts: [{ functionCall: { name: "f", args: { a: 1 } } }] },
    { role: "user", parts: [{ functionResponse: { name: "f", response: { ok: true } } }] },
  ],
  tools: [{ functionDeclarations: [{ name: "f", parameters: { type: "OBJECT", properties: { a: { type: "INTEGER" } } } }] }],
  toolConfig: { functionCallingConfig: { mode: "AUTO" } },
  generationConfig: { temperature: 0.5, maxOutputTokens: 50, responseMimeType: "application/json", responseSchema: { type: "OBJECT" }, thinkingConfig: { thinkingBudget: 100 } },
};

const oddValue = fc.oneof(
  fc.constant(null), fc.boolean(), fc.integer(), fc.double(), fc.string(), fc.constant(""), fc.constant([]), fc.constant({}),
  fc.constant("x".repeat(5000)), fc.constant({ parts: "no" }), fc.constant([{ text: 1 }]), fc.constant({ type: "NOPE" }),
  fc.constant([[[[[[[[[[[]]]]]]]]]]]), fc.constant(-1), fc.constant(1e308), fc.constant("\u0000\ud800"),
);

function paths(v: unknown, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out));
  else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) paths(x, [...at, k], out);
  return out;
}

function mutate(base: unknown, at: (string | number)[], value: unknown, remove: boolean): unknown {
  const copy = structuredClone(base) as any;
  if (at.length === 0) return value;
  let p = copy;
  for (const k of at.slice(0, -1)) p = p[k];
  const last = at.at(-1)!;
  if (remove && !Array.isArray(p)) delete p[last];
  else p[last] = value;
  return copy;
}

const ALL_PATHS = paths(VALID);

describe("Gemini clients: fuzzed requests", () => {
  it("never trap; a refusal is Gemini's error shape and nothing went upstream", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...MODELS), fc.constantFrom(...METHODS), fc.constantFrom(...ALL_PATHS), oddValue, fc.boolean(), fc.boolean(),
        (model, method, at, value, remove, truncate) => {
          let body = JSON.stringify(mutate(VALID, at, value, remove));
          if (truncate) body = body.slice(0, Math.floor(body.length / 2));
          const what = `${model}:${method} ${body.slice(0, 200)}`;
          const s = h.newStream();
          s.callOnRequestHeaders({ ":method": "POST", ":path": `/v1beta/models/${model}:${method}`, ":authority": "gw", "content-type": "application/json" }, false);
          s.callOnRequestBody(body, true);
          const r = s.getSentLocalResponse();
          if (r && r.statusCode !== 200) {
            expectGeminiError(r.body, r.statusCode, what);
            expect(s.upstream.headers, what).toBeNull();
          }
          s.completeHttpContext();
          noTrap(what);
        },
      ),
      FC(300),
    );
  });

  it("hostile models in the path are refused or kept out of the upstream path", () => {
    for (const model of ["..%2F..%2Fetc", "a%0d%0ab", "%zz", "x".repeat(3000), "gemini-2.5-flash%00", "models%2Fgemini-2.5-flash"]) {
      const s = h.newStream();
      s.callOnRequestHeaders({ ":method": "POST", ":path": `/v1beta/models/${model}:generateContent`, ":authority": "gw", "content-type": "application/json" }, false);
      if (!s.getSentLocalResponse()) s.callOnRequestBody(JSON.stringify({ contents: [{ parts: [{ text: "x" }] }] }), true);
      const r = s.getSentLocalResponse();
      if (r) expectGeminiError(r.body, r.statusCode, model);
      else expect(header(s.upstream.headers, ":path"), model).toMatch(/^[\x21-\x7e]+$/);
      s.completeHttpContext();
      noTrap(model);
    }
  });
});

describe("Gemini clients: fuzzed answers", () => {
  const recorded = recordedStreams();
  const streams = [...Object.values(recorded.openai), ...Object.values(recorded.anthropic), ...Object.values(recorded.gemini)];
  const garbage = fc.oneof(
    fc.constantFrom(...streams.map((r) => Buffer.from(r.bytes))),
    fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a)),
    fc.string().map((t) => Buffer.from(`data: ${t}\n\n`)),
    fc.constant(Buffer.from('{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":"not an object"}}]}}]}')),
    fc.constant(Buffer.from('{"choices":[{"message":{"tool_calls":[{"id":"1","function":{"name":"f","arguments":"{bad json"}}]},"finish_reason":"tool_calls"}]}')),
  );

  it("never trap, and the client gets Gemini's shapes or Gemini's error", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...MODELS), fc.constantFrom("generateContent", "streamGenerateContent", "streamGenerateContent?alt=sse"),
        fc.constantFrom(200, 200, 400, 429, 500, 503), fc.constantFrom("application/json", "text/event-stream", "text/plain"),
        garbage, fc.array(fc.nat(), { maxLength: 6 }),
        (model, method, status, contentType, body, cuts) => {
          const what = `${model}:${method} ← ${status} ${contentType} ${body.toString("latin1").slice(0, 120)}`;
          const s = h.newStream();
          s.callOnRequestHeaders({ ":method": "POST", ":path": `/v1beta/models/${model}:${method}`, ":authority": "gw", "content-type": "application/json" }, false);
          s.callOnRequestBody(JSON.stringify({ contents: [{ parts: [{ text: "hi" }] }] }), true);
          expect(s.getSentLocalResponse(), what).toBeNull();
          s.callOnResponseHeaders({ ":status": String(status), "content-type": contentType }, false);
          const points = [...new Set(cuts.map((c) => c % (body.length + 1)))].sort((a, b) => a - b);
          let at = 0;
          for (const p of points) {
            s.callOnResponseBody(body.subarray(at, p), false);
            at = p;
          }
          s.callOnResponseBody(body.subarray(at), true);
          s.completeHttpContext();
          noTrap(what);
          checkUsage(s, what);
          const out = s.downstream.body;
          const ct = header(s.downstream.headers, "content-type");
          const code = Number(header(s.downstream.headers, ":status"));
          if (code >= 400 && ct === "application/json") expectGeminiError(out, code, what);
          if (method === "streamGenerateContent" && code === 200 && !model.startsWith("gemini")) {
            // A translated JSON-array stream is always one whole JSON array.
            const arr = JSON.parse(out.toString("utf8"));
            expect(Array.isArray(arr), what).toBe(true);
          }
        },
      ),
      FC(300),
    );
  });
});
