// Strict validation of an Envoy bootstrap (envoy.yaml) against Envoy's own v3 API protos, as shipped
// in the npm package @grpc/grpc-js-xds (deps/envoy-api, xds, googleapis, protoc-gen-validate), read
// with protobufjs. It walks the YAML as Envoy's JSON/YAML loader does (proto3 JSON mapping):
// unknown fields, wrong scalar types, bad enum names, two members of one oneof, and a
// google.protobuf.Any whose @type is not a known message are errors; durations must be "1.5s"
// strings; Struct values are free-form. A subset of protoc-gen-validate rules is checked too
// (required messages, required oneofs). Deprecated fields are reported as warnings, as Envoy logs them.
//
// The shipped protos can be older than the Envoy a config targets. Fields added (or retyped) later
// are declared in NEWER_FIELDS, and messages added later in NEWER_MESSAGES, each with the Envoy
// version and the API commit that made the change; only then are they accepted, and every use of a
// newer field is reported in `newerFieldsUsed`, never silently skipped. Enums added later are in
// NEWER_ENUMS, and fields deprecated later in NEWER_DEPRECATIONS (reported as warnings).
//
// A config is validated for a target Envoy version (default ENVOY_VERSION_FLOOR, the renderer's): a
// newer field whose version is above the target is an error, as is any field no declaration knows
// (e.g. one added to Envoy after the target's release).
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";
import { parse } from "yaml";
import { ENVOY_VERSION_FLOOR } from "./render/constants.js";

export interface NewerField {
  message: string;
  field: string;
  id: number;
  /** A message or scalar type name (messages fully qualified, without the leading dot). */
  type: string;
  repeated?: boolean;
  /** The shipped protos declare this field with an older type, which this declaration replaces. */
  replaces?: string;
  /** The oneof of the message the field belongs to. */
  oneof?: string;
  since: string;
  source: string;
}

export interface NewerMessage {
  /** Fully qualified; its parent (message or package) must exist in the shipped protos. */
  name: string;
  fields: { name: string; id: number; type: string }[];
  since: string;
  source: string;
}

export interface NewerEnum {
  /** Fully qualified; its parent (message or package) must exist in the shipped protos. */
  name: string;
  values: Record<string, number>;
  since: string;
  source: string;
}

export interface NewerDeprecation {
  message: string;
  field: string;
  /** What to write instead. */
  instead: string;
  /** The shipped protos mark it required (protoc-gen-validate); since the deprecation it is not. */
  noLongerRequired?: boolean;
  since: string;
  source: string;
}

/** Enums Sluice renders that postdate the protos shipped in @grpc/grpc-js-xds. */
export const NEWER_ENUMS: NewerEnum[] = [
  {
    // enum FailurePolicy { UNSPECIFIED = 0; FAIL_RELOAD = 1; FAIL_CLOSED = 2; FAIL_OPEN = 3; }
    name: "envoy.extensions.wasm.v3.FailurePolicy",
    values: { UNSPECIFIED: 0, FAIL_RELOAD: 1, FAIL_CLOSED: 2, FAIL_OPEN: 3 },
    since: "1.33.0",
    source: "envoyproxy/data-plane-api 1cfc0d5a (envoyproxy/envoy#36456, 2024-10-24): envoy/extensions/wasm/v3/wasm.proto",
  },
];

/** Fields the shipped protos have that Envoy deprecated later (Envoy logs their use; so does the validator). */
export const NEWER_DEPRECATIONS: NewerDeprecation[] = [
  {
    // bool fail_open = 5 [deprecated = true, (envoy.annotations.deprecated_at_minor_version) = "3.0"];
    message: "envoy.extensions.wasm.v3.PluginConfig",
    field: "fail_open",
    instead: "failure_policy",
    since: "1.33.0",
    source: "envoyproxy/data-plane-api 1cfc0d5a (envoyproxy/envoy#36456, 2024-10-24): envoy/extensions/wasm/v3/wasm.proto",
  },
  {
    // grpc.v3.CommonGrpcAccessLogConfig common_config = 1 [deprecated = true, ...]; was
    // [(validate.rules).message = {required: true}]. Exactly one of grpc_service, http_service or
    // common_config.grpc_service is required now (source/extensions/access_loggers/open_telemetry/config.cc).
    message: "envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig",
    field: "common_config",
    instead: "grpc_service (or http_service) and log_name",
    noLongerRequired: true,
    since: "1.37.0",
    source: "envoyproxy/data-plane-api ce781d5b (envoyproxy/envoy#42445, 2026-01-10): envoy/extensions/access_loggers/open_telemetry/v3/logs_service.proto",
  },
];

/** Messages Sluice renders that postdate the protos shipped in @grpc/grpc-js-xds. */
export const NEWER_MESSAGES: NewerMessage[] = [
  {
    // message ReloadConfig { config.core.v3.BackoffStrategy backoff = 1; } (only base_interval is read:
    // source/extensions/common/wasm/wasm.cc PluginConfig::PluginConfig)
    name: "envoy.extensions.wasm.v3.ReloadConfig",
    fields: [{ name: "backoff", id: 1, type: "envoy.config.core.v3.BackoffStrategy" }],
    since: "1.33.0",
    source: "envoyproxy/data-plane-api 1cfc0d5a (envoyproxy/envoy#36456, 2024-10-24): envoy/extensions/wasm/v3/wasm.proto",
  },
  {
    // message HitsAddend { google.protobuf.UInt64Value number = 1 [(validate.rules).uint64 = {lte: 1000000000}];
    //                      string format = 2 [(validate.rules).string = {prefix: "%" suffix: "%" ignore_empty: true}]; }
    name: "envoy.config.route.v3.RateLimit.HitsAddend",
    fields: [
      { name: "number", id: 1, type: "google.protobuf.UInt64Value" },
      { name: "format", id: 2, type: "string" },
    ],
    since: "1.33.0",
    source: "envoyproxy/data-plane-api 0a16ab61 (envoyproxy/envoy#37567, 2024-12-18): envoy/config/route/v3/route_components.proto",
  },
  {
    // message SourcedMetadata { type.matcher.v3.MetadataMatcher metadata_matcher = 1 [required];
    //                           MetadataSource metadata_source = 2; }  (DYNAMIC = 0, ROUTE = 1)
    // metadata_source is left out here: Sluice relies on its default, DYNAMIC (jwt_authn's payload).
    name: "envoy.config.rbac.v3.SourcedMetadata",
    fields: [{ name: "metadata_matcher", id: 1, type: "envoy.type.matcher.v3.MetadataMatcher" }],
    since: "1.33.0",
    source: "envoyproxy/data-plane-api b4db898e (envoyproxy/envoy#36957, 2024-11-09): envoy/config/rbac/v3/rbac.proto",
  },
];

/** Fields Sluice renders that postdate the protos shipped in @grpc/grpc-js-xds. */
export const NEWER_FIELDS: NewerField[] = [

  {
    // FailurePolicy failure_policy = 7; replaces the deprecated fail_open (both set: Envoy refuses the config).
    message: "envoy.extensions.wasm.v3.PluginConfig",
    field: "failure_policy",
    id: 7,
    type: "envoy.extensions.wasm.v3.FailurePolicy",
    since: "1.33.0",
    source: "envoyproxy/data-plane-api 1cfc0d5a (envoyproxy/envoy#36456, 2024-10-24): envoy/extensions/wasm/v3/wasm.proto",
  },
  {
    // ReloadConfig reload_config = 8; applied only with failure_policy FAIL_RELOAD.
    message: "envoy.extensions.wasm.v3.PluginConfig",
    field: "reload_config",
    id: 8,
    type: "envoy.extensions.wasm.v3.ReloadConfig",
    since: "1.33.0",
    source: "envoyproxy/data-plane-api 1cfc0d5a (envoyproxy/envoy#36456, 2024-10-24): envoy/extensions/wasm/v3/wasm.proto",
  },
  {
    message: "envoy.extensions.wasm.v3.PluginConfig",
    field: "allow_on_headers_stop_iteration",
    id: 9,
    type: "google.protobuf.BoolValue",
    since: "1.35.0",
    source: "envoyproxy/data-plane-api 471e4526 (envoyproxy/envoy#40213, 2025-07-15): envoy/extensions/wasm/v3/wasm.proto",
  },
  {
    // google.protobuf.UInt64Value request_body_buffer_limit = 20 (Route; VirtualHost has it as 25).
    // Applied when the route is matched only from Envoy 1.37 (envoyproxy/envoy#42607); see render.ts.
    message: "envoy.config.route.v3.Route",
    field: "request_body_buffer_limit",
    id: 20,
    type: "google.protobuf.UInt64Value",
    since: "1.36.0",
    source: "envoyproxy/data-plane-api 92df27d6 (envoyproxy/envoy#40254, 2025-08-11): envoy/config/route/v3/route_components.proto",
  },
  {
    message: "envoy.config.route.v3.RateLimit",
    field: "hits_addend",
    id: 5,
    type: "envoy.config.route.v3.RateLimit.HitsAddend",
    since: "1.33.0",
    source: "envoyproxy/data-plane-api 0a16ab61 (envoyproxy/envoy#37567, 2024-12-18): envoy/config/route/v3/route_components.proto",
  },
  {
    message: "envoy.config.route.v3.RateLimit",
    field: "apply_on_stream_done",
    id: 6,
    type: "bool",
    since: "1.33.0",
    source: "envoyproxy/data-plane-api a33a3074 (envoyproxy/envoy#37548, 2024-12-19): envoy/config/route/v3/route_components.proto",
  },
  {
    // The shipped protos type it `repeated RateLimitConfig` (a [#not-implemented-hide:] copy of the
    // route's RateLimit); Envoy 1.33 made it the route's own RateLimit, which carries hits_addend and
    // apply_on_stream_done.
    message: "envoy.extensions.filters.http.ratelimit.v3.RateLimitPerRoute",
    field: "rate_limits",
    id: 3,
    type: "envoy.config.route.v3.RateLimit",
    repeated: true,
    replaces: "envoy.extensions.filters.http.ratelimit.v3.RateLimitConfig",
    since: "1.33.0",
    source: "envoyproxy/data-plane-api 05496bbc (envoyproxy/envoy#37684, 2024-12-19): envoy/extensions/filters/http/ratelimit/v3/rate_limit.proto",
  },
  {
    // Principal.identifier oneof; replaces the deprecated Principal.metadata (rbac's claim rules).
    message: "envoy.config.rbac.v3.Principal",
    field: "sourced_metadata",
    id: 13,
    type: "envoy.config.rbac.v3.SourcedMetadata",
    oneof: "identifier",
    since: "1.33.0",
    source: "envoyproxy/data-plane-api b4db898e (envoyproxy/envoy#36957, 2024-11-09): envoy/config/rbac/v3/rbac.proto",
  },
  {
    // The filter's own rate limit actions (request_rate_limit.consumer's descriptor).
    message: "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
    field: "rate_limits",
    id: 17,
    type: "envoy.config.route.v3.RateLimit",
    repeated: true,
    since: "1.32.0",
    source: "envoyproxy/data-plane-api d75ce20c (envoyproxy/envoy#36099, 2024-10-05): envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto",
  },
  {
    // Buckets kept for a wildcard descriptor (an entry without value: one bucket per value).
    message: "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
    field: "max_dynamic_descriptors",
    id: 18,
    type: "google.protobuf.UInt32Value",
    since: "1.34.0",
    source: "envoyproxy/data-plane-api 12ba0dae (envoyproxy/envoy#36623, 2025-02-10): envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto",
  },
  {
    // string value = 6; in CustomTag's oneof type: a substitution format string (as the access log's),
    // an unknown specifier giving "" rather than "-". Sluice puts filter state on the span with it.
    message: "envoy.type.tracing.v3.CustomTag",
    field: "value",
    id: 6,
    type: "string",
    oneof: "type",
    since: "1.37.0",
    source: "envoyproxy/data-plane-api 29ea4fcd (envoyproxy/envoy#41697, 2025-11-02): envoy/type/tracing/v3/custom_tag.proto",
  },
  {
    // config.core.v3.GrpcService grpc_service = 9; in place of the deprecated common_config's.
    message: "envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig",
    field: "grpc_service",
    id: 9,
    type: "envoy.config.core.v3.GrpcService",
    since: "1.37.0",
    source: "envoyproxy/data-plane-api ce781d5b (envoyproxy/envoy#42445, 2026-01-10): envoy/extensions/access_loggers/open_telemetry/v3/logs_service.proto",
  },
  {
    // string log_name = 10; wins over common_config.log_name.
    message: "envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig",
    field: "log_name",
    id: 10,
    type: "string",
    since: "1.37.0",
    source: "envoyproxy/data-plane-api ce781d5b (envoyproxy/envoy#42445, 2026-01-10): envoy/extensions/access_loggers/open_telemetry/v3/logs_service.proto",
  },
];

export interface ValidationResult {
  errors: string[];
  warnings: string[];
  /** NEWER_FIELDS entries the config used ("message.field @ path"). */
  newerFieldsUsed: string[];
  /** Every @type seen, for reporting. */
  types: Set<string>;
}

const WRAPPERS: Record<string, string> = {
  "google.protobuf.BoolValue": "bool",
  "google.protobuf.StringValue": "string",
  "google.protobuf.BytesValue": "bytes",
  "google.protobuf.Int32Value": "int32",
  "google.protobuf.UInt32Value": "uint32",
  "google.protobuf.Int64Value": "int64",
  "google.protobuf.UInt64Value": "uint64",
  "google.protobuf.DoubleValue": "double",
  "google.protobuf.FloatValue": "float",
};

function depsDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve("@grpc/grpc-js-xds/package.json")), "deps");
}

function protoFiles(dir: string, base = dir, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) protoFiles(p, base, out);
    else if (e.name.endsWith(".proto")) out.push(p.slice(base.length + 1));
  }
  return out;
}

const roots = new Map<boolean, protobuf.Root>();
/** Shipped v3 protos left out because an import of theirs is not shipped. */
export let skippedProtos: string[] = [];

/** Envoy's v3 API as protobufjs types. `newerFields` adds NEWER_FIELDS (default true). */
export function loadEnvoyApi(newerFields = true): protobuf.Root {
  const cached = roots.get(newerFields);
  if (cached) return cached;
  const deps = depsDir();
  const require = createRequire(import.meta.url);
  const includes = [
    ...["envoy-api", "xds", "googleapis", "protoc-gen-validate"].map((d) => join(deps, d)),
    dirname(require.resolve("protobufjs/package.json")), // google/protobuf/descriptor.proto
    // OpenTelemetry's common value types, which the OpenTelemetry access logger imports (not shipped).
    join(dirname(fileURLToPath(import.meta.url)), "protos"),
  ];
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    for (const inc of includes) {
      const p = join(inc, target);
      if (existsSync(p)) return p;
    }
    return target; // google/protobuf/{any,duration,struct,...}.proto are built into protobufjs

  };
  // Every v3 message (the shipped tree also holds a few v2 leftovers whose imports are absent);
  // their imports come in transitively.
  const files = [
    ...protoFiles(join(deps, "envoy-api", "envoy")).map((f) => `envoy/${f}`),
    ...protoFiles(join(deps, "xds", "xds")).map((f) => `xds/${f}`),
  ].filter((f) => f.includes("/v3/"));
  // The package ships the protos grpc needs plus most of the v3 tree; a few import protos it does not
  // ship (e.g. opencensus for the OpenCensus tracer). Those files are left out and listed in
  // `skippedProtos`: a config using their messages then fails as an unknown @type, never passes.
  const resolveImport = (target: string): string | null => {
    const p = root.resolvePath("", target) ?? target;
    return existsSync(p) || /^google\/protobuf\/(any|api|duration|empty|field_mask|source_context|struct|timestamp|type|wrappers)\.proto$/.test(target) ? p : null;
  };
  const complete = new Map<string, boolean>();
  const isComplete = (target: string, stack = new Set<string>()): boolean => {
    const known = complete.get(target);
    if (known !== undefined) return known;
    if (stack.has(target)) return true;
    stack.add(target);
    const p = resolveImport(target);
    let ok = p !== null;
    if (ok && existsSync(p!)) {
      for (const m of readFileSync(p!, "utf8").matchAll(/^import\s+(?:public\s+|weak\s+)?"([^"]+)";/gm)) {
        if (!isComplete(m[1], stack)) {
          ok = false;
          break;
        }
      }
    }
    complete.set(target, ok);
    return ok;
  };
  skippedProtos = files.filter((f) => !isComplete(f));
  root.loadSync(files.filter((f) => isComplete(f)), { keepCase: true, alternateCommentMode: false });
  root.resolveAll();
  if (newerFields) {
    for (const ne of NEWER_ENUMS) {
      if (root.lookup(ne.name)) continue; // the shipped protos have it after all
      const dot = ne.name.lastIndexOf(".");
      (root.lookup(ne.name.slice(0, dot)) as protobuf.Namespace).add(new protobuf.Enum(ne.name.slice(dot + 1), ne.values));
    }
    for (const nm of NEWER_MESSAGES) {
      if (root.lookup(nm.name)) continue; // the shipped protos have it after all
      const dot = nm.name.lastIndexOf(".");
      const parent = root.lookup(nm.name.slice(0, dot)) as protobuf.Namespace;
      const t = new protobuf.Type(nm.name.slice(dot + 1));
      for (const f of nm.fields) t.add(new protobuf.Field(f.name, f.id, /^[a-z0-9]+$/.test(f.type) ? f.type : `.${f.type}`));
      parent.add(t);
      for (const f of t.fieldsArray) f.resolve();
    }
    for (const nf of NEWER_FIELDS) {
      const t = root.lookupType(nf.message);
      const old = t.fields[nf.field];
      if (old) {
        if (!nf.replaces || old.resolvedType?.fullName !== `.${nf.replaces}`) continue; // the shipped protos have it after all
        t.remove(old);
      }
      const f = new protobuf.Field(nf.field, nf.id, /^[a-z0-9]+$/.test(nf.type) ? nf.type : `.${nf.type}`, nf.repeated ? "repeated" : undefined);
      t.add(f);
      if (nf.oneof) t.oneofs[nf.oneof].add(f); // so two members of it are refused
      f.resolve();
    }
    for (const nd of NEWER_DEPRECATIONS) {
      const f = root.lookupType(nd.message).fields[nd.field];
      const options: Record<string, unknown> = { ...(f.options ?? {}), deprecated: true };
      if (nd.noLongerRequired) {
        delete options["(validate.rules).message.required"];
        const rules = options["(validate.rules).message"] as { required?: boolean } | undefined;
        if (rules?.required) options["(validate.rules).message"] = { ...rules, required: false };
      }
      f.options = options;
    }
  }
  roots.set(newerFields, root);
  return root;
}

const INT_RANGES: Record<string, [number, number]> = {
  int32: [-2147483648, 2147483647],
  sint32: [-2147483648, 2147483647],
  sfixed32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  fixed32: [0, 4294967295],
};

function kind(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  return typeof v === "object" ? "a mapping" : `${typeof v} ${JSON.stringify(v)}`;
}

/** "1.37.6" -> a number that orders versions (minor and patch below 1000). */
function versionRank(v: string): number {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?$/.exec(v);
  if (!m) throw new Error(`bad Envoy version ${JSON.stringify(v)} (expected e.g. 1.37.6)`);
  return Number(m[1]) * 1e6 + Number(m[2]) * 1e3 + Number(m[3] ?? 0);
}

class Walker {
  readonly errors: string[] = [];
  readonly warnings: string[] = [];
  readonly newerFieldsUsed: string[] = [];
  readonly types = new Set<string>();
  private readonly target: number;
  constructor(
    private readonly root: protobuf.Root,
    private readonly envoyVersion: string,
  ) {
    this.target = versionRank(envoyVersion);
  }

  private err(path: string, msg: string): void {
    this.errors.push(`${path || "(root)"}: ${msg}`);
  }

  scalar(type: string, v: unknown, path: string): void {
    switch (type) {
      case "string":
        if (typeof v !== "string") this.err(path, `expected a string, got ${kind(v)}`);
        return;
      case "bytes":
        if (typeof v !== "string" || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(v)) this.err(path, `expected base64 bytes, got ${kind(v)}`);
        return;
      case "bool":
        if (typeof v !== "boolean") this.err(path, `expected a boolean, got ${kind(v)}`);
        return;
      case "double":
      case "float":
        if (typeof v !== "number" && !(typeof v === "string" && /^(-?[0-9.eE+-]+|NaN|-?Infinity)$/.test(v))) this.err(path, `expected a number, got ${kind(v)}`);
        return;
      case "int64":
      case "sint64":
      case "sfixed64":
      case "uint64":
      case "fixed64": {
        const ok = (typeof v === "number" && Number.isInteger(v)) || (typeof v === "string" && /^-?[0-9]+$/.test(v));
        if (!ok) this.err(path, `expected an integer, got ${kind(v)}`);
        else if (type.startsWith("u") || type === "fixed64") if (String(v).startsWith("-")) this.err(path, `expected an unsigned integer, got ${v}`);
        return;
      }
      default: {
        const range = INT_RANGES[type];
        if (!range) throw new Error(`unhandled scalar type ${type}`);
        const n = typeof v === "string" && /^-?[0-9]+$/.test(v) ? Number(v) : v;
        if (typeof n !== "number" || !Number.isInteger(n)) this.err(path, `expected an integer, got ${kind(v)}`);
        else if (n < range[0] || n > range[1]) this.err(path, `${n} is out of range for ${type}`);
      }
    }
  }

  enumValue(e: protobuf.Enum, v: unknown, path: string): void {
    if (typeof v === "string") {
      if (!(v in e.values)) this.err(path, `'${v}' is not a value of enum ${e.fullName.slice(1)} (expected one of: ${Object.keys(e.values).join(", ")})`);
    } else if (typeof v === "number") {
      if (!Object.values(e.values).includes(v)) this.err(path, `${v} is not a value of enum ${e.fullName.slice(1)}`);
    } else this.err(path, `expected an enum name of ${e.fullName.slice(1)}, got ${kind(v)}`);
  }

  /** One value of a field (not repeated), by its resolved type. */
  value(field: protobuf.Field, v: unknown, path: string): void {
    const rt = field.resolvedType;
    if (rt instanceof protobuf.Enum) return this.enumValue(rt, v, path);
    if (rt instanceof protobuf.Type) return this.message(rt.fullName.slice(1), v, path);
    this.scalar(field.type, v, path);
  }

  message(typeName: string, v: unknown, path: string): void {
    switch (typeName) {
      case "google.protobuf.Duration":
        if (typeof v !== "string" || !/^-?[0-9]+(\.[0-9]{1,9})?s$/.test(v)) this.err(path, `expected a duration such as "1.5s", got ${kind(v)}`);
        return;
      case "google.protobuf.Timestamp":
        if (typeof v !== "string" || Number.isNaN(Date.parse(v))) this.err(path, `expected an RFC 3339 timestamp, got ${kind(v)}`);
        return;
      case "google.protobuf.Struct":
        if (v === null || typeof v !== "object" || Array.isArray(v)) this.err(path, `expected a mapping (Struct), got ${kind(v)}`);
        return;
      case "google.protobuf.Value":
        return;
      case "google.protobuf.ListValue":
        if (!Array.isArray(v)) this.err(path, `expected a list, got ${kind(v)}`);
        return;
      case "google.protobuf.FieldMask":
        if (typeof v !== "string") this.err(path, `expected a field mask string, got ${kind(v)}`);
        return;
      case "google.protobuf.Any":
        return this.any(v, path);
    }
    if (WRAPPERS[typeName]) {
      if (v === null) return;
      return this.scalar(WRAPPERS[typeName], v, path);
    }
    if (v === null || typeof v !== "object" || Array.isArray(v)) {
      this.err(path, `expected a mapping (${typeName}), got ${kind(v)}`);
      return;
    }
    const type = this.root.lookupType(typeName);
    this.fields(type, v as Record<string, unknown>, path);
  }

  any(v: unknown, path: string): void {
    if (v === null || typeof v !== "object" || Array.isArray(v)) {
      this.err(path, `expected a google.protobuf.Any mapping with "@type", got ${kind(v)}`);
      return;
    }
    const obj = v as Record<string, unknown>;
    const url = obj["@type"];
    if (typeof url !== "string") {
      this.err(path, `google.protobuf.Any needs "@type"`);
      return;
    }
    const name = url.slice(url.lastIndexOf("/") + 1);
    let type: protobuf.Type | null = null;
    try {
      type = this.root.lookupType(name);
    } catch {
      type = null;
    }
    if (!type) {
      this.err(`${path}["@type"]`, `unknown @type ${url} (no such message in Envoy's API)`);
      return;
    }
    this.types.add(name);
    const rest = { ...obj };
    delete rest["@type"];
    // Well-known types with a special JSON form sit under "value" inside an Any.
    if (name.startsWith("google.protobuf.") && (WRAPPERS[name] || ["google.protobuf.Duration", "google.protobuf.Timestamp", "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue", "google.protobuf.FieldMask"].includes(name))) {
      const extra = Object.keys(rest).filter((k) => k !== "value");
      if (extra.length) this.err(path, `unknown field '${extra[0]}' in ${name} (its Any form has only "value")`);
      if (!("value" in rest)) this.err(path, `${name} in an Any needs "value"`);
      else this.message(name, rest.value, `${path}.value`);
      return;
    }
    this.fields(type, rest, path);
  }

  fields(type: protobuf.Type, obj: Record<string, unknown>, path: string): void {
    const byJson = new Map<string, protobuf.Field>();
    for (const f of type.fieldsArray) {
      byJson.set(f.name, f);
      byJson.set(f.name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()), f);
    }
    const seenOneof = new Map<string, string>();
    for (const [key, v] of Object.entries(obj)) {
      const at = path ? `${path}.${key}` : key;
      const field = byJson.get(key);
      if (!field) {
        this.err(at, `unknown field '${key}' in ${type.fullName.slice(1)}`);
        continue;
      }
      const nf = NEWER_FIELDS.find((n) => n.message === type.fullName.slice(1) && n.field === field.name);
      if (nf) {
        this.newerFieldsUsed.push(`${nf.message}.${nf.field} (Envoy >= ${nf.since}) @ ${at}`);
        if (versionRank(nf.since) > this.target) {
          this.err(at, `${nf.message}.${nf.field} needs Envoy >= ${nf.since}; the target is Envoy ${this.envoyVersion}`);
          continue;
        }
      }
      if (field.options?.deprecated) {
        const nd = NEWER_DEPRECATIONS.find((d) => d.message === type.fullName.slice(1) && d.field === field.name);
        this.warnings.push(`${at}: ${type.fullName.slice(1)}.${field.name} is deprecated${nd ? ` (since Envoy ${nd.since}; use ${nd.instead})` : ""}`);
      }
      if (field.partOf) {
        const other = seenOneof.get(field.partOf.name);
        if (other) this.err(at, `'${key}' and '${other}' are both set but belong to the same oneof '${field.partOf.name}'`);
        seenOneof.set(field.partOf.name, key);
      }
      if (field instanceof protobuf.MapField) {
        if (v === null || typeof v !== "object" || Array.isArray(v)) {
          this.err(at, `expected a mapping, got ${kind(v)}`);
          continue;
        }
        for (const [mk, mv] of Object.entries(v as Record<string, unknown>)) this.value(field, mv, `${at}.${mk}`);
        continue;
      }
      if (field.repeated) {
        if (!Array.isArray(v)) {
          this.err(at, `expected a list, got ${kind(v)}`);
          continue;
        }
        v.forEach((item, i) => this.value(field, item, `${at}[${i}]`));
        continue;
      }
      this.value(field, v, at);
    }
    // Envoy's PluginConfig constructor (source/extensions/common/wasm/wasm.cc) refuses both set.
    if (type.fullName === ".envoy.extensions.wasm.v3.PluginConfig" && obj.fail_open === true && ![undefined, "UNSPECIFIED", 0].includes(obj.failure_policy as any)) {
      this.err(path, "fail_open and failure_policy are both set: Envoy refuses the plugin (only one of fail_open or failure_policy can be set)");
    }
    // protoc-gen-validate: required messages and required oneofs.
    for (const f of type.fieldsArray) {
      if (f.partOf) continue; // rules on a oneof member apply only when it is the one set
      const o = f.options ?? {};
      if ((o["(validate.rules).message.required"] === true || o["(validate.rules).message"]?.required === true) && obj[f.name] === undefined && obj[byJsonName(f)] === undefined) {
        this.err(path, `missing required field '${f.name}' in ${type.fullName.slice(1)}`);
      }
    }
    for (const oneof of type.oneofsArray) {
      if (oneof.options?.["(validate.required)"] === true && !oneof.fieldsArray.some((f) => obj[f.name] !== undefined || obj[byJsonName(f)] !== undefined)) {
        this.err(path, `one of ${oneof.fieldsArray.map((f) => f.name).join(", ")} is required in ${type.fullName.slice(1)}`);
      }
    }
  }
}

function byJsonName(f: protobuf.Field): string {
  return f.name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

export interface ValidateOptions {
  /** The message type of `config` (default the bootstrap). */
  type?: string;
  /** Accept NEWER_FIELDS / NEWER_MESSAGES / NEWER_ENUMS (default true). */
  newerFields?: boolean;
  /** The Envoy the config is for (default ENVOY_VERSION_FLOOR): newer fields above it are errors. */
  envoyVersion?: string;
}

/** Validates a parsed Envoy config (default type: the bootstrap). */
export function validateEnvoyConfig(config: unknown, opts: ValidateOptions = {}): ValidationResult {
  const w = new Walker(loadEnvoyApi(opts.newerFields ?? true), opts.envoyVersion ?? ENVOY_VERSION_FLOOR);
  const type = opts.type ?? "envoy.config.bootstrap.v3.Bootstrap";
  w.message(type, config, "");
  const warnings = [...w.warnings];
  if (type === "envoy.config.bootstrap.v3.Bootstrap" && w.errors.length === 0) warnings.push(...routeTimeoutWarnings(config));
  else if (type === "envoy.config.route.v3.RouteAction" && w.errors.length === 0) warnings.push(...routeActionTimeoutWarnings(config as Record<string, any>, ""));
  return { errors: w.errors, warnings, newerFieldsUsed: w.newerFieldsUsed, types: w.types };
}

const HCM_TYPE = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

function seconds(d: unknown): number | null {
  return typeof d === "string" && /^[0-9]+(\.[0-9]+)?s$/.test(d) ? Number(d.slice(0, -1)) : null;
}

/**
 * Timeouts Envoy accepts but that do not do what an AI gateway needs (Envoy's router, read in
 * source/common/router/router.cc FilterUtility::finalTimeout and upstream_request.cc): a route with
 * no `timeout` gets 15 s, which cuts every response, streams included; a per-try timeout at or above
 * the route timeout is dropped; an idle timeout at or below the per-try timeout fires first (408).
 */
export function routeTimeoutWarnings(config: unknown): string[] {
  const out: string[] = [];
  const listeners: any[] = (config as any)?.static_resources?.listeners ?? [];
  listeners.forEach((l, li) =>
    (l?.filter_chains ?? []).forEach((fc: any, ci: number) =>
      (fc?.filters ?? []).forEach((f: any, fi: number) => {
        const hcm = f?.typed_config;
        if (hcm?.["@type"] !== HCM_TYPE) return;
        (hcm.route_config?.virtual_hosts ?? []).forEach((vh: any, vi: number) =>
          (vh?.routes ?? []).forEach((r: any, ri: number) => {
            if (r?.route) out.push(...routeActionTimeoutWarnings(r.route, `static_resources.listeners[${li}].filter_chains[${ci}].filters[${fi}].typed_config.route_config.virtual_hosts[${vi}].routes[${ri}].route`));
          }),
        );
      }),
    ),
  );
  return out;
}

function routeActionTimeoutWarnings(ra: Record<string, any>, at: string): string[] {
  const out: string[] = [];
  const where = at ? `${at}: ` : "";
  const total = ra.timeout === undefined ? 15 : seconds(ra.timeout);
  const perTry = seconds(ra.retry_policy?.per_try_timeout) ?? 0;
  const idle = seconds(ra.idle_timeout) ?? 0;
  if (ra.timeout === undefined) out.push(`${where}no timeout: Envoy's default of 15s cuts every response at 15 s, streams included (write 0s to turn it off)`);
  if (total && perTry && perTry >= total) out.push(`${where}retry_policy.per_try_timeout (${perTry}s) is not below timeout (${total}s): Envoy drops it`);
  if (idle && perTry && idle <= perTry) out.push(`${where}idle_timeout (${idle}s) is not above retry_policy.per_try_timeout (${perTry}s): the idle timeout answers 408 first`);
  return out;
}

export function validateEnvoyYaml(text: string, opts: ValidateOptions = {}): ValidationResult {
  return validateEnvoyConfig(parse(text), opts);
}

/**
 * An ECDS file (cli/render/ecds.ts) as Envoy's path_config_source reads it: a DiscoveryResponse
 * (FilesystemSubscriptionImpl::refreshInternal), whose single resource is a TypedExtensionConfig named as
 * the http filter that asks for it (FilterConfigSubscription::onConfigUpdate, config_discovery_impl.cc).
 */
export function validateEcdsYaml(text: string, filterName: string, opts: { newerFields?: boolean; envoyVersion?: string } = {}): ValidationResult {
  const doc = parse(text);
  const r = validateEnvoyConfig(doc, { type: "envoy.service.discovery.v3.DiscoveryResponse", newerFields: opts.newerFields, envoyVersion: opts.envoyVersion });
  const resources = (doc as { resources?: { "@type"?: string; name?: string }[] } | null)?.resources ?? [];
  if (resources.length !== 1) r.errors.push(`resources: Envoy expects exactly one TypedExtensionConfig, found ${resources.length}`);
  else if (resources[0]["@type"] !== "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig") r.errors.push(`resources[0]: @type ${resources[0]["@type"]} is not a TypedExtensionConfig`);
  else if (resources[0].name !== filterName) r.errors.push(`resources[0].name: ${resources[0].name} is not the http filter's name ${filterName}`);
  return r;
}
