// The rendered files as text, written all or none.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { loadGatewayConfig, type GatewayConfig } from "../gateway-config.js";
import { renderEcds, renderEnvoy, type EnvoyRenderOptions } from "./envoy.js";
import { renderIstio } from "./istio.js";
import { rateLimitServiceConfig } from "./ratelimit.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");

const HEADER = "# Rendered from gateway.yaml by `npm run render` (scripts/render.ts). Edit gateway.yaml, not this file.\n";

export function envoyYamlText(cfg: GatewayConfig, opts: EnvoyRenderOptions = {}): string {
  const note = opts.mock
    ? "# docker compose (envoy/docker-compose.yaml): every cluster points at the mock provider service and a dummy key.\n"
    : "# Needs Envoy >= 1.37 (allow_on_headers_stop_iteration for ai-router, ai-ratelimit, ai-proxy: 1.35; the route's request_body_buffer_limit applied when the route is matched: 1.37) with the v8 Wasm runtime.\n";
  return HEADER + note + stringify(renderEnvoy(cfg, opts), { lineWidth: 0, aliasDuplicateObjects: false });
}

function istioText(file: { comment: string; docs: unknown[] }): string {
  const comment = file.comment.split("\n").map((l) => (l ? `# ${l}` : "#")).join("\n");
  return HEADER + comment + "\n" + file.docs.map((d) => stringify(d, { lineWidth: 0, aliasDuplicateObjects: false })).join("---\n");
}

function rateLimitServiceText(cfg: GatewayConfig): string {
  const d = cfg.aiRatelimit?.distributed;
  const note = d
    ? "# envoyproxy/ratelimit's configuration for filters.ai_ratelimit.distributed: one descriptor tree per rule,\n" +
      "# (rule, <name>) [-> (when, true)] -> key parts, the limit in tokens (hits_addend carries the token counts).\n"
    : "# filters.ai_ratelimit.distributed is not set in gateway.yaml: no rule is enforced by the rate limit service.\n";
  return HEADER + note + stringify(rateLimitServiceConfig(cfg), { lineWidth: 0, aliasDuplicateObjects: false });
}

function ecdsText(rel: string, doc: unknown): string {
  const note = `# ${rel}: one wasm filter's configuration, delivered by ECDS (path_config_source in ${rel.startsWith("ecds-mock/") ? "envoy.mock.yaml" : "envoy.yaml"}).\n` +
    "# Envoy re-reads it when a file is renamed into its directory; see docs/reload.md.\n";
  return HEADER + note + stringify(doc, { lineWidth: 0, aliasDuplicateObjects: false });
}

/** Every rendered file, by path relative to the output directory. */
export function renderFiles(cfg: GatewayConfig): Record<string, string> {
  const out: Record<string, string> = {
    "envoy.yaml": envoyYamlText(cfg),
    "envoy.mock.yaml": envoyYamlText(cfg, { mock: true }),
    "ratelimit/config.yaml": rateLimitServiceText(cfg),
  };
  for (const mock of [false, true]) {
    for (const [rel, doc] of Object.entries(renderEcds(cfg, { mock }))) out[rel] = ecdsText(rel, doc);
  }
  for (const [name, file] of Object.entries(renderIstio(cfg))) out[`istio/${name}`] = istioText(file);
  return out;
}

/** Writes all files or none: temporaries first, renamed into place once every one is written. */
export function writeAtomically(outDir: string, files: Record<string, string>): string[] {
  const temps: [string, string][] = [];
  try {
    for (const [rel, text] of Object.entries(files)) {
      const target = join(outDir, rel);
      mkdirSync(dirname(target), { recursive: true });
      const tmp = `${target}.tmp-${process.pid}-${Date.now()}`;
      writeFileSync(tmp, text);
      temps.push([tmp, target]);
    }
  } catch (e) {
    for (const [tmp] of temps) rmSync(tmp, { force: true });
    throw e;
  }
  for (const [tmp, target] of temps) renameSync(tmp, target);
  return temps.map(([, t]) => t);
}

export interface RenderOptions {
  config?: string;
  outDir?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Rendered manifests this render no longer makes (a filter disabled, a renamed file): removed, so
 * `kubectl apply -f envoy/istio/` never applies a stale one. Only files that carry the render header.
 */
export function removeStale(outDir: string, files: Record<string, string>): string[] {
  const removed: string[] = [];
  const dir = join(outDir, "istio");
  if (!existsSync(dir)) return removed;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (!name.endsWith(".yaml") || `istio/${name}` in files) continue;
    if (!readFileSync(path, "utf8").startsWith(HEADER)) continue;
    rmSync(path);
    removed.push(path);
  }
  return removed;
}

/** Loads gateway.yaml and writes every file; throws GatewayConfigError (nothing written) on a bad config. */
export function render(opts: RenderOptions = {}): { cfg: GatewayConfig; written: string[]; removed: string[] } {
  const config = resolve(opts.config ?? join(root, "gateway.yaml"));
  const outDir = resolve(opts.outDir ?? join(root, "envoy"));
  const cfg = loadGatewayConfig(config, { env: opts.env });
  const files = renderFiles(cfg);
  const written = writeAtomically(outDir, files);
  return { cfg, written, removed: removeStale(outDir, files) };
}
