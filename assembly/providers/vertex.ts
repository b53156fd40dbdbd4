// Google Vertex AI's Gemini models (POST .../projects/{project}/locations/{region}/publishers/google/
// models/{model}:generateContent and :streamGenerateContent?alt=sse): the same request, answer and
// stream as Gemini's own API (gemini.ts), under the project's path, with a Bearer access token in
// place of an API key (ai-proxy's upstream-token.ts: the metadata server's token for the workload's
// service account). The instance's endpoint is the publisher's base URL, which the renderer writes:
// https://{region}-aiplatform.googleapis.com/v1/projects/{project}/locations/{region}/publishers/google
import { GeminiProvider } from "./gemini";
import { Instance, Upstream } from "./types";

export class VertexProvider extends GeminiProvider {
  get name(): string { return "vertex"; }
  get genAiName(): string { return "gcp.vertex_ai"; }

  /** No default: the endpoint names the project and the region. */
  defaultEndpoint(): string { return ""; }

  // Vertex's embeddings are another API (:predict with `instances`): not served through this one.
  embeddingsUpstream(inst: Instance, model: string): Upstream | null {
    return null;
  }

  nativeUpstream(inst: Instance, model: string, method: string): Upstream | null {
    if (method == "embedContent" || method == "batchEmbedContents") return null;
    return super.nativeUpstream(inst, model, method);
  }

  /** Nothing cheap to probe with the instance's token alone: judged by its answers. */
  probePath(inst: Instance): string {
    return "";
  }
}
