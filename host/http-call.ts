// proxy_http_call's upstream request, made for real with node:http. What the filter receives
// mirrors Envoy's AsyncClient: a router-generated local reply counts as a response (504 "upstream
// request timeout" on timeout, 503 "upstream connect error ..." when the connection fails), and
// only a reset after the response started is a failure (on_http_call_response with 0/0/0 and
// proxy_get_status = BrokenConnection "reset", Envoy Context::onHttpCallFailure).
// The response body is bounded as the AsyncClient bounds it (source/common/http/async_client_impl.cc
// AsyncRequestSharedImpl::onData): past http.async_response_buffer_limit (kBufferLimitForResponse,
// 32 MiB, async_client_impl.h) the data is dropped, the stream reset, and the caller gets a failure
// (FailureReason::ExceedResponseBufferLimit, AsyncRequestSharedImpl::onReset) instead of a response:
// for proxy_http_call the same 0/0/0 as a reset, for jwt_authn's JWKS fetch "Jwks remote fetch is
// failed" (JwksFetcherImpl::onFailure), for ext_authz an error (failure_mode_allow, else
// status_on_error). One bound for all three: in Envoy each goes through the cluster's AsyncClient.
import http from "node:http";
import https from "node:https";
import { isIP, type Socket } from "node:net";
import type { HeaderList } from "./headers.js";

export interface CallResult {
  headers: HeaderList;
  body: Buffer;
  trailers: HeaderList | null;
}

function localReply(status: number, body: string): CallResult {
  return {
    headers: [
      [":status", String(status)],
      ["content-length", String(Buffer.byteLength(body))],
      ["content-type", "text/plain"],
    ],
    body: Buffer.from(body),
    trailers: null,
  };
}

/** A proxy_http_call target: the cluster's endpoint and its connect_timeout. */
export interface CallCluster {
  url: string;
  /** The cluster's connect_timeout (TCP and TLS handshake), which Envoy's async client honours too. */
  connectTimeoutMs?: number;
}

/** AsyncClientImpl's response buffer limit (kBufferLimitForResponse); Envoy's runtime key
 * http.async_response_buffer_limit can change it, the host has no runtime layer. */
export const ASYNC_RESPONSE_BUFFER_LIMIT = 32 * 1024 * 1024;

const CONNECT_FAILURE = "upstream connect error or disconnect/reset before headers. reset reason: ";

/** Starts the request; resolves with the response, or null for a reset after the response began. */
export function startHttpCall(
  cluster: CallCluster,
  headers: HeaderList,
  body: Buffer,
  timeoutMs: number,
  responseBufferLimit = ASYNC_RESPONSE_BUFFER_LIMIT,
): { done: Promise<CallResult | null>; cancel: () => void } {
  const baseUrl = cluster.url;
  const base = new URL(baseUrl);
  let method = "GET";
  let path = "/";
  let authority = base.host;
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of headers) {
    if (k === ":method") method = v;
    else if (k === ":path") path = v;
    else if (k === ":authority") authority = v;
    else if (!k.startsWith(":")) {
      const cur = out[k];
      out[k] = cur === undefined ? v : Array.isArray(cur) ? [...cur, v] : [cur, v];
    }
  }
  out["host"] = authority;
  if (body.length) out["content-length"] = String(body.length); // Envoy setContentLength
  let req: http.ClientRequest | null = null;
  let timer: NodeJS.Timeout | null = null;
  let connectTimer: NodeJS.Timeout | null = null;
  let settled = false;
  const done = new Promise<CallResult | null>((resolve) => {
    const finish = (r: CallResult | null) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      if (connectTimer) clearTimeout(connectTimer);
      resolve(r);
    };
    // https clusters are Envoy clusters with a TLS transport socket: SNI is the request's authority.
    const tls = base.protocol === "https:";
    const request = tls ? https.request : http.request;
    req = request(
      {
        protocol: base.protocol, hostname: base.hostname, port: base.port, method, path, headers: out, agent: false,
        ...(tls && sniFor(authority) ? { servername: sniFor(authority) } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let held = 0;
        res.on("data", (c: Buffer) => {
          if (settled) return;
          // onData: a chunk that would take the body past the limit is dropped and the stream reset.
          if (held + c.length > responseBufferLimit) {
            chunks.length = 0;
            finish(null);
            req?.destroy();
            return;
          }
          held += c.length;
          chunks.push(c);
        });
        res.on("end", () => {
          const h: HeaderList = [[":status", String(res.statusCode ?? 0)]];
          for (let i = 0; i < res.rawHeaders.length; i += 2) h.push([res.rawHeaders[i].toLowerCase(), res.rawHeaders[i + 1]]);
          const t: HeaderList = [];
          for (let i = 0; i < res.rawTrailers.length; i += 2) t.push([res.rawTrailers[i].toLowerCase(), res.rawTrailers[i + 1]]);
          finish({ headers: h, body: Buffer.concat(chunks), trailers: t.length ? t : null });
        });
        res.on("error", () => finish(null));
        res.on("aborted", () => finish(null));
      },
    );
    req.on("error", (e: NodeJS.ErrnoException) => {
      if (settled) return;
      const reason = e.code === "ECONNREFUSED" ? "delayed connect error: Connection refused" : e.message;
      finish(localReply(503, `${CONNECT_FAILURE}remote connection failure, transport failure reason: ${reason}`));
    });
    // connect_timeout runs until the connection is usable (after the TLS handshake on a TLS
    // cluster); past it Envoy's pool fails the request with reset reason "connection timeout".
    const connectMs = cluster.connectTimeoutMs ?? 0;
    if (connectMs > 0) {
      req.on("socket", (sock: Socket) => {
        connectTimer = setTimeout(() => {
          finish(localReply(503, `${CONNECT_FAILURE}connection timeout`));
          req?.destroy();
        }, connectMs);
        sock.once(tls ? "secureConnect" : "connect", () => {
          if (connectTimer) clearTimeout(connectTimer);
          connectTimer = null;
        });
      });
    }
    if (timeoutMs > 0) {
      timer = setTimeout(() => {
        finish(localReply(504, "upstream request timeout"));
        req?.destroy();
      }, timeoutMs);
    }
    req.end(body);
  });
  return {
    done,
    cancel: () => {
      settled = true;
      if (timer) clearTimeout(timer);
      if (connectTimer) clearTimeout(connectTimer);
      (req as http.ClientRequest | null)?.destroy();
    },
  };
}

/** The SNI for an authority: its host name; none for an IP address, which SNI cannot carry (RFC 6066, 3). */
export function sniFor(authority: string): string | undefined {
  const host = authority.startsWith("[") ? authority.slice(1, authority.indexOf("]")) : authority.replace(/:\d+$/, "");
  return isIP(host) ? undefined : host;
}
