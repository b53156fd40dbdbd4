// envoy.filters.http.header_mutation (envoy.extensions.filters.http.header_mutation.v3.HeaderMutation)
// in the local gateway: the part the renderer writes (sluice.identity_headers, cli/render/
// native-filters.ts identityHeadersFilter), request header removals.
// - HeaderMutation::decodeHeaders (source/extensions/filters/http/header_mutation/header_mutation.cc)
//   applies mutations.request_mutations in order to the request headers; a `remove` entry is
//   source/common/http/header_mutation.cc RemoveMutation, which removes every value of the name
//   (HeaderMap::remove). The name is lower-cased as Envoy's LowerCaseString does.
// Everything else the filter can do (append, remove_on_match, query parameter and response mutations,
// a HeaderMutationPerRoute) is refused by name rather than ignored.
import { checkType, fail, list, obj, only, type NativeCallbacks, type NativeFilter, type NativeStreamFilter } from "./filter.js";
import { removeHeader } from "./match.js";

export const HEADER_MUTATION_TYPE = "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation";
export const HEADER_MUTATION_PER_ROUTE_TYPE = "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutationPerRoute";

// HTTP_HEADER_NAME (validate.proto, strict: false): no NUL, CR or LF, not empty.
const HEADER_NAME = /^[^\0\r\n]+$/;

export class HeaderMutationFilter implements NativeFilter {
  /** Request header names to remove, lower case, in order. */
  readonly removals: string[];

  constructor(
    readonly name: string,
    typedConfig: unknown,
    at = "typed_config",
    perRoute?: { config: unknown; at: string },
  ) {
    const c = obj(typedConfig, at);
    checkType(c, HEADER_MUTATION_TYPE, at);
    only(c, at, ["@type", "mutations"]);
    if (perRoute) fail(perRoute.at, "the local gateway does not run a HeaderMutationPerRoute (refused rather than ignored)");
    const m = c.mutations === undefined ? {} : obj(c.mutations, `${at}.mutations`);
    only(m, `${at}.mutations`, ["request_mutations"]);
    this.removals = list(m.request_mutations, `${at}.mutations.request_mutations`).map((r, i) => {
      const rat = `${at}.mutations.request_mutations[${i}]`;
      const o = obj(r, rat);
      only(o, rat, ["remove"]);
      if (typeof o.remove !== "string" || !HEADER_NAME.test(o.remove)) fail(`${rat}.remove`, "expected a header name");
      return o.remove.toLowerCase();
    });
  }

  newStreamFilter(_cb: NativeCallbacks): NativeStreamFilter {
    return {
      decodeHeaders: (headers) => {
        for (const name of this.removals) removeHeader(headers, name);
        return "continue";
      },
    };
  }
}
