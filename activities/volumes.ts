/**
 * The messages between a session and its volume's owner (workflows/volume.ts), and what the owner
 * needs to know and record. Messages go through the Temporal client: a workflow cannot start
 * another workflow that outlives it.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { WithStartWorkflowOperation, WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { VolumeRecord } from '../lib/domain';
import { knownVolumes } from '../lib/retained-volumes';
import { volumeWorkflowIdFor } from '../lib/naming';
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
}

export interface VolumeClaim {
  sessionId: string;
  user: string;
  workspace: string;
  volume: string;
}

/** A volume record as a workflow hands it over: times as epoch milliseconds. */
export type VolumeRecordMs = Omit<VolumeRecord, 'lastUsedAt' | 'removeAt' | 'updatedAt'> & { lastUsedAtMs: number; removeAtMs: number | null };

export function createVolumeActivities({ temporal, store }: VolumeDeps) {
  /** The volume's owner, started if none runs; on this activity's own task queue. */
  const owner = ({ user, workspace, volume }: Omit<VolumeClaim, 'sessionId'>) => ({
    workflowId: volumeWorkflowIdFor(volume),
    taskQueue: Context.current().info.taskQueue,
    args: [{ user, workspace }] as [VolumeInput],
    staticSummary: volumeSummary(user, workspace),
  });

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
        await heartbeating(() => temporal.workflow.executeUpdateWithStart(claimVolumeUpdate, { args: [claim.sessionId], startWorkflowOperation: start }));
      } catch (err) {
        const type = err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure ? err.cause.type : undefined;
        if (type === VOLUME_FAILURE.VOLUME_REMOVED)
          throw new Error(`volume ${claim.volume} was removed while session ${claim.sessionId} waited: claiming a new one`);
        throw err;
      }
    },

    /** The session is over. Starts an owner for a volume that has none (one made before owners were). */
    async releaseVolume(claim: VolumeClaim): Promise<void> {
      await release(claim);
    },

    /**
     * Volumes the store knows of by their sessions' rows only: made before volumes had owners, they
     * would be kept for ever. Each is named with its newest session, whose user and workspace it is.
     */
    async findUnownedVolumes(): Promise<VolumeClaim[]> {
      const [sessions, volumes] = await Promise.all([store.list(), store.listVolumes()]);
      const owned = new Set(volumes.map((v) => v.volume));
      const unowned = [...knownVolumes(sessions, volumes)].filter((volume) => !owned.has(volume));
      // Newest first: the first row of a volume is its newest session.
      return unowned.map((volume) => {
        const { sessionId, user, workspace } = sessions.find((row) => row.volume === volume)!;
        return { sessionId, user, workspace, volume };
      });
    },

    /**
     * Starts an owner for the volume as if its session had just released it, and returns once the
     * owner's row is in the store: the session rows that told of the volume may go after that. The
     * owner keeps the volume while a session of it runs, whatever this says.
     */
    async adoptVolume(claim: VolumeClaim): Promise<void> {
      await release(claim);
      await heartbeating(async () => {
        while (!(await store.getVolume(claim.volume))) await new Promise((r) => setTimeout(r, ADOPTION_POLL_MS));
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

    /** Writes the owner's view to the store; a write older than the stored one is dropped there. */
    async recordVolume({ lastUsedAtMs, removeAtMs, ...record }: VolumeRecordMs): Promise<void> {
      await store.putVolume({
        ...record,
        lastUsedAt: new Date(lastUsedAtMs),
        removeAt: removeAtMs === null ? null : new Date(removeAtMs),
        updatedAt: new Date(),
      });
    },
  };
}
