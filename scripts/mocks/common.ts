// Shared types and deterministic helpers for the mock LLM providers.
// Nothing here talks to the network; server.ts does, the provider files build bodies.
import { createHash } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";

export const MOCK_KINDS = [
  "openai",
  "azure-openai",
  "anthropic",
  "gemini",
  "deepseek",
  "mistral",
  "openai-compatible",
] as const;
export type MockKind = (typeof MOCK_KINDS)[number];

/** Fault and pacing switches. Set per server (`set`), per scripted step, or per request with `x-mock-*` headers. */
export interface Switches {
  /** Delay before the first body byte (streams: headers go out at once, then this wait; plain: before the response). */
  firstTokenDelayMs: number;
  /** Delay between SSE events. */
  interChunkDelayMs: number;
  /** Split every SSE event (and plain bodies) into random-size writes, always cutting inside a multi-byte UTF-8 character when there is one. */
  split: boolean;
  /** Seed of the split positions (mixed with the request number). */
  splitSeed: number;
  /** Pause between the pieces of a split event, so they leave as separate TCP segments. */
  splitDelayMs: number;
  /** Destroy the socket after N SSE events (plain responses: after half the body when set). */
  disconnectAfter: number | null;
  /** Answer 429 with this Retry-After (seconds), in the provider's own shape. */
  rateLimit: number | null;
  /** Answer this 5xx (500/502/503/504/529) in the provider's own shape. */
  serverError: number | null;
  /** Never answer (for timeouts). */
  hang: boolean;
  /** Send N SSE events, then stall without closing. */
  hangAfter: number | null;
  /** Number of text chunks in a stream (default: one per word). */
  chunks: number | null;
  /** SSE comment lines (`: keep-alive`) sent before the first event, as DeepSeek does while a request waits. */
  keepAlive: number;
  /** Emit the provider's mid-stream error event after N events, then end the stream. */
  streamErrorAfter: number | null;
  /** Status whose error type the mid-stream error carries (529 → overloaded_error on Anthropic). */
  streamErrorStatus: number;
}

export const DEFAULT_SWITCHES: Switches = {
  firstTokenDelayMs: 0,
  interChunkDelayMs: 0,
  split: false,
  splitSeed: 1,
  splitDelayMs: 1,
  disconnectAfter: null,
  rateLimit: null,
  serverError: null,
  hang: false,
  hangAfter: null,
  chunks: null,
  keepAlive: 0,
  streamErrorAfter: null,
  streamErrorStatus: 500,
};

export interface ToolCallSpec {
  name: string;
  /** Object or already-serialized JSON text. */
  arguments?: Record<string, unknown> | string;
  id?: string;
}

export interface UsageSpec {
  /** Total prompt tokens (Anthropic's input_tokens is this minus cached and cache-creation). */
  input?: number;
  /** Visible completion tokens (reasoning excluded). */
  output?: number;
  cached?: number;
  cacheCreation?: number;
  reasoning?: number;
}

/** What the next request that reaches a generation endpoint answers. Queue with `script()`. */
export interface ScriptStep {
  text?: string;
  reasoning?: string;
  toolCalls?: ToolCallSpec[];
  /** Provider-native finish value to report instead of the derived one (e.g. "length", "max_tokens", "SAFETY"). */
  finishReason?: string;
  usage?: UsageSpec;
  /** OpenAI-family refusal text. */
  refusal?: string;
  /** Answer an error in the provider's shape. `body` replaces the generated body entirely. */
  error?: { status: number; message?: string; type?: string; retryAfter?: number; body?: unknown; headers?: Record<string, string> };
  /** Emit the provider's mid-stream error after N events. */
  streamError?: { afterEvents: number; status?: number };
  /** Answer exactly this. */
  raw?: { status: number; headers?: Record<string, string>; body: string | object };
  /** One-shot switches for this request only. */
  switches?: Partial<Switches>;
  /** Embedding endpoints: vectors to return instead of the derived ones. */
  embeddings?: number[][];
}

export interface RecordedRequest {
  provider: MockKind;
  method: string;
  /** Path as received by this provider (prefix of the combined server removed), without the query. */
  path: string;
  query: Record<string, string>;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** Parsed JSON body, or undefined when absent or not JSON. */
  body: any;
  rawBody: string;
  time: number;
}

export interface MockOptions {
  port?: number;
  host?: string;
  /** How many of the latest requests `requests` keeps (default 1000): a mock that serves for a long
   * time (npm start's built-in providers) must not hold every request body it was ever sent. */
  maxRecorded?: number;
  /** Accepted credentials. Unset: any non-empty credential is accepted (it is still recorded). */
  apiKey?: string | string[];
  /** When set, other model names get the provider's model-not-found error. */
  models?: string[];
  /** Azure: deployment name → model. When set, other deployments get DeploymentNotFound. */
  deployments?: Record<string, string>;
  /** openai-compatible: base path (default "/v1"). */
  basePath?: string;
  /** openai-compatible: error shape of vLLM (default) or Ollama. */
  flavor?: "vllm" | "ollama";
  /** openai-compatible: require the Bearer key even if apiKey is unset (default false: optional). */
  requireAuth?: boolean;
  /** Extra body fields to accept on providers that reject unknown fields. */
  extraFields?: string[];
  switches?: Partial<Switches>;
  /** Clock in ms (default Date.now). */
  clock?: () => number;
  /** Seed of generated ids. */
  seed?: string;
  maxBodyBytes?: number;
}

// ---------- the neutral view of a request ----------

export interface Turn {
  role: "user" | "assistant" | "tool";
  text: string;
  images: number;
  toolCalls?: { id: string; name: string; args: string }[];
  toolResults?: { id: string; name?: string; content: string }[];
}

export interface Conversation {
  model: string;
  system: string;
  turns: Turn[];
  tools: { name: string; schema: any }[];
  toolChoice: { mode: "auto" | "none" | "required"; name?: string };
  maxTokens?: number;
  stop: string[];
  wantsReasoning: boolean;
  /** Reasoning that is counted but not shown (OpenAI o-series). */
  hiddenReasoning?: boolean;
  /**
   * The request asked for a JSON answer in the provider's own way (Anthropic output_config.format,
   * Gemini responseMimeType application/json): the schema it gave ({} for any object). The text
   * answer is then a JSON object following it.
   */
  json?: any;
}

export interface Reply {
  text: string;
  reasoning: string;
  toolCalls: { id: string; name: string; args: string }[];
  finish: "stop" | "length" | "tool_calls";
  stopSequence: string | null;
  nativeFinish?: string;
  refusal?: string;
  usage: { input: number; output: number; cached: number; cacheCreation: number; reasoning: number };
}

export interface InjectedError {
  status: number;
  retryAfter?: number;
  message?: string;
  type?: string;
  body?: unknown;
  headers?: Record<string, string>;
}

export type Outcome =
  | { type: "json"; status: number; headers?: Record<string, string>; body: unknown; pretty?: boolean }
  | { type: "text"; status: number; headers?: Record<string, string>; body: string }
  | {
      type: "sse";
      status?: number;
      headers?: Record<string, string>;
      frames: string[];
      /** Mid-stream error frame builder. */
      errorFrame?: (status: number) => string;
      /** SSE comment used for keep-alive lines. */
      comment?: string;
    }
  | { type: "raw"; status: number; headers?: Record<string, string>; body: string | Buffer };

export interface Ctx {
  kind: MockKind;
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  rawBody: string;
  /** JSON.parse of the body; `parseError` is set when it failed. */
  json: any;
  parseError: boolean;
  opts: MockOptions;
  now(): number;
  /** Deterministic id material for this request. */
  id(label: string, length: number, alphabet?: "base62" | "hex" | "b64url"): string;
  /**
   * Call once the request is valid and is going to be answered by a generation or embedding endpoint:
   * takes the next scripted step, resolves the effective switches, and tells whether an error is injected.
   */
  begin(): { step: ScriptStep | undefined; switches: Switches; injected: InjectedError | null };
  /** Switches resolved by begin() (defaults before). */
  switches: Switches;
}

export interface ProviderModule {
  kind: MockKind;
  handle(ctx: Ctx): Outcome | Promise<Outcome>;
}

// ---------- deterministic helpers ----------

const B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

export function hashString(material: string, length: number, alphabet: "base62" | "hex" | "b64url" = "base62"): string {
  let out = "";
  let counter = 0;
  const chars = alphabet === "hex" ? "0123456789abcdef" : alphabet === "b64url" ? B64URL : B62;
  while (out.length < length) {
    const digest = createHash("sha256").update(`${material}#${counter++}`).digest();
    for (const byte of digest) {
      if (out.length >= length) break;
      out += chars[byte % chars.length];
    }
  }
  return out;
}

export function uuidFrom(material: string): string {
  const h = hashString(material, 32, "hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${"89ab"[parseInt(h[16], 16) % 4]}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** ~4 characters a token; 0 for empty text. */
export function estimateTokens(text: string): number {
  const n = [...text].length;
  return n === 0 ? 0 : Math.max(1, Math.ceil(n / 4));
}

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Split text into stream pieces: one per word (leading whitespace kept) or `n` near-equal pieces. Never splits a code point. */
export function chunkText(text: string, n: number | null): string[] {
  if (text === "") return [];
  const cps = [...text];
  if (n !== null && n > 0) {
    const count = Math.min(n, cps.length);
    const out: string[] = [];
    for (let i = 0; i < count; i++) {
      const a = Math.floor((i * cps.length) / count);
      const b = Math.floor(((i + 1) * cps.length) / count);
      out.push(cps.slice(a, b).join(""));
    }
    return out;
  }
  return text.match(/\s*\S+|\s+$/gu) ?? [text];
}

/** Split serialized JSON arguments into fragments the way OpenAI streams them. */
export function fragments(s: string, n: number | null): string[] {
  if (s === "") return [];
  const cps = [...s];
  const count = n !== null && n > 0 ? Math.min(n, cps.length) : Math.max(1, Math.min(cps.length, Math.ceil(cps.length / 6)));
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const a = Math.floor((i * cps.length) / count);
    const b = Math.floor(((i + 1) * cps.length) / count);
    out.push(cps.slice(a, b).join(""));
  }
  return out;
}

export function maskKey(key: string): string {
  if (key.length <= 8) return "*".repeat(key.length);
  return `${key.slice(0, 3)}${"*".repeat(key.length - 7)}${key.slice(-4)}`;
}

export function keyAccepted(opts: MockOptions, key: string | undefined): boolean {
  if (!key) return false;
  if (opts.apiKey === undefined) return true;
  const keys = Array.isArray(opts.apiKey) ? opts.apiKey : [opts.apiKey];
  return keys.includes(key);
}

export function bearer(headers: IncomingHttpHeaders): string | undefined {
  const h = headers["authorization"];
  if (typeof h !== "string") return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(h.trim());
  return m ? m[1].trim() : undefined;
}

export function isObject(v: unknown): v is Record<string, any> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A deterministic unit-length vector derived from the text. */
export function embeddingVector(text: string, dims: number): number[] {
  const seed = parseInt(hashString(text, 8, "hex"), 16);
  const rnd = mulberry32(seed);
  const v = Array.from({ length: dims }, () => rnd() * 2 - 1);
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0)) || 1;
  return v.map((x) => Math.round((x / norm) * 1e7) / 1e7);
}

export function float32Base64(v: number[]): string {
  const buf = Buffer.alloc(v.length * 4);
  v.forEach((x, i) => buf.writeFloatLE(x, i * 4));
  return buf.toString("base64");
}

// ---------- reply derivation ----------

function schemaType(s: any): string {
  const t = Array.isArray(s?.type) ? s.type.find((x: string) => x !== "null") : s?.type;
  return typeof t === "string" ? t.toLowerCase() : s?.properties ? "object" : "string";
}

function valueFor(s: any): unknown {
  if (Array.isArray(s?.enum) && s.enum.length) return s.enum[0];
  switch (schemaType(s)) {
    case "number":
    case "integer":
      return 1;
    case "boolean":
      return true;
    case "array":
      return [];
    case "object":
      return {};
    default:
      return "test";
  }
}

/** Arguments for a tool: a JSON object found in the text, else `key=value` pairs, then every required property filled by type. */
export function argsFromSchema(schema: any, text: string): Record<string, unknown> {
  let args: Record<string, unknown> = {};
  const m = /\{[\s\S]*\}/.exec(text);
  if (m) {
    try {
      const parsed = JSON.parse(m[0]);
      if (isObject(parsed)) args = parsed;
    } catch {
      /* not JSON */
    }
  }
  if (Object.keys(args).length === 0) {
    for (const kv of text.matchAll(/(\w+)=("([^"]*)"|[^\s,;]+)/g)) {
      const raw = kv[3] ?? kv[2];
      const prop = schema?.properties?.[kv[1]];
      const t = prop ? schemaType(prop) : "string";
      args[kv[1]] = t === "number" || t === "integer" ? Number(raw) : t === "boolean" ? raw === "true" : raw;
    }
  }
  const required: string[] = Array.isArray(schema?.required) ? schema.required : [];
  for (const name of required) {
    if (!(name in args)) args[name] = valueFor(schema?.properties?.[name]);
  }
  return args;
}

export function lastUserTurn(conv: Conversation): Turn | undefined {
  for (let i = conv.turns.length - 1; i >= 0; i--) if (conv.turns[i].role === "user") return conv.turns[i];
  return undefined;
}

function conversationText(conv: Conversation): string {
  const parts = [conv.system];
  for (const t of conv.turns) {
    parts.push(t.text);
    for (const c of t.toolCalls ?? []) parts.push(c.name, c.args);
    for (const r of t.toolResults ?? []) parts.push(r.content);
  }
  if (conv.tools.length) parts.push(JSON.stringify(conv.tools));
  return parts.join("\n");
}

/**
 * The deterministic answer to a conversation:
 * - a scripted step wins;
 * - after tool results: "Tool result: <contents>";
 * - with tools offered (and not disabled), when the last user text names a tool or says "tool", or tool use is forced: a call to that tool;
 * - otherwise "Echo: <last user text>" (+ " [images: N]").
 * Stop sequences cut the text; max tokens truncate it (finish "length").
 */
export function decideReply(conv: Conversation, step: ScriptStep | undefined, toolId: (i: number) => string): Reply {
  const last = conv.turns[conv.turns.length - 1];
  const user = lastUserTurn(conv);
  const userText = user?.text ?? "";
  let text = "";
  let toolCalls: Reply["toolCalls"] = [];
  let reasoning = "";

  if (step && (step.text !== undefined || step.toolCalls !== undefined || step.refusal !== undefined)) {
    text = step.text ?? "";
    toolCalls = (step.toolCalls ?? []).map((c, i) => ({
      id: c.id ?? toolId(i),
      name: c.name,
      args: typeof c.arguments === "string" ? c.arguments : JSON.stringify(c.arguments ?? {}),
    }));
  } else if (last && last.toolResults && last.toolResults.length > 0 && !last.text) {
    text = `Tool result: ${last.toolResults.map((r) => r.content).join("; ")}`;
  } else {
    const forced = conv.toolChoice.mode === "required" || conv.toolChoice.name !== undefined;
    const named = conv.tools.find((t) => userText.includes(t.name));
    const wants = conv.tools.length > 0 && conv.toolChoice.mode !== "none" && (forced || named !== undefined || /\btools?\b/i.test(userText));
    if (wants) {
      const tool = conv.tools.find((t) => t.name === conv.toolChoice.name) ?? named ?? conv.tools[0];
      toolCalls = [{ id: toolId(0), name: tool.name, args: JSON.stringify(argsFromSchema(tool.schema, userText)) }];
    } else if (conv.json !== undefined) {
      text = JSON.stringify(argsFromSchema(conv.json, userText));
    } else {
      const images = user?.images ?? 0;
      text = `Echo: ${userText === "" && images === 0 ? "(empty)" : userText}${images ? ` [images: ${images}]` : ""}`;
    }
  }

  if (step?.reasoning !== undefined) reasoning = step.reasoning;
  else if (conv.wantsReasoning || conv.hiddenReasoning) reasoning = `Thinking about: ${userText || "the conversation"}`;

  let finish: Reply["finish"] = toolCalls.length ? "tool_calls" : "stop";
  let stopSequence: string | null = null;
  for (const s of conv.stop) {
    const at = s ? text.indexOf(s) : -1;
    if (at >= 0) {
      text = text.slice(0, at);
      stopSequence = s;
    }
  }
  if (conv.maxTokens !== undefined && conv.maxTokens > 0 && toolCalls.length === 0) {
    if (estimateTokens(text) > conv.maxTokens) {
      text = [...text].slice(0, conv.maxTokens * 4).join("");
      finish = "length";
      stopSequence = null;
    }
  }

  const visibleReasoning = conv.hiddenReasoning ? "" : reasoning;
  const usage = {
    input: estimateTokens(conversationText(conv)) + 3 * conv.turns.length,
    output: estimateTokens(text) + toolCalls.reduce((s, c) => s + estimateTokens(c.name + c.args), 0),
    cached: 0,
    cacheCreation: 0,
    reasoning: estimateTokens(reasoning),
  };
  Object.assign(usage, Object.fromEntries(Object.entries(step?.usage ?? {}).filter(([, v]) => v !== undefined)));
  return {
    text,
    reasoning: visibleReasoning,
    toolCalls,
    finish,
    stopSequence,
    nativeFinish: step?.finishReason,
    refusal: step?.refusal,
    usage,
  };
}

/** Serialize like Google's JSON front end does in streams: `"key": value`, no other spaces. */
export function googleJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(googleJson).join(",")}]`;
  if (isObject(v)) {
    return `{${Object.entries(v)
      .filter(([, x]) => x !== undefined)
      .map(([k, x]) => `${JSON.stringify(k)}: ${googleJson(x)}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}

/**
 * Text and image count of a message's content: a string, or parts. `isText` says which part types
 * hold text (Chat Completions: "text" or none; the Responses API's input_text / output_text have
 * their own names, so its mock passes any type).
 */
export function partsText(content: unknown, isText: (type: unknown) => boolean = (t) => t === "text" || t === undefined): { text: string; images: number } {
  if (typeof content === "string") return { text: content, images: 0 };
  if (!Array.isArray(content)) return { text: "", images: 0 };
  const texts: string[] = [];
  let images = 0;
  for (const p of content) {
    if (!isObject(p)) continue;
    if (typeof p.text === "string" && isText(p.type)) texts.push(p.text);
    else if (p.type === "image_url" || p.type === "input_image") images++;
  }
  return { text: texts.join("\n"), images };
}
