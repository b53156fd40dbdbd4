// `npm run keys` on a temporary directory: the keys file written atomically with digests only, the
// secret printed once, rotation's grace period, revocation, the table, refusals, and the re-render.
import { describe, it, expect, beforeEach } from "vitest";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KeysCommandError, runKeys } from "../cli/keys.js";
import { readKeysFile } from "../cli/keys-file.js";

const GATEWAY = `
listener: { port: 10000 }
providers:
  - { name: openai, provider: openai, api_key_env: OPENAI_API_KEY, models: [gpt-4o, gpt-4o-mini] }
pools:
  - { name: fast, instances: [openai] }
virtual_keys: { file: keys.yaml }
`;
const NOW = Date.parse("2026-12-04T12:00:00Z");
const sha = (s: string) => createHash("sha256").update(s).digest("hex");

let dir: string;
const keys = (args: string[], now = NOW) => runKeys([...args, "--config", join(dir, "gateway.yaml"), "--out", join(dir, "envoy")], now);
const file = () => readKeysFile(join(dir, "keys.yaml"));

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "sluice-keys-cli-"));
  writeFileSync(join(dir, "gateway.yaml"), GATEWAY);
});

describe("npm run keys", () => {
  it("create prints the secret once, stores its digest only, and re-renders key-auth", () => {
    const r = keys(["create", "--id", "ci-bot", "--owner", "alice", "--team", "platform", "--expires", "30d", "--models", "gpt-4o*", "--pools", "fast", "--tokens", "1000/1h", "--budget", "5/month", "--meta", "purpose=ci", "--meta", "ticket=OPS-1"]);
    expect(r.out).toMatch(/^sk-sluice-ci-bot-[A-Za-z0-9_-]{43}$/);
    const text = readFileSync(join(dir, "keys.yaml"), "utf8");
    expect(text).not.toContain(r.out);
    expect(file().keys).toEqual([{
      id: "ci-bot", owner: "alice", team: "platform", created: "2026-12-04T12:00:00Z", expires: "2027-01-03T12:00:00Z",
      models: ["gpt-4o*"], pools: ["fast"], limits: [{ tokens: 1000, window: "1h" }, { budget: 5, window: "month" }],
      metadata: { purpose: "ci", ticket: "OPS-1" }, secrets: [{ sha256: sha(r.out) }],
    }]);
    // Written by rename: no temporary or lock file left behind.
    expect(readdirSync(dir).sort()).toEqual(["envoy", "gateway.yaml", "keys.yaml"]);
    const ecds = readFileSync(join(dir, "envoy", "ecds", "key-auth.yaml"), "utf8");
    expect(ecds).toContain(sha(r.out));
    expect(ecds).not.toContain(r.out);
    expect(readFileSync(join(dir, "envoy", "ecds", "ai-ratelimit.yaml"), "utf8")).toContain("vk-ci-bot-1");
    // Two keys never share a secret.
    expect(keys(["create", "--id", "other", "--owner", "alice"]).out).not.toBe(r.out);
  });

  it("rotate keeps the old secret for the grace period; --grace 0s drops it; old grace secrets are bounded", () => {
    const first = keys(["create", "--id", "k", "--owner", "alice"]).out;
    const second = keys(["rotate", "--id", "k", "--grace", "1h"]).out;
    expect(file().keys[0].secrets).toEqual([{ sha256: sha(second) }, { sha256: sha(first), expires: "2026-12-04T13:00:00Z" }]);
    // A second rotation within the grace period keeps the first old secret's earlier end.
    const third = keys(["rotate", "--id", "k", "--grace", "2h"], NOW + 60_000).out;
    expect(file().keys[0].secrets).toEqual([
      { sha256: sha(third) },
      { sha256: sha(second), expires: "2026-12-04T14:01:00Z" },
      { sha256: sha(first), expires: "2026-12-04T13:00:00Z" },
    ]);
    // Past their grace, old secrets are dropped at the next rotation.
    const fourth = keys(["rotate", "--id", "k"], NOW + 3 * 3_600_000).out;
    expect(file().keys[0].secrets).toEqual([{ sha256: sha(fourth) }, { sha256: sha(third), expires: "2026-12-04T16:00:00Z" }]);
    const fifth = keys(["rotate", "--id", "k", "--grace", "0s"]).out;
    expect(file().keys[0].secrets).toEqual([{ sha256: sha(fifth) }]);
  });

  it("list prints a table without secrets or digests; revoke removes the key", () => {
    const a = keys(["create", "--id", "a", "--owner", "alice", "--team", "t", "--models", "gpt-4o", "--expires", "1h"]).out;
    keys(["create", "--id", "b", "--owner", "bob"]);
    keys(["rotate", "--id", "b"]);
    const table = keys(["list"], NOW + 2 * 3_600_000 - 1).out;
    expect(table.split("\n")).toEqual([
      "id  owner  team  models  expires               created               state",
      "--  -----  ----  ------  --------------------  --------------------  -------",
      "a   alice  t     gpt-4o  2026-12-04T13:00:00Z  2026-12-04T12:00:00Z  expired",
      "b   bob    -     *       never                 2026-12-04T12:00:00Z  active",
    ]);
    expect(keys(["list"]).out).toContain("rotating (old secret until 2026-12-04T13:00:00Z)");
    expect(table).not.toContain(a);
    expect(table).not.toMatch(/[0-9a-f]{64}/);
    keys(["revoke", "--id", "a"]);
    expect(file().keys.map((k) => k.id)).toEqual(["b"]);
    expect(readFileSync(join(dir, "envoy", "ecds", "key-auth.yaml"), "utf8")).not.toContain(sha(a));
  });

  it("refuses mistakes, changing nothing", () => {
    keys(["create", "--id", "a", "--owner", "alice"]);
    const before = readFileSync(join(dir, "keys.yaml"), "utf8");
    const refusals: [string[], RegExp][] = [
      [["create", "--id", "a", "--owner", "x"], /a key with id 'a' exists/],
      [["create", "--id", "b"], /create needs --owner/],
      [["create", "--id", "b c", "--owner", "x"], /--id b c: 1 to 48 letters/],
      [["create", "--id", "b", "--owner", "x", "--tokens", "lots"], /--tokens lots: expected <amount>\/<window>/],
      [["create", "--id", "b", "--owner", "x", "--expires", "soon"], /--expires soon/],
      [["rotate", "--id", "nope"], /no key with id 'nope'/],
      [["rotate", "--id", "a", "--grace", "1y"], /'1y' is not a duration/],
      [["revoke"], /revoke needs --id/],
      [["delete", "--id", "a"], /expected one of create, list, rotate, revoke/],
    ];
    for (const [args, message] of refusals) {
      expect(() => keys(args)).toThrow(KeysCommandError);
      expect(() => keys(args)).toThrow(message);
    }
    // A key whose pool gateway.yaml does not have: render refuses, and the keys file is put back.
    expect(() => keys(["create", "--id", "b", "--owner", "x", "--pools", "slow"])).toThrow(/keys\.yaml:\d+:\d+: keys\[1\]\.pools\[0\]: no pool named 'slow'/);
    expect(readFileSync(join(dir, "keys.yaml"), "utf8")).toBe(before);
    expect(existsSync(join(dir, "keys.yaml.lock"))).toBe(false);
  });

  it("a gateway.yaml without virtual_keys is told how to add it; a held lock is refused", () => {
    writeFileSync(join(dir, "gateway.yaml"), GATEWAY.replace("virtual_keys: { file: keys.yaml }\n", ""));
    expect(() => keys(["list"])).toThrow(/names no keys file: add\n  virtual_keys: \{ file: keys\.yaml \}/);
    writeFileSync(join(dir, "gateway.yaml"), GATEWAY);
    writeFileSync(join(dir, "keys.yaml.lock"), "");
    expect(() => keys(["create", "--id", "a", "--owner", "alice"])).toThrow(/another keys command is running/);
  });

  it("npm run keys prints the secret alone on stdout and exits 2 on a usage mistake", () => {
    const run = (args: string[]) => spawnSync(process.execPath, ["--import", "tsx", "cli/keys.ts", ...args, "--config", join(dir, "gateway.yaml"), "--out", join(dir, "envoy")], { encoding: "utf8", timeout: 60_000 });
    const ok = run(["create", "--id", "x", "--owner", "alice"]);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/^sk-sluice-x-[A-Za-z0-9_-]{43}\n$/);
    expect(ok.stderr).toContain("printed once");
    const bad = run(["rotate"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("rotate needs --id");
    expect(bad.stderr).toContain("usage: npm run keys");
  });
});
