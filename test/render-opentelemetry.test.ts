// gateway.yaml opentelemetry (issue 23): the OpenTelemetry access logger and the collector's cluster,
// valid against Envoy's API; every filter-state key the log's attributes read is one the filters
// write; the local gateway lists the logger as Envoy's only and keeps its JSON log.
import { describe, it, expect, beforeAll } from "vitest";
import { parseGatewayConfig } from "../cli/gateway-config.js";
import { renderEcds, renderEnvoy as renderEnvoyYaml } from "../cli/render.js";
import { loadEnvoyApi, skippedProtos, validateEnvoyConfig } from "../cli/envoy-validate.js";
import { GENAI_LOG_ATTRIBUTES, OTEL_CLUSTER, OTEL_COMPOSE_SERVICE, openTelemetryLogAttributes, spanTags } from "../cli/render/opentelemetry.js";
import { parseEnvoyConfig, ecdsReaderFor } from "../host/envoy-config.js";
import { parse, stringify } from "yaml";
import { readFileSync } from "node:fs";
import { renderedInline } from "./fixtures/ecds.js";
import { MINIMAL_GATEWAY, problemsOf } from "./fixtures/gateway-yaml.js";
import { proxyHost, send, answer } from "./ai-proxy/helpers.js";

const renderEnvoy = (cfg: any, opts: any = {}) => renderedInline(renderEnvoyYaml, renderEcds, cfg, opts);
const hcm = (c: any) => c.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
const OTEL = `${MINIMAL_GATEWAY}opentelemetry:
  address: collector.observability.svc
  service_name: gateway-eu
`;

beforeAll(() => loadEnvoyApi());

describe("gateway.yaml opentelemetry: logs", () => {
  it("renders the OpenTelemetry access logger beside the JSON log, to the collector's HTTP/2 cluster; valid against Envoy's API", () => {
    const envoy = renderEnvoy(parseGatewayConfig(OTEL, { env: {} }));
    expect(validateEnvoyConfig(envoy)).toMatchObject({ errors: [], warnings: [] });
    const logs = hcm(envoy).access_log;
    expect(logs.map((l: any) => l.name)).toEqual(["envoy.access_loggers.file", "envoy.access_loggers.open_telemetry"]);
    const otel = logs[1].typed_config;
    // Envoy 1.37's top-level log_name and grpc_service, not the deprecated common_config.
    expect(otel.common_config).toBeUndefined();
    expect(otel.log_name).toBe("sluice");
    expect(otel.grpc_service).toEqual({ envoy_grpc: { cluster_name: OTEL_CLUSTER } });
    // The old form still validates, with the deprecation Envoy would log.
    const old = structuredClone(envoy);
    const ol = hcm(old).access_log[1].typed_config;
    ol.common_config = { log_name: "sluice", transport_api_version: "V3", grpc_service: ol.grpc_service };
    delete ol.grpc_service;
    delete ol.log_name;
    expect(validateEnvoyConfig(old).warnings.join("\n")).toMatch(/common_config/);
    expect(otel.resource_attributes.values).toEqual([{ key: "service.name", value: { string_value: "gateway-eu" } }]);
    const attrs = Object.fromEntries(otel.attributes.values.map((v: any) => [v.key, v.value.string_value]));
    expect(attrs["gen_ai.request.model"]).toBe("%FILTER_STATE(wasm.sluice.request_model:PLAIN)%");
    expect(attrs["gen_ai.usage.output_tokens"]).toBe("%FILTER_STATE(wasm.sluice.completion_tokens:PLAIN)%");
    expect(attrs["sluice.ttft_ms"]).toBe("%FILTER_STATE(wasm.sluice.ttft_ms:PLAIN)%");
    const cluster = envoy.static_resources.clusters.find((c: any) => c.name === OTEL_CLUSTER);
    expect(cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address).toEqual({ address: "collector.observability.svc", port_value: 4317 });
    expect(cluster.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].explicit_http_config).toEqual({ http2_protocol_options: {} });
    expect(cluster.transport_socket).toBeUndefined();
    // The OpenTelemetry common types are read (cli/protos), so the logger is checked, not skipped.
    expect(skippedProtos.some((p) => p.includes("open_telemetry"))).toBe(false);
  });

  it("mock mode sends to docker compose's collector; tls reaches the collector over TLS; logs: false renders no logger", () => {
    const mock = renderEnvoy(parseGatewayConfig(OTEL, { env: {} }), { mock: true });
    const mc = mock.static_resources.clusters.find((c: any) => c.name === OTEL_CLUSTER);
    expect(mc.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address).toEqual({ address: "otel-collector", port_value: 4317 });
    const tls = renderEnvoy(parseGatewayConfig(`${OTEL}  tls: true\n  port: 443\n`, { env: {} }));
    expect(validateEnvoyConfig(tls)).toMatchObject({ errors: [] });
    const tc = tls.static_resources.clusters.find((c: any) => c.name === OTEL_CLUSTER);
    expect(tc.transport_socket.typed_config.sni).toBe("collector.observability.svc");
    const off = renderEnvoy(parseGatewayConfig(`${OTEL}  logs: false\n`, { env: {} }));
    expect(hcm(off).access_log.map((l: any) => l.name)).toEqual(["envoy.access_loggers.file"]);
    const none = renderEnvoy(parseGatewayConfig(MINIMAL_GATEWAY, { env: {} }));
    expect(none.static_resources.clusters.some((c: any) => c.name === OTEL_CLUSTER)).toBe(false);
  });

  it("refuses a bad address, port or service name", () => {
    expect(problemsOf(`${MINIMAL_GATEWAY}opentelemetry: { address: "http://x/y" }\n`).join("\n")).toMatch(/opentelemetry\.address/);
    expect(problemsOf(`${MINIMAL_GATEWAY}opentelemetry: { address: x, port: 70000 }\n`).join("\n")).toMatch(/opentelemetry\.port/);
    expect(problemsOf(`${MINIMAL_GATEWAY}opentelemetry: { address: x, service_name: "a b" }\n`).join("\n")).toMatch(/opentelemetry\.service_name/);
    expect(problemsOf(`${MINIMAL_GATEWAY}opentelemetry: { port: 4317 }\n`).join("\n")).toMatch(/opentelemetry.*address/);
  });

  it("every filter-state key the log reads is written by the filters for a request (nothing is logged as '-' that has a value)", async () => {
    const h = await proxyHost({ instances: [{ name: "oa", provider: "azure-openai", api_key: "k", endpoint: "https://x.openai.azure.com", deployment: "gpt-4o", api_version: "2024-10-21", models: ["gpt-4o"] }] });
    const s = send(h, "/v1/chat/completions", { model: "gpt-4o", messages: [{ role: "user", content: "hi" }] });
    answer(s, 200, "application/json", [JSON.stringify({ id: "c", object: "chat.completion", created: 1, model: "gpt-4o-2024-08-06", choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }], usage: { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 } })]);
    const read: Record<string, string | undefined> = {};
    for (const [attr, fmt] of Object.entries(GENAI_LOG_ATTRIBUTES)) read[attr] = s.getFilterState(fmt.match(/^%FILTER_STATE\(wasm\.(sluice\.[a-z_]+):PLAIN\)%$/)![1]);
    expect(read).toEqual({
      "gen_ai.operation.name": "chat",
      "gen_ai.provider.name": "azure.ai.openai",
      "gen_ai.request.model": "gpt-4o",
      "gen_ai.response.model": "gpt-4o-2024-08-06",
      "gen_ai.usage.input_tokens": "9",
      "gen_ai.usage.output_tokens": "2",
    });
    // Every filter-state field of the JSON access log is in the OpenTelemetry log once: under the
    // conventions' name, else as sluice.<field>.
    const attrs = openTelemetryLogAttributes();
    const json = hcm(renderEnvoy(parseGatewayConfig(OTEL, { env: {} }))).access_log[0].typed_config.log_format.json_format;
    const values = Object.values(attrs);
    for (const [k, v] of Object.entries<string>(json)) {
      if (!v.startsWith("%FILTER_STATE")) continue;
      expect(values.filter((x) => x === v).length, k).toBe(1);
      if (!Object.values(GENAI_LOG_ATTRIBUTES).includes(v)) expect(attrs[`sluice.${k}`], k).toBe(v);
    }
    h.close();
  });
});

describe("gateway.yaml opentelemetry: traces", () => {
  const TRACES = `${OTEL}  traces: { sampling_percent: 5 }\n`;

  it("renders OpenTelemetry tracing with the GenAI attributes as custom tags from filter state; valid for Envoy 1.37, refused for 1.36", () => {
    const envoy = renderEnvoy(parseGatewayConfig(TRACES, { env: {} }));
    const r = validateEnvoyConfig(envoy);
    expect(r).toMatchObject({ errors: [], warnings: [] });
    // The substitution-format custom tag is Envoy 1.37's (envoyproxy/envoy#41697).
    expect(r.newerFieldsUsed.filter((f) => f.startsWith("envoy.type.tracing.v3.CustomTag.value")).length).toBe(Object.keys(spanTags()).length);
    expect(validateEnvoyConfig(envoy, { envoyVersion: "1.36.4" }).errors.join("\n")).toMatch(/CustomTag\.value/);
    const t = hcm(envoy).tracing;
    expect(t.provider.name).toBe("envoy.tracers.opentelemetry");
    expect(t.provider.typed_config).toMatchObject({ service_name: "gateway-eu", grpc_service: { envoy_grpc: { cluster_name: OTEL_CLUSTER } } });
    expect(t.random_sampling).toEqual({ value: 5 });
    const tags = Object.fromEntries(t.custom_tags.map((c: any) => [c.tag, c.value]));
    expect(tags["gen_ai.operation.name"]).toBe("%FILTER_STATE(wasm.sluice.gen_ai_operation:PLAIN)%");
    expect(tags["gen_ai.usage.output_tokens"]).toBe("%FILTER_STATE(wasm.sluice.completion_tokens:PLAIN)%");
    expect(tags["sluice.ttft_ms"]).toBe("%FILTER_STATE(wasm.sluice.ttft_ms:PLAIN)%");
    // Without traces: no tracing block.
    expect(hcm(renderEnvoy(parseGatewayConfig(OTEL, { env: {} }))).tracing).toBeUndefined();
  });

  it("every span tag reads an access-log field (the same filter state, so what the log shows the span shows)", () => {
    const json = Object.values<string>(hcm(renderEnvoy(parseGatewayConfig(OTEL, { env: {} }))).access_log[0].typed_config.log_format.json_format);
    for (const [tag, v] of Object.entries(spanTags())) expect(json, tag).toContain(v);
  });

  it("the local gateway runs the rendered file, listing the OpenTelemetry logger and tracing as Envoy's only", () => {
    const envoy = renderEnvoy(parseGatewayConfig(TRACES, { env: {} }));
    const c = parseEnvoyConfig(stringify(envoy), ecdsReaderFor("envoy"));
    expect(c.notRun.map((n) => n.name)).toEqual(["tracing", "envoy.access_loggers.open_telemetry"]);
    expect(c.accessLog?.format).toHaveProperty("json");
  });
});

describe("docker compose profile otel", () => {
  it("runs a collector where envoy.mock.yaml sends, receiving logs and traces over OTLP/gRPC and scraping Envoy's metrics", () => {
    const compose = parse(readFileSync("envoy/docker-compose.yaml", "utf8"));
    const svc = compose.services[OTEL_COMPOSE_SERVICE];
    expect(svc.profiles).toEqual(["otel"]);
    expect(svc.expose).toContain("4317");
    const [dir, mounted] = svc.volumes[0].replace(/:ro$/, "").split(":");
    const configPath = svc.command[0].replace("--config=", "");
    expect(configPath.startsWith(mounted + "/")).toBe(true);
    const collector = parse(readFileSync(`envoy/${dir.replace(/^\.\//, "")}/${configPath.slice(mounted.length + 1)}`, "utf8"));
    expect(collector.receivers.otlp.protocols.grpc.endpoint).toBe("0.0.0.0:4317");
    const scrape = collector.receivers.prometheus.config.scrape_configs[0];
    expect(scrape.metrics_path).toBe("/stats/prometheus");
    expect(scrape.static_configs[0].targets).toEqual([`envoy:${compose.services.envoy.ports.find((p: string) => p.includes("9901")).split(":").at(-1)}`]);
    const p = collector.service.pipelines;
    expect(p.logs.receivers).toEqual(["otlp"]);
    expect(p.traces.receivers).toEqual(["otlp"]);
    expect(p.metrics.receivers).toEqual(["prometheus"]);
    for (const pipe of Object.values<any>(p)) for (const e of pipe.exporters) expect(collector.exporters, e).toHaveProperty(e);
  });
});
