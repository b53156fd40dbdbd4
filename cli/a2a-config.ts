// gateway.yaml `a2a`: what the schema cannot check, the a2a filter's JSON (assembly/filters/a2a reads
// it), its clusters (a2a_<name>) and the environment variables its VM needs. docs/a2a.md.
import type { Instance } from "./gateway-config.js";
import { authorityOf, httpUrl, mcpDurationMs } from "./mcp-config.js";

type Path = (string | number)[];
type Fail = (path: Path, message: string, keyOf?: string) => void;

export interface A2aAgent {
  name: string;
  url: URL;
  cardPath: string;
  auth: { header: string; value_env: string; prefix: string } | null;
}

/** gateway.yaml `a2a` as checked, defaults filled in. */
export interface A2aConfig {
  pathPrefix: string;
  publicUrl: string;
  maxBodyBytes: number;
  cardTtlMs: number;
  timeoutMs: number;
  agents: A2aAgent[];
}

/** Headers HTTP, A2A, Envoy or the gateway own: an agent's credential may not be sent as one of them. */
const RESERVED_HEADERS = new Set(["host", "content-length", "content-type", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer", "accept", "a2a-version", "a2a-extensions", "x-request-id"]);

/**
 * gateway.yaml `a2a` -> A2aConfig; null when there is none. `ctx.taken`: cluster names already used
 * (provider instances, MCP servers); `ctx.mcpPath`: the MCP endpoint, which the agents' prefix must
 * not cover; `ctx.maxBuffered`: the largest body the route lets a filter hold.
 */
export function checkA2a(v: any, ctx: { taken: string[]; mcpPath: string | null; maxBuffered: number; clusterHeader: string }, fail: Fail): A2aConfig | null {
  if (v === undefined) return null;
  const at = (...p: Path): Path => ["a2a", ...p];
  const pathPrefix: string = v.path_prefix ?? "/a2a";
  if (ctx.mcpPath && (ctx.mcpPath === pathPrefix || ctx.mcpPath.startsWith(`${pathPrefix}/`))) fail(at("path_prefix"), `covers the MCP endpoint ${ctx.mcpPath}`);
  if (/^\/v1(beta)?(\/|$)/.test(pathPrefix)) fail(at("path_prefix"), "is under the AI APIs' /v1 and /v1beta paths");
  const maxBodyBytes: number = v.max_body_bytes ?? 1048576;
  if (maxBodyBytes > ctx.maxBuffered) fail(at("max_body_bytes"), `${maxBodyBytes} is above what the route lets a filter buffer (${ctx.maxBuffered}): Envoy's own 413 would answer first`);
  const taken = new Set(ctx.taken);
  const names = new Set<string>();
  const agents: A2aAgent[] = [];
  (v.agents as any[]).forEach((a, i) => {
    if (names.has(a.name)) fail(at("agents", i, "name"), `duplicate agent name '${a.name}'`);
    names.add(a.name);
    if (taken.has(`a2a_${a.name}`)) fail(at("agents", i, "name"), `its cluster a2a_${a.name} is already the name of another cluster: rename one`);
    const url = httpUrl(a.url, at("agents", i, "url"), fail, "an agent's url");
    if (url?.search) fail(at("agents", i, "url"), "must have no query string");
    let cardPath = "/.well-known/agent-card.json";
    if (a.card_url !== undefined && url) {
      const card = httpUrl(a.card_url, at("agents", i, "card_url"), fail, "card_url");
      if (card && card.origin !== url.origin) fail(at("agents", i, "card_url"), `must be on the agent's own host and port (${url.origin}): the gateway fetches it through the agent's cluster`);
      if (card) cardPath = card.pathname + card.search;
    }
    let auth: A2aAgent["auth"] = null;
    if (a.auth !== undefined) {
      const header = String(a.auth.header ?? "authorization").toLowerCase();
      if (RESERVED_HEADERS.has(header) || header === ctx.clusterHeader || header.startsWith("x-envoy-")) fail(at("agents", i, "auth", "header"), `'${header}' is a header HTTP, A2A, Envoy or the gateway itself sets`);
      auth = { header, value_env: a.auth.value_env, prefix: a.auth.prefix ?? "" };
    }
    if (url) agents.push({ name: a.name, url, cardPath, auth });
  });
  return {
    pathPrefix,
    publicUrl: v.public_url ?? "",
    maxBodyBytes,
    cardTtlMs: mcpDurationMs(v.card_ttl ?? "5m"),
    timeoutMs: mcpDurationMs(v.timeout ?? "15s"),
    agents,
  };
}

export const a2aCluster = (agent: string) => `a2a_${agent}`;

/** Each agent's endpoint as a cluster target (cli/render/clusters.ts cluster). */
export function a2aTargets(a: A2aConfig | null): Instance[] {
  if (!a) return [];
  return a.agents.map((x) => ({ name: a2aCluster(x.name), provider: "openai-compatible", apiKeyEnv: null, apiKey: null, endpoint: x.url.href, url: x.url, http2: false }));
}

/**
 * The a2a filter's JSON configuration (docs/a2a.md). `keyHeader`: key-auth's header when it is not the
 * bearer authorization one (the cards then name an API key header); `clusterOf` names a target's
 * cluster where it is not the envoy.yaml one (Istio: outbound|<port>||<host>).
 */
export function a2aJson(a: A2aConfig, clusterHeader: string, keyHeader: string | undefined, clusterOf?: (i: Instance) => string): Record<string, unknown> {
  const targets = a2aTargets(a);
  const apiKey = keyHeader !== undefined && keyHeader.toLowerCase() !== "authorization";
  return {
    path_prefix: a.pathPrefix,
    public_url: a.publicUrl,
    cluster_header: clusterHeader,
    max_body_bytes: a.maxBodyBytes,
    card_ttl_ms: a.cardTtlMs,
    timeout_ms: a.timeoutMs,
    auth_scheme: apiKey ? { type: "api_key", header: keyHeader!.toLowerCase() } : { type: "bearer" },
    agents: a.agents.map((x, i) => ({
      name: x.name,
      cluster: clusterOf?.(targets[i]) ?? a2aCluster(x.name),
      authority: authorityOf(x.url),
      path: x.url.pathname,
      card_path: x.cardPath,
      ...(x.auth ? { auth: { ...x.auth } } : {}),
    })),
  };
}

/** The host_env_keys the a2a filter's VM needs: every agent credential's variable, once. */
export function a2aEnvKeys(a: A2aConfig | null): string[] {
  return a ? [...new Set(a.agents.flatMap((x) => (x.auth ? [x.auth.value_env] : [])))] : [];
}
