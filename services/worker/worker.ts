/** The Temporal worker that runs session and cleanup workflows and their activities. */
import { checkReadyTimeoutCoversTakeover } from '../../lib/agent-lease';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, Worker, bundleWorkflowCode, type WorkflowBundle } from '@temporalio/worker';
import { createActivities } from '../../activities';
import type { ComputeBackend } from '../../lib/compute/backend';
import { LocalBackend, defaultAgentCommand } from '../../lib/compute/local-backend';
import type { RotatingTls } from '../../lib/grpc/tls';
import type { RbsConfig } from '../../lib/config';
import type { WorkspaceStorage } from '../../lib/filestore/workspace-storage';
import { serviceCredentials } from '../../lib/pki/service-credentials';
import { openSessionStore } from '../../lib/store';
import type { SessionStore } from '../../lib/store/session-store';
import { temporalConnectionOptions } from '../../lib/temporal/connection';
import { ensureCleanupSchedule } from './cleanup-schedule';
import { type Logger, processLogger } from '../../lib/log';
import { metricsSinks, prometheusTelemetry } from './metrics';
import { sdkLogger } from './sdk-log';
import { processTracing } from '../../lib/tracing/tracing';
import { temporalClientInterceptors } from '../../lib/tracing/temporal';
import { WORKFLOW_INTERCEPTOR_MODULES, activityInterceptors } from './tracing';
import { checkSearchAttributes } from './search-attributes';

const WORKFLOWS = require.resolve('../../workflows');

/**
 * The SDK stops a workflow activation that runs longer than this (wall clock, default 5 s) by ending its
 * script with `vm`'s timeout, which corrupts Node's async-hook stack and crashes the whole worker
 * (nodejs/node#38503). Our activations take milliseconds, so the watchdog only ever fires on a host that
 * stalled (a frozen VM, a long GC pause) mid-activation; past such a stall the worker should carry on.
 * It is also what stops a workflow stuck in a loop, which holds the worker's workflow thread meanwhile:
 * a minute covers any stall worth surviving. The option is not in the SDK's types but is read from
 * them (worker-options.js), so a test checks it.
 */
const ACTIVATION_WATCHDOG = { isolateExecutionTimeout: '1m' };

let bundle: Promise<WorkflowBundle> | undefined;
let runtimeInstalled = false;

/**
 * Once per process, before any connection: the SDK logs as the worker's JSON lines (sdk-log.ts), and
 * its metrics exporter serves the worker's Prometheus endpoint, if configured.
 */
function installRuntime(metricsListen: string | null, log: Logger): void {
  if (runtimeInstalled) return;
  Runtime.install({
    logger: sdkLogger(log),
    ...(metricsListen ? { telemetryOptions: prometheusTelemetry(metricsListen) } : {}),
  });
  runtimeInstalled = true;
}

/** Bundling the workflows takes seconds: do it once per process. Webpack's chatter is info, so only its warnings show. */
function workflowBundle(log: Logger): Promise<WorkflowBundle> {
  bundle ??= bundleWorkflowCode({ workflowsPath: WORKFLOWS, workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES, logger: sdkLogger(log) });
  return bundle;
}

/**
 * The backend RBS_BACKEND names; Kubernetes from the default kubeconfig (in-cluster, KUBECONFIG or
 * ~/.kube/config). The Kubernetes client is large: loaded only when used.
 */
async function backendFor(config: RbsConfig, workerTls: RotatingTls, workspaceStorage?: WorkspaceStorage): Promise<ComputeBackend> {
  if (config.backend.kind === 'local') {
    // A READY session's agent hears from the worker's probe at least every probe interval, and a
    // session idle for longer is suspended (its agent stopped): an agent unused for longer than both
    // has lost its control plane.
    const { idleTimeoutMs, agentProbeIntervalMs } = config.session;
    const exitWhenUnusedMs = idleTimeoutMs + 2 * agentProbeIntervalMs;
    return new LocalBackend({
      home: config.home,
      agentCommand: defaultAgentCommand(),
      workerTls,
      keepaliveMs: config.keepaliveMs,
      exitWhenUnusedMs,
      tracesEndpoint: processTracing().exporting ?? undefined,
    });
  }
  const [{ KubeConfig }, { KubernetesBackend }] = await Promise.all([import('@kubernetes/client-node'), import('../../lib/compute/kubernetes/backend')]);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  return new KubernetesBackend({ kubeConfig, config: config.backend.kubernetes, workspaceStorage });
}

/**
 * The Filestore instances behind the Kubernetes backend's volumes, if RBS_FILESTORE_* configure
 * them, through Application Default Credentials (Workload Identity on GKE). The Google client is
 * large: loaded only when configured.
 */
async function filestoreFor(config: RbsConfig): Promise<{ storage: WorkspaceStorage; close(): Promise<void> } | null> {
  if (config.backend.kind !== 'kubernetes' || !config.backend.filestore) return null;
  const [{ v1 }, { createWorkspaceStorage }] = await Promise.all([import('@google-cloud/filestore'), import('../../lib/filestore/workspace-storage')]);
  const client = new v1.CloudFilestoreManagerClient();
  return { storage: createWorkspaceStorage(client, config.backend.filestore), close: () => client.close() };
}

export interface SessionWorker {
  worker: Worker;
  store: SessionStore;
  backend: ComputeBackend;
  /** Runs until shutdown() and closes what it opened. */
  run(): Promise<void>;
  shutdown(): void;
}

export interface SessionWorkerOptions {
  /** In place of the backend the config names. */
  backend?: ComputeBackend;
  /** In place of the Filestore storage RBS_FILESTORE_* configure (the cleanup reports its orphans). */
  workspaceStorage?: WorkspaceStorage;
}

/** `log`: where its JSON lines go (stderr unless given); the SDK's too, in the first worker of the process. */
export async function createSessionWorker(
  config: RbsConfig,
  options: SessionWorkerOptions = {},
  log: Logger = processLogger('worker'),
): Promise<SessionWorker> {
  installRuntime(config.metrics.worker, log);
  const credentials = await serviceCredentials(config, 'worker');
  const filestore = options.workspaceStorage ? null : await filestoreFor(config);
  const workspaceStorage = options.workspaceStorage ?? filestore?.storage;
  const backend = options.backend ?? (await backendFor(config, credentials.tls, workspaceStorage));
  // Before the store and Temporal are opened: a deadline no replacement agent can meet would fail sessions after every node loss.
  try {
    checkReadyTimeoutCoversTakeover(config.agentReadyTimeoutMs, backend.agentLease);
  } catch (err) {
    await filestore?.close();
    throw err;
  }
  const store = await openSessionStore(config.store);
  const temporalOptions = await temporalConnectionOptions(config.temporal);
  const connection = await NativeConnection.connect(temporalOptions);
  const clientConnection = await Connection.connect(temporalOptions);
  const temporal = new Client({ connection: clientConnection, namespace: config.temporal.namespace, interceptors: temporalClientInterceptors() });
  await checkSearchAttributes(clientConnection, config.temporal.namespace, (message) => log.warn(message));
  await ensureCleanupSchedule(temporal, config);

  const worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    workflowBundle: await workflowBundle(log),
    sinks: metricsSinks(backend.kind),
    interceptors: { activity: [activityInterceptors] },
    activities: createActivities({
      backend,
      store,
      signer: credentials.signer,
      agentCertificateValidityMs: config.certificates.agentValidityMs,
      sessionTimeouts: config.session,
      volumeTimeouts: config.volume,
      temporal,
      agentReadyTimeoutMs: config.agentReadyTimeoutMs,
      orphanGraceMs: config.cleanup.orphanGraceMs,
      endedRowRetentionMs: config.cleanup.endedRowRetentionMs,
      workspaceStorage,
    }),
    // A session's tasks go to the worker that last ran it; if that worker died, they wait this long
    // before any worker takes them (Temporal's default is 10 s). Our histories are short (continue-as-new),
    // so replaying one elsewhere is cheap, and a developer waiting on a crashed worker waits less.
    stickyQueueScheduleToStartTimeout: '3s',
    ...ACTIVATION_WATCHDOG,
  });
  return {
    worker,
    store,
    backend,
    async run() {
      try {
        await worker.run();
      } finally {
        credentials.close();
        await Promise.allSettled([store.close(), connection.close(), clientConnection.close(), filestore?.close()]);
      }
    },
    shutdown: () => worker.shutdown(),
  };
}
