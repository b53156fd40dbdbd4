// AWS Signature Version 4 (the Authorization header AWS services such as Bedrock require), computed
// inside the filter from credentials in the VM's environment. The rules are AWS's, as the AWS SDK's
// own signer (@smithy/signature-v4, the oracle of test/sigv4.test.ts) applies them:
// - canonical request: method, canonical path, canonical query, canonical headers, signed header
//   names, hex SHA-256 of the body, one per line;
// - canonical path: the path as it is sent, its empty and "." segments dropped and ".." resolved,
//   then every byte outside A-Z a-z 0-9 - _ . ~ percent-encoded again (a %3A sent becomes %253A),
//   "/" kept;
// - canonical query: each name and value percent-decoded, then encoded as above, sorted;
// - canonical headers: names lower-cased and sorted, values with runs of blanks made one space and
//   trimmed; headers AWS never signs (authorization, user-agent, ...) left out;
// - string to sign: AWS4-HMAC-SHA256, the time (YYYYMMDD'T'HHMMSS'Z', UTC), the scope
//   (date/region/service/aws4_request), hex SHA-256 of the canonical request;
// - signing key: HMAC-SHA256 chained from "AWS4" + secret over the date, region, service and
//   "aws4_request".
import { ByteBuilder } from "./json";
import { sha256, toHex } from "./sha256";
import { hmacSha256 } from "./hmac";

export class AwsCredentials {
  accessKeyId: string = "";
  secretAccessKey: string = "";
  /** A temporary credential's token (AWS_SESSION_TOKEN), or "". */
  sessionToken: string = "";
}

/** Headers AWS's signer never signs (their value may change on the way). */
const UNSIGNED = ["authorization", "cache-control", "connection", "expect", "from", "keep-alive", "max-forwards", "pragma", "referer", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id"];

const HEX_UPPER = "0123456789ABCDEF";

function unreserved(c: u8): bool {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x5f || c == 0x2e || c == 0x7e;
}

/** bytes percent-encoded: every byte outside the unreserved set, and "/" too unless keepSlash. */
function escape(out: ByteBuilder, p: usize, n: i32, keepSlash: bool): void {
  for (let i = 0; i < n; i++) {
    const c = load<u8>(p + <usize>i);
    if (unreserved(c) || (keepSlash && c == 0x2f)) out.byte(c);
    else out.byte(0x25).byte(<u8>HEX_UPPER.charCodeAt(c >> 4)).byte(<u8>HEX_UPPER.charCodeAt(c & 15));
  }
}

function hexValue(c: u8): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** s's UTF-8 with each valid %XX decoded to its byte. */
function percentDecoded(s: string): ArrayBuffer {
  const b = String.UTF8.encode(s);
  const p = changetype<usize>(b);
  const out = new ByteBuilder(b.byteLength);
  for (let i = 0; i < b.byteLength; i++) {
    const c = load<u8>(p + <usize>i);
    if (c == 0x25 && i + 2 < b.byteLength) {
      const h = hexValue(load<u8>(p + <usize>(i + 1)));
      const l = hexValue(load<u8>(p + <usize>(i + 2)));
      if (h >= 0 && l >= 0) {
        out.byte(<u8>((h << 4) | l));
        i += 2;
        continue;
      }
    }
    out.byte(c);
  }
  return out.toArrayBuffer();
}

/** The canonical path of a path as sent (see the top of this file). */
export function canonicalPath(path: string): string {
  const parts = path.split("/");
  const kept = new Array<string>();
  for (let i = 0; i < parts.length; i++) {
    const s = parts[i];
    if (s.length == 0 || s == ".") continue;
    if (s == "..") {
      if (kept.length) kept.pop();
    } else kept.push(s);
  }
  let normal = (path.startsWith("/") ? "/" : "") + kept.join("/");
  if (kept.length && path.endsWith("/")) normal += "/";
  const b = String.UTF8.encode(normal);
  const out = new ByteBuilder(b.byteLength + 16);
  escape(out, changetype<usize>(b), b.byteLength, true);
  return out.toString();
}

/** The canonical query of a raw query string (without "?"). */
export function canonicalQuery(query: string): string {
  if (query.length == 0) return "";
  const pairs = query.split("&");
  const items = new Array<string>();
  for (let i = 0; i < pairs.length; i++) {
    if (pairs[i].length == 0) continue;
    const eq = pairs[i].indexOf("=");
    const name = percentDecoded(eq < 0 ? pairs[i] : pairs[i].substring(0, eq));
    const value = percentDecoded(eq < 0 ? "" : pairs[i].substring(eq + 1));
    const out = new ByteBuilder(name.byteLength + value.byteLength + 8);
    escape(out, changetype<usize>(name), name.byteLength, false);
    out.byte(0x3d);
    escape(out, changetype<usize>(value), value.byteLength, false);
    items.push(out.toString());
  }
  items.sort();
  return items.join("&");
}

/** A header value as AWS signs it: CR and LF as spaces, runs of spaces and tabs as one space, trimmed. */
function headerValue(v: string): string {
  let out = "";
  let blank = false;
  for (let i = 0; i < v.length; i++) {
    let c = v.charCodeAt(i);
    if (c == 0x0d || c == 0x0a || c == 0x09) c = 0x20;
    if (c == 0x20) {
      blank = true;
      continue;
    }
    if (blank && out.length) out += " ";
    blank = false;
    out += String.fromCharCode(c);
  }
  return out;
}

/** "YYYYMMDDTHHMMSSZ" of a time in ms since the epoch, in UTC. */
export function amzDate(ms: i64): string {
  let days = ms / 86400000;
  let rest = ms % 86400000;
  if (rest < 0) {
    rest += 86400000;
    days--;
  }
  // Civil date from days since 1970-01-01 (the proleptic Gregorian calendar).
  const z = days + 719468;
  const era = (z >= 0 ? z : z - 146096) / 146097;
  const doe = z - era * 146097;
  const yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const mp = (5 * doy + 2) / 153;
  const d = doy - (153 * mp + 2) / 5 + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  const secs = rest / 1000;
  return pad(y, 4) + pad(m, 2) + pad(d, 2) + "T" + pad(secs / 3600, 2) + pad((secs / 60) % 60, 2) + pad(secs % 60, 2) + "Z";
}

function pad(n: i64, width: i32): string {
  let s = n.toString();
  while (s.length < width) s = "0" + s;
  return s;
}

// The last signing key, for the day, region and service it was made for: it changes once a day.
let keyFor = "";
let keyBytes = new ArrayBuffer(0);

function signingKey(c: AwsCredentials, date: string, region: string, service: string): ArrayBuffer {
  const id = date + "/" + region + "/" + service + "/" + c.accessKeyId + "/" + c.secretAccessKey;
  if (id == keyFor) return keyBytes;
  let k = String.UTF8.encode("AWS4" + c.secretAccessKey);
  const parts = [date, region, service, "aws4_request"];
  for (let i = 0; i < parts.length; i++) {
    const m = String.UTF8.encode(parts[i]);
    const d = hmacSha256(k, changetype<usize>(m), m.byteLength);
    k = new ArrayBuffer(32);
    memory.copy(changetype<usize>(k), changetype<usize>(d), 32);
  }
  keyFor = id;
  keyBytes = k;
  return k;
}

/**
 * The headers that sign a request, as a flat [name, value, ...] list to add to it:
 * x-amz-content-sha256, x-amz-date, x-amz-security-token (with a session token) and authorization. `headers` are the request's other
 * headers (flat, any case; host among them); `path` and `query` as they are sent.
 */
export function signV4(c: AwsCredentials, region: string, service: string, method: string, path: string, query: string, headers: Array<string>, bodyPtr: usize, bodyLen: i32, nowMs: i64): Array<string> {
  const date = amzDate(nowMs);
  const day = date.substring(0, 8);
  const payloadHash = toHex(sha256(bodyPtr, <usize>bodyLen));
  // The body's hash is sent and signed too, as the AWS SDK's signer does (applyChecksum).
  const added = ["x-amz-content-sha256", payloadHash, "x-amz-date", date];
  if (c.sessionToken.length) {
    added.push("x-amz-security-token");
    added.push(c.sessionToken);
  }
  // Canonical headers: the request's and the added ones, lower-cased, sorted, values cleaned.
  const names = new Array<string>();
  const values = new Map<string, string>();
  const all = headers.concat(added);
  for (let i = 0; i + 1 < all.length; i += 2) {
    const name = all[i].toLowerCase();
    if (UNSIGNED.includes(name) || name.startsWith("proxy-") || name.startsWith("sec-")) continue;
    if (!values.has(name)) names.push(name);
    values.set(name, headerValue(all[i + 1]));
  }
  names.sort();
  const cr = new ByteBuilder(512);
  cr.raw(method).byte(0x0a).raw(canonicalPath(path)).byte(0x0a).raw(canonicalQuery(query)).byte(0x0a);
  for (let i = 0; i < names.length; i++) cr.raw(names[i]).byte(0x3a).raw(values.get(names[i])).byte(0x0a);
  const signed = names.join(";");
  cr.byte(0x0a).raw(signed).byte(0x0a).raw(payloadHash);
  const scope = day + "/" + region + "/" + service + "/aws4_request";
  const sts = "AWS4-HMAC-SHA256\n" + date + "\n" + scope + "\n" + toHex(sha256(changetype<usize>(cr.buf), <usize>cr.len));
  const stsBytes = String.UTF8.encode(sts);
  const signature = toHex(hmacSha256(signingKey(c, day, region, service), changetype<usize>(stsBytes), stsBytes.byteLength));
  added.push("authorization");
  added.push("AWS4-HMAC-SHA256 Credential=" + c.accessKeyId + "/" + scope + ", SignedHeaders=" + signed + ", Signature=" + signature);
  return added;
}
