// ai-proxy configuration: provider instances and how requests reach them. See README, "ai-proxy".
import { ConfigReader } from "../../lib/config";
import { JsonValue } from "../../lib/json";
import { AwsCredentials } from "../../lib/sigv4";
import { TokenConfig, readToken } from "./upstream-token";
import { keyId } from "./key-pool";
import { getEnv } from "../../lib/env";
import { Instance, Provider, isPathSegment, STRUCTURED_NATIVE, STRUCTURED_TOOL } from "../../providers/types";
import { providerFor, PROVIDER_NAMES } from "../../providers/index";
import { Pool, ALGORITHMS, WRR, LEAST_LATENCY, LEAST_INFLIGHT, CONSISTENT_HASH } from "./balancer";
import { HealthConfig } from "./health";
import { ModelList } from "./models";
import { Price, PriceTable, builtinPrices, readPrice, readPrices } from "../../lib/prices";
import { StoreConfig } from "./responses-store";

export const DEFAULT_MAX_BODY: i64 = 10 * 1024 * 1024;
/** A provider's whole (non-stream) answer or error body ai-proxy holds at most. */
export const DEFAULT_MAX_RESPONSE_BODY: i64 = 10 * 1024 * 1024;

/**
 * The most bytes of one unfinished stream event ai-proxy holds (max_stream_event_bytes). Streams
 * are never buffered whole, but an event is read only once it ends, so a provider that sends one
 * event that never ends would grow the VM without limit. Most events are a few hundred bytes
 * (OpenAI and Anthropic stream text and tool-call arguments in small deltas); the largest real
 * ones carry a whole part at once: a Gemini chunk holds whole function-call arguments and, for
 * image models, a whole generated image as base64 (a 1024x1024 PNG is 1-3 MB of base64). 8 MiB
 * leaves room for those, and stays under max_response_body_bytes' default: one event never
 * costs more than a whole buffered answer may.
 */
export const DEFAULT_MAX_STREAM_EVENT: i64 = 8 * 1024 * 1024;

/**
 * Most JSON values (max_json_values) one request body or buffered provider answer may hold. Each
 * parsed value costs linear memory that a wasm VM never gives back, so this bounds what one body
 * can make ai-proxy's VM grow to. Sized for the largest real requests: an embeddings request of
 * token ids (OpenAI takes up to 300,000 tokens per request, one value each) with room to spare,
 * and agent conversations of thousands of messages and many tool schemas (tens of thousands).
 */
export const DEFAULT_MAX_JSON_VALUES: i32 = 500000;

/**
 * Bounds on what a chat request may ask for (request_limits): past them the client gets a 400 in
 * its API shape and nothing reaches a provider. The defaults sit above what the providers' own
 * APIs take (OpenAI caps n at 128), so a request a provider would serve is never refused here.
 */
export class RequestLimits {
  /** Most messages in one request. */
  maxMessages: i32 = 2048;
  /** Most choices (OpenAI's n). */
  maxN: i32 = 128;
  /** Largest max_tokens / max_completion_tokens a client may ask for. */
  maxTokens: i64 = 1000000;
}

/** The label a metric gets for a model that is not a configured name. */
export const OTHER_MODEL = "other";

export class Settings {
  instances: Array<Instance> = [];
  providers: Array<Provider> = []; // parallel to instances
  /** Each instance's token settings (Entra ID, Vertex), parallel to instances; null: its key. */
  tokens: Array<TokenConfig | null> = [];
  pools: Array<Pool> = [];
  defaultPool: i32 = -1;
  health: HealthConfig = new HealthConfig();
  /** Fallback: statuses (and "connect_failure", "timeout") that move a request to another instance. */
  fallbackOn: Array<string> = ["connect_failure", "timeout", "5xx", "429"];
  maxRetries: i32 = 2;
  fallbackTimeoutMs: i64 = 120000;
  instanceHeader: bool = false;
  /** ai-cache is in the chain (rendered with it): a chat request asks filter state whether its answer is kept (capture.ts). */
  cacheCapture: bool = false;
  /** Whether any pool needs shared latency / in-flight bookkeeping. */
  trackLatency: bool = false;
  trackInflight: bool = false;
  clusterHeader: string = "x-sluice-cluster";
  maxBodyBytes: i64 = DEFAULT_MAX_BODY;
  maxJsonValues: i32 = DEFAULT_MAX_JSON_VALUES;
  limits: RequestLimits = new RequestLimits();
  /** The store of translated Responses (responses_store; responses-store.ts). */
  store: StoreConfig = new StoreConfig();
  /**
   * Path prefixes ai-proxy answers for (api_prefixes): a request under one that is not an API the
   * gateway serves gets a 404 / 405 in the client's API shape; any other path passes untouched.
   */
  apiPrefixes: Array<string> = ["/v1/", "/v1beta/"];
  /** Per instance (parallel to instances): the provider's error message is not shown to clients. */
  redactErrors: Array<bool> = [];
  /**
   * Model names metrics may carry as a label: every name the configuration spells out (an
   * instance's model, model_map values, literal entries of models, pool names). Any other model a
   * client or provider names is counted as "other", so clients cannot grow the number of series.
   */
  modelLabels: Set<string> = new Set();

  modelLabel(model: string): string {
    return this.modelLabels.has(model) ? model : OTHER_MODEL;
  }

  /** Past this, a buffered answer is refused with a 502 at once (wasm memory never shrinks). */
  maxResponseBodyBytes: i64 = DEFAULT_MAX_RESPONSE_BODY;
  /** Past this, an unfinished stream event ends the stream with a 502 error event. */
  maxStreamEventBytes: i32 = <i32>DEFAULT_MAX_STREAM_EVENT;
  /** The /v1/models answer, prepared once. */
  models: ModelList = new ModelList();
  /** Per instance (parallel to instances): its own `price`, or null (prices.ts). */
  instancePrices: Array<Price | null> = [];
  /** `prices` by model over the built-in table (prices.ts). */
  prices: PriceTable = builtinPrices();
  /** The currency the prices are in: a label for the docs and the access log reader. */
  currency: string = "USD";

  /** The price of a request to instance i for the upstream model, or null (no cost recorded). */
  priceOf(i: i32, model: string): Price | null {
    const own = i >= 0 && i < this.instancePrices.length ? this.instancePrices[i] : null;
    return own !== null ? own : this.prices.find(model);
  }
}

/** Splits "https://host:port/base/path" into scheme, authority and path (no trailing slash). */
function parseEndpoint(url: string, inst: Instance, r: ConfigReader, path: string): void {
  const sep = url.indexOf("://");
  if (sep <= 0) {
    r.fail(path, "must be an absolute URL such as https://api.openai.com/v1");
    return;
  }
  inst.scheme = url.substring(0, sep).toLowerCase();
  if (inst.scheme != "http" && inst.scheme != "https") {
    r.fail(path, "scheme must be http or https");
    return;
  }
  const rest = url.substring(sep + 3);
  const slash = rest.indexOf("/");
  inst.authority = slash < 0 ? rest : rest.substring(0, slash);
  let base = slash < 0 ? "" : rest.substring(slash);
  while (base.endsWith("/")) base = base.substring(0, base.length - 1);
  inst.basePath = base;
  if (inst.authority.length == 0) r.fail(path, "has no host");
  if (inst.authority.includes("@")) r.fail(path, "must not carry credentials; use api_key or api_key_env");
}

function readInstance(r: ConfigReader, v: JsonValue, path: string, s: Settings): void {
  if (!v.isObject()) {
    r.fail(path, "must be an object");
    return;
  }
  r.onlyKnown(v, path, ["name", "provider", "model", "model_map", "models", "api_key", "api_key_env", "endpoint", "cluster", "options", "max_tokens", "api_version", "deployment", "headers", "weight", "priority", "price", "redact_upstream_errors", "structured_output", "region", "aws", "token", "api_keys", "api_keys_env"]);
  const inst = new Instance();
  inst.name = r.str(v, "name", path, "");
  if (r.ok && inst.name.length == 0) r.fail(path + ".name", "is required");
  for (let i = 0; i < s.instances.length; i++) {
    if (s.instances[i].name == inst.name) r.fail(path + ".name", "duplicate instance name '" + inst.name + "'");
  }
  inst.provider = r.str(v, "provider", path, "");
  const provider = providerFor(inst.provider);
  if (r.ok && provider === null) {
    r.fail(path + ".provider", "unknown provider '" + inst.provider + "' (expected one of: " + PROVIDER_NAMES.join(", ") + ")");
    return;
  }
  if (!r.ok) return;
  const p = provider as Provider;
  inst.model = r.str(v, "model", path, "");
  const map = r.stringMap(v, "model_map", path, "client model names to upstream model names");
  for (let i = 0; i + 1 < map.length; i += 2) inst.modelMap.set(map[i], map[i + 1]);
  const models = r.array(v, "models", path, false);
  for (let i = 0; i < models.length; i++) {
    if (!models[i].isString()) r.fail(path + ".models[" + i.toString() + "]", "must be a string");
    else inst.models.push(models[i].s);
  }
  inst.apiKey = r.str(v, "api_key", path, "");
  const env = r.str(v, "api_key_env", path, "");
  if (env.length) {
    if (inst.apiKey.length) r.fail(path, "give api_key or api_key_env, not both");
    const value = getEnv(env);
    // Envoy passes only the variables listed in the VM's environment_variables.
    if (value === null) r.fail(path + ".api_key_env", "environment variable " + env + " is not set for the Wasm VM (list it in vm_config.environment_variables.host_env_keys)");
    else inst.apiKey = value as string;
  }
  readKeyPool(r, v, path, inst);
  let endpoint = r.str(v, "endpoint", path, "");
  if (endpoint.length == 0) endpoint = p.defaultEndpoint();
  if (r.ok && endpoint.length == 0) r.fail(path + ".endpoint", "is required for provider " + inst.provider);
  if (r.ok) parseEndpoint(endpoint, inst, r, path + ".endpoint");
  inst.cluster = r.str(v, "cluster", path, inst.name);
  const options = v.get("options");
  if (options !== null) {
    if (!options.isObject()) r.fail(path + ".options", "must be an object of request fields");
    else if (options.get("model") !== null || options.get("messages") !== null || options.get("stream") !== null) {
      r.fail(path + ".options", "must not set model, messages or stream");
    } else inst.options = options;
  }
  inst.maxTokens = r.int(v, "max_tokens", path, -1, 1, 10000000);
  inst.apiVersion = r.str(v, "api_version", path, "");
  inst.deployment = r.str(v, "deployment", path, "");
  // Configured names go into upstream URLs as clients' do (providers/types.ts): checked here once,
  // so a typo fails the configuration instead of every request.
  if (inst.deployment.length && !isPathSegment(inst.deployment, 64)) r.fail(path + ".deployment", "must be 1 to 64 letters, digits, '.', '_' or '-'");
  if (inst.apiVersion.length && !isPathSegment(inst.apiVersion, 64)) r.fail(path + ".api_version", "must be 1 to 64 letters, digits, '.', '_' or '-'");
  if (inst.model.length) {
    const e = p.modelError(inst, inst.model);
    if (e !== null) r.fail(path + ".model", e.message);
  }
  for (let i = 0; i + 1 < map.length; i += 2) {
    const e = p.modelError(inst, map[i + 1]);
    if (e !== null) r.fail(path + ".model_map." + map[i], e.message);
  }
  const headers = r.stringMap(v, "headers", path, "header names to values");
  for (let i = 0; i + 1 < headers.length; i += 2) {
    inst.headers.push(headers[i].toLowerCase());
    inst.headers.push(headers[i + 1]);
  }
  inst.weight = <i32>r.int(v, "weight", path, 1, 0, 1000000);
  inst.priority = <i32>r.int(v, "priority", path, 0, 0, 1000);
  // The instance's price: the cost of its requests (prices.ts), and what lowest_cost balances by.
  const price = v.get("price");
  const own = price !== null ? readPrice(r, price, path + ".price") : null;
  if (own !== null) {
    inst.priceIn = own.input;
    inst.priceOut = own.output;
  }
  s.instancePrices.push(own);
  // How Chat response_format json_schema reaches Anthropic (providers/anthropic.ts): "auto" (by the
  // model's generation), "native" (output_config.format) or "tool" (a forced tool).
  const so = r.str(v, "structured_output", path, "auto");
  if (so == "native") inst.structuredOutput = STRUCTURED_NATIVE;
  else if (so == "tool") inst.structuredOutput = STRUCTURED_TOOL;
  else if (so != "auto") r.fail(path + ".structured_output", "must be auto, native or tool");
  if (so != "auto" && inst.provider != "anthropic") r.fail(path + ".structured_output", "is only read for provider anthropic");
  const token = v.get("token");
  const vertex = inst.provider == "vertex" || inst.provider == "vertex-anthropic";
  if (token !== null && inst.provider != "azure-openai" && !vertex) r.fail(path + ".token", "is only read for providers azure-openai, vertex and vertex-anthropic");
  if (token === null && vertex) r.fail(path + ".token", "is required for provider " + inst.provider + " (where its access tokens come from)");
  s.tokens.push(token !== null ? readToken(r, token as JsonValue, path + ".token") : null);
  if (p.awsService.length) readAws(r, v, path, inst);
  else if (v.get("region") !== null || v.get("aws") !== null) r.fail(path + ".region", "is only read for providers bedrock and bedrock-anthropic");
  // Self-hosted OpenAI-compatible servers put internal hostnames and addresses in their error
  // messages; the public APIs' messages are documented and meant for their clients.
  s.redactErrors.push(r.bool(v, "redact_upstream_errors", path, inst.provider == "openai-compatible"));
  s.instances.push(inst);
  s.providers.push(p);
}

/** A key pool: api_keys (inline) or api_keys_env (variables), several keys the requests take in turn. */
function readKeyPool(r: ConfigReader, v: JsonValue, path: string, inst: Instance): void {
  const inline = r.array(v, "api_keys", path, false);
  const envs = r.array(v, "api_keys_env", path, false);
  if (inline.length == 0 && envs.length == 0) return;
  if (inline.length && envs.length) r.fail(path + ".api_keys", "give api_keys or api_keys_env, not both");
  if (inst.apiKey.length) r.fail(path + ".api_keys", "give api_key(_env) or a key pool, not both");
  for (let i = 0; i < inline.length; i++) {
    if (!inline[i].isString() || inline[i].s.length == 0) r.fail(path + ".api_keys[" + i.toString() + "]", "must be a key");
    else inst.keys.push(inline[i].s);
  }
  for (let i = 0; i < envs.length; i++) {
    const name = envs[i].isString() ? envs[i].s : "";
    const value = name.length ? getEnv(name) : null;
    if (value === null || (value as string).length == 0) r.fail(path + ".api_keys_env[" + i.toString() + "]", "environment variable " + name + " is not set for the Wasm VM (list it in vm_config.environment_variables.host_env_keys)");
    else inst.keys.push(value as string);
  }
  for (let i = 0; i < inst.keys.length; i++) {
    const id = keyId(inst.keys[i]);
    if (inst.keyIds.includes(id)) r.fail(path + ".api_keys", "the same key is given twice");
    inst.keyIds.push(id);
  }
  if (inst.keys.length) inst.apiKey = inst.keys[0];
}

/**
 * A signing provider's region (given, or read from a bedrock-runtime.<region>.amazonaws.com
 * endpoint) and AWS credentials from the VM's environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
 * and AWS_SESSION_TOKEN unless aws names other variables).
 */
function readAws(r: ConfigReader, v: JsonValue, path: string, inst: Instance): void {
  inst.region = r.str(v, "region", path, "");
  const host = inst.authority;
  if (inst.region.length == 0 && host.startsWith("bedrock-runtime.") && host.includes(".amazonaws.com")) {
    inst.region = host.substring(16, host.indexOf("."  , 16));
  }
  if (inst.region.length == 0) r.fail(path + ".region", "is required (the AWS region the requests are signed for)");
  const aws = v.get("aws");
  let idEnv = "AWS_ACCESS_KEY_ID";
  let secretEnv = "AWS_SECRET_ACCESS_KEY";
  let tokenEnv = "AWS_SESSION_TOKEN";
  if (aws !== null) {
    if (!aws.isObject()) r.fail(path + ".aws", "must be an object");
    else {
      r.onlyKnown(aws as JsonValue, path + ".aws", ["access_key_id_env", "secret_access_key_env", "session_token_env"]);
      idEnv = r.str(aws as JsonValue, "access_key_id_env", path + ".aws", idEnv);
      secretEnv = r.str(aws as JsonValue, "secret_access_key_env", path + ".aws", secretEnv);
      tokenEnv = r.str(aws as JsonValue, "session_token_env", path + ".aws", tokenEnv);
    }
  }
  const c = new AwsCredentials();
  const id = getEnv(idEnv);
  const secret = getEnv(secretEnv);
  if (id === null || (id as string).length == 0) r.fail(path + ".aws.access_key_id_env", "environment variable " + idEnv + " is not set for the Wasm VM (list it in vm_config.environment_variables.host_env_keys)");
  else c.accessKeyId = id as string;
  if (secret === null || (secret as string).length == 0) r.fail(path + ".aws.secret_access_key_env", "environment variable " + secretEnv + " is not set for the Wasm VM (list it in vm_config.environment_variables.host_env_keys)");
  else c.secretAccessKey = secret as string;
  // A session token is optional: only temporary credentials have one.
  const token = getEnv(tokenEnv);
  if (token !== null) c.sessionToken = token as string;
  inst.aws = c;
}

function instanceIndex(s: Settings, name: string): i32 {
  for (let i = 0; i < s.instances.length; i++) if (s.instances[i].name == name) return i;
  return -1;
}

function readPool(r: ConfigReader, v: JsonValue, path: string, s: Settings): void {
  if (!v.isObject()) {
    r.fail(path, "must be an object");
    return;
  }
  r.onlyKnown(v, path, ["name", "instances", "algorithm", "hash_on"]);
  const pool = new Pool();
  pool.name = r.str(v, "name", path, "");
  if (r.ok && pool.name.length == 0) r.fail(path + ".name", "is required");
  for (let i = 0; i < s.pools.length; i++) if (s.pools[i].name == pool.name) r.fail(path + ".name", "duplicate pool name '" + pool.name + "'");
  const members = r.array(v, "instances", path, true);
  if (r.ok && members.length == 0) r.fail(path + ".instances", "must list at least one instance");
  for (let i = 0; i < members.length && r.ok; i++) {
    const m = members[i];
    const at = path + ".instances[" + i.toString() + "]";
    if (!m.isString()) { r.fail(at, "must be an instance name"); break; }
    const idx = instanceIndex(s, m.s);
    if (idx < 0) r.fail(at, "no instance named '" + m.s + "'");
    else if (pool.members.includes(idx)) r.fail(at, "'" + m.s + "' is listed twice");
    else pool.members.push(idx);
  }
  const algorithm = r.str(v, "algorithm", path, "weighted_round_robin");
  pool.algorithm = ALGORITHMS.indexOf(algorithm);
  if (pool.algorithm < 0) {
    r.fail(path + ".algorithm", "unknown algorithm '" + algorithm + "' (expected one of: " + ALGORITHMS.join(", ") + ")");
    pool.algorithm = WRR;
  }
  pool.hashOn = r.str(v, "hash_on", path, "consumer").toLowerCase();
  if (pool.hashOn != "consumer" && !pool.hashOn.startsWith("header:")) r.fail(path + ".hash_on", "must be 'consumer' or 'header:<name>'");
  if (pool.algorithm == CONSISTENT_HASH) pool.buildRing(s.instances);
  if (pool.algorithm == LEAST_LATENCY) s.trackLatency = true;
  if (pool.algorithm == LEAST_INFLIGHT) s.trackInflight = true;
  s.pools.push(pool);
}

function readHealth(r: ConfigReader, v: JsonValue | null, s: Settings): void {
  if (v === null) return;
  if (!v.isObject()) {
    r.fail("ai-proxy.health", "must be an object");
    return;
  }
  const h = s.health;
  r.onlyKnown(v, "ai-proxy.health", ["failures", "cooldown_ms", "max_cooldown_ms", "active"]);
  h.failures = <i32>r.int(v, "failures", "ai-proxy.health", 3, 1, 1000);
  h.cooldownMs = r.int(v, "cooldown_ms", "ai-proxy.health", 10000, 1, 86400000);
  h.maxCooldownMs = r.int(v, "max_cooldown_ms", "ai-proxy.health", 300000, 1, 86400000);
  if (h.maxCooldownMs < h.cooldownMs) r.fail("ai-proxy.health.max_cooldown_ms", "must not be below cooldown_ms");
  const a = v.get("active");
  if (a === null) return;
  if (!a.isObject()) {
    r.fail("ai-proxy.health.active", "must be an object");
    return;
  }
  r.onlyKnown(a, "ai-proxy.health.active", ["interval_ms", "timeout_ms", "healthy", "unhealthy", "path"]);
  h.active = true;
  h.intervalMs = r.int(a, "interval_ms", "ai-proxy.health.active", 10000, 100, 86400000);
  h.timeoutMs = r.int(a, "timeout_ms", "ai-proxy.health.active", 2000, 1, 600000);
  h.healthy = <i32>r.int(a, "healthy", "ai-proxy.health.active", 2, 1, 100);
  h.unhealthy = <i32>r.int(a, "unhealthy", "ai-proxy.health.active", 3, 1, 100);
  h.path = r.str(a, "path", "ai-proxy.health.active", "");
  if (h.path.length && !h.path.startsWith("/")) r.fail("ai-proxy.health.active.path", "must start with /");
}

const FALLBACK_CAUSES: Array<string> = ["connect_failure", "timeout", "5xx", "429"];

function readFallback(r: ConfigReader, v: JsonValue | null, s: Settings): void {
  if (v === null) return;
  if (!v.isObject()) {
    r.fail("ai-proxy.fallback", "must be an object");
    return;
  }
  r.onlyKnown(v, "ai-proxy.fallback", ["on", "max_retries", "timeout_ms"]);
  const on = v.get("on");
  if (on !== null) {
    if (!on.isArray()) r.fail("ai-proxy.fallback.on", "must be a list");
    else {
      s.fallbackOn = [];
      const items = on.items as Array<JsonValue>;
      for (let i = 0; i < items.length; i++) {
        const c = items[i];
        const ok = c.isString() && (FALLBACK_CAUSES.includes(c.s) || (c.s.length == 3 && I32.parseInt(c.s) >= 400 && I32.parseInt(c.s) <= 599));
        if (!ok) r.fail("ai-proxy.fallback.on[" + i.toString() + "]", "must be connect_failure, timeout, 5xx, 429 or a status code 400-599");
        else s.fallbackOn.push(c.s);
      }
    }
  }
  s.maxRetries = <i32>r.int(v, "max_retries", "ai-proxy.fallback", 2, 0, 10);
  s.fallbackTimeoutMs = r.int(v, "timeout_ms", "ai-proxy.fallback", 120000, 1, 3600000);
}

export function readSettings(buf: ArrayBuffer): Settings | null {
  const r = new ConfigReader("ai-proxy");
  const cfg = r.parse(buf);
  if (cfg === null) {
    r.report();
    return null;
  }
  r.onlyKnown(cfg, "ai-proxy", ["instances", "pools", "default_pool", "health", "fallback", "instance_header", "cluster_header", "max_request_body_bytes", "max_response_body_bytes", "max_stream_event_bytes", "max_json_values", "request_limits", "api_prefixes", "prices", "currency", "responses_store", "cache_capture"]);
  const s = new Settings();
  const list = r.array(cfg, "instances", "ai-proxy", true);
  if (r.ok && list.length == 0) r.fail("ai-proxy.instances", "must list at least one provider instance");
  for (let i = 0; i < list.length && r.ok; i++) readInstance(r, list[i], "ai-proxy.instances[" + i.toString() + "]", s);
  const pools = r.array(cfg, "pools", "ai-proxy", false);
  for (let i = 0; i < pools.length && r.ok; i++) readPool(r, pools[i], "ai-proxy.pools[" + i.toString() + "]", s);
  const dp = r.str(cfg, "default_pool", "ai-proxy", "");
  if (dp.length) {
    for (let i = 0; i < s.pools.length; i++) if (s.pools[i].name == dp) s.defaultPool = i;
    if (s.defaultPool < 0) r.fail("ai-proxy.default_pool", "no pool named '" + dp + "'");
  }
  readHealth(r, cfg.get("health"), s);
  readFallback(r, cfg.get("fallback"), s);
  s.instanceHeader = r.bool(cfg, "instance_header", "ai-proxy", false);
  s.cacheCapture = r.bool(cfg, "cache_capture", "ai-proxy", false);
  s.clusterHeader = r.str(cfg, "cluster_header", "ai-proxy", "x-sluice-cluster").toLowerCase();
  s.maxBodyBytes = r.int(cfg, "max_request_body_bytes", "ai-proxy", DEFAULT_MAX_BODY, 1, 1073741824);
  s.maxJsonValues = <i32>r.int(cfg, "max_json_values", "ai-proxy", DEFAULT_MAX_JSON_VALUES, 1000, 100000000);
  readLimits(r, cfg.get("request_limits"), s.limits);
  readPrices(r, cfg.get("prices"), s.prices, "ai-proxy.prices");
  s.currency = r.str(cfg, "currency", "ai-proxy", "USD");
  readStore(r, cfg.get("responses_store"), s.store);
  const prefixes = r.array(cfg, "api_prefixes", "ai-proxy", false);
  if (cfg.get("api_prefixes") !== null) s.apiPrefixes = [];
  for (let i = 0; i < prefixes.length; i++) {
    const at = "ai-proxy.api_prefixes[" + i.toString() + "]";
    const v = prefixes[i];
    if (!v.isString() || !v.s.startsWith("/") || !v.s.endsWith("/")) r.fail(at, "must be a path prefix that starts and ends with /, such as /v1/");
    else s.apiPrefixes.push(v.s);
  }
  s.maxResponseBodyBytes = r.int(cfg, "max_response_body_bytes", "ai-proxy", DEFAULT_MAX_RESPONSE_BODY, 1, 1073741824);
  s.maxStreamEventBytes = <i32>r.int(cfg, "max_stream_event_bytes", "ai-proxy", DEFAULT_MAX_STREAM_EVENT, 65536, 1073741824);
  if (!r.report()) return null;
  s.models = modelsList(s);
  s.modelLabels = modelLabels(s);
  return s;
}

function readStore(r: ConfigReader, v: JsonValue | null, st: StoreConfig): void {
  if (v === null) return;
  const at = "ai-proxy.responses_store";
  if (!v.isObject()) {
    r.fail(at, "must be an object");
    return;
  }
  r.onlyKnown(v, at, ["max_entries", "max_entry_bytes", "ttl_seconds"]);
  st.maxEntries = r.int(v, "max_entries", at, st.maxEntries, 0, 1000000);
  st.maxEntryBytes = r.int(v, "max_entry_bytes", at, st.maxEntryBytes, 1024, 16777216);
  st.ttlMs = r.int(v, "ttl_seconds", at, st.ttlMs / 1000, 1, 2592000) * 1000;
}

function readLimits(r: ConfigReader, v: JsonValue | null, l: RequestLimits): void {
  if (v === null) return;
  const at = "ai-proxy.request_limits";
  if (!v.isObject()) {
    r.fail(at, "must be an object");
    return;
  }
  r.onlyKnown(v, at, ["max_messages", "max_n", "max_tokens"]);
  l.maxMessages = <i32>r.int(v, "max_messages", at, l.maxMessages, 1, 1000000);
  l.maxN = <i32>r.int(v, "max_n", at, l.maxN, 1, 10000);
  l.maxTokens = r.int(v, "max_tokens", at, l.maxTokens, 1, 9007199254740991);
}

/** The model names the configuration spells out (wildcards are not names). */
function modelLabels(s: Settings): Set<string> {
  const set = new Set<string>();
  for (let i = 0; i < s.instances.length; i++) {
    const inst = s.instances[i];
    if (inst.model.length) set.add(inst.model);
    const mapped = inst.modelMap.values();
    for (let j = 0; j < mapped.length; j++) set.add(mapped[j]);
    // The names clients ask for, too (gen_ai.request.model).
    const asked = inst.modelMap.keys();
    for (let j = 0; j < asked.length; j++) set.add(asked[j]);
    for (let j = 0; j < inst.models.length; j++) if (!inst.models[j].endsWith("*")) set.add(inst.models[j]);
  }
  for (let i = 0; i < s.pools.length; i++) set.add(s.pools[i].name);
  return set;
}

/** GET /v1/models: every model a client can ask for, from the instances' configuration. */
function modelsList(s: Settings): ModelList {
  const list = new ModelList();
  for (let i = 0; i < s.instances.length; i++) {
    const inst = s.instances[i];
    for (let j = 0; j < inst.models.length; j++) list.add(inst.models[j], inst.provider, i);
    const mapped = inst.modelMap.keys();
    for (let j = 0; j < mapped.length; j++) list.add(mapped[j], inst.provider, i);
    if (inst.model.length) list.add(inst.model, inst.provider, i);
  }
  list.seal();
  return list;
}
