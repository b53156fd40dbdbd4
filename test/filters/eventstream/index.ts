// Reads AWS event streams with lib/eventstream.ts for test/eventstream.test.ts. The plugin
// configuration is {"runs": [{"hex": <the stream's bytes>, "cuts": [offsets], "max": bound}]}: each
// run feeds the stream in chunks cut at the offsets and logs, at info, one line per message,
// "<run>\tmsg\t<message-type>\t<event-type>\t<error-message>\t<payload as text>", then
// "<run>\tend\t<error>\t<bytes held>".
export * from "@gcoredev/proxy-wasm-sdk-as/assembly/proxy";
import { RootContext, registerRootContext, log, LogLevelValues } from "@gcoredev/proxy-wasm-sdk-as/assembly";
import { pluginConfiguration } from "../../../assembly/lib/sdk";
import { parseJson, JsonValue } from "../../../assembly/lib/json";
import { EventStreamReader } from "../../../assembly/lib/eventstream";

function fromHex(s: string): ArrayBuffer {
  const out = new ArrayBuffer(s.length >> 1);
  for (let i = 0; i < out.byteLength; i++) store<u8>(changetype<usize>(out) + <usize>i, <u8>I32.parseInt(s.substr(i * 2, 2), 16));
  return out;
}

class StreamRoot extends RootContext {
  onConfigure(size: u32): bool {
    const cfg = parseJson(pluginConfiguration(size));
    if (cfg === null) return false;
    const runs = (cfg as JsonValue).get("runs") as JsonValue;
    for (let r = 0; r < runs.length; r++) {
      const run = runs.at(r);
      const bytes = fromHex(run.getString("hex")!);
      const cuts = run.get("cuts") as JsonValue;
      const reader = new EventStreamReader(<i32>(run.get("max") as JsonValue).n);
      let from = 0;
      for (let c = 0; c <= cuts.length; c++) {
        const to = c < cuts.length ? <i32>cuts.at(c).n : bytes.byteLength;
        const msgs = reader.feed(changetype<usize>(bytes) + <usize>from, to - from);
        for (let m = 0; m < msgs.length; m++) {
          const e = msgs[m];
          log(LogLevelValues.info, r.toString() + "\tmsg\t" + e.messageType + "\t" + e.eventType + "\t" + e.errorMessage + "\t" + String.UTF8.decodeUnsafe(e.ptr, <usize>e.len));
        }
        from = to;
      }
      log(LogLevelValues.info, r.toString() + "\tend\t" + reader.error + "\t" + reader.held.toString());
    }
    return true;
  }
}

registerRootContext((id: u32) => new StreamRoot(id), "eventstream");
