// Reading a filter's JSON configuration with errors an operator can act on. Envoy rejects the
// configuration when proxy_on_configure returns false; the log line says why.
import { JsonValue, JsonKind, parseJson, jsonError } from "./json";
import { logError } from "./sdk";
import { getEnv } from "./env";

/** Collects the first configuration error with the path of the field at fault. */
export class ConfigReader {
  error: string = "";
  filter: string;

  constructor(filter: string) {
    this.filter = filter;
  }

  get ok(): bool {
    return this.error.length == 0;
  }

  fail(path: string, message: string): void {
    if (this.error.length == 0) this.error = path + ": " + message;
  }

  /** Parses the configuration; null (with error set) unless it is a JSON object. */
  parse(buf: ArrayBuffer): JsonValue | null {
    if (buf.byteLength == 0) {
      this.fail("configuration", "is empty; expected a JSON object");
      return null;
    }
    const v = parseJson(buf);
    if (v === null) {
      this.fail("configuration", "is not valid JSON (" + jsonError + ")");
      return null;
    }
    if (!v.isObject()) {
      this.fail("configuration", "must be a JSON object");
      return null;
    }
    return v;
  }

  /** Fails on any member not in `known`: a typo must not silently change behaviour. */
  onlyKnown(obj: JsonValue, path: string, known: Array<string>): void {
    const keys = obj.keys;
    if (keys === null) return;
    for (let i = 0; i < keys.length; i++) {
      if (!known.includes(keys[i])) this.fail(path + "." + keys[i], "unknown field (expected one of: " + known.join(", ") + ")");
    }
  }

  str(obj: JsonValue, key: string, path: string, def: string): string {
    const v = obj.get(key);
    if (v === null) return def;
    if (!v.isString()) {
      this.fail(path + "." + key, "must be a string");
      return def;
    }
    return v.s;
  }

  bool(obj: JsonValue, key: string, path: string, def: bool): bool {
    const v = obj.get(key);
    if (v === null) return def;
    if (!v.isBool()) {
      this.fail(path + "." + key, "must be true or false");
      return def;
    }
    return v.b;
  }

  /** An integer within [min, max]. */
  int(obj: JsonValue, key: string, path: string, def: i64, min: i64, max: i64): i64 {
    const v = obj.get(key);
    if (v === null) return def;
    if (!v.isInteger() || v.n < <f64>min || v.n > <f64>max) {
      this.fail(path + "." + key, "must be a whole number from " + min.toString() + " to " + max.toString());
      return def;
    }
    return <i64>v.n;
  }

  array(obj: JsonValue, key: string, path: string, required: bool): Array<JsonValue> {
    const v = obj.get(key);
    if (v === null) {
      if (required) this.fail(path + "." + key, "is required");
      return [];
    }
    if (v.kind != JsonKind.Array) {
      this.fail(path + "." + key, "must be a list");
      return [];
    }
    return v.items as Array<JsonValue>;
  }

  /**
   * An object whose members are all strings, as flat [name, value, ...]; empty when absent.
   * `what` ends "must map ..." when it is not an object.
   */
  stringMap(obj: JsonValue, key: string, path: string, what: string): Array<string> {
    const out = new Array<string>();
    const v = obj.get(key);
    if (v === null) return out;
    if (!v.isObject()) {
      this.fail(path + "." + key, "must map " + what);
      return out;
    }
    for (let i = 0, n = v.length; i < n; i++) {
      const name = v.keyAt(i);
      const value = v.at(i);
      if (!value.isString()) {
        this.fail(path + "." + key + "." + name, "must be a string");
        continue;
      }
      out.push(name);
      out.push(value.s);
    }
    return out;
  }

  /** Logs the error (if any) the way Envoy shows a rejected plugin configuration. */
  report(): bool {
    if (this.ok) return true;
    logError(this.filter + ": invalid configuration: " + this.error);
    return false;
  }
}

/** An HTTP header name (RFC 9110 token), lower case, as Envoy's maps hold names; at most 128 characters. */
export function isHeaderName(name: string): bool {
  if (name.length == 0 || name.length > 128) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    const ok = (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a) || c == 0x2d || c == 0x5f || c == 0x2e || c == 0x21 ||
      c == 0x23 || c == 0x24 || c == 0x25 || c == 0x26 || c == 0x27 || c == 0x2a || c == 0x2b || c == 0x5e || c == 0x60 || c == 0x7c || c == 0x7e;
    if (!ok) return false;
  }
  return true;
}

/** A credential header a filter sends upstream: its name and its whole value (prefix + secret). */
export class Credential {
  header: string = "";
  value: string = "";
}

/**
 * `{header, value_env, prefix}` at `at`: the header (default authorization) and the value read from
 * the VM's environment, which must be set (a service asked without its credential would only refuse).
 */
export function readCredential(r: ConfigReader, v: JsonValue, at: string): Credential {
  const c = new Credential();
  r.onlyKnown(v, at, ["header", "value_env", "prefix"]);
  c.header = r.str(v, "header", at, "authorization").toLowerCase();
  if (!isHeaderName(c.header)) r.fail(at + ".header", "must be an HTTP header name");
  const env = r.str(v, "value_env", at, "");
  const value = env.length ? getEnv(env) : null;
  if (value === null || (value as string).length == 0) r.fail(at + ".value_env", "the variable " + env + " is not set in the VM's environment");
  else c.value = r.str(v, "prefix", at, "") + (value as string);
  return c;
}

/**
 * A name gateway.yaml gives a service the gateway fronts (an MCP server, an A2A agent): 1 to 31 of
 * a-z, 0-9 and "-" (not first). It goes into cluster names, paths, tool prefixes and metric labels,
 * and has no "_", so "__" splits a prefixed tool name one way only.
 */
export function isServiceName(s: string): bool {
  if (s.length == 0 || s.length > 31) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 97 && c <= 122) || (c >= 48 && c <= 57) || (c == 45 && i > 0))) return false;
  }
  return true;
}
