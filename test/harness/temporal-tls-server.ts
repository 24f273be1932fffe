/**
 * A Temporal server that requires mTLS (lib/local/temporal-tls-server.ts) for one test file, with
 * its own CA in a temp dir; stopped and removed after the file's tests.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CertificateAuthority } from '../../lib/pki/ca';
import { startTemporalTlsServer, TEMPORAL_TLS_SERVER_NAME, writeTemporalClientCertificate, type TemporalTlsServer } from '../../lib/local/temporal-tls-server';
import { temporalAuthEnv } from '../../lib/temporal/config';

export interface TestTemporalTls {
  server: TemporalTlsServer;
  /** The CA Temporal trusts (not RBS's). */
  ca: CertificateAuthority;
  dir: string;
  /** RBS_TEMPORAL_* for a new client certificate of `ca` (or of `issuer`), as the orchestrator and worker read them. */
  clientEnv(issuer?: CertificateAuthority): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

export async function startTestTemporalTls(): Promise<TestTemporalTls> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-temporal-tls-'));
  const ca = await CertificateAuthority.loadOrCreate(path.join(dir, 'ca'));
  const server = await startTemporalTlsServer({ ca, dir: path.join(dir, 'server'), logFile: path.join(dir, 'temporal-server.log') });
  let clients = 0;
  return {
    server,
    ca,
    dir,
    async clientEnv(issuer = ca) {
      const client = await writeTemporalClientCertificate(issuer, path.join(dir, `client-${++clients}`));
      const auth = { kind: 'mtls' as const, ...client, caFile: server.caFile, serverName: TEMPORAL_TLS_SERVER_NAME };
      return { RBS_TEMPORAL_ADDRESS: server.address, ...temporalAuthEnv(auth) };
    },
    async stop() {
      await server.child.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One server for the whole test file. */
export function useTemporalTls(): () => TestTemporalTls {
  let tls: TestTemporalTls | undefined;
  beforeAll(async () => {
    tls = await startTestTemporalTls();
  }, 120_000);
  afterAll(() => tls?.stop());
  return () => {
    if (!tls) throw new Error('the mTLS Temporal server did not start (see beforeAll)');
    return tls;
  };
}
