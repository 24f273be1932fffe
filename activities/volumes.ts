/**
 * The messages between a session and its volume's owner (workflows/volume.ts), and what the owner
 * needs to know and record. Messages go through the Temporal client: a workflow cannot start
 * another workflow that outlives it.
 */
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import { WithStartWorkflowOperation, WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { VolumeRecord } from '../lib/domain';
import { knownVolumes } from '../lib/retained-volumes';
import type { ComputeBackend } from '../lib/compute/backend';
import { volumeWorkflowIdFor } from '../lib/naming';
import { validatedPlacement } from './placement';
import type { SessionStore } from '../lib/store/session-store';
import type { volumeWorkflow } from '../workflows/volume';
import { claimVolumeUpdate, releaseVolumeSignal, VOLUME_FAILURE, type VolumeInput } from '../workflows/volume-messages';
import { volumeSummary } from '../workflows/volume-details';
import { heartbeating } from './heartbeating';

/** How often an adoption looks for its owner's row. */
const ADOPTION_POLL_MS = 100;

export interface VolumeDeps {
  temporal: Client;
  store: SessionStore;
  backend: ComputeBackend;
}

/** Whether the volume is the one its row's (user, workspace) derives now: rows from before a naming change are not. */
function namesItself({ user, workspace, volume }: Omit<VolumeClaim, 'sessionId'>): boolean {
  try {
    return validatedPlacement(user, workspace).volume === volume;
  } catch {
    return false;
  }
}

export interface VolumeClaim {
  sessionId: string;
  user: string;
  workspace: string;
  volume: string;
}

export function createVolumeActivities({ temporal, store, backend }: VolumeDeps) {
  /** The volume's owner, started if none runs; on this activity's own task queue. */
  const owner = ({ user, workspace, volume }: Omit<VolumeClaim, 'sessionId'>) => ({
    workflowId: volumeWorkflowIdFor(volume),
    taskQueue: Context.current().info.taskQueue,
    args: [{ user, workspace }] as [VolumeInput],
    staticSummary: volumeSummary(user, workspace),
  });

  /** Ids of the volume owners that run now. */
  async function runningOwners(): Promise<Set<string>> {
    const ids = new Set<string>();
    for await (const wf of temporal.workflow.list({ query: `WorkflowType = 'volumeWorkflow' AND ExecutionStatus = 'Running'` })) ids.add(wf.workflowId);
    return ids;
  }

  const release = (claim: VolumeClaim) =>
    temporal.workflow.signalWithStart<typeof volumeWorkflow, [string]>('volumeWorkflow', {
      ...owner(claim),
      signal: releaseVolumeSignal,
      signalArgs: [claim.sessionId],
    });

  return {
    /**
     * Resolves once the session holds its volume. While the volume is being removed this waits
     * (heartbeating); once it is gone, the claim fails and is retried, and the owner that starts
     * then makes a new volume.
     */
    async claimVolume(claim: VolumeClaim): Promise<void> {
      const start = new WithStartWorkflowOperation<typeof volumeWorkflow>('volumeWorkflow', { ...owner(claim), workflowIdConflictPolicy: 'USE_EXISTING' });
      try {
        // Cancelled (its session ended while it waited), it stops waiting: the session's release withdraws the claim.
        await heartbeating(() =>
          temporal.withAbortSignal(Context.current().cancellationSignal, () =>
            temporal.workflow.executeUpdateWithStart(claimVolumeUpdate, { args: [claim.sessionId], startWorkflowOperation: start }),
          ),
        );
      } catch (err) {
        const failure = err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure ? err.cause : undefined;
        if (failure?.type === VOLUME_FAILURE.VOLUME_REMOVED)
          throw new Error(`volume ${claim.volume} was removed while session ${claim.sessionId} waited: claiming a new one`);
        // Only a session that ended releases: no retry of its claim can be granted.
        if (failure?.type === VOLUME_FAILURE.CLAIM_WITHDRAWN) throw ApplicationFailure.nonRetryable(failure.message, failure.type);
        throw err;
      }
    },

    /**
     * The session is over. Starts an owner for a volume that has none (one made before owners were),
     * unless the session's claim was never granted: then there is a volume only if its owner runs.
     */
    async releaseVolume(claim: VolumeClaim & { granted?: false }): Promise<void> {
      if (claim.granted !== false) {
        await release(claim);
        return;
      }
      try {
        await temporal.workflow.getHandle(volumeWorkflowIdFor(claim.volume)).signal(releaseVolumeSignal, claim.sessionId);
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
    },

    /**
     * Volumes that lack a running owner:
     * - `adopt`: known by their sessions' rows only, made before volumes had owners, they would be
     *   kept for ever; each named with its newest session, whose user and workspace it is. Only those
     *   that exist, and whose rows name them as their (user, workspace) does now.
     * - `restart`: recorded by an owner that no longer runs (terminated), and not REMOVED.
     * - `notAdopted`: volumes that may exist but could not be adopted (misnamed, or their backend failed).
     */
    async findUnownedVolumes(): Promise<{ adopt: VolumeClaim[]; restart: VolumeClaim[]; notAdopted: string[] }> {
      const [sessions, volumes, running] = await Promise.all([store.list(), store.listVolumes(), runningOwners()]);
      const owned = new Set(volumes.map((v) => v.volume));
      const adopt: VolumeClaim[] = [];
      /** Volumes that may exist but get no owner this time: the rows that tell of them must stay. */
      const notAdopted: string[] = [];
      // Newest first: the first row of a volume is its newest session.
      const newest = new Map<string, (typeof sessions)[number]>();
      for (const row of sessions) if (!newest.has(row.volume)) newest.set(row.volume, row);
      for (const volume of [...knownVolumes(sessions, volumes)].filter((v) => !owned.has(v))) {
        const { sessionId, user, workspace } = newest.get(volume)!;
        if (!namesItself({ user, workspace, volume })) {
          log.warn(`volume ${volume} is not the volume its session ${sessionId} derives: left to an operator`);
          notAdopted.push(volume);
        } else {
          const size = await backend.volumeSize(volume).catch((err: Error) => {
            log.warn(`volume ${volume}: cannot tell whether it exists, not adopted this time: ${err.message}`);
            notAdopted.push(volume);
            return null;
          });
          if (size !== null) adopt.push({ sessionId, user, workspace, volume });
        }
      }
      const restart = volumes
        .filter((v) => v.state !== 'REMOVED' && !running.has(volumeWorkflowIdFor(v.volume)))
        .map(({ user, workspace, volume }) => ({ sessionId: '', user, workspace, volume }));
      return { adopt, restart, notAdopted };
    },

    /**
     * Starts an owner for the volume as if its session had just released it, and returns once the
     * owner's row is in the store: the session rows that told of the volume may go after that. The
     * owner keeps the volume while a session of it runs, whatever this says.
     */
    async adoptVolume(claim: VolumeClaim): Promise<void> {
      const handle = await release(claim);
      await heartbeating(async () => {
        while (!(await store.getVolume(claim.volume))) {
          const { status } = await handle.describe();
          if (status.name !== 'RUNNING') throw ApplicationFailure.nonRetryable(`the owner of volume ${claim.volume} is ${status.name}`, 'AdoptionFailed');
          await new Promise((r) => setTimeout(r, ADOPTION_POLL_MS));
        }
      });
    },

    /** Starts the owner of a volume whose owner stopped: it goes on from what it recorded. */
    async restartVolumeOwner(claim: VolumeClaim): Promise<void> {
      const { user, workspace } = claim;
      await temporal.workflow.start<typeof volumeWorkflow>('volumeWorkflow', {
        ...owner(claim),
        args: [{ user, workspace, resume: true }],
        workflowIdConflictPolicy: 'USE_EXISTING',
      });
    },

    /**
     * Whether a session workflow runs under this id, and when the last one closed: the owner's own
     * check before it trashes or removes a volume, whatever messages it was (or was not) sent.
     */
    async sessionUse(workflowId: string): Promise<{ running: boolean; closedAtMs: number | null }> {
      try {
        const description = await temporal.workflow.getHandle(workflowId).describe();
        if (description.status.name === 'RUNNING') return { running: true, closedAtMs: null };
        return { running: false, closedAtMs: description.closeTime?.getTime() ?? null };
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return { running: false, closedAtMs: null };
        throw err;
      }
    },

    /** What an earlier owner of the volume left in the store, if any. */
    async storedVolume(volume: string): Promise<VolumeRecord | null> {
      return store.getVolume(volume);
    },

    /** When an operator pinned the volume, or null: the store says, where only the orchestrator writes pins. */
    async volumePin(volume: string): Promise<{ pinnedAtMs: number } | null> {
      const pin = await store.volumePin(volume);
      return pin && { pinnedAtMs: pin.pinnedAt.getTime() };
    },

    /** Writes the owner's view to the store; a write older than the stored one is dropped there. */
    async recordVolume(record: Omit<VolumeRecord, 'updatedAtMs'>): Promise<void> {
      await store.putVolume({ ...record, updatedAtMs: Date.now() });
    },
  };
}
