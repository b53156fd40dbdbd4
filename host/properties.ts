// proxy_get_property as Envoy answers it (Context::getProperty / findValue and the CEL attribute
// wrappers in source/extensions/filters/common/expr/context.cc). The path is NUL-separated; the
// first segment names a top-level attribute, or else a filter-state object "wasm.<segment>" (how
// filters read each other's set_property values). Encodings follow Envoy's serializeValue: strings
// raw, int64/uint64 8 bytes little-endian, bools 1 byte, timestamps as int64 ns, maps as pairs.
import { WasmResult } from "./abi.js";
import type { Context } from "./context.js";
import { serializePairs, type HeaderList } from "./headers.js";

type Value = string | bigint | boolean | Buffer | { map: HeaderList } | { uint: bigint };
type Result = { result: number; value?: Buffer };

function encode(v: Value): Buffer {
  if (typeof v === "string") return Buffer.from(v);
  if (typeof v === "boolean") return Buffer.from([v ? 1 : 0]);
  if (typeof v === "bigint") {
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(BigInt.asIntN(64, v));
    return b;
  }
  if (Buffer.isBuffer(v)) return v;
  if ("uint" in v) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt.asUintN(64, v.uint));
    return b;
  }
  return Buffer.from(serializePairs(v.map));
}

/** All values of a header joined with "," (CEL convertHeaderEntry over GetAllOfHeaderAsString). */
function headerValue(map: HeaderList | null, key: string): string | undefined {
  if (!map) return undefined;
  const k = key.toLowerCase();
  const vals = map.filter(([hk]) => hk === k).map(([, v]) => v);
  return vals.length ? vals.join(",") : undefined;
}

function lookup(ctx: Context, parts: string[]): Value | undefined {
  const [top, sub, ...rest] = parts;
  const plugin = ctx.vm.plugin;
  const stream = ctx.slot?.stream ?? null;
  switch (top) {
    case "plugin_name":
      return plugin.name;
    case "plugin_root_id":
      return plugin.rootId;
    case "plugin_vm_id":
      return plugin.vmId;
  }
  if (!stream) return undefined; // no stream info in a root context
  const info = stream.info;
  // Envoy's activation headers: the live map while the filter holds it, else the access-log copy.
  const reqHeaders = ctx.requestHeaders ?? (ctx.accessLogPhase ? ctx.accessLogRequestHeaders : null);
  const respHeaders = ctx.responseHeaders ?? (ctx.accessLogPhase ? ctx.accessLogResponseHeaders : null);
  const respTrailers = ctx.responseTrailers ?? (ctx.accessLogPhase ? ctx.accessLogResponseTrailers : null);
  switch (top) {
    case "request": {
      if (sub === "headers") {
        if (rest.length === 0) return { map: reqHeaders ?? [] };
        return rest.length === 1 ? headerValue(reqHeaders, rest[0]) : undefined;
      }
      if (rest.length) return undefined;
      switch (sub) {
        case "time":
          return info.startTimeNs;
        case "protocol":
          return info.protocol;
        case "duration":
          return info.completeNs !== null ? info.completeNs - info.startTimeNs : undefined;
        case "size": {
          const cl = headerValue(reqHeaders, "content-length");
          return cl !== undefined && /^\d+$/.test(cl) ? BigInt(cl) : BigInt(info.bytesReceived);
        }
      }
      if (!reqHeaders) return undefined;
      const path = headerValue(reqHeaders, ":path");
      switch (sub) {
        case "path":
          return path;
        case "url_path":
          return path === undefined ? undefined : path.split("?")[0];
        case "query": {
          if (path === undefined) return undefined;
          const i = path.indexOf("?");
          return i < 0 ? undefined : path.slice(i + 1);
        }
        case "host":
          return headerValue(reqHeaders, ":authority");
        case "scheme":
          return headerValue(reqHeaders, ":scheme");
        case "method":
          return headerValue(reqHeaders, ":method");
        case "referer":
          return headerValue(reqHeaders, "referer");
        case "useragent":
          return headerValue(reqHeaders, "user-agent");
        case "id":
          return headerValue(reqHeaders, "x-request-id");
      }
      return undefined;
    }
    case "response": {
      if (sub === "headers" || sub === "trailers") {
        const map = sub === "headers" ? respHeaders : respTrailers;
        if (rest.length === 0) return { map: map ?? [] };
        return rest.length === 1 ? headerValue(map, rest[0]) : undefined;
      }
      if (rest.length) return undefined;
      switch (sub) {
        case "code":
          return info.responseCode !== null ? BigInt(info.responseCode) : undefined;
        case "code_details":
          return info.responseCodeDetails ?? undefined;
        case "size":
          return BigInt(info.bytesSent);
        case "flags":
          return 0n;
      }
      return undefined;
    }
    case "source":
    case "destination": {
      if (rest.length) return undefined;
      const addr = top === "source" ? info.sourceAddress : info.destinationAddress;
      if (sub === "address") return addr;
      if (sub === "port") return BigInt(addr.slice(addr.lastIndexOf(":") + 1));
      return undefined;
    }
    case "connection": {
      if (rest.length) return undefined;
      switch (sub) {
        case "id":
          return { uint: BigInt(info.connectionId) };
        case "mtls":
          return info.mtls;
        case "requested_server_name":
          return "";
      }
      return undefined;
    }
  }
  // Anything else: filter state set with set_property (CelState, bytes).
  const v = stream.filterState.get(`wasm.${top}`);
  if (v === undefined || parts.length > 1) return undefined;
  return v;
}

export function getProperty(ctx: Context, path: Buffer): Result {
  const parts = path.toString("utf8").split("\u0000");
  // A trailing NUL ends the last segment rather than starting an empty one (Envoy's loop).
  if (parts.length > 1 && parts[parts.length - 1] === "") parts.pop();
  if (parts.length === 0 || parts[0] === "") return { result: WasmResult.NotFound };
  const v = lookup(ctx, parts);
  if (v === undefined) return { result: WasmResult.NotFound };
  return { result: WasmResult.Ok, value: encode(v) };
}
