/**
 * The real Temporal server (go.temporal.io/server's cmd/server) requiring mutual TLS from every
 * client: the frontend, the services between themselves and the system worker. SQLite persistence
 * in `dir`; the CLI's dev server has no TLS, so this is what secured Temporal looks like locally.
 * Certificates come from `ca`: a client certificate from any other CA is refused.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { temporal as proto } from '@temporalio/proto';
import { ALL_SEARCH_ATTRIBUTES } from '../temporal/search-attributes';
import type { CertificateAuthority, IssuedCertificate } from '../pki/ca';
import { temporalConnectionOptions } from '../temporal/connection';
import { startChild, type Child } from './child';
import { freePort, waitForPort } from './ports';
import { DYNAMIC_CONFIG } from './temporal-dev-server';
import { temporalServerBinary } from './tools';

/** The name the server's certificate carries and clients verify (it also has the IP 127.0.0.1). */
export const TEMPORAL_TLS_SERVER_NAME = 'localhost';
const NAMESPACE = 'default';
const SERVICES = ['frontend', 'history', 'matching', 'worker'] as const;
const ALREADY_EXISTS = 6;

/** Each service's gRPC and membership ports. */
export type TemporalPorts = Record<(typeof SERVICES)[number], { grpcPort: number; membershipPort: number }>;

export interface TemporalTlsServer {
  address: string;
  namespace: string;
  /** The CA file clients trust the server by. */
  caFile: string;
  /** For a restart: on other ports, it would wait for its dead predecessor's hosts to leave the ring (half a minute and more). */
  ports: TemporalPorts;
  child: Child;
}

/** A client certificate of `ca` for Temporal, written as cert.pem and key.pem (0600) under `dir`. */
export async function writeTemporalClientCertificate(ca: CertificateAuthority, dir: string): Promise<{ certFile: string; keyFile: string }> {
  // Temporal checks only that `ca` signed it; the RBS identity URI it carries is not used.
  return writeCertificate(await ca.issue({ kind: 'service', name: 'worker' }), dir);
}

function writeCertificate(issued: IssuedCertificate, dir: string): { certFile: string; keyFile: string } {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  fs.writeFileSync(certFile, issued.certPem);
  fs.writeFileSync(keyFile, issued.keyPem, { mode: 0o600 });
  return { certFile, keyFile };
}

export async function startTemporalTlsServer(options: {
  ca: CertificateAuthority;
  /** Its configuration and certificates. */
  dir: string;
  /** SQLite database; default: in `dir`. */
  dbFile?: string;
  logFile: string;
  port?: number;
  /** All of them: a restart's, on its predecessor's. */
  ports?: TemporalPorts;
}): Promise<TemporalTlsServer> {
  const { ca, dir } = options;
  fs.mkdirSync(path.join(dir, 'config'), { recursive: true, mode: 0o700 });
  const caFile = path.join(dir, 'ca.pem');
  fs.writeFileSync(caFile, ca.certPem);
  // The server's certificate (also its client certificate towards its other services): clients check its DNS and IP names.
  const server = writeCertificate(
    await ca.issue({ kind: 'service', name: 'worker' }, { dnsNames: [TEMPORAL_TLS_SERVER_NAME], ipAddresses: ['127.0.0.1'] }),
    path.join(dir, 'server'),
  );

  const ports =
    options.ports ??
    (Object.fromEntries(
      await Promise.all(
        SERVICES.map(
          async (s) => [s, { grpcPort: s === 'frontend' && options.port ? options.port : await freePort(), membershipPort: await freePort() }] as const,
        ),
      ),
    ) as TemporalPorts);
  const address = `127.0.0.1:${ports.frontend.grpcPort}`;
  const dynamicConfigFile = path.join(dir, 'dynamic-config.yaml');
  fs.writeFileSync(dynamicConfigFile, JSON.stringify(dynamicConfig(), null, 2));
  // YAML is a superset of JSON.
  fs.writeFileSync(
    path.join(dir, 'config', 'development.yaml'),
    JSON.stringify(
      serverConfig({ dbFile: options.dbFile ?? path.join(dir, 'temporal.sqlite'), caFile, ...server, ports, address, dynamicConfigFile }),
      null,
      2,
    ),
  );

  const child = startChild(
    'temporal-server',
    temporalServerBinary(),
    ['--root', dir, '--config', 'config', '--env', 'development', '--allow-no-auth', 'start'],
    {
      logFile: options.logFile,
    },
  );
  try {
    const failed = () => (child.exited() ? `${child.exited()}:\n${child.logTail()}` : null);
    await waitForPort('127.0.0.1', ports.frontend.grpcPort, 60_000, failed);
    const admin = await writeTemporalClientCertificate(ca, path.join(dir, 'admin'));
    await registerNamespace(
      await temporalConnectionOptions({ address, auth: { kind: 'mtls', ...admin, caFile, serverName: TEMPORAL_TLS_SERVER_NAME } }),
      failed,
    );
    return { address, namespace: NAMESPACE, caFile, ports, child };
  } catch (e) {
    await child.stop();
    throw e;
  }
}

/** The dev server's settings (one partition, eager activities), plus what the CLI sets for its search attributes. */
function dynamicConfig(): Record<string, Array<{ value: unknown }>> {
  const values: Record<string, unknown> = {
    ...DYNAMIC_CONFIG,
    // Custom search attributes usable at once after registration, as in the CLI's dev server.
    'system.forceSearchAttributesCacheRefreshOnRead': true,
    'frontend.persistenceMaxQPS': 10000,
    'history.persistenceMaxQPS': 45000,
  };
  return Object.fromEntries(Object.entries(values).map(([key, value]) => [key, [{ value }]]));
}

function serverConfig(o: {
  dbFile: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  ports: Record<string, { grpcPort: number; membershipPort: number }>;
  address: string;
  dynamicConfigFile: string;
}): object {
  const mutualTls = {
    server: { certFile: o.certFile, keyFile: o.keyFile, clientCaFiles: [o.caFile], requireClientAuth: true },
    client: { serverName: TEMPORAL_TLS_SERVER_NAME, rootCaFiles: [o.caFile] },
  };
  // `setup` creates the schema in a new file; both stores share it, as the CLI's dev server does.
  const sqlite = {
    sql: {
      pluginName: 'sqlite',
      databaseName: o.dbFile,
      connectAddr: 'localhost',
      connectProtocol: 'tcp',
      connectAttributes: { cache: 'private', setup: 'true', journal_mode: 'wal', synchronous: '2' },
      maxConns: 1,
      maxIdleConns: 1,
    },
  };
  return {
    log: { stdout: true, level: 'warn', format: 'json' },
    persistence: {
      defaultStore: 'sqlite-default',
      visibilityStore: 'sqlite-visibility',
      numHistoryShards: 1,
      datastores: { 'sqlite-default': sqlite, 'sqlite-visibility': sqlite },
    },
    global: {
      membership: { maxJoinDuration: '30s', broadcastAddress: '127.0.0.1' },
      tls: {
        internode: mutualTls,
        frontend: mutualTls,
        systemWorker: { certFile: o.certFile, keyFile: o.keyFile, client: mutualTls.client },
      },
    },
    // httpPort 0: no HTTP API; no pprof or metrics listeners either.
    services: Object.fromEntries(Object.entries(o.ports).map(([name, ports]) => [name, { rpc: { ...ports, bindOnLocalHost: true, httpPort: 0 } }])),
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: { active: { enabled: true, initialFailoverVersion: 1, rpcName: 'frontend', rpcAddress: o.address } },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    dynamicConfigClient: { filepath: o.dynamicConfigFile, pollInterval: '10s' },
  };
}

/**
 * The cmd/server creates no namespace (the CLI's dev server writes them into SQLite itself): register
 * `default` and RBS's search attributes through the API, as an operator would. Idempotent, so a
 * persisted database restarts.
 */
async function registerNamespace(options: Awaited<ReturnType<typeof temporalConnectionOptions>>, failed: () => string | null): Promise<void> {
  const connection = await Connection.connect(options);
  const ignoreExisting = (e: unknown) => {
    if ((e as { code?: number }).code !== ALREADY_EXISTS) throw e;
  };
  const retry = async <T>(what: string, call: () => Promise<T>): Promise<T> => {
    for (const deadline = Date.now() + 60_000; ;) {
      try {
        return await call();
      } catch (e) {
        const dead = failed();
        if (dead) throw new Error(dead);
        if (Date.now() > deadline) throw new Error(`Temporal server: ${what}: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  };
  try {
    await retry('register namespace', () =>
      connection.workflowService.registerNamespace({ namespace: NAMESPACE, workflowExecutionRetentionPeriod: msToTs('1 day') }).catch(ignoreExisting),
    );
    // The frontend sees a new namespace after its namespace cache refreshes (2 s).
    const registered = await retry('namespace visible', async () => {
      const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: NAMESPACE });
      return new Set(Object.keys(customAttributes ?? {}));
    });
    const missing = ALL_SEARCH_ATTRIBUTES.filter((key) => !registered.has(key.name));
    if (missing.length > 0) {
      const searchAttributes = Object.fromEntries(missing.map((key) => [key.name, proto.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD]));
      await retry('add search attributes', () => connection.operatorService.addSearchAttributes({ namespace: NAMESPACE, searchAttributes }));
    }
  } finally {
    await connection.close();
  }
}
