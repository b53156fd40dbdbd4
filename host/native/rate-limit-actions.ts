// The rate limit actions (envoy.config.route.v3.RateLimit.Action) local_ratelimit's own rate_limits
// use to make a request's descriptors: each action yields one descriptor entry, or none.
import type { HeaderList } from "../headers.js";
import { getFirst } from "../headers.js";
import type { FilterMetadata } from "../proto.js";
import type { StreamInfo } from "../stream-info.js";
import { fail, list, obj, only } from "./filter.js";
import { metadataValue } from "./match.js";

/** What a rate_limits action yields: a descriptor entry (key, value); null: no descriptor at all for
 * this rate_limits entry; "skip": this action adds nothing but the descriptor stands (skip_if_absent). */
export type Action = (headers: HeaderList, info: StreamInfo, filterState: Map<string, Buffer>) => [string, string] | null | "skip";

/** The one CEL expression the renderer writes for Sluice's consumer: filter_state['<key>']. */
const FILTER_STATE_CEL = /^\s*filter_state\s*\[\s*(?:'([^'\\]+)'|"([^"\\]+)")\s*\]\s*$/;

/**
 * One rate_limits action (envoy.config.route.v3.RateLimit.Action), as
 * source/common/router/router_ratelimit.cc populates a descriptor: request_headers (the header's
 * first value; absent: no descriptor, unless skip_if_absent), metadata (a string value at the path
 * of DYNAMIC metadata, else default_value, else no descriptor unless skip_if_absent), generic_key,
 * and the expression extension (source/extensions/rate_limit_descriptors/expr/config.cc
 * ExpressionDescriptor: a result that is an error, such as a missing filter state key, gives no
 * descriptor unless skip_if_error) for exactly the form filter_state['<key>'] (the object's string
 * serialization, as CEL prints bytes); any other CEL text is refused.
 */
export function rateLimitAction(v: unknown, at: string): Action {
  const a = obj(v, at);
  const keys = Object.keys(a);
  if (keys.length !== 1) fail(at, "give exactly one action");
  const k = keys[0];
  const x = obj(a[k], `${at}.${k}`);
  const xat = `${at}.${k}`;
  switch (k) {
    case "request_headers": {
      only(x, xat, ["header_name", "descriptor_key", "skip_if_absent"]);
      if (typeof x.header_name !== "string" || !x.header_name || typeof x.descriptor_key !== "string" || !x.descriptor_key) fail(xat, "needs header_name and descriptor_key");
      const name = x.header_name.toLowerCase();
      return (h) => {
        const value = getFirst(h, name);
        return value === undefined ? (x.skip_if_absent === true ? "skip" : null) : [x.descriptor_key, value];
      };
    }
    case "metadata": {
      only(x, xat, ["descriptor_key", "metadata_key", "default_value", "source", "skip_if_absent"]);
      if (typeof x.descriptor_key !== "string" || !x.descriptor_key) fail(`${xat}.descriptor_key`, "required");
      if ((x.source ?? "DYNAMIC") !== "DYNAMIC") fail(`${xat}.source`, "the local gateway reads DYNAMIC metadata only");
      const mk = obj(x.metadata_key, `${xat}.metadata_key`);
      only(mk, `${xat}.metadata_key`, ["key", "path"]);
      if (typeof mk.key !== "string" || !mk.key) fail(`${xat}.metadata_key.key`, "required");
      const path = list(mk.path, `${xat}.metadata_key.path`).map((seg, i) => {
        only(obj(seg, `${xat}.metadata_key.path[${i}]`), `${xat}.metadata_key.path[${i}]`, ["key"]);
        return String(seg.key);
      });
      const dflt = typeof x.default_value === "string" ? x.default_value : "";
      return (_h, info) => {
        const value = metadataValue(info.dynamicMetadata as FilterMetadata, mk.key, path);
        // metadataValue(...).string_value(): a value that is not a string counts as absent.
        const str = typeof value === "string" ? value : "";
        if (str) return [x.descriptor_key, str];
        if (dflt) return [x.descriptor_key, dflt];
        return x.skip_if_absent === true ? "skip" : null;
      };
    }
    case "generic_key": {
      only(x, xat, ["descriptor_value", "descriptor_key"]);
      if (typeof x.descriptor_value !== "string") fail(`${xat}.descriptor_value`, "required");
      const key = typeof x.descriptor_key === "string" && x.descriptor_key ? x.descriptor_key : "generic_key";
      return () => [key, x.descriptor_value];
    }
    case "extension": {
      only(x, xat, ["name", "typed_config"]);
      const tc = obj(x.typed_config, `${xat}.typed_config`);
      if (tc["@type"] !== "type.googleapis.com/envoy.extensions.rate_limit_descriptors.expr.v3.Descriptor") fail(`${xat}.typed_config`, `the local gateway runs the expr descriptor only, not ${String(tc["@type"])}`);
      only(tc, `${xat}.typed_config`, ["@type", "descriptor_key", "skip_if_error", "text"]);
      const m = typeof tc.text === "string" ? FILTER_STATE_CEL.exec(tc.text) : null;
      if (!m) fail(`${xat}.typed_config.text`, "the local gateway evaluates only the CEL expression filter_state['<key>']");
      if (typeof tc.descriptor_key !== "string" || !tc.descriptor_key) fail(`${xat}.typed_config.descriptor_key`, "required");
      const key = m[1] ?? m[2];
      return (_h, _i, state) => {
        const value = state.get(key);
        if (value === undefined) return tc.skip_if_error === true ? "skip" : null;
        return [tc.descriptor_key, value.toString("utf8")];
      };
    }
    default:
      return fail(xat, "the local gateway runs the request_headers, metadata, generic_key and expr extension actions");
  }
}
