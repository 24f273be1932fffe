/**
 * Where the Kubernetes backend's workspace volumes live on Filestore (RBS_FILESTORE_*), for
 * lib/filestore's capacity check, backup before deletion and the cleanup's report of orphaned
 * shares. All or none: without them the StorageClass alone decides, and the cleanup reports no shares.
 */
import { validateConfig, type WorkspaceStorageConfig } from '../../filestore/config';
import type { FilestoreTier } from '../../filestore/tiers';

export const FILESTORE_VARIABLES = ['RBS_FILESTORE_PROJECT', 'RBS_FILESTORE_REGION', 'RBS_FILESTORE_TIER', 'RBS_FILESTORE_QUOTA_GIB'] as const;

/**
 * GKE's own Filestore StorageClasses and what they provision. lib/filestore handles instance-mode
 * volumes only (one instance per volume): it could not back up a multishare share, so every expiry
 * would fail. Other class names are the operator's to match with the tier.
 */
const GKE_CLASSES: Readonly<Record<string, FilestoreTier | 'multishare'>> = {
  'standard-rwx': 'BASIC_HDD',
  'premium-rwx': 'BASIC_SSD',
  'zonal-rwx': 'ZONAL',
  'regional-rwx': 'REGIONAL',
  'enterprise-rwx': 'ENTERPRISE',
  'enterprise-multishare-rwx': 'multishare',
};

const values = (env: NodeJS.ProcessEnv) => FILESTORE_VARIABLES.map((name) => (env[name] ?? '').trim());

/** Whether any RBS_FILESTORE_* variable is set. */
export function filestoreConfigured(env: NodeJS.ProcessEnv): boolean {
  return values(env).some((value) => value !== '');
}

/** The settings, or null if none is set; throws naming the variables if some are missing or bad. */
export function filestoreConfigFromEnv(env: NodeJS.ProcessEnv, storageClass: string): WorkspaceStorageConfig | null {
  const given = values(env);
  if (given.every((value) => value === '')) return null;
  const missing = FILESTORE_VARIABLES.filter((_, i) => given[i] === '');
  if (missing.length > 0) throw new Error(`${missing.join(', ')} unset: set all of ${FILESTORE_VARIABLES.join(', ')}, or none`);
  const [project, region, tier, quota] = given;
  if (!/^\d+$/.test(quota)) throw new Error(`RBS_FILESTORE_QUOTA_GIB must be a whole number of GiB, got '${quota}'`);
  let config: WorkspaceStorageConfig;
  try {
    config = validateConfig({ project, region, tier: tier as FilestoreTier, quotaGib: Number(quota) });
  } catch (err) {
    throw new Error(`RBS_FILESTORE_*: ${(err as Error).message}`, { cause: err });
  }
  const provides = GKE_CLASSES[storageClass];
  if (provides === 'multishare') {
    throw new Error(
      `RBS_KUBE_STORAGE_CLASS ${storageClass} makes shares of multishare instances, which RBS_FILESTORE_* cannot back up: use an instance-mode class (one instance per volume, such as zonal-rwx)`,
    );
  }
  if (provides !== undefined && provides !== config.tier) {
    throw new Error(`RBS_KUBE_STORAGE_CLASS ${storageClass} provisions ${provides} instances, but RBS_FILESTORE_TIER is ${config.tier}`);
  }
  return config;
}
