// Signs requests with lib/sigv4.ts for test/sigv4.test.ts: the plugin configuration is a JSON list of
// requests ({method, path, query, headers: [[name, value]], body, now_ms, region, service,
// access_key_id, secret_access_key, session_token}); at configure each is signed and logged as one
// info line, "<index>\t<name>: <value>\t..." of the headers the signer adds.
export * from "@gcoredev/proxy-wasm-sdk-as/assembly/proxy";
import { RootContext, registerRootContext, log, LogLevelValues } from "@gcoredev/proxy-wasm-sdk-as/assembly";
import { pluginConfiguration } from "../../../assembly/lib/sdk";
import { parseJson, JsonValue } from "../../../assembly/lib/json";
import { AwsCredentials, signV4 } from "../../../assembly/lib/sigv4";

class SigRoot extends RootContext {
  onConfigure(size: u32): bool {
    const list = parseJson(pluginConfiguration(size));
    if (list === null || !list.isArray()) return false;
    for (let i = 0; i < list.length; i++) {
      const r = list.at(i);
      const c = new AwsCredentials();
      c.accessKeyId = r.getString("access_key_id")!;
      c.secretAccessKey = r.getString("secret_access_key")!;
      const t = r.getString("session_token");
      if (t !== null) c.sessionToken = t;
      const headers = new Array<string>();
      const h = r.get("headers") as JsonValue;
      for (let k = 0; k < h.length; k++) {
        headers.push(h.at(k).at(0).s);
        headers.push(h.at(k).at(1).s);
      }
      const body = String.UTF8.encode(r.getString("body")!);
      const q = r.getString("query");
      const added = signV4(c, r.getString("region")!, r.getString("service")!, r.getString("method")!, r.getString("path")!, q !== null ? q : "", headers,
        changetype<usize>(body), body.byteLength, <i64>(r.get("now_ms") as JsonValue).n);
      let line = i.toString();
      for (let k = 0; k + 1 < added.length; k += 2) line += "\t" + added[k] + ": " + added[k + 1];
      log(LogLevelValues.info, line);
    }
    return true;
  }
}

registerRootContext((id: u32) => new SigRoot(id), "sigv4");
