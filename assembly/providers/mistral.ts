// Mistral (https://docs.mistral.ai/api/#tag/chat): OpenAI-like, but it rejects unknown fields
// (422), names the seed `random_seed`, takes only `max_tokens`, and sends usage in the last stream
// chunk without being asked (it has no stream_options).
import { JsonValue } from "../lib/json";
import { OpenAIProvider, rejectFields } from "./openai";
import { Instance, Upstream } from "./types";

export class MistralProvider extends OpenAIProvider {
  get name(): string { return "mistral"; }
  get genAiName(): string { return "mistral_ai"; }

  /** No Responses API of its own: Responses clients are translated to its chat API. */
  responsesUpstream(inst: Instance, model: string): Upstream | null {
    return null;
  }

  defaultEndpoint(): string { return "https://api.mistral.ai/v1"; }

  get wantsStreamOptions(): bool { return false; }

  unsupported(req: JsonValue): string | null {
    return rejectFields(req, ["top_k", "logit_bias", "logprobs", "top_logprobs", "audio", "modalities", "reasoning_effort", "web_search_options"], this.name);
  }

  renameField(key: string): string {
    if (key == "max_completion_tokens") return "max_tokens";
    if (key == "seed") return "random_seed";
    // Harmless to drop: bookkeeping fields Mistral would reject with 422.
    if (key == "user" || key == "store" || key == "metadata" || key == "service_tier" || key == "stream_options" || key == "thinking") return "";
    return key;
  }
}
