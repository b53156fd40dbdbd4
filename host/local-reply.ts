// The HTTP connection manager's local_reply_config (envoy.extensions.filters.network.
// http_connection_manager.v3.LocalReplyConfig), the subset Sluice renders: mappers whose filter is a
// status_code_filter, header_filter, response_flag_filter, metadata_filter (on the stream's dynamic
// metadata: jwt_authn's failure status, rbac's result), or and_filter / or_filter of those; a
// mapper may set status_code, body (inline_string) and body_format_override; the config may set
// body_format. Formats: json_format or text_format_source.inline_string, with the command operators
// %LOCAL_REPLY_BODY%, %RESPONSE_CODE%, %RESPONSE_CODE_DETAILS% and %RESPONSE_FLAGS%.
//
// Envoy applies it to every local reply, whether it goes through the filters or straight to the
// client (source/common/local_reply/local_reply.cc LocalReplyImpl::rewrite): the first mapper whose
// filter matches rewrites the code and body and may pick a body format; then the mapper's format,
// else the config's body_format, else the plain "%LOCAL_REPLY_BODY%" text formats the body. The
// filters see the request headers (a header_filter on ":path" tells the client's API apart).
import type { HeaderList } from "./headers.js";
import type { FilterMetadata } from "./proto.js";
import { NativeConfigError } from "./native/filter.js";
import { metadataValue, valueMatcher, type ValueMatch } from "./native/match.js";

export type StringMatch = { exact: string } | { prefix: string } | { suffix: string } | { contains: string };

export type ReplyFilter =
  | { kind: "status"; op: "EQ" | "GE" | "LE" | "NE"; value: number }
  | { kind: "header"; name: string; match: StringMatch | null; invert: boolean }
  | { kind: "flags"; flags: string[] }
  | { kind: "metadata"; namespace: string; path: string[]; value: ValueMatch | null; ifNotFound: boolean }
  | { kind: "and" | "or"; filters: ReplyFilter[] };

export type BodyFormat = { json: Record<string, unknown> } | { text: string; contentType: string };

export interface ResponseMapper {
  filter: ReplyFilter;
  statusCode: number | null;
  body: string | null;
  format: BodyFormat | null;
}

export interface LocalReplyConfig {
  mappers: ResponseMapper[];
  bodyFormat: BodyFormat | null;
}

export class LocalReplyConfigError extends Error {}

const OPERATORS = ["LOCAL_REPLY_BODY", "RESPONSE_CODE", "RESPONSE_CODE_DETAILS", "RESPONSE_FLAGS"];

function fail(at: string, msg: string): never {
  throw new LocalReplyConfigError(`${at}: ${msg}`);
}

function checkOperators(text: string, at: string): void {
  for (const m of text.matchAll(/%([A-Z_]+)(\([^)]*\))?%/g)) {
    if (!OPERATORS.includes(m[1]) || m[2]) fail(at, `the local gateway supports ${OPERATORS.map((o) => `%${o}%`).join(", ")} in local reply formats, not %${m[1]}${m[2] ?? ""}%`);
  }
}

function checkJson(v: unknown, at: string): void {
  if (typeof v === "string") checkOperators(v, at);
  else if (v !== null && typeof v === "object") for (const [k, x] of Object.entries(v)) checkJson(x, `${at}.${k}`);
}

function parseFormat(v: any, at: string): BodyFormat {
  if (v?.json_format !== undefined) {
    if (v.json_format === null || typeof v.json_format !== "object" || Array.isArray(v.json_format)) fail(at, "json_format must be a mapping");
    checkJson(v.json_format, `${at}.json_format`);
    return { json: v.json_format };
  }
  const text = v?.text_format_source?.inline_string ?? v?.text_format;
  if (typeof text !== "string") fail(at, "the local gateway supports json_format and text_format_source.inline_string");
  checkOperators(text, at);
  return { text, contentType: typeof v.content_type === "string" ? v.content_type : "text/plain" };
}

function parseFilter(v: any, at: string): ReplyFilter {
  if (v === null || typeof v !== "object") fail(at, "expected an access log filter");
  const keys = Object.keys(v);
  if (keys.length !== 1) fail(at, "give exactly one filter kind");
  const k = keys[0];
  const f = v[k];
  switch (k) {
    case "status_code_filter": {
      const op = f?.comparison?.op ?? "EQ";
      const value = Number(f?.comparison?.value?.default_value);
      if (!["EQ", "GE", "LE", "NE"].includes(op) || !Number.isInteger(value)) fail(at, "status_code_filter needs comparison.op and comparison.value.default_value");
      return { kind: "status", op, value };
    }
    case "header_filter": {
      const h = f?.header;
      if (typeof h?.name !== "string") fail(at, "header_filter.header needs a name");
      const sm = h.string_match;
      let match: StringMatch | null = null;
      if (sm !== undefined) {
        const kinds = ["exact", "prefix", "suffix", "contains"].filter((x) => typeof sm[x] === "string");
        if (kinds.length !== 1 || Object.keys(sm).length !== 1) fail(at, "header_filter string_match: the local gateway supports exact, prefix, suffix or contains");
        match = { [kinds[0]]: sm[kinds[0]] } as StringMatch;
      } else if (h.present_match !== true) fail(at, "header_filter: give string_match or present_match: true");
      return { kind: "header", name: h.name.toLowerCase(), match, invert: h.invert_match === true };
    }
    case "response_flag_filter":
      return { kind: "flags", flags: (f?.flags ?? []).map(String) };
    case "metadata_filter": {
      // access_log_impl.cc MetadataFilter: the matcher's namespace and path in the dynamic metadata; a
      // value there matches when the matcher's value matcher does (none: no match); no value there
      // matches when match_if_key_not_found (default true).
      for (const key of Object.keys(f ?? {})) if (key !== "matcher" && key !== "match_if_key_not_found") fail(at, `metadata_filter: the local gateway does not run ${key}`);
      const m = f?.matcher;
      if (m === null || typeof m !== "object") fail(at, "metadata_filter: give a matcher");
      for (const key of Object.keys(m)) if (!["filter", "path", "value"].includes(key)) fail(at, `metadata_filter.matcher: the local gateway does not run ${key}`);
      if (typeof m.filter !== "string" || !m.filter) fail(at, "metadata_filter.matcher needs a filter (the metadata namespace)");
      if (!Array.isArray(m.path) || !m.path.length || m.path.some((p: any) => typeof p?.key !== "string" || Object.keys(p).length !== 1)) fail(at, "metadata_filter.matcher.path: give a list of {key}");
      let value: ValueMatch | null = null;
      try {
        if (m.value !== undefined) value = valueMatcher(m.value, `${at}.metadata_filter.matcher.value`);
      } catch (e) {
        if (e instanceof NativeConfigError) fail(at, e.message);
        throw e;
      }
      const nf = f.match_if_key_not_found;
      if (nf !== undefined && typeof nf !== "boolean") fail(at, "metadata_filter.match_if_key_not_found: expected true or false");
      return { kind: "metadata", namespace: m.filter, path: m.path.map((p: any) => p.key), value, ifNotFound: nf ?? true };
    }
    case "and_filter":
    case "or_filter": {
      const list = f?.filters;
      if (!Array.isArray(list) || list.length < 2) fail(at, `${k} needs at least two filters`);
      return { kind: k === "and_filter" ? "and" : "or", filters: list.map((x: unknown, i: number) => parseFilter(x, `${at}.${k}.filters[${i}]`)) };
    }
    default:
      return fail(at, `the local gateway does not run the ${k} local reply filter`);
  }
}

/** envoy.yaml's local_reply_config (already read as YAML) for the local gateway. */
export function parseLocalReplyConfig(v: any, at = "local_reply_config"): LocalReplyConfig {
  if (v === null || typeof v !== "object") fail(at, "expected a mapping");
  for (const k of Object.keys(v)) if (k !== "mappers" && k !== "body_format") fail(at, `the local gateway does not run ${k}`);
  const mappers = (v.mappers ?? []).map((m: any, i: number): ResponseMapper => {
    const mat = `${at}.mappers[${i}]`;
    for (const k of Object.keys(m ?? {})) if (!["filter", "status_code", "body", "body_format_override"].includes(k)) fail(mat, `the local gateway does not run ${k}`);
    if (m.body !== undefined && typeof m.body?.inline_string !== "string") fail(mat, "body: the local gateway supports inline_string");
    return {
      filter: parseFilter(m.filter, `${mat}.filter`),
      statusCode: m.status_code === undefined ? null : Number(m.status_code),
      body: m.body === undefined ? null : m.body.inline_string,
      format: m.body_format_override === undefined ? null : parseFormat(m.body_format_override, `${mat}.body_format_override`),
    };
  });
  return { mappers, bodyFormat: v.body_format === undefined ? null : parseFormat(v.body_format, `${at}.body_format`) };
}

export interface LocalReplyInput {
  requestHeaders: HeaderList;
  statusCode: number;
  body: Buffer;
  details: string;
  responseFlags: string[];
  /** The stream's dynamic metadata (metadata_filter); absent: none. */
  dynamicMetadata?: FilterMetadata;
}

export interface LocalReplyOutput {
  statusCode: number;
  body: Buffer;
  contentType: string;
  /** A mapper or a body format changed the body (its content type replaces the filter's). */
  rewritten: boolean;
}

function matchString(value: string, m: StringMatch): boolean {
  if ("exact" in m) return value === m.exact;
  if ("prefix" in m) return value.startsWith(m.prefix);
  if ("suffix" in m) return value.endsWith(m.suffix);
  return value.includes(m.contains);
}

function matches(f: ReplyFilter, code: number, input: LocalReplyInput): boolean {
  switch (f.kind) {
    case "status":
      // StatusCodeFilter compares the response code the rewrite has set so far.
      return f.op === "EQ" ? code === f.value : f.op === "GE" ? code >= f.value : f.op === "LE" ? code <= f.value : code !== f.value;
    case "header": {
      // HeaderFilter: HeaderUtility::matchHeaders on the request headers (all values of the name).
      const values = input.requestHeaders.filter(([k]) => k === f.name).map(([, v]) => v);
      const hit = values.length > 0 && (f.match === null || values.some((v) => matchString(v, f.match!)));
      return hit !== f.invert;
    }
    case "flags":
      // ResponseFlagFilter: any of the listed flags (or, with none listed, any flag at all).
      return f.flags.length === 0 ? input.responseFlags.length > 0 : f.flags.some((x) => input.responseFlags.includes(x));
    case "metadata": {
      const v = metadataValue(input.dynamicMetadata ?? {}, f.namespace, f.path);
      return v === undefined ? f.ifNotFound : f.value !== null && f.value(v);
    }
    case "and":
      return f.filters.every((x) => matches(x, code, input));
    case "or":
      return f.filters.some((x) => matches(x, code, input));
  }
}

function substitute(text: string, v: { body: string; code: number; details: string; flags: string }): string {
  return text.replace(/%([A-Z_]+)%/g, (all, op: string) => {
    if (op === "LOCAL_REPLY_BODY") return v.body;
    if (op === "RESPONSE_CODE") return String(v.code);
    if (op === "RESPONSE_CODE_DETAILS") return v.details;
    if (op === "RESPONSE_FLAGS") return v.flags || "-";
    return all;
  });
}

/** The json formatter: string values are formatted; one that is exactly %RESPONSE_CODE% stays a number. */
function formatJson(v: unknown, vars: Parameters<typeof substitute>[1]): unknown {
  if (typeof v === "string") return v === "%RESPONSE_CODE%" ? vars.code : substitute(v, vars);
  if (Array.isArray(v)) return v.map((x) => formatJson(x, vars));
  if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, formatJson(x, vars)]));
  return v;
}

/** LocalReplyImpl::rewrite with ResponseMapper::matchAndRewrite and BodyFormatter::format. */
export function rewriteLocalReply(cfg: LocalReplyConfig | null, input: LocalReplyInput): LocalReplyOutput {
  if (!cfg) return { statusCode: input.statusCode, body: input.body, contentType: "text/plain", rewritten: false };
  let code = input.statusCode;
  let body = input.body.toString("utf8");
  let format: BodyFormat | null = null;
  let mapped = false;
  for (const m of cfg.mappers) {
    if (!matches(m.filter, code, input)) continue;
    mapped = true;
    if (m.body !== null) body = m.body;
    if (m.statusCode !== null) code = m.statusCode;
    format = m.format;
    break;
  }
  format ??= cfg.bodyFormat;
  const vars = { body, code, details: input.details, flags: input.responseFlags.join(",") };
  if (format === null) {
    // The default format is the plain text "%LOCAL_REPLY_BODY%".
    return { statusCode: code, body: mapped ? Buffer.from(body) : input.body, contentType: "text/plain", rewritten: mapped };
  }
  if ("json" in format) {
    return { statusCode: code, body: Buffer.from(JSON.stringify(formatJson(format.json, vars))), contentType: "application/json", rewritten: true };
  }
  return { statusCode: code, body: Buffer.from(substitute(format.text, vars)), contentType: format.contentType, rewritten: true };
}
