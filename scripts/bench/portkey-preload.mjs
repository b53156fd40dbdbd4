// Preloaded (node --import) into Portkey's gateway by the gateway benchmark (scripts/bench/gateway.ts):
//   - Loopback only: its CLI takes --port but no address and would listen on every interface; a
//     listen() without a host binds 127.0.0.1.
//   - Streaming works on Node: @portkey-ai/gateway 1.15.2 appends x-portkey-* headers to the
//     upstream fetch() Response's headers, which the fetch spec makes immutable; with the
//     @hono/node-server it installs (its lightweight Response reuses those headers) every streamed
//     chat completion fails with "TypeError: immutable" and a 500 (Portkey-AI/gateway issues 1389
//     and 1550; the fix proposed there copies the response). Here fetch() returns the same response
//     with a mutable copy of its headers: one Response and one Headers object per request.
//   - Nothing outlives the benchmark: exit when the parent's IPC channel closes, or after
//     BENCH_LIFETIME_S seconds.
import net from "node:net";

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" || (typeof args[0] === "string" && /^\d+$/.test(args[0]))) {
    // listen(port[, host][, backlog][, cb]) with no host: the callback or backlog comes next
    if (args.length >= 2 && args[1] === undefined) args[1] = "127.0.0.1";
    else if (args.length === 1 || typeof args[1] === "function" || typeof args[1] === "number") args.splice(1, 0, "127.0.0.1");
  } else if (args[0] && typeof args[0] === "object" && !("path" in args[0]) && !args[0].host) {
    args[0] = { ...args[0], host: "127.0.0.1" };
  }
  return listen.apply(this, args);
};

const NativeResponse = globalThis.Response;
const NativeHeaders = globalThis.Headers;
const nativeFetch = globalThis.fetch;
globalThis.fetch = async function fetch(...args) {
  const r = await nativeFetch(...args);
  return new NativeResponse(r.body, { status: r.status, statusText: r.statusText, headers: new NativeHeaders(r.headers) });
};

if (process.send) process.on("disconnect", () => process.exit(0));
setTimeout(() => process.exit(3), Number(process.env.BENCH_LIFETIME_S ?? 3600) * 1000).unref();
