// ai-proxy's root context: the configuration (config.ts), the availability gauges from the start,
// and active health checks on the tick (one worker probes each due instance; a shared lease decides).
import {
  Context, BaseContext, HTTP_CALL_RESPONSE_HEADERS, getHeader, getSharedData, setSharedData, makeHeaderPair, HeaderPair,
  pluginConfiguration, setTickPeriod, WasmResultValues,
} from "../../lib/sdk";
import { setJsonDefaultMaxValues } from "../../lib/json";
import { Settings, readSettings } from "./config";
import { TokenConfig, tokenSource, authorize } from "./upstream-token";
import { TokenSource } from "../../lib/oauth-token";
import { readHealth, OUTCOME_PROBE_OK, OUTCOME_PROBE_FAILED } from "./health";
import { healthReport } from "./outcome";
import { ProxyRoot, nowMs, proxyMetrics } from "./state";
import { AiProxy } from "./context";

export class AiProxyRoot extends ProxyRoot {
  createContext(context_id: u32): Context {
    return new AiProxy(context_id, this);
  }

  onConfigure(size: u32): bool {
    const s = readSettings(pluginConfiguration(size));
    if (s === null) return false;
    this.settings = s;
    // Every parse in this VM without a bound of its own (provider answers, stream events, tool
    // arguments) gets this one: an answer past it is unreadable (a 502, as any unreadable answer).
    setJsonDefaultMaxValues(s.maxJsonValues);
    // Every configured instance has its availability gauge from the start, not only after a
    // failure: a dashboard (or an alert on 0) sees each instance as soon as the gateway runs.
    const now = nowMs();
    for (let i = 0; i < s.instances.length; i++) {
      const name = s.instances[i].name;
      proxyMetrics.instanceHealth(name, readHealth(name).available(now), false);
    }
    // Access tokens (Entra ID, Vertex): the first fetch is on the first tick (Envoy also configures
    // throwaway VMs).
    let tokens = false;
    this.tokens = [];
    for (let i = 0; i < s.instances.length; i++) {
      const t = s.tokens[i];
      this.tokens.push(t !== null ? tokenSource(this, s.instances[i].name, t as TokenConfig) : null);
      if (t !== null) tokens = true;
    }
    let period: i64 = 0;
    if (s.health.active) period = s.health.intervalMs < 1000 ? s.health.intervalMs : 1000;
    if (tokens && (period == 0 || period > 1000)) period = 1000;
    if (period > 0) setTickPeriod(<u32>period);
    return true;
  }

  /** Active health checks: each due instance is probed by one worker (a shared lease decides). */
  onTick(): void {
    const s = this.settings;
    if (s === null) return;
    const now = nowMs();
    for (let i = 0; i < this.tokens.length; i++) {
      const t = this.tokens[i];
      if (t === null) continue;
      t.tick(now);
      // The availability gauge says when an instance is out for want of a token (selection.ts
      // skips it meanwhile), and when it is back.
      const name = s.instances[i].name;
      proxyMetrics.instanceHealth(name, t.current(now) !== null && readHealth(name).available(now), false);
    }
    if (!s.health.active) return;
    for (let i = 0; i < s.instances.length; i++) {
      const inst = s.instances[i];
      // A provider with nothing cheap to probe (Bedrock's runtime API lists nothing) is judged by
      // its answers only (passive health).
      if (s.providers[i].probePath(inst).length == 0) continue;
      const key = "sluice.ai-proxy.probe." + inst.name;
      const cur = getSharedData(key);
      const due = cur.value !== null ? I64.parseInt(String.UTF8.decode(cur.value as ArrayBuffer)) : 0;
      if (now < due) continue;
      const next = String.UTF8.encode((now + s.health.intervalMs).toString());
      if (setSharedData(key, next, cur.value === null ? 0 : cur.cas) != WasmResultValues.Ok) continue; // another worker took it
      this.probe(s, i);
    }
  }

  probe(s: Settings, i: i32): void {
    const inst = s.instances[i];
    const provider = s.providers[i];
    const path = s.health.path.length ? inst.basePath + s.health.path : provider.probePath(inst);
    const headers: Array<HeaderPair> = [makeHeaderPair(":method", "GET"), makeHeaderPair(":path", path), makeHeaderPair(":authority", inst.authority)];
    const up = provider.chatUpstream(inst, inst.model, false);
    // An instance with an access token is probed with it; without one there is nothing to probe with yet.
    const source = this.tokens.length > i ? this.tokens[i] : null;
    if (source !== null && authorize(source as TokenSource, inst.name, up, nowMs()) !== null) return;
    const auth = up.headers;
    for (let h = 0; h + 1 < auth.length; h += 2) headers.push(makeHeaderPair(auth[h], auth[h + 1]));
    const r = this.httpCall(inst.cluster, headers, new ArrayBuffer(0), [], <u32>s.health.timeoutMs, new Probe(this.context_id, i, this), onProbeResponse);
    if (r != WasmResultValues.Ok) healthReport(s, inst.name, OUTCOME_PROBE_FAILED, nowMs(), 0);
  }
}

/** Who an active health check was for (http_call callbacks carry one context object). */
class Probe extends BaseContext {
  instance: i32;
  root: AiProxyRoot;
  constructor(id: u32, instance: i32, root: AiProxyRoot) {
    super(id);
    this.instance = instance;
    this.root = root;
  }
}

function onProbeResponse(origin: BaseContext, headers: u32, _bodySize: usize, _trailers: u32): void {
  const p = origin as Probe;
  const s = p.root.settings as Settings;
  const status = headers > 0 ? getHeader(HTTP_CALL_RESPONSE_HEADERS, ":status") : null;
  const ok = status !== null && (status as string).startsWith("2");
  healthReport(s, s.instances[p.instance].name, ok ? OUTCOME_PROBE_OK : OUTCOME_PROBE_FAILED, nowMs(), 0);
}
