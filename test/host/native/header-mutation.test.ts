// envoy.filters.http.header_mutation as the renderer writes it (sluice.identity_headers): request
// header removals, every value of each name, before the filters after it see the request.
import { describe, expect, it } from "vitest";
import { nativeHost } from "./helpers.js";

const mutation = (mutations: string) => `
- name: sluice.identity_headers
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation
    mutations:
${mutations}
`;

describe("header_mutation", () => {
  it("removes every value of each listed request header (names in any case), leaves the others", async () => {
    const t = await nativeHost(mutation("      request_mutations: [ { remove: X-User }, { remove: x-tenant } ]"), { props: ["request|headers|x-user", "request|headers|x-keep"] });
    const r = await t.send([[":method", "GET"], [":path", "/v1/models"], ["x-user", "mallory"], ["x-user", "eve"], ["x-tenant", "evil"], ["x-keep", "1"]]);
    expect(r.upstream?.filter(([k]) => k === "x-user" || k === "x-tenant")).toEqual([]);
    expect(r.upstream?.find(([k]) => k === "x-keep")?.[1]).toBe("1");
    expect(t.read("request_headers")["request|headers|x-user"]).toBe("rc=1"); // NotFound for the wasm filter after it
  });

  it("refuses what it does not run, by name", async () => {
    await expect(nativeHost(mutation("      response_mutations: [ { remove: server } ]"))).rejects.toThrow(/mutations\.response_mutations: the local gateway does not implement this field/);
    await expect(nativeHost(mutation("      request_mutations: [ { append: { header: { key: a, value: b } } } ]"))).rejects.toThrow(/request_mutations\[0\]\.append: the local gateway does not implement this field/);
  });
});
