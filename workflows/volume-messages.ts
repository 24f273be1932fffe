/**
 * The volume workflow's messages, shared by the activities and the orchestrator (client side) and
 * the workflow. A volume's owner is the one workflow under volumeWorkflowIdFor(volume).
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { VolumeState } from '../lib/domain';

/** What starts a volume's owner: whose volume, nothing else (the rest is derived in the worker). */
export interface VolumeInput {
  user: string;
  workspace: string;
  /** Only from a run that continued as new; ignored in a run that did not. */
  carried?: CarriedVolume;
  /**
   * Started to go on from what a stopped owner recorded (the cleanup's restart, a pin): with no
   * such record, or a REMOVED one, there is no volume to own, and the run ends at once.
   */
  resume?: boolean;
}

export interface CarriedVolume {
  state: 'PRESENT' | 'TRASHED';
  pinned: boolean;
  holder: string | null;
  lastUsedAtMs: number;
  removeAtMs: number | null;
  sizeBytes: number | null;
  measured: boolean;
  notRemovable?: string;
  /** Sessions that released the volume, newest last (absent before 'withdrawn-claims'). */
  released?: string[];
  generation: number;
  seq: number;
}

export interface VolumeView {
  volume: string;
  namespace: string;
  user: string;
  workspace: string;
  state: VolumeState;
  pinned: boolean;
  /** The session that holds it, by its claim; null between sessions. */
  holder: string | null;
  lastUsedAtMs: number;
  /** When it will be trashed (PRESENT) or removed (TRASHED), if nothing happens before. */
  removeAtMs: number | null;
  /** As measured when its last session released it (ComputeBackend.volumeSize). */
  sizeBytes: number | null;
}

export const VOLUME_FAILURE = {
  /** The volume was removed while the claim waited: claim again, and a new volume is made. */
  VOLUME_REMOVED: 'VolumeRemoved',
  /** The session released the volume (it ended) before its claim was granted: the claim is void. */
  CLAIM_WITHDRAWN: 'ClaimWithdrawn',
} as const;

/**
 * A session (by its id) is about to use the volume: resolves once it may, restoring a trashed volume
 * first and waiting out a removal under way (which then fails the claim with VOLUME_REMOVED). A claim
 * of a session that released the volume meanwhile fails with CLAIM_WITHDRAWN.
 */
export const claimVolumeUpdate = defineUpdate<VolumeView, [sessionId: string]>('claim');
/**
 * The session is over: the retention period starts now, and a claim of that session still waiting,
 * or arriving late, is withdrawn. A hint only; removal checks for itself.
 */
export const releaseVolumeSignal = defineSignal<[sessionId: string]>('release');
/**
 * An operator's pin changed in the store (which only the orchestrator writes): the owner reads it,
 * and resolves once a pinned volume is kept (restored first if trashed).
 */
export const pinVolumeUpdate = defineUpdate<VolumeView, []>('pin');
export const volumeQuery = defineQuery<VolumeView>('volume');
