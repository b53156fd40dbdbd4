// ai-proxy's metrics (issue 13): every configured instance has its availability gauge from the
// start, and label values come only from the configuration, so the number of series (and the
// filter's memory) stays bounded whatever model names clients send or providers answer with.
import { describe, it, expect } from "vitest";
import type { Host } from "../../host/index.js";
import { proxyHost, send, answer } from "./helpers.js";
import { statsTags } from "../../cli/render/access-log.js";

const CONFIG = {
  instances: [
    { name: "oa", provider: "openai", api_key: "sk-oa", models: ["gpt-*"] },
    { name: "local", provider: "openai-compatible", endpoint: "http://vllm.internal:8000/v1", models: ["llama-*"], model_map: { "llama-big": "meta-llama/Llama-3.3-70B-Instruct" } },
    { name: "fixed", provider: "openai", api_key: "sk-fixed", model: "gpt-4o-mini", models: ["cheap"] },
  ],
  pools: [{ name: "smart", instances: ["oa"] }],
};

const answerBody = (model: string) => JSON.stringify({
  id: "c1", object: "chat.completion", created: 1, model,
  choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
  usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
});

/** One request with a client-chosen model, answered by the provider with another made-up name. */
function request(h: Host, model: string, i: number) {
  const s = send(h, "/v1/chat/completions", { model, messages: [{ role: "user", content: "hi" }] });
  if (i % 3 === 0) answer(s, 500 + (i % 4), "application/json", [JSON.stringify({ error: { message: "no" } })]);
  else answer(s, 200, "application/json", [answerBody(`${model}-provider-build-${i}`)]);
}

describe("ai-proxy metrics", () => {
  it("every configured instance has sluice_ai_instance_available from the start", async () => {
    const h = await proxyHost(CONFIG);
    for (const name of ["oa", "local", "fixed"]) {
      const m = h.getMetric(`sluice.ai_instance_available;instance=${name}`);
      expect(m?.type, name).toBe("gauge");
      expect(m?.value, name).toBe(1n);
    }
    expect(h.prometheus()).toContain("sluice_ai_instance_available");
    h.close();
  });

  it("labels models with configured names only; 2,000 client model names leave series and pages bounded", async () => {
    const h = await proxyHost(CONFIG);
    // Configured names keep their label: an instance's model, a model_map value, a pool name.
    request(h, "cheap", 1);
    request(h, "llama-big", 2);
    request(h, "smart", 4);
    expect(h.getMetric("sluice.ai_requests;provider=openai;model=gpt-4o-mini;consumer=anonymous;request_type=ai_chat")?.value).toBe(1n);
    expect(h.getMetric("sluice.ai_requests;provider=openai-compatible;model=meta-llama/Llama-3.3-70B-Instruct;consumer=anonymous;request_type=ai_chat")?.value).toBe(1n);
    // (The pool's instance passes the client's model on: "smart" is a configured name.)
    expect(h.getMetric("sluice.ai_requests;provider=openai;model=smart;consumer=anonymous;request_type=ai_chat")?.value).toBe(1n);

    for (let i = 0; i < 40; i++) request(h, (i % 2 ? "gpt-" : "llama-") + `warm-${i}`, i);
    const metricsWarm = h.metrics.all().length;
    const linesWarm = h.prometheus().split("\n").length;
    const pagesWarm = h.memoryPages("ai-proxy");
    for (let i = 0; i < 2000; i++) request(h, (i % 2 ? "gpt-" : "llama-") + `client-chosen-${i}-${"x".repeat(i % 50)}`, i);
    // Not one metric more: every one of the 2,000 names is "other".
    expect(h.metrics.all().length).toBe(metricsWarm);
    expect(h.prometheus().split("\n").length).toBe(linesWarm);
    expect(h.metrics.all().filter((m) => m.name.includes("client-chosen") || m.name.includes("provider-build"))).toEqual([]);
    const other = h.getMetric("sluice.ai_requests;provider=openai;model=other;consumer=anonymous;request_type=ai_chat");
    expect(other?.value).toBe(BigInt(1000 + 20));
    // Memory: the per-VM caches are bounded (ai-proxy went from 32 to 128 pages before).
    expect(h.memoryPages("ai-proxy")).toBeLessThanOrEqual(Math.max(pagesWarm, 32));
    h.close();
  });

  it("an error status a provider makes up is not a label value", async () => {
    const h = await proxyHost(CONFIG);
    const s = send(h, "/v1/chat/completions", { model: "cheap", messages: [{ role: "user", content: "hi" }] });
    answer(s, 999, "application/json", [JSON.stringify({ error: { message: "odd" } })]);
    const errors = h.metrics.all().filter((m) => m.name.startsWith("sluice.ai_errors;provider=openai"));
    expect(errors.map((m) => m.name)).toEqual(["sluice.ai_errors;provider=openai;model=gpt-4o-mini;consumer=anonymous;status=other"]);
    h.close();
  });
});

describe("ai-proxy spend labels: team and key (docs/observability.md)", () => {
  const ask = (h: Host, facts: Record<string, string>) => {
    // key-auth and identity run before ai-proxy: their filter state is there when the request arrives.
    const s = send(h, "/v1/chat/completions", { model: "cheap", messages: [{ role: "user", content: "hi" }] }, {}, facts);
    answer(s, 200, "application/json", [answerBody("gpt-4o-mini")]);
  };
  const WHO = "provider=openai;model=gpt-4o-mini;consumer=anonymous";

  it("a virtual key's team and id label requests, tokens and cost; else the first group; none is no label", async () => {
    const h = await proxyHost({ ...CONFIG, prices: { "gpt-4o-mini": { input: 1, output: 2 } } });
    ask(h, { key_id: "k-1", team: "red", groups: "blue,green" });
    ask(h, { key_id: "k-1", team: "red" });
    ask(h, { groups: "blue,green" });
    ask(h, {});
    for (const [labels, n] of [[";team=red;key=k-1", 2n], [";team=blue", 1n], ["", 1n]] as const) {
      expect(h.getMetric(`sluice.ai_requests;${WHO}${labels};request_type=ai_chat`)?.value, labels).toBe(n);
      expect(h.getMetric(`sluice.ai_prompt_tokens;${WHO}${labels}`)?.value, labels).toBe(3n * n);
      expect(h.getMetric(`sluice.ai_completion_tokens;${WHO}${labels}`)?.value, labels).toBe(n);
      // 3 prompt tokens × 1 + 1 completion token × 2 = 5 micro-dollars a request.
      expect(h.getMetric(`sluice.ai_cost_micros;${WHO}${labels}`)?.value, labels).toBe(5n * n);
    }
    // Envoy's tag extraction (the rendered stats_tags) makes them Prometheus labels.
    const text = h.prometheus(statsTags().map((t) => ({ tagName: t.tag_name, regex: t.regex })));
    expect(text).toContain('sluice_ai_cost_micros{provider="openai",model="gpt-4o-mini",consumer="anonymous",team="red",key="k-1"} 10');
    expect(text).toContain('sluice_ai_cost_micros{provider="openai",model="gpt-4o-mini",consumer="anonymous",team="blue"} 5');
    expect(text).toContain('sluice_ai_cost_micros{provider="openai",model="gpt-4o-mini",consumer="anonymous"} 5');
    h.close();
  });

  it("a value no filter would write (a separator, a quote, too long, past ASCII) is 'other': names cannot be split, series stay bounded", async () => {
    const h = await proxyHost(CONFIG);
    ask(h, { key_id: "k;status=200", team: 'a"b' });
    ask(h, { key_id: "x".repeat(65), team: "équipe" });
    ask(h, { groups: "a=b,c" });
    expect(h.getMetric(`sluice.ai_requests;${WHO};team=other;key=other;request_type=ai_chat`)?.value).toBe(2n);
    expect(h.getMetric(`sluice.ai_requests;${WHO};team=other;request_type=ai_chat`)?.value).toBe(1n);
    const before = h.metrics.all().length;
    for (let i = 0; i < 500; i++) ask(h, { key_id: `k=${i}`, team: `t;${i}` });
    expect(h.metrics.all().length).toBe(before);
    h.close();
  });
});
