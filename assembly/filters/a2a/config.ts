// The a2a filter's settings, read once at configure from the JSON the renderer writes
// (cli/a2a-config.ts, docs/a2a.md). Agents' credentials come from the VM's environment.
import { ConfigReader, isHeaderName, readCredential, isServiceName } from "../../lib/config";
import { JsonValue } from "../../lib/json";

export const MAX_AGENTS: i32 = 64;
export const AUTH_BEARER: i32 = 0;
export const AUTH_API_KEY: i32 = 1;

export class Agent {
  name: string = "";
  cluster: string = "";
  authority: string = "";
  path: string = "/";
  cardPath: string = "/.well-known/agent-card.json";
  authHeader: string = "";
  /** The credential header's value (prefix + the variable's value), or null for none. */
  authValue: string | null = null;
}

export class Settings {
  pathPrefix: string = "/a2a";
  /** The gateway's URL as clients reach it ("" : from each request's scheme and authority). */
  publicUrl: string = "";
  clusterHeader: string = "x-sluice-cluster";
  maxBodyBytes: i64 = 1048576;
  maxCardBytes: i64 = 262144;
  cardTtlMs: i64 = 300000;
  timeoutMs: u32 = 15000;
  /** How a client shows the gateway its key: a bearer token, or an API key header (authHeader). */
  authType: i32 = AUTH_BEARER;
  authHeader: string = "authorization";
  agents: Array<Agent> = [];

  agent(name: string): Agent | null {
    for (let i = 0; i < this.agents.length; i++) if (this.agents[i].name == name) return this.agents[i];
    return null;
  }
}

function readAgent(r: ConfigReader, v: JsonValue, at: string): Agent {
  const a = new Agent();
  if (!v.isObject()) {
    r.fail(at, "must be an object");
    return a;
  }
  r.onlyKnown(v, at, ["name", "cluster", "authority", "path", "card_path", "auth"]);
  a.name = r.str(v, "name", at, "");
  if (!isServiceName(a.name)) r.fail(at + ".name", "must be 1 to 31 of a-z, 0-9 and - (not first)");
  a.cluster = r.str(v, "cluster", at, "");
  if (a.cluster.length == 0) r.fail(at + ".cluster", "is required");
  a.authority = r.str(v, "authority", at, "");
  if (a.authority.length == 0) r.fail(at + ".authority", "is required");
  a.path = r.str(v, "path", at, "/");
  a.cardPath = r.str(v, "card_path", at, "/.well-known/agent-card.json");
  if (!a.path.startsWith("/")) r.fail(at + ".path", "must start with /");
  if (!a.cardPath.startsWith("/")) r.fail(at + ".card_path", "must start with /");
  const auth = v.get("auth");
  if (auth !== null && auth.isObject()) {
    const c = readCredential(r, auth, at + ".auth");
    a.authHeader = c.header;
    a.authValue = c.value;
  }
  return a;
}

export function readSettings(buf: ArrayBuffer): Settings | null {
  const r = new ConfigReader("a2a");
  const cfg = r.parse(buf);
  if (cfg === null) {
    r.report();
    return null;
  }
  r.onlyKnown(cfg, "a2a", ["path_prefix", "public_url", "cluster_header", "max_body_bytes", "max_card_bytes", "card_ttl_ms", "timeout_ms", "auth_scheme", "agents"]);
  const s = new Settings();
  s.pathPrefix = r.str(cfg, "path_prefix", "a2a", "/a2a");
  if (!s.pathPrefix.startsWith("/") || s.pathPrefix.endsWith("/") || s.pathPrefix.indexOf("?") >= 0) r.fail("a2a.path_prefix", "must be a path starting with / and not ending with /");
  s.publicUrl = r.str(cfg, "public_url", "a2a", "");
  if (s.publicUrl.endsWith("/")) s.publicUrl = s.publicUrl.substring(0, s.publicUrl.length - 1);
  if (s.publicUrl.length && !s.publicUrl.startsWith("https://") && !s.publicUrl.startsWith("http://")) r.fail("a2a.public_url", "must be an http(s) URL");
  s.clusterHeader = r.str(cfg, "cluster_header", "a2a", "x-sluice-cluster").toLowerCase();
  s.maxBodyBytes = r.int(cfg, "max_body_bytes", "a2a", 1048576, 1024, 67108864);
  s.maxCardBytes = r.int(cfg, "max_card_bytes", "a2a", 262144, 1024, 4194304);
  s.cardTtlMs = r.int(cfg, "card_ttl_ms", "a2a", 300000, 0, 86400000);
  s.timeoutMs = <u32>r.int(cfg, "timeout_ms", "a2a", 15000, 1, 600000);
  const scheme = cfg.get("auth_scheme");
  if (scheme !== null && scheme.isObject()) {
    r.onlyKnown(scheme, "a2a.auth_scheme", ["type", "header"]);
    const t = r.str(scheme, "type", "a2a.auth_scheme", "bearer");
    if (t == "api_key") s.authType = AUTH_API_KEY;
    else if (t != "bearer") r.fail("a2a.auth_scheme.type", "must be bearer or api_key");
    s.authHeader = r.str(scheme, "header", "a2a.auth_scheme", s.authType == AUTH_API_KEY ? "x-api-key" : "authorization").toLowerCase();
    if (!isHeaderName(s.authHeader)) r.fail("a2a.auth_scheme.header", "must be an HTTP header name");
  }
  const agents = r.array(cfg, "agents", "a2a", true);
  if (r.ok && (agents.length == 0 || agents.length > MAX_AGENTS)) r.fail("a2a.agents", "must list 1 to " + MAX_AGENTS.toString() + " agents");
  for (let i = 0; i < agents.length && r.ok; i++) {
    const a = readAgent(r, agents[i], "a2a.agents[" + i.toString() + "]");
    if (s.agent(a.name) !== null) r.fail("a2a.agents[" + i.toString() + "].name", "'" + a.name + "' is named twice");
    s.agents.push(a);
  }
  if (!r.report()) return null;
  return s;
}
