// The gateway's MCP session id: the session's whole state, sealed, so any worker or replica holding
// the same secret routes the session's next request with no shared table.
//
//   1.<base64url(nonce[12] || ciphertext)>.<base64url(tag[16])>
//
// The plain text is lines: the time it was opened (ms), the consumer that opened it, the protocol
// version agreed with the client, then one line per server that initialized:
// "<server name> <upstream session id or -> <server's protocol version>"
// (by name, so a re-rendered configuration that reorders servers still reads old sessions; a
// server no longer configured is dropped from the session). Encrypt-then-MAC: the keystream
// is HMAC-SHA256(encKey, nonce || block counter), the tag HMAC-SHA256(macKey, "1." || nonce ||
// ciphertext) cut to 16 bytes and compared in constant time. Upstream session ids are the servers'
// bearer secrets, so they are encrypted, not only signed.
import { Settings } from "./config";
import { HmacKey, constantTimeEqual } from "../../lib/hmac";
import { base64urlEncode, base64urlDecode } from "../../lib/base64url";

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "random_get")
declare function random_get(buf: usize, len: usize): u16;

export const MAX_SESSION_ID_BYTES: i32 = 4096;
/** An upstream's own session id is kept only if it is visible ASCII (as MCP requires) of at most this. */
export const MAX_UPSTREAM_ID_BYTES: i32 = 256;
const NONCE: i32 = 12;
const TAG: i32 = 16;

export class Member {
  server: i32 = 0;
  /** The server's own Mcp-Session-Id ("" for a server that runs without sessions). */
  id: string = "";
  version: string = "";
}

export class Session {
  openedMs: i64 = 0;
  consumer: string = "";
  version: string = "";
  members: Array<Member> = [];

  member(server: i32): Member | null {
    for (let i = 0; i < this.members.length; i++) if (this.members[i].server == server) return this.members[i];
    return null;
  }
}

/** A value fit to sit in the session's text: visible ASCII, bounded. */
export function visibleAscii(s: string, max: i32): bool {
  if (s.length > max) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

/** XORs [p, p+n) with the keystream of nonce under key. */
function crypt(key: HmacKey, nonce: usize, p: usize, n: i32): void {
  const block = new ArrayBuffer(NONCE + 4);
  const b = changetype<usize>(block);
  memory.copy(b, nonce, NONCE);
  for (let off = 0, counter: u32 = 0; off < n; off += 32, counter++) {
    store<u32>(b + NONCE, counter);
    const ks = key.mac(b, NONCE + 4);
    const k = changetype<usize>(ks);
    const m = n - off < 32 ? n - off : 32;
    for (let i = 0; i < m; i++) store<u8>(p + off + i, load<u8>(p + off + i) ^ load<u8>(k + i));
  }
}

function tagOf(key: HmacKey, body: usize, n: i32): StaticArray<u8> {
  const m = new ArrayBuffer(2 + n);
  store<u8>(changetype<usize>(m), 0x31);
  store<u8>(changetype<usize>(m) + 1, 0x2e);
  memory.copy(changetype<usize>(m) + 2, body, n);
  return key.mac(changetype<usize>(m), 2 + n);
}

export function seal(s: Settings, x: Session): string {
  let text = x.openedMs.toString() + "\n" + x.consumer + "\n" + x.version;
  for (let i = 0; i < x.members.length; i++) {
    const m = x.members[i];
    text += "\n" + s.servers[m.server].name + " " + (m.id.length ? m.id : "-") + " " + m.version;
  }
  const plain = String.UTF8.encode(text);
  const n = plain.byteLength;
  const body = new ArrayBuffer(NONCE + n);
  const bp = changetype<usize>(body);
  random_get(bp, NONCE);
  memory.copy(bp + NONCE, changetype<usize>(plain), n);
  crypt(s.encKey, bp, bp + NONCE, n);
  const tag = tagOf(s.macKey, bp, NONCE + n);
  return "1." + base64urlEncode(bp, NONCE + n) + "." + base64urlEncode(changetype<usize>(tag), TAG);
}

/**
 * Sessions this VM opened lately, by id: an agent makes many calls in one session, and each would
 * otherwise decrypt and check the same id again. Bounded (a ring of OPENED_MAX ids, the oldest
 * forgotten first); an entry is only what the id itself says, so its age is still checked on every
 * use, and no worker depends on another's entries. Keyed by the whole id, MAC included: an altered id
 * is never found here.
 */
const OPENED_MAX: i32 = 128;
const opened = new Map<string, Session>();
const openedOrder = new Array<string>(OPENED_MAX);
let openedNext: i32 = 0;

function remember(id: string, x: Session): void {
  const old = unchecked(openedOrder[openedNext]);
  if (old !== null && old.length) opened.delete(old);
  unchecked((openedOrder[openedNext] = id));
  openedNext = (openedNext + 1) % OPENED_MAX;
  opened.set(id, x);
}

/**
 * The session an id holds, or null when it is malformed, altered, sealed with another secret, or
 * older than the ttl.
 */
export function open(s: Settings, id: string, nowMs: i64): Session | null {
  if (opened.has(id)) {
    const x = opened.get(id);
    return nowMs - x.openedMs > s.ttlMs ? null : x;
  }
  const x = openSealed(s, id, nowMs);
  if (x !== null) remember(id, x as Session);
  return x;
}

function openSealed(s: Settings, id: string, nowMs: i64): Session | null {
  if (id.length > MAX_SESSION_ID_BYTES || !id.startsWith("1.")) return null;
  const dot = id.indexOf(".", 2);
  if (dot < 0) return null;
  const body = base64urlDecode(id.substring(2, dot));
  const tag = base64urlDecode(id.substring(dot + 1));
  if (body === null || tag === null || tag.byteLength != TAG || body.byteLength < NONCE) return null;
  const bp = changetype<usize>(body);
  const expect = tagOf(s.macKey, bp, body.byteLength);
  if (!constantTimeEqual(changetype<usize>(expect), changetype<usize>(tag), TAG)) return null;
  const n = body.byteLength - NONCE;
  crypt(s.encKey, bp, bp + NONCE, n);
  const lines = String.UTF8.decodeUnsafe(bp + NONCE, n).split("\n");
  if (lines.length < 3) return null;
  const x = new Session();
  x.openedMs = I64.parseInt(lines[0]);
  if (x.openedMs <= 0 || nowMs - x.openedMs > s.ttlMs || x.openedMs - nowMs > 60000) return null;
  x.consumer = lines[1];
  x.version = lines[2];
  for (let i = 3; i < lines.length; i++) {
    const f = lines[i].split(" ");
    if (f.length != 3) return null;
    const server = s.server(f[0]);
    if (server === null) continue;
    const m = new Member();
    m.server = server.index;
    m.id = f[1] == "-" ? "" : f[1];
    m.version = f[2];
    x.members.push(m);
  }
  return x;
}
