// Instances whose provider takes a short-lived Bearer token instead of a key: Azure OpenAI with
// Microsoft Entra ID (client-credentials grant at the tenant's token endpoint) and Google Vertex AI
// (the GCE metadata server's token for the workload's service account). lib/oauth-token.ts keeps the
// token: one fetch for every worker, in shared data, refreshed on the root's tick before it expires,
// failures backed off. A request finds the current token or, when there is none (the endpoint is
// down, the client is refused, none was fetched yet), a 503 in the client's shape saying why; the
// secret and the token never reach a log, a metric or a client.
import { ConfigReader } from "../../lib/config";
import { JsonValue } from "../../lib/json";
import { getEnv } from "../../lib/env";
import { RootContext } from "../../lib/sdk";
import { TokenSource } from "../../lib/oauth-token";
import { ClientError, Upstream } from "../../providers/types";

/** Where an instance's token comes from: the client-credentials grant, or the metadata server. */
export const SOURCE_CLIENT_CREDENTIALS: i32 = 0;
export const SOURCE_METADATA: i32 = 1;

/** An instance's `token` settings. */
export class TokenConfig {
  source: i32 = SOURCE_CLIENT_CREDENTIALS;
  cluster: string = "";
  authority: string = "";
  path: string = "";
  clientId: string = "";
  clientSecret: string = "";
  scope: string = "";
  timeoutMs: u32 = 10000;
}

export function readToken(r: ConfigReader, v: JsonValue, path: string): TokenConfig | null {
  if (!v.isObject()) {
    r.fail(path, "must be an object");
    return null;
  }
  r.onlyKnown(v, path, ["source", "cluster", "authority", "path", "client_id_env", "client_secret_env", "scope", "timeout_ms"]);
  const t = new TokenConfig();
  const source = r.str(v, "source", path, "client_credentials");
  if (source == "metadata") t.source = SOURCE_METADATA;
  else if (source != "client_credentials") r.fail(path + ".source", "must be client_credentials or metadata");
  t.cluster = r.str(v, "cluster", path, "");
  if (t.cluster.length == 0) r.fail(path + ".cluster", "is required (the Envoy cluster of the token endpoint)");
  t.authority = r.str(v, "authority", path, t.cluster);
  t.path = r.str(v, "path", path, "");
  if (!t.path.startsWith("/")) r.fail(path + ".path", "is required: the token endpoint's path");
  t.scope = r.str(v, "scope", path, "");
  t.timeoutMs = <u32>r.int(v, "timeout_ms", path, 10000, 100, 60000);
  if (t.source == SOURCE_CLIENT_CREDENTIALS) {
    const idEnv = r.str(v, "client_id_env", path, "AZURE_CLIENT_ID");
    const secretEnv = r.str(v, "client_secret_env", path, "AZURE_CLIENT_SECRET");
    const id = getEnv(idEnv);
    const secret = getEnv(secretEnv);
    if (id === null || (id as string).length == 0) r.fail(path + ".client_id_env", "environment variable " + idEnv + " is not set for the Wasm VM");
    else t.clientId = id as string;
    if (secret === null || (secret as string).length == 0) r.fail(path + ".client_secret_env", "environment variable " + secretEnv + " is not set for the Wasm VM");
    else t.clientSecret = secret as string;
  }
  return t;
}

/** The instance's token source (its name labels the token metrics). */
export function tokenSource(root: RootContext, instance: string, t: TokenConfig): TokenSource {
  const s = new TokenSource(root, "ai-proxy", instance, t.cluster, t.authority, t.path, t.clientId, t.clientSecret, t.scope, "", t.timeoutMs);
  s.metadata = t.source == SOURCE_METADATA;
  return s;
}

/**
 * Puts the current token on the request in place of the instance's key header; the 503 to answer
 * when there is none.
 */
export function authorize(source: TokenSource, instance: string, up: Upstream, nowMs: i64): ClientError | null {
  const token = source.current(nowMs);
  if (token === null) {
    return ClientError.of(503, "The gateway has no access token for instance '" + instance + "': " + source.why() + ".", "api_error", "upstream_credential_unavailable");
  }
  const h = new Array<string>();
  for (let i = 0; i + 1 < up.headers.length; i += 2) {
    const name = up.headers[i];
    if (name == "api-key" || name == "x-goog-api-key" || name == "authorization") continue;
    h.push(name);
    h.push(up.headers[i + 1]);
  }
  h.push("authorization");
  h.push("Bearer " + (token as string));
  up.headers = h;
  return null;
}
