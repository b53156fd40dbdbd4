// key-auth through build/key-auth.wasm and the Envoy-faithful host.
import { describe, it, expect, beforeAll } from "vitest";
import { createHash } from "node:crypto";
import { Host, HostLoadError } from "../host/index.js";

const WASM = "build/key-auth.wasm";
const sha = (s: string) => createHash("sha256").update(s).digest("hex");

const CONFIG = {
  consumers: [
    { name: "alice", keys: ["sk-alice-1", "sk-alice-2"] },
    { name: "bob", keys: [`sha256:${sha("sk-bob")}`] },
  ],
  header: "x-goog-api-key",
  query: "key",
};

async function host(configuration: object = CONFIG) {
  return Host.create({ filters: [{ name: "key-auth", wasm: WASM, configuration }] });
}

function request(h: Host, headers: Record<string, string>) {
  const s = h.newStream();
  const action = s.callOnRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw", ...headers }, false);
  return { s, action };
}

function header(pairs: [string, string][] | null | undefined, name: string) {
  return (pairs ?? []).filter(([k]) => k === name).map(([, v]) => v);
}

function expectDenied(s: ReturnType<Host["newStream"]>, message: RegExp, error?: string) {
  const r = s.getSentLocalResponse();
  expect(r).not.toBeNull();
  expect(r!.statusCode).toBe(401);
  expect(header(r!.headers, "content-type")).toEqual(["application/json"]);
  const challenge = header(r!.headers, "www-authenticate")[0];
  expect(challenge).toMatch(/^Bearer realm="sluice"/);
  if (error) expect(challenge).toContain(`error="${error}"`);
  else expect(challenge).not.toContain("error=");
  const body = JSON.parse(r!.body.toString());
  expect(body.error.type).toBe("invalid_request_error");
  expect(body.error.code).toBe("invalid_api_key");
  expect(body.error.message).toMatch(message);
  expect(s.upstream.headers).toBeNull(); // nothing reached the provider
  expect(s.getFilterState("sluice.consumer")).toBeUndefined();
}

describe("key-auth", () => {
  let h: Host;
  beforeAll(async () => {
    h = await host();
  });

  it("passes a valid Bearer key, sets sluice.consumer and strips the credential", () => {
    const { s, action } = request(h, { authorization: "Bearer sk-alice-2", "x-other": "1" });
    expect(action).toBe("Continue");
    expect(s.getSentLocalResponse()).toBeNull();
    expect(s.getFilterState("sluice.consumer")).toBe("alice");
    expect(header(s.upstream.headers, "authorization")).toEqual([]);
    expect(header(s.upstream.headers, "x-other")).toEqual(["1"]);
    s.completeHttpContext();
  });

  it("accepts x-api-key (Anthropic clients) and strips it", () => {
    const { s, action } = request(h, { "x-api-key": "sk-alice-1" });
    expect(action).toBe("Continue");
    expect(s.getFilterState("sluice.consumer")).toBe("alice");
    expect(header(s.upstream.headers, "x-api-key")).toEqual([]);
  });

  it("accepts a configured header and a key configured only as its sha256", () => {
    const { s } = request(h, { "x-goog-api-key": "sk-bob" });
    expect(s.getFilterState("sluice.consumer")).toBe("bob");
    expect(header(s.upstream.headers, "x-goog-api-key")).toEqual([]);
  });

  it("accepts a query parameter key and removes it from :path, keeping the others", () => {
    const s = h.newStream();
    s.callOnRequestHeaders({ ":method": "GET", ":path": "/v1/models?a=1&key=sk%2Dbob&b=2", ":authority": "gw" }, true);
    expect(s.getFilterState("sluice.consumer")).toBe("bob");
    expect(header(s.upstream.headers, ":path")).toEqual(["/v1/models?a=1&b=2"]);
  });

  it("treats the Bearer scheme case-insensitively but the key case-sensitively", () => {
    expect(request(h, { authorization: "bEaReR sk-alice-1" }).s.getFilterState("sluice.consumer")).toBe("alice");
    expectDenied(request(h, { authorization: "Bearer SK-ALICE-1" }).s, /Invalid API key/, "invalid_token");
  });

  it("rejects a missing key with 401 and a challenge without an error code", () => {
    const { s, action } = request(h, {});
    expect(action).toBe("Pause");
    expectDenied(s, /Missing API key/);
  });

  it("does not take another scheme (Basic) as a key", () => {
    expectDenied(request(h, { authorization: "Basic c2stYWxpY2UtMQ==" }).s, /Missing API key/);
  });

  it("rejects a wrong key without echoing it", () => {
    const { s } = request(h, { authorization: "Bearer sk-wrong-secret" });
    expectDenied(s, /Invalid API key/, "invalid_token");
    expect(s.getSentLocalResponse()!.body.toString()).not.toContain("sk-wrong-secret");
  });

  it("rejects empty credentials", () => {
    expectDenied(request(h, { authorization: "Bearer " }).s, /Empty API key/, "invalid_token");
    expectDenied(request(h, { authorization: "Bearer" }).s, /Empty API key/, "invalid_token");
    expectDenied(request(h, { "x-api-key": "" }).s, /Empty API key/, "invalid_token");
  });

  it("rejects two different keys in one request, even when one is valid", () => {
    expectDenied(request(h, { authorization: "Bearer sk-alice-1", "x-api-key": "sk-bob" }).s, /Conflicting API keys/, "invalid_request");
    const s = h.newStream();
    s.callOnRequestHeaders([[":method", "POST"], [":path", "/v1/x"], [":authority", "gw"], ["authorization", "Bearer sk-alice-1"], ["authorization", "Bearer nope"]], false);
    expectDenied(s, /Conflicting API keys/, "invalid_request");
  });

  it("accepts the same key sent twice (Authorization and x-api-key) and strips both", () => {
    const { s } = request(h, { authorization: "Bearer sk-alice-1", "x-api-key": "sk-alice-1" });
    expect(s.getFilterState("sluice.consumer")).toBe("alice");
    expect(header(s.upstream.headers, "authorization")).toEqual([]);
    expect(header(s.upstream.headers, "x-api-key")).toEqual([]);
  });

  it("treats repeated query keys like repeated headers: two that differ are refused, the same one twice is fine", () => {
    const get = (path: string, headers: Record<string, string> = {}) => {
      const s = h.newStream();
      s.callOnRequestHeaders({ ":method": "GET", ":path": path, ":authority": "gw", ...headers }, true);
      return s;
    };
    // Every spelling a query reader may take for the `key` parameter: '&' or ';' between
    // parameters, a percent-encoded name.
    for (const path of [
      "/v1/models?key=sk-alice-1&key=sk-bob",
      "/v1/models?key=sk-bob&key=sk-alice-1",
      "/v1/models?key=sk-alice-1;key=sk-bob",
      "/v1/models?key=sk-alice-1&%6Bey=sk-bob",
      "/v1/models?k%65y=sk-bob&key=sk-alice-1",
      "/v1/models?key=sk-alice-1&key=",
    ]) {
      const s = get(path);
      expectDenied(s, /Conflicting API keys/, "invalid_request");
      expect(header(s.getCurrentRequestHeaders(), ":path")).toEqual(["/v1/models"]);
    }
    expectDenied(get("/v1/models?key=sk-bob", { authorization: "Bearer sk-alice-1" }), /Conflicting API keys/, "invalid_request");

    const same = get("/v1/models?key=sk-bob&a=1&key=sk%2Dbob");
    expect(same.getFilterState("sluice.consumer")).toBe("bob");
    expect(header(same.upstream.headers, ":path")).toEqual(["/v1/models?a=1"]);
    const encoded = get("/v1/models?a=1;%6bey=sk-bob&b=2");
    expect(encoded.getFilterState("sluice.consumer")).toBe("bob");
    expect(header(encoded.upstream.headers, ":path")).toEqual(["/v1/models?a=1&b=2"]);
    // Other parameters that merely contain the name are not keys.
    const other = get("/v1/models?key=sk-bob&keys=1&xkey=2&a=key");
    expect(header(other.upstream.headers, ":path")).toEqual(["/v1/models?keys=1&xkey=2&a=key"]);
  });

  it("takes the query key out of :path on every outcome, so the access log (which prints :path) never shows it", () => {
    for (const [path, message, error] of [
      ["/v1/chat/completions?key=sk-wrong-secret&x=1", /Invalid API key/, "invalid_token"],
      ["/v1/chat/completions?x=1&key=", /Empty API key/, "invalid_token"],
      ["/v1/chat/completions?x=1&key=sk-wrong-secret&key=sk-alice-1", /Conflicting API keys/, "invalid_request"],
    ] as const) {
      const { s } = request(h, { ":path": path });
      expectDenied(s, message, error);
      expect(header(s.getCurrentRequestHeaders(), ":path")).toEqual(["/v1/chat/completions?x=1"]);
    }
  });

  it("counts allowed and denied requests", () => {
    const before = h.getMetric("sluice.key_auth.denied")?.value ?? 0n;
    request(h, { authorization: "Bearer nope" });
    expect(h.getMetric("sluice.key_auth.denied")!.value).toBe(before + 1n);
    expect(h.getMetric("sluice.key_auth.allowed")!.value).toBeGreaterThan(0n);
  });
});

describe("key-auth options", () => {
  it("keeps the credential when hide_credentials is false", async () => {
    const h = await host({ ...CONFIG, hide_credentials: false });
    const { s } = request(h, { authorization: "Bearer sk-alice-1" });
    expect(header(s.upstream.headers, "authorization")).toEqual(["Bearer sk-alice-1"]);
    // A query key still leaves :path: Envoy logs :path, and a key must never be logged.
    const q = request(h, { ":path": "/v1/chat/completions?key=sk-alice-1&a=1" }).s;
    expect(q.getFilterState("sluice.consumer")).toBe("alice");
    expect(header(q.upstream.headers, ":path")).toEqual(["/v1/chat/completions?a=1"]);
  });

  it("attributes keyless requests to the anonymous consumer, but still rejects wrong keys", async () => {
    const h = await host({ ...CONFIG, anonymous: "guest" });
    expect(request(h, {}).s.getFilterState("sluice.consumer")).toBe("guest");
    expectDenied(request(h, { "x-api-key": "bad" }).s, /Invalid API key/, "invalid_token");
  });

  it("looks up one key among 10,000 consumers", async () => {
    const consumers = Array.from({ length: 10_000 }, (_, i) => ({ name: `c${i}`, keys: [`key-${i}`] }));
    const h = await host({ consumers });
    for (const i of [0, 4321, 9999]) {
      expect(request(h, { authorization: `Bearer key-${i}` }).s.getFilterState("sluice.consumer")).toBe(`c${i}`);
    }
    expectDenied(request(h, { authorization: "Bearer key-10000" }).s, /Invalid API key/, "invalid_token");
  });
});

describe("key-auth configuration errors", () => {
  const bad: [string, unknown, RegExp][] = [
    ["not JSON", "{consumers:", /is not valid JSON/],
    ["not an object", "[]", /must be a JSON object/],
    ["no consumers field", {}, /consumers: is required/],
    ["empty name", { consumers: [{ name: " ", keys: ["a"] }] }, /consumers\[0\]\.name: must not be empty/],
    ["duplicate name", { consumers: [{ name: "a", keys: ["k1"] }, { name: "a", keys: ["k2"] }] }, /duplicate consumer name 'a'/],
    ["duplicate key across consumers", { consumers: [{ name: "a", keys: ["k1"] }, { name: "b", keys: ["k1"] }] }, /consumers\[1\]\.keys\[0\]: duplicate key \(also given to consumer 'a'\)/],
    ["duplicate key as plain and hash", { consumers: [{ name: "a", keys: ["k1", `sha256:${sha("k1")}`] }] }, /duplicate key/],
    ["empty key", { consumers: [{ name: "a", keys: [""] }] }, /keys\[0\]: must not be empty/],
    ["bad digest", { consumers: [{ name: "a", keys: ["sha256:xyz"] }] }, /64 hex characters/],
    ["unknown field", { consumers: [], hide_credential: false }, /hide_credential: unknown field/],
    ["wrong type", { consumers: "alice" }, /consumers: must be a list/],
  ];
  for (const [what, configuration, message] of bad) {
    it(`rejects ${what} at configure time with a log line saying why`, async () => {
      const err = await Host.create({
        filters: [{ name: "key-auth", wasm: WASM, configuration: configuration as object }],
      }).catch((e) => e);
      expect(err).toBeInstanceOf(HostLoadError);
      expect(String(err.message) + "\n" + (err.logs ?? []).join("\n")).toMatch(message);
    });
  }

  it("never logs a key from the configuration", async () => {
    const err = await Host.create({
      filters: [{ name: "key-auth", wasm: WASM, configuration: { consumers: [{ name: "a", keys: ["sk-secret-123", "sk-secret-123"] }] } }],
    }).catch((e) => e);
    expect(String(err.message) + (err.logs ?? []).join("\n")).not.toContain("sk-secret-123");
  });
});

describe("key-auth memory", () => {
  it("stops growing linear memory over 100,000 requests", async () => {
    const h = await host();
    const run = (n: number) => {
      for (let i = 0; i < n; i++) {
        const s = h.newStream();
        s.callOnRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw", authorization: i % 10 ? "Bearer sk-alice-1" : "Bearer wrong" }, false);
        s.completeHttpContext();
      }
    };
    run(10_000); // warm-up: the GC settles its heap size
    const before = h.memoryPages("key-auth");
    run(100_000);
    const after = h.memoryPages("key-auth");
    console.log(`key-auth linear memory: ${before} pages after warm-up, ${after} pages after 100,000 more requests`);
    expect(after).toBe(before);
  });
});

describe("key-auth: Gemini's clients", () => {
  const PLAIN = { consumers: [{ name: "alice", keys: ["sk-alice-1"] }] };

  it("takes the key from x-goog-api-key, and from ?key= on Gemini's paths only", async () => {
    const h = await host(PLAIN);
    const a = request(h, { "x-goog-api-key": "sk-alice-1" }).s;
    expect(a.getSentLocalResponse()).toBeNull();
    expect(a.getFilterState("sluice.consumer")).toBe("alice");
    expect(header(a.upstream.headers, "x-goog-api-key")).toEqual([]);
    const b = request(h, { ":path": "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=sk-alice-1" }).s;
    expect(b.getSentLocalResponse()).toBeNull();
    expect(b.getFilterState("sluice.consumer")).toBe("alice");
    expect(header(b.upstream.headers, ":path")).toEqual(["/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"]);
    const c = request(h, { ":path": "/v1/models/gemini-2.5-flash:generateContent?key=sk-alice-1" }).s;
    expect(c.getFilterState("sluice.consumer")).toBe("alice");
    // Elsewhere a `key` parameter is the application's own, not a credential.
    const d = request(h, { ":path": "/v1/chat/completions?key=sk-alice-1" }).s;
    expect(d.getSentLocalResponse()?.statusCode).toBe(401);
    h.close();
  });

  it("answers a Gemini client in Gemini's error shape", async () => {
    const h = await host(PLAIN);
    const s = request(h, { ":path": "/v1beta/models/gemini-2.5-flash:generateContent?key=wrong" }).s;
    const r = s.getSentLocalResponse()!;
    expect(r.statusCode).toBe(401);
    expect(JSON.parse(r.body.toString())).toEqual({ error: { code: 401, message: "Invalid API key.", status: "UNAUTHENTICATED" } });
    expect(header(r.headers, "www-authenticate")[0]).toMatch(/^Bearer realm="sluice", error="invalid_token"$/);
    h.close();
  });
});
