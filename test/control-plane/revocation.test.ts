/**
 * Revoking a user, from the side of the revoked user (every call refused at once, at every
 * replica; their sessions, agents and proxy certificates dead) and of a user who would revoke
 * others without being an operator.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { agentIsServing } from '../../lib/compute/agent-health';
import { homePaths } from '../../lib/config';
import { OrchestratorClient } from '../../lib/grpc/orchestrator-client';
import { CertificateAuthority } from '../../lib/pki/ca';
import { runOrchestrator } from '../../services/orchestrator/orchestrator';
import type { Orchestrator } from '../../services/orchestrator/server';
import { testConfig, useStack } from '../harness/stack';

const stack = useStack();

/** A proxy's credentials for the session's agent, as the proxy gets them. */
async function proxyCredentials(client: OrchestratorClient, sessionId: string) {
  const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const issued = await client.issueProxyCertificate(sessionId, key.publicKey.export({ type: 'spki', format: 'pem' }).toString());
  return { caCertPem: issued.caCertificatePem, certPem: issued.certificatePem, keyPem: key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

const revoked = (user: string) =>
  expect.objectContaining({
    code: grpc.status.UNAUTHENTICATED,
    details: expect.stringMatching(new RegExp(`^user '${user}' has been revoked since \\d{4}-.*: only an operator can lift it$`)),
  });

test('a revoked user is refused at their next call, their sessions end, and their proxy no longer reaches the agent', async () => {
  const eve = await stack().client('eve');
  const bystander = await stack().client('bystander');
  const secops = await stack().client('secops', { operator: true });
  const workspace = stack().workspace();
  const session = await eve.getServer(workspace);
  const theirs = await bystander.getServer(stack().workspace());
  const proxy = await proxyCredentials(eve, session.sessionId);
  expect(await agentIsServing(session.agentAddress, session.sessionId, proxy)).toBeNull();

  expect(await secops.revokeUser('eve')).toEqual([session.sessionId]);

  expect((await stack().worker.store.get(session.sessionId))?.phase).toBe('ENDED');
  expect(await agentIsServing(session.agentAddress, session.sessionId, proxy)).not.toBeNull();
  await expect(eve.getServer(workspace)).rejects.toEqual(revoked('eve'));
  // GetServer reads the store and Temporal while the revocation is read: the refusal wins over any other fault of the call.
  await expect(eve.getServer('not/absolute')).rejects.toEqual(revoked('eve'));
  await expect(eve.getServer(workspace, { unreachableAgent: 'not an address' })).rejects.toEqual(revoked('eve'));
  await expect(eve.listSessions()).rejects.toEqual(revoked('eve'));
  await expect(eve.heartbeat(session.sessionId)).rejects.toEqual(revoked('eve'));
  await expect(eve.describeSession(session.sessionId)).rejects.toEqual(revoked('eve'));
  await expect(eve.issueProxyCertificate(session.sessionId, proxy.certPem)).rejects.toEqual(revoked('eve'));
  await expect(eve.watch({ workspace }, () => undefined).done).rejects.toEqual(revoked('eve'));
  // Nothing was started by the refused GetServer.
  expect((await stack().worker.store.list({ user: 'eve' })).map((s) => s.phase)).toEqual(['ENDED']);

  // Another user carries on.
  expect(await bystander.heartbeat(theirs.sessionId)).toBe('READY');
  expect((await bystander.getServer(stack().workspace())).phase).toBe('READY');

  // Lifted, the user may start again.
  expect(await secops.unrevokeUser('eve')).toBe(true);
  expect(await secops.unrevokeUser('eve')).toBe(false);
  const next = await eve.getServer(workspace);
  expect(next.phase).toBe('READY');
  expect(next.sessionId).not.toBe(session.sessionId);
});

const spanner = { RBS_STORE: 'spanner', RBS_SPANNER_INSTANCE: 'rbs-test', RBS_SPANNER_DATABASE: `revocations-${randomUUID().slice(0, 8)}` };

test.each([
  ['SQLite', {}],
  ['Spanner', spanner],
])('on %s, a revocation made through one orchestrator replica refuses the very next call at another', async (_store, env) => {
  // Two replicas on one store and one CA; no worker is needed to be refused.
  const config = testConfig(env);
  const replicas = [await runOrchestrator(config), await runOrchestrator(config)];
  const ca = await CertificateAuthority.loadOrCreate(homePaths(config.home).pki);
  const clientAt = async (replica: Orchestrator, user: string, operator = false) =>
    new OrchestratorClient(replica.address, { caCertPem: ca.certPem, ...(await ca.issue({ kind: 'user', user, operator })) });
  const secops = await clientAt(replicas[0], 'secops', true);
  const faye = await clientAt(replicas[1], 'faye');
  try {
    expect(await faye.listSessions()).toEqual([]);
    expect(await secops.revokeUser('faye')).toEqual([]);
    await expect(faye.listSessions()).rejects.toEqual(revoked('faye'));
    await secops.unrevokeUser('faye');
    expect(await faye.listSessions()).toEqual([]);
  } finally {
    for (const client of [secops, faye]) client.close();
    for (const replica of replicas) await replica.stop();
    fs.rmSync(config.home, { recursive: true, force: true });
  }
});

test('a user who is not an operator cannot revoke anyone, themselves included, nor lift a revocation', async () => {
  const mallory = await stack().client('mallory');
  const victim = await stack().client('victim');
  const secops = await stack().client('secops', { operator: true });
  const session = await victim.getServer(stack().workspace());

  for (const user of ['victim', 'mallory']) {
    await expect(mallory.revokeUser(user)).rejects.toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
      details: "user 'mallory' is not an operator: cannot revoke users",
    });
  }
  expect(await victim.heartbeat(session.sessionId)).toBe('READY');
  expect((await stack().worker.store.get(session.sessionId))?.phase).toBe('READY');

  await secops.revokeUser('mallory');
  try {
    await expect(victim.unrevokeUser('mallory')).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    // Nor can the revoked user lift their own revocation: they are refused before anything else.
    await expect(mallory.unrevokeUser('mallory')).rejects.toEqual(revoked('mallory'));
  } finally {
    await secops.unrevokeUser('mallory');
  }
});

test('revoking a name that is not a valid user name is refused with the reason', async () => {
  const secops = await stack().client('secops', { operator: true });
  await expect(secops.revokeUser('')).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringContaining('user name must be 1 to') });
  await expect(secops.revokeUser('a/b')).rejects.toMatchObject({
    code: grpc.status.INVALID_ARGUMENT,
    details: expect.stringContaining("user name contains '/'"),
  });
});
