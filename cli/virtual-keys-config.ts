// gateway.yaml `virtual_keys: { file: keys.yaml }`: the keys file read and checked against the rest of
// the configuration (pools that exist, key-auth and ai-ratelimit enabled), and each key's own limits as
// ai-ratelimit rules keyed by the key (docs/virtual-keys.md).
import { basename, resolve } from "node:path";
import { GatewayConfigError, locateField, type Problem } from "./gateway-config.js";
import { epochSeconds, readKeysFile, type VirtualKeyEntry } from "./keys-file.js";
import { readFileSync } from "node:fs";

export interface VirtualKeysConfig {
  /** The keys file's absolute path (npm start watches it). */
  file: string;
  keys: VirtualKeyEntry[];
}

/** The rule name of a key's n-th limit: vk-<id>-<n> (ids are at most 48 characters). */
export function keyRuleName(id: string, n: number): string {
  return `vk-${id}-${n}`;
}

/** Reads the keys file `file` (relative to gateway.yaml's directory) and checks what refers outside it. */
export function loadVirtualKeys(file: string, dir: string, pools: ReadonlyMap<string, unknown>): VirtualKeysConfig {
  const path = resolve(dir, file);
  const { keys } = readKeysFile(path);
  const problems: Problem[] = [];
  let text: string | null = null;
  const fail = (field: string, message: string) => {
    text ??= readFileSync(path, "utf8");
    problems.push({ ...locateField(text, field), field, message });
  };
  keys.forEach((k, i) =>
    (k.pools ?? []).forEach((p, j) => {
      if (!pools.has(p)) fail(`keys[${i}].pools[${j}]`, `no pool named '${p}' in gateway.yaml (pools: ${[...pools.keys()].join(", ") || "none"})`);
    }),
  );
  if (problems.length) throw new GatewayConfigError(basename(path), problems);
  return { file: path, keys };
}

/** key-auth's virtual_keys: ids, owners, teams, expiries (seconds since the epoch), digests, scopes. */
export function keyAuthVirtualKeys(v: VirtualKeysConfig): Record<string, unknown>[] {
  return v.keys.map((k) => ({
    id: k.id,
    consumer: k.owner,
    ...(k.team ? { team: k.team } : {}),
    ...(k.expires ? { expires: epochSeconds(k.expires) } : {}),
    secrets: k.secrets.map((s) => ({ sha256: s.sha256, ...(s.expires ? { expires: epochSeconds(s.expires) } : {}) })),
    ...(k.models ? { models: k.models } : {}),
    ...(k.pools ? { pools: k.pools } : {}),
  }));
}

/** Each key's limits as ai-ratelimit rules: counted by `key`, applied only to that key's requests. */
export function keyRules(v: VirtualKeysConfig): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const k of v.keys) {
    (k.limits ?? []).forEach((l, n) => {
      const rule: Record<string, unknown> = { name: keyRuleName(k.id, n), key: ["key"], when: { key: k.id }, window: l.window };
      if (l.budget !== undefined) Object.assign(rule, { strategy: "cost", budget: l.budget });
      else rule.limit = l.tokens;
      if (l.warn_at !== undefined) rule.warn_at = l.warn_at;
      out.push(rule);
    });
  }
  return out;
}
