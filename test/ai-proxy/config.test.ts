// ai-proxy's instance maps (model_map, headers): accepted as maps of strings, refused with the
// field named otherwise.
import { describe, it, expect } from "vitest";
import { Host, HostLoadError } from "../../host/index.js";
import { send, upstream } from "../providers/helpers.js";

const inst = (extra: object) => ({ instances: [{ name: "oa", provider: "openai", api_key: "sk-test", ...extra }] });

async function loadError(configuration: object): Promise<HostLoadError> {
  try {
    const h = await Host.create({ filters: [{ name: "ai-proxy", wasm: "build/ai-proxy.wasm", configuration, allowOnHeadersStopIteration: true }] });
    h.close();
  } catch (e) {
    expect(e).toBeInstanceOf(HostLoadError);
    return e as HostLoadError;
  }
  throw new Error("configuration was accepted");
}

describe("ai-proxy configuration: instance maps", () => {
  const cases: [string, object, RegExp][] = [
    ["model_map not an object", inst({ model_map: ["a"] }), /instances\[0\]\.model_map: must map client model names to upstream model names/],
    ["model_map value not a string", inst({ model_map: { fast: "gpt-4o-mini", big: 4 } }), /instances\[0\]\.model_map\.big: must be a string/],
    ["headers not an object", inst({ headers: "x-a: 1" }), /instances\[0\]\.headers: must map header names to values/],
    ["header value not a string", inst({ headers: { "x-team": true } }), /instances\[0\]\.headers\.x-team: must be a string/],
  ];
  for (const [what, cfg, message] of cases) {
    it(`refuses ${what}`, async () => {
      expect((await loadError(cfg)).logs.join("\n")).toMatch(message);
    });
  }

  it("maps the model and sends the headers (names lower-cased)", async () => {
    const h = await Host.create({ filters: [{ name: "ai-proxy", wasm: "build/ai-proxy.wasm", configuration: inst({ model_map: { fast: "gpt-4o-mini" }, headers: { "X-Team": "blue", "openai-organization": "org-1" } }), allowOnHeadersStopIteration: true }] });
    const s = send(h, { model: "fast", messages: [{ role: "user", content: "hi" }] });
    expect(upstream(s).model).toBe("gpt-4o-mini");
    const headers = Object.fromEntries(s.upstream.headers!);
    expect(headers["x-team"]).toBe("blue");
    expect(headers["openai-organization"]).toBe("org-1");
    h.close();
  });
});

describe("ai-proxy configuration: structured_output", () => {
  const claude = (extra: object) => ({ instances: [{ name: "cl", provider: "anthropic", api_key: "sk-test", ...extra }] });
  it("takes auto, native or tool on an anthropic instance, and nothing else", async () => {
    for (const v of ["auto", "native", "tool"]) {
      const h = await Host.create({ filters: [{ name: "ai-proxy", wasm: "build/ai-proxy.wasm", configuration: claude({ structured_output: v }), allowOnHeadersStopIteration: true }] });
      h.close();
    }
    expect((await loadError(claude({ structured_output: "json" }))).logs.join("\n")).toMatch(/instances\[0\]\.structured_output: must be auto, native or tool/);
    expect((await loadError(inst({ structured_output: "native" }))).logs.join("\n")).toMatch(/instances\[0\]\.structured_output: is only read for provider anthropic/);
  });
});
