/**
 * A volume outlives its sessions until nobody used it for the retention period and the soft-delete
 * window after it; its owner workflow keeps removal and a new session of the volume apart.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import type { VolumeRecord, VolumeState } from '../../lib/domain';
import { UnsupportedVolumeError } from '../../lib/filestore/errors';
import { placementFor, volumeWorkflowIdFor } from '../../lib/naming';
import { pinVolumeUpdate, releaseVolumeSignal, volumeQuery } from '../../workflows/volume-messages';
import { cancelClaimDuringRemoval } from '../harness/cancelled-claim';
import { useStack } from '../harness/stack';
import { waitFor } from '../harness/wait';

const RETENTION_MS = 1500;
const SOFT_DELETE_MS = 1500;
const stack = useStack({ RBS_VOLUME_RETENTION_MS: String(RETENTION_MS), RBS_VOLUME_SOFT_DELETE_MS: String(SOFT_DELETE_MS) });

const volumeDir = (volume: string) => path.join(stack().config.home, 'volumes', volume);
const record = (volume: string) => stack().worker.store.getVolume(volume);

async function waitForState(volume: string, state: VolumeState, timeoutMs = 15_000): Promise<VolumeRecord> {
  await waitFor(async () => (await record(volume))?.state === state, timeoutMs, `volume ${volume} ${state}`);
  return (await record(volume))!;
}

/** A session of a fresh workspace, with a file written on its volume, then ended by its user. */
async function endedSession(user: string, onWorkspace?: (workspace: string) => void) {
  const client = await stack().client(user);
  const workspace = stack().workspace();
  onWorkspace?.(workspace);
  const session = await client.getServer(workspace);
  const marker = path.join(volumeDir(session.volume), 'made-on-the-volume');
  fs.writeFileSync(marker, 'build state\n');
  await client.endSession(session.sessionId);
  return { client, workspace, session, marker };
}

test('an ended session leaves its volume for the retention period; unused, it is trashed, then removed when the window ends', async () => {
  const { session, marker } = await endedSession('vera');
  await waitFor(async () => (await record(session.volume))?.removeAtMs != null, 5000, 'the release');
  const kept = await record(session.volume);
  expect(kept).toMatchObject({ state: 'PRESENT', user: 'vera', pinned: false });
  expect(kept!.removeAtMs! - kept!.lastUsedAtMs).toBe(RETENTION_MS);
  expect(fs.existsSync(marker)).toBe(true);

  const trashed = await waitForState(session.volume, 'TRASHED');
  expect(fs.existsSync(marker)).toBe(true);
  expect(trashed.removeAtMs! - trashed.updatedAtMs).toBeLessThanOrEqual(SOFT_DELETE_MS);

  await waitForState(session.volume, 'REMOVED');
  expect(fs.existsSync(volumeDir(session.volume))).toBe(false);
});

test("a new volume's first claim is granted before its owner looks at it: the volume is not measured before it exists", async () => {
  const client = await stack().client('ines');
  const session = await client.getServer(stack().workspace());
  const owner = stack().temporal.workflow.getHandle(volumeWorkflowIdFor(session.volume));
  const { events } = await owner.fetchHistory();
  const activities = events!.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
  expect(activities).not.toContain('measureVolume');
  expect(await owner.query(volumeQuery)).toMatchObject({ state: 'PRESENT', holder: session.sessionId, removeAtMs: null });
  expect(await record(session.volume)).toMatchObject({ state: 'PRESENT', removeAtMs: null, sizeBytes: null });
  await client.endSession(session.sessionId);
  // Released, it is measured: the size its listing shows.
  await waitFor(async () => (await record(session.volume))?.sizeBytes != null, 5000, 'the measurement after release');
});

test('a session of a trashed volume gets it back, with its files', async () => {
  const { client, workspace, session, marker } = await endedSession('tom');
  await waitForState(session.volume, 'TRASHED');
  const next = await client.getServer(workspace);
  expect(next.volume).toBe(session.volume);
  expect(fs.readFileSync(marker, 'utf8')).toBe('build state\n');
  expect(await record(session.volume)).toMatchObject({ state: 'PRESENT', removeAtMs: null });
  // Held by the live session: never trashed, however long the retention period passes.
  await new Promise((r) => setTimeout(r, 3 * RETENTION_MS));
  expect((await record(session.volume))?.state).toBe('PRESENT');
  expect(fs.existsSync(marker)).toBe(true);
  await client.endSession(next.sessionId);
});

test('a session that asks for its volume while it is being removed waits, then gets a new one: never the one being deleted', async () => {
  const { backend } = stack().worker;
  const deleteVolume = backend.deleteVolume.bind(backend);
  const deleting = new Set<string>();
  let finishDeletion!: () => void;
  const gate = new Promise<void>((resolve) => (finishDeletion = resolve));
  // Other tests' volumes go their way; this test's waits at the gate, mid-removal.
  let held: string | undefined;
  backend.deleteVolume = async (volume) => {
    deleting.add(volume);
    if (volume === held) await gate;
    return deleteVolume(volume);
  };
  try {
    const { client, workspace, session, marker } = await endedSession('rita', (dir) => (held = placementFor('rita', dir).volume));
    const old = await record(session.volume);
    await waitFor(() => deleting.has(session.volume), 15_000, 'the removal to start');
    expect((await record(session.volume))?.state).toBe('REMOVING');

    const asked = client.getServer(workspace, { timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 2000));
    const waiting = (await stack().worker.store.list({ user: 'rita' })).find((row) => row.sessionId !== session.sessionId);
    expect(waiting?.phase).toBe('PROVISIONING_VOLUME');
    expect(fs.existsSync(marker)).toBe(true);

    finishDeletion();
    const next = await asked;
    expect(next.volume).toBe(session.volume);
    expect(fs.existsSync(volumeDir(next.volume))).toBe(true);
    expect(fs.existsSync(marker)).toBe(false);
    const successor = await record(session.volume);
    expect(successor).toMatchObject({ state: 'PRESENT', removeAtMs: null });
    expect(successor!.generation).toBeGreaterThan(old!.generation);
    await client.endSession(next.sessionId);
  } finally {
    backend.deleteVolume = deleteVolume;
    finishDeletion();
  }
});

test('a session cancelled while its claim waits out a removal releases it: the volume restored later is not held for the session that is gone', async () => {
  const workspace = stack().workspace();
  const { ended, answer, claimFailures } = await cancelClaimDuringRemoval(stack(), 'cora', workspace);
  // A cancel in Temporal (its UI, say) answers the waiting GetServer clearly, and is not undone by a retry.
  expect(String(answer)).toMatch(/ABORTED: GetServer: the workflow it waited on was cancelled in Temporal; run the command again/);
  // The first session's claim was granted; the cancelled one's, withdrawn.
  expect(claimFailures).toEqual([null, 'ClaimWithdrawn']);
  const owner = stack().temporal.workflow.getHandle(volumeWorkflowIdFor(ended.volume));
  expect(await owner.query(volumeQuery)).toMatchObject({ state: 'PRESENT', holder: null });
  // Nobody else is kept out: the next session gets the volume.
  const client = await stack().client('cora');
  const next = await client.getServer(workspace);
  expect(next.volume).toBe(ended.volume);
  expect((await owner.query(volumeQuery)).holder).toBe(next.sessionId);
  await client.endSession(next.sessionId);
});

test('a volume that cannot be backed up before its removal is kept, pinned, and its owner says why', async () => {
  const { backend } = stack().worker;
  const deleteVolume = backend.deleteVolume.bind(backend);
  let refused: string | undefined;
  backend.deleteVolume = async (volume) => {
    if (volume !== refused) return deleteVolume(volume);
    throw new UnsupportedVolumeError(`cannot back up ${volume}: its instance is HIGH_SCALE_SSD, which has no backups`);
  };
  try {
    const { session, marker } = await endedSession('hugo', (dir) => (refused = placementFor('hugo', dir).volume));
    await waitFor(async () => (await record(session.volume))?.pinned === true, 15_000, 'the refused removal');
    expect(await record(session.volume)).toMatchObject({ state: 'PRESENT', pinned: true, removeAtMs: null });
    expect(fs.existsSync(marker)).toBe(true);
    const owner = stack().temporal.workflow.getHandle(volumeWorkflowIdFor(session.volume));
    expect((await owner.describe()).status.name).toBe('RUNNING');
    const { currentDetails } = await owner.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    expect(currentDetails).toMatch(/^\*\*PRESENT\*\* \(kept: it could not be removed\)/);
    expect(currentDetails).toContain('Removal refused: `cannot back up');
    // A pin message that changes no pin (anyone who reaches Temporal can send one) does not make it try again.
    await owner.executeUpdate(pinVolumeUpdate, { args: [] });
    expect((await owner.query<{ currentDetails?: string }>('__temporal_workflow_metadata')).currentDetails).toContain('Removal refused');
  } finally {
    backend.deleteVolume = deleteVolume;
  }
});

test('an owner stopped in the middle of a removal is finished by the next one before anyone gets the volume', async () => {
  const { backend } = stack().worker;
  const deleteVolume = backend.deleteVolume.bind(backend);
  let calls = 0;
  let finishDeletion!: () => void;
  const gate = new Promise<void>((resolve) => (finishDeletion = resolve));
  let held: string | undefined;
  backend.deleteVolume = async (volume) => {
    if (volume === held) {
      calls++;
      await gate;
    }
    return deleteVolume(volume);
  };
  try {
    const { client, workspace, session, marker } = await endedSession('olga', (dir) => (held = placementFor('olga', dir).volume));
    await waitFor(() => calls === 1, 15_000, 'the removal to start');
    await stack().temporal.workflow.getHandle(volumeWorkflowIdFor(session.volume)).terminate('test: an operator stops the owner mid-removal');
    // The next session's claim starts a new owner, which reads REMOVING in the store and removes again first.
    const asked = client.getServer(workspace, { timeoutMs: 60_000 });
    await waitFor(() => calls === 2, 15_000, 'the new owner to finish the removal');
    expect(fs.existsSync(marker)).toBe(true);
    finishDeletion();
    const next = await asked;
    expect(fs.existsSync(volumeDir(next.volume))).toBe(true);
    expect(fs.existsSync(marker)).toBe(false);
    await client.endSession(next.sessionId);
  } finally {
    backend.deleteVolume = deleteVolume;
    finishDeletion();
  }
});

describe('someone who reaches only Temporal', () => {
  test("cannot unpin an operator's pin, nor pin a volume: the owner obeys the store's pin, which only the orchestrator writes", async () => {
    const { session, marker } = await endedSession('petra');
    const owner = stack().temporal.workflow.getHandle(volumeWorkflowIdFor(session.volume));
    expect((await owner.executeUpdate(pinVolumeUpdate, { args: [] })).pinned).toBe(false);
    const operator = await stack().client('ops', { operator: true });
    await operator.pinVolume(session.volume, true);
    // A forged pin message (with any argument a client may add) only makes the owner read the store again.
    await owner.executeUpdate(pinVolumeUpdate, { args: [false] as unknown as [] });
    await new Promise((r) => setTimeout(r, 2 * (RETENTION_MS + SOFT_DELETE_MS)));
    expect(await record(session.volume)).toMatchObject({ state: 'PRESENT', pinned: true });
    expect(fs.existsSync(marker)).toBe(true);
    await operator.pinVolume(session.volume, false);
  });

  test("cannot have a live session's volume removed by releasing it in the session's name", async () => {
    const client = await stack().client('lena');
    const session = await client.getServer(stack().workspace());
    const marker = path.join(volumeDir(session.volume), 'kept');
    fs.writeFileSync(marker, '');
    const owner = stack().temporal.workflow.getHandle(volumeWorkflowIdFor(session.volume));
    await owner.signal(releaseVolumeSignal, session.sessionId);
    expect((await owner.query(volumeQuery)).holder).toBeNull();
    // Past the retention period, the owner asks Temporal whether the session runs, and keeps the volume.
    await new Promise((r) => setTimeout(r, 3 * RETENTION_MS));
    expect((await record(session.volume))?.state).toBe('PRESENT');
    expect(fs.existsSync(marker)).toBe(true);
    await client.endSession(session.sessionId);
  });

  test('cannot keep a user from their volume with forged releases: a release withdraws only the claim of the session it names', async () => {
    const client = await stack().client('ruth');
    const workspace = stack().workspace();
    const first = await client.getServer(workspace);
    const owner = stack().temporal.workflow.getHandle(volumeWorkflowIdFor(first.volume));
    // More forged ids than the owner remembers, and the live session's own.
    for (let i = 0; i < 20; i++) await owner.signal(releaseVolumeSignal, `forged-${i}`);
    await owner.signal(releaseVolumeSignal, first.sessionId);
    await client.endSession(first.sessionId);
    // The user's next session is a new id: its claim is granted, on the same volume.
    const next = await client.getServer(workspace);
    expect(next.volume).toBe(first.volume);
    expect((await owner.query(volumeQuery)).holder).toBe(next.sessionId);
    await client.endSession(next.sessionId);
  });

  test('an owner started to resume a volume that has no record ends at once, and records nothing', async () => {
    const nobody = placementFor('zoe', '/home/zoe/never');
    const started = await stack().temporal.workflow.start('volumeWorkflow', {
      workflowId: volumeWorkflowIdFor(nobody.volume),
      taskQueue: stack().config.temporal.taskQueue,
      args: [{ user: 'zoe', workspace: '/home/zoe/never', resume: true }],
    });
    expect(await started.result()).toMatchObject({ state: 'REMOVED' });
    expect(await record(nobody.volume)).toBeNull();
  });

  test("cannot start an owner of another user's volume under its own name", async () => {
    const victim = placementFor('nora', '/home/nora/src');
    const started = await stack().temporal.workflow.start('volumeWorkflow', {
      workflowId: volumeWorkflowIdFor(victim.volume),
      taskQueue: stack().config.temporal.taskQueue,
      args: [{ user: 'mallory', workspace: '/home/nora/src' }],
    });
    const failure = await started.result().catch((err) => err);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect(String(failure.cause?.message)).toMatch(/is not the volume owner's id of this user and workspace/);
    expect(await record(victim.volume)).toBeNull();
  });
});

describe('rbs volumes and pins', () => {
  test("a user lists their own volumes, with state, last use and when they go; all users' only for operators", async () => {
    const { client, session } = await endedSession('ulla');
    await waitFor(async () => (await record(session.volume))?.removeAtMs != null, 5000, 'the release');
    const [listed] = await client.listVolumes();
    expect(listed).toMatchObject({ volume: session.volume, user: 'ulla', state: 'PRESENT', pinned: false });
    expect(Number(listed.removeAtMs) - Number(listed.lastUsedAtMs)).toBe(RETENTION_MS);
    // Measured as its session released it: the workspace's copy and the file written there.
    expect(Number(listed.sizeBytes)).toBeGreaterThan(0);
    expect((await (await stack().client('otto')).listVolumes()).map((v) => v.volume)).not.toContain(session.volume);
    await expect((await stack().client('otto')).listVolumes({ allUsers: true })).rejects.toMatchObject({ details: expect.stringMatching(/not an operator/) });
    const operator = await stack().client('ops', { operator: true });
    expect((await operator.listVolumes({ allUsers: true })).map((v) => v.volume)).toContain(session.volume);
  });

  test('an operator pins a trashed volume: it is restored and kept past the retention period; unpinned, it goes', async () => {
    const { session, marker } = await endedSession('pia');
    await waitForState(session.volume, 'TRASHED');
    const user = await stack().client('pia');
    await expect(user.pinVolume(session.volume, true)).rejects.toMatchObject({ details: expect.stringMatching(/is not an operator: cannot pin volumes/) });
    const operator = await stack().client('ops', { operator: true });
    expect(await operator.pinVolume(session.volume, true)).toMatchObject({ state: 'PRESENT', pinned: true });
    await new Promise((r) => setTimeout(r, 2 * (RETENTION_MS + SOFT_DELETE_MS)));
    expect(await record(session.volume)).toMatchObject({ state: 'PRESENT', pinned: true, removeAtMs: null });
    expect(fs.existsSync(marker)).toBe(true);

    expect(await operator.pinVolume(session.volume, false)).toMatchObject({ pinned: false });
    await waitForState(session.volume, 'REMOVED');
    await expect(operator.pinVolume(session.volume, true)).rejects.toMatchObject({ details: expect.stringMatching(/was removed at/) });
    await expect(operator.pinVolume('../etc', true)).rejects.toMatchObject({ details: expect.stringMatching(/is not a volume name/) });
  });
});
