// Build checks: every filter Sluice ships would load in Envoy (ABI 0.2.1 marker, malloc, and no
// import outside what Envoy provides); a filter that imports anything else fails the build.
import { describe, it, expect } from "vitest";
import { readdirSync, readFileSync, mkdtempSync, statSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { spawnSync } from "node:child_process";
import { checkModule, ENVOY_HOST_FUNCTIONS, ENVOY_WASI_FUNCTIONS } from "../host/envoy-abi.mjs";

const filters = readdirSync("assembly/filters").filter((d) => statSync(join("assembly/filters", d)).isDirectory());

describe("built filters", () => {
  it("builds one module per filter folder", () => {
    expect(filters.length).toBeGreaterThan(0);
    for (const f of filters) expect(statSync(`build/${f}.wasm`).size).toBeGreaterThan(0);
  });

  for (const f of filters) {
    it(`${f}.wasm exports the ABI marker and malloc and imports only what Envoy provides`, () => {
      const bytes = readFileSync(`build/${f}.wasm`);
      expect(checkModule(bytes)).toEqual([]);
      const mod = new WebAssembly.Module(bytes);
      const exports = WebAssembly.Module.exports(mod).map((e) => e.name);
      expect(exports).toContain("proxy_abi_version_0_2_1");
      expect(exports).toContain("malloc");
      for (const imp of WebAssembly.Module.imports(mod)) {
        const ok = (imp.module === "env" && ENVOY_HOST_FUNCTIONS.has(imp.name)) ||
          (imp.module === "wasi_snapshot_preview1" && ENVOY_WASI_FUNCTIONS.has(imp.name));
        expect(ok, `${imp.module}.${imp.name}`).toBe(true);
      }
      // Issue 8 set 200 KB per module. ai-proxy passed it when it took four client APIs (Chat
      // Completions, Messages, Responses, Gemini's) and structured output across providers: 216 KB,
      // of which 97 KB are data (AssemblyScript keeps string literals, mostly the clients' error
      // messages, as UTF-16). Envoy compiles a module once per worker. Amazon Bedrock (its
      // translation, SigV4 and the AWS event stream reader: 11 KB) and Entra ID tokens took ai-proxy
      // to 261 KB, which V8 compiles in 1 to 2 ms. Building at shrink level 0 (docs/architecture.md,
      // "How the modules are built") took it from 277 to 353 KB for 18-28 % less time per request
      // in wasm; V8 (Node 20) compiles it in 1.5 ms instead of 1.3 (lazily, as by default; eagerly
      // with Liftoff 6.2 instead of 5.9; TurboFan alone 109 instead of 90). 384 KB is the bound now.
      expect(bytes.length).toBeLessThan(384 * 1024);
    });
  }
});

// The stream callbacks each module exports: those it has work in (assembly/lib/abi-exports.ts).
// Envoy skips a callback a module does not export (proxy-wasm-cpp-host ContextBase::onResponseBody
// and the like), so a streamed answer's chunks cross into ai-proxy alone of these five.
const STREAM_CALLBACKS: Record<string, string[]> = {
  "key-auth": ["proxy_on_request_headers"],
  identity: ["proxy_on_request_headers"],
  "ai-router": ["proxy_on_request_headers", "proxy_on_request_body", "proxy_on_request_trailers", "proxy_on_response_headers"],
  "ai-ratelimit": ["proxy_on_request_headers", "proxy_on_request_body", "proxy_on_request_trailers", "proxy_on_response_headers"],
  "ai-proxy": ["proxy_on_request_headers", "proxy_on_request_body", "proxy_on_response_headers", "proxy_on_response_body"],
};

describe("stream callbacks exported", () => {
  for (const [f, expected] of Object.entries(STREAM_CALLBACKS)) {
    it(`${f}.wasm exports only the stream callbacks it has work in, and every stream's end`, () => {
      const names = WebAssembly.Module.exports(new WebAssembly.Module(readFileSync(`build/${f}.wasm`))).map((e) => e.name);
      expect(names.filter((n) => /^proxy_on_(request|response)_/.test(n)).sort()).toEqual([...expected].sort());
      for (const n of ["proxy_on_context_create", "proxy_on_log", "proxy_on_done", "proxy_on_delete", "malloc"]) expect(names).toContain(n);
    });
  }
});

describe("the build refuses a module Envoy would not load", () => {
  it("fails with a message naming the foreign import", () => {
    const out = mkdtempSync(join(tmpdir(), "sluice-bad-"));
    const r = spawnSync(process.execPath, ["scripts/build.mjs", "--src", "test/fixtures/bad-filters", "--out", out], { encoding: "utf8" });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/uses-date\.wasm would not load in Envoy/);
    expect(r.stderr).toMatch(/imports env\.Date\.now, which Envoy does not provide/);
  });

  it("names a missing ABI marker and a missing malloc", () => {
    // The smallest valid module: no exports at all.
    const empty = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
    const problems = checkModule(empty);
    expect(problems.join("\n")).toMatch(/proxy_abi_version_0_2_1/);
    expect(problems.join("\n")).toMatch(/malloc/);
  });
});

describe("a build prints only what needs reading", () => {
  it("key-auth: one line per module, no optimizer note (asc's 'Last converge was suboptimal.')", () => {
    const out = mkdtempSync(join(tmpdir(), "sluice-build-"));
    const r = spawnSync(process.execPath, ["scripts/build.mjs", "--src", "assembly/filters", "--out", out, "key-auth"], { encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/^build: \S+key-auth\.wasm [\d.]+ KiB \(\d+ ms\)\n$/);
  }, 120_000);
});
