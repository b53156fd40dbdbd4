// ai-proxy's HTTP context: the callbacks, each one phase of a request, kept short; the work is in
// plain functions of the per-request state (state.ts Exchange, which this class extends):
// request.ts (read, validate, translate, target), selection.ts (pool and instance), outcome.ts
// (what an answer says about its instance), fallback.ts, answer.ts (whole answers and errors),
// stream.ts (server-sent events), record.ts (the usage record), client.ts (the client-API seam).
import {
  FilterHeadersStatusValues, FilterDataStatusValues, RESPONSE_HEADERS, REQUEST_BODY, RESPONSE_BODY,
  getHeader, removeHeader, replaceHeader, getBuffer, setFilterStateInt, nowNanos,
} from "../../lib/sdk";
import * as keys from "../../lib/keys";
import { Instance, Usage } from "../../providers/types";
import { readRequestHeaders, prepare, fail, tooLarge } from "./request";
import { failureCause, reportOutcome, mapTransportError, isEventStream } from "./outcome";
import { mayFallBack, heldFailureEnded } from "./fallback";
import { answerTooLarge, finishResponse } from "./answer";
import { startStream, streamBody } from "./stream";
import { record, recordNothing, finishRecord } from "./record";
import { countTokensAnswered } from "./count-tokens";
import {
  Exchange, ProxyRoot, PASS, COUNT_TOKENS, RESP_NONE, RESP_JSON, RESP_SSE, RESP_ERROR, RESP_REPLAY, RESP_FALLBACK,
} from "./state";

export class AiProxy extends Exchange {
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
    if (err !== null) fail(this, err);
    // (A token count the gateway estimates is answered in prepare, too.)
    if (this.replied) return FilterDataStatusValues.StopIterationNoBuffer;
    return FilterDataStatusValues.Continue;
  }

  onResponseHeaders(_n: u32, endOfStream: bool): FilterHeadersStatusValues {
    if (this.kind == PASS || this.replied || this.provider === null) return FilterHeadersStatusValues.Continue;
    if (this.kind == COUNT_TOKENS) return countTokensAnswered(this);
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
      const sse = isEventStream(ct, this.provider);
      if (this.stream && sse) startStream(this, false);
      else if (this.stream) startStream(this, true);
      else this.resp = RESP_JSON;
    } else {
      this.resp = RESP_ERROR;
      mapTransportError(this, cause);
    }
    removeHeader(RESPONSE_HEADERS, "content-length");
    replaceHeader(RESPONSE_HEADERS, "content-type", this.resp == RESP_SSE || this.resp == RESP_REPLAY ? this.streamType() : "application/json");
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
    if (this.kind == PASS || this.kind == COUNT_TOKENS || this.replied || this.resp == RESP_NONE) return FilterDataStatusValues.Continue;
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
