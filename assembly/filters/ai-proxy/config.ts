// ai-proxy configuration: provider instances and how requests reach them. See README, "ai-proxy".
import { ConfigReader } from "../../lib/config";
import { JsonValue, jsonString as jsonQuote } from "../../lib/json";
import { getEnv } from "../../lib/env";
import { Instance, Provider } from "../../providers/types";
import { providerFor, PROVIDER_NAMES } from "../../providers/index";

export const DEFAULT_MAX_BODY: i64 = 10 * 1024 * 1024;

export class Settings {
  instances: Array<Instance> = [];
  providers: Array<Provider> = []; // parallel to instances
  clusterHeader: string = "x-sluice-cluster";
  maxBodyBytes: i64 = DEFAULT_MAX_BODY;
  /** The /v1/models answer, prepared once. */
  modelsBody: ArrayBuffer = new ArrayBuffer(0);
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
  r.onlyKnown(v, path, ["name", "provider", "model", "model_map", "models", "api_key", "api_key_env", "endpoint", "cluster", "options", "max_tokens", "api_version", "deployment", "headers"]);
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
  const map = v.get("model_map");
  if (map !== null) {
    if (!map.isObject()) r.fail(path + ".model_map", "must map client model names to upstream model names");
    else {
      const keys = map.keys as Array<string>;
      const vals = map.vals as Array<JsonValue>;
      for (let i = 0; i < keys.length; i++) {
        if (!vals[i].isString()) r.fail(path + ".model_map." + keys[i], "must be a string");
        else inst.modelMap.set(keys[i], vals[i].s);
      }
    }
  }
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
  const headers = v.get("headers");
  if (headers !== null) {
    if (!headers.isObject()) r.fail(path + ".headers", "must map header names to values");
    else {
      const keys = headers.keys as Array<string>;
      const vals = headers.vals as Array<JsonValue>;
      for (let i = 0; i < keys.length; i++) {
        if (!vals[i].isString()) {
          r.fail(path + ".headers." + keys[i], "must be a string");
          continue;
        }
        inst.headers.push(keys[i].toLowerCase());
        inst.headers.push(vals[i].s);
      }
    }
  }
  s.instances.push(inst);
  s.providers.push(p);
}

export function readSettings(buf: ArrayBuffer): Settings | null {
  const r = new ConfigReader("ai-proxy");
  const cfg = r.parse(buf);
  if (cfg === null) {
    r.report();
    return null;
  }
  r.onlyKnown(cfg, "ai-proxy", ["instances", "cluster_header", "max_request_body_bytes"]);
  const s = new Settings();
  const list = r.array(cfg, "instances", "ai-proxy", true);
  if (r.ok && list.length == 0) r.fail("ai-proxy.instances", "must list at least one provider instance");
  for (let i = 0; i < list.length && r.ok; i++) readInstance(r, list[i], "ai-proxy.instances[" + i.toString() + "]", s);
  s.clusterHeader = r.str(cfg, "cluster_header", "ai-proxy", "x-sluice-cluster").toLowerCase();
  s.maxBodyBytes = r.int(cfg, "max_request_body_bytes", "ai-proxy", DEFAULT_MAX_BODY, 1, 1073741824);
  if (!r.report()) return null;
  s.modelsBody = modelsList(s);
  return s;
}

/** GET /v1/models: every model a client can ask for, from the instances' configuration. */
function modelsList(s: Settings): ArrayBuffer {
  const names = new Array<string>();
  const owners = new Array<string>();
  for (let i = 0; i < s.instances.length; i++) {
    const inst = s.instances[i];
    const add = (inst.models.slice(0) as Array<string>).concat(inst.modelMap.keys());
    if (inst.model.length) add.push(inst.model);
    for (let j = 0; j < add.length; j++) {
      const m = add[j];
      if (m.endsWith("*") || names.includes(m)) continue;
      names.push(m);
      owners.push(inst.provider);
    }
  }
  let out = '{"object":"list","data":[';
  for (let i = 0; i < names.length; i++) {
    if (i) out += ",";
    out += '{"id":' + jsonQuote(names[i]) + ',"object":"model","created":0,"owned_by":' + jsonQuote(owners[i]) + "}";
  }
  out += "]}";
  return String.UTF8.encode(out);
}
