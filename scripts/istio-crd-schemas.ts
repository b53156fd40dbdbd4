// Extracts, from Istio's CRD bundle, the openAPIV3 schemas of the kinds and versions envoy/istio/
// renders, so test/istio-crds.test.ts can check the manifests against the Istio releases Sluice
// supports without a network or an Istio cluster.
//   tsx scripts/istio-crd-schemas.ts <crd-all.gen.yaml> <istio version> <istio/istio commit>
// The bundle is manifests/charts/base/files/crd-all.gen.yaml of istio/istio at the release tag.
// Writes test/fixtures/istio-crds/<version>.json: the source (repository, path, tag, commit) next to
// the schemas, so each one says where it came from.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

/** The kinds and API versions envoy/istio/ holds (cli/render/istio.ts). */
export const ISTIO_KINDS: Record<string, string> = {
  WasmPlugin: "extensions.istio.io/v1alpha1",
  EnvoyFilter: "networking.istio.io/v1alpha3",
  ServiceEntry: "networking.istio.io/v1",
  DestinationRule: "networking.istio.io/v1",
};

/** The schema without its prose (a string `description`; a field named description is an object and stays). */
function withoutDescriptions(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutDescriptions);
  if (!node || typeof node !== "object") return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) if (!(k === "description" && typeof v === "string")) out[k] = withoutDescriptions(v);
  return out;
}

export function extractSchemas(bundle: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const doc of parseAllDocuments(bundle)) {
    const crd = doc.toJS() as any;
    if (crd?.kind !== "CustomResourceDefinition") continue;
    const kind = crd.spec.names.kind as string;
    const want = ISTIO_KINDS[kind];
    if (!want) continue;
    for (const v of crd.spec.versions) {
      if (`${crd.spec.group}/${v.name}` === want) out[`${want}/${kind}`] = withoutDescriptions(v.schema.openAPIV3Schema);
    }
  }
  for (const [kind, apiVersion] of Object.entries(ISTIO_KINDS)) {
    if (!out[`${apiVersion}/${kind}`]) throw new Error(`${kind} ${apiVersion} is not in this bundle`);
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [file, version, commit] = process.argv.slice(2);
  if (!file || !version || !/^[0-9a-f]{40}$/.test(commit ?? "")) {
    console.error("usage: tsx scripts/istio-crd-schemas.ts <crd-all.gen.yaml> <istio version> <40-hex istio/istio commit>");
    process.exit(2);
  }
  const out = join(dirname(fileURLToPath(import.meta.url)), "..", "test", "fixtures", "istio-crds", `${version}.json`);
  const data = {
    source: { repository: "istio/istio", path: "manifests/charts/base/files/crd-all.gen.yaml", tag: version, commit },
    schemas: extractSchemas(readFileSync(file, "utf8")),
  };
  writeFileSync(out, JSON.stringify(data, null, 1) + "\n");
  console.log(`wrote ${out}`);
}
