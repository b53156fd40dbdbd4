// Any server that speaks OpenAI's API at a base URL: vLLM, Ollama, OpenRouter, Groq, LiteLLM.
// The endpoint is required; the key is optional (local servers often need none). These servers
// accept sampling extensions such as top_k, so nothing is rejected up front: the server decides.
import { JsonValue } from "../lib/json";
import { OpenAIProvider } from "./openai";
import { Instance, Upstream } from "./types";

export class OpenAICompatibleProvider extends OpenAIProvider {
  get name(): string { return "openai-compatible"; }
  get genAiName(): string { return "openai_compatible"; }

  /** No Responses API of its own: Responses clients are translated to its chat API. */
  responsesUpstream(inst: Instance, model: string): Upstream | null {
    return null;
  }

  defaultEndpoint(): string { return ""; }

  unsupported(req: JsonValue): string | null {
    return null;
  }
}
