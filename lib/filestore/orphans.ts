/**
 * RBS's Filestore instances that no known workspace volume owns, for the scheduled cleanup. An
 * instance is RBS's by RBS_MANAGED_LABEL and belongs to the volume its PVC was named after
 * (CSI_PVC_NAME_LABEL). Instances RBS marked but cannot attribute are reported apart, never as
 * orphans: if the driver stopped writing PVC names, every live volume would look orphaned.
 */
import type { v1 } from '@google-cloud/filestore';
import { type FilestoreInstance, listRegionInstances } from './inventory';
import { CSI_PVC_NAME_LABEL, isRbsManaged } from './labels';
import { formatVolumeHandle } from './volume-handle';
import type { WorkspaceStorageConfig } from './config';

export interface ManagedVolume {
  /** The instance's resource name. */
  instance: string;
  /** The CSI volume handle of its share, or null if v1 shows it without one (multishare). */
  volumeHandle: string | null;
  /** The workspace volume (PVC) it was created for, or null if it carries no PVC name. */
  volume: string | null;
  /** For the cleanup's grace period: a volume being provisioned is not yet known. */
  createdAt: Date | null;
}

export interface OrphanReport {
  /** Marked as RBS's, created for a volume that is not among the known ones. */
  orphans: ManagedVolume[];
  /** Marked as RBS's, but with no PVC name or share to tell whose: for an operator to look at. */
  unattributed: ManagedVolume[];
}

export async function findOrphans(
  client: v1.CloudFilestoreManagerClient,
  config: WorkspaceStorageConfig,
  knownVolumes: ReadonlySet<string>,
): Promise<OrphanReport> {
  const report: OrphanReport = { orphans: [], unattributed: [] };
  for (const instance of await listRegionInstances(client, config.project, config.region)) {
    // Instances already being deleted are on their way out whoever owned them.
    if (!isRbsManaged(instance.labels) || instance.state === 'DELETING') continue;
    const managed = managedVolume(instance);
    if (managed.volume === null || managed.volumeHandle === null) report.unattributed.push(managed);
    else if (!knownVolumes.has(managed.volume)) report.orphans.push(managed);
  }
  return report;
}

function managedVolume(instance: FilestoreInstance): ManagedVolume {
  const [share] = instance.shares;
  return {
    instance: instance.name,
    volumeHandle: share ? formatVolumeHandle({ mode: 'instance', location: instance.location, instance: instance.instance, share: share.name }) : null,
    volume: instance.labels[CSI_PVC_NAME_LABEL] ?? null,
    createdAt: instance.createdAt,
  };
}
