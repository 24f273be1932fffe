/**
 * Assembles the orchestrator from configuration: its certificate and signer, store, Temporal
 * client. It faces the internet, so it holds no CA key when a signer service is configured.
 */
import { Client, Connection } from '@temporalio/client';
import type { RbsConfig } from '../../lib/config';
import { listenNames } from '../../lib/grpc/bind';
import { serviceCredentials } from '../../lib/pki/service-credentials';
import { openSessionStore } from '../../lib/store';
import { type Logger, processLogger } from '../../lib/log';
import { serveMetrics } from '../../lib/metrics/endpoint';
import { Limits } from './limits';
import { OrchestratorMetrics } from './metrics';
import { Revocations } from './revocation';
import { Login } from './login';
import { temporalConnectionOptions } from '../../lib/temporal/connection';
import { temporalClientInterceptors } from '../../lib/tracing/temporal';
import { startOrchestrator, type Orchestrator } from './server';
import { Sessions } from './sessions';
import { Volumes } from './volumes';

/** `log`: where its JSON lines go (stderr unless given). */
export async function runOrchestrator(config: RbsConfig, log: Logger = processLogger('orchestrator')): Promise<Orchestrator> {
  const credentials = await serviceCredentials(config, 'orchestrator', listenNames(config.orchestrator.listen));
  const store = await openSessionStore(config.store);
  const connection = await Connection.connect(await temporalConnectionOptions(config.temporal));
  const temporal = new Client({ connection, namespace: config.temporal.namespace, interceptors: temporalClientInterceptors() });
  const limits = new Limits(config.limits, store);
  const metrics = new OrchestratorMetrics(store);
  const sessions = new Sessions({
    metrics,
    log,
    temporal,
    store,
    taskQueue: config.temporal.taskQueue,
    timeouts: config.session,
    limits,
    signer: credentials.signer,
    proxyCertificateValidityMs: config.certificates.proxyValidityMs,
  });
  const revocations = new Revocations(store, sessions, log);
  const volumes = new Volumes({ temporal, store, taskQueue: config.temporal.taskQueue, log });
  const login = config.oidc ? new Login(config.oidc, credentials.signer, revocations, log) : undefined;
  const onError = (err: Error) => log.warn({ err }, 'serving metrics');
  const metricsEndpoint = config.metrics.orchestrator ? await serveMetrics(config.metrics.orchestrator, metrics.registry, { onError }) : null;
  const server = await startOrchestrator({
    listen: config.orchestrator.listen,
    tls: credentials.tls,
    sessions,
    volumes,
    limits,
    revocations,
    login,
    metrics,
    log,
  }).catch(async (err) => {
    await metricsEndpoint?.close();
    throw err;
  });
  return {
    address: server.address,
    metricsAddress: metricsEndpoint?.address ?? null,
    async stop() {
      await Promise.all([server.stop(), metricsEndpoint?.close()]);
      credentials.close();
      await Promise.allSettled([store.close(), connection.close()]);
    },
  };
}
