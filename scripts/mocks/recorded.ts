// Deterministic "recorded" streams: the exact bytes each mock sends for a fixed text answer and a fixed tool-call answer,
// built by the same code that serves live requests (fixed clock and ids). Made for property tests that split them at random
// byte positions. The text holds 2-, 3- and 4-byte UTF-8 characters so random cuts land inside characters.
import { DEFAULT_SWITCHES, decideReply, hashString, type Conversation, type Ctx, type MockKind, type ScriptStep } from "./common.js";
import { chatStreamFrames, openaiFlavor, type OAFlavor } from "./openai.js";
import { azureFlavor } from "./azure-openai.js";
import { deepseekFlavor } from "./deepseek.js";
import { mistralFlavor } from "./mistral.js";
import { compatFlavor } from "./openai-compatible.js";
import { anthropicStream } from "./anthropic.js";
import { geminiChunks, geminiFrame } from "./gemini.js";
import { responsesStreamFrames } from "./openai-responses.js";

export const RECORDED_TEXT = "Héllo, wörld — 你好 🌍! Streaming ✓ across chunk boundaries.";
export const RECORDED_TOOL = { name: "get_weather", arguments: { city: "São Paulo", unit: "celsius" } };
export const RECORDED_CLOCK = 1735689600000; // 2025-01-01T00:00:00Z

export interface RecordedStream {
  provider: MockKind;
  name: string;
  model: string;
  contentType: string;
  /** Number of SSE events (Gemini without alt=sse is not used here). */
  events: number;
  bytes: Uint8Array;
  /** The same bytes as a string (UTF-8). */
  text: string;
  /** What a correct translation must reproduce. */
  expected: { text: string; reasoning: string; toolCalls: { name: string; arguments: Record<string, unknown> }[] };
  /**
   * Members an OpenAI client's request adds for this answer (response_format for the JSON answers);
   * such a stream answers a Chat Completions request only.
   */
  request?: Record<string, unknown>;
}

function recordingCtx(kind: MockKind, name: string): Ctx {
  const ctx: Ctx = {
    kind,
    method: "POST",
    path: "/",
    query: new URLSearchParams(),
    headers: {},
    rawBody: "",
    json: {},
    parseError: false,
    opts: {},
    now: () => RECORDED_CLOCK,
    id: (label, length, alphabet) => hashString(`recorded:${kind}:${name}:${label}`, length, alphabet),
    switches: { ...DEFAULT_SWITCHES },
    begin: () => ({ step: undefined, switches: ctx.switches, injected: null }),
  };
  return ctx;
}

const CONV = (model: string, wantsReasoning: boolean, hiddenReasoning = false): Conversation => ({
  model,
  system: "You are terse.",
  turns: [{ role: "user", text: "Say hello in three languages, then check the weather in São Paulo.", images: 0 }],
  tools: [{ name: RECORDED_TOOL.name, schema: { type: "object", properties: { city: { type: "string" }, unit: { type: "string" } }, required: ["city"] } }],
  toolChoice: { mode: "auto" },
  stop: [],
  wantsReasoning,
  hiddenReasoning,
});

/** A JSON answer (response_format json_schema) holding the recorded text, and its schema. */
export const RECORDED_JSON = { answer: RECORDED_TEXT, city: "São Paulo", temp: 21.5 };
export const RECORDED_SCHEMA = {
  type: "object",
  properties: { answer: { type: "string" }, city: { type: "string" }, temp: { type: "number" } },
  required: ["answer", "city", "temp"],
  additionalProperties: false,
};
const JSON_REQUEST = { response_format: { type: "json_schema", json_schema: { name: "answer", strict: true, schema: RECORDED_SCHEMA } } };
/** The forced tool the gateway sends an Anthropic model without structured outputs, answered. */
const JSON_TOOL_STEP: ScriptStep = { toolCalls: [{ name: "answer", arguments: RECORDED_JSON }] };
const JSON_TEXT_STEP: ScriptStep = { text: JSON.stringify(RECORDED_JSON) };

const TEXT_STEP: ScriptStep = { text: RECORDED_TEXT, usage: { cached: 4 } };
const TOOL_STEP: ScriptStep = { toolCalls: [{ name: RECORDED_TOOL.name, arguments: RECORDED_TOOL.arguments }] };
const THINK_STEP: ScriptStep = { text: RECORDED_TEXT, reasoning: "Lét me thïnk — 想一想 🤔." };

function make(provider: MockKind, name: string, model: string, contentType: string, build: (ctx: Ctx) => string[], step: ScriptStep): RecordedStream {
  const ctx = recordingCtx(provider, name);
  const frames = build(ctx);
  const text = frames.join("");
  return {
    provider,
    name,
    model,
    contentType,
    events: frames.length,
    bytes: new TextEncoder().encode(text),
    text,
    expected: {
      text: step.text ?? "",
      reasoning: step.reasoning ?? "",
      toolCalls: (step.toolCalls ?? []).map((c) => ({ name: c.name, arguments: c.arguments as Record<string, unknown> })),
    },
  };
}

const SSE_UTF8 = "text/event-stream; charset=utf-8";

/**
 * Every provider's recorded streams: `text` and `tool` for all, plus `thinking` (Anthropic, Gemini) and `reasoning` (DeepSeek).
 * OpenAI-shaped streams are recorded with stream_options.include_usage (except DeepSeek's and Mistral's native usage-in-final-chunk).
 */
export function recordedStreams(): Record<MockKind, Record<string, RecordedStream>> {
  const reply = (conv: Conversation, step: ScriptStep, toolId: (i: number) => string) => decideReply(conv, step, toolId);
  const oa = (provider: MockKind, model: string, flavor: OAFlavor, includeUsage: boolean) => {
    const frames = (step: ScriptStep) => (ctx: Ctx) => chatStreamFrames(ctx, flavor, model, reply(CONV(model, false), step, (i) => flavor.toolId(ctx, i)), includeUsage);
    return { text: make(provider, "text", model, SSE_UTF8, frames(TEXT_STEP), TEXT_STEP), tool: make(provider, "tool", model, SSE_UTF8, frames(TOOL_STEP), TOOL_STEP) };
  };
  const gem = (name: string, step: ScriptStep, thinking: boolean) =>
    make("gemini", name, "gemini-2.5-flash", "text/event-stream", (ctx) => geminiChunks(ctx, "gemini-2.5-flash", reply(CONV("gemini-2.5-flash", thinking, !thinking), step, () => "")).map(geminiFrame), step);
  const ant = (name: string, step: ScriptStep, thinking: boolean, model = "claude-sonnet-4-5-20250929") =>
    make("anthropic", name, model, SSE_UTF8, (ctx) => anthropicStream(ctx, model, reply(CONV(model, thinking), step, (i) => `toolu_01${ctx.id(`tool${i}`, 22)}`)), step);
  // A JSON answer: what a client gets is the JSON text as content, whichever way the provider made it.
  const json = (rec: RecordedStream): RecordedStream => ({
    ...rec,
    request: JSON_REQUEST,
    expected: { text: JSON.stringify(RECORDED_JSON), reasoning: "", toolCalls: [] },
  });
  return {
    openai: oa("openai", "gpt-4o-mini", openaiFlavor, true),
    "azure-openai": oa("azure-openai", "gpt-4o", azureFlavor(), true),
    deepseek: {
      ...oa("deepseek", "deepseek-chat", deepseekFlavor(false), false),
      reasoning: make(
        "deepseek",
        "reasoning",
        "deepseek-reasoner",
        SSE_UTF8,
        (ctx) => chatStreamFrames(ctx, deepseekFlavor(true), "deepseek-reasoner", reply(CONV("deepseek-reasoner", true), THINK_STEP, (i) => deepseekFlavor(true).toolId(ctx, i)), false),
        THINK_STEP,
      ),
    },
    mistral: oa("mistral", "mistral-small-latest", mistralFlavor, false),
    "openai-compatible": oa("openai-compatible", "mock-model", compatFlavor(false), true),
    anthropic: {
      text: ant("text", TEXT_STEP, false),
      tool: ant("tool", TOOL_STEP, false),
      thinking: ant("thinking", THINK_STEP, true),
      // Structured outputs (output_config.format) on Claude 4.5: the JSON as text deltas.
      "json-native": json(ant("json-native", JSON_TEXT_STEP, false)),
      // An older generation: the forced tool's input_json_delta pieces become the content.
      "json-tool": json(ant("json-tool", JSON_TOOL_STEP, false, "claude-3-5-haiku-20241022")),
    },
    gemini: {
      text: gem("text", TEXT_STEP, false),
      tool: gem("tool", TOOL_STEP, false),
      thinking: gem("thinking", THINK_STEP, true),
      json: json(gem("json", JSON_TEXT_STEP, false)),
    },
  };
}

/**
 * OpenAI's own Responses API streams (POST /v1/responses on the OpenAI mock), `text` and `tool`, for
 * a Responses client passed through to an OpenAI instance. The request they answer has no
 * instructions or tools echoed (the Response echoes the request's settings).
 */
export function recordedResponsesStreams(): Record<"text" | "tool", RecordedStream> {
  const model = "gpt-4o-mini";
  const frames = (name: string, step: ScriptStep) => (ctx: Ctx) =>
    responsesStreamFrames(ctx, {}, model, decideReply(CONV(model, false), step, (i) => `call_${ctx.id(`tool${i}`, 24)}`));
  return {
    text: make("openai", "text", model, SSE_UTF8, frames("text", TEXT_STEP), TEXT_STEP),
    tool: make("openai", "tool", model, SSE_UTF8, frames("tool", TOOL_STEP), TOOL_STEP),
  };
}
