// Both JSON readers on one body, for test/json-tape.test.ts: on the request body the module parses
// it with lib/json.ts's tree and with lib/json-tape.ts's tape (the plugin configuration is the
// value bound, a decimal number) and logs two info lines, "tree\t<dump>" and "tape\t<dump>", so the
// test checks they read the same thing. A dump is "ok\t<flags>\t<value>" or "error\t<flags>\t<why>";
// a value is written as canonical JSON from what each reader offers its callers (decoded strings,
// numbers as written, an object's keys in first-seen order with the value a lookup returns, lengths
// and kinds as asked), never from the body's bytes. A body that is one JSON string is also read as
// JSON text twice, by parseJsonString of its decoded value and by parseJsonText of its bytes
// ("string\t<dump>" and "text\t<dump>", in the tree's dump form).
export * from "@gcoredev/proxy-wasm-sdk-as/assembly/proxy";
import {
  RootContext, Context, registerRootContext, log, LogLevelValues, FilterHeadersStatusValues,
  FilterDataStatusValues, get_buffer_bytes, BufferTypeValues,
} from "@gcoredev/proxy-wasm-sdk-as/assembly";
import {
  JsonValue, JsonKind, ByteBuilder, parseJson, jsonError, jsonSawBadUtf8, jsonSawDuplicateKey, jsonTooManyValues,
  parseJsonString, parseJsonText,
} from "../../../assembly/lib/json";
import { JsonTape, parseTape } from "../../../assembly/lib/json-tape";

let MAX_VALUES: i32 = 0;

function flags(bad: bool, dup: bool, many: bool): string {
  return (bad ? "B" : "-") + (dup ? "D" : "-") + (many ? "M" : "-");
}

function treeDump(v: JsonValue, b: ByteBuilder): void {
  const k = v.kind;
  if (k == JsonKind.Null) b.raw("null");
  else if (k == JsonKind.Bool) b.raw(v.b ? "true" : "false");
  else if (k == JsonKind.Number) b.raw(v.s).raw("=").raw(v.n.toString());
  else if (k == JsonKind.String) b.str(v.s).raw("#").raw(v.units.toString());
  else if (k == JsonKind.Array) {
    b.raw("[");
    for (let i = 0, n = v.length; i < n; i++) {
      if (i) b.raw(",");
      treeDump(v.at(i), b);
    }
    b.raw("]");
  } else {
    b.raw("{");
    for (let i = 0, n = v.length; i < n; i++) {
      if (i) b.raw(",");
      const key = v.keyAt(i);
      b.str(key).raw(":");
      treeDump(v.get(key) as JsonValue, b);
    }
    b.raw("}");
  }
}

function tapeDump(t: JsonTape, i: i32, b: ByteBuilder): void {
  const k = t.kind(i);
  if (k == JsonKind.Array) {
    b.raw("[");
    let n = 0;
    for (let j = i + 1, end = t.next(i); j < end; j = t.next(j)) {
      if (n++) b.raw(",");
      tapeDump(t, j, b);
    }
    if (n != t.length(i)) b.raw("!length");
    b.raw("]");
  } else if (k == JsonKind.Object) {
    b.raw("{");
    const seen = new Set<string>();
    let n = 0;
    for (let j = i + 1, end = t.next(i); j < end; j = t.next(j + 1)) {
      n++;
      const key = t.str(j);
      if (!t.is(j, key)) b.raw("!is");
      if (seen.has(key)) continue;
      if (seen.size) b.raw(",");
      seen.add(key);
      b.str(key).raw(":");
      tapeDump(t, t.get(i, key), b);
    }
    if (n != t.length(i)) b.raw("!length");
    b.raw("}");
  } else {
    // Scalars as a caller keeping one sees them (value(i)), and as read in place.
    const v = t.value(i);
    if (k == JsonKind.String && v.s != t.str(i)) b.raw("!str");
    if (k == JsonKind.Number && v.n != t.num(i)) b.raw("!num");
    if (k == JsonKind.Bool && v.b != t.isTrue(i)) b.raw("!bool");
    treeDump(v, b);
  }
}

/** What the tree parse that just ran gave: its dump, or its error, with its flags. */
function treeResult(tree: JsonValue | null): string {
  const b = new ByteBuilder();
  if (tree !== null) {
    b.raw("ok\t").raw(flags(jsonSawBadUtf8, jsonSawDuplicateKey, jsonTooManyValues)).raw("\t");
    treeDump(tree, b);
  } else b.raw("error\t").raw(flags(jsonSawBadUtf8, jsonSawDuplicateKey, jsonTooManyValues)).raw("\t").raw(jsonError);
  return b.toString();
}

class Root extends RootContext {
  createContext(id: u32): Context {
    return new Stream(id, this);
  }

  onConfigure(size: u32): bool {
    super.onConfigure(size);
    MAX_VALUES = I32.parseInt(this.getConfiguration());
    return true;
  }
}

class Stream extends Context {
  onRequestHeaders(n: u32, eos: bool): FilterHeadersStatusValues {
    return FilterHeadersStatusValues.Continue;
  }

  onRequestBody(length: usize, eos: bool): FilterDataStatusValues {
    if (!eos) return FilterDataStatusValues.StopIterationAndBuffer;
    const body = get_buffer_bytes(BufferTypeValues.HttpRequestBody, 0, <u32>length);
    const tree = parseJson(body, MAX_VALUES);
    log(LogLevelValues.info, "tree\t" + treeResult(tree));
    if (tree !== null && tree.isString()) {
      log(LogLevelValues.info, "string\t" + treeResult(parseJsonString(tree.s)));
      log(LogLevelValues.info, "text\t" + treeResult(parseJsonText(tree)));
    }
    const t = parseTape(body, MAX_VALUES);
    const c = new ByteBuilder();
    if (t.ok) {
      c.raw("ok\t").raw(flags(t.sawBadUtf8, t.sawDuplicateKey, t.tooManyValues)).raw("\t");
      tapeDump(t, 0, c);
    } else c.raw("error\t").raw(flags(t.sawBadUtf8, t.sawDuplicateKey, t.tooManyValues)).raw("\t").raw(t.error);
    log(LogLevelValues.info, "tape\t" + c.toString());
    return FilterDataStatusValues.Continue;
  }
}

registerRootContext((id: u32) => new Root(id), "json-tape");
