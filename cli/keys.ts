// `npm run keys -- create|list|rotate|revoke`: virtual keys in the keys file gateway.yaml names
// (virtual_keys.file), docs/virtual-keys.md. Each edit writes the keys file atomically and re-renders
// the Envoy files (key-auth's and ai-ratelimit's ECDS files change; Envoy and npm start take them up
// without a restart). A secret is printed once, on create and rotate, and never stored: the file keeps
// its SHA-256 digest.
import { createHash, randomBytes } from "node:crypto";
import { dirname, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseDocument } from "yaml";
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { commandLine, type FlagSpec } from "./command-line.js";
import { GatewayConfigError, GatewayConfigReadError } from "./gateway-config.js";
import { ID_PATTERN, epochSeconds, isoSeconds, readKeysFile, withKeysLock, writeKeysFile, MAX_SECRETS, type KeyLimit, type VirtualKeyEntry } from "./keys-file.js";
import { EnvoyValidationError, render } from "./render/files.js";

const USAGE = `usage: npm run keys -- <create|list|rotate|revoke> [options]
Virtual keys in the keys file gateway.yaml names (virtual_keys: { file: keys.yaml }). Every change
is written atomically and re-rendered; a running gateway takes it up without a restart.

  create --id <id> --owner <consumer>   a new key; its secret is printed once, never stored
      [--team <team>] [--expires <30d | 2027-01-31T00:00:00Z>]
      [--models <gpt-4o,claude-*>] [--pools <fast,cheap>]
      [--tokens <100000/1h>] [--budget <20/month>] [--meta <name=value>]...
  list                                  id, owner, team, models, expiry, created, state (never a secret)
  rotate --id <id> [--grace <1h>]       a new secret, valid at once; the old one stays valid for the
                                        grace period (default 1h; 0s: refused at once)
  revoke --id <id>                      removes the key (refused as soon as the gateway reloads)

  --config <file>     the gateway configuration (default: gateway.yaml)
  --out <dir>         where the rendered files go (default: envoy)
  --no-render         only write the keys file
  -h, --help          this text`;

const FLAGS = {
  config: { type: "string" },
  out: { type: "string" },
  "no-render": { type: "boolean" },
  id: { type: "string" },
  owner: { type: "string" },
  team: { type: "string" },
  expires: { type: "string" },
  models: { type: "string" },
  pools: { type: "string" },
  tokens: { type: "string" },
  budget: { type: "string" },
  meta: { type: "string", multiple: true },
  grace: { type: "string" },
} satisfies FlagSpec;

export class KeysCommandError extends Error {}

/** "30s" | "15m" | "1h" | "30d" -> milliseconds. */
export function durationMs(d: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(d);
  if (!m) throw new KeysCommandError(`'${d}' is not a duration (e.g. 30s, 15m, 1h, 30d)`);
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "s" | "m" | "h" | "d"];
}

/** A new secret: sk-sluice-<id>-<43 characters of base64url from 32 random bytes (CSPRNG)>. */
export function newSecret(id: string): string {
  return `sk-sluice-${id}-${randomBytes(32).toString("base64url")}`;
}

export function digest(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

function list(v: string | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  const out = v.split(",").map((s) => s.trim()).filter(Boolean);
  if (out.length === 0) throw new KeysCommandError("an empty list (leave the option out for no restriction)");
  return out;
}

/** "100000/1h" -> { tokens, window }; "20/month" -> { budget, window }. */
function limit(v: string, kind: "tokens" | "budget"): KeyLimit {
  const m = /^([0-9]+(?:\.[0-9]+)?)\/([1-9][0-9]*[smhd]|week|month)$/.exec(v);
  if (!m) throw new KeysCommandError(`--${kind} ${v}: expected <amount>/<window>, e.g. ${kind === "tokens" ? "100000/1h" : "20/month"}`);
  return kind === "tokens" ? { tokens: Number(m[1]), window: m[2] } : { budget: Number(m[1]), window: m[2] };
}

function expiry(v: string | undefined, now: number): string | undefined {
  if (v === undefined) return undefined;
  if (/^\d+[smhd]$/.test(v)) return isoSeconds(now + durationMs(v));
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test(v) || Number.isNaN(Date.parse(v))) throw new KeysCommandError(`--expires ${v}: a duration (30d) or a UTC time (2027-01-31T00:00:00Z)`);
  return v;
}

/** What a key is now: active, rotating (an old secret in its grace period), expired. */
export function keyState(k: VirtualKeyEntry, nowS: number): string {
  if (k.expires && epochSeconds(k.expires) <= nowS) return "expired";
  const graces = k.secrets.filter((s) => s.expires && epochSeconds(s.expires) > nowS);
  if (graces.length) return `rotating (old secret until ${graces.map((s) => s.expires).sort().pop()})`;
  return "active";
}

export function table(keys: VirtualKeyEntry[], nowS: number): string {
  const head = ["id", "owner", "team", "models", "expires", "created", "state"];
  const rows = keys.map((k) => [k.id, k.owner, k.team ?? "-", (k.models ?? ["*"]).join(",") + (k.pools ? ` (pools ${k.pools.join(",")})` : ""), k.expires ?? "never", k.created, keyState(k, nowS)]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/** The keys file gateway.yaml names, as an absolute path. */
export function keysFilePath(config: string): string {
  let text: string;
  try {
    text = readFileSync(config, "utf8");
  } catch (e) {
    throw new KeysCommandError(`cannot read ${config}: ${(e as Error).message}`);
  }
  const file = parseDocument(text).toJS()?.virtual_keys?.file;
  if (typeof file !== "string" || !file) throw new KeysCommandError(`${config} names no keys file: add\n  virtual_keys: { file: keys.yaml }`);
  return resolve(dirname(config), file);
}

function restore(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, path);
}

export interface KeysResult {
  /** What the command prints on stdout (the secret, once, for create and rotate). */
  out: string;
  /** Lines for stderr: what was written. */
  notes: string[];
}

/** Runs one keys command (argv after the script); throws KeysCommandError for a usage mistake. */
export function runKeys(args: string[], now: number = Date.now()): KeysResult {
  const cli = commandLine("keys", USAGE, FLAGS, { positionals: true, args });
  const [cmd, ...extra] = cli.positionals;
  if (!cmd || !["create", "list", "rotate", "revoke"].includes(cmd) || extra.length) throw new KeysCommandError(`expected one of create, list, rotate, revoke${cmd ? ` (got ${[cmd, ...extra].join(" ")})` : ""}`);
  const v = cli.values as Record<string, string | boolean | string[] | undefined>;
  const config = resolve((v.config as string | undefined) ?? "gateway.yaml");
  const path = keysFilePath(config);
  const nowS = Math.floor(now / 1000);
  if (cmd === "list") return { out: table(readKeysFile(path).keys, nowS), notes: [] };

  const id = v.id as string | undefined;
  if (!id) throw new KeysCommandError(`${cmd} needs --id <id>`);
  if (!ID_PATTERN.test(id)) throw new KeysCommandError(`--id ${id}: 1 to 48 letters, digits, '-' or '_'`);
  let out = "";
  const notes: string[] = [];
  let before: string | null = null;
  withKeysLock(path, () => {
    const file = readKeysFile(path);
    before = existsSync(path) ? readFileSync(path, "utf8") : null;
    const at = file.keys.findIndex((k) => k.id === id);
    if (cmd === "create") {
      if (at >= 0) throw new KeysCommandError(`a key with id '${id}' exists (rotate or revoke it)`);
      if (!v.owner) throw new KeysCommandError("create needs --owner <consumer>");
      const secret = newSecret(id);
      const limits: KeyLimit[] = [];
      if (v.tokens) limits.push(limit(v.tokens as string, "tokens"));
      if (v.budget) limits.push(limit(v.budget as string, "budget"));
      const metadata: Record<string, string> = {};
      for (const m of (v.meta as string[] | undefined) ?? []) {
        const eq = m.indexOf("=");
        if (eq <= 0) throw new KeysCommandError(`--meta ${m}: expected name=value`);
        metadata[m.slice(0, eq)] = m.slice(eq + 1);
      }
      const entry: VirtualKeyEntry = {
        id,
        owner: v.owner as string,
        ...(v.team ? { team: v.team as string } : {}),
        created: isoSeconds(now),
        ...(v.expires ? { expires: expiry(v.expires as string, now) } : {}),
        ...(v.models ? { models: list(v.models as string) } : {}),
        ...(v.pools ? { pools: list(v.pools as string) } : {}),
        ...(limits.length ? { limits } : {}),
        ...(Object.keys(metadata).length ? { metadata } : {}),
        secrets: [{ sha256: digest(secret) }],
      };
      file.keys.push(entry);
      out = secret;
      notes.push(`created key '${id}' for ${entry.owner}; its secret is printed once, above, and not stored`);
    } else {
      if (at < 0) throw new KeysCommandError(`no key with id '${id}' in ${path}`);
      if (cmd === "revoke") {
        file.keys.splice(at, 1);
        notes.push(`revoked key '${id}': refused as soon as the gateway reloads`);
      } else {
        const grace = durationMs((v.grace as string | undefined) ?? "1h");
        const k = file.keys[at];
        const secret = newSecret(id);
        // Secrets already past their grace period are dropped; the current one gets its end of grace.
        const until = isoSeconds(now + grace);
        const old = grace === 0 ? [] : k.secrets
          .filter((s) => !s.expires || epochSeconds(s.expires) > nowS)
          .map((s) => ({ sha256: s.sha256, expires: s.expires && s.expires < until ? s.expires : until }))
          .slice(0, MAX_SECRETS - 1);
        k.secrets = [{ sha256: digest(secret) }, ...old];
        out = secret;
        notes.push(grace > 0 ? `rotated key '${id}': the new secret (above, printed once) is valid now, the old one until ${until}` : `rotated key '${id}': the old secret is refused as soon as the gateway reloads`);
      }
    }
    writeKeysFile(path, file);
    notes.push(`wrote ${path}`);
  });
  if (!v["no-render"]) {
    let r: ReturnType<typeof render>;
    try {
      r = render({ config, outDir: v.out as string | undefined });
    } catch (e) {
      // The new keys file does not fit gateway.yaml (a pool it does not have): put the old one back.
      withKeysLock(path, () => (before === null ? rmSync(path, { force: true }) : restore(path, before)));
      throw e;
    }
    notes.push(`re-rendered ${r.written.length} files (a running gateway takes the new keys up without a restart)`);
  }
  return { out, notes };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    const r = runKeys(process.argv.slice(2));
    if (r.out) console.log(r.out);
    for (const n of r.notes) console.error(n);
  } catch (e) {
    if (e instanceof KeysCommandError) {
      console.error(`keys: ${e.message}\n\n${USAGE}`);
      process.exit(2);
    }
    if (e instanceof GatewayConfigError || e instanceof GatewayConfigReadError) {
      console.error(`keys: ${e.file} is not valid; the keys file was left as it was and nothing was re-rendered.\n${e.message}`);
      process.exit(1);
    }
    if (e instanceof EnvoyValidationError) {
      console.error(`keys: the rendered Envoy configuration does not validate; nothing was re-rendered.\n${e.message}`);
      process.exit(1);
    }
    console.error(`keys: ${(e as Error).message}`);
    process.exit(1);
  }
}
