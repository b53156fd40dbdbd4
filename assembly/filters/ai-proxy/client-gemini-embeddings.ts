// Gemini's own client API, embeddings: embedContent {content, taskType, title, outputDimensionality}
// and batchEmbedContents {requests: [the same, each with model]} -> OpenAI's {model, input,
// dimensions}; answers
// {"embedding": {"values"}} and {"embeddings": [{"values"}]}. taskType and title only mean
// something to Gemini's own models: they go to Gemini untouched and are dropped for others.
import { JsonValue, ByteBuilder } from "../../lib/json";
import { Converted } from "./client-anthropic";
import { bad, geminiOnly } from "./client-gemini";

function embedText(req: JsonValue, at: string, r: Converted): string | null {
  const content = req.isObject() ? req.get("content") : null;
  if (content === null || !content.isObject()) { r.error = bad(at + "content: required (a Content with text parts)"); return null; }
  const parts = content.get("parts");
  if (parts === null || !parts.isArray() || parts.length == 0) { r.error = bad(at + "content.parts: required (a non-empty list)"); return null; }
  const texts = new Array<string>();
  for (let i = 0; i < parts.length; i++) {
    const t = parts.at(i).getString("text");
    if (t === null) { geminiOnly(r, at + "content.parts[" + i.toString() + "]: only text can be embedded through the gateway for this model"); continue; }
    texts.push(t as string);
  }
  return texts.join(" ");
}

/** A Gemini embedding request (`batch`: batchEmbedContents) as OpenAI's /v1/embeddings request. */
export function geminiEmbedToOpenAI(req: JsonValue, model: string, batch: bool): Converted {
  const r = new Converted();
  if (!req.isObject()) { r.error = bad("The request body must be a JSON object"); return r; }
  const out = JsonValue.object().set("model", JsonValue.str(model));
  let dims: JsonValue | null = null;
  if (batch) {
    const list = req.get("requests");
    if (list === null || !list.isArray() || list.length == 0) { r.error = bad("requests: required (a non-empty list)"); return r; }
    const input = JsonValue.array();
    for (let i = 0; i < list.length; i++) {
      const one = list.at(i);
      const at = "requests[" + i.toString() + "].";
      const m = one.isObject() ? one.getString("model") : null;
      if (m !== null && m != "models/" + model && m != model) { r.error = bad(at + "model: every request of a batch must name the path's model, models/" + model); return r; }
      const t = embedText(one, at, r);
      if (t === null) return r;
      input.push(JsonValue.str(t as string));
      const d = one.get("outputDimensionality");
      if (d !== null) dims = d;
    }
    out.set("input", input);
  } else {
    const t = embedText(req, "", r);
    if (t === null) return r;
    out.set("input", JsonValue.str(t as string));
    dims = req.get("outputDimensionality");
  }
  if (dims !== null) out.set("dimensions", dims);
  r.req = out;
  return r;
}

/** The vectors in Gemini's shape: one `embedding` (embedContent) or the `embeddings` of a batch. */
export function writeGeminiEmbeddings(vectors: Array<JsonValue>, batch: bool, b: ByteBuilder): void {
  if (!batch) {
    b.raw('{"embedding":{"values":').value(vectors.length ? vectors[0] : JsonValue.array()).raw("}}");
    return;
  }
  b.raw('{"embeddings":[');
  for (let i = 0; i < vectors.length; i++) {
    if (i) b.byte(0x2c);
    b.raw('{"values":').value(vectors[i]).byte(0x7d);
  }
  b.raw("]}");
}
