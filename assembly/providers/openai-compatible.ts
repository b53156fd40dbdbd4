// Any server that speaks OpenAI's API at a base URL: vLLM, Ollama, OpenRouter, Groq, LiteLLM.
// The endpoint is required; the key is optional (local servers often need none). These servers
// accept sampling extensions such as top_k, so nothing is rejected up front: the server decides.
import { JsonValue } from "../lib/json";
import { OpenAIProvider } from "./openai";

export class OpenAICompatibleProvider extends OpenAIProvider {
  get name(): string { return "openai-compatible"; }

  defaultEndpoint(): string { return ""; }

  unsupported(req: JsonValue): string | null {
    return null;
  }
}
