// A server's credential on every request the gateway sends it, fanned out or routed. The client's
// own credential never goes: key-auth removed it, and route.ts removes every credential header
// before this one is set.
import { Server } from "./config";
import { nowNanos } from "../../lib/sdk";

/**
 * The value of the server's credential header, or null when it has none. An OAuth server's is its
 * current token (lib/oauth-token.ts), or null while there is none: `missingCredential` says so.
 */
export function credentialFor(server: Server): string | null {
  const t = server.tokens;
  if (t !== null) {
    const token = t.current(<i64>(nowNanos() / 1000000));
    return token !== null ? "Bearer " + (token as string) : null;
  }
  if (server.authHeader.length == 0) return null;
  return server.authValue;
}

/** Why an OAuth server has no credential now, or null when it has one (or needs none). */
export function missingCredential(server: Server): string | null {
  const t = server.tokens;
  if (t === null || t.current(<i64>(nowNanos() / 1000000)) !== null) return null;
  return "no access token for it: " + t.why();
}
