/**
 * Configuration of the control plane, from RBS_* environment variables with local defaults.
 * Services take the resulting object, so tests build one directly.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import type { SessionTimeouts, VolumeTimeouts } from './domain';
import { splitHostPort } from './host-port';
import { DEFAULT_KEEPALIVE_MS, checkKeepaliveMs } from './grpc/keepalive';
import { type KubernetesBackendConfig, kubernetesConfigFromEnv } from './compute/kubernetes/config';
import { FILESTORE_VARIABLES, filestoreConfigFromEnv, filestoreConfigured } from './compute/kubernetes/filestore-config';
import type { WorkspaceStorageConfig } from './filestore/config';
import { oidcConfigFromEnv, type OidcConfig } from './oidc/config';
import { type TemporalAuth, temporalAuthFromEnv } from './temporal/config';

export type StoreConfig = { kind: 'sqlite'; file: string } | { kind: 'spanner'; projectId: string; instanceId: string; databaseId: string };

/**
 * What runs sessions: local processes, or pods in the cluster of the default kubeconfig, whose
 * volumes may be Filestore instances RBS checks, backs up and reports (null: the StorageClass decides).
 */
export type BackendConfig = { kind: 'local' } | { kind: 'kubernetes'; kubernetes: KubernetesBackendConfig; filestore: WorkspaceStorageConfig | null };

/**
 * Per-user maxima. Sessions and volumes are counted from the store; GetServer calls and WatchSession
 * streams by each orchestrator replica on its own.
 */
export interface LimitsConfig {
  /** Sessions not ENDED or FAILED, suspended ones included. */
  activeSessions: number;
  /** Distinct volumes that still exist (a volume outlives its sessions until it expires). */
  retainedVolumes: number;
  getServerPerMinute: number;
  watchStreams: number;
}

export interface RbsConfig {
  /** Local state: CA, SQLite store, namespaces and volumes of the local backend. */
  home: string;
  /** `auth`: plaintext (dev), a client certificate, or an API key (lib/temporal/config.ts). */
  temporal: { address: string; namespace: string; taskQueue: string; auth: TemporalAuth };
  orchestrator: { listen: string };
  /**
   * Who signs certificates. With an address, the signer service (which alone holds the CA key), and
   * this service presents its own certificate from `serviceTlsDir`; without, the CA in RBS_HOME/pki
   * in-process (one machine, tests).
   */
  signer: {
    address: string | null;
    listen: string;
    serviceTlsDir: string | null;
    /** The signer only: the service in its pod whose certificate it keeps in `serviceTlsDir`. */
    publishFor: 'orchestrator' | 'worker' | null;
  };
  certificates: { proxyValidityMs: number; agentValidityMs: number };
  store: StoreConfig;
  backend: BackendConfig;
  session: SessionTimeouts;
  volume: VolumeTimeouts;
  agentReadyTimeoutMs: number;
  /** `endedRowRetentionMs`: how long the store keeps the rows of ended sessions and removed volumes. */
  cleanup: { intervalMs: number; orphanGraceMs: number; endedRowRetentionMs: number };
  limits: LimitsConfig;
  /** Login with OpenID Connect; null: no issuer, only the single-user local stack's `rbs login --user`. */
  oidc: OidcConfig | null;
  /** How quiet a client's connection (proxy to agent or orchestrator) may be before it is pinged (lib/grpc/keepalive). */
  keepaliveMs: number;
  /** host:port of each service's Prometheus endpoint (GET /metrics); null: none. */
  metrics: { orchestrator: string | null; worker: string | null };
}

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): RbsConfig {
  const home = path.resolve(env.RBS_HOME ?? path.join(os.homedir(), '.rbs'));
  const int = (name: string, fallback: number) => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, got '${raw}'`);
    return value;
  };
  const storeKind = env.RBS_STORE ?? 'sqlite';
  let store: StoreConfig;
  if (storeKind === 'sqlite') {
    store = { kind: 'sqlite', file: path.join(home, 'sessions.sqlite') };
  } else if (storeKind === 'spanner') {
    store = {
      kind: 'spanner',
      projectId: env.RBS_SPANNER_PROJECT ?? 'rbs-local',
      instanceId: env.RBS_SPANNER_INSTANCE ?? 'rbs',
      databaseId: env.RBS_SPANNER_DATABASE ?? 'rbs',
    };
  } else {
    throw new Error(`RBS_STORE must be 'sqlite' or 'spanner', got '${storeKind}'`);
  }
  const backendKind = env.RBS_BACKEND || 'local';
  let backend: BackendConfig;
  if (backendKind === 'local') {
    if (filestoreConfigured(env))
      throw new Error(`${FILESTORE_VARIABLES.join(', ')} configure the volumes of RBS_BACKEND=kubernetes, not of the local backend`);
    backend = { kind: 'local' };
  } else if (backendKind === 'kubernetes') {
    const kubernetes = kubernetesConfigFromEnv(env);
    backend = { kind: 'kubernetes', kubernetes, filestore: filestoreConfigFromEnv(env, kubernetes.storageClass) };
  } else {
    throw new Error(`RBS_BACKEND must be 'local' or 'kubernetes', got '${backendKind}'`);
  }
  return {
    home,
    temporal: {
      address: env.RBS_TEMPORAL_ADDRESS ?? '127.0.0.1:7233',
      namespace: env.RBS_TEMPORAL_NAMESPACE ?? 'default',
      taskQueue: env.RBS_TASK_QUEUE ?? 'rbs-sessions',
      auth: temporalAuthFromEnv(env),
    },
    orchestrator: { listen: env.RBS_ORCHESTRATOR_LISTEN ?? '127.0.0.1:7443' },
    metrics: { orchestrator: metricsListen(env, 'RBS_ORCHESTRATOR_METRICS_LISTEN'), worker: metricsListen(env, 'RBS_WORKER_METRICS_LISTEN', false) },
    signer: signerConfig(env),
    certificates: {
      proxyValidityMs: int('RBS_PROXY_CERT_VALIDITY_MS', 12 * 60 * MINUTE),
      agentValidityMs: int('RBS_AGENT_CERT_VALIDITY_MS', 30 * 24 * 60 * MINUTE),
    },
    store,
    backend,
    session: {
      idleTimeoutMs: int('RBS_IDLE_TIMEOUT_MS', 30 * MINUTE),
      retentionMs: int('RBS_RETENTION_MS', 7 * 24 * 60 * MINUTE),
      maxHistoryEvents: int('RBS_MAX_HISTORY_EVENTS', 2000),
      agentProbeIntervalMs: int('RBS_AGENT_PROBE_INTERVAL_MS', MINUTE),
    },
    volume: {
      retentionMs: int('RBS_VOLUME_RETENTION_MS', 14 * DAY),
      softDeleteWindowMs: int('RBS_VOLUME_SOFT_DELETE_MS', 7 * DAY),
    },
    // A replacement for an agent that may still run waits it out on the volume first (33 s in a pod by default): the worker checks.
    agentReadyTimeoutMs: int('RBS_AGENT_READY_TIMEOUT_MS', 2 * MINUTE),
    cleanup: {
      intervalMs: int('RBS_CLEANUP_INTERVAL_MS', 5 * MINUTE),
      orphanGraceMs: int('RBS_ORPHAN_GRACE_MS', MINUTE),
      endedRowRetentionMs: int('RBS_ENDED_ROW_RETENTION_MS', 30 * DAY),
    },
    limits: {
      activeSessions: int('RBS_LIMIT_ACTIVE_SESSIONS', 5),
      retainedVolumes: int('RBS_LIMIT_RETAINED_VOLUMES', 10),
      getServerPerMinute: int('RBS_LIMIT_GET_SERVER_PER_MINUTE', 300),
      watchStreams: int('RBS_LIMIT_WATCH_STREAMS', 10),
    },
    oidc: oidcConfigFromEnv(env, int('RBS_OIDC_CERT_VALIDITY_MS', 12 * 60 * MINUTE)),
    keepaliveMs: checkKeepaliveMs(int('RBS_KEEPALIVE_MS', DEFAULT_KEEPALIVE_MS), 'RBS_KEEPALIVE_MS'),
  };
}

function signerConfig(env: NodeJS.ProcessEnv): RbsConfig['signer'] {
  const address = env.RBS_SIGNER_ADDRESS || null;
  const serviceTlsDir = env.RBS_SERVICE_TLS_DIR || null;
  if (address && !serviceTlsDir) {
    throw new Error(
      `RBS_SIGNER_ADDRESS=${address} needs RBS_SERVICE_TLS_DIR: the directory of this service's own certificate (ca.crt, <service>.crt, <service>.key)`,
    );
  }
  const publishFor = env.RBS_SIGNER_PUBLISH || null;
  if (publishFor !== null && publishFor !== 'orchestrator' && publishFor !== 'worker') {
    throw new Error(`RBS_SIGNER_PUBLISH must be 'orchestrator' or 'worker' (the service whose certificate the signer keeps), got '${publishFor}'`);
  }
  if (publishFor && !serviceTlsDir) throw new Error(`RBS_SIGNER_PUBLISH=${publishFor} needs RBS_SERVICE_TLS_DIR: where to keep its certificate`);
  return { address, listen: env.RBS_SIGNER_LISTEN ?? '127.0.0.1:7445', serviceTlsDir, publishFor };
}

/** Files under RBS_HOME that several processes agree on. */
export const homePaths = (home: string) => ({
  pki: path.join(home, 'pki'),
  /** The local stack's service certificates, which `rbs up` issues: the services never read the CA key. */
  serviceTls: path.join(home, 'pki', 'services'),
  /** Where `rbs up` says where everything is, for the CLI. */
  stack: path.join(home, 'stack.json'),
  logs: path.join(home, 'logs'),
  temporalDb: path.join(home, 'temporal.sqlite'),
  /** The CLI's per-user client credentials, from `rbs login`. */
  credentials: path.join(home, 'credentials'),
});

/** A metrics endpoint's host:port, or null when unset. The worker's (the Temporal SDK's exporter) cannot say which port 0 picked. */
function metricsListen(env: NodeJS.ProcessEnv, name: string, anyPort = true): string | null {
  const value = env[name];
  if (!value) return null;
  let port: number;
  try {
    ({ port } = splitHostPort(value));
  } catch (err) {
    throw new Error(`${name}: ${(err as Error).message}`);
  }
  if (port === 0 && !anyPort) throw new Error(`${name} needs a fixed port: the Temporal SDK's exporter does not tell which one port 0 picked`);
  return value;
}
