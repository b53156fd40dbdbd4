// One filter's .wasm as a Wasm OCI image (what Istio's WasmPlugin `url: oci://...` pulls), built in memory.
//
// Format: the Wasm image specification's "compat" variant (solo-io/wasm spec/spec-compat.md): an OCI image
// manifest with exactly one layer, media type application/vnd.oci.image.layer.v1.tar+gzip, a tar holding the
// module as `plugin.wasm`, and the manifest annotation module.wasm.image/variant=compat. Istio's fetcher
// (istio/istio pkg/wasm/imagefetcher.go, ImageFetcher.PrepareFetch -> extractOCIStandardImage) reads exactly
// this: the last layer, of that media type, gunzipped, untarred, the entry named plugin.wasm. The other
// ("oci") variant, with a raw application/vnd.module.wasm.content.layer.v1+wasm layer, is refused there
// unless the image has exactly two layers (extractOCIArtifactImage), which the spec does not define: so
// not that one. Standard media types also mean every registry and OCI client carries these images.
//
// Deterministic: no timestamps (tar mtime 0, gzip mtime 0), fixed owner and mode, the gzip OS byte fixed,
// deflate level 0 (stored blocks: the same bytes whatever zlib version compresses), JSON with a fixed key
// order. The same .wasm gives the same blobs and the same manifest digest on every machine.
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";

export const OCI_MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json";
export const OCI_INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json";
export const OCI_CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json";
export const OCI_LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip";
/** The file in the layer Istio looks for. */
export const WASM_FILE_IN_LAYER = "plugin.wasm";
export const VARIANT_ANNOTATION = "module.wasm.image/variant";
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

function blob(blobs: Map<string, Uint8Array>, mediaType: string, bytes: Uint8Array): Descriptor {
  const digest = sha256Digest(bytes);
  blobs.set(digest, bytes);
  return { mediaType, digest, size: bytes.length };
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

/** A ustar archive of one regular file (POSIX pax/ustar header layout), owner 0:0, mode 0644, mtime 0. */
export function tarOneFile(name: string, data: Uint8Array): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, "utf8");
  header.write("0000644\0", 100, "ascii"); // mode
  header.write("0000000\0", 108, "ascii"); // uid
  header.write("0000000\0", 116, "ascii"); // gid
  header.write(data.length.toString(8).padStart(11, "0") + "\0", 124, "ascii"); // size
  header.write("00000000000\0", 136, "ascii"); // mtime
  header.write("        ", 148, "ascii"); // checksum, counted as spaces
  header.write("0", 156, "ascii"); // regular file
  header.write("ustar\0" + "00", 257, "ascii");
  let sum = 0;
  for (const b of header) sum += b;
  header.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, "ascii");
  const pad = (512 - (data.length % 512)) % 512;
  return Buffer.concat([header, data, Buffer.alloc(pad), Buffer.alloc(1024)]);
}

/** The image of filter `name` (key-auth, ai-proxy, ...) holding `wasm` byte for byte as plugin.wasm. */
export function wasmImage(name: string, wasm: Uint8Array): WasmImage {
  const blobs = new Map<string, Uint8Array>();
  const tar = tarOneFile(WASM_FILE_IN_LAYER, wasm);
  const gz = gzipSync(tar, { level: 0 });
  gz[9] = 0xff; // gzip header OS byte: "unknown" (RFC 1952), not the platform that built it
  const layer = blob(blobs, OCI_LAYER_MEDIA_TYPE, gz);
  // An OCI image config: Istio does not read it; diff_ids names the uncompressed layer, as the spec asks.
  const config = blob(
    blobs,
    OCI_CONFIG_MEDIA_TYPE,
    json({ architecture: "wasm", os: "wasip1", rootfs: { type: "layers", diff_ids: [sha256Digest(tar)] }, config: {} }),
  );
  const manifest = blob(
    blobs,
    OCI_MANIFEST_MEDIA_TYPE,
    json({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST_MEDIA_TYPE,
      config,
      layers: [layer],
      annotations: { [VARIANT_ANNOTATION]: "compat", "org.opencontainers.image.title": name },
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
