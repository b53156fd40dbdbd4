// `npm run oci`: each filter as a Wasm OCI image layout (solo-io/wasm spec/spec-compat.md, the variant Istio's
// pkg/wasm/imagefetcher.go extractOCIStandardImage reads), and the rendered WasmPlugins pinning its digest.
import { describe, it, expect, beforeAll } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { gunzipSync } from "node:zlib";
import { join } from "node:path";
import { parseAllDocuments, parseDocument } from "yaml";
import { parseGatewayConfig } from "../cli/gateway-config.js";
import { renderFiles } from "../cli/render.js";
import { MINIMAL_GATEWAY } from "./fixtures/gateway-yaml.js";

const FILTERS = ["ai-proxy", "ai-ratelimit", "ai-router", "key-auth"];

/** The entries of a ustar archive: name and data, checking each header's checksum. */
function untar(tar: Buffer): { name: string; data: Buffer }[] {
  const out: { name: string; data: Buffer }[] = [];
  for (let at = 0; at + 512 <= tar.length; ) {
    const h = tar.subarray(at, at + 512);
    if (h.every((b) => b === 0)) break;
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
    expect(parseInt(h.toString("ascii", 148, 156), 8)).toBe(sum);
    const name = h.toString("utf8", 0, 100).replace(/\0.*$/s, "");
    const size = parseInt(h.toString("ascii", 124, 136), 8);
    expect(h.toString("ascii", 156, 157)).toBe("0"); // a regular file
    out.push({ name, data: tar.subarray(at + 512, at + 512 + size) });
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}
const TSX = join("node_modules", ".bin", "tsx");
const sha256 = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

let out: string;
let stdout: string;
beforeAll(() => {
  out = mkdtempSync(join(tmpdir(), "sluice-oci-"));
  stdout = execFileSync(TSX, ["cli/oci.ts", "--out", out], { encoding: "utf8" });
  return () => rmSync(out, { recursive: true, force: true });
});

function layout(name: string) {
  const dir = join(out, name);
  const blob = (digest: string) => readFileSync(join(dir, "blobs", "sha256", digest.replace(/^sha256:/, "")));
  const index = JSON.parse(readFileSync(join(dir, "index.json"), "utf8"));
  const manifestBytes = blob(index.manifests[0].digest);
  return { dir, blob, index, manifestBytes, manifest: JSON.parse(manifestBytes.toString("utf8")) };
}

describe("npm run oci: one OCI image layout per filter, as Istio's Wasm image spec says", () => {
  it("writes a layout for every built filter and prints its manifest digest", () => {
    for (const name of FILTERS) {
      const { index } = layout(name);
      expect(stdout).toContain(`${name} ${index.manifests[0].digest}`);
      expect(JSON.parse(readFileSync(join(out, name, "oci-layout"), "utf8"))).toEqual({ imageLayoutVersion: "1.0.0" });
    }
  });

  it.each(FILTERS)("%s: index.json -> OCI manifest -> wasm config + exactly one layer holding the module byte for byte", (name) => {
    const { dir, blob, index, manifestBytes, manifest } = layout(name);
    expect(index.schemaVersion).toBe(2);
    expect(index.mediaType).toBe("application/vnd.oci.image.index.v1+json");
    expect(index.manifests).toHaveLength(1);
    const m = index.manifests[0];
    expect(m.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
    expect(m.digest).toBe(sha256(manifestBytes));
    expect(m.size).toBe(manifestBytes.length);

    expect(manifest.schemaVersion).toBe(2);
    expect(manifest.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
    expect(manifest.config.mediaType).toBe("application/vnd.oci.image.config.v1+json");
    expect(manifest.layers).toHaveLength(1);
    const layer = manifest.layers[0];
    expect(layer.mediaType).toBe("application/vnd.oci.image.layer.v1.tar+gzip");
    expect(manifest.annotations["module.wasm.image/variant"]).toBe("compat");

    // The layer, gunzipped, is a tar whose one entry plugin.wasm is the module byte for byte (read here
    // as Istio reads it: entries by name until plugin.wasm).
    const layerBytes = blob(layer.digest);
    expect(layer.digest).toBe(sha256(layerBytes));
    expect(layer.size).toBe(layerBytes.length);
    const tar = gunzipSync(layerBytes);
    const entries = untar(tar);
    expect(entries.map((e) => e.name)).toEqual(["plugin.wasm"]);
    const wasm = readFileSync(join("build", `${name}.wasm`));
    expect(entries[0].data.equals(wasm)).toBe(true);

    const configBytes = blob(manifest.config.digest);
    expect(manifest.config.digest).toBe(sha256(configBytes));
    expect(manifest.config.size).toBe(configBytes.length);
    expect(JSON.parse(configBytes.toString("utf8")).rootfs).toEqual({ type: "layers", diff_ids: [sha256(tar)] });

    // Every blob is named by its own sha256 and nothing else is in the layout.
    const names = readdirSync(join(dir, "blobs", "sha256")).sort();
    expect(names).toEqual([m.digest, layer.digest, manifest.config.digest].map((d: string) => d.slice(7)).sort());
    for (const f of names) expect(sha256(readFileSync(join(dir, "blobs", "sha256", f)))).toBe(`sha256:${f}`);
  });

  it("is deterministic: a second build gives the same bytes", () => {
    const again = mkdtempSync(join(tmpdir(), "sluice-oci-"));
    try {
      expect(execFileSync(TSX, ["cli/oci.ts", "--out", again, "key-auth"], { encoding: "utf8" })).toContain(layout("key-auth").index.manifests[0].digest);
      for (const f of ["index.json", "oci-layout"]) expect(readFileSync(join(again, "key-auth", f)).equals(readFileSync(join(out, "key-auth", f)))).toBe(true);
    } finally {
      rmSync(again, { recursive: true, force: true });
    }
  });

  it("refuses an unknown flag with the usage text, and documents every flag under --help", () => {
    const bad = spawnSync(TSX, ["cli/oci.ts", "--registry", "x"], { encoding: "utf8" });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("--registry");
    expect(bad.stderr).toContain("usage:");
    const help = spawnSync(TSX, ["cli/oci.ts", "--help"], { encoding: "utf8" });
    expect(help.status).toBe(0);
    for (const flag of ["--build", "--out", "--help"]) expect(help.stdout).toContain(flag);
  });
});

const BASE = MINIMAL_GATEWAY;

function wasmPluginUrls(files: Record<string, string>): Record<string, string> {
  const urls: Record<string, string> = {};
  for (const [path, text] of Object.entries(files)) {
    if (!path.startsWith("istio/")) continue;
    for (const doc of parseAllDocuments(text)) {
      const d = doc.toJS();
      if (d?.kind === "WasmPlugin") urls[d.spec.pluginName] = d.spec.url;
    }
  }
  return urls;
}

describe("WasmPlugins reference the image by digest when gateway.yaml names a registry", () => {
  it("istio.image: url is oci://<registry>/<repository>/<filter>@<the manifest digest npm run oci wrote>", () => {
    // The shipped gateway.yaml (every filter on) with istio.image set.
    const doc = parseDocument(readFileSync("gateway.yaml", "utf8"));
    doc.setIn(["istio", "image"], doc.createNode({ registry: "registry.example.com:5000", repository: "platform/sluice" }));
    const cfg = parseGatewayConfig(doc.toString(), { env: {} });
    const urls = wasmPluginUrls(renderFiles(cfg));
    expect(Object.keys(urls).sort()).toEqual(FILTERS);
    for (const name of FILTERS) {
      expect(urls[name]).toBe(`oci://registry.example.com:5000/platform/sluice/${name}@${layout(name).index.manifests[0].digest}`);
    }
  });

  it("without istio.image the url stays a file:// path (the committed example)", () => {
    const urls = wasmPluginUrls(renderFiles(parseGatewayConfig(BASE, { env: {} })));
    expect(urls["key-auth"]).toBe("file:///etc/sluice/build/key-auth.wasm");
    const shipped = wasmPluginUrls(renderFiles(parseGatewayConfig(readFileSync("gateway.yaml", "utf8"), { env: {} })));
    for (const url of Object.values(shipped)) expect(url).toMatch(/^file:\/\//);
  });

  it("refuses a registry or repository that is not an OCI name", () => {
    for (const bad of ["{ registry: 'https://ghcr.io', repository: a }", "{ registry: ghcr.io, repository: Upper/Case }", "{ registry: ghcr.io }"]) {
      expect(() => parseGatewayConfig(BASE + `istio:\n  image: ${bad}\n`, { env: {} })).toThrow(/istio/);
    }
  });
});
