// envoy.filters.http.rbac in the host's chain: ALLOW / DENY policies over headers, paths, TLS peers
// and dynamic metadata (jwt_authn's payload), with Envoy's 403 and details.
import { describe, expect, it } from "vitest";
import { nativeHost } from "./helpers.js";

const rbac = (rules: string) => `
- name: envoy.filters.http.rbac
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
${rules}
`;

describe("rbac", () => {
  it("DENY: a matching policy gets 403 \"RBAC: access denied\" naming the policy; others pass", async () => {
    const t = await nativeHost(
      rbac(`    rules:
      action: DENY
      policies:
        "no admin":
          permissions:
            - url_path: { path: { prefix: /admin } }
          principals: [{ any: true }]`),
    );
    const denied = await t.send([[":method", "GET"], [":path", "/admin/keys?x=1"]]);
    expect(denied.local?.statusCode).toBe(403);
    expect(denied.local?.body.toString()).toBe("RBAC: access denied");
    expect(denied.local?.statusDetails).toBe("rbac_access_denied_matched_policy[no_admin]");
    expect((await t.send([[":method", "GET"], [":path", "/v1/models"]])).local).toBeNull();
  });

  it("ALLOW: only a request matching a policy passes, by a jwt_authn claim in the metadata and a header; a miss is matched_policy[none]", async () => {
    const t = await nativeHost(
      rbac(`    rules:
      action: ALLOW
      policies:
        engineers:
          permissions:
            - and_rules:
                rules:
                  - header: { name: ":method", string_match: { exact: POST } }
                  - not_rule: { header: { name: x-model, string_match: { prefix: gpt-5 } } }
          principals:
            - metadata:
                filter: envoy.filters.http.jwt_authn
                path: [{ key: jwt_payload }, { key: groups }]
                value: { list_match: { one_of: { string_match: { exact: eng } } } }`),
    );
    const md = (groups: string[]) => ({ dynamicMetadata: { "envoy.filters.http.jwt_authn": { jwt_payload: { sub: "alice", groups } } } });
    expect((await t.send([[":method", "POST"], [":path", "/v1/chat/completions"], ["x-model", "gpt-4o"]], md(["eng"]))).local).toBeNull();
    const other = await t.send([[":method", "POST"], [":path", "/v1/chat/completions"]], md(["sales"]));
    expect(other.local?.statusDetails).toBe("rbac_access_denied_matched_policy[none]");
    expect((await t.send([[":method", "POST"], [":path", "/v1/x"], ["x-model", "gpt-5-pro"]], md(["eng"]))).local?.statusCode).toBe(403);
    expect((await t.send([[":method", "POST"], [":path", "/v1/x"]])).local?.statusCode).toBe(403); // no metadata at all
  });

  it("authenticated matches the peer certificate's URI SAN; plaintext never matches", async () => {
    const t = await nativeHost(
      rbac(`    rules:
      policies:
        mesh:
          permissions: [{ any: true }]
          principals: [{ authenticated: { principal_name: { exact: "spiffe://corp/team-a" } } }]`),
    );
    const tls = { version: "TLSv1.3", peerCertificatePresented: true, uriSanPeerCertificate: ["spiffe://corp/team-a"] };
    expect((await t.send([[":method", "GET"], [":path", "/"]], { tls })).local).toBeNull();
    expect((await t.send([[":method", "GET"], [":path", "/"]], { tls: { ...tls, uriSanPeerCertificate: ["spiffe://corp/team-b"] } })).local?.statusCode).toBe(403);
    expect((await t.send([[":method", "GET"], [":path", "/"]])).local?.statusCode).toBe(403);
  });

  it("refuses shadow rules and principals it does not run, by name", async () => {
    await expect(nativeHost(rbac("    shadow_rules: { action: DENY }"))).rejects.toThrow(/typed_config\.shadow_rules: the local gateway does not implement this field/);
    await expect(
      nativeHost(rbac(`    rules:
      policies:
        p:
          permissions: [{ any: true }]
          principals: [{ remote_ip: { address_prefix: 10.0.0.0, prefix_len: 8 } }]`)),
    ).rejects.toThrow(/principals\[0\]\.remote_ip: the local gateway does not run this principal/);
    await expect(nativeHost(rbac("    rules: { action: LOG }"))).rejects.toThrow(/rules\.action: the local gateway runs ALLOW and DENY/);
  });

  it("principals by filter state (the consumer key-auth sets) and sourced_metadata; the enforced result is dynamic metadata under rules_stat_prefix", async () => {
    const t = await nativeHost(
      rbac(`    rules_stat_prefix: sluice_
    track_per_rule_stats: true
    rules:
      action: DENY
      policies:
        blocked:
          permissions: [{ any: true }]
          principals:
            - or_ids:
                ids:
                  - filter_state: { key: wasm.sluice.consumer, string_match: { exact: team-c } }
                  - sourced_metadata:
                      metadata_matcher:
                        filter: envoy.filters.http.jwt_authn
                        path: [{ key: jwt_payload }, { key: groups }]
                        value: { list_match: { one_of: { string_match: { exact: suspended } } } }`),
    );
    const send = async (consumer: string | null, groups: string[] = []) => {
      const s = t.h.newStream({ dynamicMetadata: { "envoy.filters.http.jwt_authn": { jwt_payload: { groups } } } });
      if (consumer) s.filterState.set("wasm.sluice.consumer", Buffer.from(consumer));
      s.callOnRequestHeaders([[":scheme", "http"], [":authority", "gw.example"], [":method", "GET"], [":path", "/v1/models"]], true);
      await t.h.settle();
      return s;
    };
    const c = await send("team-c");
    expect(c.getSentLocalResponse()?.statusDetails).toBe("rbac_access_denied_matched_policy[blocked]");
    expect(c.info.dynamicMetadata["envoy.filters.http.rbac"]).toEqual({ sluice_enforced_engine_result: "denied", sluice_enforced_effective_policy_id: "blocked" });
    expect((await send("team-a", ["suspended"])).getSentLocalResponse()?.statusCode).toBe(403);
    const a = await send("team-a", ["eng"]);
    expect(a.getSentLocalResponse()).toBeNull();
    expect(a.info.dynamicMetadata["envoy.filters.http.rbac"]).toEqual({ sluice_enforced_engine_result: "allowed" });
  });
});
