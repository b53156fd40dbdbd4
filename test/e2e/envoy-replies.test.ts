// What the local gateway writes on the wire is what Envoy writes: the headers the HCM and router add
// (server: envoy, date, x-envoy-upstream-service-time on proxied answers), none that Node adds on its
// own (Connection: keep-alive, Keep-Alive: timeout=N), the router's and the HTTP/1 codec's own replies
// with Envoy's codes and bodies, and the codec's request header limits (431 past 60 KiB or 100
// headers; underscores in names allowed). Read over raw sockets so no client hides a header.
import { afterEach, describe, expect, it } from "vitest";
import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { Host } from "../../host/index.js";
import { startGateway, type Gateway } from "../../host/server.js";
import { parseLocalReplyConfig } from "../../host/local-reply.js";
import type { Stream } from "../../host/stream.js";

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

let seen: http.IncomingHttpHeaders[] = [];
/** What the access log would print for each stream: %RESPONSE_CODE%, %RESPONSE_CODE_DETAILS%, %RESPONSE_FLAGS%. */
let logged: { status: number; details: string | null; flags: string }[] = [];
let loggedUpstream: Stream["info"]["upstream"] = null;
async function upstream(): Promise<string> {
  seen = [];
  // The mock takes header blocks as large as Envoy forwards (Node's default stops at 16 KiB).
  const server = http.createServer({ maxHeaderSize: 128 * 1024 }, (req, res) => {
    seen.push(req.headers);
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "text/plain", server: "upstream-server" }).end("ok"));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  closers.push(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function gateway(clusters: Record<string, { url: string }>, localReplyConfig?: unknown, routeTimeoutMs?: number): Promise<Gateway> {
  const host = await Host.create({ filters: [], localReplyConfig: localReplyConfig ? parseLocalReplyConfig(localReplyConfig) : undefined });
  logged = [];
  loggedUpstream = null;
  const g = await startGateway({
    host,
    clusterHeader: "x-cluster",
    clusters,
    routeTimeoutMs,
    accessLog: (st, status) => {
      logged.push({ status, details: st.info.responseCodeDetails, flags: st.info.responseFlags.join(",") });
      loggedUpstream = st.info.upstream;
    },
  });
  closers.push(() => g.close());
  return g;
}

interface RawResponse {
  status: number;
  /** Header names as written on the wire, lower-cased, in order. */
  names: string[];
  headers: Record<string, string>;
  body: string;
  /** The gateway closed the connection after this response. */
  closed: boolean;
}

/** Sends raw requests on one connection, one after another; reads each response as written. */
async function rawExchange(port: number, requests: string[]): Promise<RawResponse[]> {
  const sock = net.connect(port, "127.0.0.1");
  sock.on("error", () => {});
  let buf = Buffer.alloc(0);
  let ended = false;
  let wake: (() => void) | null = null;
  sock.on("data", (d) => ((buf = Buffer.concat([buf, d])), wake?.()));
  sock.on("close", () => ((ended = true), wake?.()));
  const wait = () => new Promise<void>((r) => (wake = r));
  const out: RawResponse[] = [];
  for (const request of requests) {
    sock.write(request);
    for (;;) {
      const end = buf.indexOf("\r\n\r\n");
      if (end >= 0) {
        const lines = buf.subarray(0, end).toString("latin1").split("\r\n");
        const names: string[] = [];
        const headers: Record<string, string> = {};
        for (const l of lines.slice(1)) {
          const i = l.indexOf(":");
          const k = l.slice(0, i).toLowerCase();
          names.push(k);
          headers[k] = l.slice(i + 1).trim();
        }
        const rest = buf.subarray(end + 4);
        let body: string | null = null;
        let used = 0;
        if (headers["content-length"] !== undefined) {
          const n = Number(headers["content-length"]);
          if (rest.length >= n) ((body = rest.subarray(0, n).toString()), (used = n));
        } else if (headers["transfer-encoding"] === "chunked") {
          const t = rest.indexOf("0\r\n\r\n");
          if (t >= 0) {
            used = t + 5;
            body = rest.subarray(0, t).toString().replace(/(^|\r\n)[0-9a-f]+\r\n/g, "").replace(/\r\n$/, "");
          }
        } else if (ended) ((body = rest.toString()), (used = rest.length));
        if (body !== null) {
          buf = buf.subarray(end + 4 + used);
          out.push({ status: Number(lines[0].split(" ")[1]), names, headers, body, closed: false });
          break;
        }
      }
      if (ended) throw new Error(`connection closed: ${buf.toString("latin1").slice(0, 200)}`);
      await wait();
    }
  }
  // Whether the gateway closes the connection after the last response.
  await Promise.race([new Promise((r) => setTimeout(r, 150)), new Promise<void>((r) => (ended ? r() : sock.once("close", () => r())))]);
  out[out.length - 1].closed = ended;
  sock.destroy();
  return out;
}

const get = (path: string, headers: string[] = []) => [`GET ${path} HTTP/1.1`, "host: gw.test", ...headers, "", ""].join("\r\n");

describe("the local gateway's responses carry Envoy's headers, not Node's", () => {
  it("a proxied answer: server: envoy over the upstream's, date, x-envoy-upstream-service-time, no Connection/Keep-Alive, and the connection stays open", async () => {
    const g = await gateway({ up: { url: await upstream() } });
    const [a, b] = await rawExchange(g.port, [get("/a", ["x-cluster: up"]), get("/b", ["x-cluster: up"])]);
    for (const r of [a, b]) {
      expect([r.status, r.body]).toEqual([200, "ok"]);
      expect(r.headers.server).toBe("envoy");
      expect(r.names.filter((n) => n === "server")).toHaveLength(1);
      expect(r.headers.date).toMatch(/^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$/);
      expect(r.headers["x-envoy-upstream-service-time"]).toMatch(/^\d+$/);
      expect(r.names).not.toContain("connection");
      expect(r.names).not.toContain("keep-alive");
      // Envoy's HCM does not echo x-request-id by default (always_set_request_id_in_response false).
      expect(r.names).not.toContain("x-request-id");
    }
    expect(b.closed).toBe(false);
  });

  it("x-request-id: generated when absent, kept when the client sends one (use_remote_address false: not an edge request)", async () => {
    const g = await gateway({ up: { url: await upstream() } });
    await rawExchange(g.port, [get("/a", ["x-cluster: up"]), get("/b", ["x-cluster: up", "x-request-id: client-id-1"])]);
    expect(seen[0]["x-request-id"]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(seen[1]["x-request-id"]).toBe("client-id-1");
  });

  it("the upstream request: x-envoy-expected-rq-timeout-ms is the route timeout; x-forwarded-proto set once, the client's kept", async () => {
    const g = await gateway({ up: { url: await upstream() } }, undefined, 300_000);
    await rawExchange(g.port, [get("/a", ["x-cluster: up"]), get("/b", ["x-cluster: up", "x-forwarded-proto: https"])]);
    expect(seen.map((h) => [h["x-envoy-expected-rq-timeout-ms"], h["x-forwarded-proto"]])).toEqual([
      ["300000", "http"],
      ["300000", "https"],
    ]);
  });

  it("a client's x-envoy-* router controls (retries, timeouts, tracing) never reach the router or the upstream", async () => {
    // ConnectionManagerUtility::cleanInternalHeaders; no request is internal (Envoy >= 1.33 with no
    // internal_address_config), even one whose x-forwarded-for names a single private address.
    const g = await gateway({ up: { url: await upstream() } }, undefined, 300_000);
    const controls = [
      "x-envoy-max-retries: 9", "x-envoy-retry-on: 5xx", "x-envoy-upstream-rq-timeout-ms: 1", "x-envoy-upstream-rq-per-try-timeout-ms: 1",
      "x-envoy-expected-rq-timeout-ms: 1", "x-envoy-force-trace: true", "x-envoy-hedge-on-per-try-timeout: true", "x-envoy-original-url: http://x/",
    ];
    const [r] = await rawExchange(g.port, [get("/a", ["x-cluster: up", "x-forwarded-for: 10.0.0.7", "x-envoy-custom: kept", ...controls])]);
    expect(r.status).toBe(200);
    for (const c of controls) {
      const name = c.split(":")[0];
      if (name === "x-envoy-expected-rq-timeout-ms") expect(seen[0][name]).toBe("300000"); // the router's own
      else expect(seen[0][name], name).toBeUndefined();
    }
    expect(seen[0]["x-envoy-custom"]).toBe("kept"); // only the router's controls are removed
  });

  it("header names with underscores reach the upstream (headers_with_underscores_action: ALLOW, Envoy's default)", async () => {
    const g = await gateway({ up: { url: await upstream() } });
    const [r] = await rawExchange(g.port, [get("/a", ["x-cluster: up", "x_tenant_id: t1"])]);
    expect(r.status).toBe(200);
    expect(seen[0]["x_tenant_id"]).toBe("t1");
  });
});

describe("the router's own replies", () => {
  it("an unknown cluster: 503 with an empty body (cluster_not_found_response_code's default), server: envoy", async () => {
    const g = await gateway({ up: { url: await upstream() } });
    const [r] = await rawExchange(g.port, [get("/a", ["x-cluster: nowhere"])]);
    expect([r.status, r.body]).toEqual([503, ""]);
    // A headers-only answer is framed by "content-length: 0" (the HTTP/1 codec), not an empty chunked
    // body; a GET without a body is complete, so the connection stays open (no "connection: close").
    expect(r.headers["content-length"]).toBe("0");
    expect(r.names).not.toContain("transfer-encoding");
    expect(r.names).not.toContain("connection");
    expect(r.closed).toBe(false);
    expect(r.headers.server).toBe("envoy");
    expect(logged).toEqual([{ status: 503, details: "cluster_not_found", flags: "NC" }]);
    expect(r.names).not.toContain("x-envoy-upstream-service-time");
    expect(r.names).not.toContain("keep-alive");
  });

  it("an upstream that refuses the connection: 503 with Envoy's text, text/plain, no upstream service time", async () => {
    const dead = net.createServer();
    await new Promise<void>((r) => dead.listen(0, "127.0.0.1", r));
    const port = (dead.address() as AddressInfo).port;
    await new Promise<void>((r) => dead.close(() => r()));
    const g = await gateway({ up: { url: `http://127.0.0.1:${port}` } });
    const [r] = await rawExchange(g.port, [get("/a", ["x-cluster: up"])]);
    // Envoy >= 1.27 names a refused connect a remote connection failure and gives the socket's error.
    expect([r.status, r.body]).toEqual([503, "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, transport failure reason: delayed connect error: Connection refused"]);
    expect(r.headers["content-type"]).toBe("text/plain");
    expect(r.headers["content-length"]).toBe(String(r.body.length));
    expect(logged).toEqual([{ status: 503, details: "upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}", flags: "UF" }]);
    // UpstreamRequest::onPoolFailure records the host it tried and why (%UPSTREAM_HOST%,
    // %UPSTREAM_TRANSPORT_FAILURE_REASON% in the access log).
    expect(loggedUpstream).toMatchObject({ address: `127.0.0.1:${port}`, transportFailureReason: "delayed connect error: Connection refused" });
    expect(r.headers.server).toBe("envoy");
    expect(r.names).not.toContain("x-envoy-upstream-service-time");
  });
});

describe("the HTTP/1 codec's request header limits (max_request_headers_kb 60, max_headers_count 100)", () => {
  const ENVOY_431 = "Request Header Fields Too Large";

  it("a 40 KiB header block passes (Node's own limit, 16 KiB, is not Envoy's)", async () => {
    const g = await gateway({ up: { url: await upstream() } });
    const [r] = await rawExchange(g.port, [get("/a", ["x-cluster: up", `x-big: ${"a".repeat(40 * 1024)}`])]);
    expect(r.status).toBe(200);
    expect(seen[0]["x-big"]).toHaveLength(40 * 1024);
  });

  it("past 60 KiB of names and values: Envoy's 431 with its body, connection closed, nothing sent upstream", async () => {
    const g = await gateway({ up: { url: await upstream() } });
    const [r] = await rawExchange(g.port, [get("/a", ["x-cluster: up", `x-big: ${"a".repeat(60 * 1024)}`])]);
    expect([r.status, r.body]).toEqual([431, ENVOY_431]);
    expect(r.headers["content-type"]).toBe("text/plain");
    expect(r.headers.server).toBe("envoy");
    expect(r.headers.connection).toBe("close");
    expect(r.closed).toBe(true);
    expect(seen).toHaveLength(0);
  });

  it("a header block past what Node parses at all (300 KiB) gets the same 431", async () => {
    const g = await gateway({ up: { url: await upstream() } });
    const [r] = await rawExchange(g.port, [get("/a", ["x-cluster: up", `x-big: ${"a".repeat(300 * 1024)}`])]);
    expect([r.status, r.body]).toEqual([431, ENVOY_431]);
    expect(r.headers.server).toBe("envoy");
    expect(r.closed).toBe(true);
  });

  it("101 headers: 431 (too many headers); 100 pass", async () => {
    const g = await gateway({ up: { url: await upstream() } });
    const many = (n: number) => Array.from({ length: n }, (_, i) => `x-h${i}: v`);
    // host and x-cluster count: 98 more make 100.
    const [ok] = await rawExchange(g.port, [get("/a", ["x-cluster: up", ...many(98)])]);
    expect(ok.status).toBe(200);
    const [r] = await rawExchange(g.port, [get("/a", ["x-cluster: up", ...many(99)])]);
    expect([r.status, r.body]).toEqual([431, ENVOY_431]);
  });

  it("a request Node's parser cannot read gets the codec's 400 Bad Request (not a silent close)", async () => {
    const g = await gateway({ up: { url: await upstream() } });
    const [r] = await rawExchange(g.port, ["GET / HTTP/1.1\r\nhost: a\r\nbad header\r\n\r\n"]);
    expect([r.status, r.body]).toEqual([400, "Bad Request"]);
    expect(r.headers.server).toBe("envoy");
    expect(r.closed).toBe(true);
  });

  it("local_reply_config rewrites the codec's 431 like any local reply (its flag DPE matches)", async () => {
    const g = await gateway(
      { up: { url: await upstream() } },
      {
        mappers: [
          {
            filter: { response_flag_filter: { flags: ["DPE"] } },
            status_code: 400,
            body_format_override: { json_format: { error: { message: "%LOCAL_REPLY_BODY%", code: "%RESPONSE_CODE%" } } },
          },
        ],
      },
    );
    const [r] = await rawExchange(g.port, [get("/a", ["x-cluster: up", `x-big: ${"a".repeat(61 * 1024)}`])]);
    expect(r.status).toBe(400);
    expect(r.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(r.body)).toEqual({ error: { message: ENVOY_431, code: 400 } });
  });
});
