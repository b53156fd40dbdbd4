// An OAuth 2.0 token endpoint for tests (RFC 6749 section 4.4, client credentials with the client's
// id and secret in the form body): it checks the grant type and the client, issues numbered tokens
// (tok-1, tok-2, ...) that expire after `expiresIn` seconds, counts fetches, and can be down, refuse
// the client, answer garbage or be slow.
import http from "node:http";
import type { AddressInfo } from "node:net";

export type TokenMockMode = "ok" | "down" | "unauthorized" | "garbage" | "slow";

export interface TokenMock {
  url: string;
  port: number;
  /** Token requests received, with their form fields. */
  requests: Record<string, string>[];
  /** Tokens issued so far. */
  issued: string[];
  mode: TokenMockMode;
  expiresIn: number;
  close(): Promise<void>;
}

export async function startTokenMock(opts: { clientId: string; clientSecret: string; expiresIn?: number; path?: string }): Promise<TokenMock> {
  const path = opts.path ?? "/oauth/token";
  const mock: TokenMock = {
    url: "", port: 0, requests: [], issued: [], mode: "ok", expiresIn: opts.expiresIn ?? 3600,
    close: async () => {},
  };
  const server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const form = Object.fromEntries(new URLSearchParams(body));
      mock.requests.push(form);
      const json = (status: number, v: unknown) => res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify(v));
      if (req.method !== "POST" || req.url !== path) return json(404, { error: "not_found" });
      if (mock.mode === "down") return void res.writeHead(503).end();
      if (mock.mode === "garbage") return void res.writeHead(200, { "content-type": "application/json" }).end("{\"access_token\": 7");
      if (!String(req.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded")) return json(400, { error: "invalid_request" });
      if (form.grant_type !== "client_credentials") return json(400, { error: "unsupported_grant_type" });
      if (mock.mode === "unauthorized" || form.client_id !== opts.clientId || form.client_secret !== opts.clientSecret) return json(401, { error: "invalid_client" });
      const issue = () => {
        const token = `tok-${mock.issued.length + 1}`;
        mock.issued.push(token);
        json(200, { access_token: token, token_type: "Bearer", expires_in: mock.expiresIn, ...(form.scope ? { scope: form.scope } : {}) });
      };
      if (mock.mode === "slow") setTimeout(issue, 3000);
      else issue();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  mock.port = (server.address() as AddressInfo).port;
  mock.url = `http://127.0.0.1:${mock.port}${path}`;
  mock.close = () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); });
  return mock;
}
