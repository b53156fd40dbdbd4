// External moderation (the `moderation` section, moderation-config.ts): what is sent to the service
// and how its answer is read. The filter (index.ts) sends the texts the guard already extracted
// from the request, with what the guard masked replaced by its tag (the service never sees a
// masked value), and holds the request until the answer.
//
// Wire formats (checked against each service's reference):
//  - openai: POST /v1/moderations {"model", "input": [texts]} -> {"results": [{"flagged",
//    "categories": {name: bool}, "category_scores": {name: number}}]}, one result per input.
//  - azure: POST /contentsafety/text:analyze?api-version=2024-09-01 {"text", "categories",
//    "outputType": "FourSeverityLevels"} -> {"categoriesAnalysis": [{"category", "severity"}]};
//    the key goes in Ocp-Apim-Subscription-Key. One text (at most 10,000 characters) per call.
//  - webhook: POST {"texts": [texts], "context": {"api", "consumer", "route", "pool"}} ->
//    {"flagged": bool, "categories": [names]}.
import { JsonValue, ByteBuilder, parseJson } from "../../lib/json";
import { Finding } from "./actions";
import { Policy, A_MASK } from "./policy";
import { Moderation, M_OPENAI, M_AZURE, AZURE_CATEGORIES, CHUNK_BYTES, O_PASSED, O_FLAGGED, O_TIMEOUT, O_ERROR, isCategory } from "./moderation-config";

/**
 * The texts to moderate: every extracted text, with each masked hit replaced by its tag in angle
 * brackets (<EMAIL>). `findings` lists the texts with hits, in the order of `texts`.
 */
export function moderationTexts(texts: Array<JsonValue>, findings: Array<Finding>, p: Policy): Array<string> {
  const out = new Array<string>(texts.length);
  let f = 0;
  for (let i = 0; i < texts.length; i++) {
    const v = texts[i];
    const s = v.s;
    if (f < findings.length && findings[f].value == v) {
      const h = findings[f++].hits;
      let masked = "";
      let at = 0;
      for (let k = 0; k < h.length; k++) {
        if (p.actions[h.dets[k]] != A_MASK) continue;
        masked += s.substring(at, h.starts[k]) + "<" + p.tags[h.dets[k]] + ">";
        at = h.ends[k];
      }
      out[i] = at == 0 && masked.length == 0 ? s : masked + s.substring(at);
    } else out[i] = s;
  }
  return out;
}

/** The pieces sent: each text cut at CHUNK_BYTES, at most max_text_bytes in all. */
export class Pieces {
  list: Array<string> = [];
  /** Some text was left out: it did not fit in max_text_bytes. */
  truncated: bool = false;
}

export function cutPieces(texts: Array<string>, maxTotal: i32): Pieces {
  const out = new Pieces();
  let left = maxTotal;
  for (let i = 0; i < texts.length; i++) {
    const s = texts[i];
    let from = 0;
    while (from < s.length) {
      if (left <= 0) {
        out.truncated = true;
        return out;
      }
      const room = left < CHUNK_BYTES ? left : CHUNK_BYTES;
      const r = cutAt(s, from, room);
      if (r.end == from) {
        out.truncated = true;
        return out;
      }
      out.list.push(s.substring(from, r.end));
      left -= r.bytes;
      from = r.end;
    }
  }
  return out;
}

class Cut {
  constructor(public end: i32, public bytes: i32) {}
}

/** The end of the longest piece of s from `from` that is at most max UTF-8 bytes, never inside a surrogate pair. */
function cutAt(s: string, from: i32, max: i32): Cut {
  let i = from;
  let bytes = 0;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    let n = 1, units = 1;
    if (c >= 0x800) {
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) { n = 4; units = 2; }
      else n = 3;
    } else if (c >= 0x80) n = 2;
    if (bytes + n > max) break;
    bytes += n;
    i += units;
  }
  return new Cut(i, bytes);
}

/** The request bodies: one per piece for azure, one with every piece for openai and webhook. */
export function moderationBodies(m: Moderation, pieces: Array<string>, context: Array<string>): Array<ArrayBuffer> {
  const out = new Array<ArrayBuffer>();
  if (m.kind == M_AZURE) {
    const cats = m.categories.length ? m.categories : AZURE_CATEGORIES;
    for (let i = 0; i < pieces.length; i++) {
      const b = new ByteBuilder(pieces[i].length + 128);
      b.raw("{\"text\":").str(pieces[i]).raw(",\"categories\":[");
      for (let c = 0; c < cats.length; c++) {
        if (c) b.raw(",");
        b.str(cats[c]);
      }
      b.raw("],\"outputType\":\"FourSeverityLevels\"}");
      out.push(b.toArrayBuffer());
    }
    return out;
  }
  const b = new ByteBuilder(256);
  if (m.kind == M_OPENAI) b.raw("{\"model\":").str(m.model).raw(",\"input\":[");
  else b.raw("{\"texts\":[");
  for (let i = 0; i < pieces.length; i++) {
    if (i) b.raw(",");
    b.str(pieces[i]);
  }
  b.raw("]");
  if (m.kind != M_OPENAI) {
    // context: [name, value, ...]; empty values are left out.
    b.raw(",\"context\":{");
    let n = 0;
    for (let i = 0; i + 1 < context.length; i += 2) {
      if (context[i + 1].length == 0) continue;
      if (n++) b.raw(",");
      b.str(context[i]).raw(":").str(context[i + 1]);
    }
    b.raw("}");
  }
  b.raw("}");
  out.push(b.toArrayBuffer());
  return out;
}

export function moderationHeaders(m: Moderation): Array<string> {
  const h = [":method", "POST", ":path", m.path, ":authority", m.authority, "content-type", "application/json"];
  if (m.apiKey.length) {
    if (m.kind == M_AZURE) { h.push("ocp-apim-subscription-key"); h.push(m.apiKey); }
    else { h.push("authorization"); h.push("Bearer " + m.apiKey); }
  }
  return h;
}

/** What one answer said: an outcome (O_PASSED, O_FLAGGED, O_TIMEOUT, O_ERROR) and, when flagged, the category. */
export class Verdict {
  constructor(public outcome: i32, public category: string = "") {}
}

/**
 * Reads one answer. status 0 is no answer at all (a reset); Envoy answers a call past its timeout
 * with its own 504 (source/common/router/router.cc, "upstream request timeout"), so a 504 counts as
 * a timeout. A 2xx whose body is not the service's shape is an error, never a pass.
 */
export function readVerdict(m: Moderation, status: i32, body: ArrayBuffer, inputs: i32): Verdict {
  if (status == 504) return new Verdict(O_TIMEOUT);
  if (status < 200 || status > 299) return new Verdict(O_ERROR);
  const v = parseJson(body, 100000);
  if (v === null || !v.isObject()) return new Verdict(O_ERROR);
  if (m.kind == M_OPENAI) return readOpenAI(m, v as JsonValue, inputs);
  if (m.kind == M_AZURE) return readAzure(m, v as JsonValue);
  return readWebhook(m, v as JsonValue);
}

function readOpenAI(m: Moderation, v: JsonValue, inputs: i32): Verdict {
  const results = v.get("results");
  if (results === null || !results.isArray() || results.length != inputs) return new Verdict(O_ERROR);
  for (let i = 0; i < results.length; i++) {
    const r = results.at(i);
    if (!r.isObject()) return new Verdict(O_ERROR);
    const flagged = r.get("flagged");
    const cats = r.get("categories");
    const scores = r.get("category_scores");
    if (flagged === null || !flagged.isBool() || cats === null || !cats.isObject()) return new Verdict(O_ERROR);
    if (m.threshold >= 0 && (scores === null || !scores.isObject())) return new Verdict(O_ERROR);
    for (let k = 0; k < cats.length; k++) {
      const name = cats.keyAt(k);
      if (m.categories.length && !m.categories.includes(name)) continue;
      let hit = false;
      if (m.threshold >= 0) {
        const sc = (scores as JsonValue).get(name);
        hit = sc !== null && sc.isNumber() && sc.n >= m.threshold;
      } else {
        const c = cats.at(k);
        hit = c.isBool() && c.b;
      }
      if (hit) return new Verdict(O_FLAGGED, categoryName(name));
    }
    // Flagged by the service in a category outside the configured list: not ours to block.
    if (m.categories.length == 0 && m.threshold < 0 && flagged.b) return new Verdict(O_FLAGGED, "flagged");
  }
  return new Verdict(O_PASSED);
}

function readAzure(m: Moderation, v: JsonValue): Verdict {
  const list = v.get("categoriesAnalysis");
  if (list === null || !list.isArray()) return new Verdict(O_ERROR);
  const cats = m.categories.length ? m.categories : AZURE_CATEGORIES;
  for (let i = 0; i < list.length; i++) {
    const a = list.at(i);
    if (!a.isObject()) return new Verdict(O_ERROR);
    const c = a.get("category");
    const sev = a.get("severity");
    if (c === null || !c.isString()) return new Verdict(O_ERROR);
    if (sev === null) continue; // documented as optional
    if (!sev.isNumber()) return new Verdict(O_ERROR);
    if (cats.includes(c.s) && sev.n >= <f64>m.severity) return new Verdict(O_FLAGGED, c.s);
  }
  return new Verdict(O_PASSED);
}

function readWebhook(m: Moderation, v: JsonValue): Verdict {
  const flagged = v.get("flagged");
  if (flagged === null || !flagged.isBool()) return new Verdict(O_ERROR);
  if (!flagged.b) return new Verdict(O_PASSED);
  const cats = v.get("categories");
  if (cats !== null && cats.isArray()) {
    for (let i = 0; i < cats.length; i++) {
      const c = cats.at(i);
      if (!c.isString()) continue;
      if (m.categories.length == 0) return new Verdict(O_FLAGGED, categoryName(c.s));
      if (m.categories.includes(c.s)) return new Verdict(O_FLAGGED, c.s);
    }
  }
  // Flagged only in categories that do not block, or flagged without a category.
  return m.categories.length ? new Verdict(O_PASSED) : new Verdict(O_FLAGGED, "flagged");
}

/** A category as the service named it, when it is a plain name; "other" otherwise (it reaches the access log). */
function categoryName(s: string): string {
  return isCategory(s) ? s : "other";
}
