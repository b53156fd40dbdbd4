// A stream was asked for but the provider answered with one JSON body (some OpenAI-compatible
// servers ignore `stream`, and every provider answers errors that way): the client still gets a
// well-formed stream, replayed from the answer.
import { ChatResult, StreamSink } from "../../providers/types";

export function replayAsStream(r: ChatResult, sink: StreamSink): void {
  sink.start(r.id, r.model, r.created);
  for (let i = 0; i < r.choices.length; i++) {
    const c = r.choices[i];
    if (c.reasoning !== null) sink.reasoning(c.index, c.reasoning as string);
    if (c.content !== null && (c.content as string).length) sink.text(c.index, c.content as string);
    if (c.refusal !== null) sink.refusal(c.index, c.refusal as string);
    for (let t = 0; t < c.toolCalls.length; t++) {
      const call = c.toolCalls[t];
      sink.toolStart(c.index, t, call.id, call.name);
      if (call.arguments.length) sink.toolArgs(c.index, t, call.arguments);
    }
    sink.finish(c.index, c.finishReason.length ? c.finishReason : "stop", c.stopSequence);
  }
  if (r.usage.present) sink.usage(r.usage);
  sink.end();
}
