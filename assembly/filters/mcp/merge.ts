// One answer from many servers: the merged initialize result, and the merged lists with every
// name or uri prefixed by its server (tools and prompts `<server>__<name>`, resources and templates
// `<server>+<uri>`), the tools a consumer may not use left out, and one pagination cursor that
// holds each server's own.
import { ByteBuilder, JsonValue, parseJson } from "../../lib/json";
import { base64urlEncode, base64urlDecode } from "../../lib/base64url";
import { Settings, Access } from "./config";
import { Reply } from "./upstream";
import { toolAllowed } from "./access";

export const MAX_ITEMS_PER_SERVER: i32 = 10000;
const MAX_INSTRUCTIONS: i32 = 8192;
const MAX_CURSOR_BYTES: i32 = 8192;

/** The list methods: the result's member holding the items, the item's member that names it, and its separator. */
export class ListKind {
  constructor(public method: string, public member: string, public key: string, public separator: string) {}
}
export const LISTS: Array<ListKind> = [
  new ListKind("tools/list", "tools", "name", "__"),
  new ListKind("prompts/list", "prompts", "name", "__"),
  new ListKind("resources/list", "resources", "uri", "+"),
  new ListKind("resources/templates/list", "resourceTemplates", "uriTemplate", "+"),
];

export function listKind(method: string): ListKind | null {
  for (let i = 0; i < LISTS.length; i++) if (LISTS[i].method == method) return LISTS[i];
  return null;
}

/** An item's member `key` written back with the server's prefix; every other member as it came. */
function writeItem(b: ByteBuilder, item: JsonValue, key: string, prefix: string): void {
  b.byte(0x7b);
  for (let i = 0, n = item.length; i < n; i++) {
    if (i > 0) b.byte(0x2c);
    const k = item.keyAt(i);
    const v = item.at(i);
    b.str(k).byte(0x3a);
    if (k == key && v.isString()) b.str(prefix + v.s);
    else b.value(v);
  }
  b.byte(0x7d);
}

/**
 * The merged list result. Servers whose answer is not used are left out (the caller logged why);
 * `cursors` (server -> its next cursor) is filled from the answers.
 */
export function mergeList(s: Settings, kind: ListKind, replies: Array<Reply>, access: Access, cursors: Map<string, string>): ArrayBuffer {
  const b = new ByteBuilder(1024);
  b.byte(0x7b).str(kind.member).raw(":[");
  let first = true;
  for (let r = 0; r < replies.length; r++) {
    const reply = replies[r];
    if (reply.result === null) continue;
    const result = reply.result as JsonValue;
    const name = s.servers[reply.server].name;
    const prefix = name + kind.separator;
    const items = result.get(kind.member);
    if (items !== null && items.isArray()) {
      const n = items.length < MAX_ITEMS_PER_SERVER ? items.length : MAX_ITEMS_PER_SERVER;
      for (let i = 0; i < n; i++) {
        const item = items.at(i);
        if (!item.isObject()) continue;
        const id = item.get(kind.key);
        if (id === null || !id.isString()) continue;
        if (kind.member == "tools" && !toolAllowed(access, prefix + id.s)) continue;
        if (!first) b.byte(0x2c);
        first = false;
        writeItem(b, item, kind.key, prefix);
      }
    }
    const next = result.get("nextCursor");
    if (next !== null && next.isString() && next.s.length) cursors.set(name, next.s);
  }
  b.byte(0x5d);
  if (cursors.size > 0) b.raw(',"nextCursor":').str(encodeCursor(cursors));
  b.byte(0x7d);
  return b.toArrayBuffer();
}

/** The gateway's cursor: base64url of a JSON object server -> that server's cursor. */
export function encodeCursor(cursors: Map<string, string>): string {
  const b = new ByteBuilder(64);
  b.byte(0x7b);
  const keys = cursors.keys();
  for (let i = 0; i < keys.length; i++) {
    if (i > 0) b.byte(0x2c);
    b.str(keys[i]).byte(0x3a).str(cursors.get(keys[i]));
  }
  b.byte(0x7d);
  return base64urlEncode(changetype<usize>(b.buf), b.len);
}

/** The servers' cursors a client's cursor holds, or null when it is not one the gateway made. */
export function decodeCursor(s: Settings, cursor: string): Map<string, string> | null {
  if (cursor.length > MAX_CURSOR_BYTES) return null;
  const raw = base64urlDecode(cursor);
  if (raw === null) return null;
  const v = parseJson(raw as ArrayBuffer, 1000);
  if (v === null || !v.isObject() || v.length == 0) return null;
  const out = new Map<string, string>();
  for (let i = 0; i < v.length; i++) {
    const server = v.keyAt(i);
    const c = v.at(i);
    if (s.server(server) === null || !c.isString()) return null;
    out.set(server, c.s);
  }
  return out;
}

export const PROTOCOL_VERSIONS = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/** The version the gateway answers a client asking for `asked`: that one when it knows it, else its latest. */
export function agreedVersion(asked: string): string {
  return PROTOCOL_VERSIONS.includes(asked) ? asked : PROTOCOL_VERSIONS[0];
}

/**
 * The initialize result: the version agreed with the client, the capabilities any server has (not
 * listChanged nor subscribe: the gateway relays no server-initiated stream), the gateway as the
 * server, and the servers' instructions each under its name.
 */
export function initializeResult(s: Settings, version: string, replies: Array<Reply>): ArrayBuffer {
  let tools = false, prompts = false, resources = false, completions = false, logging = false;
  let instructions = "";
  for (let i = 0; i < replies.length; i++) {
    const r = replies[i];
    if (r.result === null) continue;
    const caps = (r.result as JsonValue).get("capabilities");
    if (caps !== null && caps.isObject()) {
      tools = tools || caps.get("tools") !== null;
      prompts = prompts || caps.get("prompts") !== null;
      resources = resources || caps.get("resources") !== null;
      completions = completions || caps.get("completions") !== null;
      logging = logging || caps.get("logging") !== null;
    }
    const ins = (r.result as JsonValue).get("instructions");
    if (ins !== null && ins.isString() && ins.s.length && instructions.length < MAX_INSTRUCTIONS) {
      instructions += (instructions.length ? "\n\n" : "") + "Tools, prompts and resources named " + s.servers[r.server].name + "__* or " + s.servers[r.server].name + "+*: " + ins.s;
    }
  }
  if (instructions.length > MAX_INSTRUCTIONS) instructions = instructions.substring(0, MAX_INSTRUCTIONS);
  const b = new ByteBuilder(256 + instructions.length);
  b.raw('{"protocolVersion":').str(version).raw(',"capabilities":{');
  let n = 0;
  if (tools) n = capability(b, "tools", n);
  if (prompts) n = capability(b, "prompts", n);
  if (resources) n = capability(b, "resources", n);
  if (completions) n = capability(b, "completions", n);
  if (logging) n = capability(b, "logging", n);
  b.raw('},"serverInfo":{"name":"sluice-mcp-gateway","version":"0.1.0"}');
  if (instructions.length) b.raw(',"instructions":').str(instructions);
  b.byte(0x7d);
  return b.toArrayBuffer();
}

function capability(b: ByteBuilder, name: string, n: i32): i32 {
  if (n > 0) b.byte(0x2c);
  b.str(name).raw(":{}");
  return n + 1;
}
