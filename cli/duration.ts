// gateway.yaml's durations ("500ms", "5s", "2m", as the schema's pattern allows) in the form Envoy's
// protobuf JSON takes. Shared by the checks of Sluice's settings and of Envoy's own filters.

/** "500ms" | "5s" | "2m" -> Envoy's protobuf JSON duration ("0.5s", "5s", "120s"). */
export function envoyDuration(d: string): string {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m)$/.exec(d);
  if (!m) throw new Error(`bad duration ${d}`);
  const n = Number(m[1]);
  const seconds = m[2] === "ms" ? n / 1000 : m[2] === "m" ? n * 60 : n;
  return `${Number(seconds.toFixed(9))}s`;
}
