// The consumer's groups (identity's sluice.groups) feeding ai-ratelimit (key part and condition
// `group`) and ai-router (condition `group`), each through its .wasm, chained after identity.
import { describe, it, expect } from "vitest";
import { Host } from "../host/index.js";

// Identity from headers a trusted proxy sets (the filter reads them as a trusted header source).
const IDENTITY = { sources: [{ header: "x-user" }], groups: { header: "x-groups" } };

async function chain(next: { name: string; wasm: string; configuration: object }) {
  return Host.create({
    filters: [
      { name: "identity", wasm: "build/identity.wasm", configuration: IDENTITY },
      { ...next, allowOnHeadersStopIteration: true },
    ],
  });
}

// Prompt estimate of this body: "Hello there" is 11 bytes -> 3 tokens, + 3 for the message + 3 for the
// request = 9; with max_tokens 50 each request reserves 59.
const BODY = JSON.stringify({ model: "gpt-4o", max_tokens: 50, messages: [{ role: "user", content: "Hello there" }] });

function send(h: Host, user: string, groups?: string, body = BODY) {
  const s = h.newStream();
  s.callOnRequestHeaders({
    ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw", "content-type": "application/json",
    "x-user": user, ...(groups !== undefined ? { "x-groups": groups } : {}),
  }, false);
  s.callOnRequestBody(body, true);
  return s;
}

const status = (s: ReturnType<Host["newStream"]>) => s.getSentLocalResponse()?.statusCode ?? 200;

describe("ai-ratelimit: group", () => {
  it("key [group]: one counter per group; a request must fit every group's counter, and is charged to each", async () => {
    const h = await chain({ name: "ai-ratelimit", wasm: "build/ai-ratelimit.wasm", configuration: { rules: [{ name: "teams", key: ["group"], limit: 100, window: "1m" }] } });
    expect(status(send(h, "alice", "ml,ops"))).toBe(200); // ml 59, ops 59
    const s = send(h, "bob", "ops"); // ops would be 118
    expect(status(s)).toBe(429);
    expect(JSON.parse(s.getSentLocalResponse()!.body.toString()).error.message).toMatch(/rule 'teams'/);
    expect(status(send(h, "carol", "search"))).toBe(200); // a group of its own: search 59
    expect(status(send(h, "erin", "search"))).toBe(429); // search would be 118
    // A consumer without groups: the rule does not apply (like a missing key part).
    for (let i = 0; i < 3; i++) expect(status(send(h, "frank"))).toBe(200);
  });

  it("dave's refused request kept nothing on the group that had room", async () => {
    const h = await chain({ name: "ai-ratelimit", wasm: "build/ai-ratelimit.wasm", configuration: { rules: [{ name: "teams", key: ["group"], limit: 100, window: "1m" }] } });
    expect(status(send(h, "alice", "ml"))).toBe(200); // ml 59
    expect(status(send(h, "dave", "search,ml"))).toBe(429); // search reserved 59, then ml refused: search given back
    expect(status(send(h, "carol", "search"))).toBe(200); // search has its full 100 again
  });

  it("when: {group}: matches any of the consumer's groups; with key [group] only the matching groups get a counter", async () => {
    const h = await chain({
      name: "ai-ratelimit", wasm: "build/ai-ratelimit.wasm",
      configuration: { rules: [{ name: "teams", key: ["group"], when: { group: "team-*" }, limit: 100, window: "1m" }, { name: "contractors", key: ["consumer"], when: { group: ["contractors"] }, limit: 60, window: "1m" }] },
    });
    expect(status(send(h, "alice", "admins,team-a"))).toBe(200); // team-a 59; admins has no counter
    expect(status(send(h, "bob", "admins"))).toBe(200);
    expect(status(send(h, "bob", "admins"))).toBe(200); // admins: no rule applies, however often
    expect(status(send(h, "carol", "team-a"))).toBe(429);
    expect(status(send(h, "dave", "contractors"))).toBe(200); // dave 59 of 60
    expect(status(send(h, "dave", "contractors"))).toBe(429);
    expect(status(send(h, "dave"))).toBe(200); // without the group, the contractors rule does not apply
  });
});

describe("ai-router: group", () => {
  it("routes by any of the consumer's groups", async () => {
    const h = await chain({ name: "ai-router", wasm: "build/ai-router.wasm", configuration: { default_pool: "d", rules: [{ name: "ml", pool: "gpu", when: { group: ["ml", "research"] } }] } });
    const rule = (s: ReturnType<Host["newStream"]>) => s.getFilterState("sluice.route_rule");
    expect(rule(send(h, "alice", "ops,research"))).toBe("ml");
    expect(rule(send(h, "bob", "ops"))).toBe("default");
    expect(rule(send(h, "carol"))).toBe("default");
    expect(rule(send(h, "dave", "ml-ops"))).toBe("default"); // exact names, not prefixes
  });
});
