// AWS's binary event stream (application/vnd.amazon.eventstream), as Bedrock's ConverseStream and
// InvokeModelWithResponseStream answer, read incrementally: a message may arrive in any number of
// chunks, split at any byte. Each message is
//   total length (u32, big-endian) | headers length (u32) | prelude CRC32 (of the 8 bytes before)
//   | headers | payload | message CRC32 (of every byte before it)
// and a header is name length (u8) | name | value type (u8) | value, the value's size set by its
// type (0 true, 1 false, 2 byte, 3 short, 4 int, 5 long, 6 bytes and 7 string with a u16 length,
// 8 timestamp, 9 uuid). CRC32 is IEEE 802.3's (zlib's). A message whose CRCs do not match, whose
// lengths do not add up or that is larger than the bound stops the stream: the reader sets `error`
// and reads nothing more, since nothing after a broken frame can be trusted.
import { ByteBuilder } from "./json";

const PRELUDE: i32 = 12;
/** The smallest message: prelude, no headers, no payload, message CRC. */
const MIN_MESSAGE: i32 = 16;

let crcTable: StaticArray<u32> | null = null;

function table(): StaticArray<u32> {
  let t = crcTable;
  if (t !== null) return t;
  t = new StaticArray<u32>(256);
  for (let n: u32 = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    unchecked((t[n] = c));
  }
  crcTable = t;
  return t;
}

/** CRC32 (IEEE) of [p, p+n). */
export function crc32(p: usize, n: i32): u32 {
  const t = table();
  let c: u32 = 0xffffffff;
  for (let i = 0; i < n; i++) c = unchecked(t[(c ^ load<u8>(p + <usize>i)) & 0xff]) ^ (c >>> 8);
  return c ^ 0xffffffff;
}

function u32be(p: usize): u32 {
  return bswap<u32>(load<u32>(p));
}

function u16be(p: usize): i32 {
  return <i32>bswap<u16>(load<u16>(p));
}

/** One message: the headers the gateway reads, and the payload (bytes of `owner`). */
export class EventMessage {
  /** :message-type: event, exception or error. */
  messageType: string = "";
  /** :event-type (an event's name), :exception-type (an exception's) or :error-code (an error's). */
  eventType: string = "";
  /** :error-message of an error message. */
  errorMessage: string = "";
  owner: ArrayBuffer = new ArrayBuffer(0);
  ptr: usize = 0;
  len: i32 = 0;
}

export class EventStreamReader {
  maxMessageBytes: i32;
  /** Why the stream cannot be read any further; "" while it can. */
  error: string = "";
  private pending: ByteBuilder = new ByteBuilder(256);
  /** Bytes the held message needs before it can be read (its total length once its prelude is here). */
  private need: i32 = PRELUDE;

  constructor(maxMessageBytes: i32) {
    this.maxMessageBytes = maxMessageBytes;
  }

  /** Bytes of an unfinished message held. */
  get held(): i32 {
    return this.pending.len;
  }

  /** The messages the chunk completes (none once `error` is set). */
  feed(ptr: usize, len: i32): Array<EventMessage> {
    const out = new Array<EventMessage>();
    if (this.error.length) return out;
    // Whole messages are read straight from the chunk when nothing is held. Otherwise the chunk is
    // added to what is held, which is read only once the held message can be complete: a message
    // that comes a byte at a time is not read again for every byte.
    let p = ptr;
    let n = len;
    const holding = this.pending.len > 0;
    if (holding) {
      this.pending.bytes(ptr, len);
      if (this.pending.len < this.need) return out;
      p = changetype<usize>(this.pending.buf);
      n = this.pending.len;
    }
    let at = 0;
    while (n - at >= PRELUDE) {
      const total = <i64>u32be(p + <usize>at);
      const headers = <i64>u32be(p + <usize>at + 4);
      if (crc32(p + <usize>at, 8) != u32be(p + <usize>at + 8)) return this.fail(out, "an event stream message's prelude CRC does not match");
      if (total < MIN_MESSAGE || headers > total - MIN_MESSAGE) return this.fail(out, "an event stream message's lengths do not add up");
      if (total > <i64>this.maxMessageBytes) return this.fail(out, "an event stream message is larger than " + this.maxMessageBytes.toString() + " bytes");
      if (<i64>(n - at) < total) {
        this.need = <i32>total;
        break;
      }
      const m = p + <usize>at;
      const t = <i32>total;
      if (crc32(m, t - 4) != u32be(m + <usize>(t - 4))) return this.fail(out, "an event stream message's CRC does not match");
      const msg = new EventMessage();
      if (!readHeaders(m + <usize>PRELUDE, <i32>headers, msg)) return this.fail(out, "an event stream message's headers cannot be read");
      // The payload is copied out of the chunk (Envoy's buffer is not ours to keep).
      const plen = t - PRELUDE - <i32>headers - 4;
      msg.owner = new ArrayBuffer(plen);
      memory.copy(changetype<usize>(msg.owner), m + <usize>PRELUDE + <usize>headers, <usize>plen);
      msg.ptr = changetype<usize>(msg.owner);
      msg.len = plen;
      out.push(msg);
      at += t;
    }
    if (n - at < PRELUDE) this.need = PRELUDE;
    if (holding) {
      // What is left moves to the front of the held bytes.
      const rest = n - at;
      if (rest > 0 && at > 0) memory.copy(changetype<usize>(this.pending.buf), changetype<usize>(this.pending.buf) + <usize>at, <usize>rest);
      this.pending.len = rest;
    } else if (at < n) this.pending.bytes(p + <usize>at, n - at);
    return out;
  }

  private fail(out: Array<EventMessage>, why: string): Array<EventMessage> {
    this.error = why;
    this.pending.reset();
    return out;
  }
}

/** The headers of one message into msg; false when they run past their length or have an unknown type. */
function readHeaders(p: usize, n: i32, msg: EventMessage): bool {
  let at = 0;
  while (at < n) {
    const nameLen = <i32>load<u8>(p + <usize>at);
    if (at + 1 + nameLen + 1 > n) return false;
    const name = String.UTF8.decodeUnsafe(p + <usize>(at + 1), <usize>nameLen);
    at += 1 + nameLen;
    const type = load<u8>(p + <usize>at);
    at++;
    let size = 0;
    if (type == 0 || type == 1) size = 0;
    else if (type == 2) size = 1;
    else if (type == 3) size = 2;
    else if (type == 4) size = 4;
    else if (type == 5 || type == 8) size = 8;
    else if (type == 9) size = 16;
    else if (type == 6 || type == 7) {
      if (at + 2 > n) return false;
      const vlen = u16be(p + <usize>at);
      at += 2;
      if (at + vlen > n) return false;
      if (type == 7) {
        const v = String.UTF8.decodeUnsafe(p + <usize>at, <usize>vlen);
        if (name == ":message-type") msg.messageType = v;
        else if (name == ":event-type" || name == ":exception-type" || name == ":error-code") msg.eventType = v;
        else if (name == ":error-message") msg.errorMessage = v;
      }
      at += vlen;
      continue;
    } else return false;
    if (at + size > n) return false;
    at += size;
  }
  return true;
}
