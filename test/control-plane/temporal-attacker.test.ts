/**
 * Someone who reaches Temporal, and nothing else: no update or signal returns a certificate, a
 * workflow started by hand cannot point a session at another user's volume or take over another
 * user's session id, and a session refuses to be attached by anyone but its user.
 */
import { generateKeyPairSync } from 'node:crypto';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { placementFor, workflowIdFor } from '../../lib/naming';
import type { Session } from '../../lib/domain';
import { FAILURE, getServerUpdate } from '../../workflows/messages';
import { useStack } from '../harness/stack';
import { waitFor } from '../harness/wait';

const stack = useStack();
const pem = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
const start = (workflowId: string, input: Record<string, unknown>) =>
  stack().temporal.workflow.start('sessionWorkflow', {
    workflowId,
    taskQueue: stack().config.temporal.taskQueue,
    args: [{ timeouts: stack().config.session, ...input }],
  });

test('no workflow update mints a proxy certificate, not even the one that used to', async () => {
  const victim = await stack().client('victim');
  const session = await victim.getServer(stack().workspace());
  const handle = stack().temporal.workflow.getHandle(session.workflowId);
  await expect(handle.executeUpdate('issueProxyCertificate', { args: [session.sessionId, pem()] })).rejects.toMatchObject({
    cause: { message: expect.stringMatching(/No registered handler for update: issueProxyCertificate/) },
  });
  // Nothing else it answers is a certificate either.
  const view = await handle.query<Session>('session');
  expect(JSON.stringify(view)).not.toMatch(/BEGIN CERTIFICATE/);
  await victim.endSession(session.sessionId);
});

test("a workflow started by hand with another user's volume in its input gets its own user's volume", async () => {
  const victim = await stack().client('victim2');
  const victimSession = await victim.getServer(stack().workspace());
  const workspace = stack().workspace();
  const own = placementFor('mallory', workspace);
  const handle = await start(workflowIdFor(own.namespace), {
    user: 'mallory',
    workspace,
    namespace: victimSession.namespace,
    volume: victimSession.volume,
  });
  const view = await handle.executeUpdate(getServerUpdate, { args: ['mallory'] });
  expect(view).toMatchObject({ user: 'mallory', namespace: own.namespace, volume: own.volume });
  expect(view.volume).not.toBe(victimSession.volume);
  await victim.endSession(victimSession.sessionId);
  await handle.terminate();
});

test("a workflow started under another user's session id fails before it touches anything", async () => {
  const workspace = stack().workspace();
  const victimId = workflowIdFor(placementFor('victim3', workspace).namespace);
  const handle = await start(victimId, { user: 'eve', workspace });
  await expect(handle.result()).rejects.toMatchObject({ cause: { type: FAILURE.PLACEMENT_MISMATCH } });
  expect(await stack().worker.store.list({ user: 'eve' })).toEqual([]);
  // The id is free again: the victim gets their own session there.
  const victim = await stack().client('victim3');
  const session = await victim.getServer(workspace);
  expect(session).toMatchObject({ user: 'victim3', workflowId: victimId, phase: 'READY' });
  await victim.endSession(session.sessionId);
});

test('a colliding session id does not attach another user: the session refuses anyone but its user', async () => {
  const victim = await stack().client('victim4');
  const session = await victim.getServer(stack().workspace());
  // As the orchestrator would for a caller whose (user, workspace) hashed to the victim's id.
  const handle = stack().temporal.workflow.getHandle(session.workflowId);
  const attach = handle.executeUpdate(getServerUpdate, { args: ['mallory'] });
  await expect(attach).rejects.toBeInstanceOf(WorkflowUpdateFailedError);
  await expect(attach).rejects.toMatchObject({ cause: { type: FAILURE.SESSION_NOT_FOUND } });
  await waitFor(async () => (await victim.describeSession(session.sessionId)).phase === 'READY', 5000);
  await victim.endSession(session.sessionId);
});

test("a workflow started by hand with another session's id, phase and agent in `carried` does not pose as that session", async () => {
  const victim = await stack().client('victim5');
  const victimSession = await victim.getServer(stack().workspace());
  const workspace = stack().workspace();
  const own = placementFor('mallory5', workspace);
  const handle = await start(workflowIdFor(own.namespace), {
    user: 'mallory5',
    workspace,
    carried: { sessionId: victimSession.sessionId, phase: 'READY', agentAddress: '127.0.0.1:1', createdAtMs: 0, lastActivityAtMs: 0 },
  });
  const view = await handle.executeUpdate(getServerUpdate, { args: ['mallory5'] });
  expect(view.sessionId).not.toBe(victimSession.sessionId);
  expect(view.agentAddress).not.toBe('127.0.0.1:1');
  // The victim's row is still the victim's, and only they get a proxy certificate for it.
  expect(await stack().worker.store.get(victimSession.sessionId)).toMatchObject({ user: 'victim5', workflowId: victimSession.workflowId });
  const mallory = await stack().client('mallory5');
  await expect(mallory.issueProxyCertificate(victimSession.sessionId, pem())).rejects.toMatchObject({ code: 5 /* NOT_FOUND */ });
  await victim.endSession(victimSession.sessionId);
  await handle.terminate();
});

test('timeouts in a hand-started input are ignored: a retention of 1 ms expires nobody', async () => {
  const workspace = stack().workspace();
  const own = placementFor('victim6', workspace);
  const handle = await start(workflowIdFor(own.namespace), {
    user: 'victim6',
    workspace,
    timeouts: { idleTimeoutMs: 1, retentionMs: 1, maxHistoryEvents: 1, agentProbeIntervalMs: 1 },
  });
  const view = await handle.executeUpdate(getServerUpdate, { args: ['victim6'] });
  expect(view.phase).toBe('READY');
  await new Promise((r) => setTimeout(r, 3000));
  // Still READY on the worker's own idle timeout (30 min), not suspended or expired after 1 ms.
  expect((await handle.query<Session>('session')).phase).toBe('READY');
  expect((await handle.describe()).runId).toBe(handle.firstExecutionRunId);
  await handle.terminate();
});
