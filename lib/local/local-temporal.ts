/**
 * Temporal for the local stack (`npm start`) that only this user's processes can drive. Anyone on
 * the machine reaches loopback ports, and whoever drives the session workflows takes over sessions;
 * so the frontend requires a client certificate of a CA whose key, like every client key, stays in
 * RBS_HOME/temporal (mode 0700). The Web UI holds such a certificate and is read-only, so another
 * user can look but not act.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { homePaths } from '../config';
import { CertificateAuthority } from '../pki/ca';
import type { TemporalAuth } from '../temporal/config';
import { type Supervised, supervise } from './supervisor';
import { startTemporalTlsServer, TEMPORAL_TLS_SERVER_NAME, type TemporalTlsServer, writeTemporalClientCertificate } from './temporal-tls-server';
import { startTemporalUi } from './temporal-ui-server';

export interface LocalTemporal {
  address: string;
  uiUrl: string | null;
  /** How the worker and the orchestrator authenticate. */
  auth: Extract<TemporalAuth, { kind: 'mtls' }>;
  /** `temporal` CLI flags with the operator's client certificate. */
  cliFlags: string[];
  /** The server and its UI, each restarted if it dies (on the same port and database). */
  services: Supervised[];
}

export async function startLocalTemporal(options: {
  home: string;
  persist: boolean;
  port?: number;
  uiPort?: number;
  ui: boolean;
  log(message: string): void;
}): Promise<LocalTemporal> {
  const paths = homePaths(options.home);
  const dir = path.join(options.home, 'temporal');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700); // also when an older RBS made it
  const ca = await CertificateAuthority.loadOrCreate(path.join(dir, 'ca'));
  const ephemeralDb = path.join(dir, 'ephemeral.sqlite');
  if (!options.persist) for (const file of fs.readdirSync(dir).filter((f) => f.startsWith('ephemeral.sqlite'))) fs.rmSync(path.join(dir, file));
  let server!: TemporalTlsServer;
  /** A restart first takes its predecessor's ports; if one is taken meanwhile, the next try takes fresh ones. */
  let reusePorts = false;
  const startServer = async () => {
    const ports = reusePorts ? server.ports : undefined;
    reusePorts = false;
    server = await startTemporalTlsServer({
      ca,
      dir: path.join(dir, 'server'),
      dbFile: options.persist ? paths.temporalDb : ephemeralDb,
      logFile: path.join(paths.logs, 'temporal.log'),
      port: options.port,
      ports,
    });
    reusePorts = true;
    return server.child;
  };
  const supervised: Supervised[] = [await supervise('temporal-server', startServer, { log: options.log })];
  try {
    const trust = { caFile: server.caFile, serverName: TEMPORAL_TLS_SERVER_NAME };
    const client = async (name: string) => ({ ...(await writeTemporalClientCertificate(ca, path.join(dir, 'clients', name))), ...trust });
    const services = await client('services');
    const operator = await client('operator');
    let uiUrl: string | null = null;
    if (options.ui) {
      const temporal = { address: server.address, namespace: server.namespace, ...(await client('ui')) };
      let uiPort = options.uiPort;
      const startUi = async () => {
        const ui = await startTemporalUi({ temporal, dir: path.join(dir, 'ui'), logFile: path.join(paths.logs, 'temporal-ui.log'), port: uiPort });
        uiUrl = ui.url;
        uiPort = Number(new URL(ui.url).port);
        return ui.child;
      };
      supervised.push(await supervise('temporal-ui', startUi, { log: options.log }));
    }
    return {
      address: server.address,
      uiUrl,
      auth: { kind: 'mtls', ...services },
      cliFlags: [
        '--address',
        server.address,
        '--tls-cert-path',
        operator.certFile,
        '--tls-key-path',
        operator.keyFile,
        '--tls-ca-path',
        operator.caFile,
        '--tls-server-name',
        operator.serverName,
      ],
      services: supervised,
    };
  } catch (e) {
    for (const service of supervised.reverse()) await service.stop();
    throw e;
  }
}
