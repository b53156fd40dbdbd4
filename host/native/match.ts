// The matchers Envoy's native filters share, read from their JSON: envoy.type.matcher.v3.StringMatcher
// (source/common/common/matchers.cc StringMatcherImpl::match), envoy.config.route.v3.HeaderMatcher
// (source/common/http/header_utility.cc HeaderUtility::matchHeaders: the values of a repeated header
// are joined with "," before matching; an absent header matches nothing but present_match: false),
// envoy.type.v3.FractionalPercent / RuntimeFractionalPercent (no runtime layer here: the default
// value decides, as in Envoy without an override), and envoy.type.v3.HttpStatus.
import type { HeaderList } from "../headers.js";
import type { FilterMetadata, Json } from "../proto.js";
import { fail, list, obj, only, uint } from "./filter.js";

export type StringMatch = (value: string) => boolean;

export function stringMatcher(v: unknown, at: string): StringMatch {
  const m = obj(v, at);
  only(m, at, ["exact", "prefix", "suffix", "contains", "safe_regex", "ignore_case"]);
  const kinds = ["exact", "prefix", "suffix", "contains", "safe_regex"].filter((k) => m[k] !== undefined);
  if (kinds.length !== 1) fail(at, "give exactly one of exact, prefix, suffix, contains, safe_regex");
  const ic = m.ignore_case === true;
  const norm = (s: string) => (ic ? s.toLowerCase() : s);
  const kind = kinds[0];
  if (kind === "safe_regex") {
    const r = obj(m.safe_regex, `${at}.safe_regex`);
    only(r, `${at}.safe_regex`, ["regex", "google_re2"]);
    if (ic) fail(`${at}.ignore_case`, "not allowed with safe_regex");
    let re: RegExp;
    try {
      // RE2 full match; JavaScript's syntax covers the common subset.
      re = new RegExp(`^(?:${String(r.regex)})$`, "u");
    } catch (e) {
      fail(`${at}.safe_regex.regex`, `invalid regex: ${(e as Error).message}`);
    }
    return (s) => re.test(s);
  }
  const want = String(m[kind]);
  if (kind !== "exact" && want === "") fail(`${at}.${kind}`, "must not be empty");
  const w = norm(want);
  if (kind === "exact") return (s) => norm(s) === w;
  if (kind === "prefix") return (s) => norm(s).startsWith(w);
  if (kind === "suffix") return (s) => norm(s).endsWith(w);
  return (s) => norm(s).includes(w);
}

export type HeaderMatch = (headers: HeaderList) => boolean;

export function headerMatcher(v: unknown, at: string): HeaderMatch {
  const m = obj(v, at);
  only(m, at, ["name", "exact_match", "prefix_match", "suffix_match", "contains_match", "safe_regex_match", "present_match", "string_match", "invert_match", "treat_missing_header_as_empty"]);
  if (typeof m.name !== "string" || !m.name) fail(`${at}.name`, "required");
  const name = m.name.toLowerCase();
  const invert = m.invert_match === true;
  const missingAsEmpty = m.treat_missing_header_as_empty === true;
  const kinds = ["exact_match", "prefix_match", "suffix_match", "contains_match", "safe_regex_match", "present_match", "string_match"].filter((k) => m[k] !== undefined);
  if (kinds.length > 1) fail(at, "give at most one match kind");
  const kind = kinds[0];
  const value = (h: HeaderList): string | null => {
    const all = getAll(h, name);
    return all.length ? all.join(",") : missingAsEmpty ? "" : null;
  };
  if (kind === undefined || kind === "present_match") {
    // No match kind: the header is present. present_match: false matches an absent header.
    const want = kind === undefined ? true : m.present_match === true;
    return (h) => (getAll(h, name).length > 0 === want) !== invert;
  }
  let sm: StringMatch;
  if (kind === "string_match") sm = stringMatcher(m.string_match, `${at}.string_match`);
  else if (kind === "safe_regex_match") sm = stringMatcher({ safe_regex: m.safe_regex_match }, `${at}.safe_regex_match`);
  else sm = stringMatcher({ [kind.replace("_match", "")]: m[kind] }, `${at}.${kind}`);
  return (h) => {
    const v = value(h);
    if (v === null) return false;
    return sm(v) !== invert;
  };
}

const DENOMINATORS: Record<string, number> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 };

/** A RuntimeFractionalPercent ({default_value, runtime_key}) or FractionalPercent as a chance in [0, 1]. */
export function fractionalPercent(v: unknown, at: string, runtime: boolean): number {
  let fp = obj(v, at);
  if (runtime) {
    only(fp, at, ["default_value", "runtime_key"]);
    fp = obj(fp.default_value ?? {}, `${at}.default_value`);
    at = `${at}.default_value`;
  }
  only(fp, at, ["numerator", "denominator"]);
  const den = DENOMINATORS[fp.denominator ?? "HUNDRED"];
  if (!den) fail(`${at}.denominator`, "expected HUNDRED, TEN_THOUSAND or MILLION");
  const num = fp.numerator === undefined ? 0 : uint(fp.numerator, `${at}.numerator`);
  // Envoy caps a numerator above the denominator at the denominator.
  return Math.min(num, den) / den;
}

/** Envoy's featureEnabled: a random draw against the fraction (0 and 1 are certain). */
export function draw(chance: number): boolean {
  return chance >= 1 || (chance > 0 && Math.random() < chance);
}

const HTTP_STATUS: Record<string, number> = {
  Continue: 100, OK: 200, Created: 201, Accepted: 202, NoContent: 204, MovedPermanently: 301, Found: 302,
  SeeOther: 303, NotModified: 304, TemporaryRedirect: 307, PermanentRedirect: 308, BadRequest: 400,
  Unauthorized: 401, PaymentRequired: 402, Forbidden: 403, NotFound: 404, MethodNotAllowed: 405,
  NotAcceptable: 406, ProxyAuthenticationRequired: 407, RequestTimeout: 408, Conflict: 409, Gone: 410,
  LengthRequired: 411, PreconditionFailed: 412, PayloadTooLarge: 413, URITooLong: 414, UnsupportedMediaType: 415,
  RangeNotSatisfiable: 416, ExpectationFailed: 417, MisdirectedRequest: 421, UnprocessableEntity: 422,
  Locked: 423, FailedDependency: 424, UpgradeRequired: 426, PreconditionRequired: 428, TooManyRequests: 429,
  RequestHeaderFieldsTooLarge: 431, InternalServerError: 500, NotImplemented: 501, BadGateway: 502,
  ServiceUnavailable: 503, GatewayTimeout: 504, HTTPVersionNotSupported: 505, VariantAlsoNegotiates: 506,
  InsufficientStorage: 507, LoopDetected: 508, NotExtended: 510, NetworkAuthenticationRequired: 511,
};

/** envoy.type.v3.HttpStatus {code}: the enum by name or number. */
export function httpStatus(v: unknown, at: string): number {
  const s = obj(v, at);
  only(s, at, ["code"]);
  const c = s.code;
  const n = typeof c === "number" ? c : HTTP_STATUS[String(c)];
  if (!Number.isInteger(n) || n < 100 || n > 599) fail(`${at}.code`, `unknown HTTP status ${JSON.stringify(c)}`);
  return n;
}

/** Header values a filter adds (HeaderValueOption): plain values only (a %...% formatter is refused). */
export function headerValueOptions(v: unknown, at: string): { name: string; value: string; append: boolean }[] {
  const out: { name: string; value: string; append: boolean }[] = [];
  const l = v === undefined ? [] : Array.isArray(v) ? v : fail(at, "expected a list");
  l.forEach((o: unknown, i: number) => {
    const hat = `${at}[${i}]`;
    const hv = obj(o, hat);
    only(hv, hat, ["header", "append_action", "append"]);
    const h = obj(hv.header, `${hat}.header`);
    only(h, `${hat}.header`, ["key", "value"]);
    if (typeof h.key !== "string" || !h.key) fail(`${hat}.header.key`, "required");
    const value = String(h.value ?? "");
    if (value.includes("%")) fail(`${hat}.header.value`, "the local gateway does not run header formatters (%...%)");
    const action = hv.append_action ?? (hv.append === false ? "OVERWRITE_IF_EXISTS_OR_ADD" : "APPEND_IF_EXISTS_OR_ADD");
    if (action !== "APPEND_IF_EXISTS_OR_ADD" && action !== "OVERWRITE_IF_EXISTS_OR_ADD") fail(`${hat}.append_action`, `the local gateway runs APPEND_IF_EXISTS_OR_ADD and OVERWRITE_IF_EXISTS_OR_ADD, not ${action}`);
    out.push({ name: h.key.toLowerCase(), value, append: action === "APPEND_IF_EXISTS_OR_ADD" });
  });
  return out;
}

export function applyHeaderValues(headers: HeaderList, values: { name: string; value: string; append: boolean }[]): void {
  for (const v of values) {
    if (!v.append) removeHeader(headers, v.name);
    headers.push([v.name, v.value]);
  }
}

export function removeHeader(headers: HeaderList, name: string): void {
  for (let i = headers.length - 1; i >= 0; i--) if (headers[i][0] === name) headers.splice(i, 1);
}

/** HeaderMap::setCopy: the first entry keeps its place with the new value, the others go. */
export function setHeader(headers: HeaderList, name: string, value: string): void {
  const i = headers.findIndex(([k]) => k === name);
  if (i < 0) {
    headers.push([name, value]);
    return;
  }
  headers[i] = [name, value];
  for (let j = headers.length - 1; j > i; j--) if (headers[j][0] === name) headers.splice(j, 1);
}

/** Every value of a header, in order (names are lower case in the host's lists). */
export function getAll(headers: HeaderList, name: string): string[] {
  const out: string[] = [];
  for (const [k, v] of headers) if (k === name) out.push(v);
  return out;
}

export type ValueMatch = (v: Json | undefined) => boolean;

/** envoy.type.matcher.v3.ValueMatcher (source/common/common/matchers.cc ValueMatcher::create). */
export function valueMatcher(v: unknown, at: string): ValueMatch {
  const m = obj(v, at);
  const keys = Object.keys(m);
  if (keys.length !== 1) fail(at, "give exactly one value match");
  const k = keys[0];
  switch (k) {
    case "null_match":
      return (x) => x === null;
    case "string_match": {
      const sm = stringMatcher(m.string_match, `${at}.string_match`);
      return (x) => typeof x === "string" && sm(x);
    }
    case "bool_match":
      return (x) => typeof x === "boolean" && x === (m.bool_match === true);
    case "present_match":
      // PresentMatcher: a value is there (present_match false never matches).
      return (x) => m.present_match === true && x !== undefined;
    case "double_match": {
      const d = obj(m.double_match, `${at}.double_match`);
      only(d, `${at}.double_match`, ["exact", "range"]);
      if (d.exact !== undefined) return (x) => typeof x === "number" && x === Number(d.exact);
      const r = obj(d.range, `${at}.double_match.range`);
      return (x) => typeof x === "number" && x >= Number(r.start ?? -Infinity) && x < Number(r.end ?? Infinity);
    }
    case "list_match": {
      const l = obj(m.list_match, `${at}.list_match`);
      only(l, `${at}.list_match`, ["one_of"]);
      const inner = valueMatcher(l.one_of, `${at}.list_match.one_of`);
      return (x) => Array.isArray(x) && x.some((e) => inner(e));
    }
    case "or_match": {
      const o = obj(m.or_match, `${at}.or_match`);
      only(o, `${at}.or_match`, ["value_matchers"]);
      const ms = list(o.value_matchers, `${at}.or_match.value_matchers`).map((x, i) => valueMatcher(x, `${at}.or_match.value_matchers[${i}]`));
      return (x) => ms.some((f) => f(x));
    }
    default:
      return fail(`${at}.${k}`, "unknown value match");
  }
}

/** Config::Metadata::metadataValue: the value at `path` under a namespace of the metadata, or undefined. */
export function metadataValue(md: FilterMetadata, namespace: string, path: string[]): Json | undefined {
  let x: Json | undefined = md[namespace];
  for (const key of path) x = x !== null && typeof x === "object" && !Array.isArray(x) ? x[key] : undefined;
  return x;
}
