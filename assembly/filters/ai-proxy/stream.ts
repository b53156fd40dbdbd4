// Streams: the provider's server-sent events decoded as they arrive (bounded per event), written in
// the client's API (or passed on as they came when the provider speaks it), cut when the consumer's
// budget runs out, and ended in the client's format when the provider stops early or sends an
// event too large. A new client API plugs in through client.ts (its sink and its error ending).
import { FilterDataStatusValues, RESPONSE_BODY, getBuffer, replaceBufferBytes, appendBuffer, setFilterState, closeResponse } from "../../lib/sdk";
import { JsonValue, ByteBuilder, jsonSawBadUtf8, parseJsonAt } from "../../lib/json";
import { base64Decode } from "../../lib/base64";
import { SseParser, SseEvent } from "../../lib/sse";
import { EventStreamReader } from "../../lib/eventstream";
import * as keys from "../../lib/keys";
import { estimateTokens } from "../../lib/tokens";
import { ClientError, CountingSink, Provider, StreamDecoder, StreamSink, Usage } from "../../providers/types";
import { streamException } from "../../providers/bedrock";
import { OpenAIStreamDecoder, EVENT_CHUNK, EVENT_DONE, EVENT_ERROR } from "../../providers/openai";
import { writeOpenAIError, writeOpenAIUsageChunk } from "./client-openai";
import { CLIENT_OPENAI, clientStreamSink, clientStreamEnding, clientStreamDecoder } from "./client";
import { estimatedUsage } from "./estimate";
import { CAPPED_CUT_FACTOR } from "./budget";
import { captureSink, captureStream } from "./capture";
import { record, withinOutputLimit } from "./record";
import { Exchange, RESP_SSE, RESP_REPLAY, replaceBody } from "./state";

function printableAscii(p: usize, n: i32): bool {
  for (let i = 0; i < n; i++) {
    const c = load<u8>(p + <usize>i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

/**
 * One chunk of a live stream: decoded into the client's sink (or reframed, or passed on as it
 * came for a native stream), cut at the budget, ended at the stream's end or at an event too large.
 */
export function streamBody(x: Exchange, length: usize, endOfStream: bool): FilterDataStatusValues {
  if (x.eventTooLarge) {
    // The client's stream ended in an earlier callback: now the provider is stopped.
    replaceBufferBytes(RESPONSE_BODY, <u32>length, 0, 0);
    if (!endOfStream) closeResponse(); // response_code_details: wasm_close_stream
    return FilterDataStatusValues.Continue;
  }
  const chunk = getBuffer(RESPONSE_BODY, 0, <u32>length);
  const sink = x.sink as StreamSink;
  const decoder = x.decoder as StreamDecoder;
  const wasCut = x.cut;
  decodeAll(x, x.frames !== null ? framedEvents(x.frames as EventStreamReader, chunk, (x.provider as Provider).wrappedEvents) : (x.parser as SseParser).feed(chunk), sink);
  if (((x.parser as SseParser).overflowed || (x.frames !== null && (x.frames as EventStreamReader).error.length > 0)) && !x.cut) {
    streamEventTooLarge(x, <u32>length);
    return FilterDataStatusValues.Continue;
  }
  if (x.cut && !wasCut) cutStream(x, sink, endOfStream);
  else if (wasCut && !endOfStream) {
    // The client's stream ended at the cut in an earlier callback, so its ending has reached
    // the client: now the provider can be stopped (see closeAfterCut).
    closeAfterCut(x, <u32>length);
    return FilterDataStatusValues.Continue;
  }
  const unterminated = endOfStream && x.native && (x.parser as SseParser).pending;
  if (endOfStream) endStream(x);
  if (x.reframe) {
    const out = x.framed as ByteBuilder;
    if (endOfStream && !decoder.done) out.buffer(cutShortEnding(x));
    else if (endOfStream && decoder.needsDone) out.raw("data: [DONE]\n\n");
    replaceBody(RESPONSE_BODY, <u32>length, out);
    out.reset();
  } else if (x.unwrapped !== null) {
    const out = x.unwrapped as ByteBuilder;
    if (endOfStream && !decoder.done) out.buffer(cutShortEnding(x));
    replaceBody(RESPONSE_BODY, <u32>length, out);
    out.reset();
  } else if (!x.native) {
    replaceBody(RESPONSE_BODY, <u32>length, sink.out);
    sink.out.reset();
  } else if (endOfStream && !decoder.done) {
    // Native streams leave Envoy's buffer as it is (no copy); one cut short gets the client
    // format's error ending, appended.
    appendBuffer(RESPONSE_BODY, <u32>length, cutShortEnding(x));
  } else if (endOfStream && decoder.needsDone && x.client == CLIENT_OPENAI) {
    appendBuffer(RESPONSE_BODY, <u32>length, String.UTF8.encode("\n\ndata: [DONE]\n\n"));
  } else if (unterminated) {
    // A client drops an event the stream never terminated: end the provider's last one.
    appendBuffer(RESPONSE_BODY, <u32>length, String.UTF8.encode("\n\n"));
  }
  return FilterDataStatusValues.Continue;
}

/**
 * The messages of an AWS event stream chunk as events for the provider's decoder: an event by its
 * :event-type, an exception or error as "exception:<type>". wrapped: each chunk event carries the
 * provider's own event as base64 in {"bytes"} (InvokeModelWithResponseStream), handed over
 * decoded; a chunk that is not that breaks the stream.
 */
function framedEvents(frames: EventStreamReader, chunk: ArrayBuffer, wrapped: bool): Array<SseEvent> {
  const msgs = frames.feed(changetype<usize>(chunk), chunk.byteLength);
  const out = new Array<SseEvent>(msgs.length);
  for (let i = 0; i < msgs.length; i++) {
    const m = msgs[i];
    const e = new SseEvent();
    e.event = m.messageType == "event" ? m.eventType : "exception:" + m.eventType;
    e.owner = m.owner;
    e.ptr = m.ptr;
    e.len = m.len;
    if (wrapped && e.event == "chunk" && !unwrap(e)) {
      frames.error = "a chunk event without base64 bytes";
      out.length = i;
      break;
    }
    out[i] = e;
  }
  return out;
}

/** A chunk event's {"bytes":"<base64>"} replaced by the bytes (the provider's own event). */
function unwrap(e: SseEvent): bool {
  const v = parseJsonAt(e.ptr, e.len, e.owner);
  const b = v !== null && v.isObject() ? v.get("bytes") : null;
  if (b === null || !b.isString() || b.src === null) return false;
  const bytes = base64Decode(b.raw, b.rawLen);
  if (bytes === null) return false;
  e.event = "";
  e.owner = bytes;
  e.ptr = changetype<usize>(bytes);
  e.len = bytes.byteLength;
  return true;
}

/**
 * An unwrapped event as the client's SSE event (Anthropic's: `event: <type>`, the data as the
 * provider wrote it); an exception as the client's error event.
 */
function writeUnwrapped(x: Exchange, e: SseEvent): void {
  const out = x.unwrapped as ByteBuilder;
  if (e.event.startsWith("exception:")) {
    out.buffer(streamEnding(x, streamException(e.event, parseJsonAt(e.ptr, e.len, e.owner))));
    return;
  }
  const type = eventTypeOf(e);
  if (type.length == 0) return; // not an event a client could read: dropped, as a translated stream drops it
  out.raw("event: ").raw(type).raw("\ndata: ").bytes(e.ptr, e.len).raw("\n\n");
}

/** The event's "type" (Anthropic writes it first: read without a parse then), or "" when it has none fit for an event line. */
function eventTypeOf(e: SseEvent): string {
  const p = e.ptr;
  const n = e.len;
  // {"type":"
  if (n > 9 && load<u64>(p) == 0x3a2265707974227b && load<u8>(p + 8) == 0x22) {
    let i = 9;
    while (i < n && load<u8>(p + <usize>i) != 0x22) i++;
    if (i < n) return eventName(p + 9, i - 9);
  }
  const v = parseJsonAt(p, n, e.owner);
  const t = v !== null && v.isObject() ? v.get("type") : null;
  if (t === null || !t.isString()) return "";
  const s = String.UTF8.encode(t.s);
  return eventName(changetype<usize>(s), s.byteLength);
}

/** An event name of lower-case letters and '_' (Anthropic's), or "". */
function eventName(p: usize, n: i32): string {
  if (n == 0 || n > 64) return "";
  for (let i = 0; i < n; i++) {
    const c = load<u8>(p + <usize>i);
    if (!((c >= 0x61 && c <= 0x7a) || c == 0x5f)) return "";
  }
  return String.UTF8.decodeUnsafe(p, n);
}

/** The answer is a stream (replay: a whole answer, or a whole stream, written as one): its parser, decoder and sink. */
export function startStream(x: Exchange, replay: bool): void {
  x.resp = replay ? RESP_REPLAY : RESP_SSE;
  // A replayed stream is a whole body, bounded as one (max_response_body_bytes); a live one is
  // bounded per unfinished event.
  x.parser = new SseParser(replay ? i32.MAX_VALUE : x.settings.maxStreamEventBytes);
  x.decoder = clientStreamDecoder(x.client, x.native && !replay, x.provider as Provider);
  (x.decoder as StreamDecoder).redactErrors = x.redacts();
  (x.decoder as StreamDecoder).mode = x.answerMode;
  (x.decoder as StreamDecoder).model = x.upstreamModel;
  x.frames = (x.provider as Provider).eventStream && !replay ? new EventStreamReader(<i32>x.settings.maxStreamEventBytes) : null;
  const provider = x.provider as Provider;
  x.unwrapped = x.native && provider.wrappedEvents && !replay ? new ByteBuilder(1024) : null;
  x.reframe = !replay && !x.native && x.client == CLIENT_OPENAI && provider.speaksOpenAI && x.budget < 0;
  if (x.reframe) x.framed = new ByteBuilder(1024);
  const passes = (x.native || x.reframe) && !replay;
  const sink: StreamSink | null = passes ? null : clientStreamSink(x.client, x.includeUsage, x.promptEstimate, x.geminiArray, x.clientReq, x.settings.maxResponseBodyBytes, x.keeper);
  // (A replayed answer is kept from its whole result: answer.ts.)
  x.sink = replay ? sink as StreamSink : captureSink(x, sink);
}

/**
 * Provider events into the client's sink until the budget runs out (x.cut), then into the
 * quiet sink: after a cut the client's stream is complete and the provider's rest is read for
 * its usage only.
 */
export function decodeAll(x: Exchange, events: Array<SseEvent>, sink: StreamSink): void {
  for (let i = 0; i < events.length; i++) {
    if (x.cut) {
      decode(x, events[i], x.quiet as CountingSink);
      continue;
    }
    decode(x, events[i], sink);
    if (x.budget >= 0 && estimateTokens(sink.generatedChars) > (x.capped ? CAPPED_CUT_FACTOR * x.budget : x.budget)) {
      x.cut = true;
      x.quiet = new CountingSink();
    }
  }
}

/**
 * The consumer's token budget ran out mid-stream (ai-ratelimit's sluice.stream_budget): end the
 * client's stream the way a provider ends one at max_tokens, with the usage (an OpenAI client's
 * usage chunk when it asked for one; an Anthropic client's final message_delta). The events of
 * this chunk after the cut were decoded (not forwarded): what the provider produced counts.
 * When the provider's stream ends here too, that usage is the record; else it is the estimate
 * so far, and the provider is stopped at the next chunk (closeAfterCut).
 */
export function cutStream(x: Exchange, sink: StreamSink, endOfStream: bool): void {
  const decoder = x.decoder as StreamDecoder;
  const quiet = x.quiet as CountingSink;
  let u: Usage;
  if (endOfStream || decoder.done) {
    if (endOfStream) {
      const rest = (x.parser as SseParser).finish();
      for (let i = 0; i < rest.length; i++) decode(x, rest[i], quiet);
    }
    x.responseChars = sink.generatedChars + quiet.generatedChars;
    u = record(x, decoder.usage, decoder.done);
  } else {
    u = estimatedUsage(decoder.usage, x.promptEstimate, sink.generatedChars + quiet.generatedChars);
  }
  sink.usage(u);
  sink.finish(0, "length", null);
  sink.end();
  setFilterState(keys.STREAM_CUT, "budget");
}

/**
 * The provider is still generating after a cut. proxy-wasm cannot end the client's response
 * early, nor reset only the upstream: proxy_close_stream resets the whole stream, and Envoy does
 * it before the data of the current callback goes out (sdk.ts closeResponse). So the cut's
 * ending goes out in its own callback, and the stream is reset in the next one, which the
 * provider's next chunk brings: the client has its complete stream (finish_reason length, the
 * usage, [DONE] / message_stop) before the reset, and the provider's connection closes, so it
 * stops generating. The charge is what the provider produced until then: what was delivered and
 * what was in flight (this chunk included), with the provider's own counts where it gave them.
 */
export function closeAfterCut(x: Exchange, length: u32): void {
  const decoder = x.decoder as StreamDecoder;
  // Nothing of the provider's rest goes to the client (it is decoded for the count only).
  replaceBufferBytes(RESPONSE_BODY, length, 0, 0);
  if (x.usageWritten) return; // already closing, or the provider finished at the cut
  x.responseChars = (x.sink as StreamSink).generatedChars + (x.quiet as CountingSink).generatedChars;
  record(x, decoder.usage, decoder.done);
  if (decoder.done) return; // the provider ended its stream; only the end flag is to come
  closeResponse(); // response_code_details: wasm_close_stream
}

/**
 * The provider sent an event past max_stream_event_bytes (one that never ends, or a huge one):
 * the parser let go of it. The client's stream ends here with the client format's error ending
 * (502 upstream_event_too_large; a translated stream first gets its usage), the usage record is
 * written (what was delivered, and the dropped event's bytes as text, within the request's
 * output limit), and the provider is stopped at its next chunk: a reset now would drop this
 * callback's data, the ending included (see closeAfterCut).
 */
export function streamEventTooLarge(x: Exchange, length: u32): void {
  const sink = x.sink as StreamSink;
  const decoder = x.decoder as StreamDecoder;
  const parser = x.parser as SseParser;
  x.eventTooLarge = true;
  // An AWS event stream that breaks (a CRC that does not match, a frame past the bound) ends the
  // same way: nothing after it can be read.
  const frames = x.frames;
  const broken = frames !== null && (frames as EventStreamReader).error.length > 0 && !(frames as EventStreamReader).error.includes("larger than");
  setFilterState(keys.STREAM_CUT, broken ? "bad_event_stream" : "event_too_large");
  const dropped = frames !== null ? <i64>(frames as EventStreamReader).held : parser.overflowBytes;
  x.responseChars = withinOutputLimit(x, sink.generatedChars + dropped, sink.generatedChars);
  const u = record(x, decoder.usage, false);
  const e = broken
    ? ClientError.of(502, "The provider's event stream could not be read (" + (frames as EventStreamReader).error + ").", "api_error", "bad_upstream_response")
    : ClientError.of(502, "The provider sent a stream event larger than " + x.settings.maxStreamEventBytes.toString() + " bytes.", "api_error", "upstream_event_too_large");
  if (x.reframe) {
    const out = x.framed as ByteBuilder;
    out.buffer(streamEnding(x, e));
    replaceBody(RESPONSE_BODY, length, out);
    out.reset();
  } else if (x.unwrapped !== null) {
    const out = x.unwrapped as ByteBuilder;
    out.buffer(streamEnding(x, e));
    replaceBody(RESPONSE_BODY, length, out);
    out.reset();
  } else if (!x.native) {
    sink.usage(u);
    sink.error(e);
    sink.end();
    replaceBody(RESPONSE_BODY, length, sink.out);
    sink.out.reset();
  } else {
    // This chunk passes on as it came (its part of the event), then the error ending.
    appendBuffer(RESPONSE_BODY, length, streamEnding(x, e));
  }
}

export function cutShortEnding(x: Exchange): ArrayBuffer {
  return streamEnding(x, ClientError.of(502, "The provider ended the stream early.", "api_error", "upstream_incomplete"));
}

/** The client format's ending for a stream that ends in error e. */
export function streamEnding(x: Exchange, e: ClientError): ArrayBuffer {
  return clientStreamEnding(x.client, e, x.decoder);
}

/**
 * One provider event into the sink; a reframed stream also forwards it. Comments are not events:
 * they pass on in place, in either client format (providers send them as keep-alives while a
 * model thinks, and a client's read timeout runs meanwhile).
 */
export function decode(x: Exchange, e: SseEvent, sink: StreamSink): void {
  const live = sink === x.sink && !x.cut;
  if (e.comment) {
    if (live) {
      const out = x.reframe ? x.framed as ByteBuilder : sink.out;
      // The text goes along when it is printable ASCII (it is only a marker); else a bare ":".
      out.byte(0x3a);
      if (printableAscii(e.ptr, e.len)) out.bytes(e.ptr, e.len);
      out.raw("\n\n");
    }
    return;
  }
  (x.decoder as StreamDecoder).event(e, sink);
  if (live && x.reframe) forward(x, e);
  else if (live && x.unwrapped !== null) writeUnwrapped(x, e);
}

/**
 * A reframed stream's event as the client gets it: the chunk's data as it came; rewritten when
 * it carried usage the client did not ask for, an "error" member that is no error (a client
 * would take it for one), a string with invalid UTF-8, or came in several data lines (written
 * compact, it fits one); every other member kept; the
 * usage-only chunk left out; an error as OpenAI's error shape; what the decoder could not read
 * (not JSON) dropped, as a translated stream drops it.
 */
export function forward(x: Exchange, e: SseEvent): void {
  const d = x.decoder as OpenAIStreamDecoder;
  const out = x.framed as ByteBuilder;
  if (d.lastKind == EVENT_DONE) {
    if (x.includeUsage && !x.usageForwarded) {
      // The client asked for usage and the provider sent none: the recorded usage, estimated.
      const sink = x.sink as CountingSink;
      x.responseChars = sink.generatedChars;
      writeOpenAIUsageChunk(out, sink.id, sink.model, sink.created, record(x, d.usage, true));
    }
    out.raw("data: [DONE]\n\n");
  } else if (d.lastKind == EVENT_ERROR) {
    out.raw("data: ");
    writeOpenAIError(d.lastError as ClientError, out);
    out.raw("\n\n");
  } else if (d.lastKind == EVENT_CHUNK && x.includeUsage && d.carriesUsage && !d.strayError && !jsonSawBadUtf8 && !e.multiline) {
    // The usage the client asked for, as the provider sent it.
    x.usageForwarded = true;
    out.raw("data: ").bytes(e.ptr, e.len).raw("\n\n");
  } else if (d.lastKind == EVENT_CHUNK && (!d.gatewayOnly || x.includeUsage)) {
    if (d.carriesUsage && x.includeUsage) x.usageForwarded = true;
    const dropUsage = d.carriesUsage && !x.includeUsage;
    out.raw("data: ");
    if (dropUsage || d.strayError || jsonSawBadUtf8 || e.multiline) {
      const v = d.lastChunk as JsonValue;
      out.byte(0x7b);
      let n = 0;
      for (let i = 0, len = v.length; i < len; i++) {
        const k = v.keyAt(i);
        if ((k == "usage" && dropUsage) || k == "error") continue;
        if (n++) out.byte(0x2c);
        out.str(k).byte(0x3a).value(v.at(i));
      }
      out.byte(0x7d);
    } else {
      out.bytes(e.ptr, e.len);
    }
    out.raw("\n\n");
  }
}

export function endStream(x: Exchange): void {
  const sink = x.sink as StreamSink;
  const decoder = x.decoder as StreamDecoder;
  const rest = (x.parser as SseParser).finish();
  if (x.cut) {
    // Only the usage matters now; the client's stream is already complete.
    const quiet = x.quiet as CountingSink;
    for (let i = 0; i < rest.length; i++) decode(x, rest[i], quiet);
    x.responseChars = sink.generatedChars + quiet.generatedChars;
    record(x, decoder.usage, decoder.done);
    return;
  }
  for (let i = 0; i < rest.length; i++) decode(x, rest[i], sink);
  x.responseChars = sink.generatedChars;
  // The client sees the usage that is recorded (a translated stream's usage chunk or final
  // message_delta), estimated where the provider reported none.
  sink.usage(record(x, decoder.usage, decoder.done));
  if (!decoder.done && !x.native) {
    // The provider's stream stopped without its terminal event: say so rather than pretend.
    sink.error(ClientError.of(502, "The provider ended the stream early.", "api_error", "upstream_incomplete"));
  }
  sink.end();
  if (decoder.done) captureStream(x, x.recorded);
}
