// The keys file of virtual keys (docs/virtual-keys.md): read and checked with errors naming the file,
// line, column and field; written atomically (a temporary file renamed into place, which is also what
// Envoy's and npm start's watches notice). It holds only SHA-256 digests of the secrets.
import { closeSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import { parseDocument, stringify } from "yaml";
import { GatewayConfigError, GatewayConfigReadError, locateField, windowSeconds, type Problem } from "./gateway-config.js";

/** A limit of the key's own: tokens or money per window, rendered as an ai-ratelimit rule keyed by the key. */
export interface KeyLimit {
  tokens?: number;
  budget?: number;
  window: string | number;
  warn_at?: number;
}

export interface KeySecret {
  sha256: string;
  /** When this secret stops being accepted (a rotated key's old secret); ISO 8601 UTC. */
  expires?: string;
}

export interface VirtualKeyEntry {
  id: string;
  owner: string;
  team?: string;
  created: string;
  expires?: string;
  models?: string[];
  pools?: string[];
  limits?: KeyLimit[];
  metadata?: Record<string, string>;
  secrets: KeySecret[];
}

export interface KeysFile {
  keys: VirtualKeyEntry[];
}

export const ID_PATTERN = /^[A-Za-z0-9_-]{1,48}$/;
const NAME_PATTERN = /^[^;=,\s]{1,64}$/;
const SCOPE_PATTERN = /^[^\s,]{1,256}$/;
const TIME_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const WINDOW_PATTERN = /^[1-9][0-9]*[smhd]$|^(week|month)$/;
export const MAX_METADATA = 16;
export const MAX_METADATA_VALUE = 256;
export const MAX_SECRETS = 4;
export const MAX_LIMITS = 8;

/** Seconds since the epoch of an ISO 8601 UTC time as the keys file writes it. */
export function epochSeconds(t: string): number {
  return Math.floor(Date.parse(t) / 1000);
}

/** Now, or a given time, as the keys file writes times: 2026-12-04T23:00:00Z. */
export function isoSeconds(ms: number = Date.now()): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

/** Checks a parsed keys file; problems name the field (`keys[2].expires`). */
export function checkKeys(data: unknown): { field: string; message: string }[] {
  const out: { field: string; message: string }[] = [];
  const fail = (field: string, message: string) => out.push({ field, message });
  if (data === null || data === undefined) return out;
  if (typeof data !== "object" || Array.isArray(data)) return [{ field: "", message: "must be a mapping with keys: [...]" }];
  const top = data as Record<string, unknown>;
  for (const k of Object.keys(top)) if (k !== "keys") fail(k, "unknown field (allowed: keys)");
  if (top.keys === undefined || top.keys === null) return out;
  if (!Array.isArray(top.keys)) return [...out, { field: "keys", message: "must be a list" }];
  const ids = new Map<string, number>();
  const digests = new Map<string, string>();
  top.keys.forEach((k: any, i: number) => {
    const at = (f?: string) => (f ? `keys[${i}].${f}` : `keys[${i}]`);
    if (k === null || typeof k !== "object" || Array.isArray(k)) return fail(at(), "must be a mapping with id, owner, created and secrets");
    const known = ["id", "owner", "team", "created", "expires", "models", "pools", "limits", "metadata", "secrets"];
    for (const f of Object.keys(k)) if (!known.includes(f)) fail(at(f), `unknown field (allowed: ${known.join(", ")})`);
    if (typeof k.id !== "string" || !ID_PATTERN.test(k.id)) fail(at("id"), "must be 1 to 48 letters, digits, '-' or '_'");
    else if (ids.has(k.id)) fail(at("id"), `duplicate id '${k.id}' (also keys[${ids.get(k.id)}])`);
    else ids.set(k.id, i);
    if (typeof k.owner !== "string" || !NAME_PATTERN.test(k.owner)) fail(at("owner"), "must be a consumer name (1 to 64 characters, no spaces, ';', '=' or ',')");
    if (k.team !== undefined && (typeof k.team !== "string" || !ID_PATTERN.test(k.team))) fail(at("team"), "must be 1 to 48 letters, digits, '-' or '_'");
    for (const f of ["created", "expires"]) {
      if (k[f] === undefined && f === "expires") continue;
      if (typeof k[f] !== "string" || !TIME_PATTERN.test(k[f]) || Number.isNaN(Date.parse(k[f]))) fail(at(f), `must be a UTC time such as "2027-01-31T00:00:00Z"`);
    }
    for (const f of ["models", "pools"]) {
      if (k[f] === undefined) continue;
      if (!Array.isArray(k[f]) || k[f].length === 0 || k[f].length > 64) fail(at(f), "must list 1 to 64 entries (leave it out for no restriction)");
      else k[f].forEach((p: unknown, j: number) => {
        if (typeof p !== "string" || !SCOPE_PATTERN.test(p)) fail(`${at(f)}[${j}]`, "must be a name, or a prefix ending in * (no spaces or commas)");
      });
    }
    if (k.limits !== undefined) {
      if (!Array.isArray(k.limits) || k.limits.length > MAX_LIMITS) fail(at("limits"), `must be a list of at most ${MAX_LIMITS} limits`);
      else k.limits.forEach((l: any, j: number) => {
        const lp = `${at("limits")}[${j}]`;
        if (l === null || typeof l !== "object") return fail(lp, "must be a mapping such as { tokens: 100000, window: 1h } or { budget: 20, window: month }");
        for (const f of Object.keys(l)) if (!["tokens", "budget", "window", "warn_at"].includes(f)) fail(`${lp}.${f}`, "unknown field (allowed: tokens, budget, window, warn_at)");
        if ((l.tokens === undefined) === (l.budget === undefined)) fail(lp, "give tokens (per window) or budget (money per window), exactly one");
        if (l.tokens !== undefined && (!Number.isInteger(l.tokens) || l.tokens < 1 || l.tokens > 1e15)) fail(`${lp}.tokens`, "must be a whole number from 1 to 1e15");
        if (l.budget !== undefined && (typeof l.budget !== "number" || !(l.budget > 0) || l.budget > 1e9)) fail(`${lp}.budget`, "must be a number above 0 (in filters.ai_proxy.currency), at most 1e9");
        const w = l.window;
        const wOk = (typeof w === "number" && Number.isInteger(w) && w > 0) || (typeof w === "string" && WINDOW_PATTERN.test(w));
        if (!wOk) fail(`${lp}.window`, 'must be a duration ("30s", "15m", "1h", "1d"), "week", "month" or seconds');
        else if (windowSeconds(w) > 366 * 86400) fail(`${lp}.window`, "must be at most 366 days");
        if (l.warn_at !== undefined && !(typeof l.warn_at === "number" && l.warn_at > 0 && l.warn_at < 1)) fail(`${lp}.warn_at`, "must be a number between 0 and 1 (0.8 = 80 %)");
      });
    }
    if (k.metadata !== undefined) {
      if (k.metadata === null || typeof k.metadata !== "object" || Array.isArray(k.metadata)) fail(at("metadata"), "must be a mapping of names to strings");
      else {
        const entries = Object.entries(k.metadata);
        if (entries.length > MAX_METADATA) fail(at("metadata"), `at most ${MAX_METADATA} entries`);
        for (const [name, v] of entries) {
          if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) fail(`${at("metadata")}.${name}`, "names are 1 to 64 letters, digits, '.', '-' or '_'");
          else if (typeof v !== "string" || v.length > MAX_METADATA_VALUE || /[\u0000-\u001f\u007f]/.test(v)) fail(`${at("metadata")}.${name}`, `must be a string of at most ${MAX_METADATA_VALUE} characters without control characters`);
        }
      }
    }
    if (!Array.isArray(k.secrets) || k.secrets.length === 0 || k.secrets.length > MAX_SECRETS) fail(at("secrets"), `must list 1 to ${MAX_SECRETS} secrets (their SHA-256 digests)`);
    else k.secrets.forEach((s: any, j: number) => {
      const sp = `${at("secrets")}[${j}]`;
      if (s === null || typeof s !== "object") return fail(sp, "must be a mapping with sha256");
      for (const f of Object.keys(s)) if (!["sha256", "expires"].includes(f)) fail(`${sp}.${f}`, "unknown field (allowed: sha256, expires)");
      if (typeof s.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(s.sha256)) fail(`${sp}.sha256`, "must be 64 lower-case hex characters (the SHA-256 digest of the secret; never the secret itself)");
      else if (digests.has(s.sha256)) fail(`${sp}.sha256`, `the same secret is also in key '${digests.get(s.sha256)}'`);
      else digests.set(s.sha256, String(k.id));
      if (s.expires !== undefined && (typeof s.expires !== "string" || !TIME_PATTERN.test(s.expires))) fail(`${sp}.expires`, `must be a UTC time such as "2027-01-31T00:00:00Z"`);
    });
  });
  return out;
}

/** Reads and checks the keys file; a missing file is an empty one (no keys yet). */
export function readKeysFile(path: string): KeysFile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { keys: [] };
    throw new GatewayConfigReadError(path, `cannot read the keys file: ${(e as Error).message}`);
  }
  return parseKeysFile(text, basename(path));
}

export function parseKeysFile(text: string, name: string): KeysFile {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) throw new GatewayConfigError(name, doc.errors.map((e) => ({ ...locateField(text, ""), field: "", message: e.message.split("\n")[0] })));
  const data = doc.toJS();
  const problems: Problem[] = checkKeys(data).map((p) => ({ ...locateField(text, p.field), ...p }));
  if (problems.length) throw new GatewayConfigError(name, problems);
  return { keys: ((data as KeysFile | null)?.keys ?? []) as VirtualKeyEntry[] };
}

const HEADER =
  "# Sluice virtual keys (docs/virtual-keys.md), edited by `npm run keys`. Only SHA-256 digests of the\n" +
  "# secrets are kept: a key's secret is printed once, when it is created or rotated.\n";

/** Writes the keys file atomically: a temporary file in the same directory, renamed into place. */
export function writeKeysFile(path: string, file: KeysFile): void {
  const problems = checkKeys(file);
  if (problems.length) throw new Error(`refusing to write an invalid keys file: ${problems.map((p) => `${p.field}: ${p.message}`).join("; ")}`);
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  try {
    writeFileSync(tmp, HEADER + stringify({ keys: file.keys }, { lineWidth: 0 }), { mode: 0o600 });
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Runs `fn` holding the keys file's lock (a .lock file created exclusively), so two edits never race. */
export function withKeysLock<T>(path: string, fn: () => T): T {
  const lock = `${path}.lock`;
  let fd: number;
  try {
    fd = openSync(lock, "wx");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") throw new Error(`${lock} exists: another keys command is running (remove the file if none is)`);
    throw e;
  }
  try {
    return fn();
  } finally {
    closeSync(fd);
    rmSync(lock, { force: true });
  }
}
