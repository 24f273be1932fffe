/**
 * The cleanup's part in volumes: a volume made before volumes had owners gets one (else it would
 * be kept for ever), and the store rows of long-ended sessions and removed volumes expire, but
 * never the last row that tells an unowned volume exists.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { EXPIRY_REASON, type SessionRecord } from '../../lib/domain';
import { placementFor, volumeWorkflowIdFor, workflowIdFor } from '../../lib/naming';
import { volumeQuery } from '../../workflows/volume-messages';
import type { cleanupWorkflow } from '../../workflows/cleanup';
import { createCleanupActivities } from '../../activities/cleanup';
import { useStack } from '../harness/stack';
import { volumeRecord } from '../harness/volume-record';
import { waitFor } from '../harness/wait';

const ROW_RETENTION_MS = 2000;
const stack = useStack({ RBS_ENDED_ROW_RETENTION_MS: String(ROW_RETENTION_MS) });
const LONG_AGO = Date.now() - 10 * ROW_RETENTION_MS;

const cleanup = () =>
  stack().temporal.workflow.execute<typeof cleanupWorkflow>('cleanupWorkflow', {
    taskQueue: stack().config.temporal.taskQueue,
    workflowId: `cleanup-test-${randomUUID()}`,
  });

/** A session row as code from before volume owners left it: ENDED long ago, its volume on disk. */
async function legacySession(user: string, failureReason: string | null = null): Promise<SessionRecord> {
  const workspace = `/home/${user}/src/${randomUUID()}`;
  const placement = placementFor(user, workspace);
  const row: SessionRecord = {
    ...placement,
    sessionId: randomUUID(),
    workflowId: workflowIdFor(placement.namespace),
    runId: randomUUID(),
    user,
    workspace,
    phase: 'ENDED',
    agentAddress: null,
    failureReason,
    endReason: null, // from before end reasons
    createdAtMs: LONG_AGO,
    updatedAtMs: LONG_AGO,
    lastActivityAtMs: LONG_AGO,
    generation: 0, // from before versioned rows
    seq: 0,
  };
  await stack().worker.store.put(row);
  if (failureReason !== EXPIRY_REASON) fs.mkdirSync(path.join(stack().config.home, 'volumes', placement.volume), { recursive: true });
  return row;
}

test('a volume from before volume owners gets an owner, and then the rows that told of it expire', async () => {
  const kept = await legacySession('lars');
  const expired = await legacySession('lars', EXPIRY_REASON);

  const report = await cleanup();
  expect(report.adoptedVolumes).toEqual([kept.volume]);
  const owned = await stack().worker.store.getVolume(kept.volume);
  expect(owned).toMatchObject({ state: 'PRESENT', user: 'lars', workspace: kept.workspace, pinned: false });
  // Adopted as if released now: the whole retention period from here.
  expect(owned!.removeAtMs! - owned!.lastUsedAtMs).toBe(stack().config.volume.retentionMs);
  // The owner's row now tells of the volume; the expired session's volume was deleted as it expired.
  expect(report.expiredRows?.sessionRows).toEqual(expect.arrayContaining([kept.sessionId, expired.sessionId]));
  expect(await stack().worker.store.get(kept.sessionId)).toBeNull();
  expect(fs.existsSync(path.join(stack().config.home, 'volumes', kept.volume))).toBe(true);
  expect((await cleanup()).adoptedVolumes).toEqual([]);
});

test('the last session row of a volume without an owner never expires, however old', async () => {
  const { backend, store } = stack().worker;
  const rows = createCleanupActivities({ backend, store, temporal: stack().temporal, orphanGraceMs: 1, endedRowRetentionMs: ROW_RETENTION_MS });
  const unowned = await legacySession('ines');
  expect((await rows.findExpiredRows()).sessionRows).not.toContain(unowned.sessionId);
  await store.putVolume(volumeRecord('ines', unowned.workspace));
  expect((await rows.findExpiredRows()).sessionRows).toContain(unowned.sessionId);
});

test('a volume whose rows name it as its (user, workspace) no longer would, or that does not exist, is left alone, and the pass goes on', async () => {
  const renamed = await legacySession('rene');
  // Its session's workflow is gone while the row says READY: an orphaned row, which is all that tells of the volume.
  const misnamed = { ...renamed, sessionId: randomUUID(), volume: 'rene-vol-0123456789ab', phase: 'READY' as const };
  await stack().worker.store.put(misnamed);
  const missing = await legacySession('max');
  fs.rmSync(path.join(stack().config.home, 'volumes', missing.volume), { recursive: true });
  const report = await cleanup();
  expect(report.adoptedVolumes).not.toContain('rene-vol-0123456789ab');
  expect(report.adoptedVolumes).not.toContain(missing.volume);
  expect(await stack().worker.store.getVolume('rene-vol-0123456789ab')).toBeNull();
  expect(report.sessionRows).not.toContain(misnamed.sessionId);
  expect(await stack().worker.store.get(misnamed.sessionId)).not.toBeNull();
});

test('an owner that was stopped is started again by the cleanup, and goes on from what it recorded, pin included', async () => {
  const vic = await stack().client('vic');
  const session = await vic.getServer(stack().workspace());
  await vic.endSession(session.sessionId);
  const operator = await stack().client('ops', { operator: true });
  await operator.pinVolume(session.volume, true);
  const owner = stack().temporal.workflow.getHandle(volumeWorkflowIdFor(session.volume));
  await owner.terminate('test: an operator stops the owner');
  const report = await cleanup();
  expect(report.restartedOwners).toContain(session.volume);
  await waitFor(async () => (await owner.describe()).status.name === 'RUNNING', 10_000, 'the owner to run again');
  expect(await owner.query(volumeQuery)).toMatchObject({ state: 'PRESENT', pinned: true });
  await operator.pinVolume(session.volume, false);
});

test("an unowned volume's session rows expire all together once the newest says it expired, else none", async () => {
  const { backend, store } = stack().worker;
  const rows = createCleanupActivities({ backend, store, temporal: stack().temporal, orphanGraceMs: 1, endedRowRetentionMs: ROW_RETENTION_MS });
  const ended = await legacySession('kai');
  const expiredLater = {
    ...ended,
    sessionId: randomUUID(),
    failureReason: EXPIRY_REASON,
    createdAtMs: LONG_AGO + 1,
    updatedAtMs: LONG_AGO + 1,
  };
  await store.put(expiredLater);
  expect((await rows.findExpiredRows()).sessionRows).toEqual(expect.arrayContaining([ended.sessionId, expiredLater.sessionId]));
  // A session after the expiry made the volume anew: nothing of it may go while it has no owner.
  const after = {
    ...ended,
    sessionId: randomUUID(),
    failureReason: null,
    createdAtMs: LONG_AGO + 2,
    updatedAtMs: LONG_AGO + 2,
  };
  await store.put(after);
  const found = (await rows.findExpiredRows()).sessionRows;
  for (const row of [ended, expiredLater, after]) expect(found).not.toContain(row.sessionId);
});

test("an ended session's row expires after RBS_ENDED_ROW_RETENTION_MS; a live one's never; a removed volume's row goes too", async () => {
  const mia = await stack().client('mia');
  const live = await mia.getServer(stack().workspace());
  const ended = await mia.getServer(stack().workspace());
  await mia.endSession(ended.sessionId);
  const removed = volumeRecord('mia', '/home/mia/gone', { state: 'REMOVED', lastUsedAtMs: LONG_AGO, updatedAtMs: LONG_AGO });
  await stack().worker.store.putVolume(removed);
  await waitFor(async () => ((await stack().worker.store.get(ended.sessionId))?.updatedAtMs ?? 0) < Date.now() - ROW_RETENTION_MS, 10_000, 'the row to age');

  const report = await cleanup();
  expect(report.expiredRows?.sessionRows).toContain(ended.sessionId);
  expect(report.expiredRows?.sessionRows).not.toContain(live.sessionId);
  expect(report.expiredRows?.volumeRows).toEqual([removed.volume]);
  expect(await stack().worker.store.get(ended.sessionId)).toBeNull();
  expect(await stack().worker.store.getVolume(removed.volume)).toBeNull();
  // The ended session's volume stays with its owner, its row included.
  expect(await stack().worker.store.getVolume(ended.volume)).toMatchObject({ state: 'PRESENT' });
  expect((await mia.describeSession(live.sessionId)).phase).toBe('READY');
  await mia.endSession(live.sessionId);
});
