/**
 * What the Kubernetes backend needs from Filestore about workspace volumes, built from a v1
 * CloudFilestoreManagerClient (in production `new v1.CloudFilestoreManagerClient()`, with
 * Application Default Credentials). Volumes are instance-mode PVs: one instance, one share each.
 * Failures are WorkspaceStorageErrors (lib/filestore/errors) or, for bad arguments,
 * InvalidInputError.
 */
import type { v1 } from '@google-cloud/filestore';
import { backupBeforeDelete, type WorkspaceBackup } from './backup';
import { type CapacityReport, checkCapacity } from './capacity';
import { validateConfig, type WorkspaceStorageConfig } from './config';
import { findOrphans, type OrphanReport } from './orphans';

export interface WorkspaceStorage {
  /**
   * Before provisioning: whether a new volume of `gib` fits the region's quota for the tier.
   * Throws InsufficientCapacityError (with the numbers) if not.
   */
  checkCapacity(gib: number): Promise<CapacityReport>;
  /**
   * Before the final deletion: backs up the volume's share and waits until it is done.
   * Idempotent. `labels` go on the backup: opaque ids only, such as `{ 'rbs-session': sessionId }`.
   * Throws VolumeNotFoundError if the volume is already gone, and UnsupportedVolumeError for a
   * volume on the legacy HIGH_SCALE_SSD tier, which has no backups (its snapshots die with it).
   */
  backupBeforeDelete(volumeHandle: string, labels?: Readonly<Record<string, string>>): Promise<WorkspaceBackup>;
  /** For the cleanup: RBS's instances whose workspace volume (PVC name) is not in `knownVolumes`. */
  findOrphans(knownVolumes: ReadonlySet<string>): Promise<OrphanReport>;
}

export function createWorkspaceStorage(client: v1.CloudFilestoreManagerClient, config: WorkspaceStorageConfig): WorkspaceStorage {
  const checked = validateConfig(config);
  return {
    checkCapacity: (gib) => checkCapacity(client, checked, gib),
    backupBeforeDelete: (volumeHandle, labels = {}) => backupBeforeDelete(client, checked, volumeHandle, labels),
    findOrphans: (knownVolumes) => findOrphans(client, checked, knownVolumes),
  };
}
