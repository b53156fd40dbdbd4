// A streamed MCP answer (server-sent events, each one whole JSON-RPC message: the server's
// notifications, such as progress, then the response): each event is passed on as soon as it is
// complete, and the response's texts are checked whole, as a JSON answer's are (answer-json.ts).
// No hold-back window is needed: an MCP server never splits one text across events.
import { ByteBuilder, parseJsonAt, JsonValue } from "../../lib/json";
import { SseParser, SseEvent } from "../../lib/sse";
import { AnswerScan } from "./answer-window";
import { answerEdits, filteredAnswer, splice } from "./answer-json";
import { K_MCP } from "./request";

export class McpEvents {
  parser: SseParser;
  /** The bound of one event went by: the rest is withheld (a guard does not pass what it cannot read). */
  cut: bool = false;

  constructor(public scan: AnswerScan, maxEvent: i32, public maxValues: i32) {
    this.parser = new SseParser(maxEvent);
  }

  /** The bytes to send on for this chunk. */
  chunk(chunk: ArrayBuffer, end: bool): ByteBuilder {
    const out = new ByteBuilder(chunk.byteLength + 64);
    if (this.cut) return out;
    this.write(out, this.parser.feed(chunk));
    if (end) this.write(out, this.parser.finish());
    if (this.parser.overflowed && !this.cut) {
      this.cut = true;
      this.scan.blocked = true;
    }
    return out;
  }

  private write(out: ByteBuilder, events: Array<SseEvent>): void {
    for (let i = 0; i < events.length; i++) {
      const e = events[i];
      if (e.comment) {
        out.byte(0x3a).bytes(e.ptr, e.len).raw("\n\n");
        continue;
      }
      if (e.event.length) out.raw("event: ").raw(e.event).byte(0x0a);
      const v = parseJsonAt(e.ptr, e.len, e.owner, this.maxValues);
      if (v !== null && v.isObject() && v.get("method") === null && v.get("result") !== null) {
        const edits = answerEdits(K_MCP, v as JsonValue, this.scan);
        out.raw("data: ");
        if (this.scan.blocked) out.buffer(filteredAnswer(K_MCP, v as JsonValue).toArrayBuffer());
        else splice(out, e.ptr, e.len, edits);
        out.raw("\n\n");
        continue;
      }
      // A notification, or data that is not one JSON message: as it came, line by line.
      let start = 0;
      for (let j = 0; j <= e.len; j++) {
        if (j == e.len || load<u8>(e.ptr + <usize>j) == 0x0a) {
          out.raw("data: ").bytes(e.ptr + <usize>start, j - start).byte(0x0a);
          start = j + 1;
        }
      }
      out.byte(0x0a);
    }
  }
}
