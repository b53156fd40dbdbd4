// npm start's watch on gateway.yaml: each change is re-rendered (all files or none) and the running
// local gateway takes the wasm filters' new configurations, as Envoy takes the re-rendered ECDS files
// (docs/reload.md). What only a restart applies is said, never silently dropped.
import { readFileSync, watch, type FSWatcher } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseDocument } from "yaml";
import { GatewayConfigError, GatewayConfigReadError } from "./gateway-config.js";
import { render } from "./render/files.js";

/** What one reload of the running local gateway did (LocalGateway.reload in cli/start.ts). */
export interface ReloadResult {
  /** Filters now serving new streams with a new configuration. */
  applied: string[];
  /** Filters whose new configuration was refused (the running one kept), with why. */
  refused: { filter: string; why: string }[];
  /** envoy.yaml changes only a restart applies (Envoy would need LDS/CDS). */
  restartNeeded: string[];
  /** envoy.yaml or an ECDS file did not load: nothing changed. */
  error?: string;
  /** Resolves once the streams that started before the reload have ended and the old filters are closed. */
  retired: Promise<void>;
}

export type WatchEvent =
  | { kind: "refused"; message: string }
  | { kind: "reloaded"; result: ReloadResult };

/** The log lines an operator sees for one watch event. */
export function describe(e: WatchEvent, configName: string): string[] {
  if (e.kind === "refused") return [`${configName} changed but is not valid; nothing was re-rendered, the running configuration is kept:`, e.message];
  const r = e.result;
  if (r.error) return [`${configName} re-rendered, but the gateway kept its running configuration: ${r.error}`];
  const lines: string[] = [];
  if (r.applied.length) lines.push(`${configName} re-rendered: new streams use the new configuration of ${r.applied.join(", ")} (streams in flight finish on the old one)`);
  for (const x of r.refused) lines.push(`${configName}: ${x.filter} refused its new configuration, the running one is kept: ${x.why}`);
  if (r.restartNeeded.length) lines.push(`${configName}: these changes need a restart (Envoy would need LDS/CDS for them): ${r.restartNeeded.join("; ")}`);
  if (lines.length === 0) lines.push(`${configName} re-rendered: no filter configuration changed`);
  return lines;
}

/** The keys file gateway.yaml names (virtual_keys.file), absolute; null when none or unreadable. */
function keysFileOf(config: string): string | null {
  try {
    const file = parseDocument(readFileSync(config, "utf8")).toJS()?.virtual_keys?.file;
    return typeof file === "string" && file ? resolve(dirname(config), file) : null;
  } catch {
    return null;
  }
}

/**
 * Watches gateway.yaml's directory (an editor or `mv` replaces the file, which a watch on the file
 * itself would lose), and the keys file's (virtual_keys.file, which `npm run keys` replaces by
 * rename), and runs one re-render and reload at a time, in order.
 */
export function watchGatewayYaml(opts: { config: string; outDir: string; gateway: { reload(): Promise<ReloadResult> }; onEvent: (e: WatchEvent) => void }): FSWatcher {
  const config = resolve(opts.config);
  let queue: Promise<void> = Promise.resolve();
  // The files whose change re-renders: gateway.yaml and the keys file it names now.
  let files = new Set<string>();
  const watchers = new Map<string, FSWatcher>();
  const follow = (keys: string | null) => {
    files = new Set([config, ...(keys ? [keys] : [])]);
    for (const f of files) {
      const dir = dirname(f);
      if (watchers.has(dir)) continue;
      watchers.set(dir, watch(dir, (_event, name) => {
        if (!name || !files.has(join(dir, name.toString()))) return;
        queue = queue.then(once).catch((e) => opts.onEvent({ kind: "refused", message: String(e instanceof Error ? e.message : e) }));
      }));
    }
  };
  const once = async () => {
    try {
      const { cfg } = render({ config: opts.config, outDir: opts.outDir });
      follow(cfg.virtualKeys?.file ?? null);
    } catch (e) {
      if (e instanceof GatewayConfigError || e instanceof GatewayConfigReadError) {
        opts.onEvent({ kind: "refused", message: e.message });
        return;
      }
      throw e;
    }
    opts.onEvent({ kind: "reloaded", result: await opts.gateway.reload() });
  };
  follow(keysFileOf(config));
  // One FSWatcher to the caller (gateway.yaml's); closing it closes the keys file's too.
  const main = watchers.get(dirname(config))!;
  const closeMain = main.close.bind(main);
  main.close = () => {
    for (const [dir, w] of watchers) if (dir !== dirname(config)) w.close();
    closeMain();
  };
  return main;
}
