// gateway.yaml `mcp`: what the schema cannot check, the mcp filter's JSON (assembly/filters/mcp reads
// it), its clusters (mcp_<name>, mcp_<name>_oauth) and the environment variables its VM needs.
// docs/mcp.md.
import type { Instance } from "./gateway-config.js";

type Path = (string | number)[];
type Fail = (path: Path, message: string, keyOf?: string) => void;
type Warn = (path: Path, message: string) => void;

export interface McpAuth {
  header: string;
  value_env: string;
  prefix: string;
}

export interface McpOauth {
  tokenUrl: URL;
  client_id_env: string;
  client_secret_env: string;
  scope: string;
  audience: string;
}

export interface McpServer {
  name: string;
  url: URL;
  auth: McpAuth | null;
  oauth: McpOauth | null;
}

export interface McpAccess {
  consumers: string[];
  groups: string[];
  allow: string[];
  deny: string[];
  max_argument_bytes: number;
}

/** gateway.yaml `mcp` as checked, defaults filled in. */
export interface McpConfig {
  path: string;
  session: { keyEnv: string; ttlMs: number };
  maxBodyBytes: number;
  maxResponseBytes: number;
  timeoutMs: number;
  servers: McpServer[];
  access: McpAccess[];
  defaultAccess: Omit<McpAccess, "consumers" | "groups">;
}

export const MCP_DEFAULTS = {
  path: "/mcp",
  keyEnv: "SLUICE_MCP_SESSION_KEY",
  ttl: "24h",
  maxBodyBytes: 1048576,
  maxResponseBytes: 4194304,
  timeout: "15s",
  maxArgumentBytes: 262144,
} as const;

/** Headers the gateway, Envoy or HTTP itself owns: an upstream credential may not be sent as one of them. */
const RESERVED_HEADERS = new Set([
  "host", "content-length", "content-type", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer",
  "proxy-connection", "accept", "mcp-session-id", "mcp-protocol-version", "last-event-id", "x-request-id",
]);

/** "500ms" | "15s" | "2m" | "24h" -> milliseconds. */
export function mcpDurationMs(d: string): number {
  const m = /^([0-9]+)(ms|s|m|h)$/.exec(d);
  if (!m) throw new Error(`bad duration ${d}`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"];
}

export function httpUrl(v: unknown, at: Path, fail: Fail, what: string): URL | null {
  let url: URL;
  try {
    url = new URL(String(v));
  } catch {
    fail(at, `${JSON.stringify(v)} is not a valid URL`);
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return fail(at, `${what} must be an http:// or https:// URL`), null;
  if (url.username || url.password) return fail(at, "must not carry a user or password (give the credential in auth or oauth: it is read from the environment)"), null;
  if (url.hash) return fail(at, "must have no fragment"), null;
  return url;
}

/** host:port as the filter writes :authority (the port always written, IPv6 in brackets). */
export function authorityOf(url: URL): string {
  return `${url.hostname}:${url.port || (url.protocol === "https:" ? 443 : 80)}`;
}

/** A tool-name pattern of allow/deny: the server's prefix before "__" must name a server unless it holds a "*". */
function checkPattern(p: string, at: Path, servers: Set<string>, fail: Fail): void {
  const i = p.indexOf("__");
  if (i <= 0) return;
  const server = p.slice(0, i);
  if (!server.includes("*") && !servers.has(server)) fail(at, `'${p}' names no configured server '${server}' (mcp.servers: ${[...servers].join(", ")})`);
}

/**
 * gateway.yaml `mcp` -> McpConfig; null when there is no mcp section.
 * `ctx.providers`: provider instance names (a cluster name must not be taken twice); `ctx.groups`:
 * whether any consumer can have groups; `ctx.maxBuffered`: the largest body the route lets a filter hold;
 * `ctx.clusterHeader`: the header the route picks the cluster by.
 */
export function checkMcp(v: any, ctx: { providers: string[]; groups: boolean; maxBuffered: number; clusterHeader: string }, fail: Fail, warn: Warn): McpConfig | null {
  if (v === undefined) return null;
  const at = (...p: Path): Path => ["mcp", ...p];
  const path: string = v.path ?? MCP_DEFAULTS.path;
  const maxBodyBytes: number = v.max_body_bytes ?? MCP_DEFAULTS.maxBodyBytes;
  if (maxBodyBytes > ctx.maxBuffered) {
    fail(at("max_body_bytes"), `${maxBodyBytes} is above what the route lets a filter buffer (${ctx.maxBuffered}, filters.ai_proxy.max_request_body_bytes / max_response_body_bytes): Envoy's own 413 would answer first`);
  }
  const ttlMs = mcpDurationMs(v.session?.ttl ?? MCP_DEFAULTS.ttl);
  if (ttlMs < 60_000) fail(at("session", "ttl"), "must be at least 1m (a client re-initializes when its session expires)");
  const timeoutMs = mcpDurationMs(v.timeout ?? MCP_DEFAULTS.timeout);
  if (timeoutMs < 100) fail(at("timeout"), "must be at least 100ms");

  const names = new Set<string>();
  const providers = new Set(ctx.providers);
  const servers: McpServer[] = [];
  (v.servers as any[]).forEach((s, i) => {
    if (names.has(s.name)) fail(at("servers", i, "name"), `duplicate server name '${s.name}'`);
    names.add(s.name);
    if (providers.has(`mcp_${s.name}`) || providers.has(`mcp_${s.name}_oauth`)) {
      fail(at("servers", i, "name"), `its cluster mcp_${s.name} has the name of a provider instance: rename one`);
    }
    const url = httpUrl(s.url, at("servers", i, "url"), fail, "an MCP server's url");
    if (url?.search) fail(at("servers", i, "url"), "must have no query string (the MCP endpoint is one path)");
    if (s.auth !== undefined && s.oauth !== undefined) fail(at("servers", i), "give auth or oauth, not both", "oauth");
    let auth: McpAuth | null = null;
    if (s.auth !== undefined) {
      const header = String(s.auth.header ?? "authorization").toLowerCase();
      if (RESERVED_HEADERS.has(header) || header === ctx.clusterHeader || header.startsWith("x-envoy-")) {
        fail(at("servers", i, "auth", "header"), `'${header}' is a header HTTP, MCP, Envoy or the gateway itself sets`);
      }
      auth = { header, value_env: s.auth.value_env, prefix: s.auth.prefix ?? "" };
    }
    let oauth: McpOauth | null = null;
    if (s.oauth !== undefined) {
      const tokenUrl = httpUrl(s.oauth.token_url, at("servers", i, "oauth", "token_url"), fail, "token_url");
      if (tokenUrl && tokenUrl.protocol === "http:" && !/^(localhost|127\.[0-9.]+|\[::1\])$/.test(tokenUrl.hostname)) {
        warn(at("servers", i, "oauth", "token_url"), "plain http: the client secret crosses the network unencrypted");
      }
      if (tokenUrl) oauth = { tokenUrl, client_id_env: s.oauth.client_id_env, client_secret_env: s.oauth.client_secret_env, scope: s.oauth.scope ?? "", audience: s.oauth.audience ?? "" };
    }
    if (url) servers.push({ name: s.name, url, auth, oauth });
  });

  const d = v.default_access ?? {};
  const defaultAccess = {
    allow: d.allow ?? ["*"],
    deny: d.deny ?? [],
    max_argument_bytes: d.max_argument_bytes ?? MCP_DEFAULTS.maxArgumentBytes,
  };
  const checkLimits = (a: { allow: string[]; deny: string[]; max_argument_bytes: number }, p: Path) => {
    a.allow.forEach((x, j) => checkPattern(x, [...p, "allow", j], names, fail));
    a.deny.forEach((x, j) => checkPattern(x, [...p, "deny", j], names, fail));
    if (a.max_argument_bytes > maxBodyBytes) warn([...p, "max_argument_bytes"], `above mcp.max_body_bytes (${maxBodyBytes}): a request that large is refused whole first`);
  };
  checkLimits(defaultAccess, at("default_access"));
  const access: McpAccess[] = ((v.access ?? []) as any[]).map((a, i) => {
    const consumers: string[] = a.consumers ?? [];
    const groups: string[] = a.groups ?? [];
    if (!consumers.length && !groups.length) fail(at("access", i), "names no consumers and no groups: it would never match (default_access is for everyone else)");
    if (groups.length && !ctx.groups) fail(at("access", i, "groups"), "no consumer has groups: identity.groups is not configured (docs/identity.md)");
    const out = {
      consumers,
      groups,
      allow: a.allow ?? ["*"],
      deny: a.deny ?? [],
      max_argument_bytes: a.max_argument_bytes ?? defaultAccess.max_argument_bytes,
    };
    checkLimits(out, at("access", i));
    return out;
  });
  return {
    path,
    session: { keyEnv: v.session?.key_env ?? MCP_DEFAULTS.keyEnv, ttlMs },
    maxBodyBytes,
    maxResponseBytes: v.max_response_bytes ?? MCP_DEFAULTS.maxResponseBytes,
    timeoutMs,
    servers,
    access,
    defaultAccess,
  };
}

function target(name: string, url: URL): Instance {
  return { name, provider: "openai-compatible", apiKeyEnv: null, apiKey: null, endpoint: url.href, url, http2: false };
}

export const mcpCluster = (server: string) => `mcp_${server}`;
export const mcpOauthCluster = (server: string) => `mcp_${server}_oauth`;

/** Each server's endpoint, and its OAuth token endpoint, as a cluster target (cli/render/clusters.ts cluster). */
export function mcpTargets(m: McpConfig | null): Instance[] {
  if (!m) return [];
  return m.servers.flatMap((s) => [target(mcpCluster(s.name), s.url), ...(s.oauth ? [target(mcpOauthCluster(s.name), s.oauth.tokenUrl)] : [])]);
}

/**
 * The mcp filter's JSON configuration (docs/mcp.md). `clusterOf` names a target's cluster where it is
 * not the envoy.yaml one (Istio: outbound|<port>||<host>).
 */
export function mcpJson(m: McpConfig, clusterHeader: string, clusterOf?: (i: Instance) => string): Record<string, unknown> {
  const cluster = (name: string, url: URL) => clusterOf?.(target(name, url)) ?? name;
  return {
    path: m.path,
    cluster_header: clusterHeader,
    session: { key_env: m.session.keyEnv, ttl_ms: m.session.ttlMs },
    max_body_bytes: m.maxBodyBytes,
    max_response_bytes: m.maxResponseBytes,
    timeout_ms: m.timeoutMs,
    servers: m.servers.map((s) => ({
      name: s.name,
      cluster: cluster(mcpCluster(s.name), s.url),
      authority: authorityOf(s.url),
      path: s.url.pathname,
      ...(s.auth ? { auth: { ...s.auth } } : {}),
      ...(s.oauth
        ? {
            oauth: {
              cluster: cluster(mcpOauthCluster(s.name), s.oauth.tokenUrl),
              authority: authorityOf(s.oauth.tokenUrl),
              path: s.oauth.tokenUrl.pathname + s.oauth.tokenUrl.search,
              client_id_env: s.oauth.client_id_env,
              client_secret_env: s.oauth.client_secret_env,
              scope: s.oauth.scope,
              audience: s.oauth.audience,
            },
          }
        : {}),
    })),
    access: m.access.map((a) => ({ ...a })),
    default_access: { ...m.defaultAccess },
  };
}

/** The host_env_keys the mcp filter's VM needs: the session key and every server credential's variable, once. */
export function mcpEnvKeys(m: McpConfig | null): string[] {
  if (!m) return [];
  const keys = [m.session.keyEnv];
  for (const s of m.servers) {
    if (s.auth) keys.push(s.auth.value_env);
    if (s.oauth) keys.push(s.oauth.client_id_env, s.oauth.client_secret_env);
  }
  return [...new Set(keys)];
}
