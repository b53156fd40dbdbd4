// Bodies made of many tiny JSON values, one shape each: what a hostile client sends to make a
// filter's JSON tree (and so its linear memory, which never shrinks) as large as possible per byte.
// Shared by the ai-proxy and ai-router bound tests.

/** A JSON text of about `bytes` bytes made of many tiny values of one shape. */
export const BOMB_SHAPES: Record<string, (bytes: number) => string> = {
  zeros: (bytes) => "[" + "0,".repeat(bytes / 2) + "0]",
  "empty arrays": (bytes) => "[" + "[],".repeat(bytes / 3) + "[]]",
  "empty objects": (bytes) => "[" + "{},".repeat(bytes / 3) + "{}]",
  "empty strings": (bytes) => "[" + '"",'.repeat(bytes / 3) + '""]',
  "distinct keys": (bytes) => {
    const parts: string[] = [];
    for (let i = 0, n = 0; n < bytes; i++) {
      const m = `"a${i}":0`;
      parts.push(m);
      n += m.length + 1;
    }
    return "{" + parts.join(",") + "}";
  },
};
