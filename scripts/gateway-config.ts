// gateway.yaml: read, validate against schemas/gateway.schema.json (ajv) and a few checks a schema
// cannot express, and normalise (defaults applied, keys hashed, endpoints resolved). Every problem
// names the file, line, column and field: `gateway.yaml:14:15: providers[0].provider: must be one of ...`.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import AjvImport, { type ErrorObject } from "ajv";
import { LineCounter, parseDocument, isMap, isSeq, isPair, isScalar, type Document, type Node } from "yaml";

const Ajv = AjvImport as unknown as typeof AjvImport.default;
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const SCHEMA_PATH = join(root, "schemas", "gateway.schema.json");

export const PROVIDERS = ["openai", "azure-openai", "anthropic", "gemini", "deepseek", "mistral", "openai-compatible"] as const;
export type ProviderName = (typeof PROVIDERS)[number];

/** The filter's defaults (assembly/providers/*.ts defaultEndpoint); Azure and openai-compatible have none. */
export const DEFAULT_ENDPOINT: Record<ProviderName, string | null> = {
  openai: "https://api.openai.com/v1",
  "azure-openai": null,
  anthropic: "https://api.anthropic.com",
  gemini: "https://generativelanguage.googleapis.com/v1beta",
  deepseek: "https://api.deepseek.com",
  mistral: "https://api.mistral.ai/v1",
  "openai-compatible": null,
};

/** Providers whose APIs serve HTTP/2 over TLS: their clusters offer h2 by ALPN (HTTP/1.1 fallback). */
export const HTTP2_BY_DEFAULT: ReadonlySet<ProviderName> = new Set(["openai", "azure-openai", "anthropic", "gemini"]);

export interface Problem {
  line: number;
  column: number;
  /** Field path as written: providers[0].provider */
  field: string;
  message: string;
}

export class GatewayConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: Problem[],
  ) {
    super(problems.map((p) => `${file}:${p.line}:${p.column}: ${p.field ? p.field + ": " : ""}${p.message}`).join("\n"));
    this.name = "GatewayConfigError";
  }
}

export interface Instance {
  name: string;
  provider: ProviderName;
  apiKeyEnv: string | null;
  apiKey: string | null;
  endpoint: string;
  url: URL;
  models?: string[];
  model?: string;
  modelMap?: Record<string, string>;
  options?: Record<string, unknown>;
  maxTokens?: number;
  apiVersion?: string;
  deployment?: string;
  headers?: Record<string, string>;
  weight?: number;
  priority?: number;
  price?: { input?: number; output?: number };
  http2: boolean;
  healthCheck: { type: "tcp" | "http" | "none"; path?: string; interval: string };
}

export interface GatewayConfig {
  listener: { address: string; port: number };
  admin: { address: string; port: number };
  accessLog: { path: string };
  /** Envoy durations ("300s"). */
  timeouts: { request: string; idle: string; connect: string };
  /** Keys as the key-auth filter takes them; plain and env: keys are hashed to sha256:<hex>. */
  consumers: { name: string; keys: string[] }[];
  providers: Instance[];
  /** ai-proxy pools, as the filter takes them. */
  pools: { name: string; instances: string[]; algorithm?: string; hash_on?: string }[];
  keyAuth: { enabled: boolean; header?: string; query?: string; hideCredentials?: boolean; anonymous?: string; realm?: string };
  aiProxy: {
    clusterHeader: string;
    maxRequestBodyBytes?: number;
    defaultPool?: string;
    instanceHeader?: boolean;
    health?: Record<string, unknown>;
    fallback?: Record<string, unknown>;
  };
}

type Path = (string | number)[];

/** Position of the node at `path` (or of its key, for a field that should not be there). */
function locate(doc: Document, lc: LineCounter, path: Path, keyOf?: string): { line: number; column: number } {
  let node: unknown = doc.contents;
  let offset = (doc.contents as Node | null)?.range?.[0] ?? 0;
  const steps = keyOf === undefined ? path : [...path, keyOf];
  for (let i = 0; i < steps.length; i++) {
    const seg = steps[i];
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      const keyNode = pair.key as Node;
      if (i === steps.length - 1 && keyOf !== undefined) {
        offset = keyNode.range?.[0] ?? offset;
        break;
      }
      const value = pair.value as Node | null;
      offset = value?.range?.[0] ?? keyNode.range?.[0] ?? offset;
      node = value;
    } else if (isSeq(node)) {
      const item = node.items[Number(seg)] as Node | undefined;
      if (!item) break;
      offset = item.range?.[0] ?? offset;
      node = item;
    } else break;
  }
  const pos = lc.linePos(offset);
  return { line: pos.line, column: pos.col };
}

function fieldName(path: Path): string {
  let out = "";
  for (const seg of path) out += typeof seg === "number" ? `[${seg}]` : out ? `.${seg}` : seg;
  return out;
}

function pointerToPath(pointer: string, data: unknown): Path {
  if (!pointer) return [];
  const out: Path = [];
  let cur: any = data;
  for (const raw of pointer.slice(1).split("/")) {
    const seg = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    const key: string | number = Array.isArray(cur) ? Number(seg) : seg;
    out.push(key);
    cur = cur?.[key];
  }
  return out;
}

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "number") return Number.isInteger(v) ? "an integer" : "a number";
  return `a ${typeof v}`;
}

function describe(e: ErrorObject, value: unknown): string {
  const p = e.params as Record<string, any>;
  const description = (e.parentSchema as { description?: string } | undefined)?.description;
  switch (e.keyword) {
    case "additionalProperties":
      return `unknown field '${p.additionalProperty}' (allowed: ${Object.keys((e.parentSchema as any)?.properties ?? {}).join(", ")})`;
    case "required":
      return `missing required field '${p.missingProperty}'`;
    case "enum":
      return `must be one of: ${p.allowedValues.join(", ")} (got ${JSON.stringify(value)})`;
    case "const":
      return `must be ${JSON.stringify(p.allowedValue)}${description ? ` (${description})` : ""}`;
    case "type":
      return `must be ${p.type === "object" ? "a mapping" : p.type === "array" ? "a list" : `${/^[aeiou]/.test(p.type) ? "an" : "a"} ${p.type}`} (got ${typeOf(value)})`;
    case "pattern":
      return `${JSON.stringify(value)} is not valid${description ? `: ${description}` : ` (must match ${p.pattern})`}`;
    case "minItems":
      return `must list at least ${p.limit} item${p.limit === 1 ? "" : "s"}`;
    case "minLength":
      return "must not be empty";
    case "minimum":
    case "maximum":
      return `must be ${e.keyword === "minimum" ? ">=" : "<="} ${p.limit} (got ${JSON.stringify(value)})`;
    default:
      return e.message ?? e.keyword;
  }
}

let validator: ReturnType<InstanceType<typeof Ajv>["compile"]> | null = null;
function schemaValidator() {
  if (!validator) {
    const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictRequired: false, useDefaults: false });
    validator = ajv.compile(JSON.parse(readFileSync(SCHEMA_PATH, "utf8")));
  }
  return validator;
}

/** "500ms" | "5s" | "2m" -> Envoy's protobuf JSON duration ("0.5s", "5s", "120s"). */
export function envoyDuration(d: string): string {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m)$/.exec(d);
  if (!m) throw new Error(`bad duration ${d}`);
  const n = Number(m[1]);
  const seconds = m[2] === "ms" ? n / 1000 : m[2] === "m" ? n * 60 : n;
  return `${Number(seconds.toFixed(9))}s`;
}

export function sha256Key(key: string): string {
  return "sha256:" + createHash("sha256").update(key, "utf8").digest("hex");
}

export interface LoadOptions {
  /** Name used in messages (default: the path's base name). */
  name?: string;
  /** Environment for env: consumer keys (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export function loadGatewayConfig(path: string, opts: LoadOptions = {}): GatewayConfig {
  return parseGatewayConfig(readFileSync(path, "utf8"), { name: opts.name ?? path.split(/[\\/]/).pop(), env: opts.env });
}

export function parseGatewayConfig(text: string, opts: LoadOptions = {}): GatewayConfig {
  const file = opts.name ?? "gateway.yaml";
  const env = opts.env ?? process.env;
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    throw new GatewayConfigError(
      file,
      doc.errors.map((e) => {
        const pos = lc.linePos(e.pos[0]);
        return { line: pos.line, column: pos.col, field: "", message: e.message.split("\n")[0] };
      }),
    );
  }
  const data = doc.toJS() ?? {};
  const problems: Problem[] = [];
  const fail = (path: Path, message: string, keyOf?: string) => {
    const at = locate(doc, lc, path, keyOf);
    problems.push({ ...at, field: fieldName(keyOf === undefined ? path : [...path, keyOf]), message });
  };

  const validate = schemaValidator();
  if (!validate(data)) {
    for (const e of validate.errors ?? []) {
      if (e.keyword === "if") continue; // its "then" error says what is wrong
      const path = pointerToPath(e.instancePath, data);
      let value: any = data;
      for (const seg of path) value = value?.[seg];
      if (e.keyword === "additionalProperties") fail(path, describe(e, value), (e.params as any).additionalProperty);
      else if (e.keyword === "required") fail([...path], describe(e, value));
      else fail(path, describe(e, value));
    }
    throw new GatewayConfigError(file, dedupe(problems));
  }

  // Checks the schema cannot express.
  const consumers: GatewayConfig["consumers"] = [];
  const seenNames = new Map<string, number>();
  const seenKeys = new Map<string, string>();
  (data.consumers ?? []).forEach((c: { name: string; keys: string[] }, i: number) => {
    if (seenNames.has(c.name)) fail(["consumers", i, "name"], `duplicate consumer name '${c.name}' (also consumers[${seenNames.get(c.name)}])`);
    seenNames.set(c.name, i);
    const keys: string[] = [];
    c.keys.forEach((k, j) => {
      const at: Path = ["consumers", i, "keys", j];
      let digest: string;
      if (k.startsWith("env:")) {
        const name = k.slice(4);
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return fail(at, `'${k}' is not a valid environment variable reference`);
        const v = env[name];
        if (v === undefined || v === "") return fail(at, `environment variable ${name} is not set (the key is read from it when rendering)`);
        if (v !== v.trim()) return fail(at, `environment variable ${name} starts or ends with white space`);
        digest = sha256Key(v);
      } else if (k.startsWith("sha256:")) {
        if (!/^[0-9a-fA-F]{64}$/.test(k.slice(7))) return fail(at, "sha256: must be followed by 64 hex characters");
        digest = "sha256:" + k.slice(7).toLowerCase();
      } else {
        if (k !== k.trim()) return fail(at, "a key must not start or end with white space");
        digest = sha256Key(k);
      }
      // Never print a key: name the consumer that already has it.
      if (seenKeys.has(digest)) return fail(at, `duplicate key (also given to consumer '${seenKeys.get(digest)}')`);
      seenKeys.set(digest, c.name);
      keys.push(digest);
    });
    consumers.push({ name: c.name, keys });
  });

  const providers: Instance[] = [];
  const seenProviders = new Map<string, number>();
  (data.providers as any[]).forEach((p, i) => {
    const at = (f?: string): Path => (f ? ["providers", i, f] : ["providers", i]);
    if (seenProviders.has(p.name)) fail(at("name"), `duplicate provider instance name '${p.name}' (also providers[${seenProviders.get(p.name)}])`);
    seenProviders.set(p.name, i);
    const provider = p.provider as ProviderName;
    if (p.api_key !== undefined && p.api_key_env !== undefined) fail(at("api_key"), "give api_key or api_key_env, not both");
    if (p.api_key === undefined && p.api_key_env === undefined && provider !== "openai-compatible") {
      fail(at(), `missing required field 'api_key_env' (the environment variable holding the ${provider} key; or api_key inline)`);
    }
    const endpoint: string = (p.endpoint ?? DEFAULT_ENDPOINT[provider] ?? "").replace(/\/+$/, "");
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      fail(at("endpoint"), `${JSON.stringify(p.endpoint)} is not a valid URL`);
      return;
    }
    const https = url.protocol === "https:";
    if (p.http2 === true && !https) fail(at("http2"), "HTTP/2 needs an https endpoint (Envoy offers h2 by TLS ALPN)");
    providers.push({
      name: p.name,
      provider,
      apiKeyEnv: p.api_key_env ?? null,
      apiKey: p.api_key ?? null,
      endpoint,
      url,
      models: p.models,
      model: p.model,
      modelMap: p.model_map,
      options: p.options,
      maxTokens: p.max_tokens,
      apiVersion: p.api_version,
      deployment: p.deployment,
      headers: p.headers,
      weight: p.weight,
      priority: p.priority,
      price: p.price,
      http2: https && (p.http2 ?? HTTP2_BY_DEFAULT.has(provider)),
      healthCheck: {
        type: p.health_check?.type ?? "tcp",
        path: p.health_check?.path,
        interval: envoyDuration(p.health_check?.interval ?? "10s"),
      },
    });
  });

  const pools: GatewayConfig["pools"] = data.pools ?? [];
  const seenPools = new Map<string, number>();
  pools.forEach((pool, i) => {
    if (seenPools.has(pool.name)) fail(["pools", i, "name"], `duplicate pool name '${pool.name}' (also pools[${seenPools.get(pool.name)}])`);
    seenPools.set(pool.name, i);
    const members = new Set<string>();
    pool.instances.forEach((name, j) => {
      if (!seenProviders.has(name)) fail(["pools", i, "instances", j], `no provider instance named '${name}' (providers: ${[...seenProviders.keys()].join(", ")})`);
      else if (members.has(name)) fail(["pools", i, "instances", j], `'${name}' is listed twice`);
      members.add(name);
    });
  });
  const f = data.filters ?? {};
  const ka = f.key_auth ?? {};
  const dp = f.ai_proxy?.default_pool;
  if (dp !== undefined && !seenPools.has(dp)) fail(["filters", "ai_proxy", "default_pool"], `no pool named '${dp}'`);
  const h = f.ai_proxy?.health;
  if (h?.max_cooldown_ms !== undefined && h.max_cooldown_ms < (h.cooldown_ms ?? 10000)) fail(["filters", "ai_proxy", "health", "max_cooldown_ms"], "must not be below cooldown_ms");
  if (ka.enabled !== false && (data.consumers ?? []).length === 0 && ka.anonymous === undefined) {
    fail(["consumers"], "key-auth is enabled but no consumer is listed: every request would get 401 (add consumers, set filters.key_auth.anonymous, or filters.key_auth.enabled: false)");
  }
  if (problems.length) throw new GatewayConfigError(file, dedupe(problems));

  const t = data.timeouts ?? {};
  return {
    listener: { address: data.listener.address ?? "0.0.0.0", port: data.listener.port },
    admin: { address: data.admin?.address ?? "127.0.0.1", port: data.admin?.port ?? 9901 },
    accessLog: { path: data.access_log?.path ?? "/dev/stdout" },
    timeouts: {
      request: envoyDuration(t.request ?? "300s"),
      idle: envoyDuration(t.idle ?? "120s"),
      connect: envoyDuration(t.connect ?? "5s"),
    },
    consumers,
    providers,
    pools,
    keyAuth: {
      enabled: ka.enabled ?? true,
      header: ka.header,
      query: ka.query,
      hideCredentials: ka.hide_credentials,
      anonymous: ka.anonymous,
      realm: ka.realm,
    },
    aiProxy: {
      clusterHeader: f.ai_proxy?.cluster_header ?? "x-sluice-cluster",
      maxRequestBodyBytes: f.ai_proxy?.max_request_body_bytes,
      defaultPool: dp,
      instanceHeader: f.ai_proxy?.instance_header,
      health: h,
      fallback: f.ai_proxy?.fallback,
    },
  };
}

function dedupe(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems
    .filter((p) => {
      const k = `${p.line}:${p.column}:${p.field}:${p.message}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    })
    .sort((a, b) => a.line - b.line || a.column - b.column);
}
