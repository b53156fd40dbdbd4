// Every command reads its flags with node's util.parseArgs: --help documents each flag, an unknown flag
// is refused with the usage text (exit 2) instead of being ignored.
import { describe, it, expect } from "vitest";
import { spawnSync } from "node:child_process";

const TSX = ["--import", "tsx"];
const COMMANDS: { name: string; argv: string[]; flags: string[] }[] = [
  { name: "render", argv: [...TSX, "cli/render.ts"], flags: ["--config", "--out"] },
  { name: "start", argv: [...TSX, "cli/start.ts"], flags: ["--port", "--admin-port", "--config", "--envoy", "--no-render", "--no-build", "--mock", "--no-mock"] },
  { name: "mocks", argv: [...TSX, "scripts/mocks/cli.ts"], flags: ["--port", "--host", "--ports", "--api-key"] },
  { name: "build", argv: ["scripts/build.mjs"], flags: ["--if-needed", "--src", "--out"] },
  { name: "oci", argv: [...TSX, "cli/oci.ts"], flags: ["--build", "--out"] },
  { name: "spend", argv: [...TSX, "cli/spend.ts"], flags: ["--admin", "--by", "--window", "--currency"] },
  { name: "keys", argv: [...TSX, "cli/keys.ts"], flags: ["create", "list", "rotate", "revoke", "--id", "--owner", "--team", "--expires", "--models", "--pools", "--tokens", "--budget", "--meta", "--grace", "--config", "--out", "--no-render"] },
  { name: "bench", argv: ["scripts/bench/run.mjs"], flags: ["--filters", "--gateway", "--memory", "--soak", "--long-stream", "--report", "--no-build", "--profile", "--only", "--rounds", "--seconds", "--ab"] },
  { name: "bench filters", argv: [...TSX, "scripts/bench/filters.ts"], flags: ["--only", "--rounds", "--warmup", "--round-ms", "--wasm-dir", "--json", "--ab"] },
  { name: "bench gateway", argv: [...TSX, "scripts/bench/gateway.ts"], flags: ["--rounds", "--duration", "--concurrency", "--modes", "--setups", "--watchdog"] },
  { name: "bench memory", argv: [...TSX, "scripts/bench/memory.ts"], flags: ["--requests", "--every", "--warmup", "--no-gc-each"] },
  { name: "bench soak", argv: [...TSX, "scripts/bench/soak.ts"], flags: ["--seconds", "--json"] },
  { name: "bench long-stream", argv: [...TSX, "scripts/bench/long-stream.ts"], flags: ["--host"] },
];

const run = (argv: string[]) => spawnSync(process.execPath, argv, { encoding: "utf8", timeout: 60_000 });

describe("--help and unknown flags on every command", () => {
  it.each(COMMANDS)("$name --help documents every flag and exits 0", ({ argv, flags }) => {
    const r = run([...argv, "--help"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: /);
    for (const f of [...flags, "--help"]) expect(r.stdout).toContain(f);
  });

  it.each(COMMANDS)("$name refuses an unknown flag with the usage text, starting nothing", ({ argv }) => {
    const r = run([...argv, "--prot", "10001"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("Unknown option '--prot'");
    expect(r.stderr).toContain("usage: ");
    expect(r.stdout).toBe("");
  });

  it("start refuses a --port that is not a port number", () => {
    const r = run([...TSX, "cli/start.ts", "--no-build", "--no-render", "--port", "http"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("--port http is not a port number");
  });
});
