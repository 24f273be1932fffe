/**
 * Assembles the orchestrator from configuration: its certificate and signer, store, Temporal
 * client. It faces the internet, so it holds no CA key when a signer service is configured.
 */
import { Client, Connection } from '@temporalio/client';
import type { RbsConfig } from '../../lib/config';
import { listenNames } from '../../lib/grpc/bind';
import { serviceCredentials } from '../../lib/pki/service-credentials';
import { openSessionStore } from '../../lib/store';
import { Limits } from './limits';
import { Revocations } from './revocation';
import { Login } from './login';
import { temporalConnectionOptions } from '../../lib/temporal/connection';
import { startOrchestrator, type Orchestrator } from './server';
import { Sessions } from './sessions';
import { Volumes } from './volumes';

export async function runOrchestrator(config: RbsConfig): Promise<Orchestrator> {
  const credentials = await serviceCredentials(config, 'orchestrator', listenNames(config.orchestrator.listen));
  const store = await openSessionStore(config.store);
  const connection = await Connection.connect(await temporalConnectionOptions(config.temporal));
  const temporal = new Client({ connection, namespace: config.temporal.namespace });
  const limits = new Limits(config.limits, store);
  const sessions = new Sessions({
    temporal,
    store,
    taskQueue: config.temporal.taskQueue,
    timeouts: config.session,
    limits,
    signer: credentials.signer,
    proxyCertificateValidityMs: config.certificates.proxyValidityMs,
  });
  const revocations = new Revocations(store, sessions);
  const volumes = new Volumes({ temporal, store, taskQueue: config.temporal.taskQueue });
  const login = config.oidc ? new Login(config.oidc, credentials.signer, revocations) : undefined;
  const server = await startOrchestrator({ listen: config.orchestrator.listen, tls: credentials.tls, sessions, volumes, limits, revocations, login });
  return {
    address: server.address,
    async stop() {
      await server.stop();
      credentials.close();
      await Promise.allSettled([store.close(), connection.close()]);
    },
  };
}
