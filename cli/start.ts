// `npm start`: build the filters if needed, render gateway.yaml to envoy/envoy.yaml, and run the local
// gateway (the proxy-wasm host as an HTTP server, host/server.ts) from that envoy.yaml: the same
// filters, configuration, route, clusters, access log and admin port Envoy would use.
// A provider instance whose key variable is unset is served by the built-in mock provider
// (scripts/mocks), so a new user gets answers at once; with OPENAI_API_KEY etc. set, the real one.
//   tsx cli/start.ts [--config gateway.yaml] [--no-render] [--envoy envoy/envoy.yaml]
//                        [--port N] [--admin-port N] [--mock | --no-mock] [--no-build] [--no-watch]
// It then watches gateway.yaml and applies edits to new requests without a restart (cli/reload.ts,
// docs/reload.md); --no-watch (or --no-render) turns that off.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, existsSync, readFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { compileAccessLog } from "../host/access-log.js";
import { EnvoyConfigError, loadEnvoyConfig, mountedPath, parseEnvoyConfig, pluginOptions, vmEnvironment, type LocalGatewayConfig } from "../host/envoy-config.js";
import type { DataSource, ListenerTls } from "../host/listener-tls.js";
import { Host } from "../host/index.js";
import { HostLoadError } from "../host/errors.js";
import { JwtAuthnFilter } from "../host/native/jwt-authn.js";
import { restartNeeded } from "../host/reload.js";
import { isDeepStrictEqual } from "node:util";
import { describe as describeWatch, watchGatewayYaml, type ReloadResult } from "./reload.js";
import { startAdmin, startGateway, type ClusterTarget, type ListenerTlsOptions } from "../host/server.js";
import type { Stream } from "../host/stream.js";
import { RecentRequests, recentOf } from "../host/live/recent.js";
import { startMock, type MockServer } from "../scripts/mocks/index.js";
import { startBedrockMock, type BedrockMock } from "../scripts/mocks/bedrock.js";
import { startTokenMock, type TokenMock } from "../scripts/mocks/oauth-token.js";
import { startMetadataMock, type MetadataMock } from "../scripts/mocks/gce-metadata.js";
import type { MockKind } from "../scripts/mocks/common.js";
import { commandLine, type CommandLine } from "./command-line.js";
import { GatewayConfigError, GatewayConfigReadError, locateField } from "./gateway-config.js";
import { EnvoyValidationError, render, WASM_DIR } from "./render.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

export const MOCK_KEY_VALUE = "sluice-mock-key";

export interface LocalGatewayOptions {
  /** Path of envoy.yaml (default envoy/envoy.yaml), or its parsed form. */
  envoyYaml?: string;
  config?: LocalGatewayConfig;
  /** Override the listener / admin ports (0: any free port) and address. */
  port?: number;
  adminPort?: number;
  address?: string;
  /** The environment Envoy would run with (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** auto: mock the instances whose key variable is unset; always; never. */
  mock?: "auto" | "always" | "never";
  /** Where vm_config.code.local.filename under /etc/sluice/build points (default build/). */
  wasmDir?: string;
  /** Receives each access-log line instead of the configured path. */
  accessLog?: (line: string) => void;
  /**
   * Worker threads, as Envoy's --concurrency: each wasm filter runs one VM per worker, and a downstream
   * connection stays on the worker that accepted it (default 1).
   */
  concurrency?: number;
}

/**
 * The mcp filter's session secret (docs/mcp.md, Sessions): when its variable is unset, a random one for
 * this process, so `npm start` serves MCP at once; its sessions then end with the process and no other
 * replica can read them. Returns the variable's name and where its value came from, or null without mcp.
 */
function mcpSessionKey(cfg: LocalGatewayConfig, given: NodeJS.ProcessEnv, env: NodeJS.ProcessEnv): { env: string; generated: boolean } | null {
  const mcp = cfg.filters.find((f) => basename(f.wasmFile) === "mcp.wasm");
  if (!mcp) return null;
  const name: string = JSON.parse(mcp.configuration || "{}").session?.key_env ?? "SLUICE_MCP_SESSION_KEY";
  if (given[name]) return { env: name, generated: false };
  env[name] = randomBytes(32).toString("base64url");
  return { env: name, generated: true };
}

export interface ProviderStatus {
  instance: string;
  provider: string;
  cluster: string;
  mode: "mock" | "real";
  url: string;
  why: string;
}

export interface LocalGateway {
  url: string;
  adminUrl: string;
  host: Host;
  config: LocalGatewayConfig;
  providers: ProviderStatus[];
  /** The MCP session secret's variable, and whether it was generated for this process (unset). */
  mcpSessionKey: { env: string; generated: boolean } | null;
  mocks: Record<string, MockServer>;
  accessLogPath: string;
  close(): Promise<void>;
  /**
   * Re-reads envoy.yaml and the ECDS files it names and applies the wasm filters' new configurations
   * as Envoy's ECDS does (cli/reload.ts); envoy.yaml's static parts are reported, not applied.
   */
  reload(): Promise<ReloadResult>;
}

interface InstanceJson {
  name: string;
  provider: string;
  api_key?: string;
  api_key_env?: string;
  endpoint?: string;
  cluster?: string;
  region?: string;
  aws?: { access_key_id_env?: string; secret_access_key_env?: string; session_token_env?: string };
  token?: { source?: string; cluster: string; path: string; client_id_env?: string; client_secret_env?: string };
  api_keys_env?: string[];
}

/** The credentials npm start gives the VM and the Bedrock mock when it mocks a bedrock instance. */
const MOCK_AWS = { accessKeyId: "AKIASLUICEMOCK000000", secretAccessKey: "sluice-mock-secret-access-key" };

function wasmPath(file: string, wasmDir: string): string {
  if (file.startsWith(`${WASM_DIR}/`)) return join(wasmDir, file.slice(WASM_DIR.length + 1));
  return file;
}

/**
 * The listener's certificate, key and client CA read from where envoy.yaml names them: a path under
 * /etc/sluice/ from envoy.yaml's directory (docker compose mounts envoy/tls at /etc/sluice/tls), any
 * other path as it is. A file that cannot be read stops the start: the gateway never falls back to plain HTTP.
 */
function readListenerTls(t: ListenerTls, envoyDir: string): ListenerTlsOptions {
  const read = (d: DataSource, what: string) => {
    if ("inline" in d) return d.inline;
    const p = mountedPath(d.filename, envoyDir);
    try {
      return readFileSync(p, "utf8");
    } catch (e) {
      throw new EnvoyConfigError(`listener TLS ${what} ${d.filename}${p === d.filename ? "" : ` (read as ${p})`}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  return {
    cert: read(t.certificateChain, "certificate chain"),
    key: read(t.privateKey, "private key"),
    ...(t.trustedCa ? { ca: read(t.trustedCa, "client CA") } : {}),
    requireClientCertificate: t.requireClientCertificate,
    sanMatchers: t.sanMatchers,
    minVersion: t.minVersion,
    maxVersion: t.maxVersion,
    alpn: t.alpn,
  };
}

export async function startLocalGateway(opts: LocalGatewayOptions = {}): Promise<LocalGateway> {
  const cfg = opts.config ?? loadEnvoyConfig(opts.envoyYaml ?? join(root, "envoy", "envoy.yaml"));
  const tls = cfg.listener.tls ? readListenerTls(cfg.listener.tls, dirname(opts.envoyYaml ?? join(root, "envoy", "envoy.yaml"))) : undefined;
  // Whether a key is set is decided on the environment as given: mocking an instance sets its
  // variable for the VM, which must not make the next instance sharing that variable look real.
  const given = opts.env ?? process.env;
  const env = { ...given };
  const mockMode = opts.mock ?? "auto";
  const wasmDir = opts.wasmDir ?? join(root, "build");
  const concurrency = opts.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new Error(`concurrency must be an integer from 1 to 64, not ${concurrency}`);
  const sessionKey = mcpSessionKey(cfg, given, env);

  // Decide, per ai-proxy instance, whether the real provider or a mock answers.
  const aiProxy = cfg.filters.find((f) => basename(f.wasmFile) === "ai-proxy.wasm");
  const instances: InstanceJson[] = aiProxy ? (JSON.parse(aiProxy.configuration || "{}").instances ?? []) : [];
  // ai-router's embeddings instance, when it has a cluster of its own (not a provider instance's):
  // mocked like a provider when its key variable is unset (the OpenAI mock serves /v1/embeddings).
  const aiRouter = cfg.filters.find((f) => basename(f.wasmFile) === "ai-router.wasm");
  const emb = aiRouter ? JSON.parse(aiRouter.configuration || "{}").embeddings : undefined;
  if (emb?.cluster && !instances.some((i) => (i.cluster ?? i.name) === emb.cluster)) {
    instances.push({ name: emb.cluster, provider: "openai", cluster: emb.cluster, api_key_env: emb.api_key_env, api_key: emb.api_key });
  }
  const clusters: Record<string, ClusterTarget> = {};
  for (const c of Object.values(cfg.clusters)) clusters[c.name] = { url: c.url, connectTimeoutMs: c.connectTimeoutMs, bufferLimitBytes: c.bufferLimitBytes };
  const providers: ProviderStatus[] = [];
  const mocks: Record<string, MockServer> = {};
  const awsMocks: BedrockMock[] = [];
  const tokenMocks: TokenMock[] = [];
  const metadataMocks: MetadataMock[] = [];
  let stopJwks = () => {};
  const cleanup = async () => {
    stopJwks();
    for (const m of Object.values(mocks)) await m.close();
    for (const m of awsMocks) await m.close();
    for (const m of tokenMocks) await m.close();
    for (const m of metadataMocks) await m.close();
  };
  // A mock takes the place of a cluster (its connect timeout and buffer limit kept).
  const mockCluster = (name: string, url: string) => {
    clusters[name] = { url, connectTimeoutMs: clusters[name]?.connectTimeoutMs, bufferLimitBytes: clusters[name]?.bufferLimitBytes };
  };
  // A bedrock instance signs with AWS credentials, not a key: mocked when its access key variable is
  // unset, by the Bedrock mock, which checks the signature made with the mock's credentials.
  const bedrockInstance = async (inst: InstanceJson, cluster: string, real: string) => {
    const idEnv = inst.aws?.access_key_id_env ?? "AWS_ACCESS_KEY_ID";
    const secretEnv = inst.aws?.secret_access_key_env ?? "AWS_SECRET_ACCESS_KEY";
    const set = !!given[idEnv];
    const mock = mockMode === "always" || (mockMode === "auto" && !set);
    const why = mockMode === "always" ? "--mock" : `${idEnv} ${set ? "set" : "not set"}`;
    if (!mock) {
      providers.push({ instance: inst.name, provider: inst.provider, cluster, mode: "real", url: real, why });
      return;
    }
    const host = inst.endpoint ? new URL(inst.endpoint).hostname : "";
    const region = inst.region ?? (/^bedrock-runtime\.([a-z0-9-]+)\.amazonaws\.com$/.exec(host)?.[1] ?? "us-east-1");
    const m = await startBedrockMock({ credentials: MOCK_AWS, region });
    awsMocks.push(m);
    mockCluster(cluster, m.url);
    env[idEnv] = MOCK_AWS.accessKeyId;
    env[secretEnv] = MOCK_AWS.secretAccessKey;
    providers.push({ instance: inst.name, provider: inst.provider, cluster, mode: "mock", url: m.url, why });
  };
  // A vertex instance's tokens come from a GCE metadata server, which exists only on Google Cloud:
  // mocked (the Gemini mock serves Vertex's paths, a metadata mock the tokens) unless --no-mock.
  const vertexInstance = async (inst: InstanceJson, cluster: string, real: string) => {
    const e = inst.token!;
    if (mockMode === "never") {
      providers.push({ instance: inst.name, provider: inst.provider, cluster, mode: "real", url: real, why: "--no-mock" });
      return;
    }
    const m = await startMock(inst.provider === "vertex" ? "gemini" : "anthropic", { port: 0, maxRecorded: 16 });
    mocks[inst.name] = m;
    const md = await startMetadataMock();
    metadataMocks.push(md);
    mockCluster(cluster, m.url);
    mockCluster(e.cluster, md.url);
    providers.push({ instance: inst.name, provider: inst.provider, cluster, mode: "mock", url: m.url, why: "the metadata server is Google Cloud's (--no-mock to use it)" });
  };
  // An azure-openai instance with Entra ID: mocked when its client id variable is unset, by the
  // Azure OpenAI mock and a token endpoint mock that knows the mock client the VM is given.
  const entraInstance = async (inst: InstanceJson, cluster: string, real: string) => {
    const e = inst.token!;
    const idEnv = e.client_id_env ?? "AZURE_CLIENT_ID";
    const secretEnv = e.client_secret_env ?? "AZURE_CLIENT_SECRET";
    const set = !!given[idEnv];
    const mock = mockMode === "always" || (mockMode === "auto" && !set);
    const why = mockMode === "always" ? "--mock" : `${idEnv} ${set ? "set" : "not set"}`;
    if (!mock) {
      providers.push({ instance: inst.name, provider: inst.provider, cluster, mode: "real", url: real, why });
      return;
    }
    const m = await startMock("azure-openai", { port: 0, maxRecorded: 16 });
    mocks[inst.name] = m;
    const idp = await startTokenMock({ clientId: "sluice-mock-client", clientSecret: "sluice-mock-secret", path: e.path });
    tokenMocks.push(idp);
    mockCluster(cluster, m.url);
    mockCluster(e.cluster, new URL(idp.url).origin);
    env[idEnv] = "sluice-mock-client";
    env[secretEnv] = "sluice-mock-secret";
    providers.push({ instance: inst.name, provider: inst.provider, cluster, mode: "mock", url: m.url, why });
  };
  try {
    for (const inst of instances) {
      const cluster = inst.cluster ?? inst.name;
      const real = clusters[cluster]?.url ?? "(no such cluster)";
      let mock: boolean;
      let why: string;
      if (inst.provider === "bedrock" || inst.provider === "bedrock-anthropic") {
        await bedrockInstance(inst, cluster, real);
        continue;
      }
      if ((inst.provider === "vertex" || inst.provider === "vertex-anthropic") && inst.token) {
        await vertexInstance(inst, cluster, real);
        continue;
      }
      if (inst.token && (inst.token.source ?? "client_credentials") === "client_credentials") {
        await entraInstance(inst, cluster, real);
        continue;
      }
      // A key pool is decided by its first variable, and mocked with every variable set.
      if (inst.api_keys_env?.length && !inst.api_key_env) inst.api_key_env = inst.api_keys_env[0];
      if (mockMode === "always") [mock, why] = [true, "--mock"];
      else if (mockMode === "never") [mock, why] = [false, inst.api_key_env ? `${inst.api_key_env} ${given[inst.api_key_env] ? "set" : "NOT set"}` : "key inline or none"];
      else if (inst.api_key_env) [mock, why] = given[inst.api_key_env] ? [false, `${inst.api_key_env} set`] : [true, `${inst.api_key_env} not set`];
      else [mock, why] = [false, inst.api_key ? "key inline" : "no key needed"];
      if (!mock) {
        providers.push({ instance: inst.name, provider: inst.provider, cluster, mode: "real", url: real, why });
        continue;
      }
      // The mock answers at the provider's own paths; an openai-compatible server keeps its base path.
      const basePath = inst.provider === "openai-compatible" && inst.endpoint ? new URL(inst.endpoint).pathname.replace(/\/+$/, "") || "/" : undefined;
      // The gateway reads nothing the mock records: keep only the last few requests (a long run of
      // 256 KB prompts grew the process by every body otherwise; issue 13).
      const m = await startMock(inst.provider as MockKind, { port: 0, maxRecorded: 16, ...(basePath ? { basePath } : {}) });
      mocks[inst.name] = m;
      mockCluster(cluster, m.url);
      // The filter reads the key through the VM's environment, as in Envoy; the mock accepts any key.
      if (inst.api_keys_env) {
        inst.api_keys_env.forEach((k, n) => {
          if (!env[k]) env[k] = `${MOCK_KEY_VALUE}-${n + 1}`;
        });
      } else if (inst.api_key_env && !env[inst.api_key_env]) env[inst.api_key_env] = MOCK_KEY_VALUE;
      providers.push({ instance: inst.name, provider: inst.provider, cluster, mode: "mock", url: m.url, why });
    }

    const hostFor = (filters: LocalGatewayConfig["filters"], storesOf?: Host) => Host.create({
      storesOf,
      filters: filters.map((f) => ({ ...pluginOptions(f, wasmPath(f.wasmFile, wasmDir), vmEnvironment(f, env)), workers: concurrency })),
      clusters: Object.fromEntries(Object.entries(clusters).map(([k, v]) => [k, { url: v.url, connectTimeoutMs: v.connectTimeoutMs }])),
      // Each stream's buffer limit: the listener's, raised by the route's request_body_buffer_limit.
      bufferLimitBytes: Math.max(cfg.listener.bufferLimitBytes, cfg.route.requestBodyBufferLimitBytes ?? 0),
      localReplyConfig: cfg.localReply ?? undefined,
      histogramBuckets: cfg.histogramBuckets,
      // What xds.* serves: envoy.yaml's route, virtual host, clusters' metadata, node and listener.
      route: { ...cfg.routeInfo, clusterHeader: cfg.route.clusterHeader },
      clusterInfo: Object.fromEntries(Object.values(cfg.clusters).map((c) => [c.name, { metadata: c.metadata, hostMetadata: c.hostMetadata, hostLocality: c.hostLocality }])),
      node: cfg.node,
      listener: cfg.listenerInfo,
      // Envoy's native filters (jwt_authn, rbac, cors, local_ratelimit, ext_authz) before the wasm ones.
      nativeFilters: cfg.natives,
    });
    const host = await hostFor(cfg.filters);
    // jwt_authn's remote JWKS with async_fetch: fetched now through their clusters, and the listener
    // opens once every first fetch has ended (fast_listener false).
    const jwtFilters = cfg.natives.filter((n): n is JwtAuthnFilter => n instanceof JwtAuthnFilter);
    stopJwks = () => jwtFilters.forEach((j) => j.stopAsyncFetch());
    await Promise.all(jwtFilters.map((j) => j.startAsyncFetch(host)));

    let writeLine = opts.accessLog;
    const accessLogPath = opts.accessLog ? "(callback)" : cfg.accessLog?.path ?? "(none)";
    let logFile: ReturnType<typeof createWriteStream> | null = null;
    if (!writeLine && cfg.accessLog) {
      const p = cfg.accessLog.path;
      if (p === "/dev/stdout") writeLine = (l) => void process.stdout.write(l);
      else if (p === "/dev/stderr") writeLine = (l) => void process.stderr.write(l);
      else {
        logFile = createWriteStream(p, { flags: "a" });
        writeLine = (l) => void logFile!.write(l);
      }
    }
    const format = cfg.accessLog ? compileAccessLog(cfg.accessLog.format) : null;
    const writeAccessLog =
      format && writeLine
        ? (s: Stream, status: number, extra: { cluster: string | null }) => {
            const done = s.info.completeNs ?? s.info.startTimeNs;
            writeLine!(
              format({
                startTimeNs: s.info.startTimeNs,
                requestHeaders: s.getCurrentRequestHeaders(),
                responseHeaders: s.getCurrentResponseHeaders(),
                responseCode: status,
                responseCodeDetails: s.info.responseCodeDetails,
                durationMs: Number((done - s.info.startTimeNs) / 1_000_000n),
                protocol: s.info.protocol,
                bytesReceived: s.info.bytesReceived,
                bytesSent: s.info.bytesSent,
                upstreamCluster: extra.cluster,
                responseFlags: s.info.responseFlags,
                upstreamHost: s.info.upstream?.address ?? null,
                upstreamTransportFailureReason: s.info.upstream?.transportFailureReason ?? null,
                filterState: (key) => s.filterState.get(key)?.toString("utf8"),
              }),
            );
          }
        : undefined;
    // The admin port's live page lists the last requests, whether or not envoy.yaml has an access log.
    const recent = new RecentRequests();
    const accessLog = (s: Stream, status: number, extra: { cluster: string | null }) => {
      recent.add(recentOf(s, status));
      writeAccessLog?.(s, status, extra);
    };

    const gateway = await startGateway({
      host,
      ...(tls ? { tls } : {}),
      port: opts.port ?? cfg.listener.port,
      address: opts.address ?? cfg.listener.address,
      clusterHeader: cfg.route.clusterHeader,
      clusters,
      workers: concurrency,
      routeTimeoutMs: cfg.route.timeoutMs,
      idleTimeoutMs: cfg.route.idleTimeoutMs,
      firstByteTimeoutMs: cfg.route.firstByteTimeoutMs,
      listenerBufferLimitBytes: cfg.listener.bufferLimitBytes,
      routeRequestBodyBufferLimitBytes: cfg.route.requestBodyBufferLimitBytes ?? undefined,
      accessLog,
    });
    let closing = false;
    let current = host;
    const admin = cfg.admin || opts.adminPort !== undefined
      ? await startAdmin({
          get host() {
            return current;
          },
          port: opts.adminPort ?? cfg.admin?.port ?? 9901,
          address: cfg.admin?.address ?? "127.0.0.1",
          statsTags: cfg.statsTags,
          ready: () => !closing,
          recent,
        })
      : null;
    let closed: Promise<void> | null = null;
    let running = cfg;
    const reload = async (): Promise<ReloadResult> => {
      const none = Promise.resolve();
      if (opts.config) return { applied: [], refused: [], restartNeeded: [], error: "started from a parsed configuration: nothing to re-read", retired: none };
      let next: LocalGatewayConfig;
      try {
        next = loadEnvoyConfig(opts.envoyYaml ?? join(root, "envoy", "envoy.yaml"));
      } catch (e) {
        return { applied: [], refused: [], restartNeeded: [], error: (e as Error).message, retired: none };
      }
      const restart = restartNeeded(running, next);
      // Each filter in the running chain takes its new configuration, as each ECDS subscription does on
      // its own; filters added or removed need the listener (a restart).
      const byName = new Map(next.filters.map((f) => [f.filterName, f]));
      let filters = running.filters.map((f) => byName.get(f.filterName) ?? f);
      const refused: ReloadResult["refused"] = [];
      for (;;) {
        const changed = filters.filter((f, i) => !isDeepStrictEqual(f, running.filters[i]));
        if (changed.length === 0) return { applied: [], refused, restartNeeded: restart, retired: none };
        try {
          const fresh = await hostFor(filters, current);
          const retired = gateway.setHost(fresh);
          current = fresh;
          running = { ...running, filters };
          return { applied: changed.map((f) => f.name), refused, restartNeeded: restart, retired };
        } catch (e) {
          // Envoy: the update is rejected ("Unable to create Wasm HTTP filter": proxy-wasm's canary
          // configure failed) and the last good configuration keeps serving.
          if (!(e instanceof HostLoadError)) throw e;
          const i = filters.findIndex((f) => f.name === e.filter);
          if (i < 0 || filters[i] === running.filters[i]) throw e;
          refused.push({ filter: e.filter, why: [e.message, ...e.logs].join(": ") });
          filters = filters.map((f, j) => (j === i ? running.filters[i] : f));
        }
      }
    };
    return {
      url: gateway.url,
      adminUrl: admin?.url ?? "",
      get host() {
        return current;
      },
      get config() {
        return running;
      },
      reload,
      providers,
      mcpSessionKey: sessionKey,
      mocks,
      accessLogPath,
      close() {
        closed ??= (async () => {
          closing = true;
          await gateway.close();
          await admin?.close();
          current.close();
          await cleanup();
          if (logFile) await new Promise<void>((r) => logFile!.end(() => r()));
        })();
        return closed;
      },
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

export { parseEnvoyConfig };

// ------------------------------------------------------------------------------------------ CLI

const USAGE = `usage: npm start -- [options]
Builds the filters if needed, renders gateway.yaml and runs the local gateway (the proxy-wasm host
standing in for Envoy) from the rendered envoy.yaml.

  --concurrency <n>   worker threads, as Envoy's --concurrency: one VM per filter per worker, a client
                      connection stays on one worker (default 1; Envoy's default is the machine's cores)
  --port <n>          the listener's port (default: gateway.yaml listener.port, 10000)
  --admin-port <n>    the admin port: /stats/prometheus, /ready (default: gateway.yaml admin.port, 9901)
  --config <file>     the gateway configuration to render (default: gateway.yaml)
  --envoy <file>      the envoy.yaml to render to and run (default: envoy/envoy.yaml)
  --no-render         run --envoy as it is, without rendering
  --no-build          use build/ as it is, without rebuilding filters older than their sources
  --mock              serve every provider with the built-in mock, keys set or not
  --no-mock           never mock: every provider is the real one, its key variable set or not
                      (default: mock exactly the providers whose key variable is unset)
  -h, --help          this text`;

let cli: CommandLine | undefined;
function flag(name: string): boolean {
  return cli?.values[name] === true;
}
function option(name: string): string | undefined {
  return cli?.values[name] as string | undefined;
}
function portOption(name: string): number | undefined {
  const v = option(name);
  if (v === undefined) return undefined;
  if (!/^\d{1,5}$/.test(v) || Number(v) > 65535) {
    console.error(`start: --${name} ${v} is not a port number (0-65535)\n\n${USAGE}`);
    process.exit(2);
  }
  return Number(v);
}

/**
 * A filter that refused its configuration names the field in its own JSON ("ai-router.rules[0].when.regex:
 * ..."); the same field in gateway.yaml, where render took it from (cli/render.ts).
 */
export function gatewayField(filterField: string): string | null {
  const m = /^(key-auth|identity|mcp|a2a|ai-router|ai-guard|ai-cache|ai-ratelimit|ai-proxy)(?:\.(.*))?$/.exec(filterField);
  if (!m) return null;
  const rest = m[2] ?? "";
  const join = (base: string) => (rest ? `${base}.${rest}` : base);
  switch (m[1]) {
    case "ai-router":
      return join("filters.ai_router");
    case "ai-ratelimit":
      return join("filters.ai_ratelimit");
    case "ai-guard":
      return join("filters.ai_guard");
    case "ai-cache":
      // The embeddings instance is ai-router's; ttl is given as a duration.
      if (/^semantic\.(cluster|authority|path|model|api_key|api_key_env|dimensions)$/.test(rest)) return "filters.ai_router.embeddings";
      return rest === "ttl_ms" ? "filters.ai_cache.ttl" : join("filters.ai_cache");
    case "key-auth":
      // virtual_keys come from the keys file, which gateway.yaml's virtual_keys names.
      return rest.startsWith("consumers") ? rest : rest.startsWith("virtual_keys") ? "virtual_keys" : join("filters.key_auth");
    case "identity":
      return join("identity");
    case "mcp":
      return mcpField(rest);
    case "a2a":
      return a2aField(rest);
    default:
      if (/^instances\[/.test(rest)) return rest.replace(/^instances/, "providers");
      if (/^pools\[/.test(rest)) return rest;
      return join("filters.ai_proxy");
  }
}

/** The a2a filter's JSON field (cli/a2a-config.ts a2aJson) -> where gateway.yaml gives it. */
function a2aField(rest: string): string {
  if (rest === "cluster_header") return "filters.ai_proxy.cluster_header";
  if (rest.startsWith("auth_scheme")) return "filters.key_auth.header";
  const r = rest
    .replace(/^(agents\[\d+\])\.card_path$/, "$1.card_url")
    .replace(/^(agents\[\d+\])\.(cluster|authority|path)$/, "$1.url")
    .replace(/^card_ttl_ms$/, "card_ttl")
    .replace(/^timeout_ms$/, "timeout");
  return r ? `a2a.${r}` : "a2a";
}

/** The mcp filter's JSON field (cli/mcp-config.ts mcpJson) -> where gateway.yaml gives it. */
function mcpField(rest: string): string {
  if (rest === "cluster_header") return "filters.ai_proxy.cluster_header";
  const r = rest
    .replace(/^(servers\[\d+\]\.oauth)\.(cluster|authority|path)$/, "$1.token_url")
    .replace(/^(servers\[\d+\])\.(cluster|authority|path)$/, "$1.url")
    .replace(/^session\.ttl_ms$/, "session.ttl")
    .replace(/^timeout_ms$/, "timeout");
  return r ? `mcp.${r}` : "mcp";
}

/** "gateway.yaml:10:18: filters.ai_router.rules[0].when.regex: ..." for each configuration refusal in a
 * filter's load log, or null when none names a field. */
export function configRefusals(logs: string[], configPath: string): string[] | null {
  let text: string;
  try {
    text = readFileSync(configPath, "utf8");
  } catch {
    return null;
  }
  const out: string[] = [];
  for (const l of logs) {
    const m = /^(\S+): invalid configuration: ([^:\s]+): (.*)$/.exec(l);
    const field = m ? gatewayField(m[2]) : null;
    if (!m || !field) continue;
    const at = locateField(text, field);
    out.push(`${basename(configPath)}:${at.line}:${at.column}: ${field}: ${m[3]} (${m[1]} refused its configuration)`);
  }
  return out.length ? out : null;
}

async function main(): Promise<void> {
  cli = commandLine("start", USAGE, {
    port: { type: "string" },
    "admin-port": { type: "string" },
    config: { type: "string" },
    envoy: { type: "string" },
    "no-render": { type: "boolean" },
    "no-build": { type: "boolean" },
    concurrency: { type: "string" },
    mock: { type: "boolean" },
    "no-mock": { type: "boolean" },
  });
  const port = portOption("port");
  const adminPort = portOption("admin-port");
  const concurrencyText = option("concurrency");
  if (concurrencyText !== undefined && !/^([1-9]|[1-5]\d|6[0-4])$/.test(concurrencyText)) {
    console.error(`start: --concurrency ${concurrencyText} is not a worker count (1-64)\n\n${USAGE}`);
    process.exit(2);
  }
  if (!flag("no-build")) {
    const build = spawnSync(process.execPath, [join(root, "scripts", "build.mjs"), "--if-needed"], { stdio: "inherit" });
    if (build.status !== 0) process.exit(build.status ?? 1);
  }
  const envoyYaml = resolve(option("envoy") ?? join(root, "envoy", "envoy.yaml"));
  const configPath = resolve(option("config") ?? join(root, "gateway.yaml"));
  if (!flag("no-render")) {
    try {
      for (const w of render({ config: configPath, outDir: dirname(envoyYaml) }).cfg.warnings) console.warn(`warning: ${w}`);
    } catch (e) {
      if (e instanceof GatewayConfigReadError) {
        console.error(e.message);
        process.exit(1);
      }
      if (e instanceof GatewayConfigError) {
        console.error(`${e.file} is not valid; nothing was written.\n${e.message}`);
        process.exit(1);
      }
      if (e instanceof EnvoyValidationError) {
        console.error(`the rendered Envoy configuration does not validate against Envoy's API; nothing was written.\n${e.message}`);
        process.exit(1);
      }
      throw e;
    }
  }
  if (!existsSync(envoyYaml)) {
    console.error(`${envoyYaml} does not exist (run npm run render)`);
    process.exit(1);
  }
  let gw: LocalGateway;
  try {
    gw = await startLocalGateway({
      envoyYaml,
      port,
      adminPort,
      ...(concurrencyText !== undefined ? { concurrency: Number(concurrencyText) } : {}),
      mock: flag("mock") ? "always" : flag("no-mock") ? "never" : "auto",
    });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { logs?: string[] };
    if (err.code === "EADDRINUSE") console.error(`cannot listen: ${err.message} (another gateway running? use --port / --admin-port)`);
    else {
      const refusals = !flag("no-render") && err.logs ? configRefusals(err.logs, configPath) : null;
      if (refusals) console.error(`${refusals.join("\n")}\nnothing was started.`);
      else console.error(`cannot start: ${err.message}${err.logs?.length ? "\n  " + err.logs.join("\n  ") : ""}`);
    }
    process.exit(1);
  }
  const rel = envoyYaml.startsWith(root) ? envoyYaml.slice(root.length + 1) : envoyYaml;
  const lines = [
    `Sluice local gateway, running ${rel} (filters: ${[...gw.config.natives.map((n) => n.name), ...gw.config.filters.map((f) => f.name)].join(" -> ")} -> router)`,
    ...gw.config.notRun.map((n) => `  not run     ${n.name}: ${n.why}`),
    `  listening   ${gw.url}   (OpenAI API under /v1, Anthropic Messages at /v1/messages)`,
    `  admin       ${gw.adminUrl}/stats/prometheus   ${gw.adminUrl}/ready`,
    `  live page   ${gw.adminUrl}/`,
    `  access log  ${gw.accessLogPath}`,
    "  providers",
    ...gw.providers.map((p) => `    ${p.instance.padEnd(14)} ${p.mode === "mock" ? "MOCK" : "real"}  ${p.url.padEnd(40)} (${p.why})`),
  ];
  const mcp = gw.config.filters.find((f) => basename(f.wasmFile) === "mcp.wasm");
  if (mcp) {
    const m = JSON.parse(mcp.configuration || "{}") as { path?: string; servers?: { name: string; cluster: string }[] };
    lines.push(`  mcp         ${gw.url}${m.path ?? "/mcp"}   servers: ${(m.servers ?? []).map((s) => `${s.name} (${gw.config.clusters[s.cluster]?.url ?? "no cluster"})`).join(", ")}`);
  }
  const a2a = gw.config.filters.find((f) => basename(f.wasmFile) === "a2a.wasm");
  if (a2a) {
    const c = JSON.parse(a2a.configuration || "{}") as { path_prefix?: string; agents?: { name: string; cluster: string }[] };
    for (const agent of c.agents ?? []) {
      lines.push(`  a2a         ${gw.url}${c.path_prefix ?? "/a2a"}/${agent.name}   (card at .../.well-known/agent-card.json; agent ${gw.config.clusters[agent.cluster]?.url ?? "no cluster"})`);
    }
  }
  if (gw.mcpSessionKey?.generated) {
    lines.push(`  mcp         sessions signed with a random key for this process (${gw.mcpSessionKey.env} not set; set it to share sessions between replicas)`);
  }
  if (gw.providers.some((p) => p.mode === "mock")) lines.push("  Mocked providers answer with an echo of your prompt. Set their key variables for the real ones.");
  lines.push(
    "",
    `  curl ${gw.url}/v1/chat/completions -H 'authorization: Bearer sk-sluice-demo' -H 'content-type: application/json' \\`,
    `       -d '{"model":"gpt-4o","messages":[{"role":"user","content":"Hello"}]}'`,
    ...(gw.config.filters.some((f) => basename(f.wasmFile) === "ai-router.wasm")
      ? ["  (with gateway.yaml's ai-router example, \"model\":\"auto\" lets the router pick the pool: the response header x-sluice-route names the rule)"]
      : []),
    "",
    "  Ctrl-C stops (in-flight requests finish first).",
  );
  // Edits to gateway.yaml are re-rendered and applied to new streams without a restart (docs/reload.md).
  const watcher = flag("no-render") || flag("no-watch")
    ? null
    : watchGatewayYaml({ config: configPath, outDir: dirname(envoyYaml), gateway: gw, onEvent: (e) => console.error(describeWatch(e, basename(configPath)).join("\n")) });
  if (watcher) lines.push(`  Watching ${basename(configPath)} (and its keys file): edits apply to new requests without a restart (--no-watch to turn off).`);
  console.error(lines.join("\n"));
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) {
      console.error(`${sig} again: exiting now`);
      process.exit(1);
    }
    stopping = true;
    watcher?.close();
    console.error(`${sig}: draining (in-flight requests finish; ${sig} again to exit at once)`);
    gw.close().then(
      () => process.exit(0),
      (e) => {
        console.error(e);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
