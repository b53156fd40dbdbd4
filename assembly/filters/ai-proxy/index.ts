// ai-proxy: one OpenAI-compatible API (and Anthropic's Messages API) over every provider.
// Filter 4 of the chain (docs/architecture.md): picks the instance, translates the request and
// targets its cluster, translates the answer or SSE stream back, and writes the usage record.
// (Being split into one file per job, issue 16 item 3: the parts still here follow.)
//
// Envoy >= 1.35 with `allow_on_headers_stop_iteration: true` on this plugin: the request headers
// are held (StopIteration) while the body arrives, because the body decides the upstream path,
// authority and cluster. Without the knob Envoy would withhold the body from this filter.
export * from "@gcoredev/proxy-wasm-sdk-as/assembly/proxy";
import * as keys from "../../lib/keys";
import { FilterHeadersStatusValues, FilterDataStatusValues, RESPONSE_HEADERS, REQUEST_BODY, RESPONSE_BODY, getHeader, removeHeader, replaceHeader, getBuffer, setFilterStateInt, nowNanos, Context, BaseContext, HTTP_CALL_RESPONSE_HEADERS, getSharedData, setSharedData, makeHeaderPair, HeaderPair, pluginConfiguration, setTickPeriod, WasmResultValues, registerRootContext } from "../../lib/sdk";
import { Instance, Usage } from "../../providers/types";
import { readRequestHeaders, prepare, fail, tooLarge } from "./request";
import { failureCause, reportOutcome, mapTransportError, isEventStream, healthReport } from "./outcome";
import { mayFallBack, heldFailureEnded } from "./fallback";
import { answerTooLarge, finishResponse } from "./answer";
import { startStream, streamBody } from "./stream";
import { record, recordNothing, finishRecord } from "./record";
import { Exchange, ProxyRoot, PASS, RESP_NONE, RESP_JSON, RESP_SSE, RESP_ERROR, RESP_REPLAY, RESP_FALLBACK, nowMs, proxyMetrics } from "./state";
import { setJsonDefaultMaxValues } from "../../lib/json";
import { Settings, readSettings } from "./config";
import { readHealth, OUTCOME_PROBE_OK, OUTCOME_PROBE_FAILED } from "./health";

// ---- context
class AiProxy extends Exchange {
  constructor(id: u32, root: ProxyRoot) {
    super(id, root);
  }

  onRequestHeaders(_n: u32, endOfStream: bool): FilterHeadersStatusValues {
    return readRequestHeaders(this, endOfStream);
  }

  onRequestBody(length: usize, endOfStream: bool): FilterDataStatusValues {
    if (this.kind == PASS || this.replied) return FilterDataStatusValues.Continue;
    if (<i64>length > this.settings.maxBodyBytes) {
      tooLarge(this);
      return FilterDataStatusValues.StopIterationNoBuffer;
    }
    if (!endOfStream) return FilterDataStatusValues.StopIterationAndBuffer;
    const body = getBuffer(REQUEST_BODY, 0, <u32>length);
    const err = prepare(this, body);
    if (err !== null) {
      fail(this, err);
      return FilterDataStatusValues.StopIterationNoBuffer;
    }
    return FilterDataStatusValues.Continue;
  }

  onResponseHeaders(_n: u32, endOfStream: bool): FilterHeadersStatusValues {
    if (this.kind == PASS || this.replied || this.provider === null) return FilterHeadersStatusValues.Continue;
    const status = getHeader(RESPONSE_HEADERS, ":status");
    this.status = status !== null ? <u32>U32.parseInt(status as string) : 0;
    // Envoy's global rate limit filter (after this one in the chain) refused the request: the
    // provider never saw it, so its health is untouched and no other instance is tried.
    const refused = this.status == 429 && getHeader(RESPONSE_HEADERS, "x-envoy-ratelimited") !== null;
    this.refused = refused;
    const cause = refused ? "" : failureCause(this);
    if (!refused) reportOutcome(this, cause, RESPONSE_HEADERS);
    if (this.settings.instanceHeader) replaceHeader(RESPONSE_HEADERS, "x-sluice-instance", (this.inst as Instance).name);
    if (cause.length && !endOfStream && mayFallBack(this, cause)) {
      // Nothing has reached the client yet: hold this answer and try another instance.
      this.resp = RESP_FALLBACK;
      this.lastCause = cause;
      return FilterHeadersStatusValues.StopIteration;
    }
    if (refused) {
      this.resp = RESP_ERROR;
    } else if (this.status >= 200 && this.status < 300) {
      const ct = getHeader(RESPONSE_HEADERS, "content-type");
      const sse = isEventStream(ct);
      if (this.stream && sse) startStream(this, false);
      else if (this.stream) startStream(this, true);
      else this.resp = RESP_JSON;
    } else {
      this.resp = RESP_ERROR;
      mapTransportError(this, cause);
    }
    removeHeader(RESPONSE_HEADERS, "content-length");
    replaceHeader(RESPONSE_HEADERS, "content-type", this.resp == RESP_SSE || this.resp == RESP_REPLAY ? "text/event-stream" : "application/json");
    if (this.resp == RESP_SSE || this.resp == RESP_REPLAY) replaceHeader(RESPONSE_HEADERS, "cache-control", "no-cache");
    if (endOfStream) {
      // Headers only: nothing to translate (proxy-wasm cannot add a body to a headers-only answer).
      if (this.resp == RESP_ERROR) recordNothing(this);
      else record(this, new Usage(), true);
      return FilterHeadersStatusValues.Continue;
    }
    // A stream goes out as it comes. A whole answer is translated at its end, and may change the
    // status (an unreadable answer becomes 502): hold the headers until then. Envoy keeps feeding
    // this filter the body while its headers are held (allow_on_headers_stop_iteration).
    if (this.resp == RESP_SSE) return FilterHeadersStatusValues.Continue;
    return FilterHeadersStatusValues.StopIteration;
  }

  onResponseBody(length: usize, endOfStream: bool): FilterDataStatusValues {
    if (this.kind == PASS || this.replied || this.resp == RESP_NONE) return FilterDataStatusValues.Continue;
    if (this.tooBig) return FilterDataStatusValues.StopIterationNoBuffer;
    if (this.resp != RESP_SSE && <i64>length > this.settings.maxResponseBodyBytes) {
      // Envoy's buffer holds the body so far (length is all of it): refuse before copying it here.
      this.responseChars = <i64>length;
      answerTooLarge(this, false);
      return FilterDataStatusValues.StopIterationNoBuffer;
    }
    if (this.resp == RESP_FALLBACK) {
      if (this.firstByteNs == 0 && length > 0) this.firstByteNs = nowNanos();
      this.bufferedLen = <u32>length;
      if (!endOfStream) return FilterDataStatusValues.StopIterationAndBuffer;
      return heldFailureEnded(this, length);
    }
    if (this.firstByteNs == 0 && length > 0) {
      this.firstByteNs = nowNanos();
      setFilterStateInt(keys.TTFT_MS, <i64>((this.firstByteNs - this.startNs) / 1000000));
    }
    if (this.resp == RESP_SSE) return streamBody(this, length, endOfStream);
    if (!endOfStream) return FilterDataStatusValues.StopIterationAndBuffer;
    finishResponse(this, getBuffer(RESPONSE_BODY, 0, <u32>length), <u32>length);
    return FilterDataStatusValues.Continue;
  }

  /**
   * Envoy runs every filter's on_log before any filter's on_done, and a client that hangs up gets
   * no other callback first: the estimate is written here, where the access log and
   * ai-ratelimit (which charges in its on_done) can see it.
   */
  onLog(): void {
    finishRecord(this);
  }

  onDone(): bool {
    finishRecord(this);
    return true;
  }
}

// ---- root
class AiProxyRoot extends ProxyRoot {
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
    if (s.health.active) setTickPeriod(<u32>(s.health.intervalMs < 1000 ? s.health.intervalMs : 1000));
    return true;
  }

  /** Active health checks: each due instance is probed by one worker (a shared lease decides). */
  onTick(): void {
    const s = this.settings;
    if (s === null || !s.health.active) return;
    const now = nowMs();
    for (let i = 0; i < s.instances.length; i++) {
      const inst = s.instances[i];
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
    const auth = provider.chatUpstream(inst, inst.model, false).headers;
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

registerRootContext((id: u32) => new AiProxyRoot(id), "ai-proxy");
