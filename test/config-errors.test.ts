// A careless operator's gateway.yaml: every mistake is one line naming the file, the line and the
// field, from the config reader, `npm run render` and `npm start` alike; never a stack trace.
import { describe, it, expect } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GatewayConfigError, GatewayConfigReadError, loadGatewayConfig, parseGatewayConfig } from "../cli/gateway-config.js";
import { configRefusals, gatewayField } from "../cli/start.js";

const routerYaml = (regex: string) => `listener: { address: 127.0.0.1, port: 10000 }
consumers: [{ name: a, keys: [sk-a] }]
providers: [{ name: openai, provider: openai, api_key_env: OPENAI_API_KEY, models: ["gpt-*"] }]
pools: [{ name: p, instances: [openai] }]
filters:
  ai_router:
    rules:
      - name: r
        pool: p
        when: { regex: ${JSON.stringify(regex)} }
`;

function run(script: string, args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", script, ...args], { encoding: "utf8", env: { ...process.env, OPENAI_API_KEY: "" }, timeout: 60_000 });
  return { status: r.status, stderr: r.stderr };
}

describe("config errors: file, line, field, one line each", () => {
  it("a missing or unreadable gateway.yaml is one line naming the path, not an ENOENT stack", () => {
    const dir = mkdtempSync(join(tmpdir(), "sluice-cfg-"));
    const missing = join(dir, "gateway.yaml");
    expect(() => loadGatewayConfig(missing)).toThrow(GatewayConfigReadError);
    expect(() => loadGatewayConfig(missing)).toThrow(`${missing}: cannot read: no such file (give the configuration with --config <file>) (ENOENT)`);
    expect(() => loadGatewayConfig(dir)).toThrow(`${dir}: cannot read: is a directory, not a file (EISDIR)`);

    const render = run("cli/render.ts", ["--config", missing, "--out", join(dir, "out")]);
    expect(render.status).toBe(1);
    expect(render.stderr.trim()).toBe(`render: ${missing}: cannot read: no such file (give the configuration with --config <file>) (ENOENT)`);
    const start = run("cli/start.ts", ["--no-build", "--config", missing, "--envoy", join(dir, "envoy", "envoy.yaml")]);
    expect(start.status).toBe(1);
    expect(start.stderr.trim()).toBe(`${missing}: cannot read: no such file (give the configuration with --config <file>) (ENOENT)`);
  });

  it("a regex that cannot parse is refused by the reader with its line and field", () => {
    let err: unknown;
    try {
      parseGatewayConfig(routerYaml("a(b"), { env: {} });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GatewayConfigError);
    expect((err as Error).message).toBe('gateway.yaml:10:24: filters.ai_router.rules[0].when.regex: invalid regular expression "a(b": Unterminated group');
    // Lists, header and path regexes too; flags at the start are ai-router's syntax, not an error.
    const more = routerYaml("x").replace('{ regex: "x" }', '{ any: [{ regex: ["(?i)ok", "*bad"] }, { header: { name: x-a, regex: "[z-a]" } }] }');
    expect(() => parseGatewayConfig(more, { env: {} })).toThrow(
      /filters\.ai_router\.rules\[0\]\.when\.any\[0\]\.regex\[1\]: invalid regular expression "\*bad".*\n.*filters\.ai_router\.rules\[0\]\.when\.any\[1\]\.header\.regex: invalid regular expression "\[z-a\]"/,
    );
  });

  it("what only the filter refuses (a repetition over ai-router's limit) comes back from npm start with the gateway.yaml line and field", () => {
    const dir = mkdtempSync(join(tmpdir(), "sluice-cfg-"));
    writeFileSync(join(dir, "gateway.yaml"), routerYaml("a{1001}"));
    const start = run("cli/start.ts", ["--no-build", "--config", join(dir, "gateway.yaml"), "--envoy", join(dir, "envoy", "envoy.yaml"), "--port", "0", "--admin-port", "0"]);
    expect(start.status).toBe(1);
    expect(start.stderr.trim().split("\n")).toEqual([
      "gateway.yaml:10:24: filters.ai_router.rules[0].when.regex: invalid regular expression: repetition count over 1000 at offset 7 (ai-router refused its configuration)",
      "nothing was started.",
    ]);
    expect(start.stderr).not.toMatch(/\n\s+at /);
  });

  it("what only ai-guard refuses (a custom pattern over the engine's limits) comes back from npm start with the gateway.yaml line and field", () => {
    const dir = mkdtempSync(join(tmpdir(), "sluice-cfg-"));
    const yaml = routerYaml("x").replace(/  ai_router:[\s\S]*$/, "  ai_guard:\n    custom:\n      - { name: t, regex: \"a{1001}\" }\n");
    writeFileSync(join(dir, "gateway.yaml"), yaml);
    const start = run("cli/start.ts", ["--no-build", "--config", join(dir, "gateway.yaml"), "--envoy", join(dir, "envoy", "envoy.yaml"), "--port", "0", "--admin-port", "0"]);
    expect(start.status).toBe(1);
    expect(start.stderr.trim().split("\n")).toEqual([
      "gateway.yaml:8:27: filters.ai_guard.custom[0].regex: repetition count over 1000 at offset 7 (ai-guard refused its configuration)",
      "nothing was started.",
    ]);
  });

  it("maps each filter's configuration field to gateway.yaml's", () => {
    expect(gatewayField("ai-guard.consumers.alice.detectors.email")).toBe("filters.ai_guard.consumers.alice.detectors.email");
    expect(gatewayField("ai-router.rules[2].when.any[0].regex")).toBe("filters.ai_router.rules[2].when.any[0].regex");
    expect(gatewayField("ai-proxy.instances[1].endpoint")).toBe("providers[1].endpoint");
    expect(gatewayField("ai-proxy.pools[0].algorithm")).toBe("pools[0].algorithm");
    expect(gatewayField("ai-proxy.fallback.on[0]")).toBe("filters.ai_proxy.fallback.on[0]");
    expect(gatewayField("key-auth.consumers[0].keys")).toBe("consumers[0].keys");
    expect(gatewayField("key-auth.virtual_keys[3].secrets[0].sha256")).toBe("virtual_keys");
    expect(gatewayField("identity.sources[1].mtls")).toBe("identity.sources[1].mtls");
    expect(gatewayField("something-else.x")).toBeNull();
    expect(configRefusals(["ai-router: loaded"], "/nonexistent/gateway.yaml")).toBeNull();
  });
});
