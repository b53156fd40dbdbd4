// Azure OpenAI with Microsoft Entra ID: an instance with `entra` sends `Authorization: Bearer <token>`
// instead of its `api-key`, the token fetched with the client-credentials grant from the tenant's
// token endpoint by lib/oauth-token.ts (one fetch for every worker, in shared data, refreshed on
// the root's tick before it expires; failures back off). A request finds the current token or, when
// there is none (the endpoint is down, the client is refused, none was fetched yet), a 503 in the
// client's shape saying why; the secret and the token never reach a log, a metric or a client.
import { ConfigReader } from "../../lib/config";
import { JsonValue } from "../../lib/json";
import { getEnv } from "../../lib/env";
import { RootContext } from "../../lib/sdk";
import { TokenSource } from "../../lib/oauth-token";
import { ClientError, Upstream } from "../../providers/types";

/** Cognitive Services' scope: what an Azure OpenAI token is for. */
const DEFAULT_SCOPE = "https://cognitiveservices.azure.com/.default";

/** An instance's `entra` settings: where tokens come from and with which client. */
export class EntraConfig {
  cluster: string = "";
  authority: string = "";
  path: string = "";
  clientId: string = "";
  clientSecret: string = "";
  scope: string = DEFAULT_SCOPE;
  timeoutMs: u32 = 10000;
}

export function readEntra(r: ConfigReader, v: JsonValue, path: string): EntraConfig | null {
  if (!v.isObject()) {
    r.fail(path, "must be an object");
    return null;
  }
  r.onlyKnown(v, path, ["cluster", "authority", "path", "client_id_env", "client_secret_env", "scope", "timeout_ms"]);
  const e = new EntraConfig();
  e.cluster = r.str(v, "cluster", path, "");
  if (e.cluster.length == 0) r.fail(path + ".cluster", "is required (the Envoy cluster of the token endpoint)");
  e.authority = r.str(v, "authority", path, "login.microsoftonline.com");
  e.path = r.str(v, "path", path, "");
  if (!e.path.startsWith("/")) r.fail(path + ".path", "is required: the token endpoint's path (/<tenant>/oauth2/v2.0/token)");
  const idEnv = r.str(v, "client_id_env", path, "AZURE_CLIENT_ID");
  const secretEnv = r.str(v, "client_secret_env", path, "AZURE_CLIENT_SECRET");
  const id = getEnv(idEnv);
  const secret = getEnv(secretEnv);
  if (id === null || (id as string).length == 0) r.fail(path + ".client_id_env", "environment variable " + idEnv + " is not set for the Wasm VM");
  else e.clientId = id as string;
  if (secret === null || (secret as string).length == 0) r.fail(path + ".client_secret_env", "environment variable " + secretEnv + " is not set for the Wasm VM");
  else e.clientSecret = secret as string;
  e.scope = r.str(v, "scope", path, DEFAULT_SCOPE);
  e.timeoutMs = <u32>r.int(v, "timeout_ms", path, 10000, 100, 60000);
  return e;
}

/** The instance's token source (its name labels the token metrics). */
export function entraSource(root: RootContext, instance: string, e: EntraConfig): TokenSource {
  return new TokenSource(root, "ai-proxy", instance, e.cluster, e.authority, e.path, e.clientId, e.clientSecret, e.scope, "", e.timeoutMs);
}

/**
 * Puts the current token on the request in place of the api-key; the 503 to answer when there is
 * none.
 */
export function authorize(source: TokenSource, instance: string, up: Upstream, nowMs: i64): ClientError | null {
  const token = source.current(nowMs);
  if (token === null) {
    return ClientError.of(503, "The gateway has no Microsoft Entra ID token for instance '" + instance + "': " + source.why() + ".", "api_error", "upstream_credential_unavailable");
  }
  const h = new Array<string>();
  for (let i = 0; i + 1 < up.headers.length; i += 2) {
    if (up.headers[i] == "api-key") continue;
    h.push(up.headers[i]);
    h.push(up.headers[i + 1]);
  }
  h.push("authorization");
  h.push("Bearer " + (token as string));
  up.headers = h;
  return null;
}
