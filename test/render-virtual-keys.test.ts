// gateway.yaml `virtual_keys: { file }`: the keys file read, checked with errors naming its file, line
// and field, and rendered into key-auth's virtual_keys (digests, expiries in epoch seconds, scopes) and
// ai-ratelimit rules keyed by the key.
import { describe, it, expect } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GatewayConfigError, parseGatewayConfig } from "../cli/gateway-config.js";
import { renderFiles, keyAuthJson } from "../cli/render.js";
import { parseRendered } from "./fixtures/ecds.js";
import { MINIMAL_GATEWAY } from "./fixtures/gateway-yaml.js";

const D1 = "a".repeat(64);
const D2 = "b".repeat(64);
const KEYS = `keys:
  - id: ci-bot
    owner: alice
    team: platform
    created: "2026-12-01T00:00:00Z"
    expires: "2027-01-01T00:00:00Z"
    models: ["gpt-4o*"]
    pools: [fast]
    limits:
      - { tokens: 100000, window: 1h }
      - { budget: 20, window: month, warn_at: 0.8 }
    metadata: { purpose: nightly CI }
    secrets:
      - { sha256: ${D1} }
      - { sha256: ${D2}, expires: "2026-12-02T00:00:00Z" }
`;
const POOLS = `pools:\n  - { name: fast, instances: [openai] }\n`;

function load(gateway: string, keys: string) {
  const dir = mkdtempSync(join(tmpdir(), "sluice-vk-render-"));
  writeFileSync(join(dir, "keys.yaml"), keys);
  return parseGatewayConfig(gateway, { env: {}, dir });
}

function refused(gateway: string, keys: string): GatewayConfigError {
  try {
    load(gateway, keys);
  } catch (e) {
    if (e instanceof GatewayConfigError) return e;
    throw e;
  }
  throw new Error("expected a refusal");
}

const WITH_KEYS = MINIMAL_GATEWAY + POOLS + "virtual_keys: { file: keys.yaml }\n";

describe("virtual keys: render", () => {
  it("key-auth gets ids, owners, teams, epoch expiries, digests and scopes; never metadata", () => {
    const cfg = load(WITH_KEYS, KEYS);
    expect(keyAuthJson(cfg).virtual_keys).toEqual([
      {
        id: "ci-bot", consumer: "alice", team: "platform", expires: 1798761600,
        secrets: [{ sha256: D1 }, { sha256: D2, expires: 1796169600 }],
        models: ["gpt-4o*"], pools: ["fast"],
      },
    ]);
    expect(JSON.stringify(keyAuthJson(cfg))).not.toContain("nightly");
  });

  it("a key's limits become ai-ratelimit rules keyed by the key (the filter is added when gateway.yaml has none)", () => {
    const cfg = load(WITH_KEYS, KEYS);
    expect(cfg.aiRatelimit?.json.rules).toEqual([
      { name: "vk-ci-bot-0", key: ["key"], when: { key: "ci-bot" }, window: "1h", limit: 100000 },
      { name: "vk-ci-bot-1", key: ["key"], when: { key: "ci-bot" }, window: "month", strategy: "cost", budget: 20, warn_at: 0.8 },
    ]);
    const files = renderFiles(cfg);
    const local = parseRendered(files);
    expect(local.filters.map((f) => f.name)).toEqual(["key-auth", "ai-ratelimit", "ai-proxy"]);
    expect(JSON.parse(local.filters[0].configuration).virtual_keys[0].id).toBe("ci-bot");
    // Appended after gateway.yaml's own rules.
    const own = load(WITH_KEYS + "filters:\n  ai_ratelimit:\n    rules:\n      - { name: mine, key: [team], limit: 5, window: 1m }\n", KEYS);
    expect((own.aiRatelimit?.json.rules as { name: string }[]).map((r) => r.name)).toEqual(["mine", "vk-ci-bot-0", "vk-ci-bot-1"]);
  });

  it("keys' own limits stay with each Envoy's counters when gateway.yaml distributes its rules", () => {
    const d = WITH_KEYS + "filters:\n  ai_ratelimit:\n    distributed: { service: { address: ratelimit, port: 8081 } }\n    rules:\n      - { name: mine, key: [key], limit: 5, window: 1m }\n";
    const cfg = load(d, KEYS);
    expect(cfg.aiRatelimit?.distributed?.rules.map((r) => [r.name, r.parts])).toEqual([["mine", ["key"]]]);
    expect(renderFiles(cfg)["envoy.yaml"]).toContain("wasm.sluice.key_id");
  });

  it("an empty or missing keys file is no keys; key-auth needs no consumers then", () => {
    const noConsumers = WITH_KEYS.replace(/consumers:\n  - name: team-a\n    keys: \[key-a\]\n/, "");
    expect(keyAuthJson(load(noConsumers, "keys: []\n"))).toEqual({ consumers: [], virtual_keys: [] });
    const dir = mkdtempSync(join(tmpdir(), "sluice-vk-none-"));
    expect(parseGatewayConfig(WITH_KEYS, { env: {}, dir }).virtualKeys?.keys).toEqual([]);
  });

  it("group rules apply to a key's team without identity.groups", () => {
    const g = WITH_KEYS + "filters:\n  ai_ratelimit:\n    rules:\n      - { name: teams, key: [group], limit: 5, window: 1m }\n";
    expect(load(g, KEYS).aiRatelimit).not.toBeNull();
    expect(refused(g, KEYS.replace("    team: platform\n", "")).message).toMatch(/rules\[0\]: keyed by or conditioned on group/);
  });
});

describe("virtual keys: validation names the file, line and field", () => {
  const cases: [string, string, RegExp][] = [
    ["bad id", KEYS.replace("id: ci-bot", "id: ci bot"), /^keys\.yaml:2:9: keys\[0\]\.id: must be 1 to 48 letters/m],
    ["bad expiry", KEYS.replace('expires: "2027-01-01T00:00:00Z"', "expires: tomorrow"), /keys\.yaml:6:14: keys\[0\]\.expires: must be a UTC time/],
    ["plain secret", KEYS.replace(`sha256: ${D1}`, "sha256: sk-sluice-oops"), /keys\[0\]\.secrets\[0\]\.sha256: must be 64 lower-case hex characters/],
    ["limit with both", KEYS.replace("{ tokens: 100000, window: 1h }", "{ tokens: 1, budget: 1, window: 1h }"), /keys\[0\]\.limits\[0\]: give tokens .* or budget .*, exactly one/],
    ["bad window", KEYS.replace("window: 1h", "window: 1y"), /keys\[0\]\.limits\[0\]\.window: must be a duration/],
    ["unknown field", KEYS.replace("    team: platform\n", "    tema: platform\n"), /keys\[0\]\.tema: unknown field/],
    ["metadata too long", KEYS.replace("purpose: nightly CI", `purpose: "${"x".repeat(257)}"`), /keys\[0\]\.metadata\.purpose: must be a string of at most 256/],
    ["unknown pool", KEYS.replace("pools: [fast]", "pools: [slow]"), /keys\.yaml:8:13: keys\[0\]\.pools\[0\]: no pool named 'slow'/],
    ["scope with comma", KEYS.replace('models: ["gpt-4o*"]', 'models: ["a,b"]'), /keys\[0\]\.models\[0\]: must be a name/],
    ["duplicate id", KEYS + KEYS.replace("keys:\n", "").replace(D1, "c".repeat(64)).replace(D2, "d".repeat(64)), /keys\[1\]\.id: duplicate id 'ci-bot'/],
  ];
  it.each(cases)("%s", (_name, keys, message) => {
    const e = refused(WITH_KEYS, keys);
    expect(e.message).toMatch(message);
    expect(e.message).not.toContain("sk-sluice-oops");
  });

  it("gateway.yaml's own fields", () => {
    expect(refused(MINIMAL_GATEWAY + "virtual_keys: { path: keys.yaml }\n", KEYS).message).toMatch(/gateway\.yaml:\d+:\d+: virtual_keys\.path: unknown field/);
    expect(refused(MINIMAL_GATEWAY + POOLS + "virtual_keys: { file: keys.yaml }\nfilters:\n  key_auth: { enabled: false }\n", KEYS).message).toMatch(/virtual_keys: virtual keys are checked by key-auth/);
    expect(refused(WITH_KEYS + "filters:\n  ai_ratelimit: { enabled: false }\n", KEYS).message).toMatch(/virtual_keys: keys in the keys file have limits/);
    expect(refused(WITH_KEYS + "filters:\n  ai_ratelimit:\n    rules:\n      - { name: vk-mine, limit: 5, window: 1m }\n", KEYS).message).toMatch(/filters\.ai_ratelimit\.rules\[0\]\.name: names starting with 'vk-'/);
    expect(refused(MINIMAL_GATEWAY + "filters:\n  ai_ratelimit:\n    rules:\n      - { name: r, key: [kee], limit: 5, window: 1m }\n", KEYS).message).toMatch(/key \(a virtual key.s id\), team/);
  });
});
