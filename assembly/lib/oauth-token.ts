// OAuth 2.0 client-credentials tokens (RFC 6749 section 4.4) for a service the gateway calls with a
// credential of its own (an MCP server today; cloud providers' token flows use the same source).
//
// One token per source, kept in Envoy's shared data so every worker uses it: a request only reads it
// (one proxy_get_shared_data, parsed again only when it changed). The root context's tick fetches a
// new one before the old one expires: the worker that wins a compare-and-swap on a lease fetches
// (proxy_http_call), the others wait for what it writes. A failed fetch is written too, with its
// reason and a retry time that doubles up to a minute, so no worker hammers a token endpoint that is
// down. The client secret goes only into the token request's body; the token itself never reaches a
// log, a metric or a client.
import { RootContext, BaseContext, getSharedData, setSharedData, WasmResultValues, logWarn, logInfo, defineMetric, incrementMetric, recordMetric, METRIC_COUNTER, METRIC_GAUGE } from "./sdk";
import { httpCall, httpCallStatus, httpCallBody } from "./http-call";
import { ByteBuilder, parseJson } from "./json";

/** A token is used until this long before it expires, and refreshed from this long before. */
const EXPIRY_MARGIN_MS: i64 = 10000;
const REFRESH_MIN_MS: i64 = 60000;
/** expires_in when the endpoint gives none (RFC 6749 only recommends it). */
const DEFAULT_LIFETIME_MS: i64 = 3600000;
const MAX_BACKOFF_MS: i64 = 60000;
const MAX_TOKEN_BYTES: i32 = 16384;
const MAX_ANSWER_BYTES: usize = 65536;

/** The state all workers share: the token, when to use it until, and the fetch in flight or the last failure. */
class Shared {
  token: string = "";
  expiresMs: i64 = 0;
  refreshMs: i64 = 0;
  leaseMs: i64 = 0;
  retryMs: i64 = 0;
  failures: i32 = 0;
  reason: string = "";

  encode(): ArrayBuffer {
    return String.UTF8.encode(this.expiresMs.toString() + "\n" + this.refreshMs.toString() + "\n" + this.leaseMs.toString() + "\n" + this.retryMs.toString() + "\n" +
      this.failures.toString() + "\n" + this.reason + "\n" + this.token);
  }

  static decode(b: ArrayBuffer | null): Shared {
    const s = new Shared();
    if (b === null) return s;
    const f = String.UTF8.decode(b as ArrayBuffer).split("\n");
    if (f.length != 7) return s;
    s.expiresMs = I64.parseInt(f[0]);
    s.refreshMs = I64.parseInt(f[1]);
    s.leaseMs = I64.parseInt(f[2]);
    s.retryMs = I64.parseInt(f[3]);
    s.failures = I32.parseInt(f[4]);
    s.reason = f[5];
    s.token = f[6];
    return s;
  }
}

/** One outstanding token request: its source, so the answer finds it. */
class Fetch extends BaseContext {
  constructor(public source: TokenSource) {
    super(source.root.context_id);
  }
}

function onTokenAnswer(origin: BaseContext, headers: u32, bodySize: usize, _trailers: u32): void {
  const f = changetype<Fetch>(origin);
  f.source.answered(headers, bodySize);
}

/** application/x-www-form-urlencoded (WHATWG URL, the form serializer): unreserved bytes as they are, space as +. */
function formValue(b: ByteBuilder, s: string): void {
  const u = String.UTF8.encode(s);
  const p = changetype<usize>(u);
  const hex = "0123456789ABCDEF";
  for (let i = 0; i < u.byteLength; i++) {
    const c = load<u8>(p + i);
    if ((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 42 || c == 45 || c == 46 || c == 95) b.byte(c);
    else if (c == 32) b.byte(43);
    else b.byte(37).byte(<u8>hex.charCodeAt(c >> 4)).byte(<u8>hex.charCodeAt(c & 15));
  }
}

export class TokenSource {
  /** Shared-data key: sluice.oauth.<owner>.<name>. */
  key: string;
  // The last shared value read, and what it said (parsed again only when its CAS changes).
  private seenCas: u32 = 0xffffffff;
  private seen: Shared = new Shared();
  private fetching: bool = false;
  /**
   * The token comes from a GCE metadata server (GET with Metadata-Flavor: Google, the scopes in the
   * query), not from the client-credentials grant; its answer has the same shape.
   */
  metadata: bool = false;
  private fetchStartedMs: i64 = 0;
  private nowMs: i64 = 0;
  private fetched: u32;
  private failed: u32;
  private valid: u32;

  constructor(
    public root: RootContext, owner: string, public name: string, public cluster: string, public authority: string, public path: string,
    public clientId: string, public clientSecret: string, public scope: string, public audience: string, public timeoutMs: u32,
  ) {
    this.key = "sluice.oauth." + owner + "." + name;
    this.fetched = defineMetric(METRIC_COUNTER, "sluice.upstream_token_fetches;server=" + name + ";outcome=ok");
    this.failed = defineMetric(METRIC_COUNTER, "sluice.upstream_token_fetches;server=" + name + ";outcome=error");
    this.valid = defineMetric(METRIC_GAUGE, "sluice.upstream_token_valid;server=" + name);
  }

  private read(): Shared {
    const v = getSharedData(this.key);
    if (v.value === null) return new Shared();
    if (v.cas != this.seenCas) {
      this.seen = Shared.decode(v.value);
      this.seenCas = v.cas;
    }
    return this.seen;
  }

  /** The token to send now, or null (then `why()` says why). */
  current(nowMs: i64): string | null {
    const s = this.read();
    if (s.token.length == 0 || s.expiresMs - EXPIRY_MARGIN_MS <= nowMs) return null;
    return s.token;
  }

  /** Why there is no usable token: the last failure, or that none was fetched yet. Never the secret. */
  why(): string {
    const s = this.read();
    return s.reason.length ? s.reason : "no token has been fetched yet";
  }

  /** On the root's tick (and at start): fetches a token when none is fresh and no worker is fetching one. */
  tick(nowMs: i64): void {
    this.nowMs = nowMs;
    const v = getSharedData(this.key);
    const s = Shared.decode(v.value);
    recordMetric(this.valid, s.token.length > 0 && s.expiresMs - EXPIRY_MARGIN_MS > nowMs ? 1 : 0);
    if (this.fetching) {
      // An answer Envoy never delivered (the VM's call was lost): give up after the timeout.
      if (nowMs - this.fetchStartedMs < <i64>this.timeoutMs + 5000) return;
      this.fetching = false;
    }
    if (s.token.length > 0 && nowMs < s.refreshMs) return;
    if (s.leaseMs > nowMs || s.retryMs > nowMs) return;
    // Take the lease: only the worker whose compare-and-swap lands fetches.
    s.leaseMs = nowMs + <i64>this.timeoutMs + 1000;
    if (setSharedData(this.key, s.encode(), v.value === null ? 0 : v.cas) != WasmResultValues.Ok) return;
    if (this.metadata) {
      const path = this.scope.length ? this.path + (this.path.includes("?") ? "&" : "?") + "scopes=" + this.scope : this.path;
      const mh = [":method", "GET", ":path", path, ":authority", this.authority, "metadata-flavor", "Google", "accept", "application/json"];
      if (!httpCall(this.root, this.cluster, mh, new ArrayBuffer(0), this.timeoutMs, new Fetch(this), onTokenAnswer)) {
        this.fail(s, "Envoy refused the token request (no cluster " + this.cluster + ")");
        return;
      }
      this.fetching = true;
      this.fetchStartedMs = nowMs;
      return;
    }
    const body = new ByteBuilder(128);
    body.raw("grant_type=client_credentials&client_id=");
    formValue(body, this.clientId);
    body.raw("&client_secret=");
    formValue(body, this.clientSecret);
    if (this.scope.length) {
      body.raw("&scope=");
      formValue(body, this.scope);
    }
    if (this.audience.length) {
      body.raw("&audience=");
      formValue(body, this.audience);
    }
    const h = [":method", "POST", ":path", this.path, ":authority", this.authority, "content-type", "application/x-www-form-urlencoded", "accept", "application/json"];
    if (!httpCall(this.root, this.cluster, h, body.toArrayBuffer(), this.timeoutMs, new Fetch(this), onTokenAnswer)) {
      this.fail(s, "Envoy refused the token request (no cluster " + this.cluster + ")");
      return;
    }
    this.fetching = true;
    this.fetchStartedMs = nowMs;
  }

  answered(headers: u32, bodySize: usize): void {
    this.fetching = false;
    const now = this.nowMs;
    const s = Shared.decode(getSharedData(this.key).value);
    const status = httpCallStatus(headers);
    if (status != 200) {
      this.fail(s, status == 0 ? "the token endpoint did not answer" : status == 504 ? "the token endpoint timed out" : "the token endpoint answered HTTP " + status.toString() + (status == 400 || status == 401 ? " (check the client id and secret)" : ""));
      return;
    }
    if (bodySize > MAX_ANSWER_BYTES) {
      this.fail(s, "the token endpoint's answer is larger than " + MAX_ANSWER_BYTES.toString() + " bytes");
      return;
    }
    const v = parseJson(httpCallBody(bodySize), 1000);
    const tok = v !== null ? v.get("access_token") : null;
    if (tok === null || !tok.isString() || tok.units == 0 || tok.units > MAX_TOKEN_BYTES || !visibleAscii(tok.s)) {
      this.fail(s, "the token endpoint's answer has no usable access_token");
      return;
    }
    const type = v!.get("token_type");
    if (type !== null && (!type.isString() || type.s.toLowerCase() != "bearer")) {
      this.fail(s, "the token endpoint gave a token that is not a Bearer token");
      return;
    }
    const exp = v!.get("expires_in");
    let lifetime = DEFAULT_LIFETIME_MS;
    if (exp !== null && exp.isNumber() && exp.n > 0 && exp.n < 31536000) lifetime = <i64>(exp.n * 1000);
    s.token = tok.s;
    s.expiresMs = now + lifetime;
    // Refreshed a fifth of its life before it ends, at least a minute before (or half way for short ones).
    let early = lifetime / 5;
    if (early < REFRESH_MIN_MS) early = REFRESH_MIN_MS;
    if (early > lifetime / 2) early = lifetime / 2;
    s.refreshMs = s.expiresMs - early;
    s.leaseMs = 0;
    s.retryMs = 0;
    s.failures = 0;
    s.reason = "";
    setSharedData(this.key, s.encode(), 0);
    incrementMetric(this.fetched, 1);
    recordMetric(this.valid, 1);
    logInfo("oauth: a token for " + this.name + " was fetched; it is used until " + (lifetime / 1000).toString() + " s from now");
  }

  private fail(s: Shared, reason: string): void {
    s.failures++;
    let backoff: i64 = 1000;
    for (let i = 1; i < s.failures && backoff < MAX_BACKOFF_MS; i++) backoff *= 2;
    if (backoff > MAX_BACKOFF_MS) backoff = MAX_BACKOFF_MS;
    s.leaseMs = 0;
    s.retryMs = this.nowMs + backoff;
    s.reason = reason;
    setSharedData(this.key, s.encode(), 0);
    incrementMetric(this.failed, 1);
    logWarn("oauth: no token for " + this.name + ": " + reason + " (next try in " + (backoff / 1000).toString() + " s)");
  }
}

function visibleAscii(s: string): bool {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}
