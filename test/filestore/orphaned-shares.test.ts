/**
 * The scheduled cleanup's report of RBS's Filestore instances that no session's volume accounts for:
 * the real cleanup workflow and activities on a real worker, sessions made by the real session
 * workflow, and the real Filestore client against the loopback fake.
 */
import { randomUUID } from 'node:crypto';
import { knownVolumes } from '../../lib/retained-volumes';
import { EXPIRY_REASON, type SessionPhase, type SessionRecord, type VolumeRecord, type VolumeState } from '../../lib/domain';
import { CSI_PVC_NAME_LABEL, RBS_MANAGED_LABEL } from '../../lib/filestore/labels';
import { createWorkspaceStorage } from '../../lib/filestore/workspace-storage';
import type { cleanupWorkflow } from '../../workflows/cleanup';
import { useFakeFilestore } from '../fakes/filestore-fake';
import { type StackOptions, useStack } from '../harness/stack';
import { volumeRecord } from '../harness/volume-record';
import { waitFor } from '../harness/wait';

const MANAGED = { [RBS_MANAGED_LABEL.key]: RBS_MANAGED_LABEL.value };
const LONG_AGO = new Date('2026-01-02T03:04:05Z');

const fake = useFakeFilestore();
// Sessions go idle at once and expire seconds later, so that one can expire within the test.
const stack = useStack({ RBS_IDLE_TIMEOUT_MS: '500', RBS_RETENTION_MS: '4000' }, (): StackOptions => ({
  workspaceStorage: createWorkspaceStorage(fake.client(), { project: fake.project, region: 'us-central1', tier: 'ZONAL', quotaGib: 10240 }),
}));

function addShare(instance: string, labels: Record<string, string>, createdAt = LONG_AGO): string {
  return fake.addInstance({ location: 'us-central1-b', instance, tier: 'ZONAL', capacityGib: 1024, labels, createdAt });
}

test('the cleanup reports the shares of removed and unknown volumes, not of volumes a session or their owner keeps, and deletes none', async () => {
  const yuki = await stack().client('yuki');
  const expired = await yuki.getServer(stack().workspace());
  const ended = await yuki.getServer(stack().workspace());
  await yuki.endSession(ended.sessionId); // `rbs end` keeps the volume for the next session
  await waitFor(async () => (await yuki.describeSession(expired.sessionId)).phase === 'ENDED', 20_000, 'expiry');
  expect((await yuki.describeSession(expired.sessionId)).failureReason).toBe(EXPIRY_REASON);

  // The session expired, but its volume's owner keeps the volume for the volume retention period.
  addShare('pvc-expired', { ...MANAGED, [CSI_PVC_NAME_LABEL]: expired.volume });
  // The owner of this one removed it: a share left of it is a leak.
  const removed = volumeRecord('yuki', '/home/yuki/removed', { state: 'REMOVED', lastUsedAtMs: LONG_AGO.getTime(), updatedAtMs: LONG_AGO.getTime() });
  await stack().worker.store.putVolume(removed);
  const ofRemoved = addShare('pvc-removed', { ...MANAGED, [CSI_PVC_NAME_LABEL]: removed.volume });
  addShare('pvc-ended', { ...MANAGED, [CSI_PVC_NAME_LABEL]: ended.volume });
  const ofNobody = addShare('pvc-nobody', { ...MANAGED, [CSI_PVC_NAME_LABEL]: 'zed-vol-0123456789ab' });
  const unlabelled = addShare('pvc-unlabelled', MANAGED);
  addShare('pvc-not-ours', { [CSI_PVC_NAME_LABEL]: 'zed-vol-0123456789ab' });
  // Within the grace period: its session's row may not have been readable when the store was read.
  addShare('pvc-just-made', { ...MANAGED, [CSI_PVC_NAME_LABEL]: 'new-vol-0123456789ab' }, new Date(Date.now() + 60_000));

  const report = await stack().temporal.workflow.execute<typeof cleanupWorkflow>('cleanupWorkflow', {
    taskQueue: stack().config.temporal.taskQueue,
    workflowId: `cleanup-test-${randomUUID()}`,
  });

  expect(report.shares).toEqual({ orphans: [ofNobody, ofRemoved].sort(), unattributed: [unlabelled] });
  // Reported only: the cleanup asks Filestore for nothing but the list.
  expect(new Set(fake.calls.map((call) => `${call.rpc} ${call.httpStatus}`))).toEqual(new Set(['ListInstances 200']));
});

describe('known volumes', () => {
  const at = (minute: number) => new Date(Date.UTC(2026, 0, 1, 0, minute));
  const row = (volume: string, createdAt: Date, phase: SessionPhase, failureReason: string | null = null): SessionRecord => ({
    sessionId: randomUUID(),
    workflowId: `rbs-session-${volume}`,
    runId: randomUUID(),
    user: 'yuki',
    workspace: '/home/yuki/src',
    namespace: volume.replace('-vol-', '-rbs-'),
    volume,
    phase,
    agentAddress: null,
    failureReason,
    endReason: null,
    createdAtMs: createdAt.getTime(),
    updatedAtMs: createdAt.getTime(),
    lastActivityAtMs: createdAt.getTime(),
    generation: createdAt.getTime(),
    seq: 1,
  });

  test('are those whose newest session did not expire: a session after an expiry makes the volume anew', () => {
    const rows = [
      row('a-vol-1', at(1), 'ENDED', EXPIRY_REASON),
      row('a-vol-1', at(2), 'SUSPENDED'), // the next session of the workspace
      row('b-vol-2', at(1), 'ENDED'),
      row('b-vol-2', at(2), 'ENDED', EXPIRY_REASON),
      row('c-vol-3', at(1), 'FAILED', 'agent restart failed: boom'),
      row('d-vol-4', at(3), 'ENDING'), // expiring right now: the volume is still there
    ];
    expect([...knownVolumes(rows, [])].sort()).toEqual(['a-vol-1', 'c-vol-3', 'd-vol-4']);
    expect([...knownVolumes([...rows].reverse(), [])].sort()).toEqual(['a-vol-1', 'c-vol-3', 'd-vol-4']);
  });

  test("are, once a volume has an owner, those its owner's record does not say are REMOVED, whatever the session rows say", () => {
    const volume = (name: string, state: VolumeState): VolumeRecord => ({
      volume: name,
      namespace: name.replace('-vol-', '-rbs-'),
      user: 'yuki',
      workspace: '/home/yuki/src',
      state,
      pinned: false,
      lastUsedAtMs: at(1).getTime(),
      removeAtMs: null,
      sizeBytes: null,
      generation: 1,
      seq: 1,
      updatedAtMs: at(1).getTime(),
    });
    const rows = [
      row('a-vol-1', at(1), 'ENDED', EXPIRY_REASON),
      row('b-vol-2', at(1), 'READY'),
      row('c-vol-3', at(1), 'ENDED'),
      row('d-vol-4', at(1), 'ENDED'),
    ];
    const volumes = [volume('a-vol-1', 'TRASHED'), volume('b-vol-2', 'REMOVED'), volume('e-vol-5', 'REMOVING')];
    // a: the session expired, but its owner keeps the volume; b: removed; c, d: no owner yet, not expired.
    expect([...knownVolumes(rows, volumes)].sort()).toEqual(['a-vol-1', 'c-vol-3', 'd-vol-4', 'e-vol-5']);
  });
});
