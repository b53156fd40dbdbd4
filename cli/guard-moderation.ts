// gateway.yaml filters.ai_guard.moderation: checked here (what the schema cannot check), rendered as
// the sluice-moderation cluster and the `moderation` section of ai-guard's JSON configuration
// (assembly/filters/ai-guard/moderation-config.ts reads it). docs/filters/ai-guard.md, "External
// moderation".
import type { Instance } from "./gateway-config.js";

/** The cluster the moderation service is rendered as. */
export const MODERATION_CLUSTER = "sluice-moderation";

const DEFAULT_PATHS: Record<string, string> = {
  openai: "/v1/moderations",
  azure: "/contentsafety/text:analyze?api-version=2024-09-01",
  webhook: "/moderate",
};

type Fail = (path: (string | number)[], message: string, keyOf?: string) => void;

/** The endpoint must be an http(s) URL; a policy cannot turn on moderation the filter has no service for. */
export function checkModeration(g: any, fail: Fail): void {
  const m = g.moderation;
  if (m === undefined) {
    for (const k of ["consumers", "routes", "pools"]) {
      for (const [n, p] of Object.entries(g[k] ?? {})) {
        if ((p as any)?.moderation === true) fail(["filters", "ai_guard", k, n, "moderation"], "needs filters.ai_guard.moderation (the service to call)");
      }
    }
    return;
  }
  let url: URL | null = null;
  try {
    url = new URL(String(m.endpoint));
  } catch {
    fail(["filters", "ai_guard", "moderation", "endpoint"], `${JSON.stringify(m.endpoint)} is not a valid URL`);
    return;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") fail(["filters", "ai_guard", "moderation", "endpoint"], "must be an http:// or https:// URL");
  if (url.search || url.hash) fail(["filters", "ai_guard", "moderation", "endpoint"], "must have no query or fragment (give path instead)");
  if (m.path !== undefined && !String(m.path).startsWith("/")) fail(["filters", "ai_guard", "moderation", "path"], "must start with /");
  if (m.threshold !== undefined && m.provider !== "openai") fail(["filters", "ai_guard", "moderation", "threshold"], "applies to provider openai only (azure uses severity)");
  if (m.severity !== undefined && m.provider !== "azure") fail(["filters", "ai_guard", "moderation", "severity"], "applies to provider azure only");
}

/** The service as a cluster target (the same cluster shape, TLS and SAN checks as a provider's). */
export function moderationTarget(aiGuard: Record<string, unknown> | null): Instance | null {
  const m = aiGuard?.moderation as any;
  if (!m) return null;
  const url = new URL(String(m.endpoint).replace(/\/+$/, ""));
  return {
    name: MODERATION_CLUSTER,
    provider: "openai",
    apiKeyEnv: m.api_key_env ?? null,
    apiKey: null,
    endpoint: url.href,
    url,
    http2: url.protocol === "https:",
  };
}

/** ai-guard's `moderation` JSON: gateway.yaml's section with the endpoint turned into cluster, authority and path. */
export function moderationJson(m: any, credential: "env" | "mock", mockKey: string): Record<string, unknown> {
  const url = new URL(String(m.endpoint).replace(/\/+$/, ""));
  const { endpoint: _e, api_key_env: keyEnv, ...rest } = m;
  const out: Record<string, unknown> = {
    ...rest,
    cluster: MODERATION_CLUSTER,
    authority: url.host,
    path: m.path ?? `${url.pathname.replace(/\/+$/, "")}${DEFAULT_PATHS[m.provider]}`,
  };
  if (keyEnv) {
    if (credential === "mock") out.api_key = mockKey;
    else out.api_key_env = keyEnv;
  }
  return out;
}
