// ai-guard's `moderation` section: the external moderation service a prompt is sent to after the
// local detectors let it through (moderation.ts). Three kinds of service: OpenAI's moderations
// endpoint, Azure AI Content Safety's text analysis, and a webhook whose contract is ours
// (docs/filters/ai-guard.md, "External moderation"). Every mistake names its field.
import { JsonValue } from "../../lib/json";
import { ConfigReader } from "../../lib/config";
import { getEnv } from "../../lib/env";
import { defineMetric, METRIC_COUNTER } from "../../lib/sdk";

export const M_OPENAI: i32 = 0;
export const M_AZURE: i32 = 1;
export const M_WEBHOOK: i32 = 2;
const KINDS = ["openai", "azure", "webhook"];
const DEFAULT_PATHS = ["/v1/moderations", "/contentsafety/text:analyze?api-version=2024-09-01", "/moderate"];
/** Azure AI Content Safety's four harm categories (its `categories` request field). */
export const AZURE_CATEGORIES = ["Hate", "SelfHarm", "Sexual", "Violence"];

const FIELDS = ["provider", "cluster", "authority", "path", "model", "api_key", "api_key_env", "categories", "threshold", "severity", "timeout_ms", "failure", "max_text_bytes"];

// Outcomes counted in sluice.guard_moderation (a fixed set: bounded labels).
export const O_PASSED: i32 = 0;
export const O_FLAGGED: i32 = 1;
export const O_TIMEOUT: i32 = 2;
export const O_ERROR: i32 = 3;
export const O_FAILED_OPEN: i32 = 4;
export const O_TRUNCATED: i32 = 5;
const OUTCOMES = ["passed", "flagged", "timeout", "error", "failed_open", "truncated"];

/**
 * Texts are cut into pieces of at most this many UTF-8 bytes: Azure AI Content Safety takes at most
 * 10,000 characters per call (and so no more than 10,000 bytes), and the same piece size keeps each
 * OpenAI/webhook input element bounded.
 */
export const CHUNK_BYTES: i32 = 10000;

export class Moderation {
  kind: i32 = M_OPENAI;
  cluster: string = "";
  authority: string = "";
  path: string = "";
  model: string = "omni-moderation-latest";
  /** The credential (from the VM's environment); never logged, never in an error. */
  apiKey: string = "";
  /** Categories that block (empty: any the service flags; for azure, its four categories). */
  categories: Array<string> = [];
  /** openai: a category blocks when its score is at least this (negative: use the service's own `flagged`). */
  threshold: f64 = -1;
  /** azure: a category blocks when its severity is at least this. */
  severity: i32 = 4;
  timeoutMs: u32 = 2000;
  failOpen: bool = false;
  maxTextBytes: i32 = 65536;
  metrics: Array<u32> = [];
}

export function readModeration(r: ConfigReader, v: JsonValue, path: string): Moderation | null {
  if (!v.isObject()) {
    r.fail(path, "must be an object with provider and cluster");
    return null;
  }
  r.onlyKnown(v, path, FIELDS);
  const m = new Moderation();
  const kind = r.str(v, "provider", path, "");
  m.kind = KINDS.indexOf(kind);
  if (m.kind < 0) {
    r.fail(path + ".provider", "must be one of: " + KINDS.join(", "));
    m.kind = M_OPENAI;
  }
  m.cluster = r.str(v, "cluster", path, "");
  if (r.ok && m.cluster.length == 0) r.fail(path + ".cluster", "is required (the Envoy cluster of the moderation service)");
  m.authority = r.str(v, "authority", path, m.cluster);
  m.path = r.str(v, "path", path, DEFAULT_PATHS[m.kind]);
  if (r.ok && !m.path.startsWith("/")) r.fail(path + ".path", "must start with /");
  m.model = r.str(v, "model", path, m.model);
  m.apiKey = r.str(v, "api_key", path, "");
  const env = r.str(v, "api_key_env", path, "");
  if (r.ok && env.length && m.apiKey.length) r.fail(path + ".api_key_env", "give api_key or api_key_env, not both");
  else if (r.ok && env.length) {
    const k = getEnv(env);
    // Only the variable's name is ever written out, never its value.
    if (k === null) r.fail(path + ".api_key_env", "environment variable '" + env + "' is not passed to the VM");
    else m.apiKey = k as string;
  }
  const cats = r.array(v, "categories", path, false);
  for (let i = 0; i < cats.length; i++) {
    const c = cats[i];
    if (!c.isString() || !isCategory(c.s)) {
      r.fail(path + ".categories[" + i.toString() + "]", "must be a category name (1 to 64 of A-Z, a-z, 0-9, '/', '_' and '-')");
      continue;
    }
    if (m.kind == M_AZURE && !AZURE_CATEGORIES.includes(c.s)) {
      r.fail(path + ".categories[" + i.toString() + "]", "must be one of Azure AI Content Safety's categories: " + AZURE_CATEGORIES.join(", "));
      continue;
    }
    m.categories.push(c.s);
  }
  const t = v.get("threshold");
  if (t !== null) {
    if (m.kind != M_OPENAI) r.fail(path + ".threshold", "applies to provider openai only (azure uses severity)");
    else if (!t.isNumber() || t.n < 0 || t.n > 1) r.fail(path + ".threshold", "must be a number from 0 to 1");
    else m.threshold = t.n;
  }
  if (v.get("severity") !== null && m.kind != M_AZURE) r.fail(path + ".severity", "applies to provider azure only");
  m.severity = <i32>r.int(v, "severity", path, 4, 1, 7);
  m.timeoutMs = <u32>r.int(v, "timeout_ms", path, 2000, 1, 60000);
  const failure = r.str(v, "failure", path, "closed");
  if (failure != "closed" && failure != "open") r.fail(path + ".failure", "must be closed or open");
  m.failOpen = failure == "open";
  m.maxTextBytes = <i32>r.int(v, "max_text_bytes", path, 65536, 256, 1048576);
  if (r.ok) {
    for (let i = 0; i < OUTCOMES.length; i++) m.metrics.push(defineMetric(METRIC_COUNTER, "sluice.guard_moderation;outcome=" + OUTCOMES[i]));
  }
  return m;
}

/** A category name as services spell them (OpenAI's "self-harm/intent", Azure's "SelfHarm"). */
export function isCategory(s: string): bool {
  if (s.length == 0 || s.length > 64) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c == 0x2f || c == 0x5f || c == 0x2d;
    if (!ok) return false;
  }
  return true;
}
