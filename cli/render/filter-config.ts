// Each Sluice filter's JSON configuration, from gateway.yaml.
import { MOCK_KEY } from "./constants.js";
import type { Embeddings, GatewayConfig, Instance } from "../gateway-config.js";
import { keyAuthVirtualKeys } from "../virtual-keys-config.js";
import { moderationJson } from "../guard-moderation.js";
import { cacheStoreJson, cacheStoreEnvKeys } from "../cache-config.js";

export function keyAuthJson(cfg: GatewayConfig): Record<string, unknown> {
  const k = cfg.keyAuth;
  return {
    consumers: cfg.consumers,
    ...(cfg.virtualKeys ? { virtual_keys: keyAuthVirtualKeys(cfg.virtualKeys) } : {}),
    ...(k.header !== undefined ? { header: k.header } : {}),
    ...(k.query !== undefined ? { query: k.query } : {}),
    ...(k.hideCredentials !== undefined ? { hide_credentials: k.hideCredentials } : {}),
    ...(k.anonymous !== undefined ? { anonymous: k.anonymous } : {}),
    ...(k.realm !== undefined ? { realm: k.realm } : {}),
  };
}

/**
 * The identity filter's JSON: gateway.yaml `identity` as checked (cli/identity-config.ts), plus key-auth's
 * anonymous consumer, which identity treats as no identity yet (a keyless request key-auth let through).
 */
export function identityJson(cfg: GatewayConfig): Record<string, unknown> {
  const anon = cfg.keyAuth.enabled ? cfg.keyAuth.anonymous : undefined;
  return { ...cfg.identity, ...(anon !== undefined ? { key_auth_anonymous: anon } : {}) };
}

/** The cluster of an azure-openai instance's Entra ID token endpoint. */
export const entraCluster = (instance: string) => `${instance}_entra`;

/** The token endpoints (Entra ID's, the metadata server) as cluster targets (rendered like a provider's). */
export function entraTargets(cfg: GatewayConfig): Instance[] {
  return cfg.providers.flatMap((i) => {
    const url = i.entra?.tokenUrl ?? i.google?.metadataUrl;
    return url ? [{ name: tokenCluster(i), provider: "openai-compatible" as const, apiKeyEnv: null, apiKey: null, endpoint: url.href, url, http2: false }] : [];
  });
}

/** The cluster of an instance's token endpoint. */
export function tokenCluster(i: Instance): string {
  return i.entra ? entraCluster(i.name) : `${i.name}_google_token`;
}

/** The GCE metadata server's token path (the workload's default service account). */
export const METADATA_TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token";

export function instanceJson(i: Instance, credential: "env" | "mock", cluster?: string, clusterOf?: (i: Instance) => string): Record<string, unknown> {
  const out: Record<string, unknown> = { name: i.name, provider: i.provider };
  if (credential === "mock" && (i.apiKeyEnv || i.apiKey)) out.api_key = MOCK_KEY;
  else if (i.apiKeyEnv) out.api_key_env = i.apiKeyEnv;
  else if (i.apiKey) out.api_key = i.apiKey; // written inline only because the user wrote it inline
  if (i.apiKeysEnv) {
    if (credential === "mock") out.api_keys = i.apiKeysEnv.map((_, n) => `${MOCK_KEY}-${n + 1}`);
    else out.api_keys_env = i.apiKeysEnv;
  }
  out.endpoint = i.endpoint;
  if (cluster) out.cluster = cluster;
  if (i.models) out.models = i.models;
  if (i.model) out.model = i.model;
  if (i.modelMap) out.model_map = i.modelMap;
  if (i.options) out.options = i.options;
  if (i.maxTokens !== undefined) out.max_tokens = i.maxTokens;
  if (i.apiVersion) out.api_version = i.apiVersion;
  if (i.deployment) out.deployment = i.deployment;
  if (i.headers) out.headers = i.headers;
  if (i.weight !== undefined) out.weight = i.weight;
  if (i.priority !== undefined) out.priority = i.priority;
  if (i.price) out.price = i.price;
  if (i.redactUpstreamErrors !== undefined) out.redact_upstream_errors = i.redactUpstreamErrors;
  if (i.structuredOutput !== undefined) out.structured_output = i.structuredOutput;
  if (i.google) {
    const t = entraTargets({ providers: [i] } as GatewayConfig)[0];
    out.token = { source: "metadata", cluster: clusterOf?.(t) ?? t.name, authority: i.google.metadataUrl.host, path: METADATA_TOKEN_PATH, scope: i.google.scope };
  }
  if (i.entra) {
    const t = entraTargets({ providers: [i] } as GatewayConfig)[0];
    out.token = { source: "client_credentials", cluster: clusterOf?.(t) ?? t.name, authority: i.entra.tokenUrl.host, path: i.entra.tokenUrl.pathname, client_id_env: i.entra.clientIdEnv, client_secret_env: i.entra.clientSecretEnv, scope: i.entra.scope };
  }
  if (i.region !== undefined) out.region = i.region;
  if (i.aws) out.aws = i.aws;
  return out;
}

export function aiProxyJson(cfg: GatewayConfig, credential: "env" | "mock", clusterOf?: (i: Instance) => string): Record<string, unknown> {
  const a = cfg.aiProxy;
  return {
    instances: cfg.providers.map((i) => instanceJson(i, credential, clusterOf?.(i), clusterOf)),
    ...(cfg.pools.length ? { pools: cfg.pools } : {}),
    ...(a.defaultPool !== undefined ? { default_pool: a.defaultPool } : {}),
    ...(a.health !== undefined ? { health: a.health } : {}),
    ...(a.fallback !== undefined ? { fallback: a.fallback } : {}),
    ...(a.instanceHeader !== undefined ? { instance_header: a.instanceHeader } : {}),
    ...(a.requestLimits !== undefined ? { request_limits: a.requestLimits } : {}),
    ...(a.responsesStore !== undefined ? { responses_store: a.responsesStore } : {}),
    ...(a.maxJsonValues !== undefined ? { max_json_values: a.maxJsonValues } : {}),
    ...(a.apiPrefixes !== undefined ? { api_prefixes: a.apiPrefixes } : {}),
    ...(a.prices !== undefined ? { prices: a.prices } : {}),
    ...(a.currency !== undefined ? { currency: a.currency } : {}),
    // ai-cache asks ai-proxy, through filter state, for the answers it keeps.
    ...(cfg.aiCache ? { cache_capture: true } : {}),
    cluster_header: a.clusterHeader,
    ...(a.maxRequestBodyBytes !== undefined ? { max_request_body_bytes: a.maxRequestBodyBytes } : {}),
    ...(a.maxResponseBodyBytes !== undefined ? { max_response_body_bytes: a.maxResponseBodyBytes } : {}),
    ...(a.maxStreamEventBytes !== undefined ? { max_stream_event_bytes: a.maxStreamEventBytes } : {}),
  };
}

/** The host_env_keys ai-proxy's VM needs: every api_key_env, once. */
export function envKeys(cfg: GatewayConfig): string[] {
  return [...new Set([...cfg.providers.map((i) => i.apiKeyEnv).filter((k): k is string => !!k), ...cfg.providers.flatMap((i) => i.apiKeysEnv ?? []), ...awsEnvKeys(cfg), ...entraEnvKeys(cfg)])];
}

/** The Entra ID client variables of the azure-openai instances that use it. */
export function entraEnvKeys(cfg: GatewayConfig): string[] {
  return [...new Set(cfg.providers.flatMap((i) => (i.entra ? [i.entra.clientIdEnv, i.entra.clientSecretEnv] : [])))];
}

/** The AWS credential variables of the instances that sign (Bedrock). */
export function awsEnvKeys(cfg: GatewayConfig): string[] {
  return [...new Set(cfg.providers.flatMap((i) => (i.aws ? [i.aws.access_key_id_env, i.aws.secret_access_key_env, i.aws.session_token_env] : [])))];
}

/** The host_env_keys ai-router's VM needs: its embeddings key variable, if any. */
export function routerEnvKeys(cfg: GatewayConfig): string[] {
  const k = cfg.aiRouter?.embeddings?.apiKeyEnv;
  return k ? [k] : [];
}

/**
 * ai-router's JSON configuration. Its embeddings (only when a rule is semantic) go to the cluster of
 * their providers[] entry or to the sluice-embeddings cluster; `clusterOf` names it for Istio.
 */
export function aiRouterJson(cfg: GatewayConfig, credential: "env" | "mock", clusterOf?: (i: Instance) => string): Record<string, unknown> {
  const r = cfg.aiRouter!;
  const out: Record<string, unknown> = { ...r.json };
  const e = r.embeddings;
  if (e) out.embeddings = { ...embeddingsTarget(e, credential, clusterOf), ...e.options };
  return out;
}

/** Where an embeddings instance is reached: its cluster, model, path, authority and key (or its variable). */
function embeddingsTarget(e: Embeddings, credential: "env" | "mock", clusterOf?: (i: Instance) => string): Record<string, unknown> {
  const emb: Record<string, unknown> = {
    cluster: clusterOf?.(e.target) ?? e.target.name,
    model: e.model,
    path: e.path,
    authority: e.target.url.host,
  };
  if (credential === "mock" && (e.apiKeyEnv || e.apiKey)) emb.api_key = MOCK_KEY;
  else if (e.apiKeyEnv) emb.api_key_env = e.apiKeyEnv;
  else if (e.apiKey) emb.api_key = e.apiKey;
  return emb;
}

/**
 * ai-cache's JSON configuration: its settings, and for semantic lookups ai-router's embeddings
 * instance (with the dimensions asked of it, so both embed alike).
 */
export function aiCacheJson(cfg: GatewayConfig, credential: "env" | "mock", clusterOf?: (i: Instance) => string): Record<string, unknown> {
  const c = cfg.aiCache!;
  const { store_prefix: prefix, store_timeout_ms: timeout, ...settings } = c.json;
  const out: Record<string, unknown> = { ...settings };
  const store = cacheStoreJson(c, clusterOf);
  if (store) out.store = { ...store, ...(prefix !== undefined ? { prefix } : {}), ...(timeout !== undefined ? { timeout_ms: timeout } : {}) };
  if (c.embeddings && out.semantic) {
    const dims = c.embeddings.options.dimensions;
    out.semantic = { ...embeddingsTarget(c.embeddings, credential, clusterOf), ...(dims ? { dimensions: dims } : {}), ...(out.semantic as object) };
  }
  return out;
}

/** The host_env_keys ai-cache's VM needs: the embeddings key variable when it is semantic, the store's credential. */
export function cacheEnvKeys(cfg: GatewayConfig): string[] {
  const k = cfg.aiCache?.embeddings?.apiKeyEnv;
  return [...(k ? [k] : []), ...cacheStoreEnvKeys(cfg.aiCache)];
}

/** ai-ratelimit's JSON configuration. */
export function aiRatelimitJson(cfg: GatewayConfig): Record<string, unknown> {
  const json: Record<string, unknown> = { ...cfg.aiRatelimit!.json };
  // Money budgets price requests with the table ai-proxy prices its usage records with.
  const prices = cfg.aiProxy.prices;
  if (prices && (json.rules as { strategy?: string }[]).some((r) => r.strategy === "cost")) json.prices = prices;
  return json;
}

/** ai-guard's JSON configuration: gateway.yaml filters.ai_guard as checked (cli/gateway-config.ts checkGuard). */
export function aiGuardJson(cfg: GatewayConfig, credential: "env" | "mock" = "env", moderationCluster?: string): Record<string, unknown> {
  const out: Record<string, unknown> = { ...cfg.aiGuard! };
  if (out.moderation) {
    const m = moderationJson(out.moderation, credential, MOCK_KEY);
    // Istio names the service's cluster after its ServiceEntry (istio.ts istioCluster).
    if (moderationCluster) m.cluster = moderationCluster;
    out.moderation = m;
  }
  return out;
}

/** The host_env_keys ai-guard's VM needs: its moderation key variable, if any. */
export function guardEnvKeys(cfg: GatewayConfig): string[] {
  const k = (cfg.aiGuard?.moderation as { api_key_env?: string } | undefined)?.api_key_env;
  return k ? [k] : [];
}
