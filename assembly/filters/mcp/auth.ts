// A server's credential on every request the gateway sends it, fanned out or routed. The client's
// own credential never goes: key-auth removed it, and route.ts removes every credential header
// before this one is set.
import { Server } from "./config";

/** The value of the server's credential header, or null when it has none. */
export function credentialFor(server: Server): string | null {
  if (server.authHeader.length == 0) return null;
  return server.authValue;
}
