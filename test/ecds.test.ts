// Item 9 of issue 15: each wasm filter's configuration delivered by ECDS from a watched file.
import { describe, it, expect, beforeAll } from "vitest";
import { readFileSync } from "node:fs";
import { parse, stringify } from "yaml";
import { loadGatewayConfig } from "../cli/gateway-config.js";
import { renderEcds, renderEnvoy, renderFiles } from "../cli/render.js";
import { loadEnvoyApi, validateEcdsYaml, validateEnvoyYaml } from "../cli/envoy-validate.js";
import { EnvoyConfigError, loadEnvoyConfig, parseEnvoyConfig } from "../host/envoy-config.js";
import { ecdsReaderOf } from "./fixtures/ecds.js";

const WASM = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const hcm = (c: any) => c.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;

beforeAll(() => {
  loadEnvoyApi();
});

describe("ECDS: the wasm filters' configurations in watched files", () => {
  const cfg = loadGatewayConfig("gateway.yaml", { env: {} });

  it("each Sluice filter in envoy.yaml is a config_discovery entry: path_config_source with watched_directory, V3, the Wasm type url, no default", () => {
    for (const [mock, dir] of [[false, "/etc/sluice/ecds"], [true, "/etc/sluice/ecds-mock"]] as const) {
      const filters = hcm(renderEnvoy(cfg, { mock })).http_filters;
      expect(filters.slice(0, 4)).toEqual(["key-auth", "ai-router", "ai-ratelimit", "ai-proxy"].map((f) => ({
        name: `sluice.${f.replace(/-/g, "_")}`,
        config_discovery: {
          config_source: { resource_api_version: "V3", path_config_source: { path: `${dir}/${f}.yaml`, watched_directory: { path: dir } } },
          type_urls: [WASM],
        },
      })));
      expect(filters[4].name).toBe("envoy.filters.http.router");
    }
  });

  it("each ECDS file is a DiscoveryResponse with one TypedExtensionConfig named as the filter; the validator accepts it and envoy.yaml", () => {
    const files = renderFiles(cfg);
    expect(validateEnvoyYaml(files["envoy.yaml"]).errors).toEqual([]);
    for (const [rel, doc] of Object.entries(renderEcds(cfg))) {
      const name = `sluice.${rel.slice("ecds/".length, -".yaml".length).replace(/-/g, "_")}`;
      expect(doc).toMatchObject({ version_info: expect.stringMatching(/^[0-9a-f]{16}$/), resources: [{ "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig", name, typed_config: { "@type": WASM } }] });
      const r = validateEcdsYaml(files[rel], name);
      expect(r.errors, rel).toEqual([]);
      expect(r.warnings, rel).toEqual([]);
    }
  });

  it("the validator rejects what Envoy's ECDS rejects: another name, two resources, an unknown field", () => {
    const text = readFileSync("envoy/ecds/key-auth.yaml", "utf8");
    expect(validateEcdsYaml(text, "sluice.ai_proxy").errors).toEqual(["resources[0].name: sluice.key_auth is not the http filter's name sluice.ai_proxy"]);
    const doc = parse(text);
    expect(validateEcdsYaml(stringify({ ...doc, resources: [doc.resources[0], doc.resources[0]] }), "sluice.key_auth").errors).toEqual([
      "resources: Envoy expects exactly one TypedExtensionConfig, found 2",
    ]);
    expect(validateEcdsYaml(stringify({ ...doc, versionn: "1" }), "sluice.key_auth").errors).toEqual([
      "versionn: unknown field 'versionn' in envoy.service.discovery.v3.DiscoveryResponse",
    ]);
  });

  it("a new version_info when, and only when, the filter's configuration changes", () => {
    const a = renderEcds(cfg);
    const more = loadGatewayConfig("gateway.yaml", { env: {} });
    more.aiRatelimit!.json.rules = [{ ...(more.aiRatelimit!.json.rules as any[])[0], limit: 10 }];
    const b = renderEcds(more);
    expect(b["ecds/ai-ratelimit.yaml"].version_info).not.toBe(a["ecds/ai-ratelimit.yaml"].version_info);
    expect(b["ecds/key-auth.yaml"].version_info).toBe(a["ecds/key-auth.yaml"].version_info);
  });

  it("the local gateway reads the filters from the ECDS files envoy.yaml names", () => {
    const c = loadEnvoyConfig("envoy/envoy.yaml");
    expect(c.filters.map((f) => f.name)).toEqual(["key-auth", "ai-router", "ai-ratelimit", "ai-proxy"]);
    expect(JSON.parse(c.filters[0].configuration).consumers[0].name).toBe("demo");
  });

  it("the local gateway refuses, as Envoy's ECDS does, a file with another resource name or type url, and a source it cannot read", () => {
    const files = renderFiles(cfg);
    const other = { ...files, "ecds/key-auth.yaml": files["ecds/key-auth.yaml"].replace("name: sluice.key_auth", "name: sluice.other") };
    expect(() => parseEnvoyConfig(files["envoy.yaml"], ecdsReaderOf(other))).toThrow(EnvoyConfigError);
    expect(() => parseEnvoyConfig(files["envoy.yaml"], ecdsReaderOf(other))).toThrow(
      "/etc/sluice/ecds/key-auth.yaml: Unexpected resource name in ExtensionConfigDS response: sluice.other (the filter is sluice.key_auth)",
    );
    const router = { ...files, "ecds/key-auth.yaml": files["ecds/key-auth.yaml"].replace(`"@type": ${WASM}`, '"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router') };
    expect(() => parseEnvoyConfig(files["envoy.yaml"], ecdsReaderOf(router))).toThrow(/filter config has type URL type\.googleapis\.com\/envoy\.extensions\.filters\.http\.router\.v3\.Router but expect/);
    const ads = files["envoy.yaml"].replace(/path_config_source:\n.*\n.*\n.*\n/, "ads: {}\n");
    expect(() => parseEnvoyConfig(ads, ecdsReaderOf(files))).toThrow(/http_filters\[0\]\.config_discovery: the local gateway reads path_config_source only/);
  });
});
