// The user's first five minutes, end to end: gateway.yaml -> render -> strict validation against
// Envoy's protos -> the local gateway run from that envoy.yaml (mock providers, since no key is set)
// -> the official `openai` client -> an access-log line with consumer, model, tokens and ttft_ms ->
// the same numbers at /stats/prometheus on the admin port.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { render } from "../../cli/render.js";
import { validateEnvoyYaml } from "../../cli/envoy-validate.js";
import { startLocalGateway, type LocalGateway } from "../../cli/start.js";
import { Host, HostLoadError } from "../../host/index.js";
import { extractTags } from "../../host/metrics.js";
import { compileAccessLog, type LogContext } from "../../host/access-log.js";

const GATEWAY_YAML = `
listener: { address: 127.0.0.1, port: 10000 }
admin: { port: 9901 }
access_log: { path: /dev/stdout }
timeouts: { first_byte: 1500ms, idle: 2s, connect: 2s }
consumers:
  - name: team-a
    keys: [sk-team-a]
providers:
  - name: openai
    provider: openai
    api_key_env: OPENAI_API_KEY
    # gpt-4o named literally: metrics label it (other names gpt-* lets through count as "other")
    models: ["gpt-4o", "gpt-*"]
  - name: claude
    provider: anthropic
    api_key_env: ANTHROPIC_API_KEY
    models: ["claude-*"]
`;

let dir: string;
let gw: LocalGateway;
const log: string[] = [];

function lastLog(): Record<string, unknown> {
  return JSON.parse(log.at(-1)!);
}

async function prometheus(): Promise<string> {
  const r = await fetch(`${gw.adminUrl}/stats/prometheus`);
  expect(r.status).toBe(200);
  return r.text();
}

/** The value of one Prometheus sample, by metric name and exact label set. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(",");
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (m[2].split(",").filter(Boolean).sort().join(",") === want) return Number(m[3]);
  }
  return undefined;
}

const client = () => new OpenAI({ apiKey: "sk-team-a", baseURL: `${gw.url}/v1`, maxRetries: 0 });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "sluice-e2e-"));
  writeFileSync(join(dir, "gateway.yaml"), GATEWAY_YAML);
  render({ config: join(dir, "gateway.yaml"), outDir: join(dir, "envoy"), env: {} });
  const validation = validateEnvoyYaml(readFileSync(join(dir, "envoy", "envoy.yaml"), "utf8"));
  expect(validation.errors).toEqual([]);
  gw = await startLocalGateway({ envoyYaml: join(dir, "envoy", "envoy.yaml"), port: 0, adminPort: 0, env: {}, accessLog: (l) => log.push(l) });
});

afterAll(async () => {
  await gw?.close();
});

describe("npm start's gateway, run from the rendered envoy.yaml", () => {
  it("serves every provider from a mock when no key is set", () => {
    expect(gw.providers.map((p) => [p.instance, p.mode, p.why])).toEqual([
      ["openai", "mock", "OPENAI_API_KEY not set"],
      ["claude", "mock", "ANTHROPIC_API_KEY not set"],
    ]);
  });

  it("official openai client -> access log with consumer, model, tokens, ttft_ms -> the same numbers in Prometheus", async () => {
    const r = await client().chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "Hello from the quick start" }] });
    expect(r.choices[0].message.content).toContain("Hello from the quick start");
    await new Promise((res) => setTimeout(res, 50)); // the log line is written as the stream completes
    const line = lastLog();
    expect(line).toMatchObject({
      method: "POST",
      path: "/v1/chat/completions",
      status: 200,
      response_code_details: "via_upstream",
      request_type: "ai_chat",
      consumer: "team-a",
      provider: "openai",
      instance: "openai",
      request_model: "gpt-4o",
      usage_source: "provider",
      prompt_tokens: String(r.usage!.prompt_tokens),
      completion_tokens: String(r.usage!.completion_tokens),
      total_tokens: String(r.usage!.total_tokens),
    });
    expect(line.model).toBe(r.model);
    expect(Number(line.ttft_ms)).toBeGreaterThanOrEqual(0);
    expect(typeof line.duration).toBe("number");
    expect(line.start_time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(line.request_id).toMatch(/^[0-9a-f-]{36}$/);
    // For an operator: the provider's own id (OpenAI's x-request-id), no Envoy flags, the host it
    // reached, numbers as JSON numbers; never a key.
    expect(line.provider_request_id).toMatch(/^req_[0-9a-f]{32}$/);
    expect(line.provider_request_id).not.toBe(line.request_id);
    expect(line).toMatchObject({ response_flags: "-", upstream_transport_failure_reason: null });
    expect(line.upstream_host).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(typeof line.bytes_received).toBe("number");
    expect(line.bytes_sent).toBeGreaterThan(0);
    expect(JSON.stringify(line)).not.toMatch(/sk-team-a|sk-real/);

    const prom = await prometheus();
    const who = { provider: "openai", model: "gpt-4o", consumer: "team-a" };
    expect(sample(prom, "sluice_ai_requests", { ...who, request_type: "ai_chat" })).toBe(1);
    expect(sample(prom, "sluice_ai_prompt_tokens", who)).toBe(Number(line.prompt_tokens));
    expect(sample(prom, "sluice_ai_completion_tokens", who)).toBe(Number(line.completion_tokens));
    expect(sample(prom, "sluice_ai_ttft_ms_count", { provider: "openai", model: "gpt-4o" })).toBe(1);
    expect(sample(prom, "sluice_ai_ttft_ms_sum", { provider: "openai", model: "gpt-4o" })).toBe(Number(line.ttft_ms));
    expect(prom).toMatch(/^# TYPE sluice_ai_requests counter$/m);
    expect(prom).toMatch(/^# TYPE sluice_ai_duration_ms histogram$/m);
    expect(prom).toMatch(/^sluice_key_auth_allowed\{\} \d+$/m);
    expect(prom).not.toContain(";"); // every label came out of the name
  });

  it("streams without buffering: the first chunk arrives long before the last", async () => {
    const started = Date.now();
    const stream = await client().chat.completions.create(
      { model: "claude-sonnet-4-5", messages: [{ role: "user", content: "one two three four five" }], stream: true, stream_options: { include_usage: true } },
      { headers: { "x-mock-inter-chunk-delay-ms": "150" } },
    );
    let first = 0;
    let text = "";
    for await (const chunk of stream) {
      if (!first && chunk.choices[0]?.delta?.content) first = Date.now() - started;
      text += chunk.choices[0]?.delta?.content ?? "";
    }
    const total = Date.now() - started;
    expect(text).toContain("one two three four five");
    expect(total - first).toBeGreaterThanOrEqual(500);
    await new Promise((res) => setTimeout(res, 50));
    expect(lastLog()).toMatchObject({ request_type: "ai_stream", provider: "anthropic", instance: "claude", consumer: "team-a" });
    expect(lastLog().provider_request_id).toMatch(/^req_011C/); // Anthropic's request-id
  });

  it("the first-byte timeout answers 504 when the provider goes silent before answering", async () => {
    const err = await client()
      .chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "x" }] }, { headers: { "x-mock-hang": "1" } })
      .catch((e) => e);
    expect(err.status).toBe(504);
    await new Promise((res) => setTimeout(res, 50));
    expect(lastLog()).toMatchObject({ status: 504, response_code_details: "upstream_per_try_timeout", consumer: "team-a" });
  });

  it("a rejected key is logged with status 401 and no usage (null, as Envoy's json_format prints unset values)", async () => {
    const err = await new OpenAI({ apiKey: "wrong", baseURL: `${gw.url}/v1`, maxRetries: 0 }).models.list().catch((e) => e);
    expect(err.status).toBe(401);
    await new Promise((res) => setTimeout(res, 50));
    expect(lastLog()).toMatchObject({ status: 401, consumer: null, prompt_tokens: null, ttft_ms: null });
  });

  it("admin /ready says LIVE", async () => {
    const r = await fetch(`${gw.adminUrl}/ready`);
    expect(r.status).toBe(200);
    expect(await r.text()).toBe("LIVE\n");
  });

  it("uses the real provider when its key variable is set", async () => {
    const real = await startLocalGateway({
      envoyYaml: join(dir, "envoy", "envoy.yaml"), port: 0, adminPort: 0, env: { OPENAI_API_KEY: "sk-real" }, accessLog: () => {},
    });
    try {
      expect(real.providers.map((p) => [p.instance, p.mode, p.url])).toEqual([
        ["openai", "real", "https://api.openai.com:443"],
        ["claude", "mock", real.mocks.claude.url],
      ]);
    } finally {
      await real.close();
    }
  });
});

describe("pieces of the local gateway, as Envoy defines them", () => {
  it("the VM sees only the environment its vm_config lists (WASI environ_get)", async () => {
    const filter = (env?: Record<string, string>) => ({
      name: "ai-proxy", wasm: "build/ai-proxy.wasm", allowOnHeadersStopIteration: true, env,
      configuration: { instances: [{ name: "o", provider: "openai", api_key_env: "SLUICE_TEST_KEY" }] },
    });
    process.env.SLUICE_TEST_KEY = "in-the-process-but-not-listed";
    try {
      const e = await Host.create({ filters: [filter()] }).catch((x) => x);
      expect(e).toBeInstanceOf(HostLoadError);
      expect(e.logs.join("\n")).toContain("environment variable SLUICE_TEST_KEY is not set for the Wasm VM");
      const h = await Host.create({ filters: [filter({ OTHER: "1", SLUICE_TEST_KEY: "sk-from-vm-env" })] });
      const s = h.newStream();
      s.callOnRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw", "content-type": "application/json" }, false);
      s.callOnRequestBody(JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "x" }] }), true);
      expect(s.upstream.headers).toContainEqual(["authorization", "Bearer sk-from-vm-env"]);
      h.close();
    } finally {
      delete process.env.SLUICE_TEST_KEY;
    }
  });

  it("stats_tags: the first group leaves the name, the second is the value", () => {
    const extractors = ["provider", "model", "consumer"].map((t) => ({ name: t, re: new RegExp(`(;${t}=([^;]*))`, "d") }));
    expect(extractTags("wasmcustom.sluice.ai_requests;provider=openai;model=gpt-4.1;consumer=team-a", extractors)).toEqual({
      name: "wasmcustom.sluice.ai_requests",
      tags: [["provider", "openai"], ["model", "gpt-4.1"], ["consumer", "team-a"]],
    });
  });

  it("access log: typed JSON, null for unset values, '-' in text formats, Envoy's START_TIME", () => {
    const ctx: LogContext = {
      startTimeNs: 1_700_000_000_123_456_789n,
      requestHeaders: [[":method", "GET"], [":path", "/x"], ["user-agent", "curl/8"]],
      responseHeaders: [[":status", "200"]],
      responseCode: 200,
      responseCodeDetails: "via_upstream",
      durationMs: 12,
      protocol: "HTTP/1.1",
      bytesReceived: 0,
      bytesSent: 5,
      upstreamCluster: null,
      responseFlags: [],
      upstreamHost: null,
      upstreamTransportFailureReason: null,
      filterState: (k) => (k === "wasm.sluice.consumer" ? "team-a" : undefined),
    };
    const json = compileAccessLog({
      json: { t: "%START_TIME%", s: "%START_TIME(%s.%3f)%", code: "%RESPONSE_CODE%", d: "%DURATION%", c: "%FILTER_STATE(wasm.sluice.consumer:PLAIN)%", m: "%FILTER_STATE(wasm.sluice.model:PLAIN)%", ua: "%REQ(X-MISSING?USER-AGENT):4%", mixed: "%RESPONSE_CODE% %UPSTREAM_CLUSTER%" },
    });
    expect(JSON.parse(json(ctx))).toEqual({ t: "2023-11-14T22:13:20.123Z", s: "1700000000.123", code: 200, d: 12, c: "team-a", m: null, ua: "curl", mixed: "200 -" });
    const text = compileAccessLog({ text: "[%START_TIME%] %REQ(:METHOD)% %FILTER_STATE(wasm.sluice.model:PLAIN)% %RESPONSE_CODE%\n" });
    expect(text(ctx)).toBe("[2023-11-14T22:13:20.123Z] GET - 200\n");
    // Envoy's operators for an operator's questions: flags "-" when none (JSON too), no host is null.
    const ops = compileAccessLog({ json: { f: "%RESPONSE_FLAGS%", h: "%UPSTREAM_HOST%", r: "%UPSTREAM_TRANSPORT_FAILURE_REASON%", b: "%BYTES_SENT%" } });
    expect(JSON.parse(ops(ctx))).toEqual({ f: "-", h: null, r: null, b: 5 });
    expect(JSON.parse(ops({ ...ctx, responseFlags: ["UF", "URX"], upstreamHost: "127.0.0.1:9", upstreamTransportFailureReason: "delayed connect error: Connection refused" }))).toEqual({
      f: "UF,URX", h: "127.0.0.1:9", r: "delayed connect error: Connection refused", b: 5,
    });
    expect(() => compileAccessLog({ text: "%NOT_AN_OPERATOR%" })).toThrow(/not supported/);
    expect(() => compileAccessLog({ text: "%FILTER_STATE(wasm.x)%" })).toThrow(/PLAIN/);
  });
});

describe("npm start (cli/start.ts) as a process", () => {
  it("prints where it listens and which providers are live, and on SIGTERM finishes in-flight streams before exiting", async () => {
    const { spawn } = await import("node:child_process");
    const env = { ...process.env };
    for (const k of ["OPENAI_API_KEY", "ANTHROPIC_API_KEY"]) delete env[k];
    const child = spawn(process.execPath, ["--import", "tsx", "cli/start.ts", "--no-build", "--no-render", "--envoy", join(dir, "envoy", "envoy.yaml"), "--port", "0", "--admin-port", "0"], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    let stdout = "";
    child.stdout.on("data", (d) => (stdout += d));
    const exited = new Promise<number | null>((res) => child.on("exit", (code) => res(code)));
    const url = await new Promise<string>((res, rej) => {
      child.stderr.on("data", (d) => {
        stderr += d;
        const m = /listening\s+(http:\/\/\S+)/.exec(stderr);
        if (m) res(m[1]);
      });
      child.on("exit", () => rej(new Error(`exited early:\n${stderr}`)));
    });
    expect(stderr).toMatch(/openai\s+MOCK\s+http:\/\/127\.0\.0\.1:\d+\s+\(OPENAI_API_KEY not set\)/);
    expect(stderr).toMatch(/admin\s+http:\/\/127\.0\.0\.1:\d+\/stats\/prometheus/);
    const c = new OpenAI({ apiKey: "sk-team-a", baseURL: `${url}/v1`, maxRetries: 0 });
    const stream = await c.chat.completions.create(
      { model: "gpt-4o", messages: [{ role: "user", content: "a b c d e f" }], stream: true },
      { headers: { "x-mock-inter-chunk-delay-ms": "100" } },
    );
    child.kill("SIGTERM");
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    expect(text).toBe("Echo: a b c d e f");
    expect(await exited).toBe(0);
    expect(stderr).toContain("SIGTERM: draining");
    // The stream's access-log line went to the configured path (stdout) before the exit.
    expect(JSON.parse(stdout.trim().split("\n").at(-1)!)).toMatchObject({ request_type: "ai_stream", consumer: "team-a", status: 200 });
  });
});
