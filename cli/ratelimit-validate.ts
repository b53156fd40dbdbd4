// The rendered envoyproxy/ratelimit configuration (envoy/ratelimit/config.yaml), checked as the
// service loads it (envoyproxy/ratelimit src/config/config_impl.go: validateYamlKeys,
// loadDescriptors), and against the descriptors envoy.yaml's routes send: a rule whose descriptor the
// service has no entry for is not limited at all, silently, so a mismatch is a renderer bug.

/** envoyproxy/ratelimit's units (RateLimitResponse.RateLimit.Unit), matched case-insensitively. */
export const SERVICE_UNITS = ["second", "minute", "hour", "day", "week", "month", "year"] as const;
/** requests_per_unit is a uint32 (config_impl.go YamlRateLimit). */
const MAX_REQUESTS_PER_UNIT = 4294967295;

const ROOT_KEYS = new Set(["domain", "descriptors"]);
const DESCRIPTOR_KEYS = new Set(["key", "value", "rate_limit", "descriptors", "shadow_mode", "quota_mode", "detailed_metric", "value_to_metric", "share_threshold", "metadata"]);
const LIMIT_KEYS = new Set(["unit", "requests_per_unit", "unlimited", "name", "replaces"]);

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** The configuration's problems, each prefixed with the path of the value ("descriptors[0].rate_limit.unit: ..."). */
export function validateRateLimitServiceConfig(doc: unknown): string[] {
  const errors: string[] = [];
  const bad = (path: string, why: string) => errors.push(`${path || "(root)"}: ${why}`);
  const only = (o: Obj, allowed: Set<string>, path: string) => {
    for (const k of Object.keys(o)) if (!allowed.has(k)) bad(path ? `${path}.${k}` : k, `unknown key '${k}'`);
  };
  if (!isObj(doc)) {
    bad("", "must be a map with domain and descriptors");
    return errors;
  }
  only(doc, ROOT_KEYS, "");
  if (typeof doc.domain !== "string" || doc.domain === "") bad("domain", "must be a non-empty string");
  const level = (list: unknown, path: string) => {
    if (list === undefined) return;
    if (!Array.isArray(list)) return bad(path, "must be a list of descriptors");
    const seen = new Set<string>();
    list.forEach((d, i) => {
      const at = `${path}[${i}]`;
      if (!isObj(d)) return bad(at, "must be a map");
      only(d, DESCRIPTOR_KEYS, at);
      if (typeof d.key !== "string" || d.key === "") bad(`${at}.key`, "must be a non-empty string");
      if (d.value !== undefined && typeof d.value !== "string") bad(`${at}.value`, "must be a string");
      // The service keys a level by key, or key_value when a value is given: two alike are refused.
      const composite = d.value ? `${d.key}_${d.value}` : String(d.key);
      if (seen.has(composite)) bad(at, `duplicate descriptor composite key '${composite}'`);
      seen.add(composite);
      if (d.rate_limit !== undefined) limit(d.rate_limit, `${at}.rate_limit`);
      level(d.descriptors, `${at}.descriptors`);
    });
  };
  const limit = (l: unknown, at: string) => {
    if (!isObj(l)) return bad(at, "must be a map");
    only(l, LIMIT_KEYS, at);
    if (l.unlimited === true) {
      if (l.unit !== undefined) bad(`${at}.unit`, "must not be given when unlimited");
      return;
    }
    if (typeof l.unit !== "string" || !(SERVICE_UNITS as readonly string[]).includes(l.unit.toLowerCase())) {
      bad(`${at}.unit`, `must be one of ${SERVICE_UNITS.join(", ")} (got ${JSON.stringify(l.unit)})`);
    }
    const n = l.requests_per_unit;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > MAX_REQUESTS_PER_UNIT) {
      bad(`${at}.requests_per_unit`, `must be a whole number from 0 to ${MAX_REQUESTS_PER_UNIT} (got ${JSON.stringify(n)})`);
    }
  };
  level(doc.descriptors, "descriptors");
  return errors;
}

/** One descriptor entry as Envoy sends it: its key, and its value when the configuration fixes it. */
interface Entry {
  key: string;
  value?: string;
}

/**
 * The entries a route's RateLimit actions produce, with the values render fixes: generic_key's
 * value, and "true" for the `when` entry (a request whose conditions do not hold sends "false",
 * which the service has no limit for). Key parts carry the request's value: matched by key alone.
 */
function entriesOf(actions: unknown[]): Entry[] | string {
  const out: Entry[] = [];
  for (const a of actions) {
    if (!isObj(a)) return "an action is not a map";
    if (isObj(a.generic_key)) out.push({ key: String(a.generic_key.descriptor_key ?? "generic_key"), value: String(a.generic_key.descriptor_value) });
    else if (isObj(a.request_headers)) out.push({ key: String(a.request_headers.descriptor_key) });
    else if (isObj(a.extension) && isObj(a.extension.typed_config)) {
      const key = String(a.extension.typed_config.descriptor_key);
      out.push(key === "when" ? { key, value: "true" } : { key });
    } else return `an action render does not make (${Object.keys(a).join(", ")})`;
  }
  return out;
}

/**
 * Each RateLimitPerRoute entry of a rendered envoy.yaml against the service configuration: the
 * service walks the descriptor entry by entry, taking `key_value` at a level if it has one, else
 * `key` (config_impl.go GetLimit); the entry that ends the walk must carry a rate_limit.
 */
export function checkRouteDescriptors(rateLimits: unknown[], service: unknown, where: string): string[] {
  const errors: string[] = [];
  const top = isObj(service) && Array.isArray(service.descriptors) ? (service.descriptors as Obj[]) : [];
  rateLimits.forEach((r, i) => {
    const at = `${where}.rate_limits[${i}]`;
    const entries = isObj(r) && Array.isArray(r.actions) ? entriesOf(r.actions) : "has no actions";
    if (typeof entries === "string") return errors.push(`${at}: ${entries}`);
    let level: Obj[] = top;
    let node: Obj | undefined;
    for (const e of entries) {
      node = (e.value !== undefined ? level.find((d) => d.key === e.key && d.value === e.value) : undefined) ?? level.find((d) => d.key === e.key && d.value === undefined);
      if (!node) {
        errors.push(`${at}: the rate limit service has no descriptor for ${entries.map((x) => (x.value !== undefined ? `(${x.key}, ${x.value})` : `(${x.key})`)).join(" -> ")} (stops at ${e.key})`);
        return;
      }
      level = Array.isArray(node.descriptors) ? (node.descriptors as Obj[]) : [];
    }
    if (!node || !isObj(node.rate_limit)) errors.push(`${at}: the rate limit service's descriptor ends without a rate_limit`);
  });
  return errors;
}
