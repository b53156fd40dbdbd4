// ai-router parses every chat request body it routes on, and a wasm VM's memory never shrinks
// (issue 13). Before max_json_values reached ai-router, a 3 MB body of 1,000,000 empty arrays took
// it to 1,792 pages for good, and one at its 10 MiB max_body_bytes far more. Now its parse stops at
// max_json_values (default 500,000, as ai-proxy's): the body counts as unreadable, like one past
// max_body_bytes. Its body conditions are unknown (their rules are skipped), header and consumer
// conditions still decide, and the request goes on: ai-proxy refuses it with its own 400.
import { describe, it, expect } from "vitest";
import { Host } from "../host/index.js";
import { BOMB_SHAPES } from "./json-bombs.js";

const CAP = 10 * 1024 * 1024; // ai-router's max_body_bytes default

// 500,000 values of the costliest shapes (empty containers at 96 bytes, distinct keys with their
// strings and duplicate-key index) are about 95 MB, plus the 10 MiB body, within the allocator's
// growth step: as for ai-proxy, 2,048 pages (128 MiB); these shapes end at 1,408 pages at most.
// Before the bound, empty arrays or objects at the cap took ai-router to 11,264 pages (704 MiB).
const BOMB_PAGES = 2048;

const SHAPES = BOMB_SHAPES;

const CONFIG = {
  default_pool: "d",
  rules: [
    // A body condition: unknown for an unreadable body (neither true nor false), so skipped.
    { name: "not-code", pool: "p", when: { not: { task: "code" } } },
    { name: "team", pool: "t", when: { header: { name: "x-team", exact: "ml" } } },
    { name: "alice", pool: "a", when: { consumer: ["alice"] } },
  ],
};

async function chain() {
  return Host.create({
    filters: [
      { name: "key-auth", wasm: "build/key-auth.wasm", configuration: { consumers: [{ name: "alice", keys: ["k-alice"] }, { name: "bob", keys: ["k-bob"] }] } },
      { name: "ai-router", wasm: "build/ai-router.wasm", allowOnHeadersStopIteration: true, configuration: CONFIG },
    ],
  });
}

function send(h: Host, body: string, headers: Record<string, string>) {
  const s = h.newStream();
  s.callOnRequestHeaders({ ":method": "POST", ":path": "/v1/chat/completions", ":authority": "gw", "content-type": "application/json", ...headers }, false);
  const onBody = s.callOnRequestBody(body, true);
  const rule = s.getFilterState("sluice.route_rule");
  const forwarded = s.upstream.body.length;
  const local = s.getSentLocalResponse();
  s.completeHttpContext();
  return { onBody, rule, forwarded, local };
}

describe("ai-router: a request body of too many JSON values", () => {
  for (const [name, shape] of Object.entries(SHAPES)) {
    it(`${name} at max_body_bytes: body conditions unknown, header and consumer rules still route, the request goes on, pages bounded`, async () => {
      const h = await chain();
      const body = `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"x":${shape(CAP - 200)}}`;
      expect(body.length).toBeLessThanOrEqual(CAP);
      // Header condition, then consumer condition, then neither (the default: "not-code" is skipped).
      const team = send(h, body, { authorization: "Bearer k-bob", "x-team": "ml" });
      const alice = send(h, body, { authorization: "Bearer k-alice" });
      const none = send(h, body, { authorization: "Bearer k-bob" });
      for (const r of [team, alice, none]) {
        expect(r.onBody).toBe("Continue");
        expect(r.local).toBeFalsy(); // not refused here: ai-proxy answers its own 400
        expect(r.forwarded).toBe(body.length);
      }
      expect([team.rule, alice.rule, none.rule]).toEqual(["team", "alice", "default"]);
      const pages = h.memoryPages("ai-router");
      console.log(`${name}: ai-router at ${pages} pages after three bombs`);
      expect(pages).toBeLessThanOrEqual(BOMB_PAGES);
      // A readable body is still read: its body condition decides.
      expect(send(h, JSON.stringify({ model: "m", messages: [{ role: "user", content: "What is the capital of France?" }] }), { authorization: "Bearer k-bob" }).rule).toBe("not-code");
      h.close();
    });
  }

  it("max_json_values is the exact bound and can be set", async () => {
    const h = await Host.create({ filters: [{ name: "ai-router", wasm: "build/ai-router.wasm", allowOnHeadersStopIteration: true, configuration: { ...CONFIG, max_json_values: 1000 } }] });
    // {"model","messages":[{"role","content"}],"x":[...]}: root, model, messages, one message, role,
    // content, x: 7 values, then the items of x.
    const body = (items: number) => `{"model":"m","messages":[{"role":"user","content":"What is the capital of France?"}],"x":[${Array(items).fill("[]").join(",")}]}`;
    expect(send(h, body(993), {}).rule).toBe("not-code");
    expect(send(h, body(994), {}).rule).toBe("default");
    h.close();
  });
});
