// WAT filters used by the host tests.
import { serializeHeaders } from "../../host/index.js";
import { Wat } from "./wat.js";

export interface TracerCode {
  /** Extra WAT run at the start of each callback (locals: $id, $n, $end where the callback has them). */
  reqHeaders?: string;
  reqBody?: string;
  reqTrailers?: string;
  respHeaders?: string;
  respBody?: string;
  log?: string;
  configure?: string;
  tick?: string;
  httpCallResponse?: string;
  /** Result expressions (i32); default Continue (0). */
  reqHeadersResult?: string;
  reqBodyResult?: string;
  respHeadersResult?: string;
  respBodyResult?: string;
  reqTrailersResult?: string;
  extra?: string;
  globals?: string;
}

/**
 * A filter that logs every callback as "<name>:<callback>" (body callbacks add ":<visible body>",
 * response headers add ":<:status>") and runs the given code.
 */
export function tracer(name: string, c: TracerCode = {}, w = new Wat()): Uint8Array {
  const L = (s: string) => `(call $log ${w.s(`${name}:${s}`)})`;
  const status = w.s(":status");
  return w.build(`
    (global $ctx (mut i32) (i32.const 0))
    ${c.globals ?? ""}
    (func $logbody (param $tag i32) (param $taglen i32) (param $type i32) (param $n i32)
      (local $p i32)
      (drop (call $get_buf (local.get $type) (i32.const 0) (local.get $n) (i32.const 512) (i32.const 516)))
      ;; "<tag><body>" at 4096
      (memory.copy (i32.const 4096) (local.get $tag) (local.get $taglen))
      (memory.copy (i32.add (i32.const 4096) (local.get $taglen)) (i32.load (i32.const 512)) (i32.load (i32.const 516)))
      (call $log (i32.const 4096) (i32.add (local.get $taglen) (i32.load (i32.const 516)))))
    (func (export "proxy_on_context_create") (param $id i32) (param $parent i32)
      (if (local.get $parent) (then ${L("create")})))
    (func (export "proxy_on_configure") (param $id i32) (param $n i32) (result i32)
      ${c.configure ?? ""} (i32.const 1))
    (func (export "proxy_on_request_headers") (param $id i32) (param $n i32) (param $end i32) (result i32)
      (global.set $ctx (local.get $id))
      ${L("reqh")} ${c.reqHeaders ?? ""} ${c.reqHeadersResult ?? "(i32.const 0)"})
    (func (export "proxy_on_request_body") (param $id i32) (param $n i32) (param $end i32) (result i32)
      (call $logbody ${w.s(`${name}:reqb:`)} (i32.const 0) (local.get $n))
      ${c.reqBody ?? ""} ${c.reqBodyResult ?? "(i32.const 0)"})
    (func (export "proxy_on_request_trailers") (param $id i32) (param $n i32) (result i32)
      ${L("reqt")} ${c.reqTrailers ?? ""} ${c.reqTrailersResult ?? "(i32.const 0)"})
    (func (export "proxy_on_response_headers") (param $id i32) (param $n i32) (param $end i32) (result i32)
      (drop (call $get_hdr (i32.const 2) ${status} (i32.const 512) (i32.const 516)))
      (call $logbody ${w.s(`${name}:resph:`)} (i32.const 99) (i32.const 0))
      ${c.respHeaders ?? ""} ${c.respHeadersResult ?? "(i32.const 0)"})
    (func (export "proxy_on_response_body") (param $id i32) (param $n i32) (param $end i32) (result i32)
      (call $logbody ${w.s(`${name}:respb:`)} (i32.const 1) (local.get $n))
      ${c.respBody ?? ""} ${c.respBodyResult ?? "(i32.const 0)"})
    (func (export "proxy_on_log") (param $id i32) ${L("log")} ${c.log ?? ""})
    (func (export "proxy_on_done") (param $id i32) (result i32)
      (if (i32.ne (local.get $id) (i32.const 1)) (then ${L("done")})) (i32.const 1))
    (func (export "proxy_on_delete") (param $id i32)
      (if (i32.ne (local.get $id) (i32.const 1)) (then ${L("delete")})))
    (func (export "proxy_on_tick") (param $id i32) ${c.tick ?? ""})
    (func (export "proxy_on_http_call_response") (param $id i32) (param $token i32) (param $h i32) (param $b i32) (param $t i32)
      ${c.httpCallResponse ?? ""})
    ${c.extra ?? ""}
  `);
}

/** WAT that continues this filter's stream (the stream context id is in $ctx) from a root callback. */
export const CONTINUE_REQUEST = `(drop (call $set_eff (global.get $ctx))) (drop (call $continue (i32.const 0)))`;

export { serializeHeaders, Wat };
