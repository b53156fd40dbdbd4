// The live page of the local gateway's admin port (host/live/, docs/live-page.md), in a real browser:
// Debian's Chromium, headless, driven by puppeteer-core. After traffic through npm start's code (mock
// providers, the official openai client) the page shows the figures /stats/prometheus has, the
// instances, and the last requests without their prompts; it asks nothing of any origin but the
// admin port, and runs under a CSP that allows nothing else.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { startLocalGateway, type LocalGateway } from "../../cli/start.js";
import { renderYaml } from "../fixtures/local-gateway.js";

const CHROMIUM = "/usr/bin/chromium";
const SECRET_PROMPT = "the-prompt-must-not-show-7f3a9c";

const GATEWAY_YAML = `
listener: { address: 127.0.0.1, port: 10000 }
admin: { port: 9901 }
consumers:
  - name: alice
    keys: [sk-alice-123]
  - name: bob
    keys: [sk-bob-456]
providers:
  - name: openai
    provider: openai
    api_key_env: OPENAI_API_KEY
    models: ["gpt-4o"]
  - name: claude
    provider: anthropic
    api_key_env: ANTHROPIC_API_KEY
    models: ["claude-sonnet-4-5"]
`;

let gw: LocalGateway;
let browser: Browser;
let page: Page;
const requested: string[] = [];
const consoleErrors: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium; .ci/run does)`);
  gw = await startLocalGateway({ envoyYaml: renderYaml(GATEWAY_YAML, {}, "").envoyYaml, port: 0, adminPort: 0, env: {}, accessLog: () => {} });
  const alice = new OpenAI({ apiKey: "sk-alice-123", baseURL: `${gw.url}/v1` });
  const bob = new OpenAI({ apiKey: "sk-bob-456", baseURL: `${gw.url}/v1` });
  await alice.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: SECRET_PROMPT }] });
  await alice.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hello" }] });
  const stream = await bob.chat.completions.create({ model: "claude-sonnet-4-5", stream: true, messages: [{ role: "user", content: "stream please" }] });
  for await (const _ of stream) void _;
  await alice.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] }).catch(() => {});

  browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
  page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 1000 });
  page.on("request", (r) => requested.push(r.url()));
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  await page.goto(`${gw.adminUrl}/`, { waitUntil: "load" });
  // Two refreshes, so the rates have a previous scrape to compare with.
  await page.waitForFunction(() => document.body.dataset.refreshed !== undefined, { timeout: 10_000 });
  const first = await page.evaluate(() => document.body.dataset.refreshed);
  await page.waitForFunction((f) => document.body.dataset.refreshed !== f, { timeout: 10_000 }, first);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await gw?.close();
});

async function prometheus(): Promise<string> {
  return (await fetch(`${gw.adminUrl}/stats/prometheus`)).text();
}

/** A metric's total over the series whose labels include `labels`. */
function total(text: string, name: string, labels: Record<string, string> = {}): number {
  let n = 0;
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (Object.entries(labels).every(([k, v]) => m[2].includes(`${k}="${v}"`))) n += Number(m[3]);
  }
  return n;
}

/**
 * histogram_quantile over one histogram's buckets, written here apart from the page's, so the page is
 * checked against Prometheus's rule: the rank q * count falls in the first bucket whose cumulative
 * count reaches it, and is placed linearly between that bucket's bounds (0 below the first); in the
 * +Inf bucket it is the highest finite bound.
 */
function histogramQuantile(text: string, name: string, labels: Record<string, string>, q: number): number {
  const counts = new Map<number, number>();
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== `${name}_bucket` || !Object.entries(labels).every(([k, v]) => m[2].includes(`${k}="${v}"`))) continue;
    const le = /le="([^"]+)"/.exec(m[2])![1];
    const bound = le === "+Inf" ? Infinity : Number(le);
    counts.set(bound, (counts.get(bound) ?? 0) + Number(m[3]));
  }
  const buckets = [...counts].sort((a, b) => a[0] - b[0]);
  const rank = q * buckets[buckets.length - 1][1];
  const i = buckets.findIndex(([, c]) => c >= rank);
  if (buckets[i][0] === Infinity) return buckets[i - 1][0];
  const [lower, below] = i === 0 ? [0, 0] : buckets[i - 1];
  return lower + ((buckets[i][0] - lower) * (rank - below)) / (buckets[i][1] - below);
}

const num = (s: string) => Number(s.replace(/,/g, ""));
const rows = (id: string) => page.$$eval(`#${id} tbody tr`, (trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent ?? "")));

describe("the live page on the admin port", () => {
  it("loads without errors and shows the totals /stats/prometheus has", async () => {
    expect(consoleErrors, consoleErrors.join("\n")).toEqual([]);
    const text = await prometheus();
    const tile = async (id: string) => num(await page.$eval(`#${id}`, (e) => e.textContent ?? ""));
    expect(await tile("requests")).toBe(total(text, "sluice_ai_requests"));
    expect(await tile("requests")).toBeGreaterThanOrEqual(3);
    const tokens = total(text, "sluice_ai_prompt_tokens") + total(text, "sluice_ai_completion_tokens");
    expect(tokens).toBeGreaterThan(0);
    expect(await tile("tokens")).toBe(tokens);
    expect(await tile("cost")).toBeCloseTo(total(text, "sluice_ai_cost_micros") / 1e6, 6);
    expect(await tile("cost")).toBeGreaterThan(0);
    expect(await tile("errors")).toBe(total(text, "sluice_ai_errors"));
    expect(await tile("errors")).toBeGreaterThan(0);
  });

  it("shows requests, tokens and cost per consumer and model, as the metrics count them", async () => {
    const text = await prometheus();
    const table = await rows("by-consumer");
    for (const [consumer, model] of [["alice", "gpt-4o"], ["bob", "claude-sonnet-4-5"]]) {
      const row = table.find((r) => r[0] === consumer && r[1] === model);
      expect(row, `${consumer} ${model}`).toBeDefined();
      const l = { consumer, model };
      expect(num(row![2])).toBe(total(text, "sluice_ai_requests", l));
      expect(num(row![3])).toBe(total(text, "sluice_ai_prompt_tokens", l));
      expect(num(row![4])).toBe(total(text, "sluice_ai_completion_tokens", l));
      expect(num(row![5])).toBeCloseTo(total(text, "sluice_ai_cost_micros", l) / 1e6, 6);
      expect(num(row![3])).toBeGreaterThan(0);
    }
  });

  it("shows time to first token percentiles and every instance's health", async () => {
    const text = await prometheus();
    const ttft = await rows("ttft");
    for (const [provider, model, n] of [["openai", "gpt-4o", 2], ["anthropic", "claude-sonnet-4-5", 1]] as const) {
      const row = ttft.find((r) => r[0] === provider && r[1] === model);
      expect(row, `${provider} ${model}`).toBeDefined();
      expect(num(row![2])).toBe(n);
      expect(num(row![2])).toBe(total(text, "sluice_ai_ttft_ms_count", { provider, model }));
      // The page shows whole milliseconds.
      [0.5, 0.9, 0.99].forEach((q, i) => {
        expect(num(row![3 + i]), `p${q * 100}`).toBe(Math.round(histogramQuantile(text, "sluice_ai_ttft_ms", { provider, model }, q)));
      });
    }
    const instances = await rows("instances");
    expect(instances.map((r) => r[0]).sort()).toEqual(["claude", "openai"]);
    for (const r of instances) {
      expect(total(text, "sluice_ai_instance_available", { instance: r[0] })).toBe(1);
      expect(r[1]).toBe("available");
      expect(num(r[2])).toBe(total(text, "sluice_ai_instance_picked", { instance: r[0] }));
    }
    expect(num(instances.find((r) => r[0] === "openai")![2])).toBe(2);
  });

  it("lists the last requests, newest first, without a prompt anywhere", async () => {
    const recent = await rows("recent");
    expect(recent.length).toBeGreaterThanOrEqual(4);
    expect(recent[0][2]).toMatch(/^4\d\d$/); // the unknown model, last sent
    // bob's stream, as the access log shows it: the path ai-proxy sent upstream (Anthropic's).
    const bob = recent.find((r) => r[3] === "bob")!;
    expect(bob.slice(1, 6)).toEqual(["POST /v1/messages", "200", "bob", "anthropic", "claude-sonnet-4-5"]);
    expect(bob[6]).toMatch(/^\d+ \/ \d+$/);
    const html = await page.content();
    expect(html).not.toContain(SECRET_PROMPT);
    expect(await (await fetch(`${gw.adminUrl}/live/recent.json`)).text()).not.toContain(SECRET_PROMPT);
    expect(html).not.toContain("sk-alice-123");
  });

  it("asks nothing of any origin but the admin port, under a CSP that allows nothing else", async () => {
    const origin = new URL(gw.adminUrl).origin;
    expect(requested.length).toBeGreaterThanOrEqual(5);
    for (const u of requested) expect(new URL(u).origin, u).toBe(origin);
    const r = await fetch(`${gw.adminUrl}/`);
    expect(r.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(r.headers.get("content-security-policy")).toContain("connect-src 'self'");
    expect(r.headers.get("x-content-type-options")).toBe("nosniff");
    // An injected script from elsewhere is refused by the browser.
    const blocked = await page.evaluate(async () => {
      try {
        await fetch("http://example.invalid/");
        return false;
      } catch {
        return true;
      }
    });
    expect(blocked).toBe(true);
  });

  it("requests per second and tokens per second move with traffic while the page is open", async () => {
    const alice = new OpenAI({ apiKey: "sk-alice-123", baseURL: `${gw.url}/v1` });
    for (let i = 0; i < 5; i++) await alice.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: `again ${i}` }] });
    // The first refresh whose scrape came after the traffic shows it as a rate (one refresh may have
    // been under way); both figures come from the same refresh.
    await page.waitForFunction(() => {
      const rate = (id: string) => Number((document.getElementById(id)?.textContent ?? "").replace(/,/g, ""));
      return rate("rps") > 0 && rate("tps") > 0;
    }, { timeout: 10_000 });
  });

  it("a path that names an object's own member (/constructor, /__proto__) is a 404, as any unknown path", async () => {
    for (const p of ["/constructor", "/__proto__", "/toString", "/hasOwnProperty"]) {
      const r = await fetch(`${gw.adminUrl}${p}`);
      expect(r.status, p).toBe(404);
    }
    expect((await fetch(`${gw.adminUrl}/ready`)).status).toBe(200);
  });

  it("renders: a screenshot of the page holds the figures (a real PNG of the laid-out page)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sluice-live-"));
    const file = join(dir, "live.png");
    await page.screenshot({ path: file as `${string}.png`, fullPage: true });
    const png = readFileSync(file);
    expect(png.subarray(1, 4).toString()).toBe("PNG");
    expect(statSync(file).size).toBeGreaterThan(20_000);
    // The tables are laid out with width: their boxes are where the screenshot shows them.
    const box = await (await page.$("#by-consumer"))!.boundingBox();
    expect(box!.width).toBeGreaterThan(600);
    expect(box!.height).toBeGreaterThan(40);
  });
});
