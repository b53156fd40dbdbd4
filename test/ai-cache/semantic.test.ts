// ai-cache's semantic lookups through the compiled modules, against an embeddings server whose
// vectors the test chooses: a near-repeat answered from the cache (similarity at or above the
// threshold), a different question or another group not, the embeddings instance failing (a plain
// miss, counted), the vectors shared by every worker and bounded by max_vectors.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { cacheChain, ask, reply, got, isHit, openaiAnswer } from "./helpers.js";

const CHAT = "/v1/chat/completions";
const DIMS = 64;

/** A unit vector along axis a, turned by angle t towards axis b: cos(t) to the first. */
function vec(a: number, b = a + 1, t = 0): number[] {
  const v = new Array(DIMS).fill(0);
  v[a] += Math.cos(t);
  v[b] += Math.sin(t);
  return v;
}

const VECTORS: Record<string, number[]> = {
  "What is the capital of France?": vec(0),
  "Which city is the capital of France?": vec(0, 1, Math.acos(0.96)),
  "What is the capital of Spain?": vec(0, 1, Math.acos(0.8)),
  "Tell me a joke": vec(10),
};

let server: http.Server;
let base = "";
let failing = false;
const seen: { auth?: string; input: unknown }[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let b = "";
    req.on("data", (d) => (b += d));
    req.on("end", () => {
      const body = JSON.parse(b);
      seen.push({ auth: req.headers.authorization, input: body.input });
      if (failing) return void res.writeHead(503, { "content-type": "application/json" }).end('{"error":{"message":"down"}}');
      const text = String(body.input);
      const v = VECTORS[text] ?? vec(20 + (text.length % 40));
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ object: "list", model: body.model, data: [{ object: "embedding", index: 0, embedding: v }], usage: { prompt_tokens: 5, total_tokens: 5 } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((r) => server.close(r)));

const SEMANTIC = { cluster: "embeddings", authority: "emb.local", model: "text-embedding-3-small", api_key: "emb-key", threshold: 0.92 };
const q = (text: string, system?: string) => ({ model: "gpt-4o", messages: [...(system ? [{ role: "system", content: system }] : []), { role: "user", content: text }] });

describe("ai-cache: semantic hits", () => {
  it("answers a near-repeat from the cache with its similarity, and sends a different question on", async () => {
    const h = await cacheChain({ semantic: SEMANTIC }, { embeddings: base });
    reply(await ask(h, CHAT, q("What is the capital of France?")), "application/json", [openaiAnswer("Paris.")]);
    expect(seen.at(-1)).toEqual({ auth: "Bearer emb-key", input: "What is the capital of France?" });

    const near = await ask(h, CHAT, q("Which city is the capital of France?"));
    expect(isHit(near)).toBe(true);
    expect(JSON.parse(got(near).body).choices[0].message.content).toBe("Paris.");
    // Quantized to a byte a dimension: within 1 % of the float vectors' 0.96.
    expect(Math.abs(Number(near.getFilterState("sluice.cache_similarity")) - 0.96)).toBeLessThan(0.01);
    expect(h.getMetric("sluice.cache_requests;outcome=hit;reason=semantic")?.value).toBe(1n);

    const other = await ask(h, CHAT, q("What is the capital of Spain?"));
    expect(isHit(other)).toBe(false);
    expect(other.getFilterState("sluice.cache")).toBe("miss");
  });

  it("compares prompts of the same group only: another system prompt is another conversation", async () => {
    const h = await cacheChain({ semantic: SEMANTIC }, { embeddings: base });
    reply(await ask(h, CHAT, q("What is the capital of France?", "Answer in French.")), "application/json", [openaiAnswer("Paris.")]);
    expect(isHit(await ask(h, CHAT, q("Which city is the capital of France?", "Answer in German.")))).toBe(false);
    expect(isHit(await ask(h, CHAT, q("Which city is the capital of France?", "Answer in French.")))).toBe(true);
  });

  it("never crosses consumers", async () => {
    const h = await cacheChain({ semantic: SEMANTIC }, { embeddings: base });
    reply(await ask(h, CHAT, q("What is the capital of France?"), { state: { consumer: "alice" } }), "application/json", [openaiAnswer("Paris.")]);
    expect(isHit(await ask(h, CHAT, q("Which city is the capital of France?"), { state: { consumer: "bob" } }))).toBe(false);
  });

  it("shares the vectors between workers", async () => {
    const h = await cacheChain({ semantic: SEMANTIC }, { embeddings: base, workers: 2 });
    reply(await ask(h, CHAT, q("What is the capital of France?"), { worker: 0 }), "application/json", [openaiAnswer("Paris.")]);
    expect(isHit(await ask(h, CHAT, q("Which city is the capital of France?"), { worker: 1 }))).toBe(true);
  });

  it("goes on as a plain miss when the embeddings instance fails, and counts it", async () => {
    const h = await cacheChain({ semantic: SEMANTIC }, { embeddings: base });
    failing = true;
    try {
      const s = await ask(h, CHAT, q("What is the capital of France?"));
      expect(s.upstream.headers).not.toBeNull();
      expect(s.getFilterState("sluice.cache")).toBe("miss");
      expect(h.getMetric("sluice.cache_embedding_errors")?.value).toBe(1n);
      reply(s, "application/json", [openaiAnswer("Paris.")]);
      // The answer is still kept for exact repeats.
      expect(isHit(await ask(h, CHAT, q("What is the capital of France?")))).toBe(true);
    } finally {
      failing = false;
    }
  });

  it("embeds the whole conversation when input is conversation", async () => {
    const h = await cacheChain({ semantic: { ...SEMANTIC, input: "conversation" } }, { embeddings: base });
    const body = { model: "gpt-4o", messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hi \"there\"" }] };
    reply(await ask(h, CHAT, body), "application/json", [openaiAnswer("Hello.")]);
    expect(seen.at(-1)?.input).toBe("system: Be brief.\nuser: Hi \"there\"");
  });

  it("keeps at most max_vectors vectors in shared data", async () => {
    const h = await cacheChain({ semantic: { ...SEMANTIC, max_vectors: 16 } }, { embeddings: base });
    for (let i = 0; i < 40; i++) reply(await ask(h, CHAT, q(`question number ${i} ${"x".repeat(i)}`)), "application/json", [openaiAnswer(`answer ${i}`)]);
    const counter = h.getSharedData("sluice.ai-cache.v.next")!;
    expect(counter.value.readBigInt64LE(0)).toBe(40n);
    for (let slot = 0; slot < 16; slot++) expect(h.getSharedData(`sluice.ai-cache.v.${slot}`)).toBeDefined();
    expect(h.getSharedData("sluice.ai-cache.v.16")).toBeUndefined();
  });
});
