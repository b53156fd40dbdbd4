// The benchmark report: Markdown tables of bench-results/{filters,gateway,memory}.json, the
// added-latency chart (plain SVG text), and BENCHMARKS.md.
//
//   node --import tsx scripts/bench/report.ts      (npm run bench -- --report)
//
// BENCHMARKS.md keeps its hand-written text; only the blocks between
// <!-- generated:NAME --> and <!-- /generated:NAME --> are replaced (created from a template when
// the file does not exist). The chart goes to docs/bench/added-latency.svg (bench-results/ is not
// committed; the report and the chart are).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const REPORT = join(ROOT, "BENCHMARKS.md");
const CHART = join(ROOT, "docs", "bench", "added-latency.svg");
const CHART_REL = "docs/bench/added-latency.svg";

// Targets, checked by reading the report. Issue 24's are in wasm time (what Envoy runs; the host's
// share is the JS stand-in's): a translated 2 KB request, a streamed chunk, the 32 KB case against
// its own JSON floor, ai-router on a 2 KB prompt, and the local gateway's CPU per request against
// Portkey's in the same run. Issue 8's p99, memory and size targets stay.
export const TARGETS = { requestWasmUs: 25, chunkWasmUs: 0.6, largeFloorRatio: 4, routerWasmUs: 10, cpuRatio: 0.35, p99Ratio: 0.5, wasmBytes: 200_000, rssGrowthMiB: 1 };

const f = (x: number | null | undefined, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? "—" : x.toFixed(d));
const f1 = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const plus = (x: number | null | undefined, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? "—" : `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(d)}`);
const NAMES: Record<string, string> = { direct: "direct", sluice: "Sluice", "sluice-full": "Sluice whole chain", portkey: "Portkey" };

// ------------------------------------------------------------------------------------- tables
export function filterTables(r: any): string {
  const rows = [
    "| case | unit | median µs | p99 µs | in wasm µs | in host µs | V8 JSON floor µs | × floor |",
    "|---|---|--:|--:|--:|--:|--:|--:|",
  ];
  for (const c of r.cases) {
    rows.push(`| (${c.id}) ${c.title} | ${c.unit} | **${f1(c.perUnitUs.median)}** | ${f1(c.perUnitUs.p99)} | ${f1(c.inWasmUs.median)} | ${f1(c.inHostUs)} | ${c.floorUs ? f1(c.floorUs.median) : "—"} | ${c.ratioToFloor ? c.ratioToFloor.toFixed(1) + "×" : "—"} |`);
  }
  return rows.join("\n");
}

export function gatewayTables(r: any): string {
  const names: string[] = r.setups.map((s: any) => s.name);
  const gw = names.filter((n) => n !== "direct");
  const L: string[] = [];
  if (r.sluice) L.push(`Sluice's chain, from envoy/envoy.yaml: ${r.sluice.filters.join(" → ")} → router${r.sluice.dropped.length ? ` (left out: ${r.sluice.dropped.join(", ")})` : ""}.${r.sluiceFull ? ` Sluice whole chain: ${r.sluiceFull.filters.join(" → ")} → router (ai-ratelimit's limits raised out of reach).` : ""} Answers checked before measuring: every setup returns the same ${r.setups[0].answer.plainBytes}-byte chat.completion and a stream ending in \`data: [DONE]\`.`);
  L.push("");
  L.push(`Added latency (setup − direct in the same round; median over ${r.method.rounds} rounds of ${r.method.durationS} s per setup), in ms:`);
  L.push("");
  L.push(`| mode | concurrency | direct p50 / p99 | ${gw.map((n) => `${NAMES[n]} added p50 / p99`).join(" | ")} | ${gw.map((n) => `${NAMES[n]} p50 / p99`).join(" | ")} |`);
  L.push(`|---|--:|--:|${gw.map(() => "--:").join("|")}|${gw.map(() => "--:").join("|")}|`);
  for (const c of r.cells) {
    const s = c.setups;
    L.push(`| ${c.mode} | ${c.concurrency} | ${f(s.direct?.p50, 3)} / ${f(s.direct?.p99, 3)} | ${gw.map((n) => `**${plus(s[n].addedP50, 3)}** / **${plus(s[n].addedP99, 3)}**`).join(" | ")} | ${gw.map((n) => `${f(s[n].p50, 3)} / ${f(s[n].p99, 3)}`).join(" | ")} |`);
  }
  L.push("");
  L.push("Throughput (2xx responses per second, median over rounds), CPU time of each gateway process per request, and the CPU that other processes on the machine used meanwhile:");
  L.push("");
  L.push(`| mode | concurrency | ${names.map((n) => `${NAMES[n]} req/s`).join(" | ")} | ${gw.map((n) => `${NAMES[n]} CPU µs/req`).join(" | ")} | errors | other processes (cores) |`);
  L.push(`|---|--:|${names.map(() => "--:").join("|")}|${gw.map(() => "--:").join("|")}|--:|--:|`);
  for (const c of r.cells) {
    const s = c.setups;
    const errs = names.reduce((a, n) => a + s[n].non2xx + s[n].errors, 0);
    L.push(`| ${c.mode} | ${c.concurrency} | ${names.map((n) => f(s[n].rps, 0)).join(" | ")} | ${gw.map((n) => f(s[n].gatewayCpuUsPerReq, 0)).join(" | ")} | ${errs} | ${f(c.othersCores, 2)} |`);
  }
  if (r.paced?.length) {
    const p0 = r.method.paced;
    L.push("");
    L.push(`Streams of ${p0.chunks} tokens ${p0.gapMs} ms apart (node:http client, ${r.method.pacedRounds} rounds; at concurrency 1 two streams per setup and round, otherwise one batch of that many at once). TTFT = first token (first chunk with delta.content), TTFB = first body byte; gap = between consecutive tokens as the client receives them; added = setup − direct in the same round, median over rounds; ms:`);
    L.push("");
    L.push(`| concurrency | direct TTFT p50 | ${gw.map((n) => `${NAMES[n]} added TTFT p50 / p99`).join(" | ")} | ${gw.map((n) => `${NAMES[n]} added TTFB p50`).join(" | ")} | ${names.map((n) => `${NAMES[n]} gap p50 / p99`).join(" | ")} | ${gw.map((n) => `${NAMES[n]} added gap p99`).join(" | ")} |`);
    L.push(`|--:|--:|${gw.map(() => "--:").join("|")}|${gw.map(() => "--:").join("|")}|${names.map(() => "--:").join("|")}|${gw.map(() => "--:").join("|")}|`);
    for (const p of r.paced) {
      const s = p.setups;
      L.push(`| ${p.concurrency} | ${f(s.direct?.ttftP50, 2)} | ${gw.map((n) => `**${plus(s[n].addedTtftP50)}** / ${plus(s[n].addedTtftP99)}`).join(" | ")} | ${gw.map((n) => plus(s[n].addedTtfbP50)).join(" | ")} | ${names.map((n) => `${f(s[n].gapP50)} / ${f(s[n].gapP99)}`).join(" | ")} | ${gw.map((n) => plus(s[n].addedGapP99)).join(" | ")} |`);
    }
  }
  return L.join("\n");
}

export function memoryTables(r: any, fixed: any = null, gw: any = null): string {
  const L: string[] = [];
  const filters = Object.keys(r.before.pages);
  const pick = [r.before, ...r.samples.filter((s: any) => s.requests === r.warmup || s.requests === r.requests / 2), r.samples[r.samples.length - 1], r.after];
  const label = (s: any, i: number) => (i === 0 ? "before (host created)" : i === pick.length - 1 ? `after ${s.requests.toLocaleString("en")}, GC forced` : `${s.requests.toLocaleString("en")} requests`);
  L.push(`In-process, ${r.requests.toLocaleString("en")} requests through key-auth + ai-proxy (one VM each), Node's default V8 flags${r.gcEach ? "; a full GC before every sample" : ""}:`);
  L.push("");
  L.push(`| when | RSS MiB | V8 heap committed MiB | V8 heap used MiB | external MiB | ${filters.map((x) => `${x} pages (64 KiB)`).join(" | ")} | histogram samples kept |`);
  L.push(`|---|--:|--:|--:|--:|${filters.map(() => "--:").join("|")}|--:|`);
  pick.forEach((s: any, i: number) => L.push(`| ${label(s, i)} | ${f(s.rssMiB, 1)} | ${f(s.v8CommittedMiB, 1)} | ${f(s.heapUsedMiB, 2)} | ${f(s.externalMiB, 1)} | ${filters.map((x) => s.pages[x]).join(" | ")} | ${s.histogramSamples ?? "—"} |`));
  L.push("");
  const st = r.steady;
  L.push(`From ${st.from.toLocaleString("en")} to ${r.requests.toLocaleString("en")} requests (samples every ${r.every.toLocaleString("en")}): linear memory grew by ${filters.map((x) => `${st.pagesGrowth[x]} pages (${x})`).join(", ")}; V8 heap in use ${f(st.heapUsedMiB[0], 2)} → ${f(st.heapUsedMiB[1], 2)} MiB (slope ${plus(st.heapUsedMiBPer10k, 3)} MiB per 10,000); RSS ${f(st.rssRangeMiB[0], 1)}–${f(st.rssRangeMiB[1], 1)} MiB (slope ${plus(st.rssMiBPer10k, 3)} MiB per 10,000).`);
  if (fixed) {
    const fs_ = fixed.steady;
    L.push(`The same run with V8's young generation at its final size from the start (\`--min-semi-space-size=16 --max-semi-space-size=16\`): RSS ${f(fs_.rssRangeMiB[0], 1)}–${f(fs_.rssRangeMiB[1], 1)} MiB after ${fs_.from.toLocaleString("en")} requests (slope ${plus(fs_.rssMiBPer10k, 3)} MiB per 10,000), V8 heap in use ${f(fs_.heapUsedMiB[0], 2)} → ${f(fs_.heapUsedMiB[1], 2)} MiB, linear memory +${Object.values(fs_.pagesGrowth as Record<string, number>).reduce((a, b) => a + b, 0)} pages.`);
  }
  if (gw?.memory?.length) {
    L.push("");
    L.push("The gateway processes during the latency run (RSS in MiB; Sluice: each VM's linear-memory pages):");
    L.push("");
    const names = Object.keys(gw.memory[0].rssMiB);
    L.push(`| when | ${names.map((n) => `${NAMES[n] ?? n} RSS`).join(" | ")} | Sluice pages (key-auth / ai-proxy) |`);
    L.push(`|---|${names.map(() => "--:").join("|")}|--:|`);
    for (const m of gw.memory) L.push(`| ${m.at} | ${names.map((n) => f(m.rssMiB[n], 1)).join(" | ")} | ${m.sluice ? Object.values(m.sluice.pages).join(" / ") : "—"} |`);
  }
  L.push("");
  L.push("| module | bytes | KiB |");
  L.push("|---|--:|--:|");
  for (const [k, v] of Object.entries(r.wasmSizes as Record<string, number>)) L.push(`| ${r.wasmDir}/${k} | ${v.toLocaleString("en")} | ${(v / 1024).toFixed(1)} |`);
  return L.join("\n");
}

// ----------------------------------------------------------------------------------- targets
export function targetsTable(fl: any, gw: any, mem: any, memFixed: any = null): string {
  const L = ["| target | measured | |", "|---|---|---|"];
  const ok = (b: boolean | null) => (b === null ? "not measured" : b ? "**met**" : "**missed**");
  const byId = (id: string) => fl?.cases.find((c: any) => c.id === id);
  // The gateway targets are read on the whole chain when the run measured it (what users run), else
  // on key-auth + ai-proxy.
  const who = gw?.cells.some((x: any) => x.setups["sluice-full"]) ? "sluice-full" : "sluice";
  const chain = who === "sluice-full" ? "whole chain" : "key-auth + ai-proxy";
  const fc = byId("f"), gc = byId("g"), cc = byId("c"), pc = byId("p");
  L.push(`| a 2 KB request translated to Anthropic through key-auth + ai-proxy ≤ ${TARGETS.requestWasmUs} µs in wasm | ${fc ? `${f1(fc.inWasmUs.median)} µs in wasm (case f; ${f1(fc.perUnitUs.median)} µs with the JS host)` : "—"} | ${ok(fc ? fc.inWasmUs.median <= TARGETS.requestWasmUs : null)} |`);
  L.push(`| a streamed chunk (Anthropic → OpenAI, key-auth + ai-proxy) ≤ ${TARGETS.chunkWasmUs} µs in wasm | ${gc ? `${f1(gc.inWasmUs.median)} µs in wasm (case g; ${f1(gc.perUnitUs.median)} µs with the JS host)` : "—"} | ${ok(gc ? gc.inWasmUs.median <= TARGETS.chunkWasmUs : null)} |`);
  L.push(`| a 32 KB request translated to Anthropic < ${TARGETS.largeFloorRatio}× its own JSON floor | ${cc?.ratioToFloor ? `${cc.ratioToFloor.toFixed(1)}× (case c: ${f1(cc.perUnitUs.median)} µs, floor ${f1(cc.floorUs.median)} µs)` : "—"} | ${ok(cc?.ratioToFloor ? cc.ratioToFloor < TARGETS.largeFloorRatio : null)} |`);
  L.push(`| ai-router (parse, classifier and the shipped rules) ≤ ${TARGETS.routerWasmUs} µs in wasm per 2 KB prompt | ${pc ? `${f1(pc.inWasmUs.median)} µs in wasm (case p, all of ai-router's callbacks)` : "—"} | ${ok(pc ? pc.inWasmUs.median <= TARGETS.routerWasmUs : null)} |`);
  for (const mode of ["plain", "stream"]) {
    const cells = gw?.cells.filter((x: any) => x.mode === mode && x.setups[who]?.gatewayCpuUsPerReq && x.setups.portkey?.gatewayCpuUsPerReq) ?? [];
    const ratios = cells.map((x: any) => [x.concurrency, x.setups[who].gatewayCpuUsPerReq / x.setups.portkey.gatewayCpuUsPerReq]);
    const worst = ratios.length ? Math.max(...ratios.map((r: number[]) => r[1])) : null;
    L.push(`| local gateway CPU per request ≤ ${TARGETS.cpuRatio} × Portkey's, every concurrency (${mode}, 2 KB, ${chain}) | ${ratios.length ? ratios.map(([c, r]: number[]) => `c=${c} ${r.toFixed(2)}×`).join(", ") : "—"} | ${ok(worst === null ? null : worst <= TARGETS.cpuRatio)} |`);
  }
  {
    // Issue 24: no cell where Sluice adds more than Portkey, p50 or p99.
    const cells = gw?.cells.filter((x: any) => x.setups[who] && x.setups.portkey) ?? [];
    const worse = cells.filter((x: any) => x.setups[who].addedP50 > x.setups.portkey.addedP50 || x.setups[who].addedP99 > x.setups.portkey.addedP99);
    L.push(`| no cell where Sluice's added p50 or p99 exceeds Portkey's (${chain}) | ${cells.length ? (worse.length ? worse.map((x: any) => `${x.mode} c=${x.concurrency}: Sluice ${plus(x.setups[who].addedP50, 3)} / ${plus(x.setups[who].addedP99, 3)} ms, Portkey ${plus(x.setups.portkey.addedP50, 3)} / ${plus(x.setups.portkey.addedP99, 3)} ms`).join("; ") : `lower in all ${cells.length} cells`) : "—"} | ${ok(cells.length ? worse.length === 0 : null)} |`);
  }
  for (const mode of ["plain", "stream"]) {
    const c = gw?.cells.find((x: any) => x.mode === mode && x.concurrency === 1);
    const s = c?.setups.sluice?.addedP99, p = c?.setups.portkey?.addedP99;
    const have = s !== undefined && p !== undefined && s !== null && p !== null;
    L.push(`| local gateway added p99 at concurrency 1 < ${TARGETS.p99Ratio} × Portkey's (${mode}) | ${have ? `Sluice ${plus(s, 3)} ms, Portkey ${plus(p, 3)} ms (ratio ${(s / p).toFixed(2)})` : "—"} | ${ok(have ? s < TARGETS.p99Ratio * p : null)} |`);
  }
  if (mem) {
    const grew = Object.entries(mem.steady.pagesGrowth as Record<string, number>).filter(([, v]) => v !== 0);
    L.push(`| linear memory flat after warm-up (${mem.requests.toLocaleString("en")} requests in-process, one at a time) | ${grew.length ? grew.map(([k, v]) => `${k} +${v} pages`).join(", ") : `no page added after ${mem.steady.from.toLocaleString("en")} requests`} | ${ok(grew.length === 0)} |`);
    const gm = gw?.memory?.filter((m: any) => m.sluice);
    if (gm?.length >= 2) {
      const a = gm.find((m: any) => m.at === "after warm-up") ?? gm[0], b = gm[gm.length - 1];
      const grew = Object.keys(b.sluice.pages).filter((k) => b.sluice.pages[k] !== a.sluice.pages[k]);
      L.push(`| linear memory flat in the local gateway under load (after its warm-up → end of the latency run, up to 64 concurrent streams) | ${Object.keys(b.sluice.pages).map((k) => `${k} ${a.sluice.pages[k]} → ${b.sluice.pages[k]} pages`).join(", ")} | ${ok(grew.length === 0)} |`);
    }
    const span = (mem.requests - mem.steady.from) / 10_000;
    const total = mem.steady.rssMiBPer10k * span;
    const heap = mem.steady.heapUsedMiBPer10k * span;
    const fixedTotal = memFixed ? memFixed.steady.rssMiBPer10k * span : null;
    // Growth is what is judged (a fitted line sloping down is flat enough): the heap in use, and RSS
    // once V8's young generation has its final size (the pre-sized run), else RSS as it is.
    const flat = heap <= TARGETS.rssGrowthMiB && (fixedTotal === null ? total <= TARGETS.rssGrowthMiB : fixedTotal <= TARGETS.rssGrowthMiB);
    L.push(`| RSS flat after warm-up (fitted growth over the last ${(mem.requests - mem.steady.from).toLocaleString("en")} requests ≤ ${TARGETS.rssGrowthMiB} MiB) | V8 heap in use ${plus(heap, 2)} MiB; RSS ${plus(total, 2)} MiB with default flags (V8 growing its young generation: committed heap ${f(mem.samples[1]?.v8CommittedMiB, 0)} → ${f(mem.after.v8CommittedMiB, 0)} MiB)${fixedTotal !== null ? `, ${plus(fixedTotal, 2)} MiB with the young generation pre-sized` : ""} | ${ok(flat)}${flat && total > TARGETS.rssGrowthMiB ? " (heap in use and linear memory; RSS with default flags grows until V8's young generation is sized)" : ""} |`);
    const sizes = Object.entries(mem.wasmSizes as Record<string, number>);
    const big = sizes.filter(([, v]) => v >= TARGETS.wasmBytes);
    L.push(`| each .wasm < 200 KB (200,000 bytes) | ${sizes.map(([k, v]) => `${k.replace(".wasm", "")} ${(v / 1000).toFixed(1)} KB`).join(", ")} | ${ok(big.length === 0)} |`);
  } else L.push("| memory and size | — | not measured |");
  return L.join("\n");
}

// -------------------------------------------------------------------------------------- chart
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function niceStep(max: number): number {
  const raw = max / 4;
  const p = 10 ** Math.floor(Math.log10(raw || 1));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

/** Added latency per setup and concurrency: one panel per mode × concurrency, bars p50 (solid) and p99 (light). */
export function chartSvg(gw: any): string {
  const setups: string[] = gw.setups.map((s: any) => s.name).filter((n: string) => n !== "direct");
  const modes: string[] = gw.method.modes;
  const concs: number[] = gw.method.concurrency;
  const colors: Record<string, [string, string]> = { sluice: ["#1f6fb4", "#a9c9e8"], "sluice-full": ["#2e7d4f", "#a6d4b8"], portkey: ["#c4442a", "#efb8a9"] };
  const W = 300, H = 210, PAD_L = 52, PAD_B = 34, PAD_T = 30, TOP = 80, LEFT = 10;
  const width = LEFT + concs.length * W + 10, height = TOP + modes.length * H + 40;
  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="11">`);
  o.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  o.push(`<text x="${LEFT + 4}" y="20" font-size="15" font-weight="bold">Latency added by the gateway over calling the mock provider directly (ms)</text>`);
  o.push(`<text x="${LEFT + 4}" y="38" fill="#444">${esc(`${gw.machine.cpu}, ${gw.machine.cores} cores, Node ${gw.machine.node}; load average ${gw.loadAverage1m.min}–${gw.loadAverage1m.max} during the run; ${gw.date.slice(0, 10)}`)}</text>`);
  o.push(`<text x="${LEFT + 4}" y="54" fill="#444">${esc(`autocannon ${gw.tools.autocannon}, 2 KB chat request; Portkey gateway ${gw.tools.portkey}; median of ${gw.method.rounds} interleaved rounds of ${gw.method.durationS} s per setup`)}</text>`);
  // legend
  let lx = LEFT + 4;
  for (const s of setups) {
    const [c50, c99] = colors[s] ?? ["#555", "#bbb"];
    o.push(`<rect x="${lx}" y="62" width="10" height="10" fill="${c50}"/><text x="${lx + 14}" y="71">${NAMES[s] ?? s} p50</text>`);
    o.push(`<rect x="${lx + 80}" y="62" width="10" height="10" fill="${c99}"/><text x="${lx + 94}" y="71">${NAMES[s] ?? s} p99</text>`);
    lx += 180;
  }
  modes.forEach((mode, mi) => {
    concs.forEach((c, ci) => {
      const cell = gw.cells.find((x: any) => x.mode === mode && x.concurrency === c);
      if (!cell) return;
      const x0 = LEFT + ci * W, y0 = TOP + mi * H;
      const vals = setups.flatMap((s) => [cell.setups[s]?.addedP50 ?? 0, cell.setups[s]?.addedP99 ?? 0]);
      const step = niceStep(Math.max(...vals, 0.001));
      const top = Math.ceil(Math.max(...vals, 0.001) / step) * step;
      const plotH = H - PAD_T - PAD_B, plotW = W - PAD_L - 16;
      const y = (v: number) => y0 + PAD_T + plotH - (Math.max(0, v) / top) * plotH;
      o.push(`<text x="${x0 + PAD_L}" y="${y0 + 18}" font-weight="bold">${mode === "plain" ? "JSON answer" : "streamed answer"}, concurrency ${c}</text>`);
      for (let v = 0; v <= top + 1e-9; v += step) {
        o.push(`<line x1="${x0 + PAD_L}" x2="${x0 + PAD_L + plotW}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e3e3e3"/>`);
        o.push(`<text x="${x0 + PAD_L - 5}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" fill="#555">${+v.toPrecision(3)}</text>`);
      }
      const gw_ = plotW / setups.length;
      setups.forEach((s, si) => {
        const v = cell.setups[s];
        if (!v) return;
        const [c50, c99] = colors[s] ?? ["#555", "#bbb"];
        const bx = x0 + PAD_L + si * gw_ + gw_ * 0.15, bw = gw_ * 0.7;
        const p99 = Math.max(0, v.addedP99 ?? 0), p50 = Math.max(0, v.addedP50 ?? 0);
        o.push(`<rect x="${bx.toFixed(1)}" y="${y(p99).toFixed(1)}" width="${bw.toFixed(1)}" height="${(y(0) - y(p99)).toFixed(1)}" fill="${c99}"><title>${NAMES[s]} added p99 ${f(v.addedP99, 3)} ms</title></rect>`);
        o.push(`<rect x="${(bx + bw * 0.2).toFixed(1)}" y="${y(p50).toFixed(1)}" width="${(bw * 0.6).toFixed(1)}" height="${(y(0) - y(p50)).toFixed(1)}" fill="${c50}"><title>${NAMES[s]} added p50 ${f(v.addedP50, 3)} ms</title></rect>`);
        // A negative added p99 (direct's own tail was longer in those rounds) has no bar: its value goes
        // above the p50 bar, named.
        const t99 = f(v.addedP99, Math.abs(v.addedP99) >= 10 ? 1 : 2);
        o.push(`<text x="${(bx + bw / 2).toFixed(1)}" y="${(y(Math.max(p99, p50)) - 4).toFixed(1)}" text-anchor="middle" fill="#333">${v.addedP99 < 0 ? `p99 ${t99}` : t99}</text>`);
        const t50 = f(v.addedP50, v.addedP50 >= 10 ? 1 : 2);
        // p50 value: inside its bar when it fits, above it when there is room under the p99 label,
        // else next to the setup's name.
        let nameText = NAMES[s] ?? s;
        if (y(0) - y(p50) >= 16) o.push(`<text x="${(bx + bw / 2).toFixed(1)}" y="${(y(p50) + 13).toFixed(1)}" text-anchor="middle" fill="#fff" font-weight="bold">${t50}</text>`);
        else if (y(p50) - y(p99) >= 30) o.push(`<text x="${(bx + bw / 2).toFixed(1)}" y="${(y(p50) - 4).toFixed(1)}" text-anchor="middle" fill="${c50}" font-weight="bold">${t50}</text>`);
        else nameText += ` (p50 ${t50})`;
        o.push(`<text x="${(bx + bw / 2).toFixed(1)}" y="${(y(0) + 14).toFixed(1)}" text-anchor="middle">${esc(nameText)}</text>`);
      });
      o.push(`<line x1="${x0 + PAD_L}" x2="${x0 + PAD_L + plotW}" y1="${y(0)}" y2="${y(0)}" stroke="#888"/>`);
      o.push(`<text x="${x0 + PAD_L + plotW / 2}" y="${y(0) + 28}" text-anchor="middle" fill="#555">direct p50 ${f(cell.setups.direct?.p50, 2)} ms, p99 ${f(cell.setups.direct?.p99, 2)} ms</text>`);
    });
  });
  o.push(`<text x="${LEFT + 4}" y="${height - 12}" fill="#555">Each bar: added latency = setup percentile − direct percentile in the same round. Drawn by scripts/bench/report.ts from bench-results/gateway.json.</text>`);
  o.push(`</svg>`);
  return o.join("\n") + "\n";
}

// ------------------------------------------------------------------------------------ report
function read(name: string): any {
  const p = join(ROOT, "bench-results", `${name}.json`);
  return existsSync(p) ? JSON.parse(readFileSync(p, "utf8")) : null;
}

function machineBlock(fl: any, gw: any, mem: any): string {
  const m = gw?.machine ?? fl?.machine ?? mem?.machine;
  const L: string[] = [];
  if (m) L.push(`- Machine: ${m.cpu}, ${m.cores} cores${m.memoryGiB ? `, ${m.memoryGiB} GiB` : ""}${m.os ? `, ${m.os}` : ""}; Node ${m.node}.`);
  if (fl) L.push(`- Filter cost (part 1): ${fl.date}, commit ${fl.machine.commit}${fl.machine.uncommittedSources?.length ? ` + uncommitted changes in ${fl.machine.uncommittedSources.join(", ")}` : ""}; load average (1 min) at start ${fl.machine.loadAverage1m}.`);
  if (gw) L.push(`- Gateway latency (part 2): ${gw.date} to ${gw.finished}, commit ${gw.machine.commit}; autocannon ${gw.tools.autocannon}, @portkey-ai/gateway ${gw.tools.portkey}; load average (1 min) during the run ${gw.loadAverage1m.min}–${gw.loadAverage1m.max} (median ${gw.loadAverage1m.median}), sampled every 5 s.`);
  if (mem) L.push(`- Memory (part 3): ${mem.date}, commit ${mem.machine.commit}; load average (1 min) at the end ${mem.machine.loadAverage1m}.`);
  return L.join("\n");
}

const TEMPLATE = `# Benchmarks

<!-- generated:machine -->
<!-- /generated:machine -->

## Targets

<!-- generated:targets -->
<!-- /generated:targets -->

## 1. Filter cost

<!-- generated:filters -->
<!-- /generated:filters -->

## 2. Gateway-added latency

<!-- generated:gateway -->
<!-- /generated:gateway -->

## 3. Memory and size

<!-- generated:memory -->
<!-- /generated:memory -->
`;

/** The soak (scripts/bench/soak.ts): the gateway's memory round by round under a mixed hostile workload. */
export function soakTable(r: any): string {
  const mib = (n: number) => (n / 1048576).toFixed(0);
  const s = r.summary;
  const L: string[] = [];
  L.push(`${s.requests.toLocaleString("en")} requests in ${s.rounds} rounds (${s.seconds} s), ${s.failures} not answered 200 (hang-ups excluded). After the first round → end: RSS ${s.rssAfterRound1MiB} → ${s.rssEndMiB} MiB (max ${s.rssMaxMiB}), V8 heap in use ${s.heapAfterRound1MiB} → ${s.heapEndMiB} MiB, pages ${Object.keys(s.pagesEnd).map((k) => `${k} ${s.pagesAfterRound1[k]} → ${s.pagesEnd[k]}`).join(", ")}.`);
  L.push("");
  const filters = Object.keys(s.pagesEnd);
  L.push(`| round | s | requests | RSS MiB | heap MiB | ${filters.map((f) => `${f} pages`).join(" | ")} |`);
  L.push(`|---:|---:|---:|---:|---:|${filters.map(() => "---:").join("|")}|`);
  const samples: any[] = r.samples;
  const step = Math.max(1, Math.ceil(samples.length / 12));
  samples.forEach((x, i) => {
    if (i % step !== 0 && i !== samples.length - 1) return;
    L.push(`| ${x.round} | ${x.t.toFixed(0)} | ${x.requests.toLocaleString("en")} | ${mib(x.rss)} | ${mib(x.heapUsed)} | ${filters.map((f) => x.pages[f]).join(" | ")} |`);
  });
  return L.join("\n");
}

function replaceBlock(doc: string, name: string, body: string): string {
  const open = `<!-- generated:${name} -->`, close = `<!-- /generated:${name} -->`;
  const a = doc.indexOf(open), b = doc.indexOf(close);
  if (a < 0 || b < a) return doc + `\n${open}\n${body}\n${close}\n`;
  return doc.slice(0, a + open.length) + "\n" + body + "\n" + doc.slice(b);
}

export function writeReport(): { report: string; chart: string | null } {
  const fl = read("filters"), gw = read("gateway"), mem = read("memory"), memFixed = read("memory-young16");
  let doc = existsSync(REPORT) ? readFileSync(REPORT, "utf8") : TEMPLATE;
  doc = replaceBlock(doc, "machine", machineBlock(fl, gw, mem));
  doc = replaceBlock(doc, "targets", targetsTable(fl, gw, mem, memFixed));
  if (fl) doc = replaceBlock(doc, "filters", `${fl.method.rounds} rounds of ~${fl.method.roundMs} ms after ${fl.method.warmupUnits} warm-up units; median and p99 of the per-round means; wasm ${fl.wasmDir}/.\n\n${filterTables(fl)}`);
  let chart: string | null = null;
  if (gw) {
    mkdirSync(dirname(CHART), { recursive: true });
    writeFileSync(CHART, chartSvg(gw));
    chart = CHART;
    doc = replaceBlock(doc, "gateway", `![Added latency per setup and concurrency](${CHART_REL})\n\n${gatewayTables(gw)}`);
  }
  if (mem) doc = replaceBlock(doc, "memory", memoryTables(mem, memFixed, gw));
  const soak = read("soak");
  if (soak) doc = replaceBlock(doc, "soak", soakTable(soak));
  writeFileSync(REPORT, doc);
  return { report: REPORT, chart };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const { report, chart } = writeReport();
  console.log(`wrote ${report}${chart ? ` and ${chart}` : ""}`);
}
