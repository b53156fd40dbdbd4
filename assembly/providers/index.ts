// Provider families by configuration name.
import { Provider } from "./types";
import { OpenAIProvider } from "./openai";
import { AzureOpenAIProvider } from "./azure-openai";
import { AnthropicProvider } from "./anthropic";
import { GeminiProvider } from "./gemini";
import { DeepSeekProvider } from "./deepseek";
import { MistralProvider } from "./mistral";
import { OpenAICompatibleProvider } from "./openai-compatible";
import { BedrockProvider } from "./bedrock";
import { VertexProvider } from "./vertex";
import { VertexAnthropicProvider } from "./vertex-anthropic";
import { BedrockAnthropicProvider } from "./bedrock-anthropic";

export const PROVIDER_NAMES: Array<string> = ["openai", "azure-openai", "anthropic", "gemini", "deepseek", "mistral", "openai-compatible", "bedrock", "vertex", "vertex-anthropic", "bedrock-anthropic"];

export function providerFor(name: string): Provider | null {
  if (name == "openai") return new OpenAIProvider();
  if (name == "azure-openai") return new AzureOpenAIProvider();
  if (name == "anthropic") return new AnthropicProvider();
  if (name == "gemini") return new GeminiProvider();
  if (name == "deepseek") return new DeepSeekProvider();
  if (name == "mistral") return new MistralProvider();
  if (name == "openai-compatible") return new OpenAICompatibleProvider();
  if (name == "bedrock") return new BedrockProvider();
  if (name == "vertex") return new VertexProvider();
  if (name == "vertex-anthropic") return new VertexAnthropicProvider();
  if (name == "bedrock-anthropic") return new BedrockAnthropicProvider();
  return null;
}
