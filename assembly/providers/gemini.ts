// PLACEHOLDER — being written. Provider family "gemini".
import { JsonValue, ByteBuilder } from "../lib/json";
import { SseEvent } from "../lib/sse";
import { Provider, Instance, Upstream, ChatResult, ClientError, StreamDecoder, StreamSink } from "./types";
import { openAIStyleError } from "./openai";

class PendingDecoder extends StreamDecoder {
  event(e: SseEvent, sink: StreamSink): void {}
}

export class GeminiProvider extends Provider {
  get name(): string { return "gemini"; }
  defaultEndpoint(): string { return "https://generativelanguage.googleapis.com/v1beta"; }
  chatUpstream(inst: Instance, model: string, stream: bool): Upstream { return new Upstream(); }
  chatRequest(req: JsonValue, model: string, stream: bool, inst: Instance, out: ByteBuilder): ClientError | null {
    return ClientError.of(400, "provider gemini is not implemented yet", "invalid_request_error", "");
  }
  chatResponse(body: JsonValue, out: ChatResult): bool { return false; }
  streamDecoder(): StreamDecoder { return new PendingDecoder(); }
  error(status: u32, body: JsonValue | null): ClientError { return openAIStyleError(status, body, this.name); }
}
