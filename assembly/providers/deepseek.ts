// DeepSeek (https://api-docs.deepseek.com/api/create-chat-completion): OpenAI's format; usage adds
// prompt_cache_hit_tokens (read as cached tokens) and deepseek-reasoner streams reasoning_content.
import { JsonValue } from "../lib/json";
import { OpenAIProvider, rejectFields, hasContentPart } from "./openai";
import { Instance, Upstream } from "./types";

export class DeepSeekProvider extends OpenAIProvider {
  get name(): string { return "deepseek"; }
  get genAiName(): string { return "deepseek"; }

  /** No Responses API of its own: Responses clients are translated to its chat API. */
  responsesUpstream(inst: Instance, model: string): Upstream | null {
    return null;
  }

  defaultEndpoint(): string { return "https://api.deepseek.com"; }

  unsupported(req: JsonValue): string | null {
    if (hasContentPart(req, "image_url")) return "Images are not supported by provider deepseek (its chat models take text only).";
    const n = req.get("n");
    if (n !== null && n.isNumber() && n.n != 1) return "'n' other than 1 is not supported by provider deepseek.";
    return rejectFields(req, ["top_k", "audio", "modalities", "prediction"], this.name);
  }

  embeddingsUpstream(inst: Instance, model: string): Upstream | null {
    return null; // DeepSeek has no embeddings API
  }
}
