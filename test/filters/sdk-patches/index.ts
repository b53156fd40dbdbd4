// Exercises the proxy-wasm SDK wrappers that patches/@gcoredev+proxy-wasm-sdk-as+*.patch fixes,
// so test/sdk-patches.test.ts can show each bug fixed through a real module:
//  - get_metric called proxy_record_metric (overwriting the metric) instead of proxy_get_metric;
//  - Gauge/Histogram.record wrote to a caller-supplied id, not to the metric itself;
//  - log went to a FastEdge WASI shim (a compile error without it) instead of proxy_log;
//  - proxy_on_done/proxy_on_delete for the root context trapped (Map.get of a missing key);
//  - abort logged and carried on instead of trapping;
//  - onConfigure logged the whole plugin configuration (credentials) at debug level;
//  - (a speed-up, not a fix) getContext answers the last context without hashing: each stream must
//    still get its own context however the host interleaves them.
export * from "@gcoredev/proxy-wasm-sdk-as/assembly/proxy";
import {
  RootContext, Context, registerRootContext, Counter, Gauge, Histogram, log, LogLevelValues,
  FilterHeadersStatusValues, stream_context,
} from "@gcoredev/proxy-wasm-sdk-as/assembly";
import { get_metric } from "@gcoredev/proxy-wasm-sdk-as/assembly/runtime";

class Root extends RootContext {
  createContext(id: u32): Context {
    return new Stream(id, this);
  }

  onConfigure(size: u32): bool {
    super.onConfigure(size);
    const counter = new Counter("patch.counter");
    counter.increment(5);
    const gauge = new Gauge("patch.gauge");
    gauge.record(42);
    const histogram = new Histogram("patch.histogram");
    histogram.record(7);
    const read = get_metric(counter.metric_id);
    log(LogLevelValues.info, "get_metric result=" + read.result.toString() + " value=" + read.data.toString());
    log(LogLevelValues.info, "configured with " + this.getConfiguration().length.toString() + " bytes");
    return true;
  }
}

class Stream extends Context {
  tag: string = "";

  onRequestHeaders(n: u32, eos: bool): FilterHeadersStatusValues {
    this.tag = stream_context.headers.request.get("x-tag");
    if (stream_context.headers.request.get(":path") == "/abort") {
      throw new Error("deliberate abort");
      stream_context.headers.request.add("x-after-abort", "reached");
    }
    return FilterHeadersStatusValues.Continue;
  }

  onResponseHeaders(n: u32, eos: bool): FilterHeadersStatusValues {
    stream_context.headers.response.add("x-tag", this.tag);
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((id: u32) => new Root(id), "sdk-patches");
