// identity: makes the consumer of an identity Envoy already established (a JWT verified by
// jwt_authn, the client's certificate, an ext_authz answer, a header a trusted proxy set), so token
// limits and routes work per consumer without a second credential. Runs right after key-auth
// (docs/native-filters.md); configuration and behaviour: docs/identity.md.
//
// It reads values straight from Envoy's properties (one proxy_get_property per source, at the exact
// path): nothing is parsed as JSON.
export * from "../../lib/abi-exports";
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues,
  REQUEST_HEADERS, getHeaderPairs, HeaderPairs, getProperty, getFilterState, setFilterState, pluginConfiguration,
  sendLocalResponse, incrementMetric,
} from "../../lib/sdk";
import { errorBody, anthropicErrorBody } from "../../lib/errors";
import { CONSUMER, GROUPS, IDENTITY_SOURCE } from "../../lib/keys";
import { Settings, Source, readSettings, FROM_HEADER, FROM_JWT, SOURCE_NAMES } from "./config";
import { validConsumer, readGroups, splitGroups, maxGroupsBytes, Groups } from "./values";

/** Longest identity read (before `map`): anything longer is refused without being decoded. */
const MAX_RAW_BYTES: i32 = 1024;

class IdentityRoot extends RootContext {
  settings: Settings | null = null;

  createContext(context_id: u32): Context {
    return new Identity(context_id, this);
  }

  onConfigure(size: u32): bool {
    const s = readSettings(pluginConfiguration(size));
    if (s === null) return false;
    this.settings = s;
    return true;
  }
}

/** What one source gave: nothing (absent or empty), a value, or a refusal. */
class Found {
  value: string | null = null;
  error: string = "";
}

/** The header's one value (up to `limit` bytes); a repeated header is refused (a forged copy beside the proxy's own). */
function headerValue(h: HeaderPairs, name: string, limit: i32, out: Found): void {
  for (let i = 0; i < h.count; i++) {
    if (!h.keyIs(i, name)) continue;
    if (out.value !== null) {
      out.value = null;
      out.error = "The '" + name + "' header is repeated.";
      return;
    }
    if (h.valueLength(i) > limit) {
      out.error = "The value of '" + name + "' is too long.";
      return;
    }
    out.value = h.value(i);
  }
}

function read(src: Source, h: HeaderPairs): Found {
  const out = new Found();
  if (src.kind == FROM_HEADER) {
    headerValue(h, src.header, MAX_RAW_BYTES, out);
  } else {
    const v = getProperty(src.property);
    if (v === null) return out;
    const buf = v as ArrayBuffer;
    if (buf.byteLength > MAX_RAW_BYTES) out.error = "The identity is too long.";
    else out.value = String.UTF8.decode(buf);
  }
  // An empty value is none (Envoy's subject_peer_certificate is "" without a certificate).
  if (out.value !== null && (out.value as string).length == 0) out.value = null;
  return out;
}

function isAnthropic(h: HeaderPairs): bool {
  // As the local-reply mappers tell an Anthropic client (cli/render/local-reply.ts ANTHROPIC_CLIENT).
  for (let i = 0; i < h.count; i++) {
    if (h.keyIs(i, "anthropic-version")) return true;
    if (h.keyIs(i, ":path") && h.value(i).startsWith("/v1/messages")) return true;
  }
  return false;
}

class Identity extends Context {
  constructor(id: u32, root: IdentityRoot) {
    super(id, root);
  }

  onRequestHeaders(_n: u32, _eos: bool): FilterHeadersStatusValues {
    const s = (this.root_context as IdentityRoot).settings;
    if (s === null) return FilterHeadersStatusValues.Continue; // unreachable: Envoy refuses the config
    const h = getHeaderPairs(REQUEST_HEADERS);

    // key-auth ran first: a consumer it identified by key stays (a key is the stronger, explicit
    // credential); its anonymous consumer is no identity, so the sources below decide.
    const prior = getFilterState(CONSUMER);
    if (prior !== null && (prior as string).length > 0 && prior != s.keyAuthAnonymous) {
      setFilterState(IDENTITY_SOURCE, "key-auth");
      incrementMetric(s.allowed, 1);
      return FilterHeadersStatusValues.Continue;
    }

    for (let i = 0; i < s.sources.length; i++) {
      const src = s.sources[i];
      const f = read(src, h);
      if (f.error.length) return this.deny(s, h, f.error, src.kind == FROM_JWT);
      if (f.value === null) continue;
      const raw = f.value as string;
      // The first source with a value decides: a refused value never falls through to a weaker source.
      let consumer = raw;
      if (s.map.has(raw)) consumer = s.map.get(raw);
      else if (!validConsumer(raw, s.maxConsumerLength)) {
        return this.deny(s, h, "The identity is not a valid consumer name (1 to " + s.maxConsumerLength.toString() +
          " letters, digits, spaces or - _ . @ : / + = ,).", src.kind == FROM_JWT);
      }
      let groups = "";
      const g = s.groups;
      if (g !== null) {
        const gs = new Groups();
        if (g.kind == FROM_HEADER) {
          const gf = new Found();
          headerValue(h, g.header, maxGroupsBytes(s.maxGroups), gf);
          if (gf.error.length) return this.deny(s, h, gf.error, false);
          if (gf.value !== null) splitGroups(gf.value as string, s.maxGroups, gs);
        } else {
          const v = getProperty(g.property);
          if (v !== null) readGroups(v as ArrayBuffer, s.maxGroups, gs);
        }
        if (gs.error.length) return this.deny(s, h, "The identity's groups were refused: " + gs.error + ".", g.kind == FROM_JWT);
        groups = gs.names.join(",");
      }
      setFilterState(CONSUMER, consumer);
      if (groups.length) setFilterState(GROUPS, groups);
      setFilterState(IDENTITY_SOURCE, SOURCE_NAMES[src.kind]);
      incrementMetric(s.allowed, 1);
      return FilterHeadersStatusValues.Continue;
    }

    if (s.anonymous.length) {
      setFilterState(CONSUMER, s.anonymous);
      setFilterState(IDENTITY_SOURCE, "anonymous");
      incrementMetric(s.allowed, 1);
      return FilterHeadersStatusValues.Continue;
    }
    return this.deny(s, h, "No identity: the request carries no credential this gateway accepts.", false);
  }

  /** 401 in the client's API shape. `token`: the refused value came from a token (RFC 6750 invalid_token). */
  deny(s: Settings, h: HeaderPairs, message: string, token: bool): FilterHeadersStatusValues {
    incrementMetric(s.denied, 1);
    let challenge = "Bearer realm=\"" + s.realm + "\"";
    if (token) challenge += ", error=\"invalid_token\"";
    const body = isAnthropic(h)
      ? anthropicErrorBody(message, "authentication_error")
      : errorBody(message, "invalid_request_error", "invalid_identity");
    sendLocalResponse(401, "sluice_identity_denied", body, ["www-authenticate", challenge, "content-type", "application/json"]);
    return FilterHeadersStatusValues.StopIteration;
  }
}

registerRootContext((id: u32) => new IdentityRoot(id), "identity");
