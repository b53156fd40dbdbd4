// The rendered files as text, written all or none.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";
import { validateEcdsYaml, validateEnvoyYaml } from "../envoy-validate.js";
import { checkRouteDescriptors, validateRateLimitServiceConfig } from "../ratelimit-validate.js";
import { loadGatewayConfig, type GatewayConfig } from "../gateway-config.js";
import { ENVOY_VERSION_FLOOR, ENVOY_VERSION_WHY } from "./constants.js";
import { renderEcds, renderEnvoy, type EnvoyRenderOptions } from "./envoy.js";
import { grafanaFiles } from "./grafana.js";
import { renderIstio } from "./istio.js";
import { rateLimitServiceConfig } from "./ratelimit.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");

const HEADER = "# Rendered from gateway.yaml by `npm run render` (cli/render.ts). Edit gateway.yaml, not this file.\n";

export function envoyYamlText(cfg: GatewayConfig, opts: EnvoyRenderOptions = {}): string {
  const note = opts.mock
    ? "# docker compose (envoy/docker-compose.yaml): every cluster points at the mock provider service and a dummy key.\n"
    : `# Needs Envoy >= ${ENVOY_VERSION_FLOOR} with the v8 Wasm runtime: ${ENVOY_VERSION_WHY} (docs/deploy-envoy.md).\n`;
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
      "# (rule, <name>) [-> (when, true)] -> key parts, the limit in tokens, or in micro-units of the currency\n" +
      "# for a money budget (strategy cost); hits_addend carries the token counts or the request's cost.\n"
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
  /** Tests: stand in for renderFiles (e.g. to render a field the target Envoy lacks). */
  renderFiles?: (cfg: GatewayConfig) => Record<string, string>;
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

/** A rendered envoy.yaml that Envoy's API (cli/envoy-validate.ts) refuses: a renderer bug, never written. */
export class EnvoyValidationError extends Error {
  constructor(readonly problems: { file: string; errors: string[] }[]) {
    super(problems.flatMap((p) => p.errors.map((e) => `${p.file}: ${e}`)).join("\n"));
    this.name = "EnvoyValidationError";
  }
}

/**
 * envoy.yaml, envoy.mock.yaml and the ECDS files against Envoy's API for ENVOY_VERSION_FLOOR; errors throw
 * EnvoyValidationError, warnings (deprecated fields, timeouts that cut streams) are returned.
 */
export function validateRendered(files: Record<string, string>): string[] {
  const problems: { file: string; errors: string[] }[] = [];
  const warnings: string[] = [];
  for (const file of ["envoy.yaml", "envoy.mock.yaml"]) {
    const r = validateEnvoyYaml(files[file], { envoyVersion: ENVOY_VERSION_FLOOR });
    if (r.errors.length) problems.push({ file, errors: r.errors });
    warnings.push(...r.warnings.map((w) => `${file}: ${w}`));
  }
  // Each wasm filter's ECDS file: a DiscoveryResponse holding the filter envoy.yaml names (sluice.<filter>).
  for (const file of Object.keys(files).filter((f) => /^ecds(-mock)?\/[a-z-]+\.yaml$/.test(f))) {
    const filter = `sluice.${file.replace(/^.*\//, "").replace(".yaml", "").replace(/-/g, "_")}`;
    const r = validateEcdsYaml(files[file], filter, { envoyVersion: ENVOY_VERSION_FLOOR });
    if (r.errors.length) problems.push({ file, errors: r.errors });
    warnings.push(...r.warnings.map((w) => `${file}: ${w}`));
  }
  problems.push(...rateLimitProblems(files));
  if (problems.length) throw new EnvoyValidationError(problems);
  return warnings;
}

/**
 * ratelimit/config.yaml as envoyproxy/ratelimit loads it, and every descriptor envoy.yaml's routes
 * send (RateLimitPerRoute of envoy.filters.http.ratelimit) found in it with a limit.
 */
export function rateLimitProblems(files: Record<string, string>): { file: string; errors: string[] }[] {
  const text = files["ratelimit/config.yaml"];
  if (text === undefined) return [];
  const service = parse(text);
  const out: { file: string; errors: string[] }[] = [];
  const shape = validateRateLimitServiceConfig(service);
  if (shape.length) out.push({ file: "ratelimit/config.yaml", errors: shape });
  for (const file of ["envoy.yaml", "envoy.mock.yaml"]) {
    const envoy = parse(files[file]);
    const errors: string[] = [];
    for (const [l, listener] of (envoy?.static_resources?.listeners ?? []).entries()) {
      for (const chain of listener.filter_chains ?? []) {
        for (const f of chain.filters ?? []) {
          for (const [v, vh] of (f.typed_config?.route_config?.virtual_hosts ?? []).entries()) {
            for (const [r, route] of (vh.routes ?? []).entries()) {
              const per = route.typed_per_filter_config?.["envoy.filters.http.ratelimit"];
              if (per?.rate_limits) errors.push(...checkRouteDescriptors(per.rate_limits, service, `listeners[${l}] virtual_hosts[${v}].routes[${r}]`));
            }
          }
        }
      }
    }
    if (errors.length) out.push({ file, errors });
  }
  return out;
}

/**
 * Loads gateway.yaml, validates the rendered envoy.yaml and envoy.mock.yaml, and writes every file;
 * throws GatewayConfigError on a bad config and EnvoyValidationError when Envoy's API refuses a rendered
 * file (nothing written either way).
 */
export function render(opts: RenderOptions = {}): { cfg: GatewayConfig; written: string[]; removed: string[]; warnings: string[] } {
  const config = resolve(opts.config ?? join(root, "gateway.yaml"));
  const outDir = resolve(opts.outDir ?? join(root, "envoy"));
  const cfg = loadGatewayConfig(config, { env: opts.env });
  // The Grafana dashboard beside them (envoy/grafana/sluice.json): it reads the metrics, not Envoy's API.
  const files = { ...(opts.renderFiles ?? renderFiles)(cfg), ...grafanaFiles(cfg.aiProxy.currency) };
  const warnings = validateRendered(files);
  const written = writeAtomically(outDir, files);
  return { cfg, written, removed: removeStale(outDir, files), warnings };
}
