// Adversarial input at every entry point of ai-proxy, through build/ai-proxy.wasm: the filter may
// reject, translate or pass through, but it never traps (a trap fails the VM: Envoy logs
// "Function: ... failed: Uncaught RuntimeError" and answers every later request 503).
//
// Request side (POST /v1/chat/completions, /v1/messages, /v1/responses, /v1/embeddings, against every provider
// instance): truncated JSON at every byte, invalid UTF-8, lone surrogates in \u escapes, nesting
// 10,000 deep, huge numbers, NaN/Infinity and other non-JSON literals, duplicate keys, and
// requests generated with fast-check from a model of OpenAI's and Anthropic's request schemas in
// which any field, at any depth, may have the wrong type. A rejection is a 4xx with
// content-type application/json and the client format's error body ({"error":{...}} for OpenAI
// clients, {"type":"error","error":{...}} for Anthropic clients); a request that goes through
// reaches the provider as valid UTF-8 JSON.
//
// Response side (every provider, OpenAI, Anthropic and Responses clients, plain and streaming, embeddings):
// random JSON, truncated answers, wrong shapes, random SSE garbage, giant SSE events, provider
// error statuses with any body. The client gets a translated answer, a JSON error in its format,
// or a stream with a proper ending (data: [DONE]; message_stop or an error event).
//
// Deterministic: fast-check runs with a fixed seed (SLUICE_FC_SEED overrides it, SLUICE_FC_RUNS
// scales the runs); a failure names the seed, the path and the shrunk input.
import { describe, it, expect, afterEach } from "vitest";
import fc from "fast-check";
import type { Host } from "../../host/index.js";
import { recordedStreams, recordedResponsesStreams, type RecordedStream } from "../../scripts/mocks/recorded.js";
import { proxyHost, header } from "./helpers.js";

const SEED = Number(process.env.SLUICE_FC_SEED ?? 424242);
const SCALE = Number(process.env.SLUICE_FC_RUNS ?? 1);
const runs = (n: number) => Math.max(1, Math.round(n * SCALE));
const FC = (n: number) => ({ seed: SEED, numRuns: runs(n) });
const CLOCK_NS = 1_735_689_600_000_000_000n;

// ---------------------------------------------------------------------------------------------
// Configuration: one instance per provider family, picked by the request's model.

const PROVIDERS = ["openai", "azure-openai", "anthropic", "gemini", "deepseek", "mistral", "openai-compatible"] as const;
type Provider = (typeof PROVIDERS)[number];

/** The client model that routes to each provider's instance. */
const MODEL: Record<Provider, string> = {
  openai: "fz-openai",
  "azure-openai": "fz-azure",
  anthropic: "fz-anthropic",
  gemini: "gemini-2.5-flash", // the Gemini instance sends the client's model: it becomes part of the upstream path
  deepseek: "fz-deepseek",
  mistral: "fz-mistral",
  "openai-compatible": "fz-compat",
};

const CONFIG = {
  instances: [
    { name: "oa", provider: "openai", api_key: "sk-oa", models: ["fz-openai"], model: "gpt-4o-mini" },
    { name: "az", provider: "azure-openai", api_key: "az-key", endpoint: "https://res.openai.azure.com/openai", deployment: "gpt4o-prod", models: ["fz-azure"] },
    { name: "an", provider: "anthropic", api_key: "sk-ant", models: ["fz-anthropic"], model: "claude-sonnet-4-5" },
    { name: "ge", provider: "gemini", api_key: "gm-key", models: ["gemini-*"] },
    { name: "ds", provider: "deepseek", api_key: "ds-key", models: ["fz-deepseek"], model: "deepseek-chat" },
    { name: "mi", provider: "mistral", api_key: "mi-key", models: ["fz-mistral"], model: "mistral-small-latest", max_tokens: 512 },
    { name: "oc", provider: "openai-compatible", endpoint: "http://vllm.internal:8000/v1", models: ["fz-compat"], options: { top_k: 40 } },
  ],
};

const CHAT = "/v1/chat/completions";
const MESSAGES = "/v1/messages";
const EMBEDDINGS = "/v1/embeddings";
const RESPONSES = "/v1/responses";
const PATHS = [CHAT, MESSAGES, EMBEDDINGS, RESPONSES] as const;
type Path = (typeof PATHS)[number];
type Client = "openai" | "anthropic";
const clientOf = (path: string): Client => (path === MESSAGES ? "anthropic" : "openai");

type S = ReturnType<Host["newStream"]>;

const open: Host[] = [];
async function newHost(configuration: object = CONFIG): Promise<Host> {
  const h = await proxyHost(configuration, { clock: () => CLOCK_NS });
  open.push(h);
  return h;
}
afterEach(() => {
  for (const h of open.splice(0)) h.close();
});

// ---------------------------------------------------------------------------------------------
// Invariants

const FATAL = /failed|RuntimeError|abort|unreachable|proc_exit/i;

/** Throws if the host logged a trap (or anything at error/critical that looks like one) since the last call. */
class TrapWatch {
  private seen = 0;
  constructor(readonly h: Host) {}
  check(what: () => string): void {
    const entries = this.h.getLogEntries();
    for (let i = this.seen; i < entries.length; i++) {
      const e = entries[i];
      if ((e.level === "error" || e.level === "critical") && FATAL.test(e.message)) {
        this.seen = entries.length;
        throw new Error(`trap: ${e.message}\n  after: ${what()}`);
      }
    }
    this.seen = entries.length;
  }
}

function preview(body: string | Buffer, n = 300): string {
  const t = typeof body === "string" ? body : body.toString("latin1");
  return JSON.stringify(t.length > n ? t.slice(0, n) + `…(${t.length} chars)` : t);
}

function isValidUtf8(b: Buffer): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}

/** The error body of a client format, or a message saying why it is not one. */
function errorShapeProblem(body: unknown, client: Client): string | null {
  const o = body as Record<string, any>;
  if (o === null || typeof o !== "object" || Array.isArray(o)) return "not a JSON object";
  if (client === "anthropic") {
    if (o.type !== "error") return "type is not \"error\"";
    if (!o.error || typeof o.error !== "object") return "no error object";
    if (typeof o.error.type !== "string" || typeof o.error.message !== "string") return "error.type / error.message are not strings";
    return null;
  }
  if (!o.error || typeof o.error !== "object" || Array.isArray(o.error)) return "no error object";
  if (typeof o.error.message !== "string" || typeof o.error.type !== "string") return "error.message / error.type are not strings";
  return null;
}

/** A JSON error reply (status, content-type, body) in the client's format, or throws. */
function expectJsonError(status: number, headers: [string, string][], body: Buffer, client: Client, what: string): unknown {
  const ct = header(headers, "content-type");
  if (ct !== "application/json") throw new Error(`${what}: error reply with content-type ${ct}, body ${preview(body)}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    throw new Error(`${what}: status ${status} with a body that is not JSON: ${preview(body)}`);
  }
  const why = errorShapeProblem(parsed, client);
  if (why) throw new Error(`${what}: status ${status} body is not a ${client} error (${why}): ${preview(body)}`);
  return parsed;
}

/** The usage record, when written, holds non-negative integers a consumer can read exactly. */
function checkUsageRecord(s: S, what: string): void {
  const source = s.getFilterState("sluice.usage_source");
  if (source === undefined) return;
  if (source !== "provider" && source !== "estimate") throw new Error(`${what}: usage_source ${source}`);
  for (const k of ["prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens"]) {
    const v = s.getFilterState(`sluice.${k}`);
    if (v === undefined || !/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) {
      throw new Error(`${what}: usage record ${k}=${v} is not a non-negative safe integer (source ${source})`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Request side

interface SendOptions {
  method?: string;
  headers?: Record<string, string>;
  /** Body chunk boundaries (byte offsets). */
  cuts?: number[];
}

function sendRaw(h: Host, path: string, body: string | Buffer, o: SendOptions = {}): S {
  const s = h.newStream();
  s.callOnRequestHeaders({
    ":method": o.method ?? "POST", ":path": path, ":authority": "gateway.local", ":scheme": "http",
    "content-type": "application/json", authorization: "Bearer client-secret", "x-api-key": "client-key",
    ...o.headers,
  }, false);
  const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  const cuts = [...new Set((o.cuts ?? []).filter((c) => c > 0 && c < bytes.length))].sort((a, b) => a - b);
  let at = 0;
  for (const c of cuts) {
    s.callOnRequestBody(bytes.subarray(at, c), false);
    at = c;
  }
  s.callOnRequestBody(bytes.subarray(at), true);
  return s;
}

type RequestOutcome = { kind: "rejected"; status: number; body: unknown } | { kind: "forwarded"; body: unknown };

/**
 * The request-side invariants: a rejection is a 4xx JSON error in the client's format with nothing
 * sent upstream; a forwarded request is targeted and its body is valid UTF-8 JSON.
 */
function checkRequest(w: TrapWatch, s: S, path: string, body: string | Buffer): RequestOutcome {
  const what = () => `POST ${path} ${preview(body)}`;
  w.check(what);
  const local = s.getSentLocalResponse();
  if (local) {
    if (local.statusCode < 400 || local.statusCode > 499) throw new Error(`${what()}: rejected with status ${local.statusCode}: ${preview(local.body)}`);
    if (s.upstream.headers !== null) throw new Error(`${what()}: rejected, yet headers went upstream`);
    const parsed = expectJsonError(local.statusCode, local.headers, local.body, clientOf(path), what());
    s.completeHttpContext();
    w.check(what);
    return { kind: "rejected", status: local.statusCode, body: parsed };
  }
  const up = s.upstream.headers;
  if (up === null) throw new Error(`${what()}: neither rejected nor sent upstream`);
  if (!header(up, "x-sluice-cluster")) throw new Error(`${what()}: forwarded without the cluster header`);
  const p = header(up, ":path") ?? "";
  if (!p.startsWith("/") || /[\s\u0000-\u001f]/.test(p)) throw new Error(`${what()}: upstream :path ${JSON.stringify(p)}`);
  const ub = s.upstream.body;
  if (!isValidUtf8(ub)) throw new Error(`${what()}: the body sent upstream is not valid UTF-8: ${preview(ub)}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(ub.toString("utf8"));
  } catch (e) {
    throw new Error(`${what()}: the body sent upstream is not JSON (${(e as Error).message}): ${preview(ub, 600)}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error(`${what()}: the body sent upstream is not a JSON object`);
  s.completeHttpContext(); // the client goes away: the usage estimate path
  w.check(what);
  checkUsageRecord(s, what());
  return { kind: "forwarded", body: parsed };
}

/** A normal request on the same host still works (a trap would have failed the VM: 503). */
function expectHealthy(h: Host): void {
  const s = sendRaw(h, CHAT, JSON.stringify({ model: MODEL.openai, messages: [{ role: "user", content: "still there?" }] }));
  const local = s.getSentLocalResponse();
  if (local) throw new Error(`a normal request after the fuzzing got ${local.statusCode} ${local.statusDetails}: ${preview(local.body)}`);
  s.callOnResponseHeaders({ ":status": "200", "content-type": "application/json" }, false);
  s.callOnResponseBody(JSON.stringify({ id: "c1", object: "chat.completion", created: 1, model: "gpt-4o-mini", choices: [{ index: 0, message: { role: "assistant", content: "yes" }, finish_reason: "stop" }], usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 } }), true);
  s.completeHttpContext();
  expect(header(s.downstream.headers, ":status")).toBe("200");
  expect(JSON.parse(s.downstream.body.toString()).choices[0].message.content).toBe("yes");
  expect(s.getFilterState("sluice.total_tokens")).toBe("4");
}

// Realistic bodies for each entry point.
const OPENAI_BODY = {
  model: MODEL.openai,
  messages: [
    { role: "system", content: "You are terse. Réponds en français — 简短 🙂." },
    { role: "user", content: [{ type: "text", text: "What is in this image, and the weather in São Paulo?" }, { type: "image_url", image_url: { url: "https://example.com/cat.png", detail: "low" } }] },
    { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"São Paulo\"}" } }] },
    { role: "tool", tool_call_id: "call_1", content: "{\"temp\":21.5,\"unit\":\"celsius\"}" },
    { role: "user", content: "Thanks! And tomorrow?" },
  ],
  tools: [{ type: "function", function: { name: "get_weather", description: "Weather for a city", parameters: { type: "object", properties: { city: { type: "string" }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } }, required: ["city"] } } }],
  tool_choice: "auto", temperature: 0.7, top_p: 0.9, max_completion_tokens: 300, stop: ["\n\n"], stream: true,
  stream_options: { include_usage: true }, user: "user-1234",
};

const ANTHROPIC_BODY = {
  model: MODEL.anthropic, max_tokens: 1024, system: [{ type: "text", text: "You are terse. 简短 🙂." }],
  messages: [
    { role: "user", content: [{ type: "text", text: "Weather in São Paulo?" }, { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } }] },
    { role: "assistant", content: [{ type: "text", text: "Checking." }, { type: "tool_use", id: "toolu_01", name: "get_weather", input: { city: "São Paulo" } }] },
    { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_01", content: [{ type: "text", text: "21.5 °C" }] }, { type: "text", text: "Tomorrow?" }] },
  ],
  tools: [{ name: "get_weather", description: "Weather for a city", input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } }],
  tool_choice: { type: "auto" }, temperature: 0.5, stop_sequences: ["END"], stream: true, metadata: { user_id: "u-9" },
};

const EMBEDDINGS_BODY = { model: MODEL.openai, input: ["héllo wörld", "你好 🌍", "plain"], encoding_format: "float", dimensions: 256, user: "u-1" };

const RESPONSES_BODY = {
  model: MODEL.openai, instructions: "You are terse. Réponds en français — 简短 🙂.",
  input: [
    { role: "user", content: [{ type: "input_text", text: "What is in this image, and the weather in São Paulo?" }, { type: "input_image", image_url: "https://example.com/cat.png", detail: "low" }] },
    { type: "function_call", call_id: "call_1", name: "get_weather", arguments: "{\"city\":\"São Paulo\"}" },
    { type: "function_call_output", call_id: "call_1", output: "{\"temp\":21.5,\"unit\":\"celsius\"}" },
    { type: "reasoning", id: "rs_1", summary: [], encrypted_content: "gAAAA" },
    { type: "message", role: "assistant", content: [{ type: "output_text", text: "21.5 °C." }] },
    { role: "user", content: "Thanks! And tomorrow?" },
  ],
  tools: [{ type: "function", name: "get_weather", description: "Weather for a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }, strict: true }],
  tool_choice: "auto", temperature: 0.7, top_p: 0.9, max_output_tokens: 300, stream: true, store: false, metadata: { trace: "t-1" },
  text: { format: { type: "json_schema", name: "w", schema: { type: "object" }, strict: true } }, reasoning: { effort: "low" },
};

const REALISTIC: Record<Path, object> = { [CHAT]: OPENAI_BODY, [MESSAGES]: ANTHROPIC_BODY, [EMBEDDINGS]: EMBEDDINGS_BODY, [RESPONSES]: RESPONSES_BODY };

function withModel(body: object, provider: Provider): object {
  return { ...body, model: MODEL[provider] };
}

// ---- Values for the request-schema model -----------------------------------------------------

/** A literal JSON token placed verbatim in the body (numbers JavaScript cannot hold). */
const RAW = (text: string) => `@@RAW(${text})@@`;
const materialize = (json: string) => json.replace(/"@@RAW\((.*?)\)@@"/g, "$1");

const HUGE_NUMBERS = [
  "1e999", "-1e999", "1e-999", "1E+308", "-1.7976931348623157e309", "123456789012345678901234567890",
  "9007199254740993", "-9223372036854775809", "18446744073709551616", "-0", "-0.0", "0.0000000000000000000001",
  "1" + "0".repeat(400), "0." + "0".repeat(400) + "1", "4294967296", "2147483648", "1.5", "1e2",
];

const STRANGE_STRINGS = [
  "", "\u0000", "\ud800", "a\udc00b", "\udfff\ud800", "\ud83d\ud83d", "🌍".repeat(3), "é", "\u2028\u2029", "\"\\/\b\f\n\r\t",
  "x".repeat(2000), "../../etc/passwd", "gemini-../../v1/x", "a/b", "?x=1#y", "%00", "\r\nX-Injected: 1",
];

const weird: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(null, true, false, 0, -1, 1.5, [], {}, [null], { "": null }, [[[]]], { type: null }),
  fc.constantFrom(...STRANGE_STRINGS),
  fc.constantFrom(...HUGE_NUMBERS.map(RAW)),
  fc.string({ maxLength: 8 }),
  fc.string({ unit: "binary", maxLength: 6 }),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.jsonValue({ maxDepth: 2 }),
);

/** Mostly the valid value, sometimes anything else. */
function f<T>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 30, arbitrary: valid as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: weird });
}

/** Every node of a JSON tree, as a path from the root. */
function nodePaths(v: unknown, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => nodePaths(x, [...at, i], out));
  else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) nodePaths(x, [...at, k], out);
  return out;
}

type Mutation = { op: "replace" | "delete" | "add" | "wrap" | "stringify"; at: number; value: unknown };
const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  op: fc.constantFrom<Mutation["op"]>("replace", "replace", "replace", "replace", "delete", "delete", "add", "wrap", "stringify"),
  at: fc.nat(),
  value: weird,
});

/** Applies mutations at nodes anywhere in the tree (the root included). */
function mutate(root: unknown, mutations: Mutation[]): unknown {
  let tree = structuredClone(root);
  for (const m of mutations) {
    const paths = nodePaths(tree);
    const path = paths[m.at % paths.length];
    const parentPath = path.slice(0, -1);
    const key = path.at(-1);
    const parent = parentPath.reduce<any>((o, k) => o[k], tree);
    const node = key === undefined ? tree : parent[key];
    let next: unknown;
    if (m.op === "replace") next = m.value;
    else if (m.op === "wrap") next = [node];
    else if (m.op === "stringify") next = JSON.stringify(node) ?? "null";
    else if (m.op === "add") {
      if (node && typeof node === "object" && !Array.isArray(node)) next = { ...node, [String(m.value).slice(0, 12) || "x"]: m.value };
      else if (Array.isArray(node)) next = [...node, m.value];
      else next = m.value;
    } else {
      // delete: a member or an item; the root cannot go
      if (key === undefined) continue;
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete parent[key];
      continue;
    }
    if (key === undefined) tree = next;
    else parent[key] = next;
  }
  return tree;
}

/** A request from the model, with up to two mutations anywhere in it. */
const mutated = (arb: fc.Arbitrary<Record<string, unknown>>) =>
  fc.tuple(arb, fc.oneof({ weight: 1, arbitrary: fc.constant<Mutation[]>([]) }, { weight: 3, arbitrary: fc.array(mutationArb, { minLength: 1, maxLength: 2 }) }))
    .map(([o, ms]) => mutate(o, ms) as Record<string, unknown>);

/** An object with the required members and any of the optional ones. */
const opt = <T extends Record<string, fc.Arbitrary<unknown>>>(model: T, required: (keyof T)[] = []) =>
  fc.record(model, { requiredKeys: required as never[] });

/**
 * An object with the required members and at most `max` of the optional ones: a request with a
 * dozen odd members is refused for the first one, so the translation behind it would go untested.
 */
function some<T extends Record<string, fc.Arbitrary<unknown>>>(model: T, required: (keyof T & string)[], max: number): fc.Arbitrary<Record<string, unknown>> {
  const optional = Object.keys(model).filter((k) => !required.includes(k as keyof T & string));
  return fc.subarray(optional, { maxLength: max }).chain((keys) => {
    const chosen: Record<string, fc.Arbitrary<unknown>> = {};
    for (const k of Object.keys(model)) if (required.includes(k as keyof T & string) || keys.includes(k)) chosen[k] = model[k];
    return fc.record(chosen);
  });
}

const text = fc.oneof(fc.constantFrom("Hello", "héllo wörld 🌍 — 你好", "", "Say \"hi\"\n"), fc.string({ maxLength: 12 }));
const toolName = fc.constantFrom("get_weather", "lookup", "", "a-b.c", "x".repeat(70));
const callId = fc.constantFrom("call_1", "call_2", "toolu_01", "", "call_x__sig_QUJD", "call_y__sig_!!");
const imageUrl = fc.constantFrom(
  "https://example.com/a.png", "http://x.test/b.JPEG?x=1", "data:image/png;base64,iVBORw0KGgo=", "data:image/png,plain",
  "data:;base64,", "data:image/png;name=a.png;base64,AAAA", "gs://bucket/o.webp", "ftp://x/y.gif", "data:image/png;base64,!!!", "", "data:",
);

const schema: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: "small", withCrossShrink: true }, tie("leaf"), tie("object"), tie("array"), tie("union"), tie("ref"), weird),
  leaf: opt({
    type: f(fc.constantFrom<unknown>("string", "number", "integer", "boolean", "null", ["string", "null"], ["integer", "string"], "weird")),
    description: f(text), enum: f(fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 })), const: fc.jsonValue({ maxDepth: 1 }),
    format: f(fc.constantFrom("date-time", "email", "int32", "enum")), default: fc.jsonValue({ maxDepth: 1 }), minimum: f(fc.integer()),
    nullable: f(fc.boolean()), pattern: f(text),
  }),
  object: opt({
    type: f(fc.constant("object")),
    properties: f(fc.dictionary(fc.constantFrom("a", "b", "$ref", "type", "properties", ""), tie("node"), { maxKeys: 3 })),
    required: f(fc.array(f(fc.constantFrom("a", "b", "zz")), { maxLength: 3 })),
    additionalProperties: f(fc.oneof(fc.boolean(), tie("node"))),
    $defs: f(fc.dictionary(fc.constantFrom("X", "Y"), tie("node"), { maxKeys: 2 })),
    definitions: f(fc.dictionary(fc.constantFrom("X"), tie("node"), { maxKeys: 1 })),
    propertyOrdering: f(fc.array(f(fc.constantFrom("a", "b")), { maxLength: 2 })),
  }),
  array: opt({ type: f(fc.constant("array")), items: f(fc.oneof(tie("node"), fc.array(tie("node"), { maxLength: 2 }))), minItems: f(fc.nat()), maxItems: f(fc.nat()) }),
  union: fc.oneof(
    opt({ anyOf: f(fc.array(tie("node"), { maxLength: 3 })) }, ["anyOf"]),
    opt({ oneOf: f(fc.array(tie("node"), { maxLength: 3 })) }, ["oneOf"]),
    opt({ allOf: f(fc.array(tie("node"), { maxLength: 2 })), description: f(text) }, ["allOf"]),
  ),
  ref: opt({
    $ref: f(fc.constantFrom("#/$defs/X", "#/$defs/Y", "#/definitions/X", "#", "#/$defs/missing", "https://x.test/s.json", "#/$defs/X/properties/a", "#/$defs/")),
    description: f(text), $defs: f(fc.dictionary(fc.constantFrom("X", "Y"), tie("node"), { maxKeys: 2 })),
  }, ["$ref"]),
})).node;

// ---- OpenAI chat request model ----

const oaTextPart = opt({ type: f(fc.constant("text")), text: f(text) }, ["type", "text"]);
const oaImagePart = opt({ type: f(fc.constant("image_url")), image_url: f(fc.oneof(opt({ url: f(imageUrl), detail: f(fc.constantFrom("auto", "low", "high")) }, ["url"]), imageUrl)) }, ["type", "image_url"]);
const oaAudioPart = opt({ type: f(fc.constant("input_audio")), input_audio: f(opt({ data: f(fc.constantFrom("UklGRg==", "", "!!")), format: f(fc.constantFrom("wav", "mp3", "x/y")) })) }, ["type"]);
const oaFilePart = opt({ type: f(fc.constant("file")), file: f(opt({ file_data: f(fc.constantFrom("data:application/pdf;base64,JVBERi0=", "JVBERi0=", "")), file_id: f(fc.constantFrom("file-1")), filename: f(fc.constantFrom("a.pdf", "b.png", "")) })) }, ["type"]);
const oaRefusalPart = opt({ type: f(fc.constant("refusal")), refusal: f(text) }, ["type"]);
const oaToolCall = opt({
  id: f(callId), type: f(fc.constantFrom("function", "custom")),
  function: f(opt({ name: f(toolName), arguments: f(fc.oneof(fc.constantFrom("{\"city\":\"Paris\"}", "", "{}", "[1]", "not json", "{\"a\":", "\"s\"", "null"), fc.json({ maxDepth: 2 }), fc.jsonValue({ maxDepth: 2 }))) }, ["name"])),
}, ["id", "function"]);
const oaMessage = fc.oneof(
  { weight: 2, arbitrary: opt({ role: f(fc.constantFrom("system", "developer")), content: f(fc.oneof(text, fc.array(f(oaTextPart), { maxLength: 2 }))), name: f(text) }, ["role", "content"]) },
  { weight: 5, arbitrary: opt({ role: f(fc.constant("user")), content: f(fc.oneof(text, fc.array(f(fc.oneof({ weight: 3, arbitrary: oaTextPart }, { weight: 2, arbitrary: oaImagePart }, { weight: 1, arbitrary: oaAudioPart }, { weight: 1, arbitrary: oaFilePart })), { maxLength: 3 }))), name: f(text) }, ["role", "content"]) },
  { weight: 3, arbitrary: opt({
    role: f(fc.constant("assistant")), content: f(fc.oneof(text, fc.constant(null), fc.array(f(fc.oneof(oaTextPart, oaRefusalPart)), { maxLength: 2 }))),
    tool_calls: f(fc.array(f(oaToolCall), { maxLength: 2 })), refusal: f(text), reasoning_content: f(text),
    function_call: f(opt({ name: f(toolName), arguments: f(text) })),
  }, ["role"]) },
  { weight: 2, arbitrary: opt({ role: f(fc.constant("tool")), tool_call_id: f(callId), content: f(fc.oneof(text, fc.array(f(fc.oneof(oaTextPart, oaImagePart)), { maxLength: 2 }))) }, ["role", "content"]) },
  { weight: 1, arbitrary: opt({ role: f(fc.constantFrom("function", "bot", "")), name: f(toolName), content: f(text) }, ["role"]) },
);
const oaTool = opt({
  type: f(fc.constantFrom("function", "custom", "web_search")),
  function: f(opt({ name: f(toolName), description: f(text), parameters: f(schema), strict: f(fc.boolean()) }, ["name"])),
}, ["type", "function"]);

function openaiRequest(model: fc.Arbitrary<unknown>) {
  return some({
    model,
    messages: f(fc.array(f(oaMessage), { minLength: 1, maxLength: 5 })),
    tools: f(fc.array(f(oaTool), { maxLength: 3 })),
    tool_choice: f(fc.oneof(fc.constantFrom("auto", "none", "required", "any"), opt({ type: f(fc.constant("function")), function: f(opt({ name: f(toolName) }, ["name"])) }, ["type", "function"]))),
    stream: f(fc.boolean()),
    stream_options: f(opt({ include_usage: f(fc.boolean()), include_obfuscation: f(fc.boolean()) })),
    temperature: f(fc.double({ min: 0, max: 2, noNaN: true })),
    top_p: f(fc.double({ min: 0, max: 1, noNaN: true })),
    top_k: f(fc.integer({ min: 0, max: 100 })),
    n: f(fc.integer({ min: 1, max: 3 })),
    stop: f(fc.oneof(text, fc.array(f(text), { maxLength: 5 }))),
    max_tokens: f(fc.integer({ min: 1, max: 100000 })),
    max_completion_tokens: f(fc.integer({ min: 1, max: 100000 })),
    presence_penalty: f(fc.double({ min: -2, max: 2, noNaN: true })),
    frequency_penalty: f(fc.double({ min: -2, max: 2, noNaN: true })),
    logit_bias: f(fc.dictionary(fc.constantFrom("50256", "1", "x"), f(fc.integer({ min: -100, max: 100 })), { maxKeys: 2 })),
    logprobs: f(fc.boolean()),
    top_logprobs: f(fc.integer({ min: 0, max: 20 })),
    user: f(text),
    safety_identifier: f(text),
    seed: f(fc.integer()),
    response_format: f(fc.oneof(
      opt({ type: f(fc.constantFrom("text", "json_object", "xml")) }, ["type"]),
      opt({ type: f(fc.constant("json_schema")), json_schema: f(opt({ name: f(text), schema: f(schema), strict: f(fc.boolean()) }, ["name"])) }, ["type"]),
    )),
    parallel_tool_calls: f(fc.boolean()),
    reasoning_effort: f(fc.constantFrom("none", "minimal", "low", "medium", "high", "max")),
    metadata: f(fc.dictionary(fc.string({ maxLength: 5 }), f(fc.string({ maxLength: 5 })), { maxKeys: 2 })),
    store: f(fc.boolean()),
    service_tier: f(fc.constantFrom("auto", "default", "flex")),
    modalities: f(fc.array(f(fc.constantFrom("text", "audio")), { maxLength: 2 })),
    audio: f(opt({ voice: f(text), format: f(text) })),
    prediction: f(opt({ type: f(fc.constant("content")), content: f(text) })),
    thinking: f(opt({ type: f(fc.constantFrom("enabled", "disabled", "adaptive")), budget_tokens: f(fc.integer({ min: 0, max: 100000 })) }, ["type"])),
    functions: f(fc.array(opt({ name: f(toolName) }), { maxLength: 1 })),
    function_call: f(fc.constantFrom("auto", "none")),
    web_search_options: f(fc.constant({})),
    verbosity: f(fc.constantFrom("low", "high")),
    prompt_cache_key: f(text),
    unknown_field: weird,
  }, ["model", "messages"], 4);
}

// ---- Anthropic Messages request model ----

const anCacheControl = f(opt({ type: f(fc.constant("ephemeral")), ttl: f(fc.constantFrom("5m", "1h")) }, ["type"]));
const anText = opt({ type: f(fc.constant("text")), text: f(text), cache_control: anCacheControl, citations: f(fc.constant([])) }, ["type", "text"]);
const anImage = opt({
  type: f(fc.constant("image")),
  source: f(fc.oneof(
    opt({ type: f(fc.constant("base64")), media_type: f(fc.constantFrom("image/png", "image/jpeg", "", "text/html")), data: f(fc.constantFrom("iVBORw0KGgo=", "", "!!")) }, ["type"]),
    opt({ type: f(fc.constant("url")), url: f(imageUrl) }, ["type"]),
    opt({ type: f(fc.constantFrom("file", "text")), file_id: f(fc.constant("file_1")) }, ["type"]),
  )),
}, ["type", "source"]);
const anToolUse = opt({ type: f(fc.constant("tool_use")), id: f(callId), name: f(toolName), input: f(fc.jsonValue({ maxDepth: 2 })) }, ["type", "id", "name", "input"]);
const anToolResult = opt({
  type: f(fc.constant("tool_result")), tool_use_id: f(callId),
  content: f(fc.oneof(text, fc.array(f(fc.oneof(anText, anImage)), { maxLength: 2 }))), is_error: f(fc.boolean()),
}, ["type", "tool_use_id"]);
const anThinking = fc.oneof(
  opt({ type: f(fc.constant("thinking")), thinking: f(text), signature: f(fc.constantFrom("sig", "")) }, ["type"]),
  opt({ type: f(fc.constant("redacted_thinking")), data: f(fc.constant("xx")) }, ["type"]),
  opt({ type: f(fc.constantFrom("document", "server_tool_use", "web_search_tool_result", "search_result", "")) }, ["type"]),
);
const anMessage = opt({
  role: f(fc.oneof({ weight: 12, arbitrary: fc.constantFrom("user", "assistant") }, { weight: 1, arbitrary: fc.constantFrom("system", "tool") })),
  content: f(fc.oneof(text, fc.array(f(fc.oneof({ weight: 4, arbitrary: anText }, { weight: 2, arbitrary: anImage }, { weight: 3, arbitrary: anToolUse }, { weight: 3, arbitrary: anToolResult }, { weight: 1, arbitrary: anThinking })), { maxLength: 3 }))),
}, ["role", "content"]);
const anTool = opt({
  name: f(toolName), description: f(text), input_schema: f(schema),
  type: f(fc.constantFrom("custom", "web_search_20250305", "bash_20250124", "text_editor_20250124")), cache_control: anCacheControl,
}, ["name"]);

function anthropicRequest(model: fc.Arbitrary<unknown>) {
  return some({
    model,
    max_tokens: f(fc.integer({ min: 1, max: 100000 })),
    messages: f(fc.array(f(anMessage), { minLength: 1, maxLength: 4 })),
    system: f(fc.oneof(text, fc.array(f(anText), { maxLength: 2 }))),
    stop_sequences: f(fc.array(f(text), { maxLength: 3 })),
    temperature: f(fc.double({ min: 0, max: 1, noNaN: true })),
    top_p: f(fc.double({ min: 0, max: 1, noNaN: true })),
    top_k: f(fc.integer({ min: 0, max: 500 })),
    stream: f(fc.boolean()),
    tools: f(fc.array(f(anTool), { maxLength: 3 })),
    tool_choice: f(opt({ type: f(fc.constantFrom("auto", "any", "tool", "none", "required")), name: f(toolName), disable_parallel_tool_use: f(fc.boolean()) }, ["type"])),
    metadata: f(opt({ user_id: f(text) })),
    thinking: f(opt({ type: f(fc.constantFrom("enabled", "disabled", "adaptive")), budget_tokens: f(fc.integer({ min: 0, max: 100000 })) }, ["type"])),
    service_tier: f(fc.constantFrom("auto", "standard_only")),
    container: weird,
    mcp_servers: weird,
  }, ["model", "max_tokens", "messages"], 4);
}

// ---- Embeddings request model ----

function embeddingsRequest(model: fc.Arbitrary<unknown>) {
  return some({
    model,
    input: f(fc.oneof(text, fc.array(f(text), { maxLength: 3 }), fc.array(fc.integer({ min: 0, max: 200000 }), { maxLength: 5 }), fc.array(fc.array(fc.nat(), { maxLength: 3 }), { maxLength: 2 }))),
    encoding_format: f(fc.constantFrom("float", "base64")),
    dimensions: f(fc.integer({ min: 1, max: 4096 })),
    user: f(text),
  }, ["model", "input"], 3);
}

const ANY_MODEL = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...Object.values(MODEL)) },
  { weight: 1, arbitrary: fc.constantFrom("gemini-../../v1beta/models/x", "gemini-2.5-flash/../../x", "gemini-x?alt=json", "gemini-a b", "gemini-\u00e9", "gemini-" + "9".repeat(300), "tunedModels/x", "gemini-", "no-such-model") },
  { weight: 1, arbitrary: weird },
);

// ---- OpenAI Responses request model ----

const rsPart = fc.oneof(
  opt({ type: f(fc.constantFrom("input_text", "output_text")), text: f(text) }, ["type", "text"]),
  opt({ type: f(fc.constant("input_image")), image_url: f(imageUrl), detail: f(fc.constantFrom("low", "high", "auto")), file_id: f(fc.constant("file_1")) }, ["type"]),
  opt({ type: f(fc.constantFrom("input_file", "refusal", "input_audio", "")), refusal: f(text), file_id: f(text) }, ["type"]),
);
const rsItem = fc.oneof(
  { weight: 6, arbitrary: opt({ type: f(fc.constant("message")), role: f(fc.constantFrom("user", "assistant", "system", "developer", "tool")), content: f(fc.oneof(text, fc.array(f(rsPart), { maxLength: 3 }))) }, ["role", "content"]) },
  { weight: 3, arbitrary: opt({ type: f(fc.constant("function_call")), call_id: f(callId), name: f(toolName), arguments: f(fc.oneof(text, fc.constant("{\"a\":1}"))), id: f(text) }, ["type", "call_id", "name", "arguments"]) },
  { weight: 3, arbitrary: opt({ type: f(fc.constant("function_call_output")), call_id: f(callId), output: f(fc.oneof(text, fc.array(f(rsPart), { maxLength: 2 }))) }, ["type", "call_id", "output"]) },
  { weight: 1, arbitrary: opt({ type: f(fc.constantFrom("reasoning", "item_reference", "computer_call_output", "web_search_call")), id: f(text), summary: f(fc.constant([])), encrypted_content: f(text) }, ["type"]) },
);
const rsTool = fc.oneof(
  opt({ type: f(fc.constant("function")), name: f(toolName), description: f(text), parameters: f(schema), strict: f(fc.boolean()) }, ["type", "name"]),
  opt({ type: f(fc.constantFrom("web_search", "file_search", "code_interpreter", "mcp", "custom", "")) }, ["type"]),
);

function responsesRequest(model: fc.Arbitrary<unknown>) {
  return some({
    model,
    input: f(fc.oneof(text, fc.array(f(rsItem), { minLength: 1, maxLength: 5 }))),
    instructions: f(text),
    tools: f(fc.array(f(rsTool), { maxLength: 3 })),
    tool_choice: f(fc.oneof(fc.constantFrom("auto", "none", "required", "any"), opt({ type: f(fc.constantFrom("function", "allowed_tools", "web_search")), name: f(toolName) }, ["type"]))),
    stream: f(fc.boolean()),
    temperature: f(fc.double({ min: 0, max: 2, noNaN: true })),
    top_p: f(fc.double({ min: 0, max: 1, noNaN: true })),
    max_output_tokens: f(fc.integer({ min: 1, max: 100000 })),
    metadata: f(fc.dictionary(fc.string({ maxLength: 5 }), f(fc.string({ maxLength: 5 })), { maxKeys: 3 })),
    text: f(opt({ format: f(fc.oneof(opt({ type: f(fc.constantFrom("text", "json_object", "xml")) }, ["type"]), opt({ type: f(fc.constant("json_schema")), name: f(text), schema: f(schema), strict: f(fc.boolean()) }, ["type"]))), verbosity: f(fc.constantFrom("low", "high")) })),
    reasoning: f(opt({ effort: f(fc.constantFrom("none", "minimal", "low", "high")), summary: f(fc.constantFrom("auto", "concise")) })),
    parallel_tool_calls: f(fc.boolean()),
    store: f(fc.boolean()),
    include: f(fc.constant(["reasoning.encrypted_content"])),
    previous_response_id: f(text),
    background: f(fc.boolean()),
    conversation: f(text),
    user: f(text),
    unknown_field: weird,
  }, ["model", "input"], 4);
}

function requestArbitrary(path: Path, model: fc.Arbitrary<unknown>) {
  if (path === RESPONSES) return responsesRequest(model);
  if (path === CHAT) return openaiRequest(model);
  if (path === MESSAGES) return anthropicRequest(model);
  return embeddingsRequest(model);
}

/** Serialises a generated body: compact or pretty, sometimes with a duplicated key before or after. */
const serialized = (obj: fc.Arbitrary<Record<string, unknown>>) =>
  fc.tuple(obj, fc.constantFrom("compact", "compact", "compact", "pretty", "dup-first", "dup-last"), fc.constantFrom("model", "messages", "stream", "max_tokens", "tools", "input", "temperature", "zz"), weird)
    .map(([o, style, dupKey, dupVal]) => {
      let t = style === "pretty" ? JSON.stringify(o, null, 2) : JSON.stringify(o);
      if (style === "dup-first") t = `{${JSON.stringify(dupKey)}:${JSON.stringify(dupVal)}${t === "{}" ? "" : ","}${t.slice(1)}`;
      if (style === "dup-last") t = `${t.slice(0, -1)}${t === "{}" ? "" : ","}${JSON.stringify(dupKey)}:${JSON.stringify(dupVal)}}`;
      return materialize(t);
    });

// ---------------------------------------------------------------------------------------------
// Response side

interface Target {
  provider: Provider;
  path: Path;
  stream: boolean;
  /** OpenAI clients only: stream_options.include_usage (the client then always gets a usage chunk). */
  includeUsage?: boolean;
  /** OpenAI clients only: response_format json_object (Anthropic: the forced JSON tool, read back as content). */
  json?: boolean;
}

function requestBodyFor(t: Target): object {
  if (t.path === EMBEDDINGS) return { model: MODEL[t.provider], input: ["héllo", "wörld"] };
  if (t.path === RESPONSES) {
    return { model: MODEL[t.provider], stream: t.stream, instructions: "Be terse.", input: "Weather in São Paulo?", tools: [{ type: "function", name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } }] };
  }
  if (t.path === MESSAGES) {
    return { model: MODEL[t.provider], max_tokens: 256, stream: t.stream, messages: [{ role: "user", content: "Weather in São Paulo?" }], tools: [{ name: "get_weather", input_schema: { type: "object", properties: { city: { type: "string" } } } }] };
  }
  if (t.json) {
    return { model: MODEL[t.provider], stream: t.stream, stream_options: { include_usage: true }, messages: [{ role: "user", content: "Weather in São Paulo as JSON?" }], response_format: { type: "json_object" } };
  }
  return {
    model: MODEL[t.provider], stream: t.stream, ...(t.includeUsage ? { stream_options: { include_usage: true } } : {}),
    messages: [{ role: "user", content: "Weather in São Paulo?" }], tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } }],
  };
}

/** True when the filter hands this stream to the client byte for byte (the provider speaks the client's format). */
function isNativeStream(t: Target): boolean {
  // OpenAI-format streams are reframed, whether or not the client asked for usage (the gateway
  // adds the usage chunk when the provider sends none). OpenAI and Azure OpenAI answer a
  // Responses client with their own Responses API.
  return (t.path === MESSAGES && t.provider === "anthropic") || isNativeResponses(t);
}

function isNativeResponses(t: Target): boolean {
  return t.path === RESPONSES && (t.provider === "openai" || t.provider === "azure-openai");
}

interface Answer {
  status: string;
  contentType: string | null;
  chunks: Buffer[];
  /** Headers-only answer (end_stream on the headers). */
  headersOnly?: boolean;
}

function describeAnswer(t: Target, a: Answer): string {
  const total = Buffer.concat(a.chunks);
  return `${t.provider} ${t.path}${t.stream ? " stream" : ""}${t.includeUsage ? "+usage" : ""} ← ${a.status} ${a.contentType ?? "(no content-type)"} ${a.headersOnly ? "(headers only)" : `${a.chunks.length} chunk(s), ${preview(total, 400)}`}`;
}

/** A spec-compliant SSE event parser (WHATWG): CR, LF or CRLF line ends, comments, fields. */
function parseSse(text: string): { event: string; data: string }[] {
  const out: { event: string; data: string }[] = [];
  let event = "";
  let data: string[] = [];
  let has = false;
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (line === "") {
      if (has) out.push({ event, data: data.join("\n") });
      event = "";
      data = [];
      has = false;
      continue;
    }
    if (line.startsWith(":")) continue;
    const c = line.indexOf(":");
    const name = c < 0 ? line : line.slice(0, c);
    let value = c < 0 ? "" : line.slice(c + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "data") {
      data.push(value);
      has = true;
    } else if (name === "event") event = value;
  }
  // An unterminated last event is not dispatched by a conforming client.
  return out;
}

function isTerminal(e: { event: string; data: string }, client: Client, responses = false): boolean {
  if (responses) {
    try {
      const d = JSON.parse(e.data);
      return ["response.completed", "response.incomplete", "response.failed", "error"].includes(d?.type);
    } catch {
      return false;
    }
  }
  if (client === "openai") return e.data === "[DONE]";
  if (e.event === "message_stop" || e.event === "error") return true;
  try {
    const d = JSON.parse(e.data);
    return d?.type === "message_stop" || d?.type === "error";
  } catch {
    return false;
  }
}

/** Runs one answer through the filter and checks what the client gets. Throws with the input on failure. */
function checkAnswer(h: Host, w: TrapWatch, t: Target, a: Answer): void {
  const what = () => describeAnswer(t, a);
  const client = clientOf(t.path);
  const s = sendRaw(h, t.path, JSON.stringify(requestBodyFor(t)));
  const local = s.getSentLocalResponse();
  if (local) throw new Error(`the request for ${what()} was rejected: ${local.statusCode} ${preview(local.body)}`);
  // content-length as the provider sent it: a filter that changes the body must not leave it stale.
  const hdrs: Record<string, string> = { ":status": a.status, "content-length": String(Buffer.concat(a.chunks).length) };
  if (a.contentType !== null) hdrs["content-type"] = a.contentType;
  s.callOnResponseHeaders(hdrs, !!a.headersOnly);
  if (!a.headersOnly) {
    const chunks = a.chunks.length ? a.chunks : [Buffer.alloc(0)];
    chunks.forEach((c, i) => s.callOnResponseBody(c, i === chunks.length - 1));
  }
  s.completeHttpContext();
  w.check(what);
  if (s.reset) throw new Error(`${what()}: the stream was reset (${s.reset})`);
  checkUsageRecord(s, what());
  if (a.headersOnly) return; // nothing to translate: proxy-wasm cannot add a body to a headers-only answer

  const headers = s.downstream.headers ?? [];
  const status = Number(header(headers, ":status"));
  const body = s.downstream.body;
  const ct = header(headers, "content-type");
  const ok = status >= 200 && status < 300;
  if (!s.downstream.ended) throw new Error(`${what()}: the response to the client never ended`);
  const cl = header(headers, "content-length");
  if (cl !== undefined && Number(cl) !== body.length) throw new Error(`${what()}: content-length ${cl} for a ${body.length}-byte body`);

  if (!t.stream || !ok) {
    // A whole answer: JSON, translated or an error in the client's format.
    if (ct !== "application/json") throw new Error(`${what()}: client got status ${status} with content-type ${ct}: ${preview(body)}`);
    let parsed: any;
    try {
      parsed = JSON.parse(body.toString("utf8"));
    } catch {
      throw new Error(`${what()}: client got status ${status} and a body that is not JSON: ${preview(body)}`);
    }
    if (!ok) {
      const why = errorShapeProblem(parsed, client);
      if (why) throw new Error(`${what()}: client got status ${status} and a body that is not a ${client} error (${why}): ${preview(body)}`);
      return;
    }
    if (t.path === EMBEDDINGS) {
      if (!Array.isArray(parsed?.data)) throw new Error(`${what()}: 2xx embeddings answer without a data list: ${preview(body)}`);
    } else if (t.path === RESPONSES) {
      if (parsed?.object !== "response" || !Array.isArray(parsed?.output)) throw new Error(`${what()}: 2xx answer to a Responses client is not a Response: ${preview(body)}`);
    } else if (client === "openai") {
      if (!Array.isArray(parsed?.choices)) throw new Error(`${what()}: 2xx chat answer without a choices list: ${preview(body)}`);
    } else if (parsed?.type !== "message" || !Array.isArray(parsed?.content)) {
      throw new Error(`${what()}: 2xx answer to an Anthropic client is not a message: ${preview(body)}`);
    }
    return;
  }

  // A stream: text/event-stream, a proper ending, and (when translated) JSON in every event.
  if (ct !== "text/event-stream") throw new Error(`${what()}: streamed answer with content-type ${ct}: ${preview(body)}`);
  const native = isNativeStream(t) && /text\/event-stream/i.test(a.contentType ?? "");
  const text = body.toString("utf8");
  const events = parseSse(text);
  const responses = t.path === RESPONSES;
  const end = events.findIndex((e) => isTerminal(e, client, responses));
  if (end < 0) throw new Error(`${what()}: the stream has no ending (${responses ? "response.completed, .incomplete, .failed or error" : client === "openai" ? "data: [DONE]" : "message_stop or error"}); client got ${preview(text.slice(-400), 400)}`);
  if (native) {
    const input = Buffer.concat(a.chunks);
    if (!body.subarray(0, input.length).equals(input)) throw new Error(`${what()}: a pass-through stream was altered`);
    return;
  }
  if (!isValidUtf8(body)) throw new Error(`${what()}: the translated stream is not valid UTF-8`);
  if (end !== events.length - 1) throw new Error(`${what()}: events after the stream's end: ${preview(JSON.stringify(events.slice(end)), 500)}`);
  for (const e of events) {
    if (client === "openai" && e.data === "[DONE]") continue;
    let d: any;
    try {
      d = JSON.parse(e.data);
    } catch {
      throw new Error(`${what()}: a translated event is not JSON: ${preview(e.data)}`);
    }
    if ((client === "anthropic" || responses) && d?.type !== e.event) throw new Error(`${what()}: event ${e.event} carries type ${d?.type}`);
    if (client === "openai" && d?.error !== undefined && errorShapeProblem(d, "openai")) throw new Error(`${what()}: malformed error chunk ${preview(e.data)}`);
  }
  if (responses) {
    const data = events.map((e) => JSON.parse(e.data));
    if (data[0]?.type !== "response.created") throw new Error(`${what()}: a Responses stream that does not start with response.created: ${preview(text, 400)}`);
    data.forEach((d, i) => {
      if (d.sequence_number !== i) throw new Error(`${what()}: event ${i} (${d.type}) has sequence_number ${d.sequence_number}`);
    });
    const last = data.at(-1);
    if (last.type === "response.failed" && (typeof last.response?.error?.message !== "string" || last.response?.status !== "failed")) throw new Error(`${what()}: malformed response.failed ${preview(events.at(-1)!.data)}`);
  }
  if (client === "anthropic") {
    const names = events.map((e) => e.event);
    if (names.at(-1) === "message_stop" && names[0] !== "message_start") throw new Error(`${what()}: a message_stop without message_start: ${names.join(",")}`);
    const last = events.at(-1)!;
    if (last.event === "error" && errorShapeProblem(JSON.parse(last.data), "anthropic")) throw new Error(`${what()}: malformed error event ${preview(last.data)}`);
  }
}

// Realistic plain answers in each provider format.
const OPENAI_ANSWER = {
  id: "chatcmpl-1", object: "chat.completion", created: 1735689600, model: "gpt-4o-mini-2024-07-18",
  choices: [{ index: 0, message: { role: "assistant", content: "Héllo 🌍", refusal: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"São Paulo\"}" } }] }, logprobs: null, finish_reason: "tool_calls" }],
  usage: { prompt_tokens: 12, completion_tokens: 9, total_tokens: 21, prompt_tokens_details: { cached_tokens: 4 }, completion_tokens_details: { reasoning_tokens: 0 } },
};
const ANTHROPIC_ANSWER = {
  id: "msg_01", type: "message", role: "assistant", model: "claude-sonnet-4-5-20250929",
  content: [{ type: "thinking", thinking: "Hmm 🤔", signature: "sig" }, { type: "text", text: "Héllo 🌍" }, { type: "tool_use", id: "toolu_01", name: "get_weather", input: { city: "São Paulo" } }],
  stop_reason: "tool_use", stop_sequence: null, usage: { input_tokens: 10, cache_read_input_tokens: 2, cache_creation_input_tokens: 0, output_tokens: 9 },
};
const GEMINI_ANSWER = {
  candidates: [{ content: { role: "model", parts: [{ text: "Hmm 🤔", thought: true }, { text: "Héllo 🌍" }, { functionCall: { name: "get_weather", args: { city: "São Paulo" } }, thoughtSignature: "QUJD" }] }, finishReason: "STOP", index: 0 }],
  usageMetadata: { promptTokenCount: 10, candidatesTokenCount: 9, totalTokenCount: 25, thoughtsTokenCount: 6, cachedContentTokenCount: 2 },
  modelVersion: "gemini-2.5-flash", responseId: "resp-1",
};
const OPENAI_EMBEDDINGS = { object: "list", data: [{ object: "embedding", index: 0, embedding: [0.1, -0.2] }, { object: "embedding", index: 1, embedding: [0.3, 0.4] }], model: "text-embedding-3-small", usage: { prompt_tokens: 4, total_tokens: 4 } };
const GEMINI_EMBEDDINGS = { embeddings: [{ values: [0.1, -0.2] }, { values: [0.3, 0.4] }] };

type Format = "openai" | "anthropic" | "gemini";
const formatOf = (p: Provider): Format => (p === "anthropic" ? "anthropic" : p === "gemini" ? "gemini" : "openai");
const CHAT_ANSWER: Record<Format, object> = { openai: OPENAI_ANSWER, anthropic: ANTHROPIC_ANSWER, gemini: GEMINI_ANSWER };
const hasEmbeddings = (p: Provider) => p !== "anthropic" && p !== "deepseek";

/** Provider-shaped answers in which any field may have the wrong type (the answer schemas, loosely). */
function answerShapes(format: Format): fc.Arbitrary<unknown> {
  const usageOA = f(opt({ prompt_tokens: f(fc.nat()), completion_tokens: f(fc.nat()), total_tokens: f(fc.nat()), prompt_tokens_details: f(opt({ cached_tokens: f(fc.nat()) })), completion_tokens_details: f(opt({ reasoning_tokens: f(fc.nat()) })), prompt_cache_hit_tokens: f(fc.nat()) }));
  if (format === "openai") {
    const call = opt({ id: f(callId), type: f(fc.constant("function")), index: f(fc.integer({ min: -2, max: 200 })), function: f(opt({ name: f(toolName), arguments: f(fc.oneof(text, fc.json({ maxDepth: 1 }))) })) });
    const choice = opt({
      index: f(fc.integer({ min: -2, max: 200 })), finish_reason: f(fc.constantFrom("stop", "length", "tool_calls", "content_filter", "function_call", null)),
      message: f(opt({ role: f(fc.constant("assistant")), content: f(fc.oneof(text, fc.constant(null))), refusal: f(text), reasoning_content: f(text), tool_calls: f(fc.array(f(call), { maxLength: 2 })) })),
      delta: f(opt({ role: f(fc.constant("assistant")), content: f(fc.oneof(text, fc.constant(null))), refusal: f(text), reasoning_content: f(text), tool_calls: f(fc.array(f(call), { maxLength: 2 })) })),
      logprobs: weird,
    });
    return fc.oneof(
      {
        weight: 8,
        arbitrary: opt({
          id: f(fc.constantFrom("chatcmpl-1", "")), object: f(fc.constantFrom("chat.completion", "chat.completion.chunk", "list")), created: f(fc.nat()), model: f(text),
          choices: f(fc.array(f(choice), { maxLength: 3 })), usage: usageOA,
          data: f(fc.array(f(opt({ object: f(fc.constant("embedding")), index: f(fc.nat()), embedding: f(fc.array(f(fc.double({ noNaN: true, noDefaultInfinity: true })), { maxLength: 3 })) })), { maxLength: 2 })),
        }),
      },
      { weight: 1, arbitrary: opt({ error: f(opt({ message: f(text), type: f(text), code: f(fc.oneof(text, fc.integer())) })) }) },
    );
  }
  if (format === "anthropic") {
    const block = opt({
      type: f(fc.constantFrom("text", "tool_use", "thinking", "redacted_thinking", "server_tool_use", "text_delta", "input_json_delta", "thinking_delta", "signature_delta")),
      text: f(text), id: f(callId), name: f(toolName), input: f(fc.jsonValue({ maxDepth: 2 })), thinking: f(text), partial_json: f(fc.oneof(text, fc.constantFrom("{\"a\":", "}"))), signature: f(text),
    });
    const usage = f(opt({ input_tokens: f(fc.nat()), output_tokens: f(fc.nat()), cache_read_input_tokens: f(fc.nat()), cache_creation_input_tokens: f(fc.nat()) }));
    return opt({
      type: f(fc.constantFrom("message", "message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop", "ping", "error")),
      id: f(fc.constantFrom("msg_1", "")), role: f(fc.constant("assistant")), model: f(text), index: f(fc.integer({ min: -2, max: 2000000 })),
      content: f(fc.array(f(block), { maxLength: 3 })), content_block: f(block), delta: f(fc.oneof(block, opt({ stop_reason: f(fc.constantFrom("end_turn", "tool_use", "max_tokens", "stop_sequence", "refusal", "pause_turn")), stop_sequence: f(text) }))),
      message: f(opt({ id: f(fc.constantFrom("msg_1", "")), model: f(text), usage, content: f(fc.array(f(block), { maxLength: 1 })) })),
      stop_reason: f(fc.constantFrom("end_turn", "tool_use", "max_tokens", "stop_sequence")), stop_sequence: f(text), usage,
      error: f(opt({ type: f(fc.constantFrom("overloaded_error", "api_error", "invalid_request_error")), message: f(text) })),
    });
  }
  const part = opt({ text: f(text), thought: f(fc.boolean()), functionCall: f(opt({ name: f(toolName), args: f(fc.jsonValue({ maxDepth: 2 })), id: f(callId) })), thoughtSignature: f(text), inlineData: weird, executableCode: weird });
  const cand = opt({
    content: f(opt({ role: f(fc.constant("model")), parts: f(fc.array(f(part), { maxLength: 3 })) })), index: f(fc.integer({ min: -2, max: 200 })),
    finishReason: f(fc.constantFrom("STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "OTHER", "FINISH_REASON_UNSPECIFIED", "MALFORMED_FUNCTION_CALL")),
  });
  return fc.oneof(
    {
      weight: 8,
      arbitrary: opt({
        candidates: f(fc.array(f(cand), { maxLength: 3 })),
        usageMetadata: f(opt({ promptTokenCount: f(fc.nat()), candidatesTokenCount: f(fc.nat()), totalTokenCount: f(fc.nat()), thoughtsTokenCount: f(fc.nat()), cachedContentTokenCount: f(fc.nat()), toolUsePromptTokenCount: f(fc.nat()) })),
        promptFeedback: f(opt({ blockReason: f(fc.constantFrom("SAFETY", "OTHER", "")) })), modelVersion: f(text), responseId: f(text),
        embeddings: f(fc.array(f(opt({ values: f(fc.array(f(fc.double({ noNaN: true, noDefaultInfinity: true })), { maxLength: 3 })) })), { maxLength: 2 })),
      }),
    },
    { weight: 1, arbitrary: opt({ error: f(opt({ code: f(fc.integer({ min: 0, max: 999 })), message: f(text), status: f(fc.constantFrom("INVALID_ARGUMENT", "RESOURCE_EXHAUSTED", "x")) })) }) },
  );
}

/** Splits bytes into chunks at arbitrary positions. */
function chunked(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)).filter((c) => c > 0 && c < bytes.length))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let at = 0;
  for (const p of points) {
    out.push(bytes.subarray(at, p));
    at = p;
  }
  out.push(bytes.subarray(at));
  return out;
}
const cutsArb = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 });

/** SSE framed events for a provider format (Anthropic gets event: names). */
function sseFrame(format: Format, obj: unknown, eol = "\n"): string {
  const data = materialize(JSON.stringify(obj) ?? "null");
  if (format === "anthropic") {
    const type = (obj as { type?: unknown })?.type;
    return `event: ${typeof type === "string" ? type : "message_delta"}${eol}data: ${data}${eol}${eol}`;
  }
  return `data: ${data}${eol}${eol}`;
}

/** Random SSE lines: fields, comments, junk, JSON and non-JSON data, any line ending, maybe unterminated. */
function sseGarbage(format: Format): fc.Arbitrary<Buffer> {
  const eventNames = fc.constantFrom("message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop", "error", "ping", "", "x");
  const line = fc.oneof(
    fc.tuple(fc.constantFrom("data: ", "data:", "data:  "), fc.oneof(
      answerShapes(format).map((o) => materialize(JSON.stringify(o) ?? "null")),
      fc.json({ maxDepth: 2 }), fc.string({ maxLength: 20 }), fc.constantFrom("[DONE]", "[DONE] ", "{", "}", "null", "{\"type\":\"message_stop\"}", "{\"type\":\"error\"}", "{\"error\":{}}", "{\"error\":null}"),
    )).map(([a, b]) => a + b),
    eventNames.map((n) => `event: ${n}`),
    fc.constantFrom(": keep-alive", "id: 1", "retry: 1000", "event", "data", ":", "", "", "", "\u0000", "\ufeffdata: {}"),
    fc.string({ unit: "binary", maxLength: 12 }),
  );
  return fc.tuple(fc.array(line, { maxLength: 25 }), fc.constantFrom("\n", "\r\n", "\r"), fc.boolean(), fc.uint8Array({ maxLength: 8 }))
    .map(([lines, eol, terminated, junk]) => Buffer.concat([Buffer.from(lines.join(eol) + (terminated ? eol + eol : ""), "utf8"), Buffer.from(junk)]));
}

// Statuses Envoy can hand a filter (its codecs reject anything but three digits; 1xx are not final).
const ERROR_STATUSES = ["400", "401", "403", "404", "408", "413", "422", "429", "499", "500", "502", "503", "504", "529", "599", "302", "304"];
const CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "text/event-stream", "TEXT/EVENT-STREAM; charset=UTF-8", "text/plain", "text/html", "", "application/x-ndjson"];

function targets(): Target[] {
  const out: Target[] = [];
  for (const provider of PROVIDERS) {
    for (const stream of [false, true]) {
      out.push({ provider, path: CHAT, stream });
      out.push({ provider, path: MESSAGES, stream });
    }
    out.push({ provider, path: CHAT, stream: true, includeUsage: true });
    for (const stream of [false, true]) out.push({ provider, path: RESPONSES, stream });
    if (hasEmbeddings(provider)) out.push({ provider, path: EMBEDDINGS, stream: false });
  }
  return out;
}

/** JSON answers (response_format) where the translation reads them in its own way: answers only. */
function jsonTargets(): Target[] {
  return ["anthropic", "gemini"].flatMap((provider) => [false, true].map((stream) => ({ provider: provider as Provider, path: CHAT as Path, stream, includeUsage: true, json: true })));
}

const label = (t: Target) => `${t.provider} ${t.path === CHAT ? "OpenAI chat" : t.path === MESSAGES ? "Anthropic messages" : t.path === RESPONSES ? "OpenAI responses" : "embeddings"}${t.path === EMBEDDINGS ? "" : t.stream ? (t.includeUsage ? ", stream+include_usage" : ", stream") : ", plain"}${t.json ? ", response_format json_object" : ""}`;

// =============================================================================================
// Tests

describe("ai-proxy fuzz: request side", () => {
  it("truncated at every byte: 400 with a JSON error, for every entry point and provider", async () => {
    const h = await newHost();
    const w = new TrapWatch(h);
    let n = 0;
    for (const path of PATHS) {
      for (const provider of PROVIDERS) {
        const full = JSON.stringify(withModel(REALISTIC[path], provider));
        const bytes = Buffer.from(full, "utf8");
        // Every byte for the first provider; every 3rd (offset per provider) for the others: a
        // prefix fails to parse before the provider is chosen, so this keeps all positions covered.
        const step = provider === "openai" ? 1 : 3;
        for (let i = PROVIDERS.indexOf(provider) % step; i < bytes.length; i += step) {
          const cut = bytes.subarray(0, i);
          const s = sendRaw(h, path, cut);
          const r = checkRequest(w, s, path, cut);
          if (r.kind !== "rejected" || r.status !== 400) throw new Error(`POST ${path} truncated at ${i}/${bytes.length} (${provider}): expected 400, got ${JSON.stringify(r).slice(0, 300)}`);
          n++;
        }
        expect(checkRequest(w, sendRaw(h, path, bytes), path, bytes).kind, `the whole ${path} body for ${provider}`).toBeDefined();
      }
    }
    expect(n).toBeGreaterThan(5000);
    expectHealthy(h);
  });

  it("arrives in any number of chunks: the same outcome as in one", async () => {
    const h = await newHost();
    const w = new TrapWatch(h);
    fc.assert(
      fc.property(fc.constantFrom(...PATHS), fc.constantFrom(...PROVIDERS), fc.array(fc.nat(), { maxLength: 30 }), (path, provider, cuts) => {
        const body = Buffer.from(JSON.stringify(withModel(REALISTIC[path], provider)), "utf8");
        const one = checkRequest(w, sendRaw(h, path, body), path, body);
        const many = checkRequest(w, sendRaw(h, path, body, { cuts: cuts.map((c) => c % (body.length + 1)) }), path, body);
        expect(many).toEqual(one);
      }),
      FC(150),
    );
    expectHealthy(h);
  });

  it("not JSON at all (what JSON.parse refuses): 400, never forwarded", async () => {
    const h = await newHost();
    const w = new TrapWatch(h);
    const base = JSON.stringify({ model: MODEL.openai, max_tokens: 5, messages: [{ role: "user", content: "x" }] });
    const bodies = [
      "", " ", "\n", "null", "true", "0", "\"str\"", "[]", "[{}]", "{", "}", "{}}", "{\"a\":1}x", "\ufeff{}", "{'model':'x'}", "{model:\"x\"}",
      "{\"a\":NaN}", "{\"a\":Infinity}", "{\"a\":-Infinity}", "{\"a\":undefined}", "{\"a\":0x10}", "{\"a\":01}", "{\"a\":+1}", "{\"a\":.5}", "{\"a\":1.}",
      "{\"a\":1e}", "{\"a\":-}", "{\"a\":--1}", "{\"a\":tru}", "{\"a\":True}", "{\"a\":nul}", "{\"a\":[1,]}", "{\"a\":1,}", "{,}", "{\"a\"1}", "{\"a\"::1}",
      "{\"a\":\"\\x41\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\\u12G4\"}", "{\"a\":\"\\\"}", "{\"a\":\"tab\there\"}", "{\"a\":\"nl\nhere\"}", "{\"a\":\"\u0000\"}",
      "{\"a\":1}/*c*/", "//c\n{}", "{\"a\":\"x\"\"b\":1}", "\u0000", "{\"a\":\"\\", "{\"a\":\"\\u", "{\"a\":\"\\ud800", "[" + "1,".repeat(1000),
      base.slice(0, -1) + ",}", base + base, base.replace(":", "="), base.replace(/"/g, "'"),
    ];
    for (const path of PATHS) {
      for (const b of bodies) {
        if ((() => { try { JSON.parse(b); return true; } catch { return false; } })()) {
          // Valid JSON that is not an object: a 400 too, but through the other branch.
          const r = checkRequest(w, sendRaw(h, path, b), path, b);
          expect(r.kind, `${path} ${JSON.stringify(b)}`).toBe("rejected");
          continue;
        }
        const r = checkRequest(w, sendRaw(h, path, b), path, b);
        if (r.kind !== "rejected" || r.status !== 400) throw new Error(`POST ${path} ${preview(b)}: JSON.parse refuses it, yet the filter answered ${JSON.stringify(r).slice(0, 300)}`);
      }
    }
    // And the differential property over mutated bodies: whatever V8's JSON.parse refuses, the filter refuses with 400.
    const mutation = fc.tuple(fc.constantFrom(...PATHS), fc.constantFrom(...PROVIDERS), fc.nat(), fc.constantFrom("NaN", "Infinity", "-Infinity", "'", ",", ":", "}", "]", "{", "[", "\"", "\\", "\u0001", "01", "+", ".", "e", "tru", "undefined", "\ufeff", "\u00a0", "//", "/*"), fc.boolean());
    fc.assert(
      fc.property(mutation, ([path, provider, at, junk, replace]) => {
        const body = JSON.stringify(withModel(REALISTIC[path], provider));
        const i = at % (body.length + 1);
        const mutated = body.slice(0, i) + junk + body.slice(replace ? i + 1 : i);
        let valid = true;
        try {
          JSON.parse(mutated);
        } catch {
          valid = false;
        }
        const r = checkRequest(w, sendRaw(h, path, mutated), path, mutated);
        if (!valid && (r.kind !== "rejected" || r.status !== 400)) throw new Error(`POST ${path} ${preview(mutated, 2000)}: JSON.parse refuses it, the filter answered ${JSON.stringify(r).slice(0, 300)}`);
      }),
      FC(400),
    );
    expectHealthy(h);
  });

  it("nesting 10,000 deep anywhere in the body: 400 with a JSON error", async () => {
    const h = await newHost();
    const w = new TrapWatch(h);
    const D = 10_000;
    const deepArray = "[".repeat(D) + "]".repeat(D);
    const deepObject = "{\"a\":".repeat(D) + "1" + "}".repeat(D);
    const opens = "[".repeat(D);
    const places: Record<Path, string[]> = {
      [CHAT]: [
        "@", "{\"model\":\"fz-openai\",\"messages\":@}", "{\"model\":\"fz-openai\",\"messages\":[{\"role\":\"user\",\"content\":@}]}",
        "{\"model\":\"fz-openai\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":@}}]}",
        "{\"model\":\"fz-openai\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"metadata\":@}", "{\"deep\":@,\"model\":\"fz-openai\",\"messages\":[]}",
      ],
      [MESSAGES]: [
        "@", "{\"model\":\"fz-anthropic\",\"max_tokens\":5,\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":@}]}]}",
        "{\"model\":\"fz-openai\",\"max_tokens\":5,\"system\":@,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
      ],
      [EMBEDDINGS]: ["@", "{\"model\":\"fz-openai\",\"input\":@}", "{\"model\":\"gemini-2.5-flash\",\"input\":@}"],
      [RESPONSES]: ["@", "{\"model\":\"fz-anthropic\",\"input\":@}", "{\"model\":\"fz-openai\",\"input\":[{\"role\":\"user\",\"content\":@}]}", "{\"model\":\"fz-compat\",\"input\":\"x\",\"metadata\":@}"],
    };
    for (const path of PATHS) {
      for (const place of places[path]) {
        for (const deep of [deepArray, deepObject, opens, "]".repeat(D), "{\"a\":[".repeat(D / 2)]) {
          const body = place.replace("@", deep);
          const r = checkRequest(w, sendRaw(h, path, body), path, body);
          if (r.kind !== "rejected" || r.status !== 400) throw new Error(`POST ${path} ${preview(body)}: expected 400, got ${JSON.stringify(r).slice(0, 300)}`);
        }
      }
    }
    // Just under the reader's depth limit, in the places that are translated recursively (schemas, inputs, options).
    for (const depth of [20, 30, 60, 62, 63, 64, 65]) {
      const nestedSchema = "{\"type\":\"object\",\"properties\":{\"a\":".repeat(depth / 2 - 4) + "{\"type\":\"string\"}" + "}}".repeat(depth / 2 - 4);
      const nestedValue = "[".repeat(depth - 6) + "1" + "]".repeat(depth - 6);
      for (const provider of PROVIDERS) {
        const bodies: [Path, string][] = [
          [CHAT, `{"model":"${MODEL[provider]}","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":${nestedSchema}}}]}`],
          [CHAT, `{"model":"${MODEL[provider]}","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"n","schema":${nestedSchema}}}}`],
          [CHAT, `{"model":"${MODEL[provider]}","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":${JSON.stringify(`{"a":${nestedValue}}`)}}}]},{"role":"user","content":"x"}]}`],
          [MESSAGES, `{"model":"${MODEL[provider]}","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{"a":${nestedValue}}}]},{"role":"user","content":"x"}]}`],
          [MESSAGES, `{"model":"${MODEL[provider]}","max_tokens":5,"messages":[{"role":"user","content":"x"}],"tools":[{"name":"f","input_schema":${nestedSchema}}]}`],
          [EMBEDDINGS, `{"model":"${MODEL[provider]}","input":${nestedValue}}`],
        ];
        for (const [path, body] of bodies) checkRequest(w, sendRaw(h, path, body), path, body);
      }
    }
    expectHealthy(h);
  });

  it("huge, tiny and odd numbers in every numeric field, for every provider", async () => {
    const h = await newHost();
    const w = new TrapWatch(h);
    const fields: Record<Path, string[]> = {
      [CHAT]: ["max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "n", "seed", "presence_penalty", "frequency_penalty", "top_logprobs", "logprobs", "stream", "parallel_tool_calls"],
      [MESSAGES]: ["max_tokens", "temperature", "top_p", "top_k", "stream"],
      [EMBEDDINGS]: ["dimensions", "input"],
      [RESPONSES]: ["max_output_tokens", "temperature", "top_p", "stream", "parallel_tool_calls"],
    };
    let n = 0;
    for (const path of PATHS) {
      for (const provider of PROVIDERS) {
        const base = JSON.stringify(withModel(REALISTIC[path], provider));
        for (const field of fields[path]) {
          for (const num of HUGE_NUMBERS) {
            const obj = JSON.parse(base);
            obj[field] = RAW(num);
            const body = materialize(JSON.stringify(obj));
            checkRequest(w, sendRaw(h, path, body), path, body);
            n++;
          }
        }
        // Numbers in nested places: tool-call arguments, thinking budgets, indices, image details.
        for (const num of HUGE_NUMBERS) {
          const nested: [Path, string][] = [
            [CHAT, `{"model":"${MODEL[provider]}","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\\"n\\":${num}}"}}]},{"role":"tool","tool_call_id":"c","content":"${num}"},{"role":"user","content":"x"}]}`],
            [CHAT, `{"model":"${MODEL[provider]}","messages":[{"role":"user","content":"x"}],"logit_bias":{"50256":${num}},"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"type":"integer","minimum":${num},"maximum":${num},"default":${num},"enum":[${num}]}}}}}]}`],
            [MESSAGES, `{"model":"${MODEL[provider]}","max_tokens":16,"thinking":{"type":"enabled","budget_tokens":${num}},"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{"n":${num}}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"${num}"}]}]}`],
          ];
          for (const [p, body] of nested) {
            checkRequest(w, sendRaw(h, p, body), p, body);
            n++;
          }
        }
      }
    }
    expect(n).toBeGreaterThan(1000);
    expectHealthy(h);
  });

  it("invalid UTF-8 and lone surrogates (raw and \\u-escaped) in any string: rejected cleanly or forwarded as valid UTF-8 JSON", async () => {
    const h = await newHost();
    const w = new TrapWatch(h);
    const invalid = [
      [0x80], [0xbf], [0xc0, 0xaf], [0xc1, 0xbf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf], [0xf0, 0x82, 0x82, 0xac], [0xf4, 0x90, 0x80, 0x80],
      [0xf5], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xfc], [0xfe], [0xff], [0xc3], [0xe4, 0xbd], [0xf0, 0x9f, 0x8c], [0xc3, 0x28], [0xe2, 0x28, 0xa1], [0x00],
    ].map((b) => Buffer.from(b));
    const escapes = ["\\ud800", "\\udfff", "\\ud800\\ud800", "\\udc00\\ud800", "\\ud83d", "\\ud83d\\u0041", "\\u0000", "\\uffff", "\\ufffe", "\\u2028", "\\ud83d\\ude00", "\\uDBFF\\uDFFF"];
    fc.assert(
      fc.property(fc.constantFrom(...PATHS), fc.constantFrom(...PROVIDERS), fc.nat(), fc.oneof(fc.constantFrom(...invalid), fc.constantFrom(...escapes).map((e) => Buffer.from(e))), fc.nat({ max: 3 }), (path, provider, at, junk, times) => {
        const body = Buffer.from(JSON.stringify(withModel(REALISTIC[path], provider)), "utf8");
        // Only inside string literals (keys and values), where the bytes are syntactically allowed.
        const text = body.toString("latin1");
        const spots: number[] = [];
        let inString = false;
        for (let i = 0; i < text.length; i++) {
          const c = text[i];
          if (c === "\\" && inString) { i++; continue; }
          if (c === "\"") inString = !inString;
          else if (inString) spots.push(i);
        }
        let out = body;
        for (let k = 0; k <= times; k++) {
          const spot = spots[(at + k * 7919) % spots.length] + k * junk.length;
          out = Buffer.concat([out.subarray(0, spot), junk, out.subarray(spot)]);
        }
        checkRequest(w, sendRaw(h, path, out), path, out);
      }),
      FC(600),
    );
    expectHealthy(h);
  });

  for (const path of PATHS) {
    for (const provider of PROVIDERS) {
      it(`${path} to ${provider}: requests from the schema model with wrong types anywhere`, async () => {
        const h = await newHost();
        const w = new TrapWatch(h);
        const model = fc.oneof({ weight: 8, arbitrary: fc.constant(MODEL[provider]) }, { weight: 1, arbitrary: ANY_MODEL });
        const own = requestArbitrary(path, model) as fc.Arbitrary<Record<string, unknown>>;
        const others = fc.oneof(...PATHS.filter((p) => p !== path).map((p) => requestArbitrary(p, model) as fc.Arbitrary<Record<string, unknown>>));
        const body = serialized(mutated(fc.oneof({ weight: 6, arbitrary: own }, { weight: 1, arbitrary: others })));
        fc.assert(
          fc.property(body, (b) => {
            checkRequest(w, sendRaw(h, path, b), path, b);
          }),
          FC(250),
        );
        expectHealthy(h);
      });
    }
  }

  it("a key given twice is refused with a 400 in the client's shape, whichever comes first", async () => {
    // The gateway would route and account by one value while a provider that keeps the first
    // one served another (validate.ts).
    const h = await newHost();
    const w = new TrapWatch(h);
    const jsonOnly = fc.oneof(fc.constantFrom<unknown>(null, true, 5, "x", [], {}, [{ role: "user", content: "dup" }], "fz-anthropic", "gemini-2.5-flash"), fc.jsonValue({ maxDepth: 2 }));
    fc.assert(
      fc.property(fc.constantFrom(...PATHS), fc.constantFrom(...PROVIDERS), fc.constantFrom("model", "messages", "stream", "max_tokens", "input", "tools", "system", "temperature"), jsonOnly, fc.boolean(), (path, provider, key, value, before) => {
        const obj = withModel(REALISTIC[path], provider) as Record<string, unknown>;
        if (!(key in obj)) obj[key] = value; // the key is there once already
        const t = JSON.stringify(obj);
        const dup = `${JSON.stringify(key)}:${JSON.stringify(value)}`;
        const raw = before ? `{${dup},${t.slice(1)}` : `${t.slice(0, -1)},${dup}}`;
        const a = checkRequest(w, sendRaw(h, path, raw), path, raw);
        expect(a.kind, `${path} ${raw.slice(0, 300)}`).toBe("rejected");
        expect((a as { status: number }).status).toBe(400);
      }),
      FC(300),
    );
    expectHealthy(h);
  });

  it("bodies around max_request_body_bytes, whole or in many chunks: 413 with a JSON error above it", async () => {
    const LIMIT = 2048;
    const h = await newHost({ ...CONFIG, max_request_body_bytes: LIMIT });
    const w = new TrapWatch(h);
    fc.assert(
      fc.property(fc.constantFrom(...PATHS), fc.constantFrom(...PROVIDERS), fc.integer({ min: LIMIT - 300, max: LIMIT + 300 }), fc.array(fc.nat(), { maxLength: 12 }), fc.boolean(), (path, provider, size, cuts, declare) => {
        const base = withModel(REALISTIC[path], provider) as Record<string, unknown>;
        const padLength = Math.max(0, size - Buffer.byteLength(JSON.stringify({ ...base, user: "" })));
        const body = Buffer.from(JSON.stringify({ ...base, user: "é".repeat(Math.floor(padLength / 2)) + "x".repeat(padLength % 2) }), "utf8");
        const s = sendRaw(h, path, body, { cuts: cuts.map((c) => c % (body.length + 1)), headers: declare ? { "content-length": String(body.length) } : {} });
        const r = checkRequest(w, s, path, body);
        if (body.length > LIMIT && !(r.kind === "rejected" && r.status === 413)) throw new Error(`a ${body.length}-byte body (limit ${LIMIT}) got ${JSON.stringify(r).slice(0, 200)}`);
        if (body.length <= LIMIT && r.kind === "rejected" && r.status === 413) throw new Error(`a ${body.length}-byte body (limit ${LIMIT}) was refused as too large`);
      }),
      FC(200),
    );
    expectHealthy(h);
  });

  it("odd request headers: content-length junk, no body, queries, other methods", async () => {
    const h = await newHost();
    const w = new TrapWatch(h);
    for (const path of PATHS) {
      const body = JSON.stringify(withModel(REALISTIC[path], "openai"));
      for (const cl of ["", "abc", "-1", "1e3", "18446744073709551616", "99999999999999999999999", " 5", "0x10", "5, 5", "0", String(body.length)]) {
        const s = sendRaw(h, path, body, { headers: { "content-length": cl } });
        checkRequest(w, s, path, body);
      }
      for (const p of [`${path}?x=1`, `${path}?`, `${path}#f`, `${path}/`, `${path}?api-version=1&model=x`]) {
        const s = sendRaw(h, p, body);
        w.check(() => p);
        if (s.getSentLocalResponse()) checkRequest(w, s, path, body);
        else s.completeHttpContext();
      }
      // Headers with end_stream: no body at all.
      const s = h.newStream();
      s.callOnRequestHeaders({ ":method": "POST", ":path": path, ":authority": "gw", "content-type": "application/json" }, true);
      w.check(() => `${path} without a body`);
      const r = s.getSentLocalResponse();
      expect(r?.statusCode, `${path} without a body`).toBe(400);
      expectJsonError(r!.statusCode, r!.headers, r!.body, clientOf(path), `${path} without a body`);
      // Other methods: 405 in the client's shape, naming the one method the path takes.
      for (const method of ["GET", "PUT", "DELETE", "OPTIONS", "post"]) {
        const m = sendRaw(h, path, body, { method });
        w.check(() => `${method} ${path}`);
        const r = m.getSentLocalResponse();
        expect(r?.statusCode, `${method} ${path}`).toBe(405);
        expect(header(r!.headers, "allow")).toBe("POST");
        expectJsonError(r!.statusCode, r!.headers, r!.body, clientOf(path), `${method} ${path}`);
        m.completeHttpContext();
      }
    }
    expectHealthy(h);
  });
});

describe("ai-proxy fuzz: response side", () => {
  const RECORDED = recordedStreams();
  const RECORDED_RESPONSES = recordedResponsesStreams();
  // What OpenAI's own Responses API answers (whole), for a Responses client of an OpenAI instance.
  const RESPONSE_ANSWER = {
    id: "resp_1", object: "response", created_at: 1735689600, status: "completed", error: null, incomplete_details: null, model: "gpt-4o-mini-2024-07-18",
    output: [{ id: "msg_1", type: "message", status: "completed", role: "assistant", content: [{ type: "output_text", text: "Héllo 🌍", annotations: [] }] }, { id: "fc_1", type: "function_call", status: "completed", call_id: "call_1", name: "get_weather", arguments: "{\"city\":\"São Paulo\"}" }],
    usage: { input_tokens: 12, input_tokens_details: { cached_tokens: 0 }, output_tokens: 9, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 21 },
  };

  for (const t of [...targets(), ...jsonTargets()]) {
    const format = formatOf(t.provider);
    const sse = t.stream;
    const ct = sse ? "text/event-stream" : "application/json";
    const realistic = t.path === EMBEDDINGS ? (format === "gemini" ? GEMINI_EMBEDDINGS : OPENAI_EMBEDDINGS) : isNativeResponses(t) ? RESPONSE_ANSWER : CHAT_ANSWER[format];
    const realisticBytes = Buffer.from(JSON.stringify(realistic), "utf8");

    describe(label(t), () => {
      // Each group on its own host, so one finding neither hides nor poisons the others.
      const group = (name: string, body: (h: Host, w: TrapWatch) => void) =>
        it(name, async () => {
          const h = await newHost();
          const w = new TrapWatch(h);
          body(h, w);
          expectHealthy(h);
        });

      if (!sse) {
        group("the realistic answer, then truncated at every byte", (h, w) => {
          checkAnswer(h, w, t, { status: "200", contentType: "application/json", chunks: [realisticBytes] });
          for (let i = 0; i < realisticBytes.length; i++) checkAnswer(h, w, t, { status: "200", contentType: ct, chunks: [realisticBytes.subarray(0, i)] });
        });
      } else {
        group("recorded streams cut short anywhere, in any chunks; a JSON answer to a stream request", (h, w) => {
          const recs: RecordedStream[] = isNativeResponses(t) ? Object.values(RECORDED_RESPONSES) : Object.values(RECORDED[t.provider]);
          fc.assert(
            fc.property(fc.constantFrom(...recs), fc.double({ min: 0, max: 1, noNaN: true }), cutsArb, (rec, end, cuts) => {
              const bytes = Buffer.from(rec.bytes).subarray(0, Math.floor(end * rec.bytes.length));
              checkAnswer(h, w, t, { status: "200", contentType: rec.contentType, chunks: chunked(bytes, cuts) });
            }),
            FC(60),
          );
          checkAnswer(h, w, t, { status: "200", contentType: "application/json", chunks: [realisticBytes] });
          for (let i = 0; i < realisticBytes.length; i += 7) checkAnswer(h, w, t, { status: "200", contentType: "application/json", chunks: [realisticBytes.subarray(0, i)] });
        });
      }

      group("random JSON and provider-shaped answers with wrong types, under 2xx and error statuses", (h, w) => {
        fc.assert(
          fc.property(fc.oneof(fc.json({ maxDepth: 3 }), answerShapes(format).map((o) => materialize(JSON.stringify(o) ?? "null"))), cutsArb, fc.constantFrom("200", "200", "201", ...ERROR_STATUSES), (json, cuts, status) => {
            const body = sse && status.startsWith("2") ? Buffer.from(sseFrame(format, JSON.parse(json)), "utf8") : Buffer.from(json, "utf8");
            checkAnswer(h, w, t, { status, contentType: sse && status.startsWith("2") ? "text/event-stream" : "application/json", chunks: chunked(body, cuts) });
          }),
          FC(100),
        );
      });

      if (sse) {
        group("streams of provider-shaped events with wrong types (framing intact)", (h, w) => {
          fc.assert(
            fc.property(fc.array(answerShapes(format), { minLength: 1, maxLength: 8 }), fc.constantFrom("\n", "\r\n"), cutsArb, (events, eol, cuts) => {
              const body = Buffer.from(events.map((e) => sseFrame(format, e, eol)).join(""), "utf8");
              checkAnswer(h, w, t, { status: "200", contentType: "text/event-stream", chunks: chunked(body, cuts) });
            }),
            FC(100),
          );
        });
        group("random SSE garbage: fields, comments, junk bytes, any line ending, unterminated", (h, w) => {
          fc.assert(
            fc.property(sseGarbage(format), cutsArb, (body, cuts) => {
              checkAnswer(h, w, t, { status: "200", contentType: "text/event-stream; charset=utf-8", chunks: chunked(body, cuts) });
            }),
            FC(100),
          );
        });
      }

      group("any bytes under any status and content type; headers-only answers", (h, w) => {
        fc.assert(
          fc.property(fc.constantFrom(...ERROR_STATUSES, "200"), fc.constantFrom(...CONTENT_TYPES, null), fc.oneof(fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u)), fc.string({ unit: "binary", maxLength: 40 }).map((x) => Buffer.from(x, "utf8")), fc.constantFrom(...["", "<html>502 Bad Gateway</html>", "upstream connect error or disconnect/reset before headers. reset reason: connection failure", "no healthy upstream", "upstream request timeout", "{\"error\":\"x\"}", "{\"error\":{\"message\":5}}", "{\"type\":\"error\"}", "[1,2]", "null", "{\"message\":\"Service Unavailable\"}"].map((x) => Buffer.from(x)))), fc.boolean(), (status, contentType, body, headersOnly) => {
            checkAnswer(h, w, t, { status, contentType, chunks: [body], headersOnly });
          }),
          FC(80),
        );
      });
    });
  }

  // Giant input, once per wire format (the framing and the decoders do not depend on the provider beyond it).
  const big = "é🌍x".repeat(150_000); // ~1.2 MB of UTF-8
  const GIANT: Record<Format, { provider: Provider; event: string }> = {
    openai: { provider: "openai", event: `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "m", choices: [{ index: 0, delta: { content: big }, finish_reason: null }] })}\n\ndata: ${JSON.stringify({ id: "c", choices: [{ index: 0, delta: {}, finish_reason: "stop" }], usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } })}\n\ndata: [DONE]\n\n` },
    anthropic: { provider: "anthropic", event: `event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","model":"m","usage":{"input_tokens":1,"output_tokens":1}}}\n\nevent: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\nevent: content_block_delta\ndata: ${JSON.stringify({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text: big } })}\n\nevent: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\nevent: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":5}}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n` },
    gemini: { provider: "gemini", event: `data: ${JSON.stringify({ candidates: [{ content: { role: "model", parts: [{ text: big }] }, finishReason: "STOP", index: 0 }], usageMetadata: { promptTokenCount: 1, candidatesTokenCount: 2, totalTokenCount: 3 }, responseId: "r" })}\r\n\r\n` },
  };
  for (const format of ["openai", "anthropic", "gemini"] as Format[]) {
    const { provider, event } = GIANT[format];
    const streams: Target[] = [{ provider, path: CHAT, stream: true }, { provider, path: MESSAGES, stream: true }, { provider, path: CHAT, stream: true, includeUsage: true }];
    describe(`giant input, ${format} format (${provider})`, () => {
      const group = (name: string, body: (h: Host, w: TrapWatch, t: Target) => void) =>
        it(name, async () => {
          const h = await newHost();
          const w = new TrapWatch(h);
          for (const t of streams) body(h, w, t);
          expectHealthy(h);
        });
      group("a 1.2 MB event, whole and split", (h, w, t) => {
        const g = Buffer.from(event, "utf8");
        checkAnswer(h, w, t, { status: "200", contentType: "text/event-stream", chunks: [g] });
        checkAnswer(h, w, t, { status: "200", contentType: "text/event-stream", chunks: chunked(g, [0.1, 0.3, 0.5, 0.5001, 0.9]) });
      });
      group("a 2 MB line that never ends", (h, w, t) => {
        const line = Buffer.from("data: {\"choices\":[{\"delta\":{\"content\":\"" + "a".repeat(2_000_000), "utf8");
        checkAnswer(h, w, t, { status: "200", contentType: "text/event-stream", chunks: chunked(line, [0.25, 0.5, 0.75]) });
      });
      group("20,000 tiny events and 200,000 comment lines", (h, w, t) => {
        const tiny = Buffer.from((format === "anthropic" ? "event: ping\ndata: {\"type\":\"ping\"}\n\n" : ": keep-alive\n\ndata: {}\n\n").repeat(20_000), "utf8");
        checkAnswer(h, w, t, { status: "200", contentType: "text/event-stream", chunks: chunked(tiny, [0.5]) });
        checkAnswer(h, w, t, { status: "200", contentType: "text/event-stream", chunks: [Buffer.from(":\n".repeat(200_000), "utf8")] });
      });
      it("a 1.2 MB plain answer and a 1.2 MB error", async () => {
        const h = await newHost();
        const w = new TrapWatch(h);
        const giantAnswer = Buffer.from(JSON.stringify({ ...CHAT_ANSWER[format], padding: big }), "utf8");
        for (const path of [CHAT, MESSAGES] as Path[]) {
          checkAnswer(h, w, { provider, path, stream: false }, { status: "200", contentType: "application/json", chunks: chunked(giantAnswer, [0.5]) });
          checkAnswer(h, w, { provider, path, stream: false }, { status: "500", contentType: "application/json", chunks: [Buffer.from(JSON.stringify({ error: { message: big, type: "api_error" } }))] });
        }
        expectHealthy(h);
      });
    });
  }
});
