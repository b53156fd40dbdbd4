// Anthropic's Claude models on Amazon Bedrock through InvokeModel (POST /model/{modelId}/invoke)
// and InvokeModelWithResponseStream (/model/{modelId}/invoke-with-response-stream): Anthropic's
// own Messages request and answer (anthropic.ts), with the model and whether it streams in the URL
// instead of the body, the body naming anthropic_version "bedrock-2023-05-31", and the request
// signed with SigV4 like Converse's (bedrock.ts). Anthropic clients pass through with only those
// members changed, so what Converse has no place for (thinking signatures, cache_control,
// citations) is kept.
//
// The stream is AWS's binary event stream: each Anthropic event is the base64 `bytes` of a `chunk`
// event ({"bytes":"..."}), which ai-proxy's stream.ts unwraps (wrappedEvents) before this decoder
// reads it as Anthropic's; an error is an exception message (bedrock.ts streamException).
import { ByteBuilder, JsonValue, parseJsonAt } from "../lib/json";
import { SseEvent } from "../lib/sse";
import { AnthropicProvider, AnthropicStreamDecoder, writeAnthropicRequest } from "./anthropic";
import { bedrockError, bedrockModelError, bedrockUpstream, streamException } from "./bedrock";
import { ClientError, Instance, StreamDecoder, StreamSink, Upstream } from "./types";

class BedrockAnthropicStreamDecoder extends AnthropicStreamDecoder {
  event(e: SseEvent, sink: StreamSink): void {
    if (this.done) return;
    if (e.event.startsWith("exception:")) {
      sink.error(this.providerError(streamException(e.event, parseJsonAt(e.ptr, e.len, e.owner))));
      this.done = true;
      return;
    }
    super.event(e, sink);
  }
}

export class BedrockAnthropicProvider extends AnthropicProvider {
  get name(): string { return "bedrock-anthropic"; }
  get genAiName(): string { return "aws.bedrock"; }

  get bodyAnthropicVersion(): string { return "bedrock-2023-05-31"; }

  get streamInUrl(): bool { return true; }

  get wrappedEvents(): bool { return true; }

  get betasInBody(): bool { return true; }

  get awsService(): string { return "bedrock"; }

  get eventStream(): bool { return true; }

  /** No default: the endpoint names the region (bedrock-runtime.<region>.amazonaws.com); render writes it. */
  defaultEndpoint(): string { return ""; }

  modelError(inst: Instance, model: string): ClientError | null {
    return bedrockModelError(model);
  }

  chatUpstream(inst: Instance, model: string, stream: bool): Upstream {
    return bedrockUpstream(inst, model, stream ? "/invoke-with-response-stream" : "/invoke", stream);
  }

  /** Bedrock's CountTokens takes the invoke body base64 inside its own: the gateway answers with its own estimate. */
  countTokensUpstream(inst: Instance, model: string): Upstream | null {
    return null;
  }

  chatRequest(req: JsonValue, model: string, stream: bool, inst: Instance, out: ByteBuilder): ClientError | null {
    return writeAnthropicRequest(req, model, stream, inst, out, this.bodyAnthropicVersion, false);
  }

  streamDecoder(): StreamDecoder {
    return new BedrockAnthropicStreamDecoder();
  }

  /** Nothing cheap to probe without a model call: judged by its answers. */
  probePath(inst: Instance): string {
    return "";
  }

  error(status: u32, body: JsonValue | null): ClientError {
    return bedrockError(this.name, status, body);
  }
}
