/**
 * API-key mode (Temporal Cloud): what the orchestrator's and the worker's connections put on the
 * wire. Temporal Cloud cannot be reached from here, so a recording HTTP/2 TLS endpoint (a fake of
 * Cloud's frontend, accepting nothing) stands in for it: this shows that the key travels only inside
 * TLS, to a server verified by the configured CA and name, as `authorization: Bearer <key>`. It does
 * not show that Temporal Cloud accepts the key.
 */
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as os from 'node:os';
import * as path from 'node:path';
import { Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { loadConfig } from '../../lib/config';
import { CertificateAuthority } from '../../lib/pki/ca';
import { temporalConnectionOptions } from '../../lib/temporal/connection';

interface Seen {
  path: string;
  authorization: string | undefined;
  alpn: string | false | null;
  tlsVersion: string | null;
}

let dir: string;
let fakeCloud: http2.Http2SecureServer;
let address: string;
const seen: Seen[] = [];
const sessions = new Set<http2.ServerHttp2Session>();

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-api-key-'));
  const ca = await CertificateAuthority.loadOrCreate(path.join(dir, 'ca'));
  fs.writeFileSync(path.join(dir, 'ca.pem'), ca.certPem);
  const { certPem, keyPem } = await ca.issue({ kind: 'service', name: 'worker' }, { dnsNames: ['fake-cloud.tmprl.test'] });
  fakeCloud = http2.createSecureServer({ cert: certPem, key: keyPem });
  fakeCloud.on('session', (session) => sessions.add(session));
  fakeCloud.on('stream', (stream, headers) => {
    const socket = stream.session?.socket as import('node:tls').TLSSocket | undefined;
    seen.push({
      path: String(headers[':path']),
      authorization: headers.authorization as string | undefined,
      alpn: socket?.alpnProtocol ?? null,
      tlsVersion: socket?.getProtocol() ?? null,
    });
    // As a frontend refusing the key would: UNAUTHENTICATED.
    stream.respond(
      { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '16', 'grpc-message': 'fake: not Temporal Cloud' },
      { endStream: true },
    );
  });
  await new Promise<void>((resolve) => fakeCloud.listen(0, '127.0.0.1', resolve));
  address = `127.0.0.1:${(fakeCloud.address() as import('node:net').AddressInfo).port}`;
});

afterAll(async () => {
  // Clients whose calls failed may hold their HTTP/2 sessions open: end them, or close() waits.
  for (const session of sessions) session.destroy();
  await new Promise((resolve) => fakeCloud.close(resolve));
  fs.rmSync(dir, { recursive: true, force: true });
});

const apiKeyOptions = () =>
  temporalConnectionOptions(
    loadConfig({
      RBS_HOME: dir,
      RBS_TEMPORAL_ADDRESS: address,
      RBS_TEMPORAL_API_KEY: 'rbs-test-key-1',
      RBS_TEMPORAL_TLS_CA: path.join(dir, 'ca.pem'),
      RBS_TEMPORAL_TLS_SERVER_NAME: 'fake-cloud.tmprl.test',
    }).temporal,
  );

test('API key: TLS on, and the key only as a bearer authorization inside it', async () => {
  const options = await apiKeyOptions();
  expect(options.tls).toBeDefined();
  expect(options.tls?.clientCertPair).toBeUndefined();
  expect(options.apiKey).toBe('rbs-test-key-1');
});

test('the orchestrator’s connection (grpc-js) sends the key as a bearer token over TLS to the verified server', async () => {
  seen.length = 0;
  await Connection.connect({ ...(await apiKeyOptions()), connectTimeout: '5s' }).then(
    (c) => c.close(),
    () => undefined, // the fake refuses every call
  );
  expect(seen.length).toBeGreaterThan(0);
  for (const request of seen) {
    expect(request).toMatchObject({ authorization: 'Bearer rbs-test-key-1', alpn: 'h2', tlsVersion: expect.stringMatching(/^TLSv1\.[23]$/) });
    expect(request.path).toMatch(/^\/temporal\.api\.workflowservice\.v1\.WorkflowService\//);
  }
});

test('the worker’s connection (Rust core) sends the key as a bearer token over TLS to the verified server', async () => {
  seen.length = 0;
  await NativeConnection.connect(await apiKeyOptions()).then(
    (c) => c.close(),
    () => undefined,
  );
  expect(seen.length).toBeGreaterThan(0);
  for (const request of seen) {
    expect(request).toMatchObject({ authorization: 'Bearer rbs-test-key-1', alpn: 'h2', tlsVersion: expect.stringMatching(/^TLSv1\.[23]$/) });
  }
});

test('a server that the configured CA did not sign never sees the key', async () => {
  seen.length = 0;
  const impostorDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-impostor-ca-'));
  try {
    const impostor = await CertificateAuthority.loadOrCreate(impostorDir);
    fs.writeFileSync(path.join(impostorDir, 'ca.pem'), impostor.certPem);
    const options = await temporalConnectionOptions(
      loadConfig({
        RBS_HOME: dir,
        RBS_TEMPORAL_ADDRESS: address,
        RBS_TEMPORAL_API_KEY: 'rbs-test-key-1',
        RBS_TEMPORAL_TLS_CA: path.join(impostorDir, 'ca.pem'),
        RBS_TEMPORAL_TLS_SERVER_NAME: 'fake-cloud.tmprl.test',
      }).temporal,
    );
    await expect(Connection.connect({ ...options, connectTimeout: '3s' })).rejects.toThrow();
    expect(seen).toEqual([]);
  } finally {
    fs.rmSync(impostorDir, { recursive: true, force: true });
  }
});
