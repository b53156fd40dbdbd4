// Anthropic's Claude models on Google Vertex AI (POST .../projects/{project}/locations/{region}/
// publishers/anthropic/models/{model}:rawPredict and :streamRawPredict): Anthropic's Messages
// request, answer and stream (anthropic.ts), with the model in the URL instead of the body, the body
// naming anthropic_version "vertex-2023-10-16", and a Bearer access token (ai-proxy's
// upstream-token.ts: the metadata server's) in place of x-api-key. The instance's endpoint is the
// publisher's base URL, which the renderer writes:
// https://{region}-aiplatform.googleapis.com/v1/projects/{project}/locations/{region}/publishers/anthropic
import { ByteBuilder, JsonValue } from "../lib/json";
import { AnthropicProvider, writeAnthropicRequest } from "./anthropic";
import { ClientError, Instance, Upstream, isPathSegment, invalidModel } from "./types";

export class VertexAnthropicProvider extends AnthropicProvider {
  get name(): string { return "vertex-anthropic"; }
  get genAiName(): string { return "gcp.vertex_ai"; }

  get bodyAnthropicVersion(): string { return "vertex-2023-10-16"; }

  /** No default: the endpoint names the project and the region. */
  defaultEndpoint(): string { return ""; }

  /** The model is a path segment: Vertex's Claude ids are letters, digits, '.', '_', '-' and '@'. */
  modelError(inst: Instance, model: string): ClientError | null {
    const at = model.indexOf("@");
    const ok = at < 0 ? isPathSegment(model, 128) : isPathSegment(model.substring(0, at), 128) && isPathSegment(model.substring(at + 1), 64);
    return ok ? null : invalidModel("is not a Vertex AI model id (letters, digits, '.', '_', '-', and one '@' before a version)");
  }

  chatUpstream(inst: Instance, model: string, stream: bool): Upstream {
    const u = new Upstream();
    u.path = inst.basePath + "/models/" + model + (stream ? ":streamRawPredict" : ":rawPredict");
    return u;
  }

  /** Vertex counts Claude's tokens elsewhere: the gateway answers with its own estimate. */
  countTokensUpstream(inst: Instance, model: string): Upstream | null {
    return null;
  }

  chatRequest(req: JsonValue, model: string, stream: bool, inst: Instance, out: ByteBuilder): ClientError | null {
    return writeAnthropicRequest(req, model, stream, inst, out, this.bodyAnthropicVersion);
  }

  /** Nothing cheap to probe with the instance's token alone: judged by its answers. */
  probePath(inst: Instance): string {
    return "";
  }
}
