// The mcp filter's settings, read once at configure from the JSON the renderer writes
// (cli/mcp-config.ts, docs/mcp.md). Secrets (the session key, servers' credentials) come from the
// VM's environment, never from the configuration.
import { JsonValue } from "../../lib/json";
import { ConfigReader, readCredential, isServiceName } from "../../lib/config";
import { getEnv } from "../../lib/env";
import { hmacSha256Of, HmacKey } from "../../lib/hmac";
import { Glob, compileGlobs } from "./access";
import { TokenSource } from "../../lib/oauth-token";

export const MAX_SERVERS: i32 = 32;
/** The session key's smallest length in bytes: 256 bits, the size of the MAC's own key. */
export const MIN_SESSION_KEY_BYTES: i32 = 32;

export class Server {
  name: string = "";
  index: i32 = 0;
  cluster: string = "";
  authority: string = "";
  path: string = "";
  /** The credential header and its value (prefix + the variable's value); empty name: none. */
  authHeader: string = "";
  authValue: string = "";
  /** OAuth client credentials: the token endpoint's cluster, authority and path, the client's id and secret. */
  oauth: bool = false;
  oauthCluster: string = "";
  oauthAuthority: string = "";
  oauthPath: string = "";
  clientId: string = "";
  clientSecret: string = "";
  scope: string = "";
  audience: string = "";
  /** The token source (index.ts makes it at configure, auth.ts reads it). */
  tokens: TokenSource | null = null;
}

export class Access {
  consumers: Array<string> = [];
  groups: Array<string> = [];
  allow: Array<Glob> = [];
  deny: Array<Glob> = [];
  maxArgumentBytes: i64 = 262144;
}

export class Settings {
  path: string = "/mcp";
  clusterHeader: string = "x-sluice-cluster";
  /** Keys derived from the session secret: one encrypts the payload, one authenticates it. */
  encKey: HmacKey = new HmacKey(new ArrayBuffer(0));
  macKey: HmacKey = new HmacKey(new ArrayBuffer(0));
  ttlMs: i64 = 86400000;
  maxBodyBytes: i64 = 1048576;
  maxResponseBytes: i64 = 4194304;
  timeoutMs: u32 = 15000;
  servers: Array<Server> = [];
  access: Array<Access> = [];
  defaultAccess: Access = new Access();

  server(name: string): Server | null {
    for (let i = 0; i < this.servers.length; i++) if (this.servers[i].name == name) return this.servers[i];
    return null;
  }
}

function stringList(r: ConfigReader, obj: JsonValue, key: string, at: string): Array<string> {
  const out = new Array<string>();
  const list = r.array(obj, key, at, false);
  for (let i = 0; i < list.length; i++) {
    if (!list[i].isString()) r.fail(at + "." + key + "[" + i.toString() + "]", "must be a string");
    else out.push(list[i].s);
  }
  return out;
}

function readAccess(r: ConfigReader, v: JsonValue | null, at: string, def: Access | null): Access {
  const a = new Access();
  if (def !== null) {
    a.allow = def.allow;
    a.deny = def.deny;
    a.maxArgumentBytes = def.maxArgumentBytes;
  } else a.allow = compileGlobs(["*"]);
  if (v === null) return a;
  if (!v.isObject()) {
    r.fail(at, "must be an object");
    return a;
  }
  r.onlyKnown(v, at, ["consumers", "groups", "allow", "deny", "max_argument_bytes"]);
  a.consumers = stringList(r, v, "consumers", at);
  a.groups = stringList(r, v, "groups", at);
  if (v.get("allow") !== null) a.allow = compileGlobs(stringList(r, v, "allow", at));
  if (v.get("deny") !== null) a.deny = compileGlobs(stringList(r, v, "deny", at));
  a.maxArgumentBytes = r.int(v, "max_argument_bytes", at, a.maxArgumentBytes, 0, 1073741824);
  return a;
}

function readServer(r: ConfigReader, v: JsonValue, at: string, index: i32): Server {
  const s = new Server();
  s.index = index;
  if (!v.isObject()) {
    r.fail(at, "must be an object");
    return s;
  }
  r.onlyKnown(v, at, ["name", "cluster", "authority", "path", "auth", "oauth"]);
  s.name = r.str(v, "name", at, "");
  if (!isServiceName(s.name)) r.fail(at + ".name", "must be 1 to 31 of a-z, 0-9 and - (not first)");
  s.cluster = r.str(v, "cluster", at, "");
  if (s.cluster.length == 0) r.fail(at + ".cluster", "is required");
  s.authority = r.str(v, "authority", at, "");
  if (s.authority.length == 0) r.fail(at + ".authority", "is required");
  s.path = r.str(v, "path", at, "/");
  if (!s.path.startsWith("/")) r.fail(at + ".path", "must start with /");
  const auth = v.get("auth");
  if (auth !== null && auth.isObject()) {
    const c = readCredential(r, auth, at + ".auth");
    s.authHeader = c.header;
    s.authValue = c.value;
  }
  const oauth = v.get("oauth");
  if (oauth !== null && oauth.isObject()) {
    const o = at + ".oauth";
    r.onlyKnown(oauth, o, ["cluster", "authority", "path", "client_id_env", "client_secret_env", "scope", "audience"]);
    if (s.authHeader.length) r.fail(o, "give auth or oauth, not both");
    s.oauth = true;
    s.authHeader = "authorization";
    s.oauthCluster = r.str(oauth, "cluster", o, "");
    s.oauthAuthority = r.str(oauth, "authority", o, "");
    s.oauthPath = r.str(oauth, "path", o, "");
    if (s.oauthCluster.length == 0 || s.oauthAuthority.length == 0 || !s.oauthPath.startsWith("/")) r.fail(o, "needs cluster, authority and a path starting with /");
    const idEnv = r.str(oauth, "client_id_env", o, "");
    const secretEnv = r.str(oauth, "client_secret_env", o, "");
    const id = idEnv.length ? getEnv(idEnv) : null;
    const secret = secretEnv.length ? getEnv(secretEnv) : null;
    if (id === null || (id as string).length == 0) r.fail(o + ".client_id_env", "the variable " + idEnv + " is not set in the VM's environment");
    else s.clientId = id as string;
    if (secret === null || (secret as string).length == 0) r.fail(o + ".client_secret_env", "the variable " + secretEnv + " is not set in the VM's environment");
    else s.clientSecret = secret as string;
    s.scope = r.str(oauth, "scope", o, "");
    s.audience = r.str(oauth, "audience", o, "");
  }
  return s;
}

export function readSettings(buf: ArrayBuffer): Settings | null {
  const r = new ConfigReader("mcp");
  const cfg = r.parse(buf);
  if (cfg === null) {
    r.report();
    return null;
  }
  r.onlyKnown(cfg, "mcp", ["path", "cluster_header", "session", "max_body_bytes", "max_response_bytes", "timeout_ms", "servers", "access", "default_access"]);
  const s = new Settings();
  s.path = r.str(cfg, "path", "mcp", "/mcp");
  if (!s.path.startsWith("/") || s.path.indexOf("?") >= 0) r.fail("mcp.path", "must be a path starting with /");
  s.clusterHeader = r.str(cfg, "cluster_header", "mcp", "x-sluice-cluster").toLowerCase();
  s.maxBodyBytes = r.int(cfg, "max_body_bytes", "mcp", 1048576, 1024, 67108864);
  s.maxResponseBytes = r.int(cfg, "max_response_bytes", "mcp", 4194304, 1024, 67108864);
  s.timeoutMs = <u32>r.int(cfg, "timeout_ms", "mcp", 15000, 1, 600000);
  const session = cfg.get("session");
  let keyEnv = "SLUICE_MCP_SESSION_KEY";
  if (session !== null && session.isObject()) {
    r.onlyKnown(session, "mcp.session", ["key_env", "ttl_ms"]);
    keyEnv = r.str(session, "key_env", "mcp.session", keyEnv);
    s.ttlMs = r.int(session, "ttl_ms", "mcp.session", 86400000, 60000, 31536000000);
  }
  const secret = getEnv(keyEnv);
  if (secret === null || String.UTF8.byteLength(secret as string) < MIN_SESSION_KEY_BYTES) {
    r.fail("mcp.session.key_env", "the variable " + keyEnv + " must hold a secret of at least " + MIN_SESSION_KEY_BYTES.toString() + " bytes");
  } else {
    const key = String.UTF8.encode(secret as string);
    s.encKey = new HmacKey(sluiceKey(key, "sluice-mcp-enc"));
    s.macKey = new HmacKey(sluiceKey(key, "sluice-mcp-mac"));
  }
  const servers = r.array(cfg, "servers", "mcp", true);
  if (r.ok && (servers.length == 0 || servers.length > MAX_SERVERS)) r.fail("mcp.servers", "must list 1 to " + MAX_SERVERS.toString() + " servers");
  for (let i = 0; i < servers.length && r.ok; i++) {
    const sv = readServer(r, servers[i], "mcp.servers[" + i.toString() + "]", i);
    if (s.server(sv.name) !== null) r.fail("mcp.servers[" + i.toString() + "].name", "'" + sv.name + "' is named twice");
    s.servers.push(sv);
  }
  s.defaultAccess = readAccess(r, cfg.get("default_access"), "mcp.default_access", null);
  const access = r.array(cfg, "access", "mcp", false);
  for (let i = 0; i < access.length && r.ok; i++) s.access.push(readAccess(r, access[i], "mcp.access[" + i.toString() + "]", s.defaultAccess));
  if (!r.report()) return null;
  return s;
}

function sluiceKey(secret: ArrayBuffer, purpose: string): ArrayBuffer {
  const d = hmacSha256Of(secret, purpose);
  const out = new ArrayBuffer(32);
  memory.copy(changetype<usize>(out), changetype<usize>(d), 32);
  return out;
}
