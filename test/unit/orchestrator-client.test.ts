/**
 * The orchestrator client's deadlines: an orchestrator that takes a call and never answers fails it
 * in time, and the error says which call it was, not only "Deadline exceeded".
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { OrchestratorClient } from '../../lib/grpc/orchestrator-client';
import { protos } from '../../lib/grpc/protos';
import { serverCredentials } from '../../lib/grpc/tls';
import { CertificateAuthority } from '../../lib/pki/ca';

let dir: string;
let server: grpc.Server;
let client: OrchestratorClient;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-orchestrator-client-'));
  const ca = await CertificateAuthority.loadOrCreate(dir);
  const served = await ca.issue({ kind: 'service', name: 'orchestrator' }, { ipAddresses: ['127.0.0.1'] });
  server = new grpc.Server();
  // Takes every call, answers none: frozen, or stuck behind a Temporal that is not back yet.
  const silent = Object.fromEntries(Object.keys(protos().orchestrator.rbs.v1.Orchestrator.service).map((method) => [method, () => undefined]));
  server.addService(protos().orchestrator.rbs.v1.Orchestrator.service, silent);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', serverCredentials({ caCertPem: ca.certPem, ...served }), (err, p) => (err ? reject(err) : resolve(p))),
  );
  client = new OrchestratorClient(`127.0.0.1:${port}`, { caCertPem: ca.certPem, ...(await ca.issue({ kind: 'user', user: 'ann', operator: false })) });
});

afterAll(() => {
  client?.close();
  server?.forceShutdown();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a call the orchestrator never answers fails at its deadline, naming the call', async () => {
  const started = Date.now();
  await expect(client.getServer('/ws', { timeoutMs: 500 })).rejects.toMatchObject({
    code: grpc.status.DEADLINE_EXCEEDED,
    message: 'the orchestrator did not answer GetServer within 0.5 s',
  });
  expect(Date.now() - started).toBeLessThan(5_000);
});
