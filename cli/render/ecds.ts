// ECDS (extension config discovery): each Sluice wasm filter's TypedExtensionConfig in its own file,
// which Envoy watches and applies without a restart (docs/reload.md).
//
// Facts from Envoy's source (envoyproxy/envoy):
// - The HCM http_filters entry names the filter and carries config_discovery (ExtensionConfigSource,
//   api/envoy/config/core/v3/extension.proto): a config_source and the accepted type_urls.
// - A path_config_source is read by FilesystemSubscriptionImpl::refreshInternal
//   (source/extensions/config_subscription/filesystem/filesystem_subscription_impl.cc) as a
//   DiscoveryResponse: version_info plus resources (here one TypedExtensionConfig, whose name must be the
//   http filter's name: DynamicFilterConfigProviderImpl / FilterConfigSubscription::onConfigUpdate in
//   source/common/filter/config_discovery_impl.cc rejects another name, another type url or more than
//   one resource).
// - Without watched_directory Envoy watches the file for a MovedTo event only; with it, any rename into
//   the directory (an atomic `mv`, or Kubernetes' swap of the ConfigMap's ..data symlink) triggers a
//   re-read (same file, FilesystemSubscriptionImpl constructor; source/common/config/watched_directory.cc).
// - A rejected update (unparseable file, failed validation, or a wasm plugin whose onConfigure returns
//   false: proxy-wasm-cpp-host's canary in createWasm runs start + configure and fails "Failed to
//   configure base Wasm plugin", then source/extensions/filters/http/wasm/config.cc throws "Unable to
//   create Wasm HTTP filter") is logged ("Filesystem config update rejected") and the last good config
//   keeps serving. New streams get the new config; a stream keeps the filter chain it was created with.
import { WASM_TYPE_URL } from "./constants.js";

/** Where docker-compose mounts envoy/ecds (envoy.yaml) and envoy/ecds-mock (envoy.mock.yaml). */
export const ECDS_DIR = "/etc/sluice/ecds";
export const ECDS_MOCK_DIR = "/etc/sluice/ecds-mock";
export const TYPED_EXTENSION_CONFIG = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig";

/** The file a filter's configuration is rendered to, relative to envoy/ (ecds/<filter>.yaml). */
export function ecdsRelPath(filter: string, mock: boolean): string {
  return `${mock ? "ecds-mock" : "ecds"}/${filter}.yaml`;
}

/** The http_filters entry that asks Envoy for the filter's configuration from its ECDS file. */
export function discoveredFilter(filter: { name: string; file: string }, mock: boolean): Record<string, unknown> {
  const dir = mock ? ECDS_MOCK_DIR : ECDS_DIR;
  return {
    name: filter.name,
    config_discovery: {
      config_source: {
        resource_api_version: "V3",
        path_config_source: { path: `${dir}/${filter.file}.yaml`, watched_directory: { path: dir } },
      },
      // No default_config: the listener waits (warms) until the file has been read, and a filter without
      // a good config never serves with a made-up one.
      type_urls: [WASM_TYPE_URL],
    },
  };
}

/** The DiscoveryResponse a path_config_source file holds: one TypedExtensionConfig named as the filter. */
export function ecdsResponse(filter: { name: string; typed_config: unknown }, version: string): Record<string, unknown> {
  return {
    version_info: version,
    resources: [{ "@type": TYPED_EXTENSION_CONFIG, name: filter.name, typed_config: filter.typed_config }],
  };
}
