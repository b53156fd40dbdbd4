// What Envoy reads from a TLS certificate for the connection.* / upstream.* properties and for its
// SAN matchers, read here from the certificate's DER (node:crypto has no accessor that keeps the
// order, the multi-valued RDNs and the raw SAN values):
// - subject: Utility::getSubjectFromCertificate (source/common/tls/utility.cc,
//   getRFC2253NameFromCertificate) prints X509_NAME_print_ex(..., XN_FLAG_RFC2253): the RDNs last to
//   first, "," between RDNs and "+" inside a multi-valued one, short attribute names (CN, O, ...),
//   values converted to UTF-8 with the RFC 2253 specials escaped by a backslash and control and
//   non-ASCII bytes as \XX; an attribute whose OID the library has no name for prints as the
//   dotted OID and #<hex of the value's DER>, and so does a value of a string type it cannot print.
// - SANs: Utility::getSubjectAltNames / generalNameAsString: every GeneralName of a type in
//   certificate order, DNS / URI / email as their bytes, IP addresses printed (IPv4 dotted, IPv6
//   compressed).
// Limit: only the attribute names listed in SHORT_NAMES are named; another attribute that
// BoringSSL knows by name prints here as its dotted OID and #hex value.
import { createHash } from "node:crypto";

/** One GeneralName of the subjectAltName extension, as generalNameAsString prints it. */
export interface San {
  type: "dns" | "uri" | "email" | "ip" | "other";
  value: string;
}

export interface CertificateNames {
  /** RFC 2253 subject as Envoy prints it, e.g. "CN=team-a+OU=AI,O=Example\, Inc.,C=US". */
  subject: string;
  /** Every SAN, in certificate order. */
  sans: San[];
  /** Lower-case hex SHA-256 of the DER (connection.sha256_peer_certificate_digest). */
  sha256: string;
}

interface Tlv {
  tag: number;
  /** The whole element (tag, length, content). */
  der: Buffer;
  content: Buffer;
}

class DerError extends Error {}

/** The element at `at` in `buf` (definite lengths only, as DER requires). */
function tlv(buf: Buffer, at: number): Tlv & { end: number } {
  if (at + 2 > buf.length) throw new DerError("truncated");
  const tag = buf[at];
  let len = buf[at + 1];
  let off = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || off + n > buf.length) throw new DerError("bad length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[off + i];
    off += n;
  }
  const end = off + len;
  if (end > buf.length) throw new DerError("truncated");
  return { tag, der: buf.subarray(at, end), content: buf.subarray(off, end), end };
}

function children(content: Buffer): Tlv[] {
  const out: Tlv[] = [];
  for (let at = 0; at < content.length; ) {
    const t = tlv(content, at);
    out.push(t);
    at = t.end;
  }
  return out;
}

function oid(content: Buffer): string {
  const parts: number[] = [];
  let v = 0;
  for (const b of content) {
    v = v * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      if (parts.length === 0) parts.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else parts.push(v);
      v = 0;
    }
  }
  return parts.join(".");
}

// The attribute short names OpenSSL / BoringSSL print with XN_FLAG_FN_SN (their object tables).
const SHORT_NAMES: Record<string, string> = {
  "2.5.4.3": "CN", "2.5.4.4": "SN", "2.5.4.5": "serialNumber", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST",
  "2.5.4.9": "street", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.12": "title", "2.5.4.13": "description",
  "2.5.4.17": "postalCode", "2.5.4.42": "GN", "2.5.4.43": "initials", "2.5.4.44": "generationQualifier",
  "2.5.4.46": "dnQualifier", "2.5.4.65": "pseudonym", "2.5.4.97": "organizationIdentifier",
  "2.5.4.15": "businessCategory", "1.2.840.113549.1.9.1": "emailAddress",
  "0.9.2342.19200300.100.1.25": "DC", "0.9.2342.19200300.100.1.1": "UID",
};

/** A directory string's characters (ASN1_STRING_to_UTF8), null for a type the printer dumps. */
function chars(t: Tlv): string | null {
  switch (t.tag) {
    case 0x0c: // UTF8String
      return t.content.toString("utf8");
    case 0x12: case 0x13: case 0x14: case 0x16: case 0x17: case 0x18: case 0x1a: // Numeric, Printable, T61, IA5, UTCTime, GeneralizedTime, Visible: one byte a character
      return t.content.toString("latin1");
    case 0x1e: { // BMPString: UCS-2 big-endian
      let s = "";
      for (let i = 0; i + 1 < t.content.length; i += 2) s += String.fromCharCode(t.content.readUInt16BE(i));
      return s;
    }
    case 0x1c: { // UniversalString: UCS-4 big-endian
      let s = "";
      for (let i = 0; i + 3 < t.content.length; i += 4) s += String.fromCodePoint(Math.min(t.content.readUInt32BE(i), 0x10ffff));
      return s;
    }
  }
  return null;
}

const hex2 = (b: number) => `\\${b.toString(16).toUpperCase().padStart(2, "0")}`;

/** ASN1_STRFLGS_RFC2253 escaping of a value already converted to UTF-8. */
function escape(value: string): string {
  const bytes = Buffer.from(value, "utf8");
  let out = "";
  bytes.forEach((b, i) => {
    if (b > 0x7e || b < 0x20) out += hex2(b); // ESC_MSB, ESC_CTRL
    else if (',+"\\<>;'.includes(String.fromCharCode(b))) out += `\\${String.fromCharCode(b)}`;
    else if ((i === 0 && (b === 0x23 || b === 0x20)) || (i === bytes.length - 1 && b === 0x20)) out += `\\${String.fromCharCode(b)}`;
    else out += String.fromCharCode(b);
  });
  return out;
}

/** An X509 Name printed as X509_NAME_print_ex(XN_FLAG_RFC2253) prints it. */
function rfc2253(name: Tlv): string {
  const entries: { rdn: number; text: string }[] = [];
  children(name.content).forEach((rdn, r) => {
    for (const atv of children(rdn.content)) {
      const [type, value] = children(atv.content);
      if (!type || !value || type.tag !== 0x06) throw new DerError("bad attribute");
      const id = oid(type.content);
      const sn = SHORT_NAMES[id];
      const s = sn ? chars(value) : null;
      entries.push({ rdn: r, text: `${sn ?? id}=${s === null ? `#${value.der.toString("hex").toUpperCase()}` : escape(s)}` });
    }
  });
  let out = "";
  entries.reverse().forEach((e, i) => {
    if (i > 0) out += entries[i - 1].rdn === e.rdn ? "+" : ",";
    out += e.text;
  });
  return out;
}

function ipString(b: Buffer): string {
  if (b.length === 4) return [...b].join(".");
  if (b.length !== 16) return "";
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // The WHATWG URL host serializer compresses the longest run of zero groups, as inet_ntop does.
  return new URL(`http://[${groups.join(":")}]`).hostname.slice(1, -1);
}

function sans(ext: Buffer): San[] {
  const seq = tlv(ext, 0);
  return children(seq.content).map((g): San => {
    switch (g.tag) {
      case 0x81: return { type: "email", value: g.content.toString("utf8") };
      case 0x82: return { type: "dns", value: g.content.toString("utf8") };
      case 0x86: return { type: "uri", value: g.content.toString("utf8") };
      case 0x87: return { type: "ip", value: ipString(g.content) };
      default: return { type: "other", value: "" };
    }
  });
}

/** The subject, SANs and digest of a DER certificate; throws on a certificate it cannot read. */
export function certificateNames(der: Buffer): CertificateNames {
  try {
    const cert = tlv(der, 0);
    const tbs = children(cert.content)[0];
    const fields = children(tbs.content);
    // version [0] is optional: serial, signature, issuer, validity, subject follow.
    const base = fields[0]?.tag === 0xa0 ? 1 : 0;
    const subject = fields[base + 4];
    if (!subject || subject.tag !== 0x30) throw new DerError("no subject");
    let names: San[] = [];
    const extensions = fields.find((f) => f.tag === 0xa3);
    if (extensions) {
      for (const ext of children(tlv(extensions.content, 0).content)) {
        const parts = children(ext.content);
        if (oid(parts[0].content) === "2.5.29.17") names = sans(parts[parts.length - 1].content);
      }
    }
    return { subject: rfc2253(subject), sans: names, sha256: createHash("sha256").update(der).digest("hex") };
  } catch (e) {
    if (e instanceof DerError) throw new Error(`certificate: cannot read its DER (${e.message})`);
    throw e;
  }
}

/** Envoy's Utility::dnsNameMatch (source/common/tls/utility.cc): `name` against a certificate's DNS
 * SAN `pattern`, case-insensitive; a "*" only in the pattern's left-most label, not an A-label. */
export function dnsNameMatch(name: string, pattern: string): boolean {
  const n = name.toLowerCase();
  const p = pattern.toLowerCase();
  if (n === p) return true;
  const pd = p.indexOf(".");
  const nd = n.indexOf(".");
  if (pd < 0 || nd < 0) return false;
  const [pl, pr] = [p.slice(0, pd), p.slice(pd + 1)];
  const [nl, nr] = [n.slice(0, nd), n.slice(nd + 1)];
  if (!pl.includes("*") || pr.includes("*") || pl.startsWith("xn--")) return false;
  if (nr !== pr) return false;
  // labelWildcardMatch: "*" alone, or one "*" with the label starting and ending as the pattern does.
  if (pl === "*") return true;
  const star = pl.split("*");
  return star.length === 2 && pl.length <= nl.length + 1 && nl.startsWith(star[0]) && nl.endsWith(star[1]);
}
