// A cached answer written in the client's API with ai-proxy's own writers (client.ts): whole, or as
// the stream the client asked for, the text in pieces of about replay_chunk_chars (cut after a space
// where one is near, never inside a UTF-16 surrogate pair), as a provider streams it.
import { ByteBuilder, JsonValue } from "../../lib/json";
import { ChatResult, StreamSink, Usage } from "../../providers/types";
import { writeClientAnswer, clientStreamSink } from "../ai-proxy/client";

/** The whole answer in the client's API. */
export function writeAnswer(client: i32, r: ChatResult, clientReq: JsonValue, out: ByteBuilder): void {
  writeClientAnswer(client, r, out, clientReq, null);
}

/** The answer as the client's stream, all of it (the client gets it at once: the answer is here). */
export function writeStream(client: i32, r: ChatResult, clientReq: JsonValue, withUsage: bool, geminiArray: bool, chunkChars: i32, maxHeld: i64): ByteBuilder {
  const u = r.usage;
  const sink = clientStreamSink(client, withUsage, u.prompt > 0 ? u.prompt : 0, geminiArray, clientReq, maxHeld, null);
  sink.start(r.id, r.model, r.created);
  for (let i = 0; i < r.choices.length; i++) {
    const c = r.choices[i];
    if (c.reasoning !== null) pieces(sink, c.index, c.reasoning as string, chunkChars, 0, 0);
    if (c.content !== null && (c.content as string).length) pieces(sink, c.index, c.content as string, chunkChars, 1, 0);
    if (c.refusal !== null) sink.refusal(c.index, c.refusal as string);
    for (let t = 0; t < c.toolCalls.length; t++) {
      const call = c.toolCalls[t];
      sink.toolStart(c.index, t, call.id, call.name);
      if (call.arguments.length) pieces(sink, c.index, call.arguments, chunkChars * 4, 2, t);
    }
    sink.finish(c.index, c.finishReason.length ? c.finishReason : "stop", c.stopSequence);
  }
  if (u.present) sink.usage(u);
  sink.end();
  return sink.out;
}

/** kind 0: reasoning, 1: text, 2: tool t's arguments. */
function pieces(sink: StreamSink, choice: i32, s: string, size: i32, kind: i32, t: i32): void {
  let at = 0;
  const n = s.length;
  while (at < n) {
    let end = at + size;
    if (end >= n) end = n;
    else {
      // After the last space of the piece, when there is one in its second half.
      const space = s.lastIndexOf(" ", end - 1);
      if (kind != 2 && space >= at + (size >> 1)) end = space + 1;
      // Never between the halves of a surrogate pair.
      const c = s.charCodeAt(end - 1);
      if (c >= 0xd800 && c <= 0xdbff) end++;
    }
    const piece = s.substring(at, end);
    if (kind == 0) sink.reasoning(choice, piece);
    else if (kind == 1) sink.text(choice, piece);
    else sink.toolArgs(choice, t, piece);
    at = end;
  }
}

/** The usage a replayed answer shows: what the provider reported when it was produced. */
export function storedUsage(prompt: i64, completion: i64): Usage {
  const u = new Usage();
  u.prompt = prompt;
  u.completion = completion;
  u.total = prompt + completion;
  return u;
}
