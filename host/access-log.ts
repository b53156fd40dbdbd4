// Envoy's access log formatter for the command operators Sluice's envoy.yaml uses, as Envoy's docs
// (configuration/observability/access_log/usage) and SubstitutionFormatString define them:
//   %START_TIME% (default 2016-04-15T20:17:00.310Z, UTC; or a strftime-style format with %s, %f,
//   %3f/%6f/%9f), %REQ(X?Y):Z%, %RESP(X?Y):Z%, %RESPONSE_CODE%, %RESPONSE_CODE_DETAILS%, %DURATION%,
//   %PROTOCOL%, %BYTES_RECEIVED%, %BYTES_SENT%, %UPSTREAM_CLUSTER%, %RESPONSE_FLAGS%, %UPSTREAM_HOST%,
//   %UPSTREAM_TRANSPORT_FAILURE_REASON%, %FILTER_STATE(KEY:PLAIN):Z% (source/common/formatter/stream_info_formatter.cc).
// A value that is not there prints "-" in text formats and null in json_format (where numbers
// stay numbers when the operator is the whole value). An operator outside this list is refused when
// the format is compiled, as Envoy refuses the configuration.
import type { AccessLogFormat } from "./envoy-config.js";

export interface LogContext {
  startTimeNs: bigint;
  /** Request headers as the filters left them (Envoy logs the header map it forwarded). */
  requestHeaders: [string, string][];
  responseHeaders: [string, string][];
  /** 0 when no response was started (the client went away). */
  responseCode: number;
  responseCodeDetails: string | null;
  durationMs: number | null;
  protocol: string;
  bytesReceived: number;
  bytesSent: number;
  upstreamCluster: string | null;
  /** Envoy's short response flags (UF, UT, UC, ...), in the order they were set. */
  responseFlags: string[];
  /** The upstream host's address ("ip:port") the router picked, connected or not; null when none. */
  upstreamHost: string | null;
  /** Why the upstream connection failed ("delayed connect error: ..."); "" or null when it did not. */
  upstreamTransportFailureReason: string | null;
  filterState(key: string): string | undefined;
}

type Value = string | number | null;
type Op = (c: LogContext) => Value;

function truncate(v: Value, max: number | undefined): Value {
  return typeof v === "string" && max !== undefined ? v.slice(0, max) : v;
}

function header(list: [string, string][], names: string[]): string | null {
  for (const n of names) {
    const lower = n.toLowerCase();
    const hit = list.find(([k]) => k === lower);
    if (hit) return hit[1];
  }
  return null;
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** A START_TIME format compiled: literal text, and the strftime fields between it. */
type TimePart = string | { field: string };

/**
 * Compiles a START_TIME format once: the strftime subset %Y %m %d %H %M %S %z %Z %s %f %Nf %E3S %%,
 * read left to right; a % followed by anything else stays as it is written.
 */
function compileTime(fmt: string): TimePart[] {
  const parts: TimePart[] = [];
  let text = "";
  for (let i = 0; i < fmt.length; i++) {
    let field = "";
    if (fmt[i] === "%") {
      if (fmt.startsWith("E3S", i + 1)) field = "E3S";
      else if (/^[1-9]f$/.test(fmt.slice(i + 1, i + 3))) field = fmt.slice(i + 1, i + 3);
      else if (i + 1 < fmt.length && "YmdHMSzZsf%".includes(fmt[i + 1])) field = fmt[i + 1];
    }
    if (!field) {
      text += fmt[i];
      continue;
    }
    if (field === "%") text += "%";
    else {
      if (text) parts.push(text);
      text = "";
      parts.push({ field });
    }
    i += field.length;
  }
  if (text) parts.push(text);
  return parts;
}

// The calendar fields of the last second formatted: every request within a second shares them
// (a Date and six paddings per access-log line were a visible share of the gateway's CPU).
let fieldsSecond = -1n;
let fields: Record<string, string> = {};

function calendarFields(second: bigint): Record<string, string> {
  if (second !== fieldsSecond) {
    const d = new Date(Number(second) * 1000);
    fields = {
      Y: String(d.getUTCFullYear()), m: pad(d.getUTCMonth() + 1), d: pad(d.getUTCDate()),
      H: pad(d.getUTCHours()), M: pad(d.getUTCMinutes()), S: pad(d.getUTCSeconds()), s: String(second),
    };
    fieldsSecond = second;
  }
  return fields;
}

/** START_TIME with a compiled format. */
function formatTime(ns: bigint, parts: TimePart[]): string {
  const f = calendarFields(ns / 1_000_000_000n);
  let frac = "";
  let out = "";
  for (const p of parts) {
    if (typeof p === "string") {
      out += p;
      continue;
    }
    const k = p.field;
    if (k === "z") out += "+0000";
    else if (k === "Z") out += "UTC";
    else if (k in f) out += f[k];
    else {
      // The fraction of the second: %f (nine digits), %Nf (N of them), %E3S (seconds.milliseconds).
      if (!frac) frac = (ns % 1_000_000_000n).toString().padStart(9, "0");
      if (k === "E3S") out += `${f.S}.${frac.slice(0, 3)}`;
      else if (k === "f") out += frac;
      else out += frac.slice(0, Number(k[0]));
    }
  }
  return out;
}

const DEFAULT_START_TIME = "%Y-%m-%dT%H:%M:%E3SZ";

function compileOperator(name: string, arg: string | undefined, max: number | undefined): { op: Op } {
  const needArg = () => {
    if (arg === undefined) throw new Error(`access log: %${name}% needs an argument`);
    return arg;
  };
  const noArg = () => {
    if (arg !== undefined) throw new Error(`access log: %${name}% takes no argument`);
  };
  switch (name) {
    case "START_TIME": {
      const parts = compileTime(arg ?? DEFAULT_START_TIME);
      return { op: (c) => formatTime(c.startTimeNs, parts) };
    }
    case "REQ":
    case "REQUEST_HEADER":
    case "RESP":
    case "RESPONSE_HEADER": {
      const names = needArg().split("?");
      if (names.length > 2 || names.some((n) => !n)) throw new Error(`access log: bad header list in %${name}(${arg})%`);
      const req = name.startsWith("REQ");
      return { op: (c) => truncate(header(req ? c.requestHeaders : c.responseHeaders, names), max) };
    }
    case "RESPONSE_CODE":
      noArg();
      return { op: (c) => c.responseCode };
    case "RESPONSE_CODE_DETAILS":
      noArg();
      return { op: (c) => truncate(c.responseCodeDetails, max) };
    case "DURATION":
      noArg();
      return { op: (c) => c.durationMs };
    case "PROTOCOL":
      noArg();
      return { op: (c) => c.protocol };
    case "BYTES_RECEIVED":
      noArg();
      return { op: (c) => c.bytesReceived };
    case "BYTES_SENT":
      noArg();
      return { op: (c) => c.bytesSent };
    case "UPSTREAM_CLUSTER":
      noArg();
      return { op: (c) => truncate(c.upstreamCluster, max) };
    case "RESPONSE_FLAGS":
      // ResponseFlagUtils::toShortString: the flags joined by ",", "-" when there are none (also in JSON).
      noArg();
      return { op: (c) => (c.responseFlags.length ? c.responseFlags.join(",") : "-") };
    case "UPSTREAM_HOST":
      // StreamInfoAddressFormatterProvider::withPort on upstreamInfo()->upstreamHost(): null without a host.
      noArg();
      return { op: (c) => c.upstreamHost };
    case "UPSTREAM_TRANSPORT_FAILURE_REASON":
      noArg();
      return { op: (c) => c.upstreamTransportFailureReason || null };
    case "FILTER_STATE": {
      const [key, serialization = "", extra] = needArg().split(":");
      if (extra !== undefined || serialization !== "PLAIN") {
        throw new Error(`access log: the local gateway supports %FILTER_STATE(KEY:PLAIN)% only (got %FILTER_STATE(${arg})%)`);
      }
      return { op: (c) => truncate(c.filterState(key) ?? null, max) };
    }
    default:
      throw new Error(`access log: command operator %${name}% is not supported by the local gateway`);
  }
}

type Part = string | { op: Op };

/** Splits a format string into literal text and command operators. */
function compileString(s: string): Part[] {
  const parts: Part[] = [];
  const re = /%([A-Z_][A-Z0-9_]*)(?:\(([^)]*)\))?(?::([0-9]+))?%/g;
  let last = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    if (m.index > last) parts.push(s.slice(last, m.index));
    parts.push(compileOperator(m[1], m[2], m[3] === undefined ? undefined : Number(m[3])));
    last = re.lastIndex;
  }
  if (last < s.length) parts.push(s.slice(last));
  return parts;
}

function textOf(parts: Part[], c: LogContext): string {
  let out = "";
  for (const p of parts) {
    if (typeof p === "string") out += p;
    else {
      const v = p.op(c);
      out += v === null || v === "" ? "-" : String(v);
    }
  }
  return out;
}

/** Compiles a log format once; returns the function that renders one line (with its newline for JSON). */
export function compileAccessLog(format: AccessLogFormat): (c: LogContext) => string {
  if ("text" in format) {
    const parts = compileString(format.text);
    return (c) => textOf(parts, c);
  }
  // Each value compiles to a function writing its JSON text, so that a line is one string built
  // member by member, as JSON.stringify would write the object (no object per line to stringify).
  const compileValue = (v: unknown): ((c: LogContext) => string | undefined) => {
    if (typeof v === "string") {
      const parts = compileString(v);
      if (parts.length === 1 && typeof parts[0] !== "string") {
        const p = parts[0];
        // The whole value is one operator: typed output, null when unset.
        return (c) => JSON.stringify(p.op(c));
      }
      return (c) => JSON.stringify(textOf(parts, c));
    }
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      const members = Object.entries(v).map(([k, x]) => [JSON.stringify(k) + ":", compileValue(x)] as const);
      return (c) => {
        let out = "{";
        for (const [key, value] of members) {
          const x = value(c);
          if (x === undefined) continue; // JSON.stringify leaves out a member without a value
          out += (out.length > 1 ? "," : "") + key + x;
        }
        return out + "}";
      };
    }
    const text = JSON.stringify(v); // numbers, booleans, null: as written
    return () => text;
  };
  const render = compileValue(format.json);
  return (c) => render(c) + "\n";
}
