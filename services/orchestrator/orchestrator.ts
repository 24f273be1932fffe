/** Assembles the orchestrator from configuration: CA, server certificate, store, Temporal client. */
import { Client, Connection } from '@temporalio/client';
import { homePaths, type RbsConfig } from '../../lib/config';
import { CertificateAuthority } from '../../lib/pki/ca';
import { openSessionStore } from '../../lib/store';
import { temporalConnectionOptions } from '../../lib/temporal/connection';
import { startOrchestrator, type Orchestrator } from './server';
import { Sessions } from './sessions';

export async function runOrchestrator(config: RbsConfig): Promise<Orchestrator> {
  const ca = await CertificateAuthority.loadOrCreate(homePaths(config.home).pki);
  const host = config.orchestrator.listen.slice(0, config.orchestrator.listen.lastIndexOf(':'));
  const issued = await ca.issue(
    { kind: 'service', name: 'orchestrator' },
    { dnsNames: ['localhost'], ipAddresses: /^[\d.]+$/.test(host) ? [host] : [] },
  );
  const store = await openSessionStore(config.store);
  const connection = await Connection.connect(await temporalConnectionOptions(config.temporal));
  const temporal = new Client({ connection, namespace: config.temporal.namespace });
  const sessions = new Sessions({ temporal, store, taskQueue: config.temporal.taskQueue, timeouts: config.session });
  const server = await startOrchestrator({ listen: config.orchestrator.listen, tls: { caCertPem: ca.certPem, ...issued }, sessions });
  return {
    address: server.address,
    async stop() {
      await server.stop();
      await Promise.allSettled([store.close(), connection.close()]);
    },
  };
}
