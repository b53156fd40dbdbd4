// What the guard does with what the detectors found: the verdict (block over mask over allow), the
// client's 400 in its own API's shape naming the categories (never a matched value), and the
// request body rewritten once with each masked value replaced by a typed placeholder (<EMAIL_1>;
// the same value gets the same placeholder within a request).
import { JsonValue, ByteBuilder } from "../../lib/json";
import { writeOpenAIErrorJson, writeAnthropicErrorJson, writeGeminiErrorJson } from "../../lib/errors";
import { Hits } from "./hits";
import { Policy, A_BLOCK, A_MASK_RESTORE, masks } from "./policy";
import { Placeholders } from "./placeholders";
import { API_ANTHROPIC, API_GEMINI } from "./request";

export const V_ALLOW: i32 = 0;
export const V_MASK: i32 = 1;
export const V_BLOCK: i32 = 2;
export const VERDICT_NAMES: Array<string> = ["allow", "mask", "block"];

/** One scanned string value of the body and what was found in it. */
export class Finding {
  constructor(public value: JsonValue, public hits: Hits) {}
}

export class Outcome {
  verdict: i32 = V_ALLOW;
  /** Per detector of the policy: it found something. */
  found: Array<bool>;
  constructor(detectors: i32) {
    this.found = new Array<bool>(detectors).fill(false);
  }

  /** The detectors that found something with the given action (0: any), comma-separated, in policy order. */
  names(p: Policy, action: i32): string {
    const out = new Array<string>();
    for (let d = 0; d < this.found.length; d++) {
      if (this.found[d] && (action == 0 || p.actions[d] == action)) out.push(p.names[d]);
    }
    return out.join(",");
  }
}

export function decide(p: Policy, findings: Array<Finding>): Outcome {
  const o = new Outcome(p.names.length);
  for (let i = 0; i < findings.length; i++) {
    const h = findings[i].hits;
    for (let k = 0; k < h.length; k++) {
      const d = h.dets[k];
      o.found[d] = true;
      const a = p.actions[d];
      if (a == A_BLOCK) o.verdict = V_BLOCK;
      else if (masks(a) && o.verdict == V_ALLOW) o.verdict = V_MASK;
    }
  }
  return o;
}

/**
 * The error a refused request gets, in the client's API's shape: OpenAI's {"error"} (code
 * content_blocked, or request_too_large for a 413), Anthropic's {"type":"error"}, Gemini's
 * {"error":{code,message,status}}.
 */
export function blockBody(api: i32, status: u32, message: string): ArrayBuffer {
  const b = new ByteBuilder(128 + message.length);
  if (api == API_ANTHROPIC) writeAnthropicErrorJson(b, status == 413 ? "request_too_large" : "invalid_request_error", message);
  else if (api == API_GEMINI) writeGeminiErrorJson(b, status, message);
  else writeOpenAIErrorJson(b, message, "invalid_request_error", "", status == 413 ? "request_too_large" : "content_blocked");
  return b.toArrayBuffer();
}

// Masked values sorted by where they lie in the body.
let sortFindings: Array<Finding> = [];
function byRaw(a: i32, b: i32): i32 {
  const x = sortFindings[a].value.raw, y = sortFindings[b].value.raw;
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * The body with every hit of a masking detector replaced by its placeholder: the bytes between the
 * rewritten string values are copied as they are; each rewritten value is written escaped as JSON
 * (so the body stays valid whatever the text held), straight into the new body. Numbering follows
 * the order the texts were scanned in. Returns null when nothing is masked.
 */
export function maskBody(body: ArrayBuffer, p: Policy, findings: Array<Finding>, names: Placeholders): ByteBuilder | null {
  const edited = new Array<i32>();
  // Placeholders first, in scan order (null: a hit that is not masked).
  const placeholders = new Array<Array<string | null>>(findings.length);
  for (let i = 0; i < findings.length; i++) {
    const h = findings[i].hits;
    const phs = new Array<string | null>(h.length);
    placeholders[i] = phs;
    let any = false;
    let s: string | null = null;
    for (let k = 0; k < h.length; k++) {
      const d = h.dets[k];
      if (!masks(p.actions[d])) continue;
      any = true;
      if (s === null) s = findings[i].value.s;
      phs[k] = names.name(p.tags[d], (s as string).substring(h.starts[k], h.ends[k]), p.actions[d] == A_MASK_RESTORE);
    }
    if (any) edited.push(i);
  }
  if (edited.length == 0) return null;
  sortFindings = findings;
  edited.sort(byRaw);
  sortFindings = [];
  const base = changetype<usize>(body);
  const out = new ByteBuilder(body.byteLength + 64);
  let copied: usize = 0;
  for (let e = 0; e < edited.length; e++) {
    const i = edited[e];
    const v = findings[i].value;
    const off = v.raw - base;
    if (off < copied) continue; // the same value listed twice (never for a parsed body)
    out.bytes(base + copied, <i32>(off - copied));
    const s = v.s;
    const h = findings[i].hits;
    const phs = placeholders[i];
    let at = 0;
    for (let k = 0; k < h.length; k++) {
      const ph = phs[k];
      if (ph === null) continue;
      out.strRange(s, at, h.starts[k]).raw(ph as string);
      at = h.ends[k];
    }
    out.strRange(s, at, s.length);
    copied = off + <usize>v.rawLen;
  }
  out.bytes(base + copied, <i32>(<usize>body.byteLength - copied));
  return out;
}
