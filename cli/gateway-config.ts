// gateway.yaml: read, validate against schemas/gateway.schema.json (ajv) and a few checks a schema
// cannot express, and normalise (defaults applied, keys hashed, endpoints resolved). Every problem
// names the file, line, column and field: `gateway.yaml:14:15: providers[0].provider: must be one of ...`.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import AjvImport, { type ErrorObject } from "ajv";
import { LineCounter, parseDocument, isMap, isSeq, isPair, isScalar, type Document, type Node } from "yaml";
import { checkNative, type NativeConfig } from "./native-config.js";
import { checkIdentity, type IdentityJson } from "./identity-config.js";
import { envoyDuration } from "./duration.js";
import { keyRules, loadVirtualKeys, type VirtualKeysConfig } from "./virtual-keys-config.js";
import { checkModeration } from "./guard-moderation.js";
import { checkMcp, mcpCluster, mcpOauthCluster, type McpConfig } from "./mcp-config.js";
import { checkA2a, type A2aConfig } from "./a2a-config.js";
import { checkCache, type CacheConfig } from "./cache-config.js";
import { AI_PROXY_MAX_BODY } from "./render/constants.js";

const Ajv = AjvImport as unknown as typeof AjvImport.default;
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const SCHEMA_PATH = join(root, "schemas", "gateway.schema.json");

export const PROVIDERS = ["openai", "azure-openai", "anthropic", "gemini", "deepseek", "mistral", "openai-compatible", "bedrock", "bedrock-anthropic", "vertex", "vertex-anthropic"] as const;
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
  // Per region: https://bedrock-runtime.<region>.amazonaws.com (the instance's region).
  bedrock: null,
  "bedrock-anthropic": null,
  // Per project and region (vertexEndpoint).
  vertex: null,
  "vertex-anthropic": null,
};

/** Vertex AI's publisher base URL for Google's models in a project and region. */
export function vertexEndpoint(project: string, region: string, publisher = "google"): string {
  const host = region === "global" ? "aiplatform.googleapis.com" : `${region}-aiplatform.googleapis.com`;
  return `https://${host}/v1/projects/${project}/locations/${region}/publishers/${publisher}`;
}

/** Providers whose APIs serve HTTP/2 over TLS: their clusters offer h2 by ALPN (HTTP/1.1 fallback). */
export const HTTP2_BY_DEFAULT: ReadonlySet<ProviderName> = new Set(["openai", "azure-openai", "anthropic", "gemini", "bedrock", "bedrock-anthropic", "vertex", "vertex-anthropic"]);

/** An azure-openai instance's Entra ID settings as checked: the token endpoint and the client's variables. */
export interface EntraSettings {
  tokenUrl: URL;
  clientIdEnv: string;
  clientSecretEnv: string;
  scope: string;
}

function entraOf(e: any, at: Path, fail: Fail): EntraSettings {
  let tokenUrl: URL;
  try {
    tokenUrl = new URL(e.token_url ?? `https://login.microsoftonline.com/${e.tenant_id}/oauth2/v2.0/token`);
  } catch {
    fail([...at, "token_url"], `${JSON.stringify(e.token_url)} is not a valid URL`);
    tokenUrl = new URL("https://login.microsoftonline.com/");
  }
  if (tokenUrl.protocol !== "https:" && tokenUrl.protocol !== "http:") fail([...at, "token_url"], "must be an http(s) URL");
  return { tokenUrl, clientIdEnv: e.client_id_env ?? "AZURE_CLIENT_ID", clientSecretEnv: e.client_secret_env ?? "AZURE_CLIENT_SECRET", scope: e.scope ?? "https://cognitiveservices.azure.com/.default" };
}

/** A vertex instance's token source: the metadata server and the scope. */
export interface GoogleSettings {
  metadataUrl: URL;
  scope: string;
}

function googleOf(g: any, at: Path, fail: Fail): GoogleSettings {
  let metadataUrl: URL;
  try {
    metadataUrl = new URL(g.metadata_url ?? "http://metadata.google.internal");
  } catch {
    fail([...at, "metadata_url"], `${JSON.stringify(g.metadata_url)} is not a valid URL`);
    metadataUrl = new URL("http://metadata.google.internal");
  }
  return { metadataUrl, scope: g.scope ?? "https://www.googleapis.com/auth/cloud-platform" };
}

/** The AWS credential variables an instance that signs (Bedrock) reads unless it names others. */
export const AWS_ENV_DEFAULTS = { access_key_id_env: "AWS_ACCESS_KEY_ID", secret_access_key_env: "AWS_SECRET_ACCESS_KEY", session_token_env: "AWS_SESSION_TOKEN" } as const;

/**
 * What Envoy does with a filter after its VM failed (a trap: an abort, an out-of-bounds access):
 * gateway.yaml `filters.<name>.failure_policy`, rendered as PluginConfig.failure_policy (Envoy >= 1.33)
 * and Istio's WasmPlugin failStrategy. closed: every later stream on that worker gets 503 until Envoy
 * restarts; reload: 503 for at most about a second and a half, then a new VM; open: the filter is
 * skipped. docs/deploy-envoy.md.
 */
export type FailurePolicyName = "closed" | "open" | "reload";
/** The filters, by the name they are rendered under (PluginConfig.name, build/<name>.wasm). */
export type FilterName = "key-auth" | "identity" | "mcp" | "a2a" | "ai-router" | "ai-guard" | "ai-cache" | "ai-ratelimit" | "ai-proxy";
/**
 * key-auth and identity fail closed (an auth filter that fails open lets every request in), and so does
 * ai-guard (a guard that fails open passes what it guards); the others reload. identity's policy has no
 * setting (gateway.yaml `identity` is not under `filters`).
 */
export const FAILURE_POLICY_DEFAULTS: Readonly<Record<FilterName, FailurePolicyName>> = {
  "key-auth": "closed",
  identity: "closed",
  // Like key-auth: an mcp filter that fails open would let the route take its cluster from the client's own header.
  mcp: "closed",
  // The same: an a2a filter that fails open would let the route take its cluster from the client's header.
  a2a: "closed",
  "ai-router": "reload",
  "ai-guard": "closed",
  // A cache that fails is skipped: its requests go to the providers as if it were not there.
  "ai-cache": "open",
  "ai-ratelimit": "reload",
  "ai-proxy": "reload",
};
/**
 * Filters that may not fail open, and why: with the filter skipped, Envoy would still forward the request.
 * key-auth: nobody is authenticated, every request passes. ai-proxy: the route takes its cluster from a
 * header ai-proxy sets, so a client's own x-sluice-cluster would pick the provider, untranslated and unmetered.
 */
const NEVER_OPEN: Partial<Record<FilterName, string>> = {
  "key-auth": "an authentication filter that fails open lets every request through unauthenticated",
  "ai-proxy": "with ai-proxy skipped the route would take its cluster from the client's own cluster header, and nothing would be translated or counted",
};

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
    super(problems.map((p) => `${file}:${p.line ? `${p.line}:${p.column}:` : ""} ${p.field ? p.field + ": " : ""}${p.message}`).join("\n"));
    this.name = "GatewayConfigError";
  }
}

/** gateway.yaml could not be read at all (missing, a directory, no permission): one line, no stack. */
export class GatewayConfigReadError extends GatewayConfigError {
  constructor(file: string, message: string) {
    super(file, [{ line: 0, column: 0, field: "", message }]);
    this.name = "GatewayConfigReadError";
  }
}

const READ_ERRORS: Record<string, string> = {
  ENOENT: "no such file (give the configuration with --config <file>)",
  EISDIR: "is a directory, not a file",
  EACCES: "permission denied",
  EPERM: "permission denied",
};

/** Per million tokens of each kind, and a fee per request (ai-proxy's prices.ts). */
export interface Price {
  input?: number;
  output?: number;
  cached_input?: number;
  cache_write?: number;
  reasoning?: number;
  request?: number;
}

export interface Instance {
  name: string;
  provider: ProviderName;
  /** bedrock and bedrock-anthropic: the AWS region (the endpoint's, when not given) and the credential variables. */
  region?: string;
  aws?: { access_key_id_env: string; secret_access_key_env: string; session_token_env: string };
  /** A key pool: the variables of its keys (instead of apiKeyEnv). */
  apiKeysEnv?: string[];
  /** azure-openai: Microsoft Entra ID instead of an api-key. */
  entra?: EntraSettings;
  /** vertex: where its access tokens come from. */
  google?: GoogleSettings;
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
  price?: Price;
  redactUpstreamErrors?: boolean;
  structuredOutput?: "auto" | "native" | "tool";
  http2: boolean;
}

/** gateway.yaml listener.tls (paths as Envoy sees them; cli/render/listener-tls.ts renders it). */
export interface ListenerTlsConfig {
  certificate: string;
  privateKey: string;
  clientCa: string | null;
  requireClientCertificate: boolean;
  allowedSans: { type: "uri" | "dns" | "email" | "ip_address"; match: "exact" | "prefix" | "suffix"; value: string }[];
  minVersion: "1.2" | "1.3";
}

export interface OpenTelemetryConfig {
  address: string;
  port: number;
  tls: boolean;
  serviceName: string;
  logs: boolean;
  /** Percent of requests traced; null: no tracing. */
  tracesSamplingPercent: number | null;
}

export interface GatewayConfig {
  listener: { address: string; port: number; tls: ListenerTlsConfig | null };
  admin: { address: string; port: number };
  accessLog: { path: string };
  /** gateway.yaml opentelemetry: the collector that receives logs and spans (cli/render/opentelemetry.ts); null: none. */
  openTelemetry: OpenTelemetryConfig | null;
  /** Envoy durations ("300s"; "0s" is off). See docs in schemas/gateway.schema.json `timeouts`. */
  timeouts: Timeouts;
  /** Keys as the key-auth filter takes them; plain and env: keys are hashed to sha256:<hex>. */
  consumers: { name: string; keys: string[] }[];
  providers: Instance[];
  /** ai-proxy pools, as the filter takes them. */
  pools: { name: string; instances: string[]; algorithm?: string; hash_on?: string }[];
  keyAuth: { enabled: boolean; header?: string; query?: string; hideCredentials?: boolean; anonymous?: string; realm?: string };
  aiProxy: {
    clusterHeader: string;
    maxRequestBodyBytes?: number;
    maxResponseBodyBytes?: number;
    maxStreamEventBytes?: number;
    defaultPool?: string;
    instanceHeader?: boolean;
    requestLimits?: Record<string, number>;
    responsesStore?: Record<string, number>;
    maxJsonValues?: number;
    apiPrefixes?: string[];
    prices?: Record<string, Price>;
    currency?: string;
    health?: Record<string, unknown>;
    fallback?: Record<string, unknown>;
  };
  /** ai-router, when enabled. */
  aiRouter: RouterConfig | null;
  /** ai-ratelimit, when enabled. */
  aiRatelimit: RatelimitConfig | null;
  /** ai-guard's JSON configuration (gateway.yaml filters.ai_guard without enabled and failure_policy), when enabled. */
  aiGuard: Record<string, unknown> | null;
  /** gateway.yaml filters.ai_cache as checked (cli/cache-config.ts), when enabled. */
  aiCache: CacheConfig | null;
  /** Settings accepted but without effect, one printable line each (file:line:column: field: why). */
  warnings: string[];
  /** Each filter's failure policy (gateway.yaml filters.<name>.failure_policy, defaults FAILURE_POLICY_DEFAULTS). */
  failurePolicy: Record<FilterName, FailurePolicyName>;
  /** Envoy's own filters (auth, cors, rbac, request_rate_limit): cli/native-config.ts. */
  native: NativeConfig;
  /** The identity filter's JSON (gateway.yaml `identity`, cli/identity-config.ts); null: not rendered. */
  identity: IdentityJson | null;
  /** gateway.yaml `mcp` as checked (cli/mcp-config.ts); null: the mcp filter is not rendered. */
  mcp: McpConfig | null;
  /** gateway.yaml `a2a` as checked (cli/a2a-config.ts); null: the a2a filter is not rendered. */
  a2a: A2aConfig | null;
  /** Where the Istio manifests attach (gateway.yaml `istio`); cli/render/istio.ts. */
  istio: IstioScope;
  /** gateway.yaml `virtual_keys`: the keys file, read and checked (cli/virtual-keys-config.ts); null: none. */
  virtualKeys: VirtualKeysConfig | null;
  /** istio.image: where the OCI images of `npm run oci` live; null = WasmPlugins load file:// paths. */
  istioImage: { registry: string; repository: string } | null;
}

/** The gateway the Istio manifests apply to: its namespace, and its pods' labels or its Gateway API Gateway. */
export interface IstioScope {
  namespace: string;
  /** The gateway pods' labels: WasmPlugin selector, EnvoyFilter and DestinationRule workloadSelector. */
  podLabels: Record<string, string>;
  /** A Gateway API Gateway: the WasmPlugins and the EnvoyFilter name it instead of a selector. */
  targetRefs: { group: string; kind: string; name: string }[] | null;
}

/**
 * The four upstream timeouts, each an Envoy setting of its own (read in Envoy's source, see render.ts):
 * connect: cluster connect_timeout (TCP and TLS handshake only);
 * firstByte: route retry_policy.per_try_timeout (from the request sent to the response headers;
 *   UpstreamRequest::onPerTryTimeout ignores it once the response has started);
 * idle: route idle_timeout (longest silence on the stream, either direction);
 * total: route timeout (end of request to end of response, streams included; "0s" = off).
 */
export interface Timeouts {
  connect: string;
  firstByte: string;
  idle: string;
  total: string;
}

/** Defaults of gateway.yaml `timeouts` (gateway.yaml syntax). */
export const TIMEOUT_DEFAULTS = { connect: "5s", first_byte: "120s", idle: "180s", total: "0s" } as const;

export interface RouterConfig {
  /** The filter's JSON configuration without `embeddings` (render adds it for its target). */
  json: Record<string, unknown>;
  /** Set when a rule has a semantic condition (otherwise embeddings are not rendered at all). */
  embeddings: Embeddings | null;
  /** The embeddings section as checked, whether or not a rule uses it (ai-cache's semantic lookups may). */
  embeddingsSection: Embeddings | null;
}

/** Name of the cluster rendered for an embeddings `endpoint` (not a providers[] entry). */
export const EMBEDDINGS_CLUSTER = "sluice-embeddings";
/** Providers whose API has OpenAI's POST <endpoint>/embeddings with a Bearer key. */
export const EMBEDDINGS_PROVIDERS: ReadonlySet<ProviderName> = new Set(["openai", "mistral", "openai-compatible"]);

export interface Embeddings {
  /** The instance whose cluster the embeddings go to: a providers[] entry, or a pseudo-instance
   * named sluice-embeddings for an `endpoint` (rendered as its own cluster). */
  target: Instance;
  /** True for an `endpoint`: the cluster is rendered for the router alone. */
  dedicated: boolean;
  model: string;
  path: string;
  apiKeyEnv: string | null;
  apiKey: string | null;
  /** dimensions, timeout_ms, examples_timeout_ms, max_input_chars, retry_ms as given. */
  options: Record<string, number>;
}

export interface RatelimitConfig {
  /** The filter's JSON configuration (rules, default_max_tokens, rejected_status). */
  json: Record<string, unknown>;
  distributed: Distributed | null;
}

/** envoyproxy/ratelimit's units: fixed windows counted from the Unix epoch (src/utils/utilities.go). */
export type RateLimitUnit = "second" | "minute" | "hour" | "day" | "week" | "month" | "year";

export interface Distributed {
  domain: string;
  address: string;
  port: number;
  /** Envoy duration ("0.1s"). */
  timeout: string;
  rules: DistributedRule[];
}

export interface DistributedRule {
  name: string;
  /** Key parts in order: consumer, model, pool or header:<name>. */
  parts: string[];
  /** `when` conditions: part -> patterns (exact, or prefix*). */
  when: { part: string; patterns: string[] }[];
  /** Per unit: tokens, or micro-units of the currency for strategy cost. */
  limit: number;
  unit: RateLimitUnit;
  strategy: "total_tokens" | "prompt_tokens" | "completion_tokens" | "cost" | "requests";
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
    case "type": {
      const one = (t: string) => (t === "object" ? "a mapping" : t === "array" ? "a list" : `${/^[aeiou]/.test(t) ? "an" : "a"} ${t}`);
      return `must be ${String(p.type).split(",").map(one).join(" or ")} (got ${typeOf(value)})`;
    }
    case "pattern":
      return `${JSON.stringify(value)} is not valid${description ? `: ${description}` : ` (must match ${p.pattern})`}`;
    case "minItems":
      return `must list at least ${p.limit} item${p.limit === 1 ? "" : "s"}`;
    case "maxItems":
      return `must list at most ${p.limit} item${p.limit === 1 ? "" : "s"}`;
    case "minLength":
      return "must not be empty";
    case "minProperties":
      return `must not be empty${description ? ` (${description})` : ""}`;
    case "exclusiveMinimum":
      return `must be > ${p.limit} (got ${JSON.stringify(value)})`;
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
    const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictRequired: false, allowUnionTypes: true, useDefaults: false });
    validator = ajv.compile(JSON.parse(readFileSync(SCHEMA_PATH, "utf8")));
  }
  return validator;
}

export function sha256Key(key: string): string {
  return "sha256:" + createHash("sha256").update(key, "utf8").digest("hex");
}

export interface LoadOptions {
  /** Name used in messages (default: the path's base name). */
  name?: string;
  /** Environment for env: consumer keys (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** gateway.yaml's directory: virtual_keys.file is relative to it (default: the current directory). */
  dir?: string;
}

export function loadGatewayConfig(path: string, opts: LoadOptions = {}): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "";
    throw new GatewayConfigReadError(path, `cannot read: ${READ_ERRORS[code] ?? (e as Error).message}${code ? ` (${code})` : ""}`);
  }
  return parseGatewayConfig(text, { name: opts.name ?? path.split(/[\\/]/).pop(), env: opts.env, dir: opts.dir ?? dirname(path) });
}

/**
 * Where a field of gateway.yaml is, by its printed name ("filters.ai_router.rules[0].when.regex"):
 * the nearest part of the path that exists. For messages that come from elsewhere (a filter that
 * refused its configuration).
 */
export function locateField(text: string, field: string): { line: number; column: number } {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  const path: Path = [];
  for (const m of field.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) path.push(m[2] !== undefined ? Number(m[2]) : m[1]);
  return locate(doc, lc, path);
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
  const warnings: string[] = [];
  const warn = (path: Path, message: string) => {
    const at = locate(doc, lc, path);
    warnings.push(`${file}:${at.line}:${at.column}: ${fieldName(path)}: ${message}`);
  };
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
      const extra = (e.params as any).additionalProperty;
      if (e.keyword === "additionalProperties" && fieldName(path) === "timeouts" && extra === "request") {
        fail(path, "'request' was split: the wait for the answer is first_byte; total (off by default) would cut every stream at that age", extra);
      } else if (e.keyword === "additionalProperties") fail(path, describe(e, value), extra);
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
    const bedrock = provider === "bedrock" || provider === "bedrock-anthropic";
    const vertex = provider === "vertex" || provider === "vertex-anthropic";
    if (p.api_keys_env !== undefined && (p.api_key !== undefined || p.api_key_env !== undefined)) fail(at("api_keys_env"), "give api_key(_env) or api_keys_env, not both");
    if (p.api_key === undefined && p.api_key_env === undefined && p.api_keys_env === undefined && provider !== "openai-compatible" && !bedrock && !vertex && p.entra === undefined) {
      fail(at(), `missing required field 'api_key_env' (the environment variable holding the ${provider} key; or api_key inline)`);
    }
    if (bedrock && (p.api_key !== undefined || p.api_key_env !== undefined)) fail(at(p.api_key !== undefined ? "api_key" : "api_key_env"), `${provider} signs its requests with AWS credentials (aws), not an API key`);
    if (p.entra !== undefined && provider !== "azure-openai") fail(at("entra"), `is only read for provider azure-openai (this instance is ${provider})`);
    if (p.entra !== undefined && (p.api_key !== undefined || p.api_key_env !== undefined)) fail(at("entra"), "give entra or an api_key, not both");
    if (!bedrock && !vertex && p.region !== undefined) fail(at("region"), `is only read for providers bedrock, bedrock-anthropic, vertex and vertex-anthropic (this instance is ${provider})`);
    if (!bedrock && p.aws !== undefined) fail(at("aws"), `is only read for providers bedrock and bedrock-anthropic (this instance is ${provider})`);
    if (!vertex && (p.project !== undefined || p.google !== undefined)) fail(at(p.project !== undefined ? "project" : "google"), `is only read for providers vertex and vertex-anthropic (this instance is ${provider})`);
    if (vertex && (p.api_key !== undefined || p.api_key_env !== undefined)) fail(at(p.api_key !== undefined ? "api_key" : "api_key_env"), "vertex sends access tokens (google), not an API key");
    if (vertex && p.endpoint === undefined && (p.project === undefined || p.region === undefined)) fail(at(), "missing required fields 'project' and 'region' (the Vertex AI project and its region)");
    if (bedrock && p.region === undefined && p.endpoint === undefined) fail(at(), "missing required field 'region' (the AWS region of the Bedrock endpoint)");
    const regional = bedrock && p.region !== undefined ? `https://bedrock-runtime.${p.region}.amazonaws.com` : vertex && p.project !== undefined && p.region !== undefined ? vertexEndpoint(p.project, p.region, provider === "vertex" ? "google" : "anthropic") : null;
    const endpoint: string = (p.endpoint ?? regional ?? DEFAULT_ENDPOINT[provider] ?? "").replace(/\/+$/, "");
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      fail(at("endpoint"), `${JSON.stringify(p.endpoint)} is not a valid URL`);
      return;
    }
    const https = url.protocol === "https:";
    if (p.http2 === true && !https) fail(at("http2"), "HTTP/2 needs an https endpoint (Envoy offers h2 by TLS ALPN)");
    if (p.structured_output !== undefined && provider !== "anthropic") fail(at("structured_output"), `is only read for provider anthropic (this instance is ${provider})`);
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
      redactUpstreamErrors: p.redact_upstream_errors,
      structuredOutput: p.structured_output,
      ...(bedrock ? { region: p.region, aws: { ...AWS_ENV_DEFAULTS, ...(p.aws ?? {}) } } : {}),
      ...(p.entra !== undefined ? { entra: entraOf(p.entra, at("entra"), fail) } : {}),
      ...(p.api_keys_env !== undefined ? { apiKeysEnv: p.api_keys_env } : {}),
      ...(vertex ? { google: googleOf(p.google ?? {}, at("google"), fail) } : {}),
      http2: https && (p.http2 ?? HTTP2_BY_DEFAULT.has(provider)),
    });
    // Accepted so older files still load, but it renders nothing: Envoy's check of a one-endpoint
    // cluster cannot take traffic away from it (clusters.ts). ai-proxy's health does.
    if (p.health_check !== undefined) {
      warn(at("health_check"), "ignored: Envoy health checks cannot route traffic away from a provider's one-endpoint cluster; remove it. ai-proxy's health does (filters.ai_proxy.health; active probes with health.active), see docs/health.md");
    }
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
  if (data.virtual_keys !== undefined && ka.enabled === false) fail(["virtual_keys"], "virtual keys are checked by key-auth, which filters.key_auth.enabled: false leaves out");
  if (ka.enabled !== false && (data.consumers ?? []).length === 0 && ka.anonymous === undefined && data.virtual_keys === undefined) {
    fail(["consumers"], "key-auth is enabled but no consumer is listed: every request would get 401 (add consumers, set filters.key_auth.anonymous, or filters.key_auth.enabled: false)");
  }
  const timeouts = checkTimeouts(data.timeouts ?? {}, fail);
  const istio = checkIstio(data.istio ?? {}, fail);
  const listenerTls = data.listener.tls === undefined ? null : checkListenerTls(data.listener.tls, fail);
  const aiRouter = checkRouter(f.ai_router, providers, seenPools, fail);
  let aiRatelimit = checkRatelimit(f.ai_ratelimit, aiRouter !== null, fail);
  // The keys file: its problems name its own fields and lines (cli/virtual-keys-config.ts).
  const virtualKeys = data.virtual_keys === undefined || problems.length ? null : loadVirtualKeys(data.virtual_keys.file, opts.dir ?? process.cwd(), seenPools);
  const vkRules = virtualKeys ? keyRules(virtualKeys) : [];
  if (vkRules.length) {
    // Each key's own limits are ai-ratelimit rules: rendered into its rules (the filter is added when
    // gateway.yaml has none), enforced like any other rule.
    if (f.ai_ratelimit?.enabled === false) fail(["virtual_keys"], "keys in the keys file have limits, which ai-ratelimit enforces; filters.ai_ratelimit.enabled is false");
    aiRatelimit ??= { json: { rules: [] }, distributed: null };
    const rules = aiRatelimit.json.rules as { name: string }[];
    const taken = new Set(rules.map((r) => r.name));
    rules.forEach((r, i) => {
      if (r.name.startsWith("vk-")) fail(["filters", "ai_ratelimit", "rules", i, "name"], "names starting with 'vk-' are kept for the rules of virtual keys' own limits");
    });
    for (const r of vkRules) if (!taken.has(r.name as string)) rules.push(r as { name: string });
  }
  const aiGuard = checkGuard(f.ai_guard, f.ai_router?.enabled === false ? undefined : f.ai_router, seenPools, fail);
  const aiCache = checkCache(f.ai_cache, aiRouter, fail);
  // ai-ratelimit holds the body before ai-proxy: unless told otherwise, it takes what ai-proxy takes.
  const proxyMaxBody = f.ai_proxy?.max_request_body_bytes;
  if (aiRatelimit && aiRatelimit.json.max_body_bytes === undefined && proxyMaxBody !== undefined) aiRatelimit.json.max_body_bytes = proxyMaxBody;
  const native = checkNative(data, fail);
  const identity = checkIdentity(data.identity, native, { enabled: ka.enabled !== false, anonymous: ka.anonymous !== undefined }, fail, warn);
  // A virtual key's team is its consumer's group (key-auth writes sluice.groups): group rules apply then.
  if (identity?.groups === undefined && !virtualKeys?.keys.some((k) => k.team)) checkGroupsUsed(f, fail);
  const failurePolicy = checkFailurePolicies(f, fail);
  const mcp = checkMcp(data.mcp, {
    providers: providers.map((p) => p.name),
    groups: identity?.groups !== undefined || !!virtualKeys?.keys.some((k) => k.team),
    maxBuffered: Math.max(proxyMaxBody ?? AI_PROXY_MAX_BODY, f.ai_proxy?.max_response_body_bytes ?? AI_PROXY_MAX_BODY),
    clusterHeader: String(f.ai_proxy?.cluster_header ?? "x-sluice-cluster").toLowerCase(),
  }, fail, warn);
  const a2a = checkA2a(data.a2a, {
    taken: [...providers.map((p) => p.name), ...(mcp?.servers ?? []).flatMap((s) => [mcpCluster(s.name), mcpOauthCluster(s.name)])],
    mcpPath: mcp?.path ?? null,
    maxBuffered: Math.max(proxyMaxBody ?? AI_PROXY_MAX_BODY, f.ai_proxy?.max_response_body_bytes ?? AI_PROXY_MAX_BODY),
    clusterHeader: String(f.ai_proxy?.cluster_header ?? "x-sluice-cluster").toLowerCase(),
  }, fail);
  if (problems.length) throw new GatewayConfigError(file, dedupe(problems));

  return {
    listener: { address: data.listener.address ?? "0.0.0.0", port: data.listener.port, tls: listenerTls },
    admin: { address: data.admin?.address ?? "127.0.0.1", port: data.admin?.port ?? 9901 },
    accessLog: { path: data.access_log?.path ?? "/dev/stdout" },
    openTelemetry: openTelemetryOf(data.opentelemetry),
    timeouts,
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
      maxResponseBodyBytes: f.ai_proxy?.max_response_body_bytes,
      maxStreamEventBytes: f.ai_proxy?.max_stream_event_bytes,
      defaultPool: dp,
      instanceHeader: f.ai_proxy?.instance_header,
      requestLimits: f.ai_proxy?.request_limits,
      responsesStore: f.ai_proxy?.responses_store,
      maxJsonValues: f.ai_proxy?.max_json_values,
      apiPrefixes: f.ai_proxy?.api_prefixes,
      prices: f.ai_proxy?.prices,
      currency: f.ai_proxy?.currency,
      health: h,
      fallback: f.ai_proxy?.fallback,
    },
    aiRouter,
    aiRatelimit,
    aiGuard,
    aiCache,
    warnings,
    failurePolicy,
    native,
    identity,
    mcp,
    a2a,
    istio,
    istioImage: data.istio?.image ? { registry: data.istio.image.registry, repository: data.istio.image.repository } : null,
    virtualKeys,
  };
}

/** A rule that keys on or asks for `group` never applies without identity.groups: refused, not ignored. */
function checkGroupsUsed(f: Record<string, any>, fail: Fail): void {
  const why = "no consumer has groups: identity.groups is not configured (docs/identity.md)";
  const inCondition = (c: any): boolean =>
    c !== null && typeof c === "object" && (c.group !== undefined || [...(c.any ?? []), ...(c.all ?? []), ...(c.not ? [c.not] : [])].some(inCondition));
  ((f.ai_router?.enabled === false ? [] : f.ai_router?.rules) ?? []).forEach((rule: any, i: number) => {
    if (inCondition(rule.when)) fail(["filters", "ai_router", "rules", i, "when"], `a group condition never matches: ${why}`);
  });
  ((f.ai_ratelimit?.enabled === false ? [] : f.ai_ratelimit?.rules) ?? []).forEach((rule: any, i: number) => {
    if ((rule.key ?? []).includes("group") || rule.when?.group !== undefined) fail(["filters", "ai_ratelimit", "rules", i], `keyed by or conditioned on group, the rule never applies: ${why}`);
  });
}

/** The label Istio puts on the pods it deploys for a Gateway API Gateway (istio-discovery's kube-gateway.yaml template). */
export const GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name";

/** istio: a selector or a Gateway, not both (Istio refuses a WasmPlugin or EnvoyFilter with both). */
function checkIstio(v: any, fail: Fail): IstioScope {
  if (v.selector !== undefined && v.target_refs !== undefined) fail(["istio", "target_refs"], "set selector or target_refs, not both (Istio takes one of them)");
  const targetRefs = v.target_refs
    ? v.target_refs.map((r: any) => ({ group: r.group ?? "gateway.networking.k8s.io", kind: r.kind ?? "Gateway", name: r.name }))
    : null;
  return {
    namespace: v.namespace ?? "istio-system",
    podLabels: targetRefs ? { [GATEWAY_NAME_LABEL]: targetRefs[0].name } : (v.selector ?? { istio: "ingressgateway" }),
    targetRefs,
  };
}

type Fail = (path: Path, message: string, keyOf?: string) => void;

/**
 * listener.tls: what the schema cannot say. Client certificates are checked against client_ca, so
 * requiring or matching them without it would refuse every client. The files are not read here: the
 * render may run where they are not (they are read where Envoy runs); npm start reads them and stops
 * with the path when one cannot be read.
 */
function checkListenerTls(t: any, fail: Fail): ListenerTlsConfig {
  const at = ["listener", "tls"];
  if (t.require_client_certificate === true && t.client_ca === undefined) fail([...at, "require_client_certificate"], "needs client_ca (the CA the client certificates must chain to)");
  if (t.allowed_sans !== undefined && t.client_ca === undefined) fail([...at, "allowed_sans"], "needs client_ca (a SAN is only trusted in a certificate that chains to it)");
  const allowedSans = (t.allowed_sans ?? []).map((m: any, i: number) => {
    const kinds = (["exact", "prefix", "suffix"] as const).filter((k) => m[k] !== undefined);
    if (kinds.length !== 1) fail([...at, "allowed_sans", i], "give exactly one of exact, prefix, suffix");
    return { type: m.type, match: kinds[0] ?? "exact", value: String(m[kinds[0]] ?? "") };
  });
  return {
    certificate: t.certificate,
    privateKey: t.private_key,
    clientCa: t.client_ca ?? null,
    requireClientCertificate: t.require_client_certificate === true,
    allowedSans,
    minVersion: t.min_version ?? "1.2",
  };
}

function seconds(d: string): number {
  return Number(envoyDuration(d).slice(0, -1));
}

/**
 * timeouts: what the schema cannot say. In Envoy the route idle timeout also runs while the response
 * headers are awaited, and a per-try timeout at or above the route timeout is dropped
 * (FilterUtility::finalTimeout), so first_byte must be below idle and below total when they are on.
 */
function checkTimeouts(t: Record<string, string>, fail: Fail): Timeouts {
  const v = { ...TIMEOUT_DEFAULTS, ...t };
  const firstByte = seconds(v.first_byte);
  if (seconds(v.connect) === 0) fail(["timeouts", "connect"], "must be above 0 (Envoy requires a connect timeout)");
  if (firstByte > 0 && seconds(v.idle) > 0 && firstByte >= seconds(v.idle)) {
    fail(["timeouts", t.first_byte !== undefined ? "first_byte" : "idle"], `first_byte (${v.first_byte}) must be below idle (${v.idle}): the idle timeout would cut the wait for the first byte first`);
  }
  if (firstByte > 0 && seconds(v.total) > 0 && firstByte >= seconds(v.total)) {
    fail(["timeouts", "total"], `total (${v.total}) must be above first_byte (${v.first_byte}) or 0s (off)`);
  }
  return { connect: envoyDuration(v.connect), firstByte: envoyDuration(v.first_byte), idle: envoyDuration(v.idle), total: envoyDuration(v.total) };
}

/** filters.<key>.failure_policy for each filter; open is refused where skipping the filter is unsafe (NEVER_OPEN). */
function checkFailurePolicies(f: Record<string, any>, fail: Fail): Record<FilterName, FailurePolicyName> {
  const out = { ...FAILURE_POLICY_DEFAULTS };
  for (const name of Object.keys(FAILURE_POLICY_DEFAULTS) as FilterName[]) {
    const key = name.replace(/-/g, "_");
    const v: FailurePolicyName | undefined = f[key]?.failure_policy;
    if (v === undefined) continue;
    const why = NEVER_OPEN[name];
    if (v === "open" && why) fail(["filters", key, "failure_policy"], `'open' is refused for ${name}: ${why} (use closed or reload)`);
    out[name] = v;
  }
  return out;
}

/**
 * ai-guard: what the schema cannot check. A policy for a route rule or a pool that does not exist would
 * never apply: refused, like a typo elsewhere (consumers may come from identity, not only from
 * consumers[], so their names are not checked); so is a detector name given twice in a policy. The
 * patterns are checked by the filter itself at configure (its regex syntax is its own).
 */
function checkGuard(g: any, router: any, pools: Map<string, number>, fail: Fail): Record<string, unknown> | null {
  if (g === undefined || g.enabled === false) return null;
  const { enabled: _e, failure_policy: _f, ...json } = g;
  const rules = new Set<string>(["default", ...((router?.rules ?? []) as any[]).map((r) => r.name)]);
  for (const name of Object.keys(g.routes ?? {})) {
    if (router === undefined) fail(["filters", "ai_guard", "routes"], "route policies need ai-router (filters.ai_router), which names the route rule", name);
    else if (!rules.has(name)) fail(["filters", "ai_guard", "routes"], `no ai-router rule named '${name}' (rules: ${[...rules].join(", ")})`, name);
  }
  for (const name of Object.keys(g.pools ?? {})) {
    if (!pools.has(name)) fail(["filters", "ai_guard", "pools"], `no pool named '${name}'`, name);
  }
  checkModeration(g, fail);
  const policies: [any, (string | number)[]][] = [[g, ["filters", "ai_guard"]]];
  for (const k of ["consumers", "routes", "pools"]) for (const [n, p] of Object.entries(g[k] ?? {})) policies.push([p, ["filters", "ai_guard", k, n]]);
  for (const [p, at] of policies) {
    const names = new Set(["email", "phone", "card", "iban", "ssn", "ip", "credential", "injection"]);
    // A threshold for a detector that is off does nothing (a policy replaces the default whole, so
    // the default policy's threshold does not reach an override either): refused like a typo.
    if (p.injection_threshold !== undefined && (p.detectors?.injection ?? "off") === "off") {
      fail([...at, "injection_threshold"], "is set but detectors.injection is off in this policy (each policy has its own threshold)");
    }
    for (const [key, list] of [["custom", p.custom ?? []], ["keywords", p.keywords ?? []]] as const) {
      (list as any[]).forEach((c, i) => {
        if (names.has(c.name)) fail([...at, key, i, "name"], `'${c.name}' is already a detector name in this policy`);
        names.add(c.name);
      });
    }
  }
  return json;
}

const MAX_CONDITION_DEPTH = 32;
const TEXT_CONDITIONS = ["keywords", "regex", "task", "complexity"];

/** ai-router: what the schema cannot check (the filter checks the same at configure time). */
function checkRouter(r: any, providers: Instance[], pools: Map<string, number>, fail: Fail): RouterConfig | null {
  if (r === undefined || r.enabled === false) return null;
  const at = (...p: Path): Path => ["filters", "ai_router", ...p];
  const poolNames = [...pools.keys()];
  const knownPool = (name: string, path: Path) => {
    if (!pools.has(name)) fail(path, `no pool named '${name}' (${poolNames.length ? `pools: ${poolNames.join(", ")}` : "gateway.yaml has no pools: add them under pools"})`);
  };
  if (r.default_pool !== undefined) knownPool(r.default_pool, at("default_pool"));
  let semantic = false;
  const names = new Map<string, number>();
  const rules: any[] = r.rules ?? [];
  rules.forEach((rule, i) => {
    if (rule.name === "default") fail(at("rules", i, "name"), "'default' is reserved (it names the default pool in sluice.route_rule)");
    else if (names.has(rule.name)) fail(at("rules", i, "name"), `duplicate rule name '${rule.name}' (also rules[${names.get(rule.name)}])`);
    names.set(rule.name, i);
    knownPool(rule.pool, at("rules", i, "pool"));
    if (rule.model !== undefined && rule.model.trim() === "") fail(at("rules", i, "model"), "must not be blank");
    if (rule.when !== undefined) semantic = checkCondition(rule.when, at("rules", i, "when"), 0, fail) || semantic;
  });

  let embeddings: Embeddings | null = null;
  const e = r.embeddings;
  if (semantic && e === undefined) fail(at(), "semantic conditions need the embeddings section (the instance that embeds the examples and prompts)");
  if (e !== undefined) {
    const ep = (...p: Path) => at("embeddings", ...p);
    if ((e.instance === undefined) === (e.endpoint === undefined)) fail(ep(), "give instance (a providers[] entry) or endpoint, exactly one");
    else if (e.instance !== undefined) {
      const inst = providers.find((p) => p.name === e.instance);
      if (!inst) fail(ep("instance"), `no provider instance named '${e.instance}' (providers: ${providers.map((p) => p.name).join(", ")})`);
      else if (!EMBEDDINGS_PROVIDERS.has(inst.provider)) fail(ep("instance"), `'${inst.name}' is a ${inst.provider} instance; the router's embeddings speak OpenAI's POST /embeddings with a Bearer key (${[...EMBEDDINGS_PROVIDERS].join(", ")})`);
      for (const k of ["api_key", "api_key_env"]) if (e[k] !== undefined) fail(ep(k), `the key comes from the instance '${e.instance}'; ${k} applies to an endpoint`);
      if (inst && EMBEDDINGS_PROVIDERS.has(inst.provider)) {
        embeddings = { target: inst, dedicated: false, model: e.model, path: e.path ?? `${inst.url.pathname.replace(/\/+$/, "")}/embeddings`, apiKeyEnv: inst.apiKeyEnv, apiKey: inst.apiKey, options: embeddingOptions(e) };
      }
    } else {
      if (e.api_key !== undefined && e.api_key_env !== undefined) fail(ep("api_key"), "give api_key or api_key_env, not both");
      let url: URL | null = null;
      try {
        url = new URL(String(e.endpoint).replace(/\/+$/, ""));
      } catch {
        fail(ep("endpoint"), `${JSON.stringify(e.endpoint)} is not a valid URL`);
      }
      if (url) {
        const https = url.protocol === "https:";
        const target: Instance = {
          name: EMBEDDINGS_CLUSTER,
          provider: "openai",
          apiKeyEnv: e.api_key_env ?? null,
          apiKey: e.api_key ?? null,
          endpoint: url.href.replace(/\/+$/, ""),
          url,
          http2: https,
        };
        embeddings = { target, dedicated: true, model: e.model, path: e.path ?? `${url.pathname.replace(/\/+$/, "")}/embeddings`, apiKeyEnv: target.apiKeyEnv, apiKey: target.apiKey, options: embeddingOptions(e) };
      }
    }
  }
  const json: Record<string, unknown> = {};
  for (const k of ["default_pool", "route_header", "annotate", "max_body_bytes", "max_regex_steps", "max_json_values"]) if (r[k] !== undefined) json[k] = r[k];
  json.rules = rules;
  return { json, embeddings: semantic ? embeddings : null, embeddingsSection: embeddings };
}

function embeddingOptions(e: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of ["dimensions", "timeout_ms", "examples_timeout_ms", "max_input_chars", "retry_ms"]) if (typeof e[k] === "number") out[k] = e[k] as number;
  return out;
}

/** Checks one condition object; returns whether it (or one inside it) is semantic. */
function checkCondition(c: any, path: Path, depth: number, fail: Fail): boolean {
  if (depth > MAX_CONDITION_DEPTH) {
    fail(path, `conditions nested deeper than ${MAX_CONDITION_DEPTH}`);
    return false;
  }
  let semantic = c.semantic !== undefined;
  if (c.in !== undefined && !TEXT_CONDITIONS.some((k) => c[k] !== undefined)) fail([...path, "in"], "applies to keywords, regex, task and complexity in the same object; none is given");
  if (c.header !== undefined) {
    const n = ["exact", "prefix", "regex", "present"].filter((k) => c.header[k] !== undefined).length;
    if (n !== 1) fail([...path, "header"], "needs exactly one of exact, prefix, regex, present");
  }
  if (c.path !== undefined) {
    const n = ["exact", "prefix", "regex"].filter((k) => c.path[k] !== undefined).length;
    if (n !== 1) fail([...path, "path"], "needs exactly one of exact, prefix, regex");
  }
  // Regular expressions: ai-router's engine takes a subset of RE2 (assembly/lib/regex.ts) and refuses
  // the rest when Envoy loads it. What JavaScript cannot parse either (unbalanced parentheses, nothing
  // to repeat, a reversed range) is refused here with its line; the rest is checked by the filter,
  // and `npm start` maps its message back to the line (cli/start.ts).
  const regexes: [Path, unknown][] = [];
  if (typeof c.regex === "string") regexes.push([[...path, "regex"], c.regex]);
  else if (Array.isArray(c.regex)) c.regex.forEach((r: unknown, i: number) => regexes.push([[...path, "regex", i], r]));
  for (const k of ["header", "path"]) if (typeof c[k]?.regex === "string") regexes.push([[...path, k, "regex"], c[k].regex]);
  for (const [at, re] of regexes) {
    if (typeof re !== "string") continue;
    try {
      new RegExp(re.replace(/^\(\?[ism]+\)/, ""));
    } catch (e) {
      fail(at, `invalid regular expression ${JSON.stringify(re)}: ${(e as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /, "")}`);
    }
  }
  for (const k of ["tokens", "messages", "complexity"]) {
    const v = c[k];
    if (v?.gt !== undefined && v?.lt !== undefined && v.gt >= v.lt) fail([...path, k], "gt must be less than lt (no value could match)");
  }
  for (const k of ["any", "all"]) (c[k] ?? []).forEach((sub: unknown, i: number) => (semantic = checkCondition(sub, [...path, k, i], depth + 1, fail) || semantic));
  if (c.not !== undefined) semantic = checkCondition(c.not, [...path, "not"], depth + 1, fail) || semantic;
  return semantic;
}

const KEY_PARTS = "consumer, group, key, team, model, pool, instance, path, mcp_server, mcp_tool, mcp_method, a2a_agent, a2a_method or header:<name>";
// envoyproxy/ratelimit divides Unix time by the unit (src/utils/utilities.go UnitToDivider): week is 7
// days from a Thursday (the epoch's weekday), month 30 days, year 365 days; so they are the local
// fixed windows 7d, 30d and 365d (also counted from the epoch), never the calendar week or month.
const UNITS: Record<number, RateLimitUnit> = { 1: "second", 60: "minute", 3600: "hour", 86400: "day", 604800: "week", 2592000: "month", 31536000: "year" };
const MAX_WINDOW_SECONDS = 366 * 86400;
/** envoyproxy/ratelimit's requests_per_unit is a uint32. */
const MAX_SERVICE_LIMIT = 4294967295;

/** "30s" | "15m" | "24h" | "7d" | seconds -> seconds. */
export function windowSeconds(w: string | number): number {
  if (typeof w === "number") return w;
  // Calendar windows: their longest (the rate limit service has no such units).
  if (w === "week") return 7 * 86400;
  if (w === "month") return 31 * 86400;
  const n = Number(w.slice(0, -1));
  return n * { s: 1, m: 60, h: 3600, d: 86400 }[w.slice(-1) as "s" | "m" | "h" | "d"];
}

function partOk(part: string): boolean {
  return /^(consumer|group|key|team|model|pool|instance|path|mcp_server|mcp_tool|mcp_method|a2a_agent|a2a_method|header:[A-Za-z0-9!#$%&'*+.^_`|~-]+)$/.test(part);
}

/** Key parts as the filter normalises them (header names lower-cased). */
function normalPart(part: string): string {
  return part.startsWith("header:") ? `header:${part.slice(7).trim().toLowerCase()}` : part;
}

/** ai-ratelimit: what the schema cannot check, and whether each distributed rule maps to the service. */
function checkRatelimit(r: any, routerOn: boolean, fail: Fail): RatelimitConfig | null {
  if (r === undefined || r.enabled === false) return null;
  const at = (...p: Path): Path => ["filters", "ai_ratelimit", ...p];
  const rules: any[] = r.rules ?? [];
  if (rules.length === 0) fail(at(), "ai-ratelimit needs at least one rule under rules (or enabled: false)");
  const names = new Map<string, number>();
  rules.forEach((rule, i) => {
    const rp = (...p: Path) => at("rules", i, ...p);
    if (names.has(rule.name)) fail(rp("name"), `duplicate rule name '${rule.name}' (also rules[${names.get(rule.name)}])`);
    names.set(rule.name, i);
    const seen = new Set<string>();
    (rule.key ?? []).forEach((part: string, j: number) => {
      const n = normalPart(part);
      if (seen.has(n)) fail(rp("key", j), `'${n}' is listed twice`);
      seen.add(n);
    });
    for (const part of Object.keys(rule.when ?? {})) {
      if (!partOk(part)) fail(rp("when"), `unknown key part '${part}' (expected ${KEY_PARTS})`, part);
    }
    if (!routerOn) {
      const uses = [...(rule.key ?? []), ...Object.keys(rule.when ?? {})].includes("pool");
      if (uses) fail(rp(), "uses the key part 'pool', which only ai-router sets (filters.ai_router is not enabled): the rule would never apply");
    }
    const secs = windowSeconds(rule.window);
    if (secs <= 0) fail(rp("window"), "must be longer than 0 seconds");
    else if (secs > MAX_WINDOW_SECONDS) fail(rp("window"), "must be at most 366 days");
    if (rule.sub_buckets !== undefined && rule.window_type !== "sliding") fail(rp("sub_buckets"), "applies only to window_type sliding");
    if ((rule.window === "week" || rule.window === "month") && rule.window_type === "sliding") fail(rp("window_type"), "a calendar window (week, month) is fixed: it starts over at each week or month");
    if (rule.strategy === "cost") {
      if (rule.limit !== undefined) fail(rp("limit"), "a cost rule takes budget (money per window, in filters.ai_proxy.currency), not limit");
      else if (rule.budget === undefined) fail(rp(), "strategy cost needs budget: money per window, e.g. budget: 50");
    } else if (rule.budget !== undefined) fail(rp("budget"), "applies only to strategy cost (a money budget); a token limit is limit");
    else if (rule.limit === undefined) fail(rp(), `missing required field 'limit' (${rule.strategy === "requests" ? "requests" : "tokens"} per window)`);
    const weighted = rule.strategy === "weighted";
    if (weighted && rule.weights === undefined) fail(rp(), "strategy weighted needs weights, e.g. { prompt: 1, completion: 4, cached: 0.1 }");
    if (!weighted && rule.weights !== undefined) fail(rp("weights"), "applies only to strategy weighted");
    if (weighted && rule.weights && ["prompt", "completion", "cached"].every((k) => (rule.weights[k] ?? (k === "cached" ? rule.weights.prompt ?? 1 : 1)) === 0)) {
      fail(rp("weights"), "must not all be 0");
    }
    if (rule.stream_margin !== undefined) {
      const meter = [...(rule.key ?? []), ...Object.keys(rule.when ?? {})].includes("instance");
      if (meter) fail(rp("stream_margin"), "is not available on a rule keyed by instance (charged only when the stream ends)");
      else if (rule.strategy === "prompt_tokens" || (weighted && rule.weights?.completion === 0)) fail(rp("stream_margin"), "needs a strategy that counts completion tokens");
    }
  });

  let distributed: Distributed | null = null;
  const d = r.distributed;
  if (d !== undefined) {
    const wanted: string[] = d.rules ?? rules.map((x) => x.name);
    const out: DistributedRule[] = [];
    (d.rules ?? []).forEach((name: string, j: number) => {
      if (!names.has(name)) fail(at("distributed", "rules", j), `no rule named '${name}' (rules: ${[...names.keys()].join(", ")})`);
    });
    const keepLocal = d.rules === undefined ? "; keep it local by listing the other rules in distributed.rules" : "; keep it local by leaving it out of distributed.rules";
    for (const name of new Set(wanted)) {
      const i = names.get(name);
      if (i === undefined) continue;
      const rule = rules[i];
      const rp = (...p: Path) => at("rules", i, ...p);
      let ok = true;
      const no = (path: Path, why: string) => {
        ok = false;
        fail(path, `rule '${name}' cannot be distributed: ${why}${keepLocal}`);
      };
      const strategy = rule.strategy ?? "total_tokens";
      if (strategy === "weighted") no(rp("strategy"), "a weighted cost is not one token count, and the service's hits_addend takes one plain number (total_tokens, prompt_tokens and completion_tokens map)");
      if (rule.window === "week" || rule.window === "month") {
        no(rp("window"), `the rate limit service has no calendar ${rule.window}: its week is 7 days from the Unix epoch (a Thursday) and its month 30 days; use window ${rule.window === "week" ? "7d" : "30d"}, which both count alike`);
      }
      if (rule.warn_at !== undefined) no(rp("warn_at"), "the rate limit service has no soft limit");
      if (rule.window_type === "sliding") no(rp("window_type"), "the rate limit service counts fixed windows only");
      const unit = UNITS[windowSeconds(rule.window)];
      const calendar = rule.window === "week" || rule.window === "month";
      if (!unit && !calendar) no(rp("window"), `the rate limit service's windows are 1s, 1m, 1h, 1d, 7d, 30d and 365d (got ${JSON.stringify(rule.window)})`);
      // A money budget is counted in micro-units of the currency, as the local counter does.
      const limit = strategy === "cost" ? Math.round(rule.budget * 1e6) : rule.limit;
      if (strategy === "cost" && limit > MAX_SERVICE_LIMIT) no(rp("budget"), `the rate limit service's requests_per_unit is at most ${MAX_SERVICE_LIMIT}, and a budget is counted in micro-units: at most 4294.967295 per window`);
      else if (limit > MAX_SERVICE_LIMIT) no(rp("limit"), `the rate limit service's requests_per_unit is at most ${MAX_SERVICE_LIMIT}`);
      (rule.key ?? []).forEach((part: string, j: number) => {
        if (part === "instance") no(rp("key", j), "instance rules only meter (they never reject locally)");
        if (part === "group") no(rp("key", j), "a consumer in several groups has a counter in each, and a rate limit descriptor holds one value per entry");
        if (part === "path") no(rp("key", j), "ai-proxy rewrites :path before Envoy's rate limit filter runs, so the client's path is not there to read");
      });
      for (const part of Object.keys(rule.when ?? {})) {
        if (part === "instance") no(rp("when"), "instance rules only meter (they never reject locally)");
        if (part === "group") no(rp("when"), "the rate limit service matches one descriptor value, not any of the consumer's groups");
        if (part === "path") no(rp("when"), "ai-proxy rewrites :path before Envoy's rate limit filter runs, so the client's path is not there to read");
      }
      if (!ok) continue;
      out.push({
        name,
        parts: (rule.key ?? []).map(normalPart),
        when: Object.entries(rule.when ?? {}).map(([part, v]) => ({ part: normalPart(part), patterns: typeof v === "string" ? [v] : (v as string[]) })),
        limit,
        unit: unit!,
        strategy,
      });
    }
    distributed = {
      domain: d.domain ?? "sluice",
      address: d.service.address,
      port: d.service.port,
      timeout: envoyDuration(d.timeout ?? "100ms"),
      rules: out,
    };
  }
  const json: Record<string, unknown> = { rules };
  for (const k of ["default_max_tokens", "rejected_status", "max_body_bytes"]) if (r[k] !== undefined) json[k] = r[k];
  return { json, distributed };
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

/** gateway.yaml opentelemetry, with the schema's defaults (the schema checked its values). */
function openTelemetryOf(o: any): OpenTelemetryConfig | null {
  if (!o) return null;
  return {
    address: o.address,
    port: o.port ?? 4317,
    tls: o.tls ?? false,
    serviceName: o.service_name ?? "sluice",
    logs: o.logs ?? true,
    tracesSamplingPercent: o.traces ? o.traces.sampling_percent ?? 100 : null,
  };
}
