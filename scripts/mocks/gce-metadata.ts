// A Google Compute Engine metadata server for tests: GET /computeMetadata/v1/instance/service-accounts/
// default/token with the header Metadata-Flavor: Google answers {access_token, expires_in,
// token_type: "Bearer"} (the workload's service account token, as on GCE, GKE with workload identity
// and Cloud Run); without the header it answers 403, as the real one does. It issues numbered tokens
// (ya29.mock-1, ...), records the scopes asked, and can be down.
import http from "node:http";
import type { AddressInfo } from "node:net";

export const METADATA_TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token";

export interface MetadataMock {
  url: string;
  issued: string[];
  scopes: string[];
  down: boolean;
  expiresIn: number;
  close(): Promise<void>;
}

export async function startMetadataMock(): Promise<MetadataMock> {
  const mock: MetadataMock = { url: "", issued: [], scopes: [], down: false, expiresIn: 3599, close: async () => {} };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://metadata.google.internal");
    if (mock.down) return void res.writeHead(503).end();
    if (req.headers["metadata-flavor"] !== "Google") return void res.writeHead(403, { "content-type": "text/html" }).end("Missing Metadata-Flavor:Google header.");
    if (req.method !== "GET" || url.pathname !== METADATA_TOKEN_PATH) return void res.writeHead(404).end();
    mock.scopes.push(url.searchParams.get("scopes") ?? "");
    const token = `ya29.mock-${mock.issued.length + 1}`;
    mock.issued.push(token);
    res.writeHead(200, { "content-type": "application/json", "metadata-flavor": "Google" }).end(JSON.stringify({ access_token: token, expires_in: mock.expiresIn, token_type: "Bearer" }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  mock.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  mock.close = () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); });
  return mock;
}
