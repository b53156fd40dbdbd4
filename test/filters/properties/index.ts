// Property reader for test/host/properties.test.ts: the plugin configuration lists property paths,
// one a line, segments separated by "|" (names such as "envoy.filters.http.jwt_authn" hold dots).
// In every phase the module reads each path with the raw proxy_get_property and logs one info line
//   <phase>\t<path as configured>\t<WasmResult>\t<value bytes in hex>
// so the test checks Envoy's encoding byte for byte. Phases: configure (root context),
// request_headers, request_body, response_headers, response_body, log.
export * from "@gcoredev/proxy-wasm-sdk-as/assembly/proxy";
import {
  RootContext, Context, registerRootContext, log, LogLevelValues,
  FilterHeadersStatusValues, FilterDataStatusValues,
} from "@gcoredev/proxy-wasm-sdk-as/assembly";
import { globalArrayBufferReference } from "@gcoredev/proxy-wasm-sdk-as/assembly/runtime";
import { proxy_get_property } from "@gcoredev/proxy-wasm-sdk-as/assembly/imports";

let PATHS: string[] = [];
const HEX = "0123456789abcdef";

function pathBytes(line: string): ArrayBuffer {
  const b = String.UTF8.encode(line);
  const u = Uint8Array.wrap(b);
  for (let i = 0; i < u.length; i++) if (u[i] == 0x7c) u[i] = 0; // "|" -> NUL
  return b;
}

function hex(buf: ArrayBuffer): string {
  const u = Uint8Array.wrap(buf);
  const parts = new Array<string>(u.length);
  for (let i = 0; i < u.length; i++) parts[i] = HEX.charAt(u[i] >> 4) + HEX.charAt(u[i] & 15);
  return parts.join("");
}

function report(phase: string): void {
  for (let i = 0; i < PATHS.length; i++) {
    const p = pathBytes(PATHS[i]);
    const rc = proxy_get_property(changetype<usize>(p), p.byteLength, globalArrayBufferReference.bufferPtr(), globalArrayBufferReference.sizePtr());
    const value = rc == 0 ? hex(globalArrayBufferReference.toArrayBuffer()) : "";
    log(LogLevelValues.info, phase + "\t" + PATHS[i] + "\t" + rc.toString() + "\t" + value);
  }
}

class Root extends RootContext {
  createContext(id: u32): Context {
    return new Stream(id, this);
  }

  onConfigure(size: u32): bool {
    super.onConfigure(size);
    const lines = this.getConfiguration().split("\n");
    PATHS = [];
    for (let i = 0; i < lines.length; i++) if (lines[i].length > 0) PATHS.push(lines[i]);
    report("configure");
    return true;
  }
}

class Stream extends Context {
  onRequestHeaders(n: u32, eos: bool): FilterHeadersStatusValues {
    report("request_headers");
    return FilterHeadersStatusValues.Continue;
  }
  onRequestBody(size: usize, eos: bool): FilterDataStatusValues {
    report("request_body");
    return FilterDataStatusValues.Continue;
  }
  onResponseHeaders(n: u32, eos: bool): FilterHeadersStatusValues {
    report("response_headers");
    return FilterHeadersStatusValues.Continue;
  }
  onResponseBody(size: usize, eos: bool): FilterDataStatusValues {
    report("response_body");
    return FilterDataStatusValues.Continue;
  }
  onLog(): void {
    report("log");
  }
}

registerRootContext((id: u32) => new Root(id), "properties");
