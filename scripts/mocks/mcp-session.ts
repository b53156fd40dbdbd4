// The mcp filter's session id made in TypeScript from its documented format (docs/filters/mcp.md):
// an independent writer, so a test can check the filter reads exactly that format and the benchmark
// can hand the filter a session without a fan-out.
import { createHmac, randomBytes } from "node:crypto";

export interface SessionMember {
  server: string;
  id: string;
  version: string;
}

const hmac = (key: Buffer, data: Buffer) => createHmac("sha256", key).update(data).digest();

export function sealSession(secret: string, s: { openedMs: number; consumer: string; version: string; members: SessionMember[] }): string {
  const key = Buffer.from(secret);
  const encKey = hmac(key, Buffer.from("sluice-mcp-enc"));
  const macKey = hmac(key, Buffer.from("sluice-mcp-mac"));
  const text = [String(s.openedMs), s.consumer, s.version, ...s.members.map((m) => `${m.server} ${m.id || "-"} ${m.version}`)].join("\n");
  const plain = Buffer.from(text);
  const nonce = randomBytes(12);
  const ct = Buffer.alloc(plain.length);
  for (let off = 0, counter = 0; off < plain.length; off += 32, counter++) {
    const block = Buffer.alloc(16);
    nonce.copy(block, 0);
    block.writeUInt32LE(counter, 12);
    const ks = hmac(encKey, block);
    for (let i = 0; i < 32 && off + i < plain.length; i++) ct[off + i] = plain[off + i] ^ ks[i];
  }
  const body = Buffer.concat([nonce, ct]);
  const tag = hmac(macKey, Buffer.concat([Buffer.from("1."), body])).subarray(0, 16);
  return `1.${body.toString("base64url")}.${tag.toString("base64url")}`;
}
