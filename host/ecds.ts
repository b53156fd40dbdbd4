// Extension config discovery (ECDS) from files, as Envoy reads an http filter's config_discovery with a
// path_config_source: the file holds a DiscoveryResponse whose one resource is a TypedExtensionConfig
// named as the filter (envoyproxy/envoy source/extensions/config_subscription/filesystem/
// filesystem_subscription_impl.cc refreshInternal; the checks below follow
// source/common/filter/config_discovery_impl.cc FilterConfigSubscription::onConfigUpdate and
// DynamicFilterConfigProviderImplBase::validateTypeUrl). Envoy does not start a listener whose
// discovered filter has no config yet and no default_config; the local gateway refuses it likewise.
import { parse } from "yaml";

const TYPED_EXTENSION_CONFIG = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig";

/** Reads an ECDS file by the path envoy.yaml names. */
export type EcdsReader = (path: string) => string;

export class EcdsError extends Error {}

/** The filter entry `{ name, typed_config }` that a config_discovery entry stands for, read from its file. */
export function discoveredFilter(f: Record<string, any>, at: string, read: EcdsReader): { name: string; typed_config: unknown; path: string } {
  const cd = f.config_discovery;
  const src = cd?.config_source;
  if (typeof src !== "object" || src === null) throw new EcdsError(`${at}.config_discovery.config_source is required`);
  const path = src.path_config_source?.path ?? src.path;
  if (typeof path !== "string" || src.ads !== undefined || src.api_config_source !== undefined) {
    throw new EcdsError(`${at}.config_discovery: the local gateway reads path_config_source only (no xDS server)`);
  }
  if (src.resource_api_version !== undefined && src.resource_api_version !== "V3" && src.resource_api_version !== 2) throw new EcdsError(`${at}.config_discovery.config_source.resource_api_version must be V3`);
  if (cd.default_config !== undefined || cd.apply_default_config_without_warming !== undefined) {
    throw new EcdsError(`${at}.config_discovery: default_config is not supported by the local gateway`);
  }
  const typeUrls: string[] = Array.isArray(cd.type_urls) ? cd.type_urls.map(String) : [];
  if (typeUrls.length === 0) throw new EcdsError(`${at}.config_discovery.type_urls must name at least one type`);
  const typed = ecdsResource(read(path), String(f.name), typeUrls, path);
  return { name: String(f.name), typed_config: typed, path };
}

/** The TypedExtensionConfig's typed_config in an ECDS file's text; throws EcdsError saying why not. */
export function ecdsResource(text: string, filterName: string, typeUrls: string[], path: string): Record<string, any> {
  let doc: any;
  try {
    doc = parse(text);
  } catch (e) {
    throw new EcdsError(`${path}: not YAML: ${(e as Error).message}`);
  }
  const resources = doc?.resources;
  if (!Array.isArray(resources) || resources.length !== 1) {
    throw new EcdsError(`${path}: Unexpected number of resources in ExtensionConfigDS response: ${Array.isArray(resources) ? resources.length : 0}`);
  }
  const r = resources[0];
  if (r?.["@type"] !== TYPED_EXTENSION_CONFIG) throw new EcdsError(`${path}: resources[0] must be a ${TYPED_EXTENSION_CONFIG}`);
  if (r.name !== filterName) throw new EcdsError(`${path}: Unexpected resource name in ExtensionConfigDS response: ${r.name} (the filter is ${filterName})`);
  const type = r.typed_config?.["@type"];
  if (!typeUrls.includes(type)) throw new EcdsError(`${path}: filter config has type URL ${type} but expect ${typeUrls.join(", ")}`);
  return r.typed_config;
}
