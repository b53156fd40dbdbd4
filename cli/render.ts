// `npm run render`: gateway.yaml -> envoy/envoy.yaml, envoy/envoy.mock.yaml, envoy/istio/*.yaml and
// envoy/grafana/sluice.json.
//   tsx cli/render.ts [--config gateway.yaml] [--out envoy]
// Nothing is written unless every file renders and envoy.yaml and envoy.mock.yaml validate against
// Envoy's API for the target version (cli/envoy-validate.ts): each goes to a temporary file first
// and is renamed into place only when all are ready. The pieces live in cli/render/, one job per file.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { GatewayConfigError, GatewayConfigReadError } from "./gateway-config.js";
import { commandLine } from "./command-line.js";
import { ENVOY_VERSION_FLOOR } from "./render/constants.js";
import { EnvoyValidationError, render } from "./render/files.js";

export * from "./render/access-log.js";
export * from "./render/clusters.js";
export * from "./render/constants.js";
export * from "./render/envoy.js";
export * from "./render/files.js";
export * from "./render/filter-config.js";
export * from "./render/grafana.js";
export * from "./render/istio.js";
export * from "./render/local-reply.js";
export * from "./render/native-filters.js";
export * from "./render/native-replies.js";
export * from "./render/ratelimit.js";


const USAGE = `usage: npm run render -- [options]
Renders gateway.yaml into envoy/envoy.yaml, envoy/envoy.mock.yaml, envoy/ratelimit/, envoy/istio/
and envoy/grafana/sluice.json (the Grafana dashboard).
Nothing is written unless every file renders.

  --config <file>     the gateway configuration (default: gateway.yaml)
  --out <dir>         where the rendered files go (default: envoy)
  -h, --help          this text`;

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const cli = commandLine("render", USAGE, { config: { type: "string" }, out: { type: "string" } });
  try {
    const { cfg, written, removed, warnings } = render({ config: cli.values.config as string | undefined, outDir: cli.values.out as string | undefined });
    for (const w of cfg.warnings) console.warn(`render: warning: ${w}`);
    for (const w of warnings) console.warn(`render: warning: ${w}`);
    for (const f of written) console.log(`wrote ${f}`);
    for (const f of removed) console.log(`removed ${f} (no longer rendered)`);
  } catch (e) {
    if (e instanceof GatewayConfigReadError) {
      console.error(`render: ${e.message}`);
      process.exit(1);
    }
    if (e instanceof GatewayConfigError) {
      console.error(`render: ${e.file} is not valid; nothing was written.\n${e.message}`);
      process.exit(1);
    }
    if (e instanceof EnvoyValidationError) {
      console.error(`render: the rendered Envoy configuration does not validate against Envoy ${ENVOY_VERSION_FLOOR}'s API; nothing was written.\n${e.message}`);
      process.exit(1);
    }
    throw e;
  }
}
