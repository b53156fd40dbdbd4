// Streamed answers in the client's API shape (after ai-proxy wrote them): each server-sent event is
// parsed once, the text deltas it carries go through their channel's hold-back window
// (answer-window.ts), and the event is written again with the released text in place of its
// delta; an event without text passes as it came. Held text comes out in later deltas, or in a
// delta written just before the event that ends its text (Chat: the chunk with finish_reason;
// Messages: content_block_stop). A block ends the stream in the client's format at once and drops
// the rest of the provider's stream (ai-proxy, before ai-guard on the encode path, has already
// read and counted every byte of it):
//   Chat Completions: a chunk with finish_reason "content_filter" per choice begun, then [DONE];
//   Messages: content_block_stop for an open block, message_delta with stop_reason "refusal",
//   message_stop.
import { ByteBuilder, JsonValue, parseJsonAt } from "../../lib/json";
import { SseParser, SseEvent } from "../../lib/sse";
import { AnswerScan, Channel, PER_INDEX } from "./answer-window";
import { Edit, splice } from "./answer-json";
import { K_CHAT, K_MESSAGES, K_RESPONSES, K_MCP } from "./request";
import { mcpEvent, mcpStop } from "./answer-mcp";
import { responsesEvent, responsesStop } from "./answer-responses";
import { geminiEvent, geminiStop, geminiFlushAll } from "./answer-gemini";
import { JsonArraySplitter } from "./json-array-stream";


/**
 * Most output texts (and choices) one stream may open: a provider that names ever new indexes must
 * not grow the VM's memory; past it the stream is ended as blocked (fail closed).
 */
const MAX_CHANNELS: i32 = 1024;

/** Chat: a choice's refusal text, the last channel of the choice. */
const REFUSAL: i32 = PER_INDEX - 1;

export class AnswerStream {
  parser: SseParser;
  channels: Array<Channel> = [];
  /** Messages: the content block that is open (-1: none). */
  openBlock: i32 = -1;
  /** Chat: the choices begun (their indexes), and the chunk's id, created and model for written chunks. */
  choices: Array<i32> = [];
  id: string = "\"\"";
  created: string = "0";
  model: string = "\"\"";
  /** The stream was ended for a block: every later byte is dropped. */
  ended: bool = false;
  /** An event grew past the bound: the stream was ended as blocked (fail closed). */
  overflowed: bool = false;
  /** Responses: the last sequence_number seen (the ending's is the next). */
  sequence: i64 = -1;
  /** MCP: the call's JSON-RPC id as JSON text (the error that replaces a blocked answer echoes it). */
  rpcId: string = "null";

  /** Gemini's JSON-array framing (no alt=sse): elements instead of events. */
  splitter: JsonArraySplitter | null = null;
  /** Array framing: elements written so far (the first opens the array). */
  written: i32 = 0;

  constructor(public kind: i32, public scan: AnswerScan, maxEvent: i32, array: bool = false) {
    this.parser = new SseParser(maxEvent);
    if (array) this.splitter = new JsonArraySplitter(maxEvent);
  }

  /** One chunk of the stream: what goes to the client instead of it. */
  chunk(buf: ArrayBuffer, end: bool): ByteBuilder {
    const out = new ByteBuilder(buf.byteLength + 64);
    if (this.ended) return out;
    const sp = this.splitter;
    if (sp !== null) {
      this.events(sp.feed(buf), out);
      if (!this.ended && (sp.overflowed || sp.malformed)) {
        this.overflowed = true;
        this.scan.blocked = true;
        this.stop(out);
      }
      if (end && !this.ended) {
        geminiFlushAll(this, out);
        if (this.scan.blocked) this.stop(out);
        else if (sp.ended) out.raw(this.written == 0 ? "[]" : "]");
        // else: the provider's array was cut short; it reaches the client cut short too.
      }
      return out;
    }
    const events = this.parser.feed(buf);
    this.events(events, out);
    if (!this.ended && this.parser.overflowed) {
      this.overflowed = true;
      this.scan.blocked = true;
      this.stop(out);
    }
    if (end && !this.ended) this.events(this.parser.finish(), out);
    return out;
  }

  private events(events: Array<SseEvent>, out: ByteBuilder): void {
    for (let i = 0; i < events.length && !this.ended; i++) {
      const e = events[i];
      if (e.comment) {
        out.raw(":").bytes(e.ptr, e.len).raw("\n\n");
        continue;
      }
      if (this.kind == K_CHAT) this.chat(e, out);
      else if (this.kind == K_MESSAGES) this.messages(e, out);
      else if (this.kind == K_RESPONSES) responsesEvent(this, e, out);
      else if (this.kind == K_MCP) mcpEvent(this, e, out);
      else geminiEvent(this, e, out);
      if (this.scan.blocked && !this.ended) this.stop(out);
    }
  }

  channel(key: i32, json: bool): Channel {
    for (let i = 0; i < this.channels.length; i++) if (this.channels[i].key == key) return this.channels[i];
    const c = new Channel(key, json);
    if (this.channels.length >= MAX_CHANNELS) {
      this.overflowed = true;
      this.scan.blocked = true; // the text given to this channel is never released
      return c;
    }
    this.channels.push(c);
    return c;
  }

  /** Notes a choice (or candidate) begun, for the ending; false past MAX_CHANNELS (the stream is then blocked). */
  begin(ix: i32): bool {
    if (this.choices.includes(ix)) return true;
    if (this.choices.length >= MAX_CHANNELS) {
      this.overflowed = true;
      this.scan.blocked = true;
      return false;
    }
    this.choices.push(ix);
    return true;
  }

  /** Opens one event (an SSE data line, or an element of Gemini's JSON array). */
  open(out: ByteBuilder): ByteBuilder {
    if (this.splitter === null) return out.raw("data: ");
    out.raw(this.written == 0 ? "[" : ",\r\n");
    this.written++;
    return out;
  }

  close(out: ByteBuilder): void {
    if (this.splitter === null) out.raw("\n\n");
  }

  write(out: ByteBuilder, e: SseEvent, edits: Array<Edit>): void {
    if (e.event.length) out.raw("event: ").raw(e.event).raw("\n");
    if (e.id.length) out.raw("id: ").raw(e.id).raw("\n");
    if (edits.length == 0 && !e.multiline) {
      this.open(out).bytes(e.ptr, e.len);
      this.close(out);
      return;
    }
    // Rewritten JSON stays on one data line (string values never hold a raw line break); the
    // line breaks a multi-line event had between its JSON tokens become spaces.
    const body = new ByteBuilder(e.len + 64);
    splice(body, e.ptr, e.len, edits);
    const p = changetype<usize>(body.buf);
    for (let i = 0; i < body.len; i++) if (load<u8>(p + <usize>i) == 0x0a) store<u8>(p + <usize>i, 0x20);
    this.open(out).bytes(p, body.len);
    this.close(out);
  }

  // ------------------------------------------------------------------ Chat Completions

  private chat(e: SseEvent, out: ByteBuilder): void {
    if (e.dataIs("[DONE]")) {
      this.chatFlush(-1, out);
      out.raw("data: [DONE]\n\n");
      return;
    }
    const v = parseJsonAt(e.ptr, <usize>e.len, e.owner);
    const choices = v !== null && v.isObject() ? v.get("choices") : null;
    if (choices === null || !choices.isArray()) {
      out.raw("data: ").bytes(e.ptr, e.len).raw("\n\n"); // usage-only chunks, errors
      return;
    }
    const chunk = v as JsonValue;
    const id = chunk.get("id"), created = chunk.get("created"), model = chunk.get("model");
    if (id !== null) this.id = jsonText(id);
    if (created !== null) this.created = jsonText(created);
    if (model !== null) this.model = jsonText(model);
    const edits = new Array<Edit>();
    const finishing = new Array<i32>();
    for (let i = 0, n = choices.length; i < n; i++) {
      const c = choices.at(i);
      const ix = indexOf(c, 1 << 20);
      if (!this.begin(ix)) return;
      const fr = c.get("finish_reason");
      const last = fr !== null && fr.isString();
      const delta = c.get("delta");
      if (delta !== null && delta.isObject()) {
        const content = delta.get("content");
        if (content !== null && content.isString()) this.piece(this.channel(ix * PER_INDEX, false), content, last, edits);
        const refusal = delta.get("refusal");
        if (refusal !== null && refusal.isString()) this.piece(this.channel(ix * PER_INDEX + REFUSAL, false), refusal, last, edits);
        const calls = delta.get("tool_calls");
        if (calls !== null && calls.isArray()) {
          for (let k = 0, m = calls.length; k < m; k++) {
            const call = calls.at(k);
            const f = call.get("function");
            const args = f !== null ? f.get("arguments") : null;
            if (args !== null && args.isString()) {
              this.piece(this.channel(ix * PER_INDEX + 1 + indexOf(call, REFUSAL - 2), true), args, false, edits);
            }
          }
        }
      }
      if (last) finishing.push(ix);
    }
    if (this.scan.blocked) return;
    for (let i = 0; i < finishing.length; i++) this.chatFlush(finishing[i], out);
    if (this.scan.blocked) return;
    this.write(out, e, edits);
  }

  /** Releases what a choice's channels hold (all choices: -1) in chunks of their own. */
  private chatFlush(choice: i32, out: ByteBuilder): void {
    for (let i = 0; i < this.channels.length; i++) {
      const ch = this.channels[i];
      const ix = ch.key / PER_INDEX;
      if (choice >= 0 && ix != choice) continue;
      if (ch.held.length == 0) continue;
      const text = this.scan.feed(ch, "", true);
      if (this.scan.blocked) return;
      if (text.length == 0) continue;
      out.raw("data: {\"id\":").raw(this.id).raw(",\"object\":\"chat.completion.chunk\",\"created\":").raw(this.created);
      out.raw(",\"model\":").raw(this.model).raw(",\"choices\":[{\"index\":").int(ix).raw(",\"delta\":{");
      const call = ch.key % PER_INDEX;
      if (call == 0) out.raw("\"content\":").str(text);
      else if (call == REFUSAL) out.raw("\"refusal\":").str(text);
      else out.raw("\"tool_calls\":[{\"index\":").int(call - 1).raw(",\"function\":{\"arguments\":").str(text).raw("}}]");
      out.raw("},\"finish_reason\":null}]}\n\n");
    }
  }

  // ------------------------------------------------------------------ Anthropic Messages

  private messages(e: SseEvent, out: ByteBuilder): void {
    const v = parseJsonAt(e.ptr, <usize>e.len, e.owner);
    const t = v !== null && v.isObject() ? v.getString("type") : null;
    if (t === null) {
      this.write(out, e, []);
      return;
    }
    const ev = v as JsonValue;
    const ix = indexOf(ev, 1 << 20);
    if (t == "content_block_start") {
      this.openBlock = ix;
      // A text block's start carries "" from Anthropic and ai-proxy; any text it has is the block's first.
      const b = ev.get("content_block");
      if (b !== null && b.isObject() && b.getString("type") == "text") {
        const edits = new Array<Edit>();
        this.piece(this.channel(ix * PER_INDEX, false), b.get("text"), false, edits);
        if (this.scan.blocked) return;
        this.write(out, e, edits);
        return;
      }
    }
    else if (t == "content_block_delta") {
      const d = ev.get("delta");
      const dt = d !== null ? d.getString("type") : null;
      const edits = new Array<Edit>();
      if (dt == "text_delta") this.piece(this.channel(ix * PER_INDEX, false), (d as JsonValue).get("text"), false, edits);
      else if (dt == "input_json_delta") this.piece(this.channel(ix * PER_INDEX, true), (d as JsonValue).get("partial_json"), false, edits);
      if (this.scan.blocked) return;
      this.write(out, e, edits);
      return;
    } else if (t == "content_block_stop") {
      const ch = this.find(ix * PER_INDEX);
      if (ch !== null && ch.held.length) {
        const text = this.scan.feed(ch, "", true);
        if (this.scan.blocked) return;
        if (text.length) {
          out.raw("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":").int(ix);
          out.raw(ch.json ? ",\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":" : ",\"delta\":{\"type\":\"text_delta\",\"text\":").str(text).raw("}}\n\n");
        }
      }
      this.openBlock = -1;
    }
    this.write(out, e, []);
  }

  find(key: i32): Channel | null {
    for (let i = 0; i < this.channels.length; i++) if (this.channels[i].key == key) return this.channels[i];
    return null;
  }

  // ------------------------------------------------------------------ both

  piece(ch: Channel, v: JsonValue | null, last: bool, edits: Array<Edit>): void {
    if (v === null || !v.isString() || v.src === null) return;
    const s = v.s;
    const text = this.scan.feed(ch, s, last);
    if (text != s) edits.push(new Edit(v, text));
  }

  /** Ends the client's stream for a block, in its format; nothing more is written. */
  private stop(out: ByteBuilder): void {
    this.ended = true;
    if (this.kind == K_RESPONSES) {
      responsesStop(this, out);
      return;
    }
    if (this.kind == K_MCP) {
      mcpStop(this, out);
      return;
    }
    if (this.kind != K_CHAT && this.kind != K_MESSAGES) {
      geminiStop(this, out);
      return;
    }
    if (this.kind == K_CHAT) {
      if (this.choices.length == 0) this.choices.push(0);
      for (let i = 0; i < this.choices.length; i++) {
        out.raw("data: {\"id\":").raw(this.id).raw(",\"object\":\"chat.completion.chunk\",\"created\":").raw(this.created);
        out.raw(",\"model\":").raw(this.model).raw(",\"choices\":[{\"index\":").int(this.choices[i]).raw(",\"delta\":{},\"finish_reason\":\"content_filter\"}]}\n\n");
      }
      out.raw("data: [DONE]\n\n");
      return;
    }
    if (this.openBlock >= 0) out.raw("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":").int(this.openBlock).raw("}\n\n");
    out.raw("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"refusal\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":0}}\n\n");
    out.raw("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
  }
}

/** A parsed value written back as JSON text (for the id, created and model of written chunks). */
export function jsonText(v: JsonValue): string {
  const b = new ByteBuilder(64);
  b.value(v);
  return b.toString();
}

/** An event's "index" (a choice, a content block, a tool call), 0 when absent; clamped to [0, max] (provider input). */
export function indexOf(v: JsonValue, max: i32, key: string = "index"): i32 {
  const n = v.isObject() ? v.get(key) : null;
  if (n === null || !n.isNumber()) return 0;
  const f = n.n;
  return f >= 0 && f <= <f64>max ? <i32>f : max;
}
