// ai-cache's semantic settings (filters.ai_cache.semantic): the embeddings instance (by default the
// one ai-router uses: the renderer fills it in), how alike two prompts must be, what of the prompt
// is embedded, and how many vectors are kept.
import { ConfigReader } from "../../lib/config";
import { JsonValue } from "../../lib/json";
import { getEnv } from "../../lib/env";

/** What is embedded: the last user message (default), or the whole conversation. */
export const INPUT_LAST_USER: i32 = 0;
export const INPUT_CONVERSATION: i32 = 1;

export class SemanticSettings {
  cluster: string = "";
  authority: string = "";
  path: string = "/v1/embeddings";
  model: string = "";
  apiKey: string = "";
  dimensions: i32 = 0;
  timeoutMs: u32 = 1000;
  /** Cosine similarity at or above which a cached prompt answers (0.5 to 1). */
  threshold: f64 = 0.92;
  input: i32 = INPUT_LAST_USER;
  /** Characters of prompt embedded at most; a longer prompt is not looked up semantically. */
  maxInputChars: i32 = 8000;
  /** Vectors kept (each 1 byte a dimension, quantized); the oldest go first. */
  maxVectors: i32 = 4096;
  /** Largest dimension accepted from the embeddings instance. */
  maxDimensions: i32 = 4096;
}

const FIELDS = ["cluster", "authority", "path", "model", "api_key", "api_key_env", "dimensions", "timeout_ms", "threshold", "input", "max_input_chars", "max_vectors", "max_dimensions"];

export function readSemantic(r: ConfigReader, v: JsonValue, at: string): SemanticSettings | null {
  if (!v.isObject()) {
    r.fail(at, "must be an object");
    return null;
  }
  r.onlyKnown(v, at, FIELDS);
  const s = new SemanticSettings();
  s.cluster = r.str(v, "cluster", at, "");
  if (s.cluster.length == 0) r.fail(at + ".cluster", "is required (the Envoy cluster of the embeddings instance)");
  s.model = r.str(v, "model", at, "");
  if (s.model.length == 0) r.fail(at + ".model", "is required");
  s.authority = r.str(v, "authority", at, s.cluster);
  s.path = r.str(v, "path", at, "/v1/embeddings");
  if (!s.path.startsWith("/")) r.fail(at + ".path", "must start with /");
  s.apiKey = r.str(v, "api_key", at, "");
  const env = r.str(v, "api_key_env", at, "");
  if (env.length) {
    if (s.apiKey.length) r.fail(at + ".api_key_env", "give api_key or api_key_env, not both");
    const k = getEnv(env);
    if (k === null) r.fail(at + ".api_key_env", "environment variable '" + env + "' is not passed to the VM");
    else s.apiKey = k as string;
  }
  s.dimensions = <i32>r.int(v, "dimensions", at, 0, 0, 16384);
  s.timeoutMs = <u32>r.int(v, "timeout_ms", at, 1000, 1, 60000);
  const t = v.get("threshold");
  if (t !== null) {
    if (!t.isNumber() || t.n < 0.5 || t.n > 1) r.fail(at + ".threshold", "must be a number from 0.5 to 1");
    else s.threshold = t.n;
  }
  const input = r.str(v, "input", at, "last_user");
  if (input == "conversation") s.input = INPUT_CONVERSATION;
  else if (input != "last_user") r.fail(at + ".input", "must be last_user or conversation");
  s.maxInputChars = <i32>r.int(v, "max_input_chars", at, 8000, 1, 1000000);
  s.maxVectors = <i32>r.int(v, "max_vectors", at, 4096, 16, 262144);
  s.maxDimensions = <i32>r.int(v, "max_dimensions", at, 4096, 8, 16384);
  return s;
}
