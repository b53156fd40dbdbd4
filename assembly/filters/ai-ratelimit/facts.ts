// The key of a rule's counter for one request: the request's facts (consumer, groups, model, pool,
// instance, path, headers), the rule's conditions on them, and the escaped, bounded shared-data key.
import { sha256Hex } from "../../lib/sha256";
import {
  Rule, Part, Condition, PART_CONSUMER, PART_MODEL, PART_POOL, PART_INSTANCE, PART_PATH, PART_HEADER, PART_GROUP,
  PART_KEY, PART_TEAM, PART_MCP_SERVER, PART_MCP_TOOL, PART_MCP_METHOD, PART_A2A_AGENT, PART_A2A_METHOD,
} from "./config";

/** The values a rule's key and conditions are made of, for one request. */
export class Facts {
  consumer: string | null = null;
  /** key-auth's virtual key id and team (sluice.key_id, sluice.team). */
  keyId: string | null = null;
  team: string | null = null;
  model: string | null = null;
  pool: string | null = null;
  instance: string | null = null;
  path: string = "";
  headers: Array<string | null> = [];
  /** Agent traffic: what the mcp filter (server, tool, method) or the a2a filter (agent, method) wrote. */
  mcpServer: string | null = null;
  mcpTool: string | null = null;
  mcpMethod: string | null = null;
  a2aAgent: string | null = null;
  a2aMethod: string | null = null;
  /** The consumer's groups (identity's sluice.groups, comma-separated). */
  groups: Array<string> = [];
  /** keysFor's answer, reused: each caller is done with it before the next call. */
  keys: Array<string> = [];
}

// Key values go into shared-data keys: escape the separators so that ("a.b", "c") and
// ("a", "b.c") stay two counters, and hash very long values so keys stay short.
function escapeValue(v: string): string {
  if (v.length > 128) return "#" + sha256Hex(v).substring(0, 32);
  let plain = true;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x21 || c == 0x25 || c == 0x2e || c == 0x7e || c == 0x2a || c == 0x23 || c == 0x7f) {
      plain = false;
      break;
    }
  }
  if (plain) return v;
  let out = "";
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x21 || c == 0x25 || c == 0x2e || c == 0x7e || c == 0x2a || c == 0x23 || c == 0x7f) {
      out += "%" + (c < 16 ? "0" : "") + c.toString(16).toUpperCase();
    } else out += String.fromCharCode(c);
  }
  return out;
}

function partValue(p: Part, f: Facts): string | null {
  let v: string | null = null;
  if (p.kind == PART_CONSUMER) v = f.consumer;
  else if (p.kind == PART_KEY) v = f.keyId;
  else if (p.kind == PART_TEAM) v = f.team;
  else if (p.kind == PART_MODEL) v = f.model;
  else if (p.kind == PART_POOL) v = f.pool;
  else if (p.kind == PART_INSTANCE) v = f.instance;
  else if (p.kind == PART_PATH) return f.path;
  else if (p.kind == PART_MCP_SERVER) v = f.mcpServer;
  else if (p.kind == PART_MCP_TOOL) v = f.mcpTool;
  else if (p.kind == PART_MCP_METHOD) v = f.mcpMethod;
  else if (p.kind == PART_A2A_AGENT) v = f.a2aAgent;
  else if (p.kind == PART_A2A_METHOD) v = f.a2aMethod;
  else if (p.kind == PART_HEADER) return p.header < f.headers.length ? f.headers[p.header] : null;
  // An empty consumer, model, pool or instance is the same as none.
  if (v !== null && (v as string).length == 0) return null;
  return v;
}

function holds(c: Condition, f: Facts): bool {
  if (c.part.kind != PART_GROUP) return c.matches(partValue(c.part, f));
  for (let i = 0; i < f.groups.length; i++) if (c.matches(f.groups[i])) return true;
  return false;
}

/**
 * The rule's counter keys for this request: none when the rule does not apply to it, one per group
 * (those its group condition matches) when it is keyed by group, else one.
 */
export function keysFor(rule: Rule, f: Facts): Array<string> {
  const out = f.keys;
  out.length = 0;
  for (let i = 0; i < rule.when.length; i++) if (!holds(rule.when[i], f)) return out;
  if (!rule.groupKey) {
    const k = keyFor(rule, f, null);
    if (k !== null) out.push(k);
    return out;
  }
  const when = rule.groupWhen;
  for (let i = 0; i < f.groups.length; i++) {
    const g = f.groups[i];
    if (when !== null && !when.matches(g)) continue;
    const k = keyFor(rule, f, g);
    if (k !== null) out.push(k);
  }
  return out;
}

/** The rule's counter key with `group` as its group part. */
function keyFor(rule: Rule, f: Facts, group: string | null): string | null {
  if (rule.parts.length == 0) return rule.prefix + "*";
  let k = rule.prefix;
  for (let i = 0; i < rule.parts.length; i++) {
    const v = rule.parts[i].kind == PART_GROUP ? group : partValue(rule.parts[i], f);
    // Like an Envoy rate limit descriptor: a key part the request lacks means the rule does not apply.
    if (v === null) return null;
    if (i > 0) k += ".";
    k += escapeValue(v as string);
  }
  return k;
}
