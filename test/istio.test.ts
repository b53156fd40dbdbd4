// envoy/istio/: checked against the CRD schemas of the Istio releases Sluice supports (extracted from
// istio/istio's crd-all.gen.yaml at each tag into test/fixtures/istio-crds/, source written in each
// file), scoped to the gateway, with no retries or total timeout of Istio's own on the AI route, and
// Envoy's own errors in the client's shape.
import { describe, it, expect } from "vitest";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import AjvImport from "ajv";
import { GatewayConfigError, loadGatewayConfig, parseGatewayConfig } from "../cli/gateway-config.js";
import { CONNECTION_BUFFER_LIMIT, ISTIO_ENVOYFILTER, ISTIO_VERSIONS, localReplyConfig, renderIstio, renderFiles } from "../cli/render.js";
import { ISTIO_KINDS } from "../scripts/istio-crd-schemas.js";
import { loadEnvoyApi, validateEnvoyConfig } from "../cli/envoy-validate.js";
import type protobuf from "protobufjs";
import { MINIMAL_GATEWAY } from "./fixtures/gateway-yaml.js";

const Ajv = AjvImport as unknown as typeof AjvImport.default;
const FIXTURES = "test/fixtures/istio-crds";
const BASE = `${MINIMAL_GATEWAY}  - name: openai-mini
    provider: openai
    api_key_env: OPENAI_API_KEY
    model: gpt-4o-mini
    models: [auto]
  - name: claude
    provider: anthropic
    api_key_env: ANTHROPIC_API_KEY
`;

/**
 * A CRD's structural schema as a strict JSON schema: Kubernetes prunes (or, under `kubectl apply`'s
 * default strict field validation, refuses) a field its schema does not list, except below
 * x-kubernetes-preserve-unknown-fields (pluginConfig, an EnvoyFilter patch's value). So every object
 * schema with properties gets additionalProperties: false. CEL rules (x-kubernetes-validations) are
 * not JSON schema; the one kind that decides between Sluice's choices, "at most one of these fields",
 * is checked by celOneOf below.
 */
function strict(node: any): any {
  if (Array.isArray(node)) return node.map(strict);
  if (!node || typeof node !== "object") return node;
  const out: any = {};
  for (const [k, v] of Object.entries(node)) out[k] = k === "properties" ? Object.fromEntries(Object.entries(v as object).map(([p, s]) => [p, strict(s)])) : strict(v);
  if (out.properties && !out["x-kubernetes-preserve-unknown-fields"] && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

/** The CEL rules of the form `(has(self.a) ? 1 : 0) + (has(self.b) ? 1 : 0) <= 1` on a spec. */
function celOneOf(schema: any, spec: Record<string, unknown>): string[] {
  const problems: string[] = [];
  for (const v of schema.properties.spec["x-kubernetes-validations"] ?? []) {
    const fields = [...String(v.rule).matchAll(/has\(self\.(\w+)\) \? 1 : 0/g)].map((m) => m[1]);
    if (fields.length && /<= 1$/.test(v.rule) && fields.filter((f) => spec[f] !== undefined).length > 1) problems.push(v.message);
  }
  return problems;
}

const versions = readdirSync(FIXTURES).filter((f) => f.endsWith(".json")).map((f) => JSON.parse(readFileSync(join(FIXTURES, f), "utf8")));

/** What the CRD schema leaves to Kubernetes: apiVersion, kind and the object's name and namespace. */
const OBJECT = {
  apiVersion: { type: "string" },
  kind: { type: "string" },
  metadata: {
    type: "object",
    additionalProperties: false,
    required: ["name", "namespace"],
    properties: {
      name: { type: "string", maxLength: 253, pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$" },
      namespace: { type: "string", maxLength: 63, pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" },
    },
  },
};

/** Kubernetes' own ConfigMap (stats-bootstrap.yaml): no CRD; its fields as the core API has them. */
const CONFIG_MAP = {
  type: "object",
  additionalProperties: false,
  required: ["apiVersion", "kind", "metadata", "data"],
  properties: { ...OBJECT, data: { type: "object", additionalProperties: { type: "string" } } },
};

function validators(data: any): Record<string, { schema: any; validate: any }> {
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  return {
    ...Object.fromEntries(
      Object.entries(data.schemas).map(([key, s]: [string, any]) => {
        const schema = strict(s);
        schema.properties = { ...OBJECT, ...schema.properties };
        return [key, { schema: s, validate: ajv.compile(schema) }];
      }),
    ),
    "v1/ConfigMap": { schema: { properties: { spec: {} } }, validate: ajv.compile(CONFIG_MAP) },
  };
}

function problemsOf(v: ReturnType<typeof validators>, doc: any): string[] {
  const key = `${doc.apiVersion}/${doc.kind}`;
  const c = v[key];
  if (!c) return [`${key}: not a kind this Istio has`];
  const ok = c.validate(doc);
  const errors = ok ? [] : (c.validate.errors ?? []).map((e: any) => `${e.instancePath} ${e.message}${e.params?.additionalProperty ? `: ${e.params.additionalProperty}` : ""}`);
  return [...errors, ...celOneOf(c.schema, doc.spec)];
}

const rendered = (cfg = loadGatewayConfig("gateway.yaml", { env: {} })) =>
  Object.entries(renderIstio(cfg)).flatMap(([file, f]) => f.docs.map((doc: any) => ({ file, doc: JSON.parse(JSON.stringify(doc)) })));

const committed = () =>
  readdirSync("envoy/istio").flatMap((f) => parseAllDocuments(readFileSync(join("envoy/istio", f), "utf8")).map((d) => ({ file: f, doc: d.toJS() as any })));

function cfgOf(extra: string) {
  return parseGatewayConfig(BASE + extra, { env: {} });
}

function refused(text: string): string {
  try {
    parseGatewayConfig(text, { env: {} });
  } catch (e) {
    if (e instanceof GatewayConfigError) return e.message;
    throw e;
  }
  throw new Error("expected the configuration to be refused");
}

describe("Istio versions and their CRD schemas", () => {
  it("the schemas on file are those of the supported releases, each with its source (istio/istio tag and commit)", () => {
    expect(versions.map((v) => v.source.tag.split(".").slice(0, 2).join("."))).toEqual([...ISTIO_VERSIONS]);
    for (const v of versions) {
      expect(v.source).toMatchObject({ repository: "istio/istio", path: "manifests/charts/base/files/crd-all.gen.yaml" });
      expect(v.source.commit).toMatch(/^[0-9a-f]{40}$/);
      expect(Object.keys(v.schemas).sort()).toEqual(Object.entries(ISTIO_KINDS).map(([k, api]) => `${api}/${k}`).sort());
    }
  });

  for (const data of versions) {
    it(`Istio ${data.source.tag}: every committed manifest validates, with no field its CRD lacks`, () => {
      const v = validators(data);
      const docs = committed();
      expect(new Set(docs.map((d) => d.doc.kind))).toEqual(new Set(["WasmPlugin", "EnvoyFilter", "ServiceEntry", "DestinationRule", "ConfigMap"]));
      for (const { file, doc } of docs) expect(problemsOf(v, doc), `${file}: ${doc.kind} ${doc.metadata.name}`).toEqual([]);
    });

    it(`Istio ${data.source.tag}: a Gateway API target (targetRefs) renders valid manifests too`, () => {
      const v = validators(data);
      for (const { file, doc } of rendered(cfgOf("istio: { namespace: ai, target_refs: [{ name: ai-gateway }] }\n"))) {
        expect(problemsOf(v, doc), `${file}: ${doc.kind}`).toEqual([]);
      }
    });

    it(`Istio ${data.source.tag}: the check catches an unknown field, a bad enum, a wrong API version and selector with targetRefs`, () => {
      const v = validators(data);
      const docs = committed();
      const dr = structuredClone(docs.find((d) => d.doc.kind === "DestinationRule")!.doc);
      dr.spec.trafficPolicy.connectionPool.tcp.connectTimeOut = "5s";
      expect(problemsOf(v, dr).join("\n")).toMatch(/must NOT have additional properties: connectTimeOut/);
      const plugin = structuredClone(docs.find((d) => d.file === "key-auth.yaml")!.doc);
      plugin.spec.phase = "AUTHENTICATION";
      expect(problemsOf(v, plugin).join("\n")).toMatch(/phase must be equal to one of the allowed values/);
      plugin.spec.phase = "AUTHN";
      plugin.spec.targetRefs = [{ group: "gateway.networking.k8s.io", kind: "Gateway", name: "x" }];
      expect(problemsOf(v, plugin)).toEqual(["only one of targetRefs or selector can be set"]);
      const se = structuredClone(docs.find((d) => d.doc.kind === "ServiceEntry")!.doc);
      se.apiVersion = "networking.istio.io/v1beta2";
      expect(problemsOf(v, se)).toEqual(["networking.istio.io/v1beta2/ServiceEntry: not a kind this Istio has"]);
    });
  }
});

describe("Istio scoping: only the gateway originates TLS to the providers", () => {
  it("by default every manifest is in istio-system for the pods labelled istio: ingressgateway", () => {
    const docs = committed();
    for (const { doc } of docs) expect(doc.metadata.namespace).toBe("istio-system");
    for (const { doc } of docs.filter((d) => d.doc.kind === "WasmPlugin")) expect(doc.spec.selector).toEqual({ matchLabels: { istio: "ingressgateway" } });
    expect(docs.find((d) => d.doc.kind === "EnvoyFilter")!.doc.spec.workloadSelector).toEqual({ labels: { istio: "ingressgateway" } });
  });

  it("one ServiceEntry and DestinationRule per provider host, exported to the gateway's namespace only, TLS for the gateway's pods only, no outlier detection", () => {
    const docs = rendered(cfgOf("istio: { namespace: ai-gateway, selector: { app: sluice } }\n"));
    const ses = docs.filter((d) => d.doc.kind === "ServiceEntry").map((d) => d.doc);
    const drs = docs.filter((d) => d.doc.kind === "DestinationRule").map((d) => d.doc);
    // openai and openai-mini share api.openai.com: one of each, not two rules for one host.
    expect(ses.map((d) => [d.metadata.name, d.spec.hosts])).toEqual([["sluice-api.openai.com", ["api.openai.com"]], ["sluice-api.anthropic.com", ["api.anthropic.com"]]]);
    for (const d of [...ses, ...drs]) {
      expect(d.metadata.namespace).toBe("ai-gateway");
      expect(d.spec.exportTo).toEqual(["."]);
    }
    for (const dr of drs) {
      expect(dr.spec.workloadSelector).toEqual({ matchLabels: { app: "sluice" } });
      expect(dr.spec.trafficPolicy.tls).toEqual({ mode: "SIMPLE", sni: dr.spec.host });
      expect(dr.spec.trafficPolicy.outlierDetection).toBeUndefined();
    }
    for (const d of docs.filter((x) => x.doc.kind === "WasmPlugin")) expect(d.doc.spec.selector).toEqual({ matchLabels: { app: "sluice" } });
    expect(docs.find((d) => d.doc.kind === "EnvoyFilter")!.doc.spec.workloadSelector).toEqual({ labels: { app: "sluice" } });
  });

  it("target_refs: the WasmPlugins and the EnvoyFilter name the Gateway; the DestinationRules select its pods by Istio's gateway-name label", () => {
    const docs = rendered(cfgOf("istio:\n  namespace: ai\n  target_refs:\n    - name: ai-gateway\n"));
    const ref = [{ group: "gateway.networking.k8s.io", kind: "Gateway", name: "ai-gateway" }];
    for (const { doc } of docs.filter((d) => d.doc.kind === "WasmPlugin" || d.doc.kind === "EnvoyFilter")) {
      expect(doc.spec.targetRefs).toEqual(ref);
      expect(doc.spec.selector ?? doc.spec.workloadSelector).toBeUndefined();
    }
    for (const { doc } of docs.filter((d) => d.doc.kind === "DestinationRule")) {
      expect(doc.spec.workloadSelector).toEqual({ matchLabels: { "gateway.networking.k8s.io/gateway-name": "ai-gateway" } });
    }
  });

  it("gateway.yaml's commented istio example parses once uncommented and gives the defaults", () => {
    const text = readFileSync("gateway.yaml", "utf8").replace(/^# istio:\n#   namespace: (.*)\n#   selector: (.*?)\s+#.*\n/m, "istio:\n  namespace: $1\n  selector: $2\n");
    expect(text).toMatch(/^istio:\n  namespace: istio-system\n  selector: \{ istio: ingressgateway \}\n/m);
    const cfg = parseGatewayConfig(text, { env: {} });
    expect(cfg.istio).toEqual(loadGatewayConfig("gateway.yaml", { env: {} }).istio);
    expect(cfg.istio).toEqual({ namespace: "istio-system", podLabels: { istio: "ingressgateway" }, targetRefs: null });
  });

  it("refuses, with line and field, selector with target_refs, a namespace that is not a DNS label, and a target other than a Gateway", () => {
    expect(refused(BASE + "istio:\n  selector: { app: x }\n  target_refs: [{ name: gw }]\n")).toBe(
      "gateway.yaml:20:16: istio.target_refs: set selector or target_refs, not both (Istio takes one of them)",
    );
    expect(refused(BASE + "istio:\n  namespace: Istio_System\n")).toMatch(/^gateway\.yaml:19:14: istio\.namespace: /);
    expect(refused(BASE + "istio:\n  target_refs: [{ kind: GatewayClass, name: istio }]\n")).toMatch(/^gateway\.yaml:19:\d+: istio\.target_refs\[0\]\.kind: /);
  });
});

/**
 * Istio's EnvoyFilter MERGE on Envoy's JSON form, as pkg/proto/merge/merge.go does it on protos: lists
 * are appended, messages merged field by field, a Duration replaced whole (Istio's ReplaceMergeFn),
 * and a proto3 scalar that is zero is not "set", so it changes nothing (protoreflect Range skips it).
 * A wrapper (UInt32Value...) is written as a bare scalar in JSON: a zero one only fills an absent field.
 * A model of Istio's code, written from its source; what it shows holds as far as the model is faithful.
 */
function istioMerge(type: protobuf.Type, dst: Record<string, any>, src: Record<string, any>): Record<string, any> {
  const out = { ...dst };
  for (const [key, value] of Object.entries(src)) {
    const field = type.fields[key];
    if (!field) throw new Error(`${type.fullName} has no field ${key}`);
    const sub = field.resolve().resolvedType;
    const zero = value === 0 || value === "" || value === false;
    // Setting one member of a oneof clears the others (cluster_header replaces the route's cluster).
    for (const other of field.partOf?.oneof ?? []) if (other !== key) delete out[other];
    if (field.repeated) out[key] = [...(dst[key] ?? []), ...value];
    else if (sub && "fields" in sub && sub.fullName === ".google.protobuf.Duration") out[key] = value;
    else if (sub && "fields" in sub && /^\.google\.protobuf\.\w+Value$/.test(sub.fullName)) out[key] = zero && key in dst ? dst[key] : value;
    else if (sub && "fields" in sub) out[key] = istioMerge(sub as protobuf.Type, dst[key] ?? {}, value);
    else if (!zero) out[key] = value;
  }
  return out;
}

/** Envoy's retry conditions that can fire: retriable-headers needs a listed header to match. */
function firingRetryConditions(policy: Record<string, any> | undefined): string[] {
  if (!policy || policy.num_retries === 0) return [];
  return String(policy.retry_on ?? "")
    .split(",")
    .filter((c) => c && !(c === "retriable-headers" && !(policy.retriable_headers ?? []).length) && !(c === "retriable-status-codes" && !(policy.retriable_status_codes ?? []).length));
}

describe("Istio's merge of the route patch (pkg/proto/merge semantics)", () => {
  const RouteAction = () => loadEnvoyApi().lookupType("envoy.config.route.v3.RouteAction");
  // What Istio renders for a VirtualService route without `retries` (route/retry/retry.go, DefaultPolicy).
  const istioDefault = {
    cluster: "outbound|443||api.openai.com",
    timeout: "0s",
    retry_policy: {
      retry_on: "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
      num_retries: 2,
      host_selection_retry_max_attempts: 5,
      retry_host_predicate: [{ name: "envoy.retry_host_predicates.previous_hosts" }],
    },
  };
  const patch = () => (renderIstio(cfgOf(""))[ISTIO_ENVOYFILTER].docs[0] as any).spec.configPatches.find((p: any) => p.applyTo === "HTTP_ROUTE").patch.value.route;

  it("num_retries: 0 alone cannot lower Istio's 2 retries (the gap the patch works around)", () => {
    const merged = istioMerge(RouteAction(), istioDefault, { retry_policy: { num_retries: 0 } });
    expect(merged.retry_policy.num_retries).toBe(2);
    expect(firingRetryConditions(merged.retry_policy)).toEqual(["connect-failure", "refused-stream", "unavailable", "cancelled"]);
  });

  it("merged into Istio's default retry policy, the patch leaves no retry condition that can fire", () => {
    const merged = istioMerge(RouteAction(), istioDefault, patch());
    expect(merged.retry_policy).toMatchObject({ retry_on: "retriable-headers", num_retries: 2, per_try_timeout: "120s" });
    expect(firingRetryConditions(merged.retry_policy)).toEqual([]);
    expect(merged).toMatchObject({ cluster_header: "x-sluice-cluster", timeout: "0s", idle_timeout: "180s" });
    expect(validateEnvoyConfig(merged, { type: "envoy.config.route.v3.RouteAction" }).errors).toEqual([]);
  });

  it("with the VirtualService's `retries: {attempts: 0}` (no policy from Istio), the patch's num_retries 0 is the route's", () => {
    const merged = istioMerge(RouteAction(), { cluster: "outbound|443||api.openai.com", timeout: "0s" }, patch());
    expect(merged.retry_policy).toEqual({ retry_on: "retriable-headers", num_retries: 0, per_try_timeout: "120s" });
  });

  it("no total timeout is imposed: Istio's none stays none, and only timeouts.total replaces it", () => {
    expect(istioMerge(RouteAction(), istioDefault, patch()).timeout).toBe("0s");
    const total = (renderIstio(cfgOf("timeouts: { total: 10m }\n"))[ISTIO_ENVOYFILTER].docs[0] as any).spec.configPatches.find((p: any) => p.applyTo === "HTTP_ROUTE").patch.value.route;
    expect(istioMerge(RouteAction(), istioDefault, total).timeout).toBe("600s");
  });
});

describe("Istio: the AI route, the connection manager and the listener as in envoy.yaml", () => {
  const patchesOf = (cfg: ReturnType<typeof cfgOf>) => (renderIstio(cfg)[ISTIO_ENVOYFILTER].docs[0] as any).spec.configPatches as any[];

  it("the route MERGE takes away Istio's retry conditions, sets no total timeout by default, and keeps first byte and idle", () => {
    const route = patchesOf(cfgOf("")).find((p) => p.applyTo === "HTTP_ROUTE").patch.value.route;
    expect(route).toEqual({
      cluster_header: "x-sluice-cluster",
      idle_timeout: "180s",
      // Istio's merge cannot zero num_retries; replacing retry_on with a condition that never matches can.
      retry_policy: { retry_on: "retriable-headers", num_retries: 0, per_try_timeout: "120s" },
    });
    expect(route.retry_policy.retriable_headers).toBeUndefined();
    expect(validateEnvoyConfig(route, { type: "envoy.config.route.v3.RouteAction" }).errors).toEqual([]);
  });

  it("timeouts.total, when set, is the route timeout; first_byte 0s leaves per_try_timeout out but still takes the retries away", () => {
    expect(patchesOf(cfgOf("timeouts: { total: 10m }\n")).find((p) => p.applyTo === "HTTP_ROUTE").patch.value.route.timeout).toBe("600s");
    const off = patchesOf(cfgOf("timeouts: { first_byte: 0s }\n")).find((p) => p.applyTo === "HTTP_ROUTE").patch.value.route;
    expect(off.retry_policy).toEqual({ retry_on: "retriable-headers", num_retries: 0 });
  });

  it("the gateway's HTTP connection manager gets envoy.yaml's local_reply_config; its listeners and provider clusters envoy.yaml's buffer limits", () => {
    const patches = patchesOf(cfgOf(""));
    const hcm = patches.find((p) => p.applyTo === "NETWORK_FILTER");
    expect(hcm.match).toEqual({ context: "GATEWAY", listener: { filterChain: { filter: { name: "envoy.filters.network.http_connection_manager" } } } });
    expect(hcm.patch.operation).toBe("MERGE");
    expect(hcm.patch.value.typed_config.local_reply_config).toEqual(localReplyConfig());
    // A MERGE patch is a fragment of the gateway's HCM: valid once it has the routes Istio gives it (rds).
    const whole = { ...hcm.patch.value, typed_config: { ...hcm.patch.value.typed_config, rds: { route_config_name: "http.8080", config_source: { ads: {} } } } };
    expect(validateEnvoyConfig(whole, { type: "envoy.config.listener.v3.Filter" }).errors).toEqual([]);
    const envoy = renderFiles(cfgOf(""))["envoy.yaml"];
    const listener = patches.find((p) => p.applyTo === "LISTENER");
    expect(listener).toEqual({ applyTo: "LISTENER", match: { context: "GATEWAY" }, patch: { operation: "MERGE", value: { per_connection_buffer_limit_bytes: CONNECTION_BUFFER_LIMIT } } });
    expect(envoy).toContain(`per_connection_buffer_limit_bytes: ${CONNECTION_BUFFER_LIMIT}`);
    expect(validateEnvoyConfig(listener.patch.value, { type: "envoy.config.listener.v3.Listener" }).errors).toEqual([]);
    // And each provider cluster (one per host and port, as Istio builds them) that of envoy.yaml's clusters.
    const clusters = patches.filter((p) => p.applyTo === "CLUSTER");
    expect(clusters.map((p) => p.match)).toEqual([
      { context: "GATEWAY", cluster: { service: "api.openai.com", portNumber: 443 } },
      { context: "GATEWAY", cluster: { service: "api.anthropic.com", portNumber: 443 } },
    ]);
    for (const c of clusters) {
      expect(c.patch).toEqual({ operation: "MERGE", value: { per_connection_buffer_limit_bytes: CONNECTION_BUFFER_LIMIT } });
      expect(validateEnvoyConfig(c.patch.value, { type: "envoy.config.cluster.v3.Cluster" }).errors).toEqual([]);
    }
  });
});
