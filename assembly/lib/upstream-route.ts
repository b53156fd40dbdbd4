// Pointing a held request at a service the gateway fronts (an MCP server, an A2A agent) through
// Envoy's router: path, authority, the route's cluster header, the service's own credential, and
// none of the client's. The route's cluster_header picks the cluster once the route cache is cleared.
import { REQUEST_HEADERS, replaceHeader, removeHeader, clearRouteCache } from "./sdk";

/** Headers that may carry a client's credential; none of them reaches the service. */
const CLIENT_CREDENTIALS = ["authorization", "x-api-key", "proxy-authorization", "cookie", "x-goog-api-key", "api-key"];

export function routeTo(clusterHeader: string, cluster: string, authority: string, path: string, credentialHeader: string, credential: string | null): void {
  replaceHeader(REQUEST_HEADERS, ":path", path);
  replaceHeader(REQUEST_HEADERS, ":authority", authority);
  replaceHeader(REQUEST_HEADERS, clusterHeader, cluster);
  for (let i = 0; i < CLIENT_CREDENTIALS.length; i++) removeHeader(REQUEST_HEADERS, CLIENT_CREDENTIALS[i]);
  if (credential !== null && credentialHeader.length) replaceHeader(REQUEST_HEADERS, credentialHeader, credential as string);
  clearRouteCache();
}
