// Shared by the native filter tests: a host whose chain is Envoy's native filters (from typed_config
// written as in envoy.yaml) and, optionally, the property reader (build/test/properties.wasm) after
// them, and one request through it.
import { parse } from "yaml";
import { Host, type HostOptions } from "../../../host/index.js";
import { nativeFilter } from "../../../host/native/index.js";
import { validateEnvoyConfig } from "../../../cli/envoy-validate.js";

/** Every typed_config the tests use is one Envoy accepts (checked against Envoy's own protos). */
export function checkEnvoyAccepts(typedConfig: Record<string, unknown>): void {
  const { "@type": type, ...rest } = typedConfig;
  const r = validateEnvoyConfig(rest, { type: String(type).replace("type.googleapis.com/", "") });
  if (r.errors.length) throw new Error(`not a valid ${String(type)}: ${r.errors.join("; ")}`);
}

export const PROPS_WASM = "build/test/properties.wasm";

type PerRoute = { config: Record<string, unknown>; at: string }[];

/** The filters from a YAML list of http_filters entries ({name, typed_config}); `perRoute`: the
 * route's (then the virtual host's) typed_per_filter_config entries for them. */
export function natives(yaml: string, perRoute: PerRoute = []) {
  return (parse(yaml) as { name: string; typed_config: Record<string, unknown> }[]).map((f, i) => {
    checkEnvoyAccepts(f.typed_config);
    for (const p of perRoute) checkEnvoyAccepts(p.config);
    return nativeFilter(f.name, f.typed_config, `http_filters[${i}].typed_config`, perRoute);
  });
}

export async function nativeHost(yaml: string, opts: Partial<HostOptions> & { props?: string[]; perRoute?: PerRoute } = {}) {
  let nowNs = BigInt(opts.clock ? 0 : Date.UTC(2026, 11, 4, 12, 0, 0)) * 1_000_000n;
  const h = await Host.create({
    filters: opts.props ? [{ name: "props", wasm: PROPS_WASM, configuration: opts.props.join("\n") }] : [],
    clock: opts.clock ?? (() => nowNs),
    nativeFilters: natives(yaml, opts.perRoute),
    ...opts,
  });
  const send = async (headers: [string, string][], streamOpts: Parameters<Host["newStream"]>[0] = {}) => {
    const s = h.newStream(streamOpts);
    s.callOnRequestHeaders([[":scheme", "http"], [":authority", "gw.example"], ...headers], true);
    await h.settle();
    return { s, local: s.getSentLocalResponse(), upstream: s.upstream.headers, response: s.downstream };
  };
  /** What the property reader read in a phase: path -> value as UTF-8. */
  const read = (phase: string): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const line of h.getLogs("info")) {
      const [ph, path, rc, value] = line.split("\t");
      if (ph === phase) out[path] = rc === "0" ? Buffer.from(value, "hex").toString("utf8") : `rc=${rc}`;
    }
    return out;
  };
  return { h, send, read, nowSeconds: () => Number(nowNs / 1_000_000_000n), advanceMs: (ms: number) => (nowNs += BigInt(ms) * 1_000_000n) };
}

export const header = (list: [string, string][] | null | undefined, name: string) => list?.find(([k]) => k === name)?.[1];
