// Azure OpenAI (https://learn.microsoft.com/azure/ai-services/openai/reference): OpenAI's body on
// a per-deployment URL, the api-version query parameter, and the `api-key` header.
import { OpenAIProvider } from "./openai";
import { ClientError, Instance, Upstream, isPathSegment, invalidModel } from "./types";

/** Longest Azure deployment name. */
const MAX_DEPLOYMENT = 64;

export const AZURE_DEFAULT_API_VERSION = "2024-10-21";

export class AzureOpenAIProvider extends OpenAIProvider {
  get name(): string { return "azure-openai"; }
  get genAiName(): string { return "azure.ai.openai"; }

  // No default: every Azure resource has its own host (https://<resource>.openai.azure.com/openai).
  defaultEndpoint(): string { return ""; }

  /** Without a configured deployment the model names it, in the path: one plain segment. */
  modelError(inst: Instance, model: string): ClientError | null {
    if (inst.deployment.length) return super.modelError(inst, model);
    if (isPathSegment(model, MAX_DEPLOYMENT)) return null;
    return invalidModel("names the Azure deployment: 1 to 64 letters, digits, '.', '_' or '-'");
  }

  private upstream(inst: Instance, model: string, op: string): Upstream {
    const u = new Upstream();
    const deployment = inst.deployment.length ? inst.deployment : model;
    const version = inst.apiVersion.length ? inst.apiVersion : AZURE_DEFAULT_API_VERSION;
    u.path = inst.basePath + "/deployments/" + deployment + "/" + op + "?api-version=" + version;
    if (inst.apiKey.length) {
      u.headers.push("api-key");
      u.headers.push(inst.apiKey);
    }
    return u;
  }

  probePath(inst: Instance): string {
    return inst.basePath + "/models?api-version=" + (inst.apiVersion.length ? inst.apiVersion : AZURE_DEFAULT_API_VERSION);
  }

  chatUpstream(inst: Instance, model: string, stream: bool): Upstream {
    return this.upstream(inst, model, "chat/completions");
  }

  embeddingsUpstream(inst: Instance, model: string): Upstream | null {
    return this.upstream(inst, model, "embeddings");
  }

  /**
   * Azure's Responses API is on its v1 surface, {endpoint}/openai/v1/responses, with no deployment
   * in the path and no api-version: the body's model names the deployment (Microsoft's "Azure
   * OpenAI Responses API" how-to). basePath is the instance's /openai.
   */
  responsesUpstream(inst: Instance, model: string): Upstream | null {
    const u = new Upstream();
    u.path = inst.basePath + "/v1/responses";
    if (inst.apiKey.length) {
      u.headers.push("api-key");
      u.headers.push(inst.apiKey);
    }
    return u;
  }

  responsesModel(inst: Instance, model: string): string {
    return inst.deployment.length ? inst.deployment : model;
  }
}
