// proxy_http_call's upstream request, made for real with node:http. What the filter receives
// mirrors Envoy's AsyncClient: a router-generated local reply counts as a response (504 "upstream
// request timeout" on timeout, 503 "upstream connect error ..." when the connection fails), and
// only a reset after the response started is a failure (on_http_call_response with 0/0/0 and
// proxy_get_status = BrokenConnection "reset", Envoy Context::onHttpCallFailure).
import http from "node:http";
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

/** Starts the request; resolves with the response, or null for a reset after the response began. */
export function startHttpCall(
  baseUrl: string,
  headers: HeaderList,
  body: Buffer,
  timeoutMs: number,
): { done: Promise<CallResult | null>; cancel: () => void } {
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
  let settled = false;
  const done = new Promise<CallResult | null>((resolve) => {
    const finish = (r: CallResult | null) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      resolve(r);
    };
    req = http.request(
      { protocol: base.protocol, hostname: base.hostname, port: base.port, method, path, headers: out, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
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
      finish(localReply(503, `upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, transport failure reason: ${reason}`));
    });
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
      (req as http.ClientRequest | null)?.destroy();
    },
  };
}
