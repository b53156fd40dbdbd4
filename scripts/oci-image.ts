// One filter's .wasm as a Wasm OCI image (the layout Istio's WasmPlugin `url: oci://...` pulls), built in memory.
//
// Format: the Wasm image specification's "oci" variant (solo-io/wasm spec/spec.md): an OCI image manifest whose
// config has media type application/vnd.module.wasm.config.v1+json and whose one layer has media type
// application/vnd.module.wasm.content.layer.v1+wasm and holds the module itself, uncompressed. Istio's fetcher
// (istio/istio pkg/wasm/imagefetcher.go, ImageFetcher.Fetch -> extractOCIArtifactImage) finds the layer by that
// media type and reads it as the raw module. The "compat" variant (a tar.gz layer with plugin.wasm, annotated
// module.wasm.image/variant=compat) is the other form Istio reads; we do not need it: registries and OCI clients
// (oras, crane, skopeo) carry custom media types, and a raw layer needs no deterministic tar/gzip.
//
// Deterministic: no timestamps anywhere, JSON written with a fixed key order and no whitespace, so the same
// .wasm gives the same blobs and the same manifest digest on every machine.
import { createHash } from "node:crypto";

export const OCI_MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json";
export const OCI_INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json";
export const WASM_CONFIG_MEDIA_TYPE = "application/vnd.module.wasm.config.v1+json";
export const WASM_LAYER_MEDIA_TYPE = "application/vnd.module.wasm.content.layer.v1+wasm";
/** The tag index.json gives the manifest (org.opencontainers.image.ref.name); pushes use the digest anyway. */
export const OCI_TAG = "latest";

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface WasmImage {
  /** Every blob of the image by digest ("sha256:<hex>"): config, layer, manifest. */
  blobs: Map<string, Uint8Array>;
  manifest: Descriptor;
  /** index.json of the OCI image layout, pointing at the manifest. */
  index: Uint8Array;
}

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

function blob(blobs: Map<string, Uint8Array>, mediaType: string, bytes: Uint8Array, annotations?: Record<string, string>): Descriptor {
  const digest = sha256Digest(bytes);
  blobs.set(digest, bytes);
  return { mediaType, digest, size: bytes.length, ...(annotations ? { annotations } : {}) };
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

/** The image of filter `name` (key-auth, ai-proxy, ...) holding `wasm` byte for byte. */
export function wasmImage(name: string, wasm: Uint8Array): WasmImage {
  const blobs = new Map<string, Uint8Array>();
  // The runtime config of spec.md: target runtime and the root id the filter registers (each filter has one,
  // named after the filter: WasmPlugin pluginName / Envoy root_id).
  const config = blob(blobs, WASM_CONFIG_MEDIA_TYPE, json({ type: "envoy_proxy", config: { root_ids: [name] } }), {
    "org.opencontainers.image.title": "runtime-config.json",
  });
  const layer = blob(blobs, WASM_LAYER_MEDIA_TYPE, wasm, { "org.opencontainers.image.title": `${name}.wasm` });
  const manifest = blob(
    blobs,
    OCI_MANIFEST_MEDIA_TYPE,
    json({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST_MEDIA_TYPE,
      config,
      layers: [layer],
      annotations: { "org.opencontainers.image.title": name },
    }),
  );
  const index = json({
    schemaVersion: 2,
    mediaType: OCI_INDEX_MEDIA_TYPE,
    manifests: [{ ...manifest, annotations: { "org.opencontainers.image.ref.name": OCI_TAG } }],
  });
  return { blobs, manifest, index };
}

/** The files of an OCI image layout (path relative to the layout's directory -> bytes). */
export function layoutFiles(img: WasmImage): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  files.set("oci-layout", json({ imageLayoutVersion: "1.0.0" }));
  files.set("index.json", img.index);
  for (const [digest, bytes] of img.blobs) files.set(`blobs/sha256/${digest.slice("sha256:".length)}`, bytes);
  return files;
}
