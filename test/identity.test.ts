// identity through build/identity.wasm and the Envoy-faithful host: the consumer from jwt_authn's
// payload in dynamic metadata, the client certificate, ext_authz's metadata and a trusted header.
import { describe, it, expect, beforeAll } from "vitest";
import { Host, HostLoadError } from "../host/index.js";
import type { StreamOptions } from "../host/stream.js";

const WASM = "build/identity.wasm";
const JWT = "envoy.filters.http.jwt_authn";
const AUTHZ = "envoy.filters.http.ext_authz";

const CONFIG = {
  sources: [
    { jwt_claim: ["sub"] },
    { mtls: "uri_san" },
    { metadata: { namespace: AUTHZ, key: ["user"] } },
    { header: "x-forwarded-user" },
  ],
  groups: { jwt_claim: ["groups"] },
  map: { "spiffe://example.org/ns/ml/sa/batch": "ml-batch", "José": "jose" },
};

async function host(configuration: object = CONFIG, keyAuth?: object) {
  const filters = [];
  if (keyAuth) filters.push({ name: "key-auth", wasm: "build/key-auth.wasm", configuration: keyAuth });
  filters.push({ name: "identity", wasm: WASM, configuration });
  return Host.create({ filters });
}

function request(h: Host, opts: StreamOptions = {}, headers: Record<string, string> = {}, path = "/v1/chat/completions") {
  const s = h.newStream(opts);
  const action = s.callOnRequestHeaders({ ":method": "POST", ":path": path, ":authority": "gw", ...headers }, false);
  return { s, action };
}

const jwt = (payload: Record<string, unknown>): StreamOptions => ({ dynamicMetadata: { [JWT]: { jwt_payload: payload as never } } });

function header(pairs: [string, string][] | null | undefined, name: string) {
  return (pairs ?? []).filter(([k]) => k === name).map(([, v]) => v);
}

function expectConsumer(r: ReturnType<typeof request>, consumer: string, source: string, groups?: string) {
  expect(r.s.getSentLocalResponse()).toBeNull();
  expect(r.action).toBe("Continue");
  expect(r.s.getFilterState("sluice.consumer")).toBe(consumer);
  expect(r.s.getFilterState("sluice.identity_source")).toBe(source);
  expect(r.s.getFilterState("sluice.groups")).toBe(groups);
}

function expectDenied(r: ReturnType<typeof request>, message: RegExp, invalidToken = false) {
  const reply = r.s.getSentLocalResponse();
  expect(reply).not.toBeNull();
  expect(reply!.statusCode).toBe(401);
  expect(reply!.statusDetails).toBe("sluice_identity_denied");
  expect(header(reply!.headers, "content-type")).toEqual(["application/json"]);
  const challenge = header(reply!.headers, "www-authenticate")[0];
  expect(challenge).toBe(invalidToken ? 'Bearer realm="sluice", error="invalid_token"' : 'Bearer realm="sluice"');
  expect(r.s.upstream.headers).toBeNull();
  expect(r.s.getFilterState("sluice.consumer")).toBeUndefined();
  const body = JSON.parse(reply!.body.toString());
  return { body, message: (body.error.message as string).match(message) };
}

describe("identity", () => {
  let h: Host;
  beforeAll(async () => {
    h = await host();
  });

  it("takes the consumer from a JWT claim in jwt_authn's metadata, groups from an array claim", () => {
    const r = request(h, jwt({ sub: "alice@example.com", groups: ["ml", "admins", "ml"] }));
    expectConsumer(r, "alice@example.com", "jwt", "ml,admins");
  });

  it("reads groups given as a space- or comma-separated string claim", () => {
    expectConsumer(request(h, jwt({ sub: "bob", groups: "ml admins" })), "bob", "jwt", "ml,admins");
    expectConsumer(request(h, jwt({ sub: "bob", groups: "ml, admins,ops" })), "bob", "jwt", "ml,admins,ops");
    expectConsumer(request(h, jwt({ sub: "bob", groups: [] })), "bob", "jwt", undefined);
    expectConsumer(request(h, jwt({ sub: "bob" })), "bob", "jwt", undefined);
  });

  it("reads a nested claim (org.team) for the consumer and the groups", async () => {
    const nested = await host({ sources: [{ jwt_claim: ["org", "team"] }], groups: { jwt_claim: ["realm_access", "roles"] } });
    const r = request(nested, jwt({ sub: "x", org: { team: "search" }, realm_access: { roles: ["reader"] } }));
    expectConsumer(r, "search", "jwt", "reader");
    // A claim that is an object, a number or a list is not a name: refused, not passed through.
    for (const team of [{ a: "b" }, 42, ["a", "b"], true]) {
      const d = request(nested, jwt({ org: { team } }));
      expect(expectDenied(d, /not a valid consumer name/, true).message).not.toBeNull();
    }
  });

  it("reads the jwt payload under another payload key (Istio's RequestAuthentication uses the issuer)", async () => {
    const istio = await host({ sources: [{ jwt_claim: ["sub"] }], jwt_payload_key: "https://issuer.example.com" });
    const r = request(istio, { dynamicMetadata: { [JWT]: { "https://issuer.example.com": { sub: "carol" } } } });
    expectConsumer(r, "carol", "jwt");
  });

  it("takes the consumer from each field of the client certificate", async () => {
    const tls = { version: "TLSv1.3", peerCertificatePresented: true, subjectPeerCertificate: "CN=svc-a,O=Example", uriSanPeerCertificate: ["spiffe://example.org/ns/a/sa/svc-a", "spiffe://other"], dnsSanPeerCertificate: ["svc-a.example.org"] };
    expectConsumer(request(h, { tls }), "spiffe://example.org/ns/a/sa/svc-a", "mtls");
    const dns = await host({ sources: [{ mtls: "dns_san" }] });
    expectConsumer(request(dns, { tls }), "svc-a.example.org", "mtls");
    const subject = await host({ sources: [{ mtls: "subject" }] });
    expectConsumer(request(subject, { tls }), "CN=svc-a,O=Example", "mtls");
    // No certificate: Envoy's subject is "", which is no identity.
    expectDenied(request(subject, { tls: { version: "TLSv1.3" } }), /No identity/);
    expectDenied(request(subject), /No identity/);
  });

  it("maps an identity to a consumer name (map), before the name check", () => {
    const tls = { version: "TLSv1.3", peerCertificatePresented: true, uriSanPeerCertificate: ["spiffe://example.org/ns/ml/sa/batch"] };
    expectConsumer(request(h, { tls }), "ml-batch", "mtls");
    expectConsumer(request(h, jwt({ sub: "José" })), "jose", "jwt");
  });

  it("takes the consumer from ext_authz's metadata", () => {
    const r = request(h, { dynamicMetadata: { [AUTHZ]: { user: "dave" } } });
    expectConsumer(r, "dave", "metadata");
  });

  it("takes the consumer from a trusted header, and refuses a repeated one", () => {
    expectConsumer(request(h, {}, { "x-forwarded-user": "erin" }), "erin", "header");
    const s = h.newStream();
    s.callOnRequestHeaders([[":method", "POST"], [":path", "/v1/chat/completions"], [":authority", "gw"], ["x-forwarded-user", "erin"], ["x-forwarded-user", "admin"]], false);
    const reply = s.getSentLocalResponse();
    expect(reply?.statusCode).toBe(401);
    expect(JSON.parse(reply!.body.toString()).error.message).toMatch(/repeated/);
  });

  it("the first source with a value wins: a JWT beats the certificate, ext_authz and the header", () => {
    const tls = { version: "TLSv1.3", peerCertificatePresented: true, uriSanPeerCertificate: ["spiffe://x/y"] };
    const both = { ...jwt({ sub: "alice" }), tls };
    both.dynamicMetadata![AUTHZ] = { user: "dave" };
    expectConsumer(request(h, both, { "x-forwarded-user": "erin" }), "alice", "jwt");
    expectConsumer(request(h, { tls, dynamicMetadata: { [AUTHZ]: { user: "dave" } } }, { "x-forwarded-user": "erin" }), "spiffe://x/y", "mtls");
    expectConsumer(request(h, { dynamicMetadata: { [AUTHZ]: { user: "dave" } } }, { "x-forwarded-user": "erin" }), "dave", "metadata");
  });

  it("a refused value is a 401, never a fall-through to the next source", () => {
    const hostile = ["a".repeat(129), "alice\nadmin", "alice;consumer=bob", "Zoë", "x".repeat(5000), " alice", 'a"b'];
    for (const sub of hostile) {
      const r = request(h, jwt({ sub }), { "x-forwarded-user": "erin" });
      expect(expectDenied(r, /(not a valid consumer name|too long)/, true).message).not.toBeNull();
    }
    // Through a header too (no invalid_token: a header is not a token).
    const r = request(h, {}, { "x-forwarded-user": "a".repeat(200) });
    expectDenied(r, /not a valid consumer name/);
  });

  it("refuses hostile groups: too many, a bad name", () => {
    const many = Array.from({ length: 17 }, (_, i) => `g${i}`);
    expect(expectDenied(request(h, jwt({ sub: "a", groups: many })), /more than 16 groups/, true).message).not.toBeNull();
    expect(expectDenied(request(h, jwt({ sub: "a", groups: ["ok", "bad;group"] })), /group name/, true).message).not.toBeNull();
    expect(expectDenied(request(h, jwt({ sub: "a", groups: [1, 2] })), /group name/, true).message).not.toBeNull();
    expect(expectDenied(request(h, jwt({ sub: "a", groups: "a\u00e9" })), /group name/, true).message).not.toBeNull();
    expectConsumer(request(h, jwt({ sub: "a", groups: Array.from({ length: 16 }, (_, i) => `g${i}`) })), "a", "jwt", Array.from({ length: 16 }, (_, i) => `g${i}`).join(","));
  });

  it("groups from a header: bounded by max_groups names of 64 characters, not by the identity's 1024 bytes", async () => {
    const hdr = await host({ sources: [{ header: "x-user" }], groups: { header: "x-groups" } });
    const names = Array.from({ length: 16 }, (_, i) => `${String(i).padStart(2, "0")}${"g".repeat(62)}`);
    expectConsumer(request(hdr, {}, { "x-user": "u", "x-groups": names.join(", ") }), "u", "header", names.join(","));
    const long = request(hdr, {}, { "x-user": "u", "x-groups": "a,".repeat(1000) });
    expect(expectDenied(long, /The value of 'x-groups' is too long/).message).not.toBeNull();
    // The same bound on a claim, before it is decoded.
    expect(expectDenied(request(h, jwt({ sub: "a", groups: "a ".repeat(1000) })), /groups value is longer than 1284 bytes/, true).message).not.toBeNull();
  });

  it("realm: any printable ASCII but quotes and backslashes, in www-authenticate", async () => {
    const realm = await host({ sources: [{ jwt_claim: ["sub"] }], realm: "AI gateway (prod)!" });
    const r = request(realm);
    expect(header(r.s.getSentLocalResponse()!.headers, "www-authenticate")).toEqual(['Bearer realm="AI gateway (prod)!"']);
    for (const bad of ['a"b', "a\\b", "é", ""]) {
      const err = await host({ sources: [{ jwt_claim: ["sub"] }], realm: bad }).catch((e) => e);
      expect((err as HostLoadError).logs.join("\n")).toMatch(/identity\.realm: must be 1 to 256 printable ASCII/);
    }
  });

  it("no identity: 401 in OpenAI's shape for /v1/chat/completions", () => {
    const { body } = expectDenied(request(h), /No identity/);
    expect(body.error.type).toBe("invalid_request_error");
    expect(body.error.code).toBe("invalid_identity");
  });

  it("no identity: 401 in Anthropic's shape for /v1/messages", () => {
    const { body } = expectDenied(request(h, {}, { "anthropic-version": "2023-06-01" }, "/v1/messages"), /No identity/);
    expect(body.type).toBe("error");
    expect(body.error.type).toBe("authentication_error");
  });

  it("anonymous: a request without identity gets the anonymous consumer", async () => {
    const anon = await host({ ...CONFIG, anonymous: "guest" });
    expectConsumer(request(anon), "guest", "anonymous");
    // An identity still wins, and a refused one is still refused.
    expectConsumer(request(anon, jwt({ sub: "alice" })), "alice", "jwt");
    expectDenied(request(anon, jwt({ sub: "bad\u0000" })), /not a valid consumer name/, true);
  });

  it("keeps the consumer key-auth identified by key; key-auth's anonymous consumer is not an identity", async () => {
    const ka = { consumers: [{ name: "keyed", keys: ["sk-1"] }], anonymous: "nokey" };
    const both = await host({ ...CONFIG, key_auth_anonymous: "nokey" }, ka);
    expectConsumer(request(both, jwt({ sub: "alice" }), { authorization: "Bearer sk-1" }), "keyed", "key-auth");
    expectConsumer(request(both, jwt({ sub: "alice" })), "alice", "jwt");
    // Neither a key nor an identity: the 401 is identity's (key-auth let the request in as "nokey").
    const r = request(both);
    expect(r.s.getSentLocalResponse()?.statusCode).toBe(401);
    expect(r.s.getSentLocalResponse()?.statusDetails).toBe("sluice_identity_denied");
  });

  it("linear memory stays bounded under hostile values (a 60 KB claim, a list of 3000 groups) and stops growing", async () => {
    // A JWT travels in a request header, which Envoy caps at 60 KiB by default (max_request_headers_kb),
    // so no claim is larger. Envoy copies a property into the VM's memory whole; a value past the
    // filter's bounds is refused before it is decoded. What stays is garbage until the SDK patch
    // collects (after 64 finished streams, or when memory grew): the same high-water mark key-auth
    // reaches with 60 KB headers (64 pages, 4 MiB).
    const m = await host();
    const pages: number[] = [];
    const manyGroups = Array.from({ length: 3000 }, (_, i) => `g${i}`);
    for (let round = 0; round < 30; round++) {
      for (let i = 0; i < 20; i++) {
        const payload = i % 2 ? { sub: "x".repeat(60000) } : { sub: "ok", groups: manyGroups };
        const r = request(m, jwt(payload));
        expect(r.s.getSentLocalResponse()?.statusCode).toBe(401);
        r.s.completeHttpContext();
      }
      pages.push(m.memoryPages("identity"));
    }
    expect(Math.max(...pages)).toBeLessThanOrEqual(64);
    expect(Math.max(...pages.slice(10))).toBe(Math.max(...pages.slice(0, 10)));
  });

  it("refuses a configuration it cannot apply, naming the field", async () => {
    const bad: [object, RegExp][] = [
      [{}, /identity.sources: is required/],
      [{ sources: [] }, /at least one source/],
      [{ sources: [{ mtls: "email" }] }, /identity.sources\[0\].mtls: must be uri_san, dns_san or subject/],
      [{ sources: [{ jwt_claim: [] }] }, /identity.sources\[0\].jwt_claim: must be a list/],
      [{ sources: [{ header: "x y" }] }, /identity.sources\[0\].header: must be an HTTP header name/],
      [{ sources: [{ cookie: "a" }] }, /unknown source/],
      [{ sources: [{ jwt_claim: ["sub"] }], groups: { mtls: "subject" } }, /mtls is not a source of groups/],
      [{ sources: [{ jwt_claim: ["sub"] }], map: { a: "b;c" } }, /identity.map.a: 'b;c' is not a valid consumer name/],
      [{ sources: [{ jwt_claim: ["sub"] }], anonymous: "a b;" }, /identity.anonymous/],
      [{ sources: [{ jwt_claim: ["sub"] }], max_groups: 65 }, /identity.max_groups/],
    ];
    for (const [cfg, msg] of bad) {
      const err = await host(cfg).catch((e) => e);
      expect(err).toBeInstanceOf(HostLoadError);
      expect((err as HostLoadError).logs.join("\n")).toMatch(msg);
    }
  });
});
