// mcp: one Model Context Protocol endpoint (Streamable HTTP) in front of several MCP servers
// (docs/mcp.md for operators, docs/filters/mcp.md for how it is built). Right after key-auth and
// identity, so the consumer is known.
//
// Requests on the MCP path are held (StopIteration on headers; allow_on_headers_stop_iteration),
// their body read once, and then either answered here (initialize, the lists, ping, notifications,
// DELETE: calls.ts asks the servers with proxy_http_call and answers with what they said) or
// routed to the one server that owns the named tool, prompt or resource through Envoy's router
// (route.ts), so a streamed answer streams through. Other paths pass untouched.
export * from "@gcoredev/proxy-wasm-sdk-as/assembly/proxy";
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, FilterDataStatusValues, FilterTrailersStatusValues,
  REQUEST_HEADERS, RESPONSE_HEADERS, REQUEST_BODY, RESPONSE_BODY, getHeaderPairs, getHeader, getBuffer, replaceBuffer,
  replaceHeader, removeHeader, pluginConfiguration, setFilterState, nowNanos, setTickPeriod,
} from "../../lib/sdk";
import { TokenSource } from "../../lib/oauth-token";
import { Settings, readSettings } from "./config";
import { McpRequest } from "./calls";
import { prefixUris } from "./route";
import { countRequest, countCall } from "./metrics";
import { errorBody, INTERNAL_ERROR } from "../../lib/jsonrpc";
import { MCP_OUTCOME } from "../../lib/keys";

class McpRoot extends RootContext {
  settings: Settings | null = null;

  createContext(context_id: u32): Context {
    return new McpStream(context_id, this);
  }

  onConfigure(size: u32): bool {
    const s = readSettings(pluginConfiguration(size));
    if (s === null) return false;
    this.settings = s;
    // OAuth servers: one token source each, fetched on the tick and again before it expires.
    let oauth = false;
    for (let i = 0; i < s.servers.length; i++) {
      const v = s.servers[i];
      if (!v.oauth) continue;
      v.tokens = new TokenSource(this, "mcp", v.name, v.oauthCluster, v.oauthAuthority, v.oauthPath, v.clientId, v.clientSecret, v.scope, v.audience, s.timeoutMs);
      oauth = true;
    }
    // The first fetch is on the first tick, not here: Envoy also runs on_configure in a throwaway
    // VM on the main thread (cpp-host's canary), whose call and lease would be lost with it.
    if (oauth) setTickPeriod(1000);
    return true;
  }

  onTick(): void {
    const s = this.settings;
    if (s === null) return;
    const now = <i64>(nowNanos() / 1000000);
    for (let i = 0; i < s.servers.length; i++) {
      const t = s.servers[i].tokens;
      if (t !== null) t.tick(now);
    }
  }
}

class McpStream extends Context {
  x: McpRequest | null = null;
  bodyLength: usize = 0;
  /** The routed answer is replaced (a failure as a JSON-RPC error) or rewritten (resources/read uris). */
  replacing: bool = false;
  rewriting: bool = false;

  constructor(id: u32, root: McpRoot) {
    super(id, root);
  }

  onRequestHeaders(_n: u32, endOfStream: bool): FilterHeadersStatusValues {
    const s = (changetype<McpRoot>(this.root_context)).settings;
    if (s === null) return FilterHeadersStatusValues.Continue;
    const h = getHeaderPairs(REQUEST_HEADERS);
    let method = "";
    let path = "";
    let contentLength: i64 = -1;
    let session: string | null = null;
    for (let i = 0; i < h.count; i++) {
      if (h.keyIs(i, ":method")) method = h.value(i);
      else if (h.keyIs(i, ":path")) path = h.value(i);
      else if (h.keyIs(i, "content-length")) contentLength = I64.parseInt(h.value(i));
      else if (h.keyIs(i, "mcp-session-id")) session = h.value(i);
    }
    const q = path.indexOf("?");
    if ((q >= 0 ? path.substring(0, q) : path) != s.path) return FilterHeadersStatusValues.Continue;
    const x = new McpRequest(s, changetype<McpRoot>(this.root_context), this, session, nowNanos());
    this.x = x;
    if (method == "POST") {
      if (endOfStream) x.invalidRequest("the request has no body");
      else if (contentLength > s.maxBodyBytes) x.tooLarge();
      else x.holding = true;
    } else if (method == "DELETE") x.endSession();
    else if (method == "GET") x.noStream();
    else x.methodNotAllowed(method);
    return FilterHeadersStatusValues.StopIteration;
  }

  onRequestBody(length: usize, endOfStream: bool): FilterDataStatusValues {
    const x = this.x;
    if (x === null) return FilterDataStatusValues.Continue;
    if (!x.holding) return x.routed ? FilterDataStatusValues.Continue : FilterDataStatusValues.StopIterationNoBuffer;
    this.bodyLength = length;
    if (<i64>length > x.s.maxBodyBytes) {
      x.tooLarge();
      return FilterDataStatusValues.StopIterationNoBuffer;
    }
    if (!endOfStream) return FilterDataStatusValues.StopIterationAndBuffer;
    x.holding = false;
    const body = getBuffer(REQUEST_BODY, 0, <u32>length);
    const next = x.handle(body);
    if (next !== null) {
      replaceBuffer(REQUEST_BODY, <u32>length, next as ArrayBuffer);
      return FilterDataStatusValues.Continue;
    }
    return FilterDataStatusValues.StopIterationNoBuffer;
  }

  onRequestTrailers(_n: u32): FilterTrailersStatusValues {
    const x = this.x;
    if (x === null) return FilterTrailersStatusValues.Continue;
    if (x.holding) {
      // A body ended by trailers: all of it is buffered.
      x.holding = false;
      const next = x.handle(getBuffer(REQUEST_BODY, 0, <u32>this.bodyLength));
      if (next === null) return FilterTrailersStatusValues.StopIteration;
      replaceBuffer(REQUEST_BODY, <u32>this.bodyLength, next as ArrayBuffer);
    }
    return x.routed ? FilterTrailersStatusValues.Continue : FilterTrailersStatusValues.StopIteration;
  }

  onResponseHeaders(_n: u32, endOfStream: bool): FilterHeadersStatusValues {
    const x = this.x;
    if (x === null || !x.routed) return FilterHeadersStatusValues.Continue;
    const st = getHeader(RESPONSE_HEADERS, ":status");
    x.upstreamStatus = st !== null ? I32.parseInt(st as string) : 0;
    x.firstByteNs = nowNanos();
    // The server's own session id stays between the gateway and the server: the client's SDK would
    // adopt it as the session's id (and it is the server's bearer secret).
    removeHeader(RESPONSE_HEADERS, "mcp-session-id");
    if (x.upstreamStatus >= 500 || x.upstreamStatus == 0) {
      // The server failed, or Envoy could not reach it (its local reply): the client gets a JSON-RPC
      // error naming the server, never the upstream's body (it may name hosts or ports).
      x.outcome = "upstream_error";
      this.replacing = true;
      replaceHeader(RESPONSE_HEADERS, "content-type", "application/json");
      removeHeader(RESPONSE_HEADERS, "content-length");
      if (endOfStream) {
        // No body to replace: the error cannot be written, the status stays as the client's signal.
        this.replacing = false;
      }
      return FilterHeadersStatusValues.Continue;
    }
    if (x.upstreamStatus >= 400) x.outcome = "upstream_error";
    if (x.rewriteUris && x.upstreamStatus < 300 && !endOfStream) {
      this.rewriting = true;
      removeHeader(RESPONSE_HEADERS, "content-length");
      return FilterHeadersStatusValues.StopIteration;
    }
    return FilterHeadersStatusValues.Continue;
  }

  onResponseBody(length: usize, endOfStream: bool): FilterDataStatusValues {
    const x = this.x;
    if (x === null || !x.routed) return FilterDataStatusValues.Continue;
    if (this.replacing) {
      if (!endOfStream) return FilterDataStatusValues.StopIterationAndBuffer;
      replaceBuffer(RESPONSE_BODY, <u32>length, errorBody(x.id, INTERNAL_ERROR, x.unavailableMessage()));
      return FilterDataStatusValues.Continue;
    }
    if (this.rewriting) {
      if (<i64>length > x.s.maxResponseBytes) {
        this.rewriting = false;
        this.replacing = true;
        x.outcome = "upstream_error";
        x.upstreamProblem = "its answer is larger than max_response_bytes";
      }
      if (!endOfStream) return FilterDataStatusValues.StopIterationAndBuffer;
      if (this.replacing) {
        replaceBuffer(RESPONSE_BODY, <u32>length, errorBody(x.id, INTERNAL_ERROR, x.unavailableMessage()));
        return FilterDataStatusValues.Continue;
      }
      x.responseBytes = <i64>length;
      const body = prefixUris(getBuffer(RESPONSE_BODY, 0, <u32>length), x.serverName() + "+");
      replaceBuffer(RESPONSE_BODY, <u32>length, body);
      return FilterDataStatusValues.Continue;
    }
    x.responseBytes += <i64>length;
    return FilterDataStatusValues.Continue;
  }

  onLog(): void {
    const x = this.x;
    if (x === null) return;
    setFilterState(MCP_OUTCOME, x.outcome);
    countRequest(x.method, x.outcome, x.requestBytes);
    if (x.routed) countCall(x.serverName(), x.tool, x.outcome, <i64>((nowNanos() - x.startNs) / 1000000), x.responseBytes);
  }

  onDone(): bool {
    if (this.x !== null) (this.x as McpRequest).closed = true;
    return true;
  }

  onDelete(): void {
    if (this.x !== null) (this.x as McpRequest).closed = true;
  }
}

registerRootContext((context_id: u32) => new McpRoot(context_id), "mcp");
