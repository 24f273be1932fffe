/** Where RBS's workspace volumes live on Filestore, checked once when the storage is built. */
import { isRegion, PROJECT } from './names';
import { type FilestoreTier, TIERS } from './tiers';

export interface WorkspaceStorageConfig {
  /** Project id (or number) of the Filestore instances. */
  project: string;
  /** The region of the cluster, e.g. us-central1: zonal instances in any of its zones belong to it. */
  region: string;
  /** The tier of the workspace StorageClass (zonal-rwx → ZONAL, enterprise-rwx → ENTERPRISE, …). */
  tier: FilestoreTier;
  /** The project's Filestore capacity quota for this tier in the region, in GiB. */
  quotaGib: number;
}

export function validateConfig(config: WorkspaceStorageConfig): WorkspaceStorageConfig {
  const fail = (message: string): never => {
    throw new Error(`invalid Filestore workspace storage config: ${message}`);
  };
  if (!PROJECT.test(config.project)) fail(`project ${JSON.stringify(config.project)} is not a project id or number`);
  if (!isRegion(config.region)) fail(`region ${JSON.stringify(config.region)} is not a region (like us-central1)`);
  if (!Object.hasOwn(TIERS, config.tier)) fail(`tier ${JSON.stringify(config.tier)} is not one of ${Object.keys(TIERS).join(', ')}`);
  if (Object.hasOwn(TIERS, config.tier) && TIERS[config.tier].protection === 'none') {
    fail(
      `tier ${config.tier} is refused: it has no backups, and its snapshots are deleted with their instance, so a removed ` +
        'volume could not be recovered; use ZONAL, REGIONAL or ENTERPRISE',
    );
  }
  if (!Number.isSafeInteger(config.quotaGib) || config.quotaGib < 1) fail(`quotaGib must be a positive integer, got ${config.quotaGib}`);
  return config;
}
