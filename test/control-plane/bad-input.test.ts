import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import { protos } from '../../lib/grpc/protos';
import { tlsChannelOptions } from '../../lib/grpc/tls';
import { CertificateAuthority } from '../../lib/pki/ca';
import { isDns1123Label } from '../../lib/naming';
import { useStack } from '../harness/stack';

const stack = useStack();

async function nothingCreated() {
  expect(await stack().worker.backend.listNamespaces()).toEqual([]);
  expect(await stack().worker.store.list()).toEqual([]);
}

test.each([
  ['', 'absolute'],
  ['relative/dir', 'absolute'],
  ['/a/../etc', "'..' segment"],
  ['/a/./b', "'.' segment"],
  ['/a//b', "'//'"],
  ['/a\0b', 'control'],
  ['/', 'root'],
])('workspace %j is INVALID_ARGUMENT', async (workspace, words) => {
  const frank = await stack().client('frank');
  const err = await frank.getServer(workspace).catch((e) => e);
  expect(err).toMatchObject({ code: status.INVALID_ARGUMENT });
  expect(err.details.toLowerCase()).toContain(words);
  await nothingCreated();
});

test('session ids: malformed is INVALID_ARGUMENT, unknown is NOT_FOUND', async () => {
  const frank = await stack().client('frank');
  await expect(frank.describeSession('../../etc/passwd')).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
  await expect(frank.endSession('')).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
  await expect(frank.heartbeat(randomUUID())).rejects.toMatchObject({ code: status.NOT_FOUND });
  await expect(frank.endSession(randomUUID())).rejects.toMatchObject({ code: status.NOT_FOUND });
});

/** A raw client: it trusts the server and presents exactly the given certificate (or none). */
async function listWith(key?: { certPem: string; keyPem: string }): Promise<grpc.ServiceError> {
  const Orchestrator = protos().orchestrator.rbs.v1.Orchestrator;
  const credentials = grpc.credentials.createSsl(Buffer.from(stack().ca.certPem), key ? Buffer.from(key.keyPem) : null, key ? Buffer.from(key.certPem) : null, {
    checkServerIdentity: () => undefined,
  });
  const client = new Orchestrator(stack().orchestrator.address, credentials, tlsChannelOptions('127.0.0.1'));
  try {
    return await new Promise<grpc.ServiceError>((resolve) => client.listSessions({}, (e) => resolve(e!)));
  } finally {
    client.close();
  }
}

test('the orchestrator refuses a missing, foreign-CA or expired client certificate: UNAUTHENTICATED', async () => {
  const foreignCa = await CertificateAuthority.loadOrCreate(fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-foreign-ca-')));
  const foreign = await foreignCa.issue({ kind: 'user', user: 'mallory', operator: true });
  const expired = await stack().ca.issue(
    { kind: 'user', user: 'frank', operator: false },
    {
      notBefore: new Date(Date.now() - 3 * 86_400_000),
      validityMs: 86_400_000,
    },
  );
  for (const key of [undefined, foreign, expired]) {
    expect(await listWith(key)).toMatchObject({ code: status.UNAUTHENTICATED, details: expect.stringContaining('certificate') });
  }
  await nothingCreated();
});

test('RBS clients name the problem with their own certificate before sending anything', async () => {
  const expired = await stack().client('frank', { notBefore: new Date(Date.now() - 3 * 86_400_000), validityMs: 86_400_000 });
  await expect(expired.getServer('/home/frank/ws')).rejects.toMatchObject({ code: status.UNAUTHENTICATED, details: expect.stringContaining('expired') });
});

test('a certificate of another kind than a user is PERMISSION_DENIED', async () => {
  const agent = await stack().client('frank', { identity: { kind: 'agent', sessionId: randomUUID() } });
  await expect(agent.listSessions()).rejects.toMatchObject({ code: status.PERMISSION_DENIED, details: expect.stringContaining('user certificate') });
  await nothingCreated();
});

test('hostile user names are confined to valid, distinct namespaces inside RBS_HOME', async () => {
  const names = ['..', 'Robert"); DROP TABLE Sessions;--', 'ZOË', '山田太郎', '-- --', '42', 'a'.repeat(128)];
  const workspace = stack().workspace();
  const sessions = [];
  for (const name of names) sessions.push(await (await stack().client(name)).getServer(workspace));
  expect(new Set(sessions.map((s) => s.namespace)).size).toBe(names.length);
  for (const [i, s] of sessions.entries()) {
    expect(s.user).toBe(names[i]);
    expect(isDns1123Label(s.namespace)).toBe(true);
    expect(fs.existsSync(path.join(stack().config.home, 'namespaces', s.namespace))).toBe(true);
  }
  for (const [i, s] of sessions.entries()) await (await stack().client(names[i])).endSession(s.sessionId);
});
